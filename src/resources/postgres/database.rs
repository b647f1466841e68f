//! `postgres_databases`: a PostgreSQL database on a branch, owned by a role (§1.8).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{check_id, check_parent, database_id_problem, Desc};
use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::resources::common::{self, has_interpolation, schema_struct, Lifecycle};
use crate::resources::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, UpdateStyle,
};

schema_struct! {
    /// A PostgreSQL database on a Lakebase Autoscaling branch.
    #[schemars(extend("required" = ["parent", "database_id", "role"]))]
    pub struct PostgresDatabase {
        /// The branch, `projects/{p}/branches/{b}`. Changing it replaces the database.
        parent: String,
        /// Database id (lowercase letters, digits and hyphens, a letter first, not ending in a hyphen). Changing it replaces the database.
        database_id: String,
        /// Owner: a role, `projects/{p}/branches/{b}/roles/{role_id}` (e.g. `${resources.postgres_roles.owner.id}`). Changing it transfers ownership.
        role: String,
        /// The PostgreSQL name of the database (default: from `database_id`). Changing it renames the database.
        postgres_database: String,
        /// Take over an existing database with this id instead of failing. Read on create only.
        replace_existing: bool,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const SPEC: &[&str] = &["role", "postgres_database"];

pub static DESC: Desc = Desc {
    kind: Kind::PostgresDatabases,
    id_field: "database_id",
    segment: "databases",
    has_parent: true,
    spec_fields: SPEC,
    noun: "postgres database",
    replaceable: true,
};

static RULES: FieldRules = FieldRules {
    immutable: &["parent", "database_id"],
    replace_on_any_change: false,
    input_only: &[("role", ""), ("postgres_database", "")],
    output_only: &["uid", "status", "create_time", "update_time", "name"],
    bundle_only: &["lifecycle", "replace_existing"],
};

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "uid",
    "create_time",
    "update_time",
    "status",
    "postgres_database",
];

/// No state of its own (§1.8): ready once its operation is done.
static INFO: KindInfo = KindInfo {
    noun: "postgres database",
    plural: "postgres databases",
    title: "Postgres databases",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    wait_text: "database's operation to finish",
    // Shown on its branch's page.
    ui_path: "/lakebase/{id}",
    ..KindInfo::GENERIC
};

pub struct PostgresDatabaseKind;

#[async_trait]
impl ResourceKind for PostgresDatabaseKind {
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    /// The page of the branch the object lives on.
    fn ui_url(&self, host: &str, id: &str, _remote: Option<&Value>) -> String {
        let branch = id.split("/databases/").next().unwrap_or(id);
        format!("{}/lakebase/{branch}", host.trim_end_matches('/'))
    }
    fn kind(&self) -> Kind {
        Kind::PostgresDatabases
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<PostgresDatabase>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<PostgresDatabase>(self.kind(), key, node, diags);
        check_id(
            &addr,
            node,
            "database_id",
            database_id_problem,
            "database id",
            diags,
        );
        check_parent(&addr, node, 2, diags);
        // The owner must live on the same branch as the database.
        let lit = |f: &str| {
            node.get(f)
                .and_then(Node::as_str)
                .filter(|s| !has_interpolation(s))
        };
        if let (Some(parent), Some(role)) = (lit("parent"), node.get("role")) {
            if let Some(r) = role.as_str().filter(|s| !has_interpolation(s)) {
                if !r.starts_with(&format!("{parent}/roles/")) {
                    diags.push(
                        Diag::error(format!(
                            "{addr}.role `{r}` is not a role of the database's branch `{parent}`"
                        ))
                        .at(role.span, "not under the parent branch")
                        .help(format!("write `${{resources.postgres_roles.<key>.id}}` or `{parent}/roles/<role_id>`")),
                    );
                }
            }
        }
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let mut links = super::link(config, "parent", Kind::PostgresBranches, None);
        links.extend(super::link(config, "role", Kind::PostgresRoles, None));
        links
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        DESC.name_from_config(config)
    }
    fn link_names(&self, config: &Value) -> Vec<String> {
        DESC.name_as_written(config).into_iter().collect()
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        DESC.create(client, config, super::flag(config, "replace_existing"))
            .await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        super::read(client, id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let body = DESC.spec_body(config);
        let mask = super::spec_mask(changed, SPEC, &body);
        DESC.update(client, id, &body, &mask).await?;
        Ok(id.to_string())
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
        Value::Object(DESC.remote_yaml(remote))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        super::outputs(id, remote, &["postgres_database"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};
    use serde_json::json;

    #[test]
    fn owner_must_be_on_the_same_branch() {
        let (node, _) = parse_file(
            FileId(0),
            "parent: projects/p/branches/dev\ndatabase_id: app-db\nrole: projects/p/branches/production/roles/owner\n",
        );
        let mut d = Diagnostics::default();
        PostgresDatabaseKind.check("d", &node, &mut d);
        assert_eq!(d.items.len(), 1, "{:?}", d.items);
        assert!(d.items[0]
            .message
            .contains("not a role of the database's branch"));
    }

    #[test]
    fn links_to_branch_and_role_and_maps_status() {
        let cfg = json!({"parent": "${resources.postgres_branches.dev.id}", "database_id": "app",
            "role": "${resources.postgres_roles.owner.id}"});
        let links = PostgresDatabaseKind.name_links(&cfg);
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].target_kind, Kind::PostgresRoles);
        let remote = json!({"name": "projects/p/branches/b/databases/app", "parent": "projects/p/branches/b",
            "status": {"database_id": "app", "postgres_database": "app_db", "role": "projects/p/branches/b/roles/owner"}});
        assert_eq!(
            PostgresDatabaseKind.remote_to_config(&remote),
            json!({"database_id": "app", "parent": "projects/p/branches/b",
                "role": "projects/p/branches/b/roles/owner", "postgres_database": "app_db"})
        );
        assert_eq!(
            PostgresDatabaseKind.outputs("x", &remote)["postgres_database"],
            "app_db"
        );
    }
}
