//! Conformance: every public bundle of the shared corpus whose resource kinds
//! lakebundle deploys goes through the whole life cycle against one served
//! local workspace: deploy, a no-op plan right after, a remote change that the
//! next plan shows as an update, and a destroy that leaves nothing behind.
//! Skips when `../shared` is absent; fails under `CI=true`.

mod common;
mod e2e_support;

#[path = "corpus_support/mod.rs"]
mod corpus;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::Emulator;
use corpus::{
    bundle_dir, cli_var_args, manifest, stage, stage_python, uses_python, Entry, EXCEPTIONS,
};
use e2e_support::Api;
use serde_json::{json, Value};

/// Bundles that cannot deploy for a reason of their own, with the error their
/// deploy must stop at (so the list cannot rot) and why. Most keep only their
/// YAML in the corpus (sources are stubs), so their artifact builds, which need
/// the real sources and toolchains, cannot run.
const UNDEPLOYABLE: &[(&str, &str, &str)] = &[
    ("databricks__bundle-examples__default_python", "building artifact", "the uv project is not in the corpus"),
    ("tannerwendland-db__databricks-code-search", "building artifact", "the uv project is not in the corpus"),
    ("databricks__bundle-examples__job_with_python_wheel_task__at_8462025", "building artifact", "wheel sources of `common` are not in the corpus"),
    ("databricks__bundle-examples__knowledge_base__job_with_multiple_wheels", "building artifact", "poetry projects are not in the corpus"),
    ("databricks__bundle-examples__knowledge_base__python_wheel_poetry", "building artifact", "poetry project is not in the corpus"),
    ("databricks__bundle-examples__knowledge_base__spark_jar_task", "building artifact", "PrintArgs.java is not in the corpus"),
    ("databricks__cli__acceptance__bundle__templates__default-scala__output__my_default_scala", "building artifact", "the sbt project is not in the corpus"),
    ("databricks__cli__acceptance__bundle__templates__lakeflow-integrations__output__my_lakeflow_integrations", "building artifact", "the uv project is not in the corpus"),
    ("databricks__bundle-examples__knowledge_base__job_read_secret", "Invalid permission 'VIEW'", "secret scope ACL level VIEW: the service takes READ, WRITE or MANAGE (the official CLI warns at validate, and its ACL call fails the same way)"),
    ("databricks-industry-solutions__pixels", "does not exist", "its dashboard `../dist/Pixels Object Catalog dashboard.lvdash.json` is a build output that is not in the corpus"),
    ("databricks__bundle-examples__knowledge_base__alerts", "the alert has no query", "the `.dbalert.json` of `nyc_taxi_daily_revenue_as_file` is not in the corpus (its stand-in holds no query)"),
    ("databricks-industry-solutions__genesis-workbench__modules__core", "has not been deployed", "jobs grant permissions to the app's service principal (`${resources.apps.genesis_workbench_app.service_principal_client_id}`) while the app depends on those jobs: lakebundle applies a resource's permissions with the resource, so the app id is not known yet (the official CLI's terraform engine applies permissions as separate resources)"),
    ("db-afeng__genie_slack_app", "invalid host", "`workspace.host` is the placeholder `<workspace_host_url>`"),
    ("end-to-end-mlops-databricks-3__marvelous-databricks-course-kbajdzienko", "lookup", "its variables look up a cluster policy and a cluster that exist only in the author's workspace"),
];

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lakebundle(emu: &Emulator, dir: &Path, vars: &[String], args: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_lakebundle"))
        .arg("-C")
        .arg(dir)
        .args(vars)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("DATABRICKS_HOST", &emu.url)
        .env("DATABRICKS_TOKEN", &emu.token)
        .env("NO_COLOR", "1")
        .output()
        .expect("run lakebundle");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The kinds this build deploys (the registry), not a list kept by hand.
fn deployed_kinds() -> BTreeSet<String> {
    lakebundle::resources::Kind::ALL
        .iter()
        .map(|k| k.key().to_string())
        .collect()
}

/// Catalogs and schemas the bundle's schemas and volumes live in but do not
/// declare (`main`, a variable's catalog): a real workspace has them; the
/// local one shows lake directories as read-only catalogs and schemas.
fn write_outside_catalogs(lake: &Path, resolved: &Value) {
    let resources = &resolved["resources"];
    let names = |kind: &str, field: &str| -> Vec<String> {
        resources[kind]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|r| r[field].as_str().map(str::to_lowercase))
            .collect()
    };
    let catalogs = names("catalogs", "name");
    let schemas: Vec<(String, String)> = resources["schemas"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|s| {
            Some((
                s["catalog_name"].as_str()?.to_lowercase(),
                s["name"].as_str()?.to_lowercase(),
            ))
        })
        .collect();
    let literal = |s: &str| !s.is_empty() && !s.contains("${");
    let mut dirs: Vec<(String, String)> = Vec::new();
    for (catalog, _) in &schemas {
        if literal(catalog) && !catalogs.contains(catalog) {
            dirs.push((catalog.clone(), "corpus_placeholder".into()));
        }
    }
    for v in ["volumes", "registered_models"]
        .iter()
        .filter_map(|k| resources[*k].as_object())
        .flat_map(|m| m.values())
    {
        let (Some(c), Some(s)) = (v["catalog_name"].as_str(), v["schema_name"].as_str()) else {
            continue;
        };
        let key = (c.to_lowercase(), s.to_lowercase());
        if literal(c) && literal(s) && !schemas.contains(&key) && !catalogs.contains(&key.0) {
            dirs.push(key);
        }
    }
    for (catalog, schema) in dirs {
        std::fs::create_dir_all(lake.join(catalog).join(schema)).expect("lake catalog dir");
    }
}

