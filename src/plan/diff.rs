//! Pure field diff of two JSON values in the bundle's YAML shape.
//!
//! Paths are dotted: `spec.primary_key_columns`, `tasks[0]`, and for keyed
//! lists (job tasks, job clusters, ...) `tasks[task_key=ingest]`, so a task
//! inserted in the middle does not make every later task look changed.
//!
//! Rules (from the kind's [`FieldRules`]):
//! - only fields the config sets (or the last apply set) are compared: remote
//!   extras are server-filled defaults, never a change;
//! - output-only and bundle-only fields are never compared;
//! - input-only fields compare through their `effective_*` twin, else the last
//!   applied value ([`effective_current`] builds that view);
//! - a change under an immutable path, or any change when the kind has no
//!   update API, forces replacement;
//! - a `${resources...}` text left in the config is unknown until apply.

use serde_json::{Map, Value};

use super::FieldChange;
use crate::interp::Seg;
use crate::resources::FieldRules;

/// Keys that identify elements of lists of objects, tried in order.
const LIST_KEYS: &[&str] = &[
    "task_key",
    "job_cluster_key",
    "environment_key",
    "key",
    "name",
];

/// True for a value that still holds a deferred `${resources...}` reference.
pub fn is_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${resources."),
        Value::Array(a) => a.iter().any(is_unknown),
        Value::Object(m) => m.values().any(is_unknown),
        _ => false,
    }
}

/// Absent, null and empty containers all mean "not set" (servers omit empty lists).
fn is_unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

/// Equality that treats `1` and `1.0` alike.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

/// `path` is `rule` or lies beneath it (`a.b` is under `a`; `a[0].b` under `a`).
fn under(path: &str, rule: &str) -> bool {
    path == rule
        || path
            .strip_prefix(rule)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// `path` is an immutable field, beneath one, or a container holding one.
fn touches(path: &str, rule: &str) -> bool {
    under(path, rule) || under(rule, path)
}

/// `rule` is a field path without its list selectors (`tasks[task_key=a].x`
/// → `tasks.x`), so rules can name fields inside lists.
fn ignored(rule: &str, rules: &FieldRules) -> bool {
    rules
        .output_only
        .iter()
        .chain(rules.bundle_only)
        .any(|r| under(rule, r))
}

fn forces_replacement(rule: &str, rules: &FieldRules) -> bool {
    rules.replace_on_any_change || rules.immutable.iter().any(|r| touches(rule, r))
}

/// The element key shared by every object in `list`, if any.
fn list_key(list: &[Value]) -> Option<&'static str> {
    if list.is_empty() {
        return None;
    }
    LIST_KEYS
        .iter()
        .copied()
        .find(|k| list.iter().all(|e| e.get(k).is_some_and(|v| v.is_string())))
}

/// The value of key `k` of each element (`""` where missing).
fn list_ids<'v>(list: &'v [Value], k: &str) -> Vec<&'v str> {
    list.iter()
        .map(|e| e.get(k).and_then(Value::as_str).unwrap_or(""))
        .collect()
}

/// Walks every field of a resource (a plan walks every field of every
/// resource): `path` is the field's path and `rule` the same without list
/// selectors, both one buffer extended for each child and cut back after it.
struct Walker<'r> {
    rules: &'r FieldRules,
    out: Vec<FieldChange>,
    path: String,
    rule: String,
}

impl<'r> Walker<'r> {
    fn new(rules: &'r FieldRules) -> Self {
        Walker {
            rules,
            out: Vec::new(),
            path: String::new(),
            rule: String::new(),
        }
    }

    fn push(&mut self, path: String, old: Option<&Value>, new: Option<&Value>) {
        let unknown = new.is_some_and(is_unknown);
        let forces = forces_replacement(&self.rule, self.rules);
        self.out.push(FieldChange {
            forces_replacement: forces,
            path,
            old: old.filter(|v| !v.is_null()).cloned(),
            new: new.filter(|v| !v.is_null()).cloned(),
            unknown,
        });
    }

