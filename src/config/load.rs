//! The loader: root file discovery, `include` globs (parsed in parallel),
//! target selection and overrides, variables, presets, substitution, and the
//! checks that need the whole bundle. The only I/O is reading local files.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use rayon::prelude::*;

use crate::config::merge;
use crate::config::model::{Bundle, CurrentUser, Mode, ResourceConfig, ResourceRef, Workspace};
use crate::config::presets;
use crate::config::source::{
    parse_file, FileId, Key, Map, Node, NodeKind, ScalarStyle, SourceMap, Span,
};
use crate::config::variables;
use crate::diag::{did_you_mean, suggestion_help, suggestions, Diag, Diagnostics, Severity};
use crate::interp::resolve::{Context, RefUse, Resolver, VarSource};
use crate::resources::{kind_impl, Kind, ResourceAddr};

/// Root file names, in the order they are looked for.
pub const ROOT_FILES: &[&str] = &[
    "databricks.yml",
    "databricks.yaml",
    "bundle.yml",
    "bundle.yaml",
];

/// Top-level keys of a bundle.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "bundle",
    "include",
    "workspace",
    "variables",
    "resources",
    "targets",
    "environments",
    "artifacts",
    "sync",
    "permissions",
    "run_as",
    "presets",
    "experimental",
    "python",
    "scripts",
];

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-C DIR`.
    pub dir: Option<PathBuf>,
    /// `-t TARGET`.
    pub target: Option<String>,
    /// `--var k=v` values.
    pub vars: Vec<String>,
    /// The workspace user, when a workspace is configured.
    pub current_user: Option<CurrentUser>,
    /// Values of `lookup:` variables resolved by the engine.
    pub lookups: HashMap<String, serde_json::Value>,
    /// `--strict`: warnings become errors.
    pub strict: bool,
    /// A snapshot of the process environment (tests pass their own).
    pub env: HashMap<String, String>,
    /// Files parsed by an earlier load in this process (the workspace
    /// commands load twice: before and after the current user is known).
    pub parse_cache: Option<std::sync::Arc<ParseCache>>,
    /// This load is the last to need `parse_cache`: it takes the parsed
    /// files out instead of copying them (a copy of every file's tree, and
    /// the cache's own held to the end of the command, at 10,000 resources).
    /// A later load parses again.
    pub take_from_cache: bool,
}

/// Parsed YAML files, reused by a later load of the same bundle. Parsing is
/// most of a load's time, and the second load of a workspace command reads
/// exactly the same files. An entry is used only for the same file id and
/// the same file size and modification time, so a file changed in between
/// (a `preinit` script writing YAML) is parsed again.
#[derive(Debug, Default)]
pub struct ParseCache {
    files: std::sync::Mutex<HashMap<PathBuf, CachedParse>>,
}

#[derive(Debug, Clone)]
struct CachedParse {
    id: FileId,
    stamp: (u64, Option<std::time::SystemTime>),
    text: std::sync::Arc<str>,
    node: Node,
    diags: Diagnostics,
}

fn file_stamp(path: &Path) -> Option<(u64, Option<std::time::SystemTime>)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()))
}

/// Read and parse `path` as file `id`, through `cache` when given.
fn read_and_parse(
    cache: Option<&ParseCache>,
    take: bool,
    path: &Path,
    id: FileId,
) -> std::io::Result<(std::sync::Arc<str>, Node, Diagnostics)> {
    let stamp = cache.and_then(|_| file_stamp(path));
    if let (Some(c), Some(stamp)) = (cache, stamp) {
        let mut files = c.files.lock().unwrap_or_else(|p| p.into_inner());
        let fits = |h: &CachedParse| h.id == id && h.stamp == stamp;
        if take {
            if let Some(hit) = files.remove(path).filter(fits) {
                return Ok((hit.text, hit.node, hit.diags));
            }
        } else if let Some(hit) = files.get(path).filter(|h| fits(h)) {
            return Ok((hit.text.clone(), hit.node.clone(), hit.diags.clone()));
        }
    }
    let text: std::sync::Arc<str> = std::fs::read_to_string(path)?.into();
    let (node, diags) = parse_file(id, &text);
    if let (Some(c), Some(stamp), false) = (cache, stamp, take) {
        c.put(path, stamp, id, text.clone(), node.clone(), diags.clone());
    }
    Ok((text, node, diags))
}

/// The bundle's root folder, as the load finds it (`None` when there is no
/// bundle there: the load reports why).
pub fn bundle_root(opts: &LoadOptions) -> Option<PathBuf> {
    find_root(opts).ok().map(|(dir, _)| dir)
}

/// Parse the bundle's files (the root and its includes) into
/// `opts.parse_cache` and nothing more, so that a load which follows finds
/// them parsed: the CLI runs this while it waits for the current user, whom
/// the load needs. Entries go in without a copy; problems are left for the
/// load to find and report.
pub fn warm_parse_cache(opts: &LoadOptions) {
    let Some(cache) = opts.parse_cache.as_deref() else {
        return;
    };
    let Ok((root_dir, root_file)) = find_root(opts) else {
        return;
    };
    let root_display = PathBuf::from(
        root_file
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default(),
    );
    // The same file ids as the load gives: the root first, then the includes in order.
    let Some((stamp, text, tree, diags)) = parse_for_cache(&root_file, FileId(0)) else {
        return;
    };
    if diags.has_errors() || !matches!(tree.kind, NodeKind::Map(_)) {
        return;
    }
    let mut cx = Ctx {
        sources: SourceMap::default(),
        diags: Diagnostics::default(),
    };
    cx.sources.add(root_display.clone(), text.clone());
    let includes = resolve_includes(&tree, &root_dir, &root_display, &mut cx);
    let first_id = cx.sources.files.len() as u32;
    cache.put(&root_file, stamp, FileId(0), text, tree, diags);
    includes.par_iter().enumerate().for_each(|(i, (_, full))| {
        let id = FileId(first_id + i as u32);
        if let Some((stamp, text, node, diags)) = parse_for_cache(full, id) {
            cache.put(full, stamp, id, text, node, diags);
        }
    });
}

type FileStamp = (u64, Option<std::time::SystemTime>);

/// Read and parse `path`, stamped before it is read (a later change then
/// never passes for this parse).
fn parse_for_cache(
    path: &Path,
    id: FileId,
) -> Option<(FileStamp, std::sync::Arc<str>, Node, Diagnostics)> {
    let stamp = file_stamp(path)?;
    let text: std::sync::Arc<str> = std::fs::read_to_string(path).ok()?.into();
    let (node, diags) = parse_file(id, &text);
    Some((stamp, text, node, diags))
}

impl ParseCache {
    /// How many files it holds.
    pub fn len(&self) -> usize {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep a parse of `path`, read when the file had `stamp`.
    fn put(
        &self,
        path: &Path,
        stamp: FileStamp,
        id: FileId,
        text: std::sync::Arc<str>,
        node: Node,
        diags: Diagnostics,
    ) {
        let entry = CachedParse {
            id,
            stamp,
            text,
            node,
            diags,
        };
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_path_buf(), entry);
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    /// None when there are errors.
    pub bundle: Option<Bundle>,
    pub diags: Diagnostics,
    pub sources: SourceMap,
}

struct Ctx {
    sources: SourceMap,
    diags: Diagnostics,
}

impl Ctx {
    fn finish(mut self, bundle: Option<Bundle>, strict: bool) -> Loaded {
        if strict {
            self.diags.make_strict();
        }
        self.diags.dedup();
        self.diags.sort();
        let bundle = if self.diags.has_errors() {
            None
        } else {
            bundle
        };
        let bundle = bundle.map(|mut b| {
            b.sources = self.sources.clone();
            b
        });
        Loaded {
            bundle,
            diags: self.diags,
            sources: self.sources,
        }
    }
}

/// An included file: display path, and its text, tree and parse diagnostics.
type ParsedInclude = (
    PathBuf,
    Result<(std::sync::Arc<str>, Node, Diagnostics), String>,
);

/// Load, resolve and check the bundle.
pub fn load(opts: &LoadOptions) -> Loaded {
    let mut cx = Ctx {
        sources: SourceMap::default(),
        diags: Diagnostics::default(),
    };
    let bundle = load_inner(opts, &mut cx);
    cx.finish(bundle, opts.strict)
}

/// The stages of DESIGN §1, each a function with its own input and output:
/// parse → merge/target → variables → resolve → check.
fn load_inner(opts: &LoadOptions, cx: &mut Ctx) -> Option<Bundle> {
    let Parsed { root_dir, tree } = parse(opts, cx)?;
    let Targeted { tree, target, mode } = select_target(tree, opts, cx)?;
    let user = opts.current_user.as_ref();
    let (pre, chosen) = choose_variables(tree, &root_dir, &target, mode, opts, cx);
    let resolved = resolve(&pre, &chosen, user, &target, cx)?;
    let checked = Checked {
        root_dir,
        target,
        mode,
        pending: chosen.pending,
    };
    Some(check(pre, resolved, checked, user, cx))
}

/// Stage 1 output: the root file with its includes merged in.
struct Parsed {
    root_dir: PathBuf,
    tree: Node,
}

/// Parse: find the root file, read it and its includes (in parallel), and
/// merge the includes in sorted order.
fn parse(opts: &LoadOptions, cx: &mut Ctx) -> Option<Parsed> {
    let (root_dir, root_file) = match find_root(opts) {
        Ok(found) => found,
        Err(d) => {
            cx.diags.push(*d);
            return None;
        }
    };
    let root_display = PathBuf::from(
        root_file
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default(),
    );
    let cache = opts.parse_cache.as_deref();
    let root_id = FileId(cx.sources.files.len() as u32);
    let (root_text, mut tree, d) =
        match read_and_parse(cache, opts.take_from_cache, &root_file, root_id) {
            Ok(parsed) => parsed,
            Err(e) => {
                cx.diags.push(Diag::error(format!(
                    "cannot read {}: {e}",
                    root_file.display()
                )));
                return None;
            }
        };
    cx.sources.add(root_display.clone(), root_text);
    let root_parsed = !d.has_errors();
    cx.diags.extend(d);
    if !root_parsed {
        return None;
    }
    if !matches!(tree.kind, NodeKind::Map(_)) {
        cx.diags.push(
            Diag::error("the bundle file must be a map at the top level")
                .at(tree.span, "not a map"),
        );
        return None;
    }
    check_top_level(&tree, cx);

    // Includes, parsed in parallel, merged in sorted order.
    let includes = resolve_includes(&tree, &root_dir, &root_display, cx);
    let first_id = cx.sources.files.len() as u32;
    let parsed: Vec<ParsedInclude> = includes
        .par_iter()
        .enumerate()
        .map(|(i, (display, full))| {
            let id = FileId(first_id + i as u32);
            let res =
                read_and_parse(cache, opts.take_from_cache, full, id).map_err(|e| e.to_string());
            (display.clone(), res)
        })
        .collect();
    let mut includes_merger = merge::Includes::new(&tree);
    for (display, res) in parsed {
        match res {
            Ok((text, mut node, d)) => {
                cx.sources.add(display, text);
                cx.diags.extend(d);
                if let NodeKind::Map(m) = &mut node.kind {
                    if let Some((k, _)) = m.get_entry("include") {
                        cx.diags.push(
                            Diag::warning(
                                "`include` is only read from the root file; this one is ignored",
                            )
                            .at(k.span, "ignored")
                            .help("list every file in the root file's `include`"),
                        );
                        m.remove("include");
                    }
                } else if !matches!(node.kind, NodeKind::Null) {
                    cx.diags.push(
                        Diag::error("an included file must be a map at the top level")
                            .at(node.span, "not a map"),
                    );
                    continue;
                }
                check_top_level(&node, cx);
                includes_merger.merge(&mut tree, node, &mut cx.diags);
            }
            Err(e) => {
                cx.sources.add(display.clone(), "");
                cx.diags.push(Diag::error(format!(
                    "cannot read included file {}: {e}",
                    display.display()
                )));
            }
        }
    }

    Some(Parsed { root_dir, tree })
}

/// Stage 2 output: the tree with the selected target merged in.
struct Targeted {
    tree: Node,
    target: String,
    mode: Option<Mode>,
}

/// Merge/target: normalize variable declarations, pick the target (legacy
/// `environments:` too) and merge its overrides; read the mode.
fn select_target(mut tree: Node, opts: &LoadOptions, cx: &mut Ctx) -> Option<Targeted> {
    variables::normalize_declarations(&mut tree, &mut cx.diags);

    // Targets (legacy `environments:` is the same thing).
    let root_map = tree.as_map_mut()?;
    let mut targets_entry = root_map
        .entries
        .iter()
        .position(|(k, _)| k.name == "targets")
        .map(|i| root_map.entries.remove(i));
    if let Some(i) = root_map
        .entries
        .iter()
        .position(|(k, _)| k.name == "environments")
    {
        let (k, v) = root_map.entries.remove(i);
        if let Some((tk, _)) = &targets_entry {
            cx.diags.push(
                Diag::error("both `targets` and the legacy `environments` are defined")
                    .at(k.span, "legacy environments")
                    .related(tk.span, "targets")
                    .help("move everything under `targets`"),
            );
        } else {
            cx.diags.push(
                Diag::warning("`environments` is the legacy name of `targets`")
                    .at(k.span, "legacy key")
                    .help("rename it to `targets`"),
            );
            targets_entry = Some((k, v));
        }
    }
    let (targets_span, mut targets) = match targets_entry {
        Some((
            k,
            Node {
                kind: NodeKind::Map(m),
                ..
            },
        )) => (Some(k.span), m),
        Some((
            _,
            Node {
                kind: NodeKind::Null,
                ..
            },
        ))
        | None => (None, Map::default()),
        Some((k, other)) => {
            cx.diags
                .push(Diag::error("`targets` must be a map").at(other.span, "not a map"));
            (Some(k.span), Map::default())
        }
    };
    let requested = opts
        .target
        .clone()
        .or_else(|| opts.env.get("DATABRICKS_BUNDLE_TARGET").cloned())
        .filter(|t| !t.is_empty());
    let target = merge::select_target(
        Some(&targets),
        requested.as_deref(),
        targets_span,
        &mut cx.diags,
    )?;
    if let Some(t) = targets.remove(&target) {
        merge::apply_target(&mut tree, &target, t, &mut cx.diags);
    }
    // Keyed lists (`tasks` by `task_key`, ...) merge after substitution, as in
    // the CLI: a key or body written as `${var...}` is only known then.

    crate::scripts::check_hooks(&tree, &mut cx.diags);
    crate::config::unsupported::check(&tree, &mut cx.diags);

    let mode = presets::read_mode(&tree, &mut cx.diags);
    Some(Targeted { tree, target, mode })
}

/// Variables: choose every variable's value (`--var`, environment, the
/// overrides file, defaults, lookups), then apply the mode's presets and the
/// engine defaults. Returns the tree to resolve and the chosen values.
fn choose_variables(
    mut tree: Node,
    root_dir: &Path,
    target: &str,
    mode: Option<Mode>,
    opts: &LoadOptions,
    cx: &mut Ctx,
) -> (Node, variables::Chosen) {
    let user = opts.current_user.as_ref();
    // Variable values.
    let overrides = read_overrides_file(root_dir, target, cx);
    let inputs = variables::ValueInputs {
        target,
        cli: &opts.vars,
        env: &opts.env,
        overrides_file: overrides.as_ref(),
        lookups: &opts.lookups,
    };
    let chosen = variables::choose_values(&tree, &inputs, &mut cx.diags);

    // `python:` resources and mutators join the tree before presets and substitution.
    crate::python::run_in_loader(
        &mut tree,
        &crate::python::Inputs {
            root: root_dir,
            target,
            vars: &chosen.values,
            env: &opts.env,
        },
        &mut cx.sources,
        &mut cx.diags,
    );

    presets::apply(&mut tree, mode, user, &mut cx.diags);
    insert_defaults(&mut tree, target, user, root_dir);
    (tree, chosen)
}

/// Stage 4 output: the substituted tree and the resources read from it.
struct Resolved {
    tree: Node,
    resources: IndexMap<ResourceAddr, ResourceConfig>,
}

/// Resolve: substitute every `${...}` (deferred resource outputs stay as
/// references), read the resources, and report what could not be resolved.
fn resolve(
    pre: &Node,
    chosen: &variables::Chosen,
    user: Option<&CurrentUser>,
    target: &str,
    cx: &mut Ctx,
) -> Option<Resolved> {
    // Substitution.
    let output_fields = output_fields();
    let texts: Vec<std::sync::Arc<str>> = cx.sources.files.iter().map(|f| f.text.clone()).collect();
    let ctx = Context {
        tree: pre,
        vars: &chosen.values,
        user_known: user.is_some(),
        output_fields: &output_fields,
        texts: &texts,
    };
    let mut resolver = Resolver::new(ctx);
    let mut resolved = Map::default();
    let mut resources: IndexMap<ResourceAddr, ResourceConfig> = IndexMap::new();
    let mut unsupported: Vec<(String, Span)> = Vec::new();
    let pre_map = pre.as_map()?;
    for (k, v) in &pre_map.entries {
        let node = match k.name.as_str() {
            "variables" => {
                let values: IndexMap<String, Option<Node>> = chosen
                    .values
                    .keys()
                    .map(|name| (name.clone(), resolver.variable_value(name, k.span)))
                    .collect();
                let decls = resolver.resolve_node(v);
                variables::output_section(&decls, &values)
            }
            "resources" => {
                resolve_resources(&mut resolver, v, &mut resources, &mut unsupported, cx)
            }
            // Script content is shell text, never substituted; a section with
            // errors is kept as written (its errors are already reported).
            "scripts" => {
                if crate::scripts::check_section(v, pre_map.get("resources"), &mut cx.diags) {
                    resolver.resolve_node(v)
                } else {
                    v.clone()
                }
            }
            _ => resolver.resolve_node(v),
        };
        resolved.entries.push((k.clone(), node));
    }
    let resolved_tree = Node::new(NodeKind::Map(resolved), pre.span);

    cx.diags.extend(std::mem::take(&mut resolver.diags));
    for (name, source) in &chosen.values {
        if matches!(source, VarSource::Missing) && chosen.origin.get(name).copied() == Some("none")
        {
            let uses = resolver.missing_uses.get(name).cloned().unwrap_or_default();
            cx.diags.push(variables::missing_error(
                name,
                chosen.decl_spans.get(name).copied(),
                &uses,
                target,
            ));
        }
    }
    if !resolver.unresolved_user.is_empty() {
        let spans = &resolver.unresolved_user;
        let mut d = Diag::info(format!(
            "{} value(s) use `${{workspace.current_user...}}`, left unresolved: no workspace is configured",
            spans.len()
        ))
        .help("they are resolved by plan and deploy, which know the current user");
        if let Some(first) = spans.iter().find(|s| !s.is_synthetic()) {
            d = d.at(*first, "first use");
        }
        cx.diags.push(d);
    }
    if !resolver.unresolved_git.is_empty() {
        let mut d = Diag::info(format!(
            "{} value(s) use `${{bundle.git...}}`, left unresolved: the bundle is not in a git checkout",
            resolver.unresolved_git.len()
        ));
        if let Some(first) = resolver.unresolved_git.iter().find(|s| !s.is_synthetic()) {
            d = d.at(*first, "first use");
        }
        cx.diags.push(d);
    }
    for (kind, span) in &unsupported {
        if crate::resources::is_known_kind_key(kind) {
            cx.diags.push(
                Diag::warning(format!(
                    "resources.{kind} is not supported by lakebundle yet"
                ))
                .at(*span, "not deployed by lakebundle")
                .help("validate goes on without it; plan and deploy refuse bundles that use it"),
            );
            continue;
        }
        // Like the official CLI: an unknown field of `resources` is a warning.
        let close: Vec<String> = suggestions(kind, crate::resources::all_kind_keys())
            .into_iter()
            .map(str::to_string)
            .collect();
        let d = Diag::warning(format!("unknown resource kind `{kind}` under `resources`"))
            .at(*span, "unknown field");
        cx.diags.push(match suggestion_help(&close) {
            Some(h) => d.help(h),
            None => d.help(format!(
                "resource kinds are: {}",
                crate::resources::all_kind_keys()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        });
    }
    Some(Resolved {
        tree: resolved_tree,
        resources,
    })
}

/// What the check stage needs from the earlier ones.
struct Checked {
    root_dir: PathBuf,
    target: String,
    mode: Option<Mode>,
    pending: Vec<crate::config::model::PendingLookup>,
}

/// Check: the CLI's rules, permissions and identities, each resource's
/// schema, cycles, the workspace and the bundle name; builds the [`Bundle`].
fn check(
    pre: Node,
    resolved: Resolved,
    checked: Checked,
    user: Option<&CurrentUser>,
    cx: &mut Ctx,
) -> Bundle {
    let Checked {
        root_dir,
        target,
        mode,
        pending,
    } = checked;
    let Resolved {
        tree: resolved_tree,
        mut resources,
    } = resolved;
    check_cli_rules(&pre, &resolved_tree, cx);

    // The unresolved tree is no longer needed: free it while the checks run
    // (it is as large as the resolved one, and this lowers peak memory).
    let bundle_span = pre.get("bundle").map(|b| b.span).unwrap_or(pre.span);
    rayon::spawn(move || drop(pre));

    let resolved_tree = crate::config::permissions::apply_identity(
        resolved_tree,
        &mut resources,
        user,
        &mut cx.diags,
    );
    check_resources(&mut resources, cx);
    check_resource_cycles(&resources, cx);

    let workspace = workspace_from(&resolved_tree, user);
    if user.is_none() && workspace.root_path.starts_with('~') {
        cx.diags.push(
            Diag::info(format!("workspace.root_path is `{}`; `~` is the current user's home, known once a workspace is configured", workspace.root_path)),
        );
    }
    let name = resolved_tree
        .pointer(&["bundle", "name"])
        .and_then(Node::scalar_text)
        .unwrap_or_default();
    if name.is_empty() {
        cx.diags.push(
            Diag::error("bundle.name is required")
                .at(bundle_span, "the bundle has no name")
                .help("add `bundle:\n  name: <name>`"),
        );
    }
    let sync = resolved_tree
        .get("sync")
        .map(Node::to_json)
        .unwrap_or(serde_json::Value::Null);
    Bundle {
        sources: SourceMap::default(),
        root: root_dir,
        name,
        target,
        mode,
        workspace,
        sync,
        resources,
        pending_lookups: pending,
        scripts: crate::scripts::from_tree(&resolved_tree),
        tree: resolved_tree,
    }
}
/// Values of `bundle.engine` the official CLI accepts.
const ENGINES: &[&str] = &["terraform", "direct"];

/// Whether a string holds a `${...}` reference (not an escaped `$${`).
fn holds_ref(s: &str) -> bool {
    crate::interp::parse_template(s)
        .iter()
        .any(|p| matches!(p, crate::interp::Piece::Ref(_)))
}

/// The official CLI's own checks on a whole bundle: references where none
/// can be resolved (resource keys, `workspace.host`), `bundle.engine`,
/// fields the deployment owns, and an app's source.
fn check_cli_rules(pre: &Node, resolved: &Node, cx: &mut Ctx) {
    if let Some(kinds) = pre.get("resources").and_then(Node::as_map) {
        for (kind, items) in &kinds.entries {
            for (key, config) in items.as_map().map(|m| m.entries.as_slice()).unwrap_or(&[]) {
                if holds_ref(&key.name) {
                    cx.diags.push(
                        Diag::error(format!(
                            "resources.{}: a resource key cannot contain a reference (`{}`)",
                            kind.name, key.name
                        ))
                        .at(key.span, "reference in a key")
                        .help("keys are read before references are resolved; write the key literally and put the reference in `name`"),
                    );
                }
                if kind.name == "jobs" {
                    if let Some((k, _)) = config.as_map().and_then(|m| m.get_entry("deployment")) {
                        cx.diags.push(
                            Diag::error(format!(
                                "resources.jobs.{}.deployment must not be set in bundle configuration",
                                key.name
                            ))
                            .at(k.span, "set by the deployment")
                            .help("deploy marks the job as bundle-owned itself; remove `deployment`"),
                        );
                    }
                }
            }
        }
    }
    if let Some(host) = pre.pointer(&["workspace", "host"]) {
        if matches!(&host.kind, NodeKind::String(s, _) if holds_ref(s)) {
            cx.diags.push(
                Diag::error("workspace.host cannot contain a reference")
                    .at(host.span, "reference in the host")
                    .help("the host is needed to authenticate before references are resolved; write it literally or set DATABRICKS_HOST"),
            );
        }
    }
    if let Some(name) = pre.pointer(&["bundle", "name"]) {
        if matches!(&name.kind, NodeKind::String(s, _) if holds_ref(s)) {
            cx.diags.push(
                Diag::warning("bundle.name uses a reference")
                    .at(name.span, "reference in the bundle name")
                    .help("the name identifies the deployment (its state and workspace paths); a name that changes with a variable deploys a different bundle"),
            );
        }
    }
    if let Some(engine) = resolved.pointer(&["bundle", "engine"]) {
        let text = engine.scalar_text();
        let ok = matches!(engine.kind, NodeKind::Null)
            || text.as_deref().is_some_and(|t| ENGINES.contains(&t));
        if !ok {
            let shown = text.unwrap_or_else(|| engine.type_name().to_string());
            let mut d = Diag::error(format!("invalid bundle.engine `{shown}`")).at(
                engine.span,
                format!("expected one of {}", ENGINES.join(", ")),
            );
            if let Some(s) = did_you_mean(&shown, ENGINES.iter().copied()) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            cx.diags.push(d);
        }
    }
    if let Some(apps) = resolved
        .pointer(&["resources", "apps"])
        .and_then(Node::as_map)
    {
        for (key, app) in &apps.entries {
            let Some(m) = app.as_map() else { continue };
            let has = |f: &str| m.get(f).is_some_and(|v| !matches!(v.kind, NodeKind::Null));
            if !has("source_code_path") && !has("git_source") {
                cx.diags.push(
                    Diag::error(format!(
                        "resources.apps.{}: an app needs `source_code_path` or `git_source`",
                        key.name
                    ))
                    .at(key.span, "no source")
                    .help(
                        "set `source_code_path: ./app` (a folder of the bundle) or a `git_source`",
                    ),
                );
            }
        }
    }
}

/// `-C`, else `DATABRICKS_BUNDLE_ROOT`, else the nearest ancestor of the
/// working directory with a root file. Returns (directory, root file).
fn find_root(opts: &LoadOptions) -> Result<(PathBuf, PathBuf), Box<Diag>> {
    let explicit = opts.dir.clone().or_else(|| {
        opts.env
            .get("DATABRICKS_BUNDLE_ROOT")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    });
    if let Some(dir) = explicit {
        if !dir.is_dir() {
            return Err(Box::new(Diag::error(format!(
                "bundle root {} is not a directory",
                dir.display()
            ))));
        }
        return match root_file_in(&dir)? {
            Some(f) => Ok((dir, f)),
            None => Err(Box::new(
                Diag::error(format!(
                    "no bundle configuration found in {}",
                    dir.display()
                ))
                .help(format!(
                    "a bundle root holds one of: {}",
                    ROOT_FILES.join(", ")
                )),
            )),
        };
    }
    let cwd = std::env::current_dir().map_err(|e| {
        Box::new(Diag::error(format!(
            "cannot read the working directory: {e}"
        )))
    })?;
    let mut dir = cwd.as_path();
    loop {
        if let Some(f) = root_file_in(dir)? {
            return Ok((dir.to_path_buf(), f));
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => {
                return Err(Box::new(Diag::error(format!(
                    "no bundle configuration found in {} or any parent directory",
                    cwd.display()
                ))
                .help(format!(
                    "run from a bundle directory, pass -C <dir>, or set DATABRICKS_BUNDLE_ROOT; a bundle root holds one of: {}",
                    ROOT_FILES.join(", ")
                ))))
            }
        }
    }
}

fn root_file_in(dir: &Path) -> Result<Option<PathBuf>, Box<Diag>> {
    let found: Vec<PathBuf> = ROOT_FILES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(Box::new(
            Diag::error(format!(
                "{} has more than one bundle root file: {}",
                dir.display(),
                found
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .help("keep exactly one of them"),
        )),
    }
}

fn check_top_level(tree: &Node, cx: &mut Ctx) {
    let Some(m) = tree.as_map() else { return };
    for (k, _) in &m.entries {
        if !TOP_LEVEL_KEYS.contains(&k.name.as_str()) && !holds_anchor(&cx.sources, k) {
            let mut d = Diag::warning(format!("unknown top-level field `{}`", k.name))
                .at(k.span, "unknown field");
            if let Some(s) = did_you_mean(&k.name, TOP_LEVEL_KEYS.iter().copied()) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            cx.diags.push(d);
        }
    }
}

/// Whether the value of top-level key `k` is written with an anchor
/// (`x-defaults: &d {...}`): a place to define shared YAML, not a typo.
fn holds_anchor(sources: &SourceMap, k: &Key) -> bool {
    let Some(text) = sources.get(k.span.file).map(|f| f.text.clone()) else {
        return false;
    };
    let Some(after) = text.get(k.span.end..) else {
        return false;
    };
    let after = after.trim_start_matches(['"', '\'', ' ', '\t']);
    let Some(after) = after.strip_prefix(':') else {
        return false;
    };
    after.trim_start().starts_with('&')
}

/// Expand `include` into (display path, full path) pairs, sorted per entry
/// and de-duplicated across entries; the root file itself is never included.
fn resolve_includes(
    tree: &Node,
    root_dir: &Path,
    root_display: &Path,
    cx: &mut Ctx,
) -> Vec<(PathBuf, PathBuf)> {
    let Some(include) = tree.get("include") else {
        return vec![];
    };
    let entries: Vec<&Node> = match &include.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        NodeKind::Null => vec![],
        _ => {
            cx.diags.push(
                Diag::error("`include` must be a list of paths or globs")
                    .at(include.span, "not a list"),
            );
            return vec![];
        }
    };
    let mut seen: HashSet<PathBuf> = HashSet::from([root_display.to_path_buf()]);
    let root_full = root_dir.join(root_display);
    let mut seen_files: HashSet<PathBuf> =
        HashSet::from([std::fs::canonicalize(&root_full).unwrap_or(root_full)]);
    let mut out = Vec::new();
    for entry in entries {
        let Some(pattern) = entry.as_str() else {
            cx.diags.push(
                Diag::error("an `include` entry must be a string").at(entry.span, "not a string"),
            );
            continue;
        };
        if Path::new(pattern).is_absolute() {
            cx.diags.push(
                Diag::error("`include` paths must be relative to the bundle root")
                    .at(entry.span, "absolute path"),
            );
            continue;
        }
        let is_glob = pattern.contains(['*', '?', '[']);
        let mut matches: Vec<PathBuf> = match expand_include(root_dir, pattern) {
            Ok(found) => found,
            Err(IncludeError::Pattern(e)) => {
                cx.diags.push(
                    Diag::error(format!("invalid include pattern: {e}"))
                        .at(entry.span, "this pattern"),
                );
                continue;
            }
            Err(IncludeError::TooMany) => {
                cx.diags.push(
                    Diag::error(format!(
                        "include `{pattern}` walks more than {MAX_INCLUDE_DIRS} directories"
                    ))
                    .at(entry.span, "this pattern")
                    .help("narrow the pattern to the directories that hold bundle configuration"),
                );
                continue;
            }
        };
        if matches.is_empty() && !is_glob {
            cx.diags.push(
                Diag::error(format!("include `{pattern}` does not match any file"))
                    .at(entry.span, "no such file")
                    .help("paths are relative to the bundle root; use a glob (`*`) for optional files"),
            );
            continue;
        }
        let mut rel: Vec<(PathBuf, PathBuf)> = matches
            .drain(..)
            .map(|full| (display_path(root_dir, &full), full))
            .collect();
        rel.sort();
        for (display, full) in rel {
            // The same file reached by another spelling or through a symlink
            // (the root file included by a glob, `../bundle/databricks.yml`)
            // is read once.
            let canonical = std::fs::canonicalize(&full).unwrap_or_else(|_| full.clone());
            if !seen.insert(normalize(&display)) || !seen_files.insert(canonical) {
                continue;
            }
            let ext = display.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "yml" | "yaml" | "json") {
                cx.diags.push(
                    Diag::error(format!("included file {} is not a YAML or JSON file", display.display()))
                        .at(entry.span, "matched by this entry")
                        .help("`include` reads bundle configuration only; list files to upload under `sync.include`"),
                );
                continue;
            }
            out.push((display, full));
        }
    }
    out
}

/// Most directories one `include` pattern may walk (`**` over a huge tree).
const MAX_INCLUDE_DIRS: usize = 20_000;

enum IncludeError {
    Pattern(glob::PatternError),
    TooMany,
}

/// The files matching an `include` pattern (relative to `root_dir`). Walks
/// from the pattern's literal prefix with an explicit stack; `**` follows
/// symlinked directories, but each directory is visited once (by its
/// canonical path), so a symlink loop cannot make the walk endless.
fn expand_include(root_dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, IncludeError> {
    let root: PathBuf = root_dir.components().collect();
    let rel: Vec<Component> = Path::new(pattern).components().collect();
    let full: PathBuf = root.join(rel.iter().collect::<PathBuf>());
    // The root directory's own name is literal even if it holds `[` or `*`.
    let text = format!(
        "{}/{}",
        glob::Pattern::escape(&root.to_string_lossy()).trim_end_matches('/'),
        rel.iter().collect::<PathBuf>().to_string_lossy()
    );
    let pat = glob::Pattern::new(&text).map_err(IncludeError::Pattern)?;
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let is_meta = |c: &Component| c.as_os_str().to_string_lossy().contains(['*', '?', '[']);
    let rel_literal = rel.iter().take_while(|c| !is_meta(c)).count();
    if rel_literal == rel.len() {
        return Ok(if full.is_file() { vec![full] } else { vec![] });
    }
    let base: PathBuf = root.join(rel[..rel_literal].iter().collect::<PathBuf>());
    let rest = &rel[rel_literal..];
    let globstar = rest.iter().any(|c| c.as_os_str() == "**");
    let mut out = Vec::new();
    let mut visited: HashSet<PathBuf> = HashSet::new();
    let mut stack: Vec<(PathBuf, usize)> = vec![(base, 0)];
    while let Some((dir, depth)) = stack.pop() {
        let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !visited.insert(canonical) {
            continue;
        }
        if visited.len() > MAX_INCLUDE_DIRS {
            return Err(IncludeError::TooMany);
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Follows symlinks, like the glob the CLI documents.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_file() {
                if (depth + 1 == rest.len() || globstar) && pat.matches_path_with(&path, opts) {
                    out.push(path);
                }
            } else if meta.is_dir() && (globstar || depth + 1 < rest.len()) {
                stack.push((path, depth + 1));
            }
        }
    }
    Ok(out)
}

/// Whether the root file's `include` (in `tree`) takes in `file`, expanded
/// as a load expands it (for `generate`, which writes a file and must say
/// when the next load would leave it out).
pub fn include_takes_in(tree: &Node, root_dir: &Path, file: &Path) -> bool {
    let Some(NodeKind::Seq(patterns)) = tree.get("include").map(|n| &n.kind) else {
        return false;
    };
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let file = canonical(&root_dir.join(file));
    patterns.iter().filter_map(Node::as_str).any(|pattern| {
        expand_include(root_dir, pattern)
            .is_ok_and(|found| found.iter().any(|f| canonical(f) == file))
    })
}

/// `root/a/../b.yml` → `b.yml`; outside the root keeps `../`.
fn display_path(root: &Path, full: &Path) -> PathBuf {
    let rel = full
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| full.to_path_buf());
    normalize(&rel)
}

fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// `.databricks/bundle/<target>/variable-overrides.json`, parsed with spans.
fn read_overrides_file(root_dir: &Path, target: &str, cx: &mut Ctx) -> Option<Node> {
    let rel = PathBuf::from(".databricks")
        .join("bundle")
        .join(target)
        .join("variable-overrides.json");
    let text = std::fs::read_to_string(root_dir.join(&rel)).ok()?;
    let id = cx.sources.add(rel.clone(), text.clone());
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        // serde_json counts lines and columns from 1; point at that byte.
        let line_start: usize = text
            .split_inclusive('\n')
            .take(e.line().saturating_sub(1))
            .map(str::len)
            .sum();
        let at = (line_start + e.column().saturating_sub(1)).min(text.len());
        cx.diags.push(
            Diag::error(format!("cannot parse {}: {e}", rel.display()))
                .at(Span::new(id, at, at), "invalid JSON")
                .help("the file must be a JSON object"),
        );
        return None;
    }
    let (node, d) = parse_file(id, &text);
    cx.diags.extend(d);
    if !matches!(node.kind, NodeKind::Map(_)) {
        cx.diags.push(
            Diag::error(format!("{} must be a JSON object", rel.display()))
                .at(node.span, "not an object")
                .help("the format is {\"var1\": \"value1\", \"var2\": \"value2\"}"),
        );
        return None;
    }
    Some(node)
}

fn synthetic_str(s: &str, span: Span) -> Node {
    Node::new(NodeKind::String(s.to_string(), ScalarStyle::Quoted), span)
}

fn set_default(map: &mut Map, key: &str, value: Node) {
    let missing = matches!(map.get(key).map(|n| &n.kind), None | Some(NodeKind::Null));
    if missing {
        map.insert(
            Key {
                name: key.to_string(),
                span: value.span,
            },
            value,
        );
    }
}

/// `bundle.target`, workspace paths and the current user, before substitution.
fn insert_defaults(tree: &mut Node, target: &str, user: Option<&CurrentUser>, root_dir: &Path) {
    let Some(root) = tree.as_map_mut() else {
        return;
    };
    let span = Span::synthetic();
    for section in ["bundle", "workspace"] {
        if !matches!(root.get(section).map(|n| &n.kind), Some(NodeKind::Map(_))) {
            root.insert(
                Key {
                    name: section.into(),
                    span,
                },
                Node::new(NodeKind::Map(Map::default()), span),
            );
        }
    }
    if let Some(bundle) = root.get_mut("bundle").and_then(Node::as_map_mut) {
        bundle.insert(
            Key {
                name: "target".into(),
                span,
            },
            synthetic_str(target, span),
        );
        bundle.insert(
            Key {
                name: "environment".into(),
                span,
            },
            synthetic_str(target, span),
        );
    }
    if let Some(ws) = root.get_mut("workspace").and_then(Node::as_map_mut) {
        set_default(
            ws,
            "root_path",
            synthetic_str("~/.bundle/${bundle.name}/${bundle.target}", span),
        );
        for (key, sub) in [
            ("file_path", "files"),
            ("state_path", "state"),
            ("artifact_path", "artifacts"),
            ("resource_path", "resources"),
        ] {
            set_default(
                ws,
                key,
                synthetic_str(&format!("${{workspace.root_path}}/{sub}"), span),
            );
        }
        if let Some(u) = user {
            // `~` is the user's workspace home.
            let home = format!("/Workspace/Users/{}", u.user_name);
            for (k, v) in ws.entries.iter_mut() {
                if k.name.ends_with("_path") {
                    if let NodeKind::String(s, _) = &mut v.kind {
                        if s == "~" || s.starts_with("~/") {
                            s.replace_range(..1, &home);
                        }
                    }
                }
            }
            let mut cu = Map::default();
            for (name, value) in &u.attributes {
                cu.insert(
                    Key {
                        name: name.clone(),
                        span,
                    },
                    Node::from_json(value, span),
                );
            }
            cu.insert(
                Key {
                    name: "userName".into(),
                    span,
                },
                synthetic_str(&u.user_name, span),
            );
            cu.insert(
                Key {
                    name: "short_name".into(),
                    span,
                },
                synthetic_str(&u.short_name, span),
            );
            ws.insert(
                Key {
                    name: "current_user".into(),
                    span,
                },
                Node::new(NodeKind::Map(cu), span),
            );
        }
    }
    if let Some(git) = git_info(root_dir) {
        if let Some(bundle) = root.get_mut("bundle").and_then(Node::as_map_mut) {
            if !matches!(bundle.get("git").map(|n| &n.kind), Some(NodeKind::Map(_))) {
                bundle.insert(
                    Key {
                        name: "git".into(),
                        span,
                    },
                    Node::new(NodeKind::Map(Map::default()), span),
                );
            }
            if let Some(g) = bundle.get_mut("git").and_then(Node::as_map_mut) {
                for (k, v) in git {
                    set_default(g, k, synthetic_str(&v, span));
                }
            }
        }
    }
    if root.get("sync").is_none() {
        let mut sync = Map::default();
        sync.insert(
            Key {
                name: "paths".into(),
                span,
            },
            Node::new(NodeKind::Seq(vec![synthetic_str(".", span)]), span),
        );
        root.insert(
            Key {
                name: "sync".into(),
                span,
            },
            Node::new(NodeKind::Map(sync), span),
        );
    }
}

/// `branch`, `actual_branch`, `commit`, `origin_url` and `bundle_root_path`
/// of the git checkout holding `dir`, read from `.git` directly (no git
/// binary needed), as the CLI infers them. A worktree's `.git` file is
/// followed; a malformed `.git` still gives the bundle's place in the
/// checkout, with no other metadata.
fn git_info(dir: &Path) -> Option<Vec<(&'static str, String)>> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let repo_root = dir.ancestors().find(|d| d.join(".git").exists())?;
    let dot_git = repo_root.join(".git");
    let rel = dir
        .strip_prefix(repo_root)
        .ok()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".to_string());
    let mut out = vec![("bundle_root_path", rel)];
    let git_dir = if dot_git.is_dir() {
        Some(dot_git.clone())
    } else {
        std::fs::read_to_string(&dot_git).ok().and_then(|t| {
            let p = t.trim().strip_prefix("gitdir:")?.trim().to_string();
            Some(repo_root.join(p)).filter(|g| g.is_dir())
        })
    };
    let Some(git_dir) = git_dir else {
        return Some(out);
    };
    // A linked worktree keeps shared refs and config in the common dir.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|| git_dir.clone());
    let Ok(head) = std::fs::read_to_string(git_dir.join("HEAD")) else {
        return Some(out);
    };
    let head = head.trim();
    let read_ref = |r: &str| {
        [&git_dir, &common]
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join(r)).ok())
            .map(|c| c.trim().to_string())
            .or_else(|| {
                let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
                packed
                    .lines()
                    .find(|l| l.split_whitespace().nth(1) == Some(r))
                    .and_then(|l| l.split_whitespace().next())
                    .map(str::to_string)
            })
    };
    let commit = match head.strip_prefix("ref: ") {
        Some(r) => {
            let branch = r.trim_start_matches("refs/heads/").to_string();
            out.push(("branch", branch.clone()));
            out.push(("actual_branch", branch));
            read_ref(r)
        }
        None if head.len() >= 40 && head.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(head.to_string())
        }
        None => None,
    };
    if let Some(c) = commit {
        out.push(("commit", c));
    }
    if let Ok(config) = std::fs::read_to_string(common.join("config")) {
        let mut in_origin = false;
        for line in config.lines().map(str::trim) {
            if line.starts_with('[') {
                in_origin = line == "[remote \"origin\"]";
            } else if let Some(url) = line
                .strip_prefix("url")
                .map(str::trim)
                .and_then(|l| l.strip_prefix('='))
            {
                if in_origin {
                    out.push(("origin_url", url.trim().to_string()));
                }
            }
        }
    }
    Some(out)
}

/// Referencable output fields per kind: from the resource registry, with a
/// built-in list for a kind the registry does not (yet) provide.
fn output_fields() -> HashMap<Kind, Vec<&'static str>> {
    Kind::ALL
        .into_iter()
        .map(|kind| (kind, kind_impl(kind).output_fields().to_vec()))
        .collect()
}

/// One parallel chunk: each resource resolved with its references (and the
/// dotted path holding each), plus the forked resolver's findings.
type ChunkResult<'a> = (
    Vec<(Node, Vec<(String, RefUse)>)>,
    Diagnostics,
    Resolver<'a>,
);

/// Resolve `resources`. Supported resources are independent of each other
/// once references are looked up lazily, so they resolve in parallel chunks,
/// each with a forked resolver; results keep declaration order.
fn resolve_resources(
    resolver: &mut Resolver<'_>,
    node: &Node,
    out: &mut IndexMap<ResourceAddr, ResourceConfig>,
    unsupported: &mut Vec<(String, Span)>,
    cx: &mut Ctx,
) -> Node {
    let Some(kinds) = node.as_map() else {
        if !matches!(node.kind, NodeKind::Null) {
            cx.diags.push(
                Diag::error("`resources` must be a map of resource kinds")
                    .at(node.span, "not a map"),
            );
        }
        return node.clone();
    };
    // Every supported resource, in order: (kind index in `kinds`, addr, config).
    let mut work: Vec<(usize, ResourceAddr, &Key, &Node)> = Vec::new();
    for (ki, (kind_key, items)) in kinds.entries.iter().enumerate() {
        let Some(kind) = Kind::from_key(&kind_key.name) else {
            continue;
        };
        let Some(items_map) = items.as_map() else {
            if !matches!(items.kind, NodeKind::Null) {
                cx.diags.push(
                    Diag::error(format!(
                        "resources.{} must be a map of resources",
                        kind_key.name
                    ))
                    .at(items.span, "not a map"),
                );
            }
            continue;
        };
        for (key, config) in &items_map.entries {
            let addr = ResourceAddr::new(kind, key.name.clone());
            if !matches!(config.kind, NodeKind::Map(_)) {
                cx.diags.push(
                    Diag::error(format!("{addr} must be a map, not {}", config.type_name()))
                        .at(config.span, "not a map"),
                );
                continue;
            }
            work.push((ki, addr, key, config));
        }
    }
    let chunk = work
        .len()
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(64);
    let forks: Vec<Resolver<'_>> = work.chunks(chunk).map(|_| resolver.fork()).collect();
    let results: Vec<ChunkResult<'_>> = work
        .par_chunks(chunk)
        .zip(forks)
        .map(|(items, mut fork)| {
            // Keyed merges and the schema clean-up are per resource too:
            // done here, in parallel, not one by one afterwards.
            let mut diags = Diagnostics::default();
            let done = items
                .iter()
                .map(|(ki, addr, _, config)| {
                    kind_impl(addr.kind).check_unresolved(&addr.to_string(), config, &mut diags);
                    let (mut resolved, refs) = fork.resolve_with_refs(config);
                    let kind_key = &kinds.entries[*ki].0.name;
                    merge::merge_resource_keyed_lists(kind_key, &mut resolved, &mut diags);
                    crate::resources::check::normalize_resource(kind_key, &mut resolved);
                    kind_impl(addr.kind).normalize(&addr.to_string(), &mut resolved, &mut diags);
                    (resolved, refs)
                })
                .collect();
            (done, diags, fork)
        })
        .collect();
    let mut resolved_by_kind: HashMap<usize, Map> = HashMap::new();
    let mut work_iter = work.iter();
    for (done, diags, fork) in results {
        resolver.absorb(fork);
        cx.diags.extend(diags);
        for (resolved, refs) in done {
            let Some((ki, addr, key, _)) = work_iter.next() else {
                break;
            };
            let refs: Vec<ResourceRef> = refs
                .into_iter()
                .filter(|(_, r)| !(r.resolved && r.target == *addr))
                .map(|(at_path, r)| ResourceRef {
                    at_path,
                    target: r.target,
                    field: r.field,
                    text: r.text,
                    span: r.span,
                    resolved: r.resolved,
                })
                .collect();
            resolved_by_kind
                .entry(*ki)
                .or_default()
                .entries
                .push(((*key).clone(), resolved.clone()));
            // `value` is filled in by `check_resources`, in parallel.
            out.insert(
                addr.clone(),
                ResourceConfig {
                    addr: addr.clone(),
                    node: resolved,
                    value: serde_json::Value::Null,
                    refs,
                },
            );
        }
    }
    let mut resolved_kinds = Map::default();
    for (ki, (kind_key, items)) in kinds.entries.iter().enumerate() {
        if Kind::from_key(&kind_key.name).is_none() {
            unsupported.push((kind_key.name.clone(), kind_key.span));
            resolved_kinds
                .entries
                .push((kind_key.clone(), resolver.resolve_node(items)));
            continue;
        }
        if items.as_map().is_none() {
            continue;
        }
        let items_out = resolved_by_kind.remove(&ki).unwrap_or_default();
        resolved_kinds.entries.push((
            kind_key.clone(),
            Node::new(NodeKind::Map(items_out), items.span),
        ));
    }
    Node::new(NodeKind::Map(resolved_kinds), node.span)
}

/// The JSON view of each resource and the kind's checks, in parallel (each
/// resource is independent); diagnostics keep the resources' order.
fn check_resources(resources: &mut IndexMap<ResourceAddr, ResourceConfig>, cx: &mut Ctx) {
    let mut all: Vec<&mut ResourceConfig> = resources.values_mut().collect();
    let found: Vec<Diagnostics> = all
        .par_iter_mut()
        .map(|rc| {
            rc.value = rc.node.to_json();
            let mut diags = Diagnostics::default();
            kind_impl(rc.addr.kind).check(&rc.addr.key, &rc.node, &mut diags);
            diags
        })
        .collect();
    for d in found {
        cx.diags.extend(d);
    }
    for kind in Kind::ALL {
        let Some(limit) = kind.info().workspace_limit else {
            continue;
        };
        let of_kind: Vec<&ResourceConfig> =
            resources.values().filter(|r| r.addr.kind == kind).collect();
        if of_kind.len() <= limit.max {
            continue;
        }
        let mut d = Diag::warning(format!(
            "this target defines {} {}; a workspace allows at most {}",
            of_kind.len(),
            kind.plural(),
            limit.max
        ));
        if let Some(first) = of_kind.get(limit.max) {
            d = d.at(
                first.node.span,
                format!("the first {} over the limit", kind.noun()),
            );
        }
        cx.diags.push(d.help(limit.help));
    }
}

/// Resource-level cycles (through references to outputs, which are not
/// substituted at load): one error per cycle, listing every edge.
fn check_resource_cycles(resources: &IndexMap<ResourceAddr, ResourceConfig>, cx: &mut Ctx) {
    use crate::graph::{cycle_diag, cycles, CycleHop};
    let mut g: petgraph::graph::DiGraph<&ResourceAddr, &ResourceRef> =
        petgraph::graph::DiGraph::new();
    let nodes: Vec<_> = resources.keys().map(|a| g.add_node(a)).collect();
    let index: HashMap<&ResourceAddr, usize> =
        resources.keys().enumerate().map(|(i, a)| (a, i)).collect();
    for (i, rc) in resources.values().enumerate() {
        // Permissions are applied once both sides exist: no ordering.
        for r in rc
            .refs
            .iter()
            .filter(|r| !r.at_path.starts_with("permissions"))
        {
            if let Some(&t) = index.get(&r.target) {
                g.add_edge(nodes[i], nodes[t], r);
            }
        }
    }
    for cycle in cycles(&g) {
        let hops: Vec<CycleHop<'_>> = cycle
            .iter()
            .filter_map(|&e| {
                let (s, t) = g.edge_endpoints(e)?;
                let r = g[e];
                Some(CycleHop {
                    from: g[s],
                    to: g[t],
                    via: &r.text,
                    span: Some(r.span),
                })
            })
            .collect();
        cx.diags.push(cycle_diag(&hops));
    }
}

fn workspace_from(tree: &Node, user: Option<&CurrentUser>) -> Workspace {
    let get = |k: &str| tree.pointer(&["workspace", k]).and_then(Node::scalar_text);
    let root_path = get("root_path").unwrap_or_default();
    Workspace {
        host: get("host").filter(|h| !h.is_empty()),
        profile: get("profile").filter(|p| !p.is_empty()),
        file_path: get("file_path").unwrap_or_else(|| format!("{root_path}/files")),
        state_path: get("state_path").unwrap_or_else(|| format!("{root_path}/state")),
        artifact_path: get("artifact_path").unwrap_or_else(|| format!("{root_path}/artifacts")),
        resource_path: get("resource_path").unwrap_or_else(|| format!("{root_path}/resources")),
        root_path,
        current_user: user.cloned(),
    }
}

/// Counts of diagnostics per severity (for summaries).
pub fn counts(diags: &Diagnostics) -> (usize, usize, usize) {
    (
        diags.count(Severity::Error),
        diags.count(Severity::Warning),
        diags.count(Severity::Info),
    )
}

/// Whether a mode is development (helper for callers).
pub fn is_development(mode: Option<Mode>) -> bool {
    mode == Some(Mode::Development)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_takes_in_what_a_load_would_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in [
            "resources/web.app.yml",
            "resources/deep/web.app.yml",
            "jobs/a/b/x.job.yml",
            "other/x.job.yml",
        ] {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "resources: {}\n").expect("write");
        }
        let root = |yaml: &str| parse_file(FileId(0), yaml).0;
        let tree = root("include:\n  - ./resources/*.yml\n  - jobs/**/*.yml\n");
        let takes_in = |tree: &Node, f: &str| include_takes_in(tree, dir.path(), Path::new(f));
        assert!(takes_in(&tree, "resources/web.app.yml"));
        assert!(!takes_in(&tree, "resources/deep/web.app.yml"));
        assert!(takes_in(&tree, "jobs/a/b/x.job.yml"));
        assert!(!takes_in(&tree, "other/x.job.yml"));
        assert!(!takes_in(
            &root("bundle: {name: b}\n"),
            "resources/web.app.yml"
        ));
    }
}
