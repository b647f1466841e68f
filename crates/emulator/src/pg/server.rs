//! One PostgreSQL server: finding the binaries, running them as an
//! unprivileged user, `initdb`, `pg_ctl` start/stop, the generated config
//! files, loopback address allocation and the admin connection.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::{PgError, PgResult};

/// Bootstrap superuser of every instance; only the emulator logs in as it.
pub const ADMIN_ROLE: &str = "lakebase_admin";
/// The database every instance has, as in the real service.
pub const DEFAULT_DB: &str = "databricks_postgres";
/// The port libpq uses when none is given.
pub const DEFAULT_PORT: u16 = 5432;
/// Name of the generated config file included from `postgresql.conf`.
const CONF_FILE: &str = "lakebundle.conf";
/// OS user the servers run as when the emulator runs as root.
pub const PG_OS_USER: &str = "lakebundle-pg";

// ---------------------------------------------------------------------------------------------
// Binaries

/// The server binaries of one PostgreSQL installation.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bindir: PathBuf,
    /// e.g. `15.18`
    pub version: String,
    pub major: u32,
    /// `share/` of the installation (holds `extension/`), when found.
    pub sharedir: Option<PathBuf>,
    /// Where `postgres` and `pg_ctl` run from when a private install
    /// (see [`PgBinaries::private_install`]) is in use.
    pub runtime_bindir: Option<PathBuf>,
    /// The private install's share dir.
    pub private_share: Option<PathBuf>,
}

const REQUIRED_TOOLS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "pg_basebackup"];
/// Tools that run from a private install when there is one.
const RUNTIME_TOOLS: [&str; 2] = ["postgres", "pg_ctl"];

