//! Real PostgreSQL servers behind emulated database instances ([`PgFleet`]).
//!
//! # Conventions
//!
//! **Endpoints.** Each server listens on its own loopback address
//! `127.0.0.N` (N = 2..254) on the default port 5432, so `read_write_dns` is
//! just `127.0.0.N` and the seed's `psycopg2.connect(host=instance.read_write_dns, ...)`,
//! `psql "postgresql://user:token@<read_write_dns>/databricks_postgres"` and
//! tokio-postgres work unchanged (Linux routes all of 127/8 to `lo`). When
//! no such address is free on 5432 the server takes `127.0.0.1` and a free
//! port, and the DNS is `127.0.0.1:PORT` (clients then pass `host`/`port`
//! separately, or use a `postgresql://127.0.0.1:PORT/...` URI). SSL is on
//! (a self-signed certificate made with `openssl`), so `sslmode=require`
//! works; plain connections are accepted too.
//!
//! **Roles and credentials.** See [`pg::roles`](self): the token of a
//! generated credential is the password of the caller's role (named after
//! the user's email or service principal id, created on first use, LOGIN
//! CREATEDB, never CREATEROLE) with `VALID UNTIL` = the token's expiry. One
//! password per role: the API hands a caller's live token out again rather
//! than replacing it (`instances::credential`). `enable_pg_native_login =
//! false` rejects logins of roles that are not identity roles (`pg_hba.conf`
//! `reject`); `true` lets any role with a password log in. Every instance
//! offers `CREATE EXTENSION databricks_auth` with SECURITY DEFINER
//! `databricks_create_role(name, 'USER'|'SERVICE_PRINCIPAL'|'GROUP')`,
//! `databricks_create_native_role(name, password)` and
//! `databricks_drop_role(name)`.
//!
//! **Capacity.** `shared_buffers`/`work_mem`: CU_1 32 MB/4 MB, CU_2 64/8,
//! CU_4 128/16, CU_8 256/32 (the service's ~16 GB per CU, scaled down; ×2
//! per step). A capacity change restarts the server.
//!
//! **Files.** Under the fleet root (`<emulator data dir>/pg`):
//! `admin.secret` (0600, the admin role's password), `tls/`, `pginst/` (a
//! private mirror of the installation: copies of `postgres` and `pg_ctl`,
//! the share dir as symlinks plus `databricks_auth`; system directories
//! are never written), `_template/`
//! (a pristine cluster every new instance is copied from), and per instance
//! uid: `data/` (PGDATA), `server.log`, `wal_archive/`, `base-N/` (base
//! backups), `replica-N/` (HA nodes), `instance.json` (addresses, settings;
//! no secrets).
//!
//! **Processes.** Servers are started with `pg_ctl` and survive an emulator
//! crash; [`DbBackend::adopt`] re-uses running ones and restarts the rest;
//! [`DbBackend::shutdown`] (and dropping the fleet) stops every server
//! found under the root. When the emulator runs as root, servers run as
//! the system user `lakebundle-pg` (created on first use); ancestors of the
//! root get the others-traverse bit so that user can reach its data.

#[path = "pg/clone.rs"]
mod clone;
pub use clone::parse_lsn;
#[path = "pg/error.rs"]
pub mod error;
#[path = "pg/replicas.rs"]
mod replicas;
#[path = "pg/roles.rs"]
pub mod roles;
#[path = "pg/server.rs"]
pub mod server;
#[path = "pg/sync.rs"]
pub mod sync;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::backend::{
    BackendError, DbBackend, Endpoints, InstanceSpec, ServerSettings, SyncStats, SyncStatus,
    SyncedTableSpec,
};
use error::{PgError, PgResult};
use server::{PgBinaries, RunAs, ServerConf, ServerDirs, DEFAULT_DB};

/// A base backup an instance can be restored from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BaseBackup {
    dir: PathBuf,
    /// Every point at or after this time is restorable from it.
    time: DateTime<Utc>,
    lsn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReplicaMeta {
    name: String,
    addr: SocketAddrV4,
}

/// What the fleet remembers about an instance (`instance.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InstanceMeta {
    uid: String,
    name: String,
    capacity: String,
    addr: SocketAddrV4,
    node_count: u32,
    readable: bool,
    native_login: bool,
    stopped: bool,
    bases: Vec<BaseBackup>,
    replicas: Vec<ReplicaMeta>,
    /// Per-server settings (Lakebase endpoints; see [`InstanceSpec::servers`]).
    #[serde(default)]
    servers: Vec<ServerSettings>,
}

impl InstanceMeta {
    fn apply(&mut self, spec: &InstanceSpec) {
        self.name = spec.name.clone();
        self.capacity = spec.capacity.clone();
        self.node_count = spec.node_count.clamp(1, 3);
        self.readable = spec.enable_readable_secondaries;
        self.native_login = spec.enable_pg_native_login;
        self.stopped = spec.stopped;
        self.servers = spec.servers.clone();
    }

    /// Server `i`'s own settings (0: the primary, i: the i-th replica).
    fn server(&self, i: usize) -> ServerSettings {
        self.servers.get(i).cloned().unwrap_or_default()
    }
}

