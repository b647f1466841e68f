//! `deploy.lock` in the workspace state directory.
//!
//! Acquire = create without overwrite (with overwrite when forced), then read
//! back and compare the id: the read-back is the real guard, since two racing
//! creates rely on the server rejecting the second. Release = verify the id,
//! delete. The guard releases on drop too (best effort, when a runtime is
//! available); callers should `release().await` explicitly.

use serde::{Deserialize, Serialize};

use super::remote::{delete_file, is_already_exists, join, read_file, write_file};
use super::StateError;
use crate::api::Client;

pub const LOCK_FILE: &str = "deploy.lock";

/// Contents of `deploy.lock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub user: String,
    /// RFC 3339.
    pub acquired_at: String,
    /// `deploy`, `destroy`, ...
    pub operation: String,
}

/// A held deployment lock.
#[derive(Debug)]
pub struct DeployLock {
    client: Client,
    path: String,
    info: LockInfo,
    released: bool,
}

async fn read_lock(client: &Client, path: &str) -> Result<Option<LockInfo>, StateError> {
    let bytes = read_file(client, path)
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
            user: user.to_string(),
            acquired_at: chrono::Utc::now().to_rfc3339(),
            operation: operation.to_string(),
        };
        let body = serde_json::to_vec(&info).unwrap_or_default();
        match write_file(client, &path, &body, force).await {
            Ok(()) => {}
            // Someone holds it, or our create may have landed: the read-back decides.
            Err(e) if is_already_exists(&e) || e.is_outcome_unknown() => {}
            Err(source) => {
                return Err(StateError::Remote {
                    path,
                    source: Box::new(source),
                })
            }
        }
        match read_lock(client, &path).await {
            Ok(Some(held)) if held.id == info.id => Ok(DeployLock {
                client: client.clone(),
                path,
                info,
                released: false,
            }),
            Ok(Some(held)) => Err(StateError::LockHeld {
                user: held.user,
                acquired_at: held.acquired_at,
                operation: held.operation,
            }),
            // Released between our create and the read-back: not ours.
            Ok(None) => Err(StateError::LockHeld {
                user: "another process".into(),
                acquired_at: "just now".into(),
                operation: "unknown".into(),
            }),
            Err(e) => Err(e),
        }
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
