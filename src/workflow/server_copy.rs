//! `mode: Server`: the copy step done by the destination itself. The destination's
//! `POST _reindex?wait_for_completion=false` with `source.remote` pulls the documents; the
//! operator records the task id first, follows `GET _tasks/<id>` into the same [`CopyStats`]
//! the engine fills, rethrottles and cancels it, and re-attaches to it after a restart. Prepare
//! and finalize around it are the engine's.

use super::connected::Connected;
use super::engine::CopyStep;
use super::error::{ServerError, WorkflowError};
use super::job::Job;
use super::prepared::Prepared;
use super::server_request::{
    classify, is_this_copy, proceeds, redact, refused_host, reindex_body, source_credentials,
};
use super::sink::Sink;
use crate::api::{Phase, Reason, RemoteReindexSpec};
use crate::copy::{CopyError, CopyStats, FailureSample, StatsSnapshot, Stop, StopMode, Throttle};
use crate::search::{SearchClient, SearchError, TaskFailure, TaskState};
use std::sync::Arc;
use std::time::Duration;

/// How often the task is polled (the status sink writes at its own cadence).
const POLL: Duration = Duration::from_secs(1);
/// How long a cancelled task may take to stop writing before the copy goes on without it.
const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// What the task copied, for finalize.
pub(super) struct ServerCopied {
    /// Documents the source holds for the query (capped by `maxDocs`), counted after the task
    /// finished; `None` when the operator cannot reach the source (then only the task's own
    /// counts are there to check against: `TaskCountsOnly`).
    pub source_total: Option<u64>,
}

/// The copy step of `mode: Server`: the destination's task copies; the expected count is the
/// source's `_count` when the operator reaches the source, else the documents the task dealt
/// with (`read`, its rejected ones included: `TaskCountsOnly`).
pub(super) async fn step<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    job: &Job,
    stats: &Arc<CopyStats>,
) -> Result<CopyStep, WorkflowError> {
    let msg = format!(
        "copying {} documents from {}/{} to {}/{} by the destination's own _reindex task ({})",
        prepared.total.map_or("?".into(), |t| t.to_string()),
        conn.source.name(),
        spec.source.index,
        conn.dest.name(),
        spec.dest.index,
        prepared.summary
    );
    sink.phase(Phase::Copying, Reason::Copying, msg)
        .await
        .map_err(WorkflowError::Sink)?;
    let started = std::time::Instant::now();
    let copied = copy(
        spec,
        conn,
        sink,
        prepared,
        job.throttle.clone(),
        job.stop.clone(),
        stats,
    )
    .await?;
    Ok(CopyStep {
        expected: copied.source_total.unwrap_or(stats.snapshot().read),
        paging: "server",
        slices: prepared.slices,
        copy_time: started.elapsed(),
        task_counts_only: copied.source_total.is_none(),
        cutover: None,
        time: None,
    })
}

