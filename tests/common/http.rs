//! An async HTTP client for the emulator's REST tests: one call shape
//! (status and JSON body, `{"raw": text}` when the body is not JSON), the
//! usual verbs, a must-succeed call and a bounded poll.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::Emulator;

pub struct HttpApi {
    http: reqwest::Client,
    url: String,
    token: String,
    /// Put before every path (`/api/2.1/unity-catalog` for the UC tests).
    prefix: String,
}

impl HttpApi {
    pub fn new(emu: &Emulator) -> HttpApi {
        HttpApi {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            url: emu.url.clone(),
            token: emu.token.clone(),
            prefix: String::new(),
        }
    }

    /// A client whose paths are relative to `prefix`.
    pub fn with_prefix(emu: &Emulator, prefix: &str) -> HttpApi {
        HttpApi {
            prefix: prefix.to_string(),
            ..HttpApi::new(emu)
        }
    }

    /// A call outside the prefix (`path` from the host).
    pub async fn at_host(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        self.send(method, &format!("{}{path}", self.url), Some(body))
            .await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{}{path}", self.url, self.prefix);
        self.send(method, &url, body).await
    }

    async fn send(&self, method: Method, url: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            json!({})
        } else {
            serde_json::from_str(&text).unwrap_or(json!({ "raw": text }))
        };
        (status, v)
    }

    /// A call that must answer 200.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), path, body).await;
        assert_eq!(s, 200, "{method} {path}: {v}");
        v
    }

    /// A POST that must answer 200.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body).await;
        assert_eq!(s, 200, "POST {path}: {v}");
        v
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Poll `path` until `pointer` is `want` (bounded; the emulator runs with
    /// short transitions).
    pub async fn until(&self, path: &str, pointer: &str, want: impl Into<Value>) -> Value {
        let want = want.into();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.ok(Method::GET, path, None).await;
            if v.pointer(pointer) == Some(&want) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{path}{pointer} never became {want}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
