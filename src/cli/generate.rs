//! `lakebundle generate KIND --existing-... ID [--key KEY] [--bind]`: write
//! the bundle configuration of an object that exists in the workspace (and
//! download what it runs: a job's notebooks, an app's source; or write what
//! defines it: a dashboard's `.lvdash.json`, an alert's `.dbalert.json`), so that after
//! `bind` the plan leaves it as it is. The Databricks CLI's flags for jobs
//! (`--existing-job-id`) and apps (`--existing-app-name`); the same for every
//! kind lakebundle deploys (`--existing-database-instance-name`, ...).
//!
//! Files: `<config-dir>/<key>.<kind>.yml` (default `resources/`), sources
//! under `-s` (default `src`, `src/app` for apps). Existing files are kept
//! unless `--force`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::args::{GenerateArgs, GlobalArgs};
use super::error::{CliError, ErrorClass};
use super::{bind, context, hint, Exit};
use crate::config::load::include_takes_in;
use crate::resources::{registry, ResourceAddr, ResourceKind};

/// The kind named on the command line (`job`, `database-instance`; the
/// plural YAML key is accepted too).
fn find_kind(word: &str) -> Result<&'static dyn ResourceKind, CliError> {
    let norm = word.replace('_', "-");
    if let Some(k) = registry().iter().copied().find(|k| {
        k.generate_name() == norm
            || k.kind().key() == word
            || k.kind().key().replace('_', "-") == norm
    }) {
        return Ok(k);
    }
    let names: Vec<String> = registry().iter().map(|k| k.generate_name()).collect();
    let close: Vec<String> = crate::diag::suggestions(word, names.iter().map(String::as_str))
        .into_iter()
        .map(str::to_string)
        .collect();
    Err(
        CliError::user(format!("cannot generate `{word}`")).with_help(
            crate::diag::suggestion_help(&close)
                .unwrap_or_else(|| format!("the kinds are: {}", names.join(", "))),
        ),
    )
}

/// The id given with the one `--existing-...` flag that fits the kind.
fn existing_id(a: &GenerateArgs, kind: &dyn ResourceKind) -> Result<String, CliError> {
    let given: Vec<(&str, &String)> = [
        ("existing-job-id", &a.existing_job_id),
        ("existing-pipeline-id", &a.existing_pipeline_id),
        ("existing-app-name", &a.existing_app_name),
        (
            "existing-database-instance-name",
            &a.existing_database_instance_name,
        ),
        (
            "existing-database-catalog-name",
            &a.existing_database_catalog_name,
        ),
        (
            "existing-synced-database-table-name",
            &a.existing_synced_database_table_name,
        ),
        // Any kind, including those added later.
        ("existing-id", &a.existing_id),
    ]
    .into_iter()
    .filter_map(|(flag, v)| v.as_ref().map(|v| (flag, v)))
    .collect();
    let want = kind.generate_id_flag();
    match given.as_slice() {
        [(flag, id)] if *flag == want || *flag == "existing-id" => Ok((*id).clone()),
        [] => Err(CliError::usage(format!(
            "`generate {}` needs the object: --{want} <{}>",
            kind.generate_name(),
            if want.ends_with("-id") { "ID" } else { "NAME" }
        ))),
        [(flag, _)] => Err(CliError::usage(format!(
            "--{flag} does not name a {}",
            kind.kind().noun().into_owned()
        ))
        .with_help(format!("use --{want}"))),
        _ => Err(
            CliError::usage("give exactly one --existing-... flag").with_help(format!(
                "for a {}: --{want}",
                kind.kind().noun().into_owned()
            )),
        ),
    }
}

/// A resource key from a remote name (`My Job-1` → `my_job_1`).
pub fn key_from_name(name: &str) -> String {
    let mut key: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while key.contains("__") {
        key = key.replace("__", "_");
    }
    let key = key.trim_matches('_').to_string();
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        format!("r_{key}")
    } else {
        key
    }
}

