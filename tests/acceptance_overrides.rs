//! The official CLI's target-override, preset and resource-reference cases,
//! re-expressed as our own bundles and checked through `lakebundle validate`.

#[path = "loader_support/mod.rs"]
mod support;

use serde_json::json;
use support::{messages, Bundle};

const TASKS: &str = r#"bundle:
  name: task-merge
resources:
  jobs:
    nightly:
      name: nightly
      job_clusters:
        - job_cluster_key: small
          new_cluster:
            spark_version: 15.4.x
      tasks:
        - task_key: extract
          new_cluster:
            spark_version: 15.4.x
          notebook_task:
            notebook_path: /x/extract
        - task_key: load
          new_cluster:
            spark_version: 15.4.x
          notebook_task:
            notebook_path: /x/load
      parameters:
        - name: day
          default: today
targets:
  small:
    resources:
      jobs:
        nightly:
          tasks:
            - task_key: extract
              new_cluster:
                num_workers: 1
  big:
    resources:
      jobs:
        nightly:
          job_clusters:
            - job_cluster_key: small
              new_cluster:
                num_workers: 8
          tasks:
            - task_key: load
              new_cluster:
                num_workers: 4
              notebook_task:
                notebook_path: /x/load_v2
            - task_key: report
              notebook_task:
                notebook_path: /x/report
          parameters:
            - name: day
              default: yesterday
"#;

