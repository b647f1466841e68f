//! Jobs API 2.2 (reference §11): job CRUD, run-now and runs.
//!
//! Ids are int64 about 10^15 like the service's, below 2^53 so JavaScript clients read them
//! exactly; `--large-ids` puts them above 2^53, so a client that routes them through an f64
//! corrupts them visibly (see `store::IdKind`). Jobs are keyed by `i64::MAX - id` (zero-padded), so key order is
//! newest first, the order `jobs/list` returns. A run's life cycle is computed from its
//! creation time: PENDING for one `--transition-ms`, RUNNING for two more, then
//! TERMINATED/SUCCESS (or CANCELED when cancelled before that).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    as_i64, body, decode_token, encode_token, internal, now_ms, ok, ok_json_bytes, page_size,
    qbool, query, ApiErr, ApiResult, INTERNAL,
};
use super::server::{Caller, Emu, Shared};
use super::store::IdKind;

pub const JOBS: &str = "jobs";
pub const RUNS: &str = "runs";
/// Array elements per `jobs/get` page (reference §11.1).
const ARRAY_PAGE: usize = 100;
const PAGED_ARRAYS: [&str; 4] = ["tasks", "job_clusters", "environments", "parameters"];
const GIT_PROVIDERS: [&str; 8] = [
    "github",
    "githubenterprise",
    "bitbucketcloud",
    "bitbucketserver",
    "azuredevopsservices",
    "gitlab",
    "gitlabenterpriseedition",
    "awscodecommit",
];

pub fn key(id: i64) -> String {
    format!("{:020}", i64::MAX - id)
}

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/create", post(create))
        .route("/get", get(get_job))
        .route("/list", get(list))
        .route("/reset", post(reset))
        .route("/update", post(update))
        .route("/delete", post(delete))
        .route("/run-now", post(run_now))
        .route("/runs/submit", post(submit))
        .route("/runs/get", get(get_run))
        .route("/runs/get-output", get(get_run_output))
        .route("/runs/list", get(list_runs))
        .route("/runs/cancel", post(cancel_run))
        .route("/runs/cancel-all", post(cancel_all))
        .route("/runs/delete", post(delete_run))
}

fn job_missing(id: impl std::fmt::Display) -> ApiErr {
    ApiErr::not_found(format!("Job {id} does not exist."))
}

fn run_missing(id: impl std::fmt::Display) -> ApiErr {
    ApiErr::not_found(format!("Run {id} does not exist."))
}

fn id_field(m: &Map<String, Value>, field: &str) -> Result<i64, ApiErr> {
    match m.get(field) {
        None | Some(Value::Null) => Err(ApiErr::missing(field)),
        Some(v) => as_i64(v)
            .ok_or_else(|| ApiErr::invalid(format!("Field '{field}' must be an int64, got {v}"))),
    }
}

fn id_query(q: &std::collections::HashMap<String, String>, field: &str) -> Result<i64, ApiErr> {
    let v = q.get(field).ok_or_else(|| ApiErr::missing(field))?;
    v.parse().map_err(|_| {
        ApiErr::invalid(format!(
            "Query parameter '{field}' must be an int64, got '{v}'"
        ))
    })
}

fn validate_task(task: &Value, keys: &mut HashSet<String>) -> Result<(), ApiErr> {
    let Some(t) = task.as_object() else {
        return Err(ApiErr::invalid(format!(
            "Each task must be an object, got {task}"
        )));
    };
    let key = match t.get("task_key").and_then(Value::as_str) {
        Some(k) if !k.is_empty() => k,
        _ => return Err(ApiErr::invalid("Missing required field: tasks.task_key")),
    };
    if key.len() > 100
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiErr::invalid(format!(
            "Invalid task_key '{key}': use up to 100 letters, digits, '-' and '_'"
        )));
    }
    if !keys.insert(key.to_string()) {
        return Err(ApiErr::invalid(format!(
            "Duplicate task_key '{key}': task keys must be unique within a job"
        )));
    }
    let kinds = t.keys().filter(|k| k.ends_with("_task")).count();
    if kinds > 1 {
        return Err(ApiErr::invalid(format!(
            "Task '{key}' must define exactly one task type, found {kinds}"
        )));
    }
    Ok(())
}

