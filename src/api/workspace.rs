//! Workspace files (reference §6): what deployment state and the deploy lock
//! need — mkdirs, import-file, import, export, get-status, delete, list.

use base64::Engine as _;
use serde_json::json;

use super::types::workspace::{ListResponse, ObjectInfo};
use super::{decode, ApiError, Client, Method, RawBody};

/// `client.workspace()`.
pub struct WorkspaceApi<'a> {
    pub(crate) client: &'a Client,
}

/// Workspace path characters kept verbatim in `import-file/{path}`: the SDK
/// escapes everything else (`@` → `%40`), keeping `/`.
const FILE_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn import_file_path(path: &str) -> String {
    let rel = path.trim_start_matches('/');
    format!(
        "/api/2.0/workspace-files/import-file/{}",
        percent_encoding::utf8_percent_encode(rel, FILE_PATH)
    )
}

fn bool_str(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

impl WorkspaceApi<'_> {
    /// `mkdir -p` (idempotent).
    pub async fn mkdirs(&self, path: &str) -> Result<(), ApiError> {
        let body = json!({"path": path});
        self.client
            .call(Method::POST, "/api/2.0/workspace/mkdirs", &[], Some(&body))
            .await
            .map(drop)
    }

    /// Write raw bytes with `import-file`. The parent must exist (NotFound
    /// otherwise). Without `overwrite`, an existing file is AlreadyExists and
    /// a lost response is OutcomeUnknown (that create is the lock's guard).
    pub async fn import_file(
        &self,
        path: &str,
        content: &[u8],
        overwrite: bool,
    ) -> Result<(), ApiError> {
        let body = RawBody {
            bytes: content,
            content_type: "application/octet-stream",
        };
        self.client
            .call_raw(
                Method::POST,
                &import_file_path(path),
                &[("overwrite", bool_str(overwrite))],
                Some(body),
            )
            .await
            .map(drop)
    }

    /// [`WorkspaceApi::import_file`], creating the parent directory on
    /// NotFound and retrying once (the CLI's state-write protocol).
    pub async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        overwrite: bool,
    ) -> Result<(), ApiError> {
        match self.import_file(path, content, overwrite).await {
            Err(e) if e.is_not_found() => {
                if let Some((parent, _)) = path.rsplit_once('/') {
                    if !parent.is_empty() {
                        self.mkdirs(parent).await?;
                    }
                }
                self.import_file(path, content, overwrite).await
            }
            other => other,
        }
    }

    /// The documented `workspace/import` with base64 content (format `AUTO`
    /// or `RAW`, ≤ 10 MB).
    pub async fn import(
        &self,
        path: &str,
        content: &[u8],
        format: &str,
        overwrite: bool,
    ) -> Result<(), ApiError> {
        let body = json!({
            "path": path,
            "content": base64::engine::general_purpose::STANDARD.encode(content),
            "format": format,
            "overwrite": overwrite,
        });
        // With overwrite a lost response is re-sent; without, it is a create.
        self.client
            .call(Method::POST, "/api/2.0/workspace/import", &[], Some(&body))
            .await
            .map(drop)
    }

    /// Read a file's raw bytes (`export?direct_download=true`).
    pub async fn export(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        let query = [
            ("path", path.to_string()),
            ("direct_download", "true".to_string()),
        ];
        self.client
            .call_raw(Method::GET, "/api/2.0/workspace/export", &query, None)
            .await
            .map(|r| r.body)
    }

    /// Stat a path; missing ⇒ NotFound.
    pub async fn get_status(&self, path: &str) -> Result<ObjectInfo, ApiError> {
        let query = [("path", path.to_string())];
        self.client
            .call_typed(Method::GET, "/api/2.0/workspace/get-status", &query, None)
            .await
    }

    /// Stat a path; missing ⇒ `None`.
    pub async fn find(&self, path: &str) -> Result<Option<ObjectInfo>, ApiError> {
        super::none_if_missing(self.get_status(path).await)
    }

    /// Delete a path (`recursive` for non-empty directories). Re-sent after a
    /// lost response; a re-sent delete that finds nothing counts as done.
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<(), ApiError> {
        let body = json!({"path": path, "recursive": recursive});
        self.client
            .call(Method::POST, "/api/2.0/workspace/delete", &[], Some(&body))
            .await
            .map(drop)
    }

    /// Directory entries (empty for an empty directory).
    pub async fn list(&self, path: &str) -> Result<Vec<ObjectInfo>, ApiError> {
        let query = [("path", path.to_string())];
        let v = self
            .client
            .call(Method::GET, "/api/2.0/workspace/list", &query, None)
            .await?;
        decode::<ListResponse>("GET", "/api/2.0/workspace/list", v).map(|l| l.objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_file_path_escapes_like_the_sdk() {
        assert_eq!(
            import_file_path("/Workspace/Users/me@example.com/.bundle/x y/state/deploy.lock"),
            "/api/2.0/workspace-files/import-file/Workspace/Users/me%40example.com/.bundle/x%20y/state/deploy.lock"
        );
    }
}
