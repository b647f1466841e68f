//! Planning: bundle + state (+ concurrent remote reads) → [`Plan`].
//!
//! Per resource in config ∪ state: create (new, or gone remotely: "deleted
//! outside lakebundle"), update (field diff), replace (immutable field,
//! no update API, or an unknown value in an immutable field), delete (in state
//! only), no-op. Drift (remote ≠ last apply, for fields the config sets) is
//! reported and planned back. Deferred `${resources...}` references are filled
//! from state outputs when their target is unchanged, else stay unknown
//! ("known after apply").

use std::borrow::Cow;
use std::collections::HashMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use rayon::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::diff::{
    diff_fields, drift_fields, effective_current, get_path, is_unknown, restrict, values_equal,
};
use super::{Action, Conflict, EngineError, FieldChange, Plan, ResourceChange, FORMAT_VERSION};
use crate::api::Client;
use crate::config::model::{Bundle, ResourceConfig};
use crate::graph::ResourceGraph;
use crate::resources::common::{destroy_protection, PRINCIPALS};
use crate::resources::{kind_impl, DeploymentInfo, Kind, ResourceAddr, ResourceKind};
use crate::state::{DeploymentState, ResourceState};

pub use crate::resources::common::ENGINE_FIELDS;

#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Read the remote (false: plan from state alone, no remote calls).
    pub refresh: bool,
    /// Concurrent remote reads.
    pub parallelism: usize,
    /// Keep `before` of the resources that do not change: only a plan shown
    /// whole (`-o json`) or saved needs it; a text plan and the apply never
    /// look at it, and at 10,000 resources it is a copy of every object.
    pub unchanged_before: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            refresh: true,
            parallelism: 10,
            unchanged_before: true,
        }
    }
}

/// What a remote read found.
#[derive(Debug, Clone)]
enum Observed {
    /// Not read (`--refresh=false`, or nothing to read yet).
    NotRead,
    Missing,
    Present {
        raw: Value,
        permissions: Option<Vec<Value>>,
    },
}

