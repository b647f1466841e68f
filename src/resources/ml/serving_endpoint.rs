//! `model_serving_endpoints`: a model serving endpoint (`/api/2.0/serving-endpoints`, contract
//! part 2 §6), id = `name`. Each part changes by its own call: the served entities and
//! traffic (`PUT …/config`), the AI gateway, tags, email notifications, telemetry and rate
//! limits; `description`, `route_optimized`, `budget_policy_id` and where auto-capture writes
//! are fixed at creation. A config change rolls out asynchronously: deploy waits for
//! `state.config_update` to leave `IN_PROGRESS`. Permissions address the endpoint by its
//! server-assigned `id` (the `endpoint_id` output). A served entity naming a bundle's
//! registered model (or legacy model) by its literal name depends on it.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::resources::common::{
    self, collect_outputs, literal_str, poll_get, schema_enum, schema_struct, state_at, Lifecycle,
    Poll,
};
use crate::resources::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};

schema_enum! {
    /// Permission levels of serving endpoints.
    ServingEndpointPermissionLevel { CAN_MANAGE, CAN_QUERY, CAN_VIEW }
}
schema_enum! {
    /// Compute type of a served entity.
    ServingWorkloadType {
        CPU, CPU_MEDIUM, CPU_LARGE, GPU_SMALL, GPU_MEDIUM, GPU_LARGE, GPU_XLARGE, GPU_XLARGE_8,
        MULTIGPU_MEDIUM
    }
}
schema_enum! {
    /// Who a rate limit counts calls for.
    RateLimitKey { user, endpoint }
}
schema_enum! {
    /// The window a rate limit counts calls in.
    RateLimitRenewalPeriod { minute }
}

schema_struct! {
    /// A model (or external model) the endpoint serves.
    pub struct ServedEntity {
        /// Name of this served entity in the endpoint (default `<model>-<version>`).
        name: String,
        /// The model: a Unity Catalog `catalog.schema.model` or a workspace registry model name.
        entity_name: String,
        /// Version of the model to serve.
        entity_version: String,
        /// An external model provider instead of a registered model.
        external_model: Map<String, Value>,
        /// Compute size: Small, Medium, Large (or a provisioned concurrency range).
        workload_size: String,
        /// Compute type.
        workload_type: ServingWorkloadType,
        /// Scale to zero when idle.
        scale_to_zero_enabled: bool,
        /// Environment variables of the serving container (secrets as `{{secrets/scope/key}}`).
        environment_vars: BTreeMap<String, String>,
        /// Instance profile for AWS resources.
        instance_profile_arn: String,
        /// Burst scaling for provisioned throughput.
        burst_scaling_enabled: bool,
        /// Provisioned throughput lower bound (tokens per second).
        min_provisioned_throughput: i64,
        /// Provisioned throughput upper bound (tokens per second).
        max_provisioned_throughput: i64,
        /// Provisioned concurrency lower bound.
        min_provisioned_concurrency: i64,
        /// Provisioned concurrency upper bound.
        max_provisioned_concurrency: i64,
        /// Provisioned model units.
        provisioned_model_units: i64,
    }
}

schema_struct! {
    /// A workspace registry model the endpoint serves (older form of `served_entities`).
    #[schemars(extend("required" = ["model_name", "model_version", "scale_to_zero_enabled"]))]
    pub struct ServedModel {
        /// Name of this served model in the endpoint.
        name: String,
        /// Registry model name.
        model_name: String,
        /// Model version.
        model_version: String,
        /// Compute size.
        workload_size: String,
        /// Compute type.
        workload_type: ServingWorkloadType,
        /// Scale to zero when idle.
        scale_to_zero_enabled: bool,
        /// Environment variables of the serving container.
        environment_vars: BTreeMap<String, String>,
        /// Instance profile for AWS resources.
        instance_profile_arn: String,
        /// Burst scaling for provisioned throughput.
        burst_scaling_enabled: bool,
        /// Provisioned throughput lower bound.
        min_provisioned_throughput: i64,
        /// Provisioned throughput upper bound.
        max_provisioned_throughput: i64,
        /// Provisioned concurrency lower bound.
        min_provisioned_concurrency: i64,
        /// Provisioned concurrency upper bound.
        max_provisioned_concurrency: i64,
        /// Provisioned model units.
        provisioned_model_units: i64,
    }
}

schema_struct! {
    /// Share of the traffic one served entity receives.
    #[schemars(extend("required" = ["traffic_percentage"]))]
    pub struct TrafficRoute {
        /// The served entity's `name`.
        served_entity_name: String,
        /// The served model's `name` (with `served_models`).
        served_model_name: String,
        /// Percent of the traffic (the routes add up to 100).
        traffic_percentage: i64,
    }
}

