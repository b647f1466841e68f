//! Cluster specifications, libraries and serverless environments used by jobs.

use indexmap::IndexMap;

use crate::resources::common::{schema_enum, schema_struct};

schema_enum! {
    /// AWS instance availability past the first on-demand nodes.
    AwsAvailability { SPOT, ON_DEMAND, SPOT_WITH_FALLBACK }
}
schema_enum! {
    /// AWS EBS volume type.
    EbsVolumeType { GENERAL_PURPOSE_SSD, THROUGHPUT_OPTIMIZED_HDD }
}
schema_enum! {
    /// Azure VM availability past the first on-demand nodes.
    AzureAvailability { SPOT_AZURE, ON_DEMAND_AZURE, SPOT_WITH_FALLBACK_AZURE }
}
schema_enum! {
    /// GCP VM availability.
    GcpAvailability { PREEMPTIBLE_GCP, ON_DEMAND_GCP, PREEMPTIBLE_WITH_FALLBACK_GCP }
}
schema_enum! {
    /// Confidential computing technology of GCP nodes.
    ConfidentialComputeType { CONFIDENTIAL_COMPUTE_TYPE_NONE, SEV_SNP }
}
schema_enum! {
    /// Data governance model of the cluster.
    DataSecurityMode {
        NONE, SINGLE_USER, USER_ISOLATION, LEGACY_TABLE_ACL, LEGACY_PASSTHROUGH, LEGACY_SINGLE_USER,
        LEGACY_SINGLE_USER_STANDARD, DATA_SECURITY_MODE_STANDARD, DATA_SECURITY_MODE_DEDICATED, DATA_SECURITY_MODE_AUTO,
    }
}
schema_enum! {
    /// How the cluster gets its dependencies.
    DependencyMode { DEPENDENCY_MODE_ENVIRONMENTS, DEPENDENCY_MODE_CLUSTER_LIBRARIES, DEPENDENCY_MODE_AUTO }
}
schema_enum! {
    /// Kind of compute a cluster spec describes.
    ComputeKind { CLASSIC_PREVIEW }
}
schema_enum! {
    /// Spark runtime engine.
    RuntimeEngine { NULL, STANDARD, PHOTON }
}

schema_struct! {
    /// Worker autoscaling bounds.
    pub struct AutoScale {
        /// Fewest workers when underused.
        min_workers: i64,
        /// Most workers when overloaded.
        max_workers: i64,
    }
}

schema_struct! {
    /// AWS-specific node settings.
    pub struct AwsAttributes {
        /// Availability of nodes past `first_on_demand`.
        availability: AwsAvailability,
        /// Number of EBS volumes per node.
        ebs_volume_count: i64,
        /// IOPS of gp3 volumes.
        ebs_volume_iops: i64,
        /// Size of each EBS volume in GiB.
        ebs_volume_size: i64,
        /// Throughput of gp3 volumes in MiB/s.
        ebs_volume_throughput: i64,
        /// EBS volume type.
        ebs_volume_type: EbsVolumeType,
        /// Number of first nodes (driver included) placed on on-demand instances.
        first_on_demand: i64,
        /// Instance profile ARN for the nodes.
        instance_profile_arn: String,
        /// Spot bid as a percentage of the on-demand price.
        spot_bid_price_percent: i64,
        /// Availability zone (or `auto`).
        zone_id: String,
    }
}

schema_struct! {
    /// Azure Log Analytics agent settings.
    pub struct LogAnalyticsInfo {
        /// Primary key of the Log Analytics workspace.
        log_analytics_primary_key: String,
        /// Id of the Log Analytics workspace.
        log_analytics_workspace_id: String,
    }
}

schema_struct! {
    /// Azure-specific node settings.
    pub struct AzureAttributes {
        /// Availability of nodes past `first_on_demand`.
        availability: AzureAvailability,
        /// Capacity reservation group resource id.
        capacity_reservation_group: String,
        /// Number of first nodes placed on on-demand instances.
        first_on_demand: i64,
        /// Log Analytics agent configuration.
        log_analytics_info: LogAnalyticsInfo,
        /// Maximum spot bid price (-1 = on-demand price).
        spot_bid_max_price: f64,
    }
}

schema_struct! {
    /// GCP-specific node settings.
    pub struct GcpAttributes {
        /// Availability of the nodes.
        availability: GcpAvailability,
        /// Boot disk size in GB.
        boot_disk_size: i64,
        /// Confidential computing technology.
        confidential_compute_type: ConfidentialComputeType,
        /// Number of first nodes placed on on-demand instances.
        first_on_demand: i64,
        /// Google service account the cluster impersonates.
        google_service_account: String,
        /// Number of local SSDs per node.
        local_ssd_count: i64,
        /// Deprecated: use `availability`.
        use_preemptible_executors: bool,
        /// Availability zone.
        zone_id: String,
    }
}

