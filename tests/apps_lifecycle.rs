//! Apps deploy their code: the real binary against the emulator.
//!
//! - `lifecycle.started: true` creates the app with compute, deploys the
//!   synced source folder, deploys again on every changing deploy, plans a
//!   restart when the compute was stopped outside lakebundle, and
//!   `started: false` stops it and keeps it stopped;
//! - with `started` unset the app is created without compute and nothing is
//!   deployed; `lakebundle run KEY` then starts and deploys it;
//! - a lost response to the deployment create is adopted from the app's
//!   deployments instead of deploying twice (through a loopback proxy).

mod common;
mod e2e_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::Emulator;
use e2e_support::{run, Api, Run, TestBundle, TARGET};
use serde_json::{json, Value};

const APP: &str = "lifecycle-web";
const ADDR: &str = "resources.apps.web";
const STARTED: &str = "      lifecycle:\n        started: true\n";

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres"])
}

fn app(api: &Api) -> Value {
    api.get(&format!("/api/2.0/apps/{APP}"), &[])
        .expect("the app exists")
}

fn deployments(api: &Api) -> Vec<Value> {
    api.list(
        &format!("/api/2.0/apps/{APP}/deployments"),
        "app_deployments",
        &[],
    )
}

fn compute(app: &Value) -> &str {
    app["compute_status"]["state"].as_str().unwrap_or("")
}

/// The workspace folder the bundle's `./app` is synced to.
fn synced_source(emu: &Emulator, b: &TestBundle) -> String {
    let out = run(emu, b, &["-o", "json", "summary"]).expect(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("summary JSON");
    let files = v["workspace"]["file_path"].as_str().expect("file_path");
    format!("{}/app", files.trim_end_matches('/'))
}

/// Poll (bounded) until the app's compute settles in `state`.
fn settle(api: &Api, state: &str) -> Value {
    for _ in 0..400 {
        let a = app(api);
        if compute(&a) == state {
            return a;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("compute never reached {state}: {}", app(api));
}

fn change_of(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "plan"]).expect(0);
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    plan["resource_changes"]
        .as_array()
        .and_then(|rc| rc.iter().find(|c| c["address"] == ADDR))
        .cloned()
        .unwrap_or_else(|| panic!("no change for {ADDR}: {plan}"))
}

/// The app runs the code of a succeeded deployment of `source`.
fn assert_running_from(api: &Api, source: &str) -> Value {
    let a = app(api);
    assert_eq!(compute(&a), "ACTIVE", "{a}");
    assert_eq!(a["app_status"]["state"], "RUNNING", "{a}");
    assert_eq!(a["active_deployment"]["source_code_path"], source, "{a}");
    assert_eq!(
        a["active_deployment"]["status"]["state"], "SUCCEEDED",
        "{a}"
    );
    a
}

#[test]
fn started_app_deploys_its_code_and_follows_the_lifecycle() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("apps_lifecycle");
    let source = synced_source(&emu, &b);

    // Create: compute started, the synced folder deployed with the config.
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_running_from(&api, &source);
    let deps = deployments(&api);
    assert_eq!(deps.len(), 1, "{deps:?}");
    assert_eq!(deps[0]["mode"], "SNAPSHOT");
    assert_eq!(deps[0]["command"], json!(["python", "app.py"]));
    assert_eq!(deps[0]["env_vars"], json!([{"name": "GREETING"}]));
    let state = b.state();
    assert_eq!(
        state["lakebundle"]["outputs"][ADDR]["app_status"]["state"], "RUNNING",
        "{state}"
    );
    assert_eq!(change_of(&emu, &b)["actions"], json!(["no-op"]));
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // A change redeploys: a second deployment of the same folder.
    b.edit("first description", "second description");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(app(&api)["description"], "second description");
    let deps = deployments(&api);
    assert_eq!(deps.len(), 2, "{deps:?}");
    assert!(deps
        .iter()
        .all(|d| d["source_code_path"] == source.as_str()));
    assert_ne!(deps[0]["deployment_id"], deps[1]["deployment_id"]);
    assert_running_from(&api, &source);

    // A config change is a change too.
    b.edit("value: hello", "value: bonjour");
    let change = change_of(&emu, &b);
    assert_eq!(change["actions"], json!(["update"]), "{change}");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(deployments(&api).len(), 3);

    // Stopped outside lakebundle: drift, planned as an update; deploy restarts.
    api.post(&format!("/api/2.0/apps/{APP}/stop"), &json!({}));
    settle(&api, "STOPPED");
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        out.stdout.contains("changed outside lakebundle"),
        "{}",
        out.stdout
    );
    let change = change_of(&emu, &b);
    assert_eq!(change["actions"], json!(["update"]), "{change}");
    let drift = change["drift"].as_array().cloned().unwrap_or_default();
    assert!(
        drift.iter().any(|d| d["path"] == "lifecycle.started"),
        "{change}"
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_running_from(&api, &source);
    assert_eq!(deployments(&api).len(), 4);
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // started: false stops it; a later change keeps it stopped, deploys nothing.
    b.edit("started: true", "started: false");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(compute(&app(&api)), "STOPPED");
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    b.edit("second description", "third description");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let a = app(&api);
    assert_eq!(compute(&a), "STOPPED", "{a}");
    assert_eq!(a["description"], "third description");
    assert_ne!(a["app_status"]["state"], "RUNNING", "{a}");
    assert_eq!(deployments(&api).len(), 4, "stopped apps get no deployment");

    // Back to started: compute restarted and the code deployed again.
    b.edit("started: false", "started: true");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_running_from(&api, &source);
    assert_eq!(deployments(&api).len(), 5);
}

