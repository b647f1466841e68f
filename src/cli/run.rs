//! `lakebundle run KEY [--no-wait]`: run a deployed job now and follow it to a
//! terminal state (exit 1 unless it succeeds), refresh a synced table's
//! pipeline, or deploy and start an app (start its compute, deploy its
//! source, wait until it runs). `--no-wait` returns once the run is triggered.

use std::time::Duration;

use serde_json::{json, Value};

use super::args::{GlobalArgs, OutputFormat, RunArgs};
use super::error::{CliError, ErrorClass};
use super::{context, hint, output, Exit};
use crate::api::{ApiError, Client, Method};
use crate::resources::{Kind, ResourceAddr};
use crate::state::DeploymentState;

/// What `run` can act on.
const RUNNABLE: &[Kind] = &[Kind::Jobs, Kind::Apps, Kind::SyncedDatabaseTables];

/// Job run lifecycle states after which nothing more happens.
const RUN_TERMINAL: &[&str] = &["TERMINATED", "SKIPPED", "INTERNAL_ERROR"];
/// Pipeline update states after which nothing more happens.
const UPDATE_TERMINAL: &[&str] = &["COMPLETED", "FAILED", "CANCELED"];

/// `job`, `database instance`, ... (for messages).
pub(super) fn kind_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::DatabaseInstances => "database instance",
        Kind::DatabaseCatalogs => "database catalog",
        Kind::SyncedDatabaseTables => "synced table",
        Kind::Jobs => "job",
        Kind::Apps => "app",
        Kind::PostgresProjects => "postgres project",
        Kind::PostgresBranches => "postgres branch",
        Kind::PostgresEndpoints => "postgres endpoint",
        Kind::PostgresDatabases => "postgres database",
        Kind::PostgresRoles => "postgres role",
        Kind::PostgresCatalogs => "postgres catalog",
        Kind::PostgresSyncedTables => "postgres synced table",
    }
}

/// "did you mean ..." among `candidates`, else the list of them.
pub(super) fn suggest<'a>(
    key: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> String {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let close: Vec<String> = crate::diag::suggestions(key, candidates.iter().copied())
        .into_iter()
        .map(str::to_string)
        .collect();
    match crate::diag::suggestion_help(&close) {
        Some(h) => h,
        None if candidates.is_empty() => format!("the bundle has no {what}"),
        None => format!("the bundle's {what}: {}", candidates.join(", ")),
    }
}

/// Find KEY among the runnable kinds of the bundle (or `kind.key`).
fn find_target(session: &context::Session, key: &str) -> Result<ResourceAddr, CliError> {
    let resources = &session.bundle.resources;
    let runnable_keys: Vec<&str> = resources
        .keys()
        .filter(|a| RUNNABLE.contains(&a.kind))
        .map(|a| a.key.as_str())
        .collect();
    let not_runnable = |addr: &ResourceAddr| {
        CliError::user(format!(
            "{addr} is a {}; `run` works on jobs, apps and synced tables",
            kind_noun(addr.kind)
        ))
        .with_help(suggest(
            key,
            runnable_keys.iter().copied(),
            "jobs, apps and synced tables",
        ))
    };
    if let Some(addr) = ResourceAddr::parse(key) {
        if !RUNNABLE.contains(&addr.kind) {
            return Err(not_runnable(&addr));
        }
        if !resources.contains_key(&addr) {
            let same_kind: Vec<&str> = resources
                .keys()
                .filter(|a| a.kind == addr.kind)
                .map(|a| a.key.as_str())
                .collect();
            return Err(
                CliError::user(format!("no {addr} in the bundle")).with_help(suggest(
                    &addr.key,
                    same_kind,
                    &format!("{}s", kind_noun(addr.kind)),
                )),
            );
        }
        return Ok(addr);
    }
    let matches: Vec<ResourceAddr> = RUNNABLE
        .iter()
        .map(|k| ResourceAddr::new(*k, key))
        .filter(|a| resources.contains_key(a))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            if let Some(other) = resources.keys().find(|a| a.key == key) {
                return Err(not_runnable(other));
            }
            Err(CliError::user(format!(
                "no job, app or synced table with key `{key}` in the bundle"
            ))
            .with_help(suggest(
                key,
                runnable_keys.iter().copied(),
                "jobs, apps and synced tables",
            )))
        }
        many => Err(CliError::user(format!(
            "`{key}` is ambiguous: {}",
            many.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_help("give the full address, e.g. `run resources.jobs.KEY`")),
    }
}

fn deployed_id(
    g: &GlobalArgs,
    state: &DeploymentState,
    addr: &ResourceAddr,
) -> Result<String, CliError> {
    state.get(addr).map(|rs| rs.id.clone()).ok_or_else(|| {
        CliError::user(format!("{addr} is not deployed yet")).with_help(format!(
            "deploy it first with `{}`",
            hint::command(g, &["deploy"])
        ))
    })
}

