//! Data quality monitors (`/api/2.1/unity-catalog/tables/{table_name}/monitor`, contract
//! part 2 §6): create, get, PUT (full replace of the updatable fields; `output_schema_name`
//! required, `assets_dir` cannot change), DELETE.
//!
//! The monitored table must be a lake table (`<lake>/<catalog>/<schema>/<table>.csv|jsonl`,
//! the tables synced tables read) and the output schema a UC or lake schema. A new monitor
//! is `MONITOR_STATUS_PENDING` for one `--transition-ms`, then `MONITOR_STATUS_ACTIVE`;
//! no metrics are computed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, internal, internal_mut, now_ms, ok, opt_bool, req_str, strip_internal, ApiErr, ApiResult,
};
use super::server::{Emu, Shared};

pub const MONITORS: &str = "quality_monitors";
const PROFILES: [&str; 3] = ["snapshot", "time_series", "inference_log"];
/// Fields of a PUT (and of a create, with `assets_dir`).
const UPDATABLE: [&str; 10] = [
    "output_schema_name",
    "baseline_table_name",
    "snapshot",
    "time_series",
    "inference_log",
    "schedule",
    "slicing_exprs",
    "custom_metrics",
    "notifications",
    "data_classification_config",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new().route(
        "/api/2.1/unity-catalog/tables/{table}/monitor",
        get(get_one).post(create).put(update).delete(delete),
    )
}

fn missing(table: &str) -> ApiErr {
    ApiErr::not_found(format!("Monitor for table {table} does not exist."))
}

fn table_missing(table: &str) -> ApiErr {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        "TABLE_DOES_NOT_EXIST",
        format!("Table '{table}' does not exist."),
    )
}

/// A UC schema of the store, or a lake schema directory.
fn schema_exists(emu: &Emu, full_name: &str) -> bool {
    let lower = full_name.to_lowercase();
    if emu
        .store
        .get(super::unity_catalog::UC_SCHEMAS, &lower)
        .is_some()
    {
        return true;
    }
    let Some((c, s)) = lower.split_once('.') else {
        return false;
    };
    !s.contains('.') && emu.cfg.lake().0.join(c).join(s).is_dir()
}

/// The fields of a create or PUT body, checked.
fn settings(emu: &Emu, b: &Map<String, Value>) -> Result<Map<String, Value>, ApiErr> {
    let out_schema = req_str(b, "output_schema_name")?;
    if !schema_exists(emu, out_schema) {
        return Err(ApiErr::new(
            StatusCode::NOT_FOUND,
            "SCHEMA_DOES_NOT_EXIST",
            format!("Schema '{out_schema}' does not exist."),
        ));
    }
    let profiles: Vec<&str> = PROFILES
        .iter()
        .copied()
        .filter(|p| b.get(*p).is_some_and(|v| !v.is_null()))
        .collect();
    if profiles.len() != 1 {
        return Err(ApiErr::invalid(format!(
            "Exactly one of snapshot, time_series, inference_log must be set (got {})",
            if profiles.is_empty() {
                "none".to_string()
            } else {
                profiles.join(", ")
            }
        )));
    }
    Ok(b.iter()
        .filter(|(k, _)| UPDATABLE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

fn view(emu: &Emu, m: &Value) -> Value {
    let since = internal(m)
        .get("since")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = if now_ms() >= since + emu.cfg.transition_ms as i64 {
        "MONITOR_STATUS_ACTIVE"
    } else {
        "MONITOR_STATUS_PENDING"
    };
    let mut out = strip_internal(m.clone());
    out["status"] = json!(status);
    out
}

fn with_metric_tables(m: &mut Value, table: &str) {
    let schema = m["output_schema_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base = table.rsplit('.').next().unwrap_or(table);
    m["profile_metrics_table_name"] = json!(format!("{schema}.{base}_profile_metrics"));
    m["drift_metrics_table_name"] = json!(format!("{schema}.{base}_drift_metrics"));
}

async fn create(State(emu): Shared, Path(table): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    if super::catalogs::lake_source(&emu, &table).is_err() {
        return Err(table_missing(&table));
    }
    let assets = req_str(&b, "assets_dir")?.to_string();
    let s = settings(&emu, &b)?;
    let skip_dashboard = opt_bool(&b, "skip_builtin_dashboard")?.unwrap_or(false);
    let key = table.to_lowercase();
    let mut m = Value::Object(s);
    m["table_name"] = json!(key);
    m["assets_dir"] = json!(assets);
    m["monitor_version"] = json!("1");
    if !skip_dashboard {
        m["dashboard_id"] = json!(uuid::Uuid::new_v4().simple().to_string());
    }
    with_metric_tables(&mut m, &key);
    if let Some(i) = internal_mut(&mut m) {
        i.insert("since".into(), json!(now_ms()));
    }
    emu.store.txn(|t| {
        if t.get(MONITORS, &key).is_some() {
            return Err(ApiErr::exists(format!(
                "Monitor already exists for table {table}"
            )));
        }
        t.put(MONITORS, &key, m.clone());
        Ok::<_, ApiErr>(())
    })?;
    ok(view(&emu, &m))
}

async fn get_one(State(emu): Shared, Path(table): Path<String>) -> ApiResult {
    let m = emu
        .store
        .get(MONITORS, &table.to_lowercase())
        .ok_or_else(|| missing(&table))?;
    ok(view(&emu, &m))
}

async fn update(State(emu): Shared, Path(table): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let s = settings(&emu, &b)?;
    let key = table.to_lowercase();
    let m = emu.store.txn(|t| {
        let old = t
            .get(MONITORS, &key)
            .cloned()
            .ok_or_else(|| missing(&table))?;
        if let Some(a) = b.get("assets_dir").filter(|a| **a != old["assets_dir"]) {
            return Err(ApiErr::invalid(format!(
                "assets_dir cannot be changed (is {}, got {a})",
                old["assets_dir"]
            )));
        }
        let mut m = Value::Object(s.clone());
        for f in [
            "table_name",
            "assets_dir",
            "dashboard_id",
            super::http::INTERNAL,
        ] {
            if let Some(v) = old.get(f) {
                m[f] = v.clone();
            }
        }
        let version = old["monitor_version"]
            .as_str()
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1);
        m["monitor_version"] = json!((version + 1).to_string());
        with_metric_tables(&mut m, &key);
        t.put(MONITORS, &key, m.clone());
        Ok::<_, ApiErr>(m)
    })?;
    ok(view(&emu, &m))
}

async fn delete(State(emu): Shared, Path(table): Path<String>) -> ApiResult {
    emu.store.txn(|t| {
        t.delete(MONITORS, &table.to_lowercase())
            .ok_or_else(|| missing(&table))?;
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
