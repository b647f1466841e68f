//! The whole-bundle JSON Schema (draft 2020-12), generated from Rust types:
//! top-level sections here, resource kinds from the registry. Checked in as
//! `schemas/bundle.schema.json`; `lakebundle schema` prints it; the checker
//! (`check.rs`) validates resources against the same document.

use std::borrow::Cow;
use std::sync::OnceLock;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::common::{
    interpolation_schema, schema_enum, schema_struct, AllowInterpolation, Permission,
    INTERPOLATION_DEF,
};
use super::job::JobRunAs;
use super::{registry, UNSUPPORTED_KINDS};

schema_enum! {
    /// Deployment engine requested by the bundle (lakebundle is its own engine; kept for compatibility).
    EngineType { terraform, direct }
}
schema_enum! {
    /// Deployment mode of a target: `development` prefixes names and pauses schedules; `production` adds safety checks.
    Mode { development, production }
}
schema_enum! {
    /// Variable type; `complex` allows maps and sequences as values.
    VariableType { complex }
}

schema_struct! {
    /// The deployment lock.
    pub struct Lock {
        /// Take the lock during deploy and destroy (default true).
        enabled: bool,
        /// Take the lock over even if another deployment holds it.
        force: bool,
    }
}

schema_struct! {
    /// Deployment behaviour.
    pub struct Deployment {
        /// Fail the deployment when jobs or pipelines of the bundle are running.
        fail_on_active_runs: bool,
        /// Deployment lock settings.
        lock: Lock,
    }
}

schema_struct! {
    /// Git details of the bundle (detected when unset).
    pub struct Git {
        /// Branch name.
        branch: String,
        /// Origin URL of the repository.
        origin_url: String,
    }
}

schema_struct! {
    /// Bundle identity and deployment settings.
    #[schemars(extend("required" = ["name"]))]
    pub struct BundleSection {
        /// Name of the bundle; part of the default workspace root path.
        name: String,
        /// Id of a cluster that overrides the compute of every job task.
        cluster_id: String,
        /// Deprecated: use `cluster_id`.
        compute_id: String,
        /// Version constraint of the Databricks CLI (ignored by lakebundle).
        databricks_cli_version: String,
        /// Deployment settings.
        deployment: Deployment,
        /// Deployment engine (ignored by lakebundle).
        engine: EngineType,
        /// Git details.
        git: Git,
        /// Reserved bundle UUID.
        uuid: String,
    }
}

schema_struct! {
    /// Names of workspace objects whose ids a variable looks up at plan time; set one.
    pub struct Lookup {
        /// Alert name.
        alert: String,
        /// Cluster name.
        cluster: String,
        /// Cluster policy name.
        cluster_policy: String,
        /// Dashboard name.
        dashboard: String,
        /// Instance pool name.
        instance_pool: String,
        /// Job name.
        job: String,
        /// Metastore name.
        metastore: String,
        /// Notification destination name.
        notification_destination: String,
        /// Pipeline name.
        pipeline: String,
        /// Query name.
        query: String,
        /// Service principal name.
        service_principal: String,
        /// SQL warehouse name.
        warehouse: String,
    }
}

schema_struct! {
    /// A variable declaration. Values come from `--var`, `BUNDLE_VAR_<name>`, the target, or `default`.
    pub struct Variable {
        /// What the variable is for.
        description: String,
        /// Value used when nothing else sets one.
        default: Value,
        /// Variable type (`complex` for maps and sequences).
        #[serde(rename = "type")]
        var_type: VariableType,
        /// Resolve the value as the id of a named workspace object.
        lookup: Lookup,
    }
}

schema_struct! {
    /// Workspace connection and paths.
    pub struct Workspace {
        /// Workspace URL, e.g. `https://dbc-123.cloud.databricks.com`.
        host: String,
        /// `~/.databrickscfg` profile to authenticate with.
        profile: String,
        /// Root folder of the deployment (default `~/.bundle/${bundle.name}/${bundle.target}`).
        root_path: String,
        /// Folder for synced files (default `${workspace.root_path}/files`).
        file_path: String,
        /// Folder for deployment state (default `${workspace.root_path}/state`).
        state_path: String,
        /// Folder for built artifacts (default `${workspace.root_path}/artifacts`).
        artifact_path: String,
        /// Folder for resource definitions (default `${workspace.root_path}/resources`).
        resource_path: String,
        /// Databricks account id.
        account_id: String,
        /// Authentication type to force (e.g. `pat`, `oauth-m2m`).
        auth_type: String,
        /// Azure client id.
        azure_client_id: String,
        /// Azure environment.
        azure_environment: String,
        /// Azure login app id.
        azure_login_app_id: String,
        /// Azure tenant id.
        azure_tenant_id: String,
        /// Use Azure managed identity.
        azure_use_msi: bool,
        /// Azure workspace resource id.
        azure_workspace_resource_id: String,
        /// OAuth client id (the secret comes from the environment, never the bundle).
        client_id: String,
        /// Deprecated no-op.
        experimental_is_unified_host: bool,
        /// Google service account.
        google_service_account: String,
        /// Workspace id.
        workspace_id: String,
    }
}

