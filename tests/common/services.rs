//! Typed helpers over the client's `call` for the client tests: the
//! services the engine itself does not use (the engine reaches each kind
//! through `resources::ResourceKind`). Moved out of the library.

#![allow(dead_code)]

use lakebundle::api::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use apps::AppsApi;
pub use database::DatabaseApi;
pub use jobs::JobsApi;
pub use wait::*;

pub fn database(client: &lakebundle::api::Client) -> DatabaseApi<'_> {
    DatabaseApi { client }
}
pub fn jobs(client: &lakebundle::api::Client) -> JobsApi<'_> {
    JobsApi { client }
}
pub fn apps(client: &lakebundle::api::Client) -> AppsApi<'_> {
    AppsApi { client }
}

fn invalid_response(method: &str, path: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidResponse {
        method: method.to_string(),
        path: path.to_string(),
        message: message.into(),
    }
}

fn decode<T: DeserializeOwned>(method: &str, path: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| invalid_response(method, path, format!("unexpected response body: {e}")))
}

/// `GET /Me`: the calling identity.
pub async fn me(
    client: &lakebundle::api::Client,
) -> Result<lakebundle::api::types::scim::User, ApiError> {
    client
        .call_typed(
            lakebundle::api::Method::GET,
            "/api/2.0/preview/scim/v2/Me",
            &[],
            None,
        )
        .await
}

