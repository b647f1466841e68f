//! `jobs`: Databricks jobs (Jobs API 2.2, reference §11). The typed JobSettings
//! live in the submodules; this file is the kind itself (checks and CRUD).
//! Job ids are server-assigned int64 values, kept as decimal strings.

pub(crate) mod compute;
mod settings;
mod task;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

pub use compute::*;
pub use settings::*;
pub use task::*;

use super::common::{self, none_if_missing, ok_if_missing, without_keys};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::{Node, Span};
use crate::diag::{did_you_mean, Diag, Diagnostics};

const API: &str = "/api/2.2/jobs";
const BUNDLE_ONLY: &[&str] = crate::resources::common::ENGINE_FIELDS;
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "job_id",
    "creator_user_name",
    "run_as_user_name",
    "created_time",
];

/// Arrays `jobs/get` pages (100 elements per page).
const PAGED_ARRAYS: &[&str] = &["tasks", "job_clusters", "environments", "parameters"];

static RULES: FieldRules = FieldRules {
    immutable: &[],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "job_id",
        "created_time",
        "creator_user_name",
        "run_as_user_name",
        "effective_budget_policy_id",
        "effective_usage_policy_id",
        "trigger_state",
        "trigger_details",
        "format",
    ],
    bundle_only: BUNDLE_ONLY,
};

pub struct JobKind;

/// The JobSettings body of create/reset: the config without bundle-only fields.
pub fn settings_body(config: &Value) -> Value {
    without_keys(config, BUNDLE_ONLY)
}

/// The job's owner (its IS_OWNER entry) as a `run_as` value: the identity a
/// job without `run_as` runs as.
async fn job_owner(client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
    let Some(acl) = none_if_missing(client.permissions().get("jobs", id).await)? else {
        return Ok(None);
    };
    let owner = acl
        .get("access_control_list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| {
            e.get("all_permissions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|p| p.get("permission_level").and_then(Value::as_str) == Some("IS_OWNER"))
        });
    Ok(owner.and_then(|e| {
        ["user_name", "service_principal_name"]
            .iter()
            .find_map(|f| e.get(*f).and_then(Value::as_str).map(|v| json!({ *f: v })))
    }))
}

/// Parse a job id kept as a decimal string (never through f64: ids are int64).
fn job_id(path: &str, id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().map_err(|_| ApiError::InvalidParameter {
        method: "POST".into(),
        path: path.to_string(),
        message: format!("job id {id:?} is not an integer"),
    })
}

/// A job id from a create/get response (number or numeric string).
fn id_of(v: &Value) -> Option<String> {
    match v.get("job_id")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Key spans of the tasks' `task_key`s (first occurrence).
fn task_keys(tasks: &[Node]) -> Vec<(String, Span)> {
    tasks
        .iter()
        .filter_map(|t| t.as_map()?.get_entry("task_key"))
        .filter_map(|(_, v)| Some((v.as_str()?.to_string(), v.span)))
        .collect()
}

/// Keys declared by a keyed list (`job_clusters` by `job_cluster_key`, ...).
fn declared_keys(node: &Node, list: &str, key: &str) -> Vec<String> {
    node.get(list)
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| e.get(key)?.as_str().map(str::to_string))
        .collect()
}

