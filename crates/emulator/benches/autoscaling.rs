//! Lakebase Autoscaling figures on real PostgreSQL, through the REST API of an in-process
//! emulator: branch creation from a 1,000,000-row parent (at the current point and at a
//! past timestamp, each to its operation being done) and wake-up time (connect to the
//! first row of a suspended endpoint). `cargo bench --bench autoscaling` (prints figures;
//! skips without PostgreSQL).

use std::time::{Duration, Instant};

use lakebundle_emulator::{self as emulator, EmulatorConfig};
use serde_json::{json, Value};

const ROWS: i64 = 1_000_000;

struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method, format!("{}/api/2.0/postgres/{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {v}"));
        }
        Ok(v)
    }

    /// POST and wait for the operation; returns its response.
    async fn run(&self, path: &str, body: Value) -> Result<Value, String> {
        let op = self.call(reqwest::Method::POST, path, Some(body)).await?;
        let name = op["name"].as_str().ok_or("no operation name")?.to_string();
        loop {
            let op = self.call(reqwest::Method::GET, &name, None).await?;
            if op["done"] == json!(true) {
                if op.get("error").is_some() {
                    return Err(format!("{path}: {}", op["error"]));
                }
                return Ok(op["response"].clone());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn connect(&self, endpoint: &str) -> Result<tokio_postgres::Client, String> {
        let cred = self
            .call(
                reqwest::Method::POST,
                "credentials",
                Some(json!({"endpoint": endpoint})),
            )
            .await?;
        let ep = self.call(reqwest::Method::GET, endpoint, None).await?;
        let host = ep["status"]["hosts"]["host"]
            .as_str()
            .ok_or("no host")?
            .to_string();
        connect(&host, cred["token"].as_str().unwrap_or_default()).await
    }
}

async fn connect(host: &str, token: &str) -> Result<tokio_postgres::Client, String> {
    let (h, port) = match host.split_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().map_err(|_| "bad port")?),
        None => (host.to_string(), 5432),
    };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&h)
        .port(port)
        .user("local-user@example.com")
        .password(token)
        .dbname("databricks_postgres");
    let (c, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(c)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bench() -> Result<(), String> {
    if lakebundle_emulator::postgres::server::PgBinaries::discover().is_err() {
        println!("autoscaling bench skipped: PostgreSQL is not installed");
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // 60 s suspend timeouts become 1.2 s.
    let cfg = EmulatorConfig {
        postgres_optional: false,
        suspend_scale: 0.02,
        ..EmulatorConfig::local(dir.path().to_path_buf())
    };
    let emu = emulator::start(cfg).await.map_err(|e| e.to_string())?;
    let api = Api {
        http: reqwest::Client::new(),
        url: emu.url().to_string(),
        token: emu.token().to_string(),
    };
    let t = Instant::now();
    api.run(
        "projects?project_id=bench",
        json!({"spec": {"default_endpoint_settings": {"autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 2, "suspend_timeout_duration": "60s"}}}),
    )
    .await?;
    println!(
        "project create (first: includes initdb of the template): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let primary = "projects/bench/branches/production/endpoints/primary";
    let c = api.connect(primary).await?;
    let t = Instant::now();
    c.batch_execute(&format!(
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, {ROWS}) g"
    ))
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "load {ROWS} rows in the parent: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.batch_execute("INSERT INTO big SELECT g, 'later' FROM generate_series(1, 10) g")
        .await
        .map_err(|e| e.to_string())?;

    let mut now_times = Vec::new();
    let mut at_times = Vec::new();
    for i in 0..3 {
        let t = Instant::now();
        api.run(
            &format!("projects/bench/branches?branch_id=now-{i}"),
            json!({}),
        )
        .await?;
        now_times.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        api.run(
            &format!("projects/bench/branches?branch_id=past-{i}"),
            json!({"spec": {"source_branch_time": at}}),
        )
        .await?;
        at_times.push(t.elapsed().as_secs_f64());
    }
    // The copies hold what they should.
    let past = api
        .connect("projects/bench/branches/past-0/endpoints/primary")
        .await?;
    let n: i64 = past
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if n != ROWS {
        return Err(format!("the branch at {at} holds {n} rows, not {ROWS}"));
    }
    drop(past);
    println!(
        "branch from a {ROWS}-row parent, now -> operation done: median {:.2} s (of {:?})",
        median(now_times.clone()),
        now_times
            .iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
    );
    println!(
        "branch from a {ROWS}-row parent at a past timestamp -> operation done: median {:.2} s (of {:?})",
        median(at_times.clone()),
        at_times.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>()
    );

    // Wake-up: suspend the primary by idleness, then time connect → first row.
    let cred = api
        .call(
            reqwest::Method::POST,
            "credentials",
            Some(json!({"endpoint": primary})),
        )
        .await?;
    let token = cred["token"].as_str().unwrap_or_default().to_string();
    let host = api.call(reqwest::Method::GET, primary, None).await?["status"]["hosts"]["host"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    drop(c);
    let mut wakes = Vec::new();
    for _ in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ep = api.call(reqwest::Method::GET, primary, None).await?;
            if ep["status"]["current_state"] == json!("IDLE") {
                break;
            }
            if Instant::now() > deadline {
                return Err("the primary never suspended".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let t = Instant::now();
        let c = connect(&host, &token).await?;
        let row = c
            .query_one("SELECT id FROM big LIMIT 1", &[])
            .await
            .map_err(|e| e.to_string())?;
        let _: i32 = row.get(0);
        wakes.push(t.elapsed().as_secs_f64());
    }
    println!(
        "wake-up of a suspended endpoint (connect -> first row): median {:.2} s (of {:?})",
        median(wakes.clone()),
        wakes.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>()
    );
    api.call(reqwest::Method::DELETE, "projects/bench?purge=true", None)
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    emu.shutdown().await.map_err(|e| e.to_string())?;
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Err(e) = rt.block_on(bench()) {
        eprintln!("autoscaling bench failed: {e}");
        std::process::exit(1);
    }
}
