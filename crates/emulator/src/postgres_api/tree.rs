//! The resource tree: create / get / list / update / delete / undelete of projects,
//! branches, endpoints, databases and roles (and the generic parts of catalogs and synced
//! tables). Requests are validated at once (400/404/409); the work runs in the operation.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{
    already_exists, bad_request, check_id, computes, duration_string, invalid, not_found,
    now_rfc3339, objects, ops, parse_duration, uid, PgErr, PgResult, Req, BRANCHES, CATALOGS,
    DATABASES, ENDPOINTS, PROJECTS, ROLES, SYNCED,
};
use crate::backend::BranchPoint;
use crate::http::{decode_token, encode_token, page_size, strip_internal, ApiErr};
use crate::server::Emu;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Project,
    Branch,
    Endpoint,
    Database,
    Role,
    Catalog,
    SyncedTable,
}

impl Kind {
    pub fn child(segment: &str) -> Option<Kind> {
        match segment {
            "endpoints" => Some(Kind::Endpoint),
            "databases" => Some(Kind::Database),
            "roles" => Some(Kind::Role),
            _ => None,
        }
    }
    pub fn coll(self) -> &'static str {
        match self {
            Kind::Project => PROJECTS,
            Kind::Branch => BRANCHES,
            Kind::Endpoint => ENDPOINTS,
            Kind::Database => DATABASES,
            Kind::Role => ROLES,
            Kind::Catalog => CATALOGS,
            Kind::SyncedTable => SYNCED,
        }
    }
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Project => "projects",
            Kind::Branch => "branches",
            Kind::Endpoint => "endpoints",
            Kind::Database => "databases",
            Kind::Role => "roles",
            Kind::Catalog => "catalogs",
            Kind::SyncedTable => "synced_tables",
        }
    }
    pub fn id_field(self) -> &'static str {
        match self {
            Kind::Project => "project_id",
            Kind::Branch => "branch_id",
            Kind::Endpoint => "endpoint_id",
            Kind::Database => "database_id",
            Kind::Role => "role_id",
            Kind::Catalog => "catalog_id",
            Kind::SyncedTable => "synced_table_id",
        }
    }
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Project => "project",
            Kind::Branch => "branch",
            Kind::Endpoint => "endpoint",
            Kind::Database => "database",
            Kind::Role => "role",
            Kind::Catalog => "catalog",
            Kind::SyncedTable => "synced table",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Kind::Project => "Project",
            Kind::Branch => "Branch",
            Kind::Endpoint => "Endpoint",
            Kind::Database => "Database",
            Kind::Role => "Role",
            Kind::Catalog => "Catalog",
            Kind::SyncedTable => "SyncedTable",
        }
    }
    fn replaceable(self) -> bool {
        matches!(
            self,
            Kind::Branch | Kind::Endpoint | Kind::Database | Kind::Role
        )
    }
    /// Spec fields a mask may name (first path segment), and the immutable ones.
    fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Kind::Project => (
                &[
                    "display_name",
                    "history_retention_duration",
                    "default_endpoint_settings",
                    "enable_pg_native_login",
                    "budget_policy_id",
                    "custom_tags",
                    "default_branch",
                ],
                &["pg_version"],
            ),
            Kind::Branch => (
                &[
                    "is_protected",
                    "ttl",
                    "expire_time",
                    "no_expiry",
                    "expiration",
                ],
                &[
                    "source_branch",
                    "source_branch_lsn",
                    "source_branch_time",
                    "source_snapshot",
                ],
            ),
            Kind::Endpoint => (
                &[
                    "autoscaling_limit_min_cu",
                    "autoscaling_limit_max_cu",
                    "suspend_timeout_duration",
                    "no_suspension",
                    "disabled",
                    "group",
                    "settings",
                ],
                &["endpoint_type"],
            ),
            Kind::Database => (&["role", "postgres_database"], &[]),
            Kind::Role => (
                &["membership_roles", "attributes"],
                &["postgres_role", "identity_type", "auth_method"],
            ),
            Kind::Catalog | Kind::SyncedTable => (&[], &[]),
        }
    }
}

pub fn is_deleted(rec: &Value) -> bool {
    rec["_emu"]["deleted"] == json!(true)
}

/// Deleted itself or under a deleted project/branch.
pub fn hidden(emu: &Emu, rec: &Value) -> bool {
    if is_deleted(rec) {
        return true;
    }
    let name = rec["name"].as_str().unwrap_or_default();
    let segs: Vec<&str> = name.split('/').collect();
    if segs.first() != Some(&"projects") {
        // Catalogs and synced tables go with the branch behind them.
        return match rec["status"]["branch"].as_str() {
            Some(b) => emu.store.get(BRANCHES, b).is_none_or(|r| hidden(emu, &r)),
            None => false,
        };
    }
    let gone = |coll: &str, key: String| emu.store.get(coll, &key).is_none_or(|r| is_deleted(&r));
    (segs.len() > 2 && gone(PROJECTS, segs[..2].join("/")))
        || (segs.len() > 4 && gone(BRANCHES, segs[..4].join("/")))
}

pub fn visible(emu: &Emu, kind: Kind, name: &str) -> PgResult<Value> {
    emu.store
        .get(kind.coll(), name)
        .filter(|r| !hidden(emu, r))
        .ok_or_else(|| not_found(kind.noun(), name))
}

pub fn project_of(name: &str) -> String {
    name.split('/').take(2).collect::<Vec<_>>().join("/")
}

fn branch_of(name: &str) -> String {
    name.split('/').take(4).collect::<Vec<_>>().join("/")
}

/// The lock key that serialises a project's operations.
pub fn lock_key(project: &str) -> String {
    format!("pg:{project}")
}

/// The record as GET returns it: no `_emu`, live states and hosts.
pub fn view(emu: &Emu, kind: Kind, rec: &Value) -> Value {
    let mut out = strip_internal(rec.clone());
    let ready = rec["_emu"]["ready"] == json!(true);
    let name = rec["name"].as_str().unwrap_or_default();
    let Some(status) = out.get_mut("status").and_then(Value::as_object_mut) else {
        return out;
    };
    match kind {
        Kind::Branch => {
            status.insert(
                "current_state".into(),
                json!(if ready { "READY" } else { "INIT" }),
            );
            if !ready {
                status.insert("pending_state".into(), json!("READY"));
            }
        }
        Kind::Endpoint => {
            let current = computes::endpoint_state(emu, name, rec);
            status.insert("current_state".into(), json!(current));
            if computes::reconciling(emu, name) {
                // Where it is going: up for a new endpoint, else where it is.
                let pending = if current == "INIT" { "ACTIVE" } else { current };
                status.insert("pending_state".into(), json!(pending));
            }
            if let Some(host) = rec["_emu"]["host"].as_str() {
                let hosts =
                    if super::field(status, "endpoint_type") == &json!("ENDPOINT_TYPE_READ_ONLY") {
                        json!({"host": host, "read_only_host": host, "read_only_pooled_host": host})
                    } else {
                        json!({"host": host, "read_write_pooled_host": host})
                    };
                status.insert("hosts".into(), hosts);
            }
            if let Some(t) = computes::last_active_time(emu, name) {
                status.insert("last_active_time".into(), json!(t));
            }
        }
        _ => {}
    }
    out
}

fn record(
    kind: Kind,
    name: &str,
    id: &str,
    parent: &str,
    uid: String,
    status: Map<String, Value>,
) -> Value {
    let now = now_rfc3339();
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert(kind.id_field().into(), json!(id));
    if !parent.is_empty() {
        m.insert("parent".into(), json!(parent));
    }
    m.insert("uid".into(), json!(uid));
    m.insert("create_time".into(), json!(now));
    m.insert("update_time".into(), json!(now));
    m.insert("status".into(), Value::Object(status));
    m.insert("_emu".into(), json!({"ready": false}));
    Value::Object(m)
}

