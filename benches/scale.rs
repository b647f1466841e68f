//! Scale benchmark (issue 15): the release binary on the issue's
//! 10,000-resource mix (10 instances, 1,990 catalogs, 1,000 synced tables,
//! 6,000 jobs of 5 tasks, 1,000 apps, in 100 files) against an emulator with
//! 5 ms of latency per request, at `--parallelism` 64.
//!
//! For the full size and for a tenth of it (to show how each command scales)
//! it reports, per command, wall time and peak RSS (the child's own
//! `ru_maxrss`, read with `wait4`):
//! - `deploy` from nothing: stderr lines, request and state-upload bytes
//!   (through a recording proxy), and the ratio to its dependency-bound ideal
//!   max(critical path × latency, resources × latency / parallelism);
//! - a no-op `plan` against its request-bound ideal
//!   (2 sequential calls + ceil(resources / 64)) × latency (target ≤ 1.3×),
//!   beside the same reads from a bare HTTP client that only takes the bodies
//!   (what the emulator and the machine allow before any parsing or planning);
//! - `plan --refresh=false` and `validate`;
//! - `destroy`, which must leave an empty state.
//!
//! Run: `cargo bench --bench scale` (`SCALE_TENTHS=1..10` picks the largest
//! size in tenths of 10,000; default 10).

#[path = "../tests/common/proxy.rs"]
mod proxy;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LATENCY_MS: u64 = 5;
const PARALLELISM: usize = 64;
/// Per tenth of the full mix (the full mix is ten of these); everything in a
/// tenth uses its one instance.
const INSTANCES: usize = 1;
const _: () = assert!(INSTANCES == 1);
const CATALOGS: usize = 199;
const TABLES: usize = 100;
const JOBS: usize = 600;
const APPS: usize = 100;
const TASKS_PER_JOB: usize = 5;
/// YAML files per tenth.
const FILES: usize = 10;
/// Calls every workspace command makes one after the other before its
/// concurrent work: the current user, then the state.
const SEQUENTIAL_CALLS: usize = 2;
/// instance → catalog → synced table → job.
const CRITICAL_PATH: usize = 4;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lakebundle"))
}

