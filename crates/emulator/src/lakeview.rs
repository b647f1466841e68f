//! Lakeview dashboards and Genie spaces (contract part 2 §6).
//!
//! Dashboards (`/api/2.0/lakeview/dashboards`): create (404 when `parent_path` is not a
//! folder; the dataset query parameters are accepted), get, PATCH (an `etag` that does not
//! match is refused with 409 `ABORTED`; `parent_path` cannot change), list (trashed ones only
//! with `show_trashed`), DELETE = trash (`lifecycle_state: TRASHED`, still readable), and the
//! publication (`POST|GET|DELETE .../published`). Like the service, the stored definition is
//! re-serialized (compact JSON), so its text differs from what was sent; every change of the
//! draft moves the `etag`, publishing does not.
//!
//! Genie spaces (`/api/2.0/genie/spaces`): create (warehouse and definition required; 404
//! when the folder is missing), get (definition and `etag` only with
//! `include_serialized_space=true`), PATCH (optional `etag`, 409 when stale), list, DELETE =
//! trash (then 404).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::http::{
    body, decode_token, encode_token, now_ms, ok, opt_bool, opt_str, page_size, qbool, query,
    req_str, rfc3339, strip_internal, ApiErr, ApiResult,
};
use super::server::{Caller, Emu, Shared};
use super::store::Txn;

pub const DASHBOARDS: &str = "lakeview_dashboards";
pub const SPACES: &str = "genie_spaces";
const DASH_API: &str = "/api/2.0/lakeview/dashboards";
const GENIE_API: &str = "/api/2.0/genie/spaces";

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(DASH_API, get(list_dashboards).post(create_dashboard))
        .route(
            &format!("{DASH_API}/{{id}}"),
            get(get_dashboard)
                .patch(update_dashboard)
                .delete(trash_dashboard),
        )
        .route(
            &format!("{DASH_API}/{{id}}/published"),
            post(publish).get(get_published).delete(unpublish),
        )
        .route(GENIE_API, get(list_spaces).post(create_space))
        .route(
            &format!("{GENIE_API}/{{id}}"),
            get(get_space).patch(update_space).delete(trash_space),
        )
}

/// Whether a live dashboard exists: for permissions.
pub fn dashboard_exists(emu: &Emu, id: &str) -> bool {
    emu.store
        .get(DASHBOARDS, id)
        .is_some_and(|d| d["lifecycle_state"] == "ACTIVE")
}

/// Whether a live Genie space exists: for permissions.
pub fn space_exists(emu: &Emu, id: &str) -> bool {
    emu.store
        .get(SPACES, id)
        .is_some_and(|s| s["lifecycle_state"] == "ACTIVE")
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn aborted(message: impl Into<String>) -> ApiErr {
    ApiErr::new(StatusCode::CONFLICT, "ABORTED", message)
}

/// `/Users/x` and `/Workspace/Users/x` as the service shows a folder.
fn shown_folder(path: &str) -> String {
    if path.starts_with("/Workspace/") {
        path.to_string()
    } else {
        format!("/Workspace{path}")
    }
}

/// The folder a new object goes to: `parent_path`, which must be a folder,
/// or the caller's home.
fn folder_of(emu: &Emu, b: &Map<String, Value>, caller: &Caller) -> Result<String, ApiErr> {
    match opt_str(b, "parent_path")? {
        Some(p) => {
            if !super::workspace::is_directory(emu, p) {
                return Err(ApiErr::not_found(format!("Path ({p}) doesn't exist.")));
            }
            Ok(shown_folder(p.trim_end_matches('/')))
        }
        None => Ok(format!("/Workspace/Users/{}", caller.user_name)),
    }
}

/// The definition as the service stores it: parsed and re-serialized.
fn reserialized(field: &str, text: &str) -> Result<String, ApiErr> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ApiErr::invalid(format!("Invalid {field}: not JSON ({e})")))?;
    Ok(v.to_string())
}

fn next_etag(t: &mut Txn<'_>) -> String {
    t.next_id("lakeview_etag", 1).to_string()
}

/// One page of `collection` records passing `keep`, rendered by `view`.
fn page_of(
    emu: &Emu,
    collection: &str,
    raw: Option<&str>,
    items: &str,
    keep: impl Fn(&Value) -> bool,
    view: impl Fn(&Value) -> Value,
) -> ApiResult {
    let q = query(raw);
    let limit = page_size(&q, "page_size", 100, 1000)?;
    let after = decode_token(q.get("page_token"))?;
    let show_trashed = qbool(&q, "show_trashed")?.unwrap_or(false);
    let (page, more) = emu.store.page(collection, after.as_deref(), limit, |v| {
        (show_trashed || v["lifecycle_state"] == "ACTIVE") && keep(v)
    });
    let mut out = json!({});
    if !page.is_empty() {
        out[items] = page.iter().map(|(_, v)| view(v)).collect();
    }
    if more {
        if let Some((k, _)) = page.last() {
            out["next_page_token"] = json!(encode_token(k));
        }
    }
    ok(out)
}

// ---------------------------------------------------------------------------
// Dashboards

