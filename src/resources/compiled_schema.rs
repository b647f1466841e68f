//! The bundle schema compiled once for the checker and the normaliser
//! ([`super::check`]): every schema location reachable from `$defs`, with its
//! `$ref`s followed and its keywords pulled out of the JSON. Both walk every
//! field of every resource of a bundle, and a JSON schema read as JSON costs
//! a hashed lookup per keyword per field (a third of `validate` at 10,000
//! resources); here a field costs one lookup of its name.
//!
//! A location is one JSON value of the schema (identified by its address:
//! the schema is built once and never changes). The checker reads a
//! location's keywords after following its `$ref`s; the normaliser asks for
//! the location's single typed branch (`typed`) and the `$defs` name it
//! refers to (`def_name`). Both are computed here with the same rules the
//! walks used on the JSON, so compiling changes no result.

use std::collections::HashMap;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::common::INTERPOLATION_DEF;

/// Index of a location in [`CompiledSchema::nodes`].
pub type Id = u32;

/// What `additionalProperties` allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Additional {
    /// `false`: any key not in `properties` is unknown.
    Forbidden,
    /// A schema every other key's value must satisfy.
    Schema(Id),
    /// Absent, `true`, or anything else: other keys are not checked.
    Unchecked,
}

/// `properties`: by name for lookups, in schema order for messages.
#[derive(Debug, Default)]
pub struct Properties {
    by_name: FxHashMap<&'static str, Id>,
    pub names: Vec<&'static str>,
}

impl Properties {
    pub fn get(&self, name: &str) -> Option<Id> {
        self.by_name.get(name).copied()
    }
}

/// One location: its keywords once its `$ref`s are followed, and the
/// normaliser's view of the location itself.
#[derive(Debug)]
pub struct SchemaNode {
    /// The followed schema is an object (else it constrains nothing).
    pub is_object: bool,
    /// `anyOf` (else `oneOf`) without the branches that never decide a shape.
    pub alternatives: Option<Vec<Id>>,
    pub ty: Option<&'static str>,
    /// The string values of `enum`, when `enum` is a list.
    pub enum_values: Option<Vec<&'static str>>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub properties: Option<Properties>,
    pub additional: Additional,
    pub required: Option<Vec<&'static str>>,
    pub items: Option<Id>,
    pub min_items: Option<u64>,
    /// The location's one typed branch: `$ref`s followed and an `anyOf` of a
    /// single non-pass-through branch entered (None when several compete).
    pub typed: Option<Id>,
    /// The `$defs` name the location refers to (directly or in an `anyOf`).
    pub def_name: Option<&'static str>,
}

pub struct CompiledSchema {
    root: &'static Value,
    pub nodes: Vec<SchemaNode>,
    ids: HashMap<usize, Id>,
}

/// The compiled bundle schema ([`super::schema::bundle_schema_ref`]).
pub fn compiled() -> &'static CompiledSchema {
    static COMPILED: OnceLock<CompiledSchema> = OnceLock::new();
    COMPILED.get_or_init(|| CompiledSchema::compile(super::schema::bundle_schema_ref()))
}

fn address(v: &Value) -> usize {
    v as *const Value as usize
}

/// A branch that never decides a shape: the `${...}` pattern, or the `null`
/// the editor schema allows for a key left empty.
pub fn is_passthrough_branch(schema: &Value) -> bool {
    is_interpolation_branch(schema) || schema.get("type").and_then(Value::as_str) == Some("null")
}

fn is_interpolation_branch(schema: &Value) -> bool {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_suffix(INTERPOLATION_DEF))
        .is_some_and(|r| r.ends_with('/'))
}