fn put(emu: &Emu, kind: Kind, name: &str, rec: Value) -> PgResult<()> {
    emu.store.txn(|t| {
        t.put(kind.coll(), name, rec);
        Ok::<_, ApiErr>(())
    })?;
    Ok(())
}

/// Mark records ready (their work is done).
pub fn mark_ready(emu: &Emu, items: &[(Kind, String)]) -> PgResult<()> {
    emu.store.txn(|t| {
        for (k, n) in items {
            if let Some(mut r) = t.get(k.coll(), n).cloned() {
                r["_emu"]["ready"] = json!(true);
                t.put(k.coll(), n, r);
            }
        }
        Ok::<_, ApiErr>(())
    })?;
    Ok(())
}

/// Remove records that were created for a failed operation.
fn forget(emu: &Emu, items: &[(Kind, String)]) {
    let _ = emu.store.txn(|t| {
        for (k, n) in items {
            t.delete(k.coll(), n);
        }
        Ok::<_, ApiErr>(())
    });
}

pub fn current_view(emu: &Emu, kind: Kind, name: &str) -> PgResult<Value> {
    emu.store
        .get(kind.coll(), name)
        .map(|r| view(emu, kind, &r))
        .ok_or_else(|| not_found(kind.noun(), name))
}

// ---------------------------------------------------------------------------------------
// Validation of statuses (the effective spec).

fn cu(field: &str, v: &Value) -> PgResult<f64> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| invalid(format!("Field '{field}' must be a number of CU, got {v}")))
}

/// Compute settings shared by endpoints and a project's `default_endpoint_settings`.
fn norm_compute(m: &mut Map<String, Value>, what: &str) -> PgResult<()> {
    let min = cu(
        "autoscaling_limit_min_cu",
        super::field(m, "autoscaling_limit_min_cu"),
    )?;
    let max = cu(
        "autoscaling_limit_max_cu",
        super::field(m, "autoscaling_limit_max_cu"),
    )?;
    if min < 0.5 {
        return Err(invalid(format!(
            "{what}: autoscaling_limit_min_cu must be at least 0.5, got {min}"
        )));
    }
    if max > 64.0 || max < min || max - min > 16.0 {
        return Err(invalid(format!(
            "{what}: autoscaling_limit_max_cu must be between autoscaling_limit_min_cu and 64, \
             at most 16 above it (got min {min}, max {max})"
        )));
    }
    if m.get("no_suspension") == Some(&json!(true)) {
        m.remove("suspend_timeout_duration");
    } else {
        m.remove("no_suspension");
        let secs = parse_duration(
            "suspend_timeout_duration",
            m.get("suspend_timeout_duration").unwrap_or(&json!("300s")),
        )?;
        if !(60.0..=604800.0).contains(&secs) {
            return Err(invalid(format!(
                "{what}: suspend_timeout_duration must be between 60s and 604800s, got {secs}s"
            )));
        }
        m.insert(
            "suspend_timeout_duration".into(),
            json!(duration_string(secs)),
        );
    }
    Ok(())
}

fn check_bool(m: &Map<String, Value>, field: &str) -> PgResult<()> {
    match m.get(field) {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(v) => Err(invalid(format!(
            "Field '{field}' must be a boolean, got {v}"
        ))),
    }
}

fn check_str(m: &Map<String, Value>, field: &str) -> PgResult<()> {
    match m.get(field) {
        None | Some(Value::String(_)) => Ok(()),
        Some(v) => Err(invalid(format!(
            "Field '{field}' must be a string, got {v}"
        ))),
    }
}

fn parse_time(field: &str, v: &Value) -> PgResult<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            invalid(format!(
                "Field '{field}' must be an RFC 3339 timestamp, got {v}"
            ))
        })
}

fn norm_project(emu: &Emu, name: &str, m: &mut Map<String, Value>) -> PgResult<()> {
    match m.get("display_name").and_then(Value::as_str) {
        Some(d) if !d.is_empty() && d.chars().count() <= 256 => {}
        _ => return Err(invalid("Field 'display_name' must be 1 to 256 characters")),
    }
    match m.get("pg_version").and_then(Value::as_i64) {
        Some(v) if (14..=18).contains(&v) => {}
        _ => {
            return Err(invalid(format!(
                "Field 'pg_version' must be a PostgreSQL major version from 14 to 18, got {}",
                super::field(m, "pg_version")
            )))
        }
    }
    let h = parse_duration(
        "history_retention_duration",
        super::field(m, "history_retention_duration"),
    )?;
    if !(172800.0..=3024000.0).contains(&h) {
        return Err(invalid(format!(
            "Field 'history_retention_duration' must be between 172800s (2 days) and 3024000s (35 days), got {h}s"
        )));
    }
    m.insert(
        "history_retention_duration".into(),
        json!(duration_string(h)),
    );
    match m.get_mut("default_endpoint_settings") {
        Some(Value::Object(d)) => {
            norm_compute(d, "default_endpoint_settings")?;
            if let Some(p) = d.get("pg_settings") {
                check_pg_settings("default_endpoint_settings.pg_settings", p)?;
            }
        }
        _ => {
            return Err(invalid(
                "Field 'default_endpoint_settings' must be an object",
            ))
        }
    }
    check_bool(m, "enable_pg_native_login")?;
    check_str(m, "budget_policy_id")?;
    if let Some(tags) = m.get("custom_tags") {
        let ok = tags.as_array().is_some_and(|a| {
            a.iter()
                .all(|t| t["key"].as_str().is_some_and(|k| !k.is_empty()))
        });
        if !ok {
            return Err(invalid(
                "Field 'custom_tags' must be a list of {key, value} with non-empty keys",
            ));
        }
    }
    let default = super::field(m, "default_branch")
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !default.starts_with(&format!("{name}/branches/")) {
        return Err(invalid(format!(
            "Field 'default_branch' must name a branch of {name} (projects/…/branches/…), got {default:?}"
        )));
    }
    if default != format!("{name}/branches/production")
        || emu.store.get(BRANCHES, &default).is_some()
    {
        visible(emu, Kind::Branch, &default)?;
    }
    Ok(())
}

fn norm_endpoint(m: &mut Map<String, Value>) -> PgResult<()> {
    match m.get("endpoint_type").and_then(Value::as_str) {
        Some("ENDPOINT_TYPE_READ_WRITE" | "ENDPOINT_TYPE_READ_ONLY") => {}
        None => {
            return Err(invalid(
                "Field 'endpoint.spec.endpoint_type' is required, expected non-default value!",
            ))
        }
        Some(other) => {
            return Err(invalid(format!(
                "Field 'endpoint_type' must be ENDPOINT_TYPE_READ_WRITE or ENDPOINT_TYPE_READ_ONLY, got {other:?}"
            )))
        }
    }
    norm_compute(m, "endpoint")?;
    check_bool(m, "disabled")?;
    if !m.contains_key("disabled") {
        m.insert("disabled".into(), json!(false));
    }
    if let Some(g) = m.get("group") {
        let (min, max) = (g["min"].as_i64(), g["max"].as_i64());
        match (min, max) {
            (Some(a), Some(b)) if a == b && a >= 1 => {}
            _ => {
                return Err(invalid(format!(
                    "Field 'group': min and max must be equal and at least 1, got {g}"
                )))
            }
        }
    }
    if let Some(s) = m.get("settings") {
        let ok = s.as_object().is_some_and(|o| {
            o.get("pg_settings").is_none_or(|p| {
                p.as_object()
                    .is_some_and(|p| p.values().all(Value::is_string))
            })
        });
        if !ok {
            return Err(invalid(
                "Field 'settings' must be {\"pg_settings\": {name: string value}}",
            ));
        }
        if let Some(p) = s.get("pg_settings") {
            check_pg_settings("settings.pg_settings", p)?;
        }
    }
    Ok(())
}

