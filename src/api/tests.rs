//! Client behaviour against a real local HTTP server (axum on 127.0.0.1):
//! headers, retries, Retry-After, lost responses, timeouts, error mapping,
//! OAuth M2M discovery and token refresh. The server is scripted per test;
//! it stands in for transport behaviour, not for the emulator's semantics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::*;

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

type Script = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// What the scripted server answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

fn json_reply(status: u16, v: Value) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: v.to_string().into_bytes(),
        delay: Duration::ZERO,
    }
}

fn ok(v: Value) -> Reply {
    json_reply(200, v)
}

impl Reply {
    fn header(mut self, k: &'static str, v: &str) -> Reply {
        self.headers.push((k, v.to_string()));
        self
    }
    fn delayed(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Server {
        let script: Script = Arc::new(script);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let counter = Arc::new(AtomicUsize::new(0));
        let (s2, c2) = (seen.clone(), counter.clone());
        let app = axum::Router::new().fallback(
            move |method: HttpMethod, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (script, seen, counter) = (script.clone(), s2.clone(), c2.clone());
                async move {
                    let req = Seen {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                            .into_owned()
                            .collect(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                            })
                            .collect(),
                        body: body.to_vec(),
                    };
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    seen.lock().unwrap().push(req.clone());
                    let reply = script(&req, n);
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    let mut resp: Response =
                        (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
                    for (k, v) in reply.headers {
                        resp.headers_mut().insert(k, v.parse().unwrap());
                    }
                    resp
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

/// `GET /Me` (the calling identity), as the CLI asks it.
async fn me(c: &Client) -> Result<crate::api::types::scim::User, ApiError> {
    c.call_typed(Method::GET, "/api/2.0/preview/scim/v2/Me", &[], None)
        .await
}

fn fast() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry_budget: Duration::from_secs(5),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
    }
}

fn pat(url: &str, config: ClientConfig) -> Client {
    Client::with_token(url, Secret::new("dapi-test-token"), config).unwrap()
}

fn m2m(url: &str, discovery: Option<String>) -> Client {
    let resolved = ResolvedAuth {
        host: url.to_string(),
        credentials: Credentials::OAuthM2m {
            client_id: "sp-id".into(),
            client_secret: Secret::new("sp-super-secret"),
            discovery_url: discovery,
            scopes: "all-apis".into(),
        },
        workspace_id: Some("1234567890".into()),
        origin: vec![],
    };
    Client::from_resolved(resolved, fast()).unwrap()
}

#[tokio::test]
async fn sends_auth_user_agent_query_and_json_body() {
    let srv = Server::start(|_, _| ok(json!({"job_id": 9223372036854775807i64}))).await;
    let c = pat(&srv.url, fast());
    let body = json!({"name": "x"});
    let v = c
        .call(
            Method::POST,
            "/api/2.2/jobs/create",
            &[("a", "b c".into()), ("flag", "true".into())],
            Some(&body),
        )
        .await
        .unwrap();
    assert_eq!(
        v["job_id"].as_i64(),
        Some(i64::MAX),
        "int64 survives exactly"
    );
    let s = &srv.seen()[0];
    assert_eq!(s.method, "POST");
    assert_eq!(s.path, "/api/2.2/jobs/create");
    assert_eq!(s.query["a"], "b c");
    assert_eq!(s.query["flag"], "true");
    assert_eq!(s.headers["authorization"], "Bearer dapi-test-token");
    assert_eq!(
        s.headers["user-agent"],
        format!("lakebundle/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(s.headers["content-type"], "application/json");
    assert_eq!(s.headers["accept"], "application/json");
    assert_eq!(serde_json::from_slice::<Value>(&s.body).unwrap(), body);
}

#[tokio::test]
async fn empty_body_is_empty_object_and_bodyless_post_sends_length_zero() {
    let srv = Server::start(|_, _| Reply {
        status: 200,
        headers: vec![],
        body: vec![],
        delay: Duration::ZERO,
    })
    .await;
    let c = pat(&srv.url, fast());
    assert_eq!(
        c.call(Method::DELETE, "/api/2.0/apps/a", &[], None)
            .await
            .unwrap(),
        json!({})
    );
    assert_eq!(
        srv.seen()[0]
            .headers
            .get("content-length")
            .map(String::as_str),
        Some("0")
    );
}

#[tokio::test]
async fn error_response_maps_with_method_path_message() {
    let srv = Server::start(|_, _| {
        json_reply(404, json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Database instance 'x' does not exist."}))
    })
    .await;
    let c = pat(&srv.url, fast());
    let e = c
        .call(
            Method::GET,
            "/api/2.0/database/instances/x",
            &[("q", "1".into())],
            None,
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.method(), "GET");
    assert_eq!(e.path(), "/api/2.0/database/instances/x");
    assert_eq!(e.message(), "Database instance 'x' does not exist.");
    assert_eq!(srv.seen().len(), 1, "404 is not retried");
    assert_eq!(
        crate::resources::common::get_if_exists(&c, "/api/2.0/database/instances/x")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn jobs_missing_400_is_not_found() {
    let srv = Server::start(|_, _| {
        json_reply(
            400,
            json!({"error_code": "INVALID_PARAMETER_VALUE", "message": "Job 42 does not exist."}),
        )
    })
    .await;
    let c = pat(&srv.url, fast());
    let get = [("job_id", "42".to_string())];
    let e = c.call(Method::GET, "/api/2.2/jobs/get", &get, None).await;
    assert!(e.unwrap_err().is_not_found());
    let jobs = crate::resources::kind_impl(crate::resources::Kind::Jobs);
    assert_eq!(jobs.read(&c, "42").await.unwrap(), None);
}

#[tokio::test]
async fn honours_integer_retry_after_on_429_even_for_post() {
    let srv = Server::start(|_, n| {
        if n == 0 {
            json_reply(
                429,
                json!({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}),
            )
            .header("Retry-After", "1")
        } else {
            ok(json!({"job_id": 5}))
        }
    })
    .await;
    let c = pat(&srv.url, fast());
    let start = Instant::now();
    let created = c
        .call(
            Method::POST,
            "/api/2.2/jobs/create",
            &[],
            Some(&json!({"name": "j"})),
        )
        .await
        .unwrap();
    assert_eq!(created["job_id"], 5);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(srv.seen().len(), 2);
}

#[tokio::test]
async fn retries_503_on_get() {
    let srv = Server::start(|_, n| {
        if n < 3 {
            json_reply(
                503,
                json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}),
            )
        } else {
            ok(json!({"name": "db1", "state": "AVAILABLE"}))
        }
    })
    .await;
    let c = pat(&srv.url, fast());
    let inst: crate::api::types::database::DatabaseInstance = c
        .call_typed(Method::GET, "/api/2.0/database/instances/db1", &[], None)
        .await
        .unwrap();
    assert_eq!(inst.state.as_deref(), Some("AVAILABLE"));
    assert_eq!(srv.seen().len(), 4);
}

#[tokio::test]
async fn lost_response_on_post_create_is_outcome_unknown_and_not_resent() {
    let srv = Server::start(|_, _| {
        json_reply(
            503,
            json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "lost"}),
        )
    })
    .await;
    let c = pat(&srv.url, fast());
    let body = json!({"name": "db1", "capacity": "CU_1"});
    let e = c
        .call(
            Method::POST,
            "/api/2.0/database/instances",
            &[],
            Some(&body),
        )
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e}");
    assert_eq!(e.method(), "POST");
    assert_eq!(e.path(), "/api/2.0/database/instances");
    assert!(
        e.message().contains("503") && e.message().contains("lost"),
        "{e}"
    );
    assert_eq!(
        srv.seen().len(),
        1,
        "a non-idempotent POST is never re-sent after a 503"
    );
}

#[tokio::test]
async fn idempotent_post_is_retried_after_503() {
    let srv = Server::start(|_, n| {
        if n == 0 {
            json_reply(
                503,
                json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"}),
            )
        } else {
            ok(json!({"token": "pg-pass", "expiration_time": "2030-01-01T00:00:00Z"}))
        }
    })
    .await;
    let c = pat(&srv.url, fast());
    let body = json!({"instance_names": ["db1"], "request_id": uuid::Uuid::new_v4().to_string()});
    let cred: crate::api::types::database::DatabaseCredential = c
        .call_typed(
            Method::POST,
            "/api/2.0/database/credentials",
            &[],
            Some(&body),
        )
        .await
        .unwrap();
    assert_eq!(cred.token.expose(), "pg-pass");
    let seen = srv.seen();
    assert_eq!(seen.len(), 2);
    // Both attempts carry the same idempotency key.
    let ids: Vec<Value> = seen
        .iter()
        .map(|s| serde_json::from_slice::<Value>(&s.body).unwrap()["request_id"].clone())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert!(ids[0].is_string());
}

/// The first attempt is applied but its reply is lost (503), the second
/// is answered by `then`.
fn lost_then(then: Reply) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    let then = Arc::new(Mutex::new(Some(then)));
    move |_, n| {
        if n == 0 {
            json_reply(
                503,
                json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "lost"}),
            )
        } else {
            then.lock().unwrap().take().unwrap_or_else(|| ok(json!({})))
        }
    }
}

