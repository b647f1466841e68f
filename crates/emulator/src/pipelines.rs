//! Pipelines (Lakeflow declarative, contract part 2 §3): create, get, edit (PUT of the whole
//! settings), delete, list, updates and stop. One collection holds both the pipelines users
//! create here (a `spec`) and the pipelines synced tables create for themselves (see
//! `catalogs`); the routes serve both and hand the synced-table ones to `catalogs`.
//!
//! An update of a user pipeline goes QUEUED → CREATED → WAITING_FOR_RESOURCES → INITIALIZING
//! → SETTING_UP_TABLES → RUNNING → COMPLETED, one `--transition-ms` per state, computed from
//! its creation time (no background task, so a restarted emulator resumes it). A continuous
//! pipeline's update stays RUNNING until stopped. `configuration` key
//! `lakebundle.emulator.fail_update: "true"` makes updates end FAILED (for testing failures).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::catalogs::{self, PIPELINES, UPDATES};
use super::http::{
    body, decode_token, encode_token, internal, internal_mut, now_ms, ok, opt_bool, page_size,
    query, strip_internal, ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};

/// Update states a user pipeline's update passes through, in order.
const PHASES: [&str; 6] = [
    "QUEUED",
    "CREATED",
    "WAITING_FOR_RESOURCES",
    "INITIALIZING",
    "SETTING_UP_TABLES",
    "RUNNING",
];
const TERMINAL: [&str; 3] = ["COMPLETED", "FAILED", "CANCELED"];
/// Settings accepted on create/edit but never stored in the spec.
const REQUEST_ONLY: [&str; 5] = [
    "allow_duplicate_names",
    "dry_run",
    "expected_last_modified",
    "pipeline_id",
    "id",
];
const FAIL_KEY: &str = "lakebundle.emulator.fail_update";

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.0/pipelines", get(list).post(create))
        .route(
            "/api/2.0/pipelines/{id}",
            get(get_pipeline).put(edit).delete(delete),
        )
        .route(
            "/api/2.0/pipelines/{id}/updates",
            post(start_update).get(list_updates),
        )
        .route(
            "/api/2.0/pipelines/{id}/updates/{update_id}",
            get(get_update),
        )
        .route("/api/2.0/pipelines/{id}/stop", post(stop))
        .route("/api/2.0/pipelines/{id}/events", get(events))
}

fn missing(id: &str) -> ApiErr {
    ApiErr::not_found(format!("The specified pipeline {id} was not found."))
}

/// A pipeline created through this API (not a synced table's own pipeline).
fn is_user(p: &Value) -> bool {
    p.get("spec").is_some()
}

/// Whether a pipeline exists (any kind): for permissions.
pub fn exists(emu: &Emu, id: &str) -> bool {
    emu.store.get(PIPELINES, id).is_some()
}

/// The settings of a create/edit body, validated, without the request-only fields.
fn settings(b: &Map<String, Value>) -> Result<Map<String, Value>, ApiErr> {
    let mut s = b.clone();
    for k in REQUEST_ONLY {
        s.remove(k);
    }
    match s.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => {}
        Some(Value::String(_)) | None => {
            return Err(ApiErr::invalid("Pipeline name must be specified"));
        }
        Some(_) => return Err(ApiErr::invalid("Field 'name' must be a string")),
    }
    if s.contains_key("schema") && s.contains_key("target") {
        return Err(ApiErr::invalid(
            "Only one of 'schema' and 'target' may be specified",
        ));
    }
    if let Some(libs) = s.get("libraries") {
        let Some(libs) = libs.as_array() else {
            return Err(ApiErr::invalid("Field 'libraries' must be a list"));
        };
        for l in libs {
            let kinds = ["notebook", "file", "glob", "jar", "maven", "whl"]
                .iter()
                .filter(|k| l.get(**k).is_some())
                .count();
            if kinds != 1 {
                return Err(ApiErr::invalid(format!(
                    "Each library must set exactly one of notebook, file, glob, jar, maven, whl; got {l}"
                )));
            }
        }
    }
    for f in ["configuration", "tags"] {
        if let Some(v) = s.get(f) {
            if !v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
            {
                return Err(ApiErr::invalid(format!(
                    "Field '{f}' must be a map of string to string"
                )));
            }
        }
    }
    Ok(s)
}

fn name_taken(t: &super::store::Txn<'_>, name: &str, except: Option<&str>) -> bool {
    t.values(PIPELINES).any(|(k, p)| {
        is_user(p) && Some(k.as_str()) != except && p.pointer("/spec/name") == Some(&json!(name))
    })
}

