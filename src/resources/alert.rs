//! `alerts`: Databricks SQL alerts v2 (`/api/2.0/alerts`, contract part 2 §6), id = the
//! server-assigned `id`.
//!
//! An update is a PATCH of the whole alert with `update_mask=*`, as the CLI sends it;
//! `parent_path` is create-only (a move recreates the alert). Delete purges (without `purge`
//! the alert would only go to the trash); an alert read back as `lifecycle_state: DELETED`
//! is gone.
//!
//! `file_path` names a local `.dbalert.json` (as `bundle generate alert` writes it): its
//! fields (`query_lines` → `query_text`, `custom_description_lines` → `custom_description`,
//! joined into text) make the alert,
//! and the YAML may then only add the name, warehouse, permissions and lifecycle.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::common::{
    self, collect_outputs, literal_str, schema_enum, schema_struct, Lifecycle, Permission,
};
use super::dashboard::{
    create_in_folder, named_by_file_path, pretty_json, without_workspace_prefix,
};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, PathField, PathKind,
    ResourceKind, RunAs, RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// How the query result is compared with the threshold.
    AlertComparisonOperator {
        LESS_THAN, GREATER_THAN, EQUAL, NOT_EQUAL, GREATER_THAN_OR_EQUAL, LESS_THAN_OR_EQUAL,
        IS_NULL, IS_NOT_NULL,
    }
}
schema_enum! {
    /// Aggregation of the source column over the result rows.
    AlertAggregation { SUM, COUNT, COUNT_DISTINCT, AVG, MEDIAN, MIN, MAX, STDDEV }
}
schema_enum! {
    /// Alert state.
    AlertEvaluationState { UNKNOWN, TRIGGERED, OK, ERROR }
}
schema_enum! {
    /// Whether the schedule runs.
    AlertPauseStatus { UNPAUSED, PAUSED }
}

schema_struct! {
    /// A column of the query result.
    #[schemars(extend("required" = ["name"]))]
    pub struct AlertOperandColumn {
        /// Column name.
        name: String,
        /// Aggregation applied to the column.
        aggregation: AlertAggregation,
        /// Display name.
        display: String,
    }
}
schema_struct! {
    /// A literal value (set one of the three).
    pub struct AlertOperandValue {
        /// A boolean.
        bool_value: bool,
        /// A number.
        double_value: f64,
        /// A string.
        string_value: String,
    }
}
schema_struct! {
    /// The threshold: a literal value or another column.
    pub struct AlertOperand {
        /// Compare with another column.
        column: AlertOperandColumn,
        /// Compare with a literal value.
        value: AlertOperandValue,
    }
}
schema_struct! {
    /// One subscriber.
    pub struct AlertSubscription {
        /// A notification destination id.
        destination_id: String,
        /// A user's email.
        user_email: String,
    }
}
schema_struct! {
    /// Who is notified, and when.
    pub struct AlertNotification {
        /// Also notify when the alert returns to OK.
        notify_on_ok: bool,
        /// Seconds before a still-triggered alert notifies again.
        retrigger_seconds: i64,
        /// Subscribers.
        subscriptions: Vec<AlertSubscription>,
    }
}
schema_struct! {
    /// How the alert evaluates the query result.
    #[schemars(extend("required" = ["comparison_operator", "source"]))]
    pub struct AlertEvaluation {
        /// Comparison of `source` with `threshold`.
        comparison_operator: AlertComparisonOperator,
        /// The column compared.
        source: AlertOperandColumn,
        /// What it is compared with.
        threshold: AlertOperand,
        /// State when the query returns no rows.
        empty_result_state: AlertEvaluationState,
        /// Notifications.
        notification: AlertNotification,
    }
}
schema_struct! {
    /// When the alert runs.
    #[schemars(extend("required" = ["quartz_cron_schedule", "timezone_id"]))]
    pub struct AlertSchedule {
        /// Quartz cron expression.
        quartz_cron_schedule: String,
        /// Java time zone id.
        timezone_id: String,
        /// Whether the schedule is paused.
        pause_status: AlertPauseStatus,
    }
}
schema_struct! {
    /// The identity the alert's query runs as (one of the two).
    pub struct AlertRunAs {
        /// A service principal's application id.
        service_principal_name: String,
        /// A user's email.
        user_name: String,
    }
}

