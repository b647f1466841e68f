//! `experiments`: an MLflow experiment (`/api/2.0/mlflow/experiments`, contract part 2 §6),
//! id = the server-assigned `experiment_id`. `name` is a workspace path (the service drops a
//! leading `/Workspace`); a new name renames the experiment in place, tags are set and
//! deleted one by one, and `artifact_location` / `trace_location` are fixed at creation. A
//! delete is soft: the experiment stays readable with `lifecycle_stage: deleted`, which counts
//! as gone.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;
use crate::resources::common::{
    self, collect_outputs, literal_str, schema_enum, schema_struct, Lifecycle,
};
use crate::resources::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};

schema_enum! {
    /// Permission levels of MLflow experiments.
    ExperimentPermissionLevel { CAN_MANAGE, CAN_EDIT, CAN_READ }
}

schema_struct! {
    /// One experiment tag.
    #[schemars(extend("required" = ["key"]))]
    pub struct ExperimentTag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    }
}

schema_struct! {
    /// Where the experiment's traces are stored (Unity Catalog).
    pub struct ExperimentTraceLocation {
        /// The Unity Catalog location.
        uc_location: serde_json::Map<String, Value>,
    }
}

schema_struct! {
    /// A grant on the experiment.
    #[schemars(extend("required" = ["level"]))]
    pub struct ExperimentPermission {
        /// Permission level.
        level: ExperimentPermissionLevel,
        /// User to grant.
        user_name: String,
        /// Group to grant.
        group_name: String,
        /// Service principal (application id) to grant.
        service_principal_name: String,
    }
}

schema_struct! {
    /// An MLflow experiment.
    #[schemars(extend("required" = ["name"]))]
    pub struct Experiment {
        /// Workspace path of the experiment (`/Users/me@example.com/churn`). Changing it renames
        /// the experiment.
        name: String,
        /// Where the runs' artifacts are stored; chosen by the service when unset. Changing it
        /// replaces the experiment.
        artifact_location: String,
        /// Tags on the experiment.
        tags: Vec<ExperimentTag>,
        /// Where traces are stored. Changing it replaces the experiment.
        trace_location: ExperimentTraceLocation,
        /// Grants on the experiment.
        permissions: Vec<ExperimentPermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/mlflow/experiments";
const BUNDLE_ONLY: &[&str] = crate::resources::common::ENGINE_FIELDS;
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "experiment_id",
    "name",
    "artifact_location",
    "lifecycle_stage",
    "creation_time",
    "last_update_time",
];
const CONFIG_FIELDS: &[&str] = &["name", "artifact_location", "tags", "trace_location"];

static RULES: FieldRules = FieldRules {
    immutable: &["artifact_location", "trace_location"],
    replace_on_any_change: false,
    // Not part of the experiment as read back: compared with the last apply.
    input_only: &[("trace_location", "")],
    output_only: &[
        "experiment_id",
        "lifecycle_stage",
        "creation_time",
        "last_update_time",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "experiment",
    plural: "experiments",
    title: "Experiments",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "experiment",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    // Its runs and artifacts go with it.
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/ml/experiments/{id}",
};

pub struct ExperimentKind;

/// The name as the service stores it: without a leading `/Workspace`.
fn stored_name(name: &str) -> String {
    match name.strip_prefix("/Workspace/") {
        Some(rest) => format!("/{rest}"),
        None => name.to_string(),
    }
}

fn tags_of(v: &Value) -> Vec<(String, String)> {
    v.get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let key = t.get("key")?.as_str()?.to_string();
            let value = t
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Some((key, value))
        })
        .collect()
}

/// The service's own tags (`mlflow.*`) are not the bundle's: never diffed or deleted.
fn is_system_tag(key: &str) -> bool {
    key.starts_with("mlflow.")
}

/// `GET path?query`; `None` when the object does not exist.
async fn get_q(
    client: &Client,
    path: &str,
    q: &[(&str, String)],
) -> Result<Option<Value>, ApiError> {
    common::none_if_missing(client.call(Method::GET, path, q, None).await)
}

async fn get(client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
    let got = get_q(
        client,
        &format!("{API}/get"),
        &[("experiment_id", id.to_string())],
    )
    .await?;
    Ok(got
        .and_then(|r| r.get("experiment").cloned())
        .filter(|e| e.get("lifecycle_stage").and_then(Value::as_str) != Some("deleted")))
}

