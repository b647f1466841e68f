//! `deploy`'s stages: the plan (fresh, or a saved one checked against the
//! state and configuration), what needs a confirmation, the upload of
//! artifacts and bundle files, the apply, and the hand-over of a terraform
//! state. The caller runs them in order, printing between them and asking
//! for the confirmation; progress of the apply comes as
//! [`crate::apply::ApplyEvent`]s on the channel it passes.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::api::Client;
use crate::apply::files::{self, FilesError, SyncOptions, SyncReport};
use crate::apply::{apply, ApplyEvent, ApplyOptions, ApplyReport};
use crate::artifacts::build::BuiltFile;
use crate::config::model::Bundle;
use crate::plan::build::{check_conflicts, check_plan_fresh, config_hash, make_plan, PlanOptions};
use crate::plan::{Action, EngineError, Plan};
use crate::state::{StateError, StateStore, TerraformFile};

/// What `deploy` is asked for.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// Apply this saved plan (from `plan --out`) instead of planning afresh.
    pub saved_plan: Option<PathBuf>,
    /// Remote reads and operations in flight at once.
    pub parallelism: usize,
    /// The plan is shown whole (`-o json`): unchanged resources keep their
    /// `before`.
    pub shown_whole: bool,
}

/// Why a deploy stage failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DeployFailure {
    /// Planning (reading the deployed objects) failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(Box<EngineError>),
    /// A create would collide with an object outside the state.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Conflict(Box<EngineError>),
    #[error("cannot read the saved plan {path}: {source}")]
    ReadSavedPlan {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The saved plan is not a plan; make a new one.
    #[error("{path}: {source}")]
    BadSavedPlan {
        path: String,
        source: Box<EngineError>,
    },
    /// The saved plan is for another bundle or target; make a new one.
    #[error("the saved plan {path} is for bundle {bundle} target {target}, not {want_bundle} target {want_target}")]
    OtherTarget {
        path: String,
        bundle: String,
        target: String,
        want_bundle: String,
        want_target: String,
    },
    /// The state or configuration changed since the plan; make a new one.
    #[error("refusing the saved plan {path}: {source}")]
    StaleSavedPlan {
        path: String,
        source: Box<EngineError>,
    },
    #[error("uploading artifacts: {0}")]
    Upload(#[source] crate::artifacts::upload::UploadError),
    #[error("syncing the bundle files: {0}")]
    Sync(#[source] FilesError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
}

/// Read a saved plan and check it still applies: same bundle and target,
/// same state lineage and serial, same configuration.
pub fn load_saved_plan(
    path: &Path,
    bundle: &Bundle,
    store: &StateStore,
) -> Result<Plan, DeployFailure> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DeployFailure::ReadSavedPlan {
        path: shown.clone(),
        source,
    })?;
    let plan = Plan::from_json_str(&text).map_err(|source| DeployFailure::BadSavedPlan {
        path: shown.clone(),
        source: Box::new(source),
    })?;
    if plan.bundle != bundle.name || plan.target != bundle.target {
        return Err(DeployFailure::OtherTarget {
            path: shown,
            bundle: plan.bundle,
            target: plan.target,
            want_bundle: bundle.name.clone(),
            want_target: bundle.target.clone(),
        });
    }
    check_plan_fresh(&plan, &store.snapshot(), &config_hash(bundle)).map_err(|source| {
        DeployFailure::StaleSavedPlan {
            path: shown,
            source: Box::new(source),
        }
    })?;
    Ok(plan)
}

/// The plan to apply: the saved one, or a fresh one from the live state
/// (conflicting creates refused).
pub async fn plan(
    bundle: &Bundle,
    store: &StateStore,
    client: &Client,
    req: &DeployRequest,
) -> Result<Plan, DeployFailure> {
    if let Some(path) = &req.saved_plan {
        return load_saved_plan(path, bundle, store);
    }
    let opts = PlanOptions {
        refresh: true,
        parallelism: req.parallelism.max(1),
        unchanged_before: req.shown_whole,
    };
    let state = store.snapshot();
    let plan = make_plan(bundle, &state, Some(client), &opts)
        .await
        .map_err(|e| DeployFailure::Plan(Box::new(e)))?;
    check_conflicts(client, &plan, &state, opts.parallelism)
        .await
        .map_err(|e| DeployFailure::Conflict(Box::new(e)))?;
    Ok(plan)
}

/// What a plan needs confirmed before it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confirmation {
    /// The changes that lose data (addresses with their action); empty:
    /// nothing to confirm.
    pub destructive: Vec<String>,
    /// Every delete and every replace of the plan.
    pub deletes: usize,
    pub replaces: usize,
}

/// The word for an action in progress lines and confirmations.
pub fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::NoOp => "check",
    }
}

/// Destructive changes that need a confirmation: any delete; a replace of
/// a kind whose data goes with it (instances, synced tables).
pub fn destructive_changes(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| {
            c.action == Action::Delete
                || (c.action == Action::Replace && c.addr.kind.info().replace_loses_data)
        })
        .map(|c| format!("{} ({})", c.addr, action_word(c.action)))
        .collect()
}

pub fn confirmation(plan: &Plan) -> Confirmation {
    let count = |action| plan.changes.iter().filter(|c| c.action == action).count();
    Confirmation {
        destructive: destructive_changes(plan),
        deletes: count(Action::Delete),
        replaces: count(Action::Replace),
    }
}

/// Upload the built artifacts, then sync the bundle files.
pub async fn publish(
    bundle: &Bundle,
    client: &Client,
    artifacts: &[BuiltFile],
    parallelism: usize,
) -> Result<SyncReport, DeployFailure> {
    crate::artifacts::upload::upload(client, bundle, artifacts)
        .await
        .map_err(DeployFailure::Upload)?;
    files::sync(
        client,
        bundle,
        &SyncOptions {
            parallelism: parallelism.max(1),
        },
    )
    .await
    .map_err(DeployFailure::Sync)
}

/// Nothing to apply: a crash may have left changes only in the local log,
/// or the workspace copy behind it; make both current. Returns the
/// terraform files retired.
pub async fn settle(store: &StateStore) -> Result<Vec<TerraformFile>, DeployFailure> {
    store.sync_remote().await?;
    Ok(store.retire_terraform().await?)
}

/// Apply the plan; events go to `tx`.
pub async fn run(
    bundle: &Bundle,
    plan: &Plan,
    store: &StateStore,
    client: &Client,
    opts: &ApplyOptions,
    tx: mpsc::UnboundedSender<ApplyEvent>,
) -> Result<ApplyReport, EngineError> {
    apply(bundle, plan, store, client, opts, tx).await
}

/// After a complete deploy of a target the Databricks CLI deployed with its
/// terraform engine: the direct state now stands for it, so the terraform
/// state is kept as a backup (as the CLI's own migration does). Returns the
/// files retired.
pub async fn retire_terraform(
    store: &StateStore,
    report: &ApplyReport,
    interrupted: bool,
) -> Result<Vec<TerraformFile>, DeployFailure> {
    if report.failed.is_empty() && report.skipped.is_empty() && !report.interrupted && !interrupted
    {
        Ok(store.retire_terraform().await?)
    } else {
        Ok(vec![])
    }
}
