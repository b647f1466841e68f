//! Combining trees: included files into the root, and a target's overrides
//! into the bundle, with the CLI's rules:
//! - maps deep-merge (the overriding side wins), sequences concatenate,
//!   scalars replace, a null override changes nothing;
//! - keyed lists then merge by key (job `tasks` by `task_key`, ...);
//! - a target's `variables` may only set `default` / `lookup`.

use std::collections::HashMap;

use crate::config::source::{Key, Map, Node, NodeKind, Span};
use crate::diag::{did_you_mean, suggestion_help, suggestions, Diag, Diagnostics};

/// Deep-merge `overlay` into `base`.
pub fn merge_into(base: &mut Node, overlay: Node, diags: &mut Diagnostics) {
    if matches!(overlay.kind, NodeKind::Null) {
        return;
    }
    if matches!(base.kind, NodeKind::Null) {
        *base = overlay;
        return;
    }
    let is_container = |k: &NodeKind| matches!(k, NodeKind::Map(_) | NodeKind::Seq(_));
    let same = std::mem::discriminant(&base.kind) == std::mem::discriminant(&overlay.kind);
    if !same && (is_container(&base.kind) || is_container(&overlay.kind)) {
        diags.push(
            Diag::error(format!(
                "cannot merge {} with {}",
                base.type_name(),
                overlay.type_name()
            ))
            .at(overlay.span, format!("{} here", overlay.type_name()))
            .related(base.span, format!("{} defined here", base.type_name())),
        );
        return;
    }
    match (&mut base.kind, overlay.kind) {
        (NodeKind::Map(b), NodeKind::Map(o)) => merge_maps(b, o, diags),
        (NodeKind::Seq(b), NodeKind::Seq(o)) => b.extend(o),
        (slot, kind) => {
            *slot = kind;
            base.span = overlay.span;
        }
    }
}

fn merge_maps(base: &mut Map, overlay: Map, diags: &mut Diagnostics) {
    // Large maps (thousands of resources) get an index; small ones scan.
    let mut index: Option<HashMap<String, usize>> = (base.len() > 32).then(|| {
        base.entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.name.clone(), i))
            .collect()
    });
    for (k, v) in overlay.entries {
        let pos = match &index {
            Some(ix) => ix.get(&k.name).copied(),
            None => base.entries.iter().position(|(bk, _)| bk.name == k.name),
        };
        match pos {
            Some(i) => merge_into(&mut base.entries[i].1, v, diags),
            None => {
                if let Some(ix) = index.as_mut() {
                    ix.insert(k.name.clone(), base.entries.len());
                }
                base.entries.push((k, v));
            }
        }
    }
}

/// Merge an included file's tree into the accumulated bundle tree. A resource
/// key defined in both is an error naming both places (the second is dropped).
pub fn merge_included(base: &mut Node, included: Node, diags: &mut Diagnostics) {
    Includes::new(base).merge(base, included, diags);
}

/// Merges included files one after another, remembering every resource key
/// seen so far (bundles hold thousands; no rescans per file).
pub struct Includes {
    seen: HashMap<(String, String), Span>,
}

impl Includes {
    /// Start from the root file's tree.
    pub fn new(root: &Node) -> Includes {
        let mut seen = HashMap::new();
        if let Some(kinds) = root.get("resources").and_then(Node::as_map) {
            for (kind, items) in &kinds.entries {
                for (k, _) in items.as_map().map(|m| m.entries.as_slice()).unwrap_or(&[]) {
                    seen.entry((kind.name.clone(), k.name.clone()))
                        .or_insert(k.span);
                }
            }
        }
        Includes { seen }
    }

    pub fn merge(&mut self, base: &mut Node, mut included: Node, diags: &mut Diagnostics) {
        let incoming = included.as_map_mut().and_then(|m| m.remove("resources"));
        if let Some(incoming) = incoming {
            self.merge_resources(base, incoming, diags);
        }
        merge_into(base, included, diags);
    }

