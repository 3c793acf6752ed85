//! Leader election on a `coordination.k8s.io/v1` Lease, so that several replicas can run and
//! only one drives copies. Expiry is judged like client-go does: by how long the Lease record
//! has stayed unchanged as observed locally, never by comparing clocks across machines.
//!
//! A leader may act only within its [`Leadership`] budget: the lease duration minus a margin,
//! counted from when its last successful renewal was *sent* (a standby starts counting no
//! earlier than that). Every Lease call has a timeout, so a hung API connection cannot keep a
//! leader believing in itself; a process that was paused (SIGSTOP, a VM freeze) past its budget
//! finds it spent when it runs again and writes nothing more.
//!
//! The same budget fences every request the leader sends to a search cluster ([`Leadership`]
//! is the clients' [`Fence`]): checked right before each request leaves, a read is sent only
//! while the budget lasts, and a write (bulk, delete, alias move, settings, index creation or
//! deletion) only when the budget left exceeds the write's timeout, which is half the budget
//! (6 s with the default 15 s Lease) and bounds the whole exchange. A write can therefore not
//! land after the budget ended, when a standby may have started; a write that does not fit waits
//! for the next renewal, and once the budget is spent nothing is sent at all.

use crate::search::{Admit, Fence};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Until when this process may act as the leader. Without leader election it always may.
#[derive(Debug)]
pub struct Leadership {
    /// `None`: no election (always allowed); else the instant the budget ends.
    until: Mutex<Option<Instant>>,
    /// The length of the budget a renewal grants (zero before the first).
    budget: Mutex<Duration>,
    /// The candidate's identity, with leader election.
    identity: Option<String>,
}

impl Leadership {
    /// No leader election: every write is allowed.
    pub fn unelected() -> Self {
        Leadership {
            until: Mutex::new(None),
            budget: Mutex::new(Duration::ZERO),
            identity: None,
        }
    }

    /// Leader election as `identity`: nothing is allowed until the Lease is held.
    pub fn elected(identity: &str) -> Self {
        Leadership {
            until: Mutex::new(Some(Instant::now())),
            budget: Mutex::new(Duration::ZERO),
            identity: Some(identity.to_string()),
        }
    }

    /// The candidate's identity (with leader election): status writes name it as their field
    /// manager, so `managedFields` shows which replica wrote last.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// `Err` with the reason when this process must not act as the leader now.
    pub fn check(&self) -> Result<(), String> {
        if self.identity.is_none() {
            return Ok(());
        }
        let until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        match *until {
            Some(t) if Instant::now() < t => Ok(()),
            _ => Err("this replica's leader election budget is spent (its Lease was not renewed in time, or another replica holds it)".into()),
        }
    }

    /// When the budget ends (`None` without election).
    pub fn until(&self) -> Option<Instant> {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A renewal sent at `sent` succeeded: act until `sent + budget`.
    pub(crate) fn renewed(&self, sent: Instant, budget: Duration) {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        *until = Some(sent + budget);
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = budget;
    }

    /// The timeout of a write to a search cluster under leader election: half the budget.
    /// With renewals every quarter of the budget, a healthy leader always has more left.
    pub fn write_timeout(&self) -> Duration {
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) / 2
    }

    /// Leadership is lost: act no more.
    pub fn revoke(&self) {
        if self.identity.is_some() {
            *self.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
    }
}

impl Fence for Leadership {
    fn admit(&self, write: bool) -> Admit {
        if self.identity.is_none() {
            return Admit::Send(None);
        }
        let Some(until) = self.until() else {
            return Admit::Send(None);
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Admit::Refuse(
                "this replica's leader election budget is spent (its Lease was not renewed in time, or another replica holds it); another replica may be acting on the clusters"
                    .into(),
            );
        }
        if !write {
            return Admit::Send(None);
        }
        let timeout = self.write_timeout();
        if !timeout.is_zero() && left > timeout {
            Admit::Send(Some(timeout))
        } else {
            // Too close to the budget's end for a write: wait for the next renewal (or for the
            // budget to run out, then it is refused).
            Admit::Wait(left.min(Duration::from_millis(100)))
        }
    }
}

/// Why a Lease call failed.
#[derive(Debug, thiserror::Error)]
enum LeaseError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("the API server did not answer within {0:?}")]
    TimedOut(Duration),
}

