//! PostgreSQL-backed instance figures: SNAPSHOT sync throughput (1,000,000
//! rows), instance create → AVAILABLE, clone at the current point.
//! `cargo bench --bench pg` (prints figures; skips without PostgreSQL).

use std::io::Write;
use std::time::Instant;

use lakebundle_emulator::backend::{BranchPoint, DbBackend, InstanceSpec, SyncedTableSpec};
use lakebundle_emulator::postgres::PgFleet;

const ROWS: usize = 1_000_000;

fn spec(uid: &str, parent: Option<(String, BranchPoint)>) -> InstanceSpec {
    InstanceSpec {
        uid: uid.into(),
        name: uid.into(),
        capacity: "CU_1".into(),
        node_count: 1,
        enable_readable_secondaries: false,
        enable_pg_native_login: false,
        stopped: false,
        parent,
        servers: Vec::new(),
    }
}

fn write_source(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "customer_id,segment,score,updated_at,active")?;
    let segments = ["gold", "silver", "bronze", "platinum"];
    for i in 0..ROWS {
        writeln!(
            f,
            "{i},{},{}.{},2026-01-{:02}T{:02}:00:00Z,{}",
            segments[i % 4],
            i % 1000,
            i % 100,
            1 + i % 28,
            i % 24,
            i % 3 == 0
        )?;
    }
    f.flush()
}

async fn bench() -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let fleet = match PgFleet::new(tmp.path().join("pg")) {
        Ok(f) => f,
        Err(e) => {
            println!("pg bench skipped: {e}");
            return Ok(());
        }
    };
    println!("PostgreSQL {}", fleet.server_version());

    let t = Instant::now();
    fleet
        .create_instance(&spec("bench-first", None))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "first instance create -> AVAILABLE (includes initdb of the template): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let mut creates = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        fleet
            .create_instance(&spec(&format!("bench-{i}"), None))
            .await
            .map_err(|e| e.to_string())?;
        creates.push(t.elapsed().as_secs_f64());
    }
    creates.sort_by(f64::total_cmp);
    println!(
        "instance create -> AVAILABLE: median {:.2} s (of {:?})",
        creates[1], creates
    );

    let source = tmp.path().join("lake/cat/sch/big.csv");
    write_source(&source).map_err(|e| e.to_string())?;
    let table = SyncedTableSpec {
        instance_uid: "bench-0".into(),
        database: "databricks_postgres".into(),
        schema: "public".into(),
        table: "big".into(),
        source: source.clone(),
        primary_key_columns: vec!["customer_id".into()],
        timeseries_key: None,
        scheduling_policy: "SNAPSHOT".into(),
    };
    let t = Instant::now();
    let stats = fleet
        .create_synced_table(&table)
        .await
        .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "SNAPSHOT sync of {} rows: {:.2} s = {:.0} rows/s (target >= 100,000)",
        stats.total_rows,
        secs,
        stats.total_rows as f64 / secs
    );
    let t = Instant::now();
    let stats = fleet
        .refresh_synced_table(&SyncedTableSpec {
            scheduling_policy: "TRIGGERED".into(),
            ..table.clone()
        })
        .await
        .map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "incremental refresh of {} unchanged rows: {:.2} s = {:.0} rows/s",
        stats.total_rows,
        secs,
        stats.total_rows as f64 / secs
    );

    let t = Instant::now();
    fleet
        .create_instance(&spec(
            "bench-clone",
            Some(("bench-0".into(), BranchPoint::Now)),
        ))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "clone at the current point (parent holds {ROWS} rows): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let at = chrono::Utc::now().to_rfc3339();
    let t = Instant::now();
    fleet
        .create_instance(&spec(
            "bench-pitr",
            Some(("bench-0".into(), BranchPoint::Timestamp(at))),
        ))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "clone at a timestamp (WAL replay of the 1M-row load): {:.2} s",
        t.elapsed().as_secs_f64()
    );

    fleet.shutdown().await.map_err(|e| e.to_string())
}

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(bench()) {
        eprintln!("pg bench failed: {e}");
        std::process::exit(1);
    }
}
