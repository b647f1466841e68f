//! `artifacts`: files built locally (Python wheels, mostly) and uploaded on
//! deploy, as the official CLI does.
//!
//! Three steps, at three moments:
//! - [`check_and_point`] (every workspace command, before the file-path
//!   rewrite): checks the `artifacts` section and points job libraries and
//!   environment dependencies that name an artifact's output at the
//!   uploaded copy, `${workspace.artifact_path}/.internal/<file name>`. The
//!   file-path rewrite then leaves them alone (they are workspace paths).
//! - [`build::build_all`] (`deploy` only, before the session opens, so the
//!   pointing above sees the fresh files): runs each artifact's build and
//!   resolves its `files` globs.
//! - [`upload::upload`] (`deploy`, before the file sync): clears
//!   `.internal`, then uploads every built file there.
//!
//! `plan` and `validate` never build: before the first build a library
//! pointing at `./dist/*.whl` is shown as `.../.internal/*.whl` (built at
//! deploy).

pub mod build;
pub mod dynamic;
pub mod upload;

use std::path::{Path, PathBuf};

use crate::config::model::Bundle;
use crate::config::source::{Node, NodeKind, ScalarStyle, SourceMap, Span};
use crate::diag::{Diag, Diagnostics};
use crate::resources::WorkspacePaths;

/// Shells a `build` command may run with.
pub const EXECUTABLES: &[&str] = &["bash", "sh", "cmd"];

/// One `files` entry: an absolute glob.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// Absolute pattern (relative entries resolved against their YAML file).
    pub pattern: PathBuf,
    /// As written.
    pub written: String,
    pub span: Span,
}

/// One `artifacts.<name>` entry, paths made absolute.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: String,
    /// `whl`, `jar`, or none.
    pub kind: Option<String>,
    /// Directory the build runs in.
    pub path: PathBuf,
    /// The `build` command as written.
    pub build: Option<String>,
    pub executable: Option<String>,
    /// Explicit `files`, else the default (`<path>/dist/*.whl` for a wheel).
    pub files: Vec<FileSource>,
    pub dynamic_version: bool,
}

impl Artifact {
    pub fn is_whl(&self) -> bool {
        self.kind.as_deref() == Some("whl")
    }

    /// Whether deploy runs a build for it: an explicit command, or the
    /// default wheel build.
    pub fn builds(&self) -> bool {
        self.build.is_some() || self.is_whl()
    }
}

/// Directory a relative path written at `span` is relative to: its YAML
/// file's directory, else the bundle root.
fn base_dir(root: &Path, sources: &SourceMap, span: Span) -> PathBuf {
    if span.is_synthetic() {
        return root.to_path_buf();
    }
    match sources.path(span.file).and_then(Path::parent) {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        Some(dir) => root.join(dir),
        None => root.to_path_buf(),
    }
}

pub(crate) use crate::apply::files::normalise;

fn str_field<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.get(key).and_then(Node::as_str)
}

