//! Shared pieces of the resource kinds: the struct/enum macros that keep the
//! typed config structs uniform, the `${...}` schema transform, lifecycle and
//! permissions blocks, JSON body helpers and the readiness poller.

use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Created, Kind, ResourceKind};
use crate::api::{ApiError, Client, Method};
use crate::config::source::{Node, NodeKind};
use crate::diag::{Diag, Diagnostics};

/// Declares a bundle config struct: every field optional (`Option<T>`), unknown
/// fields rejected (`additionalProperties: false` in the schema), doc comments
/// become schema descriptions. Required fields are declared on the struct with
/// `#[schemars(extend("required" = [...]))]` so the editor schema and the
/// checker both see them, while deserialization stays lenient.
macro_rules! schema_struct {
    (
        $(#[$sm:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        $(#[$sm])*
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }
    };
}
pub(crate) use schema_struct;

/// Declares a string enum whose variant names are the wire values.
macro_rules! schema_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident),* $(,)? }) => {
        $(#[$m])*
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub enum $name { $($v),* }
        impl $name {
            /// Every accepted value, in declaration order.
            pub const VALUES: &'static [&'static str] = &[$(stringify!($v)),*];
        }
    };
}
pub(crate) use schema_enum;

/// `$defs` name of the `${...}` string schema.
pub const INTERPOLATION_DEF: &str = "interpolation";

/// Anchored, ECMA-compatible pattern for a value that is one `${...}`
/// reference (nesting allowed: `${var.${bundle.target}_count}`).
pub const INTERPOLATION_PATTERN: &str = r"^\$\{[A-Za-z0-9_.\[\]${}-]+\}$";

/// The schema of a `${...}` string, stored once under `$defs`.
pub fn interpolation_schema() -> Value {
    serde_json::json!({
        "type": "string",
        "description": "A `${...}` reference (variable, bundle, workspace or resource field) resolved by lakebundle.",
        "pattern": INTERPOLATION_PATTERN,
    })
}

/// True when `s` contains a `${...}` reference that is still unresolved (not
/// the `$${` escape). Such values are accepted wherever a scalar is.
pub fn has_interpolation(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            let escaped = i > 0 && bytes[i - 1] == b'$';
            if !escaped && s[i + 2..].contains('}') {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// True when a node is a string still holding a `${...}` reference.
pub fn node_is_interpolated(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::String(s, _) if has_interpolation(s))
}

/// True when a JSON value is a string still holding a `${...}` reference.
pub fn value_is_interpolated(value: &Value) -> bool {
    value.as_str().is_some_and(has_interpolation)
}

/// Schema transform: every non-string value position (properties, items,
/// map values) also accepts a `${...}` string, as the bundle loader resolves
/// those. Also removes `null` from `Option` fields and integer `format`s,
/// which the YAML never needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowInterpolation;

impl schemars::transform::Transform for AllowInterpolation {
    fn transform(&mut self, schema: &mut schemars::Schema) {
        if let Some(obj) = schema.as_object_mut() {
            if let Some(Value::Object(props)) = obj.get_mut("properties") {
                for prop in props.values_mut() {
                    allow_interpolation_at(prop);
                }
            }
            for key in ["items", "additionalProperties"] {
                if let Some(sub) = obj.get_mut(key) {
                    allow_interpolation_at(sub);
                }
            }
        }
        schemars::transform::transform_subschemas(self, schema);
    }
}

/// Rewrites one value-position schema in place (see [`AllowInterpolation`]).
fn allow_interpolation_at(schema: &mut Value) {
    let Value::Object(obj) = schema else { return };
    strip_null(obj);
    obj.remove("format");
    let is_plain_string = obj.get("type").and_then(Value::as_str) == Some("string")
        && !obj.contains_key("enum")
        && !obj.contains_key("pattern");
    let is_any = obj.keys().all(|k| ANNOTATION_KEYS.contains(&k.as_str()));
    let already = obj
        .get("anyOf")
        .and_then(Value::as_array)
        .is_some_and(|alts| {
            alts.iter()
                .any(|a| a.get("$ref").and_then(Value::as_str) == Some(&interpolation_ref()))
        });
    if is_plain_string || is_any || already {
        return;
    }
    let mut inner = Map::new();
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        if !ANNOTATION_KEYS.contains(&k.as_str()) {
            if let Some(v) = obj.remove(&k) {
                inner.insert(k, v);
            }
        }
    }
    obj.insert(
        "anyOf".into(),
        Value::Array(vec![
            Value::Object(inner),
            serde_json::json!({ "$ref": interpolation_ref() }),
        ]),
    );
}

