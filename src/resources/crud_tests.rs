//! CRUD of every kind against the real emulator over loopback HTTP, through
//! the real client: create, wait_ready, read, remote_to_config, outputs,
//! update, find_existing, delete.

use std::time::Duration;

use serde_json::{json, Value};

use super::{kind_impl, DeploymentInfo, Kind, ResourceAddr};
use crate::api::{Client, ClientConfig, Secret};
use lakebundle_emulator::{self as emulator, EmulatorConfig, RunningEmulator};

const READY: Duration = Duration::from_secs(30);

async fn workspace(dir: &tempfile::TempDir) -> (RunningEmulator, Client) {
    let mut cfg = EmulatorConfig::local(dir.path().join("ws"));
    cfg.no_postgres = true;
    let emu = emulator::start(cfg).await.expect("start emulator");
    let client = Client::with_token(emu.url(), Secret::new(emu.token()), ClientConfig::default())
        .expect("client");
    (emu, client)
}

/// Read until the object is gone (deletes may pass through DELETING).
async fn assert_gone(kind: Kind, client: &Client, id: &str) {
    for _ in 0..100 {
        if kind_impl(kind)
            .read(client, id)
            .await
            .expect("read after delete")
            .is_none()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{kind} {id} still readable after delete");
}

#[tokio::test]
async fn database_kinds_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, client) = workspace(&dir).await;
    let instances = kind_impl(Kind::DatabaseInstances);
    let cfg = json!({
        "name": "crud-db", "capacity": "CU_1", "node_count": 1, "retention_window_in_days": 7,
        "custom_tags": [{"key": "team", "value": "data"}], "purge_on_delete": true,
        "permissions": [{"level": "CAN_USE", "group_name": "users"}], "lifecycle": {"prevent_destroy": false}
    });
    let created = instances
        .create(&client, &cfg)
        .await
        .expect("create instance");
    assert_eq!(created.id, "crud-db");
    let ready = instances
        .wait_ready(&client, &created.id, READY)
        .await
        .expect("instance ready");
    assert_eq!(ready["state"], "AVAILABLE");
    let shape = instances.remote_to_config(&ready);
    assert_eq!(shape["capacity"], "CU_1");
    assert_eq!(shape["node_count"], 1);
    assert!(shape.get("state").is_none() && shape.get("uid").is_none());
    let outs = instances.outputs(&created.id, &ready);
    assert!(
        outs["read_write_dns"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{outs}"
    );
    assert!(outs["uid"].as_str().is_some());

    let resized = json!({"name": "crud-db", "capacity": "CU_2"});
    instances
        .update(&client, "crud-db", &resized, &["capacity".into()])
        .await
        .expect("update");
    let after = instances
        .read(&client, "crud-db")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after["capacity"], "CU_2");
    let found = instances
        .find_existing(&client, &cfg)
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id, "crud-db");

    let catalogs = kind_impl(Kind::DatabaseCatalogs);
    let cat_cfg = json!({"name": "crud_cat", "database_instance_name": "crud-db", "database_name": "app",
                         "create_database_if_not_exists": true, "lifecycle": {}});
    let cat = catalogs
        .create(&client, &cat_cfg)
        .await
        .expect("create catalog");
    assert_eq!(cat.id, "crud_cat");
    let cat_remote = catalogs
        .wait_ready(&client, &cat.id, READY)
        .await
        .expect("catalog ready");
    assert_eq!(
        catalogs.remote_to_config(&cat_remote),
        json!({"name": "crud_cat", "database_instance_name": "crud-db", "database_name": "app"})
    );
    assert!(
        catalogs
            .update(&client, &cat.id, &cat_cfg, &["database_name".into()])
            .await
            .is_err(),
        "catalogs have no update"
    );

    let tables = kind_impl(Kind::SyncedDatabaseTables);
    let table_cfg = json!({
        "name": "crud_cat.public.features", "database_instance_name": "crud-db", "logical_database_name": "app",
        "spec": {"source_table_full_name": "main.gold.features", "primary_key_columns": ["id"], "scheduling_policy": "SNAPSHOT",
                 "create_database_objects_if_missing": true,
                 "new_pipeline_spec": {"storage_catalog": "main", "storage_schema": "pipelines"}}
    });
    let table = tables
        .create(&client, &table_cfg)
        .await
        .expect("create synced table");
    assert_eq!(table.id, "crud_cat.public.features");
    let remote = tables
        .wait_ready(&client, &table.id, READY)
        .await
        .expect("synced table ready");
    assert_eq!(remote["unity_catalog_provisioning_state"], "ACTIVE");
    let shape = tables.remote_to_config(&remote);
    assert_eq!(shape["spec"]["primary_key_columns"], json!(["id"]));
    assert_eq!(shape["database_instance_name"], "crud-db");
    let outs = tables.outputs(&table.id, &remote);
    assert_eq!(outs["id"], "crud_cat.public.features");
    assert!(
        outs["data_synchronization_status"]["pipeline_id"]
            .as_str()
            .is_some(),
        "{outs}"
    );

    tables
        .delete(&client, &table.id)
        .await
        .expect("delete table");
    assert_gone(Kind::SyncedDatabaseTables, &client, &table.id).await;
    catalogs
        .delete(&client, &cat.id)
        .await
        .expect("delete catalog");
    assert_gone(Kind::DatabaseCatalogs, &client, &cat.id).await;
    instances
        .delete(&client, "crud-db")
        .await
        .expect("delete instance");
    assert_gone(Kind::DatabaseInstances, &client, "crud-db").await;
    instances
        .delete(&client, "crud-db")
        .await
        .expect("deleting a missing instance is fine");
    emu.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn jobs_round_trip_and_adoption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, client) = workspace(&dir).await;
    let jobs = kind_impl(Kind::Jobs);
    let addr = ResourceAddr::new(Kind::Jobs, "nightly");
    let info = DeploymentInfo {
        addr: &addr,
        metadata_file_path: "/Workspace/Users/me/.bundle/b/dev/state/metadata.json",
    };
    let cfg = jobs.with_deployment_marker(
        &json!({
            "name": "nightly", "permissions": [{"level": "CAN_VIEW", "group_name": "users"}],
            "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "/n"}}],
            "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"}
        }),
        &info,
    );
    let created = jobs.create(&client, &cfg).await.expect("create job");
    assert!(created.id.parse::<i64>().is_ok(), "job id {}", created.id);
    let remote = jobs
        .wait_ready(&client, &created.id, READY)
        .await
        .expect("job ready");
    let shape = jobs.remote_to_config(&remote);
    assert_eq!(shape["name"], "nightly");
    assert_eq!(shape["tasks"][0]["task_key"], "a");
    assert_eq!(
        shape["deployment"]["metadata_file_path"],
        info.metadata_file_path
    );
    assert!(shape.get("permissions").is_none());

    let found = jobs
        .find_existing(&client, &cfg)
        .await
        .expect("find")
        .expect("adopted by marker");
    assert_eq!(found.id, created.id);
    let other_deployment = jobs.with_deployment_marker(
        &cfg,
        &DeploymentInfo {
            addr: &addr,
            metadata_file_path: "/elsewhere/metadata.json",
        },
    );
    assert!(
        jobs.find_existing(&client, &other_deployment)
            .await
            .expect("find")
            .is_none(),
        "a job of another deployment is not adopted"
    );

    let mut renamed = cfg.clone();
    renamed["description"] = json!("runs nightly");
    renamed["tasks"] = json!([{"task_key": "b", "notebook_task": {"notebook_path": "/m"}}]);
    jobs.update(
        &client,
        &created.id,
        &renamed,
        &["description".into(), "tasks".into()],
    )
    .await
    .expect("reset");
    let after = jobs
        .read(&client, &created.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after["settings"]["description"], "runs nightly");
    assert_eq!(
        after["settings"]["tasks"].as_array().map(Vec::len),
        Some(1),
        "reset replaces the task list"
    );
    assert_eq!(jobs.outputs(&created.id, &after)["id"], json!(created.id));

    jobs.delete(&client, &created.id).await.expect("delete job");
    assert_gone(Kind::Jobs, &client, &created.id).await;
    assert!(
        jobs.read(&client, "not-a-number").await.is_err(),
        "a malformed id is an error, not a silent miss"
    );
    emu.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn apps_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (emu, client) = workspace(&dir).await;
    let apps = kind_impl(Kind::Apps);
    let cfg = json!({
        "name": "crud-app", "description": "first", "source_code_path": "./app",
        "config": {"command": ["python", "app.py"]}, "permissions": [{"level": "CAN_USE", "group_name": "users"}]
    });
    let created = apps.create(&client, &cfg).await.expect("create app");
    assert_eq!(created.id, "crud-app");
    let ready = apps
        .wait_ready(&client, &created.id, READY)
        .await
        .expect("app ready");
    assert_eq!(
        ready["compute_status"]["state"], "STOPPED",
        "created without compute"
    );
    let shape = apps.remote_to_config(&ready);
    assert_eq!(shape["description"], "first");
    assert!(shape.get("source_code_path").is_none() && shape.get("url").is_none());
    let outs = apps.outputs(&created.id, &ready);
    assert!(
        outs.get("url").is_some() && outs.get("service_principal_client_id").is_some(),
        "{outs}"
    );

    let mut changed = cfg.clone();
    changed["description"] = json!("second");
    apps.update(
        &client,
        &created.id,
        &changed,
        &["description".into(), "source_code_path".into()],
    )
    .await
    .expect("update app");
    let after = apps
        .read(&client, &created.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after["description"], "second");
    let found: Option<Value> = apps
        .find_existing(&client, &cfg)
        .await
        .expect("find")
        .map(|c| c.remote);
    assert!(found.is_some());

    let started = super::app::set_started(&client, &created.id, true, READY)
        .await
        .expect("start app");
    assert_eq!(started["compute_status"]["state"], "ACTIVE");
    let source = "/Workspace/Users/me/app";
    let err = super::app::deploy_source(&client, &created.id, &cfg, Some(source), READY)
        .await
        .expect_err("deploying a folder that is not in the workspace fails");
    assert!(err.to_string().contains("does not exist"), "{err}");
    client
        .call(
            crate::api::Method::POST,
            "/api/2.0/workspace/mkdirs",
            &[],
            Some(&json!({"path": source})),
        )
        .await
        .expect("mkdirs");
    let deployed = super::app::deploy_source(&client, &created.id, &cfg, Some(source), READY)
        .await
        .expect("deploy app");
    assert_eq!(deployed["status"]["state"], "SUCCEEDED");
    assert_eq!(deployed["command"], json!(["python", "app.py"]));
    let stopped = super::app::set_started(&client, &created.id, false, READY)
        .await
        .expect("stop app");
    assert_eq!(stopped["compute_status"]["state"], "STOPPED");

    apps.delete(&client, &created.id).await.expect("delete app");
    assert_gone(Kind::Apps, &client, &created.id).await;
    emu.shutdown().await.expect("shutdown");
}
