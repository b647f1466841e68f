//! Lakebase database service (reference §7–§10): instances, credentials,
//! catalogs, synced tables. Bodies are JSON in the API's shape; responses
//! are returned as JSON (the engine diffs them) with typed variants where a
//! caller needs fields.

use serde_json::{json, Value};

use super::types::database::{DatabaseCredential, DatabaseInstance};
use super::{decode, list_all, seg, ApiError, Client, Method};

const INSTANCES: &str = "/api/2.0/database/instances";
const CATALOGS: &str = "/api/2.0/database/catalogs";
const SYNCED_TABLES: &str = "/api/2.0/database/synced_tables";
const CREDENTIALS: &str = "/api/2.0/database/credentials";

/// `client.database()`.
pub struct DatabaseApi<'a> {
    pub(crate) client: &'a Client,
}

fn instance_path(name: &str) -> String {
    format!("{INSTANCES}/{}", seg(name))
}

impl DatabaseApi<'_> {
    /// `POST /database/instances`. Not idempotent: a lost response is
    /// [`ApiError::OutcomeUnknown`]; reconcile with [`DatabaseApi::find_instance`].
    pub async fn create_instance(&self, instance: &Value) -> Result<Value, ApiError> {
        self.client
            .call(Method::POST, INSTANCES, &[], Some(instance))
            .await
    }

    pub async fn get_instance(&self, name: &str) -> Result<Value, ApiError> {
        self.client
            .call(Method::GET, &instance_path(name), &[], None)
            .await
    }

    pub async fn get_instance_typed(&self, name: &str) -> Result<DatabaseInstance, ApiError> {
        let path = instance_path(name);
        decode(
            "GET",
            &path,
            self.client.call(Method::GET, &path, &[], None).await?,
        )
    }

    /// GET, with a missing instance as `None`.
    pub async fn find_instance(&self, name: &str) -> Result<Option<Value>, ApiError> {
        none_if_missing(self.get_instance(name).await)
    }

    /// All instances (every page).
    pub async fn list_instances(&self) -> Result<Vec<Value>, ApiError> {
        list_all(
            self.client,
            INSTANCES,
            &[("page_size", "100".into())],
            "database_instances",
        )
        .await
    }

    /// `PATCH /database/instances/{name}?update_mask=<csv>`; `instance` must
    /// carry `name`. Also start/stop (`update_mask=stopped`).
    pub async fn update_instance(
        &self,
        name: &str,
        instance: &Value,
        update_mask: &str,
    ) -> Result<Value, ApiError> {
        let query = [("update_mask", update_mask.to_string())];
        self.client
            .call(Method::PATCH, &instance_path(name), &query, Some(instance))
            .await
    }

    /// Stop or start an instance.
    pub async fn set_stopped(&self, name: &str, stopped: bool) -> Result<Value, ApiError> {
        self.update_instance(name, &json!({"name": name, "stopped": stopped}), "stopped")
            .await
    }

    /// `DELETE ...?purge=true[&force=true]`; `force` also deletes child instances.
    pub async fn delete_instance(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let mut query = vec![("purge", "true".to_string())];
        if force {
            query.push(("force", "true".into()));
        }
        self.client
            .call(Method::DELETE, &instance_path(name), &query, None)
            .await
            .map(drop)
    }

    /// `POST /database/credentials` for the given instances. A fresh
    /// `request_id` makes the call safe to re-send.
    pub async fn generate_credential(
        &self,
        instance_names: &[&str],
    ) -> Result<DatabaseCredential, ApiError> {
        let body = json!({
            "instance_names": instance_names,
            "request_id": uuid::Uuid::new_v4().to_string(),
        });
        let v = self
            .client
            .call(Method::POST, CREDENTIALS, &[], Some(&body))
            .await?;
        decode("POST", CREDENTIALS, v)
    }

    /// `POST /database/catalogs` (synchronous).
    pub async fn create_catalog(&self, catalog: &Value) -> Result<Value, ApiError> {
        self.client
            .call(Method::POST, CATALOGS, &[], Some(catalog))
            .await
    }

    pub async fn get_catalog(&self, name: &str) -> Result<Value, ApiError> {
        self.client
            .call(Method::GET, &format!("{CATALOGS}/{}", seg(name)), &[], None)
            .await
    }

    pub async fn find_catalog(&self, name: &str) -> Result<Option<Value>, ApiError> {
        none_if_missing(self.get_catalog(name).await)
    }

    pub async fn delete_catalog(&self, name: &str) -> Result<(), ApiError> {
        self.client
            .call(
                Method::DELETE,
                &format!("{CATALOGS}/{}", seg(name)),
                &[],
                None,
            )
            .await
            .map(drop)
    }

    /// Catalogs of one instance (documented as possibly unimplemented server-side).
    pub async fn list_catalogs(&self, instance_name: &str) -> Result<Vec<Value>, ApiError> {
        let path = format!("{}/catalogs", instance_path(instance_name));
        list_all(self.client, &path, &[], "database_catalogs").await
    }

    /// `POST /database/synced_tables` (returns at once; the pipeline provisions).
    pub async fn create_synced_table(&self, table: &Value) -> Result<Value, ApiError> {
        self.client
            .call(Method::POST, SYNCED_TABLES, &[], Some(table))
            .await
    }

    /// `name` is `catalog.schema.table`.
    pub async fn get_synced_table(&self, name: &str) -> Result<Value, ApiError> {
        self.client
            .call(
                Method::GET,
                &format!("{SYNCED_TABLES}/{}", seg(name)),
                &[],
                None,
            )
            .await
    }

    pub async fn find_synced_table(&self, name: &str) -> Result<Option<Value>, ApiError> {
        none_if_missing(self.get_synced_table(name).await)
    }

    /// `purge_data` also drops the Postgres table.
    pub async fn delete_synced_table(&self, name: &str, purge_data: bool) -> Result<(), ApiError> {
        let query: Vec<(&str, String)> = if purge_data {
            vec![("purge_data", "true".into())]
        } else {
            vec![]
        };
        self.client
            .call(
                Method::DELETE,
                &format!("{SYNCED_TABLES}/{}", seg(name)),
                &query,
                None,
            )
            .await
            .map(drop)
    }

    /// Synced tables of one instance (every page).
    pub async fn list_synced_tables(&self, instance_name: &str) -> Result<Vec<Value>, ApiError> {
        let path = format!("{}/synced_tables", instance_path(instance_name));
        list_all(self.client, &path, &[], "synced_tables").await
    }
}

/// `Ok(None)` for NotFound, everything else unchanged.
pub(crate) fn none_if_missing<T>(r: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
