//! `schemas`: a Unity Catalog schema (`/api/2.1/unity-catalog/schemas`, contract part 2
//! §2.2), id = `full_name` = `catalog.schema`. Changing `name` or `catalog_name` recreates
//! it (as the official CLI does); `storage_root` is fixed at creation. Grants: see
//! [`super::grants`].

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::catalog::{lowercase, patch_body, uc_create, uc_find_existing, uc_read, uc_update};
use super::common::{self, collect_outputs, literal_str, schema_struct, Lifecycle};
use super::grants::{self, Grant};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;

schema_struct! {
    /// A Unity Catalog schema.
    #[schemars(extend("required" = ["catalog_name", "name"]))]
    pub struct UcSchema {
        /// Name of the parent catalog (a bundle catalog's `name` links the two). Changing it
        /// replaces the schema.
        catalog_name: String,
        /// Name of the schema, relative to its catalog (lower-cased by Unity Catalog). Changing it
        /// replaces the schema.
        name: String,
        /// User-provided description.
        comment: String,
        /// Key/value properties.
        properties: std::collections::BTreeMap<String, String>,
        /// Storage root URL for the schema's managed tables. Changing it replaces the schema.
        storage_root: String,
        /// Hours of time travel kept for managed tables.
        custom_max_retention_hours: i64,
        /// Unity Catalog privileges granted on the schema.
        grants: Vec<Grant>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.1/unity-catalog/schemas";
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "catalog_name",
    "full_name",
    "schema_id",
    "owner",
    "storage_location",
    "metastore_id",
    "created_at",
    "created_by",
];
const CONFIG_FIELDS: &[&str] = &[
    "catalog_name",
    "name",
    "comment",
    "properties",
    "storage_root",
    "custom_max_retention_hours",
    "grants",
];
const UPDATABLE: &[&str] = &["comment", "properties", "custom_max_retention_hours"];

static RULES: FieldRules = FieldRules {
    immutable: &["catalog_name", "name", "storage_root"],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "full_name",
        "schema_id",
        "owner",
        "storage_location",
        "metastore_id",
    ],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "schema",
    plural: "schemas",
    title: "Schemas",
    id_scheme: IdScheme::FullName,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "schema",
    grants_securable: Some("schema"),
    workspace_paths: WorkspacePaths::None,
    // Deleted with force: everything inside goes too.
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/{id_path}",
};

pub struct SchemaKind;

#[async_trait]
impl ResourceKind for SchemaKind {
    fn kind(&self) -> Kind {
        Kind::Schemas
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_schema")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<UcSchema>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<UcSchema>(self.kind(), key, node, diags);
        grants::check(&addr, node, diags);
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        literal_str(config, "catalog_name")
            .map(|name| NameLink {
                field: "catalog_name".into(),
                target_kind: Kind::Catalogs,
                name: name.to_string(),
            })
            .into_iter()
            .collect()
    }
    /// Its bare `name` (volumes' `schema_name`) and its `catalog.schema`
    /// (a quality monitor's `output_schema_name`).
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
        let name = literal_str(config, "name")?;
        Some(format!("{catalog}.{name}").to_lowercase())
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        uc_create(client, BASE, "schema", config).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        uc_read(client, BASE, "schema", id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let body = patch_body(config, changed, UPDATABLE, None);
        uc_update(client, BASE, "schema", id, config, changed, body).await
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        // force, as the official CLI: tables made by jobs and pipelines go with the schema.
        common::delete_if_exists(client, &format!("{BASE}/{id}"), &[("force", "true".into())]).await
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
        uc_find_existing(self, client, "schema", config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// Names lower-cased, `storage_root` without its trailing `/`, grants normalised: the
    /// config as Unity Catalog reads it back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        let mut out = grants::normalize_config(&lowercase(config, &["catalog_name", "name"]));
        if let Some(root) = literal_str(config, "storage_root") {
            out["storage_root"] = Value::String(root.trim_end_matches('/').to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_and_link_from_config() {
        let cfg = json!({"catalog_name": "Main", "name": "Raw"});
        assert_eq!(SchemaKind.id_from_config(&cfg), Some("main.raw".into()));
        assert_eq!(SchemaKind.name_links(&cfg)[0].target_kind, Kind::Catalogs);
        let deferred = json!({"catalog_name": "${resources.catalogs.c.name}", "name": "r"});
        assert_eq!(SchemaKind.id_from_config(&deferred), None);
        assert!(SchemaKind.name_links(&deferred).is_empty());
    }
}
