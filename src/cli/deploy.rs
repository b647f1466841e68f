//! `lakebundle deploy [--plan FILE] [--auto-approve] [--parallelism N] [--force-lock]`
//!
//! Lock → plan (or a saved plan, refused when state or config changed since)
//! → confirm destructive changes → upload files → apply with progress →
//! release the lock. Ctrl-C stops new work, lets in-flight operations finish
//! and be recorded, releases the lock and exits 130.
//!
//! The stages are [`crate::ops::deploy`]; the lock, progress, confirmation
//! and interrupt handling here are shared with `destroy`.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::args::{DeployArgs, GlobalArgs, OutputFormat};
use super::error::{CliError, ErrorClass, Message};
use super::output::{self, Progress, ProgressEvent, ProgressKind};
use super::{context, hint, Exit};
use crate::apply::{ApplyEvent, ApplyEventKind, ApplyOptions, ApplyReport};
use crate::artifacts::build::BuiltFile;
use crate::ops::deploy::{self as ops, action_word, DeployFailure, DeployRequest};
use crate::plan::{EngineError, Plan};
use crate::state::{DeployLock, StateError};

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

/// Take the deployment lock; a held lock is an error naming its holder and
/// the exact command that takes it over.
pub(super) async fn acquire_lock(
    g: &GlobalArgs,
    session: &context::Session,
    operation: &str,
    force: bool,
) -> Result<DeployLock, CliError> {
    DeployLock::acquire(
        &session.client,
        &session.bundle.workspace.state_path,
        &session.user.user_name,
        operation,
        force,
    )
    .await
    .map_err(|e| {
        let takeover = matches!(e, StateError::LockHeld { .. }).then(|| {
            let cmd = hint::command(g, &[operation, "--force-lock"]);
            match &e {
                StateError::LockHeld { dead: true, .. } => {
                    format!("its holder is dead; take the lock over with `{cmd}`")
                }
                _ => format!(
                    "wait for it to finish; if that run is dead (killed, machine gone), take the lock over with `{cmd}`"
                ),
            }
        });
        let err = CliError::state(e);
        match takeover {
            Some(h) => err.with_help(h),
            None => err,
        }
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
    body: impl AsyncFnOnce(&context::Session) -> Result<Exit, CliError>,
) -> Result<Exit, CliError> {
    context::with_session(g, async |session| {
        let lock = acquire_lock(g, session, operation, force).await?;
        let result = body(session).await;
        release_lock(lock).await;
        result
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
    // Listen before any work starts, on one stream for the whole run: a
    // fresh `ctrl_c()` per loop turn misses a signal that lands between turns.
    let mut sigint = interrupt_signals();
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
            Some(()) = sigint.recv() => {
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

/// Every SIGINT (Ctrl-C) from now on, one message each.
fn interrupt_signals() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        // Registering is synchronous, so the handler is in place on return.
        if let Ok(mut stream) = signal(SignalKind::interrupt()) {
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    rx
}

pub(super) fn report_json(report: &ApplyReport) -> Value {
    json!({
        "succeeded": report.succeeded.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "failed": report.failed.iter().map(|(a, m)| json!({"address": a.to_string(), "message": m})).collect::<Vec<_>>(),
        "skipped": report.skipped.iter().map(|(a, m)| json!({"address": a.to_string(), "reason": m})).collect::<Vec<_>>(),
        "interrupted": report.interrupted,
    })
}

/// What a confirmation is about.
pub(super) struct Approval<'a> {
    /// `deploy` / `destroy`.
    pub verb: &'a str,
    /// The changes that need a confirmation (addresses with their action).
    pub destructive: Vec<String>,
    /// Every delete and every replace of the plan (for the refusal).
    pub deletes: usize,
    pub replaces: usize,
    /// The command to re-run with `--auto-approve` (without the bundle flags).
    pub rerun: Vec<String>,
}

/// `delete 2 and replace 1 resource(s)`.
fn delete_replace(deletes: usize, replaces: usize) -> String {
    match (deletes, replaces) {
        (d, 0) => format!("delete {d} resource(s)"),
        (0, r) => format!("replace {r} resource(s)"),
        (d, r) => format!("delete {d} and replace {r} resource(s)"),
    }
}

/// Ask before destructive work. No terminal and no `--auto-approve` is an
/// error, never a hang.
pub(super) fn approve(
    g: &GlobalArgs,
    a: &Approval<'_>,
    auto_approve: bool,
) -> Result<(), CliError> {
    if a.destructive.is_empty() || auto_approve {
        return Ok(());
    }
    eprintln!("This {} will delete data:", a.verb);
    for w in &a.destructive {
        eprintln!("  - {w}");
    }
    let mut rerun = a.rerun.clone();
    rerun.push("--auto-approve".into());
    let rerun = hint::command(g, &rerun);
    if !output::stdin_is_tty() {
        return Err(CliError::user(format!(
            "{} would {}, and there is no terminal to confirm on",
            a.verb,
            delete_replace(a.deletes, a.replaces)
        ))
        .with_help(format!("review the plan above, then run `{rerun}`")));
    }
    if output::confirm(&format!("Do you want to {}?", a.verb)) {
        Ok(())
    } else {
        Err(CliError::user(format!("{} cancelled", a.verb))
            .with_help(format!("to {} without the question, run `{rerun}`", a.verb)))
    }
}

/// A failed deploy stage as the CLI reports it; a saved plan that no
/// longer applies points at the command that makes a new one.
fn failure(g: &GlobalArgs, session: &context::Session, e: DeployFailure) -> CliError {
    let new_plan = |path: &str| {
        format!(
            "make a new plan with `{}`",
            hint::command(g, &["plan", "--out", path])
        )
    };
    match e {
        DeployFailure::Plan(e) => session.engine_error(*e),
        DeployFailure::Conflict(e) => super::bind::engine_error(g, session, *e),
        DeployFailure::State(e) => CliError::state(e),
        DeployFailure::Upload(e) => {
            CliError::context(ErrorClass::Remote, "uploading artifacts", &e)
        }
        DeployFailure::Sync(e) => {
            CliError::context(ErrorClass::Remote, "syncing the bundle files", &e)
        }
        e @ DeployFailure::ReadSavedPlan { .. } => CliError::user(e.to_string()),
        DeployFailure::BadSavedPlan { ref path, .. }
        | DeployFailure::OtherTarget { ref path, .. }
        | DeployFailure::StaleSavedPlan { ref path, .. } => {
            CliError::user(e.to_string()).with_help(new_plan(path))
        }
    }
}

/// `deploy` as the user ran it, minus the bundle flags (for hints).
fn rerun_args(a: &DeployArgs) -> Vec<String> {
    let mut v = vec!["deploy".to_string()];
    if let Some(p) = &a.plan {
        v.push("--plan".into());
        v.push(p.display().to_string());
    }
    v
}

async fn deploy_locked(
    g: &GlobalArgs,
    a: &DeployArgs,
    session: &context::Session,
    artifacts: &[BuiltFile],
) -> Result<Exit, CliError> {
    let store = session.state().await?;
    if store.source() == crate::state::StateSource::Terraform {
        eprintln!(
            "Taking over the Databricks CLI's terraform state ({} resource(s), lineage {}).",
            store.snapshot().resources.len(),
            store.snapshot().lineage
        );
    }
    let (bundle, client) = (&session.bundle, &session.client);
    let req = DeployRequest {
        saved_plan: a.plan.clone(),
        parallelism: a.parallelism,
        shown_whole: g.output == OutputFormat::Json,
    };
    let fail = |e| failure(g, session, e);
    let plan = ops::plan(bundle, &store, client, &req)
        .await
        .map_err(fail)?;
    if g.output == OutputFormat::Text && plan.has_changes() {
        super::plan::print_plan(OutputFormat::Text, &plan)?;
    }
    let confirm = ops::confirmation(&plan);
    let approval = Approval {
        verb: "deploy",
        destructive: confirm.destructive,
        deletes: confirm.deletes,
        replaces: confirm.replaces,
        rerun: rerun_args(a),
    };
    approve(g, &approval, a.auto_approve)?;
    let synced = ops::publish(bundle, client, artifacts, a.parallelism)
        .await
        .map_err(fail)?;
    eprintln!(
        "Files: {} uploaded, {} removed, {} unchanged ({}).",
        synced.uploaded.len(),
        synced.deleted.len(),
        synced.unchanged,
        bundle.workspace.file_path
    );
    if !plan.has_changes() {
        let retired = ops::settle(&store).await.map_err(fail)?;
        print_retired(&retired);
        if g.output == OutputFormat::Json {
            output::print_json(
                &json!({"plan": crate::plan::render::render_json(&plan), "result": report_json(&ApplyReport::default())}),
            )?;
        } else {
            output::out(&format!("{}\n", crate::plan::render::summary_line(&plan)))?;
        }
        return Ok(Exit::Success);
    }
    let (plan_ref, store_ref) = (&plan, &store);
    let (result, interrupted) = drive(a.parallelism, |opts, tx| async move {
        ops::run(bundle, plan_ref, store_ref, client, &opts, tx).await
    })
    .await;
    let report = result.map_err(|e| session.engine_error(e))?;
    let retired = ops::retire_terraform(&store, &report, interrupted)
        .await
        .map_err(fail)?;
    print_retired(&retired);
    finish(
        g,
        &plan,
        &report,
        interrupted,
        &Done {
            done: "Deploy complete",
            verb: "changed",
            rerun: vec!["deploy".into()],
        },
    )
}

/// The terraform state files the direct state now stands for.
fn print_retired(files: &[crate::state::TerraformFile]) {
    for f in files {
        eprintln!("Migrated the terraform state {f} to resources.json (kept as {f}.backup).");
    }
}

/// How `deploy` / `destroy` describe their end.
pub(super) struct Done<'a> {
    /// `Deploy complete`
    pub done: &'a str,
    /// `changed`
    pub verb: &'a str,
    /// The command that finishes the work (without the bundle flags).
    pub rerun: Vec<String>,
}

/// The end of `deploy` / `destroy`: the plan and result (as JSON, also
/// inside the error object), failures as one error, the exit status and,
/// on success in text mode, `{done}: N resource(s) {verb}.`
pub(super) fn finish(
    g: &GlobalArgs,
    plan: &Plan,
    report: &ApplyReport,
    interrupted: bool,
    d: &Done<'_>,
) -> Result<Exit, CliError> {
    // The JSON plan is as large as the state again: build it only for `-o json`.
    let json = g.output == OutputFormat::Json;
    let plan_json = || {
        if json {
            crate::plan::render::render_json(plan)
        } else {
            Value::Null
        }
    };
    let result_json = report_json(report);
    let rerun = hint::command(g, &d.rerun);
    if report.interrupted || interrupted {
        return Err(CliError::msg(
            ErrorClass::Interrupted,
            "interrupted: finished operations are recorded in state and the lock is released",
        )
        .with_help(format!("run `{rerun}` to finish"))
        .with_json("plan", plan_json())
        .with_json("result", result_json));
    }
    if !report.failed.is_empty() || !report.skipped.is_empty() {
        let related = report
            .failed
            .iter()
            .map(|(addr, message)| Message::new(format!("{addr}: {message}")))
            .collect();
        let message = Message {
            message: format!(
                "{} failed, {} skipped, {} succeeded",
                report.failed.len(),
                report.skipped.len(),
                report.succeeded.len()
            ),
            help: Some(format!(
                "fix the errors and run `{rerun}` again: finished work is not repeated"
            )),
            related,
        };
        return Err(CliError::diagnostic(ErrorClass::Remote, message)
            .with_json("plan", plan_json())
            .with_json("result", result_json));
    }
    if g.output == OutputFormat::Json {
        output::print_json(&json!({"plan": plan_json(), "result": result_json}))?;
    } else {
        output::out(&format!(
            "{}: {} resource(s) {}.\n",
            d.done,
            report.succeeded.len(),
            d.verb
        ))?;
    }
    Ok(Exit::Success)
}

pub fn run(g: &GlobalArgs, a: &DeployArgs) -> Result<Exit, CliError> {
    use crate::scripts::Hook;
    // Built before the session opens, so its path rewrite sees the outputs
    // (so before the `prebuild` hook, unlike the CLI). A bundle that does
    // not load builds nothing: the session reports why.
    let artifacts = match context::load_quiet(g) {
        Ok(bundle) => crate::artifacts::build::build_all(&bundle)
            .map_err(|e| CliError::diagnostic(ErrorClass::User, e))?,
        Err(_) => Vec::new(),
    };
    with_lock(g, "deploy", a.force_lock, async |session| {
        session.hooks(&[Hook::PreBuild, Hook::PostBuild, Hook::PreDeploy])?;
        let exit = deploy_locked(g, a, session, &artifacts).await?;
        session.hooks(&[Hook::PostDeploy])?;
        Ok(exit)
    })
}
