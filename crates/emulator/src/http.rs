//! Shared HTTP plumbing of the services: the error body of reference §2, body and
//! query parsing that never panics on bad input, pagination tokens, clocks.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use lakebundle_wire::{codes, ErrorReply};

use super::store::StoreError;

/// An error reply `{error_code, message}` with its HTTP status (reference §2.2).
#[derive(Debug, Clone)]
pub struct ApiErr {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiErr {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiErr {
        ApiErr {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> ApiErr {
        ApiErr::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_PARAMETER_VALUE,
            message,
        )
    }
    pub fn invalid_state(message: impl Into<String>) -> ApiErr {
        ApiErr::new(StatusCode::BAD_REQUEST, codes::INVALID_STATE, message)
    }
    pub fn bad_request(message: impl Into<String>) -> ApiErr {
        ApiErr::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiErr {
        ApiErr::new(
            StatusCode::NOT_FOUND,
            codes::RESOURCE_DOES_NOT_EXIST,
            message,
        )
    }
    pub fn exists(message: impl Into<String>) -> ApiErr {
        ApiErr::new(
            StatusCode::CONFLICT,
            codes::RESOURCE_ALREADY_EXISTS,
            message,
        )
    }
    pub fn not_implemented(message: impl Into<String>) -> ApiErr {
        ApiErr::new(StatusCode::NOT_IMPLEMENTED, codes::NOT_IMPLEMENTED, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiErr {
        ApiErr::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            message,
        )
    }
    pub fn unauthenticated(message: impl Into<String>) -> ApiErr {
        ApiErr::new(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> ApiErr {
        ApiErr::new(StatusCode::FORBIDDEN, codes::PERMISSION_DENIED, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiErr {
        ApiErr::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::TEMPORARILY_UNAVAILABLE,
            message,
        )
    }
    pub fn missing(field: &str) -> ApiErr {
        ApiErr::invalid(format!("Missing required field: {field}"))
    }
}

impl From<StoreError> for ApiErr {
    fn from(e: StoreError) -> ApiErr {
        ApiErr::internal(e.to_string())
    }
}

impl From<super::backend::BackendError> for ApiErr {
    fn from(e: super::backend::BackendError) -> ApiErr {
        use super::backend::BackendError as B;
        match e {
            B::Invalid(m) => ApiErr::invalid(m),
            B::NotFound(m) => ApiErr::not_found(m),
            B::Internal(m) => ApiErr::internal(m),
        }
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let body = ErrorReply::with_info(self.code, self.message, "lakebundle-emulator");
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::SERVICE_UNAVAILABLE
        {
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        r
    }
}

pub type ApiResult = Result<Response, ApiErr>;

pub fn ok(v: Value) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

/// A 200 whose JSON body was serialised already (see [`crate::store::Store::read`]).
pub fn ok_json_bytes(body: Vec<u8>) -> ApiResult {
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Parse a JSON object body; empty ⇒ `{}`.
pub fn body(bytes: &Bytes) -> Result<Map<String, Value>, ApiErr> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            "Request body must be a JSON object",
        )),
        Err(e) => Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            format!("Could not parse request body as JSON: {e}"),
        )),
    }
}

/// Query string parameters (percent-decoded; last value wins).
pub fn query(raw: Option<&str>) -> HashMap<String, String> {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

/// A query boolean: `true`/`false` strings (reference §1).
pub fn qbool(q: &HashMap<String, String>, key: &str) -> Result<Option<bool>, ApiErr> {
    match q.get(key).map(String::as_str) {
        None => Ok(None),
        Some("true") | Some("True") | Some("1") => Ok(Some(true)),
        Some("false") | Some("False") | Some("0") => Ok(Some(false)),
        Some(other) => Err(ApiErr::invalid(format!(
            "Query parameter '{key}' must be true or false, got '{other}'"
        ))),
    }
}

/// Page size from a query parameter with bounds.
pub fn page_size(
    q: &HashMap<String, String>,
    key: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiErr> {
    match q.get(key) {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(0) => Ok(default),
            Ok(n) if n > 0 && (n as usize) <= max => Ok(n as usize),
            _ => Err(ApiErr::invalid(format!(
                "{key} must be between 1 and {max}, got '{s}'"
            ))),
        },
    }
}

/// Page tokens are the hex of the last key served, so they stay valid while other
/// records are inserted or deleted.
pub fn encode_token(key: &str) -> String {
    hex::encode(key.as_bytes())
}

pub fn decode_token(token: Option<&String>) -> Result<Option<String>, ApiErr> {
    match token.map(String::as_str) {
        None | Some("") => Ok(None),
        Some(t) => hex::decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| ApiErr::invalid(format!("Invalid page_token '{t}'"))),
    }
}

/// Required string field of a body.
pub fn req_str<'a>(m: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiErr> {
    match m.get(field) {
        None | Some(Value::Null) => Err(ApiErr::missing(field)),
        Some(Value::String(s)) if s.is_empty() => Err(ApiErr::missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiErr::invalid(format!("Field '{field}' must be a string"))),
    }
}

pub fn opt_str<'a>(m: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiErr> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiErr::invalid(format!("Field '{field}' must be a string"))),
    }
}

pub fn opt_bool(m: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiErr> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiErr::invalid(format!(
            "Field '{field}' must be a boolean"
        ))),
    }
}

/// An int64 that may arrive as a JSON number or a numeric string (reference §1).
pub fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub fn opt_int(m: &Map<String, Value>, field: &str) -> Result<Option<i64>, ApiErr> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_i64(v)
            .map(Some)
            .ok_or_else(|| ApiErr::invalid(format!("Field '{field}' must be an integer"))),
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A random hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Internal bookkeeping of a stored record lives under this key and never leaves.
pub const INTERNAL: &str = "_emu";

pub fn strip_internal(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove(INTERNAL);
    }
    v
}

pub fn internal(v: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    v.get(INTERNAL)
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

pub fn internal_mut(v: &mut Value) -> Option<&mut Map<String, Value>> {
    let m = v.as_object_mut()?;
    m.entry(INTERNAL)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}
