//! `destroy`'s stages: the plan (every deployed resource, in reverse
//! dependency order), what needs confirming, the deletes, and the clean-up
//! once every resource is gone: the synced bundle files, their workspace
//! manifest and the local manifest.

use serde_json::json;
use tokio::sync::mpsc;

use crate::api::{Client, Method};
use crate::apply::{ApplyEvent, ApplyOptions, ApplyReport};
use crate::config::model::Bundle;
use crate::ops::deploy::Confirmation;
use crate::plan::build::make_destroy_plan;
use crate::plan::{EngineError, Plan};
use crate::state::{DeploymentState, StateStore};

/// Everything deployed, deleted. Each entry is destroyed because destroy
/// was asked for, whatever the configuration says: no per-resource reason.
pub fn plan(bundle: &Bundle, state: &DeploymentState) -> Result<Plan, EngineError> {
    let mut plan = make_destroy_plan(bundle, state)?;
    for c in &mut plan.changes {
        c.reason = None;
    }
    Ok(plan)
}

/// Every delete of a destroy is confirmed.
pub fn confirmation(plan: &Plan) -> Confirmation {
    Confirmation {
        destructive: plan.changes.iter().map(|c| c.addr.to_string()).collect(),
        deletes: plan.changes.len(),
        replaces: 0,
    }
}

/// Delete every deployed resource as `plan` (from [`plan`] on the locked
/// store's state) says; events go to `tx`.
pub async fn run(
    bundle: &Bundle,
    plan: &Plan,
    store: &StateStore,
    client: &Client,
    opts: &ApplyOptions,
    tx: mpsc::UnboundedSender<ApplyEvent>,
) -> Result<ApplyReport, EngineError> {
    crate::apply::destroy(bundle, plan, store, client, opts, tx).await
}

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
