//! Reconcile one `RemoteReindex`: add the finalizer, then advance one step and return. Safe to
//! re-run: a terminal phase for the current generation is left alone; a running copy gets what
//! applies in place (the rate, the cutover settings) and a `SpecApplied` condition and Event name
//! any other edit, which runs only after it; otherwise one copy [`task`] is started.

use super::cleanup::{FINALIZER, cleanup};
use super::registry::{Entry, changes_not_applied};
use super::status::SPEC_APPLIED;
use super::task;
use crate::api::Reason;
use crate::api::{Change, Phase, RemoteReindex, RemoteReindexStatusPatch};
use crate::controller::context::Context;
use crate::controller::error::ReconcileError;
use crate::controller::status_patch::fenced_patch_status;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// The error type the controller sees.
pub type Error = kube::runtime::finalizer::Error<ReconcileError>;

/// Reconciles one `RemoteReindex` (in a span naming it; counted and timed in the metrics).
pub async fn reconcile(obj: Arc<RemoteReindex>, ctx: Arc<Context>) -> Result<Action, Error> {
    let work = reconcile_inner(obj.clone(), ctx.clone());
    ctx.reconcile_traced("RemoteReindex", obj.as_ref(), work)
        .await
}

async fn reconcile_inner(obj: Arc<RemoteReindex>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj
        .namespace()
        .ok_or(Error::ApplyFailed(ReconcileError::MissingField(
            "metadata.namespace",
        )))?;
    let api: Api<RemoteReindex> = Api::namespaced(ctx.client.clone(), &ns);
    let status_api = api.clone();
    finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            Event::Apply(obj) => apply(&status_api, obj, ctx).await,
            Event::Cleanup(obj) => cleanup(obj, ctx).await,
        }
    })
    .await
}

/// Retries failed reconciles: soon while a copy is stopping, later otherwise.
pub fn error_policy(obj: Arc<RemoteReindex>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_errors.inc();
    let still_stopping = matches!(err, Error::CleanupFailed(ReconcileError::StillStopping));
    if !still_stopping {
        tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %err, "reconcile failed; retrying");
    }
    Action::requeue(if still_stopping {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    })
}

