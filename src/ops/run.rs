//! `run KEY`: run a deployed job and follow it, start a pipeline update,
//! refresh a synced table's pipeline, or deploy and start an app. Progress
//! lines go to the caller's callback; the outcome (or a typed failure) comes
//! back for the CLI to print.

use std::time::Duration;

use serde_json::{json, Value};

use crate::api::{ApiError, Client, Method};
use crate::config::model::Bundle;
use crate::resources::{Kind, ResourceAddr, RunStyle};
use crate::state::DeploymentState;

/// Where progress lines go (`Started run 7 of job 3`, state changes).
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

/// What `run` is asked for.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Resource key (`KEY` or `resources.KIND.KEY`).
    pub key: String,
    /// Follow the run to its end (false: return once triggered).
    pub wait: bool,
    /// Pipelines: tables to update.
    pub refresh: Vec<String>,
    /// Pipelines: update the full graph.
    pub refresh_all: bool,
    /// Pipelines: tables to reset and recompute.
    pub full_refresh: Vec<String>,
    /// Pipelines: reset and recompute the full graph.
    pub full_refresh_all: bool,
    /// Pipelines: validate only.
    pub validate_only: bool,
}

impl RunRequest {
    fn pipeline_flags(&self) -> bool {
        self.refresh_all
            || self.full_refresh_all
            || self.validate_only
            || !self.refresh.is_empty()
            || !self.full_refresh.is_empty()
    }
}

/// What `run` did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// A job run was triggered (`--no-wait`).
    JobStarted {
        run_id: i64,
        job_id: i64,
        run_page_url: Option<String>,
    },
    /// A job run ended successfully.
    JobDone(JobRunEnd),
    /// A pipeline update (or a synced table's refresh) was started (`--no-wait`).
    UpdateStarted {
        pipeline_id: String,
        update_id: String,
    },
    /// A pipeline update (`noun` = update) or refresh ended COMPLETED.
    UpdateDone(UpdateEnd),
    /// An app was started and its source deployed.
    App {
        name: String,
        url: String,
        deployment_id: Value,
        deployment_state: Value,
        app_status: Value,
        /// Whether `run` waited until the app runs.
        waited: bool,
    },
}

/// How a job run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRunEnd {
    pub run_id: i64,
    pub job_id: i64,
    pub life_cycle_state: String,
    pub result_state: String,
    pub state_message: String,
    pub run_page_url: Option<String>,
}

impl JobRunEnd {
    /// `run 7: TERMINATED SUCCESS (message)`.
    pub fn line(&self) -> String {
        format!(
            "run {}: {} {}{}",
            self.run_id,
            self.life_cycle_state,
            self.result_state,
            if self.state_message.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.state_message)
            }
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "run_id": self.run_id, "job_id": self.job_id, "life_cycle_state": self.life_cycle_state,
            "result_state": self.result_state, "state_message": self.state_message,
            "run_page_url": self.run_page_url,
        })
    }
}

/// How a pipeline update ended.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateEnd {
    /// `update` or `refresh`.
    pub noun: &'static str,
    pub pipeline_id: String,
    pub update_id: String,
    pub state: String,
    /// What was updated (the address, or the synced table's name).
    pub subject: String,
}

impl UpdateEnd {
    pub fn to_json(&self) -> Value {
        json!({"pipeline_id": self.pipeline_id, "update_id": self.update_id, "state": self.state})
    }
}

