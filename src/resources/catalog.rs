//! `catalogs`: a Unity Catalog catalog (`/api/2.1/unity-catalog/catalogs`, contract part 2
//! §2.1), id = name. The storage and sharing fields are fixed at creation.
//!
//! A new `name` replaces the catalog rather than renaming it (`PATCH new_name`): a rename
//! moves the catalog's schemas with it, while the bundle's own schemas in it see a new
//! `catalog_name` and are recreated (as the official CLI does for schemas), whose create then
//! meets the moved schema of the same name. Replacing the catalog (its bundle schemas and
//! volumes first) is the order that always converges. Grants: see [`super::grants`].
//!
//! Also home of the pieces the three UC kinds share ([`uc_update`], [`lowercase`]).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::common::{self, collect_outputs, literal_str, schema_struct, without_keys, Lifecycle};
use super::grants::{self, Grant};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;

schema_struct! {
    /// Encryption of a catalog's managed storage with a customer-managed key.
    pub struct ManagedEncryptionSettings {
        /// Azure key vault settings.
        azure_key_vault_key_id: String,
        /// Id of the AWS KMS key or Azure key-vault key.
        customer_managed_key_id: String,
        /// Azure encryption key reference (`azure_key_vault_key_id` is its newer form).
        azure_encryption_settings: serde_json::Map<String, Value>,
    }
}