/// Settings the local workspace sets itself on every server (addresses, TLS, WAL shipping,
/// replication, preloaded libraries): an endpoint may not override them.
const MANAGED_SETTINGS: &[&str] = &[
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "ssl",
    "archive_mode",
    "archive_command",
    "restore_command",
    "primary_conninfo",
    "primary_slot_name",
    "hot_standby",
    "wal_level",
    "max_wal_senders",
    "max_connections",
    "shared_preload_libraries",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "include",
    "include_dir",
    "include_if_exists",
];

/// `pg_settings`: a map of setting names to string values, none of them managed here.
/// Values are checked by PostgreSQL itself when the operation applies them.
fn check_pg_settings(field: &str, p: &Value) -> PgResult<()> {
    let Some(map) = p.as_object() else {
        return Err(invalid(format!(
            "Field '{field}' must be an object of setting names to string values"
        )));
    };
    for (k, v) in map {
        if !v.is_string() {
            return Err(invalid(format!(
                "Field '{field}': the value of {k:?} must be a string, got {v}"
            )));
        }
        let name = k.to_ascii_lowercase();
        if !crate::postgres::server::valid_setting_name(&name) {
            return Err(invalid(format!(
                "Field '{field}': {k:?} is not a PostgreSQL setting name"
            )));
        }
        if MANAGED_SETTINGS.contains(&name.as_str())
            || name.starts_with("ssl_")
            || name.starts_with("recovery_")
        {
            return Err(invalid(format!(
                "Field '{field}': {k:?} is managed by the local workspace (addresses, TLS, \
                 replication and WAL archiving) and cannot be set"
            )));
        }
    }
    Ok(())
}

fn norm_branch(m: &mut Map<String, Value>, created: DateTime<Utc>) -> PgResult<()> {
    check_bool(m, "is_protected")?;
    if !m.contains_key("is_protected") {
        m.insert("is_protected".into(), json!(false));
    }
    let given: Vec<&str> = ["ttl", "expire_time", "no_expiry"]
        .into_iter()
        .filter(|k| m.contains_key(*k))
        .collect();
    if given.len() > 1 {
        return Err(invalid(format!(
            "Fields {} are mutually exclusive: give one of ttl, expire_time, no_expiry",
            given.join(", ")
        )));
    }
    if let Some(v) = m.remove("no_expiry") {
        if v != json!(true) {
            return Err(invalid("Field 'no_expiry' must be true when given"));
        }
        m.remove("expire_time");
    }
    if let Some(v) = m.remove("ttl") {
        let secs = parse_duration("ttl", &v)?;
        let at = created + chrono::Duration::milliseconds((secs * 1000.0) as i64);
        m.insert(
            "expire_time".into(),
            json!(crate::http::rfc3339(at.timestamp_millis())),
        );
    }
    if let Some(v) = m.get("expire_time") {
        let at = parse_time("expire_time", v)?;
        if at <= Utc::now() {
            return Err(invalid(format!(
                "Field 'expire_time' must be in the future, got {v}"
            )));
        }
    }
    Ok(())
}

const IDENTITY_TYPES: [&str; 3] = ["USER", "SERVICE_PRINCIPAL", "GROUP"];
const AUTH_METHODS: [&str; 3] = ["LAKEBASE_OAUTH_V1", "PG_PASSWORD_SCRAM_SHA_256", "NO_LOGIN"];

fn norm_role(m: &mut Map<String, Value>) -> PgResult<()> {
    check_str(m, "postgres_role")?;
    if super::field(m, "postgres_role")
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(invalid(
            "Field 'role.spec.postgres_role' is required, expected non-default value (not \"\")!",
        ));
    }
    let identity = m
        .get("identity_type")
        .and_then(Value::as_str)
        .map(str::to_string);
    match identity.as_deref() {
        None | Some("IDENTITY_TYPE_UNSPECIFIED") => {
            m.insert("identity_type".into(), json!("IDENTITY_TYPE_UNSPECIFIED"));
        }
        Some(t) if IDENTITY_TYPES.contains(&t) => {}
        Some(t) => {
            return Err(invalid(format!(
                "Field 'identity_type' must be one of {}, got {t:?}",
                IDENTITY_TYPES.join(", ")
            )))
        }
    }
    let is_identity = super::field(m, "identity_type") != &json!("IDENTITY_TYPE_UNSPECIFIED");
    match m.get("auth_method").and_then(Value::as_str) {
        None => {
            let d = if is_identity {
                "LAKEBASE_OAUTH_V1"
            } else {
                "PG_PASSWORD_SCRAM_SHA_256"
            };
            m.insert("auth_method".into(), json!(d));
        }
        Some("LAKEBASE_OAUTH_V1") if !is_identity => {
            return Err(invalid(
                "auth_method LAKEBASE_OAUTH_V1 needs an identity_type (USER, SERVICE_PRINCIPAL or GROUP)",
            ))
        }
        Some(a) if AUTH_METHODS.contains(&a) => {}
        Some(a) => {
            return Err(invalid(format!(
                "Field 'auth_method' must be one of {}, got {a:?}",
                AUTH_METHODS.join(", ")
            )))
        }
    }
    let mut attrs = m.get("attributes").cloned().unwrap_or_else(|| json!({}));
    let Some(a) = attrs.as_object_mut() else {
        return Err(invalid("Field 'attributes' must be an object"));
    };
    for k in ["createdb", "createrole", "bypassrls"] {
        check_bool(a, k)?;
        if !a.contains_key(k) {
            a.insert(k.into(), json!(false));
        }
    }
    a.retain(|k, _| ["createdb", "createrole", "bypassrls"].contains(&k.as_str()));
    m.insert("attributes".into(), attrs);
    let roles = m
        .get("membership_roles")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let ok = roles
        .as_array()
        .is_some_and(|a| a.iter().all(|r| r == "DATABRICKS_SUPERUSER"));
    if !ok {
        return Err(invalid(format!(
            "Field 'membership_roles' must be a list of DATABRICKS_SUPERUSER, got {roles}"
        )));
    }
    m.insert("membership_roles".into(), roles);
    Ok(())
}

fn norm_database(emu: &Emu, branch: &str, m: &mut Map<String, Value>) -> PgResult<()> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
    if role.is_empty() {
        return Err(invalid(
            "Field 'database.spec.role' is required, expected non-default value (not \"\")!",
        ));
    }
    if !role.starts_with(&format!("{branch}/roles/")) {
        return Err(invalid(format!(
            "Field 'role' must name a role of {branch} ({branch}/roles/…), got {role:?}"
        )));
    }
    if visible(emu, Kind::Role, role).is_err() {
        let id = role.rsplit('/').next().unwrap_or_default();
        return Err(PgErr::Api(ApiErr::new(
            axum::http::StatusCode::NOT_FOUND,
            lakebundle_wire::codes::NOT_FOUND,
            format!("role not found; role_id:\"{id}\""),
        )));
    }
    match m.get("postgres_database").and_then(Value::as_str) {
        Some(d) if !d.is_empty() && d.len() <= 63 => Ok(()),
        _ => Err(invalid(
            "Field 'postgres_database' must be 1 to 63 characters",
        )),
    }
}

/// Validate and complete a status in place.
fn normalize(
    emu: &Emu,
    kind: Kind,
    name: &str,
    created: DateTime<Utc>,
    m: &mut Map<String, Value>,
) -> PgResult<()> {
    match kind {
        Kind::Project => norm_project(emu, name, m),
        Kind::Branch => norm_branch(m, created),
        Kind::Endpoint => norm_endpoint(m),
        Kind::Role => norm_role(m),
        Kind::Database => norm_database(emu, &branch_of(name), m),
        Kind::Catalog | Kind::SyncedTable => Ok(()),
    }
}