fn dashboard_missing(id: &str) -> ApiErr {
    ApiErr::not_found(format!("Unable to find dashboard [dashboardId={id}]"))
}

fn live_dashboard(t: &Txn<'_>, id: &str) -> Result<Value, ApiErr> {
    t.get(DASHBOARDS, id)
        .filter(|d| d["lifecycle_state"] == "ACTIVE")
        .cloned()
        .ok_or_else(|| dashboard_missing(id))
}

async fn create_dashboard(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let name = req_str(&b, "display_name")?.to_string();
    if name.trim().is_empty() {
        return Err(ApiErr::missing("display_name"));
    }
    let folder = folder_of(&emu, &b, &caller)?;
    let definition = reserialized(
        "serialized_dashboard",
        opt_str(&b, "serialized_dashboard")?.unwrap_or("{}"),
    )?;
    let warehouse = opt_str(&b, "warehouse_id")?.map(str::to_string);
    let id = new_id();
    let now = rfc3339(now_ms());
    let path = format!(
        "{}/{name}.lvdash.json",
        folder.trim_start_matches("/Workspace")
    );
    let d = emu.store.txn(|t| {
        if t.values(DASHBOARDS)
            .any(|(_, d)| d["lifecycle_state"] == "ACTIVE" && d["path"] == json!(path))
        {
            return Err(ApiErr::exists(format!(
                "Node named '{name}.lvdash.json' already exists"
            )));
        }
        let mut d = json!({
            "dashboard_id": id,
            "display_name": name,
            "parent_path": folder,
            "path": path,
            "serialized_dashboard": definition,
            "etag": next_etag(t),
            "lifecycle_state": "ACTIVE",
            "create_time": now,
            "update_time": now,
        });
        if let Some(w) = &warehouse {
            d["warehouse_id"] = json!(w);
        }
        t.put(DASHBOARDS, &id, d.clone());
        super::permissions::grant_owner(t, "dashboards", &id, &caller.user_name);
        Ok::<_, ApiErr>(d)
    })?;
    ok(d)
}

async fn get_dashboard(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store
        .get(DASHBOARDS, &id)
        .map(|d| ok(strip_internal(d)))
        .unwrap_or_else(|| Err(dashboard_missing(&id)))
}

async fn list_dashboards(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    page_of(
        &emu,
        DASHBOARDS,
        q.as_deref(),
        "dashboards",
        |_| true,
        |d| {
            let mut d = strip_internal(d.clone());
            // The list leaves the definition out, as the service does.
            if let Value::Object(m) = &mut d {
                m.remove("serialized_dashboard");
            }
            d
        },
    )
}

async fn update_dashboard(State(emu): Shared, Path(id): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let definition = opt_str(&b, "serialized_dashboard")?
        .map(|t| reserialized("serialized_dashboard", t))
        .transpose()?;
    let d = emu.store.txn(|t| {
        let mut d = live_dashboard(t, &id)?;
        if let Some(etag) = opt_str(&b, "etag")? {
            if d["etag"] != json!(etag) {
                return Err(aborted(format!(
                    "The dashboard has changed (etag {etag} is stale); read it again"
                )));
            }
        }
        if let Some(p) = opt_str(&b, "parent_path")? {
            if shown_folder(p.trim_end_matches('/')) != d["parent_path"].as_str().unwrap_or("") {
                return Err(ApiErr::invalid(
                    "parent_path cannot be changed: move the dashboard in the workspace instead",
                ));
            }
        }
        if let Some(name) = opt_str(&b, "display_name")? {
            d["display_name"] = json!(name);
        }
        if let Some(w) = opt_str(&b, "warehouse_id")? {
            d["warehouse_id"] = json!(w);
        }
        if let Some(def) = &definition {
            d["serialized_dashboard"] = json!(def);
        }
        d["etag"] = json!(next_etag(t));
        d["update_time"] = json!(rfc3339(now_ms()));
        t.put(DASHBOARDS, &id, d.clone());
        Ok::<_, ApiErr>(d)
    })?;
    ok(strip_internal(d))
}