/// Runs the copy as the destination's reindex task, until it finished, failed or `stop`.
async fn copy<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    throttle: Arc<Throttle>,
    stop: Arc<Stop>,
    stats: &Arc<CopyStats>,
) -> Result<ServerCopied, WorkflowError> {
    let dest = &conn.dest;
    let mut run = Attempt {
        excluded: Vec::new(),
        samples: Vec::new(),
        rerun: prepared.resumed,
    };
    let mut task = prepared.task.clone();
    if task.is_none() && prepared.resumed {
        // Interrupted between starting the task and recording its id: adopt it.
        task = adoptable(dest, spec).await;
        if let Some(t) = &task {
            tracing::info!(task = %t, "found the reindex task of an interrupted attempt; following it");
            sink.task(Some(t)).await.map_err(WorkflowError::Sink)?;
        }
    }
    let mut reported = false;
    loop {
        let id = match task.take() {
            Some(id) => id,
            None => {
                let id = start(spec, conn, &throttle, &run).await?;
                sink.task(Some(&id)).await.map_err(WorkflowError::Sink)?;
                id
            }
        };
        tracing::info!(task = %id, "following the destination's reindex task");
        let followed = follow(dest, &id, stats, &throttle, &stop, &run, |total| {
            if !reported {
                reported = true;
                sink.copying(stats.clone(), prepared.total.or(total));
            }
        })
        .await?;
        let state = match followed {
            Followed::Lost => {
                let msg = format!(
                    "the destination no longer knows reindex task {id} (its coordinating node restarted before the task finished, so no result was stored); copying again from the start"
                );
                tracing::warn!("{msg}");
                sink.phase(Phase::Copying, Reason::TaskLost, msg)
                    .await
                    .map_err(WorkflowError::Sink)?;
                run.rerun = true;
                continue;
            }
            Followed::Stopped => {
                if stop.mode() != StopMode::Shutdown {
                    // Deletion, Ctrl-C or suspension: the task must stop writing before the
                    // settings are restored; a shutdown leaves it running for the successor.
                    cancel(dest, &id, stats, &run).await;
                    if let Err(e) = sink.task(None).await {
                        tracing::warn!(error = %e, "could not clear the cancelled task id");
                    }
                }
                return Err(WorkflowError::Cancelled);
            }
            Followed::Finished(state) => state,
        };
        let redact = |s: String| redact(&s, &source_credentials(conn));
        if let Some((kind, reason)) = &state.error {
            return Err(WorkflowError::Server(classify(
                kind,
                &redact(reason.clone()),
                &conn.dest_info.distribution,
                conn.dest_info.version.major,
            )));
        }
        let response = state.response.clone().unwrap_or_default();
        if let Some(why) = &response.canceled {
            return Err(WorkflowError::Server(ServerError::TaskCancelled(format!(
                "reindex task {id} was cancelled outside the operator ({why})"
            ))));
        }
        if let Some(f) = response.failures.iter().find(|f| f.id.is_none()) {
            return Err(WorkflowError::Server(classify(
                &f.kind,
                &redact(f.reason.clone()),
                &conn.dest_info.distribution,
                conn.dest_info.version.major,
            )));
        }
        if let Some(c) = response
            .failures
            .iter()
            .find(|f| f.is_version_conflict() && !proceeds(spec, run.rerun))
        {
            return Err(WorkflowError::Copy(CopyError::Conflict {
                id: c.id.clone().unwrap_or_default(),
                reason: c.reason.clone(),
            }));
        }
        let rejected: Vec<&TaskFailure> = response
            .failures
            .iter()
            .filter(|f| !f.is_version_conflict())
            .collect();
        for f in &rejected {
            let id = f.id.clone().unwrap_or_default();
            if !run.excluded.contains(&id) {
                run.excluded.push(id.clone());
                run.samples.push(FailureSample {
                    id,
                    status: f.status,
                    reason: format!("{}: {}", f.kind, f.reason),
                });
            }
        }
        publish(stats, &state, &run, true);
        let max = spec.max_failed_docs.unwrap_or(0).max(0) as u64;
        let failed = run.excluded.len() as u64;
        if failed > max {
            let first = run
                .samples
                .first()
                .map(|s| format!("{}: {}", s.id, s.reason))
                .unwrap_or_default();
            return Err(WorkflowError::Copy(CopyError::TooManyFailures {
                failed,
                max,
                first,
            }));
        }
        let counts = state.counts();
        if response.timed_out {
            return Err(WorkflowError::Server(ServerError::TaskFailed(format!(
                "reindex task {id} timed out on a search or bulk request"
            ))));
        }
        if !rejected.is_empty()
            && (counts.processed() + (rejected.len() as u64) < counts.total
                || !conn.source_reachable)
        {
            // `_reindex` stops at the first batch with a rejected document; within
            // maxFailedDocs, copy again without the rejected ones. Without access to the source
            // the task's counts are all there is to check, so they must come from a task without
            // failures: that one is run without the rejected documents too.
            let note = format!(
                "reindex task {id} stopped after {} rejected document(s) (within maxFailedDocs={max}); copying again without them",
                rejected.len()
            );
            tracing::warn!("{note}");
            sink.phase(Phase::Copying, Reason::Copying, note)
                .await
                .map_err(WorkflowError::Sink)?;
            run.rerun = true;
            continue;
        }
        if !conn.source_reachable {
            // `TaskCountsOnly`: the task's own word is checked before anything is said.
            let failures: Vec<String> = response
                .failures
                .iter()
                .map(|f| {
                    let doc = f.id.as_deref().map(|i| format!("document {i}, "));
                    redact(format!(
                        "{}{}: {}",
                        doc.unwrap_or_default(),
                        f.kind,
                        f.reason
                    ))
                })
                .collect();
            task_counts_add_up(&id, counts, &failures)?;
        }
        if !reported {
            sink.copying(stats.clone(), prepared.total.or(Some(counts.total)));
        }
        let source_total = if conn.source_reachable {
            let n = conn
                .source
                .count(&spec.source.index, spec.source.query.as_ref())
                .await
                .map_err(|source| WorkflowError::Source {
                    during: "counting the source after the destination's reindex",
                    source,
                })?;
            Some(spec.source.max_docs.map_or(n, |m| n.min(m as u64)))
        } else {
            None
        };
        return Ok(ServerCopied { source_total });
    }
}

