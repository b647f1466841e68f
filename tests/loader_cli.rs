//! `lakebundle validate` end to end: the real binary on the examples and on
//! bundles with seeded mistakes (diagnostics snapshotted with insta).

#[path = "loader_support/mod.rs"]
mod support;

use support::{example, messages, run_at, run_in, Bundle};

fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn examples_validate() {
    for name in ["minimal", "production", "multi-file"] {
        let r = run_in(&example(name), &[], &["validate"]);
        assert_eq!(r.code, 0, "{name}:\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("Validation OK"), "{name}: {}", r.stdout);
    }
    // The multi-file prod target too (production mode with a pinned root path).
    let r = run_in(&example("multi-file"), &[], &["-t", "prod", "validate"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn production_example_resolves_config_refs_and_keeps_output_refs() {
    let r = run_in(&example("production"), &[], &["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let res = &v["resources"];
    assert_eq!(
        res["database_catalogs"]["my_cat"]["database_instance_name"],
        "my-instance"
    );
    assert_eq!(
        res["synced_database_tables"]["features_sync"]["name"],
        "my_catalog.my_database.customer_features"
    );
    assert_eq!(
        res["synced_database_tables"]["features_sync"]["spec"]["source_table_full_name"],
        "dev_catalog.dev_schema.customer_features"
    );
    assert_eq!(
        res["jobs"]["sync_schedule"]["tasks"][0]["pipeline_task"]["pipeline_id"],
        "${resources.synced_database_tables.features_sync.data_synchronization_status.pipeline_id}"
    );
    // Development mode: jobs only get the prefix, tag and paused schedule.
    assert_eq!(
        res["jobs"]["sync_schedule"]["name"],
        "[dev ${workspace.current_user.short_name}] sync-pipeline-schedule"
    );
    assert_eq!(
        res["jobs"]["sync_schedule"]["schedule"]["pause_status"],
        "PAUSED"
    );
    assert_eq!(res["database_instances"]["my_db"]["name"], "my-instance");
    assert_eq!(res["apps"]["my_app"]["name"], "my-lakebase-app");
    assert_eq!(v["bundle"]["target"], "dev");
    assert_eq!(v["variables"]["source_catalog"]["value"], "dev_catalog");
    assert_eq!(
        v["workspace"]["file_path"],
        "~/.bundle/lakebase-app/dev/files"
    );

    let prod = run_in(
        &example("production"),
        &[],
        &["-t", "prod", "validate", "-o", "json"],
    )
    .json();
    assert_eq!(
        prod["resources"]["jobs"]["sync_schedule"]["name"],
        "sync-pipeline-schedule"
    );
    assert!(prod["resources"]["jobs"]["sync_schedule"]["schedule"]
        .get("pause_status")
        .is_none());
}

#[test]
fn multi_file_example_uses_nested_and_complex_variables() {
    let dev = run_in(&example("multi-file"), &[], &["validate", "-o", "json"]).json();
    assert_eq!(
        dev["resources"]["database_catalogs"]["orders_catalog"]["name"],
        "orders_dev"
    );
    assert_eq!(
        dev["resources"]["synced_database_tables"]["customers"]["spec"]["new_pipeline_spec"],
        serde_json::json!({"storage_catalog": "main", "storage_schema": "lakebase_pipelines"})
    );
    let prod = run_in(
        &example("multi-file"),
        &[],
        &["-t", "prod", "validate", "-o", "json"],
    )
    .json();
    let inst = &prod["resources"]["database_instances"]["orders"];
    assert_eq!(inst["name"], "orders-prod");
    assert_eq!(inst["capacity"], "CU_2");
    assert_eq!(inst["node_count"], 2);
    assert_eq!(
        prod["resources"]["database_catalogs"]["orders_catalog"]["name"],
        "orders_prod"
    );
    assert_eq!(
        prod["workspace"]["root_path"],
        "/Workspace/Shared/.bundle/orders-platform/prod"
    );
    assert_eq!(
        prod["resources"]["synced_database_tables"]["customers"]["spec"]["new_pipeline_spec"]
            ["storage_schema"],
        "lakebase_pipelines_prod"
    );
}

const BASE: &str = "bundle:\n  name: seeded\n";

#[test]
fn typo_field_gets_did_you_mean() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!("{BASE}resources:\n  database_instances:\n    db:\n      name: my-instance\n      capacty: CU_1\n"),
    )]);
    let r = b.run(&["validate"]);
    assert!(
        r.stderr.contains("did you mean `capacity`?"),
        "{}",
        r.stderr
    );
    snapshot("typo_field", &r.stderr);
    let strict = b.run(&["validate", "--strict"]);
    assert_eq!(
        strict.code, 1,
        "--strict turns the unknown-field warning into an error"
    );
}

#[test]
fn bad_references_are_errors_with_suggestions() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!(
            "{BASE}variables:\n  host:\n    default: h\nresources:\n  database_instances:\n    db:\n      name: my-instance\n      capacity: CU_1\n  database_catalogs:\n    cat:\n      name: c\n      database_instance_name: ${{resources.database_instances.dbb.name}}\n      database_name: ${{resources.database_instances.db.nmae}}\n  jobs:\n    j:\n      name: ${{var.hots}}\n"
        ),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1);
    snapshot("bad_refs", &r.stderr);
    let j = b.run(&["validate", "-o", "json"]);
    assert_eq!(j.code, 1);
    let v = j.json();
    let msgs = messages(&v);
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let d = &v["diagnostics"][0];
    assert_eq!(d["file"], "databricks.yml");
    assert!(d["line"].as_u64().is_some() && d["column"].as_u64().is_some());
    assert!(v["diagnostics"].as_array().is_some_and(|a| a
        .iter()
        .any(|d| d["help"].as_str().unwrap_or("").contains("${var.host}"))));
}

