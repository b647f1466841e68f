//! `secrets`: a Unity Catalog secret (`/api/2.1/unity-catalog/secrets`, contract part 2 §6),
//! id = `full_name` = `catalog.schema.name`. Not a workspace secret-scope secret.
//!
//! `value` is input-only and sensitive: the bundle must give it through a variable reference
//! (a literal is an error, see [`ResourceKind::check_unresolved`]), and it never reaches a
//! plan, the state or a log: everything shown or stored holds
//! [`super::common::redact_sensitive`]'s digest instead, which is how a changed value is
//! still seen (the service never returns the value). `comment`, `owner` and `expire_time`
//! change in place (`PATCH ?update_mask=`); catalog, schema and name recreate it. Grants:
//! securable type `secret`, see [`super::grants`].

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::catalog::{lowercase, uc_find_existing, uc_read};
use super::common::{
    self, collect_outputs, has_interpolation, literal_str, schema_struct, without_keys, Lifecycle,
};
use super::grants::{self, Grant};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::{Node, NodeKind};
use crate::diag::{Diag, Diagnostics};

schema_struct! {
    /// A Unity Catalog secret (`catalog.schema.name`) holding a sensitive value.
    #[schemars(extend("required" = ["catalog_name", "schema_name", "name", "value"]))]
    pub struct Secret {
        /// Catalog of the secret's schema (a bundle catalog's `name` links the two). Changing it
        /// replaces the secret.
        catalog_name: String,
        /// Schema of the secret (a bundle schema's `name` links the two). Changing it replaces
        /// the secret.
        schema_name: String,
        /// Name of the secret in its schema. Changing it replaces the secret.
        name: String,
        /// The secret value (at most 60 KiB). Must be a variable reference such as
        /// `${var.db_password}`, never a literal; it is never shown in plans or stored in state.
        value: String,
        /// User-provided description.
        comment: String,
        /// Owner of the secret (default: the deploying principal).
        owner: String,
        /// Informational expiry time (RFC 3339); nothing happens at that time.
        expire_time: String,
        /// Unity Catalog privileges granted on the secret.
        grants: Vec<Grant>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.1/unity-catalog/secrets";
const SECURABLE: &str = "secret";
const NOT_IN_BODY: &[&str] = &["lifecycle", "grants"];
const SENSITIVE: &[&str] = &["value"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "catalog_name",
    "schema_name",
    "full_name",
    "owner",
    "effective_owner",
    "metastore_id",
    "created_by",
    "create_time",
    "updated_by",
    "update_time",
];
const CONFIG_FIELDS: &[&str] = &[
    "catalog_name",
    "schema_name",
    "name",
    "comment",
    "owner",
    "expire_time",
    "grants",
];
const UPDATABLE: &[&str] = &["value", "comment", "owner", "expire_time"];

static RULES: FieldRules = FieldRules {
    immutable: &["catalog_name", "schema_name", "name"],
    replace_on_any_change: false,
    // Never read back: compared (as its digest) against the last apply.
    input_only: &[("value", "")],
    output_only: &[
        "full_name",
        "effective_owner",
        "effective_value",
        "metastore_id",
        "created_by",
        "create_time",
        "updated_by",
        "update_time",
    ],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "secret",
    plural: "secrets",
    title: "Secrets",
    id_scheme: IdScheme::FullName,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "secret",
    grants_securable: Some(SECURABLE),
    workspace_paths: WorkspacePaths::None,
    // The value lives only in Unity Catalog: a replacement writes it again from the bundle.
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/{id_path}",
};

pub struct SecretKind;

/// The value as written in the bundle must be a variable reference: a literal would put the
/// secret in the repository.
fn check_value_written(addr: &str, node: &Node, diags: &mut Diagnostics) {
    let Some(value) = node.get("value") else {
        return;
    };
    let is_var_ref = matches!(&value.kind, NodeKind::String(s, _) if has_interpolation(s) && s.contains("${var."));
    if !is_var_ref {
        diags.push(
            Diag::error(format!(
                "{addr}.value is written as a literal; a secret value must come from a variable"
            ))
            .at(value.span, "a literal secret value")
            .help(
                "declare a variable (`variables: {db_password: {description: ...}}`), set it with \
                 `--var db_password=...` or `BUNDLE_VAR_db_password`, and write `value: ${var.db_password}`",
            ),
        );
    }
}

#[async_trait]
impl ResourceKind for SecretKind {
    fn kind(&self) -> Kind {
        Kind::Secrets
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Secret>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Secret>(self.kind(), key, node, diags);
        grants::check(&addr, node, diags);
    }
    fn check_unresolved(&self, addr: &str, node: &Node, diags: &mut Diagnostics) {
        check_value_written(addr, node, diags);
    }
    fn sensitive_fields(&self) -> &'static [&'static str] {
        SENSITIVE
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
    fn id_from_config(&self, config: &Value) -> Option<String> {
        let catalog = literal_str(config, "catalog_name")?;
        let schema = literal_str(config, "schema_name")?;
        let name = literal_str(config, "name")?;
        Some(format!("{catalog}.{schema}.{name}").to_lowercase())
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let body = without_keys(config, NOT_IN_BODY);
        let remote = client.call(Method::POST, BASE, &[], Some(&body)).await?;
        let id = remote
            .get("full_name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| self.id_from_config(config))
            .unwrap_or_default();
        let want = grants::desired(config);
        if !want.is_empty() {
            grants::apply(client, SECURABLE, &id, &want).await?;
        }
        Ok(Created { id, remote })
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
        let mask = common::update_mask(changed, UPDATABLE);
        if !mask.is_empty() {
            let mut body = Map::new();
            for f in &mask {
                match config.get(f) {
                    Some(v) => {
                        body.insert(f.clone(), v.clone());
                    }
                    // A comment taken out of the bundle is cleared.
                    None if f == "comment" => {
                        body.insert(f.clone(), Value::String(String::new()));
                    }
                    None => {}
                }
            }
            client
                .call(
                    Method::PATCH,
                    &format!("{BASE}/{id}"),
                    &[("update_mask", mask.join(","))],
                    Some(&Value::Object(body)),
                )
                .await?;
        }
        if changed.iter().any(|c| c == "grants") {
            grants::apply(client, SECURABLE, id, &grants::desired(config)).await?;
        }
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &format!("{BASE}/{id}"), &[]).await
    }
    /// Creation is synchronous: ready once it can be read (never with its value).
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
    /// Names lower-cased and grants normalised, as they read back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        grants::normalize_config(&lowercase(config, &["catalog_name", "schema_name", "name"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_links_and_read_back_shape() {
        let cfg =
            json!({"catalog_name": "main", "schema_name": "App", "name": "DbPass", "value": "x"});
        assert_eq!(
            SecretKind.id_from_config(&cfg),
            Some("main.app.dbpass".into())
        );
        assert_eq!(SecretKind.name_links(&cfg).len(), 2);
        let remote = json!({"catalog_name": "main", "schema_name": "app", "name": "dbpass",
                            "effective_value": "x", "full_name": "main.app.dbpass"});
        let shape = SecretKind.remote_to_config(&remote);
        assert!(shape.get("effective_value").is_none() && shape.get("value").is_none());
    }

    #[test]
    fn the_redacted_config_holds_a_digest_only() {
        let cfg = json!({"name": "s", "value": "hunter2"});
        let r = common::redact_sensitive(SENSITIVE, cfg.clone());
        let shown = r["value"].as_str().unwrap_or_default();
        assert!(shown.starts_with("(sensitive)"), "{shown}");
        assert!(!shown.contains("hunter2"));
        let other = common::redact_sensitive(SENSITIVE, json!({"name": "s", "value": "hunter3"}));
        assert_ne!(r, other, "a changed value shows as a change");
        assert_eq!(
            r,
            common::redact_sensitive(SENSITIVE, r.clone()),
            "idempotent"
        );
    }
}
