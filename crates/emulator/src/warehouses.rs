//! SQL warehouses (contract part 2 §4): create, get, edit (POST `.../edit`, full replace),
//! start, stop, delete, list.
//!
//! A warehouse's state is computed from its last transition: `{target, since}` shows the
//! transitional state (STARTING, STOPPING, DELETING) for one `--transition-ms`, then the target
//! (RUNNING, STOPPED, DELETED). A new warehouse starts itself; an edit restarts a running one.
//! A deleted warehouse stays readable as DELETED and leaves the list.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, decode_token, encode_token, internal, internal_mut, now_ms, ok, page_size, query,
    random_hex, strip_internal, ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};

pub const WAREHOUSES: &str = "warehouses";
const SIZES: [&str; 10] = [
    "2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large",
    "4X-Large", "5X-Large",
];
const TYPES: [&str; 3] = ["PRO", "CLASSIC", "TYPE_UNSPECIFIED"];
const SPOT: [&str; 3] = [
    "COST_OPTIMIZED",
    "RELIABILITY_OPTIMIZED",
    "POLICY_UNSPECIFIED",
];
const CHANNELS: [&str; 5] = [
    "CHANNEL_NAME_CURRENT",
    "CHANNEL_NAME_PREVIEW",
    "CHANNEL_NAME_PREVIOUS",
    "CHANNEL_NAME_CUSTOM",
    "CHANNEL_NAME_UNSPECIFIED",
];
/// Fields of a create/edit body (everything else is refused).
const FIELDS: [&str; 15] = [
    "name",
    "cluster_size",
    "min_num_clusters",
    "max_num_clusters",
    "auto_stop_mins",
    "enable_photon",
    "enable_serverless_compute",
    "warehouse_type",
    "spot_instance_policy",
    "channel",
    "tags",
    "creator_name",
    "instance_profile_arn",
    "statement_timeout",
    "max_dbu",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.0/sql/warehouses", get(list).post(create))
        .route("/api/2.0/sql/warehouses/{id}", get(get_one).delete(delete))
        .route("/api/2.0/sql/warehouses/{id}/edit", post(edit))
        .route("/api/2.0/sql/warehouses/{id}/start", post(start))
        .route("/api/2.0/sql/warehouses/{id}/stop", post(stop))
}

fn missing(id: &str) -> ApiErr {
    ApiErr::not_found(format!("SQL warehouse {id} does not exist."))
}

/// Whether a warehouse exists and is not deleted: for permissions.
pub fn exists(emu: &Emu, id: &str) -> bool {
    emu.store
        .get(WAREHOUSES, id)
        .is_some_and(|w| !is_deleted(&w))
}

fn is_deleted(w: &Value) -> bool {
    internal(w).get("target").and_then(Value::as_str) == Some("DELETED")
}

fn int_field(m: &Map<String, Value>, f: &str, default: i64) -> Result<i64, ApiErr> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiErr::invalid(format!("Field '{f}' must be an integer, got {v}"))),
    }
}

fn one_of(m: &Map<String, Value>, f: &str, allowed: &[&str]) -> Result<(), ApiErr> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(v) => Err(ApiErr::invalid(format!(
            "Invalid {f} {v}: allowed are {}",
            allowed.join(", ")
        ))),
    }
}

