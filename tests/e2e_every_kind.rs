//! End-to-end: one bundle with every resource kind of the schema, wired together by
//! references (tests/fixtures/every_kind), through the real binary against a fresh
//! emulator: the bundle covers every kind `lakebundle schema` knows; deploy; a no-op
//! plan; in-place updates of a few kinds and a replacement; destroy leaving nothing.

mod common;
mod e2e_support;

use std::collections::BTreeSet;

use common::Emulator;
use e2e_support::{command, Api, Run, TestBundle};
use serde_json::{json, Value};

const UC: &str = "/api/2.1/unity-catalog";
const PASSWORD: &str = "s3cr3t-every-kind-value";

/// Records-only emulator whose lake holds `lake.raw.orders` (the monitored table and the
/// source of the postgres synced table).
fn emulator() -> Emulator {
    let emu = Emulator::start_with(&["--no-postgres", "--transition-ms", "100"]);
    let dir = emu.data_dir().join("lake").join("lake").join("raw");
    std::fs::create_dir_all(&dir).expect("lake dir");
    std::fs::write(dir.join("orders.csv"), "id,amount\n1,10\n2,32\n").expect("lake table");
    emu
}

/// `lakebundle ARGS` with the UC secret's value given through the environment.
fn run(emu: &Emulator, b: &TestBundle, args: &[&str]) -> Run {
    let out = command(emu, b, args)
        .env("BUNDLE_VAR_db_password", PASSWORD)
        .output()
        .expect("run lakebundle");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // `validate -o json` prints the resolved configuration, value included.
    if args.last() != Some(&"validate") {
        assert!(
            !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
            "secret in the output of {args:?}"
        );
    }
    run
}

fn plan_json(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "plan"]).expect(0);
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

