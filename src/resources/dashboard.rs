//! `dashboards`: Lakeview (AI/BI) dashboards (`/api/2.0/lakeview/dashboards`, contract
//! part 2 §6), id = the server-assigned `dashboard_id`.
//!
//! The definition comes from `serialized_dashboard` or from a local `.lvdash.json` named by
//! `file_path` (relative to the YAML file; read at deploy and sent as `serialized_dashboard`,
//! as the CLI does). The service re-serializes the text it stores, so the remote text is never
//! compared: a local change is the new text against the text last applied, and a change made
//! in the workspace is an `etag` that moved since the last apply. Both plan an update that
//! overwrites the remote definition. Every create and update publishes the dashboard.
//! `parent_path` is immutable (a move recreates it); a missing parent folder is made and the
//! create retried. A deleted dashboard goes to the trash: a `TRASHED` one is gone.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::common::{
    self, collect_outputs, get_if_exists, literal_str, schema_struct, Lifecycle, Permission,
};
use super::{
    Created, DeploymentInfo, ExtraChanges, FieldRules, IdScheme, Kind, KindInfo, NameLink,
    PathField, PathKind, ResourceKind, RunAs, RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_struct! {
    /// A Lakeview (AI/BI) dashboard.
    #[schemars(extend("required" = ["display_name"]))]
    pub struct Dashboard {
        /// Name shown in the workspace.
        display_name: String,
        /// The SQL warehouse the dashboard's queries run on.
        warehouse_id: String,
        /// The dashboard definition as JSON text (or use `file_path`).
        serialized_dashboard: String,
        /// A local `.lvdash.json` file holding the definition, relative to this YAML file (or use
        /// `serialized_dashboard`). A change to the file is deployed as an update.
        file_path: String,
        /// Workspace folder of the dashboard (made when missing). Changing it replaces the
        /// dashboard.
        parent_path: String,
        /// Publish with the publisher's credentials embedded (viewers need no warehouse access).
        embed_credentials: bool,
        /// Default catalog of the datasets (sent with each create and update).
        dataset_catalog: String,
        /// Default schema of the datasets (sent with each create and update).
        dataset_schema: String,
        /// Set by the service.
        dashboard_id: String,
        /// Set by the service.
        etag: String,
        /// Set by the service.
        path: String,
        /// Set by the service.
        lifecycle_state: String,
        /// Set by the service.
        create_time: String,
        /// Set by the service.
        update_time: String,
        /// Permissions on the dashboard (CAN_READ, CAN_RUN, CAN_EDIT, CAN_MANAGE).
        permissions: Vec<Permission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

pub(super) const API: &str = "/api/2.0/lakeview/dashboards";
const BUNDLE_ONLY: &[&str] = &["permissions", "lifecycle", "file_path"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "dashboard_id",
    "display_name",
    "path",
    "parent_path",
    "etag",
    "lifecycle_state",
    "warehouse_id",
];
/// Fields of the dashboard body (create and update).
const BODY_FIELDS: &[&str] = &[
    "display_name",
    "warehouse_id",
    "serialized_dashboard",
    "parent_path",
];
/// Fields of the remote object compared with the config.
const CONFIG_FIELDS: &[&str] = &[
    "display_name",
    "warehouse_id",
    "parent_path",
    "embed_credentials",
];

static RULES: FieldRules = FieldRules {
    immutable: &["parent_path"],
    replace_on_any_change: false,
    input_only: &[
        ("serialized_dashboard", ""),
        ("dataset_catalog", ""),
        ("dataset_schema", ""),
    ],
    output_only: &[
        "dashboard_id",
        "etag",
        "path",
        "lifecycle_state",
        "create_time",
        "update_time",
        "published",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "dashboard",
    plural: "dashboards",
    title: "Dashboards",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "dashboard to be published",
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
    ui_path: "/dashboardsv3/{id}/published",
};

pub struct DashboardKind;

fn path_for(id: &str) -> String {
    format!("{API}/{id}")
}

/// `/Workspace/Users/x` and `/Users/x` name one folder; the service answers
/// with the first, bundles mostly write the second.
pub(super) fn without_workspace_prefix(path: &str) -> String {
    match path.strip_prefix("/Workspace/") {
        Some(rest) => format!("/{rest}"),
        None => path.to_string(),
    }
}

/// The config with `content_field` read from the local file `file_path`
/// names (after deploy made it absolute), and `parent_path` without its
/// `/Workspace` prefix. A file that cannot be read leaves the field unset;
/// create and update report it.
pub(super) fn with_file_content(config: &Value, content_field: &str) -> Value {
    let mut out = config.clone();
    let Value::Object(m) = &mut out else {
        return out;
    };
    if let Some(file) = m.get("file_path").and_then(Value::as_str) {
        if std::path::Path::new(file).is_absolute() && !m.contains_key(content_field) {
            if let Ok(text) = std::fs::read_to_string(file) {
                m.insert(content_field.into(), Value::String(text));
            }
        }
    }
    if let Some(p) = m.get("parent_path").and_then(Value::as_str) {
        let p = without_workspace_prefix(p);
        m.insert("parent_path".into(), Value::String(p));
    }
    out
}

/// A `file_path` whose content never made it into the config: the error
/// create and update return instead of sending an empty definition.
pub(super) fn unread_file(config: &Value, content_field: &str, path: &str) -> Option<ApiError> {
    let file = config.get("file_path").and_then(Value::as_str)?;
    if config.get(content_field).is_some() {
        return None;
    }
    Some(ApiError::Other {
        method: "POST".into(),
        path: path.into(),
        status: 0,
        error_code: "FILE_NOT_READ".into(),
        message: format!("cannot read {file} (file_path) to send as {content_field}"),
    })
}

/// `file_path` and the inline field are alternatives: both set is an error at
/// the second.
pub(super) fn check_exclusive(addr: &str, node: &Node, inline: &str, diags: &mut Diagnostics) {
    if let (Some(file), Some(text)) = (node.get("file_path"), node.get(inline)) {
        diags.push(
            Diag::error(format!(
                "{addr} sets both file_path and {inline}; they are alternatives"
            ))
            .at(file.span, "the definition from a file")
            .related(text.span, "and inline")
            .help(format!(
                "keep one: `file_path` for a local file, or `{inline}`"
            )),
        );
    }
}

/// An `etag` that moved since the last apply: the object was edited in the
/// workspace; the update puts the bundle's definition back.
pub(super) fn etag_changes(outputs: &Value, remote: Option<&Value>) -> ExtraChanges {
    let recorded = outputs.get("etag").and_then(Value::as_str);
    let now = remote.and_then(|r| r.get("etag")).and_then(Value::as_str);
    match (recorded, now) {
        (Some(old), Some(new)) if old != new => {
            let change = crate::plan::FieldChange {
                path: "etag".into(),
                old: Some(json!(old)),
                new: Some(json!(new)),
                unknown: false,
                forces_replacement: false,
            };
            ExtraChanges {
                fields: vec![change.clone()],
                drift: vec![change],
            }
        }
        _ => ExtraChanges::default(),
    }
}

/// POST `body` to `collection`; a missing parent folder (404 naming a
/// `parent_path`) is made and the create retried once, as the CLI does.
pub(super) async fn create_in_folder(
    client: &Client,
    collection: &str,
    query: &[(&str, String)],
    body: &Value,
) -> Result<Value, ApiError> {
    match client
        .call(Method::POST, collection, query, Some(body))
        .await
    {
        Err(e) if e.is_not_found() => {
            let Some(parent) = body.get("parent_path").and_then(Value::as_str) else {
                return Err(e);
            };
            client.workspace().mkdirs(parent).await?;
            client
                .call(Method::POST, collection, query, Some(body))
                .await
        }
        other => other,
    }
}

fn body(config: &Value) -> Value {
    Value::Object(common::only_keys(config, BODY_FIELDS))
}

fn dataset_query(config: &Value) -> Vec<(&'static str, String)> {
    ["dataset_catalog", "dataset_schema"]
        .into_iter()
        .filter_map(|f| literal_str(config, f).map(|v| (f, v.to_string())))
        .collect()
}

fn id_of(resp: &Value, path: &str) -> Result<String, ApiError> {
    resp.get("dashboard_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::Other {
            method: "POST".into(),
            path: path.into(),
            status: 200,
            error_code: "BAD_RESPONSE".into(),
            message: "the create response has no dashboard_id".into(),
        })
}

/// The dashboard with its publication (`published`, `embed_credentials`)
/// merged in; None when missing or trashed.
async fn read_dashboard(client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
    let Some(mut d) = get_if_exists(client, &path_for(id)).await? else {
        return Ok(None);
    };
    if d.get("lifecycle_state").and_then(Value::as_str) == Some("TRASHED") {
        return Ok(None);
    }
    let published = get_if_exists(client, &format!("{}/published", path_for(id))).await?;
    if let Value::Object(m) = &mut d {
        m.insert("published".into(), Value::Bool(published.is_some()));
        if let Some(embed) = published.as_ref().and_then(|p| p.get("embed_credentials")) {
            m.insert("embed_credentials".into(), embed.clone());
        }
    }
    Ok(Some(d))
}

#[async_trait]
impl ResourceKind for DashboardKind {
    fn kind(&self) -> Kind {
        Kind::Dashboards
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_dashboard")
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Dashboard>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Dashboard>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        check_exclusive(&addr, node, "serialized_dashboard", diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }
    /// The definition read from `file_path`; `parent_path` as the service
    /// shows it.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        with_file_content(config, "serialized_dashboard")
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        if let Some(e) = unread_file(config, "serialized_dashboard", API) {
            return Err(e);
        }
        let resp = create_in_folder(client, API, &dataset_query(config), &body(config)).await?;
        let id = id_of(&resp, API)?;
        Ok(Created { id, remote: resp })
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        read_dashboard(client, id).await
    }
    /// The whole definition, without an `etag`: the bundle's version wins
    /// over an edit made in the workspace.
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        if let Some(e) = unread_file(config, "serialized_dashboard", &path_for(id)) {
            return Err(e);
        }
        let mut b = body(config);
        if let Value::Object(m) = &mut b {
            m.remove("parent_path");
        }
        client
            .call(
                Method::PATCH,
                &path_for(id),
                &dataset_query(config),
                Some(&b),
            )
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
        client.call(Method::GET, &path_for(id), &[], None).await
    }
    /// Publish the draft (every create and update, as the CLI does).
    async fn after_ready(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        ready: Value,
        _timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Value, ApiError> {
        progress("publishing the dashboard".into());
        let mut publish = json!({
            "embed_credentials": config.get("embed_credentials").and_then(Value::as_bool).unwrap_or(false),
        });
        if let Some(w) = config.get("warehouse_id").filter(|w| w.is_string()) {
            publish["warehouse_id"] = w.clone();
        }
        client
            .call(
                Method::POST,
                &format!("{}/published", path_for(id)),
                &[],
                Some(&publish),
            )
            .await?;
        Ok(read_dashboard(client, id).await?.unwrap_or(ready))
    }
    /// After a lost create response: the live dashboard with this display
    /// name in the configured folder.
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(name) = literal_str(config, "display_name") else {
            return Ok(None);
        };
        let folder = literal_str(config, "parent_path").map(without_workspace_prefix);
        let all =
            crate::api::list_all(client, API, &[("page_size", "100".into())], "dashboards").await?;
        let found = all.into_iter().find(|d| {
            let in_folder = match (&folder, d.get("parent_path").and_then(Value::as_str)) {
                (Some(want), Some(got)) => without_workspace_prefix(got) == *want,
                _ => true,
            };
            d.get("display_name").and_then(Value::as_str) == Some(name)
                && d.get("lifecycle_state").and_then(Value::as_str) != Some("TRASHED")
                && in_folder
        });
        Ok(found.and_then(|d| {
            let id = d.get("dashboard_id")?.as_str()?.to_string();
            Some(Created { id, remote: d })
        }))
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
        Some("dashboards")
    }
    /// The definition, written to `<key>.lvdash.json` (indented, as the
    /// Databricks CLI writes it) and named by `file_path`.
    async fn generate_files(
        &self,
        _client: &Client,
        remote: &Value,
        config: &mut Value,
        key: &str,
        source_from_yaml: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        let file = format!("{key}.lvdash.json");
        let definition = remote.get("serialized_dashboard").and_then(Value::as_str);
        Ok(definition_file(
            config,
            "serialized_dashboard",
            definition,
            file,
            source_from_yaml,
        ))
    }
}

/// For `generate`: the definition the remote holds as JSON text (from
/// `content_field`, which leaves `config`), as the file `file` of the
/// source directory, indented. None without a definition.
pub(super) fn definition_file(
    config: &mut Value,
    content_field: &str,
    definition: Option<&str>,
    file: String,
    source_from_yaml: &str,
) -> Vec<(String, Vec<u8>)> {
    let (Some(text), Value::Object(m)) = (definition, config) else {
        return vec![];
    };
    m.shift_remove(content_field);
    named_by_file_path(m, file, indented_json(text), source_from_yaml)
}

/// The one file `generate` writes for a definition, named by `file_path`
/// in the config (relative to the YAML file).
pub(super) fn named_by_file_path(
    config: &mut serde_json::Map<String, Value>,
    file: String,
    content: Vec<u8>,
    source_from_yaml: &str,
) -> Vec<(String, Vec<u8>)> {
    config.insert(
        "file_path".into(),
        Value::String(format!("{source_from_yaml}/{file}")),
    );
    vec![(file, content)]
}

/// JSON text indented two spaces with a final newline (keys in their order);
/// text that is not JSON as it is.
fn indented_json(text: &str) -> Vec<u8> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => pretty_json(&v),
        Err(_) => text.as_bytes().to_vec(),
    }
}

