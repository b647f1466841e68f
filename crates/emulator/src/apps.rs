//! Apps (reference §12): create (`no_compute`), get/list, full and masked update, delete
//! with a visible DELETING period, deployments IN_PROGRESS→SUCCEEDED, start/stop.
//!
//! Compute transitions are stored as `(state, until)`: STARTING/STOPPING/DELETING hold
//! until the absolute time `until` (one `--transition-ms` after the request), then settle
//! into ACTIVE/STOPPED/gone. Deployments and masked updates complete the same way. Every
//! App carries `compute_status` and `app_status`; every deployment and update `status`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, decode_token, encode_token, internal, internal_mut, now_ms, ok, opt_str, page_size,
    qbool, query, req_str, rfc3339, strip_internal, ApiErr, ApiResult, INTERNAL,
};
use super::server::{Caller, Emu, Shared};

pub const APPS: &str = "apps";
const DEPLOYMENTS: &str = "app_deployments";
const UPDATES: &str = "app_updates";
/// Fields a client may set (create, PATCH, masked update).
const SETTABLE: [&str; 11] = [
    "description",
    "budget_policy_id",
    "usage_policy_id",
    "resources",
    "user_api_scopes",
    "forward_user_access_token",
    "compute_size",
    "compute_min_instances",
    "compute_max_instances",
    "git_repository",
    "telemetry_export_destinations",
];
const RESOURCE_KINDS: [&str; 10] = [
    "database",
    "postgres",
    "job",
    "secret",
    "sql_warehouse",
    "serving_endpoint",
    "uc_securable",
    "genie_space",
    "experiment",
    "app",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.0/apps", post(create).get(list))
        .route(
            "/api/2.0/apps/{name}",
            get(get_app).patch(replace).delete(delete),
        )
        .route(
            "/api/2.0/apps/{name}/update",
            post(masked_update).get(get_update),
        )
        .route(
            "/api/2.0/apps/{name}/deployments",
            post(deploy).get(list_deployments),
        )
        .route("/api/2.0/apps/{name}/deployments/{id}", get(get_deployment))
        .route("/api/2.0/apps/{name}/start", post(start))
        .route("/api/2.0/apps/{name}/stop", post(stop))
}

fn missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!(
        "App with name {name} does not exist or is deleted."
    ))
}

fn compute(rec: &Value) -> (&str, i64) {
    let c = internal(rec).get("compute");
    let state = c
        .and_then(|c| c.get("state"))
        .and_then(Value::as_str)
        .unwrap_or("STOPPED");
    let until = c
        .and_then(|c| c.get("until"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    (state, until)
}

/// The compute state at `now`; `None` once a delete has completed.
fn compute_state(rec: &Value, now: i64) -> Option<&'static str> {
    let (state, until) = compute(rec);
    let settled = now >= until;
    Some(match (state, settled) {
        ("DELETING", true) => return None,
        ("DELETING", false) => "DELETING",
        ("STARTING", false) => "STARTING",
        ("STARTING", true) | ("ACTIVE", _) => "ACTIVE",
        ("STOPPING", false) => "STOPPING",
        ("ERROR", _) => "ERROR",
        _ => "STOPPED",
    })
}

pub fn is_deleting(rec: &Value) -> bool {
    compute(rec).0 == "DELETING"
}

fn set_compute(rec: &mut Value, state: &str, until: i64) {
    if let Some(e) = internal_mut(rec) {
        e.insert("compute".into(), json!({"state": state, "until": until}));
    }
}

fn deployment_state(d: &Value, now: i64) -> &'static str {
    let e = internal(d);
    let done = e.get("done_at").and_then(Value::as_i64).unwrap_or(0);
    if now < done {
        "IN_PROGRESS"
    } else if e.get("fail").and_then(Value::as_str).is_some() {
        "FAILED"
    } else {
        "SUCCEEDED"
    }
}

