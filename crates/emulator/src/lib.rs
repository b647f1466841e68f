//! The local workspace: an axum server speaking the REST contract of
//! `../shared/reference/databricks-api.md`. Shares no code with the client
//! beyond `api::types`.
//!
//! Entry points:
//! - [`start`] runs it inside the caller's tokio runtime (used by `--local` and tests) and
//!   returns a [`RunningEmulator`] with its URL and token;
//! - [`serve_cli`] is `lakebundle emulator serve` (prints `listening on <url>` first);
//! - [`down`] is `lakebundle emulator down`.
//!
//! Module map: `server` (router, auth + fault middleware, shared state), `store` (SQLite
//! persistence), one file per service (`auth`, `instances`, `catalogs`, `jobs`, `apps`,
//! `workspace`, `files`, `permissions`, `unity_catalog`), `records` (the records-only backend), `lock` (data-dir
//! ownership), `faults` (seeded fault injection), `delay` (the injected latency).

pub mod alerts;
pub mod apps;
pub mod args;
pub mod auth;
pub mod backend;
pub mod catalogs;
pub mod clusters;
pub mod delay;
pub mod faults;
pub mod files;
pub mod http;
pub mod instances;
pub mod jobs;
pub mod lakeview;
pub mod lock;
pub mod mlflow;
pub mod monitors;
pub mod permissions;
pub mod pipelines;
pub mod postgres;
pub mod postgres_api;
pub mod records;
pub mod secrets;
pub mod server;
pub mod serving;
pub mod store;
pub mod uc_more;
pub mod unity_catalog;
pub mod vector_search;
pub mod warehouses;
pub mod workspace;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::args::ServeArgs as EmulatorServeArgs;

pub use server::Emu;

/// Errors of starting, running and stopping the emulator.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EmulatorError {
    #[error("data dir {} is in use by pid {pid}{}", dir.display(), url.as_ref().map(|u| format!(" (serving {u})")).unwrap_or_default())]
    #[diagnostic(help("stop it with `lakebundle emulator down --data-dir {}`, or use another --data-dir", dir.display()))]
    InUse {
        dir: PathBuf,
        pid: u32,
        url: Option<String>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] store::StoreError),
    #[error("database backend: {0}")]
    Backend(#[from] backend::BackendError),
    #[error("no home directory: set LAKEBUNDLE_HOME or pass --data-dir")]
    NoHome,
    #[error("invalid emulator option: {0}")]
    Config(String),
}

impl EmulatorError {
    pub fn io(path: PathBuf, source: std::io::Error) -> EmulatorError {
        EmulatorError::Io { path, source }
    }
}

/// Everything the server needs; built from the CLI flags or by `--local`.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// 0 = any free port.
    pub port: u16,
    pub data_dir: PathBuf,
    /// Accepted bearer tokens; empty = any non-empty token.
    pub tokens: Vec<String>,
    pub user: String,
    /// The one OAuth M2M client `/oidc/v1/token` accepts; None = it refuses every client.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub latency_ms: u64,
    pub fail_rate: f64,
    pub lost_response_rate: f64,
    pub seed: u64,
    pub instance_ready_ms: u64,
    /// Duration of the other asynchronous transitions (app start/stop/delete, deployments,
    /// run phases).
    pub transition_ms: u64,
    /// `--lake-dir`: where synced tables' sources are read, strictly (a missing source
    /// fails the create with NOT_FOUND, as the service does for a missing Delta table).
    /// None: `<data-dir>/lake`, leniently (the create is accepted and the table reports
    /// the missing source in its status). See [`EmulatorConfig::lake`].
    pub lake_dir: Option<PathBuf>,
    /// Database instances are records only (no PostgreSQL server).
    pub no_postgres: bool,
    /// Fall back to records only when PostgreSQL is not installed (instead of failing).
    pub postgres_optional: bool,
    /// Job, run, workspace-object and app service-principal ids above 2^53 (to test a
    /// client's int64 handling); by default they stay below, like the service's.
    pub large_ids: bool,
    /// Factor applied to every Lakebase endpoint suspend timeout (`--suspend-scale`).
    pub suspend_scale: f64,
}

