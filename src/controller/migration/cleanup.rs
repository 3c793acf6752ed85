//! Deleting a Migration: delete its children and wait until they are gone. Each child's own
//! finalizer stops its copy and restores its destination's settings; the Migration's finalizer
//! goes only after the last child did (the API server may have no garbage collector).

use super::super::context::Context;
use super::super::error::ReconcileError;
use crate::api::{Migration, RemoteReindex};
use crate::migration::child::{MIGRATION_LABEL, label_value};
use kube::api::{DeleteParams, ListParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;

/// Deletes the children; `StillStopping` until none is left.
pub async fn cleanup(obj: Arc<Migration>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<RemoteReindex> = Api::namespaced(ctx.client.clone(), &ns);
    let children = owned_children(&api, &obj).await?;
    if children.is_empty() {
        return Ok(Action::await_change());
    }
    for c in children
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
    {
        match api.delete(&c.name_any(), &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(name = %obj.name_any(), children = children.len(), "Migration deleted: waiting for its children to restore their destinations");
    Err(ReconcileError::StillStopping)
}

/// The children of `mig`: labelled with it and owned by its UID.
pub async fn owned_children(
    api: &Api<RemoteReindex>,
    mig: &Migration,
) -> Result<Vec<RemoteReindex>, kube::Error> {
    let uid = mig.meta().uid.clone().unwrap_or_default();
    let lp = ListParams::default().labels(&format!(
        "{MIGRATION_LABEL}={}",
        label_value(&mig.name_any())
    ));
    Ok(api
        .list(&lp)
        .await?
        .items
        .into_iter()
        .filter(|c| c.owner_references().iter().any(|o| o.uid == uid))
        .collect())
}
