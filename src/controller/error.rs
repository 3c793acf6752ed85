//! Why a reconcile of either resource (`RemoteReindex`, `Migration`) must be retried.

/// Why a reconcile must be retried.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The object lacks a field the API server always sets.
    #[error("the resource has no {0}")]
    MissingField(&'static str),
    /// Deletion is waiting for the copy to stop (restoring settings, clearing scrolls).
    #[error("the copy is still stopping")]
    StillStopping,
    /// Deletion could not restore the destination or clear the scrolls yet.
    #[error("cleanup failed: {0}")]
    Cleanup(String),
    /// A search cluster failed in a way a retry may fix (a Migration's planning).
    #[error("{0}")]
    Transient(String),
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// This replica is no longer the leader: it writes no status.
    #[error("refused to write the status: {0}")]
    NotLeader(String),
}
