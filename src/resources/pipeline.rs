//! `pipelines`: Lakeflow declarative pipelines (contract part 2 §3). The id is the
//! server-assigned `pipeline_id`; an edit is a PUT of the complete settings; GET
//! returns the settings under `spec`. `storage` (and the ingestion source fields)
//! cannot change: a change replaces the pipeline.

use std::time::Duration;

use async_trait::async_trait;
use indexmap::IndexMap;
use serde_json::{json, Value};

use super::common::{
    self, collect_outputs, get_if_exists, literal_str, schema_struct, without_keys, Lifecycle,
};
use super::job::{
    AutoScale, AwsAttributes, AzureAttributes, ClusterLogConf, GcpAttributes, InitScriptInfo,
    MavenLibrary,
};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, PathField, PathKind,
    ResourceKind, RunAs, RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;

schema_struct! {
    /// A notebook in the workspace.
    pub struct NotebookLibrary {
        /// Path of the notebook (relative to the YAML file, or a workspace path).
        path: String,
    }
}
schema_struct! {
    /// A source file in the workspace.
    pub struct FileLibrary {
        /// Path of the file (relative to the YAML file, or a workspace path).
        path: String,
    }
}
schema_struct! {
    /// Every source file under a path pattern.
    pub struct PathPattern {
        /// Path pattern of source files, e.g. `../src/transformations/**`.
        include: String,
    }
}
schema_struct! {
    /// One source of the pipeline: set exactly one of the fields.
    pub struct PipelineLibrary {
        /// A notebook.
        notebook: NotebookLibrary,
        /// A source file.
        file: FileLibrary,
        /// Every source file matching a pattern.
        glob: PathPattern,
        /// A JAR (DBFS or workspace path).
        jar: String,
        /// A Maven package.
        maven: MavenLibrary,
        /// A wheel (deprecated for pipelines; use `environment`).
        whl: String,
    }
}
schema_struct! {
    /// Compute of a classic (non-serverless) pipeline.
    pub struct PipelineCluster {
        /// `default` (the update cluster) or `maintenance`.
        label: String,
        /// Apply the policy's default values.
        apply_policy_default_values: bool,
        /// Autoscaling settings.
        autoscale: AutoScale,
        /// AWS settings.
        aws_attributes: AwsAttributes,
        /// Azure settings.
        azure_attributes: AzureAttributes,
        /// GCP settings.
        gcp_attributes: GcpAttributes,
        /// Where cluster logs go.
        cluster_log_conf: ClusterLogConf,
        /// Tags on the cluster's cloud resources.
        custom_tags: IndexMap<String, String>,
        /// Instance pool of the driver.
        driver_instance_pool_id: String,
        /// Node type of the driver.
        driver_node_type_id: String,
        /// Encrypt local disks.
        enable_local_disk_encryption: bool,
        /// Init scripts.
        init_scripts: Vec<InitScriptInfo>,
        /// Instance pool of the workers.
        instance_pool_id: String,
        /// Node type of the workers.
        node_type_id: String,
        /// Fixed number of workers.
        num_workers: i64,
        /// Cluster policy.
        policy_id: String,
        /// Spark configuration.
        spark_conf: IndexMap<String, String>,
        /// Environment variables.
        spark_env_vars: IndexMap<String, String>,
        /// SSH public keys.
        ssh_public_keys: Vec<String>,
    }
}
schema_struct! {
    /// Who is notified on pipeline events.
    pub struct PipelineNotifications {
        /// Events to notify on (`on-update-success`, `on-update-failure`, `on-flow-failure`, ...).
        alerts: Vec<String>,
        /// Email addresses to notify.
        email_recipients: Vec<String>,
    }
}
schema_struct! {
    /// Where the event log is published.
    pub struct EventLogSpec {
        /// Catalog of the event log table.
        catalog: String,
        /// Schema of the event log table.
        schema: String,
        /// Name of the event log table.
        name: String,
    }
}
schema_struct! {
    /// Python environment of a serverless pipeline.
    pub struct PipelinesEnvironment {
        /// pip dependencies (`package==1.0`, `--editable /Workspace/...`, wheel paths).
        dependencies: Vec<String>,
        /// Environment version.
        environment_version: String,
    }
}
schema_struct! {
    /// Identity the pipeline runs as. Set one of the fields.
    pub struct PipelineRunAs {
        /// A user (email).
        user_name: String,
        /// A service principal (application id).
        service_principal_name: String,
    }
}
schema_struct! {
    /// When continuous pipelines may be restarted for maintenance.
    #[schemars(extend("required" = ["start_hour"]))]
    pub struct RestartWindow {
        /// Days of the week (`MONDAY`, ...).
        days_of_week: Vec<String>,
        /// Hour of the day the window starts (0-23).
        start_hour: i64,
        /// Time zone id.
        time_zone_id: String,
    }
}
schema_struct! {
    /// Notebook/file paths to include or exclude.
    pub struct PipelineFilters {
        /// Paths to exclude.
        exclude: Vec<String>,
        /// Paths to include.
        include: Vec<String>,
    }
}
schema_struct! {
    /// One grant on a pipeline (applied through the Permissions API).
    #[schemars(extend("required" = ["level"]))]
    pub struct PipelinePermission {
        /// The permission level to grant.
        level: PipelinePermissionLevel,
        /// The user (email) receiving the level.
        user_name: String,
        /// The workspace group receiving the level.
        group_name: String,
        /// The service principal (application id) receiving the level.
        service_principal_name: String,
    }
}
common::schema_enum! {
    /// Permission levels of pipelines.
    PipelinePermissionLevel { CAN_MANAGE, IS_OWNER, CAN_RUN, CAN_VIEW }
}

