//! Unity Catalog external locations and UC secrets (`/api/2.1/unity-catalog/external-locations`,
//! `/api/2.1/unity-catalog/secrets`; contract part 2 §6).
//!
//! External locations: id = name (lower-cased), `url` a cloud storage URL that may not overlap
//! another location's, `credential_name` taken as given (this workspace serves no storage
//! credentials API, so any non-empty name is accepted). Deleting one that an EXTERNAL volume
//! lies under needs `force=true`. `skip_validation` and `force` are request flags, never stored.
//!
//! Secrets: id = `catalog.schema.name` in an existing schema; `value` is input-only (at most
//! 60 KiB) and comes back as `effective_value` only with `include_value=true`. PATCH takes an
//! `update_mask` (`value`, `comment`, `owner`, `expire_time`, or `*`).
//!
//! Grants on both go through the shared UC grants route (securable types
//! `external_location` and `secret`), see [`securable_key`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Map, Value};

use super::http::{
    body, now_ms, ok, opt_bool, opt_str, qbool, query, req_str, rfc3339, ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};
use super::store::Txn;
use super::unity_catalog::{
    full_name, grants_key, identifier, paginate, schema_exists, schema_missing, stamp_created,
    stamp_updated, METASTORE_ID, UC_GRANTS, UC_VOLUMES,
};

pub const UC_EXTERNAL_LOCATIONS: &str = "uc_external_locations";
pub const UC_SECRETS: &str = "uc_secrets";
const BASE: &str = "/api/2.1/unity-catalog";
/// The service's limit on a secret value (pre-encryption).
const MAX_SECRET_BYTES: usize = 60 * 1024;

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(
            &format!("{BASE}/external-locations"),
            get(list_locations).post(create_location),
        )
        .route(
            &format!("{BASE}/external-locations/{{name}}"),
            get(get_location)
                .patch(update_location)
                .delete(delete_location),
        )
        .route(
            &format!("{BASE}/secrets"),
            get(list_secrets).post(create_secret),
        )
        .route(
            &format!("{BASE}/secrets/{{full_name}}"),
            get(get_secret).patch(update_secret).delete(delete_secret),
        )
}

/// Privileges grantable on the securable types of this module (None: not one of them).
pub fn applicable(securable: &str, privilege: &str) -> bool {
    match securable {
        "external_location" => matches!(
            privilege,
            "ALL_PRIVILEGES"
                | "BROWSE"
                | "CREATE_EXTERNAL_TABLE"
                | "CREATE_EXTERNAL_VOLUME"
                | "CREATE_MANAGED_STORAGE"
                | "EXTERNAL_USE_LOCATION"
                | "MANAGE"
                | "READ_FILES"
                | "WRITE_FILES"
        ),
        // READ_SECRET is not in the SDK's Privilege enum; UC accepts these on a secret.
        "secret" => matches!(privilege, "ALL_PRIVILEGES" | "MANAGE" | "READ_SECRET"),
        _ => false,
    }
}

/// The stored key of an existing external location or secret (`None`: not a securable type
/// of this module).
pub fn securable_key(emu: &Emu, securable: &str, full: &str) -> Option<Result<String, ApiErr>> {
    match securable {
        "external_location" => {
            let key = full.to_lowercase();
            Some(
                emu.store
                    .get(UC_EXTERNAL_LOCATIONS, &key)
                    .map(|_| key.clone())
                    .ok_or_else(|| location_missing(&key)),
            )
        }
        "secret" => Some(full_name("secret", full, 3).and_then(|p| {
            let key = p.join(".");
            emu.store
                .get(UC_SECRETS, &key)
                .map(|_| key.clone())
                .ok_or_else(|| secret_missing(&key))
        })),
        _ => None,
    }
}

/// Drop the secrets of a schema (`catalog.schema`) or of every schema of a catalog
/// (`catalog`), with their grants: a forced schema or catalog delete.
pub fn drop_secrets(t: &mut Txn<'_>, prefix: &str) {
    let p = format!("{prefix}.");
    let keys: Vec<String> = t
        .values(UC_SECRETS)
        .filter(|(k, _)| k.starts_with(&p))
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        t.delete(UC_SECRETS, &k);
        t.delete(UC_GRANTS, &grants_key("secret", &k));
    }
}

// ---------------------------------------------------------------------------
// External locations

fn location_missing(name: &str) -> ApiErr {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        "EXTERNAL_LOCATION_DOES_NOT_EXIST",
        format!("External Location '{name}' does not exist."),
    )
}

