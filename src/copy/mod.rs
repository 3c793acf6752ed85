//! The copy engine: sliced scrolls → bounded queue → concurrent `_bulk` writers.
//!
//! Knows nothing of Kubernetes or the workflow. Each slice has a reader that scrolls its part of
//! the source and turns every page into bulk bodies without re-parsing `_source` (see
//! [`batch`]); a pool of writers sends them (see [`writer`]). Memory is bounded by
//! `slices × page budget + (queue depth + writers) × bulk_bytes`. Progress is reported through
//! [`CopyStats`], which the drivers sample.

pub mod batch;
mod reader;
mod stats;
mod stop;
mod throttle;
mod writer;

pub use stats::{
    BulkObserver, CopyStats, FailureSample, SliceCheckpoint, SliceState, StatsSnapshot,
};
pub use stop::{Stop, StopMode};
pub use throttle::Throttle;

use crate::search::{SearchClient, SearchError};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The bulk operation for each document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// `index`: create or overwrite.
    Index,
    /// `create`: a document that exists already is left alone (409, counted as a conflict).
    Create,
}

/// Everything the engine needs to copy one index.
#[derive(Clone, Debug)]
pub struct CopyPlan {
    /// The source cluster.
    pub source: SearchClient,
    /// The source index or alias.
    pub source_index: String,
    /// The search query (`match_all` when `None`).
    pub query: Option<Value>,
    /// Documents per scroll page (an upper bound: lowered for large documents).
    pub page_size: u32,
    /// Scroll keep-alive, e.g. `5m`.
    pub keep_alive: String,
    /// Number of sliced scrolls (1 = no slicing).
    pub slices: u32,
    /// Stop after this many documents.
    pub max_docs: Option<u64>,
    /// The destination cluster.
    pub dest: SearchClient,
    /// The destination index.
    pub dest_index: String,
    /// `_type` to put in bulk actions (Elasticsearch 6.x destinations), if any.
    pub dest_type: Option<String>,
    /// `index` or `create`.
    pub op: WriteOp,
    /// Ingest pipeline for the writes.
    pub pipeline: Option<String>,
    /// Maximum bytes of one bulk body.
    pub bulk_bytes: usize,
    /// Maximum bulk requests in flight.
    pub max_concurrent_bulk: usize,
    /// Continue past version conflicts (`true`) or stop (`false`).
    pub proceed_on_conflict: bool,
    /// Failed documents tolerated before the copy stops.
    pub max_failed_docs: u64,
    /// Documents-per-second limit, shared so it can be changed while copying.
    pub throttle: Arc<Throttle>,
    /// Checkpoints of an earlier attempt with the same slicing: done slices are skipped,
    /// resumable ones continue their scroll, the others start over.
    pub resume: Vec<SliceCheckpoint>,
}

/// Why a copy stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A request failed after its retries.
    #[error("{during} failed: {source}")]
    Search {
        /// What the engine was doing.
        during: &'static str,
        /// The client's error.
        #[source]
        source: SearchError,
    },
    /// The source returned an incomplete page (shard failures or a timeout).
    #[error("the source returned an incomplete page: {0}")]
    SourceIncomplete(String),
    /// The source sent something the engine cannot copy.
    #[error("unexpected scroll response from the source: {0}")]
    BadPage(String),
    /// More documents failed than `maxFailedDocs` allows.
    #[error("{failed} document(s) failed, more than maxFailedDocs={max}; first: {first}")]
    TooManyFailures {
        /// Documents failed so far.
        failed: u64,
        /// The limit.
        max: u64,
        /// The first failure, `id: reason`.
        first: String,
    },
    /// A version conflict under `conflicts: abort`.
    #[error("version conflict on document {id} (conflicts: abort): {reason}")]
    Conflict {
        /// The document id.
        id: String,
        /// The destination's reason.
        reason: String,
    },
    /// Stopped by the caller (Ctrl-C, deletion, shutdown).
    #[error("cancelled")]
    Cancelled,
}

/// A batch of bulk operations ready to send.
pub(crate) type Batch = batch::BulkBatch;

/// Runs the copy to completion, a stop request or the first fatal error. Scrolls are cleared
/// on every path but a stop that keeps them ([`StopMode::Shutdown`]).
pub async fn run_copy(
    plan: CopyPlan,
    stats: Arc<CopyStats>,
    stop: Arc<Stop>,
) -> Result<(), CopyError> {
    let plan = Arc::new(plan);
    let resume = if plan.resume.len() == plan.slices as usize {
        plan.resume.clone()
    } else {
        Vec::new()
    };
    stats.init_slices(plan.slices as usize, &resume);
    let page_size = reader::effective_page_size(&plan).await?;
    if page_size < plan.page_size {
        tracing::info!(
            requested = plan.page_size,
            page_size,
            "documents are large: lowering the scroll page size to stay within the memory budget"
        );
    }
    let abort = CancellationToken::new();
    let depth = plan.max_concurrent_bulk.max(1);
    let (tx, rx) = mpsc::channel::<Batch>(depth);
    let rx = Arc::new(Mutex::new(rx));
    let already = stats.snapshot().read;
    let remaining = plan
        .max_docs
        .map(|n| Arc::new(std::sync::atomic::AtomicU64::new(n.saturating_sub(already))));

    let mut tasks: JoinSet<Result<(), CopyError>> = JoinSet::new();
    for slice in 0..plan.slices {
        let checkpoint = resume.get(slice as usize);
        if checkpoint.is_some_and(|c| c.state == SliceState::Done) {
            continue;
        }
        let resume_scroll = checkpoint
            .filter(|c| c.resumable)
            .and_then(|c| c.scroll_id.clone());
        let r = reader::SliceReader {
            plan: plan.clone(),
            slice,
            page_size,
            stats: stats.clone(),
            tx: tx.clone(),
            stop: stop.clone(),
            abort: abort.clone(),
            remaining: remaining.clone(),
            // A checkpointed slice that is not safely resumable starts over (writes are
            // idempotent by _id).
            start_over: checkpoint.is_some() && resume_scroll.is_none(),
            resume_scroll,
        };
        tasks.spawn(r.run());
    }
    drop(tx);
    for _ in 0..depth {
        let w = writer::Writer {
            plan: plan.clone(),
            stats: stats.clone(),
            rx: rx.clone(),
            abort: abort.clone(),
        };
        tasks.spawn(w.run());
    }

    let mut first_error: Option<CopyError> = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .unwrap_or_else(|e| Err(CopyError::BadPage(format!("engine task panicked: {e}"))));
        if let Err(e) = result {
            let cancelled = matches!(e, CopyError::Cancelled);
            if !cancelled {
                abort.cancel();
            }
            if first_error
                .as_ref()
                .is_none_or(|f| matches!(f, CopyError::Cancelled) && !cancelled)
            {
                first_error = Some(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if stop.is_requested() => Err(CopyError::Cancelled),
        None => Ok(()),
    }
}
