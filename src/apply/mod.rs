//! The executor: bounded-concurrency walk of the plan's graph.
//!
//! Public API (used by `deploy` / `destroy`):
//! - [`apply`]`(&Bundle, &Plan, &StateStore, &Client, &ApplyOptions, UnboundedSender<ApplyEvent>)
//!   -> Result<ApplyReport, EngineError>`
//! - [`destroy`]`(&Bundle, &StateStore, &Client, &ApplyOptions, UnboundedSender<ApplyEvent>)
//!   -> Result<ApplyReport, EngineError>` (deletes everything in state, dependents
//!   first, then removes the state; the caller releases the lock)
//! - [`ApplyOptions`], [`ApplyEvent`] / [`ApplyEventKind`] (progress), [`ApplyReport`]
//!
//! Each resource starts as soon as its own dependencies are done. Every
//! success is recorded in state at once. A failure skips the failed
//! resource's dependents; independent work goes on. A create whose response
//! was lost is followed by a lookup (`find_existing`) and the object adopted,
//! so retries never duplicate. Cancellation (`cancel` set to true) stops new
//! work; in-flight operations finish and are recorded.

pub mod files;
pub(crate) mod schedule;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc::UnboundedSender, watch};

use crate::api::{ApiError, Client};
use crate::config::model::Bundle;
use crate::plan::build::{
    api_view, check_destroy_allowed, desired_permissions, destroying_action, fill_refs, find_refs,
    managed_config, permissions_acl, state_field, DeferredRef,
};
use crate::plan::diff::is_unknown;
use crate::plan::{Action, EngineError, Plan, ResourceChange};
use crate::resources::common::redact_sensitive;
use crate::resources::{kind_impl, Created, Kind, ResourceAddr, ResourceKind};
use crate::state::{ResourceState, StateStore};
use schedule::{run_graph, Failure, Op, OpGraph, Outcome, Step};

pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Attempts of one create/update/delete whose responses keep getting lost.
/// A create is re-sent only after a lookup found nothing, so a repeat never
/// duplicates. At one unknown outcome in five (the fault tests' rate), four
/// attempts failed about one deploy of 60 creates in eleven; eight fail
/// about one in 6,500.
const LOST_RESPONSE_RETRIES: u32 = 8;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Remote operations in flight at once.
    pub parallelism: usize,
    /// How long to wait for a resource to become ready (instance AVAILABLE,
    /// app ACTIVE/STOPPED, app deployment SUCCEEDED).
    pub wait_timeout: Duration,
    /// Per-kind overrides of `wait_timeout`.
    pub wait_timeouts: HashMap<Kind, Duration>,
    /// Set to `true` (e.g. on Ctrl-C) to stop starting new work.
    pub cancel: Option<watch::Receiver<bool>>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            wait_timeouts: HashMap::new(),
            cancel: None,
        }
    }
}

impl ApplyOptions {
    pub fn timeout_for(&self, kind: Kind) -> Duration {
        self.wait_timeouts
            .get(&kind)
            .copied()
            .unwrap_or(self.wait_timeout)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApplyEventKind {
    /// Work on the resource began (`action` = its planned action).
    Started {
        action: Action,
    },
    /// Part of the work is done (e.g. "deleted; creating the replacement").
    Progress {
        message: String,
    },
    /// Waiting for the remote (e.g. "database instance to become AVAILABLE").
    Waiting {
        what: String,
    },
    Succeeded {
        id: String,
    },
    Failed {
        message: String,
    },
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct ApplyEvent {
    pub addr: ResourceAddr,
    pub kind: ApplyEventKind,
    pub at: Instant,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Resources whose planned action completed (in completion order).
    pub succeeded: Vec<ResourceAddr>,
    /// Address and the server's (or engine's) message.
    pub failed: Vec<(ResourceAddr, String)>,
    /// Address and why it was not attempted.
    pub skipped: Vec<(ResourceAddr, String)>,
    /// Cancelled before everything ran.
    pub interrupted: bool,
}

impl ApplyReport {
    /// Everything planned was done.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && !self.interrupted
    }
}

/// One run of the executor over a plan.
struct Executor<'a> {
    /// Where references were written (spans), for error messages.
    bundle: &'a Bundle,
    configs: HashMap<&'a ResourceAddr, Value>,
    changes: HashMap<&'a ResourceAddr, &'a ResourceChange>,
    store: &'a StateStore,
    client: &'a Client,
    opts: &'a ApplyOptions,
    events: UnboundedSender<ApplyEvent>,
    /// Unchanged dependencies already confirmed ready in this run.
    confirmed_ready: parking_lot::Mutex<HashSet<ResourceAddr>>,
}

fn api_msg(e: &ApiError) -> String {
    e.to_string()
}

impl Executor<'_> {
    fn emit(&self, addr: &ResourceAddr, kind: ApplyEventKind) {
        // A dropped receiver only means nobody is watching progress.
        let _ = self.events.send(ApplyEvent {
            addr: addr.clone(),
            kind,
            at: Instant::now(),
        });
    }

