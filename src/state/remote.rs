//! The workspace copy of the state, and the small workspace-files protocol the
//! state and the lock share (write with/without overwrite, read, delete).

use base64::Engine as _;
use serde_json::{json, Value};

use super::{DeploymentState, StateError};
use crate::api::{ApiError, Client, Method};

/// File name of the state inside `state_path`.
pub const STATE_FILE: &str = "resources.json";

/// Join a workspace directory and a file name.
pub(crate) fn join(dir: &str, name: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), name)
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/')
        .map(|(p, _)| p)
        .filter(|p| !p.is_empty())
        .unwrap_or("/")
}

fn remote_err(path: &str) -> impl FnOnce(ApiError) -> StateError + '_ {
    move |source| StateError::Remote {
        path: path.to_string(),
        source,
    }
}

/// True for "already exists", however the server spells it (409, or a 400
/// whose message says so).
pub(crate) fn is_already_exists(e: &ApiError) -> bool {
    match e {
        ApiError::AlreadyExists { .. } => true,
        ApiError::InvalidParameter { message, .. } | ApiError::Other { message, .. } => {
            message.contains("already exists")
        }
        _ => false,
    }
}

/// Write a workspace file; creates the parent directory when missing.
pub(crate) async fn write_file(
    client: &Client,
    path: &str,
    content: &[u8],
    overwrite: bool,
) -> Result<(), ApiError> {
    let body = json!({
        "path": path,
        "content": base64::engine::general_purpose::STANDARD.encode(content),
        "format": "AUTO",
        "overwrite": overwrite,
    });
    match client
        .call(Method::POST, "/api/2.0/workspace/import", &[], Some(&body))
        .await
    {
        Err(e) if e.is_not_found() => {
            client
                .call(
                    Method::POST,
                    "/api/2.0/workspace/mkdirs",
                    &[],
                    Some(&json!({"path": parent(path)})),
                )
                .await?;
            client
                .call(Method::POST, "/api/2.0/workspace/import", &[], Some(&body))
                .await
                .map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Read a workspace file; `None` when it does not exist.
pub(crate) async fn read_file(client: &Client, path: &str) -> Result<Option<Vec<u8>>, ApiError> {
    let query = [("path", path.to_string()), ("format", "SOURCE".to_string())];
    let resp = match client
        .call(Method::GET, "/api/2.0/workspace/export", &query, None)
        .await
    {
        Ok(v) => v,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let content = resp.get("content").and_then(Value::as_str).unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .map(Some)
        .map_err(|e| ApiError::Other {
            method: "GET".into(),
            path: "/api/2.0/workspace/export".into(),
            status: 200,
            error_code: "BAD_CONTENT".into(),
            message: format!("export of {path} is not base64: {e}"),
        })
}

/// Delete a workspace file; a missing file is fine.
pub(crate) async fn delete_file(client: &Client, path: &str) -> Result<(), ApiError> {
    let body = json!({"path": path, "recursive": false});
    match client
        .call(Method::POST, "/api/2.0/workspace/delete", &[], Some(&body))
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()),
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
        let path = self.file_path();
        match read_file(&self.client, &path)
            .await
            .map_err(remote_err(&path))?
        {
            None => Ok(None),
            Some(bytes) if bytes.is_empty() => Ok(None),
            Some(bytes) => DeploymentState::from_json(&bytes, &path).map(Some),
        }
    }

    pub async fn save(&self, state: &DeploymentState) -> Result<(), StateError> {
        let path = self.file_path();
        write_file(&self.client, &path, &state.to_json(), true)
            .await
            .map_err(remote_err(&path))
    }

    pub async fn delete(&self) -> Result<(), StateError> {
        let path = self.file_path();
        delete_file(&self.client, &path)
            .await
            .map_err(remote_err(&path))
    }
}
