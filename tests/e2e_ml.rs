//! End-to-end: the machine-learning kinds (MLflow experiments, legacy registry models, Unity
//! Catalog registered models, model serving endpoints) through the real binary against a fresh
//! emulator: the implicit edge from a served entity to its registered model, deploy, a no-op
//! plan, in-place updates of each kind (experiment rename and tags, model description, UC
//! model comment and grants, endpoint config rollout and tags), replacements where the
//! contract has no update (legacy model rename), permissions on the server-assigned ids, and
//! a destroy that leaves nothing.

mod common;
mod e2e_support;

use common::Emulator;
use e2e_support::{run, Api, TestBundle};
use serde_json::{json, Value};

fn emulator() -> Emulator {
    Emulator::start_with(&["--no-postgres", "--transition-ms", "300"])
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

/// The direct grants of an object of the Permissions API, as `(group, level)`.
fn group_levels(api: &Api, object_type: &str, id: &str) -> Vec<(String, String)> {
    let acl = api
        .get(&format!("/api/2.0/permissions/{object_type}/{id}"), &[])
        .expect("permissions");
    acl["access_control_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let g = e["group_name"].as_str()?;
            let p = &e["all_permissions"][0];
            (p["inherited"] == false).then(|| {
                (
                    g.to_string(),
                    p["permission_level"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
        })
        .collect()
}

fn endpoint(api: &Api, name: &str) -> Option<Value> {
    api.get(&format!("/api/2.0/serving-endpoints/{name}"), &[])
}

fn legacy_model(api: &Api, name: &str) -> Option<Value> {
    api.get(
        "/api/2.0/mlflow/databricks/registered-models/get",
        &[("name", name.to_string())],
    )
    .map(|v| v["registered_model_databricks"].clone())
}

fn experiment(api: &Api, id: &str) -> Value {
    api.get(
        "/api/2.0/mlflow/experiments/get",
        &[("experiment_id", id.to_string())],
    )
    .expect("experiment")["experiment"]
        .clone()
}

#[test]
fn ml_bundle_lifecycle() {
    let emu = emulator();
    let api = Api::new(&emu);
    let b = TestBundle::fixture("e2e_ml");

    // The endpoint waits for the model it serves (named literally, not referenced).
    let out = run(&emu, &b, &["-o", "json", "graph"]).expect(0);
    let graph: Value = serde_json::from_str(&out.stdout).expect("graph JSON");
    let edge = json!({
        "from": "resources.model_serving_endpoints.serve",
        "to": "resources.registered_models.churn",
    });
    assert!(
        graph["edges"].as_array().expect("edges").iter().any(|e| {
            e["from"] == edge["from"]
                && e["to"] == edge["to"]
                && e["via"] == "implicit: config.served_entities[0].entity_name"
        }),
        "{graph}"
    );

    let out = run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(
        out.stdout
            .contains("Plan: 6 to add, 0 to change, 0 to destroy."),
        "{}",
        out.stdout
    );

    // UC model with its grant on securable type `function`.
    let uc = api
        .get("/api/2.1/unity-catalog/models/ml_main.models.churn", &[])
        .expect("registered model");
    assert_eq!(uc["comment"], "churn model");
    assert_eq!(
        api.get(
            "/api/2.1/unity-catalog/permissions/function/ml_main.models.churn",
            &[]
        )
        .expect("grants")["privilege_assignments"],
        json!([{"principal": "ml-team", "privileges": ["EXECUTE"]}])
    );

    // Legacy model: permissions live on its server id, not its name.
    let legacy = legacy_model(&api, "legacy-fraud").expect("legacy model");
    assert_eq!(legacy["description"], "fraud model");
    let model_id = legacy["id"].as_str().expect("model id").to_string();
    assert_eq!(
        group_levels(&api, "registered-models", &model_id),
        vec![("ml-team".to_string(), "CAN_READ".to_string())]
    );

    // Experiment: server-assigned id in state, name stored without /Workspace.
    let exp_id = b
        .state_id("resources.experiments.exp")
        .expect("experiment id");
    let exp = experiment(&api, &exp_id);
    let exp_name = exp["name"].as_str().expect("name").to_string();
    assert!(
        exp_name.starts_with("/Users/") && exp_name.ends_with("/churn-exp"),
        "{exp_name}"
    );
    assert_eq!(
        group_levels(&api, "experiments", &exp_id),
        vec![("ml-team".to_string(), "CAN_EDIT".to_string())]
    );

    // Endpoint: deploy waited for the rollout; permissions on the endpoint id.
    let ep = endpoint(&api, "churn-endpoint").expect("endpoint");
    assert_eq!(ep["state"]["config_update"], "NOT_UPDATING");
    assert_eq!(ep["state"]["ready"], "READY");
    assert_eq!(ep["config"]["served_entities"][0]["name"], "churn-1");
    let ep_id = ep["id"].as_str().expect("endpoint id").to_string();
    assert_ne!(ep_id, "churn-endpoint");
    assert_eq!(
        group_levels(&api, "serving-endpoints", &ep_id),
        vec![("ml-team".to_string(), "CAN_QUERY".to_string())]
    );

    // Nothing changed: a no-op (server-filled entity names, system tags, /Workspace).
    let out = run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);

    // In-place updates of every kind.
    b.edit("comment: churn model", "comment: churn model v2");
    b.edit("description: fraud model", "description: fraud model v2");
    b.edit("churn-exp", "churn-experiment");
    b.edit("value: dev", "value: prod");
    b.edit("workload_size: Small", "workload_size: Medium");
    b.edit("value: ml\n", "value: ml-platform\n");
    let plan = plan_json(&emu, &b);
    for addr in [
        "resources.registered_models.churn",
        "resources.models.legacy",
        "resources.experiments.exp",
        "resources.model_serving_endpoints.serve",
    ] {
        assert_eq!(actions_of(&plan, addr), json!(["update"]), "{addr}: {plan}");
    }
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(
        api.get("/api/2.1/unity-catalog/models/ml_main.models.churn", &[])
            .expect("model")["comment"],
        "churn model v2"
    );
    assert_eq!(
        legacy_model(&api, "legacy-fraud").expect("model")["description"],
        "fraud model v2"
    );
    let exp = experiment(&api, &exp_id);
    assert!(
        exp["name"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/churn-experiment"),
        "renamed in place: {exp}"
    );
    assert!(exp["tags"]
        .as_array()
        .expect("tags")
        .contains(&json!({"key": "stage", "value": "prod"})));
    let ep = endpoint(&api, "churn-endpoint").expect("endpoint");
    assert_eq!(ep["state"]["config_update"], "NOT_UPDATING");
    assert_eq!(
        ep["config"]["served_entities"][0]["workload_size"],
        "Medium"
    );
    assert_eq!(ep["config"]["config_version"], 2);
    assert_eq!(ep["tags"], json!([{"key": "team", "value": "ml-platform"}]));
    assert_eq!(ep["id"], ep_id.as_str(), "updated, not replaced");
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // A legacy model has no rename in the bundle: a new name replaces it.
    b.edit("name: legacy-fraud", "name: legacy-fraud-2");
    let plan = plan_json(&emu, &b);
    assert_eq!(
        actions_of(&plan, "resources.models.legacy"),
        json!(["delete", "create"])
    );
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert!(legacy_model(&api, "legacy-fraud").is_none());
    let new_id = legacy_model(&api, "legacy-fraud-2").expect("new model")["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        group_levels(&api, "registered-models", &new_id),
        vec![("ml-team".to_string(), "CAN_READ".to_string())]
    );
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(0);

    // A permission changed outside the bundle is drift on the endpoint id, and is restored.
    let (status, v) = api.patch(
        &format!("/api/2.0/permissions/serving-endpoints/{ep_id}"),
        &json!({"access_control_list": [{"group_name": "ml-team", "permission_level": "CAN_VIEW"}]}),
    );
    assert_eq!(status, 200, "{v}");
    run(&emu, &b, &["plan", "--detailed-exitcode"]).expect(2);
    run(&emu, &b, &["deploy", "--auto-approve"]).expect(0);
    assert_eq!(
        group_levels(&api, "serving-endpoints", &ep_id),
        vec![("ml-team".to_string(), "CAN_QUERY".to_string())]
    );

    // Destroy leaves nothing: the experiment is soft-deleted (out of the active list).
    run(&emu, &b, &["destroy", "--auto-approve"]).expect(0);
    assert!(endpoint(&api, "churn-endpoint").is_none());
    assert!(legacy_model(&api, "legacy-fraud-2").is_none());
    assert!(api
        .get("/api/2.1/unity-catalog/models/ml_main.models.churn", &[])
        .is_none());
    assert_eq!(experiment(&api, &exp_id)["lifecycle_stage"], "deleted");
    let active = api.list("/api/2.0/mlflow/experiments/list", "experiments", &[]);
    assert!(active.is_empty(), "{active:?}");
    assert!(api.catalog("ml_main").is_none());
}

/// Both forms of served models at once is an error at the line of the second.
#[test]
fn served_entities_and_served_models_are_exclusive() {
    let emu = emulator();
    let b = TestBundle::fixture("e2e_ml");
    b.edit(
        "            scale_to_zero_enabled: true\n",
        "            scale_to_zero_enabled: true\n        served_models:\n          - model_name: legacy-fraud\n            model_version: \"1\"\n            scale_to_zero_enabled: true\n",
    );
    let out = run(&emu, &b, &["validate"]).expect(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("sets both served_entities and served_models"),
        "{text}"
    );
    assert!(text.contains("databricks.yml:"), "{text}");
}

/// A serving endpoint runs as its owner: a run_as other than the deployer is refused (as the
/// CLI does), at the endpoints.
#[test]
fn serving_endpoints_refuse_another_run_as() {
    let emu = emulator();
    let b = TestBundle::fixture("e2e_ml");
    b.edit(
        "bundle:\n  name: ml-e2e\n",
        "bundle:\n  name: ml-e2e\n\nrun_as:\n  service_principal_name: 0000-other-sp\n",
    );
    let out = run(&emu, &b, &["plan"]).expect(1);
    // Flattened: the message wraps.
    let text = format!("{}{}", out.stdout, out.stderr)
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(
            "model_serving_endpoints do not support a run_as identity different from the deploying identity"
        ),
        "{text}"
    );
}
