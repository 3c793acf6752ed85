//! A documents-per-second pacer shared by all slices, adjustable while a copy runs.
//!
//! Hand-written rather than `governor`: the rate must change at run time (rethrottle), batches are
//! larger than any sensible burst, and the limit must hold as an upper bound over a whole run, so
//! each batch pays for itself before it is sent (no initial burst).

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Paces documents to at most `rate` per second across all callers.
#[derive(Debug, Default)]
pub struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rate: Option<f64>,
    next: Option<Instant>,
}

impl Throttle {
    /// A throttle with the given limit (`None`: unlimited).
    pub fn new(rate: Option<f64>) -> Self {
        Throttle {
            state: Mutex::new(State {
                rate: rate.filter(|r| *r > 0.0),
                next: None,
            }),
        }
    }

    /// Changes the limit; takes effect for the next batch.
    pub fn set_rate(&self, rate: Option<f64>) {
        let mut s = self.state.lock().expect("throttle lock");
        s.rate = rate.filter(|r| *r > 0.0);
        if s.rate.is_none() {
            s.next = None;
        }
    }

    /// The current limit.
    pub fn rate(&self) -> Option<f64> {
        self.state.lock().expect("throttle lock").rate
    }

    /// Waits until `docs` more documents fit under the limit.
    pub async fn acquire(&self, docs: u64) {
        let until = {
            let mut s = self.state.lock().expect("throttle lock");
            let Some(rate) = s.rate else { return };
            let now = Instant::now();
            let start = s.next.map_or(now, |n| n.max(now));
            let until = start + Duration::from_secs_f64(docs as f64 / rate);
            s.next = Some(until);
            until
        };
        tokio::time::sleep_until(until).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_batches_to_the_rate() {
        let t = Throttle::new(Some(100.0));
        let start = Instant::now();
        for _ in 0..5 {
            t.acquire(50).await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(2500));
        t.set_rate(None);
        let before = Instant::now();
        t.acquire(1_000_000).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
