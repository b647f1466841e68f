//! Lakebase Autoscaling, `/api/2.0/postgres/...` (reference part 2, §1).
//!
//! Resources are stored under their hierarchical `name` (`projects/p/branches/b/...`), one
//! collection per kind; GET returns `status`, never `spec` (§1.4). Every mutation answers
//! an [operation](ops) whose work runs in the background, serialised per project, and
//! stays fetchable after it is done.
//!
//! On PostgreSQL (see [`computes`]): a branch is a data directory and its servers (a
//! backend instance whose uid is the branch uid; a branch from a source is a clone of the
//! source's data at now / `source_branch_time` / `source_branch_lsn`), the `primary`
//! endpoint is the branch's read-write server, read-only endpoints are its streaming
//! replicas, and every endpoint's `hosts.host` is a loopback proxy that wakes the branch's
//! servers when a connection comes after they were suspended for idleness. Roles are
//! PostgreSQL roles, databases `CREATE DATABASE ... OWNER`. The servers run the installed
//! PostgreSQL major; `status.pg_version` reports the requested one.

pub mod computes;
mod objects;
mod ops;
mod tree;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Map, Value};

use lakebundle_wire::{codes, ErrorReply};

use super::http::{query, ApiErr};
use super::server::{Caller, Emu, Shared};

pub use computes::Computes;

pub const PROJECTS: &str = "pg_projects";
pub const BRANCHES: &str = "pg_branches";
pub const ENDPOINTS: &str = "pg_endpoints";
pub const DATABASES: &str = "pg_databases";
pub const ROLES: &str = "pg_roles";
pub const CATALOGS: &str = "pg_catalogs";
pub const SYNCED: &str = "pg_synced_tables";
pub const OPERATIONS: &str = "pg_operations";

pub fn routes() -> Router<Arc<Emu>> {
    Router::new().route("/api/2.0/postgres/{*rest}", any(dispatch))
}

/// Restore the computes of a workspace that existed before this process (proxies on
/// their recorded addresses; the branches' servers wake on the first connection).
pub async fn adopt(emu: &Arc<Emu>) {
    computes::adopt(emu).await;
}

/// An error reply: the usual `{error_code, message}` or one with ErrorInfo metadata.
#[derive(Debug)]
pub enum PgErr {
    Api(ApiErr),
    /// 400 BAD_REQUEST with `declarative_context = MANAGED_BY_PARENT` (§1.5).
    ManagedByParent(String),
}

impl From<ApiErr> for PgErr {
    fn from(e: ApiErr) -> PgErr {
        PgErr::Api(e)
    }
}

impl From<super::store::StoreError> for PgErr {
    fn from(e: super::store::StoreError) -> PgErr {
        PgErr::Api(e.into())
    }
}

impl From<super::backend::BackendError> for PgErr {
    fn from(e: super::backend::BackendError) -> PgErr {
        PgErr::Api(e.into())
    }
}

impl PgErr {
    pub fn message(&self) -> String {
        match self {
            PgErr::Api(e) => e.message.clone(),
            PgErr::ManagedByParent(m) => m.clone(),
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            PgErr::Api(e) => e.code,
            PgErr::ManagedByParent(_) => codes::BAD_REQUEST,
        }
    }
}

impl IntoResponse for PgErr {
    fn into_response(self) -> Response {
        match self {
            PgErr::Api(e) => e.into_response(),
            PgErr::ManagedByParent(message) => {
                let mut body =
                    ErrorReply::with_info(codes::BAD_REQUEST, message, "lakebundle-emulator");
                if let Some(d) = body.details.first_mut() {
                    d.metadata
                        .insert("declarative_context".into(), json!("MANAGED_BY_PARENT"));
                }
                (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
            }
        }
    }
}

pub type PgResult<T> = Result<T, PgErr>;

pub fn not_found(kind: &str, name: &str) -> PgErr {
    PgErr::Api(ApiErr::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("{kind} id not found: {name}"),
    ))
}

pub fn already_exists(kind: &str, name: &str) -> PgErr {
    PgErr::Api(ApiErr::new(
        StatusCode::CONFLICT,
        codes::ALREADY_EXISTS,
        format!("{kind} with such id already exists in the workspace: {name}"),
    ))
}

pub fn invalid(message: impl Into<String>) -> PgErr {
    PgErr::Api(ApiErr::invalid(message))
}

pub fn bad_request(message: impl Into<String>) -> PgErr {
    PgErr::Api(ApiErr::bad_request(message))
}

/// One request, as the handlers see it.
pub struct Req {
    pub method: Method,
    pub query: HashMap<String, String>,
    pub body: Map<String, Value>,
    pub caller: Caller,
}

impl Req {
    /// `body.spec` (an empty object when absent).
    pub fn spec(&self) -> PgResult<Map<String, Value>> {
        match self.body.get("spec") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(invalid("Field 'spec' must be an object")),
        }
    }
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
    pub fn qbool(&self, key: &str) -> PgResult<bool> {
        Ok(super::http::qbool(&self.query, key)?.unwrap_or(false))
    }
}

