//! Retry policy (reference §2.3): exponential backoff with jitter on 429,
//! 503/504 and transport failures, integer `Retry-After` honoured, a bounded
//! total budget, and no blind re-send of non-idempotent calls whose response
//! was lost.

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::Method;

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

/// Methods the client may re-send after an ambiguous failure. PATCH is
/// included because every PATCH of these APIs sets fields to given values.
pub(crate) fn is_idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::PATCH | Method::OPTIONS
    )
}

/// Disposition of an HTTP response.
pub(crate) fn for_status(status: u16, idempotent: bool) -> Disposition {
    match status {
        200..=299 => Disposition::Done,
        // Rate limiting rejects the request before applying it: safe for any method.
        429 => Disposition::Retry,
        // Unavailable / gateway timeout may arrive after the work was done.
        503 | 504 if idempotent => Disposition::Retry,
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
pub(crate) fn for_transport(err: &reqwest::Error, idempotent: bool) -> Disposition {
    if err.is_connect() || idempotent {
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
        assert_eq!(for_status(200, false), Disposition::Done);
        assert_eq!(for_status(204, false), Disposition::Done);
        assert_eq!(for_status(429, false), Disposition::Retry);
        assert_eq!(for_status(503, true), Disposition::Retry);
        assert_eq!(for_status(503, false), Disposition::OutcomeUnknown);
        assert_eq!(for_status(504, false), Disposition::OutcomeUnknown);
        for s in [400, 401, 403, 404, 409, 500, 501] {
            assert_eq!(for_status(s, true), Disposition::Fail, "{s}");
        }
    }

    #[test]
    fn transient_messages() {
        assert!(is_transient_message(
            "RPC token bucket limit has been exceeded, slow down"
        ));
        assert!(!is_transient_message("Job 1 does not exist."));
    }

    #[test]
    fn idempotent_methods() {
        assert!(is_idempotent_method(&Method::GET));
        assert!(is_idempotent_method(&Method::DELETE));
        assert!(is_idempotent_method(&Method::PATCH));
        assert!(is_idempotent_method(&Method::PUT));
        assert!(!is_idempotent_method(&Method::POST));
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