/// One candidate for one Lease.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    observed: ExpiryWatch,
    leadership: Arc<Leadership>,
}

/// Judges whether Leases expired the way client-go does: by how long each one's record (holder
/// and `renewTime`) has stayed unchanged as observed by this process, never by comparing its
/// clock with the holder's. Shared by leader election and scale-out's slice and worker Leases.
#[derive(Debug, Default)]
pub struct ExpiryWatch {
    observed: Mutex<std::collections::HashMap<String, (String, Instant)>>,
}

impl ExpiryWatch {
    /// Whether Lease `name`'s record has stayed unchanged for its lease duration (`default`
    /// when it names none) since this process first saw it. A Lease seen for the first time,
    /// or changed since, is not expired (its clock starts now).
    pub fn expired(&self, name: &str, spec: &LeaseSpec, default: Duration) -> bool {
        let record = format!(
            "{:?}/{:?}",
            spec.holder_identity,
            spec.renew_time.as_ref().map(|t| t.0)
        );
        let duration = spec
            .lease_duration_seconds
            .map_or(default, |s| Duration::from_secs(s.max(1) as u64));
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        match observed.get(name) {
            Some((r, at)) if *r == record => at.elapsed() > duration,
            _ => {
                observed.insert(name.to_string(), (record, Instant::now()));
                false
            }
        }
    }

    /// Forgets Leases not in `names` (deleted ones), so the map does not grow.
    pub fn retain(&self, names: &std::collections::HashSet<String>) {
        self.observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| names.contains(k));
    }
}