    /// Append `.key` (or `key` at the top) to both paths; returns their
    /// lengths before, for [`Walker::cut`].
    fn enter_key(&mut self, key: &str) -> (usize, usize) {
        let lens = (self.path.len(), self.rule.len());
        push_key(&mut self.path, key);
        push_key(&mut self.rule, key);
        lens
    }

    fn cut(&mut self, (path, rule): (usize, usize)) {
        self.path.truncate(path);
        self.rule.truncate(rule);
    }

    /// Compare `new` (desired) with `old` (current). `prev` is the last applied
    /// value at the same place: fields it set but `new` no longer sets are
    /// reported as removed.
    fn walk(&mut self, new: Option<&Value>, old: Option<&Value>, prev: Option<&Value>) {
        if !self.path.is_empty() && ignored(&self.rule, self.rules) {
            return;
        }
        match (new, old) {
            (Some(n), _) if !matches!(n, Value::Object(_) | Value::Array(_)) && is_unknown(n) => {
                self.push(self.path.clone(), old, Some(n));
            }
            (Some(Value::Object(n)), Some(Value::Object(o))) => {
                let p = prev.and_then(Value::as_object);
                self.walk_map(n, o, p);
            }
            (Some(Value::Array(n)), Some(Value::Array(o))) => {
                let p = prev.and_then(Value::as_array);
                self.walk_list(n, o, p);
            }
            (Some(n), o) if is_unset(Some(n)) => {
                // Config sets an empty value: only a change if the remote has content
                // and the last apply did not leave it there.
                if !is_unset(o) && prev.is_some() {
                    self.push(self.path.clone(), o, None);
                }
            }
            (Some(n), Some(o)) => {
                if !values_equal(n, o) {
                    self.push(self.path.clone(), Some(o), Some(n));
                }
            }
            (Some(n), None) => self.push(self.path.clone(), None, Some(n)),
            (None, _) => {}
        }
    }

    fn walk_map(
        &mut self,
        new: &Map<String, Value>,
        old: &Map<String, Value>,
        prev: Option<&Map<String, Value>>,
    ) {
        for (k, nv) in new {
            let lens = self.enter_key(k);
            self.walk(Some(nv), old.get(k), prev.and_then(|p| p.get(k)));
            self.cut(lens);
        }
        // Fields the last apply set and the config dropped: the remote still has them.
        if let Some(prev) = prev {
            for k in prev.keys() {
                if new.contains_key(k) {
                    continue;
                }
                let lens = self.enter_key(k);
                if !ignored(&self.rule, self.rules) && !is_unset(old.get(k)) {
                    self.push(self.path.clone(), old.get(k), None);
                }
                self.cut(lens);
            }
        }
    }

    fn walk_list(&mut self, new: &[Value], old: &[Value], prev: Option<&Vec<Value>>) {
        use std::fmt::Write;
        let all_objects = new.iter().chain(old).all(Value::is_object);
        if !all_objects {
            // Lists of scalars compare whole: order matters (primary key columns).
            if !values_equal(&Value::Array(new.to_vec()), &Value::Array(old.to_vec())) {
                self.push(
                    self.path.clone(),
                    Some(&Value::Array(old.to_vec())),
                    Some(&Value::Array(new.to_vec())),
                );
            }
            return;
        }
        let len = self.path.len();
        let key =
            list_key(new).filter(|k| old.iter().all(|e| e.get(k).is_some_and(|v| v.is_string())));
        match key {
            Some(k) => {
                let new_ids = list_ids(new, k);
                let old_ids = list_ids(old, k);
                let prev_ids = prev.map(|p| list_ids(p, k));
                fn find<'v>(list: &'v [Value], ids: &[&str], want: &str) -> Option<&'v Value> {
                    ids.iter().position(|id| *id == want).map(|i| &list[i])
                }
                for (n, want) in new.iter().zip(&new_ids) {
                    let _ = write!(self.path, "[{k}={want}]");
                    let o = find(old, &old_ids, want);
                    let p = prev
                        .zip(prev_ids.as_deref())
                        .and_then(|(p, ids)| find(p, ids, want));
                    self.walk(Some(n), o, p);
                    self.path.truncate(len);
                }
                for (o, have) in old.iter().zip(&old_ids) {
                    if !new_ids.contains(have) {
                        let path = format!("{}[{k}={have}]", self.path);
                        self.push(path, Some(o), None);
                    }
                }
            }
            None => {
                for (i, n) in new.iter().enumerate() {
                    let _ = write!(self.path, "[{i}]");
                    self.walk(Some(n), old.get(i), prev.and_then(|p| p.get(i)));
                    self.path.truncate(len);
                }
                for (i, o) in old.iter().enumerate().skip(new.len()) {
                    let path = format!("{}[{i}]", self.path);
                    self.push(path, Some(o), None);
                }
            }
        }
    }
}

