//! Workspace REST client. See `../shared/reference/databricks-api.md`.
//!
//! [`Client::call`] is the one JSON entry point (auth, retries, error
//! mapping); [`Client::call_raw`] moves raw bytes (file upload/export). Typed
//! services hang off the client: [`Client::database`], [`Client::jobs`],
//! [`Client::apps`], [`Client::workspace`], [`Client::permissions`],
//! [`Client::me`].

pub(crate) mod auth;
pub(crate) mod error;
pub mod permissions;
mod retry;
pub mod types;
pub(crate) mod workspace;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use auth::{AuthError, AuthOptions, Credentials, ResolvedAuth, Secret};
pub use error::ApiError;
pub use reqwest::Method;

use auth::M2mTokenSource;
use retry::{Backoff, Disposition, Repeat};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("lakebundle/", env!("CARGO_PKG_VERSION"));

/// Client tuning. Defaults follow the Python SDK (60 s per call, 300 s total
/// retry budget).
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Timeout of one HTTP attempt (connect + request + response).
    pub request_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Total time one logical call may spend retrying.
    pub retry_budget: Duration,
    /// First backoff step without `Retry-After`; doubles per attempt.
    pub backoff_base: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            retry_budget: Duration::from_secs(300),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// A raw request body.
#[derive(Clone, Copy, Debug)]
pub struct RawBody<'a> {
    pub bytes: &'a [u8],
    pub content_type: &'a str,
}

/// A raw (non-JSON) response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

enum Body<'a> {
    None,
    Json(&'a Value),
    Raw(RawBody<'a>),
}

enum Auth {
    Pat(HeaderValue),
    M2m(M2mTokenSource),
}

struct Inner {
    host: String,
    http: reqwest::Client,
    auth: Auth,
    workspace_id: Option<HeaderValue>,
    config: ClientConfig,
}

/// An authenticated workspace client. Cheap to clone (shared connection pool
/// and token cache).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token: host and auth type only.
        f.debug_struct("Client")
            .field("host", &self.inner.host)
            .field("auth_type", &self.auth_type())
            .finish()
    }
}

