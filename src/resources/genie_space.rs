//! `genie_spaces`: AI/BI Genie spaces (`/api/2.0/genie/spaces`, contract part 2 §6), id =
//! the server-assigned `space_id`.
//!
//! As dashboards: the definition is `serialized_space` or a local file named by `file_path`;
//! the remote text is never compared (the service migrates it), a local change is the text
//! against the last applied one and an edit in the workspace an `etag` that moved. The
//! update PATCH leaves `etag` out, as the CLI does (the service bumps it on a schema
//! migration, so a stale one would be refused). A missing parent folder is made and the
//! create retried; a deleted space goes to the trash and is gone.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::common::{
    self, collect_outputs, get_if_exists, literal_str, schema_struct, Lifecycle, Permission,
};
use super::dashboard::{
    check_exclusive, create_in_folder, definition_file, etag_changes, unread_file,
    with_file_content, without_workspace_prefix,
};
use super::{
    Created, DeploymentInfo, ExtraChanges, FieldRules, IdScheme, Kind, KindInfo, NameLink,
    PathField, PathKind, ResourceKind, RunAs, RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;

schema_struct! {
    /// An AI/BI Genie space.
    #[schemars(extend("required" = ["warehouse_id"]))]
    pub struct GenieSpace {
        /// Title of the space.
        title: String,
        /// Description of the space.
        description: String,
        /// The SQL warehouse the space's queries run on.
        warehouse_id: String,
        /// The space definition as JSON text (or use `file_path`).
        serialized_space: String,
        /// A local file holding the definition, relative to this YAML file (or use
        /// `serialized_space`). A change to the file is deployed as an update.
        file_path: String,
        /// Workspace folder of the space (made when missing).
        parent_path: String,
        /// Set by the service (never sent).
        etag: String,
        /// Permissions on the space (CAN_READ, CAN_RUN, CAN_EDIT, CAN_MANAGE).
        permissions: Vec<Permission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/genie/spaces";
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "space_id",
    "title",
    "warehouse_id",
    "parent_path",
    "etag",
];
const BODY_FIELDS: &[&str] = &[
    "title",
    "description",
    "warehouse_id",
    "serialized_space",
    "parent_path",
];
const CONFIG_FIELDS: &[&str] = &["title", "description", "warehouse_id", "parent_path"];

static RULES: FieldRules = FieldRules {
    immutable: &[],
    replace_on_any_change: false,
    input_only: &[("serialized_space", "")],
    output_only: &["space_id", "etag", "lifecycle_state"],
    bundle_only: &["permissions", "lifecycle", "file_path"],
};

static INFO: KindInfo = KindInfo {
    noun: "Genie space",
    plural: "Genie spaces",
    title: "Genie spaces",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "Genie space",
    grants_securable: None,
    workspace_paths: WorkspacePaths::Fields(&[PathField {
        path: &["file_path"],
        kind: PathKind::Content,
    }]),
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/genie/rooms/{id}",
};

pub struct GenieSpaceKind;

fn path_for(id: &str) -> String {
    format!("{API}/{id}")
}

fn body(config: &Value) -> Value {
    Value::Object(common::only_keys(config, BODY_FIELDS))
}

fn with_definition() -> [(&'static str, String); 1] {
    [("include_serialized_space", "true".into())]
}

#[async_trait]
impl ResourceKind for GenieSpaceKind {
    fn kind(&self) -> Kind {
        Kind::GenieSpaces
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<GenieSpace>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<GenieSpace>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        check_exclusive(&addr, node, "serialized_space", diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        with_file_content(config, "serialized_space")
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        if let Some(e) = unread_file(config, "serialized_space", API) {
            return Err(e);
        }
        let resp = create_in_folder(client, API, &[], &body(config)).await?;
        let id = resp
            .get("space_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Other {
                method: "POST".into(),
                path: API.into(),
                status: 200,
                error_code: "BAD_RESPONSE".into(),
                message: "the create response has no space_id".into(),
            })?
            .to_string();
        Ok(Created { id, remote: resp })
    }
    /// With the definition (the only way to see the `etag`); a trashed space is gone.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let got = crate::api::none_if_missing(
            client
                .call(Method::GET, &path_for(id), &with_definition(), None)
                .await,
        )?;
        Ok(got.filter(|s| s.get("lifecycle_state").and_then(Value::as_str) != Some("TRASHED")))
    }
    /// The whole space without `etag` (see the module doc).
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        if let Some(e) = unread_file(config, "serialized_space", &path_for(id)) {
            return Err(e);
        }
        client
            .call(Method::PATCH, &path_for(id), &[], Some(&body(config)))
            .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        client
            .call(Method::GET, &path_for(id), &with_definition(), None)
            .await
    }
    /// After a lost create response: the space with this title in the folder.
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(title) = literal_str(config, "title") else {
            return Ok(None);
        };
        let folder = literal_str(config, "parent_path").map(without_workspace_prefix);
        let all =
            crate::api::list_all(client, API, &[("page_size", "100".into())], "spaces").await?;
        for s in all {
            let in_folder = match (&folder, s.get("parent_path").and_then(Value::as_str)) {
                (Some(want), Some(got)) => without_workspace_prefix(got) == *want,
                _ => true,
            };
            if s.get("title").and_then(Value::as_str) == Some(title) && in_folder {
                let Some(id) = s.get("space_id").and_then(Value::as_str) else {
                    continue;
                };
                let id = id.to_string();
                let remote = get_if_exists(client, &path_for(&id)).await?.unwrap_or(s);
                return Ok(Some(Created { id, remote }));
            }
        }
        Ok(None)
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = Value::Object(common::only_keys(remote, CONFIG_FIELDS));
        if let Some(p) = out.get("parent_path").and_then(Value::as_str) {
            out["parent_path"] = Value::String(without_workspace_prefix(p));
        }
        out
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn output_changes(&self, outputs: &Value, remote: Option<&Value>) -> ExtraChanges {
        etag_changes(outputs, remote)
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("genie")
    }
    /// The definition, written to `<key>.geniespace.json` and named by
    /// `file_path` (as the Databricks CLI writes it).
    async fn generate_files(
        &self,
        _client: &Client,
        remote: &Value,
        config: &mut Value,
        key: &str,
        source_from_yaml: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        let file = format!("{key}.geniespace.json");
        let definition = remote.get("serialized_space").and_then(Value::as_str);
        Ok(definition_file(
            config,
            "serialized_space",
            definition,
            file,
            source_from_yaml,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_shape_keeps_the_compared_fields() {
        let remote = json!({"space_id": "s1", "title": "T", "warehouse_id": "w",
                            "serialized_space": "{\"version\": 2}", "etag": "e",
                            "parent_path": "/Workspace/Shared"});
        assert_eq!(
            GenieSpaceKind.remote_to_config(&remote),
            json!({"title": "T", "warehouse_id": "w", "parent_path": "/Shared"})
        );
        assert_eq!(GenieSpaceKind.outputs("s1", &remote)["etag"], "e");
    }
}
