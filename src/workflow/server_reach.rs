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
            | SearchError::Interrupted { .. }
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

/// The allowlist entries of every node that reports its `reindex.remote.*` settings (`None`
/// when the destination does not say, e.g. a managed service or a user without `monitor`).
fn node_allowlists(v: &serde_json::Value) -> Option<Vec<Vec<String>>> {
    let nodes = v.as_object()?.get("nodes").map_or_else(
        // `filter_path` leaves `{}` when no node sets the key: the default, an empty list.
        || Some(serde_json::Map::new()),
        |n| n.as_object().cloned(),
    )?;
    let lists = nodes
        .values()
        .map(|n| {
            let remote = &n["settings"]["reindex"]["remote"];
            let list = if remote["allowlist"].is_null() {
                &remote["whitelist"]
            } else {
                &remote["allowlist"]
            };
            match list {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|e| e.as_str())
                    .map(|e| e.trim().to_string())
                    .collect(),
                serde_json::Value::String(s) => {
                    s.split(',').map(|e| e.trim().to_string()).collect()
                }
                _ => Vec::new(),
            }
        })
        .collect::<Vec<Vec<String>>>();
    Some(lists)
}

/// Whether `host_port` matches one of the globs (`*` only, as the engines match them).
fn allowed(globs: &[String], host_port: &str) -> bool {
    globs
        .iter()
        .filter(|g| !g.is_empty())
        .any(|g| wildmatch::WildMatch::new(&g.to_lowercase()).matches(&host_port.to_lowercase()))
}

/// `mode: Server`, before anything is written: when the destination's nodes report their
/// `reindex.remote.allowlist`/`whitelist` and none admits the source, `RemoteNotAllowed` now
/// rather than after the index was created. Amazon OpenSearch Service manages remote access
/// itself, so it is not asked; a destination that does not say is left to the task's answer.
pub(super) async fn check_allowlist(
    spec: &RemoteReindexSpec,
    dest_ep_is_aws: bool,
    dest: &SearchClient,
    dest_info: &ClusterInfo,
) -> Result<(), super::error::ServerError> {
    if spec.mode() != CopyMode::Server || dest_ep_is_aws {
        return Ok(());
    }
    let Ok(url) = url::Url::parse(&spec.source.remote.host) else {
        return Ok(());
    };
    let host_port = crate::net::host_port(&url);
    let answer = dest
        .get_json("_nodes/settings?filter_path=nodes.*.settings.reindex.remote")
        .await;
    let Some(lists) = answer.ok().as_ref().and_then(node_allowlists) else {
        return Ok(());
    };
    let setting =
        super::server_request::allowlist_setting(&dest_info.distribution, dest_info.version.major);
    if lists.is_empty() {
        return Err(super::error::ServerError::RemoteNotAllowed {
            host: host_port.clone(),
            setting,
            detail: format!("no node of the destination sets {setting}, so it allows no remote"),
        });
    }
    if lists.iter().all(|l| !allowed(l, &host_port)) {
        return Err(super::error::ServerError::RemoteNotAllowed {
            detail: format!("the destination's nodes allow {}", lists[0].join(", ")),
            host: host_port,
            setting,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allowlists_are_read_from_every_node_in_both_spellings() {
        let v = json!({"nodes": {
            "a": {"settings": {"reindex": {"remote": {"allowlist": "127.0.0.1:*"}}}},
            "b": {"settings": {"reindex": {"remote": {"whitelist": ["old:9200", " other:443"]}}}}
        }});
        let lists = node_allowlists(&v).unwrap();
        assert_eq!(
            lists,
            vec![
                vec!["127.0.0.1:*".to_string()],
                vec!["old:9200".into(), "other:443".into()]
            ]
        );
        assert!(allowed(&lists[0], "127.0.0.1:9201"));
        assert!(!allowed(&lists[0], "localhost:9201"));
        assert!(allowed(&lists[1], "OLD:9200"));
        assert_eq!(
            node_allowlists(&json!({})).unwrap(),
            Vec::<Vec<String>>::new()
        );
        assert!(node_allowlists(&json!("x")).is_none());
    }
}
