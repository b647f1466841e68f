//! Client overhead per call: sequential and concurrent GETs against a trivial
//! local axum server, compared with bare reqwest on the same server (the
//! difference is what auth, retry bookkeeping, URL building, error mapping
//! and JSON decoding cost). Prints µs/call.
//!
//! `cargo bench --bench client [-- N]` (N calls per scenario, default 10000).

use std::time::{Duration, Instant};

use lakebundle::api::{Client, ClientConfig, Method, Secret};
use serde_json::json;

async fn serve() -> String {
    let body = json!({"name": "db1", "state": "AVAILABLE", "capacity": "CU_1", "uid": "0e9a", "effective_stopped": false}).to_string();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { ([("content-type", "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn report(name: &str, n: usize, elapsed: Duration) -> f64 {
    let us = elapsed.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{name:<44} {n:>7} calls  {:>8.1} ms  {us:>7.1} µs/call  {:>9.0} calls/s",
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64()
    );
    us
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = serve().await;
        let client = Client::with_token(&url, Secret::new("dapi-bench"), ClientConfig::default())
            .expect("client");
        // Same transport settings as the client (loopback hosts bypass proxies).
        let raw = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("reqwest");
        let path = "/api/2.0/database/instances/db1";
        // Warm up connections.
        for _ in 0..200 {
            client
                .call(Method::GET, path, &[], None)
                .await
                .expect("warm-up call");
            raw.get(format!("{url}{path}"))
                .send()
                .await
                .expect("warm-up raw")
                .bytes()
                .await
                .expect("body");
        }

        let t = Instant::now();
        for _ in 0..n {
            let resp = raw
                .get(format!("{url}{path}"))
                .bearer_auth("dapi-bench")
                .send()
                .await
                .expect("raw get");
            let _v: serde_json::Value =
                serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
        }
        let base = report(
            "bare reqwest GET + JSON decode (sequential)",
            n,
            t.elapsed(),
        );

        let t = Instant::now();
        for _ in 0..n {
            client
                .call(Method::GET, path, &[], None)
                .await
                .expect("client get");
        }
        let ours = report("Client::call GET (sequential)", n, t.elapsed());

        let t = Instant::now();
        for _ in 0..n {
            let _: lakebundle::api::types::database::DatabaseInstance = client
                .call_typed(Method::GET, path, &[], None)
                .await
                .expect("typed get");
        }
        report("Client::call_typed GET (sequential)", n, t.elapsed());

        let t = Instant::now();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move {
                    for _ in 0..n / 32 {
                        c.call(Method::GET, path, &[], None)
                            .await
                            .expect("concurrent get");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        report(
            "Client::call GET (32 concurrent tasks)",
            n / 32 * 32,
            t.elapsed(),
        );

        println!(
            "client overhead over bare reqwest: {:+.1} µs/call",
            ours - base
        );
    });
}
