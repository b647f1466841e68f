//! End-to-end, Lakebase Autoscaling: the real binary against a fresh emulator
//! on real PostgreSQL. A project with a dev branch, a read-only endpoint, a
//! role and a database owned by it: deploy; the database is reachable through
//! the read-only endpoint with `credential` and owned by the role; a no-op
//! plan; an in-place update (the endpoint's max CU); a replacement (the
//! endpoint's id); destroy leaves no object and no PostgreSQL server.

mod common;
mod e2e_support;

use std::path::Path;
use std::time::Duration;

use common::Emulator;
use e2e_support::{run, Api, TestBundle};
use serde_json::Value;

const PROJECT: &str = "/api/2.0/postgres/projects/e2e-app";
const READER: &str = "resources.postgres_endpoints.reader";

fn plan_json(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "plan"]).expect(0);
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

fn actions_of(plan: &Value, addr: &str) -> Value {
    plan["resource_changes"]
        .as_array()
        .and_then(|rc| rc.iter().find(|c| c["address"] == addr))
        .map(|c| c["actions"].clone())
        .unwrap_or(Value::Null)
}

/// Every resource of the plan is a no-op.
fn assert_no_op(emu: &Emulator, b: &TestBundle) {
    let out = run(emu, b, &["plan"]).expect(0);
    assert!(
        out.stdout.contains("No changes."),
        "expected a no-op plan:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

/// PostgreSQL processes whose command line names the emulator's data dir.
fn servers_under(root: &Path) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .arg("-af")
        .arg(root.to_string_lossy().as_ref())
        .output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("postgres") && !l.contains("emulator serve"))
            .map(String::from)
            .collect()
    })
    .unwrap_or_default()
}

/// One query through the endpoint with the login `credential -o json` prints.
fn query_via_credential(
    emu: &Emulator,
    b: &TestBundle,
    key: &str,
    database: &str,
    sql: &str,
) -> Vec<String> {
    let out = run(
        emu,
        b,
        &["-o", "json", "credential", key, "--database", database],
    )
    .expect(0);
    let login: Value = serde_json::from_str(&out.stdout).expect("credential JSON");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(login["host"].as_str().expect("host"))
            .port(login["port"].as_u64().expect("port") as u16)
            .user(login["user"].as_str().expect("user"))
            .password(login["token"].as_str().expect("token"))
            .dbname(database)
            .connect_timeout(Duration::from_secs(60));
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect with the printed credential: {e}\n{login}"));
        tokio::spawn(conn);
        let row = client.query_one(sql, &[]).await.expect("query");
        (0..row.len())
            .map(|i| {
                row.try_get::<_, String>(i)
                    .or_else(|_| row.try_get::<_, bool>(i).map(|v| v.to_string()))
                    .expect("text or bool column")
            })
            .collect()
    })
}

#[test]
fn autoscaling_project_lifecycle() {
    if !common::prereq::postgres() {
        return;
    }
    let emu = Emulator::start();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_autoscaling");

    // Deploy: project (with its production branch), dev branch, read-only
    // endpoint, role and the database it owns.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 5 to add, 0 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    assert_eq!(
        b.state_id(READER).as_deref(),
        Some("projects/e2e-app/branches/dev/endpoints/reader")
    );
    let ep = api
        .get(&format!("{PROJECT}/branches/dev/endpoints/reader"), &[])
        .expect("endpoint exists");
    assert_eq!(ep["status"]["endpoint_type"], "ENDPOINT_TYPE_READ_ONLY");
    assert!(ep["status"]["hosts"]["host"].is_string(), "{ep}");
    let db = api
        .get(&format!("{PROJECT}/branches/dev/databases/app-db"), &[])
        .expect("database exists");
    assert_eq!(db["status"]["postgres_database"], "app_db");
    assert_eq!(
        db["status"]["role"],
        "projects/e2e-app/branches/dev/roles/app-owner"
    );
    // The server-made children are there too.
    assert!(api
        .get(&format!("{PROJECT}/branches/dev/endpoints/primary"), &[])
        .is_some());

    // The database is real: reachable on the read-only endpoint with a fresh
    // credential, owned by the role, on a replica.
    let row = query_via_credential(
        &emu,
        &b,
        "reader",
        "app_db",
        "SELECT pg_get_userbyid(datdba)::text, pg_is_in_recovery() FROM pg_database WHERE datname = current_database()",
    );
    assert_eq!(row, vec!["app_owner".to_string(), "true".to_string()]);

    // Right after deploy: nothing to do (status maps back to the config).
    assert_no_op(&emu, &b);

    // Max CU: an in-place update.
    b.edit(
        "autoscaling_limit_max_cu: 1\n",
        "autoscaling_limit_max_cu: 2\n",
    );
    let plan = plan_json(&emu, &b);
    assert_eq!(actions_of(&plan, READER), serde_json::json!(["update"]));
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    let ep = api
        .get(&format!("{PROJECT}/branches/dev/endpoints/reader"), &[])
        .expect("endpoint still exists");
    assert_eq!(ep["status"]["autoscaling_limit_max_cu"].as_f64(), Some(2.0));
    assert_eq!(
        b.state_id(READER).as_deref(),
        Some("projects/e2e-app/branches/dev/endpoints/reader"),
        "an update keeps the endpoint"
    );
    assert_no_op(&emu, &b);

    // The endpoint id is immutable: a replacement.
    b.edit("endpoint_id: reader\n", "endpoint_id: reader-two\n");
    let plan = plan_json(&emu, &b);
    let actions = actions_of(&plan, READER);
    assert!(
        actions.as_array().is_some_and(|a| a.len() == 2
            && a.contains(&serde_json::json!("delete"))
            && a.contains(&serde_json::json!("create"))),
        "{actions}"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(api
        .get(&format!("{PROJECT}/branches/dev/endpoints/reader"), &[])
        .is_none());
    assert!(api
        .get(&format!("{PROJECT}/branches/dev/endpoints/reader-two"), &[])
        .is_some());
    assert_no_op(&emu, &b);

    // Destroy: nothing left, no server running.
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    let projects = api.list(
        "/api/2.0/postgres/projects",
        "projects",
        &[("show_deleted", "true".into())],
    );
    assert!(projects.is_empty(), "{projects:?}");
    let mut left = servers_under(&emu.data_dir);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        left = servers_under(&emu.data_dir);
    }
    assert!(left.is_empty(), "servers left: {left:?}");
}

