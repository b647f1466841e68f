//! Apps bodies (reference §12). Apps themselves stay JSON (`Value`) because
//! the engine diffs them as JSON; deployments and statuses are typed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `compute_status`, `app_status`, deployment and update `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An app deployment (`POST/GET .../deployments`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppDeployment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_code_path: Option<String>,
    /// `SNAPSHOT|AUTO_SYNC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `IN_PROGRESS|SUCCEEDED|FAILED|CANCELLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /api/2.0/apps/{name}/update` body: mask in the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsyncUpdateAppRequest {
    pub app: Value,
    pub update_mask: String,
}

/// `GET /api/2.0/apps` page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListAppsResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `compute_status.state` of an app JSON object, if any.
pub fn compute_state(app: &Value) -> Option<&str> {
    app.pointer("/compute_status/state").and_then(Value::as_str)
}
