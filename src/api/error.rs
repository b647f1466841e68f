//! `ApiError` and the mapping of error responses onto it (reference §2).
//!
//! The variant is chosen by `error_code` first, then by HTTP status, exactly
//! like the official SDKs, plus the SDK's path-based special case that turns a
//! jobs "does not exist" 400 into NotFound.

use std::sync::LazyLock;

use lakebundle_wire::codes;
use regex::Regex;
use serde_json::Value;

/// Errors from the workspace API. Every variant carries the method, the path
/// (without query) and the server's message. Messages never contain secrets:
/// they come from the server body or from transport errors stripped of URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum ApiError {
    /// 404 / `RESOURCE_DOES_NOT_EXIST`, or the jobs "does not exist" 400.
    #[error("{method} {path}: not found: {message}")]
    #[diagnostic(code(lakebundle::api::not_found))]
    NotFound {
        method: String,
        path: String,
        message: String,
    },
    /// 409 `RESOURCE_ALREADY_EXISTS` (or that code with any status).
    #[error("{method} {path}: already exists: {message}")]
    #[diagnostic(code(lakebundle::api::already_exists))]
    AlreadyExists {
        method: String,
        path: String,
        message: String,
    },
    /// 400 `INVALID_PARAMETER_VALUE`: the request itself is wrong.
    #[error("{method} {path}: invalid parameter: {message}")]
    #[diagnostic(code(lakebundle::api::invalid_parameter))]
    InvalidParameter {
        method: String,
        path: String,
        message: String,
    },
    /// 400 `INVALID_STATE`: the object is not in a state that allows this.
    #[error("{method} {path}: invalid state: {message}")]
    #[diagnostic(code(lakebundle::api::invalid_state))]
    InvalidState {
        method: String,
        path: String,
        message: String,
    },
    /// Any other 400 (`BAD_REQUEST`, `MALFORMED_REQUEST`, `DIRECTORY_NOT_EMPTY`, ...).
    #[error("{method} {path}: bad request ({error_code}): {message}")]
    #[diagnostic(code(lakebundle::api::bad_request))]
    BadRequest {
        method: String,
        path: String,
        error_code: String,
        message: String,
    },
    /// 409 other than "already exists" (`ABORTED`, `RESOURCE_CONFLICT`).
    #[error("{method} {path}: conflict: {message}")]
    #[diagnostic(code(lakebundle::api::conflict))]
    Conflict {
        method: String,
        path: String,
        message: String,
    },
    /// 403 / `PERMISSION_DENIED`.
    #[error("{method} {path}: permission denied: {message}")]
    #[diagnostic(code(lakebundle::api::permission_denied))]
    PermissionDenied {
        method: String,
        path: String,
        message: String,
    },
    /// 401 / `UNAUTHENTICATED`, or an OAuth token that could not be obtained.
    #[error("{method} {path}: unauthenticated: {message}")]
    #[diagnostic(
        code(lakebundle::api::unauthenticated),
        help(
            "check DATABRICKS_TOKEN / the client id and secret / the profile in ~/.databrickscfg"
        )
    )]
    Unauthenticated {
        method: String,
        path: String,
        message: String,
    },
    /// 429, after the retry budget ran out.
    #[error("{method} {path}: rate limited: {message}")]
    #[diagnostic(code(lakebundle::api::rate_limited))]
    RateLimited {
        method: String,
        path: String,
        message: String,
    },
    /// 503 / 504 on a retryable call, after the retry budget ran out.
    #[error("{method} {path}: temporarily unavailable: {message}")]
    #[diagnostic(code(lakebundle::api::unavailable))]
    Unavailable {
        method: String,
        path: String,
        message: String,
    },
    /// 501 `NOT_IMPLEMENTED` (e.g. catalog / synced-table PATCH).
    #[error("{method} {path}: not implemented: {message}")]
    #[diagnostic(code(lakebundle::api::not_implemented))]
    NotImplemented {
        method: String,
        path: String,
        message: String,
    },
    /// 500 `INTERNAL_ERROR` / `UNKNOWN` / `DATA_LOSS`.
    #[error("{method} {path}: internal server error: {message}")]
    #[diagnostic(code(lakebundle::api::internal))]
    Internal {
        method: String,
        path: String,
        message: String,
    },
    /// A non-idempotent call was sent but its response was lost (503, 504,
    /// timeout or connection reset after sending): it may or may not have been
    /// applied. The caller must reconcile (find the object by name/tag).
    #[error("{method} {path}: outcome unknown (the response was lost): {message}")]
    #[diagnostic(
        code(lakebundle::api::outcome_unknown),
        help("the request may have been applied; look the object up before retrying")
    )]
    OutcomeUnknown {
        method: String,
        path: String,
        message: String,
    },
    /// The server could not be reached (connect error, timeout on a retryable
    /// call after the budget ran out, malformed response).
    #[error("{method} {path}: transport error: {message}")]
    #[diagnostic(code(lakebundle::api::transport))]
    Transport {
        method: String,
        path: String,
        message: String,
    },
    /// The server answered 2xx with a body we cannot read (not JSON, wrong
    /// shape, a pagination loop). Not retryable.
    #[error("{method} {path}: invalid response: {message}")]
    #[diagnostic(code(lakebundle::api::invalid_response))]
    InvalidResponse {
        method: String,
        path: String,
        message: String,
    },
    /// Anything else (499 cancelled, unknown statuses, ...).
    #[error("{method} {path}: HTTP {status} {error_code}: {message}")]
    #[diagnostic(code(lakebundle::api::other))]
    Other {
        method: String,
        path: String,
        status: u16,
        error_code: String,
        message: String,
    },
}

