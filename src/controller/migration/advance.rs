//! One step of a running Migration: read the children, start pending indices up to the
//! parallelism, create the aliases whose indices have all verified, and aggregate the status.

use super::super::context::Context;
use super::super::error::ReconcileError;
use super::super::reindex::status::{DEGRADED, PROGRESSING, READY, now, set_condition};
use super::super::secrets::KubeSecrets;
use super::cleanup::owned_children;
use super::patch_status;
use crate::api::Reason;
use crate::api::{
    Change, FailurePolicy, IndexState, MetadataItem, Migration, MigrationPhase,
    MigrationProgressPatch, MigrationStatusPatch, Phase, RemoteReindex,
};
use crate::migration::aggregate::{ChildView, aggregate, failed_message};
use crate::migration::child::child_object;
use crate::migration::metadata::{self, AliasReadiness};
use crate::migration::plan::connect_migration;
use crate::migration::schedule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// The three conditions for a Migration phase.
pub fn conditions(
    conds: &mut Vec<Condition>,
    phase: MigrationPhase,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) {
    let (ready, progressing, degraded) = match phase {
        MigrationPhase::Pending | MigrationPhase::Running => (false, true, false),
        MigrationPhase::Succeeded => (true, false, false),
        MigrationPhase::Failed => (false, false, true),
    };
    set_condition(conds, READY, ready, reason, message, generation);
    set_condition(conds, PROGRESSING, progressing, reason, message, generation);
    if degraded {
        set_condition(conds, DEGRADED, true, reason, message, generation);
    } else if !conds
        .iter()
        .any(|c| c.type_ == DEGRADED && c.status == "True")
    {
        set_condition(
            conds,
            DEGRADED,
            false,
            Reason::AsExpected,
            "no errors",
            generation,
        );
    }
}

/// Publishes an Event about the Migration with the child of `index` as its related object, so
/// that each index keeps an Event of its own (Events of one reason are otherwise merged into a
/// series that shows only the latest note).
pub async fn index_event(
    ctx: &Context,
    obj: &Migration,
    child: &str,
    type_: EventType,
    reason: Reason,
    note: &str,
) {
    let related = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("reindex.dev/v1alpha1".into()),
        kind: Some("RemoteReindex".into()),
        name: Some(child.to_string()),
        namespace: obj.namespace(),
        ..Default::default()
    };
    let ev = kube::runtime::events::Event {
        type_,
        reason: reason.to_string(),
        note: Some(super::super::context::truncate(note, 1000)),
        action: "Reconcile".to_string(),
        secondary: Some(related),
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, %reason, "could not publish an Event");
    }
}

/// What the Migration needs from a child's status.
fn view(child: &RemoteReindex) -> ChildView {
    let s = child.status.clone().unwrap_or_default();
    let state = match s.phase {
        Some(Phase::Succeeded) => IndexState::Succeeded,
        Some(Phase::Failed) => IndexState::Failed,
        Some(Phase::Syncing) => IndexState::Syncing,
        _ => IndexState::Running,
    };
    let failure = (state == IndexState::Failed).then(|| {
        s.conditions
            .iter()
            .find(|c| c.type_ == DEGRADED)
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_else(|| ("Failed".into(), "the copy failed".into()))
    });
    let p = s.progress.unwrap_or_default();
    ChildView {
        state,
        written: p.written,
        rate: p.docs_per_second.and_then(|r| r.parse().ok()),
        failure,
    }
}

/// Sets `spec.cutover` (trigger included) on every unfinished child that does not have it yet:
/// each runs its final round and verification; the Migration moves the aliases afterwards.
async fn pass_cutover_trigger(
    children_api: &Api<RemoteReindex>,
    obj: &Migration,
    owned: &[RemoteReindex],
    cutover: &crate::api::MigrationCutover,
) -> Result<(), ReconcileError> {
    let want = cutover.child();
    for child in owned {
        let phase = child.status.as_ref().and_then(|s| s.phase);
        if matches!(phase, Some(Phase::Succeeded | Phase::Failed))
            || child.spec.cutover.as_ref() == Some(&want)
        {
            continue;
        }
        tracing::info!(migration = %obj.name_any(), child = %child.name_any(), "passing the cutover trigger to the child");
        children_api
            .patch(
                &child.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"cutover": want}})),
            )
            .await?;
    }
    Ok(())
}

