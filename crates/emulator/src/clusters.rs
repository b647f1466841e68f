//! Clusters and instance pools (contract part 2 §6).
//!
//! Clusters: create / get / list / edit / resize / start / delete (= terminate) /
//! permanent-delete under `/api/2.1/clusters`. A cluster's state is computed from its last
//! transition `{target, via, since}`: the transitional state `via` (PENDING, RESTARTING,
//! RESIZING, TERMINATING) shows for one `--transition-ms`, then the target (RUNNING,
//! TERMINATED). An edit is accepted only while RUNNING (it restarts) or TERMINATED (it stays
//! so); otherwise 400 INVALID_STATE, as the service answers. A missing cluster is 400
//! INVALID_PARAMETER_VALUE "... does not exist" (the service's quirk).
//!
//! Instance pools: create / get / list / edit / delete under `/api/2.0/instance-pools`.
//! Synchronous; the service fills `enable_elastic_disk: true` and a 60-minute idle
//! autotermination; an edit takes the full set of editable fields and refuses a change of
//! any other; a deleted pool reads back as DELETED and leaves the list.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, decode_token, encode_token, internal, internal_mut, now_ms, ok, page_size, query,
    random_hex, strip_internal, ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};
use super::store::Txn;

pub const CLUSTERS: &str = "clusters";
pub const POOLS: &str = "instance_pools";

/// Fields of a cluster spec (create and edit); anything else is refused.
const CLUSTER_FIELDS: &[&str] = &[
    "apply_policy_default_values",
    "autoscale",
    "autotermination_minutes",
    "aws_attributes",
    "azure_attributes",
    "cluster_log_conf",
    "cluster_name",
    "custom_tags",
    "data_security_mode",
    "dependency_mode",
    "docker_image",
    "driver_instance_pool_id",
    "driver_node_type_flexibility",
    "driver_node_type_id",
    "enable_elastic_disk",
    "enable_local_disk_encryption",
    "gcp_attributes",
    "init_scripts",
    "instance_pool_id",
    "is_single_node",
    "kind",
    "node_type_id",
    "num_workers",
    "policy_id",
    "remote_disk_throughput",
    "runtime_engine",
    "single_user_name",
    "spark_conf",
    "spark_env_vars",
    "spark_version",
    "ssh_public_keys",
    "total_initial_remote_disk_size",
    "use_ml_runtime",
    "worker_node_type_flexibility",
    "workload_type",
    "clone_from",
];

/// Fields of an instance pool create.
const POOL_FIELDS: &[&str] = &[
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
    "disk_spec",
    "enable_elastic_disk",
    "preloaded_spark_versions",
    "preloaded_docker_images",
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "node_type_flexibility",
    "remote_disk_throughput",
    "total_initial_remote_disk_size",
];
/// What a pool edit may change.
const POOL_EDITABLE: &[&str] = &[
    "instance_pool_name",
    "node_type_id",
    "custom_tags",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "remote_disk_throughput",
    "total_initial_remote_disk_size",
];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.1/clusters/create", post(create))
        .route("/api/2.1/clusters/get", get(get_one))
        .route("/api/2.1/clusters/list", get(list))
        .route("/api/2.1/clusters/edit", post(edit))
        .route("/api/2.1/clusters/resize", post(resize))
        .route("/api/2.1/clusters/start", post(start))
        .route("/api/2.1/clusters/restart", post(restart))
        .route("/api/2.1/clusters/delete", post(terminate))
        .route("/api/2.1/clusters/permanent-delete", post(permanent_delete))
        .route("/api/2.0/instance-pools/create", post(pool_create))
        .route("/api/2.0/instance-pools/get", get(pool_get))
        .route("/api/2.0/instance-pools/list", get(pool_list))
        .route("/api/2.0/instance-pools/edit", post(pool_edit))
        .route("/api/2.0/instance-pools/delete", post(pool_delete))
}

// ---------------------------------------------------------------- clusters

fn cluster_missing(id: &str) -> ApiErr {
    ApiErr::invalid(format!("Cluster {id} does not exist"))
}

/// Whether a cluster exists: for permissions.
pub fn cluster_exists(emu: &Emu, id: &str) -> bool {
    emu.store.get(CLUSTERS, id).is_some()
}