schema_struct! {
    /// A DBFS destination.
    #[schemars(extend("required" = ["destination"]))]
    pub struct DbfsStorageInfo {
        /// DBFS path, e.g. `dbfs:/my/path`.
        destination: String,
    }
}

schema_struct! {
    /// An S3 destination.
    #[schemars(extend("required" = ["destination"]))]
    pub struct S3StorageInfo {
        /// S3 URI, e.g. `s3://bucket/prefix`.
        destination: String,
        /// Canned ACL for written objects.
        canned_acl: String,
        /// Enable server-side encryption.
        enable_encryption: bool,
        /// Encryption type: `sse-s3` or `sse-kms`.
        encryption_type: String,
        /// S3 endpoint (either this or `region`).
        endpoint: String,
        /// KMS key for `sse-kms`.
        kms_key: String,
        /// S3 region (either this or `endpoint`).
        region: String,
    }
}

schema_struct! {
    /// A path destination (volumes, workspace, local file, GCS, ABFSS).
    #[schemars(extend("required" = ["destination"]))]
    pub struct PathStorageInfo {
        /// Destination path or URI.
        destination: String,
    }
}

schema_struct! {
    /// Where cluster logs are delivered.
    pub struct ClusterLogConf {
        /// DBFS destination.
        dbfs: DbfsStorageInfo,
        /// S3 destination.
        s3: S3StorageInfo,
        /// Unity Catalog volume destination.
        volumes: PathStorageInfo,
    }
}

schema_struct! {
    /// One init script location; set exactly one.
    pub struct InitScriptInfo {
        /// ADLS Gen2 (`abfss://...`) location.
        abfss: PathStorageInfo,
        /// DBFS location (deprecated).
        dbfs: DbfsStorageInfo,
        /// Local file on the node (`file:/...`).
        file: PathStorageInfo,
        /// Google Cloud Storage location.
        gcs: PathStorageInfo,
        /// S3 location.
        s3: S3StorageInfo,
        /// Unity Catalog volume location.
        volumes: PathStorageInfo,
        /// Workspace file location.
        workspace: PathStorageInfo,
    }
}

schema_struct! {
    /// Registry credentials for a custom container.
    pub struct DockerBasicAuth {
        /// User name.
        username: String,
        /// Password (keep it in a secret; it is sent to the API as given).
        password: String,
    }
}

schema_struct! {
    /// A custom container image.
    pub struct DockerImage {
        /// Image URL.
        url: String,
        /// Registry credentials.
        basic_auth: DockerBasicAuth,
    }
}

schema_struct! {
    /// Fallback node types.
    pub struct NodeTypeFlexibility {
        /// Node types to try when the primary one is unavailable.
        alternate_node_type_ids: Vec<String>,
    }
}

schema_struct! {
    /// Which clients may use the cluster.
    pub struct ClientsTypes {
        /// Jobs may use the cluster.
        jobs: bool,
        /// Notebooks may use the cluster.
        notebooks: bool,
    }
}

schema_struct! {
    /// Workload types of the cluster.
    #[schemars(extend("required" = ["clients"]))]
    pub struct WorkloadType {
        /// Allowed clients.
        clients: ClientsTypes,
    }
}

