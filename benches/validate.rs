//! Benchmark: `lakebundle validate` on a generated bundle of 10,000 resources
//! across 100 included files, with references between them (instances,
//! catalogs, synced tables, jobs with 5 tasks, apps). Prints wall time and
//! peak RSS of the real binary, and the in-process `load` time.
//!
//! Targets: < 0.3 s wall and < 200 MB peak RSS.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const FILES: usize = 100;
/// Resources per file: 20 of each of the five kinds.
const PER_KIND: usize = 20;
const RUNS: usize = 7;

/// Write the bundle into `dir`; returns the number of resources.
fn generate(dir: &Path) -> usize {
    let root = "bundle:\n  name: bench\n\ninclude:\n  - resources/*.yml\n\nvariables:\n  env:\n    default: dev\n  capacity:\n    default: CU_1\n  storage:\n    type: complex\n    default:\n      storage_catalog: main\n      storage_schema: pipelines\n\ntargets:\n  dev:\n    default: true\n    mode: development\n  prod:\n    mode: production\n    workspace:\n      root_path: /Workspace/Shared/bench\n";
    std::fs::create_dir_all(dir.join("resources")).expect("mkdir");
    std::fs::write(dir.join("databricks.yml"), root).expect("write root");
    std::fs::create_dir_all(dir.join("app")).expect("mkdir app");
    std::fs::write(dir.join("app/app.py"), "print('hi')\n").expect("write app");
    let mut count = 0;
    for f in 0..FILES {
        let mut y = String::from("resources:\n  database_instances:\n");
        for i in 0..PER_KIND {
            let _ = write!(y, "    inst_{f}_{i}:\n      name: inst-{f}-{i}-${{var.env}}\n      capacity: ${{var.capacity}}\n      retention_window_in_days: 7\n      custom_tags:\n        - key: team\n          value: t{f}\n");
        }
        y.push_str("  database_catalogs:\n");
        for i in 0..PER_KIND {
            let _ = write!(y, "    cat_{f}_{i}:\n      name: cat_{f}_{i}\n      database_instance_name: ${{resources.database_instances.inst_{f}_{i}.name}}\n      database_name: db_{f}_{i}\n      create_database_if_not_exists: true\n");
        }
        y.push_str("  synced_database_tables:\n");
        for i in 0..PER_KIND {
            let _ = write!(y, "    sync_{f}_{i}:\n      name: ${{resources.database_catalogs.cat_{f}_{i}.name}}.public.t_{i}\n      database_instance_name: ${{resources.database_instances.inst_{f}_{i}.name}}\n      logical_database_name: ${{resources.database_catalogs.cat_{f}_{i}.database_name}}\n      spec:\n        source_table_full_name: main.src.t_{f}_{i}\n        scheduling_policy: TRIGGERED\n        primary_key_columns: [id]\n        new_pipeline_spec: ${{var.storage}}\n");
        }
        y.push_str("  jobs:\n");
        for i in 0..PER_KIND {
            let _ = write!(y, "    job_{f}_{i}:\n      name: job-{f}-{i}\n      schedule:\n        quartz_cron_expression: '0 0 * * * ?'\n        timezone_id: UTC\n      tasks:\n");
            for t in 0..5 {
                let _ = writeln!(y, "        - task_key: t{t}");
                if t == 0 {
                    let _ = write!(y, "          pipeline_task:\n            pipeline_id: ${{resources.synced_database_tables.sync_{f}_{i}.data_synchronization_status.pipeline_id}}\n");
                } else {
                    let _ = write!(y, "          depends_on:\n            - task_key: t{}\n          notebook_task:\n            notebook_path: /Workspace/nb/{f}/{i}/{t}\n", t - 1);
                }
            }
        }
        y.push_str("  apps:\n");
        for i in 0..PER_KIND {
            let _ = write!(y, "    app_{f}_{i}:\n      name: app-{f}-{i}\n      source_code_path: ../app\n      resources:\n        - name: db\n          database:\n            instance_name: ${{resources.database_instances.inst_{f}_{i}.name}}\n            database_name: ${{resources.database_catalogs.cat_{f}_{i}.database_name}}\n            permission: CAN_CONNECT_AND_CREATE\n");
        }
        std::fs::write(dir.join(format!("resources/part_{f:03}.yml")), y).expect("write part");
        count += PER_KIND * 5;
    }
    count
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("resources"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Peak RSS of finished children, in MB (getrusage reports KB on Linux).
fn children_peak_rss_mb() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc != 0 {
        return f64::NAN;
    }
    usage.ru_maxrss as f64 / 1024.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // VALIDATE_BENCH_DIR=<dir>: also write the bundle there, for profiling.
    if let Some(keep) = std::env::var_os("VALIDATE_BENCH_DIR") {
        generate(Path::new(&keep));
    }
    let n = generate(tmp.path());
    println!(
        "validate bench: {n} resources in {FILES} included files ({:.1} MB of YAML)",
        dir_bytes(tmp.path()) as f64 / 1e6
    );

    let bin = env!("CARGO_BIN_EXE_lakebundle");
    let mut walls = Vec::new();
    for run in 0..RUNS {
        let start = Instant::now();
        let out = Command::new(bin)
            .arg("-C")
            .arg(tmp.path())
            .args(["validate", "-o", "json"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run lakebundle");
        let wall = start.elapsed();
        if run == 0 {
            let ok = out.status.success();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let jobs = json["resources"]["jobs"]
                .as_object()
                .map(|m| m.len())
                .unwrap_or(0);
            println!("  first run: exit ok = {ok}, jobs in output = {jobs}");
            if !ok {
                eprintln!(
                    "{}",
                    // `-o json` prints the diagnostics on stdout.
                    String::from_utf8_lossy(&out.stdout)
                        .chars()
                        .take(2000)
                        .collect::<String>()
                );
            }
            // A bundle that does not validate would time the error path.
            assert!(ok, "the generated bundle must validate");
        }
        walls.push(wall);
    }
    let best = walls.iter().min().copied().unwrap_or_default();
    let med = median(walls);
    let rss = children_peak_rss_mb();
    println!("  binary `validate -o json`: median {:.3} s, best {:.3} s over {RUNS} runs (target < 0.3 s)", med.as_secs_f64(), best.as_secs_f64());
    println!("  binary peak RSS: {rss:.1} MB (target < 200 MB)");

    // In-process: the library's `load` alone (no process start, no JSON print).
    let opts = lakebundle::config::LoadOptions {
        dir: Some(tmp.path().to_path_buf()),
        ..Default::default()
    };
    let mut loads = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let loaded = lakebundle::config::load(&opts);
        loads.push(start.elapsed());
        assert!(loaded.bundle.is_some(), "generated bundle must load");
    }
    println!(
        "  library load(): median {:.3} s",
        median(loads).as_secs_f64()
    );
}
