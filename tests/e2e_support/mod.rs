//! Shared helpers of the end-to-end tests (`tests/e2e*.rs`): a private copy
//! of a fixture bundle, running the real binary against an emulator, and a
//! small independent HTTP client (reqwest, not lakebundle's own) for checking
//! what the workspace holds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::common::Emulator;

/// The target the e2e tests deploy (no development-mode prefixes).
pub const TARGET: &str = "prod";

/// A bundle copied into its own temp dir (state caches are written there).
pub struct TestBundle {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create bundle dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy fixture file");
        }
    }
}

impl TestBundle {
    /// A copy of `tests/fixtures/<name>`.
    pub fn fixture(name: &str) -> TestBundle {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("bundle");
        copy_dir(&src, &root);
        TestBundle { _dir: dir, root }
    }

    /// The seed's full production bundle (instance, catalog, synced table, job, app).
    pub fn production() -> TestBundle {
        TestBundle::fixture("e2e_production")
    }

    pub fn yaml_path(&self) -> PathBuf {
        self.root.join("databricks.yml")
    }

    /// Replace text in databricks.yml (exactly one occurrence expected).
    pub fn edit(&self, from: &str, to: &str) {
        let path = self.yaml_path();
        let text = std::fs::read_to_string(&path).expect("read databricks.yml");
        assert_eq!(
            text.matches(from).count(),
            1,
            "expected one {from:?} in databricks.yml"
        );
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write databricks.yml");
    }

    /// The local state cache, parsed (panics when it does not parse).
    pub fn state(&self) -> Value {
        let path = self
            .root
            .join(".lakebundle")
            .join(TARGET)
            .join("resources.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("state {} does not parse: {e}\n{text}", path.display()))
    }

    /// Remote id of a resource in state.
    pub fn state_id(&self, addr: &str) -> Option<String> {
        // The Databricks CLI's direct-engine format: `state.<addr>.__id__`.
        self.state()["state"][addr]["__id__"]
            .as_str()
            .map(str::to_string)
    }
}

/// Result of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Assert the exit code, showing both streams on failure.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// `lakebundle -C <bundle> -t prod <args>` against the emulator, no TTY.
pub fn command(emu: &Emulator, bundle: &TestBundle, args: &[&str]) -> Command {
    let mut cmd = emu.lakebundle();
    cmd.arg("-C")
        .arg(&bundle.root)
        .arg("-t")
        .arg(TARGET)
        .args(args);
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

pub fn run(emu: &Emulator, bundle: &TestBundle, args: &[&str]) -> Run {
    let out = command(emu, bundle, args).output().expect("run lakebundle");
    Run::from_output(out)
}

/// Start a run in the background (for concurrency and kill tests).
pub fn spawn(emu: &Emulator, bundle: &TestBundle, args: &[&str]) -> Child {
    command(emu, bundle, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lakebundle")
}

pub fn wait(child: Child) -> Run {
    Run::from_output(child.wait_with_output().expect("wait for lakebundle"))
}

/// An independent client for the emulator's REST API, retrying the injected
/// 429/503 faults so checks see the real state.
pub struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Api {
    pub fn new(emu: &Emulator) -> Api {
        Api {
            url: emu.url.clone(),
            token: emu.token.clone(),
            http: reqwest::Client::new(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.rt.block_on(async {
            for _ in 0..50 {
                let mut req = self
                    .http
                    .request(method.clone(), format!("{}{}", self.url, path))
                    .bearer_auth(&self.token)
                    .query(query);
                if let Some(b) = body {
                    req = req.json(b);
                }
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let status = resp.status().as_u16();
                if status == 429 || status == 503 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let text = resp.text().await.unwrap_or_default();
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                return (status, value);
            }
            panic!("{method} {path}: still failing after 50 attempts");
        })
    }

    /// GET; None on 404.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Option<Value> {
        let (status, v) = self.send(reqwest::Method::GET, path, query, None);
        match status {
            200 => Some(v),
            404 => None,
            s => panic!("GET {path}: HTTP {s}: {v}"),
        }
    }

    /// A mutating POST that must succeed. Retries are only safe for the
    /// idempotent calls the tests make (updates by id).
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let (status, v) = self.send(reqwest::Method::POST, path, &[], Some(body));
        assert_eq!(status, 200, "POST {path}: {v}");
        v
    }

    /// PATCH; the status and body (for changes made outside the bundle).
    pub fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, &[], Some(body))
    }

    /// Every element of a paginated list (`next_page_token`).
    pub fn list(&self, path: &str, field: &str, extra: &[(&str, String)]) -> Vec<Value> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..1000 {
            let mut q: Vec<(&str, String)> = extra.to_vec();
            if let Some(t) = &token {
                q.push(("page_token", t.clone()));
            }
            let Some(page) = self.get(path, &q) else {
                break;
            };
            all.extend(page[field].as_array().cloned().unwrap_or_default());
            token = page["next_page_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        all
    }

    pub fn instances(&self) -> Vec<Value> {
        self.list("/api/2.0/database/instances", "database_instances", &[])
    }

    pub fn jobs(&self) -> Vec<Value> {
        self.list("/api/2.2/jobs/list", "jobs", &[("limit", "100".into())])
    }

    /// Apps that still exist (DELETING counts as gone, as in the real service).
    pub fn apps(&self) -> Vec<Value> {
        self.list("/api/2.0/apps", "apps", &[])
            .into_iter()
            .filter(|a| a["compute_status"]["state"].as_str() != Some("DELETING"))
            .collect()
    }

    pub fn catalog(&self, name: &str) -> Option<Value> {
        self.get(&format!("/api/2.0/database/catalogs/{name}"), &[])
    }

    pub fn synced_table(&self, name: &str) -> Option<Value> {
        self.get(&format!("/api/2.0/database/synced_tables/{name}"), &[])
    }
}

/// Names of the listed objects (`name`, or a job's `settings.name`).
pub fn names(items: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = items
        .iter()
        .filter_map(|i| {
            i["name"]
                .as_str()
                .or_else(|| i["settings"]["name"].as_str())
                .map(str::to_string)
        })
        .collect();
    n.sort();
    n
}
