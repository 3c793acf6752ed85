//! The controller's [`Sink`]: phases become status patches and Events, `prepared` is persisted
//! before the destination is tuned, and a sampler writes progress every few seconds.

use super::writer::StatusWriter;
use super::writer::api_message;
use crate::api::{Change, FailedDoc, Phase, ProgressPatch, Reason, RemoteReindexStatusPatch};
use crate::controller::metrics::CopyMetrics;
use crate::copy::{CopyStats, StatsSnapshot};
use crate::workflow::progress::{RateWindow, progress};
use crate::workflow::{PreflightRetry, Prepared, Sink};
use kube::runtime::events::EventType;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often progress is written to `.status` at most.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);

/// Window of the moving-average rate.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// A [`Sink`] that writes to the resource's status (and feeds the metrics).
pub struct StatusSink {
    writer: Arc<StatusWriter>,
    metrics: Arc<CopyMetrics>,
    sampler: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
    stats: Mutex<Option<(Arc<CopyStats>, Option<u64>)>>,
    /// The reason of the last pre-flight retry an Event was recorded for.
    retry_reason: Mutex<Option<Reason>>,
}

impl StatusSink {
    /// A sink writing through `writer`.
    pub fn new(writer: Arc<StatusWriter>) -> Self {
        let (namespace, name) = writer.resource();
        let metrics = Arc::new(writer.ctx.metrics.copy(namespace, name));
        metrics.set_phase(Phase::Pending);
        StatusSink {
            writer,
            metrics,
            sampler: Mutex::new(None),
            stats: Mutex::new(None),
            retry_reason: Mutex::new(None),
        }
    }