fn id_in(b: &Map<String, Value>, field: &str) -> Result<String, ApiErr> {
    b.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiErr::missing(field))
}

fn live_pool(t: &Txn<'_>, id: &str) -> bool {
    t.get(POOLS, id).is_some_and(|p| !pool_deleted(p))
}

/// Validate a cluster spec and fill what GET shows by default.
fn cluster_spec(t: &Txn<'_>, b: &Map<String, Value>) -> Result<Map<String, Value>, ApiErr> {
    if let Some(k) = b
        .keys()
        .find(|k| !CLUSTER_FIELDS.contains(&k.as_str()) && k.as_str() != "cluster_id")
    {
        return Err(ApiErr::invalid(format!("Unknown field '{k}'")));
    }
    let mut c = b.clone();
    c.remove("cluster_id");
    if c.get("spark_version")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiErr::missing("spark_version"));
    }
    if c.contains_key("num_workers") && c.contains_key("autoscale") {
        return Err(ApiErr::invalid(
            "Only one of num_workers and autoscale may be set",
        ));
    }
    if let Some(a) = c.get("autoscale") {
        let min = a.get("min_workers").and_then(Value::as_i64);
        let max = a.get("max_workers").and_then(Value::as_i64);
        match (min, max) {
            (Some(min), Some(max)) if min >= 0 && max >= min => {}
            _ => {
                return Err(ApiErr::invalid(format!(
                    "Invalid autoscale {a}: need 0 <= min_workers <= max_workers"
                )))
            }
        }
    } else {
        match c.get("num_workers") {
            None => {
                c.insert("num_workers".into(), json!(0));
            }
            Some(n) if n.as_i64().is_some_and(|n| n >= 0) => {}
            Some(n) => {
                return Err(ApiErr::invalid(format!(
                    "Invalid num_workers {n}: a count of 0 or more"
                )))
            }
        }
    }
    for field in ["instance_pool_id", "driver_instance_pool_id"] {
        if let Some(p) = c.get(field).and_then(Value::as_str) {
            if !live_pool(t, p) {
                return Err(ApiErr::invalid(format!(
                    "Instance pool {p} ({field}) does not exist"
                )));
            }
        }
    }
    c.entry("autotermination_minutes").or_insert(json!(120));
    if !c.contains_key("instance_pool_id") {
        c.entry("enable_elastic_disk").or_insert(json!(true));
    }
    Ok(c)
}

/// The state of a cluster at `now`.
fn cluster_state(emu: &Emu, c: &Value, now: i64) -> &'static str {
    let i = internal(c);
    let target = i.get("target").and_then(Value::as_str).unwrap_or("RUNNING");
    let via = i.get("via").and_then(Value::as_str).unwrap_or("PENDING");
    let since = i.get("since").and_then(Value::as_i64).unwrap_or(now);
    let settled = now >= since + emu.cfg.transition_ms as i64;
    match (target, settled) {
        ("TERMINATED", true) => "TERMINATED",
        ("TERMINATED", false) => "TERMINATING",
        (_, true) => "RUNNING",
        (_, false) => match via {
            "RESTARTING" => "RESTARTING",
            "RESIZING" => "RESIZING",
            _ => "PENDING",
        },
    }
}

fn set_transition(c: &mut Value, target: &str, via: &str, now: i64) {
    if let Some(m) = internal_mut(c) {
        m.insert("target".into(), json!(target));
        m.insert("via".into(), json!(via));
        m.insert("since".into(), json!(now));
    }
}

fn cluster_view(emu: &Emu, c: &Value) -> Value {
    let now = now_ms();
    let state = cluster_state(emu, c, now);
    let mut out = strip_internal(c.clone());
    out["state"] = json!(state);
    out["state_message"] = json!(match state {
        "PENDING" => "Finding instances for new nodes",
        "TERMINATED" => "Terminated by user",
        _ => "",
    });
    if state == "TERMINATED" {
        out["termination_reason"] = json!({"code": "USER_REQUEST", "type": "SUCCESS"});
    }
    out
}

