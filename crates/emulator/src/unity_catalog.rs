//! Unity Catalog catalogs, schemas, volumes and their grants (`/api/2.1/unity-catalog/...`,
//! contract part 2 §2).
//!
//! All synchronous. Names are lower-cased on create and looked up case-insensitively, as
//! UC does. UC-specific error codes (`CATALOG_ALREADY_EXISTS`, `SCHEMA_DOES_NOT_EXIST`,
//! `CATALOG_NOT_EMPTY`, ...) travel with the status a client classifies them by (404
//! missing, 409 exists, 400 refused).
//!
//! One namespace of catalogs: a database catalog (`/api/2.0/database/catalogs`, a
//! PostgreSQL database registered in UC) is a catalog too. It is listed and read here
//! (`catalog_type: MANAGED_ONLINE_CATALOG`), its name cannot be taken by a UC catalog (nor
//! the reverse, see `catalogs::create_catalog`), and it is managed only through its own
//! API: its schemas are PostgreSQL schemas, so no UC schema is created inside it.
//!
//! The lake directory (`--lake-dir`, default `<data-dir>/lake`, where synced tables read
//! `<lake>/<catalog>/<schema>/<table>.csv`) shows in the same namespace: each directory
//! `<lake>/<catalog>` is a catalog and each `<lake>/<catalog>/<schema>` a schema (names that
//! are lower-case identifiers only), so a bundle can put schemas and volumes in the catalog
//! its synced tables read from. They are read-only here (no update, no delete).
//!
//! Grants are stored per securable (`uc_grants`, key `<type>/<full_name>`) as
//! `{principal: [privileges]}`; renames move them, deletes drop them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{json, Map, Value};

use super::catalogs::CATALOGS as DB_CATALOGS;
use super::http::{
    body, decode_token, encode_token, now_ms, ok, opt_str, page_size, qbool, query, req_str,
    ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};
use super::store::Txn;

pub const UC_CATALOGS: &str = "uc_catalogs";
pub const UC_SCHEMAS: &str = "uc_schemas";
pub const UC_VOLUMES: &str = "uc_volumes";
pub(crate) const UC_GRANTS: &str = "uc_grants";
const BASE: &str = "/api/2.1/unity-catalog";
/// The one metastore of the emulated workspace.
pub const METASTORE_ID: &str = "11111111-2222-4333-8444-555555555555";
const MAX_PAGE: usize = 1000;

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(
            &format!("{BASE}/catalogs"),
            get(list_catalogs).post(create_catalog),
        )
        .route(
            &format!("{BASE}/catalogs/{{name}}"),
            get(get_catalog)
                .patch(update_catalog)
                .delete(delete_catalog),
        )
        .route(
            &format!("{BASE}/schemas"),
            get(list_schemas).post(create_schema),
        )
        .route(
            &format!("{BASE}/schemas/{{full_name}}"),
            get(get_schema).patch(update_schema).delete(delete_schema),
        )
        .route(
            &format!("{BASE}/volumes"),
            get(list_volumes).post(create_volume),
        )
        .route(
            &format!("{BASE}/volumes/{{full_name}}"),
            get(get_volume).patch(update_volume).delete(delete_volume),
        )
        .route(
            &format!("{BASE}/permissions/{{securable_type}}/{{full_name}}"),
            get(get_grants).patch(update_grants),
        )
}

// ---------------------------------------------------------------------------
// Errors and validation

fn uc_err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiErr {
    ApiErr::new(status, code, message)
}

fn catalog_missing(name: &str) -> ApiErr {
    uc_err(
        StatusCode::NOT_FOUND,
        "CATALOG_DOES_NOT_EXIST",
        format!("Catalog '{name}' does not exist."),
    )
}

pub(crate) fn schema_missing(full_name: &str) -> ApiErr {
    uc_err(
        StatusCode::NOT_FOUND,
        "SCHEMA_DOES_NOT_EXIST",
        format!("Schema '{full_name}' does not exist."),
    )
}

fn volume_missing(full_name: &str) -> ApiErr {
    uc_err(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Volume '{full_name}' does not exist."),
    )
}

fn catalog_exists(name: &str) -> ApiErr {
    uc_err(
        StatusCode::CONFLICT,
        "CATALOG_ALREADY_EXISTS",
        format!("Catalog '{name}' already exists"),
    )
}

/// One UC identifier: non-empty, at most 255 characters, no `.`, `/`, spaces or control
/// characters (they would break three-part names and paths).
pub(crate) fn identifier(what: &str, s: &str) -> Result<String, ApiErr> {
    let ok = !s.is_empty()
        && s.chars().count() <= 255
        && !s
            .chars()
            .any(|c| c == '.' || c == '/' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(s.to_lowercase())
    } else {
        Err(ApiErr::invalid(format!(
            "Invalid {what} '{s}': a name must be non-empty, at most 255 characters, and \
             contain no '.', '/', spaces or control characters"
        )))
    }
}

/// `a.b` (schemas) or `a.b.c` (volumes), each part an identifier; lower-cased.
pub(crate) fn full_name(what: &str, s: &str, parts: usize) -> Result<Vec<String>, ApiErr> {
    let split: Vec<&str> = s.split('.').collect();
    if split.len() != parts {
        let shape = if parts == 2 {
            "catalog.schema"
        } else {
            "catalog.schema.volume"
        };
        return Err(ApiErr::invalid(format!(
            "Invalid {what} full name '{s}': expected {shape}"
        )));
    }
    split.into_iter().map(|p| identifier(what, p)).collect()
}

/// Optional map of strings (`properties`, `options`).
fn string_map(b: &Map<String, Value>, field: &str) -> Result<Option<Value>, ApiErr> {
    match b.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => {
            Ok(Some(Value::Object(m.clone())))
        }
        Some(_) => Err(ApiErr::invalid(format!(
            "Field '{field}' must be a map of strings"
        ))),
    }
}

fn opt_i64_field(b: &Map<String, Value>, field: &str) -> Result<Option<i64>, ApiErr> {
    super::http::opt_int(b, field)
}

