//! Finalizer cleanup: stop the copy (the workflow restores the destination's settings and the
//! engine clears its scrolls), or, when no copy runs here but the status shows an interrupted
//! one (a dead process), cancel its reindex task (`mode: Server`), clear its scrolls and restore
//! the recorded settings.

use crate::api::Reason;
use crate::api::{Phase, RemoteReindex, RemoteReindexStatus};
use crate::controller::context::Context;
use crate::controller::error::ReconcileError;
use crate::controller::secrets::KubeSecrets;
use crate::workflow::{self, restore_destination};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// The finalizer that makes deletion stop the copy and restore the destination first.
pub const FINALIZER: &str = "reindex.dev/cleanup";

/// How long one cleanup waits for the copy to stop before it is retried.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// How long connecting to the clusters may take during cleanup.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// After this long in deletion, cleanup that keeps failing is abandoned (the finalizer goes).
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Cleans up before the finalizer is removed.
pub async fn cleanup(obj: Arc<RemoteReindex>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let uid = obj
        .uid()
        .ok_or(ReconcileError::MissingField("metadata.uid"))?;
    // Scale-out: a deleted copy's slice Leases go too, whoever planned them (the workers'
    // next renewal fails and they stop); the tests' API server runs no garbage collector.
    if let Some(scale) = &ctx.scale {
        scale
            .delete_slice_leases(&obj.namespace().unwrap_or_default(), &uid)
            .await;
    }
    if let Some(entry) = ctx.registry.get(&uid) {
        let was_running = entry.is_running();
        entry.stop.request(crate::copy::StopMode::Interrupt);
        if tokio::time::timeout(STOP_WAIT, entry.done.cancelled())
            .await
            .is_err()
        {
            return Err(ReconcileError::StillStopping);
        }
        ctx.registry.remove(&uid);
        if was_running {
            tracing::info!(name = %obj.name_any(), "copy stopped for deletion");
        }
        return Ok(Action::await_change());
    }
    // The watch may deliver a stale copy of an object whose cleanup already finished: only act
    // on what the API server holds now.
    let api: Api<RemoteReindex> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let Some(obj) = api.get_opt(&obj.name_any()).await? else {
        return Ok(Action::await_change());
    };
    if obj.uid().as_deref() != Some(uid.as_str())
        || !obj.finalizers().iter().any(|f| f == FINALIZER)
    {
        return Ok(Action::await_change());
    }
    let status = obj.status.clone().unwrap_or_default();
    let terminal = status.phase.is_some_and(Phase::is_terminal);
    if terminal
        || (status.original_settings.is_none()
            && status.open_scrolls.is_empty()
            && status.task.is_none())
    {
        return Ok(Action::await_change());
    }
    let reference = obj.object_ref(&());
    match leftovers(&obj, &ctx, &status).await {
        Ok(()) => {
            let note = "an interrupted copy was cleaned up: scrolls cleared and the destination's settings restored";
            ctx.event(&reference, EventType::Normal, Reason::CleanedUp, note)
                .await;
            Ok(Action::await_change())
        }
        Err((message, retryable)) if retryable && !deleting_for(&obj, GIVE_UP_AFTER) => {
            Err(ReconcileError::Cleanup(message))
        }
        Err((message, _)) => {
            let note = format!(
                "could not restore the destination or clear scrolls; removing the finalizer anyway: {message}"
            );
            ctx.event(
                &reference,
                EventType::Warning,
                Reason::CleanupAbandoned,
                &note,
            )
            .await;
            Ok(Action::await_change())
        }
    }
}

/// Clears the scrolls and restores the settings an interrupted copy recorded. The error says
/// whether retrying may help.
async fn leftovers(
    obj: &RemoteReindex,
    ctx: &Context,
    status: &RemoteReindexStatus,
) -> Result<(), (String, bool)> {
    let ns = obj.namespace().unwrap_or_default();
    // The policy holds for cleanup too: nothing connects to a host it refuses.
    let decision = ctx
        .policies
        .evaluate(&ctx.client, &ns, &obj.spec, ctx.dest_default.as_ref())
        .await
        .map_err(|r| (r.to_string(), false))?;
    let secrets =
        KubeSecrets::new(ctx.client.clone(), &ns).requiring_label(decision.secret_label.clone());
    let settings = ctx.settings(&ns, &decision);
    let conn = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        workflow::connect(&obj.spec, &secrets, &settings),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err((e.to_string(), e.is_retryable_preflight())),
        Err(_) => return Err(("timed out connecting to the clusters".into(), true)),
    };
    if let Some(task) = &status.task
        && let Err(e) = conn.dest.cancel_task(task).await
    {
        return Err((
            format!("could not cancel the destination's reindex task {task}: {e}"),
            e.is_transient(),
        ));
    }
    if let Err(e) = conn.source.clear_scroll(&status.open_scrolls).await {
        tracing::warn!(error = %e, "could not clear the scrolls of an interrupted copy (they expire by themselves)");
    }
    if let Some(originals) = &status.original_settings {
        let index = &obj.spec.dest.index;
        let exists = conn
            .dest
            .index_exists(index)
            .await
            .map_err(|e| (e.to_string(), e.is_transient()))?;
        if exists {
            restore_destination(&conn.dest, index, originals)
                .await
                .map_err(|e| (e.to_string(), true))?;
        }
    }
    Ok(())
}

/// Whether the object has been in deletion for longer than `d`.
fn deleting_for(obj: &RemoteReindex, d: Duration) -> bool {
    obj.metadata
        .deletion_timestamp
        .as_ref()
        .is_some_and(|t| Timestamp::now().as_second() - t.0.as_second() > d.as_secs() as i64)
}
