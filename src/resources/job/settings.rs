//! Job-level settings: the `Job` struct (JobSettings plus bundle-only fields),
//! schedules, triggers, notifications, health, queue, run-as, git source.

use indexmap::IndexMap;

use super::compute::{JobCluster, JobEnvironment};
use super::task::Task;
use crate::resources::common::{schema_enum, schema_struct, JobPermission, Lifecycle};

schema_enum! {
    /// Whether a schedule, trigger or continuous job is paused.
    PauseStatus { UNPAUSED, PAUSED }
}
schema_enum! {
    /// Whether a continuous job retries failed tasks.
    TaskRetryMode { NEVER, ON_FAILURE }
}
schema_enum! {
    /// Unit of a periodic trigger's interval.
    PeriodicUnit { MINUTES, HOURS, DAYS, WEEKS }
}
schema_enum! {
    /// Which monitored tables must change to fire a table-update trigger.
    TableUpdateCondition { ANY_UPDATED, ALL_UPDATED }
}
schema_enum! {
    /// Event of a model trigger.
    ModelTriggerCondition { MODEL_CREATED, MODEL_VERSION_READY, MODEL_ALIAS_SET }
}
schema_enum! {
    /// How a SQL condition's result fires a trigger.
    SqlConditionTriggerMode { QUERY_RETURNS_ROWS, RESULT_VALUE_CHANGES }
}
schema_enum! {
    /// Metric of a health rule.
    JobsHealthMetric {
        RUN_DURATION_SECONDS, STREAMING_BACKLOG_BYTES, STREAMING_BACKLOG_RECORDS, STREAMING_BACKLOG_SECONDS,
        STREAMING_BACKLOG_FILES,
    }
}
schema_enum! {
    /// Operator of a health rule.
    JobsHealthOperator { GREATER_THAN }
}
schema_enum! {
    /// Git hosting service (the service accepts any letter case).
    GitProvider {
        gitHub, bitbucketCloud, azureDevOpsServices, gitHubEnterprise, bitbucketServer, gitLab,
        gitLabEnterpriseEdition, awsCodeCommit,
    }
}
schema_enum! {
    /// Who owns the job definition; lakebundle sets BUNDLE.
    DeploymentKind { BUNDLE, SYSTEM_MANAGED }
}
schema_enum! {
    /// Whether the job can be edited in the UI (UI_LOCKED for bundle-managed jobs).
    EditMode { UI_LOCKED, EDITABLE }
}
schema_enum! {
    /// Job format; the service always reports MULTI_TASK.
    JobFormat { MULTI_TASK, SINGLE_TASK }
}
schema_enum! {
    /// Serverless performance mode.
    PerformanceTarget { PERFORMANCE_OPTIMIZED, STANDARD }
}

schema_struct! {
    /// Email recipients of job events.
    pub struct JobEmailNotifications {
        /// Notified when a run starts.
        on_start: Vec<String>,
        /// Notified when a run succeeds.
        on_success: Vec<String>,
        /// Notified when a run fails.
        on_failure: Vec<String>,
        /// Notified when a run exceeds the RUN_DURATION_SECONDS health threshold.
        on_duration_warning_threshold_exceeded: Vec<String>,
        /// Notified when a streaming backlog threshold is exceeded.
        on_streaming_backlog_exceeded: Vec<String>,
        /// Deprecated: use `notification_settings.no_alert_for_skipped_runs`.
        no_alert_for_skipped_runs: bool,
    }
}

schema_struct! {
    /// Email recipients of task events.
    pub struct TaskEmailNotifications {
        /// Notified when a run starts.
        on_start: Vec<String>,
        /// Notified when a run succeeds.
        on_success: Vec<String>,
        /// Notified when a run fails.
        on_failure: Vec<String>,
        /// Notified when a run exceeds the RUN_DURATION_SECONDS health threshold.
        on_duration_warning_threshold_exceeded: Vec<String>,
        /// Notified when a streaming backlog threshold is exceeded.
        on_streaming_backlog_exceeded: Vec<String>,
        /// Deprecated: use `notification_settings.no_alert_for_skipped_runs`.
        no_alert_for_skipped_runs: bool,
    }
}