    /// The config with every deferred reference filled from recorded outputs.
    fn resolved_config(&self, addr: &ResourceAddr) -> Result<Value, String> {
        let config = self
            .configs
            .get(addr)
            .ok_or_else(|| format!("{addr} is in the plan but not in the configuration"))?;
        let lookup = |target: &ResourceAddr, field: &str| {
            self.store
                .get(target)
                .and_then(|rs| state_field(&rs, field))
        };
        let filled = fill_refs(config, &lookup);
        if is_unknown(&filled) {
            let mut missing: Vec<DeferredRef> = collect_strings(&filled)
                .iter()
                .flat_map(|s| find_refs(s))
                .collect();
            missing.dedup();
            let lines: Vec<String> = missing.iter().map(|r| self.unresolved(addr, r)).collect();
            return Err(lines.join("\n"));
        }
        Ok(filled)
    }

    /// Why a deferred reference has no value, naming the reference, the field
    /// that uses it and where it is written.
    fn unresolved(&self, addr: &ResourceAddr, r: &DeferredRef) -> String {
        let written = self
            .bundle
            .resources
            .get(addr)
            .and_then(|rc| rc.refs.iter().find(|x| x.text == r.text));
        let field = written
            .map(|w| format!("{addr}.{}", w.at_path))
            .unwrap_or_else(|| addr.to_string());
        let at = written
            .and_then(|w| {
                let path = self.bundle.sources.path(w.span.file)?;
                let (line, col) = self.bundle.sources.line_col(w.span)?;
                let shown = path.strip_prefix(&self.bundle.root).unwrap_or(path);
                Some(format!(" ({}:{line}:{col})", shown.display()))
            })
            .unwrap_or_default();
        let why = match self.store.get(&r.target) {
            None => format!("{} has not been deployed", r.target),
            Some(rs) => {
                let known: Vec<String> = match &rs.outputs {
                    Value::Object(m) => m.keys().cloned().collect(),
                    _ => vec!["id".into()],
                };
                format!(
                    "{} has no value `{}` (it has: {})",
                    r.target,
                    r.field,
                    known.join(", ")
                )
            }
        };
        format!("cannot resolve {} used in {field}{at}: {why}", r.text)
    }

    async fn run_op(&self, op: &Op) -> Result<(), Failure> {
        let first_step = op.step == Step::Remove || op.action != Action::Replace;
        if first_step {
            self.emit(&op.addr, ApplyEventKind::Started { action: op.action });
        }
        let result = match op.step {
            Step::Remove => self.remove(op).await,
            Step::Apply => self.put(op).await,
        };
        match &result {
            Ok(id) => {
                if op.action == Action::Replace && op.step == Step::Remove {
                    self.emit(
                        &op.addr,
                        ApplyEventKind::Progress {
                            message: "deleted; creating the replacement".into(),
                        },
                    );
                } else {
                    self.emit(&op.addr, ApplyEventKind::Succeeded { id: id.clone() });
                }
            }
            Err(OpError::Failed(m)) | Err(OpError::Fatal(m)) => {
                self.emit(&op.addr, ApplyEventKind::Failed { message: m.clone() })
            }
        }
        match result {
            Ok(_) => Ok(()),
            Err(OpError::Failed(m)) => Err(Failure::new(m)),
            // The resource call worked but state could not be saved: stop starting work.
            Err(OpError::Fatal(m)) => Err(Failure {
                message: m,
                halt: true,
            }),
        }
    }