/// Advances a running Migration by one step.
pub async fn advance(
    api: &Api<Migration>,
    obj: &Migration,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let name = obj.name_any();
    let ns = obj.namespace().unwrap_or_default();
    let generation = obj.metadata.generation;
    let reference = obj.object_ref(&());
    let status = obj.status.clone().unwrap_or_default();
    let children_api: Api<RemoteReindex> = Api::namespaced(ctx.client.clone(), &ns);
    let owned = owned_children(&children_api, obj).await?;
    let children: BTreeMap<String, ChildView> =
        owned.iter().map(|c| (c.name_any(), view(c))).collect();
    if let Some(c) = obj.spec.cutover.as_ref().filter(|c| c.triggered()) {
        pass_cutover_trigger(&children_api, obj, &owned, c).await?;
    }
    let mut agg = aggregate(&status.plan, &children, &status.failed);
    for t in &agg.transitions {
        match (t.to, &t.failure) {
            (IndexState::Succeeded, _) => {
                let note = format!("{}: copied and verified", t.index);
                ctx.event(&reference, EventType::Normal, Reason::IndexSucceeded, &note)
                    .await;
            }
            (IndexState::Failed, f) => {
                let (reason, msg) = f.clone().unwrap_or_default();
                let note = format!("{} failed [{reason}]: {msg}", t.index);
                ctx.event(&reference, EventType::Warning, Reason::IndexFailed, &note)
                    .await;
            }
            _ => {}
        }
    }

    // Start pending indices, larger first, up to the parallelism.
    let parallelism = status
        .scroll_contexts
        .as_ref()
        .map_or(obj.spec.parallelism(), |s| s.parallelism.max(1) as usize);
    let states: Vec<IndexState> = agg.plan.iter().map(|p| p.state).collect();
    let stop_on_failure = obj.spec.failure_policy == Some(FailurePolicy::Stop);
    let stopped = stop_on_failure && agg.counts.failed > 0;
    for i in schedule::to_start(&states, parallelism, stop_on_failure) {
        let e = agg.plan[i].clone();
        let child = child_object(obj, &e.index, &e.dest_index);
        match children_api.create(&PostParams::default(), &child).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(err) => return Err(err.into()),
        }
        agg.plan[i].state = IndexState::Running;
        agg.counts.pending -= 1;
        agg.counts.running += 1;
        let note = format!("{} → {} (RemoteReindex {})", e.index, e.dest_index, e.child);
        index_event(
            ctx,
            obj,
            &e.child,
            EventType::Normal,
            Reason::IndexStarted,
            &note,
        )
        .await;
    }

    // Aliases: created once every index they span has verified; never over a failed one.
    let state_of = |i: &str| {
        agg.plan
            .iter()
            .find(|p| p.index == i)
            .map_or(IndexState::Pending, |p| p.state)
    };
    let mut aliases = status.aliases.clone();
    let mut ready = Vec::new();
    for (n, a) in aliases.iter_mut().enumerate() {
        if a.state != "Waiting" {
            continue;
        }
        let copy = metadata::AliasCopy {
            name: a.name.clone(),
            indices: a.indices.iter().map(|i| (i.clone(), json!({}))).collect(),
        };
        match metadata::alias_readiness(&copy, state_of) {
            AliasReadiness::Ready => ready.push(n),
            AliasReadiness::Incomplete(failed) => {
                a.state = "AliasIncomplete".into();
                a.message = Some(format!("not created: {} did not verify", failed.join(", ")));
            }
            AliasReadiness::Waiting => {}
        }
    }
    for a in aliases.iter().filter(|a| a.state == "AliasIncomplete") {
        if !status
            .aliases
            .iter()
            .any(|o| o.name == a.name && o.state == a.state)
        {
            let note = format!(
                "alias {}: {}",
                a.name,
                a.message.as_deref().unwrap_or_default()
            );
            ctx.event(
                &reference,
                EventType::Warning,
                Reason::AliasIncomplete,
                &note,
            )
            .await;
        }
    }
    let done = agg.counts.pending == 0 && agg.counts.running == 0 && agg.counts.syncing == 0;
    let mut templates = status.templates.clone();
    if !ready.is_empty() || (done && templates.iter().any(|t| t.state == "Created")) {
        create_aliases(
            obj,
            ctx,
            &mut aliases,
            &ready,
            &mut templates,
            done,
            &agg.plan,
        )
        .await;
    }

    let failed_templates = templates.iter().filter(|t| t.state == "Failed").count();
    let bad_aliases = aliases.iter().filter(|a| a.state != "Created").count();
    let mut conds = status.conditions.clone();
    let failed_not_listed = (agg.failed_not_listed > 0).then_some(agg.failed_not_listed);
    let mut st = MigrationStatusPatch {
        observed_generation: generation.into(),
        // A running Migration's `eta` is replaced, or cleared when there is none yet.
        progress: Change::Set(
            MigrationProgressPatch::from(&agg.progress).with_eta(agg.progress.eta.clone()),
        ),
        failed: Change::Set(agg.failed.clone()),
        failed_not_listed: failed_not_listed.into(),
        plan: Change::Set(agg.plan.clone()),
        indices: Change::Set(agg.counts.clone()),
        aliases: Change::Set(aliases.clone()),
        templates: Change::Set(templates.clone()),
        ..Default::default()
    };
    let finished = done && !aliases.iter().any(|a| a.state == "Waiting");
    if finished || (stopped && agg.counts.running == 0) {
        let (phase, reason, message) = if agg.counts.failed > 0 {
            (
                MigrationPhase::Failed,
                Reason::IndicesFailed,
                failed_message(&agg.failed, agg.failed_not_listed),
            )
        } else if failed_templates + bad_aliases > 0 {
            (
                MigrationPhase::Failed,
                Reason::MetadataFailed,
                format!(
                    "{failed_templates} template(s) and {bad_aliases} alias(es) failed; see status.templates and status.aliases"
                ),
            )
        } else {
            (
                MigrationPhase::Succeeded,
                Reason::Migrated,
                format!(
                    "{} indices copied and verified, {} templates, {} aliases",
                    agg.counts.succeeded,
                    templates.len(),
                    aliases.len()
                ),
            )
        };
        conditions(&mut conds, phase, reason, &message, generation);
        st.phase = Change::Set(phase);
        st.completed_at = Change::Set(now());
        st.conditions = Change::Set(conds);
        st.progress = Change::Set(MigrationProgressPatch::from(&agg.progress).with_eta(None));
        patch_status(ctx, api, &name, &st).await?;
        let kind = if phase == MigrationPhase::Succeeded {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.event(&reference, kind, reason, &message).await;
        return Ok(Action::await_change());
    }
    if agg.counts.failed > 0 {
        let message = failed_message(&agg.failed, agg.failed_not_listed);
        set_condition(
            &mut conds,
            DEGRADED,
            true,
            Reason::IndicesFailed,
            &message,
            generation,
        );
    }
    st.conditions = Change::Set(conds);
    patch_status(ctx, api, &name, &st).await?;
    Ok(Action::requeue(Duration::from_secs(2)))
}

