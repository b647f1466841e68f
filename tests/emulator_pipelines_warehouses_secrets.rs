//! HTTP-level tests of the emulator's pipelines, SQL warehouses and secrets
//! APIs (contract part 2 §3–§5): the real `emulator serve`, real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::Emulator;
use reqwest::Method;
use serde_json::json;

type Api = common::http::HttpApi;

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres"])
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_crud_updates_and_stop() {
    let emu = emulator();
    let api = Api::new(&emu);
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.0/pipelines",
            Some(json!({"catalog": "c"})),
        )
        .await;
    assert_eq!(s, 400, "a pipeline needs a name: {e}");
    assert_eq!(e["error_code"], "INVALID_PARAMETER_VALUE");

    let created = api
        .ok(
            Method::POST,
            "/api/2.0/pipelines",
            Some(json!({"name": "p1", "libraries": [{"notebook": {"path": "/x"}}], "storage": "dbfs:/s"})),
        )
        .await;
    let id = created["pipeline_id"]
        .as_str()
        .expect("pipeline_id")
        .to_string();
    let (s, _) = api
        .call(
            Method::POST,
            "/api/2.0/pipelines",
            Some(json!({"name": "p1"})),
        )
        .await;
    assert_eq!(s, 409, "duplicate names are refused");
    api.ok(
        Method::POST,
        "/api/2.0/pipelines",
        Some(json!({"name": "p1", "allow_duplicate_names": true, "dry_run": true})),
    )
    .await;

    let got = api
        .ok(Method::GET, &format!("/api/2.0/pipelines/{id}"), None)
        .await;
    assert_eq!(got["state"], "IDLE");
    assert_eq!(got["spec"]["id"], id.as_str());
    assert_eq!(got["spec"]["name"], "p1");
    assert!(got["spec"].get("allow_duplicate_names").is_none());

    // Edit replaces the settings; storage cannot change.
    let (s, _) = api
        .call(
            Method::PUT,
            &format!("/api/2.0/pipelines/{id}"),
            Some(json!({"name": "p1", "storage": "dbfs:/other"})),
        )
        .await;
    assert_eq!(s, 400);
    api.ok(
        Method::PUT,
        &format!("/api/2.0/pipelines/{id}"),
        Some(json!({"name": "p1-renamed", "configuration": {"k": "v"}})),
    )
    .await;
    let got = api
        .ok(Method::GET, &format!("/api/2.0/pipelines/{id}"), None)
        .await;
    assert_eq!(got["name"], "p1-renamed");
    assert!(
        got["spec"].get("libraries").is_none(),
        "PUT is a full replace"
    );
    assert_eq!(got["spec"]["storage"], "dbfs:/s", "storage is kept");

    // An update passes through its states to COMPLETED.
    let u = api
        .ok(
            Method::POST,
            &format!("/api/2.0/pipelines/{id}/updates"),
            Some(json!({"full_refresh_selection": ["t"]})),
        )
        .await;
    let uid = u["update_id"].as_str().expect("update_id").to_string();
    let (s, _) = api
        .call(
            Method::POST,
            &format!("/api/2.0/pipelines/{id}/updates"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 409, "one active update at a time");
    let path = format!("/api/2.0/pipelines/{id}/updates/{uid}");
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = api.ok(Method::GET, &path, None).await;
        let st = v["update"]["state"].as_str().unwrap_or("").to_string();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "COMPLETED" {
            break;
        }
        assert!(Instant::now() < deadline, "stuck: {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let order = [
        "QUEUED",
        "CREATED",
        "WAITING_FOR_RESOURCES",
        "INITIALIZING",
        "SETTING_UP_TABLES",
        "RUNNING",
        "COMPLETED",
    ];
    let pos: Vec<usize> = seen
        .iter()
        .map(|s| order.iter().position(|o| o == s).expect("known state"))
        .collect();
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "states in order: {seen:?}"
    );
    let got = api
        .ok(Method::GET, &format!("/api/2.0/pipelines/{id}"), None)
        .await;
    assert_eq!(got["latest_updates"][0]["update_id"], uid.as_str());

    // Stop cancels an active update.
    let u = api
        .ok(
            Method::POST,
            &format!("/api/2.0/pipelines/{id}/updates"),
            Some(json!({})),
        )
        .await;
    let uid2 = u["update_id"].as_str().expect("update_id").to_string();
    api.ok(Method::POST, &format!("/api/2.0/pipelines/{id}/stop"), None)
        .await;
    api.until(
        &format!("/api/2.0/pipelines/{id}/updates/{uid2}"),
        "/update/state",
        "CANCELED",
    )
    .await;
    api.until(&format!("/api/2.0/pipelines/{id}"), "/state", "IDLE")
        .await;

    // Permissions on pipelines.
    let perms = api
        .ok(
            Method::PUT,
            &format!("/api/2.0/permissions/pipelines/{id}"),
            Some(json!({"access_control_list": [{"group_name": "users", "permission_level": "CAN_RUN"}]})),
        )
        .await;
    assert_eq!(perms["object_id"], format!("/pipelines/{id}"));

    let list = api
        .ok(
            Method::GET,
            "/api/2.0/pipelines?filter=name%20LIKE%20%27%25renamed%25%27",
            None,
        )
        .await;
    assert_eq!(list["statuses"].as_array().map(Vec::len), Some(1), "{list}");

    api.ok(Method::DELETE, &format!("/api/2.0/pipelines/{id}"), None)
        .await;
    let (s, _) = api
        .call(Method::GET, &format!("/api/2.0/pipelines/{id}"), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn warehouse_states_edit_start_stop_delete() {
    let emu = emulator();
    let api = Api::new(&emu);
    for bad in [
        json!({"name": "w", "cluster_size": "Huge"}),
        json!({"name": "w", "cluster_size": "Small", "auto_stop_mins": 5}),
        json!({"name": "w", "cluster_size": "Small", "min_num_clusters": 3, "max_num_clusters": 2}),
        json!({"name": "w", "cluster_size": "Small", "enable_serverless_compute": true, "warehouse_type": "CLASSIC"}),
    ] {
        let (s, e) = api
            .call(Method::POST, "/api/2.0/sql/warehouses", Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad} must be refused: {e}");
    }
    let w = api
        .ok(
            Method::POST,
            "/api/2.0/sql/warehouses",
            Some(json!({"name": "w", "cluster_size": "Small"})),
        )
        .await;
    let id = w["id"].as_str().expect("id").to_string();
    let path = format!("/api/2.0/sql/warehouses/{id}");
    let first = api.ok(Method::GET, &path, None).await;
    assert!(
        ["STARTING", "RUNNING"].contains(&first["state"].as_str().unwrap_or("")),
        "{first}"
    );
    let running = api.until(&path, "/state", "RUNNING").await;
    assert_eq!(running["auto_stop_mins"], 120, "defaults are filled");
    assert_eq!(running["enable_photon"], true);
    assert!(running["odbc_params"]["path"]
        .as_str()
        .is_some_and(|p| p.ends_with(&id)));

    api.ok(Method::POST, &format!("{path}/stop"), None).await;
    api.until(&path, "/state", "STOPPED").await;
    api.ok(
        Method::POST,
        &format!("{path}/edit"),
        Some(json!({"name": "w", "cluster_size": "Medium", "auto_stop_mins": 0})),
    )
    .await;
    let edited = api.ok(Method::GET, &path, None).await;
    assert_eq!(edited["cluster_size"], "Medium");
    assert_eq!(
        edited["state"], "STOPPED",
        "an edit leaves a stopped warehouse stopped"
    );
    api.ok(Method::POST, &format!("{path}/start"), None).await;
    api.until(&path, "/state", "RUNNING").await;

    let perms = api
        .ok(
            Method::GET,
            &format!("/api/2.0/permissions/sql/warehouses/{id}"),
            None,
        )
        .await;
    assert!(perms["access_control_list"].as_array().is_some_and(|a| a
        .iter()
        .any(|e| e["all_permissions"][0]["permission_level"] == "IS_OWNER")));

    api.ok(Method::DELETE, &path, None).await;
    api.until(&path, "/state", "DELETED").await;
    let list = api.ok(Method::GET, "/api/2.0/sql/warehouses", None).await;
    assert!(list.get("warehouses").is_none(), "{list}");
    let (s, _) = api.call(Method::POST, &format!("{path}/start"), None).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_scopes_acls_and_secrets() {
    let emu = emulator();
    let api = Api::new(&emu);
    let (s, _) = api
        .call(
            Method::POST,
            "/api/2.0/secrets/scopes/create",
            Some(json!({"scope": "bad name"})),
        )
        .await;
    assert_eq!(s, 400);
    api.ok(
        Method::POST,
        "/api/2.0/secrets/scopes/create",
        Some(json!({"scope": "s1"})),
    )
    .await;
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.0/secrets/scopes/create",
            Some(json!({"scope": "s1"})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(e["error_code"], "RESOURCE_ALREADY_EXISTS");
    let list = api
        .ok(Method::GET, "/api/2.0/secrets/scopes/list", None)
        .await;
    assert_eq!(
        list["scopes"],
        json!([{"name": "s1", "backend_type": "DATABRICKS"}])
    );

    let acls = api
        .ok(Method::GET, "/api/2.0/secrets/acls/list?scope=s1", None)
        .await;
    assert_eq!(
        acls["items"].as_array().map(Vec::len),
        Some(1),
        "creator holds MANAGE: {acls}"
    );
    assert_eq!(acls["items"][0]["permission"], "MANAGE");
    api.ok(
        Method::POST,
        "/api/2.0/secrets/acls/put",
        Some(json!({"scope": "s1", "principal": "users", "permission": "READ"})),
    )
    .await;
    api.ok(
        Method::POST,
        "/api/2.0/secrets/acls/put",
        Some(json!({"scope": "s1", "principal": "users", "permission": "WRITE"})),
    )
    .await;
    let one = api
        .ok(
            Method::GET,
            "/api/2.0/secrets/acls/get?scope=s1&principal=users",
            None,
        )
        .await;
    assert_eq!(one, json!({"principal": "users", "permission": "WRITE"}));
    let (s, _) = api
        .call(
            Method::POST,
            "/api/2.0/secrets/acls/put",
            Some(json!({"scope": "s1", "principal": "users", "permission": "OWN"})),
        )
        .await;
    assert_eq!(s, 400);
    api.ok(
        Method::POST,
        "/api/2.0/secrets/acls/delete",
        Some(json!({"scope": "s1", "principal": "users"})),
    )
    .await;
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.0/secrets/acls/delete",
            Some(json!({"scope": "s1", "principal": "users"})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].clone()),
        (404, json!("RESOURCE_DOES_NOT_EXIST"))
    );

    api.ok(
        Method::POST,
        "/api/2.0/secrets/put",
        Some(json!({"scope": "s1", "key": "k", "string_value": "hunter2"})),
    )
    .await;
    let secrets = api
        .ok(Method::GET, "/api/2.0/secrets/list?scope=s1", None)
        .await;
    assert_eq!(secrets["secrets"][0]["key"], "k");
    assert!(
        !secrets.to_string().contains("hunter2"),
        "values are never returned"
    );

    api.ok(
        Method::POST,
        "/api/2.0/secrets/scopes/delete",
        Some(json!({"scope": "s1"})),
    )
    .await;
    let (s, e) = api
        .call(
            Method::POST,
            "/api/2.0/secrets/scopes/delete",
            Some(json!({"scope": "s1"})),
        )
        .await;
    assert_eq!(
        (s, e["error_code"].clone()),
        (404, json!("RESOURCE_DOES_NOT_EXIST"))
    );
    let list = api
        .ok(Method::GET, "/api/2.0/secrets/scopes/list", None)
        .await;
    assert!(list.get("scopes").is_none());
}
