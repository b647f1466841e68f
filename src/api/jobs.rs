//! Jobs API 2.2 (reference §11). Mutations are POSTs with JSON bodies; job
//! and run ids are int64 and never pass through f64.

use serde_json::{json, Map, Value};

use super::types::jobs::{CreateJobResponse, ListJobsResponse, Run, RunNowResponse};
use super::{decode, list_all, ApiError, Client, Method};

const BASE: &str = "/api/2.2/jobs";

/// Arrays `jobs/get` pages (100 elements per page each).
const PAGED_ARRAYS: [&str; 4] = ["tasks", "job_clusters", "environments", "parameters"];

/// `client.jobs()`.
pub struct JobsApi<'a> {
    pub(crate) client: &'a Client,
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
                return Err(ApiError::invalid_response(
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
        super::database::none_if_missing(self.get(job_id).await)
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
        let mut job = json!({"job_id": 1, "settings": {"name": "j", "tasks": [{"task_key": "a"}]}});
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
