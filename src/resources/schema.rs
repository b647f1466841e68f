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
use super::{registry, unsupported_kind_keys};

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
    for key in unsupported_kind_keys() {
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
    refine_names(&mut root);
    refine_variables(&mut root);
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
        require_task_type(defs);
        defs.sort_keys();
    }
    allow_empty_sections(&mut root);
    allow_anchor_keys(&mut root);
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

/// Unknown top-level keys: a key within one edit (deletion, insertion,
/// substitution, adjacent swap) of a known section is a misspelling and an
/// error; any other key is accepted and ignored. YAML anchors must be defined
/// on some key, and bundles park them on top-level keys that no section uses
/// (`x-defaults: &defaults`, `new_cluster: &new_cluster`); a schema sees no
/// anchors, so the line it can draw is "far from every real key".
fn allow_anchor_keys(root: &mut Value) {
    // `permissions: &permissions {permissions: [...]}` (mlops-stacks) parks an
    // anchor on the real key: a map holding only a permission list.
    if let Some(Value::Array(any)) = root.pointer_mut("/properties/permissions/anyOf") {
        any.push(json!({
            "type": "object",
            "description": "Anchor holder: `permissions: &name {permissions: [...]}`, referenced as `<<: *name` in resources.",
            "properties": {
                "permissions": {
                    "description": "The permission list the anchor carries.",
                    "type": "array",
                    "items": {"anyOf": [{"$ref": "#/$defs/Permission"}, {"$ref": "#/$defs/interpolation"}]},
                }
            },
            "required": ["permissions"],
            "additionalProperties": false,
        }));
    }
    let Some(obj) = root.as_object_mut() else {
        return;
    };
    let known: Vec<String> = obj
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    obj.insert(
        "patternProperties".into(),
        json!({ near_miss_pattern(&known): false }),
    );
    obj.insert(
        "additionalProperties".into(),
        json!({
            "description": "A key that is not a bundle section (an extension key such as `x-defaults`, or a key that only holds a YAML anchor): ignored. Keys one typo away from a section are errors instead."
        }),
    );
}

/// An anchored regex matching every string one edit away from a key in
/// `known` but none of `known` itself (substitutions exclude the original
/// character; variants that are themselves known keys are dropped).
pub fn near_miss_pattern(known: &[String]) -> String {
    fn esc(s: &str) -> String {
        regex::escape(s)
    }
    let mut alts: Vec<String> = Vec::new();
    for key in known {
        let chars: Vec<char> = key.chars().collect();
        let n = chars.len();
        let part = |a: usize, b: usize| esc(&chars[a..b].iter().collect::<String>());
        for i in 0..n {
            // deletion
            let del: String = chars[..i].iter().chain(&chars[i + 1..]).collect();
            if !del.is_empty() && !known.contains(&del) {
                alts.push(esc(&del));
            }
            // substitution (never the key itself)
            alts.push(format!(
                "{}[^{}]{}",
                part(0, i),
                esc(&chars[i].to_string()),
                part(i + 1, n)
            ));
            // adjacent swap
            if i + 1 < n && chars[i] != chars[i + 1] {
                let mut sw = chars.clone();
                sw.swap(i, i + 1);
                let sw: String = sw.into_iter().collect();
                if !known.contains(&sw) {
                    alts.push(esc(&sw));
                }
            }
        }
        // insertion
        for i in 0..=n {
            alts.push(format!("{}.{}", part(0, i), part(i, n)));
        }
    }
    alts.sort();
    alts.dedup();
    format!("^(?:{})$", alts.join("|"))
}

