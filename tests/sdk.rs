//! The official Python SDK (`databricks-sdk`, pinned in tests/sdk/requirements.txt) against
//! a fresh emulator per scenario. The venv lives at tests/sdk/.venv (created on first use,
//! reused afterwards). Without python3 or PyPI access the tests print why and skip.

mod common;
mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use common::Emulator;

const CLIENT_ID: &str = "4f0c7c3e-sdk-sp";
const CLIENT_SECRET: &str = "sdk-m2m-secret";

fn sdk_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk"))
}

fn venv_python() -> PathBuf {
    sdk_dir().join(".venv/bin/python")
}

fn sdk_importable(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import databricks.sdk.service.database, psycopg2"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The venv's python, creating the venv once per test process; `None` = skip.
fn python() -> Option<PathBuf> {
    static READY: OnceLock<Option<PathBuf>> = OnceLock::new();
    static SETUP: Mutex<()> = Mutex::new(());
    READY
        .get_or_init(|| {
            let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
            let py = venv_python();
            if sdk_importable(&py) {
                return Some(py);
            }
            let venv = sdk_dir().join(".venv");
            let made = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status();
            if !made.is_ok_and(|s| s.success()) {
                common::prereq::skip(
                    &format!("cannot create a Python venv at {}", venv.display()),
                    "apt-get install python3-venv",
                );
                return None;
            }
            let pip = Command::new(&py)
                .args(["-m", "pip", "install", "-q", "-r"])
                .arg(sdk_dir().join("requirements.txt"))
                .output();
            match pip {
                Ok(o) if o.status.success() && sdk_importable(&py) => Some(py),
                Ok(o) => {
                    common::prereq::skip(
                        &format!(
                            "pip could not install databricks-sdk (no PyPI access?): {}",
                            String::from_utf8_lossy(&o.stderr)
                                .lines()
                                .last()
                                .unwrap_or_default()
                        ),
                        "tests/sdk/.venv/bin/pip install -r tests/sdk/requirements.txt",
                    );
                    None
                }
                Err(e) => {
                    common::prereq::skip(
                        &format!("cannot run pip: {e}"),
                        "apt-get install python3-venv python3-pip",
                    );
                    None
                }
            }
        })
        .clone()
}

fn postgres_installed() -> bool {
    Command::new("sh")
        .args([
            "-c",
            "command -v initdb || ls /usr/lib/postgresql/*/bin/initdb",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run one scenario script against `emu`; fails the test with the script's output.
fn run_script(emu: &Emulator, script: &str, args: &[&str]) {
    let Some(py) = python() else { return };
    let home = emu.data_dir().join("sdk-home");
    std::fs::create_dir_all(&home).expect("home dir");
    let out = Command::new(py)
        .arg(sdk_dir().join(script))
        .args(args)
        .current_dir(sdk_dir())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("DATABRICKS_HOST", &emu.url)
        .env("DATABRICKS_TOKEN", &emu.token)
        .env("SDK_CLIENT_ID", CLIENT_ID)
        .env("SDK_CLIENT_SECRET", CLIENT_SECRET)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{script}:\n{stdout}");
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASS"), "{script} ran no scenario");
}

fn lake_dir() -> common::TempDir {
    let lake = tempfile::tempdir().expect("lake dir");
    for (dir, file, body) in [
        (
            "src/gold",
            "customers.csv",
            "customer_id,name\n1,ada\n2,bob\n",
        ),
        (
            "analytics/gold",
            "customer_features.csv",
            "customer_id,score\n1,0.5\n2,0.7\n",
        ),
    ] {
        std::fs::create_dir_all(lake.path().join(dir)).expect("mkdir");
        std::fs::write(lake.path().join(dir).join(file), body).expect("write source");
    }
    lake
}

#[test]
fn sdk_database_instances_and_credentials() {
    if python().is_none() {
        return;
    }
    // Real PostgreSQL servers when installed: the SDK's waiter then sees a real start-up.
    let emu = if postgres_installed() {
        Emulator::start_with(&["--instance-ready-ms", "100"])
    } else {
        Emulator::start_with(&["--no-postgres"])
    };
    run_script(&emu, "instances.py", &[]);
}

#[test]
fn sdk_catalogs_and_synced_tables() {
    if python().is_none() {
        return;
    }
    let lake = lake_dir();
    let lake_arg = lake.path().display().to_string();
    let emu = Emulator::start_with(&["--no-postgres", "--lake-dir", &lake_arg]);
    run_script(&emu, "catalogs_synced.py", &[]);
}

/// A bundle of UC catalogs, schemas, volumes and grants deployed by lakebundle, every
/// object read back by the SDK, then the SDK's own round trip (unity_catalog.py).
#[test]
fn sdk_unity_catalog() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "100"]);
    let b = e2e_support::TestBundle::fixture("e2e_uc");
    e2e_support::run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let expected = serde_json::json!({
        "catalogs": [{"name": "lake_main", "comment": "Landing catalog",
                      "grants": [["data-team", ["BROWSE", "USE_CATALOG"]]]}],
        "schemas": [
            {"full_name": "lake_main.raw",
             "grants": [["data-team", ["CREATE_TABLE", "USE_SCHEMA"]],
                        ["readers", ["SELECT", "USE_SCHEMA"]]]},
            {"full_name": "lake_main.gold", "grants": []}],
        "volumes": [{"full_name": "lake_main.raw.landing", "comment": "landing zone",
                     "grants": [["readers", ["READ_VOLUME"]]]}],
    });
    run_script(&emu, "unity_catalog.py", &[&expected.to_string()]);
}

/// The ML kinds deployed by lakebundle (e2e_ml fixture), read back by the SDK with their
/// permissions and grants, then the SDK's own endpoint and experiment round trips (ml.py).
#[test]
fn sdk_ml_experiments_models_and_serving_endpoints() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres", "--transition-ms", "200"]);
    let b = e2e_support::TestBundle::fixture("e2e_ml");
    e2e_support::run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    run_script(&emu, "ml.py", &[]);
}

