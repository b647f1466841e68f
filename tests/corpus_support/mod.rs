//! The shared corpus's plumbing for `tests/corpus*.rs`: its MANIFEST.tsv, the
//! bundles with a defect of their own, the variables some need on the command
//! line, and a staged private copy of a bundle.
#![allow(dead_code)]

use std::path::Path;

/// Bundles with a real defect of their own, and what it is.
pub const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "databricks-solutions__lakebase-poc-accelerator__at_1482f43",
        "instance name `lakebase_accelerator_instance` has underscores; Lakebase names allow letters, digits and hyphens",
    ),
    (
        "databricks-industry-solutions__energy-sandbox__osdu-app-with-connector",
        "`workspace.host: ${var.workspace_host}`: the CLI needs the host before references resolve and refuses it too",
    ),
    (
        "databricks__bundle-examples__contrib__data_engineering",
        "variable `notifications` has no default and is not `type: complex`, so the targets' list values are ignored: no value",
    ),
    (
        "databricks__bundle-examples__knowledge_base__databricks_app",
        "app name `job_manager` has an underscore; app names allow lowercase letters, digits and hyphens",
    ),
    (
        "databricks__bundle-examples__knowledge_base__target_includes",
        "uses `${var.environment}`, which is never declared",
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-python__classic__output__my_default_python",
        "golden test output: `node_type_id: [NODE_TYPE_ID]` is a placeholder list where a string belongs",
    ),
];

/// Bundles whose required variables have no default by design: their READMEs
/// or deploy scripts pass them with `--var`. The test does the same.
pub const CLI_VARS: &[(&str, &[&str])] = &[
    (
        "databricks-industry-solutions__genesis-workbench__modules__core",
        &[
            "a10_node_type", "app_name", "core_catalog_name", "core_schema_name", "cpu_node_type", "dev_user_prefix",
            "gpu_large_setting", "gpu_medium_setting", "gpu_small_setting", "secret_scope_name", "sql_warehouse_id",
            "t4_node_type", "workspace_url",
        ],
    ),
    (
        "databricks-industry-solutions__genesis-workbench__modules__genomics__gwas__gwas_v1",
        &[
            "a10_node_type", "core_catalog_name", "core_schema_name", "cpu_node_type", "gpu_large_setting",
            "gpu_medium_setting", "gpu_small_setting", "parabricks_docker_image", "parabricks_docker_token",
            "parabricks_docker_userid", "sql_warehouse_id", "t4_node_type", "workspace_url",
        ],
    ),
    (
        "databricks-industry-solutions__genesis-workbench__modules__genomics__parabricks__parabricks_v1",
        &[
            "a10_node_type", "core_catalog_name", "core_schema_name", "cpu_node_type", "gpu_large_setting",
            "gpu_medium_setting", "gpu_small_setting", "parabricks_docker_image", "parabricks_docker_token",
            "parabricks_docker_userid", "sql_warehouse_id", "t4_node_type", "workspace_url",
        ],
    ),
    (
        "databricks-industry-solutions__genesis-workbench__modules__large_molecule__alphafold__alphafold_v2.3.2",
        &[
            "a10_node_type", "core_catalog_name", "core_schema_name", "cpu_node_type", "gpu_large_setting",
            "gpu_medium_setting", "gpu_small_setting", "sql_warehouse_id", "t4_node_type", "workspace_url",
        ],
    ),
    ("databricks__bundle-examples__contrib__databricks_ingestion_monitoring__cdc_connector_monitoring_dab", &["main_dashboard_template_path"]),
    ("databricks__bundle-examples__contrib__databricks_ingestion_monitoring__generic_sdp_monitoring_dab", &["main_dashboard_template_path"]),
    ("databricks__bundle-examples__knowledge_base__bundle_variables__at_ed59139", &["no_default"]),
    (
        "databricks__bundle-examples__multi_region_serving__at_a413925",
        &["endpoint_name", "model_name", "model_version", "notification_email", "remote_model_name", "share_name"],
    ),
    ("databricks__bundle-examples__wanderbricks__revenue_analytics__at_1422bfb", &["warehouse_id"]),
    ("david-hurley__lakebase-cicd", &["project_name"]),
    ("db-afeng__genie_slack_app", &["TOKEN_APP", "TOKEN_BOT"]),
    ("reggie-db__lens-iq", &["warehouse_id"]),
    ("zacharyphillips723__A3_DockLab", &["warehouse_id"]),
];

pub struct Entry {
    pub folder: String,
    pub root: String,
    /// `resource_types_used`: the resource kind keys the bundle declares.
    pub kinds: Vec<String>,
}

