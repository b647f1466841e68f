//! Resource kinds: one file per kind implementing [`ResourceKind`]; this file is
//! the registry. Adding a kind = one file + one line in [`registry`].
//!
//! Configs and remote objects cross this boundary as `serde_json::Value` in the
//! bundle's YAML shape (resolved; deferred references still as `${...}` text).
//! Each kind converts to/from its REST body itself.

pub mod alert;
pub mod app;
pub mod catalog;
pub mod check;
pub mod cluster;
pub mod common;
pub mod compiled_schema;
pub mod dashboard;
pub mod database_catalog;
pub mod database_instance;
pub mod external_location;
pub mod genie_space;
pub mod grants;
pub mod instance_pool;
pub mod job;
pub mod job_run;
pub mod ml;
pub mod pipeline;
pub mod postgres;
pub mod quality_monitor;
pub mod schema;
pub mod secret_scope;
pub mod sql_warehouse;
pub mod synced_database_table;
pub mod uc_schema;
pub mod uc_secret;
pub mod vector_search_endpoint;
pub mod vector_search_index;
pub mod volume;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::Diagnostics;

/// The kind table: one line per supported kind (variant, YAML key under
/// `resources:`, the implementation). It generates the [`Kind`] enum, its
/// keys and the [`registry`], so adding a kind is one file and one line here.
macro_rules! kinds {
    ($($variant:ident => $key:literal, $imp:expr;)*) => {
        /// Supported resource kinds. Unsupported DAB kinds are not in this enum;
        /// the loader warns about them by their YAML key.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        pub enum Kind {
            $(#[serde(rename = $key)] $variant,)*
        }

        impl Kind {
            pub const ALL: [Kind; [$($key),*].len()] = [$(Kind::$variant),*];
            /// The YAML key under `resources:`.
            pub fn key(self) -> &'static str {
                match self {
                    $(Kind::$variant => $key,)*
                }
            }
        }

        /// Every supported kind, in [`Kind::ALL`] order.
        pub fn registry() -> &'static [&'static dyn ResourceKind] {
            &[$(&$imp),*]
        }
    };
}

kinds! {
    DatabaseInstances => "database_instances", database_instance::DatabaseInstanceKind;
    DatabaseCatalogs => "database_catalogs", database_catalog::DatabaseCatalogKind;
    SyncedDatabaseTables => "synced_database_tables", synced_database_table::SyncedDatabaseTableKind;
    Jobs => "jobs", job::JobKind;
    Apps => "apps", app::AppKind;
    Pipelines => "pipelines", pipeline::PipelineKind;
    SqlWarehouses => "sql_warehouses", sql_warehouse::SqlWarehouseKind;
    SecretScopes => "secret_scopes", secret_scope::SecretScopeKind;
    Catalogs => "catalogs", catalog::CatalogKind;
    Schemas => "schemas", uc_schema::SchemaKind;
    Volumes => "volumes", volume::VolumeKind;
    PostgresProjects => "postgres_projects", postgres::project::PostgresProjectKind;
    PostgresBranches => "postgres_branches", postgres::branch::PostgresBranchKind;
    PostgresEndpoints => "postgres_endpoints", postgres::endpoint::PostgresEndpointKind;
    PostgresDatabases => "postgres_databases", postgres::database::PostgresDatabaseKind;
    PostgresRoles => "postgres_roles", postgres::role::PostgresRoleKind;
    PostgresCatalogs => "postgres_catalogs", postgres::catalog::PostgresCatalogKind;
    PostgresSyncedTables => "postgres_synced_tables", postgres::synced_table::PostgresSyncedTableKind;
    Clusters => "clusters", cluster::ClusterKind;
    InstancePools => "instance_pools", instance_pool::InstancePoolKind;
    VectorSearchEndpoints => "vector_search_endpoints", vector_search_endpoint::VectorSearchEndpointKind;
    VectorSearchIndexes => "vector_search_indexes", vector_search_index::VectorSearchIndexKind;
    Experiments => "experiments", ml::experiment::ExperimentKind;
    RegisteredModels => "registered_models", ml::registered_model::RegisteredModelKind;
    Models => "models", ml::model::ModelKind;
    ModelServingEndpoints => "model_serving_endpoints", ml::serving_endpoint::ServingEndpointKind;
    Dashboards => "dashboards", dashboard::DashboardKind;
    Alerts => "alerts", alert::AlertKind;
    GenieSpaces => "genie_spaces", genie_space::GenieSpaceKind;
    QualityMonitors => "quality_monitors", quality_monitor::QualityMonitorKind;
    ExternalLocations => "external_locations", external_location::ExternalLocationKind;
    Secrets => "secrets", uc_secret::SecretKind;
    JobRuns => "job_runs", job_run::JobRunKind;
}