schema_struct! {
    /// A notification destination.
    #[schemars(extend("required" = ["id"]))]
    pub struct Webhook {
        /// Notification destination id.
        id: String,
    }
}

schema_struct! {
    /// Notification destinations called on run events (at most 3 per event).
    pub struct WebhookNotifications {
        /// Called when a run starts.
        on_start: Vec<Webhook>,
        /// Called when a run succeeds.
        on_success: Vec<Webhook>,
        /// Called when a run fails.
        on_failure: Vec<Webhook>,
        /// Called when a run exceeds the RUN_DURATION_SECONDS health threshold.
        on_duration_warning_threshold_exceeded: Vec<Webhook>,
        /// Called when a streaming backlog threshold is exceeded.
        on_streaming_backlog_exceeded: Vec<Webhook>,
    }
}

schema_struct! {
    /// Notification options of a job.
    pub struct JobNotificationSettings {
        /// Do not notify `on_failure` recipients for canceled runs.
        no_alert_for_canceled_runs: bool,
        /// Do not notify `on_failure` recipients for skipped runs.
        no_alert_for_skipped_runs: bool,
    }
}

schema_struct! {
    /// Notification options of a task.
    pub struct TaskNotificationSettings {
        /// Notify only on the last retry attempt.
        alert_on_last_attempt: bool,
        /// Do not notify `on_failure` recipients for canceled runs.
        no_alert_for_canceled_runs: bool,
        /// Do not notify `on_failure` recipients for skipped runs.
        no_alert_for_skipped_runs: bool,
    }
}

schema_struct! {
    /// A health threshold.
    #[schemars(extend("required" = ["metric", "op", "value"]))]
    pub struct JobsHealthRule {
        /// Metric evaluated.
        metric: JobsHealthMetric,
        /// Comparison operator.
        op: JobsHealthOperator,
        /// Threshold value.
        value: i64,
    }
}

schema_struct! {
    /// Health rules.
    pub struct JobsHealthRules {
        /// The rules.
        rules: Vec<JobsHealthRule>,
    }
}

schema_struct! {
    /// A SQL query that must be satisfied for a schedule or trigger to fire.
    #[schemars(extend("required" = ["sql_query_id", "warehouse_id"]))]
    pub struct SqlConditionConfiguration {
        /// Query evaluated.
        sql_query_id: String,
        /// How the result is interpreted.
        trigger_mode: SqlConditionTriggerMode,
        /// Warehouse running the query.
        warehouse_id: String,
    }
}

schema_struct! {
    /// A cron schedule.
    #[schemars(extend("required" = ["quartz_cron_expression", "timezone_id"]))]
    pub struct CronSchedule {
        /// Quartz cron expression, e.g. `0 0 * * * ?`.
        quartz_cron_expression: String,
        /// Java timezone id, e.g. `UTC` or `Europe/Amsterdam`.
        timezone_id: String,
        /// Paused or not (development mode pauses it).
        pause_status: PauseStatus,
        /// SQL condition gating scheduled runs.
        sql_condition: SqlConditionConfiguration,
    }
}

schema_struct! {
    /// Continuous execution settings.
    pub struct Continuous {
        /// Paused or not (development mode pauses it).
        pause_status: PauseStatus,
        /// Task-level retry behaviour.
        task_retry_mode: TaskRetryMode,
    }
}

schema_struct! {
    /// Continuous trigger settings (in `triggers`).
    pub struct ContinuousTriggerConfiguration {
        /// Task-level retry behaviour.
        task_retry_mode: TaskRetryMode,
    }
}

schema_struct! {
    /// Fire a run when files arrive.
    #[schemars(extend("required" = ["url"]))]
    pub struct FileArrivalTriggerConfiguration {
        /// Location monitored (external location root or subpath, or volume).
        url: String,
        /// Minimum seconds between triggered runs.
        min_time_between_triggers_seconds: i64,
        /// Seconds without file activity before a run starts.
        wait_after_last_change_seconds: i64,
    }
}

