//! The worker every replica runs: announce itself, claim a fair share of the unfinished slices
//! of every copy, run the engine on exactly those slices, renew their Leases with a durable
//! checkpoint, and give them up when done, failed, rebalanced or shutting down.

use super::lease::{LeaseCallError, SliceHold, SliceInfo, SliceLeaseState};
use super::members::{Members, fair_share};
use super::{Scale, names};
use crate::api::{PagingMode, RemoteReindex};
use crate::controller::context::Context;
use crate::controller::leader::ExpiryWatch;
use crate::copy::pager::SharedPit;
use crate::copy::{
    CopyError, CopyStats, Paging, Share, SliceCheckpoint, SliceState, Stop, StopMode, Throttle,
    open_copy,
};
use crate::workflow::Prepared;
use crate::workflow::copy_plan;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use rand::seq::SliceRandom;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a worker's shutdown waits for its slices to drain and be released.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// A running worker.
pub struct WorkerHandle {
    stop: CancellationToken,
    join: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops claiming, drains the held slices (their last batches are written), releases their
    /// Leases with exact checkpoints for the other replicas, and withdraws the announcement.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(e) = self.join.await {
            tracing::warn!(error = %e, "scale-out: the worker ended abnormally");
        }
    }
}

/// A slice this process holds.
struct Held {
    stop: Arc<Stop>,
    done: CancellationToken,
}

struct Worker {
    scale: Arc<Scale>,
    ctx: Arc<Context>,
    members: Members,
    watch: ExpiryWatch,
    held: Mutex<HashMap<String, Held>>,
}

/// Starts this replica's worker (on every replica, leader or standby).
pub fn start_worker(
    scale: Arc<Scale>,
    ctx: Arc<Context>,
    parent: CancellationToken,
) -> WorkerHandle {
    let members = Members::new(
        scale.client.clone(),
        &scale.members_namespace,
        &scale.identity,
        scale.lease_duration(),
        scale.writes.clone(),
        scale.reads.clone(),
    );
    let w = Arc::new(Worker {
        scale,
        ctx,
        members,
        watch: ExpiryWatch::default(),
        held: Mutex::new(HashMap::new()),
    });
    let stop = parent.child_token();
    let join = tokio::spawn(w.run(stop.clone()));
    WorkerHandle { stop, join }
}

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

