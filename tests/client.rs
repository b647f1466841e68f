//! The Rust workspace client against the real emulator binary
//! (`lakebundle emulator serve --no-postgres`, fresh data dir and port per
//! test): every service the engine uses, error mapping, M2M login, and fault
//! injection.

mod common;
#[path = "common/services.rs"]
mod services;

use std::collections::HashMap;
use std::time::Duration;

use common::Emulator;
use lakebundle::api::types::apps::compute_state;
use lakebundle::api::{ApiError, AuthOptions, Client, ClientConfig, Method, Secret};
use serde_json::{json, Value};
use services::*;

const WAIT: Duration = Duration::from_secs(30);

fn config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(20),
        retry_budget: Duration::from_secs(60),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

fn start(extra: &[&str]) -> (Emulator, Client) {
    let mut args = vec!["--no-postgres"];
    args.extend_from_slice(extra);
    let emu = Emulator::start_with(&args);
    let client =
        Client::with_token(&emu.url, Secret::new(emu.token.clone()), config()).expect("client");
    (emu, client)
}

async fn available_instance(c: &Client, name: &str) -> Value {
    database(c)
        .create_instance(&json!({"name": name, "capacity": "CU_1"}))
        .await
        .expect("create instance");
    wait_instance_available(c, name, WAIT)
        .await
        .expect("instance available")
}

#[tokio::test]
async fn database_instances_crud() {
    let (_emu, c) = start(&[]);
    let db = database(&c);
    let created = db
        .create_instance(&json!({"name": "db1", "capacity": "CU_1", "custom_tags": [{"key": "team", "value": "a"}], "stopped": false}))
        .await
        .unwrap();
    assert_eq!(created["name"], "db1");
    let ready = wait_instance_available(&c, "db1", WAIT).await.unwrap();
    assert_eq!(ready["state"], "AVAILABLE");

    let typed = db.get_instance_typed("db1").await.unwrap();
    assert_eq!(typed.capacity.as_deref(), Some("CU_1"));
    assert!(typed.uid.is_some() && typed.read_write_dns.is_some() && typed.creator.is_some());
    assert!(typed.creation_time.is_some() && typed.pg_version.is_some());
    assert_eq!(typed.effective_stopped, Some(false));
    // Input-only fields are not returned by GET; their effective twins are.
    assert_eq!(typed.custom_tags, None);
    assert_eq!(typed.effective_custom_tags.as_ref().map(Vec::len), Some(1));

    let names: Vec<String> = db
        .list_instances()
        .await
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str().map(String::from))
        .collect();
    assert_eq!(names, vec!["db1"]);

    let updated = db
        .update_instance(
            "db1",
            &json!({"name": "db1", "capacity": "CU_2"}),
            "capacity",
        )
        .await
        .unwrap();
    assert_eq!(updated["capacity"], "CU_2");
    wait_instance_available(&c, "db1", WAIT).await.unwrap();
    assert_eq!(db.get_instance("db1").await.unwrap()["capacity"], "CU_2");

    db.set_stopped("db1", true).await.unwrap();
    let stopped = db.get_instance_typed("db1").await.unwrap();
    assert_eq!(stopped.effective_stopped, Some(true));
    db.set_stopped("db1", false).await.unwrap();
    wait_instance_available(&c, "db1", WAIT).await.unwrap();

    db.delete_instance("db1", false).await.unwrap();
    let gone = wait_gone(|| async { db.find_instance("db1").await }).await;
    assert!(gone, "instance still visible after delete");
    assert!(db.get_instance("db1").await.unwrap_err().is_not_found());
}

