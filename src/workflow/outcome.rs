//! The result of a finished copy, and its one-line summary.

use super::CutoverOutcome;
use super::prepared::Prepared;
use crate::api::Reason;
use crate::api::Verify;
use crate::copy::{SliceCheckpoint, StatsSnapshot};
use std::time::Duration;

/// The result of a finished copy.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Final counters.
    pub stats: StatsSnapshot,
    /// What prepare decided.
    pub prepared: Prepared,
    /// Documents in the destination after the refresh.
    pub dest_count: u64,
    /// Documents expected from the source's snapshot (capped by `maxDocs`).
    pub expected: u64,
    /// How the source was read: `pit` or `scroll`.
    pub paging: &'static str,
    /// Whether the copy was verified: the count exactly (the destination started empty, no
    /// pipeline), or the checksum.
    pub verified: bool,
    /// `spec.verify` as applied.
    pub method: Verify,
    /// The checksum comparison, with `spec.verify: Checksum`.
    pub checksum: Option<crate::verify::ChecksumReport>,
    /// The slices' final checkpoints (all done, nothing left open).
    pub checkpoints: Vec<SliceCheckpoint>,
    /// The success reason: `Verified` (against the source or the documents read), `Copied`
    /// (the destination was not empty) or `TaskCountsOnly` (`mode: Server` without access to
    /// the source: checked against the task's own counts only).
    pub reason: Reason,
    /// Wall time of the copy phase.
    pub copy_time: Duration,
    /// Requests retried (whole requests and resent items).
    pub retries: u64,
    /// What the cutover did (`spec.catchUp`).
    pub cutover: Option<CutoverOutcome>,
}

impl Outcome {
    /// A one-line summary for conditions, events and the CLI.
    pub fn message(&self) -> String {
        if let Some(c) = &self.cutover {
            return format!(
                "initial copy: {} documents; {}",
                self.stats.written,
                c.message()
            );
        }
        let rate = self.stats.written as f64 / self.copy_time.as_secs_f64().max(0.001);
        let check = match (&self.checksum, self.method, self.verified) {
            (None, _, true) if self.reason == Reason::TaskCountsOnly => {
                "count checked against the reindex task's own counts only (the source is not reachable from here)".into()
            }
            (Some(c), _, _) => c.message(),
            (None, Verify::None, _) => "not verified (spec.verify: None)".into(),
            (None, _, true) => "count verified against the source's snapshot".into(),
            (None, _, false) if self.prepared.dest_was_empty => {
                "an ingest pipeline may drop documents: count not verified".into()
            }
            (None, _, false) => "destination was not empty: count not verified".into(),
        };
        let pit = match (self.stats.pit_restarts, self.stats.pruned) {
            (0, _) => String::new(),
            (n, 0) => format!(
                "; the point in time was lost {n} time(s): every slice, finished ones included, started again under a new one and the expected count was taken again"
            ),
            (n, p) => format!(
                "; the point in time was lost {n} time(s): every slice, finished ones included, started again under a new one, the expected count was taken again and {p} document(s) the new one no longer holds were deleted from the destination"
            ),
        };
        format!(
            "copied {} of {} documents expected ({} failed, {} conflicts, {} rewritten, {} slice restarts; paging: {}) in {:.1}s ({:.0} docs/s); destination holds {}, {check}{pit}",
            self.stats.written,
            self.expected,
            self.stats.failed,
            self.stats.conflicts,
            self.stats.rewritten,
            self.stats.restarts,
            self.paging,
            self.copy_time.as_secs_f64(),
            rate,
            self.dest_count
        )
    }
}
