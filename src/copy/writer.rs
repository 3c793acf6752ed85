//! Bulk writers: send batches, resend only the items rejected with 429, account for failures.

use super::batch::BulkBatch;
use super::stats::{CopyStats, FailureSample};
use super::{CopyError, CopyPlan};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// One of the `max_concurrent_bulk` writers sharing the queue.
pub(super) struct Writer {
    pub plan: Arc<CopyPlan>,
    pub stats: Arc<CopyStats>,
    pub rx: Arc<Mutex<mpsc::Receiver<BulkBatch>>>,
    pub abort: CancellationToken,
}

impl Writer {
    pub async fn run(self) -> Result<(), CopyError> {
        loop {
            // Only an abort (a fatal error elsewhere) stops a writer at once. On a caller's stop
            // the readers stop and the writers drain what is queued, so counters and
            // checkpoints match what reached the destination.
            let next = tokio::select! {
                biased;
                _ = self.abort.cancelled() => return Err(CopyError::Cancelled),
                b = async { self.rx.lock().await.recv().await } => b,
            };
            let Some(batch) = next else { return Ok(()) };
            let slice = batch.slice;
            let result = self.write(batch).await;
            self.stats.slice(slice).release();
            result?;
        }
    }

    async fn write(&self, mut batch: BulkBatch) -> Result<(), CopyError> {
        let plan = &self.plan;
        let (slice, epoch) = (batch.slice, batch.epoch);
        let counters = self.stats.slice(slice);
        let mut delays = plan.dest_retry_delays();
        loop {
            let started = std::time::Instant::now();
            let outcome = plan
                .dest
                .bulk(batch.body.clone(), batch.len(), plan.pipeline.as_deref())
                .await
                .map_err(|source| CopyError::Search {
                    during: "writing a bulk request",
                    source,
                })?;
            self.stats.bulk_took(started.elapsed());
            self.stats.add_bulk(batch.body.len() as u64);
            let mut retry = Vec::new();
            let mut settled_failures = 0u64;
            for f in &outcome.failures {
                if f.status == 429 {
                    retry.push(f.position);
                    continue;
                }
                settled_failures += 1;
                if f.status == 409 || f.kind == "version_conflict_engine_exception" {
                    if plan.op == super::WriteOp::Create {
                        // Under `create` the document is already there (e.g. written before a
                        // restart): it counts as written.
                        settled_failures -= 1;
                        continue;
                    }
                    if plan.proceed_on_conflict {
                        counters.add_conflicts(epoch, 1);
                        continue;
                    }
                    return Err(CopyError::Conflict {
                        id: f.id.clone(),
                        reason: f.reason.clone(),
                    });
                }
                let sample = FailureSample {
                    id: f.id.clone(),
                    status: f.status,
                    reason: format!("{}: {}", f.kind, f.reason),
                };
                let failed = self.stats.add_failure(slice, epoch, sample);
                if failed > plan.max_failed_docs {
                    return Err(CopyError::TooManyFailures {
                        failed,
                        max: plan.max_failed_docs,
                        first: first_failure(&self.stats),
                    });
                }
            }
            let accepted = batch.len() as u64 - settled_failures - retry.len() as u64;
            counters.add_written(epoch, accepted);
            if retry.is_empty() {
                return Ok(());
            }
            match delays.next() {
                Some(d) => {
                    self.stats.add_retries(retry.len() as u64);
                    tracing::debug!(
                        items = retry.len(),
                        delay_ms = d.as_millis() as u64,
                        "resending items rejected with 429"
                    );
                    tokio::time::sleep(d).await;
                    batch = batch.subset(&retry);
                }
                None => {
                    for &p in &retry {
                        let f = outcome
                            .failures
                            .iter()
                            .find(|f| f.position == p)
                            .expect("retry positions come from failures");
                        let sample = FailureSample {
                            id: f.id.clone(),
                            status: 429,
                            reason: format!(
                                "still rejected after {} attempts: {}",
                                plan.dest.retry_attempts(),
                                f.reason
                            ),
                        };
                        let failed = self.stats.add_failure(slice, epoch, sample);
                        if failed > plan.max_failed_docs {
                            return Err(CopyError::TooManyFailures {
                                failed,
                                max: plan.max_failed_docs,
                                first: first_failure(&self.stats),
                            });
                        }
                    }
                    return Ok(());
                }
            }
        }
    }
}

fn first_failure(stats: &CopyStats) -> String {
    stats
        .failure_sample()
        .first()
        .map(|f| format!("{}: {}", f.id, f.reason))
        .unwrap_or_default()
}

impl CopyPlan {
    fn dest_retry_delays(&self) -> impl Iterator<Item = std::time::Duration> {
        self.dest.retry_delays()
    }
}