fn pg_config(bindir: &Path, flag: &str) -> Option<PathBuf> {
    let out = std::process::Command::new(bindir.join("pg_config"))
        .arg(flag)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn common_prefix(paths: &[&Path]) -> PathBuf {
    let mut prefix: Vec<std::path::Component> = paths[0].components().collect();
    for p in &paths[1..] {
        let n = prefix
            .iter()
            .zip(p.components())
            .take_while(|(a, b)| **a == *b)
            .count();
        prefix.truncate(n);
    }
    prefix.iter().collect()
}

fn link_if_missing(target: &Path, link: &Path) -> PgResult<()> {
    if std::fs::symlink_metadata(link).is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(target, link).map_err(PgError::io(link))
}

impl PgBinaries {
    /// `$LAKEBUNDLE_PG_BINDIR`, else the directory `initdb` on PATH resolves
    /// to, else the newest `/usr/lib/postgresql/*/bin` holding every tool.
    pub fn discover() -> PgResult<PgBinaries> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = std::env::var_os("LAKEBUNDLE_PG_BINDIR") {
            candidates.push(PathBuf::from(dir));
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let initdb = dir.join("initdb");
                if initdb.is_file() {
                    if let Ok(real) = std::fs::canonicalize(&initdb) {
                        if let Some(parent) = real.parent() {
                            candidates.push(parent.to_path_buf());
                        }
                    }
                    candidates.push(dir);
                }
            }
        }
        let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect();
        versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
        candidates.extend(versioned.into_iter().map(|(_, p)| p));

        let dir = candidates
            .into_iter()
            .find(|d| REQUIRED_TOOLS.iter().all(|t| d.join(t).is_file()))
            .ok_or_else(|| {
                PgError::NoBinaries(format!(
                    "no directory holds all of {} ($LAKEBUNDLE_PG_BINDIR, PATH, /usr/lib/postgresql/*/bin)",
                    REQUIRED_TOOLS.join(", ")
                ))
            })?;
        let out = std::process::Command::new(dir.join("postgres"))
            .arg("--version")
            .output()
            .map_err(PgError::io(&dir))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text).ok_or_else(|| {
            PgError::NoBinaries(format!(
                "unrecognised `postgres --version` output: {}",
                text.trim()
            ))
        })?;
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let sharedir = find_sharedir(&dir, major);
        Ok(PgBinaries {
            bindir: dir,
            version,
            major,
            sharedir,
            runtime_bindir: None,
            private_share: None,
        })
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        match &self.runtime_bindir {
            Some(dir) if RUNTIME_TOOLS.contains(&name) => dir.join(name),
            _ => self.bindir.join(name),
        }
    }

    /// The share dir servers actually read (`extension/` lives there).
    pub fn effective_sharedir(&self) -> Option<PathBuf> {
        match &self.runtime_bindir {
            Some(_) => self.private_share.clone(),
            None => self.sharedir.clone(),
        }
    }

    /// Mirror the installation under `dir` so that extra extensions can be
    /// added without touching system directories: PostgreSQL finds its
    /// share and lib dirs relative to the running `postgres` binary, so a
    /// copy of `postgres` and `pg_ctl` in the same relative layout, with
    /// the share dir as a symlink farm and `lib` linked, is a full install
    /// whose `extension/` we own. Returns the mirror's `extension/` dir.
    pub fn private_install(&mut self, dir: &Path) -> PgResult<PathBuf> {
        let share = self
            .sharedir
            .clone()
            .ok_or_else(|| PgError::command("private install", "share dir not found"))?;
        let pkglib = pg_config(&self.bindir, "--pkglibdir")
            .unwrap_or_else(|| self.bindir.with_file_name("lib"));
        let prefix = common_prefix(&[&self.bindir, &share, &pkglib]);
        let rel = |p: &Path| p.strip_prefix(&prefix).map(Path::to_path_buf);
        let (Ok(bin_rel), Ok(share_rel), Ok(lib_rel)) =
            (rel(&self.bindir), rel(&share), rel(&pkglib))
        else {
            return Err(PgError::command(
                "private install",
                "cannot relate bin, share and lib dirs",
            ));
        };
        let bin = dir.join(bin_rel);
        let priv_share = dir.join(share_rel);
        let ext = priv_share.join("extension");
        std::fs::create_dir_all(&bin).map_err(PgError::io(&bin))?;
        std::fs::create_dir_all(&ext).map_err(PgError::io(&ext))?;
        for tool in RUNTIME_TOOLS {
            let (from, to) = (self.bindir.join(tool), bin.join(tool));
            // A real copy: PostgreSQL resolves symlinks to locate its install.
            let same = std::fs::metadata(&from).ok().map(|m| m.len())
                == std::fs::metadata(&to).ok().map(|m| m.len());
            if !same {
                let tmp = to.with_extension("tmp");
                std::fs::copy(&from, &tmp).map_err(PgError::io(&tmp))?;
                std::fs::rename(&tmp, &to).map_err(PgError::io(&to))?;
            }
        }
        link_if_missing(&pkglib, &dir.join(lib_rel))?;
        for (from_dir, to_dir, skip) in [
            (&share, &priv_share, Some("extension")),
            (&share.join("extension"), &ext, None),
        ] {
            for e in std::fs::read_dir(from_dir)
                .map_err(PgError::io(from_dir))?
                .flatten()
            {
                if skip.is_some_and(|s| e.file_name() == s) {
                    continue;
                }
                link_if_missing(&e.path(), &to_dir.join(e.file_name()))?;
            }
        }
        // A data dir on a noexec mount cannot run the copies: keep the system ones.
        let runs = std::process::Command::new(bin.join("postgres"))
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !runs {
            return Err(PgError::command(
                "private install",
                format!("{} cannot execute", bin.display()),
            ));
        }
        self.runtime_bindir = Some(bin);
        self.private_share = Some(priv_share);
        Ok(ext)
    }

    /// `PG_VERSION_15` style, as the API reports it.
    pub fn api_version(&self) -> String {
        format!("PG_VERSION_{}", self.major)
    }
}

