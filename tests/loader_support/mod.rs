//! Shared helpers for the loader's integration tests: write a bundle into a
//! temp dir, run the real `lakebundle` binary on it, filter output for snapshots.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../common/prereq.rs"]
pub mod prereq;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A bundle written into a fresh temp dir.
pub struct Bundle {
    pub dir: tempfile::TempDir,
}

impl Bundle {
    pub fn new(files: &[(&str, &str)]) -> Bundle {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let full = dir.path().join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(full, text).expect("write file");
        }
        Bundle { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// `lakebundle -C <dir> <args...>`
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), &[], args)
    }
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        run_in(self.path(), env, args)
    }
}

/// Run the binary with `-C dir`, a clean environment (no DATABRICKS_* or
/// BUNDLE_VAR_* from the caller) plus `env`.
pub fn run_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakebundle"));
    cmd.arg("-C").arg(dir).args(args);
    run_cmd(cmd, env)
}

/// Run the binary in `cwd` without `-C`.
pub fn run_at(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakebundle"));
    cmd.current_dir(cwd).args(args);
    run_cmd(cmd, env)
}

fn run_cmd(mut cmd: Command, env: &[(&str, &str)]) -> Run {
    for (k, _) in std::env::vars() {
        if k.starts_with("DATABRICKS_") || k.starts_with("BUNDLE_VAR_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run lakebundle");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `examples/<name>` of this package.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// `../shared` next to the package; absent = skip (a failure under `CI=true`).
pub fn shared() -> Option<PathBuf> {
    prereq::shared_dir()
}

/// The messages of every diagnostic of a JSON failure.
pub fn messages(v: &serde_json::Value) -> Vec<String> {
    v["diagnostics"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
