//! The CLI's failure paths, driving the real binary (against a real emulator
//! where a workspace is needed):
//!
//! 1. usage errors exit 1 (2 is `plan --detailed-exitcode` with changes);
//! 2. every error is rendered once, with its help, as text or (`-o json`) as
//!    one JSON object on stdout;
//! 3. printed follow-up commands carry the user's bundle flags and run;
//! 4. messages for wrong keys, help for every flag, flags per command;
//! 5. the deployment lock: a dead holder is named, with the takeover command;
//! 6. stdout write errors: exit 1 with a message (full device), a closed
//!    pipe stays quiet.

mod common;
mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Emulator;
use e2e_support::{run, spawn, Api, TestBundle};
use serde_json::Value;

/// A jobs-and-instance bundle with a variable and two targets.
const BUNDLE: &str = r#"
bundle:
  name: cli-errors
variables:
  suffix:
    default: x
resources:
  jobs:
    nightly:
      name: nightly-${var.suffix}
      tasks:
        - task_key: main
          notebook_task:
            notebook_path: /Shared/nb
  database_instances:
    main_db:
      name: main-db
      capacity: CU_1
targets:
  dev:
    default: true
  prod: {}
"#;

/// Jobs only (no database server needed, also with `--local`).
const JOBS_ONLY: &str = r#"
bundle:
  name: cli-hints
variables:
  suffix:
    default: x
resources:
  jobs:
    nightly:
      name: nightly-${var.suffix}
      tasks:
        - task_key: main
          notebook_task:
            notebook_path: /Shared/nb
targets:
  dev:
    default: true
  prod: {}
"#;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn expect(self, code: i32) -> Out {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn output(cmd: &mut Command) -> Out {
    let o = cmd.stdin(Stdio::null()).output().expect("run lakebundle");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The binary with no workspace configured (offline commands).
fn offline(args: &[&str]) -> Out {
    output(
        Command::new(Emulator::bin())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("DATABRICKS_HOST")
            .env_remove("DATABRICKS_TOKEN"),
    )
}

/// A bundle written into a temp dir.
fn bundle_dir(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bundle");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("databricks.yml"), yaml).expect("write bundle");
    (dir, root)
}

fn lb(emu: &Emulator, root: &Path, args: &[&str]) -> Out {
    output(emu.lakebundle().arg("-C").arg(root).args(args))
}

/// The first `...` quoted command in `text` that starts with `lakebundle `
/// after `marker`.
fn printed_command(text: &str, marker: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{text}"));
    let rest = &text[at..];
    let start = rest
        .find("`lakebundle ")
        .unwrap_or_else(|| panic!("no command after {marker:?}:\n{text}"));
    let cmd = &rest[start + 1..];
    let end = cmd.find('`').expect("closing backtick");
    cmd[..end].to_string()
}

/// Run a printed command line through `sh` with this build first on PATH and
/// the emulator's environment.
fn run_printed(emu: &Emulator, cwd: &Path, line: &str) -> Out {
    let template = emu.lakebundle();
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(line).current_dir(cwd);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let bin_dir = Emulator::bin().parent().expect("bin dir").to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir];
    dirs.extend(std::env::split_paths(&path));
    sh.env("PATH", std::env::join_paths(dirs).expect("PATH"));
    output(&mut sh)
}

// ---------------------------------------------------------------------------
// 1. exit codes