schema_struct! {
    /// Fire a run on an interval.
    #[schemars(extend("required" = ["interval", "unit"]))]
    pub struct PeriodicTriggerConfiguration {
        /// Interval length.
        interval: i64,
        /// Interval unit.
        unit: PeriodicUnit,
    }
}

schema_struct! {
    /// Fire a run when tables change.
    #[schemars(extend("required" = ["table_names"]))]
    pub struct TableUpdateTriggerConfiguration {
        /// Tables monitored (`catalog.schema.table`).
        table_names: Vec<String>,
        /// Whether any or all tables must change.
        condition: TableUpdateCondition,
        /// Minimum seconds between triggered runs.
        min_time_between_triggers_seconds: i64,
        /// Seconds without table updates before a run starts.
        wait_after_last_change_seconds: i64,
    }
}

schema_struct! {
    /// Fire a run on model events.
    #[schemars(extend("required" = ["condition"]))]
    pub struct ModelTriggerConfiguration {
        /// Event that fires the trigger.
        condition: ModelTriggerCondition,
        /// Model aliases monitored.
        aliases: Vec<String>,
        /// Model (`catalog.schema.model`) monitored.
        securable_name: String,
        /// Minimum seconds between triggered runs.
        min_time_between_triggers_seconds: i64,
        /// Seconds without model updates before a run starts.
        wait_after_last_change_seconds: i64,
    }
}

schema_struct! {
    /// A trigger; set one of `periodic`, `file_arrival`, `table_update` (or legacy `table`), `model`.
    pub struct TriggerSettings {
        /// Paused or not (development mode pauses it).
        pause_status: PauseStatus,
        /// Periodic trigger.
        periodic: PeriodicTriggerConfiguration,
        /// File arrival trigger.
        file_arrival: FileArrivalTriggerConfiguration,
        /// Table update trigger.
        table_update: TableUpdateTriggerConfiguration,
        /// Legacy spelling of `table_update`.
        table: TableUpdateTriggerConfiguration,
        /// Model trigger.
        model: ModelTriggerConfiguration,
        /// SQL condition gating the trigger.
        sql_condition: SqlConditionConfiguration,
    }
}

schema_struct! {
    /// A cron schedule inside `triggers`.
    #[schemars(extend("required" = ["quartz_cron_expression", "timezone_id"]))]
    pub struct CronTriggerConfiguration {
        /// Quartz cron expression.
        quartz_cron_expression: String,
        /// Java timezone id.
        timezone_id: String,
    }
}

schema_struct! {
    /// One trigger of the multi-trigger form (exclusive with `schedule`, `trigger`, `continuous`).
    pub struct TriggerConfiguration {
        /// Paused or not.
        pause_status: PauseStatus,
        /// Continuous trigger.
        continuous: ContinuousTriggerConfiguration,
        /// File arrival trigger.
        file_arrival: FileArrivalTriggerConfiguration,
        /// Model trigger.
        model: ModelTriggerConfiguration,
        /// Periodic trigger.
        periodic: PeriodicTriggerConfiguration,
        /// Cron trigger.
        schedule: CronTriggerConfiguration,
        /// SQL condition gating the trigger.
        sql_condition: SqlConditionConfiguration,
        /// Table update trigger.
        table_update: TableUpdateTriggerConfiguration,
    }
}

schema_struct! {
    /// A job-level parameter.
    #[schemars(extend("required" = ["name", "default"]))]
    pub struct JobParameterDefinition {
        /// Parameter name (letters, digits, `_`, `-`, `.`).
        name: String,
        /// Default value.
        default: String,
    }
}

schema_struct! {
    /// Queueing of runs.
    #[schemars(extend("required" = ["enabled"]))]
    pub struct QueueSettings {
        /// Queue runs instead of skipping them when limits are reached.
        enabled: bool,
    }
}

schema_struct! {
    /// Identity the job runs as; set one.
    pub struct JobRunAs {
        /// Workspace user email.
        user_name: String,
        /// Service principal application id.
        service_principal_name: String,
        /// Account group name.
        group_name: String,
    }
}

