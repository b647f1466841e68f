//! `apps`: Databricks Apps (`/api/2.0/apps`, reference §12). Source code,
//! `config` and `git_source` are deploy-time: they go in a Deploy body, never
//! in create/update.

use std::collections::HashSet;
use std::time::Duration;

use indexmap::IndexMap;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::common::{
    self, collect_outputs, literal_str, schema_enum, schema_struct, state_at, without_keys,
    AppPermission, LifecycleWithStarted, Poll,
};
use super::{
    Created, ExtraChanges, FieldRules, IdScheme, Kind, KindInfo, NameLink, PathField, PathKind,
    ResourceAddr, ResourceKind, RunAs, RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::model::ResourceConfig;
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::plan::FieldChange;

schema_enum! {
    /// Compute size of the app (server default MEDIUM).
    ComputeSize { MEDIUM, LARGE, XLARGE }
}
schema_enum! {
    /// Permission an app gets on a database instance.
    DatabasePermission { CAN_CONNECT_AND_CREATE }
}
schema_enum! {
    /// Permission an app gets on a job.
    JobResourcePermission { CAN_MANAGE, IS_OWNER, CAN_MANAGE_RUN, CAN_VIEW }
}
schema_enum! {
    /// Permission an app gets on a secret.
    SecretPermission { READ, WRITE, MANAGE }
}
schema_enum! {
    /// Permission an app gets on a SQL warehouse.
    SqlWarehousePermission { CAN_MANAGE, CAN_USE, IS_OWNER }
}
schema_enum! {
    /// Permission an app gets on a serving endpoint.
    ServingEndpointPermission { CAN_MANAGE, CAN_QUERY, CAN_VIEW }
}
schema_enum! {
    /// Kind of Unity Catalog securable.
    UcSecurableType { TABLE, VOLUME, FUNCTION, CONNECTION, MODEL_SERVICE }
}
schema_enum! {
    /// Permission an app gets on a Unity Catalog securable.
    UcSecurablePermission { SELECT, MODIFY, EXECUTE, READ_VOLUME, WRITE_VOLUME, USE_CONNECTION }
}
schema_enum! {
    /// Permission an app gets on a Genie space.
    GenieSpacePermission { CAN_VIEW, CAN_RUN, CAN_EDIT, CAN_MANAGE }
}
schema_enum! {
    /// Permission an app gets on an MLflow experiment.
    ExperimentPermission { CAN_READ, CAN_EDIT, CAN_MANAGE }
}
schema_enum! {
    /// Permission an app gets on another app.
    AppAppPermission { CAN_USE }
}

schema_struct! {
    /// A database instance the app may connect to.
    #[schemars(extend("required" = ["instance_name", "database_name", "permission"]))]
    pub struct AppResourceDatabase {
        /// Database instance name (a bundle instance's `name` links the two).
        instance_name: String,
        /// PostgreSQL database inside the instance.
        database_name: String,
        /// Permission granted to the app's service principal.
        permission: DatabasePermission,
    }
}
schema_struct! {
    /// A Lakebase Autoscaling (postgres) branch database the app may connect to.
    pub struct AppResourcePostgres {
        /// Branch resource name.
        branch: String,
        /// Database resource name.
        database: String,
        /// Permission granted to the app's service principal.
        permission: DatabasePermission,
    }
}
schema_struct! {
    /// A job the app may use.
    #[schemars(extend("required" = ["id", "permission"]))]
    pub struct AppResourceJob {
        /// Job id.
        id: String,
        /// Permission granted to the app's service principal.
        permission: JobResourcePermission,
    }
}
schema_struct! {
    /// A secret the app may read.
    #[schemars(extend("required" = ["scope", "key", "permission"]))]
    pub struct AppResourceSecret {
        /// Secret scope.
        scope: String,
        /// Secret key within the scope.
        key: String,
        /// Permission granted to the app's service principal.
        permission: SecretPermission,
    }
}
schema_struct! {
    /// A SQL warehouse the app may use.
    #[schemars(extend("required" = ["id", "permission"]))]
    pub struct AppResourceSqlWarehouse {
        /// SQL warehouse id.
        id: String,
        /// Permission granted to the app's service principal.
        permission: SqlWarehousePermission,
    }
}
schema_struct! {
    /// A model serving endpoint the app may use.
    #[schemars(extend("required" = ["name", "permission"]))]
    pub struct AppResourceServingEndpoint {
        /// Serving endpoint name.
        name: String,
        /// Permission granted to the app's service principal.
        permission: ServingEndpointPermission,
    }
}
schema_struct! {
    /// A Unity Catalog securable the app may use.
    #[schemars(extend("required" = ["securable_full_name", "securable_type", "permission"]))]
    pub struct AppResourceUcSecurable {
        /// Full name of the securable (`catalog.schema.object`).
        securable_full_name: String,
        /// Kind of securable.
        securable_type: UcSecurableType,
        /// Finer kind of securable, when the type needs one.
        securable_kind: String,
        /// Permission granted to the app's service principal.
        permission: UcSecurablePermission,
    }
}
schema_struct! {
    /// A Genie space the app may use.
    #[schemars(extend("required" = ["name", "space_id", "permission"]))]
    pub struct AppResourceGenieSpace {
        /// Genie space name.
        name: String,
        /// Genie space id.
        space_id: String,
        /// Permission granted to the app's service principal.
        permission: GenieSpacePermission,
    }
}
schema_struct! {
    /// An MLflow experiment the app may use.
    #[schemars(extend("required" = ["experiment_id", "permission"]))]
    pub struct AppResourceExperiment {
        /// Experiment id.
        experiment_id: String,
        /// Permission granted to the app's service principal.
        permission: ExperimentPermission,
    }
}
schema_struct! {
    /// Another app this app may call.
    pub struct AppResourceApp {
        /// App name.
        name: String,
        /// Permission granted to the app's service principal.
        permission: AppAppPermission,
    }
}

schema_struct! {
    /// One resource the app uses; set `name` and exactly one resource type.
    #[schemars(extend("required" = ["name"]))]
    pub struct AppResource {
        /// Name of the resource inside the app (the app's `valueFrom` key).
        name: String,
        /// Description of the resource.
        description: String,
        /// A database instance.
        database: AppResourceDatabase,
        /// A Lakebase Autoscaling database.
        postgres: AppResourcePostgres,
        /// A job.
        job: AppResourceJob,
        /// A secret.
        secret: AppResourceSecret,
        /// A SQL warehouse.
        sql_warehouse: AppResourceSqlWarehouse,
        /// A model serving endpoint.
        serving_endpoint: AppResourceServingEndpoint,
        /// A Unity Catalog securable.
        uc_securable: AppResourceUcSecurable,
        /// A Genie space.
        genie_space: AppResourceGenieSpace,
        /// An MLflow experiment.
        experiment: AppResourceExperiment,
        /// Another app.
        app: AppResourceApp,
    }
}

/// The resource-type keys of [`AppResource`].
const RESOURCE_TYPES: &[&str] = &[
    "database",
    "postgres",
    "job",
    "secret",
    "sql_warehouse",
    "serving_endpoint",
    "uc_securable",
    "genie_space",
    "experiment",
    "app",
];

schema_struct! {
    /// An environment variable of the app process.
    #[schemars(extend("required" = ["name"]))]
    pub struct AppEnvVar {
        /// Variable name.
        name: String,
        /// Literal value.
        value: String,
        /// Name of an app resource whose value (e.g. a connection string or id) fills the variable.
        value_from: String,
    }
}

schema_struct! {
    /// Process settings deployed with the source code (overrides `app.yaml`).
    pub struct AppConfig {
        /// Command line that starts the app.
        command: Vec<String>,
        /// Environment variables (sent as `env_vars` in the deployment).
        env: Vec<AppEnvVar>,
    }
}

schema_struct! {
    /// The git repository deployments may come from.
    #[schemars(extend("required" = ["url", "provider"]))]
    pub struct GitRepository {
        /// Repository URL.
        url: String,
        /// Git provider (case-insensitive): gitHub, gitHubEnterprise, bitbucketCloud, bitbucketServer, azureDevOpsServices, gitLab, gitLabEnterpriseEdition, awsCodeCommit.
        provider: String,
        /// Deploy automatically on pushes to the configured branch.
        auto_deploy: bool,
        /// Id of a git credential of the caller used to reach the repository.
        caller_credential_id: i64,
    }
}

schema_struct! {
    /// Which git reference a deployment checks out.
    pub struct AppGitSource {
        /// Branch to check out.
        branch: String,
        /// Tag to check out.
        tag: String,
        /// Commit SHA to check out.
        commit: String,
        /// Path of the app inside the repository (default: the root).
        source_code_path: String,
    }
}

schema_struct! {
    /// Unity Catalog tables receiving the app's OpenTelemetry data.
    #[schemars(extend("required" = ["logs_table", "metrics_table", "traces_table"]))]
    pub struct UnityCatalogTelemetry {
        /// Table for logs.
        logs_table: String,
        /// Table for metrics.
        metrics_table: String,
        /// Table for traces.
        traces_table: String,
    }
}

schema_struct! {
    /// A telemetry export destination.
    pub struct TelemetryExportDestination {
        /// Unity Catalog destination.
        unity_catalog: UnityCatalogTelemetry,
    }
}

schema_struct! {
    /// A Databricks App: a web application with its own service principal and compute.
    #[schemars(extend("required" = ["name"]))]
    pub struct App {
        /// App name: lowercase letters, digits and hyphens, unique in the workspace. Changing it replaces the app.
        name: String,
        /// Description of the app.
        description: String,
        /// Local folder with the app's source code, uploaded and deployed on every deploy.
        source_code_path: String,
        /// Start command and environment, deployed with the source code.
        config: AppConfig,
        /// Resources (databases, warehouses, secrets, ...) the app's service principal is granted.
        resources: Vec<AppResource>,
        /// OAuth scopes the app may use on behalf of its users.
        user_api_scopes: Vec<String>,
        /// Budget policy of the app.
        budget_policy_id: String,
        /// Usage policy of the app.
        usage_policy_id: String,
        /// Compute size.
        compute_size: ComputeSize,
        /// Minimum number of app instances (set together with `compute_max_instances`).
        compute_min_instances: i64,
        /// Maximum number of app instances (set together with `compute_min_instances`).
        compute_max_instances: i64,
        /// Forward the calling user's access token to the app.
        forward_user_access_token: bool,
        /// Git repository deployments may come from.
        git_repository: GitRepository,
        /// Git reference to deploy from instead of `source_code_path`.
        git_source: AppGitSource,
        /// Destinations for the app's telemetry.
        telemetry_export_destinations: Vec<TelemetryExportDestination>,
        /// App space the app belongs to (set on create only).
        space: String,
        /// Grants on the app, applied through the Permissions API.
        permissions: Vec<AppPermission>,
        /// Deployment lifecycle settings (`started` keeps compute running).
        lifecycle: LifecycleWithStarted,
    }
}

const BASE: &str = "/api/2.0/apps";

/// Never sent in create/update: bundle-only or deploy-time.
const NOT_IN_BODY: &[&str] = &[
    "permissions",
    "lifecycle",
    "source_code_path",
    "config",
    "git_source",
];

/// Fields the masked update accepts (§12.1).
const UPDATABLE: &[&str] = &[
    "description",
    "budget_policy_id",
    "usage_policy_id",
    "resources",
    "user_api_scopes",
    "forward_user_access_token",
    "compute_size",
    "compute_min_instances",
    "compute_max_instances",
    "git_repository",
    "telemetry_export_destinations",
];

/// Input fields GET returns.
const RETURNED: &[&str] = &[
    "name",
    "description",
    "resources",
    "user_api_scopes",
    "budget_policy_id",
    "usage_policy_id",
    "compute_size",
    "compute_min_instances",
    "compute_max_instances",
    "forward_user_access_token",
    "git_repository",
    "telemetry_export_destinations",
    "space",
];

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "url",
    "service_principal_id",
    "service_principal_client_id",
    "service_principal_name",
    "oauth2_app_client_id",
    "oauth2_app_integration_id",
    "app_status",
    "compute_status",
    "default_source_code_path",
    "effective_budget_policy_id",
    "effective_usage_policy_id",
    "effective_user_api_scopes",
    "creator",
    "create_time",
];