impl Worker {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(self: Arc<Self>, stop: CancellationToken) {
        tracing::info!(identity = %self.scale.identity, "scale-out: worker started");
        let tick = self.scale.poll_interval();
        loop {
            if let Err(e) = self.members.announce().await {
                tracing::warn!(error = %e, "scale-out: could not renew this worker's Lease");
            }
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, "scale-out: could not read the slice Leases");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(tick) => {}
            }
        }
        let held: Vec<Held> = self.held().drain().map(|(_, h)| h).collect();
        for h in &held {
            h.stop.request(StopMode::Interrupt);
        }
        let all = futures::future::join_all(held.iter().map(|h| h.done.cancelled()));
        if tokio::time::timeout(SHUTDOWN_WAIT, all).await.is_err() {
            tracing::warn!("scale-out: some slices did not stop in time; their Leases expire");
        }
        self.members.leave().await;
        tracing::info!(overhead = %self.scale.overhead(), "scale-out: worker stopped");
    }

    async fn list_slices(&self) -> Result<Vec<SliceInfo>, kube::Error> {
        let lp = ListParams::default().labels(&names::slice_selector(None));
        let apis: Vec<Api<Lease>> = if self.scale.namespaces.is_empty() {
            vec![Api::all(self.scale.client.clone())]
        } else {
            self.scale
                .namespaces
                .iter()
                .map(|ns| Api::namespaced(self.scale.client.clone(), ns))
                .collect()
        };
        let mut out = Vec::new();
        for api in apis {
            self.scale.reads.fetch_add(1, Ordering::Relaxed);
            out.extend(
                api.list(&lp)
                    .await?
                    .items
                    .into_iter()
                    .filter_map(SliceInfo::parse),
            );
        }
        Ok(out)
    }

    /// One round: count the live workers, rebalance when an idle worker waits, claim up to the
    /// fair share.
    async fn step(self: &Arc<Self>) -> Result<(), kube::Error> {
        let live = self.members.live().await?;
        let slices = self.list_slices().await?;
        self.held().retain(|_, h| !h.done.is_cancelled());
        let seen: HashSet<String> = slices.iter().map(|s| key(&s.namespace, &s.name)).collect();
        self.watch.retain(&seen);
        let unfinished = slices.iter().filter(|s| !s.state.is_over()).count();
        let share = fair_share(unfinished, live.len(), self.scale.args.max_slices_per_pod);
        let me = self.scale.identity.as_str();
        let holding: HashSet<&str> = slices
            .iter()
            .filter(|s| !s.state.is_over())
            .filter_map(|s| s.holder.as_deref())
            .collect();
        let idle = live
            .iter()
            .filter(|w| w.as_str() != me && !holding.contains(w.as_str()))
            .count();
        let mine = self.held().len();
        if mine > share && idle > 0 {
            // A replica joined (or others finished): give slices back for it to take, drained
            // so that it continues exactly where this one stopped.
            let give = (mine - share).min(idle * share.max(1));
            let held = self.held();
            for (k, h) in held.iter().take(give) {
                tracing::info!(lease = %k, share, "scale-out: releasing a slice for an idle worker");
                h.stop.request(StopMode::Interrupt);
            }
        }
        let duration = self.scale.lease_duration();
        let mut candidates: Vec<&SliceInfo> = slices
            .iter()
            .filter(|s| !s.state.is_over())
            .filter(|s| !self.held().contains_key(&key(&s.namespace, &s.name)))
            .filter(|s| match (&s.holder, s.lease.spec.as_ref()) {
                (None, _) => true,
                (Some(_), Some(spec)) => {
                    self.watch
                        .expired(&key(&s.namespace, &s.name), spec, duration)
                }
                (Some(_), None) => true,
            })
            .collect();
        candidates.shuffle(&mut rand::rng());
        let mut mine = self.held().len();
        for s in candidates {
            if mine >= share {
                break;
            }
            if self.claim(s).await {
                mine += 1;
            }
        }
        Ok(())
    }

    /// Claims `s` and starts copying it; false when another replica was first.
    async fn claim(self: &Arc<Self>, s: &SliceInfo) -> bool {
        let api: Api<Lease> = Api::namespaced(self.scale.client.clone(), &s.namespace);
        let hold = Arc::new(SliceHold::new(
            api,
            s.lease.clone(),
            &self.scale.identity,
            self.scale.lease_duration(),
            self.scale.writes.clone(),
        ));
        match hold.claim().await {
            Ok(()) => {}
            Err(LeaseCallError::Lost) => return false,
            Err(LeaseCallError::Failed(e)) => {
                tracing::warn!(error = %e, lease = %s.name, "scale-out: could not claim a slice");
                return false;
            }
        }
        let previous = s.holder.as_deref().unwrap_or("nobody");
        tracing::info!(
            identity = %self.scale.identity,
            resource = %s.resource,
            namespace = %s.namespace,
            slice = s.slice,
            previous,
            resumable = s.checkpoint.resumable,
            "scale-out: claimed slice"
        );
        let stop = Arc::new(Stop::new());
        let done = CancellationToken::new();
        self.held().insert(
            key(&s.namespace, &s.name),
            Held {
                stop: stop.clone(),
                done: done.clone(),
            },
        );
        // Every log line of the slice's copy names its resource and slice.
        let span = tracing::info_span!(
            "slice",
            namespace = %s.namespace,
            name = %s.resource,
            slice = s.slice
        );
        tokio::spawn(slice_task(self.clone(), s.clone(), hold, stop, done).instrument(span));
        true
    }
}