/// The counts of a finished task account for every document it was to copy
/// (`created + updated + deleted + noops + version_conflicts == total`) and it lists no
/// failure: what `TaskCountsOnly` relies on when the source cannot be counted from here.
fn task_counts_add_up(
    id: &str,
    counts: &crate::search::TaskCounts,
    failures: &[String],
) -> Result<(), WorkflowError> {
    let processed = counts.processed();
    if processed != counts.total {
        return Err(WorkflowError::Server(ServerError::TaskFailed(format!(
            "reindex task {id}'s counts do not add up: created {} + updated {} + deleted {} + noops {} + version_conflicts {} = {processed}, but its total is {}; the source is not reachable from here to count it instead, so the copy cannot be verified",
            counts.created,
            counts.updated,
            counts.deleted,
            counts.noops,
            counts.version_conflicts,
            counts.total
        ))));
    }
    if let Some(f) = failures.first() {
        return Err(WorkflowError::Server(ServerError::TaskFailed(format!(
            "reindex task {id} finished with {} failures (e.g. {f}); the source is not reachable from here to count it instead, so the copy cannot be verified",
            failures.len(),
        ))));
    }
    Ok(())
}

/// What one sequence of tasks has learnt: rejected documents are left out of later attempts.
struct Attempt {
    /// Ids the destination rejected (counted as failed, excluded from the next task's query).
    excluded: Vec<String>,
    /// The failure sample.
    samples: Vec<FailureSample>,
    /// Documents of an earlier attempt may be in the destination already.
    rerun: bool,
}

enum Followed {
    Finished(Box<TaskState>),
    Lost,
    Stopped,
}

