//! `instance_pools`: pools of idle instances clusters start from (`/api/2.0/instance-pools`,
//! contract part 2 §6). The id is the server-assigned `instance_pool_id`. An edit sends the
//! full set of editable fields; `disk_spec`, `node_type_flexibility`, the preloaded runtimes
//! and images and the cloud attributes cannot change, so a change there replaces the pool.
//! Creation is synchronous. The service fills `enable_elastic_disk: true` and a 60-minute
//! idle autotermination when unset: remote extras, never drift.

use std::time::Duration;

use async_trait::async_trait;
use indexmap::IndexMap;
use serde_json::{json, Value};

use super::common::{
    self, collect_outputs, literal_str, schema_enum, schema_struct, state_at, Lifecycle,
};
use super::job::compute::{DockerImage, NodeTypeFlexibility};
use super::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs, RunStyle,
    UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// Permission levels of instance pools.
    InstancePoolPermissionLevel { CAN_MANAGE, CAN_ATTACH_TO }
}
schema_enum! {
    /// EBS volume type of the pool's disks.
    PoolEbsVolumeType { GENERAL_PURPOSE_SSD, THROUGHPUT_OPTIMIZED_HDD }
}
schema_enum! {
    /// Azure disk type of the pool's disks.
    PoolAzureDiskVolumeType { PREMIUM_LRS, STANDARD_LRS }
}
schema_enum! {
    /// AWS availability of the pool's instances.
    PoolAwsAvailability { SPOT, ON_DEMAND }
}
schema_enum! {
    /// Azure availability of the pool's instances.
    PoolAzureAvailability { SPOT_AZURE, ON_DEMAND_AZURE }
}
schema_enum! {
    /// GCP availability of the pool's instances.
    PoolGcpAvailability { PREEMPTIBLE_GCP, ON_DEMAND_GCP, PREEMPTIBLE_WITH_FALLBACK_GCP }
}

schema_struct! {
    /// One grant on an instance pool (applied through the Permissions API).
    #[schemars(extend("required" = ["level"]))]
    pub struct InstancePoolPermission {
        /// The permission level to grant.
        level: InstancePoolPermissionLevel,
        /// The user (email) receiving the level. Set exactly one principal.
        user_name: String,
        /// The workspace group receiving the level.
        group_name: String,
        /// The service principal (application id) receiving the level.
        service_principal_name: String,
    }
}
schema_struct! {
    /// Disk type of the pool's instances.
    pub struct PoolDiskType {
        /// Azure disk type.
        azure_disk_volume_type: PoolAzureDiskVolumeType,
        /// EBS volume type.
        ebs_volume_type: PoolEbsVolumeType,
    }
}
schema_struct! {
    /// Extra disks attached to each instance.
    pub struct PoolDiskSpec {
        /// Disks per instance.
        disk_count: i64,
        /// IOPS per disk.
        disk_iops: i64,
        /// Size of each disk in GiB.
        disk_size: i64,
        /// Throughput per disk in MiB/s.
        disk_throughput: i64,
        /// Disk type.
        disk_type: PoolDiskType,
    }
}
schema_struct! {
    /// AWS settings of the pool.
    pub struct PoolAwsAttributes {
        /// Spot or on-demand.
        availability: PoolAwsAvailability,
        /// Instance profile of the instances.
        instance_profile_arn: String,
        /// Spot bid as a percentage of the on-demand price.
        spot_bid_price_percent: i64,
        /// Availability zone.
        zone_id: String,
    }
}
schema_struct! {
    /// Azure settings of the pool.
    pub struct PoolAzureAttributes {
        /// Spot or on-demand.
        availability: PoolAzureAvailability,
        /// Capacity reservation group resource id.
        capacity_reservation_group: String,
        /// Maximum spot price (-1 = on-demand price).
        spot_bid_max_price: f64,
    }
}
schema_struct! {
    /// GCP settings of the pool.
    pub struct PoolGcpAttributes {
        /// Preemptible or on-demand.
        gcp_availability: PoolGcpAvailability,
        /// Local SSDs per instance.
        local_ssd_count: i64,
        /// Availability zone.
        zone_id: String,
    }
}

