//! Bundle file sync and local-path rewriting.
//!
//! Two halves, both run by the CLI front end:
//! - [`rewrite_paths`] (before planning, no I/O beyond `stat`): local relative
//!   paths in job tasks and apps become their workspace paths under
//!   `${workspace.file_path}`, as the official CLI does. A referenced file that
//!   is missing is an error pointing at the YAML.
//! - [`sync`] (before resources deploy): uploads the bundle's files to
//!   `${workspace.file_path}`, honouring `sync.include` / `sync.exclude` and
//!   `.gitignore`, incrementally: a manifest of content hashes
//!   (`.lakebundle/<target>/files.json`, mirrored to `${workspace.state_path}`
//!   so a fresh checkout still knows what was uploaded) decides what is sent and
//!   what is removed remotely.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use futures::stream::{self, StreamExt, TryStreamExt};
use globset::{GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Client, Method};
use crate::config::model::Bundle;
use crate::config::source::{Node, NodeKind, ScalarStyle, Span};
use crate::diag::{Diag, Diagnostics};
use crate::resources::{PathKind, ResourceAddr, WorkspacePaths};
use crate::state::private;

/// Directories never synced: VCS metadata and tool caches.
const ALWAYS_SKIPPED: &[&str] = &[".git", ".databricks", ".lakebundle"];

/// Extensions a workspace notebook loses on import.
const NOTEBOOK_EXTENSIONS: &[(&str, &str)] = &[
    ("py", "# Databricks notebook source"),
    ("sql", "-- Databricks notebook source"),
    ("scala", "// Databricks notebook source"),
    ("r", "# Databricks notebook source"),
    ("ipynb", ""),
];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FilesError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid sync pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
    #[error("walking bundle files: {0}")]
    Walk(String),
    #[error("syncing {path}: {source}")]
    Api {
        path: String,
        #[source]
        source: Box<ApiError>,
    },
}

// ---------------------------------------------------------------------------
// Local files

/// `sync.include` / `sync.exclude` / `sync.paths` of a resolved bundle.
#[derive(Debug, Clone, Default)]
pub struct SyncRules {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Sub-paths of the root to sync (default: the whole root).
    pub paths: Vec<String>,
}

impl SyncRules {
    pub fn from_value(sync: &Value) -> SyncRules {
        let list = |key: &str| -> Vec<String> {
            sync.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        SyncRules {
            include: list("include"),
            exclude: list("exclude"),
            paths: list("paths"),
        }
    }
}

/// Where the files sync from. `sync.paths` entries may reach above the
/// bundle root (`../common/lib`); the sync root is then the common ancestor of
/// the bundle root and every sync path, and files upload relative to it, as
/// the official CLI does. Without such entries it is the bundle root.
#[derive(Debug, Clone)]
pub struct SyncRoot {
    /// The directory files are uploaded relative to (normalised).
    pub root: PathBuf,
    /// The bundle root relative to `root` (`/`-separated, `""` when the same).
    pub bundle_rel: String,
    /// The rules rebased onto `root`: `paths` is never empty (`""` is all of
    /// `root`); include/exclude patterns are relative to `root`.
    pub rules: SyncRules,
}

impl SyncRoot {
    pub fn resolve(bundle_root: &Path, rules: &SyncRules) -> SyncRoot {
        let bundle_root = normalise(bundle_root);
        let mut root = bundle_root.clone();
        for p in &rules.paths {
            if let Some(candidate) = sync_path_ancestor(&bundle_root, p) {
                if candidate.components().count() < root.components().count() {
                    root = candidate;
                }
            }
        }
        let bundle_rel = rel_string(&root, &bundle_root).unwrap_or_default();
        let paths = if rules.paths.is_empty() {
            vec![bundle_rel.clone()]
        } else {
            rules
                .paths
                .iter()
                .filter_map(|p| rebase_sync_path(&bundle_root, &bundle_rel, p))
                .collect()
        };
        let patterns = |list: &[String]| -> Vec<String> {
            list.iter()
                .filter_map(|p| rebase_pattern(&bundle_rel, p))
                .collect()
        };
        SyncRoot {
            rules: SyncRules {
                include: patterns(&rules.include),
                exclude: patterns(&rules.exclude),
                paths,
            },
            root,
            bundle_rel,
        }
    }

    /// "the bundle root", or the sync root when `sync.paths` moved it up.
    fn label(&self) -> String {
        if self.bundle_rel.is_empty() {
            "the bundle root".into()
        } else {
            format!("the sync root {}", self.root.display())
        }
    }
}

/// The relative form of a `sync.paths` entry (`None`: an absolute path that
/// is not under the bundle root, which syncs nothing).
fn sync_path_relative(bundle_root: &Path, p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    if let Ok(rest) = path.strip_prefix(bundle_root) {
        return Some(rest.to_path_buf());
    }
    if p.starts_with('/') {
        // Anchored at the bundle root, like .gitignore, unless it is a real
        // absolute path (warned by `check_sync_settings`).
        return outside_root(bundle_root, p)
            .is_none()
            .then(|| PathBuf::from(p.trim_start_matches('/')));
    }
    Some(path.to_path_buf())
}

/// The ancestor of the bundle root a sync path reaches up to (the bundle root
/// itself when it stays inside); `None` for an absolute path or one above `/`.
fn sync_path_ancestor(bundle_root: &Path, p: &str) -> Option<PathBuf> {
    let rel = lexical(&sync_path_relative(bundle_root, p)?);
    let up = rel
        .components()
        .take_while(|c| *c == Component::ParentDir)
        .count();
    let mut root = bundle_root.to_path_buf();
    for _ in 0..up {
        if !root.pop() {
            return None;
        }
    }
    Some(root)
}

/// A `sync.paths` entry relative to the sync root (`""`: all of it).
fn rebase_sync_path(bundle_root: &Path, bundle_rel: &str, p: &str) -> Option<String> {
    let rel = sync_path_relative(bundle_root, p)?;
    let joined = lexical(&Path::new(bundle_rel).join(rel));
    if joined.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    Some(rel_string(Path::new(""), &joined).unwrap_or_default())
}

/// An include/exclude pattern (relative to the bundle root) relative to the
/// sync root; `None` when it points above the sync root.
fn rebase_pattern(bundle_rel: &str, p: &str) -> Option<String> {
    if bundle_rel.is_empty() {
        return Some(p.to_string());
    }
    let anchored = p.starts_with('/');
    let t = p.trim_start_matches("./").trim_start_matches('/');
    if !anchored && !t.trim_end_matches('/').contains('/') {
        // A bare name matches at any depth below the bundle root.
        return Some(format!("{bundle_rel}/**/{t}"));
    }
    let joined = lexical(&Path::new(bundle_rel).join(t));
    if joined.components().next() == Some(Component::ParentDir) {
        return None;
    }
    rel_string(Path::new(""), &joined)
}

/// Normalise `a/./b/../c` lexically, keeping leading `..` (unlike [`normalise`]).
fn lexical(path: &Path) -> PathBuf {
    let mut parts: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => parts.push(c),
            },
            other => parts.push(other),
        }
    }
    parts.iter().map(|c| c.as_os_str()).collect()
}