    async fn remove(&self, op: &Op) -> Result<String, OpError> {
        let kind = kind_impl(op.addr.kind);
        let Some(rs) = self.store.get(&op.addr) else {
            // Nothing recorded (an earlier run already deleted it).
            return Ok(String::new());
        };
        // The same guard as planning: a saved plan never gets around it.
        if let Some(verb) = destroying_action(op.action) {
            check_destroy_allowed(
                &op.addr,
                verb,
                self.configs.get(&op.addr),
                Some(&rs.applied),
            )
            .map_err(|e| OpError::Failed(e.to_string()))?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match kind.delete_applied(self.client, &rs.id, &rs.applied).await {
                Ok(()) => break,
                // A repeat after a lost response finds it gone.
                Err(e) if e.is_not_found() => break,
                Err(e) if e.is_outcome_unknown() && attempt < LOST_RESPONSE_RETRIES => {}
                Err(e) => return Err(OpError::Failed(api_msg(&e))),
            }
        }
        self.store
            .remove(&op.addr)
            .await
            .map_err(|e| OpError::Fatal(e.to_string()))?;
        Ok(rs.id)
    }

    async fn put(&self, op: &Op) -> Result<String, OpError> {
        let addr = &op.addr;
        let kind = kind_impl(addr.kind);
        let config = self.resolved_config(addr).map_err(OpError::Failed)?;
        let body = api_view(&config);
        let depends_on = self
            .changes
            .get(addr)
            .map(|c| c.depends_on.clone())
            .unwrap_or_default();
        self.ensure_ready(&depends_on).await?;
        let existing = self.store.get(addr);
        let (id, remote) = match (&existing, op.action) {
            (Some(rs), Action::Update) => {
                let changed = self.changed_fields(addr);
                let id = if changed.is_empty() {
                    rs.id.clone()
                } else {
                    self.update(kind, &rs.id, &body, &changed).await?
                };
                (id, None)
            }
            _ => {
                let created = self
                    .create(kind, addr, kind.create_input(&config, &body))
                    .await?;
                let record = ResourceState {
                    id: created.id.clone(),
                    applied: redact_sensitive(kind.sensitive_fields(), config.clone()),
                    outputs: kind.outputs(&created.id, &created.remote),
                    depends_on: depends_on.clone(),
                };
                // Recorded before waiting: a crash while waiting never forgets it.
                self.store
                    .put(addr, record)
                    .await
                    .map_err(|e| OpError::Fatal(e.to_string()))?;
                (created.id, Some(created.remote))
            }
        };
        self.emit(
            addr,
            ApplyEventKind::Waiting {
                what: match kind.info().wait_text {
                    "" => addr.kind.noun().into_owned(),
                    text => text.to_string(),
                },
            },
        );
        let created = remote.is_some();
        let ready = match kind
            .wait_ready(self.client, &id, self.opts.timeout_for(addr.kind))
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.not_ready(addr, created, &e).await),
        };
        let progress = |message: String| self.emit(addr, ApplyEventKind::Progress { message });
        let ready = match kind
            .after_ready(
                self.client,
                &id,
                &config,
                ready,
                self.opts.timeout_for(addr.kind),
                &progress,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(self.not_ready(addr, created, &e).await),
        };
        let outputs = match (ready, remote) {
            (r, _) if !r.is_null() => kind.outputs(&id, &r),
            (_, Some(created)) => kind.outputs(&id, &created),
            _ => existing
                .as_ref()
                .map(|rs| rs.outputs.clone())
                .unwrap_or(Value::Null),
        };
        self.apply_permissions(kind, addr, &id, &outputs, &config, existing.as_ref())
            .await?;
        let record = ResourceState {
            id: id.clone(),
            // The state never holds a sensitive value, only its digest.
            applied: redact_sensitive(kind.sensitive_fields(), config),
            outputs,
            depends_on,
        };
        // A create already recorded exactly this: skip the second state write.
        if !self.store.holds(addr, &record) {
            self.store
                .put(addr, record)
                .await
                .map_err(|e| OpError::Fatal(e.to_string()))?;
        }
        Ok(id)
    }

    /// A dependency this plan leaves alone may still be becoming ready: an
    /// earlier deploy can have been stopped after its create but before its
    /// wait finished. Wait for it (one read when it is ready) before building on it.
    async fn ensure_ready(&self, deps: &[ResourceAddr]) -> Result<(), OpError> {
        for dep in deps {
            let unchanged = self
                .changes
                .get(dep)
                .is_some_and(|c| c.action == Action::NoOp);
            if !unchanged || self.confirmed_ready.lock().contains(dep) {
                continue;
            }
            let Some(rs) = self.store.get(dep) else {
                continue;
            };
            let kind = kind_impl(dep.kind);
            kind.wait_ready(self.client, &rs.id, self.opts.timeout_for(dep.kind))
                .await
                .map_err(|e| OpError::Failed(format!("{dep} is not ready: {}", api_msg(&e))))?;
            self.confirmed_ready.lock().insert(dep.clone());
        }
        Ok(())
    }

    /// A resource that did not become ready. One this deploy created is
    /// tainted in the state, so the next plan replaces it: the failed object
    /// may match the config and would otherwise plan as unchanged.
    async fn not_ready(&self, addr: &ResourceAddr, created: bool, e: &ApiError) -> OpError {
        if created {
            if let Err(se) = self.store.taint(addr).await {
                return OpError::Fatal(se.to_string());
            }
        }
        OpError::Failed(api_msg(e))
    }

    /// Create without ever duplicating: an unfinished earlier create, or a
    /// lost response, is resolved by looking the object up and adopting it.
    async fn create(
        &self,
        kind: &dyn ResourceKind,
        addr: &ResourceAddr,
        body: &Value,
    ) -> Result<Created, OpError> {
        let failed = |e: ApiError| OpError::Failed(api_msg(&e));
        let interrupted_before = self.store.is_pending(addr);
        if interrupted_before {
            if let Some(found) = kind
                .find_existing(self.client, body)
                .await
                .map_err(failed)?
            {
                self.emit(
                    addr,
                    ApplyEventKind::Progress {
                        message: format!("adopted {} left by an interrupted deploy", found.id),
                    },
                );
                return Ok(found);
            }
        }
        self.store
            .intend(addr)
            .map_err(|e| OpError::Fatal(e.to_string()))?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match kind.create(self.client, body).await {
                Ok(c) => return Ok(c),
                Err(e) if e.is_outcome_unknown() || (interrupted_before && is_conflict(&e)) => {
                    if let Some(found) = kind
                        .find_existing(self.client, body)
                        .await
                        .map_err(failed)?
                    {
                        self.emit(
                            addr,
                            ApplyEventKind::Progress {
                                message: format!("adopted {} after a lost response", found.id),
                            },
                        );
                        return Ok(found);
                    }
                    // The create never happened; try again.
                    if attempts >= LOST_RESPONSE_RETRIES {
                        return Err(failed(e));
                    }
                }
                Err(e) => return Err(failed(e)),
            }
        }
    }

    /// Update in place; an update is idempotent, so a lost response is re-sent.
    async fn update(
        &self,
        kind: &dyn ResourceKind,
        id: &str,
        body: &Value,
        changed: &[String],
    ) -> Result<String, OpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match kind.update(self.client, id, body, changed).await {
                Ok(new_id) => {
                    return Ok(if new_id.is_empty() {
                        id.to_string()
                    } else {
                        new_id
                    })
                }
                Err(e) if e.is_outcome_unknown() && attempt < LOST_RESPONSE_RETRIES => {}
                Err(e) => return Err(OpError::Failed(api_msg(&e))),
            }
        }
    }

    /// Top-level fields the plan found changed (what the update sends).
    fn changed_fields(&self, addr: &ResourceAddr) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in self
            .changes
            .get(addr)
            .map(|c| c.fields.as_slice())
            .unwrap_or_default()
        {
            let top = f.path.split(['.', '[']).next().unwrap_or("").to_string();
            if !top.is_empty() && top != "permissions" && !out.contains(&top) {
                out.push(top);
            }
        }
        out
    }

    /// PUT the permissions block when it differs from what was applied (or
    /// the plan found it drifted).
    async fn apply_permissions(
        &self,
        kind: &dyn ResourceKind,
        addr: &ResourceAddr,
        id: &str,
        outputs: &Value,
        config: &Value,
        before: Option<&ResourceState>,
    ) -> Result<(), OpError> {
        // Drift counts too: the plan compared against the remote grants.
        let planned = self
            .changes
            .get(addr)
            .is_some_and(|c| c.fields.iter().any(|f| f.path == "permissions"));
        if kind.applies_own_permissions() {
            let applied = before.map(|rs| &rs.applied);
            let unchanged = !planned
                && applied.is_some_and(|a| a.get("permissions") == config.get("permissions"));
            if unchanged {
                return Ok(());
            }
            return kind
                .apply_own_permissions(self.client, id, config, applied)
                .await
                .map_err(|e| OpError::Failed(api_msg(&e)));
        }
        let Some(object_type) = kind.permissions_object_type() else {
            return Ok(());
        };
        let desired = desired_permissions(config);
        let applied = before.and_then(|rs| desired_permissions(&rs.applied));
        if desired == applied && !planned && before.is_some() {
            return Ok(());
        }
        if desired.is_none() && applied.is_none() {
            return Ok(());
        }
        let acl = permissions_acl(&desired.unwrap_or_default());
        self.client
            .permissions()
            .set(
                object_type,
                &kind.permissions_object_id_of(id, outputs),
                &acl,
            )
            .await
            .map_err(|e| OpError::Failed(api_msg(&e)))?;
        Ok(())
    }
}