/// Keys that describe a schema without constraining it.
const ANNOTATION_KEYS: &[&str] = &[
    "description",
    "title",
    "default",
    "deprecated",
    "examples",
    "markdownDescription",
];

fn interpolation_ref() -> String {
    format!("#/$defs/{INTERPOLATION_DEF}")
}

/// `type: [T, "null"]` → `type: T`; `anyOf: [X, {type: null}]` → X.
fn strip_null(obj: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let t = types.remove(0);
            obj.insert("type".into(), t);
        }
    }
    let collapse = match obj.get_mut("anyOf") {
        Some(Value::Array(alts)) => {
            alts.retain(|a| a.get("type").and_then(Value::as_str) != Some("null"));
            if alts.len() == 1 {
                alts.pop()
            } else {
                None
            }
        }
        _ => None,
    };
    if let Some(Value::Object(only)) = collapse {
        obj.remove("anyOf");
        for (k, v) in only {
            obj.entry(k).or_insert(v);
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

schema_struct! {
    /// Deployment lifecycle settings handled by lakebundle itself (never sent to the API).
    pub struct Lifecycle {
        /// Refuse to destroy (or replace) this resource; `deploy` and `destroy` stop with an error instead.
        prevent_destroy: bool,
        /// Alias of `prevent_destroy` (the spelling used in the Lakebase DAB field reference).
        deny_user_destroy: bool,
    }
}

schema_struct! {
    /// Deployment lifecycle settings for apps.
    pub struct LifecycleWithStarted {
        /// Refuse to destroy (or replace) this app; `deploy` and `destroy` stop with an error instead.
        prevent_destroy: bool,
        /// Alias of `prevent_destroy` (the spelling used in the Lakebase DAB field reference).
        deny_user_destroy: bool,
        /// Keep the app's compute running: deploy starts it and deploys the source code. When false or
        /// unset the app is created without compute (`no_compute=true`).
        started: bool,
    }
}

/// The `lifecycle` settings that forbid destroying a resource, in the order
/// they are reported (both spellings mean the same).
pub const DESTROY_PROTECTION: [&str; 2] = ["prevent_destroy", "deny_user_destroy"];

/// Which `lifecycle` setting of a config forbids destroying it, if any.
pub fn destroy_protection(config: &Value) -> Option<&'static str> {
    let lc = config.get("lifecycle")?;
    DESTROY_PROTECTION
        .into_iter()
        .find(|k| lc.get(*k).and_then(Value::as_bool) == Some(true))
}

/// Declares a permission entry type for one level enum.
macro_rules! permission_struct {
    ($(#[$m:meta])* $name:ident, $level:ty) => {
        schema_struct! {
            $(#[$m])*
            #[schemars(extend("required" = ["level"]))]
            pub struct $name {
                /// The permission level to grant.
                level: $level,
                /// The user (email) receiving the level. Set exactly one of `user_name`, `group_name`, `service_principal_name`.
                user_name: String,
                /// The workspace group receiving the level.
                group_name: String,
                /// The service principal (application id) receiving the level.
                service_principal_name: String,
            }
        }
    };
}

schema_enum! {
    /// Permission levels of jobs.
    JobPermissionLevel { CAN_MANAGE, IS_OWNER, CAN_MANAGE_RUN, CAN_VIEW }
}
schema_enum! {
    /// Permission levels of apps.
    AppPermissionLevel { CAN_MANAGE, CAN_USE }
}
schema_enum! {
    /// Permission levels of database instances (the generic workspace level set; `CAN_USE` and
    /// `CAN_MANAGE` are the ones that apply in practice).
    PermissionLevel {
        CAN_MANAGE, CAN_RESTART, CAN_ATTACH_TO, IS_OWNER, CAN_MANAGE_RUN, CAN_VIEW, CAN_READ, CAN_RUN,
        CAN_EDIT, CAN_USE, CAN_MANAGE_STAGING_VERSIONS, CAN_MANAGE_PRODUCTION_VERSIONS, CAN_EDIT_METADATA,
        CAN_VIEW_METADATA, CAN_BIND, CAN_QUERY, CAN_MONITOR, CAN_CREATE, CAN_MONITOR_ONLY, CAN_CREATE_APP,
    }
}

permission_struct! {
    /// One grant on a job (applied through the Permissions API, not the job body).
    JobPermission, JobPermissionLevel
}
permission_struct! {
    /// One grant on an app (applied through the Permissions API).
    AppPermission, AppPermissionLevel
}
permission_struct! {
    /// One grant on a resource (applied through the Permissions API).
    Permission, PermissionLevel
}

/// Principal fields of a permission entry (the one list: checks, defaults
/// and the permissions diff all read it).
pub const PRINCIPALS: [&str; 3] = ["user_name", "group_name", "service_principal_name"];

/// Each `permissions` entry names exactly one principal.
pub fn check_permissions(addr: &str, node: &Node, diags: &mut Diagnostics) {
    let Some(entries) = node.get("permissions").and_then(Node::as_seq) else {
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        let Some(map) = entry.as_map() else { continue };
        let set: Vec<&str> = PRINCIPALS
            .iter()
            .copied()
            .filter(|p| map.get(p).is_some())
            .collect();
        if set.len() == 1 {
            continue;
        }
        let msg = if set.is_empty() {
            format!("{addr}.permissions[{i}] names no principal")
        } else {
            format!(
                "{addr}.permissions[{i}] names more than one principal ({})",
                set.join(", ")
            )
        };
        diags.push(
            Diag::error(msg)
                .at(entry.span, "this permission entry")
                .help("set exactly one of `user_name`, `group_name` or `service_principal_name`"),
        );
    }
}

/// Permissions API body for a config's `permissions` list (YAML `level` →
/// API `permission_level`). None when the config has no permissions.
pub fn permissions_body(config: &Value) -> Option<Value> {
    let entries = config.get("permissions")?.as_array()?;
    let acl: Vec<Value> = entries
        .iter()
        .filter_map(Value::as_object)
        .map(|e| {
            let mut out = Map::new();
            for p in PRINCIPALS {
                if let Some(v) = e.get(p) {
                    out.insert(p.into(), v.clone());
                }
            }
            if let Some(level) = e.get("level") {
                out.insert("permission_level".into(), level.clone());
            }
            Value::Object(out)
        })
        .collect();
    Some(serde_json::json!({ "access_control_list": acl }))
}

/// A copy of `config` without the given top-level keys (bundle-only fields).
pub fn without_keys(config: &Value, keys: &[&str]) -> Value {
    match config {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A copy of `remote` keeping only the given top-level keys.
pub fn only_keys(remote: &Value, keys: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    if let Value::Object(map) = remote {
        for k in keys {
            if let Some(v) = map.get(*k) {
                out.insert((*k).to_string(), v.clone());
            }
        }
    }
    out
}

/// The plain-string value of a top-level field (None when absent, not a
/// string, or still holding a `${...}` reference).
pub fn literal_str<'a>(config: &'a Value, field: &str) -> Option<&'a str> {
    config
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !has_interpolation(s))
}

/// Value at a field path (`data_synchronization_status.pipeline_id`): the
/// plan's field-path grammar.
pub use crate::plan::diff::get_path;

/// Outputs object: `id`, then each listed output field found in `remote`
/// (dotted paths are nested back into objects).
pub fn collect_outputs(id: &str, remote: &Value, fields: &[&str]) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.to_string()));
    for field in fields.iter().filter(|f| **f != "id") {
        let Some(v) = get_path(remote, field) else {
            continue;
        };
        let mut cursor = &mut out;
        let mut segs = field.split('.').peekable();
        while let Some(seg) = segs.next() {
            if segs.peek().is_none() {
                cursor.insert(seg.to_string(), v.clone());
            } else {
                let slot = cursor
                    .entry(seg.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(next) = slot else { break };
                cursor = next;
            }
        }
    }
    Value::Object(out)
}