/// Validate settings and add the defaults the real service shows on GET.
fn normalize(settings: &mut Map<String, Value>) -> Result<(), ApiErr> {
    if let Some(name) = settings.get("name").and_then(Value::as_str) {
        if name.len() > 4096 {
            return Err(ApiErr::invalid(
                "Invalid name: a job name can have at most 4096 bytes",
            ));
        }
    }
    if let Some(tags) = settings.get("tags") {
        match tags.as_object() {
            Some(t) if t.len() > 25 => {
                return Err(ApiErr::invalid(
                    "Invalid tags: a job can have at most 25 tags",
                ))
            }
            Some(_) => {}
            None => {
                return Err(ApiErr::invalid(
                    "Invalid tags: must be a map of string to string",
                ))
            }
        }
    }
    if let Some(git) = settings.get("git_source") {
        let provider = git
            .get("git_provider")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !GIT_PROVIDERS.contains(&provider.to_ascii_lowercase().as_str()) {
            return Err(ApiErr::invalid(format!(
                "Invalid git_source.git_provider '{provider}'"
            )));
        }
    }
    if let Some(s) = settings.get("schedule") {
        for f in ["quartz_cron_expression", "timezone_id"] {
            if s.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(ApiErr::missing(&format!("schedule.{f}")));
            }
        }
    }
    let has_git = settings.contains_key("git_source");
    let mut keys = HashSet::new();
    if let Some(tasks) = settings.get_mut("tasks") {
        let Some(tasks) = tasks.as_array_mut() else {
            return Err(ApiErr::invalid("Invalid tasks: must be a list"));
        };
        if tasks.len() > 1000 {
            return Err(ApiErr::invalid(
                "Invalid tasks: a job can have at most 1000 tasks",
            ));
        }
        for t in tasks.iter() {
            validate_task(t, &mut keys)?;
        }
        for t in tasks.iter_mut() {
            let Some(t) = t.as_object_mut() else { continue };
            for dep in t
                .get("depends_on")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let d = dep
                    .get("task_key")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !keys.contains(d) {
                    let me = t
                        .get("task_key")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    return Err(ApiErr::invalid(format!(
                        "Task '{me}' depends on task '{d}', which is not defined in this job"
                    )));
                }
            }
            t.entry("run_if").or_insert(json!("ALL_SUCCESS"));
            t.entry("timeout_seconds").or_insert(json!(0));
            t.entry("email_notifications").or_insert(json!({}));
            for kind in ["notebook_task", "spark_python_task", "dbt_task"] {
                if let Some(k) = t.get_mut(kind).and_then(Value::as_object_mut) {
                    k.entry("source")
                        .or_insert(json!(if has_git { "GIT" } else { "WORKSPACE" }));
                }
            }
        }
    }
    settings.entry("name").or_insert(json!("Untitled"));
    settings.entry("email_notifications").or_insert(json!({}));
    settings.entry("webhook_notifications").or_insert(json!({}));
    settings.entry("timeout_seconds").or_insert(json!(0));
    settings.entry("max_concurrent_runs").or_insert(json!(1));
    settings.insert("format".into(), json!("MULTI_TASK"));
    Ok(())
}

fn settings_of(b: &Map<String, Value>, field: &str) -> Result<Map<String, Value>, ApiErr> {
    match b.get(field) {
        None | Some(Value::Null) => Err(ApiErr::missing(field)),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ApiErr::invalid(format!(
            "Field '{field}' must be an object"
        ))),
    }
}

/// The identity `settings.run_as` names (the job runs as it: `run_as_user_name`).
fn run_as_identity(settings: &Map<String, Value>) -> Option<&str> {
    settings
        .get("run_as")
        .and_then(|r| {
            r.get("user_name")
                .or_else(|| r.get("service_principal_name"))
        })
        .and_then(Value::as_str)
}

