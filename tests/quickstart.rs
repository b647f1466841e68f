//! The README's quick start, step by step, against the real binary with `--local`
//! in a private `LAKEBUNDLE_HOME`: deploy `examples/production`, then
//! `lakebundle --local psql` shows the sample rows shipped in the example's
//! `lake/` dir. Also where `--local` reads source tables from
//! (`LAKEBUNDLE_LAKE_DIR`, else `<bundle root>/lake`). Needs PostgreSQL and psql.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The README's query and the rows it prints (exact psql output, aligned format).
const README_QUERY: &str =
    "SELECT customer_id, segment, churn_risk FROM my_database.customer_features ORDER BY customer_id";

/// A private local workspace (`LAKEBUNDLE_HOME`) and a copy of a bundle; on drop
/// the local workspace's PostgreSQL servers are stopped, whatever happened.
struct Local {
    home: tempfile::TempDir,
    root: PathBuf,
    _bundle: tempfile::TempDir,
}

impl Local {
    fn example(name: &str) -> Local {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        let bundle = tempfile::tempdir().expect("tempdir");
        let root = bundle.path().join(name);
        copy_dir(&src, &root);
        Local {
            home: tempfile::tempdir().expect("tempdir"),
            root,
            _bundle: bundle,
        }
    }

    /// `lakebundle -C <copy> --local <args>` with no TTY and a clean environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::Emulator::bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("DATABRICKS_") || k.starts_with("BUNDLE_VAR_") {
                c.env_remove(k);
            }
        }
        c.env("LAKEBUNDLE_HOME", self.home.path())
            .env_remove("LAKEBUNDLE_LAKE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .arg("-C")
            .arg(&self.root)
            .arg("--local")
            .args(args);
        c
    }

    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("run lakebundle");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str], env: &[(&str, &Path)]) -> String {
        let (code, stdout, stderr) = self.run(args, env);
        assert_eq!(
            code, 0,
            "lakebundle {args:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        stdout
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = Command::new(common::Emulator::bin())
            .args(["emulator", "down", "--data-dir"])
            .arg(self.home.path().join("local-workspace"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_name() == ".lakebundle" {
            continue;
        }
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// Lines without trailing blanks (psql pads its header line).
fn trim_lines(s: &str) -> String {
    let joined = s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    joined.trim_end().to_string()
}

fn prerequisites() -> bool {
    common::prereq::postgres() && common::prereq::psql()
}

#[test]
fn readme_quick_start_shows_the_sample_rows() {
    if !prerequisites() {
        return;
    }
    let local = Local::example("production");
    // Step 1 of the README.
    let deployed = local.ok(&["deploy", "--auto-approve"], &[]);
    assert!(deployed.contains("Deploy complete"), "{deployed}");
    // Step 2: the rows of lake/dev_catalog/dev_schema/customer_features.csv, through psql.
    let out = local.ok(
        &[
            "psql",
            "my_db",
            "--database",
            "my_database",
            "--",
            "-c",
            README_QUERY,
        ],
        &[],
    );
    let expected = [
        " customer_id |  segment   | churn_risk",
        "-------------+------------+------------",
        "           1 | enterprise |       0.05",
        "           2 | smb        |       0.31",
        "           3 | consumer   |       0.62",
        "           4 | enterprise |       0.02",
        "           5 | smb        |       0.18",
        "(5 rows)",
    ]
    .join("\n");
    let expected = expected.as_str();
    assert_eq!(trim_lines(&out), expected, "psql output:\n{out}");
    // The README quotes this query and its output verbatim.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(readme.contains(README_QUERY), "README shows the query");
    assert!(
        trim_lines(&readme).contains(expected),
        "README shows what the query prints:\n{expected}"
    );
    // Step 3: a refresh reads the lake file again.
    let run = local.ok(&["run", "features_sync"], &[]);
    assert!(run.contains("COMPLETED"), "{run}");
    local.ok(&["destroy", "--auto-approve"], &[]);
}

#[test]
fn lakebundle_lake_dir_overrides_the_bundle_lake() {
    if !prerequisites() {
        return;
    }
    let local = Local::example("production");
    let other = tempfile::tempdir().expect("lake");
    let source = other.path().join("dev_catalog/dev_schema");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(
        source.join("customer_features.csv"),
        "customer_id,segment\n41,from-env\n42,from-env\n",
    )
    .expect("write source");
    let env = [("LAKEBUNDLE_LAKE_DIR", other.path())];
    local.ok(&["deploy", "--auto-approve"], &env);
    let out = local.ok(
        &[
            "psql",
            "my_db",
            "--database",
            "my_database",
            "--",
            "-At",
            "-c",
            "SELECT string_agg(customer_id || ':' || segment, ',' ORDER BY customer_id) FROM my_database.customer_features",
        ],
        &env,
    );
    assert_eq!(out.trim(), "41:from-env,42:from-env");

    // A refresh reads the same file again: an added row arrives on `run`.
    std::fs::write(
        source.join("customer_features.csv"),
        "customer_id,segment\n41,from-env\n42,from-env\n43,added\n",
    )
    .expect("write source");
    local.ok(&["run", "features_sync"], &env);
    let out = local.ok(
        &[
            "psql",
            "my_db",
            "--database",
            "my_database",
            "--",
            "-At",
            "-c",
            "SELECT count(*) FROM my_database.customer_features",
        ],
        &env,
    );
    assert_eq!(out.trim(), "3");
    local.ok(&["destroy", "--auto-approve"], &env);
}

#[test]
fn a_lake_dir_env_that_is_not_a_directory_is_a_clear_error() {
    // No PostgreSQL needed: the check runs before the local workspace starts.
    let local = Local::example("production");
    let missing = local.home.path().join("no-such-lake");
    let (code, _, stderr) = local.run(&["plan"], &[("LAKEBUNDLE_LAKE_DIR", &missing)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "LAKEBUNDLE_LAKE_DIR={} is not a directory",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("<bundle root>/lake"),
        "says how to fix: {stderr}"
    );
}

#[test]
fn a_source_table_missing_from_the_lake_fails_the_deploy_naming_it() {
    // A lake dir without the synced table's source: the deploy fails on that
    // table, naming it, like the real service does for a missing Delta table.
    let local = Local::example("production");
    let empty = tempfile::tempdir().expect("lake");
    let (code, stdout, stderr) = local.run(
        &["-t", "prod", "deploy", "--auto-approve"],
        &[("LAKEBUNDLE_LAKE_DIR", empty.path())],
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("prod_catalog.prod_schema.customer_features"),
        "names the missing source table:\n{all}"
    );
}

/// The README's "`--local` and `emulator serve` share one data dir": while a server
/// runs on `$LAKEBUNDLE_HOME/local-workspace`, `--local` is refused naming it; the
/// same deployment is reachable through `DATABRICKS_HOST`; once the server stops,
/// `--local` finds everything as it was.
#[test]
fn local_and_a_served_workspace_share_the_data_dir_one_at_a_time() {
    if !prerequisites() {
        return;
    }
    let local = Local::example("production");
    let data_dir = local.home.path().join("local-workspace");
    let data_arg = data_dir.display().to_string();
    let lake = local.root.join("lake").display().to_string();
    let mut emu = common::Emulator::start_with(&["--data-dir", &data_arg, "--lake-dir", &lake]);

    let (code, _, stderr) = local.run(&["plan"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("data dir {data_arg} is in use by pid")),
        "{stderr}"
    );

    let served = |args: &[&str]| {
        let out = emu
            .lakebundle()
            .env("LAKEBUNDLE_HOME", local.home.path())
            .arg("-C")
            .arg(&local.root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run lakebundle");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    served(&["deploy", "--auto-approve"]);
    emu.stop();

    let plan = local.ok(&["plan"], &[]);
    assert!(plan.contains("No changes."), "{plan}");
    let count = local.ok(
        &[
            "psql",
            "my_db",
            "--database",
            "my_database",
            "--",
            "-At",
            "-c",
            "SELECT count(*) FROM my_database.customer_features",
        ],
        &[],
    );
    assert_eq!(count.trim(), "5");
    local.ok(&["destroy", "--auto-approve"], &[]);
}