async fn create(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let allow_dup = opt_bool(&b, "allow_duplicate_names")?.unwrap_or(false);
    let dry_run = opt_bool(&b, "dry_run")?.unwrap_or(false);
    let mut spec = settings(&b)?;
    let id = uuid::Uuid::new_v4().to_string();
    let name = spec["name"].as_str().unwrap_or_default().to_string();
    // Hive-metastore pipelines get a storage location; Unity Catalog ones do not.
    if !spec.contains_key("catalog") {
        spec.entry("storage")
            .or_insert(json!(format!("dbfs:/pipelines/{id}")));
    }
    spec.insert("id".into(), json!(id));
    if dry_run {
        return ok(json!({"pipeline_id": id, "effective_settings": spec}));
    }
    let run_as = spec
        .get("run_as")
        .and_then(|r| {
            r.get("user_name")
                .or_else(|| r.get("service_principal_name"))
        })
        .and_then(Value::as_str)
        .unwrap_or(&caller.user_name)
        .to_string();
    let now = now_ms();
    emu.store.txn(|t| {
        if !allow_dup && name_taken(t, &name, None) {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "RESOURCE_CONFLICT",
                format!("Pipeline with name '{name}' already exists."),
            ));
        }
        t.put(
            PIPELINES,
            &id,
            json!({
                "pipeline_id": id,
                "spec": spec,
                "creator_user_name": caller.user_name,
                "run_as_user_name": run_as,
                "last_modified": now,
                "created": now,
            }),
        );
        super::permissions::grant_owner(t, "pipelines", &id, &caller.user_name);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({"pipeline_id": id}))
}

/// The updates of pipeline `id`, newest first.
fn updates_of(emu: &Emu, id: &str) -> Vec<Value> {
    let mut ups: Vec<Value> = emu
        .store
        .all(UPDATES)
        .into_iter()
        .filter(|(_, u)| u["pipeline_id"].as_str() == Some(id))
        .map(|(_, u)| u)
        .collect();
    ups.sort_by_key(|u| std::cmp::Reverse(u["creation_time"].as_i64().unwrap_or(0)));
    ups
}

/// State of a user pipeline's update at `now`, and when it ended (0 while active).
fn user_update_state(emu: &Emu, u: &Value, now: i64) -> (&'static str, i64) {
    let start = u["creation_time"].as_i64().unwrap_or(now);
    let step = emu.cfg.transition_ms.max(1) as i64;
    let emu_fields = internal(u);
    let continuous = emu_fields
        .get("continuous")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let fail = emu_fields
        .get("fail")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let done = start + step * PHASES.len() as i64;
    if let Some(c) = emu_fields.get("canceled_at").and_then(Value::as_i64) {
        if continuous || c < done {
            return ("CANCELED", c);
        }
    }
    let phase = ((now - start).max(0) / step) as usize;
    if phase < PHASES.len() {
        return (PHASES[phase], 0);
    }
    if continuous {
        return ("RUNNING", 0);
    }
    (if fail { "FAILED" } else { "COMPLETED" }, done)
}

/// An update as the API shows it (state computed for user pipelines).
fn update_view(emu: &Emu, u: &Value, now: i64) -> Value {
    let mut out = strip_internal(u.clone());
    if internal(u).get("user").and_then(Value::as_bool) == Some(true) {
        out["state"] = json!(user_update_state(emu, u, now).0);
    }
    out
}

/// State and end time of any pipeline update (synced-table or user); used by job runs.
pub fn update_progress(emu: &Emu, update_id: &str) -> Option<(String, i64)> {
    let u = emu.store.get(UPDATES, update_id)?;
    if internal(&u).get("user").and_then(Value::as_bool) == Some(true) {
        let (state, end) = user_update_state(emu, &u, now_ms());
        let state = if TERMINAL.contains(&state) {
            state
        } else {
            "RUNNING"
        };
        return Some((state.to_string(), end));
    }
    catalogs::pipeline_update_progress(emu, update_id)
}

/// The body fields of a start-update request kept on the update.
const UPDATE_FIELDS: [&str; 7] = [
    "full_refresh",
    "refresh_selection",
    "full_refresh_selection",
    "validate_only",
    "cause",
    "parameters",
    "development",
];