schema_struct! {
    /// A pool of idle, ready instances clusters start from.
    #[schemars(extend("required" = ["instance_pool_name", "node_type_id"]))]
    pub struct InstancePool {
        /// Name of the pool (unique in the workspace).
        instance_pool_name: String,
        /// Node type of the instances.
        node_type_id: String,
        /// Instances kept idle at all times.
        #[schemars(range(min = 0))]
        min_idle_instances: i64,
        /// Most instances in the pool, idle and used.
        #[schemars(range(min = 0))]
        max_capacity: i64,
        /// Minutes an idle instance above `min_idle_instances` is kept (service default: 60).
        #[schemars(range(min = 0))]
        idle_instance_autotermination_minutes: i64,
        /// Extra tags on the pool's cloud resources.
        custom_tags: IndexMap<String, String>,
        /// Extra disks per instance. Changing it replaces the pool.
        disk_spec: PoolDiskSpec,
        /// Grow local storage on demand (service default: true). Changing it replaces the pool.
        enable_elastic_disk: bool,
        /// Runtimes preloaded on idle instances. Changing them replaces the pool.
        preloaded_spark_versions: Vec<String>,
        /// Container images preloaded on idle instances. Changing them replaces the pool.
        preloaded_docker_images: Vec<DockerImage>,
        /// AWS settings. Changing them replaces the pool.
        aws_attributes: PoolAwsAttributes,
        /// Azure settings. Changing them replaces the pool.
        azure_attributes: PoolAzureAttributes,
        /// GCP settings. Changing them replaces the pool.
        gcp_attributes: PoolGcpAttributes,
        /// Fallback node types. Changing them replaces the pool.
        node_type_flexibility: NodeTypeFlexibility,
        /// Remote disk throughput in Mb/s.
        remote_disk_throughput: i64,
        /// Initial remote disk size in GB.
        total_initial_remote_disk_size: i64,
        /// Grants on the pool.
        permissions: Vec<InstancePoolPermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const API: &str = "/api/2.0/instance-pools";
const BUNDLE_ONLY: &[&str] = crate::resources::common::ENGINE_FIELDS;
/// What `edit` accepts (besides the id): everything else is fixed at create.
const EDITABLE: &[&str] = &[
    "instance_pool_name",
    "node_type_id",
    "custom_tags",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "remote_disk_throughput",
    "total_initial_remote_disk_size",
];
const CONFIG_FIELDS: &[&str] = &[
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "custom_tags",
    "disk_spec",
    "enable_elastic_disk",
    "preloaded_spark_versions",
    "preloaded_docker_images",
    "aws_attributes",
    "azure_attributes",
    "gcp_attributes",
    "node_type_flexibility",
    "remote_disk_throughput",
    "total_initial_remote_disk_size",
];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "instance_pool_id",
    "instance_pool_name",
    "node_type_id",
    "state",
    "default_tags",
];

static RULES: FieldRules = FieldRules {
    immutable: &[
        "disk_spec",
        "enable_elastic_disk",
        "preloaded_spark_versions",
        "preloaded_docker_images",
        "aws_attributes",
        "azure_attributes",
        "gcp_attributes",
        "node_type_flexibility",
    ],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "instance_pool_id",
        "state",
        "stats",
        "status",
        "default_tags",
    ],
    bundle_only: BUNDLE_ONLY,
};

static INFO: KindInfo = KindInfo {
    noun: "instance pool",
    plural: "instance pools",
    title: "Instance pools",
    id_scheme: IdScheme::ServerAssigned,
    update: UpdateStyle::Put,
    state_fields: &[],
    ready_states: &[],
    wait_text: "instance pool",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/compute/instance-pools/{id}",
};

pub struct InstancePoolKind;

fn int_of(node: &Node) -> Option<i64> {
    match node.kind {
        crate::config::source::NodeKind::Int(i) => Some(i),
        _ => None,
    }
}

