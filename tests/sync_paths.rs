//! Bundle files outside the bundle root and libraries that are build outputs,
//! driving the real binary against the emulator:
//! - `sync.paths: [../shared, .]` moves the sync root up: validate shows the
//!   workspace paths, deploy uploads `../shared` beside the bundle's own
//!   files and the job's notebook there resolves to its uploaded path;
//! - a path outside the sync root is a validate error;
//! - a library glob expands at deploy to one library per file; a missing
//!   library only warns at validate and fails the deploy.

mod common;
mod e2e_support;

use std::path::Path;

use common::Emulator;
use e2e_support::{run, Api, TestBundle};
use serde_json::Value;

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "50"])
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write file");
}

fn bundle_with(yaml: &str) -> TestBundle {
    let b = TestBundle::production();
    std::fs::write(b.yaml_path(), yaml).expect("write databricks.yml");
    b
}

/// Rendered diagnostics with line wrapping and gutters undone.
fn flat(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

const SHARED_YAML: &str = "bundle:\n  name: sp\n\nsync:\n  paths:\n    - ../shared\n    - .\n\nresources:\n  jobs:\n    shared_job:\n      name: shared-job\n      tasks:\n        - task_key: nb\n          notebook_task:\n            notebook_path: ../shared/x.py\n        - task_key: py\n          spark_python_task:\n            python_file: ./src/main.py\n\ntargets:\n  prod:\n    default: true\n";

fn shared_bundle() -> TestBundle {
    let b = bundle_with(SHARED_YAML);
    let top = b.root.parent().expect("bundle parent").to_path_buf();
    write(
        &top,
        "shared/x.py",
        "# Databricks notebook source\nprint('x')\n",
    );
    write(&top, "other/not_synced.py", "print('no')\n");
    write(&b.root, "src/main.py", "print('main')\n");
    b
}

fn task<'a>(tasks: &'a Value, key: &str) -> &'a Value {
    tasks
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["task_key"] == key)
        .unwrap_or_else(|| panic!("no task {key} in {tasks}"))
}

