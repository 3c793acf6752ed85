//! Turns scroll hits into `_bulk` bodies: action line + raw `_source`, no DOM in between.

use super::WriteOp;
use crate::search::ScrollHit;
use bytes::{BufMut, Bytes, BytesMut};

/// One bulk request body and where each of its items starts (for partial resends).
#[derive(Clone, Debug)]
pub struct BulkBatch {
    /// NDJSON body.
    pub body: Bytes,
    /// Byte offset of each item's action line in `body`.
    pub starts: Vec<usize>,
    /// The slice that read these documents.
    pub slice: u32,
    /// The slice's pass (incremented when a slice starts over).
    pub epoch: u32,
    /// The page of the slice these documents came from (see [`super::CopyStats::durable_checkpoint`]).
    pub page: u64,
}

impl BulkBatch {
    /// Number of operations.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when there is no operation.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The bytes of item `i` (action line and source line).
    pub fn item(&self, i: usize) -> Bytes {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.body.len());
        self.body.slice(self.starts[i]..end)
    }

    /// A new batch holding only the given items, in order.
    pub fn subset(&self, positions: &[usize]) -> BulkBatch {
        let mut body = BytesMut::new();
        let mut starts = Vec::with_capacity(positions.len());
        for &p in positions {
            starts.push(body.len());
            body.extend_from_slice(&self.item(p));
        }
        BulkBatch {
            body: body.freeze(),
            starts,
            slice: self.slice,
            epoch: self.epoch,
            page: self.page,
        }
    }
}

/// Builds bulk bodies for one destination, reusing one buffer.
pub struct BatchBuilder {
    /// `{"index":{"_index":"dest"` (or `create`), with `_type` when needed.
    action_prefix: Vec<u8>,
    max_bytes: usize,
    buf: BytesMut,
    starts: Vec<usize>,
    /// Slice and pass stamped on the batches.
    pub slice: u32,
    /// The slice's pass (see [`BulkBatch::epoch`]).
    pub epoch: u32,
}

/// A hit that cannot be copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncopyable {
    /// The hit's `_id`, decoded.
    pub id: String,
    /// Why.
    pub reason: String,
}

impl BatchBuilder {
    /// A builder for `op` into `index`; bodies are cut at `max_bytes`.
    pub fn new(op: WriteOp, index: &str, doc_type: Option<&str>, max_bytes: usize) -> Self {
        let op = match op {
            WriteOp::Index => "index",
            WriteOp::Create => "create",
        };
        let mut action_prefix = format!("{{\"{op}\":{{\"_index\":").into_bytes();
        serde_json::to_writer(&mut action_prefix, index).expect("a string serializes");
        if let Some(t) = doc_type {
            action_prefix.extend_from_slice(b",\"_type\":");
            serde_json::to_writer(&mut action_prefix, t).expect("a string serializes");
        }
        BatchBuilder {
            action_prefix,
            max_bytes,
            buf: BytesMut::with_capacity(max_bytes.min(64 << 20)),
            starts: Vec::new(),
            slice: 0,
            epoch: 0,
        }
    }