/// The top-level fields `changed` that the API accepts in an update mask,
/// in a stable order.
pub fn update_mask(changed: &[String], updatable: &[&str]) -> Vec<String> {
    updatable
        .iter()
        .filter(|f| changed.iter().any(|c| c == *f))
        .map(|f| f.to_string())
        .collect()
}

pub use crate::api::none_if_missing;

/// Treat "already gone" as success for deletes.
pub fn ok_if_missing(result: Result<Value, ApiError>) -> Result<(), ApiError> {
    none_if_missing(result).map(|_| ())
}

/// An error for a resource that did not become ready in time (or failed).
pub fn not_ready(path: &str, message: String) -> ApiError {
    ApiError::Other {
        method: "GET".into(),
        path: path.to_string(),
        status: 0,
        error_code: "NOT_READY".into(),
        message,
    }
}

/// What one readiness poll found.
pub enum Poll {
    Ready(Value),
    Pending(String),
    Failed(String),
}

/// Poll `probe` with backoff (0.1 s doubling to 10 s) until it is ready,
/// failed, or `timeout` passes.
pub async fn poll_until<F, Fut>(
    path: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<Value, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll, ApiError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(100);
    loop {
        match probe().await? {
            Poll::Ready(v) => return Ok(v),
            Poll::Failed(why) => return Err(not_ready(path, why)),
            Poll::Pending(state) => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(not_ready(
                        path,
                        format!("still {state} after {}s", timeout.as_secs()),
                    ));
                }
                tokio::time::sleep(delay.min(deadline - now)).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The string at `path` in a remote object, or `""`.
pub fn state_at<'a>(remote: &'a Value, path: &str) -> &'a str {
    get_path(remote, path).and_then(Value::as_str).unwrap_or("")
}

