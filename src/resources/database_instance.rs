//! `database_instances`: Lakebase Provisioned instances
//! (`/api/2.0/database/instances`, reference §7).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::common::{
    self, collect_outputs, literal_str, schema_enum, schema_struct, state_at, without_keys,
    Lifecycle, Permission, Poll,
};
use super::{
    Created, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs, RunStyle,
    UpdateStyle, WorkspaceLimit, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::{Node, ScalarStyle, Span};
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// Compute size of an instance; each capacity unit is about 16 GB of RAM.
    Capacity { CU_1, CU_2, CU_4, CU_8 }
}

schema_struct! {
    /// A tag attached to the instance.
    #[schemars(extend("required" = ["key"]))]
    pub struct CustomTag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    }
}

schema_struct! {
    /// The parent an instance is cloned from (point-in-time recovery child).
    pub struct DatabaseInstanceRef {
        /// Name of the parent instance.
        name: String,
        /// Point in time (RFC 3339, UTC) to branch from; latest when neither this nor `lsn` is set.
        branch_time: String,
        /// Alias of `branch_time` (the spelling used in the Lakebase DAB docs); sent as `branch_time`.
        branch_timestamp: String,
        /// WAL log sequence number to branch from; wins over `branch_time` when both are set.
        lsn: String,
    }
}

schema_struct! {
    /// A Lakebase Provisioned database instance: dedicated PostgreSQL compute and storage.
    #[schemars(extend("required" = ["name"]))]
    pub struct DatabaseInstance {
        /// Unique instance name: 1-63 characters, starting with a letter; letters, digits and hyphens. Changing it replaces the instance.
        name: String,
        /// Compute capacity: CU_1, CU_2, CU_4 or CU_8 (server default CU_2).
        capacity: Capacity,
        /// Stop the compute (data is kept, compute is not billed). Write-only; compared with `effective_stopped`.
        stopped: bool,
        /// Point-in-time-recovery window in days (2-35, default 7). Write-only; compared with `effective_retention_window_in_days`.
        #[schemars(range(min = 2, max = 35))]
        retention_window_in_days: i64,
        /// Number of nodes: 1 primary plus 0-2 high-availability secondaries (1-3, default 1).
        #[schemars(range(min = 1, max = 3))]
        node_count: i64,
        /// Let secondaries serve read-only traffic on `read_only_dns` (default false).
        enable_readable_secondaries: bool,
        /// Allow PostgreSQL native password logins in addition to OAuth tokens (default false).
        enable_pg_native_login: bool,
        /// Usage policy to attribute the instance's cost to.
        usage_policy_id: String,
        /// Tags for the instance, as a list of `{key, value}` pairs (a `{key: value}` map is accepted and converted).
        #[schemars(schema_with = "custom_tags_schema")]
        custom_tags: Vec<CustomTag>,
        /// Create the instance as a copy-on-write clone of another instance. Changing it replaces the instance.
        parent_instance_ref: DatabaseInstanceRef,
        /// Delete the instance's data for good on destroy (lakebundle always purges; kept for compatibility).
        purge_on_delete: bool,
        /// Grants on the instance, applied through the Permissions API.
        permissions: Vec<Permission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.0/database/instances";

/// `custom_tags`: the canonical list of `{key, value}`, or the `{key: value}`
/// map the product docs show (so editors do not flag it; the loader converts it).
fn custom_tags_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let list = generator.subschema_for::<Vec<CustomTag>>();
    schemars::json_schema!({
        "anyOf": [
            list,
            {
                "type": "object",
                "description": "Map form (`key: value`), converted to the canonical list form.",
                "additionalProperties": {"type": "string"}
            }
        ]
    })
}

/// Rewrite a map-valued `custom_tags` of the instance `node` into the list
/// form the API takes, warning at the map that the list form is canonical.
/// Other shapes are left for the schema check to report.
pub fn normalize_custom_tags(addr: &str, node: &mut Node, diags: &mut Diagnostics) {
    use crate::config::source::{Key, NodeKind};
    let Some(tags) = node.as_map_mut().and_then(|m| m.get_mut("custom_tags")) else {
        return;
    };
    let NodeKind::Map(map) = &mut tags.kind else {
        return;
    };
    let entries = std::mem::take(&mut map.entries);
    let pair = |name: &str, span, value: Node| {
        (
            Key {
                name: name.to_string(),
                span,
            },
            value,
        )
    };
    let items = entries
        .into_iter()
        .map(|(key, value)| {
            let key_node = Node::new(
                NodeKind::String(key.name.clone(), ScalarStyle::Plain),
                key.span,
            );
            let span = Span::new(
                key.span.file,
                key.span.start,
                value.span.end.max(key.span.end),
            );
            let item = crate::config::source::Map {
                entries: vec![
                    pair("key", key.span, key_node),
                    pair("value", value.span, value),
                ],
            };
            Node::new(NodeKind::Map(item), span)
        })
        .collect();
    tags.kind = NodeKind::Seq(items);
    diags.push(
        Diag::warning(format!(
            "{addr}.custom_tags is a map; the list of `{{key, value}}` pairs is the canonical form"
        ))
        .at(tags.span, "map form, converted to a list")
        .help("write `custom_tags:` as `- key: team` / `  value: data` entries, as the API and the official schema do"),
    );
}

/// Fields lakebundle keeps to itself.
const BUNDLE_ONLY: &[&str] = &["permissions", "lifecycle", "purge_on_delete"];

/// Input-only fields and the `effective_*` field GET returns instead (§7.2).
const INPUT_ONLY: &[(&str, &str)] = &[
    ("stopped", "effective_stopped"),
    ("node_count", "effective_node_count"),
    (
        "retention_window_in_days",
        "effective_retention_window_in_days",
    ),
    (
        "enable_readable_secondaries",
        "effective_enable_readable_secondaries",
    ),
    ("enable_pg_native_login", "effective_enable_pg_native_login"),
    ("custom_tags", "effective_custom_tags"),
    ("usage_policy_id", "effective_usage_policy_id"),
];

const OUTPUT_ONLY: &[&str] = &[
    "uid",
    "state",
    "creator",
    "creation_time",
    "pg_version",
    "read_write_dns",
    "read_only_dns",
    "child_instance_refs",
    "effective_capacity",
    "effective_stopped",
    "effective_node_count",
    "effective_retention_window_in_days",
    "effective_enable_readable_secondaries",
    "effective_enable_pg_native_login",
    "effective_usage_policy_id",
    "effective_custom_tags",
];

/// Fields an update mask may name (everything sent except the identity).
const UPDATABLE: &[&str] = &[
    "capacity",
    "stopped",
    "retention_window_in_days",
    "node_count",
    "enable_readable_secondaries",
    "enable_pg_native_login",
    "usage_policy_id",
    "custom_tags",
];

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "uid",
    "state",
    "creator",
    "creation_time",
    "pg_version",
    "read_write_dns",
    "read_only_dns",
    "effective_capacity",
    "effective_stopped",
    "effective_node_count",
    "effective_retention_window_in_days",
    "effective_enable_readable_secondaries",
    "effective_enable_pg_native_login",
    "effective_usage_policy_id",
    "effective_custom_tags",
];

