//! Pipelines, SQL warehouses and secret scopes end to end: the real binary
//! against the emulator.
//!
//! - deploy creates the three kinds (pipeline libraries and root path point at
//!   the uploaded files, the warehouse is RUNNING, the scope's ACLs are the
//!   collapsed `permissions` plus MANAGE for the deployer), then plans a no-op;
//! - a changed pipeline setting / warehouse setting plans an in-place update,
//!   a changed scope name a replacement; deploy applies them;
//! - `run` on the pipeline follows its update to COMPLETED (with the CLI's
//!   refresh flags), a failing update exits 1, and a job's `pipeline_task`
//!   starts an update of the bundle pipeline;
//! - `lifecycle.started: false` stops the warehouse on its next update;
//! - destroy leaves nothing;
//! - the bundle-wide `permissions:` become scope ACLs (CAN_MANAGE → MANAGE,
//!   CAN_VIEW → READ), and an ACL changed outside plans an update that puts
//!   it back;
//! - `cascade_on_destroy: false` deletes the pipeline with `?cascade=false`.

mod common;
mod e2e_support;
#[path = "common/proxy.rs"]
mod proxy;

use common::Emulator;
use e2e_support::{run, Api, TestBundle};
use serde_json::Value;

const PIPELINE: &str = "resources.pipelines.etl";
const WAREHOUSE: &str = "resources.sql_warehouses.wh";
const SCOPE: &str = "resources.secret_scopes.scope";
const JOB: &str = "resources.jobs.refresh";

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres"])
}

fn bundle() -> TestBundle {
    TestBundle::fixture("pipelines_warehouses_secrets")
}

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

