//! Database instances (reference §7) and database credentials (§8).
//!
//! A stored instance record holds the fields GET returns plus, under `_emu`, the in-only
//! inputs (mirrored into `effective_*` on output) and the bookkeeping of its state:
//! `busy_until`/`phase` (time-based STARTING/UPDATING that survive restarts because they
//! are absolute timestamps), `pending` (backend operations in flight), `ready` (the backend
//! create returned) and `failed`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::backend::{BranchPoint, InstanceSpec};
use super::http::{
    body, decode_token, encode_token, internal, internal_mut, now_ms, ok, opt_str, page_size,
    qbool, query, random_hex, req_str, rfc3339, strip_internal, ApiErr, ApiResult,
};
use super::server::{Caller, CredentialKey, Emu, Shared};

pub const COLLECTION: &str = "instances";
const MAX_INSTANCES: usize = 10;
const CAPACITIES: [&str; 4] = ["CU_1", "CU_2", "CU_4", "CU_8"];
/// In-only fields: accepted, never returned by GET, mirrored into `effective_<field>`.
const INPUT_ONLY: [&str; 7] = [
    "node_count",
    "enable_readable_secondaries",
    "retention_window_in_days",
    "stopped",
    "enable_pg_native_login",
    "usage_policy_id",
    "custom_tags",
];
const UPDATABLE: [&str; 8] = [
    "capacity",
    "node_count",
    "enable_readable_secondaries",
    "retention_window_in_days",
    "stopped",
    "enable_pg_native_login",
    "usage_policy_id",
    "custom_tags",
];
/// Output-only fields a client may echo back (the CLI sends the whole record with `*`).
const OUTPUTS: [&str; 18] = [
    "uid",
    "state",
    "creator",
    "creation_time",
    "pg_version",
    "read_write_dns",
    "read_only_dns",
    "child_instance_refs",
    "effective_capacity",
    "effective_node_count",
    "effective_enable_readable_secondaries",
    "effective_retention_window_in_days",
    "effective_stopped",
    "effective_enable_pg_native_login",
    "effective_usage_policy_id",
    "effective_custom_tags",
    "purge_on_delete",
    "name",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.0/database/instances", post(create).get(list))
        .route("/api/2.0/database/instances:findByUid", get(find_by_uid))
        .route(
            "/api/2.0/database/instances/{name}",
            get(get_one).patch(update).delete(delete),
        )
        .route("/api/2.0/database/credentials", post(credential))
}

pub fn missing(name: &str) -> ApiErr {
    ApiErr::not_found(format!("Database instance '{name}' does not exist."))
}

fn validate_name(name: &str) -> Result<(), ApiErr> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiErr::invalid(format!(
            "Invalid name '{name}': an instance name must be 1-63 characters, start with a letter \
             and contain only letters, digits and hyphens"
        )))
    }
}

fn validate_capacity(v: &Value) -> Result<String, ApiErr> {
    match v.as_str() {
        Some(c) if CAPACITIES.contains(&c) => Ok(c.to_string()),
        _ => Err(ApiErr::invalid(format!(
            "Invalid capacity {v}: must be one of {}",
            CAPACITIES.join(", ")
        ))),
    }
}

fn default_input(field: &str) -> Value {
    match field {
        "node_count" => json!(1),
        "retention_window_in_days" => json!(7),
        "enable_readable_secondaries" | "stopped" | "enable_pg_native_login" => json!(false),
        "custom_tags" => json!([]),
        _ => Value::Null,
    }
}

