//! `vector_search_indexes`: vector search indexes (`/api/2.0/vector-search/indexes`,
//! contract part 2 §6), id = the three-level `name`. The API has no update: every field of
//! the index is immutable, so any change replaces it; only its Unity Catalog `grants`
//! (securable type `table`) change in place. Deploy waits for `status.ready`. Delete is
//! asynchronous: the index answers GET for a while, so delete waits until it is gone, and a
//! create of the same name right after can fail "currently pending deletion" and is retried.
//! `direct_access_index_spec.schema_json` is rewritten by the service; both sides compare
//! it in its compact JSON form.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::common::{
    self, collect_outputs, literal_str, poll_get, schema_enum, schema_struct, Lifecycle, Poll,
};
use super::grants::{self, Grant};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// How the index is filled.
    VectorIndexType { DELTA_SYNC, DIRECT_ACCESS }
}
schema_enum! {
    /// What the index searches.
    IndexSubtype { VECTOR, FULL_TEXT, HYBRID }
}
schema_enum! {
    /// How the sync pipeline runs.
    PipelineType { TRIGGERED, CONTINUOUS }
}

schema_struct! {
    /// A column whose text is embedded by a model endpoint.
    pub struct EmbeddingSourceColumn {
        /// Column name.
        name: String,
        /// Model serving endpoint computing the embeddings.
        embedding_model_endpoint_name: String,
        /// Model serving endpoint used for queries (default: the one above).
        model_endpoint_name_for_query: String,
    }
}
schema_struct! {
    /// A column holding precomputed embedding vectors.
    pub struct EmbeddingVectorColumn {
        /// Column name.
        name: String,
        /// Dimension of the vectors.
        embedding_dimension: i64,
    }
}
schema_struct! {
    /// A Delta Sync index: kept in sync with a Delta table.
    pub struct DeltaSyncIndexSpec {
        /// Source Delta table (`catalog.schema.table`).
        source_table: String,
        /// Sync mode.
        pipeline_type: PipelineType,
        /// Columns to sync (default: all).
        columns_to_sync: Vec<String>,
        /// Alias of `columns_to_sync`.
        columns_to_index: Vec<String>,
        /// Columns embedded by a model endpoint.
        embedding_source_columns: Vec<EmbeddingSourceColumn>,
        /// Columns with precomputed vectors.
        embedding_vector_columns: Vec<EmbeddingVectorColumn>,
        /// Delta table the computed embeddings are written back to.
        embedding_writeback_table: String,
    }
}
schema_struct! {
    /// A Direct Access index: vectors written through the API.
    pub struct DirectAccessIndexSpec {
        /// Schema of the index as a JSON object of column → type.
        schema_json: String,
        /// Columns embedded by a model endpoint.
        embedding_source_columns: Vec<EmbeddingSourceColumn>,
        /// Columns with precomputed vectors.
        embedding_vector_columns: Vec<EmbeddingVectorColumn>,
    }
}

