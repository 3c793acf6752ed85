//! Scroll pages kept as raw bytes: hits are parsed by borrowing from the response, so `_source`
//! is never turned into a DOM and is copied into the bulk body byte for byte.

use super::admin::seg;
use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use super::transport::Body;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json, value::RawValue};

/// One scroll response, unparsed.
#[derive(Clone, Debug)]
pub struct ScrollPage {
    /// The raw response body.
    pub body: Bytes,
}

/// A hit, borrowing from its page. `_id`, `_routing` and `_source` are raw JSON exactly as the
/// source sent them (so an `_id` keeps its escapes and a number its digits).
#[derive(Debug, Deserialize)]
pub struct ScrollHit<'a> {
    /// `_id` as a JSON string literal.
    #[serde(rename = "_id", borrow)]
    pub id: &'a RawValue,
    /// `_type` (Elasticsearch 5.x/6.x), as a JSON string literal.
    #[serde(rename = "_type", borrow, default)]
    pub doc_type: Option<&'a RawValue>,
    /// `_routing`, as a JSON string literal, when the document has one.
    #[serde(rename = "_routing", borrow, default)]
    pub routing: Option<&'a RawValue>,
    /// `_source`, raw.
    #[serde(rename = "_source", borrow, default)]
    pub source: Option<&'a RawValue>,
    /// The hit's sort values (PIT paging continues `search_after` them), raw.
    #[serde(borrow, default)]
    pub sort: Option<&'a RawValue>,
}

/// A parsed page.
#[derive(Debug, Deserialize)]
pub struct ParsedPage<'a> {
    /// The id for the next page.
    #[serde(rename = "_scroll_id", default)]
    pub scroll_id: Option<String>,
    /// The point in time the search ran on (engines may hand out a new id on every search).
    #[serde(default)]
    pub pit_id: Option<String>,
    /// True when some shards did not answer in time.
    #[serde(default)]
    pub timed_out: bool,
    #[serde(rename = "_shards", default)]
    shards: Option<Shards>,
    #[serde(borrow)]
    hits: Hits<'a>,
}

#[derive(Debug, Deserialize)]
struct Hits<'a> {
    #[serde(default)]
    total: Option<Total>,
    #[serde(borrow, default)]
    hits: Vec<ScrollHit<'a>>,
}

/// `hits.total`: a number (Elasticsearch 6) or `{value, relation}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Total {
    Number(u64),
    Object {
        value: u64,
        #[serde(default)]
        relation: Option<String>,
    },
}

#[derive(Debug, Deserialize, Default)]
struct Shards {
    #[serde(default)]
    failed: u64,
    #[serde(default)]
    failures: Vec<Value>,
}

impl ParsedPage<'_> {
    /// The hits of this page.
    pub fn hits(&self) -> &[ScrollHit<'_>] {
        &self.hits.hits
    }

    /// The exact number of matching documents (`hits.total` with relation `eq`), when the
    /// search asked for it with `track_total_hits: true`.
    pub fn exact_total(&self) -> Option<u64> {
        match self.hits.total.as_ref()? {
            Total::Number(n) => Some(*n),
            Total::Object { value, relation } => {
                (relation.as_deref().unwrap_or("eq") == "eq").then_some(*value)
            }
        }
    }

    /// Why the page cannot be trusted to be complete, if it cannot.
    pub fn incomplete(&self) -> Option<String> {
        if self.timed_out {
            return Some("the search timed out on some shards".into());
        }
        match &self.shards {
            Some(s) if s.failed > 0 => {
                let first = s
                    .failures
                    .first()
                    .map(|f| f["reason"]["reason"].as_str().unwrap_or("").to_string())
                    .unwrap_or_default();
                Some(format!("{} shard(s) failed: {first}", s.failed))
            }
            _ => None,
        }
    }
}

impl ScrollPage {
    /// Parses the page, borrowing hits from its body.
    pub fn parse(&self) -> Result<ParsedPage<'_>, serde_json::Error> {
        // One SIMD UTF-8 check of the whole page, then a `&str` parse: parsing from bytes
        // re-validated every borrowed `_source` with `str::from_utf8` (a quarter of the CPU).
        let text = simdutf8::basic::from_utf8(&self.body).map_err(|_| {
            <serde_json::Error as serde::de::Error>::custom("the page is not valid UTF-8")
        })?;
        serde_json::from_str(text)
    }
}

