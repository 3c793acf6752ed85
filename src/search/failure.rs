//! How a failed attempt becomes a [`SearchError`]: transport failures by reqwest's error kinds,
//! error answers by their body (never by the status alone), with credentials redacted.

use super::client::SearchClient;
use super::error::{SearchError, parse_error_body};
use reqwest::{Method, StatusCode};

impl SearchClient {
    /// Classifies a transport failure by reqwest's error kinds (and the I/O and TLS errors in
    /// its source chain), never by its message text. Whether the request may have reached the
    /// server decides the variant: `Unreachable` (no connection: never sent) versus
    /// `Interrupted`/`Timeout` (the outcome is unknown).
    pub(super) fn transport_error(
        &self,
        method: &Method,
        path: &str,
        e: reqwest::Error,
    ) -> SearchError {
        let detail = self.redact(&error_chain(&e));
        // The host this attempt actually contacted (redirects are never followed, so this is
        // the cluster's own; named from the request so that it can never be another's).
        let host = e
            .url()
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
            .unwrap_or_else(|| self.name.to_string());
        if e.is_timeout() {
            return SearchError::Timeout {
                host,
                method: method.to_string(),
                path: path.into(),
                timeout: if e.is_connect() {
                    self.connect_timeout
                } else {
                    self.socket_timeout
                },
            };
        }
        if find_cause::<rustls::Error>(&e).is_some() {
            return SearchError::Tls { host, detail };
        }
        if e.is_connect() {
            // A proxy refusing the CONNECT tunnel is a connect error whose only trace is text.
            if detail.contains("proxy authorization required") {
                return SearchError::Unauthorized {
                    host,
                    method: method.to_string(),
                    path: path.into(),
                    status: 407,
                    reason: "the proxy refused the CONNECT: proxy authentication required (check proxy.basicAuthSecretRef)".into(),
                };
            }
            if detail.contains("tunnel error: unsuccessful") {
                return SearchError::Unreachable {
                    host,
                    detail: format!(
                        "{detail} (the proxy refused the CONNECT tunnel: wrong credentials in proxy.basicAuthSecretRef, or a destination it does not allow)"
                    ),
                };
            }
            let lower = detail.to_lowercase();
            if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake")
                || lower.contains("invalid peer")
            {
                return SearchError::Tls { host, detail };
            }
            return SearchError::Unreachable { host, detail };
        }
        let io_broken = find_cause::<std::io::Error>(&e).is_some_and(|io| {
            use std::io::ErrorKind::*;
            matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected
            )
        });
        if e.is_decode() && !io_broken {
            return SearchError::Decode {
                host,
                method: method.to_string(),
                path: path.into(),
                detail,
            };
        }
        // Sent (at least partly), then the connection broke: headers or body lost.
        SearchError::Interrupted {
            host,
            method: method.to_string(),
            path: path.into(),
            detail,
        }
    }

    /// The typed error for a non-2xx answer.
    pub(crate) fn api_error(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        body: &[u8],
    ) -> SearchError {
        let (kind, reason) = parse_error_body(body);
        let reason = self.redact(&reason);
        let host = self.name.to_string();
        let (method, path) = (method.to_string(), path.to_string());
        // A TLS-terminating proxy (nginx) that requires a client certificate answers a missing
        // or rejected one with an HTML 400 ("No required SSL certificate was sent", "The SSL
        // certificate error") where Elasticsearch fails the handshake.
        if status == StatusCode::BAD_REQUEST
            && kind == "error"
            && reason.contains("SSL certificate")
        {
            return SearchError::Tls {
                host,
                detail: format!("the server answered HTTP 400: {reason}"),
            };
        }
        // 401 is authentication. A 403 is a refusal of these credentials (Elasticsearch's
        // `security_exception`, AWS's `{"message"}`/`{"Message"}` bodies, Serverless's
        // `Forbidden`, a proxy's page) unless the body names an index or cluster block
        // (`cluster_block_exception`: a read-only or flood-stage block), which new credentials
        // would not lift.
        let block = kind.ends_with("block_exception") || reason.contains("blocked by: [");
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN && !block {
            return SearchError::Unauthorized {
                host,
                method,
                path,
                status: status.as_u16(),
                reason,
            };
        }
        SearchError::Api {
            host,
            method,
            path,
            status: status.as_u16(),
            kind,
            reason,
        }
    }

    /// Removes every credential value from a text that came from the network.
    pub(super) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.current_credentials().secrets() {
            if s.len() >= 3 {
                out = out.replace(s, "***");
            }
        }
        out
    }

    pub(crate) fn decode_error(
        &self,
        method: &str,
        path: &str,
        detail: impl Into<String>,
    ) -> SearchError {
        SearchError::Decode {
            host: self.name.to_string(),
            method: method.into(),
            path: path.split('?').next().unwrap_or(path).into(),
            detail: detail.into(),
        }
    }
}

