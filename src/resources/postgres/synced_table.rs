//! `postgres_synced_tables`: a Unity Catalog table synced into a PostgreSQL
//! table of an Autoscaling branch (§1.10). No update API: any change replaces it.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::Desc;
use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::resources::common::{
    self, has_interpolation, schema_enum, schema_struct, Lifecycle, Poll,
};
use crate::resources::{Created, FieldRules, Kind, KindInfo, NameLink, ResourceKind, UpdateStyle};

schema_enum! {
    /// How the sync pipeline runs.
    PgSchedulingPolicy { SNAPSHOT, TRIGGERED, CONTINUOUS }
}

schema_enum! {
    /// Release channel of a new sync pipeline.
    PgPipelineChannel { CURRENT, PREVIEW }
}

schema_enum! {
    /// PostgreSQL-specific column type for a column override.
    PgSpecificType { PG_SPECIFIC_TYPE_VECTOR, PG_SPECIFIC_TYPE_HALFVEC, PG_SPECIFIC_TYPE_VARCHAR }
}

schema_struct! {
    /// A new pipeline to run the sync in.
    pub struct PgNewPipelineSpec {
        /// Catalog for the pipeline's intermediate storage.
        storage_catalog: String,
        /// Schema for the pipeline's intermediate storage.
        storage_schema: String,
        /// Budget policy of the pipeline.
        budget_policy_id: String,
        /// CURRENT or PREVIEW.
        pipeline_channel: PgPipelineChannel,
    }
}

schema_struct! {
    /// A PostgreSQL type for one column.
    pub struct PgTypeOverride {
        /// The column.
        column_name: String,
        /// The PostgreSQL type.
        pg_type: PgSpecificType,
        /// Size (dimensions or length) for the type.
        size: i64,
    }
}

schema_struct! {
    /// An extra PostgreSQL-only column of the synced table.
    pub struct PgExtraColumn {
        /// The column.
        column_name: String,
        /// Its PostgreSQL type.
        column_type: String,
        /// The generation expression.
        compute: String,
        /// How it is maintained (STORED_GENERATED).
        maintenance: String,
    }
}

schema_struct! {
    /// A Unity Catalog table kept in sync into a PostgreSQL table of an Autoscaling branch.
    #[schemars(extend("required" = ["synced_table_id"]))]
    pub struct PostgresSyncedTable {
        /// Three-part name `catalog.schema.table` of the synced table. Changing it replaces the table.
        synced_table_id: String,
        /// Three-part name of the Unity Catalog source table.
        source_table_full_name: String,
        /// Primary key columns of the destination.
        primary_key_columns: Vec<String>,
        /// SNAPSHOT, TRIGGERED or CONTINUOUS.
        scheduling_policy: PgSchedulingPolicy,
        /// Column that orders rows with the same key.
        timeseries_key: String,
        /// The PostgreSQL database (required unless the catalog is a postgres catalog).
        postgres_database: String,
        /// The branch, `projects/{p}/branches/{b}`.
        branch: String,
        /// Create the database and schema when missing (default true).
        create_database_objects_if_missing: bool,
        /// Pipeline to add the sync to. Excludes `new_pipeline_spec`.
        existing_pipeline_id: String,
        /// Pipeline to create for the sync. Excludes `existing_pipeline_id`.
        new_pipeline_spec: PgNewPipelineSpec,
        /// PostgreSQL types for some columns.
        type_overrides: Vec<PgTypeOverride>,
        /// Accelerated initial load (private preview).
        accelerated_sync: bool,
        /// Extra PostgreSQL-only columns (private preview).
        extra_columns: Vec<PgExtraColumn>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const SPEC: &[&str] = &[
    "source_table_full_name",
    "primary_key_columns",
    "scheduling_policy",
    "timeseries_key",
    "postgres_database",
    "branch",
    "create_database_objects_if_missing",
    "existing_pipeline_id",
    "new_pipeline_spec",
    "type_overrides",
    "accelerated_sync",
    "extra_columns",
];

pub static DESC: Desc = Desc {
    kind: Kind::PostgresSyncedTables,
    id_field: "synced_table_id",
    segment: "synced_tables",
    has_parent: false,
    spec_fields: SPEC,
    noun: "postgres synced table",
    replaceable: false,
};

static RULES: FieldRules = FieldRules {
    immutable: &["synced_table_id"],
    replace_on_any_change: true,
    input_only: &[
        ("source_table_full_name", ""),
        ("primary_key_columns", ""),
        ("scheduling_policy", ""),
        ("timeseries_key", ""),
        ("postgres_database", ""),
        ("branch", ""),
        ("create_database_objects_if_missing", ""),
        ("existing_pipeline_id", ""),
        ("new_pipeline_spec", ""),
        ("type_overrides", ""),
        ("accelerated_sync", ""),
        ("extra_columns", ""),
    ],
    output_only: &["uid", "status", "create_time", "update_time", "name"],
    bundle_only: &["lifecycle"],
};

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "uid",
    "status",
    "pipeline_id",
    "detailed_state",
    "unity_catalog_provisioning_state",
];

/// A field of the synced table's status (or top level).
fn state_of<'a>(remote: &'a Value, field: &str) -> &'a str {
    let s = common::state_at(remote, &format!("status.{field}"));
    if s.is_empty() {
        common::state_at(remote, field)
    } else {
        s
    }
}