async fn create(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let mut settings = body(&raw)?;
    settings.remove("access_control_list");
    normalize(&mut settings)?;
    let now = now_ms();
    let id = emu.store.txn(|t| {
        let id = t.next_int64_id(IdKind::Job);
        let run_as = run_as_identity(&settings)
            .unwrap_or(&caller.user_name)
            .to_string();
        t.put(
            JOBS,
            &key(id),
            json!({
                "job_id": id,
                "creator_user_name": caller.user_name,
                "run_as_user_name": run_as,
                "created_time": now,
                "settings": settings,
            }),
        );
        super::permissions::grant_owner(t, "jobs", &id.to_string(), &caller.user_name);
        Ok::<_, ApiErr>(id)
    })?;
    ok(json!({"job_id": id}))
}

/// True when no settings array of `job` needs a second page.
fn fits_one_page(job: &Value) -> bool {
    let Some(s) = job.get("settings") else {
        return true;
    };
    PAGED_ARRAYS.iter().all(|f| {
        s.get(f)
            .and_then(Value::as_array)
            .is_none_or(|a| a.len() <= ARRAY_PAGE)
    })
}

/// The `n`th page of a job's arrays (reference §11.1 array pagination,
/// `ARRAY_PAGE` each). Takes the job by value: the page is cut out of it in
/// place.
fn job_page(mut out: Value, page: usize) -> Value {
    let mut more = false;
    if let Some(s) = out.get_mut("settings").and_then(Value::as_object_mut) {
        for f in PAGED_ARRAYS {
            let Some(Value::Array(arr)) = s.get_mut(f) else {
                continue;
            };
            let start = (page * ARRAY_PAGE).min(arr.len());
            let end = (start + ARRAY_PAGE).min(arr.len());
            more |= end < arr.len();
            arr.truncate(end);
            arr.drain(..start);
            if arr.is_empty() && page > 0 {
                s.remove(f);
            }
        }
    }
    if more {
        out["next_page_token"] = json!(encode_token(&(page + 1).to_string()));
    }
    out
}

