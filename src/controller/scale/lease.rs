//! One slice's Lease: what the planner wrote into it, and the holder's side (claim, renew with
//! a checkpoint, release). Every write is a `replace` carrying the `resourceVersion` last read
//! or written, so two replicas can never both believe a write of theirs won (optimistic
//! concurrency); a holder acts only within the budget of its last renewal (the same
//! [`Leadership`] budget as leader election), and every claim counts a `leaseTransition`.

use super::names;
use crate::api::{PagingMode, SliceStatus};
use crate::controller::leader::Leadership;
use crate::copy::SliceCheckpoint;
use crate::search::PitApi;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a slice is, as its Lease says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceLeaseState {
    /// Planned, never claimed.
    Pending,
    /// Claimed (held, or its holder died and it waits for a successor).
    Running,
    /// Every document of the slice is in the destination.
    Done,
    /// The slice failed in its holder; the copy fails.
    Failed,
    /// The holder found the point in time gone. Only the planner replaces it (a new
    /// generation for every slice, finished ones included); nobody claims the slice until then.
    PitLost,
}

impl SliceLeaseState {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            SliceLeaseState::Pending => "pending",
            SliceLeaseState::Running => "running",
            SliceLeaseState::Done => "done",
            SliceLeaseState::Failed => "failed",
            SliceLeaseState::PitLost => "pit-lost",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "running" => SliceLeaseState::Running,
            "done" => SliceLeaseState::Done,
            "failed" => SliceLeaseState::Failed,
            "pit-lost" => SliceLeaseState::PitLost,
            _ => SliceLeaseState::Pending,
        }
    }

    /// Done, failed or waiting for the planner's new point in time: nobody claims it.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            SliceLeaseState::Done | SliceLeaseState::Failed | SliceLeaseState::PitLost
        )
    }
}

/// A slice Lease, read.
#[derive(Clone, Debug)]
pub struct SliceInfo {
    /// The Lease's namespace (the copy's).
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// The copy's UID.
    pub uid: String,
    /// The `RemoteReindex`'s name.
    pub resource: String,
    /// The slice number.
    pub slice: u32,
    /// The copy's slice count.
    pub slices: u32,
    /// How the copy reads the source: [`PagingMode::Pit`] or [`PagingMode::Scroll`] (a
    /// missing or unknown annotation reads as scroll).
    pub paging: PagingMode,
    /// The point-in-time API and id the planner opened (PIT paging).
    pub pit: Option<(PitApi, String)>,
    /// The generation of that point in time (0: the first one).
    pub pit_generation: u64,
    /// Whether the destination was empty when the copy first started.
    pub dest_was_empty: bool,
    /// The slice's state.
    pub state: SliceLeaseState,
    /// The last checkpoint written.
    pub checkpoint: SliceCheckpoint,
    /// Why it failed.
    pub error: Option<String>,
    /// The current holder.
    pub holder: Option<String>,
    /// Everyone who held it, in order.
    pub holders: Vec<String>,
    /// The Lease as read.
    pub lease: Lease,
}

/// The annotations' checkpoint back into the engine's form.
pub fn checkpoint_from(json: Option<&String>, slice: u32) -> SliceCheckpoint {
    json.and_then(|j| serde_json::from_str::<SliceStatus>(j).ok())
        .map(|s| {
            crate::copy::checkpoints_from(std::slice::from_ref(&s))
                .pop()
                .unwrap_or_default()
        })
        .map(|mut c| {
            c.id = slice;
            c
        })
        .unwrap_or(SliceCheckpoint {
            id: slice,
            ..Default::default()
        })
}

/// The engine's checkpoint as the annotation's JSON.
pub fn checkpoint_json(c: &SliceCheckpoint) -> String {
    let s = crate::copy::slices_status(std::slice::from_ref(c));
    serde_json::to_string(&s[0]).unwrap_or_default()
}