schema_struct! {
    /// A Unity Catalog catalog.
    #[schemars(extend("required" = ["name"]))]
    pub struct Catalog {
        /// Name of the catalog (lower-cased by Unity Catalog). Changing it replaces the catalog.
        name: String,
        /// User-provided description.
        comment: String,
        /// Storage root URL for the catalog's managed tables. Changing it replaces the catalog.
        storage_root: String,
        /// Connection of a foreign catalog. Changing it replaces the catalog.
        connection_name: String,
        /// Delta Sharing provider of a shared catalog. Changing it replaces the catalog.
        provider_name: String,
        /// Delta Sharing share of a shared catalog. Changing it replaces the catalog.
        share_name: String,
        /// Options of a foreign catalog.
        options: std::collections::BTreeMap<String, String>,
        /// Key/value properties.
        properties: std::collections::BTreeMap<String, String>,
        /// Hours of time travel kept for managed tables.
        custom_max_retention_hours: i64,
        /// Customer-managed key encryption of the managed storage.
        managed_encryption_settings: ManagedEncryptionSettings,
        /// Unity Catalog privileges granted on the catalog.
        grants: Vec<Grant>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.1/unity-catalog/catalogs";
const BUNDLE_ONLY: &[&str] = &["lifecycle"];
/// Not sent with the object: applied through the grants API.
const NOT_IN_BODY: &[&str] = &["lifecycle", "grants"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "full_name",
    "owner",
    "metastore_id",
    "catalog_type",
    "storage_location",
    "securable_type",
    "isolation_mode",
    "created_at",
    "created_by",
];
const CONFIG_FIELDS: &[&str] = &[
    "name",
    "comment",
    "storage_root",
    "connection_name",
    "provider_name",
    "share_name",
    "options",
    "properties",
    "custom_max_retention_hours",
    "managed_encryption_settings",
    "grants",
];
const UPDATABLE: &[&str] = &[
    "comment",
    "properties",
    "options",
    "custom_max_retention_hours",
    "managed_encryption_settings",
];

static RULES: FieldRules = FieldRules {
    immutable: &[
        "name",
        "storage_root",
        "connection_name",
        "provider_name",
        "share_name",
    ],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "full_name",
        "owner",
        "metastore_id",
        "catalog_type",
        "storage_location",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "catalog",
    plural: "catalogs",
    title: "Catalogs",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "catalog",
    grants_securable: Some("catalog"),
    workspace_paths: WorkspacePaths::None,
    // Deleted with force: everything inside goes too.
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/{id}",
};

pub struct CatalogKind;

fn path_for(name: &str) -> String {
    format!("{BASE}/{name}")
}

/// `config` with the literal name fields lower-cased, as Unity Catalog stores them (so a
/// config `MySchema` does not diff against the `myschema` read back).
pub(crate) fn lowercase(config: &Value, fields: &[&str]) -> Value {
    let mut out = config.clone();
    for f in fields {
        if let Some(s) = literal_str(config, f) {
            out[*f] = Value::String(s.to_lowercase());
        }
    }
    out
}

/// The PATCH body for the changed `updatable` fields (a field the config no longer sets is
/// cleared when it is a comment; maps and numbers are left as they are). `rename` adds
/// `new_name` when the name changed.
pub(crate) fn patch_body(
    config: &Value,
    changed: &[String],
    updatable: &[&str],
    rename: Option<&str>,
) -> Map<String, Value> {
    let mut body = Map::new();
    for f in common::update_mask(changed, updatable) {
        match config.get(&f) {
            Some(v) => {
                body.insert(f, v.clone());
            }
            None if f == "comment" => {
                body.insert(f, Value::String(String::new()));
            }
            None => {}
        }
    }
    if let Some(n) = rename {
        body.insert("new_name".into(), Value::String(n.to_string()));
    }
    body
}

/// The shared update of the UC kinds: PATCH the object when a field of it changed (an
/// empty PATCH is never sent: schemas refuse it), then converge grants on the new id when
/// they changed. Returns the (possibly renamed) id.
pub(crate) async fn uc_update(
    client: &Client,
    base: &str,
    securable: &str,
    id: &str,
    config: &Value,
    changed: &[String],
    body: Map<String, Value>,
) -> Result<String, ApiError> {
    let mut new_id = id.to_string();
    if !body.is_empty() {
        let remote = client
            .call(
                Method::PATCH,
                &format!("{base}/{id}"),
                &[],
                Some(&Value::Object(body)),
            )
            .await?;
        if let Some(n) = remote.get("full_name").and_then(Value::as_str) {
            new_id = n.to_string();
        }
    }
    if changed.iter().any(|c| c == "grants") {
        grants::apply(client, securable, &new_id, &grants::desired(config)).await?;
    }
    Ok(new_id)
}

/// The shared create of the UC kinds: POST the object, then grant what the config lists.
pub(crate) async fn uc_create(
    client: &Client,
    base: &str,
    securable: &str,
    config: &Value,
) -> Result<Created, ApiError> {
    let body = without_keys(config, NOT_IN_BODY);
    let remote = client.call(Method::POST, base, &[], Some(&body)).await?;
    let id = remote
        .get("full_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let want = grants::desired(config);
    if !want.is_empty() {
        grants::apply(client, securable, &id, &want).await?;
    }
    Ok(Created { id, remote })
}

/// The shared `find_existing`: the object at the config's id, adopted with the config's
/// grants applied (the create that made it may have stopped before granting).
pub(crate) async fn uc_find_existing(
    kind: &dyn ResourceKind,
    client: &Client,
    securable: &str,
    config: &Value,
) -> Result<Option<Created>, ApiError> {
    let Some(id) = kind.id_from_config(config) else {
        return Ok(None);
    };
    let Some(remote) = kind.read(client, &id).await? else {
        return Ok(None);
    };
    let want = grants::desired(config);
    if !want.is_empty() {
        grants::apply(client, securable, &id, &want).await?;
    }
    Ok(Some(Created { id, remote }))
}

/// The shared read: the object and its direct grants, `None` when it is gone.
pub(crate) async fn uc_read(
    client: &Client,
    base: &str,
    securable: &str,
    id: &str,
) -> Result<Option<Value>, ApiError> {
    match common::get_if_exists(client, &format!("{base}/{id}")).await? {
        Some(remote) => Ok(Some(
            grants::with_grants(client, securable, id, remote).await?,
        )),
        None => Ok(None),
    }
}

#[async_trait]
impl ResourceKind for CatalogKind {
    fn kind(&self) -> Kind {
        Kind::Catalogs
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Catalog>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Catalog>(self.kind(), key, node, diags);
        grants::check(&addr, node, diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        Vec::new()
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_lowercase)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        uc_create(client, BASE, "catalog", config).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        uc_read(client, BASE, "catalog", id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let body = patch_body(config, changed, UPDATABLE, None);
        uc_update(client, BASE, "catalog", id, config, changed, body).await
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        // force: the bundle's schemas are deleted first; anything else inside goes with it,
        // as the official CLI does.
        common::delete_if_exists(client, &path_for(id), &[("force", "true".into())]).await
    }
    /// Creation is synchronous: ready once it can be read.
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
        uc_find_existing(self, client, "catalog", config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// Names lower-cased and grants normalised, as they read back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        grants::normalize_config(&lowercase(config, &["name"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_body_sends_changed_fields_and_rename() {
        let cfg = json!({"name": "new", "comment": "c", "properties": {"a": "b"}});
        let body = patch_body(
            &cfg,
            &["name".into(), "properties".into(), "storage_root".into()],
            UPDATABLE,
            Some("new"),
        );
        assert_eq!(
            Value::Object(body),
            json!({"properties": {"a": "b"}, "new_name": "new"})
        );
        let cleared = patch_body(&json!({"name": "n"}), &["comment".into()], UPDATABLE, None);
        assert_eq!(Value::Object(cleared), json!({"comment": ""}));
    }

    #[test]
    fn remote_shape_keeps_config_fields_and_grants() {
        let remote = json!({"name": "c", "comment": "x", "owner": "me", "metastore_id": "m",
                            "grants": [{"principal": "g", "privileges": ["USE_CATALOG"]}]});
        assert_eq!(
            CatalogKind.remote_to_config(&remote),
            json!({"name": "c", "comment": "x",
                   "grants": [{"principal": "g", "privileges": ["USE_CATALOG"]}]})
        );
        assert_eq!(
            CatalogKind.id_from_config(&json!({"name": "Main"})),
            Some("main".into())
        );
    }
}
