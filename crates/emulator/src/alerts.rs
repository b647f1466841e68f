//! SQL alerts v2 (`/api/2.0/alerts`, contract part 2 §6): create (the body is the alert;
//! name, query, warehouse, evaluation and schedule required; 404 when `parent_path` is not a
//! folder), get, list (`alerts`), PATCH with a required `update_mask` (`*` = every
//! updatable field; `parent_path` is create-only), DELETE (`purge=true` removes the alert;
//! without it the alert is trashed and reads back as `lifecycle_state: DELETED`).
//! The alert never runs here: `evaluation.state` stays `UNKNOWN`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, decode_token, encode_token, now_ms, ok, opt_str, page_size, qbool, query, req_str,
    rfc3339, ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};

pub const ALERTS: &str = "alerts_v2";
const API: &str = "/api/2.0/alerts";
/// Fields an update may set.
const UPDATABLE: [&str; 9] = [
    "display_name",
    "query_text",
    "warehouse_id",
    "evaluation",
    "schedule",
    "run_as",
    "run_as_user_name",
    "custom_summary",
    "custom_description",
];
const OPERATORS: [&str; 8] = [
    "LESS_THAN",
    "GREATER_THAN",
    "EQUAL",
    "NOT_EQUAL",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN_OR_EQUAL",
    "IS_NULL",
    "IS_NOT_NULL",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new().route(API, get(list).post(create)).route(
        &format!("{API}/{{id}}"),
        get(get_one).patch(update).delete(delete),
    )
}

/// Whether a live (not trashed) alert exists: for permissions.
pub fn exists(emu: &Emu, id: &str) -> bool {
    emu.store
        .get(ALERTS, id)
        .is_some_and(|a| a["lifecycle_state"] == "ACTIVE")
}

fn missing(id: &str) -> ApiErr {
    ApiErr::not_found(format!("Alert {id} does not exist."))
}

/// The required parts of an alert, and the operator's value.
fn validate(a: &Map<String, Value>) -> Result<(), ApiErr> {
    for f in ["display_name", "query_text", "warehouse_id"] {
        if req_str(a, f)?.trim().is_empty() {
            return Err(ApiErr::missing(f));
        }
    }
    let eval = a
        .get("evaluation")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiErr::missing("evaluation"))?;
    let op = req_str(eval, "comparison_operator")?;
    if !OPERATORS.contains(&op) {
        return Err(ApiErr::invalid(format!(
            "Invalid comparison_operator '{op}': allowed are {}",
            OPERATORS.join(", ")
        )));
    }
    let source = eval
        .get("source")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiErr::missing("evaluation.source"))?;
    req_str(source, "name")?;
    let schedule = a
        .get("schedule")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiErr::missing("schedule"))?;
    req_str(schedule, "quartz_cron_schedule")?;
    req_str(schedule, "timezone_id")?;
    Ok(())
}

/// The server's parts of an evaluation.
fn with_evaluation_state(a: &mut Value) {
    if let Some(e) = a.get_mut("evaluation").and_then(Value::as_object_mut) {
        e.entry("state").or_insert(json!("UNKNOWN"));
    }
}

async fn create(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    validate(&b)?;
    let folder = match opt_str(&b, "parent_path")? {
        Some(p) if !super::workspace::is_directory(&emu, p) => {
            return Err(ApiErr::not_found(format!("Path ({p}) doesn't exist.")))
        }
        Some(p) if p.starts_with("/Workspace/") => p.trim_end_matches('/').to_string(),
        Some(p) => format!("/Workspace{}", p.trim_end_matches('/')),
        None => format!("/Workspace/Users/{}", caller.user_name),
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = rfc3339(now_ms());
    let mut a = Value::Object(
        b.iter()
            .filter(|(k, _)| UPDATABLE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    a["id"] = json!(id);
    a["parent_path"] = json!(folder);
    a["lifecycle_state"] = json!("ACTIVE");
    a["owner_user_name"] = json!(caller.user_name);
    a["effective_run_as"] = match a.get("run_as") {
        Some(r) => r.clone(),
        None => json!({"user_name": caller.user_name}),
    };
    a["create_time"] = json!(now);
    a["update_time"] = json!(now);
    with_evaluation_state(&mut a);
    emu.store.txn(|t| {
        t.put(ALERTS, &id, a.clone());
        super::permissions::grant_owner(t, "alertsv2", &id, &caller.user_name);
        Ok::<_, ApiErr>(())
    })?;
    ok(a)
}

async fn get_one(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store
        .get(ALERTS, &id)
        .map(ok)
        .unwrap_or_else(|| Err(missing(&id)))
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let limit = page_size(&q, "page_size", 100, 1000)?;
    let after = decode_token(q.get("page_token"))?;
    let (page, more) = emu.store.page(ALERTS, after.as_deref(), limit, |a| {
        a["lifecycle_state"] == "ACTIVE"
    });
    let mut out = json!({});
    if !page.is_empty() {
        out["alerts"] = page.iter().map(|(_, a)| a.clone()).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

async fn update(
    State(emu): Shared,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    raw: Bytes,
) -> ApiResult {
    let q = query(q.as_deref());
    let mask = q
        .get("update_mask")
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| ApiErr::missing("update_mask"))?
        .clone();
    let fields: Vec<String> = if mask.trim() == "*" {
        UPDATABLE.iter().map(|f| f.to_string()).collect()
    } else {
        mask.split(',').map(|f| f.trim().to_string()).collect()
    };
    if let Some(f) = fields.iter().find(|f| !UPDATABLE.contains(&f.as_str())) {
        return Err(ApiErr::invalid(format!(
            "Field '{f}' cannot be updated (updatable: {})",
            UPDATABLE.join(", ")
        )));
    }
    let b = body(&raw)?;
    let a = emu.store.txn(|t| {
        let mut a = t
            .get(ALERTS, &id)
            .filter(|a| a["lifecycle_state"] == "ACTIVE")
            .cloned()
            .ok_or_else(|| missing(&id))?;
        let Value::Object(m) = &mut a else {
            return Err(missing(&id));
        };
        for f in &fields {
            match b.get(f) {
                Some(v) => {
                    m.insert(f.clone(), v.clone());
                }
                None => {
                    m.remove(f);
                }
            }
        }
        validate(m)?;
        m.insert("update_time".into(), json!(rfc3339(now_ms())));
        with_evaluation_state(&mut a);
        t.put(ALERTS, &id, a.clone());
        Ok::<_, ApiErr>(a)
    })?;
    ok(a)
}

async fn delete(State(emu): Shared, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let purge = qbool(&q, "purge")?.unwrap_or(false);
    emu.store.txn(|t| {
        let mut a = t.get(ALERTS, &id).cloned().ok_or_else(|| missing(&id))?;
        if purge {
            t.delete(ALERTS, &id);
        } else {
            if a["lifecycle_state"] != "ACTIVE" {
                return Err(missing(&id));
            }
            a["lifecycle_state"] = json!("DELETED");
            t.put(ALERTS, &id, a);
        }
        super::permissions::forget(t, "alertsv2", &id);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
