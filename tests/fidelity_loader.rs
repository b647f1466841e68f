//! Parity with the official CLI on bundles people already have (issue 9,
//! loader half): resolution before keyed merges, typed and empty values,
//! variables, the CLI's own checks and its severities, git metadata. Each
//! case is our own bundle, checked through the built binary.

#[path = "loader_support/mod.rs"]
mod support;

use serde_json::json;
use support::{messages, Bundle};

/// Warnings of a successful run (printed on stderr).
fn warnings(r: &support::Run) -> Vec<String> {
    r.stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("⚠ "))
        .map(str::to_string)
        .collect()
}

fn severities(v: &serde_json::Value, sev: &str) -> Vec<String> {
    v["diagnostics"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|d| d["severity"] == sev)
                .filter_map(|d| d["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const KEYED: &str = r#"bundle:
  name: keyed
variables:
  cluster_key: {default: main}
  env_key: {default: serverless}
  param: {default: region}
  cluster:
    type: complex
    default:
      spark_version: "15.4.x"
      num_workers: 1
resources:
  jobs:
    etl:
      name: etl
      job_clusters:
        - job_cluster_key: ${var.cluster_key}
          new_cluster: ${var.cluster}
      environments:
        - environment_key: ${var.env_key}
          spec: {client: "1"}
      parameters:
        - name: ${var.param}
          default: eu
      tasks:
        - task_key: ${var.cluster_key}_task
          job_cluster_key: ${var.cluster_key}
          notebook_task: {notebook_path: /Workspace/Shared/nb}
targets:
  dev:
    default: true
    resources:
      jobs:
        etl:
          job_clusters:
            - job_cluster_key: main
              new_cluster:
                num_workers: 4
          environments:
            - environment_key: serverless
              spec: {client: "2"}
          parameters:
            - name: region
              default: us
          tasks:
            - task_key: main_task
              timeout_seconds: 60
"#;

#[test]
fn target_overrides_merge_into_entries_whose_key_or_body_is_a_variable() {
    let b = Bundle::new(&[("databricks.yml", KEYED)]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let job = &r.json()["resources"]["jobs"]["etl"];
    assert_eq!(
        job["job_clusters"],
        json!([{"job_cluster_key": "main", "new_cluster": {"spark_version": "15.4.x", "num_workers": 4}}])
    );
    assert_eq!(
        job["environments"],
        json!([{"environment_key": "serverless", "spec": {"client": "2"}}])
    );
    assert_eq!(
        job["parameters"],
        json!([{"name": "region", "default": "us"}])
    );
    assert_eq!(job["tasks"].as_array().map(Vec::len), Some(1));
    assert_eq!(job["tasks"][0]["task_key"], "main_task");
    assert_eq!(job["tasks"][0]["timeout_seconds"], 60);
}

const COMPLEX_OVERRIDE: &str = r#"bundle:
  name: complex-override
variables:
  cluster:
    type: complex
    default:
      spark_version: "15.4.x"
      num_workers: 1
resources:
  jobs:
    j:
      name: j
      job_clusters:
        - job_cluster_key: main
          new_cluster: ${var.cluster}
targets:
  full:
    variables:
      cluster:
        default:
          spark_version: "16.1.x"
          num_workers: 2
  plain:
    variables:
      cluster:
        spark_version: "16.1.x"
        num_workers: 2
"#;

#[test]
fn a_complex_variable_overridden_in_full_or_plain_form_gives_the_same_value() {
    let b = Bundle::new(&[("databricks.yml", COMPLEX_OVERRIDE)]);
    for t in ["full", "plain"] {
        let r = b.run(&["-t", t, "validate", "-o", "json"]);
        assert_eq!(r.code, 0, "{t}: {}\n{}", r.stdout, r.stderr);
        let v = r.json();
        assert_eq!(
            v["resources"]["jobs"]["j"]["job_clusters"][0]["new_cluster"],
            json!({"spark_version": "16.1.x", "num_workers": 2}),
            "{t}"
        );
    }
}

const TYPED: &str = r#"bundle:
  name: typed
variables:
  flag: {default: "true"}
  runs: {default: "3"}
  bid: {default: "0.5"}
  nodes: {default: "2"}
  stopped: {default: "false"}
resources:
  jobs:
    j:
      name: j
      max_concurrent_runs: ${var.runs}
      queue:
        enabled: ${var.flag}
      description: ""
      tags: {empty: ""}
      parameters:
        - name: p
          default: ""
      job_clusters:
        - job_cluster_key: main
          new_cluster:
            spark_version: "15.4.x"
            node_type_id: ""
            azure_attributes:
              spot_bid_max_price: ${var.bid}
  apps:
    a:
      name: my-app
      source_code_path: ./app
      description: ""
      budget_policy_id: ""
  database_instances:
    db:
      name: my-db
      capacity: CU_1
      node_count: ${var.nodes}
      stopped: ${var.stopped}
      usage_policy_id: ""
"#;

#[test]
fn references_take_the_field_type_and_empty_strings_drop_like_the_cli() {
    let b = Bundle::new(&[("databricks.yml", TYPED), ("app/app.py", "print(1)\n")]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    let job = &v["resources"]["jobs"]["j"];
    assert_eq!(job["max_concurrent_runs"], json!(3));
    assert_eq!(job["queue"]["enabled"], json!(true));
    let cluster = &job["job_clusters"][0]["new_cluster"];
    assert_eq!(
        cluster["azure_attributes"]["spot_bid_max_price"],
        json!(0.5)
    );
    // Optional string fields set to "" are dropped ...
    assert!(job.get("description").is_none(), "{job}");
    assert!(cluster.get("node_type_id").is_none(), "{cluster}");
    // ... but not free-form map values, nor required fields.
    assert_eq!(job["tags"], json!({"empty": ""}));
    assert_eq!(job["parameters"], json!([{"name": "p", "default": ""}]));
    let app = &v["resources"]["apps"]["a"];
    // The CLI sends an app's empty description.
    assert_eq!(app["description"], json!(""));
    assert!(app.get("budget_policy_id").is_none(), "{app}");
    let db = &v["resources"]["database_instances"]["db"];
    assert_eq!(db["node_count"], json!(2));
    assert_eq!(db["stopped"], json!(false));
    assert!(db.get("usage_policy_id").is_none(), "{db}");
}

#[test]
fn the_same_var_twice_is_an_error() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: twice\nvariables:\n  x: {default: a}\n",
    )]);
    let r = b.run(&["validate", "-o", "json", "--var", "x=1", "--var", "x=2"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        messages(&r.json()).contains(&"--var `x` is given more than once".to_string()),
        "{}",
        r.stdout
    );
    let once = b.run(&["validate", "-o", "json", "--var", "x=1"]);
    assert_eq!(once.code, 0, "{}", once.stdout);
}

#[test]
fn unicode_variable_names_resolve_or_fail_never_stay_as_text() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: uni\nvariables:\n  变量: {default: 你好}\nresources:\n  jobs:\n    j:\n      name: job-${var.变量}\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["resources"]["jobs"]["j"]["name"], "job-你好");

    let undeclared = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: uni\nresources:\n  jobs:\n    j:\n      name: job-${var.未定义}\n",
    )]);
    let r = undeclared.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        messages(&r.json())
            .iter()
            .any(|m| m.contains("no variable `未定义` is declared")),
        "{}",
        r.stdout
    );
}

