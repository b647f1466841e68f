//! `models`: a model of the legacy workspace MLflow registry (`/api/2.0/mlflow/registered-models`,
//! contract part 2 §6), id = `name`. `description` changes in place, tags are set and deleted
//! one by one, a new name recreates the model (as the official CLI does). Permissions address
//! the model by its server-assigned `registered_model_databricks.id`, recorded as the
//! `model_id` output.

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
    /// Permission levels of legacy registry models.
    ModelPermissionLevel {
        CAN_MANAGE, CAN_MANAGE_PRODUCTION_VERSIONS, CAN_MANAGE_STAGING_VERSIONS, CAN_EDIT, CAN_READ
    }
}

schema_struct! {
    /// One model tag.
    #[schemars(extend("required" = ["key"]))]
    pub struct ModelTag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    }
}

schema_struct! {
    /// A grant on the model.
    #[schemars(extend("required" = ["level"]))]
    pub struct ModelPermission {
        /// Permission level.
        level: ModelPermissionLevel,
        /// User to grant.
        user_name: String,
        /// Group to grant.
        group_name: String,
        /// Service principal (application id) to grant.
        service_principal_name: String,
    }
}

schema_struct! {
    /// A model of the workspace MLflow model registry.
    #[schemars(extend("required" = ["name"]))]
    pub struct Model {
        /// Name of the model, unique in the workspace. Changing it replaces the model.
        name: String,
        /// Description of the model.
        description: String,
        /// Tags on the model.
        tags: Vec<ModelTag>,
        /// Grants on the model.
        permissions: Vec<ModelPermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/mlflow/registered-models";
const GET: &str = "/api/2.0/mlflow/databricks/registered-models/get";
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "model_id",
    "name",
    "creation_timestamp",
    "last_updated_timestamp",
    "user_id",
];
const CONFIG_FIELDS: &[&str] = &["name", "description", "tags"];

static RULES: FieldRules = FieldRules {
    immutable: &["name"],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "model_id",
        "creation_timestamp",
        "last_updated_timestamp",
        "user_id",
        "latest_versions",
        "permission_level",
    ],
    bundle_only: crate::resources::common::ENGINE_FIELDS,
};

static INFO: KindInfo = KindInfo {
    noun: "model",
    plural: "models",
    title: "Models",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "model",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    // Its versions go with it.
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/ml/models/{id}",
};

pub struct ModelKind;

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

/// The model as read (`registered_model_databricks`), with its permissions id as `model_id`.
async fn get(client: &Client, name: &str) -> Result<Option<Value>, ApiError> {
    let got = common::none_if_missing(
        client
            .call(Method::GET, GET, &[("name", name.to_string())], None)
            .await,
    )?;
    Ok(got
        .and_then(|r| r.get("registered_model_databricks").cloned())
        .map(|mut m| {
            if let Some(id) = m.get("id").cloned() {
                m["model_id"] = id;
            }
            m
        }))
}

#[async_trait]
impl ResourceKind for ModelKind {
    fn kind(&self) -> Kind {
        Kind::Models
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_mlflow_model")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Model>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Model>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        Vec::new()
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let body = Value::Object(common::only_keys(config, CONFIG_FIELDS));
        let resp = client
            .call(Method::POST, &format!("{API}/create"), &[], Some(&body))
            .await?;
        let remote = resp.get("registered_model").cloned().unwrap_or(resp);
        let created = common::created_by_name(config, remote);
        // The create answer lacks the permissions id; the read has it.
        let remote = get(client, &created.id).await?.unwrap_or(created.remote);
        Ok(Created {
            id: created.id,
            remote,
        })
    }
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
        if changed.iter().any(|c| c == "description") {
            let description = config.get("description").cloned().unwrap_or(json!(""));
            let body = json!({"name": id, "description": description});
            client
                .call(Method::PATCH, &format!("{API}/update"), &[], Some(&body))
                .await?;
        }
        if changed.iter().any(|c| c == "tags") {
            let want = tags_of(config);
            let current = get(client, id)
                .await?
                .map(|m| tags_of(&m))
                .unwrap_or_default();
            for (key, _) in current
                .iter()
                .filter(|(k, _)| !want.iter().any(|(w, _)| w == k))
            {
                client
                    .call(
                        Method::DELETE,
                        &format!("{API}/delete-tag"),
                        &[("name", id.to_string()), ("key", key.clone())],
                        None,
                    )
                    .await?;
            }
            for (key, value) in want.iter().filter(|t| !current.contains(t)) {
                let body = json!({"name": id, "key": key, "value": value});
                client
                    .call(Method::POST, &format!("{API}/set-tag"), &[], Some(&body))
                    .await?;
            }
        }
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(
            client,
            &format!("{API}/delete"),
            &[("name", id.to_string())],
        )
        .await
    }
    /// Creation is synchronous: ready once it can be read.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        get(client, id)
            .await?
            .ok_or_else(|| common::not_ready(GET, format!("model {id} is gone")))
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        common::find_by_name(self, client, config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = Map::from_iter(common::only_keys(remote, CONFIG_FIELDS));
        // An empty description reads back as absent.
        if out.get("description") == Some(&json!("")) {
            out.remove("description");
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// Unknown keys (warned about at validate) are dropped, as the CLI does.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        super::known_fields(config, CONFIG_FIELDS, RULES.bundle_only)
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("registered-models")
    }
    /// `registered_model_databricks.id` (the `model_id` output), not the name.
    fn permissions_object_id_of(&self, id: &str, known: &Value) -> String {
        known
            .get("model_id")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_address_the_model_id() {
        let outputs = ModelKind.outputs("churn", &json!({"id": "abc123", "model_id": "abc123"}));
        assert_eq!(outputs["id"], "churn");
        assert_eq!(
            ModelKind.permissions_object_id_of("churn", &outputs),
            "abc123"
        );
    }
}