/// `value` without the engine-only fields.
pub fn api_view(value: &Value) -> Cow<'_, Value> {
    match value {
        // Copied only when there is something to leave out (most resources
        // have neither field, and this runs for every resource of a plan).
        Value::Object(m) if ENGINE_FIELDS.iter().any(|f| m.contains_key(*f)) => {
            Cow::Owned(Value::Object(
                m.iter()
                    .filter(|(k, _)| !ENGINE_FIELDS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        other => Cow::Borrowed(other),
    }
}

/// [`api_view`] of a value the caller owns (no copy).
fn into_api_view(mut value: Value) -> Value {
    if let Value::Object(m) = &mut value {
        for f in ENGINE_FIELDS {
            m.shift_remove(*f);
        }
    }
    value
}

/// The one destroy guard, used by plan, apply (deletes and replacements) and
/// destroy: refuse to `action` a resource protected by `lifecycle.prevent_destroy`
/// or `lifecycle.deny_user_destroy`. The bundle's configuration decides when
/// the resource is in it (setting the flag to false lifts the protection);
/// otherwise the last applied configuration does, so removing a protected
/// resource from the bundle does not lift its protection with it.
pub fn check_destroy_allowed(
    addr: &ResourceAddr,
    action: &str,
    config: Option<&Value>,
    applied: Option<&Value>,
) -> Result<(), EngineError> {
    let protection = match config {
        Some(c) => destroy_protection(c),
        None => applied.and_then(destroy_protection),
    };
    match protection {
        Some(setting) => Err(EngineError::PreventDestroy {
            addr: addr.clone(),
            action: action.into(),
            setting,
        }),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Deferred references

/// One `${resources.<kind>.<key>.<field>}` occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredRef {
    pub target: ResourceAddr,
    pub field: String,
    /// The whole `${...}` text.
    pub text: String,
}

/// Every `${resources...}` reference in a string, in order.
pub fn find_refs(s: &str) -> Vec<DeferredRef> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${resources.") {
        let after = &rest[start..];
        let Some(end) = after.find('}') else { break };
        let text = &after[..=end];
        let inner = &text[2..text.len() - 1];
        let mut parts = inner.splitn(4, '.');
        let (_, kind, key, field) = (parts.next(), parts.next(), parts.next(), parts.next());
        if let (Some(kind), Some(key), Some(field)) = (kind.and_then(Kind::from_key), key, field) {
            out.push(DeferredRef {
                target: ResourceAddr::new(kind, key),
                field: field.to_string(),
                text: text.to_string(),
            });
        }
        rest = &after[end + 1..];
    }
    out
}

/// Replace deferred references for which `lookup` knows a value. A reference
/// that is the whole string keeps the value's type; inside a longer string it
/// is substituted as text. Unknown references stay as written.
pub fn fill_refs(value: &Value, lookup: &dyn Fn(&ResourceAddr, &str) -> Option<Value>) -> Value {
    let mut out = value.clone();
    fill_refs_in_place(&mut out, lookup);
    out
}

/// [`fill_refs`] on a value the caller owns (no copy of the tree).
pub fn fill_refs_in_place(
    value: &mut Value,
    lookup: &dyn Fn(&ResourceAddr, &str) -> Option<Value>,
) {
    match value {
        Value::String(s) if s.contains("${resources.") => {
            let refs = find_refs(s);
            if let [only] = refs.as_slice() {
                if only.text == *s {
                    if let Some(v) = lookup(&only.target, &only.field) {
                        *value = v;
                    }
                    return;
                }
            }
            let mut out = s.clone();
            for r in refs {
                if let Some(v) = lookup(&r.target, &r.field) {
                    let text = match v {
                        Value::String(t) => t,
                        other => other.to_string(),
                    };
                    out = out.replace(&r.text, &text);
                }
            }
            *value = Value::String(out);
        }
        Value::Array(a) => a.iter_mut().for_each(|v| fill_refs_in_place(v, lookup)),
        Value::Object(m) => m.values_mut().for_each(|v| fill_refs_in_place(v, lookup)),
        _ => {}
    }
}

/// A referenced field of a deployed resource: its outputs first, then the
/// config it was applied with.
pub fn state_field(rs: &ResourceState, field: &str) -> Option<Value> {
    if field == "id" {
        return Some(Value::String(rs.id.clone()));
    }
    get_path(&rs.outputs, field)
        .or_else(|| get_path(&rs.applied, field))
        .filter(|v| !v.is_null())
        .cloned()
}

/// Dotted paths of every value in `v` still holding a deferred reference.
pub fn unknown_paths(v: &Value) -> Vec<String> {
    // One path buffer, grown and cut back on the way: only an unknown value
    // allocates (this runs over every field of every resource in a plan).
    fn walk(v: &Value, path: &mut String, out: &mut Vec<String>) {
        use std::fmt::Write;
        let len = path.len();
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    walk(c, path, out);
                    path.truncate(len);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    let _ = write!(path, "[{i}]");
                    walk(c, path, out);
                    path.truncate(len);
                }
            }
            other if is_unknown(other) => out.push(path.clone()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut String::new(), &mut out);
    out
}

// ---------------------------------------------------------------------------
// Permissions (Permissions API, diffed like fields)

fn principal(entry: &Value) -> Option<(&'static str, String)> {
    PRINCIPALS.iter().find_map(|p| {
        entry
            .get(*p)
            .and_then(Value::as_str)
            .map(|n| (*p, n.to_string()))
    })
}

fn sort_acl(mut acl: Vec<Value>) -> Vec<Value> {
    acl.sort_by_key(|e| {
        (
            principal(e),
            e.get("level").and_then(Value::as_str).map(str::to_string),
        )
    });
    acl.dedup();
    acl
}

/// The config's `permissions` block as a sorted `[{level, <principal>}]`.
pub fn desired_permissions(config: &Value) -> Option<Vec<Value>> {
    let list = config.get("permissions")?.as_array()?;
    let acl = list
        .iter()
        .filter_map(|e| {
            let (p, name) = principal(e)?;
            let level = e.get("level")?.as_str()?;
            Some(json!({"level": level, p: name}))
        })
        .collect();
    Some(sort_acl(acl))
}

/// Direct (not inherited) grants from a Permissions API response.
pub fn permissions_from_api(resp: &Value) -> Vec<Value> {
    let mut acl = Vec::new();
    for e in resp
        .get("access_control_list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some((p, name)) = principal(e) else {
            continue;
        };
        for perm in e
            .get("all_permissions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if perm
                .get("inherited")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                continue;
            }
            if let Some(level) = perm.get("permission_level").and_then(Value::as_str) {
                acl.push(json!({"level": level, p: name}));
            }
        }
        // Some responses carry the level directly.
        if let Some(level) = e.get("permission_level").and_then(Value::as_str) {
            acl.push(json!({"level": level, p: name}));
        }
    }
    sort_acl(acl)
}

/// `access_control_list` of `PUT /api/2.0/permissions/{type}/{id}`.
pub fn permissions_acl(acl: &[Value]) -> Value {
    let list: Vec<Value> = acl
        .iter()
        .filter_map(|e| {
            let (p, name) = principal(e)?;
            Some(json!({p: name, "permission_level": e.get("level")?}))
        })
        .collect();
    Value::Array(list)
}

pub async fn read_permissions(
    client: &Client,
    object_type: &str,
    id: &str,
) -> Result<Vec<Value>, crate::api::ApiError> {
    client
        .permissions()
        .get(object_type, id)
        .await
        .map(|v| permissions_from_api(&v))
}

/// The permissions change, if any: only principals the config or the last
/// apply names are compared (the server adds owners of its own).
fn permissions_change(
    desired: Option<Vec<Value>>,
    current: Option<&Vec<Value>>,
    applied: Option<&Value>,
) -> Option<FieldChange> {
    let applied_acl = applied.and_then(desired_permissions);
    if desired.is_none() && applied_acl.is_none() {
        return None;
    }
    let desired = desired.unwrap_or_default();
    let named: Vec<(&str, String)> = desired
        .iter()
        .chain(applied_acl.iter().flatten())
        .filter_map(principal)
        .collect();
    let current: Vec<Value> = match current {
        Some(c) => c
            .iter()
            .filter(|e| principal(e).is_some_and(|p| named.contains(&p)))
            .cloned()
            .collect(),
        None => applied_acl.clone().unwrap_or_default(),
    };
    (current != desired).then(|| FieldChange {
        path: "permissions".into(),
        old: (!current.is_empty()).then(|| Value::Array(current)),
        new: (!desired.is_empty()).then(|| Value::Array(desired)),
        unknown: false,
        forces_replacement: false,
    })
}

