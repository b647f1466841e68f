//! Generic checker: walks a resolved, spanned [`Node`] against the generated
//! JSON Schema (the same one editors use), so the typed structs are the single
//! source of truth for field names, types, enums, ranges and required fields.
//! The schema is walked in its compiled form ([`super::compiled_schema`]).
//!
//! Scalar leniency follows the official CLI's normalisation: a string field
//! accepts any scalar, an integer field accepts a string that parses as one,
//! a boolean field accepts `"true"`/`"false"`. A value still holding a
//! `${...}` reference is accepted anywhere; `null` counts as absent.

use crate::config::source::{Node, NodeKind, ScalarStyle};
use crate::diag::{did_you_mean, Diag, Diagnostics};
use crate::resources::common::node_is_interpolated;
use crate::resources::compiled_schema::{compiled, Additional, CompiledSchema, Id};

/// Check `node` against the schema definition `def` of the bundle schema.
/// `addr` prefixes every message (`resources.database_instances.main`).
pub fn check_def(def: &str, addr: &str, node: &Node, diags: &mut Diagnostics) {
    let schema = compiled();
    // An unknown definition constrains nothing.
    let Some(id) = schema.def(def) else { return };
    let mut walker = Walker { schema, diags };
    walker.walk(id, node, &Path::Root(addr));
}