    fn merge_resources(&mut self, base: &mut Node, incoming: Node, diags: &mut Diagnostics) {
        let span = incoming.span;
        let NodeKind::Map(kinds) = incoming.kind else {
            let mut wrapper = Map::default();
            wrapper.insert(
                Key {
                    name: "resources".into(),
                    span,
                },
                incoming,
            );
            merge_into(base, Node::new(NodeKind::Map(wrapper), span), diags);
            return;
        };
        let Some(root) = base.as_map_mut() else {
            return;
        };
        if !matches!(
            root.get("resources").map(|n| &n.kind),
            Some(NodeKind::Map(_))
        ) {
            root.insert(
                Key {
                    name: "resources".into(),
                    span,
                },
                Node::new(NodeKind::Map(Map::default()), span),
            );
        }
        let Some(base_kinds) = root.get_mut("resources").and_then(Node::as_map_mut) else {
            return;
        };
        for (kind_key, kind_node) in kinds.entries {
            let NodeKind::Map(items) = kind_node.kind else {
                merge_entry(base_kinds, kind_key, kind_node, diags);
                continue;
            };
            let mut fresh = Map::default();
            for (k, v) in items.entries {
                match self.seen.entry((kind_key.name.clone(), k.name.clone())) {
                    std::collections::hash_map::Entry::Occupied(first) => diags.push(
                        Diag::error(format!(
                            "resource `resources.{}.{}` is defined more than once",
                            kind_key.name, k.name
                        ))
                        .at(k.span, "defined again here")
                        .related(*first.get(), "first defined here")
                        .help("resource keys must be unique across all included files; rename one"),
                    ),
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(k.span);
                        fresh.entries.push((k, v));
                    }
                }
            }
            match base_kinds.get_mut(&kind_key.name) {
                // Keys are new, so appending is the merge.
                Some(Node {
                    kind: NodeKind::Map(existing),
                    ..
                }) => existing.entries.extend(fresh.entries),
                Some(_) | None => merge_entry(
                    base_kinds,
                    kind_key,
                    Node::new(NodeKind::Map(fresh), kind_node.span),
                    diags,
                ),
            }
        }
    }
}

/// Keyed lists: after merging, elements with the same key are merged into the
/// first one, as the CLI does for target overrides.
const KEYED_LISTS: &[(&str, &str, &str)] = &[
    ("jobs", "tasks", "task_key"),
    ("jobs", "job_clusters", "job_cluster_key"),
    ("jobs", "parameters", "name"),
    ("jobs", "environments", "environment_key"),
    ("apps", "resources", "name"),
];

pub fn merge_keyed_lists(tree: &mut Node, diags: &mut Diagnostics) {
    let Some(resources) = tree
        .as_map_mut()
        .and_then(|m| m.get_mut("resources"))
        .and_then(Node::as_map_mut)
    else {
        return;
    };
    for (kind, items) in resources.entries.iter_mut() {
        let Some(items) = items.as_map_mut() else {
            continue;
        };
        for (_, res) in items.entries.iter_mut() {
            merge_resource_keyed_lists(&kind.name, res, diags);
        }
    }
}

/// Merge the keyed lists of one resource of kind `kind` (`jobs`, `apps`).
pub fn merge_resource_keyed_lists(kind: &str, res: &mut Node, diags: &mut Diagnostics) {
    for (k, list, key_field) in KEYED_LISTS {
        if *k != kind {
            continue;
        }
        let Some(seq_node) = res.as_map_mut().and_then(|m| m.get_mut(list)) else {
            continue;
        };
        if let NodeKind::Seq(seq) = &mut seq_node.kind {
            merge_by_key(seq, key_field, diags);
        }
    }
}

fn merge_by_key(seq: &mut Vec<Node>, key_field: &str, diags: &mut Diagnostics) {
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Node> = Vec::with_capacity(seq.len());
    for item in seq.drain(..) {
        // A key resolved from a number (`task_key: ${var.n}`) is still a key.
        let key = item.get(key_field).and_then(Node::scalar_text);
        match key.map(|k| first.get(&k).copied().ok_or(k)) {
            Some(Ok(i)) => merge_into(&mut out[i], item, diags),
            Some(Err(k)) => {
                first.insert(k, out.len());
                out.push(item);
            }
            None => out.push(item),
        }
    }
    *seq = out;
}

/// Target keys and how each is applied.
pub const TARGET_KEYS: &[&str] = &[
    "default",
    "mode",
    "bundle",
    "workspace",
    "artifacts",
    "resources",
    "sync",
    "permissions",
    "presets",
    "variables",
    "run_as",
    "git",
    "compute_id",
    "cluster_id",
    "experimental",
];