/// A definition file's text: indented two spaces, with a final newline.
pub(super) fn pretty_json(v: &Value) -> Vec<u8> {
    // A JSON value always serialises (its keys are strings).
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_etag_is_a_change_and_drift() {
        let outputs = json!({"id": "d", "etag": "1"});
        assert!(etag_changes(&outputs, Some(&json!({"etag": "1"})))
            .fields
            .is_empty());
        let moved = etag_changes(&outputs, Some(&json!({"etag": "2"})));
        assert_eq!(moved.fields.len(), 1);
        assert_eq!(moved.drift[0].new, Some(json!("2")));
        assert!(etag_changes(&outputs, None).fields.is_empty());
    }

    #[test]
    fn a_generated_definition_is_indented_in_its_key_order_and_other_text_kept() {
        let text = indented_json(r#"{"pages":[{"name":"p","displayName":"P"}],"datasets":[]}"#);
        assert_eq!(
            String::from_utf8(text).expect("utf-8"),
            "{\n  \"pages\": [\n    {\n      \"name\": \"p\",\n      \"displayName\": \"P\"\n    }\n  ],\n  \"datasets\": []\n}\n"
        );
        assert_eq!(indented_json("not json {"), b"not json {");
    }

    #[test]
    fn file_content_is_read_and_folders_lose_the_workspace_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("d.lvdash.json");
        std::fs::write(&file, "{\"pages\": []}").expect("write");
        let cfg =
            json!({"file_path": file.display().to_string(), "parent_path": "/Workspace/Users/me"});
        let out = with_file_content(&cfg, "serialized_dashboard");
        assert_eq!(out["serialized_dashboard"], "{\"pages\": []}");
        assert_eq!(out["parent_path"], "/Users/me");
        assert!(unread_file(&out, "serialized_dashboard", API).is_none());
        let missing = json!({"file_path": "/nonexistent/x.lvdash.json"});
        let out = with_file_content(&missing, "serialized_dashboard");
        assert!(unread_file(&out, "serialized_dashboard", API).is_some());
        let remote = json!({"display_name": "D", "parent_path": "/Workspace/Users/me", "etag": "3",
                            "serialized_dashboard": "{}", "lifecycle_state": "ACTIVE"});
        assert_eq!(
            DashboardKind.remote_to_config(&remote),
            json!({"display_name": "D", "parent_path": "/Users/me"})
        );
    }
}
