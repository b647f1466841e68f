//! Emulator throughput: 32 concurrent HTTP clients against an in-process emulator
//! (records-only backend, data dir in a temp dir), for `GET database instance` and
//! `POST jobs/create`. Run with `cargo bench --bench emulator`; figures go to stdout.
//! Target: at least 5,000 GET/s on 2 cores, so the emulator never bounds engine benches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lakebundle_emulator::{self as emulator, EmulatorConfig};
use serde_json::json;

const CLIENTS: usize = 32;
const WARMUP: Duration = Duration::from_millis(500);
const RUN: Duration = Duration::from_secs(3);

struct Figures {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    fn print(&mut self, what: &str) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "{what:<28} {CLIENTS} clients: {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests, {} errors, {:.1} s)",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            self.requests,
            self.errors,
            self.elapsed.as_secs_f64(),
        );
    }
}

/// Run `op` from `CLIENTS` concurrent tasks for `RUN` (after a warm-up) and measure.
async fn load<F, Fut>(op: F) -> Figures
where
    F: Fn(reqwest::Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let mut tasks = Vec::new();
    let start = Instant::now();
    for c in 0..CLIENTS {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let (mut n, mut errors, mut lat) = (0usize, 0usize, Vec::new());
            let measure_from = start + WARMUP;
            let end = measure_from + RUN;
            let mut i = 0;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let ok = op(http.clone(), c * 1_000_000 + i).await;
                i += 1;
                if t >= measure_from {
                    n += 1;
                    errors += usize::from(!ok);
                    lat.push(t.elapsed().as_micros() as u64);
                }
            }
            (n, errors, lat)
        }));
    }
    let mut f = Figures {
        requests: 0,
        errors: 0,
        elapsed: RUN,
        latencies_us: Vec::new(),
    };
    for t in tasks {
        let (n, e, l) = t.await.expect("client task");
        f.requests += n;
        f.errors += e;
        f.latencies_us.extend(l);
    }
    f
}

/// Send and drain one request; success = 2xx with a readable body.
async fn ok(req: reqwest::RequestBuilder) -> bool {
    match req.send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = EmulatorConfig { no_postgres: true, ..EmulatorConfig::local(dir.path().to_path_buf()) };
        let emu = emulator::start(cfg).await.expect("emulator starts");
        let url = emu.url().to_string();
        let token = emu.token().to_string();
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        println!("emulator bench on {cpus} CPUs (client and server share them)");
        let http = reqwest::Client::new();
        let created = http
            .post(format!("{url}/api/2.0/database/instances"))
            .bearer_auth(&token)
            .json(&json!({"name": "bench-db", "capacity": "CU_1"}))
            .send()
            .await
            .expect("create instance");
        assert!(created.status().is_success(), "create instance: {}", created.status());

        let (u, t) = (url.clone(), token.clone());
        let mut get = load(move |http, _| {
            let req = http.get(format!("{u}/api/2.0/database/instances/bench-db")).bearer_auth(&t);
            async move { ok(req).await }
        })
        .await;
        get.print("GET database instance");

        let (u, t) = (url.clone(), token.clone());
        let mut post = load(move |http, i| {
            let req = http
                .post(format!("{u}/api/2.2/jobs/create"))
                .bearer_auth(&t)
                .json(&json!({"name": format!("bench-{i}"), "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/n"}}]}));
            async move { ok(req).await }
        })
        .await;
        post.print("POST jobs/create (fsync'd)");
        emu.shutdown().await.expect("shutdown");
    });
}