schema_struct! {
    /// How traffic splits between the served entities.
    pub struct TrafficConfig {
        /// The routes.
        routes: Vec<TrafficRoute>,
    }
}

schema_struct! {
    /// Inference tables: where requests and responses are logged.
    pub struct AutoCaptureConfig {
        /// Catalog of the inference table. Changing it replaces the endpoint.
        catalog_name: String,
        /// Schema of the inference table. Changing it replaces the endpoint.
        schema_name: String,
        /// Prefix of the inference table name. Changing it replaces the endpoint.
        table_name_prefix: String,
        /// Log requests and responses.
        enabled: bool,
    }
}

schema_struct! {
    /// The served entities and traffic of the endpoint.
    pub struct EndpointCoreConfig {
        /// The entities served.
        served_entities: Vec<ServedEntity>,
        /// The registry models served (older form; exclusive with `served_entities`).
        served_models: Vec<ServedModel>,
        /// Traffic split; all traffic to the only entity when unset.
        traffic_config: TrafficConfig,
        /// Inference table settings.
        auto_capture_config: AutoCaptureConfig,
    }
}

schema_struct! {
    /// One endpoint tag.
    #[schemars(extend("required" = ["key"]))]
    pub struct EndpointTag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    }
}

schema_struct! {
    /// A limit on calls to the endpoint.
    #[schemars(extend("required" = ["calls", "renewal_period"]))]
    pub struct RateLimit {
        /// Calls allowed per period.
        calls: i64,
        /// Per user or for the whole endpoint.
        key: RateLimitKey,
        /// The counting window.
        renewal_period: RateLimitRenewalPeriod,
    }
}

schema_struct! {
    /// Who is mailed when a config update ends.
    pub struct EmailNotifications {
        /// Addresses mailed when an update fails.
        on_update_failure: Vec<String>,
        /// Addresses mailed when an update succeeds.
        on_update_success: Vec<String>,
    }
}

schema_struct! {
    /// A grant on the endpoint.
    #[schemars(extend("required" = ["level"]))]
    pub struct ServingEndpointPermission {
        /// Permission level.
        level: ServingEndpointPermissionLevel,
        /// User to grant.
        user_name: String,
        /// Group to grant.
        group_name: String,
        /// Service principal (application id) to grant.
        service_principal_name: String,
    }
}

schema_struct! {
    /// A model serving endpoint.
    #[schemars(extend("required" = ["name"]))]
    pub struct ModelServingEndpoint {
        /// Name of the endpoint, unique in the workspace. Changing it replaces the endpoint.
        name: String,
        /// What the endpoint serves.
        config: EndpointCoreConfig,
        /// AI gateway settings (guardrails, usage tracking, inference tables, rate limits).
        ai_gateway: Map<String, Value>,
        /// Tags on the endpoint.
        tags: Vec<EndpointTag>,
        /// Mail on config update results.
        email_notifications: EmailNotifications,
        /// Telemetry settings.
        telemetry_config: Map<String, Value>,
        /// Rate limits (the AI gateway's are the newer form).
        rate_limits: Vec<RateLimit>,
        /// Route-optimized serving. Changing it replaces the endpoint.
        route_optimized: bool,
        /// Budget policy of the endpoint. Changing it replaces the endpoint.
        budget_policy_id: String,
        /// Description. Changing it replaces the endpoint.
        description: String,
        /// Grants on the endpoint.
        permissions: Vec<ServingEndpointPermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/serving-endpoints";
const BUNDLE_ONLY: &[&str] = crate::resources::common::ENGINE_FIELDS;
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "endpoint_id",
    "name",
    "creator",
    "creation_timestamp",
    "last_updated_timestamp",
    "state.ready",
    "state.config_update",
];
const CONFIG_FIELDS: &[&str] = &[
    "name",
    "config",
    "ai_gateway",
    "tags",
    "email_notifications",
    "telemetry_config",
    "rate_limits",
    "route_optimized",
    "budget_policy_id",
    "description",
];
/// The parts of `config` a config update takes.
const CORE_FIELDS: &[&str] = &[
    "served_entities",
    "served_models",
    "traffic_config",
    "auto_capture_config",
];

static RULES: FieldRules = FieldRules {
    immutable: &[
        "name",
        "description",
        "route_optimized",
        "budget_policy_id",
        "config.auto_capture_config.catalog_name",
        "config.auto_capture_config.schema_name",
        "config.auto_capture_config.table_name_prefix",
    ],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "endpoint_id",
        "creator",
        "creation_timestamp",
        "last_updated_timestamp",
        "state",
        "pending_config",
        "permission_level",
        "task",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "model serving endpoint",
    plural: "model serving endpoints",
    title: "Model serving endpoints",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    state_fields: &["state.config_update"],
    ready_states: &["NOT_UPDATING"],
    wait_text: "serving endpoint config update to finish",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    // The CLI refuses a run_as other than the deployer with serving endpoints.
    run_as: RunAs::OwnIdentity,
    database_access: false,
    workspace_limit: None,
    ui_path: "/ml/endpoints/{id}",
};

pub struct ServingEndpointKind;

fn path_for(name: &str) -> String {
    format!("{API}/{name}")
}

/// The endpoint as read, with its permissions id also as `endpoint_id`.
fn with_endpoint_id(mut remote: Value) -> Value {
    if let Some(id) = remote.get("id").cloned() {
        remote["endpoint_id"] = id;
    }
    remote
}

/// Poll until no config update is running; a failed or canceled update fails.
async fn wait_settled(client: &Client, name: &str, timeout: Duration) -> Result<Value, ApiError> {
    poll_get(client, &path_for(name), timeout, |e| {
        match state_at(&e, "state.config_update") {
            "NOT_UPDATING" | "" => Poll::Ready(with_endpoint_id(e)),
            s @ ("UPDATE_FAILED" | "UPDATE_CANCELED") => Poll::Failed(format!(
                "the config update of serving endpoint {name} ended {s}"
            )),
            s => Poll::Pending(s.to_string()),
        }
    })
    .await
}

fn tags_of(v: &Value) -> Vec<(String, Value)> {
    v.get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let key = t.get("key")?.as_str()?.to_string();
            Some((key, t.get("value").cloned().unwrap_or(Value::Null)))
        })
        .collect()
}

