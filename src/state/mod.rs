//! Deployment state, write-ahead log and deploy lock.
//!
//! Per target, `resources.json` = [`DeploymentState`] lives in the workspace
//! under `${workspace.state_path}` and is cached in the bundle at
//! `.lakebundle/<target>/`. Its file format is the Databricks CLI direct
//! engine's ([`format`]), and a terraform engine `terraform.tfstate` of the
//! CLI is taken over ([`StateStore::for_bundle`]), so either tool can deploy
//! a target the other deployed. Every successful remote operation is recorded at
//! once through [`StateStore::put`] / [`StateStore::remove`]: a fsync'd line in
//! the local write-ahead log (the local `resources.json` is rewritten every few
//! dozen changes), and an overwrite of the workspace copy at most every few
//! seconds (never waited for while another upload is in flight; flushed by
//! [`StateStore::sync_remote`] at the end).
//!
//! Public API:
//! - [`DeploymentState`], [`ResourceState`] (the `resources.json` model)
//! - [`StateStore::for_bundle`]`(&Bundle, Option<&Client>)` → reconciled store
//!   (higher serial wins; lineage mismatch = [`StateError::LineageMismatch`]);
//!   [`StateStore::snapshot`], [`StateStore::put`], [`StateStore::remove`],
//!   [`StateStore::clear`] (destroy)
//! - [`LocalStore`] (`.lakebundle/<target>/`: `resources.json` + `wal.jsonl`)
//! - [`RemoteStore`] (workspace files)
//! - [`DeployLock::acquire`]`(client, state_path, user, operation, force)` →
//!   guard; [`DeployLock::release`]`().await` (also best-effort on drop)

pub mod format;
pub mod hint;
mod local;
mod lock;
pub mod private;
mod remote;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiError, Client};
use crate::config::model::Bundle;
use crate::resources::ResourceAddr;

pub use local::{LocalStore, WalEntry, WalOp};
pub use lock::{DeployLock, LockInfo, LOCK_FILE};
pub use remote::{RemoteStore, STATE_FILE, TERRAFORM_FILE};

/// The Databricks CLI's local cache of a target:
/// `$DATABRICKS_BUNDLE_TMP/<target>/` when set, else
/// `<bundle_root>/.databricks/bundle/<target>/`.
pub fn official_cache_dir(bundle_root: &std::path::Path, target: &str) -> PathBuf {
    match std::env::var_os("DATABRICKS_BUNDLE_TMP").filter(|v| !v.is_empty()) {
        Some(tmp) => PathBuf::from(tmp).join(target),
        None => bundle_root.join(".databricks").join("bundle").join(target),
    }
}

/// Changes between two rewrites of the local `resources.json` (the log
/// carries the ones in between).
const SNAPSHOT_EVERY: u64 = 32;

/// Least time between two uploads of the workspace copy during an apply. Each
/// change is durable in the local log at once; uploading the whole state per
/// change would make a large deploy quadratic in bytes sent, so uploads are
/// spaced by time, and the spacing doubles (each wait is at least the time
/// since the first upload): a deploy of T seconds uploads about log2(T/3)
/// times, and as the state grows with the deploy the bytes sent stay within
/// about twice its final size (plus the flush at the end).
const UPLOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

/// `state_version` of the `resources.json` written by this build (the
/// Databricks CLI direct engine's format, see [`format`]).
pub const STATE_FORMAT_VERSION: u32 = format::STATE_VERSION;