/// Describe a reqwest error without its URL, with its cause chain (e.g.
/// "error sending request: connection refused").
pub(crate) fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body error"
    } else {
        "request failed"
    };
    let mut out = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl Client {
    /// Resolve auth per reference §3 and build a client.
    pub fn from_options(opts: &AuthOptions, config: ClientConfig) -> Result<Client, AuthError> {
        Client::from_resolved(auth::resolve(opts)?, config)
    }

    /// A PAT client for a known host (e.g. the in-process local workspace).
    pub fn with_token(
        host: &str,
        token: Secret,
        config: ClientConfig,
    ) -> Result<Client, AuthError> {
        let host = auth::normalize_host(host).map_err(|message| AuthError::InvalidHost {
            host: host.to_string(),
            origin: "Client::with_token".into(),
            message,
        })?;
        Client::from_resolved(
            ResolvedAuth {
                host,
                credentials: Credentials::Pat(token),
                workspace_id: None,
                origin: vec![],
            },
            config,
        )
    }

    /// Build a client from already resolved auth.
    pub fn from_resolved(
        resolved: ResolvedAuth,
        config: ClientConfig,
    ) -> Result<Client, AuthError> {
        let mut builder = reqwest::Client::builder();
        if is_loopback_host(&resolved.host) {
            // A local workspace is never reached through an HTTP proxy.
            builder = builder.no_proxy();
        }
        let http = builder
            .user_agent(USER_AGENT)
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            // API calls never redirect; following one could carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::HttpClient(describe_reqwest_error(&e)))?;
        let auth = match resolved.credentials {
            Credentials::Pat(token) => {
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                        AuthError::HttpClient(
                            "the token contains characters not allowed in a header".into(),
                        )
                    })?;
                v.set_sensitive(true);
                Auth::Pat(v)
            }
            Credentials::OAuthM2m {
                client_id,
                client_secret,
                discovery_url,
                scopes,
            } => Auth::M2m(M2mTokenSource::new(
                &resolved.host,
                client_id,
                client_secret,
                discovery_url,
                scopes,
                http.clone(),
            )),
        };
        let workspace_id = resolved
            .workspace_id
            .and_then(|id| HeaderValue::from_str(&id).ok());
        Ok(Client {
            inner: Arc::new(Inner {
                host: resolved.host,
                http,
                auth,
                workspace_id,
                config,
            }),
        })
    }

    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// `pat` or `oauth-m2m`.
    pub fn auth_type(&self) -> &'static str {
        match self.inner.auth {
            Auth::Pat(_) => "pat",
            Auth::M2m(_) => "oauth-m2m",
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// One REST call with auth and retries. `path` starts with `/api/`.
    /// Returns the JSON body (`{}` for an empty body). Whether a failed
    /// attempt is re-sent follows from what the request does (see
    /// `retry::classify`): a create whose response was lost yields
    /// [`ApiError::OutcomeUnknown`]; reads, upserts and deletes are retried.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let method_s = method.to_string();
        let repeat = retry::classify(&method, path, query, body);
        let body = body.map_or(Body::None, Body::Json);
        let resp = self
            .execute(method, path, query, body, repeat, "application/json")
            .await?;
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(&resp.body).map_err(|e| {
            ApiError::invalid_response(
                &method_s,
                path,
                format!("response is not valid JSON (HTTP {}): {e}", resp.status),
            )
        })
    }

    /// [`Client::call`] decoding the response into `T`.
    pub async fn call_typed<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let method_s = method.to_string();
        let value = self.call(method, path, query, body).await?;
        decode(&method_s, path, value)
    }

    /// A call with a raw body and/or a raw response (file upload, export),
    /// retried by the same rules as [`Client::call`].
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<RawBody<'_>>,
    ) -> Result<RawResponse, ApiError> {
        let repeat = retry::classify(&method, path, query, None);
        let body = body.map_or(Body::None, Body::Raw);
        self.execute(method, path, query, body, repeat, "*/*").await
    }

    fn url(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Url, ApiError> {
        let mut url = reqwest::Url::parse(&format!("{}{}", self.inner.host, path))
            .map_err(|e| ApiError::transport(method, path, format!("invalid request URL: {e}")))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn auth_header(&self) -> Result<HeaderValue, auth::TokenError> {
        match &self.inner.auth {
            Auth::Pat(v) => Ok(v.clone()),
            Auth::M2m(src) => {
                let header = src.header().await?;
                let mut v =
                    HeaderValue::from_str(header.expose()).map_err(|_| auth::TokenError {
                        message: "the OAuth token contains characters not allowed in a header"
                            .into(),
                        retryable: false,
                    })?;
                v.set_sensitive(true);
                Ok(v)
            }
        }
    }

    /// The attempt loop shared by every call.
    async fn execute(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
        repeat: Repeat,
        accept: &'static str,
    ) -> Result<RawResponse, ApiError> {
        let m = method.to_string();
        let url = self.url(&m, path, query)?;
        let mut backoff = Backoff::new(&self.inner.config);
        let mut reauthenticated = false;
        // Some earlier attempt may have done the work (its reply was lost).
        let mut maybe_applied = false;
        // Whether any attempt reached the server (then it is not a dead address).
        let mut got_response = false;
        loop {
            let authorization = match self.auth_header().await {
                Ok(v) => v,
                Err(e) if e.retryable => {
                    if let Some(d) = backoff.next_delay(None) {
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(ApiError::unauthenticated(
                        &m,
                        path,
                        gave_up(e.message, &backoff),
                    ));
                }
                Err(e) => return Err(ApiError::unauthenticated(&m, path, e.message)),
            };
            let mut req = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, authorization)
                .header(ACCEPT, accept);
            if let Some(id) = &self.inner.workspace_id {
                req = req.header("X-Databricks-Workspace-Id", id.clone());
            }
            req = match &body {
                Body::Json(v) => req
                    .header(CONTENT_TYPE, "application/json")
                    .body(v.to_string()),
                Body::Raw(raw) => req
                    .header(CONTENT_TYPE, raw.content_type)
                    .body(raw.bytes.to_vec()),
                // Explicit empty body: `Content-Length: 0` like the SDK.
                Body::None if method != Method::GET && method != Method::HEAD => {
                    req.header(CONTENT_LENGTH, "0").body(Vec::new())
                }
                Body::None => req,
            };
            let attempt = backoff.attempts() + 1;
            let (disposition, retry_after, outcome) = match req.send().await {
                Ok(resp) => {
                    got_response = true;
                    let status = resp.status().as_u16();
                    let retry_after = retry::parse_retry_after(resp.headers().get(RETRY_AFTER));
                    match resp.bytes().await {
                        Ok(bytes) => {
                            tracing::debug!(target: "lakebundle::api", method = %m, path, status, attempt, "response");
                            let body = bytes.to_vec();
                            if status == 401
                                && !reauthenticated
                                && matches!(self.inner.auth, Auth::M2m(_))
                            {
                                // The cached token may have been revoked early: fetch a new one once.
                                if let Auth::M2m(src) = &self.inner.auth {
                                    src.invalidate().await;
                                }
                                reauthenticated = true;
                                continue;
                            }
                            if status == 404 || status == 400 {
                                let err = ApiError::from_response(&m, path, status, &body);
                                if retry::resent_delete_done(
                                    repeat,
                                    maybe_applied,
                                    err.is_not_found(),
                                    &error_code(&body),
                                ) {
                                    tracing::debug!(target: "lakebundle::api", method = %m, path, attempt, "re-sent delete found the object gone: done");
                                    return Ok(RawResponse {
                                        status,
                                        body: Vec::new(),
                                    });
                                }
                            }
                            maybe_applied |= retry::may_have_applied(Some(status), false);
                            (
                                retry::for_status(status, repeat),
                                retry_after,
                                Ok(RawResponse { status, body }),
                            )
                        }
                        // The headers arrived but the body was cut: the work may be done.
                        Err(e) => (
                            {
                                maybe_applied = true;
                                if repeat.resendable() {
                                    Disposition::Retry
                                } else {
                                    Disposition::OutcomeUnknown
                                }
                            },
                            None,
                            Err(format!(
                                "HTTP {status}, then {}",
                                describe_reqwest_error(&e)
                            )),
                        ),
                    }
                }
                Err(e) => {
                    tracing::debug!(target: "lakebundle::api", method = %m, path, attempt, error = %describe_reqwest_error(&e), "transport error");
                    maybe_applied |= retry::may_have_applied(None, e.is_connect());
                    if e.is_connect() && !got_response {
                        backoff.limit_budget(retry::CONNECT_FAILURE_BUDGET);
                    }
                    (
                        retry::for_transport(&e, repeat),
                        None,
                        Err(describe_reqwest_error(&e)),
                    )
                }
            };
            match disposition {
                Disposition::Done => {
                    if let Ok(resp) = outcome {
                        return Ok(resp);
                    }
                }
                Disposition::Fail => {
                    if let Ok(resp) = &outcome {
                        let err = ApiError::from_response(&m, path, resp.status, &resp.body);
                        if !retry::is_transient_message(err.message()) {
                            return Err(err);
                        }
                    }
                }
                Disposition::OutcomeUnknown => {
                    let what = match &outcome {
                        Ok(resp) => format!(
                            "HTTP {} {}",
                            resp.status,
                            ApiError::from_response(&m, path, resp.status, &resp.body).message()
                        ),
                        Err(msg) => msg.clone(),
                    };
                    return Err(ApiError::outcome_unknown(
                        &m,
                        path,
                        format!("{what}; not re-sent because a second {m} {path} could create a duplicate"),
                    ));
                }
                Disposition::Retry => {}
            }
            // Retry (or give up with the last error once the budget is spent).
            if let Some(delay) = backoff.next_delay(retry_after) {
                tracing::debug!(target: "lakebundle::api", method = %m, path, attempt, delay_ms = delay.as_millis() as u64, "retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(match outcome {
                Ok(resp) => {
                    let mut e = ApiError::from_response(&m, path, resp.status, &resp.body);
                    e.append_note(&gave_up(String::new(), &backoff));
                    e
                }
                Err(msg) => ApiError::transport(&m, path, gave_up(msg, &backoff)),
            });
        }
    }

    /// Workspace files (state and lock).
    pub fn workspace(&self) -> workspace::WorkspaceApi<'_> {
        workspace::WorkspaceApi { client: self }
    }
    /// Object permissions.
    pub fn permissions(&self) -> permissions::PermissionsApi<'_> {
        permissions::PermissionsApi { client: self }
    }
}

