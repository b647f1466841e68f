//! One deployment state with the Databricks CLI, against the real emulator:
//! objects are created through the API, the CLI's state files (direct
//! `resources.json`, terraform `terraform.tfstate`, `deploy.lock`) are
//! written by hand in its formats, and lakebundle must take the target over
//! without creating anything, keep the lineage, follow the serial rules, and
//! exclude the CLI (and be excluded by it) through the same lock.

mod common;
mod e2e_support;

use std::time::Duration;

use common::Emulator;
use e2e_support::{names, run, Api, TestBundle, TARGET};
use lakebundle::api::{Client, ClientConfig, Secret};
use serde_json::{json, Value};

const STATE: &str = "/Workspace/Shared/.bundle/sharing/prod/state";
const JOB: &str = "resources.jobs.nightly";
const DB: &str = "resources.database_instances.db";
const LINEAGE: &str = "5d1c3f0e-8a8b-4c8e-9d55-1f2e3a4b5c6d";

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "100"])
}

/// Workspace files through lakebundle's client (the test's own runtime).
struct Ws {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Ws {
    fn new(emu: &Emulator) -> Ws {
        let config = ClientConfig {
            request_timeout: Duration::from_secs(20),
            retry_budget: Duration::from_secs(30),
            ..ClientConfig::default()
        };
        Ws {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime"),
            client: Client::with_token(&emu.url, Secret::new(emu.token.clone()), config)
                .expect("client"),
        }
    }

    fn write(&self, name: &str, body: &[u8]) {
        let path = format!("{STATE}/{name}");
        self.rt
            .block_on(self.client.workspace().write_file(&path, body, true))
            .unwrap_or_else(|e| panic!("write {path}: {e}"));
    }

    fn read(&self, name: &str) -> Option<Value> {
        let path = format!("{STATE}/{name}");
        match self.rt.block_on(self.client.workspace().export(&path)) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("JSON file")),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("read {path}: {e}"),
        }
    }
}

/// The job and the instance, created through the API as the CLI would have.
fn create_objects(api: &Api) -> String {
    let job = api.post(
        "/api/2.2/jobs/create",
        &json!({"name": "sharing-nightly", "tasks": [{"task_key": "main",
            "notebook_task": {"notebook_path": "/Workspace/Shared/nightly"}}]}),
    );
    api.post(
        "/api/2.0/database/instances",
        &json!({"name": "sharing-instance", "capacity": "CU_1"}),
    );
    job["job_id"].to_string()
}

/// A direct-engine state as the Databricks CLI writes it.
fn cli_direct_state(job_id: &str, serial: u64) -> Value {
    json!({
        "state_version": 2,
        "cli_version": "0.290.0",
        "lineage": LINEAGE,
        "serial": serial,
        "state": {
            "resources.database_instances.db": {"__id__": "sharing-instance",
                "state": {"name": "sharing-instance", "capacity": "CU_1"}},
            "resources.jobs.nightly": {"__id__": job_id, "state": {
                "deployment": {"kind": "BUNDLE", "metadata_file_path": format!("{STATE}/metadata.json")},
                "edit_mode": "UI_LOCKED", "format": "MULTI_TASK", "max_concurrent_runs": 1,
                "name": "sharing-nightly", "queue": {"enabled": true},
                "tasks": [{"task_key": "main", "notebook_task": {"notebook_path": "/Workspace/Shared/nightly"}}]}},
            "resources.jobs.nightly.permissions": {"__id__": format!("/jobs/{job_id}"),
                "state": {"object_id": format!("/jobs/{job_id}"), "__embed__": [
                    {"level": "CAN_VIEW", "group_name": "analysts"},
                    {"level": "IS_OWNER", "user_name": "someone@example.com"}]},
                "depends_on": [{"node": JOB, "label": "${resources.jobs.nightly.id}"}]},
            // A kind lakebundle does not know (a newer CLI's): handed back untouched.
            "resources.future_kind.other": {"__id__": "0f1e2d3c", "state": {"name": "other"}}
        }
    })
}