/// Errors of the state store and the deploy lock.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("cannot {action} {path}: {source}")]
    #[diagnostic(code(lakebundle::state::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid: {message}")]
    #[diagnostic(
        code(lakebundle::state::parse),
        help("the file was not written by a compatible lakebundle; move it aside to start from empty state")
    )]
    Parse { path: String, message: String },
    #[error("state format version {found} is newer than this lakebundle supports ({supported})")]
    #[diagnostic(code(lakebundle::state::version), help("upgrade lakebundle"))]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("the deployment state requires features this lakebundle does not support: {features}")]
    #[diagnostic(code(lakebundle::state::features), help("upgrade lakebundle"))]
    UnsupportedFeatures { features: String },
    #[error("lineage mismatch in state files: they belong to different deployments\n{files}")]
    #[diagnostic(
        code(lakebundle::state::lineage),
        help(
            "keep the state file of the deployment this target really is and move the others aside (the local cache is `.lakebundle/<target>/`)"
        )
    )]
    LineageMismatch { files: String },
    #[error("same serial number in terraform and direct states\n{files}")]
    #[diagnostic(
        code(lakebundle::state::same_serial),
        help("one of them is stale: move it aside (a terraform state that was migrated is kept as terraform.tfstate.backup)")
    )]
    SameSerial { files: String },
    #[error("workspace state at {path}: {source}")]
    #[diagnostic(code(lakebundle::state::remote))]
    Remote {
        path: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error("the deployment lock is held by {}", lock::describe_holder(.user, .acquired_at, .operation, .host.as_deref(), *.pid, *.dead))]
    #[diagnostic(
        code(lakebundle::state::lock_held),
        help("wait for it to finish, or take the lock over with --force-lock if that run is dead")
    )]
    LockHeld {
        user: String,
        acquired_at: String,
        operation: String,
        /// Host and pid of the holder (locks written by lakebundle).
        host: Option<String>,
        pid: Option<u32>,
        /// The holder ran on this host and its process is gone.
        dead: bool,
    },
    #[error("cannot take the deployment lock at {path}: after {attempts} attempts the workspace neither confirmed the write nor shows a lock")]
    #[diagnostic(
        code(lakebundle::state::lock_unconfirmed),
        help("the workspace is failing writes; try again later")
    )]
    LockUnconfirmed { path: String, attempts: u32 },
    #[error("the deployment lock at {path} was taken over by {user} (operation: {operation})")]
    #[diagnostic(code(lakebundle::state::lock_lost))]
    LockLost {
        path: String,
        user: String,
        operation: String,
    },
}

/// One deployed resource as recorded in state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// Remote id (job id as a string; the name for named kinds).
    pub id: String,
    /// The resolved config as applied (deferred references filled in).
    pub applied: Value,
    /// Output fields offered to `${resources...}` references.
    #[serde(default)]
    pub outputs: Value,
    #[serde(default)]
    pub depends_on: Vec<ResourceAddr>,
}

/// `resources.json` (its file format: [`format`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentState {
    /// `state_version` (2; a version-3 state without features stays 3).
    pub state_version: u32,
    /// The tool that last wrote the file, as read (informational).
    pub cli_version: String,
    /// Identity of this deployment's state history (uuid), fixed at first save.
    pub lineage: String,
    /// Incremented on every recorded change.
    pub serial: u64,
    /// The CLI's `features` (kept as read).
    pub features: Option<serde_json::Map<String, Value>>,
    pub resources: BTreeMap<ResourceAddr, ResourceState>,
    /// Creates started but not recorded as finished (a crash, or a lost
    /// response): the next create of these looks for the object first.
    pub pending: BTreeSet<ResourceAddr>,
    /// Created, then failed to become ready (a failed provisioning): the
    /// object may look like the config, so the next plan replaces it
    /// rather than call it unchanged.
    pub tainted: BTreeSet<ResourceAddr>,
    /// Entries of kinds lakebundle does not deploy (written by the
    /// Databricks CLI), kept verbatim so handing the target back loses nothing.
    pub foreign: BTreeMap<String, Value>,
}

impl Default for DeploymentState {
    fn default() -> Self {
        DeploymentState::new()
    }
}

impl DeploymentState {
    /// Empty state with a fresh lineage (serial 0 = never saved).
    pub fn new() -> Self {
        DeploymentState {
            state_version: STATE_FORMAT_VERSION,
            cli_version: format::cli_version(),
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            features: None,
            resources: BTreeMap::new(),
            pending: BTreeSet::new(),
            tainted: BTreeSet::new(),
            foreign: BTreeMap::new(),
        }
    }

    /// True when nothing has ever been saved for this target.
    pub fn is_new(&self) -> bool {
        self.serial == 0
    }

    /// The lineage a plan records: `None` for state that was never saved.
    pub fn saved_lineage(&self) -> Option<String> {
        (!self.is_new()).then(|| self.lineage.clone())
    }