/// The git repository holding `dir`, if any.
fn git_repo_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// Gitignore-like patterns: `dist/*.whl` anchored at the root, a bare name
/// (`*.pyc`) matching at any depth, a directory matching everything below it.
fn glob_set(patterns: &[String]) -> Result<GlobSet, FilesError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let trimmed = p
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        if trimmed.is_empty() {
            continue;
        }
        let mut forms = vec![trimmed.to_string(), format!("{trimmed}/**")];
        if !trimmed.contains('/') {
            forms.push(format!("**/{trimmed}"));
            forms.push(format!("**/{trimmed}/**"));
        }
        for f in forms {
            let glob = globset::GlobBuilder::new(&f)
                .literal_separator(true)
                .build()
                .map_err(|e| FilesError::Pattern {
                    pattern: p.clone(),
                    message: e.to_string(),
                })?;
            b.add(glob);
        }
    }
    b.build().map_err(|e| FilesError::Pattern {
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

/// Relative path with `/` separators.
fn rel_string(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// A symlink the sync does not follow, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLink {
    /// Relative path of the link (`/`-separated).
    pub rel: String,
    pub reason: String,
}

/// What one walk of the bundle finds.
#[derive(Debug, Clone, Default)]
pub struct FileSet {
    /// Relative path (`/`-separated) → the path to read it from (through a
    /// followed symlink when it is one).
    pub files: BTreeMap<String, PathBuf>,
    /// Symlinks left out (they point outside the bundle root, nowhere, or
    /// into a loop).
    pub skipped: Vec<SkippedLink>,
}

/// One walk over the bundle's files.
struct Walker<'a> {
    canonical_root: &'a Path,
    /// How the root is named in a skipped link's reason.
    root_label: &'a str,
    honour_ignores: bool,
}

impl Walker<'_> {
    /// Files under `dir` as (relative path, path to read). Symlinks that
    /// resolve inside the bundle root are followed (a file link uploads the
    /// target's content at the link's path; a directory link is walked);
    /// others are recorded in `skipped`. `seen` holds the directories on
    /// the way down, so a link back up is a loop, not endless.
    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        seen: &mut Vec<PathBuf>,
        out: &mut FileSet,
    ) -> Result<(), FilesError> {
        let mut builder = ignore::WalkBuilder::new(dir);
        builder
            .hidden(false)
            .parents(self.honour_ignores)
            .git_ignore(self.honour_ignores)
            .git_exclude(self.honour_ignores)
            .git_global(false)
            .ignore(false)
            .require_git(false)
            .follow_links(false)
            .filter_entry(|e| {
                let name = e.file_name().to_string_lossy();
                !(e.depth() > 0 && ALWAYS_SKIPPED.contains(&name.as_ref()))
            });
        for entry in builder.build() {
            let entry = entry.map_err(|e| FilesError::Walk(e.to_string()))?;
            let Some(sub) = rel_string(dir, entry.path()) else {
                continue;
            };
            let rel = if prefix.is_empty() {
                sub
            } else {
                format!("{prefix}/{sub}")
            };
            if entry.path_is_symlink() {
                self.link(entry.path(), rel, seen, out)?;
            } else if entry.file_type().is_some_and(|t| t.is_file()) {
                out.files.insert(rel, entry.into_path());
            }
        }
        Ok(())
    }

    fn link(
        &self,
        link: &Path,
        rel: String,
        seen: &mut Vec<PathBuf>,
        out: &mut FileSet,
    ) -> Result<(), FilesError> {
        let skip = |out: &mut FileSet, reason: String| {
            out.skipped.push(SkippedLink {
                rel: rel.clone(),
                reason,
            })
        };
        let target = match std::fs::canonicalize(link) {
            Ok(t) => t,
            Err(_) => {
                let to = std::fs::read_link(link)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                skip(out, format!("it points to {to:?}, which does not exist"));
                return Ok(());
            }
        };
        if !target.starts_with(self.canonical_root) {
            skip(
                out,
                format!(
                    "it points outside {}, to {}",
                    self.root_label,
                    target.display()
                ),
            );
            return Ok(());
        }
        if target.is_file() {
            out.files.insert(rel, link.to_path_buf());
        } else if target.is_dir() {
            // A link to one of its own ancestors (or to a directory being
            // walked through another link) would walk forever.
            let parent = link.parent().and_then(|p| std::fs::canonicalize(p).ok());
            let loops = parent.is_some_and(|p| p.starts_with(&target))
                || seen.iter().any(|d| d.starts_with(&target));
            if loops {
                skip(out, format!("it loops back to {}", target.display()));
                return Ok(());
            }
            seen.push(target.clone());
            self.walk(&target, &rel, seen, out)?;
            seen.pop();
        }
        Ok(())
    }
}

/// Every file to sync and every symlink left out, for a bundle rooted at `root`.
pub fn collect(root: &Path, rules: &SyncRules) -> Result<FileSet, FilesError> {
    collect_in(&SyncRoot::resolve(root, rules))
}

/// Every file under the sync root's paths (keys relative to the sync root).
pub fn collect_in(sync: &SyncRoot) -> Result<FileSet, FilesError> {
    let rules = &sync.rules;
    let include = glob_set(&rules.include)?;
    let exclude = glob_set(&rules.exclude)?;
    let root = sync.root.as_path();
    let canonical_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let root_label = sync.label();
    let mut out = FileSet::default();
    for start in &rules.paths {
        let dir = if start.is_empty() {
            root.to_path_buf()
        } else {
            root.join(start)
        };
        // A sync path that does not exist syncs nothing (warned by `check_files`).
        if !dir.exists() && !dir.is_symlink() {
            continue;
        }
        let mut seen = vec![canonical_root.clone()];
        for honour_ignores in [true, false] {
            // `sync.include` brings back files that .gitignore hides (build output).
            if !honour_ignores && rules.include.is_empty() {
                continue;
            }
            let mut found = FileSet::default();
            let w = Walker {
                canonical_root: &canonical_root,
                root_label: &root_label,
                honour_ignores,
            };
            if dir.is_symlink() {
                w.link(&dir, start.clone(), &mut seen, &mut found)?;
            } else if dir.is_file() {
                found.files.insert(start.clone(), dir.clone());
            } else {
                w.walk(&dir, start, &mut seen, &mut found)?;
            }
            for (rel, path) in found.files {
                let keep = !exclude.is_match(&rel) && (honour_ignores || include.is_match(&rel));
                if keep {
                    out.files.insert(rel, path);
                }
            }
            for s in found.skipped {
                let wanted = honour_ignores || include.is_match(&s.rel);
                if wanted && !exclude.is_match(&s.rel) && !out.skipped.contains(&s) {
                    out.skipped.push(s);
                }
            }
        }
    }
    Ok(out)
}

