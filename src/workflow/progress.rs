//! Turns counter snapshots into the status `progress` block (rate, ETA, summary), for both drivers.

use crate::api::Progress;
use crate::copy::StatsSnapshot;
use std::time::{Duration, Instant};

/// A moving average of documents per second (exponentially weighted, ~10 s memory).
#[derive(Debug, Default)]
pub struct RateMeter {
    last: Option<(Instant, u64)>,
    rate: Option<f64>,
}

impl RateMeter {
    /// Feeds the current written count; returns the smoothed rate.
    pub fn observe(&mut self, now: Instant, written: u64) -> f64 {
        if let Some((t, w)) = self.last {
            let dt = now.duration_since(t).as_secs_f64();
            if dt > 0.05 {
                let inst = written.saturating_sub(w) as f64 / dt;
                let alpha = 1.0 - (-dt / 10.0).exp();
                self.rate = Some(match self.rate {
                    Some(r) => r + alpha * (inst - r),
                    None => inst,
                });
                self.last = Some((now, written));
            }
        } else {
            self.last = Some((now, written));
        }
        self.rate.unwrap_or(0.0)
    }
}

/// The status `progress` block for a snapshot.
pub fn progress(s: &StatsSnapshot, total: Option<u64>, rate: f64, retries: u64) -> Progress {
    let done = s.written + s.failed + s.conflicts;
    let percent = total
        .filter(|t| *t > 0)
        .map(|t| ((done.min(t) * 100) / t) as i64)
        .or(total.map(|_| 100));
    let eta = match total {
        Some(t) if rate > 0.5 && t > done => Some(format_duration(Duration::from_secs_f64(
            (t - done) as f64 / rate,
        ))),
        Some(t) if t <= done => Some("0s".into()),
        _ => None,
    };
    let summary = match (total, percent) {
        (Some(t), Some(p)) => format!("{}/{} ({}%)", s.written, t, p),
        _ => format!("{}", s.written),
    };
    Progress {
        total: total.map(|t| t as i64),
        read: s.read as i64,
        written: s.written as i64,
        failed: s.failed as i64,
        conflicts: s.conflicts as i64,
        retries: retries as i64,
        percent,
        docs_per_second: Some(format!("{rate:.0}")),
        eta,
        summary: Some(summary),
    }
}

/// `3m20s`, `1h5m`, `42s`.
pub fn format_duration(d: Duration) -> String {
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
    fn summary_percent_and_eta() {
        let s = StatsSnapshot {
            read: 12034,
            written: 12034,
            ..Default::default()
        };
        let p = progress(&s, Some(25000), 1000.0, 0);
        assert_eq!(p.summary.as_deref(), Some("12034/25000 (48%)"));
        assert_eq!(p.eta.as_deref(), Some("12s"));
        assert_eq!(format_duration(Duration::from_secs(200)), "3m20s");
    }

    #[test]
    fn rate_is_smoothed() {
        let mut m = RateMeter::default();
        let t0 = Instant::now();
        assert_eq!(m.observe(t0, 0), 0.0);
        let r = m.observe(t0 + Duration::from_secs(1), 1000);
        assert!((r - 1000.0).abs() < 1e-6);
        let r2 = m.observe(t0 + Duration::from_secs(2), 1000);
        assert!(r2 < 1000.0 && r2 > 500.0);
    }
}
