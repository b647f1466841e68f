//! Engine core without a workspace: the resource graph of real bundles
//! (loaded by the real loader), and planning from state alone
//! (`--refresh=false`): actions, replacement propagation, unknown values,
//! prevent_destroy, unsupported kinds, saved-plan freshness.

mod engine_support;

use std::path::Path;
use std::sync::LazyLock;

use engine_support::{load_bundle, seed_resources};

use lakebundle::config::model::Bundle;
use lakebundle::graph::ResourceGraph;
use lakebundle::plan::build::{fill_refs, managed_config, state_field};
use lakebundle::plan::{
    check_plan_fresh, config_hash, make_destroy_plan, make_plan, Action, EngineError, Plan,
    PlanOptions,
};
use lakebundle::resources::{Kind, ResourceAddr};
use lakebundle::state::{DeploymentState, ResourceState};
use serde_json::{json, Value};

/// The seed's full production bundle (lakebase-provisioned.md §8).
static SEED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{SEED_HEAD}{}\n{SEED_TARGETS}",
        seed_resources("${var.source_catalog}", "${var.source_schema}")
    )
});
const SEED_HEAD: &str = r#"
bundle:
  name: lakebase-app

variables:
  source_catalog:
    description: "Source UC catalog"
  source_schema:
    description: "Source UC schema"

"#;
const SEED_TARGETS: &str = r#"targets:
  prod:
    default: true
    variables:
      source_catalog: prod_catalog
      source_schema: prod_schema
"#;

fn load_yaml(dir: &Path, yaml: &str) -> Result<Bundle, String> {
    load_bundle(dir, yaml, None)
}

fn bundle(yaml: &str) -> Bundle {
    let dir = tempfile::tempdir().unwrap();
    load_yaml(dir.path(), yaml).unwrap_or_else(|e| panic!("bundle does not load:\n{e}"))
}

fn addr(kind: Kind, key: &str) -> ResourceAddr {
    ResourceAddr::new(kind, key)
}

fn instance() -> ResourceAddr {
    addr(Kind::DatabaseInstances, "my_db")
}
fn catalog() -> ResourceAddr {
    addr(Kind::DatabaseCatalogs, "my_cat")
}
fn synced() -> ResourceAddr {
    addr(Kind::SyncedDatabaseTables, "features_sync")
}
fn job() -> ResourceAddr {
    addr(Kind::Jobs, "sync_schedule")
}

/// What a successful deploy of `b` records: each config with its deferred
/// references filled from the outputs recorded before it (graph order).
fn deployed_state(b: &Bundle) -> DeploymentState {
    let graph = ResourceGraph::build(b).unwrap();
    let mut state = DeploymentState::new();
    for a in graph.topo_order() {
        let rc = &b.resources[&a];
        // As the executor records it: with the fields lakebundle manages itself.
        let applied = fill_refs(&managed_config(b, &a, &rc.value), &|t, f| {
            state.get(t).and_then(|rs| state_field(rs, f))
        });
        let name = applied
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("x")
            .to_string();
        let (id, outputs) = match a.kind {
            Kind::Jobs => ("1001".to_string(), json!({"id": "1001"})),
            Kind::SyncedDatabaseTables => (
                name.clone(),
                json!({"data_synchronization_status": {"pipeline_id": format!("pipe-{name}")}}),
            ),
            _ => (name.clone(), json!({"uid": format!("uid-{name}")})),
        };
        state.serial += 1;
        state.resources.insert(
            a.clone(),
            ResourceState {
                id,
                applied,
                outputs,
                depends_on: graph.dependencies(&a),
            },
        );
    }
    state
}

async fn plan_offline(b: &Bundle, state: &DeploymentState) -> Result<Plan, EngineError> {
    make_plan(
        b,
        state,
        None,
        &PlanOptions {
            refresh: false,
            parallelism: 4,
            ..Default::default()
        },
    )
    .await
}

fn action_of(plan: &Plan, a: &ResourceAddr) -> Action {
    plan.change(a)
        .unwrap_or_else(|| panic!("{a} not in plan"))
        .action
}

