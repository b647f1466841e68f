//! HTTP-level tests of the emulator's Lakeview dashboards, Genie spaces, SQL alerts v2 and
//! quality monitors (contract part 2 §6): the real binary, real HTTP, real SQLite on disk.

mod common;

use std::time::Duration;

use common::Emulator;
use serde_json::{json, Value};

type Api = common::http::HttpApi;

fn fast() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--transition-ms", "300"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_create_publish_patch_and_trash() {
    let emu = fast();
    let api = Api::new(&emu);
    let base = "/api/2.0/lakeview/dashboards";
    // A folder that does not exist: 404, as the CLI's mkdirs-and-retry expects.
    let body = json!({"display_name": "D", "warehouse_id": "w1",
                      "serialized_dashboard": "{ \"pages\" : [] }",
                      "parent_path": "/Users/someone@example.com/nope"});
    let (s, v) = api.post(base, body.clone()).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error_code"], "RESOURCE_DOES_NOT_EXIST");
    let (s, _) = api
        .post(
            "/api/2.0/workspace/mkdirs",
            json!({"path": "/Users/someone@example.com/nope"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, d) = api.post(base, body.clone()).await;
    assert_eq!(s, 200, "{d}");
    let id = d["dashboard_id"].as_str().expect("id").to_string();
    // Stored re-serialized: the text differs, the JSON does not.
    assert_eq!(d["serialized_dashboard"], "{\"pages\":[]}");
    assert_eq!(
        d["parent_path"],
        "/Workspace/Users/someone@example.com/nope"
    );
    assert_eq!(d["path"], "/Users/someone@example.com/nope/D.lvdash.json");
    assert_eq!(d["lifecycle_state"], "ACTIVE");
    let (s, v) = api.post(base, body).await;
    assert_eq!(s, 409, "the same name in the same folder: {v}");
    let (s, v) = api
        .post(
            base,
            json!({"display_name": "Bad", "serialized_dashboard": "not json"}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );

    // Publication: none until published; publishing does not move the etag.
    let one = format!("{base}/{id}");
    assert_eq!(api.get(&format!("{one}/published")).await.0, 404);
    let (s, p) = api
        .post(
            &format!("{one}/published"),
            json!({"embed_credentials": true}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["warehouse_id"], "w1", "the draft's warehouse by default");
    let (_, p) = api.get(&format!("{one}/published")).await;
    assert_eq!(p["embed_credentials"], true);
    let (_, after) = api.get(&one).await;
    assert_eq!(after["etag"], d["etag"]);
    assert!(after.get("_emu").is_none(), "{after}");

    // PATCH: a stale etag is refused; a change moves the etag; the folder cannot change.
    let (s, v) = api
        .patch(&one, json!({"display_name": "D2", "etag": "stale"}))
        .await;
    assert_eq!((s, v["error_code"].as_str()), (409, Some("ABORTED")));
    let (s, v) = api
        .patch(&one, json!({"display_name": "D2", "etag": d["etag"]}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(v["etag"], d["etag"]);
    let (s, _) = api
        .patch(&one, json!({"parent_path": "/Users/other"}))
        .await;
    assert_eq!(s, 400);
    let (_, list) = api.get(base).await;
    assert_eq!(list["dashboards"].as_array().map(Vec::len), Some(1));
    assert!(list["dashboards"][0].get("serialized_dashboard").is_none());

    // Trash: still readable as TRASHED, out of the list, no longer publishable.
    assert_eq!(api.delete(&one).await.0, 200);
    let (s, v) = api.get(&one).await;
    assert_eq!((s, v["lifecycle_state"].as_str()), (200, Some("TRASHED")));
    let (_, list) = api.get(base).await;
    assert!(list.get("dashboards").is_none(), "{list}");
    let (_, list) = api.get(&format!("{base}?show_trashed=true")).await;
    assert_eq!(list["dashboards"].as_array().map(Vec::len), Some(1));
    assert_eq!(api.get(&format!("{one}/published")).await.0, 404);
    assert_eq!(api.delete(&one).await.0, 404);
    assert_eq!(
        api.get(&format!("/api/2.0/permissions/dashboards/{id}"))
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genie_spaces_hide_the_definition_unless_asked() {
    let emu = fast();
    let api = Api::new(&emu);
    let base = "/api/2.0/genie/spaces";
    let (s, v) = api.post(base, json!({"serialized_space": "{}"})).await;
    assert_eq!(s, 400, "warehouse required: {v}");
    let (s, sp) = api
        .post(
            base,
            json!({"warehouse_id": "w", "serialized_space": "{\"version\": 1}", "title": "T"}),
        )
        .await;
    assert_eq!(s, 200, "{sp}");
    let id = sp["space_id"].as_str().expect("space_id").to_string();
    let one = format!("{base}/{id}");
    let (_, plain) = api.get(&one).await;
    assert!(plain.get("serialized_space").is_none() && plain.get("etag").is_none());
    let (_, full) = api
        .get(&format!("{one}?include_serialized_space=true"))
        .await;
    assert_eq!(full["serialized_space"], "{\"version\":1}");
    let etag = full["etag"].clone();
    let (s, _) = api.patch(&one, json!({"title": "T2", "etag": "0"})).await;
    assert_eq!(s, 409, "a stale etag");
    let (s, _) = api.patch(&one, json!({"title": "T2"})).await;
    assert_eq!(s, 200, "no etag: accepted");
    let (_, full) = api
        .get(&format!("{one}?include_serialized_space=true"))
        .await;
    assert_eq!(full["title"], "T2");
    assert_ne!(full["etag"], etag);
    let (_, list) = api.get(base).await;
    assert_eq!(list["spaces"][0]["space_id"], id);
    assert_eq!(api.delete(&one).await.0, 200);
    assert_eq!(api.get(&one).await.0, 404, "a trashed space is gone");
}

fn alert(name: &str) -> Value {
    json!({
        "display_name": name,
        "query_text": "SELECT 1 AS v",
        "warehouse_id": "w",
        "evaluation": {"comparison_operator": "GREATER_THAN", "source": {"name": "v"},
                       "threshold": {"value": {"double_value": 0}}},
        "schedule": {"quartz_cron_schedule": "0 0 * * * ?", "timezone_id": "UTC"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_patch_with_a_mask_and_trash_or_purge() {
    let emu = fast();
    let api = Api::new(&emu);
    let (s, v) = api
        .post(
            "/api/2.0/alerts",
            json!({"display_name": "x", "warehouse_id": "w"}),
        )
        .await;
    assert_eq!(s, 400, "query required: {v}");
    let (s, a) = api.post("/api/2.0/alerts", alert("A")).await;
    assert_eq!(s, 200, "{a}");
    let id = a["id"].as_str().expect("id").to_string();
    assert_eq!(a["lifecycle_state"], "ACTIVE");
    assert_eq!(a["evaluation"]["state"], "UNKNOWN");
    assert!(a["owner_user_name"].is_string());
    let one = format!("/api/2.0/alerts/{id}");
    let (s, _) = api.patch(&one, alert("B")).await;
    assert_eq!(s, 400, "no update_mask");
    let (s, v) = api
        .patch(
            &format!("{one}?update_mask=display_name"),
            json!({"display_name": "B"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["query_text"], "SELECT 1 AS v", "outside the mask: kept");
    let mut c = alert("C");
    c["custom_summary"] = json!("s");
    let (s, v) = api.patch(&format!("{one}?update_mask=*"), c).await;
    assert_eq!((s, v["display_name"].as_str()), (200, Some("C")));
    assert_eq!(v["custom_summary"], "s");
    let (s, _) = api
        .patch(
            &format!("{one}?update_mask=parent_path"),
            json!({"parent_path": "/x"}),
        )
        .await;
    assert_eq!(s, 400, "parent_path is create-only");

    // Trash: readable as DELETED; purge: gone.
    assert_eq!(api.delete(&one).await.0, 200);
    let (s, v) = api.get(&one).await;
    assert_eq!((s, v["lifecycle_state"].as_str()), (200, Some("DELETED")));
    let (_, list) = api.get("/api/2.0/alerts").await;
    assert!(list.get("alerts").is_none(), "{list}");
    assert_eq!(api.delete(&format!("{one}?purge=true")).await.0, 200);
    assert_eq!(api.get(&one).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_need_a_table_and_an_output_schema() {
    let emu = fast();
    let api = Api::new(&emu);
    let lake = emu.data_dir().join("lake");
    std::fs::create_dir_all(lake.join("main/raw")).expect("lake");
    std::fs::create_dir_all(lake.join("main/metrics")).expect("lake");
    std::fs::write(lake.join("main/raw/events.csv"), "id\n1\n").expect("table");
    let path = "/api/2.1/unity-catalog/tables/main.raw.events/monitor";
    let body = json!({"assets_dir": "/Workspace/Shared/m", "output_schema_name": "main.metrics",
                      "snapshot": {}, "warehouse_id": "w"});
    let (s, v) = api
        .post(
            "/api/2.1/unity-catalog/tables/main.raw.nope/monitor",
            body.clone(),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("TABLE_DOES_NOT_EXIST"))
    );
    let mut bad = body.clone();
    bad["output_schema_name"] = json!("main.nope");
    let (s, v) = api.post(path, bad).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("SCHEMA_DOES_NOT_EXIST"))
    );
    let mut two = body.clone();
    two["time_series"] = json!({"granularities": ["1 day"], "timestamp_col": "ts"});
    assert_eq!(api.post(path, two).await.0, 400, "one profile type");

    let (s, m) = api.post(path, body.clone()).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["status"], "MONITOR_STATUS_PENDING");
    assert_eq!(
        m["profile_metrics_table_name"],
        "main.metrics.events_profile_metrics"
    );
    assert!(m.get("warehouse_id").is_none(), "create-only");
    assert_eq!(api.post(path, body).await.0, 409);
    // Settles without a wait in the API: poll until ACTIVE.
    let mut status = String::new();
    for _ in 0..100 {
        status = api.get(path).await.1["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if status == "MONITOR_STATUS_ACTIVE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "MONITOR_STATUS_ACTIVE");

    let (s, _) = api.put(path, json!({"snapshot": {}})).await;
    assert_eq!(s, 400, "output_schema_name required");
    let (s, _) = api
        .put(
            path,
            json!({"output_schema_name": "main.metrics", "snapshot": {}, "assets_dir": "/other"}),
        )
        .await;
    assert_eq!(s, 400, "assets_dir is immutable");
    let (s, m) = api
        .put(
            path,
            json!({"output_schema_name": "main.metrics", "snapshot": {},
                   "slicing_exprs": ["id > 0"]}),
        )
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["monitor_version"], "2");
    assert_eq!(m["assets_dir"], "/Workspace/Shared/m");
    assert_eq!(m["slicing_exprs"][0], "id > 0");
    assert_eq!(api.delete(path).await.0, 200);
    assert_eq!(api.get(path).await.0, 404);
    assert_eq!(api.delete(path).await.0, 404);
}