static RULES: FieldRules = FieldRules {
    immutable: &["name", "parent_instance_ref"],
    replace_on_any_change: false,
    input_only: INPUT_ONLY,
    output_only: OUTPUT_ONLY,
    bundle_only: BUNDLE_ONLY,
};

/// Most instances a workspace holds (the loader warns above this per target).
pub const MAX_INSTANCES: usize = 10;

/// Instance name rule: 1-63 characters, a letter first, then letters, digits, hyphens.
pub fn instance_name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("must not be empty"),
        _ if name.chars().count() > 63 => Some("must be at most 63 characters"),
        Some(c) if !c.is_ascii_alphabetic() => Some("must start with a letter"),
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            Some("may contain only letters, digits and hyphens")
        }
        _ => None,
    }
}

/// Create/update body: the config without bundle-only fields, with the
/// `branch_timestamp` alias sent as `branch_time`.
pub fn api_body(config: &Value) -> Value {
    let mut body = without_keys(config, BUNDLE_ONLY);
    if let Some(Value::Object(parent)) = body.get_mut("parent_instance_ref") {
        if let Some(ts) = parent.remove("branch_timestamp") {
            parent.entry("branch_time").or_insert(ts);
        }
    }
    body
}

pub struct DatabaseInstanceKind;

fn path_for(name: &str) -> String {
    format!("{BASE}/{name}")
}

