//! HTTP-level tests of the emulator's clusters, instance pools and vector search APIs
//! (contract part 2 §6): the real `emulator serve`, real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::Emulator;
use reqwest::Method;
use serde_json::json;

type Api = common::http::HttpApi;

/// Transitions long enough that a transitional state read right after the call that caused
/// it is still there on a loaded machine.
fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--transition-ms", "1500"])
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_lifecycle_edit_states_resize_and_delete() {
    let emu = emulator();
    let api = Api::new(&emu);
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.1/clusters/create",
            Some(json!({"cluster_name": "c"})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE")),
        "{e}"
    );
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.1/clusters/create",
            Some(
                json!({"cluster_name": "c", "spark_version": "15.4.x-scala2.12",
                        "instance_pool_id": "nope"}),
            ),
        )
        .await;
    assert_eq!(s, 400, "an unknown pool is refused: {e}");

    let created = api
        .ok(
            Method::POST,
            "/api/2.1/clusters/create",
            Some(
                json!({"cluster_name": "c", "spark_version": "15.4.x-scala2.12",
                        "num_workers": 1}),
            ),
        )
        .await;
    let id = created["cluster_id"]
        .as_str()
        .expect("cluster_id")
        .to_string();
    let get = format!("/api/2.1/clusters/get?cluster_id={id}");
    let first = api.ok(Method::GET, &get, None).await;
    assert_eq!(first["state"], "PENDING", "a new cluster starts itself");
    // Not editable while PENDING: INVALID_STATE.
    let spec = json!({"cluster_id": id, "cluster_name": "c", "spark_version": "15.4.x-scala2.12",
                      "num_workers": 2});
    let (s, e) = api
        .call(Method::POST, "/api/2.1/clusters/edit", Some(spec.clone()))
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (400, Some("INVALID_STATE")),
        "{e}"
    );
    api.until(&get, "/state", json!("RUNNING")).await;
    api.ok(Method::POST, "/api/2.1/clusters/edit", Some(spec))
        .await;
    let restarting = api.ok(Method::GET, &get, None).await;
    assert_eq!(restarting["state"], "RESTARTING");
    assert_eq!(restarting["num_workers"], 2);
    let running = api.until(&get, "/state", json!("RUNNING")).await;
    assert_eq!(running["creator_user_name"], first["creator_user_name"]);

    api.ok(
        Method::POST,
        "/api/2.1/clusters/resize",
        Some(json!({"cluster_id": id, "autoscale": {"min_workers": 1, "max_workers": 4}})),
    )
    .await;
    let resized = api.ok(Method::GET, &get, None).await;
    assert_eq!(resized["state"], "RESIZING");
    assert!(resized.get("num_workers").is_none() && resized["autoscale"]["max_workers"] == 4);
    api.until(&get, "/state", json!("RUNNING")).await;

    // delete = terminate: the cluster remains; an edit keeps it terminated.
    api.ok(
        Method::POST,
        "/api/2.1/clusters/delete",
        Some(json!({"cluster_id": id})),
    )
    .await;
    api.until(&get, "/state", json!("TERMINATED")).await;
    api.ok(
        Method::POST,
        "/api/2.1/clusters/edit",
        Some(json!({"cluster_id": id, "cluster_name": "c2", "spark_version": "15.4.x-scala2.12"})),
    )
    .await;
    let t = api.ok(Method::GET, &get, None).await;
    assert_eq!(
        (t["state"].as_str(), t["cluster_name"].as_str()),
        (Some("TERMINATED"), Some("c2"))
    );
    let (s, _) = api
        .call(
            Method::POST,
            "/api/2.1/clusters/resize",
            Some(json!({"cluster_id": id, "num_workers": 1})),
        )
        .await;
    assert_eq!(s, 400, "a terminated cluster cannot resize");
    api.ok(
        Method::POST,
        "/api/2.1/clusters/start",
        Some(json!({"cluster_id": id})),
    )
    .await;
    api.until(&get, "/state", json!("RUNNING")).await;
    let listed = api.ok(Method::GET, "/api/2.1/clusters/list", None).await;
    assert_eq!(listed["clusters"].as_array().map(Vec::len), Some(1));

    api.ok(
        Method::POST,
        "/api/2.1/clusters/permanent-delete",
        Some(json!({"cluster_id": id})),
    )
    .await;
    // A missing cluster: 400 INVALID_PARAMETER_VALUE "... does not exist".
    let (s, e) = api.call(Method::GET, &get, None).await;
    assert_eq!(s, 400);
    assert_eq!(e["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not exist"),
        "{e}"
    );
    let (s, _) = api
        .call(
            Method::GET,
            &format!("/api/2.0/permissions/clusters/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 404, "its permissions went with it");
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_pool_defaults_edit_and_delete() {
    let emu = emulator();
    let api = Api::new(&emu);
    let (s, _) = api
        .call(
            Method::POST,
            "/api/2.0/instance-pools/create",
            Some(json!({"instance_pool_name": "p"})),
        )
        .await;
    assert_eq!(s, 400, "node_type_id is required");
    let id = api
        .ok(
            Method::POST,
            "/api/2.0/instance-pools/create",
            Some(
                json!({"instance_pool_name": "p", "node_type_id": "i3.xlarge",
                        "max_capacity": 4, "preloaded_spark_versions": ["15.4.x-scala2.12"]}),
            ),
        )
        .await["instance_pool_id"]
        .as_str()
        .expect("id")
        .to_string();
    let get = format!("/api/2.0/instance-pools/get?instance_pool_id={id}");
    let p = api.ok(Method::GET, &get, None).await;
    assert_eq!(p["state"], "ACTIVE");
    assert_eq!(p["enable_elastic_disk"], true);
    assert_eq!(p["idle_instance_autotermination_minutes"], 60);
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.0/instance-pools/create",
            Some(json!({"instance_pool_name": "p", "node_type_id": "i3.xlarge"})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (409, Some("RESOURCE_ALREADY_EXISTS")),
        "{e}"
    );

    // Edit: the editable set replaces; a fixed field cannot change.
    api.ok(
        Method::POST,
        "/api/2.0/instance-pools/edit",
        Some(json!({"instance_pool_id": id, "instance_pool_name": "p2",
                    "node_type_id": "i3.xlarge", "min_idle_instances": 1, "max_capacity": 8})),
    )
    .await;
    let p = api.ok(Method::GET, &get, None).await;
    assert_eq!(
        (p["instance_pool_name"].as_str(), p["max_capacity"].as_i64()),
        (Some("p2"), Some(8))
    );
    assert_eq!(p["preloaded_spark_versions"], json!(["15.4.x-scala2.12"]));
    let (s, _) = api
        .call(
            Method::POST,
            "/api/2.0/instance-pools/edit",
            Some(json!({"instance_pool_id": id, "instance_pool_name": "p2",
                        "node_type_id": "i3.xlarge", "preloaded_spark_versions": ["14.3.x"]})),
        )
        .await;
    assert_eq!(s, 400, "preloaded runtimes are fixed at create");

    api.ok(
        Method::POST,
        "/api/2.0/instance-pools/delete",
        Some(json!({"instance_pool_id": id})),
    )
    .await;
    assert_eq!(api.ok(Method::GET, &get, None).await["state"], "DELETED");
    let listed = api
        .ok(Method::GET, "/api/2.0/instance-pools/list", None)
        .await;
    assert_eq!(listed["instance_pools"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn vector_search_endpoint_and_index_with_async_delete() {
    let emu = emulator();
    let api = Api::new(&emu);
    let ep = api
        .ok(
            Method::POST,
            "/api/2.0/vector-search/endpoints",
            Some(json!({"name": "vs", "endpoint_type": "STANDARD"})),
        )
        .await;
    assert_eq!(ep["endpoint_status"]["state"], "PROVISIONING");
    let uuid = ep["id"].as_str().expect("uuid").to_string();
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.0/vector-search/endpoints",
            Some(json!({"name": "vs", "endpoint_type": "STANDARD"})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (409, Some("RESOURCE_ALREADY_EXISTS"))
    );
    api.until(
        "/api/2.0/vector-search/endpoints/vs",
        "/endpoint_status/state",
        json!("ONLINE"),
    )
    .await;
    // Permissions by uuid, not by name.
    api.ok(
        Method::GET,
        &format!("/api/2.0/permissions/vector-search-endpoints/{uuid}"),
        None,
    )
    .await;
    let (s, _) = api
        .call(
            Method::GET,
            "/api/2.0/permissions/vector-search-endpoints/vs",
            None,
        )
        .await;
    assert_eq!(s, 404);
    api.ok(
        Method::PATCH,
        "/api/2.0/vector-search/endpoints/vs",
        Some(json!({"target_qps": 3})),
    )
    .await;
    api.ok(
        Method::PATCH,
        "/api/2.0/vector-search/endpoints/vs/budget-policy",
        Some(json!({"budget_policy_id": "bp"})),
    )
    .await;
    let got = api
        .ok(Method::GET, "/api/2.0/vector-search/endpoints/vs", None)
        .await;
    assert_eq!(
        (
            got["target_qps"].as_i64(),
            got["effective_budget_policy_id"].as_str()
        ),
        (Some(3), Some("bp"))
    );
    let (s, _) = api
        .call(
            Method::PATCH,
            "/api/2.0/vector-search/endpoints/vs",
            Some(json!({"endpoint_type": "STORAGE_OPTIMIZED"})),
        )
        .await;
    assert_eq!(s, 400, "endpoint_type cannot change");

    let index = json!({"name": "main.default.idx", "endpoint_name": "vs", "primary_key": "id",
                       "index_type": "DIRECT_ACCESS",
                       "direct_access_index_spec": {"schema_json": "{ \"id\": \"integer\" }"}});
    let (s, _) = api
        .call(
            Method::POST,
            "/api/2.0/vector-search/indexes",
            Some(
                json!({"name": "main.default.x", "endpoint_name": "nope", "primary_key": "id",
                        "index_type": "DIRECT_ACCESS", "direct_access_index_spec": {}}),
            ),
        )
        .await;
    assert_eq!(s, 404, "an unknown endpoint");
    api.ok(
        Method::POST,
        "/api/2.0/vector-search/indexes",
        Some(index.clone()),
    )
    .await;
    let path = "/api/2.0/vector-search/indexes/main.default.idx";
    let ready = api.until(path, "/status/ready", json!(true)).await;
    assert_eq!(
        ready["direct_access_index_spec"]["schema_json"], "{\"id\":\"integer\"}",
        "the service rewrites schema_json"
    );
    api.ok(
        Method::PATCH,
        "/api/2.1/unity-catalog/permissions/table/main.default.idx",
        Some(json!({"changes": [{"principal": "users", "add": ["SELECT"]}]})),
    )
    .await;
    let (s, _) = api
        .call(Method::DELETE, "/api/2.0/vector-search/endpoints/vs", None)
        .await;
    assert_eq!(s, 400, "an endpoint serving an index is not deleted");

    // Async delete: GET answers for a while, then 404; a re-create meanwhile is refused.
    api.ok(Method::DELETE, path, None).await;
    let (s, _) = api.call(Method::GET, path, None).await;
    assert_eq!(s, 200, "still answering right after the delete");
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.0/vector-search/indexes",
            Some(index.clone()),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("pending deletion"),
        "{e}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, _) = api
            .call(
                Method::POST,
                "/api/2.0/vector-search/indexes",
                Some(index.clone()),
            )
            .await;
        if s == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the name never became free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grants = api
        .ok(
            Method::GET,
            "/api/2.1/unity-catalog/permissions/table/main.default.idx",
            None,
        )
        .await;
    assert!(
        grants["privilege_assignments"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the new index starts without the old one's grants: {grants}"
    );
    api.ok(Method::DELETE, path, None).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.call(Method::GET, path, None).await.0 != 404 {
        assert!(Instant::now() < deadline, "the index never went");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.ok(Method::DELETE, "/api/2.0/vector-search/endpoints/vs", None)
        .await;
    let (s, e) = api
        .call(Method::GET, "/api/2.0/vector-search/endpoints/vs", None)
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
}