#[test]
fn seed_graph_has_explicit_edges_and_dependency_order() {
    let b = bundle(&SEED);
    let g = ResourceGraph::build(&b).unwrap();
    assert_eq!(g.topo_order(), vec![instance(), catalog(), synced(), job()]);
    assert_eq!(g.dependencies(&synced()), vec![instance(), catalog()]);
    assert_eq!(g.dependents(&instance()), vec![catalog(), synced()]);
    let edges = g.edges();
    assert!(edges.iter().any(|e| e.from == job()
        && e.to == synced()
        && e.via.contains("data_synchronization_status.pipeline_id")));
    assert!(edges.iter().all(|e| e.span.is_some()));

    let j = g.to_json();
    assert_eq!(j["nodes"][0], json!("resources.database_instances.my_db"));
    assert!(j["edges"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["from"].is_string() && e["via"].is_string()));
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph"));
    assert!(
        dot.contains(
            r#""resources.database_catalogs.my_cat" -> "resources.database_instances.my_db""#
        ),
        "{dot}"
    );
    let tree = g.to_text_tree();
    assert!(
        tree.contains(
            "resources.jobs.sync_schedule\n  └─ resources.synced_database_tables.features_sync"
        ),
        "{tree}"
    );
}

#[test]
fn implicit_links_by_name_become_edges() {
    let b = bundle(
        r#"
bundle: {name: implicit}
resources:
  database_instances:
    db: {name: shared-db, capacity: CU_1}
  database_catalogs:
    cat: {name: cat1, database_instance_name: shared-db, database_name: d}
  apps:
    web:
      name: web-app
      source_code_path: ./app
      resources:
        - name: pg
          database: {instance_name: shared-db, database_name: d, permission: CAN_CONNECT_AND_CREATE}
"#,
    );
    let g = ResourceGraph::build(&b).unwrap();
    let db = addr(Kind::DatabaseInstances, "db");
    let edges = g.edges();
    let cat_edge = edges
        .iter()
        .find(|e| e.from == addr(Kind::DatabaseCatalogs, "cat"))
        .expect("catalog edge");
    assert_eq!(
        (cat_edge.to.clone(), cat_edge.via.as_str()),
        (db.clone(), "implicit: database_instance_name")
    );
    assert!(cat_edge.span.is_some());
    let app_edge = edges
        .iter()
        .find(|e| e.from == addr(Kind::Apps, "web"))
        .expect("app edge");
    assert_eq!(
        app_edge.via,
        "implicit: resources[0].database.instance_name"
    );
    assert!(app_edge.span.is_some(), "span of a field inside a list");
    assert_eq!(g.topo_order()[0], db);
}

#[test]
fn cycle_is_one_diagnostic_listing_every_edge() {
    // Implicit links by name form the loop, so only the graph can see it
    // (the loader already rejects loops of explicit references).
    let b = bundle(
        r#"
bundle: {name: cyclic}
resources:
  database_instances:
    a:
      name: inst-a
      capacity: CU_1
      parent_instance_ref: {name: inst-b}
    b:
      name: inst-b
      capacity: CU_1
      parent_instance_ref: {name: inst-a}
    free:
      name: inst-free
      capacity: CU_1
"#,
    );
    let diags = ResourceGraph::build(&b).unwrap_err();
    assert_eq!(diags.items.len(), 1, "{:?}", diags.items);
    let d = &diags.items[0];
    assert_eq!(
        d.message,
        "cycle detected between resources: resources.database_instances.a → resources.database_instances.b → resources.database_instances.a"
    );
    assert!(d.span.is_some());
    assert_eq!(d.related.len(), 1, "each edge of the cycle has a location");
    assert_eq!(
        d.label.as_deref(),
        Some("resources.database_instances.a refers to resources.database_instances.b via implicit: parent_instance_ref.name")
    );
}

