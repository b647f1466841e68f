//! `deploy.lock` in the workspace state directory.
//!
//! Acquire = create without overwrite (with overwrite when forced), then read
//! back and compare the id: the read-back is the real guard, since two racing
//! creates rely on the server rejecting the second. A write whose outcome is
//! unknown and whose read-back finds no lock is retried (a few times); a
//! holder is only ever reported from a lock file actually read. Release =
//! verify the id, delete. The guard releases on drop too (best effort, when a
//! runtime is available); callers should `release().await` explicitly.
//!
//! The file keeps the Databricks CLI's field names (`ID`, `AcquisitionTime`,
//! `IsForced`, `User`) so either tool reads the other's lock, and adds
//! `operation`, `host` and `pid`: a holder on this host whose pid no longer
//! runs is reported as dead.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::remote::{delete_file, is_already_exists, join, read_file, write_file};
use super::StateError;
use crate::api::{ApiError, Client};

pub const LOCK_FILE: &str = "deploy.lock";

/// Acquisition attempts when the workspace leaves the outcome unknown and no
/// lock is found afterwards.
const ATTEMPTS: u32 = 5;

/// Contents of `deploy.lock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    #[serde(rename = "ID", alias = "id")]
    pub id: String,
    /// RFC 3339.
    #[serde(rename = "AcquisitionTime", alias = "acquired_at")]
    pub acquired_at: String,
    #[serde(rename = "IsForced", default)]
    pub is_forced: bool,
    #[serde(rename = "User", alias = "user")]
    pub user: String,
    /// `deploy`, `destroy`, ... (absent in the Databricks CLI's locks).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// Host name of the holder's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Process id of the holder on `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// This machine's host name.
pub fn this_host() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // on success when the name fits (we cut at the first NUL regardless).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// Whether a process with this pid exists on this machine (a process of
/// another user counts: it exists).
fn pid_runs(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return true;
    };
    if p <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(p, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl LockInfo {
    /// The holder ran on this host and its process is gone.
    pub fn holder_is_dead(&self) -> bool {
        match (&self.host, self.pid) {
            (Some(h), Some(pid)) => this_host().as_deref() == Some(h.as_str()) && !pid_runs(pid),
            _ => false,
        }
    }

    fn held_error(self) -> StateError {
        let dead = self.holder_is_dead();
        StateError::LockHeld {
            user: self.user,
            acquired_at: self.acquired_at,
            // Empty for a lock of the Databricks CLI (it records no operation).
            operation: self.operation,
            host: self.host,
            pid: self.pid,
            dead,
        }
    }
}

/// `a dead holder (pid 4242 no longer runs on this host): me@x.com on host h since T (12m ago) (operation: deploy)`
/// or `me@x.com (host h, pid 4242) since T (12m ago) (operation: deploy)`.
pub(crate) fn describe_holder(
    user: &str,
    acquired_at: &str,
    operation: &str,
    host: Option<&str>,
    pid: Option<u32>,
    dead: bool,
) -> String {
    let age = chrono::DateTime::parse_from_rfc3339(acquired_at)
        .ok()
        .map(|t| chrono::Utc::now().signed_duration_since(t))
        .filter(|d| d.num_seconds() >= 0)
        .map(|d| {
            let s = d.num_seconds();
            if s < 120 {
                format!(" ({s}s ago)")
            } else if s < 2 * 3600 {
                format!(" ({}m ago)", s / 60)
            } else if s < 2 * 86400 {
                format!(" ({}h ago)", s / 3600)
            } else {
                format!(" ({}d ago)", s / 86400)
            }
        })
        .unwrap_or_default();
    let op = if operation.is_empty() {
        String::new()
    } else {
        format!(" (operation: {operation})")
    };
    match (dead, host, pid) {
        (true, Some(h), Some(p)) => format!(
            "a dead holder (pid {p} no longer runs on this host): {user} on host {h} since {acquired_at}{age}{op}"
        ),
        (_, Some(h), Some(p)) => {
            format!("{user} (host {h}, pid {p}) since {acquired_at}{age}{op}")
        }
        _ => format!("{user} since {acquired_at}{age}{op}"),
    }
}

/// A held deployment lock.
#[derive(Debug)]
pub struct DeployLock {
    client: Client,
    path: String,
    info: LockInfo,
    released: bool,
}

/// The two file operations acquisition needs (the workspace; a script in tests).
#[async_trait::async_trait]
trait LockFiles: Sync {
    async fn write(&self, path: &str, body: &[u8], overwrite: bool) -> Result<(), ApiError>;
    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ApiError>;
}

#[async_trait::async_trait]
impl LockFiles for Client {
    async fn write(&self, path: &str, body: &[u8], overwrite: bool) -> Result<(), ApiError> {
        write_file(self, path, body, overwrite).await
    }
    async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, ApiError> {
        read_file(self, path).await
    }
}

async fn read_lock(files: &dyn LockFiles, path: &str) -> Result<Option<LockInfo>, StateError> {
    let bytes = files
        .read(path)
        .await
        .map_err(|source| StateError::Remote {
            path: path.to_string(),
            source: Box::new(source),
        })?;
    match bytes {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| StateError::Parse {
                path: path.to_string(),
                message: e.to_string(),
            }),
    }
}