#[tokio::test]
async fn sync_calls_are_resent_after_a_lost_response() {
    // mkdirs, import with overwrite, jobs/reset: each lost reply is re-sent.
    for (path, body) in [
        ("/api/2.0/workspace/mkdirs", json!({"path": "/W/f"})),
        (
            "/api/2.0/workspace/import",
            json!({"path": "/W/f/a.py", "content": "", "format": "AUTO", "overwrite": true}),
        ),
        (
            "/api/2.2/jobs/reset",
            json!({"job_id": 1, "new_settings": {"name": "j"}}),
        ),
    ] {
        let srv = Server::start(lost_then(ok(json!({})))).await;
        let c = pat(&srv.url, fast());
        c.call(Method::POST, path, &[], Some(&body))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(srv.count(path), 2, "{path} re-sent once");
    }
}

#[tokio::test]
async fn resent_delete_that_finds_nothing_is_done() {
    let missing = json_reply(
        404,
        json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Path (/W/f/a.py) doesn't exist."}),
    );
    let srv = Server::start(lost_then(missing)).await;
    let c = pat(&srv.url, fast());
    c.workspace().delete("/W/f/a.py", false).await.unwrap();
    assert_eq!(srv.count("/api/2.0/workspace/delete"), 2);

    // Jobs answer a missing job with the legacy 400; same meaning.
    let missing_job = json_reply(
        400,
        json!({"error_code": "INVALID_PARAMETER_VALUE", "message": "Job 7 does not exist."}),
    );
    let srv = Server::start(lost_then(missing_job)).await;
    let c = pat(&srv.url, fast());
    let body = json!({"job_id": 7});
    crate::resources::common::ok_if_missing(
        c.call(Method::POST, "/api/2.2/jobs/delete", &[], Some(&body))
            .await,
    )
    .unwrap();

    // A first attempt that finds nothing is still reported: the caller decides.
    let srv = Server::start(|_, _| {
        json_reply(
            404,
            json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "gone"}),
        )
    })
    .await;
    let c = pat(&srv.url, fast());
    let e = c.workspace().delete("/W/x", false).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");

    // A wrong endpoint after a lost reply is an error, not "deleted".
    let wrong = json_reply(
        404,
        json!({"error_code": "ENDPOINT_NOT_FOUND", "message": "No API found"}),
    );
    let srv = Server::start(lost_then(wrong)).await;
    let c = pat(&srv.url, fast());
    assert!(c.workspace().delete("/W/x", false).await.is_err());
}