/// Every file to sync: relative path (`/`-separated) → path to read.
pub fn collect_files(
    root: &Path,
    rules: &SyncRules,
) -> Result<BTreeMap<String, PathBuf>, FilesError> {
    collect(root, rules).map(|set| set.files)
}

/// Whether a file imports as a workspace notebook (and so loses its extension).
pub fn is_notebook(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let Some((_, header)) = NOTEBOOK_EXTENSIONS.iter().find(|(e, _)| *e == ext) else {
        return false;
    };
    if header.is_empty() {
        return true;
    }
    match std::fs::read(path) {
        Ok(bytes) => bytes.starts_with(header.as_bytes()),
        Err(_) => false,
    }
}

/// Workspace path of a synced file: notebooks drop their extension.
fn remote_path(file_path: &str, rel: &str, notebook: bool) -> String {
    let rel = if notebook {
        match rel.rsplit_once('.') {
            Some((stem, _)) if !stem.ends_with('/') => stem,
            _ => rel,
        }
    } else {
        rel
    };
    format!("{}/{}", file_path.trim_end_matches('/'), rel)
}

// ---------------------------------------------------------------------------
// Manifest

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub sha256: String,
    pub remote: String,
}

/// What was last uploaded, per relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// The `file_path` the files went to; a change re-uploads everything.
    pub file_path: String,
    pub files: BTreeMap<String, ManifestEntry>,
}

pub fn local_manifest_path(bundle: &Bundle) -> PathBuf {
    bundle
        .root
        .join(".lakebundle")
        .join(&bundle.target)
        .join("files.json")
}

fn remote_manifest_path(bundle: &Bundle) -> String {
    format!(
        "{}/files.json",
        bundle.workspace.state_path.trim_end_matches('/')
    )
}

fn read_local_manifest(path: &Path) -> Option<Manifest> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Atomic write: a temp file in the same directory, then rename. The file is
/// owner-only (0600) and a directory created for it 0700: plans and
/// manifests name resources and workspace paths.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FilesError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let write_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| FilesError::Write { path: p, source }
    };
    if !dir.as_os_str().is_empty() {
        private::create_dir_all(dir).map_err(write_err(dir))?;
    }
    private::write_atomic(path, bytes).map_err(write_err(path))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The sync work: what to send and what to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncDiff {
    /// Relative paths to upload.
    pub upload: Vec<String>,
    /// Remote paths to delete.
    pub delete: Vec<String>,
    pub unchanged: usize,
}

/// Compare the new manifest against the previous one.
pub fn diff_manifests(old: &Manifest, new: &Manifest) -> SyncDiff {
    let same_root = old.file_path == new.file_path;
    let mut d = SyncDiff::default();
    for (rel, entry) in &new.files {
        match old.files.get(rel) {
            Some(prev) if same_root && prev == entry => d.unchanged += 1,
            _ => d.upload.push(rel.clone()),
        }
    }
    let new_remotes: BTreeSet<&str> = new.files.values().map(|e| e.remote.as_str()).collect();
    for entry in old.files.values() {
        if !new_remotes.contains(entry.remote.as_str()) {
            d.delete.push(entry.remote.clone());
        }
    }
    d
}

/// Hash every file (in parallel) into a manifest for `file_path`.
pub fn build_manifest(
    files: &BTreeMap<String, PathBuf>,
    file_path: &str,
) -> Result<Manifest, FilesError> {
    use rayon::prelude::*;
    let entries: Result<Vec<(String, ManifestEntry)>, FilesError> = files
        .par_iter()
        .map(|(rel, abs)| {
            let bytes = std::fs::read(abs).map_err(|source| FilesError::Read {
                path: abs.clone(),
                source,
            })?;
            let notebook = is_notebook(abs);
            Ok((
                rel.clone(),
                ManifestEntry {
                    sha256: sha256_hex(&bytes),
                    remote: remote_path(file_path, rel, notebook),
                },
            ))
        })
        .collect();
    Ok(Manifest {
        format_version: 1,
        file_path: file_path.to_string(),
        files: entries?.into_iter().collect(),
    })
}

// ---------------------------------------------------------------------------
// Remote sync

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub parallelism: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions { parallelism: 10 }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub uploaded: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: usize,
}

// The workspace calls below are all safe to repeat (mkdir -p, import with
// overwrite, delete), so the client retries their transient failures and lost
// responses itself (see `api::retry::classify`).

fn api_err(path: &str) -> impl FnOnce(ApiError) -> FilesError + '_ {
    move |source| FilesError::Api {
        path: path.to_string(),
        source: Box::new(source),
    }
}

async fn mkdirs(client: &Client, path: &str) -> Result<(), FilesError> {
    client.workspace().mkdirs(path).await.map_err(api_err(path))
}

async fn import(client: &Client, path: &str, bytes: &[u8]) -> Result<(), FilesError> {
    client
        .workspace()
        .import(path, bytes, "AUTO", true)
        .await
        .map_err(api_err(path))
}

async fn delete_remote(client: &Client, path: &str) -> Result<(), FilesError> {
    match client.workspace().delete(path, false).await {
        Ok(()) => Ok(()),
        // Already gone (deleted by hand, or by an earlier interrupted sync).
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(api_err(path)(e)),
    }
}

async fn read_remote_manifest(client: &Client, path: &str) -> Option<Manifest> {
    let resp = client
        .call(
            Method::GET,
            "/api/2.0/workspace/export",
            &[("path", path.to_string()), ("format", "AUTO".into())],
            None,
        )
        .await
        .ok()?;
    let content = resp.get("content")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The deepest directories needing `mkdirs` for these remote file paths
/// (`mkdirs` creates parents, so a prefix of another is redundant).
fn parent_dirs<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let parents: BTreeSet<String> = paths
        .filter_map(|p| p.rsplit_once('/').map(|(dir, _)| dir.to_string()))
        .filter(|d| !d.is_empty())
        .collect();
    parents
        .iter()
        .filter(|d| {
            !parents
                .iter()
                .any(|other| other.len() > d.len() && other.starts_with(&format!("{d}/")))
        })
        .cloned()
        .collect()
}

