//! `job_runs`: one fired run of a job (`POST /api/2.2/jobs/run-now`, contract part 2 §6),
//! id = `run_id`.
//!
//! A run has no update: any change of its settings fires a new run (replace = delete the old
//! run, run the job again). Deploy waits for the run to end and only a `SUCCESS` lets it go
//! on (a failed run is recorded and fails the deploy; the next plan sees `result_state` drift
//! and fires again). The settings are input-only: the service reports them resolved (every
//! job parameter with its default), so they compare against the last apply.
//!
//! `lifecycle.triggers: [{on_bundle_deploy: true}]` re-fires the run on every deploy (a
//! planned replacement even with an unchanged config); taking the trigger out is an update
//! that only rewrites the state. It cannot be combined with `lifecycle.prevent_destroy`.
//!
//! Delete: an active run is cancelled (and awaited) first, since `runs/delete` refuses it.
//! After a lost run-now response, an active run of the job is adopted and awaited.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::common::{self, schema_struct, Poll};
// The run takes the job's own settings types.
use super::job::{PerformanceTarget, PipelineParams, QueueSettings};
use super::{
    Created, DeploymentInfo, ExtraChanges, FieldRules, IdScheme, Kind, KindInfo, NameLink,
    ResourceKind, RunAs, RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{none_if_missing, ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::plan::FieldChange;

schema_struct! {
    /// A condition that fires the run again.
    pub struct JobRunTrigger {
        /// Fire the run again on every deploy (not with `prevent_destroy`).
        on_bundle_deploy: bool,
    }
}

schema_struct! {
    /// Deployment lifecycle settings of a job run.
    pub struct JobRunLifecycle {
        /// Refuse to destroy (or replace) this run.
        prevent_destroy: bool,
        /// Conditions that fire the run again besides a configuration change.
        triggers: Vec<JobRunTrigger>,
    }
}

schema_struct! {
    /// One run of a job, fired at deploy; deploy continues only when it succeeds.
    #[schemars(extend("required" = ["job_id"]))]
    pub struct JobRun {
        /// The job to run, usually `${resources.jobs.<key>.id}`.
        job_id: i64,
        /// Job parameters for this run (the job's defaults fill the rest).
        job_parameters: std::collections::BTreeMap<String, String>,
        /// Run only these task keys.
        only: Vec<String>,
        /// Serverless performance target.
        performance_target: PerformanceTarget,
        /// Pipeline settings.
        pipeline_params: PipelineParams,
        /// Queue settings.
        queue: QueueSettings,
        /// Deprecated task parameters (use `job_parameters`).
        jar_params: Vec<String>,
        /// Deprecated task parameters (use `job_parameters`).
        notebook_params: std::collections::BTreeMap<String, String>,
        /// Deprecated task parameters (use `job_parameters`).
        python_params: Vec<String>,
        /// Deprecated task parameters (use `job_parameters`).
        python_named_params: std::collections::BTreeMap<String, String>,
        /// Deprecated task parameters (use `job_parameters`).
        spark_submit_params: Vec<String>,
        /// Deprecated task parameters (use `job_parameters`).
        sql_params: std::collections::BTreeMap<String, String>,
        /// Deprecated task parameters (use `job_parameters`).
        dbt_commands: Vec<String>,
        /// Deployment lifecycle settings.
        lifecycle: JobRunLifecycle,
    }
}

const RUNS: &str = "/api/2.2/jobs/runs";
/// Sent to run-now as they are.
const RUN_FIELDS: &[&str] = &[
    "job_parameters",
    "only",
    "performance_target",
    "pipeline_params",
    "queue",
    "jar_params",
    "notebook_params",
    "python_params",
    "python_named_params",
    "spark_submit_params",
    "sql_params",
    "dbt_commands",
];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "run_id",
    "job_id",
    "number_in_job",
    "run_name",
    "run_page_url",
    "result_state",
    "state.life_cycle_state",
    "state.result_state",
    "state.state_message",
];
const TRIGGER_PATH: &str = "lifecycle.triggers.on_bundle_deploy";

static RULES: FieldRules = FieldRules {
    immutable: &[],
    replace_on_any_change: true,
    input_only: &[
        ("job_parameters", ""),
        ("only", ""),
        ("performance_target", ""),
        ("pipeline_params", ""),
        ("queue", ""),
        ("jar_params", ""),
        ("notebook_params", ""),
        ("python_params", ""),
        ("python_named_params", ""),
        ("spark_submit_params", ""),
        ("sql_params", ""),
        ("dbt_commands", ""),
    ],
    output_only: &[
        "run_id",
        "run_page_url",
        "state",
        "number_in_job",
        "run_name",
    ],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "job run",
    plural: "job runs",
    title: "Job Runs",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::Replace,
    state_fields: &[],
    ready_states: &[],
    wait_text: "job run to succeed",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/jobs/runs/{id}",
};

pub struct JobRunKind;

fn on_bundle_deploy(config: &Value) -> bool {
    config
        .pointer("/lifecycle/triggers")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.get("on_bundle_deploy").and_then(Value::as_bool) == Some(true))
        })
}

