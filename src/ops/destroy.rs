//! `destroy`'s clean-up once every resource is gone: the synced bundle files,
//! their workspace manifest and the local manifest.

use serde_json::json;

use crate::api::{Client, Method};
use crate::config::model::Bundle;

/// Remove the synced bundle files and their manifests. What could not be
/// removed comes back as warnings (already-gone counts as removed).
pub async fn remove_files(bundle: &Bundle, client: &Client) -> Vec<String> {
    let mut warnings = Vec::new();
    let path = &bundle.workspace.file_path;
    let body = json!({ "path": path, "recursive": true });
    match client
        .call(Method::POST, "/api/2.0/workspace/delete", &[], Some(&body))
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => warnings.push(format!("removing the bundle files at {path}: {e}")),
    }
    let manifest = format!(
        "{}/files.json",
        bundle.workspace.state_path.trim_end_matches('/')
    );
    let body = json!({ "path": manifest, "recursive": false });
    if let Err(e) = client
        .call(Method::POST, "/api/2.0/workspace/delete", &[], Some(&body))
        .await
    {
        if !e.is_not_found() {
            warnings.push(format!("removing {manifest}: {e}"));
        }
    }
    let local = crate::apply::files::local_manifest_path(bundle);
    if let Err(e) = std::fs::remove_file(&local) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warnings.push(format!("removing {}: {e}", local.display()));
        }
    }
    warnings
}
