//! Router, shared state and the request gate (latency, fault injection, authentication).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;

use super::backend::DbBackend;
use super::delay::Delay;
use super::faults::{Fault, Faults};
use super::http::ApiErr;
use super::lock::DataDirLock;
use super::store::Store;
use super::{
    apps, auth, catalogs, files, instances, jobs, permissions, pipelines, secrets, unity_catalog,
    warehouses, workspace, EmulatorConfig,
};

/// Who is calling: a user (PAT) or a service principal (OAuth M2M token).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Email of a user, application id of a service principal (= Postgres role name).
    pub user_name: String,
    pub service_principal: bool,
}

/// State shared by every handler.
pub struct Emu {
    pub cfg: EmulatorConfig,
    pub store: Store,
    pub backend: Arc<dyn DbBackend>,
    pub url: String,
    pub workspace_id: String,
    pub faults: Faults,
    /// `--latency-ms`, added to every request but the exempt ones.
    latency: Delay,
    lock: Mutex<Option<DataDirLock>>,
    /// Serialises backend operations per instance uid (create, resize, stop, delete).
    instance_ops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Key of the database credentials (see `instances::credential`): a token is derived
    /// from it, the caller and a stored nonce, so the store never holds a token and a token
    /// stays the same across emulator processes (`--local` starts one per command).
    pub credential_key: CredentialKey,
    /// Serialises credential issuing, so two concurrent first requests agree on one token.
    pub credential_turn: tokio::sync::Mutex<()>,
    /// Lakebase Autoscaling computes: endpoint proxies, suspend and wake.
    pub computes: super::postgres_api::Computes,
}

/// A 32-byte secret; never printed.
#[derive(Clone)]
pub struct CredentialKey(pub [u8; 32]);

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialKey(****)")
    }
}

impl Emu {
    pub fn new(
        cfg: EmulatorConfig,
        store: Store,
        backend: Arc<dyn DbBackend>,
        url: String,
        lock: DataDirLock,
        credential_key: CredentialKey,
    ) -> Emu {
        let faults = Faults::new(cfg.seed, cfg.fail_rate, cfg.lost_response_rate);
        let latency = Delay::new(Duration::from_millis(cfg.latency_ms));
        Emu {
            cfg,
            store,
            backend,
            url,
            workspace_id: "1234567890123456".into(),
            faults,
            latency,
            lock: Mutex::new(Some(lock)),
            instance_ops: Mutex::new(HashMap::new()),
            credential_key,
            credential_turn: tokio::sync::Mutex::new(()),
            computes: super::postgres_api::Computes::default(),
        }
    }

    pub fn release_lock(&self) {
        self.lock.lock().take();
    }

    pub fn instance_op_lock(&self, uid: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.instance_ops
            .lock()
            .entry(uid.to_string())
            .or_default()
            .clone()
    }
}

pub type Shared = State<Arc<Emu>>;

/// Paths that are never delayed, failed or authenticated: what a client needs to start.
fn exempt(path: &str) -> bool {
    path.starts_with("/.well-known/")
        || path.starts_with("/oidc/")
        || path.starts_with("/lakebundle/")
}

async fn gate(State(emu): Shared, mut req: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let path = req.uri().path().to_string();
    if exempt(&path) {
        return next.run(req).await;
    }
    emu.latency.wait_from(arrived).await;
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
    let fault = emu.faults.draw(mutating);
    if let Fault::Fail(status) = fault {
        let code = if status == StatusCode::TOO_MANY_REQUESTS {
            "REQUEST_LIMIT_EXCEEDED"
        } else {
            "TEMPORARILY_UNAVAILABLE"
        };
        return ApiErr::new(status, code, "injected fault: please retry").into_response();
    }
    match auth::authenticate(&emu, req.headers()) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
        }
        Err(e) => return e.into_response(),
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json(&resp) {
        // The router's body limit answers in plain text; the service answers in its error shape.
        return ApiErr::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RESOURCE_LIMIT_EXCEEDED",
            format!("The request body of '{path}' exceeds the size limit of this endpoint"),
        )
        .into_response();
    }
    if fault == Fault::Lose && resp.status().is_success() {
        return ApiErr::unavailable("injected fault: the response was lost").into_response();
    }
    resp
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Body limit of the JSON APIs (the real services refuse requests past 10 MB).
const MAX_JSON_BODY: usize = 10 * 1024 * 1024;
/// Files API uploads go up to 5 GiB (reference §6.1).
const MAX_FILES_API_BODY: usize = 5 * 1024 * 1024 * 1024;

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!("No API found for '{method} {}'", uri.path()),
    )
    .into_response()
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    ApiErr::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "ENDPOINT_NOT_FOUND",
        format!("No API found for '{method} {}'", uri.path()),
    )
    .into_response()
}

async fn health() -> &'static str {
    "ok"
}

pub fn router(emu: Arc<Emu>) -> Router {
    let jobs_routes = jobs::routes();
    Router::new()
        .route("/lakebundle/health", get(health))
        .merge(auth::routes())
        .merge(instances::routes())
        .merge(catalogs::routes())
        .nest("/api/2.2/jobs", jobs_routes.clone())
        .nest("/api/2.1/jobs", jobs_routes)
        .merge(apps::routes())
        .merge(workspace::routes())
        .merge(files::routes().layer(DefaultBodyLimit::max(MAX_FILES_API_BODY)))
        .merge(permissions::routes())
        .merge(pipelines::routes())
        .merge(warehouses::routes())
        .merge(super::clusters::routes())
        .merge(super::vector_search::routes())
        .merge(super::uc_more::routes())
        .merge(secrets::routes())
        .merge(unity_catalog::routes())
        .merge(super::mlflow::routes())
        .merge(super::serving::routes())
        .merge(super::lakeview::routes())
        .merge(super::alerts::routes())
        .merge(super::monitors::routes())
        .merge(super::postgres_api::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(emu.clone(), gate))
        .with_state(emu)
}
