//! Computes of Lakebase branches on real PostgreSQL, and scale to zero.
//!
//! A branch's servers are a backend instance whose uid is the branch uid: its primary
//! serves the branch's `primary` (read-write) endpoint, its readable streaming replicas
//! serve the read-only endpoints in creation order (so a branch has at most two here).
//! Each server runs with its endpoint's settings: memory from the max CU (see
//! [`cu_settings`]) then the endpoint's `settings.pg_settings`, which win.
//!
//! Every endpoint's `hosts.host` is a loopback TCP proxy of this process (`127.0.0.N` on
//! port 5432, like instance servers): it counts connections, and when one arrives while
//! the branch's servers are suspended it holds the connection, starts them, then pipes
//! the bytes (TLS included, untouched). Every endpoint suspends on its own: an endpoint
//! stays up while it has connections, while it was active within its
//! `suspend_timeout_duration` (times `--suspend-scale`), or always with `no_suspension`;
//! a `disabled` endpoint never does, refuses connections and drops the ones it had. An
//! idle read-only endpoint's replica stops (the endpoint reports `IDLE`) while the rest
//! of the branch runs; the branch's primary server stops once no endpoint of the branch
//! is up (the replicas stream from it, so it runs while any of them does). A connection
//! wakes exactly the servers its endpoint needs. After an emulator restart every branch
//! starts out suspended and wakes on first use.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use super::{PgResult, BRANCHES, ENDPOINTS, PROJECTS};
use crate::backend::{BranchPoint, Endpoints, InstanceSpec, ServerSettings};
use crate::postgres::server as pgserver;
use crate::server::Emu;

/// How often idleness is checked.
const MONITOR_TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Computes {
    /// Branch name → its servers' addresses while they run (None: suspended).
    awake: Mutex<HashMap<String, Endpoints>>,
    endpoints: Mutex<HashMap<String, Arc<EndpointRt>>>,
    /// Read-only endpoints whose replica is suspended while their branch may run.
    replicas_down: Mutex<HashSet<String>>,
    /// Endpoints reconciling: operations in flight, then a settling time after the last.
    reconciling: Mutex<HashMap<String, Reconcile>>,
    monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Computes {
    fn drop(&mut self) {
        if let Some(h) = self.monitor.lock().take() {
            h.abort();
        }
        for (_, ep) in self.endpoints.lock().drain() {
            ep.close();
        }
    }
}

#[derive(Default)]
struct Reconcile {
    running: usize,
    until: Option<Instant>,
}

/// An endpoint name (`projects/p/branches/b/endpoints/e`)?
pub fn is_endpoint_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 6 && parts[0] == "projects" && parts[2] == "branches" && parts[4] == "endpoints"
}

/// An operation on the endpoint starts: it reconciles until the operation is done and
/// then `--transition-ms` longer, as the service's endpoints settle after their operation
/// (§1.3: `pending_state` is set meanwhile and mutations answer 409).
pub fn begin_reconcile(emu: &Emu, name: &str) {
    emu.computes
        .reconciling
        .lock()
        .entry(name.to_string())
        .or_default()
        .running += 1;
}

pub fn end_reconcile(emu: &Emu, name: &str) {
    let mut all = emu.computes.reconciling.lock();
    let gone = emu
        .store
        .get(ENDPOINTS, name)
        .is_none_or(|r| super::tree::is_deleted(&r));
    let Some(r) = all.get_mut(name) else {
        return;
    };
    r.running = r.running.saturating_sub(1);
    r.until = Some(Instant::now() + Duration::from_millis(emu.cfg.transition_ms));
    if gone && r.running == 0 {
        all.remove(name);
    }
}

/// Whether the endpoint is reconciling now (an operation runs or has just finished).
pub fn reconciling(emu: &Emu, name: &str) -> bool {
    let mut all = emu.computes.reconciling.lock();
    let Some(r) = all.get(name) else {
        return false;
    };
    if r.running > 0 || r.until.is_some_and(|u| Instant::now() < u) {
        return true;
    }
    all.remove(name);
    false
}

