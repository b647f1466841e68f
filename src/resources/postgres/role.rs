//! `postgres_roles`: a PostgreSQL role on a branch (§1.9) — a plain role with
//! a server-generated password, or a Databricks identity logging in with
//! OAuth tokens. Child branches inherit their parent's roles.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{check_id, check_parent, id_problem, Desc};
use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::Diagnostics;
use crate::resources::common::{self, schema_enum, schema_struct, Lifecycle};
use crate::resources::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, UpdateStyle,
};

schema_enum! {
    /// The Databricks identity a role stands for (omit for a plain PostgreSQL role).
    PgRoleIdentityType { USER, SERVICE_PRINCIPAL, GROUP }
}

schema_enum! {
    /// How the role logs in.
    PgRoleAuthMethod { LAKEBASE_OAUTH_V1, PG_PASSWORD_SCRAM_SHA_256, NO_LOGIN }
}

schema_enum! {
    /// A standard role this role can be a member of.
    PgRoleMembershipRole { DATABRICKS_SUPERUSER }
}

schema_struct! {
    /// PostgreSQL attributes of the role.
    pub struct PgRoleAttributes {
        /// CREATEDB: may create databases.
        createdb: bool,
        /// CREATEROLE: may create, alter and drop roles.
        createrole: bool,
        /// BYPASSRLS: bypasses row-level security.
        bypassrls: bool,
    }
}

schema_struct! {
    /// A PostgreSQL role on a Lakebase Autoscaling branch.
    #[schemars(extend("required" = ["parent", "role_id"]))]
    pub struct PostgresRole {
        /// The branch, `projects/{p}/branches/{b}`. Changing it replaces the role.
        parent: String,
        /// Role id (4-63 characters: lowercase letters, digits, hyphens; a letter first). Changing it replaces the role.
        role_id: String,
        /// The PostgreSQL role name (for identities: the user email, application id or group name). Changing it replaces the role.
        postgres_role: String,
        /// USER, SERVICE_PRINCIPAL or GROUP; omit for a plain PostgreSQL role. Changing it replaces the role.
        identity_type: PgRoleIdentityType,
        /// LAKEBASE_OAUTH_V1, PG_PASSWORD_SCRAM_SHA_256 or NO_LOGIN (derived from the identity type when omitted). Changing it replaces the role.
        auth_method: PgRoleAuthMethod,
        /// PostgreSQL role attributes.
        attributes: PgRoleAttributes,
        /// Standard roles the role belongs to (replaced as a whole on update).
        membership_roles: Vec<PgRoleMembershipRole>,
        /// Take over an existing role with this id (e.g. one inherited from the parent branch) instead of failing. Read on create only.
        replace_existing: bool,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const SPEC: &[&str] = &[
    "postgres_role",
    "identity_type",
    "auth_method",
    "attributes",
    "membership_roles",
];

pub static DESC: Desc = Desc {
    kind: Kind::PostgresRoles,
    id_field: "role_id",
    segment: "roles",
    has_parent: true,
    spec_fields: SPEC,
    noun: "postgres role",
    replaceable: true,
};

static RULES: FieldRules = FieldRules {
    immutable: &[
        "parent",
        "role_id",
        "postgres_role",
        "identity_type",
        "auth_method",
    ],
    replace_on_any_change: false,
    input_only: &[
        ("postgres_role", ""),
        ("identity_type", ""),
        ("auth_method", ""),
        ("attributes", ""),
        ("membership_roles", ""),
    ],
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
    "postgres_role",
];

/// The mask of a role update: only `spec.membership_roles` and the leaf
/// attribute paths are accepted (naming an immutable path is a 400).
fn mask_for(changed: &[String], body: &Value) -> Vec<String> {
    let mut mask = Vec::new();
    if changed.iter().any(|c| c == "attributes") {
        if let Some(Value::Object(attrs)) = common::get_path(body, "spec.attributes") {
            for a in ["createdb", "createrole", "bypassrls"] {
                if attrs.contains_key(a) {
                    mask.push(format!("spec.attributes.{a}"));
                }
            }
        }
    }
    if changed.iter().any(|c| c == "membership_roles") {
        mask.push("spec.membership_roles".into());
    }
    mask
}

/// No state of its own (§1.9): ready once its operation is done.
static INFO: KindInfo = KindInfo {
    noun: "postgres role",
    plural: "postgres roles",
    title: "Postgres roles",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    wait_text: "role's operation to finish",
    // Shown on its branch's page.
    ui_path: "/lakebase/{id}",
    ..KindInfo::GENERIC
};

pub struct PostgresRoleKind;

#[async_trait]
impl ResourceKind for PostgresRoleKind {
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    /// The page of the branch the object lives on.
    fn ui_url(&self, host: &str, id: &str, _remote: Option<&Value>) -> String {
        let branch = id.split("/roles/").next().unwrap_or(id);
        format!("{}/lakebase/{branch}", host.trim_end_matches('/'))
    }
    fn kind(&self) -> Kind {
        Kind::PostgresRoles
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<PostgresRole>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<PostgresRole>(self.kind(), key, node, diags);
        check_id(
            &addr,
            node,
            "role_id",
            |id| id_problem(id, 4),
            "role id",
            diags,
        );
        check_parent(&addr, node, 2, diags);
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        super::link(config, "parent", Kind::PostgresBranches, None)
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
        DESC.update(client, id, &body, &mask_for(changed, &body))
            .await?;
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
        let mut out = DESC.remote_yaml(remote);
        // Unknown enum values (a real GET said IDENTITY_TYPE_UNSPECIFIED) mean "not set".
        for (f, allowed) in [
            ("identity_type", PgRoleIdentityType::VALUES),
            ("auth_method", PgRoleAuthMethod::VALUES),
        ] {
            if out
                .get(f)
                .and_then(Value::as_str)
                .is_some_and(|v| !allowed.contains(&v))
            {
                out.remove(f);
            }
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        super::outputs(id, remote, &["postgres_role"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};
    use serde_json::json;

    #[test]
    fn role_ids_need_four_characters() {
        let (node, _) = parse_file(FileId(0), "parent: projects/p/branches/b\nrole_id: own\n");
        let mut d = Diagnostics::default();
        PostgresRoleKind.check("r", &node, &mut d);
        assert_eq!(d.items.len(), 1, "{:?}", d.items);
        assert!(
            d.items[0].message.contains("role_id `own`"),
            "{}",
            d.items[0].message
        );
    }

    #[test]
    fn unspecified_identity_is_unset_and_mask_uses_leaves() {
        let remote = json!({"name": "projects/p/branches/b/roles/app-role", "status": {
            "attributes": {"bypassrls": false, "createdb": true, "createrole": false},
            "auth_method": "PG_PASSWORD_SCRAM_SHA_256", "identity_type": "IDENTITY_TYPE_UNSPECIFIED",
            "postgres_role": "app_role", "role_id": "app-role"}});
        assert_eq!(
            PostgresRoleKind.remote_to_config(&remote),
            json!({"role_id": "app-role", "parent": "projects/p/branches/b", "postgres_role": "app_role",
                "auth_method": "PG_PASSWORD_SCRAM_SHA_256",
                "attributes": {"bypassrls": false, "createdb": true, "createrole": false}})
        );
        let body =
            DESC.spec_body(&json!({"postgres_role": "app_role", "attributes": {"createdb": true}}));
        assert_eq!(
            mask_for(&["attributes".into()], &body),
            vec!["spec.attributes.createdb".to_string()]
        );
    }
}
