//! Bundle scripts with the real binary: `experimental.scripts` hooks around a
//! `--local deploy` (order, environment, a failing hook stopping the deploy
//! before any resource exists), custom `scripts` run by `run NAME` with their
//! exit code, and warnings naming settings lakebundle ignores.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Emulator;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A bundle directory with `yaml` as its databricks.yml.
fn bundle(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bundle");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("databricks.yml"), yaml).expect("write databricks.yml");
    (dir, root)
}

/// `lakebundle -C root args` with `LAKEBUNDLE_HOME` at `home` and no other
/// workspace configured; `env` added.
fn lakebundle(root: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(Emulator::bin());
    cmd.arg("-C")
        .arg(root)
        .args(args)
        .env_remove("DATABRICKS_HOST")
        .env_remove("DATABRICKS_TOKEN")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env_remove("DATABRICKS_BUNDLE_TARGET")
        .env_remove("DATABRICKS_BUNDLE_RESTRICTED_CODE_EXECUTION")
        .env("DATABRICKS_CONFIG_FILE", root.join("no-databrickscfg"))
        .env("LAKEBUNDLE_HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run lakebundle");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Each hook appends its name to hooks.log (in the bundle root, its working
/// directory) and prints what it sees of the workspace.
const HOOKS: &str = r#"bundle:
  name: hooked

experimental:
  scripts:
    preinit: "echo preinit >> hooks.log; echo preinit-stdout; echo preinit-stderr >&2"
    postinit: "echo postinit >> hooks.log; echo \"postinit host=$DATABRICKS_HOST token=${DATABRICKS_TOKEN:+present}\""
    prebuild: "echo prebuild >> hooks.log"
    postbuild: "echo postbuild >> hooks.log"
    predeploy: "echo predeploy >> hooks.log; exit $PREDEPLOY_EXIT"
    postdeploy: "echo postdeploy >> hooks.log; printf 'postdeploy without newline'"

resources:
  jobs:
    nightly:
      name: nightly
      tasks:
        - task_key: t
          notebook_task:
            notebook_path: /Workspace/Shared/nightly
"#;

fn log(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn state_has_job(root: &Path) -> bool {
    // The local state cache of the default target.
    std::fs::read_to_string(root.join(".lakebundle/default/resources.json"))
        .is_ok_and(|t| t.contains("nightly"))
}

#[test]
fn hooks_run_in_order_around_a_local_deploy_with_the_workspace_env() {
    let (_dir, root) = bundle(HOOKS);
    let home = tempfile::tempdir().expect("home");
    let out = lakebundle(
        &root,
        home.path(),
        &["--local", "deploy", "--auto-approve"],
        &[("PREDEPLOY_EXIT", "0")],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        log(&root),
        [
            "preinit",
            "postinit",
            "prebuild",
            "postbuild",
            "predeploy",
            "postdeploy"
        ]
    );
    // Announced, stdout before stderr, all on our stderr; a last line
    // without a newline still ends one.
    let e = &out.stderr;
    let at = |s: &str| e.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{e}"));
    assert!(at("Executing 'preinit' script") < at("preinit-stdout"));
    assert!(at("preinit-stdout") < at("preinit-stderr"));
    assert!(at("preinit-stderr") < at("Executing 'postinit' script"));
    assert!(e.contains("postdeploy without newline\n"), "{e}");
    assert!(!out.stdout.contains("preinit-stdout"), "{}", out.stdout);
    // postinit sees the local workspace, with its token in the environment only.
    assert!(e.contains("postinit host=http://127.0.0.1:"), "{e}");
    assert!(e.contains("token=present"), "{e}");
    // predeploy runs before the resources are created, postdeploy after.
    assert!(at("Executing 'predeploy' script") < at("resources.jobs.nightly: created"));
    assert!(at("resources.jobs.nightly: created") < at("Executing 'postdeploy' script"));
    assert!(state_has_job(&root));
}

#[test]
fn a_failing_predeploy_stops_the_deploy_before_any_resource_is_created() {
    let (_dir, root) = bundle(HOOKS);
    let home = tempfile::tempdir().expect("home");
    let out = lakebundle(
        &root,
        home.path(),
        &["--local", "deploy", "--auto-approve"],
        &[("PREDEPLOY_EXIT", "7")],
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("the `predeploy` script failed with exit code 7"),
        "{}",
        out.stderr
    );
    assert_eq!(
        log(&root),
        ["preinit", "postinit", "prebuild", "postbuild", "predeploy"]
    );
    assert!(!out.stderr.contains("creating"), "{}", out.stderr);
    assert!(!state_has_job(&root), "a resource was recorded");
    // Nothing was created: the next plan still adds the job.
    let plan = lakebundle(&root, home.path(), &["--local", "plan"], &[]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("Plan: 1 to add"),
        "{}\n{}",
        plan.stdout,
        plan.stderr
    );
}

#[test]
fn validate_runs_the_init_hooks_and_fails_with_a_failing_one() {
    let (_dir, root) = bundle(&HOOKS.replace("echo preinit >> hooks.log;", "exit 3;"));
    let home = tempfile::tempdir().expect("home");
    let out = lakebundle(&root, home.path(), &["validate"], &[]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("the `preinit` script failed with exit code 3"),
        "{}",
        out.stderr
    );
    let (_dir, root) = bundle(HOOKS);
    let out = lakebundle(&root, home.path(), &["validate"], &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(log(&root), ["preinit", "postinit"]);
    // Restricted execution refuses to run any hook.
    let out = lakebundle(
        &root,
        home.path(),
        &["validate"],
        &[("DATABRICKS_BUNDLE_RESTRICTED_CODE_EXECUTION", "1")],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("running scripts is not allowed"),
        "{}",
        out.stderr
    );
    assert_eq!(log(&root), ["preinit", "postinit"]);
}

const CUSTOM: &str = r#"bundle:
  name: custom

variables:
  region:
    default: eu-west-1

scripts:
  show:
    env:
      REGION: ${var.region}
      DATABRICKS_BUNDLE_TARGET: from-env-section
    content: |
      echo "region=$REGION target=$DATABRICKS_BUNDLE_TARGET host=$DATABRICKS_HOST cwd=$(pwd)"
      exit $SCRIPT_EXIT
"#;

#[test]
fn run_name_runs_a_custom_script_with_its_env_and_exit_code() {
    let (_dir, root) = bundle(CUSTOM);
    let home = tempfile::tempdir().expect("home");
    let out = lakebundle(
        &root,
        home.path(),
        &["--local", "run", "show"],
        &[("SCRIPT_EXIT", "42")],
    );
    assert_eq!(out.code, 42, "{}\n{}", out.stdout, out.stderr);
    let root_shown = root.canonicalize().expect("canonical root");
    assert!(
        out.stdout
            .contains("region=eu-west-1 target=from-env-section host=http://127.0.0.1:")
            && out
                .stdout
                .contains(&format!("cwd={}", root_shown.display())),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let ok = lakebundle(
        &root,
        home.path(),
        &["--local", "run", "show"],
        &[("SCRIPT_EXIT", "0")],
    );
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
}

#[test]
fn script_content_with_interpolation_and_bad_env_refs_are_errors_with_lines() {
    let yaml = r#"bundle:
  name: bad

resources:
  jobs:
    dup:
      name: dup

scripts:
  one:
    content: "echo ${FOO}"
  two:
    env:
      ID: ${resources.jobs.dup.id}
    content: echo "$ID"
  dup:
    content: echo hi
  empty:
    content: ""
"#;
    let (_dir, root) = bundle(yaml);
    let home = tempfile::tempdir().expect("home");
    let out = lakebundle(&root, home.path(), &["validate"], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let e = &out.stderr;
    for needle in [
        "Found ${FOO} in script one.content",
        "databricks.yml:11:",
        "${resources.jobs.dup.id} cannot be used in scripts.two.env.ID",
        "databricks.yml:14:",
        "multiple resources or scripts have been defined with the same key: dup",
        "Script empty has no content",
    ] {
        assert!(e.contains(needle), "no {needle:?} in\n{e}");
    }
}

#[test]
fn ignored_settings_are_warned_by_name_with_their_line() {
    let yaml = r#"bundle:
  name: ignored
  uuid: 6a1f-harmless
  compute_id: 0101-cluster

experimental:
  pydabs:
    enabled: true

workspace:
  auth_type: pat

presets:
  source_linked_deployment: true
"#;
    let (_dir, root) = bundle(yaml);
    let home = tempfile::tempdir().expect("home");
    let out = lakebundle(&root, home.path(), &["validate"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let e = &out.stderr;
    for (name, line) in [
        ("bundle.compute_id", 4),
        ("experimental.pydabs", 7),
        ("workspace.auth_type", 11),
        ("presets.source_linked_deployment", 14),
    ] {
        assert!(
            e.contains(&format!(
                "`{name}` is not supported by lakebundle yet and is ignored"
            )) && e.contains(&format!("databricks.yml:{line}:")),
            "{name} at line {line} not warned in\n{e}"
        );
    }
    assert!(
        !e.contains("`bundle.uuid`"),
        "bundle.uuid is harmless metadata:\n{e}"
    );
    assert!(out.stdout.contains("with 4 warnings"), "{}", out.stdout);
    // The same warnings with a workspace command.
    let plan = lakebundle(&root, home.path(), &["--local", "plan"], &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stderr
            .contains("`workspace.auth_type` is not supported by lakebundle yet and is ignored"),
        "{}",
        plan.stderr
    );
}
