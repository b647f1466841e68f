//! `lakebundle destroy [--auto-approve] [--force-lock]`: delete every
//! deployed resource of the target in reverse dependency order (instances
//! purged), then the synced files, the state and the lock. Always asks first
//! unless `--auto-approve`; with no terminal that is an error, not a hang.
//! The stages are [`crate::ops::destroy`].

use serde_json::json;

use super::args::{DestroyArgs, GlobalArgs, OutputFormat};
use super::deploy::{approve, drive, finish, report_json, with_lock, Approval, Done};
use super::error::CliError;
use super::{context, output, Exit};
use crate::ops::destroy as ops;
use crate::plan::render::{render_json, render_text, TextOptions};

/// Remove the synced bundle files; what could not be removed is a warning.
async fn remove_files(session: &context::Session) {
    for w in ops::remove_files(&session.bundle, &session.client).await {
        output::warning(w);
    }
}

async fn destroy_locked(
    g: &GlobalArgs,
    a: &DestroyArgs,
    session: &context::Session,
) -> Result<Exit, CliError> {
    let store = session.state().await?;
    // Planned on the state in place: a copy of it is tens of MB at 10,000 resources.
    let plan = store
        .read(|state| ops::plan(&session.bundle, state))
        .map_err(|e| session.engine_error(e))?;
    if plan.changes.is_empty() {
        remove_files(session).await;
        match g.output {
            OutputFormat::Json => output::print_json(
                &json!({"plan": render_json(&plan), "result": report_json(&Default::default())}),
            )?,
            _ => output::out(&format!(
                "Nothing to destroy: no resources are deployed for target {}.\n",
                session.bundle.target
            ))?,
        }
        return Ok(Exit::Success);
    }
    if g.output == OutputFormat::Text {
        output::out(&render_text(
            &plan,
            &TextOptions {
                color: output::color_stdout(),
            },
        ))?;
    }
    let confirm = ops::confirmation(&plan);
    let approval = Approval {
        verb: "destroy",
        destructive: confirm.destructive,
        deletes: confirm.deletes,
        replaces: confirm.replaces,
        rerun: vec!["destroy".into()],
    };
    approve(g, &approval, a.auto_approve)?;
    let (bundle, client) = (&session.bundle, &session.client);
    let (store_ref, plan_ref) = (&store, &plan);
    let (result, interrupted) = drive(a.parallelism, |opts, tx| async move {
        ops::run(bundle, plan_ref, store_ref, client, &opts, tx).await
    })
    .await;
    let report = result.map_err(|e| session.engine_error(e))?;
    if report.ok() && !interrupted {
        remove_files(session).await;
    }
    finish(
        g,
        &plan,
        &report,
        interrupted,
        &Done {
            done: "Destroy complete",
            verb: "deleted",
            rerun: vec!["destroy".into()],
        },
    )
}

pub fn run(g: &GlobalArgs, a: &DestroyArgs) -> Result<Exit, CliError> {
    with_lock(g, "destroy", a.force_lock, async |session| {
        destroy_locked(g, a, session).await
    })
}
