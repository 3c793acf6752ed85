//! The client for one cluster: built from [`ClientOptions`], cheap to clone, with rotating
//! credentials and TLS, and [`SearchClient::request`], which retries what may be sent again.
//! One attempt is [`super::attempt`], its failures are classified in [`super::failure`].

use super::error::SearchError;
use super::fence::{Fence, Gate};
use super::options::{ClientOptions, Credentials, Resend, RetryPolicy};
use super::secret::SecretString;
use super::tls::TlsOptions;
use super::transport::{Body, Response, build_http};
use backon::Retryable;
use reqwest::Method;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

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
    pub(super) http: Arc<std::sync::RwLock<reqwest::Client>>,
    /// What the HTTP client was built from (credentials aside), to rebuild it.
    pub(super) build: Arc<std::sync::Mutex<ClientOptions>>,
    pub(super) base: Url,
    /// `scheme://host:port`, used in messages.
    pub(super) name: Arc<str>,
    /// Swappable so that rotated Secrets take effect on the next request.
    pub(super) credentials: Arc<std::sync::RwLock<Arc<Credentials>>>,
    pub(super) compress: bool,
    pub(super) retry: RetryPolicy,
    pub(super) retries: Arc<AtomicU64>,
    /// Read timeout of each request (for messages).
    pub(super) socket_timeout: Duration,
    /// Connect timeout (for messages).
    pub(super) connect_timeout: Duration,
    /// The mapping type of indices on Elasticsearch 6.x (`_doc`), `None` on typeless clusters.
    pub(super) mapping_type: Option<Arc<str>>,
    /// `X-Opaque-Id` sent with every request (scale-out: `<identity>/<slice>`), so the
    /// cluster's tasks, slow logs and any proxy tell which process wrote what.
    pub(super) opaque_id: Option<Arc<str>>,
    /// Checked immediately before every request is sent (scale-out's fence: the slice Lease's
    /// budget); `Err` fails the request unsent.
    pub(super) gate: Option<Gate>,
    /// Leader election's fence, asked immediately before every request is sent (see
    /// [`Fence`]).
    pub(super) fence: Option<Arc<dyn Fence>>,
}

impl std::fmt::Debug for SearchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchClient")
            .field("host", &self.name)
            .finish_non_exhaustive()
    }
}

impl SearchClient {
    /// Builds a client; fails on an unusable URL, CA bundle or client certificate.
    pub fn new(opts: ClientOptions) -> Result<Self, SearchError> {
        super::tls::install_crypto_provider();
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

    /// Asks for gzip'd responses (`on`) or not from the next request on, for every clone of
    /// this client; `false` when that was already so.
    pub fn set_compress_responses(&self, on: bool) -> Result<bool, SearchError> {
        let mut build = self.build.lock().unwrap_or_else(|p| p.into_inner());
        if build.compress_responses == on {
            return Ok(false);
        }
        let mut next = build.clone();
        next.compress_responses = on;
        let http = build_http(&next)?;
        *self.http.write().unwrap_or_else(|p| p.into_inner()) = http;
        *build = next;
        Ok(true)
    }

    /// Whether responses are asked for gzip'd.
    pub fn compresses_responses(&self) -> bool {
        self.build
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .compress_responses
    }

    /// The credentials in use now.
    pub(super) fn current_credentials(&self) -> Arc<Credentials> {
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
}