/// `default_endpoint_settings` of a project as an endpoint's starting status.
fn endpoint_defaults(project: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(d) = project["status"]["default_endpoint_settings"].as_object() {
        for k in [
            "autoscaling_limit_min_cu",
            "autoscaling_limit_max_cu",
            "suspend_timeout_duration",
            "no_suspension",
        ] {
            if let Some(v) = d.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        if let Some(p) = d.get("pg_settings") {
            m.insert("settings".into(), json!({"pg_settings": p}));
        }
    }
    m
}

fn merge(into: &mut Map<String, Value>, spec: &Map<String, Value>, allowed: &[&str]) {
    for (k, v) in spec {
        if allowed.contains(&k.as_str()) && !v.is_null() {
            if k == "suspend_timeout_duration" {
                into.remove("no_suspension");
            }
            if k == "no_suspension" && v == &json!(true) {
                into.remove("suspend_timeout_duration");
            }
            into.insert(k.clone(), v.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Create

pub fn create(emu: &Arc<Emu>, kind: Kind, parent: &str, req: &Req) -> PgResult<Value> {
    let id = req.q(kind.id_field()).unwrap_or_default().to_string();
    match kind {
        Kind::Role => check_id(kind.id_field(), &id, 4)?,
        Kind::Catalog | Kind::SyncedTable => objects::check_uc_id(kind, &id)?,
        _ => check_id(kind.id_field(), &id, 1)?,
    }
    let name = match kind {
        Kind::Project | Kind::Catalog | Kind::SyncedTable => format!("{}/{id}", kind.segment()),
        _ => format!("{parent}/{}/{id}", kind.segment()),
    };
    match kind {
        Kind::Branch => {
            visible(emu, Kind::Project, parent)?;
        }
        Kind::Endpoint | Kind::Database | Kind::Role => {
            visible(emu, Kind::Branch, parent)?;
        }
        _ => {}
    }
    let spec = req.spec()?;
    let mut purge_first = Vec::new();
    if let Some(existing) = emu.store.get(kind.coll(), &name) {
        if !hidden(emu, &existing) {
            if kind.replaceable() && req.qbool("replace_existing")? {
                if kind == Kind::Endpoint {
                    computes::refuse_if_reconciling(emu, &name)?;
                }
                return update(emu, kind, &name, existing, spec, None);
            }
            return Err(match kind {
                Kind::Role => bad_request("role with that name already exists"),
                Kind::Database => bad_request("database with that name already exists"),
                _ => already_exists(kind.noun(), &name),
            });
        }
        // A deleted one is purged before its id is used again.
        purge_first = take_records(emu, &name)?;
    }
    match kind {
        Kind::Project => create_project(emu, &name, &id, spec, req, purge_first),
        Kind::Branch => create_branch(emu, &name, &id, parent, spec, purge_first),
        Kind::Endpoint => create_endpoint(emu, &name, &id, parent, spec),
        Kind::Database | Kind::Role => create_object(emu, kind, &name, &id, parent, spec),
        Kind::Catalog => objects::create_catalog(emu, &name, &id, spec),
        Kind::SyncedTable => objects::create_synced(emu, &name, &id, spec),
    }
}

/// A role id derived from an identity (`someone@example.com` → `someone-example-com`).
fn role_id_of(user: &str) -> String {
    let mut s: String = user
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let mut s = s.trim_matches('-').to_string();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s = format!("r-{s}");
    }
    s.truncate(63);
    let s = s.trim_end_matches('-').to_string();
    if s.len() < 4 {
        format!("{s}-role")
    } else {
        s
    }
}

fn create_project(
    emu: &Arc<Emu>,
    name: &str,
    id: &str,
    spec: Map<String, Value>,
    req: &Req,
    purge_first: Vec<(String, String)>,
) -> PgResult<Value> {
    let mut status = Map::new();
    status.insert("display_name".into(), json!(id));
    status.insert("pg_version".into(), json!(16));
    status.insert("history_retention_duration".into(), json!("604800s"));
    status.insert(
        "default_endpoint_settings".into(),
        json!({"autoscaling_limit_min_cu": 1.0, "autoscaling_limit_max_cu": 1.0, "suspend_timeout_duration": "86400s"}),
    );
    status.insert("enable_pg_native_login".into(), json!(false));
    status.insert(
        "default_branch".into(),
        json!(format!("{name}/branches/production")),
    );
    let (fields, imm) = Kind::Project.fields();
    let all: Vec<&str> = fields.iter().chain(imm.iter()).copied().collect();
    if let Some(Value::Object(d)) = spec.get("default_endpoint_settings") {
        if let Some(Value::Object(cur)) = status.get_mut("default_endpoint_settings") {
            merge(
                cur,
                d,
                &[
                    "autoscaling_limit_min_cu",
                    "autoscaling_limit_max_cu",
                    "suspend_timeout_duration",
                    "no_suspension",
                    "pg_settings",
                ],
            );
        }
    }
    let mut rest = spec.clone();
    rest.remove("default_endpoint_settings");
    rest.remove("default_branch");
    merge(&mut status, &rest, &all);
    normalize(emu, Kind::Project, name, Utc::now(), &mut status)?;
    let owner = req.caller.user_name.clone();
    status.insert("owner".into(), json!(owner));
    status.insert("project_id".into(), json!(id));
    status.insert(
        "branch_logical_size_limit_bytes".into(),
        json!(8796093022208u64),
    );
    status.insert("synthetic_storage_size_bytes".into(), json!(0));
    let project = record(
        Kind::Project,
        name,
        id,
        "",
        uuid::Uuid::new_v4().to_string(),
        status,
    );

    // The production branch and its primary endpoint come with the project.
    let branch = format!("{name}/branches/production");
    let protected = super::field(&req.body, "initial_branch_spec")["is_protected"] == json!(true);
    let mut bstatus = Map::new();
    bstatus.insert("branch_id".into(), json!("production"));
    bstatus.insert("default".into(), json!(true));
    bstatus.insert("is_protected".into(), json!(protected));
    bstatus.insert("state_change_time".into(), json!(now_rfc3339()));
    let brec = record(
        Kind::Branch,
        &branch,
        "production",
        name,
        uid("br"),
        bstatus,
    );
    let mut estatus = endpoint_defaults(&project);
    if let Some(Value::Object(init)) = req.body.get("initial_endpoint_spec") {
        merge(&mut estatus, init, Kind::Endpoint.fields().0);
    }
    estatus.insert("endpoint_type".into(), json!("ENDPOINT_TYPE_READ_WRITE"));
    normalize(emu, Kind::Endpoint, "", Utc::now(), &mut estatus)?;
    estatus.insert("endpoint_id".into(), json!("primary"));
    let endpoint = format!("{branch}/endpoints/primary");
    let erec = record(
        Kind::Endpoint,
        &endpoint,
        "primary",
        &branch,
        uid("ep"),
        estatus,
    );
    // The creator's owner role and the default database.
    let role_id = role_id_of(&owner);
    let role = format!("{branch}/roles/{role_id}");
    let identity = if req.caller.service_principal {
        "SERVICE_PRINCIPAL"
    } else {
        "USER"
    };
    let rrec = record(
        Kind::Role,
        &role,
        &role_id,
        &branch,
        uid("role"),
        json!({"role_id": role_id, "postgres_role": owner, "identity_type": identity,
               "auth_method": "LAKEBASE_OAUTH_V1",
               "attributes": {"createdb": true, "createrole": false, "bypassrls": false},
               "membership_roles": ["DATABRICKS_SUPERUSER"]})
        .as_object()
        .cloned()
        .unwrap_or_default(),
    );
    let database = format!("{branch}/databases/databricks-postgres");
    let drec = record(
        Kind::Database,
        &database,
        "databricks-postgres",
        &branch,
        uid("db"),
        json!({"database_id": "databricks-postgres", "postgres_database": crate::postgres::DEFAULT_DATABASE, "role": role})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let items = vec![
        (Kind::Project, name.to_string()),
        (Kind::Branch, branch.clone()),
        (Kind::Endpoint, endpoint.clone()),
        (Kind::Role, role.clone()),
        (Kind::Database, database.clone()),
    ];
    emu.store.txn(|t| {
        t.put(PROJECTS, name, project.clone());
        t.put(BRANCHES, &branch, brec.clone());
        t.put(ENDPOINTS, &endpoint, erec.clone());
        t.put(ROLES, &role, rrec.clone());
        t.put(DATABASES, &database, drec.clone());
        Ok::<_, ApiErr>(())
    })?;
    if let Some(v) = emu.backend.server_version() {
        tracing::info!(
            "project {name}: pg_version {} requested; the local servers run the installed PostgreSQL {v}",
            project["status"]["pg_version"]
        );
    }
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let work = async move {
        purge_backends(&emu2, &purge_first).await?;
        let result = async {
            computes::provision(&emu2, &branch, None).await?;
            objects::create_role_sql(&emu2, &role).await?;
            let host =
                computes::open_endpoint(&emu2, &endpoint, erec["uid"].as_str().unwrap_or(""))
                    .await?;
            set_host(&emu2, &endpoint, &host)?;
            mark_ready(&emu2, &items)?;
            current_view(&emu2, Kind::Project, &name2)
        }
        .await;
        if result.is_err() {
            let _ = drop_backend_quietly(&emu2, &branch).await;
            forget(&emu2, &items);
        }
        result
    };
    ops::start(emu, name, "Project", lock_key(name), work)
}

pub fn set_host(emu: &Emu, endpoint: &str, host: &str) -> PgResult<()> {
    emu.store.txn(|t| {
        if let Some(mut r) = t.get(ENDPOINTS, endpoint).cloned() {
            r["_emu"]["host"] = json!(host);
            t.put(ENDPOINTS, endpoint, r);
        }
        Ok::<_, ApiErr>(())
    })?;
    Ok(())
}

async fn drop_backend_quietly(emu: &Arc<Emu>, branch: &str) -> PgResult<()> {
    let uid = emu
        .store
        .get(BRANCHES, branch)
        .and_then(|b| b["uid"].as_str().map(str::to_string));
    if let Some(uid) = uid {
        computes::drop_branch(emu, branch, &uid, true).await?;
    }
    Ok(())
}

fn create_branch(
    emu: &Arc<Emu>,
    name: &str,
    id: &str,
    project_name: &str,
    spec: Map<String, Value>,
    purge_first: Vec<(String, String)>,
) -> PgResult<Value> {
    let project = visible(emu, Kind::Project, project_name)?;
    let source = spec
        .get("source_branch")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            project["status"]["default_branch"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
    if !source.starts_with(&format!("{project_name}/branches/")) {
        return Err(invalid(format!(
            "Field 'source_branch' must be a branch of {project_name}, got {source:?}"
        )));
    }
    let src = visible(emu, Kind::Branch, &source)?;
    if spec.contains_key("source_snapshot") {
        return Err(PgErr::Api(ApiErr::not_implemented(
            "source_snapshot: snapshots are not emulated; branch from source_branch_time or source_branch_lsn",
        )));
    }
    let mut status = Map::new();
    status.insert("branch_id".into(), json!(id));
    status.insert("default".into(), json!(false));
    status.insert("source_branch".into(), json!(source));
    let lsn = spec.get("source_branch_lsn");
    let at = spec.get("source_branch_time");
    let point = match (lsn, at) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Fields source_branch_lsn and source_branch_time are mutually exclusive",
            ))
        }
        (Some(l), None) => {
            let l = l.as_str().unwrap_or_default();
            if crate::postgres::parse_lsn(l).is_none() {
                return Err(invalid(format!(
                    "Field 'source_branch_lsn' must be a WAL position like 0/1A2B3C8, got {l:?}"
                )));
            }
            status.insert("source_branch_lsn".into(), json!(l));
            BranchPoint::Lsn(l.to_string())
        }
        (None, Some(t)) => {
            let when = parse_time("source_branch_time", t)?;
            let now = Utc::now();
            if when > now {
                return Err(invalid(format!(
                    "Field 'source_branch_time' {t} is in the future"
                )));
            }
            let retention = parse_duration(
                "history_retention_duration",
                &project["status"]["history_retention_duration"],
            )?;
            if (now - when).num_milliseconds() as f64 > retention * 1000.0 {
                return Err(invalid(format!(
                    "Field 'source_branch_time' {t} is outside the project's history retention ({})",
                    project["status"]["history_retention_duration"]
                )));
            }
            let born = parse_time("create_time", &src["create_time"])?;
            if when < born {
                return Err(invalid(format!(
                    "Field 'source_branch_time' {t} is before {source} was created ({})",
                    src["create_time"]
                )));
            }
            let text = when.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            status.insert("source_branch_time".into(), json!(text));
            BranchPoint::Timestamp(text)
        }
        (None, None) => {
            status.insert("source_branch_time".into(), json!(now_rfc3339()));
            BranchPoint::Now
        }
    };
    merge(
        &mut status,
        &spec,
        &["is_protected", "ttl", "expire_time", "no_expiry"],
    );
    normalize(emu, Kind::Branch, name, Utc::now(), &mut status)?;
    status.insert("state_change_time".into(), json!(now_rfc3339()));
    let brec = record(Kind::Branch, name, id, project_name, uid("br"), status);
    let mut estatus = endpoint_defaults(&project);
    estatus.insert("endpoint_type".into(), json!("ENDPOINT_TYPE_READ_WRITE"));
    normalize(emu, Kind::Endpoint, "", Utc::now(), &mut estatus)?;
    estatus.insert("endpoint_id".into(), json!("primary"));
    let endpoint = format!("{name}/endpoints/primary");
    let erec = record(
        Kind::Endpoint,
        &endpoint,
        "primary",
        name,
        uid("ep"),
        estatus,
    );
    let ep_uid = erec["uid"].as_str().unwrap_or_default().to_string();
    emu.store.txn(|t| {
        t.put(BRANCHES, name, brec.clone());
        t.put(ENDPOINTS, &endpoint, erec.clone());
        Ok::<_, ApiErr>(())
    })?;
    let items = vec![
        (Kind::Branch, name.to_string()),
        (Kind::Endpoint, endpoint.clone()),
    ];
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let work = async move {
        purge_backends(&emu2, &purge_first).await?;
        let result = async {
            computes::provision(&emu2, &name2, Some((source.clone(), point))).await?;
            // The copy holds the source's roles and databases: so does the tree.
            let inherited = inherit(&emu2, &source, &name2)?;
            let host = computes::open_endpoint(&emu2, &endpoint, &ep_uid).await?;
            set_host(&emu2, &endpoint, &host)?;
            let mut ready = items.clone();
            ready.extend(inherited);
            mark_ready(&emu2, &ready)?;
            current_view(&emu2, Kind::Branch, &name2)
        }
        .await;
        if result.is_err() {
            let _ = drop_backend_quietly(&emu2, &name2).await;
            forget(&emu2, &items);
        }
        result
    };
    ops::start(emu, name, "Branch", lock_key(project_name), work)
}

/// Copy the role and database records of `source` under `branch`.
fn inherit(emu: &Emu, source: &str, branch: &str) -> PgResult<Vec<(Kind, String)>> {
    let mut out = Vec::new();
    emu.store.txn(|t| {
        for kind in [Kind::Role, Kind::Database] {
            let recs: Vec<Value> = t
                .values(kind.coll())
                .filter(|(_, r)| r["parent"] == json!(source) && !is_deleted(r))
                .map(|(_, r)| r.clone())
                .collect();
            for mut r in recs {
                let id = r[kind.id_field()].as_str().unwrap_or_default().to_string();
                let name = format!("{branch}/{}/{id}", kind.segment());
                r["name"] = json!(name);
                r["parent"] = json!(branch);
                if kind == Kind::Database {
                    if let Some(role) = r["status"]["role"].as_str() {
                        let rid = role.rsplit('/').next().unwrap_or_default();
                        r["status"]["role"] = json!(format!("{branch}/roles/{rid}"));
                    }
                }
                t.put(kind.coll(), &name, r);
                out.push((kind, name));
            }
        }
        Ok::<_, ApiErr>(())
    })?;
    Ok(out)
}

fn create_endpoint(
    emu: &Arc<Emu>,
    name: &str,
    id: &str,
    branch: &str,
    spec: Map<String, Value>,
) -> PgResult<Value> {
    let project = visible(emu, Kind::Project, &project_of(branch))?;
    let mut status = endpoint_defaults(&project);
    let (fields, imm) = Kind::Endpoint.fields();
    let all: Vec<&str> = fields.iter().chain(imm.iter()).copied().collect();
    if spec.get("no_suspension") == Some(&json!(true))
        && spec.contains_key("suspend_timeout_duration")
    {
        return Err(invalid(
            "Fields no_suspension and suspend_timeout_duration are mutually exclusive",
        ));
    }
    merge(&mut status, &spec, &all);
    normalize(emu, Kind::Endpoint, name, Utc::now(), &mut status)?;
    let siblings: Vec<Value> = emu
        .store
        .all(ENDPOINTS)
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e["parent"] == json!(branch) && !is_deleted(e))
        .collect();
    if super::field(&status, "endpoint_type") == &json!("ENDPOINT_TYPE_READ_WRITE") {
        if siblings
            .iter()
            .any(|e| e["status"]["endpoint_type"] == json!("ENDPOINT_TYPE_READ_WRITE"))
        {
            return Err(bad_request(format!(
                "branch {branch} already has a read-write endpoint (one per branch); adopt it with replace_existing=true"
            )));
        }
    } else if siblings
        .iter()
        .filter(|e| e["status"]["endpoint_type"] == json!("ENDPOINT_TYPE_READ_ONLY"))
        .count()
        >= 2
    {
        return Err(PgErr::Api(ApiErr::new(
            axum::http::StatusCode::BAD_REQUEST,
            "RESOURCE_LIMIT_EXCEEDED",
            format!(
                "branch {branch} already has 2 read-only endpoints, the local workspace's limit"
            ),
        )));
    }
    status.insert("endpoint_id".into(), json!(id));
    let rec = record(Kind::Endpoint, name, id, branch, uid("ep"), status);
    let ep_uid = rec["uid"].as_str().unwrap_or_default().to_string();
    put(emu, Kind::Endpoint, name, rec)?;
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let branch2 = branch.to_string();
    let work = async move {
        let result = async {
            computes::reconfigure(&emu2, &branch2).await?;
            let host = computes::open_endpoint(&emu2, &name2, &ep_uid).await?;
            set_host(&emu2, &name2, &host)?;
            mark_ready(&emu2, &[(Kind::Endpoint, name2.clone())])?;
            current_view(&emu2, Kind::Endpoint, &name2)
        }
        .await;
        if result.is_err() {
            computes::close_endpoint(&emu2, &name2);
            forget(&emu2, &[(Kind::Endpoint, name2.clone())]);
            let _ = computes::reconfigure(&emu2, &branch2).await;
        }
        result
    };
    ops::start(emu, name, "Endpoint", lock_key(&project_of(branch)), work)
}

fn create_object(
    emu: &Arc<Emu>,
    kind: Kind,
    name: &str,
    id: &str,
    branch: &str,
    spec: Map<String, Value>,
) -> PgResult<Value> {
    let mut status = Map::new();
    let (fields, imm) = kind.fields();
    let all: Vec<&str> = fields.iter().chain(imm.iter()).copied().collect();
    merge(&mut status, &spec, &all);
    let pg_name_field = if kind == Kind::Role {
        "postgres_role"
    } else {
        "postgres_database"
    };
    if !status.contains_key(pg_name_field) && kind == Kind::Database {
        status.insert(pg_name_field.into(), json!(id));
    }
    normalize(emu, kind, name, Utc::now(), &mut status)?;
    // The PostgreSQL name is unique in the branch too.
    let pg_name = super::field(&status, pg_name_field).clone();
    let taken = emu.store.all(kind.coll()).into_iter().any(|(_, r)| {
        r["parent"] == json!(branch) && !is_deleted(&r) && r["status"][pg_name_field] == pg_name
    });
    if taken {
        return Err(bad_request(format!(
            "{} with that name already exists",
            kind.noun()
        )));
    }
    status.insert(kind.id_field().into(), json!(id));
    let rec = record(
        kind,
        name,
        id,
        branch,
        uid(if kind == Kind::Role { "role" } else { "db" }),
        status,
    );
    put(emu, kind, name, rec)?;
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let work = async move {
        let result = match kind {
            Kind::Role => objects::create_role_sql(&emu2, &name2).await,
            _ => objects::create_database_sql(&emu2, &name2).await,
        };
        match result {
            Ok(()) => {
                mark_ready(&emu2, &[(kind, name2.clone())])?;
                current_view(&emu2, kind, &name2)
            }
            Err(e) => {
                forget(&emu2, &[(kind, name2.clone())]);
                Err(e)
            }
        }
    };
    ops::start(emu, name, kind.label(), lock_key(&project_of(branch)), work)
}

// ---------------------------------------------------------------------------------------
// Get / list / update / delete / undelete

pub fn one(emu: &Arc<Emu>, kind: Kind, name: &str, req: &Req) -> PgResult<Value> {
    let rec = visible(emu, kind, name)?;
    match req.method {
        axum::http::Method::GET => Ok(view(emu, kind, &rec)),
        axum::http::Method::PATCH => {
            if matches!(kind, Kind::Catalog | Kind::SyncedTable) {
                return Err(PgErr::Api(ApiErr::new(
                    axum::http::StatusCode::NOT_FOUND,
                    lakebundle_wire::codes::ENDPOINT_NOT_FOUND,
                    format!("No API found for 'PATCH /api/2.0/postgres/{name}': a {} cannot be updated; delete and re-create it", kind.noun()),
                )));
            }
            let mask = req.q("update_mask").unwrap_or_default().to_string();
            if mask.is_empty() {
                return Err(invalid("Field 'update_mask' is required"));
            }
            if kind == Kind::Endpoint {
                computes::refuse_if_reconciling(emu, name)?;
            }
            update(emu, kind, name, rec, req.spec()?, Some(&mask))
        }
        axum::http::Method::DELETE => {
            if kind == Kind::Endpoint {
                computes::refuse_if_reconciling(emu, name)?;
            }
            delete(emu, kind, name, rec, req)
        }
        _ => Err(PgErr::Api(ApiErr::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            lakebundle_wire::codes::ENDPOINT_NOT_FOUND,
            format!("No API found for '{} /api/2.0/postgres/{name}'", req.method),
        ))),
    }
}

