//! `clusters`: all-purpose clusters (`/api/2.1/clusters/...`, contract part 2 §6). The id
//! is the server-assigned `cluster_id`. A new cluster starts itself (PENDING → RUNNING) and
//! deploy waits for it; an edit sends the whole spec and is only accepted while the cluster
//! is RUNNING (it restarts) or TERMINATED (it stays so), so other states are waited out; a
//! change of the size alone on a running cluster is a `resize`. `delete` of the API only
//! terminates: destroy uses `permanent-delete`. `lifecycle.started` starts or terminates it.

use std::time::Duration;

use async_trait::async_trait;
use indexmap::IndexMap;
use serde_json::{json, Value};

use super::common::{
    self, collect_outputs, literal_str, poll_get, schema_enum, schema_struct, state_at,
    without_keys, LifecycleWithStarted, Poll,
};
use super::job::compute::{
    AutoScale, AwsAttributes, AzureAttributes, ClusterLogConf, ComputeKind, DataSecurityMode,
    DependencyMode, DockerImage, GcpAttributes, InitScriptInfo, NodeTypeFlexibility, RuntimeEngine,
    WorkloadType,
};
use super::{
    Created, ExtraChanges, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::{Node, NodeKind};
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// Permission levels of clusters.
    ClusterPermissionLevel { CAN_MANAGE, CAN_RESTART, CAN_ATTACH_TO }
}

schema_struct! {
    /// One grant on a cluster (applied through the Permissions API).
    #[schemars(extend("required" = ["level"]))]
    pub struct ClusterPermission {
        /// The permission level to grant.
        level: ClusterPermissionLevel,
        /// The user (email) receiving the level. Set exactly one principal.
        user_name: String,
        /// The workspace group receiving the level.
        group_name: String,
        /// The service principal (application id) receiving the level.
        service_principal_name: String,
    }
}

schema_struct! {
    /// An all-purpose cluster.
    pub struct Cluster {
        /// Use the policy's fixed and default values for unset fields.
        apply_policy_default_values: bool,
        /// Autoscaling bounds (instead of `num_workers`).
        autoscale: AutoScale,
        /// Minutes of inactivity before the cluster terminates (0 = never).
        autotermination_minutes: i64,
        /// AWS node settings.
        aws_attributes: AwsAttributes,
        /// Azure node settings.
        azure_attributes: AzureAttributes,
        /// Log delivery destination.
        cluster_log_conf: ClusterLogConf,
        /// Cluster name (need not be unique).
        cluster_name: String,
        /// Extra tags on the cluster's cloud resources.
        custom_tags: IndexMap<String, String>,
        /// Data governance model.
        data_security_mode: DataSecurityMode,
        /// How dependencies are installed.
        dependency_mode: DependencyMode,
        /// Custom container image.
        docker_image: DockerImage,
        /// Instance pool of the driver (`${resources.instance_pools.<key>.id}` for a bundle pool).
        driver_instance_pool_id: String,
        /// Fallback node types of the driver.
        driver_node_type_flexibility: NodeTypeFlexibility,
        /// Node type of the driver (default: `node_type_id`).
        driver_node_type_id: String,
        /// Grow local storage on demand.
        enable_elastic_disk: bool,
        /// Encrypt local disks.
        enable_local_disk_encryption: bool,
        /// GCP node settings.
        gcp_attributes: GcpAttributes,
        /// Init scripts, run in order.
        init_scripts: Vec<InitScriptInfo>,
        /// Instance pool of the cluster (`${resources.instance_pools.<key>.id}` for a bundle pool).
        instance_pool_id: String,
        /// Single-node cluster (with `kind: CLASSIC_PREVIEW`).
        is_single_node: bool,
        /// Kind of compute this spec describes.
        kind: ComputeKind,
        /// Node type of the workers.
        node_type_id: String,
        /// Fixed number of workers (instead of `autoscale`).
        num_workers: i64,
        /// Cluster policy id.
        policy_id: String,
        /// Remote disk throughput in Mb/s.
        remote_disk_throughput: i64,
        /// Runtime engine (standard or Photon).
        runtime_engine: RuntimeEngine,
        /// User of a SINGLE_USER cluster.
        single_user_name: String,
        /// Spark configuration key-value pairs.
        spark_conf: IndexMap<String, String>,
        /// Environment variables of the Spark processes.
        spark_env_vars: IndexMap<String, String>,
        /// Databricks Runtime version, e.g. `15.4.x-scala2.12` (required unless a policy sets it).
        spark_version: String,
        /// SSH public keys added to every node.
        ssh_public_keys: Vec<String>,
        /// Initial remote disk size in GB.
        total_initial_remote_disk_size: i64,
        /// Use the ML runtime (with `kind: CLASSIC_PREVIEW`).
        use_ml_runtime: bool,
        /// Fallback node types of the workers.
        worker_node_type_flexibility: NodeTypeFlexibility,
        /// Allowed client types.
        workload_type: WorkloadType,
        /// Grants on the cluster.
        permissions: Vec<ClusterPermission>,
        /// Deployment lifecycle settings; `started: false` keeps the cluster terminated.
        lifecycle: LifecycleWithStarted,
    }
}

