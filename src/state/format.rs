//! The file format of `resources.json`: the Databricks CLI direct engine's
//! deployment state, so that lakebundle and `databricks bundle` can take a
//! target over from each other.
//!
//! ```json
//! {"state_version": 2, "cli_version": "…", "lineage": "<uuid>", "serial": 3,
//!  "state": {"resources.jobs.foo": {"__id__": "123", "state": {…}, "depends_on": [{"node": "…"}]},
//!            "resources.jobs.foo.permissions": {"__id__": "/jobs/123",
//!              "state": {"object_id": "/jobs/123", "__embed__": [{"level": "CAN_VIEW", "user_name": "…"}]}}},
//!  "lakebundle": {"outputs": {"resources.jobs.foo": {…}}, "pending": ["resources.apps.a"]}}
//! ```
//!
//! What the official format has no room for (recorded outputs, creates in
//! flight) sits under the top-level `lakebundle` key: the CLI decodes the file
//! into a struct and ignores unknown keys, and drops the key when it rewrites
//! the file; lakebundle then reads the outputs again from the workspace.
//! Entries of kinds lakebundle does not manage are kept verbatim.
//!
//! Also read here: lakebundle's own earlier format (`format_version` 1, a
//! one-time upgrade) and the terraform engine's `terraform.tfstate`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::{DeploymentState, ResourceState, StateError};
use crate::resources::{kind_impl, registry, ResourceAddr};

/// `state_version` written by this build (the Databricks CLI's current one).
pub const STATE_VERSION: u32 = 2;
/// Highest `state_version` read (3 only without `features`, as the CLI does).
pub const MAX_STATE_VERSION: u32 = 3;
/// Top-level key of lakebundle's additions.
pub const EXTRAS_KEY: &str = "lakebundle";
/// Level the workspace grants the creator; the Databricks CLI records it in
/// `.permissions` entries, lakebundle's config never names it.
const OWNER_LEVEL: &str = "IS_OWNER";

/// `cli_version` written by lakebundle: a valid semantic version lower than
/// any Databricks CLI release, so the CLI never warns that the state comes
/// from a newer CLI, and the author stays visible.
pub fn cli_version() -> String {
    format!("0.0.0-lakebundle.{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, Serialize, Deserialize)]
struct Dep {
    node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

/// A `state` entry as read (written through [`EntryOut`]).
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "__id__", default)]
    id: String,
    #[serde(default)]
    state: Value,
    #[serde(default)]
    depends_on: Vec<Dep>,
}