schema_struct! {
    /// A Lakeflow declarative pipeline.
    #[schemars(extend("required" = ["name"]))]
    pub struct Pipeline {
        /// Name of the pipeline.
        name: String,
        /// Unity Catalog catalog the pipeline publishes to.
        catalog: String,
        /// Default schema the pipeline publishes to.
        schema: String,
        /// Deprecated: the schema (Hive metastore target). Use `schema`.
        target: String,
        /// Source code of the pipeline.
        libraries: Vec<PipelineLibrary>,
        /// Root folder of the pipeline's source code (a directory of the bundle).
        root_path: String,
        /// Run on serverless compute.
        serverless: bool,
        /// Classic compute settings.
        clusters: Vec<PipelineCluster>,
        /// Spark/pipeline configuration key/values.
        configuration: IndexMap<String, String>,
        /// Run continuously instead of on trigger.
        continuous: bool,
        /// Development mode (keeps clusters, no retries).
        development: bool,
        /// Release channel (`CURRENT`, `PREVIEW`).
        channel: String,
        /// Product edition (`CORE`, `PRO`, `ADVANCED`).
        edition: String,
        /// Use Photon.
        photon: bool,
        /// DBFS root of a Hive metastore pipeline. Changing it replaces the pipeline.
        storage: String,
        /// Notifications.
        notifications: Vec<PipelineNotifications>,
        /// Event log publishing.
        event_log: EventLogSpec,
        /// Python environment (serverless).
        environment: PipelinesEnvironment,
        /// Tags.
        tags: IndexMap<String, String>,
        /// Parameters.
        parameters: IndexMap<String, String>,
        /// Budget policy.
        budget_policy_id: String,
        /// Usage policy.
        usage_policy_id: String,
        /// Serverless compute id.
        serverless_compute_id: String,
        /// Paths to include or exclude.
        filters: PipelineFilters,
        /// Deprecated trigger settings.
        trigger: serde_json::Value,
        /// Maintenance restart window.
        restart_window: RestartWindow,
        /// Managed ingestion settings (some fields cannot change).
        ingestion_definition: serde_json::Value,
        /// Ingestion gateway settings (some fields cannot change).
        gateway_definition: serde_json::Value,
        /// Create even if a pipeline with this name exists.
        allow_duplicate_names: bool,
        /// Identity the pipeline runs as.
        run_as: PipelineRunAs,
        /// On destroy, also drop the tables and views the pipeline published (default true).
        cascade_on_destroy: bool,
        /// Grants on the pipeline.
        permissions: Vec<PipelinePermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
        /// Id of an existing pipeline (bind); not sent.
        id: String,
    }
}

const API: &str = "/api/2.0/pipelines";

