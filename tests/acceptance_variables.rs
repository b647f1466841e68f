//! The official CLI's variable behaviour (complex values, precedence, the
//! overrides file, lookups, cycles, reference typos), re-expressed as our own
//! bundles and checked through `lakebundle validate`.

#[path = "loader_support/mod.rs"]
mod support;

use serde_json::json;
use support::{messages, Bundle};

const COMPLEX: &str = r#"bundle:
  name: complex-vars
variables:
  worker_type:
    default: m5.large
  compute:
    type: complex
    description: a cluster spec
    default:
      spark_version: "15.4.x"
      node_type_id: ${var.worker_type}
      num_workers: 3
      policy_id: policy-1
      spark_conf:
        spark.speculation: true
  libs:
    type: complex
    default:
      - jar: /lib/a.jar
      - whl: /lib/b.whl
resources:
  jobs:
    etl:
      name: etl
      job_clusters:
        - job_cluster_key: main
          new_cluster: ${var.compute}
      tasks:
        - task_key: "run on ${var.compute.spark_version} with ${var.libs[0].jar}"
          job_cluster_key: main
          libraries: ${variables.libs.value}
targets:
  default:
    default: true
  dev:
    variables:
      worker_type: m5.xlarge
      compute:
        spark_version: "16.1.x"
        node_type_id: ${var.worker_type}
        num_workers: 1
      libs:
        - jar: /dev/a.jar
"#;

#[test]
fn complex_variables_keep_their_shape_and_are_replaced_not_merged() {
    let b = Bundle::new(&[("databricks.yml", COMPLEX)]);
    let v = b.run(&["validate", "-o", "json"]).json();
    let job = &v["resources"]["jobs"]["etl"];
    assert_eq!(
        job["job_clusters"][0]["new_cluster"],
        json!({"spark_version": "15.4.x", "node_type_id": "m5.large", "num_workers": 3, "policy_id": "policy-1", "spark_conf": {"spark.speculation": "true"}})
    );
    assert_eq!(job["tasks"][0]["task_key"], "run on 15.4.x with /lib/a.jar");
    assert_eq!(
        job["tasks"][0]["libraries"],
        json!([{"jar": "/lib/a.jar"}, {"whl": "/lib/b.whl"}])
    );
    assert_eq!(
        v["variables"]["compute"]["value"]["node_type_id"],
        "m5.large"
    );

    let dev = b.run(&["-t", "dev", "validate", "-o", "json"]).json();
    let cluster = &dev["resources"]["jobs"]["etl"]["job_clusters"][0]["new_cluster"];
    assert_eq!(cluster["node_type_id"], "m5.xlarge");
    assert_eq!(cluster["num_workers"], 1);
    // The target's complex value replaces the default: nothing is inherited.
    assert!(
        cluster.get("policy_id").is_none() && cluster.get("spark_conf").is_none(),
        "{cluster}"
    );
    assert_eq!(
        dev["resources"]["jobs"]["etl"]["tasks"][0]["task_key"],
        "run on 16.1.x with /dev/a.jar"
    );
}

const OVERRIDES: &str = r#"bundle:
  name: overrides
variables:
  greeting:
    default: hello
  subject:
    description: required, no default
  policy:
    lookup:
      cluster_policy: shared-policy
  joined:
    default: ${var.greeting} ${var.subject}
resources:
  jobs:
    j:
      name: ${var.joined}
targets:
  one:
    variables:
      subject: world
  both:
    variables:
      greeting: hi
      subject: there
  missing:
    variables:
      greeting: hey
  undeclared:
    variables:
      subjct: typo
      subject: x
  lookups:
    variables:
      subject: x
      greeting:
        lookup:
          cluster: my-cluster
"#;