/// Schema-checks a resource node against its config type and returns the
/// node's address (`resources.<kind>.<key>`) for the kind's own checks.
pub fn check_schema<T: schemars::JsonSchema>(
    kind: Kind,
    key: &str,
    node: &Node,
    diags: &mut Diagnostics,
) -> String {
    let addr = format!("resources.{kind}.{key}");
    super::check::check_def(T::schema_name().as_ref(), &addr, node, diags);
    addr
}

/// `GET path`; `None` when the object does not exist.
pub async fn get_if_exists(client: &Client, path: &str) -> Result<Option<Value>, ApiError> {
    none_if_missing(client.call(Method::GET, path, &[], None).await)
}

/// `DELETE path`; an object already gone counts as deleted.
pub async fn delete_if_exists(
    client: &Client,
    path: &str,
    query: &[(&str, String)],
) -> Result<(), ApiError> {
    ok_if_missing(client.call(Method::DELETE, path, query, None).await)
}

/// A created object of a kind identified by name: the `name` the service
/// returned, else the config's literal `name`.
pub fn created_by_name(config: &Value, remote: Value) -> Created {
    let id = remote
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| literal_str(config, "name"))
        .unwrap_or_default()
        .to_string();
    Created { id, remote }
}

/// `create` for kinds identified by name: POST `body` to the collection and
/// take the id from the created object.
pub async fn create_by_name(
    client: &Client,
    collection: &str,
    config: &Value,
    body: &Value,
) -> Result<Created, ApiError> {
    let remote = client
        .call(Method::POST, collection, &[], Some(body))
        .await?;
    Ok(created_by_name(config, remote))
}

