//! Real PostgreSQL behind emulated instances: `PgFleet` driven directly,
//! with tokio-postgres (and psql) as the clients. Skips, with a message,
//! when no PostgreSQL server binaries are installed.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lakebundle_emulator::backend::{
    BackendError, BranchPoint, DbBackend, InstanceSpec, SyncedTableSpec,
};
use lakebundle_emulator::postgres::PgFleet;

#[path = "../../../tests/common/prereq.rs"]
mod prereq;

struct Fixture {
    fleet: PgFleet,
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let tmp = tempfile::tempdir().ok()?;
        match PgFleet::new(tmp.path().join("pg")) {
            Ok(fleet) => Some(Fixture { fleet, tmp }),
            Err(e) => {
                prereq::postgres_missing(&e.to_string());
                None
            }
        }
    }

    fn root(&self) -> PathBuf {
        self.fleet.root().to_path_buf()
    }

    fn lake(&self) -> PathBuf {
        self.tmp.path().join("lake")
    }
}

fn spec(uid: &str, name: &str) -> InstanceSpec {
    InstanceSpec {
        uid: uid.into(),
        name: name.into(),
        capacity: "CU_1".into(),
        node_count: 1,
        enable_readable_secondaries: false,
        enable_pg_native_login: false,
        stopped: false,
        parent: None,
        servers: Vec::new(),
    }
}

fn in_an_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

/// `read_write_dns` as a socket address (bare host = port 5432).
fn addr_of(dns: &str) -> SocketAddr {
    let with_port = if dns.contains(':') {
        dns.to_string()
    } else {
        format!("{dns}:5432")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("bad dns {dns}"))
}

