//! The engine's copy step: the source read by point in time or scroll, written by `_bulk`.
//! This process runs the slices itself, or, in scale-out, hands them to a [`SliceRunner`] (the
//! operator's replicas, each holding slices through Leases) and waits; both start the same way
//! (the paging probe and the plan) and report the same [`CopyStep`]. A live copy (catch-up and
//! cutover) always runs here.

use super::catchup::CatchUpRun;
use super::compression::Probe;
use super::connected::Connected;
use super::cutover::CutoverOutcome;
use super::error::WorkflowError;
use super::job::{Job, SliceRunner};
use super::prepared::{Prepared, copy_error, copy_plan};
use super::sink::Sink;
use super::slicing::{Bounds, Choice, Measured, SourceShape};
use crate::api::units::Slices;
use crate::api::{Phase, Reason, RemoteReindexSpec};
use crate::copy::{CopyError, CopyPlan, CopyStats, Paging, TimeSplit, open_copy};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a copy step hands to finalize.
pub(super) struct CopyStep {
    /// Documents expected from the source's snapshot (capped by `maxDocs`).
    pub expected: u64,
    /// How the source was read: `pit`, `scroll` or `server`.
    pub paging: &'static str,
    /// The slices the copy read with (chosen by measurement when the spec left it open).
    pub slices: u32,
    /// Wall time of the copy.
    pub copy_time: Duration,
    /// `mode: Server` without a route to the source: the counts are the task's own.
    pub task_counts_only: bool,
    /// A live copy ends with its cutover, which verified the destination itself.
    pub cutover: Option<CutoverOutcome>,
    /// Where the copy's time went, when its readers and writers ran in this process.
    pub time: Option<TimeSplit>,
}

/// The engine's copy step: here, or spread over the replicas by `job.slice_runner`.
pub(super) async fn copy<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    shape: SourceShape,
    job: &Job,
    stats: &Arc<CopyStats>,
) -> Result<CopyStep, WorkflowError> {
    // The slice count is the copier's to choose when the spec leaves it open and no
    // checkpoints were written with one (they partition the source by it).
    let choose_slices =
        !matches!(spec.source.slices, Some(Slices::Count(_))) && prepared.checkpoints.is_empty();
    // The link's measurement and the paging probe are independent reads of the source: at
    // once, so that a WAN's round trips are paid once for both.
    let keep_alive = spec.source.keep_alive();
    let ((compression, probe), paging) = tokio::join!(
        super::compression::choose(spec, &conn.source, choose_slices),
        crate::copy::pager::choose(
            &conn.source,
            &spec.source.index,
            spec.source.query.as_ref(),
            &keep_alive,
            spec.source.paging.unwrap_or_default(),
        ),
    );
    let paging = paging.map_err(WorkflowError::SourceNotCopyable)?;
    let mut notes: Vec<String> = compression.into_iter().collect();
    let chosen;
    let prepared = match probe.filter(|_| choose_slices) {
        Some(probe) => {
            let choice = choose_slice_count(spec, prepared, shape, job, &paging, &probe);
            notes.extend(choice.why);
            chosen = Prepared {
                slices: choice.slices,
                ..prepared.clone()
            };
            &chosen
        }
        None => prepared,
    };
    let compression = (!notes.is_empty()).then(|| notes.join("; "));
    let plan = copy_plan(spec, conn, prepared, job.throttle.clone(), paging);
    match job.slice_runner.clone().filter(|_| spreadable(spec)) {
        Some(runner) => {
            spread(
                spec,
                conn,
                sink,
                prepared,
                job,
                stats,
                plan,
                runner,
                compression,
            )
            .await
        }
        None => here(spec, conn, sink, prepared, job, stats, plan, compression).await,
    }
}

/// The slice count for a copy the probe measured (see [`super::slicing`]): its page time
/// scaled to the copy's page (documents per page as the copy will ask, within the page's
/// memory budget), bounded by today's count, the shards, the policy and the memory bound.
fn choose_slice_count(
    spec: &RemoteReindexSpec,
    prepared: &Prepared,
    shape: SourceShape,
    job: &Job,
    paging: &Paging,
    probe: &Probe,
) -> Choice {
    let keep = Choice {
        slices: prepared.slices,
        why: None,
    };
    let page = probe.page;
    if page.docs == 0 {
        return keep;
    }
    let bulk_bytes = super::prepared::bulk_bytes(spec);
    let per_doc = (page.bytes / page.docs).max(1);
    let budget = crate::copy::page_budget_for(bulk_bytes as usize) as u64;
    let page_docs = u64::from(super::prepared::page_size(spec)).min((budget / per_doc).max(1));
    let latency = probe.latency();
    // The sample's time beyond one round trip, scaled to the copy's page.
    let sample = page.elapsed.saturating_sub(latency);
    let page_time = sample.mul_f64(page_docs as f64 / page.docs as f64);
    let measured = Measured {
        round_trip: latency,
        page_time,
        page_bytes: per_doc * page_docs,
        pages: shape.docs.map(|d| d.div_ceil(page_docs)),
    };
    let bounds = Bounds {
        floor: prepared.slices,
        shards: shape.shards,
        scroll: matches!(paging, Paging::Scroll),
        policy_max: job.max_slices,
        bulk_bytes,
        max_concurrent_bulk: spec.dest.max_concurrent_bulk.map(|n| n.max(1) as u32),
    };
    let choice = super::slicing::decide(&measured, None, &bounds);
    tracing::info!(
        slices = choice.slices,
        round_trip_ms = latency.as_secs_f64() * 1e3,
        page_ms = page_time.as_secs_f64() * 1e3,
        page_docs,
        "slice count chosen"
    );
    choice
}