static INFO: KindInfo = KindInfo {
    noun: "postgres synced table",
    plural: "postgres synced tables",
    title: "Postgres synced tables",
    state_fields: &["status.detailed_state", "detailed_state"],
    ready_states: &[
        "SYNCED_TABLE_ONLINE",
        "SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE",
        "SYNCED_TABLE_ONLINE_TRIGGERED_UPDATE",
        "SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE",
    ],
    wait_text: "synced table to be provisioned",
    // No update API: any change replaces it.
    update: UpdateStyle::Replace,
    // Catalog Explorer, by the table's three-level name.
    ui_path: "/explore/data/{id_path}",
    ..KindInfo::GENERIC
};

pub struct PostgresSyncedTableKind;

#[async_trait]
impl ResourceKind for PostgresSyncedTableKind {
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn ui_url(&self, host: &str, id: &str, _remote: Option<&Value>) -> String {
        let name = id.strip_prefix("synced_tables/").unwrap_or(id);
        format!(
            "{}/explore/data/{}",
            host.trim_end_matches('/'),
            name.replace('.', "/")
        )
    }
    fn kind(&self) -> Kind {
        Kind::PostgresSyncedTables
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<PostgresSyncedTable>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<PostgresSyncedTable>(self.kind(), key, node, diags);
        for field in ["synced_table_id", "source_table_full_name"] {
            let Some(n) = node.get(field) else { continue };
            let Some(v) = n.as_str().filter(|s| !has_interpolation(s)) else {
                continue;
            };
            if v.split('.').filter(|p| !p.is_empty()).count() != 3 || v.split('.').count() != 3 {
                diags.push(
                    Diag::error(format!("{addr}.{field} `{v}` is not a three-part name"))
                        .at(n.span, "expected catalog.schema.table")
                        .help("write the full Unity Catalog name, e.g. `main.sales.orders`"),
                );
            }
        }
        super::exclusive(
            &addr,
            node,
            &["existing_pipeline_id", "new_pipeline_spec"],
            diags,
        );
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
        Err(super::no_update(id, "a postgres synced table"))
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        super::delete(client, id, &[]).await
    }
    /// The create operation finishing does not mean the table is provisioned:
    /// wait for ACTIVE (or an online sync state).
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        super::poll_ready(client, id, timeout, |r| {
            let uc = state_of(&r, "unity_catalog_provisioning_state");
            let detailed = state_of(&r, "detailed_state");
            if uc == "FAILED" || detailed.contains("FAILED") {
                let msg = state_of(&r, "message").to_string();
                return Poll::Failed(format!("synced table {id} failed: {msg}"));
            }
            if uc == "ACTIVE"
                || detailed.starts_with("SYNCED_TABLE_ONLINE")
                || (uc.is_empty() && detailed.is_empty())
            {
                return Poll::Ready(r);
            }
            Poll::Pending(if uc.is_empty() { detailed } else { uc }.to_string())
        })
        .await
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
        // The last segment of `synced_tables/c.s.t` is the whole id.
        if let Some(name) = remote.get("name").and_then(Value::as_str) {
            if let Some(id) = name.strip_prefix("synced_tables/") {
                out.insert("synced_table_id".into(), Value::String(id.to_string()));
            }
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        super::outputs(
            id,
            remote,
            &[
                "pipeline_id",
                "detailed_state",
                "unity_catalog_provisioning_state",
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};
    use serde_json::json;

    #[test]
    fn names_are_three_part_and_pipelines_exclusive() {
        let (node, _) = parse_file(
            FileId(0),
            "synced_table_id: cat.tbl\nsource_table_full_name: a.b.c\nexisting_pipeline_id: p\nnew_pipeline_spec:\n  storage_catalog: c\n",
        );
        let mut d = Diagnostics::default();
        PostgresSyncedTableKind.check("t", &node, &mut d);
        let all: Vec<&str> = d.items.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(all[0].contains("not a three-part name"));
        assert!(all[1].contains("mutually exclusive"));
    }

    #[test]
    fn id_keeps_its_dots() {
        let remote = json!({"name": "synced_tables/c.s.t", "status": {"unity_catalog_provisioning_state": "ACTIVE"}});
        assert_eq!(
            PostgresSyncedTableKind.remote_to_config(&remote),
            json!({"synced_table_id": "c.s.t"})
        );
        assert_eq!(
            PostgresSyncedTableKind.id_from_config(&json!({"synced_table_id": "c.s.t"})),
            Some("synced_tables/c.s.t".into())
        );
    }
}
