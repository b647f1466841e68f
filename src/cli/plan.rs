//! `lakebundle plan`: what deploy would change.
//!
//! Output: Terraform-style text (default), `-o json` (versioned, see
//! `docs/plan-json.md`), `-o markdown` (pull-request comments). `--out FILE`
//! saves the plan for `deploy --plan FILE`. Exit codes: 0 ok (no changes, or
//! changes without `--detailed-exitcode`), 1 error, 2 changes with
//! `--detailed-exitcode`.

use super::args::{GlobalArgs, OutputFormat, PlanArgs};
use super::{context, output, Exit};
use crate::plan::build::{make_plan, PlanOptions};
use crate::plan::render::{render_json, render_markdown, render_text, TextOptions};
use crate::plan::Plan;

/// Print a plan in the requested format on stdout.
pub fn print_plan(format: OutputFormat, plan: &Plan) {
    match format {
        OutputFormat::Json => output::print_json(&render_json(plan)),
        OutputFormat::Markdown => print!("{}", render_markdown(plan)),
        OutputFormat::Text => print!(
            "{}",
            render_text(
                plan,
                &TextOptions {
                    color: output::color_stdout()
                }
            )
        ),
    }
}

pub fn run(g: &GlobalArgs, a: &PlanArgs) -> Exit {
    context::with_session(g, async |session| plan_session(g, a, session).await)
}

async fn plan_session(g: &GlobalArgs, a: &PlanArgs, session: &context::Session) -> Exit {
    let store = match session.state().await {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let opts = PlanOptions {
        refresh: a.refresh,
        parallelism: a.parallelism.max(1),
    };
    let client = a.refresh.then_some(&session.client);
    let plan = match make_plan(&session.bundle, &store.snapshot(), client, &opts).await {
        Ok(p) => p,
        Err(e) => {
            context::report_engine_error(g, &session.bundle, &e);
            return Exit::Error;
        }
    };
    if let Some(out) = &a.out {
        if let Err(e) = crate::apply::files::write_atomic(out, plan.to_json_string().as_bytes()) {
            output::error(&e);
            return Exit::Error;
        }
        eprintln!(
            "Saved the plan to {}; apply it with `lakebundle deploy --plan {}`.",
            out.display(),
            out.display()
        );
    }
    print_plan(g.output, &plan);
    if a.detailed_exitcode && plan.has_changes() {
        Exit::Changes
    } else {
        Exit::Success
    }
}
