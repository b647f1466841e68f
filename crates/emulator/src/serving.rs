//! Model serving endpoints (contract part 2 §6): `/api/2.0/serving-endpoints`, addressed by
//! name, with a hex `id` for the Permissions API.
//!
//! A create or config update rolls out over one `--transition-ms`: meanwhile
//! `state.config_update` is `IN_PROGRESS`, the new config shows as `pending_config` (the
//! previous one, if any, stays `config`) and a second config update is refused with 409
//! `RESOURCE_CONFLICT`; afterwards the endpoint is `NOT_UPDATING` / `READY`. A served entity
//! naming a Unity Catalog model (`catalog.schema.model`) or a workspace registry model must
//! name one that exists; external models need no model. The other parts (AI gateway, tags,
//! notifications, telemetry, rate limits) change at once.
//!
//! Not emulated: scoring (`/serving-endpoints/{name}/invocations`), model versions, logs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, put};
use axum::Router;
use serde_json::{json, Map, Value};

use lakebundle_wire::codes;

use super::http::{
    body, internal, internal_mut, now_ms, ok, random_hex, req_str, strip_internal, ApiErr,
    ApiResult,
};
use super::server::{Caller, Emu, Shared};

pub const ENDPOINTS: &str = "serving_endpoints";
const API: &str = "/api/2.0/serving-endpoints";
const CREATE_FIELDS: &[&str] = &[
    "name",
    "config",
    "ai_gateway",
    "tags",
    "email_notifications",
    "telemetry_config",
    "rate_limits",
    "route_optimized",
    "budget_policy_id",
    "description",
];
const CORE_FIELDS: &[&str] = &[
    "served_entities",
    "served_models",
    "traffic_config",
    "auto_capture_config",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(API, get(list).post(create))
        .route(&format!("{API}/{{name}}"), get(get_one).delete(delete_one))
        .route(&format!("{API}/{{name}}/config"), put(update_config))
        .route(&format!("{API}/{{name}}/ai-gateway"), put(put_ai_gateway))
        .route(&format!("{API}/{{name}}/tags"), patch(patch_tags))
        .route(
            &format!("{API}/{{name}}/notifications"),
            patch(patch_notifications),
        )
        .route(
            &format!("{API}/{{name}}/telemetry-config"),
            patch(patch_telemetry),
        )
        .route(&format!("{API}/{{name}}/rate-limits"), put(put_rate_limits))
}

fn missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!("Endpoint with name '{name}' does not exist."))
}

/// Whether an endpoint has this permissions id.
pub fn exists_by_id(emu: &Emu, id: &str) -> bool {
    emu.store
        .all(ENDPOINTS)
        .iter()
        .any(|(_, e)| e["id"].as_str() == Some(id))
}

fn valid_name(name: &str) -> Result<(), ApiErr> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiErr::invalid(format!(
            "Invalid endpoint name '{name}': use at most 63 letters, digits, '-' and '_'"
        )))
    }
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiErr> {
    v.as_object()
        .ok_or_else(|| ApiErr::invalid(format!("Field '{what}' must be an object")))
}