schema_struct! {
    /// A Databricks SQL alert (v2).
    #[schemars(extend("required" = ["display_name", "warehouse_id"]))]
    pub struct Alert {
        /// Name shown in the workspace.
        display_name: String,
        /// The SQL query the alert evaluates.
        query_text: String,
        /// The SQL warehouse the query runs on.
        warehouse_id: String,
        /// How the result is evaluated.
        evaluation: AlertEvaluation,
        /// When the alert runs.
        schedule: AlertSchedule,
        /// Workspace folder of the alert (made when missing). Changing it replaces the alert.
        parent_path: String,
        /// The identity the query runs as.
        run_as: AlertRunAs,
        /// Deprecated: the user or service principal the query runs as (use `run_as`).
        run_as_user_name: String,
        /// Custom notification summary (may use template variables).
        custom_summary: String,
        /// Custom notification body (may use template variables).
        custom_description: String,
        /// A local `.dbalert.json` holding the alert's query, evaluation and schedule, relative
        /// to this YAML file (then only display_name, warehouse_id, permissions and lifecycle may
        /// be set here).
        file_path: String,
        /// Permissions on the alert (CAN_READ, CAN_RUN, CAN_EDIT, CAN_MANAGE).
        permissions: Vec<Permission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/alerts";
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "display_name",
    "owner_user_name",
    "lifecycle_state",
    "warehouse_id",
    "parent_path",
];
/// Fields of the create and update body.
const BODY_FIELDS: &[&str] = &[
    "display_name",
    "query_text",
    "warehouse_id",
    "evaluation",
    "schedule",
    "parent_path",
    "run_as",
    "run_as_user_name",
    "custom_summary",
    "custom_description",
];

static RULES: FieldRules = FieldRules {
    immutable: &["parent_path"],
    replace_on_any_change: false,
    input_only: &[("run_as_user_name", "")],
    output_only: &[
        "id",
        "create_time",
        "update_time",
        "owner_user_name",
        "effective_run_as",
        "lifecycle_state",
        "evaluation.state",
        "evaluation.last_evaluated_at",
    ],
    bundle_only: &["permissions", "lifecycle", "file_path"],
};

/// What the YAML may set next to a `file_path`.
const WITH_FILE: &[&str] = &[
    "display_name",
    "warehouse_id",
    "file_path",
    "permissions",
    "lifecycle",
];
/// What the YAML must set without a `file_path`.
const WITHOUT_FILE: &[&str] = &["query_text", "evaluation", "schedule"];

static INFO: KindInfo = KindInfo {
    noun: "alert",
    plural: "alerts",
    title: "Alerts",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "alert",
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
    ui_path: "/sql/alerts-v2/{id}",
};

pub struct AlertKind;

fn path_for(id: &str) -> String {
    format!("{API}/{id}")
}

fn body(config: &Value) -> Value {
    Value::Object(common::only_keys(config, BODY_FIELDS))
}

fn is_deleted(remote: &Value) -> bool {
    remote.get("lifecycle_state").and_then(Value::as_str) == Some("DELETED")
}

/// With a `file_path`, the alert's definition is the file's; without one,
/// the YAML must hold it.
fn check_file_fields(addr: &str, node: &Node, diags: &mut Diagnostics) {
    let Some(map) = node.as_map() else { return };
    if node.get("file_path").is_some() {
        for (key, value) in &map.entries {
            if !WITH_FILE.contains(&key.name.as_str()) {
                diags.push(
                    Diag::error(format!(
                        "{addr}.{} is not allowed next to file_path",
                        key.name
                    ))
                    .at(value.span, "defined by the .dbalert.json file")
                    .help(format!(
                        "with a .dbalert.json only {} may be set in the bundle; move the rest into the file",
                        WITH_FILE.join(", ")
                    )),
                );
            }
        }
        return;
    }
    for field in WITHOUT_FILE {
        if node.get(field).is_none() {
            diags.push(
                Diag::error(format!("{addr} is missing required field {field}"))
                    .at(node.span, format!("no {field}"))
                    .help(format!(
                        "set `{field}`, or point `file_path` at a .dbalert.json that holds the alert"
                    )),
            );
        }
    }
}

/// The alert read from its `.dbalert.json` (after deploy made `file_path`
/// absolute): `*_lines` lists become their text field. A file that cannot be
/// read or parsed leaves the config as it is; create reports it.
fn with_file_definition(config: &Value) -> Value {
    let mut out = config.clone();
    let Some(file) = literal_str(config, "file_path") else {
        return out;
    };
    if !std::path::Path::new(file).is_absolute() {
        return out;
    }
    let Some(Value::Object(def)) = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    else {
        return out;
    };
    let Value::Object(m) = &mut out else {
        return out;
    };
    for (key, value) in def {
        let (key, value) = match (key.strip_suffix("_lines"), &value) {
            (Some(base), Value::Array(lines)) => {
                let text: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
                // `query_lines` is the query's text, `query_text` in the API.
                let field = if base == "query" { "query_text" } else { base };
                (field.to_string(), Value::String(text.join("\n")))
            }
            _ => (key, value),
        };
        m.entry(key).or_insert(value);
    }
    out
}

/// A threshold is a value or a column, not both; `run_as` names one identity.
fn check_alternatives(addr: &str, node: &Node, diags: &mut Diagnostics) {
    let pairs = [
        (
            node.get("evaluation").and_then(|e| e.get("threshold")),
            "evaluation.threshold",
            ["value", "column"],
        ),
        (
            node.get("run_as"),
            "run_as",
            ["user_name", "service_principal_name"],
        ),
    ];
    for (parent, label, [a, b]) in pairs {
        let Some(parent) = parent else { continue };
        if let (Some(_), Some(second)) = (parent.get(a), parent.get(b)) {
            diags.push(
                Diag::error(format!("{addr}.{label} sets both {a} and {b}"))
                    .at(second.span, "the second one")
                    .help(format!("keep one of `{a}` and `{b}`")),
            );
        }
    }
}

#[async_trait]
impl ResourceKind for AlertKind {
    fn kind(&self) -> Kind {
        Kind::Alerts
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_alert")
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<Alert>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<Alert>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        check_alternatives(&addr, node, diags);
        check_file_fields(&addr, node, diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }
    /// The definition from `file_path`; `parent_path` as the service shows it.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        let mut out = with_file_definition(config);
        if let Some(p) = literal_str(config, "parent_path") {
            out["parent_path"] = Value::String(without_workspace_prefix(p));
        }
        out
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        if let Some(file) =
            literal_str(config, "file_path").filter(|_| config.get("query_text").is_none())
        {
            return Err(ApiError::Other {
                method: "POST".into(),
                path: API.into(),
                status: 0,
                error_code: "NO_QUERY".into(),
                message: format!(
                    "the alert has no query: {file} (file_path) cannot be read as a .dbalert.json with `query_lines`"
                ),
            });
        }
        let resp = create_in_folder(client, API, &[], &body(config)).await?;
        let id = resp
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Other {
                method: "POST".into(),
                path: API.into(),
                status: 200,
                error_code: "BAD_RESPONSE".into(),
                message: "the create response has no alert id".into(),
            })?
            .to_string();
        Ok(Created { id, remote: resp })
    }
    /// A trashed alert (`lifecycle_state: DELETED`) is gone.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let got = common::get_if_exists(client, &path_for(id)).await?;
        Ok(got.filter(|a| !is_deleted(a)))
    }
    /// The whole alert with `update_mask=*` (the CLI's call); `parent_path`
    /// cannot change in place.
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        let mut b = body(config);
        if let Value::Object(m) = &mut b {
            m.remove("parent_path");
        }
        client
            .call(
                Method::PATCH,
                &path_for(id),
                &[("update_mask", "*".into())],
                Some(&b),
            )
            .await?;
        Ok(id.to_string())
    }
    /// Purged, not trashed: a trashed alert would keep its name taken.
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[("purge", "true".into())]).await
    }
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        client.call(Method::GET, &path_for(id), &[], None).await
    }
    /// After a lost create response: the live alert with this name in the folder.
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
            crate::api::list_all(client, API, &[("page_size", "100".into())], "alerts").await?;
        let found = all.into_iter().find(|a| {
            let in_folder = match (&folder, a.get("parent_path").and_then(Value::as_str)) {
                (Some(want), Some(got)) => without_workspace_prefix(got) == *want,
                _ => true,
            };
            a.get("display_name").and_then(Value::as_str) == Some(name)
                && !is_deleted(a)
                && in_folder
        });
        Ok(found.and_then(|a| {
            let id = a.get("id")?.as_str()?.to_string();
            Some(Created { id, remote: a })
        }))
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = Value::Object(common::only_keys(remote, BODY_FIELDS));
        if let Some(p) = out.get("parent_path").and_then(Value::as_str) {
            out["parent_path"] = Value::String(without_workspace_prefix(p));
        }
        if let Some(Value::Object(e)) = out.get_mut("evaluation") {
            e.remove("state");
            e.remove("last_evaluated_at");
        }
        out
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("alertsv2")
    }
    /// The definition (all but what may sit next to a `file_path`), written
    /// to `<key>.dbalert.json` as the Databricks CLI writes it: the query as
    /// `query_lines`; the YAML keeps the name, warehouse and `file_path`.
    async fn generate_files(
        &self,
        _client: &Client,
        _remote: &Value,
        config: &mut Value,
        key: &str,
        source_from_yaml: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        let Value::Object(m) = config else {
            return Ok(vec![]);
        };
        let mut definition = serde_json::Map::new();
        for field in m
            .keys()
            .filter(|k| !WITH_FILE.contains(&k.as_str()))
            .cloned()
            .collect::<Vec<_>>()
        {
            let Some(value) = m.shift_remove(&field) else {
                continue;
            };
            match (field.as_str(), value) {
                ("query_text", Value::String(q)) => {
                    let lines = q.split('\n').map(|l| Value::String(l.into())).collect();
                    definition.insert("query_lines".into(), Value::Array(lines));
                }
                (_, value) => {
                    definition.insert(field, value);
                }
            }
        }
        let content = pretty_json(&Value::Object(definition));
        Ok(named_by_file_path(
            m,
            format!("{key}.dbalert.json"),
            content,
            source_from_yaml,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_shape_drops_evaluation_outputs() {
        let remote = json!({"id": "a1", "display_name": "A", "query_text": "select 1",
            "lifecycle_state": "ACTIVE", "owner_user_name": "me@x",
            "evaluation": {"comparison_operator": "GREATER_THAN", "source": {"name": "c"},
                           "state": "OK", "last_evaluated_at": "2026-01-01T00:00:00Z"},
            "parent_path": "/Workspace/Users/me"});
        assert_eq!(
            AlertKind.remote_to_config(&remote),
            json!({"display_name": "A", "query_text": "select 1", "parent_path": "/Users/me",
                   "evaluation": {"comparison_operator": "GREATER_THAN", "source": {"name": "c"}}})
        );
        assert!(is_deleted(&json!({"lifecycle_state": "DELETED"})));
    }

    #[test]
    fn a_dbalert_file_makes_the_alert() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.dbalert.json");
        std::fs::write(
            &file,
            r#"{"query_lines": ["SELECT 1", " as value"], "custom_description_lines": ["a", "b"],
                "schedule": {"quartz_cron_schedule": "0 0 9 * * ?", "timezone_id": "UTC"}}"#,
        )
        .expect("write");
        let cfg = json!({"display_name": "A", "file_path": file.display().to_string()});
        let out = with_file_definition(&cfg);
        assert_eq!(out["query_text"], "SELECT 1\n as value");
        assert_eq!(out["custom_description"], "a\nb");
        assert_eq!(out["schedule"]["timezone_id"], "UTC");
        assert_eq!(out["display_name"], "A");
    }
}