/// A terraform-engine state as the Databricks CLI writes it.
fn cli_terraform_state(job_id: &str, serial: u64, lineage: &str) -> Value {
    let provider = "provider[\"registry.terraform.io/databricks/databricks\"]";
    json!({
        "version": 4, "terraform_version": "1.5.5", "serial": serial, "lineage": lineage,
        "outputs": {},
        "resources": [
            {"mode": "managed", "type": "databricks_database_instance", "name": "db", "provider": provider,
             "instances": [{"schema_version": 0, "attributes": {"id": "8c0e7a52-uid", "name": "sharing-instance",
                 "capacity": "CU_1"}, "sensitive_attributes": []}]},
            {"mode": "managed", "type": "databricks_job", "name": "nightly", "provider": provider,
             "instances": [{"schema_version": 2, "attributes": {"id": job_id, "name": "sharing-nightly",
                 "queue": [{"enabled": true}], "deployment": [{"deployment_id": "", "kind": "BUNDLE",
                 "metadata_file_path": format!("{STATE}/metadata.json"), "version_id": ""}]},
                 "sensitive_attributes": []}]},
            {"mode": "managed", "type": "databricks_permissions", "name": "job_nightly", "provider": provider,
             "instances": [{"schema_version": 0, "attributes": {"id": format!("/jobs/{job_id}"),
                 "job_id": job_id, "access_control": [{"group_name": "analysts", "permission_level": "CAN_VIEW"}]},
                 "sensitive_attributes": [], "dependencies": ["databricks_job.nightly"]}]}
        ],
        "check_results": null
    })
}

fn plan_json(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "plan"]).expect(0);
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

/// `address -> actions` of a plan.
fn actions(plan: &Value) -> Vec<(String, Value)> {
    plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap_or("").to_string(),
                c["actions"].clone(),
            )
        })
        .collect()
}

fn assert_no_creates(plan: &Value) {
    let all = actions(plan);
    assert_eq!(all.len(), 2, "{plan}");
    for (addr, a) in &all {
        let a = a.to_string();
        assert!(
            !a.contains("create") && !a.contains("delete"),
            "{addr}: {a}\n{plan}"
        );
    }
}

fn assert_one_of_each(api: &Api) {
    assert_eq!(names(&api.jobs()), vec!["sharing-nightly".to_string()]);
    assert_eq!(
        names(&api.instances()),
        vec!["sharing-instance".to_string()]
    );
}

#[test]
fn the_clis_direct_state_is_taken_over_and_handed_back() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ws = Ws::new(&emu);
    let b = TestBundle::fixture("state_sharing/takeover");
    let job_id = create_objects(&api);
    ws.write(
        "resources.json",
        &serde_json::to_vec_pretty(&cli_direct_state(&job_id, 3)).unwrap(),
    );

    assert_no_creates(&plan_json(&emu, &b));
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_one_of_each(&api);

    // The workspace copy is the CLI's format, same lineage, newer serial.
    let st = ws.read("resources.json").expect("state pushed");
    assert_eq!(st["state_version"], 2, "{st}");
    assert_eq!(st["lineage"], LINEAGE);
    let serial = st["serial"].as_u64().expect("serial");
    assert!(serial > 3, "{st}");
    assert_eq!(st["state"][JOB]["__id__"], job_id.as_str());
    assert_eq!(st["state"][DB]["__id__"], "sharing-instance");
    let perms = &st["state"][format!("{JOB}.permissions")];
    assert_eq!(perms["__id__"], format!("/jobs/{job_id}"), "{st}");
    assert_eq!(perms["state"]["object_id"], format!("/jobs/{job_id}"));
    assert!(
        perms["state"]["__embed__"]
            .as_array()
            .expect("__embed__")
            .contains(&json!({"level": "CAN_VIEW", "group_name": "analysts"})),
        "{st}"
    );
    assert_eq!(
        st["state"]["resources.future_kind.other"]["__id__"],
        "0f1e2d3c"
    );
    // The local cache is the same file.
    assert_eq!(b.state()["serial"], serial);

    // A second deploy changes nothing and keeps the serial.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
    assert_eq!(ws.read("resources.json").unwrap()["serial"], serial);

    // Handed back: the CLI rewrites the file without lakebundle's key and
    // one serial more; lakebundle takes it again (outputs read remotely).
    let mut theirs = ws.read("resources.json").unwrap();
    theirs.as_object_mut().unwrap().remove("lakebundle");
    theirs["serial"] = json!(serial + 1);
    theirs["cli_version"] = json!("0.290.0");
    ws.write(
        "resources.json",
        &serde_json::to_vec_pretty(&theirs).unwrap(),
    );
    let plan = plan_json(&emu, &b);
    assert_no_creates(&plan);
    assert_eq!(plan["serial"], serial + 1, "{plan}");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_one_of_each(&api);
    assert_eq!(ws.read("resources.json").unwrap()["lineage"], LINEAGE);
}