/// Creates the ready aliases (and, once every index finished, adds the templates' own aliases
/// back to them); records the outcome in the status items.
async fn create_aliases(
    obj: &Migration,
    ctx: &Context,
    aliases: &mut [MetadataItem],
    ready: &[usize],
    templates: &mut [MetadataItem],
    done: bool,
    plan: &[crate::api::PlannedIndex],
) {
    let ns = obj.namespace().unwrap_or_default();
    let reference = obj.object_ref(&());
    let secrets = KubeSecrets::new(ctx.client.clone(), &ns);
    // Every child and the aliases about to be created, against the policy as it is now.
    let names: Vec<String> = plan.iter().map(|p| p.index.clone()).collect();
    let ready_names: Vec<String> = ready.iter().map(|&n| aliases[n].name.clone()).collect();
    let settings = match super::allowed_settings(
        ctx,
        &ns,
        &obj.spec,
        &names,
        &metadata::dest_names(&[], &ready_names),
    )
    .await
    {
        Ok(s) => s,
        Err(refusal) => {
            let note = format!(
                "{} (field {}; refused by {})",
                refusal.message, refusal.field, refusal.by
            );
            tracing::warn!(reason = %refusal.reason, field = %refusal.field, "the policy refuses what the Migration would write; aliases wait");
            for &n in ready {
                if aliases[n].state != "Failed" {
                    aliases[n].state = "Failed".into();
                    aliases[n].message = Some(note.clone());
                }
            }
            if !ready.is_empty() {
                ctx.event(&reference, EventType::Warning, refusal.reason, &note)
                    .await;
            }
            return;
        }
    };
    let conn = match connect_migration(&obj.spec, &secrets, &settings).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot connect to create aliases; retrying");
            return;
        }
    };
    if !ready.is_empty() {
        let copies = match metadata::read_aliases(&conn.source, &names).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the source's aliases; retrying");
                return;
            }
        };
        for &n in ready {
            let a = &mut aliases[n];
            let Some(copy) = copies.iter().find(|c| c.name == a.name) else {
                a.state = "Failed".into();
                a.message = Some("the alias no longer exists on the source".into());
                continue;
            };
            match metadata::create_alias(&conn.dest, copy, |i| obj.spec.dest_name(i)).await {
                Ok(()) => {
                    a.state = "Created".into();
                    a.message = None;
                    let note = format!("alias {} created over {}", a.name, a.indices.join(", "));
                    ctx.event(&reference, EventType::Normal, Reason::AliasCreated, &note)
                        .await;
                }
                Err(e) => {
                    a.state = "Failed".into();
                    a.message = Some(e.to_string());
                    ctx.event(
                        &reference,
                        EventType::Warning,
                        Reason::AliasFailed,
                        &e.to_string(),
                    )
                    .await;
                }
            }
        }
    }
    if done && plan.iter().all(|p| p.state == IndexState::Succeeded) {
        let source = &conn.source;
        let read = async {
            let c = source
                .get_json_opt("_component_template")
                .await?
                .unwrap_or_default();
            let i = source
                .get_json_opt("_index_template")
                .await?
                .unwrap_or_default();
            let l = source.get_json_opt("_template").await?.unwrap_or_default();
            Ok::<_, crate::search::SearchError>(metadata::plan_templates(
                &c,
                &i,
                &l,
                &names,
                &conn.dest_info,
            ))
        };
        let Ok(tplan) = read.await else { return };
        for item in templates.iter_mut().filter(|t| t.state == "Created") {
            let Some(t) = tplan.copies.iter().find(|t| {
                t.name == item.name && t.kind.as_str() == item.kind && t.aliases.is_some()
            }) else {
                continue;
            };
            // The template is PUT again as the source has it now: its patterns and aliases
            // are checked again.
            let names = metadata::dest_names(std::slice::from_ref(t), &[]);
            if let Err(refusal) = super::allowed_settings(ctx, &ns, &obj.spec, &[], &names).await {
                let note = format!(
                    "{} (field {}; refused by {})",
                    refusal.message, refusal.field, refusal.by
                );
                item.state = "Failed".into();
                item.message = Some(format!("its aliases were not added: {note}"));
                ctx.event(&reference, EventType::Warning, refusal.reason, &note)
                    .await;
                continue;
            }
            if let Err(e) = metadata::put_template(&conn.dest, t, true).await {
                item.state = "Failed".into();
                item.message = Some(format!("could not add its aliases after the copy: {e}"));
            }
        }
    }
}