#[test]
fn variable_cycle_is_one_error_listing_every_edge() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!("{BASE}variables:\n  a:\n    default: ${{var.b}}\n  b:\n    default: x-${{var.c}}\n  c:\n    default: ${{var.a}}\n"),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.matches("cycle detected").count(),
        1,
        "{}",
        r.stderr
    );
    snapshot("variable_cycle", &r.stderr);
}

#[test]
fn resource_cycle_through_outputs_is_reported() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!("{BASE}resources:\n  jobs:\n    foo:\n      name: ${{resources.jobs.bar.id}}\n    bar:\n      name: ${{resources.jobs.foo.id}}\n"),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1);
    snapshot("resource_cycle", &r.stderr);
}

#[test]
fn missing_variable_names_uses_and_ways_to_set_it() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!(
            "{BASE}variables:\n  catalog:\n    description: the catalog\nresources:\n  database_catalogs:\n    cat:\n      name: ${{var.catalog}}\n      database_instance_name: inst\n      database_name: ${{var.catalog}}_db\n"
        ),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1);
    snapshot("missing_variable", &r.stderr);
    assert!(
        r.stderr.contains("--var catalog=")
            && r.stderr.contains("BUNDLE_VAR_catalog")
            && r.stderr.contains("variable-overrides.json")
    );
    let ok = b.run(&["--var", "catalog=main", "validate", "-o", "json"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(
        ok.json()["resources"]["database_catalogs"]["cat"]["database_name"],
        "main_db"
    );
}

#[test]
fn duplicate_resource_key_across_files_names_both() {
    let b = Bundle::new(&[
        ("databricks.yml", &format!("{BASE}include:\n  - resources/*.yml\nresources:\n  jobs:\n    etl:\n      name: etl\n")),
        ("resources/more.yml", "resources:\n  jobs:\n    etl:\n      name: etl-again\n"),
    ]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("resources/more.yml:3:5") && r.stderr.contains("databricks.yml:7:5"),
        "{}",
        r.stderr
    );
    snapshot("duplicate_resource", &r.stderr);
}

#[test]
fn duplicate_yaml_key_and_syntax_error() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!("{BASE}workspace:\n  host: a\n  host: b\n"),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1);
    snapshot("duplicate_key", &r.stderr);
    let b = Bundle::new(&[("databricks.yml", "bundle:\n  name: [unclosed\n")]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    assert!(messages(&r.json())[0].starts_with("invalid YAML"));
}

#[test]
fn unknown_target_suggests_the_close_one() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!("{BASE}targets:\n  dev:\n    default: true\n  prod: {{}}\n"),
    )]);
    let r = b.run(&["-t", "prdo", "validate"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("did you mean `prod`?"), "{}", r.stderr);
    let env = b.run_env(
        &[("DATABRICKS_BUNDLE_TARGET", "prod")],
        &["validate", "-o", "json"],
    );
    assert_eq!(env.json()["bundle"]["target"], "prod");
    let default = b.run(&["validate", "-o", "json"]);
    assert_eq!(default.json()["bundle"]["target"], "dev");
}