/// Validate a create/edit body and fill the defaults GET shows.
fn normalize(b: &Map<String, Value>, caller: &Caller) -> Result<Map<String, Value>, ApiErr> {
    if let Some(k) = b
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()) && k.as_str() != "id")
    {
        return Err(ApiErr::invalid(format!("Unknown field '{k}'")));
    }
    let mut w = b.clone();
    w.remove("id");
    let name = w.get("name").and_then(Value::as_str).unwrap_or_default();
    if name.trim().is_empty() {
        return Err(ApiErr::missing("name"));
    }
    if name.chars().count() >= 100 {
        return Err(ApiErr::invalid(
            "Invalid name: a warehouse name must be shorter than 100 characters",
        ));
    }
    if w.get("cluster_size").is_none() {
        return Err(ApiErr::missing("cluster_size"));
    }
    one_of(&w, "cluster_size", &SIZES)?;
    one_of(&w, "warehouse_type", &TYPES)?;
    one_of(&w, "spot_instance_policy", &SPOT)?;
    if let Some(c) = w.get("channel") {
        let Some(c) = c.as_object() else {
            return Err(ApiErr::invalid("Field 'channel' must be an object"));
        };
        one_of(c, "name", &CHANNELS)?;
    }
    let min = int_field(&w, "min_num_clusters", 1)?;
    let max = int_field(&w, "max_num_clusters", min.max(1))?;
    if min < 1 || max < min || max > 40 {
        return Err(ApiErr::invalid(format!(
            "Invalid cluster counts min_num_clusters={min}, max_num_clusters={max}: need 1 <= min <= max <= 40"
        )));
    }
    let auto_stop = int_field(&w, "auto_stop_mins", 120)?;
    if auto_stop != 0 && auto_stop < 10 {
        return Err(ApiErr::invalid(format!(
            "Invalid auto_stop_mins {auto_stop}: use 0 (never) or at least 10"
        )));
    }
    let serverless = w
        .get("enable_serverless_compute")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let wtype = w
        .get("warehouse_type")
        .and_then(Value::as_str)
        .unwrap_or(if serverless { "PRO" } else { "CLASSIC" })
        .to_string();
    if serverless && wtype != "PRO" {
        return Err(ApiErr::invalid(
            "Serverless compute requires warehouse_type PRO",
        ));
    }
    if let Some(tags) = w.get("tags") {
        let n = tags
            .get("custom_tags")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if n >= 45 {
            return Err(ApiErr::invalid("Invalid tags: at most 44 custom tags"));
        }
    }
    w.insert("min_num_clusters".into(), json!(min));
    w.insert("max_num_clusters".into(), json!(max));
    w.insert("auto_stop_mins".into(), json!(auto_stop));
    w.insert("warehouse_type".into(), json!(wtype));
    w.insert("enable_serverless_compute".into(), json!(serverless));
    w.entry("enable_photon").or_insert(json!(true));
    w.entry("spot_instance_policy")
        .or_insert(json!("COST_OPTIMIZED"));
    w.entry("channel")
        .or_insert(json!({"name": "CHANNEL_NAME_CURRENT"}));
    w.entry("tags").or_insert(json!({}));
    w.entry("creator_name")
        .or_insert(json!(caller.user_name.clone()));
    Ok(w)
}

/// `(state, num_clusters)` at `now`.
fn state_of(emu: &Emu, w: &Value, now: i64) -> (&'static str, i64) {
    let i = internal(w);
    let target = i.get("target").and_then(Value::as_str).unwrap_or("RUNNING");
    let since = i.get("since").and_then(Value::as_i64).unwrap_or(now);
    let settled = now >= since + emu.cfg.transition_ms as i64;
    let min = w["min_num_clusters"].as_i64().unwrap_or(1);
    match (target, settled) {
        ("RUNNING", true) => ("RUNNING", min),
        ("RUNNING", false) => ("STARTING", 0),
        ("STOPPED", true) => ("STOPPED", 0),
        ("STOPPED", false) => ("STOPPING", 0),
        ("DELETED", true) => ("DELETED", 0),
        _ => ("DELETING", 0),
    }
}

fn view(emu: &Emu, w: &Value) -> Value {
    let (state, clusters) = state_of(emu, w, now_ms());
    let mut out = strip_internal(w.clone());
    let id = w["id"].as_str().unwrap_or_default();
    let host = emu
        .url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or("localhost")
        .to_string();
    out["state"] = json!(state);
    out["num_clusters"] = json!(clusters);
    out["num_active_sessions"] = json!(0);
    out["health"] = json!({"status": "HEALTHY"});
    out["jdbc_url"] = json!(format!(
        "jdbc:spark://{host}:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/{id};"
    ));
    out["odbc_params"] = json!({"hostname": host, "path": format!("/sql/1.0/warehouses/{id}"), "protocol": "https", "port": 443});
    out
}