fn parse_version(text: &str) -> Option<String> {
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    let after = text.split(')').nth(1)?.trim();
    let v: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

fn find_sharedir(bindir: &Path, major: u32) -> Option<PathBuf> {
    let from_pg_config = std::process::Command::new(bindir.join("pg_config"))
        .arg("--sharedir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let guesses = [
        from_pg_config,
        Some(PathBuf::from(format!("/usr/share/postgresql/{major}"))),
        bindir.parent().map(|p| p.join("share/postgresql")),
        bindir.parent().map(|p| p.join("share")),
    ];
    guesses
        .into_iter()
        .flatten()
        .find(|d| d.join("extension/plpgsql.control").is_file())
}

// ---------------------------------------------------------------------------------------------
// Running as the unprivileged server user

/// Who the server processes run as. PostgreSQL refuses to run as root, so a
/// root emulator runs them as [`PG_OS_USER`] (created on first use).
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    ids: Option<(u32, u32)>,
}

impl RunAs {
    pub fn detect() -> PgResult<RunAs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(RunAs { ids: None });
        }
        if lookup_id("-u").is_none() {
            let out = std::process::Command::new("useradd")
                .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
                .args(["--shell", "/usr/sbin/nologin", PG_OS_USER])
                .output()
                .map_err(|e| PgError::command("useradd", e.to_string()))?;
            // Another process may have created it concurrently (exit 9).
            if !out.status.success() && lookup_id("-u").is_none() {
                return Err(PgError::command(
                    format!("useradd {PG_OS_USER}"),
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ));
            }
        }
        match (lookup_id("-u"), lookup_id("-g")) {
            (Some(uid), Some(gid)) => Ok(RunAs {
                ids: Some((uid, gid)),
            }),
            _ => Err(PgError::command(
                "id",
                format!("cannot resolve user {PG_OS_USER}"),
            )),
        }
    }

    pub fn is_dropping(&self) -> bool {
        self.ids.is_some()
    }

    /// A command that runs as the server user (std drops supplementary groups
    /// when it switches uid).
    pub fn command(&self, program: &Path, cwd: &Path) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(program);
        cmd.current_dir(cwd)
            .stdin(Stdio::null())
            .env("LC_ALL", "C.UTF-8")
            .env_remove("PGPASSWORD");
        if let Some((uid, gid)) = self.ids {
            cmd.gid(gid).uid(uid);
        }
        cmd
    }

    /// Make `path` (recursively) owned by the server user.
    pub fn chown_tree(&self, path: &Path) -> PgResult<()> {
        let Some((uid, gid)) = self.ids else {
            return Ok(());
        };
        fn walk(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
            std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
            let meta = std::fs::symlink_metadata(p)?;
            if meta.is_dir() {
                for e in std::fs::read_dir(p)? {
                    walk(&e?.path(), uid, gid)?;
                }
            }
            Ok(())
        }
        walk(path, uid, gid).map_err(PgError::io(path))
    }

    /// The server user must be able to reach its data dirs: add the
    /// traverse bit (not read) for others on every ancestor lacking it.
    pub fn ensure_traversable(&self, path: &Path) -> PgResult<()> {
        if self.ids.is_none() {
            return Ok(());
        }
        for dir in path.ancestors() {
            if dir.as_os_str().is_empty() {
                continue;
            }
            let meta = std::fs::metadata(dir).map_err(PgError::io(dir))?;
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))
                    .map_err(PgError::io(dir))?;
            }
        }
        Ok(())
    }
}