#[test]
fn usage_errors_exit_1_and_help_and_version_exit_0() {
    for args in [
        &["plan", "--detailed-exitcode", "--parallelism", "ten"][..],
        &["deploy", "--no-such-flag"],
        &["frobnicate"],
        &[],
        &["run"],
        &["-o", "yaml", "validate"],
    ] {
        let out = offline(args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
    let help = offline(&["--help"]).expect(0);
    assert!(help.stdout.contains("Usage: lakebundle"), "{}", help.stdout);
    offline(&["plan", "--help"]).expect(0);
    let version = offline(&["--version"]).expect(0);
    assert!(
        version.stdout.starts_with("lakebundle "),
        "{}",
        version.stdout
    );
}

#[test]
fn a_usage_error_under_json_output_is_a_json_object() {
    let out = offline(&["-o", "json", "plan", "--parallelism", "ten"]).expect(1);
    let v = out.json();
    assert_eq!(v["error"]["class"], "usage");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--parallelism")),
        "{v}"
    );
}

// ---------------------------------------------------------------------------
// 2. one error exit

#[test]
fn diagnostics_keep_their_json_shape_and_text_snippets() {
    let (_d, root) = bundle_dir(&BUNDLE.replace("capacity: CU_1", "capacity: ${var.sufix}"));
    let root_s = root.to_str().expect("utf-8 path");
    let json = offline(&["-C", root_s, "-o", "json", "validate"]).expect(1);
    let v = json.json();
    let d = &v["diagnostics"][0];
    for k in ["severity", "message", "file", "line", "column", "help"] {
        assert!(d.get(k).is_some(), "{k} in {d}");
    }
    assert!(
        d["help"].as_str().is_some_and(|h| h.contains("suffix")),
        "{d}"
    );
    let text = offline(&["-C", root_s, "validate"]).expect(1);
    assert!(text.stderr.contains("databricks.yml:"), "{}", text.stderr);
    assert!(
        text.stderr.contains("capacity: ${var.sufix}"),
        "snippet: {}",
        text.stderr
    );
    assert!(text.stderr.contains("Found 1 error"), "{}", text.stderr);
}

#[test]
fn engine_errors_keep_their_help_as_text_and_as_json() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let yaml = format!("{JOBS_ONLY}\n").replace(
        "resources:\n  jobs:",
        "resources:\n  vector_search_endpoint:\n    etl:\n      name: etl\n  jobs:",
    );
    let (_d, root) = bundle_dir(&yaml);
    let text = lb(&emu, &root, &["plan"]).expect(1);
    assert!(
        text.stderr
            .contains("unknown resource type(s) under `resources`: vector_search_endpoint"),
        "{}",
        text.stderr
    );
    assert!(
        text.stderr.contains("help:"),
        "the hint is shown: {}",
        text.stderr
    );
    let json = lb(&emu, &root, &["-o", "json", "plan"]).expect(1);
    let v = json.json();
    assert_eq!(v["error"]["class"], "user", "{v}");
    assert_eq!(v["error"]["code"], "lakebundle::engine::unsupported", "{v}");
    assert!(v["error"]["help"].as_str().is_some_and(|h| !h.is_empty()));
}