fn set_target(w: &mut Value, target: &str, now: i64) {
    if let Some(m) = internal_mut(w) {
        m.insert("target".into(), json!(target));
        m.insert("since".into(), json!(now));
    }
}

fn name_taken(t: &super::store::Txn<'_>, name: &str, except: Option<&str>) -> bool {
    t.values(WAREHOUSES).any(|(k, w)| {
        Some(k.as_str()) != except && !is_deleted(w) && w["name"].as_str() == Some(name)
    })
}

async fn create(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let settings = normalize(&b, &caller)?;
    let name = settings["name"].as_str().unwrap_or_default().to_string();
    let id = random_hex(8);
    let now = now_ms();
    emu.store.txn(|t| {
        if name_taken(t, &name, None) {
            return Err(ApiErr::exists(format!(
                "SQL warehouse with name '{name}' already exists"
            )));
        }
        let mut w = Value::Object(settings.clone());
        w["id"] = json!(id);
        set_target(&mut w, "RUNNING", now);
        t.put(WAREHOUSES, &id, w);
        super::permissions::grant_owner(t, "sql/warehouses", &id, &caller.user_name);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({"id": id}))
}

async fn get_one(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    let w = emu.store.get(WAREHOUSES, &id).ok_or_else(|| missing(&id))?;
    ok(view(&emu, &w))
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let limit = page_size(&q, "page_size", 100, 1000)?;
    let after = decode_token(q.get("page_token"))?;
    let (page, more) = emu
        .store
        .page(WAREHOUSES, after.as_deref(), limit, |w| !is_deleted(w));
    let mut out = json!({});
    if !page.is_empty() {
        out["warehouses"] = page.iter().map(|(_, w)| view(&emu, w)).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

/// Load a warehouse for a mutation: a deleted one is gone.
fn live(t: &super::store::Txn<'_>, id: &str) -> Result<Value, ApiErr> {
    t.get(WAREHOUSES, id)
        .filter(|w| !is_deleted(w))
        .cloned()
        .ok_or_else(|| missing(id))
}

async fn edit(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let settings = normalize(&b, &caller)?;
    let name = settings["name"].as_str().unwrap_or_default().to_string();
    let now = now_ms();
    emu.store.txn(|t| {
        let old = live(t, &id)?;
        if name_taken(t, &name, Some(&id)) {
            return Err(ApiErr::exists(format!(
                "SQL warehouse with name '{name}' already exists"
            )));
        }
        let mut w = Value::Object(settings.clone());
        w["id"] = json!(id);
        // The creator never changes.
        w["creator_name"] = old["creator_name"].clone();
        if let Some(i) = old.get(super::http::INTERNAL) {
            w[super::http::INTERNAL] = i.clone();
        }
        // An edit restarts a running (or starting) warehouse; a stopped one stays stopped.
        if state_of(&emu, &old, now).0 != "STOPPED" && state_of(&emu, &old, now).0 != "STOPPING" {
            set_target(&mut w, "RUNNING", now);
        }
        t.put(WAREHOUSES, &id, w);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn transition(emu: &Emu, id: &str, target: &str) -> ApiResult {
    let now = now_ms();
    emu.store.txn(|t| {
        let mut w = live(t, id)?;
        let current = internal(&w).get("target").and_then(Value::as_str) == Some(target);
        // Starting a running warehouse (or stopping a stopped one) changes nothing.
        if !current {
            set_target(&mut w, target, now);
            t.put(WAREHOUSES, id, w);
        }
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn start(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    transition(&emu, &id, "RUNNING").await
}

async fn stop(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    transition(&emu, &id, "STOPPED").await
}

async fn delete(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    let now = now_ms();
    emu.store.txn(|t| {
        let mut w = live(t, &id)?;
        set_target(&mut w, "DELETED", now);
        t.put(WAREHOUSES, &id, w);
        super::permissions::forget(t, "sql/warehouses", &id);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
