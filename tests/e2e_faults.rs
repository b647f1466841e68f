//! End-to-end reliability: the real binary against a faulty or killed run.
//!
//! 5. with injected 429/503s and lost responses, deploy converges without a
//!    duplicate resource;
//! 6. `kill -9` of the deploy at 10 seeded random moments: each next deploy
//!    converges, the state parses, and nothing is orphaned;
//! 7. a 60-resource bundle with synced files converges in ONE deploy under
//!    injected faults (file sync retries its idempotent calls).

mod common;
mod e2e_support;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Emulator;
use e2e_support::{names, run, spawn, Api, Run, TestBundle};
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// Deploy until it succeeds (a run may fail on a fault the client cannot
/// retry safely; the next run resumes). Returns the successful run.
fn deploy_until_ok(emu: &Emulator, b: &TestBundle, attempts: usize) -> Run {
    let mut last = None;
    for i in 0..attempts {
        // A run that died may leave its lock behind: later attempts take it over.
        let args: &[&str] = if i == 0 {
            &["deploy", "--auto-approve"]
        } else {
            &["deploy", "--auto-approve", "--force-lock"]
        };
        let out = run(emu, b, args);
        if out.code == 0 {
            return out;
        }
        last = Some(out);
    }
    let out = last.expect("at least one attempt");
    panic!(
        "deploy did not converge in {attempts} attempts\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout, out.stderr
    );
}

/// Every deployed object the workspace holds, as `kind:name-or-id`.
fn remote_inventory(api: &Api) -> BTreeSet<String> {
    let mut inv = BTreeSet::new();
    for i in api.instances() {
        inv.insert(format!(
            "database_instances:{}",
            i["name"].as_str().unwrap_or("")
        ));
    }
    for j in api.jobs() {
        inv.insert(format!("jobs:{}", j["job_id"]));
    }
    for a in api.apps() {
        inv.insert(format!("apps:{}", a["name"].as_str().unwrap_or("")));
    }
    if api.catalog("my_catalog").is_some() {
        inv.insert("database_catalogs:my_catalog".into());
    }
    let table = "my_catalog.my_database.customer_features";
    if api.synced_table(table).is_some() {
        inv.insert(format!("synced_database_tables:{table}"));
    }
    inv
}

/// The same inventory from state.
fn state_inventory(state: &Value) -> BTreeSet<String> {
    state["state"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(addr, rs)| {
                    let mut parts = addr.strip_prefix("resources.")?.split('.');
                    let kind = parts.next()?;
                    // `.permissions` entries are not objects of their own.
                    if parts.nth(1).is_some() {
                        return None;
                    }
                    Some(format!("{kind}:{}", rs["__id__"].as_str()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_single_copies(api: &Api) {
    assert_eq!(names(&api.instances()), ["my-instance"], "one instance");
    assert_eq!(names(&api.jobs()), ["sync-pipeline-schedule"], "one job");
    assert_eq!(names(&api.apps()), ["my-lakebase-app"], "one app");
    assert!(api.catalog("my_catalog").is_some());
    assert!(api
        .synced_table("my_catalog.my_database.customer_features")
        .is_some());
}

#[test]
fn deploy_converges_under_faults_without_duplicates() {
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--instance-ready-ms",
        "100",
        "--fail-rate",
        "0.2",
        "--lost-response-rate",
        "0.1",
        "--seed",
        "11",
    ]);
    let api = Api::new(&emu);
    let b = TestBundle::production();
    deploy_until_ok(&emu, &b, 8);
    assert_single_copies(&api);
    assert_eq!(
        remote_inventory(&api),
        state_inventory(&b.state()),
        "state matches the workspace"
    );
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.code, 0,
        "converged: no changes\n{}\n{}",
        out.stdout, out.stderr
    );
}

#[test]
fn kill_dash_nine_at_random_moments_never_orphans() {
    let emu = Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "300"]);
    let api = Api::new(&emu);
    let b = TestBundle::production();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4242);
    for round in 0..10 {
        let delay = rng.random_range(0..1500u64);
        let mut child = spawn(&emu, &b, &["deploy", "--auto-approve", "--force-lock"]);
        std::thread::sleep(Duration::from_millis(delay));
        // SIGKILL: no cleanup of any kind runs.
        let _ = child.kill();
        let _ = child.wait();

        // Whatever the moment, the local state still parses.
        let state_file = b
            .root
            .join(".lakebundle")
            .join(e2e_support::TARGET)
            .join("resources.json");
        if state_file.exists() {
            let _ = b.state();
        }
        let converged = run(&emu, &b, &["deploy", "--auto-approve", "--force-lock"]);
        assert_eq!(
            converged.code, 0,
            "round {round} (killed after {delay} ms): the next deploy converges\n{}\n{}",
            converged.stdout, converged.stderr
        );
        assert_single_copies(&api);
        assert_eq!(
            remote_inventory(&api),
            state_inventory(&b.state()),
            "round {round} (killed after {delay} ms): nothing orphaned"
        );
        run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
        // Start the next round from nothing so the killed run has real work.
        run(&emu, &b, &["destroy", "--auto-approve", "--force-lock"]).expect(0);
        assert!(
            remote_inventory(&api).is_empty(),
            "round {round}: destroy left {:?}",
            remote_inventory(&api)
        );
    }
}

