//! End-to-end guards of the engine, driving the real binary:
//! - files the sync leaves out are never skipped silently (symlinks,
//!   `sync.include` outside the root, excluded files a resource needs);
//! - `lifecycle.prevent_destroy` and `lifecycle.deny_user_destroy` refuse
//!   plan, deploy (replacement) and destroy alike;
//! - an unresolvable deferred reference names itself and where it is written;
//! - what lakebundle writes on disk is readable by its owner only.

mod common;
mod e2e_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Emulator;
use e2e_support::{names, run, Api, Run, TestBundle, TARGET};
use serde_json::Value;

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "50"])
}

/// A private bundle directory holding `yaml` as its databricks.yml (the
/// production fixture's files stay; they are only synced).
fn bundle_with(yaml: &str) -> TestBundle {
    let b = TestBundle::production();
    std::fs::write(b.yaml_path(), yaml).expect("write databricks.yml");
    b
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write file");
}

fn symlink(target: &Path, link: &Path) {
    std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

/// Rendered diagnostics with their line wrapping and gutters undone, so
/// messages can be matched whole.
fn flat(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `databricks.yml:<line>` of the first line of the bundle's YAML containing `needle`.
fn yaml_line(b: &TestBundle, needle: &str) -> String {
    let text = std::fs::read_to_string(b.yaml_path()).expect("read yaml");
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in databricks.yml"));
    format!("databricks.yml:{}", line + 1)
}

fn job(key: &str, python_file: &str) -> String {
    format!(
        "    {key}:\n      name: {key}\n      tasks:\n        - task_key: main\n          spark_python_task:\n            python_file: {python_file}\n"
    )
}

// ---------------------------------------------------------------------------
// Sync: nothing is skipped silently

#[test]
fn validate_errors_on_needed_files_the_sync_will_not_upload_and_warns_on_the_rest() {
    let outside = tempfile::tempdir().expect("tempdir");
    write(outside.path(), "lib.py", "print('outside')\n");
    write(outside.path(), "appsrc/app.py", "print('app')\n");
    let yaml = format!(
        "bundle:\n  name: files\n\nsync:\n  include:\n    - {abs}/lib.py\n    - ../shared/*.py\n  exclude:\n    - scratch\n\nresources:\n  jobs:\n{linked}{escape}{excluded}  apps:\n    linked_app:\n      name: linked-app\n      source_code_path: ./appsrc\n\ntargets:\n  prod:\n    default: true\n",
        abs = outside.path().display(),
        linked = job("linked", "./src/linked.py"),
        escape = job("escape", "./src/escape.py"),
        excluded = job("excluded", "./scratch/tool.py"),
    );
    let b = bundle_with(&yaml);
    write(&b.root, "src/real.py", "print('real')\n");
    write(&b.root, "scratch/tool.py", "print('tool')\n");
    symlink(Path::new("real.py"), &b.root.join("src/linked.py"));
    symlink(
        &outside.path().join("lib.py"),
        &b.root.join("src/escape.py"),
    );
    symlink(&outside.path().join("appsrc"), &b.root.join("appsrc"));
    let emu = emulator();

    let out = run(&emu, &b, &["validate"]).expect(1);
    let err = &flat(&out.stderr);
    // The symlinked file pointing outside: an error at the job's field.
    assert!(
        err.contains("python_file: file \"./src/escape.py\" is not uploaded by the sync: it is a symlink and it points outside the bundle root"),
        "{err}"
    );
    assert!(err.contains(&yaml_line(&b, "./src/escape.py")), "{err}");
    // The app source that is a symlinked directory outside the root.
    assert!(
        err.contains(
            "source_code_path: directory \"./appsrc\" is not uploaded by the sync: it is a symlink"
        ),
        "{err}"
    );
    assert!(err.contains(&yaml_line(&b, "source_code_path")), "{err}");
    // A needed file that sync.exclude leaves out.
    assert!(
        err.contains(
            "\"./scratch/tool.py\" is not uploaded by the sync: it matches `sync.exclude`"
        ),
        "{err}"
    );
    // sync.include entries that match nothing: warnings at the entry.
    assert!(
        err.contains("/lib.py\" is an absolute path, so it syncs nothing"),
        "{err}"
    );
    assert!(err.contains(&yaml_line(&b, "/lib.py")), "{err}");
    assert!(
        err.contains(
            "sync.include entry \"../shared/*.py\" points outside the bundle root, so it syncs nothing"
        ),
        "{err}"
    );
    assert!(err.contains(&yaml_line(&b, "../shared")), "{err}");
    // A symlink resolving inside the root is followed: no complaint about it.
    assert!(!err.contains("linked.py"), "{err}");
}

#[test]
fn local_deploy_refuses_a_needed_symlink_outside_and_warns_on_unsynced_ones() {
    let outside = tempfile::tempdir().expect("tempdir");
    write(outside.path(), "lib.py", "print('outside')\n");
    let yaml = format!(
        "bundle:\n  name: files\n\nresources:\n  jobs:\n{}\ntargets:\n  prod:\n    default: true\n",
        job("escape", "./src/escape.py")
    );
    let b = bundle_with(&yaml);
    symlink(
        &outside.path().join("lib.py"),
        &b.root.join("src/escape.py"),
    );
    let emu = emulator();
    let local = |args: &[&str]| {
        let mut cmd = e2e_support::command(&emu, &b, args);
        cmd.env_remove("DATABRICKS_HOST")
            .env_remove("DATABRICKS_TOKEN");
        let out = cmd.output().expect("run lakebundle");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    // Refused before anything is created.
    let out = local(&["--local", "deploy", "--auto-approve"]).expect(1);
    assert!(
        flat(&out.stderr).contains("is not uploaded by the sync: it is a symlink"),
        "{}",
        out.stderr
    );
    assert!(!b
        .root
        .join(".lakebundle")
        .join(TARGET)
        .join("resources.json")
        .exists());

    // The job no longer needs it: the deploy goes on, and says what it skips.
    std::fs::write(
        b.yaml_path(),
        yaml.replace("./src/escape.py", "/Workspace/Shared/elsewhere.py"),
    )
    .expect("write yaml");
    let out = local(&["--local", "deploy", "--auto-approve"]).expect(0);
    assert!(
        flat(&out.stderr).contains(
            "src/escape.py is not synced: it is a symlink and it points outside the bundle root"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn symlinks_inside_the_root_upload_their_targets_content() {
    let yaml = format!(
        "bundle:\n  name: files\n\nresources:\n  jobs:\n{}\ntargets:\n  prod:\n    default: true\n",
        job("linked", "./src/linked.py")
    );
    let b = bundle_with(&yaml);
    write(&b.root, "lib/real.py", "print('real')\n");
    symlink(Path::new("../lib/real.py"), &b.root.join("src/linked.py"));
    symlink(Path::new("lib"), &b.root.join("lib_link"));
    let emu = emulator();
    let api = Api::new(&emu);
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(!out.stderr.contains("symlink"), "{}", out.stderr);
    let jobs = api.jobs();
    let job = api
        .get(
            "/api/2.2/jobs/get",
            &[("job_id", jobs[0]["job_id"].to_string())],
        )
        .expect("job");
    let remote = job["settings"]["tasks"][0]["spark_python_task"]["python_file"]
        .as_str()
        .expect("python_file")
        .to_string();
    assert!(remote.ends_with("/files/src/linked.py"), "{remote}");
    let export = |path: &str| {
        api.get(
            "/api/2.0/workspace/export",
            &[
                ("path", path.to_string()),
                ("direct_download", "true".to_string()),
            ],
        )
    };
    assert_eq!(
        export(&remote),
        Some(Value::String("print('real')\n".into())),
        "the link's path holds the target's content"
    );
    let via_dir = remote.replace("/src/linked.py", "/lib_link/real.py");
    assert!(export(&via_dir).is_some(), "{via_dir} uploaded");
}

// ---------------------------------------------------------------------------
// lifecycle: one guard for both spellings

fn guarded_yaml(setting: &str, name: &str) -> String {
    format!(
        "bundle:\n  name: guarded\n\nresources:\n  database_instances:\n    db:\n      name: {name}\n      capacity: CU_1\n      lifecycle:\n        {setting}: true\n\ntargets:\n  prod:\n    default: true\n"
    )
}

#[test]
fn destroy_protection_holds_for_plan_deploy_and_destroy_in_both_spellings() {
    let emu = emulator();
    let api = Api::new(&emu);
    for setting in ["prevent_destroy", "deny_user_destroy"] {
        let b = bundle_with(&guarded_yaml(setting, "guarded-db"));
        run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
        let refused = |out: Run, action: &str| {
            let want = format!(
                "resources.database_instances.db has lifecycle.{setting} set, but this plan would {action} it"
            );
            assert!(
                flat(&out.stderr).contains(&want),
                "{setting}: {want}\n{}",
                out.stderr
            );
        };

        // destroy
        refused(
            run(&emu, &b, &["destroy", "--auto-approve"]).expect(1),
            "destroy",
        );
        assert_eq!(names(&api.instances()), ["guarded-db"], "{setting}");

        // a replacing change: plan and deploy
        std::fs::write(b.yaml_path(), guarded_yaml(setting, "guarded-db-2")).expect("yaml");
        refused(run(&emu, &b, &["plan"]).expect(1), "replace");
        refused(
            run(&emu, &b, &["deploy", "--auto-approve"]).expect(1),
            "replace",
        );
        assert_eq!(names(&api.instances()), ["guarded-db"], "{setting}");

        // removed from the bundle: the applied protection still holds.
        std::fs::write(
            b.yaml_path(),
            "bundle:\n  name: guarded\n\ntargets:\n  prod:\n    default: true\n",
        )
        .expect("yaml");
        refused(
            run(&emu, &b, &["deploy", "--auto-approve"]).expect(1),
            "delete",
        );
        assert_eq!(names(&api.instances()), ["guarded-db"], "{setting}");

        // Lifting it in the bundle lets destroy through.
        std::fs::write(
            b.yaml_path(),
            guarded_yaml(setting, "guarded-db").replace(": true", ": false"),
        )
        .expect("yaml");
        run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
        assert!(api.instances().is_empty(), "{setting}");
    }
}

// ---------------------------------------------------------------------------
// Deferred references

#[test]
fn unresolvable_deferred_reference_names_itself_its_field_and_its_line() {
    let yaml = "bundle:\n  name: refs\n\nresources:\n  database_instances:\n    db:\n      name: refs-db\n      capacity: CU_1\n  jobs:\n    reader:\n      name: reader\n      tasks:\n        - task_key: main\n          notebook_task:\n            notebook_path: /Shared/n\n            base_parameters:\n              host: ${resources.database_instances.db.read_only_dns}\n\ntargets:\n  prod:\n    default: true\n";
    let b = bundle_with(yaml);
    let emu = emulator();
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    let all = flat(&format!("{}{}", out.stdout, out.stderr));
    assert!(
        all.contains("cannot resolve ${resources.database_instances.db.read_only_dns} used in resources.jobs.reader.tasks[0].notebook_task.base_parameters.host"),
        "{all}"
    );
    assert!(all.contains(&yaml_line(&b, "read_only_dns")), "{all}");
    assert!(
        all.contains("resources.database_instances.db has no value `read_only_dns`"),
        "{all}"
    );
}

// ---------------------------------------------------------------------------
// Modes on disk

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn state_manifest_and_plans_are_owner_only() {
    let b = TestBundle::production();
    let emu = emulator();
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let cache = b.root.join(".lakebundle");
    let dir = cache.join(TARGET);
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&dir), 0o700);
    for file in ["resources.json", "wal.jsonl", "files.json"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let plan = b.root.join("out/plan.json");
    run(
        &emu,
        &b,
        &["plan", "--out", plan.to_str().expect("utf-8 path")],
    )
    .expect(0);
    assert_eq!(mode(&plan), 0o600);
    assert_eq!(mode(plan.parent().expect("dir")), 0o700);
}
