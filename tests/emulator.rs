//! HTTP-level tests of `lakebundle emulator serve`: the real binary, real HTTP (reqwest),
//! real SQLite on disk.

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
        // A bounded timeout turns a server hang into a failure instead of a stuck test.
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
        let (s, _, v) = self.call_full(method, path, body, Some(&self.token)).await;
        (s, v)
    }

    async fn call_full(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            json!({})
        } else {
            serde_json::from_str(&text).unwrap_or(json!({"raw": text}))
        };
        (status, headers, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Poll `path` until the JSON pointer equals `want`; returns the states seen in order.
    async fn wait_for(&self, path: &str, pointer: &str, want: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen: Vec<String> = Vec::new();
        loop {
            let (s, v) = self.get(path).await;
            assert_eq!(s, 200, "{path}: {v}");
            let state = v
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("<none>")
                .to_string();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if state == want {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{path} never reached {want}; saw {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn fast() -> Emulator {
    Emulator::start_with(&["--no-postgres"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_errors_and_validation() {
    let emu = fast();
    let api = Api::new(&emu);
    let me = "/api/2.0/preview/scim/v2/Me";
    let (s, _, v) = api.call_full(Method::GET, me, None, None).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (s, _, v) = api.call_full(Method::GET, me, None, Some("wrong")).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (s, v) = api.get(me).await;
    assert_eq!(s, 200);
    assert_eq!(v["userName"], "local-user@example.com");

    let (s, v) = api.get("/api/2.0/no/such/thing").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("GET /api/2.0/no/such/thing"));

    let raw = api
        .http
        .post(format!("{}/api/2.0/database/instances", api.url))
        .bearer_auth(&api.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);

    let cases = [
        (json!({"capacity": "CU_1"}), "name"),
        (json!({"name": "db1"}), "capacity"),
        (json!({"name": "db1", "capacity": "CU_3"}), "capacity"),
        (json!({"name": "1db", "capacity": "CU_1"}), "name"),
        (json!({"name": "bad_name", "capacity": "CU_1"}), "name"),
        (
            json!({"name": "db1", "capacity": "CU_1", "node_count": 9}),
            "node_count",
        ),
        (
            json!({"name": "db1", "capacity": "CU_1", "retention_window_in_days": 1}),
            "retention_window_in_days",
        ),
        (
            json!({"name": "db1", "capacity": "CU_1", "parent_instance_ref": {"name": "ghost"}}),
            "ghost",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = api.post("/api/2.0/database/instances", body.clone()).await;
        assert!(s == 400 || s == 404, "{body}: {s} {v}");
        assert!(
            v["message"].as_str().unwrap().contains(field),
            "{body}: message {v} should name {field}"
        );
    }
    let (s, v) = api.get("/api/2.0/database/instances/nope").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    // Host metadata and OIDC discovery need no token.
    let (s, _, v) = api
        .call_full(Method::GET, "/.well-known/databricks-config", None, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["oidc_endpoint"], format!("{}/oidc", emu.url));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_lifecycle_states_and_effective_fields() {
    let emu = fast();
    let api = Api::new(&emu);
    let (s, v) = api
        .post(
            "/api/2.0/database/instances",
            json!({"name": "db1", "capacity": "CU_1", "custom_tags": [{"key": "a", "value": "b"}], "stopped": false, "node_count": 2}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "db1");
    assert_eq!(v["state"], "STARTING");
    assert_eq!(
        v["custom_tags"][0]["key"], "a",
        "create echoes in-only inputs"
    );
    let (s, dup) = api
        .post(
            "/api/2.0/database/instances",
            json!({"name": "db1", "capacity": "CU_1"}),
        )
        .await;
    assert_eq!(
        (s, dup["error_code"].as_str()),
        (409, Some("RESOURCE_ALREADY_EXISTS"))
    );

    let seen = api
        .wait_for("/api/2.0/database/instances/db1", "/state", "AVAILABLE")
        .await;
    assert_eq!(seen.first().map(String::as_str), Some("STARTING"));
    let (_, v) = api.get("/api/2.0/database/instances/db1").await;
    for gone in ["custom_tags", "node_count", "stopped"] {
        assert!(
            v.get(gone).is_none(),
            "{gone} must not be returned by GET: {v}"
        );
    }
    assert_eq!(v["effective_node_count"], 2);
    assert_eq!(v["effective_stopped"], false);
    assert_eq!(v["effective_custom_tags"][0]["value"], "b");
    for out in [
        "uid",
        "read_write_dns",
        "creator",
        "creation_time",
        "pg_version",
    ] {
        assert!(v[out].is_string(), "{out} missing: {v}");
    }

    // Resize ⇒ UPDATING ⇒ AVAILABLE.
    let (s, v) = api
        .patch(
            "/api/2.0/database/instances/db1?update_mask=capacity",
            json!({"name": "db1", "capacity": "CU_4"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "UPDATING");
    api.wait_for("/api/2.0/database/instances/db1", "/state", "AVAILABLE")
        .await;
    let (_, v) = api.get("/api/2.0/database/instances/db1").await;
    assert_eq!(v["capacity"], "CU_4");
    assert_eq!(
        v["effective_node_count"], 2,
        "fields outside the mask are kept"
    );

    // Stop / start through the mask.
    api.patch(
        "/api/2.0/database/instances/db1?update_mask=stopped",
        json!({"name": "db1", "stopped": true}),
    )
    .await;
    api.wait_for("/api/2.0/database/instances/db1", "/state", "STOPPED")
        .await;
    let (_, v) = api.get("/api/2.0/database/instances/db1").await;
    assert_eq!(v["effective_stopped"], true);
    let (s, v) = api
        .post(
            "/api/2.0/database/credentials",
            json!({"instance_names": ["db1"]}),
        )
        .await;
    assert_eq!(s, 400, "no credential for a stopped instance: {v}");
    api.patch(
        "/api/2.0/database/instances/db1?update_mask=stopped",
        json!({"name": "db1", "stopped": false}),
    )
    .await;
    let seen = api
        .wait_for("/api/2.0/database/instances/db1", "/state", "AVAILABLE")
        .await;
    assert!(
        seen.contains(&"STARTING".to_string()),
        "start goes through STARTING: {seen:?}"
    );

    // Naming custom_tags in the mask with none given clears them.
    api.patch(
        "/api/2.0/database/instances/db1?update_mask=custom_tags",
        json!({"name": "db1"}),
    )
    .await;
    let (_, v) = api.get("/api/2.0/database/instances/db1").await;
    assert_eq!(v["effective_custom_tags"], json!([]));
    let (s, v) = api
        .patch(
            "/api/2.0/database/instances/db1?update_mask=bogus",
            json!({"name": "db1"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("bogus"));

    // Credentials.
    let (s, c) = api
        .post(
            "/api/2.0/database/credentials",
            json!({"instance_names": ["db1"], "request_id": "r1"}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert!(c["token"].as_str().unwrap().len() > 32);
    let exp = chrono::DateTime::parse_from_rfc3339(c["expiration_time"].as_str().unwrap()).unwrap();
    assert!(exp > chrono::Utc::now() + chrono::Duration::minutes(50));
    let (s, _) = api
        .post(
            "/api/2.0/database/credentials",
            json!({"instance_names": ["ghost"]}),
        )
        .await;
    assert_eq!(s, 404);

    // Child instance; the parent cannot go without force.
    let (s, v) = api
        .post(
            "/api/2.0/database/instances",
            json!({"name": "clone", "capacity": "CU_1", "parent_instance_ref": {"name": "db1", "lsn": "0/2A156E"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["parent_instance_ref"]["effective_lsn"], "0/2A156E");
    let (_, p) = api.get("/api/2.0/database/instances/db1").await;
    assert_eq!(p["child_instance_refs"][0]["name"], "clone");
    let (s, _) = api
        .delete("/api/2.0/database/instances/db1?purge=false")
        .await;
    assert_eq!(s, 400);
    let (s, v) = api
        .delete("/api/2.0/database/instances/db1?purge=true")
        .await;
    assert_eq!(s, 400, "parent with children: {v}");
    let (s, _) = api
        .delete("/api/2.0/database/instances/db1?purge=true&force=true")
        .await;
    assert_eq!(s, 200);
    for n in ["db1", "clone"] {
        let (s, _) = api.get(&format!("/api/2.0/database/instances/{n}")).await;
        assert_eq!(s, 404, "{n} deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_limit_and_pagination() {
    let emu = fast();
    let api = Api::new(&emu);
    for i in 0..10 {
        let (s, v) = api
            .post(
                "/api/2.0/database/instances",
                json!({"name": format!("i{i:02}"), "capacity": "CU_1"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = api
        .post(
            "/api/2.0/database/instances",
            json!({"name": "eleventh", "capacity": "CU_1"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("10"), "{v}");
    let mut names = Vec::new();
    let mut path = "/api/2.0/database/instances?page_size=3".to_string();
    let mut pages = 0;
    loop {
        let (s, v) = api.get(&path).await;
        assert_eq!(s, 200);
        pages += 1;
        for i in v["database_instances"].as_array().unwrap() {
            names.push(i["name"].as_str().unwrap().to_string());
        }
        match v.get("next_page_token").and_then(Value::as_str) {
            Some(t) => {
                assert!(!t.is_empty());
                path = format!("/api/2.0/database/instances?page_size=3&page_token={t}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let want: Vec<String> = (0..10).map(|i| format!("i{i:02}")).collect();
    assert_eq!(names, want);
    let (s, _) = api.get("/api/2.0/database/instances?page_token=zz").await;
    assert_eq!(s, 400);
}

/// Issue 8.9: by default every int64 id is realistic (about 10^15, like the service's) and
/// below 2^53, so a JavaScript client that parses it as a number keeps every digit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_ids_fit_a_javascript_number() {
    let emu = fast();
    let api = Api::new(&emu);
    let js_exact = |id: i64| id < (1i64 << 53) && (id as f64) as i64 == id;
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let (s, v) = api
            .post("/api/2.2/jobs/create", json!({"name": name, "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/n"}}]}))
            .await;
        assert_eq!(s, 200, "{v}");
        let job_id = v["job_id"].as_i64().expect("job_id");
        let (s, r) = api
            .post("/api/2.2/jobs/run-now", json!({"job_id": job_id}))
            .await;
        assert_eq!(s, 200, "{r}");
        ids.push(("job_id", job_id));
        ids.push(("run_id", r["run_id"].as_i64().expect("run_id")));
    }
    let (s, _) = api
        .post("/api/2.0/workspace/mkdirs", json!({"path": "/Users/x/dir"}))
        .await;
    assert_eq!(s, 200);
    let (_, st) = api
        .get("/api/2.0/workspace/get-status?path=/Users/x/dir")
        .await;
    ids.push(("object_id", st["object_id"].as_i64().expect("object_id")));
    for (what, id) in &ids {
        assert!(
            js_exact(*id),
            "{what} {id} does not fit a JavaScript number"
        );
        assert!(
            *id >= 100_000_000_000_000,
            "{what} {id} is not service-like (~10^15)"
        );
    }
    // Still distinct and increasing per kind.
    assert!(ids[2].1 > ids[0].1 && ids[3].1 > ids[1].1, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_crud_runs_and_int64_ids() {
    // Ids above 2^53 (`--large-ids`): our own client must carry them as int64.
    let emu = Emulator::start_with(&["--no-postgres", "--large-ids"]);
    let api = Api::new(&emu);
    let tasks: Vec<Value> = (0..130)
        .map(|i| json!({"task_key": format!("t{i}"), "notebook_task": {"notebook_path": "/n"}}))
        .collect();
    let (s, v) = api
        .post("/api/2.2/jobs/create", json!({"name": "big", "tasks": tasks, "parameters": [{"name": "p", "default": "d"}], "run_as": {"user_name": "x@y.z"}}))
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["job_id"].as_i64().unwrap();
    assert!(id > (1i64 << 53), "job ids exceed 2^53: {id}");
    let (s, j) = api.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
    assert_eq!(s, 200);
    assert_eq!(j["settings"]["tasks"].as_array().unwrap().len(), 100);
    assert_eq!(j["settings"]["tasks"][0]["run_if"], "ALL_SUCCESS");
    assert_eq!(
        j["settings"]["tasks"][0]["notebook_task"]["source"],
        "WORKSPACE"
    );
    assert_eq!(j["settings"]["format"], "MULTI_TASK");
    let tok = j["next_page_token"].as_str().unwrap();
    let (_, j2) = api
        .get(&format!("/api/2.2/jobs/get?job_id={id}&page_token={tok}"))
        .await;
    assert_eq!(j2["settings"]["tasks"].as_array().unwrap().len(), 30);
    assert!(
        j2.get("next_page_token").is_none(),
        "no token on the last page"
    );

    // Validation names the field.
    let (s, v) = api
        .post(
            "/api/2.2/jobs/create",
            json!({"tasks": [{"task_key": "a", "depends_on": [{"task_key": "zz"}]}]}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("zz"));

    // Reset keeps run_as when omitted; update merges tasks by key.
    let (s, _) = api
        .post("/api/2.2/jobs/reset", json!({"job_id": id, "new_settings": {"name": "small", "parameters": [{"name": "p", "default": "d"}], "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/a"}}]}}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .post("/api/2.2/jobs/update", json!({"job_id": id, "new_settings": {"tasks": [{"task_key": "b", "notebook_task": {"notebook_path": "/b"}}]}}))
        .await;
    assert_eq!(s, 200);
    let (_, j) = api.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
    assert_eq!(j["settings"]["name"], "small");
    assert_eq!(j["settings"]["run_as"]["user_name"], "x@y.z");
    let keys: Vec<&str> = j["settings"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["a", "b"]);
    api.post(
        "/api/2.2/jobs/update",
        json!({"job_id": id, "fields_to_remove": ["tasks/a"]}),
    )
    .await;
    let (_, j) = api.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
    assert_eq!(j["settings"]["tasks"].as_array().unwrap().len(), 1);

    // Runs: PENDING → RUNNING → TERMINATED, idempotency.
    let (s, r) = api
        .post(
            "/api/2.2/jobs/run-now",
            json!({"job_id": id, "idempotency_token": "once", "job_parameters": {"p": "v"}}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let run_id = r["run_id"].as_i64().unwrap();
    assert!(run_id > (1i64 << 53), "run ids exceed 2^53: {run_id}");
    let (_, again) = api
        .post(
            "/api/2.2/jobs/run-now",
            json!({"job_id": id, "idempotency_token": "once"}),
        )
        .await;
    assert_eq!(again["run_id"].as_i64(), Some(run_id));
    let seen = api
        .wait_for(
            &format!("/api/2.2/jobs/runs/get?run_id={run_id}"),
            "/state/life_cycle_state",
            "TERMINATED",
        )
        .await;
    assert_eq!(seen, ["PENDING", "RUNNING", "TERMINATED"]);
    let (_, run) = api
        .get(&format!("/api/2.2/jobs/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(run["state"]["result_state"], "SUCCESS");
    assert_eq!(run["job_parameters"][0]["value"], "v");
    assert_eq!(run["job_parameters"][0]["default"], "d");
    let (_, runs) = api
        .get(&format!("/api/2.2/jobs/runs/list?job_id={id}"))
        .await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);

    // Pagination of jobs/list: newest first, no token on the last page.
    for i in 0..4 {
        api.post("/api/2.2/jobs/create", json!({"name": format!("j{i}")}))
            .await;
    }
    let (_, p1) = api.get("/api/2.2/jobs/list?limit=2").await;
    assert_eq!(p1["has_more"], true);
    assert_eq!(p1["jobs"][0]["settings"]["name"], "j3");
    let mut total = p1["jobs"].as_array().unwrap().len();
    let mut token = p1["next_page_token"].as_str().map(str::to_string);
    while let Some(t) = token {
        let (_, p) = api
            .get(&format!("/api/2.2/jobs/list?limit=2&page_token={t}"))
            .await;
        total += p["jobs"].as_array().map_or(0, Vec::len);
        token = p
            .get("next_page_token")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    assert_eq!(total, 5);
    let (_, named) = api.get("/api/2.2/jobs/list?name=J2").await;
    assert_eq!(named["jobs"].as_array().unwrap().len(), 1);

    let (s, _) = api
        .post("/api/2.2/jobs/delete", json!({"job_id": id}))
        .await;
    assert_eq!(s, 200);
    let (s, v) = api.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
    assert_eq!(s, 404);
    assert_eq!(v["message"], format!("Job {id} does not exist."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_lifecycle() {
    let emu = fast();
    let api = Api::new(&emu);
    let (s, v) = api
        .post(
            "/api/2.0/apps?no_compute=true",
            json!({"name": "app1", "description": "d"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["compute_status"]["state"], "STOPPED");
    let (s, v) = api
        .post(
            "/api/2.0/apps/app1/deployments",
            json!({"source_code_path": "/Workspace/Users/local-user@example.com/app"}),
        )
        .await;
    assert_eq!(s, 400, "deploy to stopped compute: {v}");
    let (_, v) = api.post("/api/2.0/apps/app1/start", json!({})).await;
    assert_eq!(v["compute_status"]["state"], "STARTING");
    api.wait_for("/api/2.0/apps/app1", "/compute_status/state", "ACTIVE")
        .await;

    let src = "/Workspace/Users/local-user@example.com/app";
    api.post("/api/2.0/workspace/mkdirs", json!({"path": src}))
        .await;
    let (s, d) = api.post("/api/2.0/apps/app1/deployments", json!({"source_code_path": src, "mode": "SNAPSHOT", "env_vars": [{"name": "K", "value": "secret"}]})).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["status"]["state"], "IN_PROGRESS");
    let dep = d["deployment_id"].as_str().unwrap();
    assert!(d["env_vars"][0].get("value").is_none());
    let seen = api
        .wait_for(
            &format!("/api/2.0/apps/app1/deployments/{dep}"),
            "/status/state",
            "SUCCEEDED",
        )
        .await;
    assert_eq!(seen, ["IN_PROGRESS", "SUCCEEDED"]);
    let (_, a) = api.get("/api/2.0/apps/app1").await;
    assert_eq!(a["active_deployment"]["deployment_id"], dep);
    assert_eq!(a["app_status"]["state"], "RUNNING");
    // A deployment of a missing folder fails.
    let (_, bad) = api
        .post(
            "/api/2.0/apps/app1/deployments",
            json!({"source_code_path": "/Workspace/nowhere"}),
        )
        .await;
    let bad_id = bad["deployment_id"].as_str().unwrap();
    api.wait_for(
        &format!("/api/2.0/apps/app1/deployments/{bad_id}"),
        "/status/state",
        "FAILED",
    )
    .await;

    // Masked update in the body.
    let (s, u) = api
        .post(
            "/api/2.0/apps/app1/update",
            json!({"app": {"name": "app1", "description": "new"}, "update_mask": "description"}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    api.wait_for("/api/2.0/apps/app1/update", "/status/state", "SUCCEEDED")
        .await;
    let (_, a) = api.get("/api/2.0/apps/app1").await;
    assert_eq!(a["description"], "new");
    let (s, _) = api
        .post(
            "/api/2.0/apps/app1/update",
            json!({"app": {}, "update_mask": "name"}),
        )
        .await;
    assert_eq!(s, 400);

    api.post("/api/2.0/apps/app1/stop", json!({})).await;
    api.wait_for("/api/2.0/apps/app1", "/compute_status/state", "STOPPED")
        .await;
    let (_, a) = api.get("/api/2.0/apps/app1").await;
    assert!(a.get("active_deployment").is_none(), "cleared when stopped");

    // Delete leaves DELETING visible; a second delete and a same-name create are refused.
    let (s, _) = api.delete("/api/2.0/apps/app1").await;
    assert_eq!(s, 200);
    let (_, a) = api.get("/api/2.0/apps/app1").await;
    assert_eq!(a["compute_status"]["state"], "DELETING");
    let (s, v) = api.delete("/api/2.0/apps/app1").await;
    assert_eq!((s, v["error_code"].as_str()), (400, Some("BAD_REQUEST")));
    let (s, _) = api.post("/api/2.0/apps", json!({"name": "app1"})).await;
    assert_eq!(s, 409);
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.get("/api/2.0/apps/app1").await.0 != 404 {
        assert!(Instant::now() < deadline, "app never disappeared");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (s, v) = api.post("/api/2.0/apps", json!({"name": "Bad_Name"})).await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("Bad_Name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_files_for_state_and_lock() {
    let emu = fast();
    let api = Api::new(&emu);
    let root = "/Workspace/Users/local-user@example.com/.bundle/b/dev/state";
    let put = |path: String, overwrite: bool, bytes: &'static [u8]| {
        let req = api
            .http
            .post(format!(
                "{}/api/2.0/workspace-files/import-file/{}?overwrite={overwrite}",
                api.url,
                path.trim_start_matches('/')
            ))
            .bearer_auth(&api.token)
            .body(bytes);
        async move {
            let r = req.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(json!({})))
        }
    };
    let lock = format!("{root}/deploy.lock");
    let (s, _) = put(lock.clone(), false, b"{\"ID\":\"1\"}").await;
    assert_eq!(s, 404, "parent missing");
    let (s, _) = api
        .post("/api/2.0/workspace/mkdirs", json!({"path": root}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = put(lock.clone(), false, b"{\"ID\":\"1\"}").await;
    assert_eq!(s, 200);
    let (s, v) = put(lock.clone(), false, b"{\"ID\":\"2\"}").await;
    assert_eq!(s, 409, "{v}");
    assert!(v["message"].as_str().unwrap().contains("already exists"));
    let (s, _) = put(lock.clone(), true, b"{\"ID\":\"3\"}").await;
    assert_eq!(s, 200);
    // Raw export, and the /Users spelling names the same file.
    let alt = lock.trim_start_matches("/Workspace").to_string();
    let raw = api
        .http
        .get(format!("{}/api/2.0/workspace/export", api.url))
        .query(&[("path", alt.as_str()), ("direct_download", "true")])
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    assert_eq!(raw.bytes().await.unwrap().as_ref(), b"{\"ID\":\"3\"}");
    let (_, v) = api
        .get(&format!("/api/2.0/workspace/export?path={}", urlenc(&lock)))
        .await;
    assert_eq!(v["file_type"], "lock");
    let (_, st) = api
        .get(&format!(
            "/api/2.0/workspace/get-status?path={}",
            urlenc(&lock)
        ))
        .await;
    assert_eq!(st["object_type"], "FILE");
    assert_eq!(st["size"], 10);
    let missing = format!("{root}/nope.json");
    let (s, v) = api
        .get(&format!(
            "/api/2.0/workspace/get-status?path={}",
            urlenc(&missing)
        ))
        .await;
    assert_eq!(s, 404);
    assert_eq!(v["message"], format!("Path ({missing}) doesn't exist."));
    // JSON import (base64) and listing.
    let (s, _) = api
        .post("/api/2.0/workspace/import", json!({"path": format!("{root}/resources.json"), "content": "e30=", "format": "AUTO", "overwrite": false}))
        .await;
    assert_eq!(s, 200);
    let (_, l) = api
        .get(&format!("/api/2.0/workspace/list?path={}", urlenc(root)))
        .await;
    let paths: Vec<&str> = l["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, [lock.as_str(), &format!("{root}/resources.json")]);
    let parent = root.rsplit_once('/').unwrap().0;
    let (s, v) = api
        .post("/api/2.0/workspace/delete", json!({"path": parent}))
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("DIRECTORY_NOT_EMPTY"))
    );
    let (s, _) = api
        .post("/api/2.0/workspace/delete", json!({"path": lock}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .post("/api/2.0/workspace/delete", json!({"path": lock}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = api
        .post(
            "/api/2.0/workspace/delete",
            json!({"path": parent, "recursive": true}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, l) = api
        .get(&format!(
            "/api/2.0/workspace/list?path={}",
            urlenc("/Users/local-user@example.com/.bundle/b")
        ))
        .await;
    assert!(
        l.get("objects").is_none(),
        "empty dir lists no objects key: {l}"
    );
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An AVAILABLE instance `db` with a database catalog `cat` (database `appdb`).
async fn instance_with_catalog(api: &Api) {
    api.post(
        "/api/2.0/database/instances",
        json!({"name": "db", "capacity": "CU_1"}),
    )
    .await;
    api.wait_for("/api/2.0/database/instances/db", "/state", "AVAILABLE")
        .await;
    let (s, v) = api
        .post(
            "/api/2.0/database/catalogs",
            json!({"name": "cat", "database_instance_name": "db", "database_name": "appdb",
                   "create_database_if_not_exists": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

/// Start an update of a pipeline; returns the path to poll it at.
async fn start_update(api: &Api, pipeline: &str) -> String {
    let (s, u) = api
        .post(&format!("/api/2.0/pipelines/{pipeline}/updates"), json!({}))
        .await;
    assert_eq!(s, 200, "{u}");
    format!(
        "/api/2.0/pipelines/{pipeline}/updates/{}",
        u["update_id"].as_str().expect("update id")
    )
}

fn synced_table(name: &str, source: &str) -> Value {
    json!({"name": name, "spec": {"source_table_full_name": source, "primary_key_columns": ["id"],
           "scheduling_policy": "TRIGGERED",
           "new_pipeline_spec": {"storage_catalog": "src", "storage_schema": "gold"}}})
}

/// Issue 14.3: a source name is three identifiers and its file stays inside the lake
/// directory; absolute parts, `..` and symlinks out are refused with INVALID_PARAMETER_VALUE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_table_sources_cannot_escape_the_lake() {
    // No dot in its path, so `<path>.sch.tbl` splits into exactly three parts.
    let outside = tempfile::Builder::new()
        .prefix("lakebundle-outside")
        .tempdir()
        .unwrap();
    assert!(!outside.path().display().to_string().contains('.'));
    std::fs::write(outside.path().join("secret.csv"), "id,secret\n1,hunter2\n").unwrap();
    std::fs::create_dir_all(outside.path().join("sch")).unwrap();
    std::fs::write(outside.path().join("sch/tbl.csv"), "id,secret\n1,hunter2\n").unwrap();
    let lake = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(lake.path().join("src/gold")).unwrap();
    std::fs::write(lake.path().join("src/gold/ok.csv"), "id,v\n1,a\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.csv"),
        lake.path().join("src/gold/evil.csv"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), lake.path().join("linked")).unwrap();
    let lake_arg = lake.path().display().to_string();
    let emu = Emulator::start_with(&["--no-postgres", "--lake-dir", &lake_arg]);
    let api = Api::new(&emu);
    instance_with_catalog(&api).await;

    let abs = format!("{}.sch.tbl", outside.path().display());
    for (i, bad) in [
        abs.as_str(),
        "../../etc.x.y",
        "src.gold.ok.extra",
        "src..ok",
        "src.gold/../gold.ok",
        "src.gold.ok\u{0}",
        "src.gold.\\ok",
    ]
    .into_iter()
    .enumerate()
    {
        let (s, v) = api
            .post(
                "/api/2.0/database/synced_tables",
                synced_table(&format!("cat.public.bad{i}"), bad),
            )
            .await;
        assert_eq!(
            (s, v["error_code"].as_str()),
            (400, Some("INVALID_PARAMETER_VALUE")),
            "{bad:?}: {v}"
        );
    }
    for (i, escaping) in ["src.gold.evil", "linked.sch.tbl"].into_iter().enumerate() {
        let (s, v) = api
            .post(
                "/api/2.0/database/synced_tables",
                synced_table(&format!("cat.public.esc{i}"), escaping),
            )
            .await;
        assert_eq!(
            (s, v["error_code"].as_str()),
            (400, Some("INVALID_PARAMETER_VALUE")),
            "{escaping}: {v}"
        );
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.contains("outside the lake"), "{msg}");
        assert!(!msg.contains("hunter2"));
    }
    let (s, v) = api
        .post(
            "/api/2.0/database/synced_tables",
            synced_table("cat.public.ok", "src.gold.ok"),
        )
        .await;
    assert_eq!(s, 200, "a source inside the lake is fine: {v}");
    api.wait_for(
        "/api/2.0/database/synced_tables/cat.public.ok",
        "/unity_catalog_provisioning_state",
        "ACTIVE",
    )
    .await;
    // Swapping the file for a symlink out after the create: the next sync refuses it.
    std::fs::remove_file(lake.path().join("src/gold/ok.csv")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.csv"),
        lake.path().join("src/gold/ok.csv"),
    )
    .unwrap();
    let (_, t) = api
        .get("/api/2.0/database/synced_tables/cat.public.ok")
        .await;
    let pipeline = t["data_synchronization_status"]["pipeline_id"]
        .as_str()
        .expect("pipeline")
        .to_string();
    let (s, u) = api
        .post(&format!("/api/2.0/pipelines/{pipeline}/updates"), json!({}))
        .await;
    assert_eq!(s, 200, "{u}");
    let update = u["update_id"].as_str().expect("update id").to_string();
    api.wait_for(
        &format!("/api/2.0/pipelines/{pipeline}/updates/{update}"),
        "/update/state",
        "FAILED",
    )
    .await;
    let (_, t) = api
        .get("/api/2.0/database/synced_tables/cat.public.ok")
        .await;
    let status = &t["data_synchronization_status"];
    assert_eq!(
        status["detailed_state"], "SYNCED_TABLE_OFFLINE_FAILED",
        "{t}"
    );
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("outside the lake"),
        "{t}"
    );
}

/// Issue 8.3c: without `--lake-dir` (as `--local` runs), a synced table whose source file is
/// missing is accepted but never reports success: its status names the source and the
/// paths looked at, and its pipeline updates fail — until the file is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_table_without_its_source_never_reports_success() {
    let emu = fast();
    let api = Api::new(&emu);
    instance_with_catalog(&api).await;
    let path = "/api/2.0/database/synced_tables/cat.public.absent";
    let (s, v) = api
        .post(
            "/api/2.0/database/synced_tables",
            synced_table("cat.public.absent", "src.gold.absent"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    api.wait_for(
        path,
        "/data_synchronization_status/detailed_state",
        "SYNCED_TABLE_OFFLINE_FAILED",
    )
    .await;
    let (_, t) = api.get(path).await;
    // The UC table exists (a deploy waiting for it goes on); its data is offline.
    assert_eq!(t["unity_catalog_provisioning_state"], "ACTIVE", "{t}");
    let message = t["data_synchronization_status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let lake = std::fs::canonicalize(emu.data_dir())
        .unwrap_or_else(|_| emu.data_dir().to_path_buf())
        .join("lake");
    let looked = lake.join("src/gold/absent.csv");
    assert!(message.contains("src.gold.absent"), "{message}");
    assert!(
        message.contains(&looked.display().to_string())
            || message.contains(
                &emu.data_dir()
                    .join("lake/src/gold/absent.csv")
                    .display()
                    .to_string()
            ),
        "the path looked at: {message}"
    );
    assert!(
        t["data_synchronization_status"]
            .get("triggered_update_status")
            .is_none(),
        "{t}"
    );

    let pipeline = t["data_synchronization_status"]["pipeline_id"]
        .as_str()
        .expect("pipeline")
        .to_string();
    let u = start_update(&api, &pipeline).await;
    api.wait_for(&u, "/update/state", "FAILED").await;

    // The source appears in the default lake: the next update loads it.
    let dir = emu.data_dir().join("lake/src/gold");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("absent.csv"), "id,v\n1,a\n2,b\n").unwrap();
    let u = start_update(&api, &pipeline).await;
    api.wait_for(&u, "/update/state", "COMPLETED").await;
    let (_, t) = api.get(path).await;
    let status = &t["data_synchronization_status"];
    assert_eq!(
        status["detailed_state"], "SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE",
        "{t}"
    );
    assert_eq!(
        status["triggered_update_status"]["triggered_update_progress"]["total_row_count"],
        2
    );
    assert_eq!(t["unity_catalog_provisioning_state"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogs_and_synced_tables_with_lake_dir() {
    let lake = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(lake.path().join("src/gold")).unwrap();
    std::fs::write(
        lake.path().join("src/gold/customers.csv"),
        "customer_id,name\n1,a\n2,b\n3,c\n",
    )
    .unwrap();
    let lake_arg = lake.path().display().to_string();
    let emu = Emulator::start_with(&["--no-postgres", "--lake-dir", &lake_arg]);
    let api = Api::new(&emu);
    api.post(
        "/api/2.0/database/instances",
        json!({"name": "db", "capacity": "CU_1"}),
    )
    .await;
    api.wait_for("/api/2.0/database/instances/db", "/state", "AVAILABLE")
        .await;

    let cat = json!({"name": "cat", "database_instance_name": "db", "database_name": "appdb"});
    let (s, v) = api.post("/api/2.0/database/catalogs", cat.clone()).await;
    assert_eq!(s, 400, "database does not exist yet: {v}");
    assert!(v["message"].as_str().unwrap().contains("appdb"));
    let mut with_create = cat.clone();
    with_create["create_database_if_not_exists"] = json!(true);
    let (s, v) = api
        .post("/api/2.0/database/catalogs", with_create.clone())
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api.post("/api/2.0/database/catalogs", with_create).await;
    assert_eq!(s, 409);
    let (_, g) = api.get("/api/2.0/database/catalogs/cat").await;
    assert!(g.get("create_database_if_not_exists").is_none());
    assert_eq!(g["database_name"], "appdb");
    let (s, v) = api
        .patch(
            "/api/2.0/database/catalogs/cat?update_mask=database_name",
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (501, Some("NOT_IMPLEMENTED"))
    );
    let (_, l) = api.get("/api/2.0/database/instances/db/catalogs").await;
    assert_eq!(l["database_catalogs"][0]["name"], "cat");
    let (s, _) = api
        .post(
            "/api/2.0/database/catalogs",
            json!({"name": "c2", "database_instance_name": "ghost", "database_name": "x"}),
        )
        .await;
    assert_eq!(s, 404);

    let spec = |src: &str, pk: &str| {
        json!({"name": "cat.public.customers", "spec": {"source_table_full_name": src, "primary_key_columns": [pk],
               "scheduling_policy": "TRIGGERED", "new_pipeline_spec": {"storage_catalog": "src", "storage_schema": "gold"}}})
    };
    let (s, v) = api
        .post(
            "/api/2.0/database/synced_tables",
            spec("src.gold.missing", "customer_id"),
        )
        .await;
    assert_eq!(s, 404, "missing source: {v}");
    let (s, v) = api
        .post(
            "/api/2.0/database/synced_tables",
            spec("src.gold.customers", "nope"),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("nope"));
    let (s, v) = api
        .post(
            "/api/2.0/database/synced_tables",
            spec("src.gold.customers", "customer_id"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let path = "/api/2.0/database/synced_tables/cat.public.customers";
    api.wait_for(path, "/unity_catalog_provisioning_state", "ACTIVE")
        .await;
    let (_, t) = api.get(path).await;
    assert_eq!(t["effective_database_instance_name"], "db");
    assert_eq!(t["effective_logical_database_name"], "appdb");
    assert!(
        t["spec"].get("new_pipeline_spec").is_none(),
        "in-only spec fields dropped"
    );
    let status = &t["data_synchronization_status"];
    assert_eq!(
        status["detailed_state"],
        "SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE"
    );
    assert_eq!(
        status["triggered_update_status"]["triggered_update_progress"]["total_row_count"],
        3
    );
    let pipeline = status["pipeline_id"].as_str().unwrap().to_string();

    // A refresh through the pipeline sees new source rows.
    std::fs::write(
        lake.path().join("src/gold/customers.csv"),
        "customer_id,name\n1,a\n2,b\n3,c\n4,d\n",
    )
    .unwrap();
    let (s, u) = api
        .post(&format!("/api/2.0/pipelines/{pipeline}/updates"), json!({}))
        .await;
    assert_eq!(s, 200);
    let uid = u["update_id"].as_str().unwrap();
    api.wait_for(
        &format!("/api/2.0/pipelines/{pipeline}/updates/{uid}"),
        "/update/state",
        "COMPLETED",
    )
    .await;
    let (_, t) = api.get(path).await;
    assert_eq!(
        t["data_synchronization_status"]["triggered_update_status"]["triggered_update_progress"]
            ["total_row_count"],
        4
    );
    let (_, l) = api
        .get("/api/2.0/database/instances/db/synced_tables")
        .await;
    assert_eq!(l["synced_tables"].as_array().unwrap().len(), 1);
    let (s, _) = api.patch(path, json!({})).await;
    assert_eq!(s, 501);
    let (s, _) = api.delete(&format!("{path}?purge_data=true")).await;
    assert_eq!(s, 200);
    let (s, _) = api.get(path).await;
    assert_eq!(s, 404);
    let (s, _) = api.delete("/api/2.0/database/catalogs/cat").await;
    assert_eq!(s, 200);
    // A standard catalog names instance and database itself; the database must exist
    // unless create_database_objects_if_missing.
    let mut std_table = json!({"name": "std.public.t2", "database_instance_name": "db",
        "logical_database_name": "nodb", "spec": {"source_table_full_name": "src.gold.customers",
        "primary_key_columns": ["customer_id"], "scheduling_policy": "SNAPSHOT"}});
    let (s, v) = api
        .post("/api/2.0/database/synced_tables", std_table.clone())
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("nodb"));
    std_table["spec"]["create_database_objects_if_missing"] = json!(true);
    let (s, v) = api.post("/api/2.0/database/synced_tables", std_table).await;
    assert_eq!(s, 200, "{v}");
    let (_, t) = api
        .get("/api/2.0/database/synced_tables/std.public.t2")
        .await;
    assert_eq!(t["effective_logical_database_name"], "nodb");
    assert!(
        t.get("logical_database_name").is_none(),
        "in-only on GET: {t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_get_put_patch() {
    let emu = fast();
    let api = Api::new(&emu);
    let (_, j) = api.post("/api/2.2/jobs/create", json!({"name": "j"})).await;
    let id = j["job_id"].as_i64().unwrap();
    let path = format!("/api/2.0/permissions/jobs/{id}");
    let (s, p) = api.get(&path).await;
    assert_eq!(s, 200);
    assert_eq!(p["object_id"], format!("/jobs/{id}"));
    let owner = &p["access_control_list"][0];
    assert_eq!(owner["user_name"], "local-user@example.com");
    assert_eq!(owner["all_permissions"][0]["permission_level"], "IS_OWNER");
    let (s, p) = api.call(Method::PATCH, &path, Some(json!({"access_control_list": [{"group_name": "users", "permission_level": "CAN_VIEW"}]}))).await;
    assert_eq!(s, 200);
    assert_eq!(
        p["access_control_list"].as_array().unwrap().len(),
        3,
        "owner + users + inherited admins: {p}"
    );
    let (s, p) = api.call(Method::PUT, &path, Some(json!({"access_control_list": [{"user_name": "b@x.y", "permission_level": "CAN_MANAGE_RUN"}]}))).await;
    assert_eq!(s, 200);
    let direct: Vec<&Value> = p["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["all_permissions"][0]["inherited"] == false)
        .collect();
    assert_eq!(
        direct.len(),
        2,
        "PUT replaces grants but a job keeps its owner: {p}"
    );
    let (s, v) = api.call(Method::PUT, &path, Some(json!({"access_control_list": [{"user_name": "b@x.y", "permission_level": "CAN_USE"}]}))).await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("CAN_USE"));
    let (s, _) = api.get("/api/2.0/permissions/jobs/42").await;
    assert_eq!(s, 404);
    api.post(
        "/api/2.0/database/instances",
        json!({"name": "db", "capacity": "CU_1"}),
    )
    .await;
    let (s, p) = api.call(Method::PUT, "/api/2.0/permissions/database-instances/db", Some(json!({"access_control_list": [{"group_name": "users", "permission_level": "CAN_USE"}]}))).await;
    assert_eq!(s, 200, "{p}");
    api.post("/api/2.0/apps?no_compute=true", json!({"name": "a1"}))
        .await;
    let (s, _) = api.get("/api/2.0/permissions/apps/a1").await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_restart_and_kill9() {
    let mut emu = Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "1500"]);
    let api = Api::new(&emu);
    api.post(
        "/api/2.0/database/instances",
        json!({"name": "slow", "capacity": "CU_2"}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (s, v) = api
            .post("/api/2.2/jobs/create", json!({"name": format!("job{i}")}))
            .await;
        assert_eq!(s, 200);
        ids.push(v["job_id"].as_i64().unwrap());
    }
    // Acknowledged writes, then kill -9 straight away.
    emu.kill9();
    emu.restart();
    let api = Api::new(&emu);
    for id in &ids {
        let (s, _) = api.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
        assert_eq!(s, 200, "job {id} lost by kill -9");
    }
    // The STARTING→AVAILABLE clock survived the restart.
    let (_, v) = api.get("/api/2.0/database/instances/slow").await;
    assert_eq!(v["capacity"], "CU_2");
    api.wait_for("/api/2.0/database/instances/slow", "/state", "AVAILABLE")
        .await;
    // Ids keep counting after a restart: no reuse.
    let (_, v) = api
        .post("/api/2.2/jobs/create", json!({"name": "after"}))
        .await;
    assert!(v["job_id"].as_i64().unwrap() > *ids.last().unwrap());
    emu.stop();
    emu.restart();
    let api = Api::new(&emu);
    let (_, l) = api.get("/api/2.2/jobs/list?limit=100").await;
    assert_eq!(l["jobs"].as_array().unwrap().len(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_on_same_data_dir_is_refused() {
    let emu = fast();
    let (status, stderr) = emu.start_second_on_same_dir();
    assert!(!status.success());
    let pid = emu.pid().unwrap();
    assert!(
        stderr.contains(&format!("in use by pid {pid}")),
        "stderr: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_down_stops_the_server() {
    let mut emu = fast();
    let out = std::process::Command::new(Emulator::bin())
        .args(["emulator", "down", "--data-dir"])
        .arg(emu.data_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(
        msg.contains(&format!("pid {}", emu.pid().unwrap())),
        "{msg}"
    );
    assert!(msg.contains(&emu.url), "names the URL it served: {msg}");
    assert!(
        emu.raw_get("/lakebundle/health").is_none(),
        "server still answers"
    );
    // Issue 8.6: a second `down` says nothing ran, in text and JSON.
    let dir = emu.data_dir().to_path_buf();
    let down = |json: bool| {
        let mut c = std::process::Command::new(Emulator::bin());
        if json {
            c.args(["-o", "json"]);
        }
        let out = c
            .args(["emulator", "down", "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = down(false);
    assert_eq!(
        text.trim(),
        format!("nothing was running for {}", dir.display())
    );
    let v: Value = serde_json::from_str(&down(true)).expect("down -o json");
    assert_eq!(v["stopped_anything"], false, "{v}");
    assert_eq!(v["emulator"], Value::Null, "{v}");
    assert_eq!(v["postgres_servers"], json!([]), "{v}");
    // The data dir is free again.
    emu.restart();
    assert!(emu.raw_get("/lakebundle/health").is_some());
    let v: Value = serde_json::from_str(&down(true)).expect("down -o json");
    assert_eq!(v["stopped_anything"], true, "{v}");
    assert_eq!(v["emulator"]["url"], json!(emu.url), "{v}");
    assert!(v["emulator"]["pid"].as_u64().is_some(), "{v}");
}

/// Status codes of a fixed request sequence.
async fn fault_sequence(seed: &str) -> (Vec<u16>, Vec<Option<String>>) {
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--fail-rate",
        "0.3",
        "--lost-response-rate",
        "0.3",
        "--seed",
        seed,
    ]);
    let api = Api::new(&emu);
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for i in 0..40 {
        let (s, h, _) = if i % 2 == 0 {
            api.call_full(
                Method::POST,
                "/api/2.2/jobs/create",
                Some(json!({"name": format!("j{i}")})),
                Some(&api.token),
            )
            .await
        } else {
            api.call_full(Method::GET, "/api/2.2/jobs/list", None, Some(&api.token))
                .await
        };
        statuses.push(s);
        retry_after.push(
            h.get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        );
    }
    (statuses, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_is_reproducible_with_a_seed() {
    let (a, ra) = fault_sequence("42").await;
    let (b, _) = fault_sequence("42").await;
    let (c, _) = fault_sequence("43").await;
    assert_eq!(a, b, "same seed, same faults");
    assert_ne!(a, c, "another seed, other faults");
    assert!(
        a.contains(&200) && a.iter().any(|s| *s == 429 || *s == 503),
        "{a:?}"
    );
    for (s, r) in a.iter().zip(&ra) {
        if *s == 429 || *s == 503 {
            assert_eq!(r.as_deref(), Some("1"), "Retry-After on {s}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_are_applied() {
    let emu = Emulator::start_with(&["--no-postgres", "--lost-response-rate", "1", "--seed", "1"]);
    let api = Api::new(&emu);
    let (s, _) = api
        .post("/api/2.2/jobs/create", json!({"name": "ghost-reply"}))
        .await;
    assert_eq!(s, 503);
    let (s, l) = api.get("/api/2.2/jobs/list?name=ghost-reply").await;
    assert_eq!(s, 200, "reads are never lost");
    assert_eq!(
        l["jobs"].as_array().unwrap().len(),
        1,
        "the create was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_clients_see_consistent_results() {
    let emu = fast();
    let api = std::sync::Arc::new(Api::new(&emu));
    let mut tasks = Vec::new();
    for c in 0..64 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..5 {
                let (s, v) = api.post("/api/2.2/jobs/create", json!({"name": format!("c{c}-{i}"), "tags": {"client": c.to_string()}})).await;
                assert_eq!(s, 200, "{v}");
                let id = v["job_id"].as_i64().unwrap();
                let (s, j) = api.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
                assert_eq!(s, 200, "read-your-write");
                assert_eq!(j["settings"]["name"], format!("c{c}-{i}"));
                mine.push(id);
            }
            let (s, _) = api
                .call(Method::POST, "/api/2.0/workspace-files/import-file/Users/local-user@example.com/shared.txt?overwrite=true", None)
                .await;
            assert_eq!(s, 200);
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 320, "ids are unique");
    let mut listed = 0;
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/api/2.2/jobs/list?limit=100&page_token={t}"),
            None => "/api/2.2/jobs/list?limit=100".into(),
        };
        let (_, p) = api.get(&path).await;
        listed += p["jobs"].as_array().map_or(0, Vec::len);
        token = p
            .get("next_page_token")
            .and_then(Value::as_str)
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed, 320);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_m2m_client_credentials() {
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--client-id",
        "sp-app-id",
        "--client-secret",
        "s3cret",
    ]);
    let api = Api::new(&emu);
    let (_, _, disc) = api
        .call_full(
            Method::GET,
            "/oidc/.well-known/oauth-authorization-server",
            None,
            None,
        )
        .await;
    let token_url = disc["token_endpoint"].as_str().unwrap().to_string();
    let bad = api
        .http
        .post(&token_url)
        .basic_auth("sp-app-id", Some("wrong"))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let good: Value = api
        .http
        .post(&token_url)
        .basic_auth("sp-app-id", Some("s3cret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(good["token_type"], "Bearer");
    assert_eq!(good["expires_in"], 3600);
    let access = good["access_token"].as_str().unwrap();
    let (s, _, me) = api
        .call_full(
            Method::GET,
            "/api/2.0/preview/scim/v2/Me",
            None,
            Some(access),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(me["userName"], "sp-app-id");
    // The database never stores the token itself.
    let db = std::fs::read(emu.data_dir().join("workspace.db")).unwrap();
    let wal = std::fs::read(emu.data_dir().join("workspace.db-wal")).unwrap_or_default();
    let hay = [db, wal].concat();
    assert!(
        !hay.windows(access.len()).any(|w| w == access.as_bytes()),
        "token stored in clear"
    );
}

/// Issue 14.1: with no OAuth client configured, `/oidc/v1/token` must not mint a token for
/// any id and secret (that token used to list instances and get a database credential even
/// when `--token` restricted bearer tokens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2m_refuses_every_client_when_none_is_configured() {
    let emu = Emulator::start_with(&["--no-postgres", "--token", "only-this-pat"]);
    let api = Api::new(&emu);
    let token_url = format!("{}/oidc/v1/token", api.url);
    for (id, secret) in [("anything", "at-all"), ("sp-app-id", "s3cret")] {
        for basic in [true, false] {
            let mut rb = api.http.post(&token_url);
            let mut form = vec![("grant_type", "client_credentials"), ("scope", "all-apis")];
            if basic {
                rb = rb.basic_auth(id, Some(secret));
            } else {
                form.extend([("client_id", id), ("client_secret", secret)]);
            }
            let resp = rb.form(&form).send().await.expect("token request");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.expect("oauth error body");
            assert_eq!(status, 401, "{id}: {body}");
            assert_eq!(body["error"], "invalid_client", "{body}");
            assert!(body.get("access_token").is_none(), "{body}");
        }
    }
    // The PAT still works and nothing else does.
    let (s, _) = api.get("/api/2.0/database/instances").await;
    assert_eq!(s, 200);
    let (s, _, _) = api
        .call_full(
            Method::GET,
            "/api/2.0/database/instances",
            None,
            Some("eyJlbXUiOiJtMm0ifQ.guess"),
        )
        .await;
    assert_eq!(s, 403);
}

/// A configured client is the only one accepted; a client id or secret alone is refused at
/// start, since it would accept anything for the other half.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2m_accepts_only_the_configured_client() {
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--client-id",
        "sp-app-id",
        "--client-secret",
        "s3cret",
    ]);
    let api = Api::new(&emu);
    let token_url = format!("{}/oidc/v1/token", api.url);
    for (id, secret, want) in [
        ("other-client", "s3cret", 401),
        ("sp-app-id", "s3cret-but-longer", 401),
        ("sp-app-id", "s3cret", 200),
    ] {
        let resp = api
            .http
            .post(&token_url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(resp.status().as_u16(), want, "{id}/{secret}");
    }
    for half in [["--client-id", "sp-app-id"], ["--client-secret", "s3cret"]] {
        let dir = tempfile::tempdir().expect("dir");
        let out = std::process::Command::new(Emulator::bin())
            .args([
                "emulator",
                "serve",
                "--port",
                "0",
                "--no-postgres",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(half)
            .env_remove("LAKEBUNDLE_EMULATOR_CLIENT_SECRET")
            .output()
            .expect("run serve");
        assert!(!out.status.success(), "{half:?} alone must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--client-id and --client-secret"), "{err}");
        assert!(!err.contains("s3cret"), "the secret leaked: {err}");
    }
}

fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Issue 14.10: the store (with its -wal/-shm), the credential key and the data dir are the
/// owner's only, also for a data dir an earlier version left readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_its_secrets_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).expect("mkdir");
    std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(ws.join("workspace.db"), b"").expect("empty store");
    std::fs::set_permissions(
        ws.join("workspace.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let ws_arg = ws.display().to_string();
    let emu = Emulator::start_with(&["--no-postgres", "--data-dir", &ws_arg]);
    let api = Api::new(&emu);
    let (s, _) = api.post("/api/2.2/jobs/create", json!({"name": "j"})).await;
    assert_eq!(s, 200);
    assert_eq!(mode_of(&ws), 0o700, "data dir");
    for f in [
        "workspace.db",
        "workspace.db-wal",
        "workspace.db-shm",
        "credential.key",
        "emulator.lock",
    ] {
        assert_eq!(mode_of(&ws.join(f)), 0o600, "{f}");
    }
}

/// Postgres processes whose command line names this data dir.
fn postgres_processes(dir: &std::path::Path) -> usize {
    let out = std::process::Command::new("pgrep")
        .arg("-f")
        .arg(dir.join("pg").display().to_string())
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_postgres_server_outlives_kill9_and_down() {
    if !common::prereq::postgres() {
        return;
    }
    let mut emu = Emulator::start_with(&["--instance-ready-ms", "50"]);
    let api = Api::new(&emu);
    let (s, v) = api
        .post(
            "/api/2.0/database/instances",
            json!({"name": "real", "capacity": "CU_1"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    api.wait_for("/api/2.0/database/instances/real", "/state", "AVAILABLE")
        .await;
    assert!(postgres_processes(emu.data_dir()) > 0, "a real server runs");
    // A crashed emulator leaves its servers running; `down` must still stop them, and
    // say which it stopped.
    emu.kill9();
    let out = std::process::Command::new(Emulator::bin())
        .args(["emulator", "down", "--data-dir"])
        .arg(emu.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(
        msg.contains("stopped PostgreSQL server of instance real"),
        "{msg}"
    );
    assert!(
        !msg.contains("stopped emulator"),
        "it was already dead: {msg}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while postgres_processes(emu.data_dir()) > 0 {
        assert!(
            Instant::now() < deadline,
            "postgres survived `emulator down`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And a restarted emulator brings the instance back.
    emu.restart();
    let api = Api::new(&emu);
    api.wait_for("/api/2.0/database/instances/real", "/state", "AVAILABLE")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_api_over_workspace_paths() {
    let emu = fast();
    let api = Api::new(&emu);
    let file = "/api/2.0/fs/files/Workspace/Users/local-user%40example.com/new/dir/f.json";
    let send = |m: Method, path: &str, body: Option<&'static [u8]>| {
        let mut rb = api
            .http
            .request(m, format!("{}{path}", api.url))
            .bearer_auth(&api.token);
        if let Some(b) = body {
            rb = rb.body(b);
        }
        async move { rb.send().await.unwrap() }
    };
    let r = send(Method::PUT, file, Some(b"{\"a\":1}")).await;
    assert_eq!(r.status().as_u16(), 204, "upload creates parents");
    let r = send(Method::PUT, file, Some(b"{}")).await;
    assert_eq!(r.status().as_u16(), 409, "no overwrite by default");
    let r = send(
        Method::PUT,
        &format!("{file}?overwrite=true"),
        Some(b"{\"a\":2}"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 204);
    let r = send(Method::GET, file, None).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"{\"a\":2}");
    let r = send(Method::HEAD, file, None).await;
    assert_eq!(
        r.headers().get("content-length").unwrap().to_str().unwrap(),
        "7"
    );
    // The same object through the workspace API.
    let (_, st) = api
        .get(&format!(
            "/api/2.0/workspace/get-status?path={}",
            urlenc("/Users/local-user@example.com/new/dir/f.json")
        ))
        .await;
    assert_eq!(st["object_type"], "FILE");
    let (s, l) = api
        .get("/api/2.0/fs/directories/Workspace/Users/local-user%40example.com/new/dir")
        .await;
    assert_eq!(s, 200);
    assert_eq!(l["contents"][0]["name"], "f.json");
    assert_eq!(l["contents"][0]["file_size"], 7);
    let r = send(
        Method::DELETE,
        "/api/2.0/fs/directories/Workspace/Users/local-user%40example.com/new/dir",
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 400, "non-empty directory");
    assert_eq!(
        send(Method::DELETE, file, None).await.status().as_u16(),
        204
    );
    assert_eq!(send(Method::GET, file, None).await.status().as_u16(), 404);
    // Pipelines of synced tables are listed for lookups.
    let (s, p) = api.get("/api/2.0/pipelines").await;
    assert_eq!(s, 200);
    assert!(p.get("statuses").is_none(), "no pipelines yet: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_updates_with_resources_validate_references() {
    let emu = fast();
    let api = Api::new(&emu);
    api.post(
        "/api/2.0/database/instances",
        json!({"name": "appdb", "capacity": "CU_1"}),
    )
    .await;
    let res = |inst: &str| {
        json!([{"name": "db", "database": {"instance_name": inst, "database_name": "d",
                "permission": "CAN_CONNECT_AND_CREATE"}}])
    };
    let (s, v) = api
        .post(
            "/api/2.0/apps?no_compute=true",
            json!({"name": "ra", "resources": res("appdb")}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Both update paths check references inside their transaction.
    let (s, v) = api
        .post(
            "/api/2.0/apps/ra/update",
            json!({"app": {"name": "ra", "resources": res("ghost")}, "update_mask": "resources"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("ghost"));
    let (s, v) = api
        .post(
            "/api/2.0/apps/ra/update",
            json!({"app": {"name": "ra", "resources": res("appdb")}, "update_mask": "resources"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .patch(
            "/api/2.0/apps/ra",
            json!({"name": "ra", "resources": res("appdb")}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api
        .patch(
            "/api/2.0/apps/ra",
            json!({"name": "ra", "resources": res("ghost")}),
        )
        .await;
    assert_eq!(s, 400);
}