fn lookup_id(flag: &str) -> Option<u32> {
    let out = std::process::Command::new("id")
        .args([flag, PG_OS_USER])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Run a command to completion; failure carries its (secret-free) stderr.
pub async fn run(cmd: std::process::Command, what: &str) -> PgResult<String> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = cmd
        .output()
        .await
        .map_err(|e| PgError::command(what, e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(PgError::command(
            what,
            format!("{} ({})", detail, out.status),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// One server's files and processes

/// Where one server's files live: `dir/data` is PGDATA, `dir/<log>` its log.
#[derive(Debug, Clone)]
pub struct ServerDirs {
    pub data: PathBuf,
    pub log: PathBuf,
}

impl ServerDirs {
    pub fn new(data: PathBuf, log: PathBuf) -> ServerDirs {
        ServerDirs { data, log }
    }
}

/// `initdb` a cluster whose bootstrap superuser is [`ADMIN_ROLE`] with
/// `password`, hooked up to the generated config file.
pub async fn initdb(bin: &PgBinaries, run_as: &RunAs, data: &Path, password: &str) -> PgResult<()> {
    let parent = data
        .parent()
        .ok_or_else(|| PgError::command("initdb", "data dir has no parent"))?;
    let pwfile = parent.join(".initdb-pw");
    write_private(&pwfile, password)?;
    run_as.chown_tree(&pwfile)?;
    let mut cmd = run_as.command(&bin.tool("initdb"), parent);
    cmd.arg("-D")
        .arg(data)
        .args(["-U", ADMIN_ROLE, "-E", "UTF8", "--locale=C.UTF-8"]);
    cmd.args([
        "--auth-local=reject",
        "--auth-host=scram-sha-256",
        "--no-sync",
        "--no-instructions",
    ]);
    // Small WAL segments: cheap to archive and to switch for PITR.
    cmd.arg("--wal-segsize=1")
        .arg(format!("--pwfile={}", pwfile.display()));
    let res = run(cmd, "initdb").await;
    let _ = std::fs::remove_file(&pwfile);
    res?;
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).map_err(PgError::io(&conf))?;
    text.push_str(&format!(
        "\n# lakebundle: instance settings\ninclude_if_exists = '{CONF_FILE}'\n"
    ));
    std::fs::write(&conf, text).map_err(PgError::io(&conf))?;
    Ok(())
}

/// Whether a postmaster is running on this data dir.
pub async fn is_running(bin: &PgBinaries, run_as: &RunAs, data: &Path) -> bool {
    if !data.join("postmaster.pid").is_file() {
        return false;
    }
    let mut cmd = tokio::process::Command::from(run_as.command(&bin.tool("pg_ctl"), data));
    cmd.arg("status")
        .arg("-D")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    matches!(cmd.status().await, Ok(s) if s.success())
}

/// `pg_ctl start -w`; on failure the error carries the log's last lines.
pub async fn start(bin: &PgBinaries, run_as: &RunAs, dirs: &ServerDirs) -> PgResult<()> {
    if is_running(bin, run_as, &dirs.data).await {
        return Ok(());
    }
    let mut cmd = run_as.command(&bin.tool("pg_ctl"), &dirs.data);
    cmd.arg("start")
        .args(["-w", "-t", "120", "-s", "-D"])
        .arg(&dirs.data)
        .arg("-l")
        .arg(&dirs.log);
    match run(cmd, "pg_ctl start").await {
        Ok(_) => Ok(()),
        Err(e) => Err(PgError::command(
            "pg_ctl start",
            format!("{e}; server log:\n{}", log_tail(&dirs.log, 8)),
        )),
    }
}

/// The pid of the live postmaster of `data`, if one runs.
pub fn live_postmaster(data: &Path) -> Option<i32> {
    postmaster_pid(data).filter(|p| process_alive(*p))
}

/// The postmaster's pid, from `postmaster.pid`.
fn postmaster_pid(data: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok().filter(|p| *p > 0)
}

/// Whether a process still runs (exists and is not a zombie).
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// pg_ctl returns once the pid file is gone, which the postmaster removes
/// while exiting: wait for the process itself so none outlives a stop.
fn wait_gone_blocking(pid: Option<i32>) {
    let Some(pid) = pid else { return };
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn wait_gone(pid: Option<i32>) {
    let Some(pid) = pid else { return };
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn stop_command(
    bin: &PgBinaries,
    run_as: &RunAs,
    data: &Path,
    mode: &str,
) -> std::process::Command {
    let mut cmd = run_as.command(&bin.tool("pg_ctl"), data);
    cmd.arg("stop")
        .args(["-w", "-t", "30", "-s", "-m", mode, "-D"])
        .arg(data);
    cmd
}

/// Stop the server (fast shutdown; immediate when that does not finish).
pub async fn stop(bin: &PgBinaries, run_as: &RunAs, data: &Path) -> PgResult<()> {
    if !is_running(bin, run_as, data).await {
        return Ok(());
    }
    let pid = postmaster_pid(data);
    if run(stop_command(bin, run_as, data, "fast"), "pg_ctl stop")
        .await
        .is_err()
    {
        run(
            stop_command(bin, run_as, data, "immediate"),
            "pg_ctl stop -m immediate",
        )
        .await?;
    }
    wait_gone(pid).await;
    Ok(())
}

/// Blocking stop, for `Drop` and `emulator down`.
pub fn stop_blocking(bin: &PgBinaries, run_as: &RunAs, data: &Path) -> bool {
    if !data.join("postmaster.pid").is_file() {
        return false;
    }
    let pid = postmaster_pid(data);
    for mode in ["fast", "immediate"] {
        let mut cmd = stop_command(bin, run_as, data, mode);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        if matches!(cmd.status(), Ok(s) if s.success()) {
            wait_gone_blocking(pid);
            return true;
        }
    }
    false
}

/// `pg_ctl reload` (config files re-read, e.g. after pg_hba changes).
pub async fn reload(bin: &PgBinaries, run_as: &RunAs, data: &Path) -> PgResult<()> {
    let mut cmd = run_as.command(&bin.tool("pg_ctl"), data);
    cmd.arg("reload").arg("-s").arg("-D").arg(data);
    run(cmd, "pg_ctl reload").await.map(|_| ())
}

pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// chmod.
pub fn set_mode(path: &Path, mode: u32) -> PgResult<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(PgError::io(path))
}

/// Write a file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> PgResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(PgError::io(path))?;
    f.write_all(contents.as_bytes()).map_err(PgError::io(path))
}

// ---------------------------------------------------------------------------------------------
// Generated configuration

/// `shared_buffers` and `work_mem` in MB for a capacity: a laptop-sized
/// scale of the service's ~16 GB RAM per CU, doubling per step like it.
pub fn memory_for(capacity: &str) -> PgResult<(u32, u32)> {
    match capacity {
        "CU_1" => Ok((32, 4)),
        "CU_2" => Ok((64, 8)),
        "CU_4" => Ok((128, 16)),
        "CU_8" => Ok((256, 32)),
        other => Err(PgError::Invalid(format!(
            "capacity must be one of CU_1, CU_2, CU_4, CU_8; got {other:?}"
        ))),
    }
}

/// What a recovering server replays and where it stops.
#[derive(Debug, Clone)]
pub enum RecoveryTarget {
    /// Replay everything there is (a clone at the current point).
    Latest,
    /// `recovery_target_time`, in a form PostgreSQL parses.
    Time(String),
    /// `recovery_target_lsn`.
    Lsn(String),
}

#[derive(Debug, Clone)]
pub struct Recovery {
    /// Archive to restore WAL from (the parent's).
    pub archive: PathBuf,
    pub target: RecoveryTarget,
}

/// Everything `lakebundle.conf` says about one server.
#[derive(Debug, Clone)]
pub struct ServerConf {
    pub addr: SocketAddrV4,
    pub capacity: String,
    /// Archive completed WAL here (primaries).
    pub archive: Option<PathBuf>,
    pub hot_standby: bool,
    pub ssl: bool,
    pub recovery: Option<Recovery>,
    /// Stream from this primary (replicas).
    pub standby_of: Option<Standby>,
    /// `shared_preload_libraries`.
    pub preload: Vec<String>,
    /// The server's own settings (Lakebase endpoints), after the generated ones so they win.
    pub extra: Vec<(String, String)>,
}

/// A streaming replica's link to its primary.
#[derive(Debug, Clone)]
pub struct Standby {
    pub primary: SocketAddrV4,
    /// libpq password file holding the admin password (0600, server user).
    pub passfile: PathBuf,
    pub name: String,
}

/// A libpq conninfo value.
fn conninfo_value(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A postgresql.conf string literal.
fn conf_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A POSIX shell word.
pub fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn render_conf(conf: &ServerConf) -> PgResult<String> {
    let (shared_buffers, work_mem) = memory_for(&conf.capacity)?;
    let mut lines = vec![
        "# Generated by lakebundle on every start; edits are overwritten.".to_string(),
        format!(
            "listen_addresses = {}",
            conf_str(&conf.addr.ip().to_string())
        ),
        format!("port = {}", conf.addr.port()),
        // No unix socket: the emulator and clients all use TCP on loopback.
        "unix_socket_directories = ''".to_string(),
        format!("shared_buffers = '{shared_buffers}MB'"),
        format!("work_mem = '{work_mem}MB'"),
        format!("# capacity = {}", conf.capacity),
        "max_connections = 100".to_string(),
        "wal_level = replica".to_string(),
        "max_wal_senders = 10".to_string(),
        "hot_standby = ".to_string() + if conf.hot_standby { "on" } else { "off" },
        format!("ssl = {}", if conf.ssl { "on" } else { "off" }),
        "timezone = 'UTC'".to_string(),
        "log_timezone = 'UTC'".to_string(),
        "dynamic_shared_memory_type = posix".to_string(),
    ];
    if !conf.preload.is_empty() {
        lines.push(format!(
            "shared_preload_libraries = {}",
            conf_str(&conf.preload.join(","))
        ));
    }
    match &conf.archive {
        Some(dir) => {
            let target = format!("{}/%f", dir.display());
            let cmd = format!("test ! -f {t} && cp %p {t}", t = shell_word(&target));
            lines.push("archive_mode = on".into());
            lines.push(format!("archive_command = {}", conf_str(&cmd)));
        }
        None => lines.push("archive_mode = off".into()),
    }
    if let Some(rec) = &conf.recovery {
        let from = format!("{}/%f", rec.archive.display());
        lines.push(format!(
            "restore_command = {}",
            conf_str(&format!("cp {} %p", shell_word(&from)))
        ));
        lines.push("recovery_target_timeline = 'latest'".into());
        match &rec.target {
            RecoveryTarget::Latest => {}
            RecoveryTarget::Time(t) => {
                lines.push(format!("recovery_target_time = {}", conf_str(t)))
            }
            RecoveryTarget::Lsn(l) => lines.push(format!("recovery_target_lsn = {}", conf_str(l))),
        }
        if !matches!(rec.target, RecoveryTarget::Latest) {
            lines.push("recovery_target_action = 'promote'".into());
        }
    }
    if !conf.extra.is_empty() {
        lines.push("# this server's own settings".into());
    }
    for (name, value) in &conf.extra {
        if !valid_setting_name(name) {
            return Err(PgError::Invalid(format!(
                "{name:?} is not a PostgreSQL setting name"
            )));
        }
        lines.push(format!("{name} = {}", conf_str(value)));
    }
    if let Some(sb) = &conf.standby_of {
        let info = format!(
            "host={} port={} user={ADMIN_ROLE} passfile={} application_name={}",
            sb.primary.ip(),
            sb.primary.port(),
            conninfo_value(&sb.passfile.display().to_string()),
            conninfo_value(&sb.name)
        );
        lines.push(format!("primary_conninfo = {}", conf_str(&info)));
    }
    lines.push(String::new());
    Ok(lines.join("\n"))
}

/// A setting name as `postgresql.conf` takes it (`work_mem`, `auto_explain.log_min_duration`).
pub fn valid_setting_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Check a data dir's configuration files as the server would read them at start
/// (`postgres -C`): an unknown setting or a bad value is an error quoting PostgreSQL.
pub async fn check_conf(bin: &PgBinaries, run_as: &RunAs, data: &Path) -> PgResult<()> {
    let mut cmd = run_as.command(&bin.tool("postgres"), data);
    cmd.arg("-D").arg(data).arg("-C").arg("shared_buffers");
    match run(cmd, "checking the server settings").await {
        Ok(_) => Ok(()),
        Err(PgError::Command { detail, .. }) => {
            // The FATAL/LOG lines name the setting and why its value is refused.
            let why: Vec<&str> = detail
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.contains("contains errors"))
                .collect();
            Err(PgError::Invalid(format!(
                "PostgreSQL refuses these settings: {}",
                why.join("; ")
            )))
        }
        Err(e) => Err(e),
    }
}

/// Group role whose members are identity (OAuth) roles; they may always log in.
pub const IDENTITY_GROUP: &str = "databricks_identity";

/// `pg_hba.conf`: the admin and identity roles log in with SCRAM; other
/// (native password) roles only when `enable_pg_native_login`.
pub fn render_hba(native_login: bool) -> String {
    let net = "127.0.0.0/8";
    let mut s = String::from("# Generated by lakebundle; edits are overwritten.\n");
    s.push_str(&format!(
        "host replication {ADMIN_ROLE} {net} scram-sha-256\n"
    ));
    s.push_str(&format!("host all {ADMIN_ROLE} {net} scram-sha-256\n"));
    s.push_str(&format!("host all +{IDENTITY_GROUP} {net} scram-sha-256\n"));
    if native_login {
        s.push_str(&format!("host all all {net} scram-sha-256\n"));
    } else {
        s.push_str(&format!("host all all {net} reject\n"));
    }
    s
}

/// Write `lakebundle.conf` and `pg_hba.conf` into a data dir.
pub fn write_conf(
    run_as: &RunAs,
    data: &Path,
    conf: &ServerConf,
    native_login: bool,
) -> PgResult<()> {
    let path = data.join(CONF_FILE);
    std::fs::write(&path, render_conf(conf)?).map_err(PgError::io(&path))?;
    run_as.chown_tree(&path)?;
    let hba = data.join("pg_hba.conf");
    std::fs::write(&hba, render_hba(native_login)).map_err(PgError::io(&hba))?;
    run_as.chown_tree(&hba)
}

// ---------------------------------------------------------------------------------------------
// Loopback addresses

/// Addresses handed out in this process and not yet released, so parallel
/// creations never pick the same one before their servers bind it.
static RESERVED: Mutex<BTreeSet<SocketAddrV4>> = Mutex::new(BTreeSet::new());

fn reserved() -> std::sync::MutexGuard<'static, BTreeSet<SocketAddrV4>> {
    RESERVED.lock().unwrap_or_else(|p| p.into_inner())
}

fn bindable(addr: SocketAddrV4) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// Pick an address for a new server: `127.0.0.N:5432` (N = 2..254) so that
/// clients need no port, else `127.0.0.1` with a free port.
pub fn allocate_addr(avoid: &[SocketAddrV4]) -> SocketAddrV4 {
    let mut held = reserved();
    for n in 2..=254u8 {
        let addr = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, n), DEFAULT_PORT);
        if !held.contains(&addr) && !avoid.contains(&addr) && bindable(addr) {
            held.insert(addr);
            return addr;
        }
    }
    loop {
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0);
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        if port != 0 && !held.contains(&addr) && !avoid.contains(&addr) {
            held.insert(addr);
            return addr;
        }
    }
}

