//! `synced_database_tables`: a Delta table copied into PostgreSQL by a managed
//! pipeline (`/api/2.0/database/synced_tables`, reference §10). No update API:
//! any change replaces the table.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::common::{
    self, collect_outputs, has_interpolation, literal_str, schema_enum, schema_struct, state_at,
    without_keys, Lifecycle, Poll,
};
use super::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs, RunStyle,
    UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// How the sync pipeline runs: SNAPSHOT (full copy each run), TRIGGERED (incremental on demand,
    /// needs change data feed) or CONTINUOUS (streaming, needs change data feed).
    SchedulingPolicy { SNAPSHOT, TRIGGERED, CONTINUOUS }
}

schema_enum! {
    /// PostgreSQL-specific column type for a type override.
    PgSpecificType { PG_SPECIFIC_TYPE_VECTOR, PG_SPECIFIC_TYPE_HALFVEC, PG_SPECIFIC_TYPE_VARCHAR }
}

schema_struct! {
    /// Where a new sync pipeline keeps its checkpoints and event logs.
    pub struct NewPipelineSpec {
        /// Unity Catalog catalog for the pipeline's storage (required when the target is a database catalog).
        storage_catalog: String,
        /// Unity Catalog schema for the pipeline's storage.
        storage_schema: String,
        /// Budget policy to set on the new pipeline.
        budget_policy_id: String,
    }
}

schema_struct! {
    /// A per-column override of the Delta to PostgreSQL type mapping.
    #[schemars(extend("required" = ["column_name", "pg_type"]))]
    pub struct TypeOverride {
        /// Source column to override.
        column_name: String,
        /// PostgreSQL type to use for the column.
        pg_type: PgSpecificType,
        /// Size parameter for types that take one (vector dimension, varchar length).
        size: i64,
    }
}

schema_struct! {
    /// What to sync and how.
    pub struct SyncedTableSpec {
        /// Three-part name (`catalog.schema.table`) of the source Delta table.
        source_table_full_name: String,
        /// Columns forming the primary key in PostgreSQL; must not be empty.
        #[schemars(length(min = 1))]
        primary_key_columns: Vec<String>,
        /// Pipeline scheduling policy.
        scheduling_policy: SchedulingPolicy,
        /// Column used to break ties between rows with the same primary key.
        timeseries_key: String,
        /// Create the PostgreSQL database and schema when missing. Only read on create.
        create_database_objects_if_missing: bool,
        /// Put the table into this existing pipeline instead of creating one (exclusive with `new_pipeline_spec`). Only read on create.
        existing_pipeline_id: String,
        /// Settings of a new pipeline for this table (exclusive with `existing_pipeline_id`). Only read on create.
        new_pipeline_spec: NewPipelineSpec,
        /// Faster initial load. Only read on create.
        accelerated_sync: bool,
        /// Per-column PostgreSQL type overrides.
        type_overrides: Vec<TypeOverride>,
    }
}

