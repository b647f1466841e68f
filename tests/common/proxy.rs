//! A loopback proxy in front of the real emulator that forwards every
//! request unchanged and records what was sent, so tests can count requests
//! (the emulator itself keeps no request log).

#![allow(dead_code)]

/// Forwards every request to `upstream`; records `(METHOD path, body bytes)`
/// and, apart, each `METHOD path?query`.
pub struct CountingProxy {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, usize)>>>,
    with_query: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CountingProxy {
    pub async fn start(upstream: String) -> CountingProxy {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::IntoResponse;
        let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, usize)>>> = Default::default();
        let log = seen.clone();
        let with_query: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let qlog = with_query.clone();
        let http = reqwest::Client::new();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (log, http, upstream) = (log.clone(), http.clone(), upstream.clone());
                let qlog = qlog.clone();
                async move {
                    log.lock()
                        .expect("log lock")
                        .push((format!("{method} {}", uri.path()), body.len()));
                    qlog.lock().expect("log lock").push(format!(
                        "{method} {}",
                        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                    ));
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
                            let ct = resp
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("application/json")
                                .to_string();
                            let bytes = resp.bytes().await.unwrap_or_default();
                            (status, [("content-type", ct)], bytes.to_vec()).into_response()
                        }
                        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                    }
                }
            },
        );
        // Bodies of any size pass (the emulator enforces the real limits).
        let app = app.layer(axum::extract::DefaultBodyLimit::disable());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CountingProxy {
            url,
            seen,
            with_query,
        }
    }

    /// Every request so far: `(METHOD path, body bytes)`.
    pub fn seen(&self) -> Vec<(String, usize)> {
        self.seen.lock().expect("log lock").clone()
    }

    /// Every request so far as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.with_query.lock().expect("log lock").clone()
    }

    /// How many requests had exactly this `METHOD path`.
    pub fn count(&self, line: &str) -> usize {
        let seen = self.seen.lock().expect("log lock");
        seen.iter().filter(|(l, _)| l == line).count()
    }
}