/// One synced table followed by the fleet.
struct TableSync {
    /// Serialises syncs of one table (refresh vs the CONTINUOUS watcher).
    lock: tokio::sync::Mutex<()>,
    status: parking_lot::Mutex<SyncStatus>,
    watcher: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How a sync applies the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncMode {
    /// New synced table: create the target from scratch.
    Create,
    /// SNAPSHOT refresh: replace every row.
    Replace,
    /// TRIGGERED / CONTINUOUS: upserts and deletes by key.
    Incremental,
}

struct Fleet {
    root: PathBuf,
    bin: PgBinaries,
    run_as: RunAs,
    admin_password: String,
    ssl: bool,
    /// `shared_preload_libraries` of every server.
    preload: Vec<String>,
    /// Superuser-only extensions made in `template1` (see `roles`).
    precreated: Vec<String>,
    template: tokio::sync::Mutex<()>,
    locks: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    syncs: parking_lot::Mutex<HashMap<String, Arc<TableSync>>>,
    shut_down: AtomicBool,
}

/// Real PostgreSQL servers behind the emulator's database instances.
pub struct PgFleet {
    inner: Arc<Fleet>,
}

impl std::fmt::Debug for PgFleet {
    // The admin password never reaches Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFleet")
            .field("root", &self.inner.root)
            .field("bindir", &self.inner.bin.bindir)
            .field("version", &self.inner.bin.version)
            .finish_non_exhaustive()
    }
}

const TEMPLATE: &str = "_template";
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn valid_uid(uid: &str) -> PgResult<()> {
    let ok = !uid.is_empty()
        && uid.len() <= 64
        && uid != TEMPLATE
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PgError::Invalid(format!(
            "instance uid {uid:?} is not a valid identifier"
        )))
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

impl PgFleet {
    /// A fleet rooted at `root` (`<emulator data dir>/pg`). Fails when no
    /// PostgreSQL server binaries are installed.
    pub fn new(root: PathBuf) -> Result<PgFleet, BackendError> {
        Ok(PgFleet::open(root)?)
    }