/// Upload changed files, remove files deleted locally, save the manifest.
pub async fn sync(
    client: &Client,
    bundle: &Bundle,
    opts: &SyncOptions,
) -> Result<SyncReport, FilesError> {
    let rules = SyncRules::from_value(&bundle.sync);
    let files = collect_in(&SyncRoot::resolve(&bundle.root, &rules))?.files;
    let file_path = bundle.workspace.file_path.clone();
    let manifest = build_manifest(&files, &file_path)?;
    let local_path = local_manifest_path(bundle);
    let previous = match read_local_manifest(&local_path) {
        Some(m) => m,
        None => read_remote_manifest(client, &remote_manifest_path(bundle))
            .await
            .unwrap_or_default(),
    };
    let diff = diff_manifests(&previous, &manifest);
    let parallelism = opts.parallelism.max(1);

    let uploads: Vec<(String, &PathBuf)> = diff
        .upload
        .iter()
        .filter_map(|rel| Some((upload_target(&file_path, rel), files.get(rel)?)))
        .collect();
    let mut dirs = parent_dirs(uploads.iter().map(|(target, _)| target.as_str()));
    dirs.push(bundle.workspace.state_path.clone());
    stream::iter(dirs.iter().map(|d| mkdirs(client, d)))
        .buffer_unordered(parallelism)
        .try_collect::<Vec<()>>()
        .await?;
    stream::iter(uploads.iter().map(|(target, abs)| async move {
        let bytes = std::fs::read(abs).map_err(|source| FilesError::Read {
            path: abs.to_path_buf(),
            source,
        })?;
        import(client, target, &bytes).await
    }))
    .buffer_unordered(parallelism)
    .try_collect::<Vec<()>>()
    .await?;
    stream::iter(
        diff.delete
            .iter()
            .map(|remote| delete_remote(client, remote)),
    )
    .buffer_unordered(parallelism)
    .try_collect::<Vec<()>>()
    .await?;

    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    write_atomic(&local_path, &bytes)?;
    import(client, &remote_manifest_path(bundle), &bytes).await?;
    Ok(SyncReport {
        uploaded: diff.upload,
        deleted: diff.delete,
        unchanged: diff.unchanged,
    })
}

/// The path sent on import: the file's own name. An AUTO import of a notebook
/// drops the extension itself, giving the manifest's `remote`.
fn upload_target(file_path: &str, rel: &str) -> String {
    remote_path(file_path, rel, false)
}

// ---------------------------------------------------------------------------
// Path rewriting

/// Which command the rewrite serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `validate`: libraries may not be built yet (warnings); they are shown
    /// relative to the sync root, as the CLI shows them.
    Validate,
    /// Before planning a deploy: everything must exist; library globs expand.
    Deploy,
}

/// Path fields inside one job task (also used for `for_each_task.task`);
/// `libraries` are handled apart, since a glob may become several entries.
/// `dbt_task.profiles_directory` is not here: the CLI leaves it as written
/// (dbt resolves it against the project at run time).
const TASK_FIELDS: &[(&[&str], PathKind)] = &[
    (&["notebook_task", "notebook_path"], PathKind::Notebook),
    (&["spark_python_task", "python_file"], PathKind::File),
    (&["sql_task", "file", "path"], PathKind::File),
    (&["dbt_task", "project_directory"], PathKind::Dir),
];

/// Library keys holding a local path, and what each names.
const LIBRARY_KEYS: &[(&str, PathKind)] = &[
    ("whl", PathKind::Library),
    ("jar", PathKind::Library),
    ("egg", PathKind::Library),
    ("requirements", PathKind::File),
];

/// A value that names something outside the bundle's files.
fn is_remote_reference(s: &str) -> bool {
    s.starts_with('/')
        || s.contains("://")
        || s.starts_with("dbfs:")
        || s.starts_with("s3:")
        || s.contains("${")
        || s.starts_with('~')
}

fn looks_like_local_dependency(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("./") || s.starts_with("../") || (s.ends_with(".whl") && !is_remote_reference(s))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Files matching an absolute glob, sorted.
fn glob_matches(pattern: &Path) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob(&pattern.to_string_lossy()) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
    out.sort();
    out
}

/// Normalise `a/./b/../c` without touching the filesystem.
pub(crate) fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `file_path` as the CLI prints it: `~` is the user's home under
/// `/Workspace/Users`; offline the user name stays a reference.
fn workspace_file_path(file_path: &str) -> String {
    match file_path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!("/Workspace/Users/${{workspace.current_user.userName}}{rest}")
        }
        _ => file_path.to_string(),
    }
}

struct Rewriter<'a> {
    sync: &'a SyncRoot,
    file_path: String,
    sources: &'a crate::config::source::SourceMap,
    diags: Diagnostics,
    /// What the sync will upload (None when the walk itself failed).
    synced: Option<&'a FileSet>,
    mode: Mode,
}

