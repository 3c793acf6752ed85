//! Index administration: existence, settings, mappings, creation, count and refresh.

use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use super::transport::Body;
use reqwest::Method;
use serde_json::{Map, Value, json};

/// Encodes an index name for a URL path.
pub(crate) fn seg(index: &str) -> String {
    index.replace('%', "%25")
}

/// An index as the cluster describes it.
#[derive(Clone, Debug, Default)]
pub struct IndexDescription {
    /// The concrete index name (the input may be an alias).
    pub name: String,
    /// Settings in flat form (`index.number_of_replicas` → `"1"`).
    pub settings: Map<String, Value>,
    /// The mappings object.
    pub mappings: Value,
}

impl IndexDescription {
    /// A flat setting as a string, if set.
    pub fn setting(&self, key: &str) -> Option<String> {
        match self.settings.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

impl SearchClient {
    /// Whether an index (or alias) exists.
    pub async fn index_exists(&self, index: &str) -> Result<bool, SearchError> {
        let r = self
            .request(Method::HEAD, &seg(index), None, &[404], Resend::Safe)
            .await?;
        Ok(r.status.is_success())
    }

    /// Settings (flat) and mappings of an index.
    pub async fn describe_index(&self, index: &str) -> Result<IndexDescription, SearchError> {
        let path = format!("{}/_settings?flat_settings=true", seg(index));
        let mpath = format!("{}/_mapping", seg(index));
        // Settings and mappings at once: one round trip across a WAN.
        let (r, mr) = tokio::join!(
            self.request(Method::GET, &path, None, &[], Resend::Safe),
            self.request(Method::GET, &mpath, None, &[], Resend::Safe),
        );
        let r = r?;
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("GET", &path, e.to_string()))?;
        let (name, body) = first_entry(&v)
            .ok_or_else(|| self.decode_error("GET", &path, "no index in the response"))?;
        let settings = body["settings"].as_object().cloned().unwrap_or_default();
        let r = mr?;
        let m: Value = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("GET", &mpath, e.to_string()))?;
        let mut mappings = m
            .get(&name)
            .or_else(|| first_entry(&m).map(|(_, b)| b))
            .map(|b| b["mappings"].clone())
            .unwrap_or(Value::Null);
        if let Some(t) = self.mapping_type()
            && let Some(inner) = mappings.get_mut(t)
        {
            mappings = inner.take();
        }
        Ok(IndexDescription {
            name,
            settings,
            mappings,
        })
    }

    /// Creates an index with a `{settings, mappings}` body (typeless mappings; nested under the
    /// client's mapping type on Elasticsearch 6.x).
    pub async fn create_index(&self, index: &str, body: &Value) -> Result<(), SearchError> {
        let mut body = body.clone();
        if let Some(t) = self.mapping_type()
            && let Some(m) = body.get_mut("mappings")
        {
            *m = json!({ t: m.take() });
        }
        let path = seg(index);
        let r = self
            .request(
                Method::PUT,
                &path,
                Some(Body::json(&body)),
                &[400],
                Resend::Safe,
            )
            .await?;
        if r.status.is_success() {
            return Ok(());
        }
        // Sent again after a lost answer: "already exists" is the first attempt's success.
        let (kind, _) = super::error::parse_error_body(&r.body);
        if r.attempts > 1 && kind == "resource_already_exists_exception" {
            return Ok(());
        }
        Err(self.api_error(&Method::PUT, &path, r.status, &r.body))
    }

    /// Deletes an index; absent is fine.
    pub async fn delete_index(&self, index: &str) -> Result<(), SearchError> {
        self.request(Method::DELETE, &seg(index), None, &[404], Resend::Safe)
            .await?;
        Ok(())
    }

    /// Updates dynamic index settings, e.g. `{"index": {"refresh_interval": "-1"}}`.
    pub async fn put_settings(&self, index: &str, settings: &Value) -> Result<(), SearchError> {
        let path = format!("{}/_settings", seg(index));
        self.request(
            Method::PUT,
            &path,
            Some(Body::json(settings)),
            &[],
            Resend::Safe,
        )
        .await?;
        Ok(())
    }

    /// Replaces the mapping's `_meta` object (of the typed mapping on Elasticsearch 6.x).
    pub async fn put_mapping_meta(&self, index: &str, meta: &Value) -> Result<(), SearchError> {
        let path = match self.mapping_type() {
            Some(t) => format!("{}/_mapping/{t}", seg(index)),
            None => format!("{}/_mapping", seg(index)),
        };
        self.request(
            Method::PUT,
            &path,
            Some(Body::json(&json!({ "_meta": meta }))),
            &[],
            Resend::Safe,
        )
        .await?;
        Ok(())
    }

    /// Documents matching `query` (all when `None`).
    pub async fn count(&self, index: &str, query: Option<&Value>) -> Result<u64, SearchError> {
        let path = format!("{}/_count", seg(index));
        let body = query.map(|q| Body::json(&json!({ "query": q })));
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let r = self.request(method, &path, body, &[], Resend::Safe).await?;
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("POST", &path, e.to_string()))?;
        v["count"]
            .as_u64()
            .ok_or_else(|| self.decode_error("POST", &path, "no `count`"))
    }

    /// Makes recent writes searchable.
    pub async fn refresh(&self, index: &str) -> Result<(), SearchError> {
        let path = format!("{}/_refresh", seg(index));
        self.request(Method::POST, &path, None, &[], Resend::Safe)
            .await?;
        Ok(())
    }

    /// A raw GET returning JSON, for the rare call without a typed helper.
    pub async fn get_json(&self, path: &str) -> Result<Value, SearchError> {
        let r = self
            .request(Method::GET, path, None, &[], Resend::Safe)
            .await?;
        serde_json::from_slice(&r.body).map_err(|e| self.decode_error("GET", path, e.to_string()))
    }
}

fn first_entry(v: &Value) -> Option<(String, &Value)> {
    v.as_object()?.iter().next().map(|(k, b)| (k.clone(), b))
}
