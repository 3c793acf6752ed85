//! Typed errors of the search client. Messages name the cluster and the request, never a
//! credential.

use reqwest::header;
use std::time::Duration;
use url::Url;

/// What went wrong talking to a search cluster.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SearchError {
    /// DNS, connection refused or reset, or no route.
    #[error("{host} is unreachable: {detail}")]
    Unreachable {
        /// `scheme://host:port` of the cluster.
        host: String,
        /// The connector's explanation.
        detail: String,
    },
    /// The request was sent (at least partly) and then the connection broke before the whole
    /// answer arrived (reset, closed, truncated body): whether the server acted on it is unknown.
    #[error(
        "{method} {path} on {host}: the connection broke before the answer was complete: {detail}"
    )]
    Interrupted {
        /// `scheme://host:port` of the cluster.
        host: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The transport's explanation.
        detail: String,
    },
    /// The TLS handshake failed (unknown CA, name mismatch, expired certificate...).
    #[error("TLS handshake with {host} failed: {detail}")]
    Tls {
        /// `scheme://host:port` of the cluster.
        host: String,
        /// The verifier's reason.
        detail: String,
    },
    /// No response within the socket timeout.
    #[error("{method} {path} on {host} timed out after {timeout:?}")]
    Timeout {
        /// `scheme://host:port` of the cluster.
        host: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// 401, a 403 refusing these credentials (not a 403 index/cluster block: that is `Api`), or a
    /// proxy's 407.
    #[error("{method} {path} on {host} was refused with HTTP {status}: {reason}")]
    Unauthorized {
        /// `scheme://host:port` of the cluster.
        host: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// 401 or 403.
        status: u16,
        /// The cluster's explanation.
        reason: String,
    },
    /// Any other error response.
    #[error("{method} {path} on {host} failed with HTTP {status} {kind}: {reason}")]
    Api {
        /// `scheme://host:port` of the cluster.
        host: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Elasticsearch error type, e.g. `index_not_found_exception`.
        kind: String,
        /// The cluster's explanation.
        reason: String,
    },
    /// A 3xx answer. Redirects are never followed: the request, its body, its custom headers
    /// and its signature would go to a host no policy allowed.
    #[error(
        "{method} {path} on {host} answered HTTP {status} with Location: {location}; redirects are not followed (point the host at the cluster itself)"
    )]
    Redirect {
        /// `scheme://host:port` of the cluster that answered.
        host: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The 3xx status.
        status: u16,
        /// Where it pointed (resolved against the request URL, without user info), or
        /// `(none)`.
        location: String,
    },
    /// A response that is not what the API promises.
    #[error("unexpected response to {method} {path} from {host}: {detail}")]
    Decode {
        /// `scheme://host:port` of the cluster.
        host: String,
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// What did not parse.
        detail: String,
    },
    /// AWS credentials could not be obtained (no credentials in the chain, STS or the
    /// container credentials endpoint refused or is unreachable).
    #[error("no usable AWS credentials for {host}: {detail}")]
    Credentials {
        /// `scheme://host:port` of the cluster the credentials were for.
        host: String,
        /// Which provider failed and why.
        detail: String,
    },
    /// This process may not send the request (leader election: its leadership budget is spent,
    /// so another replica may be acting on the clusters by now). Nothing was sent.
    #[error("not sent to {host}: {why}")]
    NotSent {
        /// The configured host.
        host: String,
        /// Why the fence refused it.
        why: String,
    },
    /// The endpoint configuration cannot be used (bad CA bundle, bad client certificate...).
    #[error("invalid connection settings for {host}: {detail}")]
    Config {
        /// The configured host.
        host: String,
        /// What is wrong.
        detail: String,
    },
}

impl SearchError {
    /// HTTP status of an error response, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            SearchError::Unauthorized { status, .. }
            | SearchError::Api { status, .. }
            | SearchError::Redirect { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Errors worth retrying: overload (429), gateway errors (502/503/504), timeouts,
    /// connection failures and connections broken mid-answer.
    pub fn is_transient(&self) -> bool {
        match self {
            SearchError::Unreachable { .. }
            | SearchError::Timeout { .. }
            | SearchError::Interrupted { .. } => true,
            SearchError::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// True when the request provably never reached the server (no connection could be
    /// made), so even a request that must not be repeated may be sent again.
    pub fn never_sent(&self) -> bool {
        matches!(self, SearchError::Unreachable { .. })
    }

    /// The scroll context is gone: its keep-alive expired or the source restarted
    /// (`search_context_missing_exception`, a 404 on `_search/scroll`).
    pub fn is_scroll_expired(&self) -> bool {
        match self {
            SearchError::Api {
                status,
                kind,
                reason,
                path,
                ..
            } => {
                kind == "search_context_missing_exception"
                    || reason.contains("search_context_missing_exception")
                    || reason.contains("No search context found")
                    || (*status == 404
                        && path.contains("_search")
                        && kind != "index_not_found_exception")
            }
            _ => false,
        }
    }

    /// The Elasticsearch error type, e.g. `search_context_missing_exception`.
    pub fn kind(&self) -> Option<&str> {
        match self {
            SearchError::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// The `Location` of a 3xx answer to a request for `url`, resolved against it (a relative
/// one names the same host), without user info; `(none)` when absent or unreadable.
pub(crate) fn location(url: &Url, headers: &header::HeaderMap) -> String {
    let Some(raw) = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return "(none)".into();
    };
    match url.join(raw) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => raw.chars().take(200).collect(),
    }
}

/// Extracts `(type, reason)` from an Elasticsearch error body, whatever its shape.
pub(crate) fn parse_error_body(body: &[u8]) -> (String, String) {
    let truncate = |s: String| {
        if s.len() > 500 {
            format!("{}…", &s[..s.floor_char_boundary(500)])
        } else {
            s
        }
    };
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let err = &v["error"];
            if let Some(s) = err.as_str() {
                return ("error".into(), truncate(s.to_string()));
            }
            // AWS front ends (SigV4 refusals, API Gateway) answer `{"message": "…"}`, resource
            // policies `{"Message": "User: … is not authorized to perform: …"}`.
            if err.is_null()
                && let Some(m) = v["message"].as_str().or(v["Message"].as_str())
            {
                return ("error".into(), truncate(m.to_string()));
            }
            let kind = err["type"].as_str().unwrap_or("error").to_string();
            let mut reason = err["reason"].as_str().unwrap_or("").to_string();
            if let Some(cause) = err["caused_by"]["reason"].as_str() {
                reason = format!("{reason} (caused by: {cause})");
            }
            if reason.is_empty() {
                reason = v.to_string();
            }
            (kind, truncate(reason))
        }
        Err(_) => ("error".into(), truncate(plain_text_reason(body))),
    }
}

/// A body that is not JSON (often a proxy's HTML error page) as one line: the HTML `<title>` if
/// there is one, else the text with its whitespace collapsed.
fn plain_text_reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let picked = match (lower.find("<title>"), lower.find("</title>")) {
        (Some(a), Some(b)) if a + 7 <= b => &text[a + 7..b],
        _ => &text[..],
    };
    picked.split_whitespace().collect::<Vec<_>>().join(" ")
}
