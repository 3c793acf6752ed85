//! One attempt of a request: credentials, body (gzip'd when large), SigV4 signature, the gate
//! and the fence (asked right before the send, nothing awaited in between), then the answer:
//! a redirect is never followed, a non-2xx answer is an error unless the caller expects it.

use super::aws::AwsSigner;
use super::client::SearchClient;
use super::error::SearchError;
use super::error::location;
use super::fence::{Admit, is_write};
use super::options::Credentials;
use super::transport::{Body, Response, gzip};
use bytes::Bytes;
use reqwest::{Method, header};
use url::Url;

impl SearchClient {
    /// One attempt.
    pub(crate) async fn request_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Body>,
        ok_statuses: &[u16],
    ) -> Result<Response, SearchError> {
        let url =
            self.base
                .join(path.trim_start_matches('/'))
                .map_err(|e| SearchError::Config {
                    host: self.name.to_string(),
                    detail: format!("bad path {path}: {e}"),
                })?;
        let mut req = self
            .http
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .request(method.clone(), url.clone());
        req = match self.current_credentials().as_ref() {
            Credentials::None => req,
            Credentials::Basic { username, password } => {
                req.basic_auth(username.expose(), Some(password.expose()))
            }
            Credentials::ApiKey(k) => {
                req.header(header::AUTHORIZATION, format!("ApiKey {}", k.expose()))
            }
            Credentials::Bearer(t) => {
                req.header(header::AUTHORIZATION, format!("Bearer {}", t.expose()))
            }
            Credentials::Aws(_) => req,
        };
        let gzipped = body.is_some_and(|b| self.compress && b.bytes.len() > 1024);
        let payload = body.map(|b| {
            if gzipped {
                Bytes::from(gzip(&b.bytes))
            } else {
                b.bytes.clone()
            }
        });
        if let Some(b) = body {
            req = req.header(header::CONTENT_TYPE, b.content_type);
        }
        if let Some(id) = &self.opaque_id {
            req = req.header("x-opaque-id", id.as_ref());
        }
        if gzipped {
            req = req.header(header::CONTENT_ENCODING, "gzip");
        }
        if let Credentials::Aws(signer) = self.current_credentials().as_ref() {
            req = self
                .sign(
                    req,
                    signer,
                    &method,
                    &url,
                    body,
                    gzipped,
                    payload.as_deref(),
                )
                .await?;
        }
        if let Some(p) = payload {
            req = req.body(p);
        }
        let path_only = path.split('?').next().unwrap_or(path);
        if let Some(gate) = &self.gate {
            gate().map_err(|why| SearchError::Config {
                host: self.name.to_string(),
                detail: format!("not sent: {why}"),
            })?;
        }
        if let Some(fence) = &self.fence {
            let write = is_write(&method, path);
            loop {
                match fence.admit(write) {
                    Admit::Send(limit) => {
                        if let Some(t) = limit {
                            req = req.timeout(t);
                        }
                        break;
                    }
                    Admit::Wait(d) => tokio::time::sleep(d).await,
                    Admit::Refuse(why) => {
                        tracing::warn!(host = %self.name, %method, path = path_only, %why, "request not sent");
                        return Err(SearchError::NotSent {
                            host: self.name.to_string(),
                            why,
                        });
                    }
                }
            }
        }
        // Nothing awaits between the fence's answer and the send.
        let sent = std::time::Instant::now();
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(&method, path_only, e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if status.is_redirection() {
            // Never followed (the client's redirect policy is `none`): a 3xx is an error that
            // names where it pointed.
            return Err(SearchError::Redirect {
                host: self.name.to_string(),
                method: method.to_string(),
                path: path_only.to_string(),
                status: status.as_u16(),
                location: self.redact(&location(&url, &headers)),
            });
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(&method, path_only, e))?;
        tracing::debug!(host = %self.name, %method, path = path_only, status = status.as_u16(), bytes = bytes.len(), ms = sent.elapsed().as_millis() as u64, "answered");
        if status.is_success() || ok_statuses.contains(&status.as_u16()) {
            return Ok(Response {
                status,
                headers,
                body: bytes,
                attempts: 1,
            });
        }
        Err(self.api_error(&method, path_only, status, &bytes))
    }

    /// Adds SigV4 headers for this attempt (host, content type and encoding are signed).
    #[allow(clippy::too_many_arguments)]
    async fn sign(
        &self,
        req: reqwest::RequestBuilder,
        signer: &AwsSigner,
        method: &Method,
        url: &Url,
        body: Option<&Body>,
        gzipped: bool,
        payload: Option<&[u8]>,
    ) -> Result<reqwest::RequestBuilder, SearchError> {
        let creds = signer
            .credentials()
            .await
            .map_err(|detail| SearchError::Credentials {
                host: self.name.to_string(),
                detail: self.redact(&detail),
            })?;
        let mut signed = Vec::new();
        if let Some(b) = body {
            signed.push(("content-type", b.content_type));
        }
        if gzipped {
            signed.push(("content-encoding", "gzip"));
        }
        let headers = signer
            .sign(
                &creds,
                method.as_str(),
                url.as_str(),
                &signed,
                payload.unwrap_or_default(),
                std::time::SystemTime::now(),
            )
            .map_err(|detail| SearchError::Config {
                host: self.name.to_string(),
                detail,
            })?;
        Ok(headers
            .into_iter()
            .fold(req, |req, (k, v)| req.header(k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{ClientOptions, Resend, RetryPolicy};
    use std::time::Duration;

    /// `fake_` silent server: accepts connections and never answers (a real server cannot be
    /// made to hang on cue).
    async fn fake_silent_server() -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        url
    }

    #[tokio::test]
    async fn fake_silent_server_timeout_names_the_socket_timeout_and_is_retried_only_if_safe() {
        let url = fake_silent_server().await;
        let mut opts = ClientOptions::new(&url);
        opts.socket_timeout = Duration::from_millis(300);
        opts.retry = RetryPolicy {
            max_attempts: 2,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        };
        let c = SearchClient::new(opts).unwrap();
        let e = c
            .request(Method::GET, "/", None, &[], Resend::Safe)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, SearchError::Timeout { .. }), "{e:?}");
        assert!(e.to_string().contains("timed out after 300ms"), "{e}");
        assert_eq!(c.retries(), 1, "a safe request is retried");
        let e = c
            .request(Method::POST, "_search/scroll", None, &[], Resend::Never)
            .await
            .err()
            .unwrap();
        assert!(e.is_transient() && !e.never_sent(), "{e:?}");
        assert_eq!(c.retries(), 1, "a scroll continuation is never re-sent");
    }

    #[tokio::test]
    async fn a_refused_connection_never_reached_the_server_so_even_a_continuation_is_retried() {
        // Bind then drop: the port refuses connections.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut opts = ClientOptions::new(format!("http://127.0.0.1:{port}"));
        opts.retry = RetryPolicy {
            max_attempts: 3,
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        };
        let c = SearchClient::new(opts).unwrap();
        let e = c
            .request(Method::POST, "_search/scroll", None, &[], Resend::Never)
            .await
            .err()
            .unwrap();
        assert!(e.never_sent(), "{e:?}");
        assert_eq!(c.retries(), 2);
    }
}