impl Rewriter<'_> {
    /// Why the sync will not upload `rel` (a directory: anything under it),
    /// or None when it will.
    fn not_synced(&self, rel: &str, kind: PathKind) -> Option<String> {
        let set = self.synced?;
        let under = |k: &str| rel.is_empty() || k == rel || k.starts_with(&format!("{rel}/"));
        let uploaded = match kind {
            PathKind::Dir => set.files.keys().any(|k| under(k)),
            _ => set.files.contains_key(rel),
        };
        if uploaded {
            return None;
        }
        if let Some(link) = set
            .skipped
            .iter()
            .find(|l| l.rel == rel || rel.starts_with(&format!("{}/", l.rel)))
        {
            return Some(if link.rel == rel {
                format!("it is a symlink and {}", link.reason)
            } else {
                format!("{} is a symlink and {}", link.rel, link.reason)
            });
        }
        let rules = &self.sync.rules;
        if glob_set(&rules.exclude).is_ok_and(|g| g.is_match(rel)) {
            return Some("it matches `sync.exclude`".into());
        }
        if !rules
            .paths
            .iter()
            .any(|p| p.is_empty() || rel == p || rel.starts_with(&format!("{p}/")))
        {
            return Some("it is outside `sync.paths`".into());
        }
        Some(if kind == PathKind::Dir {
            "nothing under it is synced (ignored by .gitignore, or empty)".into()
        } else {
            "it is ignored by .gitignore".into()
        })
    }

    /// Directory a relative path in this node is relative to: the YAML file
    /// that wrote it (as the CLI does), else the bundle root.
    fn base_dir(&self, span: Span) -> PathBuf {
        let bundle_root = self.sync.root.join(&self.sync.bundle_rel);
        if span.is_synthetic() {
            return bundle_root;
        }
        match self.sources.path(span.file).and_then(Path::parent) {
            Some(dir) if dir.is_absolute() => dir.to_path_buf(),
            Some(dir) => bundle_root.join(dir),
            None => bundle_root,
        }
    }

    /// A problem with a path: an error, or a warning at validate for a
    /// library (it may be a build output, made before deploy).
    fn problem(&mut self, kind: PathKind, message: String) -> Diag {
        if kind.is_build_output() && self.mode == Mode::Validate {
            Diag::warning(message)
        } else {
            Diag::error(message)
        }
    }

    /// The path relative to the sync root, or a diagnostic when it is outside.
    fn relative(
        &mut self,
        local: &Path,
        node: &Node,
        kind: PathKind,
        field: &str,
    ) -> Option<String> {
        let root = &self.sync.root;
        if let Some(rel) = rel_string(root, local).or_else(|| (local == root).then(String::new)) {
            return Some(rel);
        }
        let value = node.as_str().unwrap_or_default();
        let d = self
            .problem(
                kind,
                format!(
                    "{field} {value:?} is outside {}, so it is not synced",
                    self.sync.label()
                ),
            )
            .at(node.span, "points outside the synced files")
            .help(
                "move the file under the bundle root, list its directory in `sync.paths` \
                 (e.g. `../shared`), or reference a workspace path",
            );
        self.diags.push(d);
        None
    }

    /// The new values of a path field (several when a library glob matches
    /// several files), or None to leave it as written.
    fn translate(&mut self, node: &Node, kind: PathKind, field: &str) -> Option<Vec<String>> {
        let value = node.as_str()?.to_string();
        if is_remote_reference(&value) || value.is_empty() {
            return None;
        }
        if kind == PathKind::Dependency && !looks_like_local_dependency(&value) {
            return None;
        }
        let local = normalise(&self.base_dir(node.span).join(&value));
        if kind == PathKind::Content {
            return self.content_file(node, &local, field, &value);
        }
        let rel = self.relative(&local, node, kind, field)?;
        if kind == PathKind::Glob {
            // The pattern is the pipeline's to expand in the workspace.
            return Some(vec![remote_path(&self.file_path, &rel, false)]);
        }
        if kind.is_build_output() && has_glob(&value) {
            return self.library_glob(node, &local, rel, kind, field, &value);
        }
        let what = if kind == PathKind::Dir {
            "directory"
        } else {
            "file"
        };
        let exists = match kind {
            PathKind::Dir => local.is_dir(),
            _ => local.is_file(),
        };
        if !exists {
            let d = if kind.is_build_output() && self.mode == Mode::Validate {
                Diag::warning(format!(
                    "{field}: {what} {value:?} not found yet; it must exist when you deploy (a build output?)"
                ))
            } else {
                Diag::error(format!("{field}: {what} {value:?} does not exist"))
            };
            self.diags.push(
                d.at(node.span, format!("no {what} at {}", local.display()))
                    .help("paths are relative to the YAML file that contains them"),
            );
            return None;
        }
        if let Some(why) = self.not_synced(&rel, kind) {
            let help = if why.contains("sync.paths") {
                "add its directory to `sync.paths`"
            } else {
                "replace a symlink pointing outside the bundle with the file itself, \
                 or bring the path back with `sync.include`"
            };
            let d = self
                .problem(
                    kind,
                    format!("{field}: {what} {value:?} is not uploaded by the sync: {why}"),
                )
                .at(node.span, "the resource needs it in the workspace")
                .help(help);
            self.diags.push(d);
            return None;
        }
        if kind.is_build_output() && self.mode == Mode::Validate {
            // The CLI shows a library relative to the sync root until deploy.
            return Some(vec![rel]);
        }
        let notebook = kind == PathKind::Notebook && is_notebook(&local);
        if kind == PathKind::Notebook && !notebook {
            self.diags.push(
                Diag::warning(format!(
                    "{field} {value:?} is not a notebook (no `Databricks notebook source` header)"
                ))
                .at(node.span, "uploaded as a plain file"),
            );
        }
        Some(vec![if rel.is_empty() {
            self.file_path.trim_end_matches('/').to_string()
        } else {
            remote_path(&self.file_path, &rel, notebook)
        }])
    }

    /// A file the kind reads and sends inline (not synced, so it may lie
    /// outside the sync root): it must exist at deploy (at validate a missing
    /// one only warns: bundles build dashboards into `dist/`); at deploy the
    /// field becomes its absolute local path, at validate it stays as written.
    fn content_file(
        &mut self,
        node: &Node,
        local: &Path,
        field: &str,
        value: &str,
    ) -> Option<Vec<String>> {
        if !local.is_file() {
            let d = match self.mode {
                Mode::Validate => Diag::warning(format!(
                    "{field}: file {value:?} not found yet; it must exist when you deploy"
                )),
                Mode::Deploy => Diag::error(format!("{field}: file {value:?} does not exist")),
            };
            self.diags.push(
                d.at(node.span, format!("no file at {}", local.display()))
                    .help("paths are relative to the YAML file that contains them"),
            );
            return None;
        }
        match self.mode {
            Mode::Validate => None,
            Mode::Deploy => Some(vec![local.display().to_string()]),
        }
    }

    /// A library glob (`./dist/*.whl`): at deploy, every matching file (each
    /// its own library, as the CLI does); at validate, the pattern as the CLI
    /// shows it.
    fn library_glob(
        &mut self,
        node: &Node,
        local: &Path,
        rel: String,
        kind: PathKind,
        field: &str,
        value: &str,
    ) -> Option<Vec<String>> {
        let matches = glob_matches(local);
        if matches.is_empty() {
            let d = match self.mode {
                Mode::Validate => Diag::warning(format!(
                    "{field}: no file matches {value:?} yet; it must exist when you deploy (a build output?)"
                )),
                Mode::Deploy => Diag::error(format!("{field}: no file matches {value:?}")),
            };
            self.diags.push(
                d.at(node.span, format!("nothing at {}", local.display()))
                    .help("build the library first; paths are relative to the YAML file that contains them"),
            );
            return None;
        }
        let mut out = Vec::with_capacity(matches.len());
        for m in &matches {
            let Some(rel_m) = rel_string(&self.sync.root, m) else {
                continue;
            };
            if let Some(why) = self.not_synced(&rel_m, kind) {
                let d = self
                    .problem(
                        kind,
                        format!("{field}: file {rel_m:?} (from {value:?}) is not uploaded by the sync: {why}"),
                    )
                    .at(node.span, "the job needs it in the workspace")
                    .help("bring the path back with `sync.include` (e.g. `dist/*.whl`)");
                self.diags.push(d);
                return None;
            }
            out.push(remote_path(&self.file_path, &rel_m, false));
        }
        match self.mode {
            Mode::Validate => Some(vec![rel]),
            Mode::Deploy => Some(out),
        }
    }

    fn rewrite(&mut self, node: &mut Node, kind: PathKind, field: &str) {
        if let Some(first) = self
            .translate(node, kind, field)
            .and_then(|v| v.into_iter().next())
        {
            node.kind = NodeKind::String(first, ScalarStyle::Quoted);
        }
    }

    /// Rewrite the path at `pattern` (map keys; `*` = every sequence item).
    fn visit(&mut self, node: &mut Node, pattern: &[&str], kind: PathKind, field: &str) {
        match pattern.split_first() {
            None => self.rewrite(node, kind, field),
            Some((&"*", rest)) => {
                if let NodeKind::Seq(items) = &mut node.kind {
                    let mut out = Vec::with_capacity(items.len());
                    for item in std::mem::take(items) {
                        for mut one in self.expand_glob(item, rest, kind) {
                            self.visit(&mut one, rest, kind, field);
                            out.push(one);
                        }
                    }
                    *items = out;
                }
            }
            Some((k, rest)) => {
                if let Some(child) = node.as_map_mut().and_then(|m| m.get_mut(k)) {
                    self.visit(child, rest, kind, field);
                }
            }
        }
    }

    /// A list item whose notebook or file path (at `rest`) is a local glob
    /// becomes one copy per matching file, as the CLI expands pipeline
    /// libraries; anything else (no match included: `translate` reports it)
    /// stays as it is.
    fn expand_glob(&self, item: Node, rest: &[&str], kind: PathKind) -> Vec<Node> {
        if !matches!(kind, PathKind::Notebook | PathKind::File) || rest.contains(&"*") {
            return vec![item];
        }
        let at = |n: &Node| rest.iter().try_fold(n, |cur, k| cur.get(k)).cloned();
        let Some(scalar) = at(&item) else {
            return vec![item];
        };
        let Some(value) = scalar
            .as_str()
            .filter(|v| has_glob(v) && !is_remote_reference(v))
        else {
            return vec![item];
        };
        let matches = glob_matches(&normalise(&self.base_dir(scalar.span).join(value)));
        if matches.is_empty() {
            return vec![item];
        }
        matches
            .into_iter()
            .map(|file| {
                let mut copy = item.clone();
                let slot = rest
                    .iter()
                    .try_fold(&mut copy, |cur, k| cur.as_map_mut()?.get_mut(k));
                if let Some(slot) = slot {
                    slot.kind = NodeKind::String(file.display().to_string(), ScalarStyle::Quoted);
                }
                copy
            })
            .collect()
    }

    /// `libraries: [{whl: ...}, ...]`; a glob entry becomes one entry per file.
    fn libraries(&mut self, libs: &mut Node) {
        let NodeKind::Seq(items) = &mut libs.kind else {
            return;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in std::mem::take(items) {
            let found = LIBRARY_KEYS
                .iter()
                .find_map(|(k, kind)| item.get(k).map(|n| (*k, *kind, n)));
            let Some((key, kind, value)) = found else {
                out.push(item);
                continue;
            };
            let Some(values) = self.translate(value, kind, &format!("libraries.{key}")) else {
                out.push(item);
                continue;
            };
            for v in values {
                let mut copy = item.clone();
                if let Some(n) = copy.as_map_mut().and_then(|m| m.get_mut(key)) {
                    n.kind = NodeKind::String(v, ScalarStyle::Quoted);
                }
                out.push(copy);
            }
        }
        *items = out;
    }

    /// `environments[].spec.dependencies`: local paths are libraries.
    fn dependencies(&mut self, deps: &mut Node) {
        let NodeKind::Seq(items) = &mut deps.kind else {
            return;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in std::mem::take(items) {
            match self.translate(
                &item,
                PathKind::Dependency,
                "environments.spec.dependencies",
            ) {
                Some(values) => out.extend(values.into_iter().map(|v| {
                    let mut copy = item.clone();
                    copy.kind = NodeKind::String(v, ScalarStyle::Quoted);
                    copy
                })),
                None => out.push(item),
            }
        }
        *items = out;
    }

    fn task(&mut self, task: &mut Node, git: bool) {
        for (pattern, kind) in TASK_FIELDS {
            let field = pattern.join(".");
            // With `git_source` (or a task-level `source: GIT`) these paths
            // are relative to the repository, not local files.
            if git || task_source_is_git(task, pattern) {
                continue;
            }
            self.visit(task, pattern, *kind, &field);
        }
        if let Some(libs) = task.as_map_mut().and_then(|m| m.get_mut("libraries")) {
            self.libraries(libs);
        }
        if let Some(inner) = task
            .as_map_mut()
            .and_then(|m| m.get_mut("for_each_task"))
            .and_then(|f| f.as_map_mut())
            .and_then(|m| m.get_mut("task"))
        {
            self.task(inner, git);
        }
    }

    fn job(&mut self, job: &mut Node) {
        let git = job.get("git_source").is_some();
        if let Some(NodeKind::Seq(tasks)) = job
            .as_map_mut()
            .and_then(|m| m.get_mut("tasks"))
            .map(|n| &mut n.kind)
        {
            for t in tasks {
                self.task(t, git);
            }
        }
        if let Some(NodeKind::Seq(envs)) = job
            .as_map_mut()
            .and_then(|m| m.get_mut("environments"))
            .map(|n| &mut n.kind)
        {
            for env in envs {
                if let Some(deps) = env
                    .as_map_mut()
                    .and_then(|m| m.get_mut("spec"))
                    .and_then(Node::as_map_mut)
                    .and_then(|m| m.get_mut("dependencies"))
                {
                    self.dependencies(deps);
                }
            }
        }
    }
}

fn task_source_is_git(task: &Node, pattern: &[&str]) -> bool {
    let Some(task_type) = pattern.first() else {
        return false;
    };
    task.get(task_type)
        .and_then(|t| t.get("source"))
        .and_then(Node::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("GIT"))
}

/// The node to rewrite for a resource: `resources.<kind>.<key>` of the whole
/// tree (for `validate -o json`), or the resource's own.
fn tree_resource_mut<'a>(tree: &'a mut Node, addr: &ResourceAddr) -> Option<&'a mut Node> {
    tree.as_map_mut()?
        .get_mut("resources")?
        .as_map_mut()?
        .get_mut(addr.kind.key())?
        .as_map_mut()?
        .get_mut(&addr.key)
}

