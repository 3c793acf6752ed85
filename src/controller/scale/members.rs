//! Worker announcement: every replica keeps a Lease of its own, renewed like a slice Lease, so
//! that the others can count the live workers and share the slices fairly. Liveness is judged
//! like every Lease here: by how long a record has stayed unchanged as seen locally.

use super::names;
use crate::controller::leader::ExpiryWatch;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The slices a worker claims at most: `ceil(unfinished / live workers)`, capped by
/// `--max-slices-per-pod`, and at least one while anything is unfinished.
pub fn fair_share(unfinished: usize, live: usize, cap: Option<u32>) -> usize {
    if unfinished == 0 {
        return 0;
    }
    let share = unfinished.div_ceil(live.max(1)).max(1);
    cap.map_or(share, |c| share.min(c as usize))
}

/// This replica's announcement and its view of the others.
pub struct Members {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    watch: ExpiryWatch,
    /// Lease requests sent (writes, lists), for the coordination overhead.
    pub writes: Arc<AtomicU64>,
    /// Lists sent.
    pub reads: Arc<AtomicU64>,
}

impl Members {
    /// The announcement of `identity` in `namespace`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        identity: &str,
        duration: Duration,
        writes: Arc<AtomicU64>,
        reads: Arc<AtomicU64>,
    ) -> Self {
        Members {
            api: Api::namespaced(client, namespace),
            name: names::worker_lease(identity),
            identity: identity.to_string(),
            duration,
            watch: ExpiryWatch::default(),
            writes,
            reads,
        }
    }

    /// Creates or renews this worker's Lease.
    pub async fn announce(&self) -> Result<(), kube::Error> {
        let now = MicroTime(Timestamp::now());
        let secs = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        self.writes.fetch_add(1, Ordering::Relaxed);
        match self.api.get_opt(&self.name).await? {
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(self.identity.clone());
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(secs);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await?;
            }
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        labels: Some(BTreeMap::from([
                            (names::ROLE.to_string(), "worker".to_string()),
                            (names::MANAGED_BY.to_string(), "remote-reindex".to_string()),
                        ])),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_duration_seconds: Some(secs),
                        ..Default::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await?;
            }
        }
        Ok(())
    }

    /// The identities of the live workers, this one included.
    pub async fn live(&self) -> Result<HashSet<String>, kube::Error> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let list = self
            .api
            .list(&ListParams::default().labels(&names::worker_selector()))
            .await?;
        let mut live = HashSet::from([self.identity.clone()]);
        let mut seen = HashSet::new();
        for l in list.items {
            let (Some(name), Some(spec)) = (l.metadata.name.clone(), l.spec.as_ref()) else {
                continue;
            };
            seen.insert(name.clone());
            if let Some(h) = spec.holder_identity.clone().filter(|h| !h.is_empty())
                && !self.watch.expired(&name, spec, self.duration)
            {
                live.insert(h);
            }
        }
        self.watch.retain(&seen);
        Ok(live)
    }

    /// Deletes this worker's Lease (graceful shutdown): the others stop counting it at once.
    pub async fn leave(&self) {
        if let Err(e) = self.api.delete(&self.name, &DeleteParams::default()).await {
            tracing::warn!(error = %e, lease = %self.name, "scale-out: could not delete this worker's Lease; it expires");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fair_share;

    #[test]
    fn the_share_spreads_the_unfinished_slices_over_the_live_workers() {
        assert_eq!(fair_share(12, 3, None), 4);
        assert_eq!(fair_share(10, 4, None), 3);
        assert_eq!(fair_share(1, 4, None), 1);
        assert_eq!(fair_share(0, 4, None), 0);
        assert_eq!(fair_share(12, 0, None), 12);
        assert_eq!(fair_share(12, 3, Some(2)), 2);
    }
}
