//! Clusters, instance pools and vector search end to end: the real binary against the
//! emulator.
//!
//! - deploy creates a pool, a cluster in it (by reference), a job whose task runs on the
//!   cluster (`existing_cluster_id`) and whose job cluster uses the pool, a vector search
//!   endpoint (ONLINE, permissions on its uuid) and an index on it (ready, grants on the
//!   `table` securable); a plan right after is a no-op (the pool's service defaults and the
//!   index's rewritten `schema_json` are not drift);
//! - a size change of the running cluster resizes it, a pool's `max_capacity` and the
//!   endpoint's `target_qps` update in place, a changed index dimension replaces the index
//!   (its delete is asynchronous: the re-create waits out "pending deletion");
//! - `lifecycle.started: false` terminates the cluster;
//! - destroy leaves nothing.

mod common;
mod e2e_support;

use common::Emulator;
use e2e_support::{run, Api, TestBundle};
use serde_json::Value;

const POOL: &str = "resources.instance_pools.pool";
const CLUSTER: &str = "resources.clusters.shared";
const JOB: &str = "resources.jobs.nightly";
const ENDPOINT: &str = "resources.vector_search_endpoints.vs";
const INDEX: &str = "resources.vector_search_indexes.idx";

fn plan(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "plan"]).expect(0);
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

/// The planned action of each resource that changes.
fn actions(plan: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["address"].as_str().unwrap_or("").to_string(),
                c["actions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("+"),
            )
        })
        .filter(|(_, a)| a != "no-op")
        .collect();
    out.sort();
    out
}

fn cluster(api: &Api, id: &str) -> Value {
    api.get("/api/2.1/clusters/get", &[("cluster_id", id.to_string())])
        .expect("cluster exists")
}

fn level_of(acl: &Value, group: &str) -> Option<String> {
    acl["access_control_list"]
        .as_array()?
        .iter()
        .find(|e| e["group_name"] == group)
        .and_then(|e| e["all_permissions"][0]["permission_level"].as_str())
        .map(str::to_string)
}

