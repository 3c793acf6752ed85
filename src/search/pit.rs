//! Points in time: `_pit` (Elasticsearch) or `_search/point_in_time` (OpenSearch). Which API a
//! cluster offers is found by trying, never by its version number.

use super::admin::seg;
use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use super::transport::Body;
use reqwest::Method;
use serde_json::{Value, json};

/// The point-in-time API of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PitApi {
    /// `POST /<index>/_pit?keep_alive=…` → `{"id"}`; `DELETE /_pit {"id"}`.
    Elasticsearch,
    /// `POST /<index>/_search/point_in_time?keep_alive=…` → `{"pit_id"}`;
    /// `DELETE /_search/point_in_time {"pit_id": […]}`.
    OpenSearch,
}

impl SearchClient {
    /// Opens a point in time on `index` with the given API. Safe to re-send: each attempt opens
    /// a new one (an orphan expires after its keep-alive).
    pub async fn open_pit(
        &self,
        api: PitApi,
        index: &str,
        keep_alive: &str,
    ) -> Result<String, SearchError> {
        let (path, field) = match api {
            PitApi::Elasticsearch => (format!("{}/_pit?keep_alive={keep_alive}", seg(index)), "id"),
            PitApi::OpenSearch => (
                format!(
                    "{}/_search/point_in_time?keep_alive={keep_alive}",
                    seg(index)
                ),
                "pit_id",
            ),
        };
        let r = self
            .request(Method::POST, &path, None, &[], Resend::Safe)
            .await?;
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("POST", &path, e.to_string()))?;
        v[field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.decode_error("POST", &path, format!("no `{field}` in the answer")))
    }

    /// Finds which point-in-time API the cluster offers by opening one on `index` (returned,
    /// to be used or closed). `Ok(None)` when neither is there (older engines, PIT not
    /// allowed).
    pub async fn probe_pit(
        &self,
        index: &str,
        keep_alive: &str,
    ) -> Result<Option<(PitApi, String)>, SearchError> {
        for api in [PitApi::Elasticsearch, PitApi::OpenSearch] {
            match self.open_pit(api, index, keep_alive).await {
                Ok(id) => return Ok(Some((api, id))),
                Err(e) if matches!(e.status(), Some(400 | 404 | 405 | 403)) => {
                    tracing::debug!(?api, error = %e, "point-in-time API not offered");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Closes a point in time; one already gone is fine.
    pub async fn close_pit(&self, api: PitApi, id: &str) -> Result<(), SearchError> {
        let (path, body) = match api {
            PitApi::Elasticsearch => ("_pit", json!({ "id": id })),
            PitApi::OpenSearch => ("_search/point_in_time", json!({ "pit_id": [id] })),
        };
        self.request(
            Method::DELETE,
            path,
            Some(Body::json(&body)),
            &[404],
            Resend::Safe,
        )
        .await?;
        Ok(())
    }
}