#[test]
fn validate_shows_workspace_paths_relative_to_a_sync_root_above_the_bundle() {
    let b = shared_bundle();
    let emu = emulator();
    let out = run(&emu, &b, &["validate", "-o", "json"]).expect(0);
    assert!(!out.stderr.contains("outside"), "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    let tasks = &v["resources"]["jobs"]["shared_job"]["tasks"];
    // Offline the user is unknown: `~` shows as the CLI's home, by reference.
    let files = "/Workspace/Users/${workspace.current_user.userName}/.bundle/sp/prod/files";
    assert_eq!(
        task(tasks, "nb")["notebook_task"]["notebook_path"],
        format!("{files}/shared/x")
    );
    assert_eq!(
        task(tasks, "py")["spark_python_task"]["python_file"],
        format!("{files}/bundle/src/main.py")
    );
}

#[test]
fn a_path_outside_the_sync_root_is_a_validate_error() {
    let b = bundle_with(&SHARED_YAML.replace("../shared/x.py", "../other/y.py"));
    let top = b.root.parent().expect("bundle parent").to_path_buf();
    write(&top, "shared/x.py", "# Databricks notebook source\n");
    write(&top, "other/y.py", "# Databricks notebook source\n");
    write(&b.root, "src/main.py", "print('main')\n");
    let emu = emulator();
    let out = run(&emu, &b, &["validate"]).expect(1);
    let err = flat(&out.stderr);
    assert!(
        err.contains("notebook_task.notebook_path: file \"../other/y.py\" is not uploaded by the sync: it is outside `sync.paths`")
            && err.contains("add its directory to `sync.paths`"),
        "{err}"
    );

    // Without `../other` in sync.paths nor the sync root reaching it.
    let b = bundle_with(
        &SHARED_YAML
            .replace("    - ../shared\n", "")
            .replace("../shared/x.py", "../other/y.py"),
    );
    write(
        b.root.parent().expect("parent"),
        "other/y.py",
        "# Databricks notebook source\n",
    );
    write(&b.root, "src/main.py", "print('main')\n");
    let out = run(&emu, &b, &["validate"]).expect(1);
    let err = flat(&out.stderr);
    assert!(
        err.contains("\"../other/y.py\" is outside the bundle root, so it is not synced"),
        "{err}"
    );
    assert!(
        err.contains("sync.paths"),
        "the help names sync.paths: {err}"
    );
}

#[test]
fn a_sync_root_above_the_git_repository_is_refused() {
    let b = shared_bundle();
    std::fs::create_dir_all(b.root.join(".git")).expect("mkdir .git");
    let emu = emulator();
    let out = run(&emu, &b, &["validate"]).expect(1);
    let err = flat(&out.stderr);
    assert!(
        err.contains("sync.paths entry \"../shared\" puts the sync root at")
            && err.contains("outside the git repository"),
        "{err}"
    );
}

#[test]
fn deploy_uploads_shared_files_relative_to_the_sync_root() {
    let b = shared_bundle();
    let emu = emulator();
    let api = Api::new(&emu);
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let jobs = api.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = api
        .get(
            "/api/2.2/jobs/get",
            &[("job_id", jobs[0]["job_id"].to_string())],
        )
        .expect("job");
    let tasks = &job["settings"]["tasks"];
    let notebook = task(tasks, "nb")["notebook_task"]["notebook_path"]
        .as_str()
        .expect("notebook_path")
        .to_string();
    let files = notebook
        .strip_suffix("/shared/x")
        .unwrap_or_else(|| panic!("notebook under files/shared: {notebook}"))
        .to_string();
    assert!(files.ends_with("/.bundle/sp/prod/files"), "{files}");
    assert_eq!(
        task(tasks, "py")["spark_python_task"]["python_file"],
        format!("{files}/bundle/src/main.py")
    );
    // The workspace holds the notebook (extension dropped) and the bundle's files.
    let status = api
        .get(
            "/api/2.0/workspace/get-status",
            &[("path", notebook.clone())],
        )
        .expect("shared notebook uploaded");
    assert_eq!(status["object_type"], "NOTEBOOK", "{status}");
    let listed: Vec<String> = api
        .list(
            "/api/2.0/workspace/list",
            "objects",
            &[("path", files.clone())],
        )
        .iter()
        .filter_map(|o| o["path"].as_str().map(str::to_string))
        .collect();
    assert!(
        listed.contains(&format!("{files}/shared")) && listed.contains(&format!("{files}/bundle")),
        "{listed:?}"
    );
    // Only the sync paths go up, not the rest of the common parent.
    assert!(!listed.iter().any(|p| p.ends_with("/other")), "{listed:?}");
    assert!(api
        .get(
            "/api/2.0/workspace/get-status",
            &[("path", format!("{files}/bundle/databricks.yml"))],
        )
        .is_some());
}

const WHEEL_YAML: &str = "bundle:\n  name: wheels\n\nresources:\n  jobs:\n    wheel_job:\n      name: wheel-job\n      tasks:\n        - task_key: main\n          spark_python_task:\n            python_file: ./src/main.py\n          libraries:\n            - whl: ./dist/*.whl\n\ntargets:\n  prod:\n    default: true\n";

#[test]
fn a_missing_wheel_warns_at_validate_and_fails_the_deploy() {
    let b = bundle_with(WHEEL_YAML);
    write(&b.root, "src/main.py", "print('main')\n");
    let emu = emulator();
    let out = run(&emu, &b, &["validate"]).expect(0);
    let err = flat(&out.stderr);
    assert!(
        err.contains("libraries.whl: no file matches \"./dist/*.whl\" yet; it must exist when you deploy (a build output?)"),
        "{err}"
    );
    // A plain path too.
    let plain = bundle_with(&WHEEL_YAML.replace("./dist/*.whl", "./dist/pkg-1.0-py3-none-any.whl"));
    write(&plain.root, "src/main.py", "print('main')\n");
    let out = run(&emu, &plain, &["validate"]).expect(0);
    assert!(
        flat(&out.stderr).contains("libraries.whl: file \"./dist/pkg-1.0-py3-none-any.whl\" not found yet; it must exist when you deploy"),
        "{}",
        out.stderr
    );

    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    assert!(
        flat(&out.stderr).contains("libraries.whl: no file matches \"./dist/*.whl\""),
        "{}",
        out.stderr
    );
    assert!(Api::new(&emu).jobs().is_empty(), "nothing deployed");
}

#[test]
fn a_wheel_glob_expands_at_deploy_to_one_library_per_file() {
    let b = bundle_with(WHEEL_YAML);
    write(&b.root, "src/main.py", "print('main')\n");
    write(&b.root, "dist/alpha-0.1-py3-none-any.whl", "wheel a");
    write(&b.root, "dist/beta-0.2-py3-none-any.whl", "wheel b");
    write(&b.root, "dist/notes.txt", "not a wheel");
    let emu = emulator();
    let api = Api::new(&emu);
    // validate shows the pattern relative to the root, as the CLI does.
    let out = run(&emu, &b, &["validate", "-o", "json"]).expect(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        v["resources"]["jobs"]["wheel_job"]["tasks"][0]["libraries"],
        serde_json::json!([{"whl": "dist/*.whl"}])
    );

    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let jobs = api.jobs();
    let job = api
        .get(
            "/api/2.2/jobs/get",
            &[("job_id", jobs[0]["job_id"].to_string())],
        )
        .expect("job");
    let libs: Vec<String> = job["settings"]["tasks"][0]["libraries"]
        .as_array()
        .expect("libraries")
        .iter()
        .map(|l| l["whl"].as_str().expect("whl").to_string())
        .collect();
    assert_eq!(libs.len(), 2, "{libs:?}");
    assert!(
        libs[0].ends_with("/files/dist/alpha-0.1-py3-none-any.whl")
            && libs[1].ends_with("/files/dist/beta-0.2-py3-none-any.whl"),
        "{libs:?}"
    );
    for lib in &libs {
        assert!(
            api.get("/api/2.0/workspace/get-status", &[("path", lib.clone())])
                .is_some(),
            "{lib} uploaded"
        );
    }
}