schema_struct! {
    /// A Unity Catalog table whose data a managed pipeline copies from a Delta table into PostgreSQL.
    #[schemars(extend("required" = ["name"]))]
    pub struct SyncedDatabaseTable {
        /// Three-part Unity Catalog name `catalog.schema.table`. Changing it replaces the table.
        name: String,
        /// Target database instance; required unless the catalog is a database catalog (then it must match).
        database_instance_name: String,
        /// Target PostgreSQL database; required unless the catalog is a database catalog.
        logical_database_name: String,
        /// Sync specification.
        spec: SyncedTableSpec,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.0/database/synced_tables";
const BUNDLE_ONLY: &[&str] = &["lifecycle"];

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "data_synchronization_status.pipeline_id",
    "data_synchronization_status.detailed_state",
    "data_synchronization_status.message",
    "unity_catalog_provisioning_state",
    "effective_database_instance_name",
    "effective_logical_database_name",
];

static RULES: FieldRules = FieldRules {
    immutable: &["name"],
    replace_on_any_change: true,
    input_only: &[
        ("database_instance_name", "effective_database_instance_name"),
        ("logical_database_name", "effective_logical_database_name"),
        ("spec.create_database_objects_if_missing", ""),
        ("spec.existing_pipeline_id", ""),
        ("spec.new_pipeline_spec", ""),
        ("spec.accelerated_sync", ""),
    ],
    output_only: &[
        "data_synchronization_status",
        "unity_catalog_provisioning_state",
        "effective_database_instance_name",
        "effective_logical_database_name",
    ],
    bundle_only: BUNDLE_ONLY,
};

/// Spec fields GET returns (the rest are create-only).
const SPEC_RETURNED: &[&str] = &[
    "source_table_full_name",
    "primary_key_columns",
    "scheduling_policy",
    "timeseries_key",
    "type_overrides",
];

pub struct SyncedDatabaseTableKind;

/// Links to the bundle's Unity Catalog catalogs and schemas the table reads from and the
/// sync pipeline stores into: the source's `catalog` and `schema` parts, and
/// `new_pipeline_spec.storage_catalog` / `storage_schema` (each by literal name; a schema
/// by its bare name).
fn uc_links(config: &Value) -> Vec<NameLink> {
    let mut links = Vec::new();
    let mut push = |field: &str, kind: Kind, name: &str| {
        if !name.is_empty() && !has_interpolation(name) {
            links.push(NameLink {
                field: field.into(),
                target_kind: kind,
                name: name.into(),
            });
        }
    };
    let spec = config.get("spec");
    let source = "spec.source_table_full_name";
    if let Some(full) = spec
        .and_then(|s| s.get("source_table_full_name"))
        .and_then(Value::as_str)
    {
        let parts: Vec<&str> = full.split('.').collect();
        if let [catalog, schema, _table] = parts.as_slice() {
            push(source, Kind::Catalogs, catalog);
            push(source, Kind::Schemas, schema);
        }
    }
    let pipeline = spec.and_then(|s| s.get("new_pipeline_spec"));
    for (field, kind) in [
        ("storage_catalog", Kind::Catalogs),
        ("storage_schema", Kind::Schemas),
    ] {
        if let Some(name) = pipeline.and_then(|p| p.get(field)).and_then(Value::as_str) {
            push(&format!("spec.new_pipeline_spec.{field}"), kind, name);
        }
    }
    links
}

fn path_for(name: &str) -> String {
    format!("{BASE}/{name}")
}

/// The catalog part of a literal three-part name.
pub fn catalog_of(name: &str) -> Option<&str> {
    let parts: Vec<&str> = name.split('.').collect();
    (parts.len() == 3 && !parts[0].is_empty()).then_some(parts[0])
}

/// Three non-empty dot-separated parts.
fn is_three_part(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
}

static INFO: KindInfo = KindInfo {
    noun: "synced table",
    plural: "synced tables",
    title: "Synced database tables",
    id_scheme: IdScheme::FullName,
    update: UpdateStyle::Replace,
    state_fields: &[
        "data_synchronization_status.detailed_state",
        "unity_catalog_provisioning_state",
    ],
    ready_states: &["ACTIVE"],
    wait_text: "synced table to be provisioned",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: true,
    run: RunStyle::PipelineRefresh,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/{id_path}",
};

#[async_trait]
impl ResourceKind for SyncedDatabaseTableKind {
    fn kind(&self) -> Kind {
        Kind::SyncedDatabaseTables
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<SyncedDatabaseTable>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<SyncedDatabaseTable>(self.kind(), key, node, diags);
        if let Some(name_node) = node.get("name") {
            if let Some(name) = name_node.as_str().filter(|s| !has_interpolation(s)) {
                if !is_three_part(name) {
                    diags.push(
                        Diag::error(format!("{addr}.name `{name}` is not a three-part name"))
                            .at(name_node.span, "expected `catalog.schema.table`")
                            .help("synced tables are named by their full Unity Catalog name, e.g. `my_catalog.public.features`"),
                    );
                }
            }
        }
        for source in [node
            .get("spec")
            .and_then(|s| s.get("source_table_full_name"))]
        .into_iter()
        .flatten()
        {
            if let Some(name) = source.as_str().filter(|s| !has_interpolation(s)) {
                if !is_three_part(name) {
                    diags.push(
                        Diag::error(format!(
                            "{addr}.spec.source_table_full_name `{name}` is not a three-part name"
                        ))
                        .at(source.span, "expected `catalog.schema.table`"),
                    );
                }
            }
        }
        if let Some(spec) = node.get("spec").and_then(Node::as_map) {
            if let (Some((k, _)), Some(_)) = (
                spec.get_entry("existing_pipeline_id"),
                spec.get("new_pipeline_spec"),
            ) {
                diags.push(
                    Diag::error(format!(
                        "{addr}.spec sets both `existing_pipeline_id` and `new_pipeline_spec`"
                    ))
                    .at(k.span, "set only one of these")
                    .help("use an existing pipeline or describe a new one, not both"),
                );
            }
        }
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let mut links = Vec::new();
        if let Some(name) = literal_str(config, "database_instance_name") {
            links.push(NameLink {
                field: "database_instance_name".into(),
                target_kind: Kind::DatabaseInstances,
                name: name.into(),
            });
        }
        // Only the catalog part need be literal: `cat.${var.schema}.t` still links.
        if let Some(catalog) = config
            .get("name")
            .and_then(Value::as_str)
            .and_then(catalog_of)
            .filter(|c| !has_interpolation(c))
        {
            links.push(NameLink {
                field: "name".into(),
                target_kind: Kind::DatabaseCatalogs,
                name: catalog.into(),
            });
        }
        links.extend(uc_links(config));
        links
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
        Err(super::database_catalog::no_update(
            &path_for(id),
            "a synced database table",
        ))
    }
    /// Deletes the Unity Catalog table; the PostgreSQL table is kept (no `purge_data`), as the CLI does.
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// Ready when Unity Catalog provisioning is ACTIVE (or the data is online).
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = path_for(id);
        common::poll_get(client, &path, timeout, |remote| {
            let uc = state_at(&remote, "unity_catalog_provisioning_state");
            let detailed = state_at(&remote, "data_synchronization_status.detailed_state");
            if uc == "ACTIVE" || detailed.starts_with("SYNCED_TABLE_ONLINE") {
                Poll::Ready(remote)
            } else if uc == "FAILED" || detailed == "SYNCED_TABLE_OFFLINE_FAILED" {
                let msg = state_at(&remote, "data_synchronization_status.message");
                Poll::Failed(format!("synced table {id} failed to provision: {msg}"))
            } else {
                Poll::Pending(if uc.is_empty() {
                    "provisioning".into()
                } else {
                    uc.to_string()
                })
            }
        })
        .await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        common::find_by_name(self, client, config).await
    }
    /// YAML shape: `name`, the instance/database from their `effective_*`
    /// twins, and the spec fields GET returns.
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = common::only_keys(remote, &["name"]);
        for (field, twin) in [
            ("database_instance_name", "effective_database_instance_name"),
            ("logical_database_name", "effective_logical_database_name"),
        ] {
            if let Some(v) = remote.get(twin).or_else(|| remote.get(field)) {
                out.insert(field.into(), v.clone());
            }
        }
        if let Some(spec) = remote.get("spec") {
            let kept: Map<String, Value> = common::only_keys(spec, SPEC_RETURNED);
            out.insert("spec".into(), Value::Object(kept));
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_database_synced_database_table")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_uc_catalogs_and_schemas_by_literal_name() {
        let cfg = serde_json::json!({"name": "c.s.t", "spec": {
            "source_table_full_name": "lake.raw.events",
            "new_pipeline_spec": {"storage_catalog": "lake", "storage_schema": "${var.x}"}}});
        let got: Vec<(String, Kind, String)> = SyncedDatabaseTableKind
            .name_links(&cfg)
            .into_iter()
            .filter(|l| matches!(l.target_kind, Kind::Catalogs | Kind::Schemas))
            .map(|l| (l.field, l.target_kind, l.name))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "spec.source_table_full_name".into(),
                    Kind::Catalogs,
                    "lake".into()
                ),
                (
                    "spec.source_table_full_name".into(),
                    Kind::Schemas,
                    "raw".into()
                ),
                (
                    "spec.new_pipeline_spec.storage_catalog".into(),
                    Kind::Catalogs,
                    "lake".into()
                ),
            ]
        );
    }
    use serde_json::json;

    #[test]
    fn links_to_instance_and_catalog() {
        let links = SyncedDatabaseTableKind
            .name_links(&json!({"name": "cat.public.t", "database_instance_name": "inst"}));
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[1],
            NameLink {
                field: "name".into(),
                target_kind: Kind::DatabaseCatalogs,
                name: "cat".into()
            }
        );
        let refd = SyncedDatabaseTableKind
            .name_links(&json!({"name": "${resources.database_catalogs.c.name}.public.t"}));
        assert!(refd.is_empty());
    }

    #[test]
    fn remote_shape_uses_effective_names() {
        let remote = json!({
            "name": "c.s.t", "effective_database_instance_name": "i", "effective_logical_database_name": "d",
            "spec": {"source_table_full_name": "a.b.c", "primary_key_columns": ["id"], "scheduling_policy": "SNAPSHOT"},
            "data_synchronization_status": {"pipeline_id": "p-1", "detailed_state": "SYNCED_TABLE_ONLINE"},
            "unity_catalog_provisioning_state": "ACTIVE"
        });
        assert_eq!(
            SyncedDatabaseTableKind.remote_to_config(&remote),
            json!({"name": "c.s.t", "database_instance_name": "i", "logical_database_name": "d",
                   "spec": {"source_table_full_name": "a.b.c", "primary_key_columns": ["id"], "scheduling_policy": "SNAPSHOT"}})
        );
        let outs = SyncedDatabaseTableKind.outputs("c.s.t", &remote);
        assert_eq!(outs["data_synchronization_status"]["pipeline_id"], "p-1");
        assert_eq!(outs["unity_catalog_provisioning_state"], "ACTIVE");
    }

    #[test]
    fn three_part_names() {
        assert!(is_three_part("a.b.c"));
        assert!(!is_three_part("a.b"));
        assert!(!is_three_part("a..c"));
        assert_eq!(catalog_of("cat.s.t"), Some("cat"));
    }
}