/// Cross-field task checks: unique keys, known dependencies and cluster /
/// environment keys, at most one task type.
fn check_tasks(addr: &str, job: &Node, diags: &mut Diagnostics) {
    let Some(tasks) = job.get("tasks").and_then(Node::as_seq) else {
        return;
    };
    let keys = task_keys(tasks);
    for (i, (key, span)) in keys.iter().enumerate() {
        if let Some((_, first)) = keys[..i].iter().find(|(k, _)| k == key) {
            diags.push(
                Diag::error(format!(
                    "{addr}: task_key `{key}` is used by more than one task"
                ))
                .at(*span, "defined again here")
                .related(*first, "first defined here"),
            );
        }
    }
    let clusters = declared_keys(job, "job_clusters", "job_cluster_key");
    let envs = declared_keys(job, "environments", "environment_key");
    for (i, task) in tasks.iter().enumerate() {
        let Some(map) = task.as_map() else { continue };
        let at = format!("{addr}.tasks[{i}]");
        let types: Vec<&str> = TASK_TYPES
            .iter()
            .copied()
            .filter(|t| map.get(t).is_some())
            .collect();
        if types.len() > 1 {
            diags.push(
                Diag::error(format!("{at} sets more than one task type ({})", types.join(", ")))
                    .at(task.span, "this task")
                    .help("a task runs exactly one of notebook_task, spark_python_task, pipeline_task, ..."),
            );
        }
        for dep in map.get("depends_on").and_then(Node::as_seq).unwrap_or(&[]) {
            let Some(k) = dep.get("task_key") else {
                continue;
            };
            let Some(name) = k.as_str().filter(|s| !common::has_interpolation(s)) else {
                continue;
            };
            if !keys.iter().any(|(key, _)| key == name) {
                let mut d = Diag::error(format!("{at} depends on unknown task `{name}`"))
                    .at(k.span, "no task has this key");
                if let Some(s) = did_you_mean(name, keys.iter().map(|(k, _)| k.as_str())) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
        }
        for (field, declared, list) in [
            ("job_cluster_key", &clusters, "job_clusters"),
            ("environment_key", &envs, "environments"),
        ] {
            let Some(v) = map.get(field) else { continue };
            let Some(name) = v.as_str().filter(|s| !common::has_interpolation(s)) else {
                continue;
            };
            if !declared.iter().any(|d| d == name) {
                let mut d = Diag::error(format!(
                    "{at}.{field} `{name}` is not defined in {addr}.{list}"
                ))
                .at(v.span, "unknown key");
                if let Some(s) = did_you_mean(name, declared.iter().map(String::as_str)) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
        }
    }
}

/// Append the paged arrays of a later `jobs/get` page into `settings`.
fn merge_page(settings: &mut Map<String, Value>, page: &Value) {
    let Some(more) = page.get("settings") else {
        return;
    };
    for key in PAGED_ARRAYS {
        if let Some(Value::Array(items)) = more.get(*key) {
            match settings.get_mut(*key) {
                Some(Value::Array(existing)) => existing.extend(items.iter().cloned()),
                _ => {
                    settings.insert((*key).to_string(), Value::Array(items.clone()));
                }
            }
        }
    }
}

/// The `jobs/run-now` body: `job_id`, the fields of `extra` (`job_parameters`,
/// `only`, ...) and an `idempotency_token`, which lets a lost response be
/// re-sent safely (the server returns the same run).
pub fn run_now_body(job_id: i64, extra: &Value) -> Value {
    let mut body = extra.as_object().cloned().unwrap_or_default();
    body.insert("job_id".into(), json!(job_id));
    body.entry("idempotency_token")
        .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
    Value::Object(body)
}

static INFO: KindInfo = KindInfo {
    noun: "job",
    plural: "jobs",
    title: "Jobs",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::Reset,
    state_fields: &[],
    ready_states: &[],
    wait_text: "job",
    grants_securable: None,
    workspace_paths: WorkspacePaths::JobSettings,
    replace_loses_data: false,
    run: RunStyle::JobRun,
    run_as: RunAs::Inherits,
    database_access: false,
    workspace_limit: None,
    ui_path: "/jobs/{id}",
};

#[async_trait]
impl ResourceKind for JobKind {
    fn kind(&self) -> Kind {
        Kind::Jobs
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Job>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Job>(self.kind(), key, node, diags);
        check_tasks(&addr, node, diags);
        common::check_permissions(&addr, node, diags);
    }
    /// Jobs link to other resources only through explicit `${resources...}` references.
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }
    /// Marks the job as bundle-owned (`deployment.kind: BUNDLE` with the
    /// deployment's metadata path) and UI-locked unless the config says otherwise.
    fn with_deployment_marker(&self, config: &Value, info: &DeploymentInfo<'_>) -> Value {
        let mut out = config.clone();
        if let Value::Object(map) = &mut out {
            map.insert(
                "deployment".into(),
                json!({"kind": "BUNDLE", "metadata_file_path": info.metadata_file_path}),
            );
            map.entry("edit_mode").or_insert_with(|| json!("UI_LOCKED"));
        }
        out
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let path = format!("{API}/create");
        let resp = client
            .call(Method::POST, &path, &[], Some(&settings_body(config)))
            .await?;
        let id = id_of(&resp).ok_or_else(|| ApiError::Other {
            method: "POST".into(),
            path: path.clone(),
            status: 200,
            error_code: "BAD_RESPONSE".into(),
            message: "the create response has no job_id".into(),
        })?;
        // No read-back here: the engine's `wait_ready` reads the job once and
        // takes the outputs from that read (reading here too doubled jobs/get).
        Ok(Created { id, remote: resp })
    }
    /// `jobs/get`, following `next_page_token` to collect every task,
    /// cluster, environment and parameter.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let path = format!("{API}/get");
        job_id(&path, id)?;
        let Some(mut job) = none_if_missing(
            client
                .call(Method::GET, &path, &[("job_id", id.to_string())], None)
                .await,
        )?
        else {
            return Ok(None);
        };
        let mut token = job
            .get("next_page_token")
            .and_then(Value::as_str)
            .map(str::to_string);
        while let Some(t) = token.filter(|t| !t.is_empty()) {
            let page = client
                .call(
                    Method::GET,
                    &path,
                    &[("job_id", id.to_string()), ("page_token", t)],
                    None,
                )
                .await?;
            if let Some(Value::Object(settings)) = job.get_mut("settings") {
                merge_page(settings, &page);
            }
            token = page
                .get("next_page_token")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Value::Object(map) = &mut job {
            map.remove("next_page_token");
        }
        Ok(Some(job))
    }
    /// Full replace (`jobs/reset`): omitted fields are cleared.
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let path = format!("{API}/reset");
        let mut settings = settings_body(config);
        if changed.iter().any(|f| f == "run_as") && config.get("run_as").is_none() {
            // `reset` without `run_as` keeps the old identity (reference §11.1):
            // a removed run_as must name the default, the job's owner, or the
            // job would go on running as the identity the bundle dropped.
            if let (Some(owner), Value::Object(m)) = (job_owner(client, id).await?, &mut settings) {
                m.insert("run_as".into(), owner);
            }
        }
        let body = json!({"job_id": job_id(&path, id)?, "new_settings": settings});
        client.call(Method::POST, &path, &[], Some(&body)).await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        let path = format!("{API}/delete");
        let body = json!({"job_id": job_id(&path, id)?});
        ok_if_missing(client.call(Method::POST, &path, &[], Some(&body)).await)
    }
    /// Job CRUD is synchronous: ready once readable.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        self.read(client, id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                method: "GET".into(),
                path: format!("{API}/get"),
                message: format!("Job {id} does not exist."),
            })
    }
    /// Lists jobs with the config's name and picks the one carrying this
    /// deployment's marker (or, without a marker, the only job of that name).
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(name) = common::literal_str(config, "name") else {
            return Ok(None);
        };
        let marker = config
            .get("deployment")
            .and_then(|d| d.get("metadata_file_path"))
            .and_then(Value::as_str);
        let path = format!("{API}/list");
        let mut matches = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("name", name.to_string()), ("limit", "100".to_string())];
            if let Some(t) = &token {
                query.push(("page_token", t.clone()));
            }
            let page = client.call(Method::GET, &path, &query, None).await?;
            for job in page
                .get("jobs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let settings = job.get("settings");
                let same_name =
                    settings.and_then(|s| s.get("name")).and_then(Value::as_str) == Some(name);
                let job_marker = settings
                    .and_then(|s| common::get_path(s, "deployment.metadata_file_path"))
                    .and_then(Value::as_str);
                if same_name && (marker.is_none() || job_marker == marker) {
                    matches.push(job.clone());
                }
            }
            token = page
                .get("next_page_token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        if matches.len() != 1 {
            return Ok(None);
        }
        let Some(id) = id_of(&matches[0]) else {
            return Ok(None);
        };
        let remote = self
            .read(client, &id)
            .await?
            .unwrap_or_else(|| matches.remove(0));
        Ok(Some(Created { id, remote }))
    }
    /// YAML shape: the job's `settings` without `format` (ignored on write).
    /// The engine should diff it against `with_deployment_marker(config)`, so
    /// the ownership marker compares equal.
    fn remote_to_config(&self, remote: &Value) -> Value {
        // One copy of the settings (a plan reads every job).
        match remote.get("settings") {
            Some(settings) => without_keys(settings, &["format"]),
            None => json!({}),
        }
    }
    /// The settings moved out of the read (jobs have no hook that reads them
    /// later: no twins, no extra or output changes).
    fn remote_into_config(&self, remote: &mut Value) -> Value {
        match remote.get_mut("settings").map(Value::take) {
            Some(Value::Object(mut settings)) => {
                settings.shift_remove("format");
                Value::Object(settings)
            }
            Some(other) => other,
            None => json!({}),
        }
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        let mut out = common::only_keys(
            remote,
            &["creator_user_name", "run_as_user_name", "created_time"],
        );
        out.insert("id".into(), json!(id));
        out.insert(
            "job_id".into(),
            remote.get("job_id").cloned().unwrap_or_else(|| json!(id)),
        );
        if let Some(name) = remote.get("settings").and_then(|s| s.get("name")) {
            out.insert("name".into(), name.clone());
        }
        Value::Object(out)
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_job")
    }
    /// Without the deployment marker: lakebundle adds its own for the target.
    fn generated_config(&self, remote: &Value) -> Value {
        let config = common::prune_empty(&self.remote_to_config(remote));
        without_keys(&config, &["deployment"])
    }
    /// The workspace notebooks and Python files the tasks run, downloaded
    /// next to the bundle; the tasks then name the local copies.
    async fn generate_files(
        &self,
        client: &Client,
        _remote: &Value,
        config: &mut Value,
        _key: &str,
        source_from_yaml: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        // Every task path that names a workspace file, a loop's task too.
        common::download_workspace_sources(
            client,
            config,
            "tasks",
            &[
                "notebook_task/notebook_path",
                "spark_python_task/python_file",
                "for_each_task/task/notebook_task/notebook_path",
                "for_each_task/task/spark_python_task/python_file",
            ],
            source_from_yaml,
        )
        .await
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("jobs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceAddr;

    #[test]
    fn marker_and_body() {
        let cfg = json!({"name": "j", "permissions": [{"level": "CAN_VIEW", "group_name": "users"}], "tasks": []});
        let addr = ResourceAddr::new(Kind::Jobs, "j");
        let marked = JobKind.with_deployment_marker(
            &cfg,
            &DeploymentInfo {
                addr: &addr,
                metadata_file_path: "/W/state/metadata.json",
            },
        );
        assert_eq!(
            marked["deployment"],
            json!({"kind": "BUNDLE", "metadata_file_path": "/W/state/metadata.json"})
        );
        assert_eq!(marked["edit_mode"], "UI_LOCKED");
        let body = settings_body(&marked);
        assert!(body.get("permissions").is_none());
        assert_eq!(body["name"], "j");
    }

    #[test]
    fn plan_view_moved_out_of_the_read_equals_the_copied_one() {
        let read = json!({"job_id": 7, "creator_user_name": "me", "settings": {
            "name": "j", "format": "MULTI_TASK", "tasks": [{"task_key": "a"}], "max_concurrent_runs": 1
        }});
        let copied = JobKind.remote_to_config(&read);
        let mut taken = read.clone();
        let moved = JobKind.remote_into_config(&mut taken);
        assert_eq!(moved, copied);
        assert_eq!(
            moved
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>()),
            Some(vec![
                "name".into(),
                "tasks".into(),
                "max_concurrent_runs".into()
            ]),
            "same fields, same order, without `format`"
        );
        // What the job's later hooks could read is still there.
        assert_eq!(JobKind.outputs("7", &taken)["creator_user_name"], "me");
        for no_settings in [json!({"job_id": 7}), json!({"settings": null})] {
            let mut r = no_settings.clone();
            assert_eq!(
                JobKind.remote_into_config(&mut r),
                JobKind.remote_to_config(&no_settings)
            );
        }
    }

    #[test]
    fn pages_merge_arrays() {
        let mut settings = json!({"tasks": [{"task_key": "a"}], "name": "j"});
        let page = json!({"settings": {"tasks": [{"task_key": "b"}], "job_clusters": [{"job_cluster_key": "c"}]}});
        if let Value::Object(s) = &mut settings {
            merge_page(s, &page);
        }
        assert_eq!(
            settings["tasks"],
            json!([{"task_key": "a"}, {"task_key": "b"}])
        );
        assert_eq!(settings["job_clusters"], json!([{"job_cluster_key": "c"}]));
    }

    #[test]
    fn remote_shape_and_outputs() {
        let remote = json!({"job_id": 123, "creator_user_name": "me", "settings": {"name": "j", "format": "MULTI_TASK", "tasks": []}});
        assert_eq!(
            JobKind.remote_to_config(&remote),
            json!({"name": "j", "tasks": []})
        );
        let outs = JobKind.outputs("123", &remote);
        assert_eq!(outs["id"], "123");
        assert_eq!(outs["job_id"], 123);
        assert_eq!(outs["name"], "j");
        assert_eq!(
            id_of(&json!({"job_id": 9223372036854775807_i64})),
            Some("9223372036854775807".into())
        );
    }

    #[test]
    fn job_ids_must_be_integers() {
        assert!(job_id("/p", "12").is_ok());
        assert!(job_id("/p", "abc").is_err());
    }

    #[test]
    fn typed_job_deserializes_full_settings() {
        let job: Job = serde_json::from_value(json!({
            "name": "sync", "tasks": [
                {"task_key": "a", "pipeline_task": {"pipeline_id": "p"}},
                {"task_key": "b", "depends_on": [{"task_key": "a"}], "for_each_task": {"inputs": "[1,2]", "task": {"task_key": "inner", "notebook_task": {"notebook_path": "/n"}}}}
            ],
            "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"},
            "trigger": {"periodic": {"interval": 1, "unit": "HOURS"}},
            "git_source": {"git_url": "https://g", "git_provider": "gitHub"},
            "queue": {"enabled": true}, "tags": {"a": "b"}
        }))
        .unwrap();
        assert_eq!(job.tasks.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            job.schedule.and_then(|s| s.pause_status),
            Some(PauseStatus::PAUSED)
        );
    }
}