/// Select the target: `-t`, else `DATABRICKS_BUNDLE_TARGET`, else the only
/// target, else the one with `default: true`, else an implicit `default`.
pub fn select_target(
    targets: Option<&Map>,
    requested: Option<&str>,
    targets_span: Option<Span>,
    diags: &mut Diagnostics,
) -> Option<String> {
    let names: Vec<&str> = targets.map(|t| t.keys().collect()).unwrap_or_default();
    if let Some(req) = requested {
        if names.contains(&req) || (names.is_empty() && req == "default") {
            return Some(req.to_string());
        }
        let mut d = Diag::error(format!("target `{req}` is not defined"));
        if let Some(sp) = targets_span {
            d = d.at(sp, "targets are defined here");
        }
        let cands: Vec<String> = suggestions(req, names.iter().copied())
            .into_iter()
            .map(str::to_string)
            .collect();
        d = match suggestion_help(&cands) {
            Some(h) => d.help(h),
            None if names.is_empty() => d.help("this bundle defines no targets"),
            None => d.help(format!("available targets: {}", names.join(", "))),
        };
        diags.push(d);
        return None;
    }
    let Some(targets) = targets.filter(|t| !t.is_empty()) else {
        return Some("default".to_string());
    };
    if targets.len() == 1 {
        return targets.keys().next().map(str::to_string);
    }
    let defaults: Vec<(&Key, &Node)> = targets
        .entries
        .iter()
        .filter(|(_, t)| {
            matches!(
                t.get("default").map(|n| &n.kind),
                Some(NodeKind::Bool(true))
            )
        })
        .map(|(k, v)| (k, v))
        .collect();
    match defaults.as_slice() {
        [(k, _)] => Some(k.name.clone()),
        [] => {
            let mut d = Diag::error(
                "please choose a target: this bundle defines several and none is `default: true`",
            )
            .help(format!(
                "pass -t <target> (one of: {}) or set DATABRICKS_BUNDLE_TARGET",
                names.join(", ")
            ));
            if let Some(sp) = targets_span {
                d = d.at(sp, "targets");
            }
            diags.push(d);
            None
        }
        [(first, _), rest @ ..] => {
            let mut d = Diag::error("more than one target is marked `default: true`")
                .at(first.span, "default target");
            for (k, _) in rest {
                d = d.related(k.span, "also marked default");
            }
            diags.push(d.help("mark exactly one target as the default"));
            None
        }
    }
}

/// Apply one target's overrides to the bundle tree (which has no `targets`).
/// Variable overrides are validated against the declarations in the tree.
pub fn apply_target(tree: &mut Node, target_name: &str, target: Node, diags: &mut Diagnostics) {
    let span = target.span;
    let NodeKind::Map(t) = target.kind else {
        if !matches!(target.kind, NodeKind::Null) {
            diags.push(
                Diag::error(format!("target `{target_name}` must be a map")).at(span, "not a map"),
            );
        }
        return;
    };
    let Some(root) = tree.as_map_mut() else {
        return;
    };
    for (k, v) in t.entries {
        match k.name.as_str() {
            "default" => {}
            "bundle" | "workspace" | "artifacts" | "resources" | "sync" | "permissions"
            | "presets" | "experimental" => {
                merge_entry(root, k, v, diags);
            }
            // An empty `run_as:` in a target keeps the bundle's (as the CLI does).
            "run_as" if matches!(v.kind, NodeKind::Null) => {}
            "run_as" => root.insert(k, v),
            "mode" | "compute_id" | "cluster_id" => {
                let bundle = ensure_map(root, "bundle", k.span);
                bundle.insert(k, v);
            }
            "git" => {
                let bundle = ensure_map(root, "bundle", k.span);
                merge_entry(bundle, k, v, diags);
            }
            "variables" => apply_target_variables(root, target_name, v, diags),
            other => {
                let mut d =
                    Diag::warning(format!("unknown field `{other}` in target `{target_name}`"))
                        .at(k.span, "unknown field");
                if let Some(s) = did_you_mean(other, TARGET_KEYS.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
        }
    }
}

fn merge_entry(map: &mut Map, key: Key, value: Node, diags: &mut Diagnostics) {
    match map.get_mut(&key.name) {
        Some(existing) => merge_into(existing, value, diags),
        None => {
            if !matches!(value.kind, NodeKind::Null) {
                map.entries.push((key, value));
            }
        }
    }
}

fn ensure_map<'m>(map: &'m mut Map, key: &str, span: Span) -> &'m mut Map {
    let needs = !matches!(map.get(key).map(|n| &n.kind), Some(NodeKind::Map(_)));
    if needs {
        map.insert(
            Key {
                name: key.to_string(),
                span,
            },
            Node::new(NodeKind::Map(Map::default()), span),
        );
    }
    match map.get_mut(key).map(|n| &mut n.kind) {
        Some(NodeKind::Map(m)) => m,
        // Just inserted a map above.
        _ => unreachable!("ensure_map inserted a map"),
    }
}