schema_struct! {
    /// Sparse checkout patterns.
    pub struct SparseCheckout {
        /// Patterns to include.
        patterns: Vec<String>,
    }
}

schema_struct! {
    /// A remote repository holding the job's source.
    #[schemars(extend("required" = ["git_url", "git_provider"]))]
    pub struct GitSource {
        /// Repository URL.
        git_url: String,
        /// Hosting service.
        git_provider: GitProvider,
        /// Branch (exclusive with `git_tag`, `git_commit`).
        git_branch: String,
        /// Tag.
        git_tag: String,
        /// Commit.
        git_commit: String,
        /// Sparse checkout.
        sparse_checkout: SparseCheckout,
    }
}

schema_struct! {
    /// Ownership marker of a deployed job (set by lakebundle).
    #[schemars(extend("required" = ["kind"]))]
    pub struct JobDeployment {
        /// Owner kind.
        kind: DeploymentKind,
        /// Workspace path of the deployment metadata.
        metadata_file_path: String,
        /// Deployment id.
        deployment_id: String,
        /// Deployment version id.
        version_id: String,
    }
}

schema_struct! {
    /// A named set of environment variables tasks can use.
    #[schemars(extend("required" = ["environment_variables_key"]))]
    pub struct JobEnvironmentVariables {
        /// Key tasks refer to with `environment_variables_key`.
        environment_variables_key: String,
        /// The variables (passed through as given).
        spec: IndexMap<String, serde_json::Value>,
    }
}

schema_struct! {
    /// A Databricks job: tasks, compute, schedule or triggers, notifications and permissions.
    pub struct Job {
        /// Job name (default `Untitled`; development mode prefixes it).
        name: String,
        /// Description of the job.
        description: String,
        /// Tasks of the job.
        tasks: Vec<Task>,
        /// Clusters shared by tasks.
        job_clusters: Vec<JobCluster>,
        /// Serverless environments tasks can reference.
        environments: Vec<JobEnvironment>,
        /// Environment-variable sets tasks can reference.
        environment_variables: Vec<JobEnvironmentVariables>,
        /// Job-level parameters.
        parameters: Vec<JobParameterDefinition>,
        /// Tags (a map; forwarded to job clusters).
        tags: IndexMap<String, String>,
        /// Cron schedule (exclusive with `continuous`).
        schedule: CronSchedule,
        /// Trigger fired by files, tables, models or time.
        trigger: TriggerSettings,
        /// Multiple triggers (exclusive with `schedule`, `trigger`, `continuous`).
        triggers: Vec<TriggerConfiguration>,
        /// Keep one run always active.
        continuous: Continuous,
        /// Email notifications.
        email_notifications: JobEmailNotifications,
        /// Webhook notifications.
        webhook_notifications: WebhookNotifications,
        /// Notification options.
        notification_settings: JobNotificationSettings,
        /// Timeout of each run in seconds (0 = none).
        timeout_seconds: i64,
        /// Most runs at once.
        max_concurrent_runs: i64,
        /// Health rules.
        health: JobsHealthRules,
        /// Run queueing.
        queue: QueueSettings,
        /// Identity the job runs as.
        run_as: JobRunAs,
        /// Remote repository with the job's source.
        git_source: GitSource,
        /// Ownership marker (lakebundle sets it on deploy).
        deployment: JobDeployment,
        /// UI editability.
        edit_mode: EditMode,
        /// Job format (ignored on write).
        format: JobFormat,
        /// Workspace folder of the job object.
        parent_path: String,
        /// Budget policy of the job.
        budget_policy_id: String,
        /// Usage policy of the job.
        usage_policy_id: String,
        /// Serverless performance mode.
        performance_target: PerformanceTarget,
        /// Flexibility of serverless run duration: NO_FLEXIBILITY, 4h, 12h, 24h or 72h.
        duration_target: String,
        /// Grants on the job, applied through the Permissions API.
        permissions: Vec<JobPermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}