/// External locations, UC secrets and job runs deployed by lakebundle, read back by the SDK,
/// then the SDK's own round trip (ucmore.py).
#[test]
fn sdk_external_locations_secrets_and_job_runs() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "100"]);
    let b = e2e_support::TestBundle::fixture("e2e_ucmore");
    let out = e2e_support::command(&emu, &b, &["deploy", "--auto-approve"])
        .env("BUNDLE_VAR_db_password", "sdk-secret-value")
        .output()
        .expect("run lakebundle");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = e2e_support::TestBundle::fixture("e2e_job_runs");
    e2e_support::run(&emu, &runs, &["deploy", "--auto-approve"]).expect(0);
    let expected = serde_json::json!({
        "external_location": {"name": "landing_zone", "url": "s3://ucmore-bucket/landing",
                              "credential_name": "lake-credential", "comment": "raw drops",
                              "grants": [["loaders", ["READ_FILES", "WRITE_FILES"]]]},
        "secret": {"full_name": "ucmore_app.conf.db_password", "value": "sdk-secret-value",
                   "comment": "password of the app user",
                   "grants": [["app-runners", ["MANAGE"]]]},
        "job_run": {"run_id": runs.state_id("resources.job_runs.backfill"),
                    "job_id": runs.state_id("resources.jobs.etl")},
    });
    run_script(&emu, "ucmore.py", &[&expected.to_string()]);
}

#[test]
fn sdk_lakebase_autoscaling_with_operation_waiters() {
    if python().is_none() {
        return;
    }
    // Real PostgreSQL when installed: the script then writes rows through the endpoint and
    // reads them back on a branch.
    if postgres_installed() {
        let emu = Emulator::start();
        run_script(&emu, "autoscaling.py", &["--postgres"]);
    } else {
        let emu = Emulator::start_with(&["--no-postgres"]);
        run_script(&emu, "autoscaling.py", &[]);
    }
}

#[test]
fn sdk_jobs() {
    if python().is_none() {
        return;
    }
    // jobs.py checks the SDK keeps int64 ids above 2^53 exact.
    let emu = Emulator::start_with(&["--no-postgres", "--large-ids"]);
    run_script(&emu, "jobs.py", &[]);
}

#[test]
fn sdk_apps() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres"]);
    run_script(&emu, "apps.py", &[]);
}

#[test]
fn sdk_pipelines_warehouses_and_secret_scopes() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres"]);
    run_script(&emu, "pipelines_warehouses_secrets.py", &[]);
}

