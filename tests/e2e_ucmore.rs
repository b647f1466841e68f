//! End-to-end: Unity Catalog external locations and UC secrets (and job runs) through the real
//! binary against a fresh emulator: deploy, no-op plan, in-place updates, replacements on the
//! immutable fields, the secret value never in plan/state/output, destroy leaving nothing.

mod common;
mod e2e_support;

use common::Emulator;
use e2e_support::{command, run, Api, Run, TestBundle};
use serde_json::{json, Value};

const UC: &str = "/api/2.1/unity-catalog";
const PASSWORD: &str = "s3cr3t-Hunter2-value";

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "200"])
}

/// `lakebundle ARGS` with the secret variable given through the environment.
fn run_with_secret(emu: &Emulator, b: &TestBundle, secret: &str, args: &[&str]) -> Run {
    let out = command(emu, b, args)
        .env("BUNDLE_VAR_db_password", secret)
        .output()
        .expect("run lakebundle");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn plan_json(emu: &Emulator, b: &TestBundle, secret: &str) -> Value {
    let out = run_with_secret(emu, b, secret, &["-o", "json", "plan"]).expect(0);
    assert!(!out.stdout.contains(secret), "secret in the plan");
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

fn actions_of(plan: &Value, addr: &str) -> Value {
    plan["resource_changes"]
        .as_array()
        .and_then(|rc| rc.iter().find(|c| c["address"] == addr))
        .map(|c| c["actions"].clone())
        .unwrap_or(Value::Null)
}

fn get(api: &Api, path: &str) -> Option<Value> {
    api.get(&format!("{UC}{path}"), &[])
}

fn grants(api: &Api, securable: &str, full_name: &str) -> Value {
    api.get(&format!("{UC}/permissions/{securable}/{full_name}"), &[])
        .map(|v| v["privilege_assignments"].clone())
        .unwrap_or(Value::Null)
}

fn state_text(b: &TestBundle) -> String {
    b.state().to_string()
}

#[test]
fn external_locations_and_secrets_lifecycle() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_ucmore");

    // Deploy: the location, a volume under it (its URL by reference), the secret with its value.
    let out = run_with_secret(&emu, &b, PASSWORD, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 5 to add, 0 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(PASSWORD), "secret in the deploy output");
    }
    // `validate -o json` prints the resolved bundle: the value as its digest.
    let validated = run_with_secret(&emu, &b, PASSWORD, &["validate", "-o", "json"]).expect(0);
    assert!(
        !validated.stdout.contains(PASSWORD) && validated.stdout.contains("(sensitive)"),
        "secret in validate -o json:\n{}",
        validated.stdout
    );
    let loc = get(&api, "/external-locations/landing_zone").expect("external location");
    assert_eq!(loc["url"], "s3://ucmore-bucket/landing");
    assert_eq!(loc["credential_name"], "lake-credential");
    assert_eq!(loc["comment"], "raw drops");
    assert_eq!(
        grants(&api, "external_location", "landing_zone"),
        json!([{"principal": "loaders", "privileges": ["READ_FILES", "WRITE_FILES"]}])
    );
    let vol = get(&api, "/volumes/ucmore_app.conf.drops").expect("volume");
    assert_eq!(vol["storage_location"], "s3://ucmore-bucket/landing/drops");
    let secret = api
        .get(
            &format!("{UC}/secrets/ucmore_app.conf.db_password"),
            &[("include_value", "true".into())],
        )
        .expect("secret");
    assert_eq!(secret["effective_value"], PASSWORD);
    assert_eq!(secret["comment"], "password of the app user");
    assert_eq!(
        grants(&api, "secret", "ucmore_app.conf.db_password"),
        json!([{"principal": "app-runners", "privileges": ["MANAGE"]}])
    );
    assert_eq!(
        b.state_id("resources.external_locations.landing")
            .as_deref(),
        Some("landing_zone")
    );
    assert_eq!(
        b.state_id("resources.secrets.db_password").as_deref(),
        Some("ucmore_app.conf.db_password")
    );
    assert!(!state_text(&b).contains(PASSWORD), "secret in the state");
    assert!(state_text(&b).contains("(sensitive) sha256:"));

    // Nothing changed: a no-op (name lower-cased, value compared by digest).
    let out = run_with_secret(&emu, &b, PASSWORD, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // A new secret value is an in-place update, shown as sensitive only.
    let new_password = "an0ther-Secret-value";
    let plan = plan_json(&emu, &b, new_password);
    assert_eq!(
        actions_of(&plan, "resources.secrets.db_password"),
        json!(["update"])
    );
    let out = run_with_secret(&emu, &b, new_password, &["plan"]).expect(0);
    assert!(out.stdout.contains("(sensitive)"), "{}", out.stdout);
    assert!(!out.stdout.contains(new_password) && !out.stdout.contains(PASSWORD));
    run_with_secret(&emu, &b, new_password, &["deploy", "--auto-approve"]).expect(0);
    let secret = api
        .get(
            &format!("{UC}/secrets/ucmore_app.conf.db_password"),
            &[("include_value", "true".into())],
        )
        .expect("secret");
    assert_eq!(secret["effective_value"], new_password);
    assert!(!state_text(&b).contains(new_password));

    // Location comment and read_only change in place; grants converge.
    b.edit("comment: raw drops", "comment: raw drops v2");
    b.edit("read_only: false", "read_only: true");
    let plan = plan_json(&emu, &b, new_password);
    assert_eq!(
        actions_of(&plan, "resources.external_locations.landing"),
        json!(["update"])
    );
    run_with_secret(&emu, &b, new_password, &["deploy", "--auto-approve"]).expect(0);
    let loc = get(&api, "/external-locations/landing_zone").expect("external location");
    assert_eq!(loc["comment"], "raw drops v2");
    assert_eq!(loc["read_only"], true);

    // A new credential recreates the location (the CLI's rule), not an update.
    b.edit(
        "credential_name: lake-credential",
        "credential_name: lake-credential-2",
    );
    let plan = plan_json(&emu, &b, new_password);
    assert_eq!(
        actions_of(&plan, "resources.external_locations.landing"),
        json!(["delete", "create"])
    );

    // The secret's comment changes in place, with the value left alone.
    b.edit("comment: password of the app user", "comment: rotated");
    let plan = plan_json(&emu, &b, new_password);
    assert_eq!(
        actions_of(&plan, "resources.secrets.db_password"),
        json!(["update"])
    );
    run_with_secret(&emu, &b, new_password, &["deploy", "--auto-approve"]).expect(0);
    let loc = get(&api, "/external-locations/landing_zone").expect("recreated location");
    assert_eq!(loc["credential_name"], "lake-credential-2");
    let secret = api
        .get(
            &format!("{UC}/secrets/ucmore_app.conf.db_password"),
            &[("include_value", "true".into())],
        )
        .expect("secret");
    assert_eq!(secret["comment"], "rotated");
    assert_eq!(secret["effective_value"], new_password);
    let out = run_with_secret(&emu, &b, new_password, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // Destroy leaves nothing.
    run_with_secret(&emu, &b, new_password, &["destroy", "--auto-approve"]).expect(0);
    assert!(get(&api, "/external-locations/landing_zone").is_none());
    assert!(get(&api, "/secrets/ucmore_app.conf.db_password").is_none());
    assert!(get(&api, "/catalogs/ucmore_app").is_none());
}

#[test]
fn a_literal_secret_value_is_refused_at_its_line() {
    let emu = emulator();
    let b = TestBundle::fixture("e2e_ucmore");
    b.edit("value: ${var.db_password}", "value: plain-text-password");
    let out = run(&emu, &b, &["validate"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("resources.secrets.db_password.value is written as a literal"),
        "{all}"
    );
    assert!(all.contains("databricks.yml:"), "points at the file: {all}");
    assert!(all.contains("${var."), "says how to fix it: {all}");
}

fn run_of(api: &Api, run_id: &str) -> Option<Value> {
    api.get("/api/2.2/jobs/runs/get", &[("run_id", run_id.to_string())])
}

#[test]
fn job_runs_fire_wait_and_refire() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_job_runs");

    // Deploy creates the job, then fires the run and waits for its success.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    let job_id = b.state_id("resources.jobs.etl").expect("job in state");
    let first = b
        .state_id("resources.job_runs.backfill")
        .expect("run in state");
    let r = run_of(&api, &first).expect("run");
    assert_eq!(r["job_id"].to_string(), job_id);
    assert_eq!(r["state"]["result_state"], "SUCCESS");
    let params = r["job_parameters"].as_array().cloned().unwrap_or_default();
    assert!(
        params.contains(&json!({"name": "env", "default": "dev", "value": "prod"})),
        "{params:?}"
    );

    // Nothing changed: no new run (the resolved parameters are not drift).
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // A changed parameter fires a new run; the old one is deleted.
    b.edit("env: prod", "env: staging");
    let out = run(&emu, &b, &["-o", "json", "plan"]).expect(0);
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    assert_eq!(
        actions_of(&plan, "resources.job_runs.backfill"),
        json!(["delete", "create"])
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let second = b.state_id("resources.job_runs.backfill").expect("run");
    assert_ne!(first, second);
    assert!(
        run_of(&api, &first).is_none(),
        "the replaced run is deleted"
    );

    // on_bundle_deploy: every deploy fires again, even unchanged.
    b.edit(
        "      job_parameters:\n",
        "      lifecycle:\n        triggers:\n          - on_bundle_deploy: true\n      job_parameters:\n",
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let third = b.state_id("resources.job_runs.backfill").expect("run");
    assert_ne!(second, third);
    let out = run(&emu, &b, &["-o", "json", "plan"]).expect(0);
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    assert_eq!(
        actions_of(&plan, "resources.job_runs.backfill"),
        json!(["delete", "create"]),
        "an unchanged config fires again"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let fourth = b.state_id("resources.job_runs.backfill").expect("run");
    assert_ne!(third, fourth);

    // Taking the trigger out is an update that fires nothing.
    b.edit(
        "      lifecycle:\n        triggers:\n          - on_bundle_deploy: true\n",
        "",
    );
    let out = run(&emu, &b, &["-o", "json", "plan"]).expect(0);
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    assert_eq!(
        actions_of(&plan, "resources.job_runs.backfill"),
        json!(["update"])
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(
        b.state_id("resources.job_runs.backfill").as_deref(),
        Some(fourth.as_str())
    );
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // Destroy deletes the run and the job.
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(run_of(&api, &fourth).is_none());
    assert!(api.jobs().is_empty());
}

#[test]
fn a_trigger_with_prevent_destroy_is_refused() {
    let emu = emulator();
    let b = TestBundle::fixture("e2e_job_runs");
    b.edit(
        "      job_parameters:\n",
        "      lifecycle:\n        prevent_destroy: true\n        triggers:\n          - on_bundle_deploy: true\n      job_parameters:\n",
    );
    let out = run(&emu, &b, &["validate"]);
    assert_ne!(out.code, 0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("sets both triggers.on_bundle_deploy and prevent_destroy"),
        "{all}"
    );
}

#[test]
fn a_failed_job_run_fails_the_deploy_and_fires_again() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_job_runs_failed");

    // The run fails: the deploy fails, the job reading its outcome is not created.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("run did not succeed: FAILED"), "{all}");
    let first = b
        .state_id("resources.job_runs.once")
        .expect("the failed run is recorded");
    assert_eq!(
        run_of(&api, &first).expect("run")["state"]["result_state"],
        "FAILED"
    );
    assert!(b.state_id("resources.jobs.downstream").is_none());
    // Created but never ready: tainted, so the next plan replaces it.
    assert_eq!(
        b.state()["lakebundle"]["tainted"],
        json!(["resources.job_runs.once"]),
        "{}",
        state_text(&b)
    );

    // Not having succeeded is drift: the next plan fires it again.
    let out = run(&emu, &b, &["-o", "json", "plan"]).expect(0);
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    assert_eq!(
        actions_of(&plan, "resources.job_runs.once"),
        json!(["delete", "create"])
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    let second = b.state_id("resources.job_runs.once").expect("run");
    assert_ne!(first, second);
    assert!(run_of(&api, &first).is_none(), "the failed run was deleted");
}
