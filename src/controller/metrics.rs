//! Prometheus metrics served on `/metrics` (all prefixed `remote_reindex_`).
//!
//! Label sets are bounded: `result` and `reason` take values from fixed lists (the condition
//! reasons), `kind` is `request` or `bulk_item`; `namespace`/`name` appear only on the
//! `active_copy_*` gauges, and only while that resource's copy runs.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `reconciliations_total` | counter | reconciliations run (RemoteReindex and Migration) |
//! | `reconcile_duration_seconds` | histogram | duration of one reconciliation (RemoteReindex and Migration) |
//! | `reconcile_errors_total` | counter | reconciliations that failed (retried) |
//! | `copies_running` | gauge | copies running now |
//! | `copies_in_phase{phase}` | gauge | running copies by phase: `Pending`, `Copying`, `Syncing`, `Finalizing` |
//! | `copies_finished_total{result}` | counter | copy tasks ended: `succeeded`, `failed`, `interrupted`, `suspended` |
//! | `copy_failures_total{reason}` | counter | failed copies by condition reason |
//! | `documents_read_total` | counter | documents read from sources |
//! | `documents_written_total` | counter | documents the destinations accepted |
//! | `documents_failed_total` | counter | documents the destinations rejected |
//! | `documents_conflicts_total` | counter | version conflicts skipped |
//! | `documents_rewritten_total` | counter | documents written again (restarted slice, re-sent bulk) |
//! | `slice_restarts_total` | counter | slices read again from their beginning (a lost or failed scroll page, an expired scroll or point in time, an interrupted slice that could not be continued) |
//! | `bulk_requests_total` | counter | `_bulk` requests sent |
//! | `bulk_bytes_total` | counter | `_bulk` body bytes sent |
//! | `bulk_duration_seconds` | histogram | duration of `_bulk` calls, their retries included |
//! | `retries_total{kind}` | counter | `request`: requests retried; `bulk_item`: items resent after 429 |
//! | `active_copy_documents_written{namespace,name}` | gauge | documents written by a running copy |
//! | `active_copy_documents_expected{namespace,name}` | gauge | documents a running copy expects |
//! | `active_copy_documents_per_second{namespace,name}` | gauge | a running copy's recent rate |
//! | `catchup_rounds_total` | counter | catch-up rounds completed (`spec.catchUp`) |
//! | `catchup_round_documents` | histogram | documents copied per catch-up round |
//! | `active_copy_catchup_lag_seconds{namespace,name}` | gauge | lag of a running copy's last catch-up round |
//! | `slices_held{namespace,name,slice}` | gauge | scale-out: 1 for each slice this pod copies now |

use crate::api::Phase;
use crate::api::Reason;
use crate::copy::{BulkObserver, StatsSnapshot};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Label `result` of `copies_finished_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `succeeded`, `failed`, `interrupted` or `suspended`.
    pub result: &'static str,
}

/// Label `reason` of `copy_failures_total`: a condition reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The condition reason, e.g. `Unreachable`.
    pub reason: &'static str,
}

/// Label `kind` of `retries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabel {
    /// `request` (a whole request to either cluster) or `bulk_item` (an item resent after 429).
    pub kind: &'static str,
}

/// Label `phase` of `copies_in_phase`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// `Pending`, `Copying`, `Syncing` or `Finalizing`.
    pub phase: &'static str,
}

/// Labels of the `active_copy_*` gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
}

/// Labels of `slices_held`: a slice of a running copy (scale-out), present only while held.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SliceLabels {
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// The slice number.
    pub slice: u32,
}

/// A float gauge.
type FloatGauge = Gauge<f64, AtomicU64>;

