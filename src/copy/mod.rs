//! The copy engine: sliced pagers (PIT or scroll) → bounded queue → concurrent `_bulk` writers.
//!
//! Knows nothing of Kubernetes or the workflow. Each slice has a reader that pages through its
//! part of the source (see [`pager`]) and turns every page into bulk bodies without re-parsing
//! `_source` (see [`batch`]); a pool of writers sends them (see [`writer`]). A page is freed
//! before the next is fetched, so memory is bounded by
//! `slices × (page budget + bulk bodies of one page) + (queue depth + writers) × bulk_bytes`.
//! Progress is reported through [`CopyStats`], which the drivers sample. [`open_copy`] fetches
//! every slice's first page, whose exact totals make the expected count (from the source's
//! snapshot, never from the copier's own counters), before [`OpenCopy::run`] writes anything.

pub mod batch;
pub mod pager;
mod prune;
mod reader;
mod slice_status;
mod stats;
mod stop;
mod throttle;
mod timing;
mod writer;

pub use pager::{Cursor, Paging};
pub use reader::page_budget_for;
pub use slice_status::{checkpoints_from, slices_status};
pub use stats::{
    BulkObserver, CopyStats, FailureSample, SliceCheckpoint, SliceState, StatsSnapshot,
};
pub use stop::{Stop, StopMode};
pub use throttle::Throttle;
pub use timing::{Limit, TimeSplit};

use crate::search::{self, SearchClient, SearchError};
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
    /// `create`: a document that exists already is left alone (409: a conflict, or a rewrite
    /// when an earlier pass or attempt of this copy wrote it).
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
    /// Scroll / point-in-time keep-alive, e.g. `5m`.
    pub keep_alive: String,
    /// How the source is read (chosen at pre-flight by [`pager::choose`]).
    pub paging: Paging,
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
    /// The destination was empty or absent when this copy first started: under `create`, a 409
    /// can then only be a document this copy wrote before (a rewrite), never a conflict.
    pub dest_was_empty: bool,
    /// Failed documents tolerated before the copy stops.
    pub max_failed_docs: u64,
    /// Documents-per-second limit, shared so it can be changed while copying.
    pub throttle: Arc<Throttle>,
    /// Checkpoints of an earlier attempt with the same slicing: done slices are skipped,
    /// resumable ones continue their cursor, the others start over.
    pub resume: Vec<SliceCheckpoint>,
    /// Scale-out: this process runs only some slices of the copy (`None`: all of them).
    pub share: Option<Share>,
}

/// The part of a copy one process runs when the slices are spread over several (scale-out):
/// which slices, and the fence every bulk request passes first.
#[derive(Clone)]
pub struct Share {
    /// The slices this process runs; the others are skipped.
    pub slices: Vec<u32>,
    /// Called before every `_bulk` request: `Err(why)` when this process may no longer write
    /// for these slices (its Lease budget is spent); the copy then stops with
    /// [`CopyError::Fenced`]. The point in time belongs to whoever planned the copy: a share
    /// never closes it.
    pub gate: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("slices", &self.slices)
            .finish_non_exhaustive()
    }
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
    /// Scale-out: this process may no longer write for its slice (see [`Share::gate`]).
    #[error("fenced: {0}")]
    Fenced(String),
    /// Scale-out: a slice failed in the process that ran it.
    #[error("{0}")]
    Slice(String),
    /// The point in time every slice reads is gone (expired, closed, the source restarted).
    /// Not a slice's to replace: the copy starts every slice again under a new one.
    #[error("the point in time (generation {generation}) was lost: {reason}")]
    PitLost {
        /// The generation of the shared point in time that was found gone.
        generation: u64,
        /// The source's answer.
        reason: String,
    },
}

/// A batch of bulk operations ready to send.
pub(crate) type Batch = batch::BulkBatch;

/// How often the point in time may be lost (every slice starting again under a new one)
/// before the copy fails.
pub const MAX_PIT_LOSSES: u64 = 5;