#[derive(Debug, Default, Deserialize)]
struct Extras {
    #[serde(default)]
    outputs: BTreeMap<String, Value>,
    #[serde(default)]
    pending: Vec<String>,
    /// Created, then failed to become ready: replaced by the next deploy.
    #[serde(default)]
    tainted: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct OfficialFile {
    #[serde(default)]
    state_version: Option<u32>,
    /// Only in lakebundle's earlier format.
    #[serde(default)]
    format_version: Option<u32>,
    #[serde(default)]
    cli_version: String,
    #[serde(default)]
    lineage: String,
    #[serde(default)]
    serial: u64,
    #[serde(default)]
    features: Option<Map<String, Value>>,
    /// Each entry's text, parsed once into its [`Entry`] (parsing the whole
    /// file into values first, then each into an entry, built every map twice).
    #[serde(default)]
    state: BTreeMap<String, Box<RawValue>>,
    #[serde(default, rename = "lakebundle")]
    extras: Option<Extras>,
}

/// lakebundle's format before it adopted the CLI's (`format_version` 1).
#[derive(Debug, Deserialize)]
struct LegacyFile {
    format_version: u32,
    lineage: String,
    serial: u64,
    #[serde(default)]
    resources: BTreeMap<ResourceAddr, ResourceState>,
    #[serde(default)]
    pending: BTreeSet<ResourceAddr>,
}

const LEGACY_VERSION: u32 = 1;

fn parse_err(origin: &str, message: impl Into<String>) -> StateError {
    StateError::Parse {
        path: origin.to_string(),
        message: message.into(),
    }
}

/// `resources.<kind>.<key>` of a kind lakebundle deploys, and nothing after.
fn resource_addr(key: &str) -> Option<ResourceAddr> {
    let addr = ResourceAddr::parse(key.strip_prefix("resources.")?)?;
    (!addr.key.contains('.')).then_some(addr)
}

/// `/<object type>/<id>` of a resource's permissions, when its kind has them.
fn permissions_object_id(addr: &ResourceAddr, id: &str, outputs: &Value) -> Option<String> {
    let kind = kind_impl(addr.kind);
    // A kind whose permissions live under a field of the object (serving endpoints) names
    // that; the others keep their resource id here, as the CLI writes it.
    let of = kind.permissions_object_id_of(id, outputs);
    let object_id = if of == kind.permissions_object_id(id) {
        id.to_string()
    } else {
        of
    };
    kind.permissions_object_type()
        .map(|t| format!("/{t}/{object_id}"))
}

/// Parse `resources.json` (the CLI's format, or lakebundle's earlier one).
pub fn parse(text: &[u8], origin: &str) -> Result<DeploymentState, StateError> {
    if !text.trim_ascii_start().starts_with(b"{") {
        return Err(parse_err(origin, "expected a JSON object"));
    }
    // Straight into the file's structure: no intermediate tree of the whole
    // file (tens of MB at 10,000 resources).
    let file: OfficialFile =
        serde_json::from_slice(text).map_err(|e| parse_err(origin, e.to_string()))?;
    if file.format_version.is_some() && file.state_version.is_none() {
        let value: Value =
            serde_json::from_slice(text).map_err(|e| parse_err(origin, e.to_string()))?;
        return parse_legacy(value, origin);
    }
    let version = file.state_version.unwrap_or(1);
    if version > MAX_STATE_VERSION {
        return Err(StateError::UnsupportedVersion {
            found: version,
            supported: MAX_STATE_VERSION,
        });
    }
    if version == MAX_STATE_VERSION {
        if let Some(f) = file.features.as_ref().filter(|f| !f.is_empty()) {
            return Err(StateError::UnsupportedFeatures {
                features: f.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
    }
    from_official(file, version, origin)
}

fn parse_legacy(value: Value, origin: &str) -> Result<DeploymentState, StateError> {
    let old: LegacyFile =
        serde_json::from_value(value).map_err(|e| parse_err(origin, e.to_string()))?;
    if old.format_version > LEGACY_VERSION {
        return Err(StateError::UnsupportedVersion {
            found: old.format_version,
            supported: LEGACY_VERSION,
        });
    }
    Ok(DeploymentState {
        lineage: old.lineage,
        serial: old.serial,
        resources: old.resources,
        pending: old.pending,
        ..DeploymentState::new()
    })
}

/// `state_version` 1 spelled permissions as the API does and grants as `grants`.
fn upgrade_v1_entry(key: &str, state: &mut Value) {
    let Value::Object(m) = state else { return };
    if key.ends_with(".permissions") {
        if let Some(Value::Array(list)) = m.remove("permissions") {
            let list = list
                .into_iter()
                .map(|mut e| {
                    if let Some(obj) = e.as_object_mut() {
                        if let Some(l) = obj.remove("permission_level") {
                            obj.insert("level".into(), l);
                        }
                    }
                    e
                })
                .collect();
            m.insert("__embed__".into(), Value::Array(list));
        }
    } else if key.ends_with(".grants") {
        if let Some(g) = m.remove("grants") {
            m.insert("__embed__".into(), g);
        }
    }
}

fn from_official(
    mut file: OfficialFile,
    version: u32,
    origin: &str,
) -> Result<DeploymentState, StateError> {
    let written_by_us = file.extras.is_some();
    let mut extras = file.extras.take().unwrap_or_default();
    let mut st = DeploymentState {
        state_version: version.max(STATE_VERSION),
        cli_version: file.cli_version,
        lineage: file.lineage,
        serial: file.serial,
        features: file.features,
        ..DeploymentState::new()
    };
    let mut permissions: Vec<(ResourceAddr, String, Value)> = Vec::new();
    for (key, raw) in file.state {
        let permissions_of = key.strip_suffix(".permissions").and_then(resource_addr);
        if permissions_of.is_none() && resource_addr(&key).is_none() {
            // Of a kind lakebundle does not know: checked, then kept as read.
            let raw: Value = serde_json::from_str(raw.get())
                .map_err(|e| parse_err(origin, format!("entry {key}: {e}")))?;
            let entry = Entry::deserialize(&raw)
                .map_err(|e| parse_err(origin, format!("entry {key}: {e}")))?;
            if !entry.id.is_empty() {
                st.foreign.insert(key, raw);
            }
            continue;
        }
        let mut entry: Entry = serde_json::from_str(raw.get())
            .map_err(|e| parse_err(origin, format!("entry {key}: {e}")))?;
        if version < 2 {
            upgrade_v1_entry(&key, &mut entry.state);
        }
        if entry.id.is_empty() {
            // The CLI's "not deployed" marker: the next plan creates it.
            continue;
        }
        if let Some(base) = permissions_of {
            permissions.push((base, key, entry.state));
            continue;
        }
        let Some(addr) = resource_addr(&key) else {
            continue;
        };
        let applied = match entry.state {
            Value::Null => json!({}),
            v => v,
        };
        let depends_on = entry
            .depends_on
            .iter()
            .filter_map(|d| resource_addr(&d.node))
            .collect();
        let outputs = extras.outputs.remove(&key).unwrap_or(Value::Null);
        st.resources.insert(
            addr,
            ResourceState {
                id: entry.id,
                applied,
                outputs,
                depends_on,
            },
        );
    }
    for (base, key, state) in permissions {
        let Some(rs) = st.resources.get_mut(&base) else {
            st.foreign.insert(
                key,
                json!({"__id__": state.get("object_id").cloned().unwrap_or(Value::Null), "state": state}),
            );
            continue;
        };
        let list: Vec<Value> = state
            .get("__embed__")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            // The CLI records the creator's ownership, which no config names.
            .filter(|e| {
                written_by_us || e.get("level").and_then(Value::as_str) != Some(OWNER_LEVEL)
            })
            .cloned()
            .collect();
        if let Value::Object(m) = &mut rs.applied {
            m.insert("permissions".into(), Value::Array(list));
        }
    }
    st.pending = extras
        .pending
        .iter()
        .filter_map(|k| resource_addr(k))
        .collect();
    st.tainted = extras
        .tainted
        .iter()
        .filter_map(|k| resource_addr(k))
        .collect();
    Ok(st)
}

/// Serialise in the CLI's format: 1-space indent, keys of `state` sorted.
pub fn serialize(st: &DeploymentState) -> Vec<u8> {
    // Written from borrowed views of the state (no copy of it is built: at
    // 10,000 resources a copy is tens of megabytes at the deploy's peak).
    let mut entries: BTreeMap<String, Item<'_>> = st
        .foreign
        .iter()
        .map(|(k, v)| (k.clone(), Item::Foreign(v)))
        .collect();
    let mut outputs: BTreeMap<String, &Value> = BTreeMap::new();
    for (addr, rs) in &st.resources {
        let key = addr.to_string();
        let perms = permissions_object_id(addr, &rs.id, &rs.outputs)
            .and_then(|object_id| Some((object_id, rs.applied.get("permissions")?)));
        let depends_on: Vec<Dep> = rs
            .depends_on
            .iter()
            .map(|d| Dep {
                node: d.to_string(),
                label: None,
            })
            .collect();
        entries.insert(
            key.clone(),
            Item::Resource(EntryOut {
                id: rs.id.clone(),
                state: Without {
                    value: &rs.applied,
                    key: perms.is_some().then_some("permissions"),
                },
                depends_on,
            }),
        );
        if let Some((object_id, list)) = perms {
            entries.insert(
                format!("{key}.permissions"),
                Item::Permissions(EntryOut {
                    state: PermissionsOut {
                        object_id: object_id.clone(),
                        embed: list,
                    },
                    id: object_id,
                    depends_on: vec![Dep {
                        node: key.clone(),
                        label: Some(format!("${{{key}.id}}")),
                    }],
                }),
            );
        }
        if !rs.outputs.is_null() {
            outputs.insert(key, &rs.outputs);
        }
    }
    let file = OfficialFileOut {
        state_version: Some(st.state_version),
        cli_version: cli_version(),
        lineage: &st.lineage,
        serial: st.serial,
        features: st.features.as_ref(),
        state: entries,
        extras: ExtrasOut {
            outputs,
            pending: st.pending.iter().map(ToString::to_string).collect(),
            tainted: st.tainted.iter().map(ToString::to_string).collect(),
        },
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serialising plain data into memory cannot fail.
    if file.serialize(&mut ser).is_err() {
        return Vec::new();
    }
    out.push(b'\n');
    out
}

/// [`OfficialFile`] as written, borrowing from the state.
#[derive(Serialize)]
struct OfficialFileOut<'a> {
    state_version: Option<u32>,
    cli_version: String,
    lineage: &'a str,
    serial: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    features: Option<&'a Map<String, Value>>,
    state: BTreeMap<String, Item<'a>>,
    #[serde(rename = "lakebundle")]
    extras: ExtrasOut<'a>,
}

/// [`Extras`] as written.
#[derive(Serialize)]
struct ExtrasOut<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    outputs: BTreeMap<String, &'a Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pending: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tainted: Vec<String>,
}

/// One entry of `state`: a foreign one kept as read, a resource, or its permissions.
#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Foreign(&'a Value),
    Resource(EntryOut<Without<'a>>),
    Permissions(EntryOut<PermissionsOut<'a>>),
}

/// [`Entry`] as written.
#[derive(Serialize)]
struct EntryOut<S> {
    #[serde(rename = "__id__")]
    id: String,
    state: S,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<Dep>,
}

/// The state of a `.permissions` entry.
#[derive(Serialize)]
struct PermissionsOut<'a> {
    object_id: String,
    #[serde(rename = "__embed__")]
    embed: &'a Value,
}

/// A map written without one of its keys (a resource's permissions, which
/// have an entry of their own).
struct Without<'a> {
    value: &'a Value,
    key: Option<&'static str>,
}

impl Serialize for Without<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match (self.value, self.key) {
            (Value::Object(m), Some(skip)) => {
                let mut map = s.serialize_map(None)?;
                for (k, v) in m.iter().filter(|(k, _)| k.as_str() != skip) {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            (other, _) => other.serialize(s),
        }
    }
}

// ---------------------------------------------------------------------------
// terraform.tfstate

/// What a `terraform.tfstate` of a bundle deployment says.
#[derive(Debug, Clone)]
pub struct TfState {
    pub lineage: String,
    pub serial: u64,
    /// The resources of kinds lakebundle deploys, with their remote ids.
    pub resources: BTreeMap<ResourceAddr, String>,
    /// `<type>.<name>` of managed resources lakebundle does not deploy.
    pub other: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct TfFile {
    version: u32,
    #[serde(default)]
    serial: u64,
    #[serde(default)]
    lineage: String,
    #[serde(default)]
    resources: Vec<TfResource>,
}

#[derive(Debug, Deserialize)]
struct TfResource {
    #[serde(default)]
    mode: String,
    #[serde(rename = "type")]
    tf_type: String,
    name: String,
    #[serde(default)]
    instances: Vec<TfInstance>,
}

#[derive(Debug, Deserialize)]
struct TfInstance {
    #[serde(default)]
    attributes: Value,
}

/// Parse a terraform engine state: ids per kind (`attributes.id`, or
/// `attributes.name` for the kinds addressed by name, see
/// [`crate::resources::ResourceKind::terraform_id_attribute`]).
pub fn parse_terraform(text: &[u8], origin: &str) -> Result<TfState, StateError> {
    let file: TfFile =
        serde_json::from_slice(text).map_err(|e| parse_err(origin, e.to_string()))?;
    if file.version != 4 {
        return Err(parse_err(
            origin,
            format!(
                "unsupported terraform state version {} (the Databricks CLI writes 4)",
                file.version
            ),
        ));
    }
    let mut out = TfState {
        lineage: file.lineage,
        serial: file.serial,
        resources: BTreeMap::new(),
        other: Vec::new(),
    };
    for r in file.resources.into_iter().filter(|r| r.mode == "managed") {
        let kind = registry()
            .iter()
            .find(|k| k.terraform_type() == Some(r.tf_type.as_str()));
        let Some(kind) = kind else {
            if r.tf_type != "databricks_permissions" {
                out.other.push(format!("{}.{}", r.tf_type, r.name));
            }
            continue;
        };
        let attr = kind.terraform_id_attribute();
        let id = r
            .instances
            .first()
            .and_then(|i| i.attributes.get(attr))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                parse_err(
                    origin,
                    format!("{}.{} has no attributes.{attr}", r.tf_type, r.name),
                )
            })?;
        out.resources
            .insert(ResourceAddr::new(kind.kind(), r.name), id);
    }
    Ok(out)
}

impl TfState {
    /// The direct-engine state this terraform state becomes: the same
    /// lineage, one serial more (so it wins over the terraform state it
    /// came from), ids only (the next deploy reads the rest remotely).
    pub fn to_direct(&self) -> DeploymentState {
        let mut st = DeploymentState {
            lineage: self.lineage.clone(),
            serial: self.serial + 1,
            ..DeploymentState::new()
        };
        for (addr, id) in &self.resources {
            st.resources.insert(
                addr.clone(),
                ResourceState {
                    id: id.clone(),
                    applied: json!({}),
                    outputs: Value::Null,
                    depends_on: vec![],
                },
            );
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Kind;

    fn job(id: &str) -> ResourceState {
        ResourceState {
            id: id.into(),
            applied: json!({"name": "j", "permissions": [{"level": "CAN_VIEW", "user_name": "v@x.com"}]}),
            outputs: json!({"id": id, "job_id": 7}),
            depends_on: vec![ResourceAddr::new(Kind::DatabaseInstances, "db")],
        }
    }

    #[test]
    fn writes_the_cli_format_and_reads_it_back() {
        let mut st = DeploymentState::new();
        st.serial = 4;
        st.resources
            .insert(ResourceAddr::new(Kind::Jobs, "foo"), job("123"));
        st.pending.insert(ResourceAddr::new(Kind::Apps, "a"));
        st.foreign.insert(
            "resources.future_kind.p".into(),
            json!({"__id__": "abc", "state": {"name": "p"}}),
        );
        let bytes = serialize(&st);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\n \"state_version\": 2,\n \"cli_version\": \"0.0.0-lakebundle."),
            "{text}"
        );
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["state"]["resources.jobs.foo"]["__id__"], "123");
        assert_eq!(
            v["state"]["resources.jobs.foo"]["state"],
            json!({"name": "j"})
        );
        assert_eq!(
            v["state"]["resources.jobs.foo"]["depends_on"],
            json!([{"node": "resources.database_instances.db"}])
        );
        assert_eq!(
            v["state"]["resources.jobs.foo.permissions"],
            json!({"__id__": "/jobs/123", "state": {"object_id": "/jobs/123",
                "__embed__": [{"level": "CAN_VIEW", "user_name": "v@x.com"}]},
                "depends_on": [{"node": "resources.jobs.foo", "label": "${resources.jobs.foo.id}"}]})
        );
        assert_eq!(v["state"]["resources.future_kind.p"]["__id__"], "abc");
        assert_eq!(v["lakebundle"]["pending"], json!(["resources.apps.a"]));
        let back = parse(&bytes, "x").unwrap();
        assert_eq!(back.resources, st.resources);
        assert_eq!(back.pending, st.pending);
        assert_eq!(back.foreign, st.foreign);
        assert_eq!((back.serial, &back.lineage), (4, &st.lineage));
    }