fn is_conflict(e: &ApiError) -> bool {
    matches!(e, ApiError::AlreadyExists { .. })
}

fn collect_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(collect_strings).collect(),
        Value::Object(m) => m.values().flat_map(collect_strings).collect(),
        _ => vec![],
    }
}

enum OpError {
    /// The resource's operation failed; dependents are skipped.
    Failed(String),
    /// State could not be saved; nothing more may start.
    Fatal(String),
}

async fn execute(
    bundle: &Bundle,
    configs: HashMap<&ResourceAddr, Value>,
    plan: &Plan,
    store: &StateStore,
    client: &Client,
    opts: &ApplyOptions,
    events: UnboundedSender<ApplyEvent>,
) -> Result<ApplyReport, EngineError> {
    let old_deps = store.dependencies();
    let graph = OpGraph::from_plan(plan, &old_deps);
    let exec = Executor {
        bundle,
        configs,
        changes: plan.changes.iter().map(|c| (&c.addr, c)).collect(),
        store,
        client,
        opts,
        events,
        confirmed_ready: Default::default(),
    };
    let exec_ref = &exec;
    let (outcomes, interrupted) =
        run_graph(&graph, opts.parallelism, opts.cancel.as_ref(), |_, op| {
            exec_ref.run_op(op)
        })
        .await;

    let mut report = ApplyReport {
        interrupted,
        ..ApplyReport::default()
    };
    // One line per resource: a replace is done only when both steps are.
    let mut per_addr: Vec<(&ResourceAddr, Outcome)> = Vec::new();
    let mut index: HashMap<&ResourceAddr, usize> = HashMap::with_capacity(graph.ops.len());
    for (op, out) in graph.ops.iter().zip(outcomes) {
        match index.get(&op.addr) {
            Some(&i) if per_addr[i].1 == Outcome::Done => per_addr[i].1 = out,
            Some(_) => {}
            None => {
                index.insert(&op.addr, per_addr.len());
                per_addr.push((&op.addr, out));
            }
        }
    }
    for (addr, out) in per_addr {
        match out {
            Outcome::Done => report.succeeded.push(addr.clone()),
            Outcome::Failed(m) => report.failed.push((addr.clone(), m)),
            Outcome::Skipped(r) => {
                exec.emit(addr, ApplyEventKind::Skipped { reason: r.clone() });
                report.skipped.push((addr.clone(), r))
            }
        }
    }
    // The workspace copy may lag after a failed upload; try once more.
    if let Err(e) = store.sync_remote().await {
        if report.failed.is_empty() {
            return Err(e.into());
        }
    }
    Ok(report)
}

