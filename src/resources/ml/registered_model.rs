//! `registered_models`: a Unity Catalog model (`/api/2.1/unity-catalog/models`, contract
//! part 2 §6), id = `full_name` = `catalog.schema.name`. `comment` and `owner` change in
//! place; a new catalog, schema, name or storage location recreates it, as the official CLI
//! does. Grants use the Unity Catalog securable type `function`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;
use crate::resources::catalog::{
    lowercase, patch_body, uc_create, uc_find_existing, uc_read, uc_update,
};
use crate::resources::common::{self, collect_outputs, literal_str, schema_struct, Lifecycle};
use crate::resources::grants::{self, Grant};
use crate::resources::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};

schema_struct! {
    /// A Unity Catalog registered model.
    #[schemars(extend("required" = ["catalog_name", "schema_name", "name"]))]
    pub struct RegisteredModel {
        /// Catalog of the model's schema (a bundle catalog's `name` links the two). Changing it
        /// replaces the model.
        catalog_name: String,
        /// Schema of the model (a bundle schema's `name` links the two). Changing it replaces
        /// the model.
        schema_name: String,
        /// Name of the model inside its schema. Changing it replaces the model.
        name: String,
        /// Description of the model.
        comment: String,
        /// Owner (user, group or service principal); the creator when unset.
        owner: String,
        /// Cloud storage for the model's version files. Changing it replaces the model.
        storage_location: String,
        /// Unity Catalog privileges granted on the model.
        grants: Vec<Grant>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

pub(crate) const BASE: &str = "/api/2.1/unity-catalog/models";
const SECURABLE: &str = "function";
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "catalog_name",
    "schema_name",
    "full_name",
    "owner",
    "storage_location",
    "metastore_id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
];
const CONFIG_FIELDS: &[&str] = &[
    "catalog_name",
    "schema_name",
    "name",
    "comment",
    "owner",
    "storage_location",
    "grants",
];
const UPDATABLE: &[&str] = &["comment", "owner"];
/// What create takes (grants are applied after it by [`uc_create`]).
const CREATE_FIELDS: &[&str] = &[
    "catalog_name",
    "schema_name",
    "name",
    "comment",
    "storage_location",
    "grants",
];

static RULES: FieldRules = FieldRules {
    immutable: &["catalog_name", "schema_name", "name", "storage_location"],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "full_name",
        "metastore_id",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
    ],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "registered model",
    plural: "registered models",
    title: "Registered models",
    id_scheme: IdScheme::FullName,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "registered model",
    grants_securable: Some(SECURABLE),
    workspace_paths: WorkspacePaths::None,
    // Its versions go with it.
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/models/{id_path}",
};

pub struct RegisteredModelKind;

#[async_trait]
impl ResourceKind for RegisteredModelKind {
    fn kind(&self) -> Kind {
        Kind::RegisteredModels
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_registered_model")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<RegisteredModel>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<RegisteredModel>(self.kind(), key, node, diags);
        grants::check(&addr, node, diags);
    }
    /// Its catalog and its schema, by literal name.
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        [
            ("catalog_name", Kind::Catalogs),
            ("schema_name", Kind::Schemas),
        ]
        .into_iter()
        .filter_map(|(field, kind)| {
            literal_str(config, field).map(|name| NameLink {
                field: field.into(),
                target_kind: kind,
                name: name.to_string(),
            })
        })
        .collect()
    }
    /// Serving endpoints name a model by its full name (`served_entities[].entity_name`).
    fn link_names(&self, config: &Value) -> Vec<String> {
        let mut names: Vec<String> = literal_str(config, "name")
            .map(str::to_string)
            .into_iter()
            .collect();
        names.extend(self.id_from_config(config));
        names
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        let catalog = literal_str(config, "catalog_name")?;
        let schema = literal_str(config, "schema_name")?;
        let name = literal_str(config, "name")?;
        Some(format!("{catalog}.{schema}.{name}").to_lowercase())
    }

    /// Only the model's own fields are sent (a stray key in the bundle never reaches the API);
    /// an `owner` is not a create field, so it follows as an update.
    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let body = Value::Object(common::only_keys(config, CREATE_FIELDS));
        let mut created = uc_create(client, BASE, SECURABLE, &body).await?;
        if let Some(owner) = config.get("owner") {
            let patch = serde_json::json!({ "owner": owner });
            created.remote = client
                .call(
                    Method::PATCH,
                    &format!("{BASE}/{}", created.id),
                    &[],
                    Some(&patch),
                )
                .await?;
        }
        Ok(created)
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        uc_read(client, BASE, SECURABLE, id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let body = patch_body(config, changed, UPDATABLE, None);
        uc_update(client, BASE, SECURABLE, id, config, changed, body).await
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &format!("{BASE}/{id}"), &[]).await
    }
    /// Creation is synchronous: ready once it can be read.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        client
            .call(Method::GET, &format!("{BASE}/{id}"), &[], None)
            .await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        uc_find_existing(self, client, SECURABLE, config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// Unknown keys dropped (as the CLI does), names lower-cased and grants normalised: the config as Unity Catalog reads it back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        let known = super::known_fields(config, CONFIG_FIELDS, RULES.bundle_only);
        grants::normalize_config(&lowercase(&known, &["catalog_name", "schema_name", "name"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_to_catalog_and_schema_and_answers_to_its_full_name() {
        let cfg = json!({"catalog_name": "main", "schema_name": "ml", "name": "Churn"});
        let kinds: Vec<Kind> = RegisteredModelKind
            .name_links(&cfg)
            .iter()
            .map(|l| l.target_kind)
            .collect();
        assert_eq!(kinds, vec![Kind::Catalogs, Kind::Schemas]);
        assert_eq!(
            RegisteredModelKind.link_names(&cfg),
            vec!["Churn".to_string(), "main.ml.churn".to_string()]
        );
    }
}
