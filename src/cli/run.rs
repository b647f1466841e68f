//! `lakebundle run KEY [--no-wait]`: run a deployed job now and follow it to a
//! terminal state (exit 1 unless it succeeds), refresh a synced table's
//! pipeline, or deploy and start an app (start its compute, deploy its
//! source, wait until it runs). `--no-wait` returns once the run is triggered.
//!
//! The work is [`crate::ops::run`]; this maps the flags in and the outcome
//! (or failure) out.

use miette::Diagnostic;
use serde_json::json;

use super::args::{GlobalArgs, OutputFormat, RunArgs};
use super::error::{CliError, ErrorClass};
use super::{context, hint, output, Exit};
use crate::ops::run::{RunFailure, RunOutcome, RunRequest};

fn request(a: &RunArgs) -> RunRequest {
    RunRequest {
        key: a.key.clone(),
        wait: !a.no_wait,
        refresh: a.refresh.clone(),
        refresh_all: a.refresh_all,
        full_refresh: a.full_refresh.clone(),
        full_refresh_all: a.full_refresh_all,
        validate_only: a.validate_only,
    }
}

/// A failure of `run` as the CLI reports it; hints that name a command
/// carry the user's flags.
fn failure(g: &GlobalArgs, e: RunFailure) -> CliError {
    let deploy = || hint::command(g, &["deploy"]);
    let class = match &e {
        RunFailure::NoAction { .. } => ErrorClass::Internal,
        e if e.is_user() => ErrorClass::User,
        _ => ErrorClass::Remote,
    };
    let err = CliError::msg(class, e.to_string());
    let err = match e.help() {
        Some(h) => err.with_help(h.to_string()),
        None => err,
    };
    match e {
        RunFailure::NotDeployed { .. } => {
            err.with_help(format!("deploy it first with `{}`", deploy()))
        }
        RunFailure::Gone { .. } => err.with_help(format!("recreate it with `{}`", deploy())),
        RunFailure::JobFailed { end, .. } => {
            let err = match &end.run_page_url {
                Some(url) => err.with_help(format!("see the run at {url}")),
                None => err,
            };
            err.with_json("run", end.to_json())
        }
        RunFailure::UpdateFailed { end } => err.with_json(end.noun, end.to_json()),
        _ => err,
    }
}

fn print(g: &GlobalArgs, outcome: &RunOutcome) -> Result<(), CliError> {
    let json = g.output == OutputFormat::Json;
    match outcome {
        RunOutcome::JobStarted {
            run_id,
            job_id,
            run_page_url,
        } => {
            if json {
                output::print_json(
                    &json!({"run_id": run_id, "job_id": job_id, "run_page_url": run_page_url}),
                )?;
            }
        }
        RunOutcome::JobDone(end) if json => output::print_json(&end.to_json())?,
        RunOutcome::JobDone(end) => output::out(&format!("{}\n", end.line()))?,
        RunOutcome::UpdateStarted {
            pipeline_id,
            update_id,
        } => {
            if json {
                output::print_json(&json!({"pipeline_id": pipeline_id, "update_id": update_id}))?;
            }
        }
        RunOutcome::UpdateDone(end) if json => output::print_json(&end.to_json())?,
        RunOutcome::UpdateDone(end) => {
            output::out(&format!("{} {}: {}\n", end.noun, end.update_id, end.state))?
        }
        RunOutcome::App {
            name,
            url,
            deployment_id,
            deployment_state,
            app_status,
            waited,
        } => match g.output {
            OutputFormat::Json => output::print_json(&json!({
                "app": name,
                "url": url,
                "deployment_id": deployment_id,
                "deployment_state": deployment_state,
                "app_status": app_status,
            }))?,
            _ if *waited => output::out(&format!("App {name} is running at {url}\n"))?,
            _ => output::out(&format!(
                "App {name}: deployment created; it will run at {url}\n"
            ))?,
        },
    }
    Ok(())
}

async fn run_session(
    g: &GlobalArgs,
    a: &RunArgs,
    session: &context::Session,
) -> Result<Exit, CliError> {
    let req = request(a);
    let addr = crate::ops::run::target(&session.bundle, &req).map_err(|e| failure(g, e))?;
    let store = session.state().await?;
    let state = store.snapshot();
    let progress = |line: String| eprintln!("{line}");
    let outcome = crate::ops::run::run(&session.client, &state, &addr, &req, &progress)
        .await
        .map_err(|e| failure(g, e))?;
    print(g, &outcome)?;
    Ok(Exit::Success)
}

pub fn run(g: &GlobalArgs, a: &RunArgs) -> Result<Exit, CliError> {
    context::with_session(g, async |session| {
        if session.bundle.scripts.custom.contains_key(&a.key) {
            return session.run_script(&a.key);
        }
        run_session(g, a, session).await
    })
}