#[tokio::test]
async fn first_plan_creates_everything_with_unknown_outputs() {
    let b = bundle(&SEED);
    let plan = plan_offline(&b, &DeploymentState::new()).await.unwrap();
    assert_eq!(plan.lineage, None);
    assert_eq!(plan.counts(), (4, 0, 0));
    let j = plan.change(&job()).unwrap();
    assert_eq!(
        j.after_unknown,
        vec!["tasks[0].pipeline_task.pipeline_id".to_string()]
    );
    assert!(j.fields.iter().any(|f| f.unknown));
    assert_eq!(j.depends_on, vec![synced()]);
    // Refs resolved at load time are plain values.
    let s = plan.change(&synced()).unwrap();
    assert_eq!(
        s.after.as_ref().unwrap()["name"],
        json!("my_catalog.my_database.customer_features")
    );
}

#[tokio::test]
async fn deployed_state_plans_no_changes_and_fills_refs_from_outputs() {
    let b = bundle(&SEED);
    let state = deployed_state(&b);
    let plan = plan_offline(&b, &state).await.unwrap();
    let summary: Vec<_> = plan
        .changes
        .iter()
        .map(|c| (c.addr.to_string(), c.action, c.fields.clone()))
        .collect();
    assert!(!plan.has_changes(), "{summary:#?}");
    assert_eq!(plan.lineage, Some(state.lineage.clone()));
    assert_eq!(plan.serial, state.serial);
    let j = plan.change(&job()).unwrap();
    assert!(j.after_unknown.is_empty());
    assert_eq!(
        j.after.as_ref().unwrap()["tasks"][0]["pipeline_task"]["pipeline_id"],
        json!("pipe-my_catalog.my_database.customer_features")
    );
}

#[tokio::test]
async fn capacity_change_is_an_update_in_place() {
    let b = bundle(&SEED);
    let state = deployed_state(&b);
    let changed = bundle(&SEED.replace("capacity: CU_1", "capacity: CU_2"));
    let plan = plan_offline(&changed, &state).await.unwrap();
    assert_eq!(plan.counts(), (0, 1, 0));
    let c = plan.change(&instance()).unwrap();
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.fields.len(), 1);
    assert_eq!(
        (
            c.fields[0].path.as_str(),
            c.fields[0].old.clone(),
            c.fields[0].new.clone()
        ),
        ("capacity", Some(json!("CU_1")), Some(json!("CU_2")))
    );
}

#[tokio::test]
async fn instance_rename_replaces_it_and_dependents_follow() {
    let b = bundle(&SEED);
    let state = deployed_state(&b);
    let renamed = bundle(&SEED.replace("name: my-instance", "name: my-instance-2"));
    let plan = plan_offline(&renamed, &state).await.unwrap();
    let inst = plan.change(&instance()).unwrap();
    assert_eq!(inst.action, Action::Replace);
    assert_eq!(inst.replace_paths, vec!["name".to_string()]);
    // The catalog and synced table name the instance (no update API): replaced too.
    assert_eq!(action_of(&plan, &catalog()), Action::Replace);
    assert_eq!(action_of(&plan, &synced()), Action::Replace);
    // The job's pipeline id comes from the replaced table: known after apply.
    let j = plan.change(&job()).unwrap();
    assert_eq!(j.action, Action::Update);
    let f = &j.fields[0];
    assert!(f.unknown);
    assert_eq!(f.path, "tasks[task_key=run-sync].pipeline_task.pipeline_id");
    assert_eq!(plan.counts(), (3, 1, 3));
}

#[tokio::test]
async fn removed_resource_is_deleted_unless_prevent_destroy() {
    let b = bundle(&SEED);
    let mut state = deployed_state(&b);
    let trimmed = format!(
        "{}{}",
        &SEED[..SEED.find("  jobs:").unwrap()],
        &SEED[SEED.find("targets:").unwrap()..]
    );
    let smaller = bundle(&trimmed);
    let plan = plan_offline(&smaller, &state).await.unwrap();
    let d = plan.change(&job()).unwrap();
    assert_eq!(d.action, Action::Delete);
    assert_eq!(d.id.as_deref(), Some("1001"));
    assert_eq!(plan.counts(), (0, 0, 1));

    state.resources.get_mut(&job()).unwrap().applied["lifecycle"] =
        json!({"prevent_destroy": true});
    let err = plan_offline(&smaller, &state).await.unwrap_err();
    assert!(
        matches!(err, EngineError::PreventDestroy { ref addr, .. } if *addr == job()),
        "{err}"
    );
    assert!(err.to_string().contains("resources.jobs.sync_schedule"));
    let destroy = make_destroy_plan(&smaller, &state).unwrap_err();
    assert!(destroy.to_string().contains("prevent_destroy"));
}