impl SliceInfo {
    /// Reads a slice Lease; `None` when it is not one.
    pub fn parse(lease: Lease) -> Option<SliceInfo> {
        let labels = lease.metadata.labels.as_ref()?;
        let a = lease.metadata.annotations.as_ref()?;
        let uid = labels.get(names::COPY_UID)?.clone();
        let slice: u32 = a.get(names::SLICE)?.parse().ok()?;
        let slices: u32 = a.get(names::SLICES)?.parse().ok()?;
        let pit = match (
            a.get(names::PIT_API).map(String::as_str),
            a.get(names::PIT_ID),
        ) {
            (Some("opensearch"), Some(id)) => Some((PitApi::OpenSearch, id.clone())),
            (Some(_), Some(id)) => Some((PitApi::Elasticsearch, id.clone())),
            _ => None,
        };
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty());
        Some(SliceInfo {
            namespace: lease.metadata.namespace.clone().unwrap_or_default(),
            name: lease.metadata.name.clone()?,
            uid,
            resource: a.get(names::RESOURCE)?.clone(),
            slice,
            slices,
            paging: a
                .get(names::PAGING)
                .and_then(|p| PagingMode::parse(p))
                .unwrap_or(PagingMode::Scroll),
            pit,
            pit_generation: a
                .get(names::PIT_GENERATION)
                .and_then(|g| g.parse().ok())
                .unwrap_or(0),
            dest_was_empty: a.get(names::DEST_WAS_EMPTY).is_some_and(|v| v == "true"),
            state: SliceLeaseState::parse(a.get(names::STATE).map_or("", String::as_str)),
            checkpoint: checkpoint_from(a.get(names::CHECKPOINT), slice),
            error: a.get(names::ERROR).cloned(),
            holder,
            holders: a
                .get(names::HOLDERS)
                .map(|h| {
                    h.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            lease,
        })
    }
}

/// What a Lease call can end in.
#[derive(Debug, thiserror::Error)]
pub enum LeaseCallError {
    /// Somebody else wrote the Lease first (HTTP 409) or deleted it (404): it is not ours.
    #[error("the Lease changed hands or is gone")]
    Lost,
    /// The API server failed or did not answer in time; the budget decides.
    #[error("{0}")]
    Failed(String),
}

fn classify(e: kube::Error) -> LeaseCallError {
    match e {
        kube::Error::Api(s) if s.code == 409 || s.code == 404 => LeaseCallError::Lost,
        e => LeaseCallError::Failed(e.to_string()),
    }
}

/// A slice Lease this process holds (or tries to).
pub struct SliceHold {
    api: Api<Lease>,
    /// The Lease's name.
    pub name: String,
    identity: String,
    duration: Duration,
    /// The Lease as last written by us (its `resourceVersion` fences the next write).
    lease: tokio::sync::Mutex<Lease>,
    /// Until when this process may write for the slice.
    pub budget: Arc<Leadership>,
    /// Lease writes sent (for the coordination overhead).
    pub writes: Arc<std::sync::atomic::AtomicU64>,
}

impl SliceHold {
    /// A holder-to-be of `lease` as `identity`.
    pub fn new(
        api: Api<Lease>,
        lease: Lease,
        identity: &str,
        duration: Duration,
        writes: Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        SliceHold {
            api,
            name: lease.metadata.name.clone().unwrap_or_default(),
            identity: identity.to_string(),
            duration,
            lease: tokio::sync::Mutex::new(lease),
            budget: Arc::new(Leadership::elected(identity)),
            writes,
        }
    }

    /// How long the holder may write after sending a renewal that succeeds: four fifths of the
    /// lease duration (as leader election).
    pub fn budget_span(&self) -> Duration {
        self.duration - self.duration / 5
    }

    /// How often the Lease is renewed.
    pub fn renew_every(&self) -> Duration {
        self.duration / 5
    }

    fn call_timeout(&self) -> Duration {
        (self.duration / 2).min(Duration::from_secs(10))
    }

    /// The gate the engine passes before every bulk request.
    pub fn gate(&self) -> Arc<dyn Fn() -> Result<(), String> + Send + Sync> {
        let budget = self.budget.clone();
        let name = self.name.clone();
        Arc::new(move || {
            budget
                .check()
                .map_err(|_| format!("the slice Lease {name} is no longer held by this process"))
        })
    }