/// Where a node sits, built as a borrowed chain and only rendered to text
/// when a message needs it (most nodes produce none).
#[derive(Clone, Copy)]
enum Path<'p> {
    Root(&'p str),
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(addr) => f.write_str(addr),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

struct Walker<'d> {
    schema: &'static CompiledSchema,
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

impl Walker<'_> {
    /// Check one node against schema location `id`; `path` names it in messages.
    fn walk(&mut self, id: Id, node: &Node, path: &Path<'_>) {
        if matches!(node.kind, NodeKind::Null) || node_is_interpolated(node) {
            return;
        }
        let s = self.schema.node(id);
        if !s.is_object {
            return;
        }
        if let Some(alts) = &s.alternatives {
            match alts.as_slice() {
                [] => {}
                [only] => self.walk(*only, node, path),
                many => self.walk_alternatives(many, node, path),
            }
        }
        if let Some(ty) = s.ty {
            if !self.check_type(ty, node, path) {
                return;
            }
        }
        if let Some(allowed) = &s.enum_values {
            self.check_enum(allowed, node, path);
        }
        self.check_range(s.minimum, s.maximum, node, path);

        match &node.kind {
            NodeKind::Map(map) => {
                let props = s.properties.as_ref();
                for (key, value) in &map.entries {
                    let child_path = Path::Key(path, &key.name);
                    if let Some(sub) = props.and_then(|p| p.get(&key.name)) {
                        self.walk(sub, value, &child_path);
                        continue;
                    }
                    match s.additional {
                        Additional::Forbidden => {
                            let known: &[&str] = props.map_or(&[], |p| &p.names);
                            let mut d =
                                Diag::warning(format!("unknown field `{}` in {path}", key.name))
                                    .at(key.span, "unknown field");
                            if let Some(s) = did_you_mean(&key.name, known.iter().copied()) {
                                d = d.help(format!("did you mean `{s}`?"));
                            } else if !known.is_empty() && known.len() <= 12 {
                                d = d.help(format!("known fields: {}", known.join(", ")));
                            }
                            self.diags.push(d);
                        }
                        Additional::Schema(sub) => self.walk(sub, value, &child_path),
                        Additional::Unchecked => {}
                    }
                }
                for req in s.required.iter().flatten() {
                    if map
                        .get(req)
                        .is_none_or(|v| matches!(v.kind, NodeKind::Null))
                    {
                        // Like the CLI: a warning, the server may
                        // default it (`--strict` makes it an error).
                        self.diags.push(
                            Diag::warning(format!("{path} is missing required field `{req}`"))
                                .at(node.span, format!("`{req}` is required here")),
                        );
                    }
                }
            }
            NodeKind::Seq(items) => {
                if let Some(item_schema) = s.items {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item_schema, item, &Path::Index(path, i));
                    }
                }
                if let Some(min) = s.min_items {
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
    fn walk_alternatives(&mut self, alts: &[Id], node: &Node, path: &Path<'_>) {
        let mut best: Option<Diagnostics> = None;
        for &alt in alts {
            let mut scratch = Diagnostics::default();
            Walker {
                schema: self.schema,
                diags: &mut scratch,
            }
            .walk(alt, node, path);
            if !scratch.has_errors() {
                self.diags.extend(scratch);
                return;
            }
            let type_fits = self
                .schema
                .node(alt)
                .ty
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
    fn check_type(&mut self, ty: &str, node: &Node, path: &Path<'_>) -> bool {
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

    fn check_enum(&mut self, values: &[&str], node: &Node, path: &Path<'_>) {
        let Some(text) = node.scalar_text() else {
            return;
        };
        if values.is_empty() || values.contains(&text.as_str()) {
            return;
        }
        // A warning, as in the CLI: the server may know values this
        // schema does not yet.
        let mut d = Diag::warning(format!("invalid value `{text}` for {path}"))
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

    fn check_range(&mut self, min: Option<f64>, max: Option<f64>, node: &Node, path: &Path<'_>) {
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

/// Fields the CLI sends even when set to `""` (everything else that is an
/// optional string field of a typed object is dropped, like the SDK's
/// `omitempty`): `(definition, field)`.
const EMPTY_STRING_KEPT: &[(&str, &str)] = &[("App", "description")];

/// Normalise one resolved resource of kind `kind_key` the way the official
/// CLI does before validating, planning and sending it:
/// - a string in a field the schema types as boolean, integer or number
///   becomes that type (`"true"` → `true`, `"1"` → `1`, `"0.5"` → `0.5`), so a
///   whole-value `${var.x}` reference yields a typed value;
/// - an optional string field of a typed object set to `""` is dropped (free
///   maps such as tags keep their empty values, and so do required fields).
pub fn normalize_resource(kind_key: &str, node: &mut Node) {
    let schema = compiled();
    let Some(kind) = schema
        .root()
        .get("$defs")
        .and_then(|d| d.get("Resources"))
        .and_then(|r| r.get("properties"))
        .and_then(|p| p.get(kind_key))
        .and_then(|k| schema.id_of(k))
        .and_then(|k| schema.node(k).typed)
    else {
        return;
    };
    let Additional::Schema(item_schema) = schema.node(kind).additional else {
        return;
    };
    let item = schema.node(item_schema);
    if let Some(typed) = item.typed {
        Normalizer { schema }.normalize(typed, node, item.def_name);
    }
}

struct Normalizer {
    schema: &'static CompiledSchema,
}

impl Normalizer {
    /// Normalise `node` against the typed location `id`; `def` is the
    /// `$defs` name the field's schema referred to (for the exceptions list).
    fn normalize(&self, id: Id, node: &mut Node, def: Option<&str>) {
        let schema = self.schema.node(id);
        let ty = schema.ty;
        match &mut node.kind {
            NodeKind::String(s, _) => {
                if s.contains("${") {
                    return;
                }
                let t = s.trim();
                let typed = match ty {
                    Some("boolean") => match t {
                        "true" => Some(NodeKind::Bool(true)),
                        "false" => Some(NodeKind::Bool(false)),
                        _ => None,
                    },
                    Some("integer") => t.parse::<i64>().ok().map(NodeKind::Int),
                    Some("number") => t
                        .parse::<i64>()
                        .map(NodeKind::Int)
                        .ok()
                        .or_else(|| t.parse::<f64>().ok().map(NodeKind::Float)),
                    _ => None,
                };
                if let Some(k) = typed {
                    node.kind = k;
                }
            }
            // A scalar in a string field becomes its text, as the CLI's
            // normalisation does (`pipeline configuration: {enabled: ${var.flag}}`).
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) if ty == Some("string") => {
                let text = match &node.kind {
                    NodeKind::Bool(b) => b.to_string(),
                    NodeKind::Int(i) => i.to_string(),
                    NodeKind::Float(f) => f.to_string(),
                    _ => return,
                };
                node.kind = NodeKind::String(text, ScalarStyle::Plain);
            }
            NodeKind::Map(map) => {
                let props = schema.properties.as_ref();
                let required = schema.required.as_deref().unwrap_or_default();
                map.entries.retain(|(k, v)| {
                    let Some(sub) = props.and_then(|p| p.get(&k.name)) else {
                        return true;
                    };
                    let is_empty = matches!(&v.kind, NodeKind::String(s, _) if s.is_empty());
                    if !is_empty || required.contains(&k.name.as_str()) {
                        return true;
                    }
                    let kept =
                        def.is_some_and(|d| EMPTY_STRING_KEPT.contains(&(d, k.name.as_str())));
                    // Only string fields: `""` where a number belongs stays, to be reported.
                    kept || self.schema.node(sub).typed.map(|t| self.schema.node(t).ty)
                        != Some(Some("string"))
                });
                for (k, v) in map.entries.iter_mut() {
                    let sub = match props.and_then(|p| p.get(&k.name)) {
                        Some(sub) => sub,
                        None => match schema.additional {
                            Additional::Schema(sub) => sub,
                            _ => continue,
                        },
                    };
                    let sub = self.schema.node(sub);
                    if let Some(t) = sub.typed {
                        self.normalize(t, v, sub.def_name);
                    }
                }
            }
            NodeKind::Seq(items) => {
                let Some(item) = schema.items else {
                    return;
                };
                let item = self.schema.node(item);
                if let Some(t) = item.typed {
                    for it in items.iter_mut() {
                        self.normalize(t, it, item.def_name);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::source::{parse_file, FileId, Node};
    use crate::diag::{Diag, Severity};
    use crate::resources::{kind_impl, Kind};

    /// Check `resources.<kind>.<key>` of a YAML document; returns the
    /// diagnostics and the text (for span assertions).
    fn check(kind: Kind, key: &str, yaml: &str) -> Vec<Diag> {
        let (root, parse_diags) = parse_file(FileId(0), yaml);
        assert!(!parse_diags.has_errors(), "{:?}", parse_diags.items);
        let node: &Node = root
            .pointer(&["resources", kind.key(), key])
            .expect("resource in fixture");
        let mut diags = crate::diag::Diagnostics::default();
        kind_impl(kind).check(key, node, &mut diags);
        diags.items
    }

    fn spanned<'a>(yaml: &'a str, d: &Diag) -> &'a str {
        let s = d.span.expect("diagnostic has a span");
        &yaml[s.start..s.end]
    }

    const SEED_FULL: &str = r#"
resources:
  database_instances:
    my_db:
      name: my-instance
      capacity: CU_1
      retention_window_in_days: 14
  database_catalogs:
    my_cat:
      database_instance_name: ${resources.database_instances.my_db.name}
      name: my_catalog
      database_name: my_database
      create_database_if_not_exists: true
  synced_database_tables:
    features_sync:
      name: ${resources.database_catalogs.my_cat.name}.${resources.database_catalogs.my_cat.database_name}.customer_features
      database_instance_name: ${resources.database_instances.my_db.name}
      logical_database_name: ${resources.database_catalogs.my_cat.database_name}
      spec:
        source_table_full_name: '${var.source_catalog}.${var.source_schema}.customer_features'
        scheduling_policy: SNAPSHOT
        primary_key_columns:
          - customer_id
        new_pipeline_spec:
          storage_catalog: '${var.source_catalog}'
          storage_schema: '${var.source_schema}'
  jobs:
    sync_schedule:
      name: sync-pipeline-schedule
      tasks:
        - task_key: run-sync
          pipeline_task:
            pipeline_id: ${resources.synced_database_tables.features_sync.data_synchronization_status.pipeline_id}
      schedule:
        quartz_cron_expression: '0 0 * * * ?'
        timezone_id: UTC
  apps:
    my_app:
      name: my-lakebase-app
      source_code_path: ./app
      resources:
        - name: my-db
          database:
            instance_name: ${resources.database_instances.my_db.name}
            database_name: my_database
            permission: CAN_CONNECT_AND_CREATE
"#;

    #[test]
    fn seed_production_bundle_is_clean() {
        for (kind, key) in [
            (Kind::DatabaseInstances, "my_db"),
            (Kind::DatabaseCatalogs, "my_cat"),
            (Kind::SyncedDatabaseTables, "features_sync"),
            (Kind::Jobs, "sync_schedule"),
            (Kind::Apps, "my_app"),
        ] {
            let diags = check(kind, key, SEED_FULL);
            assert!(diags.is_empty(), "{kind}.{key}: {diags:?}");
        }
    }

    #[test]
    fn unknown_field_warns_at_key_with_suggestion() {
        let yaml =
            "resources:\n  database_instances:\n    a:\n      name: db\n      capcity: CU_1\n";
        let diags = check(Kind::DatabaseInstances, "a", yaml);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].severity, Severity::Warning);
        assert_eq!(
            diags[0].message,
            "unknown field `capcity` in resources.database_instances.a"
        );
        assert_eq!(spanned(yaml, &diags[0]), "capcity");
        assert_eq!(diags[0].help.as_deref(), Some("did you mean `capacity`?"));
    }

    #[test]
    fn nested_unknown_field_in_task() {
        let yaml = "resources:\n  jobs:\n    j:\n      tasks:\n        - task_key: t\n          notebok_task:\n            notebook_path: /n\n";
        let diags = check(Kind::Jobs, "j", yaml);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(
            diags[0].message,
            "unknown field `notebok_task` in resources.jobs.j.tasks[0]"
        );
        assert_eq!(
            diags[0].help.as_deref(),
            Some("did you mean `notebook_task`?")
        );
    }

    #[test]
    fn bad_enum_lists_allowed_values() {
        let yaml =
            "resources:\n  database_instances:\n    a:\n      name: db\n      capacity: CU_3\n";
        let diags = check(Kind::DatabaseInstances, "a", yaml);
        assert_eq!(diags.len(), 1, "{diags:?}");
        // The CLI only warns: the server may know newer values.
        assert_eq!(diags[0].severity, Severity::Warning);
        assert_eq!(
            diags[0].message,
            "invalid value `CU_3` for resources.database_instances.a.capacity"
        );
        assert_eq!(
            diags[0].label.as_deref(),
            Some("expected one of CU_1, CU_2, CU_4, CU_8")
        );
        assert_eq!(spanned(yaml, &diags[0]), "CU_3");
        let lower = check(
            Kind::DatabaseInstances,
            "a",
            "resources:\n  database_instances:\n    a:\n      name: db\n      capacity: cu_2\n",
        );
        assert_eq!(lower[0].help.as_deref(), Some("did you mean `CU_2`?"));
    }

    #[test]
    fn wrong_type_is_an_error_at_the_value() {
        let yaml = "resources:\n  database_instances:\n    a:\n      name: db\n      node_count: lots\n      stopped: [true]\n";
        let diags = check(Kind::DatabaseInstances, "a", yaml);
        assert_eq!(diags.len(), 2, "{diags:?}");
        assert_eq!(diags[0].message, "resources.database_instances.a.node_count must be an integer, found a string (\"lots\")");
        assert_eq!(spanned(yaml, &diags[0]), "lots");
        assert_eq!(
            diags[1].message,
            "resources.database_instances.a.stopped must be a boolean, found a sequence"
        );
    }

    #[test]
    fn numeric_strings_and_references_are_accepted() {
        let yaml = "resources:\n  database_instances:\n    a:\n      name: db\n      node_count: \"2\"\n      retention_window_in_days: ${var.days}\n      capacity: ${var.capacity}\n      stopped: 'false'\n";
        assert!(check(Kind::DatabaseInstances, "a", yaml).is_empty());
    }

    #[test]
    fn ranges_are_checked() {
        let yaml = "resources:\n  database_instances:\n    a:\n      name: db\n      retention_window_in_days: 40\n      node_count: 0\n";
        let diags = check(Kind::DatabaseInstances, "a", yaml);
        assert_eq!(diags.len(), 2, "{diags:?}");
        assert_eq!(diags[0].message, "resources.database_instances.a.retention_window_in_days must be between 2 and 35, found 40");
        assert_eq!(spanned(yaml, &diags[0]), "40");
        assert_eq!(
            diags[1].message,
            "resources.database_instances.a.node_count must be between 1 and 3, found 0"
        );
    }

    #[test]
    fn instance_name_rule() {
        let yaml = "resources:\n  database_instances:\n    a:\n      name: 9_lives\n";
        let diags = check(Kind::DatabaseInstances, "a", yaml);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0]
                .message
                .contains("not a valid instance name: it must start with a letter"),
            "{}",
            diags[0].message
        );
        assert_eq!(spanned(yaml, &diags[0]), "9_lives");
        let templated =
            "resources:\n  database_instances:\n    a:\n      name: db-${bundle.target}\n";
        assert!(check(Kind::DatabaseInstances, "a", templated).is_empty());
    }

    #[test]
    fn missing_required_field() {
        let yaml =
            "resources:\n  database_catalogs:\n    c:\n      name: cat\n      database_name: d\n";
        let diags = check(Kind::DatabaseCatalogs, "c", yaml);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(
            diags[0].message,
            "resources.database_catalogs.c is missing required field `database_instance_name`"
        );
        assert_eq!(diags[0].severity, Severity::Warning);
    }

    #[test]
    fn synced_table_rules() {
        let yaml = "resources:\n  synced_database_tables:\n    t:\n      name: cat.table\n      spec:\n        source_table_full_name: a.b.c\n        primary_key_columns: []\n        scheduling_policy: SNAPSHOTS\n";
        let diags = check(Kind::SyncedDatabaseTables, "t", yaml);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "resources.synced_database_tables.t.spec.primary_key_columns must not be empty",
                "invalid value `SNAPSHOTS` for resources.synced_database_tables.t.spec.scheduling_policy",
                "resources.synced_database_tables.t.name `cat.table` is not a three-part name",
            ]
        );
        assert_eq!(diags[1].help.as_deref(), Some("did you mean `SNAPSHOT`?"));
        assert_eq!(spanned(yaml, &diags[2]), "cat.table");
    }

    #[test]
    fn job_task_cross_checks() {
        let yaml = "resources:\n  jobs:\n    j:\n      job_clusters:\n        - job_cluster_key: main\n      tasks:\n        - task_key: a\n          job_cluster_key: mian\n          notebook_task: {notebook_path: /n}\n        - task_key: b\n          depends_on: [{task_key: aa}]\n          notebook_task: {notebook_path: /n}\n          spark_python_task: {python_file: f.py}\n        - task_key: a\n";
        let diags = check(Kind::Jobs, "j", yaml);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "resources.jobs.j: task_key `a` is used by more than one task",
                "resources.jobs.j.tasks[0].job_cluster_key `mian` is not defined in resources.jobs.j.job_clusters",
                "resources.jobs.j.tasks[1] sets more than one task type (notebook_task, spark_python_task)",
                "resources.jobs.j.tasks[1] depends on unknown task `aa`",
            ]
        );
        assert_eq!(diags[0].related.len(), 1);
        assert_eq!(diags[1].help.as_deref(), Some("did you mean `main`?"));
    }

    #[test]
    fn permissions_need_one_principal_and_a_known_level() {
        let yaml = "resources:\n  jobs:\n    j:\n      permissions:\n        - level: CAN_VEW\n          group_name: users\n        - level: CAN_VIEW\n";
        let diags = check(Kind::Jobs, "j", yaml);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "invalid value `CAN_VEW` for resources.jobs.j.permissions[0].level",
                "resources.jobs.j.permissions[1] names no principal"
            ]
        );
        assert_eq!(diags[0].help.as_deref(), Some("did you mean `CAN_VIEW`?"));
    }

    #[test]
    fn app_resources_need_exactly_one_type() {
        let yaml = "resources:\n  apps:\n    a:\n      name: My_App\n      resources:\n        - name: r\n";
        let diags = check(Kind::Apps, "a", yaml);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "resources.apps.a.name `My_App` is not a valid app name",
                "resources.apps.a.resources[0] has no resource type"
            ]
        );
    }

    #[test]
    fn null_values_count_as_absent() {
        let yaml = "resources:\n  database_instances:\n    a:\n      name: db\n      capacity:\n";
        assert!(check(Kind::DatabaseInstances, "a", yaml).is_empty());
    }
}
