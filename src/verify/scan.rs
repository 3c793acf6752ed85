//! Read-only sliced scans of one index with the copy's passthrough (raw `_source`, never a DOM):
//! each document becomes a key, a bucket and a hash, handed to a per-slice accumulator.
//!
//! A scroll continuation is never resent: the server may have advanced its cursor before the
//! answer was lost, and a resent request would then skip a page. A failed continuation starts
//! the slice over with a fresh accumulator instead; only a finished slice's accumulator counts.

use super::digest::{DocHasher, DocKey, bucket_of};
use super::error::VerifyError;
use crate::search::{RetryPolicy, ScrollPage, SearchClient};
use serde_json::{Value, json};

/// How often a slice starts over after a failed continuation before the scan fails.
const MAX_SLICE_RESTARTS: u32 = 3;

/// Pages are kept under this many bytes where the documents allow it.
const PAGE_BUDGET: usize = 8 << 20;

/// Documents per page at most.
const MAX_PAGE: usize = 1000;

/// One index to scan.
#[derive(Clone)]
pub struct Side {
    /// `source` or `destination`, for messages.
    pub which: &'static str,
    /// The cluster.
    pub client: SearchClient,
    /// The index (or alias).
    pub index: String,
    /// The query selecting the documents (default `match_all`).
    pub query: Option<Value>,
    /// Parallel sliced scrolls.
    pub slices: u32,
    /// Scroll keep-alive, e.g. `5m`.
    pub keep_alive: String,
}

impl Side {
    fn body(&self, size: usize, slice: u32) -> Value {
        let mut body = json!({
            "size": size,
            "sort": ["_doc"],
            "query": self.query.clone().unwrap_or_else(|| json!({"match_all": {}})),
        });
        if self.slices > 1 {
            body["slice"] = json!({ "id": slice, "max": self.slices });
        }
        body
    }

    fn search_err(
        &self,
        during: &'static str,
    ) -> impl Fn(crate::search::SearchError) -> VerifyError {
        let which = self.which;
        move |source| VerifyError::Search {
            which,
            during,
            source,
        }
    }

    /// The page size: [`MAX_PAGE`], lowered when a sample shows that a page of the documents
    /// would exceed [`PAGE_BUDGET`].
    async fn page_size(&self) -> Result<usize, VerifyError> {
        let mut body = self.body(20, 0);
        body.as_object_mut().map(|o| o.remove("slice"));
        let raw = self
            .client
            .search_raw(&self.index, &body)
            .await
            .map_err(self.search_err("sampling the index"))?;
        let page = ScrollPage { body: raw };
        let hits = page.parse().map_err(|e| self.bad_page(e))?.hits().len();
        if hits == 0 {
            return Ok(MAX_PAGE);
        }
        let per_doc = (page.body.len() / hits).max(1);
        Ok((PAGE_BUDGET / per_doc).clamp(1, MAX_PAGE))
    }

    fn bad_page(&self, e: impl std::fmt::Display) -> VerifyError {
        VerifyError::BadPage {
            which: self.which,
            message: e.to_string(),
        }
    }

    /// Scans every slice; `visit(acc, key, bucket, hash)` is called for each document, with one
    /// accumulator per slice made by `init`. Returns the finished slices' accumulators.
    pub async fn scan<A, I, F>(&self, init: I, visit: F) -> Result<Vec<A>, VerifyError>
    where
        A: Send,
        I: Fn() -> A + Sync,
        F: Fn(&mut A, DocKey, usize, u128) + Sync,
    {
        let size = self.page_size().await?;
        let slices = (0..self.slices.max(1)).map(|slice| {
            let (init, visit) = (&init, &visit);
            async move {
                let mut restarts = 0;
                loop {
                    let mut acc = init();
                    match self.scan_slice(slice, size, &mut acc, visit).await {
                        Ok(()) => return Ok(acc),
                        Err(Restart(e)) if restarts < MAX_SLICE_RESTARTS => {
                            restarts += 1;
                            tracing::warn!(index = %self.index, side = self.which, slice, restarts, error = %e, "checksum scan: a scroll continuation failed; the slice starts over");
                        }
                        Err(Restart(e)) => return Err(e),
                    }
                }
            }
        });
        futures::future::try_join_all(slices).await
    }

    async fn scan_slice<A, F>(
        &self,
        slice: u32,
        size: usize,
        acc: &mut A,
        visit: &F,
    ) -> Result<(), Restart>
    where
        F: Fn(&mut A, DocKey, usize, u128),
    {
        let ka = &self.keep_alive;
        // Opening is safe to resend (a lost answer only leaves a context to expire).
        let mut page = self
            .client
            .open_scroll(&self.index, &self.body(size, slice), ka)
            .await
            .map_err(|e| Restart(self.search_err("opening a scroll")(e)))?;
        let once = self.client.with_retry(RetryPolicy::none());
        let mut hasher = DocHasher::default();
        let mut scroll_id: Option<String> = None;
        let result = async {
            loop {
                let next = {
                    let parsed = page.parse().map_err(|e| Restart(self.bad_page(e)))?;
                    if let Some(why) = parsed.incomplete() {
                        return Err(Restart(VerifyError::Incomplete {
                            which: self.which,
                            message: why,
                        }));
                    }
                    if parsed.scroll_id.is_some() {
                        scroll_id.clone_from(&parsed.scroll_id);
                    }
                    for hit in parsed.hits() {
                        let key = DocKey {
                            id: unquote(hit.id.get()).map_err(|e| Restart(self.bad_page(e)))?,
                            routing: hit
                                .routing
                                .map(|r| unquote(r.get()))
                                .transpose()
                                .map_err(|e| Restart(self.bad_page(e)))?,
                        };
                        let hash = hasher
                            .hash(&key, hit.source.map(|s| s.get()))
                            .map_err(|e| {
                                Restart(VerifyError::NotJson {
                                    which: self.which,
                                    id: key.id.clone(),
                                    source: e,
                                })
                            })?;
                        let bucket = bucket_of(&key.id);
                        visit(acc, key, bucket, hash);
                    }
                    match (&scroll_id, parsed.hits().is_empty()) {
                        (Some(id), false) => id.clone(),
                        _ => return Ok(()),
                    }
                };
                page = once
                    .scroll(&next, ka)
                    .await
                    .map_err(|e| Restart(self.search_err("continuing a scroll")(e)))?;
            }
        }
        .await;
        if let Some(id) = scroll_id
            && let Err(e) = self.client.clear_scroll(&[id]).await
        {
            tracing::debug!(error = %e, "checksum scan: could not clear a scroll; it expires after its keep-alive");
        }
        result
    }
}

/// A slice failed; it may start over.
struct Restart(VerifyError);

/// A JSON string literal's value.
fn unquote(raw: &str) -> Result<String, serde_json::Error> {
    serde_json::from_str(raw)
}
