//! Turns counter snapshots into the status `progress` block (rate, ETA, summary), for both
//! drivers: the controller patches it into `.status`, the CLI prints it.

use crate::api::Progress;
use crate::copy::StatsSnapshot;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tracks recent samples of the written counter for a moving-average rate.
#[derive(Debug)]
pub struct RateWindow {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    /// A window over the last `window` of samples.
    pub fn new(window: Duration) -> Self {
        RateWindow {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Adds a sample and returns the rate over the window (documents per second), once two
    /// samples exist.
    pub fn push(&mut self, at: Instant, written: u64) -> Option<f64> {
        self.samples.push_back((at, written));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| at.duration_since(*t) > self.window)
        {
            self.samples.pop_front();
        }
        let (t0, w0) = *self.samples.front()?;
        let secs = at.duration_since(t0).as_secs_f64();
        (secs > 0.0).then(|| written.saturating_sub(w0) as f64 / secs)
    }
}

/// The progress block for counters `s`, the expected `total` and a rate (none yet: no rate and
/// no ETA).
pub fn progress(s: &StatsSnapshot, total: Option<u64>, rate: Option<f64>) -> Progress {
    let percent = total.map(|t| (s.written.min(t) * 100).checked_div(t).unwrap_or(100) as i64);
    let summary = match (total, percent) {
        (Some(t), Some(p)) => format!("{}/{t} ({p}%)", s.written),
        _ => s.written.to_string(),
    };
    let eta = match (total, rate) {
        (Some(t), Some(r)) if r > 0.0 && t > s.written => Some(format_eta(
            Duration::from_secs_f64((t - s.written) as f64 / r),
        )),
        _ => None,
    };
    Progress {
        total: total.map(|t| t as i64),
        read: s.read as i64,
        written: s.written as i64,
        failed: s.failed as i64,
        conflicts: s.conflicts as i64,
        rewritten: s.rewritten as i64,
        restarts: s.restarts as i64,
        retries: s.retries as i64,
        percent,
        docs_per_second: rate.map(|r| format!("{r:.0}")),
        eta,
        summary: Some(summary),
    }
}

/// `3m20s`, `1h2m`, `45s`.
pub fn format_eta(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_summary_percent_and_eta() {
        let s = StatsSnapshot {
            read: 13000,
            written: 12034,
            ..Default::default()
        };
        let p = progress(&s, Some(25000), Some(1000.0));
        assert_eq!(p.summary.as_deref(), Some("12034/25000 (48%)"));
        assert_eq!(p.percent, Some(48));
        assert_eq!(p.eta.as_deref(), Some("12s"));
        assert_eq!(p.docs_per_second.as_deref(), Some("1000"));
        assert_eq!(progress(&s, None, None).summary.as_deref(), Some("12034"));
        assert_eq!(
            progress(&StatsSnapshot::default(), Some(0), None).percent,
            Some(100)
        );
        assert_eq!(format_eta(Duration::from_secs(200)), "3m20s");
        assert_eq!(format_eta(Duration::from_secs(3720)), "1h2m");
    }

    #[test]
    fn rate_window_is_a_moving_average() {
        let mut w = RateWindow::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(w.push(t, 0), None);
        assert_eq!(w.push(t + Duration::from_secs(2), 2000), Some(1000.0));
        for i in 2..=10u64 {
            w.push(t + Duration::from_secs(2 * i), 2000 + (i - 1) * 100);
        }
        // Only the last ~10 s count: 50 docs/s, not the early burst.
        let r = w.push(t + Duration::from_secs(22), 3000).unwrap();
        assert!((r - 50.0).abs() < 1.0, "{r}");
    }
}