    #[test]
    fn malformed_files_and_entries_are_errors_naming_them() {
        let err = parse(b"[1]", "f.json").unwrap_err().to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
        let bad_foreign = br#"{"state_version": 2, "lineage": "l", "serial": 1,
            "state": {"resources.future_kind.p": {"__id__": 5}}}"#;
        let err = parse(bad_foreign, "f.json").unwrap_err().to_string();
        assert!(err.contains("resources.future_kind.p"), "{err}");
        // A foreign entry not deployed (empty id) is dropped, like ours.
        let undeployed = br#"{"state_version": 2, "lineage": "l", "serial": 1,
            "state": {"resources.future_kind.p": {"__id__": ""}}}"#;
        assert!(parse(undeployed, "f.json").unwrap().foreign.is_empty());
    }

    #[test]
    fn reads_state_written_by_the_cli() {
        let text = br#"{"state_version": 2, "cli_version": "0.290.0", "lineage": "L", "serial": 3,
          "state": {
            "resources.jobs.foo": {"__id__": "11", "state": {"name": "foo"}},
            "resources.jobs.foo.permissions": {"__id__": "/jobs/11", "state": {"object_id": "/jobs/11",
               "__embed__": [{"level": "CAN_VIEW", "user_name": "v@x.com"}, {"level": "IS_OWNER", "user_name": "me@x.com"}]}},
            "resources.database_instances.db": {"__id__": "my-instance", "state": {"name": "my-instance"}},
            "resources.apps.gone": {"__id__": "", "state": {}}
          }}"#;
        let st = parse(text, "x").unwrap();
        assert_eq!(st.serial, 3);
        assert_eq!(st.lineage, "L");
        let foo = &st.resources[&ResourceAddr::new(Kind::Jobs, "foo")];
        assert_eq!(foo.id, "11");
        assert!(foo.outputs.is_null());
        // The CLI's own owner entry is not something the config manages.
        assert_eq!(
            foo.applied,
            json!({"name": "foo", "permissions": [{"level": "CAN_VIEW", "user_name": "v@x.com"}]})
        );
        assert_eq!(
            st.resources[&ResourceAddr::new(Kind::DatabaseInstances, "db")].id,
            "my-instance"
        );
        assert!(!st
            .resources
            .contains_key(&ResourceAddr::new(Kind::Apps, "gone")));
    }

    #[test]
    fn version_rules_follow_the_cli() {
        let v1 = br#"{"lineage": "L", "serial": 1, "state": {
            "resources.jobs.foo": {"__id__": "1", "state": {}},
            "resources.jobs.foo.permissions": {"__id__": "/jobs/1", "state": {"object_id": "/jobs/1",
                "permissions": [{"permission_level": "CAN_VIEW", "group_name": "g"}]}}}}"#;
        let st = parse(v1, "x").unwrap();
        assert_eq!(st.state_version, 2);
        assert_eq!(
            st.resources[&ResourceAddr::new(Kind::Jobs, "foo")].applied["permissions"],
            json!([{"level": "CAN_VIEW", "group_name": "g"}])
        );
        let v3 = br#"{"state_version": 3, "lineage": "L", "serial": 1, "state": {}}"#;
        assert_eq!(parse(v3, "x").unwrap().state_version, 3);
        let v3f = br#"{"state_version": 3, "features": {"x": true}, "lineage": "L", "serial": 1, "state": {}}"#;
        assert!(matches!(
            parse(v3f, "x"),
            Err(StateError::UnsupportedFeatures { .. })
        ));
        let v999 = br#"{"state_version": 999, "lineage": "L", "serial": 1, "state": {}}"#;
        assert!(matches!(
            parse(v999, "x"),
            Err(StateError::UnsupportedVersion { found: 999, .. })
        ));
    }

    #[test]
    fn lakebundles_earlier_format_is_upgraded() {
        let old = br#"{"format_version": 1, "lineage": "L", "serial": 9,
          "resources": {"resources.apps.a": {"id": "my-app", "applied": {"name": "my-app"},
             "outputs": {"url": "u"}, "depends_on": []}},
          "pending": ["resources.jobs.j"]}"#;
        let st = parse(old, "x").unwrap();
        assert_eq!((st.serial, st.lineage.as_str()), (9, "L"));
        let a = &st.resources[&ResourceAddr::new(Kind::Apps, "a")];
        assert_eq!(a.outputs, json!({"url": "u"}));
        assert!(st.pending.contains(&ResourceAddr::new(Kind::Jobs, "j")));
        // Written back in the CLI's format.
        let v: Value = serde_json::from_slice(&serialize(&st)).unwrap();
        assert_eq!(v["state_version"], 2);
        assert_eq!(v["state"]["resources.apps.a"]["__id__"], "my-app");
        let newer = br#"{"format_version": 99, "lineage": "x", "serial": 1, "resources": {}}"#;
        assert!(matches!(
            parse(newer, "x"),
            Err(StateError::UnsupportedVersion { found: 99, .. })
        ));
    }

    #[test]
    fn terraform_ids_come_from_id_or_name_per_kind() {
        let text = br#"{"version": 4, "terraform_version": "1.5.5", "serial": 6, "lineage": "TL",
          "resources": [
            {"mode": "managed", "type": "databricks_job", "name": "foo",
             "instances": [{"attributes": {"id": "123", "name": "foo"}}]},
            {"mode": "managed", "type": "databricks_database_instance", "name": "db",
             "instances": [{"attributes": {"id": "ignored-uid", "name": "my-instance"}}]},
            {"mode": "managed", "type": "databricks_app", "name": "app",
             "instances": [{"attributes": {"id": "x", "name": "my-app"}}]},
            {"mode": "managed", "type": "databricks_permissions", "name": "job_foo",
             "instances": [{"attributes": {"id": "/jobs/123"}}]},
            {"mode": "managed", "type": "databricks_notebook", "name": "p",
             "instances": [{"attributes": {"id": "pp"}}]},
            {"mode": "data", "type": "databricks_job", "name": "ignored", "instances": []}
          ]}"#;
        let tf = parse_terraform(text, "t").unwrap();
        assert_eq!((tf.serial, tf.lineage.as_str()), (6, "TL"));
        assert_eq!(tf.resources[&ResourceAddr::new(Kind::Jobs, "foo")], "123");
        assert_eq!(
            tf.resources[&ResourceAddr::new(Kind::DatabaseInstances, "db")],
            "my-instance"
        );
        assert_eq!(
            tf.resources[&ResourceAddr::new(Kind::Apps, "app")],
            "my-app"
        );
        assert_eq!(tf.other, vec!["databricks_notebook.p".to_string()]);
        let direct = tf.to_direct();
        assert_eq!((direct.serial, direct.lineage.as_str()), (7, "TL"));
        assert!(parse_terraform(br#"{"version": 3}"#, "t").is_err());
    }
}