/// `a/b` relative from directory `from` (both relative to the bundle root).
fn relative(from: &Path, to: &Path) -> String {
    let up = from.components().count();
    let mut parts: Vec<String> = vec!["..".to_string(); up];
    parts.extend(
        to.components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

pub fn run(g: &GlobalArgs, a: &GenerateArgs) -> Result<Exit, CliError> {
    let kind = find_kind(&a.kind)?;
    let id = existing_id(a, kind)?;
    let rt = context::runtime()?;
    let (yaml_file, included) = rt.block_on(async {
        let session = context::open(g).await?;
        let result = write_config(a, kind, &id, &session).await.map(|yaml| {
            // With --bind, the bind that follows reports a file left out.
            let bundle = &session.bundle;
            let taken_in = a.bind || include_takes_in(&bundle.tree, &bundle.root, &yaml);
            (yaml, taken_in)
        });
        session.close().await;
        result
    })?;
    eprintln!("Wrote {}", yaml_file.display());
    if !a.bind {
        if !included {
            // As the Databricks CLI warns: otherwise the next deploy leaves it out, silently.
            eprintln!(
                "Warning: {} is not matched by the bundle's `include`, so it will not be deployed; \
                 add it to databricks.yml, for example `include: [\"{}/*.yml\"]`",
                yaml_file.display(),
                a.config_dir.display()
            );
        }
        return Ok(Exit::Success);
    }
    // A new session loads the bundle with the file just written.
    let key = key_of(a, &yaml_file);
    rt.block_on(async {
        let session = context::open(g).await?;
        let result = async {
            let addr = ResourceAddr::new(kind.kind(), key.clone());
            if !session.bundle.resources.contains_key(&addr) {
                return Err(CliError::user(format!(
                    "{} is not part of the bundle, so {addr} cannot be bound",
                    yaml_file.display()
                ))
                .with_help(format!(
                    "include it from databricks.yml (`include: [\"{}/*.yml\"]`), then run `{}`",
                    a.config_dir.display(),
                    hint::command(g, &["bind", &key, &id])
                )));
            }
            bind::bind(g, &session, &addr, &id, true, false).await
        }
        .await;
        session.close().await;
        result
    })?;
    Ok(Exit::Success)
}

/// The key written in `yaml_file` (`<key>.<kind>.yml`).
fn key_of(a: &GenerateArgs, yaml_file: &Path) -> String {
    a.key.clone().unwrap_or_else(|| {
        yaml_file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
            .unwrap_or_default()
            .to_string()
    })
}

async fn write_config(
    a: &GenerateArgs,
    kind: &'static dyn ResourceKind,
    id: &str,
    session: &context::Session,
) -> Result<PathBuf, CliError> {
    let noun = kind.kind().noun().into_owned();
    let remote = match kind.read(&session.client, id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(CliError::user(format!(
                "{noun} with an id '{id}' is not found"
            )))
        }
        Err(e) if e.is_not_found() => {
            return Err(CliError::user(format!(
                "{noun} with an id '{id}' is not found"
            )))
        }
        Err(e) => {
            return Err(CliError::context(
                ErrorClass::Remote,
                format!("fetching {noun} '{id}'"),
                &e,
            ))
        }
    };
    let mut config = kind.generated_config(&remote);
    let key = match &a.key {
        Some(k) => k.clone(),
        // Dashboards and alerts have a display name, Genie spaces a title.
        None => key_from_name(
            ["name", "display_name", "title"]
                .iter()
                .find_map(|f| config.get(*f).and_then(Value::as_str))
                .unwrap_or(id),
        ),
    };
    let root = &session.bundle.root;
    let source_dir = a
        .source_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(kind.generate_source_dir()));
    let source_from_yaml = relative(&a.config_dir, &source_dir);
    let files = kind
        .generate_files(
            &session.client,
            &remote,
            &mut config,
            &key,
            &source_from_yaml,
        )
        .await
        .map_err(|e| {
            CliError::context(
                ErrorClass::Remote,
                format!("downloading the files of {noun} '{id}'"),
                &e,
            )
        })?;
    let yaml_rel = a.config_dir.join(format!(
        "{key}.{}.yml",
        kind.generate_name().replace('-', "_")
    ));
    let mut writes: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|(rel, bytes)| (source_dir.join(rel), bytes))
        .collect();
    let mut res = Map::new();
    res.insert(key.clone(), config);
    let mut kinds = Map::new();
    kinds.insert(kind.kind().key().to_string(), Value::Object(res));
    let mut top = Map::new();
    top.insert("resources".into(), Value::Object(kinds));
    let text = format!(
        "# Generated by `lakebundle generate {}` from {noun} '{id}'.\n{}",
        kind.generate_name(),
        to_yaml(&Value::Object(top))
    );
    writes.push((yaml_rel.clone(), text.into_bytes()));
    if !a.force {
        let existing: Vec<String> = writes
            .iter()
            .filter(|(p, _)| root.join(p).exists())
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(
                CliError::user(format!("not overwriting {}", existing.join(", ")))
                    .with_help("pass --force to overwrite, or --key to write another resource"),
            );
        }
    }
    for (rel, bytes) in &writes {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::user(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| CliError::user(format!("cannot write {}: {e}", path.display())))?;
        if rel != &yaml_rel {
            eprintln!("Downloaded {}", rel.display());
        }
    }
    Ok(yaml_rel)
}