impl Kind {
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }
    /// What the kind means: its description (see [`KindInfo`]).
    pub fn info(self) -> &'static KindInfo {
        kind_impl(self).info()
    }
    /// Singular noun for messages (`database instance`).
    pub fn noun(self) -> Cow<'static, str> {
        match self.info().noun {
            "" => Cow::Owned(noun_from_key(self.key())),
            n => Cow::Borrowed(n),
        }
    }
    /// Plural noun for messages (`database instances`).
    pub fn plural(self) -> Cow<'static, str> {
        match self.info().plural {
            "" => Cow::Owned(self.key().replace('_', " ")),
            n => Cow::Borrowed(n),
        }
    }
    /// Section title in `summary` (`Database instances`).
    pub fn title(self) -> Cow<'static, str> {
        match self.info().title {
            "" => Cow::Owned(capitalized(&self.plural())),
            t => Cow::Borrowed(t),
        }
    }
}

/// `sql_warehouses` → `sql warehouse`: the noun of a kind that names none.
fn noun_from_key(key: &str) -> String {
    let words = key.replace('_', " ");
    words.strip_suffix('s').unwrap_or(&words).to_string()
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// `resources.<kind>.<key>`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceAddr {
    pub kind: Kind,
    pub key: String,
}

impl ResourceAddr {
    pub fn new(kind: Kind, key: impl Into<String>) -> Self {
        ResourceAddr {
            kind,
            key: key.into(),
        }
    }
    /// Parse `resources.<kind>.<key>` (or `<kind>.<key>`).
    pub fn parse(s: &str) -> Option<ResourceAddr> {
        let s = s.strip_prefix("resources.").unwrap_or(s);
        let (kind, key) = s.split_once('.')?;
        Some(ResourceAddr::new(Kind::from_key(kind)?, key))
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resources.{}.{}", self.kind.key(), self.key)
    }
}

impl serde::Serialize for ResourceAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ResourceAddr::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("bad resource address {s:?}")))
    }
}

/// How a kind's fields behave in a diff. Paths are dotted field paths in the
/// YAML shape (`spec.primary_key_columns`, `parent_instance_ref`).
#[derive(Debug, Clone, Default)]
pub struct FieldRules {
    /// A change here forces delete + create.
    pub immutable: &'static [&'static str],
    /// No update API: any change forces replacement (catalogs, synced tables).
    pub replace_on_any_change: bool,
    /// Accepted on create, not returned by GET: `(field, effective twin)`; an
    /// empty twin means "compare against the last applied value".
    pub input_only: &'static [(&'static str, &'static str)],
    /// Set by the server only; never diffed against config.
    pub output_only: &'static [&'static str],
    /// Bundle-only fields never sent to the API (`permissions`, `lifecycle`, ...).
    pub bundle_only: &'static [&'static str],
}

/// How the remote id of an object of a kind is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdScheme {
    /// The config's `name` (instances, catalogs, apps).
    Name,
    /// The config's three-level `catalog.schema.name` (synced tables).
    FullName,
    /// Assigned by the server on create (jobs).
    ServerAssigned,
}

