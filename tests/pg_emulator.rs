//! Real PostgreSQL through the emulator binary: instances over REST,
//! `lakebundle credential` / `lakebundle psql`, catalogs, a synced table,
//! and no server left behind. Skips when PostgreSQL is not installed.

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
        .request(method, format!("{}{path}", emu.url))
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

async fn wait_available(emu: &common::Emulator, name: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (s, v) = call(
            emu,
            reqwest::Method::GET,
            &format!("/api/2.0/database/instances/{name}"),
            None,
        )
        .await;
        if s == 200 && v["state"] == "AVAILABLE" {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name} never AVAILABLE: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(
    host: &str,
    port: u16,
    user: &str,
    token: &str,
    db: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(host)
        .port(port)
        .user(user)
        .password(token)
        .dbname(db);
    let (c, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_instances_are_real_servers_end_to_end() {
    if !postgres_installed() {
        return;
    }
    let lake = tempfile::tempdir().expect("lake");
    let src = lake
        .path()
        .join("dev_catalog/dev_schema/customer_features.csv");
    std::fs::create_dir_all(src.parent().expect("parent")).expect("mkdir");
    std::fs::write(
        &src,
        "customer_id,segment,score\n1,gold,0.9\n2,silver,0.5\n",
    )
    .expect("source");
    let lake_dir = lake.path().display().to_string();
    let mut emu = common::Emulator::start_with(&["--lake-dir", &lake_dir]);

    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "/api/2.0/database/instances",
        Some(json!({"name": "my-instance", "capacity": "CU_1"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let inst = wait_available(&emu, "my-instance").await;
    let dns = inst["read_write_dns"]
        .as_str()
        .expect("read_write_dns")
        .to_string();

    // `lakebundle credential` outside any bundle: KEY is the instance name.
    let cwd = tempfile::tempdir().expect("cwd");
    let out = emu
        .lakebundle()
        .current_dir(cwd.path())
        .args(["credential", "my-instance", "-o", "json"])
        .output()
        .expect("credential");
    assert!(
        out.status.success(),
        "credential: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cred: Value = serde_json::from_slice(&out.stdout).expect("json");
    let (host, port) = (
        cred["host"].as_str().expect("host").to_string(),
        cred["port"].as_u64().expect("port") as u16,
    );
    assert_eq!(
        if port == 5432 {
            host.clone()
        } else {
            format!("{host}:{port}")
        },
        dns
    );
    let user = cred["user"].as_str().expect("user").to_string();
    let token = cred["token"].as_str().expect("token").to_string();
    assert!(cred["connection_string"]
        .as_str()
        .is_some_and(|c| c.starts_with("postgresql://")));

    let c = connect(&host, port, &user, &token, "databricks_postgres")
        .await
        .expect("login with the credential");
    let who: String = c
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(who, user);

    // `lakebundle psql` passes extra args through and the password by environment.
    if std::process::Command::new("psql")
        .arg("--version")
        .output()
        .is_ok()
    {
        let out = emu
            .lakebundle()
            .current_dir(cwd.path())
            .args([
                "psql",
                "my-instance",
                "--",
                "-At",
                "-c",
                "SELECT current_user",
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), user);
    }

    // The credential psql minted did not replace ours: a token works until it expires.
    assert!(
        connect(&host, port, &user, &token, "databricks_postgres")
            .await
            .is_ok(),
        "the first token stopped working after `lakebundle psql`"
    );
    let out = emu
        .lakebundle()
        .current_dir(cwd.path())
        .args(["credential", "my-instance", "-o", "json"])
        .output()
        .expect("credential");
    let cred: Value = serde_json::from_slice(&out.stdout).expect("json");
    let token = cred["token"].as_str().expect("token").to_string();
    assert!(connect(&host, port, &user, &token, "databricks_postgres")
        .await
        .is_ok());

    // A catalog creates its database; a synced table loads the source rows.
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "/api/2.0/database/catalogs",
        Some(json!({"name": "my_catalog", "database_instance_name": "my-instance", "database_name": "my_database", "create_database_if_not_exists": true})),
    ).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "/api/2.0/database/synced_tables",
        Some(json!({
            "name": "my_catalog.public.customer_features",
            "database_instance_name": "my-instance",
            "logical_database_name": "my_database",
            "spec": {
                "source_table_full_name": "dev_catalog.dev_schema.customer_features",
                "primary_key_columns": ["customer_id"],
                "scheduling_policy": "SNAPSHOT",
                "new_pipeline_spec": {"storage_catalog": "dev_catalog", "storage_schema": "dev_schema"}
            }
        })),
    ).await;
    assert_eq!(s, 200, "{v}");
    let db = connect(&host, port, &user, &token, "my_database")
        .await
        .expect("login to the catalog's database");
    let t0 = Instant::now();
    let rows = loop {
        if let Ok(r) = db
            .query(
                "SELECT customer_id, segment FROM public.customer_features ORDER BY 1",
                &[],
            )
            .await
        {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "synced table never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![(1, "gold".to_string()), (2, "silver".to_string())]
    );
    drop((c, db));

    // Delete with purge: the server and its files are gone.
    let (s, v) = call(
        &emu,
        reqwest::Method::DELETE,
        "/api/2.0/database/instances/my-instance?purge=true",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let t0 = Instant::now();
    while !servers_under(emu.data_dir()).is_empty() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        servers_under(emu.data_dir()).is_empty(),
        "{:?}",
        servers_under(emu.data_dir())
    );

    // Another instance, then stopping the emulator stops its server too.
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "/api/2.0/database/instances",
        Some(json!({"name": "second", "capacity": "CU_1"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_available(&emu, "second").await;
    assert!(
        !servers_under(emu.data_dir()).is_empty(),
        "second instance runs a server"
    );
    emu.stop();
    assert!(
        servers_under(emu.data_dir()).is_empty(),
        "{:?}",
        servers_under(emu.data_dir())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_emulator_readopts_its_running_servers() {
    if !postgres_installed() {
        return;
    }
    let mut emu = common::Emulator::start();
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "/api/2.0/database/instances",
        Some(json!({"name": "kept", "capacity": "CU_1"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let before = wait_available(&emu, "kept").await;
    emu.kill9();
    // kill -9 cannot stop the server: it keeps running until adopted.
    assert!(
        !servers_under(emu.data_dir()).is_empty(),
        "server survives the emulator"
    );
    emu.restart();
    let after = wait_available(&emu, "kept").await;
    assert_eq!(after["read_write_dns"], before["read_write_dns"]);
    let (s, cred) = call(
        &emu,
        reqwest::Method::POST,
        "/api/2.0/database/credentials",
        Some(json!({"instance_names": ["kept"], "request_id": "r1"})),
    )
    .await;
    assert_eq!(s, 200, "{cred}");
    let (_, me) = call(
        &emu,
        reqwest::Method::GET,
        "/api/2.0/preview/scim/v2/Me",
        None,
    )
    .await;
    let dns = after["read_write_dns"].as_str().expect("dns");
    let (host, port) = match dns.split_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().expect("port")),
        None => (dns.to_string(), 5432),
    };
    let user = me["userName"].as_str().expect("userName");
    let token = cred["token"].as_str().expect("token");
    connect(&host, port, user, token, "databricks_postgres")
        .await
        .expect("login after the restart");
    emu.stop();
    assert!(
        servers_under(emu.data_dir()).is_empty(),
        "{:?}",
        servers_under(emu.data_dir())
    );
}

/// Issue 8.4: a token from `lakebundle --local credential` keeps working until its
/// `expiration_time`, although every `--local` command runs its own emulator process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_credentials_stay_valid_across_commands() {
    if !postgres_installed() {
        return;
    }
    let home = tempfile::tempdir().expect("LAKEBUNDLE_HOME");
    let ws = home.path().join("local-workspace");
    let ws_arg = ws.display().to_string();
    // Make the instance with a served emulator over the --local data dir, then stop it.
    let mut emu =
        common::Emulator::start_with(&["--data-dir", &ws_arg, "--instance-ready-ms", "50"]);
    let (s, v) = call(
        &emu,
        reqwest::Method::POST,
        "/api/2.0/database/instances",
        Some(json!({"name": "local-db", "capacity": "CU_1"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_available(&emu, "local-db").await;
    emu.stop();

    let cwd = tempfile::tempdir().expect("cwd");
    let local_credential = || {
        let out = std::process::Command::new(common::Emulator::bin())
            .current_dir(cwd.path())
            .env("LAKEBUNDLE_HOME", home.path())
            .env_remove("DATABRICKS_HOST")
            .env_remove("DATABRICKS_TOKEN")
            .env_remove("DATABRICKS_CONFIG_PROFILE")
            .env(
                "DATABRICKS_CONFIG_FILE",
                home.path().join("no-databrickscfg"),
            )
            .args(["--local", "-o", "json", "credential", "local-db"])
            .output()
            .expect("lakebundle --local credential");
        assert!(
            out.status.success(),
            "--local credential: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("json")
    };
    let first = local_credential();
    let second = local_credential();
    let field = |v: &Value, k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_string()
    };
    let (host, port, user) = (
        field(&first, "host"),
        first["port"].as_u64().expect("port") as u16,
        field(&first, "user"),
    );
    let expires = chrono::DateTime::parse_from_rfc3339(&field(&first, "expiration_time"))
        .expect("expiration_time");
    assert!(expires > chrono::Utc::now(), "{first}");
    let c = connect(
        &host,
        port,
        &user,
        &field(&first, "token"),
        "databricks_postgres",
    )
    .await
    .expect("the first --local token still logs in after a second --local credential");
    let one: i32 = c.query_one("SELECT 1", &[]).await.expect("query").get(0);
    assert_eq!(one, 1);
    connect(
        &host,
        port,
        &user,
        &field(&second, "token"),
        "databricks_postgres",
    )
    .await
    .expect("the second token logs in too");
    // The store holds no token, only what it is derived from.
    let db = std::fs::read(ws.join("workspace.db")).expect("store");
    let wal = std::fs::read(ws.join("workspace.db-wal")).unwrap_or_default();
    let hay = [db, wal].concat();
    for tok in [field(&first, "token"), field(&second, "token")] {
        assert!(
            !hay.windows(tok.len()).any(|w| w == tok.as_bytes()),
            "a database token is stored in clear"
        );
    }
    // Issue 14.10: what the fleet keeps is the owner's only; servers running as another
    // OS user (when root) get the traverse bit on the way to their data, never read.
    let traverse_only = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert!(mode == 0o700 || mode == 0o701, "{}: {mode:o}", p.display());
    };
    traverse_only(&ws);
    traverse_only(&ws.join("pg"));
    for f in [
        "workspace.db",
        "credential.key",
        "pg/admin.secret",
        "pg/tls/server.key",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ws.join(f)).expect(f).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    drop(c);
    drop(emu);
}