#[test]
fn target_and_environment_precedence() {
    let b = Bundle::new(&[("databricks.yml", OVERRIDES)]);
    let name = |args: &[&str], env: &[(&str, &str)]| {
        let r = b.run_env(env, args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r.json()["resources"]["jobs"]["j"]["name"].clone()
    };
    assert_eq!(
        name(&["-t", "one", "validate", "-o", "json"], &[]),
        "hello world"
    );
    assert_eq!(
        name(&["-t", "both", "validate", "-o", "json"], &[]),
        "hi there"
    );
    assert_eq!(
        name(
            &["-t", "both", "validate", "-o", "json"],
            &[("BUNDLE_VAR_subject", "env")]
        ),
        "hi env"
    );
    assert_eq!(
        name(
            &[
                "-t",
                "both",
                "--var",
                "subject=flag",
                "validate",
                "-o",
                "json"
            ],
            &[("BUNDLE_VAR_subject", "env")]
        ),
        "hi flag"
    );
}

#[test]
fn missing_and_undeclared_variables_are_errors() {
    let b = Bundle::new(&[("databricks.yml", OVERRIDES)]);
    let r = b.run(&["-t", "missing", "validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(
        messages(&v),
        vec!["no value assigned to required variable `subject`".to_string()]
    );
    let help = v["diagnostics"][0]["help"].as_str().unwrap_or("");
    assert!(
        help.contains("--var subject=")
            && help.contains("BUNDLE_VAR_subject")
            && help.contains(".databricks/bundle/missing/variable-overrides.json"),
        "{help}"
    );

    let r = b.run(&["-t", "undeclared", "validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    let v = r.json();
    assert_eq!(
        messages(&v),
        vec!["target `undeclared` assigns variable `subjct`, which is not declared".to_string()]
    );
    assert!(v["diagnostics"][0]["help"]
        .as_str()
        .unwrap_or("")
        .contains("`subject`"));
}

#[test]
fn lookups_are_pending_and_a_target_lookup_replaces_the_default() {
    let b = Bundle::new(&[("databricks.yml", OVERRIDES)]);
    let r = b.run(&["-t", "lookups", "validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    // Pending lookups stay as references until plan time.
    assert_eq!(v["resources"]["jobs"]["j"]["name"], "${var.greeting} x");
    assert_eq!(
        v["variables"]["greeting"]["lookup"],
        json!({"cluster": "my-cluster"})
    );
    assert!(v["variables"]["greeting"].get("default").is_none());
    let text = b.run(&["-t", "lookups", "validate"]);
    assert!(
        text.stdout.contains("Pending lookups")
            && text.stdout.contains("var.greeting")
            && text.stdout.contains("var.policy"),
        "{}",
        text.stdout
    );
}

#[test]
fn typed_target_overrides_keep_their_type() {
    let yaml = "bundle:\n  name: typed\nvariables:\n  count:\n    default: 2\n  flag:\n    default: true\n  label:\n    default: a\nresources:\n  database_instances:\n    db:\n      name: db-${var.label}\n      capacity: CU_1\n      node_count: ${var.count}\n      stopped: ${var.flag}\ntargets:\n  base: {}\n  changed:\n    variables:\n      count: 3\n      flag: false\n      label: b\n";
    let b = Bundle::new(&[("databricks.yml", yaml)]);
    let base = b.run(&["-t", "base", "validate", "-o", "json"]).json();
    assert_eq!(
        base["resources"]["database_instances"]["db"],
        json!({"name": "db-a", "capacity": "CU_1", "node_count": 2, "stopped": true})
    );
    let changed = b.run(&["-t", "changed", "validate", "-o", "json"]).json();
    assert_eq!(
        changed["resources"]["database_instances"]["db"],
        json!({"name": "db-b", "capacity": "CU_1", "node_count": 3, "stopped": false})
    );
}

const FILE_DEFAULTS: &str = r#"bundle:
  name: file-defaults
variables:
  spec:
    type: complex
  key:
  workers:
resources:
  jobs:
    j:
      name: file
      job_clusters:
        - job_cluster_key: ${var.key}
          new_cluster:
            node_type_id: ${var.spec.node_type_id}
            num_workers: ${var.workers}
targets:
  default:
    default: true
    variables:
      workers: 1
      spec:
        node_type_id: from-target
      key: from-target
  bare: {}
  bad_json: {}
  not_object: {}
  complex_for_string: {}
  string_for_complex: {}
"#;

fn file_bundle() -> Bundle {
    let o = |t: &str| format!(".databricks/bundle/{t}/variable-overrides.json");
    let files: Vec<(String, String)> = vec![
        ("databricks.yml".into(), FILE_DEFAULTS.into()),
        (
            o("default"),
            r#"{"spec": {"node_type_id": "from-file"}, "key": "file-key", "workers": 5}"#.into(),
        ),
        (o("bare"), r#"{"key": "k", "workers": 2}"#.into()),
        (o("bad_json"), "nope".into()),
        (o("not_object"), r#"["x"]"#.into()),
        (
            o("complex_for_string"),
            r#"{"key": {"a": 1}, "spec": {}, "workers": 1}"#.into(),
        ),
        (
            o("string_for_complex"),
            r#"{"spec": "flat", "key": "k", "workers": 1}"#.into(),
        ),
    ];
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Bundle::new(&refs)
}

#[test]
fn overrides_file_sits_between_environment_and_target_defaults() {
    let b = file_bundle();
    let cluster = |r: support::Run| {
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.json()["resources"]["jobs"]["j"]["job_clusters"][0].clone()
    };
    assert_eq!(
        cluster(b.run(&["validate", "-o", "json"])),
        json!({"job_cluster_key": "file-key", "new_cluster": {"node_type_id": "from-file", "num_workers": 5}})
    );
    assert_eq!(
        cluster(b.run(&["--var", "key=flag", "validate", "-o", "json"]))["job_cluster_key"],
        "flag"
    );
    assert_eq!(
        cluster(b.run_env(&[("BUNDLE_VAR_key", "env")], &["validate", "-o", "json"]))
            ["job_cluster_key"],
        "env"
    );
}

#[test]
fn overrides_file_errors() {
    let b = file_bundle();
    let first = |t: &str| {
        let r = b.run(&["-t", t, "validate", "-o", "json"]);
        assert_eq!(r.code, 1, "{t}");
        messages(&r.json())
    };
    assert!(
        first("bad_json")
            .iter()
            .any(|m| m
                .starts_with("cannot parse .databricks/bundle/bad_json/variable-overrides.json"))
    );
    assert!(first("not_object")
        .iter()
        .any(|m| m.contains("must be a JSON object")));
    let has = |t: &str, m: &str| first(t).iter().any(|x| x == m);
    assert!(has(
        "complex_for_string",
        "variable `key` is not of type complex, but its value in variable-overrides.json is a map"
    ));
    assert!(has(
        "string_for_complex",
        "variable `spec` is of type complex, but its value in variable-overrides.json is not"
    ));
    assert_eq!(
        first("bare"),
        vec!["no value assigned to required variable `spec`".to_string()]
    );
}

#[test]
fn variable_cycle_is_detected() {
    let b = Bundle::new(&[("databricks.yml", "bundle:\n  name: loop\nvariables:\n  x:\n    default: ${var.y}\n  y:\n    default: ${var.x}\n")]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    let msgs = messages(&r.json());
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].starts_with("cycle detected: var.")
            && msgs[0].contains("var.x")
            && msgs[0].contains("var.y"),
        "{msgs:?}"
    );
}

fn typo_help(yaml: &str) -> (Vec<String>, Vec<String>) {
    let b = Bundle::new(&[("databricks.yml", yaml)]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let v = r.json();
    let helps = v["diagnostics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d["help"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    (messages(&v), helps)
}

#[test]
fn reference_typos_suggest_close_names() {
    let (m, h) = typo_help("bundle:\n  name: t\nvariables:\n  region:\n    default: eu\nresources:\n  jobs:\n    j:\n      name: ${var.regon}\n");
    assert_eq!(
        m,
        vec![
            "reference does not exist: ${var.regon} (no variable `regon` is declared)".to_string()
        ]
    );
    assert_eq!(h, vec!["did you mean `${var.region}`?".to_string()]);

    let (_, h) = typo_help("bundle:\n  name: t\nvariables:\n  port:\n    default: 1\n  ports:\n    default: 2\nresources:\n  jobs:\n    j:\n      name: ${var.prt}\n");
    assert_eq!(
        h,
        vec!["did you mean one of `${var.port}`, `${var.ports}`?".to_string()]
    );

    let (_, h) = typo_help(
        "bundle:\n  name: t\nresources:\n  jobs:\n    j:\n      name: ${workspace.stat_path}\n",
    );
    assert!(h[0].contains("`${workspace.state_path}`"), "{h:?}");

    // Inside a complex value, the suggestion is at the level that failed.
    let (m, h) = typo_help("bundle:\n  name: t\nvariables:\n  spec:\n    type: complex\n    default:\n      version: '1'\nresources:\n  jobs:\n    a:\n      name: ${var.spec.verison}\n    b:\n      name: ${var.spce.verison}\n");
    assert_eq!(
        m.len(),
        2,
        "every typo is reported, not only the first: {m:?}"
    );
    assert_eq!(h[0], "did you mean `${var.spec.version}`?");
    assert_eq!(h[1], "did you mean `${var.spec.verison}`?");
}