/// An API failure of `run`; a vanished object says so, with how to recreate it.
fn api_error(g: &GlobalArgs, what: &str, e: ApiError) -> CliError {
    if e.is_not_found() {
        CliError::remote(format!(
            "{what} no longer exists in the workspace (deleted outside lakebundle?)"
        ))
        .with_help(format!(
            "recreate it with `{}`",
            hint::command(g, &["deploy"])
        ))
    } else {
        CliError::api(what, &e)
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |cur, k| cur.get(*k))
        .and_then(Value::as_str)
}

/// Poll interval: quick at first (local workspaces finish fast), then every few seconds.
fn poll_delay(attempt: u32) -> Duration {
    Duration::from_millis((200u64 * u64::from(attempt + 1)).min(5000))
}

async fn run_job(
    g: &GlobalArgs,
    client: &Client,
    addr: &ResourceAddr,
    job_id: &str,
    wait: bool,
) -> Result<Exit, CliError> {
    let id: i64 = job_id.parse().map_err(|_| {
        CliError::user(format!(
            "the job id {job_id:?} of {addr} in state is not a number"
        ))
    })?;
    let started = client
        .call(
            Method::POST,
            "/api/2.2/jobs/run-now",
            &[],
            Some(&json!({ "job_id": id })),
        )
        .await
        .map_err(|e| api_error(g, &format!("job {job_id} ({addr})"), e))?;
    let run_id = started
        .get("run_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| CliError::remote("jobs/run-now answered without a run_id"))?;
    let get_run = || async {
        client
            .call(
                Method::GET,
                "/api/2.2/jobs/runs/get",
                &[("run_id", run_id.to_string())],
                None,
            )
            .await
            .map_err(|e| api_error(g, &format!("run {run_id} of job {job_id}"), e))
    };
    let mut run = get_run().await?;
    if let Some(url) = text(&run, &["run_page_url"]) {
        eprintln!("Run URL: {url}");
    }
    eprintln!("Started run {run_id} of job {job_id}");
    if !wait {
        if g.output == OutputFormat::Json {
            output::print_json(
                &json!({"run_id": run_id, "job_id": id, "run_page_url": text(&run, &["run_page_url"])}),
            )?;
        }
        return Ok(Exit::Success);
    }
    let mut last = String::new();
    let mut attempt = 0;
    loop {
        let life = text(&run, &["state", "life_cycle_state"])
            .unwrap_or("UNKNOWN")
            .to_string();
        if life != last {
            eprintln!("run {run_id}: {life}");
            last = life.clone();
        }
        if RUN_TERMINAL.contains(&life.as_str()) {
            break;
        }
        tokio::time::sleep(poll_delay(attempt)).await;
        attempt += 1;
        run = get_run().await?;
    }
    let result = text(&run, &["state", "result_state"])
        .unwrap_or("")
        .to_string();
    let message = text(&run, &["state", "state_message"])
        .unwrap_or("")
        .to_string();
    let ok = result == "SUCCESS" || (last == "SKIPPED" && result.is_empty());
    let line = format!(
        "run {run_id}: {last} {result}{}",
        if message.is_empty() {
            String::new()
        } else {
            format!(" ({message})")
        }
    );
    let data = json!({
        "run_id": run_id, "job_id": id, "life_cycle_state": last,
        "result_state": result, "state_message": message,
        "run_page_url": text(&run, &["run_page_url"]),
    });
    if !ok {
        let mut err = CliError::remote(format!("{addr}: {line}"));
        if let Some(url) = text(&run, &["run_page_url"]) {
            err = err.with_help(format!("see the run at {url}"));
        }
        return Err(err.with_json("run", data));
    }
    match g.output {
        OutputFormat::Json => output::print_json(&data)?,
        _ => output::out(&format!("{line}\n"))?,
    }
    Ok(Exit::Success)
}

/// The pipeline behind a synced table: from state outputs, else the remote.
async fn pipeline_id(
    g: &GlobalArgs,
    client: &Client,
    state: &DeploymentState,
    addr: &ResourceAddr,
    id: &str,
) -> Result<String, CliError> {
    if let Some(rs) = state.get(addr) {
        let nested = text(&rs.outputs, &["data_synchronization_status", "pipeline_id"]);
        let flat = rs
            .outputs
            .get("data_synchronization_status.pipeline_id")
            .and_then(Value::as_str);
        if let Some(p) = nested.or(flat).filter(|p| !p.is_empty()) {
            return Ok(p.to_string());
        }
    }
    let remote = client
        .call(
            Method::GET,
            &format!("/api/2.0/database/synced_tables/{id}"),
            &[],
            None,
        )
        .await
        .map_err(|e| api_error(g, &format!("synced table {id} ({addr})"), e))?;
    text(&remote, &["data_synchronization_status", "pipeline_id"])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::remote(format!("synced table {id} has no pipeline yet"))
                .with_help("wait for its first synchronization to start, then run again")
        })
}