/// Every resource whose planned action is not a no-op, with its actions.
fn changes(plan: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["actions"] != json!(["no-op"]))
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["actions"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_no_op(emu: &Emulator, b: &TestBundle) {
    let out = run(emu, b, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.code, 0,
        "expected a no-op plan\n{}\n{}",
        out.stdout, out.stderr
    );
}

/// The resource kinds of the generated JSON schema (`$defs.Resources.properties`).
fn schema_kinds(emu: &Emulator) -> BTreeSet<String> {
    let out = emu.lakebundle().arg("schema").output().expect("run schema");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: Value = serde_json::from_slice(&out.stdout).expect("schema JSON");
    let kinds: BTreeSet<String> = schema["$defs"]["Resources"]["properties"]
        .as_object()
        .expect("Resources properties")
        .keys()
        .cloned()
        .collect();
    assert!(kinds.len() >= 33, "{kinds:?}");
    kinds
}

#[test]
fn every_kind_deploys_plans_updates_and_destroys() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("every_kind");

    // The bundle uses every kind the schema has: a kind added later fails here.
    let out = run(&emu, &b, &["-o", "json", "validate"]).expect(0);
    let config: Value = serde_json::from_str(&out.stdout).expect("validate JSON");
    let used: BTreeSet<String> = config["resources"]
        .as_object()
        .expect("resources")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        used,
        schema_kinds(&emu),
        "kinds of the bundle vs the schema"
    );
    let addresses: Vec<String> = config["resources"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(kind, items)| {
            items
                .as_object()
                .into_iter()
                .flatten()
                .map(move |(key, _)| format!("resources.{kind}.{key}"))
        })
        .collect();

    // Deploy: everything is created and has its id in state.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout.contains(&format!(
            "Plan: {} to add, 0 to change, 0 to destroy.",
            addresses.len()
        )),
        "{}",
        out.stdout
    );
    for addr in &addresses {
        assert!(b.state_id(addr).is_some(), "{addr} has no id in state");
    }
    let id = |addr: &str| b.state_id(addr).expect("id in state");

    // References were resolved to the bundle's own objects.
    let job = api
        .get(
            "/api/2.2/jobs/get",
            &[("job_id", id("resources.jobs.nightly"))],
        )
        .expect("job");
    let tasks = job["settings"]["tasks"].as_array().expect("tasks").clone();
    let task = |key: &str| {
        tasks
            .iter()
            .find(|t| t["task_key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("task {key}: {job}"))
    };
    assert_eq!(
        task("on_shared")["existing_cluster_id"],
        id("resources.clusters.shared").as_str()
    );
    assert_eq!(
        task("refresh_etl")["pipeline_task"]["pipeline_id"],
        id("resources.pipelines.etl").as_str()
    );
    assert_eq!(
        task("report")["sql_task"]["warehouse_id"],
        id("resources.sql_warehouses.wh").as_str()
    );
    let serving = api
        .get("/api/2.0/serving-endpoints/every-endpoint", &[])
        .expect("serving endpoint");
    assert_eq!(
        serving["config"]["served_entities"][0]["entity_name"], "every_main.core.churn",
        "{serving}"
    );
    let vol = api
        .get(&format!("{UC}/volumes/every_main.core.drops"), &[])
        .expect("volume");
    assert_eq!(vol["storage_location"], "s3://every-bucket/landing/drops");
    let secret = api
        .get(&format!("{UC}/secrets/every_main.core.db_password"), &[])
        .expect("UC secret");
    assert_eq!(secret["catalog_name"], "every_main", "{secret}");
    assert_eq!(
        id("resources.postgres_endpoints.reader"),
        "projects/every-app/branches/dev/endpoints/reader"
    );
    let run_id = id("resources.job_runs.backfill");
    let r = api
        .get("/api/2.2/jobs/runs/get", &[("run_id", run_id)])
        .expect("run");
    assert_eq!(
        r["job_id"].to_string().trim_matches('"'),
        id("resources.jobs.etl")
    );

    // Right after deploy: nothing to do.
    assert_no_op(&emu, &b);

    // In-place updates of a few kinds, and a replacement on an immutable field.
    b.edit("comment: every kind\n", "comment: every kind v2\n");
    b.edit("auto_stop_mins: 10\n", "auto_stop_mins: 20\n");
    b.edit("comment: churn model\n", "comment: churn model v2\n");
    b.edit("name: every-nightly\n", "name: every-nightly-2\n");
    b.edit("endpoint_id: reader\n", "endpoint_id: reader-two\n");
    let plan = plan_json(&emu, &b);
    assert_eq!(
        changes(&plan),
        vec![
            ("resources.catalogs.main".to_string(), json!(["update"])),
            ("resources.jobs.nightly".to_string(), json!(["update"])),
            (
                "resources.postgres_endpoints.reader".to_string(),
                json!(["delete", "create"])
            ),
            (
                "resources.registered_models.churn".to_string(),
                json!(["update"])
            ),
            ("resources.sql_warehouses.wh".to_string(), json!(["update"])),
        ],
        "{plan}"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let cat = api
        .get(&format!("{UC}/catalogs/every_main"), &[])
        .expect("catalog");
    assert_eq!(cat["comment"], "every kind v2");
    assert_eq!(
        id("resources.postgres_endpoints.reader"),
        "projects/every-app/branches/dev/endpoints/reader-two"
    );
    assert_no_op(&emu, &b);

    // Destroy: state is empty and the workspace holds none of the objects.
    let alert = id("resources.alerts.revenue");
    let space = id("resources.genie_spaces.taxi");
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    let state_file = b.root.join(".lakebundle/prod/resources.json");
    if state_file.exists() {
        let state = b.state();
        assert!(
            state["state"].as_object().is_none_or(|m| m.is_empty()),
            "{state}"
        );
    }
    assert!(api.get(&format!("{UC}/catalogs/every_main"), &[]).is_none());
    assert!(api
        .get(&format!("{UC}/external-locations/every_landing"), &[])
        .is_none());
    assert!(api
        .get(&format!("{UC}/tables/lake.raw.orders/monitor"), &[])
        .is_none());
    assert!(api.jobs().is_empty());
    assert!(api.apps().is_empty());
    assert!(api.instances().is_empty());
    assert!(api.catalog("every_pg").is_none());
    assert!(api
        .list(
            "/api/2.0/postgres/projects",
            "projects",
            &[("show_deleted", "true".into())]
        )
        .is_empty());
    assert!(api
        .list("/api/2.1/clusters/list", "clusters", &[])
        .is_empty());
    assert!(api
        .list("/api/2.0/instance-pools/list", "instance_pools", &[])
        .is_empty());
    assert!(api
        .list("/api/2.0/vector-search/endpoints", "endpoints", &[])
        .is_empty());
    assert!(api
        .get("/api/2.0/serving-endpoints/every-endpoint", &[])
        .is_none());
    // Deleted warehouses stay readable as DELETED; the list leaves them out.
    assert!(api
        .list("/api/2.0/sql/warehouses", "warehouses", &[])
        .is_empty());
    assert!(api.list("/api/2.0/pipelines", "statuses", &[]).is_empty());
    assert!(api
        .list("/api/2.0/secrets/scopes/list", "scopes", &[])
        .is_empty());
    assert!(api.get(&format!("/api/2.0/alerts/{alert}"), &[]).is_none());
    assert!(api
        .get(&format!("/api/2.0/genie/spaces/{space}"), &[])
        .is_none());
}
