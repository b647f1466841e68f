//! Bodies of the auth endpoints (reference §3.4, §3.5).

use serde::{Deserialize, Serialize};

use crate::api::auth::Secret;

/// `GET /.well-known/databricks-config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
}

/// `GET /oidc/.well-known/oauth-authorization-server` (the fields we use).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthServerMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
}

/// `POST /oidc/v1/token` success body. `access_token` is a [`Secret`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    /// Seconds; the SDK accepts an int or a numeric string.
    #[serde(deserialize_with = "super::lenient_i64::deserialize")]
    pub expires_in: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}