schema_struct! {
    /// A cluster created for a job run.
    pub struct ClusterSpec {
        /// Use the policy's fixed and default values for unset fields.
        apply_policy_default_values: bool,
        /// Autoscaling bounds (instead of `num_workers`).
        autoscale: AutoScale,
        /// Minutes of inactivity before the cluster terminates (0 = never).
        autotermination_minutes: i64,
        /// AWS node settings.
        aws_attributes: AwsAttributes,
        /// Azure node settings.
        azure_attributes: AzureAttributes,
        /// Log delivery destination.
        cluster_log_conf: ClusterLogConf,
        /// Cluster name (need not be unique).
        cluster_name: String,
        /// Extra tags on the cluster's cloud resources.
        custom_tags: IndexMap<String, String>,
        /// Data governance model.
        data_security_mode: DataSecurityMode,
        /// How dependencies are installed.
        dependency_mode: DependencyMode,
        /// Custom container image.
        docker_image: DockerImage,
        /// Instance pool of the driver.
        driver_instance_pool_id: String,
        /// Fallback node types of the driver.
        driver_node_type_flexibility: NodeTypeFlexibility,
        /// Node type of the driver (default: `node_type_id`).
        driver_node_type_id: String,
        /// Grow local storage on demand.
        enable_elastic_disk: bool,
        /// Encrypt local disks (LUKS).
        enable_local_disk_encryption: bool,
        /// GCP node settings.
        gcp_attributes: GcpAttributes,
        /// Init scripts, run in order.
        init_scripts: Vec<InitScriptInfo>,
        /// Instance pool of the cluster.
        instance_pool_id: String,
        /// Single-node cluster (with `kind: CLASSIC_PREVIEW`).
        is_single_node: bool,
        /// Kind of compute this spec describes.
        kind: ComputeKind,
        /// Node type of the workers.
        node_type_id: String,
        /// Fixed number of workers (instead of `autoscale`).
        num_workers: i64,
        /// Cluster policy id.
        policy_id: String,
        /// Remote disk throughput in Mb/s.
        remote_disk_throughput: i64,
        /// Runtime engine (standard or Photon).
        runtime_engine: RuntimeEngine,
        /// User of a SINGLE_USER cluster.
        single_user_name: String,
        /// Spark configuration key-value pairs.
        spark_conf: IndexMap<String, String>,
        /// Environment variables of the Spark processes.
        spark_env_vars: IndexMap<String, String>,
        /// Databricks Runtime version, e.g. `15.4.x-scala2.12`.
        spark_version: String,
        /// SSH public keys added to every node.
        ssh_public_keys: Vec<String>,
        /// Initial remote disk size in GB.
        total_initial_remote_disk_size: i64,
        /// Use the ML runtime (with `kind: CLASSIC_PREVIEW`).
        use_ml_runtime: bool,
        /// Fallback node types of the workers.
        worker_node_type_flexibility: NodeTypeFlexibility,
        /// Allowed client types.
        workload_type: WorkloadType,
    }
}

schema_struct! {
    /// A CRAN package.
    #[schemars(extend("required" = ["package"]))]
    pub struct RCranLibrary {
        /// Package name.
        package: String,
        /// CRAN repository (default: the public one).
        repo: String,
    }
}

schema_struct! {
    /// A Maven package.
    #[schemars(extend("required" = ["coordinates"]))]
    pub struct MavenLibrary {
        /// Gradle-style coordinates, e.g. `org.jsoup:jsoup:1.7.2`.
        coordinates: String,
        /// Dependencies to exclude.
        exclusions: Vec<String>,
        /// Maven repository (default: Maven Central).
        repo: String,
    }
}

schema_struct! {
    /// A PyPI package.
    #[schemars(extend("required" = ["package"]))]
    pub struct PythonPyPiLibrary {
        /// Package name with optional version specifier.
        package: String,
        /// Package index (default: PyPI).
        repo: String,
    }
}

schema_struct! {
    /// A library installed on the task's cluster; set exactly one kind.
    pub struct Library {
        /// CRAN package.
        cran: RCranLibrary,
        /// Python egg URI (deprecated).
        egg: String,
        /// JAR URI.
        jar: String,
        /// Maven package.
        maven: MavenLibrary,
        /// PyPI package.
        pypi: PythonPyPiLibrary,
        /// URI of a requirements.txt file.
        requirements: String,
        /// Wheel URI (a local path is uploaded by the bundle).
        whl: String,
    }
}

schema_struct! {
    /// A serverless environment specification.
    pub struct EnvironmentSpec {
        /// Base environment the environment builds on.
        base_environment: String,
        /// Deprecated: use `environment_version`.
        client: String,
        /// Pip dependencies.
        dependencies: Vec<String>,
        /// Environment version (either this or `base_environment`).
        environment_version: String,
        /// Java dependencies (library paths).
        java_dependencies: Vec<String>,
    }
}

schema_struct! {
    /// A serverless environment tasks can reference by key.
    #[schemars(extend("required" = ["environment_key"]))]
    pub struct JobEnvironment {
        /// Unique key of the environment within the job.
        environment_key: String,
        /// The environment specification.
        spec: EnvironmentSpec,
    }
}

schema_struct! {
    /// A cluster shared by several tasks of a job.
    #[schemars(extend("required" = ["job_cluster_key"]))]
    pub struct JobCluster {
        /// Unique key of the cluster within the job; tasks refer to it with `job_cluster_key`.
        job_cluster_key: String,
        /// The cluster specification.
        new_cluster: ClusterSpec,
        /// Serverless compute object the cluster is bound to (instead of `new_cluster`).
        serverless_compute_id: String,
    }
}