const API: &str = "/api/2.1/clusters";
const BUNDLE_ONLY: &[&str] = crate::resources::common::ENGINE_FIELDS;
/// The spec fields a cluster reads back (everything else GET returns is the service's).
const CONFIG_FIELDS: &[&str] = &[
    "apply_policy_default_values",
    "autoscale",
    "autotermination_minutes",
    "aws_attributes",
    "azure_attributes",
    "cluster_log_conf",
    "cluster_name",
    "custom_tags",
    "data_security_mode",
    "dependency_mode",
    "docker_image",
    "driver_instance_pool_id",
    "driver_node_type_flexibility",
    "driver_node_type_id",
    "enable_elastic_disk",
    "enable_local_disk_encryption",
    "gcp_attributes",
    "init_scripts",
    "instance_pool_id",
    "is_single_node",
    "kind",
    "node_type_id",
    "num_workers",
    "policy_id",
    "remote_disk_throughput",
    "runtime_engine",
    "single_user_name",
    "spark_conf",
    "spark_env_vars",
    "spark_version",
    "ssh_public_keys",
    "total_initial_remote_disk_size",
    "use_ml_runtime",
    "worker_node_type_flexibility",
    "workload_type",
];
/// Fields a `resize` changes: a change of these alone on a running cluster resizes it.
const SIZE_FIELDS: &[&str] = &["num_workers", "autoscale"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "cluster_id",
    "cluster_name",
    "state",
    "spark_version",
    "creator_user_name",
    "default_tags",
];
/// The CLI's wait for a cluster (create, edit, start, terminate).
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

static RULES: FieldRules = FieldRules {
    immutable: &[],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "cluster_id",
        "state",
        "state_message",
        "creator_user_name",
        "default_tags",
        "start_time",
        "terminated_time",
        "last_restarted_time",
        "termination_reason",
        "cluster_source",
        "spark_context_id",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "cluster",
    plural: "clusters",
    title: "Clusters",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::Put,
    state_fields: &["state"],
    // TERMINATED: an edited terminated cluster stays terminated.
    ready_states: &["RUNNING", "TERMINATED"],
    wait_text: "cluster to become RUNNING",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/compute/clusters/{id}",
};

pub struct ClusterKind;

/// States in which the cluster runs or is about to.
const ON: &[&str] = &["RUNNING", "PENDING", "RESTARTING", "RESIZING"];
/// States in which the cluster is stopped or about to be.
const OFF: &[&str] = &["TERMINATED", "TERMINATING"];

fn body(config: &Value) -> Value {
    without_keys(config, BUNDLE_ONLY)
}

fn started(config: &Value) -> Option<bool> {
    config
        .get("lifecycle")
        .and_then(|l| l.get("started"))
        .and_then(Value::as_bool)
}

fn bad_response(path: &str, message: &str) -> ApiError {
    ApiError::Other {
        method: "POST".into(),
        path: path.into(),
        status: 200,
        error_code: "BAD_RESPONSE".into(),
        message: message.into(),
    }
}

/// A `lifecycle.started` the live state does not match is a planned change of its own.
fn started_change(desired: &Value, remote: Option<&Value>) -> ExtraChanges {
    let (Some(want), Some(remote)) = (started(desired), remote) else {
        return ExtraChanges::default();
    };
    let state = state_at(remote, "state");
    if (want && OFF.contains(&state)) || (!want && ON.contains(&state)) {
        ExtraChanges {
            fields: vec![crate::plan::FieldChange {
                path: "lifecycle.started".into(),
                old: Some(Value::Bool(!want)),
                new: Some(Value::Bool(want)),
                unknown: false,
                forces_replacement: false,
            }],
            drift: Vec::new(),
        }
    } else {
        ExtraChanges::default()
    }
}