/// Append `.key` (or `key` at the top) to a field path.
fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// Field changes needed to turn `current` into `desired`. `applied` is the
/// last applied config (None for a new resource).
pub fn diff_fields(
    desired: &Value,
    current: &Value,
    applied: Option<&Value>,
    rules: &FieldRules,
) -> Vec<FieldChange> {
    let mut w = Walker::new(rules);
    w.walk(Some(desired), Some(current), applied);
    w.out
}

/// Keep only the parts of `value` that `shape` also sets.
pub fn restrict(value: &Value, shape: &Value) -> Option<Value> {
    match (value, shape) {
        (Value::Object(v), Value::Object(s)) => {
            let m: Map<String, Value> = s
                .keys()
                .filter_map(|k| Some((k.clone(), restrict(v.get(k)?, &s[k])?)))
                .collect();
            Some(Value::Object(m))
        }
        _ => Some(value.clone()),
    }
}

/// Drift: fields the config sets whose remote value differs from the last
/// apply. `old` = last applied, `new` = remote. Deferred references in the
/// config are not drift.
pub fn drift_fields(
    applied: &Value,
    current: &Value,
    desired: &Value,
    rules: &FieldRules,
) -> Vec<FieldChange> {
    let Some(applied_in_config) = restrict(applied, desired) else {
        return vec![];
    };
    let mut w = Walker::new(rules);
    w.walk(Some(&applied_in_config), Some(current), None);
    w.out
        .into_iter()
        .filter(|c| !c.unknown)
        .map(|c| FieldChange {
            old: c.new,
            new: c.old,
            unknown: false,
            forces_replacement: false,
            path: c.path,
        })
        .collect()
}

/// Dotted lookup (`a.b`, `list[2]`, `tasks[task_key=x]`) inside a value,
/// in the one field-path grammar ([`crate::interp::split_path`]); None when
/// the path is malformed or leads nowhere.
pub fn get_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = value;
    for seg in crate::interp::split_path(path)? {
        cur = match seg {
            Seg::Key(k) => cur.get(k)?,
            Seg::Index(i) => cur.get(i)?,
            Seg::Select { key, value } => cur
                .as_array()?
                .iter()
                .find(|e| e.get(&key).and_then(Value::as_str) == Some(value.as_str()))?,
        };
    }
    Some(cur)
}

/// The remote view to diff against: `remote` (already in YAML shape) with
/// every input-only field filled from its `effective_*` twin in `raw_remote`,
/// else from the last applied config, since GET never returns it.
pub fn effective_current(
    mut remote: Value,
    raw_remote: &Value,
    applied: Option<&Value>,
    rules: &FieldRules,
) -> Value {
    for (field, twin) in rules.input_only {
        if get_path(&remote, field).is_some() {
            continue;
        }
        let from_twin = (!twin.is_empty())
            .then(|| get_path(raw_remote, twin).or_else(|| get_path(&remote, twin)))
            .flatten();
        let from_applied = applied.and_then(|a| get_path(a, field));
        if let Some(v) = from_twin.or(from_applied).cloned() {
            set_path(&mut remote, field, v);
        }
    }
    remote
}