/// The delete's query: `cascade=false` only when the config says so.
fn delete_query(applied: &Value) -> Vec<(&'static str, String)> {
    match applied.get("cascade_on_destroy").and_then(Value::as_bool) {
        Some(false) => vec![("cascade", "false".into())],
        _ => vec![],
    }
}
const BUNDLE_ONLY: &[&str] = &["permissions", "lifecycle", "cascade_on_destroy", "id"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "pipeline_id",
    "name",
    "creator_user_name",
    "run_as_user_name",
    "state",
];

static RULES: FieldRules = FieldRules {
    immutable: &[
        "storage",
        "ingestion_definition.connection_name",
        "ingestion_definition.ingestion_gateway_id",
        "ingestion_definition.ingest_from_uc_foreign_catalog",
        "gateway_definition.connection_name",
        "gateway_definition.connection_id",
        "gateway_definition.gateway_storage_catalog",
        "gateway_definition.gateway_storage_schema",
        "gateway_definition.gateway_storage_name",
    ],
    replace_on_any_change: false,
    input_only: &[("allow_duplicate_names", "")],
    output_only: &[
        "pipeline_id",
        "creator_user_name",
        "run_as_user_name",
        "state",
        "health",
        "last_modified",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "pipeline",
    plural: "pipelines",
    title: "Pipelines",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::Put,
    // Usable once created: updates run later, on `run` or a job's pipeline task.
    state_fields: &[],
    ready_states: &[],
    wait_text: "pipeline",
    grants_securable: None,
    // Translated at deploy like job notebook paths.
    workspace_paths: WorkspacePaths::Fields(&[
        PathField {
            path: &["libraries", "*", "notebook", "path"],
            kind: PathKind::Notebook,
        },
        PathField {
            path: &["libraries", "*", "file", "path"],
            kind: PathKind::File,
        },
        PathField {
            path: &["libraries", "*", "glob", "include"],
            kind: PathKind::Glob,
        },
        PathField {
            path: &["root_path"],
            kind: PathKind::Dir,
        },
    ]),
    replace_loses_data: false,
    run: RunStyle::PipelineUpdate,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/pipelines/{id}",
};

pub struct PipelineKind;

fn path_for(id: &str) -> String {
    format!("{API}/{id}")
}

/// The settings body of create/edit: the config without bundle-only fields.
fn settings_body(config: &Value) -> Value {
    without_keys(config, BUNDLE_ONLY)
}

#[async_trait]
impl ResourceKind for PipelineKind {
    fn kind(&self) -> Kind {
        Kind::Pipelines
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Pipeline>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Pipeline>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        for (i, lib) in node
            .get("libraries")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let Some(map) = lib.as_map() else { continue };
            let set = ["notebook", "file", "glob", "jar", "maven", "whl"]
                .iter()
                .filter(|k| map.get(k).is_some())
                .count();
            if set != 1 {
                diags.push(
                    crate::diag::Diag::error(format!(
                        "{addr}.libraries[{i}] must set exactly one of notebook, file, glob, jar, maven, whl"
                    ))
                    .at(lib.span, "this library")
                    .help("split it into one entry per source"),
                );
            }
        }
        if let (Some(_), Some(t)) = (node.get("schema"), node.get("target")) {
            diags.push(
                crate::diag::Diag::error(format!("{addr} sets both `schema` and `target`"))
                    .at(t.span, "deprecated spelling of `schema`")
                    .help("keep only `schema`"),
            );
        }
    }
    /// Pipelines link to other resources only through explicit references.
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }
    /// Marks the pipeline as bundle-owned, as the CLI does.
    fn with_deployment_marker(&self, config: &Value, info: &DeploymentInfo<'_>) -> Value {
        let mut out = config.clone();
        if let Value::Object(map) = &mut out {
            map.insert(
                "deployment".into(),
                json!({"kind": "BUNDLE", "metadata_file_path": info.metadata_file_path}),
            );
        }
        out
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_pipeline")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let resp = client
            .call(Method::POST, API, &[], Some(&settings_body(config)))
            .await?;
        let id = resp
            .get("pipeline_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Other {
                method: "POST".into(),
                path: API.into(),
                status: 200,
                error_code: "BAD_RESPONSE".into(),
                message: "the create response has no pipeline_id".into(),
            })?
            .to_string();
        Ok(Created { id, remote: resp })
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let got = get_if_exists(client, &path_for(id)).await?;
        // A deleted pipeline can stay readable for a while with state DELETED.
        Ok(got.filter(|p| p.get("state").and_then(Value::as_str) != Some("DELETED")))
    }
    /// Full replace: omitted fields are cleared.
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        let mut body = settings_body(config);
        if let Value::Object(m) = &mut body {
            m.insert("id".into(), json!(id));
        }
        client
            .call(Method::PUT, &path_for(id), &[], Some(&body))
            .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// `cascade_on_destroy: false` keeps the pipeline's tables and views:
    /// `?cascade=false` (contract §3); otherwise the server default (cascade).
    async fn delete_applied(
        &self,
        client: &Client,
        id: &str,
        applied: &Value,
    ) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &delete_query(applied)).await
    }
    /// Create/edit have no waiter: the pipeline is usable at once.
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
                path: path_for(id),
                message: format!("The specified pipeline {id} was not found."),
            })
    }
    /// After a lost create response: the pipeline of this name carrying this
    /// deployment's marker.
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(name) = literal_str(config, "name") else {
            return Ok(None);
        };
        let marker = config
            .get("deployment")
            .and_then(|d| d.get("metadata_file_path"))
            .and_then(Value::as_str);
        let filter = format!("name LIKE '{}'", name.replace('\'', "''"));
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("filter", filter.clone()),
                ("max_results", "100".to_string()),
            ];
            if let Some(t) = &token {
                q.push(("page_token", t.clone()));
            }
            let page = client.call(Method::GET, API, &q, None).await?;
            for s in page
                .get("statuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if s.get("name").and_then(Value::as_str) != Some(name) {
                    continue;
                }
                let Some(id) = s.get("pipeline_id").and_then(Value::as_str) else {
                    continue;
                };
                let Some(remote) = self.read(client, id).await? else {
                    continue;
                };
                let theirs = remote
                    .pointer("/spec/deployment/metadata_file_path")
                    .and_then(Value::as_str);
                if marker.is_none() || theirs == marker {
                    return Ok(Some(Created {
                        id: id.to_string(),
                        remote,
                    }));
                }
            }
            token = page
                .get("next_page_token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(None);
            }
        }
    }
    /// YAML shape: the `spec` (without its `id`), plus a top-level `run_as` the
    /// server echoes when it was set.
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut spec = remote.get("spec").cloned().unwrap_or_else(|| json!({}));
        if let Value::Object(m) = &mut spec {
            m.remove("id");
            if let Some(r) = remote.get("run_as") {
                m.insert("run_as".into(), r.clone());
            }
        }
        spec
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        let mut out = collect_outputs(id, remote, OUTPUT_FIELDS);
        out["pipeline_id"] = json!(id);
        out
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("pipelines")
    }
    /// The workspace notebooks and files of the libraries, downloaded next
    /// to the bundle (as the Databricks CLI does); `glob` includes stay
    /// workspace paths.
    async fn generate_files(
        &self,
        client: &Client,
        _remote: &Value,
        config: &mut Value,
        _key: &str,
        source_from_yaml: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        common::download_workspace_sources(
            client,
            config,
            "libraries",
            &["notebook/path", "file/path"],
            source_from_yaml,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_false_is_sent_only_when_asked() {
        assert_eq!(
            delete_query(&json!({"cascade_on_destroy": false})),
            vec![("cascade", "false".to_string())]
        );
        assert!(delete_query(&json!({"cascade_on_destroy": true})).is_empty());
        assert!(delete_query(&json!({"name": "p"})).is_empty());
    }

    #[test]
    fn remote_shape_is_the_spec() {
        let remote = json!({"pipeline_id": "p", "state": "IDLE", "spec": {"id": "p", "name": "n", "serverless": true}});
        assert_eq!(
            PipelineKind.remote_to_config(&remote),
            json!({"name": "n", "serverless": true})
        );
        let out = PipelineKind.outputs("p", &remote);
        assert_eq!(out["pipeline_id"], "p");
        assert_eq!(out["id"], "p");
    }

    #[test]
    fn body_drops_bundle_fields() {
        let cfg =
            json!({"name": "n", "cascade_on_destroy": false, "permissions": [], "lifecycle": {}});
        assert_eq!(settings_body(&cfg), json!({"name": "n"}));
    }
}
