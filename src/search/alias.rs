//! Aliases, write blocks and the aggregation a catch-up round needs.

use super::admin::seg;
use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use super::transport::Body;
use reqwest::Method;
use serde_json::{Value, json};

/// The largest value of a field, as a `max` aggregation reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldMax {
    /// `value`: epoch milliseconds for a date field, the number for a numeric one.
    pub value: f64,
    /// `value_as_string`, for date fields (when the engine sends it).
    pub as_string: Option<String>,
}

impl SearchClient {
    /// The indices `alias` points at (empty when the alias does not exist).
    pub async fn alias_indices(&self, alias: &str) -> Result<Vec<String>, SearchError> {
        let path = format!("_alias/{}", seg(alias));
        let r = self
            .request(Method::GET, &path, None, &[404], Resend::Safe)
            .await?;
        if r.status.as_u16() == 404 {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("GET", &path, e.to_string()))?;
        Ok(v.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, b)| b["aliases"].get(alias).is_some())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Applies alias `actions` in one atomic `POST /_aliases`.
    pub async fn update_aliases(&self, actions: &[Value]) -> Result<(), SearchError> {
        let body = json!({ "actions": actions });
        // Not resent after an answer was lost: the first attempt may have moved the aliases,
        // and the same actions would then fail on the alias it removed.
        self.request(
            Method::POST,
            "_aliases",
            Some(Body::json(&body)),
            &[],
            Resend::Never,
        )
        .await?;
        Ok(())
    }

    /// The node's current time in epoch milliseconds (`_nodes/_local/stats`' `timestamp`): the
    /// source's clock, for ranges on a number field where date math's `now` does not apply.
    pub async fn node_time_millis(&self) -> Result<i64, SearchError> {
        let path = "_nodes/_local/stats/jvm?filter_path=nodes.*.timestamp";
        let v = self.get_json(path).await?;
        v["nodes"]
            .as_object()
            .and_then(|n| n.values().find_map(|n| n["timestamp"].as_i64()))
            .ok_or_else(|| self.decode_error("GET", path, "no `nodes.*.timestamp` in the answer"))
    }

    /// How many documents match `query`, and the id of one of them.
    pub async fn count_with_sample(
        &self,
        index: &str,
        query: &Value,
    ) -> Result<(u64, Option<String>), SearchError> {
        let body = json!({
            "size": 1,
            "track_total_hits": true,
            "_source": false,
            "query": query,
        });
        let path = format!("{}/_search", seg(index));
        let raw = self.search_raw(index, &body).await?;
        let v: Value = serde_json::from_slice(&raw)
            .map_err(|e| self.decode_error("POST", &path, e.to_string()))?;
        let total = &v["hits"]["total"];
        let n = total
            .as_u64()
            .or_else(|| total["value"].as_u64())
            .ok_or_else(|| self.decode_error("POST", &path, "no `hits.total` in the answer"))?;
        let id = v["hits"]["hits"][0]["_id"].as_str().map(str::to_string);
        Ok((n, id))
    }

    /// The `max` of `field` over the documents matching `query` (`None` when no document has
    /// the field). Reads what the search sees now; no refresh is asked for.
    pub async fn field_max(
        &self,
        index: &str,
        field: &str,
        query: &Value,
    ) -> Result<Option<FieldMax>, SearchError> {
        let body = json!({
            "size": 0,
            "track_total_hits": false,
            "query": query,
            "aggs": { "hwm": { "max": { "field": field } } },
        });
        let path = format!("{}/_search", seg(index));
        let raw = self.search_raw(index, &body).await?;
        let v: Value = serde_json::from_slice(&raw)
            .map_err(|e| self.decode_error("POST", &path, e.to_string()))?;
        let agg = &v["aggregations"]["hwm"];
        if agg.is_null() {
            return Err(self.decode_error("POST", &path, "no `aggregations.hwm` in the answer"));
        }
        Ok(agg["value"].as_f64().map(|value| FieldMax {
            value,
            as_string: agg["value_as_string"].as_str().map(str::to_string),
        }))
    }
}
