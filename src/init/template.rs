//! Bundle templates for `lakebundle init`, embedded in the binary.
//!
//! A template is `templates/<name>/` in the repository:
//! - `lakebundle_template_schema.json`: a `description` and the ordered `properties` to ask
//!   for, each with `default`, `description` and optionally `pattern` (+
//!   `pattern_match_failure_message`) or `enum`;
//! - `template/...`: the files to write. Path components are rendered with the values
//!   (`{{project_name}}/databricks.yml`); a file ending in `.tmpl` is rendered with
//!   minijinja and written without the suffix, any other file is copied as is.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::diag::{did_you_mean, suggestions};

/// One embedded file: its path under `templates/` and its text.
pub struct EmbeddedFile {
    pub path: &'static str,
    pub contents: &'static str,
}

macro_rules! embed {
    ($($p:literal),* $(,)?) => {
        &[$(EmbeddedFile {
            path: $p,
            contents: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $p)),
        }),*]
    };
}

/// Every file under `templates/` (a test fails when this list and the directory differ).
pub const FILES: &[EmbeddedFile] = embed![
    "lakebase-app/lakebundle_template_schema.json",
    "lakebase-app/template/{{project_name}}/.gitignore",
    "lakebase-app/template/{{project_name}}/README.md.tmpl",
    "lakebase-app/template/{{project_name}}/app/app.py",
    "lakebase-app/template/{{project_name}}/app/app.yml.tmpl",
    "lakebase-app/template/{{project_name}}/app/requirements.txt",
    "lakebase-app/template/{{project_name}}/databricks.yml.tmpl",
    "lakebase-app/template/{{project_name}}/lake/{{source_catalog}}/{{source_schema}}/customers.csv",
    "lakebase-autoscaling/lakebundle_template_schema.json",
    "lakebase-autoscaling/template/{{project_name}}/.gitignore",
    "lakebase-autoscaling/template/{{project_name}}/README.md.tmpl",
    "lakebase-autoscaling/template/{{project_name}}/databricks.yml.tmpl",
    "minimal/lakebundle_template_schema.json",
    "minimal/template/{{project_name}}/.gitignore",
    "minimal/template/{{project_name}}/README.md.tmpl",
    "minimal/template/{{project_name}}/databricks.yml.tmpl",
];

const SCHEMA_FILE: &str = "lakebundle_template_schema.json";

/// The template used when none is named and nobody can be asked.
pub const DEFAULT_TEMPLATE: &str = "lakebase-app";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InitError {
    #[error("unknown template `{name}`{}; the templates are: {available}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    #[diagnostic(code(lakebundle::init::unknown_template))]
    UnknownTemplate {
        name: String,
        suggestion: Option<String>,
        available: String,
    },
    #[error("invalid {key} {value:?}: {reason}")]
    #[diagnostic(code(lakebundle::init::invalid_value))]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{file}: unknown key `{key}`{}; the template `{template}` asks for: {known}", .suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    #[diagnostic(code(lakebundle::init::unknown_key))]
    UnknownKey {
        file: String,
        key: String,
        suggestion: Option<String>,
        template: String,
        known: String,
    },
    #[error("{file}: {message}")]
    #[diagnostic(code(lakebundle::init::config_file))]
    ConfigFile { file: String, message: String },
    #[error("{} already exists and is not empty; choose another --output-dir or project_name, or remove it", .0.display())]
    #[diagnostic(code(lakebundle::init::output_exists))]
    OutputExists(PathBuf),
    #[error("{}: {source}", .path.display())]
    #[diagnostic(code(lakebundle::init::io))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A defect of an embedded template, not of the user's input.
    #[error("template {path}: {message}")]
    #[diagnostic(code(lakebundle::init::template))]
    Template { path: String, message: String },
}

/// What the template asks for, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSchema {
    pub description: String,
    pub properties: IndexMap<String, Prompt>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    /// Only `string` for now: parsed so a schema names it (unknown fields are
    /// refused); the built-in templates are checked to say `string`.
    #[serde(rename = "type")]
    #[allow(dead_code)]
    pub kind: String,
    pub default: String,
    pub description: String,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub pattern_match_failure_message: Option<String>,
    #[serde(default, rename = "enum")]
    pub choices: Option<Vec<String>>,
}