#[test]
fn root_discovery_from_env_and_ancestors() {
    let b = Bundle::new(&[("databricks.yml", BASE), ("sub/deeper/readme.txt", "x")]);
    let from_sub = run_at(
        &b.path().join("sub/deeper"),
        &[],
        &["validate", "-o", "json"],
    );
    assert_eq!(from_sub.code, 0, "{}", from_sub.stderr);
    assert_eq!(from_sub.json()["bundle"]["name"], "seeded");
    let elsewhere = tempfile::tempdir().expect("tmp");
    let root = b.path().to_string_lossy().to_string();
    let from_env = run_at(
        elsewhere.path(),
        &[("DATABRICKS_BUNDLE_ROOT", &root)],
        &["validate", "-o", "json"],
    );
    assert_eq!(from_env.code, 0, "{}", from_env.stderr);
    let none = run_at(elsewhere.path(), &[], &["validate"]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("no bundle configuration found"),
        "{}",
        none.stderr
    );
    let two = Bundle::new(&[("databricks.yml", BASE), ("bundle.yml", BASE)]);
    let r = two.run(&["validate"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("more than one bundle root file"),
        "{}",
        r.stderr
    );
}

#[test]
fn include_rules() {
    // A plain path that matches nothing is an error; an empty glob is fine.
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!("{BASE}include:\n  - missing.yml\n  - none/*.yml\n"),
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        messages(&r.json()),
        vec!["include `missing.yml` does not match any file".to_string()]
    );
    // Non-YAML matches are errors; `../` works; includes may declare targets and variables.
    let root = tempfile::tempdir().expect("tmp");
    let write = |p: &str, t: &str| {
        let f = root.path().join(p);
        std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        std::fs::write(f, t).expect("write");
    };
    write(
        "bundle/databricks.yml",
        &format!("{BASE}include:\n  - ../common/*.yml\n  - conf/*\n"),
    );
    write(
        "common/vars.yml",
        "variables:\n  who:\n    default: shared\ntargets:\n  t1:\n    default: true\n",
    );
    write(
        "bundle/conf/jobs.yml",
        "resources:\n  jobs:\n    j:\n      name: ${var.who}\n",
    );
    write("bundle/conf/notes.txt", "not config");
    let r = run_in(
        &root.path().join("bundle"),
        &[],
        &["validate", "-o", "json"],
    );
    assert_eq!(r.code, 1);
    assert!(
        messages(&r.json())[0].contains("conf/notes.txt is not a YAML or JSON file"),
        "{}",
        r.stdout
    );
    std::fs::remove_file(root.path().join("bundle/conf/notes.txt")).expect("rm");
    let r = run_in(
        &root.path().join("bundle"),
        &[],
        &["validate", "-o", "json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(v["resources"]["jobs"]["j"]["name"], "shared");
    assert_eq!(v["bundle"]["target"], "t1");
}

#[test]
fn legacy_environments_and_unknown_kinds_warn() {
    let b = Bundle::new(&[(
        "bundle.yml",
        &format!("{BASE}resources:\n  vector_search_endpoint:\n    p:\n      name: ${{bundle.environment}}\n  jobs:\n    j:\n      name: ${{bundle.environment}}-job\nenvironments:\n  staging:\n    default: true\n"),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("`environments` is the legacy name of `targets`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("unknown resource kind `vector_search_endpoint` under `resources`"),
        "{}",
        r.stderr
    );
    let v = b.run(&["validate", "-o", "json"]).json();
    assert_eq!(v["resources"]["jobs"]["j"]["name"], "staging-job");
    assert_eq!(b.run(&["validate", "--strict"]).code, 1);
}

#[test]
fn whole_value_references_keep_their_type_and_shell_text_stays() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!(
            "{BASE}variables:\n  nodes:\n    default: 2\n  ha:\n    default: true\nresources:\n  database_instances:\n    db:\n      name: db-${{var.nodes}}\n      capacity: CU_1\n      node_count: ${{var.nodes}}\n      enable_readable_secondaries: ${{var.ha}}\n  apps:\n    a:\n      name: app\n      source_code_path: ./app\n      description: \"run on $${{PORT}} or ${{DATABRICKS_APP_PORT:-8000}}\"\n"
        ),
    ), ("app/app.py", "")]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let db = &v["resources"]["database_instances"]["db"];
    assert_eq!(db["node_count"], 2);
    assert_eq!(db["enable_readable_secondaries"], true);
    assert_eq!(db["name"], "db-2");
    assert_eq!(
        v["resources"]["apps"]["a"]["description"],
        "run on ${PORT} or ${DATABRICKS_APP_PORT:-8000}"
    );
    let over = b
        .run(&["--var", "nodes=3", "validate", "-o", "json"])
        .json();
    assert_eq!(
        over["resources"]["database_instances"]["db"]["node_count"],
        3
    );
}

#[test]
fn embedding_a_map_in_a_string_is_an_error() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!("{BASE}variables:\n  m:\n    type: complex\n    default: {{a: 1}}\nresources:\n  jobs:\n    j:\n      name: x-${{var.m}}\n"),
    )]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 1);
    assert!(
        messages(&r.json())[0].contains("cannot be part of a longer string"),
        "{}",
        r.stdout
    );
}

