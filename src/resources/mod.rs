//! Resource kinds: one file per kind implementing [`ResourceKind`]; this file is
//! the registry. Adding a kind = one file + one line in [`registry`].
//!
//! Configs and remote objects cross this boundary as `serde_json::Value` in the
//! bundle's YAML shape (resolved; deferred references still as `${...}` text).
//! Each kind converts to/from its REST body itself.

pub mod app;
pub mod check;
pub mod common;
pub mod database_catalog;
pub mod database_instance;
pub mod job;
pub mod postgres;
pub mod schema;
pub mod synced_database_table;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::Diagnostics;

/// Supported resource kinds. Unsupported DAB kinds are not in this enum; the
/// loader warns about them by their YAML key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DatabaseInstances,
    DatabaseCatalogs,
    SyncedDatabaseTables,
    Jobs,
    Apps,
    PostgresProjects,
    PostgresBranches,
    PostgresEndpoints,
    PostgresDatabases,
    PostgresRoles,
    PostgresCatalogs,
    PostgresSyncedTables,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::DatabaseInstances,
        Kind::DatabaseCatalogs,
        Kind::SyncedDatabaseTables,
        Kind::Jobs,
        Kind::Apps,
        Kind::PostgresProjects,
        Kind::PostgresBranches,
        Kind::PostgresEndpoints,
        Kind::PostgresDatabases,
        Kind::PostgresRoles,
        Kind::PostgresCatalogs,
        Kind::PostgresSyncedTables,
    ];
    /// The YAML key under `resources:`.
    pub fn key(self) -> &'static str {
        match self {
            Kind::DatabaseInstances => "database_instances",
            Kind::DatabaseCatalogs => "database_catalogs",
            Kind::SyncedDatabaseTables => "synced_database_tables",
            Kind::Jobs => "jobs",
            Kind::Apps => "apps",
            Kind::PostgresProjects => "postgres_projects",
            Kind::PostgresBranches => "postgres_branches",
            Kind::PostgresEndpoints => "postgres_endpoints",
            Kind::PostgresDatabases => "postgres_databases",
            Kind::PostgresRoles => "postgres_roles",
            Kind::PostgresCatalogs => "postgres_catalogs",
            Kind::PostgresSyncedTables => "postgres_synced_tables",
        }
    }
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }
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
    /// The Permissions API object id for a resource id (postgres projects
    /// drop the `projects/` prefix). Default: the id itself.
    fn permissions_object_id(&self, id: &str) -> String {
        id.to_string()
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
    /// The live state a summary shows, for kinds that keep it somewhere the
    /// summary does not look by default (postgres: `status.current_state`).
    fn live_state(&self, remote: &Value) -> Option<String> {
        let _ = remote;
        None
    }
}

/// Every supported kind, in a fixed order.
pub fn registry() -> &'static [&'static dyn ResourceKind] {
    &[
        &database_instance::DatabaseInstanceKind,
        &database_catalog::DatabaseCatalogKind,
        &synced_database_table::SyncedDatabaseTableKind,
        &job::JobKind,
        &app::AppKind,
        &postgres::project::PostgresProjectKind,
        &postgres::branch::PostgresBranchKind,
        &postgres::endpoint::PostgresEndpointKind,
        &postgres::database::PostgresDatabaseKind,
        &postgres::role::PostgresRoleKind,
        &postgres::catalog::PostgresCatalogKind,
        &postgres::synced_table::PostgresSyncedTableKind,
    ]
}

pub fn kind_impl(kind: Kind) -> &'static dyn ResourceKind {
    registry()
        .iter()
        .copied()
        .find(|k| k.kind() == kind)
        .expect("every Kind has a registry entry")
}

/// DAB resource kinds that lakebundle recognises but does not deploy yet.
pub const UNSUPPORTED_KINDS: &[&str] = &[
    "pipelines",
    "schemas",
    "volumes",
    "registered_models",
    "models",
    "experiments",
    "model_serving_endpoints",
    "quality_monitors",
    "clusters",
    "dashboards",
    "secret_scopes",
    "sql_warehouses",
    "alerts",
    "genie_spaces",
    "vector_search_endpoints",
    "vector_search_indexes",
    "catalogs",
    "external_locations",
    "instance_pools",
    "job_runs",
    "secrets",
];

/// Every resource kind key of the official bundle schema: the supported ones
/// first, then [`UNSUPPORTED_KINDS`] (for "did you mean" on a typo'd kind).
pub fn all_kind_keys() -> impl Iterator<Item = &'static str> {
    Kind::ALL
        .into_iter()
        .map(Kind::key)
        .chain(UNSUPPORTED_KINDS.iter().copied())
}

/// Whether `key` names a resource kind of the official schema (supported or not).
pub fn is_known_kind_key(key: &str) -> bool {
    all_kind_keys().any(|k| k == key)
}

#[cfg(test)]
mod crud_tests;
