//! Seeded fault injection (`--fail-rate`, `--lost-response-rate`, `--seed`).
//!
//! Each injectable request takes the next number `n` of a counter and draws from an RNG
//! seeded with `(seed, n)`, so the same request sequence against the same seed fails at the
//! same places, whatever the timing of other work.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Reject before applying: 429 or 503 with `Retry-After`.
    Fail(StatusCode),
    /// Apply, then answer 503 as if the reply were lost.
    Lose,
}

#[derive(Debug)]
pub struct Faults {
    seed: u64,
    fail_rate: f64,
    lost_rate: f64,
    counter: AtomicU64,
}

impl Faults {
    pub fn new(seed: u64, fail_rate: f64, lost_rate: f64) -> Faults {
        Faults {
            seed,
            fail_rate,
            lost_rate,
            counter: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.fail_rate > 0.0 || self.lost_rate > 0.0
    }

    /// The fault for the next request. Lost responses apply only to mutating requests, but
    /// every request consumes the same draws so the sequence stays aligned.
    pub fn draw(&self, mutating: bool) -> Fault {
        if !self.enabled() {
            return Fault::None;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            self.seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let fail: f64 = rng.random();
        let lose: f64 = rng.random();
        let too_many: bool = rng.random();
        if fail < self.fail_rate {
            Fault::Fail(if too_many {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            })
        } else if mutating && lose < self.lost_rate {
            Fault::Lose
        } else {
            Fault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults_and_rates_roughly_hold() {
        let seq = |seed| {
            let f = Faults::new(seed, 0.3, 0.2);
            (0..1000).map(|i| f.draw(i % 2 == 0)).collect::<Vec<_>>()
        };
        let a = seq(7);
        assert_eq!(a, seq(7));
        assert_ne!(a, seq(8));
        let fails = a.iter().filter(|f| matches!(f, Fault::Fail(_))).count();
        assert!((200..400).contains(&fails), "fails {fails}");
        assert!(a
            .iter()
            .enumerate()
            .all(|(i, f)| i % 2 == 0 || *f != Fault::Lose));
        assert_eq!(Faults::new(1, 0.0, 0.0).draw(true), Fault::None);
    }
}
