//! `mode: Server` needs only the destination: the operator probes the source and goes on
//! without it when it cannot reach it (the destination may, through VPC peering or Amazon's
//! managed connectivity). Engine mode needs both ends, as always.

use crate::api::{CopyMode, RemoteReindexSpec};
use crate::search::{ClusterInfo, SearchClient, SearchError, Version};
use std::future::Future;
use std::time::Duration;

/// How long the operator tries to reach the source in `mode: Server` before going on without it.
const SERVER_PROBE: Duration = Duration::from_secs(10);

/// The source's `GET /`: `Some(info)` when it answers, `None` in `mode: Server` when it cannot
/// be reached from here (network, TLS or timeout); other errors, and any error in Engine mode,
/// are returned.
pub(super) async fn probe_source(
    spec: &RemoteReindexSpec,
    probe: impl Future<Output = Result<ClusterInfo, SearchError>>,
) -> Result<Option<ClusterInfo>, SearchError> {
    if spec.mode() != CopyMode::Server {
        return probe.await.map(Some);
    }
    match tokio::time::timeout(SERVER_PROBE, probe).await {
        Ok(Ok(info)) => Ok(Some(info)),
        Ok(Err(
            e @ (SearchError::Unreachable { .. }
            | SearchError::Timeout { .. }
            | SearchError::Tls { .. }),
        )) => {
            tracing::info!(error = %e, "mode: Server: the source is not reachable from the operator; the destination reads it, and the copy is checked against the task's counts");
            Ok(None)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            tracing::info!(
                "mode: Server: the source did not answer the operator in time; the destination reads it, and the copy is checked against the task's counts"
            );
            Ok(None)
        }
    }
}

/// Summary, reachability and placeholder info for a source the operator does not reach.
pub(super) fn unreached(source: &SearchClient, dest: &ClusterInfo) -> (String, bool, ClusterInfo) {
    let placeholder = ClusterInfo {
        distribution: dest.distribution,
        version: Version {
            major: 0,
            minor: 0,
            patch: 0,
        },
    };
    (
        format!(
            "{} (not reachable from the operator) → {dest}, copied by the destination",
            source.name()
        ),
        false,
        placeholder,
    )
}