/// A mutation of a reconciling endpoint is refused with 409, as the service does; clients
/// retry (the official CLI every 2 s).
pub fn refuse_if_reconciling(emu: &Emu, name: &str) -> PgResult<()> {
    if !reconciling(emu, name) {
        return Ok(());
    }
    Err(super::PgErr::Api(crate::http::ApiErr::new(
        axum::http::StatusCode::CONFLICT,
        lakebundle_wire::codes::RESOURCE_CONFLICT,
        format!(
            "Endpoint {name} is undergoing reconciliation of an earlier change; retry once its \
             status.pending_state is empty"
        ),
    )))
}

/// One endpoint's proxy and activity.
pub struct EndpointRt {
    /// Where clients connect (None: records only, nothing listens).
    addr: Option<SocketAddrV4>,
    active: AtomicUsize,
    last_active: Mutex<(Instant, String)>,
    kill: tokio::sync::Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl EndpointRt {
    fn touch(&self) {
        *self.last_active.lock() = (Instant::now(), super::now_rfc3339());
    }

    fn close(&self) {
        if let Some(h) = self.task.lock().take() {
            h.abort();
        }
        self.kill.notify_waiters();
        if let Some(a) = self.addr {
            pgserver::release_addr(a);
        }
    }
}

/// Record a new endpoint's activity clock now.
fn new_rt(addr: Option<SocketAddrV4>) -> Arc<EndpointRt> {
    let rt = EndpointRt {
        addr,
        active: AtomicUsize::new(0),
        last_active: Mutex::new((Instant::now(), super::now_rfc3339())),
        kill: tokio::sync::Notify::new(),
        task: Mutex::new(None),
    };
    Arc::new(rt)
}

fn branch_uid(emu: &Emu, branch: &str) -> Option<String> {
    emu.store
        .get(BRANCHES, branch)
        .and_then(|b| b["uid"].as_str().map(str::to_string))
}

fn project_of(name: &str) -> String {
    name.split('/').take(2).collect::<Vec<_>>().join("/")
}

/// Read-only endpoints of a branch in creation order (replica i serves the i-th).
fn read_only_endpoints(emu: &Emu, branch: &str) -> Vec<String> {
    let mut eps: Vec<(String, String)> = emu
        .store
        .all(ENDPOINTS)
        .into_iter()
        .filter(|(_, e)| e["parent"] == json!(branch) && !super::tree::is_deleted(e))
        .filter(|(_, e)| e["status"]["endpoint_type"] == json!("ENDPOINT_TYPE_READ_ONLY"))
        .map(|(k, e)| (e["create_time"].as_str().unwrap_or("").to_string(), k))
        .collect();
    eps.sort();
    eps.into_iter().map(|(_, k)| k).collect()
}

/// The backend spec of a branch's servers as the records say now.
fn spec_of(emu: &Emu, branch: &str, stopped: bool) -> Option<InstanceSpec> {
    let uid = branch_uid(emu, branch)?;
    let replicas = read_only_endpoints(emu, branch).len().min(2) as u32;
    let native = emu
        .store
        .get(PROJECTS, &project_of(branch))
        .and_then(|p| p["status"]["enable_pg_native_login"].as_bool())
        .unwrap_or(false);
    let record = |name: &str| emu.store.get(ENDPOINTS, name).unwrap_or(Value::Null);
    let primary = emu
        .store
        .all(ENDPOINTS)
        .into_iter()
        .find(|(_, e)| {
            e["parent"] == json!(branch)
                && !super::tree::is_deleted(e)
                && e["status"]["endpoint_type"] == json!("ENDPOINT_TYPE_READ_WRITE")
        })
        .map(|(_, e)| e)
        .unwrap_or(Value::Null);
    let mut servers = vec![ServerSettings {
        conf: server_conf(&primary["status"]),
        suspended: false,
    }];
    let down = emu.computes.replicas_down.lock();
    for name in read_only_endpoints(emu, branch).iter().take(2) {
        servers.push(ServerSettings {
            conf: server_conf(&record(name)["status"]),
            suspended: down.contains(name),
        });
    }
    drop(down);
    Some(InstanceSpec {
        uid,
        name: branch.to_string(),
        capacity: "CU_1".into(),
        node_count: 1 + replicas,
        enable_readable_secondaries: replicas > 0,
        enable_pg_native_login: native,
        stopped,
        parent: None,
        servers,
    })
}

/// Memory settings for an endpoint's max CU, scaled down from the service (about 2 GB
/// of RAM per CU there) so that a laptop runs many endpoints: `shared_buffers` 16 MB per
/// CU (at most 1 GB; needs a restart), `work_mem` 1 MB per CU (at least 1 MB; a reload)
/// and `effective_cache_size` 48 MB per CU (a reload). The min CU has no local effect.
pub fn cu_settings(max_cu: f64) -> Vec<(String, String)> {
    let mb = |per_cu: f64, floor: f64, cap: f64| {
        format!("{}MB", (per_cu * max_cu).clamp(floor, cap).round() as u64)
    };
    vec![
        ("shared_buffers".into(), mb(16.0, 8.0, 1024.0)),
        ("work_mem".into(), mb(1.0, 1.0, 64.0)),
        ("effective_cache_size".into(), mb(48.0, 24.0, 3072.0)),
    ]
}

/// A server's own settings from its endpoint's status: memory from the max CU, then
/// `settings.pg_settings` (names lower-cased, as PostgreSQL reads them), which win.
fn server_conf(status: &Value) -> Vec<(String, String)> {
    if status.is_null() {
        return Vec::new();
    }
    let max_cu = status["autoscaling_limit_max_cu"].as_f64().unwrap_or(1.0);
    let mut conf = cu_settings(max_cu);
    if let Some(p) = status["settings"]["pg_settings"].as_object() {
        for (k, v) in p {
            let k = k.to_ascii_lowercase();
            conf.retain(|(n, _)| *n != k);
            conf.push((k, v.as_str().unwrap_or_default().to_string()));
        }
    }
    conf
}

fn missing_branch(branch: &str) -> super::PgErr {
    super::not_found("branch", branch)
}

/// Create a branch's servers: from the template, or as a copy of `source` at `point`.
pub async fn provision(
    emu: &Arc<Emu>,
    branch: &str,
    source: Option<(String, BranchPoint)>,
) -> PgResult<()> {
    ensure_monitor(emu);
    let mut spec = spec_of(emu, branch, false).ok_or_else(|| missing_branch(branch))?;
    if let Some((src, point)) = source {
        // The source's servers must run to be copied.
        wake(emu, &src).await?;
        let src_uid = branch_uid(emu, &src).ok_or_else(|| missing_branch(&src))?;
        spec.parent = Some((src_uid, point));
    }
    let lock = emu.instance_op_lock(&spec.uid);
    let _turn = lock.lock().await;
    let eps = emu.backend.create_instance(&spec).await?;
    emu.computes.awake.lock().insert(branch.to_string(), eps);
    Ok(())
}

/// Make sure a branch's primary server runs; returns its servers' addresses. Counts as
/// activity of its read-write endpoint (read-only ones wake with [`wake_endpoint`]).
pub async fn wake(emu: &Arc<Emu>, branch: &str) -> PgResult<Endpoints> {
    ensure_monitor(emu);
    touch_branch(emu, branch);
    let uid = branch_uid(emu, branch).ok_or_else(|| missing_branch(branch))?;
    let lock = emu.instance_op_lock(&uid);
    let _turn = lock.lock().await;
    if let Some(eps) = emu.computes.awake.lock().get(branch).cloned() {
        return Ok(eps);
    }
    let spec = spec_of(emu, branch, false).ok_or_else(|| missing_branch(branch))?;
    let eps = emu.backend.update_instance(&spec).await?;
    emu.computes
        .awake
        .lock()
        .insert(branch.to_string(), eps.clone());
    touch_branch(emu, branch);
    Ok(eps)
}

/// Make sure the servers an endpoint needs run (a read-only one: the branch's primary
/// and its own replica); returns their addresses. Counts as the endpoint's activity.
pub async fn wake_endpoint(emu: &Arc<Emu>, branch: &str, name: &str) -> PgResult<Endpoints> {
    let read_only = read_only_endpoints(emu, branch).iter().any(|e| e == name);
    if !read_only {
        return wake(emu, branch).await;
    }
    ensure_monitor(emu);
    touch_endpoint(emu, name);
    let uid = branch_uid(emu, branch).ok_or_else(|| missing_branch(branch))?;
    let lock = emu.instance_op_lock(&uid);
    let _turn = lock.lock().await;
    let was_down = emu.computes.replicas_down.lock().remove(name);
    let running = emu.computes.awake.lock().get(branch).cloned();
    if let (Some(eps), false) = (&running, was_down) {
        return Ok(eps.clone());
    }
    let spec = spec_of(emu, branch, false).ok_or_else(|| missing_branch(branch))?;
    let eps = match emu.backend.update_instance(&spec).await {
        Ok(eps) => eps,
        Err(e) => {
            if was_down {
                emu.computes.replicas_down.lock().insert(name.to_string());
            }
            return Err(e.into());
        }
    };
    emu.computes
        .awake
        .lock()
        .insert(branch.to_string(), eps.clone());
    touch_endpoint(emu, name);
    Ok(eps)
}

/// Apply a changed replica count or login setting to a branch's servers (running or not).
pub async fn reconfigure(emu: &Arc<Emu>, branch: &str) -> PgResult<()> {
    let uid = branch_uid(emu, branch).ok_or_else(|| missing_branch(branch))?;
    let lock = emu.instance_op_lock(&uid);
    let _turn = lock.lock().await;
    let running = emu.computes.awake.lock().contains_key(branch);
    let spec = spec_of(emu, branch, !running).ok_or_else(|| missing_branch(branch))?;
    let eps = emu.backend.update_instance(&spec).await?;
    if running {
        emu.computes.awake.lock().insert(branch.to_string(), eps);
    }
    Ok(())
}

/// Stop a branch's servers if nothing keeps them up (re-checked under the branch lock).
async fn suspend_if_idle(emu: &Arc<Emu>, branch: &str) {
    let Some(uid) = branch_uid(emu, branch) else {
        return;
    };
    let lock = emu.instance_op_lock(&uid);
    let _turn = lock.lock().await;
    if !emu.computes.awake.lock().contains_key(branch) || keeps_awake(emu, branch) {
        return;
    }
    let Some(spec) = spec_of(emu, branch, true) else {
        return;
    };
    match emu.backend.update_instance(&spec).await {
        Ok(_) => {
            emu.computes.awake.lock().remove(branch);
            // Waking the branch later starts only what the waking endpoint needs.
            emu.computes
                .replicas_down
                .lock()
                .extend(read_only_endpoints(emu, branch));
            tracing::info!("suspended the computes of {branch} (idle)");
        }
        Err(e) => tracing::warn!("suspending {branch}: {e}"),
    }
}

/// Stop a read-only endpoint's replica if the endpoint is idle while its branch runs
/// (re-checked under the branch lock).
async fn suspend_replica_if_idle(emu: &Arc<Emu>, branch: &str, name: &str) {
    let Some(uid) = branch_uid(emu, branch) else {
        return;
    };
    let lock = emu.instance_op_lock(&uid);
    let _turn = lock.lock().await;
    if !emu.computes.awake.lock().contains_key(branch)
        || emu.computes.replicas_down.lock().contains(name)
        || endpoint_keeps_awake(emu, name)
    {
        return;
    }
    let Some(mut spec) = spec_of(emu, branch, false) else {
        return;
    };
    let Some(i) = read_only_endpoints(emu, branch)
        .iter()
        .position(|e| e == name)
    else {
        return;
    };
    if let Some(server) = spec.servers.get_mut(i + 1) {
        server.suspended = true;
    }
    match emu.backend.update_instance(&spec).await {
        Ok(eps) => {
            // IDLE only once its server has stopped.
            emu.computes.replicas_down.lock().insert(name.to_string());
            emu.computes.awake.lock().insert(branch.to_string(), eps);
            tracing::info!("suspended the read-only endpoint {name} (idle)");
        }
        Err(e) => tracing::warn!("suspending {name}: {e}"),
    }
}

/// Stop (soft delete) or remove (purge) a branch's servers and close its endpoints.
pub async fn drop_branch(emu: &Arc<Emu>, branch: &str, uid: &str, purge: bool) -> PgResult<()> {
    let prefix = format!("{branch}/endpoints/");
    let eps: Vec<String> = emu
        .computes
        .endpoints
        .lock()
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .cloned()
        .collect();
    for e in eps {
        close_endpoint(emu, &e);
    }
    emu.computes
        .replicas_down
        .lock()
        .retain(|k| !k.starts_with(&prefix));
    let lock = emu.instance_op_lock(uid);
    let _turn = lock.lock().await;
    emu.computes.awake.lock().remove(branch);
    emu.backend.delete_instance(uid, purge).await?;
    Ok(())
}

/// Start serving an endpoint: its proxy (real servers) and activity clock. Returns the
/// host clients connect to.
pub async fn open_endpoint(emu: &Arc<Emu>, name: &str, uid: &str) -> PgResult<String> {
    ensure_monitor(emu);
    if let Some(rt) = emu.computes.endpoints.lock().get(name) {
        return Ok(host_of(rt.addr, uid));
    }
    if !emu.backend.serves_sql() {
        emu.computes
            .endpoints
            .lock()
            .insert(name.to_string(), new_rt(None));
        return Ok(host_of(None, uid));
    }
    let recorded = emu
        .store
        .get(ENDPOINTS, name)
        .and_then(|r| r["_emu"]["proxy"].as_str().and_then(|a| a.parse().ok()));
    let (addr, listener) = bind_proxy(recorded).await?;
    let rt = new_rt(Some(addr));
    let task = tokio::spawn(serve(
        Arc::downgrade(emu),
        name.to_string(),
        rt.clone(),
        listener,
    ));
    *rt.task.lock() = Some(task);
    emu.computes
        .endpoints
        .lock()
        .insert(name.to_string(), rt.clone());
    let saved = emu.store.txn(|t| {
        if let Some(mut rec) = t.get(ENDPOINTS, name).cloned() {
            rec["_emu"]["proxy"] = json!(addr.to_string());
            t.put(ENDPOINTS, name, rec);
        }
        Ok::<_, crate::http::ApiErr>(())
    });
    saved?;
    Ok(host_of(Some(addr), uid))
}

pub fn close_endpoint(emu: &Emu, name: &str) {
    if let Some(rt) = emu.computes.endpoints.lock().remove(name) {
        rt.close();
    }
    emu.computes.replicas_down.lock().remove(name);
}

/// Drop an endpoint's live connections (it was disabled).
pub fn kick(emu: &Emu, name: &str) {
    if let Some(rt) = emu.computes.endpoints.lock().get(name) {
        rt.kill.notify_waiters();
    }
}

fn host_of(addr: Option<SocketAddrV4>, uid: &str) -> String {
    match addr {
        Some(a) => pgserver::dns_of(a),
        None => format!("{uid}.database.local"),
    }
}

async fn bind_proxy(recorded: Option<SocketAddrV4>) -> PgResult<(SocketAddrV4, TcpListener)> {
    let mut avoid = Vec::new();
    let mut next = match recorded {
        Some(a) => pgserver::reuse_or_allocate(a, &[]),
        None => pgserver::allocate_addr(&[]),
    };
    for _ in 0..8 {
        match TcpListener::bind(next).await {
            Ok(l) => return Ok((next, l)),
            Err(e) => {
                tracing::debug!("endpoint proxy cannot bind {next}: {e}");
                pgserver::release_addr(next);
                avoid.push(next);
                next = pgserver::allocate_addr(&avoid);
            }
        }
    }
    Err(super::PgErr::Api(crate::http::ApiErr::internal(
        "no free loopback address for the endpoint",
    )))
}

/// `host` or `host:port` → an address.
fn parse_dns(dns: &str) -> Option<SocketAddrV4> {
    if let Ok(a) = dns.parse::<SocketAddrV4>() {
        return Some(a);
    }
    dns.parse::<Ipv4Addr>()
        .ok()
        .map(|ip| SocketAddrV4::new(ip, pgserver::DEFAULT_PORT))
}

async fn serve(emu: Weak<Emu>, name: String, rt: Arc<EndpointRt>, listener: TcpListener) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(connection(emu.clone(), name.clone(), rt.clone(), sock));
    }
}