/// Check one in-only input and return the value to store.
fn validate_input(field: &str, v: &Value) -> Result<Value, ApiErr> {
    let int_in = |lo: i64, hi: i64| -> Result<Value, ApiErr> {
        match super::http::as_i64(v) {
            Some(n) if (lo..=hi).contains(&n) => Ok(json!(n)),
            _ => Err(ApiErr::invalid(format!(
                "Invalid {field} {v}: must be an integer from {lo} to {hi}"
            ))),
        }
    };
    match field {
        "node_count" => int_in(1, 3),
        "retention_window_in_days" => int_in(2, 35),
        "enable_readable_secondaries" | "stopped" | "enable_pg_native_login" => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err(ApiErr::invalid(format!(
                "Invalid {field} {v}: must be a boolean"
            ))),
        },
        "usage_policy_id" => match v {
            Value::String(_) => Ok(v.clone()),
            _ => Err(ApiErr::invalid(format!(
                "Invalid {field} {v}: must be a string"
            ))),
        },
        "custom_tags" => {
            let Some(tags) = v.as_array() else {
                return Err(ApiErr::invalid(
                    "Invalid custom_tags: must be a list of {key, value}",
                ));
            };
            for t in tags {
                if t.get("key")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(ApiErr::invalid(format!(
                        "Invalid custom_tags entry {t}: every tag needs a non-empty 'key'"
                    )));
                }
            }
            Ok(v.clone())
        }
        _ => Err(ApiErr::invalid(format!("Field '{field}' cannot be set"))),
    }
}

fn input_of(rec: &Value, field: &str) -> Value {
    internal(rec)
        .get("input")
        .and_then(|i| i.get(field))
        .cloned()
        .unwrap_or_else(|| default_input(field))
}

/// The state a poller sees now.
pub fn state_of(rec: &Value, now: i64) -> &'static str {
    let e = internal(rec);
    if e.get("failed").is_some_and(|f| !f.is_null()) {
        return "FAILED";
    }
    let pending = e.get("pending").and_then(Value::as_i64).unwrap_or(0);
    let busy_until = e.get("busy_until").and_then(Value::as_i64).unwrap_or(0);
    let ready = e.get("ready").and_then(Value::as_bool).unwrap_or(false);
    if pending > 0 || now < busy_until || !ready {
        return match e.get("phase").and_then(Value::as_str) {
            Some("UPDATING") if ready => "UPDATING",
            _ => "STARTING",
        };
    }
    if input_of(rec, "stopped").as_bool().unwrap_or(false) {
        "STOPPED"
    } else {
        "AVAILABLE"
    }
}

/// The record as GET returns it: public fields, `state`, `effective_*`, child refs.
fn view(emu: &Emu, rec: &Value, now: i64) -> Value {
    let mut out = strip_internal(rec.clone());
    let uid = rec.get("uid").and_then(Value::as_str).unwrap_or_default();
    let Some(m) = out.as_object_mut() else {
        return out;
    };
    m.insert("state".into(), json!(state_of(rec, now)));
    if let Some(c) = rec.get("capacity") {
        m.insert("effective_capacity".into(), c.clone());
    }
    for f in INPUT_ONLY {
        let v = input_of(rec, f);
        if !v.is_null() {
            m.insert(format!("effective_{f}"), v);
        }
    }
    let children: Vec<Value> = emu
        .store
        .all(COLLECTION)
        .into_iter()
        .filter(|(_, c)| {
            c.pointer("/parent_instance_ref/uid")
                .and_then(Value::as_str)
                == Some(uid)
        })
        .map(|(_, c)| json!({"name": c["name"], "uid": c["uid"]}))
        .collect();
    if !children.is_empty() {
        m.insert("child_instance_refs".into(), Value::Array(children));
    }
    out
}

/// Create/update responses also echo the in-only inputs (reference §7.2 `custom_tags`).
fn view_with_inputs(emu: &Emu, rec: &Value) -> Value {
    let mut out = view(emu, rec, now_ms());
    if let (Some(m), Some(input)) = (
        out.as_object_mut(),
        internal(rec).get("input").and_then(Value::as_object),
    ) {
        for (k, v) in input {
            m.insert(k.clone(), v.clone());
        }
    }
    out
}

