//! The Kubernetes operator: `remote-reindex controller`.
//!
//! A kube-runtime `Controller` per watched namespace (or one for all) reconciles `RemoteReindex`
//! resources ([`reindex`]): reconcile is thin and safe to re-run; each copy runs the shared
//! [`crate::workflow`] in its own task registered by UID, writing phases, progress and Events
//! through a status sink; deletion stops the copy and restores the destination before the
//! finalizer goes. [`migration`] reconciles `Migration`s into child `RemoteReindex`es. With
//! `--leader-election` only the holder of a Lease reconciles ([`leader`]); a standby takes over
//! and resumes interrupted copies from what their status recorded. With `--scale-out`, one copy's
//! slices are spread over every replica ([`scale`]).

pub mod context;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod migration;
pub mod policy;
pub mod reindex;
mod runner;
pub mod scale;
pub mod secrets;
pub mod status_patch;

pub use runner::run;

use std::net::SocketAddr;

/// Flags of `remote-reindex controller`.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllerArgs {
    /// Destination cluster for resources without `spec.dest.remote`, e.g. `http://es:9200`.
    #[arg(long, value_name = "URL")]
    pub dest_host: Option<String>,
    /// Watch only this namespace (repeatable); default: all namespaces.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// `host:port` globs remote clusters must match (repeatable or comma-separated), like
    /// Elasticsearch's `reindex.remote.whitelist`: the operator-wide ceiling that `ReindexPolicy`
    /// resources narrow. Not given: no remote host is allowed unless a `ReindexPolicy` lists it.
    #[arg(long, value_name = "GLOB", value_delimiter = ',')]
    pub allowed_remote_hosts: Vec<String>,
    /// Allow destination indices whose names start with `.` (a `ReindexPolicy` can allow
    /// them per namespace with `allowedDestIndices`).
    #[arg(long)]
    pub allow_system_indices: bool,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// `User-Agent` sent to the search clusters.
    #[arg(long, value_name = "UA")]
    pub user_agent: Option<String>,
    /// Run only while holding a Lease, so that several replicas can run and one drives copies.
    #[arg(long)]
    pub leader_election: bool,
    /// Namespace of the Lease (default: the pod's namespace from `POD_NAMESPACE`, else `default`).
    #[arg(
        long,
        value_name = "NS",
        env = "POD_NAMESPACE",
        default_value = "default"
    )]
    pub leader_election_namespace: String,
    /// Name of the Lease.
    #[arg(long, value_name = "NAME", default_value = "remote-reindex-operator")]
    pub leader_election_id: String,
    /// Seconds a leader's Lease lasts without renewal before a standby takes over.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub lease_duration: u64,
    /// Scale-out: one copy's slices spread over every replica.
    #[command(flatten)]
    pub scale: crate::controller::scale::ScaleArgs,
}

/// Why the controller could not run.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A flag has an unusable value.
    #[error("{0}")]
    InvalidArgs(String),
    /// No kubeconfig / in-cluster configuration, or the API server is unreachable.
    #[error("cannot use the Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Another replica took the Lease (or it could not be renewed): this process stops so that
    /// only one drives copies; it starts again as a standby.
    #[error("lost the leader election Lease")]
    LostLeadership,
    /// The health/metrics address cannot be bound.
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
}