fn seg(name: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

pub mod database {

    use serde_json::{json, Value};

    use super::{decode, seg};
    use lakebundle::api::types::database::{DatabaseCredential, DatabaseInstance};
    use lakebundle::api::{list_all, none_if_missing, ApiError, Client, Method};

    const INSTANCES: &str = "/api/2.0/database/instances";
    const CATALOGS: &str = "/api/2.0/database/catalogs";
    const SYNCED_TABLES: &str = "/api/2.0/database/synced_tables";
    const CREDENTIALS: &str = "/api/2.0/database/credentials";

    /// `client.database()`.
    pub struct DatabaseApi<'a> {
        pub client: &'a Client,
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
        pub async fn delete_synced_table(
            &self,
            name: &str,
            purge_data: bool,
        ) -> Result<(), ApiError> {
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
        pub async fn list_synced_tables(
            &self,
            instance_name: &str,
        ) -> Result<Vec<Value>, ApiError> {
            let path = format!("{}/synced_tables", instance_path(instance_name));
            list_all(self.client, &path, &[], "synced_tables").await
        }
    }
}

pub mod jobs {

    use serde_json::{json, Map, Value};

    use super::decode;
    use lakebundle::api::types::jobs::{CreateJobResponse, ListJobsResponse, Run, RunNowResponse};
    use lakebundle::api::{list_all, ApiError, Client, Method};

    const BASE: &str = "/api/2.2/jobs";

    /// Arrays `jobs/get` pages (100 elements per page each).
    const PAGED_ARRAYS: [&str; 4] = ["tasks", "job_clusters", "environments", "parameters"];

    /// `client.jobs()`.
    pub struct JobsApi<'a> {
        pub client: &'a Client,
    }

    fn p(op: &str) -> String {
        format!("{BASE}/{op}")
    }

    impl JobsApi<'_> {
        /// `POST jobs/create` with JobSettings at top level; returns the job id.
        /// Not idempotent: a lost response is [`ApiError::OutcomeUnknown`];
        /// reconcile with [`JobsApi::list`] by name.
        pub async fn create(&self, settings: &Value) -> Result<i64, ApiError> {
            let path = p("create");
            let v = self
                .client
                .call(Method::POST, &path, &[], Some(settings))
                .await?;
            decode::<CreateJobResponse>("POST", &path, v).map(|r| r.job_id)
        }

        /// `GET jobs/get`, following array pagination (`next_page_token`) so the
        /// returned job has all tasks, job clusters, environments and parameters.
        pub async fn get(&self, job_id: i64) -> Result<Value, ApiError> {
            let path = p("get");
            let mut job = self
                .client
                .call(Method::GET, &path, &[("job_id", job_id.to_string())], None)
                .await?;
            let mut pages = 0;
            while let Some(token) = take_page_token(&mut job) {
                pages += 1;
                if pages > 1000 {
                    return Err(super::invalid_response(
                        "GET",
                        &path,
                        "jobs/get returned more than 1000 pages",
                    ));
                }
                let query = [("job_id", job_id.to_string()), ("page_token", token)];
                let mut next = self.client.call(Method::GET, &path, &query, None).await?;
                let more = take_page_token(&mut next);
                merge_array_page(&mut job, &next);
                if let Some(t) = more {
                    job["next_page_token"] = Value::String(t);
                }
            }
            Ok(job)
        }

        /// `get`, with a missing job as `None` (404 or the legacy 400 form).
        pub async fn find(&self, job_id: i64) -> Result<Option<Value>, ApiError> {
            lakebundle::api::none_if_missing(self.get(job_id).await)
        }

        /// Every job (all pages), optionally filtered by exact name
        /// (case-insensitive on the server).
        pub async fn list(&self, name: Option<&str>) -> Result<Vec<Value>, ApiError> {
            let mut query = vec![("limit", "100".to_string())];
            if let Some(n) = name {
                query.push(("name", n.to_string()));
            }
            list_all(self.client, &p("list"), &query, "jobs").await
        }

        /// One page of `jobs/list`.
        pub async fn list_page(
            &self,
            limit: u32,
            page_token: Option<&str>,
        ) -> Result<ListJobsResponse, ApiError> {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(t) = page_token {
                query.push(("page_token", t.to_string()));
            }
            self.client
                .call_typed(Method::GET, &p("list"), &query, None)
                .await
        }

        /// `POST jobs/reset`: `new_settings` replaces all settings. Safe to
        /// re-send (same full replacement).
        pub async fn reset(&self, job_id: i64, new_settings: &Value) -> Result<(), ApiError> {
            let body = json!({"job_id": job_id, "new_settings": new_settings});
            self.client
                .call(Method::POST, &p("reset"), &[], Some(&body))
                .await
                .map(drop)
        }

        /// `POST jobs/update`: partial update (arrays merged by key) and
        /// `fields_to_remove`. Safe to re-send.
        pub async fn update(
            &self,
            job_id: i64,
            new_settings: Option<&Value>,
            fields_to_remove: &[&str],
        ) -> Result<(), ApiError> {
            let mut body = Map::new();
            body.insert("job_id".into(), json!(job_id));
            if let Some(s) = new_settings {
                body.insert("new_settings".into(), s.clone());
            }
            if !fields_to_remove.is_empty() {
                body.insert("fields_to_remove".into(), json!(fields_to_remove));
            }
            self.client
                .call(Method::POST, &p("update"), &[], Some(&Value::Object(body)))
                .await
                .map(drop)
        }

        /// `POST jobs/delete`. Re-sending is safe; a repeat reports NotFound.
        pub async fn delete(&self, job_id: i64) -> Result<(), ApiError> {
            let body = json!({"job_id": job_id});
            self.client
                .call(Method::POST, &p("delete"), &[], Some(&body))
                .await
                .map(drop)
        }

        /// `POST jobs/run-now`. `params` holds optional extra fields
        /// (`job_parameters`, `only`, ...). An `idempotency_token` is generated
        /// when absent, which makes a lost response safe to re-send (the server
        /// returns the same run).
        pub async fn run_now(
            &self,
            job_id: i64,
            params: Option<&Value>,
        ) -> Result<RunNowResponse, ApiError> {
            let mut body = match params {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            body.insert("job_id".into(), json!(job_id));
            body.entry("idempotency_token")
                .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
            let path = p("run-now");
            let v = self
                .client
                .call(Method::POST, &path, &[], Some(&Value::Object(body)))
                .await?;
            decode("POST", &path, v)
        }

        /// `GET jobs/runs/get`.
        pub async fn get_run(&self, run_id: i64) -> Result<Run, ApiError> {
            self.client
                .call_typed(
                    Method::GET,
                    &p("runs/get"),
                    &[("run_id", run_id.to_string())],
                    None,
                )
                .await
        }

        /// `POST jobs/runs/cancel` (safe to re-send).
        pub async fn cancel_run(&self, run_id: i64) -> Result<(), ApiError> {
            let body = json!({"run_id": run_id});
            self.client
                .call(Method::POST, &p("runs/cancel"), &[], Some(&body))
                .await
                .map(drop)
        }
    }

    fn take_page_token(job: &mut Value) -> Option<String> {
        match job.as_object_mut()?.remove("next_page_token")? {
            Value::String(t) if !t.is_empty() => Some(t),
            _ => None,
        }
    }

    /// Append the paged arrays of a later `jobs/get` page to the first one.
    fn merge_array_page(job: &mut Value, page: &Value) {
        for key in PAGED_ARRAYS {
            let Some(Value::Array(more)) = page.pointer(&format!("/settings/{key}")) else {
                continue;
            };
            if more.is_empty() {
                continue;
            }
            let Some(settings) = job.get_mut("settings").and_then(Value::as_object_mut) else {
                continue;
            };
            match settings.entry(key).or_insert_with(|| Value::Array(vec![])) {
                Value::Array(existing) => existing.extend(more.iter().cloned()),
                other => *other = Value::Array(more.clone()),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn merge_pages_appends_arrays() {
            let mut job =
                json!({"job_id": 1, "settings": {"name": "j", "tasks": [{"task_key": "a"}]}});
            let page = json!({"job_id": 1, "settings": {"tasks": [{"task_key": "b"}], "parameters": [{"name": "p"}]}});
            merge_array_page(&mut job, &page);
            assert_eq!(
                job["settings"]["tasks"],
                json!([{"task_key": "a"}, {"task_key": "b"}])
            );
            assert_eq!(job["settings"]["parameters"], json!([{"name": "p"}]));
            assert_eq!(job["settings"]["name"], "j");
        }

        #[test]
        fn empty_page_token_ends_paging() {
            let mut job = json!({"next_page_token": ""});
            assert_eq!(take_page_token(&mut job), None);
            let mut job = json!({"next_page_token": "t2"});
            assert_eq!(take_page_token(&mut job).as_deref(), Some("t2"));
            assert!(job.get("next_page_token").is_none());
        }
    }
}

pub mod apps {

    use serde_json::{json, Value};

    use super::{decode, seg};
    use lakebundle::api::types::apps::AppDeployment;
    use lakebundle::api::{list_all, ApiError, Client, Method};

    const BASE: &str = "/api/2.0/apps";

    /// `client.apps()`.
    pub struct AppsApi<'a> {
        pub client: &'a Client,
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
            lakebundle::api::none_if_missing(self.get(name).await)
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
        pub async fn deploy(
            &self,
            name: &str,
            deployment: &Value,
        ) -> Result<AppDeployment, ApiError> {
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
}

pub mod wait {

    use std::future::Future;
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use lakebundle::api::types::apps::{compute_state, AppDeployment};
    use lakebundle::api::types::jobs::Run;
    use lakebundle::api::{ApiError, Client};

    /// What one poll saw.
    pub enum Poll<T> {
        /// Done: return this.
        Ready(T),
        /// Not yet; the current state, for the timeout message.
        Pending(String),
        /// A failure state was reached.
        Failed(String),
    }

    /// Poll `f` until it is ready or fails, or `timeout` passes. The interval
    /// starts at 100 ms and grows ×1.5 up to 5 s (SDK waiters go to 10 s; our
    /// emulator converges in milliseconds, so start small).
    pub async fn poll<T, F, Fut>(
        what: &str,
        path: &str,
        timeout: Duration,
        mut f: F,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Poll<T>, ApiError>>,
    {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(100);
        loop {
            match f().await? {
                Poll::Ready(v) => return Ok(v),
                Poll::Failed(state) => {
                    return Err(ApiError::InvalidState {
                        method: "GET".into(),
                        path: path.to_string(),
                        message: format!("{what} failed: {state}"),
                    })
                }
                Poll::Pending(state) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(ApiError::Unavailable {
                            method: "GET".into(),
                            path: path.to_string(),
                            message: format!(
                                "timed out after {:.0}s waiting for {what}; last state {state}",
                                timeout.as_secs_f64()
                            ),
                        });
                    }
                    tokio::time::sleep(interval.min(deadline - now)).await;
                    interval = (interval.mul_f64(1.5)).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn state_of(v: &Value, pointer: &str) -> String {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string()
    }

    /// Wait until a database instance is `AVAILABLE` (no failure state exists).
    pub async fn wait_instance_available(
        client: &Client,
        name: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = format!("/api/2.0/database/instances/{name}");
        poll(
            &format!("database instance {name} to become AVAILABLE"),
            &path,
            timeout,
            || async {
                let v = super::database(client).get_instance(name).await?;
                Ok(match state_of(&v, "/state").as_str() {
                    "AVAILABLE" => Poll::Ready(v),
                    s => Poll::Pending(s.to_string()),
                })
            },
        )
        .await
    }

    /// Wait until a run is TERMINATED or SKIPPED; INTERNAL_ERROR fails. A
    /// terminated run is returned whatever its `result_state`.
    pub async fn wait_run_terminated(
        client: &Client,
        run_id: i64,
        timeout: Duration,
    ) -> Result<Run, ApiError> {
        poll(
            &format!("run {run_id} to terminate"),
            "/api/2.2/jobs/runs/get",
            timeout,
            || async {
                let run = super::jobs(client).get_run(run_id).await?;
                Ok(match run.state.life_cycle_state.as_deref() {
                    Some("TERMINATED" | "SKIPPED") => Poll::Ready(run),
                    Some("INTERNAL_ERROR") => Poll::Failed(format!(
                        "INTERNAL_ERROR: {}",
                        run.state.state_message.clone().unwrap_or_default()
                    )),
                    s => Poll::Pending(s.unwrap_or("<none>").to_string()),
                })
            },
        )
        .await
    }

    /// Wait until an app's `compute_status.state` is one of `targets`
    /// (e.g. `["ACTIVE", "STOPPED"]` after create); `ERROR` fails.
    pub async fn wait_app_compute(
        client: &Client,
        name: &str,
        targets: &[&str],
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = format!("/api/2.0/apps/{name}");
        let what = format!("app {name} compute to reach {}", targets.join("|"));
        poll(&what, &path, timeout, || async {
            let app = super::apps(client).get(name).await?;
            let state = compute_state(&app).unwrap_or("<none>").to_string();
            Ok(if targets.contains(&state.as_str()) {
                Poll::Ready(app)
            } else if state == "ERROR" {
                Poll::Failed(format!(
                    "ERROR: {}",
                    state_of(&app, "/compute_status/message")
                ))
            } else {
                Poll::Pending(state)
            })
        })
        .await
    }

    /// Wait until a deployment SUCCEEDED; FAILED and CANCELLED fail.
    pub async fn wait_app_deployment(
        client: &Client,
        name: &str,
        deployment_id: &str,
        timeout: Duration,
    ) -> Result<AppDeployment, ApiError> {
        let path = format!("/api/2.0/apps/{name}/deployments/{deployment_id}");
        poll(
            &format!("deployment {deployment_id} of app {name}"),
            &path,
            timeout,
            || async {
                let d = super::apps(client)
                    .get_deployment(name, deployment_id)
                    .await?;
                let status = d.status.clone().unwrap_or_default();
                Ok(match status.state.as_deref() {
                    Some("SUCCEEDED") => Poll::Ready(d),
                    Some(s @ ("FAILED" | "CANCELLED")) => {
                        Poll::Failed(format!("{s}: {}", status.message.unwrap_or_default()))
                    }
                    s => Poll::Pending(s.unwrap_or("<none>").to_string()),
                })
            },
        )
        .await
    }
}
