//! Pre-flight choice of the paging mode: a probe, never a version number.

use super::{Paging, SharedPit};
use crate::api::PagingMode;
use crate::search::{SearchClient, SearchError};
use serde_json::{Value, json};
use std::sync::Arc;

/// Picks the paging mode for reading `index` with `query`. The probe opens a point in time
/// (either API), runs one `size: 1` search on it sorted by `_shard_doc`, and one sliced search:
/// all must succeed for PIT paging (OpenSearch 2.x has PIT but no `_shard_doc`, and no other
/// cheap total order: it is read by scroll). The PIT opened by a successful probe is the one
/// the copy uses. `Err` only when `choice` is `Pit` and the probe failed, or the source failed
/// in a way the probe cannot judge.
pub async fn choose(
    source: &SearchClient,
    index: &str,
    query: Option<&Value>,
    keep_alive: &str,
    choice: PagingMode,
) -> Result<Paging, String> {
    if choice == PagingMode::Scroll {
        return Ok(Paging::Scroll);
    }
    match probe(source, index, query, keep_alive).await {
        Ok(p) => Ok(p),
        Err(why) if choice == PagingMode::Auto => {
            tracing::info!(reason = %why, "reading the source by scroll");
            Ok(Paging::Scroll)
        }
        Err(why) => Err(format!(
            "source.paging is pit, but the source cannot page by point in time: {why}"
        )),
    }
}

async fn probe(
    source: &SearchClient,
    index: &str,
    query: Option<&Value>,
    keep_alive: &str,
) -> Result<Paging, String> {
    let show = |e: SearchError| e.to_string();
    let Some((api, id)) = source.probe_pit(index, keep_alive).await.map_err(show)? else {
        return Err("no point-in-time API".into());
    };
    let query = query.cloned().unwrap_or_else(|| json!({"match_all": {}}));
    let body = json!({
        "size": 1,
        "query": query,
        "sort": ["_shard_doc"],
        "pit": {"id": id, "keep_alive": keep_alive},
        "track_total_hits": false,
    });
    let mut sliced = body.clone();
    sliced["slice"] = json!({"id": 0, "max": 2});
    // Both searches at once (one round trip across a WAN); the plain one's failure is reported
    // first, as when they ran one after the other.
    let (plain, sliced) =
        tokio::join!(source.search_pit_raw(&body), source.search_pit_raw(&sliced));
    let result = plain.and(sliced).map(|_| ());
    let shared = SharedPit::new(
        source.clone(),
        api,
        index.to_string(),
        keep_alive.to_string(),
        id,
    );
    match result {
        Ok(()) => Ok(Paging::Pit(Arc::new(shared))),
        Err(e) => {
            shared.close().await;
            Err(format!(
                "a search sorted by _shard_doc on a point in time failed: {e}"
            ))
        }
    }
}