/// Walk the bundle's files, check the sync settings and every local path a
/// resource names; the rewritten resource nodes come back with the
/// diagnostics (only the ones that changed).
fn inspect(bundle: &Bundle, mode: Mode) -> (Diagnostics, Vec<(ResourceAddr, Node)>) {
    let rules = SyncRules::from_value(&bundle.sync);
    let sync = SyncRoot::resolve(&bundle.root, &rules);
    let mut diags = check_sync_settings(bundle, &sync);
    let set = match collect_in(&sync) {
        Ok(set) => Some(set),
        Err(e) => {
            // Pattern errors are reported on their entries by the settings check.
            if !matches!(e, FilesError::Pattern { .. }) {
                diags.push(Diag::error(e.to_string()));
            }
            None
        }
    };
    for link in set.iter().flat_map(|s| &s.skipped) {
        diags.push(
            Diag::warning(format!(
                "{} is not synced: it is a symlink and {}",
                link.rel, link.reason
            ))
            .help(
                "symlinks are followed only when they resolve inside the bundle root; \
                 copy the file in, or exclude the link with `sync.exclude`",
            ),
        );
    }
    let mut rw = Rewriter {
        sync: &sync,
        file_path: workspace_file_path(&bundle.workspace.file_path),
        sources: &bundle.sources,
        diags,
        synced: set.as_ref(),
        mode,
    };
    let mut updated = Vec::new();
    for (addr, rc) in bundle.resources.iter() {
        let paths = addr.kind.info().workspace_paths;
        if matches!(paths, WorkspacePaths::None) {
            continue;
        }
        // Validate shows the whole tree: rewrite its copy of the resource.
        let original = match mode {
            Mode::Validate => {
                let tree = &bundle.tree;
                tree.pointer(&["resources", addr.kind.key(), &addr.key])
                    .unwrap_or(&rc.node)
            }
            Mode::Deploy => &rc.node,
        };
        let mut node = original.clone();
        match paths {
            WorkspacePaths::None => continue,
            WorkspacePaths::JobSettings => rw.job(&mut node),
            WorkspacePaths::Fields(fields) => {
                for f in fields {
                    let label: Vec<&str> = f.path.iter().copied().filter(|s| *s != "*").collect();
                    rw.visit(&mut node, f.path, f.kind, &label.join("."));
                }
            }
        }
        if node != *original {
            updated.push((addr.clone(), node));
        }
    }
    (rw.diags, updated)
}