/// The body of `edit`: the pool's id and its editable fields from the config.
fn edit_body(id: &str, config: &Value) -> Value {
    let mut b = Value::Object(common::only_keys(config, EDITABLE));
    b["instance_pool_id"] = json!(id);
    b
}

#[async_trait]
impl ResourceKind for InstancePoolKind {
    fn kind(&self) -> Kind {
        Kind::InstancePools
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_instance_pool")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<InstancePool>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<InstancePool>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        let num = |f: &str| node.get(f).and_then(int_of);
        if let (Some(min), Some(max)) = (num("min_idle_instances"), num("max_capacity")) {
            if max < min {
                if let Some(v) = node.get("max_capacity") {
                    diags.push(
                        Diag::error(format!(
                            "{addr}.max_capacity ({max}) is below min_idle_instances ({min})"
                        ))
                        .at(v.span, "smaller than the idle minimum")
                        .help("raise max_capacity or lower min_idle_instances"),
                    );
                }
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
        let path = format!("{API}/create");
        let b = common::without_keys(config, BUNDLE_ONLY);
        let resp = client.call(Method::POST, &path, &[], Some(&b)).await?;
        let id = resp
            .get("instance_pool_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Other {
                method: "POST".into(),
                path: path.clone(),
                status: 200,
                error_code: "BAD_RESPONSE".into(),
                message: "the create response has no instance_pool_id".into(),
            })?
            .to_string();
        Ok(Created { id, remote: resp })
    }
    /// A DELETED pool stays readable for a while: gone.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let q = [("instance_pool_id", id.to_string())];
        let got = common::none_if_missing(
            client
                .call(Method::GET, &format!("{API}/get"), &q, None)
                .await,
        )?;
        Ok(got.filter(|p| state_at(p, "state") != "DELETED"))
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        client
            .call(
                Method::POST,
                &format!("{API}/edit"),
                &[],
                Some(&edit_body(id, config)),
            )
            .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::ok_if_missing(
            client
                .call(
                    Method::POST,
                    &format!("{API}/delete"),
                    &[],
                    Some(&json!({"instance_pool_id": id})),
                )
                .await,
        )
    }
    /// Creation is synchronous: ready once it can be read.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        let q = [("instance_pool_id", id.to_string())];
        client
            .call(Method::GET, &format!("{API}/get"), &q, None)
            .await
    }
    /// After a lost create response: the live pool of this name (names are unique).
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        let Some(name) = literal_str(config, "instance_pool_name") else {
            return Ok(None);
        };
        let all =
            crate::api::list_all(client, &format!("{API}/list"), &[], "instance_pools").await?;
        Ok(all
            .into_iter()
            .find(|p| {
                p.get("instance_pool_name").and_then(Value::as_str) == Some(name)
                    && state_at(p, "state") != "DELETED"
            })
            .map(|p| Created {
                id: p
                    .get("instance_pool_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                remote: p,
            }))
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("instance-pools")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_sends_the_editable_fields_only() {
        let cfg = json!({"instance_pool_name": "p", "node_type_id": "i3.xlarge",
                         "max_capacity": 4, "disk_spec": {"disk_count": 1},
                         "preloaded_spark_versions": ["15.4.x-scala2.12"],
                         "permissions": [{"level": "CAN_MANAGE", "group_name": "g"}]});
        assert_eq!(
            edit_body("pool-1", &cfg),
            json!({"instance_pool_id": "pool-1", "instance_pool_name": "p",
                   "node_type_id": "i3.xlarge", "max_capacity": 4})
        );
        // The service's defaults are not part of the config shape's diff (remote extras).
        let remote = json!({"instance_pool_id": "pool-1", "instance_pool_name": "p",
                            "enable_elastic_disk": true, "state": "ACTIVE",
                            "idle_instance_autotermination_minutes": 60});
        assert_eq!(
            InstancePoolKind.remote_to_config(&remote),
            json!({"instance_pool_name": "p", "enable_elastic_disk": true,
                   "idle_instance_autotermination_minutes": 60})
        );
    }
}