#[test]
fn deploy_noop_update_replace_and_destroy() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let api = Api::new(&emu);
    let b = TestBundle::fixture("compute");
    run(&emu, &b, &["deploy"]).expect(0);

    // Pool: the service's defaults are filled in.
    let pool_id = b.state_id(POOL).expect("pool in state");
    let pool = api
        .get(
            "/api/2.0/instance-pools/get",
            &[("instance_pool_id", pool_id.clone())],
        )
        .expect("pool");
    assert_eq!(pool["enable_elastic_disk"], true);
    assert_eq!(pool["idle_instance_autotermination_minutes"], 60);
    let acl = api
        .get(
            &format!("/api/2.0/permissions/instance-pools/{pool_id}"),
            &[],
        )
        .expect("pool permissions");
    assert_eq!(level_of(&acl, "users").as_deref(), Some("CAN_ATTACH_TO"));

    // Cluster: in the pool, RUNNING (deploy waited), with its grant.
    let cid = b.state_id(CLUSTER).expect("cluster in state");
    let c = cluster(&api, &cid);
    assert_eq!(c["state"], "RUNNING");
    assert_eq!(c["instance_pool_id"], pool_id.as_str());
    let acl = api
        .get(&format!("/api/2.0/permissions/clusters/{cid}"), &[])
        .expect("cluster permissions");
    assert_eq!(level_of(&acl, "users").as_deref(), Some("CAN_RESTART"));

    // Job: its task runs on the bundle cluster, its job cluster uses the bundle pool.
    let jid = b.state_id(JOB).expect("job in state");
    let job = api
        .get("/api/2.2/jobs/get", &[("job_id", jid)])
        .expect("job");
    let tasks = job["settings"]["tasks"].as_array().expect("tasks");
    assert!(
        tasks
            .iter()
            .any(|t| t["existing_cluster_id"] == cid.as_str()),
        "{tasks:?}"
    );
    assert_eq!(
        job["settings"]["job_clusters"][0]["new_cluster"]["instance_pool_id"],
        pool_id.as_str()
    );

    // Endpoint: ONLINE; permissions live on its uuid, not its name.
    assert_eq!(b.state_id(ENDPOINT).as_deref(), Some("compute-vs"));
    let ep = api
        .get("/api/2.0/vector-search/endpoints/compute-vs", &[])
        .expect("endpoint");
    assert_eq!(ep["endpoint_status"]["state"], "ONLINE");
    let uuid = ep["id"].as_str().expect("endpoint uuid").to_string();
    let acl = api
        .get(
            &format!("/api/2.0/permissions/vector-search-endpoints/{uuid}"),
            &[],
        )
        .expect("endpoint permissions");
    assert_eq!(level_of(&acl, "users").as_deref(), Some("CAN_USE"));

    // Index: ready, with its grants on the `table` securable.
    let idx_name = "main.default.compute_idx";
    assert_eq!(b.state_id(INDEX).as_deref(), Some(idx_name));
    let idx = api
        .get(&format!("/api/2.0/vector-search/indexes/{idx_name}"), &[])
        .expect("index");
    assert_eq!(idx["status"]["ready"], true);
    let grants = api
        .get(
            &format!("/api/2.1/unity-catalog/permissions/table/{idx_name}"),
            &[],
        )
        .expect("index grants");
    assert_eq!(
        grants["privilege_assignments"][0]["principal"], "users",
        "{grants}"
    );

    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op right after deploy");

    // Changes: resize, in-place updates, and a replaced index.
    b.edit(
        "num_workers: 1\n      autotermination",
        "num_workers: 3\n      autotermination",
    );
    b.edit("max_capacity: 4", "max_capacity: 8");
    b.edit("target_qps: 1", "target_qps: 2");
    b.edit("embedding_dimension: 768", "embedding_dimension: 384");
    let changed = plan(&emu, &b);
    assert_eq!(
        actions(&changed),
        vec![
            (CLUSTER.to_string(), "update".to_string()),
            (POOL.to_string(), "update".to_string()),
            (ENDPOINT.to_string(), "update".to_string()),
            (INDEX.to_string(), "delete+create".to_string()),
        ],
        "{changed}"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(b.state_id(CLUSTER), Some(cid.clone()), "same cluster");
    let c = cluster(&api, &cid);
    assert_eq!(c["num_workers"], 3);
    assert_eq!(c["state"], "RUNNING");
    let pool = api
        .get(
            "/api/2.0/instance-pools/get",
            &[("instance_pool_id", pool_id.clone())],
        )
        .expect("pool");
    assert_eq!(pool["max_capacity"], 8);
    let ep = api
        .get("/api/2.0/vector-search/endpoints/compute-vs", &[])
        .expect("endpoint");
    assert_eq!(ep["target_qps"], 2);
    let idx = api
        .get(&format!("/api/2.0/vector-search/indexes/{idx_name}"), &[])
        .expect("the index was re-created");
    assert_eq!(
        idx["direct_access_index_spec"]["embedding_vector_columns"][0]["embedding_dimension"],
        384
    );
    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op after the update");

    // A full edit (not only the size) restarts the running cluster with the new spec.
    b.edit("autotermination_minutes: 30", "autotermination_minutes: 45");
    run(&emu, &b, &["deploy"]).expect(0);
    assert_eq!(cluster(&api, &cid)["autotermination_minutes"], 45);

    // lifecycle.started: false terminates the cluster (a planned change of its own).
    b.edit(
        "autotermination_minutes: 45",
        "autotermination_minutes: 45\n      lifecycle:\n        started: false",
    );
    assert_eq!(
        actions(&plan(&emu, &b)),
        vec![(CLUSTER.to_string(), "update".to_string())]
    );
    run(&emu, &b, &["deploy"]).expect(0);
    assert_eq!(cluster(&api, &cid)["state"], "TERMINATED");
    assert_eq!(
        actions(&plan(&emu, &b)),
        vec![],
        "a terminated cluster is what was asked"
    );

    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(api
        .list("/api/2.1/clusters/list", "clusters", &[])
        .is_empty());
    assert!(api
        .list("/api/2.0/instance-pools/list", "instance_pools", &[])
        .is_empty());
    assert!(api
        .list("/api/2.0/vector-search/endpoints", "endpoints", &[])
        .is_empty());
    assert!(api.jobs().is_empty());
}

#[test]
fn a_cluster_deleted_outside_is_recreated() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let api = Api::new(&emu);
    let b = TestBundle::fixture("compute");
    run(&emu, &b, &["deploy"]).expect(0);
    let cid = b.state_id(CLUSTER).expect("cluster");
    api.post(
        "/api/2.1/clusters/permanent-delete",
        &serde_json::json!({"cluster_id": cid}),
    );
    // The service answers 400 INVALID_PARAMETER_VALUE "does not exist": the cluster is gone,
    // and the job running on it follows the new cluster id.
    assert_eq!(
        actions(&plan(&emu, &b)),
        vec![
            (CLUSTER.to_string(), "create".to_string()),
            (JOB.to_string(), "update".to_string())
        ]
    );
    run(&emu, &b, &["deploy"]).expect(0);
    let new_id = b.state_id(CLUSTER).expect("a new cluster");
    assert_ne!(new_id, cid);
    let job = api
        .get(
            "/api/2.2/jobs/get",
            &[("job_id", b.state_id(JOB).expect("job"))],
        )
        .expect("job");
    assert_eq!(
        job["settings"]["tasks"][0]["existing_cluster_id"],
        new_id.as_str()
    );
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
}