impl Prompt {
    /// Check one value; the error says what is allowed.
    pub fn check(&self, key: &str, value: &str) -> Result<(), InitError> {
        let invalid = |reason: String| InitError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        if let Some(choices) = &self.choices {
            if !choices.iter().any(|c| c == value) {
                let hint = did_you_mean(value, choices.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(invalid(format!(
                    "choose one of {}{hint}",
                    choices.join(", ")
                )));
            }
        }
        if let Some(pattern) = &self.pattern {
            let re = regex::Regex::new(pattern).map_err(|e| InitError::Template {
                path: key.to_string(),
                message: format!("bad pattern: {e}"),
            })?;
            if !re.is_match(value) {
                return Err(invalid(
                    self.pattern_match_failure_message
                        .clone()
                        .unwrap_or_else(|| format!("must match {pattern}")),
                ));
            }
        }
        Ok(())
    }
}

/// A built-in template.
pub struct Template {
    pub name: &'static str,
    pub schema: TemplateSchema,
    /// Files under `template/`: (relative path, contents).
    files: Vec<(&'static str, &'static str)>,
}

/// Names of the built-in templates, sorted.
pub fn names() -> Vec<&'static str> {
    let mut n: Vec<&'static str> = FILES
        .iter()
        .filter_map(|f| f.path.split('/').next())
        .collect();
    n.sort_unstable();
    n.dedup();
    n
}

/// The built-in template `name`, or an error with a did-you-mean and the list.
pub fn find(name: &str) -> Result<Template, InitError> {
    let all = names();
    let Some(&found) = all.iter().find(|n| **n == name) else {
        return Err(InitError::UnknownTemplate {
            name: name.to_string(),
            suggestion: did_you_mean(name, all.iter().copied()).map(str::to_string),
            available: all.join(", "),
        });
    };
    let prefix = format!("{found}/");
    let mut schema = None;
    let mut files = Vec::new();
    for f in FILES {
        let Some(rel) = f.path.strip_prefix(&prefix) else {
            continue;
        };
        if rel == SCHEMA_FILE {
            schema = Some(
                serde_json::from_str::<TemplateSchema>(f.contents).map_err(|e| {
                    InitError::Template {
                        path: f.path.to_string(),
                        message: e.to_string(),
                    }
                })?,
            );
        } else if let Some(inner) = rel.strip_prefix("template/") {
            files.push((inner, f.contents));
        }
    }
    let schema = schema.ok_or_else(|| InitError::Template {
        path: found.to_string(),
        message: format!("no {SCHEMA_FILE}"),
    })?;
    Ok(Template {
        name: found,
        schema,
        files,
    })
}

/// Values from a `--config-file` JSON object: every key must be a prompt of the
/// template and every value a valid string for it.
pub fn config_values(
    template: &Template,
    file: &Path,
    text: &str,
) -> Result<BTreeMap<String, String>, InitError> {
    let file_name = file.display().to_string();
    let bad = |message: String| InitError::ConfigFile {
        file: file_name.clone(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("expected a JSON object of prompt values".into()))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let Some(prompt) = template.schema.properties.get(k) else {
            let known: Vec<&str> = template
                .schema
                .properties
                .keys()
                .map(String::as_str)
                .collect();
            return Err(InitError::UnknownKey {
                file: file_name.clone(),
                key: k.clone(),
                suggestion: suggestions(k, known.iter().copied())
                    .first()
                    .map(|s| s.to_string()),
                template: template.name.to_string(),
                known: known.join(", "),
            });
        };
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            // Numbers and booleans are accepted as their text.
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => return Err(bad(format!("`{k}` must be a string, not {other}"))),
        };
        prompt.check(k, &s)?;
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// One file to write: path relative to the output dir, contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // A typo'd variable in a template is a defect, not an empty string.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env
}

