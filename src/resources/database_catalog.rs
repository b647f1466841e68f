//! `database_catalogs`: a Unity Catalog catalog backed by a PostgreSQL
//! database inside an instance (`/api/2.0/database/catalogs`, reference §9).
//! There is no update API: any change replaces the catalog.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::common::{self, collect_outputs, literal_str, schema_struct, without_keys, Lifecycle};
use super::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs, RunStyle,
    UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;

schema_struct! {
    /// A Unity Catalog catalog registered over a PostgreSQL database of a database instance.
    #[schemars(extend("required" = ["name", "database_instance_name", "database_name"]))]
    pub struct DatabaseCatalog {
        /// Name of the catalog in Unity Catalog. Changing it replaces the catalog.
        name: String,
        /// Name of the database instance holding the database (a bundle instance's `name` links the two).
        database_instance_name: String,
        /// Name of the PostgreSQL database inside the instance.
        database_name: String,
        /// Create the PostgreSQL database when it does not exist yet. Only read on create.
        create_database_if_not_exists: bool,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.0/database/catalogs";
const BUNDLE_ONLY: &[&str] = &["lifecycle"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "uid",
    "database_instance_name",
    "database_name",
];

static RULES: FieldRules = FieldRules {
    immutable: &["name", "database_instance_name", "database_name"],
    replace_on_any_change: true,
    input_only: &[("create_database_if_not_exists", "")],
    output_only: &["uid"],
    bundle_only: BUNDLE_ONLY,
};

pub struct DatabaseCatalogKind;

fn path_for(name: &str) -> String {
    format!("{BASE}/{name}")
}

/// Error for an in-place update, which the service does not implement.
pub(crate) fn no_update(path: &str, what: &str) -> ApiError {
    ApiError::Other {
        method: "PATCH".into(),
        path: path.to_string(),
        status: 501,
        error_code: "NOT_IMPLEMENTED".into(),
        message: format!("{what} cannot be updated in place; the change needs a replacement"),
    }
}

static INFO: KindInfo = KindInfo {
    noun: "database catalog",
    plural: "database catalogs",
    title: "Database catalogs",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::Replace,
    state_fields: &[],
    ready_states: &[],
    wait_text: "catalog",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/{id}",
};

#[async_trait]
impl ResourceKind for DatabaseCatalogKind {
    fn kind(&self) -> Kind {
        Kind::DatabaseCatalogs
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<DatabaseCatalog>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        common::check_schema::<DatabaseCatalog>(self.kind(), key, node, diags);
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        literal_str(config, "database_instance_name")
            .map(|name| NameLink {
                field: "database_instance_name".into(),
                target_kind: Kind::DatabaseInstances,
                name: name.to_string(),
            })
            .into_iter()
            .collect()
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        common::create_by_name(client, BASE, config, &without_keys(config, BUNDLE_ONLY)).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        common::get_if_exists(client, &path_for(id)).await
    }
    async fn update(
        &self,
        _client: &Client,
        id: &str,
        _config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        Err(no_update(&path_for(id), "a database catalog"))
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// Catalog creation is synchronous: ready once it can be read.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        client.call(Method::GET, &path_for(id), &[], None).await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        common::find_by_name(self, client, config).await
    }
    /// YAML shape: the three identifying fields (`create_database_if_not_exists`
    /// is never returned; the engine compares it with the last applied value).
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(
            remote,
            &["name", "database_instance_name", "database_name"],
        ))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_database_database_catalog")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_to_instance_by_literal_name() {
        let links = DatabaseCatalogKind
            .name_links(&json!({"name": "c", "database_instance_name": "my-instance"}));
        assert_eq!(
            links,
            vec![NameLink {
                field: "database_instance_name".into(),
                target_kind: Kind::DatabaseInstances,
                name: "my-instance".into()
            }]
        );
        assert!(DatabaseCatalogKind
            .name_links(
                &json!({"database_instance_name": "${resources.database_instances.a.name}"})
            )
            .is_empty());
    }

    #[test]
    fn remote_shape_drops_outputs() {
        let remote =
            json!({"name": "c", "database_instance_name": "i", "database_name": "d", "uid": "u"});
        assert_eq!(
            DatabaseCatalogKind.remote_to_config(&remote),
            json!({"name": "c", "database_instance_name": "i", "database_name": "d"})
        );
        assert_eq!(DatabaseCatalogKind.outputs("c", &remote)["uid"], "u");
        assert_eq!(
            DatabaseCatalogKind.id_from_config(&json!({"name": "c"})),
            Some("c".into())
        );
    }
}