/// The `artifacts` section, parsed; problems are diagnostics at the YAML.
pub fn parse(bundle: &Bundle) -> (Vec<Artifact>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut out = Vec::new();
    let Some(section) = bundle.tree.get("artifacts") else {
        return (out, diags);
    };
    let Some(map) = section.as_map() else {
        if !matches!(section.kind, NodeKind::Null) {
            diags.push(
                Diag::error("`artifacts` must be a mapping of artifact names")
                    .at(section.span, format!("found {}", section.type_name())),
            );
        }
        return (out, diags);
    };
    let dynamic_preset = bundle
        .tree
        .pointer(&["presets", "artifacts_dynamic_version"])
        .is_some_and(|n| matches!(n.kind, NodeKind::Bool(true)));
    for (key, node) in &map.entries {
        let name = key.name.clone();
        if node.as_map().is_none_or(|m| m.is_empty()) {
            diags.push(
                Diag::error(format!("artifact {name:?} is not configured"))
                    .at(key.span, "no properties")
                    .help("give it a `build` command and/or `files`, or a `type: whl` and `path`"),
            );
            continue;
        }
        let base = base_dir(&bundle.root, &bundle.sources, node.span);
        let path = match node.get("path") {
            Some(p) => match p.as_str() {
                Some(s) => normalise(&base_dir(&bundle.root, &bundle.sources, p.span).join(s)),
                None => {
                    diags.push(
                        Diag::error(format!("artifacts.{name}.path must be a string"))
                            .at(p.span, format!("found {}", p.type_name())),
                    );
                    continue;
                }
            },
            None => normalise(&base),
        };
        let kind = str_field(node, "type").map(str::to_string);
        let build = node.get("build").and_then(|b| match &b.kind {
            NodeKind::String(s, _) => Some(s.clone()),
            // `build: true` (a YAML bool) is the command `true`.
            NodeKind::Bool(v) => Some(v.to_string()),
            _ => None,
        });
        let executable = str_field(node, "executable").map(str::to_string);
        if let (Some(exe), Some(n)) = (&executable, node.get("executable")) {
            if !EXECUTABLES.contains(&exe.as_str()) {
                let mut d = Diag::error(format!(
                    "{exe:?} is not supported as an artifact executable"
                ))
                .at(n.span, "unknown shell")
                .help("use one of: bash, sh, cmd");
                if let Some(best) = EXECUTABLES
                    .iter()
                    .min_by_key(|e| strsim::levenshtein(e, exe))
                    .filter(|e| strsim::levenshtein(e, exe) <= 2)
                {
                    d = d.add_help(format!("did you mean `{best}`?"));
                }
                diags.push(d);
            }
        }
        let dynamic_version = match node.get("dynamic_version").map(|n| &n.kind) {
            Some(NodeKind::Bool(b)) => *b,
            _ => dynamic_preset,
        };
        let mut files = Vec::new();
        for entry in node.get("files").and_then(Node::as_seq).unwrap_or_default() {
            let Some(src) = entry.get("source") else {
                diags.push(
                    Diag::error(format!("artifacts.{name}.files entry has no `source`"))
                        .at(entry.span, "missing `source`")
                        .help("write `- source: ./dist/*.whl`"),
                );
                continue;
            };
            let Some(written) = src.as_str() else {
                diags.push(
                    Diag::error(format!("artifacts.{name}.files source must be a string"))
                        .at(src.span, format!("found {}", src.type_name())),
                );
                continue;
            };
            let pattern =
                normalise(&base_dir(&bundle.root, &bundle.sources, src.span).join(written));
            if let Err(e) = glob::Pattern::new(&pattern.to_string_lossy()) {
                diags.push(
                    Diag::error(format!("{written}: invalid glob pattern: {}", e.msg))
                        .at(src.span, "not a valid pattern")
                        .help("escape `[` and `]` as `[[]` and `[]]`"),
                );
                continue;
            }
            files.push(FileSource {
                pattern,
                written: written.to_string(),
                span: src.span,
            });
        }
        if files.is_empty() && node.get("files").is_none() && kind.as_deref() == Some("whl") {
            files.push(FileSource {
                pattern: path.join("dist").join("*.whl"),
                written: "dist/*.whl".into(),
                span: node.span,
            });
        }
        let art = Artifact {
            name,
            kind,
            path,
            build,
            executable,
            files,
            dynamic_version,
        };
        // Without a build step the files must already be there.
        if !art.builds() {
            for f in &art.files {
                if build::glob_files(&f.pattern).is_empty() {
                    diags.push(
                        Diag::error(format!("{}: no matching files", f.written))
                            .at(f.span, "matches nothing")
                            .help("build the file first, or give the artifact a `build` command"),
                    );
                }
            }
        }
        out.push(art);
    }
    (out, diags)
}