static RULES: FieldRules = FieldRules {
    immutable: &["name", "space"],
    replace_on_any_change: false,
    input_only: &[],
    output_only: &[
        "id",
        "url",
        "app_status",
        "compute_status",
        "active_deployment",
        "pending_deployment",
        "default_source_code_path",
        "default_git_source",
        "service_principal_id",
        "service_principal_client_id",
        "service_principal_name",
        "oauth2_app_client_id",
        "oauth2_app_integration_id",
        "effective_budget_policy_id",
        "effective_usage_policy_id",
        "effective_user_api_scopes",
        "create_time",
        "update_time",
        "creator",
        "updater",
        "thumbnail_url",
    ],
    bundle_only: NOT_IN_BODY,
};

pub struct AppKind;

fn path_for(name: &str) -> String {
    format!("{BASE}/{name}")
}

/// Whether the config asks for running compute.
pub fn wants_started(config: &Value) -> bool {
    started_setting(config) == Some(true)
}

/// `lifecycle.started` as written: `Some(true)`, `Some(false)`, or `None` when unset.
pub fn started_setting(config: &Value) -> Option<bool> {
    config
        .get("lifecycle")
        .and_then(|l| l.get("started"))
        .and_then(Value::as_bool)
}

/// Create/update body: the config without bundle-only and deploy-time fields.
pub fn api_body(config: &Value) -> Value {
    without_keys(config, NOT_IN_BODY)
}