fn deployment_view(d: &Value, now: i64) -> Value {
    let state = deployment_state(d, now);
    let message = match state {
        "IN_PROGRESS" => "Deployment is in progress.".to_string(),
        "FAILED" => internal(d)
            .get("fail")
            .and_then(Value::as_str)
            .unwrap_or("failed")
            .to_string(),
        _ => "App started successfully".to_string(),
    };
    let mut out = strip_internal(d.clone());
    out["status"] = json!({"state": state, "message": message});
    if state != "IN_PROGRESS" {
        let done = internal(d)
            .get("done_at")
            .and_then(Value::as_i64)
            .unwrap_or(now);
        out["update_time"] = json!(rfc3339(done));
    }
    out
}

fn deployments_of(emu: &Emu, app: &str) -> Vec<Value> {
    let prefix = format!("{app}/");
    emu.store
        .all(DEPLOYMENTS)
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, d)| d)
        .collect()
}

fn view(emu: &Emu, rec: &Value, now: i64) -> Option<Value> {
    let state = compute_state(rec, now)?;
    let name = rec["name"].as_str().unwrap_or_default();
    let mut out = strip_internal(rec.clone());
    out.as_object_mut()?
        .entry("compute_size")
        .or_insert(json!("MEDIUM"));
    let message = match state {
        "ACTIVE" => "App compute is running.",
        "STARTING" => "App compute is starting.",
        "STOPPING" => "App compute is stopping.",
        "DELETING" => "App is being deleted.",
        _ => "App compute is stopped.",
    };
    out["compute_status"] = json!({"state": state, "message": message,
                                   "active_instances": if state == "ACTIVE" { 1 } else { 0 }});
    let deps = deployments_of(emu, name);
    let pending = deps
        .iter()
        .rev()
        .find(|d| deployment_state(d, now) == "IN_PROGRESS");
    let succeeded = deps
        .iter()
        .rev()
        .find(|d| deployment_state(d, now) == "SUCCEEDED");
    let live = matches!(state, "ACTIVE" | "STARTING");
    if let Some(d) = succeeded {
        out["default_source_code_path"] = d["source_code_path"].clone();
        if live {
            out["active_deployment"] = deployment_view(d, now);
        }
    }
    if let Some(d) = pending.filter(|_| live) {
        out["pending_deployment"] = deployment_view(d, now);
    }
    let app_state = match (state, pending.is_some(), succeeded.is_some()) {
        ("ACTIVE", true, _) => "DEPLOYING",
        ("ACTIVE", false, true) => "RUNNING",
        _ => "UNAVAILABLE",
    };
    let app_message = match app_state {
        "RUNNING" => "App has status: App is running",
        "DEPLOYING" => "App has status: App is being deployed",
        _ => "App has not been deployed yet. Run your app by deploying source code",
    };
    out["app_status"] = json!({"state": app_state, "message": app_message});
    Some(out)
}

fn live_app(emu: &Emu, name: &str, now: i64) -> Result<Value, ApiErr> {
    emu.store
        .get(APPS, name)
        .filter(|r| compute_state(r, now).is_some())
        .ok_or_else(|| missing(name))
}

fn validate_name(name: &str) -> Result<(), ApiErr> {
    let ok = (2..=30).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiErr::invalid(format!(
            "Invalid app name '{name}': must be 2-30 characters of lowercase letters, digits and hyphens, \
             not starting or ending with a hyphen"
        )))
    }
}

/// Whether `(collection, key)` exists. Handlers pass a view of the store they
/// already hold (a transaction must not take the store lock a second time).
type Exists<'a> = &'a dyn Fn(&str, &str) -> bool;

/// Check and copy the settable fields of `src` (all of them, or those in `only`).
fn apply_fields(
    exists: Exists<'_>,
    dst: &mut Map<String, Value>,
    src: &Map<String, Value>,
    only: Option<&[String]>,
) -> Result<(), ApiErr> {
    for f in SETTABLE {
        if only.is_some_and(|o| !o.iter().any(|x| x == f || x == "*")) {
            continue;
        }
        match src.get(f).filter(|v| !v.is_null()) {
            Some(v) => {
                validate_field(exists, f, v)?;
                dst.insert(f.into(), v.clone());
            }
            None => {
                dst.remove(f);
            }
        }
    }
    Ok(())
}

