//! The HTTP layer under the client: the reqwest client built from the options, request bodies
//! (gzip'd when large) and the target of a refused redirect.

use super::error::SearchError;
use super::options::ClientOptions;
use bytes::Bytes;
use reqwest::{StatusCode, header};
use std::time::Duration;

/// The HTTP client for `opts`: timeouts, TLS material, proxy.
pub(super) fn build_http(opts: &ClientOptions) -> Result<reqwest::Client, SearchError> {
    let config = |detail: String| SearchError::Config {
        host: opts.host.clone(),
        detail,
    };
    let mut builder = reqwest::Client::builder()
        // A redirect would carry the request, its body, the custom headers and a SigV4
        // signature to a host no policy allowed (and an IP literal past the resolver's
        // link-local check): a 3xx is returned as it is and becomes an error.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(opts.user_agent.clone())
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.socket_timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_nodelay(true)
        .no_proxy();
    if !opts.compress_responses {
        builder = builder.no_gzip();
    }
    if let Some(allowed) = &opts.link_local_allowed {
        builder = builder.dns_resolver(std::sync::Arc::new(super::dns::NoLinkLocal {
            allowed: allowed.clone(),
        }));
    }
    if !opts.headers.is_empty() {
        let mut map = header::HeaderMap::new();
        for (k, v) in &opts.headers {
            let name = header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| config(format!("`{k}` is not an HTTP header name")))?;
            let value = header::HeaderValue::from_str(v)
                .map_err(|_| config(format!("the value of header `{k}` is not valid")))?;
            map.insert(name, value);
        }
        builder = builder.default_headers(map);
    }
    if let Some(pem) = &opts.tls.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| config(format!("CA bundle is not valid PEM: {}", e.without_url())))?;
        if certs.is_empty() {
            return Err(config("CA bundle holds no certificate".into()));
        }
        builder = builder.tls_certs_only(certs);
    }
    if let Some(id) = &opts.tls.client_identity_pem {
        let identity = reqwest::Identity::from_pem(id.expose().as_bytes())
            .map_err(|_| config("client certificate/key is not a valid PEM pair".into()))?;
        builder = builder.identity(identity);
    }
    if opts.tls.insecure_skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    } else if let Some(name) = &opts.tls.server_name {
        builder = builder.tls_backend_preconfigured(
            super::tls::config_for_server_name(&opts.tls, name).map_err(config)?,
        );
    }
    if let Some(p) = &opts.proxy {
        let mut proxy = reqwest::Proxy::all(&p.url)
            .map_err(|e| config(format!("bad proxy URL: {}", e.without_url())))?;
        if let Some((user, password)) = &p.basic_auth {
            proxy = proxy.basic_auth(user.expose(), password.expose());
        }
        builder = builder.proxy(proxy);
    }
    builder.build().map_err(|e| config(e.to_string()))
}

/// A request body with its content type; cloning shares the bytes.
#[derive(Clone)]
pub(crate) struct Body {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

impl Body {
    pub fn json(v: &serde_json::Value) -> Body {
        Body {
            bytes: Bytes::from(serde_json::to_vec(v).expect("JSON value serializes")),
            content_type: "application/json",
        }
    }
    pub fn ndjson(bytes: Bytes) -> Body {
        Body {
            bytes,
            content_type: "application/x-ndjson",
        }
    }
}

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// A successful response: status and body bytes.
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Bytes,
    /// Attempts it took, the successful one included (> 1: the request was sent again after
    /// an attempt whose outcome is unknown, so it may have taken effect twice).
    pub attempts: u32,
}