async fn refresh_pipeline(
    g: &GlobalArgs,
    client: &Client,
    pipeline: &str,
    table: &str,
    wait: bool,
) -> Result<Exit, CliError> {
    let what = format!("pipeline {pipeline} of {table}");
    let path = format!("/api/2.0/pipelines/{pipeline}/updates");
    let started = client
        .call(Method::POST, &path, &[], Some(&json!({})))
        .await
        .map_err(|e| api_error(g, &what, e))?;
    let update_id = text(&started, &["update_id"])
        .ok_or_else(|| CliError::remote(format!("{what} returned no update_id")))?
        .to_string();
    eprintln!("Started refresh {update_id} of {table} (pipeline {pipeline})");
    if !wait {
        if g.output == OutputFormat::Json {
            output::print_json(&json!({"pipeline_id": pipeline, "update_id": update_id}))?;
        }
        return Ok(Exit::Success);
    }
    let get_path = format!("{path}/{update_id}");
    let mut last = String::new();
    let mut attempt = 0;
    let state = loop {
        let update = client
            .call(Method::GET, &get_path, &[], None)
            .await
            .map_err(|e| api_error(g, &what, e))?;
        let state = text(&update, &["update", "state"])
            .unwrap_or("UNKNOWN")
            .to_string();
        if state != last {
            eprintln!("refresh {update_id}: {state}");
            last = state.clone();
        }
        if UPDATE_TERMINAL.contains(&state.as_str()) {
            break state;
        }
        tokio::time::sleep(poll_delay(attempt)).await;
        attempt += 1;
    };
    let data = json!({"pipeline_id": pipeline, "update_id": update_id, "state": state});
    if state != "COMPLETED" {
        return Err(
            CliError::remote(format!("refresh {update_id} of {table}: {state}"))
                .with_json("refresh", data),
        );
    }
    match g.output {
        OutputFormat::Json => output::print_json(&data)?,
        _ => output::out(&format!("refresh {update_id}: {state}\n"))?,
    }
    Ok(Exit::Success)
}

async fn run_session(
    g: &GlobalArgs,
    a: &RunArgs,
    session: &context::Session,
) -> Result<Exit, CliError> {
    let addr = find_target(session, &a.key)?;
    let store = session.state().await?;
    let state = store.snapshot();
    let id = deployed_id(g, &state, &addr)?;
    match addr.kind {
        Kind::Jobs => run_job(g, &session.client, &addr, &id, !a.no_wait).await,
        Kind::SyncedDatabaseTables => {
            let pipeline = pipeline_id(g, &session.client, &state, &addr, &id).await?;
            refresh_pipeline(g, &session.client, &pipeline, &id, !a.no_wait).await
        }
        Kind::Apps => {
            let applied = state
                .get(&addr)
                .map(|rs| rs.applied.clone())
                .unwrap_or_default();
            run_app(g, &session.client, &id, &applied, !a.no_wait).await
        }
        other => Err(CliError::msg(
            ErrorClass::Internal,
            format!("{addr}: `run` has no action for {other}"),
        )),
    }
}

pub fn run(g: &GlobalArgs, a: &RunArgs) -> Result<Exit, CliError> {
    context::with_session(g, async |session| {
        if session.bundle.scripts.custom.contains_key(&a.key) {
            return session.run_script(&a.key);
        }
        run_session(g, a, session).await
    })
}

/// Start the app if stopped, deploy the source of its last applied
/// configuration and (with `wait`) wait until it runs; print where.
async fn run_app(
    g: &GlobalArgs,
    client: &Client,
    name: &str,
    applied: &Value,
    wait: bool,
) -> Result<Exit, CliError> {
    let progress = |m: String| eprintln!("app {name}: {m}");
    let (app, dep) = crate::resources::app::run_app(
        client,
        name,
        applied,
        wait,
        crate::apply::DEFAULT_WAIT_TIMEOUT,
        &progress,
    )
    .await
    .map_err(|e| CliError::api(format!("app {name}"), &e))?;
    let url = app.get("url").and_then(Value::as_str).unwrap_or("");
    match g.output {
        OutputFormat::Json => output::print_json(&json!({
            "app": name,
            "url": url,
            "deployment_id": dep["deployment_id"],
            "deployment_state": dep["status"]["state"],
            "app_status": app["app_status"]["state"],
        }))?,
        _ if wait => output::out(&format!("App {name} is running at {url}\n"))?,
        _ => output::out(&format!(
            "App {name}: deployment created; it will run at {url}\n"
        ))?,
    }
    Ok(Exit::Success)
}