#[tokio::test]
async fn prevent_destroy_in_config_blocks_replacement() {
    let b = bundle(&SEED);
    let state = deployed_state(&b);
    let guarded = SEED
        .replace("name: my-instance", "name: my-instance-2")
        .replace(
            "      retention_window_in_days: 14",
            "      retention_window_in_days: 14\n      lifecycle:\n        prevent_destroy: true",
        );
    let err = plan_offline(&bundle(&guarded), &state).await.unwrap_err();
    assert_eq!(err.to_string(), "resources.database_instances.my_db has lifecycle.prevent_destroy set, but this plan would replace it");
}

#[tokio::test]
async fn unknown_resource_kinds_are_refused() {
    // Every kind of the official schema deploys; a misspelt one must not be
    // silently dropped at plan.
    let dir = tempfile::tempdir().unwrap();
    let b = load_yaml(
        dir.path(),
        "bundle: {name: u}\nresources:\n  vector_search_endpoint:\n    p: {name: p}\n  jobs:\n    j: {name: j}\n",
    )
    .unwrap();
    let err = plan_offline(&b, &DeploymentState::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown resource type(s) under `resources`: vector_search_endpoint"
    );
}

#[tokio::test]
async fn saved_plan_round_trips_and_goes_stale() {
    let b = bundle(&SEED);
    let mut state = deployed_state(&b);
    let plan = plan_offline(&bundle(&SEED.replace("CU_1", "CU_2")), &state)
        .await
        .unwrap();
    let saved = Plan::from_json_str(&plan.to_json_string()).unwrap();
    assert_eq!(saved, plan);
    let changed = bundle(&SEED.replace("CU_1", "CU_2"));
    check_plan_fresh(&saved, &state, &config_hash(&changed)).unwrap();
    // The configuration changed since.
    let err = check_plan_fresh(&saved, &state, &config_hash(&b)).unwrap_err();
    assert!(err.to_string().contains("configuration changed"), "{err}");
    // Someone deployed since.
    state.serial += 1;
    let err = check_plan_fresh(&saved, &state, &config_hash(&changed)).unwrap_err();
    assert!(err.to_string().contains("state changed"), "{err}");
}

#[test]
fn config_hash_ignores_key_order_but_not_values() {
    let a = bundle(
        "bundle: {name: h}\nresources:\n  jobs:\n    j: {name: j, max_concurrent_runs: 1}\n",
    );
    let b = bundle(
        "bundle: {name: h}\nresources:\n  jobs:\n    j: {max_concurrent_runs: 1, name: j}\n",
    );
    let c = bundle(
        "bundle: {name: h}\nresources:\n  jobs:\n    j: {max_concurrent_runs: 2, name: j}\n",
    );
    assert_eq!(config_hash(&a), config_hash(&b));
    assert_ne!(config_hash(&a), config_hash(&c));
}

/// A create whose object never became ready is tainted in the state: the
/// next plan replaces it, even when the failed object matches the config.
#[tokio::test]
async fn a_tainted_resource_is_replaced() {
    let b = bundle(&SEED);
    let mut state = deployed_state(&b);
    let addr = lakebundle::resources::ResourceAddr::parse("resources.database_instances.my_db")
        .expect("address");
    state.tainted.insert(addr.clone());
    let plan = plan_offline(&b, &state).await.unwrap();
    let change = plan
        .changes
        .iter()
        .find(|c| c.addr == addr)
        .expect("instance in plan");
    assert_eq!(change.action, Action::Replace);
    assert!(
        change
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("never became ready")),
        "{change:?}"
    );
    // The other resources stay unchanged.
    assert!(plan
        .changes
        .iter()
        .filter(|c| c.addr != addr && !c.depends_on.contains(&addr))
        .all(|c| c.action == Action::NoOp));
}
