//! `SearchClient`: one configured connection to one cluster, with retries and error mapping.

use super::aws::AwsSigner;
use super::error::SearchError;
use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::{Method, StatusCode, header};
use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

/// A credential value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// How requests authenticate.
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: SecretString,
        /// Password.
        password: SecretString,
    },
    /// `Authorization: ApiKey <key>`.
    ApiKey(SecretString),
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// AWS SigV4: every attempt is signed anew (fresh date, current credentials).
    Aws(Arc<AwsSigner>),
}

impl Credentials {
    /// Whether both hold the same mode and secret values (AWS signers: the same fixed keys, or
    /// both the provider chain).
    pub fn same_secrets(&self, other: &Credentials) -> bool {
        match (self, other) {
            (Credentials::None, Credentials::None) => true,
            (
                Credentials::Basic {
                    username: a,
                    password: b,
                },
                Credentials::Basic {
                    username: c,
                    password: d,
                },
            ) => a == c && b == d,
            (Credentials::ApiKey(a), Credentials::ApiKey(b))
            | (Credentials::Bearer(a), Credentials::Bearer(b)) => a == b,
            (Credentials::Aws(a), Credentials::Aws(b)) => Arc::ptr_eq(a, b) || a.same_as(b),
            _ => false,
        }
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::None => vec![],
            Credentials::Basic { username, password } => vec![username.expose(), password.expose()],
            Credentials::ApiKey(k) | Credentials::Bearer(k) => vec![k.expose()],
            Credentials::Aws(s) => s.secrets(),
        }
    }
}

/// TLS material for one endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsOptions {
    /// PEM CA bundle that replaces the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain followed by its private key (mTLS).
    pub client_identity_pem: Option<SecretString>,
    /// Accept any certificate.
    pub insecure_skip_verify: bool,
    /// Verify the certificate for this DNS name instead of the URL's host.
    pub server_name: Option<String>,
}

/// An explicit HTTP proxy.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// `http://host:port`.
    pub url: String,
    /// `Proxy-Authorization: Basic` user name and password.
    pub basic_auth: Option<(SecretString, SecretString)>,
}

/// Retries of transient failures (429, 502/503/504, timeouts, dropped connections).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// Upper bound of the exponential backoff.
    pub max_backoff: Duration,
    /// First backoff delay.
    pub min_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_backoff: Duration::from_secs(60),
            min_backoff: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The backoff between attempts: exponential with jitter, capped at `max_backoff`. Every
    /// retry loop of the project uses this one mechanism (backon).
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
    }

    /// The delays between attempts (see [`RetryPolicy::backoff`]).
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        self.backoff().build()
    }
}

/// Whether a request may be sent again when an attempt's outcome is unknown (the connection
/// broke or timed out after the request left, or a gateway answered 502/503/504 for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Sending it twice has the effect of sending it once: reads of a fixed snapshot (a PIT
    /// search with `search_after`, opening a scroll — a new context each time), writes by
    /// explicit id (`_bulk` index/create), refresh, settings, count.
    Safe,
    /// The server may have acted on it and moved on: a scroll continuation advances the
    /// server's cursor, so re-sending the same id would skip a page. Only a failure that proves
    /// the request never reached the server (no connection) is retried; any other failure goes
    /// back to the caller, which must redo its work from a known point.
    Never,
}

impl Resend {
    /// Whether `e`, from an attempt of a request of this kind, may be retried.
    pub fn may_retry(self, e: &SearchError) -> bool {
        match self {
            Resend::Safe => e.is_transient(),
            Resend::Never => e.never_sent(),
        }
    }
}

/// Everything needed to build a [`SearchClient`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// `scheme://host[:port]`.
    pub host: String,
    /// Prefix for every path, for clusters behind a reverse proxy.
    pub path_prefix: Option<String>,
    /// Authentication.
    pub credentials: Credentials,
    /// TLS material.
    pub tls: TlsOptions,
    /// The proxy to use (environment proxies are always ignored).
    pub proxy: Option<ProxyOptions>,
    /// Read timeout of each request.
    pub socket_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Gzip request bodies.
    pub compress_requests: bool,
    /// Send `Accept-Encoding: gzip` and inflate responses.
    pub compress_responses: bool,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// `User-Agent` header.
    pub user_agent: String,
    /// `Some(allowed)`: resolved link-local/metadata addresses are dropped unless in `allowed`
    /// (the operator); `None`: the system resolver as it is (the CLI).
    pub link_local_allowed: Option<Vec<std::net::IpAddr>>,
    /// Extra headers sent with every request.
    pub headers: Vec<(String, String)>,
}