/// Deploy body (`POST /apps/{name}/deployments`): snapshot of the uploaded
/// source at `workspace_source_path`, with `config.command` / `config.env`
/// (→ `env_vars`) and `git_source`.
pub fn deployment_body(config: &Value, workspace_source_path: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("mode".into(), json!("SNAPSHOT"));
    if let Some(p) = workspace_source_path {
        body.insert("source_code_path".into(), json!(p));
    }
    if let Some(cfg) = config.get("config") {
        if let Some(cmd) = cfg.get("command") {
            body.insert("command".into(), cmd.clone());
        }
        if let Some(env) = cfg.get("env") {
            body.insert("env_vars".into(), env.clone());
        }
    }
    if let Some(git) = config.get("git_source") {
        body.insert("git_source".into(), git.clone());
    }
    Value::Object(body)
}

/// Compute states in which the app runs or is about to.
const LIVE_COMPUTE: &[&str] = &["ACTIVE", "STARTING", "UPDATING"];

/// Deploy-time fields: sent in a deployment, never in create/update.
const DEPLOY_FIELDS: &[&str] = &["source_code_path", "config", "git_source"];

/// How far a deployment's `create_time` may precede the start of the call
/// that made it (clock skew between this machine and the workspace) and
/// still be taken as that call's deployment.
const ADOPT_SKEW: chrono::Duration = chrono::Duration::seconds(2);

/// Attempts at creating one deployment whose responses keep getting lost.
const DEPLOY_ATTEMPTS: u32 = 3;

fn compute_state(app: &Value) -> &str {
    state_at(app, "compute_status.state")
}

fn is_live(app: &Value) -> bool {
    LIVE_COMPUTE.contains(&compute_state(app))
}

/// The workspace folder the app's code is deployed from (`source_code_path`,
/// rewritten to the synced workspace path when the bundle is loaded).
pub fn source_path(config: &Value) -> Option<&str> {
    config.get("source_code_path").and_then(Value::as_str)
}

/// Whether the config names code to deploy (a source folder or a git reference).
pub fn has_source(config: &Value) -> bool {
    source_path(config).is_some() || config.get("git_source").is_some_and(|g| !g.is_null())
}

fn field(path: &str, old: Option<Value>, new: Option<Value>) -> FieldChange {
    FieldChange {
        path: path.into(),
        old,
        new,
        unknown: false,
        forces_replacement: false,
    }
}

