//! Fencing: checks a client runs right before each request leaves, so that a process that lost
//! its leadership or its slice Lease sends nothing more, and which requests count as writes.

use reqwest::Method;
use std::sync::Arc;
use std::time::Duration;

/// What a [`Fence`] allows for one request about to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Send it now; `Some(t)`: it must be over within `t` (its whole exchange is bounded by
    /// that timeout, so it cannot land after the budget it was admitted under).
    Send(Option<Duration>),
    /// Not yet: ask again after this long (the budget left is too short for the request's
    /// timeout, and a renewal may extend it).
    Wait(Duration),
    /// Never: nothing may be sent any more (the reason).
    Refuse(String),
}

/// The fence of a process that may act on the clusters only while it holds a budget (leader
/// election). Asked right before each request leaves, after any wait: a process paused
/// anywhere before that point sends nothing once it runs again with its budget spent.
pub trait Fence: Send + Sync + std::fmt::Debug {
    /// Whether a request may be sent now; `write`: it changes the cluster (see
    /// [`is_write`]), so it is sent only when it can be over before the budget ends.
    fn admit(&self, write: bool) -> Admit;
}

/// Whether a request changes the cluster, judged by method and path: `GET` and `HEAD` never
/// do, nor do searches, counts, multi-gets and the opening or closing of a scroll or point in
/// time; everything else (bulk, delete, index creation and deletion, settings, mappings,
/// aliases, refresh, tasks started or cancelled) does.
pub fn is_write(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return false;
    }
    let p = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    let last = p.rsplit('/').next().unwrap_or("");
    let reads = [
        "_search",
        "_count",
        "_msearch",
        "_mget",
        "_field_caps",
        "_pit",
        "point_in_time",
        "scroll",
    ];
    if method == Method::POST && reads.contains(&last) {
        return false;
    }
    // Closing a scroll or point in time only frees the source's resources.
    if method == Method::DELETE && ["_pit", "point_in_time", "scroll"].contains(&last) {
        return false;
    }
    true
}

/// A check run before every request (see [`SearchClient::with_gate`]).
pub type Gate = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_told_from_reads_by_method_and_path() {
        for (m, p) in [
            (Method::POST, "_bulk"),
            (Method::POST, "_bulk?pipeline=x"),
            (Method::POST, "_aliases"),
            (Method::PUT, "idx"),
            (Method::PUT, "idx/_settings"),
            (Method::DELETE, "idx"),
            (Method::POST, "idx/_refresh"),
            (Method::POST, "_reindex?wait_for_completion=false"),
            (Method::POST, "_tasks/n:1/_cancel"),
        ] {
            assert!(is_write(&m, p), "{m} {p}");
        }
        for (m, p) in [
            (Method::GET, "idx/_settings"),
            (Method::HEAD, "idx"),
            (Method::POST, "idx/_search?scroll=5m"),
            (Method::POST, "_search/scroll"),
            (Method::DELETE, "_search/scroll"),
            (Method::POST, "idx/_pit?keep_alive=1m"),
            (Method::DELETE, "_pit"),
            (Method::POST, "idx/_search/point_in_time?keep_alive=1m"),
            (Method::DELETE, "_search/point_in_time"),
            (Method::POST, "idx/_count"),
        ] {
            assert!(!is_write(&m, p), "{m} {p}");
        }
    }
}
