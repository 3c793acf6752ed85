//! One slice's reader: scrolls its part of the source and queues bulk batches.

use super::batch::{BatchBuilder, BulkBatch};
use super::stats::{CopyStats, FailureSample, SliceState};
use super::stop::Stop;
use super::{CopyError, CopyPlan};
use crate::search::{ScrollPage, SearchError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Pages are kept under this many bytes where the documents allow it (a page is held while it
/// is cut into bulks).
fn page_budget(plan: &CopyPlan) -> usize {
    (plan.bulk_bytes * 2).max(8 << 20)
}

/// The scroll page size: `plan.page_size`, lowered when a sample of the documents shows that a
/// full page would exceed the memory budget.
pub(super) async fn effective_page_size(plan: &CopyPlan) -> Result<u32, CopyError> {
    let sample = plan.page_size.min(50);
    let body = search_body(plan, sample, None);
    let raw = plan
        .source
        .search_raw(&plan.source_index, &body)
        .await
        .map_err(|source| CopyError::Search {
            during: "sampling the source",
            source,
        })?;
    let page = crate::search::ScrollPage { body: raw };
    let hits = page
        .parse()
        .map_err(|e| CopyError::BadPage(e.to_string()))?
        .hits()
        .len();
    if hits == 0 {
        return Ok(plan.page_size);
    }
    let per_doc = (page.body.len() / hits).max(1);
    let fit = (page_budget(plan) / per_doc).max(1);
    Ok(plan.page_size.min(fit as u32))
}

fn search_body(plan: &CopyPlan, size: u32, slice: Option<(u32, u32)>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "size": size,
        "sort": ["_doc"],
        "query": plan.query.clone().unwrap_or_else(|| serde_json::json!({"match_all": {}})),
    });
    if let Some((id, max)) = slice {
        body["slice"] = serde_json::json!({ "id": id, "max": max });
    }
    body
}

/// How often a slice starts over after its scroll expired before the copy fails.
const MAX_SLICE_RESTARTS: u32 = 3;

/// Reads one slice.
pub(super) struct SliceReader {
    pub plan: Arc<CopyPlan>,
    pub slice: u32,
    pub page_size: u32,
    pub stats: Arc<CopyStats>,
    pub tx: mpsc::Sender<BulkBatch>,
    /// The caller's stop request (readers stop at a page boundary).
    pub stop: Arc<Stop>,
    /// Internal abort after a fatal error elsewhere.
    pub abort: CancellationToken,
    pub remaining: Option<Arc<AtomicU64>>,
    /// A scroll left by an earlier process, safe to continue.
    pub resume_scroll: Option<String>,
    /// Drop the counts an earlier process checkpointed for this slice and read it again.
    pub start_over: bool,
}

impl SliceReader {
    pub async fn run(self) -> Result<(), CopyError> {
        if self.start_over {
            self.start_over();
        }
        let counters = self.stats.slice(self.slice);
        counters.set_state(SliceState::Running);
        let mut scroll_id: Option<String> = self.resume_scroll.clone();
        let result = self.read_all(&mut scroll_id).await;
        let keep = matches!(result, Err(CopyError::Cancelled))
            && self.stop.is_requested()
            && self.stop.mode().keeps_scrolls();
        if keep {
            // Left open for a successor; the checkpoint says whether it is safe to continue.
            return result;
        }
        if let Some(id) = scroll_id.take()
            && let Err(e) = self
                .plan
                .source
                .clear_scroll(std::slice::from_ref(&id))
                .await
        {
            tracing::warn!(slice = self.slice, error = %e, "could not clear the scroll; it expires after its keep-alive");
        }
        counters.set_scroll(None);
        result
    }

    async fn open(&self) -> Result<ScrollPage, CopyError> {
        let plan = &self.plan;
        let slice = (plan.slices > 1).then_some((self.slice, plan.slices));
        let body = search_body(plan, self.page_size, slice);
        self.cancellable(
            plan.source
                .open_scroll(&plan.source_index, &body, &plan.keep_alive),
        )
        .await?
        .map_err(|source| CopyError::Search {
            during: "opening the scroll",
            source,
        })
    }

    async fn next(&self, id: &str) -> Result<Result<ScrollPage, SearchError>, CopyError> {
        self.abortable(self.plan.source.scroll(id, &self.plan.keep_alive))
            .await
    }

    /// Starts the slice over after its scroll context vanished (expired keep-alive, source
    /// restarted): writes are idempotent by `_id`, so re-reading is safe.
    async fn restart(
        &self,
        restarts: &mut u32,
        why: &SearchError,
        builder: &mut BatchBuilder,
    ) -> Result<ScrollPage, CopyError> {
        *restarts += 1;
        if *restarts > MAX_SLICE_RESTARTS {
            return Err(CopyError::Search {
                during: "reading the next scroll page",
                source: why.clone(),
            });
        }
        builder.epoch = self.start_over();
        let msg = format!(
            "slice {} of {}: the scroll context is gone ({why}); restarting the slice from its beginning",
            self.slice, self.plan.slices
        );
        tracing::warn!("{msg}");
        self.stats.note(msg);
        self.open().await
    }

    /// Drops this slice's counts (giving its documents back to the `maxDocs` budget) and starts
    /// a new pass; returns the pass number.
    fn start_over(&self) -> u32 {
        let counters = self.stats.slice(self.slice);
        let had = counters.restart();
        if let Some(rem) = &self.remaining {
            rem.fetch_add(had, Ordering::Relaxed);
        }
        counters.epoch()
    }