/// The operator's metrics. Every field is a cheap handle (clones share the value).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Reconciliations run.
    pub reconciliations: Counter,
    /// Reconciliations that returned an error.
    pub reconcile_errors: Counter,
    /// Duration of one reconciliation, in seconds.
    pub reconcile_duration: Histogram,
    /// Copies running now.
    pub copies_running: Gauge,
    /// Running copies by phase.
    pub copies_in_phase: Family<PhaseLabel, Gauge>,
    /// Copies ended, by result.
    pub copies_finished: Family<ResultLabel, Counter>,
    /// Failed copies, by condition reason.
    pub copy_failures: Family<ReasonLabel, Counter>,
    /// Documents read by all copies.
    pub documents_read: Counter,
    /// Documents written by all copies.
    pub documents_written: Counter,
    /// Documents rejected by the destinations.
    pub documents_failed: Counter,
    /// Version conflicts skipped.
    pub documents_conflicts: Counter,
    /// Documents written again.
    pub documents_rewritten: Counter,
    /// Slices started over.
    pub slice_restarts: Counter,
    /// `_bulk` requests sent.
    pub bulk_requests: Counter,
    /// `_bulk` body bytes sent.
    pub bulk_bytes: Counter,
    /// Duration of `_bulk` calls in seconds.
    pub bulk_duration: Histogram,
    /// Retries by kind.
    pub retries: Family<RetryLabel, Counter>,
    /// Documents written by each running copy.
    pub active_written: Family<ResourceLabels, Gauge>,
    /// Documents expected by each running copy (absent when unknown).
    pub active_expected: Family<ResourceLabels, Gauge>,
    /// Recent documents per second of each running copy.
    pub active_rate: Family<ResourceLabels, FloatGauge>,
    /// Catch-up rounds completed.
    pub catchup_rounds: Counter,
    /// Documents copied per catch-up round.
    pub catchup_round_documents: Histogram,
    /// Lag of each running copy's last catch-up round, in seconds.
    pub catchup_lag: Family<ResourceLabels, FloatGauge>,
    /// Scale-out: the slices this pod holds (1 while held; the pod is the scrape target).
    pub slices_held: Family<SliceLabels, Gauge>,
    /// Request retries already counted from [`crate::search::request_retries_total`].
    request_retries_seen: Mutex<u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("remote_reindex");
        let m = Metrics {
            reconciliations: Counter::default(),
            reconcile_errors: Counter::default(),
            // 1 ms … 33 s.
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            copies_running: Gauge::default(),
            copies_in_phase: Family::default(),
            copies_finished: Family::default(),
            copy_failures: Family::default(),
            documents_read: Counter::default(),
            documents_written: Counter::default(),
            documents_failed: Counter::default(),
            documents_conflicts: Counter::default(),
            documents_rewritten: Counter::default(),
            slice_restarts: Counter::default(),
            bulk_requests: Counter::default(),
            bulk_bytes: Counter::default(),
            // 5 ms … 41 s.
            bulk_duration: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            retries: Family::default(),
            active_written: Family::default(),
            active_expected: Family::default(),
            active_rate: Family::default(),
            catchup_rounds: Counter::default(),
            // 1 … 1,048,576 documents.
            catchup_round_documents: Histogram::new(exponential_buckets(1.0, 4.0, 11)),
            catchup_lag: Family::default(),
            slices_held: Family::default(),
            request_retries_seen: Mutex::new(0),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "reconciliations",
            "Reconciliations run",
            m.reconciliations.clone(),
        );
        r.register(
            "reconcile_errors",
            "Reconciliations that failed (retried)",
            m.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of one reconciliation (RemoteReindex and Migration)",
            m.reconcile_duration.clone(),
        );
        r.register(
            "copies_running",
            "Copies running now",
            m.copies_running.clone(),
        );
        r.register(
            "copies_in_phase",
            "Running copies by phase (Pending, Copying, Finalizing)",
            m.copies_in_phase.clone(),
        );
        r.register(
            "copies_finished",
            "Copy tasks ended, by result (succeeded, failed, interrupted, suspended)",
            m.copies_finished.clone(),
        );
        r.register(
            "copy_failures",
            "Failed copies, by condition reason",
            m.copy_failures.clone(),
        );
        r.register(
            "documents_read",
            "Documents read from source clusters",
            m.documents_read.clone(),
        );
        r.register(
            "documents_written",
            "Documents the destination clusters accepted",
            m.documents_written.clone(),
        );
        r.register(
            "documents_failed",
            "Documents the destination clusters rejected",
            m.documents_failed.clone(),
        );
        r.register(
            "documents_conflicts",
            "Version conflicts skipped",
            m.documents_conflicts.clone(),
        );
        r.register(
            "documents_rewritten",
            "Documents written again after a slice restarted or a bulk request was re-sent",
            m.documents_rewritten.clone(),
        );
        r.register(
            "slice_restarts",
            "Slices started over from their beginning (lost scroll page, expired scroll or point in time)",
            m.slice_restarts.clone(),
        );
        r.register(
            "bulk_requests",
            "_bulk requests sent",
            m.bulk_requests.clone(),
        );
        r.register(
            "bulk_bytes",
            "_bulk request body bytes sent",
            m.bulk_bytes.clone(),
        );
        r.register(
            "bulk_duration_seconds",
            "Duration of _bulk calls, their retries included",
            m.bulk_duration.clone(),
        );
        r.register(
            "retries",
            "Retries: request = a whole request to either cluster, bulk_item = a document resent after 429",
            m.retries.clone(),
        );
        r.register(
            "active_copy_documents_written",
            "Documents written by a running copy",
            m.active_written.clone(),
        );
        r.register(
            "active_copy_documents_expected",
            "Documents a running copy expects to copy",
            m.active_expected.clone(),
        );
        r.register(
            "active_copy_documents_per_second",
            "Recent documents per second of a running copy",
            m.active_rate.clone(),
        );
        r.register(
            "catchup_rounds",
            "Catch-up rounds completed",
            m.catchup_rounds.clone(),
        );
        r.register(
            "catchup_round_documents",
            "Documents copied per catch-up round",
            m.catchup_round_documents.clone(),
        );
        r.register(
            "active_copy_catchup_lag_seconds",
            "Lag of a running copy's last catch-up round (from its snapshot of the source to its end)",
            m.catchup_lag.clone(),
        );
        r.register(
            "slices_held",
            "Scale-out: slices of running copies this pod copies now (1 each)",
            m.slices_held.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a reconciliation and observes its duration when the returned guard drops.
    pub fn reconcile_timer(&self) -> ReconcileTimer<'_> {
        self.reconciliations.inc();
        ReconcileTimer {
            histogram: &self.reconcile_duration,
            started: std::time::Instant::now(),
        }
    }

    /// Counts a copy task that ended with `result` (`succeeded`, `failed`, `interrupted`,
    /// `suspended`).
    pub fn finished(&self, result: &'static str) {
        self.copies_finished
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts a copy that failed with the condition `reason`.
    pub fn failed(&self, reason: Reason) {
        self.copy_failures
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A [`BulkObserver`] feeding `bulk_duration_seconds`.
    pub fn bulk_observer(&self) -> BulkObserver {
        let h = self.bulk_duration.clone();
        Arc::new(move |d| h.observe(d.as_secs_f64()))
    }

    /// Tracks one running copy of `namespace/name` until the returned value is dropped.
    pub fn copy(&self, namespace: &str, name: &str) -> CopyMetrics {
        CopyMetrics {
            metrics: CopyHandles {
                read: self.documents_read.clone(),
                written: self.documents_written.clone(),
                failed: self.documents_failed.clone(),
                conflicts: self.documents_conflicts.clone(),
                rewritten: self.documents_rewritten.clone(),
                restarts: self.slice_restarts.clone(),
                bulks: self.bulk_requests.clone(),
                bytes: self.bulk_bytes.clone(),
                item_retries: self
                    .retries
                    .get_or_create(&RetryLabel { kind: "bulk_item" })
                    .clone(),
                in_phase: self.copies_in_phase.clone(),
                active_written: self.active_written.clone(),
                active_expected: self.active_expected.clone(),
                active_rate: self.active_rate.clone(),
                rounds: self.catchup_rounds.clone(),
                round_documents: self.catchup_round_documents.clone(),
                lag: self.catchup_lag.clone(),
            },
            labels: ResourceLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            last: Mutex::new(StatsSnapshot::default()),
            phase: Mutex::new(None),
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.sync_request_retries();
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode metrics");
        }
        out
    }

    /// Brings `retries_total{kind="request"}` up to the search clients' process-wide count.
    fn sync_request_retries(&self) {
        let total = crate::search::request_retries_total();
        let mut seen = self
            .request_retries_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let counter = self.retries.get_or_create(&RetryLabel { kind: "request" });
        counter.inc_by(total.saturating_sub(*seen));
        *seen = total.max(*seen);
    }
}

/// Handles into [`Metrics`] that a [`CopyMetrics`] updates.
#[derive(Debug)]
struct CopyHandles {
    read: Counter,
    written: Counter,
    failed: Counter,
    conflicts: Counter,
    rewritten: Counter,
    restarts: Counter,
    bulks: Counter,
    bytes: Counter,
    item_retries: Counter,
    in_phase: Family<PhaseLabel, Gauge>,
    active_written: Family<ResourceLabels, Gauge>,
    active_expected: Family<ResourceLabels, Gauge>,
    active_rate: Family<ResourceLabels, FloatGauge>,
    rounds: Counter,
    round_documents: Histogram,
    lag: Family<ResourceLabels, FloatGauge>,
}

/// One running copy's contribution to the metrics: [`CopyMetrics::update`] adds what its
/// counters gained since the last update to the totals and sets its `active_copy_*` gauges;
/// dropping it removes those gauges.
#[derive(Debug)]
pub struct CopyMetrics {
    metrics: CopyHandles,
    labels: ResourceLabels,
    last: Mutex<StatsSnapshot>,
    /// The phase this copy is counted in, in `copies_in_phase`.
    phase: Mutex<Option<&'static str>>,
}

impl CopyMetrics {
    /// Counts from `resumed` on: a resumed copy's counters start from its checkpoints, and what
    /// an earlier process copied must not be counted again by this one.
    pub fn start_from(&self, resumed: &StatsSnapshot) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = resumed.clone();
    }

    /// Counts this copy in `copies_in_phase` under `phase` (and no longer under the previous
    /// one); a terminal phase or suspension counts it nowhere.
    pub fn set_phase(&self, phase: Phase) {
        let now = match phase {
            Phase::Pending => Some("Pending"),
            Phase::Copying => Some("Copying"),
            Phase::Syncing => Some("Syncing"),
            Phase::Finalizing => Some("Finalizing"),
            Phase::Succeeded | Phase::Failed | Phase::Suspended => None,
        };
        let mut cur = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if *cur == now {
            return;
        }
        if let Some(old) = cur.take() {
            self.metrics
                .in_phase
                .get_or_create(&PhaseLabel { phase: old })
                .dec();
        }
        if let Some(new) = now {
            self.metrics
                .in_phase
                .get_or_create(&PhaseLabel { phase: new })
                .inc();
        }
        *cur = now;
    }

    /// Accounts for `snap` (the copy's counters now), `total` expected documents and the
    /// recent `rate`. Counters that went down (a slice restarted) add nothing until they pass
    /// their earlier value.
    pub fn update(&self, snap: &StatsSnapshot, total: Option<u64>, rate: Option<f64>) {
        let m = &self.metrics;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let add = |c: &Counter, now: u64, before: &mut u64| {
            if now > *before {
                c.inc_by(now - *before);
                *before = now;
            }
        };
        add(&m.read, snap.read, &mut last.read);
        add(&m.written, snap.written, &mut last.written);
        add(&m.failed, snap.failed, &mut last.failed);
        add(&m.conflicts, snap.conflicts, &mut last.conflicts);
        add(&m.rewritten, snap.rewritten, &mut last.rewritten);
        add(&m.restarts, snap.restarts, &mut last.restarts);
        add(&m.bulks, snap.bulks, &mut last.bulks);
        add(&m.bytes, snap.bytes, &mut last.bytes);
        add(&m.item_retries, snap.retries, &mut last.retries);
        let l = &self.labels;
        m.active_written
            .get_or_create(l)
            .set(i64::try_from(snap.written).unwrap_or(i64::MAX));
        if let Some(t) = total {
            m.active_expected
                .get_or_create(l)
                .set(i64::try_from(t).unwrap_or(i64::MAX));
        }
        if let Some(r) = rate {
            m.active_rate.get_or_create(l).set(r);
        }
    }
}

