//! Substitution of `${...}` references over the spanned tree.
//!
//! Lookups are lazy and memoised by canonical path (`var.x`, `bundle.name`,
//! `resources.jobs.a.name`); a path met again while it is being resolved is a
//! cycle, reported once with every edge's location.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;

use super::{join_path, parse_template, split_path, Piece, RefExpr, Seg};
use crate::config::source::{Map, Node, NodeKind, ScalarStyle, Span};
use crate::diag::{suggestion_help, suggestions, Diag, Diagnostics};
use crate::resources::{Kind, ResourceAddr};

/// The value a declared variable ended up with.
#[derive(Debug, Clone)]
pub enum VarSource {
    /// A value (may itself contain references).
    Value(Node),
    /// A `lookup:` not resolved yet: uses stay as `${var.x}` text.
    Pending,
    /// No value from any source: an error, reported with its uses.
    Missing,
}

/// A resource reference met while resolving.
#[derive(Debug, Clone)]
pub struct RefUse {
    pub target: ResourceAddr,
    /// Field path after the key (`name`, `data_synchronization_status.pipeline_id`).
    pub field: String,
    /// `${...}` as written (inner references substituted).
    pub text: String,
    /// The string that holds the reference.
    pub span: Span,
    pub resolved: bool,
}

/// What the resolver needs to know about the bundle.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The merged tree before substitution (defaults already inserted).
    pub tree: &'a Node,
    pub vars: &'a IndexMap<String, VarSource>,
    /// Whether `workspace.current_user` is known (else its uses stay as text).
    pub user_known: bool,
    /// Output fields per supported kind (`id`, `read_write_dns`, ...).
    pub output_fields: &'a HashMap<Kind, Vec<&'static str>>,
    /// Source texts by file id, to point a diagnostic at the reference
    /// itself inside a longer string (empty: point at the string).
    pub texts: &'a [Arc<str>],
}

/// What substitution may add to the bundle in all (string bytes, plus a
/// per-node weight for copied maps and lists), like the alias budget of the
/// YAML parser: values that each repeat the previous one twice grow
/// exponentially, and would otherwise exhaust memory.
pub const MAX_EXPANSION: usize = 64 << 20;
/// Weight of one copied node beyond its text.
const NODE_WEIGHT: usize = 16;
/// Weight of one resource reference carried along with a copied value.
const REF_USE_WEIGHT: usize = 64;
/// Deepest recursion through references. Chains of any length resolve
/// bottom-up without recursing (see `Resolver::prewarm`); only references
/// whose path is itself computed (`${var.${...}}`) and cycles recurse.
pub const MAX_REF_DEPTH: usize = 100;
/// Longest cycle resolved by recursion (and reported with every edge); longer
/// ones are reported without recursing.
const MAX_RECURSIVE_CYCLE: usize = 64;
/// Cycle members and edges shown in one diagnostic.
const MAX_CYCLE_SHOWN: usize = 12;

/// The expansion budget, shared by a resolver and its forks.
#[derive(Debug)]
struct Budget {
    remaining: AtomicUsize,
    reported: AtomicBool,
}

/// A cycle met by [`Resolver::prewarm`]: the index of the back edge's target,
/// the members from it (each with the span of the use that reached it), and
/// the span of the use closing the loop.
type SeenCycle = (usize, Vec<(String, Span)>, Span);

/// See [`Resolver::locate`].
struct Located<'a> {
    key: String,
    node: &'a Node,
    rest: usize,
}

enum Outcome {
    Value(Node),
    /// Leave the text as written, no error (deferred, pending or foreign).
    Keep,
    /// Leave the text; an error was reported.
    Fail,
}

#[derive(Clone)]
struct Memo {
    node: Option<Node>,
    refs: Vec<RefUse>,
}

pub struct Resolver<'a> {
    ctx: Context<'a>,
    /// `(kind, key)` → the resource's unresolved config.
    res_index: HashMap<(&'a str, &'a str), &'a Node>,
    memo: HashMap<String, Memo>,
    /// Paths being resolved, with the span of the use that started each.
    stack: Vec<(String, Span)>,
    /// Per [`Self::stack`] entry: whether its value is a map or a list.
    stack_container: Vec<bool>,
    reported_cycles: HashSet<Vec<String>>,
    /// Resource refs met since the caller last drained them.
    collected: Vec<RefUse>,
    pub diags: Diagnostics,
    /// Uses of variables that have no value, by variable.
    pub missing_uses: IndexMap<String, Vec<Span>>,
    /// Uses of `workspace.current_user.*` left unresolved (no workspace).
    pub unresolved_user: Vec<Span>,
    /// Uses of `bundle.git.*` with no git checkout to read them from.
    pub unresolved_git: Vec<Span>,
    /// Uses of variables whose lookup is pending.
    pub pending_uses: IndexMap<String, Vec<Span>>,
    budget: Arc<Budget>,
    depth_reported: bool,
}

