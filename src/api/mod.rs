//! Workspace REST client. See `../shared/reference/databricks-api.md`.
//!
//! SKELETON: the surface below is the contract other modules code against
//! (`Client::call`, `ApiError`). The api owner fills it in and may add to it,
//! but must keep these signatures.

pub mod types;

use serde_json::Value;

pub use reqwest::Method;

/// Errors from the workspace API. Every variant carries the method, the path
/// and the server's message.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApiError {
    #[error("{method} {path}: not found: {message}")]
    NotFound { method: String, path: String, message: String },
    #[error("{method} {path}: already exists: {message}")]
    AlreadyExists { method: String, path: String, message: String },
    #[error("{method} {path}: invalid parameter: {message}")]
    InvalidParameter { method: String, path: String, message: String },
    #[error("{method} {path}: outcome unknown (the response was lost): {message}")]
    OutcomeUnknown { method: String, path: String, message: String },
    #[error("{method} {path}: {message}")]
    Other { method: String, path: String, status: u16, error_code: String, message: String },
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, ApiError::OutcomeUnknown { .. })
    }
}

/// An authenticated workspace client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    host: String,
}

impl Client {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// One REST call with auth and retries. `path` starts with `/api/`.
    /// Returns the JSON body (`{}` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let _ = (query, body);
        Err(ApiError::Other {
            method: method.to_string(),
            path: path.to_string(),
            status: 0,
            error_code: "NOT_BUILT".into(),
            message: "the API client is not built yet".into(),
        })
    }
}