    pub fn get(&self, addr: &ResourceAddr) -> Option<&ResourceState> {
        self.resources.get(addr)
    }

    /// Parse `resources.json` text (the Databricks CLI's format, or
    /// lakebundle's earlier one). `origin` names the file in errors.
    pub fn from_json(text: &[u8], origin: &str) -> Result<Self, StateError> {
        format::parse(text, origin)
    }

    pub fn to_json(&self) -> Vec<u8> {
        format::serialize(self)
    }

    /// Apply one write-ahead-log operation (replay and live updates share this).
    pub fn apply_op(&mut self, op: WalOp) {
        match op {
            WalOp::Put { addr, resource } => {
                self.pending.remove(&addr);
                self.tainted.remove(&addr);
                self.resources.insert(addr, resource);
            }
            WalOp::Remove { addr } => {
                self.pending.remove(&addr);
                self.tainted.remove(&addr);
                self.resources.remove(&addr);
            }
            WalOp::Intent { addr } => {
                self.pending.insert(addr);
            }
            WalOp::Taint { addr } => {
                self.tainted.insert(addr);
            }
        }
    }
}

/// A terraform engine state found for the target (`terraform.tfstate` of the
/// Databricks CLI), retired once the direct state has replaced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerraformFile {
    /// `${workspace.state_path}/terraform.tfstate`
    Remote(String),
    /// `<bundle>/.databricks/bundle/<target>/terraform/terraform.tfstate`
    Local(PathBuf),
}

impl std::fmt::Display for TerraformFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TerraformFile::Remote(p) => f.write_str(p),
            TerraformFile::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Which state file won at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    /// No state anywhere: a first deploy.
    Empty,
    Terraform,
    Remote,
    Local,
}

/// One state file found at open.
struct Candidate {
    describe: String,
    lineage: String,
    serial: u64,
    terraform: bool,
    source: StateSource,
    state: DeploymentState,
}

/// Pick the state to work from, by the Databricks CLI's rules: in the order
/// [terraform remote, terraform local, direct remote, direct local], the
/// highest serial wins and a tie goes to the later one; every file must have
/// the same lineage; a direct and a terraform state may not share a serial.
fn reconcile(
    tf_remote: Option<(format::TfState, String)>,
    tf_local: Option<(format::TfState, PathBuf)>,
    remote: Option<(DeploymentState, String)>,
    local: Option<(DeploymentState, PathBuf)>,
) -> Result<(DeploymentState, StateSource), StateError> {
    let mut found: Vec<Candidate> = Vec::new();
    let tf = |tf: format::TfState, describe: String| Candidate {
        describe,
        lineage: tf.lineage.clone(),
        serial: tf.serial,
        terraform: true,
        source: StateSource::Terraform,
        state: tf.to_direct(),
    };
    if let Some((t, path)) = tf_remote {
        let d = format!(
            "{path}: remote terraform state serial={} lineage={:?}",
            t.serial, t.lineage
        );
        found.push(tf(t, d));
    }
    if let Some((t, path)) = tf_local {
        let d = format!(
            "{}: local terraform state serial={} lineage={:?}",
            path.display(),
            t.serial,
            t.lineage
        );
        found.push(tf(t, d));
    }
    if let Some((st, path)) = remote {
        found.push(Candidate {
            describe: format!(
                "{path}: remote direct state serial={} lineage={:?}",
                st.serial, st.lineage
            ),
            lineage: st.lineage.clone(),
            serial: st.serial,
            terraform: false,
            source: StateSource::Remote,
            state: st,
        });
    }
    if let Some((st, path)) = local {
        found.push(Candidate {
            describe: format!(
                "{}: local direct state serial={} lineage={:?}",
                path.display(),
                st.serial,
                st.lineage
            ),
            lineage: st.lineage.clone(),
            serial: st.serial,
            terraform: false,
            source: StateSource::Local,
            state: st,
        });
    }
    let files = || {
        let mut s = String::from("Available state files:");
        for c in &found {
            s.push_str("\n- ");
            s.push_str(&c.describe);
        }
        s
    };
    if found.len() > 1 {
        let first = &found[0].lineage;
        if found
            .iter()
            .any(|c| c.lineage.is_empty() || &c.lineage != first)
        {
            return Err(StateError::LineageMismatch { files: files() });
        }
        let max = |tf: bool| {
            found
                .iter()
                .filter(|c| c.terraform == tf)
                .map(|c| c.serial)
                .max()
        };
        if let (Some(t), Some(d)) = (max(true), max(false)) {
            if t == d {
                return Err(StateError::SameSerial { files: files() });
            }
        }
    }
    // Stable: on a tie the later file (local over remote, direct over
    // terraform) wins.
    found.sort_by_key(|c| c.serial);
    Ok(match found.pop() {
        None => (DeploymentState::new(), StateSource::Empty),
        Some(c) => (c.state, c.source),
    })
}

