//! `run`: prepare → copy → finalize, reporting through a [`Sink`].

use super::destination::{
    Marker, create_body, originals_from_user, originals_of, read_marker, restore_destination,
    tuned_settings, write_marker,
};
use super::error::WorkflowError;
use super::preflight::PreflightRetry;
use super::resolve::{Connected, SecretSource, Settings, connect_reporting};
use crate::api::units::Slices;
use crate::api::{Conflicts, CopyMode, OpType, OriginalSettings, Phase, RemoteReindexSpec, Verify};
use crate::copy::{
    CopyError, CopyPlan, CopyStats, Paging, SliceCheckpoint, StatsSnapshot, Stop, Throttle,
    WriteOp, open_copy,
};
use crate::search::SearchError;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What prepare decided and the drivers persist before the destination is tuned.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The destination's settings before tuning.
    pub original_settings: OriginalSettings,
    /// Whether the destination was empty or absent when the copy first started.
    pub dest_was_empty: bool,
    /// The destination's UUID, once known.
    pub dest_index_uuid: Option<String>,
    /// Documents expected: the source snapshot's exact total (known once the copy opened).
    pub total: Option<u64>,
    /// Slices used.
    pub slices: u32,
    /// Versions of both ends, for messages.
    pub summary: String,
    /// Per-slice checkpoints of an interrupted attempt (empty for a fresh copy).
    pub checkpoints: Vec<SliceCheckpoint>,
    /// What catch-up recorded before an interruption (its high-water mark wins over a new one).
    pub catch_up: Option<crate::api::CatchUpStatus>,
    /// `mode: Server`: the destination's reindex task an interrupted attempt started.
    pub task: Option<String>,
    /// An earlier attempt may have written documents already (a restart or resume).
    pub resumed: bool,
}