/// Copy optional scalar/map fields of a create body into a record.
fn copy_fields(
    b: &Map<String, Value>,
    rec: &mut Map<String, Value>,
    strings: &[&str],
    maps: &[&str],
    ints: &[&str],
) -> Result<(), ApiErr> {
    for f in strings {
        if let Some(v) = opt_str(b, f)? {
            rec.insert((*f).into(), Value::String(v.to_string()));
        }
    }
    for f in maps {
        if let Some(v) = string_map(b, f)? {
            rec.insert((*f).into(), v);
        }
    }
    for f in ints {
        if let Some(v) = opt_i64_field(b, f)? {
            rec.insert((*f).into(), Value::from(v));
        }
    }
    Ok(())
}

pub(crate) fn stamp_created(rec: &mut Map<String, Value>, caller: &Caller) {
    let now = now_ms();
    rec.insert("owner".into(), Value::String(caller.user_name.clone()));
    rec.insert("metastore_id".into(), Value::String(METASTORE_ID.into()));
    rec.insert("created_at".into(), Value::from(now));
    rec.insert("created_by".into(), Value::String(caller.user_name.clone()));
    rec.insert("updated_at".into(), Value::from(now));
    rec.insert("updated_by".into(), Value::String(caller.user_name.clone()));
}

pub(crate) fn stamp_updated(rec: &mut Map<String, Value>, caller: &Caller) {
    rec.insert("updated_at".into(), Value::from(now_ms()));
    rec.insert("updated_by".into(), Value::String(caller.user_name.clone()));
}

pub(crate) fn reject_unknown(
    b: &Map<String, Value>,
    allowed: &[&str],
    op: &str,
) -> Result<(), ApiErr> {
    match b.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiErr::invalid(format!(
            "{op}: field '{k}' cannot be updated; updatable fields are {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A page of `items` (already sorted by `key`) after the `page_token`, at most
/// `max_results` (0 or absent = all, as UC's `max_results=0`).
pub(crate) fn paginate(
    items: Vec<(String, Value)>,
    q: &HashMap<String, String>,
    list_key: &str,
) -> ApiResult {
    let limit = page_size(q, "max_results", usize::MAX, MAX_PAGE)?;
    let after = decode_token(q.get("page_token"))?;
    let mut page = Vec::new();
    let mut more = false;
    for (k, v) in items {
        if after.as_deref().is_some_and(|a| k.as_str() <= a) {
            continue;
        }
        if page.len() == limit {
            more = true;
            break;
        }
        page.push((k, v));
    }
    let mut out = Map::new();
    let next = more
        .then(|| page.last().map(|(k, _)| encode_token(k)))
        .flatten();
    out.insert(
        list_key.into(),
        Value::Array(page.into_iter().map(|(_, v)| v).collect()),
    );
    if let Some(t) = next {
        out.insert("next_page_token".into(), Value::String(t));
    }
    ok(Value::Object(out))
}

// ---------------------------------------------------------------------------
// Catalogs

/// A database catalog as UC shows it.
fn db_catalog_info(rec: &Value) -> Value {
    let name = rec.get("name").and_then(Value::as_str).unwrap_or_default();
    json!({
        "name": name,
        "full_name": name,
        "catalog_type": "MANAGED_ONLINE_CATALOG",
        "securable_type": "CATALOG",
        "isolation_mode": "OPEN",
        "metastore_id": METASTORE_ID,
        "comment": format!(
            "Database catalog over database '{}' of database instance '{}'",
            rec.get("database_name").and_then(Value::as_str).unwrap_or_default(),
            rec.get("database_instance_name").and_then(Value::as_str).unwrap_or_default()
        ),
    })
}

/// Where a catalog comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Uc,
    Database,
    Lake,
}

/// The lake directory.
fn lake_root(emu: &Emu) -> PathBuf {
    emu.cfg.lake().0
}

/// A lake directory name that is a catalog or schema name: a lower-case identifier.
fn lake_name(name: &str) -> bool {
    identifier("name", name).is_ok_and(|n| n == name)
}

/// Directory names under `dir` that are lake names, sorted.
fn lake_dirs(dir: &FsPath) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| lake_name(n))
        .collect();
    out.sort();
    out
}

fn lake_catalog_exists(root: &FsPath, name: &str) -> bool {
    lake_name(name) && root.join(name).is_dir()
}

fn lake_schema_exists(root: &FsPath, catalog: &str, schema: &str) -> bool {
    lake_name(catalog) && lake_name(schema) && root.join(catalog).join(schema).is_dir()
}

fn lake_catalog_info(root: &FsPath, name: &str) -> Value {
    json!({
        "name": name,
        "full_name": name,
        "catalog_type": "MANAGED_CATALOG",
        "securable_type": "CATALOG",
        "isolation_mode": "OPEN",
        "metastore_id": METASTORE_ID,
        "owner": "lake",
        "storage_location": format!("file://{}", root.join(name).display()),
        "comment": "Lake directory of the emulated workspace",
    })
}

fn lake_schema_info(root: &FsPath, catalog: &str, schema: &str) -> Value {
    json!({
        "name": schema,
        "catalog_name": catalog,
        "full_name": format!("{catalog}.{schema}"),
        "catalog_type": "MANAGED_CATALOG",
        "metastore_id": METASTORE_ID,
        "owner": "lake",
        "storage_location": format!("file://{}", root.join(catalog).join(schema).display()),
        "comment": "Lake directory of the emulated workspace",
    })
}

fn read_only_lake(what: &str, name: &str) -> ApiErr {
    ApiErr::invalid(format!(
        "{what} '{name}' is a directory of the lake (read-only in this workspace); change \
         it on disk"
    ))
}

