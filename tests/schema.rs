//! The checked-in bundle schema matches the generated one, and the schema
//! keeps its authoring guarantees: draft 2020-12, a description on every
//! property, anchored ECMA-compatible patterns, `${...}` accepted wherever an
//! integer, number or boolean is, strict objects for the supported kinds.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[path = "common/prereq.rs"]
mod prereq;

const REGENERATE: &str = "cargo run -- schema > schemas/bundle.schema.json";

fn checked_in() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/bundle.schema.json");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate it with `{REGENERATE}`", path.display()))
}

fn schema() -> Value {
    lakebundle::resources::schema::bundle_schema()
}

#[test]
fn checked_in_schema_is_up_to_date() {
    let generated = lakebundle::resources::schema::bundle_schema_text();
    let file = checked_in();
    if file != generated {
        let diff = similar::TextDiff::from_lines(&file, &generated);
        let excerpt: String = diff
            .unified_diff()
            .context_radius(2)
            .to_string()
            .lines()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n");
        panic!("schemas/bundle.schema.json is stale; regenerate it with `{REGENERATE}`\n{excerpt}");
    }
}

#[test]
fn cli_prints_the_checked_in_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_lakebundle"))
        .arg("schema")
        .output()
        .expect("run lakebundle schema");
    assert!(
        out.status.success(),
        "lakebundle schema failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        checked_in(),
        "`lakebundle schema` differs from the checked-in file"
    );
}

#[test]
fn is_draft_2020_12() {
    assert_eq!(
        schema()["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

/// Visit every subschema with a JSON-pointer-ish path.
fn walk<'a>(v: &'a Value, path: String, f: &mut dyn FnMut(&str, &'a Value)) {
    f(&path, v);
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                walk(child, format!("{path}/{k}"), f);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{path}/{i}"), f);
            }
        }
        _ => {}
    }
}

#[test]
fn every_property_has_a_description() {
    let s = schema();
    let mut missing = Vec::new();
    let mut count = 0;
    walk(&s, String::new(), &mut |path, v| {
        // `.../properties/properties` is a property *named* `properties` (catalogs,
        // schemas), not a second properties map: only an odd run of them is a map.
        let run = path.rsplit('/').take_while(|s| *s == "properties").count();
        if run % 2 == 1 {
            if let Value::Object(props) = v {
                for (name, prop) in props {
                    count += 1;
                    let desc = prop
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if desc.trim().is_empty() {
                        missing.push(format!("{path}/{name}"));
                    }
                }
            }
        }
    });
    assert!(
        count > 500,
        "only {count} properties: the schema lost most of its fields"
    );
    assert!(
        missing.is_empty(),
        "properties without a description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_definition_has_a_description() {
    let s = schema();
    let defs = s["$defs"].as_object().expect("$defs");
    let missing: Vec<&String> = defs
        .iter()
        .filter(|(_, d)| d.get("description").and_then(Value::as_str).is_none())
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty(),
        "definitions without a description: {missing:?}"
    );
}