/// A key left empty (only comments under it) is null in YAML, and the CLI
/// reads it as unset: accept null for every top-level section except
/// `bundle` (which needs a name), for a target and each of its sections, for
/// each resource kind map, and for workspace fields (`host:` left for later).
fn allow_empty_sections(root: &mut Value) {
    fn add_null(schema: &mut Value) {
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        let empty = json!({"type": "null", "description": "Left empty: unset."});
        match obj.get_mut("anyOf") {
            Some(Value::Array(any)) => any.push(empty),
            _ => {
                let description = obj.remove("description");
                let inner = Value::Object(std::mem::take(obj));
                obj.insert("anyOf".into(), Value::Array(vec![inner, empty]));
                if let Some(d) = description {
                    obj.insert("description".into(), d);
                }
            }
        }
    }
    fn props_of<'a>(v: &'a mut Value, pointer: &str) -> Vec<&'a mut Value> {
        match v.pointer_mut(pointer) {
            Some(Value::Object(props)) => props.values_mut().collect(),
            _ => Vec::new(),
        }
    }
    if let Some(Value::Object(props)) = root.pointer_mut("/properties") {
        for (k, v) in props.iter_mut() {
            if k != "bundle" {
                add_null(v);
            }
        }
    }
    // Target entries (`dev:` with nothing under it) and their sections.
    for section in ["targets", "environments"] {
        if let Some(entry) = root.pointer_mut(&format!(
            "/properties/{section}/anyOf/0/additionalProperties"
        )) {
            add_null(entry);
        }
    }
    for v in props_of(root, "/$defs/Target/properties") {
        add_null(v);
    }
    for v in props_of(root, "/$defs/Workspace/properties") {
        add_null(v);
    }
    for def in ["Resources", "TargetResources"] {
        for v in props_of(root, &format!("/$defs/{def}/properties")) {
            add_null(v);
        }
    }
}

/// Name rules the editor can check: a database instance name (1-63
/// characters, a letter first, then letters, digits, hyphens) and an app
/// name (lowercase letters, digits, hyphens). A name holding a `${...}`
/// reference is accepted as written: its value is known only at deploy.
fn refine_names(root: &mut Value) {
    const RULES: &[(&str, &str, &str)] = &[
        (
            "DatabaseInstance",
            "[A-Za-z][A-Za-z0-9-]{0,62}",
            "Instance name: 1-63 characters, a letter first, then letters, digits and hyphens.",
        ),
        (
            "App",
            "[a-z0-9-]+",
            "App name: lowercase letters, digits and hyphens only.",
        ),
    ];
    for (def, pattern, message) in RULES {
        if let Some(Value::Object(name)) =
            root.pointer_mut(&format!("/$defs/{def}/properties/name"))
        {
            name.insert(
                "pattern".into(),
                json!(format!(r"^(?:{pattern}|.*\$\{{.+\}}.*)$")),
            );
            name.insert("patternErrorMessage".into(), json!(message));
        }
    }
}

/// `type` of a variable: only `complex` means something, but the CLI accepts
/// (and ignores) other words such as `string`, so the schema does too and
/// offers `complex` for completion. `value` is the older spelling the loader
/// still reads.
fn refine_variables(root: &mut Value) {
    if let Some(defs) = root.pointer_mut("/$defs").and_then(Value::as_object_mut) {
        defs.insert(
            "VariableType".into(),
            json!({
                "type": "string",
                "description": "Variable type: `complex` allows maps and sequences as values; other words (e.g. `string`) are accepted and ignored.",
                "examples": ["complex"],
            }),
        );
    }
    if let Some(Value::Object(props)) = root.pointer_mut("/$defs/Variable/properties") {
        props.insert(
            "value".into(),
            json!({"description": "The variable's value (older bundles; prefer `default`)."}),
        );
    }
}

/// A task of a job under `resources.jobs` must say what it runs (one
/// `*_task` field); a task in a target override only patches a task merged
/// by `task_key`, so overrides use `TaskOverride`, which requires nothing.
fn require_task_type(defs: &mut Map<String, Value>) {
    let Some(Value::Object(task)) = defs.get_mut("Task") else {
        return;
    };
    let kinds: Vec<String> = task
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().filter(|k| k.ends_with("_task")).cloned().collect())
        .unwrap_or_default();
    let mut relaxed = task.clone();
    relaxed.remove("required");
    relaxed.insert(
        "description".into(),
        json!("A task override of a target: fields merged into the task with the same `task_key`."),
    );
    // Under `allOf` so the resource checker, which picks among `anyOf`
    // branches by shape, keeps reading `Task` as one object schema.
    task.insert(
        "allOf".into(),
        json!([{"anyOf": kinds.iter().map(|k| json!({"required": [k]})).collect::<Vec<_>>()}]),
    );
    defs.insert("TaskOverride".into(), Value::Object(relaxed));
    fn retarget(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k == "$ref" && child == "#/$defs/Task" {
                        *child = json!("#/$defs/TaskOverride");
                    } else {
                        retarget(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(retarget),
            _ => {}
        }
    }
    if let Some(job) = defs.get_mut(&format!("Job{OVERRIDE_SUFFIX}")) {
        retarget(job);
    }
}