/// Set a plain dotted path (map keys only), creating maps on the way.
pub fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut cur = target;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else { return };
        if i + 1 == segs.len() {
            m.insert(seg.to_string(), value);
            return;
        }
        cur = m
            .entry(seg.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> FieldRules {
        FieldRules {
            immutable: &["name", "parent_instance_ref"],
            replace_on_any_change: false,
            input_only: &[("node_count", "effective_node_count"), ("custom_tags", "")],
            output_only: &["uid", "state"],
            bundle_only: crate::resources::common::ENGINE_FIELDS,
        }
    }

    #[test]
    fn server_defaults_and_outputs_are_not_changes() {
        let desired =
            json!({"name": "db", "capacity": "CU_1", "lifecycle": {"prevent_destroy": true}});
        let current = json!({"name": "db", "capacity": "CU_1", "uid": "u", "state": "AVAILABLE", "pg_version": "PG_16"});
        assert!(diff_fields(&desired, &current, None, &rules()).is_empty());
    }

    #[test]
    fn changed_field_reports_old_and_new() {
        let desired = json!({"name": "db", "capacity": "CU_2"});
        let current = json!({"name": "db", "capacity": "CU_1"});
        let d = diff_fields(&desired, &current, None, &rules());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "capacity");
        assert_eq!(d[0].old, Some(json!("CU_1")));
        assert_eq!(d[0].new, Some(json!("CU_2")));
        assert!(!d[0].forces_replacement);
    }

    #[test]
    fn immutable_forces_replacement_including_nested() {
        let desired = json!({"name": "db2", "parent_instance_ref": {"name": "a"}});
        let current = json!({"name": "db", "parent_instance_ref": {"name": "b"}});
        let d = diff_fields(&desired, &current, None, &rules());
        let paths: Vec<_> = d
            .iter()
            .map(|c| (c.path.as_str(), c.forces_replacement))
            .collect();
        assert_eq!(
            paths,
            vec![("name", true), ("parent_instance_ref.name", true)]
        );
    }

    #[test]
    fn replace_on_any_change() {
        let r = FieldRules {
            replace_on_any_change: true,
            ..FieldRules::default()
        };
        let d = diff_fields(
            &json!({"database_name": "x"}),
            &json!({"database_name": "y"}),
            None,
            &r,
        );
        assert!(d[0].forces_replacement);
    }

    #[test]
    fn input_only_compares_effective_twin_or_applied() {
        let raw = json!({"name": "db", "effective_node_count": 2});
        let applied =
            json!({"name": "db", "node_count": 2, "custom_tags": [{"key": "a", "value": "1"}]});
        let cur = effective_current(json!({"name": "db"}), &raw, Some(&applied), &rules());
        assert_eq!(cur["node_count"], json!(2));
        assert_eq!(cur["custom_tags"], applied["custom_tags"]);
        let desired =
            json!({"name": "db", "node_count": 3, "custom_tags": [{"key": "a", "value": "1"}]});
        let d = diff_fields(&desired, &cur, Some(&applied), &rules());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "node_count");
        assert_eq!(d[0].old, Some(json!(2)));
    }

    #[test]
    fn keyed_lists_match_by_task_key() {
        let desired = json!({"tasks": [
            {"task_key": "new", "notebook_task": {"notebook_path": "/n"}},
            {"task_key": "a", "notebook_task": {"notebook_path": "/a2"}},
        ]});
        let current = json!({"tasks": [
            {"task_key": "a", "notebook_task": {"notebook_path": "/a"}, "timeout_seconds": 0},
            {"task_key": "gone", "notebook_task": {"notebook_path": "/g"}},
        ]});
        let d = diff_fields(&desired, &current, None, &FieldRules::default());
        let paths: Vec<_> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "tasks[task_key=new]",
                "tasks[task_key=a].notebook_task.notebook_path",
                "tasks[task_key=gone]"
            ]
        );
        assert_eq!(
            get_path(&desired, "tasks[task_key=a].notebook_task.notebook_path"),
            Some(&json!("/a2"))
        );
    }

    /// get_path reads the one grammar: keyed elements (values with dots),
    /// indexes; a malformed path finds nothing instead of a guess.
    #[test]
    fn get_path_grammar() {
        let v = json!({"tasks": [{"task_key": "a.b", "x": [10, 20]}], "m": {"k-1": true}});
        assert_eq!(get_path(&v, "tasks[task_key=a.b].x[1]"), Some(&json!(20)));
        assert_eq!(get_path(&v, "tasks[0].task_key"), Some(&json!("a.b")));
        assert_eq!(get_path(&v, "m.k-1"), Some(&json!(true)));
        assert_eq!(get_path(&v, "tasks[task_key=zz]"), None);
        assert_eq!(get_path(&v, "m[0]"), None);
        for bad in ["", ".m", "m..k-1", "tasks[x]", "tasks[0"] {
            assert_eq!(get_path(&v, bad), None, "{bad}");
        }
    }

    /// Every field path a kind declares is a path of the grammar (else its
    /// lookups would find nothing).
    #[test]
    fn kind_field_paths_parse() {
        use crate::resources::{kind_impl, Kind};
        for kind in Kind::ALL {
            let k = kind_impl(kind);
            let r = k.rules();
            let paths = r
                .immutable
                .iter()
                .chain(r.output_only)
                .chain(r.bundle_only)
                .chain(r.input_only.iter().map(|(f, _)| f))
                .chain(
                    r.input_only
                        .iter()
                        .map(|(_, t)| t)
                        .filter(|t| !t.is_empty()),
                )
                .chain(k.output_fields())
                .chain(kind.info().state_fields);
            for p in paths {
                assert!(crate::interp::split_path(p).is_some(), "{kind}: {p}");
            }
        }
    }

    #[test]
    fn scalar_lists_compare_whole_and_in_order() {
        let d = diff_fields(
            &json!({"pk": ["a", "b"]}),
            &json!({"pk": ["b", "a"]}),
            None,
            &FieldRules::default(),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "pk");
    }

    #[test]
    fn removed_from_config_but_applied_before_is_a_change() {
        let applied = json!({"name": "j", "description": "old"});
        let current = json!({"name": "j", "description": "old", "server_thing": 1});
        let d = diff_fields(
            &json!({"name": "j"}),
            &current,
            Some(&applied),
            &FieldRules::default(),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "description");
        assert_eq!(d[0].new, None);
    }

    #[test]
    fn unknown_refs_are_marked() {
        let desired = json!({"tasks": [{"task_key": "t", "pipeline_task": {"pipeline_id": "${resources.synced_database_tables.s.data_synchronization_status.pipeline_id}"}}]});
        let current =
            json!({"tasks": [{"task_key": "t", "pipeline_task": {"pipeline_id": "p-1"}}]});
        let d = diff_fields(&desired, &current, None, &FieldRules::default());
        assert_eq!(d.len(), 1);
        assert!(d[0].unknown);
        assert_eq!(d[0].old, Some(json!("p-1")));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(diff_fields(
            &json!({"n": 1}),
            &json!({"n": 1.0}),
            None,
            &FieldRules::default()
        )
        .is_empty());
    }

    #[test]
    fn drift_reports_remote_against_applied() {
        let applied = json!({"name": "job-a", "max_concurrent_runs": 1});
        let desired = applied.clone();
        let current = json!({"name": "renamed-in-ui", "max_concurrent_runs": 1, "extra": true});
        let d = drift_fields(&applied, &current, &desired, &FieldRules::default());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "name");
        assert_eq!(d[0].old, Some(json!("job-a")));
        assert_eq!(d[0].new, Some(json!("renamed-in-ui")));
    }
}
