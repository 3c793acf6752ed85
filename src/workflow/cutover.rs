//! The cutover: (optionally) block writes to the source, run a final catch-up round, restore
//! and refresh the destination, verify it against the source, and move the aliases to it in one
//! atomic `_aliases` call on the destination cluster.
//!
//! Nothing is moved unless the verification passes. A write block this cutover set is removed
//! again when it fails; a refused block (403) fails before anything changed. On success the
//! block stays: the source is retired and its writers belong on the destination now.

use super::catchup::{CatchUpRun, shown_duration};
use super::connected::Connected;
use super::destination::restore_destination;
use super::error::WorkflowError;
use super::job::Job;
use super::prepared::Prepared;
use super::sink::Sink;
use crate::api::Reason;
use crate::api::{CutoverVerify, Phase, RemoteReindexSpec, Verify};
use crate::copy::{CopyPlan, Stop};
use crate::search::SearchError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// What a successful cutover did.
#[derive(Clone, Debug)]
pub struct CutoverOutcome {
    /// Catch-up rounds run, the final one included.
    pub rounds: i64,
    /// Documents the final round copied.
    pub final_round_documents: u64,
    /// The final round's lag.
    pub final_lag: Duration,
    /// Documents all rounds copied.
    pub round_documents: u64,
    /// What the verification found.
    pub verification: String,
    /// Destination documents deleted because the source no longer has them.
    pub deleted: u64,
    /// The aliases moved.
    pub aliases: Vec<String>,
    /// Documents in the destination.
    pub dest_count: u64,
    /// Documents the source held for the query at the verification.
    pub expected: u64,
    /// Whether the verification was exact.
    pub verified: bool,
    /// How the destination was verified: `Checksum` or `Count`.
    pub method: Verify,
    /// The checksum comparison (`cutover.verify: Checksum`).
    pub checksum: Option<crate::verify::ChecksumReport>,
}

impl CutoverOutcome {
    /// One line for the condition, the Event and the CLI.
    pub fn message(&self) -> String {
        let aliases = if self.aliases.is_empty() {
            "no aliases to move".to_string()
        } else {
            format!(
                "aliases {} now point at the destination",
                self.aliases.join(", ")
            )
        };
        let deleted = if self.deleted > 0 {
            format!(
                "; deleted {} documents the source no longer has",
                self.deleted
            )
        } else {
            String::new()
        };
        format!(
            "cut over after {} catch-up rounds (final round: {} documents, lag {}); {}{deleted}; {aliases}",
            self.rounds,
            self.final_round_documents,
            shown_duration(self.final_lag),
            self.verification,
        )
    }
}

fn failed(reason: Reason, message: String) -> WorkflowError {
    WorkflowError::Cutover { reason, message }
}

fn dest_err(during: &'static str) -> impl Fn(SearchError) -> WorkflowError {
    move |source| WorkflowError::Destination { during, source }
}