/// Copies one held slice and settles its Lease.
async fn slice_task(
    w: Arc<Worker>,
    info: SliceInfo,
    hold: Arc<SliceHold>,
    stop: Arc<Stop>,
    done: CancellationToken,
) {
    let _done = done.drop_guard();
    let k = info.slice;
    let labels = crate::controller::metrics::SliceLabels {
        namespace: info.namespace.clone(),
        name: info.resource.clone(),
        slice: k,
    };
    w.ctx.metrics.slices_held.get_or_create(&labels).set(1);
    let _held = Unheld(&w.ctx.metrics.slices_held, labels);
    let stats = Arc::new(CopyStats::new());
    let end = CancellationToken::new();
    let renewing = tokio::spawn(renew_loop(
        hold.clone(),
        stats.clone(),
        k,
        stop.clone(),
        end.clone(),
        w.scale.checkpoint_interval(),
    ));
    let result = copy_slice(&w, &info, &hold, &stats, &stop).await;
    end.cancel();
    let lost = renewing.await.unwrap_or(true);
    let started = stats.checkpoints().len() > k as usize;
    let last = |graceful: bool| -> SliceCheckpoint {
        if !started {
            return info.checkpoint.clone();
        }
        let exact = stats.checkpoints()[k as usize].clone();
        let mut c = if exact.state == SliceState::Done
            || (graceful && exact.resumable && exact.pit_id.is_some())
        {
            exact
        } else {
            stats.durable_checkpoint(k)
        };
        c.scroll_id = None;
        if c.pit_id.is_none() {
            c.resumable = false;
        }
        c
    };
    let (state, checkpoint, error) = match &result {
        _ if lost => {
            tracing::warn!(slice = k, resource = %info.resource, "scale-out: lost the slice Lease; this process writes nothing more for it");
            return;
        }
        Err(e) if matches!(e, CopyError::Fenced(_)) || hold.budget.check().is_err() => {
            tracing::warn!(slice = k, resource = %info.resource, why = %e, "scale-out: fenced; this process writes nothing more for the slice");
            return;
        }
        Ok(()) => (SliceLeaseState::Done, last(true), None),
        // The planner's point in time is gone: the planner opens the next generation and
        // starts every slice again under it; this worker never opens one of its own.
        Err(e @ CopyError::PitLost { .. }) => {
            (SliceLeaseState::PitLost, last(true), Some(e.to_string()))
        }
        Err(CopyError::Cancelled) => (SliceLeaseState::Running, last(true), None),
        Err(e) => (SliceLeaseState::Failed, last(false), Some(e.to_string())),
    };
    match hold.release(&checkpoint, state, error).await {
        Ok(()) => tracing::info!(
            slice = k,
            resource = %info.resource,
            state = state.as_str(),
            read = checkpoint.read,
            written = checkpoint.written,
            resumable = checkpoint.resumable,
            "scale-out: released slice"
        ),
        Err(e) => {
            tracing::warn!(slice = k, error = %e, "scale-out: could not release the slice Lease; it expires")
        }
    }
}

/// Removes a slice's `slices_held` series when the task ends, however it ends.
struct Unheld<'a>(
    &'a prometheus_client::metrics::family::Family<
        crate::controller::metrics::SliceLabels,
        prometheus_client::metrics::gauge::Gauge,
    >,
    crate::controller::metrics::SliceLabels,
);

impl Drop for Unheld<'_> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

/// Renews the slice Lease every fifth of its duration, with the durable checkpoint at most
/// every `interval`. Returns whether the Lease was lost (then the copy is stopped and the
/// budget revoked, so no bulk passes the gate any more).
async fn renew_loop(
    hold: Arc<SliceHold>,
    stats: Arc<CopyStats>,
    slice: u32,
    stop: Arc<Stop>,
    end: CancellationToken,
    interval: Duration,
) -> bool {
    let mut last = Instant::now();
    let lost = |why: &str| {
        hold.budget.revoke();
        tracing::warn!(lease = %hold.name, why, "scale-out: slice Lease lost");
        stop.request(StopMode::Interrupt);
        true
    };
    loop {
        let Some(until) = hold.budget.until() else {
            return false;
        };
        tokio::select! {
            _ = end.cancelled() => return false,
            _ = tokio::time::sleep_until(until.into()) => return lost("not renewed in time"),
            _ = tokio::time::sleep(hold.renew_every()) => {}
        }
        // Checked after waking too: a paused process wakes with every timer due at once.
        if hold.budget.check().is_err() {
            return lost("the budget of the last renewal is spent");
        }
        let due = last.elapsed() >= interval && stats.checkpoints().len() > slice as usize;
        let checkpoint = due.then(|| stats.durable_checkpoint(slice));
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => return lost("not renewed in time"),
            r = hold.renew(checkpoint.as_ref()) => match r {
                Ok(()) => {
                    if due {
                        last = Instant::now();
                    }
                }
                Err(LeaseCallError::Lost) => return lost("another replica holds it now, or it was deleted"),
                Err(LeaseCallError::Failed(e)) => {
                    tracing::warn!(lease = %hold.name, error = %e, "scale-out: renewing the slice Lease failed")
                }
            },
        }
    }
}