#[tokio::test]
async fn import_without_overwrite_stays_outcome_unknown() {
    // The deploy lock is created this way: it must never be re-sent blindly.
    let srv = Server::start(lost_then(ok(json!({})))).await;
    let c = pat(&srv.url, fast());
    let e = c
        .workspace()
        .import_file("/W/state/deploy.lock", b"{}", false)
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e}");
    assert_eq!(srv.seen().len(), 1);
}

#[tokio::test]
async fn run_now_carries_an_idempotency_token_and_retries() {
    let srv = Server::start(|_, n| {
        if n == 0 {
            json_reply(
                503,
                json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"}),
            )
        } else {
            ok(json!({"run_id": 77, "number_in_job": 1}))
        }
    })
    .await;
    let c = pat(&srv.url, fast());
    let body = crate::resources::job::run_now_body(42, &json!({"job_parameters": {"a": "1"}}));
    let r = c
        .call(Method::POST, "/api/2.2/jobs/run-now", &[], Some(&body))
        .await
        .unwrap();
    assert_eq!(r["run_id"], 77);
    let bodies: Vec<Value> = srv
        .seen()
        .iter()
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["job_id"], 42);
    assert_eq!(bodies[0]["job_parameters"]["a"], "1");
    assert_eq!(
        bodies[0]["idempotency_token"],
        bodies[1]["idempotency_token"]
    );
}

