//! `sql_warehouses`: Databricks SQL warehouses (contract part 2 §4). The id is
//! the server-assigned warehouse `id`; an edit is a full replace (`POST
//! .../edit`). A new warehouse starts itself; deploy waits until it runs, as
//! the CLI's `create_and_wait` does, then applies `lifecycle.started`
//! (`false` stops it, `true` starts a stopped one).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::common::{
    self, collect_outputs, get_if_exists, literal_str, poll_get, schema_enum, schema_struct,
    state_at, without_keys, LifecycleWithStarted, Poll,
};
use super::{
    Created, ExtraChanges, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::{Node, NodeKind};
use crate::diag::Diagnostics;

schema_enum! {
    /// Warehouse type (serverless needs `PRO`).
    WarehouseType { PRO, CLASSIC, TYPE_UNSPECIFIED }
}
schema_enum! {
    /// Spot instance policy.
    SpotInstancePolicy { COST_OPTIMIZED, RELIABILITY_OPTIMIZED, POLICY_UNSPECIFIED }
}
schema_enum! {
    /// Release channel.
    ChannelName { CHANNEL_NAME_CURRENT, CHANNEL_NAME_PREVIEW, CHANNEL_NAME_PREVIOUS, CHANNEL_NAME_CUSTOM, CHANNEL_NAME_UNSPECIFIED }
}
schema_enum! {
    /// Permission levels of SQL warehouses.
    WarehousePermissionLevel { CAN_MANAGE, IS_OWNER, CAN_USE, CAN_MONITOR, CAN_VIEW }
}

schema_struct! {
    /// Release channel of the warehouse.
    pub struct WarehouseChannel {
        /// Channel name.
        name: ChannelName,
        /// DBSQL version (custom channel only).
        dbsql_version: String,
    }
}
schema_struct! {
    /// One custom tag.
    pub struct WarehouseTag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    }
}
schema_struct! {
    /// Tags on the warehouse's cloud resources.
    pub struct WarehouseTags {
        /// Custom tags (fewer than 45).
        custom_tags: Vec<WarehouseTag>,
    }
}
schema_struct! {
    /// One grant on a SQL warehouse (applied through the Permissions API).
    #[schemars(extend("required" = ["level"]))]
    pub struct WarehousePermission {
        /// The permission level to grant.
        level: WarehousePermissionLevel,
        /// The user (email) receiving the level.
        user_name: String,
        /// The workspace group receiving the level.
        group_name: String,
        /// The service principal (application id) receiving the level.
        service_principal_name: String,
    }
}

schema_struct! {
    /// A Databricks SQL warehouse.
    #[schemars(extend("required" = ["name"]))]
    pub struct SqlWarehouse {
        /// Name of the warehouse (unique, fewer than 100 characters).
        name: String,
        /// Size of the clusters: 2X-Small, X-Small, Small, Medium, Large, X-Large, 2X-Large, 3X-Large, 4X-Large, 5X-Large.
        #[schemars(extend("enum" = ["2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large", "4X-Large", "5X-Large"]))]
        cluster_size: String,
        /// Fewest clusters (at least 1).
        #[schemars(range(min = 1))]
        min_num_clusters: i64,
        /// Most clusters (at least `min_num_clusters`, at most 40).
        #[schemars(range(min = 1, max = 40))]
        max_num_clusters: i64,
        /// Minutes idle before the warehouse stops itself: 0 = never, else at least 10.
        #[schemars(range(min = 0))]
        auto_stop_mins: i64,
        /// Use Photon.
        enable_photon: bool,
        /// Run on serverless compute (needs `warehouse_type: PRO`).
        enable_serverless_compute: bool,
        /// Warehouse type.
        warehouse_type: WarehouseType,
        /// Spot instance policy.
        spot_instance_policy: SpotInstancePolicy,
        /// Release channel.
        channel: WarehouseChannel,
        /// Custom tags.
        tags: WarehouseTags,
        /// Creator (set by the service).
        creator_name: String,
        /// Deprecated: instance profile.
        instance_profile_arn: String,
        /// Grants on the warehouse.
        permissions: Vec<WarehousePermission>,
        /// Deployment lifecycle settings; `started: false` keeps the warehouse stopped.
        lifecycle: LifecycleWithStarted,
    }
}

const API: &str = "/api/2.0/sql/warehouses";
const BUNDLE_ONLY: &[&str] = crate::resources::common::ENGINE_FIELDS;
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "state",
    "jdbc_url",
    "odbc_params.hostname",
    "odbc_params.path",
    "creator_name",
];