/// Start an update of any pipeline; returns its id. Fails while one is active.
pub fn start(emu: &Arc<Emu>, id: &str, req: &Map<String, Value>) -> Result<String, ApiErr> {
    let p = emu.store.get(PIPELINES, id).ok_or_else(|| missing(id))?;
    if !is_user(&p) {
        let full = req
            .get("full_refresh")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return catalogs::start_pipeline_update(emu, id, full);
    }
    for f in ["refresh_selection", "full_refresh_selection"] {
        if let Some(v) = req.get(f) {
            if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                return Err(ApiErr::invalid(format!(
                    "Field '{f}' must be a list of strings"
                )));
            }
        }
    }
    if req.get("full_refresh").and_then(Value::as_bool) == Some(true)
        && (req.contains_key("refresh_selection") || req.contains_key("full_refresh_selection"))
    {
        return Err(ApiErr::invalid(
            "full_refresh cannot be combined with refresh_selection or full_refresh_selection",
        ));
    }
    let now = now_ms();
    let update_id = uuid::Uuid::new_v4().to_string();
    emu.store.txn(|t| {
        let active = t.values(UPDATES).any(|(_, u)| {
            u["pipeline_id"].as_str() == Some(id)
                && !TERMINAL.contains(&user_update_state(emu, u, now).0)
        });
        if active {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "RESOURCE_CONFLICT",
                format!("An active update already exists for pipeline {id}."),
            ));
        }
        let spec = &p["spec"];
        let mut u = json!({"update_id": update_id, "pipeline_id": id, "state": "QUEUED",
                           "creation_time": now, "cause": "API_CALL"});
        for f in UPDATE_FIELDS {
            if let Some(v) = req.get(f) {
                u[f] = v.clone();
            }
        }
        if let Some(m) = internal_mut(&mut u) {
            m.insert("user".into(), json!(true));
            m.insert(
                "continuous".into(),
                json!(spec.get("continuous").and_then(Value::as_bool) == Some(true)),
            );
            m.insert(
                "fail".into(),
                json!(spec.pointer(&format!("/configuration/{FAIL_KEY}")) == Some(&json!("true"))),
            );
        }
        t.put(UPDATES, &update_id, u);
        Ok::<_, ApiErr>(())
    })?;
    Ok(update_id)
}

fn view(emu: &Emu, p: &Value) -> Value {
    let id = p["pipeline_id"].as_str().unwrap_or_default();
    let now = now_ms();
    let latest: Vec<Value> = updates_of(emu, id)
        .iter()
        .take(5)
        .map(|u| {
            let v = update_view(emu, u, now);
            json!({"update_id": v["update_id"], "state": v["state"], "creation_time": v["creation_time"]})
        })
        .collect();
    let active = latest
        .iter()
        .any(|u| !TERMINAL.contains(&u["state"].as_str().unwrap_or("COMPLETED")));
    let spec = &p["spec"];
    let mut out = json!({
        "pipeline_id": id,
        "name": spec["name"],
        "state": if active { "RUNNING" } else { "IDLE" },
        "spec": spec,
        "creator_user_name": p["creator_user_name"],
        "run_as_user_name": p["run_as_user_name"],
        "last_modified": p["last_modified"],
        "health": "HEALTHY",
        "effective_publishing_mode": "DEFAULT_PUBLISHING_MODE",
    });
    if !latest.is_empty() {
        out["latest_updates"] = Value::Array(latest);
    }
    if let Some(r) = spec.get("run_as") {
        out["run_as"] = r.clone();
    }
    out
}