#[test]
fn a_remote_failure_under_json_output_is_json_on_stdout() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let (_d, root) = bundle_dir(JOBS_ONLY);
    let out = output(
        emu.lakebundle()
            .env("DATABRICKS_TOKEN", "wrong-token")
            .arg("-C")
            .arg(&root)
            .args(["-o", "json", "plan"]),
    )
    .expect(1);
    let v = out.json();
    assert_eq!(v["error"]["class"], "remote", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[test]
fn refused_destroy_and_stale_plan_carry_runnable_hints() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let (_d, root) = bundle_dir(BUNDLE);
    lb(&emu, &root, &["-t", "prod", "deploy", "--auto-approve"]).expect(0);

    // Destroy without a terminal: refused, with the exact re-run command.
    let refused = lb(&emu, &root, &["-t", "prod", "destroy"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("destroy would delete 2 resource(s)"),
        "{}",
        refused.stderr
    );
    let cmd = printed_command(&refused.stderr, "no terminal");
    assert!(cmd.contains("-t prod"), "{cmd}");
    assert!(cmd.ends_with("destroy --auto-approve"), "{cmd}");
    // The destroy plan says why each goes: it will be destroyed.
    assert!(
        refused.stdout.contains("will be destroyed"),
        "{}",
        refused.stdout
    );
    assert!(
        !refused.stdout.contains("removed from the configuration"),
        "{}",
        refused.stdout
    );

    // A stale saved plan: refused, with how to make a new one.
    let plan_file = root.join("saved.json");
    let plan_s = plan_file.to_str().expect("utf-8");
    lb(&emu, &root, &["-t", "prod", "plan", "--out", plan_s]).expect(0);
    let text = std::fs::read_to_string(root.join("databricks.yml")).expect("read");
    std::fs::write(
        root.join("databricks.yml"),
        text.replace("default: x", "default: y"),
    )
    .expect("write");
    let stale = lb(&emu, &root, &["-t", "prod", "deploy", "--plan", plan_s]).expect(1);
    assert!(
        stale.stderr.contains("refusing the saved plan"),
        "{}",
        stale.stderr
    );
    let again = printed_command(&stale.stderr, "make a new plan");
    assert!(again.contains("-t prod plan --out"), "{again}");
    run_printed(&emu, &root, &again).expect(0);
    lb(
        &emu,
        &root,
        &["-t", "prod", "deploy", "--plan", plan_s, "--auto-approve"],
    )
    .expect(0);

    // Now the printed destroy command runs as printed.
    run_printed(&emu, &root, &cmd).expect(0);
    let after = lb(&emu, &root, &["-t", "prod", "-o", "json", "summary"]).expect(0);
    assert!(after.json()["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .all(|r| r["deployed"] == false));
}

#[test]
fn deploy_refusal_counts_every_replace_and_delete() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let (_d, root) = bundle_dir(BUNDLE);
    lb(&emu, &root, &["deploy", "--auto-approve"]).expect(0);
    // Rename the instance (a replace) and drop the job (a delete).
    let text = std::fs::read_to_string(root.join("databricks.yml")).expect("read");
    let jobs_start = text.find("  jobs:").expect("jobs");
    let jobs_end = text.find("  database_instances:").expect("instances");
    let edited = format!("{}{}", &text[..jobs_start], &text[jobs_end..])
        .replace("name: main-db", "name: main-db-2");
    std::fs::write(root.join("databricks.yml"), edited).expect("write");
    let plan = lb(&emu, &root, &["-o", "json", "plan"]).expect(0).json();
    let count = |a: &str| {
        plan["resource_changes"]
            .as_array()
            .expect("changes")
            .iter()
            .filter(|c| {
                let actions: Vec<&str> = c["actions"]
                    .as_array()
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match a {
                    "replace" => actions == ["delete", "create"],
                    _ => actions == ["delete"],
                }
            })
            .count()
    };
    let (deletes, replaces) = (count("delete"), count("replace"));
    assert!(deletes >= 1 && replaces >= 1, "{plan}");
    let refused = lb(&emu, &root, &["deploy"]).expect(1);
    assert!(
        refused.stderr.contains(&format!(
            "deploy would delete {deletes} and replace {replaces} resource(s)"
        )),
        "{}",
        refused.stderr
    );
}

// ---------------------------------------------------------------------------
// 3. printed hints run as printed

#[test]
fn the_saved_plan_hint_carries_every_flag_and_runs() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let (dir, _root) = bundle_dir(JOBS_ONLY);
    // Relative -C, so the hint is run from the same working directory.
    let out = output(
        emu.lakebundle()
            .current_dir(dir.path())
            .args([
                "-C",
                "bundle",
                "--local",
                "-t",
                "prod",
                "--var",
                "suffix=a b",
            ])
            .args(["plan", "--out", "p.json"]),
    )
    .expect(0);
    let cmd = printed_command(&out.stderr, "apply it with");
    assert_eq!(
        cmd,
        "lakebundle -C bundle --local -t prod --var 'suffix=a b' deploy --plan p.json"
    );
    run_printed(&emu, dir.path(), &cmd).expect(0);
    // The --local workspace got the job, named with the variable.
    let summary = output(
        emu.lakebundle()
            .current_dir(dir.path())
            .args(["--local", "-t", "prod", "--var", "suffix=a b", "-o", "json"])
            .args(["summary", "-C", "bundle"]),
    )
    .expect(0)
    .json();
    let job = &summary["resources"][0];
    assert_eq!(job["deployed"], true, "{summary}");
    assert_eq!(job["name"], "nightly-a b", "{summary}");
}

#[test]
fn bundle_flags_work_before_and_after_the_subcommand() {
    let (_d, root) = bundle_dir(JOBS_ONLY);
    let root_s = root.to_str().expect("utf-8");
    let before = offline(&[
        "-C", root_s, "-t", "prod", "--var", "suffix=b", "-o", "json", "validate",
    ])
    .expect(0)
    .json();
    let after = offline(&[
        "validate", "-C", root_s, "-t", "prod", "--var", "suffix=b", "-o", "json",
    ])
    .expect(0)
    .json();
    assert_eq!(before, after);
    assert_eq!(
        before["resources"]["jobs"]["nightly"]["name"], "nightly-b",
        "{before}"
    );
}

// ---------------------------------------------------------------------------
// 4. messages and help

#[test]
fn run_and_credential_say_what_is_wrong_with_the_key() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let (_d, root) = bundle_dir(BUNDLE);
    let not_runnable = lb(&emu, &root, &["run", "main_db"]).expect(1);
    assert!(
        not_runnable
            .stderr
            .contains("resources.database_instances.main_db is a database instance; `run` works on synced tables, jobs, apps and pipelines"),
        "{}",
        not_runnable.stderr
    );
    let typo = lb(&emu, &root, &["run", "nigthly"]).expect(1);
    assert!(
        typo.stderr.contains("did you mean `nightly`?"),
        "{}",
        typo.stderr
    );

    let wrong_kind = lb(&emu, &root, &["credential", "nightly"]).expect(1);
    assert!(
        wrong_kind
            .stderr
            .contains("resources.jobs.nightly is a job, not a database instance"),
        "{}",
        wrong_kind.stderr
    );
    let not_deployed = lb(&emu, &root, &["-t", "prod", "credential", "main_db"]).expect(1);
    assert!(
        not_deployed.stderr.contains("is not deployed"),
        "{}",
        not_deployed.stderr
    );
    let deploy = printed_command(&not_deployed.stderr, "deploy it first");
    assert!(deploy.ends_with("-t prod deploy"), "{deploy}");

    lb(&emu, &root, &["deploy", "--auto-approve"]).expect(0);
    let unknown = lb(&emu, &root, &["psql", "main-dbb"]).expect(1);
    assert!(
        unknown.stderr.contains("no database instance \"main-dbb\""),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("did you mean") && unknown.stderr.contains("`main-db`"),
        "{}",
        unknown.stderr
    );
    assert!(
        !unknown.stderr.contains("404"),
        "no raw 404: {}",
        unknown.stderr
    );

    // Without a bundle: the workspace's instances are the candidates.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let bare = output(
        emu.lakebundle()
            .current_dir(elsewhere.path())
            .env_remove("DATABRICKS_BUNDLE_ROOT")
            .args(["credential", "main_db"]),
    )
    .expect(1);
    assert!(
        bare.stderr
            .contains("no database instance \"main_db\" in the workspace"),
        "{}",
        bare.stderr
    );
    assert!(
        bare.stderr.contains("did you mean `main-db`?"),
        "{}",
        bare.stderr
    );
}

