//! Dashboards, Genie spaces, SQL alerts and quality monitors end to end: the real binary
//! against the emulator.
//!
//! - deploy creates every kind: the dashboard from its local `.lvdash.json` in a folder
//!   deploy makes, published; the Genie space from its file; one alert inline and one from
//!   a `.dbalert.json`; the monitor on a lake table writing to the bundle's schema; the
//!   permissions of each;
//! - a plan right after is a no-op (the service's re-serialized definitions are not
//!   differences);
//! - a changed local dashboard file, alert threshold, space description and monitor
//!   schedule plan in-place updates; a changed monitor `assets_dir` a replacement;
//! - an edit of the dashboard in the workspace (its `etag` moves) plans an update that puts
//!   the bundle's definition back; a space trashed outside the bundle is created again;
//! - destroy leaves nothing (the dashboard trashed, the alerts purged).

mod common;
mod e2e_support;

use common::Emulator;
use e2e_support::{run, Api, TestBundle};
use serde_json::{json, Value};

const DASHBOARD: &str = "resources.dashboards.sales";
const SPACE: &str = "resources.genie_spaces.taxi";
const ALERT: &str = "resources.alerts.revenue";
const FILE_ALERT: &str = "resources.alerts.from_file";
const MONITOR: &str = "resources.quality_monitors.orders";

/// An emulator whose lake holds the monitored table `lake.raw.orders`.
fn emulator() -> Emulator {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let dir = emu.data_dir().join("lake").join("lake").join("raw");
    std::fs::create_dir_all(&dir).expect("lake dir");
    std::fs::write(dir.join("orders.csv"), "id,amount\n1,10\n2,32\n").expect("lake table");
    emu
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

fn pair(addr: &str, action: &str) -> (String, String) {
    (addr.to_string(), action.to_string())
}

/// `level` granted directly to `group` in a Permissions API answer.
fn group_has(perms: &Value, group: &str, level: &str) -> bool {
    perms["access_control_list"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["group_name"] == group && e["all_permissions"][0]["permission_level"] == level)
}

fn json_text(v: &Value) -> Value {
    serde_json::from_str(v.as_str().expect("a JSON text")).expect("valid JSON")
}

/// A DELETE outside the bundle (the shared client has none).
fn delete(emu: &Emulator, path: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .delete(format!("{}{path}", emu.url))
            .bearer_auth(&emu.token)
            .send()
            .await
            .expect("DELETE")
            .status()
            .as_u16()
    })
}

