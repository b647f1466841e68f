//! Authentication: bearer tokens (PAT or issued OAuth tokens), host metadata, the OIDC
//! discovery document and the client-credentials token endpoint (reference §3.4–§3.5),
//! and `scim/v2/Me` (§5).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http::{now_ms, random_hex, ApiErr, ApiResult};
use super::server::{Caller, Emu, Shared};

const OAUTH_COLLECTION: &str = "oauth_tokens";
const OAUTH_TTL_S: i64 = 3600;

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/.well-known/databricks-config", get(host_metadata))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(oidc_discovery),
        )
        .route("/oidc/v1/token", post(token))
        .route("/api/2.0/preview/scim/v2/Me", get(me))
        .route("/api/2.0/scim/v2/Me", get(me))
}

/// Issued OAuth tokens are stored by digest only, so the database never holds a secret.
fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn authenticate(emu: &Emu, headers: &HeaderMap) -> Result<Caller, ApiErr> {
    let Some(value) = headers.get("authorization") else {
        return Err(ApiErr::unauthenticated(
            "Unauthenticated: no credentials were provided (missing Authorization header)",
        ));
    };
    let value = value.to_str().unwrap_or("");
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or("");
    if token.is_empty() {
        return Err(ApiErr::unauthenticated(
            "Unauthenticated: the Authorization header must be 'Bearer <token>'",
        ));
    }
    if let Some(rec) = emu.store.get(OAUTH_COLLECTION, &digest(token)) {
        let expires = rec.get("expires_ms").and_then(Value::as_i64).unwrap_or(0);
        let client_id = rec
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // A token outlives neither its hour nor the client it was issued to (a restart
        // without that client revokes it).
        if emu.cfg.client_id.as_deref() != Some(client_id) {
            return Err(ApiErr::permission_denied(
                "Invalid access token: its OAuth client is not configured",
            ));
        }
        if expires > now_ms() {
            return Ok(Caller {
                user_name: client_id.to_string(),
                service_principal: true,
            });
        }
        return Err(ApiErr::permission_denied(
            "Invalid access token: the OAuth token has expired",
        ));
    }
    if emu.cfg.tokens.is_empty() || emu.cfg.tokens.iter().any(|t| t == token) {
        Ok(Caller {
            user_name: emu.cfg.user.clone(),
            service_principal: false,
        })
    } else {
        Err(ApiErr::permission_denied("Invalid access token."))
    }
}

async fn host_metadata(State(emu): Shared) -> Response {
    axum::Json(json!({
        "oidc_endpoint": format!("{}/oidc", emu.url),
        "workspace_id": emu.workspace_id,
        "cloud": "AWS",
    }))
    .into_response()
}

async fn oidc_discovery(State(emu): Shared) -> Response {
    let base = format!("{}/oidc", emu.url);
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["all-apis", "offline_access"],
        "response_types_supported": ["code"],
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Client id and secret from HTTP Basic auth, or else from the form body.
fn client_credentials(headers: &HeaderMap, form: &[(String, String)]) -> Option<(String, String)> {
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let id = url::form_urlencoded::parse(id.as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()?;
        return Some((id, secret.to_string()));
    }
    Some((field("client_id")?, field("client_secret")?))
}

async fn token(State(emu): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let grant = form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str());
    if grant != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let Some((id, secret)) = client_credentials(&headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "missing client credentials",
        );
    };
    // Only a configured client gets a token: without one, M2M is off (as on a workspace
    // with no such service principal) and every client is refused.
    let accepted = match (&emu.cfg.client_id, &emu.cfg.client_secret) {
        (Some(cid), Some(cs)) => constant_time_eq(cid, &id) && constant_time_eq(cs, &secret),
        _ => false,
    };
    if !accepted {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let access = format!("eyJlbXUiOiJtMm0ifQ.{}", random_hex(24));
    let rec = json!({"client_id": id, "expires_ms": now_ms() + OAUTH_TTL_S * 1000});
    let stored = emu.store.txn(|t| {
        // Drop expired tokens so the collection does not grow without bound.
        let now = now_ms();
        let expired: Vec<String> = t
            .values(OAUTH_COLLECTION)
            .filter(|(_, v)| v.get("expires_ms").and_then(Value::as_i64).unwrap_or(0) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            t.delete(OAUTH_COLLECTION, &k);
        }
        t.put(OAUTH_COLLECTION, &digest(&access), rec);
        Ok::<_, ApiErr>(())
    });
    if let Err(e) = stored {
        return e.into_response();
    }
    let scope = form
        .iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone());
    axum::Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": OAUTH_TTL_S,
        "scope": scope.unwrap_or_else(|| "all-apis".into()),
    }))
    .into_response()
}

/// Comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A stable numeric id for a user name.
pub fn user_id(user_name: &str) -> String {
    let d = Sha256::digest(user_name.as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(n) % 9_000_000_000_000_000 + 1_000_000_000_000_000).to_string()
}

async fn me(State(emu): Shared, Extension(caller): Extension<Caller>) -> ApiResult {
    let body = if caller.service_principal {
        json!({
            "id": user_id(&caller.user_name),
            "userName": caller.user_name,
            "displayName": format!("service principal {}", caller.user_name),
            "active": true,
            "emails": [],
            "groups": [],
            "entitlements": [],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        })
    } else {
        let given = caller
            .user_name
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        json!({
            "id": user_id(&caller.user_name),
            "userName": caller.user_name,
            "displayName": given,
            "active": true,
            "emails": [{"value": caller.user_name, "primary": true, "type": "work"}],
            "name": {"givenName": given, "familyName": ""},
            "groups": [{"value": "1", "display": "admins", "type": "direct"}],
            "entitlements": [],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        })
    };
    let mut r = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&emu.workspace_id) {
        r.headers_mut().insert("x-databricks-org-id", v);
    }
    Ok(r)
}
