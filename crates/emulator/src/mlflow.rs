//! MLflow (contract part 2 §6): experiments (`/api/2.0/mlflow/experiments`), models of the
//! legacy workspace registry (`/api/2.0/mlflow/registered-models`, read through
//! `/api/2.0/mlflow/databricks/registered-models/get`) and Unity Catalog registered models
//! (`/api/2.1/unity-catalog/models`).
//!
//! Experiments get numeric ids; a delete is soft (`lifecycle_stage: deleted`, readable by id,
//! out of the default list, its name free again) and `restore` undoes it. A leading
//! `/Workspace` is dropped from names, as the service does. Legacy models are keyed by name and
//! carry a hex `id` that the Permissions API uses. UC models live in an existing schema and
//! take grants as securable type `function` (served by `unity_catalog`).
//!
//! Not emulated: runs, model versions, aliases, the workspace folder an experiment sits in.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, decode_token, encode_token, now_ms, ok, opt_str, page_size, query, random_hex, req_str,
    ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};
use super::store::Txn;

pub const EXPERIMENTS: &str = "mlflow_experiments";
pub const MODELS: &str = "mlflow_models";
pub const UC_MODELS: &str = "uc_models";
const EXP: &str = "/api/2.0/mlflow/experiments";
const REG: &str = "/api/2.0/mlflow/registered-models";
const UC: &str = "/api/2.1/unity-catalog/models";

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(&format!("{EXP}/create"), post(create_experiment))
        .route(&format!("{EXP}/get"), get(get_experiment))
        .route(&format!("{EXP}/get-by-name"), get(get_experiment_by_name))
        .route(&format!("{EXP}/list"), get(list_experiments))
        .route(&format!("{EXP}/update"), post(update_experiment))
        .route(&format!("{EXP}/delete"), post(delete_experiment))
        .route(&format!("{EXP}/restore"), post(restore_experiment))
        .route(
            &format!("{EXP}/set-experiment-tag"),
            post(set_experiment_tag),
        )
        .route(
            &format!("{EXP}/delete-experiment-tag"),
            post(delete_experiment_tag),
        )
        .route(&format!("{REG}/create"), post(create_model))
        .route(&format!("{REG}/get"), get(get_model))
        .route(
            "/api/2.0/mlflow/databricks/registered-models/get",
            get(get_model_databricks),
        )
        .route(&format!("{REG}/list"), get(list_models))
        .route(&format!("{REG}/update"), patch(update_model))
        .route(&format!("{REG}/rename"), post(rename_model))
        .route(&format!("{REG}/set-tag"), post(set_model_tag))
        .route(&format!("{REG}/delete-tag"), delete(delete_model_tag))
        .route(&format!("{REG}/delete"), delete(delete_model))
        .route(UC, get(list_uc_models).post(create_uc_model))
        .route(
            &format!("{UC}/{{full_name}}"),
            get(get_uc_model)
                .patch(update_uc_model)
                .delete(delete_uc_model),
        )
}

// ---------------------------------------------------------------------------
// Shared

/// `tags` of a body: a list of `{key, value}`.
fn tag_list(b: &Map<String, Value>) -> Result<Vec<Value>, ApiErr> {
    match b.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| {
                let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
                if key.is_empty() {
                    return Err(ApiErr::invalid("Every tag needs a non-empty 'key'"));
                }
                let value = t.get("value").and_then(Value::as_str).unwrap_or_default();
                Ok(json!({"key": key, "value": value}))
            })
            .collect(),
        Some(_) => Err(ApiErr::invalid("Field 'tags' must be a list")),
    }
}

/// Set (or with `None` remove) one tag of a record.
fn put_tag(rec: &mut Value, key: &str, value: Option<&str>) {
    let mut tags: Vec<Value> = rec["tags"].as_array().cloned().unwrap_or_default();
    tags.retain(|t| t["key"] != key);
    if let Some(v) = value {
        tags.push(json!({"key": key, "value": v}));
    }
    rec["tags"] = Value::Array(tags);
}

