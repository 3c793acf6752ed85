//! Live migration in the controller: catch-up reports become `.status.catchUp`, the `Synced` and
//! `CutOver` conditions, Events and metrics; the registry entry's trigger starts the cutover.

use super::writer::{StatusWriter, api_message};
use crate::api::Reason;
use crate::api::{Change, RemoteReindexStatusPatch};
use crate::controller::metrics::CopyMetrics;
use crate::workflow::CatchUpReport;
use kube::runtime::events::EventType;
use std::sync::Arc;

/// The `Synced` condition type: the last catch-up round ended within `maxLag`.
pub const SYNCED: &str = "Synced";
/// The `CutOver` condition type: the aliases point at the destination.
pub const CUT_OVER: &str = "CutOver";

/// Persists a catch-up report and feeds the metrics.
pub async fn report(
    writer: &StatusWriter,
    metrics: &CopyMetrics,
    r: &CatchUpReport,
) -> Result<(), String> {
    let mut status = RemoteReindexStatusPatch {
        catch_up: Change::Set(r.status.clone()),
        ..Default::default()
    };
    if let Some(synced) = r.synced {
        let reason = if synced {
            Reason::WithinMaxLag
        } else {
            Reason::Lagging
        };
        status.conditions = Change::Set(writer.condition(SYNCED, synced, reason, &r.message));
    }
    if r.cut_over {
        status.conditions =
            Change::Set(writer.condition(CUT_OVER, true, Reason::CutOver, &r.message));
    }
    if let (Some(round), Some(lag)) = (&r.round, r.lag) {
        metrics.round(round, lag);
    }
    writer.patch(&status).await.map_err(|e| api_message(&e))?;
    if let Some(notice) = &r.future {
        writer
            .event(EventType::Warning, Reason::FutureDocuments, notice)
            .await;
    }
    if r.round.is_some() && r.synced == Some(false) || r.round.is_none() && !r.cut_over {
        // Rounds under maxLag are routine; a lagging round and the mark are worth an Event.
        let reason = if r.round.is_some() {
            Reason::Lagging
        } else {
            Reason::HighWaterMark
        };
        writer.event(EventType::Normal, reason, &r.message).await;
    }
    Ok(())
}

/// The cutover as the resource asks for it: `spec.cutover.trigger`, watched through the
/// registry entry the reconciler updates on every edit.
pub struct CutoverWatch(pub Arc<StatusWriter>);

impl crate::workflow::CutoverControl for CutoverWatch {
    fn triggered(&self) -> bool {
        self.0
            .entry
            .cutover
            .borrow()
            .as_ref()
            .is_some_and(|c| c.triggered())
    }

    fn requested(&self) -> futures::future::BoxFuture<'_, Option<crate::api::Cutover>> {
        Box::pin(cutover_requested(&self.0))
    }
}

/// Resolves once the resource's `spec.cutover.trigger` is true, with the resource's cutover
/// settings as of that edit (aliases, verify and writeBlockSource may come with the trigger).
async fn cutover_requested(writer: &StatusWriter) -> Option<crate::api::Cutover> {
    let mut rx = writer.entry.cutover.subscribe();
    let settings = rx
        .wait_for(|c| c.as_ref().is_some_and(|c| c.triggered()))
        .await
        .map(|c| c.clone());
    match settings {
        Ok(c) => c,
        // The entry (and its sender) outlives the task: never reached; wait for the stop.
        Err(_) => std::future::pending().await,
    }
}