/// How an object is changed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStyle {
    /// PATCH of the changed fields with an `update_mask`.
    PatchWithMask,
    /// PUT of the whole object.
    Put,
    /// A `reset` call replacing all settings (jobs).
    Reset,
    /// No update API: any change replaces the object
    /// ([`FieldRules::replace_on_any_change`]).
    Replace,
}

/// What `lakebundle run KEY` does for a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStyle {
    /// Not runnable.
    None,
    /// Start a job run and follow it.
    JobRun,
    /// Start an update of the pipeline itself and follow it (pipelines; takes
    /// the refresh-selection flags).
    PipelineUpdate,
    /// Refresh the pipeline behind the object (synced tables).
    PipelineRefresh,
    /// Start the app's compute and deploy its source.
    AppDeploy,
}

/// How the top-level `run_as` applies to a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// The kind has no run identity.
    NotApplicable,
    /// Takes the top-level `run_as` unless it sets its own (jobs).
    Inherits,
    /// Runs as its own service principal: any other `run_as` is refused (apps).
    OwnIdentity,
}

/// What a local path field names, for translation to a workspace path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A notebook: the workspace object has no extension.
    Notebook,
    /// A plain file (python_file, sql file, requirements).
    File,
    /// A directory (app source, dbt project).
    Dir,
    /// A library (`whl`, `jar`, `egg`): often a build output, so checked at
    /// deploy only; a glob expands to every matching file.
    Library,
    /// An environment dependency: a library when it is a local path.
    Dependency,
    /// A path pattern (`transformations/**`): translated as written.
    Glob,
    /// A local file whose content the kind sends inline (a dashboard's
    /// `.lvdash.json`): not synced, so it may lie outside the sync root; at
    /// deploy the field becomes the file's absolute local path.
    Content,
}

impl PathKind {
    /// Built by `artifacts` before deploy: the CLI does not look for it at validate.
    pub fn is_build_output(self) -> bool {
        matches!(self, PathKind::Library | PathKind::Dependency)
    }
}

/// A config field holding a local path that deploy rewrites to its synced
/// workspace path. `path` segments are map keys; `*` is every item of a sequence.
#[derive(Debug, Clone, Copy)]
pub struct PathField {
    pub path: &'static [&'static str],
    pub kind: PathKind,
}

/// Which fields of a kind are local paths to translate.
#[derive(Debug, Clone, Copy)]
pub enum WorkspacePaths {
    None,
    /// Job settings: task paths, libraries (globs expand), environment
    /// dependencies, `git_source` turning paths off; artifacts attach here too.
    JobSettings,
    Fields(&'static [PathField]),
}

/// At most this many objects of the kind per workspace (a validate warning).
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceLimit {
    pub max: usize,
    pub help: &'static str,
}

/// What a kind means, as data read by every stage (validate, graph, plan,
/// apply, summary, run). Code lives in the [`ResourceKind`] methods only
/// where a kind is special. `""` nouns fall back to the YAML key.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// Singular noun for messages (`database instance`).
    pub noun: &'static str,
    /// Plural noun for messages (`database instances`).
    pub plural: &'static str,
    /// Section title in `summary`.
    pub title: &'static str,
    pub id_scheme: IdScheme,
    pub update: UpdateStyle,
    /// Dotted paths of the remote lifecycle state, the first present wins
    /// (empty: the kind has no state).
    pub state_fields: &'static [&'static str],
    /// States in which the object is usable.
    pub ready_states: &'static [&'static str],
    /// What apply waits for after a create or update, for progress lines.
    pub wait_text: &'static str,
    /// Unity Catalog securable type for `grants` (None: the kind has no grants).
    pub grants_securable: Option<&'static str>,
    pub workspace_paths: WorkspacePaths,
    /// A replace loses data (the instance's databases, a table's rows): deploy
    /// asks for a confirmation as for a delete.
    pub replace_loses_data: bool,
    pub run: RunStyle,
    pub run_as: RunAs,
    /// `credential` / `psql` can open a database session on it.
    pub database_access: bool,
    pub workspace_limit: Option<WorkspaceLimit>,
    /// The workspace UI page below the host: `{id}` is the id, `{id_path}`
    /// the id with dots as slashes (empty: the host itself).
    pub ui_path: &'static str,
}