/// A copy whose slices have their first page in hand: the expected count is known and
/// nothing is written yet.
pub struct OpenCopy {
    plan: Arc<CopyPlan>,
    stats: Arc<CopyStats>,
    stop: Arc<Stop>,
    abort: CancellationToken,
    readers: Vec<(reader::SliceReader, search::ScrollPage)>,
    tx: mpsc::Sender<Batch>,
    rx: mpsc::Receiver<Batch>,
    /// The page size the slices start with.
    size: u32,
}

/// Opens the copy: every slice that is not done fetches its first page (or continues its
/// checkpointed cursor), recording the slice's exact total in `stats`. A point in time found
/// gone meanwhile starts every slice again under a new one (see [`OpenCopy::run`]).
pub async fn open_copy(
    plan: CopyPlan,
    stats: Arc<CopyStats>,
    stop: Arc<Stop>,
) -> Result<OpenCopy, CopyError> {
    let plan = Arc::new(plan);
    let resume = if plan.resume.len() == plan.slices as usize {
        plan.resume.clone()
    } else {
        Vec::new()
    };
    stats.init_slices(plan.slices as usize, &resume);
    let size = reader::effective_page_size(&plan).await?;
    if size < plan.page_size {
        tracing::info!(
            requested = plan.page_size,
            size,
            "documents are large: lowering the page size to stay within the memory budget"
        );
    }
    let mut opened = if resumes_one_pit(&plan, &resume).await {
        open_pass(
            plan.clone(),
            stats.clone(),
            stop.clone(),
            size,
            Some(&resume),
        )
        .await
    } else {
        stats.add_pit_restart();
        let msg = "resuming: the slices recorded no single point in time to continue (or finished under one that cannot be named); every slice, finished ones included, starts again under a new one and the expected count is taken again".to_string();
        tracing::warn!("{msg}");
        stats.note(msg);
        open_pass(plan.clone(), stats.clone(), stop.clone(), size, None).await
    };
    while let Err(CopyError::PitLost { generation, reason }) = &opened {
        if let Err(e) = after_pit_loss(&plan, &stats, &stop, *generation, reason).await {
            opened = Err(e);
            break;
        }
        opened = open_pass(plan.clone(), stats.clone(), stop.clone(), size, None).await;
    }
    if opened.is_err() {
        close_pit(&plan, &stop).await;
    }
    opened
}

/// Whether a resumed copy can go on with its checkpoints as they are. Without PIT paging, or
/// in a scale-out share (the planner's Leases name the point in time), or when nothing was read
/// yet: yes. Otherwise the slices that still have a cursor must all name one point in time,
/// which this copy then reads (adopted, so the slices not started yet read it too); when no
/// slice has a cursor but some finished, the point in time they read cannot be named: no, every
/// slice starts again under the new one.
async fn resumes_one_pit(plan: &CopyPlan, resume: &[SliceCheckpoint]) -> bool {
    let Paging::Pit(pit) = &plan.paging else {
        return true;
    };
    if plan.share.is_some() || resume.iter().all(|c| c.state == SliceState::Pending) {
        return true;
    }
    let ids: std::collections::BTreeSet<&String> = resume
        .iter()
        .filter(|c| c.state != SliceState::Done)
        .filter_map(|c| c.pit_id.as_ref())
        .collect();
    let all_done = resume.iter().all(|c| c.state == SliceState::Done);
    match ids.len() {
        0 => all_done,
        1 => {
            let id = (*ids.first().expect("one id")).clone();
            pit.adopt(id).await;
            true
        }
        _ => false,
    }
}

