//! How a [`super::SearchClient`] is built: the cluster's address, credentials, TLS, proxy,
//! timeouts and retry policy, and which failed requests may be sent again.

use super::aws::AwsSigner;
use super::error::SearchError;
use super::secret::SecretString;
use super::tls::TlsOptions;
use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::Arc;
use std::time::Duration;

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

    pub(super) fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::None => vec![],
            Credentials::Basic { username, password } => vec![username.expose(), password.expose()],
            Credentials::ApiKey(k) | Credentials::Bearer(k) => vec![k.expose()],
            Credentials::Aws(s) => s.secrets(),
        }
    }
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

/// Everything needed to build a [`super::SearchClient`].
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