async fn dispatch(
    State(emu): Shared,
    method: Method,
    Path(rest): Path<String>,
    RawQuery(raw_query): RawQuery,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> Response {
    let body = if matches!(method, Method::GET | Method::DELETE) {
        Ok(Map::new())
    } else {
        super::http::body(&raw)
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let req = Req {
        method,
        query: query(raw_query.as_deref()),
        body,
        caller,
    };
    match route(&emu, &rest, &req).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn no_api(req: &Req, rest: &str) -> PgErr {
    PgErr::Api(ApiErr::new(
        StatusCode::NOT_FOUND,
        codes::ENDPOINT_NOT_FOUND,
        format!("No API found for '{} /api/2.0/postgres/{rest}'", req.method),
    ))
}

async fn route(emu: &Arc<Emu>, rest: &str, req: &Req) -> PgResult<Value> {
    let rest = rest.trim_start_matches('/');
    // Operation ids are opaque and may hold `/`, `+`, `=`: match on the marker, never split.
    if rest.contains("/operations/") {
        return match req.method {
            Method::GET => ops::get(emu, rest),
            _ => Err(no_api(req, rest)),
        };
    }
    let seg: Vec<&str> = rest.split('/').collect();
    let m = &req.method;
    use tree::Kind;
    match (m.clone(), seg.as_slice()) {
        (Method::POST, ["credentials"]) => objects::credentials(emu, req).await,
        (Method::POST, ["projects"]) => tree::create(emu, Kind::Project, "", req),
        (Method::GET, ["projects"]) => tree::list(emu, Kind::Project, "", req),
        (_, ["projects", p]) => tree::one(emu, Kind::Project, &format!("projects/{p}"), req),
        (Method::POST, ["projects", p, "undelete"]) => {
            tree::undelete(emu, Kind::Project, &format!("projects/{p}"))
        }
        (Method::POST, ["projects", p, "branches"]) => {
            tree::create(emu, Kind::Branch, &format!("projects/{p}"), req)
        }
        (Method::GET, ["projects", p, "branches"]) => {
            tree::list(emu, Kind::Branch, &format!("projects/{p}"), req)
        }
        (_, ["projects", p, "branches", b]) => tree::one(
            emu,
            Kind::Branch,
            &format!("projects/{p}/branches/{b}"),
            req,
        ),
        (Method::POST, ["projects", p, "branches", b, "undelete"]) => {
            tree::undelete(emu, Kind::Branch, &format!("projects/{p}/branches/{b}"))
        }
        (_, ["projects", p, "branches", b, coll]) => {
            let kind = Kind::child(coll).ok_or_else(|| no_api(req, rest))?;
            let parent = format!("projects/{p}/branches/{b}");
            match *m {
                Method::POST => tree::create(emu, kind, &parent, req),
                Method::GET => tree::list(emu, kind, &parent, req),
                _ => Err(no_api(req, rest)),
            }
        }
        (Method::POST, ["projects", _, "branches", _, "roles", _, "password"]) => {
            objects::reveal_password(emu, rest.trim_end_matches("/password"))
        }
        (_, ["projects", p, "branches", b, coll, id]) => {
            let kind = Kind::child(coll).ok_or_else(|| no_api(req, rest))?;
            tree::one(
                emu,
                kind,
                &format!("projects/{p}/branches/{b}/{coll}/{id}"),
                req,
            )
        }
        (Method::POST, ["catalogs"]) => tree::create(emu, Kind::Catalog, "", req),
        (_, ["catalogs", id]) => tree::one(emu, Kind::Catalog, &format!("catalogs/{id}"), req),
        (Method::POST, ["synced_tables"]) => tree::create(emu, Kind::SyncedTable, "", req),
        (_, ["synced_tables", id]) => {
            tree::one(emu, Kind::SyncedTable, &format!("synced_tables/{id}"), req)
        }
        _ => Err(no_api(req, rest)),
    }
}

// ---------------------------------------------------------------------------------------
// Small value helpers shared by the kinds.

/// `"600s"` / `"1.5s"` → seconds.
pub fn parse_duration(field: &str, v: &Value) -> PgResult<f64> {
    let s = v.as_str().unwrap_or_default();
    s.strip_suffix('s')
        .and_then(|n| n.parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| {
            invalid(format!(
                "Field '{field}' must be a duration like \"600s\", got {v}"
            ))
        })
}

pub fn duration_string(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}s", secs as i64)
    } else {
        format!("{secs}s")
    }
}

pub fn now_rfc3339() -> String {
    super::http::rfc3339(super::http::now_ms())
}

/// An opaque id in the service's style (`br-…`, `ep-…`).
pub fn uid(prefix: &str) -> String {
    const WORDS: [&str; 8] = [
        "quiet", "bold", "misty", "amber", "silent", "frosty", "rapid", "lively",
    ];
    let n = rand::random::<u32>() as usize;
    format!(
        "{prefix}-{}-{}-{}",
        WORDS[n % WORDS.len()],
        WORDS[(n / 8) % WORDS.len()],
        &super::http::random_hex(4)
    )
}

/// Check a user-chosen id against its pattern (§1.1).
pub fn check_id(field: &str, id: &str, min: usize) -> PgResult<()> {
    if id.is_empty() {
        return Err(invalid(format!(
            "Field '{field}' is required, expected non-default value (not \"\")!"
        )));
    }
    let ok = id.len() >= min
        && id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Field {field} must match pattern ^[a-z]([a-z0-9-]{{{},61}}[a-z0-9])?$ (got {id:?})",
            min.saturating_sub(2)
        )))
    }
}

static NULL: Value = Value::Null;

/// A field of a JSON object, Null when absent (indexing a `Map` would panic).
pub fn field<'a>(m: &'a Map<String, Value>, key: &str) -> &'a Value {
    m.get(key).unwrap_or(&NULL)
}