/// Opens one pass over the slices: from `resume` (done slices skipped, resumable ones
/// continuing their cursor), or, with `None`, every slice of this process from its beginning
/// (after the point in time was lost: finished slices too).
async fn open_pass(
    plan: Arc<CopyPlan>,
    stats: Arc<CopyStats>,
    stop: Arc<Stop>,
    size: u32,
    resume: Option<&[SliceCheckpoint]>,
) -> Result<OpenCopy, CopyError> {
    let abort = CancellationToken::new();
    let depth = plan.max_concurrent_bulk.max(1);
    let (tx, rx) = mpsc::channel::<Batch>(depth);
    let already = stats.snapshot().read;
    let remaining = plan
        .max_docs
        .map(|n| Arc::new(std::sync::atomic::AtomicU64::new(n.saturating_sub(already))));
    let mut opening = Vec::new();
    for slice in 0..plan.slices {
        if plan
            .share
            .as_ref()
            .is_some_and(|s| !s.slices.contains(&slice))
        {
            continue;
        }
        let checkpoint = resume.and_then(|r| r.get(slice as usize));
        // A slice whose total is not known (a checkpoint from an older version) is read again.
        let known = checkpoint.is_some_and(|c| c.total.is_some());
        if known && checkpoint.is_some_and(|c| c.state == SliceState::Done) {
            continue;
        }
        let cursor = checkpoint
            .filter(|_| known)
            .map(|c| c.cursor())
            .unwrap_or_default();
        let pager = pager::SlicePager::new(
            &plan.paging,
            plan.source.clone(),
            plan.source_index.clone(),
            plan.query.clone(),
            plan.keep_alive.clone(),
            (slice, plan.slices),
            cursor.clone(),
        )
        .await;
        let mut r = reader::SliceReader {
            plan: plan.clone(),
            slice,
            size,
            pager,
            stats: stats.clone(),
            tx: tx.clone(),
            stop: stop.clone(),
            abort: abort.clone(),
            remaining: remaining.clone(),
            restarts: 0,
        };
        if resume.is_none() {
            // A new point in time: whatever this slice read under the old one says nothing
            // about the new one's doc-id ranges.
            stats.slice(slice).reset_in_flight();
            r.start_over();
        } else if checkpoint.is_some() && cursor == Cursor::None {
            // A checkpointed slice that cannot continue its cursor starts over (writes are
            // idempotent by _id; what it meets again counts as rewritten).
            r.start_over();
        }
        opening.push(async move {
            let first = r.open().await;
            (r, first)
        });
    }
    let mut readers = Vec::new();
    let mut first_error: Option<CopyError> = None;
    for (mut r, first) in futures::future::join_all(opening).await {
        match first {
            Ok(page) => readers.push((r, page)),
            Err(e) => {
                r.close().await;
                // A lost point in time wins: the copy can go on after it.
                if first_error.is_none() || matches!(e, CopyError::PitLost { .. }) {
                    first_error = Some(e);
                }
            }
        }
    }
    if let Some(e) = first_error {
        for (r, _) in &mut readers {
            r.close().await;
        }
        return Err(e);
    }
    Ok(OpenCopy {
        plan,
        stats,
        stop,
        abort,
        readers,
        tx,
        rx,
        size,
    })
}

/// The point in time of generation `generation` was found gone: replaces it (unless another
/// slice already did) and reports the restart, or says why the copy cannot go on. Scale-out
/// workers never replace it: the point in time is the planner's.
async fn after_pit_loss(
    plan: &CopyPlan,
    stats: &CopyStats,
    stop: &Stop,
    generation: u64,
    reason: &str,
) -> Result<(), CopyError> {
    let lost = || CopyError::PitLost {
        generation,
        reason: reason.to_string(),
    };
    let Paging::Pit(pit) = &plan.paging else {
        return Err(lost());
    };
    if plan.share.is_some() || stop.is_requested() {
        return Err(lost());
    }
    if stats.snapshot().pit_restarts >= MAX_PIT_LOSSES {
        return Err(CopyError::PitLost {
            generation,
            reason: format!("{reason} (lost {MAX_PIT_LOSSES} times already: giving up)"),
        });
    }
    pit.renew(generation)
        .await
        .map_err(|source| CopyError::Search {
            during: "opening a new point in time",
            source,
        })?;
    stats.add_pit_restart();
    let msg = format!(
        "the point in time was lost ({reason}); restarting the slices from their beginning: every slice, finished ones included, starts again under a new one and the expected count is taken again"
    );
    tracing::warn!("{msg}");
    stats.note(msg);
    Ok(())
}