/// A bundle of `jobs` jobs running synced files (Python files spread over
/// several directories, and a notebook every tenth job) and `instances`
/// database instances.
fn synced_files_bundle(jobs: usize, instances: usize) -> TestBundle {
    let b = TestBundle::production();
    let write = |rel: &str, text: &str| {
        let path = b.root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write bundle file");
    };
    let mut yaml = String::from("bundle:\n  name: many-files\n\nresources:\n  jobs:\n");
    for i in 0..jobs {
        let dir = format!("src/pkg{}/sub{}", i % 5, i % 3);
        write(&format!("{dir}/job_{i}.py"), &format!("print({i})\n"));
        yaml.push_str(&format!(
            "    job_{i}:\n      name: files-job-{i}\n      tasks:\n        - task_key: main\n          spark_python_task:\n            python_file: ./{dir}/job_{i}.py\n"
        ));
        if i % 10 == 0 {
            write(
                &format!("notebooks/nb_{i}.py"),
                &format!("# Databricks notebook source\nprint({i})\n"),
            );
            yaml.push_str(&format!(
                "        - task_key: report\n          depends_on:\n            - task_key: main\n          notebook_task:\n            notebook_path: ./notebooks/nb_{i}.py\n"
            ));
        }
    }
    yaml.push_str("  database_instances:\n");
    for i in 0..instances {
        yaml.push_str(&format!(
            "    db_{i}:\n      name: files-db-{i}\n      capacity: CU_1\n"
        ));
    }
    yaml.push_str("\ntargets:\n  prod:\n    default: true\n");
    write("databricks.yml", &yaml);
    b
}

#[test]
fn sixty_resources_with_synced_files_converge_in_one_deploy_under_faults() {
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--instance-ready-ms",
        "100",
        "--fail-rate",
        "0.2",
        "--lost-response-rate",
        "0.1",
        "--seed",
        "14",
    ]);
    let api = Api::new(&emu);
    let (jobs, instances) = (50, 10);
    let b = synced_files_bundle(jobs, instances);
    // ONE deploy: every transient fault is retried or resolved by adoption.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(out.stderr.contains("Files: "), "{}", out.stderr);

    // Exactly one of each: no lost create became a duplicate.
    let job_names = names(&api.jobs());
    let want_jobs: BTreeSet<String> = (0..jobs).map(|i| format!("files-job-{i}")).collect();
    assert_eq!(job_names.len(), jobs, "one job each: {job_names:?}");
    assert_eq!(job_names.into_iter().collect::<BTreeSet<_>>(), want_jobs);
    let inst_names = names(&api.instances());
    assert_eq!(
        inst_names.len(),
        instances,
        "one instance each: {inst_names:?}"
    );
    assert_eq!(
        remote_inventory(&api),
        state_inventory(&b.state()),
        "state matches the workspace"
    );

    // Every job's files arrived where its tasks point.
    for j in api.jobs() {
        let job = api
            .get("/api/2.2/jobs/get", &[("job_id", j["job_id"].to_string())])
            .expect("job exists");
        for task in job["settings"]["tasks"].as_array().expect("tasks") {
            let path = task["spark_python_task"]["python_file"]
                .as_str()
                .or_else(|| task["notebook_task"]["notebook_path"].as_str())
                .expect("a synced path");
            let status = api.get(
                "/api/2.0/workspace/get-status",
                &[("path", path.to_string())],
            );
            assert!(status.is_some(), "{path} was uploaded");
        }
    }

    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.code, 0,
        "converged: no changes\n{}\n{}",
        out.stdout, out.stderr
    );
}