/// Poll until `find` returns None (deletes may be asynchronous).
async fn wait_gone<F, Fut>(find: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<Value>, ApiError>>,
{
    for _ in 0..200 {
        if find().await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn credential_catalog_and_synced_table() {
    let (_emu, c) = start(&[]);
    available_instance(&c, "inst").await;
    let db = database(&c);

    let cred = db.generate_credential(&["inst"]).await.unwrap();
    assert!(!cred.token.expose().is_empty());
    assert!(cred.expiration_time.is_some());
    assert!(!format!("{cred:?}").contains(cred.token.expose()));

    let cat = db
        .create_catalog(&json!({"name": "cat1", "database_instance_name": "inst", "database_name": "appdb", "create_database_if_not_exists": true}))
        .await
        .unwrap();
    assert_eq!(cat["name"], "cat1");
    let got = db.get_catalog("cat1").await.unwrap();
    assert_eq!(got["database_instance_name"], "inst");
    assert!(got
        .get("create_database_if_not_exists")
        .is_none_or(|v| v == false));
    let e = db
        .create_catalog(
            &json!({"name": "cat1", "database_instance_name": "inst", "database_name": "appdb"}),
        )
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    let e = c
        .call(
            Method::PATCH,
            "/api/2.0/database/catalogs/cat1",
            &[("update_mask", "database_name".into())],
            Some(&json!({"name": "cat1"})),
        )
        .await
        .unwrap_err();
    assert!(e.is_not_implemented(), "{e}");

    let table = json!({
        "name": "cat1.public.orders",
        "spec": {
            "source_table_full_name": "main.sales.orders",
            "primary_key_columns": ["id"],
            "scheduling_policy": "SNAPSHOT",
            "new_pipeline_spec": {"storage_catalog": "main", "storage_schema": "pipelines"}
        }
    });
    let created = db.create_synced_table(&table).await.unwrap();
    assert_eq!(created["name"], "cat1.public.orders");
    let got = db.get_synced_table("cat1.public.orders").await.unwrap();
    assert_eq!(got["effective_database_instance_name"], "inst");
    assert!(
        got.pointer("/data_synchronization_status/pipeline_id")
            .is_some(),
        "{got}"
    );
    let listed = db.list_synced_tables("inst").await.unwrap();
    assert!(
        listed.iter().any(|t| t["name"] == "cat1.public.orders"),
        "{listed:?}"
    );

    db.delete_synced_table("cat1.public.orders", false)
        .await
        .unwrap();
    assert!(wait_gone(|| async { db.find_synced_table("cat1.public.orders").await }).await);
    db.delete_catalog("cat1").await.unwrap();
    assert!(db.find_catalog("cat1").await.unwrap().is_none());
}

#[tokio::test]
async fn jobs_lifecycle_pagination_and_runs() {
    let (_emu, c) = start(&[]);
    let jobs = jobs(&c);
    let mut ids = Vec::new();
    for i in 0..105 {
        ids.push(jobs.create(&json!({"name": format!("job-{i:03}"), "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/n"}}]})).await.unwrap());
    }
    // Every page via `list` (limit 100 ⇒ two pages) and page by page.
    let all = jobs.list(None).await.unwrap();
    assert_eq!(all.len(), 105);
    let mut listed: Vec<i64> = all.iter().map(|j| j["job_id"].as_i64().unwrap()).collect();
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let mut token: Option<String> = None;
    let mut pages = 0;
    let mut count = 0;
    loop {
        let page = jobs.list_page(25, token.as_deref()).await.unwrap();
        pages += 1;
        count += page.jobs.len();
        match page.next_page_token {
            Some(t) if page.has_more => token = Some(t),
            _ => break,
        }
    }
    assert_eq!((pages, count), (5, 105));
    let named = jobs.list(Some("job-042")).await.unwrap();
    assert_eq!(named.len(), 1);

    let id = ids[0];
    jobs.reset(id, &json!({"name": "renamed", "max_concurrent_runs": 1, "tasks": [{"task_key": "t2", "notebook_task": {"notebook_path": "/m"}}]})).await.unwrap();
    let job = jobs.get(id).await.unwrap();
    assert_eq!(job["settings"]["name"], "renamed");
    assert_eq!(job["settings"]["tasks"][0]["task_key"], "t2");
    assert_eq!(job["job_id"].as_i64(), Some(id));

    jobs.update(id, Some(&json!({"description": "d"})), &[])
        .await
        .unwrap();
    assert_eq!(jobs.get(id).await.unwrap()["settings"]["description"], "d");

    let run = jobs.run_now(id, None).await.unwrap();
    let done = wait_run_terminated(&c, run.run_id, WAIT).await.unwrap();
    assert_eq!(done.state.life_cycle_state.as_deref(), Some("TERMINATED"));
    assert!(done.state.result_state.is_some());
    assert_eq!(done.job_id, Some(id));

    jobs.delete(id).await.unwrap();
    assert!(jobs.get(id).await.unwrap_err().is_not_found());
    assert_eq!(jobs.find(id).await.unwrap(), None);
    assert!(jobs.get_run(i64::MAX).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn apps_create_deploy_stop_delete() {
    let (_emu, c) = start(&[]);
    let apps = apps(&c);
    let created = apps
        .create(&json!({"name": "app1", "description": "d"}), true)
        .await
        .unwrap();
    assert_eq!(created["name"], "app1");
    assert!(created.get("compute_status").is_some());
    let app = wait_app_compute(&c, "app1", &["ACTIVE", "STOPPED"], WAIT)
        .await
        .unwrap();
    assert_eq!(
        compute_state(&app),
        Some("STOPPED"),
        "no_compute create leaves the app stopped"
    );

    apps.start("app1").await.unwrap();
    wait_app_compute(&c, "app1", &["ACTIVE"], WAIT)
        .await
        .unwrap();
    c.workspace()
        .mkdirs("/Workspace/Users/local-user@example.com/app1")
        .await
        .unwrap();
    let dep = apps
        .deploy("app1", &json!({"mode": "SNAPSHOT", "source_code_path": "/Workspace/Users/local-user@example.com/app1"}))
        .await
        .unwrap();
    let dep_id = dep.deployment_id.clone().expect("deployment_id");
    let done = wait_app_deployment(&c, "app1", &dep_id, WAIT)
        .await
        .unwrap();
    assert_eq!(
        done.status.and_then(|s| s.state).as_deref(),
        Some("SUCCEEDED")
    );
    assert!(apps
        .list_deployments("app1")
        .await
        .unwrap()
        .iter()
        .any(|d| d["deployment_id"] == dep_id.as_str()));

    let upd = apps
        .update(
            "app1",
            &json!({"name": "app1", "description": "new"}),
            "description",
        )
        .await
        .unwrap();
    assert!(upd.get("status").is_some(), "{upd}");
    let mut desc = Value::Null;
    for _ in 0..100 {
        let u = apps.get_update("app1").await.unwrap();
        if u.pointer("/status/state").and_then(Value::as_str) == Some("SUCCEEDED") {
            desc = apps.get("app1").await.unwrap()["description"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(desc, "new");

    apps.stop("app1").await.unwrap();
    wait_app_compute(&c, "app1", &["STOPPED"], WAIT)
        .await
        .unwrap();
    assert!(apps
        .list()
        .await
        .unwrap()
        .iter()
        .any(|a| a["name"] == "app1"));

    apps.delete("app1").await.unwrap();
    // Delete is fire-and-forget: the app is DELETING or already gone.
    if let Some(a) = apps.find("app1").await.unwrap() {
        assert_eq!(compute_state(&a), Some("DELETING"));
    }
    let e = apps.get("never-created").await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[tokio::test]
async fn workspace_files_for_state_and_lock() {
    let (_emu, c) = start(&[]);
    let ws = c.workspace();
    let root = "/Workspace/Users/local-user@example.com/.bundle/b/dev/state";
    let file = format!("{root}/resources.json");
    // The parent is missing: import-file is NotFound; write_file creates it.
    let e = ws.import_file(&file, b"{}", true).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let content = b"{\"serial\": 1, \"bytes\": \"\xe2\x9c\x93\"}";
    ws.write_file(&file, content, true).await.unwrap();
    assert_eq!(ws.export(&file).await.unwrap(), content.to_vec());
    let st = ws.get_status(&file).await.unwrap();
    assert_eq!(st.object_type.as_deref(), Some("FILE"));
    assert!(ws.get_status(root).await.unwrap().is_directory());

    // The lock protocol: create without overwrite; a second create conflicts.
    let lock = format!("{root}/deploy.lock");
    ws.import_file(&lock, b"{\"ID\":\"a\"}", false)
        .await
        .unwrap();
    let e = ws
        .import_file(&lock, b"{\"ID\":\"b\"}", false)
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    assert_eq!(ws.export(&lock).await.unwrap(), b"{\"ID\":\"a\"}".to_vec());

    let mut names: Vec<String> = ws
        .list(root)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    names.sort();
    assert_eq!(names, vec![lock.clone(), file.clone()]);

    ws.import(&file, b"v2", "AUTO", true).await.unwrap();
    assert_eq!(ws.export(&file).await.unwrap(), b"v2".to_vec());

    ws.delete(&lock, false).await.unwrap();
    let e = ws.get_status(&lock).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.message().contains("doesn't exist"), "{e}");
    assert_eq!(ws.find(&lock).await.unwrap(), None);
    assert!(ws.export(&lock).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn permissions_round_trip() {
    let (_emu, c) = start(&[]);
    let id = jobs(&c).create(&json!({"name": "p"})).await.unwrap();
    let acl = json!([{"user_name": "someone@example.com", "permission_level": "CAN_MANAGE_RUN"}]);
    c.permissions()
        .set("jobs", &id.to_string(), &acl)
        .await
        .unwrap();
    let got = c.permissions().get("jobs", &id.to_string()).await.unwrap();
    let text = got.to_string();
    assert!(
        text.contains("someone@example.com") && text.contains("CAN_MANAGE_RUN"),
        "{text}"
    );
}

#[tokio::test]
async fn me_and_auth_from_environment() {
    let (emu, c) = start(&["--user", "dev@example.com"]);
    assert_eq!(me(&c).await.unwrap().user_name, "dev@example.com");

    // Resolution from (a fake) environment, as the CLI does it.
    let env: HashMap<String, String> = [
        ("DATABRICKS_HOST", emu.url.clone()),
        ("DATABRICKS_TOKEN", emu.token.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let from_env = Client::from_options(
        &AuthOptions {
            env,
            ..AuthOptions::default()
        },
        config(),
    )
    .unwrap();
    assert_eq!(from_env.auth_type(), "pat");
    assert_eq!(me(&from_env).await.unwrap().user_name, "dev@example.com");

    let bad = Client::with_token(&emu.url, Secret::new("dapi-wrong"), config()).unwrap();
    let e = me(&bad).await.unwrap_err();
    assert!(
        matches!(
            e,
            ApiError::Unauthenticated { .. } | ApiError::PermissionDenied { .. }
        ),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("dapi-wrong"));
}

#[tokio::test]
async fn m2m_login() {
    let (emu, _) = start(&[
        "--client-id",
        "sp-client",
        "--client-secret",
        "sp-secret-value",
    ]);
    let mk = |secret: &str| {
        let env: HashMap<String, String> = [
            ("DATABRICKS_HOST", emu.url.clone()),
            ("DATABRICKS_CLIENT_ID", "sp-client".to_string()),
            ("DATABRICKS_CLIENT_SECRET", secret.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Client::from_options(
            &AuthOptions {
                env,
                ..AuthOptions::default()
            },
            config(),
        )
        .unwrap()
    };
    let c = mk("sp-secret-value");
    assert_eq!(c.auth_type(), "oauth-m2m");
    let who = me(&c).await.unwrap();
    assert_eq!(who.user_name, "sp-client");
    let id = jobs(&c).create(&json!({"name": "by-sp"})).await.unwrap();
    assert!(jobs(&c).get(id).await.is_ok());

    let e = me(&mk("not-the-secret")).await.unwrap_err();
    assert!(matches!(e, ApiError::Unauthenticated { .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn error_mapping() {
    let (_emu, c) = start(&[]);
    let db = database(&c);
    let e = db.get_instance("missing").await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.path(), "/api/2.0/database/instances/missing");
    assert!(!e.message().is_empty());

    db.create_instance(&json!({"name": "dup", "capacity": "CU_1"}))
        .await
        .unwrap();
    let e = db
        .create_instance(&json!({"name": "dup", "capacity": "CU_1"}))
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");

    let e = db
        .create_instance(&json!({"name": "bad-cap", "capacity": "CU_3"}))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::InvalidParameter { .. }), "{e}");
    assert!(
        e.message().contains("capacity"),
        "the message names the field: {e}"
    );

    let e = jobs(&c).get(123_456_789).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");

    let e = c
        .call(Method::GET, "/api/2.0/no/such/route", &[], None)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[tokio::test]
async fn injected_faults_are_retried_to_success() {
    // 40% of requests get 429 or 503 + Retry-After before being applied.
    let (_emu, c) = start(&["--fail-rate", "0.4", "--seed", "11"]);
    let mut created = 0;
    let mut reconciled = 0;
    for i in 0..6 {
        let name = format!("job-{i}");
        match jobs(&c).create(&json!({"name": name})).await {
            Ok(_) => created += 1,
            // A 503 on a create is ambiguous to the client; the fault here
            // was injected before applying, so reconciling finds nothing and
            // the create is safe to repeat.
            Err(e) if e.is_outcome_unknown() => {
                reconciled += 1;
                let found = jobs(&c).list(Some(&name)).await.unwrap();
                if found.is_empty() {
                    jobs(&c)
                        .create(&json!({"name": name}))
                        .await
                        .or_else(|e| {
                            if e.is_outcome_unknown() {
                                Ok(0)
                            } else {
                                Err(e)
                            }
                        })
                        .unwrap();
                }
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    // Reads and idempotent calls always succeed through the faults.
    let all = jobs(&c).list(None).await.unwrap();
    assert!(all.len() >= created, "{} < {created}", all.len());
    for _ in 0..6 {
        me(&c).await.unwrap();
        c.workspace().mkdirs("/Users/x/dir").await.unwrap();
    }
    eprintln!("faults: {created} creates succeeded directly, {reconciled} reconciled");
}

#[tokio::test]
async fn lost_response_on_create_is_outcome_unknown_and_was_applied() {
    let (_emu, c) = start(&["--lost-response-rate", "1.0", "--seed", "3"]);
    let e = database(&c)
        .create_instance(&json!({"name": "lost1", "capacity": "CU_1"}))
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e}");
    assert_eq!(e.method(), "POST");
    // The engine reconciles by name: the instance exists.
    let found = database(&c).find_instance("lost1").await.unwrap();
    assert!(found.is_some(), "the lost create was applied");
    // Idempotent calls are re-sent; reads are never "lost" (GET is not mutating).
    let e = apps(&c)
        .create(&json!({"name": "lostapp"}), true)
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e}");
    assert!(apps(&c).find("lostapp").await.unwrap().is_some());
}