struct Emu {
    child: std::process::Child,
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

fn start_emulator(data_dir: &Path, lake: &Path) -> Emu {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin())
        .args([
            "emulator",
            "serve",
            "--port",
            "0",
            "--no-postgres",
            "--token",
            "bench-token",
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

/// `tenths` tenths of the mix: the root file and `tenths × FILES` resource files.
fn write_bundle(root: &Path, lake: &Path, tenths: usize) -> usize {
    std::fs::create_dir_all(root.join("resources")).expect("bundle dir");
    std::fs::create_dir_all(root.join("app")).expect("app dir");
    std::fs::write(root.join("app").join("app.py"), "print('bench')\n").expect("app code");
    std::fs::write(
        root.join("databricks.yml"),
        "bundle:\n  name: scale-bench\ninclude:\n  - resources/*.yml\n",
    )
    .expect("write bundle");
    let src = lake.join("lake").join("src");
    std::fs::create_dir_all(&src).expect("lake dir");
    // Per file, per kind (in order of first use), the resources' YAML.
    let mut files: Vec<Vec<(&'static str, String)>> = vec![Vec::new(); tenths * FILES];
    let mut n = 0;
    // Each kind is spread round-robin over the files of its tenth.
    let mut put = |tenth: usize, i: usize, kind: &'static str, text: String| {
        let f = &mut files[tenth * FILES + i % FILES];
        match f.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, body)) => body.push_str(&text),
            None => f.push((kind, text)),
        }
    };
    for s in 0..tenths {
        for i in 0..INSTANCES {
            let inst = s * INSTANCES + i;
            put(
                s,
                i,
                "database_instances",
                format!("    inst{inst}:\n      name: scale-inst-{inst}\n      capacity: CU_1\n"),
            );
            n += 1;
        }
        for c in 0..CATALOGS {
            let inst = s; // the tenth's instance
            put(s, c, "database_catalogs", format!(
                "    cat{s}_{c}:\n      name: scale_cat_{s}_{c}\n      database_instance_name: ${{resources.database_instances.inst{inst}.name}}\n      database_name: db_{s}_{c}\n      create_database_if_not_exists: true\n"
            ));
            n += 1;
        }
        for t in 0..TABLES {
            let c = t % CATALOGS;
            let inst = s; // the tenth's instance
            std::fs::write(src.join(format!("table_{s}_{t}.csv")), "id,v\n1,a\n2,b\n")
                .expect("source table");
            put(s, t, "synced_database_tables", format!(
                "    tbl{s}_{t}:\n      name: ${{resources.database_catalogs.cat{s}_{c}.name}}.public.table_{t}\n      database_instance_name: ${{resources.database_instances.inst{inst}.name}}\n      logical_database_name: db_{s}_{c}\n      spec:\n        source_table_full_name: lake.src.table_{s}_{t}\n        scheduling_policy: SNAPSHOT\n        primary_key_columns: [id]\n        new_pipeline_spec:\n          storage_catalog: lake\n          storage_schema: pipelines\n"
            ));
            n += 1;
        }
        for j in 0..JOBS {
            let mut y = format!("    job{s}_{j}:\n      name: scale-job-{s}-{j}\n      tasks:\n");
            for t in 0..TASKS_PER_JOB {
                if t > 0 {
                    y.push_str(&format!(
                        "        - task_key: t{t}\n          depends_on:\n            - task_key: t{}\n",
                        t - 1
                    ));
                } else {
                    y.push_str("        - task_key: t0\n");
                }
                if t == 0 && j < TABLES {
                    y.push_str(&format!("          pipeline_task:\n            pipeline_id: ${{resources.synced_database_tables.tbl{s}_{j}.data_synchronization_status.pipeline_id}}\n"));
                } else {
                    y.push_str(&format!(
                        "          notebook_task:\n            notebook_path: /Shared/bench/notebook_{t}\n"
                    ));
                }
            }
            put(s, j, "jobs", y);
            n += 1;
        }
        for a in 0..APPS {
            let inst = s;
            put(s, a, "apps", format!(
                "    app{s}_{a}:\n      name: scale-app-{s}-{a}\n      description: scale app {a}\n      source_code_path: ../app\n      resources:\n        - name: db\n          database:\n            instance_name: ${{resources.database_instances.inst{inst}.name}}\n            database_name: databricks_postgres\n            permission: CAN_CONNECT_AND_CREATE\n"
            ));
            n += 1;
        }
    }
    for (i, kinds) in files.iter().enumerate() {
        let mut text = String::from("resources:\n");
        for (kind, body) in kinds {
            text.push_str(&format!("  {kind}:\n{body}"));
        }
        std::fs::write(root.join(format!("resources/r{i:03}.yml")), text).expect("write file");
    }
    n
}

/// One finished command: wall time, peak RSS, exit code, stderr.
struct Run {
    wall: Duration,
    max_rss_kb: i64,
    code: i32,
    stderr: String,
}

impl Run {
    fn rss_mb(&self) -> f64 {
        self.max_rss_kb as f64 / 1024.0
    }
}