impl SearchClient {
    /// Opens a scroll: `POST /<index>/_search?scroll=<keep_alive>` with `body`.
    pub async fn open_scroll(
        &self,
        index: &str,
        body: &Value,
        keep_alive: &str,
    ) -> Result<ScrollPage, SearchError> {
        let path = format!("{}/_search?scroll={keep_alive}", seg(index));
        let r = self
            .request(
                Method::POST,
                &path,
                Some(Body::json(body)),
                &[],
                Resend::Safe,
            )
            .await?;
        Ok(ScrollPage { body: r.body })
    }

    /// The next page of a scroll. Never re-sent after an attempt whose outcome is unknown
    /// (see [`super::Resend::Never`]): the caller redoes the slice instead.
    pub async fn scroll(
        &self,
        scroll_id: &str,
        keep_alive: &str,
    ) -> Result<ScrollPage, SearchError> {
        let body = json!({ "scroll": keep_alive, "scroll_id": scroll_id });
        let r = self
            .request(
                Method::POST,
                "_search/scroll",
                Some(Body::json(&body)),
                &[],
                // The server advances the cursor when it answers: a lost answer re-sent with
                // the same id would skip a page. The reader restarts the slice instead.
                Resend::Never,
            )
            .await?;
        Ok(ScrollPage { body: r.body })
    }

    /// A search without index (`POST /_search`): searches on a point in time, raw. Safe to
    /// re-send: a PIT search with `search_after` returns the same page every time.
    pub async fn search_pit_raw(&self, body: &Value) -> Result<Bytes, SearchError> {
        Ok(self
            .request(
                Method::POST,
                "_search",
                Some(Body::json(body)),
                &[],
                Resend::Safe,
            )
            .await?
            .body)
    }

    /// A plain search (no scroll), raw.
    pub async fn search_raw(&self, index: &str, body: &Value) -> Result<Bytes, SearchError> {
        let path = format!("{}/_search", seg(index));
        Ok(self
            .request(
                Method::POST,
                &path,
                Some(Body::json(body)),
                &[],
                Resend::Safe,
            )
            .await?
            .body)
    }

    /// Releases scroll contexts; ones already gone are fine.
    pub async fn clear_scroll(&self, scroll_ids: &[String]) -> Result<(), SearchError> {
        if scroll_ids.is_empty() {
            return Ok(());
        }
        let body = json!({ "scroll_id": scroll_ids });
        self.request(
            Method::DELETE,
            "_search/scroll",
            Some(Body::json(&body)),
            &[404],
            Resend::Safe,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_keep_raw_bytes() {
        let body = br#"{"_scroll_id":"abc","timed_out":false,"_shards":{"total":1,"failed":0},
            "hits":{"total":{"value":2,"relation":"eq"},"hits":[
            {"_index":"i","_id":"a\/b \u00e9","_score":null,"_routing":"r1","_source":{"n":123456789012345678901234567890,"s":"x"}},
            {"_index":"i","_id":"2","_source":{}}]}}"#;
        let page = ScrollPage {
            body: Bytes::from_static(body),
        };
        let p = page.parse().unwrap();
        assert_eq!(p.scroll_id.as_deref(), Some("abc"));
        assert_eq!(p.hits().len(), 2);
        assert_eq!(p.hits()[0].id.get(), r#""a\/b \u00e9""#);
        assert_eq!(p.hits()[0].routing.unwrap().get(), r#""r1""#);
        assert_eq!(
            p.hits()[0].source.unwrap().get(),
            r#"{"n":123456789012345678901234567890,"s":"x"}"#
        );
        assert!(p.hits()[1].routing.is_none());
        assert!(p.incomplete().is_none());
    }

    #[test]
    fn shard_failures_make_a_page_incomplete() {
        let body = br#"{"_scroll_id":"x","_shards":{"total":2,"failed":1,"failures":[{"reason":{"reason":"boom"}}]},"hits":{"hits":[]}}"#;
        let page = ScrollPage {
            body: Bytes::from_static(body),
        };
        assert!(page.parse().unwrap().incomplete().unwrap().contains("boom"));
    }
}
