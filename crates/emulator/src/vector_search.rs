//! Vector search endpoints and indexes (contract part 2 §6).
//!
//! Endpoints (`/api/2.0/vector-search/endpoints`, addressed by name; permissions by the
//! endpoint's uuid `id`): PROVISIONING for one `--transition-ms`, then ONLINE. Updates by
//! part: `PATCH {name}` (target_qps), `PATCH {name}/budget-policy`, `PATCH {name}/tags`.
//!
//! Indexes (`/api/2.0/vector-search/indexes`, addressed by the three-level name): no update
//! API. `status.ready` turns true after one transition. `direct_access_index_spec.schema_json`
//! is stored normalised (compact JSON), as the service rewrites it. Delete is asynchronous:
//! the index still answers GET for one transition, then 404s, and for one more transition a
//! create of the same name fails 400 INVALID_PARAMETER_VALUE "currently pending deletion".

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::{get, patch};
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, internal, internal_mut, now_ms, ok, query, strip_internal, ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};
use super::store::Txn;

pub const ENDPOINTS: &str = "vs_endpoints";
pub const INDEXES: &str = "vs_indexes";

const ENDPOINT_TYPES: [&str; 2] = ["STANDARD", "STORAGE_OPTIMIZED"];
const ENDPOINT_FIELDS: [&str; 5] = [
    "name",
    "endpoint_type",
    "budget_policy_id",
    "target_qps",
    "usage_policy_id",
];
const INDEX_TYPES: [&str; 2] = ["DELTA_SYNC", "DIRECT_ACCESS"];
const INDEX_FIELDS: [&str; 7] = [
    "name",
    "endpoint_name",
    "primary_key",
    "index_type",
    "delta_sync_index_spec",
    "direct_access_index_spec",
    "index_subtype",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(
            "/api/2.0/vector-search/endpoints",
            get(endpoint_list).post(endpoint_create),
        )
        .route(
            "/api/2.0/vector-search/endpoints/{name}",
            get(endpoint_get)
                .patch(endpoint_patch)
                .delete(endpoint_delete),
        )
        .route(
            "/api/2.0/vector-search/endpoints/{name}/budget-policy",
            patch(endpoint_budget_policy),
        )
        .route(
            "/api/2.0/vector-search/endpoints/{name}/tags",
            patch(endpoint_tags),
        )
        .route(
            "/api/2.0/vector-search/indexes",
            get(index_list).post(index_create),
        )
        .route(
            "/api/2.0/vector-search/indexes/{name}",
            get(index_get).delete(index_delete),
        )
}

// --------------------------------------------------------------- endpoints

fn endpoint_missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!("Vector search endpoint {name} not found"))
}

/// Whether an endpoint with this uuid exists: for permissions (keyed by `id`, not name).
pub fn endpoint_id_exists(emu: &Emu, id: &str) -> bool {
    emu.store
        .all(ENDPOINTS)
        .iter()
        .any(|(_, e)| e["id"].as_str() == Some(id))
}

fn endpoint_view(emu: &Emu, e: &Value, t_indexes: usize) -> Value {
    let since = internal(e)
        .get("since")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let online = now_ms() >= since + emu.cfg.transition_ms as i64;
    let mut out = strip_internal(e.clone());
    out["endpoint_status"] = if online {
        json!({"state": "ONLINE"})
    } else {
        json!({"state": "PROVISIONING", "message": "Endpoint is being provisioned"})
    };
    out["num_indexes"] = json!(t_indexes);
    out
}

fn indexes_on(emu: &Emu, endpoint: &str) -> usize {
    emu.store
        .all(INDEXES)
        .iter()
        .filter(|(_, i)| i["endpoint_name"].as_str() == Some(endpoint) && deleted_at(i).is_none())
        .count()
}

fn check_qps(m: &Map<String, Value>) -> Result<(), ApiErr> {
    match m.get("target_qps") {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_i64().is_some_and(|n| n > 0) => Ok(()),
        Some(v) => Err(ApiErr::invalid(format!(
            "Invalid target_qps {v}: a positive integer"
        ))),
    }
}