impl CopyMetrics {
    /// Accounts for a finished catch-up round: its documents join the totals (rounds have
    /// counters of their own), and the lag gauge shows its lag.
    pub fn round(&self, round: &StatsSnapshot, lag: std::time::Duration) {
        let m = &self.metrics;
        m.read.inc_by(round.read);
        m.written.inc_by(round.written);
        m.failed.inc_by(round.failed);
        m.conflicts.inc_by(round.conflicts);
        m.bulks.inc_by(round.bulks);
        m.bytes.inc_by(round.bytes);
        m.rounds.inc();
        m.round_documents.observe(round.written as f64);
        m.lag.get_or_create(&self.labels).set(lag.as_secs_f64());
    }
}

impl Drop for CopyMetrics {
    fn drop(&mut self) {
        self.set_phase(Phase::Succeeded);
        let m = &self.metrics;
        m.lag.remove(&self.labels);
        m.active_written.remove(&self.labels);
        m.active_expected.remove(&self.labels);
        m.active_rate.remove(&self.labels);
    }
}

/// Observes one reconciliation's duration when dropped (see [`Metrics::reconcile_timer`]).
pub struct ReconcileTimer<'a> {
    histogram: &'a Histogram,
    started: std::time::Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(read: u64, written: u64, bulks: u64) -> StatsSnapshot {
        StatsSnapshot {
            read,
            written,
            bulks,
            bytes: bulks * 100,
            ..Default::default()
        }
    }

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.reconciliations.inc();
        m.finished("succeeded");
        m.failed(crate::api::Reason::Unreachable);
        let text = m.render();
        for line in [
            "remote_reindex_reconciliations_total 1",
            r#"remote_reindex_copies_finished_total{result="succeeded"} 1"#,
            r#"remote_reindex_copy_failures_total{reason="Unreachable"} 1"#,
            r#"remote_reindex_retries_total{kind="request"} "#,
            "remote_reindex_documents_written_total 0",
            "remote_reindex_bulk_duration_seconds_count 0",
        ] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn copies_add_deltas_and_their_gauges_go_when_they_end() {
        let m = Metrics::default();
        let a = m.copy("team-a", "logs");
        let b = m.copy("team-b", "logs");
        a.update(&snap(100, 90, 2), Some(1000), Some(45.0));
        a.update(&snap(200, 180, 4), Some(1000), Some(45.0));
        b.update(&snap(50, 50, 1), None, None);
        // A restarted slice lowers the counters: nothing is subtracted or double counted.
        a.update(&snap(150, 150, 5), Some(1000), None);
        a.update(&snap(300, 280, 6), Some(1000), None);
        let text = m.render();
        for line in [
            "remote_reindex_documents_read_total 350",
            "remote_reindex_documents_written_total 330",
            "remote_reindex_bulk_requests_total 7",
            "remote_reindex_bulk_bytes_total 700",
            r#"remote_reindex_active_copy_documents_written{namespace="team-a",name="logs"} 280"#,
            r#"remote_reindex_active_copy_documents_expected{namespace="team-a",name="logs"} 1000"#,
            r#"remote_reindex_active_copy_documents_per_second{namespace="team-a",name="logs"} 45.0"#,
            r#"remote_reindex_active_copy_documents_written{namespace="team-b",name="logs"} 50"#,
        ] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
        assert!(!text.contains(r#"expected{namespace="team-b""#), "{text}");
        drop(a);
        drop(b);
        let text = m.render();
        assert!(!text.contains("namespace="), "{text}");
        assert!(
            text.contains("remote_reindex_documents_written_total 330"),
            "{text}"
        );
    }

    #[test]
    fn copies_are_counted_in_one_phase_and_slice_restarts_add_up() {
        let m = Metrics::default();
        let a = m.copy("ns", "a");
        let b = m.copy("ns", "b");
        a.set_phase(Phase::Pending);
        b.set_phase(Phase::Pending);
        a.set_phase(Phase::Copying);
        a.set_phase(Phase::Copying);
        let text = m.render();
        for line in [
            r#"remote_reindex_copies_in_phase{phase="Pending"} 1"#,
            r#"remote_reindex_copies_in_phase{phase="Copying"} 1"#,
        ] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
        let restarted = StatsSnapshot {
            restarts: 2,
            ..Default::default()
        };
        a.update(&restarted, None, None);
        a.update(&restarted, None, None);
        b.set_phase(Phase::Failed);
        drop(a);
        let text = m.render();
        for line in [
            r#"remote_reindex_copies_in_phase{phase="Pending"} 0"#,
            r#"remote_reindex_copies_in_phase{phase="Copying"} 0"#,
            "remote_reindex_slice_restarts_total 2",
        ] {
            assert!(text.contains(line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn a_resumed_copy_counts_only_what_this_process_copies() {
        let m = Metrics::default();
        let c = m.copy("ns", "resumed");
        c.start_from(&snap(1000, 1000, 0));
        c.update(&snap(1000, 1000, 0), Some(3000), None);
        c.update(&snap(1500, 1400, 3), Some(3000), None);
        let text = m.render();
        assert!(
            text.contains("remote_reindex_documents_written_total 400"),
            "{text}"
        );
        assert!(
            text.contains("remote_reindex_documents_read_total 500"),
            "{text}"
        );
        assert!(
            text.contains(r#"remote_reindex_active_copy_documents_written{namespace="ns",name="resumed"} 1400"#),
            "{text}"
        );
    }

    #[test]
    fn the_bulk_observer_feeds_the_histogram() {
        let m = Metrics::default();
        let o = m.bulk_observer();
        o(std::time::Duration::from_millis(3));
        o(std::time::Duration::from_millis(300));
        let text = m.render();
        assert!(
            text.contains("remote_reindex_bulk_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains(r#"remote_reindex_bulk_duration_seconds_bucket{le="0.005"} 1"#),
            "{text}"
        );
    }
}