/// Counts a proxied connection while it lives; the end of the last one starts the idle clock.
struct Active(Arc<EndpointRt>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(emu: Weak<Emu>, name: String, rt: Arc<EndpointRt>, mut client: TcpStream) {
    rt.active.fetch_add(1, Ordering::SeqCst);
    let _active = Active(rt.clone());
    rt.touch();
    let Some(emu) = emu.upgrade() else { return };
    let Some(rec) = emu.store.get(ENDPOINTS, &name) else {
        return;
    };
    if rec["status"]["disabled"] == json!(true) {
        // Disabled endpoints refuse connections.
        return;
    }
    let branch = rec["parent"].as_str().unwrap_or_default().to_string();
    let eps = match wake_endpoint(&emu, &branch, &name).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(
                "waking {branch} for a connection to {name}: {}",
                e.message()
            );
            return;
        }
    };
    let target = if rec["status"]["endpoint_type"] == json!("ENDPOINT_TYPE_READ_ONLY") {
        let i = read_only_endpoints(&emu, &branch)
            .iter()
            .position(|e| *e == name)
            .unwrap_or(0);
        eps.replica_dns.get(i).cloned()
    } else {
        Some(eps.read_write_dns.clone())
    };
    let Some(target) = target.as_deref().and_then(parse_dns) else {
        tracing::warn!("endpoint {name} has no server to forward to");
        return;
    };
    drop(emu);
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = rt.kill.notified() => {}
    }
}

