//! `vector_search_endpoints`: vector search endpoints (`/api/2.0/vector-search/endpoints`,
//! contract part 2 §6), id = `name`. Deploy waits until the endpoint is ONLINE. Updates go
//! by part (`target_qps`, the budget policy); `endpoint_type` and `usage_policy_id` cannot
//! change, so a change there replaces the endpoint. The Permissions API addresses the
//! endpoint by its uuid `id`, which only the service knows: the kind applies its
//! `permissions` itself after reading that id.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::common::{
    self, collect_outputs, literal_str, poll_get, schema_enum, schema_struct, state_at, Lifecycle,
    Poll,
};
use super::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs, RunStyle,
    UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::Diagnostics;

schema_enum! {
    /// Type of a vector search endpoint.
    VectorSearchEndpointType { STANDARD, STORAGE_OPTIMIZED }
}
schema_enum! {
    /// Permission levels of vector search endpoints.
    VectorSearchEndpointPermissionLevel { CAN_CREATE, CAN_MANAGE, CAN_USE }
}

schema_struct! {
    /// One grant on a vector search endpoint (applied through the Permissions API).
    #[schemars(extend("required" = ["level"]))]
    pub struct VectorSearchEndpointPermission {
        /// The permission level to grant.
        level: VectorSearchEndpointPermissionLevel,
        /// The user (email) receiving the level. Set exactly one principal.
        user_name: String,
        /// The workspace group receiving the level.
        group_name: String,
        /// The service principal (application id) receiving the level.
        service_principal_name: String,
    }
}

schema_struct! {
    /// A vector search endpoint serving indexes.
    #[schemars(extend("required" = ["name", "endpoint_type"]))]
    pub struct VectorSearchEndpoint {
        /// Name of the endpoint (its id).
        name: String,
        /// Type of the endpoint. Changing it replaces the endpoint.
        endpoint_type: VectorSearchEndpointType,
        /// Budget policy applied to the endpoint.
        budget_policy_id: String,
        /// Target queries per second.
        #[schemars(range(min = 1))]
        target_qps: i64,
        /// Usage policy applied to the endpoint. Changing it replaces the endpoint.
        usage_policy_id: String,
        /// Grants on the endpoint.
        permissions: Vec<VectorSearchEndpointPermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/vector-search/endpoints";
const BUNDLE_ONLY: &[&str] = crate::resources::common::ENGINE_FIELDS;
const CONFIG_FIELDS: &[&str] = &[
    "name",
    "endpoint_type",
    "budget_policy_id",
    "target_qps",
    "usage_policy_id",
];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "endpoint_id",
    "endpoint_type",
    "endpoint_status.state",
    "creator",
    "effective_budget_policy_id",
];
const PERMISSIONS_TYPE: &str = "vector-search-endpoints";

static RULES: FieldRules = FieldRules {
    immutable: &["endpoint_type", "usage_policy_id"],
    replace_on_any_change: false,
    // The policy the endpoint runs under reads back as its effective twin.
    input_only: &[("budget_policy_id", "effective_budget_policy_id")],
    output_only: &[
        "id",
        "endpoint_status",
        "creator",
        "creation_timestamp",
        "last_updated_timestamp",
        "last_updated_user",
        "num_indexes",
        "effective_budget_policy_id",
        "custom_tags",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "vector search endpoint",
    plural: "vector search endpoints",
    title: "Vector Search Endpoints",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    state_fields: &["endpoint_status.state"],
    ready_states: &["ONLINE"],
    wait_text: "vector search endpoint to become ONLINE",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/compute/vector-search/{id}",
};

pub struct VectorSearchEndpointKind;

fn path_for(name: &str) -> String {
    format!("{API}/{name}")
}

#[async_trait]
impl ResourceKind for VectorSearchEndpointKind {
    fn kind(&self) -> Kind {
        Kind::VectorSearchEndpoints
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_vector_search_endpoint")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<VectorSearchEndpoint>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<VectorSearchEndpoint>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let b = common::without_keys(config, BUNDLE_ONLY);
        common::create_by_name(client, API, config, &b).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let got = common::get_if_exists(client, &path_for(id)).await?;
        Ok(got.filter(|e| state_at(e, "endpoint_status.state") != "DELETED"))
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        if changed.iter().any(|c| c == "target_qps") {
            let qps = config.get("target_qps").cloned().unwrap_or(Value::Null);
            client
                .call(
                    Method::PATCH,
                    &path_for(id),
                    &[],
                    Some(&json!({"target_qps": qps})),
                )
                .await?;
        }
        if changed.iter().any(|c| c == "budget_policy_id") {
            let policy = config
                .get("budget_policy_id")
                .cloned()
                .unwrap_or(Value::Null);
            client
                .call(
                    Method::PATCH,
                    &format!("{}/budget-policy", path_for(id)),
                    &[],
                    Some(&json!({"budget_policy_id": policy})),
                )
                .await?;
        }
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// Until ONLINE; OFFLINE fails.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        poll_get(client, &path_for(id), timeout, |e| {
            let state = state_at(&e, "endpoint_status.state").to_string();
            match state.as_str() {
                "ONLINE" => Poll::Ready(e),
                "OFFLINE" | "DELETED" => {
                    let why = state_at(&e, "endpoint_status.message");
                    Poll::Failed(format!("endpoint {id} is {state}: {why}"))
                }
                "" => Poll::Pending("UNKNOWN".into()),
                _ => Poll::Pending(state),
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
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    /// `endpoint_id` is the uuid the Permissions API addresses the endpoint by.
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        let mut out = collect_outputs(id, remote, OUTPUT_FIELDS);
        if let Some(uuid) = remote.get("id") {
            out["endpoint_id"] = uuid.clone();
        }
        out
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some(PERMISSIONS_TYPE)
    }
    /// The Permissions API addresses the endpoint by its uuid: the
    /// `endpoint_id` output, or the `id` of the endpoint as read (the
    /// resource id is its name).
    fn permissions_object_id_of(&self, id: &str, known: &Value) -> String {
        known
            .get("endpoint_id")
            .or_else(|| known.get("id").filter(|u| u.as_str() != Some(id)))
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_address_the_uuid() {
        let k = VectorSearchEndpointKind;
        // Recorded outputs (whose `id` is the name) and the endpoint as read.
        let outputs = json!({"id": "vs", "endpoint_id": "3f2a"});
        assert_eq!(k.permissions_object_id_of("vs", &outputs), "3f2a");
        let read = json!({"name": "vs", "id": "3f2a"});
        assert_eq!(k.permissions_object_id_of("vs", &read), "3f2a");
        assert_eq!(k.permissions_object_id_of("vs", &json!({"id": "vs"})), "vs");
    }

    #[test]
    fn outputs_carry_the_permission_uuid() {
        let remote = json!({"name": "vs", "id": "3f2a", "endpoint_type": "STANDARD",
                            "endpoint_status": {"state": "ONLINE"}});
        let out = VectorSearchEndpointKind.outputs("vs", &remote);
        assert_eq!(out["id"], "vs");
        assert_eq!(out["endpoint_id"], "3f2a");
        assert_eq!(
            VectorSearchEndpointKind.remote_to_config(&remote),
            json!({"name": "vs", "endpoint_type": "STANDARD"})
        );
    }
}