impl ClientOptions {
    /// Options with defaults for everything but the host.
    pub fn new(host: impl Into<String>) -> Self {
        ClientOptions {
            host: host.into(),
            path_prefix: None,
            credentials: Credentials::None,
            tls: TlsOptions::default(),
            proxy: None,
            socket_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            compress_requests: false,
            compress_responses: true,
            retry: RetryPolicy::default(),
            user_agent: format!("remote-reindex/{}", env!("CARGO_PKG_VERSION")),
            link_local_allowed: None,
            headers: Vec::new(),
        }
    }
}

/// Requests retried by every client of this process (for the operator's metrics).
static REQUEST_RETRIES: AtomicU64 = AtomicU64::new(0);

/// How many requests all clients of this process retried so far.
pub fn request_retries_total() -> u64 {
    REQUEST_RETRIES.load(Ordering::Relaxed)
}

/// A client for one cluster. Cheap to clone (shares the connection pool and counters).
#[derive(Clone)]
pub struct SearchClient {
    /// Rebuilt when the TLS material in its Secrets rotates.
    http: Arc<std::sync::RwLock<reqwest::Client>>,
    /// What the HTTP client was built from (credentials aside), to rebuild it.
    build: Arc<std::sync::Mutex<ClientOptions>>,
    base: Url,
    /// `scheme://host:port`, used in messages.
    name: Arc<str>,
    /// Swappable so that rotated Secrets take effect on the next request.
    credentials: Arc<std::sync::RwLock<Arc<Credentials>>>,
    compress: bool,
    retry: RetryPolicy,
    retries: Arc<AtomicU64>,
    /// Read timeout of each request (for messages).
    socket_timeout: Duration,
    /// Connect timeout (for messages).
    connect_timeout: Duration,
    /// The mapping type of indices on Elasticsearch 6.x (`_doc`), `None` on typeless clusters.
    mapping_type: Option<Arc<str>>,
    /// `X-Opaque-Id` sent with every request (scale-out: `<identity>/<slice>`), so the
    /// cluster's tasks, slow logs and any proxy tell which process wrote what.
    opaque_id: Option<Arc<str>>,
    /// Checked immediately before every request is sent (scale-out's fence: the slice Lease's
    /// budget); `Err` fails the request unsent.
    gate: Option<Gate>,
    /// Leader election's fence, asked immediately before every request is sent (see
    /// [`Fence`]).
    fence: Option<Arc<dyn Fence>>,
}

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

impl std::fmt::Debug for SearchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchClient")
            .field("host", &self.name)
            .finish_non_exhaustive()
    }
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

impl SearchClient {
    /// Builds a client; fails on an unusable URL, CA bundle or client certificate.
    pub fn new(opts: ClientOptions) -> Result<Self, SearchError> {
        super::install_crypto_provider();
        let config = |detail: String| SearchError::Config {
            host: opts.host.clone(),
            detail,
        };
        let mut base = Url::parse(&opts.host).map_err(|e| config(format!("bad URL: {e}")))?;
        let prefix = opts
            .path_prefix
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        base.set_path(&format!("{prefix}/"));
        let name: Arc<str> = {
            let mut u = base.clone();
            u.set_path("");
            u.as_str().trim_end_matches('/').into()
        };
        let http = build_http(&opts)?;
        let mut build = opts.clone();
        build.credentials = Credentials::None;
        Ok(SearchClient {
            http: Arc::new(std::sync::RwLock::new(http)),
            build: Arc::new(std::sync::Mutex::new(build)),
            base,
            name,
            credentials: Arc::new(std::sync::RwLock::new(Arc::new(opts.credentials))),
            compress: opts.compress_requests,
            retry: opts.retry,
            retries: Arc::new(AtomicU64::new(0)),
            socket_timeout: opts.socket_timeout,
            connect_timeout: opts.connect_timeout,
            mapping_type: None,
            opaque_id: None,
            gate: None,
            fence: None,
        })
    }

    /// The same client (shared pool and counters) with another retry policy; e.g. a single
    /// attempt for pre-flight probes, whose caller has its own deadline.
    pub fn with_retry(&self, retry: RetryPolicy) -> SearchClient {
        SearchClient {
            retry,
            ..self.clone()
        }
    }

    /// This client, for a cluster whose indices have one mapping type (Elasticsearch 6.x,
    /// `_doc`): index creation nests the mappings under it, `_meta` is written to the typed
    /// mapping and [`SearchClient::describe_index`] returns the mappings without it.
    pub fn with_mapping_type(&self, mapping_type: &str) -> SearchClient {
        SearchClient {
            mapping_type: Some(mapping_type.into()),
            ..self.clone()
        }
    }

    /// This client (sharing its pool and counters) sending `X-Opaque-Id: id` with every request.
    pub fn with_opaque_id(&self, id: &str) -> SearchClient {
        SearchClient {
            opaque_id: Some(id.into()),
            ..self.clone()
        }
    }

