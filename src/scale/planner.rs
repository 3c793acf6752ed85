//! The leader's side of scale-out: plan a copy's slices as Leases, aggregate their checkpoints
//! into the copy's counters (which the status sink writes as `status.slices[]` and progress),
//! and delete the Leases once the slices are over or the copy is deleted. The leader never
//! copies a document here; its own worker claims slices like any other replica's.

use super::lease::{SliceInfo, SliceLeaseState, checkpoint_json};
use super::{Scale, names};
use crate::copy::{CopyError, CopyPlan, CopyStats, Paging, SliceCheckpoint, Stop};
use crate::search::PitApi;
use crate::workflow::slices::SliceRunner;
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Plans and follows one copy's slices.
pub struct Planner {
    pub(super) scale: Arc<Scale>,
    pub(super) namespace: String,
    pub(super) uid: String,
    pub(super) resource: String,
}

impl SliceRunner for Planner {
    fn run<'a>(
        &'a self,
        plan: &'a CopyPlan,
        stats: Arc<CopyStats>,
        stop: Arc<Stop>,
    ) -> BoxFuture<'a, Result<(), CopyError>> {
        Box::pin(self.follow(plan, stats, stop))
    }
}

impl Planner {
    fn api(&self) -> Api<Lease> {
        Api::namespaced(self.scale.client.clone(), &self.namespace)
    }