#[test]
fn unknown_resource_kinds_get_did_you_mean() {
    // A typo'd kind in a reference inside a longer string, a typo'd kind key
    // under `resources`, and a key that exists under another kind.
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!(
            "{BASE}resources:\n  database_instnces:\n    other: {{}}\n  database_instances:\n    my_db:\n      name: my-instance\n      capacity: CU_1\n  database_catalogs:\n    cat:\n      name: \"cat-${{resources.database_instance.my_db.name}}\"\n      database_instance_name: ${{resources.database_catalogs.my_db.name}}\n      database_name: db\n"
        ),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        !r.stderr.contains("not supported by lakebundle"),
        "a typo is not an unsupported kind: {}",
        r.stderr
    );
    snapshot("unknown_kind", &r.stderr);
    let v = b.run(&["validate", "-o", "json"]).json();
    let diags = v["diagnostics"].as_array().cloned().unwrap_or_default();
    let find = |needle: &str| {
        diags
            .iter()
            .find(|d| d["message"].as_str().unwrap_or("").contains(needle))
            .cloned()
            .unwrap_or_else(|| panic!("{needle}: {diags:?}"))
    };
    let kind_ref = find("unknown resource kind `database_instance`");
    assert_eq!(kind_ref["severity"], "error");
    // Line 12, at the `$` of the reference inside the quoted string.
    assert_eq!(
        (kind_ref["line"].as_u64(), kind_ref["column"].as_u64()),
        (Some(12), Some(18))
    );
    assert_eq!(kind_ref["help"], "did you mean `database_instances`?");
    let kind_key = find("unknown resource kind `database_instnces`");
    assert_eq!(kind_key["severity"], "warning");
    assert_eq!(kind_key["help"], "did you mean `database_instances`?");
    let other_kind = find("no resource `my_db` of kind `database_catalogs`");
    assert_eq!(
        other_kind["help"],
        "did you mean `${resources.database_instances.my_db.name}`?"
    );
    // A kind lakebundle knows but does not deploy keeps its warning, and
    // references to it stay as written (see legacy_environments_...).
}

#[test]
fn undeclared_variable_says_so_and_how_to_declare_it() {
    let b = Bundle::new(&[(
        "databricks.yml",
        &format!(
            "{BASE}variables:\n  catalog:\n    default: main\nresources:\n  jobs:\n    j:\n      name: \"etl ${{var.catalgo}} ${{var.warehouse_id}}\"\n"
        ),
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1);
    snapshot("undeclared_variable", &r.stderr);
    let v = b.run(&["validate", "-o", "json"]).json();
    let d = &v["diagnostics"];
    assert_eq!(
        d[0]["message"],
        "reference does not exist: ${var.catalgo} (no variable `catalgo` is declared)"
    );
    assert_eq!(
        (d[0]["line"].as_u64(), d[0]["column"].as_u64()),
        (Some(9), Some(18))
    );
    assert_eq!(d[0]["help"], "did you mean `${var.catalog}`?");
    assert_eq!(
        (d[1]["line"].as_u64(), d[1]["column"].as_u64()),
        (Some(9), Some(33))
    );
    assert!(
        d[1]["help"]
            .as_str()
            .unwrap_or("")
            .starts_with("declare it under `variables:`"),
        "{}",
        d[1]
    );
}
