//! End-to-end: the real binary against a fresh emulator per test (records-only
//! database instances; PostgreSQL end to end is covered elsewhere).
//!
//! 1. the seed's production bundle through deploy, no-op plan, update in
//!    place, rename (replace with dependents), destroy;
//! 2. drift made through the API shows in the plan with the remote value;
//! 3. a stale saved plan is refused;
//! 4. two concurrent deploys: one fails on the lock, naming the holder;
//! 7. snapshots of the text, JSON and markdown plans.

mod common;
mod e2e_support;

use std::time::{Duration, Instant};

use common::Emulator;
use e2e_support::{command, names, run, spawn, wait, Api, TestBundle};
use serde_json::{json, Value};

const INSTANCE: &str = "resources.database_instances.my_db";
const JOB: &str = "resources.jobs.sync_schedule";

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "200"])
}

/// Workspace paths of the bundle (from `summary -o json`, which needs no deploy).
fn workspace_paths(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "summary"]).expect(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("summary JSON");
    v["workspace"].clone()
}

fn plan_json(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "plan"]).expect(0);
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

fn actions_of(plan: &Value, addr: &str) -> Value {
    plan["resource_changes"]
        .as_array()
        .and_then(|rc| rc.iter().find(|c| c["address"] == addr))
        .map(|c| c["actions"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn production_bundle_lifecycle() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::production();

    // First deploy creates everything.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 5 to add, 0 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    assert_eq!(names(&api.instances()), ["my-instance"]);
    assert_eq!(names(&api.jobs()), ["sync-pipeline-schedule"]);
    assert_eq!(names(&api.apps()), ["my-lakebase-app"]);
    assert!(api.catalog("my_catalog").is_some());
    assert!(api
        .synced_table("my_catalog.my_database.customer_features")
        .is_some());
    // The job's pipeline id was filled from the synced table's output.
    let job_id = b.state_id(JOB).expect("job in state");
    let job = api
        .get("/api/2.2/jobs/get", &[("job_id", job_id.clone())])
        .expect("job exists");
    let pipeline = job["settings"]["tasks"][0]["pipeline_task"]["pipeline_id"]
        .as_str()
        .unwrap_or("");
    assert!(
        !pipeline.is_empty() && !pipeline.contains("${"),
        "pipeline id filled in: {job}"
    );

    // Nothing changed: no changes, exit 0 with --detailed-exitcode.
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // Capacity: an update in place.
    b.edit("capacity: CU_1", "capacity: CU_2");
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        out.stdout
            .contains(&format!("# {INSTANCE} will be updated in-place")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(r#"capacity = "CU_1" -> "CU_2""#),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let inst = api
        .get("/api/2.0/database/instances/my-instance", &[])
        .expect("instance");
    assert_eq!(inst["capacity"], "CU_2");
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // Rename the instance: a replace, and its dependents follow.
    b.edit("name: my-instance", "name: my-instance-2");
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        out.stdout
            .contains(&format!("# {INSTANCE} must be replaced")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("# forces replacement"),
        "{}",
        out.stdout
    );
    let plan = plan_json(&emu, &b);
    assert_eq!(actions_of(&plan, INSTANCE), json!(["delete", "create"]));
    assert_eq!(
        actions_of(&plan, "resources.database_catalogs.my_cat"),
        json!(["delete", "create"])
    );
    assert_eq!(
        actions_of(&plan, "resources.synced_database_tables.features_sync"),
        json!(["delete", "create"])
    );
    assert_ne!(actions_of(&plan, "resources.apps.my_app"), json!(["no-op"]));
    // Replacing an instance needs approval; without a terminal that is an error, not a hang.
    let out = run(&emu, &b, &["deploy"]).expect(1);
    assert!(out.stderr.contains("--auto-approve"), "{}", out.stderr);
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(names(&api.instances()), ["my-instance-2"]);
    let cat = api.catalog("my_catalog").expect("catalog recreated");
    assert_eq!(cat["database_instance_name"], "my-instance-2");
    let app = api.get("/api/2.0/apps/my-lakebase-app", &[]).expect("app");
    assert_eq!(
        app["resources"][0]["database"]["instance_name"],
        "my-instance-2"
    );
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // Destroy: the workspace is left with no resources.
    let out = run(&emu, &b, &["destroy"]).expect(1);
    assert!(
        out.stderr.contains("--auto-approve"),
        "destroy asks first: {}",
        out.stderr
    );
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(
        api.instances().is_empty(),
        "instances left: {:?}",
        names(&api.instances())
    );
    assert!(api.jobs().is_empty(), "jobs left: {:?}", names(&api.jobs()));
    assert!(api.apps().is_empty(), "apps left: {:?}", names(&api.apps()));
    assert!(api.catalog("my_catalog").is_none());
    assert!(api
        .synced_table("my_catalog.my_database.customer_features")
        .is_none());
    let ws = workspace_paths(&emu, &b);
    let lock = format!("{}/deploy.lock", ws["state_path"].as_str().unwrap_or(""));
    assert!(
        api.get("/api/2.0/workspace/get-status", &[("path", lock)])
            .is_none(),
        "lock removed"
    );
}

#[test]
fn drift_shows_the_remote_value_and_is_planned_back() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::production();
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let job_id: i64 = b
        .state_id(JOB)
        .and_then(|s| s.parse().ok())
        .expect("numeric job id");
    api.post(
        "/api/2.2/jobs/update",
        &json!({"job_id": job_id, "new_settings": {"name": "renamed-remotely"}}),
    );

    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        out.stdout.contains("changed outside lakebundle"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("renamed-remotely"), "{}", out.stdout);
    let plan = plan_json(&emu, &b);
    let change = plan["resource_changes"]
        .as_array()
        .and_then(|rc| rc.iter().find(|c| c["address"] == JOB))
        .cloned()
        .expect("job change");
    assert_eq!(change["actions"], json!(["update"]));
    let drift = change["drift"].as_array().cloned().unwrap_or_default();
    assert!(
        drift.iter().any(|d| d["remote"] == "renamed-remotely"),
        "{change}"
    );

    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let job = api
        .get("/api/2.2/jobs/get", &[("job_id", job_id.to_string())])
        .expect("job");
    assert_eq!(job["settings"]["name"], "sync-pipeline-schedule");
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn stale_saved_plan_is_refused() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::production();
    let dir = tempfile::tempdir().expect("tempdir");
    let plan_file = |n: &str| dir.path().join(n).to_string_lossy().into_owned();

    // A saved plan applies exactly.
    let p0 = plan_file("initial.json");
    run(&emu, &b, &["plan", "--out", &p0]).expect(0);
    run(&emu, &b, &["deploy", "--plan", &p0, "--auto-approve"]).expect(0);
    assert_eq!(names(&api.instances()), ["my-instance"]);

    // The configuration changed since the plan: refused.
    let p1 = plan_file("before-edit.json");
    run(&emu, &b, &["plan", "--out", &p1]).expect(0);
    b.edit("capacity: CU_1", "capacity: CU_2");
    let out = run(&emu, &b, &["deploy", "--plan", &p1]).expect(1);
    assert!(
        out.stderr.contains("refusing the saved plan"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("configuration changed"),
        "{}",
        out.stderr
    );

    // The state changed since the plan (another deploy ran): refused.
    let p2 = plan_file("cu2.json");
    run(&emu, &b, &["plan", "--out", &p2]).expect(0);
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let out = run(&emu, &b, &["deploy", "--plan", &p2]).expect(1);
    assert!(
        out.stderr.contains("refusing the saved plan"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("state changed"), "{}", out.stderr);
    let inst = api
        .get("/api/2.0/database/instances/my-instance", &[])
        .expect("instance");
    assert_eq!(inst["capacity"], "CU_2");
}

#[test]
fn concurrent_deploy_fails_on_the_lock_naming_the_holder() {
    // A slow instance keeps the first deploy (and its lock) busy.
    let emu = Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "4000"]);
    let api = Api::new(&emu);
    let b = TestBundle::production();
    let ws = workspace_paths(&emu, &b);
    let lock = format!("{}/deploy.lock", ws["state_path"].as_str().unwrap_or(""));
    let user = emu_user(&api);

    let first = spawn(&emu, &b, &["deploy", "--auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while api
        .get("/api/2.0/workspace/get-status", &[("path", lock.clone())])
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the first deploy never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    assert!(
        second.stderr.contains("lock is held by"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&user),
        "names the holder {user}: {}",
        second.stderr
    );
    assert!(
        second.stderr.contains("operation: deploy"),
        "{}",
        second.stderr
    );

    wait(first).expect(0);
    assert!(
        api.get("/api/2.0/workspace/get-status", &[("path", lock)])
            .is_none(),
        "released at the end"
    );
    assert_eq!(names(&api.instances()), ["my-instance"]);
}

fn emu_user(api: &Api) -> String {
    let me = api.get("/api/2.0/preview/scim/v2/Me", &[]).expect("Me");
    me["userName"].as_str().unwrap_or_default().to_string()
}

/// Stable snapshot text: no ports, ids, hashes or lineages.
fn snapshot_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"http://127\.0\.0\.1:\d+", "[HOST]"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[UUID]",
        ),
        (r"[0-9a-f]{64}", "[HASH]"),
        (r#"id = "\d+""#, r#"id = "[JOB_ID]""#),
        (r#""id": "\d+""#, r#""id": "[JOB_ID]""#),
        (r#""job_id": \d+"#, r#""job_id": [JOB_ID]"#),
        // The state serial counts recorded operations, an implementation detail.
        (r#""serial": \d+"#, r#""serial": [SERIAL]"#),
    ]
}

#[test]
fn plan_snapshots() {
    let emu = emulator();
    let b = TestBundle::production();
    let settings = {
        let mut s = insta::Settings::clone_current();
        for (re, with) in snapshot_filters() {
            s.add_filter(re, with);
        }
        s
    };
    let plan = |args: &[&str]| run(&emu, &b, args).stdout;

    settings.bind(|| {
        insta::assert_snapshot!("create_text", plan(&["plan"]));
        insta::assert_snapshot!("create_markdown", plan(&["-o", "markdown", "plan"]));
        insta::assert_snapshot!("create_json", plan(&["-o", "json", "plan"]));
    });
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    b.edit("capacity: CU_1", "capacity: CU_2");
    b.edit("name: my-instance", "name: my-instance-2");
    settings.bind(|| {
        insta::assert_snapshot!("replace_text", plan(&["plan"]));
        insta::assert_snapshot!("replace_markdown", plan(&["-o", "markdown", "plan"]));
        insta::assert_snapshot!("replace_json", plan(&["-o", "json", "plan"]));
    });
}

#[test]
fn run_follows_a_job_and_refreshes_a_synced_table() {
    let emu = emulator();
    let b = TestBundle::production();
    // The source table, in the emulator's default lake (a missing one fails the refresh).
    let source = emu.data_dir().join("lake/prod_catalog/prod_schema");
    std::fs::create_dir_all(&source).expect("lake dir");
    std::fs::write(
        source.join("customer_features.csv"),
        "customer_id,score\n1,0.5\n2,0.7\n",
    )
    .expect("source table");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);

    let out = run(&emu, &b, &["run", "sync_schedule"]).expect(0);
    assert!(
        out.stdout.contains("TERMINATED SUCCESS"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    let out = run(
        &emu,
        &b,
        &["-o", "json", "run", "sync_schedule", "--no-wait"],
    )
    .expect(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("run JSON");
    assert!(v["run_id"].as_i64().is_some(), "{v}");

    let out = run(&emu, &b, &["run", "features_sync"]).expect(0);
    assert!(
        out.stdout.contains("COMPLETED"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );

    let out = run(&emu, &b, &["run", "sync_schedul"]).expect(1);
    assert!(
        out.stderr.contains("did you mean `sync_schedule`"),
        "{}",
        out.stderr
    );
}

#[test]
fn summary_lists_ids_states_endpoints_and_urls() {
    let emu = emulator();
    let b = TestBundle::production();
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let out = run(&emu, &b, &["-o", "json", "summary"]).expect(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("summary JSON");
    let res = v["resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(res.len(), 5, "{v}");
    let inst = res
        .iter()
        .find(|r| r["address"] == INSTANCE)
        .expect("instance row");
    assert_eq!(inst["id"], "my-instance");
    assert_eq!(inst["state"], "AVAILABLE");
    assert!(
        inst["endpoint"].as_str().is_some_and(|e| !e.is_empty()),
        "{inst}"
    );
    assert!(
        inst["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/compute/database-instances/my-instance")),
        "{inst}"
    );
    assert!(res.iter().all(|r| r["deployed"] == true), "{v}");
    let text = run(&emu, &b, &["summary"]).expect(0).stdout;
    assert!(
        text.contains("Database instances:") && text.contains("my_db:"),
        "{text}"
    );
}

#[test]
fn local_workspace_offline_graph_and_missing_host() {
    let emu = emulator();
    let b = TestBundle::production();
    let without_host = |args: &[&str]| {
        let mut cmd = e2e_support::command(&emu, &b, args);
        cmd.env_remove("DATABRICKS_HOST")
            .env_remove("DATABRICKS_TOKEN");
        let out = cmd.output().expect("run lakebundle");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No host and no --local: an error naming every way to configure one.
    let (code, _, stderr) = without_host(&["plan"]);
    assert_eq!(code, Some(1), "{stderr}");
    for way in ["DATABRICKS_HOST", "workspace.host", "-p", "--local"] {
        assert!(stderr.contains(way), "mentions {way}: {stderr}");
    }
    // --local: the in-process workspace under $LAKEBUNDLE_HOME.
    let (code, stdout, stderr) = without_host(&["--local", "plan", "--detailed-exitcode"]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Plan: 5 to add, 0 to change, 0 to destroy."),
        "{stdout}"
    );
    // graph needs no workspace at all.
    let (code, stdout, stderr) = without_host(&["-o", "json", "graph"]);
    assert_eq!(code, Some(0), "{stderr}");
    let g: Value = serde_json::from_str(&stdout).expect("graph JSON");
    assert_eq!(g["nodes"].as_array().map(Vec::len), Some(5), "{g}");
    let edges = g["edges"].as_array().cloned().unwrap_or_default();
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "resources.jobs.sync_schedule"
                && e["to"] == "resources.synced_database_tables.features_sync"),
        "{g}"
    );
    let (_, dot, _) = without_host(&["graph", "--format", "dot"]);
    assert!(dot.starts_with("digraph"), "{dot}");
}

#[test]
fn ctrl_c_stops_new_work_records_in_flight_and_releases_the_lock() {
    let emu = Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "3000"]);
    let api = Api::new(&emu);
    let b = TestBundle::production();
    let ws = workspace_paths(&emu, &b);
    let lock = format!("{}/deploy.lock", ws["state_path"].as_str().unwrap_or(""));
    let child = spawn(&emu, &b, &["deploy", "--auto-approve"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while api
        .get("/api/2.0/database/instances/my-instance", &[])
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the deploy never created the instance"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait(child).expect(130);
    assert!(out.stderr.contains("Interrupted"), "{}", out.stderr);
    // The in-flight instance finished and was recorded; its dependents never started.
    assert_eq!(
        b.state_id(INSTANCE).as_deref(),
        Some("my-instance"),
        "{}",
        out.stderr
    );
    assert!(
        api.catalog("my_catalog").is_none(),
        "no new work after Ctrl-C"
    );
    assert!(
        api.get("/api/2.0/workspace/get-status", &[("path", lock)])
            .is_none(),
        "lock released"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn debug_log_names_each_request_and_never_a_credential() {
    let emu = emulator();
    let b = TestBundle::production();
    let out = command(&emu, &b, &["plan"])
        .env("LAKEBUNDLE_LOG", "debug")
        .output()
        .expect("run lakebundle");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("method=GET") && stderr.contains("path=\"/api/2.0/preview/scim/v2/Me\""),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&emu.token),
        "the token was logged:\n{stderr}"
    );
    // Without the variable, nothing is logged.
    let quiet = run(&emu, &b, &["plan"]).expect(0);
    assert!(!quiet.stderr.contains("method="), "{}", quiet.stderr);
    // A filter that does not parse says so and logs nothing.
    let bad = command(&emu, &b, &["plan"])
        .env("LAKEBUNDLE_LOG", "lakebundle=[")
        .output()
        .expect("run lakebundle");
    let bad_err = String::from_utf8_lossy(&bad.stderr);
    assert!(bad_err.contains("LAKEBUNDLE_LOG"), "{bad_err}");
    assert!(!bad_err.contains("method="), "{bad_err}");
}

/// `plan` fetches the state from where the last command found it
/// (`.lakebundle/state-paths.json`) while the bundle loads. That head start is
/// used only when it read the bundle's own state: a hint naming another path
/// or another target is dropped and the state fetched again (and the hint
/// mended). The local cache is removed first, so only the workspace copy
/// can tell the plan what is deployed.
#[test]
fn plan_takes_the_state_fetched_ahead_only_from_the_bundles_own_path() {
    let emu = emulator();
    let b = TestBundle::production();
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let hints_path = b.root.join(".lakebundle").join("state-paths.json");
    let read_hints = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(&hints_path).expect("state-paths.json"))
            .expect("hints parse")
    };
    let own = workspace_paths(&emu, &b)["state_path"].clone();
    assert_eq!(
        read_hints()["prod"],
        json!({"target": "prod", "state_path": own})
    );

    let local_cache = b.root.join(".lakebundle").join("prod");
    let stale_hints = [
        json!({"prod": {"target": "prod", "state_path": "/Workspace/Shared/elsewhere"}}),
        json!({"prod": {"target": "dev", "state_path": own}}),
    ];
    for stale in stale_hints {
        std::fs::remove_dir_all(&local_cache).expect("remove the local cache");
        std::fs::write(&hints_path, stale.to_string()).expect("write hints");
        // Taken, the stale hint would show no state: five creates, exit 2.
        let out = run(&emu, &b, &["plan", "--detailed-exitcode"]);
        assert_eq!(out.code, 0, "{stale}\n{}{}", out.stdout, out.stderr);
        assert_eq!(
            read_hints()["prod"],
            json!({"target": "prod", "state_path": own})
        );
    }
    // And with the right hint, the plan made from the state fetched ahead.
    std::fs::remove_dir_all(&local_cache).expect("remove the local cache");
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
}

/// The reads `plan` sends while the bundle loads know only the state: a
/// resource whose config newly sets permissions is read again with them.
/// The plan is the same with the early reads (a state path hint) as without
/// (no hint): here the workspace already has the grant the config adds, so
/// nothing changes, where a plan that never read the ACL would add it.
#[test]
fn early_reads_plan_newly_added_permissions_as_a_plan_without_them() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::production();
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let job_id = b.state_id(JOB).expect("job id");
    let (status, _) = api.patch(
        &format!("/api/2.0/permissions/jobs/{job_id}"),
        &json!({"access_control_list": [{"group_name": "users", "permission_level": "CAN_VIEW"}]}),
    );
    assert_eq!(status, 200);
    b.edit(
        "    sync_schedule:\n      name: sync-pipeline-schedule\n",
        "    sync_schedule:\n      name: sync-pipeline-schedule\n      permissions:\n        - group_name: users\n          level: CAN_VIEW\n",
    );
    let hints = b.root.join(".lakebundle").join("state-paths.json");
    assert!(hints.is_file(), "the first deploy left a state path hint");
    let with_early_reads = plan_json(&emu, &b);
    std::fs::remove_file(&hints).expect("remove the hint");
    let without = plan_json(&emu, &b);
    assert_eq!(actions_of(&without, JOB), json!(["no-op"]), "{without}");
    assert_eq!(
        with_early_reads["resource_changes"],
        without["resource_changes"]
    );
}