impl KindInfo {
    /// The description of a kind that declares nothing special: a
    /// name-addressed object updated by PATCH, ready once it can be read.
    pub const GENERIC: KindInfo = KindInfo {
        noun: "",
        plural: "",
        title: "",
        id_scheme: IdScheme::Name,
        update: UpdateStyle::PatchWithMask,
        state_fields: &[],
        ready_states: &[],
        wait_text: "",
        grants_securable: None,
        workspace_paths: WorkspacePaths::None,
        replace_loses_data: false,
        run: RunStyle::None,
        run_as: RunAs::NotApplicable,
        database_access: false,
        workspace_limit: None,
        ui_path: "",
    };
}

/// Plan-time changes that are not fields of the remote object (an app's
/// compute and deployed code).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExtraChanges {
    /// Planned changes (each makes the resource an update).
    pub fields: Vec<crate::plan::FieldChange>,
    /// What changed outside lakebundle (old = last apply, new = remote).
    pub drift: Vec<crate::plan::FieldChange>,
}

/// An implicit dependency by name, e.g. a catalog's `database_instance_name`
/// equal to a bundle instance's literal `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameLink {
    /// Field of the dependent that holds the name (for the edge label).
    pub field: String,
    pub target_kind: Kind,
    /// The target's name (its `name` config field).
    pub name: String,
}

/// Where a deployment lives, for kinds that mark remote objects as owned by
/// it (jobs: `deployment.metadata_file_path`).
#[derive(Debug, Clone, Copy)]
pub struct DeploymentInfo<'a> {
    pub addr: &'a ResourceAddr,
    /// Workspace path of the deployment's `metadata.json` (under the state dir).
    pub metadata_file_path: &'a str,
}

/// Where a client connects to a resource that serves PostgreSQL, with a
/// fresh token (`psql KEY`, `credential KEY`).
#[derive(Clone)]
pub struct Connection {
    /// `host` or `host:port`.
    pub host: String,
    pub token: String,
    pub expire_time: String,
}

impl fmt::Debug for Connection {
    // The token never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("token", &"<redacted>")
            .field("expire_time", &self.expire_time)
            .finish()
    }
}

/// Result of a create: the remote id and the remote object as returned.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub remote: Value,
}