#[test]
fn a_terraform_deployed_target_is_migrated_on_the_first_deploy() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ws = Ws::new(&emu);
    let b = TestBundle::fixture("state_sharing/takeover");
    let job_id = create_objects(&api);
    let lineage = "7e57a1b2-0000-4000-8000-000000000001";
    ws.write(
        "terraform.tfstate",
        &serde_json::to_vec(&cli_terraform_state(&job_id, 5, lineage)).unwrap(),
    );

    let plan = plan_json(&emu, &b);
    assert_no_creates(&plan);
    assert_eq!(plan["lineage"], lineage, "{plan}");
    // A plan migrates nothing.
    assert!(ws.read("resources.json").is_none());
    assert!(ws.read("terraform.tfstate").is_some());

    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stderr.contains("Migrated the terraform state"),
        "{}",
        out.stderr
    );
    assert_one_of_each(&api);
    let st = ws.read("resources.json").expect("direct state pushed");
    assert_eq!(st["lineage"], lineage);
    assert!(st["serial"].as_u64().unwrap() > 5, "{st}");
    assert_eq!(st["state"][JOB]["__id__"], job_id.as_str());
    assert_eq!(st["state"][DB]["__id__"], "sharing-instance");
    assert!(
        ws.read("terraform.tfstate").is_none(),
        "terraform state retired"
    );
    assert_eq!(
        ws.read("terraform.tfstate.backup").expect("backup")["lineage"],
        lineage
    );

    // From now on it is a direct-engine target.
    assert_no_creates(&plan_json(&emu, &b));
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_one_of_each(&api);
}

#[test]
fn a_local_terraform_state_is_taken_over_too() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ws = Ws::new(&emu);
    let b = TestBundle::fixture("state_sharing/takeover");
    let job_id = create_objects(&api);
    let dir = b
        .root
        .join(".databricks/bundle")
        .join(TARGET)
        .join("terraform");
    std::fs::create_dir_all(&dir).unwrap();
    let lineage = "7e57a1b2-0000-4000-8000-000000000002";
    std::fs::write(
        dir.join("terraform.tfstate"),
        serde_json::to_vec(&cli_terraform_state(&job_id, 2, lineage)).unwrap(),
    )
    .unwrap();

    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_one_of_each(&api);
    assert_eq!(ws.read("resources.json").unwrap()["lineage"], lineage);
    assert!(!dir.join("terraform.tfstate").exists());
    assert!(dir.join("terraform.tfstate.backup").exists());
}

