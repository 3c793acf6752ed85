//! The per-resource copy task: runs [`workflow::run`] with the status sink and writes the
//! terminal status (or, when interrupted, leaves the phase for a restart to resume).

use super::live::CutoverWatch;
use super::registry::Entry;
use super::sink::{StatusSink, failures_patch};
use super::status::now;
use super::writer::{StatusWriter, WriteError, api_message, is_not_found};
use crate::api::{
    Change, Phase, ProgressPatch, Reason, RemoteReindex, RemoteReindexStatus,
    RemoteReindexStatusPatch,
};
use crate::controller::context::Admitted;
use crate::controller::context::Context;
use crate::workflow::progress::progress;
use crate::workflow::{self, Job, Outcome, Prepared, WorkflowError};
use kube::ResourceExt;
use kube::runtime::events::EventType;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// The condition saying whether the copy was verified against the source.
const VERIFIED: &str = "Verified";

/// How long clearing a dead process's scrolls may take before the copy goes on without it.
const STALE_SCROLL_TIMEOUT: Duration = Duration::from_secs(30);

/// What an earlier, interrupted attempt persisted: its originals win over the destination's
/// current (possibly tuned) settings. Only a non-terminal phase resumes; a new generation after
/// Succeeded/Failed starts afresh.
pub fn resume_from(status: Option<&RemoteReindexStatus>) -> Option<Prepared> {
    let s = status?;
    if s.phase.is_none_or(Phase::is_terminal) {
        return None;
    }
    Some(Prepared {
        original_settings: s.original_settings.clone()?,
        dest_was_empty: s.dest_was_empty.unwrap_or(false),
        dest_index_uuid: s.dest_index_uuid.clone(),
        total: None,
        slices: s.slices.len().max(1) as u32,
        summary: String::new(),
        checkpoints: crate::copy::checkpoints_from(&s.slices),
        catch_up: s.catch_up.clone(),
        task: s.task.clone(),
        resumed: true,
    })
}

/// Starts the copy for `obj` and registers it; returns the entry.
pub fn spawn(ctx: Arc<Context>, obj: &RemoteReindex, uid: &str) -> Arc<Entry> {
    let entry = Arc::new(Entry::new(
        obj.spec.clone(),
        obj.metadata.generation.unwrap_or(0),
    ));
    ctx.registry.insert(uid, entry.clone());
    let writer = Arc::new(StatusWriter::new(ctx.clone(), entry.clone(), obj));
    entry.set_writer(
        Arc::downgrade(&writer) as std::sync::Weak<dyn super::registry::RunningConditions>
    );
    let generation = entry.generation();
    if writer.has_condition(super::status::SPEC_APPLIED, false) {
        // An edit the previous copy could not apply runs now.
        writer.set_condition(
            super::status::SPEC_APPLIED,
            true,
            Reason::Applied,
            &format!("the copy runs the spec of generation {generation}"),
        );
    }
    let obj = obj.clone();
    let done = entry.done.clone();
    // Every log line of the copy (workflow, engine, search client) names its resource.
    let span = tracing::info_span!(
        "copy",
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        generation
    );
    tokio::spawn(
        async move {
            let _done = done.drop_guard();
            ctx.metrics.copies_running.inc();
            let result = run(&writer, &obj).await;
            ctx.metrics.copies_running.dec();
            ctx.metrics.finished(result);
        }
        .instrument(span),
    );
    entry
}

async fn run(writer: &Arc<StatusWriter>, obj: &RemoteReindex) -> &'static str {
    let ctx = &writer.ctx;
    let entry = &writer.entry;
    let ns = obj.namespace().unwrap_or_default();
    let status = obj.status.as_ref();
    let resume = resume_from(status);
    let (reason, message) = match &resume {
        Some(_) => (
            Reason::Resuming,
            "resuming an interrupted copy with the settings recorded before tuning".to_string(),
        ),
        None => (
            Reason::Pending,
            "validating the spec and connecting to both clusters".to_string(),
        ),
    };
    let mut start = RemoteReindexStatusPatch {
        progress: Change::Clear,
        completed_at: Change::Clear,
        failures: Change::Clear,
        open_scrolls: Change::Clear,
        verification: Change::Clear,
        ..Default::default()
    };
    if resume.is_none() {
        // A new copy: nothing recorded by an earlier one applies.
        start = RemoteReindexStatusPatch {
            original_settings: Change::Clear,
            dest_was_empty: Change::Clear,
            dest_index_uuid: Change::Clear,
            started_at: Change::Clear,
            slices: Change::Clear,
            catch_up: Change::Clear,
            task: Change::Clear,
            target: Change::Set(crate::api::CopyTarget::of(&obj.spec)),
            ..start
        };
    }
    if let Err(e) = writer.phase(Phase::Pending, reason, &message, start).await {
        tracing::warn!(name = %obj.name_any(), error = %api_message(&e), "could not record the Pending phase; the copy goes on");
    }
    // The policy is evaluated before anything connects to a search cluster (stale scrolls
    // included); a refusal ends the copy like any other failure, with its own reason.
    let (result, stats) = match ctx.admit(&ns, &entry.spec).await {
        Ok(admitted) => {
            entry.set_rate_ceiling(admitted.decision.rate_ceiling.clone());
            copy(writer, obj, admitted, resume).await
        }
        Err(refusal) => (Err(WorkflowError::Refused(refusal)), None),
    };
    finish(writer, obj, result, stats).await
}