#[test]
fn fields_of_two_complex_variables_may_refer_to_each_other() {
    let b = Bundle::new(&[(
        "databricks.yml",
        r#"bundle:
  name: crossed
variables:
  a:
    type: complex
    default: {x: one, y: "${var.b.x}-two"}
  b:
    type: complex
    default: {x: "${var.a.x}", z: 3}
resources:
  jobs:
    j:
      name: ${var.a.y}
"#,
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["resources"]["jobs"]["j"]["name"], "one-two");
    assert_eq!(v["variables"]["b"]["value"], json!({"x": "one", "z": 3}));

    // A real cycle between fields is still an error, reported once.
    let cyc = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: cyc\nvariables:\n  s:\n    type: complex\n    default: {p: \"${var.s.q}\", q: \"${var.s.p}\"}\n  t: {default: \"${var.t}\"}\n",
    )]);
    let r = cyc.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let errors = severities(&r.json(), "error");
    assert!(
        errors.contains(&"cycle detected: var.s.p → var.s.q → var.s.p".to_string()),
        "{errors:?}"
    );
    assert!(
        errors.contains(&"cycle detected: var.t → var.t".to_string()),
        "{errors:?}"
    );
}

/// The official CLI substitutes a whole map or list without resolving inside
/// it in the same round, so a cycle through whole complex values is cut (a
/// warning: those references stay unresolved), never a refusal.
#[test]
fn a_cycle_through_whole_complex_values_only_warns() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: cycle\nvariables:\n  a:\n    default:\n      hello: ${var.b}\n  b:\n    default:\n      hello: ${var.a}\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let warned = warnings(&r);
    assert!(
        warned.iter().any(|w| w.starts_with(
            "unresolved variables: a cycle through whole complex values: var.a → var.b → var.a"
        )),
        "{warned:?}\n{}",
        r.stderr
    );
    // `--strict` makes the warning fail the command.
    assert_eq!(b.run(&["validate", "--strict"]).code, 1);
}

