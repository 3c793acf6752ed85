//! One slice's reader: drives its [`SlicePager`] through its part of the source and queues bulk
//! batches. A page is never skipped: a scroll continuation that fails in any way the slice
//! could survive (lost answer, gateway error, expired context) restarts the slice from its
//! beginning; a PIT search is re-sent by the client, and a lost PIT restarts every slice of the
//! copy under a new one (see [`super::OpenCopy::run`]).

use super::batch::{BatchBuilder, BulkBatch};
use super::pager::{Paging, SlicePager};
use super::stats::{CopyStats, FailureSample, SliceState};
use super::stop::Stop;
use super::timing::Part;
use super::{CopyError, CopyPlan};
use crate::search::{ScrollPage, SearchError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Pages are kept under this many bytes where the documents allow it. A page is dropped before
/// the next one is fetched, so a slice holds one page plus the bulk bodies cut from it.
pub(super) fn page_budget(plan: &CopyPlan) -> usize {
    page_budget_for(plan.bulk_bytes)
}

/// [`page_budget`] of a copy whose bulks are at most `bulk_bytes`.
pub fn page_budget_for(bulk_bytes: usize) -> usize {
    (bulk_bytes * 2).max(8 << 20)
}

/// The first page size: `plan.page_size`, lowered when a sample of the documents shows that a
/// full page would exceed the memory budget. Only a starting point: PIT pages follow the bytes
/// per document they observe, and a scroll page over the budget restarts its slice smaller.
pub(super) async fn effective_page_size(plan: &CopyPlan) -> Result<u32, CopyError> {
    let sample = plan.page_size.min(50);
    let body = serde_json::json!({
        "size": sample,
        "sort": ["_doc"],
        "query": plan.query.clone().unwrap_or_else(|| serde_json::json!({"match_all": {}})),
    });
    let raw = plan
        .source
        .search_raw(&plan.source_index, &body)
        .await
        .map_err(|source| CopyError::Search {
            during: "sampling the source",
            source,
        })?;
    let page = ScrollPage { body: raw };
    let hits = page
        .parse()
        .map_err(|e| CopyError::BadPage(e.to_string()))?
        .hits()
        .len();
    if hits == 0 {
        return Ok(plan.page_size);
    }
    Ok(fit(plan, page.body.len(), hits))
}

/// A scroll's page size is fixed when it opens, and a page over the budget restarts its slice
/// from the beginning; so scroll pages aim at this share of the budget, leaving room for pages
/// of larger documents than the sample's mean. Measured: 6,000 documents of 0.2–20 KiB read
/// with 4 restarts (3,891 documents written again) when fitted to the whole budget, none at
/// 3/4 (a page of ~800 such documents varies by about 2%, the 50-document sample's mean by
/// about 8%).
const SCROLL_PAGE_SHARE: (u32, u32) = (3, 4);

/// The bytes a page is sized for: the whole [`page_budget`] for PIT pages (which follow the
/// observed bytes per document, page by page), [`SCROLL_PAGE_SHARE`] of it for scroll pages.
/// A page is still over the budget only past [`page_budget`] itself.
fn page_aim(plan: &CopyPlan) -> usize {
    match plan.paging {
        Paging::Pit(_) => page_budget(plan),
        Paging::Scroll => scroll_share(page_budget(plan)),
    }
}

/// `budget` scaled to [`SCROLL_PAGE_SHARE`] (at least 1).
fn scroll_share(budget: usize) -> usize {
    let (num, den) = SCROLL_PAGE_SHARE;
    (budget as u128 * u128::from(num) / u128::from(den)).max(1) as usize
}

/// The page size that keeps a page of documents of the observed size within [`page_aim`].
fn fit(plan: &CopyPlan, bytes: usize, docs: usize) -> u32 {
    let per_doc = (bytes / docs.max(1)).max(1);
    let fit = (page_aim(plan) / per_doc).max(1);
    plan.page_size.min(fit.min(u32::MAX as usize) as u32)
}

/// How often a slice may start over after a failed page before the copy fails.
pub(super) const MAX_SLICE_RESTARTS: u32 = 5;

/// Reads one slice.
pub(super) struct SliceReader {
    pub plan: Arc<CopyPlan>,
    pub slice: u32,
    /// Documents per page for the next request.
    pub size: u32,
    pub pager: SlicePager,
    pub stats: Arc<CopyStats>,
    pub tx: mpsc::Sender<BulkBatch>,
    /// The caller's stop request (readers stop at a page boundary).
    pub stop: Arc<Stop>,
    /// Internal abort after a fatal error elsewhere.
    pub abort: CancellationToken,
    pub remaining: Option<Arc<AtomicU64>>,
    /// Restarts after failures in this process (bounded by [`MAX_SLICE_RESTARTS`]).
    pub restarts: u32,
}

impl SliceReader {
    /// Fetches the slice's first page (or continues the checkpointed cursor) and records the
    /// slice's exact total before anything is written.
    pub async fn open(&mut self) -> Result<ScrollPage, CopyError> {
        let counters = self.stats.slice(self.slice);
        counters.set_state(SliceState::Running);
        // A fetched page is "in hand" until all its batches are queued; a stop in between
        // leaves the mark set, so nobody continues this cursor past documents never written.
        counters.set_in_hand(true);
        if self.pager.has_cursor() && counters.total().is_some() {
            match cancellable(&self.stop, &self.abort, self.pager.next(self.size)).await? {
                Ok(p) => {
                    tracing::info!(
                        slice = self.slice,
                        "continuing where an earlier process left off"
                    );
                    return Ok(p);
                }
                Err(e) if self.pit_lost(&e).is_some() => {
                    return Err(self.pit_lost(&e).expect("checked"));
                }
                Err(e) if self.survivable(&e) => return self.restart(&e).await,
                Err(source) => {
                    return Err(CopyError::Search {
                        during: "continuing the slice",
                        source,
                    });
                }
            }
        }
        self.first().await
    }

    /// The first page of a (new) pass, under the memory budget, with its total recorded.
    async fn first(&mut self) -> Result<ScrollPage, CopyError> {
        let budget = page_budget(&self.plan);
        loop {
            let page =
                match cancellable(&self.stop, &self.abort, self.pager.first(self.size)).await? {
                    Ok(p) => p,
                    Err(e) => {
                        return Err(self.pit_lost(&e).unwrap_or(CopyError::Search {
                            during: "opening the slice",
                            source: e,
                        }));
                    }
                };
            let parsed = page
                .parse()
                .map_err(|e| CopyError::BadPage(e.to_string()))?;
            let Some(total) = parsed.exact_total() else {
                return Err(CopyError::BadPage(
                    "the first page has no exact hits.total although track_total_hits was sent"
                        .into(),
                ));
            };
            let hits = parsed.hits().len();
            if page.body.len() > budget && self.size > 1 && hits > 1 {
                // Nothing of this page is written yet: ask again, smaller (a scroll with the
                // room its first size leaves).
                self.size = shrink(self.size, page.body.len(), page_aim(&self.plan));
                tracing::info!(
                    slice = self.slice,
                    size = self.size,
                    "page over the memory budget; asking for fewer documents"
                );
                continue;
            }
            self.stats.slice(self.slice).set_total(total);
            drop(parsed);
            return Ok(page);
        }
    }

    /// Whether the slice can survive `e` by starting over (rather than failing the copy). A
    /// scroll continuation failed in a way that may have moved the server's cursor, or any
    /// cursor whose context is gone.
    fn survivable(&self, e: &SearchError) -> bool {
        !self.pager.is_pit() && (e.is_scroll_expired() || e.is_transient())
    }

    /// A point in time that is gone is not this slice's to replace: every slice of the copy,
    /// finished ones included, must read one point in time (Elasticsearch slices a PIT by
    /// Lucene doc id, ranges that mean the same documents only within it). The copy starts
    /// every slice again under a new one ([`super::OpenCopy::run`]).
    fn pit_lost(&self, e: &SearchError) -> Option<CopyError> {
        (self.pager.is_pit() && e.is_scroll_expired()).then(|| CopyError::PitLost {
            generation: self.pager.generation(),
            reason: e.to_string(),
        })
    }

    /// Starts the slice over after `why`: writes are idempotent by `_id`, so re-reading is
    /// safe; the documents met again count as rewritten.
    async fn restart(&mut self, why: &SearchError) -> Result<ScrollPage, CopyError> {
        self.restarts += 1;
        if self.restarts > MAX_SLICE_RESTARTS {
            return Err(CopyError::Search {
                during: "reading the source (slice restarts exhausted)",
                source: why.clone(),
            });
        }
        let msg = format!(
            "slice {} of {}: a page could not be read ({why}); restarting the slice from its beginning",
            self.slice, self.plan.slices
        );
        tracing::warn!("{msg}");
        self.stats.note(msg);
        self.start_over();
        self.first().await
    }

    /// Drops this slice's counts (giving its documents back to the `maxDocs` budget) and starts
    /// a new pass.
    pub fn start_over(&self) {
        let counters = self.stats.slice(self.slice);
        let had = counters.restart();
        if let Some(rem) = &self.remaining {
            rem.fetch_add(had, Ordering::Relaxed);
        }
    }

    /// Releases the slice's scroll (after a failed open).
    pub async fn close(&mut self) {
        self.pager.close().await;
    }

    /// Reads the slice to its end, starting with `first`; clears its scroll unless a stop
    /// keeps it for a successor.
    pub async fn run(mut self, first: ScrollPage) -> Result<(), CopyError> {
        let started = Instant::now();
        let result = self.read_all(first).await;
        self.stats.time().add(Part::Reading, started.elapsed());
        let keep = matches!(result, Err(CopyError::Cancelled))
            && self.stop.is_requested()
            && self.stop.mode().keeps_scrolls();
        if keep {
            // Left open for a successor; the checkpoint says whether it is safe to continue.
            return result;
        }
        self.pager.close().await;
        if !self.pager.is_pit() {
            self.stats
                .slice(self.slice)
                .set_cursor(super::pager::Cursor::None);
        }
        result
    }

    async fn read_all(&mut self, first: ScrollPage) -> Result<(), CopyError> {
        let plan = self.plan.clone();
        let stats = self.stats.clone();
        let counters = stats.slice(self.slice);
        let mut builder = BatchBuilder::new(
            plan.op,
            &plan.dest_index,
            plan.dest_type.as_deref(),
            plan.bulk_bytes,
        );
        builder.slice = self.slice;
        let budget = page_budget(&plan);
        let mut next_page = Some(first);
        loop {
            builder.epoch = counters.epoch();
            let page = next_page.take().expect("a page in hand");
            let parsed = page
                .parse()
                .map_err(|e| CopyError::BadPage(e.to_string()))?;
            if let Some(why) = parsed.incomplete() {
                return Err(CopyError::SourceIncomplete(why));
            }
            let mut hits = parsed.hits();
            if hits.is_empty() {
                counters.set_in_hand(false);
                counters.set_state(SliceState::Done);
                return Ok(());
            }
            if !self.pager.is_pit() && page.body.len() > budget && self.size > 1 && hits.len() > 1 {
                // A scroll's page size is fixed at open: start the slice over, smaller, with
                // the same room for larger pages as its first size.
                self.size = shrink(self.size, page.body.len(), page_aim(&plan));
                drop(parsed);
                drop(page);
                tracing::info!(
                    slice = self.slice,
                    size = self.size,
                    "a page exceeded the memory budget; restarting the slice with fewer documents per page"
                );
                self.start_over();
                next_page = Some(self.first().await?);
                continue;
            }
            let mut last_page = false;
            if let Some(rem) = &self.remaining {
                let take = claim(rem, hits.len() as u64) as usize;
                last_page = take < hits.len() || rem.load(Ordering::Relaxed) == 0;
                hits = &hits[..take];
            }
            counters.add_read(hits.len() as u64);
            // On a stop the page in hand is still queued (without waiting for the throttle).
            let throttled = Instant::now();
            tokio::select! {
                biased;
                _ = self.abort.cancelled() => return Err(CopyError::Cancelled),
                _ = self.stop.requested() => {}
                _ = plan.throttle.acquire(hits.len() as u64) => {}
            }
            stats.time().add(Part::Throttle, throttled.elapsed());
            let (mut batches, mut bad) = (Vec::new(), Vec::new());
            builder.push_hits(hits, &mut batches, &mut bad);
            batches.extend(builder.finish());
            let bad_count = bad.len() as u64;
            for u in bad {
                let sample = FailureSample {
                    id: u.id.clone(),
                    status: 0,
                    reason: u.reason.clone(),
                };
                let failed = self
                    .stats
                    .add_failure(self.slice, builder.epoch, None, sample);
                if failed > plan.max_failed_docs {
                    return Err(CopyError::TooManyFailures {
                        failed,
                        max: plan.max_failed_docs,
                        first: format!("{}: {}", u.id, u.reason),
                    });
                }
            }
            if !last_page {
                self.pager.advance(&parsed).map_err(CopyError::BadPage)?;
                counters.set_cursor(self.pager.cursor());
            }
            let page_seq =
                counters.page_queued(batches.len() as u64, bad_count, self.pager.cursor());
            for b in &mut batches {
                b.page = page_seq;
            }
            if self.pager.is_pit() {
                // PIT pages follow the observed bytes per document.
                self.size = fit(&plan, page.body.len(), parsed.hits().len());
            }
            // Nothing of the page is needed any more: free it before the next fetch.
            drop(parsed);
            drop(page);
            let queued = Instant::now();
            for b in batches {
                counters.hold();
                if let Err(e) = self
                    .abortable_send(b)
                    .await
                    .and_then(|r| r.map_err(|_| CopyError::Cancelled))
                {
                    counters.release();
                    return Err(e);
                }
            }
            stats.time().add(Part::QueueFull, queued.elapsed());
            counters.set_in_hand(false);
            if last_page {
                // Writers finish the queued batches; the slice is done once they have.
                counters.set_state(SliceState::Done);
                return Ok(());
            }
            // A stop is honoured here, between pages, never during a fetch: a fetched page is
            // always queued, so a graceful stop leaves the cursor exactly at what was written.
            if self.stop.is_requested() {
                return Err(CopyError::Cancelled);
            }
            counters.set_in_hand(true);
            let fetching = Instant::now();
            let fetched = abortable(&self.abort, self.pager.next(self.size)).await?;
            stats.time().add(Part::Source, fetching.elapsed());
            next_page = Some(match fetched {
                Ok(p) => p,
                Err(e) if self.pit_lost(&e).is_some() => {
                    return Err(self.pit_lost(&e).expect("checked"));
                }
                Err(e) if self.survivable(&e) => self.restart(&e).await?,
                Err(source) => {
                    return Err(CopyError::Search {
                        during: "reading the next page",
                        source,
                    });
                }
            });
        }
    }

    async fn abortable_send(
        &self,
        b: BulkBatch,
    ) -> Result<Result<(), mpsc::error::SendError<BulkBatch>>, CopyError> {
        abortable(&self.abort, self.tx.send(b)).await
    }
}

/// Runs `f` unless an abort (a fatal error elsewhere) comes first.
async fn abortable<T>(
    abort: &CancellationToken,
    f: impl std::future::Future<Output = T>,
) -> Result<T, CopyError> {
    tokio::select! {
        biased;
        _ = abort.cancelled() => Err(CopyError::Cancelled),
        v = f => Ok(v),
    }
}

/// Runs `f` unless a stop or an abort comes first.
async fn cancellable<T>(
    stop: &Stop,
    abort: &CancellationToken,
    f: impl std::future::Future<Output = T>,
) -> Result<T, CopyError> {
    tokio::select! {
        biased;
        _ = stop.requested() => Err(CopyError::Cancelled),
        _ = abort.cancelled() => Err(CopyError::Cancelled),
        v = f => Ok(v),
    }
}

/// A page size that brings a page of `bytes` at `size` documents under `budget`.
fn shrink(size: u32, bytes: usize, budget: usize) -> u32 {
    let scaled = (size as u128 * budget as u128 / bytes.max(1) as u128) as u32;
    scaled.clamp(1, size.saturating_sub(1).max(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_brings_a_page_under_the_budget_and_never_to_zero() {
        assert_eq!(shrink(1000, 20 << 20, 10 << 20), 500);
        assert_eq!(shrink(2, 100 << 20, 1 << 20), 1);
        assert_eq!(shrink(10, 11, 10), 9, "always smaller than before");
    }

    #[test]
    fn scroll_pages_aim_at_three_quarters_of_the_budget_and_never_zero() {
        assert_eq!(scroll_share(8 << 20), 6 << 20);
        assert_eq!(scroll_share(1), 1);
        // A restarted scroll page of 12 MiB at 1000 documents, budget 8 MiB: 500 documents
        // (6 MiB), not the 666 that would fill the budget exactly.
        assert_eq!(shrink(1000, 12 << 20, scroll_share(8 << 20)), 500);
    }
}
