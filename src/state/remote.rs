//! The workspace copy of the state, and the small workspace-files protocol the
//! state and the lock share (write with/without overwrite, read, delete).

use super::format::{parse_terraform, TfState};
use super::{DeploymentState, StateError};
use crate::api::{ApiError, Client};

/// File name of the state inside `state_path`.
pub const STATE_FILE: &str = "resources.json";
/// File name of the Databricks CLI's terraform engine state inside `state_path`.
pub const TERRAFORM_FILE: &str = "terraform.tfstate";

/// Join a workspace directory and a file name.
pub(crate) fn join(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

fn remote_err(path: &str) -> impl FnOnce(ApiError) -> StateError + '_ {
    move |source| StateError::Remote {
        path: path.to_string(),
        source: Box::new(source),
    }
}

/// True for "already exists", however the server spells it (409, or a 400
/// whose message says so).
pub(crate) fn is_already_exists(e: &ApiError) -> bool {
    e.is_already_exists() || e.message().contains("already exists")
}

/// Write a workspace file (`import-file`); creates the parent directory when missing.
pub(crate) async fn write_file(
    client: &Client,
    path: &str,
    content: &[u8],
    overwrite: bool,
) -> Result<(), ApiError> {
    client
        .workspace()
        .write_file(path, content, overwrite)
        .await
}

/// Read a workspace file (`export?direct_download=true`); `None` when it does not exist.
pub(crate) async fn read_file(client: &Client, path: &str) -> Result<Option<Vec<u8>>, ApiError> {
    match client.workspace().export(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Delete a workspace file; a missing file is fine.
pub(crate) async fn delete_file(client: &Client, path: &str) -> Result<(), ApiError> {
    match client.workspace().delete(path, false).await {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// `resources.json` in the workspace.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    client: Client,
    state_path: String,
}

impl RemoteStore {
    pub fn new(client: Client, state_path: &str) -> Self {
        RemoteStore {
            client,
            state_path: state_path.trim_end_matches('/').to_string(),
        }
    }

    pub fn file_path(&self) -> String {
        join(&self.state_path, STATE_FILE)
    }

    pub async fn load(&self) -> Result<Option<DeploymentState>, StateError> {
        let bytes = self.read_bytes().await?;
        self.state_unless_same(bytes, None, || None)
    }

    /// The state file as stored (None: there is none).
    pub async fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.file_path();
        read_file(&self.client, &path)
            .await
            .map_err(remote_err(&path))
    }

    /// The state in `bytes` (from [`RemoteStore::read_bytes`]); when their
    /// SHA-256 is `same` (the local snapshot's), `copy` gives the state
    /// instead of parsing the bytes again (a no-op plan of 10,000 resources
    /// parsed 15 MB twice).
    pub fn state_unless_same(
        &self,
        bytes: Option<Vec<u8>>,
        same: Option<[u8; 32]>,
        copy: impl FnOnce() -> Option<DeploymentState>,
    ) -> Result<Option<DeploymentState>, StateError> {
        use sha2::Digest;
        match bytes {
            None => Ok(None),
            Some(bytes) if bytes.is_empty() => Ok(None),
            Some(bytes) => {
                if same.is_some_and(|d| <[u8; 32]>::from(sha2::Sha256::digest(&bytes)) == d) {
                    if let Some(state) = copy() {
                        return Ok(Some(state));
                    }
                }
                DeploymentState::from_json(&bytes, &self.file_path()).map(Some)
            }
        }
    }

    pub async fn save(&self, state: &DeploymentState) -> Result<(), StateError> {
        self.save_bytes(&state.to_json()).await
    }

    /// [`RemoteStore::save`] of already serialised state.
    pub async fn save_bytes(&self, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.file_path();
        write_file(&self.client, &path, bytes, true)
            .await
            .map_err(remote_err(&path))
    }

    pub async fn delete(&self) -> Result<(), StateError> {
        let path = self.file_path();
        delete_file(&self.client, &path)
            .await
            .map_err(remote_err(&path))
    }

    pub fn terraform_path(&self) -> String {
        join(&self.state_path, TERRAFORM_FILE)
    }

    /// The terraform engine state, if the Databricks CLI left one.
    pub async fn load_terraform(&self) -> Result<Option<TfState>, StateError> {
        let path = self.terraform_path();
        match read_file(&self.client, &path)
            .await
            .map_err(remote_err(&path))?
        {
            None => Ok(None),
            Some(bytes) if bytes.is_empty() => Ok(None),
            Some(bytes) => parse_terraform(&bytes, &path).map(Some),
        }
    }

    /// Keep the terraform state as `terraform.tfstate.backup` (copy, then
    /// delete), as the Databricks CLI does once the direct state replaced it.
    pub async fn backup_terraform(&self) -> Result<(), StateError> {
        let path = self.terraform_path();
        let Some(bytes) = read_file(&self.client, &path)
            .await
            .map_err(remote_err(&path))?
        else {
            return Ok(());
        };
        let backup = format!("{path}.backup");
        write_file(&self.client, &backup, &bytes, true)
            .await
            .map_err(remote_err(&backup))?;
        delete_file(&self.client, &path)
            .await
            .map_err(remote_err(&path))
    }
}