#[async_trait]
pub trait ResourceKind: Send + Sync + 'static {
    fn kind(&self) -> Kind;
    fn rules(&self) -> &FieldRules;
    /// JSON Schema of the bundle YAML for one resource of this kind.
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;
    /// Fields that exist only after apply and may be referenced
    /// (`id`, `uid`, `read_write_dns`, `data_synchronization_status.pipeline_id`, ...).
    fn output_fields(&self) -> &'static [&'static str];
    /// Validate one resolved resource node: unknown fields (warning), types,
    /// enums, ranges. `key` is the resource key.
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics);
    /// Implicit dependencies by name found in a resolved config.
    fn name_links(&self, config: &Value) -> Vec<NameLink>;
    /// The remote id this config will have if the kind is addressed by name
    /// (None for jobs, whose id the server assigns).
    fn id_from_config(&self, config: &Value) -> Option<String>;

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError>;
    /// `Ok(None)` when the remote object does not exist (404).
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError>;
    /// Update in place; `changed` lists the top-level fields that differ.
    /// Returns the new id (apps/instances keep theirs; returned for uniformity).
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError>;
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError>;
    /// Wait until the resource is usable (instance AVAILABLE, app ACTIVE, ...).
    /// Returns the remote object as last read.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError>;
    /// After a create whose outcome is unknown: find the object the create may
    /// have made (by name, or by deployment tag for jobs).
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError>;
    /// Convert a remote object into the bundle's YAML shape, for diffing
    /// against config (drop output-only fields, map `effective_*` twins).
    fn remote_to_config(&self, remote: &Value) -> Value;
    /// [`ResourceKind::remote_to_config`] for a plan, which reads every
    /// resource once: a kind whose YAML view is a part of the read may move
    /// that part out instead of copying it. The read is then what is left:
    /// only a kind whose other hooks (`extra_changes`, `output_changes`,
    /// `effective_*` twins) do not need the moved part may do so.
    fn remote_into_config(&self, remote: &mut Value) -> Value {
        self.remote_to_config(remote)
    }
    /// Output values recorded in state and offered to `${resources...}` refs.
    fn outputs(&self, id: &str, remote: &Value) -> Value;
    /// The config as the engine sends AND diffs it: adds the fields lakebundle
    /// manages for this kind (jobs: `deployment {kind: BUNDLE,
    /// metadata_file_path}` and `edit_mode: UI_LOCKED`, so `find_existing` can
    /// adopt a job whose create response was lost). Default: unchanged.
    fn with_deployment_marker(&self, config: &Value, info: &DeploymentInfo<'_>) -> Value {
        let _ = info;
        config.clone()
    }
    /// Permissions API object type (`jobs`, `apps`, `database-instances`), if any.
    fn permissions_object_type(&self) -> Option<&'static str> {
        None
    }
    /// The level table the bundle-wide `permissions:` are mapped through for
    /// this kind (see `config::permissions`): its Permissions API object
    /// type, or a table of its own (secret scopes: `secret-acls`). None: the
    /// kind takes no permissions.
    fn permission_levels(&self) -> Option<&'static str> {
        self.permissions_object_type()
    }
    /// Resource type of this kind in the Databricks CLI's terraform engine
    /// state (`databricks_job`), to take over a terraform-deployed target.
    /// `None`: the terraform engine never deployed this kind.
    fn terraform_type(&self) -> Option<&'static str> {
        None
    }
    /// The attribute of a terraform state instance holding the id lakebundle
    /// uses (`id`; `name` for the kinds addressed by name).
    fn terraform_id_attribute(&self) -> &'static str {
        if self
            .id_from_config(&serde_json::json!({"name": "n"}))
            .is_some()
        {
            "name"
        } else {
            "id"
        }
    }
    /// The KIND word of `lakebundle generate KIND` (`job`, `database-instance`),
    /// from the bundle key as the official CLI spells it (messages use
    /// [`Kind::noun`]).
    fn generate_name(&self) -> String {
        let key = self.kind().key();
        key.strip_suffix('s').unwrap_or(key).replace('_', "-")
    }
    /// The flag of `generate` that names the existing object, without the
    /// dashes: `existing-<kind>-name` for kinds addressed by name,
    /// `existing-<kind>-id` otherwise (the Databricks CLI's `existing-job-id`,
    /// `existing-app-name`).
    fn generate_id_flag(&self) -> String {
        let what = if self.terraform_id_attribute() == "name" {
            "name"
        } else {
            "id"
        };
        format!("existing-{}-{what}", self.generate_name())
    }
    /// Default directory (in the bundle) of the files `generate` downloads.
    fn generate_source_dir(&self) -> &'static str {
        "src"
    }
    /// The bundle configuration of an existing remote object, as `generate`
    /// writes it: the YAML shape of the object (as diffed against config),
    /// without empty values.
    fn generated_config(&self, remote: &Value) -> Value {
        common::prune_empty(&self.remote_to_config(remote))
    }
    /// Download the files an existing object runs (a job's notebooks, an
    /// app's source) or is defined by (a dashboard's `.lvdash.json`) for
    /// `generate`, and point `config` at them: `key` is the resource key
    /// written, `source_from_yaml` the source directory as seen from the
    /// generated YAML file. Returns `(path inside the source directory, content)`.
    async fn generate_files(
        &self,
        client: &Client,
        remote: &Value,
        config: &mut Value,
        key: &str,
        source_from_yaml: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
        let _ = (client, remote, config, key, source_from_yaml);
        Ok(vec![])
    }

    // Everything below has a default, so a kind written against the first
    // methods alone still compiles and behaves as a plain object.

    /// What the kind means, as data (nouns, id scheme, readiness, ...).
    fn info(&self) -> &'static KindInfo {
        &KindInfo::GENERIC
    }
    /// Kind-specific clean-up of a resolved resource node in the loader
    /// (instances: `custom_tags` forms). `addr` is for messages.
    fn normalize(&self, addr: &str, node: &mut Node, diags: &mut Diagnostics) {
        let _ = (addr, node, diags);
    }
    /// The config `create` reads: the API view (engine fields dropped) unless
    /// the kind needs the engine fields at create (apps: `lifecycle.started`).
    fn create_input<'a>(&self, config: &'a Value, api_view: &'a Value) -> &'a Value {
        let _ = config;
        api_view
    }
    /// Whether the kind applies its `permissions` block itself (secret scopes:
    /// ACLs) instead of through the Permissions API.
    fn applies_own_permissions(&self) -> bool {
        false
    }
    /// Apply the `permissions` of `config` to the object `id` (only called when
    /// [`Self::applies_own_permissions`]); `applied` is the last applied config.
    async fn apply_own_permissions(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        applied: Option<&Value>,
    ) -> Result<(), ApiError> {
        let _ = (client, id, config, applied);
        Ok(())
    }
    /// After the object is ready: converge what is not a field of the object
    /// (an app's compute and deployed code). Returns the object as last read.
    async fn after_ready(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        ready: Value,
        timeout: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Value, ApiError> {
        let _ = (client, id, config, timeout, progress);
        Ok(ready)
    }
    /// Plan-time changes beyond the object's fields (see [`ExtraChanges`]).
    fn extra_changes(
        &self,
        desired: &Value,
        applied: &Value,
        remote: Option<&Value>,
    ) -> ExtraChanges {
        let _ = (desired, applied, remote);
        ExtraChanges::default()
    }
    /// Plan-time changes found by comparing the remote object with the
    /// outputs recorded at the last apply (dashboards: an `etag` that moved
    /// means an edit outside lakebundle, to be overwritten). Default: none.
    fn output_changes(&self, outputs: &Value, remote: Option<&Value>) -> ExtraChanges {
        let _ = (outputs, remote);
        ExtraChanges::default()
    }
    /// Checks that need the other resources of the bundle (after the
    /// loader's permission defaults are applied).
    fn check_in_bundle(
        &self,
        addr: &ResourceAddr,
        rc: &crate::config::model::ResourceConfig,
        resources: &indexmap::IndexMap<ResourceAddr, crate::config::model::ResourceConfig>,
        diags: &mut Diagnostics,
    ) {
        let _ = (addr, rc, resources, diags);
    }
    /// The workspace UI address of a deployed object.
    fn ui_url(&self, host: &str, id: &str, remote: Option<&Value>) -> String {
        let _ = remote;
        let host = host.trim_end_matches('/');
        let page = self
            .info()
            .ui_path
            .replace("{id_path}", &id.replace('.', "/"))
            .replace("{id}", id);
        format!("{host}{page}")
    }
    /// Checks of the resource as written, before variables are resolved (a UC
    /// secret's `value` must be a variable reference, not a literal).
    fn check_unresolved(&self, addr: &str, node: &Node, diags: &mut Diagnostics) {
        let _ = (addr, node, diags);
    }
    /// Top-level fields whose values never reach a plan, the state or a log:
    /// they are shown and stored as a digest ([`common::redact_sensitive`]),
    /// which still shows a change; the plaintext only goes to the API.
    fn sensitive_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// The Permissions API object id for a resource id (postgres projects
    /// drop the `projects/` prefix). Default: the id itself.
    fn permissions_object_id(&self, id: &str) -> String {
        id.to_string()
    }
    /// The Permissions API object id when it is a field of the object rather
    /// than its id (serving endpoints, legacy models: a server-assigned id
    /// beside the name). `known` is the object as read, or its recorded
    /// outputs. Default: [`Self::permissions_object_id`].
    fn permissions_object_id_of(&self, id: &str, known: &Value) -> String {
        let _ = known;
        self.permissions_object_id(id)
    }
    /// Names other resources may use to point at this one (implicit graph
    /// links): its literal `name` by default; path-named kinds give their
    /// path as written (`${resources.postgres_projects.p.id}/branches/dev`).
    fn link_names(&self, config: &Value) -> Vec<String> {
        config
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .into_iter()
            .collect()
    }
    /// Delete with the last applied configuration at hand (postgres
    /// projects and branches read `purge_on_delete`). Default: [`Self::delete`].
    async fn delete_applied(
        &self,
        client: &Client,
        id: &str,
        applied: &Value,
    ) -> Result<(), ApiError> {
        let _ = applied;
        self.delete(client, id).await
    }
    /// The PostgreSQL host clients connect to, for kinds that serve
    /// connections (postgres endpoints: `status.hosts.host`).
    fn connect_host(&self, remote: &Value) -> Option<String> {
        let _ = remote;
        None
    }
    /// Whether `psql KEY` / `credential KEY` can log in to a resource of this
    /// kind through [`Self::connect`] (database instances have their own path).
    fn connectable(&self) -> bool {
        false
    }
    /// Whether `name` is the full remote name of an object of this kind
    /// (`projects/p/branches/b/endpoints/e`), so `psql` / `credential` can
    /// connect to it without a bundle resource.
    fn is_remote_name(&self, name: &str) -> bool {
        let _ = name;
        false
    }
    /// Where to connect to the deployed resource `id`, with a fresh token.
    async fn connect(&self, client: &Client, id: &str) -> Result<Connection, ApiError> {
        let _ = client;
        Err(ApiError::Other {
            method: "GET".into(),
            path: id.to_string(),
            status: 0,
            error_code: "NOT_CONNECTABLE".into(),
            message: format!("a {} serves no PostgreSQL connections", self.kind()),
        })
    }
}