    /// One conditional write of `edit`ed Lease; on success the budget starts from when it was
    /// sent (`renew`), or is revoked (`release`).
    async fn write(
        &self,
        edit: impl FnOnce(&mut Lease),
        renew: bool,
    ) -> Result<(), LeaseCallError> {
        let mut current = self.lease.lock().await;
        let mut next = current.clone();
        edit(&mut next);
        let sent = Instant::now();
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = tokio::time::timeout(
            self.call_timeout(),
            self.api.replace(&self.name, &PostParams::default(), &next),
        )
        .await
        .map_err(|_| LeaseCallError::Failed("the API server did not answer in time".into()))?
        .map_err(classify)?;
        *current = r;
        if renew {
            self.budget.renewed(sent, self.budget_span());
        }
        Ok(())
    }

    /// Claims the slice: holder, times, one more transition, `running`, and this identity
    /// appended to the holders' history. `Lost` when another replica wrote it first.
    pub async fn claim(&self) -> Result<(), LeaseCallError> {
        let (me, secs) = (self.identity.clone(), self.seconds());
        self.write(
            |l| {
                let now = MicroTime(Timestamp::now());
                let spec = l.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(me.clone());
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_duration_seconds = Some(secs);
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                let a = l.metadata.annotations.get_or_insert_with(BTreeMap::new);
                a.insert(
                    names::STATE.into(),
                    SliceLeaseState::Running.as_str().into(),
                );
                let mut holders = a.get(names::HOLDERS).cloned().unwrap_or_default();
                if holders.len() < 2000 {
                    if !holders.is_empty() {
                        holders.push(',');
                    }
                    holders.push_str(&me);
                }
                a.insert(names::HOLDERS.into(), holders);
            },
            true,
        )
        .await
    }

    /// Renews the Lease, with `checkpoint` when one is due.
    pub async fn renew(&self, checkpoint: Option<&SliceCheckpoint>) -> Result<(), LeaseCallError> {
        let (me, secs) = (self.identity.clone(), self.seconds());
        let cp = checkpoint.map(checkpoint_json);
        self.write(
            |l| {
                let spec = l.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(me);
                spec.renew_time = Some(MicroTime(Timestamp::now()));
                spec.lease_duration_seconds = Some(secs);
                if let Some(cp) = cp {
                    l.metadata
                        .annotations
                        .get_or_insert_with(BTreeMap::new)
                        .insert(names::CHECKPOINT.into(), cp);
                }
            },
            true,
        )
        .await
    }

    /// Gives the slice up with its last checkpoint, in `state` (`Running`: for a successor;
    /// `Done`; `Failed` with `error`). The budget ends first: nothing is written after.
    pub async fn release(
        &self,
        checkpoint: &SliceCheckpoint,
        state: SliceLeaseState,
        error: Option<String>,
    ) -> Result<(), LeaseCallError> {
        self.budget.revoke();
        let cp = checkpoint_json(checkpoint);
        self.write(
            |l| {
                let spec = l.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = None;
                spec.renew_time = Some(MicroTime(Timestamp::now()));
                let a = l.metadata.annotations.get_or_insert_with(BTreeMap::new);
                a.insert(names::CHECKPOINT.into(), cp);
                a.insert(names::STATE.into(), state.as_str().into());
                if let Some(e) = error {
                    a.insert(
                        names::ERROR.into(),
                        crate::controller::context::truncate(&e, 1000),
                    );
                }
            },
            false,
        )
        .await
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::SliceState;

    #[test]
    fn a_checkpoint_survives_its_annotation() {
        let c = SliceCheckpoint {
            id: 3,
            state: SliceState::Running,
            read: 40,
            written: 40,
            pit_id: Some("pit".into()),
            search_after: Some("[39]".into()),
            resumable: true,
            total: Some(100),
            ..Default::default()
        };
        let back = checkpoint_from(Some(&checkpoint_json(&c)), 3);
        assert_eq!(back, c);
        assert_eq!(checkpoint_from(None, 7).id, 7);
        assert_eq!(
            checkpoint_from(Some(&"not json".to_string()), 2).state,
            SliceState::Pending
        );
    }
}