async fn connect(
    dns: &str,
    db: &str,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let a = addr_of(dns);
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(a.ip().to_string())
        .port(a.port())
        .user(user)
        .password(password)
        .dbname(db);
    cfg.connect_timeout(Duration::from_secs(10));
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn scalar_i64(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Postmaster processes whose command line names this root.
fn servers_under(root: &Path) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .arg("-af")
        .arg(root.to_string_lossy().as_ref())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("postgres"))
            .map(String::from)
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn assert_no_servers(root: &Path) {
    let left = servers_under(root);
    assert!(left.is_empty(), "servers still running: {left:?}");
}

const ALICE: &str = "alice@company.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_runs_the_seed_sql_with_a_credential() {
    let Some(fx) = Fixture::new() else { return };
    let t0 = Instant::now();
    let ep = fx
        .fleet
        .create_instance(&spec("inst-seed", "my-instance"))
        .await
        .expect("create");
    eprintln!("create -> AVAILABLE in {:?}: {ep:?}", t0.elapsed());
    assert!(ep.read_write_dns.starts_with("127."), "{ep:?}");
    assert!(ep.pg_version.starts_with("PG_VERSION_"), "{ep:?}");
    assert_eq!(ep.read_only_dns, None);

    // The server runs from the fleet's private install (system dirs are never written).
    let pid: i32 = std::fs::read_to_string(fx.fleet.data_dir("inst-seed").join("postmaster.pid"))
        .expect("pid file")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert!(exe.starts_with(fx.root().join("pginst")), "{exe:?}");
    assert!(fx.fleet.server_bindir().starts_with(fx.root()));

    let token = "tok-0123456789abcdef";
    fx.fleet
        .set_credential("inst-seed", ALICE, token, &in_an_hour())
        .await
        .expect("credential");
    let c = connect(&ep.read_write_dns, "databricks_postgres", ALICE, token)
        .await
        .expect("login with the token");
    let seed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg/seed.sql"))
        .expect("seed.sql");
    c.batch_execute(&seed)
        .await
        .unwrap_or_else(|e| panic!("seed SQL: {e:?}"));
    c.batch_execute("ALTER USER \"alice@company.com\" SET maintenance_work_mem = '1 GB'")
        .await
        .expect("alter user");

    let row = c
        .query_one("SELECT name, metadata->>'verified', (SELECT count(*) FROM app.audit_log) FROM app.customers WHERE id = 1", &[])
        .await
        .expect("read back");
    assert_eq!(row.get::<_, String>(0), "Alice Smith");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("true"));
    assert_eq!(row.get::<_, i64>(2), 1);
    let uuid: String = c
        .query_one("SELECT uuid_generate_v4()::text", &[])
        .await
        .expect("uuid-ossp")
        .get(0);
    assert_eq!(uuid.len(), 36);
    let same: bool = c
        .query_one("SELECT 'ABC'::citext = 'abc'::citext", &[])
        .await
        .expect("citext")
        .get(0);
    assert!(same);
    // pgvector and PostGIS, when their packages are installed, as the seed writes them.
    for (ext, probe) in [
        (
            "vector",
            "SELECT ('[1,2]'::vector <-> '[1,3]'::vector)::text",
        ),
        ("postgis", "SELECT postgis_version()::text"),
    ] {
        if fx.fleet.extension_available(ext) {
            c.batch_execute(&format!("CREATE EXTENSION IF NOT EXISTS {ext}"))
                .await
                .unwrap_or_else(|e| panic!("{ext}: {e:?}"));
            let v: String = c
                .query_one(probe, &[])
                .await
                .unwrap_or_else(|e| panic!("{ext}: {e:?}"))
                .get(0);
            eprintln!("{ext} available: {v}");
        } else {
            eprintln!("{ext} is not installed: skipped");
        }
    }
    let roles = scalar_i64(&c, "SELECT count(*) FROM databricks_list_roles() WHERE role_name IN ('bob@company.com', 'alice@company.com')").await;
    assert_eq!(roles, 2);

    // bob was made by databricks_create_role: an identity role that can log in once it has a credential.
    fx.fleet
        .set_credential("inst-seed", "bob@company.com", "bob-token", &in_an_hour())
        .await
        .expect("bob credential");
    let bob = connect(
        &ep.read_write_dns,
        "databricks_postgres",
        "bob@company.com",
        "bob-token",
    )
    .await
    .expect("bob login");
    assert_eq!(
        scalar_i64(&bob, "SELECT count(*) FROM app.customers").await,
        1
    );

    // Wrong password and unknown role are rejected.
    assert!(
        connect(&ep.read_write_dns, "databricks_postgres", ALICE, "wrong")
            .await
            .is_err()
    );
    assert!(connect(
        &ep.read_write_dns,
        "databricks_postgres",
        "nobody@x.com",
        token
    )
    .await
    .is_err());

    // A new credential replaces the password of the role.
    fx.fleet
        .set_credential("inst-seed", ALICE, "tok-second", &in_an_hour())
        .await
        .expect("second credential");
    assert!(connect(
        &ep.read_write_dns,
        "databricks_postgres",
        ALICE,
        "tok-second"
    )
    .await
    .is_ok());
    assert!(
        connect(&ep.read_write_dns, "databricks_postgres", ALICE, token)
            .await
            .is_err()
    );

    fx.fleet.shutdown().await.expect("shutdown");
    assert!(
        servers_under(&fx.root()).is_empty(),
        "{:?}",
        servers_under(&fx.root())
    );
}

/// The SQLSTATE of a statement that must fail, or a panic naming it when it succeeded.
async fn refused(c: &tokio_postgres::Client, sql: &str) -> String {
    match c.batch_execute(sql).await {
        Ok(()) => panic!("{sql} must be refused"),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| format!("{e}")),
    }
}