    /// The Lease of `slice`, unheld, starting from `checkpoint`.
    fn lease(&self, plan: &CopyPlan, slice: u32, checkpoint: &SliceCheckpoint) -> Lease {
        let state = match checkpoint.state {
            crate::copy::SliceState::Done => SliceLeaseState::Done,
            crate::copy::SliceState::Pending => SliceLeaseState::Pending,
            crate::copy::SliceState::Running => SliceLeaseState::Running,
        };
        let mut a = BTreeMap::from([
            (names::RESOURCE.to_string(), self.resource.clone()),
            (names::SLICE.to_string(), slice.to_string()),
            (names::SLICES.to_string(), plan.slices.to_string()),
            (names::PAGING.to_string(), plan.paging.name().to_string()),
            (
                names::DEST_WAS_EMPTY.to_string(),
                plan.dest_was_empty.to_string(),
            ),
            (names::STATE.to_string(), state.as_str().to_string()),
            (names::CHECKPOINT.to_string(), checkpoint_json(checkpoint)),
        ]);
        if let Paging::Pit(pit) = &plan.paging {
            let api = match pit.api() {
                PitApi::Elasticsearch => "elasticsearch",
                PitApi::OpenSearch => "opensearch",
            };
            a.insert(names::PIT_API.into(), api.into());
            // Filled in by `follow` (the id is behind an async lock).
        }
        Lease {
            metadata: ObjectMeta {
                name: Some(names::slice_lease(&self.uid, slice)),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (names::ROLE.to_string(), "slice".to_string()),
                    (names::COPY_UID.to_string(), self.uid.clone()),
                    (names::MANAGED_BY.to_string(), "remote-reindex".to_string()),
                ])),
                annotations: Some(a),
                // Garbage collection removes them too where it runs; the operator does not
                // rely on it.
                owner_references: Some(vec![OwnerReference {
                    api_version: "reindex.dev/v1alpha1".into(),
                    kind: "RemoteReindex".into(),
                    name: self.resource.clone(),
                    uid: self.uid.clone(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                lease_duration_seconds: Some(
                    i32::try_from(self.scale.args.slice_lease_duration).unwrap_or(i32::MAX),
                ),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        }
    }

    /// This copy's slice Leases.
    async fn list(&self) -> Result<Vec<SliceInfo>, kube::Error> {
        self.scale.reads.fetch_add(1, Ordering::Relaxed);
        let list = self
            .api()
            .list(&ListParams::default().labels(&names::slice_selector(Some(&self.uid))))
            .await?;
        Ok(list
            .items
            .into_iter()
            .filter_map(SliceInfo::parse)
            .collect())
    }

    /// Creates the Leases that do not exist yet; Leases of another slicing (a new generation
    /// with other slices) are replaced. Existing ones are kept: their holders continue.
    async fn ensure(&self, plan: &CopyPlan) -> Result<(), kube::Error> {
        let existing = self.list().await?;
        if existing.iter().any(|s| s.slices != plan.slices) {
            tracing::info!(uid = %self.uid, "scale-out: replacing slice Leases of another slicing");
            self.delete_all().await;
        }
        let existing = self.list().await?;
        let pit_id = match &plan.paging {
            Paging::Pit(pit) => Some(pit.current().await.1),
            Paging::Scroll => None,
        };
        for slice in 0..plan.slices {
            if existing.iter().any(|s| s.slice == slice) {
                continue;
            }
            let checkpoint = plan
                .resume
                .get(slice as usize)
                .filter(|_| plan.resume.len() == plan.slices as usize)
                .cloned()
                .unwrap_or(SliceCheckpoint {
                    id: slice,
                    ..Default::default()
                });
            let mut lease = self.lease(plan, slice, &checkpoint);
            if let (Some(id), Some(a)) = (&pit_id, lease.metadata.annotations.as_mut()) {
                a.insert(names::PIT_ID.into(), id.clone());
            }
            self.scale.writes.fetch_add(1, Ordering::Relaxed);
            match self.api().create(&PostParams::default(), &lease).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Deletes this copy's slice Leases (best effort; a holder's next renewal then fails and
    /// it stops writing).
    pub async fn delete_all(&self) {
        delete_slice_leases(&self.scale, &self.namespace, &self.uid).await;
    }

    /// Plans the slices, then aggregates their checkpoints until every one is done.
    async fn follow(
        &self,
        plan: &CopyPlan,
        stats: Arc<CopyStats>,
        stop: Arc<Stop>,
    ) -> Result<(), CopyError> {
        let n = plan.slices as usize;
        stats.load_checkpoints(n, &plan.resume);
        let poll = self.scale.poll_interval();
        let mut planned = false;
        loop {
            if !planned {
                match self.ensure(plan).await {
                    Ok(()) => {
                        planned = true;
                        tracing::info!(uid = %self.uid, slices = n, "scale-out: slices planned as Leases");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "scale-out: could not create the slice Leases; retrying")
                    }
                }
            }
            if planned {
                match self.list().await {
                    Ok(slices) => {
                        let cps: Vec<SliceCheckpoint> =
                            slices.iter().map(|s| s.checkpoint.clone()).collect();
                        stats.load_checkpoints(n, &cps);
                        if let Some(f) = slices.iter().find(|s| s.state == SliceLeaseState::Failed)
                        {
                            let msg = format!(
                                "slice {} failed in {}: {}",
                                f.slice,
                                f.holders.last().map_or("a worker", String::as_str),
                                f.error.as_deref().unwrap_or("no reason recorded")
                            );
                            self.delete_all().await;
                            return Err(CopyError::Slice(msg));
                        }
                        let done = slices
                            .iter()
                            .filter(|s| s.state == SliceLeaseState::Done)
                            .count();
                        if done == n && slices.len() == n {
                            tracing::info!(uid = %self.uid, "scale-out: every slice is done");
                            self.delete_all().await;
                            return Ok(());
                        }
                        if slices.len() < n {
                            // A Lease deleted by hand: plan it again from the last checkpoint.
                            planned = false;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "scale-out: could not list the slice Leases")
                    }
                }
            }
            tokio::select! {
                _ = stop.requested() => {
                    // A leader change keeps the Leases: the workers go on and the next leader
                    // follows them. Deletion or suspension ends them.
                    if !stop.mode().keeps_scrolls() {
                        self.delete_all().await;
                    }
                    return Err(CopyError::Cancelled);
                }
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Deletes the slice Leases of the copy with UID `uid` in `namespace` (finished or deleted
/// copies: the tests' API server, like some clusters, runs no garbage collector).
pub async fn delete_slice_leases(scale: &Scale, namespace: &str, uid: &str) {
    let api: Api<Lease> = Api::namespaced(scale.client.clone(), namespace);
    scale.reads.fetch_add(1, Ordering::Relaxed);
    let list = match api
        .list(&ListParams::default().labels(&names::slice_selector(Some(uid))))
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "scale-out: could not list slice Leases to delete them");
            return;
        }
    };
    for l in list.items {
        let Some(name) = l.metadata.name else {
            continue;
        };
        scale.writes.fetch_add(1, Ordering::Relaxed);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::warn!(error = %e, lease = %name, "scale-out: could not delete a slice Lease")
            }
        }
    }
}