#[test]
fn references_where_the_cli_cannot_resolve_them_are_errors() {
    let b = Bundle::new(&[(
        "databricks.yml",
        r#"bundle:
  name: refs
variables:
  env: {default: dev}
  host: {default: example.cloud.databricks.com}
workspace:
  host: https://${var.host}
resources:
  jobs:
    ${var.env}_job:
      name: j
"#,
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let errors = severities(&r.json(), "error");
    assert!(
        errors.contains(&"workspace.host cannot contain a reference".to_string()),
        "{errors:?}"
    );
    assert!(
        errors.contains(
            &"resources.jobs: a resource key cannot contain a reference (`${var.env}_job`)"
                .to_string()
        ),
        "{errors:?}"
    );
}

#[test]
fn engine_reserved_job_fields_and_app_source_are_checked() {
    let b = Bundle::new(&[(
        "databricks.yml",
        r#"bundle:
  name: checks
  engine: terrafrom
resources:
  jobs:
    j:
      name: j
      deployment: {kind: BUNDLE, metadata_file_path: /x}
  apps:
    a:
      name: my-app
"#,
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let errors = severities(&r.json(), "error");
    for want in [
        "invalid bundle.engine `terrafrom`",
        "resources.jobs.j.deployment must not be set in bundle configuration",
        "resources.apps.a: an app needs `source_code_path` or `git_source`",
    ] {
        assert!(errors.contains(&want.to_string()), "{want}: {errors:?}");
    }
    let ok = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: ok\n  engine: direct\nresources:\n  apps:\n    a:\n      name: my-app\n      git_source: {branch: main}\n",
    )]);
    let r = ok.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[test]
fn a_variable_in_the_bundle_name_warns() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: app-${var.suffix}\nvariables:\n  suffix: {default: x}\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["bundle"]["name"], "app-x");
    assert_eq!(
        warnings(&r),
        vec!["bundle.name uses a reference".to_string()]
    );
}

#[test]
fn a_second_merge_key_in_one_mapping_is_reported() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: merges\nx-a: &a {max_concurrent_runs: 2}\nx-b: &b {timeout_seconds: 5}\nresources:\n  jobs:\n    j:\n      name: j\n      <<: *a\n      <<: *b\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        messages(&r.json()).contains(&"`<<` appears more than once in this mapping".to_string()),
        "{}",
        r.stdout
    );
}