async fn get_pipeline(State(emu): Shared, Path(id): Path<String>) -> Result<Response, ApiErr> {
    let p = emu.store.get(PIPELINES, &id).ok_or_else(|| missing(&id))?;
    if !is_user(&p) {
        return catalogs::get_pipeline(State(emu), Path(id)).await;
    }
    ok(view(&emu, &p))
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let limit = page_size(&q, "max_results", 25, 100)?;
    let after = decode_token(q.get("page_token"))?;
    // `filter=name LIKE '%x%'` (the only filter clients send): a case-insensitive substring.
    let like = q.get("filter").and_then(|f| {
        let (_, pat) = f.split_once("LIKE")?;
        Some(
            pat.trim()
                .trim_matches('\'')
                .replace('%', "")
                .to_lowercase(),
        )
    });
    let (page, more) = emu.store.page(PIPELINES, after.as_deref(), limit, |p| {
        let name = if is_user(p) {
            p.pointer("/spec/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        } else {
            format!(
                "synced-table-pipeline-{}",
                p["pipeline_id"].as_str().unwrap_or("")
            )
        };
        like.as_ref()
            .is_none_or(|l| name.to_lowercase().contains(l))
    });
    let mut out = json!({});
    let statuses: Vec<Value> = page
        .iter()
        .map(|(id, p)| {
            if is_user(p) {
                let v = view(&emu, p);
                json!({"pipeline_id": id, "name": v["name"], "state": v["state"],
                       "creator_user_name": v["creator_user_name"], "latest_updates": v["latest_updates"]})
            } else {
                json!({"pipeline_id": id, "name": format!("synced-table-pipeline-{id}"), "state": "IDLE"})
            }
        })
        .collect();
    if !statuses.is_empty() {
        out["statuses"] = Value::Array(statuses);
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

async fn edit(State(emu): Shared, Path(id): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let allow_dup = opt_bool(&b, "allow_duplicate_names")?.unwrap_or(false);
    let expected = b.get("expected_last_modified").and_then(Value::as_i64);
    let mut spec = settings(&b)?;
    let name = spec["name"].as_str().unwrap_or_default().to_string();
    let now = now_ms();
    emu.store.txn(|t| {
        let mut p = t
            .get(PIPELINES, &id)
            .cloned()
            .filter(is_user)
            .ok_or_else(|| missing(&id))?;
        if expected.is_some_and(|e| Some(e) != p["last_modified"].as_i64()) {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "RESOURCE_CONFLICT",
                format!(
                    "Pipeline {id} was modified since last_modified {}",
                    expected.unwrap_or(0)
                ),
            ));
        }
        if !allow_dup && name_taken(t, &name, Some(&id)) {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "RESOURCE_CONFLICT",
                format!("Pipeline with name '{name}' already exists."),
            ));
        }
        let old_storage = p.pointer("/spec/storage").cloned();
        match (spec.get("storage"), &old_storage) {
            (Some(new), Some(old)) if new != old => {
                return Err(ApiErr::invalid(
                    "Changing the storage location of a pipeline is not allowed",
                ));
            }
            (None, Some(old)) => {
                spec.insert("storage".into(), old.clone());
            }
            _ => {}
        }
        spec.insert("id".into(), json!(id));
        p["spec"] = Value::Object(spec);
        p["last_modified"] = json!(now);
        t.put(PIPELINES, &id, p);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn delete(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store.txn(|t| {
        t.get(PIPELINES, &id)
            .filter(|p| is_user(p))
            .ok_or_else(|| missing(&id))?;
        t.delete(PIPELINES, &id);
        super::permissions::forget(t, "pipelines", &id);
        let ups: Vec<String> = t
            .values(UPDATES)
            .filter(|(_, u)| u["pipeline_id"].as_str() == Some(id.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        for u in ups {
            t.delete(UPDATES, &u);
        }
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn start_update(State(emu): Shared, Path(id): Path<String>, raw: Bytes) -> ApiResult {
    let b = if raw.is_empty() {
        Map::new()
    } else {
        body(&raw)?
    };
    let update_id = start(&emu, &id, &b)?;
    ok(json!({"update_id": update_id}))
}

async fn list_updates(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store.get(PIPELINES, &id).ok_or_else(|| missing(&id))?;
    let now = now_ms();
    let updates: Vec<Value> = updates_of(&emu, &id)
        .iter()
        .map(|u| update_view(&emu, u, now))
        .collect();
    ok(json!({"updates": updates}))
}

async fn get_update(
    State(emu): Shared,
    Path((id, update_id)): Path<(String, String)>,
) -> ApiResult {
    let u = emu
        .store
        .get(UPDATES, &update_id)
        .filter(|u| u["pipeline_id"].as_str() == Some(id.as_str()))
        .ok_or_else(|| {
            ApiErr::not_found(format!(
                "Update '{update_id}' of pipeline '{id}' does not exist."
            ))
        })?;
    ok(json!({"update": update_view(&emu, &u, now_ms())}))
}

/// Cancel the active update (the SDK then waits for the pipeline to be IDLE).
async fn stop(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    let p = emu.store.get(PIPELINES, &id).ok_or_else(|| missing(&id))?;
    if !is_user(&p) {
        return ok(json!({}));
    }
    let now = now_ms();
    emu.store.txn(|t| {
        let active: Vec<(String, Value)> = t
            .values(UPDATES)
            .filter(|(_, u)| u["pipeline_id"].as_str() == Some(id.as_str()))
            .filter(|(_, u)| !TERMINAL.contains(&user_update_state(&emu, u, now).0))
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect();
        for (k, mut u) in active {
            if let Some(m) = internal_mut(&mut u) {
                m.insert("canceled_at".into(), json!(now));
            }
            t.put(UPDATES, &k, u);
        }
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

/// Events: one per update state reached so far, newest first.
async fn events(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store.get(PIPELINES, &id).ok_or_else(|| missing(&id))?;
    let now = now_ms();
    let events: Vec<Value> = updates_of(&emu, &id)
        .iter()
        .map(|u| {
            let v = update_view(&emu, u, now);
            json!({
                "id": format!("{}-{}", v["update_id"].as_str().unwrap_or(""), v["state"].as_str().unwrap_or("")),
                "event_type": "update_progress",
                "level": "INFO",
                "message": format!("Update {} is {}.", v["update_id"].as_str().unwrap_or(""), v["state"].as_str().unwrap_or("")),
                "origin": {"pipeline_id": id, "update_id": v["update_id"]},
                "details": {"update_progress": {"state": v["state"]}},
            })
        })
        .collect();
    ok(json!({"events": events}))
}