#[test]
fn patterns_are_anchored_and_portable() {
    let s = schema();
    let mut patterns = Vec::new();
    walk(&s, String::new(), &mut |path, v| {
        if path.ends_with("/pattern") {
            if let Some(p) = v.as_str() {
                patterns.push((path.to_string(), p.to_string()));
            }
        }
    });
    assert!(!patterns.is_empty());
    for (path, p) in &patterns {
        assert!(
            p.starts_with('^') && p.ends_with('$'),
            "{path}: pattern {p:?} is not anchored"
        );
        // Constructs that ECMAScript regexes lack or spell differently.
        for bad in [
            "\\p{", "\\P{", "(?<", "(?P", "(?i", "\\A", "\\z", "\\Z", "(?#",
        ] {
            assert!(
                !p.contains(bad),
                "{path}: pattern {p:?} uses {bad}, which is not ECMA-compatible"
            );
        }
        regex::Regex::new(p).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// `node` checks patterns with the JavaScript engine editors use (skipped without node).
#[test]
fn patterns_compile_as_javascript_unicode_regexes() {
    let s = schema();
    let mut patterns = Vec::new();
    walk(&s, String::new(), &mut |path, v| {
        if path.ends_with("/pattern") {
            if let Some(p) = v.as_str() {
                patterns.push(p.to_string());
            }
        }
    });
    // Keys of `patternProperties` are patterns too.
    walk(&s, String::new(), &mut |path, v| {
        if path.ends_with("/patternProperties") {
            if let Value::Object(map) = v {
                patterns.extend(map.keys().cloned());
            }
        }
    });
    let interpolation = s["$defs"]["interpolation"]["pattern"]
        .as_str()
        .expect("interpolation pattern");
    let script = format!(
        "const ps = {}; for (const p of ps) {{ new RegExp(p, 'u'); }} \
         const r = new RegExp({}, 'u'); if (!r.test('${{var.a}}') || r.test('3')) process.exit(2);",
        serde_json::to_string(&patterns).expect("json"),
        serde_json::to_string(interpolation).expect("json")
    );
    match Command::new("node").arg("-e").arg(&script).output() {
        Err(e) => prereq::skip(
            &format!("`node` is not installed ({e}); the JavaScript regex check needs it"),
            "apt-get install nodejs",
        ),
        Ok(out) => assert!(
            out.status.success(),
            "a pattern is not a valid JS unicode regex: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn scalars_other_than_strings_also_accept_references() {
    let s = schema();
    let mut bare = Vec::new();
    // Every value position (property, item, map value) of type integer,
    // number or boolean must sit inside an anyOf offering the interpolation.
    walk(&s, String::new(), &mut |path, v| {
        let is_value_position = path.rsplit('/').nth(1) == Some("properties")
            || path.ends_with("/items")
            || path.ends_with("/additionalProperties");
        if !is_value_position {
            return;
        }
        if let Some(t) = v.get("type").and_then(Value::as_str) {
            if matches!(t, "integer" | "number" | "boolean") {
                bare.push(path.to_string());
            }
        }
        if v.get("$ref").is_some() && v.get("anyOf").is_none() {
            bare.push(format!("{path} ($ref without interpolation)"));
        }
    });
    assert!(
        bare.is_empty(),
        "value positions not accepting ${{...}}:\n{}",
        bare.join("\n")
    );
    let node_count = &s["$defs"]["DatabaseInstance"]["properties"]["node_count"];
    assert_eq!(node_count["anyOf"][0]["type"], "integer");
    assert_eq!(node_count["anyOf"][1]["$ref"], "#/$defs/interpolation");
}

#[test]
fn supported_kinds_are_strict_and_enums_present() {
    let s = schema();
    for def in [
        "DatabaseInstance",
        "DatabaseCatalog",
        "SyncedDatabaseTable",
        "Job",
        "App",
        "Task",
        "ClusterSpec",
        "SyncedTableSpec",
    ] {
        assert_eq!(
            s["$defs"][def]["additionalProperties"], false,
            "{def} must reject unknown fields"
        );
    }
    assert_eq!(
        s["$defs"]["Capacity"]["enum"],
        serde_json::json!(["CU_1", "CU_2", "CU_4", "CU_8"])
    );
    assert_eq!(
        s["$defs"]["SchedulingPolicy"]["enum"],
        serde_json::json!(["SNAPSHOT", "TRIGGERED", "CONTINUOUS"])
    );
    assert_eq!(
        s["$defs"]["PauseStatus"]["enum"],
        serde_json::json!(["UNPAUSED", "PAUSED"])
    );
    let resources = s["$defs"]["Resources"]["properties"]
        .as_object()
        .expect("resources");
    for kind in [
        "database_instances",
        "database_catalogs",
        "synced_database_tables",
        "jobs",
        "apps",
        "pipelines",
        "schemas",
        "volumes",
    ] {
        assert!(resources.contains_key(kind), "resources.{kind} missing");
    }
    for task in [
        "notebook_task",
        "spark_python_task",
        "python_wheel_task",
        "spark_jar_task",
        "spark_submit_task",
        "pipeline_task",
        "sql_task",
        "dbt_task",
        "run_job_task",
        "condition_task",
        "for_each_task",
        "clean_rooms_notebook_task",
        "dashboard_task",
        "gen_ai_compute_task",
        "power_bi_task",
    ] {
        assert!(
            s["$defs"]["Task"]["properties"].get(task).is_some(),
            "task type {task} missing"
        );
    }
    let top = s["properties"].as_object().expect("top-level properties");
    for key in [
        "bundle",
        "include",
        "variables",
        "targets",
        "workspace",
        "sync",
        "permissions",
        "presets",
        "run_as",
        "experimental",
        "artifacts",
        "resources",
    ] {
        assert!(top.contains_key(key), "top-level {key} missing");
    }
    let target = s["$defs"]["Target"]["properties"]
        .as_object()
        .expect("target");
    for key in [
        "default",
        "mode",
        "workspace",
        "variables",
        "resources",
        "presets",
        "permissions",
        "run_as",
        "sync",
        "git",
        "artifacts",
    ] {
        assert!(target.contains_key(key), "targets.<t>.{key} missing");
    }
    let variable = s["$defs"]["Variable"]["properties"]
        .as_object()
        .expect("variable");
    for key in ["type", "default", "description", "lookup"] {
        assert!(variable.contains_key(key), "variables.<v>.{key} missing");
    }
}

#[test]
fn target_overrides_do_not_require_identity_fields() {
    let s = schema();
    assert_eq!(
        s["$defs"]["DatabaseInstance"]["required"],
        serde_json::json!(["name"])
    );
    assert!(s["$defs"]["DatabaseInstanceOverride"]
        .get("required")
        .is_none());
    let target_instances = &s["$defs"]["TargetResources"]["properties"]["database_instances"];
    assert_eq!(
        target_instances["anyOf"][0]["additionalProperties"]["anyOf"][0]["$ref"],
        "#/$defs/DatabaseInstanceOverride"
    );
}

#[test]
fn unknown_top_level_keys_are_ignored_unless_one_typo_from_a_section() {
    let s = schema();
    let props = s["properties"].as_object().expect("properties");
    let patterns = s["patternProperties"]
        .as_object()
        .expect("patternProperties");
    assert_eq!(patterns.len(), 1);
    let (pattern, verdict) = patterns.iter().next().expect("one pattern");
    assert_eq!(verdict, &Value::Bool(false));
    let re = regex::Regex::new(pattern).expect("near-miss pattern compiles");
    for key in props.keys() {
        assert!(
            !re.is_match(key),
            "section `{key}` matches the near-miss pattern"
        );
    }
    for typo in [
        "resource",
        "targtes",
        "Resources",
        "variable",
        "workspce",
        "includes",
        "permisions",
        "artifcats",
    ] {
        assert!(re.is_match(typo), "`{typo}` is not caught as a misspelling");
    }
    // Keys the corpus parks anchors on stay accepted.
    for anchor in [
        "x-defaults",
        "new_cluster",
        "common_permissions",
        "grants",
        "job-config",
        "defaults",
    ] {
        assert!(!re.is_match(anchor), "anchor key `{anchor}` is flagged");
    }
    assert!(
        s["additionalProperties"].is_object(),
        "other top-level keys must be accepted"
    );
}

#[test]
fn job_tasks_need_a_task_type_but_overrides_do_not() {
    let s = schema();
    let defs = &s["$defs"];
    let branches = defs["Task"]["allOf"][0]["anyOf"]
        .as_array()
        .expect("Task requires one of the task types");
    let kinds: Vec<&str> = branches
        .iter()
        .filter_map(|b| b["required"][0].as_str())
        .collect();
    for k in [
        "notebook_task",
        "spark_python_task",
        "python_wheel_task",
        "sql_task",
        "pipeline_task",
        "run_job_task",
        "for_each_task",
        "condition_task",
    ] {
        assert!(
            kinds.contains(&k),
            "{k} missing from the task types: {kinds:?}"
        );
    }
    assert!(defs["TaskOverride"].get("allOf").is_none());
    assert!(defs["TaskOverride"].get("required").is_none());
    let job_override = serde_json::to_string(&defs["JobOverride"]).expect("json");
    assert!(job_override.contains("#/$defs/TaskOverride"));
    assert!(!job_override.contains("\"#/$defs/Task\""));
}

#[test]
fn resource_names_are_checked_but_references_pass() {
    let s = schema();
    let cases = [
        ("DatabaseInstance", "main-db", true),
        ("DatabaseInstance", "1bad_name", false),
        ("DatabaseInstance", "bad_name", false),
        ("DatabaseInstance", &"a".repeat(64), false),
        ("DatabaseInstance", "${var.prefix}_db", true),
        ("DatabaseInstanceOverride", "1bad", false),
        ("App", "my-app-2", true),
        ("App", "job_manager", false),
        ("App", "${bundle.target}-app", true),
    ];
    for (def, name, ok) in cases {
        let pattern = s["$defs"][def]["properties"]["name"]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{def}.name has no pattern"));
        let re = regex::Regex::new(pattern).expect("pattern");
        assert_eq!(re.is_match(name), ok, "{def}.name {name:?}");
    }
}

#[test]
fn empty_sections_are_accepted() {
    let s = schema();
    let accepts_null = |v: &Value| {
        v["anyOf"]
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["type"] == "null"))
    };
    for key in ["targets", "resources", "workspace", "variables", "include"] {
        assert!(accepts_null(&s["properties"][key]), "top-level {key}");
    }
    assert!(
        !accepts_null(&s["properties"]["bundle"]),
        "bundle needs a name"
    );
    assert!(accepts_null(
        &s["properties"]["targets"]["anyOf"][0]["additionalProperties"]
    ));
    for def in ["Resources", "TargetResources"] {
        for (k, v) in s["$defs"][def]["properties"].as_object().expect("kinds") {
            assert!(accepts_null(v), "{def}.{k}");
        }
    }
    assert!(accepts_null(&s["$defs"]["Workspace"]["properties"]["host"]));
}
