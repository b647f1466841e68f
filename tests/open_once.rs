//! Opening a session (plan, deploy, ...) with the workspace named by the
//! environment: the current user is fetched first and the bundle loads once
//! with it. What that single load cannot know sends the command down the
//! two-load path, with the same results: `lookup` variables, a `preinit`
//! script that writes the bundle's files, and a bundle whose own errors must
//! come before an unreachable workspace.

mod common;
mod e2e_support;

use std::path::Path;
use std::process::Stdio;

use common::Emulator;
use serde_json::json;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let full = root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(full, text).expect("write");
    }
}

/// `lakebundle -C root ARGS` against the emulator (host and token from the
/// environment): exit code, stdout, stderr.
fn run(emu: &Emulator, root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = emu
        .lakebundle()
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run lakebundle");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DEV: &str = "bundle:
  name: once
include:
  - resources/*.yml
targets:
  dev:
    mode: development
    default: true
";

/// The one-load path: the development prefix carries the user's short name,
/// the root path the user's home, and the warnings are printed once.
#[test]
fn one_load_resolves_the_current_user_and_warns_once() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            ("databricks.yml", DEV),
            ("nb.py", "print(1)\n"),
            (
                "resources/jobs.yml",
                "resources:
  jobs:
    j:
      name: job-${workspace.current_user.short_name}
      tasks:
        - task_key: t
          notebook_task:
            notebook_path: ../nb.py
",
            ),
        ],
    );
    let (code, stdout, stderr) = run(&emu, dir.path(), &["plan", "-o", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("[dev local_user] job-local_user"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/Workspace/Users/local-user@example.com/.bundle/once/dev/files/nb"),
        "{stdout}"
    );
    assert_eq!(stderr.matches("is not a notebook").count(), 1, "{stderr}");
}

/// A `lookup` variable is resolved through the API and the bundle loaded
/// again with its value.
#[test]
fn lookup_variables_resolve_before_the_plan() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let api = e2e_support::Api::new(&emu);
    let created = api.post(
        "/api/2.2/jobs/create",
        &json!({ "name": "seed-job", "tasks": [
            { "task_key": "t", "notebook_task": { "notebook_path": "/Shared/x" } }
        ] }),
    );
    let seed = created["job_id"].to_string();
    assert!(seed.chars().all(|c| c.is_ascii_digit()), "{created}");
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[
            (
                "databricks.yml",
                &format!(
                    "{DEV}variables:
  seed:
    lookup:
      job: seed-job
"
                ),
            ),
            (
                "resources/jobs.yml",
                "resources:
  jobs:
    caller:
      name: caller
      tasks:
        - task_key: t
          run_job_task:
            job_id: ${var.seed}
",
            ),
        ],
    );
    let (code, stdout, stderr) = run(&emu, dir.path(), &["plan", "-o", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&seed), "job id {seed} in\n{stdout}");
    assert!(!stdout.contains("${var.seed}"), "{stdout}");
    assert!(stdout.contains("[dev local_user] caller"), "{stdout}");
}

/// A `preinit` script that writes an included file: the plan sees it.
#[test]
fn a_preinit_script_writing_the_bundle_is_seen_by_the_plan() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "mkdir -p resources; printf 'resources:\\n  jobs:\\n    extra:\\n      name: written-by-preinit\\n' > resources/extra.yml";
    write(
        dir.path(),
        &[(
            "databricks.yml",
            &format!("{DEV}experimental:\n  scripts:\n    preinit: \"{script}\"\n"),
        )],
    );
    let (code, stdout, stderr) = run(&emu, dir.path(), &["plan", "-o", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("[dev local_user] written-by-preinit"),
        "{stdout}\n{stderr}"
    );
}

/// With the workspace unreachable, a bundle's own errors are what is reported.
#[test]
fn bundle_errors_come_before_an_unreachable_workspace() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        &[(
            "databricks.yml",
            "bundle:\n  name: broken\nresources:\n  jobs:\n    j:\n      name: ${var.nope}\n",
        )],
    );
    // A port nothing listens on (the emulator's, after it stops).
    let mut emu = emu;
    let (code, _, stderr) = {
        let mut cmd = emu.lakebundle();
        emu.stop();
        let out = cmd
            .arg("-C")
            .arg(dir.path())
            .args(["plan"])
            .stdin(Stdio::null())
            .output()
            .expect("run lakebundle");
        (
            out.status.code().unwrap_or(-1),
            String::new(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(!stderr.contains("current user"), "{stderr}");
}
