//! Timed requests that judge the link to a cluster: how long a page of documents takes to
//! arrive beyond what the cluster spent answering, and one round trip.

use super::admin::seg;
use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use super::transport::Body;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One timed search page.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedPage {
    /// Response body bytes as they arrived (uncompressed unless the client asks for gzip).
    pub bytes: u64,
    /// From sending the request to the last byte of the answer.
    pub elapsed: Duration,
    /// What the cluster says it spent on the search (`took`).
    pub server: Duration,
    /// Documents in the page (fewer than asked for when the index holds fewer).
    pub docs: u64,
}

impl SearchClient {
    /// Searches `size` documents of `index` (with `query`, without a scroll or point in time:
    /// nothing stays open) and times it.
    pub async fn timed_page(
        &self,
        index: &str,
        query: Option<&Value>,
        size: u32,
    ) -> Result<TimedPage, SearchError> {
        let mut body = json!({ "size": size, "sort": ["_doc"] });
        if let Some(q) = query {
            body["query"] = q.clone();
        }
        let started = Instant::now();
        let r = self
            .request(
                Method::POST,
                &format!("{}/_search", seg(index)),
                Some(Body::json(&body)),
                &[],
                Resend::Safe,
            )
            .await?;
        let elapsed = started.elapsed();
        let parsed = serde_json::from_slice::<Value>(&r.body).ok();
        let took = parsed.as_ref().and_then(|v| v["took"].as_u64());
        let docs = parsed
            .as_ref()
            .and_then(|v| v["hits"]["hits"].as_array())
            .map_or(0, |h| h.len() as u64);
        Ok(TimedPage {
            bytes: r.body.len() as u64,
            elapsed,
            server: Duration::from_millis(took.unwrap_or(0)),
            docs,
        })
    }

    /// One round trip: `GET /` (the cluster's banner, a few hundred bytes).
    pub async fn timed_round_trip(&self) -> Result<Duration, SearchError> {
        let started = Instant::now();
        self.request(Method::GET, "", None, &[], Resend::Safe)
            .await?;
        Ok(started.elapsed())
    }
}