pub fn kind_impl(kind: Kind) -> &'static dyn ResourceKind {
    // `kinds!` builds the registry in `Kind::ALL` order (checked by a test).
    registry()[kind as usize]
}

/// DAB resource kinds that lakebundle recognises but does not deploy yet: none
/// now (every kind of the official schema has its file); kept so a kind the
/// schema gains later can be recognised and warned about by name first.
pub const UNSUPPORTED_KINDS: &[&str] = &[];

/// Every resource kind key of the official bundle schema: the supported ones
/// first, then [`UNSUPPORTED_KINDS`] (for "did you mean" on a typo'd kind).
pub fn all_kind_keys() -> impl Iterator<Item = &'static str> {
    Kind::ALL
        .into_iter()
        .map(Kind::key)
        .chain(unsupported_kind_keys())
}

/// [`UNSUPPORTED_KINDS`] less any kind the registry supports (a kind added to
/// `kinds!` need not be taken off the list at the same time).
pub fn unsupported_kind_keys() -> impl Iterator<Item = &'static str> {
    UNSUPPORTED_KINDS
        .iter()
        .copied()
        .filter(|k| Kind::from_key(k).is_none())
}

/// Whether `key` names a resource kind of the official schema (supported or not).
pub fn is_known_kind_key(key: &str) -> bool {
    all_kind_keys().any(|k| k == key)
}

