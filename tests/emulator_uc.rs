//! HTTP-level tests of the emulator's Unity Catalog endpoints (catalogs, schemas, volumes,
//! grants; contract part 2 §2): the real binary, real HTTP, real SQLite on disk.

mod common;

use std::time::{Duration, Instant};

use common::Emulator;
use reqwest::Method;
use serde_json::{json, Value};

const UC: &str = "/api/2.1/unity-catalog";

type Api = common::http::HttpApi;

fn fast() -> Emulator {
    Emulator::start_with(&["--no-postgres"])
}

fn names(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogs_schemas_volumes_lifecycle() {
    let emu = fast();
    let api = Api::with_prefix(&emu, UC);

    // Create: names are lower-cased, outputs filled in.
    let cat = api
        .create(
            "/catalogs",
            json!({"name": "Sales", "comment": "c1", "properties": {"team": "a"}}),
        )
        .await;
    assert_eq!(cat["name"], "sales");
    assert_eq!(cat["full_name"], "sales");
    assert_eq!(cat["catalog_type"], "MANAGED_CATALOG");
    assert_eq!(cat["isolation_mode"], "OPEN");
    assert!(cat["owner"].as_str().is_some_and(|o| !o.is_empty()));
    assert!(cat["created_at"].as_i64().is_some());
    let (s, v) = api.post("/catalogs", json!({"name": "SALES"})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("CATALOG_ALREADY_EXISTS"))
    );
    let (s, v) = api.post("/catalogs", json!({"name": "a.b"})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    let (s, v) = api.post("/catalogs", json!({})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = api.get("/catalogs/SaLeS").await;
    assert_eq!((s, v["comment"].as_str()), (200, Some("c1")));
    let (s, v) = api.get("/catalogs/nope").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("CATALOG_DOES_NOT_EXIST"))
    );

    // Schemas need their catalog.
    let (s, v) = api
        .post("/schemas", json!({"name": "raw", "catalog_name": "nope"}))
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("CATALOG_DOES_NOT_EXIST"))
    );
    let sch = api
        .create(
            "/schemas",
            json!({"name": "Raw", "catalog_name": "sales", "comment": "s",
                   "storage_root": "s3://bucket/raw/"}),
        )
        .await;
    assert_eq!(sch["full_name"], "sales.raw");
    assert_eq!(
        sch["storage_root"], "s3://bucket/raw",
        "trailing / stripped"
    );
    assert!(sch["schema_id"].as_str().is_some());
    let (s, v) = api
        .post("/schemas", json!({"name": "raw", "catalog_name": "sales"}))
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("SCHEMA_ALREADY_EXISTS"))
    );
    let (s, v) = api.patch("/schemas/sales.raw", json!({})).await;
    assert_eq!(s, 400, "an empty schema update is refused: {v}");
    assert!(v["message"]
        .as_str()
        .unwrap_or("")
        .contains("Nothing to update"));
    let (s, v) = api
        .patch(
            "/schemas/sales.raw",
            json!({"comment": "s2", "storage_root": "x"}),
        )
        .await;
    assert_eq!(s, 400, "storage_root is not updatable: {v}");
    let (s, v) = api
        .patch("/schemas/sales.raw", json!({"comment": "s2"}))
        .await;
    assert_eq!((s, v["comment"].as_str()), (200, Some("s2")));

    // Volumes: managed must not name a location, external must.
    let (s, v) = api
        .post(
            "/volumes",
            json!({"catalog_name": "sales", "schema_name": "raw", "name": "files",
                   "volume_type": "MANAGED", "storage_location": "s3://b/x"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["message"],
        "CreateVolume storage_location can not be provided."
    );
    let (s, _) = api
        .post(
            "/volumes",
            json!({"catalog_name": "sales", "schema_name": "raw", "name": "ext", "volume_type": "EXTERNAL"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = api
        .post(
            "/volumes",
            json!({"catalog_name": "sales", "schema_name": "gone", "name": "v", "volume_type": "MANAGED"}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("SCHEMA_DOES_NOT_EXIST"))
    );
    let vol = api
        .create(
            "/volumes",
            json!({"catalog_name": "sales", "schema_name": "raw", "name": "Files",
                   "volume_type": "MANAGED", "comment": "v"}),
        )
        .await;
    assert_eq!(vol["full_name"], "sales.raw.files");
    assert!(vol["storage_location"]
        .as_str()
        .is_some_and(|l| !l.is_empty()));
    let (s, _) = api
        .patch(
            "/volumes/sales.raw.files",
            json!({"volume_type": "EXTERNAL"}),
        )
        .await;
    assert_eq!(s, 400, "volume_type is immutable");
    let (s, v) = api.get("/volumes?catalog_name=sales&schema_name=raw").await;
    assert_eq!((s, names(&v, "volumes")), (200, vec!["files".to_string()]));

    // Deleting non-empty parents needs force.
    let (s, v) = api.delete("/catalogs/sales").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("CATALOG_NOT_EMPTY"))
    );
    let (s, v) = api.delete("/schemas/sales.raw").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("SCHEMA_NOT_EMPTY"))
    );

    // Renames move the children (and their grants) along.
    let (s, v) = api
        .patch(
            "/permissions/volume/sales.raw.files",
            json!({"changes": [{"principal": "readers", "add": ["READ_VOLUME"]}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .patch("/catalogs/sales", json!({"new_name": "revenue"}))
        .await;
    assert_eq!((s, v["name"].as_str()), (200, Some("revenue")));
    let (s, _) = api.get("/catalogs/sales").await;
    assert_eq!(s, 404);
    let (s, v) = api.get("/schemas/revenue.raw").await;
    assert_eq!((s, v["catalog_name"].as_str()), (200, Some("revenue")));
    let (s, v) = api
        .patch("/schemas/revenue.raw", json!({"new_name": "bronze"}))
        .await;
    assert_eq!((s, v["full_name"].as_str()), (200, Some("revenue.bronze")));
    let (s, v) = api.get("/volumes/revenue.bronze.files").await;
    assert_eq!((s, v["schema_name"].as_str()), (200, Some("bronze")), "{v}");
    let (s, v) = api.get("/permissions/volume/revenue.bronze.files").await;
    assert_eq!(s, 200);
    assert_eq!(
        v["privilege_assignments"],
        json!([{"principal": "readers", "privileges": ["READ_VOLUME"]}])
    );
    let (s, v) = api
        .patch(
            "/volumes/revenue.bronze.files",
            json!({"new_name": "docs", "comment": "v2"}),
        )
        .await;
    assert_eq!(
        (s, v["full_name"].as_str()),
        (200, Some("revenue.bronze.docs"))
    );
    assert_eq!(v["comment"], "v2");

    // force=true removes everything beneath.
    let (s, _) = api.delete("/catalogs/revenue?force=true").await;
    assert_eq!(s, 200);
    for path in [
        "/catalogs/revenue",
        "/schemas/revenue.bronze",
        "/volumes/revenue.bronze.docs",
        "/permissions/volume/revenue.bronze.docs",
    ] {
        let (s, v) = api.get(path).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let (s, v) = api.delete("/volumes/revenue.bronze.docs").await;
    assert_eq!(s, 404, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate() {
    let emu = fast();
    let api = Api::with_prefix(&emu, UC);
    for i in 0..5 {
        api.create("/catalogs", json!({"name": format!("c{i}")}))
            .await;
        api.create(
            "/schemas",
            json!({"name": format!("s{i}"), "catalog_name": "c0"}),
        )
        .await;
    }
    for (path, list, want) in [
        ("/catalogs?max_results=2", "catalogs", 5),
        ("/schemas?catalog_name=c0&max_results=2", "schemas", 5),
    ] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let url = match &token {
                Some(t) => format!("{path}&page_token={t}"),
                None => path.to_string(),
            };
            let (s, v) = api.get(&url).await;
            assert_eq!(s, 200, "{v}");
            let page = names(&v, list);
            assert!(page.len() <= 2);
            seen.extend(page);
            pages += 1;
            match v["next_page_token"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), want, "{path}: {seen:?}");
        assert_eq!(pages, 3);
    }
    // max_results=0 means "all".
    let (_, v) = api.get("/catalogs?max_results=0").await;
    assert_eq!(names(&v, "catalogs").len(), 5);
    assert!(v.get("next_page_token").is_none());
    let (s, _) = api.get("/schemas").await;
    assert_eq!(s, 400, "catalog_name is required");
    let (s, _) = api.get("/catalogs?page_token=zz").await;
    assert_eq!(s, 400, "a bad token is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_are_patched_as_sets() {
    let emu = fast();
    let api = Api::with_prefix(&emu, UC);
    api.create("/catalogs", json!({"name": "main"})).await;
    api.create(
        "/schemas",
        json!({"name": "analytics", "catalog_name": "main"}),
    )
    .await;
    let path = "/permissions/schema/main.analytics";
    let (s, v) = api.get(path).await;
    assert_eq!((s, v["privilege_assignments"].clone()), (200, json!([])));

    let (s, v) = api
        .patch(
            path,
            json!({"changes": [
                {"principal": "data-team", "add": ["SELECT", "USE_SCHEMA"]},
                {"principal": "old@example.com", "add": ["MODIFY"]}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["privilege_assignments"],
        json!([{"principal": "data-team", "privileges": ["SELECT", "USE_SCHEMA"]},
               {"principal": "old@example.com", "privileges": ["MODIFY"]}])
    );
    // The CLI's converge call: remove runs before add; ALL_PRIVILEGES clears a principal.
    let (s, v) = api
        .patch(
            path,
            json!({"changes": [
                {"principal": "data-team", "add": ["USE_SCHEMA", "CREATE_TABLE"], "remove": ["ALL_PRIVILEGES"]},
                {"principal": "old@example.com", "remove": ["ALL_PRIVILEGES"]}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["privilege_assignments"],
        json!([{"principal": "data-team", "privileges": ["CREATE_TABLE", "USE_SCHEMA"]}])
    );
    // Additive per principal; a single privilege can be removed.
    let (_, v) = api
        .patch(
            path,
            json!({"changes": [{"principal": "data-team", "add": ["SELECT"], "remove": ["CREATE_TABLE"]}]}),
        )
        .await;
    assert_eq!(
        v["privilege_assignments"],
        json!([{"principal": "data-team", "privileges": ["SELECT", "USE_SCHEMA"]}])
    );
    let (_, v) = api.get(&format!("{path}?principal=data-team")).await;
    assert_eq!(v["privilege_assignments"][0]["principal"], "data-team");
    let (_, v) = api.get(&format!("{path}?principal=nobody")).await;
    assert_eq!(v["privilege_assignments"], json!([]));

    // Errors.
    let (s, v) = api
        .patch(
            path,
            json!({"changes": [{"principal": "x", "add": ["SELECT"], "remove": ["SELECT"]}]}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["message"],
        "Duplicate privileges to add and delete for principal x."
    );
    let (s, _) = api
        .patch(
            path,
            json!({"changes": [{"principal": "x", "add": ["FLY"]}]}),
        )
        .await;
    assert_eq!(s, 400, "unknown privilege");
    let (s, v) = api
        .patch(
            path,
            json!({"changes": [{"principal": "x", "add": ["USE_CATALOG"]}]}),
        )
        .await;
    assert_eq!(s, 400, "USE_CATALOG is not a schema privilege: {v}");
    let (s, _) = api
        .patch(path, json!({"changes": [{"add": ["SELECT"]}]}))
        .await;
    assert_eq!(s, 400, "principal is required");
    let (s, _) = api.get("/permissions/schema/main.nope").await;
    assert_eq!(s, 404);
    let (s, _) = api.get("/permissions/warehouse/main").await;
    assert_eq!(s, 400);

    // Grants on the catalog are separate; a deleted schema takes its grants with it.
    let (s, v) = api
        .patch(
            "/permissions/catalog/main",
            json!({"changes": [{"principal": "data-team", "add": ["USE_CATALOG"]}],
                   "omit_permissions_in_response": true}),
        )
        .await;
    assert_eq!((s, v.get("privilege_assignments")), (200, None));
    api.delete("/schemas/main.analytics").await;
    api.create(
        "/schemas",
        json!({"name": "analytics", "catalog_name": "main"}),
    )
    .await;
    let (_, v) = api.get(path).await;
    assert_eq!(
        v["privilege_assignments"],
        json!([]),
        "no grants survive a delete"
    );
    let (_, v) = api.get("/permissions/catalog/main").await;
    assert_eq!(
        v["privilege_assignments"],
        json!([{"principal": "data-team", "privileges": ["USE_CATALOG"]}])
    );
}

/// A database catalog (a PostgreSQL database registered in UC) shares the catalog
/// namespace: listed and readable here, its name not reusable, no UC schemas inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_catalogs_share_the_namespace() {
    let emu = fast();
    let api = Api::with_prefix(&emu, UC);
    let http = reqwest::Client::new();
    let raw = |method: Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", emu.url))
            .bearer_auth(&emu.token)
            .json(&body)
            .send()
    };
    let r = raw(
        Method::POST,
        "/api/2.0/database/instances",
        json!({"name": "db", "capacity": "CU_1"}),
    )
    .await
    .expect("create instance");
    assert!(r.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = http
            .get(format!("{}/api/2.0/database/instances/db", emu.url))
            .bearer_auth(&emu.token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if v["state"] == "AVAILABLE" {
            break;
        }
        assert!(Instant::now() < deadline, "instance never AVAILABLE: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = raw(
        Method::POST,
        "/api/2.0/database/catalogs",
        json!({"name": "pgcat", "database_instance_name": "db", "database_name": "appdb",
               "create_database_if_not_exists": true}),
    )
    .await
    .expect("create db catalog");
    assert!(r.status().is_success());

    let (s, v) = api.get("/catalogs/pgcat").await;
    assert_eq!(
        (s, v["catalog_type"].as_str()),
        (200, Some("MANAGED_ONLINE_CATALOG"))
    );
    api.create("/catalogs", json!({"name": "uc1"})).await;
    let (_, v) = api.get("/catalogs").await;
    assert_eq!(names(&v, "catalogs"), vec!["pgcat", "uc1"]);
    let (s, v) = api.post("/catalogs", json!({"name": "pgcat"})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("CATALOG_ALREADY_EXISTS"))
    );
    let (s, _) = api
        .post("/schemas", json!({"name": "s", "catalog_name": "pgcat"}))
        .await;
    assert_eq!(s, 400, "no UC schema inside a database catalog");
    let (s, _) = api.delete("/catalogs/pgcat").await;
    assert_eq!(s, 400, "a database catalog is deleted through its own API");
    let r = raw(
        Method::POST,
        "/api/2.0/database/catalogs",
        json!({"name": "uc1", "database_instance_name": "db", "database_name": "other",
               "create_database_if_not_exists": true}),
    )
    .await
    .expect("create db catalog");
    assert_eq!(r.status().as_u16(), 409, "the UC catalog holds the name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uc_objects_survive_a_restart() {
    let mut emu = fast();
    {
        let api = Api::with_prefix(&emu, UC);
        api.create("/catalogs", json!({"name": "keep"})).await;
        api.create("/schemas", json!({"name": "s", "catalog_name": "keep"}))
            .await;
        api.patch(
            "/permissions/catalog/keep",
            json!({"changes": [{"principal": "g", "add": ["BROWSE"]}]}),
        )
        .await;
    }
    emu.restart();
    let api = Api::with_prefix(&emu, UC);
    let (s, _) = api.get("/schemas/keep.s").await;
    assert_eq!(s, 200);
    let (_, v) = api.get("/permissions/catalog/keep").await;
    assert_eq!(
        v["privilege_assignments"],
        json!([{"principal": "g", "privileges": ["BROWSE"]}])
    );
}

/// The lake directory's `<catalog>/<schema>` directories are catalogs and schemas too
/// (read-only), so bundles can put schemas and volumes next to the tables synced tables read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_directories_are_catalogs_and_schemas() {
    let lake = tempfile::tempdir().expect("lake");
    std::fs::create_dir_all(lake.path().join("main/default")).expect("mkdir");
    std::fs::create_dir_all(lake.path().join("Not_Lower/x")).expect("mkdir");
    std::fs::write(lake.path().join("main/default/t.csv"), "id\n1\n").expect("write");
    let lake_arg = lake.path().display().to_string();
    let emu = Emulator::start_with(&["--no-postgres", "--lake-dir", &lake_arg]);
    let api = Api::with_prefix(&emu, UC);

    let (_, v) = api.get("/catalogs").await;
    assert_eq!(
        names(&v, "catalogs"),
        vec!["main"],
        "only lower-case identifiers"
    );
    let (s, v) = api.get("/schemas/main.default").await;
    assert_eq!((s, v["catalog_name"].as_str()), (200, Some("main")));
    let (s, v) = api.post("/catalogs", json!({"name": "main"})).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("CATALOG_ALREADY_EXISTS"))
    );
    let (s, v) = api
        .post(
            "/schemas",
            json!({"name": "default", "catalog_name": "main"}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("SCHEMA_ALREADY_EXISTS"))
    );
    api.create("/schemas", json!({"name": "extra", "catalog_name": "main"}))
        .await;
    let (_, v) = api.get("/schemas?catalog_name=main").await;
    assert_eq!(names(&v, "schemas"), vec!["default", "extra"]);
    api.create(
        "/volumes",
        json!({"catalog_name": "main", "schema_name": "default", "name": "files", "volume_type": "MANAGED"}),
    )
    .await;
    let (s, _) = api
        .patch(
            "/permissions/schema/main.default",
            json!({"changes": [{"principal": "g", "add": ["USE_SCHEMA"]}]}),
        )
        .await;
    assert_eq!(s, 200);
    for (path, what) in [
        ("/catalogs/main", "catalog"),
        ("/schemas/main.default", "schema"),
    ] {
        let (s, v) = api.delete(path).await;
        assert_eq!(s, 400, "a lake {what} is read-only: {v}");
        let (s, _) = api.patch(path, json!({"comment": "x"})).await;
        assert_eq!(s, 400, "a lake {what} is read-only");
    }
    let (s, _) = api.delete("/schemas/main.extra").await;
    assert_eq!(
        s, 200,
        "a UC schema inside a lake catalog is the bundle's own"
    );
    assert!(
        lake.path().join("main/default/t.csv").exists(),
        "the lake is never written"
    );
}