/// `find_existing` for kinds identified by name: read the config's literal
/// `name` (nothing to find while it is still a `${...}` reference).
pub async fn find_by_name<K: ResourceKind + ?Sized>(
    kind: &K,
    client: &Client,
    config: &Value,
) -> Result<Option<Created>, ApiError> {
    let Some(name) = literal_str(config, "name") else {
        return Ok(None);
    };
    Ok(kind.read(client, name).await?.map(|remote| Created {
        id: name.to_string(),
        remote,
    }))
}

/// [`poll_until`] over `GET path`, `classify` judging each response.
pub async fn poll_get<F>(
    client: &Client,
    path: &str,
    timeout: Duration,
    classify: F,
) -> Result<Value, ApiError>
where
    F: Fn(Value) -> Poll,
{
    poll_until(path, timeout, || async {
        let remote = client.call(Method::GET, path, &[], None).await?;
        Ok(classify(remote))
    })
    .await
}

/// `v` without nulls, empty strings, empty lists and empty objects (at any
/// depth), for configuration written from a remote object.
pub fn prune_empty(v: &Value) -> Value {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
            _ => false,
        }
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, c)| (k.clone(), prune_empty(c)))
                .filter(|(_, c)| !empty(c))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(prune_empty).filter(|c| !empty(c)).collect()),
        other => other.clone(),
    }
}

/// The last segment of a workspace path.
pub fn base_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// Bundle fields the engine itself interprets; never sent to a resource API
/// and never diffed as fields (permissions are diffed on their own). Most
/// kinds' `bundle_only` rules are exactly these.
pub const ENGINE_FIELDS: &[&str] = &["permissions", "lifecycle"];

/// What a plan and the state hold for a sensitive value: a marker and a digest of the value
/// (so a change still shows), never the value.
const SENSITIVE_MARK: &str = "(sensitive)";

