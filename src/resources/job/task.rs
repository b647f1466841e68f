//! Job tasks: one struct per task type, and the `Task` that holds exactly one.

use indexmap::IndexMap;

use super::compute::{ClusterSpec, Library};
use super::settings::{
    JobsHealthRules, TaskEmailNotifications, TaskNotificationSettings, WebhookNotifications,
};
use crate::resources::common::{schema_enum, schema_struct};

schema_enum! {
    /// Where a file or notebook is read from: the workspace, or the job's `git_source`.
    Source { WORKSPACE, GIT }
}
schema_enum! {
    /// When a task runs relative to its dependencies.
    RunIf { ALL_SUCCESS, ALL_DONE, NONE_FAILED, AT_LEAST_ONE_SUCCESS, ALL_FAILED, AT_LEAST_ONE_FAILED }
}
schema_enum! {
    /// Comparison of a condition task.
    ConditionTaskOp { EQUAL_TO, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL, NOT_EQUAL }
}
schema_enum! {
    /// GPU type of serverless task compute.
    HardwareAcceleratorType { GPU_1xA10, GPU_8xH100 }
}
schema_enum! {
    /// Accelerator type of an AI runtime deployment.
    AcceleratorType { GPU_1xA10, GPU_1xH100, GPU_8xH100 }
}
schema_enum! {
    /// How a Power BI model authenticates to Databricks.
    AuthenticationMethod { OAUTH, PAT }
}
schema_enum! {
    /// Power BI storage mode.
    StorageMode { DIRECT_QUERY, IMPORT, DUAL }
}

schema_struct! {
    /// A dependency on another task of the job.
    #[schemars(extend("required" = ["task_key"]))]
    pub struct TaskDependency {
        /// Key of the task this one waits for.
        task_key: String,
        /// For condition-task dependencies: the outcome (`"true"`/`"false"`) that lets this task run.
        outcome: String,
    }
}

schema_struct! {
    /// Runs a notebook.
    #[schemars(extend("required" = ["notebook_path"]))]
    pub struct NotebookTask {
        /// Notebook path in the workspace, or relative to the repository root for GIT sources.
        notebook_path: String,
        /// Parameters passed to the notebook widgets.
        base_parameters: IndexMap<String, String>,
        /// Where the notebook is read from.
        source: Source,
        /// SQL warehouse to run a SQL notebook on.
        warehouse_id: String,
    }
}

schema_struct! {
    /// Runs a Python file.
    #[schemars(extend("required" = ["python_file"]))]
    pub struct SparkPythonTask {
        /// Python file path or URI.
        python_file: String,
        /// Command-line parameters.
        parameters: Vec<String>,
        /// Where the file is read from.
        source: Source,
    }
}

schema_struct! {
    /// Runs an entry point of a Python wheel.
    #[schemars(extend("required" = ["package_name", "entry_point"]))]
    pub struct PythonWheelTask {
        /// Package to run.
        package_name: String,
        /// Entry point of the package.
        entry_point: String,
        /// Positional command-line parameters (exclusive with `named_parameters`).
        parameters: Vec<String>,
        /// `--name=value` parameters.
        named_parameters: IndexMap<String, String>,
    }
}

schema_struct! {
    /// Runs a JAR's main class.
    pub struct SparkJarTask {
        /// Class holding the main method.
        main_class_name: String,
        /// Deprecated: provide the JAR through `libraries`.
        jar_uri: String,
        /// Parameters of the main method.
        parameters: Vec<String>,
        /// Deprecated.
        run_as_repl: bool,
    }
}

schema_struct! {
    /// (Legacy) runs spark-submit.
    pub struct SparkSubmitTask {
        /// spark-submit parameters.
        parameters: Vec<String>,
    }
}

schema_struct! {
    /// Runs a pipeline update.
    #[schemars(extend("required" = ["pipeline_id"]))]
    pub struct PipelineTask {
        /// Pipeline to update (for synced tables: `data_synchronization_status.pipeline_id`).
        pipeline_id: String,
        /// Full refresh of all tables.
        full_refresh: bool,
        /// Tables to fully refresh.
        full_refresh_selection: Vec<String>,
        /// Flows to refresh.
        refresh_flow_selection: Vec<String>,
        /// Tables to refresh without full refresh.
        refresh_selection: Vec<String>,
        /// Streaming flows whose checkpoints are reset.
        reset_checkpoint_selection: Vec<String>,
        /// Parameters of the pipeline update.
        parameters: IndexMap<String, String>,
    }
}