/// A cloud storage URL (`scheme://bucket/...`), without its trailing slash.
fn storage_url(url: &str) -> Result<String, ApiErr> {
    match url.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && !rest.trim_matches('/').is_empty() => {
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => Err(ApiErr::invalid(format!(
            "Invalid url '{url}': an external location's url is a cloud storage URL such as \
             s3://bucket/path"
        ))),
    }
}

/// `a` is `b` or lies beneath it.
fn url_under(a: &str, b: &str) -> bool {
    a == b || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'))
}

/// The other location whose URL overlaps `url`, if any.
fn overlapping(t: &Txn<'_>, url: &str, except: &str) -> Option<(String, String)> {
    t.values(UC_EXTERNAL_LOCATIONS)
        .filter(|(k, _)| k.as_str() != except)
        .filter_map(|(k, v)| Some((k.clone(), v["url"].as_str()?.to_string())))
        .find(|(_, u)| url_under(url, u) || url_under(u, url))
}

fn overlap_error(url: &str, other: &str, other_url: &str) -> ApiErr {
    ApiErr::invalid(format!(
        "Input path url '{url}' overlaps with an existing external location '{other}' \
         ({other_url}). Overlapping external locations are not allowed."
    ))
}

fn obj_field(b: &Map<String, Value>, field: &str) -> Result<Option<Value>, ApiErr> {
    match b.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(_) => Err(ApiErr::invalid(format!(
            "Field '{field}' must be an object"
        ))),
    }
}

const QUEUE_KINDS: &[&str] = &[
    "managed_sqs",
    "managed_aqs",
    "managed_pubsub",
    "provided_sqs",
    "provided_aqs",
    "provided_pubsub",
];

/// `file_event_queue` must name exactly one queue kind; a managed queue gets its resource id.
fn file_event_queue(v: &Value) -> Result<Value, ApiErr> {
    let m = v.as_object().cloned().unwrap_or_default();
    let set: Vec<&String> = m
        .keys()
        .filter(|k| QUEUE_KINDS.contains(&k.as_str()))
        .collect();
    if set.len() != 1 || m.len() != 1 {
        return Err(ApiErr::invalid(format!(
            "file_event_queue must set exactly one of {}",
            QUEUE_KINDS.join(", ")
        )));
    }
    let mut out = m;
    for (k, q) in out.iter_mut() {
        if let Value::Object(q) = q {
            if k.starts_with("managed_") {
                q.entry("managed_resource_id")
                    .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
            }
        }
    }
    Ok(Value::Object(out))
}

/// The `effective_*` twins from the requested settings: file events are on unless turned off,
/// and only take effect with a queue.
fn effective_file_events(rec: &mut Map<String, Value>) {
    let queue = rec.get("file_event_queue").cloned();
    let enabled = rec
        .get("enable_file_events")
        .and_then(Value::as_bool)
        .unwrap_or(true)
        && queue.is_some();
    rec.insert("effective_enable_file_events".into(), json!(enabled));
    match queue.filter(|_| enabled) {
        Some(q) => rec.insert("effective_file_event_queue".into(), q),
        None => rec.remove("effective_file_event_queue"),
    };
}

const LOCATION_STRINGS: &[&str] = &["comment", "credential_name"];
const LOCATION_BOOLS: &[&str] = &["read_only", "fallback", "enable_file_events"];

async fn create_location(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let name = identifier("external location name", req_str(&b, "name")?)?;
    let url = storage_url(req_str(&b, "url")?)?;
    req_str(&b, "credential_name")?;
    opt_bool(&b, "skip_validation")?;
    let mut rec = Map::new();
    rec.insert("name".into(), json!(name));
    rec.insert("url".into(), json!(url));
    for f in LOCATION_STRINGS {
        if let Some(v) = opt_str(&b, f)? {
            rec.insert((*f).into(), json!(v));
        }
    }
    for f in LOCATION_BOOLS {
        if let Some(v) = opt_bool(&b, f)? {
            rec.insert((*f).into(), json!(v));
        }
    }
    rec.entry("read_only").or_insert(json!(false));
    rec.entry("fallback").or_insert(json!(false));
    if let Some(e) = obj_field(&b, "encryption_details")? {
        rec.insert("encryption_details".into(), e);
    }
    if let Some(q) = obj_field(&b, "file_event_queue")? {
        rec.insert("file_event_queue".into(), file_event_queue(&q)?);
    }
    effective_file_events(&mut rec);
    rec.insert(
        "credential_id".into(),
        json!(uuid::Uuid::new_v4().to_string()),
    );
    rec.insert("isolation_mode".into(), json!("ISOLATION_MODE_OPEN"));
    rec.insert("browse_only".into(), json!(false));
    stamp_created(&mut rec, &caller);
    let rec = Value::Object(rec);
    emu.store.txn(|t| {
        if t.get(UC_EXTERNAL_LOCATIONS, &name).is_some() {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "EXTERNAL_LOCATION_ALREADY_EXISTS",
                format!("External Location '{name}' already exists"),
            ));
        }
        if let Some((other, other_url)) = overlapping(t, &url, &name) {
            return Err(overlap_error(&url, &other, &other_url));
        }
        t.put(UC_EXTERNAL_LOCATIONS, &name, rec.clone());
        Ok(())
    })?;
    ok(rec)
}