impl<'a> Resolver<'a> {
    pub fn new(ctx: Context<'a>) -> Self {
        let mut res_index = HashMap::new();
        if let Some(kinds) = ctx.tree.get("resources").and_then(Node::as_map) {
            for (kind, items) in &kinds.entries {
                for (key, node) in items.as_map().map(|m| m.entries.as_slice()).unwrap_or(&[]) {
                    res_index
                        .entry((kind.name.as_str(), key.name.as_str()))
                        .or_insert(node);
                }
            }
        }
        Resolver {
            ctx,
            res_index,
            memo: HashMap::new(),
            stack: Vec::new(),
            stack_container: Vec::new(),
            reported_cycles: HashSet::new(),
            collected: Vec::new(),
            diags: Diagnostics::default(),
            missing_uses: IndexMap::new(),
            unresolved_user: Vec::new(),
            unresolved_git: Vec::new(),
            pending_uses: IndexMap::new(),
            budget: Arc::new(Budget {
                remaining: AtomicUsize::new(MAX_EXPANSION),
                reported: AtomicBool::new(false),
            }),
            depth_reported: false,
        }
    }

    /// A resolver for another thread: same bundle and cache, its own findings.
    /// Hand it back with [`Resolver::absorb`].
    pub fn fork(&self) -> Resolver<'a> {
        Resolver {
            ctx: self.ctx,
            res_index: self.res_index.clone(),
            memo: self.memo.clone(),
            stack: Vec::new(),
            stack_container: Vec::new(),
            reported_cycles: self.reported_cycles.clone(),
            collected: Vec::new(),
            diags: Diagnostics::default(),
            missing_uses: IndexMap::new(),
            unresolved_user: Vec::new(),
            unresolved_git: Vec::new(),
            pending_uses: IndexMap::new(),
            budget: self.budget.clone(),
            depth_reported: self.depth_reported,
        }
    }

    /// Take over what a forked resolver found (in call order).
    pub fn absorb(&mut self, other: Resolver<'a>) {
        self.diags.extend(other.diags);
        for (k, v) in other.missing_uses {
            self.missing_uses.entry(k).or_default().extend(v);
        }
        for (k, v) in other.pending_uses {
            self.pending_uses.entry(k).or_default().extend(v);
        }
        self.unresolved_user.extend(other.unresolved_user);
        self.unresolved_git.extend(other.unresolved_git);
        self.reported_cycles.extend(other.reported_cycles);
        self.depth_reported |= other.depth_reported;
    }

    /// A copy of `node` with every string's references substituted. Resource
    /// references met are collected (see [`Resolver::take_refs`]).
    pub fn resolve_node(&mut self, node: &Node) -> Node {
        self.resolve_tracked(node, &mut Vec::new(), &mut None)
    }

    /// Like [`Resolver::resolve_node`], also returning every resource
    /// reference with the dotted path (`tasks[0].pipeline_task.pipeline_id`)
    /// of the field holding it.
    pub fn resolve_with_refs(&mut self, node: &Node) -> (Node, Vec<(String, RefUse)>) {
        let mut sink = Some(Vec::new());
        let saved = std::mem::take(&mut self.collected);
        let out = self.resolve_tracked(node, &mut Vec::new(), &mut sink);
        self.collected = saved;
        (out, sink.unwrap_or_default())
    }

    /// The value of variable `name` (None when it has none or failed).
    pub fn variable_value(&mut self, name: &str, span: Span) -> Option<Node> {
        let vars = self.ctx.vars;
        match vars.get(name)? {
            VarSource::Value(v) => self.memo_eval(format!("var.{name}"), span, true, v),
            VarSource::Pending | VarSource::Missing => None,
        }
    }

    pub fn take_refs(&mut self) -> Vec<RefUse> {
        std::mem::take(&mut self.collected)
    }

    fn resolve_tracked<'n>(
        &mut self,
        node: &'n Node,
        path: &mut Vec<Part<'n>>,
        sink: &mut Option<Vec<(String, RefUse)>>,
    ) -> Node {
        match &node.kind {
            NodeKind::String(s, style) if super::has_ref(s) => {
                let before = self.collected.len();
                let out = self.interpolate(s, *style, node.span);
                if let Some(sink) = sink.as_mut() {
                    if self.collected.len() > before {
                        let at = join_parts(path);
                        sink.extend(self.collected.drain(before..).map(|r| (at.clone(), r)));
                    }
                }
                out
            }
            NodeKind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Part::Index(i));
                    out.push(self.resolve_tracked(item, path, sink));
                    path.pop();
                }
                Node::new(NodeKind::Seq(out), node.span)
            }
            NodeKind::Map(m) => {
                let mut out = Map {
                    entries: Vec::with_capacity(m.entries.len()),
                };
                for (k, v) in &m.entries {
                    path.push(Part::Key(&k.name));
                    out.entries
                        .push((k.clone(), self.resolve_tracked(v, path, sink)));
                    path.pop();
                }
                Node::new(NodeKind::Map(out), node.span)
            }
            _ => node.clone(),
        }
    }

    fn interpolate(&mut self, s: &str, style: ScalarStyle, span: Span) -> Node {
        let pieces = parse_template(s);
        if let [Piece::Ref(expr)] = pieces.as_slice() {
            // A whole-string reference keeps the referenced value's type.
            let (outcome, raw) = self.eval_ref(expr, span);
            return match outcome {
                Outcome::Value(mut v) if self.charge(weight(&v), span) => {
                    v.span = span;
                    v
                }
                _ => Node::new(NodeKind::String(raw, style), span),
            };
        }
        let mut out = String::with_capacity(s.len());
        for piece in &pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Ref(expr) => {
                    let (outcome, raw) = self.eval_ref(expr, span);
                    match outcome {
                        Outcome::Value(v) => match self.scalar_text(&v, &raw, span) {
                            Some(t) if self.charge(t.len(), span) => out.push_str(&t),
                            _ => out.push_str(&raw),
                        },
                        Outcome::Keep | Outcome::Fail => out.push_str(&raw),
                    }
                }
            }
        }
        Node::new(NodeKind::String(out, style), span)
    }

    fn scalar_text(&mut self, v: &Node, raw: &str, span: Span) -> Option<String> {
        match &v.kind {
            NodeKind::String(t, _) => Some(t.clone()),
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Null => {
                self.diags.push(
                    Diag::error(format!("{raw} is null and cannot be part of a string"))
                        .at(span, "used here")
                        .help("give it a value, or use the reference as the whole value"),
                );
                None
            }
            NodeKind::Seq(_) | NodeKind::Map(_) => {
                self.diags.push(
                    Diag::error(format!(
                        "{raw} is {} and cannot be part of a longer string",
                        v.type_name()
                    ))
                    .at(span, "embedded here")
                    .help("only a value that is exactly one reference can take a map or a list"),
                );
                None
            }
        }
    }

    /// Evaluate one reference. Returns the outcome and the text to leave in
    /// place when it is not substituted (inner references resolved).
    fn eval_ref(&mut self, expr: &RefExpr, span: Span) -> (Outcome, String) {
        let path = match expr.plain_path() {
            Some(p) => p.to_string(),
            None => {
                let mut path = String::new();
                let mut complete = true;
                for part in &expr.parts {
                    match part {
                        Piece::Text(t) => path.push_str(t),
                        Piece::Ref(inner) => {
                            let (o, raw) = self.eval_ref(inner, span);
                            match o {
                                Outcome::Value(v) => match self.scalar_text(&v, &raw, span) {
                                    Some(t) => path.push_str(&t),
                                    None => return (Outcome::Fail, expr.raw.clone()),
                                },
                                Outcome::Keep => {
                                    complete = false;
                                    path.push_str(&raw);
                                }
                                Outcome::Fail => return (Outcome::Fail, expr.raw.clone()),
                            }
                        }
                    }
                }
                let raw = format!("${{{path}}}");
                if !complete {
                    return (Outcome::Keep, raw);
                }
                if split_path(&path).is_none() {
                    self.diags.push(
                        Diag::error(format!(
                            "{} builds `{path}`, which is not a valid reference",
                            expr.raw
                        ))
                        .at(span, "in this value"),
                    );
                    return (Outcome::Fail, expr.raw.clone());
                }
                path
            }
        };
        let raw = format!("${{{path}}}");
        let outcome = self.resolve_path(&path, &raw, span);
        (outcome, raw)
    }

    fn resolve_path(&mut self, path: &str, raw: &str, span: Span) -> Outcome {
        let Some(segs) = split_path(path) else {
            return Outcome::Keep;
        };
        let head = match segs.first() {
            Some(Seg::Key(k)) => k.as_str(),
            _ => return Outcome::Keep,
        };
        match head {
            "var" => self.var_ref(&segs, 1, raw, span),
            "variables" if segs.get(2) == Some(&Seg::Key("value".into())) => {
                self.var_ref(&segs, 1, raw, span)
            }
            "variables" | "bundle" | "workspace" => self.tree_ref(&segs, raw, span),
            "resources" => self.resource_ref(&segs, raw, span),
            // Other namespaces are not ours to resolve; leave them as written.
            _ => Outcome::Keep,
        }
    }

    fn var_ref(&mut self, segs: &[Seg], name_at: usize, raw: &str, span: Span) -> Outcome {
        let Some(Seg::Key(name)) = segs.get(name_at) else {
            self.not_found(raw, span, vec![]);
            return Outcome::Fail;
        };
        // `variables.x.value.rest` and `var.x.rest` both index after the value.
        let rest_at = if matches!(segs.first(), Some(Seg::Key(k)) if k == "variables") {
            name_at + 2
        } else {
            name_at + 1
        };
        let rest = segs.get(rest_at..).unwrap_or(&[]);
        let vars = self.ctx.vars;
        match vars.get(name.as_str()) {
            None => {
                let names: Vec<&str> = self.ctx.vars.keys().map(String::as_str).collect();
                let cands = suggestions(name, names)
                    .into_iter()
                    .map(|c| {
                        let mut s = vec![Seg::Key("var".into()), Seg::Key(c.to_string())];
                        s.extend(rest.iter().cloned());
                        format!("${{{}}}", join_path(&s))
                    })
                    .collect::<Vec<String>>();
                let at = self.ref_span(span, raw);
                let d = Diag::error(format!(
                    "reference does not exist: {raw} (no variable `{name}` is declared)"
                ))
                .at(at, format!("`{name}` is not declared"));
                self.diags.push(match suggestion_help(&cands) {
                    Some(h) => d.help(h),
                    None => d.help(format!(
                        "declare it under `variables:`, e.g. `variables: {{{name}: {{default: <value>}}}}`"
                    )),
                });
                Outcome::Fail
            }
            Some(VarSource::Missing) => {
                self.missing_uses
                    .entry(name.clone())
                    .or_default()
                    .push(span);
                Outcome::Fail
            }
            Some(VarSource::Pending) => {
                self.pending_uses
                    .entry(name.clone())
                    .or_default()
                    .push(span);
                Outcome::Keep
            }
            Some(VarSource::Value(raw_value)) => {
                // Resolve only the field referenced (`var.a.x`), not the
                // whole value: fields of two complex variables may refer to
                // each other without a cycle.
                let (key, sub, used) = locate_var(name, raw_value, rest);
                let Some(value) = self.memo_eval(key, span, true, sub) else {
                    return Outcome::Fail;
                };
                let tail = &rest[used..];
                match walk(&value, tail) {
                    Ok(found) => Outcome::Value(found.clone()),
                    Err(at) => {
                        let mut prefix = vec![Seg::Key("var".into()), Seg::Key(name.clone())];
                        prefix.extend(rest[..used + at].iter().cloned());
                        let cands = child_suggestions(
                            &value,
                            &tail[..at],
                            &tail[at],
                            &prefix,
                            &tail[at + 1..],
                        );
                        self.not_found(raw, span, cands);
                        Outcome::Fail
                    }
                }
            }
        }
    }

    fn tree_ref(&mut self, segs: &[Seg], raw: &str, span: Span) -> Outcome {
        match self.lookup_tree(segs, span, true) {
            Ok(Some(v)) => Outcome::Value(v),
            Ok(None) => Outcome::Fail,
            Err(at) => {
                let is_user = matches!(segs, [Seg::Key(a), Seg::Key(b), ..] if a == "workspace" && b == "current_user");
                if is_user && !self.ctx.user_known {
                    self.unresolved_user.push(span);
                    return Outcome::Keep;
                }
                // Git details come from the checkout; without one they stay as text.
                let is_git = matches!(segs, [Seg::Key(a), Seg::Key(b), _, ..] if a == "bundle" && b == "git");
                if is_git && at >= 1 {
                    self.unresolved_git.push(span);
                    return Outcome::Keep;
                }
                let tree = self.ctx.tree;
                let cands =
                    child_suggestions(tree, &segs[..at], &segs[at], &segs[..at], &segs[at + 1..]);
                self.not_found(raw, span, cands);
                Outcome::Fail
            }
        }
    }

    fn resource_ref(&mut self, segs: &[Seg], raw: &str, span: Span) -> Outcome {
        let Some(Seg::Key(kind_key)) = segs.get(1) else {
            return Outcome::Keep;
        };
        let Some(kind) = Kind::from_key(kind_key) else {
            if crate::resources::is_known_kind_key(kind_key) {
                // Unsupported kinds are warned about once; their refs stay literal.
                return Outcome::Keep;
            }
            let kinds: Vec<String> = suggestions(kind_key, crate::resources::all_kind_keys())
                .into_iter()
                .map(str::to_string)
                .collect();
            let at = self.ref_span(span, raw);
            let d = Diag::error(format!(
                "reference does not exist: {raw} (unknown resource kind `{kind_key}`)"
            ))
            .at(at, "unknown resource kind");
            self.diags.push(match suggestion_help(&kinds) {
                Some(h) => d.help(h),
                None => d.help(format!(
                    "resource kinds are: {}",
                    crate::resources::all_kind_keys()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
            return Outcome::Fail;
        };
        let Some(Seg::Key(key)) = segs.get(2) else {
            return Outcome::Keep;
        };
        let found = self
            .res_index
            .get(&(kind_key.as_str(), key.as_str()))
            .copied();
        let Some(config) = found else {
            self.undefined_resource(segs, kind_key, key, raw, span);
            return Outcome::Fail;
        };
        let field = &segs[3..];
        if field.is_empty() {
            self.diags.push(
                Diag::error(format!("{raw} names a resource but no field"))
                    .at(self.ref_span(span, raw), "referenced here")
                    .help(format!("reference a field, e.g. ${{resources.{kind_key}.{key}.name}} or ${{resources.{kind_key}.{key}.id}}")),
            );
            return Outcome::Fail;
        }
        let field_text = join_path(field);
        let addr = ResourceAddr::new(kind, key.clone());
        let use_ = |resolved| RefUse {
            target: addr.clone(),
            field: field_text.clone(),
            text: raw.to_string(),
            span,
            resolved,
        };
        match self.lookup_tree(segs, span, false) {
            Ok(Some(v)) => {
                self.collected.push(use_(true));
                Outcome::Value(v)
            }
            Ok(None) => Outcome::Fail,
            Err(_) => {
                let outputs = self
                    .ctx
                    .output_fields
                    .get(&kind)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                if outputs.iter().any(|o| field_matches_output(&field_text, o)) {
                    self.collected.push(use_(false));
                    return Outcome::Keep;
                }
                // Suggest among the config fields at the failing level and the outputs.
                let at = walk(config, field).err().unwrap_or(0);
                let parent = walk(config, &field[..at]).ok();
                let mut names: Vec<String> = parent
                    .and_then(Node::as_map)
                    .map(|m| {
                        m.keys()
                            .map(|k| {
                                join_path(&[&field[..at], &[Seg::Key(k.to_string())]].concat())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                names.extend(outputs.iter().map(|o| o.to_string()));
                let cands: Vec<String> = suggestions(&field_text, names.iter().map(String::as_str))
                    .into_iter()
                    .map(|c| format!("${{resources.{kind_key}.{key}.{c}}}"))
                    .collect();
                let d = Diag::error(format!(
                    "{raw}: resources.{kind_key}.{key} has no field `{field_text}`"
                ))
                .at(self.ref_span(span, raw), "referenced here");
                let d = match suggestion_help(&cands) {
                    Some(h) => d.help(h),
                    None => d.help(format!(
                        "a reference names a field set in the resource's config, or one known after deploy: {}",
                        if outputs.is_empty() { "(none for this kind)".to_string() } else { outputs.join(", ") }
                    )),
                };
                self.diags.push(d);
                Outcome::Fail
            }
        }
    }

    /// `${resources.<kind>.<key>...}` where the kind has no such key: suggest
    /// close keys of the kind, or the same key under another kind.
    fn undefined_resource(
        &mut self,
        segs: &[Seg],
        kind_key: &str,
        key: &str,
        raw: &str,
        span: Span,
    ) {
        let rest = segs.get(3..).unwrap_or(&[]);
        let with = |kind: &str, key: &str| {
            let mut s = vec![
                Seg::Key("resources".into()),
                Seg::Key(kind.to_string()),
                Seg::Key(key.to_string()),
            ];
            s.extend(rest.iter().cloned());
            format!("${{{}}}", join_path(&s))
        };
        let tree = self.ctx.tree;
        let keys: Vec<&str> = tree
            .pointer(&["resources", kind_key])
            .and_then(Node::as_map)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let mut cands: Vec<String> = suggestions(key, keys.iter().copied())
            .into_iter()
            .map(|c| with(kind_key, c))
            .collect();
        if cands.is_empty() {
            let mut other: Vec<&str> = self
                .res_index
                .keys()
                .filter(|(k, r)| *r == key && *k != kind_key)
                .map(|(k, _)| *k)
                .collect();
            other.sort_unstable();
            cands = other.into_iter().map(|k| with(k, key)).collect();
        }
        let at = self.ref_span(span, raw);
        let d = Diag::error(format!(
            "reference does not exist: {raw} (no resource `{key}` of kind `{kind_key}`)"
        ))
        .at(at, "referenced here");
        let help = suggestion_help(&cands).unwrap_or_else(|| {
            if keys.is_empty() {
                format!("the bundle defines no `{kind_key}` for this target")
            } else {
                format!(
                    "the `{kind_key}` of this target are: {}",
                    keys.iter()
                        .take(10)
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + if keys.len() > 10 { ", …" } else { "" }
                )
            }
        });
        self.diags.push(d.help(help));
    }

    /// Find `segs` in the tree and return it resolved. `Err(i)` when segment
    /// `i` does not exist. `Ok(None)` when resolving failed (cycle).
    fn lookup_tree(
        &mut self,
        segs: &[Seg],
        span: Span,
        propagate: bool,
    ) -> Result<Option<Node>, usize> {
        let found = self.locate(segs)?;
        let Some(resolved) = self.memo_eval(found.key, span, propagate, found.node) else {
            return Ok(None);
        };
        if found.rest == segs.len() {
            return Ok(Some(resolved));
        }
        // An intermediate value that is itself a reference (e.g. a complex
        // variable): index into its resolved value.
        match walk(&resolved, &segs[found.rest..]) {
            Ok(n) => Ok(Some(n.clone())),
            Err(at) => Err(found.rest + at),
        }
    }

    /// Where a tree path leads before substitution: the memo key and node to
    /// resolve, and the segment index from which to index into the result.
    /// `Err(i)` when segment `i` does not exist. Shared by [`Self::lookup_tree`]
    /// and the dependency walk of [`Self::prewarm`], so both agree on keys.
    fn locate(&self, segs: &[Seg]) -> Result<Located<'a>, usize> {
        let tree = self.ctx.tree;
        let mut node = tree;
        let mut first = 0;
        // `resources.<kind>.<key>` through the index (kinds hold thousands).
        if let [Seg::Key(r), Seg::Key(kind), Seg::Key(key), ..] = segs {
            if r == "resources" {
                node = *self
                    .res_index
                    .get(&(kind.as_str(), key.as_str()))
                    .ok_or(2usize)?;
                first = 3;
            }
        }
        for (i, seg) in segs.iter().enumerate().skip(first) {
            if let NodeKind::String(s, _) = &node.kind {
                if super::has_ref(s) {
                    return Ok(Located {
                        key: join_path(&segs[..i]),
                        node,
                        rest: i,
                    });
                }
            }
            node = step(node, seg).ok_or(i)?;
        }
        Ok(Located {
            key: join_path(segs),
            node,
            rest: segs.len(),
        })
    }

    /// The memo key and node a reference path resolves through, when that is
    /// known before resolving (no nested `${...}` in the path).
    fn dep_target(&self, path: &str) -> Option<(String, &'a Node)> {
        let segs = split_path(path)?;
        let head = match segs.first() {
            Some(Seg::Key(k)) => k.as_str(),
            _ => return None,
        };
        let var_name = match head {
            "var" => segs.get(1),
            "variables" if segs.get(2) == Some(&Seg::Key("value".into())) => segs.get(1),
            "variables" | "bundle" | "workspace" => None,
            "resources" => {
                // Only what `resource_ref` hands to `lookup_tree`.
                let ok = segs.len() >= 4
                    && matches!(&segs[1], Seg::Key(k) if Kind::from_key(k).is_some());
                if !ok {
                    return None;
                }
                None
            }
            _ => return None,
        };
        if let Some(name) = var_name {
            let Seg::Key(name) = name else { return None };
            let rest_at = if head == "var" { 2 } else { 3 };
            let rest = segs.get(rest_at..).unwrap_or(&[]);
            let vars = self.ctx.vars;
            return match vars.get(name.as_str())? {
                VarSource::Value(v) => {
                    let (key, sub, _) = locate_var(name, v, rest);
                    Some((key, sub))
                }
                VarSource::Pending | VarSource::Missing => None,
            };
        }
        let found = self.locate(&segs).ok()?;
        Some((found.key, found.node))
    }

    /// Every reference in `node` whose target is known before resolving:
    /// (memo key, node to resolve, span of the string holding the reference),
    /// in the order the resolver meets them.
    fn static_deps(&self, node: &'a Node) -> Vec<(String, &'a Node, Span)> {
        let mut out: Vec<(String, &'a Node, Span)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut todo: Vec<&'a Node> = vec![node];
        while let Some(n) = todo.pop() {
            match &n.kind {
                NodeKind::String(s, _) if super::has_ref(s) => {
                    let mut pieces: Vec<Piece> = parse_template(s);
                    pieces.reverse();
                    while let Some(p) = pieces.pop() {
                        let Piece::Ref(expr) = p else { continue };
                        match expr.plain_path() {
                            Some(path) => {
                                if let Some((key, target)) = self.dep_target(path) {
                                    if seen.insert(key.clone()) {
                                        out.push((key, target, n.span));
                                    }
                                }
                            }
                            // Nested: the inner references come first.
                            None => pieces.extend(expr.parts.into_iter().rev()),
                        }
                    }
                }
                NodeKind::Seq(items) => todo.extend(items.iter().rev()),
                NodeKind::Map(m) => todo.extend(m.entries.iter().rev().map(|(_, v)| v)),
                _ => {}
            }
        }
        out
    }

    fn memo_eval(
        &mut self,
        key: String,
        span: Span,
        propagate: bool,
        node: &'a Node,
    ) -> Option<Node> {
        if !self.memo.contains_key(&key) {
            if let Some(pos) = self.stack.iter().position(|(k, _)| *k == key) {
                let chain: Vec<(String, Span)> = self.stack[pos..].to_vec();
                // The official CLI substitutes a whole map or list without
                // resolving inside it in the same round, so a cycle through
                // one is cut there (it warns about what stays unresolved);
                // only a cycle of scalar values is an error.
                let cut = self.stack_container[pos..].iter().any(|c| *c);
                self.report_cycle(&chain, span, cut);
                return cut.then(|| node.clone());
            }
            self.prewarm(&key, node, span);
            if !self.memo.contains_key(&key) {
                self.eval_uncached(key.clone(), span, node);
            }
        }
        let m = self.memo.get(&key)?;
        if propagate && !m.refs.is_empty() {
            let cost = m.refs.len() * REF_USE_WEIGHT;
            if self.charge(cost, span) {
                if let Some(m) = self.memo.get(&key) {
                    self.collected.extend(m.refs.iter().cloned());
                }
            }
        }
        self.memo.get(&key).and_then(|m| m.node.clone())
    }

    /// Resolve `node` as the value of `key` and memoise it (with the resource
    /// references met), recursing only into what is not memoised yet.
    fn eval_uncached(&mut self, key: String, span: Span, node: &'a Node) {
        if self.stack.len() >= MAX_REF_DEPTH {
            if !self.depth_reported {
                self.depth_reported = true;
                self.diags.push(
                    Diag::error(format!(
                        "references nest more than {MAX_REF_DEPTH} levels deep (at `{key}`)"
                    ))
                    .at(span, "too deeply nested here")
                    .help("a value refers to a value that refers to another, and so on; shorten the chain"),
                );
            }
            self.memo.insert(
                key,
                Memo {
                    node: None,
                    refs: vec![],
                },
            );
            return;
        }
        self.stack.push((key.clone(), span));
        self.stack_container
            .push(matches!(node.kind, NodeKind::Map(_) | NodeKind::Seq(_)));
        let saved = std::mem::take(&mut self.collected);
        let out = self.resolve_node(node);
        let refs = std::mem::replace(&mut self.collected, saved);
        self.stack.pop();
        self.stack_container.pop();
        self.memo.insert(
            key,
            Memo {
                node: Some(out),
                refs,
            },
        );
    }

    /// Resolve the static dependencies of `key` bottom-up with an explicit
    /// stack (Tarjan's strongly connected components), so a chain of
    /// thousands of references never recurses deeply: each value is resolved
    /// once everything it refers to is memoised. A cycle is left to the
    /// ordinary recursion (which reports it with every edge), unless it is
    /// too long to recurse through: then it is reported here.
    fn prewarm(&mut self, key: &str, node: &'a Node, span: Span) {
        struct Frame<'n> {
            key: String,
            node: &'n Node,
            span: Span,
            deps: Vec<(String, &'n Node, Span)>,
            next: usize,
            index: usize,
            low: usize,
        }
        // Index 0 marks "depends on a value the caller is resolving right
        // now": such frames are left to the ordinary recursion.
        const TAINT: usize = 0;
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut on_tarjan: HashSet<String> = HashSet::new();
        let mut tarjan: Vec<(String, Span)> = Vec::new();
        let mut next_index = 1usize;
        // Simple cycles seen (the frames from the back edge's target, then
        // the closing key and span), for reporting a long cycle.
        let mut cycles: Vec<SeenCycle> = Vec::new();
        let deps = self.static_deps(node);
        index_of.insert(key.to_string(), next_index);
        on_tarjan.insert(key.to_string());
        tarjan.push((key.to_string(), span));
        let mut frames: Vec<Frame<'a>> = vec![Frame {
            key: key.to_string(),
            node,
            span,
            deps,
            next: 0,
            index: next_index,
            low: next_index,
        }];
        next_index += 1;
        while let Some(top) = frames.last_mut() {
            if let Some((dkey, dnode, dspan)) = top.deps.get(top.next).cloned() {
                top.next += 1;
                if self.memo.contains_key(&dkey) {
                    continue;
                }
                if let Some(&di) = index_of.get(&dkey) {
                    if on_tarjan.contains(&dkey) {
                        top.low = top.low.min(di);
                        if cycles.len() < 4 {
                            if let Some(pos) = frames.iter().position(|f| f.key == dkey) {
                                let chain = frames[pos..]
                                    .iter()
                                    .map(|f| (f.key.clone(), f.span))
                                    .collect();
                                cycles.push((di, chain, dspan));
                            }
                        }
                    }
                    continue;
                }
                if self.stack.iter().any(|(k, _)| *k == dkey) {
                    top.low = TAINT;
                    continue;
                }
                let deps = self.static_deps(dnode);
                index_of.insert(dkey.clone(), next_index);
                on_tarjan.insert(dkey.clone());
                tarjan.push((dkey.clone(), dspan));
                frames.push(Frame {
                    key: dkey,
                    node: dnode,
                    span: dspan,
                    deps,
                    next: 0,
                    index: next_index,
                    low: next_index,
                });
                next_index += 1;
                continue;
            }
            let Some(done) = frames.pop() else { break };
            if let Some(parent) = frames.last_mut() {
                parent.low = parent.low.min(done.low);
            }
            if done.low != done.index {
                continue;
            }
            // `done` is the root of a strongly connected component.
            let mut members: Vec<String> = Vec::new();
            while let Some((k, _)) = tarjan.pop() {
                on_tarjan.remove(&k);
                let is_root = k == done.key;
                members.push(k);
                if is_root {
                    break;
                }
            }
            if members.len() <= MAX_RECURSIVE_CYCLE {
                if members.len() > 1 || !self.memo.contains_key(&done.key) {
                    // Alone: resolved with everything below memoised. A short
                    // cycle: the recursion from its first member reports it.
                    self.eval_uncached(done.key, done.span, done.node);
                }
                continue;
            }
            match cycles.iter().find(|(di, ..)| *di >= done.index) {
                Some((_, chain, sp)) => {
                    let (chain, sp) = (chain.clone(), *sp);
                    self.report_cycle(&chain, sp, false);
                }
                None => self.diags.push(
                    Diag::error(format!(
                        "cycle detected: {} values refer to each other, starting at `{}`",
                        members.len(),
                        done.key
                    ))
                    .at(done.span, "referenced here")
                    .help("break the cycle: one of these values must not depend on the others"),
                ),
            }
            for k in members {
                self.memo.insert(
                    k,
                    Memo {
                        node: None,
                        refs: vec![],
                    },
                );
            }
        }
    }

    /// Report a cycle: `chain` holds each member with the span of the use
    /// that reached it; the first member, used again at `span`, closes the
    /// loop. The cycle is
    /// shown from its smallest member, so forks resolving in parallel that
    /// meet it from different ends report the same diagnostic (deduplicated).
    fn report_cycle(&mut self, chain: &[(String, Span)], span: Span, cut: bool) {
        let mut sorted: Vec<String> = chain.iter().map(|(k, _)| k.clone()).collect();
        sorted.sort();
        if !self.reported_cycles.insert(sorted) {
            return;
        }
        // Edge i goes chain[i] → chain[i+1], used at the span that reached i+1.
        let n = chain.len();
        let edges: Vec<(&str, Span)> = (0..n)
            .map(|i| {
                let at = chain.get(i + 1).map(|(_, s)| *s).unwrap_or(span);
                (chain[i].0.as_str(), at)
            })
            .collect();
        let first = (0..n).min_by_key(|&i| edges[i].0).unwrap_or(0);
        let edges: Vec<(&str, Span)> = edges[first..]
            .iter()
            .chain(&edges[..first])
            .copied()
            .collect();
        let mut members: Vec<&str> = edges.iter().map(|(k, _)| *k).collect();
        members.push(edges[0].0);
        // A hostile bundle can build a cycle of thousands: show its ends.
        let chain_text = if n > MAX_CYCLE_SHOWN {
            format!(
                "{} → … → {} ({n} values)",
                members[..MAX_CYCLE_SHOWN / 2].join(" → "),
                members[n - MAX_CYCLE_SHOWN / 2..].join(" → ")
            )
        } else {
            members.join(" → ")
        };
        let mut d = if cut {
            Diag::warning(format!(
                "unresolved variables: a cycle through whole complex values: {chain_text}"
            ))
        } else {
            Diag::error(format!("cycle detected: {chain_text}"))
        };
        for (i, (_, s)) in edges.iter().enumerate().take(MAX_CYCLE_SHOWN) {
            let label = format!("{} refers to {} here", members[i], members[i + 1]);
            d = if i == 0 {
                d.at(*s, label)
            } else {
                d.related(*s, label)
            };
        }
        let help = if cut {
            "the references inside the repeated value stay unresolved (as the Databricks CLI leaves them); break the cycle: one of these values must not depend on the others"
        } else {
            "break the cycle: one of these values must not depend on the others"
        };
        self.diags.push(d.help(help));
    }

    /// Take `cost` from the expansion budget shared by every fork. False (and
    /// one error for the whole load) when it is exhausted.
    fn charge(&mut self, cost: usize, span: Span) -> bool {
        let mut left = self.budget.remaining.load(Ordering::Relaxed);
        loop {
            if cost > left {
                if !self.budget.reported.swap(true, Ordering::Relaxed) {
                    let what = match self.stack.last() {
                        Some((k, _)) => format!("`{k}`"),
                        None => "this value".to_string(),
                    };
                    self.diags.push(
                        Diag::error(format!(
                            "references expand the bundle beyond {} MiB while resolving {what}",
                            MAX_EXPANSION >> 20
                        ))
                        .at(span, "expansion limit reached here")
                        .help("values repeat references to values that repeat references, which grows exponentially; write the values out or remove the repetition"),
                    );
                }
                return false;
            }
            match self.budget.remaining.compare_exchange_weak(
                left,
                left - cost,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => left = now,
            }
        }
    }

    /// The span of `raw` as written inside the string at `span` (the string's
    /// span when it is not found verbatim, e.g. after escapes or nesting).
    fn ref_span(&self, span: Span, raw: &str) -> Span {
        if span.is_synthetic() {
            return span;
        }
        let found = self
            .ctx
            .texts
            .get(span.file.0 as usize)
            .and_then(|t| t.get(span.start..span.end))
            .and_then(|slice| slice.find(raw));
        match found {
            Some(i) => Span::new(span.file, span.start + i, span.start + i + raw.len()),
            None => span,
        }
    }

    fn not_found(&mut self, raw: &str, span: Span, cands: Vec<String>) {
        let at = self.ref_span(span, raw);
        let mut d =
            Diag::error(format!("reference does not exist: {raw}")).at(at, "referenced here");
        if let Some(h) = suggestion_help(&cands) {
            d = d.help(h);
        }
        self.diags.push(d);
    }
}

/// Where `var.<name>.<rest>` leads inside the variable's unresolved value:
/// the memo key, the node to resolve, and how many segments of `rest` were
/// followed (stopping at a value that is itself a reference, or at a
/// segment that does not exist, left to report after resolving).
fn locate_var<'v>(name: &str, value: &'v Node, rest: &[Seg]) -> (String, &'v Node, usize) {
    let mut node = value;
    let mut used = 0;
    for seg in rest {
        if matches!(&node.kind, NodeKind::String(s, _) if super::has_ref(s)) {
            break;
        }
        match step(node, seg) {
            Some(next) => {
                node = next;
                used += 1;
            }
            None => break,
        }
    }
    let mut key = vec![Seg::Key("var".into()), Seg::Key(name.to_string())];
    key.extend(rest[..used].iter().cloned());
    (join_path(&key), node, used)
}

/// What copying `node` costs against the expansion budget.
fn weight(node: &Node) -> usize {
    let mut total = 0usize;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        total = total.saturating_add(NODE_WEIGHT);
        match &n.kind {
            NodeKind::String(s, _) => total = total.saturating_add(s.len()),
            NodeKind::Seq(items) => todo.extend(items.iter()),
            NodeKind::Map(m) => {
                for (k, v) in &m.entries {
                    total = total.saturating_add(k.name.len());
                    todo.push(v);
                }
            }
            _ => {}
        }
    }
    total
}

/// A step of the path being walked, borrowed from the tree.
#[derive(Clone, Copy)]
enum Part<'n> {
    Key(&'n str),
    Index(usize),
}

/// `tasks[0].pipeline_task.pipeline_id`
fn join_parts(parts: &[Part<'_>]) -> String {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Part::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Whether a referenced field path names a known output (or a part of one).
fn field_matches_output(field: &str, output: &str) -> bool {
    field == output
        || field
            .strip_prefix(output)
            .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
        || output
            .strip_prefix(field)
            .is_some_and(|r| r.starts_with('.'))
}

fn step<'n>(node: &'n Node, seg: &Seg) -> Option<&'n Node> {
    match (&node.kind, seg) {
        (NodeKind::Map(m), Seg::Key(k)) => m.get(k),
        (NodeKind::Seq(items), Seg::Index(i)) => items.get(*i),
        (NodeKind::Seq(items), Seg::Select { key, value }) => items.iter().find(|item| {
            matches!(&item.kind, NodeKind::Map(m)
                if matches!(m.get(key).map(|v| &v.kind), Some(NodeKind::String(s, _)) if s == value))
        }),
        _ => None,
    }
}

/// Follow `segs` inside an already-resolved node; `Err(i)` = segment i missing.
pub fn walk<'n>(node: &'n Node, segs: &[Seg]) -> Result<&'n Node, usize> {
    let mut cur = node;
    for (i, seg) in segs.iter().enumerate() {
        cur = step(cur, seg).ok_or(i)?;
    }
    Ok(cur)
}

/// `${prefix.<close key>.rest}` for keys of the map at `within` close to `missing`.
fn child_suggestions(
    root: &Node,
    within: &[Seg],
    missing: &Seg,
    prefix: &[Seg],
    rest: &[Seg],
) -> Vec<String> {
    let Seg::Key(missing) = missing else {
        return vec![];
    };
    let Some(map) = walk(root, within).ok().and_then(Node::as_map) else {
        return vec![];
    };
    suggestions(missing, map.keys())
        .into_iter()
        .map(|c| {
            let mut s = prefix.to_vec();
            s.push(Seg::Key(c.to_string()));
            s.extend(rest.iter().cloned());
            format!("${{{}}}", join_path(&s))
        })
        .collect()
}