schema_struct! {
    /// Pipeline options of a triggered job.
    pub struct PipelineParams {
        /// Full refresh of all tables.
        full_refresh: bool,
        /// Tables to fully refresh.
        full_refresh_selection: Vec<String>,
        /// Flows to refresh.
        refresh_flow_selection: Vec<String>,
        /// Tables to refresh without full refresh.
        refresh_selection: Vec<String>,
        /// Streaming flows whose checkpoints are reset.
        reset_checkpoint_selection: Vec<String>,
    }
}

schema_struct! {
    /// Triggers another job.
    #[schemars(extend("required" = ["job_id"]))]
    pub struct RunJobTask {
        /// Id of the job to run (often `${resources.jobs.<key>.id}`).
        job_id: i64,
        /// Job-level parameters of the triggered run.
        job_parameters: IndexMap<String, String>,
        /// Pipeline options of the triggered run.
        pipeline_params: PipelineParams,
        /// Deprecated per-task-type parameters.
        dbt_commands: Vec<String>,
        /// Deprecated per-task-type parameters.
        jar_params: Vec<String>,
        /// Deprecated per-task-type parameters.
        notebook_params: IndexMap<String, String>,
        /// Deprecated per-task-type parameters.
        python_named_params: IndexMap<String, String>,
        /// Deprecated per-task-type parameters.
        python_params: Vec<String>,
        /// Deprecated per-task-type parameters.
        spark_submit_params: Vec<String>,
        /// Deprecated per-task-type parameters.
        sql_params: IndexMap<String, String>,
    }
}

schema_struct! {
    /// A subscriber of a SQL task alert or dashboard.
    pub struct SqlTaskSubscription {
        /// Notification destination id (exclusive with `user_name`).
        destination_id: String,
        /// User email (exclusive with `destination_id`).
        user_name: String,
    }
}

schema_struct! {
    /// Refreshes a SQL alert.
    #[schemars(extend("required" = ["alert_id"]))]
    pub struct SqlTaskAlert {
        /// Alert id.
        alert_id: String,
        /// Do not notify subscribers.
        pause_subscriptions: bool,
        /// Subscribers notified of the alert.
        subscriptions: Vec<SqlTaskSubscription>,
    }
}

schema_struct! {
    /// Refreshes a legacy SQL dashboard.
    #[schemars(extend("required" = ["dashboard_id"]))]
    pub struct SqlTaskDashboard {
        /// Dashboard id.
        dashboard_id: String,
        /// Subject of the email to subscribers.
        custom_subject: String,
        /// Do not snapshot or email.
        pause_subscriptions: bool,
        /// Subscribers receiving the snapshot.
        subscriptions: Vec<SqlTaskSubscription>,
    }
}

schema_struct! {
    /// Runs a SQL file.
    #[schemars(extend("required" = ["path"]))]
    pub struct SqlTaskFile {
        /// File path (relative for GIT sources, absolute for the workspace).
        path: String,
        /// Where the file is read from.
        source: Source,
    }
}

schema_struct! {
    /// Runs a saved SQL query.
    #[schemars(extend("required" = ["query_id"]))]
    pub struct SqlTaskQuery {
        /// Query id.
        query_id: String,
    }
}

schema_struct! {
    /// Runs SQL on a warehouse: a query, a file, an alert or a dashboard (set one).
    #[schemars(extend("required" = ["warehouse_id"]))]
    pub struct SqlTask {
        /// SQL warehouse id.
        warehouse_id: String,
        /// A saved query.
        query: SqlTaskQuery,
        /// A SQL file.
        file: SqlTaskFile,
        /// A SQL alert.
        alert: SqlTaskAlert,
        /// A legacy dashboard.
        dashboard: SqlTaskDashboard,
        /// Query parameters.
        parameters: IndexMap<String, String>,
    }
}