/// Whether scale-out may spread this copy's slices over the replicas. A live copy (catch-up,
/// cutover) and a copy capped by `maxDocs` (one budget for the whole copy, which only one
/// process keeps exactly) run on the leader alone.
fn spreadable(spec: &RemoteReindexSpec) -> bool {
    let alone = match (&spec.catch_up, spec.source.max_docs) {
        (Some(_), _) => Some("a live copy (catchUp) keeps one high-water mark"),
        (None, Some(_)) => Some("maxDocs is one budget for the whole copy"),
        (None, None) => None,
    };
    if let Some(why) = alone {
        tracing::info!(why, "scale-out: this copy runs on the leader alone");
    }
    alone.is_none()
}

/// Every slice in this process; a live copy then catches up and cuts over.
#[allow(clippy::too_many_arguments)]
async fn here<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    job: &Job,
    stats: &Arc<CopyStats>,
    plan: CopyPlan,
    compression: Option<String>,
) -> Result<CopyStep, WorkflowError> {
    let paging = plan.paging.name();
    let max_docs = plan.max_docs;
    // Catch-up's high-water mark H0 is taken before the copy opens its snapshot.
    let mut live = match &spec.catch_up {
        Some(c) => Some(CatchUpRun::start(spec, conn, c, prepared, sink).await?),
        None => None,
    };
    let opened = open_copy(plan.clone(), stats.clone(), job.stop.clone())
        .await
        .map_err(copy_error)?;
    let Some(total) = opened.expected() else {
        return Err(WorkflowError::Copy(CopyError::BadPage(
            "the source did not report how many documents its snapshot holds".into(),
        )));
    };
    sink.expected(total, paging)
        .await
        .map_err(WorkflowError::Sink)?;
    let what = format!("{total} documents ");
    let msg = copying_message(spec, conn, prepared, &what, paging, "", &compression);
    sink.phase(Phase::Copying, Reason::Copying, msg)
        .await
        .map_err(WorkflowError::Sink)?;
    sink.copying(stats.clone(), Some(total));
    let started = Instant::now();
    opened.run().await.map_err(copy_error)?;
    let copy_time = started.elapsed();
    let time = stats.time().split();
    if let Some(split) = &time {
        tracing::info!(%split, "where the copy's time went");
    }
    let cutover = match &mut live {
        Some(run) => Some(super::cutover::live(run, spec, conn, prepared, &plan, sink, job).await?),
        None => None,
    };
    Ok(CopyStep {
        // Slices that restarted took their totals again from their new snapshot.
        expected: match &cutover {
            Some(cut) => cut.expected,
            None => stats.expected(max_docs).unwrap_or(total),
        },
        paging,
        slices: prepared.slices,
        copy_time,
        task_counts_only: false,
        cutover,
        time,
    })
}

/// The slices run by `runner` (scale-out): the expected count is the sum of the slices' exact
/// totals from the source's snapshot, known once every slice is done.
#[allow(clippy::too_many_arguments)]
async fn spread<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    job: &Job,
    stats: &Arc<CopyStats>,
    plan: CopyPlan,
    runner: Arc<dyn SliceRunner>,
    compression: Option<String>,
) -> Result<CopyStep, WorkflowError> {
    let paging = plan.paging.name();
    let spread = ", spread over the operator's replicas";
    let msg = copying_message(spec, conn, prepared, "", paging, spread, &compression);
    sink.phase(Phase::Copying, Reason::Copying, msg)
        .await
        .map_err(WorkflowError::Sink)?;
    sink.copying(stats.clone(), None);
    let started = Instant::now();
    let stop = &job.stop;
    let mut result = runner.run(&plan, stats.clone(), stop.clone()).await;
    // After a lost point in time every slice ran again under the new one; what the earlier
    // generations wrote of documents it no longer holds goes (the destination started empty).
    if let (Ok(()), Paging::Pit(pit)) = (&result, &plan.paging)
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
    if let Paging::Pit(pit) = &plan.paging
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
    sink.expected(expected, paging)
        .await
        .map_err(WorkflowError::Sink)?;
    Ok(CopyStep {
        expected,
        paging,
        slices: prepared.slices,
        copy_time,
        task_counts_only: false,
        cutover: None,
        // The slices ran in several processes; none of them saw the whole copy's time.
        time: None,
    })
}

/// The Copying phase's message: `copying [<what>]from <source> to <dest> with N slice(s) by
/// <paging><how> (<versions>)[; <compression choice>][; <why N slices>]`.
fn copying_message(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    what: &str,
    paging: &str,
    how: &str,
    compression: &Option<String>,
) -> String {
    let compression = compression
        .as_deref()
        .map_or_else(String::new, |c| format!("; {c}"));
    format!(
        "copying {what}from {}/{} to {}/{} with {} slice(s) by {paging}{how} ({}){compression}",
        conn.source.name(),
        spec.source.index,
        conn.dest.name(),
        spec.dest.index,
        prepared.slices,
        prepared.summary,
    )
}