async fn get_location(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    let key = name.to_lowercase();
    ok(emu
        .store
        .get(UC_EXTERNAL_LOCATIONS, &key)
        .ok_or_else(|| location_missing(&key))?)
}

async fn list_locations(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    paginate(
        emu.store.all(UC_EXTERNAL_LOCATIONS),
        &q,
        "external_locations",
    )
}

const LOCATION_UPDATABLE: &[&str] = &[
    "name",
    "new_name",
    "url",
    "credential_name",
    "comment",
    "read_only",
    "fallback",
    "owner",
    "encryption_details",
    "enable_file_events",
    "file_event_queue",
    "skip_validation",
    "force",
    "isolation_mode",
];

async fn update_location(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    super::unity_catalog::reject_unknown(&b, LOCATION_UPDATABLE, "UpdateExternalLocation")?;
    let key = name.to_lowercase();
    let new_name = match opt_str(&b, "new_name")? {
        Some(n) => Some(identifier("external location name", n)?),
        None => None,
    };
    let url = match opt_str(&b, "url")? {
        Some(u) => Some(storage_url(u)?),
        None => None,
    };
    let mut patch = Map::new();
    for f in ["comment", "credential_name", "owner", "isolation_mode"] {
        if let Some(v) = opt_str(&b, f)? {
            patch.insert(f.into(), json!(v));
        }
    }
    for f in LOCATION_BOOLS {
        if let Some(v) = opt_bool(&b, f)? {
            patch.insert((*f).into(), json!(v));
        }
    }
    if let Some(e) = obj_field(&b, "encryption_details")? {
        patch.insert("encryption_details".into(), e);
    }
    if let Some(q) = obj_field(&b, "file_event_queue")? {
        patch.insert("file_event_queue".into(), file_event_queue(&q)?);
    }
    let rec = emu.store.txn(|t| {
        let mut rec = t
            .get(UC_EXTERNAL_LOCATIONS, &key)
            .cloned()
            .ok_or_else(|| location_missing(&key))?;
        let Some(m) = rec.as_object_mut() else {
            return Err(ApiErr::internal(
                "external location record is not an object",
            ));
        };
        if let Some(u) = &url {
            if let Some((other, other_url)) = overlapping(t, u, &key) {
                return Err(overlap_error(u, &other, &other_url));
            }
            m.insert("url".into(), json!(u));
        }
        for (k, v) in patch {
            m.insert(k, v);
        }
        effective_file_events(m);
        stamp_updated(m, &caller);
        match new_name.filter(|n| *n != key) {
            Some(new) => {
                if t.get(UC_EXTERNAL_LOCATIONS, &new).is_some() {
                    return Err(ApiErr::new(
                        StatusCode::CONFLICT,
                        "EXTERNAL_LOCATION_ALREADY_EXISTS",
                        format!("External Location '{new}' already exists"),
                    ));
                }
                m.insert("name".into(), json!(new));
                t.delete(UC_EXTERNAL_LOCATIONS, &key);
                t.put(UC_EXTERNAL_LOCATIONS, &new, rec.clone());
                if let Some(g) = t.delete(UC_GRANTS, &grants_key("external_location", &key)) {
                    t.put(UC_GRANTS, &grants_key("external_location", &new), g);
                }
            }
            None => t.put(UC_EXTERNAL_LOCATIONS, &key, rec.clone()),
        }
        Ok(rec)
    })?;
    ok(rec)
}

