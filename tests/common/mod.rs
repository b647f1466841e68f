//! Shared integration-test harness: a real `lakebundle emulator serve` child process on a
//! free loopback port over its own data dir, and a preconfigured `lakebundle` command.
//!
//! ```ignore
//! mod common;
//! let emu = common::Emulator::start_with(&["--no-postgres"]);
//! let out = emu.lakebundle().args(["summary"]).output().unwrap();
//! ```
//! Dropping an `Emulator` stops the server (SIGTERM, then SIGKILL) and runs
//! `lakebundle emulator down --data-dir` so no process or database server leaks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

pub mod http;
pub mod prereq;

/// Defaults that keep tests fast; any of them given by the caller wins.
const FAST_DEFAULTS: [(&str, &str); 2] =
    [("--instance-ready-ms", "200"), ("--transition-ms", "100")];

pub struct Emulator {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The bearer token the server accepts.
    pub token: String,
    pub data_dir: PathBuf,
    /// Owns the temporary data dir unless the caller supplied one.
    pub temp: Option<TempDir>,
    args: Vec<String>,
    child: Option<Child>,
}

impl Emulator {
    /// A fresh emulator (own temp data dir, free port, random token).
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// A fresh emulator with extra `emulator serve` flags (e.g. `--no-postgres`,
    /// `--fail-rate 0.2`, `--seed 7`). A `--data-dir` among them is used instead of a temp dir.
    pub fn start_with(args: &[&str]) -> Emulator {
        let given_dir = args
            .iter()
            .position(|a| *a == "--data-dir")
            .and_then(|i| args.get(i + 1));
        let (temp, data_dir) = match given_dir {
            Some(d) => (None, PathBuf::from(d)),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("lakebundle-emu-")
                    .tempdir()
                    .expect("temp dir");
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if given_dir.is_none() {
            full.push("--data-dir".into());
            full.push(data_dir.display().to_string());
        }
        let token = if let Some(i) = args.iter().position(|a| *a == "--token") {
            args.get(i + 1).map(|s| s.to_string()).unwrap_or_default()
        } else {
            let t = format!("dapi-test-{:016x}", rand_u64());
            full.push("--token".into());
            full.push(t.clone());
            t
        };
        for (flag, value) in FAST_DEFAULTS {
            if !args.contains(&flag) {
                full.push(flag.into());
                full.push(value.into());
            }
        }
        let mut emu = Emulator {
            url: String::new(),
            token,
            data_dir,
            temp,
            args: full,
            child: None,
        };
        emu.spawn()
            .unwrap_or_else(|e| panic!("emulator did not start: {e}"));
        emu
    }

    /// Start another emulator over the same data dir and token (after `stop`/`kill9`).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn()
            .unwrap_or_else(|e| panic!("emulator did not restart: {e}"));
    }

    /// Try to start a second server on this emulator's data dir; returns its exit status
    /// and stderr (it is expected to be refused while this one runs).
    pub fn start_second_on_same_dir(&self) -> (std::process::ExitStatus, String) {
        let out = Command::new(Emulator::bin())
            .args(["emulator", "serve", "--port", "0"])
            .args(&self.args)
            .output()
            .expect("run lakebundle");
        (out.status, String::from_utf8_lossy(&out.stderr).to_string())
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(Emulator::bin())
            .args(["emulator", "serve", "--port", "0"])
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", Emulator::bin().display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                return Err(format!("no 'listening on' line (exit: {status:?})"));
            }
        };
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line: {first}"))?
            .trim()
            .to_string();
        self.url = url;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .raw_get("/lakebundle/health")
                .is_some_and(|(s, _)| s == 200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("health check never answered".into())
    }

    /// Path to the built `lakebundle` binary.
    pub fn bin() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_lakebundle"))
    }

    /// `lakebundle` with `DATABRICKS_HOST`/`DATABRICKS_TOKEN` pointing at this emulator and
    /// a clean environment for the other auth sources.
    pub fn lakebundle(&self) -> Command {
        let mut c = Command::new(Emulator::bin());
        c.env("DATABRICKS_HOST", &self.url)
            .env("DATABRICKS_TOKEN", &self.token)
            .env_remove("DATABRICKS_CLIENT_ID")
            .env_remove("DATABRICKS_CLIENT_SECRET")
            .env_remove("DATABRICKS_CONFIG_PROFILE")
            .env(
                "DATABRICKS_CONFIG_FILE",
                self.data_dir.join("no-databrickscfg"),
            )
            .env("LAKEBUNDLE_HOME", self.data_dir.join("lakebundle-home"))
            .env("NO_COLOR", "1");
        c
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Graceful stop (SIGTERM; SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `kill -9` the server (durability tests).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A minimal blocking HTTP GET (no auth) returning `(status, body)`; for readiness.
    pub fn raw_get(&self, path: &str) -> Option<(u16, String)> {
        let authority = self.url.strip_prefix("http://")?;
        let mut s = TcpStream::connect(authority).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let status = buf.split_whitespace().nth(1)?.parse().ok()?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new(Emulator::bin())
            .args(["emulator", "down", "--data-dir"])
            .arg(&self.data_dir)
            .stdout(Stdio::null())
            .status();
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id()));
    h.finish()
}
