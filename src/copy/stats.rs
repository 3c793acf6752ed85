//! Counters the engine updates and the drivers sample (progress bar, status patches, metrics).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How many failed documents are kept as a sample.
pub const FAILURE_SAMPLE: usize = 20;

/// A failed document, for the sample in status and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureSample {
    /// The document id.
    pub id: String,
    /// HTTP status of the bulk item (0 when the document never reached the destination).
    pub status: u16,
    /// Error type and reason.
    pub reason: String,
}

/// Called with the duration of every `_bulk` call (the whole call, its retries included), e.g. to
/// feed a latency histogram.
pub type BulkObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Live counters of one copy. Shared with the drivers; all updates are lock-free but the
/// failure sample and the open scroll ids.
#[derive(Debug, Default)]
pub struct CopyStats {
    read: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    conflicts: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
    bulks: AtomicU64,
    failures: Mutex<Vec<FailureSample>>,
    scrolls: Mutex<Vec<Option<String>>>,
    bulk_observer: OnceLock<Observer>,
}

/// [`BulkObserver`] with a `Debug` impl, so that [`CopyStats`] stays `Debug`.
struct Observer(BulkObserver);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BulkObserver")
    }
}

/// A point-in-time copy of [`CopyStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Documents read from the source.
    pub read: u64,
    /// Documents the destination accepted.
    pub written: u64,
    /// Documents rejected.
    pub failed: u64,
    /// Version conflicts (skipped documents).
    pub conflicts: u64,
    /// Requests or items resent.
    pub retries: u64,
    /// Bulk body bytes sent.
    pub bytes: u64,
    /// Bulk requests sent.
    pub bulks: u64,
}

impl CopyStats {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            read: self.read.load(Relaxed),
            written: self.written.load(Relaxed),
            failed: self.failed.load(Relaxed),
            conflicts: self.conflicts.load(Relaxed),
            retries: self.retries.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            bulks: self.bulks.load(Relaxed),
        }
    }

    /// Installs `observer` for the durations of `_bulk` calls (before the copy starts, e.g. from
    /// [`crate::workflow::Sink::copying`]). Only the first observer is kept; returns whether
    /// this one was installed.
    pub fn observe_bulks(&self, observer: BulkObserver) -> bool {
        self.bulk_observer.set(Observer(observer)).is_ok()
    }

    /// The sample of failed documents.
    pub fn failure_sample(&self) -> Vec<FailureSample> {
        self.failures.lock().expect("stats lock").clone()
    }

    /// Scroll ids that are open right now (to clear them if the process dies).
    pub fn open_scrolls(&self) -> Vec<String> {
        self.scrolls
            .lock()
            .expect("stats lock")
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    pub(crate) fn set_slices(&self, n: usize) {
        *self.scrolls.lock().expect("stats lock") = vec![None; n];
    }

    pub(crate) fn set_scroll(&self, slice: usize, id: Option<String>) {
        if let Some(s) = self.scrolls.lock().expect("stats lock").get_mut(slice) {
            *s = id;
        }
    }

    pub(crate) fn add_read(&self, n: u64) {
        self.read.fetch_add(n, Relaxed);
    }
    pub(crate) fn add_written(&self, n: u64) {
        self.written.fetch_add(n, Relaxed);
    }
    pub(crate) fn add_conflicts(&self, n: u64) {
        self.conflicts.fetch_add(n, Relaxed);
    }
    pub(crate) fn add_retries(&self, n: u64) {
        self.retries.fetch_add(n, Relaxed);
    }
    pub(crate) fn add_bulk(&self, bytes: u64) {
        self.bulks.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
    pub(crate) fn bulk_took(&self, took: Duration) {
        if let Some(o) = self.bulk_observer.get() {
            (o.0)(took);
        }
    }

    /// Records a failed document; returns the failure count after it.
    pub(crate) fn add_failure(&self, sample: FailureSample) -> u64 {
        tracing::warn!(id = %sample.id, status = sample.status, reason = %sample.reason, "document failed");
        let mut f = self.failures.lock().expect("stats lock");
        if f.len() < FAILURE_SAMPLE {
            f.push(sample);
        }
        self.failed.fetch_add(1, Relaxed) + 1
    }
}
