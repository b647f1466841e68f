//! Variable declarations and where each value comes from. Highest first:
//! `--var k=v`, `BUNDLE_VAR_k`, `.databricks/bundle/<target>/variable-overrides.json`,
//! the target's default, the declared default; then a `lookup:` (resolved by
//! the engine through the API, pending until then).

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::config::merge::is_complex;
use crate::config::model::PendingLookup;
use crate::config::source::{resolve_plain, Key, Map, Node, NodeKind, ScalarStyle, Span};
use crate::diag::{did_you_mean, Diag, Diagnostics};
use crate::interp::resolve::VarSource;

/// `value` sets the value directly (below `--var` only), as the CLI allows.
const DECL_KEYS: &[&str] = &["default", "description", "type", "lookup", "value"];
const LOOKUP_KINDS: &[&str] = &[
    "alert",
    "cluster_policy",
    "cluster",
    "dashboard",
    "instance_pool",
    "job",
    "metastore",
    "notification_destination",
    "pipeline",
    "query",
    "service_principal",
    "warehouse",
];

/// Rewrite shorthand declarations (`name: value` ⇒ `name: {default: value}`,
/// `name:` ⇒ `name: {}`) so every declaration is a map; check their fields.
pub fn normalize_declarations(tree: &mut Node, diags: &mut Diagnostics) {
    let Some(vars) = tree.as_map_mut().and_then(|m| m.get_mut("variables")) else {
        return;
    };
    let vars_span = vars.span;
    let Some(vars) = vars.as_map_mut() else {
        if !matches!(vars.kind, NodeKind::Null) {
            diags.push(
                Diag::error("`variables` must be a map of variable declarations")
                    .at(vars_span, "not a map"),
            );
        }
        *vars = Node::new(NodeKind::Map(Map::default()), vars_span);
        return;
    };
    for (k, decl) in vars.entries.iter_mut() {
        match &decl.kind {
            NodeKind::Map(_) => {}
            NodeKind::Null => *decl = Node::new(NodeKind::Map(Map::default()), decl.span),
            NodeKind::Seq(_) => {
                diags.push(
                    Diag::error(format!("variable `{}` is declared as a list", k.name))
                        .at(
                            decl.span,
                            "expected a map with `default`, `description`, `type` or `lookup`",
                        )
                        .help("for a list value write `type: complex` and `default: [...]`"),
                );
                *decl = Node::new(NodeKind::Map(Map::default()), decl.span);
            }
            _ => {
                let value = std::mem::replace(decl, Node::new(NodeKind::Null, Span::synthetic()));
                let span = value.span;
                let mut m = Map::default();
                m.insert(
                    Key {
                        name: "default".into(),
                        span,
                    },
                    value,
                );
                *decl = Node::new(NodeKind::Map(m), span);
            }
        }
        let Some(m) = decl.as_map() else { continue };
        for (fk, fv) in &m.entries {
            if !DECL_KEYS.contains(&fk.name.as_str()) {
                let mut d = Diag::warning(format!(
                    "unknown field `{}` in variable `{}`",
                    fk.name, k.name
                ))
                .at(fk.span, "unknown field");
                if let Some(s) = did_you_mean(&fk.name, DECL_KEYS.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
            if fk.name == "type" && fv.as_str() != Some("complex") {
                diags.push(
                    Diag::warning(format!("variable `{}` has an unknown type", k.name))
                        .at(fv.span, "the only type is `complex`")
                        .help("omit `type` for strings, numbers and booleans"),
                );
            }
            if fk.name == "lookup" {
                check_lookup(&k.name, fv, diags);
            }
        }
    }
}

fn check_lookup(name: &str, lookup: &Node, diags: &mut Diagnostics) {
    let Some(m) = lookup.as_map().filter(|m| m.len() == 1) else {
        diags.push(
            Diag::error(format!(
                "the lookup of variable `{name}` must name exactly one object"
            ))
            .at(lookup.span, "e.g. `lookup: {cluster_policy: my-policy}`"),
        );
        return;
    };
    for (k, _) in &m.entries {
        if !LOOKUP_KINDS.contains(&k.name.as_str()) {
            let mut d = Diag::error(format!(
                "unknown lookup kind `{}` in variable `{name}`",
                k.name
            ))
            .at(k.span, "unknown lookup");
            if let Some(s) = did_you_mean(&k.name, LOOKUP_KINDS.iter().copied()) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
        }
    }
}

/// Inputs beyond the tree.
pub struct ValueInputs<'a> {
    pub target: &'a str,
    /// `--var` values, `k=v`.
    pub cli: &'a [String],
    pub env: &'a HashMap<String, String>,
    /// Parsed `variable-overrides.json` (a map), if the file exists and is valid.
    pub overrides_file: Option<&'a Node>,
    /// Lookup values resolved by the engine.
    pub lookups: &'a HashMap<String, serde_json::Value>,
}

/// The chosen value per declared variable, and the lookups left pending.
pub struct Chosen {
    pub values: IndexMap<String, VarSource>,
    /// Where each value came from (for `validate` output and errors).
    pub origin: IndexMap<String, &'static str>,
    pub pending: Vec<PendingLookup>,
    /// Declaration key span per variable.
    pub decl_spans: IndexMap<String, Span>,
}

pub fn choose_values(tree: &Node, inp: &ValueInputs<'_>, diags: &mut Diagnostics) -> Chosen {
    let empty = Map::default();
    let decls = tree
        .get("variables")
        .and_then(Node::as_map)
        .unwrap_or(&empty);
    let mut cli: IndexMap<String, String> = IndexMap::new();
    for kv in inp.cli {
        let Some((k, v)) = kv.split_once('=') else {
            diags.push(
                Diag::error(format!("--var `{kv}` is not of the form name=value"))
                    .help("e.g. --var catalog=main"),
            );
            continue;
        };
        if decls.get(k).is_none() {
            let mut d = Diag::error(format!("--var sets `{k}`, which is not declared"));
            if let Some(s) = did_you_mean(k, decls.keys()) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            continue;
        }
        if cli.contains_key(k) {
            diags.push(
                Diag::error(format!("--var `{k}` is given more than once"))
                    .help(format!("pass `--var {k}=<value>` once")),
            );
            continue;
        }
        cli.insert(k.to_string(), v.to_string());
    }
    let mut out = Chosen {
        values: IndexMap::new(),
        origin: IndexMap::new(),
        pending: vec![],
        decl_spans: IndexMap::new(),
    };
    for (k, decl) in &decls.entries {
        let name = k.name.as_str();
        out.decl_spans.insert(name.to_string(), k.span);
        let complex = is_complex(decl);
        let default = decl
            .get("default")
            .filter(|d| !matches!(d.kind, NodeKind::Null));
        let typed_like = default.map(|d| &d.kind);
        let from_text = |text: &str, span: Span| coerce_like(text, typed_like, span);
        let (value, origin) = if let Some(v) = cli.get(name) {
            if complex {
                diags.push(complex_text_error(name, "--var"));
                (VarSource::Missing, "--var")
            } else {
                (VarSource::Value(from_text(v, Span::synthetic())), "--var")
            }
        } else if let Some(v) = decl
            .get("value")
            .filter(|v| !matches!(v.kind, NodeKind::Null))
        {
            (VarSource::Value(v.clone()), "value")
        } else if let Some(v) = inp.env.get(&format!("BUNDLE_VAR_{name}")) {
            if complex {
                diags.push(complex_text_error(name, &format!("BUNDLE_VAR_{name}")));
                (VarSource::Missing, "environment")
            } else {
                (
                    VarSource::Value(from_text(v, Span::synthetic())),
                    "environment",
                )
            }
        } else if let Some(v) = inp.overrides_file.and_then(|f| f.get(name)) {
            let is_container = matches!(v.kind, NodeKind::Map(_) | NodeKind::Seq(_));
            if complex && !is_container {
                diags.push(
                    Diag::error(format!(
                        "variable `{name}` is of type complex, but its value in variable-overrides.json is not"
                    ))
                    .at(v.span, "not a map or list"),
                );
                (VarSource::Missing, "variable-overrides.json")
            } else if !complex && is_container {
                diags.push(
                    Diag::error(format!(
                        "variable `{name}` is not of type complex, but its value in variable-overrides.json is {}",
                        v.type_name()
                    ))
                    .at(v.span, "complex value")
                    .help(format!("declare `{name}` with `type: complex`")),
                );
                (VarSource::Missing, "variable-overrides.json")
            } else {
                (VarSource::Value(v.clone()), "variable-overrides.json")
            }
        } else if let Some(d) = default {
            (VarSource::Value(d.clone()), "default")
        } else if let Some(lookup) = decl
            .get("lookup")
            .filter(|l| !matches!(l.kind, NodeKind::Null))
        {
            match inp.lookups.get(name) {
                Some(v) => (VarSource::Value(Node::from_json(v, lookup.span)), "lookup"),
                None => {
                    out.pending.push(PendingLookup {
                        variable: name.to_string(),
                        lookup: lookup.to_json(),
                        span: lookup.span,
                    });
                    (VarSource::Pending, "lookup")
                }
            }
        } else {
            (VarSource::Missing, "none")
        };
        out.values.insert(name.to_string(), value);
        out.origin.insert(name.to_string(), origin);
    }
    out
}

fn complex_text_error(name: &str, via: &str) -> Diag {
    Diag::error(format!("variable `{name}` is of type complex and cannot be set from {via}")).help(
        "set complex values in the target's `variables:` or in .databricks/bundle/<target>/variable-overrides.json",
    )
}

/// Values from `--var` and the environment are text; when the declared
/// default is a number or boolean, read the text the same way (so
/// `--var nodes=2` gives the integer 2 where the default was an integer).
fn coerce_like(text: &str, like: Option<&NodeKind>, span: Span) -> Node {
    let as_string = || {
        Node::new(
            NodeKind::String(text.to_string(), ScalarStyle::Quoted),
            span,
        )
    };
    let parsed = resolve_plain(text);
    let same = matches!(
        (like, &parsed),
        (Some(NodeKind::Int(_)), NodeKind::Int(_))
            | (Some(NodeKind::Bool(_)), NodeKind::Bool(_))
            | (
                Some(NodeKind::Float(_)),
                NodeKind::Float(_) | NodeKind::Int(_)
            )
    );
    if same {
        Node::new(parsed, span)
    } else {
        as_string()
    }
}

/// The error for a variable with no value, naming its uses and the ways to set it.
pub fn missing_error(name: &str, decl_span: Option<Span>, uses: &[Span], target: &str) -> Diag {
    let mut d = Diag::error(format!("no value assigned to required variable `{name}`"));
    if let Some(sp) = decl_span {
        d = d.at(sp, "declared here without a default");
    }
    for u in uses.iter().take(5) {
        d = d.related(*u, "used here");
    }
    let used = match uses.len() {
        0 => String::new(),
        1 => " (used in 1 place)".to_string(),
        n => format!(" (used in {n} places)"),
    };
    d.help(format!(
        "give it a `default`, or set it with `--var {name}=<value>`, the `BUNDLE_VAR_{name}` environment variable, \
         or .databricks/bundle/{target}/variable-overrides.json{used}"
    ))
}

/// The `variables` section for output: each declaration plus its `value`.
pub fn output_section(decls: &Node, values: &IndexMap<String, Option<Node>>) -> Node {
    let mut out = Map::default();
    if let Some(m) = decls.as_map() {
        for (k, decl) in &m.entries {
            let mut entry = decl.as_map().cloned().unwrap_or_default();
            if let Some(Some(v)) = values.get(&k.name) {
                entry.insert(
                    Key {
                        name: "value".into(),
                        span: v.span,
                    },
                    v.clone(),
                );
            }
            out.entries
                .push((k.clone(), Node::new(NodeKind::Map(entry), decl.span)));
        }
    }
    Node::new(NodeKind::Map(out), decls.span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};

    fn yaml(text: &str) -> Node {
        parse_file(FileId(0), text).0
    }

    fn value_json(c: &Chosen, name: &str) -> Option<serde_json::Value> {
        match c.values.get(name) {
            Some(VarSource::Value(v)) => Some(v.to_json()),
            _ => None,
        }
    }

    #[test]
    fn precedence_cli_env_file_default() {
        let tree = yaml("variables:\n  a: {default: d}\n  b: {default: d}\n  c: {default: d}\n  d: {default: d}\n");
        let env: HashMap<String, String> = [
            ("BUNDLE_VAR_a".to_string(), "env".to_string()),
            ("BUNDLE_VAR_b".to_string(), "env".to_string()),
        ]
        .into();
        let file = yaml("{\"a\": \"file\", \"b\": \"file\", \"c\": \"file\"}");
        let cli = vec!["a=cli".to_string()];
        let lookups = HashMap::new();
        let inp = ValueInputs {
            target: "t",
            cli: &cli,
            env: &env,
            overrides_file: Some(&file),
            lookups: &lookups,
        };
        let mut diags = Diagnostics::default();
        let c = choose_values(&tree, &inp, &mut diags);
        assert!(diags.is_empty(), "{:?}", diags.items);
        assert_eq!(value_json(&c, "a"), Some("cli".into()));
        assert_eq!(value_json(&c, "b"), Some("env".into()));
        assert_eq!(value_json(&c, "c"), Some("file".into()));
        assert_eq!(value_json(&c, "d"), Some("d".into()));
    }

    #[test]
    fn lookups_pend_or_resolve_and_missing_is_reported_by_caller() {
        let tree = yaml("variables:\n  l: {lookup: {cluster: c}}\n  m: {description: x}\n  n: {lookup: {warehouse: w}}\n");
        let env = HashMap::new();
        let lookups: HashMap<String, serde_json::Value> =
            [("n".to_string(), serde_json::json!("1234"))].into();
        let inp = ValueInputs {
            target: "t",
            cli: &[],
            env: &env,
            overrides_file: None,
            lookups: &lookups,
        };
        let mut diags = Diagnostics::default();
        let c = choose_values(&tree, &inp, &mut diags);
        assert!(matches!(c.values.get("l"), Some(VarSource::Pending)));
        assert!(matches!(c.values.get("m"), Some(VarSource::Missing)));
        assert_eq!(value_json(&c, "n"), Some("1234".into()));
        assert_eq!(c.pending.len(), 1);
    }

    #[test]
    fn cli_values_take_the_default_type_and_undeclared_is_an_error() {
        let tree = yaml("variables:\n  n: {default: 1}\n  s: {default: x}\n");
        let env = HashMap::new();
        let lookups = HashMap::new();
        let cli = vec!["n=3".to_string(), "s=4".to_string(), "zz=1".to_string()];
        let inp = ValueInputs {
            target: "t",
            cli: &cli,
            env: &env,
            overrides_file: None,
            lookups: &lookups,
        };
        let mut diags = Diagnostics::default();
        let c = choose_values(&tree, &inp, &mut diags);
        assert_eq!(value_json(&c, "n"), Some(3.into()));
        assert_eq!(value_json(&c, "s"), Some("4".into()));
        assert_eq!(diags.count(crate::diag::Severity::Error), 1);
    }

    #[test]
    fn shorthand_declarations_become_maps() {
        let mut tree = yaml("variables:\n  a: 1\n  b:\n  c: {default: 2, descripton: x}\n");
        let mut diags = Diagnostics::default();
        normalize_declarations(&mut tree, &mut diags);
        assert_eq!(
            tree.get("variables").map(Node::to_json),
            Some(
                serde_json::json!({"a": {"default": 1}, "b": {}, "c": {"default": 2, "descripton": "x"}})
            )
        );
        assert_eq!(diags.items.len(), 1);
        assert!(diags.items[0].help.as_deref() == Some("did you mean `description`?"));
    }
}