/// Why `run` failed. Hints that name a command (deploy first, recreate) are
/// the caller's: it knows the user's flags.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RunFailure {
    #[error("{addr} is a {noun}; `run` works on {plurals}")]
    #[diagnostic(help("{help}"))]
    NotRunnable {
        addr: ResourceAddr,
        noun: String,
        plurals: String,
        help: String,
    },
    #[error("no {addr} in the bundle")]
    #[diagnostic(help("{help}"))]
    NotInBundle { addr: ResourceAddr, help: String },
    #[error("no {nouns} with key `{key}` in the bundle")]
    #[diagnostic(help("{help}"))]
    NoSuchKey {
        key: String,
        nouns: String,
        help: String,
    },
    #[error("`{key}` is ambiguous: {}", .matches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    #[diagnostic(help("give the full address, e.g. `run resources.jobs.KEY`"))]
    Ambiguous {
        key: String,
        matches: Vec<ResourceAddr>,
    },
    #[error("--refresh, --refresh-all, --full-refresh, --full-refresh-all and --validate-only apply to pipelines; {addr} is a {noun}")]
    #[diagnostic(help("drop the pipeline flags, or name a pipeline"))]
    PipelineFlags { addr: ResourceAddr, noun: String },
    #[error(
        "--full-refresh-all cannot be combined with --refresh, --refresh-all or --full-refresh"
    )]
    #[diagnostic(help("reset the whole graph with --full-refresh-all alone, or name the tables"))]
    FullRefreshAllCombined,
    #[error("--refresh-all cannot be combined with --refresh or --full-refresh")]
    #[diagnostic(help("update everything with --refresh-all, or name the tables"))]
    RefreshAllCombined,
    /// Not in state: deploy it first.
    #[error("{addr} is not deployed yet")]
    NotDeployed { addr: ResourceAddr },
    #[error("the job id {id:?} of {addr} in state is not a number")]
    BadJobId { addr: ResourceAddr, id: String },
    /// The remote object is gone: deploy recreates it.
    #[error("{what} no longer exists in the workspace (deleted outside lakebundle?)")]
    Gone { what: String },
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: Box<ApiError>,
    },
    /// The workspace answered without something it must send.
    #[error("{0}")]
    BadAnswer(String),
    #[error("synced table {id} has no pipeline yet")]
    #[diagnostic(help("wait for its first synchronization to start, then run again"))]
    NoPipelineYet { id: String },
    /// A job run that ended without success.
    #[error("{addr}: {}", .end.line())]
    JobFailed {
        addr: ResourceAddr,
        end: Box<JobRunEnd>,
    },
    /// A pipeline update that ended other than COMPLETED.
    #[error("{} {} of {}: {}", .end.noun, .end.update_id, .end.subject, .end.state)]
    UpdateFailed { end: Box<UpdateEnd> },
    #[error("{addr}: `run` has no action for {kind}")]
    NoAction { addr: ResourceAddr, kind: Kind },
}

impl RunFailure {
    /// Whether this is the user's mistake (else the workspace's, or a bug).
    pub fn is_user(&self) -> bool {
        matches!(
            self,
            RunFailure::NotRunnable { .. }
                | RunFailure::NotInBundle { .. }
                | RunFailure::NoSuchKey { .. }
                | RunFailure::Ambiguous { .. }
                | RunFailure::PipelineFlags { .. }
                | RunFailure::FullRefreshAllCombined
                | RunFailure::RefreshAllCombined
                | RunFailure::NotDeployed { .. }
                | RunFailure::BadJobId { .. }
        )
    }
}

/// The kinds `run` can act on.
fn runnable() -> impl Iterator<Item = Kind> {
    Kind::ALL
        .into_iter()
        .filter(|k| k.info().run != RunStyle::None)
}

/// `a, b and c` (`conj` = "and"/"or").
fn word_list(items: &[String], conj: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conj} {last}", init.join(", ")),
    }
}

/// Job run lifecycle states after which nothing more happens.
const RUN_TERMINAL: &[&str] = &["TERMINATED", "SKIPPED", "INTERNAL_ERROR"];
/// Pipeline update states after which nothing more happens.
const UPDATE_TERMINAL: &[&str] = &["COMPLETED", "FAILED", "CANCELED"];