fn get_path(id: &str) -> String {
    format!("{API}/get?cluster_id={id}")
}

/// Poll until the cluster settles in one of `want`; ERROR fails, as does `fail_on`.
async fn wait_for(
    client: &Client,
    id: &str,
    want: &'static [&'static str],
    fail_on: &'static [&'static str],
    timeout: Duration,
) -> Result<Value, ApiError> {
    poll_until_state(client, id, timeout, |state| {
        if want.contains(&state) {
            Some(true)
        } else if state == "ERROR" || fail_on.contains(&state) {
            Some(false)
        } else {
            None
        }
    })
    .await
}

/// `judge(state)`: `Some(true)` ready, `Some(false)` failed, `None` keep waiting.
async fn poll_until_state(
    client: &Client,
    id: &str,
    timeout: Duration,
    judge: impl Fn(&str) -> Option<bool>,
) -> Result<Value, ApiError> {
    poll_get(client, &get_path(id), timeout, |c| {
        let state = state_at(&c, "state").to_string();
        match judge(&state) {
            Some(true) => Poll::Ready(c),
            Some(false) => {
                let why = state_at(&c, "state_message");
                Poll::Failed(format!("cluster {id} is {state}: {why}"))
            }
            None => Poll::Pending(if state.is_empty() {
                "UNKNOWN".into()
            } else {
                state
            }),
        }
    })
    .await
}

/// Wait until the cluster accepts an edit (RUNNING or TERMINATED).
async fn wait_editable(client: &Client, id: &str) -> Result<Value, ApiError> {
    wait_for(client, id, &["RUNNING", "TERMINATED"], &[], CLUSTER_TIMEOUT).await
}

fn int_of(node: &Node) -> Option<i64> {
    match node.kind {
        NodeKind::Int(i) => Some(i),
        _ => None,
    }
}