// ---------------------------------------------------------------------------
// A small YAML writer (block style; strings quoted unless plainly safe).

fn plain_ok(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n",
    ];
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./@ ".contains(c))
        && !s.starts_with(['-', ' ', '@'])
        && !s.ends_with(' ')
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
        && s.parse::<f64>().is_err()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if plain_ok(s) => s.clone(),
        // A JSON string is a valid YAML double-quoted scalar.
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn key_text(k: &str) -> String {
    scalar(&Value::String(k.to_string()))
}

fn write_value(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                if is_block(c) {
                    out.push_str(&format!("{pad}{}:\n", key_text(k)));
                    let child_indent = if c.is_array() { indent } else { indent + 2 };
                    write_value(out, c, child_indent);
                } else {
                    out.push_str(&format!("{pad}{}: {}\n", key_text(k), scalar(c)));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) {
                    // The first line of the item follows the dash.
                    let mut inner = String::new();
                    write_value(&mut inner, item, indent + 2);
                    let inner = inner
                        .strip_prefix(&" ".repeat(indent + 2))
                        .unwrap_or(&inner);
                    if item.is_array() {
                        out.push_str(&format!("{pad}-\n{}{inner}", " ".repeat(indent + 2)));
                    } else {
                        out.push_str(&format!("{pad}- {inner}"));
                    }
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// `v` as block-style YAML.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_reads_back_as_the_same_value() {
        let v = json!({"resources": {"jobs": {"my_job": {
            "name": "My job: nightly", "max_concurrent_runs": 1, "empty": {}, "flag": true,
            "tags": {"yes": "no", "n": "1.5"},
            "tasks": [{"task_key": "a", "notebook_task": {"notebook_path": "../src/nb.py"}},
                      {"task_key": "b", "depends_on": [{"task_key": "a"}], "libraries": [["x"]]}],
            "list": ["-x", "${var.y}", "plain text"]}}}});
        let text = to_yaml(&v);
        let (parsed, diags) =
            crate::config::source::parse_file(crate::config::source::FileId(0), &text);
        assert!(diags.is_empty(), "{diags:?}\n{text}");
        assert_eq!(parsed.to_json(), v, "{text}");
    }

    #[test]
    fn keys_come_from_names() {
        assert_eq!(key_from_name("My Job-1"), "my_job_1");
        assert_eq!(key_from_name("sharing-instance"), "sharing_instance");
        assert_eq!(key_from_name("42"), "r_42");
    }

    #[test]
    fn source_paths_are_relative_to_the_yaml() {
        assert_eq!(relative(Path::new("resources"), Path::new("src")), "../src");
        assert_eq!(
            relative(Path::new("resources/sub"), Path::new("src/app")),
            "../../src/app"
        );
        assert_eq!(relative(Path::new(""), Path::new("src")), "src");
    }
}