#[tokio::test]
async fn transient_error_messages_are_retried() {
    let srv = Server::start(|_, n| {
        if n == 0 {
            json_reply(400, json!({"error_code": "INVALID_STATE", "message": "RPC token bucket limit has been exceeded"}))
        } else {
            ok(json!({"job_id": 3}))
        }
    })
    .await;
    let c = pat(&srv.url, fast());
    let created = c
        .call(
            Method::POST,
            "/api/2.2/jobs/create",
            &[],
            Some(&json!({"name": "j"})),
        )
        .await
        .unwrap();
    assert_eq!(created["job_id"], 3);
    assert_eq!(srv.seen().len(), 2);
}

#[tokio::test]
async fn retry_budget_is_bounded() {
    let srv = Server::start(|_, _| {
        json_reply(
            429,
            json!({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "nope"}),
        )
        .header("Retry-After", "0")
    })
    .await;
    let cfg = ClientConfig {
        retry_budget: Duration::from_millis(300),
        ..fast()
    };
    let c = pat(&srv.url, cfg);
    let start = Instant::now();
    let e = c
        .call(Method::GET, "/api/2.0/apps", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::RateLimited { .. }), "{e}");
    assert!(e.message().contains("gave up"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(srv.seen().len() >= 2);
}

#[tokio::test]
async fn retry_after_beyond_budget_gives_up_at_once() {
    let srv = Server::start(|_, _| {
        json_reply(429, json!({"message": "later"})).header("Retry-After", "60")
    })
    .await;
    let c = pat(
        &srv.url,
        ClientConfig {
            retry_budget: Duration::from_secs(2),
            ..fast()
        },
    );
    let start = Instant::now();
    let e = c.call(Method::GET, "/x", &[], None).await.unwrap_err();
    assert!(matches!(e, ApiError::RateLimited { .. }));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn connect_errors_are_retried_then_reported_as_transport() {
    // A port that was just bound and released: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = ClientConfig {
        retry_budget: Duration::from_millis(200),
        ..fast()
    };
    let c = pat(&format!("http://127.0.0.1:{port}"), cfg);
    // Even a POST: nothing was sent, so it is neither applied nor ambiguous.
    let e = c
        .call(Method::POST, "/api/2.2/jobs/create", &[], Some(&json!({})))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Transport { .. }), "{e}");
    assert!(
        e.message().contains("gave up") && e.message().contains("attempt"),
        "{e}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn timeouts_retry_gets_and_make_posts_outcome_unknown() {
    let srv = Server::start(|s, n| {
        if n == 0 || s.method == "POST" {
            ok(json!({})).delayed(Duration::from_millis(500))
        } else {
            ok(json!({"ok": true}))
        }
    })
    .await;
    let cfg = ClientConfig {
        request_timeout: Duration::from_millis(150),
        ..fast()
    };
    let c = pat(&srv.url, cfg);
    assert_eq!(
        c.call(Method::GET, "/a", &[], None).await.unwrap(),
        json!({"ok": true})
    );
    let e = c
        .call(
            Method::POST,
            "/api/2.0/apps",
            &[],
            Some(&json!({"name": "a"})),
        )
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e}");
    assert!(e.message().contains("timed out"), "{e}");
    assert_eq!(srv.count("/api/2.0/apps"), 1);
}