#[async_trait]
impl ResourceKind for ClusterKind {
    fn kind(&self) -> Kind {
        Kind::Clusters
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_cluster")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Cluster>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Cluster>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        if let (Some(n), Some(a)) = (node.get("num_workers"), node.get("autoscale")) {
            diags.push(
                Diag::error(format!(
                    "{addr} sets both num_workers and autoscale: a cluster has either a fixed size or autoscaling bounds"
                ))
                .at(a.span, "autoscale here")
                .at(n.span, "num_workers here")
                .help("remove `num_workers` to autoscale, or `autoscale` for a fixed size"),
            );
        }
        if let Some(a) = node.get("autoscale") {
            let min = a.get("min_workers").and_then(int_of);
            let max = a.get("max_workers").and_then(int_of);
            if let (Some(min), Some(max)) = (min, max) {
                if max < min {
                    let span = a.get("max_workers").map_or(a.span, |n| n.span);
                    diags.push(
                        Diag::error(format!(
                            "{addr}.autoscale.max_workers ({max}) is below min_workers ({min})"
                        ))
                        .at(span, "smaller than the minimum")
                        .help("raise max_workers or lower min_workers"),
                    );
                }
            }
        }
        // A policy may fix the runtime; without one the API refuses the spec.
        if node.get("spark_version").is_none() && node.get("policy_id").is_none() {
            diags.push(
                Diag::error(format!("{addr} has no spark_version"))
                    .at(node.span, "this cluster")
                    .help("set `spark_version` (e.g. `15.4.x-scala2.12`), or a `policy_id` whose policy sets it"),
            );
        }
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        // Pools and policies are referenced by id (`${resources.instance_pools.p.id}`).
        vec![]
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let path = format!("{API}/create");
        let resp = client
            .call(Method::POST, &path, &[], Some(&body(config)))
            .await?;
        let id = resp
            .get("cluster_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_response(&path, "the create response has no cluster_id"))?
            .to_string();
        Ok(Created { id, remote: resp })
    }
    /// A missing cluster answers 400 INVALID_PARAMETER_VALUE "... does not exist": gone.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let q = [("cluster_id", id.to_string())];
        common::none_if_missing(
            client
                .call(Method::GET, &format!("{API}/get"), &q, None)
                .await,
        )
    }
    /// A change of the size alone on a running cluster is a resize; anything else is a full
    /// edit, once the cluster is RUNNING or TERMINATED (retried while the service answers
    /// INVALID_STATE: the cluster moved in between).
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let current = wait_editable(client, id).await?;
        let size_only = !changed.is_empty()
            && changed
                .iter()
                .all(|c| SIZE_FIELDS.contains(&c.as_str()) || c == "lifecycle");
        if size_only && state_at(&current, "state") == "RUNNING" {
            let mut b = json!({"cluster_id": id});
            for f in SIZE_FIELDS {
                if let Some(v) = config.get(*f) {
                    b[*f] = v.clone();
                }
            }
            client
                .call(Method::POST, &format!("{API}/resize"), &[], Some(&b))
                .await?;
            return Ok(id.to_string());
        }
        let mut b = body(config);
        b["cluster_id"] = json!(id);
        let path = format!("{API}/edit");
        let mut tries = 0;
        loop {
            match client.call(Method::POST, &path, &[], Some(&b)).await {
                Ok(_) => return Ok(id.to_string()),
                Err(ApiError::InvalidState { .. }) if tries < 5 => {
                    tries += 1;
                    wait_editable(client, id).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::ok_if_missing(
            client
                .call(
                    Method::POST,
                    &format!("{API}/permanent-delete"),
                    &[],
                    Some(&json!({"cluster_id": id})),
                )
                .await,
        )
    }
    /// Until RUNNING (a new or edited running cluster) or TERMINATED (an edited terminated
    /// one); ERROR fails.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        wait_for(client, id, &["RUNNING", "TERMINATED"], &[], timeout).await
    }
    /// `lifecycle.started`: terminate a running cluster (`false`) or start a terminated one.
    async fn after_ready(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        ready: Value,
        timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Value, ApiError> {
        let state = state_at(&ready, "state");
        let b = json!({"cluster_id": id});
        match (started(config), state) {
            (Some(false), s) if ON.contains(&s) => {
                progress("lifecycle.started: terminating the cluster".into());
                client
                    .call(Method::POST, &format!("{API}/delete"), &[], Some(&b))
                    .await?;
                wait_for(client, id, &["TERMINATED"], &[], timeout).await
            }
            (Some(true), s) if OFF.contains(&s) => {
                progress("lifecycle.started: starting the cluster".into());
                if s == "TERMINATING" {
                    wait_for(client, id, &["TERMINATED"], &[], timeout).await?;
                }
                client
                    .call(Method::POST, &format!("{API}/start"), &[], Some(&b))
                    .await?;
                wait_for(client, id, &["RUNNING"], &["TERMINATED"], timeout).await
            }
            _ => Ok(ready),
        }
    }
    fn extra_changes(
        &self,
        desired: &Value,
        _applied: &Value,
        remote: Option<&Value>,
    ) -> ExtraChanges {
        started_change(desired, remote)
    }
    /// After a lost create response: the one cluster of this name, if exactly one exists
    /// (names are not unique, so two or more are never guessed between).
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(name) = literal_str(config, "cluster_name") else {
            return Ok(None);
        };
        let all = crate::api::list_all(client, &format!("{API}/list"), &[], "clusters").await?;
        let mut found = all
            .into_iter()
            .filter(|c| c.get("cluster_name").and_then(Value::as_str) == Some(name));
        match (found.next(), found.next()) {
            (Some(c), None) => {
                let id = c
                    .get("cluster_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                Ok(Some(Created { id, remote: c }))
            }
            _ => Ok(None),
        }
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("clusters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_is_a_change_only_when_the_state_differs() {
        let off = json!({"lifecycle": {"started": false}});
        let on = json!({"lifecycle": {"started": true}});
        assert_eq!(
            started_change(&off, Some(&json!({"state": "RUNNING"})))
                .fields
                .len(),
            1
        );
        assert_eq!(
            started_change(&on, Some(&json!({"state": "TERMINATED"}))).fields[0].new,
            Some(json!(true))
        );
        assert!(started_change(&on, Some(&json!({"state": "PENDING"})))
            .fields
            .is_empty());
        assert!(
            started_change(&json!({}), Some(&json!({"state": "RUNNING"})))
                .fields
                .is_empty()
        );
    }

    #[test]
    fn remote_shape_keeps_the_spec_only() {
        let remote = json!({"cluster_id": "c1", "cluster_name": "n", "state": "RUNNING",
                            "spark_version": "15.4.x-scala2.12", "num_workers": 2,
                            "default_tags": {"Vendor": "Databricks"}, "start_time": 1});
        assert_eq!(
            ClusterKind.remote_to_config(&remote),
            json!({"cluster_name": "n", "spark_version": "15.4.x-scala2.12", "num_workers": 2})
        );
        assert_eq!(ClusterKind.outputs("c1", &remote)["state"], "RUNNING");
    }
}