impl OpenCopy {
    /// Documents expected from the source's snapshot (capped by `maxDocs`).
    pub fn expected(&self) -> Option<u64> {
        self.stats.expected(self.plan.max_docs)
    }

    /// Runs the copy to completion, a stop request or the first fatal error. Scrolls and the
    /// point in time are released on every path but a stop that keeps them
    /// ([`StopMode::Shutdown`]).
    ///
    /// All slices read one point in time. When it is lost (expired during a long back-off or
    /// pause, closed, the source restarted), every slice of this process, finished ones
    /// included, starts again under a new one and takes its total again (Elasticsearch slices
    /// a PIT by Lucene doc id: after merges, documents move between the ranges of different
    /// points in time). Writes are idempotent by `_id`, so what is written again counts as
    /// rewritten; when the destination started empty, what the earlier passes wrote of
    /// documents the new point in time no longer holds is deleted once the copy is through.
    pub async fn run(self) -> Result<(), CopyError> {
        let (plan, stats, stop, size) = (
            self.plan.clone(),
            self.stats.clone(),
            self.stop.clone(),
            self.size,
        );
        let mut next = Ok(self);
        let result = loop {
            let ran = match next {
                Ok(pass) => pass.run_pass().await,
                Err(e) => Err(e),
            };
            match ran {
                Err(CopyError::PitLost { generation, reason }) => {
                    if let Err(e) = after_pit_loss(&plan, &stats, &stop, generation, &reason).await
                    {
                        break Err(e);
                    }
                    next = open_pass(plan.clone(), stats.clone(), stop.clone(), size, None).await;
                }
                other => break other,
            }
        };
        let result = match result {
            Ok(()) if stats.snapshot().pit_restarts > 0 && plan.dest_was_empty => {
                match &plan.paging {
                    Paging::Pit(pit) if plan.share.is_none() => {
                        match prune::prune(&plan, pit).await {
                            Ok(n) => {
                                if n > 0 {
                                    let msg = format!(
                                        "deleted {n} destination document(s) written under the lost point in time that the new one no longer holds"
                                    );
                                    tracing::warn!("{msg}");
                                    stats.note(msg);
                                }
                                stats.add_pruned(n);
                                Ok(())
                            }
                            Err(e) => Err(e),
                        }
                    }
                    _ => Ok(()),
                }
            }
            other => other,
        };
        close_pit(&plan, &stop).await;
        result
    }

    /// One pass: every reader and the writers until all are done or the first fatal error.
    async fn run_pass(self) -> Result<(), CopyError> {
        let OpenCopy {
            plan,
            stats,
            stop,
            abort,
            readers,
            tx,
            rx,
            size: _,
        } = self;
        let depth = plan.max_concurrent_bulk.max(1);
        let rx = Arc::new(Mutex::new(rx));
        let mut tasks: JoinSet<Result<(), CopyError>> = JoinSet::new();
        for (r, first) in readers {
            tasks.spawn(r.run(first));
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
}

/// After the point in time was lost and every slice ran again under a new one (scale-out: the
/// planner, once every slice is done), with a destination that started empty: deletes the
/// destination documents `pit` no longer holds; returns how many.
pub async fn prune_stale(plan: &CopyPlan, pit: &pager::SharedPit) -> Result<u64, CopyError> {
    prune::prune(plan, pit).await
}

/// Closes the shared point in time, unless a stop keeps it for a successor.
async fn close_pit(plan: &CopyPlan, stop: &Stop) {
    if let Paging::Pit(pit) = &plan.paging
        && plan.share.is_none()
        && !(stop.is_requested() && stop.mode().keeps_scrolls())
    {
        pit.close().await;
    }
}

/// Opens and runs the copy ([`open_copy`] then [`OpenCopy::run`]).
pub async fn run_copy(
    plan: CopyPlan,
    stats: Arc<CopyStats>,
    stop: Arc<Stop>,
) -> Result<(), CopyError> {
    open_copy(plan, stats, stop).await?.run().await
}