static RULES: FieldRules = FieldRules {
    immutable: &[],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "id",
        "state",
        "health",
        "num_clusters",
        "num_active_sessions",
        "jdbc_url",
        "odbc_params",
        "creator_name",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "SQL warehouse",
    plural: "SQL warehouses",
    title: "SQL warehouses",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::Put,
    state_fields: &["state"],
    ready_states: &["RUNNING", "STOPPED"],
    wait_text: "SQL warehouse to become RUNNING",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/sql/warehouses/{id}",
};

pub struct SqlWarehouseKind;

fn path_for(id: &str) -> String {
    format!("{API}/{id}")
}

fn body(config: &Value) -> Value {
    without_keys(config, BUNDLE_ONLY)
}

/// An integer scalar of the YAML.
fn node_int(node: &Node) -> Option<i64> {
    match node.kind {
        NodeKind::Int(i) => Some(i),
        _ => None,
    }
}

/// `lifecycle.started` of a config (None when unset).
/// A `lifecycle.started` that the warehouse's live state does not match is a
/// planned change of its own, even when no field changed.
fn started_change(desired: &Value, remote: Option<&Value>) -> ExtraChanges {
    let (Some(want), Some(remote)) = (started(desired), remote) else {
        return ExtraChanges::default();
    };
    let state = state_at(remote, "state");
    let is_on = matches!(state, "RUNNING" | "STARTING");
    let is_off = matches!(state, "STOPPED" | "STOPPING");
    if (want && is_off) || (!want && is_on) {
        ExtraChanges {
            fields: vec![crate::plan::FieldChange {
                path: "lifecycle.started".into(),
                old: Some(Value::Bool(!want)),
                new: Some(Value::Bool(want)),
                unknown: false,
                forces_replacement: false,
            }],
            drift: Vec::new(),
        }
    } else {
        ExtraChanges::default()
    }
}

fn started(config: &Value) -> Option<bool> {
    config
        .get("lifecycle")
        .and_then(|l| l.get("started"))
        .and_then(Value::as_bool)
}

/// Poll until the warehouse settles in one of `want`; DELETED fails.
async fn wait_for(
    client: &Client,
    id: &str,
    want: &'static [&'static str],
    timeout: Duration,
) -> Result<Value, ApiError> {
    poll_get(client, &path_for(id), timeout, |w| {
        let state = state_at(&w, "state").to_string();
        if want.contains(&state.as_str()) {
            Poll::Ready(w)
        } else if matches!(state.as_str(), "DELETED" | "DELETING") {
            Poll::Failed(format!("warehouse {id} is {state}"))
        } else {
            Poll::Pending(if state.is_empty() {
                "UNKNOWN".into()
            } else {
                state
            })
        }
    })
    .await
}

