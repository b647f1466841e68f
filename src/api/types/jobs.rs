//! Jobs 2.2 bodies (reference §11). Job and run ids are int64.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /api/2.2/jobs/create` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateJobResponse {
    #[serde(deserialize_with = "super::lenient_i64::deserialize")]
    pub job_id: i64,
}

/// `GET /api/2.2/jobs/list` page. `jobs` is absent when empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListJobsResponse {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<Value>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_page_token: Option<String>,
}

/// `POST /api/2.2/jobs/run-now` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNowResponse {
    #[serde(deserialize_with = "super::lenient_i64::deserialize")]
    pub run_id: i64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub number_in_job: Option<i64>,
}

/// `state` of a run. Always present in responses (SDK waiters rely on it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// `QUEUED|PENDING|RUNNING|TERMINATING|TERMINATED|SKIPPED|INTERNAL_ERROR|BLOCKED|WAITING_FOR_RETRY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life_cycle_state: Option<String>,
    /// `SUCCESS|FAILED|TIMEDOUT|CANCELED|...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_cancelled_or_timedout: Option<bool>,
}

impl RunState {
    /// Done for the SDK waiter: TERMINATED or SKIPPED (INTERNAL_ERROR is a failure).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.life_cycle_state.as_deref(),
            Some("TERMINATED" | "SKIPPED" | "INTERNAL_ERROR")
        )
    }
}

/// `GET /api/2.2/jobs/runs/get` (the fields we read; the rest in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    #[serde(deserialize_with = "super::lenient_i64::deserialize")]
    pub run_id: i64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub job_id: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub number_in_job: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_page_url: Option<String>,
    #[serde(default)]
    pub state: RunState,
    /// Epoch ms.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub start_time: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::lenient_i64::option::deserialize"
    )]
    pub end_time: Option<i64>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}