/// Dashboards, Genie spaces, alerts and a quality monitor deployed by lakebundle, every
/// object read back by the SDK, then the SDK's own round trips (sql_objects.py).
#[test]
fn sdk_dashboards_genie_alerts_and_monitors() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres"]);
    let table = emu.data_dir().join("lake/lake/raw");
    std::fs::create_dir_all(&table).expect("lake dir");
    std::fs::write(table.join("orders.csv"), "id,amount\n1,10\n").expect("lake table");
    let b = e2e_support::TestBundle::fixture("e2e_sql");
    e2e_support::run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let id = |addr: &str| {
        b.state_id(addr)
            .unwrap_or_else(|| panic!("{addr} in state"))
    };
    let ids = serde_json::json!({
        "warehouse": id("resources.sql_warehouses.wh"),
        "dashboard": id("resources.dashboards.sales"),
        "space": id("resources.genie_spaces.taxi"),
        "alert": id("resources.alerts.revenue"),
        "file_alert": id("resources.alerts.from_file"),
        "monitor": id("resources.quality_monitors.orders"),
    });
    run_script(&emu, "sql_objects.py", &[&ids.to_string()]);
}

#[test]
fn sdk_clusters_instance_pools_and_vector_search() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres"]);
    run_script(&emu, "compute.py", &[]);
}

#[test]
fn sdk_workspace_files_current_user_and_m2m_oauth() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ]);
    run_script(&emu, "workspace_auth.py", &[]);
}

#[test]
fn sdk_retries_through_injected_429_and_503() {
    if python().is_none() {
        return;
    }
    let emu = Emulator::start_with(&["--no-postgres", "--fail-rate", "0.25", "--seed", "11"]);
    run_script(&emu, "retries.py", &[]);
}

#[test]
fn sdk_seed_snippets_run_unchanged() {
    let Some(seed) = common::prereq::shared_file("seed/lakebase-provisioned.md") else {
        return;
    };
    if python().is_none() {
        return;
    }
    let lake = lake_dir();
    let lake_arg = lake.path().display().to_string();
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--lake-dir",
        &lake_arg,
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
    ]);
    run_script(&emu, "seed_snippets.py", &[&seed.display().to_string()]);
}

/// Issue 5's end-to-end test: deploy the seed's full production bundle to a workspace whose
/// instances are real PostgreSQL servers, then (in Python) get a credential through the
/// official SDK, connect with the seed's own psycopg2 code, run the seed's SQL section, read
/// the synced table's rows and check a point-in-time clone; destroy leaves no server running.
#[test]
fn production_bundle_on_real_postgres_end_to_end() {
    if !common::prereq::postgres() {
        return;
    }
    if python().is_none() {
        return;
    }
    let lake = tempfile::tempdir().expect("lake dir");
    let source = lake.path().join("prod_catalog/prod_schema");
    std::fs::create_dir_all(&source).expect("mkdir");
    let rows: String = (1..=250)
        .map(|i| format!("{i},{}.5,tier{}\n", i, i % 3))
        .collect();
    std::fs::write(
        source.join("customer_features.csv"),
        format!("customer_id,score,tier\n{rows}"),
    )
    .expect("write source table");
    let lake_arg = lake.path().to_string_lossy().into_owned();
    let emu = Emulator::start_with(&["--lake-dir", &lake_arg]);
    let bundle = e2e_support::TestBundle::production();

    e2e_support::run(&emu, &bundle, &["deploy", "--auto-approve"]).expect(0);
    let seed_sql = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/emulator/tests/pg/seed.sql"
    );
    run_script(&emu, "e2e_lakebase.py", &[seed_sql, "250"]);

    e2e_support::run(&emu, &bundle, &["destroy", "--auto-approve"]).expect(0);
    let api = e2e_support::Api::new(&emu);
    assert!(api.instances().is_empty(), "instances left after destroy");
    // A postmaster's command line is `postgres -D <data dir>/pg/<uid>/...`.
    let postmaster = format!("-D {}", emu.data_dir().display());
    let servers = Command::new("pgrep")
        .args(["-f", "--", &postmaster])
        .output()
        .expect("pgrep");
    assert!(
        String::from_utf8_lossy(&servers.stdout).trim().is_empty(),
        "a PostgreSQL server outlived destroy"
    );
}