/// An int64 id as text (a reference resolves to text, a literal may be a number).
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The id as the API takes it: a number when it is one.
fn id_value(id: &str) -> Value {
    id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn terminal(remote: &Value) -> bool {
    matches!(
        common::state_at(remote, "state.life_cycle_state"),
        "TERMINATED" | "SKIPPED" | "INTERNAL_ERROR"
    )
}

async fn get_run(client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
    none_if_missing(
        client
            .call(
                Method::GET,
                &format!("{RUNS}/get"),
                &[("run_id", id.to_string())],
                None,
            )
            .await,
    )
}

/// Wait until the run ends; `Ok` with the run whatever its result.
async fn wait_terminal(client: &Client, id: &str, timeout: Duration) -> Result<Value, ApiError> {
    let path = format!("{RUNS}/get?run_id={id}");
    common::poll_until(&path, timeout, || async {
        match get_run(client, id).await? {
            None => Ok(Poll::Ready(Value::Null)),
            Some(r) if terminal(&r) => Ok(Poll::Ready(r)),
            Some(r) => Ok(Poll::Pending(
                common::state_at(&r, "state.life_cycle_state").to_string(),
            )),
        }
    })
    .await
}

#[async_trait]
impl ResourceKind for JobRunKind {
    fn kind(&self) -> Kind {
        Kind::JobRuns
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<JobRun>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<JobRun>(self.kind(), key, node, diags);
        let Some(lc) = node.get("lifecycle") else {
            return;
        };
        let fires = lc.get("triggers").and_then(Node::as_seq).is_some_and(|ts| {
            ts.iter().any(|t| {
                t.get("on_bundle_deploy")
                    .is_some_and(|n| matches!(n.kind, crate::config::source::NodeKind::Bool(true)))
            })
        });
        let protected = lc
            .get("prevent_destroy")
            .is_some_and(|n| matches!(n.kind, crate::config::source::NodeKind::Bool(true)));
        if fires && protected {
            diags.push(
                Diag::error(format!(
                    "{addr}.lifecycle sets both triggers.on_bundle_deploy and prevent_destroy"
                ))
                .at(lc.span, "these two settings conflict")
                .help("a run fired on every deploy replaces the previous one; drop `prevent_destroy` or the trigger"),
            );
        }
    }
    /// The job is always named by reference (an explicit edge): nothing to link by name.
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        Vec::new()
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let job_id = id_text(config.get("job_id")).unwrap_or_default();
        let mut body = Map::new();
        body.insert("job_id".into(), id_value(&job_id));
        for f in RUN_FIELDS {
            if let Some(v) = config.get(*f) {
                body.insert((*f).into(), v.clone());
            }
        }
        // One token per fired run: a re-sent request never starts a second one.
        body.insert(
            "idempotency_token".into(),
            json!(uuid::Uuid::new_v4().to_string()),
        );
        let remote = client
            .call(
                Method::POST,
                "/api/2.2/jobs/run-now",
                &[],
                Some(&Value::Object(body)),
            )
            .await?;
        let id = id_text(remote.get("run_id")).unwrap_or_default();
        Ok(Created { id, remote })
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        get_run(client, id).await
    }
    /// Only a trigger taken out lands here (every other change replaces): nothing to send.
    async fn update(
        &self,
        _client: &Client,
        id: &str,
        _config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        let Some(run) = get_run(client, id).await? else {
            return Ok(());
        };
        if !terminal(&run) {
            common::ok_if_missing(
                client
                    .call(
                        Method::POST,
                        &format!("{RUNS}/cancel"),
                        &[],
                        Some(&json!({"run_id": id_value(id)})),
                    )
                    .await,
            )?;
            wait_terminal(client, id, Duration::from_secs(20 * 60)).await?;
        }
        common::ok_if_missing(
            client
                .call(
                    Method::POST,
                    &format!("{RUNS}/delete"),
                    &[],
                    Some(&json!({"run_id": id_value(id)})),
                )
                .await,
        )
    }
    /// Wait for the run to end: only `SUCCESS` is ready.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = format!("{RUNS}/get?run_id={id}");
        let run = wait_terminal(client, id, timeout).await?;
        if run.is_null() {
            return Err(common::not_ready(&path, format!("run {id} is gone")));
        }
        let result = common::state_at(&run, "state.result_state");
        if result == "SUCCESS" {
            return Ok(run);
        }
        let message = common::state_at(&run, "state.state_message");
        let page = common::state_at(&run, "run_page_url");
        Err(common::not_ready(
            &path,
            format!(
                "run did not succeed: {}: {message}\nrun page: {page}",
                if result.is_empty() {
                    common::state_at(&run, "state.life_cycle_state")
                } else {
                    result
                }
            ),
        ))
    }
    /// After a lost run-now response: the job's active run, adopted and awaited.
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(job_id) = id_text(config.get("job_id")) else {
            return Ok(None);
        };
        let list = client
            .call(
                Method::GET,
                &format!("{RUNS}/list"),
                &[("job_id", job_id), ("active_only", "true".into())],
                None,
            )
            .await?;
        let newest = list
            .get("runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .max_by_key(|r| r.get("start_time").and_then(Value::as_i64).unwrap_or(0));
        Ok(newest.and_then(|r| {
            Some(Created {
                id: id_text(r.get("run_id"))?,
                remote: r.clone(),
            })
        }))
    }
    /// The job and the run's outcome (compared with the `SUCCESS` a deploy asks for).
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = Map::new();
        if let Some(j) = id_text(remote.get("job_id")) {
            out.insert("job_id".into(), json!(j));
        }
        let result = common::state_at(remote, "state.result_state");
        if !result.is_empty() {
            out.insert("result_state".into(), json!(result));
        } else if !terminal(remote) {
            // Still running: adopted and awaited, not fired again.
            out.insert("result_state".into(), json!("SUCCESS"));
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        let mut out = common::collect_outputs(id, remote, OUTPUT_FIELDS);
        if let Some(r) = remote.pointer("/state/result_state") {
            out["result_state"] = r.clone();
        }
        out
    }
    /// A deploy wants a run that succeeded; the job id compares as text.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        let mut out = config.clone();
        if let Value::Object(m) = &mut out {
            if let Some(Value::Number(n)) = m.get("job_id") {
                let text = n.to_string();
                m.insert("job_id".into(), json!(text));
            }
            m.insert("result_state".into(), json!("SUCCESS"));
        }
        out
    }
    /// `on_bundle_deploy` fires a new run on every deploy; dropping it only rewrites state.
    fn extra_changes(
        &self,
        desired: &Value,
        applied: &Value,
        _remote: Option<&Value>,
    ) -> ExtraChanges {
        let mut out = ExtraChanges::default();
        let was = on_bundle_deploy(applied);
        if on_bundle_deploy(desired) {
            out.fields.push(FieldChange {
                path: TRIGGER_PATH.into(),
                old: was.then(|| json!(true)),
                new: Some(json!("fires on every deploy")),
                unknown: false,
                forces_replacement: true,
            });
        } else if was {
            out.fields.push(FieldChange {
                path: TRIGGER_PATH.into(),
                old: Some(json!(true)),
                new: None,
                unknown: false,
                forces_replacement: false,
            });
        }
        out
    }
    fn ui_url(&self, host: &str, id: &str, remote: Option<&Value>) -> String {
        match remote
            .and_then(|r| r.get("run_page_url"))
            .and_then(Value::as_str)
        {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => format!("{}/jobs/runs/{id}", host.trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_and_job_compare_as_the_deploy_wants() {
        let remote = json!({"run_id": 7, "job_id": 42,
                            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"}});
        assert_eq!(
            JobRunKind.remote_to_config(&remote),
            json!({"job_id": "42", "result_state": "FAILED"})
        );
        let info = DeploymentInfo {
            addr: &super::super::ResourceAddr::new(Kind::JobRuns, "r"),
            metadata_file_path: "/m",
        };
        assert_eq!(
            JobRunKind.with_deployment_marker(&json!({"job_id": 42}), &info),
            json!({"job_id": "42", "result_state": "SUCCESS"})
        );
        assert_eq!(JobRunKind.outputs("7", &remote)["result_state"], "FAILED");
    }

    #[test]
    fn the_trigger_fires_on_every_deploy_and_its_removal_only_updates() {
        let fires = json!({"job_id": "1", "lifecycle": {"triggers": [{"on_bundle_deploy": true}]}});
        let plain = json!({"job_id": "1"});
        let c = JobRunKind.extra_changes(&fires, &fires, None);
        assert!(c.fields[0].forces_replacement);
        let c = JobRunKind.extra_changes(&plain, &fires, None);
        assert!(!c.fields[0].forces_replacement);
        assert!(JobRunKind
            .extra_changes(&plain, &plain, None)
            .fields
            .is_empty());
    }
}