#[test]
fn top_level_anchor_definitions_do_not_warn_but_other_unknown_keys_do() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: anchors\nx-defaults: &defaults\n  max_concurrent_runs: 2\ncommon: &c {timeout_seconds: 5}\nresorces: {}\nresources:\n  jobs:\n    j:\n      name: j\n      <<: [*defaults, *c]\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["resources"]["jobs"]["j"]["max_concurrent_runs"], 2);
    assert_eq!(
        warnings(&r),
        vec!["unknown top-level field `resorces`".to_string()]
    );
}

#[test]
fn includes_are_found_under_a_root_whose_path_holds_glob_characters() {
    let outer = tempfile::tempdir().expect("temp dir");
    let root = outer.path().join("[abc]*?");
    std::fs::create_dir_all(root.join("resources")).expect("mkdir");
    std::fs::write(
        root.join("databricks.yml"),
        "bundle:\n  name: globby\ninclude:\n  - resources/*.yml\n",
    )
    .expect("write");
    std::fs::write(
        root.join("resources/jobs.yml"),
        "resources:\n  jobs:\n    j:\n      name: j\n",
    )
    .expect("write");
    let r = support::run_in(&root, &[], &["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["resources"]["jobs"]["j"]["name"], "j");
}

#[test]
fn where_the_cli_only_warns_lakebundle_warns_and_strict_refuses() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: lenient\nresources:\n  database_instances:\n    db:\n      name: my-db\n      capacity: CU_64\n  database_catalogs:\n    c:\n      name: cat\n      database_name: d\n",
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let warnings = warnings(&r);
    assert!(
        warnings.contains(
            &"invalid value `CU_64` for resources.database_instances.db.capacity".to_string()
        ),
        "{warnings:?}"
    );
    assert!(
        warnings.contains(
            &"resources.database_catalogs.c is missing required field `database_instance_name`"
                .to_string()
        ),
        "{warnings:?}"
    );
    let strict = b.run(&["validate", "-o", "json", "--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stdout);
}

fn git_repo(dir: &std::path::Path, head: &str) {
    let git = dir.join(".git");
    std::fs::create_dir_all(git.join("refs/heads")).expect("mkdir");
    std::fs::write(git.join("HEAD"), head).expect("write");
    std::fs::write(
        git.join("refs/heads/feature"),
        "0123456789abcdef0123456789abcdef01234567\n",
    )
    .expect("write");
    std::fs::write(
        git.join("config"),
        "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://example.com/org/repo.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
    )
    .expect("write");
}

#[test]
fn git_metadata_is_inferred_from_the_checkout() {
    let outer = tempfile::tempdir().expect("temp dir");
    git_repo(outer.path(), "ref: refs/heads/feature\n");
    let root = outer.path().join("bundles/one");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("databricks.yml"), "bundle:\n  name: git\n").expect("write");
    let r = support::run_in(&root, &[], &["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(
        r.json()["bundle"]["git"],
        json!({
            "bundle_root_path": "bundles/one",
            "branch": "feature",
            "actual_branch": "feature",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "origin_url": "https://example.com/org/repo.git"
        })
    );

    // A branch set in the bundle wins; the actual branch is still reported.
    std::fs::write(
        root.join("databricks.yml"),
        "bundle:\n  name: git\n  git:\n    branch: release\n",
    )
    .expect("write");
    let r = support::run_in(&root, &[], &["validate", "-o", "json"]);
    let g = &r.json()["bundle"]["git"];
    assert_eq!(g["branch"], "release");
    assert_eq!(g["actual_branch"], "feature");

    // A malformed .git: the place in the checkout only.
    let broken = tempfile::tempdir().expect("temp dir");
    std::fs::write(broken.path().join(".git"), "not a git file\n").expect("write");
    std::fs::write(
        broken.path().join("databricks.yml"),
        "bundle:\n  name: git\n",
    )
    .expect("write");
    let r = support::run_in(broken.path(), &[], &["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["bundle"]["git"], json!({"bundle_root_path": "."}));
}