/// One line per artifact for `validate`: name, type, what builds it, where
/// its files land.
pub fn describe(bundle: &Bundle) -> Vec<String> {
    let rel = |p: &Path| {
        p.strip_prefix(&bundle.root)
            .map(|r| format!("./{}", r.to_string_lossy()))
            .unwrap_or_else(|_| p.display().to_string())
    };
    parse(bundle)
        .0
        .iter()
        .map(|a| {
            let build = match (&a.build, a.is_whl()) {
                (Some(b), _) => format!("`{}`", b.lines().next().unwrap_or_default()),
                (None, true) => "`uv build --wheel` (or `python3 -m build --wheel`)".into(),
                (None, false) => "no build".into(),
            };
            let files: Vec<String> = a.files.iter().map(|f| rel(&f.pattern)).collect();
            format!(
                "{}: {} in {}, {build}, files {}",
                a.name,
                a.kind.as_deref().unwrap_or("untyped"),
                rel(&a.path),
                if files.is_empty() {
                    "none".into()
                } else {
                    files.join(", ")
                }
            )
        })
        .collect()
}

/// `${workspace.artifact_path}/.internal` as a workspace path.
pub fn internal_dir(artifact_path: &str) -> String {
    let p = artifact_path.trim_end_matches('/');
    let p = if p.starts_with('/')
        && !p.starts_with("/Workspace/")
        && !p.starts_with("/Volumes/")
        && p != "/Workspace"
    {
        format!("/Workspace{p}")
    } else {
        p.to_string()
    };
    format!("{p}/.internal")
}

/// A library value that names something already remote.
fn is_remote(s: &str) -> bool {
    s.starts_with('/')
        || s.contains("://")
        || s.starts_with("dbfs:")
        || s.contains("${")
        || s.starts_with('~')
}

/// What a local library value becomes, when it names an artifact's output.
struct Pointer<'a> {
    root: &'a Path,
    target: &'a str,
    sources: &'a SourceMap,
    artifacts: &'a [Artifact],
    internal: String,
}

impl Pointer<'_> {
    /// The workspace paths for `value` (written at `span`), or None when it is
    /// not an artifact's output. Before the build (no file yet) the pattern
    /// itself stands in, under `.internal`.
    fn remote_for(&self, value: &str, span: Span) -> Option<Vec<String>> {
        let value = value.trim();
        if value.is_empty() || is_remote(value) {
            return None;
        }
        let abs = normalise(&base_dir(self.root, self.sources, span).join(value));
        let abs_s = abs.to_string_lossy().to_string();
        let outputs: Vec<&FileSource> = self.artifacts.iter().flat_map(|a| &a.files).collect();
        let produced_by_artifact = |p: &Path| {
            outputs.iter().any(|f| {
                glob::Pattern::new(&f.pattern.to_string_lossy()).is_ok_and(|g| g.matches_path(p))
            })
        };
        let matches: Vec<PathBuf> = build::glob_files(&abs)
            .into_iter()
            .filter(|p| produced_by_artifact(p))
            .collect();
        if !matches.is_empty() {
            return Some(
                matches
                    .iter()
                    .filter_map(|p| {
                        let name = p.file_name()?.to_string_lossy().into_owned();
                        Some(self.uploaded_name(p, name))
                    })
                    .map(|n| format!("{}/{n}", self.internal))
                    .collect(),
            );
        }
        // Nothing built yet: the value is an output when it is one of the
        // artifacts' patterns, or a name inside one.
        let is_output = outputs.iter().any(|f| f.pattern == abs)
            || (!abs_s.contains(['*', '?', '[']) && produced_by_artifact(&abs));
        if !is_output {
            return None;
        }
        let name = abs.file_name()?.to_string_lossy().to_string();
        Some(vec![format!("{}/{name}", self.internal)])
    }

    /// The name a built file is uploaded under: with `dynamic_version`, the
    /// patched copy's (made by this deploy's build, or the last deploy's for
    /// `plan`); else its own.
    fn uploaded_name(&self, built: &Path, name: String) -> String {
        let dynamic = self.artifacts.iter().find(|a| {
            a.dynamic_version
                && a.files.iter().any(|f| {
                    glob::Pattern::new(&f.pattern.to_string_lossy())
                        .is_ok_and(|g| g.matches_path(built))
                })
        });
        dynamic
            .and_then(|a| dynamic::existing_patch(self.root, self.target, &a.name, &name))
            .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .unwrap_or(name)
    }

    /// `libraries: [{whl: ...}, ...]`: an entry naming several built files
    /// becomes one entry per file.
    fn libraries(&self, libs: &mut Node) {
        let NodeKind::Seq(items) = &mut libs.kind else {
            return;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            let found = ["whl", "jar", "egg"].iter().find_map(|k| {
                let v = item.get(k)?;
                let remote = self.remote_for(v.as_str()?, v.span)?;
                Some((*k, remote))
            });
            match found {
                Some((key, remote)) => {
                    for r in remote {
                        let mut e = item.clone();
                        if let Some(v) = e.as_map_mut().and_then(|m| m.get_mut(key)) {
                            v.kind = NodeKind::String(r, ScalarStyle::Quoted);
                        }
                        out.push(e);
                    }
                }
                None => out.push(item),
            }
        }
        *items = out;
    }

    fn dependencies(&self, deps: &mut Node) {
        let NodeKind::Seq(items) = &mut deps.kind else {
            return;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            match item.as_str().and_then(|s| self.remote_for(s, item.span)) {
                Some(remote) => {
                    for r in remote {
                        out.push(Node::new(
                            NodeKind::String(r, ScalarStyle::Quoted),
                            item.span,
                        ));
                    }
                }
                None => out.push(item),
            }
        }
        *items = out;
    }

    fn task(&self, task: &mut Node) {
        if let Some(m) = task.as_map_mut() {
            if let Some(libs) = m.get_mut("libraries") {
                self.libraries(libs);
            }
            if let Some(inner) = m
                .get_mut("for_each_task")
                .and_then(Node::as_map_mut)
                .and_then(|f| f.get_mut("task"))
            {
                self.task(inner);
            }
        }
    }

    fn job(&self, job: &mut Node) {
        let Some(m) = job.as_map_mut() else { return };
        if let Some(NodeKind::Seq(tasks)) = m.get_mut("tasks").map(|n| &mut n.kind) {
            for t in tasks {
                self.task(t);
            }
        }
        if let Some(NodeKind::Seq(envs)) = m.get_mut("environments").map(|n| &mut n.kind) {
            for env in envs {
                if let Some(deps) = env
                    .as_map_mut()
                    .and_then(|e| e.get_mut("spec"))
                    .and_then(Node::as_map_mut)
                    .and_then(|s| s.get_mut("dependencies"))
                {
                    self.dependencies(deps);
                }
            }
        }
    }
}

