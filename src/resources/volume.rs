//! `volumes`: a Unity Catalog volume (`/api/2.1/unity-catalog/volumes`, contract part 2
//! §2.3), id = `full_name` = `catalog.schema.volume`. Only `comment` changes in place and
//! `name` renames (`new_name`, new id); catalog, schema, type and location recreate it.
//! Grants: see [`super::grants`].

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::catalog::{lowercase, patch_body, uc_create, uc_find_existing, uc_read, uc_update};
use super::common::{self, collect_outputs, literal_str, schema_enum, schema_struct, Lifecycle};
use super::grants::{self, Grant};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// MANAGED (storage chosen by Unity Catalog) or EXTERNAL (at `storage_location`).
    VolumeType { MANAGED, EXTERNAL }
}

schema_struct! {
    /// A Unity Catalog volume.
    #[schemars(extend("required" = ["catalog_name", "schema_name", "name"]))]
    pub struct Volume {
        /// Catalog of the volume's schema (a bundle catalog's `name` links the two). Changing it
        /// replaces the volume.
        catalog_name: String,
        /// Schema of the volume (a bundle schema's `name` links the two). Changing it replaces
        /// the volume.
        schema_name: String,
        /// Name of the volume (lower-cased by Unity Catalog). Changing it renames the volume.
        name: String,
        /// MANAGED (default) or EXTERNAL. Changing it replaces the volume.
        volume_type: VolumeType,
        /// Cloud storage URL of an EXTERNAL volume (not allowed for MANAGED). Changing it replaces
        /// the volume.
        storage_location: String,
        /// User-provided description.
        comment: String,
        /// Unity Catalog privileges granted on the volume.
        grants: Vec<Grant>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.1/unity-catalog/volumes";
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "catalog_name",
    "schema_name",
    "full_name",
    "volume_id",
    "volume_type",
    "storage_location",
    "owner",
    "metastore_id",
    "created_at",
    "created_by",
];
const CONFIG_FIELDS: &[&str] = &[
    "catalog_name",
    "schema_name",
    "name",
    "volume_type",
    "storage_location",
    "comment",
    "grants",
];

static RULES: FieldRules = FieldRules {
    immutable: &[
        "catalog_name",
        "schema_name",
        "volume_type",
        "storage_location",
    ],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &["full_name", "volume_id", "owner", "metastore_id"],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "volume",
    plural: "volumes",
    title: "Volumes",
    id_scheme: IdScheme::FullName,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "volume",
    grants_securable: Some("volume"),
    workspace_paths: WorkspacePaths::None,
    // Deleted with force: everything inside goes too.
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/volumes/{id_path}",
};

pub struct VolumeKind;

/// A MANAGED volume (the default) takes no `storage_location`; an EXTERNAL one needs it (the
/// service refuses both at create).
fn check_location(addr: &str, node: &Node, diags: &mut Diagnostics) {
    let volume_type = node.get("volume_type").and_then(Node::as_str);
    let location = node.get("storage_location");
    match (volume_type, location) {
        (None | Some("MANAGED"), Some(loc)) => diags.push(
            Diag::error(format!(
                "{addr}.storage_location is set on a MANAGED volume"
            ))
            .at(loc.span, "Unity Catalog chooses a managed volume's location")
            .help("remove `storage_location`, or set `volume_type: EXTERNAL` for a volume at that location"),
        ),
        (Some("EXTERNAL"), None) => {
            let span = node.get("volume_type").map_or(node.span, |n| n.span);
            diags.push(
                Diag::error(format!("{addr} is an EXTERNAL volume without a storage_location"))
                    .at(span, "EXTERNAL here")
                    .help("set `storage_location` to a cloud storage URL inside an external location"),
            )
        }
        _ => {}
    }
}

#[async_trait]
impl ResourceKind for VolumeKind {
    fn kind(&self) -> Kind {
        Kind::Volumes
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_volume")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Volume>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Volume>(self.kind(), key, node, diags);
        grants::check(&addr, node, diags);
        check_location(&addr, node, diags);
    }
    /// Its catalog and its schema, by literal name (a schema is matched by its bare `name`).
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let mut links = Vec::new();
        for (field, kind) in [
            ("catalog_name", Kind::Catalogs),
            ("schema_name", Kind::Schemas),
        ] {
            if let Some(name) = literal_str(config, field) {
                links.push(NameLink {
                    field: field.into(),
                    target_kind: kind,
                    name: name.to_string(),
                });
            }
        }
        links
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        let catalog = literal_str(config, "catalog_name")?;
        let schema = literal_str(config, "schema_name")?;
        let name = literal_str(config, "name")?;
        Some(format!("{catalog}.{schema}.{name}").to_lowercase())
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        uc_create(client, BASE, "volume", config).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        uc_read(client, BASE, "volume", id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let rename = changed
            .iter()
            .any(|c| c == "name")
            .then(|| literal_str(config, "name"))
            .flatten();
        let body = patch_body(config, changed, &["comment"], rename);
        uc_update(client, BASE, "volume", id, config, changed, body).await
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
        uc_find_existing(self, client, "volume", config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// Names lower-cased, `volume_type` defaulted to MANAGED, grants normalised: the config as
    /// Unity Catalog reads it back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        let mut out =
            grants::normalize_config(&lowercase(config, &["catalog_name", "schema_name", "name"]));
        if let Value::Object(m) = &mut out {
            m.entry("volume_type")
                .or_insert_with(|| Value::String("MANAGED".into()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_to_catalog_and_schema() {
        let cfg = json!({"catalog_name": "main", "schema_name": "raw", "name": "Files"});
        let kinds: Vec<Kind> = VolumeKind
            .name_links(&cfg)
            .iter()
            .map(|l| l.target_kind)
            .collect();
        assert_eq!(kinds, vec![Kind::Catalogs, Kind::Schemas]);
        assert_eq!(
            VolumeKind.id_from_config(&cfg),
            Some("main.raw.files".into())
        );
    }
}
