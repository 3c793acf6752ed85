//! The Migration reconciler: a second controller that owns one `RemoteReindex` per index and
//! never copies a document itself (as a Deployment owns Pods).
//!
//! A new Migration is planned once ([`start`]: resolve the patterns, run the pre-flight checks,
//! copy the templates before any data); afterwards each reconcile ([`advance`]) reads its
//! children, starts pending ones up to the parallelism, creates aliases whose indices have all
//! verified and aggregates the status. Deletion deletes the children first; their own
//! finalizers restore the destinations' settings ([`cleanup`]).

mod advance;
mod cleanup;
mod start;

use super::context::Context;
use super::error::ReconcileError;
use crate::api::{Migration, MigrationPhase, MigrationStatusPatch, RemoteReindex};
use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// The finalizer that makes deletion remove the children (and so restore their destinations)
/// first: the API server may have no garbage collector.
pub const FINALIZER: &str = "reindex.dev/migration-cleanup";

/// The error type the controller sees.
pub type Error = kube::runtime::finalizer::Error<ReconcileError>;

/// Reconciles one `Migration` (in a span naming it; counted and timed in the metrics).
pub async fn reconcile(obj: Arc<Migration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let work = reconcile_inner(obj.clone(), ctx.clone());
    ctx.reconcile_traced("Migration", obj.as_ref(), work).await
}

async fn reconcile_inner(obj: Arc<Migration>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj
        .namespace()
        .ok_or(Error::ApplyFailed(ReconcileError::MissingField(
            "metadata.namespace",
        )))?;
    let api: Api<Migration> = Api::namespaced(ctx.client.clone(), &ns);
    let status_api = api.clone();
    finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            Event::Apply(obj) => apply(&status_api, obj, ctx).await,
            Event::Cleanup(obj) => cleanup::cleanup(obj, ctx).await,
        }
    })
    .await
}

/// Retries failed reconciles: soon while children are being deleted, later otherwise.
pub fn error_policy(obj: Arc<Migration>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_errors.inc();
    let stopping = matches!(err, Error::CleanupFailed(ReconcileError::StillStopping));
    if !stopping {
        tracing::warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %err, "Migration reconcile failed; retrying");
    }
    Action::requeue(Duration::from_secs(if stopping { 1 } else { 5 }))
}

async fn apply(
    api: &Api<Migration>,
    obj: Arc<Migration>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    // The watch may lag behind this controller's own last status patch; Events and child
    // creation are decided against what the API server holds now.
    let Some(obj) = api.get_opt(&obj.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let status = obj.status.clone().unwrap_or_default();
    if status.phase.is_some_and(MigrationPhase::is_terminal) {
        return Ok(Action::await_change());
    }
    if status.plan.is_empty() {
        start::start(api, &obj, &ctx).await
    } else {
        advance::advance(api, &obj, &ctx).await
    }
}

/// Merge-patches the Migration's status as the leader (see
/// [`super::status_patch::fenced_patch_status`]); the patch names the replica as field manager.
async fn patch_status(
    ctx: &Context,
    api: &Api<Migration>,
    name: &str,
    status: &MigrationStatusPatch,
) -> Result<(), ReconcileError> {
    super::status_patch::fenced_patch_status(&ctx.leadership, api, name, status, None).await?;
    Ok(())
}

/// Whether the API server serves `migrations.reindex.dev` (the CRD may not be installed: then
/// only `RemoteReindex` is reconciled).
async fn served(client: &Client) -> bool {
    match client
        .list_api_group_resources("reindex.dev/v1alpha1")
        .await
    {
        Ok(list) => list.resources.iter().any(|r| r.name == "migrations"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list reindex.dev/v1alpha1 resources");
            false
        }
    }
}

/// The Migration controllers (one per watched namespace, or one for all), as one future that
/// ends at `stop`; an immediately finished future when the Migration CRD is not installed.
pub async fn controllers(
    client: &Client,
    namespaces: &[String],
    stop: tokio_util::sync::CancellationToken,
    ctx: Arc<Context>,
) -> futures::future::BoxFuture<'static, ()> {
    if !served(client).await {
        tracing::info!(
            "the Migration CRD is not installed: reconciling RemoteReindex only (install crds/migration.yaml and restart to enable Migrations)"
        );
        return Box::pin(async {});
    }
    let pairs: Vec<(Api<Migration>, Api<RemoteReindex>)> = if namespaces.is_empty() {
        vec![(Api::all(client.clone()), Api::all(client.clone()))]
    } else {
        namespaces
            .iter()
            .map(|ns| {
                (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                )
            })
            .collect()
    };
    let runs: Vec<_> = pairs
        .into_iter()
        .map(|(migrations, children)| {
            let ctx = ctx.clone();
            Controller::new(migrations, watcher::Config::default().any_semantic())
                .owns(children, watcher::Config::default().any_semantic())
                .graceful_shutdown_on(stop.clone().cancelled_owned())
                .run(reconcile, error_policy, ctx)
                .for_each(|r| async move {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "Migration reconcile");
                    }
                })
        })
        .collect();
    tracing::info!("watching Migration resources");
    Box::pin(async move {
        futures::future::join_all(runs).await;
    })
}

/// Workflow settings for a Migration's own connections (planning, templates, aliases), once the
/// namespace's policy allowed them: the child of every index in `indices` (each with its own
/// destination index and overrides; before planning, when none is known yet, the child of the
/// first named index as a probe of the endpoints) and every other name in `names` the
/// Migration is about to write on the destination (its templates' patterns and aliases, the
/// aliases it creates). Each child is evaluated again, in full, when its copy starts.
async fn allowed_settings(
    ctx: &Context,
    ns: &str,
    spec: &crate::api::MigrationSpec,
    indices: &[String],
    names: &[crate::policy::DestName],
) -> Result<crate::workflow::Settings, crate::policy::Refusal> {
    use crate::migration::child::child_spec;
    let children: Vec<_> = if indices.is_empty() {
        let index = spec.indices.first().map_or("*", String::as_str);
        vec![child_spec(spec, index, &spec.dest_name(index))]
    } else {
        indices
            .iter()
            .map(|i| child_spec(spec, i, &spec.dest_name(i)))
            .collect()
    };
    let decision = ctx
        .policies
        .evaluate_all(&ctx.client, ns, &children, names, ctx.dest_default.as_ref())
        .await?;
    Ok(ctx.settings(ns, &decision))
}