/// A UC catalog, a database catalog or a lake catalog of that name (names compare
/// lower-cased).
fn any_catalog(emu: &Emu, name: &str) -> Option<(Value, Origin)> {
    let lower = name.to_lowercase();
    if let Some(c) = emu.store.get(UC_CATALOGS, &lower) {
        return Some((c, Origin::Uc));
    }
    if let Some(v) = emu
        .store
        .all(DB_CATALOGS)
        .into_iter()
        .find(|(k, _)| k.to_lowercase() == lower)
        .map(|(_, v)| (db_catalog_info(&v), Origin::Database))
    {
        return Some(v);
    }
    let root = lake_root(emu);
    lake_catalog_exists(&root, &lower).then(|| (lake_catalog_info(&root, &lower), Origin::Lake))
}

/// A UC schema or a lake schema of that full name.
fn any_schema(emu: &Emu, key: &str) -> Option<(Value, Origin)> {
    if let Some(s) = emu.store.get(UC_SCHEMAS, key) {
        return Some((s, Origin::Uc));
    }
    let (c, s) = key.split_once('.')?;
    let root = lake_root(emu);
    lake_schema_exists(&root, c, s).then(|| (lake_schema_info(&root, c, s), Origin::Lake))
}

/// Whether a UC catalog of this name exists (for the database catalog API's own check).
pub fn uc_catalog_exists(t: &Txn<'_>, name: &str) -> bool {
    t.get(UC_CATALOGS, &name.to_lowercase()).is_some()
}

fn db_catalog_taken(t: &Txn<'_>, lower: &str) -> bool {
    t.values(DB_CATALOGS)
        .any(|(k, _)| k.to_lowercase() == lower)
}

async fn create_catalog(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let name = identifier("catalog name", req_str(&b, "name")?)?;
    let mut rec = Map::new();
    rec.insert("name".into(), Value::String(name.clone()));
    rec.insert("full_name".into(), Value::String(name.clone()));
    copy_fields(
        &b,
        &mut rec,
        &[
            "comment",
            "storage_root",
            "connection_name",
            "provider_name",
            "share_name",
        ],
        &["properties", "options"],
        &["custom_max_retention_hours"],
    )?;
    let catalog_type = if rec.contains_key("share_name") || rec.contains_key("provider_name") {
        if !(rec.contains_key("share_name") && rec.contains_key("provider_name")) {
            return Err(ApiErr::invalid(
                "CreateCatalog: a Delta Sharing catalog needs both provider_name and share_name",
            ));
        }
        "DELTASHARING_CATALOG"
    } else if rec.contains_key("connection_name") {
        "FOREIGN_CATALOG"
    } else {
        "MANAGED_CATALOG"
    };
    rec.insert("catalog_type".into(), Value::String(catalog_type.into()));
    rec.insert("securable_type".into(), Value::String("CATALOG".into()));
    rec.insert("isolation_mode".into(), Value::String("OPEN".into()));
    let location = match rec.get("storage_root").and_then(Value::as_str) {
        Some(root) => format!(
            "{}/__unitystorage/catalogs/{}",
            root.trim_end_matches('/'),
            uuid::Uuid::new_v4()
        ),
        None => format!(
            "s3://lakebundle-emulator/metastore/{METASTORE_ID}/catalogs/{}",
            uuid::Uuid::new_v4()
        ),
    };
    rec.insert("storage_location".into(), Value::String(location));
    stamp_created(&mut rec, &caller);
    let rec = Value::Object(rec);
    let root = lake_root(&emu);
    emu.store.txn(|t| {
        if t.get(UC_CATALOGS, &name).is_some()
            || db_catalog_taken(t, &name)
            || lake_catalog_exists(&root, &name)
        {
            return Err(catalog_exists(&name));
        }
        t.put(UC_CATALOGS, &name, rec.clone());
        Ok(())
    })?;
    ok(rec)
}

async fn get_catalog(State(emu): Shared, Path(name): Path<String>) -> ApiResult {
    ok(any_catalog(&emu, &name)
        .ok_or_else(|| catalog_missing(&name))?
        .0)
}

async fn list_catalogs(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let mut all: BTreeMap<String, Value> = emu.store.all(UC_CATALOGS).into_iter().collect();
    for (_, v) in emu.store.all(DB_CATALOGS) {
        let info = db_catalog_info(&v);
        let key = info["name"].as_str().unwrap_or_default().to_lowercase();
        all.entry(key).or_insert(info);
    }
    let root = lake_root(&emu);
    for name in lake_dirs(&root) {
        let info = lake_catalog_info(&root, &name);
        all.entry(name).or_insert(info);
    }
    paginate(all.into_iter().collect(), &q, "catalogs")
}