async fn create(State(emu): Shared, Extension(caller): Extension<Caller>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let now = now_ms();
    let id = format!("{}-{}-{}", random_hex(2), random_hex(3), random_hex(4));
    emu.store.txn(|t| {
        let spec = cluster_spec(t, &b)?;
        let mut c = Value::Object(spec);
        c["cluster_id"] = json!(id);
        c["creator_user_name"] = json!(caller.user_name);
        c["cluster_source"] = json!("API");
        c["start_time"] = json!(now);
        c["default_tags"] = json!({
            "Vendor": "Databricks",
            "Creator": caller.user_name,
            "ClusterName": c.get("cluster_name").cloned().unwrap_or(json!("")),
            "ClusterId": id,
        });
        set_transition(&mut c, "RUNNING", "PENDING", now);
        t.put(CLUSTERS, &id, c);
        super::permissions::grant_owner(t, "clusters", &id, &caller.user_name);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({"cluster_id": id}))
}

async fn get_one(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let id = q
        .get("cluster_id")
        .cloned()
        .ok_or_else(|| ApiErr::missing("cluster_id"))?;
    let c = emu
        .store
        .get(CLUSTERS, &id)
        .ok_or_else(|| cluster_missing(&id))?;
    ok(cluster_view(&emu, &c))
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let limit = page_size(&q, "page_size", 100, 100)?;
    let after = decode_token(q.get("page_token"))?;
    let (page, more) = emu.store.page(CLUSTERS, after.as_deref(), limit, |_| true);
    let mut out = json!({
        "clusters": page.iter().map(|(_, c)| cluster_view(&emu, c)).collect::<Vec<_>>()
    });
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

/// Load a cluster for a mutation, with its state now.
fn load(emu: &Emu, t: &Txn<'_>, id: &str, now: i64) -> Result<(Value, &'static str), ApiErr> {
    let c = t
        .get(CLUSTERS, id)
        .cloned()
        .ok_or_else(|| cluster_missing(id))?;
    let state = cluster_state(emu, &c, now);
    Ok((c, state))
}

fn unexpected(id: &str, state: &str, action: &str) -> ApiErr {
    ApiErr::invalid_state(format!(
        "Cluster {id} is in unexpected state {state}: cannot {action} it now"
    ))
}

async fn edit(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_in(&b, "cluster_id")?;
    let now = now_ms();
    emu.store.txn(|t| {
        let (old, state) = load(&emu, t, &id, now)?;
        if state != "RUNNING" && state != "TERMINATED" {
            return Err(unexpected(&id, state, "edit"));
        }
        let spec = cluster_spec(t, &b)?;
        let mut c = Value::Object(spec);
        for keep in [
            "cluster_id",
            "creator_user_name",
            "cluster_source",
            "start_time",
            "default_tags",
            super::http::INTERNAL,
        ] {
            if let Some(v) = old.get(keep) {
                c[keep] = v.clone();
            }
        }
        c["default_tags"]["ClusterName"] = c.get("cluster_name").cloned().unwrap_or(json!(""));
        // A running cluster restarts with the new spec; a terminated one stays terminated.
        if state == "RUNNING" {
            set_transition(&mut c, "RUNNING", "RESTARTING", now);
        }
        t.put(CLUSTERS, &id, c);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn resize(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_in(&b, "cluster_id")?;
    let now = now_ms();
    let workers = b.get("num_workers").cloned();
    let autoscale = b.get("autoscale").cloned();
    if workers.is_some() == autoscale.is_some() {
        return Err(ApiErr::invalid(
            "Exactly one of num_workers and autoscale must be set",
        ));
    }
    emu.store.txn(|t| {
        let (mut c, state) = load(&emu, t, &id, now)?;
        if state != "RUNNING" {
            return Err(unexpected(&id, state, "resize"));
        }
        if let Some(m) = c.as_object_mut() {
            m.remove("num_workers");
            m.remove("autoscale");
            match (&workers, &autoscale) {
                (Some(n), _) => m.insert("num_workers".into(), n.clone()),
                (_, Some(a)) => m.insert("autoscale".into(), a.clone()),
                _ => None,
            };
        }
        set_transition(&mut c, "RUNNING", "RESIZING", now);
        t.put(CLUSTERS, &id, c);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

/// Move a cluster toward `target` through `via`, if `allowed(state)`; `None`: already there.
async fn transition(
    emu: &Emu,
    raw: &Bytes,
    target: &str,
    via: &str,
    allowed: fn(&str) -> Option<bool>,
    action: &str,
) -> ApiResult {
    let b = body(raw)?;
    let id = id_in(&b, "cluster_id")?;
    let now = now_ms();
    emu.store.txn(|t| {
        let (mut c, state) = load(emu, t, &id, now)?;
        match allowed(state) {
            Some(true) => {
                set_transition(&mut c, target, via, now);
                if target == "RUNNING" {
                    c["start_time"] = json!(now);
                }
                t.put(CLUSTERS, &id, c);
            }
            None => {}
            Some(false) => return Err(unexpected(&id, state, action)),
        }
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn start(State(emu): Shared, raw: Bytes) -> ApiResult {
    transition(
        &emu,
        &raw,
        "RUNNING",
        "PENDING",
        |s| match s {
            "TERMINATED" => Some(true),
            _ => Some(false),
        },
        "start",
    )
    .await
}

async fn restart(State(emu): Shared, raw: Bytes) -> ApiResult {
    transition(
        &emu,
        &raw,
        "RUNNING",
        "RESTARTING",
        |s| (s == "RUNNING").then_some(true).or(Some(false)),
        "restart",
    )
    .await
}

/// `clusters/delete` terminates; the cluster remains (terminating twice is a no-op).
async fn terminate(State(emu): Shared, raw: Bytes) -> ApiResult {
    transition(
        &emu,
        &raw,
        "TERMINATED",
        "TERMINATING",
        |s| match s {
            "TERMINATED" | "TERMINATING" => None,
            _ => Some(true),
        },
        "terminate",
    )
    .await
}

async fn permanent_delete(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_in(&b, "cluster_id")?;
    emu.store.txn(|t| {
        t.delete(CLUSTERS, &id)
            .ok_or_else(|| cluster_missing(&id))?;
        super::permissions::forget(t, "clusters", &id);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

// ----------------------------------------------------------- instance pools

fn pool_missing(id: &str) -> ApiErr {
    ApiErr::not_found(format!("Instance pool {id} does not exist"))
}

fn pool_deleted(p: &Value) -> bool {
    p.get("state").and_then(Value::as_str) == Some("DELETED")
}

/// Whether a live pool exists: for permissions.
pub fn pool_exists(emu: &Emu, id: &str) -> bool {
    emu.store.get(POOLS, id).is_some_and(|p| !pool_deleted(&p))
}

fn non_negative(m: &Map<String, Value>, f: &str) -> Result<(), ApiErr> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_i64().is_some_and(|n| n >= 0) => Ok(()),
        Some(v) => Err(ApiErr::invalid(format!(
            "Field '{f}' must be a non-negative integer, got {v}"
        ))),
    }
}

/// Checks common to create and edit: the name, the node type, the counts.
fn check_pool(p: &Map<String, Value>) -> Result<(), ApiErr> {
    for f in ["instance_pool_name", "node_type_id"] {
        if p.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ApiErr::missing(f));
        }
    }
    for f in [
        "min_idle_instances",
        "max_capacity",
        "idle_instance_autotermination_minutes",
    ] {
        non_negative(p, f)?;
    }
    let min = p.get("min_idle_instances").and_then(Value::as_i64);
    let max = p.get("max_capacity").and_then(Value::as_i64);
    if let (Some(min), Some(max)) = (min, max) {
        if max < min {
            return Err(ApiErr::invalid(format!(
                "max_capacity ({max}) must be at least min_idle_instances ({min})"
            )));
        }
    }
    Ok(())
}

fn pool_name_taken(t: &Txn<'_>, name: &str, except: Option<&str>) -> bool {
    t.values(POOLS).any(|(k, p)| {
        Some(k.as_str()) != except
            && !pool_deleted(p)
            && p["instance_pool_name"].as_str() == Some(name)
    })
}

fn pool_view(p: &Value) -> Value {
    let mut out = strip_internal(p.clone());
    let idle = p["min_idle_instances"].as_i64().unwrap_or(0);
    out["stats"] = json!({"idle_count": idle, "used_count": 0,
                          "pending_idle_count": 0, "pending_used_count": 0});
    out
}

async fn pool_create(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    if let Some(k) = b.keys().find(|k| !POOL_FIELDS.contains(&k.as_str())) {
        return Err(ApiErr::invalid(format!("Unknown field '{k}'")));
    }
    check_pool(&b)?;
    let name = b["instance_pool_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = format!("{}-{}-pool-{}", random_hex(2), random_hex(3), random_hex(4));
    emu.store.txn(|t| {
        if pool_name_taken(t, &name, None) {
            return Err(ApiErr::exists(format!(
                "Instance pool with name '{name}' already exists"
            )));
        }
        let mut p = b.clone();
        // The service's defaults (the bundle does not see them as drift: remote extras).
        p.entry("enable_elastic_disk").or_insert(json!(true));
        p.entry("idle_instance_autotermination_minutes")
            .or_insert(json!(60));
        p.entry("min_idle_instances").or_insert(json!(0));
        p.insert("instance_pool_id".into(), json!(id));
        p.insert("state".into(), json!("ACTIVE"));
        p.insert(
            "default_tags".into(),
            json!({"Vendor": "Databricks", "DatabricksInstancePoolCreatorId": caller.user_name,
                   "DatabricksInstancePoolId": id}),
        );
        t.put(POOLS, &id, Value::Object(p));
        super::permissions::grant_owner(t, "instance-pools", &id, &caller.user_name);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({"instance_pool_id": id}))
}

async fn pool_get(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let id = q
        .get("instance_pool_id")
        .cloned()
        .ok_or_else(|| ApiErr::missing("instance_pool_id"))?;
    let p = emu.store.get(POOLS, &id).ok_or_else(|| pool_missing(&id))?;
    ok(pool_view(&p))
}

async fn pool_list(State(emu): Shared) -> ApiResult {
    let pools: Vec<Value> = emu
        .store
        .all(POOLS)
        .iter()
        .filter(|(_, p)| !pool_deleted(p))
        .map(|(_, p)| pool_view(p))
        .collect();
    ok(json!({"instance_pools": pools}))
}

/// The full set of editable fields replaces the current ones; a field fixed at create must
/// come unchanged (or not at all).
async fn pool_edit(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_in(&b, "instance_pool_id")?;
    if let Some(k) = b
        .keys()
        .find(|k| !POOL_FIELDS.contains(&k.as_str()) && k.as_str() != "instance_pool_id")
    {
        return Err(ApiErr::invalid(format!("Unknown field '{k}'")));
    }
    check_pool(&b)?;
    let name = b["instance_pool_name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    emu.store.txn(|t| {
        let old = t
            .get(POOLS, &id)
            .filter(|p| !pool_deleted(p))
            .cloned()
            .ok_or_else(|| pool_missing(&id))?;
        for (k, v) in &b {
            if !POOL_EDITABLE.contains(&k.as_str())
                && k != "instance_pool_id"
                && old.get(k) != Some(v)
            {
                return Err(ApiErr::invalid(format!(
                    "Field '{k}' of an instance pool cannot be changed: recreate the pool"
                )));
            }
        }
        if pool_name_taken(t, &name, Some(&id)) {
            return Err(ApiErr::exists(format!(
                "Instance pool with name '{name}' already exists"
            )));
        }
        let mut p = old.clone();
        if let Some(m) = p.as_object_mut() {
            for f in POOL_EDITABLE {
                m.remove(*f);
                if let Some(v) = b.get(*f) {
                    m.insert((*f).to_string(), v.clone());
                }
            }
            m.entry("idle_instance_autotermination_minutes")
                .or_insert(json!(60));
            m.entry("min_idle_instances").or_insert(json!(0));
        }
        t.put(POOLS, &id, p);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn pool_delete(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let id = id_in(&b, "instance_pool_id")?;
    emu.store.txn(|t| {
        let mut p = t
            .get(POOLS, &id)
            .filter(|p| !pool_deleted(p))
            .cloned()
            .ok_or_else(|| pool_missing(&id))?;
        p["state"] = json!("DELETED");
        t.put(POOLS, &id, p);
        super::permissions::forget(t, "instance-pools", &id);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
