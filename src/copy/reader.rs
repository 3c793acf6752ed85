//! One slice's reader: scrolls its part of the source and queues bulk batches.

use super::batch::{BatchBuilder, BulkBatch};
use super::stats::{CopyStats, FailureSample};
use super::{CopyError, CopyPlan};
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

/// Reads one slice.
pub(super) struct SliceReader {
    pub plan: Arc<CopyPlan>,
    pub slice: u32,
    pub page_size: u32,
    pub stats: Arc<CopyStats>,
    pub tx: mpsc::Sender<BulkBatch>,
    pub stop: CancellationToken,
    pub remaining: Option<Arc<AtomicU64>>,
}

impl SliceReader {
    pub async fn run(self) -> Result<(), CopyError> {
        let mut scroll_id: Option<String> = None;
        let result = self.read_all(&mut scroll_id).await;
        if let Some(id) = scroll_id.take()
            && let Err(e) = self
                .plan
                .source
                .clear_scroll(std::slice::from_ref(&id))
                .await
        {
            tracing::warn!(slice = self.slice, error = %e, "could not clear the scroll; it expires after its keep-alive");
        }
        self.stats.set_scroll(self.slice as usize, None);
        result
    }

    async fn read_all(&self, scroll_id: &mut Option<String>) -> Result<(), CopyError> {
        let plan = &self.plan;
        let slice = (plan.slices > 1).then_some((self.slice, plan.slices));
        let body = search_body(plan, self.page_size, slice);
        let mut page = self
            .cancellable(
                plan.source
                    .open_scroll(&plan.source_index, &body, &plan.keep_alive),
            )
            .await?
            .map_err(|source| CopyError::Search {
                during: "opening the scroll",
                source,
            })?;
        let mut builder = BatchBuilder::new(
            plan.op,
            &plan.dest_index,
            plan.dest_type.as_deref(),
            plan.bulk_bytes,
        );
        loop {
            let parsed = page
                .parse()
                .map_err(|e| CopyError::BadPage(e.to_string()))?;
            if let Some(why) = parsed.incomplete() {
                return Err(CopyError::SourceIncomplete(why));
            }
            if parsed.scroll_id.is_some() && parsed.scroll_id != *scroll_id {
                scroll_id.clone_from(&parsed.scroll_id);
                self.stats
                    .set_scroll(self.slice as usize, scroll_id.clone());
            }
            let mut hits = parsed.hits();
            if hits.is_empty() {
                return Ok(());
            }
            let mut last_page = false;
            if let Some(rem) = &self.remaining {
                let take = claim(rem, hits.len() as u64) as usize;
                last_page = take < hits.len() || rem.load(Ordering::Relaxed) == 0;
                hits = &hits[..take];
            }
            self.stats.add_read(hits.len() as u64);
            self.cancellable(plan.throttle.acquire(hits.len() as u64))
                .await?;
            let (mut batches, mut bad) = (Vec::new(), Vec::new());
            builder.push_hits(hits, &mut batches, &mut bad);
            batches.extend(builder.finish());
            for u in bad {
                let failed = self.stats.add_failure(FailureSample {
                    id: u.id.clone(),
                    status: 0,
                    reason: u.reason.clone(),
                });
                if failed > plan.max_failed_docs {
                    return Err(CopyError::TooManyFailures {
                        failed,
                        max: plan.max_failed_docs,
                        first: format!("{}: {}", u.id, u.reason),
                    });
                }
            }
            for b in batches {
                self.cancellable(self.tx.send(b))
                    .await?
                    .map_err(|_| CopyError::Cancelled)?;
            }
            if last_page {
                return Ok(());
            }
            let Some(id) = scroll_id.clone() else {
                return Err(CopyError::BadPage(
                    "no _scroll_id in a non-empty page".into(),
                ));
            };
            page = self
                .cancellable(plan.source.scroll(&id, &plan.keep_alive))
                .await?
                .map_err(|source| CopyError::Search {
                    during: "reading the next scroll page",
                    source,
                })?;
        }
    }

    async fn cancellable<T>(
        &self,
        f: impl std::future::Future<Output = T>,
    ) -> Result<T, CopyError> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => Err(CopyError::Cancelled),
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
