//! Cluster metadata calls a migration needs beyond one index: JSON reads that may be absent
//! (APIs an engine or version lacks) and JSON writes (templates, aliases).

use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use super::transport::Body;
use reqwest::Method;
use serde_json::Value;

impl SearchClient {
    /// A GET returning JSON, or `None` on 404 and on 400/405 (an API this engine or version
    /// does not have, e.g. `_index_template` before Elasticsearch 7.8).
    pub async fn get_json_opt(&self, path: &str) -> Result<Option<Value>, SearchError> {
        let r = self
            .request(Method::GET, path, None, &[400, 404, 405], Resend::Safe)
            .await?;
        if !r.status.is_success() {
            return Ok(None);
        }
        serde_json::from_slice(&r.body)
            .map(Some)
            .map_err(|e| self.decode_error("GET", path, e.to_string()))
    }

    /// A PUT of a JSON body (templates: putting the same body twice is putting it once).
    pub async fn put_json(&self, path: &str, body: &Value) -> Result<(), SearchError> {
        self.request(Method::PUT, path, Some(Body::json(body)), &[], Resend::Safe)
            .await?;
        Ok(())
    }

    /// A POST of a JSON body (`_aliases`: adding the same alias twice leaves one).
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<(), SearchError> {
        self.request(
            Method::POST,
            path,
            Some(Body::json(body)),
            &[],
            Resend::Safe,
        )
        .await?;
        Ok(())
    }
}