/// Issue 14.2: a credential's login must have no path to the superuser-equivalent predefined
/// roles (on PostgreSQL 15, CREATEROLE can grant `pg_execute_server_program`, and `COPY ...
/// FROM PROGRAM` then runs shell commands as the server's OS user), while what a Lakebase
/// user legitimately does still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_login_cannot_reach_the_server_os() {
    let Some(fx) = Fixture::new() else { return };
    let ep = fx
        .fleet
        .create_instance(&spec("inst-sec", "sec"))
        .await
        .expect("create");
    fx.fleet
        .set_credential("inst-sec", ALICE, "alice-token", &in_an_hour())
        .await
        .expect("credential");
    let c = connect(
        &ep.read_write_dns,
        "databricks_postgres",
        ALICE,
        "alice-token",
    )
    .await
    .expect("login");
    c.batch_execute(
        "CREATE TABLE loot (line text); CREATE EXTENSION IF NOT EXISTS databricks_auth",
    )
    .await
    .expect("ordinary DDL");

    // 42501 = insufficient_privilege.
    for sql in [
        "GRANT pg_execute_server_program TO \"alice@company.com\"",
        "GRANT pg_read_server_files TO \"alice@company.com\"",
        "GRANT pg_write_server_files TO \"alice@company.com\"",
        "CREATE ROLE sidekick LOGIN PASSWORD 'x'",
        "COPY loot FROM PROGRAM 'id'",
        "COPY loot FROM '/etc/passwd'",
        "COPY loot TO '/tmp/lakebundle-pwned'",
        "SELECT pg_read_file('postmaster.pid')",
        "SELECT pg_read_binary_file('/etc/passwd')",
        "SELECT pg_ls_dir('.')",
        "ALTER ROLE \"alice@company.com\" SUPERUSER",
        "ALTER ROLE \"alice@company.com\" CREATEROLE",
        "ALTER ROLE \"alice@company.com\" REPLICATION",
        "GRANT lakebase_admin TO \"alice@company.com\"",
        "SET ROLE lakebase_admin",
        "SELECT lo_import('/etc/passwd')",
    ] {
        assert_eq!(refused(&c, sql).await, "42501", "{sql}");
    }
    // A role made through the extension cannot be the stepping stone either.
    c.batch_execute("SELECT databricks_create_role('helper', 'GROUP')")
        .await
        .expect("databricks_create_role");
    for sql in [
        "GRANT pg_execute_server_program TO helper",
        "GRANT pg_read_server_files TO helper",
        // databricks_superuser holds its predefined roles without the right to pass them on.
        "GRANT pg_read_all_data TO helper",
        "ALTER ROLE helper CREATEROLE",
        "ALTER ROLE helper SUPERUSER",
    ] {
        assert_eq!(refused(&c, sql).await, "42501", "{sql}");
    }
    // Neither can the functions be turned against the predefined or system roles.
    for sql in [
        "SELECT databricks_drop_role('lakebase_admin')",
        "SELECT databricks_drop_role('databricks_superuser')",
        "SELECT databricks_drop_role('pg_execute_server_program')",
    ] {
        assert_eq!(refused(&c, sql).await, "42501", "{sql}");
    }
    assert!(
        c.batch_execute("SELECT databricks_create_role('x'' LOGIN SUPERUSER --', 'USER')")
            .await
            .is_ok(),
        "an odd name is just a name"
    );
    let su: bool = c
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'x'' LOGIN SUPERUSER --'",
            &[],
        )
        .await
        .expect("odd role")
        .get(0);
    assert!(!su);
    let dangerous = scalar_i64(
        &c,
        "SELECT count(*) FROM pg_roles r WHERE (r.rolsuper OR r.rolcreaterole OR \
         pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER') OR \
         pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER') OR \
         pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER')) \
         AND r.rolname <> 'lakebase_admin' AND left(r.rolname, 3) <> 'pg_'",
    )
    .await;
    assert_eq!(
        dangerous, 0,
        "only the emulator's admin role may reach the OS"
    );

    // What users legitimately do still works.
    c.batch_execute("CREATE DATABASE alice_db")
        .await
        .expect("CREATE DATABASE");
    c.batch_execute(
        "GRANT helper TO \"alice@company.com\"; \
         REVOKE helper FROM \"alice@company.com\"; \
         INSERT INTO loot VALUES ('fine'); \
         SELECT databricks_create_native_role('svc_native', 'pw'); \
         GRANT SELECT ON loot TO svc_native; \
         SELECT databricks_drop_role('helper')",
    )
    .await
    .expect("user DDL");
    let other = connect(&ep.read_write_dns, "alice_db", ALICE, "alice-token")
        .await
        .expect("connect to the database alice created");
    other
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .expect("tables in her database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_expire_and_native_login_follows_the_flag() {
    let Some(fx) = Fixture::new() else { return };
    let ep = fx
        .fleet
        .create_instance(&spec("inst-auth", "auth"))
        .await
        .expect("create");
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    fx.fleet
        .set_credential("inst-auth", ALICE, "short-lived", &soon)
        .await
        .expect("credential");
    let c = connect(
        &ep.read_write_dns,
        "databricks_postgres",
        ALICE,
        "short-lived",
    )
    .await
    .expect("fresh token works");
    // A native role with a password (made through databricks_auth: identity roles have no
    // CREATEROLE): refused while native login is off.
    c.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS databricks_auth; \
         SELECT databricks_create_native_role('app_native', 'native-pw')",
    )
    .await
    .expect("create native role");
    let refused = connect(
        &ep.read_write_dns,
        "databricks_postgres",
        "app_native",
        "native-pw",
    )
    .await;
    assert!(
        refused.is_err(),
        "native login must be rejected while disabled"
    );

    tokio::time::sleep(Duration::from_millis(3000)).await;
    let expired = connect(
        &ep.read_write_dns,
        "databricks_postgres",
        ALICE,
        "short-lived",
    )
    .await;
    assert!(expired.is_err(), "an expired token must not log in");
    // The open session is not cut (expiry is checked at login, as in the service).
    assert_eq!(scalar_i64(&c, "SELECT 1::bigint").await, 1);

    let mut s = spec("inst-auth", "auth");
    s.enable_pg_native_login = true;
    s.capacity = "CU_4".into();
    let ep = fx.fleet.update_instance(&s).await.expect("update");
    let native = connect(
        &ep.read_write_dns,
        "databricks_postgres",
        "app_native",
        "native-pw",
    )
    .await
    .expect("native login once enabled");
    let sb: String = native
        .query_one("SHOW shared_buffers", &[])
        .await
        .expect("show")
        .get(0);
    let wm: String = native
        .query_one("SHOW work_mem", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(
        (sb.as_str(), wm.as_str()),
        ("128MB", "16MB"),
        "CU_4 memory mapping"
    );

    // Stop and start.
    s.stopped = true;
    fx.fleet.update_instance(&s).await.expect("stop");
    assert!(connect(
        &ep.read_write_dns,
        "databricks_postgres",
        "app_native",
        "native-pw"
    )
    .await
    .is_err());
    assert_no_servers(&fx.root());
    assert!(
        fx.fleet
            .set_credential("inst-auth", ALICE, "x", &in_an_hour())
            .await
            .is_err(),
        "stopped instance"
    );
    s.stopped = false;
    let ep = fx.fleet.update_instance(&s).await.expect("start");
    fx.fleet
        .set_credential("inst-auth", ALICE, "again", &in_an_hour())
        .await
        .expect("credential after start");
    let c = connect(&ep.read_write_dns, "databricks_postgres", ALICE, "again")
        .await
        .expect("login after start");
    assert_eq!(
        scalar_i64(
            &c,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app_native'"
        )
        .await,
        1,
        "data survives stop/start"
    );

    // Delete with purge removes the server and its files.
    let data = fx.fleet.data_dir("inst-auth");
    assert!(data.is_dir());
    fx.fleet
        .delete_instance("inst-auth", true)
        .await
        .expect("delete");
    assert!(!data.exists(), "purge removes the data dir");
    assert!(
        servers_under(&fx.root()).is_empty(),
        "{:?}",
        servers_under(&fx.root())
    );
    fx.fleet.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogs_are_real_databases() {
    let Some(fx) = Fixture::new() else { return };
    let ep = fx
        .fleet
        .create_instance(&spec("inst-cat", "cat"))
        .await
        .expect("create");
    assert!(fx
        .fleet
        .database_exists("inst-cat", "databricks_postgres")
        .await
        .expect("exists"));
    assert!(!fx
        .fleet
        .database_exists("inst-cat", "my_database")
        .await
        .expect("exists"));
    fx.fleet
        .create_database("inst-cat", "my_database")
        .await
        .expect("create db");
    fx.fleet
        .create_database("inst-cat", "my_database")
        .await
        .expect("create db is idempotent");
    assert!(fx
        .fleet
        .database_exists("inst-cat", "my_database")
        .await
        .expect("exists"));
    fx.fleet
        .set_credential("inst-cat", ALICE, "t", &in_an_hour())
        .await
        .expect("credential");
    let c = connect(&ep.read_write_dns, "my_database", ALICE, "t")
        .await
        .expect("login to the new database");
    c.batch_execute("CREATE TABLE public.t (id int primary key); INSERT INTO t VALUES (1)")
        .await
        .expect("owner rights");
    let unknown = fx.fleet.database_exists("no-such-uid", "x").await;
    assert!(
        matches!(unknown, Err(BackendError::NotFound(_))),
        "{unknown:?}"
    );
    fx.fleet.shutdown().await.expect("shutdown");
}

fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    // Through a temp file + rename, as a lake writer would: never a half file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn table_spec(fx: &Fixture, table: &str, policy: &str, file: &str) -> SyncedTableSpec {
    SyncedTableSpec {
        instance_uid: "inst-sync".into(),
        database: "my_database".into(),
        schema: "public".into(),
        table: table.into(),
        source: fx.lake().join("dev_catalog/dev_schema").join(file),
        primary_key_columns: vec!["customer_id".into()],
        timeseries_key: None,
        scheduling_policy: policy.into(),
    }
}