/// The class an error response maps to, before method/path are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    NotFound,
    AlreadyExists,
    InvalidParameter,
    InvalidState,
    BadRequest,
    Conflict,
    PermissionDenied,
    Unauthenticated,
    RateLimited,
    Unavailable,
    NotImplemented,
    Internal,
    Other,
}

/// Run `$body` with the common fields of any variant bound (by ref or mut ref).
macro_rules! with_fields {
    ($e:expr, |$m:ident, $p:ident, $msg:ident| $body:expr) => {
        match $e {
            ApiError::NotFound {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::AlreadyExists {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::InvalidParameter {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::InvalidState {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::BadRequest {
                method: $m,
                path: $p,
                message: $msg,
                ..
            }
            | ApiError::Conflict {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::PermissionDenied {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::Unauthenticated {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::RateLimited {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::Unavailable {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::NotImplemented {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::Internal {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::OutcomeUnknown {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::Transport {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::InvalidResponse {
                method: $m,
                path: $p,
                message: $msg,
            }
            | ApiError::Other {
                method: $m,
                path: $p,
                message: $msg,
                ..
            } => $body,
        }
    };
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, ApiError::OutcomeUnknown { .. })
    }
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ApiError::AlreadyExists { .. })
    }
    /// Transient failures a caller may retry later (the client has already
    /// retried these within its budget before returning them).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Unavailable { .. }
                | ApiError::Transport { .. }
        )
    }
    pub fn is_not_implemented(&self) -> bool {
        matches!(self, ApiError::NotImplemented { .. })
    }

    /// The HTTP method of the failed call.
    pub fn method(&self) -> &str {
        self.parts().0
    }
    /// The request path of the failed call (no query string).
    pub fn path(&self) -> &str {
        self.parts().1
    }
    /// The server's message (or the transport error text).
    pub fn message(&self) -> &str {
        self.parts().2
    }

    fn parts(&self) -> (&str, &str, &str) {
        with_fields!(self, |method, path, message| (
            method.as_str(),
            path.as_str(),
            message.as_str()
        ))
    }

    /// Add a note to the message (e.g. how long retries went on).
    pub(crate) fn append_note(&mut self, note: &str) {
        with_fields!(self, |_method, _path, message| {
            message.push_str(" (");
            message.push_str(note);
            message.push(')');
        })
    }

    pub(crate) fn transport(method: &str, path: &str, message: impl Into<String>) -> ApiError {
        ApiError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid_response(
        method: &str,
        path: &str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::InvalidResponse {
            method: method.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn outcome_unknown(
        method: &str,
        path: &str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::OutcomeUnknown {
            method: method.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn unauthenticated(
        method: &str,
        path: &str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError::Unauthenticated {
            method: method.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Map an error response (status + raw body) to a variant.
    pub fn from_response(method: &str, path: &str, status: u16, body: &[u8]) -> ApiError {
        let parsed = parse_error_body(status, body);
        let class = classify(path, status, &parsed.error_code, &parsed.message);
        let (method, path, message) = (method.to_string(), path.to_string(), parsed.message);
        match class {
            Class::NotFound => ApiError::NotFound {
                method,
                path,
                message,
            },
            Class::AlreadyExists => ApiError::AlreadyExists {
                method,
                path,
                message,
            },
            Class::InvalidParameter => ApiError::InvalidParameter {
                method,
                path,
                message,
            },
            Class::InvalidState => ApiError::InvalidState {
                method,
                path,
                message,
            },
            Class::BadRequest => ApiError::BadRequest {
                method,
                path,
                error_code: parsed.error_code,
                message,
            },
            Class::Conflict => ApiError::Conflict {
                method,
                path,
                message,
            },
            Class::PermissionDenied => ApiError::PermissionDenied {
                method,
                path,
                message,
            },
            Class::Unauthenticated => ApiError::Unauthenticated {
                method,
                path,
                message,
            },
            Class::RateLimited => ApiError::RateLimited {
                method,
                path,
                message,
            },
            Class::Unavailable => ApiError::Unavailable {
                method,
                path,
                message,
            },
            Class::NotImplemented => ApiError::NotImplemented {
                method,
                path,
                message,
            },
            Class::Internal => ApiError::Internal {
                method,
                path,
                message,
            },
            Class::Other => ApiError::Other {
                method,
                path,
                status,
                error_code: parsed.error_code,
                message,
            },
        }
    }
}

/// `error_code` and `message` extracted from any of the bodies of §2.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// Empty when the body carried none (then the status decides).
    pub error_code: String,
    pub message: String,
}

/// Parse an error body in any of the shapes the SDKs tolerate: canonical
/// `{error_code, message}`, legacy `{"error": ...}`, SCIM `{detail, status}`,
/// OAuth `{error, error_description}`, plain `CODE: message`, HTML, empty.
pub(crate) fn parse_error_body(status: u16, body: &[u8]) -> ErrorBody {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return ErrorBody {
            error_code: String::new(),
            message: reason_phrase(status).to_string(),
        };
    }
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(trimmed) {
        let str_field = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        // An int (legacy) error_code is ignored: the status decides.
        let mut error_code = str_field("error_code").unwrap_or_default();
        let mut message = str_field("message");
        if let Some(detail) = str_field("detail") {
            // SCIM shape; the SDK names it SCIM_<status>.
            if error_code.is_empty() {
                let scim_status = match obj.get("status") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => status.to_string(),
                };
                error_code = format!("SCIM_{scim_status}");
            }
            message = message.or(Some(detail));
        }
        if let Some(desc) = str_field("error_description").or_else(|| str_field("errorSummary")) {
            // OAuth shape: `error` is the code there.
            if error_code.is_empty() {
                error_code = str_field("error")
                    .or_else(|| str_field("errorCode"))
                    .unwrap_or_default();
            }
            message = message.or(Some(desc));
        }
        let message = message
            .or_else(|| str_field("error"))
            .unwrap_or_else(|| reason_phrase(status).to_string());
        return ErrorBody {
            error_code,
            message,
        };
    }
    if let Some(msg) = html_message(trimmed) {
        return ErrorBody {
            error_code: String::new(),
            message: msg,
        };
    }
    // Plain text `ERROR_CODE: message`.
    if let Some((code, msg)) = trimmed.split_once(": ") {
        if !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        {
            return ErrorBody {
                error_code: code.to_string(),
                message: msg.trim().to_string(),
            };
        }
    }
    ErrorBody {
        error_code: String::new(),
        message: truncate(trimmed, 500),
    }
}

fn html_message(text: &str) -> Option<String> {
    static PRE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?is)<pre>(.*?)</pre>").expect("static regex"));
    static TITLE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?is)<title>(.*?)</title>").expect("static regex"));
    if !text.starts_with('<') {
        return None;
    }
    PRE.captures(text)
        .or_else(|| TITLE.captures(text))
        .map(|c| c[1].trim().to_string())
        .filter(|s| !s.is_empty())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn classify(path: &str, status: u16, error_code: &str, message: &str) -> Class {
    static JOBS_MISSING: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^/api/2\.\d+/jobs/").expect("static regex"));
    static MISSING_MSG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(Job|Run) .* does not exist").expect("static regex"));
    // SDK special case (§2.2): jobs report a missing job/run as a 400.
    if status == 400
        && error_code == codes::INVALID_PARAMETER_VALUE
        && JOBS_MISSING.is_match(path)
        && MISSING_MSG.is_match(message)
    {
        return Class::NotFound;
    }
    // Workspace import answers an existing file with a 400 "... already exists." (§6.1).
    if status == 400 && path.starts_with("/api/2.0/workspace") && message.contains("already exists")
    {
        return Class::AlreadyExists;
    }
    match error_code {
        codes::RESOURCE_DOES_NOT_EXIST | codes::NOT_FOUND | codes::ENDPOINT_NOT_FOUND => {
            return Class::NotFound
        }
        codes::RESOURCE_ALREADY_EXISTS | codes::ALREADY_EXISTS => return Class::AlreadyExists,
        codes::INVALID_PARAMETER_VALUE => return Class::InvalidParameter,
        codes::INVALID_STATE => return Class::InvalidState,
        codes::ABORTED | codes::RESOURCE_CONFLICT => return Class::Conflict,
        codes::PERMISSION_DENIED => return Class::PermissionDenied,
        codes::UNAUTHENTICATED => return Class::Unauthenticated,
        codes::REQUEST_LIMIT_EXCEEDED | codes::RESOURCE_EXHAUSTED => return Class::RateLimited,
        codes::TEMPORARILY_UNAVAILABLE | codes::DEADLINE_EXCEEDED => return Class::Unavailable,
        codes::NOT_IMPLEMENTED => return Class::NotImplemented,
        codes::INTERNAL_ERROR | codes::UNKNOWN | codes::DATA_LOSS => return Class::Internal,
        // Unity Catalog's own codes (`CATALOG_ALREADY_EXISTS`, `SCHEMA_DOES_NOT_EXIST`, ...).
        c if c.ends_with("_ALREADY_EXISTS") => return Class::AlreadyExists,
        c if c.ends_with("_DOES_NOT_EXIST") => return Class::NotFound,
        _ => {}
    }
    match status {
        400 => Class::BadRequest,
        401 => Class::Unauthenticated,
        403 => Class::PermissionDenied,
        404 => Class::NotFound,
        409 => Class::Conflict,
        429 => Class::RateLimited,
        500 => Class::Internal,
        501 => Class::NotImplemented,
        503 | 504 => Class::Unavailable,
        _ => Class::Other,
    }
}

fn reason_phrase(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown status")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(path: &str, status: u16, body: &str) -> ApiError {
        ApiError::from_response("GET", path, status, body.as_bytes())
    }

    #[test]
    fn canonical_codes_map_to_variants() {
        let e = map(
            "/api/2.0/database/instances/x",
            404,
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Database instance 'x' does not exist."}"#,
        );
        assert!(e.is_not_found());
        assert_eq!(e.message(), "Database instance 'x' does not exist.");
        assert_eq!(e.path(), "/api/2.0/database/instances/x");
        assert_eq!(e.method(), "GET");
        assert!(map(
            "/api/2.0/apps",
            409,
            r#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"exists"}"#
        )
        .is_already_exists());
        // (HTTP status, error_code, expected variant)
        type Case = (u16, &'static str, fn(&ApiError) -> bool);
        let cases: &[Case] = &[
            (400, "INVALID_PARAMETER_VALUE", |e| {
                matches!(e, ApiError::InvalidParameter { .. })
            }),
            (400, "INVALID_STATE", |e| {
                matches!(e, ApiError::InvalidState { .. })
            }),
            (403, "PERMISSION_DENIED", |e| {
                matches!(e, ApiError::PermissionDenied { .. })
            }),
            (401, "UNAUTHENTICATED", |e| {
                matches!(e, ApiError::Unauthenticated { .. })
            }),
            (501, "NOT_IMPLEMENTED", |e| {
                matches!(e, ApiError::NotImplemented { .. })
            }),
            (500, "INTERNAL_ERROR", |e| {
                matches!(e, ApiError::Internal { .. })
            }),
            (429, "REQUEST_LIMIT_EXCEEDED", |e| {
                matches!(e, ApiError::RateLimited { .. })
            }),
            (503, "TEMPORARILY_UNAVAILABLE", |e| {
                matches!(e, ApiError::Unavailable { .. })
            }),
            (409, "ABORTED", |e| matches!(e, ApiError::Conflict { .. })),
            (409, "CATALOG_ALREADY_EXISTS", |e| e.is_already_exists()),
            (404, "SCHEMA_DOES_NOT_EXIST", |e| e.is_not_found()),
        ];
        for (status, code, is_expected) in cases {
            let body = format!(r#"{{"error_code":"{code}","message":"m"}}"#);
            let e = map("/x", *status, &body);
            assert!(is_expected(&e), "{status} {code} mapped to {e:?}");
        }
    }

    #[test]
    fn error_code_wins_over_status() {
        // Legacy workspace import: already-exists with HTTP 400.
        assert!(map(
            "/api/2.0/x",
            400,
            r#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"m"}"#
        )
        .is_already_exists());
        assert!(map(
            "/api/2.0/x",
            400,
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"m"}"#
        )
        .is_not_found());
    }

    #[test]
    fn status_decides_without_code() {
        assert!(map("/x", 404, "").is_not_found());
        assert!(matches!(
            map("/x", 400, r#"{"error_code":"BAD_REQUEST","message":"m"}"#),
            ApiError::BadRequest { .. }
        ));
        assert!(matches!(
            map("/x", 499, r#"{"error_code":"CANCELLED","message":"m"}"#),
            ApiError::Other { status: 499, .. }
        ));
        // int error_code (legacy) is ignored.
        assert!(map("/x", 404, r#"{"error_code":404,"message":"gone"}"#).is_not_found());
    }

    #[test]
    fn jobs_does_not_exist_400_is_not_found() {
        let body =
            r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Job 123 does not exist."}"#;
        assert!(map("/api/2.2/jobs/get", 400, body).is_not_found());
        assert!(map("/api/2.1/jobs/reset", 400, body).is_not_found());
        let run = r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Run 9 does not exist."}"#;
        assert!(map("/api/2.2/jobs/runs/get", 400, run).is_not_found());
        // Other paths and other messages stay invalid-parameter.
        assert!(matches!(
            map("/api/2.0/apps/x", 400, body),
            ApiError::InvalidParameter { .. }
        ));
        let other = r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Invalid quartz cron"}"#;
        assert!(matches!(
            map("/api/2.2/jobs/create", 400, other),
            ApiError::InvalidParameter { .. }
        ));
    }

    #[test]
    fn alternative_bodies() {
        let e = map("/x", 404, "");
        assert_eq!(e.message(), "Not Found");
        let e = map("/x", 400, r#"{"error":"legacy failure"}"#);
        assert_eq!(e.message(), "legacy failure");
        let e = map(
            "/api/2.0/preview/scim/v2/Me",
            404,
            r#"{"detail":"User not found","status":"404","scimType":"x"}"#,
        );
        assert!(e.is_not_found());
        assert_eq!(e.message(), "User not found");
        let e = map("/x", 409, "RESOURCE_ALREADY_EXISTS: file exists");
        assert!(e.is_already_exists());
        assert_eq!(e.message(), "file exists");
        let e = map(
            "/x",
            502,
            "<html><head><title>Bad Gateway</title></head><body></body></html>",
        );
        assert_eq!(e.message(), "Bad Gateway");
        let e = map(
            "/x",
            500,
            "<html><body><pre>stack trace here</pre></body></html>",
        );
        assert_eq!(e.message(), "stack trace here");
        assert!(matches!(e, ApiError::Internal { .. }));
        let e = map(
            "/oidc/v1/token",
            401,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        );
        assert!(matches!(e, ApiError::Unauthenticated { .. }));
        assert_eq!(e.message(), "bad secret");
        let e = map("/x", 500, "just some text: with a colon");
        assert_eq!(e.message(), "just some text: with a colon");
    }

    #[test]
    fn workspace_already_exists_400_message() {
        let e = map(
            "/api/2.0/workspace-files/import-file/Users/a/f.json",
            400,
            r#"{"error_code":"BAD_REQUEST","message":"/Users/a/f.json already exists."}"#,
        );
        assert!(e.is_already_exists());
    }

    #[test]
    fn display_names_method_path_and_message() {
        let e = map(
            "/api/2.0/apps/a",
            404,
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"App a does not exist."}"#,
        );
        assert_eq!(
            e.to_string(),
            "GET /api/2.0/apps/a: not found: App a does not exist."
        );
    }

    #[test]
    fn retryable_classes() {
        assert!(map("/x", 429, "").is_retryable());
        assert!(map("/x", 503, "").is_retryable());
        assert!(!map("/x", 404, "").is_retryable());
        assert!(ApiError::transport("GET", "/x", "refused").is_retryable());
        assert!(!ApiError::outcome_unknown("POST", "/x", "lost").is_retryable());
    }
}
