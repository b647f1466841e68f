//! Retry policy (reference §2.3): exponential backoff with jitter on 429,
//! 503/504 and transport failures, integer `Retry-After` honoured, a bounded
//! total budget, and no blind re-send of a request that could create a
//! second object when its response was lost.
//!
//! Whether a request may be re-sent is decided here, once, from what the
//! request does ([`classify`]), never by each call site; every rule states
//! why a second copy of the request is harmless, next to its test.

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::Method;
use serde_json::Value;

use super::ClientConfig;

/// What to do with one attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Success: hand the response to the caller.
    Done,
    /// Transient and safe to repeat: back off and send again.
    Retry,
    /// The request may have been applied and must not be re-sent blindly.
    OutcomeUnknown,
    /// A definitive error: map it and return.
    Fail,
}

/// What sending a request a second time does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Reads, and writes that set a state rather than add to one: a second
    /// copy leaves the workspace as the first did.
    Safe,
    /// Deletes: a second copy after an applied first one finds the object
    /// gone, which means the delete is done.
    Delete,
    /// Creates: a second copy may make a duplicate. A lost response becomes
    /// outcome-unknown and the caller looks the object up (adoption).
    Create,
}

impl Repeat {
    /// May be re-sent after an ambiguous failure.
    pub(crate) fn resendable(self) -> bool {
        self != Repeat::Create
    }
}

/// POST endpoints that are safe to repeat, by the path after `/api/<version>/`
/// (`*` = one segment), each with its reason.
const SAFE_POSTS: &[(&str, &str)] = &[
    (
        "workspace/mkdirs",
        "`mkdir -p`: an existing directory is success",
    ),
    ("jobs/reset", "replaces all settings with the same settings"),
    (
        "jobs/update",
        "sets the given fields; removing an absent field is a no-op",
    ),
    ("jobs/runs/cancel", "cancelling a cancelled run is a no-op"),
    (
        "apps/*/update",
        "sets the masked fields to the given values",
    ),
    (
        "apps/*/start",
        "asks for a state; an active app stays active",
    ),
    (
        "apps/*/stop",
        "asks for a state; a stopped app stays stopped",
    ),
    (
        "database/credentials",
        "issues a short-lived token, not an object; an extra one just expires",
    ),
];

/// POST endpoints that delete, by the path after `/api/<version>/`.
const DELETE_POSTS: &[&str] = &["workspace/delete", "jobs/delete", "jobs/runs/delete"];

/// `/api/2.0/apps/x/update` → `["apps", "x", "update"]` (no version).
fn endpoint(path: &str) -> Vec<&str> {
    let trimmed = path.trim_start_matches('/');
    let mut segs = trimmed.split('/');
    match (segs.next(), segs.next()) {
        (Some("api"), Some(_version)) => segs.collect(),
        _ => trimmed.split('/').collect(),
    }
}

fn matches_pattern(segs: &[&str], pattern: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    pat.len() == segs.len() && pat.iter().zip(segs).all(|(p, s)| *p == "*" || p == s)
}

fn flag(query: &[(&str, String)], body: Option<&Value>, key: &str) -> bool {
    query.iter().any(|(k, v)| *k == key && v == "true")
        || body.and_then(|b| b.get(key)).and_then(Value::as_bool) == Some(true)
}

