//! `postgres_projects`: a Lakebase Autoscaling project (§1.5). Creating one
//! also makes its `production` branch with a `primary` read-write endpoint.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{check_compute, check_duration, check_id, id_problem, Desc};
use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::Diagnostics;
use crate::resources::common::{self, schema_struct, Lifecycle, Permission};
use crate::resources::database_instance::CustomTag;
use crate::resources::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, UpdateStyle,
};

schema_struct! {
    /// Compute settings new endpoints of the project start with.
    pub struct PgProjectDefaultEndpointSettings {
        /// Minimum compute units (at least 0.5).
        autoscaling_limit_min_cu: f64,
        /// Maximum compute units (at most 64, and at most 16 above the minimum).
        autoscaling_limit_max_cu: f64,
        /// Idle time before an endpoint suspends (scale to zero), e.g. "300s" (60s-604800s). Excludes `no_suspension`.
        suspend_timeout_duration: String,
        /// `true`: endpoints never suspend. Excludes `suspend_timeout_duration`.
        no_suspension: bool,
        /// Raw PostgreSQL settings.
        pg_settings: std::collections::BTreeMap<String, String>,
    }
}

schema_struct! {
    /// A Lakebase Autoscaling project: a PostgreSQL version, a history window for branching, and compute defaults.
    #[schemars(extend("required" = ["project_id"]))]
    pub struct PostgresProject {
        /// Project id (1-63 characters: lowercase letters, digits, hyphens; a letter first); the name is `projects/{project_id}`. Changing it replaces the project.
        project_id: String,
        /// Human-readable name (1-256 characters).
        display_name: String,
        /// PostgreSQL major version (e.g. 16 or 17). Changing it replaces the project.
        pg_version: i64,
        /// Point-in-time window for branching, e.g. "604800s" (172800s-3024000s, 2-35 days).
        history_retention_duration: String,
        /// Compute settings endpoints start with.
        default_endpoint_settings: PgProjectDefaultEndpointSettings,
        /// Allow PostgreSQL password logins on every endpoint (default false).
        enable_pg_native_login: bool,
        /// Budget policy to attribute the project's cost to.
        budget_policy_id: String,
        /// Tags for billing and cost tracking, as `{key, value}` pairs.
        custom_tags: Vec<CustomTag>,
        /// The default branch, `projects/{project_id}/branches/{branch_id}`.
        default_branch: String,
        /// Delete for good on destroy (`?purge=true`); otherwise the project is soft-deleted and restorable.
        purge_on_delete: bool,
        /// Grants on the project (object type `database-projects`).
        permissions: Vec<Permission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const SPEC: &[&str] = &[
    "display_name",
    "pg_version",
    "history_retention_duration",
    "default_endpoint_settings",
    "enable_pg_native_login",
    "budget_policy_id",
    "custom_tags",
    "default_branch",
];

const UPDATABLE: &[&str] = &[
    "display_name",
    "history_retention_duration",
    "default_endpoint_settings",
    "enable_pg_native_login",
    "budget_policy_id",
    "custom_tags",
    "default_branch",
];

pub static DESC: Desc = Desc {
    kind: Kind::PostgresProjects,
    id_field: "project_id",
    segment: "projects",
    has_parent: false,
    spec_fields: SPEC,
    noun: "postgres project",
    replaceable: false,
};

static RULES: FieldRules = FieldRules {
    immutable: &["project_id", "pg_version"],
    replace_on_any_change: false,
    // GET returns `status`; fields it does not mirror compare with the last apply.
    input_only: &[
        ("display_name", ""),
        ("pg_version", ""),
        ("history_retention_duration", ""),
        ("default_endpoint_settings", ""),
        ("enable_pg_native_login", ""),
        ("budget_policy_id", ""),
        ("custom_tags", ""),
        ("default_branch", ""),
    ],
    output_only: &["uid", "status", "create_time", "update_time", "name"],
    bundle_only: &["permissions", "lifecycle", "purge_on_delete"],
};

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "uid",
    "create_time",
    "update_time",
    "status",
    "default_branch",
    "owner",
    "pg_version",
];

/// A project has no state of its own (§1.5): it is ready once its create operation is
/// done, which deploy awaits.
static INFO: KindInfo = KindInfo {
    noun: "postgres project",
    plural: "postgres projects",
    title: "Postgres projects",
    // The state id is the name, `projects/{project_id}`.
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    wait_text: "project's create operation to finish",
    ui_path: "/lakebase/{id}",
    ..KindInfo::GENERIC
};

pub struct PostgresProjectKind;

#[async_trait]
impl ResourceKind for PostgresProjectKind {
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn kind(&self) -> Kind {
        Kind::PostgresProjects
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<PostgresProject>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<PostgresProject>(self.kind(), key, node, diags);
        check_id(
            &addr,
            node,
            "project_id",
            |id| id_problem(id, 1),
            "project id",
            diags,
        );
        check_duration(
            &addr,
            node,
            "history_retention_duration",
            Some((172800.0, 3024000.0)),
            diags,
        );
        if let Some(settings) = node.get("default_endpoint_settings") {
            check_compute(
                &format!("{addr}.default_endpoint_settings"),
                settings,
                diags,
            );
        }
        common::check_permissions(&addr, node, diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
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
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let mut body = DESC.spec_body(config);
        // Clearing the tags is an empty list named in the mask.
        if changed.iter().any(|c| c == "custom_tags") && config.get("custom_tags").is_none() {
            body["spec"]["custom_tags"] = Value::Array(vec![]);
        }
        let mask = super::spec_mask(changed, UPDATABLE, &body);
        DESC.update(client, id, &body, &mask).await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        super::delete(client, id, &[]).await
    }
    async fn delete_applied(
        &self,
        client: &Client,
        id: &str,
        applied: &Value,
    ) -> Result<(), ApiError> {
        let query: Vec<(&str, String)> = if super::flag(applied, "purge_on_delete") {
            vec![("purge", "true".into())]
        } else {
            vec![]
        };
        super::delete(client, id, &query).await
    }
    /// Ready once the create operation is done (projects have no state).
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
        super::outputs(id, remote, &["default_branch", "owner", "pg_version"])
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("database-projects")
    }
    /// The Permissions API names a project by its bare id, not `projects/{id}`.
    fn permissions_object_id(&self, id: &str) -> String {
        id.strip_prefix("projects/").unwrap_or(id).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};
    use serde_json::json;

    fn check(yaml: &str) -> Vec<String> {
        let (node, _) = parse_file(FileId(0), yaml);
        let mut d = Diagnostics::default();
        PostgresProjectKind.check("p", &node, &mut d);
        d.items.iter().map(|i| i.message.clone()).collect()
    }

    #[test]
    fn valid_project_passes() {
        let msgs = check(
            "project_id: my-app\npg_version: 17\nhistory_retention_duration: 1209600s\ndefault_endpoint_settings:\n  autoscaling_limit_min_cu: 0.5\n  autoscaling_limit_max_cu: 2\n  no_suspension: true\n",
        );
        assert!(msgs.is_empty(), "{msgs:?}");
    }

    #[test]
    fn bad_ids_and_limits_are_reported() {
        let msgs = check(
            "project_id: My_App\nhistory_retention_duration: 3600s\ndefault_endpoint_settings:\n  autoscaling_limit_min_cu: 0.25\n  autoscaling_limit_max_cu: 40\n  suspend_timeout_duration: 300s\n  no_suspension: true\n",
        );
        let all = msgs.join("\n");
        assert!(
            all.contains("project_id `My_App` is not a valid project id"),
            "{all}"
        );
        assert!(
            all.contains("history_retention_duration `3600s` is outside"),
            "{all}"
        );
        assert!(all.contains("minimum is 0.5 CU"), "{all}");
        assert!(all.contains("at most 16 CU"), "{all}");
        assert!(all.contains("mutually exclusive"), "{all}");
    }

    #[test]
    fn status_maps_back_to_the_yaml_shape() {
        let remote = json!({
            "name": "projects/p", "project_id": "p", "uid": "u",
            "status": {"display_name": "P", "pg_version": 16, "owner": "me@x",
                "default_endpoint_settings": {"autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 4, "suspend_timeout_duration": "300s"},
                "default_branch": "projects/p/branches/production", "enable_pg_native_login": false,
                "history_retention_duration": "604800s"}
        });
        assert_eq!(
            PostgresProjectKind.remote_to_config(&remote),
            json!({"project_id": "p", "display_name": "P", "pg_version": 16,
                "history_retention_duration": "604800s",
                "default_endpoint_settings": {"autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 4, "suspend_timeout_duration": "300s"},
                "enable_pg_native_login": false, "default_branch": "projects/p/branches/production"})
        );
        let out = PostgresProjectKind.outputs("projects/p", &remote);
        assert_eq!(out["id"], "projects/p");
        assert_eq!(out["default_branch"], "projects/p/branches/production");
        assert_eq!(out["status"]["owner"], "me@x");
        assert_eq!(
            PostgresProjectKind.id_from_config(&json!({"project_id": "p"})),
            Some("projects/p".into())
        );
        assert_eq!(PostgresProjectKind.permissions_object_id("projects/p"), "p");
    }

    #[test]
    fn spec_body_leaves_bundle_fields_out() {
        let cfg = json!({"project_id": "p", "display_name": "P", "purge_on_delete": true,
            "lifecycle": {"prevent_destroy": true}});
        assert_eq!(DESC.spec_body(&cfg), json!({"spec": {"display_name": "P"}}));
    }
}
