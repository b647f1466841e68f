//! Database catalogs (reference §9), synced database tables (§10) and the pipelines that
//! refresh them (`/api/2.0/pipelines/{id}` and its `updates`, the API a job's
//! `pipeline_task` and `lakebundle run` use to trigger a TRIGGERED/SNAPSHOT refresh).
//!
//! A synced table's source `a.b.c` (three identifiers: letters, digits, `_`, `-`) is read
//! from `<lake>/a/b/c.csv` or `.jsonl`, and only from inside the lake: the file is
//! canonicalized and must stay under the canonical lake directory (no absolute parts, no
//! `..`, no symlink out). The lake is `--lake-dir` or, by default, `<data-dir>/lake`.
//! With `--lake-dir` a missing source fails the create (NOT_FOUND), as the service does
//! for a missing Delta table; with the default lake the create is accepted (the Unity
//! Catalog table is ACTIVE, so deploys go on) and every sync of the table fails until the
//! file exists: `data_synchronization_status.detailed_state` is
//! `SYNCED_TABLE_OFFLINE_FAILED`, with a message naming the source and the paths looked at,
//! and its pipeline updates end FAILED. A table never reports synced data without having
//! read its source.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::backend::{SyncStats, SyncedTableSpec};
use super::http::{
    body, decode_token, encode_token, internal, internal_mut, now_ms, ok, opt_bool, opt_str,
    page_size, qbool, query, req_str, rfc3339, strip_internal, ApiErr, ApiResult, INTERNAL,
};
use super::instances;
use super::server::{Emu, Shared};

pub const CATALOGS: &str = "catalogs";
pub const SYNCED: &str = "synced_tables";
pub(crate) const PIPELINES: &str = "pipelines";
pub(crate) const UPDATES: &str = "pipeline_updates";
const POLICIES: [&str; 3] = ["SNAPSHOT", "TRIGGERED", "CONTINUOUS"];
/// Spec fields accepted on create but never returned (reference §10).
const SPEC_INPUT_ONLY: [&str; 4] = [
    "create_database_objects_if_missing",
    "existing_pipeline_id",
    "new_pipeline_spec",
    "accelerated_sync",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.0/database/catalogs", post(create_catalog))
        .route(
            "/api/2.0/database/catalogs/{name}",
            get(get_catalog)
                .delete(delete_catalog)
                .patch(not_updatable_catalog),
        )
        .route(
            "/api/2.0/database/instances/{name}/catalogs",
            get(list_catalogs),
        )
        .route("/api/2.0/database/synced_tables", post(create_synced))
        .route(
            "/api/2.0/database/synced_tables/{name}",
            get(get_synced)
                .delete(delete_synced)
                .patch(not_updatable_synced),
        )
        .route(
            "/api/2.0/database/instances/{name}/synced_tables",
            get(list_synced),
        )
}

fn catalog_missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!("Database catalog '{name}' does not exist."))
}

fn synced_missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!("Synced database table '{name}' does not exist."))
}

fn validate_identifier(what: &str, s: &str) -> Result<(), ApiErr> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && !s
            .chars()
            .any(|c| c == '.' || c == '/' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ApiErr::invalid(format!(
            "Invalid {what} '{s}': must be non-empty and contain no '.', '/', spaces or control characters"
        )))
    }
}

fn three_part<'a>(what: &str, name: &'a str) -> Result<(&'a str, &'a str, &'a str), ApiErr> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [c, s, t] if !c.is_empty() && !s.is_empty() && !t.is_empty() => Ok((c, s, t)),
        _ => Err(ApiErr::invalid(format!(
            "Invalid {what} '{name}': expected a three-part name catalog.schema.table"
        ))),
    }
}

/// An instance that exists and can run database work now; returns its uid.
fn usable_instance(emu: &Emu, name: &str) -> Result<String, ApiErr> {
    let rec = emu
        .store
        .get(instances::COLLECTION, name)
        .ok_or_else(|| instances::missing(name))?;
    let state = instances::state_of(&rec, now_ms());
    if state != "AVAILABLE" && state != "UPDATING" {
        return Err(ApiErr::invalid_state(format!(
            "Database instance '{name}' is not available (state {state})"
        )));
    }
    Ok(rec["uid"].as_str().unwrap_or_default().to_string())
}