async fn delete_location(
    State(emu): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query(q.as_deref());
    let force = qbool(&q, "force")?.unwrap_or(false);
    let key = name.to_lowercase();
    emu.store.txn(|t| {
        let rec = t
            .get(UC_EXTERNAL_LOCATIONS, &key)
            .cloned()
            .ok_or_else(|| location_missing(&key))?;
        let url = rec["url"].as_str().unwrap_or_default();
        let dependents: Vec<String> = t
            .values(UC_VOLUMES)
            .filter(|(_, v)| {
                v["volume_type"] == "EXTERNAL"
                    && v["storage_location"]
                        .as_str()
                        .is_some_and(|l| url_under(l, url))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if !dependents.is_empty() && !force {
            return Err(ApiErr::invalid(format!(
                "External Location '{key}' has dependent volumes ({}); delete them first or \
                 pass force=true",
                dependents.join(", ")
            )));
        }
        t.delete(UC_EXTERNAL_LOCATIONS, &key);
        t.delete(UC_GRANTS, &grants_key("external_location", &key));
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

// ---------------------------------------------------------------------------
// Secrets

fn secret_missing(full: &str) -> ApiErr {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        "SECRET_DOES_NOT_EXIST",
        format!("Secret '{full}' does not exist."),
    )
}

fn secret_value(v: &str) -> Result<String, ApiErr> {
    if v.len() > MAX_SECRET_BYTES {
        return Err(ApiErr::invalid(format!(
            "The secret value is {} bytes; the maximum is {MAX_SECRET_BYTES} bytes (60 KiB)",
            v.len()
        )));
    }
    Ok(v.to_string())
}

/// An RFC 3339 time (the `expire_time` the SDK sends).
fn timestamp(field: &str, v: &str) -> Result<String, ApiErr> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        })
        .map_err(|_| {
            ApiErr::invalid(format!(
                "Field '{field}' must be an RFC 3339 time, got '{v}'"
            ))
        })
}

/// The stored value never leaves with the record; `effective_value` only when asked.
fn secret_view(rec: &Value, include_value: bool) -> Value {
    let mut out = rec.clone();
    if let Some(m) = out.as_object_mut() {
        let value = m.remove("value");
        if include_value {
            if let Some(v) = value {
                m.insert("effective_value".into(), v);
            }
        }
    }
    out
}

async fn create_secret(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let catalog = identifier("catalog name", req_str(&b, "catalog_name")?)?;
    let schema = identifier("schema name", req_str(&b, "schema_name")?)?;
    let name = identifier("secret name", req_str(&b, "name")?)?;
    let value = secret_value(req_str(&b, "value")?)?;
    let schema_full = format!("{catalog}.{schema}");
    let full = format!("{schema_full}.{name}");
    let now = now_ms();
    let mut rec = Map::new();
    rec.insert("name".into(), json!(name));
    rec.insert("catalog_name".into(), json!(catalog));
    rec.insert("schema_name".into(), json!(schema));
    rec.insert("full_name".into(), json!(full));
    rec.insert("value".into(), json!(value));
    if let Some(c) = opt_str(&b, "comment")? {
        rec.insert("comment".into(), json!(c));
    }
    if let Some(e) = opt_str(&b, "expire_time")? {
        rec.insert("expire_time".into(), json!(timestamp("expire_time", e)?));
    }
    let owner = opt_str(&b, "owner")?
        .map(str::to_string)
        .unwrap_or_else(|| caller.user_name.clone());
    rec.insert("owner".into(), json!(owner));
    rec.insert("effective_owner".into(), json!(owner));
    rec.insert("metastore_id".into(), json!(METASTORE_ID));
    rec.insert("created_by".into(), json!(caller.user_name));
    rec.insert("updated_by".into(), json!(caller.user_name));
    rec.insert("create_time".into(), json!(rfc3339(now)));
    rec.insert("update_time".into(), json!(rfc3339(now)));
    let rec = Value::Object(rec);
    if !schema_exists(&emu, &schema_full) {
        return Err(schema_missing(&schema_full));
    }
    emu.store.txn(|t| {
        if t.get(UC_SECRETS, &full).is_some() {
            return Err(ApiErr::exists(format!("Secret '{full}' already exists")));
        }
        t.put(UC_SECRETS, &full, rec.clone());
        Ok(())
    })?;
    ok(secret_view(&rec, false))
}

async fn get_secret(
    State(emu): Shared,
    Path(full): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query(q.as_deref());
    let include = qbool(&q, "include_value")?.unwrap_or(false);
    let key = full_name("secret", &full, 3)?.join(".");
    let rec = emu
        .store
        .get(UC_SECRETS, &key)
        .ok_or_else(|| secret_missing(&key))?;
    ok(secret_view(&rec, include))
}

async fn list_secrets(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let mut q = query(q.as_deref());
    let catalog = q.get("catalog_name").filter(|s| !s.is_empty()).cloned();
    let schema = q.get("schema_name").filter(|s| !s.is_empty()).cloned();
    let prefix = match (catalog, schema) {
        (Some(c), Some(s)) => {
            let full = format!("{}.{}", c.to_lowercase(), s.to_lowercase());
            if !schema_exists(&emu, &full) {
                return Err(schema_missing(&full));
            }
            Some(format!("{full}."))
        }
        (None, None) => None,
        _ => {
            return Err(ApiErr::invalid(
                "catalog_name and schema_name must be specified together",
            ))
        }
    };
    // This API pages with `page_size` (the other UC lists use `max_results`).
    if let Some(n) = q.remove("page_size") {
        if n.parse::<i64>().is_ok_and(|n| n < 0) {
            return Err(ApiErr::invalid("page_size must not be negative"));
        }
        q.insert("max_results".into(), n);
    }
    let items = emu
        .store
        .all(UC_SECRETS)
        .into_iter()
        .filter(|(k, _)| prefix.as_ref().is_none_or(|p| k.starts_with(p)))
        .map(|(k, v)| {
            let view = secret_view(&v, false);
            (k, view)
        })
        .collect();
    paginate(items, &q, "secrets")
}

const SECRET_MASKABLE: &[&str] = &["value", "comment", "owner", "expire_time"];

async fn update_secret(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(full): Path<String>,
    RawQuery(q): RawQuery,
    raw: Bytes,
) -> ApiResult {
    let q = query(q.as_deref());
    let b = body(&raw)?;
    let key = full_name("secret", &full, 3)?.join(".");
    let mask = q
        .get("update_mask")
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| ApiErr::missing("update_mask"))?;
    let fields: Vec<String> = if mask.trim() == "*" {
        SECRET_MASKABLE
            .iter()
            .filter(|f| b.get(**f).is_some_and(|v| !v.is_null()))
            .map(|f| f.to_string())
            .collect()
    } else {
        mask.split(',').map(|f| f.trim().to_string()).collect()
    };
    let mut patch = Map::new();
    for f in &fields {
        if !SECRET_MASKABLE.contains(&f.as_str()) {
            return Err(ApiErr::invalid(format!(
                "update_mask field '{f}' cannot be updated; updatable fields are {} \
                 (to change the name, delete and recreate the secret)",
                SECRET_MASKABLE.join(", ")
            )));
        }
        let v = match f.as_str() {
            "value" => json!(secret_value(req_str(&b, "value")?)?),
            "expire_time" => match opt_str(&b, "expire_time")? {
                Some(e) => json!(timestamp("expire_time", e)?),
                None => Value::Null,
            },
            "owner" => json!(req_str(&b, "owner")?),
            _ => json!(opt_str(&b, f)?.unwrap_or_default()),
        };
        patch.insert(f.clone(), v);
    }
    let rec = emu.store.txn(|t| {
        let mut rec = t
            .get(UC_SECRETS, &key)
            .cloned()
            .ok_or_else(|| secret_missing(&key))?;
        let Some(m) = rec.as_object_mut() else {
            return Err(ApiErr::internal("secret record is not an object"));
        };
        for (k, v) in patch {
            if v.is_null() {
                m.remove(&k);
            } else {
                if k == "owner" {
                    m.insert("effective_owner".into(), v.clone());
                }
                m.insert(k, v);
            }
        }
        m.insert("update_time".into(), json!(rfc3339(now_ms())));
        m.insert("updated_by".into(), json!(caller.user_name));
        t.put(UC_SECRETS, &key, rec.clone());
        Ok(rec)
    })?;
    ok(secret_view(&rec, false))
}

async fn delete_secret(State(emu): Shared, Path(full): Path<String>) -> ApiResult {
    let key = full_name("secret", &full, 3)?.join(".");
    emu.store.txn(|t| {
        t.delete(UC_SECRETS, &key)
            .ok_or_else(|| secret_missing(&key))?;
        t.delete(UC_GRANTS, &grants_key("secret", &key));
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