pub fn list(emu: &Arc<Emu>, kind: Kind, parent: &str, req: &Req) -> PgResult<Value> {
    if !parent.is_empty() {
        let pk = if kind == Kind::Branch {
            Kind::Project
        } else {
            Kind::Branch
        };
        visible(emu, pk, parent)?;
    }
    let show_deleted = req.qbool("show_deleted")?;
    let size = page_size(&req.query, "page_size", 50, 100)?;
    let after = decode_token(req.query.get("page_token"))?;
    // Visibility looks at other records: filter outside the store's lock.
    let mut page: Vec<(String, Value)> = emu
        .store
        .all(kind.coll())
        .into_iter()
        .filter(|(k, _)| after.as_deref().is_none_or(|a| k.as_str() > a))
        .filter(|(_, r)| {
            (parent.is_empty() || r["parent"] == json!(parent))
                && (if show_deleted {
                    is_deleted(r) || !hidden(emu, r)
                } else {
                    !hidden(emu, r)
                })
        })
        .take(size + 1)
        .collect();
    let more = page.len() > size;
    page.truncate(size);
    let items: Vec<Value> = page.iter().map(|(_, r)| view(emu, kind, r)).collect();
    let mut out = Map::new();
    out.insert(kind.segment().into(), Value::Array(items));
    if more {
        if let Some((k, _)) = page.last() {
            out.insert("next_page_token".into(), json!(encode_token(k)));
        }
    }
    Ok(Value::Object(out))
}