async fn create_catalog(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    validate_identifier("catalog name", &name)?;
    let instance = req_str(&b, "database_instance_name")?.to_string();
    let database = req_str(&b, "database_name")?.to_string();
    if database.len() > 63 {
        return Err(ApiErr::invalid(format!(
            "Invalid database_name '{database}': at most 63 characters"
        )));
    }
    let create_db = opt_bool(&b, "create_database_if_not_exists")?.unwrap_or(false);
    if emu.store.get(CATALOGS, &name).is_some() {
        return Err(ApiErr::exists(format!("Catalog '{name}' already exists.")));
    }
    let uid = usable_instance(&emu, &instance)?;
    if !emu.backend.database_exists(&uid, &database).await? {
        if !create_db {
            return Err(ApiErr::invalid(format!(
                "Database '{database}' does not exist in database instance '{instance}'; \
                 create it first or set create_database_if_not_exists"
            )));
        }
        emu.backend.create_database(&uid, &database).await?;
    }
    let rec = json!({
        "name": name,
        "database_instance_name": instance,
        "database_name": database,
        "uid": uuid::Uuid::new_v4().to_string(),
    });
    emu.store.txn(|t| {
        // One namespace with the Unity Catalog catalogs.
        if t.get(CATALOGS, &name).is_some() || super::unity_catalog::uc_catalog_exists(t, &name) {
            return Err(ApiErr::exists(format!("Catalog '{name}' already exists.")));
        }
        t.put(CATALOGS, &name, rec.clone());
        Ok(())
    })?;
    ok(rec)
}

async fn get_catalog(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    ok(emu
        .store
        .get(CATALOGS, &name)
        .ok_or_else(|| catalog_missing(&name))?)
}

async fn delete_catalog(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    emu.store.txn(|t| {
        t.delete(CATALOGS, &name)
            .map(|_| ())
            .ok_or_else(|| catalog_missing(&name))
    })?;
    ok(json!({}))
}

async fn not_updatable_catalog() -> ApiResult {
    Err(ApiErr::not_implemented(
        "Updating a database catalog is not implemented; delete and recreate it",
    ))
}

async fn not_updatable_synced() -> ApiResult {
    Err(ApiErr::not_implemented(
        "Updating a synced database table is not implemented; delete and recreate it",
    ))
}

/// A page of a collection filtered by instance, under `list_key`.
fn list_by_instance(
    emu: &Emu,
    collection: &str,
    list_key: &str,
    instance: &str,
    field: &str,
    q: Option<String>,
    view: impl Fn(&Value) -> Value,
) -> ApiResult {
    if emu.store.get(instances::COLLECTION, instance).is_none() {
        return Err(instances::missing(instance));
    }
    let q = query(q.as_deref());
    let size = page_size(&q, "page_size", 50, 1000)?;
    let after = decode_token(q.get("page_token"))?;
    let (page, more) = emu.store.page(collection, after.as_deref(), size, |r| {
        r.get(field).and_then(Value::as_str) == Some(instance)
    });
    let mut out = json!({});
    if !page.is_empty() {
        out[list_key] = page.iter().map(|(_, r)| view(r)).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

async fn list_catalogs(
    State(emu): Shared,
    Path(instance): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    list_by_instance(
        &emu,
        CATALOGS,
        "database_catalogs",
        &instance,
        "database_instance_name",
        q,
        Value::clone,
    )
}

async fn list_synced(
    State(emu): Shared,
    Path(instance): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    list_by_instance(
        &emu,
        SYNCED,
        "synced_tables",
        &instance,
        "effective_database_instance_name",
        q,
        |r| strip_internal(r.clone()),
    )
}

/// A source table name: exactly three identifiers that are safe as path components.
fn validate_source_name(name: &str) -> Result<(&str, &str, &str), ApiErr> {
    let field = "spec.source_table_full_name";
    let (c, s, t) = three_part(field, name)?;
    for part in [c, s, t] {
        let ok = part.len() <= 255
            && part
                .chars()
                .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-');
        if !ok {
            return Err(ApiErr::invalid(format!(
                "Invalid {field} '{name}': '{part}' is not an identifier (use letters, digits, '_' and '-')"
            )));
        }
    }
    Ok((c, s, t))
}

/// Why a source could not be read: what it names and where it was looked for.
#[derive(Debug)]
enum SourceProblem {
    Missing {
        source: String,
        looked: Vec<PathBuf>,
    },
    Outside {
        source: String,
        file: PathBuf,
        lake: PathBuf,
    },
    Invalid(String),
}

impl std::fmt::Display for SourceProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceProblem::Missing { source, looked } => write!(
                f,
                "Source table '{source}' not found: no file at {}. Put the table there \
                 (CSV with a header row, or JSON lines) and refresh the pipeline.",
                looked
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            SourceProblem::Outside { source, file, lake } => write!(
                f,
                "Source table '{source}' resolves to {}, outside the lake directory {}; \
                 sources are only read from inside it.",
                file.display(),
                lake.display()
            ),
            SourceProblem::Invalid(m) => f.write_str(m),
        }
    }
}