#[test]
fn unset_started_creates_without_compute_and_run_deploys_and_starts() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("apps_lifecycle");
    b.edit(STARTED, "");
    let source = synced_source(&emu, &b);

    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let a = app(&api);
    assert_eq!(compute(&a), "STOPPED", "{a}");
    assert_eq!(a["app_status"]["state"], "UNAVAILABLE", "{a}");
    assert!(deployments(&api).is_empty());
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // `run` starts the compute, deploys the synced folder and waits for it.
    let out = run(&emu, &b, &["run", "web"]).expect(0);
    let url = a["url"].as_str().expect("app url");
    assert!(out.stdout.contains(url), "{out:?}");
    assert_running_from(&api, &source);
    let deps = deployments(&api);
    assert_eq!(deps.len(), 1, "{deps:?}");
    assert_eq!(deps[0]["command"], json!(["python", "app.py"]));

    // Running it again deploys again; JSON output names the deployment.
    let out = run(&emu, &b, &["-o", "json", "run", "web"]).expect(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("run JSON");
    assert_eq!(v["url"], url);
    assert_eq!(v["deployment_state"], "SUCCEEDED");
    assert_eq!(v["app_status"], "RUNNING");
    let deps = deployments(&api);
    assert_eq!(deps.len(), 2);
    assert!(deps
        .iter()
        .any(|d| d["deployment_id"] == v["deployment_id"]));
    // Compute left as it is: unset `started` plans nothing.
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // --no-wait returns once the deployment exists.
    let out = run(&emu, &b, &["-o", "json", "run", "web", "--no-wait"]).expect(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("run JSON");
    let deps = deployments(&api);
    assert_eq!(deps.len(), 3);
    assert!(deps
        .iter()
        .any(|d| d["deployment_id"] == v["deployment_id"]));

    // A deployment that fails is an error naming the deployment and why.
    api.post(
        "/api/2.0/workspace/delete",
        &json!({"path": source, "recursive": true}),
    );
    let out = run(&emu, &b, &["run", "web"]).expect(1);
    assert!(
        out.stderr.contains("failed") && out.stderr.contains("does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn run_on_an_undeployed_app_says_to_deploy_first() {
    let emu = emulator();
    let b = TestBundle::fixture("apps_lifecycle");
    let out: Run = run(&emu, &b, &["run", "web"]).expect(1);
    // The hint carries the user's own flags (-C, -t) and runs as printed.
    assert!(
        out.stderr.contains("deploy it first with `lakebundle -C")
            && out.stderr.contains(" deploy`"),
        "{}",
        out.stderr
    );
    let out = run(&emu, &b, &["run", "wbe"]).expect(1);
    assert!(out.stderr.contains("`web`"), "{}", out.stderr);
}

/// Forwards everything to `upstream`; the first `POST .../deployments` is
/// applied upstream but answered 503, as if its response were lost.
struct LosingProxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    _rt: tokio::runtime::Runtime,
}

impl LosingProxy {
    fn start(upstream: String) -> LosingProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = seen.clone();
        let lost = Arc::new(Mutex::new(false));
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: HttpMethod, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (log, http, upstream, lost) =
                    (log.clone(), http.clone(), upstream.clone(), lost.clone());
                async move {
                    let line = format!("{method} {}", uri.path());
                    log.lock().expect("log lock").push(line.clone());
                    let target = format!(
                        "{upstream}{}",
                        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                    );
                    let m =
                        reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
                    let mut req = http.request(m, target).body(body.to_vec());
                    for (k, v) in headers.iter() {
                        if k != "host" {
                            req = req.header(k.as_str(), v.as_bytes());
                        }
                    }
                    let resp = match req.send().await {
                        Ok(r) => r,
                        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                    };
                    let status = StatusCode::from_u16(resp.status().as_u16())
                        .unwrap_or(StatusCode::BAD_GATEWAY);
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let lose = method == HttpMethod::POST
                        && line.ends_with("/deployments")
                        && !std::mem::replace(&mut *lost.lock().expect("flag lock"), true);
                    if lose {
                        return (StatusCode::SERVICE_UNAVAILABLE, "upstream timed out")
                            .into_response();
                    }
                    let mut out: Response = (status, bytes.to_vec()).into_response();
                    if let Ok(ct) = "application/json".parse() {
                        out.headers_mut().insert("content-type", ct);
                    }
                    out
                }
            },
        );
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LosingProxy { url, seen, _rt: rt }
    }

    fn count(&self, line: &str) -> usize {
        let seen = self.seen.lock().expect("log lock");
        seen.iter().filter(|l| l.as_str() == line).count()
    }
}

#[test]
fn lost_deployment_response_is_adopted_not_repeated() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("apps_lifecycle");
    let source = synced_source(&emu, &b);
    let proxy = LosingProxy::start(emu.url.clone());

    let out = emu
        .lakebundle()
        .env("DATABRICKS_HOST", &proxy.url)
        .arg("-C")
        .arg(&b.root)
        .args(["-t", TARGET, "deploy", "--auto-approve"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run lakebundle");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deploys = format!("POST /api/2.0/apps/{APP}/deployments");
    assert_eq!(proxy.count(&deploys), 1, "the lost call is not repeated");
    assert_eq!(
        proxy.count(&format!("POST /api/2.0/apps/{APP}/start")),
        0,
        "a started app is created with its compute running"
    );
    assert_eq!(
        proxy.count(&format!("GET /api/2.0/apps/{APP}/deployments")),
        1,
        "one listing finds it"
    );
    assert_eq!(deployments(&api).len(), 1);
    assert_running_from(&api, &source);
}