/// Where phases and progress go. The controller persists to `.status` and records Events; the
/// CLI prints.
pub trait Sink: Send + Sync {
    /// The workflow entered a non-terminal phase.
    fn phase(
        &self,
        phase: Phase,
        reason: &'static str,
        message: String,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Persist this before the destination is tuned: a restart must read these originals.
    fn prepared(&self, prepared: &Prepared) -> impl Future<Output = Result<(), String>> + Send;
    /// The copy opened its slices on the source: `expected` documents (the exact total of the
    /// source's snapshot, capped by `maxDocs`), read by `paging` (`pit` or `scroll`). Persist it
    /// before anything is written: verification compares the destination with it.
    fn expected(
        &self,
        expected: u64,
        paging: &'static str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The copy started: sample `stats` for progress (until the workflow returns).
    fn copying(&self, stats: Arc<CopyStats>, total: Option<u64>);
    /// Catch-up recorded its high-water mark, ended a round or cut over (`spec.catchUp`).
    /// Default: nothing is recorded.
    fn catch_up(
        &self,
        report: &super::CatchUpReport,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = report;
        async { Ok(()) }
    }
    /// Resolves when the driver asks for the cutover (`spec.cutover.trigger`), with the cutover
    /// settings to use when they changed since the copy started (`aliases`, `verify`,
    /// `writeBlockSource` may be set in the same edit as the trigger); `None`: the spec's.
    /// Default: never (catch-up runs until the copy is stopped).
    fn cutover_requested(&self) -> impl Future<Output = Option<crate::api::Cutover>> + Send {
        std::future::pending()
    }
    /// Whether the driver has already asked for the cutover (`spec.cutover.trigger: true`), so
    /// that "synced" says the cutover starts rather than how to start it. Default: no.
    fn cutover_triggered(&self) -> bool {
        false
    }
    /// A pre-flight check failed and will be retried until `preflightTimeout`: show why now.
    fn preflight_retry(&self, retry: PreflightRetry) -> impl Future<Output = ()> + Send {
        let _ = retry;
        async {}
    }

    /// `mode: Server`: the destination's reindex task, `<node>:<id>`, persisted before anything
    /// else happens (`None`: it was cancelled and must not be followed again). Sinks that
    /// persist nothing need not implement it.
    fn task(&self, task: Option<&str>) -> impl Future<Output = Result<(), String>> + Send {
        let _ = task;
        async { Ok(()) }
    }

    /// Scale-out: who runs the engine's slices when other processes do (`None`: this process
    /// runs them all).
    fn slice_runner(&self) -> Option<Arc<dyn super::slices::SliceRunner>> {
        None
    }
}

/// The result of a finished copy.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Final counters.
    pub stats: StatsSnapshot,
    /// What prepare decided.
    pub prepared: Prepared,
    /// Documents in the destination after the refresh.
    pub dest_count: u64,
    /// Documents expected from the source's snapshot (capped by `maxDocs`).
    pub expected: u64,
    /// How the source was read: `pit` or `scroll`.
    pub paging: &'static str,
    /// Whether the copy was verified: the count exactly (the destination started empty, no
    /// pipeline), or the checksum.
    pub verified: bool,
    /// `spec.verify` as applied.
    pub method: Verify,
    /// The checksum comparison, with `spec.verify: Checksum`.
    pub checksum: Option<crate::verify::ChecksumReport>,
    /// The slices' final checkpoints (all done, nothing left open).
    pub checkpoints: Vec<SliceCheckpoint>,
    /// The success reason: `Verified` (against the source or the documents read), `Copied`
    /// (the destination was not empty) or `TaskCountsOnly` (`mode: Server` without access to
    /// the source: checked against the task's own counts only).
    pub reason: &'static str,
    /// Wall time of the copy phase.
    pub copy_time: Duration,
    /// Requests retried (whole requests and resent items).
    pub retries: u64,
    /// What the cutover did (`spec.catchUp`).
    pub cutover: Option<super::CutoverOutcome>,
}

impl Outcome {
    /// A one-line summary for conditions, events and the CLI.
    pub fn message(&self) -> String {
        if let Some(c) = &self.cutover {
            return format!(
                "initial copy: {} documents; {}",
                self.stats.written,
                c.message()
            );
        }
        let rate = self.stats.written as f64 / self.copy_time.as_secs_f64().max(0.001);
        let check = match (&self.checksum, self.method, self.verified) {
            (None, _, true) if self.reason == "TaskCountsOnly" => {
                "count checked against the reindex task's own counts only (the source is not reachable from here)".into()
            }
            (Some(c), _, _) => c.message(),
            (None, Verify::None, _) => "not verified (spec.verify: None)".into(),
            (None, _, true) => "count verified against the source's snapshot".into(),
            (None, _, false) if self.prepared.dest_was_empty => {
                "an ingest pipeline may drop documents: count not verified".into()
            }
            (None, _, false) => "destination was not empty: count not verified".into(),
        };
        let pit = match (self.stats.pit_restarts, self.stats.pruned) {
            (0, _) => String::new(),
            (n, 0) => format!(
                "; the point in time was lost {n} time(s): every slice, finished ones included, started again under a new one and the expected count was taken again"
            ),
            (n, p) => format!(
                "; the point in time was lost {n} time(s): every slice, finished ones included, started again under a new one, the expected count was taken again and {p} document(s) the new one no longer holds were deleted from the destination"
            ),
        };
        format!(
            "copied {} of {} documents expected ({} failed, {} conflicts, {} rewritten, {} slice restarts; paging: {}) in {:.1}s ({:.0} docs/s); destination holds {}, {check}{pit}",
            self.stats.written,
            self.expected,
            self.stats.failed,
            self.stats.conflicts,
            self.stats.rewritten,
            self.stats.restarts,
            self.paging,
            self.copy_time.as_secs_f64(),
            rate,
            self.dest_count
        )
    }
}

/// Runs the whole workflow. `resume` carries what an earlier attempt persisted (its originals
/// win over whatever the destination shows now). On failure the destination's settings are
/// restored; on cancellation too, unless `settings` asks to keep them tuned.
pub async fn run<S: SecretSource, K: Sink>(
    spec: &RemoteReindexSpec,
    secrets: &S,
    settings: &Settings,
    sink: &K,
    resume: Option<Prepared>,
    throttle: Arc<Throttle>,
    stop: Arc<Stop>,
) -> Result<Outcome, WorkflowError> {
    let mut attempts = 1;
    let conn = tokio::select! {
        biased;
        _ = stop.requested() => return Err(WorkflowError::Cancelled),
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
        sink.phase(Phase::Pending, "Pending", msg)
            .await
            .map_err(WorkflowError::Sink)?;
    }
    let prepared = prepare(spec, &conn, sink, resume).await?;
    let rotation = rotate_while_copying(spec, secrets, settings, &conn);
    let result = copy_and_finalize(
        spec,
        &conn,
        sink,
        &prepared,
        throttle,
        stop.clone(),
        rotation,
    )
    .await;
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

async fn prepare<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    resume: Option<Prepared>,
) -> Result<Prepared, WorkflowError> {
    let (src, dst) = (&conn.source, &conn.dest);
    let pre_src = |e: SearchError| WorkflowError::Preflight {
        which: "source",
        source: e,
    };
    let pre_dst = |e: SearchError| WorkflowError::Preflight {
        which: "destination",
        source: e,
    };
    let dest_is_aws = spec
        .dest
        .remote
        .as_ref()
        .is_some_and(|e| e.aws_auth().is_some() || e.host.contains(".amazonaws.com"));
    super::server_reach::check_allowlist(spec, dest_is_aws, dst, &conn.dest_info)
        .await
        .map_err(WorkflowError::Server)?;
    if !conn.source_reachable && spec.verify == Some(Verify::Checksum) {
        return Err(WorkflowError::Invalid(vec![crate::api::validate::Invalid {
            field: "spec.verify".into(),
            message: "Checksum reads the source again, and the operator cannot reach it (mode: Server); use Count (then TaskCountsOnly) or let the operator reach the source".into(),
            reason: "InvalidSpec",
        }]));
    }
    let sidx = &spec.source.index;
    // `mode: Server` without a route to the source: the destination's templates (or
    // `dest.mappings`) shape the index and the task reports the total.
    let (source_desc, total) = if conn.source_reachable {
        if !src.index_exists(sidx).await.map_err(pre_src)? {
            return Err(WorkflowError::SourceNotCopyable(format!(
                "source index `{sidx}` does not exist on {}",
                src.name()
            )));
        }
        let source_desc = src.describe_index(sidx).await.map_err(pre_src)?;
        if source_disabled(&source_desc.mappings) {
            return Err(WorkflowError::SourceNotCopyable(format!(
                "source index `{sidx}` has _source disabled: its documents cannot be read back, so they cannot be copied"
            )));
        }
        let mut total = src
            .count(sidx, spec.source.query.as_ref())
            .await
            .map_err(pre_src)?;
        if let Some(m) = spec.source.max_docs {
            total = total.min(m as u64);
        }
        (source_desc, Some(total))
    } else {
        (crate::search::IndexDescription::default(), None)
    };
    let shards: u32 = source_desc
        .setting("index.number_of_shards")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let slices = match spec.source.slices.clone().unwrap_or_default() {
        Slices::Count(n) => n.max(1),
        Slices::Auto(_) if spec.mode() == CopyMode::Server => 1,
        Slices::Auto(_) => shards.clamp(1, 16),
    };
    let didx = &spec.dest.index;
    let source_id = format!("{}/{}", src.name(), sidx);
    let mut prepared = Prepared {
        original_settings: OriginalSettings::default(),
        dest_was_empty: true,
        dest_index_uuid: None,
        // Engine mode: known once the copy opened its slices (the source's snapshot, not a
        // `_count` of another moment). Server mode: the source's `_count`, when reachable.
        total: if spec.mode() == CopyMode::Server {
            total
        } else {
            None
        },
        slices,
        summary: conn.summary.clone(),
        checkpoints: Vec::new(),
        catch_up: None,
        task: None,
        resumed: resume.is_some(),
    };
    let exists = dst.index_exists(didx).await.map_err(pre_dst)?;
    if exists {
        let desc = dst.describe_index(didx).await.map_err(pre_dst)?;
        prepared.dest_index_uuid = desc.setting("index.uuid");
        let marker = read_marker(&desc).filter(|m| m.source == source_id);
        if let Some(r) = resume {
            if let (Some(was), Some(now)) = (&r.dest_index_uuid, &prepared.dest_index_uuid)
                && was != now
            {
                return Err(WorkflowError::DestinationReplaced(format!(
                    "destination index `{didx}` was deleted and recreated during the copy (index UUID {was} is now {now}); documents copied before are gone, so the copy stops"
                )));
            }
            prepared.original_settings = r.original_settings;
            prepared.dest_was_empty = r.dest_was_empty;
            prepared.checkpoints = r.checkpoints;
            prepared.catch_up = r.catch_up;
            prepared.task = r.task;
        } else if let Some(m) = marker {
            tracing::info!(index = %didx, "resuming an interrupted copy: using the settings recorded before it tuned the index");
            prepared.original_settings = m.original_settings;
            prepared.dest_was_empty = m.dest_was_empty;
            prepared.resumed = true;
        } else {
            let count = dst.count(didx, None).await.map_err(pre_dst)?;
            if count > 0 && spec.dest.allow_existing != Some(true) {
                return Err(WorkflowError::DestinationNotEmpty(format!(
                    "destination index `{didx}` on {} already holds {count} documents; set spec.dest.allowExisting: true to write into it",
                    dst.name()
                )));
            }
            prepared.original_settings = originals_of(&desc);
            prepared.dest_was_empty = count == 0;
        }
        sink.prepared(&prepared)
            .await
            .map_err(WorkflowError::Sink)?;
        let marker = Marker {
            original_settings: prepared.original_settings.clone(),
            dest_was_empty: prepared.dest_was_empty,
            source: source_id,
        };
        let during = "tuning the destination for bulk loading";
        // Serverless manages replicas and refresh: nothing to tune, so nothing to restore.
        if !conn.dest_info.is_serverless() {
            write_marker(dst, didx, Some(&marker))
                .await
                .map_err(|source| WorkflowError::Destination { during, source })?;
            dst.put_settings(didx, &tuned_settings())
                .await
                .map_err(|source| WorkflowError::Destination { during, source })?;
        }
    } else {
        if let Some(r) = &resume
            && (r.dest_index_uuid.is_some() || r.checkpoints.iter().any(|c| c.written > 0))
        {
            return Err(WorkflowError::DestinationReplaced(format!(
                "destination index `{didx}` was deleted during the copy; documents copied before are gone, so the copy stops"
            )));
        }
        prepared.original_settings = match resume {
            Some(r) => r.original_settings,
            None => originals_from_user(spec.dest.settings.as_ref()),
        };
        sink.prepared(&prepared)
            .await
            .map_err(WorkflowError::Sink)?;
        let mut body = create_body(
            spec.dest.settings.as_ref(),
            spec.dest.mappings.as_ref(),
            &source_desc,
            None,
        );
        if conn.dest_info.is_serverless() {
            super::serverless::untune(&mut body);
        }
        let during = "creating the destination index";
        dst.create_index(didx, &body)
            .await
            .map_err(|source| WorkflowError::Destination { during, source })?;
        let marker = Marker {
            original_settings: prepared.original_settings.clone(),
            dest_was_empty: true,
            source: source_id,
        };
        if !conn.dest_info.is_serverless() {
            write_marker(dst, didx, Some(&marker))
                .await
                .map_err(|source| WorkflowError::Destination { during, source })?;
        }
        prepared.dest_index_uuid = dst
            .describe_index(didx)
            .await
            .ok()
            .and_then(|d| d.setting("index.uuid"));
    }
    Ok(prepared)
}

async fn copy_and_finalize<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    throttle: Arc<Throttle>,
    stop: Arc<Stop>,
    rotation: impl Future<Output = ()>,
) -> Result<Outcome, WorkflowError> {
    tokio::pin!(rotation);
    let stats = Arc::new(CopyStats::new());
    // The copy step: the engine, or the destination's own reindex task (`mode: Server`).
    let (expected, paging_name, copy_time, task_counts_only) = if spec.mode() == CopyMode::Server {
        let msg = format!(
            "copying {} documents from {}/{} to {}/{} by the destination's own _reindex task ({})",
            prepared.total.map_or("?".into(), |t| t.to_string()),
            conn.source.name(),
            spec.source.index,
            conn.dest.name(),
            spec.dest.index,
            prepared.summary
        );
        sink.phase(Phase::Copying, "Copying", msg)
            .await
            .map_err(WorkflowError::Sink)?;
        let started = Instant::now();
        let copy =
            super::server_copy::copy(spec, conn, sink, prepared, throttle, stop.clone(), &stats);
        let copied = tokio::select! {
            r = copy => r,
            () = &mut rotation => unreachable!("the rotation loop never ends"),
        }?;
        // Against the source's `_count` when the operator reaches it, else the documents the
        // task dealt with (`read`, its rejected ones included).
        let expected = copied.source_total.unwrap_or(stats.snapshot().read);
        (
            expected,
            "server",
            started.elapsed(),
            copied.source_total.is_none(),
        )
    } else if let Some(runner) = sink.slice_runner().filter(|_| spreadable(spec)) {
        let copy = super::slices::copy(spec, conn, sink, prepared, throttle, &stop, &stats, runner);
        tokio::select! {
            r = copy => r,
            () = &mut rotation => unreachable!("the rotation loop never ends"),
        }?
    } else {
        let keep_alive = keep_alive(spec);
        let paging = crate::copy::pager::choose(
            &conn.source,
            &spec.source.index,
            spec.source.query.as_ref(),
            &keep_alive,
            super::slices::paging_choice(spec),
        )
        .await
        .map_err(WorkflowError::SourceNotCopyable)?;
        let paging_name = paging.name();
        let plan = copy_plan(spec, conn, prepared, throttle, paging);
        let max_docs = plan.max_docs;
        // Catch-up's high-water mark H0 is taken before the copy opens its snapshot.
        let mut live = match &spec.catch_up {
            Some(c) => {
                Some(super::catchup::CatchUpRun::start(spec, conn, c, prepared, sink).await?)
            }
            None => None,
        };
        let opened = tokio::select! {
            r = open_copy(plan.clone(), stats.clone(), stop.clone()) => r,
            () = &mut rotation => unreachable!("the rotation loop never ends"),
        }
        .map_err(copy_error)?;
        let Some(total) = opened.expected() else {
            return Err(WorkflowError::Copy(CopyError::BadPage(
                "the source did not report how many documents its snapshot holds".into(),
            )));
        };
        sink.expected(total, paging_name)
            .await
            .map_err(WorkflowError::Sink)?;
        let msg = format!(
            "copying {total} documents from {}/{} to {}/{} with {} slice(s) by {paging_name} ({})",
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
        sink.copying(stats.clone(), Some(total));
        let started = Instant::now();
        let copied = tokio::select! {
            r = opened.run() => r,
            () = &mut rotation => unreachable!("the rotation loop never ends"),
        };
        copied.map_err(copy_error)?;
        let copy_time = started.elapsed();
        if let Some(run) = &mut live {
            let cut = tokio::select! {
                r = super::cutover::live(run, spec, conn, prepared, &plan, sink, &stop) => r?,
                () = &mut rotation => unreachable!("the rotation loop never ends"),
            };
            let snap = stats.snapshot();
            let retries = snap.retries + conn.source.retries() + conn.dest.retries();
            return Ok(Outcome {
                stats: snap,
                prepared: prepared.clone(),
                dest_count: cut.dest_count,
                expected: cut.expected,
                paging: paging_name,
                verified: cut.verified,
                method: cut.method,
                checksum: cut.checksum.clone(),
                checkpoints: stats.checkpoints(),
                reason: "CutOver",
                copy_time,
                retries,
                cutover: Some(cut),
            });
        }
        // Slices that restarted took their totals again from their new snapshot.
        (
            stats.expected(max_docs).unwrap_or(total),
            paging_name,
            copy_time,
            false,
        )
    };
    let snap = stats.snapshot();
    sink.phase(
        Phase::Finalizing,
        "Finalizing",
        format!(
            "copied {} documents; restoring settings and verifying",
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
        restore_destination(dst, didx, &prepared.original_settings).await?;
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
        Verify::Checksum => Some(compare_checksums(spec, conn, prepared, &stop).await?),
        _ => None,
    };
    if let Some(c) = checksum.as_ref().filter(|c| !c.matched) {
        return Err(WorkflowError::ChecksumMismatch(c.clone()));
    }
    let retries = snap.retries + conn.source.retries() + conn.dest.retries();
    let mut prepared = prepared.clone();
    prepared.total = Some(expected);
    Ok(Outcome {
        stats: snap,
        prepared,
        dest_count: found,
        expected,
        paging: paging_name,
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
            task_counts_only,
        ) {
            (true, true) if method == Verify::Count => "TaskCountsOnly",
            (true, _) => "Verified",
            (false, _) => "Copied",
        },
        copy_time,
        retries,
        cutover: None,
    })
}

pub(super) fn copy_error(e: CopyError) -> WorkflowError {
    match e {
        CopyError::Cancelled => WorkflowError::Cancelled,
        e => WorkflowError::Copy(e),
    }
}

/// The scroll / point-in-time keep-alive (`source.scroll`, default `5m`).
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

pub(crate) fn keep_alive(spec: &RemoteReindexSpec) -> String {
    spec.source
        .scroll
        .as_ref()
        .map_or_else(|| "5m".to_string(), |d| d.0.clone())
}

/// One side of the checksum comparison: the source with the copy's query, or the destination.
/// Compares the source (with the copy's query) and the destination document by document;
/// a stop request cancels the comparison.
pub(super) async fn compare_checksums(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    stop: &Stop,
) -> Result<crate::verify::ChecksumReport, WorkflowError> {
    let source = scan_side(spec, conn, prepared, true);
    let dest = scan_side(spec, conn, prepared, false);
    tokio::select! {
        biased;
        _ = stop.requested() => Err(WorkflowError::Cancelled),
        r = crate::verify::checksum(&source, &dest) => Ok(r?),
    }
}

fn scan_side(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    source: bool,
) -> crate::verify::Side {
    let keep_alive = keep_alive(spec);
    crate::verify::Side {
        which: if source { "source" } else { "destination" },
        client: if source {
            conn.source.clone()
        } else {
            conn.dest.clone()
        },
        index: if source {
            &spec.source.index
        } else {
            &spec.dest.index
        }
        .clone(),
        query: if source {
            spec.source.query.clone()
        } else {
            None
        },
        slices: prepared.slices,
        keep_alive,
    }
}

pub(crate) fn copy_plan(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    throttle: Arc<Throttle>,
    paging: Paging,
) -> CopyPlan {
    let bulk_bytes = spec
        .dest
        .bulk_bytes
        .as_ref()
        .and_then(|b| b.bytes().ok())
        .unwrap_or(5 << 20) as usize;
    let max_concurrent_bulk = spec
        .dest
        .max_concurrent_bulk
        .map(|n| n as usize)
        .unwrap_or_else(|| (prepared.slices as usize * 2).clamp(4, 16));
    CopyPlan {
        source: conn.source.clone(),
        source_index: spec.source.index.clone(),
        query: spec.source.query.clone(),
        page_size: spec.source.size.unwrap_or(1000).clamp(1, 10_000) as u32,
        keep_alive: keep_alive(spec),
        paging,
        slices: prepared.slices,
        max_docs: spec.source.max_docs.map(|n| n as u64),
        dest: conn.dest.clone(),
        dest_index: spec.dest.index.clone(),
        // `_type` in bulk actions on Elasticsearch 6.x.
        dest_type: conn.dest.mapping_type().map(str::to_string),
        op: match spec.dest.op_type.unwrap_or_default() {
            OpType::Index => WriteOp::Index,
            OpType::Create => WriteOp::Create,
        },
        pipeline: spec.dest.pipeline.clone(),
        bulk_bytes,
        max_concurrent_bulk,
        proceed_on_conflict: spec.conflicts == Some(Conflicts::Proceed),
        dest_was_empty: prepared.dest_was_empty,
        max_failed_docs: spec.max_failed_docs.unwrap_or(0).max(0) as u64,
        throttle,
        resume: prepared.checkpoints.clone(),
        share: None,
    }
}

/// True when the mapping (typed or not) has `_source.enabled: false`.
fn source_disabled(mappings: &Value) -> bool {
    let off = |m: &Value| {
        m.get("_source")
            .and_then(|s| s.get("enabled"))
            .is_some_and(|e| e == &Value::Bool(false) || e == "false")
    };
    off(mappings) || mappings.as_object().is_some_and(|o| o.values().any(off))
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
