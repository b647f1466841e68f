//! Plan model, field diff and rendering.
//!
//! The engine core plans (`diff.rs` pure field diff, `build.rs` plan from
//! bundle + state + remote reads); the front end renders (`render.rs`). The
//! types below are the contract between them.
//!
//! Public API (engine core):
//! - [`make_plan`]`(&Bundle, &DeploymentState, Option<&Client>, &PlanOptions) -> Result<Plan, EngineError>`
//! - [`make_destroy_plan`]`(&Bundle, &DeploymentState) -> Result<Plan, EngineError>`
//! - [`config_hash`]`(&Bundle) -> String`
//! - [`check_plan_fresh`]`(&Plan, &DeploymentState, &str) -> Result<(), EngineError>`
//! - [`Plan::to_json_string`] / [`Plan::from_json_str`] for saved plans (`--out`, `deploy --plan`)
//! - [`diff::get_path`] resolves the dotted paths used in `FieldChange.path` /
//!   `after_unknown` (`a.b`, `list[0]`, `tasks[task_key=x]`) inside `before`/`after`.

pub mod build;
pub mod diff;
pub mod render;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::ApiError;
use crate::diag::Diagnostics;
use crate::resources::ResourceAddr;
use crate::state::StateError;

pub use build::{check_plan_fresh, config_hash, make_destroy_plan, make_plan, PlanOptions};

/// Errors of planning and applying as a whole (per-resource apply failures
/// are reported in `ApplyReport`, not here).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    /// Reference or cycle errors; render them with `diag::render`.
    #[error("the resource graph has errors")]
    #[diagnostic(code(lakebundle::engine::graph))]
    Graph { diags: Diagnostics },
    // Every kind of the official schema is supported: what is left is a key
    // no schema knows (a typo, which `validate` warns about with a "did you mean").
    #[error("unknown resource type(s) under `resources`: {}", kinds.join(", "))]
    #[diagnostic(
        code(lakebundle::engine::unsupported),
        help("check the spelling: `lakebundle validate` names the kind you probably meant")
    )]
    Unsupported { kinds: Vec<String> },
    #[error("{addr} has lifecycle.{setting} set, but this plan would {action} it")]
    #[diagnostic(
        code(lakebundle::engine::prevent_destroy),
        help("remove `lifecycle.{setting}` first if destroying it is intended")
    )]
    PreventDestroy {
        addr: ResourceAddr,
        action: String,
        /// The lifecycle setting that forbids it (`prevent_destroy` or `deny_user_destroy`).
        setting: &'static str,
    },
    #[error("cannot read {addr}: {source}")]
    #[diagnostic(code(lakebundle::engine::read))]
    Read {
        addr: ResourceAddr,
        #[source]
        source: Box<ApiError>,
    },
    #[error("planning with refresh needs a workspace client")]
    #[diagnostic(
        code(lakebundle::engine::no_client),
        help("pass --refresh=false to plan from state alone")
    )]
    NoClient,
    #[error("the saved plan is stale: {reason}")]
    #[diagnostic(
        code(lakebundle::engine::stale_plan),
        help("run `lakebundle plan --out FILE` again")
    )]
    StalePlan { reason: String },
    #[error("the saved plan cannot be read: {message}")]
    #[diagnostic(code(lakebundle::engine::bad_plan))]
    BadPlan { message: String },
    #[error(
        "{} the plan would create already exist(s) in the workspace and not in this target's state: {}",
        if found.len() == 1 { "1 object" } else { "objects" },
        found.iter().map(|c| format!("{} ({} '{}')", c.addr, c.noun, c.id)).collect::<Vec<_>>().join(", ")
    )]
    #[diagnostic(
        code(lakebundle::engine::exists),
        help("adopt {}: {}; or rename it in the configuration",
            if found.len() == 1 { "it" } else { "them" },
            found.iter().map(|c| format!("`lakebundle bind {} {}`", c.addr.key, c.id)).collect::<Vec<_>>().join(", "))
    )]
    AlreadyExists { found: Vec<Conflict> },
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
}

/// A named object the plan would create that already exists remotely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub addr: ResourceAddr,
    /// Its remote id (the name).
    pub id: String,
    /// `database instance`
    pub noun: String,
}

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
    /// Serialise for `plan --out`.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Read a saved plan (`deploy --plan`).
    pub fn from_json_str(text: &str) -> Result<Plan, EngineError> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| EngineError::BadPlan {
            message: e.to_string(),
        })?;
        if plan.format_version != FORMAT_VERSION {
            return Err(EngineError::BadPlan {
                message: format!(
                    "format_version {} (this lakebundle writes {FORMAT_VERSION})",
                    plan.format_version
                ),
            });
        }
        Ok(plan)
    }

    pub fn change(&self, addr: &ResourceAddr) -> Option<&ResourceChange> {
        self.changes.iter().find(|c| &c.addr == addr)
    }

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
