//! `lakebundle plan`: what deploy would change.
//!
//! Output: Terraform-style text (default), `-o json` (versioned, see
//! `docs/plan-json.md`), `-o markdown` (pull-request comments). `--out FILE`
//! saves the plan for `deploy --plan FILE`. Exit codes: 0 ok (no changes, or
//! changes without `--detailed-exitcode`), 1 error, 2 changes with
//! `--detailed-exitcode`.

use super::args::{GlobalArgs, OutputFormat, PlanArgs};
use super::error::CliError;
use super::{context, hint, output, Exit};
use crate::ops::plan::{plan, PlanFailure, PlanOutcome, PlanRequest};
use crate::plan::render::{render_json, render_markdown, render_text, TextOptions};
use crate::plan::Plan;

/// Print a plan in the requested format on stdout.
pub fn print_plan(format: OutputFormat, plan: &Plan) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => output::print_json(&render_json(plan)),
        OutputFormat::Markdown => output::out(&render_markdown(plan)),
        OutputFormat::Text => output::out(&render_text(
            plan,
            &TextOptions {
                color: output::color_stdout(),
            },
        )),
    }
}

pub fn run(g: &GlobalArgs, a: &PlanArgs) -> Result<Exit, CliError> {
    context::with_session_prefetching_state(
        g,
        a.refresh.then_some(a.parallelism.max(1)),
        async |session| plan_session(g, a, session).await,
    )
}

async fn plan_session(
    g: &GlobalArgs,
    a: &PlanArgs,
    session: &context::Session,
) -> Result<Exit, CliError> {
    let store = session.state().await?;
    let req = PlanRequest {
        refresh: a.refresh,
        parallelism: a.parallelism,
        save_to: a.out.clone(),
        shown_whole: g.output == OutputFormat::Json,
    };
    let state = store.into_state();
    let early = session.take_early_reads();
    let PlanOutcome { plan, saved } = plan(&session.bundle, &state, &session.client, &req, early)
        .await
        .map_err(|e| match e {
            PlanFailure::Engine(e) => super::bind::engine_error(g, session, e),
            PlanFailure::Save { source, .. } => {
                CliError::user(format!("cannot save the plan: {source}"))
            }
        })?;
    if let Some(out) = saved {
        let path = out.display().to_string();
        eprintln!(
            "Saved the plan to {}; apply it with `{}`.",
            out.display(),
            hint::command(g, &["deploy", "--plan", &path])
        );
    }
    print_plan(g.output, &plan)?;
    tracing::debug!(target: "lakebundle::phase", "plan printed");
    let exit = if a.detailed_exitcode && plan.has_changes() {
        Exit::Changes
    } else {
        Exit::Success
    };
    // The process ends right after this command: freeing the plan and the
    // state node by node (tens of MB at 10,000 resources) would only cost time.
    std::mem::forget(plan);
    std::mem::forget(state);
    Ok(exit)
}