#[test]
fn deploy_noop_update_drift_and_destroy() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_sql");
    run(&emu, &b, &["deploy"]).expect(0);
    let me = api.get("/api/2.0/preview/scim/v2/Me", &[]).expect("me")["userName"]
        .as_str()
        .expect("userName")
        .to_string();

    // Dashboard: the local file's definition, in the folder deploy made, published.
    let did = b.state_id(DASHBOARD).expect("dashboard in state");
    let dpath = format!("/api/2.0/lakeview/dashboards/{did}");
    let d = api.get(&dpath, &[]).expect("dashboard exists");
    assert_eq!(d["display_name"], "Sales overview");
    assert_eq!(
        d["parent_path"],
        format!("/Workspace/Users/{me}/sql-e2e/dashboards")
    );
    let local: Value = serde_json::from_str(
        &std::fs::read_to_string(b.root.join("src/sales.lvdash.json")).expect("read file"),
    )
    .expect("file JSON");
    assert_eq!(json_text(&d["serialized_dashboard"]), local);
    let wid = b
        .state_id("resources.sql_warehouses.wh")
        .expect("warehouse");
    assert_eq!(d["warehouse_id"], wid);
    let published = api
        .get(&format!("{dpath}/published"), &[])
        .expect("deploy published the dashboard");
    assert_eq!(published["embed_credentials"], false);
    let perms = api
        .get(&format!("/api/2.0/permissions/dashboards/{did}"), &[])
        .expect("dashboard permissions");
    assert!(group_has(&perms, "users", "CAN_READ"), "{perms}");

    // Genie space: from its file; the definition only with include_serialized_space.
    let sid = b.state_id(SPACE).expect("space in state");
    let spath = format!("/api/2.0/genie/spaces/{sid}");
    let s = api
        .get(&spath, &[("include_serialized_space", "true".into())])
        .expect("space exists");
    assert_eq!(s["title"], "Taxi questions");
    assert_eq!(json_text(&s["serialized_space"])["version"], 1);
    let perms = api
        .get(&format!("/api/2.0/permissions/genie/{sid}"), &[])
        .expect("space permissions");
    assert!(group_has(&perms, "users", "CAN_RUN"), "{perms}");

    // Alerts: inline and from the .dbalert.json.
    let aid = b.state_id(ALERT).expect("alert in state");
    let a = api
        .get(&format!("/api/2.0/alerts/{aid}"), &[])
        .expect("alert exists");
    assert_eq!(a["evaluation"]["threshold"]["value"]["double_value"], 1000);
    assert_eq!(a["lifecycle_state"], "ACTIVE");
    let perms = api
        .get(&format!("/api/2.0/permissions/alertsv2/{aid}"), &[])
        .expect("alert permissions");
    assert!(group_has(&perms, "users", "CAN_RUN"), "{perms}");
    let fid = b.state_id(FILE_ALERT).expect("file alert in state");
    let f = api
        .get(&format!("/api/2.0/alerts/{fid}"), &[])
        .expect("file alert exists");
    assert_eq!(
        f["query_text"],
        "SELECT sum(amount) AS amount\nFROM lake.raw.orders"
    );
    assert_eq!(f["evaluation"]["comparison_operator"], "LESS_THAN");
    assert_eq!(f["display_name"], "Revenue from file");

    // Monitor: on the lake table, metrics in the bundle schema (created first).
    assert_eq!(b.state_id(MONITOR).as_deref(), Some("lake.raw.orders"));
    let mpath = "/api/2.1/unity-catalog/tables/lake.raw.orders/monitor";
    let m = api.get(mpath, &[]).expect("monitor exists");
    assert_eq!(m["output_schema_name"], "lake.metrics");
    assert_eq!(m["monitor_version"], "1");
    assert!(m["snapshot"].is_object(), "{m}");

    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op right after deploy");

    // Local changes: updates in place; a new assets_dir replaces the monitor.
    let file = b.root.join("src/sales.lvdash.json");
    std::fs::write(
        &file,
        r#"{"pages": [{"name": "overview", "displayName": "Revenue"}]}"#,
    )
    .expect("edit the dashboard file");
    b.edit("double_value: 1000", "double_value: 2000");
    b.edit(
        "description: Ask about trips",
        "description: Ask about fares",
    );
    b.edit("0 0 6 * * ?", "0 30 6 * * ?");
    let changed = plan(&emu, &b);
    assert_eq!(
        actions(&changed),
        vec![
            pair(ALERT, "update"),
            pair(DASHBOARD, "update"),
            pair(SPACE, "update"),
            pair(MONITOR, "update"),
        ],
        "{changed}"
    );
    b.edit("sql-e2e/monitoring", "sql-e2e/monitoring-v2");
    assert!(
        actions(&plan(&emu, &b)).contains(&pair(MONITOR, "delete+create")),
        "assets_dir is immutable"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(b.state_id(DASHBOARD), Some(did.clone()), "same dashboard");
    let d = api.get(&dpath, &[]).expect("dashboard");
    assert_eq!(
        json_text(&d["serialized_dashboard"])["pages"][0]["displayName"],
        "Revenue"
    );
    assert_eq!(
        api.get(&format!("/api/2.0/alerts/{aid}"), &[])
            .expect("alert")["evaluation"]["threshold"]["value"]["double_value"],
        2000
    );
    assert_eq!(
        api.get(&spath, &[]).expect("space")["description"],
        "Ask about fares"
    );
    let m = api.get(mpath, &[]).expect("monitor recreated");
    assert!(
        m["assets_dir"]
            .as_str()
            .is_some_and(|d| d.ends_with("/monitoring-v2")),
        "{m}"
    );
    assert_eq!(m["schedule"]["quartz_cron_expression"], "0 30 6 * * ?");
    assert_eq!(actions(&plan(&emu, &b)), vec![], "no-op after the updates");

    // Edits in the workspace: the dashboard's etag moves, the space is trashed.
    let (status, v) = api.patch(&dpath, &json!({"serialized_dashboard": "{\"pages\": []}"}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(delete(&emu, &spath), 200);
    let drift = plan(&emu, &b);
    assert_eq!(
        actions(&drift),
        vec![pair(DASHBOARD, "update"), pair(SPACE, "create")],
        "{drift}"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let d = api.get(&dpath, &[]).expect("dashboard");
    assert_eq!(
        json_text(&d["serialized_dashboard"])["pages"][0]["displayName"],
        "Revenue",
        "the bundle's definition is back"
    );
    let new_sid = b.state_id(SPACE).expect("space recreated");
    assert_ne!(new_sid, sid);
    assert_eq!(actions(&plan(&emu, &b)), vec![], "converged");

    // Destroy: the dashboard goes to the trash, the alerts are purged.
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert_eq!(
        api.get(&dpath, &[])
            .expect("a trashed dashboard stays readable")["lifecycle_state"],
        "TRASHED"
    );
    assert!(api.get(&format!("/api/2.0/alerts/{aid}"), &[]).is_none());
    assert!(api.get(&format!("/api/2.0/alerts/{fid}"), &[]).is_none());
    assert!(api
        .get(&format!("/api/2.0/genie/spaces/{new_sid}"), &[])
        .is_none());
    assert!(api.get(mpath, &[]).is_none());
}

#[test]
fn dashboard_file_problems_are_diagnostics() {
    let emu = emulator();
    let b = TestBundle::fixture("e2e_sql");
    b.edit(
        "file_path: ./src/sales.lvdash.json",
        "file_path: ./src/missing.lvdash.json\n      serialized_dashboard: \"{}\"",
    );
    let out = run(&emu, &b, &["validate"]).expect(1);
    assert!(
        out.stderr
            .contains("sets both file_path and serialized_dashboard"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("databricks.yml:"), "{}", out.stderr);
    // Alone, the missing file warns at validate (it may be a build output) and stops a
    // plan, at its YAML line.
    b.edit("\n      serialized_dashboard: \"{}\"", "");
    let out = run(&emu, &b, &["validate"]).expect(0);
    assert!(
        out.stderr
            .contains("\"./src/missing.lvdash.json\" not found yet"),
        "a build output may not exist yet at validate: {}",
        out.stderr
    );
    let out = run(&emu, &b, &["plan"]).expect(1);
    assert!(
        out.stderr
            .contains("file \"./src/missing.lvdash.json\" does not exist"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("databricks.yml:"), "{}", out.stderr);
    // An alert defined by file may not set its query in the YAML too.
    b.edit(
        "file_path: ./src/revenue.dbalert.json",
        "file_path: ./src/revenue.dbalert.json\n      query_text: SELECT 1",
    );
    let out = run(&emu, &b, &["validate"]).expect(1);
    assert!(
        out.stderr
            .contains("query_text is not allowed next to file_path"),
        "{}",
        out.stderr
    );
}