/// The error's causes, joined, without the URL (which could carry a path only, but keep
/// messages short); the error itself when it has no cause.
fn error_chain(e: &reqwest::Error) -> String {
    match source_chain(e) {
        s if s.is_empty() => e.to_string(),
        s => s,
    }
}

/// The causes of `e` (its source chain, not `e` itself), each once, joined by `: `.
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// The first error of type `T` in `e`'s source chain (looking inside `io::Error`s too).
fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(inner) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<T>())
        {
            return Some(inner);
        }
        cur = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::ClientOptions;

    /// 401/403 answers are classified by their body: a credentials or permission refusal
    /// (Elasticsearch's `security_exception`, AWS's `message`/`Message`, a proxy's page) is
    /// `Unauthorized`; a 403 `cluster_block_exception` (flood-stage block) is not.
    #[test]
    fn refusals_are_classified_by_their_body_not_the_status_alone() {
        let c = SearchClient::new(ClientOptions::new("http://127.0.0.1:9")).unwrap();
        let classify = |status: u16, body: &str| {
            c.api_error(
                &Method::PUT,
                "/i/_settings",
                StatusCode::from_u16(status).unwrap(),
                body.as_bytes(),
            )
        };
        let block = r#"{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"index [i] blocked by: [FORBIDDEN/12/index read-only / allow delete (api)];"}],"type":"cluster_block_exception","reason":"index [i] blocked by: [FORBIDDEN/12/index read-only / allow delete (api)];"},"status":403}"#;
        let e = classify(403, block);
        assert!(
            matches!(&e, SearchError::Api { status: 403, kind, .. } if kind == "cluster_block_exception"),
            "{e:?}"
        );
        for (status, body, says) in [
            (
                401,
                r#"{"error":{"type":"security_exception","reason":"unable to authenticate user [elastic] for REST request [/]"},"status":401}"#,
                "unable to authenticate",
            ),
            (
                403,
                r#"{"error":{"root_cause":[{"type":"security_exception","reason":"action [indices:admin/settings/update] is unauthorized for user [reader]"}],"type":"security_exception","reason":"action [indices:admin/settings/update] is unauthorized for user [reader]"},"status":403}"#,
                "is unauthorized for user",
            ),
            // AWS OpenSearch Service (SigV4 refusals and resource policies).
            (
                403,
                r#"{"message":"The security token included in the request is invalid."}"#,
                "security token included in the request is invalid",
            ),
            (
                403,
                r#"{"Message":"User: arn:aws:iam::123456789012:user/copier is not authorized to perform: es:ESHttpPut because no identity-based policy allows the es:ESHttpPut action"}"#,
                "is not authorized to perform: es:ESHttpPut",
            ),
            (
                403,
                r#"{"message":"The request signature we calculated does not match the signature you provided."}"#,
                "signature we calculated does not match",
            ),
            // OpenSearch Serverless (data access policy).
            (
                403,
                r#"{"status":403,"request-id":"a1","error":{"reason":"403 Forbidden","type":"Forbidden"}}"#,
                "403 Forbidden",
            ),
            // A proxy in front of the cluster.
            (
                403,
                "<html><head><title>403 Forbidden</title></head><body>nginx</body></html>",
                "403 Forbidden",
            ),
        ] {
            let e = classify(status, body);
            assert!(
                matches!(&e, SearchError::Unauthorized { reason, .. } if reason.contains(says)),
                "{body}: {e:?}"
            );
        }
    }
}