async fn rows_of(c: &tokio_postgres::Client, table: &str) -> Vec<(i64, String, f64)> {
    c.query(
        &format!("SELECT customer_id, segment, score::float8 FROM public.{table} ORDER BY 1"),
        &[],
    )
    .await
    .unwrap_or_else(|e| panic!("{table}: {e}"))
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_tables_snapshot_triggered_and_continuous() {
    let Some(fx) = Fixture::new() else { return };
    let ep = fx
        .fleet
        .create_instance(&spec("inst-sync", "sync"))
        .await
        .expect("create");
    fx.fleet
        .create_database("inst-sync", "my_database")
        .await
        .expect("db");
    fx.fleet
        .set_credential("inst-sync", ALICE, "t", &in_an_hour())
        .await
        .expect("credential");
    let csv = fx
        .lake()
        .join("dev_catalog/dev_schema/customer_features.csv");
    write(&csv, "customer_id,segment,score,updated_at,active\n1,gold,1.5,2026-01-01T00:00:00Z,true\n2,silver,2,2026-01-02T00:00:00Z,false\n3,bronze,3.25,2026-01-03T00:00:00Z,true\n");

    // SNAPSHOT: every row, typed columns, primary key.
    let snap = table_spec(&fx, "customer_features", "SNAPSHOT", "customer_features");
    let stats = fx.fleet.create_synced_table(&snap).await.expect("snapshot");
    assert_eq!((stats.rows_upserted, stats.total_rows), (3, 3));
    let c = connect(&ep.read_write_dns, "my_database", ALICE, "t")
        .await
        .expect("login");
    assert_eq!(
        rows_of(&c, "customer_features").await,
        vec![
            (1, "gold".into(), 1.5),
            (2, "silver".into(), 2.0),
            (3, "bronze".into(), 3.25)
        ]
    );
    let types: Vec<String> = c
        .query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.customer_features'::regclass AND attnum > 0 ORDER BY attnum", &[])
        .await
        .expect("types")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        types,
        [
            "bigint",
            "text",
            "double precision",
            "timestamp with time zone",
            "boolean"
        ]
    );
    let pk: String = c
        .query_one("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.customer_features'::regclass AND contype = 'p'", &[])
        .await
        .expect("pk")
        .get(0);
    assert_eq!(pk, "PRIMARY KEY (customer_id)");

    // TRIGGERED: upserts and deletes by key since the last sync.
    write(
        &fx.lake().join("dev_catalog/dev_schema/orders.csv"),
        "customer_id,segment,score\n1,a,1\n2,b,2\n3,c,3\n",
    );
    let trig = table_spec(&fx, "orders", "TRIGGERED", "orders.csv");
    fx.fleet
        .create_synced_table(&trig)
        .await
        .expect("triggered create");
    write(
        &fx.lake().join("dev_catalog/dev_schema/orders.csv"),
        "customer_id,segment,score\n1,a,1\n2,B,2.5\n4,d,4\n",
    );
    let stats = fx.fleet.refresh_synced_table(&trig).await.expect("refresh");
    assert_eq!(
        (stats.rows_upserted, stats.rows_deleted, stats.total_rows),
        (2, 1, 3),
        "{stats:?}"
    );
    assert_eq!(
        rows_of(&c, "orders").await,
        vec![
            (1, "a".into(), 1.0),
            (2, "B".into(), 2.5),
            (4, "d".into(), 4.0)
        ]
    );
    let again = fx
        .fleet
        .refresh_synced_table(&trig)
        .await
        .expect("refresh without changes");
    assert_eq!((again.rows_upserted, again.rows_deleted), (0, 0));
    let status = fx
        .fleet
        .synced_table_status(&trig)
        .await
        .expect("status")
        .expect("known");
    assert_eq!(status.stats, again);
    assert!(
        status.last_sync_time.is_some() && status.error.is_none(),
        "{status:?}"
    );

    // CONTINUOUS follows the file (JSONL here) within about a second.
    let jsonl = fx.lake().join("dev_catalog/dev_schema/live.jsonl");
    write(
        &jsonl,
        "{\"customer_id\": 1, \"segment\": \"x\", \"score\": 1.0}\n",
    );
    let cont = table_spec(&fx, "live", "CONTINUOUS", "live");
    fx.fleet
        .create_synced_table(&cont)
        .await
        .expect("continuous create");
    assert_eq!(rows_of(&c, "live").await.len(), 1);
    write(&jsonl, "{\"customer_id\": 1, \"segment\": \"y\", \"score\": 1.0}\n{\"customer_id\": 2, \"segment\": \"z\", \"score\": 2.0}\n");
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while t0.elapsed() < Duration::from_secs(5) {
        seen = rows_of(&c, "live").await;
        if seen == vec![(1, "y".into(), 1.0), (2, "z".into(), 2.0)] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("continuous change applied after {:?}", t0.elapsed());
    assert_eq!(seen, vec![(1, "y".into(), 1.0), (2, "z".into(), 2.0)]);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "applied within ~1 s, took {:?}",
        t0.elapsed()
    );

    // timeseries_key keeps the latest row per key; without it duplicates fail.
    write(&fx.lake().join("dev_catalog/dev_schema/events.csv"), "customer_id,segment,score,ts\n1,old,1,2026-01-01T00:00:00Z\n1,new,2,2026-02-01T00:00:00Z\n1,mid,3,2026-01-15T00:00:00Z\n");
    let mut ev = table_spec(&fx, "events", "SNAPSHOT", "events.csv");
    let dup = fx.fleet.create_synced_table(&ev).await;
    assert!(matches!(dup, Err(BackendError::Invalid(_))), "{dup:?}");
    ev.timeseries_key = Some("ts".into());
    let stats = fx.fleet.create_synced_table(&ev).await.expect("dedup");
    assert_eq!(stats.total_rows, 1);
    assert_eq!(rows_of(&c, "events").await, vec![(1, "new".into(), 2.0)]);

    // A missing source is an error; purge drops the table.
    let missing = fx
        .fleet
        .create_synced_table(&table_spec(&fx, "nope", "SNAPSHOT", "nope"))
        .await;
    assert!(
        matches!(missing, Err(BackendError::NotFound(_))),
        "{missing:?}"
    );
    fx.fleet
        .delete_synced_table(&trig, false)
        .await
        .expect("delete keeps data");
    assert_eq!(rows_of(&c, "orders").await.len(), 3);
    fx.fleet
        .delete_synced_table(&trig, true)
        .await
        .expect("delete purges");
    assert!(
        c.query("SELECT 1 FROM public.orders", &[]).await.is_err(),
        "purged table is gone"
    );
    fx.fleet
        .delete_synced_table(&cont, true)
        .await
        .expect("delete continuous");
    fx.fleet.shutdown().await.expect("shutdown");
    assert_no_servers(&fx.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_hold_exactly_the_data_as_of_their_branch_point() {
    let Some(fx) = Fixture::new() else { return };
    let ep = fx
        .fleet
        .create_instance(&spec("inst-parent", "parent"))
        .await
        .expect("create");
    fx.fleet
        .set_credential("inst-parent", ALICE, "t", &in_an_hour())
        .await
        .expect("credential");
    let c = connect(&ep.read_write_dns, "databricks_postgres", ALICE, "t")
        .await
        .expect("login");
    c.batch_execute(
        "CREATE TABLE items (id int primary key); INSERT INTO items SELECT generate_series(1, 10)",
    )
    .await
    .expect("rows");
    let lsn: String = c
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("lsn")
        .get(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let noted = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.batch_execute("INSERT INTO items SELECT generate_series(11, 15)")
        .await
        .expect("more rows");
    c.batch_execute("SELECT pg_switch_wal()").await.ok();

    let mut at_time = spec("inst-pitr", "pitr");
    at_time.parent = Some(("inst-parent".into(), BranchPoint::Timestamp(noted.clone())));
    let t0 = Instant::now();
    let cep = fx
        .fleet
        .create_instance(&at_time)
        .await
        .expect("clone at a timestamp");
    eprintln!("clone at timestamp in {:?}", t0.elapsed());
    fx.fleet
        .set_credential("inst-pitr", ALICE, "t2", &in_an_hour())
        .await
        .expect("credential on clone");
    let cc = connect(&cep.read_write_dns, "databricks_postgres", ALICE, "t2")
        .await
        .expect("login to clone");
    assert_eq!(
        scalar_i64(&cc, "SELECT count(*) FROM items").await,
        10,
        "rows after {noted} are absent"
    );
    cc.batch_execute("INSERT INTO items VALUES (100)")
        .await
        .expect("the clone is writable");
    assert_eq!(
        scalar_i64(&c, "SELECT count(*) FROM items").await,
        15,
        "the parent is untouched"
    );

    let mut at_lsn = spec("inst-lsn", "lsn");
    at_lsn.parent = Some(("inst-parent".into(), BranchPoint::Lsn(lsn)));
    let lep = fx
        .fleet
        .create_instance(&at_lsn)
        .await
        .expect("clone at an LSN");
    let lc = connect(&lep.read_write_dns, "databricks_postgres", ALICE, "t")
        .await
        .expect("login to lsn clone");
    assert_eq!(scalar_i64(&lc, "SELECT count(*) FROM items").await, 10);

    let mut now = spec("inst-now", "now");
    now.parent = Some(("inst-parent".into(), BranchPoint::Now));
    let t0 = Instant::now();
    let nep = fx.fleet.create_instance(&now).await.expect("clone now");
    eprintln!("clone at the current point in {:?}", t0.elapsed());
    let nc = connect(&nep.read_write_dns, "databricks_postgres", ALICE, "t")
        .await
        .expect("login to now clone");
    assert_eq!(scalar_i64(&nc, "SELECT count(*) FROM items").await, 15);

    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let mut bad = spec("inst-bad", "bad");
    bad.parent = Some(("inst-parent".into(), BranchPoint::Timestamp(future)));
    assert!(matches!(
        fx.fleet.create_instance(&bad).await,
        Err(BackendError::Invalid(_))
    ));
    bad.parent = Some((
        "inst-parent".into(),
        BranchPoint::Timestamp("2000-01-01T00:00:00Z".into()),
    ));
    assert!(
        matches!(
            fx.fleet.create_instance(&bad).await,
            Err(BackendError::Invalid(_))
        ),
        "before the instance existed"
    );
    fx.fleet.shutdown().await.expect("shutdown");
    assert_no_servers(&fx.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_secondaries_stream_from_the_primary() {
    let Some(fx) = Fixture::new() else { return };
    let mut s = spec("inst-ha", "ha");
    s.node_count = 2;
    s.enable_readable_secondaries = true;
    let ep = fx.fleet.create_instance(&s).await.expect("create with HA");
    let ro = ep.read_only_dns.clone().expect("read_only_dns");
    assert_ne!(ro, ep.read_write_dns);
    fx.fleet
        .set_credential("inst-ha", ALICE, "t", &in_an_hour())
        .await
        .expect("credential");
    let c = connect(&ep.read_write_dns, "databricks_postgres", ALICE, "t")
        .await
        .expect("primary");
    c.batch_execute("CREATE TABLE r (id int); INSERT INTO r VALUES (1), (2)")
        .await
        .expect("write");
    // Roles replicate too: the login works once the replica has replayed them.
    let t0 = Instant::now();
    let r = loop {
        match connect(&ro, "databricks_postgres", ALICE, "t").await {
            Ok(r) => break r,
            Err(e) if t0.elapsed() > Duration::from_secs(10) => panic!("replica login: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let t0 = Instant::now();
    let mut n: i64 = -1;
    while t0.elapsed() < Duration::from_secs(10) {
        if let Ok(row) = r.query_one("SELECT count(*) FROM r", &[]).await {
            n = row.get(0);
            if n == 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 2, "replica catches up");
    assert!(
        r.batch_execute("INSERT INTO r VALUES (3)").await.is_err(),
        "the secondary is read-only"
    );

    s.node_count = 1;
    let ep = fx.fleet.update_instance(&s).await.expect("scale down");
    assert_eq!(ep.read_only_dns, None);
    fx.fleet.shutdown().await.expect("shutdown");
    assert_no_servers(&fx.root());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_emulator_adopts_or_restarts_servers() {
    let Some(fx) = Fixture::new() else { return };
    let s = spec("inst-adopt", "adopt");
    let ep = fx.fleet.create_instance(&s).await.expect("create");
    fx.fleet
        .set_credential("inst-adopt", ALICE, "t", &in_an_hour())
        .await
        .expect("credential");
    let c = connect(&ep.read_write_dns, "databricks_postgres", ALICE, "t")
        .await
        .expect("login");
    c.batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')")
        .await
        .expect("write");
    let pid_file = fx.fleet.data_dir("inst-adopt").join("postmaster.pid");
    let pid_before = std::fs::read_to_string(&pid_file).expect("pid");

    // A second fleet over the same root (a restarted emulator) re-uses the running server.
    let second = PgFleet::new(fx.root()).expect("second fleet");
    let adopted = second
        .adopt(std::slice::from_ref(&s))
        .await
        .expect("adopt running");
    assert_eq!(adopted[0].1.read_write_dns, ep.read_write_dns);
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid"),
        pid_before,
        "same postmaster"
    );
    second.shutdown().await.expect("shutdown");
    assert_no_servers(&fx.root());

    // After a full stop, adopting starts it again with its data.
    let third = PgFleet::new(fx.root()).expect("third fleet");
    let adopted = third
        .adopt(std::slice::from_ref(&s))
        .await
        .expect("adopt stopped");
    let c = connect(
        &adopted[0].1.read_write_dns,
        "databricks_postgres",
        ALICE,
        "t",
    )
    .await
    .expect("login after restart");
    assert_eq!(scalar_i64(&c, "SELECT count(*) FROM kept").await, 1);
    drop(third); // dropping a fleet stops its servers too
    assert_no_servers(&fx.root());
    fx.fleet.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_connects_with_the_seed_uri_and_sslmode_require() {
    let Some(fx) = Fixture::new() else { return };
    if !prereq::psql() {
        return;
    }
    let ep = fx
        .fleet
        .create_instance(&spec("inst-psql", "psql"))
        .await
        .expect("create");
    fx.fleet
        .set_credential("inst-psql", ALICE, "tok/with+chars", &in_an_hour())
        .await
        .expect("credential");
    // The seed's form: postgresql://alice%40company.com:${TOKEN}@<read_write_dns>/databricks_postgres?sslmode=require
    let token = percent_encode("tok/with+chars");
    let uri = format!(
        "postgresql://alice%40company.com:{token}@{}/databricks_postgres?sslmode=require",
        ep.read_write_dns
    );
    let out = std::process::Command::new("psql")
        .arg(&uri)
        .args([
            "-At",
            "-c",
            "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "alice@company.com true"
    );
    fx.fleet.shutdown().await.expect("shutdown");
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg2_runs_the_seed_connection_code_unchanged() {
    let Some(fx) = Fixture::new() else { return };
    let Some(python) = prereq::python_with("psycopg2") else {
        return;
    };
    let ep = fx
        .fleet
        .create_instance(&spec("inst-py", "py"))
        .await
        .expect("create");
    if ep.read_write_dns.contains(':') {
        prereq::skip(
            "a free 127.0.0.N:5432 address (host=<dns> needs the default port)",
            "stop what listens on port 5432 of the loopback addresses",
        );
        fx.fleet.shutdown().await.expect("shutdown");
        return;
    }
    fx.fleet
        .set_credential("inst-py", ALICE, "py-token", &in_an_hour())
        .await
        .expect("credential");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg/seed_connect.py");
    let out = std::process::Command::new(&python)
        .args([script, &ep.read_write_dns, ALICE, "py-token"])
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "psycopg2: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("PostgreSQL "), "{stdout}");
    assert!(stdout.contains("rows after delete: 0"), "{stdout}");
    fx.fleet.shutdown().await.expect("shutdown");
    assert_no_servers(&fx.root());
}
