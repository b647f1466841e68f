//! `lakebundle init`: each built-in template, written with no TTY (defaults or a
//! `--config-file`), validates and deploys with `--local` unchanged — by running
//! the commands its generated README gives — and destroys cleanly; bad input is a
//! clear error that writes nothing. Deploys need PostgreSQL and psql.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A private local workspace and an output dir; the local workspace's servers
/// are stopped on drop, whatever happened.
struct Sandbox {
    home: tempfile::TempDir,
    out: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            home: tempfile::tempdir().expect("home"),
            out: tempfile::tempdir().expect("out"),
        }
    }

    fn env(&self, c: &mut Command) {
        for (k, _) in std::env::vars() {
            if k.starts_with("DATABRICKS_") || k.starts_with("BUNDLE_VAR_") {
                c.env_remove(k);
            }
        }
        c.env("LAKEBUNDLE_HOME", self.home.path())
            .env_remove("LAKEBUNDLE_LAKE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
    }

    /// `lakebundle <args>` in the output dir, stdin not a TTY.
    fn lakebundle(&self, args: &[&str]) -> Output {
        let mut c = Command::new(common::Emulator::bin());
        self.env(&mut c);
        c.current_dir(self.out.path()).args(args);
        c.output().expect("run lakebundle")
    }

    /// One shell command line (from a README) in `dir`, with the built binary first on PATH.
    fn shell(&self, dir: &Path, line: &str) -> Output {
        let bin_dir = common::Emulator::bin()
            .parent()
            .expect("binary dir")
            .to_path_buf();
        let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .expect("PATH");
        let mut c = Command::new("sh");
        self.env(&mut c);
        c.current_dir(dir).env("PATH", path).args(["-c", line]);
        c.output().expect("run sh")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = Command::new(common::Emulator::bin())
            .args(["emulator", "down", "--data-dir"])
            .arg(self.home.path().join("local-workspace"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(o: Output) -> String {
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `lakebundle ...` lines of the README's first ```sh block, in order.
fn readme_commands(project: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(project.join("README.md")).expect("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sh block");
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("lakebundle "))
        .map(str::to_string)
        .collect()
}

/// init with no TTY, then every command of the generated README (validate,
/// --local deploy, psql), then destroy; returns the psql output.
fn init_and_follow_readme(sb: &Sandbox, init_args: &[&str], project: &str) -> String {
    let created = ok(sb.lakebundle(init_args));
    assert!(
        created.contains(&format!("Created ./{project}")),
        "{created}"
    );
    let dir = sb.out.path().join(project);
    let commands = readme_commands(&dir);
    assert_eq!(commands.len(), 3, "three next commands: {commands:?}");
    assert!(
        commands[0].starts_with("lakebundle validate"),
        "{commands:?}"
    );
    assert!(
        commands[1].starts_with("lakebundle --local deploy --auto-approve"),
        "{commands:?}"
    );
    assert!(
        commands[2].starts_with("lakebundle --local psql"),
        "{commands:?}"
    );
    let mut last = String::new();
    for line in &commands {
        last = ok(sb.shell(&dir, line));
    }
    let destroyed = ok(sb.shell(&dir, "lakebundle --local destroy --auto-approve"));
    assert!(destroyed.contains("Destroy complete"), "{destroyed}");
    last
}

fn prerequisites() -> bool {
    common::prereq::postgres() && common::prereq::psql()
}

#[test]
fn lakebase_app_with_defaults_deploys_locally_and_serves_the_sample_rows() {
    if !prerequisites() {
        return;
    }
    let sb = Sandbox::new();
    let rows = init_and_follow_readme(&sb, &["init", "lakebase-app"], "lakebase_app");
    for name in [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Edsger Dijkstra",
        "Barbara Liskov",
    ] {
        assert!(rows.contains(name), "synced row {name} in:\n{rows}");
    }
    assert!(rows.contains("(5 rows)"), "{rows}");
}

#[test]
fn lakebase_app_with_a_config_file_uses_its_values() {
    if !prerequisites() {
        return;
    }
    let sb = Sandbox::new();
    let cfg = sb.out.path().join("values.json");
    std::fs::write(
        &cfg,
        r#"{"project_name": "orders", "capacity": "CU_2", "source_catalog": "raw", "source_schema": "shop"}"#,
    )
    .expect("write config");
    let cfg_arg = cfg.display().to_string();
    let rows = init_and_follow_readme(
        &sb,
        &["init", "lakebase-app", "--config-file", &cfg_arg],
        "orders",
    );
    assert!(rows.contains("(5 rows)"), "{rows}");
    let dir = sb.out.path().join("orders");
    assert!(dir.join("lake/raw/shop/customers.csv").is_file());
    let yml = std::fs::read_to_string(dir.join("databricks.yml")).expect("yml");
    assert!(yml.contains("capacity: CU_2"), "{yml}");
    assert!(yml.contains("name: orders-app"), "{yml}");
}

#[test]
fn minimal_deploys_locally() {
    if !prerequisites() {
        return;
    }
    let sb = Sandbox::new();
    let out = init_and_follow_readme(&sb, &["init", "minimal"], "my_lakebase");
    assert!(
        out.contains("my_lakebase"),
        "current_database() is printed: {out}"
    );
}

#[test]
fn lakebase_autoscaling_deploys_locally_and_connects_through_the_replica() {
    if !prerequisites() {
        return;
    }
    let sb = Sandbox::new();
    let out = init_and_follow_readme(&sb, &["init", "lakebase-autoscaling"], "my_autoscaling");
    // The README's psql runs on the read-only endpoint: a replica.
    assert!(
        out.contains(
            " t
"
        ) || out.contains(
            " t
"
        ),
        "pg_is_in_recovery() is true: {out}"
    );
}

#[test]
fn without_a_template_and_without_a_tty_the_default_template_is_used() {
    let sb = Sandbox::new();
    let out = ok(sb.lakebundle(&["-o", "json", "init"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["template"], "lakebase-app");
    assert_eq!(v["values"]["project_name"], "lakebase_app");
    let files = v["files"].as_array().expect("files");
    assert_eq!(files.len(), 7, "{v}");
    ok(sb.lakebundle(&["-C", "lakebase_app", "validate", "--strict"]));
}

#[test]
fn an_unknown_template_is_an_error_with_did_you_mean_and_the_list() {
    let sb = Sandbox::new();
    let err = fails(sb.lakebundle(&["init", "lakebase_ap"]));
    assert!(err.contains("unknown template `lakebase_ap`"), "{err}");
    assert!(err.contains("did you mean `lakebase-app`?"), "{err}");
    assert!(
        err.contains("lakebase-app, lakebase-autoscaling, minimal"),
        "{err}"
    );
    assert_eq!(entries(sb.out.path()), Vec::<PathBuf>::new());
}

#[test]
fn invalid_values_are_clear_errors_and_write_nothing() {
    let sb = Sandbox::new();
    let cfg = sb.out.path().join("bad.json");
    for (json, expect) in [
        (
            r#"{"project_name": "My Project"}"#,
            "invalid project_name \"My Project\": use 2 to 40 characters",
        ),
        (
            r#"{"capacity": "CU_3"}"#,
            "choose one of CU_1, CU_2, CU_4, CU_8",
        ),
        (r#"{"projet_name": "x1"}"#, "did you mean `project_name`?"),
        (
            r#"{"project_name": ["x"]}"#,
            "`project_name` must be a string",
        ),
    ] {
        std::fs::write(&cfg, json).expect("write config");
        let err = fails(sb.lakebundle(&[
            "init",
            "minimal",
            "--config-file",
            &cfg.display().to_string(),
        ]));
        assert!(err.contains(expect), "{json}: {err}");
        assert_eq!(entries(sb.out.path()), vec![cfg.clone()], "nothing written");
    }
}

#[test]
fn an_existing_non_empty_project_directory_is_never_overwritten() {
    let sb = Sandbox::new();
    let dir = sb.out.path().join("my_lakebase");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("databricks.yml"), "mine\n").expect("write");
    let err = fails(sb.lakebundle(&["init", "minimal"]));
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("databricks.yml")).expect("read"),
        "mine\n"
    );
    // --output-dir elsewhere works.
    let other = sb.out.path().join("elsewhere");
    ok(sb.lakebundle(&[
        "init",
        "minimal",
        "--output-dir",
        &other.display().to_string(),
    ]));
    assert!(other.join("my_lakebase/databricks.yml").is_file());
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// The template's app code, unchanged, against a served local workspace through the
/// official Python SDK (the README's `emulator serve` + `DATABRICKS_HOST` recipe):
/// it finds the instance, gets a credential and reads the synced rows with psycopg2.
#[test]
fn lakebase_app_code_reads_the_rows_through_the_official_sdk() {
    if !prerequisites() {
        return;
    }
    let Some(python) = common::prereq::python_with("databricks.sdk, psycopg2") else {
        return;
    };
    let sb = Sandbox::new();
    ok(sb.lakebundle(&["init", "lakebase-app"]));
    let project = sb.out.path().join("lakebase_app");
    let lake = project.join("lake").display().to_string();
    let emu = common::Emulator::start_with(&["--lake-dir", &lake]);
    let deployed = emu
        .lakebundle()
        .arg("-C")
        .arg(&project)
        .args(["deploy", "--auto-approve"])
        .stdin(Stdio::null())
        .output()
        .expect("deploy");
    ok(deployed);
    let home = sb.home.path().join("py-home");
    std::fs::create_dir_all(&home).expect("home");
    let out = Command::new(&python)
        .arg(project.join("app/app.py"))
        .arg("--once")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("DATABRICKS_HOST", &emu.url)
        .env("DATABRICKS_TOKEN", &emu.token)
        .env("LAKEBASE_INSTANCE_NAME", "lakebase-app")
        .env("LAKEBASE_DATABASE", "lakebase_app")
        .output()
        .expect("run app.py");
    let stdout = ok(out);
    let rows: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON rows");
    let names: Vec<&str> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Ada Lovelace",
            "Grace Hopper",
            "Alan Turing",
            "Edsger Dijkstra",
            "Barbara Liskov"
        ]
    );
}