/// Runs the engine on slice `info.slice` of its copy, from the Lease's checkpoint.
async fn copy_slice(
    w: &Worker,
    info: &SliceInfo,
    hold: &SliceHold,
    stats: &Arc<CopyStats>,
    stop: &Arc<Stop>,
) -> Result<(), CopyError> {
    let ctx = &w.ctx;
    let ns = info.namespace.as_str();
    let api: Api<RemoteReindex> = Api::namespaced(ctx.client.clone(), ns);
    let obj = api.get(&info.resource).await.map_err(|e| {
        CopyError::Slice(format!(
            "cannot read RemoteReindex {ns}/{}: {e}",
            info.resource
        ))
    })?;
    if obj.uid().as_deref() != Some(info.uid.as_str()) {
        return Err(CopyError::Slice(format!(
            "RemoteReindex {ns}/{} was replaced",
            info.resource
        )));
    }
    let crate::controller::context::Admitted {
        secrets,
        mut settings,
        ..
    } = ctx
        .admit(ns, &obj.spec)
        .await
        .map_err(|r| CopyError::Slice(format!("refused ({}): {}", r.reason, r.message)))?;
    // Every replica's worker copies slices, the standbys too: fenced by the slice Lease (below),
    // not by leader election.
    settings.fence = None;
    let conn = crate::workflow::connect(&obj.spec, &secrets, &settings)
        .await
        .map_err(|e| CopyError::Slice(format!("connecting to the clusters: {e}")))?;
    let paging = match &info.pit {
        Some((api, id)) if info.paging == PagingMode::Pit => Paging::Pit(Arc::new(
            SharedPit::new(
                conn.source.clone(),
                *api,
                obj.spec.source.index.clone(),
                obj.spec.source.keep_alive(),
                id.clone(),
            )
            .at_generation(info.pit_generation),
        )),
        _ => Paging::Scroll,
    };
    let (k, n) = (info.slice, info.slices);
    let cp = &info.checkpoint;
    // A slice never started has nothing to resume (it would count as a restart).
    let begun = cp.state != SliceState::Pending || cp.read > 0 || cp.total.is_some();
    let checkpoints = if begun {
        (0..n)
            .map(|i| {
                if i == k {
                    cp.clone()
                } else {
                    SliceCheckpoint {
                        id: i,
                        ..Default::default()
                    }
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let prepared = Prepared {
        original_settings: Default::default(),
        dest_was_empty: info.dest_was_empty,
        dest_index_uuid: None,
        total: None,
        slices: n,
        summary: String::new(),
        checkpoints,
        task: None,
        resumed: true,
        catch_up: None,
    };
    // The copy's rate limit is shared by its slices.
    let rate = obj
        .spec
        .requests_per_second
        .filter(|r| *r > 0.0)
        .map(|r| r / f64::from(n.max(1)));
    let mut plan = copy_plan(
        &obj.spec,
        &conn,
        &prepared,
        Arc::new(Throttle::new(rate)),
        paging,
    );
    plan.dest = plan
        .dest
        .with_opaque_id(&format!("{}/{k}", w.scale.identity))
        .with_gate(hold.gate());
    plan.share = Some(Share {
        slices: vec![k],
        gate: hold.gate(),
    });
    let opened = open_copy(plan, stats.clone(), stop.clone()).await?;
    // The slice's exact total is in the Lease before anything is written.
    match hold.renew(Some(&stats.durable_checkpoint(k))).await {
        Ok(()) => {}
        Err(LeaseCallError::Lost) => {
            return Err(CopyError::Fenced("the slice Lease changed hands".into()));
        }
        Err(LeaseCallError::Failed(e)) => {
            tracing::warn!(error = %e, "scale-out: could not record the slice's total; going on")
        }
    }
    opened.run().await
}