    /// This client refusing to send any request while `gate` answers `Err` (a configuration
    /// error naming the reason): the last check before the bytes leave, so that a process
    /// paused anywhere before it sends nothing once it resumes.
    pub fn with_gate(&self, gate: Gate) -> SearchClient {
        SearchClient {
            gate: Some(gate),
            ..self.clone()
        }
    }

    /// This client asking `fence` right before every request leaves (leader election): a
    /// refused request fails unsent with [`SearchError::NotSent`]; a write waits while the
    /// fence says so and is bounded by the timeout it grants.
    pub fn with_fence(&self, fence: Arc<dyn Fence>) -> SearchClient {
        SearchClient {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// This client without the leader election fence (scale-out workers run on every replica,
    /// fenced by their slice Leases instead).
    pub fn without_fence(&self) -> SearchClient {
        SearchClient {
            fence: None,
            ..self.clone()
        }
    }

    /// The mapping type set with [`SearchClient::with_mapping_type`].
    pub fn mapping_type(&self) -> Option<&str> {
        self.mapping_type.as_deref()
    }

    /// Rebuilds the HTTP client when `tls` differs from the material in use (a rotated CA or
    /// client certificate); returns whether it did. Requests already sent finish on the old one.
    pub fn replace_tls_if_changed(&self, tls: TlsOptions) -> Result<bool, SearchError> {
        let mut build = self.build.lock().unwrap_or_else(|p| p.into_inner());
        if build.tls == tls {
            return Ok(false);
        }
        let mut next = build.clone();
        next.tls = tls;
        let http = build_http(&next)?;
        *self.http.write().unwrap_or_else(|p| p.into_inner()) = http;
        *build = next;
        Ok(true)
    }

    /// The credentials in use now.
    fn current_credentials(&self) -> Arc<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Swaps in `fresh` when it differs from the credentials in use (a rotated Secret); returns
    /// whether it did. Requests already sent keep the old ones.
    pub fn replace_credentials_if_changed(&self, fresh: Credentials) -> bool {
        let mut cur = self.credentials.write().unwrap_or_else(|p| p.into_inner());
        if cur.same_secrets(&fresh) {
            return false;
        }
        *cur = Arc::new(fresh);
        true
    }

    /// The basic-auth user name and password in use, if that is how this client authenticates
    /// (handed to a destination's remote reindex in `mode: Server`).
    pub fn basic_credentials(&self) -> Option<(SecretString, SecretString)> {
        match self.current_credentials().as_ref() {
            Credentials::Basic { username, password } => Some((username.clone(), password.clone())),
            _ => None,
        }
    }

    /// `scheme://host:port` of this cluster.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when requests are signed for OpenSearch Serverless (`aoss`), which manages
    /// replicas and refresh itself.
    pub fn is_serverless(&self) -> bool {
        matches!(self.current_credentials().as_ref(), Credentials::Aws(s) if s.service() == "aoss")
    }

    /// How many requests were retried so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Sends a request, retrying per the retry policy the failures that `resend` allows (see
    /// [`Resend`]). Non-2xx answers become errors, except those listed in `ok_statuses`.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        ok_statuses: &[u16],
        resend: Resend,
    ) -> Result<Response, SearchError> {
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let (method, body) = (&method, body.as_ref());
        let mut r = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.request_once(method.clone(), path, body, ok_statuses)
        })
        .retry(self.retry.backoff())
        .sleep(tokio::time::sleep)
        .when(|e| resend.may_retry(e))
        .notify(|e, d| {
            self.retries.fetch_add(1, Ordering::Relaxed);
            REQUEST_RETRIES.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(host = %self.name, %method, path = path.split('?').next().unwrap_or(path), error = %e, delay_ms = d.as_millis() as u64, "retrying");
        })
        .await?;
        r.attempts = attempts.load(Ordering::Relaxed);
        Ok(r)
    }

    /// The retry policy, for a caller's own retries (e.g. resending bulk items rejected with
    /// 429).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Attempts per request, the first included.
    pub fn retry_attempts(&self) -> u32 {
        self.retry.max_attempts
    }

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

    /// Classifies a transport failure by reqwest's error kinds (and the I/O and TLS errors in
    /// its source chain), never by its message text. Whether the request may have reached the
    /// server decides the variant: `Unreachable` (no connection: never sent) versus
    /// `Interrupted`/`Timeout` (the outcome is unknown).
    fn transport_error(&self, method: &Method, path: &str, e: reqwest::Error) -> SearchError {
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
    fn redact(&self, text: &str) -> String {
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

/// The HTTP client for `opts`: timeouts, TLS material, proxy.
fn build_http(opts: &ClientOptions) -> Result<reqwest::Client, SearchError> {
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

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// The error and its causes, joined, without the URL (which could carry a path only, but keep
/// messages short).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        cur = c.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
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