/// Keep using a recorded address if it is still free (or ours), else pick another.
pub fn reuse_or_allocate(previous: SocketAddrV4, avoid: &[SocketAddrV4]) -> SocketAddrV4 {
    {
        let mut held = reserved();
        if !avoid.contains(&previous) && (held.contains(&previous) || bindable(previous)) {
            held.insert(previous);
            return previous;
        }
    }
    allocate_addr(avoid)
}

pub fn release_addr(addr: SocketAddrV4) {
    reserved().remove(&addr);
}

/// The `read_write_dns` / `read_only_dns` form of an address: the bare
/// host on the default port, `host:port` otherwise.
pub fn dns_of(addr: SocketAddrV4) -> String {
    if addr.port() == DEFAULT_PORT {
        addr.ip().to_string()
    } else {
        addr.to_string()
    }
}

/// Whether a failed start was the address being taken by someone else.
pub fn is_bind_failure(e: &PgError) -> bool {
    let s = e.to_string();
    s.contains("could not bind")
        || s.contains("Address already in use")
        || s.contains("could not create any TCP/IP sockets")
}

// ---------------------------------------------------------------------------------------------
// Admin connections

/// Connect as the admin role over TCP.
pub async fn connect(
    addr: SocketAddrV4,
    db: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect_as(addr, db, ADMIN_ROLE, password).await
}