/// Runs the cutover (see the module doc).
#[allow(clippy::too_many_arguments)]
pub async fn cut_over<K: Sink>(
    run: &mut CatchUpRun<'_>,
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    base: &CopyPlan,
    sink: &K,
    stop: &Arc<Stop>,
) -> Result<CutoverOutcome, WorkflowError> {
    let cutover = spec.cutover.clone().unwrap_or_default();
    let block = cutover.write_block_source == Some(true);
    sink.phase(
        Phase::Finalizing,
        Reason::CuttingOver,
        format!(
            "cutover requested: {}final round, restoring the destination's settings, verifying, moving aliases",
            if block { "blocking writes to the source, " } else { "" }
        ),
    )
    .await
    .map_err(WorkflowError::Sink)?;
    let delete_missing = spec.catch_up.as_ref().is_some_and(|c| c.deletes_missing());
    if delete_missing && !prepared.dest_was_empty {
        return Err(failed(
            Reason::CutoverRefused,
            format!(
                "spec.catchUp.deleteMissing needs a destination that started empty (`{}` held documents before the copy, which the source never had); nothing was changed, the aliases were not moved",
                spec.dest.index
            ),
        ));
    }
    let src = &conn.source;
    let sidx = &spec.source.index;
    let mut set_block = false;
    if block {
        let already = src
            .describe_index(sidx)
            .await
            .ok()
            .and_then(|d| d.setting("index.blocks.write"))
            .is_some_and(|v| v == "true");
        if !already {
            src.put_settings(sidx, &json!({"index": {"blocks": {"write": true}}}))
                .await
                .map_err(|e| {
                    failed(
                        Reason::CutoverRefused,
                        format!(
                            "could not block writes to the source (spec.cutover.writeBlockSource): {e}; nothing was changed, the aliases were not moved"
                        ),
                    )
                })?;
            set_block = true;
        }
    }
    // Writes acknowledged just before the trigger (or the block) may not be searchable yet (the
    // source's refresh); `overlap` is by definition how late a write may become visible, so the
    // final round waits that long. Seen on OpenSearch 2.19: the last writes before the trigger
    // were missed without it.
    let wait = run.overlap();
    tracing::info!(wait = ?wait, "waiting one overlap before the final round");
    tokio::select! {
        _ = stop.requested() => {}
        _ = tokio::time::sleep(wait) => {}
    }
    let result = after_block(run, spec, conn, prepared, base, sink, stop, &cutover).await;
    if set_block && result.is_err() {
        let unblock = json!({"index": {"blocks": {"write": null}}});
        match src.put_settings(sidx, &unblock).await {
            Ok(()) => tracing::info!("removed the write block set on the source for the cutover"),
            Err(e) => {
                tracing::error!(error = %e, "could not remove the write block set on the source; remove index.blocks.write by hand")
            }
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn after_block<K: Sink>(
    run: &mut CatchUpRun<'_>,
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    base: &CopyPlan,
    sink: &K,
    stop: &Arc<Stop>,
    cutover: &crate::api::Cutover,
) -> Result<CutoverOutcome, WorkflowError> {
    let last = run.round(base, sink, stop, true).await?;
    let dst = &conn.dest;
    let didx = &spec.dest.index;
    if !conn.dest_info.is_serverless() {
        restore_destination(dst, didx, &prepared.original_settings).await?;
        dst.refresh(didx)
            .await
            .map_err(dest_err("refreshing the destination"))?;
    }
    let (verification, dest_count, expected, verified, deleted, method, checksum) =
        match cutover.verify.unwrap_or_default() {
            CutoverVerify::Count => {
                let (msg, found, expected, exact) = verify_count(spec, conn, prepared).await?;
                (msg, found, expected, exact, 0, Verify::Count, None)
            }
            CutoverVerify::Checksum => {
                let delete_missing = spec.catch_up.as_ref().is_some_and(|c| c.deletes_missing());
                let v = super::cutover_checksum::verify(
                    spec,
                    conn,
                    prepared,
                    base.dest_type.as_deref(),
                    delete_missing,
                    stop,
                )
                .await?;
                let r = v.report;
                (
                    r.message(),
                    r.found,
                    r.expected,
                    true,
                    v.deleted,
                    Verify::Checksum,
                    Some(r),
                )
            }
        };
    move_aliases(conn, didx, &cutover.aliases).await?;
    run.status.cut_over_at = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    let final_lag = last.lag.unwrap_or_default();
    let outcome = CutoverOutcome {
        rounds: run.status.rounds,
        final_round_documents: last.round.map_or(0, |r| r.written),
        final_lag,
        round_documents: run.written,
        verification,
        deleted,
        aliases: cutover.aliases.clone(),
        dest_count,
        expected,
        verified,
        method,
        checksum,
    };
    sink.catch_up(&run.report(None, None, Some(final_lag), outcome.message()))
        .await
        .map_err(WorkflowError::Sink)?;
    Ok(outcome)
}

/// Counts both sides: equal when the destination started empty, at least the source's count
/// otherwise. Returns the message, the destination's count and whether it was exact.
async fn verify_count(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
) -> Result<(String, u64, u64, bool), WorkflowError> {
    let expected = conn
        .source
        .count(&spec.source.index, spec.source.query.as_ref())
        .await
        .map_err(|source| WorkflowError::Source {
            during: "counting the source for the cutover's verification",
            source,
        })?;
    let found = conn
        .dest
        .count(&spec.dest.index, None)
        .await
        .map_err(dest_err("counting the destination"))?;
    if prepared.dest_was_empty && found != expected || found < expected {
        return Err(failed(
            Reason::VerificationFailed,
            format!(
                "cutover verification failed: the source holds {expected} documents, the destination {found}; the aliases were not moved"
            ),
        ));
    }
    let msg = if prepared.dest_was_empty {
        format!("count verified ({found} documents on both sides)")
    } else {
        format!(
            "destination was not empty: it holds {found} documents, the source {expected} (count not exact)"
        )
    };
    Ok((msg, found, expected, prepared.dest_was_empty))
}

/// Points every alias at `index` in one atomic `_aliases` call: removed from the indices it
/// points at now, added to `index` (created when absent).
async fn move_aliases(
    conn: &Connected,
    index: &str,
    aliases: &[String],
) -> Result<(), WorkflowError> {
    if aliases.is_empty() {
        return Ok(());
    }
    let dst = &conn.dest;
    let mut actions: Vec<Value> = Vec::new();
    for alias in aliases {
        let now = dst.alias_indices(alias).await.map_err(|e| {
            failed(
                Reason::CutoverFailed,
                format!("could not read alias `{alias}` on the destination: {e}; the aliases were not moved"),
            )
        })?;
        for i in now.iter().filter(|i| *i != index) {
            actions.push(json!({"remove": {"index": i, "alias": alias}}));
        }
        actions.push(json!({"add": {"index": index, "alias": alias}}));
    }
    dst.update_aliases(&actions).await.map_err(|e| {
        failed(
            Reason::CutoverFailed,
            format!("moving the aliases failed: {e}; the verified destination is ready, the aliases were not moved"),
        )
    })
}

/// Catch-up rounds until the driver asks for the cutover, then the cutover.
pub async fn live<K: Sink>(
    run: &mut CatchUpRun<'_>,
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    base: &CopyPlan,
    sink: &K,
    job: &Job,
) -> Result<CutoverOutcome, WorkflowError> {
    // The settings used only at the cutover may have been set while syncing, with the trigger.
    let spec = match run.until_cutover(base, sink, job).await? {
        Some(settings) => std::borrow::Cow::Owned(RemoteReindexSpec {
            cutover: Some(settings),
            ..spec.clone()
        }),
        None => std::borrow::Cow::Borrowed(spec),
    };
    cut_over(run, &spec, conn, prepared, base, sink, &job.stop).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{ClientOptions, ClusterInfo, SearchClient};

    /// The source stops answering during the cutover's verification (connection refused: a
    /// closed loopback port): the copy failed (exit 1), it is not a pre-flight failure.
    #[tokio::test]
    async fn a_source_count_failing_during_the_cutover_is_not_a_preflight_failure() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let spec: RemoteReindexSpec = serde_json::from_value(json!({
            "source": {"remote": {"host": closed}, "index": "src"},
            "dest": {"remote": {"host": closed}, "index": "dst"},
        }))
        .unwrap();
        let mut opts = ClientOptions::new(&closed);
        opts.retry = crate::search::RetryPolicy::none();
        let client = SearchClient::new(opts).unwrap();
        let conn = Connected {
            source: client.clone(),
            dest: client,
            source_info: ClusterInfo::serverless(),
            dest_info: ClusterInfo::serverless(),
            summary: String::new(),
            source_reachable: true,
        };
        let prepared = Prepared {
            original_settings: Default::default(),
            dest_was_empty: true,
            dest_index_uuid: None,
            total: None,
            slices: 1,
            summary: String::new(),
            checkpoints: Vec::new(),
            catch_up: None,
            task: None,
            resumed: false,
        };
        let e = verify_count(&spec, &conn, &prepared).await.unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
        assert!(!e.is_retryable_preflight(), "{e}");
        assert!(e.to_string().contains("cutover"), "{e}");
    }
}
