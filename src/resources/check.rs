//! Generic checker: walks a resolved, spanned [`Node`] against the generated
//! JSON Schema (the same one editors use), so the typed structs are the single
//! source of truth for field names, types, enums, ranges and required fields.
//!
//! Scalar leniency follows the official CLI's normalisation: a string field
//! accepts any scalar, an integer field accepts a string that parses as one,
//! a boolean field accepts `"true"`/`"false"`. A value still holding a
//! `${...}` reference is accepted anywhere; `null` counts as absent.

use serde_json::Value;

use crate::config::source::{Node, NodeKind};
use crate::diag::{did_you_mean, Diag, Diagnostics};
use crate::resources::common::{node_is_interpolated, INTERPOLATION_DEF};

/// Check `node` against the schema definition `def` of the bundle schema.
/// `addr` prefixes every message (`resources.database_instances.main`).
pub fn check_def(def: &str, addr: &str, node: &Node, diags: &mut Diagnostics) {
    let root = crate::resources::schema::bundle_schema_ref();
    static ANY: Value = Value::Bool(true);
    let schema = root.get("$defs").and_then(|d| d.get(def)).unwrap_or(&ANY);
    check_schema(root, schema, addr, node, diags);
}

/// Check `node` against an arbitrary `schema` whose `$ref`s resolve in `root`.
pub fn check_schema<'a>(
    root: &'a Value,
    schema: &'a Value,
    addr: &str,
    node: &Node,
    diags: &mut Diagnostics,
) {
    let mut walker = Walker { root, diags };
    walker.walk(schema, node, addr);
}

struct Walker<'a, 'd> {
    root: &'a Value,
    diags: &'d mut Diagnostics,
}

/// The schema type a node satisfies (for choosing an `anyOf` branch).
fn node_type_matches(ty: &str, node: &Node) -> bool {
    matches!(
        (ty, &node.kind),
        ("object", NodeKind::Map(_))
            | ("array", NodeKind::Seq(_))
            | ("string", NodeKind::String(..))
            | ("integer", NodeKind::Int(_))
            | ("number", NodeKind::Int(_) | NodeKind::Float(_))
            | ("boolean", NodeKind::Bool(_))
    )
}

fn type_phrase(ty: &str) -> &'static str {
    match ty {
        "object" => "a map",
        "array" => "a sequence",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        _ => "a value",
    }
}

