//! `quality_monitors`: Lakehouse monitoring monitors
//! (`/api/2.1/unity-catalog/tables/{table_name}/monitor`, contract part 2 §6), id = the
//! monitored table's `table_name`.
//!
//! An update is a PUT of the whole monitor. `table_name` and `assets_dir` are immutable (a
//! change recreates the monitor); `warehouse_id` and `skip_builtin_dashboard` are read at
//! create only, so they are compared with the last applied value and a change recreates it.
//! `output_schema_name` and the table's own schema link to bundle schemas. The CLI does not
//! wait for a new monitor to become ACTIVE, nor does lakebundle.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::common::{self, collect_outputs, literal_str, schema_enum, schema_struct, Lifecycle};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// Whether the refresh schedule runs.
    MonitorPauseStatus { UNSPECIFIED, UNPAUSED, PAUSED }
}
schema_enum! {
    /// What the model predicts.
    MonitorProblemType { PROBLEM_TYPE_CLASSIFICATION, PROBLEM_TYPE_REGRESSION }
}
schema_enum! {
    /// How a custom metric is computed.
    MonitorMetricType { CUSTOM_METRIC_TYPE_AGGREGATE, CUSTOM_METRIC_TYPE_DERIVED, CUSTOM_METRIC_TYPE_DRIFT }
}

schema_struct! {
    /// Refresh schedule.
    #[schemars(extend("required" = ["quartz_cron_expression", "timezone_id"]))]
    pub struct MonitorCronSchedule {
        /// Quartz cron expression.
        quartz_cron_expression: String,
        /// Java time zone id.
        timezone_id: String,
        /// Whether the schedule is paused.
        pause_status: MonitorPauseStatus,
    }
}
schema_struct! {
    /// A snapshot profile (no settings).
    pub struct MonitorSnapshot {}
}
schema_struct! {
    /// A time series profile.
    #[schemars(extend("required" = ["granularities", "timestamp_col"]))]
    pub struct MonitorTimeSeries {
        /// Window sizes (`1 day`, `1 week`, ...).
        granularities: Vec<String>,
        /// The timestamp column.
        timestamp_col: String,
    }
}
schema_struct! {
    /// An inference log profile.
    #[schemars(extend("required" = ["granularities", "model_id_col", "prediction_col", "problem_type", "timestamp_col"]))]
    pub struct MonitorInferenceLog {
        /// Window sizes.
        granularities: Vec<String>,
        /// The model id column.
        model_id_col: String,
        /// The prediction column.
        prediction_col: String,
        /// The prediction probability column.
        prediction_proba_col: String,
        /// The ground truth column.
        label_col: String,
        /// Classification or regression.
        problem_type: MonitorProblemType,
        /// The timestamp column.
        timestamp_col: String,
    }
}
schema_struct! {
    /// A custom metric.
    #[schemars(extend("required" = ["definition", "input_columns", "name", "output_data_type", "type"]))]
    pub struct MonitorMetric {
        /// SQL expression of the metric.
        definition: String,
        /// Columns it is computed on.
        input_columns: Vec<String>,
        /// Metric name.
        name: String,
        /// Spark type of the output (JSON text).
        output_data_type: String,
        /// How it is computed.
        #[serde(rename = "type")]
        metric_type: MonitorMetricType,
    }
}
schema_struct! {
    /// Email recipients.
    pub struct MonitorDestination {
        /// Email addresses.
        email_addresses: Vec<String>,
    }
}
schema_struct! {
    /// Notifications.
    pub struct MonitorNotifications {
        /// When a refresh fails.
        on_failure: MonitorDestination,
        /// When a new classification tag is found.
        on_new_classification_tag_detected: MonitorDestination,
    }
}
schema_struct! {
    /// Data classification.
    pub struct MonitorDataClassificationConfig {
        /// Classify the table's columns.
        enabled: bool,
    }
}