fn acls(api: &Api, scope: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = api
        .list(
            "/api/2.0/secrets/acls/list",
            "items",
            &[("scope", scope.into())],
        )
        .iter()
        .map(|a| {
            (
                a["principal"].as_str().unwrap_or("").to_string(),
                a["permission"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn scopes(api: &Api) -> Vec<String> {
    api.list("/api/2.0/secrets/scopes/list", "scopes", &[])
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect()
}

fn warehouse_state(api: &Api, id: &str) -> String {
    api.get(&format!("/api/2.0/sql/warehouses/{id}"), &[])
        .expect("warehouse exists")["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn deploy_noop_update_replace_run_and_destroy() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = bundle();
    run(&emu, &b, &["deploy"]).expect(0);

    // Pipeline: created with its paths translated to the uploaded files.
    let pid = b.state_id(PIPELINE).expect("pipeline in state");
    let p = api
        .get(&format!("/api/2.0/pipelines/{pid}"), &[])
        .expect("pipeline exists");
    let files = p["spec"]["root_path"].as_str().expect("root_path");
    assert!(
        files.starts_with("/Workspace/Users/") && files.ends_with("/files/src"),
        "root_path {files}"
    );
    assert_eq!(
        p["spec"]["libraries"][0]["notebook"]["path"],
        format!("{files}/ingest"),
        "a notebook path loses its extension"
    );
    assert_eq!(
        p["spec"]["libraries"][1]["glob"]["include"],
        format!("{files}/transformations/**")
    );
    assert_eq!(p["spec"]["deployment"]["kind"], "BUNDLE");
    let nb = api
        .get(
            "/api/2.0/workspace/get-status",
            &[("path", format!("{files}/ingest"))],
        )
        .expect("the notebook was uploaded");
    assert_eq!(nb["object_type"], "NOTEBOOK");
    let perms = api
        .get(&format!("/api/2.0/permissions/pipelines/{pid}"), &[])
        .expect("pipeline permissions");
    assert!(
        perms["access_control_list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["group_name"] == "users"
                && e["all_permissions"][0]["permission_level"] == "CAN_VIEW"),
        "{perms}"
    );

    // Warehouse: deploy waited for RUNNING.
    let wid = b.state_id(WAREHOUSE).expect("warehouse in state");
    assert_eq!(warehouse_state(&api, &wid), "RUNNING");
    let wperms = api
        .get(&format!("/api/2.0/permissions/sql/warehouses/{wid}"), &[])
        .expect("warehouse permissions");
    assert!(
        wperms["access_control_list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["group_name"] == "users"
                && e["all_permissions"][0]["permission_level"] == "CAN_USE"),
        "{wperms}"
    );

    // Scope: one ACL per principal at its highest level, plus the deployer's MANAGE.
    assert_eq!(b.state_id(SCOPE).as_deref(), Some("pws-scope"));
    let me = api.get("/api/2.0/preview/scim/v2/Me", &[]).expect("me")["userName"]
        .as_str()
        .expect("userName")
        .to_string();
    let mut want = vec![
        (me.clone(), "MANAGE".to_string()),
        ("reader@example.com".to_string(), "WRITE".to_string()),
        ("users".to_string(), "READ".to_string()),
    ];
    want.sort();
    assert_eq!(acls(&api, "pws-scope"), want);

    assert!(b.state_id(JOB).is_some(), "the job with the pipeline task");
    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op right after deploy");

    // Changes: pipeline and warehouse update in place, a scope rename replaces.
    b.edit("source: raw", "source: bronze");
    b.edit("auto_stop_mins: 30", "auto_stop_mins: 45");
    b.edit("name: pws-scope", "name: pws-scope-2");
    let changed = plan(&emu, &b);
    assert_eq!(
        actions(&changed),
        vec![
            (PIPELINE.to_string(), "update".to_string()),
            (SCOPE.to_string(), "delete+create".to_string()),
            (WAREHOUSE.to_string(), "update".to_string()),
        ],
        "{changed}"
    );
    run(&emu, &b, &["deploy"]).expect(0);
    assert_eq!(b.state_id(PIPELINE), Some(pid.clone()), "same pipeline");
    let p = api
        .get(&format!("/api/2.0/pipelines/{pid}"), &[])
        .expect("pipeline exists");
    assert_eq!(p["spec"]["configuration"]["source"], "bronze");
    assert_eq!(
        api.get(&format!("/api/2.0/sql/warehouses/{wid}"), &[])
            .expect("warehouse")["auto_stop_mins"],
        45
    );
    assert_eq!(scopes(&api), vec!["pws-scope-2".to_string()]);
    assert_eq!(
        acls(&api, "pws-scope-2"),
        want,
        "the replacement gets the ACLs"
    );
    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op after the update");

    // run: the pipeline's update is followed to the end, with the CLI's flags.
    let out = run(&emu, &b, &["-o", "json", "run", "etl", "--refresh", "a,b"]).expect(0);
    let r: Value = serde_json::from_str(&out.stdout).expect("run JSON");
    assert_eq!(r["state"], "COMPLETED", "{}", out.stderr);
    let uid = r["update_id"].as_str().expect("update_id");
    let u = api
        .get(&format!("/api/2.0/pipelines/{pid}/updates/{uid}"), &[])
        .expect("update");
    assert_eq!(
        u["update"]["refresh_selection"],
        serde_json::json!(["a", "b"])
    );
    assert!(
        out.stderr.contains("QUEUED") || out.stderr.contains("CREATED"),
        "the update is followed through its states: {}",
        out.stderr
    );
    run(
        &emu,
        &b,
        &["run", "etl", "--full-refresh-all", "--refresh", "x"],
    )
    .expect(1);
    run(&emu, &b, &["run", "refresh", "--refresh-all"]).expect(1);

    // A job's pipeline_task starts an update of the bundle pipeline.
    let before = api
        .list(&format!("/api/2.0/pipelines/{pid}/updates"), "updates", &[])
        .len();
    run(&emu, &b, &["run", "refresh"]).expect(0);
    let ups = api.list(&format!("/api/2.0/pipelines/{pid}/updates"), "updates", &[]);
    assert_eq!(ups.len(), before + 1, "{ups:?}");
    assert_eq!(ups[0]["cause"], "JOB_TASK");
    assert_eq!(ups[0]["state"], "COMPLETED", "the job run waited for it");

    // A failing update makes `run` fail.
    b.edit(
        "source: bronze",
        "source: bronze\n        lakebundle.emulator.fail_update: \"true\"",
    );
    run(&emu, &b, &["deploy"]).expect(0);
    let failed = run(&emu, &b, &["run", "etl"]).expect(1);
    assert!(failed.stderr.contains("FAILED"), "{}", failed.stderr);

    // lifecycle.started: false stops the warehouse when it is applied (with a
    // field change: the plan does not yet see a change of `started` alone).
    b.edit("auto_stop_mins: 45", "auto_stop_mins: 50");
    b.edit(
        "enable_serverless_compute: true",
        "enable_serverless_compute: true\n      lifecycle:\n        started: false",
    );
    run(&emu, &b, &["deploy"]).expect(0);
    assert_eq!(warehouse_state(&api, &wid), "STOPPED");

    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(api.list("/api/2.0/pipelines", "statuses", &[]).is_empty());
    assert!(api
        .list("/api/2.0/sql/warehouses", "warehouses", &[])
        .is_empty());
    assert!(scopes(&api).is_empty());
    assert!(api.jobs().is_empty());
}

/// `DELETE path` with an independent HTTP client.
fn delete(emu: &Emulator, path: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = rt.block_on(async {
        reqwest::Client::new()
            .delete(format!("{}{path}", emu.url))
            .bearer_auth(&emu.token)
            .send()
            .await
            .expect("DELETE")
            .status()
    });
    assert!(status.is_success(), "DELETE {path}: {status}");
}

#[test]
fn resources_deleted_outside_are_recreated() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = bundle();
    run(&emu, &b, &["deploy"]).expect(0);
    let pid = b.state_id(PIPELINE).expect("pipeline");
    api.post(
        "/api/2.0/secrets/scopes/delete",
        &serde_json::json!({"scope": "pws-scope"}),
    );
    // Deleted outside lakebundle (the workspace API directly).
    delete(&emu, &format!("/api/2.0/pipelines/{pid}"));
    let p = plan(&emu, &b);
    let acts = actions(&p);
    assert!(
        acts.contains(&(PIPELINE.to_string(), "create".to_string())),
        "{p}"
    );
    assert!(
        acts.contains(&(SCOPE.to_string(), "create".to_string())),
        "{p}"
    );
    run(&emu, &b, &["deploy"]).expect(0);
    assert_eq!(actions(&plan(&emu, &b)), vec![]);
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
}

/// The principal → level pairs of the scope's ACLs, with `me`.
fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(p, l)| (p.to_string(), l.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn bundle_permissions_become_scope_acls_and_acl_drift_is_put_back() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("secret_acls");
    run(&emu, &b, &["deploy"]).expect(0);
    let me = api.get("/api/2.0/preview/scim/v2/Me", &[]).expect("me")["userName"]
        .as_str()
        .expect("userName")
        .to_string();
    // Own WRITE beats the bundle-wide READ; CAN_RUN gives no ACL.
    let own = pairs(&[(&me, "MANAGE"), ("admins", "MANAGE"), ("users", "WRITE")]);
    let bare = pairs(&[(&me, "MANAGE"), ("admins", "MANAGE"), ("users", "READ")]);
    assert_eq!(acls(&api, "acl-own"), own);
    assert_eq!(acls(&api, "acl-bare"), bare);
    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op right after deploy");

    // Changed outside lakebundle: a level lowered, an ACL added, one removed.
    api.post(
        "/api/2.0/secrets/acls/put",
        &serde_json::json!({"scope": "acl-own", "principal": "users", "permission": "READ"}),
    );
    api.post(
        "/api/2.0/secrets/acls/put",
        &serde_json::json!({"scope": "acl-bare", "principal": "intruder@example.com", "permission": "READ"}),
    );
    api.post(
        "/api/2.0/secrets/acls/delete",
        &serde_json::json!({"scope": "acl-bare", "principal": "admins"}),
    );
    let p = plan(&emu, &b);
    assert_eq!(
        actions(&p),
        vec![
            (
                "resources.secret_scopes.bare".to_string(),
                "update".to_string()
            ),
            (
                "resources.secret_scopes.own".to_string(),
                "update".to_string()
            ),
        ],
        "an ACL change is an update, not a replacement: {p}"
    );
    let text = run(&emu, &b, &["plan"]).expect(0).stdout;
    assert!(text.contains("changed outside lakebundle"), "{text}");
    run(&emu, &b, &["deploy"]).expect(0);
    assert_eq!(acls(&api, "acl-own"), own, "put back");
    assert_eq!(acls(&api, "acl-bare"), bare, "put back");
    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op after the repair");
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(scopes(&api).is_empty());
}

#[test]
fn cascade_on_destroy_false_keeps_the_tables() {
    let emu = emulator();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let proxy = rt.block_on(proxy::CountingProxy::start(emu.url.clone()));
    let b = TestBundle::fixture("pipeline_cascade");
    let through_proxy = |args: &[&str]| {
        let out = e2e_support::command(&emu, &b, args)
            .env("DATABRICKS_HOST", &proxy.url)
            .output()
            .expect("run lakebundle");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    through_proxy(&["deploy"]);
    let keep = b
        .state_id("resources.pipelines.keep")
        .expect("keep deployed");
    let drop = b
        .state_id("resources.pipelines.drop")
        .expect("drop deployed");
    through_proxy(&["destroy", "--auto-approve"]);
    let deletes: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE /api/2.0/pipelines/"))
        .collect();
    assert!(
        deletes.contains(&format!("DELETE /api/2.0/pipelines/{keep}?cascade=false")),
        "{deletes:?}"
    );
    assert!(
        deletes.contains(&format!("DELETE /api/2.0/pipelines/{drop}")),
        "the server default (cascade) for the other: {deletes:?}"
    );
    assert!(Api::new(&emu)
        .list("/api/2.0/pipelines", "statuses", &[])
        .is_empty());
}