fn strings(v: &'static Value) -> Vec<&'static str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl CompiledSchema {
    fn compile(root: &'static Value) -> CompiledSchema {
        let mut c = CompiledSchema {
            root,
            nodes: Vec::new(),
            ids: HashMap::new(),
        };
        if let Some(defs) = root.get("$defs").and_then(Value::as_object) {
            for def in defs.values() {
                c.location(def);
            }
        }
        c
    }

    /// The id of a location of this schema (None for a value that is not
    /// part of it).
    pub fn id_of(&self, location: &Value) -> Option<Id> {
        self.ids.get(&address(location)).copied()
    }

    /// The definition `$defs/<name>`.
    pub fn def(&self, name: &str) -> Option<Id> {
        self.id_of(self.root.get("$defs")?.get(name)?)
    }

    pub fn node(&self, id: Id) -> &SchemaNode {
        &self.nodes[id as usize]
    }

    pub fn root(&self) -> &'static Value {
        self.root
    }

    /// Follow `$ref`s to the schema that constrains (the checker's rule: an
    /// unresolvable reference stops where it is).
    fn follow(&self, mut schema: &'static Value) -> &'static Value {
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(name) = r.strip_prefix("#/$defs/") else {
                break;
            };
            match self.root.get("$defs").and_then(|d| d.get(name)) {
                Some(next) => schema = next,
                None => break,
            }
        }
        schema
    }

    /// The normaliser's rule: `$ref`s followed, a single typed branch of an
    /// `anyOf` entered; None when unresolvable or when several branches compete.
    fn typed_location(&self, mut schema: &'static Value) -> Option<&'static Value> {
        for _ in 0..32 {
            if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
                let name = r.strip_prefix("#/$defs/")?;
                schema = self.root.get("$defs")?.get(name)?;
                continue;
            }
            if let Some(alts) = schema
                .get("anyOf")
                .or_else(|| schema.get("oneOf"))
                .and_then(Value::as_array)
            {
                let mut typed = alts.iter().filter(|a| !is_passthrough_branch(a));
                match (typed.next(), typed.next()) {
                    (Some(only), None) => {
                        schema = only;
                        continue;
                    }
                    _ => return None,
                }
            }
            return Some(schema);
        }
        None
    }

    fn def_name_of(schema: &'static Value) -> Option<&'static str> {
        let alts = schema.get("anyOf").and_then(Value::as_array);
        let r = match alts {
            Some(a) => a.iter().find_map(|x| x.get("$ref").and_then(Value::as_str)),
            None => schema.get("$ref").and_then(Value::as_str),
        }?;
        r.strip_prefix("#/$defs/")
    }

    /// Compile `schema` (memoised by address, so shared and recursive
    /// definitions compile once).
    fn location(&mut self, schema: &'static Value) -> Id {
        if let Some(id) = self.ids.get(&address(schema)) {
            return *id;
        }
        let id = Id::try_from(self.nodes.len()).unwrap_or(Id::MAX);
        self.ids.insert(address(schema), id);
        // Filled in below, once its children have ids.
        self.nodes.push(placeholder());
        let followed = self.follow(schema);
        let node = match followed {
            Value::Object(obj) => {
                let alternatives = obj
                    .get("anyOf")
                    .or_else(|| obj.get("oneOf"))
                    .and_then(Value::as_array)
                    .map(|alts| {
                        alts.iter()
                            .filter(|a| !is_passthrough_branch(a))
                            .map(|a| self.location(a))
                            .collect()
                    });
                let properties = obj.get("properties").and_then(Value::as_object).map(|p| {
                    let mut props = Properties::default();
                    for (name, sub) in p {
                        let sub = self.location(sub);
                        props.by_name.insert(name.as_str(), sub);
                        props.names.push(name.as_str());
                    }
                    props
                });
                let additional = match obj.get("additionalProperties") {
                    Some(Value::Bool(false)) => Additional::Forbidden,
                    Some(sub @ Value::Object(_)) => Additional::Schema(self.location(sub)),
                    _ => Additional::Unchecked,
                };
                let items = obj.get("items").map(|i| self.location(i));
                SchemaNode {
                    is_object: true,
                    alternatives,
                    ty: obj.get("type").and_then(Value::as_str),
                    enum_values: obj.get("enum").filter(|e| e.is_array()).map(strings),
                    minimum: obj.get("minimum").and_then(Value::as_f64),
                    maximum: obj.get("maximum").and_then(Value::as_f64),
                    properties,
                    additional,
                    required: obj.get("required").filter(|r| r.is_array()).map(strings),
                    items,
                    min_items: obj.get("minItems").and_then(Value::as_u64),
                    typed: None,
                    def_name: Self::def_name_of(schema),
                }
            }
            _ => SchemaNode {
                def_name: Self::def_name_of(schema),
                ..placeholder()
            },
        };
        let typed = self.typed_location(schema).map(|t| self.location(t));
        self.nodes[id as usize] = SchemaNode { typed, ..node };
        id
    }
}

fn placeholder() -> SchemaNode {
    SchemaNode {
        is_object: false,
        alternatives: None,
        ty: None,
        enum_values: None,
        minimum: None,
        maximum: None,
        properties: None,
        additional: Additional::Unchecked,
        required: None,
        items: None,
        min_items: None,
        typed: None,
        def_name: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leak(v: Value) -> &'static Value {
        Box::leak(Box::new(v))
    }

    #[test]
    fn refs_are_followed_and_recursive_definitions_compile_once() {
        let root = leak(json!({"$defs": {
            "Tree": {"type": "object", "properties": {
                "name": {"type": "string", "enum": ["a", "b"]},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
                "size": {"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/interpolation"}]}
            }, "additionalProperties": false, "required": ["name"]},
            "interpolation": {"type": "string", "pattern": "\\$\\{"}
        }}));
        let c = CompiledSchema::compile(root);
        let tree = c.node(c.def("Tree").expect("compiled"));
        assert!(tree.is_object);
        assert_eq!(tree.ty, Some("object"));
        assert_eq!(tree.additional, Additional::Forbidden);
        assert_eq!(tree.required.as_deref(), Some(&["name"][..]));
        let props = tree.properties.as_ref().expect("properties");
        assert_eq!(props.names, ["name", "children", "size"]);
        let name = c.node(props.get("name").expect("name"));
        assert_eq!(name.enum_values.as_deref(), Some(&["a", "b"][..]));
        // The items' `$ref` is followed back to the definition itself.
        let children = c.node(props.get("children").expect("children"));
        let item = c.node(children.items.expect("items"));
        assert_eq!(item.def_name, Some("Tree"));
        assert!(item.properties.as_ref().is_some_and(|p| p.names.len() == 3));
        assert_eq!(item.typed, c.def("Tree"));
        // The `${...}` branch is dropped; the integer branch is the typed one.
        let size = c.node(props.get("size").expect("size"));
        assert_eq!(size.alternatives.as_ref().map(Vec::len), Some(1));
        let typed = c.node(size.typed.expect("typed"));
        assert_eq!((typed.ty, typed.minimum), (Some("integer"), Some(1.0)));
        assert_eq!(size.def_name, Some("interpolation"));
    }

    #[test]
    fn competing_branches_have_no_typed_view() {
        let root = leak(json!({"$defs": {
            "Either": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
        }}));
        let c = CompiledSchema::compile(root);
        let either = c.node(c.def("Either").expect("compiled"));
        assert_eq!(either.alternatives.as_ref().map(Vec::len), Some(2));
        assert_eq!(either.typed, None);
    }
}