    fn open(root: PathBuf) -> PgResult<PgFleet> {
        let mut bin = PgBinaries::discover()?;
        let run_as = RunAs::detect()?;
        std::fs::create_dir_all(&root).map_err(PgError::io(&root))?;
        let root = std::fs::canonicalize(&root).map_err(PgError::io(&root))?;
        // Owner-only; a server user (when root) gets the traverse bit below, never read.
        server::set_mode(&root, 0o700)?;
        run_as.ensure_traversable(&root)?;
        let secret = root.join("admin.secret");
        let admin_password = match std::fs::read_to_string(&secret) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let pw = random_hex(24);
                server::write_private(&secret, &pw)?;
                pw
            }
        };
        let ssl = ensure_tls(&root.join("tls"));
        // databricks_auth goes into a private mirror of the installation,
        // so system directories are never modified (and need not be writable).
        if let Err(e) = bin.private_install(&root.join("pginst")) {
            tracing::warn!("no private PostgreSQL install ({e}); using the system share dir");
        }
        if let Some(share) = bin.effective_sharedir() {
            if let Err(e) = roles::install_auth_extension(&share) {
                tracing::warn!("cannot install the databricks_auth extension: {e}");
            }
        }
        let mut precreated = Vec::new();
        if let Some(share) = &bin.sharedir {
            for ext in roles::PRECREATED_EXTENSIONS {
                if roles::needs_superuser(share, ext) == Some(true) {
                    precreated.push(ext.to_string());
                }
            }
        }
        let preload: Vec<String> = precreated
            .iter()
            .filter(|e| e.as_str() == "pg_stat_statements")
            .cloned()
            .collect();
        Ok(PgFleet {
            inner: Arc::new(Fleet {
                root,
                bin,
                run_as,
                admin_password,
                ssl,
                preload,
                precreated,
                template: tokio::sync::Mutex::new(()),
                locks: parking_lot::Mutex::new(HashMap::new()),
                syncs: parking_lot::Mutex::new(HashMap::new()),
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// PostgreSQL version in use, e.g. `15.18`.
    pub fn server_version(&self) -> &str {
        &self.inner.bin.version
    }

    /// Data directory of an instance's primary.
    pub fn data_dir(&self, uid: &str) -> PathBuf {
        self.inner.instance_dir(uid).join("data")
    }

    /// Whether `CREATE EXTENSION name` can work on these servers.
    pub fn extension_available(&self, name: &str) -> bool {
        self.inner.bin.effective_sharedir().is_some_and(|s| {
            s.join("extension")
                .join(format!("{name}.control"))
                .is_file()
        })
    }

    /// Where `postgres`/`pg_ctl` run from (the private install under the root).
    pub fn server_bindir(&self) -> PathBuf {
        self.inner.bin.tool("postgres").with_file_name("")
    }

    /// Stop every server under `root` without a fleet (`emulator down` of
    /// a data dir whose emulator is gone). Returns how many were stopped.
    pub fn stop_servers_under(root: &Path) -> Result<usize, BackendError> {
        let fleet = PgFleet::open(root.to_path_buf())?;
        let n = fleet.inner.stop_all_blocking();
        fleet.inner.shut_down.store(true, Ordering::SeqCst);
        Ok(n)
    }
}

/// A PostgreSQL server found running under a fleet root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningServer {
    /// The instance's name (from `instance.json`), else its uid; replicas add
    /// ` (replica-N)`.
    pub label: String,
    pub data_dir: PathBuf,
    pub pid: i32,
}

/// Every live postmaster under `root` (`<data dir>/pg`), found from the files alone (no
/// PostgreSQL installation needed): what `emulator down` reports it stopped.
pub fn running_servers(root: &Path) -> Vec<RunningServer> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for e in entries.flatten() {
        let dir = e.path();
        if !dir.is_dir() {
            continue;
        }
        let uid = e.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(dir.join("instance.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .unwrap_or_else(|| uid.clone());
        let mut candidates = vec![(name.clone(), dir.join("data"))];
        if let Ok(subs) = std::fs::read_dir(&dir) {
            for sub in subs.flatten() {
                let n = sub.file_name().to_string_lossy().into_owned();
                if n.starts_with("replica-") {
                    candidates.push((format!("{name} ({n})"), sub.path().join("data")));
                }
            }
        }
        for (label, data) in candidates {
            if let Some(pid) = server::live_postmaster(&data) {
                out.push(RunningServer {
                    label,
                    data_dir: data,
                    pid,
                });
            }
        }
    }
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

impl Drop for PgFleet {
    fn drop(&mut self) {
        if !self.inner.shut_down.swap(true, Ordering::SeqCst) {
            self.inner.abort_watchers();
            self.inner.stop_all_blocking();
        }
    }
}

/// A self-signed certificate for `ssl = on` (clients use `sslmode=require`).
fn ensure_tls(dir: &Path) -> bool {
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    if crt.is_file() && key.is_file() {
        // Data dirs made by earlier versions: tighten in place.
        let _ = server::set_mode(dir, 0o700);
        let _ = server::set_mode(&key, 0o600);
        return true;
    }
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-days", "3650", "-subj", "/CN=lakebundle-local"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let ok = matches!(out, Ok(s) if s.success())
        && crt.is_file()
        && key.is_file()
        && server::set_mode(dir, 0o700).is_ok()
        && server::set_mode(&key, 0o600).is_ok();
    if !ok {
        tracing::warn!("openssl is not available: instances run without SSL (use sslmode=prefer)");
    }
    ok
}

impl Fleet {
    fn instance_dir(&self, uid: &str) -> PathBuf {
        self.root.join(uid)
    }

    fn primary_dirs(&self, uid: &str) -> ServerDirs {
        let dir = self.instance_dir(uid);
        ServerDirs::new(dir.join("data"), dir.join("server.log"))
    }

    fn lock_for(&self, uid: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .entry(uid.to_string())
            .or_default()
            .clone()
    }

    fn meta_path(&self, uid: &str) -> PathBuf {
        self.instance_dir(uid).join("instance.json")
    }

    fn load_meta(&self, uid: &str) -> PgResult<Option<InstanceMeta>> {
        let path = self.meta_path(uid);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                PgError::command("reading instance.json", format!("{}: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PgError::Io { path, source: e }),
        }
    }

    fn known_meta(&self, uid: &str) -> PgResult<InstanceMeta> {
        valid_uid(uid)?;
        self.load_meta(uid)?.ok_or_else(|| {
            PgError::NotFound(format!("database instance {uid} has no PostgreSQL server"))
        })
    }

    fn save_meta(&self, meta: &InstanceMeta) -> PgResult<()> {
        let path = self.meta_path(&meta.uid);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(meta)
            .map_err(|e| PgError::command("writing instance.json", e.to_string()))?;
        std::fs::write(&tmp, text).map_err(PgError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(PgError::io(&path))
    }

    fn endpoints(&self, meta: &InstanceMeta) -> Endpoints {
        let read_only_dns = if meta.readable {
            meta.replicas.first().map(|r| server::dns_of(r.addr))
        } else {
            None
        };
        let replica_dns = if meta.readable {
            meta.replicas
                .iter()
                .map(|r| server::dns_of(r.addr))
                .collect()
        } else {
            Vec::new()
        };
        Endpoints {
            read_write_dns: server::dns_of(meta.addr),
            read_only_dns,
            pg_version: self.bin.api_version(),
            replica_dns,
        }
    }

    fn primary_conf(&self, meta: &InstanceMeta, recovery: Option<server::Recovery>) -> ServerConf {
        ServerConf {
            addr: meta.addr,
            capacity: meta.capacity.clone(),
            archive: Some(self.instance_dir(&meta.uid).join("wal_archive")),
            hot_standby: true,
            ssl: self.ssl,
            recovery,
            standby_of: None,
            preload: self.preload.clone(),
            extra: meta.server(0).conf,
        }
    }

    /// Wait up to 10 s until every replica has replayed the primary's current
    /// WAL position; a replica that lags longer is left to catch up (best effort).
    async fn await_replicas(&self, meta: &InstanceMeta, primary: &tokio_postgres::Client) {
        if meta.replicas.is_empty() {
            return;
        }
        let Ok(row) = primary
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
        else {
            return;
        };
        let lsn: String = row.get(0);
        for replica in &meta.replicas {
            let Ok(c) = server::connect(replica.addr, "postgres", &self.admin_password).await
            else {
                continue;
            };
            for _ in 0..200 {
                let caught_up = c
                    .query_one(
                        "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, true)",
                        &[&lsn],
                    )
                    .await
                    .map(|r| r.get::<_, bool>(0))
                    .unwrap_or(true);
                if caught_up {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    async fn admin(&self, meta: &InstanceMeta, db: &str) -> PgResult<tokio_postgres::Client> {
        if meta.stopped {
            return Err(PgError::Invalid(format!(
                "database instance {} is stopped",
                meta.name
            )));
        }
        server::connect(meta.addr, db, &self.admin_password)
            .await
            .map_err(|e| PgError::sql(&meta.uid, &e))
    }

    /// The pristine cluster new instances are copied from: initdb once,
    /// then bootstrap roles and `databricks_postgres`.
    async fn ensure_template(&self) -> PgResult<PathBuf> {
        let _guard = self.template.lock().await;
        let dir = self.root.join(TEMPLATE);
        let data = dir.join("data");
        if dir.join("ready").is_file() {
            return Ok(data);
        }
        if dir.exists() {
            server::stop(&self.bin, &self.run_as, &data).await?;
            std::fs::remove_dir_all(&dir).map_err(PgError::io(&dir))?;
        }
        std::fs::create_dir_all(&dir).map_err(PgError::io(&dir))?;
        self.run_as.chown_tree(&dir)?;
        server::initdb(&self.bin, &self.run_as, &data, &self.admin_password).await?;
        if self.ssl {
            for f in ["server.crt", "server.key"] {
                let to = data.join(f);
                std::fs::copy(self.root.join("tls").join(f), &to).map_err(PgError::io(&to))?;
                std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .map_err(PgError::io(&to))?;
            }
        }
        self.run_as.chown_tree(&data)?;
        let dirs = ServerDirs::new(data.clone(), dir.join("server.log"));
        let mut addr = server::allocate_addr(&[]);
        let result = async {
            addr = self
                .start_moving_on_bind_failure(&dirs, addr, vec![], |a| {
                    let conf = ServerConf {
                        addr: a,
                        capacity: "CU_1".into(),
                        archive: None,
                        hot_standby: true,
                        ssl: self.ssl,
                        recovery: None,
                        standby_of: None,
                        preload: self.preload.clone(),
                        extra: Vec::new(),
                    };
                    server::write_conf(&self.run_as, &data, &conf, false)
                })
                .await?;
            server::wait_ready(addr, &self.admin_password, true, READY_TIMEOUT, &dirs.log).await?;
            let c = server::connect(addr, "postgres", &self.admin_password)
                .await
                .map_err(|e| PgError::sql(TEMPLATE, &e))?;
            c.batch_execute(&roles::bootstrap_roles_sql())
                .await
                .map_err(|e| PgError::sql(TEMPLATE, &e))?;
            let t1 = server::connect(addr, "template1", &self.admin_password)
                .await
                .map_err(|e| PgError::sql(TEMPLATE, &e))?;
            for ext in &self.precreated {
                t1.batch_execute(&format!(
                    "CREATE EXTENSION IF NOT EXISTS {}",
                    server::ident(ext)
                ))
                .await
                .map_err(|e| PgError::sql(TEMPLATE, &e))?;
            }
            drop(t1);
            c.batch_execute(&roles::bootstrap_database_sql())
                .await
                .map_err(|e| PgError::sql(TEMPLATE, &e))?;
            Ok::<(), PgError>(())
        }
        .await;
        let stopped = server::stop(&self.bin, &self.run_as, &data).await;
        server::release_addr(addr);
        result?;
        stopped?;
        std::fs::write(dir.join("ready"), "").map_err(PgError::io(&dir))?;
        Ok(data)
    }

    /// Write the config for `addr` and start the server; when the address was
    /// taken meanwhile (another emulator on this machine picked the same free
    /// one), move to another. Returns the address it runs on.
    async fn start_moving_on_bind_failure(
        &self,
        dirs: &ServerDirs,
        mut addr: SocketAddrV4,
        mut avoid: Vec<SocketAddrV4>,
        mut configure: impl FnMut(SocketAddrV4) -> PgResult<()>,
    ) -> PgResult<SocketAddrV4> {
        let mut attempts = 0;
        loop {
            configure(addr)?;
            match server::start(&self.bin, &self.run_as, dirs).await {
                Ok(()) => return Ok(addr),
                Err(e) if server::is_bind_failure(&e) && attempts < 5 => {
                    attempts += 1;
                    server::release_addr(addr);
                    avoid.push(addr);
                    addr = server::allocate_addr(&avoid);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Start an instance's primary (fresh config, its address or a new one),
    /// wait until it takes writes, then its replicas.
    async fn start_instance(
        &self,
        meta: &mut InstanceMeta,
        recovery: Option<server::Recovery>,
    ) -> PgResult<()> {
        let dirs = self.primary_dirs(&meta.uid);
        if !server::is_running(&self.bin, &self.run_as, &dirs.data).await {
            // Replicas follow the primary's address: restart them after it.
            self.stop_replicas(meta).await?;
            let avoid: Vec<SocketAddrV4> = meta.replicas.iter().map(|r| r.addr).collect();
            let addr = server::reuse_or_allocate(meta.addr, &avoid);
            let started = self
                .start_moving_on_bind_failure(&dirs, addr, avoid, |a| {
                    meta.addr = a;
                    server::write_conf(
                        &self.run_as,
                        &dirs.data,
                        &self.primary_conf(meta, recovery.clone()),
                        meta.native_login,
                    )
                })
                .await?;
            meta.addr = started;
            server::wait_ready(
                meta.addr,
                &self.admin_password,
                true,
                READY_TIMEOUT,
                &dirs.log,
            )
            .await?;
            if recovery.is_some() {
                // Recovery settings are for the first start only.
                server::write_conf(
                    &self.run_as,
                    &dirs.data,
                    &self.primary_conf(meta, None),
                    meta.native_login,
                )?;
            }
        }
        self.reconcile_replicas(meta, false).await
    }

    async fn stop_instance(&self, meta: &InstanceMeta) -> PgResult<()> {
        self.stop_replicas(meta).await?;
        server::stop(&self.bin, &self.run_as, &self.primary_dirs(&meta.uid).data).await?;
        server::release_addr(meta.addr);
        Ok(())
    }

    async fn create(self: &Arc<Self>, spec: &InstanceSpec) -> PgResult<Endpoints> {
        valid_uid(&spec.uid)?;
        server::memory_for(&spec.capacity)?;
        let lock = self.lock_for(&spec.uid);
        let _guard = lock.lock().await;
        if let Some(mut meta) = self.load_meta(&spec.uid)? {
            // A retried create: converge the existing server.
            meta.apply(spec);
            return self.converge(&mut meta, false, false, false).await;
        }
        let dir = self.instance_dir(&spec.uid);
        if dir.exists() {
            // Leftovers of a create that never finished.
            std::fs::remove_dir_all(&dir).map_err(PgError::io(&dir))?;
        }
        std::fs::create_dir_all(dir.join("wal_archive")).map_err(PgError::io(&dir))?;
        self.run_as.chown_tree(&dir)?;
        let data = dir.join("data");
        let mut meta = InstanceMeta {
            uid: spec.uid.clone(),
            name: spec.name.clone(),
            capacity: spec.capacity.clone(),
            addr: server::allocate_addr(&[]),
            node_count: 1,
            readable: false,
            native_login: false,
            stopped: false,
            bases: Vec::new(),
            replicas: Vec::new(),
            servers: Vec::new(),
        };
        meta.apply(spec);
        meta.stopped = false;
        let result = async {
            let recovery = match &spec.parent {
                None => {
                    let template = self.ensure_template().await?;
                    clone::copy_tree(&template, &data).await?;
                    None
                }
                Some((parent_uid, point)) => {
                    let parent = self.known_meta(parent_uid)?;
                    self.prepare_clone(&parent, point, &data).await?
                }
            };
            self.start_instance(&mut meta, recovery).await?;
            if spec.parent.is_none() {
                let lsn = self.current_lsn(meta.addr, &meta.uid).await?;
                meta.bases.push(BaseBackup {
                    dir: self.root.join(TEMPLATE).join("data"),
                    time: Utc::now(),
                    lsn,
                });
            }
            self.save_meta(&meta)?;
            if spec.stopped {
                self.stop_instance(&meta).await?;
                meta.stopped = true;
                self.save_meta(&meta)?;
            }
            Ok::<(), PgError>(())
        }
        .await;
        if let Err(e) = result {
            let _ = self.stop_instance(&meta).await;
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        if spec.parent.is_some() {
            self.spawn_first_base_backup(&spec.uid);
        }
        Ok(self.endpoints(&meta))
    }

    /// Clones restore from their own base backup: take it in the background.
    fn spawn_first_base_backup(self: &Arc<Self>, uid: &str) {
        let fleet = self.clone();
        let uid = uid.to_string();
        tokio::spawn(async move {
            let lock = fleet.lock_for(&uid);
            let _guard = lock.lock().await;
            let Ok(Some(mut meta)) = fleet.load_meta(&uid) else {
                return;
            };
            if meta.stopped || !meta.bases.is_empty() {
                return;
            }
            match fleet.take_base_backup(&mut meta).await {
                Ok(()) => {
                    if let Err(e) = fleet.save_meta(&meta) {
                        tracing::warn!("recording the base backup of {uid}: {e}");
                    }
                }
                Err(e) => tracing::warn!("base backup of clone {uid}: {e}"),
            }
        });
    }

    /// Bring the servers in line with `meta` (already updated from a spec).
    async fn converge(
        &self,
        meta: &mut InstanceMeta,
        capacity_changed: bool,
        login_changed: bool,
        readable_changed: bool,
    ) -> PgResult<Endpoints> {
        let data = self.primary_dirs(&meta.uid).data;
        if meta.stopped {
            self.stop_instance(meta).await?;
        } else {
            let running = server::is_running(&self.bin, &self.run_as, &data).await;
            if running && capacity_changed {
                // Memory settings take effect on restart, as in the service.
                self.stop_instance(meta).await?;
            } else if running && login_changed {
                server::write_conf(
                    &self.run_as,
                    &data,
                    &self.primary_conf(meta, None),
                    meta.native_login,
                )?;
                server::reload(&self.bin, &self.run_as, &data).await?;
            }
            self.start_instance(meta, None).await?;
            if readable_changed {
                self.reconcile_replicas(meta, true).await?;
            }
        }
        self.save_meta(meta)?;
        Ok(self.endpoints(meta))
    }

    async fn update(&self, spec: &InstanceSpec) -> PgResult<Endpoints> {
        server::memory_for(&spec.capacity)?;
        let lock = self.lock_for(&spec.uid);
        let _guard = lock.lock().await;
        let mut meta = self.known_meta(&spec.uid)?;
        let before = meta.clone();
        meta.apply(spec);
        let capacity_changed = before.capacity != meta.capacity;
        let login_changed = before.native_login != meta.native_login;
        let readable_changed = before.readable != meta.readable;
        let reconf: Vec<usize> = (0..=meta.replicas.len())
            .filter(|&i| before.server(i).conf != meta.server(i).conf)
            .collect();
        if !reconf.is_empty() {
            // Refuse bad settings before any server reads them (a server with a bad
            // value in its files would not start again).
            if let Err(e) = self.check_settings(&meta, &reconf).await {
                self.check_settings(&before, &reconf).await?;
                return Err(e);
            }
        }
        let eps = self
            .converge(&mut meta, capacity_changed, login_changed, readable_changed)
            .await?;
        if meta.stopped || reconf.is_empty() {
            return Ok(eps);
        }
        self.apply_settings(&mut meta, &before, &reconf).await?;
        self.save_meta(&meta)?;
        Ok(self.endpoints(&meta))
    }

    /// Where server `i` of an instance keeps its data (None: no such replica).
    fn server_data(&self, meta: &InstanceMeta, i: usize) -> Option<PathBuf> {
        if i == 0 {
            return Some(self.primary_dirs(&meta.uid).data);
        }
        let r = meta.replicas.get(i - 1)?;
        Some(self.replica_dirs(&meta.uid, &r.name).data)
    }

    /// Write the config of servers `which` as `meta` says and have PostgreSQL check it.
    async fn check_settings(&self, meta: &InstanceMeta, which: &[usize]) -> PgResult<()> {
        for &i in which {
            let Some(data) = self.server_data(meta, i) else {
                continue;
            };
            let conf = if i == 0 {
                self.primary_conf(meta, None)
            } else {
                self.replica_conf(meta, &meta.replicas[i - 1])
            };
            server::write_conf(&self.run_as, &data, &conf, meta.native_login)?;
            server::check_conf(&self.bin, &self.run_as, &data).await?;
        }
        Ok(())
    }

    /// Running servers pick up their changed settings: a reload, or a restart when a
    /// changed setting only takes effect at server start (`context = postmaster`,
    /// e.g. `shared_buffers`). Stopped ones read them when they start.
    async fn apply_settings(
        &self,
        meta: &mut InstanceMeta,
        before: &InstanceMeta,
        which: &[usize],
    ) -> PgResult<()> {
        for &i in which {
            let Some(data) = self.server_data(meta, i) else {
                continue;
            };
            if !server::is_running(&self.bin, &self.run_as, &data).await {
                continue;
            }
            let addr = if i == 0 {
                meta.addr
            } else {
                meta.replicas[i - 1].addr
            };
            let mut changed: Vec<String> = Vec::new();
            let (old, new) = (before.server(i).conf, meta.server(i).conf);
            // The last line of a name wins in postgresql.conf.
            let value = |list: &[(String, String)], k: &str| {
                list.iter()
                    .rev()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            for (k, _) in old.iter().chain(new.iter()) {
                if value(&old, k) != value(&new, k) && !changed.contains(k) {
                    changed.push(k.clone());
                }
            }
            let c = server::connect(addr, "postgres", &self.admin_password)
                .await
                .map_err(|e| PgError::sql(&meta.uid, &e))?;
            let restart: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_settings WHERE context = 'postmaster' AND name = ANY($1)",
                    &[&changed],
                )
                .await
                .map_err(|e| PgError::sql(&meta.uid, &e))?
                .get(0);
            drop(c);
            if restart == 0 {
                server::reload(&self.bin, &self.run_as, &data).await?;
            } else if i == 0 {
                self.stop_instance(meta).await?;
                self.start_instance(meta, None).await?;
            } else {
                server::stop(&self.bin, &self.run_as, &data).await?;
                let snapshot = meta.clone();
                self.start_replica(&snapshot, &mut meta.replicas[i - 1])
                    .await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, uid: &str, purge: bool) -> PgResult<()> {
        valid_uid(uid)?;
        let lock = self.lock_for(uid);
        let _guard = lock.lock().await;
        let prefix = format!("{uid}/");
        let tables: Vec<Arc<TableSync>> = {
            let mut syncs = self.syncs.lock();
            let keys: Vec<String> = syncs
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            keys.iter().filter_map(|k| syncs.remove(k)).collect()
        };
        for t in tables {
            if let Some(h) = t.watcher.lock().take() {
                h.abort();
            }
        }
        if let Some(meta) = self.load_meta(uid)? {
            self.stop_instance(&meta).await?;
        }
        // Servers without a record (a create that crashed) must stop too.
        for dirs in self.server_dirs_of(uid) {
            server::stop(&self.bin, &self.run_as, &dirs).await?;
        }
        if purge {
            let dir = self.instance_dir(uid);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(PgError::io(&dir))?;
            }
        }
        Ok(())
    }

    /// Every data dir under one instance's directory.
    fn server_dirs_of(&self, uid: &str) -> Vec<PathBuf> {
        let dir = self.instance_dir(uid);
        let mut out = vec![dir.join("data")];
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("replica-") {
                    out.push(e.path().join("data"));
                }
            }
        }
        out.retain(|d| d.join("postmaster.pid").is_file());
        out
    }

    /// Every data dir with a postmaster.pid under the root.
    fn all_running_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    out.extend(self.server_dirs_of(&e.file_name().to_string_lossy()));
                }
            }
        }
        out
    }

    /// Stop every server under the root, in parallel; returns how many stopped.
    fn stop_all_blocking(&self) -> usize {
        let dirs = self.all_running_dirs();
        std::thread::scope(|s| {
            let handles: Vec<_> = dirs
                .iter()
                .map(|d| s.spawn(move || server::stop_blocking(&self.bin, &self.run_as, d)))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .filter(|stopped| *stopped)
                .count()
        })
    }

    fn abort_watchers(&self) {
        for t in self.syncs.lock().values() {
            if let Some(h) = t.watcher.lock().take() {
                h.abort();
            }
        }
    }

    async fn shutdown_all(&self) -> PgResult<()> {
        self.shut_down.store(true, Ordering::SeqCst);
        self.abort_watchers();
        let dirs = self.all_running_dirs();
        let stops = dirs
            .iter()
            .map(|d| server::stop(&self.bin, &self.run_as, d));
        let results = futures::future::join_all(stops).await;
        results.into_iter().collect::<PgResult<Vec<()>>>()?;
        Ok(())
    }

    async fn adopt_all(
        self: &Arc<Self>,
        specs: &[InstanceSpec],
    ) -> PgResult<Vec<(String, Endpoints)>> {
        let mut out = Vec::new();
        for spec in specs {
            let existing = {
                let lock = self.lock_for(&spec.uid);
                let _guard = lock.lock().await;
                match self.load_meta(&spec.uid)? {
                    Some(mut meta) => {
                        meta.apply(spec);
                        Some(self.converge(&mut meta, false, false, false).await?)
                    }
                    None => None,
                }
            };
            let endpoints = match existing {
                Some(e) => e,
                // The record outlived its server's files: make a fresh one.
                None => {
                    self.create(&InstanceSpec {
                        parent: None,
                        ..spec.clone()
                    })
                    .await?
                }
            };
            out.push((spec.uid.clone(), endpoints));
        }
        // Servers of instances the workspace no longer has are stopped.
        let known: Vec<&str> = specs.iter().map(|s| s.uid.as_str()).collect();
        for d in self.all_running_dirs() {
            let owner = d
                .strip_prefix(&self.root)
                .ok()
                .and_then(|p| p.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            if owner.is_some_and(|o| !known.contains(&o.as_str())) {
                server::stop(&self.bin, &self.run_as, &d).await?;
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------------------------------
    // Synced tables

    fn table_key(spec: &SyncedTableSpec) -> String {
        format!(
            "{}/{}/{}/{}",
            spec.instance_uid, spec.database, spec.schema, spec.table
        )
    }

    fn table_sync(&self, spec: &SyncedTableSpec) -> Arc<TableSync> {
        self.syncs
            .lock()
            .entry(Self::table_key(spec))
            .or_insert_with(|| {
                Arc::new(TableSync {
                    lock: tokio::sync::Mutex::new(()),
                    status: parking_lot::Mutex::new(SyncStatus::default()),
                    watcher: parking_lot::Mutex::new(None),
                })
            })
            .clone()
    }

    /// One sync of a table, recorded in its status.
    async fn sync(&self, spec: &SyncedTableSpec, mode: SyncMode) -> PgResult<SyncStats> {
        let table = self.table_sync(spec);
        let _guard = table.lock.lock().await;
        let result = self.sync_once(spec, mode).await;
        let mut status = table.status.lock();
        match &result {
            Ok(stats) => {
                status.stats = stats.clone();
                status.last_sync_time =
                    Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                status.error = None;
            }
            Err(e) => status.error = Some(e.to_string()),
        }
        result
    }

    async fn sync_once(&self, spec: &SyncedTableSpec, mode: SyncMode) -> PgResult<SyncStats> {
        let meta = self.known_meta(&spec.instance_uid)?;
        let path = spec.source.clone();
        let pk = spec.primary_key_columns.clone();
        let ts = spec.timeseries_key.clone();
        // Parsing a large file is CPU work: keep it off the async workers.
        let (src, rows) = tokio::task::spawn_blocking(move || {
            let src = sync::read_source(&path)?;
            let rows = sync::select_rows(&src, &pk, ts.as_deref())?;
            Ok::<_, PgError>((src, rows))
        })
        .await
        .map_err(|e| PgError::command("reading the source table", e.to_string()))??;
        let mut client = match self.admin(&meta, &spec.database).await {
            Ok(c) => c,
            Err(e) => {
                if !self.database_exists_in(&meta, &spec.database).await? {
                    return Err(PgError::NotFound(format!(
                        "database {:?} does not exist on instance {}",
                        spec.database, meta.name
                    )));
                }
                return Err(e);
            }
        };
        let target = sync::Target {
            uid: &spec.instance_uid,
            schema: &spec.schema,
            table: &spec.table,
            primary_key: &spec.primary_key_columns,
        };
        match mode {
            SyncMode::Create => sync::full_load(&mut client, &target, &src, &rows, true).await,
            SyncMode::Replace => sync::full_load(&mut client, &target, &src, &rows, false).await,
            SyncMode::Incremental => sync::incremental(&mut client, &target, &src, &rows).await,
        }
    }

    async fn database_exists_in(&self, meta: &InstanceMeta, db: &str) -> PgResult<bool> {
        let c = self.admin(meta, "postgres").await?;
        let row = c
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
            .await
            .map_err(|e| PgError::sql(&meta.uid, &e))?;
        Ok(row.is_some())
    }

    /// Follow a CONTINUOUS table's source file.
    fn watch(
        self: &Arc<Self>,
        spec: &SyncedTableSpec,
        since: Option<(std::time::SystemTime, u64)>,
    ) {
        let table = self.table_sync(spec);
        let fleet = Arc::downgrade(self);
        let spec = spec.clone();
        let handle = tokio::spawn(async move {
            let mut last = since;
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let Some(fleet) = fleet.upgrade() else { return };
                if fleet.shut_down.load(Ordering::SeqCst) {
                    return;
                }
                let sig = sync::source_signature(&spec.source);
                if sig.is_none() || sig == last {
                    continue;
                }
                // A failure is recorded in the status; the next change retries.
                if let Err(e) = fleet.sync(&spec, SyncMode::Incremental).await {
                    tracing::warn!("continuous sync of {}.{}: {e}", spec.schema, spec.table);
                }
                last = sig;
            }
        });
        let old = table.watcher.lock().replace(handle);
        if let Some(old) = old {
            old.abort();
        }
    }
}

fn is_continuous(spec: &SyncedTableSpec) -> bool {
    spec.scheduling_policy.eq_ignore_ascii_case("CONTINUOUS")
}

#[async_trait]
impl DbBackend for PgFleet {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Endpoints, BackendError> {
        Ok(self.inner.create(spec).await?)
    }

    async fn update_instance(&self, spec: &InstanceSpec) -> Result<Endpoints, BackendError> {
        Ok(self.inner.update(spec).await?)
    }

    async fn delete_instance(&self, uid: &str, purge: bool) -> Result<(), BackendError> {
        Ok(self.inner.delete(uid, purge).await?)
    }

    async fn set_credential(
        &self,
        uid: &str,
        role: &str,
        password: &str,
        valid_until: &str,
    ) -> Result<(), BackendError> {
        let meta = self.inner.known_meta(uid)?;
        let c = self.inner.admin(&meta, "postgres").await?;
        roles::set_credential(&c, uid, role, password, valid_until).await?;
        // A credential works at once on every endpoint, as in the service:
        // wait (bounded) until the replicas have replayed the role change.
        self.inner.await_replicas(&meta, &c).await;
        Ok(())
    }

    async fn database_exists(&self, uid: &str, database: &str) -> Result<bool, BackendError> {
        let meta = self.inner.known_meta(uid)?;
        Ok(self.inner.database_exists_in(&meta, database).await?)
    }

    async fn create_database(&self, uid: &str, database: &str) -> Result<(), BackendError> {
        if database.is_empty() {
            return Err(BackendError::Invalid(
                "database name must not be empty".into(),
            ));
        }
        let meta = self.inner.known_meta(uid)?;
        let c = self.inner.admin(&meta, "postgres").await?;
        match c.batch_execute(&roles::create_database_sql(database)).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
                Ok(())
            }
            Err(e) => Err(PgError::sql(uid, &e).into()),
        }
    }

    async fn create_synced_table(&self, spec: &SyncedTableSpec) -> Result<SyncStats, BackendError> {
        sync::resolve_source(&spec.source)?;
        let since = sync::source_signature(&spec.source);
        let stats = self.inner.sync(spec, SyncMode::Create).await?;
        if is_continuous(spec) {
            self.inner.watch(spec, since);
        }
        Ok(stats)
    }

    async fn refresh_synced_table(
        &self,
        spec: &SyncedTableSpec,
    ) -> Result<SyncStats, BackendError> {
        let mode = if spec.scheduling_policy.eq_ignore_ascii_case("SNAPSHOT") {
            SyncMode::Replace
        } else {
            SyncMode::Incremental
        };
        Ok(self.inner.sync(spec, mode).await?)
    }

    async fn delete_synced_table(
        &self,
        spec: &SyncedTableSpec,
        purge_data: bool,
    ) -> Result<(), BackendError> {
        if let Some(t) = self.inner.syncs.lock().remove(&Fleet::table_key(spec)) {
            if let Some(h) = t.watcher.lock().take() {
                h.abort();
            }
        }
        if !purge_data {
            return Ok(());
        }
        let Some(meta) = self.inner.load_meta(&spec.instance_uid)? else {
            return Ok(());
        };
        if meta.stopped || !self.inner.database_exists_in(&meta, &spec.database).await? {
            return Ok(());
        }
        let c = self.inner.admin(&meta, &spec.database).await?;
        let target = sync::Target {
            uid: &spec.instance_uid,
            schema: &spec.schema,
            table: &spec.table,
            primary_key: &spec.primary_key_columns,
        };
        Ok(sync::drop_table(&c, &target).await?)
    }

    async fn adopt(
        &self,
        specs: &[InstanceSpec],
    ) -> Result<Vec<(String, Endpoints)>, BackendError> {
        self.inner.shut_down.store(false, Ordering::SeqCst);
        Ok(self.inner.adopt_all(specs).await?)
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        Ok(self.inner.shutdown_all().await?)
    }

    fn detach(&self) {
        self.inner.shut_down.store(true, Ordering::SeqCst);
        self.inner.abort_watchers();
    }

    async fn synced_table_status(
        &self,
        spec: &SyncedTableSpec,
    ) -> Result<Option<SyncStatus>, BackendError> {
        Ok(self
            .inner
            .syncs
            .lock()
            .get(&Fleet::table_key(spec))
            .map(|t| t.status.lock().clone()))
    }

    fn serves_sql(&self) -> bool {
        true
    }

    fn server_version(&self) -> Option<String> {
        Some(self.inner.bin.version.clone())
    }

    async fn admin_sql(&self, uid: &str, database: &str, sql: &str) -> Result<(), BackendError> {
        let meta = self.inner.known_meta(uid)?;
        let c = self.inner.admin(&meta, database).await?;
        match c.batch_execute(sql).await {
            Ok(()) => Ok(()),
            // The server refused the statement (an object in use, a name taken): the
            // request was wrong, not the emulator.
            Err(e) if e.as_db_error().is_some() => {
                Err(BackendError::Invalid(error::describe_sql_error(&e)))
            }
            Err(e) => Err(PgError::sql(uid, &e).into()),
        }
    }

    async fn resume_synced_tables(&self, specs: &[SyncedTableSpec]) -> Result<(), BackendError> {
        for spec in specs.iter().filter(|s| is_continuous(s)) {
            // Catch up on changes made while the emulator was down, then follow.
            let since = sync::source_signature(&spec.source);
            if let Err(e) = self.inner.sync(spec, SyncMode::Incremental).await {
                tracing::warn!(
                    "resuming continuous sync of {}.{}: {e}",
                    spec.schema,
                    spec.table
                );
            }
            self.inner.watch(spec, since);
        }
        Ok(())
    }
}

/// The default database of every instance.
pub const DEFAULT_DATABASE: &str = DEFAULT_DB;
