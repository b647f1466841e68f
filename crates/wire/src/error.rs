//! The error reply of reference §2.2 and its codes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `error_code` values of reference §2.2 that the client classifies and the
/// emulator answers with.
pub mod codes {
    pub const INVALID_PARAMETER_VALUE: &str = "INVALID_PARAMETER_VALUE";
    pub const INVALID_STATE: &str = "INVALID_STATE";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const RESOURCE_DOES_NOT_EXIST: &str = "RESOURCE_DOES_NOT_EXIST";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const ENDPOINT_NOT_FOUND: &str = "ENDPOINT_NOT_FOUND";
    pub const RESOURCE_ALREADY_EXISTS: &str = "RESOURCE_ALREADY_EXISTS";
    pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
    pub const ABORTED: &str = "ABORTED";
    pub const RESOURCE_CONFLICT: &str = "RESOURCE_CONFLICT";
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const REQUEST_LIMIT_EXCEEDED: &str = "REQUEST_LIMIT_EXCEEDED";
    pub const RESOURCE_EXHAUSTED: &str = "RESOURCE_EXHAUSTED";
    pub const TEMPORARILY_UNAVAILABLE: &str = "TEMPORARILY_UNAVAILABLE";
    pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
    pub const NOT_IMPLEMENTED: &str = "NOT_IMPLEMENTED";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const UNKNOWN: &str = "UNKNOWN";
    pub const DATA_LOSS: &str = "DATA_LOSS";
}

/// `{error_code, message, details}` as the services send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error_code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

/// One `google.rpc.ErrorInfo` entry of `details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "@type")]
    pub type_url: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl ErrorReply {
    /// A reply whose single `ErrorInfo` detail repeats the code as its reason.
    pub fn with_info(code: &str, message: impl Into<String>, domain: &str) -> ErrorReply {
        ErrorReply {
            error_code: code.to_string(),
            message: message.into(),
            details: vec![ErrorDetail {
                type_url: "type.googleapis.com/google.rpc.ErrorInfo".to_string(),
                reason: code.to_string(),
                domain: domain.to_string(),
                metadata: Map::new(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_round_trips_in_the_documented_shape() {
        let r = ErrorReply::with_info(codes::RESOURCE_DOES_NOT_EXIST, "no such job", "x");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["error_code"], "RESOURCE_DOES_NOT_EXIST");
        assert_eq!(
            v["details"][0]["@type"],
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        let back: ErrorReply = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // The minimal body of §2.2 parses too.
        let min: ErrorReply =
            serde_json::from_str(r#"{"error_code":"INVALID_STATE","message":"m"}"#).unwrap();
        assert!(min.details.is_empty());
    }
}