schema_struct! {
    /// A data quality monitor on a Unity Catalog table.
    #[schemars(extend("required" = ["table_name", "assets_dir", "output_schema_name"]))]
    pub struct QualityMonitor {
        /// The monitored table, `catalog.schema.table`. Changing it replaces the monitor.
        table_name: String,
        /// Workspace folder of the monitor's assets (dashboard). Changing it replaces the
        /// monitor.
        assets_dir: String,
        /// Schema (`catalog.schema`) of the metric tables; a bundle schema of that name links.
        output_schema_name: String,
        /// Table of baseline values to compare with.
        baseline_table_name: String,
        /// Snapshot profile (set exactly one of snapshot, time_series, inference_log).
        snapshot: MonitorSnapshot,
        /// Time series profile.
        time_series: MonitorTimeSeries,
        /// Inference log profile.
        inference_log: MonitorInferenceLog,
        /// Refresh schedule.
        schedule: MonitorCronSchedule,
        /// Expressions to slice the data by.
        slicing_exprs: Vec<String>,
        /// Custom metrics.
        custom_metrics: Vec<MonitorMetric>,
        /// Notifications.
        notifications: MonitorNotifications,
        /// Data classification.
        data_classification_config: MonitorDataClassificationConfig,
        /// The warehouse that builds the dashboard (read at create only; a change recreates).
        warehouse_id: String,
        /// Make no dashboard (read at create only; a change recreates).
        skip_builtin_dashboard: bool,
        /// Set by the service.
        latest_monitor_failure_msg: String,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.1/unity-catalog/tables";
const PROFILES: [&str; 3] = ["snapshot", "time_series", "inference_log"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "table_name",
    "status",
    "monitor_version",
    "dashboard_id",
    "profile_metrics_table_name",
    "drift_metrics_table_name",
    "output_schema_name",
    "assets_dir",
];
/// Fields the PUT accepts.
const UPDATABLE: &[&str] = &[
    "output_schema_name",
    "baseline_table_name",
    "snapshot",
    "time_series",
    "inference_log",
    "schedule",
    "slicing_exprs",
    "custom_metrics",
    "notifications",
    "data_classification_config",
];
/// Fields only the create reads (besides the updatable ones).
const CREATE_ONLY: &[&str] = &["assets_dir", "warehouse_id", "skip_builtin_dashboard"];

static RULES: FieldRules = FieldRules {
    immutable: &[
        "table_name",
        "assets_dir",
        "warehouse_id",
        "skip_builtin_dashboard",
    ],
    replace_on_any_change: false,
    input_only: &[("warehouse_id", ""), ("skip_builtin_dashboard", "")],
    output_only: &[
        "status",
        "monitor_version",
        "dashboard_id",
        "profile_metrics_table_name",
        "drift_metrics_table_name",
        "latest_monitor_failure_msg",
    ],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "quality monitor",
    plural: "quality monitors",
    title: "Quality monitors",
    id_scheme: IdScheme::FullName,
    update: UpdateStyle::Put,
    state_fields: &[],
    ready_states: &[],
    wait_text: "quality monitor",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    // The CLI refuses a run_as other than the deployer for monitors.
    run_as: RunAs::OwnIdentity,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/data/{id_path}",
};

pub struct QualityMonitorKind;

fn path_for(table: &str) -> String {
    format!("{BASE}/{table}/monitor")
}

fn body(config: &Value, with_create_only: bool) -> Value {
    let mut m = common::only_keys(config, UPDATABLE);
    if with_create_only {
        m.extend(common::only_keys(config, CREATE_ONLY));
    }
    Value::Object(m)
}

/// `catalog.schema` of a `catalog.schema.table`.
fn schema_of(table: &str) -> Option<&str> {
    let (schema, _) = table.rsplit_once('.')?;
    schema.contains('.').then_some(schema)
}

/// Exactly one profile type; a three-level table name.
fn check_monitor(addr: &str, node: &Node, diags: &mut Diagnostics) {
    let set: Vec<(&str, &Node)> = PROFILES
        .iter()
        .filter_map(|p| node.get(p).map(|n| (*p, n)))
        .collect();
    match set.as_slice() {
        [] => diags.push(
            Diag::error(format!("{addr} sets no profile type"))
                .at(node.span, "this monitor")
                .help("set one of `snapshot: {}`, `time_series` or `inference_log`"),
        ),
        [_] => {}
        [(first, _), rest @ ..] => {
            for (name, n) in rest {
                diags.push(
                    Diag::error(format!(
                        "{addr} sets both {first} and {name}; a monitor has one profile type"
                    ))
                    .at(n.span, "a second profile type")
                    .help("keep one of `snapshot`, `time_series`, `inference_log`"),
                );
            }
        }
    }
    if let Some(t) = node.get("table_name") {
        if let Some(name) = t.as_str().filter(|s| !common::has_interpolation(s)) {
            if name.split('.').count() != 3 || name.split('.').any(str::is_empty) {
                diags.push(
                    Diag::error(format!(
                        "{addr}.table_name {name:?} is not a three-level name"
                    ))
                    .at(t.span, "not catalog.schema.table")
                    .help("write the table as `catalog.schema.table`"),
                );
            }
        }
    }
}

#[async_trait]
impl ResourceKind for QualityMonitorKind {
    fn kind(&self) -> Kind {
        Kind::QualityMonitors
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_quality_monitor")
    }
    fn terraform_id_attribute(&self) -> &'static str {
        "table_name"
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<QualityMonitor>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<QualityMonitor>(self.kind(), key, node, diags);
        check_monitor(&addr, node, diags);
    }
    /// The output schema, and the monitored table's schema, when the bundle
    /// makes them (schemas link by `catalog.schema`).
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let mut links = Vec::new();
        if let Some(s) = literal_str(config, "output_schema_name") {
            links.push(NameLink {
                field: "output_schema_name".into(),
                target_kind: Kind::Schemas,
                name: s.to_lowercase(),
            });
        }
        if let Some(s) = literal_str(config, "table_name").and_then(schema_of) {
            let s = s.to_lowercase();
            if !links.iter().any(|l| l.name == s) {
                links.push(NameLink {
                    field: "table_name".into(),
                    target_kind: Kind::Schemas,
                    name: s,
                });
            }
        }
        links
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "table_name").map(str::to_lowercase)
    }
    /// Table and schema names lower-cased, as Unity Catalog reads them back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        let mut out = config.clone();
        for f in ["table_name", "output_schema_name", "baseline_table_name"] {
            if let Some(v) = literal_str(config, f) {
                out[f] = Value::String(v.to_lowercase());
            }
        }
        out
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let table = literal_str(config, "table_name").ok_or_else(|| ApiError::Other {
            method: "POST".into(),
            path: BASE.into(),
            status: 0,
            error_code: "NO_TABLE".into(),
            message: "the monitor has no table_name".into(),
        })?;
        let remote = client
            .call(
                Method::POST,
                &path_for(table),
                &[],
                Some(&body(config, true)),
            )
            .await?;
        Ok(Created {
            id: table.to_lowercase(),
            remote,
        })
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let got = common::get_if_exists(client, &path_for(id)).await?;
        Ok(got.filter(|m| {
            m.get("status").and_then(Value::as_str) != Some("MONITOR_STATUS_DELETE_PENDING")
        }))
    }
    /// PUT of every updatable field (`output_schema_name` always included).
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        client
            .call(Method::PUT, &path_for(id), &[], Some(&body(config, false)))
            .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// No wait for ACTIVE (the CLI does not wait either): ready once readable.
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
        let Some(table) = literal_str(config, "table_name") else {
            return Ok(None);
        };
        Ok(self.read(client, table).await?.map(|remote| Created {
            id: table.to_string(),
            remote,
        }))
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut keys: Vec<&str> = UPDATABLE.to_vec();
        keys.extend(["table_name", "assets_dir"]);
        Value::Object(common::only_keys(remote, &keys))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn links_to_output_and_table_schemas() {
        let cfg = json!({"table_name": "main.raw.events", "output_schema_name": "main.metrics"});
        let names: Vec<String> = QualityMonitorKind
            .name_links(&cfg)
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, vec!["main.metrics", "main.raw"]);
        assert_eq!(schema_of("a.b.c"), Some("a.b"));
        assert_eq!(schema_of("b.c"), None);
        let b = body(
            &json!({"table_name": "a.b.c", "assets_dir": "/x", "warehouse_id": "w",
                    "output_schema_name": "a.m", "snapshot": {}}),
            false,
        );
        assert_eq!(b, json!({"output_schema_name": "a.m", "snapshot": {}}));
    }
}
