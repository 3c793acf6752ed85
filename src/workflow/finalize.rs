//! The finalize step: restore the destination's settings, refresh, and verify it against the
//! source (the count, or document by document), never against the copier's own counters.

use super::connected::Connected;
use super::engine::CopyStep;
use super::error::WorkflowError;
use super::job::Job;
use super::outcome::Outcome;
use super::prepared::Prepared;
use super::sink::Sink;
use crate::api::{Phase, Reason, RemoteReindexSpec, Verify};
use crate::copy::CopyStats;

/// Finalizes the copy `step` made: the outcome, or why the destination is not what it must be.
pub(super) async fn finalize<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    job: &Job,
    stats: &CopyStats,
    step: CopyStep,
) -> Result<Outcome, WorkflowError> {
    let expected = step.expected;
    let snap = stats.snapshot();
    let time = step
        .time
        .map(|t| format!(" (where the time went: {t})"))
        .unwrap_or_default();
    sink.phase(
        Phase::Finalizing,
        Reason::Finalizing,
        format!(
            "copied {} documents{time}; restoring settings and verifying",
            snap.written
        ),
    )
    .await
    .map_err(WorkflowError::Sink)?;
    let dst = &conn.dest;
    let didx = &spec.dest.index;
    let during = "verifying the destination";
    if let Some(was) = &prepared.dest_index_uuid {
        let now = dst
            .describe_index(didx)
            .await
            .ok()
            .and_then(|d| d.setting("index.uuid"));
        if now.as_ref() != Some(was) {
            return Err(WorkflowError::DestinationReplaced(format!(
                "destination index `{didx}` was deleted or recreated during the copy (index UUID {was} is now {}); the copy cannot be verified",
                now.as_deref().unwrap_or("absent")
            )));
        }
    }
    let found = if conn.dest_info.is_serverless() {
        // Nothing was tuned; Serverless has no refresh and indexes asynchronously.
        let want = prepared
            .dest_was_empty
            .then(|| expected.saturating_sub(snap.failed));
        super::serverless::settled_count(dst, didx, want).await
    } else {
        super::destination::restore_destination(dst, didx, &prepared.original_settings).await?;
        dst.refresh(didx)
            .await
            .map_err(|source| WorkflowError::Destination { during, source })?;
        dst.count(didx, None).await
    }
    .map_err(|source| WorkflowError::Destination { during, source })?;
    let method = spec.verify.unwrap_or_default();
    // Only an empty destination without a pipeline (which may drop documents) must hold exactly
    // the source's snapshot minus what failed; the copier's own counters are not evidence.
    let count_verified =
        method == Verify::Count && prepared.dest_was_empty && spec.dest.pipeline.is_none();
    if count_verified && found != expected.saturating_sub(snap.failed) {
        return Err(WorkflowError::CountMismatch {
            expected,
            failed: snap.failed,
            found,
        });
    }
    let checksum = match method {
        Verify::Checksum => Some(
            crate::verify::compare_copy(spec, &conn.source, &conn.dest, step.slices, &job.stop)
                .await
                .ok_or(WorkflowError::Cancelled)??,
        ),
        _ => None,
    };
    if let Some(c) = checksum.as_ref().filter(|c| !c.matched) {
        return Err(WorkflowError::ChecksumMismatch(c.clone()));
    }
    let retries = snap.retries + conn.source.retries() + conn.dest.retries();
    let mut prepared = prepared.clone();
    prepared.total = Some(expected);
    prepared.slices = step.slices;
    Ok(Outcome {
        stats: snap,
        prepared,
        dest_count: found,
        expected,
        paging: step.paging,
        verified: match method {
            Verify::Count => count_verified,
            Verify::Checksum => true,
            Verify::None => false,
        },
        method,
        checksum,
        checkpoints: stats.checkpoints(),
        reason: match (
            count_verified || method == Verify::Checksum,
            step.task_counts_only,
        ) {
            (true, true) if method == Verify::Count => Reason::TaskCountsOnly,
            (true, _) => Reason::Verified,
            (false, _) => Reason::Copied,
        },
        copy_time: step.copy_time,
        retries,
        cutover: None,
    })
}