/// Validate a core config (served entities, traffic, auto capture) and fill what GET shows:
/// served entity names and the default traffic route.
fn core_config(emu: &Emu, raw: &Value) -> Result<Value, ApiErr> {
    let c = obj(raw, "config")?;
    // The SDK repeats the endpoint's name inside the config (the path already has it).
    if let Some(k) = c
        .keys()
        .find(|k| !CORE_FIELDS.contains(&k.as_str()) && k.as_str() != "name")
    {
        return Err(ApiErr::invalid(format!("Unknown field 'config.{k}'")));
    }
    let mut out = c.clone();
    out.remove("name");
    if c.contains_key("served_entities") && c.contains_key("served_models") {
        return Err(ApiErr::invalid(
            "Only one of served_entities and served_models can be set",
        ));
    }
    let (list_key, name_key, version_key, route_key) = if c.contains_key("served_models") {
        (
            "served_models",
            "model_name",
            "model_version",
            "served_model_name",
        )
    } else {
        (
            "served_entities",
            "entity_name",
            "entity_version",
            "served_entity_name",
        )
    };
    let entities = out
        .get(list_key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entities.is_empty() {
        return Err(ApiErr::invalid(format!(
            "The endpoint config needs at least one of {list_key}"
        )));
    }
    let mut named = Vec::new();
    let mut filled = Vec::new();
    for (i, e) in entities.iter().enumerate() {
        let mut e = obj(e, list_key)?.clone();
        let external = e.contains_key("external_model");
        let entity = e.get(name_key).and_then(Value::as_str).map(str::to_string);
        let version = e
            .get(version_key)
            .and_then(Value::as_str)
            .map(str::to_string);
        let default_name = match (&entity, &version, external) {
            (Some(n), Some(v), false) => {
                let found = if n.split('.').count() == 3 {
                    super::mlflow::uc_model_exists(emu, n)
                } else {
                    emu.store.get(super::mlflow::MODELS, n).is_some()
                };
                if !found {
                    return Err(ApiErr::not_found(format!(
                        "{list_key}[{i}]: model '{n}' does not exist."
                    )));
                }
                format!("{}-{v}", n.rsplit('.').next().unwrap_or(n))
            }
            (Some(n), None, false) => {
                return Err(ApiErr::invalid(format!(
                    "{list_key}[{i}]: {version_key} is required with {name_key} '{n}'"
                )))
            }
            (_, _, true) => entity.clone().unwrap_or_else(|| format!("external-{i}")),
            (None, _, false) => {
                return Err(ApiErr::invalid(format!(
                    "{list_key}[{i}]: set {name_key} (a model) or external_model"
                )))
            }
        };
        let name = e
            .get("name")
            .and_then(Value::as_str)
            .map_or(default_name, str::to_string);
        if named.contains(&name) {
            return Err(ApiErr::invalid(format!(
                "Served entity name '{name}' is used twice"
            )));
        }
        e.insert("name".into(), json!(name));
        e.entry("scale_to_zero_enabled").or_insert(json!(false));
        if !external {
            e.entry("workload_size").or_insert(json!("Small"));
        }
        named.push(name);
        filled.push(Value::Object(e));
    }
    out.insert(list_key.into(), Value::Array(filled));
    // Traffic: the routes name served entities and add up to 100; one entity gets it all.
    let routes = out
        .get("traffic_config")
        .and_then(|t| t.get("routes"))
        .and_then(Value::as_array)
        .cloned();
    match routes {
        None if named.len() == 1 => {
            out.insert(
                "traffic_config".into(),
                json!({"routes": [{route_key: named[0], "traffic_percentage": 100}]}),
            );
        }
        None => {
            return Err(ApiErr::invalid(
                "traffic_config is required when more than one entity is served",
            ))
        }
        Some(routes) => {
            let mut total = 0;
            for r in &routes {
                let target = r.get(route_key).and_then(Value::as_str).unwrap_or_default();
                if !named.iter().any(|n| n == target) {
                    return Err(ApiErr::invalid(format!(
                        "traffic_config route names '{target}', which is not served"
                    )));
                }
                total += r
                    .get("traffic_percentage")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
            }
            if total != 100 {
                return Err(ApiErr::invalid(format!(
                    "The traffic_config routes add up to {total}%, not 100%"
                )));
            }
        }
    }
    Ok(Value::Object(out))
}

/// Whether the rollout that started at `since` has finished at `now`.
fn settled(emu: &Emu, e: &Value, now: i64) -> bool {
    let since = internal(e)
        .get("since")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    now >= since + emu.cfg.transition_ms as i64
}

/// Fold a finished rollout into the record: the pending config becomes the config.
fn promote(emu: &Emu, e: &mut Value, now: i64) {
    if !settled(emu, e, now) {
        return;
    }
    let pending = internal_mut(e).and_then(|i| i.remove("pending"));
    if let Some(p) = pending {
        e["config"] = p;
    }
}

fn view(emu: &Emu, e: &Value) -> Value {
    let now = now_ms();
    let mut e = e.clone();
    promote(emu, &mut e, now);
    let pending = internal(&e).get("pending").cloned();
    let mut out = strip_internal(e);
    let updating = pending.is_some();
    out["state"] = json!({
        "config_update": if updating { "IN_PROGRESS" } else { "NOT_UPDATING" },
        "ready": if out.get("config").is_some() { "READY" } else { "NOT_READY" },
    });
    if let Some(p) = pending {
        out["pending_config"] = p;
    }
    out
}

/// Start rolling out `config` as the next version.
fn start_rollout(e: &mut Value, config: Value, now: i64) {
    let version = e
        .get("config")
        .and_then(|c| c.get("config_version"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
        + 1;
    let mut config = config;
    config["config_version"] = json!(version);
    if let Some(i) = internal_mut(e) {
        i.insert("pending".into(), config);
        i.insert("since".into(), json!(now));
    }
}

async fn create(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    if let Some(k) = b.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return Err(ApiErr::invalid(format!("Unknown field '{k}'")));
    }
    let name = req_str(&b, "name")?.to_string();
    valid_name(&name)?;
    let config = match b.get("config") {
        Some(c) => core_config(&emu, c)?,
        None if b.contains_key("ai_gateway") => json!({}),
        None => return Err(ApiErr::missing("config")),
    };
    let now = now_ms();
    let mut e = Value::Object(b.clone());
    e.as_object_mut().map(|m| m.remove("config"));
    e["id"] = json!(random_hex(16));
    e["creator"] = json!(caller.user_name);
    e["creation_timestamp"] = json!(now);
    e["last_updated_timestamp"] = json!(now);
    e["permission_level"] = json!("CAN_MANAGE");
    start_rollout(&mut e, config, now);
    let out = emu.store.txn(|t| {
        if t.get(ENDPOINTS, &name).is_some() {
            return Err(ApiErr::exists(format!(
                "Endpoint with name '{name}' already exists."
            )));
        }
        t.put(ENDPOINTS, &name, e.clone());
        let id = e["id"].as_str().unwrap_or_default();
        super::permissions::grant_owner(t, "serving-endpoints", id, &caller.user_name);
        Ok::<_, ApiErr>(view(&emu, &e))
    })?;
    ok(out)
}

async fn get_one(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let e = emu
        .store
        .get(ENDPOINTS, &name)
        .ok_or_else(|| missing(&name))?;
    ok(view(&emu, &e))
}

async fn list(State(emu): Shared, RawQuery(_q): RawQuery) -> ApiResult {
    let endpoints: Vec<Value> = emu
        .store
        .all(ENDPOINTS)
        .iter()
        .map(|(_, e)| view(&emu, e))
        .collect();
    ok(json!({"endpoints": endpoints}))
}

async fn delete_one(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    emu.store.txn(|t| {
        let e = t.delete(ENDPOINTS, &name).ok_or_else(|| missing(&name))?;
        super::permissions::forget(t, "serving-endpoints", e["id"].as_str().unwrap_or_default());
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

/// Change one endpoint in a transaction (any finished rollout folded in first).
fn mutate(
    emu: &Emu,
    name: &str,
    f: impl FnOnce(&mut Value, i64) -> Result<(), ApiErr>,
) -> Result<Value, ApiErr> {
    let now = now_ms();
    emu.store.txn(|t| {
        let mut e = t
            .get(ENDPOINTS, name)
            .cloned()
            .ok_or_else(|| missing(name))?;
        promote(emu, &mut e, now);
        f(&mut e, now)?;
        e["last_updated_timestamp"] = json!(now);
        t.put(ENDPOINTS, name, e.clone());
        Ok(e)
    })
}

async fn update_config(State(emu): Shared, Path(name): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let config = core_config(&emu, &Value::Object(b))?;
    let e = mutate(&emu, &name, |e, now| {
        if internal(e).contains_key("pending") {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                codes::RESOURCE_CONFLICT,
                format!("Endpoint '{name}' is currently being updated; wait until its config update finishes"),
            ));
        }
        // Where inference tables go is fixed at creation.
        let old = e.get("config").and_then(|c| c.get("auto_capture_config"));
        let new = config.get("auto_capture_config");
        for f in ["catalog_name", "schema_name", "table_name_prefix"] {
            let (o, n) = (old.and_then(|c| c.get(f)), new.and_then(|c| c.get(f)));
            if o.is_some() && n.is_some() && o != n {
                return Err(ApiErr::invalid(format!(
                    "auto_capture_config.{f} cannot be changed after the endpoint is created"
                )));
            }
        }
        start_rollout(e, config, now);
        Ok(())
    })?;
    ok(view(&emu, &e))
}

async fn put_ai_gateway(State(emu): Shared, Path(name): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let e = mutate(&emu, &name, |e, _| {
        e["ai_gateway"] = Value::Object(b.clone());
        Ok(())
    })?;
    ok(e.get("ai_gateway").cloned().unwrap_or(json!({})))
}

async fn patch_tags(State(emu): Shared, Path(name): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let add = b
        .get("add_tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let delete: Vec<String> = b
        .get("delete_tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if add.iter().any(|t| {
        t.get("key")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    }) {
        return Err(ApiErr::invalid("Every tag in add_tags needs a 'key'"));
    }
    let e = mutate(&emu, &name, |e, _| {
        let mut tags = e["tags"].as_array().cloned().unwrap_or_default();
        tags.retain(|t| {
            let k = t["key"].as_str().unwrap_or_default();
            !delete.iter().any(|d| d == k) && !add.iter().any(|a| a["key"] == k)
        });
        tags.extend(add.iter().cloned());
        e["tags"] = Value::Array(tags);
        Ok(())
    })?;
    ok(json!({"tags": e["tags"]}))
}

async fn patch_notifications(
    State(emu): Shared,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let n = b.get("email_notifications").cloned().unwrap_or(json!({}));
    obj(&n, "email_notifications")?;
    let e = mutate(&emu, &name, |e, _| {
        e["email_notifications"] = n.clone();
        Ok(())
    })?;
    ok(json!({"name": name, "email_notifications": e["email_notifications"]}))
}

async fn patch_telemetry(State(emu): Shared, Path(name): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let n = b.get("telemetry_config").cloned().unwrap_or(json!({}));
    obj(&n, "telemetry_config")?;
    let e = mutate(&emu, &name, |e, _| {
        e["telemetry_config"] = n.clone();
        Ok(())
    })?;
    ok(json!({"name": name, "telemetry_config": e["telemetry_config"]}))
}

async fn put_rate_limits(State(emu): Shared, Path(name): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let limits = b.get("rate_limits").cloned().unwrap_or(json!([]));
    let Some(list) = limits.as_array() else {
        return Err(ApiErr::invalid("Field 'rate_limits' must be a list"));
    };
    for l in list {
        if l.get("calls").and_then(Value::as_i64).is_none() || l.get("renewal_period").is_none() {
            return Err(ApiErr::invalid(
                "Every rate limit needs 'calls' and 'renewal_period'",
            ));
        }
    }
    let e = mutate(&emu, &name, |e, _| {
        e["rate_limits"] = limits.clone();
        Ok(())
    })?;
    ok(json!({"rate_limits": e["rate_limits"]}))
}