/// What re-sending this request does (see [`Repeat`]).
pub(crate) fn classify(
    method: &Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Repeat {
    match *method {
        // Reads change nothing.
        Method::GET | Method::HEAD | Method::OPTIONS => return Repeat::Safe,
        // PUT replaces with the given value (permissions set, settings).
        Method::PUT => return Repeat::Safe,
        // Every PATCH of these APIs sets fields to given values (instances
        // with `update_mask`) or adds grants (adding a present grant is a no-op).
        Method::PATCH => return Repeat::Safe,
        Method::DELETE => return Repeat::Delete,
        _ => {}
    }
    if *method != Method::POST {
        return Repeat::Create;
    }
    let segs = endpoint(path);
    if DELETE_POSTS.iter().any(|p| matches_pattern(&segs, p)) {
        return Repeat::Delete;
    }
    if SAFE_POSTS.iter().any(|(p, _)| matches_pattern(&segs, p)) {
        return Repeat::Safe;
    }
    // An import with overwrite writes the same content again; without it the
    // import is a create (the deploy lock relies on that).
    let is_import = matches_pattern(&segs, "workspace/import")
        || (segs.first() == Some(&"workspace-files") && segs.get(1) == Some(&"import-file"));
    if is_import {
        return if flag(query, body, "overwrite") {
            Repeat::Safe
        } else {
            Repeat::Create
        };
    }
    // run-now with an idempotency token: the server answers a repeat with the same run.
    if matches_pattern(&segs, "jobs/run-now")
        && body
            .and_then(|b| b.get("idempotency_token"))
            .is_some_and(Value::is_string)
    {
        return Repeat::Safe;
    }
    Repeat::Create
}

/// Whether an attempt that ended this way may have been applied by the
/// server: a 503/504 and an error after the request was sent can arrive after
/// the work was done; a 429 or a failed connect means nothing happened.
pub(crate) fn may_have_applied(status: Option<u16>, connect_failed: bool) -> bool {
    match status {
        Some(s) => matches!(s, 503 | 504) || (200..=299).contains(&s),
        None => !connect_failed,
    }
}

/// A delete re-sent after an attempt that may have been applied, answered
/// "does not exist": the earlier attempt did the work, so the delete is done.
/// An unknown endpoint is not that (`ENDPOINT_NOT_FOUND` is a 404 too).
pub(crate) fn resent_delete_done(
    repeat: Repeat,
    earlier_may_have_applied: bool,
    object_missing: bool,
    error_code: &str,
) -> bool {
    repeat == Repeat::Delete
        && earlier_may_have_applied
        && object_missing
        && error_code != "ENDPOINT_NOT_FOUND"
}

/// Disposition of an HTTP response.
pub(crate) fn for_status(status: u16, repeat: Repeat) -> Disposition {
    match status {
        200..=299 => Disposition::Done,
        // Rate limiting rejects the request before applying it: safe for any request.
        429 => Disposition::Retry,
        // Unavailable / gateway timeout may arrive after the work was done.
        503 | 504 if repeat.resendable() => Disposition::Retry,
        503 | 504 => Disposition::OutcomeUnknown,
        _ => Disposition::Fail,
    }
}

/// Error messages the SDKs treat as transient whatever the status (§2.3):
/// each means the request was refused before doing anything.
const TRANSIENT_MESSAGES: [&str; 8] = [
    "ClusterNotReadyException",
    "Unexpected error",
    "Please try again later or try a faster operation.",
    "RPC token bucket limit has been exceeded",
    "does not have any associated worker environments",
    "There is no worker environment with id",
    "Unknown worker environment",
    "UnknownWorkerEnvironmentException",
];

pub(crate) fn is_transient_message(message: &str) -> bool {
    TRANSIENT_MESSAGES.iter().any(|m| message.contains(m))
}

/// Disposition of a transport error. A connect error means nothing was sent.
pub(crate) fn for_transport(err: &reqwest::Error, repeat: Repeat) -> Disposition {
    if err.is_connect() || repeat.resendable() {
        Disposition::Retry
    } else {
        Disposition::OutcomeUnknown
    }
}

/// `Retry-After` as integer seconds (HTTP dates are ignored, like the SDK).
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let secs: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// Budget for a call whose every attempt failed to connect. Nothing is
/// listening there (a mistyped host or port, a stopped local workspace), which
/// rarely heals in minutes: the user should hear so in seconds, not after
/// the full budget meant for a busy workspace.
pub(crate) const CONNECT_FAILURE_BUDGET: Duration = Duration::from_secs(20);

/// Backoff state of one logical call.
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    budget: Duration,
    started: Instant,
    attempts: u32,
}

impl Backoff {
    pub(crate) fn new(config: &ClientConfig) -> Backoff {
        Backoff {
            base: config.backoff_base,
            max: config.backoff_max,
            budget: config.retry_budget,
            started: Instant::now(),
            attempts: 0,
        }
    }

    /// Attempts made so far that ended in a retryable failure.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Shrink the budget (never grow it).
    pub(crate) fn limit_budget(&mut self, budget: Duration) {
        self.budget = self.budget.min(budget);
    }

    /// The wait before the next attempt, or `None` when it would exceed the
    /// budget. A server `Retry-After` wins over the computed backoff.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        // `Retry-After: 0` would turn into a tight loop: back off normally then.
        let delay = retry_after
            .filter(|d| !d.is_zero())
            .unwrap_or_else(|| jittered(self.base, self.max, self.attempts));
        self.attempts += 1;
        if self.started.elapsed() + delay > self.budget {
            return None;
        }
        Some(delay)
    }
}

