//! Engine benchmark: the release binary against an emulator with 20 ms of
//! latency per request (records-only instances, instances ready at once).
//!
//! Generates a 500-resource bundle (10 instances, 90 catalogs, 50 synced
//! tables, 300 jobs of 5 tasks, 50 apps; the longest dependency chain is
//! instance → catalog → synced table → job) and reports:
//! - `validate` (no workspace), the yardstick for our own CPU time;
//! - deploy wall time at `--parallelism` 10 and 32 against the
//!   dependency-bound ideal: max(critical path × latency, ops × latency /
//!   parallelism), counting one remote operation per resource;
//! - a no-op plan at `--parallelism` 32 against its request-bound ideal,
//!   (2 sequential calls + ceil(reads / 32)) × latency (target ≤ 1.3×);
//! - `plan --refresh=false`: what it costs beyond its 2 sequential calls,
//!   as a multiple of `validate` (target ≤ 3×).
//!
//! Run: `cargo bench --bench engine`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LATENCY_MS: u64 = 20;
const INSTANCES: usize = 10;
const CATALOGS_PER_INSTANCE: usize = 9;
const TABLES: usize = 50;
const TASKS_PER_JOB: usize = 5;
/// Calls every workspace command makes one after the other before its
/// concurrent work: the current user, then the state.
const SEQUENTIAL_CALLS: usize = 2;
const JOBS: usize = 300;
const APPS: usize = 50;
/// Resources on the longest dependency chain.
const CRITICAL_PATH: usize = 4;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lakebundle"))
}

struct Emu {
    child: Child,
    url: String,
    data_dir: PathBuf,
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new(bin())
            .args(["emulator", "down", "--data-dir"])
            .arg(&self.data_dir)
            .output();
    }
}

/// Source tables of the synced tables (`<lake>/lake/src/table_N.csv`).
fn write_lake(lake: &Path) {
    let dir = lake.join("lake").join("src");
    std::fs::create_dir_all(&dir).expect("lake dir");
    for t in 0..TABLES {
        std::fs::write(dir.join(format!("table_{t}.csv")), "id,v\n1,a\n2,b\n")
            .expect("source table");
    }
}