impl std::fmt::Debug for EmulatorConfig {
    // Tokens and the client secret never reach Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("port", &self.port)
            .field("data_dir", &self.data_dir)
            .field("tokens", &format!("<{} redacted>", self.tokens.len()))
            .field("user", &self.user)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "****"),
            )
            .field("latency_ms", &self.latency_ms)
            .field("fail_rate", &self.fail_rate)
            .field("lost_response_rate", &self.lost_response_rate)
            .field("seed", &self.seed)
            .field("instance_ready_ms", &self.instance_ready_ms)
            .field("transition_ms", &self.transition_ms)
            .field("lake_dir", &self.lake_dir)
            .field("no_postgres", &self.no_postgres)
            .field("postgres_optional", &self.postgres_optional)
            .field("large_ids", &self.large_ids)
            .field("suspend_scale", &self.suspend_scale)
            .finish()
    }
}

/// `$LAKEBUNDLE_HOME` (default `~/.lakebundle`).
pub fn lakebundle_home() -> Result<PathBuf, EmulatorError> {
    if let Some(h) = std::env::var_os("LAKEBUNDLE_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".lakebundle"))
        .ok_or(EmulatorError::NoHome)
}

/// The default data dir, `$LAKEBUNDLE_HOME/local-workspace`.
pub fn default_data_dir() -> Result<PathBuf, EmulatorError> {
    Ok(lakebundle_home()?.join("local-workspace"))
}

impl EmulatorConfig {
    /// Defaults for an in-process workspace over `data_dir` (`--local`): a free port, one
    /// random token, records-only unless the caller opts into PostgreSQL.
    pub fn local(data_dir: PathBuf) -> EmulatorConfig {
        EmulatorConfig {
            port: 0,
            data_dir,
            tokens: vec![format!("dapi-local-{}", http::random_hex(16))],
            user: "local-user@example.com".into(),
            client_id: None,
            client_secret: None,
            latency_ms: 0,
            fail_rate: 0.0,
            lost_response_rate: 0.0,
            seed: 0,
            instance_ready_ms: 0,
            transition_ms: 0,
            lake_dir: None,
            no_postgres: false,
            postgres_optional: true,
            large_ids: false,
            suspend_scale: 1.0,
        }
    }

    /// The lake directory and whether it was given explicitly (strict).
    pub fn lake(&self) -> (PathBuf, bool) {
        match &self.lake_dir {
            Some(d) => (d.clone(), true),
            None => (self.data_dir.join("lake"), false),
        }
    }

    pub fn from_args(a: &EmulatorServeArgs) -> Result<EmulatorConfig, EmulatorError> {
        let data_dir = match &a.data_dir {
            Some(d) => d.clone(),
            None => default_data_dir()?,
        };
        if !(a.suspend_scale.is_finite() && a.suspend_scale > 0.0) {
            return Err(EmulatorError::Config(format!(
                "--suspend-scale must be a positive number, got {}",
                a.suspend_scale
            )));
        }
        for (name, v) in [
            ("--fail-rate", a.fail_rate),
            ("--lost-response-rate", a.lost_response_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(EmulatorError::Config(format!(
                    "{name} must be between 0 and 1, got {v}"
                )));
            }
        }
        if a.tokens.iter().any(|t| t.is_empty()) {
            return Err(EmulatorError::Config("--token must not be empty".into()));
        }
        // An M2M client is an id with its secret: one alone would accept anything for the other.
        match (&a.client_id, &a.client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {}
            (None, None) => {}
            _ => {
                return Err(EmulatorError::Config(
                    "--client-id and --client-secret must be given together, both non-empty \
                     (without them the token endpoint refuses every client)"
                        .into(),
                ))
            }
        }
        Ok(EmulatorConfig {
            port: a.port,
            data_dir,
            tokens: a.tokens.clone(),
            user: a.user.clone(),
            client_id: a.client_id.clone(),
            client_secret: a.client_secret.clone(),
            latency_ms: a.latency_ms,
            fail_rate: a.fail_rate,
            lost_response_rate: a.lost_response_rate,
            seed: a.seed,
            instance_ready_ms: a.instance_ready_ms,
            transition_ms: a.transition_ms,
            lake_dir: a.lake_dir.clone(),
            no_postgres: a.no_postgres,
            postgres_optional: false,
            large_ids: a.large_ids,
            suspend_scale: a.suspend_scale,
        })
    }
}

/// The SQLite store in a data dir (plus its `-wal` and `-shm`).
pub const STORE_FILE: &str = "workspace.db";
/// The key database credentials are derived from (0600).
pub const CREDENTIAL_KEY_FILE: &str = "credential.key";

fn set_mode(path: &Path, mode: u32) -> Result<(), EmulatorError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| EmulatorError::io(path.to_path_buf(), e))
}