/// Write `info` at `path` and confirm by reading it back.
async fn acquire_at(
    files: &dyn LockFiles,
    path: &str,
    info: &LockInfo,
    force: bool,
) -> Result<(), StateError> {
    let body = serde_json::to_vec(info).map_err(|e| StateError::Parse {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    for attempt in 1..=ATTEMPTS {
        match files.write(path, &body, force).await {
            Ok(()) => {}
            // Someone holds it, or our create may have landed: the read-back decides.
            Err(e) if is_already_exists(&e) || e.is_outcome_unknown() => {}
            Err(source) => {
                return Err(StateError::Remote {
                    path: path.to_string(),
                    source: Box::new(source),
                })
            }
        }
        match read_lock(files, path).await? {
            Some(held) if held.id == info.id => return Ok(()),
            Some(held) => return Err(held.held_error()),
            // Our write was lost, or a holder released in between: nobody
            // holds it now, so try again rather than guess a holder.
            None => tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await,
        }
    }
    Err(StateError::LockUnconfirmed {
        path: path.to_string(),
        attempts: ATTEMPTS,
    })
}

impl DeployLock {
    /// Take the lock in `state_path` for `operation` on behalf of `user`.
    /// A lock held by someone else fails with [`StateError::LockHeld`] unless
    /// `force`, which takes it over.
    pub async fn acquire(
        client: &Client,
        state_path: &str,
        user: &str,
        operation: &str,
        force: bool,
    ) -> Result<DeployLock, StateError> {
        let path = join(state_path, LOCK_FILE);
        let info = LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            acquired_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            is_forced: force,
            user: user.to_string(),
            operation: operation.to_string(),
            host: this_host(),
            pid: Some(std::process::id()),
        };
        acquire_at(client, &path, &info, force).await?;
        Ok(DeployLock {
            client: client.clone(),
            path,
            info,
            released: false,
        })
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Release the lock if it is still ours. A lock taken over by someone
    /// else is left alone and reported.
    pub async fn release(mut self) -> Result<(), StateError> {
        self.released = true;
        release(&self.client, &self.path, &self.info.id).await
    }
}

async fn release(client: &Client, path: &str, id: &str) -> Result<(), StateError> {
    match read_lock(client, path).await? {
        None => Ok(()),
        Some(held) if held.id == id => {
            delete_file(client, path)
                .await
                .map_err(|source| StateError::Remote {
                    path: path.to_string(),
                    source: Box::new(source),
                })
        }
        Some(held) => Err(StateError::LockLost {
            path: path.to_string(),
            user: held.user,
            operation: held.operation,
        }),
    }
}

impl Drop for DeployLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (client, path, id) = (self.client.clone(), self.path.clone(), self.info.id.clone());
            handle.spawn(async move {
                let _ = release(&client, &path, &id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A workspace whose writes answer as scripted (`Some(true)`: applied,
    /// `Some(false)`: lost without effect, `None`: applied but answered as
    /// unknown); reads see what was applied.
    struct Scripted {
        writes: Mutex<Vec<(bool, bool)>>,
        file: Mutex<Option<Vec<u8>>>,
    }

    fn unknown() -> ApiError {
        ApiError::OutcomeUnknown {
            method: "POST".into(),
            path: "/import-file".into(),
            message: "connection reset".into(),
        }
    }

    #[async_trait::async_trait]
    impl LockFiles for Scripted {
        async fn write(&self, _: &str, body: &[u8], _: bool) -> Result<(), ApiError> {
            let (applied, answered) = self.writes.lock().unwrap().remove(0);
            if applied {
                *self.file.lock().unwrap() = Some(body.to_vec());
            }
            if answered {
                Ok(())
            } else {
                Err(unknown())
            }
        }
        async fn read(&self, _: &str) -> Result<Option<Vec<u8>>, ApiError> {
            Ok(self.file.lock().unwrap().clone())
        }
    }

    fn info(id: &str) -> LockInfo {
        LockInfo {
            id: id.into(),
            acquired_at: "2024-01-15T15:40:00Z".into(),
            is_forced: false,
            user: "me@example.com".into(),
            operation: "deploy".into(),
            host: this_host(),
            pid: Some(std::process::id()),
        }
    }

    #[tokio::test]
    async fn a_lost_write_is_retried_not_blamed_on_another_holder() {
        let files = Scripted {
            // Lost twice (nothing landed), then applied.
            writes: Mutex::new(vec![(false, false), (false, false), (true, true)]),
            file: Mutex::new(None),
        };
        acquire_at(&files, "/s/deploy.lock", &info("ours"), false)
            .await
            .expect("acquired on the third attempt");
        assert!(files.writes.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_outcome_that_landed_is_ours() {
        let files = Scripted {
            writes: Mutex::new(vec![(true, false)]),
            file: Mutex::new(None),
        };
        acquire_at(&files, "/s/deploy.lock", &info("ours"), false)
            .await
            .expect("the read-back finds our id");
    }

    #[tokio::test]
    async fn writes_that_never_land_give_up_without_inventing_a_holder() {
        let files = Scripted {
            writes: Mutex::new(vec![(false, false); ATTEMPTS as usize]),
            file: Mutex::new(None),
        };
        let err = acquire_at(&files, "/s/deploy.lock", &info("ours"), false)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StateError::LockUnconfirmed {
                    attempts: ATTEMPTS,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_dead_holder_on_this_host_is_reported_dead() {
        // A pid that just exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let theirs = LockInfo {
            pid: Some(dead_pid),
            ..info("theirs")
        };
        let files = Scripted {
            writes: Mutex::new(vec![(false, false)]),
            file: Mutex::new(Some(serde_json::to_vec(&theirs).unwrap())),
        };
        // The existing lock is answered as "already exists" by a real
        // workspace; here the write is simply lost and the read-back decides.
        let err = acquire_at(&files, "/s/deploy.lock", &info("ours"), false)
            .await
            .unwrap_err();
        match &err {
            StateError::LockHeld { dead, pid, .. } => {
                assert!(*dead);
                assert_eq!(*pid, Some(dead_pid));
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "dead holder (pid {dead_pid} no longer runs on this host)"
            )),
            "{text}"
        );
    }

    #[test]
    fn lock_file_uses_the_databricks_cli_field_names() {
        let v = serde_json::to_value(info("x")).unwrap();
        for k in [
            "ID",
            "AcquisitionTime",
            "IsForced",
            "User",
            "operation",
            "pid",
        ] {
            assert!(v.get(k).is_some(), "{k} in {v}");
        }
        // A lock written by the Databricks CLI reads.
        let theirs: LockInfo = serde_json::from_str(
            r#"{"ID":"1","AcquisitionTime":"2024-01-15T15:40:00Z","IsForced":false,"User":"u@x.com"}"#,
        )
        .unwrap();
        assert_eq!(theirs.user, "u@x.com");
        assert!(!theirs.holder_is_dead());
    }
}
