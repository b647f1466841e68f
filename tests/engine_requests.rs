//! What the engine sends, counted: the client talks to the real emulator
//! through a small loopback proxy that records every request line.

mod common;
mod engine_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::Emulator;
use engine_support::load_bundle;
use lakebundle::api::{Client, ClientConfig, Secret};
use lakebundle::apply::{apply, ApplyOptions};
use lakebundle::config::model::CurrentUser;
use lakebundle::plan::{make_plan, PlanOptions};
use lakebundle::resources::{Kind, ResourceAddr};
use lakebundle::state::StateStore;

const USER: &str = "tester@example.com";

/// Forwards every request to `upstream` and records `METHOD path`.
struct CountingProxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl CountingProxy {
    async fn start(upstream: String) -> CountingProxy {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: HttpMethod, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (log, http, upstream) = (log.clone(), http.clone(), upstream.clone());
                async move {
                    log.lock()
                        .expect("log lock")
                        .push(format!("{method} {}", uri.path()));
                    let target = format!(
                        "{upstream}{}",
                        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                    );
                    let method =
                        reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
                    let mut req = http.request(method, target).body(body.to_vec());
                    for (k, v) in headers.iter() {
                        if k != "host" {
                            req = req.header(k.as_str(), v.as_bytes());
                        }
                    }
                    match req.send().await {
                        Ok(resp) => {
                            let status = StatusCode::from_u16(resp.status().as_u16())
                                .unwrap_or(StatusCode::BAD_GATEWAY);
                            let bytes = resp.bytes().await.unwrap_or_default();
                            let mut out: Response = (status, bytes.to_vec()).into_response();
                            out.headers_mut()
                                .insert("content-type", "application/json".parse().unwrap());
                            out
                        }
                        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CountingProxy { url, seen }
    }

    fn count(&self, line: &str) -> usize {
        let seen = self.seen.lock().expect("log lock");
        seen.iter().filter(|l| l.as_str() == line).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_create_reads_the_job_back_once() {
    let emu = Emulator::start_with(&["--no-postgres", "--user", USER]);
    let proxy = CountingProxy::start(emu.url.clone()).await;
    let client = Client::with_token(
        &proxy.url,
        Secret::new(emu.token.clone()),
        ClientConfig {
            backoff_base: Duration::from_millis(10),
            ..ClientConfig::default()
        },
    )
    .expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut yaml = String::from("bundle:\n  name: counted\nresources:\n  jobs:\n");
    for i in 0..3 {
        yaml.push_str(&format!(
            "    j{i}:\n      name: counted-{i}\n      tasks:\n        - task_key: t\n          notebook_task:\n            notebook_path: /Shared/n\n"
        ));
    }
    let user = CurrentUser {
        user_name: USER.into(),
        short_name: "tester".into(),
    };
    let bundle = load_bundle(dir.path(), &yaml, Some(user)).expect("bundle loads");
    let store = StateStore::for_bundle(&bundle, Some(&client))
        .await
        .expect("state");
    let plan = make_plan(
        &bundle,
        &store.snapshot(),
        Some(&client),
        &PlanOptions::default(),
    )
    .await
    .expect("plan");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let report = apply(
        &bundle,
        &plan,
        &store,
        &client,
        &ApplyOptions::default(),
        tx,
    )
    .await
    .expect("apply");
    assert!(report.ok(), "{:?}", report.failed);

    assert_eq!(proxy.count("POST /api/2.2/jobs/create"), 3);
    assert_eq!(
        proxy.count("GET /api/2.2/jobs/get"),
        3,
        "one read-back per created job"
    );
    // That one read is what fills the outputs offered to references.
    let state = store.snapshot();
    for i in 0..3 {
        let rs = state
            .get(&ResourceAddr::new(Kind::Jobs, format!("j{i}")))
            .expect("recorded");
        assert_eq!(rs.outputs["name"], format!("counted-{i}"));
        assert!(
            rs.outputs.get("creator_user_name").is_some(),
            "{}",
            rs.outputs
        );
    }
}