/// Create `dir` if needed and make it owner-only (0700): it holds the store, keys and
/// database files of every instance.
fn private_dir(dir: &Path) -> Result<(), EmulatorError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| EmulatorError::io(dir.to_path_buf(), e))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| EmulatorError::io(dir.to_path_buf(), e))?
        .permissions()
        .mode()
        & 0o777;
    // A traverse-only bit (no read, no write for others) stays: the PostgreSQL
    // fleet of a running emulator adds it for its server user, and this runs
    // before the data-dir lock tells a second emulator (a refused `--local`)
    // to stop. Anything more open was not ours: owner only.
    let want = if mode & 0o066 == 0 {
        0o700 | (mode & 0o011)
    } else {
        0o700
    };
    if mode != want {
        set_mode(dir, want)?;
    }
    Ok(())
}

/// The store and its `-wal`/`-shm` are 0600: SQLite creates the latter two with the mode
/// of the database file, so creating that one 0600 covers all three.
fn private_store_files(db: &Path) -> Result<(), EmulatorError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)
        .map_err(|e| EmulatorError::io(db.to_path_buf(), e))?;
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            set_mode(&p, 0o600)?;
        }
    }
    Ok(())
}

/// A 32-byte key kept hex-encoded in an owner-only file, made on first use.
fn load_or_create_key(path: &Path) -> Result<server::CredentialKey, EmulatorError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let parse = |text: &str| -> Option<[u8; 32]> { hex::decode(text.trim()).ok()?.try_into().ok() };
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Some(k) = parse(&text) {
            set_mode(path, 0o600)?;
            return Ok(server::CredentialKey(k));
        }
    }
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let tmp = path.with_extension("key.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(hex::encode(key).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| EmulatorError::io(path.to_path_buf(), e))?;
    Ok(server::CredentialKey(key))
}

/// The single place that picks the database backend behind instances: real PostgreSQL
/// servers (`postgres::PgFleet` over `<data-dir>/pg`) unless `--no-postgres`. When
/// `postgres_optional` is set (the in-process `--local` workspace) and no PostgreSQL
/// installation is usable, it falls back to records only and says so on stderr.
pub fn make_backend(cfg: &EmulatorConfig) -> Result<Arc<dyn backend::DbBackend>, EmulatorError> {
    if !cfg.no_postgres {
        match postgres::PgFleet::new(cfg.data_dir.join("pg")) {
            Ok(fleet) => return Ok(Arc::new(fleet)),
            Err(e) if cfg.postgres_optional => {
                eprintln!(
                    "warning: no usable PostgreSQL ({e}); database instances of the local workspace are records only"
                );
            }
            Err(e) => {
                return Err(EmulatorError::Config(format!(
                    "cannot run PostgreSQL servers for database instances: {e} (install PostgreSQL or pass --no-postgres)"
                )))
            }
        }
    }
    Ok(Arc::new(records::NoPostgres::new(&cfg.data_dir)?))
}

/// A server running inside the caller's tokio runtime.
pub struct RunningEmulator {
    url: String,
    token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    emu: Arc<Emu>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }
    /// A bearer token the server accepts.
    pub fn token(&self) -> &str {
        &self.token
    }
    pub fn data_dir(&self) -> &Path {
        &self.emu.cfg.data_dir
    }
    /// Stop serving, stop every database server, release the data dir.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        self.stop().await
    }

    /// Stop serving HTTP and release the data dir, but leave the database
    /// servers running: after `lakebundle --local deploy` the instances stay
    /// connectable, as real ones do. The next start adopts them;
    /// `lakebundle emulator down` stops them.
    pub async fn detach(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.emu.backend.detach();
        self.emu.release_lock();
    }

    async fn stop(&mut self) -> Result<(), EmulatorError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.emu.backend.shutdown().await?;
        self.emu.release_lock();
        Ok(())
    }

    /// Resolves when the server stops on its own (it never does unless shut down).
    pub async fn wait(&mut self) {
        if let Some(t) = self.task.as_mut() {
            let _ = t.await;
            self.task = None;
        }
    }
}