/// Check the `artifacts` section and point job libraries / environment
/// dependencies that name an artifact's output at its uploaded copy under
/// `${workspace.artifact_path}/.internal`. Run before the file-path rewrite.
pub fn check_and_point(bundle: &mut Bundle) -> Diagnostics {
    let (artifacts, diags) = parse(bundle);
    if artifacts.is_empty() {
        return diags;
    }
    let pointer = Pointer {
        root: &bundle.root,
        target: &bundle.target,
        sources: &bundle.sources,
        artifacts: &artifacts,
        internal: internal_dir(&bundle.workspace.artifact_path),
    };
    let mut updated = Vec::new();
    for (addr, rc) in bundle.resources.iter() {
        // Artifacts attach to job settings (task libraries, environments).
        if !matches!(
            addr.kind.info().workspace_paths,
            WorkspacePaths::JobSettings
        ) {
            continue;
        }
        let mut node = rc.node.clone();
        pointer.job(&mut node);
        if node != rc.node {
            updated.push((addr.clone(), node));
        }
    }
    for (addr, node) in updated {
        if let Some(rc) = bundle.resources.get_mut(&addr) {
            rc.value = node.to_json();
            rc.node = node;
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dir_gets_the_workspace_prefix() {
        assert_eq!(
            internal_dir("/foo/bar/artifacts"),
            "/Workspace/foo/bar/artifacts/.internal"
        );
        assert_eq!(
            internal_dir("/Workspace/Users/u/.bundle/x/artifacts/"),
            "/Workspace/Users/u/.bundle/x/artifacts/.internal"
        );
        assert_eq!(internal_dir("/Volumes/c/s/v"), "/Volumes/c/s/v/.internal");
    }

    #[test]
    fn normalise_drops_dots() {
        assert_eq!(normalise(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
