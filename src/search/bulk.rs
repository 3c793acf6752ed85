//! `_bulk`: sends a prepared NDJSON body and reports the items that failed.

use super::client::SearchClient;
use super::options::Resend;
use super::transport::Body;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

use super::error::SearchError;

/// A bulk item the destination did not accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkItemFailure {
    /// Position of the item in the request.
    pub position: usize,
    /// HTTP status of the item (429 means retry it, 409 a version conflict).
    pub status: u16,
    /// The document id.
    pub id: String,
    /// Error type, e.g. `mapper_parsing_exception`.
    pub kind: String,
    /// Error reason.
    pub reason: String,
}

/// The result of one `_bulk` request.
#[derive(Clone, Debug, Default)]
pub struct BulkOutcome {
    /// Items in the response.
    pub items: usize,
    /// Items that failed, in request order.
    pub failures: Vec<BulkItemFailure>,
    /// True when the request was sent more than once (an earlier attempt's answer was lost):
    /// its items may have been applied by that attempt already.
    pub resent: bool,
}

#[derive(Deserialize)]
struct ErrorsOnly {
    #[serde(default)]
    errors: bool,
    /// The items, counted but not decoded (`None` when the answer has none).
    #[serde(default)]
    items: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
struct Full {
    items: Vec<BTreeMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    status: u16,
    #[serde(rename = "_id", default)]
    id: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

impl SearchClient {
    /// Sends one bulk body of `items` operations. Whole-request transient failures are retried
    /// by the client (safe: every item names its `_id`, so a resend writes the same documents;
    /// see [`BulkOutcome::resent`]); per-item failures are returned for the caller to handle.
    pub async fn bulk(
        &self,
        body: Bytes,
        items: usize,
        pipeline: Option<&str>,
    ) -> Result<BulkOutcome, SearchError> {
        let path = match pipeline {
            Some(p) => format!("_bulk?pipeline={}", p.replace('%', "%25")),
            None => "_bulk".to_string(),
        };
        let r = self
            .request(
                Method::POST,
                &path,
                Some(Body::ndjson(body)),
                &[],
                Resend::Safe,
            )
            .await?;
        let head: ErrorsOnly = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("POST", &path, e.to_string()))?;
        // One item per action, always: an answer without them (`{}`, a proxy's empty 200) or
        // with fewer says nothing about the documents, so it is never taken as "all accepted".
        let answered = head.items.as_ref().map_or(0, Vec::len);
        if answered != items {
            return Err(self.decode_error(
                "POST",
                &path,
                format!("{answered} items answered for {items} sent"),
            ));
        }
        if !head.errors {
            return Ok(BulkOutcome {
                items,
                failures: Vec::new(),
                resent: r.attempts > 1,
            });
        }
        let full: Full = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("POST", &path, e.to_string()))?;
        let failures = full
            .items
            .into_iter()
            .enumerate()
            .filter_map(|(position, m)| {
                let item = m.into_values().next()?;
                let error = item.error?;
                let (kind, reason) = match &error {
                    Value::String(s) => ("error".to_string(), s.clone()),
                    e => (
                        e["type"].as_str().unwrap_or("error").to_string(),
                        e["reason"].as_str().unwrap_or("").to_string(),
                    ),
                };
                Some(BulkItemFailure {
                    position,
                    status: item.status,
                    id: item.id.unwrap_or_default(),
                    kind,
                    reason,
                })
            })
            .collect();
        Ok(BulkOutcome {
            items,
            failures,
            resent: r.attempts > 1,
        })
    }
}
