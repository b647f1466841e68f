//! `lakebundle deploy [--plan FILE] [--auto-approve] [--parallelism N] [--force-lock]`
//!
//! Lock → plan (or a saved plan, refused when state or config changed since)
//! → confirm destructive changes → upload files → apply with progress →
//! release the lock. Ctrl-C stops new work, lets in-flight operations finish
//! and be recorded, releases the lock and exits 130.
//!
//! The lock, progress and interrupt handling here are shared with `destroy`.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::args::{DeployArgs, GlobalArgs, OutputFormat};
use super::output::{self, Progress, ProgressEvent, ProgressKind};
use super::{context, Exit};
use crate::apply::files::{self, SyncOptions};
use crate::apply::{apply, ApplyEvent, ApplyEventKind, ApplyOptions, ApplyReport};
use crate::plan::build::{check_plan_fresh, config_hash, make_plan, PlanOptions};
use crate::plan::{Action, EngineError, Plan};
use crate::resources::Kind;
use crate::state::{DeployLock, StateStore};

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::NoOp => "check",
    }
}

fn progress_event(ev: ApplyEvent) -> ProgressEvent {
    let kind = match ev.kind {
        ApplyEventKind::Started { action } => ProgressKind::Started {
            action: action_word(action).into(),
        },
        ApplyEventKind::Progress { message } => ProgressKind::Note { message },
        ApplyEventKind::Waiting { what } => ProgressKind::Waiting { what },
        ApplyEventKind::Succeeded { id } => ProgressKind::Succeeded {
            id: (!id.is_empty()).then_some(id),
        },
        ApplyEventKind::Failed { message } => ProgressKind::Failed { message },
        ApplyEventKind::Skipped { reason } => ProgressKind::Skipped { reason },
    };
    ProgressEvent {
        subject: ev.addr.to_string(),
        kind,
        at: ev.at,
    }
}

/// Take the deployment lock; a held lock is an error naming its holder.
pub(super) async fn acquire_lock(
    session: &context::Session,
    operation: &str,
    force: bool,
) -> Result<DeployLock, Exit> {
    DeployLock::acquire(
        &session.client,
        &session.bundle.workspace.state_path,
        &session.user.user_name,
        operation,
        force,
    )
    .await
    .map_err(|e| {
        output::error(&e);
        Exit::Error
    })
}

pub(super) async fn release_lock(lock: DeployLock) {
    if let Err(e) = lock.release().await {
        output::warning(format!("releasing the deployment lock: {e}"));
    }
}

/// [`context::with_session`] holding the deployment lock for `operation`
/// around `body`.
pub(super) fn with_lock(
    g: &GlobalArgs,
    operation: &str,
    force: bool,
    body: impl AsyncFnOnce(&context::Session) -> Exit,
) -> Exit {
    context::with_session(g, async |session| {
        match acquire_lock(session, operation, force).await {
            Ok(lock) => {
                let exit = body(session).await;
                release_lock(lock).await;
                exit
            }
            Err(exit) => exit,
        }
    })
}

/// Run an executor future, feeding its events to progress output, turning
/// Ctrl-C into cancellation (a second Ctrl-C abandons in-flight work).
pub(super) async fn drive<F, Fut>(
    parallelism: usize,
    start: F,
) -> (Result<ApplyReport, EngineError>, bool)
where
    F: FnOnce(ApplyOptions, mpsc::UnboundedSender<ApplyEvent>) -> Fut,
    Fut: Future<Output = Result<ApplyReport, EngineError>>,
{
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = ApplyOptions {
        parallelism: parallelism.max(1),
        cancel: Some(cancel_rx),
        ..ApplyOptions::default()
    };
    let mut progress = Progress::stderr();
    let work = start(opts, tx);
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut interrupts = 0u32;
    let result = loop {
        tokio::select! {
            res = &mut work => break res,
            Some(ev) = rx.recv() => progress.event(&progress_event(ev)),
            _ = tick.tick(), if progress.is_live() => progress.tick(),
            r = tokio::signal::ctrl_c() => {
                if r.is_err() {
                    continue;
                }
                interrupts += 1;
                let _ = cancel_tx.send(true);
                if interrupts == 1 {
                    progress.line("Interrupted: starting nothing new, waiting for in-flight operations (Ctrl-C again to abandon them).");
                } else {
                    progress.line("Interrupted again: abandoning in-flight operations.");
                    progress.finish_all();
                    let report = ApplyReport { interrupted: true, ..ApplyReport::default() };
                    return (Ok(report), true);
                }
            }
        }
    };
    while let Ok(ev) = rx.try_recv() {
        progress.event(&progress_event(ev));
    }
    let elapsed = progress.finish_all();
    eprintln!("Finished in {}.", output::format_elapsed(elapsed));
    (result, interrupts > 0)
}

/// Print failures and map a report to the exit status.
pub(super) fn report_exit(report: &ApplyReport, interrupted: bool) -> Exit {
    for (addr, message) in &report.failed {
        output::error(format!("{addr}: {message}"));
    }
    if report.interrupted || interrupted {
        output::error("interrupted; run the command again to finish");
        return Exit::Interrupted;
    }
    if !report.failed.is_empty() || !report.skipped.is_empty() {
        eprintln!(
            "{} failed, {} skipped, {} succeeded. Fix the errors and run it again: finished work is not repeated.",
            report.failed.len(),
            report.skipped.len(),
            report.succeeded.len()
        );
        return Exit::Error;
    }
    Exit::Success
}

pub(super) fn report_json(report: &ApplyReport) -> Value {
    json!({
        "succeeded": report.succeeded.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "failed": report.failed.iter().map(|(a, m)| json!({"address": a.to_string(), "message": m})).collect::<Vec<_>>(),
        "skipped": report.skipped.iter().map(|(a, m)| json!({"address": a.to_string(), "reason": m})).collect::<Vec<_>>(),
        "interrupted": report.interrupted,
    })
}