/// `config` with each of `fields` replaced by [`SENSITIVE_MARK`] and a digest of its value.
/// Idempotent: an already redacted value is kept. A still-deferred `${...}` value is kept as
/// written (it holds no secret yet).
pub fn redact_sensitive(fields: &[&str], config: Value) -> Value {
    use sha2::{Digest, Sha256};
    let mut out = config;
    let Value::Object(m) = &mut out else {
        return out;
    };
    for f in fields {
        let Some(v) = m.get(*f) else { continue };
        let text = match v {
            Value::String(s) if s.starts_with(SENSITIVE_MARK) || has_interpolation(s) => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // Domain-separated so the digest is of no use elsewhere; 16 bytes are plenty to see
        // a change.
        let digest = Sha256::new()
            .chain_update(b"lakebundle sensitive value\0")
            .chain_update(text.as_bytes())
            .finalize();
        m.insert(
            (*f).to_string(),
            Value::String(format!(
                "{SENSITIVE_MARK} sha256:{}",
                hex::encode(&digest[..16])
            )),
        );
    }
    out
}

/// For `generate`: the workspace notebooks and files that each element of
/// the list `list` of `config` names at `fields` (JSON pointers below the
/// element; absolute workspace paths only, others are left as they are),
/// downloaded into the source directory under their base names (a notebook
/// with its language's extension), and the config pointed at the local
/// copies (`source_from_yaml`: the source directory seen from the YAML file).
pub async fn download_workspace_sources(
    client: &Client,
    config: &mut Value,
    list: &str,
    fields: &[&str],
    source_from_yaml: &str,
) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let count = config
        .get(list)
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let pointers: Vec<String> = (0..count)
        .flat_map(|i| fields.iter().map(move |f| format!("/{list}/{i}/{f}")))
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for pointer in pointers {
        let Some(path) = config
            .pointer(&pointer)
            .and_then(Value::as_str)
            .filter(|p| p.starts_with('/'))
            .map(str::to_string)
        else {
            continue;
        };
        let info = client.workspace().get_status(&path).await?;
        let notebook = info.object_type.as_deref() == Some("NOTEBOOK");
        let mut name = base_name(&path).to_string();
        if notebook {
            let ext = match info.language.as_deref() {
                Some("SQL") => "sql",
                Some("SCALA") => "scala",
                Some("R") => "r",
                _ => "py",
            };
            name = format!("{name}.{ext}");
        }
        if !files.iter().any(|(n, _)| n == &name) {
            let bytes = client.workspace().export(&path).await?;
            files.push((name.clone(), bytes));
        }
        if let Some(slot) = config.pointer_mut(&pointer) {
            *slot = Value::String(format!("{source_from_yaml}/{name}"));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_detection() {
        assert!(has_interpolation("${var.x}"));
        assert!(has_interpolation("a-${bundle.target}-b"));
        assert!(!has_interpolation("$${var.x}"));
        assert!(!has_interpolation("plain"));
        assert!(!has_interpolation("${unterminated"));
    }

    #[test]
    fn interpolation_pattern_is_anchored_and_matches() {
        let re = regex::Regex::new(INTERPOLATION_PATTERN).unwrap();
        assert!(re.is_match("${var.count}"));
        assert!(re.is_match("${resources.jobs.a.tasks[0].task_key}"));
        assert!(re.is_match("${var.${bundle.target}_count}"));
        assert!(!re.is_match("3"));
        assert!(!re.is_match("x${var.a}"));
    }

    #[test]
    fn transform_wraps_integers_and_keeps_strings() {
        let mut schema = schemars::json_schema!({
            "type": "object",
            "properties": {
                "n": {"type": ["integer", "null"], "format": "int64", "description": "d", "minimum": 1},
                "s": {"type": ["string", "null"], "description": "s"}
            }
        });
        schemars::transform::Transform::transform(&mut AllowInterpolation, &mut schema);
        let v = schema.as_value();
        assert_eq!(
            v["properties"]["s"],
            serde_json::json!({"type": "string", "description": "s"})
        );
        let n = &v["properties"]["n"];
        assert_eq!(n["description"], "d");
        assert_eq!(
            n["anyOf"][0],
            serde_json::json!({"type": "integer", "minimum": 1})
        );
        assert_eq!(n["anyOf"][1]["$ref"], "#/$defs/interpolation");
    }

    #[test]
    fn permissions_body_maps_level() {
        let cfg = serde_json::json!({"permissions": [{"level": "CAN_USE", "group_name": "users"}]});
        assert_eq!(
            permissions_body(&cfg).unwrap(),
            serde_json::json!({"access_control_list": [{"group_name": "users", "permission_level": "CAN_USE"}]})
        );
    }

    #[test]
    fn outputs_nest_dotted_paths() {
        let remote = serde_json::json!({"data_synchronization_status": {"pipeline_id": "p1", "message": "m"}, "x": 1});
        let out = collect_outputs(
            "a.b.c",
            &remote,
            &["id", "data_synchronization_status.pipeline_id"],
        );
        assert_eq!(
            out,
            serde_json::json!({"id": "a.b.c", "data_synchronization_status": {"pipeline_id": "p1"}})
        );
    }

    #[test]
    fn destroy_protection_reads_both_spellings() {
        use serde_json::json;
        assert_eq!(
            destroy_protection(&json!({"lifecycle": {"prevent_destroy": true}})),
            Some("prevent_destroy")
        );
        assert_eq!(
            destroy_protection(&json!({"lifecycle": {"deny_user_destroy": true}})),
            Some("deny_user_destroy")
        );
        assert_eq!(
            destroy_protection(&json!({"lifecycle": {"prevent_destroy": false}})),
            None
        );
        assert_eq!(destroy_protection(&json!({})), None);
    }
}