/// Polls the task into `stats` until it completes, disappears or `stop`; applies rate changes.
async fn follow(
    dest: &SearchClient,
    id: &str,
    stats: &Arc<CopyStats>,
    throttle: &Throttle,
    stop: &Stop,
    run: &Attempt,
    mut first: impl FnMut(Option<u64>),
) -> Result<Followed, WorkflowError> {
    let during = "following the destination's reindex task";
    let mut applied = throttle.rate();
    loop {
        let state = match dest.task(id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Followed::Lost),
            Err(source) => return Err(WorkflowError::Destination { during, source }),
        };
        publish(stats, &state, run, state.completed);
        let total = state.counts().total;
        if total > 0 || state.completed {
            first((total > 0).then_some(total));
        }
        if state.completed {
            return Ok(Followed::Finished(Box::new(state)));
        }
        let rate = throttle.rate();
        if rate != applied {
            match dest.rethrottle_reindex(id, rate).await {
                Ok(()) => {
                    tracing::info!(task = %id, ?rate, "rethrottled the reindex task");
                    applied = rate;
                }
                Err(e) if e.status() == Some(404) => {}
                Err(source) => return Err(WorkflowError::Destination { during, source }),
            }
        }
        tokio::select! {
            _ = stop.requested() => return Ok(Followed::Stopped),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The task's counters as the engine's: read = dealt with + rejected, written = created +
/// updated.
fn publish(stats: &CopyStats, state: &TaskState, run: &Attempt, done: bool) {
    let c = state.counts();
    let failed = run.excluded.len() as u64;
    let totals = StatsSnapshot {
        read: c.processed() + failed,
        written: c.created + c.updated,
        failed,
        conflicts: c.version_conflicts,
        retries: c.retries,
        bytes: 0,
        bulks: c.batches,
        ..Default::default()
    };
    stats.set_totals(&totals, done, run.samples.clone());
}

/// Cancels the task and waits (bounded) until it stopped writing.
async fn cancel(dest: &SearchClient, id: &str, stats: &CopyStats, run: &Attempt) {
    if let Err(e) = dest.cancel_task(id).await {
        tracing::warn!(task = %id, error = %e, "could not cancel the reindex task");
        return;
    }
    let wait = async {
        loop {
            match dest.task(id).await {
                Ok(Some(s)) if !s.completed => tokio::time::sleep(Duration::from_millis(250)).await,
                Ok(Some(s)) => {
                    publish(stats, &s, run, false);
                    return;
                }
                _ => return,
            }
        }
    };
    if tokio::time::timeout(CANCEL_WAIT, wait).await.is_err() {
        tracing::warn!(task = %id, "the cancelled reindex task has not stopped yet");
    } else {
        tracing::info!(task = %id, "cancelled the reindex task");
    }
}

/// A running reindex task of this copy (e.g. of a process that died before recording its id,
/// or of a start whose answer was lost): the same source host, index and query into the same
/// destination index (see [`is_this_copy`]); another copy's task into that index is left alone.
async fn adoptable(dest: &SearchClient, spec: &RemoteReindexSpec) -> Option<String> {
    match dest.running_reindex_tasks().await {
        Ok(tasks) => {
            let mine = tasks
                .iter()
                .find(|t| is_this_copy(&t.description, spec))
                .map(|t| t.id.clone());
            if mine.is_none()
                && let Some(t) = tasks.iter().find(|t| {
                    t.description
                        .ends_with(&format!(" to [{}]", spec.dest.index))
                })
            {
                tracing::warn!(
                    task = %t.id,
                    "a reindex task into the destination index is running, but from another source or query: not this copy's, not adopted"
                );
            }
            mine
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not list the destination's reindex tasks");
            None
        }
    }
}

/// Starts the task; a refusal of the remote host becomes `RemoteNotAllowed`.
async fn start(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    throttle: &Throttle,
    run: &Attempt,
) -> Result<String, WorkflowError> {
    let creds = source_credentials(conn);
    let body = reindex_body(spec, creds.as_ref(), &run.excluded, run.rerun);
    let mut params = vec![(
        "scroll",
        spec.source
            .scroll
            .as_ref()
            .map_or_else(|| "5m".to_string(), |d| d.0.clone()),
    )];
    if let Some(r) = throttle.rate() {
        params.push(("requests_per_second", r.to_string()));
    }
    match conn.dest.start_reindex(&body, &params).await {
        Ok(id) => Ok(id),
        Err(e) => {
            let text = redact(&e.to_string(), &creds);
            if let SearchError::Api {
                status: 400,
                kind,
                reason,
                ..
            } = &e
                && let Some(err) = refused_host(
                    kind,
                    &redact(reason, &creds),
                    &conn.dest_info.distribution,
                    conn.dest_info.version.major,
                )
            {
                return Err(WorkflowError::Server(err));
            }
            if e.is_transient()
                && let Some(id) = adoptable(&conn.dest, spec).await
            {
                return Ok(id);
            }
            Err(WorkflowError::Server(ServerError::Start {
                reason: super::error::search_reason(&e),
                detail: text,
            }))
        }
    }
}