impl LeaderElection {
    /// A candidate `identity` for Lease `namespace/name`, held for `duration` between renewals.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
        leadership: Arc<Leadership>,
    ) -> Self {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration: duration.max(Duration::from_secs(2)),
            observed: ExpiryWatch::default(),
            leadership,
        }
    }

    /// How long a leader may act after sending a renewal that succeeds: the lease duration
    /// minus a fifth of it. A standby takes over no earlier than a lease duration after it
    /// first saw the renewed record, which is after the renewal was sent; the margin covers
    /// clock rate differences and scheduling delays. A write that passed the check just before
    /// the budget ended and arrives late is refused by its `resourceVersion` once the new
    /// leader has written.
    fn budget(&self) -> Duration {
        self.duration - self.duration / 5
    }

    /// How often the Lease is renewed: four attempts fit in a budget.
    fn renew_every(&self) -> Duration {
        self.duration / 5
    }

    /// The timeout of one Lease request: half the lease duration, at most 10 s. The budget's
    /// end is watched while a request is in flight, so a slow answer that still comes in time
    /// counts, and a hung one cannot extend the budget.
    fn call_timeout(&self) -> Duration {
        (self.duration / 2).min(Duration::from_secs(10))
    }

    async fn call<T>(
        &self,
        f: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LeaseError> {
        let t = self.call_timeout();
        tokio::time::timeout(t, f)
            .await
            .map_err(|_| LeaseError::TimedOut(t))?
            .map_err(LeaseError::Kube)
    }

    /// One attempt: on success the budget starts from when it was sent.
    async fn attempt(&self) -> Result<bool, LeaseError> {
        let sent = Instant::now();
        let held = self.try_acquire_or_renew().await?;
        if held {
            self.leadership.renewed(sent, self.budget());
        }
        Ok(held)
    }

    /// Waits until this candidate holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.attempt().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.name, "leader election: could not read or update the Lease")
                }
            }
            tokio::time::sleep(self.duration / 5).await;
        }
    }

    /// Renews the Lease until `stop`; cancels the returned token when leadership is lost
    /// (another holder, or the budget of the last successful renewal spent), revoking the
    /// [`Leadership`] first.
    pub fn keep_renewing(self: Arc<Self>, stop: CancellationToken) -> CancellationToken {
        let lost = CancellationToken::new();
        let lost2 = lost.clone();
        tokio::spawn(async move {
            let why = self.renew_until_lost(&stop).await;
            if let Some(why) = why {
                self.leadership.revoke();
                tracing::error!(lease = %self.name, "leader election: {why}; this replica stops writing");
                lost2.cancel();
            }
        });
        lost
    }

    /// Renews every fifth of the lease duration; returns why leadership was lost (`None` on
    /// `stop`). The budget's end is watched while sleeping and while a renewal is in flight.
    async fn renew_until_lost(&self, stop: &CancellationToken) -> Option<&'static str> {
        let spent = "could not renew the Lease in time";
        loop {
            // Without a budget (no election) there is nothing to renew.
            let until = self.leadership.until()?;
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep_until(until.into()) => return Some(spent),
                _ = tokio::time::sleep(self.renew_every()) => {}
            }
            // Checked after waking too: a paused process wakes with every timer due at once.
            if self.leadership.check().is_err() {
                return Some(spent);
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep_until(until.into()) => return Some(spent),
                r = self.attempt() => match r {
                    Ok(true) => {}
                    Ok(false) => return Some("another replica holds the Lease now"),
                    Err(e) => tracing::warn!(error = %e, "leader election: renewing the Lease failed"),
                },
            }
            if self.leadership.check().is_err() {
                return Some(spent);
            }
        }
    }

    /// Gives the Lease up (on a graceful shutdown) so that a standby takes over at once.
    pub async fn release(&self) {
        self.leadership.revoke();
        let Ok(Some(mut lease)) = self.call(self.api.get_opt(&self.name)).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(e) = self
            .call(self.api.replace(&self.name, &PostParams::default(), &lease))
            .await
        {
            tracing::warn!(error = %e, "leader election: could not release the Lease");
        }
    }

    /// Takes the Lease if it is free, expired or already ours (renewing it); `false` when
    /// another live holder has it or a concurrent update won.
    async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let now = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.call(self.api.get_opt(&self.name)).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self
                .call(self.api.create(&PostParams::default(), &lease))
                .await
            {
                Ok(_) => Ok(true),
                Err(LeaseError::Kube(kube::Error::Api(s))) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine && holder.is_some() && !self.expired(spec) {
            return Ok(false);
        }
        if !mine {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        match self
            .call(self.api.replace(&self.name, &PostParams::default(), &lease))
            .await
        {
            Ok(_) => Ok(true),
            Err(LeaseError::Kube(kube::Error::Api(s))) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the holder's record has stayed unchanged for its lease duration, as seen here.
    fn expired(&self, spec: &LeaseSpec) -> bool {
        self.observed.expired(&self.name, spec, self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leadership_is_a_budget_from_the_renewal_sent() {
        assert!(Leadership::unelected().check().is_ok());
        let l = Leadership::elected("me");
        assert_eq!(l.identity(), Some("me"));
        assert!(l.check().is_err(), "not before the Lease is held");
        let sent = Instant::now();
        l.renewed(sent, Duration::from_secs(60));
        assert!(l.check().is_ok());
        assert_eq!(l.until(), Some(sent + Duration::from_secs(60)));
        // A renewal sent longer ago than the budget grants nothing now.
        l.renewed(sent, Duration::ZERO);
        assert!(l.check().is_err());
        l.renewed(sent, Duration::from_secs(60));
        l.revoke();
        assert!(l.check().is_err());
    }

    #[test]
    fn the_fence_sends_a_write_only_when_it_fits_in_the_budget_left() {
        let free = Leadership::unelected();
        assert_eq!(free.admit(true), Admit::Send(None));
        let l = Leadership::elected("me");
        assert!(
            matches!(l.admit(false), Admit::Refuse(_)),
            "not before the Lease is held"
        );
        assert!(matches!(l.admit(true), Admit::Refuse(_)));
        l.renewed(Instant::now(), Duration::from_secs(60));
        assert_eq!(l.write_timeout(), Duration::from_secs(30));
        assert_eq!(l.admit(false), Admit::Send(None));
        assert_eq!(l.admit(true), Admit::Send(Some(Duration::from_secs(30))));
        // Renewed 40 s ago: 20 s left, less than a write's 30 s timeout. Reads still go.
        l.renewed(
            Instant::now() - Duration::from_secs(40),
            Duration::from_secs(60),
        );
        assert_eq!(l.admit(false), Admit::Send(None));
        assert!(matches!(l.admit(true), Admit::Wait(_)));
        // Spent: nothing at all.
        l.renewed(
            Instant::now() - Duration::from_secs(61),
            Duration::from_secs(60),
        );
        assert!(matches!(l.admit(false), Admit::Refuse(_)));
        assert!(matches!(l.admit(true), Admit::Refuse(_)));
    }
}