/// Keys under `collection` whose full name starts with `prefix.` (children of a catalog or
/// schema).
fn children(t: &Txn<'_>, collection: &str, prefix: &str) -> Vec<String> {
    let p = format!("{prefix}.");
    t.values(collection)
        .filter(|(k, _)| k.starts_with(&p))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Drop the grants of a deleted securable (other services' securables: a UC
/// model, a vector search index).
pub fn forget_grants(t: &mut Txn<'_>, securable: &str, full_name: &str) {
    t.delete(UC_GRANTS, &grants_key(securable, full_name));
}

/// Whether a schema (`catalog.schema`) exists, for the securables other services keep in it.
pub fn schema_exists(emu: &Emu, full: &str) -> bool {
    any_schema(emu, &full.to_lowercase()).is_some()
}

pub(crate) fn grants_key(securable: &str, full_name: &str) -> String {
    format!("{securable}/{full_name}")
}

pub fn move_grants(t: &mut Txn<'_>, securable: &str, from: &str, to: &str) {
    if let Some(g) = t.delete(UC_GRANTS, &grants_key(securable, from)) {
        t.put(UC_GRANTS, &grants_key(securable, to), g);
    }
}

/// Rename every child record under `old.` to `new.`, fixing the name fields inside.
fn rename_children(t: &mut Txn<'_>, old: &str, new: &str, catalog_level: bool) {
    for (collection, securable) in [(UC_SCHEMAS, "schema"), (UC_VOLUMES, "volume")] {
        for key in children(t, collection, old) {
            let Some(mut rec) = t.delete(collection, &key) else {
                continue;
            };
            let new_key = format!("{new}{}", &key[old.len()..]);
            if let Some(m) = rec.as_object_mut() {
                m.insert("full_name".into(), Value::String(new_key.clone()));
                if catalog_level {
                    m.insert("catalog_name".into(), Value::String(new.into()));
                } else if collection == UC_VOLUMES {
                    let schema = new.rsplit('.').next().unwrap_or(new);
                    m.insert("schema_name".into(), Value::String(schema.into()));
                }
            }
            t.put(collection, &new_key, rec);
            move_grants(t, securable, &key, &new_key);
        }
    }
}

fn drop_children(t: &mut Txn<'_>, prefix: &str) {
    for (collection, securable) in [(UC_VOLUMES, "volume"), (UC_SCHEMAS, "schema")] {
        for key in children(t, collection, prefix) {
            t.delete(collection, &key);
            t.delete(UC_GRANTS, &grants_key(securable, &key));
        }
    }
    // Secrets live in schemas too: a forced delete takes them along.
    super::uc_more::drop_secrets(t, prefix);
}

const CATALOG_UPDATABLE: &[&str] = &[
    "name",
    "comment",
    "properties",
    "options",
    "custom_max_retention_hours",
    "managed_encryption_settings",
    "new_name",
    "owner",
    "isolation_mode",
    "enable_predictive_optimization",
];

async fn update_catalog(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    reject_unknown(&b, CATALOG_UPDATABLE, "UpdateCatalog")?;
    let name = name.to_lowercase();
    let new_name = match opt_str(&b, "new_name")? {
        Some(n) => Some(identifier("catalog name", n)?),
        None => None,
    };
    let mut patch = Map::new();
    copy_fields(
        &b,
        &mut patch,
        &[
            "comment",
            "owner",
            "isolation_mode",
            "enable_predictive_optimization",
        ],
        &["properties", "options"],
        &["custom_max_retention_hours"],
    )?;
    if let Some(mode) = patch.get("isolation_mode").and_then(Value::as_str) {
        if mode != "OPEN" && mode != "ISOLATED" {
            return Err(ApiErr::invalid(format!(
                "Invalid isolation_mode '{mode}': expected OPEN or ISOLATED"
            )));
        }
    }
    if let Some(v) = b.get("managed_encryption_settings") {
        patch.insert("managed_encryption_settings".into(), v.clone());
    }
    match any_catalog(&emu, &name).map(|(_, o)| o) {
        Some(Origin::Database) => {
            return Err(ApiErr::invalid(format!(
            "Catalog '{name}' is a database catalog; manage it through /api/2.0/database/catalogs"
        )))
        }
        Some(Origin::Lake) => return Err(read_only_lake("Catalog", &name)),
        _ => {}
    }
    let root = lake_root(&emu);
    let rec = emu.store.txn(|t| {
        let mut rec = t
            .get(UC_CATALOGS, &name)
            .cloned()
            .ok_or_else(|| catalog_missing(&name))?;
        let Some(m) = rec.as_object_mut() else {
            return Err(ApiErr::internal("catalog record is not an object"));
        };
        for (k, v) in patch {
            m.insert(k, v);
        }
        stamp_updated(m, &caller);
        match new_name.filter(|n| *n != name) {
            Some(new) => {
                if t.get(UC_CATALOGS, &new).is_some()
                    || db_catalog_taken(t, &new)
                    || lake_catalog_exists(&root, &new)
                {
                    return Err(catalog_exists(&new));
                }
                m.insert("name".into(), Value::String(new.clone()));
                m.insert("full_name".into(), Value::String(new.clone()));
                t.delete(UC_CATALOGS, &name);
                t.put(UC_CATALOGS, &new, rec.clone());
                move_grants(t, "catalog", &name, &new);
                rename_children(t, &name, &new, true);
            }
            None => t.put(UC_CATALOGS, &name, rec.clone()),
        }
        Ok(rec)
    })?;
    ok(rec)
}

async fn delete_catalog(
    State(emu): Shared,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query(q.as_deref());
    let force = qbool(&q, "force")?.unwrap_or(false);
    let name = name.to_lowercase();
    match any_catalog(&emu, &name).map(|(_, o)| o) {
        Some(Origin::Database) => {
            return Err(ApiErr::invalid(format!(
            "Catalog '{name}' is a database catalog; delete it through /api/2.0/database/catalogs"
        )))
        }
        Some(Origin::Lake) => return Err(read_only_lake("Catalog", &name)),
        _ => {}
    }
    delete_container(&emu, &Container::CATALOG, &name, force)
}

// ---------------------------------------------------------------------------
// Schemas

/// The UC catalog a schema goes into; a database catalog or a missing one refuses.
/// The last part of a dotted full name.
fn name_of(full: &str) -> String {
    full.rsplit('.').next().unwrap_or(full).to_string()
}

fn schema_parent(t: &Txn<'_>, root: &FsPath, catalog: &str) -> Result<(), ApiErr> {
    if t.get(UC_CATALOGS, catalog).is_some() || lake_catalog_exists(root, catalog) {
        return Ok(());
    }
    if db_catalog_taken(t, catalog) {
        return Err(ApiErr::invalid(format!(
            "Catalog '{catalog}' is a database catalog: its schemas are the PostgreSQL \
             schemas of its database and cannot be created through Unity Catalog"
        )));
    }
    Err(catalog_missing(catalog))
}

async fn create_schema(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let name = identifier("schema name", req_str(&b, "name")?)?;
    let catalog = identifier("catalog name", req_str(&b, "catalog_name")?)?;
    let full = format!("{catalog}.{name}");
    let mut rec = Map::new();
    rec.insert("name".into(), Value::String(name));
    rec.insert("catalog_name".into(), Value::String(catalog.clone()));
    rec.insert("full_name".into(), Value::String(full.clone()));
    copy_fields(
        &b,
        &mut rec,
        &["comment", "storage_root"],
        &["properties"],
        &["custom_max_retention_hours"],
    )?;
    if let Some(Value::String(root)) = rec.get_mut("storage_root") {
        // UC stores the root without its trailing slash (contract §2.2).
        *root = root.trim_end_matches('/').to_string();
    }
    let schema_id = uuid::Uuid::new_v4().to_string();
    let location = match rec.get("storage_root").and_then(Value::as_str) {
        Some(root) => format!("{root}/__unitystorage/schemas/{schema_id}"),
        None => format!("s3://lakebundle-emulator/metastore/{METASTORE_ID}/schemas/{schema_id}"),
    };
    rec.insert("storage_location".into(), Value::String(location));
    rec.insert("schema_id".into(), Value::String(schema_id));
    rec.insert(
        "catalog_type".into(),
        Value::String("MANAGED_CATALOG".into()),
    );
    stamp_created(&mut rec, &caller);
    let rec = Value::Object(rec);
    let root = lake_root(&emu);
    emu.store.txn(|t| {
        schema_parent(t, &root, &catalog)?;
        if t.get(UC_SCHEMAS, &full).is_some()
            || lake_schema_exists(&root, &catalog, &name_of(&full))
        {
            return Err(uc_err(
                StatusCode::CONFLICT,
                "SCHEMA_ALREADY_EXISTS",
                format!("Schema '{full}' already exists"),
            ));
        }
        t.put(UC_SCHEMAS, &full, rec.clone());
        Ok(())
    })?;
    ok(rec)
}

async fn get_schema(State(emu): Shared, Path(full): Path<String>) -> ApiResult {
    let parts = full_name("schema", &full, 2)?;
    let key = parts.join(".");
    ok(any_schema(&emu, &key)
        .ok_or_else(|| schema_missing(&key))?
        .0)
}

async fn list_schemas(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let catalog = q
        .get("catalog_name")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiErr::missing("catalog_name"))?
        .to_lowercase();
    if any_catalog(&emu, &catalog).is_none() {
        return Err(catalog_missing(&catalog));
    }
    let prefix = format!("{catalog}.");
    let mut items: BTreeMap<String, Value> = emu
        .store
        .all(UC_SCHEMAS)
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    let root = lake_root(&emu);
    if lake_name(&catalog) {
        for schema in lake_dirs(&root.join(&catalog)) {
            let info = lake_schema_info(&root, &catalog, &schema);
            items.entry(format!("{catalog}.{schema}")).or_insert(info);
        }
    }
    paginate(items.into_iter().collect(), &q, "schemas")
}

const SCHEMA_UPDATABLE: &[&str] = &[
    "full_name",
    "comment",
    "properties",
    "custom_max_retention_hours",
    "new_name",
    "owner",
    "enable_predictive_optimization",
];

async fn update_schema(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(full): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    reject_unknown(&b, SCHEMA_UPDATABLE, "UpdateSchema")?;
    let parts = full_name("schema", &full, 2)?;
    let key = parts.join(".");
    let new_name = match opt_str(&b, "new_name")? {
        Some(n) => Some(identifier("schema name", n)?),
        None => None,
    };
    let mut patch = Map::new();
    copy_fields(
        &b,
        &mut patch,
        &["comment", "owner", "enable_predictive_optimization"],
        &["properties"],
        &["custom_max_retention_hours"],
    )?;
    if patch.is_empty() && new_name.is_none() {
        // The service refuses an empty update (contract §2.2).
        return Err(ApiErr::invalid("UpdateSchema Nothing to update."));
    }
    if let Some((_, Origin::Lake)) = any_schema(&emu, &key) {
        return Err(read_only_lake("Schema", &key));
    }
    let rec = emu.store.txn(|t| {
        let mut rec = t
            .get(UC_SCHEMAS, &key)
            .cloned()
            .ok_or_else(|| schema_missing(&key))?;
        let Some(m) = rec.as_object_mut() else {
            return Err(ApiErr::internal("schema record is not an object"));
        };
        for (k, v) in patch {
            m.insert(k, v);
        }
        stamp_updated(m, &caller);
        match new_name.filter(|n| *n != parts[1]) {
            Some(new) => {
                let new_key = format!("{}.{new}", parts[0]);
                if t.get(UC_SCHEMAS, &new_key).is_some() {
                    return Err(uc_err(
                        StatusCode::CONFLICT,
                        "SCHEMA_ALREADY_EXISTS",
                        format!("Schema '{new_key}' already exists"),
                    ));
                }
                m.insert("name".into(), Value::String(new));
                m.insert("full_name".into(), Value::String(new_key.clone()));
                t.delete(UC_SCHEMAS, &key);
                t.put(UC_SCHEMAS, &new_key, rec.clone());
                move_grants(t, "schema", &key, &new_key);
                rename_children(t, &key, &new_key, false);
            }
            None => t.put(UC_SCHEMAS, &key, rec.clone()),
        }
        Ok(rec)
    })?;
    ok(rec)
}

/// A securable that holds others (a catalog its schemas, a schema its volumes).
struct Container {
    collection: &'static str,
    child_collection: &'static str,
    /// `Catalog` / `Schema` in messages, `catalog` / `schema` for grants.
    noun: &'static str,
    securable: &'static str,
    child_noun: &'static str,
    not_empty_code: &'static str,
    missing: fn(&str) -> ApiErr,
}

impl Container {
    const CATALOG: Container = Container {
        collection: UC_CATALOGS,
        child_collection: UC_SCHEMAS,
        noun: "Catalog",
        securable: "catalog",
        child_noun: "schema",
        not_empty_code: "CATALOG_NOT_EMPTY",
        missing: catalog_missing,
    };
    const SCHEMA: Container = Container {
        collection: UC_SCHEMAS,
        child_collection: UC_VOLUMES,
        noun: "Schema",
        securable: "schema",
        child_noun: "volume",
        not_empty_code: "SCHEMA_NOT_EMPTY",
        missing: schema_missing,
    };
}

/// Delete a catalog or schema: refused while it holds children unless
/// `force`, which deletes them (and every grant on them) with it.
fn delete_container(emu: &Emu, c: &Container, key: &str, force: bool) -> ApiResult {
    emu.store.txn(|t| {
        if t.get(c.collection, key).is_none() {
            return Err((c.missing)(key));
        }
        let children = children(t, c.child_collection, key);
        if !children.is_empty() && !force {
            return Err(uc_err(
                StatusCode::BAD_REQUEST,
                c.not_empty_code,
                format!(
                    "{} '{key}' is not empty. The {} has {} {}(s) ({}); \
                     delete them first or pass force=true",
                    c.noun,
                    c.securable,
                    children.len(),
                    c.child_noun,
                    children.join(", ")
                ),
            ));
        }
        drop_children(t, key);
        t.delete(c.collection, key);
        t.delete(UC_GRANTS, &grants_key(c.securable, key));
        Ok(())
    })?;
    ok(json!({}))
}

async fn delete_schema(
    State(emu): Shared,
    Path(full): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query(q.as_deref());
    let force = qbool(&q, "force")?.unwrap_or(false);
    let key = full_name("schema", &full, 2)?.join(".");
    if let Some((_, Origin::Lake)) = any_schema(&emu, &key) {
        return Err(read_only_lake("Schema", &key));
    }
    delete_container(&emu, &Container::SCHEMA, &key, force)
}

// ---------------------------------------------------------------------------
// Volumes

async fn create_volume(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let catalog = identifier("catalog name", req_str(&b, "catalog_name")?)?;
    let schema = identifier("schema name", req_str(&b, "schema_name")?)?;
    let name = identifier("volume name", req_str(&b, "name")?)?;
    let volume_type = req_str(&b, "volume_type")?;
    let location = opt_str(&b, "storage_location")?;
    let volume_id = uuid::Uuid::new_v4().to_string();
    let storage_location = match (volume_type, location) {
        ("MANAGED", Some(_)) => {
            return Err(ApiErr::invalid(
                "CreateVolume storage_location can not be provided.",
            ))
        }
        ("MANAGED", None) => {
            format!("s3://lakebundle-emulator/metastore/{METASTORE_ID}/volumes/{volume_id}")
        }
        ("EXTERNAL", Some(l)) if l.contains("://") => l.trim_end_matches('/').to_string(),
        ("EXTERNAL", Some(l)) => {
            return Err(ApiErr::invalid(format!(
                "CreateVolume storage_location '{l}' is not a cloud storage URL inside an \
                 external location"
            )))
        }
        ("EXTERNAL", None) => {
            return Err(ApiErr::invalid(
                "CreateVolume storage_location is required for an EXTERNAL volume.",
            ))
        }
        (other, _) => {
            return Err(ApiErr::invalid(format!(
                "Invalid volume_type '{other}': expected MANAGED or EXTERNAL"
            )))
        }
    };
    let schema_full = format!("{catalog}.{schema}");
    let full = format!("{schema_full}.{name}");
    let mut rec = Map::new();
    rec.insert("name".into(), Value::String(name));
    rec.insert("catalog_name".into(), Value::String(catalog));
    rec.insert("schema_name".into(), Value::String(schema));
    rec.insert("full_name".into(), Value::String(full.clone()));
    rec.insert("volume_type".into(), Value::String(volume_type.into()));
    rec.insert("storage_location".into(), Value::String(storage_location));
    rec.insert("volume_id".into(), Value::String(volume_id));
    copy_fields(&b, &mut rec, &["comment"], &[], &[])?;
    stamp_created(&mut rec, &caller);
    let rec = Value::Object(rec);
    let in_lake = any_schema(&emu, &schema_full).is_some_and(|(_, o)| o == Origin::Lake);
    emu.store.txn(|t| {
        if t.get(UC_SCHEMAS, &schema_full).is_none() && !in_lake {
            return Err(schema_missing(&schema_full));
        }
        if t.get(UC_VOLUMES, &full).is_some() {
            return Err(ApiErr::exists(format!("Volume '{full}' already exists")));
        }
        t.put(UC_VOLUMES, &full, rec.clone());
        Ok(())
    })?;
    ok(rec)
}

async fn get_volume(State(emu): Shared, Path(full): Path<String>) -> ApiResult {
    let key = full_name("volume", &full, 3)?.join(".");
    ok(emu
        .store
        .get(UC_VOLUMES, &key)
        .ok_or_else(|| volume_missing(&key))?)
}

async fn list_volumes(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let mut parent = Vec::new();
    for field in ["catalog_name", "schema_name"] {
        let v = q
            .get(field)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiErr::missing(field))?;
        parent.push(v.to_lowercase());
    }
    let schema_full = parent.join(".");
    if any_schema(&emu, &schema_full).is_none() {
        return Err(schema_missing(&schema_full));
    }
    let prefix = format!("{schema_full}.");
    let items = emu
        .store
        .all(UC_VOLUMES)
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    paginate(items, &q, "volumes")
}