/// The `{add_tags, delete_tags}` that turn `current` into `want`.
fn tag_patch(want: &Value, current: &Value) -> Value {
    let want = tags_of(want);
    let current = tags_of(current);
    let add: Vec<Value> = want
        .iter()
        .filter(|t| !current.contains(t))
        .map(|(k, v)| match v {
            Value::Null => json!({"key": k}),
            v => json!({"key": k, "value": v}),
        })
        .collect();
    let delete: Vec<&String> = current
        .iter()
        .filter(|(k, _)| !want.iter().any(|(w, _)| w == k))
        .map(|(k, _)| k)
        .collect();
    json!({"add_tags": add, "delete_tags": delete})
}

/// How long one part's update may wait for a running config update to end first.
const SETTLE: Duration = Duration::from_secs(35 * 60);

#[async_trait]
impl ResourceKind for ServingEndpointKind {
    fn kind(&self) -> Kind {
        Kind::ModelServingEndpoints
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_model_serving")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<ModelServingEndpoint>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<ModelServingEndpoint>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        let Some(config) = node.get("config") else {
            return;
        };
        if let (Some(_), Some(models)) =
            (config.get("served_entities"), config.get("served_models"))
        {
            diags.push(
                Diag::error(format!(
                    "{addr}.config sets both served_entities and served_models"
                ))
                .at(models.span, "served_models here")
                .help("move the served models into `served_entities` (entity_name, entity_version); the two cannot be combined"),
            );
        }
    }
    /// Served models by literal name: a Unity Catalog `catalog.schema.model` links to a bundle
    /// registered model, a plain name to a bundle (legacy) model; inference tables link to
    /// their catalog and schema.
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let mut links = Vec::new();
        let core = config.get("config");
        let entities = core
            .and_then(|c| c.get("served_entities"))
            .and_then(Value::as_array);
        for (i, e) in entities.into_iter().flatten().enumerate() {
            let Some(name) = literal_str(e, "entity_name") else {
                continue;
            };
            let (target_kind, name) = if name.split('.').count() == 3 {
                (Kind::RegisteredModels, name.to_lowercase())
            } else {
                (Kind::Models, name.to_string())
            };
            links.push(NameLink {
                field: format!("config.served_entities[{i}].entity_name"),
                target_kind,
                name,
            });
        }
        let models = core
            .and_then(|c| c.get("served_models"))
            .and_then(Value::as_array);
        for (i, m) in models.into_iter().flatten().enumerate() {
            if let Some(name) = literal_str(m, "model_name") {
                links.push(NameLink {
                    field: format!("config.served_models[{i}].model_name"),
                    target_kind: Kind::Models,
                    name: name.to_string(),
                });
            }
        }
        if let Some(capture) = core.and_then(|c| c.get("auto_capture_config")) {
            for (field, kind) in [
                ("catalog_name", Kind::Catalogs),
                ("schema_name", Kind::Schemas),
            ] {
                if let Some(name) = literal_str(capture, field) {
                    links.push(NameLink {
                        field: format!("config.auto_capture_config.{field}"),
                        target_kind: kind,
                        name: name.to_string(),
                    });
                }
            }
        }
        links
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let body = Value::Object(common::only_keys(config, CONFIG_FIELDS));
        let remote = client.call(Method::POST, API, &[], Some(&body)).await?;
        Ok(common::created_by_name(config, with_endpoint_id(remote)))
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        Ok(common::get_if_exists(client, &path_for(id))
            .await?
            .map(with_endpoint_id))
    }
    /// Part by part, each after any running config update has ended (the service refuses
    /// a second update meanwhile).
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let has = |f: &str| changed.iter().any(|c| c == f);
        let path = path_for(id);
        let current = wait_settled(client, id, SETTLE).await?;
        if has("config") {
            let core = config.get("config").cloned().unwrap_or(json!({}));
            let body = Value::Object(common::only_keys(&core, CORE_FIELDS));
            client
                .call(Method::PUT, &format!("{path}/config"), &[], Some(&body))
                .await?;
            wait_settled(client, id, SETTLE).await?;
        }
        if has("ai_gateway") {
            let body = config.get("ai_gateway").cloned().unwrap_or(json!({}));
            client
                .call(Method::PUT, &format!("{path}/ai-gateway"), &[], Some(&body))
                .await?;
        }
        if has("tags") {
            let body = tag_patch(config, &current);
            client
                .call(Method::PATCH, &format!("{path}/tags"), &[], Some(&body))
                .await?;
        }
        if has("email_notifications") {
            let n = config
                .get("email_notifications")
                .cloned()
                .unwrap_or(json!({}));
            let body = json!({"email_notifications": n});
            client
                .call(
                    Method::PATCH,
                    &format!("{path}/notifications"),
                    &[],
                    Some(&body),
                )
                .await?;
        }
        if has("telemetry_config") {
            let t = config.get("telemetry_config").cloned().unwrap_or(json!({}));
            let body = json!({"telemetry_config": t});
            client
                .call(
                    Method::PATCH,
                    &format!("{path}/telemetry-config"),
                    &[],
                    Some(&body),
                )
                .await?;
        }
        if has("rate_limits") {
            let r = config.get("rate_limits").cloned().unwrap_or(json!([]));
            let body = json!({"rate_limits": r});
            client
                .call(
                    Method::PUT,
                    &format!("{path}/rate-limits"),
                    &[],
                    Some(&body),
                )
                .await?;
        }
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// Until the config update (of a create or update) has rolled out.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        wait_settled(client, id, timeout).await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        common::find_by_name(self, client, config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = common::only_keys(remote, CONFIG_FIELDS);
        // The served config as it is now (a rollout in progress shows in `pending_config`).
        if let Some(core) = out.get_mut("config") {
            *core = Value::Object(common::only_keys(core, CORE_FIELDS));
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// Unknown keys (warned about at validate) are dropped, as the CLI does.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        super::known_fields(config, CONFIG_FIELDS, BUNDLE_ONLY)
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("serving-endpoints")
    }
    /// The endpoint's `id` (the `endpoint_id` output), not its name.
    fn permissions_object_id_of(&self, id: &str, known: &Value) -> String {
        known
            .get("endpoint_id")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_entities_link_to_models_by_literal_name() {
        let cfg = json!({"name": "e", "config": {
            "served_entities": [{"entity_name": "main.ml.Churn", "entity_version": "1"},
                                {"entity_name": "legacy", "entity_version": "2"},
                                {"entity_name": "${resources.registered_models.m.id}"}],
            "auto_capture_config": {"catalog_name": "main", "schema_name": "logs"}}});
        let links: Vec<(Kind, String)> = ServingEndpointKind
            .name_links(&cfg)
            .into_iter()
            .map(|l| (l.target_kind, l.name))
            .collect();
        assert_eq!(
            links,
            vec![
                (Kind::RegisteredModels, "main.ml.churn".into()),
                (Kind::Models, "legacy".into()),
                (Kind::Catalogs, "main".into()),
                (Kind::Schemas, "logs".into()),
            ]
        );
    }

    #[test]
    fn tag_patch_adds_changed_and_deletes_dropped() {
        let want = json!({"tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "3"}]});
        let current = json!({"tags": [{"key": "b", "value": "2"}, {"key": "c", "value": "x"}]});
        assert_eq!(
            tag_patch(&want, &current),
            json!({"add_tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "3"}],
                   "delete_tags": ["c"]})
        );
    }

    #[test]
    fn permissions_address_the_endpoint_id() {
        let remote = with_endpoint_id(json!({"id": "0a1b", "name": "e"}));
        let outputs = ServingEndpointKind.outputs("e", &remote);
        assert_eq!(
            ServingEndpointKind.permissions_object_id_of("e", &outputs),
            "0a1b"
        );
    }
}
