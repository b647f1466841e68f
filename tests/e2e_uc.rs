//! End-to-end: Unity Catalog catalogs, schemas, volumes and their grants through the real
//! binary against a fresh emulator: deploy, no-op plan, in-place updates (comment, grants,
//! volume rename), a replacement (schema rename, its volume following), implicit name links
//! (schema → catalog, volume → catalog/schema, synced table → source catalog/schema and
//! pipeline storage), and a destroy that leaves nothing.

mod common;
mod e2e_support;

use common::Emulator;
use e2e_support::{run, Api, TestBundle};
use serde_json::{json, Value};

const UC: &str = "/api/2.1/unity-catalog";

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--instance-ready-ms", "200"])
}

fn plan_json(emu: &Emulator, b: &TestBundle) -> Value {
    let out = run(emu, b, &["-o", "json", "plan"]).expect(0);
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

fn actions_of(plan: &Value, addr: &str) -> Value {
    plan["resource_changes"]
        .as_array()
        .and_then(|rc| rc.iter().find(|c| c["address"] == addr))
        .map(|c| c["actions"].clone())
        .unwrap_or(Value::Null)
}

fn grants(api: &Api, securable: &str, full_name: &str) -> Value {
    api.get(&format!("{UC}/permissions/{securable}/{full_name}"), &[])
        .map(|v| v["privilege_assignments"].clone())
        .unwrap_or(Value::Null)
}

fn get(api: &Api, path: &str) -> Option<Value> {
    api.get(&format!("{UC}{path}"), &[])
}

#[test]
fn uc_bundle_lifecycle() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_uc");

    // The graph orders by references and by names.
    let out = run(&emu, &b, &["-o", "json", "graph"]).expect(0);
    let graph: Value = serde_json::from_str(&out.stdout).expect("graph JSON");
    let edges: Vec<(String, String, String)> = graph["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap_or_default().to_string(),
                e["to"].as_str().unwrap_or_default().to_string(),
                e["via"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (from, to, via) in [
        (
            "resources.schemas.raw",
            "resources.catalogs.lake",
            "${resources.catalogs.lake.name}",
        ),
        (
            "resources.schemas.gold",
            "resources.catalogs.lake",
            "implicit: catalog_name",
        ),
        (
            "resources.volumes.files",
            "resources.catalogs.lake",
            "implicit: catalog_name",
        ),
        (
            "resources.volumes.files",
            "resources.schemas.raw",
            "${resources.schemas.raw.name}",
        ),
        (
            "resources.synced_database_tables.events",
            "resources.catalogs.lake",
            "implicit: spec.source_table_full_name",
        ),
        (
            "resources.synced_database_tables.events",
            "resources.schemas.gold",
            "implicit: spec.new_pipeline_spec.storage_schema",
        ),
    ] {
        assert!(
            edges.contains(&(from.into(), to.into(), via.into())),
            "missing edge {from} -> {to} ({via}) in {edges:?}"
        );
    }

    // Deploy creates everything, grants included.
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 7 to add, 0 to change, 0 to destroy."),
        "{}",
        out.stdout
    );
    let cat = get(&api, "/catalogs/lake_main").expect("catalog");
    assert_eq!(cat["comment"], "Landing catalog");
    assert_eq!(cat["properties"]["owner_team"], "data-team");
    assert_eq!(
        grants(&api, "catalog", "lake_main"),
        json!([{"principal": "data-team", "privileges": ["BROWSE", "USE_CATALOG"]}])
    );
    assert!(
        get(&api, "/schemas/lake_main.raw").is_some(),
        "Raw is stored lower-cased"
    );
    assert!(get(&api, "/schemas/lake_main.gold").is_some());
    assert_eq!(
        grants(&api, "schema", "lake_main.raw"),
        json!([{"principal": "data-team", "privileges": ["CREATE_TABLE", "USE_SCHEMA"]},
               {"principal": "readers", "privileges": ["SELECT", "USE_SCHEMA"]}])
    );
    let vol = get(&api, "/volumes/lake_main.raw.landing").expect("volume");
    assert_eq!(vol["volume_type"], "MANAGED");
    assert_eq!(
        grants(&api, "volume", "lake_main.raw.landing"),
        json!([{"principal": "readers", "privileges": ["READ_VOLUME"]}])
    );
    assert_eq!(
        b.state_id("resources.volumes.files").as_deref(),
        Some("lake_main.raw.landing")
    );

    // Nothing changed: a no-op (names compare lower-cased, grants as sets).
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // A comment and a grant change: updates in place, only the difference sent.
    b.edit("comment: raw files", "comment: raw landing files");
    b.edit(
        "        - principal: readers\n          privileges: [READ_VOLUME]",
        "        - principal: readers\n          privileges: [READ_VOLUME, WRITE_VOLUME]",
    );
    let plan = plan_json(&emu, &b);
    assert_eq!(
        actions_of(&plan, "resources.schemas.raw"),
        json!(["update"])
    );
    assert_eq!(
        actions_of(&plan, "resources.volumes.files"),
        json!(["update"])
    );
    assert_eq!(
        actions_of(&plan, "resources.catalogs.lake"),
        json!(["no-op"])
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(
        get(&api, "/schemas/lake_main.raw").expect("schema")["comment"],
        "raw landing files"
    );
    assert_eq!(
        grants(&api, "volume", "lake_main.raw.landing"),
        json!([{"principal": "readers", "privileges": ["READ_VOLUME", "WRITE_VOLUME"]}])
    );
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // A grant made outside the bundle is drift and is revoked.
    let (status, v) = {
        let body = json!({"changes": [{"principal": "intruder", "add": ["MODIFY"]}]});
        api_patch(&api, "/permissions/schema/lake_main.gold", &body)
    };
    assert_eq!(status, 200, "{v}");
    // gold sets no grants: it does not manage them, so nothing changes.
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    let (status, v) = api_patch(
        &api,
        "/permissions/schema/lake_main.raw",
        &json!({"changes": [{"principal": "intruder", "add": ["MODIFY"]}]}),
    );
    assert_eq!(status, 200, "{v}");
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(out.stdout.contains("intruder"), "{}", out.stdout);
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    let raw_grants = grants(&api, "schema", "lake_main.raw");
    assert!(!raw_grants.to_string().contains("intruder"), "{raw_grants}");

    // Renaming a volume is an update (new id), not a replacement.
    b.edit("name: landing", "name: inbox");
    let plan = plan_json(&emu, &b);
    assert_eq!(
        actions_of(&plan, "resources.volumes.files"),
        json!(["update"])
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(get(&api, "/volumes/lake_main.raw.landing").is_none());
    assert_eq!(
        grants(&api, "volume", "lake_main.raw.inbox"),
        json!([{"principal": "readers", "privileges": ["READ_VOLUME", "WRITE_VOLUME"]}])
    );
    assert_eq!(
        b.state_id("resources.volumes.files").as_deref(),
        Some("lake_main.raw.inbox")
    );
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // Renaming a schema recreates it, and the volume inside follows.
    b.edit("name: Raw", "name: bronze");
    let plan = plan_json(&emu, &b);
    assert_eq!(
        actions_of(&plan, "resources.schemas.raw"),
        json!(["delete", "create"])
    );
    assert_eq!(
        actions_of(&plan, "resources.volumes.files"),
        json!(["delete", "create"])
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(get(&api, "/schemas/lake_main.raw").is_none());
    assert!(get(&api, "/volumes/lake_main.bronze.inbox").is_some());
    assert_eq!(
        grants(&api, "schema", "lake_main.bronze"),
        json!([{"principal": "data-team", "privileges": ["CREATE_TABLE", "USE_SCHEMA"]},
               {"principal": "readers", "privileges": ["SELECT", "USE_SCHEMA"]}])
    );
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // Destroy leaves nothing.
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    let catalogs = api.list(&format!("{UC}/catalogs"), "catalogs", &[]);
    assert!(catalogs.is_empty(), "catalogs left: {catalogs:?}");
    assert!(get(&api, "/schemas/lake_main.gold").is_none());
    assert!(get(&api, "/volumes/lake_main.bronze.inbox").is_none());
    assert!(api.instances().is_empty());
}

fn api_patch(api: &Api, path: &str, body: &Value) -> (u16, Value) {
    api.patch(&format!("{UC}{path}"), body)
}

/// `grants` entries need a principal and privileges (the CLI's rule), reported at the entry;
/// dropping an applied `grants` block is planned as a change and revokes those grants.
#[test]
fn grants_validation_and_removal() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_uc");
    b.edit(
        "        - principal: readers\n          privileges: [READ_VOLUME]",
        "        - principal: readers\n          privileges: []\n        - privileges: [READ_VOLUME]",
    );
    let out = run(&emu, &b, &["validate"]).expect(1);
    assert!(
        out.stderr
            .contains("resources.volumes.files.grants[0] grants no privileges"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("resources.volumes.files.grants[1] names no principal"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("databricks.yml:"),
        "located: {}",
        out.stderr
    );
    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(1);
    assert!(
        out.stderr.contains("grants no privileges"),
        "{}",
        out.stderr
    );
    assert!(api
        .list(&format!("{UC}/catalogs"), "catalogs", &[])
        .is_empty());

    b.edit(
        "          privileges: []\n        - privileges: [READ_VOLUME]",
        "          privileges: [READ_VOLUME]",
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    b.edit(
        "      grants:\n        - principal: ${var.team}\n          privileges: [USE_CATALOG, BROWSE]\n",
        "",
    );
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        out.stdout
            .contains("resources.catalogs.lake will be updated in-place"),
        "{}",
        out.stdout
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(grants(&api, "catalog", "lake_main"), json!([]));
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
}

/// A MANAGED volume with a location, or an EXTERNAL one without, is refused by validate.
#[test]
fn volume_location_is_checked() {
    let emu = emulator();
    let b = TestBundle::fixture("e2e_uc");
    b.edit(
        "      name: landing\n",
        "      name: landing\n      storage_location: s3://bucket/landing\n",
    );
    let out = run(&emu, &b, &["validate"]).expect(1);
    assert!(
        out.stderr
            .contains("resources.volumes.files.storage_location is set on a MANAGED volume"),
        "{}",
        out.stderr
    );
    b.edit(
        "      storage_location: s3://bucket/landing\n",
        "      volume_type: EXTERNAL\n",
    );
    let out = run(&emu, &b, &["validate"]).expect(1);
    assert!(
        out.stderr
            .contains("resources.volumes.files is an EXTERNAL volume without a storage_location"),
        "{}",
        out.stderr
    );
}

/// A catalog's new name replaces it, its bundle schema and volume first, and converges
/// (a rename in place would carry the schema along and collide with its recreation).
#[test]
fn renaming_a_catalog_replaces_it_with_its_children() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_uc_rename");
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    b.edit("name: cat_one", "name: cat_two");
    let plan = plan_json(&emu, &b);
    for addr in [
        "resources.catalogs.c",
        "resources.schemas.s",
        "resources.volumes.v",
    ] {
        assert_eq!(
            actions_of(&plan, addr),
            json!(["delete", "create"]),
            "{addr}"
        );
    }
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(get(&api, "/catalogs/cat_one").is_none());
    assert!(get(&api, "/volumes/cat_two.s1.v1").is_some());
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(api
        .list(&format!("{UC}/catalogs"), "catalogs", &[])
        .is_empty());
}

/// With injected 429/503s and lost responses, the deploy that succeeds leaves every grant in
/// place: an object adopted after a lost create response still gets its grants (the plan right
/// after is a no-op), and destroy leaves nothing.
#[test]
fn grants_survive_lost_responses() {
    let emu = Emulator::start_with(&[
        "--no-postgres",
        "--instance-ready-ms",
        "100",
        "--lost-response-rate",
        "0.25",
        "--fail-rate",
        "0.1",
        "--seed",
        "9",
    ]);
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_uc");
    let mut ok = false;
    for i in 0..4 {
        let args: &[&str] = if i == 0 {
            &["deploy", "--auto-approve"]
        } else {
            &["deploy", "--auto-approve", "--force-lock"]
        };
        if run(&emu, &b, args).code == 0 {
            ok = true;
            break;
        }
    }
    assert!(ok, "deploy never succeeded under faults");
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.code, 0,
        "not converged:\n{}\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(
        grants(&api, "schema", "lake_main.raw"),
        json!([{"principal": "data-team", "privileges": ["CREATE_TABLE", "USE_SCHEMA"]},
               {"principal": "readers", "privileges": ["SELECT", "USE_SCHEMA"]}])
    );
    let mut destroyed = false;
    for _ in 0..4 {
        if run(&emu, &b, &["destroy", "--auto-approve", "--force-lock"]).code == 0 {
            destroyed = true;
            break;
        }
    }
    assert!(destroyed, "destroy never succeeded under faults");
    assert!(api
        .list(&format!("{UC}/catalogs"), "catalogs", &[])
        .is_empty());
}