/// Each resource's configuration as it is sent (with the kind's own fields).
fn configs_of(bundle: &Bundle) -> HashMap<&ResourceAddr, Value> {
    bundle
        .resources
        .iter()
        .map(|(a, rc)| (a, managed_config(bundle, a, &rc.value)))
        .collect()
}

/// Apply `plan` to the workspace. `plan` must have been made from `bundle`
/// and the store's current state (check saved plans with `check_plan_fresh`).
pub async fn apply(
    bundle: &Bundle,
    plan: &Plan,
    store: &StateStore,
    client: &Client,
    opts: &ApplyOptions,
    events: UnboundedSender<ApplyEvent>,
) -> Result<ApplyReport, EngineError> {
    execute(
        bundle,
        configs_of(bundle),
        plan,
        store,
        client,
        opts,
        events,
    )
    .await
}

/// Delete every resource in state (dependents first; instances purged by
/// their kind), then remove the state itself when all deletes succeeded.
/// `plan` is the destroy plan of `store` ([`crate::plan::build::make_destroy_plan`]).
pub async fn destroy(
    bundle: &Bundle,
    plan: &Plan,
    store: &StateStore,
    client: &Client,
    opts: &ApplyOptions,
    events: UnboundedSender<ApplyEvent>,
) -> Result<ApplyReport, EngineError> {
    // The configs are read only by the destroy guard here (nothing is created).
    let report = execute(
        bundle,
        configs_of(bundle),
        plan,
        store,
        client,
        opts,
        events,
    )
    .await?;
    if report.ok() {
        store.clear().await?;
    }
    Ok(report)
}