// ---------------------------------------------------------------------------
// Hash and freshness

/// sha256 (hex) of the canonical resolved configuration of every resource.
/// The canonical JSON (keys sorted, compact) is streamed into the hasher:
/// building it as a sorted copy first cost a fifth of a no-op plan.
pub fn config_hash(bundle: &Bundle) -> String {
    let mut h = Sha256::new();
    h.update(b"{\"bundle\":");
    write_canonical(&mut h, &Value::String(bundle.name.clone()));
    h.update(b",\"resources\":{");
    let mut addrs: Vec<(String, &Value)> = bundle
        .resources
        .iter()
        .map(|(a, rc)| (a.to_string(), &rc.value))
        .collect();
    addrs.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (addr, value)) in addrs.iter().enumerate() {
        if i > 0 {
            h.update(b",");
        }
        write_json_string(&mut h, addr);
        h.update(b":");
        write_canonical(&mut h, value);
    }
    h.update(b"},\"target\":");
    write_canonical(&mut h, &Value::String(bundle.target.clone()));
    h.update(b"}");
    hex::encode(h.finalize())
}

fn write_json_string(h: &mut Sha256, s: &str) {
    // Straight into the hasher (its `io::Write`), no text in between;
    // serialising a &str to JSON cannot fail.
    let _ = serde_json::to_writer(&mut *h, s);
}

/// `v` as compact JSON with every object's keys sorted, into `h`.
fn write_canonical(h: &mut Sha256, v: &Value) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            h.update(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                write_json_string(h, k);
                h.update(b":");
                write_canonical(h, &m[k]);
            }
            h.update(b"}");
        }
        Value::Array(a) => {
            h.update(b"[");
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                write_canonical(h, item);
            }
            h.update(b"]");
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *h, scalar);
        }
    }
}