#[async_trait]
impl ResourceKind for ExperimentKind {
    fn kind(&self) -> Kind {
        Kind::Experiments
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_mlflow_experiment")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Experiment>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Experiment>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        Vec::new()
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        // Only the experiment's own fields: a stray key (`description`) never reaches the API.
        let body = Value::Object(common::only_keys(config, CONFIG_FIELDS));
        let resp = client
            .call(Method::POST, &format!("{API}/create"), &[], Some(&body))
            .await?;
        let id = resp
            .get("experiment_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Other {
                method: "POST".into(),
                path: format!("{API}/create"),
                status: 200,
                error_code: "BAD_RESPONSE".into(),
                message: "the create response has no experiment_id".into(),
            })?
            .to_string();
        Ok(Created { id, remote: resp })
    }
    /// A deleted experiment stays readable (`lifecycle_stage: deleted`): gone.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        get(client, id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        if changed.iter().any(|c| c == "name") {
            if let Some(name) = config.get("name") {
                let body = json!({"experiment_id": id, "new_name": name});
                client
                    .call(Method::POST, &format!("{API}/update"), &[], Some(&body))
                    .await?;
            }
        }
        if changed.iter().any(|c| c == "tags") {
            let want = tags_of(config);
            let current = get(client, id)
                .await?
                .map(|e| tags_of(&e))
                .unwrap_or_default();
            for (key, _) in current
                .iter()
                .filter(|(k, _)| !is_system_tag(k) && !want.iter().any(|(w, _)| w == k))
            {
                let body = json!({"experiment_id": id, "key": key});
                client
                    .call(
                        Method::POST,
                        &format!("{API}/delete-experiment-tag"),
                        &[],
                        Some(&body),
                    )
                    .await?;
            }
            for (key, value) in want.iter().filter(|t| !current.contains(t)) {
                let body = json!({"experiment_id": id, "key": key, "value": value});
                client
                    .call(
                        Method::POST,
                        &format!("{API}/set-experiment-tag"),
                        &[],
                        Some(&body),
                    )
                    .await?;
            }
        }
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        let body = json!({"experiment_id": id});
        common::ok_if_missing(
            client
                .call(Method::POST, &format!("{API}/delete"), &[], Some(&body))
                .await,
        )
    }
    /// Creation is synchronous: ready once it can be read.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        get(client, id).await?.ok_or_else(|| {
            common::not_ready(&format!("{API}/get"), format!("experiment {id} is gone"))
        })
    }
    /// After a lost create response: the live experiment with this name (names are unique).
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(name) = literal_str(config, "name") else {
            return Ok(None);
        };
        let got = get_q(
            client,
            &format!("{API}/get-by-name"),
            &[("experiment_name", stored_name(name))],
        )
        .await?;
        Ok(got
            .and_then(|r| r.get("experiment").cloned())
            .filter(|e| e.get("lifecycle_stage").and_then(Value::as_str) != Some("deleted"))
            .and_then(|e| {
                let id = e.get("experiment_id")?.as_str()?.to_string();
                Some(Created { id, remote: e })
            }))
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = Map::from_iter(common::only_keys(remote, CONFIG_FIELDS));
        let tags: Vec<Value> = tags_of(remote)
            .into_iter()
            .filter(|(k, _)| !is_system_tag(k))
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        out.remove("tags");
        if !tags.is_empty() {
            out.insert("tags".into(), Value::Array(tags));
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        let mut out = collect_outputs(id, remote, OUTPUT_FIELDS);
        out["experiment_id"] = Value::String(id.to_string());
        out
    }
    /// The name as the service reads it back (no `/Workspace` prefix).
    /// Unknown keys (warned about at validate) are dropped, as the CLI does.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        let mut out = super::known_fields(config, CONFIG_FIELDS, BUNDLE_ONLY);
        if let Some(name) = literal_str(config, "name") {
            out["name"] = Value::String(stored_name(name));
        }
        out
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("experiments")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_prefix_is_dropped_and_system_tags_are_not_config() {
        assert_eq!(stored_name("/Workspace/Users/a@b.c/x"), "/Users/a@b.c/x");
        assert_eq!(stored_name("/Users/a@b.c/x"), "/Users/a@b.c/x");
        let remote = json!({"experiment_id": "1", "name": "/Users/a/x", "lifecycle_stage": "active",
            "tags": [{"key": "mlflow.ownerId", "value": "9"}, {"key": "team", "value": "ml"}]});
        assert_eq!(
            ExperimentKind.remote_to_config(&remote),
            json!({"name": "/Users/a/x", "tags": [{"key": "team", "value": "ml"}]})
        );
    }
}