fn validate_field(exists: Exists<'_>, f: &str, v: &Value) -> Result<(), ApiErr> {
    match f {
        "compute_size" => match v.as_str() {
            Some("MEDIUM" | "LARGE" | "XLARGE") => Ok(()),
            _ => Err(ApiErr::invalid(format!(
                "Invalid compute_size {v}: must be MEDIUM, LARGE or XLARGE"
            ))),
        },
        "resources" => {
            let list = v
                .as_array()
                .ok_or_else(|| ApiErr::invalid("resources must be a list"))?;
            for r in list {
                let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() {
                    return Err(ApiErr::missing("resources.name"));
                }
                let kinds: Vec<&str> = RESOURCE_KINDS
                    .iter()
                    .copied()
                    .filter(|k| r.get(*k).is_some())
                    .collect();
                if kinds.len() != 1 {
                    return Err(ApiErr::invalid(format!(
                        "App resource '{name}' must define exactly one of {}",
                        RESOURCE_KINDS.join(", ")
                    )));
                }
                if kinds[0] == "database" {
                    let inst = r
                        .pointer("/database/instance_name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !exists(super::instances::COLLECTION, inst) {
                        return Err(ApiErr::invalid(format!(
                            "App resource '{name}': database instance '{inst}' does not exist"
                        )));
                    }
                }
                if kinds[0] == "job" {
                    let id = r.pointer("/job/id").and_then(super::http::as_i64);
                    if id.is_none_or(|id| !exists(super::jobs::JOBS, &super::jobs::key(id))) {
                        return Err(ApiErr::invalid(format!(
                            "App resource '{name}': job {} does not exist",
                            r["job"]["id"]
                        )));
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn create(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
    raw: Bytes,
) -> ApiResult {
    let q = query(q.as_deref());
    let no_compute = qbool(&q, "no_compute")?.unwrap_or(false);
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    validate_name(&name)?;
    let mut fields = Map::new();
    apply_fields(&|c, k| emu.store.get(c, k).is_some(), &mut fields, &b, None)?;
    let now = now_ms();
    let step = emu.cfg.transition_ms as i64;
    let rec = emu.store.txn(|t| {
        if let Some(old) = t.get(APPS, &name) {
            if compute_state(old, now).is_some() {
                return Err(ApiErr::exists(format!(
                    "An app with the same name already exists: {name}"
                )));
            }
        }
        let sp_id = t.next_int64_id(super::store::IdKind::AppServicePrincipal);
        let mut rec = Value::Object(fields.clone());
        let short = &uuid::Uuid::new_v4().simple().to_string()[..8];
        rec["name"] = json!(name);
        rec["id"] = json!(uuid::Uuid::new_v4().to_string());
        rec["url"] = json!(format!(
            "https://{name}-{}.aws.databricksapps.com",
            emu.workspace_id
        ));
        rec["creator"] = json!(caller.user_name);
        rec["updater"] = json!(caller.user_name);
        rec["create_time"] = json!(rfc3339(now));
        rec["update_time"] = json!(rfc3339(now));
        rec["service_principal_id"] = json!(sp_id);
        rec["service_principal_client_id"] = json!(uuid::Uuid::new_v4().to_string());
        rec["service_principal_name"] = json!(format!("app-{short} {name}"));
        rec["oauth2_app_client_id"] = json!(uuid::Uuid::new_v4().to_string());
        rec["oauth2_app_integration_id"] = json!(uuid::Uuid::new_v4().to_string());
        if let Some(space) = opt_str(&b, "space")? {
            rec["space"] = json!(space);
        }
        rec[INTERNAL] = json!({});
        if no_compute {
            set_compute(&mut rec, "STOPPED", now);
        } else {
            set_compute(&mut rec, "STARTING", now + step);
        }
        // A recreated name starts without the deployments of the deleted app.
        let prefix = format!("{name}/");
        let stale: Vec<String> = t
            .values(DEPLOYMENTS)
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            t.delete(DEPLOYMENTS, &k);
        }
        t.delete(UPDATES, &name);
        t.put(APPS, &name, rec.clone());
        super::permissions::grant_owner(t, "apps", &name, &caller.user_name);
        Ok(rec)
    })?;
    ok(view(&emu, &rec, now).unwrap_or_default())
}

async fn get_app(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let now = now_ms();
    let rec = live_app(&emu, &name, now)?;
    ok(view(&emu, &rec, now).ok_or_else(|| missing(&name))?)
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let size = page_size(&q, "page_size", 50, 1000)?;
    let after = decode_token(q.get("page_token"))?;
    let now = now_ms();
    let (page, more) = emu.store.page(APPS, after.as_deref(), size, |r| {
        compute_state(r, now).is_some()
    });
    let mut out = json!({});
    if !page.is_empty() {
        out["apps"] = page
            .iter()
            .filter_map(|(_, r)| view(&emu, r, now))
            .collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

fn not_deleting(rec: &Value, now: i64) -> Result<(), ApiErr> {
    if compute_state(rec, now) == Some("DELETING") {
        return Err(ApiErr::bad_request(format!(
            "App {} is being deleted (state DELETING)",
            rec["name"].as_str().unwrap_or_default()
        )));
    }
    Ok(())
}

/// `PATCH /apps/{name}`: synchronous full replace of the settable fields.
async fn replace(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    if let Some(n) = opt_str(&b, "name")? {
        if n != name {
            return Err(ApiErr::invalid(format!(
                "Field 'name' cannot be changed (path names '{name}', body names '{n}')"
            )));
        }
    }
    let now = now_ms();
    let rec = emu.store.txn(|t| {
        let mut rec = t
            .get(APPS, &name)
            .filter(|r| compute_state(r, now).is_some())
            .cloned()
            .ok_or_else(|| missing(&name))?;
        not_deleting(&rec, now)?;
        if let Some(m) = rec.as_object_mut() {
            apply_fields(&|c, k| t.get(c, k).is_some(), m, &b, None)?;
            m.insert("updater".into(), json!(caller.user_name));
            m.insert("update_time".into(), json!(rfc3339(now)));
        }
        t.put(APPS, &name, rec.clone());
        Ok::<_, ApiErr>(rec)
    })?;
    ok(view(&emu, &rec, now).unwrap_or_default())
}

fn update_view(u: &Value, now: i64) -> Value {
    let done = internal(u)
        .get("done_at")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let state = if now < done {
        "IN_PROGRESS"
    } else {
        "SUCCEEDED"
    };
    let mut out = strip_internal(u.clone());
    out["status"] = json!({"state": state, "message": if state == "SUCCEEDED" { "Update succeeded." } else { "Update in progress." }});
    out
}

/// `POST /apps/{name}/update {app, update_mask}`: asynchronous masked update.
async fn masked_update(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let mask = req_str(&b, "update_mask")?;
    let fields: Vec<String> = mask
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    for f in &fields {
        if f != "*" && !SETTABLE.contains(&f.as_str()) {
            return Err(ApiErr::invalid(format!(
                "Invalid update_mask: field '{f}' cannot be updated"
            )));
        }
    }
    let app = match b.get("app") {
        Some(Value::Object(a)) => a.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(ApiErr::invalid("Field 'app' must be an object")),
    };
    let now = now_ms();
    let step = emu.cfg.transition_ms as i64;
    let update = emu.store.txn(|t| {
        let mut rec = t
            .get(APPS, &name)
            .filter(|r| compute_state(r, now).is_some())
            .cloned()
            .ok_or_else(|| missing(&name))?;
        not_deleting(&rec, now)?;
        if let Some(prev) = t.get(UPDATES, &name) {
            if update_view(prev, now)["status"]["state"] == json!("IN_PROGRESS") {
                return Err(ApiErr::invalid_state(format!(
                    "An update of app {name} is already in progress"
                )));
            }
        }
        if let Some(m) = rec.as_object_mut() {
            apply_fields(&|c, k| t.get(c, k).is_some(), m, &app, Some(&fields))?;
            m.insert("updater".into(), json!(caller.user_name));
            m.insert("update_time".into(), json!(rfc3339(now)));
        }
        let mut u =
            json!({"update_mask": mask, "creator": caller.user_name, "create_time": rfc3339(now)});
        for f in SETTABLE {
            if let Some(v) = rec.get(f) {
                u[f] = v.clone();
            }
        }
        u[INTERNAL] = json!({"done_at": now + step});
        t.put(APPS, &name, rec);
        t.put(UPDATES, &name, u.clone());
        Ok::<_, ApiErr>(u)
    })?;
    ok(update_view(&update, now))
}

async fn get_update(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let now = now_ms();
    live_app(&emu, &name, now)?;
    match emu.store.get(UPDATES, &name) {
        Some(u) => ok(update_view(&u, now)),
        None => {
            ok(json!({"status": {"state": "NOT_UPDATED", "message": "App has not been updated."}}))
        }
    }
}

async fn delete(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let now = now_ms();
    let step = emu.cfg.transition_ms as i64;
    let rec = emu.store.txn(|t| {
        let mut rec = t.get(APPS, &name).filter(|r| compute_state(r, now).is_some()).cloned().ok_or_else(|| missing(&name))?;
        if compute_state(&rec, now) == Some("DELETING") {
            return Err(ApiErr::bad_request(format!(
                "Cannot delete app {name} as it is not terminal with state DELETING. Please wait for the app to be deleted."
            )));
        }
        set_compute(&mut rec, "DELETING", now + step.max(1));
        t.put(APPS, &name, rec.clone());
        super::permissions::forget(t, "apps", &name);
        Ok::<_, ApiErr>(rec)
    })?;
    ok(view(&emu, &rec, now).unwrap_or_default())
}

async fn deploy(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    if b.contains_key("git_repository") {
        return Err(ApiErr::invalid(
            "git_repository must not be sent on deploy; set it on the app",
        ));
    }
    let mode = opt_str(&b, "mode")?.unwrap_or("SNAPSHOT").to_string();
    if mode != "SNAPSHOT" && mode != "AUTO_SYNC" {
        return Err(ApiErr::invalid(format!(
            "Invalid mode '{mode}': must be SNAPSHOT or AUTO_SYNC"
        )));
    }
    let now = now_ms();
    let step = emu.cfg.transition_ms as i64;
    let rec = live_app(&emu, &name, now)?;
    let state = compute_state(&rec, now).unwrap_or("STOPPED");
    if state != "ACTIVE" {
        return Err(ApiErr::invalid_state(format!(
            "Cannot deploy app {name} as its compute is {state}; start the app first"
        )));
    }
    let deps = deployments_of(&emu, &name);
    if deps
        .iter()
        .any(|d| deployment_state(d, now) == "IN_PROGRESS")
    {
        return Err(ApiErr::invalid_state(format!(
            "Cannot deploy app {name}: another deployment is in progress"
        )));
    }
    let source = match (opt_str(&b, "source_code_path")?, b.get("git_source")) {
        (Some(p), _) => Some(p.to_string()),
        (None, Some(_)) => None,
        (None, None) => match deps
            .iter()
            .rev()
            .find(|d| deployment_state(d, now) == "SUCCEEDED")
        {
            Some(d) => d["source_code_path"].as_str().map(str::to_string),
            None => return Err(ApiErr::missing("source_code_path")),
        },
    };
    // A snapshot of a folder that is not in the workspace fails, as a real deploy does.
    let fail = source
        .as_deref()
        .filter(|p| !super::workspace::is_directory(&emu, p))
        .map(|p| {
            format!("Source code path {p} does not exist in the workspace or is not a directory.")
        });
    let id = emu.store.txn(|t| {
        let seq = t.next_id("deployment_seq", 1);
        let id = format!("{:032x}", seq as u128 * 0x9E37_79B9_7F4A_7C15u128 % (1u128 << 120));
        let mut d = json!({
            "deployment_id": id,
            "mode": mode,
            "creator": caller.user_name,
            "create_time": rfc3339(now),
            "update_time": rfc3339(now),
        });
        if let Some(p) = &source {
            d["source_code_path"] = json!(p);
            d["deployment_artifacts"] = json!({"source_code_path": format!("/Workspace/Users/{}/.app-snapshots/{name}/{id}", caller.user_name)});
        }
        for f in ["command", "git_source", "health_check"] {
            if let Some(v) = b.get(f) {
                d[f] = v.clone();
            }
        }
        // GET returns env var names only.
        if let Some(env) = b.get("env_vars").and_then(Value::as_array) {
            d["env_vars"] = env.iter().map(|e| json!({"name": e.get("name")})).collect();
        }
        d[INTERNAL] = json!({"done_at": now + step, "fail": fail, "app": name});
        t.put(DEPLOYMENTS, &format!("{name}/{seq:020}"), d);
        Ok::<_, ApiErr>((id, seq))
    })?;
    let d = emu
        .store
        .get(DEPLOYMENTS, &format!("{name}/{:020}", id.1))
        .unwrap_or_default();
    ok(deployment_view(&d, now))
}

fn find_deployment(emu: &Emu, app: &str, id: &str) -> Option<Value> {
    deployments_of(emu, app)
        .into_iter()
        .find(|d| d["deployment_id"].as_str() == Some(id))
}

async fn get_deployment(State(emu): Shared, Path((name, id)): Path<(String, String)>) -> ApiResult {
    let now = now_ms();
    live_app(&emu, &name, now)?;
    let d = find_deployment(&emu, &name, &id).ok_or_else(|| {
        ApiErr::not_found(format!("Deployment {id} of app {name} does not exist."))
    })?;
    ok(deployment_view(&d, now))
}

async fn list_deployments(
    State(emu): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query(q.as_deref());
    let size = page_size(&q, "page_size", 50, 1000)?;
    let now = now_ms();
    live_app(&emu, &name, now)?;
    let after = decode_token(q.get("page_token"))?;
    let (page, more) = emu.store.page(DEPLOYMENTS, after.as_deref(), size, |d| {
        internal(d).get("app").and_then(Value::as_str) == Some(name.as_str())
    });
    let mut out = json!({});
    if !page.is_empty() {
        out["app_deployments"] = page.iter().map(|(_, d)| deployment_view(d, now)).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

/// Start or stop the compute: `target` is ACTIVE or STOPPED.
async fn transition(emu: &Emu, name: &str, target: &str) -> ApiResult {
    let now = now_ms();
    let step = emu.cfg.transition_ms as i64;
    let rec = emu.store.txn(|t| {
        let mut rec = t
            .get(APPS, name)
            .filter(|r| compute_state(r, now).is_some())
            .cloned()
            .ok_or_else(|| missing(name))?;
        not_deleting(&rec, now)?;
        let current = compute_state(&rec, now).unwrap_or("STOPPED");
        let (moving, settled) = if target == "ACTIVE" {
            ("STARTING", "ACTIVE")
        } else {
            ("STOPPING", "STOPPED")
        };
        if current != settled && current != moving {
            set_compute(&mut rec, moving, now + step);
            t.put(APPS, name, rec.clone());
        }
        Ok::<_, ApiErr>(rec)
    })?;
    ok(view(emu, &rec, now).unwrap_or_default())
}

async fn start(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    transition(&emu, &name, "ACTIVE").await
}

async fn stop(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    transition(&emu, &name, "STOPPED").await
}