fn start_emulator(data_dir: &Path, lake: &Path) -> Emu {
    let mut child = Command::new(bin())
        .args([
            "emulator",
            "serve",
            "--port",
            "0",
            "--no-postgres",
            "--token",
            "bench-token",
        ])
        .args([
            "--latency-ms",
            &LATENCY_MS.to_string(),
            "--instance-ready-ms",
            "0",
            "--transition-ms",
            "0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--lake-dir")
        .arg(lake)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the emulator");
    let stdout = child.stdout.take().expect("emulator stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    std::thread::spawn(move || for _ in lines {});
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected emulator output: {first}"))
        .trim()
        .to_string();
    Emu {
        child,
        url,
        data_dir: data_dir.to_path_buf(),
    }
}

/// The generated bundle's YAML.
fn bundle_yaml() -> String {
    let mut y =
        String::from("bundle:\n  name: engine-bench\n\nresources:\n  database_instances:\n");
    for i in 0..INSTANCES {
        y.push_str(&format!(
            "    inst{i}:\n      name: bench-inst-{i}\n      capacity: CU_1\n"
        ));
    }
    y.push_str("  database_catalogs:\n");
    for i in 0..INSTANCES {
        for c in 0..CATALOGS_PER_INSTANCE {
            y.push_str(&format!(
                "    cat{i}_{c}:\n      name: bench_cat_{i}_{c}\n      database_instance_name: ${{resources.database_instances.inst{i}.name}}\n      database_name: db_{i}_{c}\n      create_database_if_not_exists: true\n"
            ));
        }
    }
    y.push_str("  synced_database_tables:\n");
    let catalogs = INSTANCES * CATALOGS_PER_INSTANCE;
    for t in 0..TABLES {
        let cat = t % catalogs;
        let (i, c) = (cat / CATALOGS_PER_INSTANCE, cat % CATALOGS_PER_INSTANCE);
        y.push_str(&format!(
            "    tbl{t}:\n      name: ${{resources.database_catalogs.cat{i}_{c}.name}}.public.table_{t}\n      database_instance_name: ${{resources.database_instances.inst{i}.name}}\n      logical_database_name: db_{i}_{c}\n      spec:\n        source_table_full_name: lake.src.table_{t}\n        scheduling_policy: SNAPSHOT\n        primary_key_columns: [id]\n        new_pipeline_spec:\n          storage_catalog: lake\n          storage_schema: pipelines\n"
        ));
    }
    y.push_str("  jobs:\n");
    for j in 0..JOBS {
        y.push_str(&format!(
            "    job{j}:\n      name: bench-job-{j}\n      tasks:\n"
        ));
        for t in 0..TASKS_PER_JOB {
            let depends = if t == 0 {
                String::new()
            } else {
                format!(
                    "          depends_on:\n            - task_key: t{}\n",
                    t - 1
                )
            };
            let body = if t == 0 && j < TABLES {
                format!("          pipeline_task:\n            pipeline_id: ${{resources.synced_database_tables.tbl{j}.data_synchronization_status.pipeline_id}}\n")
            } else {
                format!("          notebook_task:\n            notebook_path: /Shared/bench/notebook_{t}\n")
            };
            y.push_str(&format!("        - task_key: t{t}\n{depends}{body}"));
        }
    }
    y.push_str("  apps:\n");
    for a in 0..APPS {
        let i = a % INSTANCES;
        y.push_str(&format!(
            "    app{a}:\n      name: bench-app-{a}\n      description: benchmark app {a}\n      source_code_path: ./app\n      resources:\n        - name: db\n          database:\n            instance_name: ${{resources.database_instances.inst{i}.name}}\n            database_name: databricks_postgres\n            permission: CAN_CONNECT_AND_CREATE\n"
        ));
    }
    y
}

fn lakebundle(emu: &Emu, root: &Path, args: &[&str]) -> (Duration, bool, String) {
    let started = Instant::now();
    let out = Command::new(bin())
        .arg("-C")
        .arg(root)
        .args(args)
        .env("DATABRICKS_HOST", &emu.url)
        .env("DATABRICKS_TOKEN", "bench-token")
        .env(
            "DATABRICKS_CONFIG_FILE",
            emu.data_dir.join("no-databrickscfg"),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run lakebundle");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (elapsed, out.status.success(), stderr)
}

fn resources() -> usize {
    INSTANCES + INSTANCES * CATALOGS_PER_INSTANCE + TABLES + JOBS + APPS
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    let latency = LATENCY_MS as f64 / 1000.0;
    let n = resources();
    println!("engine bench: {n} resources, {LATENCY_MS} ms latency per request, critical path {CRITICAL_PATH} resources");
    let mut last: Option<(tempfile::TempDir, Emu, PathBuf)> = None;
    for parallelism in [10usize, 32] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("bundle");
        std::fs::create_dir_all(&root).expect("bundle dir");
        std::fs::write(root.join("databricks.yml"), bundle_yaml()).expect("write bundle");
        std::fs::create_dir_all(root.join("app")).expect("app dir");
        std::fs::write(root.join("app").join("app.py"), "print('bench')\n").expect("app code");
        let lake = dir.path().join("lake-dir");
        write_lake(&lake);
        let emu = start_emulator(&dir.path().join("emu"), &lake);
        let p = parallelism.to_string();
        let (wall, ok, stderr) = lakebundle(
            &emu,
            &root,
            &["deploy", "--auto-approve", "--parallelism", &p],
        );
        if !ok {
            eprintln!("deploy failed:\n{stderr}");
            std::process::exit(1);
        }
        let ideal = (CRITICAL_PATH as f64 * latency).max(n as f64 * latency / parallelism as f64);
        println!(
            "deploy  --parallelism {parallelism:>2}: {:>6.2} s   ideal {:>5.2} s   ratio {:>5.2}x",
            secs(wall),
            ideal,
            secs(wall) / ideal
        );
        last = Some((dir, emu, root));
    }
    let Some((_dir, emu, root)) = last else {
        return;
    };

    let best_of = |args: &[&str], what: &str| {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let (wall, ok, stderr) = lakebundle(&emu, &root, args);
            if !ok {
                eprintln!("{what} failed or reported changes:\n{stderr}");
                std::process::exit(1);
            }
            best = best.min(wall);
        }
        best
    };

    let validate = best_of(&["validate", "-o", "json"], "validate");
    println!("validate: {:>6.3} s", secs(validate));

    // No-op plan: one read per resource after the sequential calls.
    let noop = best_of(
        &["plan", "--detailed-exitcode", "--parallelism", "32"],
        "no-op plan",
    );
    let rounds = n.div_ceil(32);
    let ideal = (SEQUENTIAL_CALLS + rounds) as f64 * latency;
    println!(
        "no-op plan (parallelism 32): {:>6.3} s   ideal {:>5.3} s   ratio {:>5.2}x (target <= 1.30x)",
        secs(noop),
        ideal,
        secs(noop) / ideal
    );

    let offline = best_of(&["plan", "--refresh=false"], "plan --refresh=false");
    let own = secs(offline) - SEQUENTIAL_CALLS as f64 * latency;
    println!(
        "plan --refresh=false: {:>6.3} s = {} sequential calls ({:.3} s) + {:.3} s own = {:.2}x validate (target <= 3x)",
        secs(offline),
        SEQUENTIAL_CALLS,
        SEQUENTIAL_CALLS as f64 * latency,
        own,
        own / secs(validate)
    );
}