/// Whether any endpoint of the branch keeps its servers up now.
fn keeps_awake(emu: &Emu, branch: &str) -> bool {
    let scale = emu.cfg.suspend_scale;
    let eps: Vec<(String, Value)> = emu
        .store
        .all(ENDPOINTS)
        .into_iter()
        .filter(|(_, e)| e["parent"] == json!(branch) && !super::tree::is_deleted(e))
        .collect();
    if eps.is_empty() {
        return true;
    }
    let rts = emu.computes.endpoints.lock();
    eps.iter()
        .any(|(name, e)| keeps_itself_awake(rts.get(name), &e["status"], scale))
}

/// Whether one endpoint keeps its own server up now.
fn endpoint_keeps_awake(emu: &Emu, name: &str) -> bool {
    let Some(rec) = emu.store.get(ENDPOINTS, name) else {
        return false;
    };
    let rts = emu.computes.endpoints.lock();
    keeps_itself_awake(rts.get(name), &rec["status"], emu.cfg.suspend_scale)
}

fn keeps_itself_awake(rt: Option<&Arc<EndpointRt>>, s: &Value, scale: f64) -> bool {
    if s["disabled"] == json!(true) {
        return false;
    }
    if s["no_suspension"] == json!(true) {
        return true;
    }
    let Some(rt) = rt else {
        // Not serving yet (being created): keep up.
        return true;
    };
    if rt.active.load(Ordering::SeqCst) > 0 {
        return true;
    }
    let timeout = super::parse_duration("suspend_timeout_duration", &s["suspend_timeout_duration"])
        .unwrap_or(300.0);
    rt.last_active.lock().0.elapsed().as_secs_f64() < timeout * scale
}