async fn endpoint_create(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    if let Some(k) = b.keys().find(|k| !ENDPOINT_FIELDS.contains(&k.as_str())) {
        return Err(ApiErr::invalid(format!("Unknown field '{k}'")));
    }
    let name = super::http::req_str(&b, "name")?.to_string();
    let etype = super::http::req_str(&b, "endpoint_type")?.to_string();
    if !ENDPOINT_TYPES.contains(&etype.as_str()) {
        return Err(ApiErr::invalid(format!(
            "Invalid endpoint_type {etype}: allowed are STANDARD, STORAGE_OPTIMIZED"
        )));
    }
    check_qps(&b)?;
    let now = now_ms();
    let e = emu.store.txn(|t| {
        if t.get(ENDPOINTS, &name).is_some() {
            return Err(ApiErr::exists(format!(
                "Vector search endpoint {name} already exists"
            )));
        }
        let mut e = Value::Object(b.clone());
        e["id"] = json!(uuid::Uuid::new_v4().to_string());
        e["creator"] = json!(caller.user_name);
        e["creation_timestamp"] = json!(now);
        e["last_updated_timestamp"] = json!(now);
        e["last_updated_user"] = json!(caller.user_name);
        if let Some(p) = b.get("budget_policy_id") {
            e["effective_budget_policy_id"] = p.clone();
        }
        e[super::http::INTERNAL] = json!({"since": now});
        t.put(ENDPOINTS, &name, e.clone());
        let id = e["id"].as_str().unwrap_or_default().to_string();
        super::permissions::grant_owner(t, "vector-search-endpoints", &id, &caller.user_name);
        Ok::<_, ApiErr>(e)
    })?;
    ok(endpoint_view(&emu, &e, 0))
}

async fn endpoint_get(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let e = emu
        .store
        .get(ENDPOINTS, &name)
        .ok_or_else(|| endpoint_missing(&name))?;
    ok(endpoint_view(&emu, &e, indexes_on(&emu, &name)))
}

async fn endpoint_list(State(emu): Shared) -> ApiResult {
    let all: Vec<Value> = emu
        .store
        .all(ENDPOINTS)
        .iter()
        .map(|(n, e)| endpoint_view(&emu, e, indexes_on(&emu, n)))
        .collect();
    ok(json!({"endpoints": all}))
}

/// Apply `change` to the stored endpoint and answer its view.
fn endpoint_update(
    emu: &Emu,
    name: &str,
    caller: &Caller,
    change: impl Fn(&mut Value),
) -> ApiResult {
    let e = emu.store.txn(|t| {
        let mut e = t
            .get(ENDPOINTS, name)
            .cloned()
            .ok_or_else(|| endpoint_missing(name))?;
        change(&mut e);
        e["last_updated_timestamp"] = json!(now_ms());
        e["last_updated_user"] = json!(caller.user_name);
        t.put(ENDPOINTS, name, e.clone());
        Ok::<_, ApiErr>(e)
    })?;
    ok(json!({"vector_search_endpoint": endpoint_view(emu, &e, indexes_on(emu, name))}))
}

async fn endpoint_patch(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    if let Some(k) = b.keys().find(|k| k.as_str() != "target_qps") {
        return Err(ApiErr::invalid(format!(
            "Field '{k}' cannot be patched here (endpoint_type cannot change at all)"
        )));
    }
    check_qps(&b)?;
    endpoint_update(&emu, &name, &caller, |e| match b.get("target_qps") {
        Some(v) if !v.is_null() => e["target_qps"] = v.clone(),
        _ => {
            if let Some(m) = e.as_object_mut() {
                m.remove("target_qps");
            }
        }
    })
}

async fn endpoint_budget_policy(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let policy = b.get("budget_policy_id").cloned().unwrap_or(Value::Null);
    endpoint_update(&emu, &name, &caller, |e| {
        if let Some(m) = e.as_object_mut() {
            if policy.is_null() || policy.as_str() == Some("") {
                m.remove("budget_policy_id");
                m.remove("effective_budget_policy_id");
            } else {
                m.insert("budget_policy_id".into(), policy.clone());
                m.insert("effective_budget_policy_id".into(), policy.clone());
            }
        }
    })
}