#[async_trait]
impl ResourceKind for SqlWarehouseKind {
    fn kind(&self) -> Kind {
        Kind::SqlWarehouses
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_sql_endpoint")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn extra_changes(
        &self,
        desired: &Value,
        applied: &Value,
        remote: Option<&Value>,
    ) -> ExtraChanges {
        let _ = applied;
        started_change(desired, remote)
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<SqlWarehouse>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<SqlWarehouse>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        if let Some(v) = node.get("auto_stop_mins") {
            if let Some(n) = node_int(v).filter(|n| *n > 0 && *n < 10) {
                diags.push(
                    crate::diag::Diag::error(format!(
                        "{addr}.auto_stop_mins is {n}: it must be 0 (never stop) or at least 10"
                    ))
                    .at(v.span, "too short")
                    .help("use 10 or more, or 0 to keep the warehouse running"),
                );
            }
        }
        let num = |f: &str| node.get(f).and_then(node_int);
        if let (Some(min), Some(max)) = (num("min_num_clusters"), num("max_num_clusters")) {
            if max < min {
                if let Some(v) = node.get("max_num_clusters") {
                    diags.push(
                        crate::diag::Diag::error(format!(
                            "{addr}.max_num_clusters ({max}) is below min_num_clusters ({min})"
                        ))
                        .at(v.span, "smaller than the minimum")
                        .help("raise max_num_clusters or lower min_num_clusters"),
                    );
                }
            }
        }
        let serverless = node
            .get("enable_serverless_compute")
            .is_some_and(|n| matches!(n.kind, NodeKind::Bool(true)));
        if let Some(t) = node.get("warehouse_type") {
            if serverless && t.as_str() == Some("CLASSIC") {
                diags.push(
                    crate::diag::Diag::error(format!(
                        "{addr}: serverless compute needs warehouse_type PRO"
                    ))
                    .at(t.span, "CLASSIC")
                    .help("set `warehouse_type: PRO` or drop `enable_serverless_compute`"),
                );
            }
        }
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, _config: &Value) -> Option<String> {
        None
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let resp = client
            .call(Method::POST, API, &[], Some(&body(config)))
            .await?;
        let id = resp
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Other {
                method: "POST".into(),
                path: API.into(),
                status: 200,
                error_code: "BAD_RESPONSE".into(),
                message: "the create response has no warehouse id".into(),
            })?
            .to_string();
        Ok(Created { id, remote: resp })
    }
    /// A deleted warehouse stays readable for a while as DELETING/DELETED: gone.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let got = get_if_exists(client, &path_for(id)).await?;
        Ok(got.filter(|w| !matches!(state_at(w, "state"), "DELETED" | "DELETING")))
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        let path = format!("{}/edit", path_for(id));
        client
            .call(Method::POST, &path, &[], Some(&body(config)))
            .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// Until the warehouse settles: RUNNING (a new or edited running one) or
    /// STOPPED (an edited stopped one).
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        wait_for(client, id, &["RUNNING", "STOPPED"], timeout).await
    }
    /// `lifecycle.started`: stop a running warehouse (`false`) or start a
    /// stopped one (`true`), and wait for it.
    async fn after_ready(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        ready: Value,
        timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Value, ApiError> {
        let state = state_at(&ready, "state");
        let (action, want): (&str, &'static [&'static str]) = match (started(config), state) {
            (Some(false), "RUNNING" | "STARTING") => ("stop", &["STOPPED"]),
            (Some(true), "STOPPED" | "STOPPING") => ("start", &["RUNNING"]),
            _ => return Ok(ready),
        };
        let path = format!("{}/{action}", path_for(id));
        progress(format!(
            "lifecycle.started: {} the warehouse",
            if action == "stop" {
                "stopping"
            } else {
                "starting"
            }
        ));
        client.call(Method::POST, &path, &[], None).await?;
        wait_for(client, id, want, timeout).await
    }
    /// After a lost create response: the live warehouse with this name (names are unique).
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(name) = literal_str(config, "name") else {
            return Ok(None);
        };
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("page_size", "1000".to_string())];
            if let Some(t) = &token {
                q.push(("page_token", t.clone()));
            }
            let page = client.call(Method::GET, API, &q, None).await?;
            let found = page
                .get("warehouses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|w| w.get("name").and_then(Value::as_str) == Some(name));
            if let Some(w) = found {
                let id = w.get("id").and_then(Value::as_str).unwrap_or_default();
                return Ok(Some(Created {
                    id: id.to_string(),
                    remote: w.clone(),
                }));
            }
            token = page
                .get("next_page_token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(None);
            }
        }
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        without_keys(remote, RULES.output_only)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("sql/warehouses")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn started_alone_is_a_planned_change_when_the_state_differs() {
        use serde_json::json;
        let on = json!({"lifecycle": {"started": true}});
        let off = json!({"lifecycle": {"started": false}});
        let running = json!({"state": "RUNNING"});
        let stopped = json!({"state": "STOPPED"});
        assert_eq!(started_change(&off, Some(&running)).fields.len(), 1);
        assert_eq!(
            started_change(&on, Some(&stopped)).fields[0].new,
            Some(json!(true))
        );
        assert!(started_change(&on, Some(&running)).fields.is_empty());
        assert!(started_change(&json!({}), Some(&running)).fields.is_empty());
        assert!(started_change(&off, None).fields.is_empty());
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn remote_shape_drops_outputs() {
        let remote = json!({"id": "w1", "name": "n", "state": "RUNNING", "cluster_size": "Small",
                            "odbc_params": {"hostname": "h", "path": "/p"}, "num_clusters": 1});
        assert_eq!(
            SqlWarehouseKind.remote_to_config(&remote),
            json!({"name": "n", "cluster_size": "Small"})
        );
        let out = SqlWarehouseKind.outputs("w1", &remote);
        assert_eq!(out["odbc_params"]["path"], "/p");
        assert_eq!(
            started(&json!({"lifecycle": {"started": false}})),
            Some(false)
        );
        assert_eq!(started(&json!({})), None);
    }
}