/// Destructive changes that need a confirmation: any delete; a replace of
/// an instance or synced table (their data goes with them).
pub fn destructive_changes(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .filter(|c| {
            c.action == Action::Delete
                || (c.action == Action::Replace
                    && matches!(
                        c.addr.kind,
                        Kind::DatabaseInstances | Kind::SyncedDatabaseTables
                    ))
        })
        .map(|c| format!("{} ({})", c.addr, action_word(c.action)))
        .collect()
}

/// Ask before destructive work. No terminal and no `--auto-approve` is an
/// error, never a hang.
pub(super) fn approve(what: &[String], verb: &str, auto_approve: bool) -> Result<(), Exit> {
    if what.is_empty() || auto_approve {
        return Ok(());
    }
    eprintln!("This {verb} will delete data:");
    for w in what {
        eprintln!("  - {w}");
    }
    if !output::stdin_is_tty() {
        output::error(format!(
            "{verb} would delete or replace {} resource(s) and there is no terminal to confirm on; re-run with --auto-approve",
            what.len()
        ));
        return Err(Exit::Error);
    }
    if output::confirm(&format!("Do you want to {verb}?")) {
        Ok(())
    } else {
        output::error(format!("{verb} cancelled"));
        Err(Exit::Error)
    }
}

async fn load_saved_plan(
    path: &std::path::Path,
    session: &context::Session,
    store: &StateStore,
) -> Result<Plan, Exit> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        output::error(format!(
            "cannot read the saved plan {}: {e}",
            path.display()
        ));
        Exit::Error
    })?;
    let plan = Plan::from_json_str(&text).map_err(|e| {
        output::error(format!("{}: {e}", path.display()));
        Exit::Error
    })?;
    if plan.bundle != session.bundle.name || plan.target != session.bundle.target {
        output::error(format!(
            "the saved plan is for bundle {} target {}, not {} target {}",
            plan.bundle, plan.target, session.bundle.name, session.bundle.target
        ));
        return Err(Exit::Error);
    }
    check_plan_fresh(&plan, &store.snapshot(), &config_hash(&session.bundle)).map_err(|e| {
        output::error(format!("refusing the saved plan {}: {e}", path.display()));
        eprintln!(
            "Make a new plan with `lakebundle plan --out {}`.",
            path.display()
        );
        Exit::Error
    })?;
    Ok(plan)
}

async fn deploy_locked(g: &GlobalArgs, a: &DeployArgs, session: &context::Session) -> Exit {
    let store = match session.state().await {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let plan = match &a.plan {
        Some(path) => match load_saved_plan(path, session, &store).await {
            Ok(p) => p,
            Err(exit) => return exit,
        },
        None => {
            let opts = PlanOptions {
                refresh: true,
                parallelism: a.parallelism.max(1),
            };
            match make_plan(
                &session.bundle,
                &store.snapshot(),
                Some(&session.client),
                &opts,
            )
            .await
            {
                Ok(p) => p,
                Err(e) => {
                    context::report_engine_error(g, &session.bundle, &e);
                    return Exit::Error;
                }
            }
        }
    };
    if g.output == OutputFormat::Text && plan.has_changes() {
        super::plan::print_plan(OutputFormat::Text, &plan);
    }
    if let Err(exit) = approve(&destructive_changes(&plan), "deploy", a.auto_approve) {
        return exit;
    }
    match files::sync(
        &session.client,
        &session.bundle,
        &SyncOptions {
            parallelism: a.parallelism.max(1),
        },
    )
    .await
    {
        Ok(r) => eprintln!(
            "Files: {} uploaded, {} removed, {} unchanged ({}).",
            r.uploaded.len(),
            r.deleted.len(),
            r.unchanged,
            session.bundle.workspace.file_path
        ),
        Err(e) => {
            output::error(&e);
            return Exit::Error;
        }
    }
    if !plan.has_changes() {
        if g.output == OutputFormat::Json {
            output::print_json(
                &json!({"plan": crate::plan::render::render_json(&plan), "result": report_json(&ApplyReport::default())}),
            );
        } else {
            println!("{}", crate::plan::render::summary_line(&plan));
        }
        return Exit::Success;
    }
    let (bundle, client, plan_ref, store_ref) = (&session.bundle, &session.client, &plan, &store);
    let (result, interrupted) = drive(a.parallelism, |opts, tx| async move {
        apply(bundle, plan_ref, store_ref, client, &opts, tx).await
    })
    .await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            context::report_engine_error(g, &session.bundle, &e);
            return Exit::Error;
        }
    };
    finish(g, &plan, &report, interrupted, "Deploy complete", "changed")
}

/// The end of `deploy` / `destroy`: the plan and result as JSON, failures,
/// the exit status and, on success in text mode, `{done}: N resource(s) {verb}.`
pub(super) fn finish(
    g: &GlobalArgs,
    plan: &Plan,
    report: &ApplyReport,
    interrupted: bool,
    done: &str,
    verb: &str,
) -> Exit {
    if g.output == OutputFormat::Json {
        output::print_json(
            &json!({"plan": crate::plan::render::render_json(plan), "result": report_json(report)}),
        );
    }
    let exit = report_exit(report, interrupted);
    if exit == Exit::Success && g.output != OutputFormat::Json {
        println!("{done}: {} resource(s) {verb}.", report.succeeded.len());
    }
    exit
}

pub fn run(g: &GlobalArgs, a: &DeployArgs) -> Exit {
    with_lock(g, "deploy", a.force_lock, async |session| {
        deploy_locked(g, a, session).await
    })
}