/// Activity on the branch's read-write endpoint (its primary server's work).
fn touch_branch(emu: &Emu, branch: &str) {
    let prefix = format!("{branch}/endpoints/");
    let read_only = read_only_endpoints(emu, branch);
    for (k, rt) in emu.computes.endpoints.lock().iter() {
        if k.starts_with(&prefix) && !read_only.contains(k) {
            rt.touch();
        }
    }
}

fn touch_endpoint(emu: &Emu, name: &str) {
    if let Some(rt) = emu.computes.endpoints.lock().get(name) {
        rt.touch();
    }
}

/// `ACTIVE` (servers up), `IDLE` (suspended or disabled), `INIT` (not serving yet).
pub fn endpoint_state(emu: &Emu, name: &str, rec: &Value) -> &'static str {
    if rec["_emu"]["ready"] != json!(true) {
        return "INIT";
    }
    if rec["status"]["disabled"] == json!(true) {
        return "IDLE";
    }
    let branch = rec["parent"].as_str().unwrap_or_default();
    if emu.computes.awake.lock().contains_key(branch)
        && !emu.computes.replicas_down.lock().contains(name)
    {
        "ACTIVE"
    } else {
        "IDLE"
    }
}

pub fn last_active_time(emu: &Emu, name: &str) -> Option<String> {
    emu.computes
        .endpoints
        .lock()
        .get(name)
        .map(|rt| rt.last_active.lock().1.clone())
}