#[test]
fn job_tasks_clusters_and_parameters_merge_by_key() {
    let b = Bundle::new(&[("databricks.yml", TASKS)]);
    let small = b.run(&["-t", "small", "validate", "-o", "json"]).json();
    let tasks = &small["resources"]["jobs"]["nightly"]["tasks"];
    assert_eq!(
        tasks[0]["new_cluster"],
        json!({"spark_version": "15.4.x", "num_workers": 1})
    );
    assert_eq!(tasks[1]["new_cluster"], json!({"spark_version": "15.4.x"}));
    assert_eq!(tasks.as_array().map(Vec::len), Some(2));

    let big = b.run(&["-t", "big", "validate", "-o", "json"]).json();
    let job = &big["resources"]["jobs"]["nightly"];
    let keys: Vec<&str> = job["tasks"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["task_key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, vec!["extract", "load", "report"]);
    assert_eq!(
        job["tasks"][1]["new_cluster"],
        json!({"spark_version": "15.4.x", "num_workers": 4})
    );
    assert_eq!(
        job["tasks"][1]["notebook_task"]["notebook_path"],
        "/x/load_v2"
    );
    assert_eq!(
        job["job_clusters"],
        json!([{"job_cluster_key": "small", "new_cluster": {"spark_version": "15.4.x", "num_workers": 8}}])
    );
    assert_eq!(
        job["parameters"],
        json!([{"name": "day", "default": "yesterday"}])
    );
}

#[test]
fn app_resources_merge_by_name_and_other_lists_concatenate() {
    let yaml = "bundle:\n  name: apps\nresources:\n  apps:\n    a:\n      name: app-a\n      source_code_path: ./src\n      resources:\n        - name: db\n          database:\n            instance_name: i1\n            database_name: d\n            permission: CAN_CONNECT_AND_CREATE\n      permissions:\n        - level: CAN_USE\n          group_name: users\ntargets:\n  t:\n    default: true\n    resources:\n      apps:\n        a:\n          resources:\n            - name: db\n              database:\n                instance_name: i2\n          permissions:\n            - level: CAN_MANAGE\n              group_name: admins\n";
    let b = Bundle::new(&[("databricks.yml", yaml), ("src/app.py", "")]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let app = &r.json()["resources"]["apps"]["a"];
    assert_eq!(app["resources"].as_array().map(Vec::len), Some(1));
    assert_eq!(app["resources"][0]["database"]["instance_name"], "i2");
    assert_eq!(
        app["resources"][0]["database"]["permission"],
        "CAN_CONNECT_AND_CREATE"
    );
    // Both grants, plus the deploying identity's CAN_MANAGE (pending offline).
    assert_eq!(app["permissions"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        app["permissions"][2]["user_name"],
        "${workspace.current_user.userName}"
    );
}

#[test]
fn development_mode_cannot_unpause_by_default() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: p\ntargets:\n  dev:\n    mode: development\n    default: true\n    presets:\n      trigger_pause_status: UNPAUSED\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert!(messages(&v)[0].contains("cannot unpause"), "{v}");
    assert_eq!(
        (
            v["diagnostics"][0]["line"].as_u64(),
            v["diagnostics"][0]["column"].as_u64()
        ),
        (Some(8), Some(29))
    );
}

const PREFIX: &str = "bundle:\n  name: pre\nresources:\n  jobs:\n    j:\n      name: job\n  database_catalogs:\n    c:\n      name: cat\n      database_instance_name: i\n      database_name: d\nPRESETS\ntargets:\n  dev:\n    mode: development\n";

fn prefix_run(presets: &str) -> support::Run {
    let b = Bundle::new(&[("databricks.yml", &PREFIX.replace("PRESETS", presets))]);
    b.run(&["validate", "-o", "json"])
}

#[test]
fn development_name_prefix_rules() {
    // No presets: the default personal prefix, on jobs only.
    let r = prefix_run("");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(
        v["resources"]["jobs"]["j"]["name"],
        "[dev ${workspace.current_user.short_name}] job"
    );
    assert_eq!(v["resources"]["database_catalogs"]["c"]["name"], "cat");
    assert_eq!(v["presets"]["jobs_max_concurrent_runs"], 4);
    // A fixed prefix would collide between developers.
    let r = prefix_run("presets:\n  name_prefix: fixed_");
    assert_eq!(r.code, 1);
    assert!(messages(&r.json())[0].contains("must contain the current user's name"));
    // One that names the user is fine.
    let r = prefix_run("presets:\n  name_prefix: \"${workspace.current_user.short_name}_\"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["resources"]["jobs"]["j"]["name"],
        "${workspace.current_user.short_name}_job"
    );
    // Empty means the default; null warns and means the default.
    assert_eq!(
        prefix_run("presets:\n  name_prefix: \"\"").json()["resources"]["jobs"]["j"]["name"],
        "[dev ${workspace.current_user.short_name}] job"
    );
    let r = prefix_run("presets:\n  name_prefix:");
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("should be a string, found null"),
        "{}",
        r.stderr
    );
}

#[test]
fn production_mode_needs_a_root_path() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: prod\ntargets:\n  prod:\n    mode: production\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    assert!(messages(&r.json())[0].contains("must set `workspace.root_path`"));
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: prod\ntargets:\n  prod:\n    mode: production\n    workspace:\n      root_path: /Workspace/Shared/prod/${bundle.name}\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["workspace"]["state_path"],
        "/Workspace/Shared/prod/prod/state"
    );
}

#[test]
fn jobs_referring_to_each_other_form_a_cycle() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: loop\nresources:\n  jobs:\n    left:\n      name: ${resources.jobs.right.id}\n    right:\n      name: ${resources.jobs.left.id}\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    let m = messages(&r.json());
    assert_eq!(m, vec!["cycle detected between resources: resources.jobs.left → resources.jobs.right → resources.jobs.left".to_string()]);
}

#[test]
fn reference_to_a_field_that_does_not_exist() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: nf\nresources:\n  database_instances:\n    a:\n      name: inst-a\n      capacity: CU_1\n  database_catalogs:\n    c:\n      name: ${resources.database_instances.a.not_there}\n      database_instance_name: ${resources.database_instances.a.name}\n      database_name: d\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(messages(&v), vec!["${resources.database_instances.a.not_there}: resources.database_instances.a has no field `not_there`".to_string()]);
    assert_eq!(
        (
            v["diagnostics"][0]["line"].as_u64(),
            v["diagnostics"][0]["column"].as_u64()
        ),
        (Some(10), Some(13))
    );
}