    /// Stops the sampler and waits for its last patch, so that later patches win.
    pub async fn stop_sampler(&self) {
        let sampler = self
            .sampler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, handle)) = sampler {
            stop.cancel();
            if let Err(e) = handle.await {
                tracing::warn!(error = %e, "progress sampler ended abnormally");
            }
        }
    }

    /// The copy's counters and expected total, once copying started.
    pub fn stats(&self) -> Option<(Arc<CopyStats>, Option<u64>)> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Sink for StatusSink {
    async fn phase(&self, phase: Phase, reason: Reason, message: String) -> Result<(), String> {
        tracing::info!(%phase, %reason, message, "phase");
        self.metrics.set_phase(phase);
        self.writer
            .phase(phase, reason, &message, RemoteReindexStatusPatch::default())
            .await
            .map_err(|e| api_message(&e))
    }

    async fn prepared(&self, p: &Prepared) -> Result<(), String> {
        // The engine continues from these checkpoints when the slicing is the same.
        if !p.checkpoints.is_empty() && p.checkpoints.len() == p.slices as usize {
            let mut resumed = StatsSnapshot::default();
            for c in &p.checkpoints {
                resumed.read += c.read;
                resumed.written += c.written;
                resumed.failed += c.failed;
                resumed.conflicts += c.conflicts;
                resumed.rewritten += c.rewritten;
                resumed.restarts += u64::from(c.restarts);
            }
            self.metrics.start_from(&resumed);
        }
        let status = RemoteReindexStatusPatch {
            original_settings: Change::Set(p.original_settings.clone()),
            dest_was_empty: Change::Set(p.dest_was_empty),
            dest_index_uuid: p.dest_index_uuid.clone().into(),
            started_at: Change::Set(super::status::now()),
            progress: Change::Set(ProgressPatch {
                total: p.total.map(|t| t as i64).into(),
                read: Change::Set(0),
                written: Change::Set(0),
                failed: Change::Set(0),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.writer
            .patch(&status)
            .await
            .map_err(|e| api_message(&e))
    }

    async fn catch_up(&self, report: &crate::workflow::CatchUpReport) -> Result<(), String> {
        super::live::report(&self.writer, &self.metrics, report).await
    }

    async fn task(&self, task: Option<&str>) -> Result<(), String> {
        if let Some(t) = task {
            tracing::info!(task = t, "the destination's reindex task started");
        }
        self.writer
            .patch(&RemoteReindexStatusPatch {
                task: task.map(str::to_string).into(),
                ..Default::default()
            })
            .await
            .map_err(|e| api_message(&e))
    }

    async fn expected(&self, expected: u64, paging: &'static str) -> Result<(), String> {
        self.writer
            .patch(&RemoteReindexStatusPatch {
                paging: Change::Set(paging.to_string()),
                progress: Change::Set(ProgressPatch {
                    total: Change::Set(expected as i64),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .map_err(|e| api_message(&e))
    }

    /// Every retry updates the conditions (reason, attempt, time left); an Event is recorded
    /// when the reason is new, so a five-minute wait does not flood `kubectl describe`.
    async fn preflight_retry(&self, retry: PreflightRetry) {
        let message = retry.message();
        if let Err(e) = self.writer.retrying(retry.reason, &message).await {
            tracing::warn!(error = %api_message(&e), "could not record the pre-flight retry");
        }
        let new_reason = self
            .retry_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(retry.reason)
            != Some(retry.reason);
        if new_reason {
            self.writer
                .event(EventType::Warning, retry.reason, &message)
                .await;
        }
    }

    fn copying(&self, stats: Arc<CopyStats>, total: Option<u64>) {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = Some((stats.clone(), total));
        stats.observe_bulks(self.writer.ctx.metrics.bulk_observer());
        let stop = CancellationToken::new();
        let handle = tokio::spawn(sample(
            self.writer.clone(),
            self.metrics.clone(),
            stats,
            total,
            stop.clone(),
        ));
        if let Some((old, _)) = self
            .sampler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((stop, handle))
        {
            old.cancel();
        }
    }
}

/// Patches `.status.progress`, `openScrolls` and `failures` every [`SAMPLE_INTERVAL`] while they
/// change, and updates the metrics, until `stop` (then updates the metrics a last time).
async fn sample(
    writer: Arc<StatusWriter>,
    metrics: Arc<CopyMetrics>,
    stats: Arc<CopyStats>,
    total: Option<u64>,
    stop: CancellationToken,
) {
    let mut window = RateWindow::new(RATE_WINDOW);
    let mut last: Option<RemoteReindexStatusPatch> = None;
    loop {
        let stopped = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(SAMPLE_INTERVAL) => false,
        };
        let snap = stats.snapshot();
        let rate = window.push(Instant::now(), snap.written);
        metrics.update(&snap, total, rate);
        if stopped {
            return;
        }
        // Periodic samples never claim a scroll is resumable: the reader may fetch more pages
        // before the next sample, so only the checkpoint written after a drain is trusted.
        let checkpoints: Vec<_> = stats
            .checkpoints()
            .into_iter()
            .map(|mut c| {
                c.resumable = false;
                c
            })
            .collect();
        let status = RemoteReindexStatusPatch {
            observed_generation: Change::Set(writer.generation()),
            progress: Change::Set(ProgressPatch::from(&progress(&snap, total, rate))),
            open_scrolls: Change::Set(stats.open_scrolls()),
            slices: Change::Set(crate::copy::slices_status(&checkpoints)),
            failures: failures_patch(&stats),
            ..Default::default()
        };
        if last.as_ref() == Some(&status) {
            continue;
        }
        match writer.patch(&status).await {
            Ok(()) => last = Some(status),
            Err(e) => tracing::warn!(error = %api_message(&e), "could not write progress"),
        }
    }
}

/// The failure sample for a patch (cleared when empty).
pub fn failures_patch(stats: &CopyStats) -> Change<Vec<FailedDoc>> {
    let f = failed_docs(stats);
    if f.is_empty() {
        Change::Clear
    } else {
        Change::Set(f)
    }
}

/// The failure sample as status entries.
pub fn failed_docs(stats: &CopyStats) -> Vec<FailedDoc> {
    stats
        .failure_sample()
        .into_iter()
        .map(|f| FailedDoc {
            id: f.id,
            status: i64::from(f.status),
            reason: f.reason,
        })
        .collect()
}