/// The file of source table `full_name` under `lake`: `<lake>/<c>/<s>/<t>.csv|.jsonl`,
/// canonicalized and checked to stay inside the canonical lake.
fn locate_source(lake: &std::path::Path, full_name: &str) -> Result<PathBuf, SourceProblem> {
    let (c, s, t) =
        validate_source_name(full_name).map_err(|e| SourceProblem::Invalid(e.message))?;
    let looked: Vec<PathBuf> = ["csv", "jsonl"]
        .iter()
        .map(|ext| lake.join(c).join(s).join(format!("{t}.{ext}")))
        .collect();
    let missing = |looked: Vec<PathBuf>| SourceProblem::Missing {
        source: full_name.to_string(),
        looked,
    };
    let Ok(root) = std::fs::canonicalize(lake) else {
        return Err(missing(looked));
    };
    let Some(found) = looked.iter().find(|p| p.is_file()) else {
        return Err(missing(looked));
    };
    let real = std::fs::canonicalize(found).map_err(|_| missing(looked.clone()))?;
    if !real.starts_with(&root) {
        return Err(SourceProblem::Outside {
            source: full_name.to_string(),
            file: real,
            lake: root,
        });
    }
    Ok(real)
}

/// The lake file of source table `full_name` (Lakebase synced tables read the same lake).
pub(crate) fn lake_source(emu: &Emu, full_name: &str) -> Result<PathBuf, String> {
    locate_source(&emu.cfg.lake().0, full_name).map_err(|e| e.to_string())
}

/// The source of a stored synced table, as the next sync would read it.
fn source_of(emu: &Emu, rec: &Value) -> Result<PathBuf, SourceProblem> {
    let name = rec
        .pointer("/spec/source_table_full_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    locate_source(&emu.cfg.lake().0, name)
}

/// Column names of a source file: the CSV header, or the keys of the first JSON line.
fn source_columns(path: &std::path::Path) -> Result<Vec<String>, ApiErr> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ApiErr::internal(format!("cannot read source {}: {e}", path.display())))?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    if path.extension().is_some_and(|e| e == "csv") {
        Ok(first
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_string())
            .collect())
    } else if first.is_empty() {
        Ok(Vec::new())
    } else {
        let v: Value = serde_json::from_str(first).map_err(|e| {
            ApiErr::invalid(format!("source {} is not JSON lines: {e}", path.display()))
        })?;
        Ok(v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }
}

