//! HTTP-level tests of the emulator's Unity Catalog external locations and secrets (contract
//! part 2 §6), and job runs as the `job_runs` kind uses them: the real binary, real HTTP.

mod common;

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
async fn external_locations_lifecycle_and_errors() {
    let emu = fast();
    let api = Api::with_prefix(&emu, UC);
    let loc = api
        .create(
            "/external-locations",
            json!({"name": "Landing", "url": "s3://b/landing/", "credential_name": "cred",
                   "skip_validation": true,
                   "file_event_queue": {"managed_sqs": {}}}),
        )
        .await;
    assert_eq!(loc["name"], "landing");
    assert_eq!(loc["url"], "s3://b/landing");
    assert_eq!(loc["read_only"], false);
    assert_eq!(loc["effective_enable_file_events"], true);
    assert!(loc["effective_file_event_queue"]["managed_sqs"]["managed_resource_id"].is_string());
    assert!(
        loc.get("skip_validation").is_none(),
        "a request flag, not stored"
    );

    // Required fields, URL shape, duplicates, overlaps.
    let (s, v) = api
        .post(
            "/external-locations",
            json!({"name": "x", "url": "s3://b/x"}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE")),
        "{v}"
    );
    let (s, _) = api
        .post(
            "/external-locations",
            json!({"name": "x", "url": "not-a-url", "credential_name": "c"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, v) = api
        .post(
            "/external-locations",
            json!({"name": "LANDING", "url": "s3://other/", "credential_name": "c"}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("EXTERNAL_LOCATION_ALREADY_EXISTS"))
    );
    let (s, v) = api
        .post(
            "/external-locations",
            json!({"name": "inner", "url": "s3://b/landing/inner", "credential_name": "c"}),
        )
        .await;
    assert_eq!(s, 400, "overlapping URL: {v}");
    let (s, v) = api
        .post(
            "/external-locations",
            json!({"name": "q", "url": "s3://q", "credential_name": "c",
                   "file_event_queue": {"managed_sqs": {}, "provided_sqs": {"queue_url": "u"}}}),
        )
        .await;
    assert_eq!(s, 400, "two queue kinds: {v}");

    // Update in place, rename, unknown field refused.
    let (s, v) = api
        .patch(
            "/external-locations/landing",
            json!({"comment": "c2", "read_only": true, "enable_file_events": false}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["effective_enable_file_events"], false);
    assert!(v.get("effective_file_event_queue").is_none());
    let (s, _) = api
        .patch("/external-locations/landing", json!({"bogus": 1}))
        .await;
    assert_eq!(s, 400);
    let (s, v) = api
        .patch(
            "/external-locations/landing",
            json!({"new_name": "drop_zone"}),
        )
        .await;
    assert_eq!((s, v["name"].as_str()), (200, Some("drop_zone")));
    let (s, v) = api.get("/external-locations/landing").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("EXTERNAL_LOCATION_DOES_NOT_EXIST"))
    );

    // Grants on the securable type `external_location`.
    let (s, v) = api
        .patch(
            "/permissions/external_location/drop_zone",
            json!({"changes": [{"principal": "loaders", "add": ["READ_FILES"]}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api
        .patch(
            "/permissions/external_location/drop_zone",
            json!({"changes": [{"principal": "loaders", "add": ["USE_SCHEMA"]}]}),
        )
        .await;
    assert_eq!(s, 400, "not applicable to a location");

    // A dependent EXTERNAL volume blocks a delete without force.
    api.create("/catalogs", json!({"name": "c"})).await;
    api.create("/schemas", json!({"catalog_name": "c", "name": "s"}))
        .await;
    api.create(
        "/volumes",
        json!({"catalog_name": "c", "schema_name": "s", "name": "v", "volume_type": "EXTERNAL",
               "storage_location": "s3://b/landing/v"}),
    )
    .await;
    let (s, v) = api.delete("/external-locations/drop_zone").await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = api.delete("/external-locations/drop_zone?force=true").await;
    assert_eq!(s, 200);
    let (s, v) = api.get("/external-locations").await;
    assert_eq!(
        (s, v["external_locations"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (s, _) = api.get("/permissions/external_location/drop_zone").await;
    assert_eq!(s, 404, "grants went with it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_keep_their_value_hidden() {
    let emu = fast();
    let api = Api::with_prefix(&emu, UC);
    let (s, v) = api
        .post(
            "/secrets",
            json!({"catalog_name": "c", "schema_name": "s", "name": "p", "value": "v"}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("SCHEMA_DOES_NOT_EXIST"))
    );
    api.create("/catalogs", json!({"name": "c"})).await;
    api.create("/schemas", json!({"catalog_name": "c", "name": "s"}))
        .await;
    let created = api
        .create(
            "/secrets",
            json!({"catalog_name": "c", "schema_name": "s", "name": "Pw", "value": "hunter2",
                   "comment": "db", "expire_time": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(created["full_name"], "c.s.pw");
    assert!(created.get("value").is_none() && created.get("effective_value").is_none());
    assert_eq!(created["effective_owner"], created["created_by"]);
    let (_, v) = api.get("/secrets/c.s.pw").await;
    assert!(v.get("effective_value").is_none(), "{v}");
    let (_, v) = api.get("/secrets/c.s.pw?include_value=true").await;
    assert_eq!(v["effective_value"], "hunter2");
    let (s, v) = api
        .post(
            "/secrets",
            json!({"catalog_name": "c", "schema_name": "s", "name": "pw", "value": "x"}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let big = "x".repeat(60 * 1024 + 1);
    let (s, _) = api
        .post(
            "/secrets",
            json!({"catalog_name": "c", "schema_name": "s", "name": "big", "value": big}),
        )
        .await;
    assert_eq!(s, 400, "over 60 KiB");

    // PATCH needs an update_mask, touches only its fields, refuses the name.
    let (s, _) = api.patch("/secrets/c.s.pw", json!({"comment": "x"})).await;
    assert_eq!(s, 400);
    let (s, v) = api
        .patch(
            "/secrets/c.s.pw?update_mask=value",
            json!({"value": "new", "comment": "ignored"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["comment"], "db");
    let (_, v) = api.get("/secrets/c.s.pw?include_value=true").await;
    assert_eq!(v["effective_value"], "new");
    let (s, _) = api
        .patch("/secrets/c.s.pw?update_mask=name", json!({"name": "other"}))
        .await;
    assert_eq!(s, 400);

    // Grants on the securable type `secret`; listing pages with page_size.
    let (s, v) = api
        .patch(
            "/permissions/secret/c.s.pw",
            json!({"changes": [{"principal": "app", "add": ["READ_SECRET"]}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    api.create(
        "/secrets",
        json!({"catalog_name": "c", "schema_name": "s", "name": "second", "value": "x"}),
    )
    .await;
    let (s, v) = api
        .get("/secrets?catalog_name=c&schema_name=s&page_size=1")
        .await;
    assert_eq!(s, 200);
    assert_eq!(names(&v, "secrets"), vec!["pw"]);
    assert!(v["next_page_token"].is_string());
    assert!(v["secrets"][0].get("value").is_none());

    // Gone: 404 on read, and a forced schema delete takes the rest along.
    let (s, _) = api.delete("/secrets/c.s.pw").await;
    assert_eq!(s, 200);
    let (s, v) = api.get("/secrets/c.s.pw").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("SECRET_DOES_NOT_EXIST"))
    );
    let (s, _) = api.delete("/schemas/c.s?force=true").await;
    assert_eq!(s, 200);
    let (s, _) = api.get("/secrets/c.s.second").await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_job_run_is_cancelled_before_it_can_be_deleted() {
    // Runs last long enough to be seen active.
    let emu = Emulator::start_with(&["--no-postgres", "--transition-ms", "3000"]);
    let api = Api::with_prefix(&emu, UC);
    let (s, job) = api
        .at_host(
            Method::POST,
            "/api/2.2/jobs/create",
            json!({"name": "j", "tasks": [{"task_key": "t",
                   "notebook_task": {"notebook_path": "/Shared/n"}}]}),
        )
        .await;
    assert_eq!(s, 200, "{job}");
    let (s, run) = api
        .at_host(
            Method::POST,
            "/api/2.2/jobs/run-now",
            json!({"job_id": job["job_id"], "idempotency_token": "tok-1"}),
        )
        .await;
    assert_eq!(s, 200, "{run}");
    let run_id = run["run_id"].clone();
    let (s, v) = api
        .at_host(
            Method::POST,
            "/api/2.2/jobs/runs/delete",
            json!({"run_id": run_id}),
        )
        .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_STATE")),
        "{v}"
    );
    let (s, _) = api
        .at_host(
            Method::POST,
            "/api/2.2/jobs/runs/cancel",
            json!({"run_id": run_id}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = api
        .at_host(
            Method::POST,
            "/api/2.2/jobs/runs/delete",
            json!({"run_id": run_id}),
        )
        .await;
    assert_eq!(s, 200, "a cancelled run is terminated: {v}");
}