/// "did you mean ..." among `candidates`, else the list of them.
pub fn suggest<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>, what: &str) -> String {
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
pub fn find_target(bundle: &Bundle, key: &str) -> Result<ResourceAddr, RunFailure> {
    let resources = &bundle.resources;
    let runnable_keys: Vec<&str> = resources
        .keys()
        .filter(|a| a.kind.info().run != RunStyle::None)
        .map(|a| a.key.as_str())
        .collect();
    let plurals = word_list(
        &runnable()
            .map(|k| k.plural().into_owned())
            .collect::<Vec<_>>(),
        "and",
    );
    let nouns: Vec<String> = runnable().map(|k| k.noun().into_owned()).collect();
    let not_runnable = |addr: &ResourceAddr| RunFailure::NotRunnable {
        addr: addr.clone(),
        noun: addr.kind.noun().into_owned(),
        plurals: plurals.clone(),
        help: suggest(key, runnable_keys.iter().copied(), &plurals),
    };
    if let Some(addr) = ResourceAddr::parse(key) {
        if addr.kind.info().run == RunStyle::None {
            return Err(not_runnable(&addr));
        }
        if !resources.contains_key(&addr) {
            let same_kind: Vec<&str> = resources
                .keys()
                .filter(|a| a.kind == addr.kind)
                .map(|a| a.key.as_str())
                .collect();
            let help = suggest(&addr.key, same_kind, &addr.kind.plural());
            return Err(RunFailure::NotInBundle { addr, help });
        }
        return Ok(addr);
    }
    let matches: Vec<ResourceAddr> = runnable()
        .map(|k| ResourceAddr::new(k, key))
        .filter(|a| resources.contains_key(a))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            if let Some(other) = resources.keys().find(|a| a.key == key) {
                return Err(not_runnable(other));
            }
            Err(RunFailure::NoSuchKey {
                key: key.to_string(),
                nouns: word_list(&nouns, "or"),
                help: suggest(key, runnable_keys.iter().copied(), &plurals),
            })
        }
        _ => Err(RunFailure::Ambiguous {
            key: key.to_string(),
            matches,
        }),
    }
}