/// Connect as any role (tests and the sync use this too).
pub async fn connect_as(
    addr: SocketAddrV4,
    db: &str,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname(db)
        .application_name("lakebundle-emulator")
        .connect_timeout(Duration::from_secs(10));
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}

/// Wait until the server accepts admin connections (and, with
/// `writable`, has left recovery).
pub async fn wait_ready(
    addr: SocketAddrV4,
    password: &str,
    writable: bool,
    timeout: Duration,
    log: &Path,
) -> PgResult<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match connect(addr, "postgres", password).await {
            Ok(c) => {
                if !writable {
                    return Ok(());
                }
                match c.query_one("SELECT pg_is_in_recovery()", &[]).await {
                    Ok(row) if !row.get::<_, bool>(0) => return Ok(()),
                    Ok(_) => last = "still in recovery".into(),
                    Err(e) => last = super::error::describe_sql_error(&e),
                }
            }
            Err(e) => last = super::error::describe_sql_error(&e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(PgError::command(
        format!("waiting for the server on {addr}"),
        format!("{last}; server log:\n{}", log_tail(log, 8)),
    ))
}

/// Quote an SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quote an SQL string literal (standard_conforming_strings is on).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_parsed_from_debian_output() {
        let v = parse_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n");
        assert_eq!(v.as_deref(), Some("15.18"));
        assert_eq!(
            parse_version("postgres (PostgreSQL) 16.4\n").as_deref(),
            Some("16.4")
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn capacity_doubles_memory_per_step() {
        assert_eq!(memory_for("CU_1").ok(), Some((32, 4)));
        assert_eq!(memory_for("CU_8").ok(), Some((256, 32)));
        assert!(memory_for("CU_3").is_err());
    }

    #[test]
    fn dns_drops_the_default_port_only() {
        assert_eq!(
            dns_of(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 7), 5432)),
            "127.0.0.7"
        );
        assert_eq!(
            dns_of(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6000)),
            "127.0.0.1:6000"
        );
    }

    #[test]
    fn conf_quotes_paths_for_both_conf_and_shell() {
        let conf = ServerConf {
            addr: SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 5432),
            capacity: "CU_2".into(),
            archive: Some(PathBuf::from("/tmp/it's here")),
            hot_standby: true,
            ssl: false,
            recovery: None,
            standby_of: None,
            preload: vec!["pg_stat_statements".into()],
            extra: vec![("work_mem".into(), "it's".into())],
        };
        let text = render_conf(&conf).unwrap_or_default();
        assert!(text.ends_with("work_mem = 'it''s'\n"), "{text}");
        let bad = ServerConf {
            extra: vec![("x = 1\nssl".into(), "on".into())],
            ..conf.clone()
        };
        assert!(render_conf(&bad).is_err());
        assert!(text.contains("shared_buffers = '64MB'"), "{text}");
        assert!(text.contains("archive_command = 'test ! -f ''/tmp/it''\\\\''''s here/%f'' && cp %p ''/tmp/it''\\\\''''s here/%f'''"), "{text}");
        assert!(!text.contains("restore_command"));
        assert!(
            text.contains("shared_preload_libraries = 'pg_stat_statements'"),
            "{text}"
        );
    }

    #[test]
    fn hba_rejects_native_roles_unless_enabled() {
        assert!(render_hba(false).ends_with("host all all 127.0.0.0/8 reject\n"));
        assert!(render_hba(true).ends_with("host all all 127.0.0.0/8 scram-sha-256\n"));
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("bob@x.com"), "\"bob@x.com\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