/// The scalar as text, for enums and messages.
fn scalar_text(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::String(s, _) => Some(s.clone()),
        NodeKind::Int(i) => Some(i.to_string()),
        NodeKind::Float(f) => Some(f.to_string()),
        NodeKind::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn join_path(path: &str, field: &str) -> String {
    format!("{path}.{field}")
}

impl<'a> Walker<'a, '_> {
    /// Follow `$ref`s to the schema that constrains.
    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        let root: &'a Value = self.root;
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(name) = r.strip_prefix("#/$defs/") else {
                break;
            };
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(next) => schema = next,
                None => break,
            }
        }
        schema
    }

    fn is_interpolation_branch(schema: &Value) -> bool {
        schema
            .get("$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| r.ends_with(&format!("/{INTERPOLATION_DEF}")))
    }

    /// Check one node; `path` names it in messages.
    fn walk(&mut self, schema: &'a Value, node: &Node, path: &str) {
        if matches!(node.kind, NodeKind::Null) || node_is_interpolated(node) {
            return;
        }
        let schema = self.resolve(schema);
        let Value::Object(obj) = schema else { return };

        if let Some(alts) = obj
            .get("anyOf")
            .or_else(|| obj.get("oneOf"))
            .and_then(Value::as_array)
        {
            let alts: Vec<&Value> = alts
                .iter()
                .filter(|a| !Self::is_interpolation_branch(a))
                .collect();
            match alts.as_slice() {
                [] => {}
                [only] => self.walk(only, node, path),
                many => self.walk_alternatives(many, node, path),
            }
        }

        if let Some(ty) = obj.get("type").and_then(Value::as_str) {
            if !self.check_type(ty, node, path) {
                return;
            }
        }
        if let Some(Value::Array(allowed)) = obj.get("enum") {
            self.check_enum(allowed, node, path);
        }
        self.check_range(obj, node, path);

        match &node.kind {
            NodeKind::Map(map) => {
                let props = obj.get("properties").and_then(Value::as_object);
                let additional = obj.get("additionalProperties");
                for (key, value) in &map.entries {
                    let child_path = join_path(path, &key.name);
                    if let Some(sub) = props.and_then(|p| p.get(&key.name)) {
                        self.walk(sub, value, &child_path);
                    } else {
                        match additional {
                            Some(Value::Bool(false)) => {
                                let known = props
                                    .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>())
                                    .unwrap_or_default();
                                let mut d = Diag::warning(format!(
                                    "unknown field `{}` in {path}",
                                    key.name
                                ))
                                .at(key.span, "unknown field");
                                if let Some(s) = did_you_mean(&key.name, known.iter().copied()) {
                                    d = d.help(format!("did you mean `{s}`?"));
                                } else if !known.is_empty() && known.len() <= 12 {
                                    d = d.help(format!("known fields: {}", known.join(", ")));
                                }
                                self.diags.push(d);
                            }
                            Some(sub @ Value::Object(_)) => self.walk(sub, value, &child_path),
                            _ => {}
                        }
                    }
                }
                if let Some(Value::Array(required)) = obj.get("required") {
                    for req in required.iter().filter_map(Value::as_str) {
                        if map
                            .get(req)
                            .is_none_or(|v| matches!(v.kind, NodeKind::Null))
                        {
                            self.diags.push(
                                Diag::error(format!("{path} is missing required field `{req}`"))
                                    .at(node.span, format!("`{req}` is required here")),
                            );
                        }
                    }
                }
            }
            NodeKind::Seq(items) => {
                if let Some(item_schema) = obj.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item_schema, item, &format!("{path}[{i}]"));
                    }
                }
                if let Some(min) = obj.get("minItems").and_then(Value::as_u64) {
                    if (items.len() as u64) < min {
                        let msg = if min == 1 {
                            format!("{path} must not be empty")
                        } else {
                            format!("{path} needs at least {min} entries, found {}", items.len())
                        };
                        self.diags
                            .push(Diag::error(msg).at(node.span, "too few entries"));
                    }
                }
            }
            _ => {}
        }
    }

    /// Several non-`${...}` alternatives: accept the first that fits cleanly,
    /// otherwise report the problems of the branch whose type matches.
    fn walk_alternatives(&mut self, alts: &[&'a Value], node: &Node, path: &str) {
        let mut best: Option<Diagnostics> = None;
        for alt in alts {
            let mut scratch = Diagnostics::default();
            Walker {
                root: self.root,
                diags: &mut scratch,
            }
            .walk(alt, node, path);
            if !scratch.has_errors() {
                self.diags.extend(scratch);
                return;
            }
            let resolved = self.resolve(alt);
            let type_fits = resolved
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| node_type_matches(t, node));
            if best.is_none() || type_fits {
                best = Some(scratch);
            }
        }
        if let Some(b) = best {
            self.diags.extend(b);
        }
    }

    /// Returns false when the node has the wrong shape (no deeper checks then).
    fn check_type(&mut self, ty: &str, node: &Node, path: &str) -> bool {
        let ok = match (&node.kind, ty) {
            (NodeKind::Map(_), "object") | (NodeKind::Seq(_), "array") => true,
            (NodeKind::Map(_) | NodeKind::Seq(_), _) | (_, "object" | "array") => false,
            (_, "string") => true,
            (NodeKind::Int(_), "integer" | "number") | (NodeKind::Float(_), "number") => true,
            (NodeKind::String(s, _), "integer") => s.trim().parse::<i64>().is_ok(),
            (NodeKind::String(s, _), "number") => s.trim().parse::<f64>().is_ok(),
            (NodeKind::Float(f), "integer") => f.fract() == 0.0,
            (NodeKind::Bool(_), "boolean") => true,
            (NodeKind::String(s, _), "boolean") => matches!(s.as_str(), "true" | "false"),
            _ => false,
        };
        if !ok {
            let found = match &node.kind {
                NodeKind::String(s, _) => format!("a string ({s:?})"),
                other => Node::new(other.clone(), node.span).type_name().to_string(),
            };
            self.diags.push(
                Diag::error(format!("{path} must be {}, found {found}", type_phrase(ty)))
                    .at(node.span, format!("expected {}", type_phrase(ty))),
            );
        }
        ok
    }

    fn check_enum(&mut self, allowed: &[Value], node: &Node, path: &str) {
        let Some(text) = scalar_text(node) else {
            return;
        };
        let values: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        if values.is_empty() || values.contains(&text.as_str()) {
            return;
        }
        let mut d = Diag::error(format!("invalid value `{text}` for {path}"))
            .at(node.span, format!("expected one of {}", values.join(", ")));
        let ci = values.iter().find(|v| v.eq_ignore_ascii_case(&text));
        if let Some(s) = ci
            .copied()
            .or_else(|| did_you_mean(&text, values.iter().copied()))
        {
            d = d.help(format!("did you mean `{s}`?"));
        }
        self.diags.push(d);
    }

    fn check_range(&mut self, obj: &serde_json::Map<String, Value>, node: &Node, path: &str) {
        let min = obj.get("minimum").and_then(Value::as_f64);
        let max = obj.get("maximum").and_then(Value::as_f64);
        if min.is_none() && max.is_none() {
            return;
        }
        let n = match &node.kind {
            NodeKind::Int(i) => *i as f64,
            NodeKind::Float(f) => *f,
            NodeKind::String(s, _) => match s.trim().parse::<f64>() {
                Ok(n) => n,
                Err(_) => return,
            },
            _ => return,
        };
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            let bounds = match (min, max) {
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            self.diags.push(
                Diag::error(format!("{path} must be {bounds}, found {n}"))
                    .at(node.span, format!("must be {bounds}")),
            );
        }
    }
}
