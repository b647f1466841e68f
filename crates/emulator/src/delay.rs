//! The injected latency (`--latency-ms`), kept to what it says.
//!
//! `tokio::time::sleep` rounds its deadline up to the timer's next millisecond tick and the
//! driver wakes up to a millisecond after that: `--latency-ms 5` answered in about 6.5 ms
//! (measured: sequential GETs 0.24 ms at 0, 6.66 ms at 5), so every figure computed from the
//! knob was a third off. One thread releases the waiting requests at their deadlines,
//! sleeping on a futex timeout (the kernel's high-resolution timers, tens of microseconds).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use tokio::sync::oneshot;

type Waiter = (Instant, oneshot::Sender<()>);

/// The waiting requests, in deadline order. Every request waits the same latency, so
/// deadlines arrive in order (to within the microseconds between two threads' pushes, which
/// only delays a later one by as much): a queue, not a heap.
#[derive(Default)]
struct Waiting {
    queue: Mutex<Queue>,
    /// Signalled when the queue goes from empty to not (the thread sleeps without a
    /// deadline then) and at shutdown (the thread ends); a push behind a waiter needs no wake-up, the thread
    /// already sleeps until an earlier deadline.
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    waiters: VecDeque<Waiter>,
    closed: bool,
}

/// Releases requests `latency` after they arrive.
pub struct Delay {
    latency: Duration,
    /// `None` with no latency, or if the thread could not start (then tokio's timer).
    waiting: Option<Arc<Waiting>>,
}

impl Delay {
    /// Starts the timer thread (none for a zero latency); it ends with the `Delay`.
    pub fn new(latency: Duration) -> Delay {
        if latency.is_zero() {
            return Delay {
                latency,
                waiting: None,
            };
        }
        let waiting = Arc::new(Waiting::default());
        let released = waiting.clone();
        let started = std::thread::Builder::new()
            .name("emulator-latency".into())
            .spawn(move || release_at_deadlines(&released));
        if let Err(e) = &started {
            tracing::warn!("no latency thread ({e}): the injected latency runs up to 2 ms long");
        }
        Delay {
            latency,
            waiting: started.ok().map(|_| waiting),
        }
    }

    /// Waits until the latency has passed since `arrived`.
    pub async fn wait_from(&self, arrived: Instant) {
        if self.latency.is_zero() {
            return;
        }
        let deadline = arrived + self.latency;
        let Some(waiting) = &self.waiting else {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        };
        let (tx, rx) = oneshot::channel();
        let was_empty = {
            let mut queue = waiting.queue.lock();
            queue.waiters.push_back((deadline, tx));
            queue.waiters.len() == 1
        };
        if was_empty {
            waiting.wake.notify_one();
        }
        let _ = rx.await;
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        if let Some(waiting) = &self.waiting {
            waiting.queue.lock().closed = true;
            waiting.wake.notify_one();
        }
    }
}

fn release_at_deadlines(waiting: &Waiting) {
    let mut due = Vec::new();
    let mut queue = waiting.queue.lock();
    loop {
        let now = Instant::now();
        while queue
            .waiters
            .front()
            .is_some_and(|(deadline, _)| *deadline <= now)
        {
            due.extend(queue.waiters.pop_front());
        }
        if !due.is_empty() {
            // Waking the requests' tasks outside the lock: new arrivals do not wait on it.
            MutexGuard::unlocked(&mut queue, || {
                for (_, waiter) in due.drain(..) {
                    // The request may have been dropped (client gone): nothing to release.
                    let _ = waiter.send(());
                }
            });
        }
        if queue.closed {
            // Shutting down: nothing can still wait (a wait borrows the `Delay`); the
            // queue holds only requests whose clients left, dropped with it.
            return;
        }
        match queue.waiters.front() {
            Some((deadline, _)) => {
                let deadline = *deadline;
                waiting.wake.wait_until(&mut queue, deadline);
            }
            None => waiting.wake.wait(&mut queue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_is_never_released_before_its_latency() {
        // How close to the latency a release comes is measured, not asserted (a loaded
        // machine delays any wake-up): README "Benchmarks", emulator latency.
        let latency = Duration::from_millis(2);
        let delay = Delay::new(latency);
        for _ in 0..20 {
            let start = Instant::now();
            delay.wait_from(start).await;
            assert!(start.elapsed() >= latency, "released early");
        }
    }

    #[tokio::test]
    async fn concurrent_waits_are_each_released_after_their_own_latency() {
        let latency = Duration::from_millis(3);
        let delay = std::sync::Arc::new(Delay::new(latency));
        let waits = (0..64).map(|i| {
            let delay = delay.clone();
            tokio::spawn(async move {
                let start = Instant::now() + Duration::from_micros(i * 50);
                tokio::time::sleep_until(start.into()).await;
                let arrived = Instant::now();
                delay.wait_from(arrived).await;
                arrived.elapsed()
            })
        });
        for took in futures::future::join_all(waits).await {
            assert!(took.expect("wait task") >= latency);
        }
    }
}