schema_struct! {
    /// Runs dbt commands.
    #[schemars(extend("required" = ["commands"]))]
    pub struct DbtTask {
        /// dbt commands, each starting with `dbt`.
        commands: Vec<String>,
        /// Catalog to use (with a warehouse).
        catalog: String,
        /// Schema to write to (with a warehouse).
        schema: String,
        /// Directory holding profiles.yml (only without `warehouse_id`).
        profiles_directory: String,
        /// Project directory.
        project_directory: String,
        /// Where the project is read from.
        source: Source,
        /// SQL warehouse to run on; profiles are generated for it.
        warehouse_id: String,
    }
}

schema_struct! {
    /// Triggers a dbt Cloud job (deprecated name of `dbt_platform_task`).
    pub struct DbtCloudTask {
        /// Unity Catalog connection authenticating to dbt Cloud.
        connection_resource_name: String,
        /// dbt Cloud job id.
        dbt_cloud_job_id: i64,
    }
}

schema_struct! {
    /// Triggers a dbt platform job.
    pub struct DbtPlatformTask {
        /// Unity Catalog connection authenticating to the dbt platform.
        connection_resource_name: String,
        /// dbt platform job id.
        dbt_platform_job_id: String,
    }
}

schema_struct! {
    /// Evaluates a condition that gates dependent tasks.
    #[schemars(extend("required" = ["op", "left", "right"]))]
    pub struct ConditionTask {
        /// Comparison operator.
        op: ConditionTaskOp,
        /// Left operand (a value or a `{{...}}` job reference).
        left: String,
        /// Right operand.
        right: String,
    }
}

schema_struct! {
    /// Runs a nested task once per input.
    #[schemars(extend("required" = ["inputs", "task"]))]
    pub struct ForEachTask {
        /// JSON array (or reference to one) to iterate over.
        inputs: String,
        /// The task run for each input.
        task: Box<Task>,
        /// Most iterations running at once.
        concurrency: i64,
    }
}

schema_struct! {
    /// Runs a clean-room notebook.
    #[schemars(extend("required" = ["clean_room_name", "notebook_name"]))]
    pub struct CleanRoomsNotebookTask {
        /// Clean room holding the notebook.
        clean_room_name: String,
        /// Notebook name.
        notebook_name: String,
        /// Checksum of the notebook version to run.
        etag: String,
        /// Notebook parameters.
        notebook_base_parameters: IndexMap<String, String>,
    }
}

schema_struct! {
    /// A dashboard snapshot subscriber.
    pub struct SubscriptionSubscriber {
        /// Notification destination id.
        destination_id: String,
        /// User email.
        user_name: String,
    }
}

schema_struct! {
    /// Email subscription of a dashboard task.
    pub struct Subscription {
        /// Email subject.
        custom_subject: String,
        /// Do not send emails.
        paused: bool,
        /// Recipients.
        subscribers: Vec<SubscriptionSubscriber>,
    }
}

schema_struct! {
    /// Refreshes a dashboard and sends a snapshot.
    pub struct DashboardTask {
        /// Dashboard id.
        dashboard_id: String,
        /// Dashboard filter values.
        filters: IndexMap<String, String>,
        /// Snapshot subscription.
        subscription: Subscription,
        /// Warehouse the dashboard runs on.
        warehouse_id: String,
    }
}

schema_struct! {
    /// A subscriber of an alert task.
    pub struct AlertTaskSubscriber {
        /// Notification destination id.
        destination_id: String,
        /// User email.
        user_name: String,
    }
}

schema_struct! {
    /// Evaluates an alert and notifies subscribers.
    pub struct AlertTask {
        /// Alert id.
        alert_id: String,
        /// Subscribers notified of the result.
        subscribers: Vec<AlertTaskSubscriber>,
        /// Warehouse the alert runs on.
        warehouse_id: String,
        /// Workspace path of the alert file.
        workspace_path: String,
    }
}

