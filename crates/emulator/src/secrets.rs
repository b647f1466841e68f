//! Secret scopes, their ACLs and secrets (contract part 2 §5). All calls are RPC-style
//! (`/api/2.0/secrets/...`); there is no get of a scope: clients list and filter by name.
//!
//! The creator of a scope holds MANAGE on it. Secret values are never stored: the emulator
//! keeps each secret's key and update time only (nothing reads a value back through the API).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::http::{body, now_ms, ok, opt_str, query, req_str, ApiErr, ApiResult};
use super::server::{Caller, Emu, Shared};

pub const SCOPES: &str = "secret_scopes";
const PERMISSIONS: [&str; 3] = ["READ", "WRITE", "MANAGE"];
const BACKENDS: [&str; 2] = ["DATABRICKS", "AZURE_KEYVAULT"];
/// Scopes per workspace (the service's documented limit is 100 per workspace as well).
const MAX_SCOPES: usize = 100;

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.0/secrets/scopes/create", post(create_scope))
        .route("/api/2.0/secrets/scopes/delete", post(delete_scope))
        .route("/api/2.0/secrets/scopes/list", get(list_scopes))
        .route("/api/2.0/secrets/acls/put", post(put_acl))
        .route("/api/2.0/secrets/acls/delete", post(delete_acl))
        .route("/api/2.0/secrets/acls/get", get(get_acl))
        .route("/api/2.0/secrets/acls/list", get(list_acls))
        .route("/api/2.0/secrets/put", post(put_secret))
        .route("/api/2.0/secrets/delete", post(delete_secret))
        .route("/api/2.0/secrets/list", get(list_secrets))
}

fn scope_missing(scope: &str) -> ApiErr {
    ApiErr::not_found(format!("Scope {scope} does not exist!"))
}

fn valid_scope_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn scope_of(emu: &Emu, scope: &str) -> Result<Value, ApiErr> {
    emu.store
        .get(SCOPES, scope)
        .ok_or_else(|| scope_missing(scope))
}