/// An API failure of `run`; a vanished object says so.
fn api_error(what: &str, e: ApiError) -> RunFailure {
    if e.is_not_found() {
        RunFailure::Gone {
            what: what.to_string(),
        }
    } else {
        RunFailure::Api {
            what: what.to_string(),
            source: Box::new(e),
        }
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
    client: &Client,
    addr: &ResourceAddr,
    job_id: &str,
    wait: bool,
    progress: Progress<'_>,
) -> Result<RunOutcome, RunFailure> {
    let id: i64 = job_id.parse().map_err(|_| RunFailure::BadJobId {
        addr: addr.clone(),
        id: job_id.to_string(),
    })?;
    let started = client
        .call(
            Method::POST,
            "/api/2.2/jobs/run-now",
            &[],
            Some(&crate::resources::job::run_now_body(id, &json!({}))),
        )
        .await
        .map_err(|e| api_error(&format!("job {job_id} ({addr})"), e))?;
    let run_id = started
        .get("run_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| RunFailure::BadAnswer("jobs/run-now answered without a run_id".into()))?;
    let get_run = || async {
        client
            .call(
                Method::GET,
                "/api/2.2/jobs/runs/get",
                &[("run_id", run_id.to_string())],
                None,
            )
            .await
            .map_err(|e| api_error(&format!("run {run_id} of job {job_id}"), e))
    };
    let mut run = get_run().await?;
    if let Some(url) = text(&run, &["run_page_url"]) {
        progress(format!("Run URL: {url}"));
    }
    progress(format!("Started run {run_id} of job {job_id}"));
    if !wait {
        return Ok(RunOutcome::JobStarted {
            run_id,
            job_id: id,
            run_page_url: text(&run, &["run_page_url"]).map(str::to_string),
        });
    }
    let mut last = String::new();
    let mut attempt = 0;
    loop {
        let life = text(&run, &["state", "life_cycle_state"])
            .unwrap_or("UNKNOWN")
            .to_string();
        if life != last {
            progress(format!("run {run_id}: {life}"));
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
    let ok = result == "SUCCESS" || (last == "SKIPPED" && result.is_empty());
    let end = JobRunEnd {
        run_id,
        job_id: id,
        life_cycle_state: last,
        result_state: result,
        state_message: text(&run, &["state", "state_message"])
            .unwrap_or("")
            .to_string(),
        run_page_url: text(&run, &["run_page_url"]).map(str::to_string),
    };
    if !ok {
        return Err(RunFailure::JobFailed {
            addr: addr.clone(),
            end: Box::new(end),
        });
    }
    Ok(RunOutcome::JobDone(end))
}

/// The pipeline behind a synced table: from state outputs, else the remote.
async fn pipeline_id(
    client: &Client,
    state: &DeploymentState,
    addr: &ResourceAddr,
    id: &str,
) -> Result<String, RunFailure> {
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
        .map_err(|e| api_error(&format!("synced table {id} ({addr})"), e))?;
    text(&remote, &["data_synchronization_status", "pipeline_id"])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| RunFailure::NoPipelineYet { id: id.to_string() })
}

async fn refresh_pipeline(
    client: &Client,
    pipeline: &str,
    table: &str,
    wait: bool,
    progress: Progress<'_>,
) -> Result<RunOutcome, RunFailure> {
    let what = format!("pipeline {pipeline} of {table}");
    let path = format!("/api/2.0/pipelines/{pipeline}/updates");
    let started = client
        .call(Method::POST, &path, &[], Some(&json!({})))
        .await
        .map_err(|e| api_error(&what, e))?;
    let update_id = text(&started, &["update_id"])
        .ok_or_else(|| RunFailure::BadAnswer(format!("{what} returned no update_id")))?
        .to_string();
    progress(format!(
        "Started refresh {update_id} of {table} (pipeline {pipeline})"
    ));
    follow_update(
        client, pipeline, table, &update_id, "refresh", wait, progress,
    )
    .await
}

/// The start-update body for `run`'s pipeline flags (the CLI's request shape).
fn update_request(r: &RunRequest) -> Result<Value, RunFailure> {
    let mut body = serde_json::Map::new();
    if r.full_refresh_all && (!r.refresh.is_empty() || !r.full_refresh.is_empty() || r.refresh_all)
    {
        return Err(RunFailure::FullRefreshAllCombined);
    }
    if r.refresh_all && (!r.refresh.is_empty() || !r.full_refresh.is_empty()) {
        return Err(RunFailure::RefreshAllCombined);
    }
    if r.full_refresh_all {
        body.insert("full_refresh".into(), json!(true));
    }
    if !r.refresh.is_empty() {
        body.insert("refresh_selection".into(), json!(r.refresh));
    }
    if !r.full_refresh.is_empty() {
        body.insert("full_refresh_selection".into(), json!(r.full_refresh));
    }
    if r.validate_only {
        body.insert("validate_only".into(), json!(true));
    }
    Ok(Value::Object(body))
}

/// Start an update of a bundle pipeline and (with `wait`) follow it to the end.
async fn run_pipeline(
    r: &RunRequest,
    client: &Client,
    addr: &ResourceAddr,
    pipeline: &str,
    progress: Progress<'_>,
) -> Result<RunOutcome, RunFailure> {
    let what = format!("pipeline {pipeline} ({addr})");
    let body = update_request(r)?;
    let path = format!("/api/2.0/pipelines/{pipeline}/updates");
    let started = client
        .call(Method::POST, &path, &[], Some(&body))
        .await
        .map_err(|e| api_error(&what, e))?;
    let update_id = text(&started, &["update_id"])
        .ok_or_else(|| RunFailure::BadAnswer(format!("{what} returned no update_id")))?
        .to_string();
    progress(format!(
        "Update URL: {}/#joblist/pipelines/{pipeline}/updates/{update_id}",
        client.host().trim_end_matches('/')
    ));
    progress(format!("Started update {update_id} of {addr}"));
    follow_update(
        client,
        pipeline,
        &addr.to_string(),
        &update_id,
        "update",
        r.wait,
        progress,
    )
    .await
}

/// Poll a pipeline update until it ends; a failure unless it COMPLETED.
async fn follow_update(
    client: &Client,
    pipeline: &str,
    table: &str,
    update_id: &str,
    noun: &'static str,
    wait: bool,
    progress: Progress<'_>,
) -> Result<RunOutcome, RunFailure> {
    let what = format!("pipeline {pipeline} of {table}");
    let path = format!("/api/2.0/pipelines/{pipeline}/updates");
    if !wait {
        return Ok(RunOutcome::UpdateStarted {
            pipeline_id: pipeline.to_string(),
            update_id: update_id.to_string(),
        });
    }
    let get_path = format!("{path}/{update_id}");
    let mut last = String::new();
    let mut attempt = 0;
    let state = loop {
        let update = client
            .call(Method::GET, &get_path, &[], None)
            .await
            .map_err(|e| api_error(&what, e))?;
        let state = text(&update, &["update", "state"])
            .unwrap_or("UNKNOWN")
            .to_string();
        if state != last {
            progress(format!("{noun} {update_id}: {state}"));
            last = state.clone();
        }
        if UPDATE_TERMINAL.contains(&state.as_str()) {
            break state;
        }
        tokio::time::sleep(poll_delay(attempt)).await;
        attempt += 1;
    };
    let end = UpdateEnd {
        noun,
        pipeline_id: pipeline.to_string(),
        update_id: update_id.to_string(),
        state,
        subject: table.to_string(),
    };
    if end.state != "COMPLETED" {
        return Err(RunFailure::UpdateFailed { end: Box::new(end) });
    }
    Ok(RunOutcome::UpdateDone(end))
}

/// Start the app if stopped, deploy the source of its last applied
/// configuration and (with `wait`) wait until it runs.
async fn run_app(
    client: &Client,
    name: &str,
    applied: &Value,
    wait: bool,
    progress: Progress<'_>,
) -> Result<RunOutcome, RunFailure> {
    let app_progress = |m: String| progress(format!("app {name}: {m}"));
    let (app, dep) = crate::resources::app::run_app(
        client,
        name,
        applied,
        wait,
        crate::apply::DEFAULT_WAIT_TIMEOUT,
        &app_progress,
    )
    .await
    .map_err(|e| RunFailure::Api {
        what: format!("app {name}"),
        source: Box::new(e),
    })?;
    Ok(RunOutcome::App {
        name: name.to_string(),
        url: app
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        deployment_id: dep["deployment_id"].clone(),
        deployment_state: dep["status"]["state"].clone(),
        app_status: app["app_status"]["state"].clone(),
        waited: wait,
    })
}

/// The resource `run` acts on, checked against the request's flags (before
/// any state is read).
pub fn target(bundle: &Bundle, req: &RunRequest) -> Result<ResourceAddr, RunFailure> {
    let addr = find_target(bundle, &req.key)?;
    if req.pipeline_flags() && addr.kind.info().run != RunStyle::PipelineUpdate {
        return Err(RunFailure::PipelineFlags {
            noun: addr.kind.noun().into_owned(),
            addr,
        });
    }
    Ok(addr)
}

/// Run the deployed resource at `addr` (from [`target`]).
pub async fn run(
    client: &Client,
    state: &DeploymentState,
    addr: &ResourceAddr,
    req: &RunRequest,
    progress: Progress<'_>,
) -> Result<RunOutcome, RunFailure> {
    let id = state
        .get(addr)
        .map(|rs| rs.id.clone())
        .ok_or_else(|| RunFailure::NotDeployed { addr: addr.clone() })?;
    match addr.kind.info().run {
        RunStyle::JobRun => run_job(client, addr, &id, req.wait, progress).await,
        RunStyle::PipelineUpdate => run_pipeline(req, client, addr, &id, progress).await,
        RunStyle::PipelineRefresh => {
            let pipeline = pipeline_id(client, state, addr, &id).await?;
            refresh_pipeline(client, &pipeline, &id, req.wait, progress).await
        }
        RunStyle::AppDeploy => {
            let applied = state
                .get(addr)
                .map(|rs| rs.applied.clone())
                .unwrap_or_default();
            run_app(client, &id, &applied, req.wait, progress).await
        }
        RunStyle::None => Err(RunFailure::NoAction {
            addr: addr.clone(),
            kind: addr.kind,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_lists() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(word_list(&v(&[]), "and"), "");
        assert_eq!(word_list(&v(&["a"]), "and"), "a");
        assert_eq!(word_list(&v(&["a", "b", "c"]), "or"), "a, b or c");
    }

    #[test]
    fn pipeline_flag_combinations() {
        let r = RunRequest {
            full_refresh_all: true,
            refresh: vec!["t".into()],
            ..RunRequest::default()
        };
        assert!(matches!(
            update_request(&r),
            Err(RunFailure::FullRefreshAllCombined)
        ));
        let r = RunRequest {
            refresh_all: true,
            full_refresh: vec!["t".into()],
            ..RunRequest::default()
        };
        assert!(matches!(
            update_request(&r),
            Err(RunFailure::RefreshAllCombined)
        ));
        let r = RunRequest {
            refresh: vec!["a".into(), "b".into()],
            validate_only: true,
            ..RunRequest::default()
        };
        assert_eq!(
            update_request(&r).ok(),
            Some(json!({"refresh_selection": ["a", "b"], "validate_only": true}))
        );
    }
}
