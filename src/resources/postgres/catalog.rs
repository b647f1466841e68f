//! `postgres_catalogs`: a Unity Catalog catalog over a database of an
//! Autoscaling branch (§1.10). No update API: any change replaces it.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::Desc;
use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::resources::common::{self, has_interpolation, schema_struct, Lifecycle};
use crate::resources::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, UpdateStyle,
};

schema_struct! {
    /// A Unity Catalog catalog registered over a PostgreSQL database of a Lakebase Autoscaling branch.
    #[schemars(extend("required" = ["catalog_id", "postgres_database"]))]
    pub struct PostgresCatalog {
        /// Name of the catalog in Unity Catalog; the resource is `catalogs/{catalog_id}`. Changing it replaces the catalog.
        catalog_id: String,
        /// The PostgreSQL database the catalog exposes. Changing it replaces the catalog.
        postgres_database: String,
        /// The branch holding the database, `projects/{p}/branches/{b}`. Changing it replaces the catalog.
        branch: String,
        /// Create the PostgreSQL database when it does not exist. Read on create only.
        create_database_if_missing: bool,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const SPEC: &[&str] = &["postgres_database", "branch", "create_database_if_missing"];

pub static DESC: Desc = Desc {
    kind: Kind::PostgresCatalogs,
    id_field: "catalog_id",
    segment: "catalogs",
    has_parent: false,
    spec_fields: SPEC,
    noun: "postgres catalog",
    replaceable: false,
};

static RULES: FieldRules = FieldRules {
    immutable: &["catalog_id", "postgres_database", "branch"],
    replace_on_any_change: true,
    input_only: &[
        ("postgres_database", ""),
        ("branch", ""),
        ("create_database_if_missing", ""),
    ],
    output_only: &["uid", "status", "create_time", "update_time", "name"],
    bundle_only: &["lifecycle"],
};

const OUTPUT_FIELDS: &[&str] = &["id", "name", "uid", "status", "catalog_id", "project"];

/// A Unity Catalog catalog over a branch's database (§1.10): no state, no update API.
static INFO: KindInfo = KindInfo {
    noun: "postgres catalog",
    plural: "postgres catalogs",
    title: "Postgres catalogs",
    id_scheme: IdScheme::Name,
    // No update API: any change replaces it.
    update: UpdateStyle::Replace,
    wait_text: "catalog's create operation to finish",
    // Catalog Explorer, by the bare catalog name (the id is `catalogs/{catalog_id}`).
    ui_path: "/explore/data/{id}",
    ..KindInfo::GENERIC
};

pub struct PostgresCatalogKind;

#[async_trait]
impl ResourceKind for PostgresCatalogKind {
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn ui_url(&self, host: &str, id: &str, _remote: Option<&Value>) -> String {
        let name = id.strip_prefix("catalogs/").unwrap_or(id);
        format!("{}/explore/data/{name}", host.trim_end_matches('/'))
    }
    fn kind(&self) -> Kind {
        Kind::PostgresCatalogs
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<PostgresCatalog>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<PostgresCatalog>(self.kind(), key, node, diags);
        if let Some(n) = node.get("catalog_id") {
            if let Some(id) = n.as_str().filter(|s| !has_interpolation(s)) {
                if id.is_empty() || id.contains(['.', '/', ' ']) {
                    diags.push(
                        Diag::error(format!("{addr}.catalog_id `{id}` is not a catalog name"))
                            .at(n.span, "not a plain name")
                            .help(
                                "a catalog name has no dots, slashes or spaces, e.g. `app_catalog`",
                            ),
                    );
                }
            }
        }
        if let Some(n) = node.get("branch") {
            if let Some(b) = n.as_str().filter(|s| !has_interpolation(s)) {
                let segs: Vec<&str> = b.split('/').collect();
                if segs.len() != 4 || segs[0] != "projects" || segs[2] != "branches" {
                    diags.push(
                        Diag::error(format!("{addr}.branch `{b}` is not of the form `projects/{{project_id}}/branches/{{branch_id}}`"))
                            .at(n.span, "not a branch path")
                            .help("write `${resources.postgres_branches.<key>.id}` or `${resources.postgres_projects.<key>.id}/branches/production`"),
                    );
                }
            }
        }
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        super::link(config, "branch", Kind::PostgresBranches, None)
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        DESC.name_from_config(config)
    }
    fn link_names(&self, config: &Value) -> Vec<String> {
        DESC.name_as_written(config).into_iter().collect()
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        DESC.create(client, config, false).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        super::read(client, id).await
    }
    async fn update(
        &self,
        _client: &Client,
        id: &str,
        _config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        Err(super::no_update(id, "a postgres catalog"))
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        super::delete(client, id, &[]).await
    }
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        super::poll_ready(client, id, timeout, common::Poll::Ready).await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        DESC.find(client, config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = DESC.remote_yaml(remote);
        out.remove("create_database_if_missing");
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        let mut out = super::outputs(id, remote, &["project", "postgres_database", "branch"]);
        if let Value::Object(m) = &mut out {
            m.insert(
                "catalog_id".into(),
                Value::String(id.strip_prefix("catalogs/").unwrap_or(id).to_string()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_maps_back_and_outputs_name_the_catalog() {
        let remote = json!({"name": "catalogs/app_cat", "status": {"branch": "projects/p/branches/production",
            "postgres_database": "app", "project": "projects/p"}});
        assert_eq!(
            PostgresCatalogKind.remote_to_config(&remote),
            json!({"catalog_id": "app_cat", "branch": "projects/p/branches/production", "postgres_database": "app"})
        );
        let out = PostgresCatalogKind.outputs("catalogs/app_cat", &remote);
        assert_eq!(out["catalog_id"], "app_cat");
        assert_eq!(out["project"], "projects/p");
        assert_eq!(
            PostgresCatalogKind.id_from_config(&json!({"catalog_id": "c"})),
            Some("catalogs/c".into())
        );
    }
}
