//! Lakebase database bodies (reference §7–§10).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::auth::Secret;

/// `custom_tags` entry (a list of pairs, unlike jobs' tag map).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomTag {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `parent_instance_ref` / `child_instance_refs` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseInstanceRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_lsn: Option<String>,
}

/// A database instance, as sent (create/update) and as returned. Fields this
/// type does not know are kept in `extra` so they survive a round trip.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseInstance {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_readable_secondaries: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_window_in_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_pg_native_login: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_policy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_tags: Option<Vec<CustomTag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_instance_ref: Option<DatabaseInstanceRef>,
    // --- output-only ---
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `STARTING|AVAILABLE|UPDATING|STOPPED|FAILING_OVER|DELETING` (unknown kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_write_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_instance_refs: Option<Vec<DatabaseInstanceRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_capacity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_node_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_enable_readable_secondaries: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_retention_window_in_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_stopped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_enable_pg_native_login: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_usage_policy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_custom_tags: Option<Vec<CustomTag>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET /api/2.0/database/instances` page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListDatabaseInstancesResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database_instances: Vec<DatabaseInstance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `POST /api/2.0/database/credentials` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateDatabaseCredentialRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Value>,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `POST /api/2.0/database/credentials` response. The token is a Postgres
/// password: a [`Secret`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseCredential {
    pub token: Secret,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
}

/// A database catalog (reference §9).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseCatalog {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_database_if_not_exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data_synchronization_status` of a synced table (the fields we read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncedTableStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detailed_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A synced database table (reference §10); `spec` stays JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncedDatabaseTable {
    /// `catalog.schema.table`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_database_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_database_instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_logical_database_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_synchronization_status: Option<SyncedTableStatus>,
    /// `PROVISIONING|ACTIVE|UPDATING|DEGRADED|DELETING|FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unity_catalog_provisioning_state: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_round_trips_unknown_fields() {
        let json = serde_json::json!({"name": "db1", "capacity": "CU_1", "state": "AVAILABLE",
            "effective_stopped": false, "brand_new_field": {"x": 1}});
        let inst: DatabaseInstance = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(inst.state.as_deref(), Some("AVAILABLE"));
        assert_eq!(inst.effective_stopped, Some(false));
        assert_eq!(serde_json::to_value(&inst).unwrap(), json);
    }

    #[test]
    fn credential_debug_hides_token() {
        let c: DatabaseCredential = serde_json::from_str(
            r#"{"token":"pg-secret-xyz","expiration_time":"2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(c.token.expose(), "pg-secret-xyz");
        assert!(!format!("{c:?}").contains("pg-secret-xyz"));
    }
}
