//! After the point in time was lost and every slice started again under a new one, the
//! destination holds the new snapshot plus what the earlier passes wrote of documents the new
//! snapshot no longer has (deleted in the source, or no longer matching the query, in between).
//! When the destination started empty, everything in it came from this copy: those documents
//! are deleted, so that the destination equals the snapshot the copy verifies against.

use super::{CopyError, CopyPlan};
use crate::copy::pager::SharedPit;
use crate::search::ScrollPage;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Destination documents looked up in the source per request.
const BATCH: u32 = 1000;

/// Deletes from the destination every document the source's current point in time does not
/// hold (with the copy's query); returns how many. Reads the destination by scroll (`_id` and
/// `_routing` only) and asks the point in time for the same ids.
pub(super) async fn prune(plan: &CopyPlan, pit: &SharedPit) -> Result<u64, CopyError> {
    let dest = &plan.dest;
    let search = |during: &'static str| move |source| CopyError::Search { during, source };
    dest.refresh(&plan.dest_index).await.map_err(search(
        "refreshing the destination before removing stale documents",
    ))?;
    let body =
        json!({"size": BATCH, "_source": false, "sort": ["_doc"], "query": {"match_all": {}}});
    let mut page = dest
        .open_scroll(&plan.dest_index, &body, &plan.keep_alive)
        .await
        .map_err(search("reading the destination's ids"))?;
    let mut deleted = 0;
    let mut scroll_id = None;
    loop {
        let parsed = page
            .parse()
            .map_err(|e| CopyError::BadPage(e.to_string()))?;
        if let Some(why) = parsed.incomplete() {
            return Err(CopyError::SourceIncomplete(why));
        }
        scroll_id.clone_from(&parsed.scroll_id);
        let keys: Vec<(String, Option<String>)> = parsed
            .hits()
            .iter()
            .filter_map(|h| {
                let id: String = serde_json::from_str(h.id.get()).ok()?;
                let routing = h.routing.and_then(|r| serde_json::from_str(r.get()).ok());
                Some((id, routing))
            })
            .collect();
        if keys.is_empty() {
            break;
        }
        drop(parsed);
        let present = in_source(plan, pit, &keys).await?;
        let stale: Vec<&(String, Option<String>)> = keys
            .iter()
            .filter(|(id, _)| !present.contains(id))
            .collect();
        if !stale.is_empty() {
            deleted += delete(plan, &stale).await?;
        }
        let Some(id) = &scroll_id else { break };
        page = dest
            .scroll(id, &plan.keep_alive)
            .await
            .map_err(search("reading the destination's ids"))?;
    }
    if let Some(id) = scroll_id
        && let Err(e) = dest.clear_scroll(&[id]).await
    {
        tracing::debug!(error = %e, "could not clear the destination scroll; it expires");
    }
    Ok(deleted)
}

/// The ids of `keys` the point in time holds (matching the copy's query).
async fn in_source(
    plan: &CopyPlan,
    pit: &SharedPit,
    keys: &[(String, Option<String>)],
) -> Result<HashSet<String>, CopyError> {
    let ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
    let mut filter = vec![json!({"ids": {"values": ids}})];
    if let Some(q) = &plan.query {
        filter.push(q.clone());
    }
    let body = json!({
        "size": keys.len(),
        "_source": false,
        "sort": ["_shard_doc"],
        "query": {"bool": {"filter": filter}},
        "pit": {"id": pit.current().await.1, "keep_alive": plan.keep_alive},
    });
    let raw = plan
        .source
        .search_pit_raw(&body)
        .await
        .map_err(|source| CopyError::Search {
            during: "looking up destination documents in the source's point in time",
            source,
        })?;
    let page = ScrollPage { body: raw };
    let parsed = page
        .parse()
        .map_err(|e| CopyError::BadPage(e.to_string()))?;
    if let Some(why) = parsed.incomplete() {
        return Err(CopyError::SourceIncomplete(why));
    }
    Ok(parsed
        .hits()
        .iter()
        .filter_map(|h| serde_json::from_str::<String>(h.id.get()).ok())
        .collect())
}

/// Deletes `stale` from the destination; a delete that finds nothing (404) counts as done.
async fn delete(plan: &CopyPlan, stale: &[&(String, Option<String>)]) -> Result<u64, CopyError> {
    let mut body = Vec::new();
    for (id, routing) in stale {
        let mut meta = serde_json::Map::new();
        meta.insert("_index".into(), json!(plan.dest_index));
        if let Some(t) = &plan.dest_type {
            meta.insert("_type".into(), json!(t));
        }
        meta.insert("_id".into(), json!(id));
        if let Some(r) = routing {
            meta.insert("routing".into(), json!(r));
        }
        serde_json::to_writer(&mut body, &json!({"delete": Value::Object(meta)}))
            .expect("a JSON value serializes");
        body.push(b'\n');
    }
    let outcome = plan
        .dest
        .bulk(Bytes::from(body), stale.len(), None)
        .await
        .map_err(|source| CopyError::Search {
            during: "deleting destination documents the source no longer has",
            source,
        })?;
    if let Some(f) = outcome.failures.iter().find(|f| f.status != 404) {
        return Err(CopyError::BadPage(format!(
            "could not delete `{}` (the source no longer has it) from the destination: {} ({})",
            f.id, f.reason, f.kind
        )));
    }
    Ok(stale.len() as u64)
}