fn ensure_monitor(emu: &Arc<Emu>) {
    let mut m = emu.computes.monitor.lock();
    if m.is_some() {
        return;
    }
    let weak = Arc::downgrade(emu);
    *m = Some(tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            tokio::time::sleep(MONITOR_TICK).await;
            let Some(emu) = weak.upgrade() else { return };
            ticks += 1;
            if ticks % 10 == 0 {
                super::tree::expire_branches(&emu);
            }
            let awake: Vec<String> = emu.computes.awake.lock().keys().cloned().collect();
            for b in awake {
                if !keeps_awake(&emu, &b) {
                    let emu2 = emu.clone();
                    tokio::spawn(async move { suspend_if_idle(&emu2, &b).await });
                    continue;
                }
                for name in read_only_endpoints(&emu, &b) {
                    if emu.computes.replicas_down.lock().contains(&name)
                        || endpoint_keeps_awake(&emu, &name)
                    {
                        continue;
                    }
                    let (emu2, b2) = (emu.clone(), b.clone());
                    tokio::spawn(async move { suspend_replica_if_idle(&emu2, &b2, &name).await });
                }
            }
        }
    }));
}

/// On start: proxies back on their recorded addresses; servers are woken on first use.
pub async fn adopt(emu: &Arc<Emu>) {
    super::ops::fail_orphans(emu);
    let eps: Vec<(String, Value)> = emu
        .store
        .all(ENDPOINTS)
        .into_iter()
        .filter(|(_, e)| e["_emu"]["ready"] == json!(true) && !super::tree::hidden(emu, e))
        .collect();
    for (name, e) in eps {
        if e["status"]["endpoint_type"] == json!("ENDPOINT_TYPE_READ_ONLY") {
            // Suspended like the rest: its replica starts with its own first connection.
            emu.computes.replicas_down.lock().insert(name.clone());
        }
        let uid = e["uid"].as_str().unwrap_or_default().to_string();
        if let Err(err) = open_endpoint(emu, &name, &uid).await {
            tracing::warn!("endpoint {name}: {}", err.message());
        }
    }
}
