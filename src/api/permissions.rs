//! Object permissions (reference §13): `GET|PUT|PATCH
//! /api/2.0/permissions/{object_type}/{id}`. PUT replaces all direct
//! grants, PATCH adds.

use serde_json::{json, Value};

use super::{seg, ApiError, Client, Method};

/// Object types used by bundle resources.
pub const JOBS: &str = "jobs";
pub const APPS: &str = "apps";
pub const DATABASE_INSTANCES: &str = "database-instances";

/// `client.permissions()`.
pub struct PermissionsApi<'a> {
    pub(crate) client: &'a Client,
}

fn path(object_type: &str, id: &str) -> String {
    format!("/api/2.0/permissions/{}/{}", seg(object_type), seg(id))
}

impl PermissionsApi<'_> {
    pub async fn get(&self, object_type: &str, id: &str) -> Result<Value, ApiError> {
        self.client
            .call(Method::GET, &path(object_type, id), &[], None)
            .await
    }

    /// Replace all direct grants with `access_control_list` (a JSON array).
    pub async fn set(
        &self,
        object_type: &str,
        id: &str,
        access_control_list: &Value,
    ) -> Result<Value, ApiError> {
        let body = json!({ "access_control_list": access_control_list });
        self.client
            .call(Method::PUT, &path(object_type, id), &[], Some(&body))
            .await
    }

    /// Add grants.
    pub async fn update(
        &self,
        object_type: &str,
        id: &str,
        access_control_list: &Value,
    ) -> Result<Value, ApiError> {
        let body = json!({ "access_control_list": access_control_list });
        self.client
            .call(Method::PATCH, &path(object_type, id), &[], Some(&body))
            .await
    }
}