/// Plan what the generic field diff cannot see: `lifecycle.started` against
/// the remote compute, and (with `started: true`) the deploy-time fields
/// against the last apply and the active deployment. `remote` is the app as read (None when not
/// refreshed: the last apply stands in for it).
///
/// - `started: true`: compute not running → update (start, then deploy);
///   stopped since the last apply is drift. A changed `source_code_path`,
///   `config` or `git_source`, or an active deployment of other code, is an
///   update too (a new deployment).
/// - `started: false`: running compute → update (stop).
/// - unset: the compute is left as it is; dropping an earlier `started: true`
///   is recorded (an update that calls nothing).
pub fn lifecycle_changes(desired: &Value, applied: &Value, remote: Option<&Value>) -> ExtraChanges {
    let mut out = ExtraChanges::default();
    let had = started_setting(applied);
    let running = remote.map(is_live);
    match started_setting(desired) {
        Some(true) => {
            if !running.unwrap_or(had == Some(true)) {
                out.fields.push(field(
                    "lifecycle.started",
                    Some(json!(false)),
                    Some(json!(true)),
                ));
                if had == Some(true) && running == Some(false) {
                    out.drift.push(field(
                        "lifecycle.started",
                        Some(json!(true)),
                        Some(json!(false)),
                    ));
                }
            }
            for key in DEPLOY_FIELDS {
                let (new, old) = (desired.get(*key), applied.get(*key));
                if !crate::plan::diff::values_equal(
                    new.unwrap_or(&Value::Null),
                    old.unwrap_or(&Value::Null),
                ) {
                    out.fields.push(field(key, old.cloned(), new.cloned()));
                }
            }
            // Code deployed outside lakebundle (only visible while the app runs).
            let live = remote.filter(|r| is_live(r));
            let active = live.and_then(|r| r.get("active_deployment"));
            let deploying = live
                .and_then(|r| r.get("pending_deployment"))
                .is_some_and(|d| state_at(d, "status.state") == "IN_PROGRESS");
            if live.is_some() && active.is_none() && !deploying && has_source(desired) {
                // Running but never deployed (an earlier deploy stopped before
                // its deployment succeeded): deploy now.
                out.fields.push(field(
                    "active_deployment",
                    None,
                    Some(json!(source_path(desired).unwrap_or("git_source"))),
                ));
            }
            let deployed = active.and_then(|d| d.get("source_code_path"));
            if let (Some(deployed), Some(want)) = (deployed, source_path(desired)) {
                let ours = source_path(applied) == Some(want);
                if deployed.as_str() != Some(want) && ours && desired.get("git_source").is_none() {
                    out.fields.push(field(
                        "source_code_path",
                        Some(deployed.clone()),
                        Some(json!(want)),
                    ));
                    out.drift.push(field(
                        "source_code_path",
                        Some(json!(want)),
                        Some(deployed.clone()),
                    ));
                }
            }
        }
        Some(false) => {
            if running.unwrap_or(had == Some(true)) {
                out.fields.push(field(
                    "lifecycle.started",
                    Some(json!(true)),
                    Some(json!(false)),
                ));
                if had == Some(false) && running == Some(true) {
                    out.drift.push(field(
                        "lifecycle.started",
                        Some(json!(false)),
                        Some(json!(true)),
                    ));
                }
            }
        }
        None => {
            if had == Some(true) {
                out.fields
                    .push(field("lifecycle.started", Some(json!(true)), None));
            }
        }
    }
    out
}