async fn get_job(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let id = id_query(&q, "job_id")?;
    let page = match decode_token(q.get("page_token"))? {
        None => 0,
        Some(p) => p
            .parse()
            .map_err(|_| ApiErr::invalid("Invalid page_token"))?,
    };
    // Serialised where it is stored: the first page of a job whose arrays
    // fit in one page (most reads) is the job as it is, without a copy.
    let body = emu
        .store
        .read(JOBS, &key(id), |job| {
            if page == 0 && fits_one_page(job) {
                serde_json::to_vec(job)
            } else {
                serde_json::to_vec(&job_page(job.clone(), page))
            }
        })
        .ok_or_else(|| job_missing(id))?;
    ok_json_bytes(body.map_err(|e| ApiErr::internal(e.to_string()))?)
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let limit = page_size(&q, "limit", 20, 100)?;
    let expand = qbool(&q, "expand_tasks")?.unwrap_or(false);
    let name = q.get("name").map(|n| n.to_lowercase());
    let mut after = decode_token(q.get("page_token"))?;
    if let Some(offset) = q.get("offset").filter(|_| after.is_none()) {
        let offset: usize = offset
            .parse()
            .map_err(|_| ApiErr::invalid("offset must be a non-negative integer"))?;
        if offset > 0 {
            let (skipped, _) = emu.store.page(JOBS, None, offset, |_| true);
            after = skipped.last().map(|(k, _)| k.clone());
        }
    }
    let matches = |j: &Value| match &name {
        None => true,
        Some(n) => {
            j.pointer("/settings/name")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
                .as_deref()
                == Some(n)
        }
    };
    let (page, more) = emu.store.page(JOBS, after.as_deref(), limit, matches);
    let mut out = json!({"has_more": more});
    if !page.is_empty() {
        let jobs: Vec<Value> = page
            .iter()
            .map(|(_, j)| {
                if expand {
                    let mut p = job_page(j.clone(), 0);
                    let truncated = p
                        .as_object_mut()
                        .and_then(|m| m.remove("next_page_token"))
                        .is_some();
                    p["has_more"] = json!(truncated);
                    p
                } else {
                    let mut j = j.clone();
                    if let Some(s) = j.get_mut("settings").and_then(Value::as_object_mut) {
                        for f in PAGED_ARRAYS {
                            s.remove(f);
                        }
                    }
                    j
                }
            })
            .collect();
        out["jobs"] = Value::Array(jobs);
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

async fn reset(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_field(&b, "job_id")?;
    let mut settings = settings_of(&b, "new_settings")?;
    normalize(&mut settings)?;
    emu.store.txn(|t| {
        let mut job = t
            .get(JOBS, &key(id))
            .cloned()
            .ok_or_else(|| job_missing(id))?;
        // Cloud quirk kept on purpose (reference §11.1): omitting run_as keeps the old one.
        if !settings.contains_key("run_as") {
            if let Some(r) = job.pointer("/settings/run_as").cloned() {
                settings.insert("run_as".into(), r);
            }
        }
        if let Some(who) = run_as_identity(&settings) {
            job["run_as_user_name"] = json!(who);
        }
        job["settings"] = Value::Object(settings);
        t.put(JOBS, &key(id), job);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

/// Merge `new` array entries into `old` by `key_field`: same key replaces, new keys append.
fn merge_by_key(old: &mut Vec<Value>, new: Vec<Value>, key_field: &str) {
    for n in new {
        let k = n.get(key_field).cloned();
        match old
            .iter_mut()
            .find(|o| o.get(key_field) == k.as_ref() && k.is_some())
        {
            Some(slot) => *slot = n,
            None => old.push(n),
        }
    }
}

async fn update(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_field(&b, "job_id")?;
    let new = match b.get("new_settings") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiErr::invalid("Field 'new_settings' must be an object")),
    };
    let remove: Vec<String> = match b.get("fields_to_remove") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => {
            return Err(ApiErr::invalid(
                "Field 'fields_to_remove' must be a list of strings",
            ))
        }
    };
    emu.store.txn(|t| {
        let mut job = t
            .get(JOBS, &key(id))
            .cloned()
            .ok_or_else(|| job_missing(id))?;
        let mut settings = job["settings"].as_object().cloned().unwrap_or_default();
        for (k, v) in new {
            let merge_key = match k.as_str() {
                "tasks" => Some("task_key"),
                "job_clusters" => Some("job_cluster_key"),
                _ => None,
            };
            match (merge_key, v) {
                (Some(mk), Value::Array(items)) => {
                    let mut old = settings
                        .get(&k)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    merge_by_key(&mut old, items, mk);
                    settings.insert(k, Value::Array(old));
                }
                (_, v) => {
                    settings.insert(k, v);
                }
            }
        }
        for f in &remove {
            match f.split_once('/') {
                Some((arr @ ("tasks" | "job_clusters"), item)) => {
                    let kf = if arr == "tasks" {
                        "task_key"
                    } else {
                        "job_cluster_key"
                    };
                    if let Some(a) = settings.get_mut(arr).and_then(Value::as_array_mut) {
                        a.retain(|e| e.get(kf).and_then(Value::as_str) != Some(item));
                    }
                }
                Some(_) => {
                    return Err(ApiErr::invalid(format!(
                        "Invalid fields_to_remove entry '{f}'"
                    )))
                }
                None => {
                    settings.remove(f);
                }
            }
        }
        normalize(&mut settings)?;
        if let Some(who) = run_as_identity(&settings) {
            job["run_as_user_name"] = json!(who);
        }
        job["settings"] = Value::Object(settings);
        t.put(JOBS, &key(id), job);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn delete(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_field(&b, "job_id")?;
    emu.store.txn(|t| {
        t.delete(JOBS, &key(id)).ok_or_else(|| job_missing(id))?;
        super::permissions::forget(t, "jobs", &id.to_string());
        let runs: Vec<String> = t
            .values(RUNS)
            .filter(|(_, r)| r["job_id"] == json!(id))
            .map(|(k, _)| k.clone())
            .collect();
        for r in runs {
            t.delete(RUNS, &r);
        }
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

/// Create a run record (run-now or submit). Returns `(run_id, number_in_job, created)`.
fn new_run(
    emu: &Emu,
    caller: &Caller,
    job: Option<&Value>,
    b: &Map<String, Value>,
) -> Result<(i64, i64, bool), ApiErr> {
    let token = b
        .get("idempotency_token")
        .and_then(Value::as_str)
        .map(str::to_string);
    let now = now_ms();
    emu.store.txn(|t| {
        if let Some(tok) = &token {
            if let Some((_, r)) = t.values(RUNS).find(|(_, r)| internal(r).get("idempotency_token").and_then(Value::as_str) == Some(tok)) {
                return Ok((r["run_id"].as_i64().unwrap_or(0), r["number_in_job"].as_i64().unwrap_or(0), false));
            }
        }
        let run_id = t.next_int64_id(IdKind::Run);
        let (job_id, settings) = match job {
            Some(j) => (j["job_id"].clone(), j["settings"].clone()),
            None => (Value::Null, Value::Object(b.clone())),
        };
        let number = match job_id.as_i64() {
            Some(jid) => t.next_id(&format!("run_number/{jid}"), 1),
            None => run_id,
        };
        let mut params: Vec<Value> = Vec::new();
        let given = b.get("job_parameters").and_then(Value::as_object);
        for p in settings.get("parameters").and_then(Value::as_array).into_iter().flatten() {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let default = p.get("default").cloned().unwrap_or(json!(""));
            let value = given.and_then(|g| g.get(name)).cloned().unwrap_or_else(|| default.clone());
            params.push(json!({"name": name, "default": default, "value": value}));
        }
        let only: Option<Vec<String>> = b
            .get("only")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
        let tasks: Vec<Value> = settings
            .get("tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|task| {
                let k = task.get("task_key").and_then(Value::as_str).unwrap_or_default();
                only.as_ref().is_none_or(|o| o.iter().any(|x| x == k))
            })
            .cloned()
            .collect();
        let mut run = json!({
            "run_id": run_id,
            "number_in_job": number,
            "creator_user_name": caller.user_name,
            "run_name": settings.get("run_name").or(settings.get("name")).cloned().unwrap_or(json!("Untitled")),
            "run_type": if job.is_some() { "JOB_RUN" } else { "SUBMIT_RUN" },
            "trigger": "ONE_TIME",
            "start_time": now,
            "tasks": tasks,
            "run_page_url": format!("{}/#job/{}/run/{run_id}", emu.url, job_id.as_i64().unwrap_or(0)),
        });
        if !job_id.is_null() {
            run["job_id"] = job_id;
            run["original_attempt_run_id"] = json!(run_id);
        }
        if !params.is_empty() {
            run["job_parameters"] = Value::Array(params);
        }
        run[INTERNAL] = json!({"idempotency_token": token});
        t.put(RUNS, &key(run_id), run);
        Ok::<_, ApiErr>((run_id, number, true))
    })
}

async fn run_now(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let id = id_field(&b, "job_id")?;
    let job = emu
        .store
        .get(JOBS, &key(id))
        .ok_or_else(|| job_missing(id))?;
    let (run_id, number, created) = new_run(&emu, &caller, Some(&job), &b)?;
    if created {
        let mut updates: Vec<String> = Vec::new();
        // A pipeline task starts an update of its pipeline (a synced table's refreshes the table).
        for task in job
            .pointer("/settings/tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(pid) = task
                .pointer("/pipeline_task/pipeline_id")
                .and_then(Value::as_str)
            {
                let full = task
                    .pointer("/pipeline_task/full_refresh")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let mut req = Map::new();
                req.insert("full_refresh".into(), json!(full));
                req.insert("cause".into(), json!("JOB_TASK"));
                if let Ok(update) = super::pipelines::start(&emu, pid, &req) {
                    updates.push(update);
                }
            }
        }
        if !updates.is_empty() {
            // The run lasts as long as the refreshes its pipeline tasks started.
            let _ = emu.store.txn(|t| {
                if let Some(mut run) = t.get(RUNS, &key(run_id)).cloned() {
                    run[INTERNAL]["pipeline_updates"] = json!(updates);
                    t.put(RUNS, &key(run_id), run);
                }
                Ok::<_, ApiErr>(())
            });
        }
    }
    ok(json!({"run_id": run_id, "number_in_job": number}))
}

async fn submit(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let mut probe = b.clone();
    normalize(&mut probe)?;
    let (run_id, _, _) = new_run(&emu, &caller, None, &b)?;
    ok(json!({"run_id": run_id}))
}

/// Life-cycle of a run at `now`, from its start time and cancellation.
fn run_state(emu: &Emu, run: &Value, now: i64) -> (&'static str, Option<&'static str>, i64) {
    let start = run["start_time"].as_i64().unwrap_or(now);
    let step = emu.cfg.transition_ms as i64;
    let end = start + 3 * step;
    if let Some(c) = run.get("cancelled_at").and_then(Value::as_i64) {
        if c < end {
            return ("TERMINATED", Some("CANCELED"), c);
        }
    }
    if now < start + step {
        return ("PENDING", None, 0);
    }
    // Pipeline refreshes started by the run's pipeline tasks: the run ends
    // when the last one does, and fails with any of them.
    let mut end = end;
    let mut failed = false;
    for id in run
        .pointer(&format!("/{INTERNAL}/pipeline_updates"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        match super::pipelines::update_progress(emu, id) {
            Some((state, _)) if state == "RUNNING" => return ("RUNNING", None, 0),
            Some((state, ended)) => {
                failed |= state != "COMPLETED";
                end = end.max(ended);
            }
            None => {}
        }
    }
    if now < end {
        ("RUNNING", None, 0)
    } else if failed {
        ("TERMINATED", Some("FAILED"), end)
    } else {
        ("TERMINATED", Some("SUCCESS"), end)
    }
}

fn run_view(emu: &Emu, run: &Value, now: i64) -> Value {
    let mut out = super::http::strip_internal(run.clone());
    let (life, result, end) = run_state(emu, run, now);
    let start = run["start_time"].as_i64().unwrap_or(now);
    let message = match (life, result) {
        (_, Some("CANCELED")) => "Run cancelled.",
        (_, Some("FAILED")) => "A pipeline refresh started by this run failed.",
        ("TERMINATED", _) => "",
        ("PENDING", _) => "Waiting for compute resources.",
        _ => "In run",
    };
    let mut state = json!({"life_cycle_state": life, "state_message": message,
                           "user_cancelled_or_timedout": result == Some("CANCELED")});
    let mut status = json!({"state": life});
    if let Some(r) = result {
        state["result_state"] = json!(r);
        let (code, kind) = match r {
            "SUCCESS" => ("SUCCESS", "SUCCESS"),
            "CANCELED" => ("USER_CANCELED", "SUCCESS"),
            _ => ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
        };
        status["termination_details"] = json!({"code": code, "type": kind, "message": message});
    }
    out.as_object_mut().map(|m| m.remove("cancelled_at"));
    out["state"] = state.clone();
    out["status"] = status;
    out["end_time"] = json!(end);
    let step = emu.cfg.transition_ms as i64;
    let (setup, exec) = if end > 0 {
        (step, (end - start - step).max(0))
    } else {
        (0, 0)
    };
    out["setup_duration"] = json!(setup);
    out["execution_duration"] = json!(exec);
    out["cleanup_duration"] = json!(0);
    out["run_duration"] = json!(if end > 0 { end - start } else { 0 });
    let run_id = run["run_id"].as_i64().unwrap_or(0);
    if let Some(tasks) = out.get_mut("tasks").and_then(Value::as_array_mut) {
        for (i, t) in tasks.iter_mut().enumerate() {
            t["run_id"] = json!(run_id.saturating_add(1_000_000 + i as i64));
            t["state"] = state.clone();
            t["start_time"] = json!(start);
            t["end_time"] = json!(end);
            t["attempt_number"] = json!(0);
        }
    }
    out
}

async fn get_run(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let id = id_query(&q, "run_id")?;
    let run = emu
        .store
        .get(RUNS, &key(id))
        .ok_or_else(|| run_missing(id))?;
    ok(run_view(&emu, &run, now_ms()))
}

async fn get_run_output(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let id = id_query(&q, "run_id")?;
    let run = emu
        .store
        .get(RUNS, &key(id))
        .ok_or_else(|| run_missing(id))?;
    ok(json!({"metadata": run_view(&emu, &run, now_ms())}))
}

async fn list_runs(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let limit = page_size(&q, "limit", 25, 25)?;
    let job_id = match q.get("job_id") {
        Some(_) => Some(id_query(&q, "job_id")?),
        None => None,
    };
    let active_only = qbool(&q, "active_only")?.unwrap_or(false);
    let completed_only = qbool(&q, "completed_only")?.unwrap_or(false);
    if active_only && completed_only {
        return Err(ApiErr::invalid(
            "active_only and completed_only cannot both be true",
        ));
    }
    let after = decode_token(q.get("page_token"))?;
    let now = now_ms();
    let filter = |r: &Value| {
        if job_id.is_some_and(|j| r["job_id"].as_i64() != Some(j)) {
            return false;
        }
        let done = run_state(&emu, r, now).0 == "TERMINATED";
        !(active_only && done || completed_only && !done)
    };
    let (page, more) = emu.store.page(RUNS, after.as_deref(), limit, filter);
    let mut out = json!({"has_more": more});
    if !page.is_empty() {
        out["runs"] = page.iter().map(|(_, r)| run_view(&emu, r, now)).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

fn cancel(t: &mut super::store::Txn<'_>, k: &str, now: i64) {
    if let Some(mut r) = t.get(RUNS, k).cloned() {
        if r.get("cancelled_at").is_none() {
            r["cancelled_at"] = json!(now);
            t.put(RUNS, k, r);
        }
    }
}

async fn cancel_run(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_field(&b, "run_id")?;
    let now = now_ms();
    // Judged outside the transaction: a run's state reads its pipeline updates (a read
    // inside the transaction would deadlock).
    let run = emu
        .store
        .get(RUNS, &key(id))
        .ok_or_else(|| run_missing(id))?;
    if run_state(&emu, &run, now).0 != "TERMINATED" {
        emu.store.txn(|t| {
            cancel(t, &key(id), now);
            Ok::<_, ApiErr>(())
        })?;
    }
    ok(json!({}))
}

async fn cancel_all(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let job_id = match b.get("job_id") {
        None | Some(Value::Null) => None,
        Some(_) => Some(id_field(&b, "job_id")?),
    };
    let all_queued = b
        .get("all_queued_runs")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if job_id.is_none() && !all_queued {
        return Err(ApiErr::invalid(
            "Either job_id or all_queued_runs must be set",
        ));
    }
    let now = now_ms();
    emu.store.txn(|t| {
        let active: Vec<String> = t
            .values(RUNS)
            .filter(|(_, r)| job_id.is_none_or(|j| r["job_id"].as_i64() == Some(j)))
            .filter(|(_, r)| run_state(&emu, r, now).0 != "TERMINATED")
            .map(|(k, _)| k.clone())
            .collect();
        for k in active {
            cancel(t, &k, now);
        }
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn delete_run(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_field(&b, "run_id")?;
    // Judged outside the transaction: a run's state reads its pipeline updates.
    let run = emu
        .store
        .get(RUNS, &key(id))
        .ok_or_else(|| run_missing(id))?;
    // The service refuses to delete a run that is still going (cancel it first).
    if run_state(&emu, &run, now_ms()).0 != "TERMINATED" {
        return Err(ApiErr::invalid_state(format!(
            "Run {id} is active and cannot be deleted; cancel it first"
        )));
    }
    emu.store.txn(|t| {
        t.delete(RUNS, &key(id))
            .map(|_| ())
            .ok_or_else(|| run_missing(id))
    })?;
    ok(json!({}))
}