/// The `error_code` of an error body (empty when there is none).
fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error_code")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn gave_up(message: String, backoff: &Backoff) -> String {
    let note = format!(
        "gave up after {} attempt(s) in {:.1}s (retry budget)",
        backoff.attempts(),
        backoff.elapsed().as_secs_f64()
    );
    if message.is_empty() {
        note
    } else {
        format!("{message}; {note}")
    }
}

/// Decode a JSON value into `T`, reporting a shape mismatch as a transport
/// error (the server answered something we cannot read).
pub(crate) fn decode<T: DeserializeOwned>(
    method: &str,
    path: &str,
    value: Value,
) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::invalid_response(method, path, format!("unexpected response body: {e}"))
    })
}

/// `http://127.x.x.x`, `localhost` or `[::1]`.
fn is_loopback_host(host: &str) -> bool {
    match reqwest::Url::parse(host)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// Percent-escape one path segment (names may contain `.`; never `/`).
pub(crate) fn seg(name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

/// `Ok(None)` for a not-found error, so a read can map 404 to "missing".
/// Jobs also report a missing job as 400 `INVALID_PARAMETER_VALUE` "Job .. does
/// not exist."; that counts as missing too.
pub fn none_if_missing<T>(result: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(ApiError::InvalidParameter { message, .. }) if message.contains("does not exist") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Follow `next_page_token` (stop when absent or empty) collecting
/// `items_key` from every page. Shared by every list call.
pub async fn list_all(
    client: &Client,
    path: &str,
    base_query: &[(&str, String)],
    items_key: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let mut query = base_query.to_vec();
        if let Some(t) = &token {
            query.push(("page_token", t.clone()));
        }
        let page = client.call(Method::GET, path, &query, None).await?;
        if let Some(Value::Array(list)) = page.get(items_key) {
            items.extend(list.iter().cloned());
        }
        let has_more = page.get("has_more").and_then(Value::as_bool);
        match page.get("next_page_token").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && has_more != Some(false) => {
                if !seen.insert(t.to_string()) {
                    return Err(ApiError::invalid_response(
                        "GET",
                        path,
                        format!("pagination loop: page token {t:?} repeated"),
                    ));
                }
                token = Some(t.to_string());
            }
            _ => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests;
