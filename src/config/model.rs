//! The loaded, resolved bundle as later stages see it.
//!
//! SKELETON: the loader owner fills this in and may add fields; the engine and
//! graph code against what is here.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::Value;

use crate::config::source::{Node, SourceMap, Span};
use crate::resources::ResourceAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Development,
    Production,
}

/// A `${resources.<kind>.<key>.<field>}` use inside a resource's config.
#[derive(Debug, Clone)]
pub struct ResourceRef {
    /// Dotted path of the field holding the reference, in the dependent.
    pub at_path: String,
    pub target: ResourceAddr,
    /// Dotted field path after the key (`name`, `data_synchronization_status.pipeline_id`).
    pub field: String,
    /// The full `${...}` text as written.
    pub text: String,
    pub span: Span,
    /// True when the value was substituted at load time (a config field);
    /// false when it stays deferred until apply (an output field).
    pub resolved: bool,
}

/// One resource of a supported kind, resolved.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    pub addr: ResourceAddr,
    /// Resolved tree, spans kept (deferred refs remain `${...}` strings).
    pub node: Node,
    /// JSON view of `node`.
    pub value: Value,
    pub refs: Vec<ResourceRef>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Workspace {
    pub host: Option<String>,
    pub profile: Option<String>,
    pub root_path: String,
    pub file_path: String,
    pub state_path: String,
    pub artifact_path: String,
    pub resource_path: String,
    pub current_user: Option<CurrentUser>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CurrentUser {
    #[serde(rename = "userName")]
    pub user_name: String,
    pub short_name: String,
    /// The rest of the workspace's SCIM `Me` answer (`displayName`, `id`,
    /// `groups`, ...): `${workspace.current_user.*}` may use any of it, as
    /// with the official CLI.
    #[serde(flatten)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A `lookup:` variable left for plan time.
#[derive(Debug, Clone)]
pub struct PendingLookup {
    pub variable: String,
    /// e.g. `{"cluster": "my-cluster"}`
    pub lookup: Value,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub sources: SourceMap,
    /// Directory holding the root file.
    pub root: PathBuf,
    pub name: String,
    pub target: String,
    pub mode: Option<Mode>,
    pub workspace: Workspace,
    /// `sync.include` / `sync.exclude` / `sync.paths`, resolved.
    pub sync: Value,
    pub resources: IndexMap<ResourceAddr, ResourceConfig>,
    pub pending_lookups: Vec<PendingLookup>,
    /// `experimental.scripts` hooks and the top-level `scripts`.
    pub scripts: crate::scripts::Scripts,
    /// The whole resolved tree (for `validate -o json`).
    pub tree: Node,
}