#[tokio::test]
async fn connection_dropped_after_send_is_outcome_unknown_for_post() {
    // A raw TCP server that reads the request and hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut sock, _)) = listener.accept().await {
            acc.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
    });
    let c = pat(&format!("http://{addr}"), fast());
    let query = [("no_compute", "true".to_string())];
    let e = c
        .call(
            Method::POST,
            "/api/2.0/apps",
            &query,
            Some(&json!({"name": "a"})),
        )
        .await
        .unwrap_err();
    assert!(e.is_outcome_unknown(), "{e}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn raw_upload_and_download() {
    let srv = Server::start(|s, _| {
        if s.path.starts_with("/api/2.0/workspace-files/import-file/") {
            ok(json!({}))
        } else {
            Reply {
                status: 200,
                headers: vec![],
                body: vec![0, 159, 146, 150, b'x'],
                delay: Duration::ZERO,
            }
        }
    })
    .await;
    let c = pat(&srv.url, fast());
    c.workspace()
        .import_file(
            "/Workspace/Users/me@example.com/state/resources.json",
            b"{\"a\":1}",
            true,
        )
        .await
        .unwrap();
    let bytes = c
        .workspace()
        .export("/Workspace/Users/me@example.com/state/resources.json")
        .await
        .unwrap();
    assert_eq!(bytes, vec![0, 159, 146, 150, b'x']);
    let seen = srv.seen();
    assert_eq!(seen[0].path, "/api/2.0/workspace-files/import-file/Workspace/Users/me%40example.com/state/resources.json");
    assert_eq!(seen[0].query["overwrite"], "true");
    assert_eq!(seen[0].headers["content-type"], "application/octet-stream");
    assert_eq!(seen[0].body, b"{\"a\":1}");
    assert_eq!(seen[1].path, "/api/2.0/workspace/export");
    assert_eq!(
        seen[1].query["path"],
        "/Workspace/Users/me@example.com/state/resources.json"
    );
    assert_eq!(seen[1].query["direct_download"], "true");
}

#[tokio::test]
async fn write_file_creates_parent_on_404() {
    // Script with state: 404 on the first import only.
    let state = Arc::new(AtomicUsize::new(0));
    let st = state.clone();
    let srv2 = Server::start(move |s, _| {
        if s.path.starts_with("/api/2.0/workspace-files/") && st.fetch_add(1, Ordering::SeqCst) == 0
        {
            json_reply(
                404,
                json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "parent missing"}),
            )
        } else {
            ok(json!({}))
        }
    })
    .await;
    let c = pat(&srv2.url, fast());
    c.workspace()
        .write_file("/Users/a/.bundle/b/dev/state/deploy.lock", b"{}", false)
        .await
        .unwrap();
    let seen: Vec<String> = srv2.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        seen,
        vec![
            "/api/2.0/workspace-files/import-file/Users/a/.bundle/b/dev/state/deploy.lock",
            "/api/2.0/workspace/mkdirs",
            "/api/2.0/workspace-files/import-file/Users/a/.bundle/b/dev/state/deploy.lock",
        ]
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&srv2.seen()[1].body).unwrap()["path"],
        "/Users/a/.bundle/b/dev/state"
    );
}