async fn update_volume(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    Path(full): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    // Only these three change in place (contract §2.3); `name` echoes the path.
    reject_unknown(
        &b,
        &["name", "full_name", "comment", "new_name", "owner"],
        "UpdateVolume",
    )?;
    let parts = full_name("volume", &full, 3)?;
    let key = parts.join(".");
    let new_name = match opt_str(&b, "new_name")? {
        Some(n) => Some(identifier("volume name", n)?),
        None => None,
    };
    let mut patch = Map::new();
    copy_fields(&b, &mut patch, &["comment", "owner"], &[], &[])?;
    let rec = emu.store.txn(|t| {
        let mut rec = t
            .get(UC_VOLUMES, &key)
            .cloned()
            .ok_or_else(|| volume_missing(&key))?;
        let Some(m) = rec.as_object_mut() else {
            return Err(ApiErr::internal("volume record is not an object"));
        };
        for (k, v) in patch {
            m.insert(k, v);
        }
        stamp_updated(m, &caller);
        match new_name.filter(|n| *n != parts[2]) {
            Some(new) => {
                let new_key = format!("{}.{}.{new}", parts[0], parts[1]);
                if t.get(UC_VOLUMES, &new_key).is_some() {
                    return Err(ApiErr::exists(format!("Volume '{new_key}' already exists")));
                }
                m.insert("name".into(), Value::String(new));
                m.insert("full_name".into(), Value::String(new_key.clone()));
                t.delete(UC_VOLUMES, &key);
                t.put(UC_VOLUMES, &new_key, rec.clone());
                move_grants(t, "volume", &key, &new_key);
            }
            None => t.put(UC_VOLUMES, &key, rec.clone()),
        }
        Ok(rec)
    })?;
    ok(rec)
}

