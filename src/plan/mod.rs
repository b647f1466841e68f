//! Plan model, field diff and rendering.
//!
//! SKELETON: the engine-core owner fills in planning (`diff.rs`, building a
//! plan from bundle + state + remote reads); the front-end owner renders it in
//! `render.rs`. The types below are the contract between them; both may add
//! fields.

pub mod render;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resources::ResourceAddr;

/// Version of the JSON plan format (`plan -o json`, saved plans).
pub const FORMAT_VERSION: &str = "1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Delete, then create.
    Replace,
    Delete,
}

/// One field-level difference. `path` is dotted (`spec.primary_key_columns`,
/// `tasks[0].notebook_task.notebook_path`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    /// None = absent before.
    pub old: Option<Value>,
    /// None = absent after.
    pub new: Option<Value>,
    /// The new value is only known after apply (a deferred `${resources...}`).
    pub unknown: bool,
    pub forces_replacement: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub addr: ResourceAddr,
    pub action: Action,
    /// Config vs. what was last applied / what the remote has.
    pub fields: Vec<FieldChange>,
    /// Remote values that differ from the last apply ("changed outside lakebundle").
    pub drift: Vec<FieldChange>,
    /// Why this action, e.g. "deleted outside lakebundle", "name changed".
    pub reason: Option<String>,
    /// Remote id from state, if any.
    pub id: Option<String>,
    /// Comparable remote/state value before, config value after (YAML shape).
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// Dotted paths in `after` known only after apply.
    pub after_unknown: Vec<String>,
    /// Dotted paths that force replacement.
    pub replace_paths: Vec<String>,
    /// Addresses this resource depends on.
    pub depends_on: Vec<ResourceAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    pub bundle: String,
    pub target: String,
    /// State lineage and serial this plan was made against (None: no state yet).
    pub lineage: Option<String>,
    pub serial: u64,
    /// Hash of the resolved configuration.
    pub config_hash: String,
    pub changes: Vec<ResourceChange>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }
    /// (add, change, destroy) as Terraform counts them: a replace is one add and one destroy.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut add = 0;
        let mut change = 0;
        let mut destroy = 0;
        for c in &self.changes {
            match c.action {
                Action::Create => add += 1,
                Action::Update => change += 1,
                Action::Replace => {
                    add += 1;
                    destroy += 1
                }
                Action::Delete => destroy += 1,
                Action::NoOp => {}
            }
        }
        (add, change, destroy)
    }
}
