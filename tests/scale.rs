//! Scale (issue 15): request body limits of the emulator follow the real service,
//! the workspace copy of the state is uploaded on a time basis, and identical
//! diagnostics are grouped.

mod common;
mod e2e_support;
#[path = "common/proxy.rs"]
mod proxy;

use std::time::Duration;

use base64::Engine;
use common::Emulator;
use proxy::CountingProxy;
use serde_json::{json, Value};

const MB: usize = 1024 * 1024;

fn http() -> reqwest::Client {
    // Bounded, so a server hang fails the test instead of stalling it.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = if text.is_empty() {
        json!({})
    } else {
        serde_json::from_str(&text).unwrap_or(json!({ "raw": text }))
    };
    (status, v)
}

fn import_body(path: &str, size: usize) -> Value {
    let content = vec![b'x'; size];
    json!({
        "path": path,
        "content": base64::engine::general_purpose::STANDARD.encode(content),
        "format": "AUTO",
        "overwrite": true,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn request_body_limits_follow_the_real_service() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let c = http();
    let url = |p: &str| format!("{}{p}", emu.url);
    let root = "/Users/local-user@example.com/big";
    let (s, _) = send(
        c.post(url("/api/2.0/workspace/mkdirs"))
            .bearer_auth(&emu.token)
            .json(&json!({ "path": root })),
    )
    .await;
    assert_eq!(s, 200);

    // 8 MB of content (~10.7 MB of base64) is under the documented 10 MB import limit.
    let (s, v) = send(
        c.post(url("/api/2.0/workspace/import"))
            .bearer_auth(&emu.token)
            .json(&import_body(&format!("{root}/eight.bin"), 8 * MB)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, st) = send(
        c.get(url(&format!(
            "/api/2.0/workspace/get-status?path={root}/eight.bin"
        )))
        .bearer_auth(&emu.token),
    )
    .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["size"], json!(8 * MB));

    // 11 MB is over it: the documented 400 MAX_NOTEBOOK_SIZE_EXCEEDED, in the error shape.
    let (s, v) = send(
        c.post(url("/api/2.0/workspace/import"))
            .bearer_auth(&emu.token)
            .json(&import_body(&format!("{root}/eleven.bin"), 11 * MB)),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_code"], "MAX_NOTEBOOK_SIZE_EXCEEDED");
    assert!(v["message"].as_str().unwrap_or("").contains("10 MB"), "{v}");
    // A body far past the limit is cut off early with the same error.
    let (s, v) = send(
        c.post(url("/api/2.0/workspace/import"))
            .bearer_auth(&emu.token)
            .json(&import_body(&format!("{root}/thirty.bin"), 30 * MB)),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_code"], "MAX_NOTEBOOK_SIZE_EXCEEDED");
    let (s, _) = send(
        c.get(url(&format!(
            "/api/2.0/workspace/get-status?path={root}/eleven.bin"
        )))
        .bearer_auth(&emu.token),
    )
    .await;
    assert_eq!(s, 404, "a refused import writes nothing");

    // Workspace files (import-file, what state uploads use) and the Files API take
    // more than the JSON import.
    let (s, v) = send(
        c.post(url(&format!(
            "/api/2.0/workspace-files/import-file{root}/file.bin?overwrite=true"
        )))
        .bearer_auth(&emu.token)
        .body(vec![b'y'; 12 * MB]),
    )
    .await;
    assert!(s == 200 || s == 204, "{s} {v}");
    let (s, v) = send(
        c.put(url(&format!(
            "/api/2.0/fs/files{root}/put.bin?overwrite=true"
        )))
        .bearer_auth(&emu.token)
        .header("content-type", "application/octet-stream")
        .body(vec![b'z'; 12 * MB]),
    )
    .await;
    assert!(s == 200 || s == 204, "{s} {v}");
    let (s, st) = send(
        c.get(url(&format!(
            "/api/2.0/workspace/get-status?path={root}/put.bin"
        )))
        .bearer_auth(&emu.token),
    )
    .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["size"], json!(12 * MB));

    // A JSON API past its limit answers in the error shape, not axum's plain text.
    let big = "j".repeat(11 * MB);
    let (s, v) = send(
        c.post(url("/api/2.2/jobs/create"))
            .bearer_auth(&emu.token)
            .json(&json!({ "name": "big", "description": big })),
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error_code"], "RESOURCE_LIMIT_EXCEEDED");
}

/// `(count, bytes)` of the uploads of the workspace state file.
fn state_uploads(proxy: &CountingProxy) -> (usize, usize) {
    proxy
        .seen()
        .iter()
        .filter(|(l, _)| {
            l.starts_with("POST /api/2.0/workspace-files/import-file/")
                && l.ends_with("/state/resources.json")
        })
        .fold((0, 0), |(n, b), (_, len)| (n + 1, b + len))
}

/// A bundle of `jobs` jobs in a fresh directory.
fn jobs_bundle(jobs: usize) -> common::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut yaml = String::from("bundle:\n  name: scale\nresources:\n  jobs:\n");
    for i in 0..jobs {
        yaml.push_str(&format!(
            "    j{i}:\n      name: scale-{i}\n      tasks:\n        - task_key: t\n          notebook_task:\n            notebook_path: /Shared/n\n"
        ));
    }
    std::fs::write(dir.path().join("databricks.yml"), yaml).expect("write bundle");
    dir
}

fn deploy(emu: &Emulator, host: &str, dir: &std::path::Path) -> std::process::Child {
    emu.lakebundle()
        .env("DATABRICKS_HOST", host)
        .arg("-C")
        .arg(dir)
        .args(["deploy", "--auto-approve", "--force-lock"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn lakebundle")
}

fn finish(child: std::process::Child) -> (i32, String) {
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The workspace copy of the state is uploaded on a time basis, not per change:
/// a 1,000-job deploy sends it at most once per 3 s of deploy (plus the first
/// change and the final flush), and the copy it leaves is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_uploads_are_bounded_by_time_not_by_changes() {
    const JOBS: usize = 1000;
    let emu = Emulator::start_with(&["--no-postgres"]);
    let proxy = CountingProxy::start(emu.url.clone()).await;
    let dir = jobs_bundle(JOBS);
    let started = std::time::Instant::now();
    let child = deploy(&emu, &proxy.url, dir.path());
    let (code, out) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .expect("join");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{out}");
    let (uploads, bytes) = state_uploads(&proxy);
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(".lakebundle/default/resources.json")).expect("local state"),
    )
    .expect("state parses");
    let final_size = serde_json::to_vec(&state).expect("json").len();
    eprintln!(
        "{JOBS} jobs deployed in {secs:.1} s: {uploads} state uploads, {bytes} bytes \
         (final state {final_size} bytes)"
    );
    // Every 3 s at most, plus the first change and the final flush.
    let bound = (secs / 3.0).floor() as usize + 2;
    assert!(
        uploads <= bound,
        "{uploads} uploads in {secs:.1} s (at most {bound} expected)"
    );
    assert!(uploads >= 1, "the final flush uploads the state");
    // The Databricks CLI's format: `state` keyed `resources.jobs.<key>`
    // (permissions would be `.permissions` entries of their own).
    assert_eq!(
        state["state"]
            .as_object()
            .map(|m| m.keys().filter(|k| k.split('.').count() == 3).count()),
        Some(JOBS),
        "every job is in state"
    );
}

/// `kill -9` of a 300-job deploy at several moments (while the workspace copy of
/// the state trails the local log): each re-deploy converges, with exactly one
/// job per resource and state matching the workspace.
#[test]
fn kill_dash_nine_mid_large_deploy_then_redeploy_converges() {
    const JOBS: usize = 300;
    let emu = Emulator::start_with(&["--no-postgres"]);
    let api = e2e_support::Api::new(&emu);
    let dir = jobs_bundle(JOBS);
    for (round, delay_ms) in [700u64, 1800, 3500].into_iter().enumerate() {
        let mut child = deploy(&emu, &emu.url, dir.path());
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SIGKILL: no cleanup of any kind runs.
        let _ = child.kill();
        let _ = child.wait();
        let (code, out) = finish(deploy(&emu, &emu.url, dir.path()));
        assert_eq!(code, 0, "round {round}: the re-deploy converges\n{out}");
        let jobs = api.jobs();
        let mut names: Vec<String> = jobs
            .iter()
            .filter_map(|j| j["settings"]["name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        let total = names.len();
        names.dedup();
        assert_eq!(total, names.len(), "round {round}: no duplicate job");
        assert_eq!(total, JOBS, "round {round}: one job per resource");
        let state: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(".lakebundle/default/resources.json"))
                .expect("local state"),
        )
        .expect("state parses");
        let ids: std::collections::BTreeSet<String> = state["state"]
            .as_object()
            .expect("resources")
            .values()
            .filter_map(|r| r["__id__"].as_str().map(str::to_string))
            .collect();
        let remote: std::collections::BTreeSet<String> =
            jobs.iter().map(|j| j["job_id"].to_string()).collect();
        assert_eq!(ids, remote, "round {round}: state matches the workspace");
        // Start the next round from nothing so the killed run has real work.
        let out = emu
            .lakebundle()
            .arg("-C")
            .arg(dir.path())
            .args(["destroy", "--auto-approve", "--force-lock"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("destroy");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(api.jobs().is_empty(), "round {round}: destroy left jobs");
    }
}

/// `files` YAML files of `jobs_per_file` jobs, each job with five tasks that
/// run the same five plain-file notebooks (no notebook header).
fn notebook_jobs_bundle(files: usize, jobs_per_file: usize) -> common::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("notebooks")).expect("mkdir");
    std::fs::create_dir_all(root.join("resources")).expect("mkdir");
    for n in 0..5 {
        std::fs::write(
            root.join(format!("notebooks/n{n}.py")),
            format!("print({n})\n"),
        )
        .expect("write notebook");
    }
    std::fs::write(
        root.join("databricks.yml"),
        "bundle:\n  name: notebooks\ninclude:\n  - resources/*.yml\n",
    )
    .expect("write bundle");
    for f in 0..files {
        let mut yaml = String::from("resources:\n  jobs:\n");
        for j in 0..jobs_per_file {
            yaml.push_str(&format!(
                "    j{f}_{j}:\n      name: nb-{f}-{j}\n      tasks:\n"
            ));
            for t in 0..5 {
                yaml.push_str(&format!(
                    "        - task_key: t{t}\n          notebook_task:\n            notebook_path: ../notebooks/n{t}.py\n"
                ));
            }
        }
        std::fs::write(root.join(format!("resources/f{f}.yml")), yaml).expect("write file");
    }
    dir
}

/// `lakebundle -C dir ARGS` offline, with no workspace settings from the caller.
fn offline(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(Emulator::bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("DATABRICKS_") || k.starts_with("BUNDLE_VAR_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("NO_COLOR", "1")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("run lakebundle");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Five plain-file notebooks shared by many jobs: one warning per notebook,
/// with its count, the first five places and "and N more" (text, snapshotted).
#[test]
fn identical_warnings_group_into_one_with_count_and_places() {
    let dir = notebook_jobs_bundle(3, 4);
    let (code, stdout, stderr) = offline(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    insta::assert_snapshot!("grouped_notebook_warnings", stderr);
}

/// The same at scale, in text and JSON: 1,200 jobs × 5 tasks are 6,000
/// identical-but-for-place warnings in 5 groups, and stderr stays bounded;
/// `-o json` gives 5 entries with their counts and first places.
#[test]
fn thousands_of_identical_warnings_stay_bounded_in_text_and_json() {
    let dir = notebook_jobs_bundle(10, 120);
    let (code, stdout, stderr) = offline(dir.path(), &["validate"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.lines().count() < 100,
        "stderr is bounded: {} lines\n{stderr}",
        stderr.lines().count()
    );
    for n in 0..5 {
        let msg = format!("notebook_path \"../notebooks/n{n}.py\" is not a notebook");
        assert_eq!(stderr.matches(&msg).count(), 1, "{stderr}");
    }
    assert_eq!(
        stderr
            .matches("the same warning 1,200 times in all, also at:")
            .count(),
        5,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("    and 1,195 more\n").count(),
        5,
        "{stderr}"
    );

    // One error (a missing notebook) makes validate report every diagnostic.
    std::fs::write(
        dir.path().join("resources/broken.yml"),
        "resources:\n  jobs:\n    broken:\n      tasks:\n        - task_key: t\n          notebook_task:\n            notebook_path: ../notebooks/missing.py\n",
    )
    .expect("write");
    let (code, stdout, stderr) = offline(dir.path(), &["validate", "-o", "json"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let items = v["diagnostics"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 6, "{v}");
    let (errors, warnings): (Vec<Value>, Vec<Value>) =
        items.into_iter().partition(|d| d["severity"] == "error");
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["count"], 1, "{v}");
    assert!(errors[0].get("places").is_none(), "{v}");
    for d in &warnings {
        assert_eq!(d["count"], 1200, "{d}");
        assert_eq!(d["more"], 1195, "{d}");
        let places = d["places"].as_array().cloned().unwrap_or_default();
        assert_eq!(places.len(), 5, "{d}");
        assert_eq!(places[0]["file"], d["file"], "{d}");
        assert_eq!(places[0]["line"], d["line"], "{d}");
        assert!(places.iter().all(|p| p["file"]
            .as_str()
            .is_some_and(|f| f.starts_with("resources/f"))));
    }
}

/// A deploy of those jobs prints each grouped warning once.
#[test]
fn deploy_prints_grouped_warnings_once() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let dir = notebook_jobs_bundle(4, 25);
    let (code, out) = finish(deploy(&emu, &emu.url, dir.path()));
    assert_eq!(code, 0, "{out}");
    let stderr = out.split("--- stderr").nth(1).unwrap_or_default();
    assert_eq!(
        stderr.matches("the same warning 100 times in all").count(),
        5,
        "{out}"
    );
    // Progress lines are per resource; the warnings are five blocks.
    assert_eq!(stderr.matches("is not a notebook").count(), 5, "{stderr}");
}
