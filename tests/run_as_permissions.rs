//! `run_as` and the top-level `permissions`, end to end with the real binary:
//! what `validate -o json` shows, what a `--local` deploy sends (read back
//! from the workspace afterwards), the no-op plan after it, and the
//! diagnostics for mistakes (with file:line).

mod common;
mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Emulator;
use e2e_support::{Api, Run, TestBundle};
use serde_json::{json, Value};

const DEPLOYER: &str = "local-user@example.com";

/// `lakebundle -C <bundle> <args>` with no workspace configured.
fn offline(b: &TestBundle, args: &[&str]) -> Run {
    lakebundle(b, None, args)
}

/// `lakebundle` with `LAKEBUNDLE_HOME` at `home` (for `--local`), no other
/// workspace or auth configured.
fn lakebundle(b: &TestBundle, home: Option<&Path>, args: &[&str]) -> Run {
    let mut cmd = Command::new(Emulator::bin());
    cmd.arg("-C")
        .arg(&b.root)
        .args(args)
        .env_remove("DATABRICKS_HOST")
        .env_remove("DATABRICKS_TOKEN")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env_remove("DATABRICKS_BUNDLE_TARGET")
        .env("DATABRICKS_CONFIG_FILE", b.root.join("no-databrickscfg"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    match home {
        Some(h) => cmd.env("LAKEBUNDLE_HOME", h),
        None => cmd.env("LAKEBUNDLE_HOME", b.root.join(".no-home")),
    };
    let out = cmd.output().expect("run lakebundle");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// Diagnostics text with the renderer's wrapping and gutters undone.
fn flat(s: &str) -> String {
    s.lines()
        .map(|l| l.trim_start_matches([' ', '│', '×', '⚠', '·', '╭', '├', '╰', '─', '▶']))
        .collect::<Vec<_>>()
        .join(" ")
}

fn write_bundle(yaml: &str) -> TestBundle {
    let b = TestBundle::fixture("run_as_jobs");
    std::fs::write(b.yaml_path(), yaml).expect("write databricks.yml");
    b
}

/// The grants as `(principal, level)` pairs, sorted.
fn grants(list: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let who = ["user_name", "group_name", "service_principal_name"]
                .iter()
                .find_map(|p| e[*p].as_str().map(|v| format!("{p}={v}")))
                .unwrap_or_default();
            let level = e["level"]
                .as_str()
                .or_else(|| e["permission_level"].as_str())
                .or_else(|| e["all_permissions"][0]["permission_level"].as_str())
                .unwrap_or_default();
            (who, level.to_string())
        })
        .collect();
    out.sort();
    out
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn validate_shows_run_as_on_every_job_and_the_merged_permissions() {
    let b = TestBundle::fixture("run_as_jobs");
    let run = offline(&b, &["validate", "-o", "json"]).expect(0);
    let v = json_of(&run);
    // The target's empty `run_as:` keeps the bundle's.
    assert_eq!(v["run_as"], json!({"user_name": "etl-runner@example.com"}));
    let jobs = &v["resources"]["jobs"];
    assert_eq!(
        jobs["nightly"]["run_as"],
        json!({"user_name": "etl-runner@example.com"})
    );
    // A job's own run_as wins.
    assert_eq!(
        jobs["backfill"]["run_as"],
        json!({"service_principal_name": "6f0c1a52-backfill-sp"})
    );
    // Top-level levels mapped for jobs (CAN_RUN → CAN_MANAGE_RUN), the job's
    // duplicate collapsed to its highest level, and the deployer's owner
    // entry pending until a workspace is known.
    assert_eq!(
        grants(&jobs["nightly"]["permissions"]),
        pairs(&[
            ("user_name=auditor@example.com", "CAN_MANAGE_RUN"),
            ("group_name=analysts", "CAN_VIEW"),
            ("group_name=operators", "CAN_MANAGE_RUN"),
            ("user_name=platform-admin@example.com", "CAN_MANAGE"),
            ("user_name=${workspace.current_user.userName}", "IS_OWNER"),
        ])
    );
    assert_eq!(
        grants(&jobs["backfill"]["permissions"]),
        pairs(&[
            ("group_name=analysts", "CAN_VIEW"),
            ("group_name=operators", "CAN_MANAGE_RUN"),
            ("user_name=platform-admin@example.com", "CAN_MANAGE"),
            ("user_name=${workspace.current_user.userName}", "IS_OWNER"),
        ])
    );
    // The collapse is a warning at the repeated entry.
    let err = flat(&run.stderr);
    assert!(
        err.contains("lists `user_name: auditor@example.com` more than once")
            && run.stderr.contains("databricks.yml:32:"),
        "{}",
        run.stderr
    );

    // Another target's run_as replaces the bundle's for the jobs without one.
    let dev = json_of(&offline(&b, &["-t", "dev", "validate", "-o", "json"]).expect(0));
    assert_eq!(
        dev["run_as"],
        json!({"user_name": "dev-runner@example.com"})
    );
    assert_eq!(
        dev["resources"]["jobs"]["nightly"]["run_as"],
        json!({"user_name": "dev-runner@example.com"})
    );
    assert_eq!(
        dev["resources"]["jobs"]["backfill"]["run_as"],
        json!({"service_principal_name": "6f0c1a52-backfill-sp"})
    );
}

#[test]
fn apps_get_manage_for_the_deployer_and_a_warning_for_the_job_they_use() {
    let b = TestBundle::fixture("run_as_apps");
    let run = offline(&b, &["validate", "-o", "json"]).expect(0);
    let v = json_of(&run);
    let res = &v["resources"];
    assert_eq!(
        grants(&res["apps"]["reports"]["permissions"]),
        pairs(&[
            ("group_name=analysts", "CAN_USE"),
            ("user_name=${workspace.current_user.userName}", "CAN_MANAGE"),
        ])
    );
    // The deployer's own top-level CAN_MANAGE becomes the job's owner.
    assert_eq!(
        grants(&res["jobs"]["export"]["permissions"]),
        pairs(&[
            ("group_name=analysts", "CAN_VIEW"),
            ("user_name=${workspace.current_user.userName}", "IS_OWNER"),
        ])
    );
    let err = flat(&run.stderr);
    assert!(
        err.contains("app `reports` references job `export`, which has permissions set")
            && err.contains(
                "service_principal_name: ${resources.apps.reports.service_principal_client_id}"
            )
            && run.stderr.contains("databricks.yml:23:7"),
        "{}",
        run.stderr
    );

    // Listing the app's service principal on the job silences the warning.
    b.edit(
        "          notebook_task:\n            notebook_path: /Workspace/Shared/export\n",
        "          notebook_task:\n            notebook_path: /Workspace/Shared/export\n      permissions:\n        - level: CAN_MANAGE_RUN\n          service_principal_name: ${resources.apps.reports.service_principal_client_id}\n",
    );
    let run = offline(&b, &["validate"]).expect(0);
    assert!(!run.stderr.contains("references job"), "{}", run.stderr);
}

#[test]
fn local_deploy_sends_run_as_and_permissions_then_plans_nothing() {
    let b = TestBundle::fixture("run_as_jobs");
    let home = tempfile::tempdir().expect("tempdir");
    let out = lakebundle(
        &b,
        Some(home.path()),
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    assert!(
        out.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // The plan of what is deployed now: nothing to do.
    let plan = lakebundle(
        &b,
        Some(home.path()),
        &["--local", "plan", "--detailed-exitcode"],
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let plan_json = lakebundle(&b, Some(home.path()), &["--local", "-o", "json", "plan"]).expect(0);
    let pj = json_of(&plan_json);
    for change in pj["resource_changes"].as_array().into_iter().flatten() {
        assert_eq!(change["actions"], json!(["no-op"]), "{change}");
    }

    // Read back from the workspace the local deploys used.
    let nightly = b
        .state_id("resources.jobs.nightly")
        .expect("nightly in state");
    let backfill = b
        .state_id("resources.jobs.backfill")
        .expect("backfill in state");
    let data_dir: PathBuf = home.path().join("local-workspace");
    let emu = Emulator::start_with(&["--no-postgres", "--data-dir", &data_dir.to_string_lossy()]);
    let api = Api::new(&emu);
    let job = api
        .get("/api/2.2/jobs/get", &[("job_id", nightly.clone())])
        .expect("nightly exists");
    assert_eq!(
        job["settings"]["run_as"],
        json!({"user_name": "etl-runner@example.com"}),
        "{job}"
    );
    assert_eq!(job["run_as_user_name"], "etl-runner@example.com");
    let job = api
        .get("/api/2.2/jobs/get", &[("job_id", backfill.clone())])
        .expect("backfill exists");
    assert_eq!(
        job["settings"]["run_as"],
        json!({"service_principal_name": "6f0c1a52-backfill-sp"})
    );
    let acl = api
        .get(&format!("/api/2.0/permissions/jobs/{nightly}"), &[])
        .expect("nightly permissions");
    let direct: Vec<Value> = acl["access_control_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["all_permissions"][0]["inherited"] == json!(false))
        .cloned()
        .collect();
    assert_eq!(
        grants(&Value::Array(direct)),
        pairs(&[
            ("user_name=auditor@example.com", "CAN_MANAGE_RUN"),
            ("group_name=analysts", "CAN_VIEW"),
            ("group_name=operators", "CAN_MANAGE_RUN"),
            ("user_name=platform-admin@example.com", "CAN_MANAGE"),
            (&format!("user_name={DEPLOYER}"), "IS_OWNER"),
        ])
    );
}

#[test]
fn run_as_mistakes_are_errors_with_their_location() {
    let base = "bundle:\n  name: bad\n\nresources:\n  jobs:\n    j:\n      name: j\n      tasks:\n        - task_key: t\n          notebook_task:\n            notebook_path: /Workspace/Shared/t\n";
    // Both identities.
    let b = write_bundle(&format!(
        "{base}\nrun_as:\n  user_name: a@example.com\n  service_principal_name: sp-1\n"
    ));
    let run = offline(&b, &["validate"]).expect(1);
    assert!(
        flat(&run.stderr)
            .contains("run_as cannot set both `user_name` and `service_principal_name`")
            && run.stderr.contains("databricks.yml:14:"),
        "{}",
        run.stderr
    );
    // An empty identity is no identity.
    let b = write_bundle(&format!("{base}\nrun_as:\n  user_name: \"\"\n"));
    let run = offline(&b, &["validate"]).expect(1);
    assert!(
        flat(&run.stderr).contains("run_as must name exactly one identity")
            && run.stderr.contains("databricks.yml:14:"),
        "{}",
        run.stderr
    );
    // `run_as:` left empty at the top level.
    let b = write_bundle(&format!("{base}\nrun_as:\n"));
    let run = offline(&b, &["validate"]).expect(1);
    assert!(
        flat(&run.stderr).contains("run_as must name exactly one identity")
            && run.stderr.contains("databricks.yml:13:"),
        "{}",
        run.stderr
    );
    // A job's own run_as with two identities.
    let b = write_bundle(&format!(
        "{base}      run_as:\n        user_name: a@example.com\n        group_name: g\n"
    ));
    let run = offline(&b, &["validate"]).expect(1);
    assert!(
        flat(&run.stderr).contains("resources.jobs.j.run_as names more than one identity")
            && run.stderr.contains("databricks.yml:13:"),
        "{}",
        run.stderr
    );
    // A top-level permission level the kinds cannot map.
    let b = write_bundle(&format!(
        "{base}\npermissions:\n  - level: CAN_USE\n    group_name: g\n"
    ));
    let run = offline(&b, &["validate"]).expect(1);
    assert!(
        flat(&run.stderr).contains("`CAN_USE` is not a top-level permission level")
            && run.stderr.contains("databricks.yml:14:"),
        "{}",
        run.stderr
    );
}

#[test]
fn run_as_other_than_the_deployer_is_refused_for_apps() {
    let b = TestBundle::fixture("run_as_apps");
    b.edit(
        "bundle:\n  name: grants\n",
        "bundle:\n  name: grants\n\nrun_as:\n  service_principal_name: 5e1d-runner-sp\n",
    );
    let home = tempfile::tempdir().expect("tempdir");
    let run = lakebundle(&b, Some(home.path()), &["--local", "plan"]).expect(1);
    let err = flat(&run.stderr);
    assert!(
        err.contains("apps do not support a run_as identity different from the deploying identity")
            && err.contains(DEPLOYER)
            && err.contains("5e1d-runner-sp")
            && run.stderr.contains("databricks.yml:"),
        "{}",
        run.stderr
    );
    // The same identity as the deployer is fine.
    b.edit(
        "  service_principal_name: 5e1d-runner-sp\n",
        &format!("  user_name: {DEPLOYER}\n"),
    );
    lakebundle(&b, Some(home.path()), &["--local", "plan"]).expect(0);
}

#[test]
fn local_deploy_grants_the_app_and_its_job() {
    let b = TestBundle::fixture("run_as_apps");
    let home = tempfile::tempdir().expect("tempdir");
    let out = lakebundle(
        &b,
        Some(home.path()),
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    assert!(
        flat(&out.stderr).contains("app `reports` references job `export`"),
        "{}",
        out.stderr
    );
    let plan = lakebundle(
        &b,
        Some(home.path()),
        &["--local", "plan", "--detailed-exitcode"],
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);

    let job_id = b.state_id("resources.jobs.export").expect("job in state");
    let data_dir: PathBuf = home.path().join("local-workspace");
    let emu = Emulator::start_with(&["--no-postgres", "--data-dir", &data_dir.to_string_lossy()]);
    let api = Api::new(&emu);
    let direct = |path: &str| -> Value {
        let acl = api
            .get(path, &[])
            .unwrap_or_else(|| panic!("{path} exists"));
        Value::Array(
            acl["access_control_list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["all_permissions"][0]["inherited"] == json!(false))
                .cloned()
                .collect(),
        )
    };
    assert_eq!(
        grants(&direct("/api/2.0/permissions/apps/reports-app")),
        pairs(&[
            ("group_name=analysts", "CAN_USE"),
            (&format!("user_name={DEPLOYER}"), "CAN_MANAGE"),
        ])
    );
    assert_eq!(
        grants(&direct(&format!("/api/2.0/permissions/jobs/{job_id}"))),
        pairs(&[
            ("group_name=analysts", "CAN_VIEW"),
            (&format!("user_name={DEPLOYER}"), "IS_OWNER"),
        ])
    );
}

/// The top-level list must let the deployer manage the bundle, directly or
/// through one of its groups (the local workspace's user is in `admins`);
/// otherwise the CLI's warning names the deployer.
#[test]
fn top_level_permissions_warn_unless_the_deployer_or_its_group_manages() {
    let yaml = |manager: &str| {
        format!(
            "bundle:\n  name: groups\npermissions:\n  - level: CAN_VIEW\n    group_name: analysts\n{manager}resources:\n  jobs:\n    j:\n      name: j\n      tasks:\n        - task_key: t\n          notebook_task:\n            notebook_path: /Workspace/Shared/t\n"
        )
    };
    let warning = format!(
        "permissions section should include {DEPLOYER} or one of their groups with CAN_MANAGE permissions"
    );
    let cases = [
        ("", true),
        ("  - level: CAN_MANAGE\n    group_name: analysts\n", true),
        ("  - level: CAN_MANAGE\n    group_name: admins\n", false),
        (
            &format!("  - level: CAN_MANAGE\n    user_name: {DEPLOYER}\n") as &str,
            false,
        ),
    ];
    for (manager, warns) in cases {
        let b = write_bundle(&yaml(manager));
        let home = tempfile::tempdir().expect("tempdir");
        // The deployer and its groups come from the workspace: a plan knows them.
        let run = lakebundle(&b, Some(home.path()), &["--local", "plan"]).expect(0);
        assert_eq!(
            flat(&run.stderr).contains(&warning) || flat(&run.stdout).contains(&warning),
            warns,
            "{manager}\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// Jobs `reset` without `run_as` keeps the old identity (a service quirk):
/// removing `run_as` from the bundle must still make the job run as its
/// owner again, shown in the plan, and then plan nothing.
#[test]
fn removing_run_as_returns_the_job_to_its_owner() {
    let b = TestBundle::fixture("run_as_jobs");
    let home = tempfile::tempdir().expect("tempdir");
    lakebundle(
        &b,
        Some(home.path()),
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    let yaml = std::fs::read_to_string(b.yaml_path()).expect("read bundle");
    let without = yaml.replace("run_as:\n  user_name: ${var.runner}\n", "");
    assert_ne!(without, yaml, "fixture changed: top-level run_as not found");
    std::fs::write(b.yaml_path(), without).expect("write bundle");

    let plan = lakebundle(&b, Some(home.path()), &["--local", "-o", "json", "plan"]).expect(0);
    let pj = json_of(&plan);
    let nightly = pj["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["address"] == "resources.jobs.nightly")
        .cloned()
        .expect("nightly in plan");
    assert_eq!(nightly["actions"], json!(["update"]), "{nightly}");
    assert!(nightly.to_string().contains("run_as"), "{nightly}");

    lakebundle(
        &b,
        Some(home.path()),
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    let again = lakebundle(
        &b,
        Some(home.path()),
        &["--local", "plan", "--detailed-exitcode"],
    );
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);

    let id = b
        .state_id("resources.jobs.nightly")
        .expect("nightly in state");
    let data_dir: PathBuf = home.path().join("local-workspace");
    let emu = Emulator::start_with(&["--no-postgres", "--data-dir", &data_dir.to_string_lossy()]);
    let job = Api::new(&emu)
        .get("/api/2.2/jobs/get", &[("job_id", id)])
        .expect("nightly exists");
    assert_eq!(
        job["settings"]["run_as"],
        json!({"user_name": DEPLOYER}),
        "{job}"
    );
    assert_eq!(job["run_as_user_name"], DEPLOYER);
}

/// Quality monitors and dashboards that embed credentials run as their owner:
/// as in the official CLI, another `run_as` is an error at the resource.
#[test]
fn run_as_other_than_the_deployer_is_refused_for_monitors_and_embedding_dashboards() {
    let cases = [
        (
            "  quality_monitors:\n    m:\n      table_name: main.sales.orders\n      assets_dir: /Workspace/Shared/m\n      output_schema_name: main.sales\n      snapshot: {}\n",
            "quality_monitors do not support a run_as identity",
        ),
        (
            "  dashboards:\n    d:\n      display_name: d\n      warehouse_id: w\n      serialized_dashboard: '{}'\n      embed_credentials: true\n",
            "dashboards with embed_credentials set to true (`d`) do not support a run_as identity",
        ),
    ];
    for (resources, message) in cases {
        let b = write_bundle(&format!(
            "bundle:\n  name: owners\nrun_as:\n  service_principal_name: 5e1d-runner-sp\nresources:\n{resources}"
        ));
        let home = tempfile::tempdir().expect("tempdir");
        let run = lakebundle(&b, Some(home.path()), &["--local", "plan"]).expect(1);
        assert!(
            flat(&run.stderr).contains(message) && run.stderr.contains("databricks.yml:"),
            "{}",
            run.stderr
        );
    }
}
