//! Engine core against the real emulator (HTTP, its own data dir and port):
//! plan with remote reads, the executor, state in the workspace, the lock,
//! drift, failure fan-out, and convergence under injected faults.

mod common;
mod engine_support;

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use common::Emulator;
use engine_support::{load_bundle, seed_resources};
use lakebundle::api::{Client, ClientConfig, Method, Secret};
use lakebundle::apply::{apply, destroy, ApplyEvent, ApplyEventKind, ApplyOptions, ApplyReport};
use lakebundle::config::model::{Bundle, CurrentUser};
use lakebundle::plan::{make_plan, Action, Plan, PlanOptions};
use lakebundle::resources::{Kind, ResourceAddr};
use lakebundle::state::{DeployLock, StateError, StateStore};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const USER: &str = "tester@example.com";

/// Instance, catalog, synced table and job of the seed bundle, wired by references.
static STACK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "bundle:\n  name: engine-stack\n{}",
        seed_resources("src_catalog", "src_schema")
    )
});

struct World {
    emu: Emulator,
    client: Client,
    dir: tempfile::TempDir,
}

fn client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(20),
        retry_budget: Duration::from_secs(60),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        ..ClientConfig::default()
    }
}

impl World {
    fn start(extra: &[&str]) -> World {
        let mut args = vec!["--no-postgres", "--user", USER];
        args.extend_from_slice(extra);
        let emu = Emulator::start_with(&args);
        let client = Client::with_token(&emu.url, Secret::new(emu.token.clone()), client_config())
            .expect("client");
        World {
            emu,
            client,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn bundle(&self, yaml: &str) -> Bundle {
        load_in(self.dir.path(), yaml)
    }

    async fn store(&self, b: &Bundle) -> StateStore {
        StateStore::for_bundle(b, Some(&self.client))
            .await
            .expect("state opens")
    }

    async fn plan(&self, b: &Bundle) -> Plan {
        self.plan_with(b, &self.store(b).await).await
    }

    /// A refreshing plan against `store`'s state.
    async fn plan_with(&self, b: &Bundle, store: &StateStore) -> Plan {
        make_plan(
            b,
            &store.snapshot(),
            Some(&self.client),
            &PlanOptions {
                refresh: true,
                parallelism: 8,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("plan failed: {e}"))
    }

    /// Plan and apply, as `deploy` does; returns the plan, the report and the events.
    async fn deploy(&self, b: &Bundle) -> (Plan, ApplyReport, Vec<ApplyEvent>) {
        let store = self.store(b).await;
        let plan = self.plan_with(b, &store).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let report = apply(b, &plan, &store, &self.client, &opts(), tx)
            .await
            .expect("apply runs");
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        (plan, report, events)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Value {
        self.client
            .call(Method::GET, path, query, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn count(&self, path: &str, key: &str) -> usize {
        let v = self.get(path, &[]).await;
        v.get(key)
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0)
    }
}

fn load_in(dir: &Path, yaml: &str) -> Bundle {
    let user = CurrentUser {
        user_name: USER.into(),
        short_name: "tester".into(),
        attributes: Default::default(),
    };
    load_bundle(dir, yaml, Some(user)).unwrap_or_else(|e| panic!("bundle does not load:\n{e}"))
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        parallelism: 8,
        wait_timeout: Duration::from_secs(30),
        ..ApplyOptions::default()
    }
}

fn addr(kind: Kind, key: &str) -> ResourceAddr {
    ResourceAddr::new(kind, key)
}

fn describe(plan: &Plan) -> Vec<(String, Action, Vec<String>)> {
    plan.changes
        .iter()
        .map(|c| {
            (
                c.addr.to_string(),
                c.action,
                c.fields
                    .iter()
                    .map(|f| format!("{}: {:?} -> {:?}", f.path, f.old, f.new))
                    .collect(),
            )
        })
        .collect()
}

fn assert_ok(report: &ApplyReport) {
    assert!(
        report.ok(),
        "deploy did not succeed: failed {:?}, skipped {:?}",
        report.failed,
        report.skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_noop_update_replace_destroy() {
    let w = World::start(&[]);
    let b = w.bundle(&STACK);

    let (plan, report, events) = w.deploy(&b).await;
    assert_eq!(plan.counts(), (4, 0, 0));
    assert_ok(&report);
    assert_eq!(report.succeeded.len(), 4);
    // The job started only after the synced table it references was done.
    let pos = |a: &ResourceAddr, pred: &dyn Fn(&ApplyEventKind) -> bool| {
        events
            .iter()
            .position(|e| &e.addr == a && pred(&e.kind))
            .unwrap_or_else(|| panic!("no event for {a}"))
    };
    let synced = addr(Kind::SyncedDatabaseTables, "features_sync");
    let job = addr(Kind::Jobs, "sync_schedule");
    assert!(
        pos(&synced, &|k| matches!(k, ApplyEventKind::Succeeded { .. }))
            < pos(&job, &|k| matches!(k, ApplyEventKind::Started { .. }))
    );

    // The deferred pipeline id was filled from the table's outputs.
    let store = w.store(&b).await;
    let state = store.snapshot();
    let pipeline =
        state.get(&synced).unwrap().outputs["data_synchronization_status"]["pipeline_id"].clone();
    assert!(
        pipeline.as_str().is_some_and(|p| !p.is_empty()),
        "{pipeline}"
    );
    let job_state = state.get(&job).unwrap();
    assert_eq!(
        job_state.applied["tasks"][0]["pipeline_task"]["pipeline_id"],
        pipeline
    );
    let remote_job = w
        .get("/api/2.2/jobs/get", &[("job_id", job_state.id.clone())])
        .await;
    assert_eq!(
        remote_job["settings"]["tasks"][0]["pipeline_task"]["pipeline_id"],
        pipeline
    );

    // Server-filled defaults are not changes.
    let again = w.plan(&b).await;
    assert!(!again.has_changes(), "{:#?}", describe(&again));

    // A capacity change is an update in place.
    let bigger = w.bundle(&STACK.replace("CU_1", "CU_2"));
    let (plan, report, _) = w.deploy(&bigger).await;
    assert_eq!(plan.counts(), (0, 1, 0), "{:#?}", describe(&plan));
    assert_ok(&report);
    assert_eq!(
        w.get("/api/2.0/database/instances/my-instance", &[]).await["capacity"],
        json!("CU_2")
    );
    assert!(!w.plan(&bigger).await.has_changes());

    // Renaming the instance replaces it; its dependents follow.
    let renamed = w.bundle(
        &STACK
            .replace("CU_1", "CU_2")
            .replace("name: my-instance", "name: my-instance-b"),
    );
    let (plan, report, _) = w.deploy(&renamed).await;
    assert_eq!(plan.counts(), (3, 1, 3), "{:#?}", describe(&plan));
    assert_ok(&report);
    let instances = w.get("/api/2.0/database/instances", &[]).await;
    let names: Vec<&str> = instances["database_instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["state"] != json!("DELETING"))
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, vec!["my-instance-b"]);
    let after = w.plan(&renamed).await;
    assert!(!after.has_changes(), "{:#?}", describe(&after));

    // Destroy leaves nothing behind, state included.
    let store = w.store(&renamed).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let plan = store
        .read(|st| lakebundle::plan::build::make_destroy_plan(&renamed, st))
        .unwrap();
    let report = destroy(&renamed, &plan, &store, &w.client, &opts(), tx)
        .await
        .unwrap();
    assert_ok(&report);
    assert_eq!(report.succeeded.len(), 4);
    assert_eq!(w.count("/api/2.2/jobs/list", "jobs").await, 0);
    let left: Vec<Value> = w.get("/api/2.0/database/instances", &[]).await["database_instances"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i["state"] != json!("DELETING"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let reopened = w.store(&renamed).await.snapshot();
    assert!(reopened.is_new() && reopened.resources.is_empty());
    drop(w.emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_shows_the_remote_value_and_is_planned_back() {
    let w = World::start(&[]);
    let yaml = "bundle: {name: drift}\nresources:\n  jobs:\n    nightly:\n      name: nightly-job\n      max_concurrent_runs: 1\n";
    let b = w.bundle(yaml);
    let (_, report, _) = w.deploy(&b).await;
    assert_ok(&report);
    let job = addr(Kind::Jobs, "nightly");
    let id = w.store(&b).await.snapshot().get(&job).unwrap().id.clone();
    let body =
        json!({"job_id": id.parse::<i64>().unwrap(), "new_settings": {"name": "renamed-in-ui"}});
    w.client
        .call(Method::POST, "/api/2.2/jobs/update", &[], Some(&body))
        .await
        .unwrap();

    let plan = w.plan(&b).await;
    let c = plan.change(&job).unwrap();
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.reason.as_deref(), Some("changed outside lakebundle"));
    assert_eq!(c.drift.len(), 1, "{:?}", c.drift);
    assert_eq!(
        (c.drift[0].path.as_str(), c.drift[0].new.clone()),
        ("name", Some(json!("renamed-in-ui")))
    );
    assert_eq!(c.fields[0].old, Some(json!("renamed-in-ui")));
    assert_eq!(c.fields[0].new, Some(json!("nightly-job")));

    let (_, report, _) = w.deploy(&b).await;
    assert_ok(&report);
    let remote = w.get("/api/2.2/jobs/get", &[("job_id", id)]).await;
    assert_eq!(remote["settings"]["name"], json!("nightly-job"));
    assert!(!w.plan(&b).await.has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_deleted_outside_is_recreated() {
    let w = World::start(&[]);
    let b = w.bundle("bundle: {name: gone}\nresources:\n  jobs:\n    j:\n      name: j1\n");
    assert_ok(&w.deploy(&b).await.1);
    let id = w
        .store(&b)
        .await
        .snapshot()
        .get(&addr(Kind::Jobs, "j"))
        .unwrap()
        .id
        .clone();
    let body = json!({"job_id": id.parse::<i64>().unwrap()});
    w.client
        .call(Method::POST, "/api/2.2/jobs/delete", &[], Some(&body))
        .await
        .unwrap();
    let plan = w.plan(&b).await;
    let c = plan.change(&addr(Kind::Jobs, "j")).unwrap();
    assert_eq!(
        (c.action, c.reason.as_deref()),
        (Action::Create, Some("deleted outside lakebundle"))
    );
    assert_ok(&w.deploy(&b).await.1);
    assert_eq!(w.count("/api/2.2/jobs/list", "jobs").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_skips_dependents_and_independent_work_goes_on() {
    let w = World::start(&[]);
    // The catalog names an instance that does not exist: its create fails with the
    // server's message; the table on it is skipped; the unrelated job is created.
    let yaml = r#"
bundle: {name: partial}
resources:
  database_catalogs:
    cat:
      name: cat_x
      database_instance_name: no-such-instance
      database_name: d
  synced_database_tables:
    t:
      name: ${resources.database_catalogs.cat.name}.s.t
      spec:
        source_table_full_name: a.b.c
        scheduling_policy: SNAPSHOT
        primary_key_columns: [id]
        new_pipeline_spec: {storage_catalog: a, storage_schema: b}
      description: "${resources.database_catalogs.cat.uid}"
  jobs:
    independent:
      name: independent-job
"#;
    let b = w.bundle(yaml);
    let (_, report, events) = w.deploy(&b).await;
    let cat = addr(Kind::DatabaseCatalogs, "cat");
    let table = addr(Kind::SyncedDatabaseTables, "t");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0, cat);
    assert!(
        report.failed[0].1.contains("no-such-instance"),
        "server message kept: {}",
        report.failed[0].1
    );
    assert_eq!(
        report.skipped,
        vec![(
            table.clone(),
            "dependency resources.database_catalogs.cat failed".to_string()
        )]
    );
    assert_eq!(report.succeeded, vec![addr(Kind::Jobs, "independent")]);
    assert!(events
        .iter()
        .any(|e| e.addr == table && matches!(e.kind, ApplyEventKind::Skipped { .. })));
    // The success was recorded even though the run failed overall.
    assert!(w
        .store(&b)
        .await
        .snapshot()
        .get(&addr(Kind::Jobs, "independent"))
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_lives_in_the_workspace_and_lineage_is_checked() {
    let w = World::start(&[]);
    let b = w.bundle("bundle: {name: remote-state}\nresources:\n  jobs:\n    j:\n      name: j1\n");
    assert_ok(&w.deploy(&b).await.1);
    let local = w.store(&b).await.snapshot();
    assert!(local.serial >= 1);

    // The local cache is gone (another machine): the workspace copy is used.
    std::fs::remove_dir_all(b.root.join(".lakebundle")).unwrap();
    let from_remote = w.store(&b).await.snapshot();
    assert_eq!(
        (from_remote.lineage.clone(), from_remote.serial),
        (local.lineage.clone(), local.serial)
    );
    assert!(from_remote.get(&addr(Kind::Jobs, "j")).is_some());

    // A cache from another deployment history is refused.
    let mut foreign = from_remote.clone();
    foreign.lineage = "someone-else".into();
    lakebundle::state::LocalStore::new(&b.root, &b.target)
        .write_snapshot(&foreign)
        .unwrap();
    let err = StateStore::for_bundle(&b, Some(&w.client))
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::LineageMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_exclusive_names_its_holder_and_can_be_forced() {
    let w = World::start(&[]);
    let b = w.bundle("bundle: {name: locked}\n");
    let state_path = b.workspace.state_path.clone();
    let first = DeployLock::acquire(&w.client, &state_path, "alice@example.com", "deploy", false)
        .await
        .unwrap();
    let err = DeployLock::acquire(&w.client, &state_path, "bob@example.com", "destroy", false)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("alice@example.com")
            && msg.contains("deploy")
            && msg.contains(&first.info().acquired_at),
        "{msg}"
    );

    let forced = DeployLock::acquire(&w.client, &state_path, "bob@example.com", "destroy", true)
        .await
        .unwrap();
    assert_eq!(forced.info().user, "bob@example.com");
    // The first holder no longer owns it and must not delete bob's lock.
    let lost = first.release().await.unwrap_err();
    assert!(matches!(lost, StateError::LockLost { .. }), "{lost}");
    forced.release().await.unwrap();
    let again = DeployLock::acquire(&w.client, &state_path, "carol@example.com", "deploy", false)
        .await
        .unwrap();
    again.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_without_duplicates_under_faults() {
    let w = World::start(&[
        "--fail-rate",
        "0.2",
        "--lost-response-rate",
        "0.1",
        "--seed",
        "11",
    ]);
    let mut yaml = String::from("bundle: {name: faults}\nresources:\n  database_instances:\n");
    for i in 0..3 {
        yaml.push_str(&format!(
            "    db{i}: {{name: fault-db-{i}, capacity: CU_1}}\n"
        ));
    }
    yaml.push_str("  jobs:\n");
    for i in 0..12 {
        yaml.push_str(&format!("    job{i}: {{name: fault-job-{i}, description: \"on ${{resources.database_instances.db{}.name}}\"}}\n", i % 3));
    }
    let b = w.bundle(&yaml);
    let mut converged = false;
    let (mut runs, mut adopted, mut failures) = (0, 0, 0);
    for _ in 0..6 {
        let store = w.store(&b).await;
        let plan = match make_plan(
            &b,
            &store.snapshot(),
            Some(&w.client),
            &PlanOptions {
                refresh: true,
                parallelism: 8,
                ..Default::default()
            },
        )
        .await
        {
            Ok(p) => p,
            Err(_) => continue, // a read failed past the retry budget: re-run, as a user would
        };
        if !plan.has_changes() {
            converged = true;
            break;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        runs += 1;
        if let Ok(report) = apply(&b, &plan, &store, &w.client, &opts(), tx).await {
            failures += report.failed.len();
        }
        while let Ok(e) = rx.try_recv() {
            if matches!(&e.kind, ApplyEventKind::Progress { message } if message.starts_with("adopted"))
            {
                adopted += 1;
            }
        }
    }
    println!("fault run: {runs} deploy runs, {failures} failed operations, {adopted} adoptions after lost responses");
    assert!(converged, "did not converge in 6 runs");
    assert!(
        adopted > 0,
        "the seed should lose at least one create response"
    );
    // Exactly one remote object per configured resource.
    let jobs = list_all_jobs(&w.client).await;
    let mut names: Vec<String> = jobs
        .iter()
        .filter_map(|j| j["settings"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("fault-job-{i}")).collect();
    expected.sort();
    assert_eq!(names, expected, "duplicate or missing jobs");
}

async fn list_all_jobs(client: &Client) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("limit", "100".to_string())];
        if let Some(t) = &token {
            q.push(("page_token", t.clone()));
        }
        // The faulty server may fail a read past the client's retries; ask again.
        let mut page = None;
        for _ in 0..20 {
            if let Ok(p) = client
                .call(Method::GET, "/api/2.2/jobs/list", &q, None)
                .await
            {
                page = Some(p);
                break;
            }
        }
        let page = page.expect("jobs/list keeps failing");
        out.extend(page["jobs"].as_array().cloned().unwrap_or_default());
        token = page["next_page_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_applied_diffed_and_drift_is_seen() {
    let w = World::start(&[]);
    let yaml = "bundle: {name: perms}\nresources:\n  jobs:\n    j:\n      name: guarded\n      permissions:\n        - {level: CAN_VIEW, group_name: analysts}\n        - {level: CAN_MANAGE_RUN, user_name: ops@example.com}\n";
    let b = w.bundle(yaml);
    assert_ok(&w.deploy(&b).await.1);
    let j = addr(Kind::Jobs, "j");
    let id = w.store(&b).await.snapshot().get(&j).unwrap().id.clone();
    let acl = w.get(&format!("/api/2.0/permissions/jobs/{id}"), &[]).await;
    let text = acl.to_string();
    assert!(
        text.contains("analysts") && text.contains("CAN_MANAGE_RUN"),
        "{text}"
    );
    // The owner the server adds, and inherited admin grants, are not changes.
    let plan = w.plan(&b).await;
    assert!(!plan.has_changes(), "{:#?}", describe(&plan));

    // Changed outside lakebundle: drift, planned back.
    let body = json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_MANAGE"}]});
    w.client
        .call(
            Method::PATCH,
            &format!("/api/2.0/permissions/jobs/{id}"),
            &[],
            Some(&body),
        )
        .await
        .unwrap();
    let plan = w.plan(&b).await;
    let c = plan.change(&j).unwrap();
    assert_eq!(c.action, Action::Update);
    assert_eq!(
        c.drift.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(),
        vec!["permissions"]
    );
    assert_ok(&w.deploy(&b).await.1);
    assert!(!w.plan(&b).await.has_changes());

    // A changed level in config is an update of the permissions only.
    let b2 = w.bundle(&yaml.replace("CAN_VIEW", "CAN_MANAGE"));
    let (plan, report, _) = w.deploy(&b2).await;
    assert_ok(&report);
    let c = plan.change(&j).unwrap();
    assert_eq!(
        c.fields.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        vec!["permissions"]
    );
    assert!(!w.plan(&b2).await.has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_interrupted_by_a_crash_is_adopted_not_duplicated() {
    let w = World::start(&[]);
    let b = w.bundle("bundle: {name: crashy}\nresources:\n  jobs:\n    j:\n      name: crash-job\n      max_concurrent_runs: 1\n");
    let j = addr(Kind::Jobs, "j");
    {
        // What a deploy killed right after its create call leaves: the intent in
        // the local log, the job in the workspace, nothing recorded.
        let store = w.store(&b).await;
        store.intend(&j).unwrap();
        let body = lakebundle::plan::build::managed_config(&b, &j, &b.resources[&j].value);
        let kind = lakebundle::resources::kind_impl(Kind::Jobs);
        kind.create(&w.client, &lakebundle::plan::build::api_view(&body))
            .await
            .unwrap();
    }
    let plan = w.plan(&b).await;
    let c = plan.change(&j).unwrap();
    assert_eq!(c.action, Action::Create);
    assert!(
        c.reason.as_deref().unwrap_or("").contains("interrupted"),
        "{:?}",
        c.reason
    );
    let (_, report, events) = w.deploy(&b).await;
    assert_ok(&report);
    assert!(events.iter().any(
        |e| matches!(&e.kind, ApplyEventKind::Progress { message } if message.contains("adopted"))
    ));
    assert_eq!(
        w.count("/api/2.2/jobs/list", "jobs").await,
        1,
        "no duplicate job"
    );
    let state = w.store(&b).await.snapshot();
    assert!(state.pending.is_empty());
    assert!(!w.plan(&b).await.has_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_finishes_in_flight_work_and_records_it() {
    let w = World::start(&["--latency-ms", "30"]);
    let mut yaml = String::from("bundle: {name: cancel}\nresources:\n  jobs:\n");
    for i in 0..20 {
        yaml.push_str(&format!("    j{i}: {{name: cancel-job-{i}}}\n"));
    }
    let b = w.bundle(&yaml);
    let store = w.store(&b).await;
    let plan = make_plan(
        &b,
        &store.snapshot(),
        Some(&w.client),
        &PlanOptions::default(),
    )
    .await
    .unwrap();
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let o = ApplyOptions {
        parallelism: 2,
        cancel: Some(cancel_rx),
        ..opts()
    };
    let run = apply(&b, &plan, &store, &w.client, &o, tx);
    let stopper = async {
        // Ctrl-C once the first resource is done.
        while let Some(e) = rx.recv().await {
            if matches!(e.kind, ApplyEventKind::Succeeded { .. }) {
                cancel_tx.send_replace(true);
                break;
            }
        }
    };
    let (report, ()) = tokio::join!(run, stopper);
    let report = report.unwrap();
    assert!(report.interrupted);
    assert!(
        !report.succeeded.is_empty() && report.succeeded.len() < 20,
        "{report:?}"
    );
    assert!(report.skipped.iter().all(|(_, why)| why == "interrupted"));
    assert!(report.failed.is_empty());
    // Everything that finished is in state, and exists remotely exactly once.
    let state = w.store(&b).await.snapshot();
    assert_eq!(state.resources.len(), report.succeeded.len());
    assert_eq!(
        w.count("/api/2.2/jobs/list", "jobs").await,
        report.succeeded.len()
    );
    // A re-run resumes with the rest.
    let (plan, report, _) = w.deploy(&b).await;
    assert_ok(&report);
    assert_eq!(plan.counts().0, 20 - state.resources.len());
}