    async fn read_all(&self, scroll_id: &mut Option<String>) -> Result<(), CopyError> {
        let plan = &self.plan;
        let counters = self.stats.slice(self.slice);
        let mut builder = BatchBuilder::new(
            plan.op,
            &plan.dest_index,
            plan.dest_type.as_deref(),
            plan.bulk_bytes,
        );
        builder.slice = self.slice;
        builder.epoch = counters.epoch();
        let mut restarts = 0;
        // A fetched page is "in hand" until all its batches are queued; a stop in between
        // leaves the mark set, so nobody continues this scroll past documents never written.
        counters.set_in_hand(true);
        let mut page = match scroll_id.clone() {
            Some(id) => match self.next(&id).await? {
                Ok(p) => {
                    tracing::info!(
                        slice = self.slice,
                        "continuing the scroll left by an earlier process"
                    );
                    p
                }
                Err(e) if e.is_scroll_expired() => {
                    self.restart(&mut restarts, &e, &mut builder).await?
                }
                Err(source) => {
                    return Err(CopyError::Search {
                        during: "continuing the scroll",
                        source,
                    });
                }
            },
            None => self.open().await?,
        };
        loop {
            let parsed = page
                .parse()
                .map_err(|e| CopyError::BadPage(e.to_string()))?;
            if let Some(why) = parsed.incomplete() {
                return Err(CopyError::SourceIncomplete(why));
            }
            if parsed.scroll_id.is_some() && parsed.scroll_id != *scroll_id {
                scroll_id.clone_from(&parsed.scroll_id);
                counters.set_scroll(scroll_id.clone());
            }
            let mut hits = parsed.hits();
            if hits.is_empty() {
                counters.set_in_hand(false);
                counters.set_state(SliceState::Done);
                return Ok(());
            }
            let mut last_page = false;
            if let Some(rem) = &self.remaining {
                let take = claim(rem, hits.len() as u64) as usize;
                last_page = take < hits.len() || rem.load(Ordering::Relaxed) == 0;
                hits = &hits[..take];
            }
            counters.add_read(hits.len() as u64);
            // On a stop the page in hand is still queued (without waiting for the throttle).
            tokio::select! {
                biased;
                _ = self.abort.cancelled() => return Err(CopyError::Cancelled),
                _ = self.stop.requested() => {}
                _ = plan.throttle.acquire(hits.len() as u64) => {}
            }
            let (mut batches, mut bad) = (Vec::new(), Vec::new());
            builder.push_hits(hits, &mut batches, &mut bad);
            batches.extend(builder.finish());
            for u in bad {
                let sample = FailureSample {
                    id: u.id.clone(),
                    status: 0,
                    reason: u.reason.clone(),
                };
                let failed = self.stats.add_failure(self.slice, builder.epoch, sample);
                if failed > plan.max_failed_docs {
                    return Err(CopyError::TooManyFailures {
                        failed,
                        max: plan.max_failed_docs,
                        first: format!("{}: {}", u.id, u.reason),
                    });
                }
            }
            for b in batches {
                counters.hold();
                if let Err(e) = self
                    .abortable(self.tx.send(b))
                    .await
                    .and_then(|r| r.map_err(|_| CopyError::Cancelled))
                {
                    counters.release();
                    return Err(e);
                }
            }
            counters.set_in_hand(false);
            if last_page {
                // Writers finish the queued batches; the slice is done once they have.
                counters.set_state(SliceState::Done);
                return Ok(());
            }
            let Some(id) = scroll_id.clone() else {
                return Err(CopyError::BadPage(
                    "no _scroll_id in a non-empty page".into(),
                ));
            };
            // A stop is honoured here, between pages, never during a fetch: a fetched page is
            // always queued, so a graceful stop leaves the scroll exactly at what was written.
            if self.stop.is_requested() {
                return Err(CopyError::Cancelled);
            }
            counters.set_in_hand(true);
            page = match self.next(&id).await? {
                Ok(p) => p,
                Err(e) if e.is_scroll_expired() => {
                    self.restart(&mut restarts, &e, &mut builder).await?
                }
                Err(source) => {
                    return Err(CopyError::Search {
                        during: "reading the next scroll page",
                        source,
                    });
                }
            };
        }
    }

    /// Runs `f` unless an abort (a fatal error elsewhere) comes first.
    async fn abortable<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, CopyError> {
        tokio::select! {
            biased;
            _ = self.abort.cancelled() => Err(CopyError::Cancelled),
            v = f => Ok(v),
        }
    }

    /// Runs `f` unless a stop or an abort comes first.
    async fn cancellable<T>(
        &self,
        f: impl std::future::Future<Output = T>,
    ) -> Result<T, CopyError> {
        tokio::select! {
            biased;
            _ = self.stop.requested() => Err(CopyError::Cancelled),
            _ = self.abort.cancelled() => Err(CopyError::Cancelled),
            v = f => Ok(v),
        }
    }
}

/// Takes up to `want` from a shared budget; returns what was granted.
fn claim(remaining: &AtomicU64, want: u64) -> u64 {
    let mut granted = 0;
    let _ = remaining.fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
        granted = r.min(want);
        Some(r - granted)
    });
    granted
}
