//! Lakebase Autoscaling (`/api/2.0/postgres/...`) against a served emulator: the REST
//! contract (records only) and, on real PostgreSQL, branches that hold their source's rows
//! at a point in time, read-only endpoints, in-place compute updates, scale to zero with
//! wake-on-connect, and deletes that leave no server behind.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn postgres_installed() -> bool {
    match lakebundle_emulator::postgres::server::PgBinaries::discover() {
        Ok(_) => true,
        Err(e) => {
            common::prereq::postgres_missing(&e.to_string());
            false
        }
    }
}

async fn call(
    emu: &common::Emulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{}/api/2.0/postgres/{path}", emu.url))
        .bearer_auth(&emu.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(emu: &common::Emulator, path: &str) -> (u16, Value) {
    call(emu, reqwest::Method::GET, path, None).await
}

/// Poll an operation (by its raw name) until done; returns it.
async fn finish(emu: &common::Emulator, op: &Value) -> Value {
    let name = op["name"].as_str().expect("operation name");
    assert!(name.contains("/operations/"), "{op}");
    let t0 = Instant::now();
    loop {
        let (s, v) = get(emu, name).await;
        assert_eq!(s, 200, "polling {name}: {v}");
        if v["done"] == json!(true) {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{name} not done: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run a mutation and wait for its operation to succeed; returns the operation's response.
async fn mutate(
    emu: &common::Emulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (s, op) = call(emu, method.clone(), path, body).await;
    assert_eq!(s, 200, "{method} {path}: {op}");
    let done = finish(emu, &op).await;
    assert!(
        done.get("error").is_none(),
        "{method} {path} failed: {done}"
    );
    let response = done["response"].clone();
    // An endpoint may still reconcile after its operation (§1.3): wait, as clients do.
    if response["status"]["pending_state"].is_string() {
        let name = response["name"].as_str().expect("name");
        let t0 = Instant::now();
        loop {
            let (s, v) = get(emu, name).await;
            if s == 404 || v["status"]["pending_state"].is_null() {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{name} keeps reconciling: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    response
}

async fn post(emu: &common::Emulator, path: &str, body: Value) -> Value {
    mutate(emu, reqwest::Method::POST, path, Some(body)).await
}

async fn credential(emu: &common::Emulator, endpoint: &str) -> String {
    let (s, v) = call(
        emu,
        reqwest::Method::POST,
        "credentials",
        Some(json!({"endpoint": endpoint})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["expire_time"].is_string(), "{v}");
    v["token"].as_str().expect("token").to_string()
}

async fn host_of(emu: &common::Emulator, endpoint: &str) -> String {
    let (s, v) = get(emu, endpoint).await;
    assert_eq!(s, 200, "{v}");
    v["status"]["hosts"]["host"]
        .as_str()
        .unwrap_or_else(|| panic!("no host: {v}"))
        .to_string()
}

async fn connect(host: &str, token: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (h, port) = match host.split_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().expect("port")),
        None => (host.to_string(), 5432),
    };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&h)
        .port(port)
        .user("local-user@example.com")
        .password(token)
        .dbname("databricks_postgres")
        .connect_timeout(Duration::from_secs(60));
    let (c, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

async fn count(c: &tokio_postgres::Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

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

async fn wait_state(emu: &common::Emulator, endpoint: &str, want: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (_, v) = get(emu, endpoint).await;
        if v["status"]["current_state"] == json!(want) {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{endpoint} never {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_contract_operations_names_errors_and_masks() {
    let emu = common::Emulator::start_with(&["--no-postgres"]);
    // Missing and malformed ids.
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "projects",
        Some(json!({"spec": {}})),
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap_or("").contains("project_id"),
        "{v}"
    );
    let (s, _) = call(
        &emu,
        reqwest::Method::POST,
        "projects?project_id=Bad_Id",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 400);

    // Create answers an operation; it stays fetchable after it is done and carries the
    // project; GET shows status, never spec.
    let (s, op) = call(
        &emu,
        reqwest::Method::POST,
        "projects?project_id=shop",
        Some(json!({"spec": {"display_name": "Shop", "pg_version": 17}})),
    )
    .await;
    assert_eq!(s, 200, "{op}");
    assert!(
        op["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("projects/shop/operations/"),
        "{op}"
    );
    let done = finish(&emu, &op).await;
    assert_eq!(done["response"]["name"], "projects/shop");
    assert_eq!(
        finish(&emu, &op).await,
        done,
        "a done operation is fetchable again"
    );
    let (_, p) = get(&emu, "projects/shop").await;
    assert!(p.get("spec").is_none(), "{p}");
    assert_eq!(p["status"]["display_name"], "Shop");
    assert_eq!(p["status"]["pg_version"], 17);
    assert_eq!(p["status"]["history_retention_duration"], "604800s");
    assert_eq!(
        p["status"]["default_branch"],
        "projects/shop/branches/production"
    );
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "projects?project_id=shop",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("ALREADY_EXISTS")),
        "{v}"
    );
    let (s, v) = get(&emu, "projects/nope").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{v}"
    );

    // The production branch and its primary endpoint come with the project and are
    // managed by it.
    let (_, b) = get(&emu, "projects/shop/branches/production").await;
    assert_eq!(b["status"]["default"], true, "{b}");
    assert_eq!(b["status"]["current_state"], "READY", "{b}");
    let primary = "projects/shop/branches/production/endpoints/primary";
    let (_, e) = get(&emu, primary).await;
    assert_eq!(
        e["status"]["endpoint_type"], "ENDPOINT_TYPE_READ_WRITE",
        "{e}"
    );
    for path in ["projects/shop/branches/production", primary] {
        let (s, v) = call(&emu, reqwest::Method::DELETE, path, None).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error_code"], "BAD_REQUEST");
        assert_eq!(
            v["details"][0]["metadata"]["declarative_context"], "MANAGED_BY_PARENT",
            "{v}"
        );
    }

    // Masks: immutable and unknown paths are refused, a named path needs its value.
    let (s, v) = call(
        &emu,
        reqwest::Method::PATCH,
        "projects/shop?update_mask=spec.pg_version",
        Some(json!({"spec": {"pg_version": 16}})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        &emu,
        reqwest::Method::PATCH,
        "projects/shop?update_mask=spec.display_name",
        Some(json!({"spec": {}})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let p = mutate(
        &emu,
        reqwest::Method::PATCH,
        "projects/shop?update_mask=spec.display_name",
        Some(json!({"spec": {"display_name": "Shop 2", "pg_version": 99}})),
    )
    .await;
    assert_eq!(p["status"]["display_name"], "Shop 2");
    assert_eq!(
        p["status"]["pg_version"], 17,
        "unmasked fields are not applied"
    );

    // Adopting the server-made primary endpoint with replace_existing updates it in place.
    let (_, before) = get(&emu, primary).await;
    let e = post(
        &emu,
        "projects/shop/branches/production/endpoints?endpoint_id=primary&replace_existing=true",
        json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_WRITE", "autoscaling_limit_min_cu": 0.5,
                        "autoscaling_limit_max_cu": 4, "suspend_timeout_duration": "600s"}}),
    )
    .await;
    assert_eq!(e["uid"], before["uid"]);
    assert_eq!(e["status"]["suspend_timeout_duration"], "600s");
    assert_eq!(e["status"]["autoscaling_limit_max_cu"], 4.0);
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "projects/shop/branches/production/endpoints?endpoint_id=primary",
        Some(json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_WRITE"}})),
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (409, Some("ALREADY_EXISTS")),
        "{v}"
    );
    let (s, v) = call(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.autoscaling_limit_max_cu"),
        Some(json!({"spec": {"autoscaling_limit_max_cu": 40}})),
    )
    .await;
    assert_eq!(s, 400, "max − min over 16 CU: {v}");

    // Roles and databases: duplicates are 400 BAD_REQUEST, an unknown owner is 404.
    let branch = "projects/shop/branches/production";
    let r = post(
        &emu,
        &format!("{branch}/roles?role_id=app-role"),
        json!({"spec": {"postgres_role": "app_role", "attributes": {"createdb": true}}}),
    )
    .await;
    assert_eq!(
        r["status"]["auth_method"], "PG_PASSWORD_SCRAM_SHA_256",
        "{r}"
    );
    assert_eq!(
        r["status"]["identity_type"], "IDENTITY_TYPE_UNSPECIFIED",
        "{r}"
    );
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        &format!("{branch}/roles?role_id=app-role"),
        Some(json!({"spec": {"postgres_role": "app_role"}})),
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (400, Some("role with that name already exists"))
    );
    let (s, v) = call(
        &emu,
        reqwest::Method::PATCH,
        &format!("{branch}/roles/app-role?update_mask=spec.postgres_role"),
        Some(json!({"spec": {"postgres_role": "other"}})),
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE")),
        "{v}"
    );
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        &format!("{branch}/databases?database_id=app-db"),
        Some(json!({"spec": {"role": format!("{branch}/roles/ghost")}})),
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{v}"
    );
    let d = post(
        &emu,
        &format!("{branch}/databases?database_id=app-db"),
        json!({"spec": {"role": format!("{branch}/roles/app-role"), "postgres_database": "app_db"}}),
    )
    .await;
    assert_eq!(d["status"]["postgres_database"], "app_db");

    // Lists page.
    for i in 0..3 {
        post(&emu, &format!("projects?project_id=p{i}"), json!({})).await;
    }
    let (_, page) = get(&emu, "projects?page_size=2").await;
    assert_eq!(page["projects"].as_array().map(Vec::len), Some(2), "{page}");
    let token = page["next_page_token"].as_str().expect("next page");
    let (_, rest) = get(&emu, &format!("projects?page_size=2&page_token={token}")).await;
    assert_eq!(rest["projects"].as_array().map(Vec::len), Some(2), "{rest}");
    assert!(rest.get("next_page_token").is_none(), "{rest}");

    // A delete operation carries an (empty) response; soft-deleted projects are gone from
    // GET and listed with show_deleted; undelete brings them back.
    let gone = mutate(&emu, reqwest::Method::DELETE, "projects/p0", None).await;
    assert!(gone.is_object(), "{gone}");
    assert_eq!(get(&emu, "projects/p0").await.0, 404);
    let (_, all) = get(&emu, "projects?show_deleted=true").await;
    assert!(
        all["projects"].as_array().is_some_and(|a| a
            .iter()
            .any(|p| p["name"] == "projects/p0" && p["delete_time"].is_string())),
        "{all}"
    );
    mutate(&emu, reqwest::Method::POST, "projects/p0/undelete", None).await;
    assert_eq!(get(&emu, "projects/p0").await.0, 200);
    mutate(
        &emu,
        reqwest::Method::DELETE,
        "projects/p0?purge=true",
        None,
    )
    .await;
    let (_, all) = get(&emu, "projects?show_deleted=true").await;
    assert!(!all.to_string().contains("projects/p0\""), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branches_replicas_and_compute_updates_on_real_postgres() {
    if !postgres_installed() {
        return;
    }
    let emu = common::Emulator::start();
    post(
        &emu,
        "projects?project_id=app",
        json!({"spec": {"display_name": "App"}}),
    )
    .await;
    let primary = "projects/app/branches/production/endpoints/primary";
    let token = credential(&emu, primary).await;
    let host = host_of(&emu, primary).await;
    let c = connect(&host, &token)
        .await
        .expect("connect to the primary");
    c.batch_execute("CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1,'a'),(2,'b'),(3,'c')")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.batch_execute("INSERT INTO orders VALUES (4,'d'),(5,'e')")
        .await
        .expect("write later");

    // A branch at the earlier time holds only the earlier rows; one from now holds all.
    let dev = post(
        &emu,
        "projects/app/branches?branch_id=dev",
        json!({"spec": {"source_branch": "projects/app/branches/production", "source_branch_time": at, "no_expiry": true}}),
    )
    .await;
    assert_eq!(dev["status"]["current_state"], "READY", "{dev}");
    assert_eq!(dev["status"]["default"], false);
    let dev_primary = "projects/app/branches/dev/endpoints/primary";
    let dev_c = connect(
        &host_of(&emu, dev_primary).await,
        &credential(&emu, dev_primary).await,
    )
    .await
    .expect("connect to dev");
    assert_eq!(count(&dev_c, "orders").await, 3);
    dev_c
        .batch_execute("INSERT INTO orders VALUES (100,'dev only')")
        .await
        .expect("dev is writable");
    assert_eq!(
        count(&c, "orders").await,
        5,
        "the source does not see the branch's writes"
    );
    post(&emu, "projects/app/branches?branch_id=now", json!({})).await;
    let now_primary = "projects/app/branches/now/endpoints/primary";
    let now_c = connect(
        &host_of(&emu, now_primary).await,
        &credential(&emu, now_primary).await,
    )
    .await
    .expect("connect to now");
    assert_eq!(count(&now_c, "orders").await, 5);
    let (_, roles) = get(&emu, "projects/app/branches/dev/roles").await;
    assert!(
        roles.to_string().contains("local-user@example.com"),
        "roles are inherited: {roles}"
    );

    // A read-only endpoint sees the primary's writes and refuses its own.
    let ro = post(
        &emu,
        "projects/app/branches/production/endpoints?endpoint_id=reader",
        json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_ONLY"}}),
    )
    .await;
    let ro_host = ro["status"]["hosts"]["host"]
        .as_str()
        .expect("ro host")
        .to_string();
    assert_ne!(ro_host, host);
    let ro_c = connect(
        &ro_host,
        &credential(&emu, ro["name"].as_str().unwrap_or_default()).await,
    )
    .await
    .expect("connect to the reader");
    c.batch_execute("INSERT INTO orders VALUES (6,'f')")
        .await
        .expect("write");
    let t0 = Instant::now();
    while count(&ro_c, "orders").await != 6 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the reader never saw row 6"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = ro_c
        .batch_execute("INSERT INTO orders VALUES (7,'g')")
        .await;
    assert!(
        refused.as_ref().is_err_and(
            |e| e.code() == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION)
        ),
        "{refused:?}"
    );

    // Max CU is an in-place update: same endpoint and address, new limit reported; the
    // server restarts for its new shared_buffers, so the client reconnects.
    let (_, before) = get(&emu, primary).await;
    let (s, op) = call(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.autoscaling_limit_max_cu"),
        Some(json!({"spec": {"autoscaling_limit_max_cu": 4}})),
    )
    .await;
    assert_eq!(s, 200, "{op}");
    let done = finish(&emu, &op).await;
    assert_eq!(
        done["response"]["status"]["autoscaling_limit_max_cu"], 4.0,
        "{done}"
    );
    assert_eq!(done["response"]["uid"], before["uid"]);
    let c = connect(&host, &token)
        .await
        .expect("reconnect to the primary");
    assert_eq!(count(&c, "orders").await, 6);

    // Roles and databases are PostgreSQL's own.
    let branch = "projects/app/branches/production";
    post(
        &emu,
        &format!("{branch}/roles?role_id=app-role"),
        json!({"spec": {"postgres_role": "app_role"}}),
    )
    .await;
    post(
        &emu,
        &format!("{branch}/databases?database_id=app-db"),
        json!({"spec": {"role": format!("{branch}/roles/app-role"), "postgres_database": "app_db"}}),
    )
    .await;
    let owner: String = c
        .query_one(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'app_db'",
            &[],
        )
        .await
        .expect("app_db exists")
        .get(0);
    assert_eq!(owner, "app_role");

    // Deleting the read-only endpoint and the branches, then the project, leaves no server
    // and no listener.
    mutate(
        &emu,
        reqwest::Method::DELETE,
        ro["name"].as_str().unwrap_or_default(),
        None,
    )
    .await;
    mutate(
        &emu,
        reqwest::Method::DELETE,
        "projects/app/branches/dev?purge=true",
        None,
    )
    .await;
    assert_eq!(get(&emu, "projects/app/branches/dev").await.0, 404);
    mutate(
        &emu,
        reqwest::Method::DELETE,
        "projects/app?purge=true",
        None,
    )
    .await;
    drop((c, dev_c, now_c, ro_c));
    assert_eq!(get(&emu, "projects/app").await.0, 404);
    let left = servers_under(emu.data_dir());
    assert!(left.is_empty(), "servers left: {left:?}");
    assert!(
        connect(&host, &token).await.is_err(),
        "the endpoint's address still answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_endpoint_suspends_and_a_connection_wakes_it() {
    if !postgres_installed() {
        return;
    }
    // 60 s × 0.05 = 3 s of idleness before suspending.
    let emu = common::Emulator::start_with(&["--suspend-scale", "0.05"]);
    post(
        &emu,
        "projects?project_id=sleepy",
        json!({"spec": {"default_endpoint_settings": {"autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 1, "suspend_timeout_duration": "60s"}}}),
    )
    .await;
    let primary = "projects/sleepy/branches/production/endpoints/primary";
    let token = credential(&emu, primary).await;
    let host = host_of(&emu, primary).await;
    {
        let c = connect(&host, &token).await.expect("connect");
        c.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)")
            .await
            .expect("write");
        // An open connection keeps the compute up past the timeout.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            get(&emu, primary).await.1["status"]["current_state"],
            "ACTIVE"
        );
    }
    wait_state(&emu, primary, "IDLE").await;
    assert!(
        servers_under(emu.data_dir()).is_empty(),
        "suspended means no server"
    );

    // The next connection to the same address wakes it and sees the data.
    let c = connect(&host, &token)
        .await
        .expect("a connection wakes the endpoint");
    assert_eq!(count(&c, "t").await, 2);
    assert_eq!(
        get(&emu, primary).await.1["status"]["current_state"],
        "ACTIVE"
    );
    drop(c);

    // no_suspension keeps it up; disabled suspends and refuses connections.
    mutate(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.no_suspension"),
        Some(json!({"spec": {"no_suspension": true}})),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        get(&emu, primary).await.1["status"]["current_state"],
        "ACTIVE"
    );
    mutate(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.disabled"),
        Some(json!({"spec": {"disabled": true}})),
    )
    .await;
    wait_state(&emu, primary, "IDLE").await;
    assert!(
        connect(&host, &token).await.is_err(),
        "a disabled endpoint refuses connections"
    );
    mutate(
        &emu,
        reqwest::Method::DELETE,
        "projects/sleepy?purge=true",
        None,
    )
    .await;
    assert!(servers_under(emu.data_dir()).is_empty());
}

async fn show(c: &tokio_postgres::Client, setting: &str) -> String {
    c.query_one(&format!("SHOW {setting}"), &[])
        .await
        .unwrap_or_else(|e| panic!("SHOW {setting}: {e}"))
        .get(0)
}

/// Connect with a fresh credential to an endpoint's host.
async fn open(emu: &common::Emulator, endpoint: &str) -> tokio_postgres::Client {
    connect(
        &host_of(emu, endpoint).await,
        &credential(emu, endpoint).await,
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {endpoint}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cu_limits_and_pg_settings_reach_each_endpoints_server() {
    if !postgres_installed() {
        return;
    }
    let emu = common::Emulator::start();
    // The project's default settings reach the endpoints made with it.
    post(
        &emu,
        "projects?project_id=tuned",
        json!({"spec": {"default_endpoint_settings": {
            "autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 2,
            "pg_settings": {"statement_timeout": "5min"}}}}),
    )
    .await;
    let primary = "projects/tuned/branches/production/endpoints/primary";
    let c = open(&emu, primary).await;
    assert_eq!(show(&c, "shared_buffers").await, "32MB", "2 CU × 16 MB");
    assert_eq!(show(&c, "work_mem").await, "2MB");
    assert_eq!(show(&c, "statement_timeout").await, "5min");

    // A max CU change restarts the server with the new memory.
    mutate(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.autoscaling_limit_max_cu"),
        Some(json!({"spec": {"autoscaling_limit_max_cu": 4}})),
    )
    .await;
    let c = open(&emu, primary).await;
    assert_eq!(show(&c, "shared_buffers").await, "64MB");
    assert_eq!(show(&c, "work_mem").await, "4MB");

    // A setting PostgreSQL reloads applies without a restart: the open session survives.
    mutate(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.settings"),
        Some(json!({"spec": {"settings": {"pg_settings": {"work_mem": "12MB", "log_min_duration_statement": "250"}}}})),
    )
    .await;
    let fresh = open(&emu, primary).await;
    assert_eq!(show(&fresh, "work_mem").await, "12MB");
    assert_eq!(show(&fresh, "log_min_duration_statement").await, "250ms");
    assert_eq!(show(&fresh, "shared_buffers").await, "64MB");
    c.batch_execute("SELECT 1")
        .await
        .expect("the session before the reload is still open");
    let (_, ep) = get(&emu, primary).await;
    assert_eq!(
        ep["status"]["settings"]["pg_settings"]["work_mem"], "12MB",
        "{ep}"
    );

    // A value PostgreSQL refuses fails the operation and changes nothing.
    let (s, op) = call(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.settings"),
        Some(json!({"spec": {"settings": {"pg_settings": {"work_mem": "lots"}}}})),
    )
    .await;
    assert_eq!(s, 200, "{op}");
    let failed = finish(&emu, &op).await;
    assert_eq!(
        failed["error"]["error_code"], "INVALID_PARAMETER_VALUE",
        "{failed}"
    );
    let msg = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("work_mem"), "{msg}");
    let (_, ep) = get(&emu, primary).await;
    assert_eq!(ep["status"]["settings"]["pg_settings"]["work_mem"], "12MB");
    assert_eq!(show(&open(&emu, primary).await, "work_mem").await, "12MB");

    // Settings the workspace manages are refused at once (once the failed change settled).
    let t0 = Instant::now();
    while get(&emu, primary).await.1["status"]["pending_state"].is_string() {
        assert!(t0.elapsed() < Duration::from_secs(60), "never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, v) = call(
        &emu,
        reqwest::Method::PATCH,
        &format!("{primary}?update_mask=spec.settings"),
        Some(json!({"spec": {"settings": {"pg_settings": {"port": "6000"}}}})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_code"], "INVALID_PARAMETER_VALUE", "{v}");

    // A read-only endpoint's replica runs with its own limits and settings.
    let reader = post(
        &emu,
        "projects/tuned/branches/production/endpoints?endpoint_id=reader",
        json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_ONLY",
            "autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 1,
            "settings": {"pg_settings": {"work_mem": "3MB"}}}}),
    )
    .await;
    let r = open(&emu, reader["name"].as_str().unwrap_or_default()).await;
    assert_eq!(show(&r, "shared_buffers").await, "16MB");
    assert_eq!(show(&r, "work_mem").await, "3MB");
    assert_eq!(
        show(&open(&emu, primary).await, "shared_buffers").await,
        "64MB"
    );
    mutate(
        &emu,
        reqwest::Method::DELETE,
        "projects/tuned?purge=true",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_endpoint_suspends_on_its_own() {
    if !postgres_installed() {
        return;
    }
    // 60 s × 0.05 = 3 s of idleness before the reader suspends; the primary never does.
    let emu = common::Emulator::start_with(&["--suspend-scale", "0.05"]);
    post(
        &emu,
        "projects?project_id=split",
        json!({"spec": {"default_endpoint_settings": {
            "autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 1, "no_suspension": true}}}),
    )
    .await;
    let primary = "projects/split/branches/production/endpoints/primary";
    let reader = "projects/split/branches/production/endpoints/reader";
    post(
        &emu,
        "projects/split/branches/production/endpoints?endpoint_id=reader",
        json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_ONLY", "suspend_timeout_duration": "60s"}}),
    )
    .await;
    let c = open(&emu, primary).await;
    c.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (1)")
        .await
        .expect("write");
    {
        let r = open(&emu, reader).await;
        let t0 = Instant::now();
        while r.query_one("SELECT count(*) FROM t", &[]).await.is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the reader never saw t"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    wait_state(&emu, reader, "IDLE").await;
    assert_eq!(
        get(&emu, primary).await.1["status"]["current_state"],
        "ACTIVE"
    );
    let running = servers_under(emu.data_dir());
    assert!(
        running.iter().any(|l| l.contains("/data"))
            && !running.iter().any(|l| l.contains("replica-")),
        "the primary runs, the reader's replica does not: {running:?}"
    );
    // The primary's open session was never interrupted; its writes reach the reader
    // when a connection wakes it.
    c.batch_execute("INSERT INTO t VALUES (2)")
        .await
        .expect("the primary keeps serving");
    let r = open(&emu, reader).await;
    assert_eq!(
        get(&emu, reader).await.1["status"]["current_state"],
        "ACTIVE"
    );
    let t0 = Instant::now();
    while count(&r, "t").await != 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the woken reader never saw row 2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        servers_under(emu.data_dir())
            .iter()
            .any(|l| l.contains("replica-")),
        "the reader's replica runs again"
    );
    drop((c, r));
    mutate(
        &emu,
        reqwest::Method::DELETE,
        "projects/split?purge=true",
        None,
    )
    .await;
    assert!(servers_under(emu.data_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciling_endpoints_refuse_mutations_and_expired_branches_go() {
    // Records only; an endpoint reconciles for 5 s after each of its operations.
    let emu = common::Emulator::start_with(&["--no-postgres", "--transition-ms", "5000"]);
    post(&emu, "projects?project_id=recon", json!({"spec": {}})).await;
    let branch = "projects/recon/branches/production";
    let (s, op) = call(
        &emu,
        reqwest::Method::POST,
        &format!("{branch}/endpoints?endpoint_id=reader"),
        Some(json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_ONLY"}})),
    )
    .await;
    assert_eq!(s, 200, "{op}");
    let done = finish(&emu, &op).await;
    let reader = format!("{branch}/endpoints/reader");
    assert_eq!(
        done["response"]["status"]["pending_state"], "ACTIVE",
        "{done}"
    );
    let (_, ep) = get(&emu, &reader).await;
    assert!(ep["status"]["pending_state"].is_string(), "{ep}");
    for (method, path, body) in [
        (reqwest::Method::DELETE, reader.clone(), None),
        (
            reqwest::Method::PATCH,
            format!("{reader}?update_mask=spec.autoscaling_limit_max_cu"),
            Some(json!({"spec": {"autoscaling_limit_max_cu": 2}})),
        ),
        (
            reqwest::Method::POST,
            format!("{branch}/endpoints?endpoint_id=reader&replace_existing=true"),
            Some(json!({"spec": {"endpoint_type": "ENDPOINT_TYPE_READ_ONLY"}})),
        ),
    ] {
        let (s, v) = call(&emu, method.clone(), &path, body).await;
        assert_eq!(s, 409, "{method} {path}: {v}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("reconciliation")),
            "{v}"
        );
    }
    // Once settled, the endpoint takes changes again.
    let t0 = Instant::now();
    while get(&emu, &reader).await.1["status"]["pending_state"].is_string() {
        assert!(t0.elapsed() < Duration::from_secs(60), "never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mutate(&emu, reqwest::Method::DELETE, &reader, None).await;
    assert_eq!(get(&emu, &reader).await.0, 404);

    // Expiry fields exclude each other; a branch past its expire_time is deleted.
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "projects/recon/branches?branch_id=both",
        Some(json!({"spec": {"ttl": "3600s", "no_expiry": true}})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let short = post(
        &emu,
        "projects/recon/branches?branch_id=short",
        json!({"spec": {"expire_time": at}}),
    )
    .await;
    assert_eq!(
        short["status"]["expire_time"].as_str().map(|_| ()),
        Some(()),
        "{short}"
    );
    post(
        &emu,
        "projects/recon/branches?branch_id=kept",
        json!({"spec": {"ttl": "86400s"}}),
    )
    .await;
    let t0 = Instant::now();
    while get(&emu, "projects/recon/branches/short").await.0 != 404 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the expired branch is still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get(&emu, "projects/recon/branches/short/endpoints/primary")
            .await
            .0,
        404
    );
    let (_, listed) = get(&emu, "projects/recon/branches?show_deleted=true").await;
    assert!(
        !listed.to_string().contains("branches/short"),
        "an expired branch is gone for good: {listed}"
    );
    assert_eq!(get(&emu, "projects/recon/branches/kept").await.0, 200);
    assert_eq!(get(&emu, branch).await.0, 200);
}