async fn trash_dashboard(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store.txn(|t| {
        let mut d = live_dashboard(t, &id)?;
        d["lifecycle_state"] = json!("TRASHED");
        if let Some(m) = super::http::internal_mut(&mut d) {
            m.remove("published");
        }
        t.put(DASHBOARDS, &id, d);
        super::permissions::forget(t, "dashboards", &id);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn publish(State(emu): Shared, Path(id): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let embed = opt_bool(&b, "embed_credentials")?.unwrap_or(false);
    let warehouse = opt_str(&b, "warehouse_id")?.map(str::to_string);
    let published = emu.store.txn(|t| {
        let mut d = live_dashboard(t, &id)?;
        let Some(warehouse) = warehouse.or_else(|| d["warehouse_id"].as_str().map(str::to_string))
        else {
            return Err(ApiErr::invalid(
                "A warehouse is required to publish the dashboard",
            ));
        };
        let p = json!({
            "display_name": d["display_name"],
            "embed_credentials": embed,
            "warehouse_id": warehouse,
            "revision_create_time": rfc3339(now_ms()),
        });
        // Kept inside the record, never shown on the draft.
        if let Some(m) = super::http::internal_mut(&mut d) {
            m.insert("published".into(), p.clone());
        }
        t.put(DASHBOARDS, &id, d);
        Ok::<_, ApiErr>(p)
    })?;
    ok(published)
}

async fn get_published(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    let d = emu
        .store
        .get(DASHBOARDS, &id)
        .filter(|d| d["lifecycle_state"] == "ACTIVE")
        .ok_or_else(|| dashboard_missing(&id))?;
    match super::http::internal(&d).get("published") {
        Some(p) => ok(p.clone()),
        None => Err(ApiErr::not_found(format!(
            "Dashboard {id} is not published"
        ))),
    }
}

async fn unpublish(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store.txn(|t| {
        let mut d = live_dashboard(t, &id)?;
        let was = super::http::internal_mut(&mut d).and_then(|m| m.remove("published"));
        if was.is_none() {
            return Err(ApiErr::not_found(format!(
                "Dashboard {id} is not published"
            )));
        }
        t.put(DASHBOARDS, &id, d);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

// ---------------------------------------------------------------------------
// Genie spaces

fn space_missing(id: &str) -> ApiErr {
    ApiErr::not_found(format!("Genie space {id} does not exist."))
}

fn live_space(t: &Txn<'_>, id: &str) -> Result<Value, ApiErr> {
    t.get(SPACES, id)
        .filter(|s| s["lifecycle_state"] == "ACTIVE")
        .cloned()
        .ok_or_else(|| space_missing(id))
}

/// The space as GET shows it: definition and etag only when asked for.
fn space_view(s: &Value, with_definition: bool) -> Value {
    let mut out = s.clone();
    if let Value::Object(m) = &mut out {
        m.remove("lifecycle_state");
        if !with_definition {
            m.remove("serialized_space");
            m.remove("etag");
        }
    }
    out
}

async fn create_space(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let warehouse = req_str(&b, "warehouse_id")?.to_string();
    let definition = reserialized("serialized_space", req_str(&b, "serialized_space")?)?;
    let folder = folder_of(&emu, &b, &caller)?;
    let id = new_id();
    let s = emu.store.txn(|t| {
        let mut s = json!({
            "space_id": id,
            "title": opt_str(&b, "title")?.unwrap_or("New space"),
            "warehouse_id": warehouse,
            "serialized_space": definition,
            "parent_path": folder,
            "etag": next_etag(t),
            "lifecycle_state": "ACTIVE",
        });
        if let Some(d) = opt_str(&b, "description")? {
            s["description"] = json!(d);
        }
        t.put(SPACES, &id, s.clone());
        super::permissions::grant_owner(t, "genie", &id, &caller.user_name);
        Ok::<_, ApiErr>(s)
    })?;
    ok(space_view(&s, false))
}

async fn get_space(State(emu): Shared, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let with_definition = qbool(&q, "include_serialized_space")?.unwrap_or(false);
    let s = emu
        .store
        .get(SPACES, &id)
        .filter(|s| s["lifecycle_state"] == "ACTIVE")
        .ok_or_else(|| space_missing(&id))?;
    ok(space_view(&s, with_definition))
}

async fn list_spaces(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    page_of(
        &emu,
        SPACES,
        q.as_deref(),
        "spaces",
        |_| true,
        |s| space_view(s, false),
    )
}

async fn update_space(State(emu): Shared, Path(id): Path<String>, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let definition = opt_str(&b, "serialized_space")?
        .map(|t| reserialized("serialized_space", t))
        .transpose()?;
    let folder = match opt_str(&b, "parent_path")? {
        Some(p) if !super::workspace::is_directory(&emu, p) => {
            return Err(ApiErr::not_found(format!("Path ({p}) doesn't exist.")))
        }
        Some(p) => Some(shown_folder(p.trim_end_matches('/'))),
        None => None,
    };
    let s = emu.store.txn(|t| {
        let mut s = live_space(t, &id)?;
        if let Some(etag) = opt_str(&b, "etag")? {
            if s["etag"] != json!(etag) {
                return Err(aborted(format!(
                    "The Genie space has changed (etag {etag} is stale)"
                )));
            }
        }
        for f in ["title", "description", "warehouse_id"] {
            if let Some(v) = opt_str(&b, f)? {
                s[f] = json!(v);
            }
        }
        if let Some(def) = &definition {
            s["serialized_space"] = json!(def);
        }
        if let Some(f) = &folder {
            s["parent_path"] = json!(f);
        }
        s["etag"] = json!(next_etag(t));
        t.put(SPACES, &id, s.clone());
        Ok::<_, ApiErr>(s)
    })?;
    ok(space_view(&s, false))
}

async fn trash_space(State(emu): Shared, Path(id): Path<String>) -> ApiResult {
    emu.store.txn(|t| {
        let mut s = live_space(t, &id)?;
        s["lifecycle_state"] = json!("TRASHED");
        t.put(SPACES, &id, s);
        super::permissions::forget(t, "genie", &id);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}