async fn create_scope(
    State(emu): Shared,
    Extension(caller): Extension<Caller>,
    raw: Bytes,
) -> ApiResult {
    let b = body(&raw)?;
    let scope = req_str(&b, "scope")?.to_string();
    if !valid_scope_name(&scope) {
        return Err(ApiErr::invalid(format!(
            "Scope name '{scope}' is invalid: use up to 128 letters, digits, '-', '_' and '.'"
        )));
    }
    if scope.eq_ignore_ascii_case("databricks") || scope.starts_with("databricks-") {
        return Err(ApiErr::new(
            axum::http::StatusCode::FORBIDDEN,
            "CUSTOMER_UNAUTHORIZED",
            format!("Scope name '{scope}' is reserved"),
        ));
    }
    let backend = opt_str(&b, "scope_backend_type")?
        .unwrap_or("DATABRICKS")
        .to_string();
    if !BACKENDS.contains(&backend.as_str()) {
        return Err(ApiErr::invalid(format!(
            "Invalid scope_backend_type '{backend}': allowed are DATABRICKS, AZURE_KEYVAULT"
        )));
    }
    let keyvault = b.get("backend_azure_keyvault").cloned();
    if backend == "AZURE_KEYVAULT" {
        let complete = keyvault.as_ref().is_some_and(|k| {
            ["resource_id", "dns_name"]
                .iter()
                .all(|f| k.get(*f).and_then(Value::as_str).is_some())
        });
        if !complete {
            return Err(ApiErr::invalid(
                "An AZURE_KEYVAULT scope needs backend_azure_keyvault.resource_id and dns_name",
            ));
        }
    }
    let mut acls = vec![json!({"principal": caller.user_name, "permission": "MANAGE"})];
    match opt_str(&b, "initial_manage_principal")? {
        None => {}
        Some("users") => acls.push(json!({"principal": "users", "permission": "MANAGE"})),
        Some(other) => {
            return Err(ApiErr::invalid(format!(
                "initial_manage_principal must be 'users', got '{other}'"
            )))
        }
    }
    emu.store.txn(|t| {
        if t.get(SCOPES, &scope).is_some() {
            return Err(ApiErr::exists(format!("Scope {scope} already exists!")));
        }
        if t.count(SCOPES) >= MAX_SCOPES {
            return Err(ApiErr::new(
                axum::http::StatusCode::BAD_REQUEST,
                "RESOURCE_LIMIT_EXCEEDED",
                format!("A workspace can have at most {MAX_SCOPES} secret scopes"),
            ));
        }
        let mut rec = json!({"name": scope, "backend_type": backend, "acls": acls, "secrets": {}});
        if let Some(k) = &keyvault {
            rec["keyvault_metadata"] = k.clone();
        }
        t.put(SCOPES, &scope, rec);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn delete_scope(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let scope = req_str(&b, "scope")?.to_string();
    emu.store.txn(|t| {
        t.delete(SCOPES, &scope)
            .map(|_| ())
            .ok_or_else(|| scope_missing(&scope))
    })?;
    ok(json!({}))
}

async fn list_scopes(State(emu): Shared) -> ApiResult {
    let scopes: Vec<Value> = emu
        .store
        .all(SCOPES)
        .into_iter()
        .map(|(_, s)| {
            let mut out = json!({"name": s["name"], "backend_type": s["backend_type"]});
            if let Some(k) = s.get("keyvault_metadata") {
                out["keyvault_metadata"] = k.clone();
            }
            out
        })
        .collect();
    if scopes.is_empty() {
        return ok(json!({}));
    }
    ok(json!({ "scopes": scopes }))
}

fn acls(rec: &Value) -> Vec<Value> {
    rec["acls"].as_array().cloned().unwrap_or_default()
}

async fn put_acl(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let scope = req_str(&b, "scope")?.to_string();
    let principal = req_str(&b, "principal")?.to_string();
    let permission = req_str(&b, "permission")?.to_string();
    if !PERMISSIONS.contains(&permission.as_str()) {
        return Err(ApiErr::invalid(format!(
            "Invalid permission '{permission}': allowed are READ, WRITE, MANAGE"
        )));
    }
    emu.store.txn(|t| {
        let mut rec = t
            .get(SCOPES, &scope)
            .cloned()
            .ok_or_else(|| scope_missing(&scope))?;
        let mut list = acls(&rec);
        list.retain(|a| a["principal"].as_str() != Some(principal.as_str()));
        list.push(json!({"principal": principal, "permission": permission}));
        rec["acls"] = Value::Array(list);
        t.put(SCOPES, &scope, rec);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn delete_acl(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let scope = req_str(&b, "scope")?.to_string();
    let principal = req_str(&b, "principal")?.to_string();
    emu.store.txn(|t| {
        let mut rec = t
            .get(SCOPES, &scope)
            .cloned()
            .ok_or_else(|| scope_missing(&scope))?;
        let mut list = acls(&rec);
        let before = list.len();
        list.retain(|a| a["principal"].as_str() != Some(principal.as_str()));
        if list.len() == before {
            return Err(ApiErr::not_found(format!(
                "Failed to delete ACL for principal {principal} in scope {scope}: it does not exist"
            )));
        }
        rec["acls"] = Value::Array(list);
        t.put(SCOPES, &scope, rec);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn get_acl(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let scope = q.get("scope").ok_or_else(|| ApiErr::missing("scope"))?;
    let principal = q
        .get("principal")
        .ok_or_else(|| ApiErr::missing("principal"))?;
    let rec = scope_of(&emu, scope)?;
    acls(&rec)
        .into_iter()
        .find(|a| a["principal"].as_str() == Some(principal.as_str()))
        .map(ok)
        .unwrap_or_else(|| {
            Err(ApiErr::not_found(format!(
                "Principal {principal} has no ACL on scope {scope}"
            )))
        })
}

async fn list_acls(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let scope = q.get("scope").ok_or_else(|| ApiErr::missing("scope"))?;
    let rec = scope_of(&emu, scope)?;
    ok(json!({"items": acls(&rec)}))
}

async fn put_secret(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let scope = req_str(&b, "scope")?.to_string();
    let key = req_str(&b, "key")?.to_string();
    let given = ["string_value", "bytes_value"]
        .iter()
        .filter(|f| b.get(**f).is_some_and(|v| !v.is_null()))
        .count();
    if given != 1 {
        return Err(ApiErr::invalid(
            "Exactly one of string_value and bytes_value must be given",
        ));
    }
    if !valid_scope_name(&key) {
        return Err(ApiErr::invalid(format!(
            "Secret key '{key}' is invalid: use up to 128 letters, digits, '-', '_' and '.'"
        )));
    }
    let now = now_ms();
    emu.store.txn(|t| {
        let mut rec = t
            .get(SCOPES, &scope)
            .cloned()
            .ok_or_else(|| scope_missing(&scope))?;
        rec["secrets"][key.as_str()] = json!({"last_updated_timestamp": now});
        t.put(SCOPES, &scope, rec);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn delete_secret(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let scope = req_str(&b, "scope")?.to_string();
    let key = req_str(&b, "key")?.to_string();
    emu.store.txn(|t| {
        let mut rec = t
            .get(SCOPES, &scope)
            .cloned()
            .ok_or_else(|| scope_missing(&scope))?;
        let gone = rec["secrets"]
            .as_object_mut()
            .and_then(|m| m.remove(&key))
            .is_some();
        if !gone {
            return Err(ApiErr::not_found(format!(
                "Secret {key} does not exist in scope {scope}"
            )));
        }
        t.put(SCOPES, &scope, rec);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn list_secrets(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let scope = q.get("scope").ok_or_else(|| ApiErr::missing("scope"))?;
    let rec = scope_of(&emu, scope)?;
    let secrets: Vec<Value> = rec["secrets"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| json!({"key": k, "last_updated_timestamp": v["last_updated_timestamp"]}))
        .collect();
    ok(json!({ "secrets": secrets }))
}
