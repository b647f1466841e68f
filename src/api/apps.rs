//! Apps service (reference §12): create (`no_compute`), get, list, masked
//! async update, delete, deploy, deployments, start, stop.

use serde_json::{json, Value};

use super::types::apps::AppDeployment;
use super::{decode, list_all, seg, ApiError, Client, Method};

const BASE: &str = "/api/2.0/apps";

/// `client.apps()`.
pub struct AppsApi<'a> {
    pub(crate) client: &'a Client,
}

fn app_path(name: &str) -> String {
    format!("{BASE}/{}", seg(name))
}

impl AppsApi<'_> {
    /// `POST /apps[?no_compute=true]`. Not idempotent (a lost response is
    /// [`ApiError::OutcomeUnknown`]; reconcile with [`AppsApi::find`]).
    pub async fn create(&self, app: &Value, no_compute: bool) -> Result<Value, ApiError> {
        let query: Vec<(&str, String)> = if no_compute {
            vec![("no_compute", "true".into())]
        } else {
            vec![]
        };
        self.client
            .call(Method::POST, BASE, &query, Some(app))
            .await
    }

    pub async fn get(&self, name: &str) -> Result<Value, ApiError> {
        self.client
            .call(Method::GET, &app_path(name), &[], None)
            .await
    }

    /// GET with a missing app as `None`. An app still `DELETING` is returned
    /// (callers treat that state as gone).
    pub async fn find(&self, name: &str) -> Result<Option<Value>, ApiError> {
        super::database::none_if_missing(self.get(name).await)
    }

    /// Every app (all pages).
    pub async fn list(&self) -> Result<Vec<Value>, ApiError> {
        list_all(self.client, BASE, &[("page_size", "100".into())], "apps").await
    }

    /// Async masked update: `POST /apps/{name}/update {"app", "update_mask"}`
    /// (mask in the body). Returns the AppUpdate; poll [`AppsApi::get_update`].
    pub async fn update(
        &self,
        name: &str,
        app: &Value,
        update_mask: &str,
    ) -> Result<Value, ApiError> {
        let body = json!({"app": app, "update_mask": update_mask});
        self.client
            .call(
                Method::POST,
                &format!("{}/update", app_path(name)),
                &[],
                Some(&body),
            )
            .await
    }

    /// `GET /apps/{name}/update`: status of the last async update.
    pub async fn get_update(&self, name: &str) -> Result<Value, ApiError> {
        self.client
            .call(
                Method::GET,
                &format!("{}/update", app_path(name)),
                &[],
                None,
            )
            .await
    }

    /// `DELETE /apps/{name}`: fire-and-forget; the app shows `DELETING` for a while.
    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.client
            .call(Method::DELETE, &app_path(name), &[], None)
            .await
            .map(drop)
    }

    /// `POST /apps/{name}/deployments`. Not idempotent.
    pub async fn deploy(&self, name: &str, deployment: &Value) -> Result<AppDeployment, ApiError> {
        let path = format!("{}/deployments", app_path(name));
        let v = self
            .client
            .call(Method::POST, &path, &[], Some(deployment))
            .await?;
        decode("POST", &path, v)
    }

    pub async fn get_deployment(
        &self,
        name: &str,
        deployment_id: &str,
    ) -> Result<AppDeployment, ApiError> {
        let path = format!("{}/deployments/{}", app_path(name), seg(deployment_id));
        self.client.call_typed(Method::GET, &path, &[], None).await
    }

    pub async fn list_deployments(&self, name: &str) -> Result<Vec<Value>, ApiError> {
        let path = format!("{}/deployments", app_path(name));
        list_all(self.client, &path, &[], "app_deployments").await
    }

    /// `POST /apps/{name}/start` (safe to re-send).
    pub async fn start(&self, name: &str) -> Result<Value, ApiError> {
        self.client
            .call(
                Method::POST,
                &format!("{}/start", app_path(name)),
                &[],
                Some(&json!({})),
            )
            .await
    }

    /// `POST /apps/{name}/stop` (safe to re-send).
    pub async fn stop(&self, name: &str) -> Result<Value, ApiError> {
        self.client
            .call(
                Method::POST,
                &format!("{}/stop", app_path(name)),
                &[],
                Some(&json!({})),
            )
            .await
    }
}