/// Run the binary and reap it with `wait4`, for its own peak RSS.
fn lakebundle(host: &str, emu: &Emu, root: &Path, args: &[&str]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .arg("-C")
        .arg(root)
        .args(args)
        .env("DATABRICKS_HOST", host)
        .env("DATABRICKS_TOKEN", "bench-token")
        .env(
            "DATABRICKS_CONFIG_FILE",
            emu.data_dir.join("no-databrickscfg"),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lakebundle");
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; both out-pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(r, pid, "wait4 failed: {}", std::io::Error::last_os_error());
    let stderr = reader.join().unwrap_or_default();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // Already reaped: dropping the handle must not wait again.
    std::mem::forget(child);
    Run {
        wall,
        max_rss_kb: usage.ru_maxrss,
        code,
        stderr,
    }
}

fn must(run: Run, what: &str, codes: &[i32]) -> Run {
    if !codes.contains(&run.code) {
        let tail: Vec<&str> = run.stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        // A panic (not `exit`) so the emulator is stopped on the way out.
        panic!("{what} exited {}:\n{}", run.code, tail.join("\n"));
    }
    run
}

/// Best of `times` runs (peak RSS of the best one).
fn best_of(times: usize, f: impl Fn() -> Run) -> Run {
    let mut best: Option<Run> = None;
    for _ in 0..times {
        let r = f();
        if best.as_ref().is_none_or(|b| r.wall < b.wall) {
            best = Some(r);
        }
    }
    best.expect("at least one run")
}

/// The no-op plan's reads (one GET per resource of the state, as many at a
/// time) from a bare HTTP client that only takes the bodies: what the emulator
/// and this machine allow before anything is parsed or planned. Returns the
/// best of three, and the median of 200 GETs one after the other (what one
/// request really takes at the emulator's latency).
fn reads_alone(url: &str, root: &Path) -> (Duration, Duration) {
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join(".lakebundle/default/resources.json")).expect("read the state"),
    )
    .expect("parse the state");
    // The read endpoints of the mix's five kinds (reference REST tables).
    let urls: Vec<String> = state["state"]
        .as_object()
        .expect("state entries")
        .iter()
        .map(|(addr, entry)| {
            let id = entry["__id__"].as_str().expect("an id");
            let path = match addr.split('.').nth(1) {
                Some("database_instances") => format!("api/2.0/database/instances/{id}"),
                Some("database_catalogs") => format!("api/2.0/database/catalogs/{id}"),
                Some("synced_database_tables") => format!("api/2.0/database/synced_tables/{id}"),
                Some("apps") => format!("api/2.0/apps/{id}"),
                Some("jobs") => format!("api/2.2/jobs/get?job_id={id}"),
                other => panic!("no read endpoint for {other:?}"),
            };
            format!("{url}/{path}")
        })
        .collect();
    // As many worker threads as the binary's runtime has on this machine.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest");
    let get = |u: String| {
        let client = client.clone();
        async move {
            let resp = client
                .get(&u)
                .bearer_auth("bench-token")
                .send()
                .await
                .expect("GET");
            assert!(resp.status().is_success(), "{u}: {}", resp.status());
            resp.bytes().await.expect("body").len()
        }
    };
    let mut one_by_one: Vec<Duration> = rt.block_on(async {
        let mut took = Vec::new();
        for u in urls.iter().take(200) {
            let started = Instant::now();
            get(u.clone()).await;
            took.push(started.elapsed());
        }
        took
    });
    one_by_one.sort();
    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            rt.block_on(async {
                use futures::StreamExt;
                futures::stream::iter(urls.iter().cloned())
                    .map(get)
                    .buffer_unordered(PARALLELISM)
                    .for_each(|_| async {})
                    .await
            });
            started.elapsed()
        })
        .min()
        .expect("three runs");
    (best, one_by_one[one_by_one.len() / 2])
}

struct Figures {
    n: usize,
    validate: Run,
    offline: Run,
    noop: Run,
}

