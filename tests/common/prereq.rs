//! The one place integration tests decide what to do when something they need
//! outside the crate (the shared corpus, PostgreSQL, psql, Python, Node) is
//! missing: with `CI=true` the test fails, saying what is missing and how to
//! install it; locally it prints one visible line and the caller skips.
//!
//! Included by `tests/common/mod.rs` and, via `#[path]`, by the test files
//! that do not use the emulator harness.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether this run is CI (`.ci/run` exports `CI=true`), where nothing may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !v.is_empty() && v != "0" && v != "false"
    })
}

/// Report a missing prerequisite: panics under CI; otherwise writes one line
/// to the real stderr and returns, and the caller returns early.
///
/// libtest captures `eprintln!` unless `--nocapture` is given, so a skip would
/// be invisible; a direct write to the stderr handle bypasses that capture and
/// shows in a plain `cargo test` run.
pub fn skip(missing: &str, install: &str) {
    if in_ci() {
        panic!("CI=true and {missing}: install it ({install}); tests never skip in CI");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let line = format!("SKIP {test}: {missing} (install: {install})\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `../shared` next to the package (the seed document, the public corpus).
pub fn shared_dir() -> Option<PathBuf> {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).to_path_buf();
    if p.is_dir() {
        Some(p)
    } else {
        skip(
            &format!("the shared folder {} is absent", p.display()),
            "check out the project's `shared/` folder next to the repository",
        );
        None
    }
}

/// A file inside `../shared` (e.g. `seed/lakebase-provisioned.md`).
pub fn shared_file(rel: &str) -> Option<PathBuf> {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")).join(rel);
    if p.is_file() {
        Some(p)
    } else {
        skip(
            &format!("{} is absent", p.display()),
            "check out the project's `shared/` folder next to the repository",
        );
        None
    }
}

const PG_INSTALL: &str = "apt-get install postgresql (Debian/Ubuntu), or run .ci/run";

/// PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) on PATH or
/// under /usr/lib/postgresql/*/bin.
pub fn postgres() -> bool {
    let found = Command::new("sh")
        .args([
            "-c",
            "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip(
            "PostgreSQL server binaries (initdb) are not installed",
            PG_INSTALL,
        );
    }
    found
}

/// The PostgreSQL server binaries are missing, for callers that found out
/// themselves (e.g. `PgFleet::new` failed with `detail`).
pub fn postgres_missing(detail: &str) {
    skip(
        &format!("PostgreSQL server binaries are not usable ({detail})"),
        PG_INSTALL,
    );
}

/// The `psql` client.
pub fn psql() -> bool {
    let found = Command::new("psql")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip("psql is not installed", "apt-get install postgresql-client");
    }
    found
}

/// `node` on PATH.
pub fn node() -> bool {
    let found = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip(
            "`node` is not installed",
            "apt-get install nodejs npm, then `npm ci --prefix tests/lsp`",
        );
    }
    found
}

/// A Python that imports `module` (e.g. `"databricks.sdk, psycopg2"`): the tests' venv (`tests/sdk/.venv`, made by
/// `.ci/run` or the SDK tests) when it has it, else `python3` on PATH.
pub fn python_with(module: &str) -> Option<PathBuf> {
    // The venv sits at the workspace root; crates under `crates/` include this file too.
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests/sdk/.venv/bin/python"))
        .find(|py| py.exists())
        .unwrap_or_else(|| PathBuf::from("tests/sdk/.venv/bin/python"));
    let imports = |py: &Path| {
        Command::new(py)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for py in [venv, PathBuf::from("python3")] {
        if imports(&py) {
            return Some(py);
        }
    }
    skip(
        &format!("no Python that imports {module}"),
        "python3 -m venv tests/sdk/.venv && tests/sdk/.venv/bin/pip install -r tests/sdk/requirements.txt",
    );
    None
}
