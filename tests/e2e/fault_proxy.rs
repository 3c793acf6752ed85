//! `fake_proxy`: an in-process HTTP proxy in front of a real server that injects ONE fault into
//! the n-th request matching a rule — faults a real server cannot be made to produce on cue:
//! the answer lost after the server acted (a load balancer timeout, a reset), a gateway error
//! without forwarding, a connection reset in the middle of a page's body, or a destination that
//! acknowledges a bulk request it never applied. Everything else is forwarded untouched.

use crate::harness::fake_http;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncWriteExt, BufReader};

/// What happens to the chosen request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded (the server acts on it), then the connection is dropped before any answer.
    LostAnswer,
    /// Answered with this status (502/503/504) without forwarding.
    Gateway(u16),
    /// Forwarded; the answer's head and half its body are sent, then the connection is reset.
    ResetMidBody,
    /// Answered `200 {"errors":false}` with one `created` item per action, without forwarding
    /// (a destination that lies convincingly).
    Swallow,
    /// Another client sends the same request just before it: forwarded twice, the second
    /// answer returned (for `PUT /<index>`: someone else created the index between the
    /// copier's existence check and its own creation).
    Concurrent,
}

impl Fault {
    /// A short label for reports.
    pub fn label(self) -> String {
        match self {
            Fault::LostAnswer => "lost answer".into(),
            Fault::Gateway(s) => format!("{s} from a gateway"),
            Fault::ResetMidBody => "reset mid-body".into(),
            Fault::Swallow => "swallowed bulk".into(),
            Fault::Concurrent => "the same request from another client just before".into(),
        }
    }
}

/// A predicate on a request's path (with query) and body.
pub type Matcher = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Which request to hit: the `nth` (from 1) request with this method whose path and body
/// satisfy `matches`.
#[derive(Clone)]
pub struct Rule {
    /// HTTP method.
    pub method: &'static str,
    /// Path (with query) and body predicate.
    pub matches: Matcher,
    /// Which matching occurrence, from 1.
    pub nth: usize,
    /// The fault.
    pub fault: Fault,
}

impl Rule {
    /// A rule on requests whose path contains `path` (and whose body contains `body`, if
    /// given).
    pub fn new(method: &'static str, path: impl Into<String>, body: Option<&'static str>) -> Self {
        let path = path.into();
        Rule {
            method,
            matches: Arc::new(move |p, b| {
                p.contains(path.as_str()) && body.is_none_or(|s| b.contains(s))
            }),
            nth: 1,
            fault: Fault::LostAnswer,
        }
    }

    /// The same rule for occurrence `nth` with `fault`.
    pub fn at(&self, nth: usize, fault: Fault) -> Self {
        Rule {
            nth,
            fault,
            ..self.clone()
        }
    }
}

/// A running fault proxy.
pub struct FaultProxy {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// How many times the fault was injected (0 or 1).
    pub fired: Arc<AtomicUsize>,
}

/// Starts a proxy in front of `upstream` applying `rule`.
pub async fn start(upstream: &str, rule: Rule) -> FaultProxy {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let fired = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let (f, upstream, rule) = (fired.clone(), upstream.to_string(), Arc::new(rule));
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (up, f, seen, rule) = (upstream.clone(), f.clone(), seen.clone(), rule.clone());
            tokio::spawn(async move { serve(s, up, f, seen, rule).await });
        }
    });
    FaultProxy { url, fired }
}

async fn serve(
    s: tokio::net::TcpStream,
    upstream: String,
    fired: Arc<AtomicUsize>,
    seen: Arc<AtomicUsize>,
    rule: Arc<Rule>,
) {
    let mut s = BufReader::new(s);
    while let Some(req) = fake_http::read(&mut s).await {
        let body = String::from_utf8_lossy(&req.body);
        let hit = req.method == rule.method
            && (rule.matches)(&req.path, &body)
            && seen.fetch_add(1, Ordering::SeqCst) + 1 == rule.nth;
        if !hit {
            // An upstream that breaks (another proxy of a chain injecting its fault) breaks
            // this connection too.
            let Some((status, out)) = forward(&upstream, &req).await else {
                return;
            };
            fake_http::respond(&mut s, status, &out).await;
            continue;
        }
        fired.fetch_add(1, Ordering::SeqCst);
        match rule.fault {
            Fault::LostAnswer => {
                let _ = forward(&upstream, &req).await;
                return; // the server acted; the answer is lost with the connection
            }
            Fault::Gateway(status) => {
                let msg = format!("<html><head><title>{status} Bad Gateway</title></head></html>");
                fake_http::respond(&mut s, status, msg.as_bytes()).await;
            }
            Fault::ResetMidBody => {
                let Some((status, out)) = forward(&upstream, &req).await else {
                    return;
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    out.len()
                );
                let w = s.get_mut();
                let _ = w.write_all(head.as_bytes()).await;
                let _ = w.write_all(&out[..out.len() / 2]).await;
                let _ = w.flush().await;
                let _ = w.set_zero_linger();
                return; // RST: the page is cut in the middle
            }
            Fault::Swallow => {
                let answer = swallowed(&body);
                fake_http::respond(&mut s, 200, answer.as_bytes()).await;
            }
            Fault::Concurrent => {
                let _ = forward(&upstream, &req).await;
                let Some((status, out)) = forward(&upstream, &req).await else {
                    return;
                };
                fake_http::respond(&mut s, status, &out).await;
            }
        }
    }
}

/// A `_bulk` answer that claims every action of `body` created its document.
fn swallowed(body: &str) -> String {
    let mut items = Vec::new();
    let mut lines = body.lines().filter(|l| !l.trim().is_empty());
    while let Some(line) = lines.next() {
        let action: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let Some((op, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        if op != "delete" {
            lines.next(); // the document (or the update's body)
        }
        items.push(serde_json::json!({ op.clone(): {
            "_index": meta["_index"], "_id": meta["_id"], "status": 201, "result": "created",
        }}));
    }
    serde_json::json!({"took": 1, "errors": false, "items": items}).to_string()
}

/// Sends `req` upstream; `None` when the upstream connection broke.
async fn forward(upstream: &str, req: &fake_http::Request) -> Option<(u16, Vec<u8>)> {
    let m = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut r = crate::harness::http().request(m, format!("{upstream}{}", req.path));
    if !req.body.is_empty() {
        r = r
            .header("content-type", req.content_type.clone())
            .body(req.body.clone());
    }
    let resp = r.send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.bytes().await.ok()?.to_vec()))
}
