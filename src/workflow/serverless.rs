//! Amazon OpenSearch Serverless (`aoss`) as a destination: the service manages shards, replicas
//! and refresh, so the workflow neither tunes nor restores them, and documents become
//! searchable asynchronously, so the final count is polled until it settles.

use crate::search::{SearchClient, SearchError};
use serde_json::Value;
use std::time::Duration;

/// How long the final count may take to reach the expected number.
const SETTLE: Duration = Duration::from_secs(60);

/// Removes the settings Serverless manages (shards, replicas, refresh interval) from a
/// create-index body.
pub(super) fn untune(body: &mut Value) {
    if let Some(index) = body
        .get_mut("settings")
        .and_then(|s| s.get_mut("index"))
        .and_then(Value::as_object_mut)
    {
        for k in ["number_of_shards", "number_of_replicas", "refresh_interval"] {
            index.remove(k);
        }
    }
}

/// The destination's document count, polled until it reaches `expected` (when known) or
/// [`SETTLE`] has passed.
pub(super) async fn settled_count(
    dest: &SearchClient,
    index: &str,
    expected: Option<u64>,
) -> Result<u64, SearchError> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let n = dest.count(index, None).await?;
        if expected.is_none_or(|e| n >= e) || tokio::time::Instant::now() >= deadline {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn untune_drops_managed_settings_only() {
        let mut b = serde_json::json!({"settings": {"index": {"number_of_shards": 3, "number_of_replicas": 0, "refresh_interval": "-1", "analysis": {}}}, "mappings": {}});
        super::untune(&mut b);
        assert_eq!(b["settings"]["index"], serde_json::json!({"analysis": {}}));
    }
}
