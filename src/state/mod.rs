//! Deployment state, write-ahead log and deploy lock.
//!
//! Per target, `resources.json` = [`DeploymentState`] lives in the workspace
//! under `${workspace.state_path}` and is cached in the bundle at
//! `.lakebundle/<target>/`. Every successful remote operation is recorded at
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

mod local;
mod lock;
pub mod private;
mod remote;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiError, Client};
use crate::config::model::Bundle;
use crate::resources::ResourceAddr;

pub use local::{LocalStore, WalEntry, WalOp};
pub use lock::{DeployLock, LockInfo, LOCK_FILE};
pub use remote::{RemoteStore, STATE_FILE};

/// Changes between two rewrites of the local `resources.json` (the log
/// carries the ones in between).
const SNAPSHOT_EVERY: u64 = 32;

/// Least time between two uploads of the workspace copy during an apply. Each
/// change is durable in the local log at once; uploading the whole state per
/// change would make a large deploy quadratic in bytes sent, so the count of
/// uploads is bounded by time instead (plus the flush at the end).
const UPLOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

/// Version of the `resources.json` format written by this build.
pub const STATE_FORMAT_VERSION: u32 = 1;

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
    #[error("local state (lineage {local}) and workspace state (lineage {remote}) belong to different deployments")]
    #[diagnostic(
        code(lakebundle::state::lineage),
        help(
            "remove the local cache `.lakebundle/<target>/` if the workspace copy is the right one"
        )
    )]
    LineageMismatch { local: String, remote: String },
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

/// `resources.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub format_version: u32,
    /// Identity of this deployment's state history (uuid), fixed at first save.
    pub lineage: String,
    /// Incremented on every recorded change.
    pub serial: u64,
    #[serde(default)]
    pub resources: BTreeMap<ResourceAddr, ResourceState>,
    /// Creates started but not recorded as finished (a crash, or a lost
    /// response): the next create of these looks for the object first.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending: BTreeSet<ResourceAddr>,
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
            format_version: STATE_FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            resources: BTreeMap::new(),
            pending: BTreeSet::new(),
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

    /// Parse `resources.json` text. `origin` names the file in errors.
    pub fn from_json(text: &[u8], origin: &str) -> Result<Self, StateError> {
        let state: DeploymentState =
            serde_json::from_slice(text).map_err(|e| StateError::Parse {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        if state.format_version > STATE_FORMAT_VERSION {
            return Err(StateError::UnsupportedVersion {
                found: state.format_version,
                supported: STATE_FORMAT_VERSION,
            });
        }
        Ok(state)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data into memory cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Apply one write-ahead-log operation (replay and live updates share this).
    pub fn apply_op(&mut self, op: &WalOp) {
        match op {
            WalOp::Put { addr, resource } => {
                self.pending.remove(addr);
                self.resources.insert(addr.clone(), resource.clone());
            }
            WalOp::Remove { addr } => {
                self.pending.remove(addr);
                self.resources.remove(addr);
            }
            WalOp::Intent { addr } => {
                self.pending.insert(addr.clone());
            }
        }
    }
}

/// Pick the winner between the local cache and the workspace copy.
fn reconcile(
    local: Option<DeploymentState>,
    remote: Option<DeploymentState>,
) -> Result<DeploymentState, StateError> {
    match (local, remote) {
        (None, None) => Ok(DeploymentState::new()),
        (Some(s), None) | (None, Some(s)) => Ok(s),
        (Some(l), Some(r)) => {
            if l.lineage != r.lineage {
                return Err(StateError::LineageMismatch {
                    local: l.lineage,
                    remote: r.lineage,
                });
            }
            Ok(if l.serial >= r.serial { l } else { r })
        }
    }
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
    /// When the last upload started (`None`: none yet in this process).
    upload_started: std::sync::Mutex<Option<std::time::Instant>>,
}

impl StateStore {
    /// Open the local cache and (when given) the workspace copy, and reconcile:
    /// the higher serial wins; a lineage mismatch is an error. A newer
    /// workspace copy refreshes the local cache.
    pub async fn open(local: LocalStore, remote: Option<RemoteStore>) -> Result<Self, StateError> {
        let (local_state, snapshot_serial) = local.load_with_snapshot_serial()?;
        let remote_state = match &remote {
            Some(r) => r.load().await?,
            None => None,
        };
        let remote_serial = remote_state.as_ref().map(|s| s.serial).unwrap_or(0);
        let local_serial = local_state.as_ref().map(|s| s.serial).unwrap_or(0);
        let state = reconcile(local_state, remote_state)?;
        // What `resources.json` holds: changes only in the log (a crash
        // before the periodic snapshot) are written out by the next flush.
        let mut on_disk = snapshot_serial;
        if remote_serial > local_serial {
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
        })
    }

    /// The store of a loaded bundle: `.lakebundle/<target>/` under the bundle
    /// root, and `${workspace.state_path}` when a client is given.
    pub async fn for_bundle(bundle: &Bundle, client: Option<&Client>) -> Result<Self, StateError> {
        let local = LocalStore::new(&bundle.root, &bundle.target);
        let remote = client.map(|c| RemoteStore::new(c.clone(), &bundle.workspace.state_path));
        StateStore::open(local, remote).await
    }

    pub fn local(&self) -> &LocalStore {
        &self.local
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> DeploymentState {
        self.lock_state().clone()
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, DeploymentState> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One resource's entry (cheaper than a whole snapshot).
    pub fn get(&self, addr: &ResourceAddr) -> Option<ResourceState> {
        self.lock_state().resources.get(addr).cloned()
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
        let mut st = self.lock_state();
        st.serial += 1;
        let op = WalOp::Intent { addr: addr.clone() };
        st.apply_op(&op);
        let entry = WalEntry {
            lineage: st.lineage.clone(),
            serial: st.serial,
            op,
        };
        self.local.append_wal(&entry)
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

    /// Record that `addr` no longer exists remotely.
    pub async fn remove(&self, addr: &ResourceAddr) -> Result<(), StateError> {
        self.record(WalOp::Remove { addr: addr.clone() }).await
    }

    async fn record(&self, op: WalOp) -> Result<(), StateError> {
        let serial = {
            let mut st = self.lock_state();
            st.serial += 1;
            st.apply_op(&op);
            let entry = WalEntry {
                lineage: st.lineage.clone(),
                serial: st.serial,
                op,
            };
            // Appended under the state lock so the log is in serial order.
            self.local.append_wal(&entry)?;
            st.serial
        };
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
        started.is_none_or(|t| t.elapsed() >= UPLOAD_INTERVAL)
    }

    async fn upload_locked(&self, uploaded: &mut u64, serial: u64) -> Result<(), StateError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        if *uploaded >= serial {
            return Ok(());
        }
        *self
            .upload_started
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
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
    pub async fn clear(&self) -> Result<(), StateError> {
        if let Some(remote) = &self.remote {
            remote.delete().await?;
        }
        self.local.clear()?;
        let fresh = DeploymentState::new();
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = Written::default();
        *self.uploaded.lock().await = 0;
        *self.lock_state() = fresh;
        Ok(())
    }
}