/// Bring the app's compute and code to what `config` asks for, after its
/// create or update: `started: true` starts the compute when it is not
/// running and deploys the source (waiting for the deployment to succeed);
/// `started: false` stops running compute; unset leaves it alone. `current`
/// is the app as last read. Returns the app as read at the end, or `None`
/// when nothing was done. `progress` hears what is happening.
pub async fn converge_lifecycle(
    client: &Client,
    name: &str,
    config: &Value,
    current: &Value,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Option<Value>, ApiError> {
    match started_setting(config) {
        Some(true) => {
            let app = ensure_started(client, name, current, timeout, progress).await?;
            if !has_source(config) {
                progress("compute started; no source_code_path or git_source to deploy".into());
                return Ok(Some(app));
            }
            let dep = deploy_after(client, name, config, &app, timeout, progress).await?;
            progress(format!(
                "deployment {} succeeded",
                state_at(&dep, "deployment_id")
            ));
            Ok(Some(
                client.call(Method::GET, &path_for(name), &[], None).await?,
            ))
        }
        Some(false) if is_live(current) => {
            progress("stopping the app's compute".into());
            Ok(Some(set_started(client, name, false, timeout).await?))
        }
        _ => Ok(None),
    }
}

/// Start the compute unless it is ACTIVE; returns the app once ACTIVE.
async fn ensure_started(
    client: &Client,
    name: &str,
    current: &Value,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Value, ApiError> {
    if compute_state(current) == "ACTIVE" {
        return Ok(current.clone());
    }
    progress("starting the app's compute".into());
    set_started(client, name, true, timeout).await
}

/// `lakebundle run` on an app: start its compute if it is not running,
/// deploy the code `config` names (the last applied configuration), and wait
/// for the deployment to succeed and the app to be RUNNING with compute
/// ACTIVE (`wait` false: return once the deployment is created). Returns the
/// app and the deployment.
pub async fn run_app(
    client: &Client,
    name: &str,
    config: &Value,
    wait: bool,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(Value, Value), ApiError> {
    let current = client.call(Method::GET, &path_for(name), &[], None).await?;
    let app = ensure_started(client, name, &current, timeout, progress).await?;
    if !has_source(config) {
        return Err(common::not_ready(
            &path_for(name),
            format!(
                "app {name} has no source_code_path or git_source in its deployed configuration; \
                 set one and run `lakebundle deploy`"
            ),
        ));
    }
    let source = source_path(config).unwrap_or("its git source");
    progress(format!("deploying {source}"));
    let created = create_deployment(client, name, config, &app, timeout).await?;
    if !wait {
        return Ok((app, created));
    }
    let dep = wait_deployment(client, name, &created, timeout).await?;
    progress(format!(
        "deployment {} succeeded",
        state_at(&dep, "deployment_id")
    ));
    let app = common::poll_get(client, &path_for(name), timeout, |app| {
        match (compute_state(&app), state_at(&app, "app_status.state")) {
            ("ACTIVE", "RUNNING") => Poll::Ready(app),
            ("ERROR", _) | (_, "CRASHED") => Poll::Failed(format!(
                "app {name} did not start: {}",
                state_at(&app, "app_status.message")
            )),
            (compute, status) => Poll::Pending(format!("{compute}/{status}")),
        }
    })
    .await?;
    Ok((app, dep))
}

/// Deploy the app's code and wait for the deployment to succeed (the
/// compute must be ACTIVE).
pub async fn deploy_source(
    client: &Client,
    name: &str,
    config: &Value,
    workspace_source_path: Option<&str>,
    timeout: Duration,
) -> Result<Value, ApiError> {
    let mut config = config.clone();
    if let (Value::Object(m), Some(p)) = (&mut config, workspace_source_path) {
        m.insert("source_code_path".into(), json!(p));
    }
    let app = client.call(Method::GET, &path_for(name), &[], None).await?;
    let progress = |_: String| {};
    deploy_after(client, name, &config, &app, timeout, &progress).await
}

async fn deploy_after(
    client: &Client,
    name: &str,
    config: &Value,
    app: &Value,
    timeout: Duration,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<Value, ApiError> {
    if let Some(p) = source_path(config) {
        progress(format!("deploying {p}"));
    }
    let created = create_deployment(client, name, config, app, timeout).await?;
    wait_deployment(client, name, &created, timeout).await
}

fn deployments_path(name: &str) -> String {
    format!("{}/deployments", path_for(name))
}

/// Wait for a deployment to reach SUCCEEDED (FAILED/CANCELLED fail).
async fn wait_deployment(
    client: &Client,
    name: &str,
    created: &Value,
    timeout: Duration,
) -> Result<Value, ApiError> {
    let path = deployments_path(name);
    let Some(dep_id) = created.get("deployment_id").and_then(Value::as_str) else {
        return Err(common::not_ready(
            &path,
            "the deployment response has no deployment_id".into(),
        ));
    };
    let dep_path = format!("{path}/{dep_id}");
    common::poll_get(client, &dep_path, timeout, |dep| {
        match state_at(&dep, "status.state") {
            "SUCCEEDED" => Poll::Ready(dep),
            "FAILED" | "CANCELLED" => Poll::Failed(format!(
                "deployment {dep_id} of app {name} failed: {}",
                state_at(&dep, "status.message")
            )),
            other => Poll::Pending(other.to_string()),
        }
    })
    .await
}

/// `POST /apps/{name}/deployments`, after any deployment still in progress
/// has finished. The call is not idempotent: when its response is lost, the
/// deployment it made (same source, created after the call began) is found
/// in the app's deployments and adopted; when there is none, it never
/// happened and the call is made again.
async fn create_deployment(
    client: &Client,
    name: &str,
    config: &Value,
    app: &Value,
    timeout: Duration,
) -> Result<Value, ApiError> {
    if let Some(pending) = app
        .get("pending_deployment")
        .filter(|d| state_at(d, "status.state") == "IN_PROGRESS")
    {
        // Its outcome does not matter: ours replaces it.
        let _ = wait_deployment(client, name, pending, timeout).await;
    }
    let path = deployments_path(name);
    let source = source_path(config);
    let body = deployment_body(config, source);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let began = chrono::Utc::now();
        match client.call(Method::POST, &path, &[], Some(&body)).await {
            Ok(created) => return Ok(created),
            Err(e) if e.is_outcome_unknown() => {
                if let Some(found) = find_deployment_since(client, name, source, began).await? {
                    return Ok(found);
                }
                if attempt >= DEPLOY_ATTEMPTS {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The newest deployment of `source` created at or after `since` (less the
/// allowed clock skew).
async fn find_deployment_since(
    client: &Client,
    name: &str,
    source: Option<&str>,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Value>, ApiError> {
    let earliest = since - ADOPT_SKEW;
    let created_at = |d: &Value| {
        chrono::DateTime::parse_from_rfc3339(state_at(d, "create_time"))
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let found = crate::api::list_all(
        client,
        &format!("{}/deployments", path_for(name)),
        &[],
        "app_deployments",
    )
    .await?
    .into_iter()
    .filter(|d| source.is_none_or(|s| d.get("source_code_path").and_then(Value::as_str) == Some(s)))
    .filter_map(|d| created_at(&d).filter(|t| *t >= earliest).map(|t| (t, d)))
    .max_by_key(|(t, _)| *t)
    .map(|(_, d)| d);
    Ok(found)
}

/// Start (`started = true`) or stop the app's compute and wait for it.
pub async fn set_started(
    client: &Client,
    name: &str,
    started: bool,
    timeout: Duration,
) -> Result<Value, ApiError> {
    let action = if started { "start" } else { "stop" };
    let path = path_for(name);
    client
        .call(
            Method::POST,
            &format!("{path}/{action}"),
            &[],
            Some(&json!({})),
        )
        .await?;
    let want = if started { "ACTIVE" } else { "STOPPED" };
    common::poll_get(client, &path, timeout, |app| match compute_state(&app) {
        s if s == want => Poll::Ready(app),
        "ERROR" => Poll::Failed(format!(
            "app {name} compute failed: {}",
            state_at(&app, "compute_status.message")
        )),
        other => Poll::Pending(other.to_string()),
    })
    .await
}

static INFO: KindInfo = KindInfo {
    noun: "app",
    plural: "apps",
    title: "Apps",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    state_fields: &["compute_status.state"],
    // A `no_compute` app stops at STOPPED.
    ready_states: &["ACTIVE", "STOPPED"],
    wait_text: "app compute to become ACTIVE or STOPPED",
    grants_securable: None,
    workspace_paths: WorkspacePaths::Fields(&[PathField {
        path: &["source_code_path"],
        kind: PathKind::Dir,
    }]),
    replace_loses_data: false,
    run: RunStyle::AppDeploy,
    run_as: RunAs::OwnIdentity,
    database_access: false,
    workspace_limit: None,
    ui_path: "/apps/{id}",
};

#[async_trait]
impl ResourceKind for AppKind {
    fn kind(&self) -> Kind {
        Kind::Apps
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    /// Create reads `lifecycle.started` (compute or `no_compute`); the body
    /// strips the engine fields itself.
    fn create_input<'a>(&self, config: &'a Value, _api_view: &'a Value) -> &'a Value {
        config
    }
    async fn after_ready(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        ready: Value,
        timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Value, ApiError> {
        let current = if ready.is_null() {
            client.call(Method::GET, &path_for(id), &[], None).await?
        } else {
            ready
        };
        let after = converge_lifecycle(client, id, config, &current, timeout, progress).await?;
        Ok(after.unwrap_or(current))
    }
    /// Compute and deployed code are not fields of the app object.
    fn extra_changes(
        &self,
        desired: &Value,
        applied: &Value,
        remote: Option<&Value>,
    ) -> ExtraChanges {
        lifecycle_changes(desired, applied, remote)
    }
    fn check_in_bundle(
        &self,
        addr: &ResourceAddr,
        rc: &ResourceConfig,
        resources: &IndexMap<ResourceAddr, ResourceConfig>,
        diags: &mut Diagnostics,
    ) {
        warn_on_job_permissions(addr, rc, resources, diags);
    }
    /// The app's own URL once it has one.
    fn ui_url(&self, host: &str, id: &str, remote: Option<&Value>) -> String {
        remote
            .and_then(|r| r.get("url"))
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(|u| {
                if u.contains("://") {
                    u.to_string()
                } else {
                    format!("https://{u}")
                }
            })
            .unwrap_or_else(|| format!("{}/apps/{id}", host.trim_end_matches('/')))
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<App>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<App>(self.kind(), key, node, diags);
        if let Some(name_node) = node.get("name") {
            if let Some(name) = name_node.as_str().filter(|s| !common::has_interpolation(s)) {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !valid {
                    diags.push(
                        Diag::error(format!("{addr}.name `{name}` is not a valid app name"))
                            .at(name_node.span, "use lowercase letters, digits and hyphens")
                            .help(
                                "app names may contain only lowercase letters, digits and hyphens",
                            ),
                    );
                }
            }
        }
        for (i, res) in node
            .get("resources")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let Some(map) = res.as_map() else { continue };
            let types: Vec<&str> = RESOURCE_TYPES
                .iter()
                .copied()
                .filter(|t| map.get(t).is_some())
                .collect();
            if types.len() != 1 {
                let what = if types.is_empty() {
                    "no resource type".to_string()
                } else {
                    format!("several resource types ({})", types.join(", "))
                };
                diags.push(
                    Diag::error(format!("{addr}.resources[{i}] has {what}"))
                        .at(res.span, "this app resource")
                        .help(format!("set exactly one of: {}", RESOURCE_TYPES.join(", "))),
                );
            }
        }
        common::check_permissions(&addr, node, diags);
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let resources = config.get("resources").and_then(Value::as_array);
        resources
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, r)| {
                let name = r
                    .get("database")
                    .and_then(|d| literal_str(d, "instance_name"))?;
                Some(NameLink {
                    field: format!("resources[{i}].database.instance_name"),
                    target_kind: Kind::DatabaseInstances,
                    name: name.to_string(),
                })
            })
            .collect()
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    /// Creates without compute unless `lifecycle.started` (the engine then
    /// calls [`deploy_source`] / [`set_started`]).
    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let query: Vec<(&str, String)> = if wants_started(config) {
            vec![]
        } else {
            vec![("no_compute", "true".into())]
        };
        let remote = client
            .call(Method::POST, BASE, &query, Some(&api_body(config)))
            .await?;
        Ok(common::created_by_name(config, remote))
    }
    /// An app being deleted counts as gone.
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let found = common::get_if_exists(client, &path_for(id)).await?;
        Ok(found.filter(|app| state_at(app, "compute_status.state") != "DELETING"))
    }
    /// Masked async update (`POST /apps/{name}/update`), then wait for it.
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let mask = common::update_mask(changed, UPDATABLE);
        if mask.is_empty() {
            return Ok(id.to_string());
        }
        let mut app = api_body(config);
        if let Value::Object(a) = &mut app {
            a.insert("name".into(), Value::String(id.to_string()));
        }
        let path = format!("{}/update", path_for(id));
        client
            .call(
                Method::POST,
                &path,
                &[],
                Some(&json!({"app": app, "update_mask": mask.join(",")})),
            )
            .await?;
        common::poll_get(
            client,
            &path,
            Duration::from_secs(20 * 60),
            |status| match state_at(&status, "status.state") {
                "SUCCEEDED" => Poll::Ready(status),
                "FAILED" => Poll::Failed(format!(
                    "update of app {id} failed: {}",
                    state_at(&status, "status.message")
                )),
                other => Poll::Pending(other.to_string()),
            },
        )
        .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[]).await
    }
    /// Ready when compute is ACTIVE or STOPPED (a `no_compute` app stops at STOPPED).
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = path_for(id);
        common::poll_get(client, &path, timeout, |app| {
            match state_at(&app, "compute_status.state") {
                s if INFO.ready_states.contains(&s) => Poll::Ready(app),
                "ERROR" => Poll::Failed(format!(
                    "app {id} compute failed: {}",
                    state_at(&app, "compute_status.message")
                )),
                "DELETING" => Poll::Failed(format!("app {id} is being deleted")),
                other => Poll::Pending(other.to_string()),
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
    /// YAML shape: the input fields GET returns (deploy-time fields are not
    /// observable on the app object).
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, RETURNED))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_app")
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("apps")
    }
    fn generate_source_dir(&self) -> &'static str {
        "src/app"
    }
    /// The code of the active deployment (else the app's default source
    /// folder), downloaded; `source_code_path` then names the local copy.
    async fn generate_files(
        &self,
        client: &Client,
        remote: &Value,
        config: &mut Value,
        _key: &str,
        source_from_yaml: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        let root = remote
            .pointer("/active_deployment/source_code_path")
            .or_else(|| remote.get("default_source_code_path"))
            .and_then(Value::as_str)
            .map(|p| p.trim_end_matches('/').to_string());
        let Some(root) = root else {
            return Ok(vec![]);
        };
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = match client.workspace().list(&dir).await {
                Ok(e) => e,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                match entry.object_type.as_deref() {
                    Some("DIRECTORY") => dirs.push(entry.path.clone()),
                    Some("FILE") | Some("NOTEBOOK") => {
                        let rel = entry
                            .path
                            .strip_prefix(&root)
                            .unwrap_or(&entry.path)
                            .trim_start_matches('/')
                            .to_string();
                        let bytes = client.workspace().export(&entry.path).await?;
                        files.push((rel, bytes));
                    }
                    _ => {}
                }
            }
        }
        if let Value::Object(m) = config {
            m.insert("source_code_path".into(), json!(source_from_yaml));
        }
        files.sort();
        Ok(files)
    }
}

/// Apps that reference a job with permissions: deploying the app grants its
/// service principal on the job, and the job's permissions (a full PUT) would
/// take that grant away again unless they list it.
fn warn_on_job_permissions(
    addr: &ResourceAddr,
    rc: &ResourceConfig,
    resources: &IndexMap<ResourceAddr, ResourceConfig>,
    diags: &mut Diagnostics,
) {
    let mut warned: HashSet<&ResourceAddr> = HashSet::new();
    for r in &rc.refs {
        if r.target.kind != Kind::Jobs
            || !r.at_path.starts_with("resources")
            || !warned.insert(&r.target)
        {
            continue;
        }
        let Some(job) = resources.get(&r.target) else {
            continue;
        };
        let Some(perms) = job.node.get("permissions").and_then(Node::as_seq) else {
            continue;
        };
        if perms.is_empty() {
            continue;
        }
        let sp_ref = format!("${{resources.apps.{}.service_principal_", addr.key);
        let listed = perms.iter().any(|e| {
            e.get("service_principal_name")
                .and_then(Node::as_str)
                .is_some_and(|s| s.starts_with(&sp_ref))
        });
        if listed {
            continue;
        }
        // The level the app asks for on the job (`resources[i].job.permission`).
        let level = r
            .at_path
            .strip_suffix(".job.id")
            .and_then(|base| {
                rc.node
                    .at_path(base)?
                    .pointer(&["job", "permission"])?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "CAN_MANAGE_RUN".into());
        diags.push(
            Diag::warning(format!(
                "app `{}` references job `{}`, which has permissions set; deploying the job's permissions would remove the app service principal's access",
                addr.key, r.target.key
            ))
            .at(rc.node.span, format!("{addr}"))
            .related(r.span, "the job reference")
            .help(format!(
                "add the app's service principal to the job's permissions:\n\n  resources:\n    jobs:\n      {job}:\n        permissions:\n          - level: {level}\n            service_principal_name: ${{resources.apps.{app}.service_principal_client_id}}",
                job = r.target.key,
                app = addr.key
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_app() -> Value {
        json!({
            "name": "my-lakebase-app", "source_code_path": "./app", "description": "d",
            "config": {"command": ["python", "app.py"], "env": [{"name": "DB", "value_from": "my-db"}]},
            "resources": [{"name": "my-db", "database": {"instance_name": "my-instance", "database_name": "db", "permission": "CAN_CONNECT_AND_CREATE"}}],
            "permissions": [{"level": "CAN_USE", "group_name": "users"}],
            "lifecycle": {"started": true}
        })
    }

    #[test]
    fn body_strips_deploy_time_fields() {
        let body = api_body(&seed_app());
        assert!(
            body.get("source_code_path").is_none()
                && body.get("config").is_none()
                && body.get("permissions").is_none()
        );
        assert_eq!(
            body["resources"][0]["database"]["instance_name"],
            "my-instance"
        );
    }

    #[test]
    fn deployment_body_maps_env_to_env_vars() {
        let body = deployment_body(&seed_app(), Some("/Workspace/x/app"));
        assert_eq!(
            body,
            json!({"mode": "SNAPSHOT", "source_code_path": "/Workspace/x/app", "command": ["python", "app.py"],
                   "env_vars": [{"name": "DB", "value_from": "my-db"}]})
        );
    }

    fn remote(compute: &str, deployed: Option<&str>) -> Value {
        let mut app = json!({"name": "my-lakebase-app", "compute_status": {"state": compute}});
        if let Some(p) = deployed {
            app["active_deployment"] =
                json!({"source_code_path": p, "status": {"state": "SUCCEEDED"}});
        }
        app
    }

    fn with_started(started: Option<bool>) -> Value {
        let mut app = seed_app();
        app["source_code_path"] = json!("/Workspace/x/app");
        match started {
            Some(s) => app["lifecycle"] = json!({"started": s}),
            None => {
                app.as_object_mut().map(|m| m.remove("lifecycle"));
            }
        }
        app
    }

    fn paths(changes: &[FieldChange]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    #[test]
    fn started_app_stopped_outside_is_drift_and_an_update() {
        let cfg = with_started(Some(true));
        let lc = lifecycle_changes(&cfg, &cfg, Some(&remote("STOPPED", None)));
        assert_eq!(paths(&lc.fields), ["lifecycle.started"]);
        assert_eq!(lc.fields[0].new, Some(json!(true)));
        assert_eq!(paths(&lc.drift), ["lifecycle.started"]);
        assert_eq!(lc.drift[0].new, Some(json!(false)));
        // Running the deployed code: nothing to do.
        let lc = lifecycle_changes(
            &cfg,
            &cfg,
            Some(&remote("ACTIVE", Some("/Workspace/x/app"))),
        );
        assert!(lc.fields.is_empty() && lc.drift.is_empty(), "{lc:?}");
        // Not refreshed: the last apply stands in for the remote.
        assert!(lifecycle_changes(&cfg, &cfg, None).fields.is_empty());
    }

    #[test]
    fn started_app_redeploys_changed_or_missing_code() {
        let applied = with_started(Some(true));
        let mut cfg = applied.clone();
        cfg["config"]["command"] = json!(["python", "main.py"]);
        let running = remote("ACTIVE", Some("/Workspace/x/app"));
        assert_eq!(
            paths(&lifecycle_changes(&cfg, &applied, Some(&running)).fields),
            ["config"]
        );
        // Running without a deployment (an earlier deploy stopped early).
        let lc = lifecycle_changes(&applied, &applied, Some(&remote("ACTIVE", None)));
        assert_eq!(paths(&lc.fields), ["active_deployment"]);
        // Other code deployed outside lakebundle.
        let lc = lifecycle_changes(&applied, &applied, Some(&remote("ACTIVE", Some("/other"))));
        assert_eq!(paths(&lc.fields), ["source_code_path"]);
        assert_eq!(lc.drift[0].new, Some(json!("/other")));
    }

    #[test]
    fn started_false_stops_and_unset_leaves_compute_alone() {
        let off = with_started(Some(false));
        let lc = lifecycle_changes(
            &off,
            &with_started(Some(true)),
            Some(&remote("ACTIVE", None)),
        );
        assert_eq!(paths(&lc.fields), ["lifecycle.started"]);
        assert_eq!(lc.fields[0].new, Some(json!(false)));
        assert!(
            lifecycle_changes(&off, &off, Some(&remote("STOPPED", None)))
                .fields
                .is_empty()
        );
        let unset = with_started(None);
        // Only dropping an earlier `started: true` is recorded; compute is not touched.
        let lc = lifecycle_changes(
            &unset,
            &with_started(Some(true)),
            Some(&remote("ACTIVE", None)),
        );
        assert_eq!(paths(&lc.fields), ["lifecycle.started"]);
        assert_eq!(lc.fields[0].new, None);
        for applied in [with_started(Some(false)), unset.clone()] {
            for compute in ["ACTIVE", "STOPPED"] {
                let lc = lifecycle_changes(&unset, &applied, Some(&remote(compute, None)));
                assert!(lc.fields.is_empty(), "{lc:?}");
            }
        }
    }

    #[test]
    fn database_resource_links_instance() {
        let links = AppKind.name_links(&seed_app());
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].field, "resources[0].database.instance_name");
        assert_eq!(links[0].name, "my-instance");
    }

    #[test]
    fn remote_shape_and_outputs() {
        let remote = json!({"name": "a", "description": "d", "url": "https://a", "compute_status": {"state": "ACTIVE"},
                            "service_principal_client_id": "sp", "id": "x"});
        assert_eq!(
            AppKind.remote_to_config(&remote),
            json!({"name": "a", "description": "d"})
        );
        let outs = AppKind.outputs("a", &remote);
        assert_eq!(outs["url"], "https://a");
        assert_eq!(outs["id"], "a");
        assert_eq!(outs["compute_status"]["state"], "ACTIVE");
    }
}