#[tokio::test]
async fn lists_follow_page_tokens() {
    let srv = Server::start(|s, _| match s.query.get("page_token").map(String::as_str) {
        None => ok(json!({"jobs": [{"job_id": 1}, {"job_id": 2}], "has_more": true, "next_page_token": "p2"})),
        Some("p2") => ok(json!({"jobs": [{"job_id": 3}], "has_more": false})),
        Some(_) => json_reply(400, json!({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad token"})),
    })
    .await;
    let c = pat(&srv.url, fast());
    let query = [("name", "my job".to_string())];
    let jobs = crate::api::list_all(&c, "/api/2.2/jobs/list", &query, "jobs")
        .await
        .unwrap();
    let ids: Vec<i64> = jobs.iter().map(|j| j["job_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(srv.seen()[0].query["name"], "my job");
}

#[tokio::test]
async fn repeated_page_token_is_an_error_not_a_hang() {
    let srv =
        Server::start(|_, _| ok(json!({"apps": [{"name": "a"}], "next_page_token": "same"}))).await;
    let c = pat(&srv.url, fast());
    let e = crate::api::list_all(&c, "/api/2.0/apps", &[], "apps")
        .await
        .unwrap_err();
    assert!(e.message().contains("pagination loop"), "{e}");
}

#[tokio::test]
async fn jobs_get_merges_task_pages() {
    let srv = Server::start(|s, _| match s.query.get("page_token").map(String::as_str) {
        None => ok(json!({"job_id": 7, "settings": {"name": "j", "tasks": [{"task_key": "a"}]}, "next_page_token": "t2"})),
        Some("t2") => ok(json!({"job_id": 7, "settings": {"tasks": [{"task_key": "b"}]}, "next_page_token": ""})),
        Some(_) => json_reply(500, json!({"message": "unexpected"})),
    })
    .await;
    let c = pat(&srv.url, fast());
    let jobs = crate::resources::kind_impl(crate::resources::Kind::Jobs);
    let job = jobs.read(&c, "7").await.unwrap().expect("job 7");
    assert_eq!(
        job["settings"]["tasks"],
        json!([{"task_key": "a"}, {"task_key": "b"}])
    );
    assert!(job.get("next_page_token").is_none());
    assert_eq!(srv.seen().len(), 2, "an empty token ends paging");
}

/// An OAuth server: metadata (optional), token endpoint, and an API that
/// accepts only the current token.
async fn oauth_server(expires_in: i64, with_metadata: bool) -> (Server, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let iss = issued.clone();
    let srv = Server::start(move |s, _| match s.path.as_str() {
        "/oidc/.well-known/oauth-authorization-server" if with_metadata => {
            let host = format!("http://{}", s.headers["host"]);
            ok(json!({"token_endpoint": format!("{host}/custom/token"), "authorization_endpoint": format!("{host}/oidc/v1/authorize")}))
        }
        "/custom/token" | "/oidc/v1/token" => {
            let expected = format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "sp-id:sp-super-secret")
            );
            if s.headers.get("authorization") != Some(&expected) {
                return json_reply(401, json!({"error": "invalid_client", "error_description": "bad client credentials"}));
            }
            let form: HashMap<String, String> = url::form_urlencoded::parse(&s.body).into_owned().collect();
            assert_eq!(form["grant_type"], "client_credentials");
            assert_eq!(form["scope"], "all-apis");
            let n = iss.fetch_add(1, Ordering::SeqCst) + 1;
            ok(json!({"access_token": format!("m2m-token-{n}"), "token_type": "Bearer", "expires_in": expires_in, "scope": "all-apis"}))
        }
        _ => {
            let current = format!("Bearer m2m-token-{}", iss.load(Ordering::SeqCst));
            if s.headers.get("authorization") == Some(&current) {
                ok(json!({"userName": "sp-id", "id": "1"}))
            } else {
                json_reply(401, json!({"error_code": "UNAUTHENTICATED", "message": "invalid token"}))
            }
        }
    })
    .await;
    (srv, issued)
}

#[tokio::test]
async fn m2m_discovers_endpoint_caches_and_refreshes_token() {
    let (srv, issued) = oauth_server(2, true).await;
    let c = m2m(&srv.url, None);
    assert_eq!(c.auth_type(), "oauth-m2m");
    // Concurrent first calls share one token fetch.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { me(&c).await })
        })
        .collect();
    for h in calls {
        assert_eq!(h.await.unwrap().unwrap().user_name, "sp-id");
    }
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    assert_eq!(srv.count("/oidc/.well-known/oauth-authorization-server"), 1);
    assert_eq!(srv.count("/custom/token"), 1);
    // expires_in 2 s refreshes 0.5 s early: after 1.6 s a new token is fetched.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    me(&c).await.unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let api_calls: Vec<Seen> = srv
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("scim"))
        .collect();
    assert_eq!(
        api_calls.last().unwrap().headers["authorization"],
        "Bearer m2m-token-2"
    );
    assert_eq!(
        api_calls[0].headers["x-databricks-workspace-id"],
        "1234567890"
    );
    assert!(!srv
        .seen()
        .iter()
        .filter(|s| s.path.contains("token"))
        .any(|s| s.headers.contains_key("x-databricks-workspace-id")));
}