/// `sync.include` / `sync.exclude` / `sync.paths` entries that cannot do what
/// they seem to: an absolute path, a pattern outside the sync root or a sync
/// path that does not exist matches nothing (warning, at the entry); an
/// invalid pattern, a sync path above `/`, or a sync root above the git
/// repository (the CLI refuses it too) is an error.
fn check_sync_settings(bundle: &Bundle, sync: &SyncRoot) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let Some(settings) = bundle.tree.get("sync") else {
        return diags;
    };
    let bundle_root = normalise(&bundle.root);
    let repo = (!sync.bundle_rel.is_empty())
        .then(|| git_repo_root(&bundle_root))
        .flatten();
    for key in ["include", "exclude", "paths"] {
        for entry in settings.get(key).and_then(Node::as_seq).unwrap_or_default() {
            let Some(p) = entry.as_str() else { continue };
            let setting = format!("sync.{key}");
            let effect = if key == "exclude" {
                "excludes nothing"
            } else {
                "syncs nothing"
            };
            let outside = |why: String| {
                Diag::warning(format!("{setting} entry {p:?} {why}, so it {effect}"))
                    .at(entry.span, "outside the synced files")
                    .help(
                        "sync patterns are relative to the bundle root (a leading `/` anchors \
                         at the root); to sync a directory above it, list it in `sync.paths`",
                    )
            };
            if key == "paths" {
                if let Some(why) = outside_root(&bundle_root, p).filter(|w| w.contains("absolute"))
                {
                    diags.push(outside(why));
                    continue;
                }
                let Some(ancestor) = sync_path_ancestor(&bundle_root, p) else {
                    diags.push(
                        Diag::error(format!(
                            "sync.paths entry {p:?} reaches above the filesystem root"
                        ))
                        .at(entry.span, "invalid sync path"),
                    );
                    continue;
                };
                if let Some(repo) = repo.as_ref().filter(|r| !ancestor.starts_with(r)) {
                    diags.push(
                        Diag::error(format!(
                            "sync.paths entry {p:?} puts the sync root at {}, outside the git repository {}",
                            ancestor.display(),
                            repo.display()
                        ))
                        .at(entry.span, "above the repository root")
                        .help("sync paths must stay inside the bundle's git repository (the official CLI refuses this too)"),
                    );
                    continue;
                }
                let exists = rebase_sync_path(&bundle_root, &sync.bundle_rel, p)
                    .map(|rel| sync.root.join(rel))
                    .is_some_and(|d| d.exists());
                if !exists {
                    diags.push(
                        Diag::warning(format!(
                            "sync.paths entry {p:?} does not exist, so it syncs nothing"
                        ))
                        .at(entry.span, "no such file or directory")
                        .help("sync paths are relative to the bundle root"),
                    );
                }
                continue;
            }
            let why = if sync.bundle_rel.is_empty() {
                outside_root(&bundle_root, p)
            } else {
                outside_root(&bundle_root, p)
                    .filter(|w| w.contains("absolute"))
                    .or_else(|| {
                        rebase_pattern(&sync.bundle_rel, p)
                            .is_none()
                            .then(|| format!("points outside {}", sync.label()))
                    })
            };
            if let Some(why) = why {
                diags.push(outside(why));
            } else if let Err(e) = glob_set(&[p.to_string()]) {
                diags.push(
                    Diag::error(format!("{setting} entry {p:?} is not a valid pattern"))
                        .at(entry.span, e.to_string()),
                );
            }
        }
    }
    diags
}

/// Why a sync path or pattern lies outside the bundle root, if it does.
fn outside_root(root: &Path, p: &str) -> Option<String> {
    let path = Path::new(p);
    if let Ok(rest) = path.strip_prefix(root) {
        // The root spelled out: fine when it stays inside.
        return outside_root(root, &rest.to_string_lossy());
    }
    if p.starts_with('/') {
        // A leading `/` anchors at the bundle root, like .gitignore; it is an
        // absolute path when its first segment exists at `/` but not in the root.
        let first = p.trim_start_matches('/').split('/').next().unwrap_or("");
        let is_glob = first.contains(['*', '?', '[']);
        if !first.is_empty()
            && !is_glob
            && !root.join(first).exists()
            && Path::new("/").join(first).exists()
        {
            return Some("is an absolute path".into());
        }
        return None;
    }
    let mut depth: i32 = 0;
    for c in path.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Some("points outside the bundle root".into());
        }
    }
    None
}

/// Problems with the bundle's files, found without a workspace: sync settings
/// that match nothing, symlinks the sync leaves out, and files or directories
/// a resource names that are missing or will not be uploaded (errors, at the
/// YAML that names them; libraries, often build outputs, only warn).
pub fn check_files(bundle: &Bundle) -> Diagnostics {
    inspect(bundle, Mode::Validate).0
}

/// `validate`: the [`check_files`] diagnostics, and the resolved tree's
/// notebook/file/app paths shown as their workspace paths (libraries relative
/// to the sync root), as the official CLI prints them.
pub fn translate_for_validate(bundle: &mut Bundle) -> Diagnostics {
    let (diags, updated) = inspect(bundle, Mode::Validate);
    for (addr, node) in updated {
        if let Some(slot) = tree_resource_mut(&mut bundle.tree, &addr) {
            *slot = node;
        }
    }
    diags
}

