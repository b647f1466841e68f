//! Settings of the official bundle schema that lakebundle reads but does not
//! act on. Nothing is ignored silently: each one written in the bundle (or a
//! target override) is a warning naming it, at its file:line.
//!
//! Harmless metadata is not warned about: `bundle.uuid`,
//! `bundle.databricks_cli_version`, `bundle.git` (used for `${bundle.git.*}`),
//! `workspace.artifact_path`. `python` runs (`crate::python`). Artifacts (`artifacts`,
//! `presets.artifacts_dynamic_version`) are the artifacts builder's concern.

use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

/// `experimental` keys lakebundle implements.
/// (`experimental.python` is the older name of `python`, see `crate::python`.)
const EXPERIMENTAL_SUPPORTED: &[&str] = &["python", "scripts", "use_legacy_run_as"];

/// `bundle` keys lakebundle does not act on.
const BUNDLE_IGNORED: &[(&str, &str)] = &[
    (
        "cluster_id",
        "jobs keep the clusters they name; set the cluster in each job",
    ),
    (
        "compute_id",
        "jobs keep the clusters they name; set the cluster in each job",
    ),
    (
        "deployment",
        "lakebundle always takes the deployment lock and never checks for active runs",
    ),
];

/// `workspace` auth keys: lakebundle authenticates from `--profile`,
/// `workspace.profile`/`host` and the `DATABRICKS_*` environment variables.
const WORKSPACE_AUTH_IGNORED: &[&str] = &[
    "account_id",
    "auth_type",
    "azure_client_id",
    "azure_environment",
    "azure_login_app_id",
    "azure_tenant_id",
    "azure_use_msi",
    "azure_workspace_resource_id",
    "client_id",
    "experimental_is_unified_host",
    "google_service_account",
    "workspace_id",
];

const PRESETS_IGNORED: &[&str] = &["source_linked_deployment"];

fn warn(diags: &mut Diagnostics, tree: &Node, section: &str, key: &str, help: &str) {
    let Some((k, _)) = tree
        .get(section)
        .and_then(Node::as_map)
        .and_then(|m| m.get_entry(key))
    else {
        return;
    };
    if k.span.is_synthetic() {
        return;
    }
    diags.push(
        Diag::warning(format!(
            "`{section}.{key}` is not supported by lakebundle yet and is ignored"
        ))
        .at(k.span, "ignored")
        .help(help.to_string()),
    );
}

/// Warn about every setting of the (target-merged) tree that is ignored.
pub fn check(tree: &Node, diags: &mut Diagnostics) {
    if let Some(m) = tree.get("experimental").and_then(Node::as_map) {
        for (k, _) in &m.entries {
            if !EXPERIMENTAL_SUPPORTED.contains(&k.name.as_str()) {
                warn(
                    diags,
                    tree,
                    "experimental",
                    &k.name,
                    "lakebundle implements experimental.python, experimental.scripts and experimental.use_legacy_run_as",
                );
            }
        }
    }
    for (key, help) in BUNDLE_IGNORED {
        warn(diags, tree, "bundle", key, help);
    }
    for key in WORKSPACE_AUTH_IGNORED {
        warn(
            diags,
            tree,
            "workspace",
            key,
            "lakebundle authenticates with workspace.host/profile, --profile and the DATABRICKS_* environment variables",
        );
    }
    for key in PRESETS_IGNORED {
        warn(
            diags,
            tree,
            "presets",
            key,
            "lakebundle deploys from the synced copy of the bundle files",
        );
    }
}