#[test]
fn every_flag_has_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() {
                missing.push(format!("{path} --{id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(
        &lakebundle::cli::args::Cli::command(),
        "lakebundle",
        &mut missing,
    );
    assert!(missing.is_empty(), "flags without help: {missing:?}");
}

#[test]
fn each_command_offers_only_its_flags() {
    for cmd in [
        &["schema", "--help"][..],
        &["emulator", "serve", "--help"],
        &["emulator", "down", "--help"],
    ] {
        let help = offline(cmd).expect(0).stdout;
        for flag in ["--target", "--var", "--local", "--profile", "--dir"] {
            assert!(!help.contains(flag), "{cmd:?} offers {flag}:\n{help}");
        }
    }
    let plan = offline(&["plan", "--help"]).expect(0).stdout;
    for flag in [
        "--target",
        "--var",
        "--local",
        "--profile",
        "--dir",
        "--out",
    ] {
        assert!(plan.contains(flag), "plan offers {flag}:\n{plan}");
    }
    let wrong = offline(&["-t", "dev", "schema"]).expect(1);
    assert!(
        wrong
            .stderr
            .contains("does not apply to `lakebundle schema`"),
        "{}",
        wrong.stderr
    );
    offline(&["schema", "-t", "dev"]).expect(1);
    offline(&["emulator", "down", "--local"]).expect(1);
    let md = offline(&["-o", "markdown", "validate"]).expect(1);
    assert!(
        md.stderr.contains("not supported by `lakebundle validate`"),
        "{}",
        md.stderr
    );
    offline(&["summary", "-o", "markdown"]).expect(1);
}

#[test]
fn graph_dot_has_one_edge_per_pair() {
    let b = TestBundle::production();
    let root = b.root.to_str().expect("utf-8");
    let dot = offline(&["-C", root, "-t", "prod", "graph", "--format", "dot"])
        .expect(0)
        .stdout;
    let pairs: Vec<&str> = dot
        .lines()
        .filter(|l| l.contains("->"))
        .map(|l| l.split(" [").next().unwrap_or(l))
        .collect();
    let mut unique = pairs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(pairs.len(), unique.len(), "{dot}");
    // The synced table's two references to the catalog are one labelled edge.
    assert!(
        dot.contains("${resources.database_catalogs.my_cat.name}, ${resources.database_catalogs.my_cat.database_name}"),
        "{dot}"
    );
}

// ---------------------------------------------------------------------------
// 5. the deployment lock

#[test]
fn a_lock_left_by_kill_9_names_its_dead_holder_and_the_takeover_command() {
    // A slow instance keeps the deploy (and its lock) busy until the kill.
    let emu = Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "3000"]);
    let api = Api::new(&emu);
    let b = TestBundle::production();
    let summary = run(&emu, &b, &["-o", "json", "summary"]).expect(0);
    let ws: Value = serde_json::from_str(&summary.stdout).expect("summary JSON");
    let lock = format!(
        "{}/deploy.lock",
        ws["workspace"]["state_path"].as_str().expect("state_path")
    );
    let mut child = spawn(&emu, &b, &["deploy", "--auto-approve"]);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while api
        .get("/api/2.0/workspace/get-status", &[("path", lock.clone())])
        .is_none()
    {
        assert!(Instant::now() < deadline, "the deploy never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    // The lock file reads in the Databricks CLI's format, plus host and pid.
    let held = api
        .get(
            "/api/2.0/workspace/export",
            &[("path", lock.clone()), ("direct_download", "true".into())],
        )
        .expect("lock file");
    for k in ["ID", "AcquisitionTime", "IsForced", "User"] {
        assert!(held.get(k).is_some(), "{k} in {held}");
    }
    assert_eq!(held["pid"], pid, "{held}");
    assert_eq!(held["operation"], "deploy", "{held}");

    let blocked = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    assert!(
        blocked.stderr.contains(&format!(
            "dead holder (pid {pid} no longer runs on this host)"
        )),
        "{}",
        blocked.stderr
    );
    assert!(blocked.stderr.contains("since "), "{}", blocked.stderr);
    let takeover = printed_command(&blocked.stderr, "take the lock over");
    let expected = format!("-C {} -t prod deploy --force-lock", b.root.display());
    assert!(takeover.ends_with(&expected), "{takeover}");
    // The printed command takes the lock over, deploys and releases it.
    let out = run_printed(&emu, &b.root, &format!("{takeover} --auto-approve")).expect(0);
    assert!(out.stdout.contains("Deploy complete"), "{}", out.stdout);
    assert!(api
        .get("/api/2.0/workspace/get-status", &[("path", lock)])
        .is_none());
}

// ---------------------------------------------------------------------------
// 6. stdout write errors

fn to_dev_full(cmd: &mut Command) -> Out {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    output(cmd.stdout(full))
}

#[test]
fn a_full_device_on_stdout_is_exit_1_with_a_message() {
    let b = TestBundle::production();
    let root = b.root.to_str().expect("utf-8");
    let offline_cmds: [&[&str]; 5] = [
        &["validate"],
        &["-o", "json", "validate"],
        &["graph"],
        &["graph", "--format", "dot"],
        &["schema"],
    ];
    for args in offline_cmds {
        let mut cmd = Command::new(Emulator::bin());
        if args[0] != "schema" {
            cmd.args(["-C", root, "-t", "prod"]);
        }
        let out = to_dev_full(cmd.args(args).env("NO_COLOR", "1"));
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("cannot write to standard output"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    let emu = Emulator::start_with(&["--no-postgres"]);
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    for args in [
        &["plan"][..],
        &["-o", "json", "plan"],
        &["summary"],
        &["-o", "json", "summary"],
        &["credential", "my_db"],
        &["-o", "json", "credential", "my_db"],
    ] {
        let out = to_dev_full(e2e_support::command(&emu, &b, args).stdin(Stdio::null()));
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("No space left on device"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_closed_pipe_is_quiet() {
    let b = TestBundle::production();
    let root = b.root.to_str().expect("utf-8");
    // The schema is far larger than a pipe buffer: the writer meets the
    // closed end whatever the timing.
    for args in [
        &["schema"][..],
        &["-C", root, "-t", "prod", "-o", "json", "validate"],
    ] {
        let mut child = Command::new(Emulator::bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} is quiet: {stderr}");
    }
}
