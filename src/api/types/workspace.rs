//! Workspace object bodies (reference §6).

use serde::{Deserialize, Serialize};

/// `get-status` / `list` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// `NOTEBOOK|DIRECTORY|LIBRARY|FILE|REPO|DASHBOARD` (unknown values kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    pub path: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub object_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub size: Option<i64>,
    /// Epoch milliseconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub created_at: Option<i64>,
    /// Epoch milliseconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub modified_at: Option<i64>,
}

impl ObjectInfo {
    pub fn is_directory(&self) -> bool {
        self.object_type.as_deref() == Some("DIRECTORY")
    }
}

/// `GET /api/2.0/workspace/list`: `objects` is absent for an empty directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectInfo>,
}

/// `GET /api/2.0/workspace/export` without `direct_download`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportResponse {
    /// Base64.
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
}