/// Refuse a saved plan made against other state or another configuration.
pub fn check_plan_fresh(
    plan: &Plan,
    state: &DeploymentState,
    config_hash: &str,
) -> Result<(), EngineError> {
    let lineage = state.saved_lineage();
    if plan.lineage != lineage {
        return Err(EngineError::StalePlan {
            reason: format!(
                "it was made for state lineage {}, the state now has lineage {}",
                plan.lineage.as_deref().unwrap_or("(none)"),
                lineage.as_deref().unwrap_or("(none)")
            ),
        });
    }
    if plan.serial != state.serial {
        return Err(EngineError::StalePlan {
            reason: format!(
                "the state changed since (serial {} then, {} now)",
                plan.serial, state.serial
            ),
        });
    }
    if plan.config_hash != config_hash {
        return Err(EngineError::StalePlan {
            reason: "the configuration changed since".into(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Planning

/// Resource kinds in the bundle that lakebundle cannot deploy.
fn unsupported_kinds(bundle: &Bundle) -> Vec<String> {
    let Some(resources) = bundle.tree.get("resources").and_then(|n| n.as_map()) else {
        return vec![];
    };
    resources
        .entries
        .iter()
        .filter(|(k, v)| {
            Kind::from_key(&k.name).is_none() && v.as_map().is_some_and(|m| !m.is_empty())
        })
        .map(|(k, _)| k.name.clone())
        .collect()
}

async fn observe(
    client: &Client,
    addr: &ResourceAddr,
    id: &str,
    want_permissions: bool,
) -> Result<Observed, EngineError> {
    let kind = kind_impl(addr.kind);
    let read_err = |source: crate::api::ApiError| EngineError::Read {
        addr: addr.clone(),
        source: Box::new(source),
    };
    let raw = match kind.read(client, id).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return Ok(Observed::Missing),
        Err(e) if e.is_not_found() => return Ok(Observed::Missing),
        Err(e) => return Err(read_err(e)),
    };
    let permissions = match (want_permissions, kind.permissions_object_type()) {
        (true, Some(t)) => {
            match read_permissions(client, t, &kind.permissions_object_id_of(id, &raw)).await {
                Ok(acl) => Some(acl),
                Err(e) if e.is_not_found() => Some(vec![]),
                Err(e) => return Err(read_err(e)),
            }
        }
        _ => None,
    };
    Ok(Observed::Present { raw, permissions })
}

/// One finished read: the resource and what the workspace has for it.
type Read = Result<(ResourceAddr, Observed), EngineError>;

/// Reads of every deployed resource, in flight (`parallelism` at a time);
/// each arrives on `rx` when it finishes, so planning can go on while the
/// rest are still out. Each read is a task of its own, so answers are parsed
/// on every worker thread.
///
/// Started from the state alone ([`PlanReads::start`]), before the bundle
/// is loaded: `plan` sends them out while the bundle loads. A resource's
/// permissions are read with it when its last apply set them; one whose
/// config newly sets them is read again with them at plan.
pub struct PlanReads {
    rx: tokio::sync::mpsc::UnboundedReceiver<Read>,
    /// Per resource read: the id read and whether its permissions were.
    sent: HashMap<ResourceAddr, (String, bool)>,
}

impl std::fmt::Debug for PlanReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanReads")
            .field("reads", &self.sent.len())
            .finish()
    }
}

impl PlanReads {
    /// Read every resource of `state`, with its permissions when
    /// `with_permissions` says so.
    fn start_with(
        state: &DeploymentState,
        client: &Client,
        parallelism: usize,
        with_permissions: impl Fn(&ResourceAddr, &ResourceState) -> bool,
    ) -> PlanReads {
        let jobs: Vec<(ResourceAddr, String, bool)> = state
            .resources
            .iter()
            .map(|(addr, rs)| (addr.clone(), rs.id.clone(), with_permissions(addr, rs)))
            .collect();
        let sent = jobs
            .iter()
            .map(|(addr, id, perms)| (addr.clone(), (id.clone(), *perms)))
            .collect();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = client.clone();
        tokio::spawn(async move {
            let mut reads = stream::iter(jobs)
                .map(|(addr, id, perms)| spawn_read(&client, addr, id, perms))
                .buffer_unordered(parallelism.max(1));
            while let Some(joined) = reads.next().await {
                let read = match joined {
                    Ok(read) => read,
                    // A read that panicked panics the plan, as it would inline.
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    // Cancelled: only when the runtime shuts down, with the plan.
                    Err(_) => break,
                };
                // The planner stopped (an error): stop reading.
                if tx.send(read).is_err() {
                    break;
                }
            }
        });
        PlanReads { rx, sent }
    }

    /// Start reading every resource of `state` before the bundle is known:
    /// permissions where the last apply set them.
    pub fn start(state: &DeploymentState, client: &Client, parallelism: usize) -> PlanReads {
        PlanReads::start_with(state, client, parallelism, |_, rs| {
            rs.applied.get("permissions").is_some()
        })
    }

    /// Resources of `bundle` these reads do not serve as they are: read with
    /// another id than the state's (not expected: the reads are started from
    /// the same state), or without the permissions the config now sets.
    /// With each, whether to read its permissions and whether a first read
    /// of it is on its way.
    fn to_read_again(
        &self,
        bundle: &Bundle,
        state: &DeploymentState,
    ) -> Vec<(ResourceAddr, String, bool, bool)> {
        state
            .resources
            .iter()
            .filter_map(|(addr, rs)| {
                let sent = self.sent.get(addr);
                let again = match sent {
                    None => true,
                    Some((id, perms)) => {
                        *id != rs.id || (!perms && wants_permissions(bundle, addr, rs))
                    }
                };
                again.then(|| {
                    let perms = wants_permissions(bundle, addr, rs);
                    (addr.clone(), rs.id.clone(), perms, sent.is_some())
                })
            })
            .collect()
    }
}

/// Read one resource in a task of its own (answers are parsed on every
/// worker thread).
fn spawn_read(
    client: &Client,
    addr: ResourceAddr,
    id: String,
    perms: bool,
) -> tokio::task::JoinHandle<Read> {
    let client = client.clone();
    tokio::spawn(async move { observe(&client, &addr, &id, perms).await.map(|o| (addr, o)) })
}

/// A finished read task's read (a panic in it goes on here).
fn joined(task: Result<Read, tokio::task::JoinError>) -> Read {
    match task {
        Ok(read) => read,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A resource's permissions are read when its config or its last apply set
/// them.
fn wants_permissions(bundle: &Bundle, addr: &ResourceAddr, rs: &ResourceState) -> bool {
    bundle
        .resources
        .get(addr)
        .is_some_and(|rc| rc.value.get("permissions").is_some())
        || rs.applied.get("permissions").is_some()
}

/// Run CPU-bound work from async code without stalling the tasks queued
/// behind it on this worker (the reads in flight): on a multi-threaded
/// runtime the worker's queue moves to another thread meanwhile.
fn off_the_reactor<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Make the plan. `client` may be `None` only with `refresh: false`.
pub async fn make_plan(
    bundle: &Bundle,
    state: &DeploymentState,
    client: Option<&Client>,
    opts: &PlanOptions,
) -> Result<Plan, EngineError> {
    make_plan_with_reads(bundle, state, client, opts, None).await
}

/// [`make_plan`] with the reads already sent from `state` ([`PlanReads::start`]).
pub async fn make_plan_with_reads(
    bundle: &Bundle,
    state: &DeploymentState,
    client: Option<&Client>,
    opts: &PlanOptions,
    early: Option<PlanReads>,
) -> Result<Plan, EngineError> {
    let unsupported = unsupported_kinds(bundle);
    if !unsupported.is_empty() {
        return Err(EngineError::Unsupported { kinds: unsupported });
    }
    // The reads go out first; the graph and the hash are made while they
    // are in flight (worker threads carry them).
    // Resources the early reads do not serve are read again; their first
    // answers are not used.
    let mut again = futures::stream::FuturesUnordered::new();
    let mut stale = std::collections::HashSet::new();
    let mut reads = match (opts.refresh, client, early) {
        (true, Some(c), Some(early)) => {
            for (addr, id, perms, first_read) in early.to_read_again(bundle, state) {
                if first_read {
                    stale.insert(addr.clone());
                }
                again.push(spawn_read(c, addr, id, perms));
            }
            Some(early)
        }
        (true, Some(c), None) => Some(PlanReads::start_with(
            state,
            c,
            opts.parallelism,
            |addr, rs| wants_permissions(bundle, addr, rs),
        )),
        (true, None, _) => return Err(EngineError::NoClient),
        (false, _, _) => None,
    };
    let mut reads_done = false;
    let graph = ResourceGraph::build(bundle).map_err(|diags| EngineError::Graph { diags })?;
    let hash = config_hash(bundle);

    // A resource's plan needs its own read and its dependencies' actions
    // only: each is planned as soon as both are in, in parallel batches,
    // while the other reads are still in flight. The changes are then
    // listed in topological order.
    let order = graph.topo_order();
    let mut waiting: HashMap<&ResourceAddr, (usize, Vec<ResourceAddr>)> =
        HashMap::with_capacity(order.len());
    let mut dependents: HashMap<ResourceAddr, Vec<&ResourceAddr>> = HashMap::new();
    for addr in &order {
        let deps = graph.dependencies(addr);
        for d in &deps {
            dependents.entry(d.clone()).or_default().push(addr);
        }
        waiting.insert(addr, (deps.len(), deps));
    }
    let reading = reads.is_some();
    let needs_read = |addr: &ResourceAddr| reading && state.resources.contains_key(addr);
    let mut observed: HashMap<ResourceAddr, Observed> =
        HashMap::with_capacity(state.resources.len());
    let mut ready: Vec<&ResourceAddr> = order
        .iter()
        .filter(|a| waiting[a].0 == 0 && !needs_read(a))
        .collect();
    let mut actions: HashMap<ResourceAddr, Action> = HashMap::with_capacity(order.len());
    let mut planned: HashMap<ResourceAddr, ResourceChange> = HashMap::with_capacity(order.len());
    let mut settled = 0;
    while settled < order.len() {
        if ready.is_empty() {
            // Nothing can be planned before another read comes in.
            let Some(reads) = reads.as_mut() else { break };
            let mut arrived = Vec::new();
            tokio::select! {
                read = reads.rx.recv(), if !reads_done => match read {
                    Some(read) => arrived.push((read?, false)),
                    None => reads_done = true,
                },
                Some(read) = again.next(), if !again.is_empty() => {
                    arrived.push((joined(read)?, true));
                }
                else => break,
            }
            while let Ok(more) = reads.rx.try_recv() {
                arrived.push((more?, false));
            }
            for ((addr, obs), read_again) in arrived {
                // The first answer for a resource read again is not used,
                // whether it comes before the second or after it.
                if !read_again && stale.remove(&addr) {
                    continue;
                }
                if let Some((addr, (0, _))) = waiting.get_key_value(&addr) {
                    ready.push(addr);
                }
                observed.insert(addr, obs);
            }
            continue;
        }
        // Each read is taken out as its resource is planned: at 10,000
        // resources the answers held to the end were a fifth of the peak.
        let batch: Vec<(&ResourceAddr, Option<Observed>)> = std::mem::take(&mut ready)
            .into_iter()
            .map(|addr| (addr, observed.remove(addr)))
            .collect();
        let plan_batch = || {
            batch
                .into_par_iter()
                .map(|(addr, obs)| {
                    let Some(rc) = bundle.resources.get(addr) else {
                        return Ok((addr, None));
                    };
                    let deps = waiting[addr].1.clone();
                    let mut obs = obs.unwrap_or(Observed::NotRead);
                    plan_resource(bundle, rc, state, &mut obs, &actions, deps, opts)
                        .map(|c| (addr, Some(c)))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let done: Vec<(&ResourceAddr, Option<ResourceChange>)> = off_the_reactor(plan_batch)?;
        for (addr, change) in done {
            settled += 1;
            if let Some(change) = change {
                actions.insert(change.addr.clone(), change.action);
                planned.insert(change.addr.clone(), change);
            }
            for next in dependents.get(addr).into_iter().flatten() {
                let Some(entry) = waiting.get_mut(*next) else {
                    continue;
                };
                entry.0 -= 1;
                if entry.0 == 0 && (!needs_read(next) || observed.contains_key(*next)) {
                    ready.push(next);
                }
            }
        }
    }
    // The reads of resources only the state still has (deletes).
    if let Some(reads) = reads.as_mut() {
        while let Some(read) = reads.rx.recv().await {
            let (addr, obs) = read?;
            observed.insert(addr, obs);
        }
    }

    tracing::debug!(target: "lakebundle::phase", "resources planned");
    let mut changes: Vec<ResourceChange> =
        Vec::with_capacity(bundle.resources.len() + state.resources.len());
    changes.extend(order.iter().filter_map(|addr| planned.remove(addr)));
    for (addr, rs) in &state.resources {
        if bundle.resources.contains_key(addr) {
            continue;
        }
        let gone = matches!(observed.get(addr), Some(Observed::Missing));
        changes.push(delete_change(addr, rs, gone));
    }
    for c in &changes {
        check_prevent_destroy(c, bundle, state)?;
    }
    Ok(Plan {
        format_version: FORMAT_VERSION.to_string(),
        bundle: bundle.name.clone(),
        target: bundle.target.clone(),
        lineage: state.saved_lineage(),
        serial: state.serial,
        config_hash: hash,
        changes,
    })
}

/// A create of a named object (instance, catalog, synced table, app) whose
/// name is already taken remotely would fail mid-deploy, or adopt an object
/// this target does not own: found here, at plan, with the command that
/// adopts it. Jobs are not named: their `find_existing` adopts by the
/// deployment marker after a lost create, which is intended. A create that
/// an interrupted deploy may have made (`pending`) adopts on purpose.
/// `plan` and `deploy` run it on a fresh plan; `bind` does not (binding one
/// object of several conflicting ones must be possible).
pub async fn check_conflicts(
    client: &Client,
    plan: &Plan,
    state: &DeploymentState,
    parallelism: usize,
) -> Result<(), EngineError> {
    let creates: Vec<(&ResourceChange, &'static dyn ResourceKind, &Value)> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Create && !state.resources.contains_key(&c.addr))
        .filter(|c| !state.pending.contains(&c.addr))
        .filter_map(|c| {
            let kind = kind_impl(c.addr.kind);
            let after = c.after.as_ref()?;
            kind.id_from_config(after).map(|_| (c, kind, after))
        })
        .collect();
    let found: Vec<Option<Conflict>> = stream::iter(creates)
        .map(|(c, kind, after)| async move {
            match kind.find_existing(client, after).await {
                Ok(Some(existing)) => Ok(Some(Conflict {
                    addr: c.addr.clone(),
                    id: existing.id,
                    noun: kind.kind().noun().into_owned(),
                })),
                Ok(None) => Ok(None),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(EngineError::Read {
                    addr: c.addr.clone(),
                    source: Box::new(e),
                }),
            }
        })
        .buffer_unordered(parallelism.max(1))
        .try_collect()
        .await?;
    let mut found: Vec<Conflict> = found.into_iter().flatten().collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort_by(|a, b| a.addr.cmp(&b.addr));
    Err(EngineError::AlreadyExists { found })
}

/// The plan of `destroy`: delete everything in state, dependents first.
pub fn make_destroy_plan(bundle: &Bundle, state: &DeploymentState) -> Result<Plan, EngineError> {
    let mut changes = Vec::new();
    for (addr, rs) in &state.resources {
        // The bundle's current config counts too: a protection just added
        // to the YAML holds before it was ever applied.
        let config = bundle.resources.get(addr).map(|rc| &rc.value);
        check_destroy_allowed(addr, "destroy", config, Some(&rs.applied))?;
        changes.push(delete_change(addr, rs, false));
    }
    Ok(Plan {
        format_version: FORMAT_VERSION.to_string(),
        bundle: bundle.name.clone(),
        target: bundle.target.clone(),
        lineage: state.saved_lineage(),
        serial: state.serial,
        config_hash: config_hash(bundle),
        changes,
    })
}

fn check_prevent_destroy(
    c: &ResourceChange,
    bundle: &Bundle,
    state: &DeploymentState,
) -> Result<(), EngineError> {
    let Some(action) = destroying_action(c.action) else {
        return Ok(());
    };
    check_destroy_allowed(
        &c.addr,
        action,
        bundle.resources.get(&c.addr).map(|rc| &rc.value),
        state.get(&c.addr).map(|rs| &rs.applied),
    )
}

/// The verb of an action that destroys the remote object, if it does.
pub fn destroying_action(action: Action) -> Option<&'static str> {
    match action {
        Action::Delete => Some("delete"),
        Action::Replace => Some("replace"),
        _ => None,
    }
}

fn delete_change(addr: &ResourceAddr, rs: &ResourceState, gone: bool) -> ResourceChange {
    ResourceChange {
        addr: addr.clone(),
        action: Action::Delete,
        fields: vec![],
        drift: vec![],
        reason: Some(
            if gone {
                "already deleted outside lakebundle"
            } else {
                "removed from the configuration"
            }
            .into(),
        ),
        id: Some(rs.id.clone()),
        before: Some(rs.applied.clone()),
        after: None,
        after_unknown: vec![],
        replace_paths: vec![],
        depends_on: rs.depends_on.clone(),
    }
}

/// `value` cut down to the fields of `a` and `b` together (what the plan
/// shows as "before": the remote, as far as the config or the last apply
/// speak of it). The same as restricting `value` to the union of the two
/// shapes, without building that union.
fn restrict_to_union(value: &Value, a: &Value, b: Option<&Value>) -> Value {
    match (value, a, b) {
        (Value::Object(v), Value::Object(x), Some(Value::Object(y))) => {
            let mut out = serde_json::Map::new();
            for (k, xk) in x {
                if let Some(vk) = v.get(k) {
                    let sub = match y.get(k) {
                        Some(yk) => restrict_to_union(vk, yk, Some(xk)),
                        None => restrict_to_union(vk, xk, None),
                    };
                    out.insert(k.clone(), sub);
                }
            }
            for (k, yk) in y {
                if x.contains_key(k) {
                    continue;
                }
                if let Some(vk) = v.get(k) {
                    out.insert(k.clone(), restrict_to_union(vk, yk, None));
                }
            }
            Value::Object(out)
        }
        (_, _, Some(_)) => restrict_to_union(value, a, None),
        (_, shape, None) => restrict(value, shape).unwrap_or_else(|| value.clone()),
    }
}

/// The config with deferred references filled where the target's value is
/// already known and will not change in this plan.
fn desired_config(
    bundle: &Bundle,
    rc: &ResourceConfig,
    state: &DeploymentState,
    actions: &HashMap<ResourceAddr, Action>,
) -> Value {
    let lookup = |target: &ResourceAddr, field: &str| -> Option<Value> {
        match actions.get(target) {
            Some(Action::NoOp) | Some(Action::Update) => state_field(state.get(target)?, field),
            _ => None,
        }
    };
    let mut config = managed_config(bundle, &rc.addr, &rc.value);
    fill_refs_in_place(&mut config, &lookup);
    config
}

/// The config as lakebundle sends and diffs it: with the fields the kind
/// manages itself (jobs: the deployment marker that lets lost creates be
/// found again).
pub fn managed_config(bundle: &Bundle, addr: &ResourceAddr, value: &Value) -> Value {
    let metadata = format!(
        "{}/metadata.json",
        bundle.workspace.state_path.trim_end_matches('/')
    );
    kind_impl(addr.kind).with_deployment_marker(
        value,
        &DeploymentInfo {
            addr,
            metadata_file_path: &metadata,
        },
    )
}

fn plan_resource(
    bundle: &Bundle,
    rc: &ResourceConfig,
    state: &DeploymentState,
    obs: &mut Observed,
    actions: &HashMap<ResourceAddr, Action>,
    depends_on: Vec<ResourceAddr>,
    opts: &PlanOptions,
) -> Result<ResourceChange, EngineError> {
    let addr = &rc.addr;
    let kind = kind_impl(addr.kind);
    let rules = kind.rules();
    // Sensitive values are planned (and shown) as their digest only.
    let desired_full = crate::resources::common::redact_sensitive(
        kind.sensitive_fields(),
        desired_config(bundle, rc, state, actions),
    );
    let desired = api_view(&desired_full);
    let after_unknown = unknown_paths(&desired_full);
    let mut change = ResourceChange {
        addr: addr.clone(),
        action: Action::Create,
        fields: vec![],
        drift: vec![],
        reason: None,
        id: None,
        before: None,
        // Set on the way out (it moves `desired_full`).
        after: None,
        after_unknown,
        replace_paths: vec![],
        depends_on,
    };
    let Some(rs) = state.get(addr) else {
        change.fields = diff_fields(&desired, &json!({}), None, rules);
        change.fields.extend(permissions_change(
            desired_permissions(&desired_full),
            None,
            None,
        ));
        if state.pending.contains(addr) {
            change.reason = Some(
                "an interrupted deploy may have created it; an existing one will be adopted".into(),
            );
        }
        change.after = Some(desired_full);
        return Ok(change);
    };
    change.id = Some(rs.id.clone());
    let applied = api_view(&rs.applied);
    // The read's permissions, taken out of it (it is dropped once its
    // resource is planned).
    let mut remote_perms = None;
    let current = match obs {
        Observed::Missing => {
            change.fields = diff_fields(&desired, &json!({}), None, rules);
            change.fields.extend(permissions_change(
                desired_permissions(&desired_full),
                None,
                None,
            ));
            change.reason = Some("deleted outside lakebundle".into());
            change.before = Some(rs.applied.clone());
            change.after = Some(desired_full);
            return Ok(change);
        }
        // Without a read, the last apply stands for the remote (borrowed).
        Observed::NotRead => Cow::Borrowed(applied.as_ref()),
        Observed::Present { raw, permissions } => {
            remote_perms = permissions.take();
            // The YAML view, moved out of the read where the kind can.
            let yaml = into_api_view(kind.remote_into_config(raw));
            Cow::Owned(effective_current(yaml, raw, Some(&applied), rules))
        }
    };
    let remote_perms = remote_perms.as_ref();
    let current: &Value = &current;
    let mut fields = diff_fields(&desired, current, Some(&applied), rules);
    // Drift walks the last apply (cut to the fields the config sets) against
    // the remote; with the config as last applied that is the walk just done
    // less its checks against the last apply, so no change means no drift.
    let no_drift_possible = fields.is_empty() && values_equal(&desired, &applied);
    fields.extend(permissions_change(
        desired_permissions(&desired_full),
        remote_perms,
        Some(&rs.applied),
    ));
    if matches!(obs, Observed::Present { .. }) {
        if !no_drift_possible {
            change.drift = drift_fields(&applied, current, &desired, rules);
        }
        if let Some(mut d) = permissions_change(
            desired_permissions(&rs.applied),
            remote_perms,
            Some(&rs.applied),
        ) {
            // Drift runs remote vs. last apply: old = applied, new = remote.
            std::mem::swap(&mut d.old, &mut d.new);
            change.drift.push(d);
        }
    }
    {
        // Changes that are not fields of the remote object (an app's compute
        // and deployed code).
        let raw = match &*obs {
            Observed::Present { raw, .. } => Some(raw),
            _ => None,
        };
        let extra = kind.extra_changes(&desired_full, &rs.applied, raw);
        fields.extend(extra.fields);
        change.drift.extend(extra.drift);
        let moved = kind.output_changes(&rs.outputs, raw);
        fields.extend(moved.fields);
        change.drift.extend(moved.drift);
    }
    change.replace_paths = fields
        .iter()
        .filter(|f| f.forces_replacement)
        .map(|f| f.path.clone())
        .collect();
    let tainted = state.tainted.contains(addr);
    change.action = if !change.replace_paths.is_empty() || tainted {
        Action::Replace
    } else if !fields.is_empty() {
        Action::Update
    } else {
        Action::NoOp
    };
    if change.action != Action::NoOp || opts.unchanged_before {
        change.before = Some(restrict_to_union(current, &desired, Some(&applied)));
    }
    change.after = Some(desired_full);
    change.reason = match change.action {
        Action::Replace if tainted && change.replace_paths.is_empty() => {
            Some("its last deploy created it but it never became ready: it is replaced".into())
        }
        Action::Replace => Some(format!(
            "{} forces replacement",
            change.replace_paths.join(", ")
        )),
        _ if !change.drift.is_empty() => Some("changed outside lakebundle".into()),
        _ => None,
    };
    change.fields = fields;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_keeps_the_remote_fields_the_config_or_last_apply_name() {
        let remote = json!({
            "name": "n", "extra": 1,
            "spec": {"a": 1, "b": 2, "c": 3},
            "tags": ["x"],
        });
        let desired = json!({"name": "n", "spec": {"a": 1}});
        let applied = json!({"spec": {"b": 0}, "tags": [], "gone": true});
        assert_eq!(
            restrict_to_union(&remote, &desired, Some(&applied)),
            json!({"name": "n", "spec": {"a": 1, "b": 2}, "tags": ["x"]})
        );
        // Without a last apply, the config alone is the shape.
        assert_eq!(
            restrict_to_union(&remote, &desired, None),
            json!({"name": "n", "spec": {"a": 1}})
        );
        // A scalar where the shapes have maps is kept whole.
        assert_eq!(
            restrict_to_union(&json!(5), &desired, Some(&applied)),
            json!(5)
        );
    }

    #[test]
    fn refs_are_found_and_filled_with_types() {
        let s = "${resources.database_catalogs.c.name}.${resources.database_catalogs.c.database_name}.t";
        let refs = find_refs(s);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].field, "database_name");
        let lookup = |a: &ResourceAddr, f: &str| -> Option<Value> {
            (a.key == "c").then(|| match f {
                "name" => json!("cat"),
                "database_name" => json!("db"),
                _ => json!(42),
            })
        };
        assert_eq!(fill_refs(&json!(s), &lookup), json!("cat.db.t"));
        assert_eq!(
            fill_refs(&json!("${resources.jobs.c.id}"), &lookup),
            json!(42)
        );
        let unknown = json!({"x": ["${resources.jobs.other.id}"]});
        assert_eq!(fill_refs(&unknown, &lookup), unknown);
        assert_eq!(unknown_paths(&unknown), vec!["x[0]".to_string()]);
    }

    #[test]
    fn permissions_ignore_server_added_owners() {
        let desired = desired_permissions(
            &json!({"permissions": [{"level": "CAN_VIEW", "group_name": "users"}]}),
        );
        let remote = permissions_from_api(&json!({"access_control_list": [
            {"user_name": "me@x", "all_permissions": [{"permission_level": "IS_OWNER", "inherited": false}]},
            {"group_name": "users", "all_permissions": [{"permission_level": "CAN_VIEW", "inherited": false}]},
            {"group_name": "admins", "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": true}]},
        ]}));
        assert!(permissions_change(desired.clone(), Some(&remote), None).is_none());
        let changed = desired_permissions(
            &json!({"permissions": [{"level": "CAN_MANAGE_RUN", "group_name": "users"}]}),
        );
        let c = permissions_change(changed, Some(&remote), None).expect("a change");
        assert_eq!(
            c.old,
            Some(json!([{"level": "CAN_VIEW", "group_name": "users"}]))
        );
    }

    fn state_with_serial(serial: u64) -> DeploymentState {
        DeploymentState {
            serial,
            lineage: "L".into(),
            ..DeploymentState::new()
        }
    }

    #[test]
    fn stale_plans_are_refused() {
        let plan = Plan {
            format_version: FORMAT_VERSION.into(),
            bundle: "b".into(),
            target: "t".into(),
            lineage: Some("L".into()),
            serial: 3,
            config_hash: "h".into(),
            changes: vec![],
        };
        assert!(check_plan_fresh(&plan, &state_with_serial(3), "h").is_ok());
        let err = check_plan_fresh(&plan, &state_with_serial(4), "h")
            .unwrap_err()
            .to_string();
        assert!(err.contains("serial 3 then, 4 now"), "{err}");
        assert!(check_plan_fresh(&plan, &state_with_serial(3), "other").is_err());
        let other_lineage = DeploymentState {
            lineage: "M".into(),
            ..state_with_serial(3)
        };
        assert!(check_plan_fresh(&plan, &other_lineage, "h").is_err());
    }
}