schema_struct! {
    /// The Power BI semantic model to update.
    pub struct PowerBiModel {
        /// How the model authenticates to Databricks.
        authentication_method: AuthenticationMethod,
        /// Model name.
        model_name: String,
        /// Overwrite an existing model.
        overwrite_existing: bool,
        /// Default storage mode.
        storage_mode: StorageMode,
        /// Power BI workspace of the model.
        workspace_name: String,
    }
}

schema_struct! {
    /// A table exported to Power BI.
    pub struct PowerBiTable {
        /// Catalog of the table.
        catalog: String,
        /// Schema of the table.
        schema: String,
        /// Table name.
        name: String,
        /// Storage mode of the table.
        storage_mode: StorageMode,
    }
}

schema_struct! {
    /// Updates a Power BI semantic model.
    pub struct PowerBiTask {
        /// Unity Catalog connection to Power BI.
        connection_resource_name: String,
        /// The model to update.
        power_bi_model: PowerBiModel,
        /// Refresh the model after the update.
        refresh_after_update: bool,
        /// Tables to export.
        tables: Vec<PowerBiTable>,
        /// SQL warehouse used as the data source.
        warehouse_id: String,
    }
}

schema_struct! {
    /// GPU compute of a generative-AI task.
    #[schemars(extend("required" = ["num_gpus"]))]
    pub struct GenAiComputeConfig {
        /// GPU pool id.
        gpu_node_pool_id: String,
        /// GPU type.
        gpu_type: String,
        /// Number of GPUs.
        num_gpus: i64,
    }
}

schema_struct! {
    /// (Deprecated in favour of `ai_runtime_task`) runs a training script on GPUs.
    #[schemars(extend("required" = ["dl_runtime_image"]))]
    pub struct GenAiComputeTask {
        /// Launcher command (bash, python, ...).
        command: String,
        /// GPU compute.
        compute: GenAiComputeConfig,
        /// Runtime image.
        dl_runtime_image: String,
        /// MLflow experiment to log to.
        mlflow_experiment_name: String,
        /// Where the script is read from.
        source: Source,
        /// Training script path.
        training_script_path: String,
        /// Model parameters as YAML text.
        yaml_parameters: String,
        /// Path of a YAML file with model parameters.
        yaml_parameters_file_path: String,
    }
}

schema_struct! {
    /// Accelerators of an AI runtime deployment.
    #[schemars(extend("required" = ["accelerator_count", "accelerator_type"]))]
    pub struct AiComputeSpec {
        /// Total accelerators across nodes.
        accelerator_count: i64,
        /// Accelerator type.
        accelerator_type: AcceleratorType,
    }
}

schema_struct! {
    /// One deployment of an AI runtime task.
    #[schemars(extend("required" = ["command_path", "compute"]))]
    pub struct AiDeploymentSpec {
        /// Workspace path of the script run on each node.
        command_path: String,
        /// Compute of each node.
        compute: AiComputeSpec,
        /// Display name of the deployment.
        name: String,
    }
}

schema_struct! {
    /// Runs a multi-GPU workload on the AI runtime.
    #[schemars(extend("required" = ["deployments", "experiment"]))]
    pub struct AiRuntimeTask {
        /// Workspace or volume path of the code archive.
        code_source_path: String,
        /// Deployments (exactly one today).
        deployments: Vec<AiDeploymentSpec>,
        /// Custom container image URL.
        docker_image_url: String,
        /// MLflow experiment name.
        experiment: String,
        /// Root location of MLflow artifacts.
        mlflow_artifact_location: String,
        /// Workspace directory of the experiment.
        mlflow_experiment_directory: String,
        /// MLflow run display name.
        mlflow_run: String,
    }
}

schema_struct! {
    /// A parameter of a Python operator task.
    pub struct PythonOperatorTaskParameter {
        /// Parameter name.
        name: String,
        /// Parameter value.
        value: String,
    }
}

schema_struct! {
    /// Runs a Python operator.
    pub struct PythonOperatorTask {
        /// Fully qualified name of the main class or function.
        main: String,
        /// Ordered parameters.
        parameters: Vec<PythonOperatorTaskParameter>,
    }
}

schema_struct! {
    /// Task-level compute options.
    pub struct TaskCompute {
        /// GPU type of serverless GPU workloads.
        hardware_accelerator: HardwareAcceleratorType,
    }
}