schema_struct! {
    /// Files synchronised to the workspace.
    pub struct Sync {
        /// Extra files to include (gitignore syntax).
        include: Vec<String>,
        /// Files to exclude (gitignore syntax).
        exclude: Vec<String>,
        /// Local folders to synchronise (default: the bundle root).
        paths: Vec<String>,
    }
}

schema_struct! {
    /// Settings applied to every resource of a target.
    pub struct Presets {
        /// Prefix of resource names.
        name_prefix: String,
        /// Tags added to every resource that has tags.
        tags: IndexMap<String, String>,
        /// `max_concurrent_runs` of every job.
        jobs_max_concurrent_runs: i64,
        /// Pause status (PAUSED or UNPAUSED) of every schedule and trigger.
        trigger_pause_status: String,
        /// Deploy pipelines in development mode.
        pipelines_development: bool,
        /// Run from the bundle source instead of a workspace copy.
        source_linked_deployment: bool,
        /// Enable `dynamic_version` on every artifact.
        artifacts_dynamic_version: bool,
    }
}

schema_struct! {
    /// A file an artifact build produces.
    #[schemars(extend("required" = ["source"]))]
    pub struct ArtifactFile {
        /// Path of the built file.
        source: String,
    }
}

schema_struct! {
    /// A locally built artifact (e.g. a Python wheel) uploaded on deploy.
    pub struct Artifact {
        /// Build command.
        build: String,
        /// Patch the wheel version with a timestamp.
        dynamic_version: bool,
        /// Shell used for the build (`bash`, `sh`, `cmd`).
        executable: String,
        /// Built files.
        files: Vec<ArtifactFile>,
        /// Folder of the artifact.
        path: String,
        /// Artifact type (`whl`, `jar`).
        #[serde(rename = "type")]
        artifact_type: String,
    }
}

schema_struct! {
    /// Python code that defines or mutates resources.
    pub struct PythonSettings {
        /// Fully qualified mutator functions.
        mutators: Vec<String>,
        /// Fully qualified functions that load resources.
        resources: Vec<String>,
        /// Virtual environment path.
        venv_path: String,
    }
}

schema_struct! {
    /// Deprecated PyDABs settings.
    pub struct PyDabs {
        /// Enable PyDABs.
        enabled: bool,
    }
}

schema_struct! {
    /// Experimental settings.
    pub struct Experimental {
        /// Deploy files and artifacts as one immutable snapshot.
        immutable_folder: bool,
        /// Deprecated PyDABs settings.
        pydabs: PyDabs,
        /// Python resource loading.
        python: PythonSettings,
        /// Wrap Python wheel tasks.
        python_wheel_wrapper: bool,
        /// Record deployment history.
        record_deployment_history: bool,
        /// Commands run at deployment stages.
        scripts: IndexMap<String, String>,
        /// Keep the `.internal` folder.
        skip_artifact_cleanup: bool,
        /// Do not prefix schema names.
        skip_name_prefix_for_schema: bool,
        /// Legacy run-as behaviour.
        use_legacy_run_as: bool,
    }
}

schema_struct! {
    /// A named script run with `bundle run`.
    #[schemars(extend("required" = ["content"]))]
    pub struct Script {
        /// Shell commands.
        content: String,
        /// Environment variables of the script.
        env: IndexMap<String, String>,
    }
}

/// Suffix of the target-override copy of a resource definition (no `required`).
const OVERRIDE_SUFFIX: &str = "Override";

/// `resources:` — the supported kinds (strict) and the recognised unsupported
/// kinds (accepted as-is). Built from the registry so a new kind needs no edit here.
pub struct Resources;

/// `targets.<name>.resources:` — as [`Resources`], but fields required of a
/// complete resource are optional, since a target only overrides.
pub struct TargetResources;

fn resources_schema(generator: &mut SchemaGenerator, overrides: bool) -> Schema {
    let mut props = Map::new();
    for kind in registry() {
        let item = kind.schema(generator);
        let item = match (overrides, item.get("$ref").and_then(Value::as_str)) {
            (true, Some(r)) => json!({ "$ref": format!("{r}{OVERRIDE_SUFFIX}") }),
            _ => item.to_value(),
        };
        props.insert(
            kind.kind().key().to_string(),
            json!({
                "type": "object",
                "description": format!("`{}` resources of the bundle, by resource key.", kind.kind().key()),
                "additionalProperties": item,
            }),
        );
    }
    for key in UNSUPPORTED_KINDS {
        props.insert(
            (*key).to_string(),
            json!({
                "type": "object",
                "description": format!("`{key}` resources: recognised but not supported by lakebundle yet (validate warns; plan and deploy refuse them)."),
                "additionalProperties": {"type": "object", "description": format!("One `{key}` resource, accepted as written.")},
            }),
        );
    }
    let description = if overrides {
        "Resource overrides of the target, merged into the top-level resources by key."
    } else {
        "Resources of the bundle, by kind and resource key."
    };
    schemars::json_schema!({
        "type": "object",
        "description": description,
        "properties": props,
        "additionalProperties": false,
    })
}

