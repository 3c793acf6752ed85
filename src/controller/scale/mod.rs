//! Scale-out: one copy spread over the operator's replicas, with Kubernetes as the only
//! coordination engine (`coordination.k8s.io` Leases; no database, no consensus of our own).
//!
//! - The leader (leader election) runs the workflow as always; its copy step is a
//!   [`Planner`](planner::Planner) that creates one Lease per slice, named from the copy's UID
//!   and the slice number, aggregates the slices' checkpoints into `status.slices[]` and
//!   progress, and deletes the Leases when the slices are over. Finalize runs once, there.
//! - Every replica, the leader included, runs a [`worker`]: it announces itself with a Lease
//!   of its own ([`members`]), claims at most `ceil(unfinished slices / live workers)` slices
//!   (capped by `--max-slices-per-pod`), runs the engine on exactly those ([`crate::copy::Share`]),
//!   renews each slice Lease every fifth of its duration and writes the slice's durable
//!   checkpoint into it at most every `--slice-checkpoint-interval`.
//! - Fencing: every write to a Lease is conditional on the `resourceVersion` last seen, and a
//!   worker writes to the destination only within the budget of its last successful renewal
//!   (four fifths of the lease duration, as leader election); a successor claims a slice only
//!   after the holder's record stayed unchanged for a full lease duration as it observed it.
//!   Every bulk request carries `X-Opaque-Id: <identity>/<slice>`.

mod lease;
mod members;
pub mod names;
mod planner;
mod worker;

pub use lease::{SliceInfo, SliceLeaseState};
pub use members::fair_share;
pub use planner::delete_slice_leases;
pub use worker::{WorkerHandle, start_worker};

use crate::api::RemoteReindex;
use crate::controller::context::ScaleOut;
use crate::workflow::SliceRunner;
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Flags of scale-out (part of `remote-reindex controller`).
#[derive(Clone, Debug, clap::Args)]
pub struct ScaleArgs {
    /// Spread each copy's slices over every replica of the operator: slices are claimed
    /// through `coordination.k8s.io` Leases in the copy's namespace, and every replica (not
    /// only the leader) copies the slices it holds.
    #[arg(long)]
    pub scale_out: bool,
    /// Seconds a slice Lease lasts without renewal before another replica takes the slice
    /// over (renewed every fifth of it).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub slice_lease_duration: u64,
    /// Seconds between the checkpoints a worker writes into its slice Lease (at most this
    /// often; a successor resumes from the last one).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub slice_checkpoint_interval: u64,
    /// The most slices one replica holds at a time (default: its fair share,
    /// `ceil(unfinished slices / live workers)`).
    #[arg(long, value_name = "N")]
    pub max_slices_per_pod: Option<u32>,
}

/// Scale-out's shared state in one replica.
pub struct Scale {
    client: Client,
    identity: String,
    args: ScaleArgs,
    /// Namespaces watched (empty: all).
    namespaces: Vec<String>,
    /// Where the worker announcements live (the leader election namespace).
    members_namespace: String,
    /// Lease writes (create, update, delete) this replica sent.
    pub writes: Arc<AtomicU64>,
    /// Lease lists and reads this replica sent.
    pub reads: Arc<AtomicU64>,
}

impl Scale {
    /// Scale-out as `identity`, for the watched `namespaces` (empty: all), announcing workers
    /// in `members_namespace`.
    pub fn new(
        client: Client,
        identity: &str,
        args: ScaleArgs,
        namespaces: Vec<String>,
        members_namespace: &str,
    ) -> Result<Arc<Self>, String> {
        if args.slice_lease_duration < 2 {
            return Err("--slice-lease-duration must be at least 2 seconds".into());
        }
        if args.slice_checkpoint_interval == 0 {
            return Err("--slice-checkpoint-interval must be at least 1 second".into());
        }
        if args.max_slices_per_pod == Some(0) {
            return Err("--max-slices-per-pod must be at least 1".into());
        }
        Ok(Arc::new(Scale {
            client,
            identity: identity.to_string(),
            args,
            namespaces,
            members_namespace: members_namespace.to_string(),
            writes: Arc::new(AtomicU64::new(0)),
            reads: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// This replica's identity (the holder name in Leases, the prefix of `X-Opaque-Id`).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn lease_duration(&self) -> Duration {
        Duration::from_secs(self.args.slice_lease_duration)
    }

    fn checkpoint_interval(&self) -> Duration {
        Duration::from_secs(self.args.slice_checkpoint_interval)
    }

    /// How often workers look for slices and the planner aggregates: a fifth of the lease
    /// duration, between 1 and 5 seconds.
    fn poll_interval(&self) -> Duration {
        (self.lease_duration() / 5).clamp(Duration::from_secs(1), Duration::from_secs(5))
    }

    /// The handle the reconcilers use ([`crate::controller::context::Context::scale`]).
    pub fn handle(self: &Arc<Self>) -> Arc<dyn ScaleOut> {
        Arc::new(ScaleHandle(self.clone()))
    }

    /// A one-line account of the Lease requests sent so far.
    pub fn overhead(&self) -> String {
        format!(
            "{} Lease writes, {} Lease lists",
            self.writes.load(Ordering::Relaxed),
            self.reads.load(Ordering::Relaxed)
        )
    }
}

/// [`Scale`] as the reconcilers see it.
struct ScaleHandle(Arc<Scale>);

impl ScaleOut for ScaleHandle {
    fn runner(&self, obj: &RemoteReindex) -> Arc<dyn SliceRunner> {
        Arc::new(planner::Planner {
            scale: self.0.clone(),
            namespace: obj.namespace().unwrap_or_default(),
            uid: obj.uid().unwrap_or_default(),
            resource: obj.name_any(),
        })
    }

    fn delete_slice_leases<'a>(
        &'a self,
        namespace: &'a str,
        uid: &'a str,
    ) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(delete_slice_leases(&self.0, namespace, uid))
    }
}
