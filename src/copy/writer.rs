//! Bulk writers: send batches, resend only the items rejected with 429, account for failures,
//! conflicts and rewrites.

use super::batch::BulkBatch;
use super::stats::{CopyStats, FailureSample, SliceCounters};
use super::timing::Part;
use super::{CopyError, CopyPlan, WriteOp};
use crate::search::BulkOutcome;
use backon::Retryable;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// One of the `max_concurrent_bulk` writers sharing the queue.
pub(super) struct Writer {
    pub plan: Arc<CopyPlan>,
    pub stats: Arc<CopyStats>,
    pub rx: Arc<Mutex<mpsc::Receiver<BulkBatch>>>,
    pub abort: CancellationToken,
}

/// Why one round of a batch did not settle it.
enum Round {
    /// Items rejected with 429, to resend after a delay: (the smaller batch, its outcome).
    Rejected(BulkBatch, BulkOutcome),
    /// A fatal error.
    Fatal(CopyError),
}

impl Writer {
    pub async fn run(self) -> Result<(), CopyError> {
        loop {
            // Only an abort (a fatal error elsewhere) stops a writer at once. On a caller's stop
            // the readers stop and the writers drain what is queued, so counters and
            // checkpoints match what reached the destination.
            let waiting = Instant::now();
            let next = tokio::select! {
                biased;
                _ = self.abort.cancelled() => return Err(CopyError::Cancelled),
                b = async { self.rx.lock().await.recv().await } => b,
            };
            let Some(batch) = next else { return Ok(()) };
            self.stats.time().add(Part::WriterIdle, waiting.elapsed());
            let (slice, epoch, page) = (batch.slice, batch.epoch, batch.page);
            let sending = Instant::now();
            let result = self.write(batch).await;
            self.stats.time().add(Part::Bulk, sending.elapsed());
            if result.is_ok() {
                self.stats.slice(slice).batch_settled(epoch, page);
            }
            self.stats.slice(slice).release();
            result?;
        }
    }

    /// Sends `batch`, resending the items rejected with 429 with the destination's backoff
    /// (backon); items still rejected when it is exhausted fail.
    async fn write(&self, batch: BulkBatch) -> Result<(), CopyError> {
        let pending = &std::sync::Mutex::new(batch);
        let outcome = (|| async move {
            let batch = pending.lock().expect("writer lock").clone();
            match self.round(&batch).await {
                Ok(None) => Ok(()),
                Ok(Some(rejected)) => {
                    *pending.lock().expect("writer lock") = rejected.0.clone();
                    Err(Round::Rejected(rejected.0, rejected.1))
                }
                Err(e) => Err(Round::Fatal(e)),
            }
        })
        .retry(self.plan.dest.retry_policy().backoff())
        .sleep(tokio::time::sleep)
        .when(|r| matches!(r, Round::Rejected(..)))
        .notify(|r, d| {
            if let Round::Rejected(b, _) = r {
                self.stats.add_retries(b.len() as u64);
                tracing::debug!(
                    items = b.len(),
                    delay_ms = d.as_millis() as u64,
                    "resending items rejected with 429"
                );
            }
        })
        .await;
        match outcome {
            Ok(()) => Ok(()),
            Err(Round::Fatal(e)) => Err(e),
            Err(Round::Rejected(batch, outcome)) => {
                for f in outcome.failures.iter().filter(|f| f.status == 429) {
                    let sample = FailureSample {
                        id: f.id.clone(),
                        status: 429,
                        reason: format!(
                            "still rejected after {} attempts: {}",
                            self.plan.dest.retry_attempts(),
                            f.reason
                        ),
                    };
                    self.fail(&batch, sample)?;
                }
                Ok(())
            }
        }
    }

    /// Sends `batch` once and accounts for its items; returns the items rejected with 429.
    async fn round(
        &self,
        batch: &BulkBatch,
    ) -> Result<Option<(BulkBatch, BulkOutcome)>, CopyError> {
        let plan = &self.plan;
        let (slice, epoch) = (batch.slice, batch.epoch);
        let counters = self.stats.slice(slice);
        // Scale-out: a slice whose Lease this process may no longer hold writes nothing more.
        if let Some(share) = &plan.share {
            (share.gate)().map_err(CopyError::Fenced)?;
        }
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
        let mut rewritten = 0u64;
        for f in &outcome.failures {
            if f.status == 429 {
                retry.push(f.position);
                continue;
            }
            if f.status == 409 || f.kind == "version_conflict_engine_exception" {
                // The document is there already. Under `create`, if this copy put it there
                // (the destination started empty, an earlier pass of a restarted slice, or this
                // very request's lost first attempt) it is a rewrite; otherwise a conflict,
                // under `conflicts`.
                if plan.op == WriteOp::Create
                    && (plan.dest_was_empty || outcome.resent || counters.take_rewritable(1) == 1)
                {
                    rewritten += 1;
                    continue;
                }
                settled_failures += 1;
                if plan.proceed_on_conflict {
                    counters.add_conflicts(epoch, batch.page, 1);
                    continue;
                }
                return Err(CopyError::Conflict {
                    id: f.id.clone(),
                    reason: f.reason.clone(),
                });
            }
            settled_failures += 1;
            let sample = FailureSample {
                id: f.id.clone(),
                status: f.status,
                reason: format!("{}: {}", f.kind, f.reason),
            };
            self.fail(batch, sample)?;
        }
        let accepted = batch.len() as u64 - settled_failures - retry.len() as u64;
        if plan.op == WriteOp::Index {
            // Overwrites of what an earlier pass wrote, or of a lost attempt's writes.
            rewritten += if outcome.resent {
                accepted
            } else {
                counters.take_rewritable(accepted)
            };
        }
        account(counters, batch, accepted, rewritten);
        if retry.is_empty() {
            return Ok(None);
        }
        Ok(Some((batch.subset(&retry), outcome_for(&outcome, &retry))))
    }

    /// Records a failed document; fails the copy past `maxFailedDocs`.
    fn fail(&self, batch: &BulkBatch, sample: FailureSample) -> Result<(), CopyError> {
        let failed = self
            .stats
            .add_failure(batch.slice, batch.epoch, Some(batch.page), sample);
        if failed > self.plan.max_failed_docs {
            return Err(CopyError::TooManyFailures {
                failed,
                max: self.plan.max_failed_docs,
                first: first_failure(&self.stats),
            });
        }
        Ok(())
    }
}

/// Counts a round's documents: `accepted` new or overwritten, `rewritten` of them (or besides
/// them, for `create` 409s) already there from this copy. Both are in the destination.
fn account(counters: &SliceCounters, batch: &BulkBatch, accepted: u64, rewritten: u64) {
    if counters.epoch() != batch.epoch {
        return;
    }
    counters.add_rewritten(rewritten);
    counters.add_written(batch.epoch, batch.page, accepted);
}

/// The failures of `outcome` at `positions`, renumbered for the smaller batch.
fn outcome_for(outcome: &BulkOutcome, positions: &[usize]) -> BulkOutcome {
    BulkOutcome {
        items: positions.len(),
        failures: positions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                outcome.failures.iter().find(|f| f.position == *p).map(|f| {
                    let mut f = f.clone();
                    f.position = i;
                    f
                })
            })
            .collect(),
        resent: outcome.resent,
    }
}

fn first_failure(stats: &CopyStats) -> String {
    stats
        .failure_sample()
        .first()
        .map(|f| format!("{}: {}", f.id, f.reason))
        .unwrap_or_default()
}
