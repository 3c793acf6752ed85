//! The leader's side of scale-out: plan a copy's slices as Leases, aggregate their checkpoints
//! into the copy's counters (which the status sink writes as `status.slices[]` and progress),
//! and delete the Leases once the slices are over or the copy is deleted. The leader never
//! copies a document here; its own worker claims slices like any other replica's.

use super::lease::{SliceInfo, SliceLeaseState, checkpoint_json};
use super::{Scale, names};
use crate::copy::{CopyError, CopyPlan, CopyStats, Paging, SliceCheckpoint, Stop};
use crate::search::PitApi;
use crate::workflow::SliceRunner;
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
            Paging::Pit(pit) => Some(pit.current().await),
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
            if let (Some((generation, id)), Some(a)) =
                (&pit_id, lease.metadata.annotations.as_mut())
            {
                a.insert(names::PIT_ID.into(), id.clone());
                a.insert(names::PIT_GENERATION.into(), generation.to_string());
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
                        if let Err(e) = self.follow_generation(plan, &slices, &stats).await {
                            self.delete_all().await;
                            return Err(e);
                        }
                        let generation = match &plan.paging {
                            Paging::Pit(pit) => pit.current().await.0,
                            Paging::Scroll => 0,
                        };
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
                        // Done under the point in time every slice reads now.
                        let done = slices
                            .iter()
                            .filter(|s| {
                                s.state == SliceLeaseState::Done && s.pit_generation == generation
                            })
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

impl Planner {
    /// Every slice of a copy reads ONE point in time (Elasticsearch slices a PIT by Lucene doc
    /// id, ranges that mean the same documents only within it). When a holder found it gone (a
    /// Lease in `pit-lost` of the current generation), the planner, and only the planner,
    /// opens a new one; every Lease of an older generation, finished ones included, is then
    /// replanned under it: `pending`, an empty checkpoint (its restarts counted), the new PIT
    /// id and generation. Holder and renew time are kept: a holder still copying fails its next
    /// renewal (the Lease changed) and stops, and a successor claims the slice only once that
    /// holder's Lease expired, as for any takeover. A replace refused (409: a holder renewed
    /// meanwhile) is tried again at the next poll.
    async fn follow_generation(
        &self,
        plan: &CopyPlan,
        slices: &[SliceInfo],
        stats: &CopyStats,
    ) -> Result<(), CopyError> {
        let Paging::Pit(pit) = &plan.paging else {
            return Ok(());
        };
        // Leases planned by an earlier leader name the point in time the slices read.
        if let Some(newest) = slices.iter().max_by_key(|s| s.pit_generation)
            && let Some((_, lease_id)) = &newest.pit
            && (newest.pit_generation > pit.current().await.0
                || (newest.pit_generation == pit.current().await.0
                    && slices
                        .iter()
                        .all(|s| s.pit.as_ref().map(|p| &p.1) == Some(lease_id))))
        {
            pit.adopt_at(newest.pit_generation, lease_id.clone()).await;
        }
        let (mut generation, mut id) = pit.current().await;
        if let Some(lost) = slices
            .iter()
            .find(|s| s.state == SliceLeaseState::PitLost && s.pit_generation == generation)
        {
            let why = lost.error.clone().unwrap_or_default();
            if stats.snapshot().pit_restarts >= crate::copy::MAX_PIT_LOSSES {
                return Err(CopyError::PitLost {
                    generation,
                    reason: format!(
                        "{why} (lost {} times already: giving up)",
                        crate::copy::MAX_PIT_LOSSES
                    ),
                });
            }
            (generation, id) = pit
                .renew(generation)
                .await
                .map_err(|source| CopyError::Search {
                    during: "opening a new point in time",
                    source,
                })?;
            stats.add_pit_restart();
            let msg = format!(
                "scale-out: slice {} found the point in time gone ({why}); every slice, finished ones included, starts again under generation {generation} and the expected count is taken again",
                lost.slice
            );
            tracing::warn!(uid = %self.uid, "{msg}");
            stats.note(msg);
        }
        for s in slices.iter().filter(|s| s.pit_generation < generation) {
            let mut lease = s.lease.clone();
            let a = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
            a.insert(
                names::STATE.into(),
                SliceLeaseState::Pending.as_str().into(),
            );
            a.insert(names::PIT_ID.into(), id.clone());
            a.insert(names::PIT_GENERATION.into(), generation.to_string());
            a.remove(names::ERROR);
            let fresh = SliceCheckpoint {
                id: s.slice,
                restarts: s.checkpoint.restarts + 1,
                rewritten: s.checkpoint.rewritten,
                ..Default::default()
            };
            a.insert(names::CHECKPOINT.into(), checkpoint_json(&fresh));
            self.scale.writes.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self
                .api()
                .replace(&s.name, &PostParams::default(), &lease)
                .await
            {
                tracing::info!(error = %e, lease = %s.name, "scale-out: could not move the slice to the new point in time yet; next poll");
            }
        }
        Ok(())
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