/// Start the emulator: take the data-dir lock, open the store, adopt the database servers
/// of existing instances, bind 127.0.0.1:port and serve in the background.
pub async fn start(cfg: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    // Owner-only before anything is written (the PostgreSQL fleet may add the traverse bit
    // for its server user; it never adds read).
    private_dir(&cfg.data_dir)?;
    let lock = lock::DataDirLock::acquire(&cfg.data_dir)?;
    let db = cfg.data_dir.join(STORE_FILE);
    private_store_files(&db)?;
    let store = store::Store::open(&db)?;
    store.set_large_ids(cfg.large_ids);
    let credential_key = load_or_create_key(&cfg.data_dir.join(CREDENTIAL_KEY_FILE))?;
    if cfg.lake_dir.is_none() {
        // The default lake exists, so users see where source tables go.
        private_dir(&cfg.lake().0)?;
    }
    let backend = make_backend(&cfg)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port))
        .await
        .map_err(|source| EmulatorError::Bind {
            port: cfg.port,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind {
            port: cfg.port,
            source,
        })?;
    let url = format!("http://{addr}");
    lock.publish_url(&url)?;
    let token = cfg
        .tokens
        .first()
        .cloned()
        .unwrap_or_else(|| "dapi-emulator".into());
    let emu = Arc::new(Emu::new(
        cfg,
        store,
        backend,
        url.clone(),
        lock,
        credential_key,
    ));
    emu.adopt_instances().await;
    postgres_api::adopt(&emu).await;
    catalogs::resume_continuous(&emu).await;
    let app = server::router(emu.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!("emulator server stopped: {e}");
        }
    });
    Ok(RunningEmulator {
        url,
        token,
        shutdown: Some(tx),
        task: Some(task),
        emu,
    })
}

/// `lakebundle emulator serve`: run until SIGINT/SIGTERM.
pub fn serve_cli(cfg: EmulatorConfig) -> Result<(), EmulatorError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| EmulatorError::io(PathBuf::from("<tokio runtime>"), e))?;
    rt.block_on(async move {
        let mut running = start(cfg).await?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // The first line is the contract with scripts and the test harness.
            let _ = writeln!(out, "listening on {}", running.url());
            let _ = writeln!(out, "data dir {}", running.data_dir().display());
            let _ = out.flush();
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| EmulatorError::io(PathBuf::from("<signal>"), e))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = running.wait() => {}
        }
        running.shutdown().await
    })
}

/// What `lakebundle emulator down` stopped.
#[derive(Debug, Clone, Default)]
pub struct DownReport {
    /// The emulator process that held the data dir, and the URL it served.
    pub emulator: Option<(u32, Option<String>)>,
    /// PostgreSQL servers that ran before and no longer do.
    pub servers: Vec<postgres::RunningServer>,
}

impl DownReport {
    pub fn stopped_anything(&self) -> bool {
        self.emulator.is_some() || !self.servers.is_empty()
    }
}

/// `lakebundle emulator down`: stop the server holding `data_dir` (SIGTERM, then SIGKILL
/// after a grace period) and make sure no database server of it survives.
pub fn down(data_dir: &Path) -> Result<DownReport, EmulatorError> {
    let mut report = DownReport::default();
    let pg_root = data_dir.join("pg");
    // Listed first: a live emulator stops its own servers on SIGTERM.
    let before = postgres::running_servers(&pg_root);
    if lock::is_held(data_dir) {
        if let Some(pid) = lock::holder_pid(data_dir).filter(|p| *p > 0) {
            let url = lock::read_info(data_dir)
                .filter(|(p, _)| *p == pid)
                .map(|(_, u)| u);
            // SAFETY: sending a signal to a pid; no memory involved.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while lock::is_held(data_dir) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if lock::is_held(data_dir) {
                // SAFETY: as above.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while lock::is_held(data_dir) && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            report.emulator = Some((pid, url));
        }
    }
    let stopped_servers = |report: &mut DownReport| {
        let after = postgres::running_servers(&pg_root);
        report.servers = before
            .iter()
            .filter(|s| !after.iter().any(|a| a.pid == s.pid))
            .cloned()
            .collect();
    };
    // A killed server cannot stop its database servers; do it on its behalf, under the
    // lock so we never race a live emulator. Only a data dir that ever ran PostgreSQL
    // servers has anything to stop.
    if !data_dir.exists() || !pg_root.exists() {
        stopped_servers(&mut report);
        return Ok(report);
    }
    let Ok(_lock) = lock::DataDirLock::acquire(data_dir) else {
        stopped_servers(&mut report);
        return Ok(report);
    };
    let cfg = EmulatorConfig {
        postgres_optional: false,
        ..EmulatorConfig::local(data_dir.to_path_buf())
    };
    let backend = make_backend(&cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EmulatorError::io(PathBuf::from("<tokio runtime>"), e))?;
    rt.block_on(backend.shutdown())?;
    stopped_servers(&mut report);
    Ok(report)
}