fn paged(
    items: Vec<Value>,
    q: &std::collections::HashMap<String, String>,
    size_key: &str,
    list_key: &str,
    key_of: impl Fn(&Value) -> String,
) -> ApiResult {
    let limit = page_size(q, size_key, 1000, 1000)?;
    let after = decode_token(q.get("page_token"))?;
    let mut items: Vec<(String, Value)> = items.into_iter().map(|v| (key_of(&v), v)).collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let rest: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    let more = rest.len() > limit;
    let page: Vec<(String, Value)> = rest.into_iter().take(limit).collect();
    let mut out = json!({});
    if !page.is_empty() {
        out[list_key] = page.iter().map(|(_, v)| v.clone()).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

// ---------------------------------------------------------------------------
// Experiments

/// The name as stored: absolute, without a leading `/Workspace`.
fn experiment_name(raw: &str) -> Result<String, ApiErr> {
    if !raw.starts_with('/') || raw.ends_with('/') {
        return Err(ApiErr::invalid(format!(
            "Got an invalid experiment name '{raw}': it must be an absolute workspace path such as /Users/<user>/<name>"
        )));
    }
    Ok(match raw.strip_prefix("/Workspace/") {
        Some(rest) => format!("/{rest}"),
        None => raw.to_string(),
    })
}

fn experiment_missing(id: &str) -> ApiErr {
    ApiErr::not_found(format!("Node ID {id} does not exist."))
}

fn is_active(e: &Value) -> bool {
    e["lifecycle_stage"] == "active"
}

fn active_name_taken(t: &Txn<'_>, name: &str, except: Option<&str>) -> bool {
    t.values(EXPERIMENTS).any(|(k, e)| {
        Some(k.as_str()) != except && is_active(e) && e["name"].as_str() == Some(name)
    })
}

/// Whether an active experiment has this id: for permissions.
pub fn experiment_exists(emu: &Emu, id: &str) -> bool {
    emu.store
        .get(EXPERIMENTS, id)
        .is_some_and(|e| is_active(&e))
}

fn experiment_id_of(b: &Map<String, Value>) -> Result<String, ApiErr> {
    Ok(req_str(b, "experiment_id")?.to_string())
}

async fn create_experiment(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let name = experiment_name(req_str(&b, "name")?)?;
    let tags = tag_list(&b)?;
    let artifact = opt_str(&b, "artifact_location")?.map(str::to_string);
    let now = now_ms();
    let id = emu.store.txn(|t| {
        if active_name_taken(t, &name, None) {
            return Err(ApiErr::exists(format!(
                "Experiment with name '{name}' already exists."
            )));
        }
        let id = t
            .next_id("mlflow_experiment", 1_000_000_000_000_000)
            .to_string();
        let mut e = json!({
            "experiment_id": id,
            "name": name,
            "artifact_location": artifact.clone()
                .unwrap_or_else(|| format!("dbfs:/databricks/mlflow-tracking/{id}")),
            "lifecycle_stage": "active",
            "creation_time": now,
            "last_update_time": now,
            "tags": tags,
        });
        // The service's own tag, which a bundle never manages.
        put_tag(&mut e, "mlflow.ownerEmail", Some(&caller.user_name));
        t.put(EXPERIMENTS, &id, e);
        super::permissions::grant_owner(t, "experiments", &id, &caller.user_name);
        Ok::<_, ApiErr>(id)
    })?;
    ok(json!({"experiment_id": id}))
}

async fn get_experiment(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let id = q
        .get("experiment_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiErr::missing("experiment_id"))?;
    let e = emu
        .store
        .get(EXPERIMENTS, id)
        .ok_or_else(|| experiment_missing(id))?;
    ok(json!({"experiment": e}))
}

async fn get_experiment_by_name(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let raw = q
        .get("experiment_name")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiErr::missing("experiment_name"))?;
    let name = experiment_name(raw)?;
    let all = emu.store.all(EXPERIMENTS);
    let found = all
        .iter()
        .filter(|(_, e)| e["name"].as_str() == Some(name.as_str()))
        .max_by_key(|(_, e)| is_active(e))
        .map(|(_, e)| e.clone())
        .ok_or_else(|| {
            ApiErr::not_found(format!("Could not find experiment with name '{name}'"))
        })?;
    ok(json!({"experiment": found}))
}

async fn list_experiments(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let view = q.get("view_type").map_or("ACTIVE_ONLY", String::as_str);
    let keep = |e: &Value| match view {
        "ACTIVE_ONLY" => is_active(e),
        "DELETED_ONLY" => !is_active(e),
        "ALL" => true,
        _ => false,
    };
    if !matches!(view, "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL") {
        return Err(ApiErr::invalid(format!(
            "Invalid view_type '{view}': expected ACTIVE_ONLY, DELETED_ONLY or ALL"
        )));
    }
    let items = emu
        .store
        .all(EXPERIMENTS)
        .into_iter()
        .map(|(_, e)| e)
        .filter(keep)
        .collect();
    paged(items, &q, "max_results", "experiments", |e| {
        e["experiment_id"].as_str().unwrap_or_default().to_string()
    })
}

/// Change one active experiment in a transaction.
fn with_active_experiment(
    emu: &Emu,
    id: &str,
    f: impl FnOnce(&mut Txn<'_>, &mut Value) -> Result<(), ApiErr>,
) -> ApiResult {
    emu.store.txn(|t| {
        let mut e = t
            .get(EXPERIMENTS, id)
            .cloned()
            .ok_or_else(|| experiment_missing(id))?;
        if !is_active(&e) {
            return Err(ApiErr::invalid_state(format!(
                "Cannot modify experiment {id}: it is deleted"
            )));
        }
        f(t, &mut e)?;
        e["last_update_time"] = json!(now_ms());
        t.put(EXPERIMENTS, id, e);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn update_experiment(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = experiment_id_of(&b)?;
    let name = experiment_name(req_str(&b, "new_name")?)?;
    with_active_experiment(&emu, &id, |t, e| {
        if active_name_taken(t, &name, Some(&id)) {
            return Err(ApiErr::exists(format!(
                "Experiment with name '{name}' already exists."
            )));
        }
        e["name"] = json!(name);
        Ok(())
    })
}

async fn set_experiment_tag(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = experiment_id_of(&b)?;
    let key = req_str(&b, "key")?.to_string();
    let value = opt_str(&b, "value")?.unwrap_or_default().to_string();
    with_active_experiment(&emu, &id, |_, e| {
        put_tag(e, &key, Some(&value));
        Ok(())
    })
}

async fn delete_experiment_tag(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = experiment_id_of(&b)?;
    let key = req_str(&b, "key")?.to_string();
    with_active_experiment(&emu, &id, |_, e| {
        if !e["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["key"] == key)
        {
            return Err(ApiErr::not_found(format!(
                "No tag with key '{key}' on experiment {id}"
            )));
        }
        put_tag(e, &key, None);
        Ok(())
    })
}

async fn set_stage(emu: &Emu, raw: &Bytes, stage: &str) -> ApiResult {
    let b = body(raw)?;
    let id = experiment_id_of(&b)?;
    emu.store.txn(|t| {
        let mut e = t
            .get(EXPERIMENTS, &id)
            .cloned()
            .ok_or_else(|| experiment_missing(&id))?;
        if stage == "active" && !is_active(&e) {
            let name = e["name"].as_str().unwrap_or_default().to_string();
            if active_name_taken(t, &name, Some(&id)) {
                return Err(ApiErr::exists(format!(
                    "Cannot restore experiment {id}: an active experiment is named '{name}'"
                )));
            }
        }
        e["lifecycle_stage"] = json!(stage);
        e["last_update_time"] = json!(now_ms());
        t.put(EXPERIMENTS, &id, e);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn delete_experiment(State(emu): Shared, raw: Bytes) -> ApiResult {
    set_stage(&emu, &raw, "deleted").await
}

async fn restore_experiment(State(emu): Shared, raw: Bytes) -> ApiResult {
    set_stage(&emu, &raw, "active").await
}

// ---------------------------------------------------------------------------
// Legacy workspace registry models

fn model_missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!(
        "RegisteredModel '{name}' does not exist. It might have been deleted."
    ))
}

/// Whether a legacy model has this permissions id.
pub fn model_id_exists(emu: &Emu, id: &str) -> bool {
    emu.store
        .all(MODELS)
        .iter()
        .any(|(_, m)| m["id"].as_str() == Some(id))
}

/// The public view (`registered_model`): without the Databricks-only fields.
fn model_view(m: &Value) -> Value {
    let mut v = m.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("permission_level");
    }
    v
}

fn model_name_q(q: &std::collections::HashMap<String, String>) -> Result<String, ApiErr> {
    q.get("name")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| ApiErr::missing("name"))
}

async fn create_model(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    if name.contains('/') || name.trim() != name {
        return Err(ApiErr::invalid(format!(
            "Invalid model name '{name}': no '/' and no surrounding spaces"
        )));
    }
    let tags = tag_list(&b)?;
    let description = opt_str(&b, "description")?.unwrap_or_default().to_string();
    let now = now_ms();
    let m = json!({
        "id": random_hex(16),
        "name": name,
        "creation_timestamp": now,
        "last_updated_timestamp": now,
        "user_id": caller.user_name,
        "description": description,
        "tags": tags,
        "latest_versions": [],
        "permission_level": "CAN_MANAGE",
    });
    emu.store.txn(|t| {
        if t.get(MODELS, &name).is_some() {
            return Err(ApiErr::exists(format!(
                "Registered Model (name={name}) already exists."
            )));
        }
        t.put(MODELS, &name, m.clone());
        let id = m["id"].as_str().unwrap_or_default();
        super::permissions::grant_owner(t, "registered-models", id, &caller.user_name);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({"registered_model": model_view(&m)}))
}

async fn get_model(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let name = model_name_q(&query(q.as_deref()))?;
    let m = emu
        .store
        .get(MODELS, &name)
        .ok_or_else(|| model_missing(&name))?;
    ok(json!({"registered_model": model_view(&m)}))
}

async fn get_model_databricks(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let name = model_name_q(&query(q.as_deref()))?;
    let m = emu
        .store
        .get(MODELS, &name)
        .ok_or_else(|| model_missing(&name))?;
    ok(json!({"registered_model_databricks": m}))
}

async fn list_models(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let items = emu
        .store
        .all(MODELS)
        .into_iter()
        .map(|(_, m)| model_view(&m))
        .collect();
    paged(items, &q, "max_results", "registered_models", |m| {
        m["name"].as_str().unwrap_or_default().to_string()
    })
}

fn with_model(
    emu: &Emu,
    name: &str,
    f: impl FnOnce(&mut Value) -> Result<(), ApiErr>,
) -> Result<Value, ApiErr> {
    emu.store.txn(|t| {
        let mut m = t
            .get(MODELS, name)
            .cloned()
            .ok_or_else(|| model_missing(name))?;
        f(&mut m)?;
        m["last_updated_timestamp"] = json!(now_ms());
        t.put(MODELS, name, m.clone());
        Ok(m)
    })
}

async fn update_model(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    let description = opt_str(&b, "description")?.unwrap_or_default().to_string();
    let m = with_model(&emu, &name, |m| {
        m["description"] = json!(description);
        Ok(())
    })?;
    ok(json!({"registered_model": model_view(&m)}))
}

async fn rename_model(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    let new_name = req_str(&b, "new_name")?.to_string();
    let m = emu.store.txn(|t| {
        let mut m = t
            .get(MODELS, &name)
            .cloned()
            .ok_or_else(|| model_missing(&name))?;
        if t.get(MODELS, &new_name).is_some() {
            return Err(ApiErr::exists(format!(
                "Registered Model (name={new_name}) already exists."
            )));
        }
        t.delete(MODELS, &name);
        m["name"] = json!(new_name);
        m["last_updated_timestamp"] = json!(now_ms());
        t.put(MODELS, &new_name, m.clone());
        Ok::<_, ApiErr>(m)
    })?;
    ok(json!({"registered_model": model_view(&m)}))
}

async fn set_model_tag(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    let key = req_str(&b, "key")?.to_string();
    let value = opt_str(&b, "value")?.unwrap_or_default().to_string();
    with_model(&emu, &name, |m| {
        put_tag(m, &key, Some(&value));
        Ok(())
    })?;
    ok(json!({}))
}

async fn delete_model_tag(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let name = model_name_q(&q)?;
    let key = q
        .get("key")
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| ApiErr::missing("key"))?;
    with_model(&emu, &name, |m| {
        if !m["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["key"] == key)
        {
            return Err(ApiErr::not_found(format!(
                "No tag with key '{key}' on registered model '{name}'"
            )));
        }
        put_tag(m, &key, None);
        Ok(())
    })?;
    ok(json!({}))
}

async fn delete_model(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let name = model_name_q(&query(q.as_deref()))?;
    emu.store.txn(|t| {
        let m = t
            .delete(MODELS, &name)
            .ok_or_else(|| model_missing(&name))?;
        super::permissions::forget(t, "registered-models", m["id"].as_str().unwrap_or_default());
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

// ---------------------------------------------------------------------------
// Unity Catalog registered models

fn uc_missing(full: &str) -> ApiErr {
    ApiErr::not_found(format!("Registered model '{full}' does not exist."))
}

/// One identifier part, as Unity Catalog stores it (lower case).
fn uc_part(what: &str, s: &str) -> Result<String, ApiErr> {
    if s.is_empty() || s.contains(['.', '/', ' ']) {
        return Err(ApiErr::invalid(format!(
            "Invalid {what} '{s}': use letters, digits and underscores"
        )));
    }
    Ok(s.to_lowercase())
}

/// The stored key of `catalog.schema.name` (lower case), checking its shape.
pub fn uc_model_key(full: &str) -> Result<String, ApiErr> {
    let parts: Vec<&str> = full.split('.').collect();
    if parts.len() != 3 {
        return Err(ApiErr::invalid(format!(
            "Invalid registered model name '{full}': expected catalog.schema.model"
        )));
    }
    Ok(parts
        .iter()
        .map(|p| uc_part("name part", p))
        .collect::<Result<Vec<_>, _>>()?
        .join("."))
}

/// Whether a UC model exists (grants on securable type `function`, serving endpoints).
pub fn uc_model_exists(emu: &Emu, full: &str) -> bool {
    uc_model_key(full).is_ok_and(|k| emu.store.get(UC_MODELS, &k).is_some())
}

async fn create_uc_model(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let catalog = uc_part("catalog name", req_str(&b, "catalog_name")?)?;
    let schema = uc_part("schema name", req_str(&b, "schema_name")?)?;
    let name = uc_part("model name", req_str(&b, "name")?)?;
    if let Some(k) = b.keys().find(|k| {
        ![
            "catalog_name",
            "schema_name",
            "name",
            "comment",
            "storage_location",
        ]
        .contains(&k.as_str())
    }) {
        return Err(ApiErr::invalid(format!(
            "CreateRegisteredModel: unknown field '{k}'"
        )));
    }
    let full = format!("{catalog}.{schema}.{name}");
    let schema_full = format!("{catalog}.{schema}");
    if !super::unity_catalog::schema_exists(&emu, &schema_full) {
        return Err(ApiErr::not_found(format!(
            "Schema '{schema_full}' does not exist."
        )));
    }
    let now = now_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let location = opt_str(&b, "storage_location")?
        .map(str::to_string)
        .unwrap_or_else(|| format!("s3://lakebundle-emulator/models/{id}"));
    let mut rec = json!({
        "id": id,
        "name": name,
        "catalog_name": catalog,
        "schema_name": schema,
        "full_name": full,
        "owner": caller.user_name,
        "storage_location": location,
        "metastore_id": super::unity_catalog::METASTORE_ID,
        "created_at": now,
        "created_by": caller.user_name,
        "updated_at": now,
        "updated_by": caller.user_name,
    });
    if let Some(c) = opt_str(&b, "comment")? {
        rec["comment"] = json!(c);
    }
    emu.store.txn(|t| {
        if t.get(UC_MODELS, &full).is_some() {
            return Err(ApiErr::exists(format!(
                "Registered model '{full}' already exists"
            )));
        }
        t.put(UC_MODELS, &full, rec.clone());
        Ok::<_, ApiErr>(())
    })?;
    ok(rec)
}

async fn get_uc_model(
    State(emu): Shared,
    Path(full): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let key = uc_model_key(&full)?;
    let mut m = emu
        .store
        .get(UC_MODELS, &key)
        .ok_or_else(|| uc_missing(&key))?;
    // Aliases are only listed when asked for (no model versions here: none exist).
    if super::http::qbool(&query(q.as_deref()), "include_aliases")? == Some(true) {
        m["aliases"] = json!([]);
    }
    ok(m)
}

async fn list_uc_models(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let catalog = q.get("catalog_name").map(|s| s.to_lowercase());
    let schema = q.get("schema_name").map(|s| s.to_lowercase());
    if schema.is_some() && catalog.is_none() {
        return Err(ApiErr::invalid("schema_name needs catalog_name"));
    }
    let items = emu
        .store
        .all(UC_MODELS)
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| catalog.as_ref().is_none_or(|c| m["catalog_name"] == **c))
        .filter(|m| schema.as_ref().is_none_or(|s| m["schema_name"] == **s))
        .collect();
    paged(items, &q, "max_results", "registered_models", |m| {
        m["full_name"].as_str().unwrap_or_default().to_string()
    })
}

async fn update_uc_model(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(full): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let key = uc_model_key(&full)?;
    let b = body(&raw)?;
    if let Some(k) = b
        .keys()
        .find(|k| !["comment", "owner", "new_name", "full_name"].contains(&k.as_str()))
    {
        return Err(ApiErr::invalid(format!(
            "UpdateRegisteredModel: field '{k}' cannot be updated"
        )));
    }
    let new_name = opt_str(&b, "new_name")?
        .map(|n| uc_part("model name", n))
        .transpose()?;
    let rec = emu.store.txn(|t| {
        let mut m = t
            .get(UC_MODELS, &key)
            .cloned()
            .ok_or_else(|| uc_missing(&key))?;
        for f in ["comment", "owner"] {
            if let Some(v) = opt_str(&b, f)? {
                m[f] = json!(v);
            }
        }
        m["updated_at"] = json!(now_ms());
        m["updated_by"] = json!(caller.user_name);
        let mut to = key.clone();
        if let Some(n) = &new_name {
            to = format!(
                "{}.{}.{n}",
                m["catalog_name"].as_str().unwrap_or_default(),
                m["schema_name"].as_str().unwrap_or_default()
            );
            if to != key && t.get(UC_MODELS, &to).is_some() {
                return Err(ApiErr::exists(format!(
                    "Registered model '{to}' already exists"
                )));
            }
            m["name"] = json!(n);
            m["full_name"] = json!(to);
            t.delete(UC_MODELS, &key);
            super::unity_catalog::move_grants(t, "function", &key, &to);
        }
        t.put(UC_MODELS, &to, m.clone());
        Ok::<_, ApiErr>(m)
    })?;
    ok(rec)
}

async fn delete_uc_model(State(emu): Shared, Path(full): Path<String>) -> ApiResult {
    let key = uc_model_key(&full)?;
    emu.store.txn(|t| {
        t.delete(UC_MODELS, &key).ok_or_else(|| uc_missing(&key))?;
        super::unity_catalog::forget_grants(t, "function", &key);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