fn size(tenths: usize, rt: &tokio::runtime::Runtime) -> Figures {
    let latency = LATENCY_MS as f64 / 1000.0;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("bundle");
    let lake = dir.path().join("lake-dir");
    let n = write_bundle(&root, &lake, tenths);
    let emu = start_emulator(&dir.path().join("emu"), &lake);
    let proxy = rt.block_on(proxy::CountingProxy::start(emu.url.clone()));
    let p = PARALLELISM.to_string();
    println!("--- {n} resources in {} files", tenths * FILES + 1);

    let deploy = must(
        lakebundle(
            &proxy.url,
            &emu,
            &root,
            &["deploy", "--auto-approve", "--parallelism", &p],
        ),
        "deploy",
        &[0],
    );
    let seen = proxy.seen();
    let bytes: usize = seen.iter().map(|(_, b)| b).sum();
    let (uploads, state_bytes) = seen
        .iter()
        .filter(|(l, _)| {
            l.starts_with("POST /api/2.0/workspace-files/import-file/")
                && l.ends_with("/state/resources.json")
        })
        .fold((0, 0), |(k, b), (_, len)| (k + 1, b + len));
    let state_size = std::fs::metadata(root.join(".lakebundle/default/resources.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    let ideal = (CRITICAL_PATH as f64 * latency).max(n as f64 * latency / PARALLELISM as f64);
    println!(
        "deploy @{PARALLELISM}: {:>7.2} s  ideal {:>5.2} s  ratio {:>5.2}x  peak RSS {:>6.1} MB  \
         {} requests, {:.1} MB sent; state {:.1} MB ({} B/resource), uploaded {uploads}x = {:.1} MB; \
         stderr {} lines",
        deploy.wall.as_secs_f64(),
        ideal,
        deploy.wall.as_secs_f64() / ideal,
        deploy.rss_mb(),
        seen.len(),
        bytes as f64 / 1e6,
        state_size as f64 / 1e6,
        state_size / n as u64,
        state_bytes as f64 / 1e6,
        deploy.stderr.lines().count(),
    );

    // The rest talks to the emulator directly (no proxy hop).
    let noop = best_of(3, || {
        must(
            lakebundle(
                &emu.url,
                &emu,
                &root,
                &["plan", "--detailed-exitcode", "--parallelism", &p],
            ),
            "no-op plan (exit 2 = changes)",
            &[0],
        )
    });
    let ideal = (SEQUENTIAL_CALLS + n.div_ceil(PARALLELISM)) as f64 * latency;
    println!(
        "no-op plan @{PARALLELISM}: {:>7.3} s  ideal {:>5.3} s  ratio {:>5.2}x (target <= 1.30x)  peak RSS {:>6.1} MB",
        noop.wall.as_secs_f64(),
        ideal,
        noop.wall.as_secs_f64() / ideal,
        noop.rss_mb()
    );
    let (alone, one) = reads_alone(&emu.url, &root);
    println!(
        "  its {n} reads alone from a bare client @{PARALLELISM}: {:>7.3} s = {:.2}x the ideal \
         (one GET at a time: median {:.2} ms at {LATENCY_MS} ms of latency)",
        alone.as_secs_f64(),
        alone.as_secs_f64() / ideal,
        one.as_secs_f64() * 1e3,
    );
    let offline = best_of(3, || {
        must(
            lakebundle(
                &emu.url,
                &emu,
                &root,
                &["plan", "--refresh=false", "--detailed-exitcode"],
            ),
            "plan --refresh=false",
            &[0],
        )
    });
    let validate = best_of(3, || {
        must(
            lakebundle(&emu.url, &emu, &root, &["validate", "-o", "json"]),
            "validate",
            &[0],
        )
    });
    let own = offline.wall.as_secs_f64() - SEQUENTIAL_CALLS as f64 * latency;
    println!(
        "plan --refresh=false: {:>7.3} s  ({:.3} s beyond its sequential calls = {:.2}x validate)  peak RSS {:>6.1} MB",
        offline.wall.as_secs_f64(),
        own,
        own / validate.wall.as_secs_f64(),
        offline.rss_mb()
    );
    println!(
        "validate: {:>7.3} s  peak RSS {:>6.1} MB",
        validate.wall.as_secs_f64(),
        validate.rss_mb()
    );

    let destroy = must(
        lakebundle(&emu.url, &emu, &root, &["destroy", "--auto-approve"]),
        "destroy",
        &[0],
    );
    let left = std::fs::read(root.join(".lakebundle/default/resources.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["resources"].as_object().map(|m| m.len()))
        .unwrap_or(0);
    println!(
        "destroy: {:>7.2} s  peak RSS {:>6.1} MB  resources left in state: {left}",
        destroy.wall.as_secs_f64(),
        destroy.rss_mb()
    );
    assert_eq!(left, 0, "destroy left {left} resources in state");
    Figures {
        n,
        validate,
        offline,
        noop,
    }
}

fn main() {
    let tenths: usize = std::env::var("SCALE_TENTHS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|t| (1..=10).contains(t))
        .unwrap_or(10);
    println!(
        "scale bench: {LATENCY_MS} ms latency per request, --parallelism {PARALLELISM}, critical path {CRITICAL_PATH}"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let small = size(1, &rt);
    if tenths == 1 {
        return;
    }
    let big = size(tenths, &rt);
    // Linear scaling: time per resource at the large size over the small one.
    let per = |r: &Run, n: usize| r.wall.as_secs_f64() / n as f64;
    let latency = LATENCY_MS as f64 / 1000.0;
    let own = |r: &Run| r.wall.as_secs_f64() - SEQUENTIAL_CALLS as f64 * latency;
    println!(
        "scaling {} -> {} resources (time per resource, large / small; 1.00 = linear): \
         validate {:.2}, plan --refresh=false {:.2}, no-op plan {:.2}",
        small.n,
        big.n,
        per(&big.validate, big.n) / per(&small.validate, small.n),
        (own(&big.offline) / big.n as f64) / (own(&small.offline) / small.n as f64),
        per(&big.noop, big.n) / per(&small.noop, small.n),
    );
}
