//! `lakebundle run KEY [--no-wait]`: run a deployed job now and follow it to a
//! terminal state (exit 1 unless it succeeds), refresh a synced table's
//! pipeline, or deploy and start an app (start its compute, deploy its
//! source, wait until it runs). `--no-wait` returns once the run is triggered.

use std::time::Duration;

use serde_json::{json, Value};

use super::args::{GlobalArgs, OutputFormat, RunArgs};
use super::{context, output, Exit};
use crate::api::{Client, Method};
use crate::resources::{Kind, ResourceAddr};
use crate::state::DeploymentState;

/// What `run` can act on.
const RUNNABLE: &[Kind] = &[Kind::Jobs, Kind::Apps, Kind::SyncedDatabaseTables];

/// Job run lifecycle states after which nothing more happens.
const RUN_TERMINAL: &[&str] = &["TERMINATED", "SKIPPED", "INTERNAL_ERROR"];
/// Pipeline update states after which nothing more happens.
const UPDATE_TERMINAL: &[&str] = &["COMPLETED", "FAILED", "CANCELED"];

/// Find KEY among the runnable kinds of the bundle (or `kind.key`).
fn find_target(session: &context::Session, key: &str) -> Result<ResourceAddr, String> {
    if let Some(addr) = ResourceAddr::parse(key) {
        return Ok(addr);
    }
    let matches: Vec<ResourceAddr> = RUNNABLE
        .iter()
        .map(|k| ResourceAddr::new(*k, key))
        .filter(|a| session.bundle.resources.contains_key(a))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let keys: Vec<&str> = session
                .bundle
                .resources
                .keys()
                .filter(|a| RUNNABLE.contains(&a.kind))
                .map(|a| a.key.as_str())
                .collect();
            let hint = crate::diag::did_you_mean(key, keys.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(format!(
                "no job, app or synced table with key `{key}` in the bundle{hint}"
            ))
        }
        many => Err(format!(
            "`{key}` is ambiguous: {}; give the full address",
            many.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn deployed_id(state: &DeploymentState, addr: &ResourceAddr) -> Result<String, String> {
    state
        .get(addr)
        .map(|rs| rs.id.clone())
        .ok_or_else(|| format!("{addr} is not deployed yet; run `lakebundle deploy` first"))
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
    client: &Client,
    job_id: &str,
    wait: bool,
    format: OutputFormat,
) -> Result<bool, String> {
    let id: i64 = job_id
        .parse()
        .map_err(|_| format!("job id {job_id:?} in state is not a number"))?;
    let started = client
        .call(
            Method::POST,
            "/api/2.2/jobs/run-now",
            &[],
            Some(&json!({ "job_id": id })),
        )
        .await
        .map_err(|e| e.to_string())?;
    let run_id = started
        .get("run_id")
        .and_then(Value::as_i64)
        .ok_or("run-now returned no run_id")?;
    let get_run = || async {
        client
            .call(
                Method::GET,
                "/api/2.2/jobs/runs/get",
                &[("run_id", run_id.to_string())],
                None,
            )
            .await
            .map_err(|e| e.to_string())
    };
    let mut run = get_run().await?;
    if let Some(url) = text(&run, &["run_page_url"]) {
        eprintln!("Run URL: {url}");
    }
    eprintln!("Started run {run_id} of job {job_id}");
    if !wait {
        if format == OutputFormat::Json {
            output::print_json(
                &json!({"run_id": run_id, "job_id": id, "run_page_url": text(&run, &["run_page_url"])}),
            );
        }
        return Ok(true);
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
    match format {
        OutputFormat::Json => output::print_json(&json!({
            "run_id": run_id, "job_id": id, "life_cycle_state": last,
            "result_state": result, "state_message": message,
            "run_page_url": text(&run, &["run_page_url"]),
        })),
        _ => println!(
            "run {run_id}: {last} {result}{}",
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            }
        ),
    }
    Ok(ok)
}

/// The pipeline behind a synced table: from state outputs, else the remote.
async fn pipeline_id(
    client: &Client,
    state: &DeploymentState,
    addr: &ResourceAddr,
    id: &str,
) -> Result<String, String> {
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
        .map_err(|e| e.to_string())?;
    text(&remote, &["data_synchronization_status", "pipeline_id"])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("synced table {id} has no pipeline yet"))
}

async fn refresh_pipeline(
    client: &Client,
    pipeline: &str,
    table: &str,
    wait: bool,
    format: OutputFormat,
) -> Result<bool, String> {
    let path = format!("/api/2.0/pipelines/{pipeline}/updates");
    let started = client
        .call(Method::POST, &path, &[], Some(&json!({})))
        .await
        .map_err(|e| e.to_string())?;
    let update_id = text(&started, &["update_id"])
        .ok_or("the pipeline returned no update_id")?
        .to_string();
    eprintln!("Started refresh {update_id} of {table} (pipeline {pipeline})");
    if !wait {
        if format == OutputFormat::Json {
            output::print_json(&json!({"pipeline_id": pipeline, "update_id": update_id}));
        }
        return Ok(true);
    }
    let get_path = format!("{path}/{update_id}");
    let mut last = String::new();
    let mut attempt = 0;
    let state = loop {
        let update = client
            .call(Method::GET, &get_path, &[], None)
            .await
            .map_err(|e| e.to_string())?;
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
    match format {
        OutputFormat::Json => output::print_json(
            &json!({"pipeline_id": pipeline, "update_id": update_id, "state": state}),
        ),
        _ => println!("refresh {update_id}: {state}"),
    }
    Ok(state == "COMPLETED")
}

async fn run_session(a: &RunArgs, session: &context::Session) -> Result<bool, String> {
    let addr = find_target(session, &a.key)?;
    let Ok(store) = session.state().await else {
        // Already reported by `state()`.
        return Ok(false);
    };
    let state = store.snapshot();
    let id = deployed_id(&state, &addr)?;
    match addr.kind {
        Kind::Jobs => run_job(&session.client, &id, !a.no_wait, session.output).await,
        Kind::SyncedDatabaseTables => {
            let pipeline = pipeline_id(&session.client, &state, &addr, &id).await?;
            refresh_pipeline(&session.client, &pipeline, &id, !a.no_wait, session.output).await
        }
        Kind::Apps => {
            let applied = state
                .get(&addr)
                .map(|rs| rs.applied.clone())
                .unwrap_or_default();
            let json = session.output == OutputFormat::Json;
            crate::apply::app_run::run(&session.client, &id, &applied, !a.no_wait, json)
                .await
                .map_err(|e| e.to_string())
        }
        other => Err(format!(
            "{addr}: `run` works on jobs, apps and synced tables, not {other}"
        )),
    }
}

pub fn run(g: &GlobalArgs, a: &RunArgs) -> Exit {
    context::with_session(g, async |session| match run_session(a, session).await {
        Ok(true) => Exit::Success,
        Ok(false) => Exit::Error,
        Err(message) => {
            output::error(message);
            Exit::Error
        }
    })
}