/// Exponential backoff `base·2^n` capped at `max`, with "equal jitter"
/// (half fixed, half random) so concurrent clients spread out.
fn jittered(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20)).min(max);
    let half = exp / 2;
    let jitter_ns = rand::rng().random_range(0..=half.as_nanos().min(u64::MAX as u128) as u64);
    half + Duration::from_nanos(jitter_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(budget_ms: u64) -> ClientConfig {
        ClientConfig {
            retry_budget: Duration::from_millis(budget_ms),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(800),
            ..ClientConfig::default()
        }
    }

    #[test]
    fn status_dispositions() {
        use Repeat::*;
        assert_eq!(for_status(200, Create), Disposition::Done);
        assert_eq!(for_status(204, Create), Disposition::Done);
        // 429 is refused before anything happens: even a create is re-sent.
        assert_eq!(for_status(429, Create), Disposition::Retry);
        assert_eq!(for_status(503, Safe), Disposition::Retry);
        assert_eq!(for_status(503, Delete), Disposition::Retry);
        assert_eq!(for_status(503, Create), Disposition::OutcomeUnknown);
        assert_eq!(for_status(504, Create), Disposition::OutcomeUnknown);
        for s in [400, 401, 403, 404, 409, 500, 501] {
            assert_eq!(for_status(s, Safe), Disposition::Fail, "{s}");
        }
    }

    fn cls(method: Method, path: &str, query: &[(&str, &str)], body: Value) -> Repeat {
        let q: Vec<(&str, String)> = query.iter().map(|(k, v)| (*k, v.to_string())).collect();
        classify(&method, path, &q, Some(&body))
    }

    #[test]
    fn methods_by_semantics() {
        use Repeat::*;
        let none = serde_json::json!({});
        // Reads, replacements (PUT) and field-setting PATCHes repeat harmlessly.
        assert_eq!(
            cls(Method::GET, "/api/2.2/jobs/get", &[], none.clone()),
            Safe
        );
        let perms = "/api/2.0/permissions/jobs/1";
        assert_eq!(cls(Method::PUT, perms, &[], none.clone()), Safe);
        assert_eq!(cls(Method::PATCH, perms, &[], none.clone()), Safe);
        let inst = "/api/2.0/database/instances/a";
        assert_eq!(cls(Method::PATCH, inst, &[], none.clone()), Safe);
        // A repeated DELETE finds the object gone.
        assert_eq!(cls(Method::DELETE, inst, &[], none.clone()), Delete);
        // Any POST not known to be safe may create twice.
        for path in [
            "/api/2.0/database/instances",
            "/api/2.2/jobs/create",
            "/api/2.0/apps",
            "/api/2.0/apps/a/deployments",
            "/api/2.2/jobs/runs/submit",
        ] {
            assert_eq!(cls(Method::POST, path, &[], none.clone()), Create, "{path}");
        }
    }

    #[test]
    fn safe_posts_by_endpoint() {
        use Repeat::*;
        let none = serde_json::json!({});
        for path in [
            "/api/2.0/workspace/mkdirs",
            "/api/2.2/jobs/reset",
            "/api/2.1/jobs/update",
            "/api/2.2/jobs/runs/cancel",
            "/api/2.0/apps/my-app/update",
            "/api/2.0/apps/my-app/start",
            "/api/2.0/apps/my-app/stop",
            "/api/2.0/database/credentials",
        ] {
            assert_eq!(cls(Method::POST, path, &[], none.clone()), Safe, "{path}");
        }
        // Deletes by POST: a repeat reports the object missing.
        for path in ["/api/2.0/workspace/delete", "/api/2.2/jobs/delete"] {
            assert_eq!(cls(Method::POST, path, &[], none.clone()), Delete, "{path}");
        }
        // `*` is one segment only.
        let deep = "/api/2.0/apps/x/y/update";
        assert_eq!(cls(Method::POST, deep, &[], none), Create);
    }

    #[test]
    fn imports_repeat_only_with_overwrite() {
        use Repeat::*;
        let body = |ow: bool| serde_json::json!({"path": "/a", "overwrite": ow});
        let import = "/api/2.0/workspace/import";
        // Overwriting with the same content again changes nothing.
        assert_eq!(cls(Method::POST, import, &[], body(true)), Safe);
        // Without overwrite the import is a create (the deploy lock is one).
        assert_eq!(cls(Method::POST, import, &[], body(false)), Create);
        let file = "/api/2.0/workspace-files/import-file/Workspace/x/deploy.lock";
        let none = serde_json::json!({});
        assert_eq!(
            cls(Method::POST, file, &[("overwrite", "true")], none.clone()),
            Safe
        );
        assert_eq!(
            cls(Method::POST, file, &[("overwrite", "false")], none),
            Create
        );
    }

    #[test]
    fn run_now_repeats_only_with_a_token() {
        // The server answers a repeated token with the run it already started.
        let path = "/api/2.2/jobs/run-now";
        let with = serde_json::json!({"job_id": 1, "idempotency_token": "t"});
        assert_eq!(cls(Method::POST, path, &[], with), Repeat::Safe);
        let without = serde_json::json!({"job_id": 1});
        assert_eq!(cls(Method::POST, path, &[], without), Repeat::Create);
    }

    #[test]
    fn what_may_have_been_applied() {
        // The reply may have been lost after the work was done.
        assert!(may_have_applied(Some(503), false));
        assert!(may_have_applied(Some(504), false));
        assert!(may_have_applied(None, false));
        // Refused before anything ran.
        assert!(!may_have_applied(Some(429), false));
        assert!(!may_have_applied(None, true));
    }

    #[test]
    fn resent_delete_finding_nothing_is_done() {
        let missing = "RESOURCE_DOES_NOT_EXIST";
        // The first attempt deleted it and its reply was lost.
        assert!(resent_delete_done(Repeat::Delete, true, true, missing));
        // On a first attempt, "missing" is the caller's to judge.
        assert!(!resent_delete_done(Repeat::Delete, false, true, missing));
        // A wrong endpoint is never "already deleted".
        assert!(!resent_delete_done(
            Repeat::Delete,
            true,
            true,
            "ENDPOINT_NOT_FOUND"
        ));
        assert!(!resent_delete_done(Repeat::Safe, true, true, missing));
        assert!(!resent_delete_done(
            Repeat::Delete,
            true,
            false,
            "INVALID_STATE"
        ));
    }

    #[test]
    fn transient_messages() {
        assert!(is_transient_message(
            "RPC token bucket limit has been exceeded, slow down"
        ));
        assert!(!is_transient_message("Job 1 does not exist."));
    }

    #[test]
    fn retry_after_integer_only() {
        use reqwest::header::HeaderValue;
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("3"))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static(
                "Wed, 21 Oct 2015 07:28:00 GMT"
            ))),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut b = Backoff::new(&cfg(600_000));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay(None).unwrap()).collect();
        for (i, d) in delays.iter().enumerate() {
            let exp = Duration::from_millis(100 * (1 << i)).min(Duration::from_millis(800));
            assert!(
                *d >= exp / 2 && *d <= exp,
                "attempt {i}: {d:?} not in [{:?}, {exp:?}]",
                exp / 2
            );
        }
        assert_eq!(b.attempts(), 8);
    }

    #[test]
    fn a_limited_budget_gives_up_sooner_and_never_grows() {
        let mut b = Backoff::new(&cfg(60_000));
        b.limit_budget(Duration::from_millis(0));
        assert_eq!(b.next_delay(None), None, "nothing fits a zero budget");
        let mut b = Backoff::new(&cfg(0));
        b.limit_budget(Duration::from_secs(3600));
        assert_eq!(b.next_delay(None), None, "limit_budget must not grow it");
    }

    #[test]
    fn budget_bounds_retries_and_retry_after_wins() {
        let mut b = Backoff::new(&cfg(1_000));
        assert_eq!(
            b.next_delay(Some(Duration::from_millis(900))),
            Some(Duration::from_millis(900))
        );
        assert_eq!(b.next_delay(Some(Duration::from_secs(2))), None);
    }

    #[test]
    fn zero_retry_after_still_backs_off() {
        let mut b = Backoff::new(&cfg(60_000));
        let d = b.next_delay(Some(Duration::ZERO)).unwrap();
        assert!(d >= Duration::from_millis(50), "{d:?}");
    }
}