async fn endpoint_tags(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let tags = b.get("custom_tags").cloned().unwrap_or(json!([]));
    if !tags.is_array() {
        return Err(ApiErr::invalid(
            "custom_tags must be a list of {key, value}",
        ));
    }
    endpoint_update(&emu, &name, &caller, |e| e["custom_tags"] = tags.clone())
}

async fn endpoint_delete(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let used = indexes_on(&emu, &name);
    emu.store.txn(|t| {
        let e = t
            .get(ENDPOINTS, &name)
            .cloned()
            .ok_or_else(|| endpoint_missing(&name))?;
        if used > 0 {
            return Err(ApiErr::invalid(format!(
                "Vector search endpoint {name} still serves {used} index(es): delete them first"
            )));
        }
        t.delete(ENDPOINTS, &name);
        let id = e["id"].as_str().unwrap_or_default().to_string();
        super::permissions::forget(t, "vector-search-endpoints", &id);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

// ----------------------------------------------------------------- indexes

fn index_missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!("Vector index {name} does not exist"))
}

/// `deleted_at` of an index being deleted.
fn deleted_at(i: &Value) -> Option<i64> {
    internal(i).get("deleted_at").and_then(Value::as_i64)
}

/// Where an index is in its deletion at `now`: still answering GET, or gone but its name
/// still reserved, or free.
enum Deletion {
    Live,
    Answering,
    Pending,
    Done,
}

fn deletion(emu: &Emu, i: &Value, now: i64) -> Deletion {
    let step = emu.cfg.transition_ms as i64;
    match deleted_at(i) {
        None => Deletion::Live,
        Some(at) if now < at + step => Deletion::Answering,
        Some(at) if now < at + 2 * step => Deletion::Pending,
        Some(_) => Deletion::Done,
    }
}

/// Whether a live (or still answering) index exists under this name: for UC grants.
pub fn index_exists(emu: &Emu, name: &str) -> bool {
    emu.store.get(INDEXES, name).is_some_and(|i| {
        matches!(
            deletion(emu, &i, now_ms()),
            Deletion::Live | Deletion::Answering
        )
    })
}

/// `schema_json` as the service stores it: the same JSON, compact.
fn normalise_schema(spec: &mut Value) -> Result<(), ApiErr> {
    let Some(s) = spec.get("schema_json").and_then(Value::as_str) else {
        return Ok(());
    };
    let parsed: Value = serde_json::from_str(s)
        .map_err(|e| ApiErr::invalid(format!("Invalid schema_json: {e}")))?;
    spec["schema_json"] = json!(parsed.to_string());
    Ok(())
}

fn validate_index(t: &Txn<'_>, b: &Map<String, Value>) -> Result<Map<String, Value>, ApiErr> {
    if let Some(k) = b.keys().find(|k| !INDEX_FIELDS.contains(&k.as_str())) {
        return Err(ApiErr::invalid(format!("Unknown field '{k}'")));
    }
    let name = super::http::req_str(b, "name")?;
    if name.split('.').count() != 3 || name.split('.').any(str::is_empty) {
        return Err(ApiErr::invalid(format!(
            "Invalid index name {name}: use catalog.schema.index"
        )));
    }
    let endpoint = super::http::req_str(b, "endpoint_name")?;
    if t.get(ENDPOINTS, endpoint).is_none() {
        return Err(endpoint_missing(endpoint));
    }
    super::http::req_str(b, "primary_key")?;
    let itype = super::http::req_str(b, "index_type")?;
    if !INDEX_TYPES.contains(&itype) {
        return Err(ApiErr::invalid(format!(
            "Invalid index_type {itype}: allowed are DELTA_SYNC, DIRECT_ACCESS"
        )));
    }
    let mut out = b.clone();
    match itype {
        "DELTA_SYNC" => {
            let spec = b
                .get("delta_sync_index_spec")
                .ok_or_else(|| ApiErr::missing("delta_sync_index_spec"))?;
            if spec.get("source_table").and_then(Value::as_str).is_none() {
                return Err(ApiErr::missing("delta_sync_index_spec.source_table"));
            }
            if b.contains_key("direct_access_index_spec") {
                return Err(ApiErr::invalid(
                    "direct_access_index_spec is for DIRECT_ACCESS indexes",
                ));
            }
        }
        _ => {
            let mut spec = b
                .get("direct_access_index_spec")
                .cloned()
                .ok_or_else(|| ApiErr::missing("direct_access_index_spec"))?;
            if b.contains_key("delta_sync_index_spec") {
                return Err(ApiErr::invalid(
                    "delta_sync_index_spec is for DELTA_SYNC indexes",
                ));
            }
            normalise_schema(&mut spec)?;
            out.insert("direct_access_index_spec".into(), spec);
        }
    }
    Ok(out)
}

fn index_view(emu: &Emu, i: &Value) -> Value {
    let now = now_ms();
    let since = internal(i)
        .get("since")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let ready = deleted_at(i).is_none() && now >= since + emu.cfg.transition_ms as i64;
    let mut out = strip_internal(i.clone());
    let name = i["name"].as_str().unwrap_or_default();
    out["status"] = json!({
        "ready": ready,
        "message": if ready { "Index is ready" } else if deleted_at(i).is_some() { "Index is being deleted" } else { "Index is being provisioned" },
        "indexed_row_count": 0,
        "index_url": format!("{}/api/2.0/vector-search/indexes/{name}", emu.url),
    });
    out
}

async fn index_create(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let now = now_ms();
    let i = emu.store.txn(|t| {
        let spec = validate_index(t, &b)?;
        let name = spec["name"].as_str().unwrap_or_default().to_string();
        if let Some(old) = t.get(INDEXES, &name) {
            match deletion(&emu, old, now) {
                Deletion::Live => {
                    return Err(ApiErr::exists(format!(
                        "Vector index {name} already exists"
                    )))
                }
                Deletion::Answering | Deletion::Pending => {
                    return Err(ApiErr::invalid(format!(
                        "Vector index {name} is currently pending deletion: try again later"
                    )))
                }
                Deletion::Done => {}
            }
        }
        let mut i = Value::Object(spec);
        i["creator"] = json!(caller.user_name);
        i[super::http::INTERNAL] = json!({"since": now});
        t.put(INDEXES, &name, i.clone());
        Ok::<_, ApiErr>(i)
    })?;
    ok(index_view(&emu, &i))
}

/// The index under `name` while it answers GET (live or deleting, first transition).
fn answering(emu: &Emu, name: &str) -> Result<Value, ApiErr> {
    let i = emu
        .store
        .get(INDEXES, name)
        .ok_or_else(|| index_missing(name))?;
    match deletion(emu, &i, now_ms()) {
        Deletion::Live | Deletion::Answering => Ok(i),
        _ => Err(index_missing(name)),
    }
}

async fn index_get(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let i = answering(&emu, &name)?;
    ok(index_view(&emu, &i))
}

async fn index_list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let endpoint = q
        .get("endpoint_name")
        .cloned()
        .ok_or_else(|| ApiErr::missing("endpoint_name"))?;
    let now = now_ms();
    let list: Vec<Value> = emu
        .store
        .all(INDEXES)
        .iter()
        .filter(|(_, i)| {
            i["endpoint_name"].as_str() == Some(endpoint.as_str())
                && matches!(deletion(&emu, i, now), Deletion::Live)
        })
        .map(|(_, i)| {
            json!({"name": i["name"], "endpoint_name": i["endpoint_name"],
                   "primary_key": i["primary_key"], "index_type": i["index_type"],
                   "creator": i["creator"]})
        })
        .collect();
    ok(json!({"vector_indexes": list}))
}

async fn index_delete(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let now = now_ms();
    emu.store.txn(|t| {
        let mut i = t
            .get(INDEXES, &name)
            .cloned()
            .filter(|i| matches!(deletion(&emu, i, now), Deletion::Live))
            .ok_or_else(|| index_missing(&name))?;
        if let Some(m) = internal_mut(&mut i) {
            m.insert("deleted_at".into(), json!(now));
        }
        t.put(INDEXES, &name, i);
        super::unity_catalog::forget_grants(t, "table", &name);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