impl JsonSchema for Resources {
    fn schema_name() -> Cow<'static, str> {
        "Resources".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        resources_schema(generator, false)
    }
}

impl JsonSchema for TargetResources {
    fn schema_name() -> Cow<'static, str> {
        "TargetResources".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        resources_schema(generator, true)
    }
}

// The two marker types only exist for their schemas; (de)serializing a bundle
// goes through the spanned node tree, never through these.
impl serde::Serialize for Resources {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}
impl<'de> serde::Deserialize<'de> for Resources {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Resources)
    }
}
impl serde::Serialize for TargetResources {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}
impl<'de> serde::Deserialize<'de> for TargetResources {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| TargetResources)
    }
}
impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resources")
    }
}
impl std::fmt::Debug for TargetResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetResources")
    }
}
impl Clone for Resources {
    fn clone(&self) -> Self {
        Resources
    }
}
impl Clone for TargetResources {
    fn clone(&self) -> Self {
        TargetResources
    }
}
impl PartialEq for Resources {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl PartialEq for TargetResources {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

schema_struct! {
    /// A deployment target: workspace, mode, variable values and overrides merged over the top level.
    pub struct Target {
        /// Use this target when none is selected.
        default: bool,
        /// Deployment mode.
        mode: Mode,
        /// Workspace of the target.
        workspace: Workspace,
        /// Variable values of the target: a bare value (the default) or `{default, lookup}`.
        variables: IndexMap<String, Value>,
        /// Resource overrides.
        resources: TargetResources,
        /// Presets of the target.
        presets: Presets,
        /// Permissions of the target (replace the top-level ones).
        permissions: Vec<Permission>,
        /// Identity jobs run as.
        run_as: JobRunAs,
        /// Sync settings of the target.
        sync: Sync,
        /// Git settings of the target.
        git: Git,
        /// Artifacts of the target.
        artifacts: IndexMap<String, Artifact>,
        /// Bundle settings of the target.
        bundle: BundleSection,
        /// Cluster overriding the compute of every job task.
        cluster_id: String,
        /// Deprecated: use `cluster_id`.
        compute_id: String,
    }
}

schema_struct! {
    /// A Databricks Asset Bundle as lakebundle reads it (`databricks.yml` and its includes).
    pub struct BundleRoot {
        /// Bundle identity and deployment settings.
        bundle: BundleSection,
        /// Further configuration files (globs relative to the bundle root; `.yml`, `.yaml`, `.json`).
        include: Vec<String>,
        /// Variable declarations.
        variables: IndexMap<String, Variable>,
        /// Deployment targets.
        targets: IndexMap<String, Target>,
        /// Deprecated spelling of `targets`.
        environments: IndexMap<String, Target>,
        /// Workspace connection and paths.
        workspace: Workspace,
        /// Files synchronised to the workspace.
        sync: Sync,
        /// Permissions applied to every resource that supports them.
        permissions: Vec<Permission>,
        /// Presets applied to every resource.
        presets: Presets,
        /// Identity jobs run as.
        run_as: JobRunAs,
        /// Experimental settings.
        experimental: Experimental,
        /// Locally built artifacts.
        artifacts: IndexMap<String, Artifact>,
        /// Resources.
        resources: Resources,
        /// Named scripts.
        scripts: IndexMap<String, Script>,
        /// Python resource loading.
        python: PythonSettings,
    }
}

/// Generate the bundle schema (see the module docs).
pub fn generate() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with_transform(AllowInterpolation)
        .into_generator();
    let mut root = generator.into_root_schema_for::<BundleRoot>().to_value();
    if let Some(Value::Object(defs)) = root.get_mut("$defs") {
        let overrides: Vec<(String, Value)> = registry()
            .iter()
            .filter_map(|k| {
                let mut scratch = SchemaGenerator::default();
                let r = k.schema(&mut scratch);
                let name = r.get("$ref")?.as_str()?.rsplit('/').next()?.to_string();
                let mut copy = defs.get(&name)?.clone();
                copy.as_object_mut()?.remove("required");
                Some((format!("{name}{OVERRIDE_SUFFIX}"), copy))
            })
            .collect();
        defs.extend(overrides);
        defs.insert(INTERPOLATION_DEF.into(), interpolation_schema());
        defs.sort_keys();
    }
    if let Value::Object(obj) = &mut root {
        obj.insert("title".into(), json!("lakebundle bundle configuration"));
    }
    root
}

/// The generated schema, built once per process.
pub fn bundle_schema_ref() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(generate)
}

/// The whole-bundle schema as checked in (`schemas/bundle.schema.json`).
pub fn bundle_schema() -> Value {
    bundle_schema_ref().clone()
}

/// The schema as the checked-in file's text: pretty JSON plus a newline.
pub fn bundle_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(bundle_schema_ref()).unwrap_or_default();
    text.push('\n');
    text
}