async fn delete_volume(State(emu): Shared, Path(full): Path<String>) -> ApiResult {
    let key = full_name("volume", &full, 3)?.join(".");
    emu.store.txn(|t| {
        t.delete(UC_VOLUMES, &key)
            .ok_or_else(|| volume_missing(&key))?;
        t.delete(UC_GRANTS, &grants_key("volume", &key));
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

// ---------------------------------------------------------------------------
// Grants

/// Privileges UC knows (the SDK's `catalog.Privilege` enum, contract §2.4).
const PRIVILEGES: &[&str] = &[
    "SELECT",
    "READ_PRIVATE_FILES",
    "WRITE_PRIVATE_FILES",
    "CREATE",
    "USAGE",
    "USE_CATALOG",
    "USE_SCHEMA",
    "CREATE_SCHEMA",
    "CREATE_VIEW",
    "CREATE_EXTERNAL_TABLE",
    "CREATE_MATERIALIZED_VIEW",
    "CREATE_FUNCTION",
    "CREATE_MODEL",
    "CREATE_CATALOG",
    "CREATE_MANAGED_STORAGE",
    "CREATE_EXTERNAL_LOCATION",
    "CREATE_STORAGE_CREDENTIAL",
    "CREATE_SERVICE_CREDENTIAL",
    "ACCESS",
    "CREATE_SHARE",
    "CREATE_RECIPIENT",
    "CREATE_PROVIDER",
    "USE_SHARE",
    "USE_RECIPIENT",
    "USE_PROVIDER",
    "USE_MARKETPLACE_ASSETS",
    "SET_SHARE_PERMISSION",
    "MODIFY",
    "REFRESH",
    "EXECUTE",
    "READ_FILES",
    "WRITE_FILES",
    "CREATE_TABLE",
    "ALL_PRIVILEGES",
    "CREATE_CONNECTION",
    "USE_CONNECTION",
    "APPLY_TAG",
    "CREATE_FOREIGN_CATALOG",
    "CREATE_FOREIGN_SECURABLE",
    "MANAGE_ALLOWLIST",
    "CREATE_VOLUME",
    "CREATE_EXTERNAL_VOLUME",
    "READ_VOLUME",
    "WRITE_VOLUME",
    "MANAGE",
    "BROWSE",
    "CREATE_CLEAN_ROOM",
    "MODIFY_CLEAN_ROOM",
    "EXECUTE_CLEAN_ROOM_TASK",
    "EXTERNAL_USE_SCHEMA",
    "READ_METADATA",
    "EXTERNAL_USE_LOCATION",
    // On a UC secret (not in the SDK enum; named by the secrets API docs).
    "READ_SECRET",
];

/// Privileges granted on the metastore (or shares, recipients, ...), never on a catalog,
/// schema or volume.
const METASTORE_ONLY: &[&str] = &[
    "CREATE_CATALOG",
    "CREATE_CONNECTION",
    "CREATE_EXTERNAL_LOCATION",
    "CREATE_STORAGE_CREDENTIAL",
    "CREATE_SERVICE_CREDENTIAL",
    "CREATE_SHARE",
    "CREATE_RECIPIENT",
    "CREATE_PROVIDER",
    "USE_SHARE",
    "USE_RECIPIENT",
    "USE_PROVIDER",
    "USE_MARKETPLACE_ASSETS",
    "SET_SHARE_PERMISSION",
    "MANAGE_ALLOWLIST",
    "CREATE_CLEAN_ROOM",
];

/// Privileges that can be granted on each securable type this emulator serves.
fn applicable(securable: &str, privilege: &str) -> bool {
    if METASTORE_ONLY.contains(&privilege) {
        return false;
    }
    match securable {
        "catalog" => !matches!(
            privilege,
            "EXTERNAL_USE_LOCATION" | "READ_FILES" | "WRITE_FILES" | "CREATE_EXTERNAL_TABLE"
        ),
        "schema" => !matches!(
            privilege,
            "USE_CATALOG"
                | "CREATE_SCHEMA"
                | "EXTERNAL_USE_LOCATION"
                | "READ_FILES"
                | "WRITE_FILES"
                | "CREATE_EXTERNAL_TABLE"
                | "CREATE_MANAGED_STORAGE"
        ),
        "volume" => matches!(
            privilege,
            "ALL_PRIVILEGES" | "APPLY_TAG" | "MANAGE" | "READ_VOLUME" | "WRITE_VOLUME"
        ),
        "table" => matches!(
            privilege,
            "ALL_PRIVILEGES" | "APPLY_TAG" | "MANAGE" | "SELECT" | "MODIFY"
        ),
        // Registered models (and functions).
        "function" => matches!(
            privilege,
            "ALL_PRIVILEGES" | "APPLY_TAG" | "EXECUTE" | "MANAGE" | "BROWSE"
        ),
        other => super::uc_more::applicable(other, privilege),
    }
}

/// The stored key of a securable that must exist, or its not-found error.
fn securable_key(emu: &Emu, securable: &str, full: &str) -> Result<String, ApiErr> {
    match securable {
        "catalog" => {
            let (c, _) = any_catalog(emu, full).ok_or_else(|| catalog_missing(full))?;
            Ok(c["name"].as_str().unwrap_or(full).to_lowercase())
        }
        "schema" => {
            let key = full_name("schema", full, 2)?.join(".");
            any_schema(emu, &key)
                .map(|_| key.clone())
                .ok_or_else(|| schema_missing(&key))
        }
        "volume" => {
            let key = full_name("volume", full, 3)?.join(".");
            emu.store
                .get(UC_VOLUMES, &key)
                .map(|_| key.clone())
                .ok_or_else(|| volume_missing(&key))
        }
        // Vector search indexes are UC tables for grants.
        "table" => {
            let key = full_name("table", full, 3)?.join(".");
            if super::vector_search::index_exists(emu, &key) {
                Ok(key)
            } else {
                Err(ApiErr::not_found(format!("Table '{key}' does not exist.")))
            }
        }
        "function" => {
            let key = super::mlflow::uc_model_key(full)?;
            emu.store
                .get(super::mlflow::UC_MODELS, &key)
                .map(|_| key.clone())
                .ok_or_else(|| {
                    ApiErr::not_found(format!("Registered model '{key}' does not exist."))
                })
        }
        other => super::uc_more::securable_key(emu, other, full).unwrap_or_else(|| {
            Err(ApiErr::invalid(format!(
                "Invalid securable type '{other}': this workspace serves catalog, schema, \
                 volume, table, function, external_location and secret"
            )))
        }),
    }
}

type Grants = BTreeMap<String, BTreeSet<String>>;

fn grants_of(v: Option<&Value>) -> Grants {
    let mut out = Grants::new();
    if let Some(Value::Object(m)) = v {
        for (p, privs) in m {
            let set: BTreeSet<String> = privs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            if !set.is_empty() {
                out.insert(p.clone(), set);
            }
        }
    }
    out
}

fn assignments(g: &Grants) -> Vec<Value> {
    g.iter()
        .map(|(p, privs)| json!({"principal": p, "privileges": privs.iter().collect::<Vec<_>>()}))
        .collect()
}

async fn get_grants(
    State(emu): Shared,
    Path((securable, full)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = query(q.as_deref());
    let securable = securable.to_lowercase();
    let key = securable_key(&emu, &securable, &full)?;
    let grants = grants_of(
        emu.store
            .get(UC_GRANTS, &grants_key(&securable, &key))
            .as_ref(),
    );
    let principal = q.get("principal");
    let items: Vec<(String, Value)> = assignments(&grants)
        .into_iter()
        .filter(|a| principal.is_none_or(|p| a["principal"].as_str() == Some(p.as_str())))
        .map(|a| (a["principal"].as_str().unwrap_or_default().to_string(), a))
        .collect();
    paginate(items, &q, "privilege_assignments")
}

/// One parsed entry of `changes`.
struct Change {
    principal: String,
    add: BTreeSet<String>,
    remove: BTreeSet<String>,
}

fn privilege_list(
    entry: &Map<String, Value>,
    field: &str,
    securable: &str,
) -> Result<BTreeSet<String>, ApiErr> {
    let mut out = BTreeSet::new();
    let Some(v) = entry.get(field).filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let list = v
        .as_array()
        .ok_or_else(|| ApiErr::invalid(format!("Field 'changes[].{field}' must be a list")))?;
    for p in list {
        let p = p.as_str().ok_or_else(|| {
            ApiErr::invalid(format!("Field 'changes[].{field}' must hold strings"))
        })?;
        let upper = p.to_uppercase().replace(' ', "_");
        if !PRIVILEGES.contains(&upper.as_str()) {
            return Err(ApiErr::invalid(format!("Unknown privilege '{p}'")));
        }
        if field == "add" && !applicable(securable, &upper) {
            return Err(ApiErr::invalid(format!(
                "Privilege {upper} is not applicable to this entity [{securable}]"
            )));
        }
        out.insert(upper);
    }
    Ok(out)
}

fn parse_changes(b: &Map<String, Value>, securable: &str) -> Result<Vec<Change>, ApiErr> {
    let list = match b.get("changes") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiErr::invalid("Field 'changes' must be a list")),
    };
    let mut out = Vec::new();
    for entry in list {
        let e = entry
            .as_object()
            .ok_or_else(|| ApiErr::invalid("Each entry of 'changes' must be an object"))?;
        let principal = req_str(e, "principal")
            .map_err(|_| ApiErr::missing("changes[].principal"))?
            .to_string();
        let add = privilege_list(e, "add", securable)?;
        let remove = privilege_list(e, "remove", securable)?;
        if add.intersection(&remove).next().is_some() {
            return Err(ApiErr::invalid(format!(
                "Duplicate privileges to add and delete for principal {principal}."
            )));
        }
        out.push(Change {
            principal,
            add,
            remove,
        });
    }
    Ok(out)
}

async fn update_grants(
    State(emu): Shared,
    Path((securable, full)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let securable = securable.to_lowercase();
    let key = securable_key(&emu, &securable, &full)?;
    let changes = parse_changes(&b, &securable)?;
    let omit = b
        .get("omit_permissions_in_response")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let gkey = grants_key(&securable, &key);
    let grants = emu.store.txn(|t| {
        let mut grants = grants_of(t.get(UC_GRANTS, &gkey));
        for c in changes {
            let set = grants.entry(c.principal.clone()).or_default();
            // Remove before add; removing ALL_PRIVILEGES clears the principal (contract §2.4).
            if c.remove.contains("ALL_PRIVILEGES") {
                set.clear();
            } else {
                set.retain(|p| !c.remove.contains(p));
            }
            set.extend(c.add);
            if set.is_empty() {
                grants.remove(&c.principal);
            }
        }
        if grants.is_empty() {
            t.delete(UC_GRANTS, &gkey);
        } else {
            let stored: Map<String, Value> = grants
                .iter()
                .map(|(p, s)| (p.clone(), json!(s.iter().collect::<Vec<_>>())))
                .collect();
            t.put(UC_GRANTS, &gkey, Value::Object(stored));
        }
        Ok::<_, ApiErr>(grants)
    })?;
    if omit {
        return ok(json!({}));
    }
    ok(json!({ "privilege_assignments": assignments(&grants) }))
}
