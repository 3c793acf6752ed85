//! `run`: connect → prepare → copy → finalize, reporting through a [`Sink`] and steered by a
//! [`Job`]. Each step lives in its own file: [`super::prepare`], [`super::engine`] or
//! [`super::server_copy`] (`mode: Server`), [`super::finalize`] (or the cutover, for a live
//! copy).

use super::connected::Connected;
use super::destination::restore_destination;
use super::engine::CopyStep;
use super::error::WorkflowError;
use super::job::Job;
use super::outcome::Outcome;
use super::prepared::Prepared;
use super::resolve::{SecretSource, Settings, connect_reporting};
use super::sink::Sink;
use super::slicing::SourceShape;
use crate::api::{CopyMode, Phase, Reason, RemoteReindexSpec};
use crate::copy::CopyStats;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs the whole workflow as `job` steers it. On failure the destination's settings are
/// restored; on cancellation too, unless the stop asks to keep them tuned.
pub async fn run<S: SecretSource, K: Sink>(
    spec: &RemoteReindexSpec,
    secrets: &S,
    settings: &Settings,
    sink: &K,
    job: Job,
) -> Result<Outcome, WorkflowError> {
    let mut attempts = 1;
    let conn = tokio::select! {
        biased;
        _ = job.stop.requested() => return Err(WorkflowError::Cancelled),
        c = connect_reporting(spec, secrets, settings, |r| {
            attempts = r.attempt + 1;
            sink.preflight_retry(r)
        }) => c?,
    };
    if attempts > 1 {
        // Replace the retry's reason: the failure is over.
        let msg = format!(
            "connected after {attempts} attempts ({}); preparing the destination",
            conn.summary
        );
        sink.phase(Phase::Pending, Reason::Pending, msg)
            .await
            .map_err(WorkflowError::Sink)?;
    }
    let (prepared, shape) = super::prepare::prepare(spec, &conn, sink, job.resume.clone()).await?;
    let rotation = rotate_while_copying(spec, secrets, settings, &conn);
    let result = copy_and_finalize(spec, &conn, sink, &prepared, shape, &job, rotation).await;
    let stop = &job.stop;
    let keep_tuned = matches!(result, Err(WorkflowError::Cancelled)) && stop.mode().keeps_tuning();
    if let Err(e) = &result
        && !keep_tuned
        && !matches!(
            e,
            WorkflowError::CountMismatch { .. }
                | WorkflowError::ChecksumMismatch(_)
                | WorkflowError::Verify(_)
                | WorkflowError::Destination { .. }
                | WorkflowError::DestinationReplaced(_)
        )
        && !conn.dest_info.is_serverless()
        && let Err(re) =
            restore_destination(&conn.dest, &spec.dest.index, &prepared.original_settings).await
    {
        tracing::error!(error = %re, "could not restore the destination's settings after: {e}");
    }
    result
}

/// The copy step (the engine, or the destination's own reindex task with `mode: Server`) with
/// the credentials rotating meanwhile, then finalize, unless a live copy's cutover verified it.
async fn copy_and_finalize<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    shape: SourceShape,
    job: &Job,
    rotation: impl Future<Output = ()>,
) -> Result<Outcome, WorkflowError> {
    let stats = Arc::new(CopyStats::new());
    let copy = async {
        if spec.mode() == CopyMode::Server {
            super::server_copy::step(spec, conn, sink, prepared, job, &stats).await
        } else {
            super::engine::copy(spec, conn, sink, prepared, shape, job, &stats).await
        }
    };
    let step: CopyStep = tokio::select! {
        r = copy => r?,
        () = rotation => unreachable!("the rotation loop never ends"),
    };
    match step.cutover {
        Some(cut) => {
            let snap = stats.snapshot();
            let retries = snap.retries + conn.source.retries() + conn.dest.retries();
            Ok(Outcome {
                stats: snap,
                prepared: Prepared {
                    slices: step.slices,
                    ..prepared.clone()
                },
                dest_count: cut.dest_count,
                expected: cut.expected,
                paging: step.paging,
                verified: cut.verified,
                method: cut.method,
                checksum: cut.checksum.clone(),
                checkpoints: stats.checkpoints(),
                reason: Reason::CutOver,
                copy_time: step.copy_time,
                retries,
                cutover: Some(cut),
            })
        }
        None => super::finalize::finalize(spec, conn, sink, prepared, job, &stats, step).await,
    }
}

/// How often a running copy re-reads its Secrets for rotated credentials.
const ROTATION_INTERVAL: Duration = Duration::from_secs(10);

/// Re-reads credentials every [`ROTATION_INTERVAL`]; never returns (raced against the copy).
async fn rotate_while_copying<S: SecretSource>(
    spec: &RemoteReindexSpec,
    secrets: &S,
    settings: &Settings,
    conn: &Connected,
) {
    loop {
        tokio::time::sleep(ROTATION_INTERVAL).await;
        super::resolve::rotate_credentials(spec, secrets, settings, conn).await;
    }
}