/// Rewrite local relative paths in jobs and apps to their workspace paths
/// under `${workspace.file_path}` (library globs expand to every matching
/// file). Call after load, before planning. Errors (a missing file or
/// library, a path outside the sync root, a file the sync will not upload)
/// point at the YAML.
pub fn rewrite_paths(bundle: &mut Bundle) -> Diagnostics {
    let (diags, updated) = inspect(bundle, Mode::Deploy);
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

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).ok();
        }
        std::fs::write(p, content).ok();
    }

    fn keys(m: &BTreeMap<String, PathBuf>) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    #[test]
    fn collects_honouring_gitignore_include_and_exclude() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "databricks.yml", "bundle: {name: x}");
        write(root, ".gitignore", "dist/\n*.log\n");
        write(root, "src/a.py", "print(1)");
        write(root, "src/b.log", "noise");
        write(root, "dist/pkg.whl", "wheel");
        write(root, "dist/other.tar", "tar");
        write(root, "scratch/tmp.txt", "tmp");
        write(root, ".git/config", "git");
        write(root, ".lakebundle/dev/files.json", "{}");
        let rules = SyncRules {
            include: vec!["dist/*.whl".into()],
            exclude: vec!["scratch".into()],
            paths: vec![],
        };
        let files = collect_files(root, &rules).expect("collect");
        assert_eq!(
            keys(&files),
            vec![".gitignore", "databricks.yml", "dist/pkg.whl", "src/a.py"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_inside_are_followed_others_reported() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().expect("tempdir");
        write(outside.path(), "x.py", "x");
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "lib/real.py", "real");
        symlink("lib/real.py", root.join("file_link.py")).expect("link");
        symlink("lib", root.join("dir_link")).expect("link");
        symlink(outside.path().join("x.py"), root.join("escape.py")).expect("link");
        symlink("nowhere.py", root.join("dangling.py")).expect("link");
        symlink("..", root.join("lib/up")).expect("link");
        let set = collect(root, &SyncRules::default()).expect("collect");
        assert_eq!(
            keys(&set.files),
            vec!["dir_link/real.py", "file_link.py", "lib/real.py"]
        );
        let skipped: Vec<(&str, bool)> = set
            .skipped
            .iter()
            .map(|s| (s.rel.as_str(), s.reason.contains("outside")))
            .collect();
        assert!(skipped.contains(&("escape.py", true)), "{skipped:?}");
        assert!(
            skipped.iter().any(|(r, _)| *r == "dangling.py"),
            "{skipped:?}"
        );
        assert!(skipped.iter().any(|(r, _)| *r == "lib/up"), "{skipped:?}");
    }

    #[test]
    fn sync_entries_outside_the_root() {
        let root = Path::new("/nonexistent-bundle-root");
        assert_eq!(
            outside_root(root, "/tmp/lib.py").as_deref(),
            Some("is an absolute path")
        );
        // A leading `/` naming something of the root anchors, like .gitignore.
        assert_eq!(outside_root(root, "/dist/*.whl"), None);
        assert_eq!(
            outside_root(root, "../shared").as_deref(),
            Some("points outside the bundle root")
        );
        assert_eq!(outside_root(root, "a/../b"), None);
        assert_eq!(outside_root(root, "/nonexistent-bundle-root/src"), None);
    }

    #[test]
    fn sync_paths_above_the_bundle_root_move_the_sync_root_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let top = dir.path();
        write(top, "project/bundle/databricks.yml", "bundle: {name: x}");
        write(
            top,
            "project/bundle/src/nb.py",
            "# Databricks notebook source",
        );
        write(top, "project/bundle/src/skip.pyc", "bytecode");
        write(top, "project/shared/lib.py", "print(1)");
        write(top, "project/shared/skip.pyc", "bytecode");
        write(top, "project/other/x.py", "not synced");
        let bundle = top.join("project/bundle");
        let rules = SyncRules {
            include: vec![],
            exclude: vec!["*.pyc".into()],
            paths: vec!["../shared".into(), ".".into()],
        };
        let sync = SyncRoot::resolve(&bundle, &rules);
        assert_eq!(sync.root, normalise(&top.join("project")));
        assert_eq!(sync.bundle_rel, "bundle");
        assert_eq!(sync.rules.paths, vec!["shared", "bundle"]);
        let set = collect_in(&sync).expect("collect");
        // Bare exclude names apply below the bundle root only, as the CLI
        // rebases them there.
        assert_eq!(
            keys(&set.files),
            vec![
                "bundle/databricks.yml",
                "bundle/src/nb.py",
                "shared/lib.py",
                "shared/skip.pyc"
            ]
        );
        // Without `..` entries nothing moves.
        let plain = SyncRoot::resolve(&bundle, &SyncRules::default());
        assert_eq!(plain.root, normalise(&bundle));
        assert_eq!(plain.rules.paths, vec![String::new()]);
        // `/..` cannot go above the filesystem root.
        assert_eq!(sync_path_ancestor(Path::new("/a"), "../../x"), None);
        assert_eq!(lexical(Path::new("a/../../b/./c")), PathBuf::from("../b/c"));
    }

    #[test]
    fn manifest_diff_sends_only_changes_and_removes_deleted() {
        let entry = |h: &str, r: &str| ManifestEntry {
            sha256: h.into(),
            remote: r.into(),
        };
        let old = Manifest {
            format_version: 1,
            file_path: "/f".into(),
            files: [
                ("a".to_string(), entry("1", "/f/a")),
                ("b".to_string(), entry("2", "/f/b")),
                ("c".to_string(), entry("3", "/f/c")),
            ]
            .into(),
        };
        let new = Manifest {
            format_version: 1,
            file_path: "/f".into(),
            files: [
                ("a".to_string(), entry("1", "/f/a")),
                ("b".to_string(), entry("9", "/f/b")),
                ("d".to_string(), entry("4", "/f/d")),
            ]
            .into(),
        };
        let d = diff_manifests(&old, &new);
        assert_eq!(d.upload, vec!["b", "d"]);
        assert_eq!(d.delete, vec!["/f/c"]);
        assert_eq!(d.unchanged, 1);
        // A new destination re-sends everything and deletes nothing that is still present.
        let moved = Manifest {
            file_path: "/g".into(),
            ..new.clone()
        };
        assert_eq!(diff_manifests(&new, &moved).upload.len(), 3);
    }

    #[test]
    fn notebooks_lose_their_extension() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "nb.py",
            "# Databricks notebook source\nprint(1)\n",
        );
        write(dir.path(), "plain.py", "print(1)\n");
        assert!(is_notebook(&dir.path().join("nb.py")));
        assert!(!is_notebook(&dir.path().join("plain.py")));
        assert_eq!(
            remote_path("/w/files", "src/nb.py", true),
            "/w/files/src/nb"
        );
        assert_eq!(
            remote_path("/w/files", "src/plain.py", false),
            "/w/files/src/plain.py"
        );
    }

    #[test]
    fn parent_dirs_keeps_only_deepest() {
        let dirs = parent_dirs(["/w/f/a/x.py", "/w/f/a/b/y.py", "/w/f/c.py"].into_iter());
        assert_eq!(dirs, vec!["/w/f/a/b".to_string()]);
    }
}