/// The (path, value) changes a mask names, paths relative to `spec`.
fn mask_changes(
    kind: Kind,
    spec: &Map<String, Value>,
    mask: &str,
) -> PgResult<Vec<(Vec<String>, Value)>> {
    let (fields, imm) = kind.fields();
    let mut out = Vec::new();
    for raw in mask.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if raw == "*" || raw == "spec" {
            if kind == Kind::Role {
                let a = &spec.get("attributes").cloned().unwrap_or(Value::Null);
                if ["createdb", "createrole", "bypassrls"]
                    .iter()
                    .any(|k| a.get(k).is_none())
                {
                    return Err(invalid(format!(
                        "update_mask {raw:?} needs all of spec.attributes.createdb, createrole and bypassrls in the body"
                    )));
                }
            }
            for (k, v) in spec {
                if fields.contains(&k.as_str()) {
                    out.push((vec![k.clone()], v.clone()));
                }
            }
            continue;
        }
        let Some(path) = raw.strip_prefix("spec.") else {
            return Err(invalid(format!(
                "Unknown field path in update_mask: {raw:?} (paths start with spec.)"
            )));
        };
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        let top = parts[0].as_str();
        if imm.contains(&top) {
            return Err(invalid(format!(
                "Unknown field path in update_mask: {raw:?} (spec.{top} cannot be updated; it is immutable)"
            )));
        }
        if !fields.contains(&top) {
            return Err(invalid(format!(
                "Unknown field path in update_mask: {raw:?}"
            )));
        }
        if kind == Kind::Role && top == "attributes" && parts.len() != 2 {
            return Err(invalid(format!(
                "Unknown field path in update_mask: {raw:?} (name spec.attributes.createdb, createrole or bypassrls)"
            )));
        }
        if kind == Kind::Branch && top == "expiration" {
            let given: Vec<&str> = ["ttl", "expire_time", "no_expiry"]
                .into_iter()
                .filter(|k| spec.contains_key(*k))
                .collect();
            if given.len() != 1 {
                return Err(invalid(
                    "update_mask spec.expiration needs exactly one of spec.ttl, spec.expire_time, spec.no_expiry in the body",
                ));
            }
            out.push((vec![given[0].to_string()], spec[given[0]].clone()));
            continue;
        }
        let mut v = Value::Object(spec.clone());
        for p in &parts {
            v = v.get(p).cloned().unwrap_or(Value::Null);
        }
        if v.is_null() {
            return Err(invalid(format!(
                "update_mask names {raw:?} but the request body has no value for it"
            )));
        }
        out.push((parts, v));
    }
    if out.is_empty() && kind != Kind::Role {
        return Err(invalid("update_mask names no field to update"));
    }
    Ok(out)
}

