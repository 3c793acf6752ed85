//! Scale-out's copy step on the planning side: the engine's slices run in other processes
//! (the operator's replicas, each holding a slice through a Lease). This step chooses the
//! paging, hands the plan to a [`SliceRunner`] and waits until every slice is done, while the
//! runner keeps the copy's counters current from the slices' checkpoints. Prepare before it and
//! finalize after it run here, once.

use super::error::WorkflowError;
use super::resolve::Connected;
use super::run::{Prepared, Sink, copy_error};
use crate::api::{PagingMode, Phase, RemoteReindexSpec};
use crate::copy::{CopyError, CopyPlan, CopyStats, Paging, PagingChoice, Stop, Throttle};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs a copy's slices elsewhere and waits for them.
pub trait SliceRunner: Send + Sync {
    /// Hands out every slice of `plan` that is not done yet and resolves once all are done
    /// (`Ok`), one failed or the plan cannot be handed out (`Err`), or `stop` is requested
    /// (`Err(Cancelled)`). Meanwhile `stats` holds every slice's latest checkpoint.
    fn run<'a>(
        &'a self,
        plan: &'a CopyPlan,
        stats: Arc<CopyStats>,
        stop: Arc<Stop>,
    ) -> BoxFuture<'a, Result<(), CopyError>>;
}

/// `spec.source.paging` as the engine's choice.
pub(crate) fn paging_choice(spec: &RemoteReindexSpec) -> PagingChoice {
    match spec.source.paging.unwrap_or_default() {
        PagingMode::Auto => PagingChoice::Auto,
        PagingMode::Pit => PagingChoice::Pit,
        PagingMode::Scroll => PagingChoice::Scroll,
    }
}

/// The copy step with the slices run by `runner`: returns the expected count (the sum of the
/// slices' exact totals from the source's snapshot), the paging's name, the copy time, and
/// `false` (the counts are the engine's own, not a task's).
#[allow(clippy::too_many_arguments)]
pub(super) async fn copy<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    throttle: Arc<Throttle>,
    stop: &Arc<Stop>,
    stats: &Arc<CopyStats>,
    runner: Arc<dyn SliceRunner>,
) -> Result<(u64, &'static str, Duration, bool), WorkflowError> {
    let keep_alive = keep_alive(spec);
    let paging = crate::copy::pager::choose(
        &conn.source,
        &spec.source.index,
        spec.source.query.as_ref(),
        &keep_alive,
        paging_choice(spec),
    )
    .await
    .map_err(WorkflowError::SourceNotCopyable)?;
    let paging_name = paging.name();
    let plan = copy_plan(spec, conn, prepared, throttle, paging.clone());
    let msg = format!(
        "copying from {}/{} to {}/{} with {} slice(s) by {paging_name}, spread over the operator's replicas ({})",
        conn.source.name(),
        spec.source.index,
        conn.dest.name(),
        spec.dest.index,
        prepared.slices,
        prepared.summary
    );
    sink.phase(Phase::Copying, "Copying", msg)
        .await
        .map_err(WorkflowError::Sink)?;
    sink.copying(stats.clone(), None);
    let started = Instant::now();
    let mut result = runner.run(&plan, stats.clone(), stop.clone()).await;
    // After a lost point in time every slice ran again under the new one; what the earlier
    // generations wrote of documents it no longer holds goes (the destination started empty).
    if let (Ok(()), Paging::Pit(pit)) = (&result, &paging)
        && stats.snapshot().pit_restarts > 0
        && plan.dest_was_empty
    {
        match crate::copy::prune_stale(&plan, pit).await {
            Ok(n) => stats.add_pruned(n),
            Err(e) => result = Err(e),
        }
    }
    // The point in time is the planner's: closed once the slices are over, unless a shutdown
    // keeps it for the next leader (whose workers continue their cursors on it).
    if let Paging::Pit(pit) = &paging
        && !(stop.is_requested() && stop.mode().keeps_scrolls())
    {
        pit.close().await;
    }
    result.map_err(copy_error)?;
    let copy_time = started.elapsed();
    let Some(expected) = stats.expected(plan.max_docs) else {
        return Err(WorkflowError::Copy(CopyError::Slice(
            "every slice is done but not every slice recorded its total".into(),
        )));
    };
    sink.expected(expected, paging_name)
        .await
        .map_err(WorkflowError::Sink)?;
    Ok((expected, paging_name, copy_time, false))
}

/// The engine plan and keep-alive the planner uses, for the workers that run its slices.
pub(crate) use super::run::{copy_plan, keep_alive};