async fn apply(
    api: &Api<RemoteReindex>,
    obj: Arc<RemoteReindex>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let uid = obj
        .uid()
        .ok_or(ReconcileError::MissingField("metadata.uid"))?;
    let generation = obj.metadata.generation.unwrap_or(0);
    let phase = obj.status.as_ref().and_then(|s| s.phase);
    let suspend = obj.spec.suspend == Some(true);
    if let Some(entry) = ctx.registry.get(&uid) {
        if entry.is_running() && suspend {
            entry.stop.request(crate::copy::StopMode::Suspend);
            return Ok(Action::requeue(Duration::from_secs(2)));
        }
        if entry.is_running() {
            running_copy_edited(&obj, &entry, &ctx, generation).await;
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
        if entry.generation() == generation {
            // Finished this generation. The watch may lag behind the terminal patch; if that patch
            // failed, write it again.
            if !phase.is_some_and(Phase::is_terminal)
                && let Some(patch) = entry.final_patch()
            {
                fenced_patch_status(
                    &ctx.leadership,
                    api,
                    &obj.name_any(),
                    &patch,
                    obj.resource_version().as_deref(),
                )
                .await?;
            }
            return Ok(Action::await_change());
        }
        ctx.registry.remove(&uid);
    }
    let observed = obj.status.as_ref().and_then(|s| s.observed_generation);
    if phase.is_some_and(Phase::is_terminal) && observed == Some(generation) {
        return Ok(Action::await_change());
    }
    if let Some(target) = obj.status.as_ref().and_then(|s| s.target.as_ref()) {
        let changed = target.changes(&obj.spec);
        if !changed.is_empty() {
            // The API server enforces this with the CRD's CEL rules; a CRD applied without them
            // (or edited) does not, so the operator checks again.
            let msg = format!(
                "immutable field(s) changed after the copy started: {}; create a new RemoteReindex instead",
                changed.join(", ")
            );
            if phase != Some(Phase::Failed) || observed != Some(generation) {
                set_phase(
                    api,
                    &ctx.leadership,
                    &obj,
                    Phase::Failed,
                    Reason::InvalidSpec,
                    &msg,
                )
                .await?;
                ctx.event(
                    &obj.object_ref(&()),
                    EventType::Warning,
                    Reason::InvalidSpec,
                    &msg,
                )
                .await;
            }
            return Ok(Action::await_change());
        }
    }
    if suspend {
        // Nothing runs while suspended; a finished copy stays as it is.
        if phase != Some(Phase::Suspended) && !phase.is_some_and(Phase::is_terminal) {
            let msg = "suspended (spec.suspend: true); set suspend to false to start";
            set_phase(
                api,
                &ctx.leadership,
                &obj,
                Phase::Suspended,
                Reason::Suspended,
                msg,
            )
            .await?;
        }
        return Ok(Action::await_change());
    }
    tracing::info!(name = %obj.name_any(), namespace = ?obj.namespace(), generation, "starting a copy");
    task::spawn(ctx, &obj, &uid);
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// A running copy's resource changed: the rate and the cutover settings (trigger, aliases,
/// verify, writeBlockSource) apply in place; anything else is named at once in the
/// `SpecApplied` condition and a `ChangeNotApplied` Event, and runs only after this copy ends.
async fn running_copy_edited(obj: &RemoteReindex, entry: &Entry, ctx: &Context, generation: i64) {
    let not_applied = changes_not_applied(&entry.spec, &obj.spec);
    // Warnings are recorded once per edit (generation).
    let first = entry.first_warning_for(generation);
    let rate = obj.spec.requests_per_second.filter(|r| *r > 0.0);
    if let Some((max, by)) = entry.rate_ceiling()
        && rate.is_none_or(|r| r > max)
    {
        if first {
            let note = format!(
                "spec.requestsPerSecond: {} exceeds the maximum of {max} documents/s (refused by {by}); the copy keeps its current rate",
                rate.map_or("unlimited".to_string(), |r| r.to_string())
            );
            ctx.event(
                &obj.object_ref(&()),
                EventType::Warning,
                Reason::RateLimitExceeded,
                &note,
            )
            .await;
        }
        // Not applied, but what is copied is unchanged: this copy finishes as the new
        // generation (no second copy afterwards to refuse again).
    } else if entry.throttle.rate() != rate {
        entry.throttle.set_rate(rate);
        let note = rate.map_or("rate limit removed".to_string(), |r| {
            format!("rate limit set to {r} documents/s")
        });
        ctx.event(
            &obj.object_ref(&()),
            EventType::Normal,
            Reason::Rethrottled,
            &note,
        )
        .await;
    }
    // The cutover settings are read when the trigger starts the cutover.
    let next = obj.spec.cutover.clone();
    let was = entry.cutover.send_replace(next.clone());
    let triggered = |c: &Option<crate::api::Cutover>| c.as_ref().is_some_and(|c| c.triggered());
    if triggered(&next) && !triggered(&was) {
        let aliases = next
            .as_ref()
            .map(|c| c.aliases.join(", "))
            .unwrap_or_default();
        let note = if aliases.is_empty() {
            "spec.cutover.trigger is true: final round, verification, then the cutover (no aliases to move)".to_string()
        } else {
            format!(
                "spec.cutover.trigger is true: final round, verification, then the aliases move ({aliases})"
            )
        };
        ctx.event(
            &obj.object_ref(&()),
            EventType::Normal,
            Reason::CutoverRequested,
            &note,
        )
        .await;
    }
    let writer = entry.writer();
    if not_applied.is_empty() {
        entry.adopt_generation(generation);
        if let Some(w) = writer
            && w.has_condition(SPEC_APPLIED, false)
        {
            let msg = format!("the running copy applies the spec of generation {generation}");
            if let Err(e) = w.note(SPEC_APPLIED, true, Reason::Applied, &msg).await {
                tracing::warn!(name = %obj.name_any(), error = %e, "could not record the SpecApplied condition");
            }
        }
    } else if first {
        let live = if entry.spec.catch_up.is_some() {
            "; a live copy keeps catching up with its current settings (set spec.cutover.trigger to finish it)"
        } else {
            ""
        };
        let msg = format!(
            "not applied to the running copy: {} (a running copy applies only spec.requestsPerSecond and spec.cutover: trigger, aliases, verify, writeBlockSource); it goes on with the settings it started with, and the edited spec runs only after this copy ends{live}",
            not_applied.join(", ")
        );
        tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), generation, fields = %not_applied.join(", "), "spec edit not applied to the running copy");
        if let Some(w) = writer
            && let Err(e) = w
                .note(SPEC_APPLIED, false, Reason::ChangeNotApplied, &msg)
                .await
        {
            tracing::warn!(name = %obj.name_any(), error = %e, "could not record the SpecApplied condition");
        }
        ctx.event(
            &obj.object_ref(&()),
            EventType::Warning,
            Reason::ChangeNotApplied,
            &msg,
        )
        .await;
    }
}

/// Records `phase` for the current generation without a copy task (refusals, suspension): the
/// three conditions follow it, keeping their `lastTransitionTime` where the status is unchanged.
async fn set_phase(
    api: &Api<RemoteReindex>,
    leadership: &crate::controller::leader::Leadership,
    obj: &RemoteReindex,
    phase: Phase,
    reason: Reason,
    message: &str,
) -> Result<(), ReconcileError> {
    let generation = obj.metadata.generation.unwrap_or(0);
    let mut conditions = obj
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    super::status::apply_phase(&mut conditions, phase, reason, message, Some(generation));
    let patch = RemoteReindexStatusPatch {
        phase: Change::Set(phase),
        observed_generation: Change::Set(generation),
        conditions: Change::Set(conditions),
        ..Default::default()
    };
    fenced_patch_status(
        leadership,
        api,
        &obj.name_any(),
        &patch,
        obj.resource_version().as_deref(),
    )
    .await?;
    Ok(())
}
