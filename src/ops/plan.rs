//! `plan`: what deploy would change, optionally saved for `deploy --plan`.

use std::path::PathBuf;

use crate::api::Client;
use crate::config::model::Bundle;
use crate::plan::build::{check_conflicts, make_plan_with_reads, PlanOptions, PlanReads};
use crate::plan::{EngineError, Plan};
use crate::state::DeploymentState;

/// What `plan` is asked for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Read every deployed object (false: plan from state alone).
    pub refresh: bool,
    /// Remote reads in flight at once.
    pub parallelism: usize,
    /// Save the plan here (for `deploy --plan FILE`).
    pub save_to: Option<PathBuf>,
    /// The plan is shown whole (`-o json`): unchanged resources keep their
    /// `before` (a saved plan always keeps it).
    pub shown_whole: bool,
}

/// What `plan` found.
#[derive(Debug)]
pub struct PlanOutcome {
    pub plan: Plan,
    /// Where the plan was saved, if asked.
    pub saved: Option<PathBuf>,
}

/// Why `plan` failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanFailure {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot save the plan to {path}: {source}")]
    Save {
        path: PathBuf,
        #[source]
        source: crate::apply::files::FilesError,
    },
}

/// `early`: the reads of `state`'s resources, if already sent
/// ([`PlanReads::start`]).
pub async fn plan(
    bundle: &Bundle,
    state: &DeploymentState,
    client: &Client,
    req: &PlanRequest,
    early: Option<PlanReads>,
) -> Result<PlanOutcome, PlanFailure> {
    let opts = PlanOptions {
        refresh: req.refresh,
        parallelism: req.parallelism.max(1),
        unchanged_before: req.shown_whole || req.save_to.is_some(),
    };
    let plan =
        make_plan_with_reads(bundle, state, req.refresh.then_some(client), &opts, early).await?;
    if req.refresh {
        // A create that would collide with an object outside the state is
        // an error now, not halfway through a deploy.
        check_conflicts(client, &plan, state, opts.parallelism).await?;
    }
    if let Some(path) = &req.save_to {
        crate::apply::files::write_atomic(path, plan.to_json_string().as_bytes()).map_err(
            |source| PlanFailure::Save {
                path: path.clone(),
                source,
            },
        )?;
    }
    Ok(PlanOutcome {
        saved: req.save_to.clone(),
        plan,
    })
}