/// Whether a declaration says `type: complex`.
pub fn is_complex(decl: &Node) -> bool {
    decl.get("type").and_then(Node::as_str) == Some("complex")
}

fn apply_target_variables(
    root: &mut Map,
    target_name: &str,
    overrides: Node,
    diags: &mut Diagnostics,
) {
    let NodeKind::Map(overrides) = overrides.kind else {
        if !matches!(overrides.kind, NodeKind::Null) {
            diags.push(
                Diag::error(format!(
                    "`variables` in target `{target_name}` must be a map"
                ))
                .at(overrides.span, "not a map"),
            );
        }
        return;
    };
    let declared: Vec<String> = root
        .get("variables")
        .and_then(Node::as_map)
        .map(|m| m.keys().map(str::to_string).collect())
        .unwrap_or_default();
    for (k, v) in overrides.entries {
        let Some(decl) = root
            .get_mut("variables")
            .and_then(Node::as_map_mut)
            .and_then(|m| m.get_mut(&k.name))
        else {
            let mut d = Diag::error(format!(
                "target `{target_name}` assigns variable `{}`, which is not declared",
                k.name
            ))
            .at(k.span, "assigned here");
            d = match did_you_mean(&k.name, declared.iter().map(String::as_str)) {
                Some(s) => d.help(format!(
                    "did you mean `{s}`? Otherwise declare it under the top-level `variables:`"
                )),
                None => d.help("declare it under the top-level `variables:` first"),
            };
            diags.push(d);
            continue;
        };
        // A bare declaration (`name:` or `name: value`) becomes a map first.
        if !matches!(decl.kind, NodeKind::Map(_)) {
            let span = decl.span;
            let old = std::mem::replace(decl, Node::new(NodeKind::Map(Map::default()), span));
            if !matches!(old.kind, NodeKind::Null) {
                if let Some(m) = decl.as_map_mut() {
                    m.insert(
                        Key {
                            name: "default".into(),
                            span: old.span,
                        },
                        old,
                    );
                }
            }
        }
        let complex = is_complex(decl);
        // A complex variable's value is a map itself; `{default: ...}` (or
        // `{lookup: ...}`) alone is still the full form, as in the CLI.
        let full_form = !complex
            || v.as_map().is_some_and(|m| {
                !m.is_empty() && m.keys().all(|k| k == "default" || k == "lookup")
            });
        let (default, lookup) = match v.kind {
            NodeKind::Map(m) if full_form => {
                let mut default = None;
                let mut lookup = None;
                for (fk, fv) in m.entries {
                    match fk.name.as_str() {
                        "default" => default = Some((fk, fv)),
                        "lookup" => lookup = Some((fk, fv)),
                        other => diags.push(
                            Diag::warning(format!(
                                "a target can only set `default` or `lookup` of variable `{}`; `{other}` is ignored",
                                k.name
                            ))
                            .at(fk.span, "ignored")
                            .help("declare descriptions and types at the top-level `variables:`"),
                        ),
                    }
                }
                (default, lookup)
            }
            NodeKind::Seq(_) if !complex => {
                diags.push(
                    Diag::warning(format!(
                        "target `{target_name}` gives variable `{}` a list, but it is not declared `type: complex`; the value is ignored",
                        k.name
                    ))
                    .at(v.span, "list value")
                    .help("add `type: complex` to the variable's declaration"),
                );
                (None, None)
            }
            kind => (
                Some((
                    Key {
                        name: "default".into(),
                        span: k.span,
                    },
                    Node::new(kind, v.span),
                )),
                None,
            ),
        };
        let Some(decl_map) = decl.as_map_mut() else {
            continue;
        };
        // The value set by the target replaces the other kind of value.
        if let Some((dk, dv)) = default {
            decl_map.remove("lookup");
            decl_map.insert(dk, dv);
        }
        if let Some((lk, lv)) = lookup {
            decl_map.remove("default");
            decl_map.insert(lk, lv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};

    fn yaml(text: &str) -> Node {
        let (n, d) = parse_file(FileId(0), text);
        assert!(!d.has_errors(), "{:?}", d.items);
        n
    }

    #[test]
    fn maps_merge_sequences_concatenate_scalars_replace() {
        let mut base = yaml("a: {x: 1, y: [1]}\nb: keep\n");
        let mut diags = Diagnostics::default();
        merge_into(
            &mut base,
            yaml("a: {x: 2, y: [2], z: 3}\nb: ~\n"),
            &mut diags,
        );
        assert!(diags.is_empty());
        assert_eq!(
            base.to_json(),
            serde_json::json!({"a": {"x": 2, "y": [1, 2], "z": 3}, "b": "keep"})
        );
    }

    #[test]
    fn merging_a_map_with_a_scalar_is_an_error() {
        let mut base = yaml("a: {x: 1}\n");
        let mut diags = Diagnostics::default();
        merge_into(&mut base, yaml("a: text\n"), &mut diags);
        assert!(diags.has_errors());
    }

    #[test]
    fn tasks_merge_by_task_key() {
        let mut tree = yaml(
            "resources:\n  jobs:\n    j:\n      tasks:\n        - task_key: a\n          x: 1\n        - task_key: b\n          x: 2\n",
        );
        let mut diags = Diagnostics::default();
        let over = yaml("resources:\n  jobs:\n    j:\n      tasks:\n        - task_key: b\n          y: 3\n        - task_key: c\n");
        merge_into(&mut tree, over, &mut diags);
        merge_keyed_lists(&mut tree, &mut diags);
        assert_eq!(
            tree.pointer(&["resources", "jobs", "j", "tasks"])
                .map(Node::to_json),
            Some(
                serde_json::json!([{"task_key": "a", "x": 1}, {"task_key": "b", "x": 2, "y": 3}, {"task_key": "c"}])
            )
        );
    }

    #[test]
    fn duplicate_resource_across_files_names_both() {
        let mut base = yaml("resources:\n  jobs:\n    j: {name: a}\n");
        let mut diags = Diagnostics::default();
        merge_included(
            &mut base,
            yaml("resources:\n  jobs:\n    j: {name: b}\n    k: {}\n"),
            &mut diags,
        );
        assert_eq!(diags.items.len(), 1);
        assert_eq!(diags.items[0].related.len(), 1);
        assert_eq!(
            base.pointer(&["resources", "jobs", "j", "name"])
                .and_then(Node::as_str),
            Some("a")
        );
        assert!(base.pointer(&["resources", "jobs", "k"]).is_some());
    }

    #[test]
    fn target_selection_rules() {
        let mut d = Diagnostics::default();
        assert_eq!(
            select_target(None, None, None, &mut d).as_deref(),
            Some("default")
        );
        let t = yaml("dev: {default: true}\nprod: {}\n");
        assert_eq!(
            select_target(t.as_map(), None, None, &mut d).as_deref(),
            Some("dev")
        );
        assert_eq!(
            select_target(t.as_map(), Some("prod"), None, &mut d).as_deref(),
            Some("prod")
        );
        let one = yaml("only: {}\n");
        assert_eq!(
            select_target(one.as_map(), None, None, &mut d).as_deref(),
            Some("only")
        );
        assert!(d.is_empty());
        assert_eq!(select_target(t.as_map(), Some("prd"), None, &mut d), None);
        assert!(d.items[0].help.as_deref().unwrap_or("").contains("`prod`"));
        let none = yaml("a: {}\nb: {}\n");
        assert_eq!(select_target(none.as_map(), None, None, &mut d), None);
    }

    #[test]
    fn target_variables_set_default_or_lookup_only() {
        let mut tree = yaml("variables:\n  a: {default: x}\n  b:\n    lookup: {cluster: c}\n  c: {type: complex, default: {k: 1}}\n");
        let target = yaml("variables:\n  a: y\n  b: value\n  c: {k: 2}\n  undeclared: 1\n");
        let mut d = Diagnostics::default();
        apply_target(&mut tree, "t", target, &mut d);
        assert_eq!(d.count(crate::diag::Severity::Error), 1);
        let vars = tree.get("variables").map(Node::to_json);
        assert_eq!(
            vars,
            Some(
                serde_json::json!({"a": {"default": "y"}, "b": {"default": "value"}, "c": {"type": "complex", "default": {"k": 2}}})
            )
        );
    }
}
