//! Pollers for long-running operations (reference §14). Each polls GET with
//! a growing interval until a target state, a failure state or a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::types::apps::{compute_state, AppDeployment};
use super::types::jobs::Run;
use super::{ApiError, Client};

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

impl Client {
    /// Wait until a database instance is `AVAILABLE` (no failure state exists).
    pub async fn wait_instance_available(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = format!("/api/2.0/database/instances/{name}");
        poll(
            &format!("database instance {name} to become AVAILABLE"),
            &path,
            timeout,
            || async {
                let v = self.database().get_instance(name).await?;
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
        &self,
        run_id: i64,
        timeout: Duration,
    ) -> Result<Run, ApiError> {
        poll(
            &format!("run {run_id} to terminate"),
            "/api/2.2/jobs/runs/get",
            timeout,
            || async {
                let run = self.jobs().get_run(run_id).await?;
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
        &self,
        name: &str,
        targets: &[&str],
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        let path = format!("/api/2.0/apps/{name}");
        let what = format!("app {name} compute to reach {}", targets.join("|"));
        poll(&what, &path, timeout, || async {
            let app = self.apps().get(name).await?;
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
        &self,
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
                let d = self.apps().get_deployment(name, deployment_id).await?;
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