/// What the backend needs about a stored synced table. Its `source` is the file the next
/// sync reads (empty when there is none: callers check [`source_of`] before a sync).
fn backend_spec(rec: &Value, emu: &Emu) -> Option<SyncedTableSpec> {
    let name = rec["name"].as_str()?;
    let (_, schema, table) = three_part("name", name).ok()?;
    let instance = rec["effective_database_instance_name"].as_str()?;
    let uid = emu
        .store
        .get(instances::COLLECTION, instance)?
        .get("uid")?
        .as_str()?
        .to_string();
    Some(SyncedTableSpec {
        instance_uid: uid,
        database: rec["effective_logical_database_name"].as_str()?.to_string(),
        schema: schema.to_string(),
        table: table.to_string(),
        source: source_of(emu, rec).unwrap_or_default(),
        primary_key_columns: rec
            .pointer("/spec/primary_key_columns")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        timeseries_key: rec
            .pointer("/spec/timeseries_key")
            .and_then(Value::as_str)
            .map(str::to_string),
        scheduling_policy: rec
            .pointer("/spec/scheduling_policy")
            .and_then(Value::as_str)
            .unwrap_or("SNAPSHOT")
            .to_string(),
    })
}

fn online_state(policy: &str) -> &'static str {
    if policy == "CONTINUOUS" {
        "SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE"
    } else {
        "SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE"
    }
}

/// How a sync ended.
enum SyncOutcome<'a> {
    Synced(&'a SyncStats),
    /// The source could not be read (missing, outside the lake): nothing was synced.
    NoSource(&'a SourceProblem),
    Failed(&'a super::backend::BackendError),
}

/// Record the outcome of a sync in the table's `data_synchronization_status`.
fn record_sync(emu: &Emu, name: &str, started: i64, outcome: SyncOutcome<'_>) {
    let saved = emu.store.txn(|t| {
        let Some(mut rec) = t.get(SYNCED, name).cloned() else { return Ok::<_, ApiErr>(()) };
        let policy = rec.pointer("/spec/scheduling_policy").and_then(Value::as_str).unwrap_or("SNAPSHOT").to_string();
        let pipeline_id = rec.pointer("/data_synchronization_status/pipeline_id").cloned().unwrap_or(Value::Null);
        let now = now_ms();
        let failed = |message: String| json!({
            "detailed_state": "SYNCED_TABLE_OFFLINE_FAILED",
            "message": message,
            "pipeline_id": pipeline_id,
            "failed_status": {"timestamp": rfc3339(now)},
        });
        let status = match outcome {
            SyncOutcome::Synced(stats) => {
                rec["unity_catalog_provisioning_state"] = json!("ACTIVE");
                let progress = json!({
                    "sync_progress_completion": 1.0,
                    "synced_row_count": stats.rows_upserted,
                    "total_row_count": stats.total_rows,
                });
                let mut s = json!({
                    "detailed_state": online_state(&policy),
                    "message": format!(
                        "Synced {} rows ({} upserted, {} deleted).", stats.total_rows, stats.rows_upserted, stats.rows_deleted),
                    "pipeline_id": pipeline_id,
                    "last_sync": {"sync_start_timestamp": rfc3339(started), "sync_end_timestamp": rfc3339(now)},
                });
                let kind = if policy == "CONTINUOUS" { "continuous_update_status" } else { "triggered_update_status" };
                s[kind] = json!({"timestamp": rfc3339(now), "triggered_update_progress": progress});
                s
            }
            SyncOutcome::NoSource(problem) => {
                // The Unity Catalog table exists (so a deploy that waits for it goes on and
                // can warn); its data is offline: the pipeline failed.
                rec["unity_catalog_provisioning_state"] = json!("ACTIVE");
                failed(problem.to_string())
            }
            SyncOutcome::Failed(e) => {
                rec["unity_catalog_provisioning_state"] = json!("FAILED");
                failed(format!("Sync failed: {e}"))
            }
        };
        rec["data_synchronization_status"] = status;
        if let Some(m) = internal_mut(&mut rec) {
            let ok = matches!(outcome, SyncOutcome::Synced(_));
            if ok {
                m.insert("loaded".into(), json!(true));
            }
            m.insert("source_problem".into(), json!(matches!(outcome, SyncOutcome::NoSource(_))));
        }
        t.put(SYNCED, name, rec);
        Ok(())
    });
    if let Err(e) = saved {
        tracing::error!("cannot record sync of {name}: {}", e.message);
    }
}

/// Whether a sync of the table ever succeeded (its target exists).
fn loaded(rec: &Value) -> bool {
    match internal(rec).get("loaded").and_then(Value::as_bool) {
        Some(l) => l,
        // Records of earlier versions: an ACTIVE table was loaded.
        None => rec["unity_catalog_provisioning_state"] == json!("ACTIVE"),
    }
}

/// Run the initial sync (`initial = true`) or a refresh of one table in the background.
fn spawn_sync(emu: Arc<Emu>, name: String, initial: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = now_ms();
        let Some(rec) = emu.store.get(SYNCED, &name) else {
            return;
        };
        // Checked before every sync: the lake may have changed since the create.
        if let Err(problem) = source_of(&emu, &rec) {
            tracing::warn!("sync of {name}: {problem}");
            record_sync(&emu, &name, started, SyncOutcome::NoSource(&problem));
            return;
        }
        let Some(spec) = backend_spec(&rec, &emu) else {
            let e = super::backend::BackendError::Invalid(format!(
                "the database instance of synced table {name} no longer exists"
            ));
            record_sync(&emu, &name, started, SyncOutcome::Failed(&e));
            return;
        };
        let lock = emu.instance_op_lock(&spec.instance_uid);
        let _turn = lock.lock().await;
        // A table whose source appeared after the create is loaded from scratch.
        let result = if initial || !loaded(&rec) {
            emu.backend.create_synced_table(&spec).await
        } else {
            emu.backend.refresh_synced_table(&spec).await
        };
        match &result {
            Ok(stats) => record_sync(&emu, &name, started, SyncOutcome::Synced(stats)),
            Err(e) => {
                tracing::warn!("sync of {name} failed: {e}");
                record_sync(&emu, &name, started, SyncOutcome::Failed(e));
            }
        }
    })
}