schema_struct! {
    /// One unit of work of a job: a key, dependencies, compute and exactly one `*_task`.
    #[schemars(extend("required" = ["task_key"]))]
    pub struct Task {
        /// Unique key of the task within the job (other tasks depend on it by this key).
        task_key: String,
        /// Description of the task.
        description: String,
        /// Tasks that must finish first.
        depends_on: Vec<TaskDependency>,
        /// Run condition relative to the dependencies (default ALL_SUCCESS).
        run_if: RunIf,
        /// Skip this task in runs.
        disabled: bool,
        /// Id of an existing all-purpose cluster to run on.
        existing_cluster_id: String,
        /// A cluster created for each run of this task.
        new_cluster: ClusterSpec,
        /// Key of a shared job cluster (`job_clusters`).
        job_cluster_key: String,
        /// Key of a serverless environment (`environments`).
        environment_key: String,
        /// Key of an environment-variables specification (`environment_variables`).
        environment_variables_key: String,
        /// Task-level compute options.
        compute: TaskCompute,
        /// Libraries installed on the cluster.
        libraries: Vec<Library>,
        /// Retries of a failed run (-1 = forever).
        max_retries: i64,
        /// Minimum milliseconds between retries.
        min_retry_interval_millis: i64,
        /// Retry on timeout.
        retry_on_timeout: bool,
        /// Timeout of each run in seconds (0 = none).
        timeout_seconds: i64,
        /// Disable serverless auto-optimization (retries etc.).
        disable_auto_optimization: bool,
        /// Email notifications of this task.
        email_notifications: TaskEmailNotifications,
        /// Webhook notifications of this task.
        webhook_notifications: WebhookNotifications,
        /// Notification options of this task.
        notification_settings: TaskNotificationSettings,
        /// Health rules of this task.
        health: JobsHealthRules,
        /// Runs a notebook.
        notebook_task: NotebookTask,
        /// Runs a Python file.
        spark_python_task: SparkPythonTask,
        /// Runs a Python wheel.
        python_wheel_task: PythonWheelTask,
        /// Runs a JAR.
        spark_jar_task: SparkJarTask,
        /// (Legacy) runs spark-submit.
        spark_submit_task: SparkSubmitTask,
        /// Updates a pipeline.
        pipeline_task: PipelineTask,
        /// Runs SQL on a warehouse.
        sql_task: SqlTask,
        /// Runs dbt.
        dbt_task: DbtTask,
        /// Triggers a dbt Cloud job (deprecated).
        dbt_cloud_task: DbtCloudTask,
        /// Triggers a dbt platform job.
        dbt_platform_task: DbtPlatformTask,
        /// Triggers another job.
        run_job_task: RunJobTask,
        /// Evaluates a condition.
        condition_task: ConditionTask,
        /// Runs a nested task per input.
        for_each_task: ForEachTask,
        /// Runs a clean-room notebook.
        clean_rooms_notebook_task: CleanRoomsNotebookTask,
        /// Refreshes a dashboard.
        dashboard_task: DashboardTask,
        /// Evaluates an alert.
        alert_task: AlertTask,
        /// Updates a Power BI model.
        power_bi_task: PowerBiTask,
        /// Runs a GPU training script (deprecated).
        gen_ai_compute_task: GenAiComputeTask,
        /// Runs a multi-GPU AI runtime workload.
        ai_runtime_task: AiRuntimeTask,
        /// Runs an AI function (settings passed through as given).
        ai_function_task: IndexMap<String, serde_json::Value>,
        /// Runs a Python operator.
        python_operator_task: PythonOperatorTask,
    }
}

/// The `*_task` keys of [`Task`]; a task sets exactly one.
pub const TASK_TYPES: &[&str] = &[
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "spark_jar_task",
    "spark_submit_task",
    "pipeline_task",
    "sql_task",
    "dbt_task",
    "dbt_cloud_task",
    "dbt_platform_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
    "clean_rooms_notebook_task",
    "dashboard_task",
    "alert_task",
    "power_bi_task",
    "gen_ai_compute_task",
    "ai_runtime_task",
    "ai_function_task",
    "python_operator_task",
];