fn set_path(m: &mut Map<String, Value>, path: &[String], v: Value) {
    if path.len() == 1 {
        let k = &path[0];
        if k == "suspend_timeout_duration" {
            m.remove("no_suspension");
        }
        if k == "no_suspension" && v == json!(true) {
            m.remove("suspend_timeout_duration");
        }
        if ["ttl", "expire_time", "no_expiry"].contains(&k.as_str()) {
            m.remove("expire_time");
        }
        m.insert(k.clone(), v);
        return;
    }
    let child = m.entry(path[0].clone()).or_insert_with(|| json!({}));
    if !child.is_object() {
        *child = json!({});
    }
    if let Some(c) = child.as_object_mut() {
        set_path(c, &path[1..], v);
    }
}

/// PATCH (with a mask) or a create with `replace_existing` (mask None: every field given).
fn update(
    emu: &Arc<Emu>,
    kind: Kind,
    name: &str,
    rec: Value,
    spec: Map<String, Value>,
    mask: Option<&str>,
) -> PgResult<Value> {
    let old = rec["status"].as_object().cloned().unwrap_or_default();
    let changes = match mask {
        Some(m) => mask_changes(kind, &spec, m)?,
        None => {
            let (fields, imm) = kind.fields();
            let mut out = Vec::new();
            for (k, v) in &spec {
                if imm.contains(&k.as_str()) {
                    if old.get(k).is_some_and(|o| o != v) {
                        return Err(invalid(format!(
                            "Field '{k}' of {name} is immutable ({} now, {v} requested); delete and re-create it",
                            super::field(&old, k)
                        )));
                    }
                } else if fields.contains(&k.as_str()) {
                    out.push((vec![k.clone()], v.clone()));
                }
            }
            out
        }
    };
    let mut status = old.clone();
    if kind == Kind::Role {
        // Every mask form rewrites the memberships: omitted means none.
        status.insert(
            "membership_roles".into(),
            spec.get("membership_roles")
                .cloned()
                .unwrap_or_else(|| json!([])),
        );
    }
    for (path, v) in changes {
        set_path(&mut status, &path, v);
    }
    let created = parse_time("create_time", &rec["create_time"]).unwrap_or_else(|_| Utc::now());
    normalize(emu, kind, name, created, &mut status)?;
    let mut rec = rec;
    rec["status"] = Value::Object(status.clone());
    rec["update_time"] = json!(now_rfc3339());
    put(emu, kind, name, rec)?;
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let project = project_of(name);
    let work = async move {
        match kind {
            Kind::Project => {
                if old.get("default_branch") != status.get("default_branch") {
                    switch_default(
                        &emu2,
                        &name2,
                        super::field(&status, "default_branch")
                            .as_str()
                            .unwrap_or(""),
                    )?;
                }
                if old.get("enable_pg_native_login") != status.get("enable_pg_native_login") {
                    for (b, _) in live_children(&emu2, Kind::Branch, &name2) {
                        computes::reconfigure(&emu2, &b).await?;
                    }
                }
            }
            Kind::Endpoint => {
                if super::field(&status, "disabled") == &json!(true) {
                    computes::kick(&emu2, &name2);
                }
                let conf_of = |m: &Map<String, Value>| {
                    (
                        m.get("autoscaling_limit_max_cu").cloned(),
                        m.get("settings").cloned(),
                    )
                };
                if conf_of(&old) != conf_of(&status) {
                    // Memory (max CU) and pg_settings go to the endpoint's server: a
                    // reload, or a restart for settings read at server start.
                    if let Err(e) = computes::reconfigure(&emu2, &branch_of(&name2)).await {
                        // PostgreSQL refused them: the endpoint keeps its settings.
                        if let Some(mut rec) = emu2.store.get(ENDPOINTS, &name2) {
                            rec["status"] = Value::Object(old.clone());
                            put(&emu2, Kind::Endpoint, &name2, rec)?;
                        }
                        return Err(e);
                    }
                }
            }
            Kind::Role => objects::alter_role_sql(&emu2, &name2, &old, &status).await?,
            Kind::Database => objects::alter_database_sql(&emu2, &name2, &old, &status).await?,
            _ => {}
        }
        current_view(&emu2, kind, &name2)
    };
    ops::start(emu, name, kind.label(), lock_key(&project), work)
}

fn switch_default(emu: &Emu, project: &str, default: &str) -> PgResult<()> {
    emu.store.txn(|t| {
        let branches: Vec<(String, Value)> = t
            .values(BRANCHES)
            .filter(|(_, b)| b["parent"] == json!(project))
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect();
        for (k, mut b) in branches {
            b["status"]["default"] = json!(k == default);
            t.put(BRANCHES, &k, b);
        }
        Ok::<_, ApiErr>(())
    })?;
    Ok(())
}

/// Live (not deleted) records of `kind` directly under `parent`.
fn live_children(emu: &Emu, kind: Kind, parent: &str) -> Vec<(String, Value)> {
    emu.store
        .all(kind.coll())
        .into_iter()
        .filter(|(_, r)| r["parent"] == json!(parent) && !is_deleted(r))
        .collect()
}