#[cfg(test)]
mod crud_tests;

#[cfg(test)]
mod registry_tests {
    use super::*;

    /// Every kind's description is complete and agrees with its code.
    #[test]
    fn each_kind_descriptor_is_consistent() {
        assert_eq!(registry().len(), Kind::ALL.len());
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let imp = kind_impl(kind);
            let info = imp.info();
            assert_eq!(imp.kind(), kind, "registry order");
            assert_eq!(registry()[i].kind(), kind);
            // The key round-trips through every spelling of it.
            assert_eq!(Kind::from_key(kind.key()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.key());
            let addr = ResourceAddr::new(kind, "k");
            assert_eq!(ResourceAddr::parse(&addr.to_string()), Some(addr));
            assert!(!unsupported_kind_keys().any(|k| k == kind.key()), "{kind}");
            // References may use `id` of every kind.
            assert!(imp.output_fields().contains(&"id"), "{kind}");
            // Ready states are read from a state field.
            assert_eq!(
                info.ready_states.is_empty(),
                info.state_fields.is_empty(),
                "{kind}"
            );
            // A kind that describes itself does so completely, and its
            // update style agrees with its field rules. (A kind still on
            // `KindInfo::GENERIC` gets nouns from its key; see below.)
            if !info.noun.is_empty() {
                assert!(!info.plural.is_empty() && !info.title.is_empty(), "{kind}");
                assert!(!info.wait_text.is_empty(), "{kind}");
                assert_ne!(info.noun, info.plural, "{kind}");
                // Empty: no page of its own (secret scopes).
                assert!(
                    info.ui_path.is_empty() || info.ui_path.starts_with('/'),
                    "{kind}"
                );
                assert_eq!(
                    info.update == UpdateStyle::Replace,
                    imp.rules().replace_on_any_change,
                    "{kind}: no update API ⇔ any change replaces"
                );
            }
            // A kind addressed by name knows its id from the config.
            let config = serde_json::json!({"name": "n", "catalog": "c", "schema": "s"});
            let id = imp.id_from_config(&config);
            match info.id_scheme {
                IdScheme::ServerAssigned => assert_eq!(id, None, "{kind}"),
                IdScheme::Name | IdScheme::FullName => {}
            }
            for (field, _) in imp.rules().input_only {
                assert!(!field.is_empty(), "{kind}");
            }
            if let WorkspacePaths::Fields(fields) = info.workspace_paths {
                assert!(fields.iter().all(|f| !f.path.is_empty()), "{kind}");
            }
            if let Some(limit) = info.workspace_limit {
                assert!(limit.max > 0 && !limit.help.is_empty(), "{kind}");
            }
        }
    }

    /// The first five kinds describe themselves (none runs on the generic
    /// fallback).
    #[test]
    fn first_kinds_have_their_own_description() {
        for kind in [
            Kind::DatabaseInstances,
            Kind::DatabaseCatalogs,
            Kind::SyncedDatabaseTables,
            Kind::Jobs,
            Kind::Apps,
        ] {
            assert!(!kind.info().noun.is_empty(), "{kind}");
        }
    }

    /// A kind that declares no description still gets usable messages.
    #[test]
    fn generic_nouns_come_from_the_key() {
        assert_eq!(noun_from_key("sql_warehouses"), "sql warehouse");
        assert_eq!(noun_from_key("schemas"), "schema");
        assert_eq!(capitalized("secret scopes"), "Secret scopes");
        assert_eq!(capitalized(""), "");
        assert_eq!(KindInfo::GENERIC.noun, "");
        assert_eq!(Kind::Jobs.noun(), "job");
        assert_eq!(Kind::DatabaseInstances.plural(), "database instances");
        assert_eq!(Kind::SyncedDatabaseTables.title(), "Synced database tables");
    }
}