/// An endpoint still reconciling an earlier change answers 409 to a mutation (§1.3);
/// deploy retries until it settles. A branch past its `expire_time` is deleted by the
/// workspace; the next plan recreates it and its children.
#[test]
fn deploy_waits_out_reconciliation_and_recreates_an_expired_branch() {
    // Records only; every endpoint operation leaves its endpoint reconciling for 6 s.
    let emu = Emulator::start_with(&["--no-postgres", "--transition-ms", "6000"]);
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_autoscaling");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let reader = format!("{PROJECT}/branches/dev/endpoints/reader");

    // A change made outside the bundle starts a reconciliation: a second mutation of
    // the endpoint is refused with 409 meanwhile, and GET shows `pending_state`.
    let body = serde_json::json!({"spec": {"autoscaling_limit_max_cu": 1}});
    let (s, _) = api.patch(
        &format!("{reader}?update_mask=spec.autoscaling_limit_max_cu"),
        &body,
    );
    assert_eq!(s, 200);
    let (s, refused) = api.patch(
        &format!("{reader}?update_mask=spec.autoscaling_limit_max_cu"),
        &body,
    );
    assert_eq!(s, 409, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("reconciliation")),
        "{refused}"
    );
    let ep = api.get(&reader, &[]).expect("endpoint");
    assert!(ep["status"]["pending_state"].is_string(), "{ep}");

    // Deploy's update of the same endpoint is retried until the endpoint settles.
    b.edit(
        "autoscaling_limit_max_cu: 1\n",
        "autoscaling_limit_max_cu: 2\n",
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let ep = api.get(&reader, &[]).expect("endpoint");
    assert_eq!(ep["status"]["autoscaling_limit_max_cu"].as_f64(), Some(2.0));

    // The dev branch expires a few seconds from now: the workspace deletes it.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    b.edit("no_expiry: true\n", &format!("expire_time: \"{at}\"\n"));
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    let dev = format!("{PROJECT}/branches/dev");
    let mut gone = false;
    for _ in 0..150 {
        if api.get(&dev, &[]).is_none() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(gone, "the expired branch was not deleted");
    assert!(api.get(&reader, &[]).is_none(), "its endpoints go with it");

    // The next plan recreates the branch and everything on it.
    b.edit(&format!("expire_time: \"{at}\"\n"), "no_expiry: true\n");
    let plan = plan_json(&emu, &b);
    for addr in [
        "resources.postgres_branches.dev",
        READER,
        "resources.postgres_roles.owner",
        "resources.postgres_databases.app_db",
    ] {
        assert_eq!(
            actions_of(&plan, addr),
            serde_json::json!(["create"]),
            "{addr}: {plan}"
        );
    }
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(api.get(&dev, &[]).is_some());
    assert!(api.get(&reader, &[]).is_some());
    assert_no_op(&emu, &b);
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
}