/// SQL warehouses the bundle's variables look up by name (`lookup: warehouse:
/// "Shared ..."`): a real workspace has them; the local one starts empty.
/// Their ids, to remove after the bundle (another bundle may create one of
/// that name itself).
fn create_looked_up_warehouses(api: &Api, resolved: &Value) -> Vec<String> {
    let mut made = Vec::new();
    let wanted: Vec<&str> = resolved["variables"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|v| v["lookup"]["warehouse"].as_str())
        .collect();
    for name in wanted {
        let existing = api.list("/api/2.0/sql/warehouses", "warehouses", &[]);
        if !existing.iter().any(|w| w["name"] == name) {
            let w = api.post(
                "/api/2.0/sql/warehouses",
                &serde_json::json!({"name": name, "cluster_size": "2X-Small"}),
            );
            made.extend(w["id"].as_str().map(str::to_string));
        }
    }
    made
}

/// DELETE outside the bundle (the shared client has none).
fn delete(emu: &Emulator, path: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        reqwest::Client::new()
            .delete(format!("{}{path}", emu.url))
            .bearer_auth(&emu.token)
            .send()
            .await
            .expect("DELETE");
    });
}

/// Source tables for the bundle's synced tables, in the lake layout the
/// emulator reads (`<catalog>/<schema>/<table>.csv`): the primary key columns
/// plus one value column, two rows.
fn write_sources(lake: &Path, resolved: &Value) {
    let Some(tables) = resolved["resources"]["synced_database_tables"].as_object() else {
        return;
    };
    for table in tables.values() {
        let spec = &table["spec"];
        let Some(source) = spec["source_table_full_name"].as_str() else {
            continue;
        };
        let parts: Vec<&str> = source.split('.').collect();
        let [catalog, schema, name] = parts.as_slice() else {
            continue;
        };
        let mut columns: Vec<String> = spec["primary_key_columns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if columns.is_empty() {
            columns.push("id".into());
        }
        if let Some(ts) = spec["timeseries_key"].as_str() {
            if !columns.iter().any(|c| c == ts) {
                columns.push(ts.to_string());
            }
        }
        columns.push("corpus_value".into());
        let row = |n: usize| {
            columns
                .iter()
                .map(|c| format!("{c}-{n}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let dir = lake.join(catalog).join(schema);
        std::fs::create_dir_all(&dir).expect("lake dir");
        std::fs::write(
            dir.join(format!("{name}.csv")),
            format!("{}\n{}\n{}\n", columns.join(","), row(1), row(2)),
        )
        .expect("write source table");
    }
}

/// Whether the remote object of a deployed resource is gone (or going).
fn gone(api: &Api, kind: &str, id: &str) -> Result<bool, String> {
    let path = match kind {
        "database_instances" => format!("/api/2.0/database/instances/{id}"),
        "database_catalogs" => format!("/api/2.0/database/catalogs/{id}"),
        "synced_database_tables" => format!("/api/2.0/database/synced_tables/{id}"),
        "apps" => {
            return Ok(api
                .get(&format!("/api/2.0/apps/{id}"), &[])
                .is_none_or(|a| a["compute_status"]["state"] == "DELETING"))
        }
        "jobs" => {
            return Ok(!api
                .jobs()
                .iter()
                .any(|j| j["job_id"].to_string().trim_matches('"') == id))
        }
        "pipelines" => format!("/api/2.0/pipelines/{id}"),
        "catalogs" => format!("/api/2.1/unity-catalog/catalogs/{id}"),
        "schemas" => format!("/api/2.1/unity-catalog/schemas/{id}"),
        "volumes" => format!("/api/2.1/unity-catalog/volumes/{id}"),
        "registered_models" => format!("/api/2.1/unity-catalog/models/{id}"),
        "model_serving_endpoints" => format!("/api/2.0/serving-endpoints/{id}"),
        "models" => {
            return Ok(api
                .get(
                    "/api/2.0/mlflow/registered-models/get",
                    &[("name", id.to_string())],
                )
                .is_none())
        }
        // Soft-deleted: still readable, no longer active.
        "experiments" => {
            return Ok(api
                .get(
                    "/api/2.0/mlflow/experiments/get",
                    &[("experiment_id", id.to_string())],
                )
                .is_none_or(|e| e["experiment"]["lifecycle_stage"] == "deleted"))
        }
        "sql_warehouses" => {
            return Ok(api
                .get(&format!("/api/2.0/sql/warehouses/{id}"), &[])
                .is_none_or(|w| matches!(w["state"].as_str(), Some("DELETED" | "DELETING"))))
        }
        "secret_scopes" => {
            return Ok(!api
                .list("/api/2.0/secrets/scopes/list", "scopes", &[])
                .iter()
                .any(|s| s["name"] == id))
        }
        // A missing cluster answers 400, not 404: look for it in the list.
        "clusters" => {
            return Ok(!api
                .list("/api/2.1/clusters/list", "clusters", &[])
                .iter()
                .any(|c| c["cluster_id"] == id))
        }
        "instance_pools" => {
            return Ok(!api
                .list("/api/2.0/instance-pools/list", "instance_pools", &[])
                .iter()
                .any(|p| p["instance_pool_id"] == id))
        }
        "vector_search_endpoints" => format!("/api/2.0/vector-search/endpoints/{id}"),
        "vector_search_indexes" => format!("/api/2.0/vector-search/indexes/{id}"),
        // Trashed dashboards and alerts stay readable: gone all the same.
        "dashboards" => {
            return Ok(api
                .get(&format!("/api/2.0/lakeview/dashboards/{id}"), &[])
                .is_none_or(|d| d["lifecycle_state"] == "TRASHED"))
        }
        "alerts" => {
            return Ok(api
                .get(&format!("/api/2.0/alerts/{id}"), &[])
                .is_none_or(|a| a["lifecycle_state"] == "DELETED"))
        }
        "genie_spaces" => format!("/api/2.0/genie/spaces/{id}"),
        "quality_monitors" => format!("/api/2.1/unity-catalog/tables/{id}/monitor"),
        // Paths are ids: `projects/p/branches/b`; a soft-deleted object reads as missing.
        postgres if postgres.starts_with("postgres_") => format!("/api/2.0/postgres/{id}"),
        other => return Err(format!("no gone-check for kind `{other}`: add one here")),
    };
    Ok(api.get(&path, &[]).is_none())
}

/// One bundle's life cycle; `Err` says which step failed and why.
fn life_cycle(
    emu: &Emulator,
    api: &Api,
    lake: &Path,
    dir: &Path,
    e: &Entry,
    made: &mut Vec<String>,
) -> Result<(), String> {
    let vars = cli_var_args(&e.folder);
    let step = |args: &[&str], want: i32| -> Result<Outcome, String> {
        let o = lakebundle(emu, dir, &vars, args);
        if o.code == want {
            Ok(o)
        } else {
            Err(format!(
                "`{}` exited {} (want {want}):\n{}{}",
                args.join(" "),
                o.code,
                o.stdout,
                o.stderr
            ))
        }
    };
    let resolved: Value = serde_json::from_str(&step(&["validate", "-o", "json"], 0)?.stdout)
        .map_err(|err| format!("validate -o json: {err}"))?;
    write_sources(lake, &resolved);
    write_outside_catalogs(lake, &resolved);
    made.extend(create_looked_up_warehouses(api, &resolved));

    let deploy = step(&["deploy", "--auto-approve"], 0);
    if let Some((_, error, _)) = UNDEPLOYABLE.iter().find(|(f, ..)| *f == e.folder) {
        return match deploy {
            Err(why) if why.contains(error) => Ok(()),
            Err(why) => Err(format!("listed as undeployable ({error}), but: {why}")),
            Ok(_) => Err("listed as undeployable but deploys: remove it from UNDEPLOYABLE".into()),
        };
    }
    deploy?;
    step(&["plan", "--detailed-exitcode"], 0)
        .map_err(|err| format!("no-op plan after deploy: {err}"))?;

    let summary: Value = serde_json::from_str(&step(&["summary", "-o", "json"], 0)?.stdout)
        .map_err(|err| format!("summary -o json: {err}"))?;
    let deployed: Vec<(String, String, String)> = summary["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r["address"].as_str()?.to_string(),
                r["kind"].as_str()?.to_string(),
                r["id"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| r["id"].as_u64().map(|n| n.to_string()))?,
            ))
        })
        .collect();
    if deployed.is_empty() {
        return Err(format!("summary lists no deployed resource: {summary}"));
    }

    // A change made behind the tool's back: the next plan updates that field.
    if let Some((addr, _, id)) = deployed.iter().find(|(_, kind, _)| kind == "jobs") {
        let job_id: u64 = id.parse().map_err(|_| format!("job id {id:?}"))?;
        api.post(
            "/api/2.2/jobs/update",
            &json!({"job_id": job_id, "new_settings": {"name": "renamed behind lakebundle's back"}}),
        );
        let plan = lakebundle(emu, dir, &vars, &["plan", "-o", "json"]);
        let plan: Value = serde_json::from_str(&plan.stdout)
            .map_err(|err| format!("plan -o json after a remote rename: {err}: {}", plan.stderr))?;
        let change = plan["resource_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["address"] == addr.as_str())
            .ok_or_else(|| format!("the plan after a remote rename omits {addr}"))?;
        if change["actions"] != json!(["update"]) {
            return Err(format!(
                "{addr} renamed remotely plans {}",
                change["actions"]
            ));
        }
    }

    step(&["destroy", "--auto-approve"], 0)?;
    for (addr, kind, id) in &deployed {
        if !gone(api, kind, id)? {
            return Err(format!("{addr} ({id}) still exists after destroy"));
        }
    }
    Ok(())
}

#[test]
fn corpus_bundles_deploy_plan_no_op_and_destroy_clean() {
    let Some(shared) = common::prereq::shared_dir() else {
        return;
    };
    let corpus_dir = shared.join("corpus");
    let kinds = deployed_kinds();
    let entries: Vec<Entry> = manifest(&corpus_dir)
        .into_iter()
        .filter(|e| !e.kinds.is_empty() && e.kinds.iter().all(|k| kinds.contains(k)))
        .filter(|e| !EXCEPTIONS.iter().any(|(f, _)| *f == e.folder))
        .collect();
    assert!(
        entries.len() >= 20,
        "only {} corpus bundles use just the deployed kinds",
        entries.len()
    );
    let lake = tempfile::tempdir().expect("lake dir");
    let lake_arg = lake.path().display().to_string();
    let emu = Emulator::start_with(&["--lake-dir", &lake_arg]);
    let api = Api::new(&emu);
    let staging = tempfile::tempdir().expect("staging dir");
    let mut failures = Vec::new();
    // `python:` bundles run the real databricks-bundles package.
    let python = common::prereq::python_with("databricks.bundles");
    for e in &entries {
        let copy = stage(&corpus_dir.join(&e.folder), staging.path(), &e.folder);
        let dir = bundle_dir(&copy, e);
        if uses_python(&dir) {
            match &python {
                Some(py) => stage_python(&dir, py),
                // Reported by prereq (a failure under CI=true).
                None => continue,
            }
        }
        let mut made = Vec::new();
        let outcome = life_cycle(&emu, &api, lake.path(), &dir, e, &mut made);
        if let Err(why) = outcome {
            failures.push(format!("{}: {why}", e.folder));
            // Leave nothing behind that a later bundle with the same names meets.
            lakebundle(
                &emu,
                &dir,
                &cli_var_args(&e.folder),
                &["destroy", "--auto-approve"],
            );
        }
        for id in made {
            delete(&emu, &format!("/api/2.0/sql/warehouses/{id}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus bundles failed their life cycle:\n\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n\n")
    );
}