/// Remove every record at or under `name`; returns the branches (name, uid) whose
/// servers must go too.
fn take_records(emu: &Emu, name: &str) -> PgResult<Vec<(String, String)>> {
    let prefix = format!("{name}/");
    let mut branches = Vec::new();
    emu.store.txn(|t| {
        for kind in [
            Kind::Project,
            Kind::Branch,
            Kind::Endpoint,
            Kind::Database,
            Kind::Role,
        ] {
            let keys: Vec<String> = t
                .values(kind.coll())
                .filter(|(k, _)| *k == name || k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(r) = t.delete(kind.coll(), &k) {
                    // (catalogs and synced tables of the branch are removed below)
                    if kind == Kind::Branch {
                        branches
                            .push((k.clone(), r["uid"].as_str().unwrap_or_default().to_string()));
                    }
                }
            }
        }
        for coll in [CATALOGS, SYNCED] {
            let keys: Vec<String> = t
                .values(coll)
                .filter(|(_, r)| {
                    r["status"]["branch"]
                        .as_str()
                        .is_some_and(|b| b == name || b.starts_with(&prefix))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                t.delete(coll, &k);
            }
        }
        Ok::<_, ApiErr>(())
    })?;
    Ok(branches)
}

async fn purge_backends(emu: &Arc<Emu>, branches: &[(String, String)]) -> PgResult<()> {
    for (b, uid) in branches {
        computes::drop_branch(emu, b, uid, true).await?;
    }
    Ok(())
}

fn mark_deleted(emu: &Emu, kind: Kind, name: &str, deleted: bool) -> PgResult<()> {
    emu.store.txn(|t| {
        if let Some(mut r) = t.get(kind.coll(), name).cloned() {
            r["_emu"]["deleted"] = json!(deleted);
            if deleted {
                let now = Utc::now();
                r["delete_time"] = json!(crate::http::rfc3339(now.timestamp_millis()));
                r["purge_time"] = json!(crate::http::rfc3339(
                    (now + chrono::Duration::days(7)).timestamp_millis()
                ));
            } else if let Some(m) = r.as_object_mut() {
                m.remove("delete_time");
                m.remove("purge_time");
            }
            t.put(kind.coll(), name, r);
        }
        Ok::<_, ApiErr>(())
    })?;
    Ok(())
}

fn delete(emu: &Arc<Emu>, kind: Kind, name: &str, rec: Value, req: &Req) -> PgResult<Value> {
    let purge = req.qbool("purge")?;
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let project = project_of(name);
    match kind {
        Kind::Project => {
            let work = async move {
                let branches: Vec<(String, String)> = live_children(&emu2, Kind::Branch, &name2)
                    .into_iter()
                    .map(|(k, b)| (k, b["uid"].as_str().unwrap_or_default().to_string()))
                    .collect();
                for (b, uid) in &branches {
                    computes::drop_branch(&emu2, b, uid, purge).await?;
                }
                if purge {
                    take_records(&emu2, &name2)?;
                } else {
                    mark_deleted(&emu2, Kind::Project, &name2, true)?;
                }
                Ok(ops::empty())
            };
            ops::start(emu, name, "Project", lock_key(&project), work)
        }
        Kind::Branch => {
            if rec["status"]["default"] == json!(true) {
                return Err(PgErr::ManagedByParent(format!(
                    "Cannot delete root branch '{name}'"
                )));
            }
            if rec["status"]["is_protected"] == json!(true) {
                return Err(bad_request(format!(
                    "Cannot delete protected branch '{name}': set spec.is_protected to false first"
                )));
            }
            let uid = rec["uid"].as_str().unwrap_or_default().to_string();
            let work = async move {
                computes::drop_branch(&emu2, &name2, &uid, purge).await?;
                if purge {
                    take_records(&emu2, &name2)?;
                } else {
                    mark_deleted(&emu2, Kind::Branch, &name2, true)?;
                }
                Ok(ops::empty())
            };
            ops::start(emu, name, "Branch", lock_key(&project), work)
        }
        Kind::Endpoint => {
            if rec["status"]["endpoint_type"] == json!("ENDPOINT_TYPE_READ_WRITE") {
                return Err(PgErr::ManagedByParent(format!(
                    "Cannot delete read-write endpoint '{name}'"
                )));
            }
            let branch = rec["parent"].as_str().unwrap_or_default().to_string();
            let work = async move {
                computes::close_endpoint(&emu2, &name2);
                forget(&emu2, &[(Kind::Endpoint, name2.clone())]);
                computes::reconfigure(&emu2, &branch).await?;
                Ok(ops::empty())
            };
            ops::start(emu, name, "Endpoint", lock_key(&project), work)
        }
        Kind::Role => {
            let reassign = req.q("reassign_owned_to").map(str::to_string);
            if let Some(to) = &reassign {
                visible(emu, Kind::Role, to)?;
            }
            let work = async move {
                objects::drop_role_sql(&emu2, &name2, reassign.as_deref()).await?;
                forget(&emu2, &[(Kind::Role, name2.clone())]);
                Ok(ops::empty())
            };
            ops::start(emu, name, "Role", lock_key(&project), work)
        }
        Kind::Database => {
            let work = async move {
                objects::drop_database_sql(&emu2, &name2).await?;
                forget(&emu2, &[(Kind::Database, name2.clone())]);
                Ok(ops::empty())
            };
            ops::start(emu, name, "Database", lock_key(&project), work)
        }
        Kind::Catalog => objects::delete_catalog(emu, name, rec),
        Kind::SyncedTable => objects::delete_synced(emu, name, rec),
    }
}

/// Branches past their `expire_time` (§1.6: `ttl` / `expire_time`) are deleted for good,
/// servers and children with them, each by an operation of its own. A project's default
/// branch and protected branches never expire.
pub fn expire_branches(emu: &Arc<Emu>) {
    let now = Utc::now();
    for (name, b) in emu.store.all(BRANCHES) {
        let s = &b["status"];
        if is_deleted(&b)
            || b["_emu"]["ready"] != json!(true)
            || b["_emu"]["expiring"] == json!(true)
            || s["default"] == json!(true)
            || s["is_protected"] == json!(true)
        {
            continue;
        }
        match parse_time("expire_time", &s["expire_time"]) {
            Ok(at) if at <= now => {}
            _ => continue,
        }
        let mut marked = b.clone();
        marked["_emu"]["expiring"] = json!(true);
        if put(emu, Kind::Branch, &name, marked).is_err() {
            continue;
        }
        tracing::info!("branch {name} expired: deleting it");
        let uid = b["uid"].as_str().unwrap_or_default().to_string();
        let (emu2, name2) = (emu.clone(), name.clone());
        let work = async move {
            computes::drop_branch(&emu2, &name2, &uid, true).await?;
            take_records(&emu2, &name2)?;
            Ok(ops::empty())
        };
        if let Err(e) = ops::start(emu, &name, "Branch", lock_key(&project_of(&name)), work) {
            tracing::warn!("expiring {name}: {}", e.message());
        }
    }
}

pub fn undelete(emu: &Arc<Emu>, kind: Kind, name: &str) -> PgResult<Value> {
    let rec = emu
        .store
        .get(kind.coll(), name)
        .ok_or_else(|| not_found(kind.noun(), name))?;
    if !is_deleted(&rec) {
        return Err(bad_request(format!(
            "{} {name} is not deleted",
            kind.noun()
        )));
    }
    if kind == Kind::Branch {
        visible(emu, Kind::Project, &project_of(name))?;
    }
    mark_deleted(emu, kind, name, false)?;
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let prefix = format!("{name}/");
    let work = async move {
        // Endpoints serve again; their servers start on the first connection.
        let eps: Vec<(String, Value)> = emu2
            .store
            .all(ENDPOINTS)
            .into_iter()
            .filter(|(k, r)| k.starts_with(&prefix) && !hidden(&emu2, r))
            .collect();
        for (k, r) in eps {
            let host = computes::open_endpoint(&emu2, &k, r["uid"].as_str().unwrap_or("")).await?;
            set_host(&emu2, &k, &host)?;
        }
        current_view(&emu2, kind, &name2)
    };
    ops::start(emu, name, kind.label(), lock_key(&project_of(name)), work)
}