schema_struct! {
    /// A vector search index (a Unity Catalog object served by a vector search endpoint).
    #[schemars(extend("required" = ["name", "endpoint_name", "primary_key", "index_type"]))]
    pub struct VectorSearchIndex {
        /// Three-level name `catalog.schema.index`. Any change of the index replaces it.
        name: String,
        /// Endpoint serving the index (a bundle endpoint's `name` links the two).
        endpoint_name: String,
        /// Primary key column.
        primary_key: String,
        /// DELTA_SYNC (needs `delta_sync_index_spec`) or DIRECT_ACCESS (needs `direct_access_index_spec`).
        index_type: VectorIndexType,
        /// Settings of a Delta Sync index.
        delta_sync_index_spec: DeltaSyncIndexSpec,
        /// Settings of a Direct Access index.
        direct_access_index_spec: DirectAccessIndexSpec,
        /// What the index searches.
        index_subtype: IndexSubtype,
        /// Unity Catalog privileges granted on the index (securable type `table`).
        grants: Vec<Grant>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/vector-search/indexes";
const SECURABLE: &str = "table";
const SPEC_FIELDS: &[&str] = &[
    "name",
    "endpoint_name",
    "primary_key",
    "index_type",
    "delta_sync_index_spec",
    "direct_access_index_spec",
    "index_subtype",
];
const CONFIG_FIELDS: &[&str] = &[
    "name",
    "endpoint_name",
    "primary_key",
    "index_type",
    "delta_sync_index_spec",
    "direct_access_index_spec",
    "index_subtype",
    "grants",
];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "endpoint_name",
    "index_type",
    "primary_key",
    "status.ready",
    "status.index_url",
    "creator",
];
/// How long destroy/replace waits for an index to go, and a create retries while the name
/// is still pending deletion.
const DELETION_WAIT: Duration = Duration::from_secs(10 * 60);

static RULES: FieldRules = FieldRules {
    // No update API: every field of the index replaces it; grants change in place.
    immutable: SPEC_FIELDS,
    replace_on_any_change: false,
    input_only: &[],
    output_only: &["status", "creator"],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "vector search index",
    plural: "vector search indexes",
    title: "Vector Search Indexes",
    id_scheme: IdScheme::FullName,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "vector search index to become ready",
    grants_securable: Some(SECURABLE),
    workspace_paths: WorkspacePaths::None,
    // A Direct Access index loses its upserted vectors; a Delta Sync one its embeddings.
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/{id_path}",
};

pub struct VectorSearchIndexKind;

fn path_for(name: &str) -> String {
    format!("{API}/{name}")
}

/// `schema_json` in compact form (as the service stores it); text that is not JSON stays.
fn normalise_schema(config: &Value) -> Value {
    let mut out = config.clone();
    if let Some(s) = config
        .pointer("/direct_access_index_spec/schema_json")
        .and_then(Value::as_str)
    {
        if let Ok(parsed) = serde_json::from_str::<Value>(s) {
            out["direct_access_index_spec"]["schema_json"] = json!(parsed.to_string());
        }
    }
    out
}

fn pending_deletion(e: &ApiError) -> bool {
    matches!(e, ApiError::InvalidParameter { message, .. } if message.contains("pending deletion"))
}

#[async_trait]
impl ResourceKind for VectorSearchIndexKind {
    fn kind(&self) -> Kind {
        Kind::VectorSearchIndexes
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_vector_search_index")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<VectorSearchIndex>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<VectorSearchIndex>(self.kind(), key, node, diags);
        grants::check(&addr, node, diags);
        let Some(t) = node.get("index_type") else {
            return;
        };
        let (want, other) = match t.as_str() {
            Some("DELTA_SYNC") => ("delta_sync_index_spec", "direct_access_index_spec"),
            Some("DIRECT_ACCESS") => ("direct_access_index_spec", "delta_sync_index_spec"),
            _ => return,
        };
        if node.get(want).is_none() {
            diags.push(
                Diag::error(format!(
                    "{addr} is a {} index without {want}",
                    t.as_str().unwrap_or("")
                ))
                .at(t.span, "this index type")
                .help(format!("add `{want}`")),
            );
        }
        if let Some(o) = node.get(other) {
            diags.push(
                Diag::error(format!(
                    "{addr}.{other} does not apply to a {} index",
                    t.as_str().unwrap_or("")
                ))
                .at(o.span, "for the other index type")
                .help(format!("remove `{other}`, or change `index_type`")),
            );
        }
        if let Some(s) = node
            .get("direct_access_index_spec")
            .and_then(|d| d.get("schema_json"))
        {
            if let Some(text) = s.as_str().filter(|t| !common::has_interpolation(t)) {
                if let Err(e) = serde_json::from_str::<Value>(text) {
                    diags.push(
                        Diag::error(format!("{addr}.direct_access_index_spec.schema_json is not JSON: {e}"))
                            .at(s.span, "not a JSON object")
                            .help("write the schema as a JSON object of column name to type, e.g. '{\"id\": \"integer\"}'"),
                    );
                }
            }
        }
    }
    /// Its endpoint by literal name; its catalog and schema from its three-level name.
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let mut links = Vec::new();
        if let Some(e) = literal_str(config, "endpoint_name") {
            links.push(NameLink {
                field: "endpoint_name".into(),
                target_kind: Kind::VectorSearchEndpoints,
                name: e.to_string(),
            });
        }
        if let Some(name) = literal_str(config, "name") {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() == 3 {
                for (part, kind) in [(parts[0], Kind::Catalogs), (parts[1], Kind::Schemas)] {
                    links.push(NameLink {
                        field: "name".into(),
                        target_kind: kind,
                        name: part.to_string(),
                    });
                }
            }
        }
        links
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    /// POST the index (retried while its name is still pending deletion), then its grants.
    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let body = Value::Object(common::only_keys(&normalise_schema(config), SPEC_FIELDS));
        let deadline = tokio::time::Instant::now() + DELETION_WAIT;
        let mut delay = Duration::from_millis(100);
        let remote = loop {
            match client.call(Method::POST, API, &[], Some(&body)).await {
                Err(e) if pending_deletion(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                other => break other?,
            }
        };
        let id = remote
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| literal_str(config, "name"))
            .unwrap_or_default()
            .to_string();
        let want = grants::desired(config);
        if !want.is_empty() {
            grants::apply(client, SECURABLE, &id, &want).await?;
        }
        Ok(Created { id, remote })
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        match common::get_if_exists(client, &path_for(id)).await? {
            Some(remote) => Ok(Some(
                grants::with_grants(client, SECURABLE, id, remote).await?,
            )),
            None => Ok(None),
        }
    }
    /// Only grants change in place (everything else replaces the index).
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        if changed.iter().any(|c| c == "grants") {
            grants::apply(client, SECURABLE, id, &grants::desired(config)).await?;
        }
        Ok(id.to_string())
    }
    /// DELETE, then wait until GET no longer answers (deletion is asynchronous).
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await?;
        let deadline = tokio::time::Instant::now() + DELETION_WAIT;
        let mut delay = Duration::from_millis(100);
        while common::get_if_exists(client, &path_for(id))
            .await?
            .is_some()
        {
            if tokio::time::Instant::now() >= deadline {
                return Err(common::not_ready(
                    &path_for(id),
                    format!(
                        "index {id} still exists {}s after its delete",
                        DELETION_WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        Ok(())
    }
    /// Until `status.ready`.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        poll_get(client, &path_for(id), timeout, |i| {
            if i.pointer("/status/ready").and_then(Value::as_bool) == Some(true) {
                Poll::Ready(i)
            } else {
                let msg = i
                    .pointer("/status/message")
                    .and_then(Value::as_str)
                    .unwrap_or("not ready");
                Poll::Pending(msg.to_string())
            }
        })
        .await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(id) = self.id_from_config(config) else {
            return Ok(None);
        };
        let Some(remote) = self.read(client, &id).await? else {
            return Ok(None);
        };
        let want = grants::desired(config);
        if !want.is_empty() {
            grants::apply(client, SECURABLE, &id, &want).await?;
        }
        Ok(Some(Created { id, remote }))
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        normalise_schema(&Value::Object(common::only_keys(remote, CONFIG_FIELDS)))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// `schema_json` compact and grants normalised: the config as the service reads it back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        grants::normalize_config(&normalise_schema(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_json_compares_in_compact_form() {
        let cfg = json!({"name": "main.default.idx", "direct_access_index_spec":
                         {"schema_json": "{ \"id\": \"integer\",  \"v\": \"array<float>\" }"}});
        assert_eq!(
            normalise_schema(&cfg)["direct_access_index_spec"]["schema_json"],
            "{\"id\":\"integer\",\"v\":\"array<float>\"}"
        );
        let links: Vec<Kind> = VectorSearchIndexKind
            .name_links(&json!({"name": "main.default.idx", "endpoint_name": "vs"}))
            .iter()
            .map(|l| l.target_kind)
            .collect();
        assert_eq!(
            links,
            vec![Kind::VectorSearchEndpoints, Kind::Catalogs, Kind::Schemas]
        );
    }
}