pub fn manifest(corpus: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (f, r, k) = (
        col("folder"),
        col("bundle_root_in_folder"),
        col("resource_types_used"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            Entry {
                folder: cells[f].to_string(),
                root: cells[r].to_string(),
                kinds: cells[k]
                    .split(',')
                    .filter(|t| !t.is_empty() && *t != "-")
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect()
}

/// Copy a corpus folder under `staging` (nested, so `../..` paths stay
/// inside it) and create a stub for every file it references that existed
/// upstream or is built before deploy (`_REFERENCED_FILES.tsv`): the corpus
/// keeps only the YAML, and the CLI would refuse a missing notebook too.
pub fn stage(src: &Path, staging: &Path, folder: &str) -> std::path::PathBuf {
    let dest = staging.join("a/b/c/d").join(folder);
    copy_dir(src, &dest);
    let Ok(refs) = std::fs::read_to_string(src.join("_REFERENCED_FILES.tsv")) else {
        return dest;
    };
    for line in refs.lines().skip(1) {
        let cells: Vec<&str> = line.split('\t').collect();
        let [yaml_file, _, value, status, ..] = cells.as_slice() else {
            continue;
        };
        let kind = status.split(':').next().unwrap_or_default();
        if !matches!(
            kind,
            "exists" | "exists_dir" | "glob_matches" | "glob_nomatch"
        ) {
            continue;
        }
        let base = dest.join(yaml_file);
        let target = base
            .parent()
            .unwrap_or(&dest)
            .join(value.replace('*', "stub"));
        // Stay inside the staging dir whatever the path says.
        let normal = normalize(&target);
        if !normal.starts_with(staging) {
            continue;
        }
        if kind == "exists_dir" {
            // Not empty: an empty folder uploads nothing.
            let _ = std::fs::create_dir_all(&normal);
            let _ = std::fs::write(normal.join("README.md"), "stub\n");
        } else if let Some(parent) = normal.parent() {
            let _ = std::fs::create_dir_all(parent);
            if !normal.exists() {
                // Dashboard, Genie and alert definitions are read as JSON.
                let stub = if value.ends_with(".json") {
                    "{}\n"
                } else {
                    "# Databricks notebook source\n"
                };
                let _ = std::fs::write(&normal, stub);
            }
        }
    }
    dest
}

fn normalize(p: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn copy_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read corpus dir").flatten() {
        let to = dest.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy corpus file");
        }
    }
}

/// For a bundle with a `python:` section: its `venv_path` as a wrapper
/// around the tests' Python (with `databricks-bundles`) and a stub for each
/// `module:function` it names (the corpus keeps only the YAML), so the real
/// package runs as it would upstream.
pub fn stage_python(dir: &Path, python: &Path) {
    let Ok(yaml) = std::fs::read_to_string(dir.join("databricks.yml")) else {
        return;
    };
    // The `python:` section (top-level or under `experimental`): the lines
    // indented deeper than its key.
    let mut section_indent: Option<usize> = None;
    let mut list = "";
    let mut venv = None;
    let mut modules: std::collections::BTreeMap<String, String> = Default::default();
    for line in yaml.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if section_indent.is_some_and(|i| indent <= i) {
            section_indent = None;
        }
        if t == "python:" {
            section_indent = Some(indent);
            continue;
        }
        if section_indent.is_none() {
            continue;
        }
        if let Some(v) = t.strip_prefix("venv_path:") {
            venv = Some(v.trim().trim_matches(|c| c == '"' || c == '\'').to_string());
        } else if t == "resources:" || t == "mutators:" {
            list = if t == "resources:" {
                "resources"
            } else {
                "mutators"
            };
        } else if let Some(entry) = t.strip_prefix("- ") {
            let entry = entry.trim().trim_matches(|c| c == '"' || c == '\'');
            let Some((module, function)) = entry.split_once(':') else {
                continue;
            };
            let code = if list == "resources" {
                format!("\n\ndef {function}(bundle: Bundle) -> Resources:\n    return load_resources_from_current_package_module()\n")
            } else {
                format!("\n\n@job_mutator\ndef {function}(bundle: Bundle, job: Job) -> Job:\n    return job\n")
            };
            modules
                .entry(module.to_string())
                .or_default()
                .push_str(&code);
        }
    }
    let header = "from databricks.bundles.core import Bundle, Resources, job_mutator, load_resources_from_current_package_module\nfrom databricks.bundles.jobs import Job\n";
    for (module, code) in modules {
        let pkg = dir.join(module.replace('.', "/"));
        std::fs::create_dir_all(&pkg).expect("mkdir python package");
        std::fs::write(pkg.join("__init__.py"), format!("{header}{code}")).expect("write stub");
    }
    if let Some(venv) = venv {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join(venv).join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir venv");
        let exe = bin.join("python");
        std::fs::write(
            &exe,
            format!("#!/bin/sh\nexec '{}' \"$@\"\n", python.display()),
        )
        .expect("write venv python");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// Whether the bundle at `dir` has a `python:` section.
pub fn uses_python(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("databricks.yml"))
        .is_ok_and(|y| y.lines().any(|l| l.trim() == "python:"))
}

/// `--var NAME=corpus-value` for each variable the bundle needs on the command line.
pub fn cli_var_args(folder: &str) -> Vec<String> {
    let mut args = Vec::new();
    if let Some((_, vars)) = CLI_VARS.iter().find(|(f, _)| *f == folder) {
        for v in *vars {
            args.push("--var".into());
            args.push(format!("{v}=corpus-value"));
        }
    }
    args
}

/// The directory to run the CLI in: the staged copy's bundle root.
pub fn bundle_dir(copy: &Path, entry: &Entry) -> std::path::PathBuf {
    copy.join(Path::new(&entry.root).parent().unwrap_or(Path::new("")))
}