    /// Appends a page's hits, returning the batches that filled up and the hits that could not
    /// be encoded. Call [`BatchBuilder::finish`] at the end of the page.
    pub fn push_hits<'a>(
        &mut self,
        hits: impl IntoIterator<Item = &'a ScrollHit<'a>>,
        out: &mut Vec<BulkBatch>,
        bad: &mut Vec<Uncopyable>,
    ) {
        for hit in hits {
            let Some(source) = hit.source else {
                bad.push(Uncopyable {
                    id: decode_id(hit.id.get()),
                    reason: "the hit has no _source (disabled or excluded)".into(),
                });
                continue;
            };
            let source = source.get().as_bytes();
            let item_len = self.action_prefix.len()
                + hit.id.get().len()
                + hit.routing.map_or(0, |r| r.get().len() + 12)
                + source.len()
                + 16;
            if !self.starts.is_empty() && self.buf.len() + item_len > self.max_bytes {
                out.push(self.take());
            }
            self.starts.push(self.buf.len());
            self.buf.reserve(item_len);
            self.buf.put_slice(&self.action_prefix);
            self.buf.put_slice(b",\"_id\":");
            self.buf.put_slice(hit.id.get().as_bytes());
            if let Some(r) = hit.routing {
                self.buf.put_slice(b",\"routing\":");
                self.buf.put_slice(r.get().as_bytes());
            }
            self.buf.put_slice(b"}}\n");
            put_single_line(&mut self.buf, source);
            self.buf.put_u8(b'\n');
        }
    }

    /// The batch in progress, if it has items.
    pub fn finish(&mut self) -> Option<BulkBatch> {
        (!self.starts.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> BulkBatch {
        let body = self.buf.split().freeze();
        BulkBatch {
            body,
            starts: std::mem::take(&mut self.starts),
            slice: self.slice,
            epoch: self.epoch,
            page: 0,
        }
    }
}

/// Writes a JSON text on one line. A raw CR or LF can only be insignificant whitespace in JSON
/// (inside strings they are escaped), so replacing it with a space keeps the document identical.
fn put_single_line(buf: &mut BytesMut, json: &[u8]) {
    if memchr::memchr2(b'\n', b'\r', json).is_none() {
        buf.put_slice(json);
        return;
    }
    let start = buf.len();
    buf.put_slice(json);
    for b in &mut buf[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
}

/// Decodes a raw JSON string id for messages.
pub fn decode_id(raw: &str) -> String {
    serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::ScrollPage;

    fn page(json: &'static str) -> ScrollPage {
        ScrollPage {
            body: Bytes::from_static(json.as_bytes()),
        }
    }

    #[test]
    fn builds_action_and_raw_source_lines() {
        let p = page(
            r#"{"hits":{"hits":[{"_id":"a\"b","_routing":"r","_source":{"big":123456789012345678901234567890}},{"_id":"x","_source":{
 "pretty": true
}}]}}"#,
        );
        let parsed = p.parse().unwrap();
        let mut b = BatchBuilder::new(WriteOp::Index, "dest", None, 1 << 20);
        let (mut out, mut bad) = (vec![], vec![]);
        b.push_hits(parsed.hits(), &mut out, &mut bad);
        let batch = b.finish().unwrap();
        assert!(out.is_empty() && bad.is_empty());
        let text = std::str::from_utf8(&batch.body).unwrap();
        assert_eq!(
            text,
            "{\"index\":{\"_index\":\"dest\",\"_id\":\"a\\\"b\",\"routing\":\"r\"}}\n{\"big\":123456789012345678901234567890}\n{\"index\":{\"_index\":\"dest\",\"_id\":\"x\"}}\n{  \"pretty\": true }\n"
        );
        assert_eq!(batch.len(), 2);
        assert_eq!(&batch.subset(&[1]).body[..], &batch.item(1)[..]);
    }

    #[test]
    fn splits_at_the_byte_cap_and_sends_a_huge_document_alone() {
        let p = page(
            r#"{"hits":{"hits":[{"_id":"1","_source":{"a":"xxxxxxxxxx"}},{"_id":"2","_source":{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}},{"_id":"3","_source":{}}]}}"#,
        );
        let parsed = p.parse().unwrap();
        let mut b = BatchBuilder::new(WriteOp::Create, "d", Some("_doc"), 80);
        let (mut out, mut bad) = (vec![], vec![]);
        b.push_hits(parsed.hits(), &mut out, &mut bad);
        out.extend(b.finish());
        assert_eq!(
            out.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
        assert!(
            std::str::from_utf8(&out[0].body)
                .unwrap()
                .starts_with("{\"create\":{\"_index\":\"d\",\"_type\":\"_doc\",\"_id\":\"1\"}}")
        );
    }

    #[test]
    fn a_hit_without_source_is_reported() {
        let p = page(r#"{"hits":{"hits":[{"_id":"n\u00e9"}]}}"#);
        let parsed = p.parse().unwrap();
        let mut b = BatchBuilder::new(WriteOp::Index, "d", None, 100);
        let (mut out, mut bad) = (vec![], vec![]);
        b.push_hits(parsed.hits(), &mut out, &mut bad);
        assert!(b.finish().is_none());
        assert_eq!(bad[0].id, "né");
    }
}