static INFO: KindInfo = KindInfo {
    noun: "database instance",
    plural: "database instances",
    title: "Database instances",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    state_fields: &["state"],
    // A stopped instance is as ready as it will get.
    ready_states: &["AVAILABLE", "STOPPED"],
    wait_text: "database instance to become AVAILABLE",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: true,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: true,
    workspace_limit: Some(WorkspaceLimit {
        max: 10,
        help: "split the instances across workspaces or share instances between catalogs",
    }),
    ui_path: "/compute/database-instances/{id}",
};

#[async_trait]
impl ResourceKind for DatabaseInstanceKind {
    fn kind(&self) -> Kind {
        Kind::DatabaseInstances
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn normalize(&self, addr: &str, node: &mut Node, diags: &mut Diagnostics) {
        normalize_custom_tags(addr, node, diags);
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<DatabaseInstance>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<DatabaseInstance>(self.kind(), key, node, diags);
        if let Some(name_node) = node.get("name") {
            if let Some(name) = name_node.as_str().filter(|s| !common::has_interpolation(s)) {
                if let Some(problem) = instance_name_problem(name) {
                    diags.push(
                        Diag::error(format!("{addr}.name `{name}` is not a valid instance name: it {problem}"))
                            .at(name_node.span, problem)
                            .help("instance names are 1-63 characters, start with a letter, and use only letters, digits and hyphens"),
                    );
                }
            }
        }
        common::check_permissions(&addr, node, diags);
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let parent = config
            .get("parent_instance_ref")
            .map(|p| literal_str(p, "name"));
        match parent {
            Some(Some(name)) => vec![NameLink {
                field: "parent_instance_ref.name".into(),
                target_kind: Kind::DatabaseInstances,
                name: name.to_string(),
            }],
            _ => vec![],
        }
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        common::create_by_name(client, BASE, config, &api_body(config)).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        common::get_if_exists(client, &path_for(id)).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let mask = common::update_mask(changed, UPDATABLE);
        if mask.is_empty() {
            return Ok(id.to_string());
        }
        let mut body = api_body(config);
        if let Value::Object(b) = &mut body {
            b.insert("name".into(), Value::String(id.to_string()));
        }
        client
            .call(
                Method::PATCH,
                &path_for(id),
                &[("update_mask", mask.join(","))],
                Some(&body),
            )
            .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &path_for(id), &[("purge", "true".into())]).await
    }
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = path_for(id);
        common::poll_get(client, &path, timeout, |remote| {
            match state_at(&remote, "state") {
                s if INFO.ready_states.contains(&s) => Poll::Ready(remote),
                "DELETING" => Poll::Failed(format!("instance {id} is being deleted")),
                // Terminal: waiting longer cannot make it AVAILABLE.
                "FAILED" => Poll::Failed(format!("instance {id} FAILED")),
                other => Poll::Pending(if other.is_empty() {
                    "without a state".into()
                } else {
                    other.to_string()
                }),
            }
        })
        .await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        common::find_by_name(self, client, config).await
    }
    /// YAML shape of a remote instance: input fields as returned, each
    /// write-only field filled from its `effective_*` twin; outputs dropped.
    fn remote_to_config(&self, remote: &Value) -> Value {
        let mut out = common::only_keys(remote, &["name", "capacity"]);
        for (field, twin) in INPUT_ONLY {
            if let Some(v) = remote.get(*twin).or_else(|| remote.get(*field)) {
                out.insert((*field).to_string(), v.clone());
            }
        }
        if let Some(Value::Object(parent)) = remote.get("parent_instance_ref") {
            let keep: Map<String, Value> = parent
                .iter()
                .filter(|(k, _)| matches!(k.as_str(), "name" | "branch_time" | "lsn"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.insert("parent_instance_ref".into(), Value::Object(keep));
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_database_instance")
    }
    fn permissions_object_type(&self) -> Option<&'static str> {
        Some("database-instances")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_tags_map_becomes_list_with_warning() {
        use crate::config::source::{parse_file, FileId};
        let yaml = "name: db\ncustom_tags:\n  team: data\n  cost: 7\n";
        let (mut node, d) = parse_file(FileId(0), yaml);
        assert!(d.items.is_empty(), "{:?}", d.items);
        let mut diags = Diagnostics::default();
        normalize_custom_tags("resources.database_instances.a", &mut node, &mut diags);
        assert_eq!(
            node.get("custom_tags").map(Node::to_json),
            Some(json!([{"key": "team", "value": "data"}, {"key": "cost", "value": 7}]))
        );
        assert_eq!(diags.items.len(), 1, "{:?}", diags.items);
        let w = &diags.items[0];
        assert_eq!(w.severity, crate::diag::Severity::Warning);
        assert!(w.message.contains("canonical"), "{}", w.message);
        let span = w.span.expect("warning has a span");
        assert_eq!(&yaml[span.start..span.end], "team: data\n  cost: 7");
        // The converted form passes the schema check (7 is accepted as a string).
        let mut checked = Diagnostics::default();
        DatabaseInstanceKind.check("a", &node, &mut checked);
        assert!(checked.items.is_empty(), "{:?}", checked.items);
        // The map form itself is accepted by the schema too.
        let (raw, _) = parse_file(FileId(0), yaml);
        let mut raw_diags = Diagnostics::default();
        DatabaseInstanceKind.check("a", &raw, &mut raw_diags);
        assert!(raw_diags.items.is_empty(), "{:?}", raw_diags.items);
    }

    #[test]
    fn custom_tags_list_is_untouched() {
        use crate::config::source::{parse_file, FileId};
        let yaml = "name: db\ncustom_tags:\n  - key: team\n    value: data\n";
        let (mut node, _) = parse_file(FileId(0), yaml);
        let before = node.clone();
        let mut diags = Diagnostics::default();
        normalize_custom_tags("resources.database_instances.a", &mut node, &mut diags);
        assert_eq!(node, before);
        assert!(diags.items.is_empty());
    }

    #[test]
    fn name_rule() {
        assert_eq!(instance_name_problem("my-instance-1"), None);
        assert_eq!(instance_name_problem(""), Some("must not be empty"));
        assert_eq!(
            instance_name_problem("1abc"),
            Some("must start with a letter")
        );
        assert_eq!(
            instance_name_problem("my_instance"),
            Some("may contain only letters, digits and hyphens")
        );
        assert_eq!(
            instance_name_problem(&"a".repeat(64)),
            Some("must be at most 63 characters")
        );
        assert_eq!(instance_name_problem(&"a".repeat(63)), None);
    }

    #[test]
    fn body_drops_bundle_fields_and_maps_alias() {
        let cfg = json!({
            "name": "db", "capacity": "CU_1", "purge_on_delete": true,
            "permissions": [{"level": "CAN_USE", "group_name": "users"}],
            "lifecycle": {"prevent_destroy": true},
            "parent_instance_ref": {"name": "p", "branch_timestamp": "2026-01-15T10:00:00Z"}
        });
        assert_eq!(
            api_body(&cfg),
            json!({"name": "db", "capacity": "CU_1", "parent_instance_ref": {"name": "p", "branch_time": "2026-01-15T10:00:00Z"}})
        );
    }

    #[test]
    fn remote_maps_effective_twins() {
        let remote = json!({
            "name": "db", "capacity": "CU_1", "effective_capacity": "CU_1", "state": "AVAILABLE", "uid": "u1",
            "effective_node_count": 1, "effective_stopped": false, "effective_retention_window_in_days": 7,
            "read_write_dns": "h"
        });
        assert_eq!(
            DatabaseInstanceKind.remote_to_config(&remote),
            json!({"name": "db", "capacity": "CU_1", "stopped": false, "node_count": 1, "retention_window_in_days": 7})
        );
        let outs = DatabaseInstanceKind.outputs("db", &remote);
        assert_eq!(outs["read_write_dns"], "h");
        assert_eq!(outs["uid"], "u1");
        assert_eq!(outs["id"], "db");
    }

    #[test]
    fn parent_ref_is_a_name_link() {
        let links = DatabaseInstanceKind
            .name_links(&json!({"name": "c", "parent_instance_ref": {"name": "p"}}));
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].name, "p");
        assert!(DatabaseInstanceKind
            .name_links(&json!({"parent_instance_ref": {"name": "${var.p}"}}))
            .is_empty());
    }

    #[test]
    fn typed_struct_deserializes_seed_fields() {
        let cfg: DatabaseInstance = serde_json::from_value(json!({
            "name": "my-instance", "capacity": "CU_1", "retention_window_in_days": 14, "node_count": 2,
            "custom_tags": [{"key": "a", "value": "b"}], "lifecycle": {"deny_user_destroy": true}
        }))
        .unwrap();
        assert_eq!(cfg.capacity, Some(Capacity::CU_1));
        assert!(serde_json::from_value::<DatabaseInstance>(
            json!({"name": "x", "capcity": "CU_1"})
        )
        .is_err());
    }
}
