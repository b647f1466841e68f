//! HTTP-level tests of the emulator's MLflow, Unity Catalog model and model serving endpoints
//! (contract part 2 §6): the real binary, real HTTP, real SQLite on disk.

mod common;

use std::time::{Duration, Instant};

use common::Emulator;
use reqwest::Method;
use serde_json::{json, Value};

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    fn new(emu: &Emulator) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Api {
            http,
            url: emu.url.clone(),
            token: emu.token.clone(),
        }
    }
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or(json!({ "raw": text }));
        (status, v)
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), path, body).await;
        assert_eq!(s, 200, "{method} {path}: {v}");
        v
    }
}

fn fast() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--transition-ms", "400"])
}

const EXP: &str = "/api/2.0/mlflow/experiments";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiments_soft_delete_restore_and_names() {
    let emu = fast();
    let api = Api::new(&emu);
    let v = api
        .ok(
            Method::POST,
            &format!("{EXP}/create"),
            Some(
                json!({"name": "/Workspace/Users/a@b.c/exp", "tags": [{"key": "k", "value": "v"}]}),
            ),
        )
        .await;
    let id = v["experiment_id"].as_str().expect("id").to_string();
    let (s, got) = api.get(&format!("{EXP}/get?experiment_id={id}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        got["experiment"]["name"], "/Users/a@b.c/exp",
        "/Workspace dropped"
    );
    assert_eq!(got["experiment"]["lifecycle_stage"], "active");
    assert!(got["experiment"]["artifact_location"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&id));

    // Same name (either spelling) is taken; a relative name is refused.
    let (s, e) = api
        .post(
            &format!("{EXP}/create"),
            json!({"name": "/Users/a@b.c/exp"}),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (409, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let (s, e) = api
        .post(&format!("{EXP}/create"), json!({"name": "exp"}))
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );

    // Rename, tags.
    api.ok(
        Method::POST,
        &format!("{EXP}/update"),
        Some(json!({"experiment_id": id, "new_name": "/Users/a@b.c/exp2"})),
    )
    .await;
    api.ok(
        Method::POST,
        &format!("{EXP}/set-experiment-tag"),
        Some(json!({"experiment_id": id, "key": "k", "value": "w"})),
    )
    .await;
    let (_, by_name) = api
        .get(&format!(
            "{EXP}/get-by-name?experiment_name=/Users/a@b.c/exp2"
        ))
        .await;
    assert_eq!(by_name["experiment"]["experiment_id"], id.as_str());
    assert!(by_name["experiment"]["tags"]
        .as_array()
        .expect("tags")
        .contains(&json!({"key": "k", "value": "w"})));

    // Soft delete: still readable by id, out of the list, name free; restore brings it back.
    api.ok(
        Method::POST,
        &format!("{EXP}/delete"),
        Some(json!({"experiment_id": id})),
    )
    .await;
    let (s, got) = api.get(&format!("{EXP}/get?experiment_id={id}")).await;
    assert_eq!(
        (s, &got["experiment"]["lifecycle_stage"]),
        (200, &json!("deleted"))
    );
    let (_, list) = api.get(&format!("{EXP}/list")).await;
    assert!(list.get("experiments").is_none(), "{list}");
    let (s, e) = api
        .post(
            &format!("{EXP}/set-experiment-tag"),
            json!({"experiment_id": id, "key": "x", "value": "y"}),
        )
        .await;
    assert_eq!((s, e["error_code"].as_str()), (400, Some("INVALID_STATE")));
    api.ok(
        Method::POST,
        &format!("{EXP}/restore"),
        Some(json!({"experiment_id": id})),
    )
    .await;
    let (_, list) = api.get(&format!("{EXP}/list")).await;
    assert_eq!(list["experiments"].as_array().map(Vec::len), Some(1));

    // Permissions by experiment id; an unknown id is 404.
    let (s, acl) = api
        .get(&format!("/api/2.0/permissions/experiments/{id}"))
        .await;
    assert_eq!(s, 200, "{acl}");
    let (s, _) = api.get(&format!("{EXP}/get?experiment_id=999")).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_models_keep_a_permissions_id() {
    let emu = fast();
    let api = Api::new(&emu);
    let reg = "/api/2.0/mlflow/registered-models";
    let v = api
        .ok(
            Method::POST,
            &format!("{reg}/create"),
            Some(json!({"name": "m1", "description": "d", "tags": [{"key": "a", "value": "1"}]})),
        )
        .await;
    assert_eq!(v["registered_model"]["name"], "m1");
    assert!(
        v["registered_model"].get("id").is_none(),
        "the public view has no id"
    );
    let (s, e) = api
        .post(&format!("{reg}/create"), json!({"name": "m1"}))
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (409, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let (_, d) = api
        .get("/api/2.0/mlflow/databricks/registered-models/get?name=m1")
        .await;
    let id = d["registered_model_databricks"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (s, _) = api
        .get(&format!("/api/2.0/permissions/registered-models/{id}"))
        .await;
    assert_eq!(s, 200);
    let (s, _) = api.get("/api/2.0/permissions/registered-models/m1").await;
    assert_eq!(s, 404, "the name is not the permissions id");

    api.ok(
        Method::PATCH,
        &format!("{reg}/update"),
        Some(json!({"name": "m1", "description": "d2"})),
    )
    .await;
    api.ok(
        Method::DELETE,
        &format!("{reg}/delete-tag?name=m1&key=a"),
        None,
    )
    .await;
    let (s, _) = api
        .call(
            Method::DELETE,
            &format!("{reg}/delete-tag?name=m1&key=a"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (_, g) = api.get(&format!("{reg}/get?name=m1")).await;
    assert_eq!(g["registered_model"]["description"], "d2");
    assert_eq!(g["registered_model"]["tags"], json!([]));

    api.ok(
        Method::POST,
        &format!("{reg}/rename"),
        Some(json!({"name": "m1", "new_name": "m2"})),
    )
    .await;
    let (s, _) = api.get(&format!("{reg}/get?name=m1")).await;
    assert_eq!(s, 404);
    api.ok(Method::DELETE, &format!("{reg}/delete?name=m2"), None)
        .await;
    let (s, _) = api
        .get(&format!("/api/2.0/permissions/registered-models/{id}"))
        .await;
    assert_eq!(s, 404);
}

async fn uc_schema(api: &Api) {
    api.ok(
        Method::POST,
        "/api/2.1/unity-catalog/catalogs",
        Some(json!({"name": "main"})),
    )
    .await;
    api.ok(
        Method::POST,
        "/api/2.1/unity-catalog/schemas",
        Some(json!({"catalog_name": "main", "name": "ml"})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uc_models_live_in_a_schema_and_take_function_grants() {
    let emu = fast();
    let api = Api::new(&emu);
    let base = "/api/2.1/unity-catalog/models";
    let (s, e) = api
        .post(
            base,
            json!({"catalog_name": "main", "schema_name": "ml", "name": "m"}),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    uc_schema(&api).await;
    let m = api
        .ok(Method::POST, base,
            Some(json!({"catalog_name": "main", "schema_name": "ml", "name": "Churn", "comment": "c"})))
        .await;
    assert_eq!(m["full_name"], "main.ml.churn");
    let (s, _) = api
        .post(
            base,
            json!({"catalog_name": "main", "schema_name": "ml", "name": "churn"}),
        )
        .await;
    assert_eq!(s, 409);
    let (_, got) = api.get(&format!("{base}/main.ml.churn")).await;
    assert!(got.get("aliases").is_none(), "aliases only when asked");
    let (_, got) = api
        .get(&format!("{base}/main.ml.churn?include_aliases=true"))
        .await;
    assert_eq!(got["aliases"], json!([]));

    let grants = "/api/2.1/unity-catalog/permissions/function/main.ml.churn";
    api.ok(
        Method::PATCH,
        grants,
        Some(json!({"changes": [{"principal": "team", "add": ["EXECUTE"]}]})),
    )
    .await;
    let (s, e) = api
        .call(
            Method::PATCH,
            grants,
            Some(json!({"changes": [{"principal": "team", "add": ["READ_VOLUME"]}]})),
        )
        .await;
    assert_eq!(s, 400, "{e}");

    // Rename moves the grants; storage_location cannot be patched.
    api.ok(
        Method::PATCH,
        &format!("{base}/main.ml.churn"),
        Some(json!({"new_name": "churn2"})),
    )
    .await;
    let (_, g) = api
        .get("/api/2.1/unity-catalog/permissions/function/main.ml.churn2")
        .await;
    assert_eq!(
        g["privilege_assignments"],
        json!([{"principal": "team", "privileges": ["EXECUTE"]}])
    );
    let (s, _) = api
        .call(
            Method::PATCH,
            &format!("{base}/main.ml.churn2"),
            Some(json!({"storage_location": "s3://x"})),
        )
        .await;
    assert_eq!(s, 400);
    let (_, list) = api
        .get(&format!("{base}?catalog_name=main&schema_name=ml"))
        .await;
    assert_eq!(list["registered_models"].as_array().map(Vec::len), Some(1));
    api.ok(Method::DELETE, &format!("{base}/main.ml.churn2"), None)
        .await;
    let (s, _) = api.get(&format!("{base}/main.ml.churn2")).await;
    assert_eq!(s, 404);
}

async fn wait_not_updating(api: &Api, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, e) = api.get(&format!("/api/2.0/serving-endpoints/{name}")).await;
        if e["state"]["config_update"] == "NOT_UPDATING" {
            return e;
        }
        assert!(Instant::now() < deadline, "still updating: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_endpoints_roll_out_configs_and_update_by_part() {
    let emu = fast();
    let api = Api::new(&emu);
    let base = "/api/2.0/serving-endpoints";
    let entity = json!({"entity_name": "main.ml.churn", "entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": true});

    // The served model must exist.
    let (s, e) = api
        .post(
            base,
            json!({"name": "ep", "config": {"served_entities": [entity]}}),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST")),
        "{e}"
    );
    uc_schema(&api).await;
    api.ok(
        Method::POST,
        "/api/2.1/unity-catalog/models",
        Some(json!({"catalog_name": "main", "schema_name": "ml", "name": "churn"})),
    )
    .await;
    let (s, e) = api
        .post(
            base,
            json!({"name": "bad name", "config": {"served_entities": [entity]}}),
        )
        .await;
    assert_eq!(s, 400, "{e}");

    // Create: the config rolls out; meanwhile it is pending and a second update conflicts.
    let created = api
        .ok(
            Method::POST,
            base,
            Some(
                json!({"name": "ep", "config": {"served_entities": [entity]},
            "tags": [{"key": "a", "value": "1"}]}),
            ),
        )
        .await;
    assert_eq!(created["state"]["config_update"], "IN_PROGRESS");
    assert_eq!(created["state"]["ready"], "NOT_READY");
    assert_eq!(
        created["pending_config"]["served_entities"][0]["name"],
        "churn-1"
    );
    let (s, e) = api
        .call(
            Method::PUT,
            &format!("{base}/ep/config"),
            Some(json!({"served_entities": [entity]})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (409, Some("RESOURCE_CONFLICT"))
    );
    let (s, _) = api
        .post(
            base,
            json!({"name": "ep", "config": {"served_entities": [entity]}}),
        )
        .await;
    assert_eq!(s, 409);
    let ready = wait_not_updating(&api, "ep").await;
    assert_eq!(ready["state"]["ready"], "READY");
    assert_eq!(
        ready["config"]["traffic_config"]["routes"][0]["traffic_percentage"],
        100
    );
    assert!(ready.get("pending_config").is_none());

    // Traffic must name served entities and add up to 100.
    let (s, e) = api
        .call(Method::PUT, &format!("{base}/ep/config"), Some(json!({"served_entities": [entity],
            "traffic_config": {"routes": [{"served_entity_name": "churn-1", "traffic_percentage": 50}]}})))
        .await;
    assert_eq!(s, 400, "{e}");
    let mut bigger = entity.clone();
    bigger["workload_size"] = json!("Medium");
    api.ok(
        Method::PUT,
        &format!("{base}/ep/config"),
        Some(json!({"served_entities": [bigger]})),
    )
    .await;
    let done = wait_not_updating(&api, "ep").await;
    assert_eq!(done["config"]["config_version"], 2);
    assert_eq!(
        done["config"]["served_entities"][0]["workload_size"],
        "Medium"
    );

    // The other parts change at once.
    api.ok(
        Method::PATCH,
        &format!("{base}/ep/tags"),
        Some(json!({"add_tags": [{"key": "b", "value": "2"}], "delete_tags": ["a"]})),
    )
    .await;
    api.ok(
        Method::PUT,
        &format!("{base}/ep/ai-gateway"),
        Some(json!({"usage_tracking_config": {"enabled": true}})),
    )
    .await;
    api.ok(
        Method::PATCH,
        &format!("{base}/ep/notifications"),
        Some(json!({"email_notifications": {"on_update_failure": ["a@b.c"]}})),
    )
    .await;
    api.ok(
        Method::PUT,
        &format!("{base}/ep/rate-limits"),
        Some(json!({"rate_limits": [{"calls": 10, "renewal_period": "minute", "key": "user"}]})),
    )
    .await;
    let (_, e) = api.get(&format!("{base}/ep")).await;
    assert_eq!(e["tags"], json!([{"key": "b", "value": "2"}]));
    assert_eq!(e["ai_gateway"]["usage_tracking_config"]["enabled"], true);
    assert_eq!(
        e["email_notifications"]["on_update_failure"],
        json!(["a@b.c"])
    );
    assert_eq!(e["rate_limits"][0]["calls"], 10);

    // Permissions by endpoint id, gone with the endpoint.
    let id = e["id"].as_str().expect("id").to_string();
    let (s, _) = api
        .get(&format!("/api/2.0/permissions/serving-endpoints/{id}"))
        .await;
    assert_eq!(s, 200);
    api.ok(Method::DELETE, &format!("{base}/ep"), None).await;
    let (s, _) = api.get(&format!("{base}/ep")).await;
    assert_eq!(s, 404);
    let (s, _) = api
        .get(&format!("/api/2.0/permissions/serving-endpoints/{id}"))
        .await;
    assert_eq!(s, 404);
}