#[test]
fn lineage_and_serial_rules_are_the_clis() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ws = Ws::new(&emu);
    let b = TestBundle::fixture("state_sharing/takeover");
    let job_id = create_objects(&api);

    // Two histories: refused, naming both files.
    ws.write(
        "resources.json",
        &serde_json::to_vec(&cli_direct_state(&job_id, 3)).unwrap(),
    );
    ws.write(
        "terraform.tfstate",
        &serde_json::to_vec(&cli_terraform_state(&job_id, 1, "another-lineage")).unwrap(),
    );
    let out = run(&emu, &b, &["plan"]).expect(1);
    assert!(
        out.stderr.contains("lineage mismatch in state files"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("remote terraform state serial=1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("remote direct state serial=3"),
        "{}",
        out.stderr
    );

    // Same history, same serial in both engines: ambiguous, refused.
    ws.write(
        "terraform.tfstate",
        &serde_json::to_vec(&cli_terraform_state(&job_id, 3, LINEAGE)).unwrap(),
    );
    let out = run(&emu, &b, &["plan"]).expect(1);
    assert!(
        out.stderr
            .contains("same serial number in terraform and direct states"),
        "{}",
        out.stderr
    );

    // The higher serial wins: a newer terraform state that lost the job.
    let mut tf = cli_terraform_state(&job_id, 9, LINEAGE);
    tf["resources"].as_array_mut().unwrap().remove(1);
    ws.write("terraform.tfstate", &serde_json::to_vec(&tf).unwrap());
    let plan = plan_json(&emu, &b);
    let job = actions(&plan)
        .into_iter()
        .find(|(a, _)| a == JOB)
        .expect("job in plan");
    assert_eq!(job.1, json!(["create"]), "{plan}");
    assert_eq!(plan["serial"], 10, "terraform serial + 1: {plan}");
}

#[test]
fn the_clis_lock_and_ours_exclude_each_other() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ws = Ws::new(&emu);
    let b = TestBundle::fixture("state_sharing/takeover");

    // A lock the CLI holds blocks us, naming its holder and since when.
    ws.write(
        "deploy.lock",
        br#"{"ID":"12345678-1234-1234-1234-123456789abc","AcquisitionTime":"2024-01-15T15:40:00Z","IsForced":false,"User":"user-with-lock@example.com"}"#,
    );
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    assert!(
        out.stderr
            .contains("held by user-with-lock@example.com since 2024-01-15T15:40:00Z"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--force-lock"), "{}", out.stderr);
    assert!(api.jobs().is_empty(), "nothing deployed");

    // --force-lock takes it over, and releases it at the end.
    run(&emu, &b, &["deploy", "--auto-approve", "--force-lock"]).expect(0);
    assert_one_of_each(&api);
    assert!(ws.read("deploy.lock").is_none(), "lock released");

    // Our lock is one the CLI reads and cannot create over.
    let lock = ws
        .rt
        .block_on(lakebundle::state::DeployLock::acquire(
            &ws.client,
            STATE,
            "me@example.com",
            "deploy",
            false,
        ))
        .expect("lock");
    let file = ws.read("deploy.lock").expect("lock file");
    assert!(file["ID"].as_str().is_some_and(|s| s.len() == 36), "{file}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(file["AcquisitionTime"].as_str().unwrap()).is_ok(),
        "{file}"
    );
    assert_eq!(file["IsForced"], false);
    assert_eq!(file["User"], "me@example.com");
    // The CLI's acquire: a create-only write, refused as "already exists".
    let err = ws
        .rt
        .block_on(ws.client.workspace().import_file(
            &format!("{STATE}/deploy.lock"),
            br#"{"ID":"other","AcquisitionTime":"2024-01-15T15:40:00Z","IsForced":false,"User":"u@x.com"}"#,
            false,
        ))
        .expect_err("the CLI cannot take a held lock");
    assert!(
        err.is_already_exists() || err.message().contains("already exists"),
        "{err}"
    );
    ws.rt.block_on(lock.release()).expect("release");
}

fn action_of(plan: &Value, addr: &str) -> Value {
    actions(plan)
        .into_iter()
        .find(|(a, _)| a == addr)
        .map(|(_, a)| a)
        .unwrap_or(Value::Null)
}

#[test]
fn an_existing_named_object_is_a_plan_error_and_bind_unbind_adopt_and_forget() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ws = Ws::new(&emu);
    let b = TestBundle::fixture("state_sharing/takeover");
    let job_id = create_objects(&api);

    // The instance's name is taken and it is not in state: found at plan,
    // with the command that adopts it. The job (not named) is not a conflict.
    let out = run(&emu, &b, &["plan"]).expect(1);
    let err = out.stderr.replace('\n', " ");
    assert!(
        err.contains("resources.database_instances.db (database instance 'sharing-instance')"),
        "{}",
        out.stderr
    );
    assert!(err.contains("bind db sharing-instance"), "{}", out.stderr);
    assert!(err.contains("-t prod"), "{}", out.stderr);
    assert!(!err.contains("resources.jobs.nightly"), "{}", out.stderr);
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    assert!(
        out.stderr.contains("bind db sharing-instance"),
        "{}",
        out.stderr
    );
    assert_eq!(
        names(&api.jobs()),
        vec!["sharing-nightly".to_string()],
        "nothing created"
    );

    // Wrong key and wrong id are explained.
    let out = run(&emu, &b, &["bind", "nightlyy", &job_id]).expect(1);
    assert!(
        out.stderr.contains("no such resource: nightlyy"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `nightly`?"),
        "{}",
        out.stderr
    );
    let out = run(&emu, &b, &["bind", "db", "no-such-instance"]).expect(1);
    assert!(
        out.stderr
            .contains("database instance with an id 'no-such-instance' is not found"),
        "{}",
        out.stderr
    );

    // The instance matches its config: bound without a question.
    let out = run(&emu, &b, &["bind", "db", "sharing-instance"]).expect(0);
    assert!(
        out.stderr
            .contains("Successfully bound database instance with an id 'sharing-instance'"),
        "{}",
        out.stderr
    );
    let st = ws.read("resources.json").expect("state pushed at once");
    assert_eq!(st["state"][DB]["__id__"], "sharing-instance");
    assert_eq!(st["state"][DB]["state"]["name"], "sharing-instance", "{st}");
    let serial = st["serial"].as_u64().unwrap();
    let plan = plan_json(&emu, &b);
    assert_eq!(action_of(&plan, DB), json!(["no-op"]), "{plan}");
    let out = run(&emu, &b, &["bind", "db", "sharing-instance"]).expect(1);
    assert!(out.stderr.contains("already bound"), "{}", out.stderr);

    // The job's next deploy changes it (bundle marker, permissions): no
    // terminal, so the change is shown and --auto-approve asked for.
    let out = run(&emu, &b, &["bind", "nightly", &job_id]).expect(1);
    assert!(
        out.stderr.contains("Plan: update resources.jobs.nightly"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--auto-approve"), "{}", out.stderr);
    assert_eq!(
        ws.read("resources.json").unwrap()["serial"],
        serial,
        "nothing recorded"
    );
    run(&emu, &b, &["bind", "nightly", &job_id, "--auto-approve"]).expect(0);
    let st = ws.read("resources.json").unwrap();
    assert_eq!(st["state"][JOB]["__id__"], job_id.as_str());
    assert!(st["serial"].as_u64().unwrap() > serial);
    let plan = plan_json(&emu, &b);
    assert_eq!(action_of(&plan, JOB), json!(["update"]), "{plan}");

    // Deploying the bound target creates nothing.
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_one_of_each(&api);
    assert_no_creates(&plan_json(&emu, &b));

    // Unbind forgets the job; the job itself stays.
    let out = run(&emu, &b, &["unbind", "nightly"]).expect(0);
    assert!(
        out.stderr.contains("Unbound resources.jobs.nightly"),
        "{}",
        out.stderr
    );
    let st = ws.read("resources.json").unwrap();
    assert!(st["state"].get(JOB).is_none(), "{st}");
    assert!(
        st["state"].get(format!("{JOB}.permissions")).is_none(),
        "{st}"
    );
    assert_eq!(names(&api.jobs()), vec!["sharing-nightly".to_string()]);
    assert_eq!(action_of(&plan_json(&emu, &b), JOB), json!(["create"]));
    let out = run(&emu, &b, &["unbind", "nightly"]).expect(1);
    assert!(out.stderr.contains("is not bound"), "{}", out.stderr);
}

/// Poll until `f` holds (the emulator's transitions take ~100 ms).
fn settle(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} never happened");
}

#[test]
fn generate_writes_config_and_files_that_bind_to_a_no_op_plan() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("state_sharing/generate");
    let rt = Ws::new(&emu);
    // `notebook`: imported from `<path>.py` with the notebook header, as the
    // workspace stores a notebook (at the path without extension).
    let write = |path: &str, body: &[u8], notebook: bool| {
        let ws = rt.client.workspace();
        rt.rt
            .block_on(async {
                let parent = &path[..path.rfind('/').unwrap()];
                ws.mkdirs(parent).await?;
                if notebook {
                    ws.import(&format!("{path}.py"), body, "AUTO", true).await
                } else {
                    ws.import_file(path, body, true).await
                }
            })
            .unwrap_or_else(|e| panic!("write {path}: {e}"));
    };

    // A job running a workspace notebook.
    let notebook = b"# Databricks notebook source\nprint('nightly')\n";
    write("/Workspace/Shared/gen/nightly", notebook, true);
    let job = api.post(
        "/api/2.2/jobs/create",
        &json!({"name": "Gen Nightly", "max_concurrent_runs": 1, "tasks": [{"task_key": "main",
            "notebook_task": {"notebook_path": "/Workspace/Shared/gen/nightly"}}]}),
    );
    let job_id = job["job_id"].to_string();
    // An instance and a catalog on it.
    api.post(
        "/api/2.0/database/instances",
        &json!({"name": "gen-instance", "capacity": "CU_2"}),
    );
    settle("instance available", || {
        api.get("/api/2.0/database/instances/gen-instance", &[])
            .is_some_and(|i| i["state"] == "AVAILABLE")
    });
    api.post(
        "/api/2.0/database/catalogs",
        &json!({"name": "gen_catalog", "database_instance_name": "gen-instance",
            "database_name": "gen_db", "create_database_if_not_exists": true}),
    );
    api.post(
        "/api/2.0/database/synced_tables",
        &json!({"name": "gen_catalog.gen_db.features", "database_instance_name": "gen-instance",
            "logical_database_name": "gen_db", "spec": {"source_table_full_name": "lake.s.features",
            "scheduling_policy": "SNAPSHOT", "primary_key_columns": ["id"],
            "new_pipeline_spec": {"storage_catalog": "lake", "storage_schema": "s"}}}),
    );
    // An app running deployed code.
    write("/Workspace/Shared/gen-app/app.py", b"print('app')\n", false);
    write(
        "/Workspace/Shared/gen-app/app.yaml",
        b"command: [python, app.py]\n",
        false,
    );
    api.post(
        "/api/2.0/apps",
        &json!({"name": "gen-app", "description": "generated"}),
    );
    settle("app compute active", || {
        api.get("/api/2.0/apps/gen-app", &[])
            .is_some_and(|a| a["compute_status"]["state"] == "ACTIVE")
    });
    api.post(
        "/api/2.0/apps/gen-app/deployments",
        &json!({"source_code_path": "/Workspace/Shared/gen-app", "mode": "SNAPSHOT"}),
    );
    settle("app deployed", || {
        api.get("/api/2.0/apps/gen-app", &[])
            .is_some_and(|a| a["active_deployment"]["source_code_path"].is_string())
    });

    // The Databricks CLI's flags for jobs and apps; ours for the others.
    let out = run(
        &emu,
        &b,
        &["generate", "job", "--existing-job-id", &job_id, "--bind"],
    )
    .expect(0);
    assert!(
        out.stderr.contains("Successfully bound job"),
        "{}",
        out.stderr
    );
    let yaml = std::fs::read_to_string(b.root.join("resources/gen_nightly.job.yml")).unwrap();
    assert!(yaml.contains("notebook_path: ../src/nightly.py"), "{yaml}");
    assert!(!yaml.contains("deployment"), "{yaml}");
    assert_eq!(
        std::fs::read(b.root.join("src/nightly.py")).unwrap(),
        notebook
    );

    run(
        &emu,
        &b,
        &[
            "generate",
            "app",
            "--existing-app-name",
            "gen-app",
            "--key",
            "web",
            "--bind",
        ],
    )
    .expect(0);
    let yaml = std::fs::read_to_string(b.root.join("resources/web.app.yml")).unwrap();
    assert!(yaml.contains("source_code_path: ../src/app"), "{yaml}");
    assert!(yaml.contains("description: generated"), "{yaml}");
    assert_eq!(
        std::fs::read(b.root.join("src/app/app.py")).unwrap(),
        b"print('app')\n"
    );
    assert!(b.root.join("src/app/app.yaml").exists());

    run(
        &emu,
        &b,
        &[
            "generate",
            "database-instance",
            "--existing-database-instance-name",
            "gen-instance",
            "--bind",
        ],
    )
    .expect(0);
    let yaml = std::fs::read_to_string(b.root.join("resources/gen_instance.database_instance.yml"))
        .unwrap();
    assert!(yaml.contains("capacity: CU_2"), "{yaml}");
    run(
        &emu,
        &b,
        &[
            "generate",
            "database-catalog",
            "--existing-database-catalog-name",
            "gen_catalog",
            "--bind",
        ],
    )
    .expect(0);

    run(
        &emu,
        &b,
        &[
            "generate",
            "synced-database-table",
            "--existing-synced-database-table-name",
            "gen_catalog.gen_db.features",
            "--key",
            "features",
            "--bind",
        ],
    )
    .expect(0);

    // A dashboard and an alert: their definitions go to the files the
    // Databricks CLI writes, named by `file_path` (its flag names too).
    let definition = json!({"pages": [{"name": "p1", "displayName": "Sales", "layout": []}]});
    let dashboard = api.post(
        "/api/2.0/lakeview/dashboards",
        &json!({"display_name": "Gen Sales", "warehouse_id": "wh-1",
            "serialized_dashboard": definition.to_string()}),
    );
    let dashboard_id = dashboard["dashboard_id"].as_str().unwrap().to_string();
    run(
        &emu,
        &b,
        &[
            "generate",
            "dashboard",
            "--existing-id",
            &dashboard_id,
            "--dashboard-dir",
            "src/dashboards",
            "--resource-dir",
            "resources",
            "--bind",
        ],
    )
    .expect(0);
    let yaml = std::fs::read_to_string(b.root.join("resources/gen_sales.dashboard.yml")).unwrap();
    assert!(
        yaml.contains("file_path: ../src/dashboards/gen_sales.lvdash.json"),
        "{yaml}"
    );
    assert!(!yaml.contains("serialized_dashboard"), "{yaml}");
    let text =
        std::fs::read_to_string(b.root.join("src/dashboards/gen_sales.lvdash.json")).unwrap();
    assert!(text.starts_with("{\n  \"pages\": ["), "indented: {text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), definition);

    let alert = api.post(
        "/api/2.0/alerts",
        &json!({"display_name": "Gen Alert", "warehouse_id": "wh-1",
            "query_text": "SELECT 1\n as value",
            "evaluation": {"source": {"name": "value"}, "comparison_operator": "GREATER_THAN",
                "threshold": {"value": {"double_value": 0.0}}},
            "schedule": {"quartz_cron_schedule": "0 0 9 10 1 ?", "timezone_id": "UTC"}}),
    );
    let alert_id = alert["id"].as_str().unwrap().to_string();
    run(
        &emu,
        &b,
        &["generate", "alert", "--existing-id", &alert_id, "--bind"],
    )
    .expect(0);
    let yaml = std::fs::read_to_string(b.root.join("resources/gen_alert.alert.yml")).unwrap();
    assert!(
        yaml.contains("file_path: ../src/gen_alert.dbalert.json"),
        "{yaml}"
    );
    assert!(yaml.contains("warehouse_id: wh-1"), "{yaml}");
    assert!(!yaml.contains("query"), "{yaml}");
    let file: Value =
        serde_json::from_slice(&std::fs::read(b.root.join("src/gen_alert.dbalert.json")).unwrap())
            .unwrap();
    assert_eq!(
        file["query_lines"],
        json!(["SELECT 1", " as value"]),
        "{file}"
    );
    assert_eq!(file["evaluation"]["comparison_operator"], "GREATER_THAN");
    assert_eq!(file["schedule"]["timezone_id"], "UTC");

    // Without --bind, a YAML the bundle's `include` leaves out is warned of
    // (the next deploy would skip it); one it takes in is not.
    let generate_copy = |dirs: &[&str]| {
        let mut args = vec![
            "generate",
            "alert",
            "--existing-id",
            &alert_id,
            "--key",
            "copy",
        ];
        args.extend(dirs);
        run(&emu, &b, &args).expect(0)
    };
    let out = generate_copy(&["-d", "elsewhere", "-s", "elsewhere"]);
    assert!(
        out.stderr
            .contains("elsewhere/copy.alert.yml is not matched by the bundle's `include`"),
        "{}",
        out.stderr
    );
    let out = generate_copy(&[]);
    assert!(!out.stderr.contains("Warning"), "{}", out.stderr);
    for copy in [
        "elsewhere/copy.alert.yml",
        "elsewhere/copy.dbalert.json",
        "resources/copy.alert.yml",
        "src/copy.dbalert.json",
    ] {
        std::fs::remove_file(b.root.join(copy)).unwrap();
    }

    // A Genie space: the same, as `<key>.geniespace.json`.
    let space = api.post(
        "/api/2.0/genie/spaces",
        &json!({"title": "Gen Space", "warehouse_id": "wh-1",
            "serialized_space": "{\"version\":1,\"config\":{\"sample_questions\":[]}}"}),
    );
    let space_id = space["space_id"].as_str().unwrap().to_string();
    run(
        &emu,
        &b,
        &[
            "generate",
            "genie-space",
            "--existing-id",
            &space_id,
            "--genie-space-dir",
            "src/genie",
            "--bind",
        ],
    )
    .expect(0);
    let yaml = std::fs::read_to_string(b.root.join("resources/gen_space.genie_space.yml")).unwrap();
    assert!(
        yaml.contains("file_path: ../src/genie/gen_space.geniespace.json"),
        "{yaml}"
    );
    let file: Value = serde_json::from_slice(
        &std::fs::read(b.root.join("src/genie/gen_space.geniespace.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        file,
        json!({"version": 1, "config": {"sample_questions": []}})
    );

    // A pipeline: its notebook and file libraries are downloaded (the
    // Databricks CLI's flag).
    let etl = b"# Databricks notebook source\nprint('etl')\n";
    write("/Workspace/Shared/gen/etl", etl, true);
    write("/Workspace/Shared/gen/util.py", b"X = 1\n", false);
    let pipeline = api.post(
        "/api/2.0/pipelines",
        &json!({"name": "Gen ETL", "catalog": "main", "schema": "gen", "serverless": true,
            "libraries": [{"notebook": {"path": "/Workspace/Shared/gen/etl"}},
                          {"file": {"path": "/Workspace/Shared/gen/util.py"}}]}),
    );
    let pipeline_id = pipeline["pipeline_id"].as_str().unwrap().to_string();
    run(
        &emu,
        &b,
        &[
            "generate",
            "pipeline",
            "--existing-pipeline-id",
            &pipeline_id,
            "--bind",
        ],
    )
    .expect(0);
    let yaml = std::fs::read_to_string(b.root.join("resources/gen_etl.pipeline.yml")).unwrap();
    assert!(yaml.contains("path: ../src/etl.py"), "{yaml}");
    assert!(yaml.contains("path: ../src/util.py"), "{yaml}");
    assert_eq!(std::fs::read(b.root.join("src/etl.py")).unwrap(), etl);
    assert_eq!(
        std::fs::read(b.root.join("src/util.py")).unwrap(),
        b"X = 1\n"
    );

    // Generating again does not overwrite; a wrong flag names the right one.
    let out = run(&emu, &b, &["generate", "job", "--existing-job-id", &job_id]).expect(1);
    assert!(out.stderr.contains("not overwriting"), "{}", out.stderr);
    let out = run(&emu, &b, &["generate", "app", "--existing-job-id", &job_id]).expect(1);
    assert!(out.stderr.contains("--existing-app-name"), "{}", out.stderr);

    // Bound to what exists: nothing to create, the instance, catalog and app
    // are up to date; the job only takes the bundle's marker and its
    // notebook from the bundle's files (as with the Databricks CLI).
    let plan = plan_json(&emu, &b);
    for addr in [
        "resources.apps.web",
        "resources.database_instances.gen_instance",
        "resources.database_catalogs.gen_catalog",
        "resources.synced_database_tables.features",
        "resources.dashboards.gen_sales",
        "resources.alerts.gen_alert",
        "resources.genie_spaces.gen_space",
    ] {
        assert_eq!(action_of(&plan, addr), json!(["no-op"]), "{addr}: {plan}");
    }
    let job_change = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "resources.jobs.gen_nightly")
        .cloned()
        .expect("job in plan");
    assert_eq!(job_change["actions"], json!(["update"]), "{plan}");
    // So does the pipeline its notebook and file.
    assert_eq!(
        action_of(&plan, "resources.pipelines.gen_etl"),
        json!(["update"]),
        "{plan}"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(api.jobs().len(), 1);
    assert_eq!(names(&api.instances()), vec!["gen-instance".to_string()]);
    let plan = plan_json(&emu, &b);
    for (addr, a) in actions(&plan) {
        assert_eq!(a, json!(["no-op"]), "{addr} after deploy: {plan}");
    }
}

#[test]
fn destroying_a_terraform_deployed_target_retires_its_terraform_state() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ws = Ws::new(&emu);
    let b = TestBundle::fixture("state_sharing/takeover");
    let job_id = create_objects(&api);
    let lineage = "7e57a1b2-0000-4000-8000-000000000003";
    ws.write(
        "terraform.tfstate",
        &serde_json::to_vec(&cli_terraform_state(&job_id, 4, lineage)).unwrap(),
    );
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(api.jobs().is_empty(), "the job it listed is deleted");
    // The terraform state lists objects that are gone: kept only as a backup,
    // so the next plan starts a new deployment instead of taking it over.
    assert!(ws.read("terraform.tfstate").is_none());
    assert!(ws.read("terraform.tfstate.backup").is_some());
    let plan = plan_json(&emu, &b);
    assert_ne!(plan["lineage"], lineage, "{plan}");
}