type Stats = Option<(Arc<crate::copy::CopyStats>, Option<u64>)>;

/// Runs the workflow for a copy the policy allowed.
async fn copy(
    writer: &Arc<StatusWriter>,
    obj: &RemoteReindex,
    admitted: Admitted,
    resume: Option<Prepared>,
) -> (Result<Outcome, WorkflowError>, Stats) {
    let ctx = &writer.ctx;
    let entry = &writer.entry;
    let status = obj.status.as_ref();
    let Admitted {
        secrets,
        settings,
        decision,
    } = admitted;
    if let Some(stale) = status
        .map(|s| {
            // A scroll recorded as resumable by a graceful stop is continued, not cleared.
            let keep: Vec<&String> = s
                .slices
                .iter()
                .filter(|c| c.resumable)
                .filter_map(|c| c.scroll_id.as_ref())
                .collect();
            s.open_scrolls
                .iter()
                .filter(|id| !keep.contains(id))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
    {
        clear_stale_scrolls(obj, &secrets, &settings, &stale).await;
    }
    let endpoints = [
        ("spec.source.remote", Some(&obj.spec.source.remote)),
        ("spec.dest.remote", obj.spec.dest.remote.as_ref()),
    ];
    for (field, ep) in endpoints {
        if ep
            .and_then(|e| e.tls.as_ref())
            .and_then(|t| t.insecure_skip_verify)
            == Some(true)
        {
            let note = format!(
                "{field}: TLS certificate verification is disabled (tls.insecureSkipVerify); anyone on the path can read and change the data"
            );
            writer
                .event(EventType::Warning, Reason::InsecureSkipVerify, &note)
                .await;
        }
    }
    let sink = StatusSink::new(writer.clone());
    let job = Job::new(entry.throttle.clone(), entry.stop.clone())
        .resuming(resume)
        .cut_over_by(Arc::new(CutoverWatch(writer.clone())))
        .slices_run_by(ctx.scale.as_ref().map(|s| s.runner(obj)))
        .slices_at_most(decision.max_slices);
    let result = workflow::run(&entry.spec, &secrets, &settings, &sink, job).await;
    sink.stop_sampler().await;
    (result, sink.stats())
}

/// Writes the terminal status (or the interruption) and the Event; returns the metrics label.
async fn finish(
    writer: &Arc<StatusWriter>,
    obj: &RemoteReindex,
    result: Result<Outcome, WorkflowError>,
    stats: Stats,
) -> &'static str {
    let ctx = &writer.ctx;
    let entry = &writer.entry;
    let (label, patch) = match &result {
        Ok(outcome) => ("succeeded", succeeded(writer, outcome)),
        Err(WorkflowError::Cancelled) => {
            // The checkpoints after the drain: done slices are skipped by the successor, and a
            // scroll kept on shutdown is continued when nothing fetched from it is unwritten.
            let mode = entry.stop.mode();
            let mut patch = RemoteReindexStatusPatch {
                open_scrolls: Change::Clear,
                ..Default::default()
            };
            if let Some((s, total)) = &stats {
                patch.progress =
                    Change::Set(ProgressPatch::from(&progress(&s.snapshot(), *total, None)));
                patch.slices = Change::Set(crate::copy::slices_status(&s.checkpoints()));
                if mode.keeps_scrolls() {
                    patch.open_scrolls = Change::Set(s.open_scrolls());
                }
            }
            if mode == crate::copy::StopMode::Suspend {
                let msg = "suspended (spec.suspend: true): scrolls cleared, destination kept tuned; set suspend to false to resume";
                if let Err(e) = writer
                    .phase(Phase::Suspended, Reason::Suspended, msg, patch)
                    .await
                    && !is_not_found(&e)
                {
                    tracing::warn!(error = %e, "could not record the suspension");
                }
                return "suspended";
            }
            if let Err(e) = writer.patch(&patch).await
                && !is_not_found(&e)
            {
                tracing::warn!(error = %e, "could not record the interruption");
            }
            let note = if mode.keeps_scrolls() {
                "copy stopped (operator shutting down); destination settings restored, progress checkpointed for the next operator"
            } else {
                "copy stopped (resource deleted); destination settings restored"
            };
            writer
                .event(EventType::Normal, Reason::Interrupted, note)
                .await;
            return "interrupted";
        }
        Err(e) => {
            ctx.metrics.failed(e.reason());
            ("failed", failed(writer, e, stats.as_ref()))
        }
    };
    entry.set_final_patch(patch.clone());
    let (phase, reason, message) = match &result {
        Ok(o) => (Phase::Succeeded, o.reason, o.message()),
        Err(e) => (Phase::Failed, e.reason(), e.to_string()),
    };
    match &result {
        Ok(_) => tracing::info!(name = %obj.name_any(), message, "copy succeeded"),
        Err(_) => tracing::warn!(name = %obj.name_any(), %reason, message, "copy failed"),
    }
    match writer.patch(&patch).await {
        Ok(()) => {
            let type_ = if phase == Phase::Failed {
                EventType::Warning
            } else {
                EventType::Normal
            };
            writer.event(type_, reason, &message).await;
        }
        Err(e) if is_not_found(&e) => {}
        // Logged by the writer; the new leader owns the status now.
        Err(WriteError::NotLeader(_)) => {}
        Err(e) => {
            tracing::error!(name = %obj.name_any(), error = %api_message(&e), "could not write the terminal status; the next reconcile retries");
            // An Event may still get through (e.g. RBAC without `remotereindexes/status`), so
            // that `kubectl describe` shows why the status is stuck.
            let note = if reason == Reason::StatusUpdateFailed {
                format!("cannot write .status: {}", api_message(&e))
            } else {
                format!(
                    "the copy ended ({reason}: {message}) but its status could not be written: {}",
                    api_message(&e)
                )
            };
            writer
                .event(EventType::Warning, Reason::StatusUpdateFailed, &note)
                .await;
        }
    }
    label
}

/// The terminal status after success.
fn succeeded(writer: &StatusWriter, o: &Outcome) -> RemoteReindexStatusPatch {
    let reason = o.reason;
    let message = o.message();
    let verified = match (&o.checksum, o.verified) {
        (Some(_), _) => (true, Reason::ChecksumMatched),
        (None, true) => (true, Reason::CountMatched),
        (None, false) => (false, Reason::NotVerified),
    };
    writer.set_condition(VERIFIED, verified.0, verified.1, &message);
    let rate = o.stats.written as f64 / o.copy_time.as_secs_f64().max(0.001);
    let mut p = progress(&o.stats, o.prepared.total, Some(rate));
    p.retries = o.retries as i64;
    p.eta = None;
    RemoteReindexStatusPatch {
        progress: Change::Set(ProgressPatch::from(&p)),
        paging: Change::Set(o.paging.to_string()),
        // The final checkpoints: every slice done, no scroll or PIT cursor left behind.
        slices: Change::Set(crate::copy::slices_status(&o.checkpoints)),
        open_scrolls: Change::Clear,
        completed_at: Change::Set(now()),
        verification: o.checksum.as_ref().map(|c| c.status()).into(),
        ..writer.phase_patch(Phase::Succeeded, reason, &message)
    }
}

/// The terminal status after a failure.
fn failed(
    writer: &StatusWriter,
    e: &WorkflowError,
    stats: Option<&(Arc<crate::copy::CopyStats>, Option<u64>)>,
) -> RemoteReindexStatusPatch {
    if matches!(
        e,
        WorkflowError::CountMismatch { .. }
            | WorkflowError::ChecksumMismatch(_)
            | WorkflowError::Verify(_)
    ) {
        writer.set_condition(VERIFIED, false, e.reason(), &e.to_string());
    }
    let mut status = RemoteReindexStatusPatch {
        open_scrolls: Change::Clear,
        completed_at: Change::Set(now()),
        ..writer.phase_patch(Phase::Failed, e.reason(), &e.to_string())
    };
    if let WorkflowError::ChecksumMismatch(report) = e {
        status.verification = Change::Set(report.status());
    }
    if let Some((s, total)) = stats {
        status.progress = Change::Set(ProgressPatch::from(&progress(&s.snapshot(), *total, None)));
        status.failures = failures_patch(s);
    }
    status
}

/// Clears scroll ids a dead process left in `.status.openScrolls` (best effort: they also
/// expire after their keep-alive).
async fn clear_stale_scrolls<S: workflow::SecretSource>(
    obj: &RemoteReindex,
    secrets: &S,
    settings: &workflow::Settings,
    ids: &[String],
) {
    let connect = workflow::connect(&obj.spec, secrets, settings);
    match tokio::time::timeout(STALE_SCROLL_TIMEOUT, connect).await {
        Ok(Ok(conn)) => match conn.source.clear_scroll(ids).await {
            Ok(()) => tracing::info!(
                count = ids.len(),
                "cleared scrolls left by an earlier process"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not clear scrolls left by an earlier process")
            }
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not connect to clear scrolls left by an earlier process")
        }
        Err(_) => {
            tracing::warn!("timed out connecting to clear scrolls left by an earlier process")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OriginalSettings;

    #[test]
    fn only_interrupted_phases_resume() {
        let mut s = RemoteReindexStatus {
            phase: Some(Phase::Copying),
            original_settings: Some(OriginalSettings::default()),
            dest_was_empty: Some(true),
            ..Default::default()
        };
        let r = resume_from(Some(&s)).unwrap();
        assert!(r.dest_was_empty);
        s.phase = Some(Phase::Succeeded);
        assert!(resume_from(Some(&s)).is_none());
        s.phase = Some(Phase::Pending);
        s.original_settings = None;
        assert!(resume_from(Some(&s)).is_none());
        assert!(resume_from(None).is_none());
    }
}