pub fn spec_of(rec: &Value) -> InstanceSpec {
    let s = |k: &str| {
        rec.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let parent = rec.get("parent_instance_ref").and_then(|p| {
        let uid = p.get("uid")?.as_str()?.to_string();
        let branch = internal(rec).get("branch");
        let point = match (
            branch.and_then(|b| b.get("lsn")).and_then(Value::as_str),
            p.get("branch_time").and_then(Value::as_str),
        ) {
            (Some(lsn), _) => BranchPoint::Lsn(lsn.to_string()),
            (None, Some(t)) => BranchPoint::Timestamp(t.to_string()),
            (None, None) => BranchPoint::Now,
        };
        Some((uid, point))
    });
    InstanceSpec {
        uid: s("uid"),
        name: s("name"),
        capacity: s("capacity"),
        node_count: input_of(rec, "node_count").as_u64().unwrap_or(1) as u32,
        enable_readable_secondaries: input_of(rec, "enable_readable_secondaries")
            .as_bool()
            .unwrap_or(false),
        enable_pg_native_login: input_of(rec, "enable_pg_native_login")
            .as_bool()
            .unwrap_or(false),
        stopped: input_of(rec, "stopped").as_bool().unwrap_or(false),
        parent,
        servers: Vec::new(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Update,
}

/// Run a backend operation for instance `name` in the background, serialised per
/// instance; it reads the record's current spec when its turn comes.
fn spawn_backend(emu: Arc<Emu>, name: String, uid: String, op: Op) {
    tokio::spawn(async move {
        let lock = emu.instance_op_lock(&uid);
        let _turn = lock.lock().await;
        let Some(rec) = emu
            .store
            .get(COLLECTION, &name)
            .filter(|r| r["uid"] == json!(uid))
        else {
            return;
        };
        let spec = spec_of(&rec);
        let result = match op {
            Op::Create => emu.backend.create_instance(&spec).await,
            Op::Update => emu.backend.update_instance(&spec).await,
        };
        let saved = emu.store.txn(|t| {
            let Some(mut rec) = t
                .get(COLLECTION, &name)
                .filter(|r| r["uid"] == json!(uid))
                .cloned()
            else {
                return Ok::<_, ApiErr>(());
            };
            if let Some(m) = rec.as_object_mut() {
                match &result {
                    Ok(ep) => {
                        m.insert("read_write_dns".into(), json!(ep.read_write_dns));
                        match &ep.read_only_dns {
                            Some(ro) => m.insert("read_only_dns".into(), json!(ro)),
                            None => m.remove("read_only_dns"),
                        };
                        if !ep.pg_version.is_empty() {
                            m.insert("pg_version".into(), json!(ep.pg_version));
                        }
                    }
                    Err(e) => {
                        tracing::warn!("backend operation on instance {name} failed: {e}");
                    }
                }
            }
            if let Some(e) = internal_mut(&mut rec) {
                let pending = e.get("pending").and_then(Value::as_i64).unwrap_or(1);
                e.insert("pending".into(), json!((pending - 1).max(0)));
                match &result {
                    Ok(_) => {
                        e.insert("ready".into(), json!(true));
                    }
                    Err(err) => {
                        e.insert("failed".into(), json!(err.to_string()));
                    }
                }
            }
            t.put(COLLECTION, &name, rec);
            Ok(())
        });
        if let Err(e) = saved {
            tracing::error!(
                "cannot record backend result for instance {name}: {}",
                e.message
            );
        }
    });
}

impl Emu {
    /// On start: hand existing instances back to the backend (restart their servers) and
    /// resume creates that were in flight when the previous process died.
    pub async fn adopt_instances(self: &Arc<Self>) {
        let records = self.store.all(COLLECTION);
        let mut adopt = Vec::new();
        let mut resume = Vec::new();
        for (name, rec) in &records {
            let e = internal(rec);
            if e.get("failed").is_some_and(|f| !f.is_null()) {
                continue;
            }
            if e.get("ready").and_then(Value::as_bool).unwrap_or(false) {
                adopt.push(spec_of(rec));
            } else {
                resume.push((
                    name.clone(),
                    rec["uid"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        let adopted = if adopt.is_empty() {
            Ok(Vec::new())
        } else {
            self.backend.adopt(&adopt).await
        };
        let result = self.store.txn(|t| {
            for (name, rec) in &records {
                let mut rec = rec.clone();
                let is_resumed = resume.iter().any(|(n, _)| n == name);
                if let Some(e) = internal_mut(&mut rec) {
                    e.insert("pending".into(), json!(if is_resumed { 1 } else { 0 }));
                    if let Err(err) = &adopted {
                        if !is_resumed && e.get("ready").and_then(Value::as_bool).unwrap_or(false) {
                            e.insert("failed".into(), json!(format!("adopt failed: {err}")));
                        }
                    }
                }
                if let Ok(eps) = &adopted {
                    let uid = rec["uid"].as_str().unwrap_or_default().to_string();
                    if let Some((_, ep)) = eps.iter().find(|(u, _)| *u == uid) {
                        if let Some(m) = rec.as_object_mut() {
                            m.insert("read_write_dns".into(), json!(ep.read_write_dns));
                        }
                    }
                }
                t.put(COLLECTION, name, rec);
            }
            Ok::<_, ApiErr>(())
        });
        if let Err(e) = result {
            tracing::error!("cannot record adopted instances: {}", e.message);
        }
        for (name, uid) in resume {
            spawn_backend(self.clone(), name, uid, Op::Create);
        }
    }
}

async fn create(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "name")?.to_string();
    validate_name(&name)?;
    let capacity = validate_capacity(
        b.get("capacity")
            .ok_or_else(|| ApiErr::missing("capacity"))?,
    )?;
    let mut input = Map::new();
    for f in INPUT_ONLY {
        if let Some(v) = b.get(f).filter(|v| !v.is_null()) {
            input.insert(f.into(), validate_input(f, v)?);
        }
    }
    let parent_req = match b.get("parent_instance_ref") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p.clone()),
        Some(_) => return Err(ApiErr::invalid("parent_instance_ref must be an object")),
    };
    let now = now_ms();
    let uid = uuid::Uuid::new_v4().to_string();
    let ready_ms = emu.cfg.instance_ready_ms as i64;
    let rec = emu.store.txn(|t| {
        if t.get(COLLECTION, &name).is_some() {
            return Err(ApiErr::exists(format!("Database instance '{name}' already exists.")));
        }
        if t.count(COLLECTION) >= MAX_INSTANCES {
            return Err(ApiErr::new(
                axum::http::StatusCode::BAD_REQUEST,
                "QUOTA_EXCEEDED",
                format!("Cannot create database instance '{name}': the workspace limit of {MAX_INSTANCES} database instances is reached."),
            ));
        }
        let mut e = json!({"input": input, "busy_until": now + ready_ms, "phase": "STARTING", "pending": 1, "ready": false});
        let mut rec = json!({
            "name": name,
            "capacity": capacity,
            "uid": uid,
            "creator": caller.user_name,
            "creation_time": rfc3339(now),
            "pg_version": "PG_VERSION_16",
        });
        if let Some(p) = &parent_req {
            let pname = req_str(p, "name").map_err(|_| ApiErr::missing("parent_instance_ref.name"))?;
            let parent = t.get(COLLECTION, pname).ok_or_else(|| missing(pname))?;
            let mut r = json!({"name": pname, "uid": parent["uid"]});
            if let Some(bt) = opt_str(p, "branch_time")? {
                chrono::DateTime::parse_from_rfc3339(bt).map_err(|err| {
                    ApiErr::invalid(format!("Invalid parent_instance_ref.branch_time '{bt}': {err}"))
                })?;
                r["branch_time"] = json!(bt);
            }
            if let Some(lsn) = opt_str(p, "lsn")? {
                let valid = lsn.split_once('/').is_some_and(|(a, b)| {
                    !a.is_empty() && !b.is_empty() && u32::from_str_radix(a, 16).is_ok() && u32::from_str_radix(b, 16).is_ok()
                });
                if !valid {
                    return Err(ApiErr::invalid(format!("Invalid parent_instance_ref.lsn '{lsn}': expected a WAL LSN like 0/2A156E")));
                }
                r["effective_lsn"] = json!(lsn);
                e["branch"] = json!({"lsn": lsn});
            }
            rec["parent_instance_ref"] = r;
        }
        rec[super::http::INTERNAL] = e;
        t.put(COLLECTION, &name, rec.clone());
        super::permissions::grant_owner(t, "database-instances", &name, &caller.user_name);
        Ok(rec)
    })?;
    spawn_backend(emu.clone(), name, uid, Op::Create);
    ok(view_with_inputs(&emu, &rec))
}

async fn get_one(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let rec = emu
        .store
        .get(COLLECTION, &name)
        .ok_or_else(|| missing(&name))?;
    ok(view(&emu, &rec, now_ms()))
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let size = page_size(&q, "page_size", 100, 1000)?;
    let after = decode_token(q.get("page_token"))?;
    let (page, more) = emu.store.page(COLLECTION, after.as_deref(), size, |_| true);
    let now = now_ms();
    let mut out = json!({});
    if !page.is_empty() {
        out["database_instances"] = page.iter().map(|(_, r)| view(&emu, r, now)).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

async fn find_by_uid(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let uid = q
        .get("uid")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiErr::missing("uid"))?;
    let rec = emu
        .store
        .all(COLLECTION)
        .into_iter()
        .map(|(_, r)| r)
        .find(|r| r["uid"].as_str() == Some(uid.as_str()))
        .ok_or_else(|| {
            ApiErr::not_found(format!(
                "Database instance with uid '{uid}' does not exist."
            ))
        })?;
    ok(view(&emu, &rec, now_ms()))
}

async fn update(
    State(emu): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    raw: Bytes,
) -> ApiResult {
    let q = query(q.as_deref());
    let b = body(&raw)?;
    if let Some(n) = opt_str(&b, "name")? {
        if n != name {
            return Err(ApiErr::invalid(format!(
                "Field 'name' cannot be changed (path names '{name}', body names '{n}')"
            )));
        }
    }
    // `*` = every updatable field present in the body; an explicit list also clears the
    // named fields that are absent (that is how a client clears `custom_tags`).
    let (fields, explicit): (Vec<String>, bool) = match q.get("update_mask").map(|m| m.trim()) {
        Some("*") => (UPDATABLE.iter().map(|s| s.to_string()).collect(), false),
        Some(m) if !m.is_empty() => (
            m.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect(),
            true,
        ),
        _ => (
            b.keys()
                .filter(|k| UPDATABLE.contains(&k.as_str()))
                .cloned()
                .collect(),
            false,
        ),
    };
    for f in &fields {
        if f == "parent_instance_ref" {
            return Err(ApiErr::invalid(
                "Field 'parent_instance_ref' is immutable; recreate the instance to change it",
            ));
        }
        if !UPDATABLE.contains(&f.as_str()) && !OUTPUTS.contains(&f.as_str()) {
            return Err(ApiErr::invalid(format!(
                "Invalid update_mask: unknown field '{f}'"
            )));
        }
    }
    let now = now_ms();
    let ready_ms = emu.cfg.instance_ready_ms as i64;
    let (rec, call_backend) = emu.store.txn(|t| {
        let mut rec = t
            .get(COLLECTION, &name)
            .cloned()
            .ok_or_else(|| missing(&name))?;
        if state_of(&rec, now) == "FAILED" {
            return Err(ApiErr::invalid_state(format!(
                "Database instance '{name}' is in state FAILED and cannot be updated"
            )));
        }
        let before = spec_of(&rec);
        for f in fields.iter().filter(|f| UPDATABLE.contains(&f.as_str())) {
            let given = b.get(f.as_str()).filter(|v| !v.is_null());
            if f == "capacity" {
                match given {
                    Some(v) => rec["capacity"] = json!(validate_capacity(v)?),
                    None if explicit => {
                        return Err(ApiErr::invalid("Field 'capacity' cannot be cleared"))
                    }
                    None => {}
                }
                continue;
            }
            let value = match given {
                Some(v) => validate_input(f, v)?,
                None if explicit => default_input(f),
                None => continue,
            };
            if let Some(e) = internal_mut(&mut rec) {
                let input = e.entry("input").or_insert_with(|| json!({}));
                if value.is_null() {
                    if let Some(i) = input.as_object_mut() {
                        i.remove(f.as_str());
                    }
                } else {
                    input[f.as_str()] = value;
                }
            }
        }
        let after = spec_of(&rec);
        let resized = before.capacity != after.capacity
            || before.node_count != after.node_count
            || before.enable_readable_secondaries != after.enable_readable_secondaries;
        let changed = resized
            || before.stopped != after.stopped
            || before.enable_pg_native_login != after.enable_pg_native_login;
        if let Some(e) = internal_mut(&mut rec) {
            if before.stopped && !after.stopped {
                e.insert("phase".into(), json!("STARTING"));
                e.insert("busy_until".into(), json!(now + ready_ms));
            } else if !after.stopped && resized {
                e.insert("phase".into(), json!("UPDATING"));
                e.insert("busy_until".into(), json!(now + ready_ms));
            } else if !before.stopped && after.stopped {
                e.insert("phase".into(), json!("UPDATING"));
            }
            if changed {
                let pending = e.get("pending").and_then(Value::as_i64).unwrap_or(0);
                e.insert("pending".into(), json!(pending + 1));
            }
        }
        t.put(COLLECTION, &name, rec.clone());
        Ok((rec, changed))
    })?;
    if call_backend {
        let uid = rec["uid"].as_str().unwrap_or_default().to_string();
        spawn_backend(emu.clone(), name, uid, Op::Update);
    }
    ok(view_with_inputs(&emu, &rec))
}

async fn delete(State(emu): Shared, Path(name): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    if qbool(&q, "purge")? == Some(false) {
        return Err(ApiErr::invalid(
            "purge=false is not supported: deleting a database instance always purges it",
        ));
    }
    let force = qbool(&q, "force")?.unwrap_or(false);
    let removed = emu.store.txn(|t| {
        let rec = t.get(COLLECTION, &name).cloned().ok_or_else(|| missing(&name))?;
        // The instance and, with force, every descendant (children of children too).
        let mut doomed = vec![(name.clone(), rec["uid"].as_str().unwrap_or_default().to_string())];
        let mut i = 0;
        while i < doomed.len() {
            let parent_uid = doomed[i].1.clone();
            let children: Vec<(String, String)> = t
                .values(COLLECTION)
                .filter(|(_, c)| c.pointer("/parent_instance_ref/uid").and_then(Value::as_str) == Some(parent_uid.as_str()))
                .map(|(k, c)| (k.clone(), c["uid"].as_str().unwrap_or_default().to_string()))
                .collect();
            if !children.is_empty() && !force {
                let names: Vec<&str> = children.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ApiErr::invalid_state(format!(
                    "Database instance '{}' has child instances ({}); delete them first or pass force=true",
                    doomed[i].0,
                    names.join(", ")
                )));
            }
            doomed.extend(children);
            i += 1;
        }
        for (n, _) in &doomed {
            t.delete(COLLECTION, n);
            super::permissions::forget(t, "database-instances", n);
        }
        Ok::<_, ApiErr>(doomed)
    })?;
    // Children first, so no server outlives the parent it was cloned from.
    for (_, uid) in removed.iter().rev() {
        let lock = emu.instance_op_lock(uid);
        let _turn = lock.lock().await;
        emu.backend.delete_instance(uid, true).await?;
    }
    ok(json!({}))
}

/// Lifetime of a database credential (the real service: about an hour).
pub(crate) const CREDENTIAL_TTL_MS: i64 = 3600 * 1000;
/// Per caller: the nonce its current token is derived from and when it expires (no secret).
pub(crate) const DB_CREDENTIALS: &str = "db_credentials";

/// The token of `user` for `nonce`: HMAC-SHA256 under the emulator's credential key.
pub(crate) fn credential_token(key: &CredentialKey, user: &str, nonce: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, b) in key.0.iter().enumerate() {
        ipad[i] ^= b;
        opad[i] ^= b;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(user.as_bytes())
        .chain_update([0u8])
        .chain_update(nonce.as_bytes())
        .finalize();
    let mac = Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize();
    format!("eyJkYiI6ImVtdSJ9.{}", hex::encode(mac))
}

async fn credential(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let mut names: Vec<String> = match b.get("instance_names") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiErr::invalid("instance_names must be a list of strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiErr::invalid("instance_names must be a list of strings")),
    };
    // Claims name synced tables; their instance is the one to log in to.
    if let Some(claims) = b.get("claims").and_then(Value::as_array) {
        for c in claims {
            for r in c
                .get("resources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(table) = r.get("table_name").and_then(Value::as_str) {
                    let st = emu
                        .store
                        .get(super::catalogs::SYNCED, table)
                        .ok_or_else(|| {
                            ApiErr::not_found(format!("Table '{table}' does not exist."))
                        })?;
                    if let Some(i) = st
                        .get("effective_database_instance_name")
                        .and_then(Value::as_str)
                    {
                        names.push(i.to_string());
                    }
                }
            }
        }
    }
    if names.is_empty() {
        return Err(ApiErr::invalid(
            "Missing required field: instance_names (or claims)",
        ));
    }
    let now = now_ms();
    let mut uids = Vec::with_capacity(names.len());
    for n in &names {
        let rec = emu.store.get(COLLECTION, n).ok_or_else(|| missing(n))?;
        let state = state_of(&rec, now);
        if state != "AVAILABLE" && state != "UPDATING" {
            return Err(ApiErr::invalid_state(format!(
                "Database instance '{n}' is not available (state {state}); credentials can be generated once it is AVAILABLE"
            )));
        }
        uids.push(rec["uid"].as_str().unwrap_or_default().to_string());
    }
    // PostgreSQL keeps one password per role, so a caller has one token at a time: while it
    // is live it is handed out again with its validity extended, and never replaced, so
    // every token works until the expiration_time it was returned with — also across
    // emulator processes, as the nonce it is derived from is in the store.
    let _turn = emu.credential_turn.lock().await;
    let now = now_ms();
    let live_nonce = emu
        .store
        .get(DB_CREDENTIALS, &caller.user_name)
        .filter(|r| r["expires_ms"].as_i64().unwrap_or(0) > now)
        .and_then(|r| r["nonce"].as_str().map(str::to_string));
    let nonce = live_nonce.unwrap_or_else(|| random_hex(16));
    let token = credential_token(&emu.credential_key, &caller.user_name, &nonce);
    let expires_ms = now + CREDENTIAL_TTL_MS;
    let expires = rfc3339(expires_ms);
    for uid in uids {
        emu.backend
            .set_credential(&uid, &caller.user_name, &token, &expires)
            .await?;
    }
    emu.store.txn(|t| {
        t.put(
            DB_CREDENTIALS,
            &caller.user_name,
            json!({"nonce": nonce, "expires_ms": expires_ms}),
        );
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({"token": token, "expiration_time": expires}))
}
