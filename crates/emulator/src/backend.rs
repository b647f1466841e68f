//! What the emulator asks of the database layer behind its instances.
//!
//! Two implementations: records only (`--no-postgres`) and real PostgreSQL
//! servers (`postgres::PgFleet`). The service handlers call these hooks at the
//! matching points of each REST operation and store what they return.
//! Methods may be added with a default body; keep both implementations honest.

use std::path::PathBuf;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request is wrong in a way the real service would reject (400).
    #[error("{0}")]
    Invalid(String),
    /// The thing named does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

/// Where a clone branches from its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchPoint {
    Now,
    /// RFC 3339 timestamp.
    Timestamp(String),
    /// WAL LSN like `0/2A156E`.
    Lsn(String),
}

#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// The instance's `uid` (stable across renames; names the data dir).
    pub uid: String,
    pub name: String,
    /// `CU_1` .. `CU_8`
    pub capacity: String,
    pub node_count: u32,
    pub enable_readable_secondaries: bool,
    pub enable_pg_native_login: bool,
    pub stopped: bool,
    /// `(parent uid, branch point)` for child instances.
    pub parent: Option<(String, BranchPoint)>,
    /// Per-server settings of Lakebase branches: `[0]` the primary, `[i]` the i-th replica
    /// (missing entries: none). Database instances leave it empty.
    pub servers: Vec<ServerSettings>,
}

/// One server's own settings, on top of what the instance's capacity gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerSettings {
    /// `postgresql.conf` lines written after the generated ones (so they win), in order.
    pub conf: Vec<(String, String)>,
    /// Keep this replica stopped while the instance runs (an idle read-only endpoint);
    /// ignored for the primary, which follows `stopped`.
    pub suspended: bool,
}

/// Connection endpoints of a running instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// `host:port` for read/write (psql, psycopg, tokio-postgres).
    pub read_write_dns: String,
    /// `host:port` of a readable secondary, when there is one.
    pub read_only_dns: Option<String>,
    pub pg_version: String,
    /// `host:port` of every readable secondary, in order (Lakebase read-only endpoints).
    pub replica_dns: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SyncedTableSpec {
    pub instance_uid: String,
    /// Postgres database (`logical_database_name`).
    pub database: String,
    pub schema: String,
    pub table: String,
    /// Source file `<lake-dir>/<catalog>/<schema>/<table>.csv|.jsonl`.
    pub source: PathBuf,
    pub primary_key_columns: Vec<String>,
    pub timeseries_key: Option<String>,
    /// SNAPSHOT | TRIGGERED | CONTINUOUS
    pub scheduling_policy: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub rows_upserted: u64,
    pub rows_deleted: u64,
    pub total_rows: u64,
}

/// What the latest sync of a synced table did. CONTINUOUS tables sync in
/// the background, so handlers ask for this rather than keep their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    pub stats: SyncStats,
    /// RFC 3339 end time of the latest successful sync.
    pub last_sync_time: Option<String>,
    /// Why the latest attempt failed (cleared by the next success).
    pub error: Option<String>,
}

#[async_trait]
pub trait DbBackend: Send + Sync + 'static {
    /// Create (initdb/clone + start) and return endpoints once it accepts connections.
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Endpoints, BackendError>;
    /// Apply capacity / node count / stopped changes.
    async fn update_instance(&self, spec: &InstanceSpec) -> Result<Endpoints, BackendError>;
    async fn delete_instance(&self, uid: &str, purge: bool) -> Result<(), BackendError>;
    /// Make `password` the login password of `role` until `valid_until` (RFC 3339).
    async fn set_credential(
        &self,
        uid: &str,
        role: &str,
        password: &str,
        valid_until: &str,
    ) -> Result<(), BackendError>;
    async fn database_exists(&self, uid: &str, database: &str) -> Result<bool, BackendError>;
    async fn create_database(&self, uid: &str, database: &str) -> Result<(), BackendError>;
    /// Create the target table and run the initial sync.
    async fn create_synced_table(&self, spec: &SyncedTableSpec) -> Result<SyncStats, BackendError>;
    /// Apply source changes since the last sync (TRIGGERED refresh).
    async fn refresh_synced_table(&self, spec: &SyncedTableSpec)
        -> Result<SyncStats, BackendError>;
    async fn delete_synced_table(
        &self,
        spec: &SyncedTableSpec,
        purge_data: bool,
    ) -> Result<(), BackendError>;
    /// On emulator start: adopt or restart the servers of these instances.
    async fn adopt(&self, specs: &[InstanceSpec])
        -> Result<Vec<(String, Endpoints)>, BackendError>;
    /// Stop every server (emulator shutdown / `emulator down`).
    async fn shutdown(&self) -> Result<(), BackendError>;
    /// The emulator process is leaving while its servers keep running (the
    /// `--local` workspace): stop background work, and do not stop servers
    /// when dropped. The next start adopts them.
    fn detach(&self) {}
    /// Latest sync outcome of a synced table (None: unknown to the backend).
    async fn synced_table_status(
        &self,
        _spec: &SyncedTableSpec,
    ) -> Result<Option<SyncStatus>, BackendError> {
        Ok(None)
    }
    /// On emulator start, after `adopt`: resume following CONTINUOUS tables
    /// (their target tables already exist; nothing is reloaded).
    async fn resume_synced_tables(&self, _specs: &[SyncedTableSpec]) -> Result<(), BackendError> {
        Ok(())
    }
    /// Whether instances are real servers a client can connect to (false: records only).
    fn serves_sql(&self) -> bool {
        false
    }
    /// The PostgreSQL version the servers run (e.g. `16.4`), when there are servers.
    fn server_version(&self) -> Option<String> {
        None
    }
    /// Run `sql` as the admin role in `database` of instance `uid` (records only: nothing
    /// to run). The instance must be running.
    async fn admin_sql(&self, _uid: &str, _database: &str, _sql: &str) -> Result<(), BackendError> {
        Ok(())
    }
}