#[tokio::test]
async fn m2m_falls_back_to_oidc_v1_token_without_metadata() {
    let (srv, issued) = oauth_server(3600, false).await;
    let c = m2m(&srv.url, None);
    me(&c).await.unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    assert_eq!(srv.count("/oidc/v1/token"), 1);
}

#[tokio::test]
async fn m2m_refetches_once_after_401() {
    let (srv, issued) = oauth_server(3600, false).await;
    let c = m2m(&srv.url, None);
    me(&c).await.unwrap();
    // Revoke: the server now expects the next token.
    issued.fetch_add(1, Ordering::SeqCst);
    me(&c).await.unwrap();
    assert_eq!(srv.count("/oidc/v1/token"), 2);
}

#[tokio::test]
async fn m2m_bad_secret_is_unauthenticated_without_leaking_it() {
    let (srv, _) = oauth_server(3600, true).await;
    let resolved = ResolvedAuth {
        host: srv.url.clone(),
        credentials: Credentials::OAuthM2m {
            client_id: "sp-id".into(),
            client_secret: Secret::new("wrong-secret-value"),
            discovery_url: Some(format!(
                "{}/oidc/.well-known/oauth-authorization-server",
                srv.url
            )),
            scopes: "all-apis".into(),
        },
        workspace_id: None,
        origin: vec![],
    };
    let c = Client::from_resolved(resolved, fast()).unwrap();
    let e = me(&c).await.unwrap_err();
    assert!(matches!(e, ApiError::Unauthenticated { .. }), "{e}");
    let text = format!("{e} {e:?} {c:?}");
    assert!(text.contains("bad client credentials"), "{text}");
    assert!(!text.contains("wrong-secret-value"), "{text}");
}

#[tokio::test]
async fn secrets_never_appear_in_client_debug_or_errors() {
    let srv = Server::start(|_, _| {
        json_reply(
            403,
            json!({"error_code": "PERMISSION_DENIED", "message": "no"}),
        )
    })
    .await;
    let c = pat(&srv.url, fast());
    let e = c.call(Method::GET, "/x", &[], None).await.unwrap_err();
    let text = format!("{c:?} {e} {e:?}");
    assert!(!text.contains("dapi-test-token"), "{text}");
    assert!(matches!(e, ApiError::PermissionDenied { .. }));
}

#[test]
fn loopback_hosts_bypass_proxies() {
    assert!(is_loopback_host("http://127.0.0.1:8080"));
    assert!(is_loopback_host("http://127.3.2.1:1"));
    assert!(is_loopback_host("http://localhost:9"));
    assert!(is_loopback_host("http://[::1]:9"));
    assert!(!is_loopback_host("https://dbc-1.cloud.databricks.com"));
    assert!(!is_loopback_host("http://10.0.0.1"));
}

#[tokio::test]
async fn unreadable_success_body_is_invalid_response_not_retried() {
    let srv = Server::start(|_, _| Reply {
        status: 200,
        headers: vec![],
        body: b"<html>proxy page</html>".to_vec(),
        delay: Duration::ZERO,
    })
    .await;
    let c = pat(&srv.url, fast());
    let e = c
        .call(Method::GET, "/api/2.0/apps/a", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::InvalidResponse { .. }), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(srv.seen().len(), 1);
}