async fn create_synced(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    let (catalog, _schema, _table) = three_part("name", &name)?;
    let spec = match b.get("spec") {
        Some(Value::Object(s)) => s.clone(),
        None | Some(Value::Null) => return Err(ApiErr::missing("spec")),
        Some(_) => return Err(ApiErr::invalid("Field 'spec' must be an object")),
    };
    let source = req_str(&spec, "source_table_full_name")
        .map_err(|_| ApiErr::missing("spec.source_table_full_name"))?;
    validate_source_name(source)?;
    let pks: Vec<String> = match spec.get("primary_key_columns") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiErr::invalid("spec.primary_key_columns must be a list of strings")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(ApiErr::missing("spec.primary_key_columns")),
    };
    let policy = req_str(&spec, "scheduling_policy")
        .map_err(|_| ApiErr::missing("spec.scheduling_policy"))?;
    if !POLICIES.contains(&policy) {
        return Err(ApiErr::invalid(format!(
            "Invalid spec.scheduling_policy '{policy}': must be one of {}",
            POLICIES.join(", ")
        )));
    }
    let existing_pipeline = opt_str(&spec, "existing_pipeline_id")?.map(str::to_string);
    if existing_pipeline.is_some() && spec.get("new_pipeline_spec").is_some_and(|v| !v.is_null()) {
        return Err(ApiErr::invalid(
            "spec.existing_pipeline_id and spec.new_pipeline_spec are mutually exclusive",
        ));
    }
    // Where the table lives: a database catalog fixes instance and database; a standard
    // catalog needs both named in the request.
    let given_instance = opt_str(&b, "database_instance_name")?.map(str::to_string);
    let given_db = opt_str(&b, "logical_database_name")?.map(str::to_string);
    let (instance, database) = match emu.store.get(CATALOGS, catalog) {
        Some(cat) => {
            let ci = cat["database_instance_name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(gi) = given_instance.as_ref().filter(|gi| **gi != ci) {
                return Err(ApiErr::invalid(format!(
                    "database_instance_name '{gi}' does not match the instance '{ci}' of database catalog '{catalog}'"
                )));
            }
            if spec.get("new_pipeline_spec").is_none() && existing_pipeline.is_none() {
                return Err(ApiErr::missing("spec.new_pipeline_spec"));
            }
            (
                ci,
                cat["database_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
        None => (
            given_instance.ok_or_else(|| ApiErr::missing("database_instance_name"))?,
            given_db.ok_or_else(|| ApiErr::missing("logical_database_name"))?,
        ),
    };
    let uid = usable_instance(&emu, &instance)?;
    let (_, strict) = emu.cfg.lake();
    match locate_source(&emu.cfg.lake().0, source) {
        Ok(p) => {
            let cols = source_columns(&p)?;
            for pk in &pks {
                if !cols.iter().any(|c| c == pk) {
                    return Err(ApiErr::invalid(format!(
                        "Primary key column '{pk}' does not exist in source table '{source}' (columns: {})",
                        cols.join(", ")
                    )));
                }
            }
        }
        Err(SourceProblem::Missing { .. }) if strict => {
            return Err(ApiErr::not_found(format!(
                "Table '{source}' does not exist."
            )));
        }
        // Accepted; the table's status reports it (see the module doc).
        Err(SourceProblem::Missing { .. }) => {}
        Err(e @ SourceProblem::Outside { .. }) => return Err(ApiErr::invalid(e.to_string())),
        Err(SourceProblem::Invalid(m)) => return Err(ApiErr::invalid(m)),
    }
    let create_objects = opt_bool(&spec, "create_database_objects_if_missing")?.unwrap_or(false);
    if !emu.backend.database_exists(&uid, &database).await? {
        if !create_objects {
            return Err(ApiErr::invalid(format!(
                "Database '{database}' does not exist in instance '{instance}'; set spec.create_database_objects_if_missing"
            )));
        }
        emu.backend.create_database(&uid, &database).await?;
    }
    let mut public_spec: Map<String, Value> = spec.clone();
    for f in SPEC_INPUT_ONLY {
        public_spec.remove(f);
    }
    let rec = emu.store.txn(|t| {
        if t.get(SYNCED, &name).is_some() {
            return Err(ApiErr::exists(format!("Table '{name}' already exists.")));
        }
        let pipeline_id = match &existing_pipeline {
            Some(pid) => {
                let p = t.get(PIPELINES, pid).cloned().ok_or_else(|| ApiErr::not_found(format!("Pipeline '{pid}' does not exist.")))?;
                if p["scheduling_policy"].as_str() != Some(policy) {
                    return Err(ApiErr::invalid(format!(
                        "Pipeline '{pid}' runs {} tables; it cannot take a {policy} table",
                        p["scheduling_policy"].as_str().unwrap_or("?")
                    )));
                }
                pid.clone()
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let mut pipeline = t.get(PIPELINES, &pipeline_id).cloned().unwrap_or_else(|| {
            json!({"pipeline_id": pipeline_id, "scheduling_policy": policy, "tables": [], "created": now_ms()})
        });
        if let Some(tables) = pipeline["tables"].as_array_mut() {
            tables.push(json!(name));
        }
        t.put(PIPELINES, &pipeline_id, pipeline);
        let mut rec = json!({
            "name": name,
            "spec": public_spec,
            "effective_database_instance_name": instance,
            "effective_logical_database_name": database,
            "unity_catalog_provisioning_state": "PROVISIONING",
            "data_synchronization_status": {
                "detailed_state": "SYNCED_TABLE_PROVISIONING_INITIAL_SNAPSHOT",
                "message": "Provisioning the synced table and running the initial snapshot.",
                "pipeline_id": pipeline_id,
                "provisioning_status": {"initial_pipeline_sync_progress": {"sync_progress_completion": 0.0}},
            },
        });
        rec[INTERNAL] = json!({});
        t.put(SYNCED, &name, rec.clone());
        Ok(rec)
    })?;
    spawn_sync(emu.clone(), name, true);
    let mut out = strip_internal(rec);
    if let Some(m) = out.as_object_mut() {
        for f in ["database_instance_name", "logical_database_name"] {
            if let Some(v) = b.get(f) {
                m.insert(f.into(), v.clone());
            }
        }
    }
    ok(out)
}

async fn get_synced(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let rec = emu
        .store
        .get(SYNCED, &name)
        .ok_or_else(|| synced_missing(&name))?;
    let mut out = strip_internal(rec.clone());
    // CONTINUOUS tables sync in the backend's own time: its latest outcome is the truth.
    let provisioned = rec["unity_catalog_provisioning_state"] != json!("PROVISIONING");
    // A source problem is the latest word: the backend's last (good) sync is older.
    let source_problem = internal(&rec)
        .get("source_problem")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let (true, false, Some(spec)) = (provisioned, source_problem, backend_spec(&rec, &emu)) {
        if let Some(st) = emu.backend.synced_table_status(&spec).await? {
            let status = &mut out["data_synchronization_status"];
            let kind = if spec.scheduling_policy == "CONTINUOUS" {
                "continuous_update_status"
            } else {
                "triggered_update_status"
            };
            status[kind]["triggered_update_progress"] = json!({
                "sync_progress_completion": 1.0,
                "synced_row_count": st.stats.rows_upserted,
                "total_row_count": st.stats.total_rows,
            });
            if let Some(t) = &st.last_sync_time {
                status["last_sync"]["sync_end_timestamp"] = json!(t);
                status[kind]["timestamp"] = json!(t);
            }
            match &st.error {
                Some(e) => {
                    status["detailed_state"] = json!("SYNCED_TABLE_ONLINE_PIPELINE_FAILED");
                    status["message"] = json!(format!("Latest sync failed: {e}"));
                }
                None => {
                    status["message"] = json!(format!("Synced {} rows.", st.stats.total_rows));
                }
            }
        }
    }
    ok(out)
}

/// On start, after instances are adopted: let the backend resume following the
/// CONTINUOUS tables it already loaded.
pub async fn resume_continuous(emu: &Emu) {
    let specs: Vec<SyncedTableSpec> = emu
        .store
        .all(SYNCED)
        .iter()
        .filter(|(_, r)| r["unity_catalog_provisioning_state"] == json!("ACTIVE"))
        .filter(|(_, r)| source_of(emu, r).is_ok())
        .filter_map(|(_, r)| backend_spec(r, emu))
        .filter(|s| s.scheduling_policy == "CONTINUOUS")
        .collect();
    if specs.is_empty() {
        return;
    }
    if let Err(e) = emu.backend.resume_synced_tables(&specs).await {
        tracing::warn!("cannot resume continuous synced tables: {e}");
    }
}

async fn delete_synced(
    State(emu): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query(q.as_deref());
    let purge = qbool(&q, "purge_data")?.unwrap_or(false);
    let rec = emu
        .store
        .get(SYNCED, &name)
        .ok_or_else(|| synced_missing(&name))?;
    let spec = backend_spec(&rec, &emu);
    emu.store.txn(|t| {
        t.delete(SYNCED, &name)
            .ok_or_else(|| synced_missing(&name))?;
        if let Some(pid) = rec
            .pointer("/data_synchronization_status/pipeline_id")
            .and_then(Value::as_str)
        {
            if let Some(mut p) = t.get(PIPELINES, pid).cloned() {
                if let Some(tables) = p["tables"].as_array_mut() {
                    tables.retain(|x| x.as_str() != Some(name.as_str()));
                    if tables.is_empty() {
                        t.delete(PIPELINES, pid);
                    } else {
                        t.put(PIPELINES, pid, p);
                    }
                }
            }
        }
        Ok::<_, ApiErr>(())
    })?;
    if let Some(spec) = spec {
        let lock = emu.instance_op_lock(&spec.instance_uid);
        let _turn = lock.lock().await;
        emu.backend.delete_synced_table(&spec, purge).await?;
    }
    ok(json!({}))
}

/// Start an update of pipeline `pid`: refresh every table it syncs. Returns the update id.
pub fn start_pipeline_update(
    emu: &Arc<Emu>,
    pid: &str,
    full_refresh: bool,
) -> Result<String, ApiErr> {
    let update_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let tables = emu.store.txn(|t| {
        let p = t.get(PIPELINES, pid).cloned().ok_or_else(|| ApiErr::not_found(format!("Pipeline '{pid}' does not exist.")))?;
        let tables: Vec<String> = p["tables"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        for name in &tables {
            if let Some(mut rec) = t.get(SYNCED, name).cloned() {
                rec["data_synchronization_status"]["detailed_state"] = json!("SYNCED_TABLE_ONLINE_TRIGGERED_UPDATE");
                t.put(SYNCED, name, rec);
            }
        }
        let mut u = json!({"update_id": update_id, "pipeline_id": pid, "state": "RUNNING",
                           "full_refresh": full_refresh, "creation_time": now, "cause": "API_CALL"});
        if let Some(m) = internal_mut(&mut u) {
            m.insert("tables".into(), json!(tables));
        }
        t.put(UPDATES, &update_id, u);
        Ok::<_, ApiErr>(tables)
    })?;
    let emu = emu.clone();
    let uid = update_id.clone();
    tokio::spawn(async move {
        let mut failed = None;
        for name in tables {
            let _ = spawn_sync(emu.clone(), name.clone(), false).await;
            let state = emu.store.get(SYNCED, &name).and_then(|r| {
                r.pointer("/data_synchronization_status/detailed_state")
                    .cloned()
            });
            if state == Some(json!("SYNCED_TABLE_OFFLINE_FAILED")) {
                failed = Some(name);
            }
        }
        let _ = emu.store.txn(|t| {
            if let Some(mut u) = t.get(UPDATES, &uid).cloned() {
                u["state"] = json!(if failed.is_some() {
                    "FAILED"
                } else {
                    "COMPLETED"
                });
                if let Some(m) = internal_mut(&mut u) {
                    m.insert("end_time".into(), json!(now_ms()));
                }
                t.put(UPDATES, &uid, u);
            }
            Ok::<_, ApiErr>(())
        });
    });
    Ok(update_id)
}

/// A pipeline update's state, and when it ended (0 while it runs). A job
/// run whose pipeline task started the update finishes with it.
pub fn pipeline_update_progress(emu: &Emu, update_id: &str) -> Option<(String, i64)> {
    let u = emu.store.get(UPDATES, update_id)?;
    let state = u.get("state").and_then(Value::as_str)?.to_string();
    let end = internal(&u)
        .get("end_time")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some((state, end))
}

fn update_view(u: &Value) -> Value {
    strip_internal(u.clone())
}

fn pipeline_name(id: &str) -> String {
    format!("synced-table-pipeline-{id}")
}

/// `GET /api/2.0/pipelines/{id}` of a synced table's pipeline (routed by `pipelines`).
pub(crate) async fn get_pipeline(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    let p = emu
        .store
        .get(PIPELINES, &id)
        .ok_or_else(|| ApiErr::not_found(format!("Pipeline '{id}' does not exist.")))?;
    let updates: Vec<Value> = emu
        .store
        .all(UPDATES)
        .into_iter()
        .filter(|(_, u)| u["pipeline_id"].as_str() == Some(id.as_str()))
        .map(|(_, u)| update_view(&u))
        .collect();
    let running = updates.iter().any(|u| u["state"] == json!("RUNNING"));
    ok(json!({
        "pipeline_id": id,
        "name": pipeline_name(&id),
        "state": if running { "RUNNING" } else { "IDLE" },
        "spec": {"id": id, "tables": p["tables"], "continuous": p["scheduling_policy"] == json!("CONTINUOUS")},
        "latest_updates": updates,
    }))
}