/// Render every file with `values` (all prompts must have a checked value).
pub fn render(
    template: &Template,
    values: &BTreeMap<String, String>,
) -> Result<Vec<RenderedFile>, InitError> {
    let env = environment();
    let ctx = minijinja::Value::from_serialize(values);
    let fail = |path: &str, e: minijinja::Error| InitError::Template {
        path: format!("{}/template/{path}", template.name),
        message: e.to_string(),
    };
    let mut out = Vec::new();
    for (path, contents) in &template.files {
        let rendered_path = env.render_str(path, &ctx).map_err(|e| fail(path, e))?;
        let (rendered_path, text) = match rendered_path.strip_suffix(".tmpl") {
            Some(p) => (
                p.to_string(),
                env.render_str(contents, &ctx).map_err(|e| fail(path, e))?,
            ),
            None => (rendered_path, contents.to_string()),
        };
        let rel = PathBuf::from(&rendered_path);
        // Values are validated, but a path must never leave the output dir.
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(InitError::Template {
                path: path.to_string(),
                message: format!("renders to {rendered_path:?}, outside the output directory"),
            });
        }
        out.push(RenderedFile {
            path: rel,
            contents: text,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The top-level directories the files go into (the project directory).
pub fn roots(files: &[RenderedFile]) -> Vec<PathBuf> {
    let mut r: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.path.components().next())
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    r.sort();
    r.dedup();
    r
}

/// Write the files under `output_dir`, refusing when a directory they go into
/// already exists with anything in it. Returns the paths written.
pub fn write(output_dir: &Path, files: &[RenderedFile]) -> Result<Vec<PathBuf>, InitError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Io { path, source }
    };
    for root in roots(files) {
        let dir = output_dir.join(&root);
        if dir.exists() {
            let non_empty =
                !dir.is_dir() || std::fs::read_dir(&dir).map_err(io(&dir))?.next().is_some();
            if non_empty {
                return Err(InitError::OutputExists(dir));
            }
        }
    }
    let mut written = Vec::new();
    for f in files {
        let path = output_dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, &f.contents).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(t: &Template) -> BTreeMap<String, String> {
        t.schema
            .properties
            .iter()
            .map(|(k, p)| (k.clone(), p.default.clone()))
            .collect()
    }

    #[test]
    fn the_embedded_list_matches_the_templates_directory() {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("read templates dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    let rel = p.strip_prefix(base).expect("under templates");
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk = Vec::new();
        walk(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|f| f.path.to_string()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "update FILES in src/init/template.rs to list every file under templates/"
        );
    }

    #[test]
    fn every_template_renders_with_its_defaults_and_its_defaults_are_valid() {
        assert_eq!(names(), ["lakebase-app", "lakebase-autoscaling", "minimal"]);
        for name in names() {
            let t = find(name).expect("template");
            for (k, p) in &t.schema.properties {
                assert_eq!(p.kind, "string", "{name}.{k}");
                p.check(k, &p.default).expect("default is valid");
            }
            let files = render(&t, &defaults(&t)).expect("renders");
            assert!(files.iter().any(|f| f.path.ends_with("databricks.yml")));
            assert!(files.iter().any(|f| f.path.ends_with("README.md")));
            assert!(files
                .iter()
                .all(|f| !f.path.to_string_lossy().contains("{{")));
            assert!(files
                .iter()
                .all(|f| f.path.extension().is_none_or(|e| e != "tmpl")));
            assert_eq!(roots(&files).len(), 1, "one project directory");
        }
    }

    #[test]
    fn unknown_template_suggests_and_lists() {
        let e = find("lakebase_ap").err().expect("unknown");
        let msg = e.to_string();
        assert!(msg.contains("did you mean `lakebase-app`?"), "{msg}");
        assert!(
            msg.contains("lakebase-app, lakebase-autoscaling, minimal"),
            "{msg}"
        );
        let e = find("zzz").err().expect("unknown");
        assert!(!e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn values_are_validated_with_the_schema_message() {
        let t = find("lakebase-app").expect("template");
        let p = &t.schema.properties["project_name"];
        let e = p.check("project_name", "My App").expect_err("invalid");
        assert!(
            e.to_string()
                .contains("lowercase letters, digits and underscores"),
            "{e}"
        );
        assert!(p.check("project_name", "../x").is_err());
        let cap = &t.schema.properties["capacity"];
        let e = cap.check("capacity", "CU_3").expect_err("not a choice");
        assert!(e.to_string().contains("CU_1, CU_2, CU_4, CU_8"), "{e}");
    }

    #[test]
    fn config_files_are_checked_key_by_key() {
        let t = find("minimal").expect("template");
        let f = Path::new("cfg.json");
        let v = config_values(&t, f, r#"{"project_name": "orders"}"#).expect("ok");
        assert_eq!(v["project_name"], "orders");
        let e = config_values(&t, f, r#"{"project_nme": "orders"}"#).expect_err("typo");
        assert!(
            e.to_string().contains("did you mean `project_name`?"),
            "{e}"
        );
        let e = config_values(&t, f, r#"{"project_name": "Orders!"}"#).expect_err("bad");
        assert!(e.to_string().contains("invalid project_name"), "{e}");
        let e = config_values(&t, f, "[1]").expect_err("not an object");
        assert!(
            e.to_string()
                .starts_with("cfg.json: expected a JSON object"),
            "{e}"
        );
        let e = config_values(&t, f, "{").expect_err("not JSON");
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }

    #[test]
    fn writing_refuses_a_non_empty_project_directory() {
        let t = find("minimal").expect("template");
        let files = render(&t, &defaults(&t)).expect("renders");
        let out = tempfile::tempdir().expect("tempdir");
        // An empty directory of that name is fine.
        std::fs::create_dir(out.path().join("my_lakebase")).expect("mkdir");
        let written = write(out.path(), &files).expect("written");
        assert_eq!(written.len(), files.len());
        let e = write(out.path(), &files).expect_err("exists");
        assert!(
            matches!(&e, InitError::OutputExists(p) if p.ends_with("my_lakebase")),
            "{e}"
        );
    }
}
