//! The start of a Migration: resolve its patterns against the source, run the pre-flight
//! checks, copy the templates before any data, and record the plan in `.status`.

use super::super::context::Context;
use super::super::error::ReconcileError;
use super::super::reindex::status::now;
use super::super::secrets::KubeSecrets;
use super::advance::conditions;
use super::patch_status;
use crate::api::Reason;
use crate::api::{
    Change, IndexFailure, IndexState, MetadataItem, Migration, MigrationPhase,
    MigrationProgressPatch, MigrationStatusPatch, PlannedIndex, ScrollContexts,
};
use crate::migration::aggregate::{FAILED_LISTED, aggregate};
use crate::migration::metadata;
use crate::migration::plan::{build, connect_migration};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::time::Duration;

/// Plans the Migration and copies its templates; fails it when nothing can be copied.
pub async fn start(
    api: &Api<Migration>,
    obj: &Migration,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let name = obj.name_any();
    let ns = obj.namespace().unwrap_or_default();
    let generation = obj.metadata.generation;
    let reference = obj.object_ref(&());
    let mut conds = obj
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    if obj.status.as_ref().and_then(|s| s.phase).is_none() {
        conditions(
            &mut conds,
            MigrationPhase::Pending,
            Reason::Planning,
            "resolving indices and checking both clusters",
            generation,
        );
        let pending = MigrationStatusPatch {
            phase: Change::Set(MigrationPhase::Pending),
            conditions: Change::Set(conds.clone()),
            observed_generation: generation.into(),
            started_at: Change::Set(now()),
            ..Default::default()
        };
        patch_status(ctx, api, &name, &pending).await?;
        ctx.event(
            &reference,
            EventType::Normal,
            Reason::Pending,
            "resolving indices and checking both clusters",
        )
        .await;
    }
    let secrets = KubeSecrets::new(ctx.client.clone(), &ns);
    let fail = |reason: Reason, message: String| {
        let mut conds = conds.clone();
        conditions(
            &mut conds,
            MigrationPhase::Failed,
            reason,
            &message,
            generation,
        );
        MigrationStatusPatch {
            phase: Change::Set(MigrationPhase::Failed),
            conditions: Change::Set(conds),
            observed_generation: generation.into(),
            completed_at: Change::Set(now()),
            ..Default::default()
        }
    };
    let refused = |refusal: crate::policy::Refusal| {
        let msg = format!(
            "{} (field {}; refused by {})",
            refusal.message, refusal.field, refusal.by
        );
        (refusal.reason, msg)
    };
    let settings = match super::allowed_settings(ctx, &ns, &obj.spec, &[], &[]).await {
        Ok(s) => s,
        Err(refusal) => {
            let (reason, msg) = refused(refusal);
            patch_status(ctx, api, &name, &fail(reason, msg.clone())).await?;
            ctx.event(&reference, EventType::Warning, reason, &msg)
                .await;
            return Ok(Action::await_change());
        }
    };
    let conn = match connect_migration(&obj.spec, &secrets, &settings).await {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            patch_status(ctx, api, &name, &fail(e.reason(), msg.clone())).await?;
            ctx.event(&reference, EventType::Warning, e.reason(), &msg)
                .await;
            return Ok(Action::await_change());
        }
    };
    let plan = match build(&conn, &obj.spec, &name).await {
        Ok(p) => p,
        Err(e) if e.is_transient() => {
            return Err(ReconcileError::Transient(format!("planning: {e}")));
        }
        Err(e) => {
            let reason = crate::workflow::search_reason(&e);
            patch_status(ctx, api, &name, &fail(reason, e.to_string())).await?;
            ctx.event(&reference, EventType::Warning, reason, &e.to_string())
                .await;
            return Ok(Action::await_change());
        }
    };
    let skipped: Vec<IndexFailure> = plan
        .not_copied
        .iter()
        .map(|(index, reason, message)| IndexFailure {
            index: index.clone(),
            reason: reason.to_string(),
            message: message.clone(),
        })
        .collect();
    for (_, reason, message) in plan.not_copied.iter().take(20) {
        ctx.event(&reference, EventType::Warning, *reason, message)
            .await;
    }
    if plan.indices.is_empty() {
        let (reason, msg) = match plan.not_copied.first() {
            Some((_, first, message)) if plan.not_copied.iter().all(|x| x.1 == *first) => {
                (*first, format!("nothing to copy: {message}"))
            }
            _ => (
                Reason::NoIndices,
                format!("no open index matches {:?}", obj.spec.indices),
            ),
        };
        let mut st = fail(reason, msg.clone());
        st.skipped = Change::Set(skipped.iter().take(FAILED_LISTED).cloned().collect());
        patch_status(ctx, api, &name, &st).await?;
        ctx.event(&reference, EventType::Warning, reason, &msg)
            .await;
        return Ok(Action::await_change());
    }
    // Every name the Migration and its children will write on the destination, against the
    // policy, before anything is written: each child's index, the templates' patterns and
    // aliases, the aliases.
    let indices: Vec<String> = plan.indices.iter().map(|r| r.index.clone()).collect();
    let copies: &[metadata::TemplateCopy] = if obj.spec.copy_templates() {
        &plan.template_copies.copies
    } else {
        &[]
    };
    let alias_names: Vec<String> = plan.alias_copies.iter().map(|a| a.name.clone()).collect();
    let names = metadata::dest_names(copies, &alias_names);
    if let Err(refusal) = super::allowed_settings(ctx, &ns, &obj.spec, &indices, &names).await {
        let (reason, msg) = refused(refusal);
        patch_status(ctx, api, &name, &fail(reason, msg.clone())).await?;
        ctx.event(&reference, EventType::Warning, reason, &msg)
            .await;
        return Ok(Action::await_change());
    }
    let rejects: Vec<String> = plan
        .indices
        .iter()
        .flat_map(|r| r.flags.iter().map(move |f| format!("{}: {f}", r.index)))
        .collect();
    if !rejects.is_empty() {
        ctx.event(
            &reference,
            EventType::Warning,
            Reason::DestinationWillReject,
            &rejects.join("; "),
        )
        .await;
    }
    let templates = if obj.spec.copy_templates() {
        metadata::create_templates(&conn.dest, &plan.template_copies).await
    } else {
        Vec::new()
    };
    for t in templates.iter().filter(|t| t.state == "Failed") {
        let note = format!(
            "{} template {}: {}",
            t.kind,
            t.name,
            t.message.as_deref().unwrap_or_default()
        );
        ctx.event(
            &reference,
            EventType::Warning,
            Reason::TemplateFailed,
            &note,
        )
        .await;
    }
    let aliases: Vec<MetadataItem> = plan
        .alias_copies
        .iter()
        .map(|a| MetadataItem {
            kind: "alias".into(),
            name: a.name.clone(),
            state: "Waiting".into(),
            message: None,
            indices: a.indices.keys().cloned().collect(),
        })
        .collect();
    let entries: Vec<PlannedIndex> = plan
        .indices
        .iter()
        .map(|r| PlannedIndex {
            index: r.index.clone(),
            dest_index: r.dest.clone(),
            child: r.child.clone(),
            docs: r.docs as i64,
            bytes: r.bytes as i64,
            shards: i64::from(r.shards),
            state: IndexState::Pending,
        })
        .collect();
    let agg = aggregate(&entries, &Default::default(), &[]);
    let message = format!(
        "{} indices ({} documents), {} templates, {} aliases; parallelism {}, scroll contexts at peak {} of {}",
        entries.len(),
        agg.progress.docs_expected,
        templates.len(),
        aliases.len(),
        plan.parallelism,
        plan.peak_contexts,
        plan.context_limit
    );
    conditions(
        &mut conds,
        MigrationPhase::Running,
        Reason::Running,
        &message,
        generation,
    );
    let contexts = ScrollContexts {
        peak: plan.peak_contexts as i64,
        limit: plan.context_limit as i64,
        parallelism: plan.parallelism as i64,
    };
    let status = MigrationStatusPatch {
        phase: Change::Set(MigrationPhase::Running),
        observed_generation: generation.into(),
        conditions: Change::Set(conds),
        progress: Change::Set(MigrationProgressPatch::from(&agg.progress)),
        plan: Change::Set(entries),
        indices: Change::Set(agg.counts),
        skipped: Change::Set(skipped.into_iter().take(FAILED_LISTED).collect()),
        scroll_contexts: Change::Set(contexts),
        templates: Change::Set(templates),
        aliases: Change::Set(aliases),
        ..Default::default()
    };
    patch_status(ctx, api, &name, &status).await?;
    ctx.event(&reference, EventType::Normal, Reason::Planned, &message)
        .await;
    Ok(Action::requeue(Duration::from_millis(200)))
}