/// Serial numbers already persisted by each writer, so concurrent records
/// coalesce: one write of the newest state covers every change before it.
#[derive(Debug, Default)]
struct Written {
    local: u64,
}

/// The live state of one deployment, persisted on every change.
#[derive(Debug)]
pub struct StateStore {
    local: LocalStore,
    remote: Option<RemoteStore>,
    state: std::sync::Mutex<DeploymentState>,
    written: std::sync::Mutex<Written>,
    /// Serial last uploaded; held across the upload so uploads never overlap.
    uploaded: tokio::sync::Mutex<u64>,
    /// When the first and the last upload of this process started.
    upload_started: std::sync::Mutex<Option<(std::time::Instant, std::time::Instant)>>,
    /// Terraform engine states of this target, to retire after a deploy.
    terraform: Vec<TerraformFile>,
    source: StateSource,
}

impl StateStore {
    /// Open the local cache and (when given) the workspace copy, and reconcile:
    /// the higher serial wins; a lineage mismatch is an error. A newer
    /// workspace copy refreshes the local cache.
    pub async fn open(local: LocalStore, remote: Option<RemoteStore>) -> Result<Self, StateError> {
        StateStore::open_with_terraform(local, remote, None).await
    }

    /// [`StateStore::open`], also looking for a terraform engine state
    /// (remote, and at `tf_local` when given): a target the Databricks CLI
    /// deployed with terraform is taken over with its ids and lineage, and
    /// becomes a direct-engine state on the next successful deploy.
    pub async fn open_with_terraform(
        local: LocalStore,
        remote: Option<RemoteStore>,
        tf_local: Option<PathBuf>,
    ) -> Result<Self, StateError> {
        // The local files are read while the workspace copies are fetched.
        let local_load = {
            let local = local.clone();
            tokio::task::spawn_blocking(move || local.load_with_snapshot())
        };
        let (loaded, fetched) = match &remote {
            Some(r) => {
                let (loaded, bytes, tf) =
                    tokio::join!(local_load, r.read_bytes(), r.load_terraform());
                (loaded, Some((bytes, tf)))
            }
            None => (local_load.await, None),
        };
        let (local_state, snapshot_serial, digest) = match loaded {
            Ok(loaded) => loaded?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        // The snapshot is the local state only when the log added nothing.
        let same = digest.filter(|_| {
            local_state
                .as_ref()
                .is_some_and(|s| s.serial == snapshot_serial)
        });
        let (remote_state, tf_remote) = match (&remote, fetched) {
            (Some(r), Some((bytes, tf))) => {
                // Same bytes as the snapshot: only its lineage and serial
                // matter to `reconcile`, where the local copy wins the tie.
                let st = r.state_unless_same(bytes?, same, || {
                    local_state.as_ref().map(|l| DeploymentState {
                        lineage: l.lineage.clone(),
                        serial: l.serial,
                        ..DeploymentState::new()
                    })
                })?;
                (st, tf?)
            }
            _ => (None, None),
        };
        let tf_local = match tf_local {
            Some(p) => match std::fs::read(&p) {
                Ok(bytes) => Some((
                    format::parse_terraform(&bytes, &p.display().to_string())?,
                    p,
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(StateError::Io {
                        action: "read",
                        path: p,
                        source,
                    })
                }
            },
            None => None,
        };
        let mut terraform = Vec::new();
        if let (Some(r), Some(_)) = (&remote, &tf_remote) {
            terraform.push(TerraformFile::Remote(r.terraform_path()));
        }
        if let Some((_, p)) = &tf_local {
            terraform.push(TerraformFile::Local(p.clone()));
        }
        let remote_serial = remote_state.as_ref().map(|s| s.serial).unwrap_or(0);
        let local_serial = local_state.as_ref().map(|s| s.serial).unwrap_or(0);
        let (state, source) = reconcile(
            tf_remote.map(|t| {
                (
                    t,
                    remote
                        .as_ref()
                        .map(|r| r.terraform_path())
                        .unwrap_or_default(),
                )
            }),
            tf_local,
            remote_state.map(|s| {
                (
                    s,
                    remote.as_ref().map(|r| r.file_path()).unwrap_or_default(),
                )
            }),
            local_state.map(|s| (s, local.snapshot_path())),
        )?;
        // What `resources.json` holds: changes only in the log (a crash
        // before the periodic snapshot) are written out by the next flush.
        let mut on_disk = snapshot_serial;
        if state.serial > local_serial
            && matches!(source, StateSource::Remote | StateSource::Terraform)
        {
            // The local cache must hold the whole base before the log gets
            // entries on top of it (a terraform takeover included).
            local.write_snapshot(&state)?;
            local.compact_wal(state.serial)?;
            on_disk = state.serial;
        }
        Ok(StateStore {
            written: std::sync::Mutex::new(Written { local: on_disk }),
            uploaded: tokio::sync::Mutex::new(remote_serial),
            upload_started: std::sync::Mutex::new(None),
            local,
            remote,
            state: std::sync::Mutex::new(state),
            terraform,
            source,
        })
    }

    /// The store of a loaded bundle: `.lakebundle/<target>/` under the bundle
    /// root, and `${workspace.state_path}` when a client is given; a
    /// terraform engine state of the Databricks CLI is taken over.
    pub async fn for_bundle(bundle: &Bundle, client: Option<&Client>) -> Result<Self, StateError> {
        StateStore::for_target(
            &bundle.root,
            &bundle.target,
            &bundle.workspace.state_path,
            client,
        )
        .await
    }

    /// [`StateStore::for_bundle`] from what it needs of the bundle: its root
    /// folder, target and workspace state path (`plan` opens the state from
    /// where the last command found it while the bundle loads).
    pub async fn for_target(
        root: &std::path::Path,
        target: &str,
        state_path: &str,
        client: Option<&Client>,
    ) -> Result<Self, StateError> {
        let local = LocalStore::new(root, target);
        let remote = client.map(|c| RemoteStore::new(c.clone(), state_path));
        let tf_local = official_cache_dir(root, target)
            .join("terraform")
            .join(remote::TERRAFORM_FILE);
        let store = StateStore::open_with_terraform(local, remote, Some(tf_local)).await?;
        if let Some(c) = client {
            store.read_missing_outputs(c).await;
        }
        Ok(store)
    }

    /// Which state file the store started from.
    pub fn source(&self) -> StateSource {
        self.source
    }

    /// Terraform engine states found for this target (same lineage).
    pub fn terraform_files(&self) -> &[TerraformFile] {
        &self.terraform
    }

    /// Entries without recorded outputs (written by the Databricks CLI, a
    /// terraform takeover, a bind) get them from the workspace, in memory:
    /// `${resources...}` references to them resolve, and the next recorded
    /// change persists them. A failed read leaves them empty (the plan reads
    /// the object again and reports what is wrong).
    async fn read_missing_outputs(&self, client: &Client) {
        let missing: Vec<(ResourceAddr, String)> = self
            .lock_state()
            .resources
            .iter()
            .filter(|(_, rs)| rs.outputs.is_null())
            .map(|(a, rs)| (a.clone(), rs.id.clone()))
            .collect();
        let reads = futures::stream::iter(missing)
            .map(|(addr, id)| async move {
                let kind = crate::resources::kind_impl(addr.kind);
                let out = match kind.read(client, &id).await {
                    Ok(Some(remote)) => Some(kind.outputs(&id, &remote)),
                    _ => None,
                };
                (addr, out)
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        let mut st = self.lock_state();
        for (addr, out) in reads {
            if let (Some(rs), Some(out)) = (st.resources.get_mut(&addr), out) {
                rs.outputs = out;
            }
        }
    }

    /// After a successful deploy from direct state: upload it, then keep
    /// each terraform state of the target as `terraform.tfstate.backup`, as
    /// the Databricks CLI does after migrating. Returns what was retired.
    pub async fn retire_terraform(&self) -> Result<Vec<TerraformFile>, StateError> {
        if self.terraform.is_empty() {
            return Ok(vec![]);
        }
        self.sync_remote().await?;
        self.retire_terraform_files().await?;
        Ok(self.terraform.clone())
    }

    async fn retire_terraform_files(&self) -> Result<(), StateError> {
        for f in &self.terraform {
            match f {
                TerraformFile::Remote(_) => {
                    if let Some(r) = &self.remote {
                        r.backup_terraform().await?;
                    }
                }
                TerraformFile::Local(p) => {
                    let backup = p.with_extension("tfstate.backup");
                    match std::fs::rename(p, &backup) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(StateError::Io {
                                action: "rename",
                                path: p.clone(),
                                source,
                            })
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> DeploymentState {
        self.lock_state().clone()
    }

    /// The state, for a command that only reads it (no copy of a state that
    /// can hold 10,000 resources).
    pub fn into_state(self) -> DeploymentState {
        self.state
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, DeploymentState> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One resource's entry (cheaper than a whole snapshot).
    pub fn get(&self, addr: &ResourceAddr) -> Option<ResourceState> {
        self.lock_state().resources.get(addr).cloned()
    }

    /// Run `f` on the state in place (no copy; do not call back into the store from `f`).
    pub fn read<R>(&self, f: impl FnOnce(&DeploymentState) -> R) -> R {
        f(&self.lock_state())
    }

    /// Each resource's recorded dependencies (without copying the state).
    pub fn dependencies(&self) -> HashMap<ResourceAddr, Vec<ResourceAddr>> {
        self.lock_state()
            .resources
            .iter()
            .map(|(a, rs)| (a.clone(), rs.depends_on.clone()))
            .collect()
    }

    /// Whether `addr`'s entry is exactly `resource` (without copying it out).
    pub fn holds(&self, addr: &ResourceAddr, resource: &ResourceState) -> bool {
        self.lock_state().resources.get(addr) == Some(resource)
    }

    /// True when a create of `addr` was started and never recorded as done.
    pub fn is_pending(&self, addr: &ResourceAddr) -> bool {
        self.lock_state().pending.contains(addr)
    }

    /// Log, before a create call, that `addr` is being created, so a crash
    /// before the result is recorded leads the next run to look for it
    /// instead of creating a duplicate. Local log only: it is crash knowledge
    /// of this machine, and the next recorded change carries it everywhere.
    pub fn intend(&self, addr: &ResourceAddr) -> Result<(), StateError> {
        self.log_and_apply(WalOp::Intent { addr: addr.clone() })
            .map(|_| ())
    }

    /// Log `op` (fsync'd) and apply it to the state, under the state lock so
    /// the log is in serial order. Returns the new serial.
    fn log_and_apply(&self, op: WalOp) -> Result<u64, StateError> {
        let mut st = self.lock_state();
        st.serial += 1;
        let entry = WalEntry {
            lineage: st.lineage.clone(),
            serial: st.serial,
            op,
        };
        let logged = self.local.append_wal(&entry);
        // Applied even when the log write failed, as before: the remote
        // change happened, and this run's later steps must see it.
        st.apply_op(entry.op);
        logged.map(|()| st.serial)
    }

    /// Record that `addr` now exists remotely as `resource`.
    pub async fn put(
        &self,
        addr: &ResourceAddr,
        resource: ResourceState,
    ) -> Result<(), StateError> {
        self.record(WalOp::Put {
            addr: addr.clone(),
            resource,
        })
        .await
    }

    /// Record that the object created for `addr` failed to become ready.
    pub async fn taint(&self, addr: &ResourceAddr) -> Result<(), StateError> {
        self.record(WalOp::Taint { addr: addr.clone() }).await
    }

    /// Record that `addr` no longer exists remotely.
    pub async fn remove(&self, addr: &ResourceAddr) -> Result<(), StateError> {
        self.record(WalOp::Remove { addr: addr.clone() }).await
    }

    async fn record(&self, op: WalOp) -> Result<(), StateError> {
        let serial = self.log_and_apply(op)?;
        self.save_local_if_due(serial)?;
        self.save_remote(serial).await
    }

    /// The fsync'd log line already makes the change durable (a reload
    /// replays the log over `resources.json`); rewriting the whole snapshot
    /// and compacting the log after every change would make a large deploy
    /// quadratic in I/O, so that happens every [`SNAPSHOT_EVERY`] changes and
    /// on every flush.
    fn save_local_if_due(&self, serial: u64) -> Result<(), StateError> {
        let last = self.written.lock().unwrap_or_else(|p| p.into_inner()).local;
        if serial.saturating_sub(last) >= SNAPSHOT_EVERY {
            self.save_local(serial)?;
        }
        Ok(())
    }

    fn save_local(&self, serial: u64) -> Result<(), StateError> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if written.local >= serial {
            return Ok(());
        }
        // Serialised under the state lock (no copy of the whole state).
        let (bytes, snap_serial) = {
            let st = self.lock_state();
            (st.to_json(), st.serial)
        };
        self.local.write_snapshot_bytes(&bytes)?;
        written.local = snap_serial;
        // Under the state lock, so no append races the rewrite of the log.
        let _st = self.lock_state();
        self.local.compact_wal(snap_serial)
    }

    /// Overwrite the workspace copy when the last upload started at least
    /// [`UPLOAD_INTERVAL`] ago. A change that is not uploaded now is not lost:
    /// the local log already holds it durably, the next upload carries it
    /// (uploads send the whole latest state), and [`StateStore::sync_remote`]
    /// flushes at the end of every apply. While another upload is in flight
    /// this does not wait either, so a deploy's operations are never
    /// serialised behind state uploads.
    async fn save_remote(&self, serial: u64) -> Result<(), StateError> {
        if !self.upload_due() {
            return Ok(());
        }
        let Ok(mut uploaded) = self.uploaded.try_lock() else {
            return Ok(());
        };
        self.upload_locked(&mut uploaded, serial).await
    }

    fn upload_due(&self) -> bool {
        let started = *self
            .upload_started
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        started.is_none_or(|(first, last)| {
            last.elapsed() >= UPLOAD_INTERVAL.max(last.duration_since(first))
        })
    }

    async fn upload_locked(&self, uploaded: &mut u64, serial: u64) -> Result<(), StateError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        if *uploaded >= serial {
            return Ok(());
        }
        {
            let mut started = self
                .upload_started
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            *started = Some((started.map_or(now, |(first, _)| first), now));
        }
        let (bytes, snap_serial) = {
            let st = self.lock_state();
            (st.to_json(), st.serial)
        };
        remote.save_bytes(&bytes).await?;
        *uploaded = snap_serial;
        Ok(())
    }

    /// Upload the current state if the workspace copy is behind: waits for an
    /// upload in flight, then sends what it did not cover (the end of every
    /// apply, and after a crash between the local save and the upload).
    pub async fn sync_remote(&self) -> Result<(), StateError> {
        let mut uploaded = self.uploaded.lock().await;
        let serial = self.lock_state().serial;
        self.save_local(serial)?;
        self.upload_locked(&mut uploaded, serial).await
    }

    /// Remove the state everywhere (after a destroy) and start a fresh lineage.
    /// A terraform state this target was taken over from is kept as a
    /// backup too: it lists objects that no longer exist.
    pub async fn clear(&self) -> Result<(), StateError> {
        if let Some(remote) = &self.remote {
            remote.delete().await?;
        }
        self.retire_terraform_files().await?;
        self.local.clear()?;
        let fresh = DeploymentState::new();
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = Written::default();
        *self.uploaded.lock().await = 0;
        *self.lock_state() = fresh;
        Ok(())
    }
}
