//! From a spec to two connected clients: validation, Secrets, `GET /` and the version rule.

use super::connected::Connected;
use super::error::WorkflowError;
use super::preflight::PreflightRetry;
use super::versions::version_rule;
use crate::api::Reason;
use crate::api::validate::{Invalid, Policy, validate};
use crate::api::{Endpoint, RemoteReindexSpec, SecretRef};
use crate::policy::Refusal;
use crate::search::{
    AwsCredentialSource, AwsCredentials, AwsSigner, ClientOptions, ClusterInfo, Credentials,
    ProxyOptions, RetryPolicy, SearchClient, SecretString, TlsOptions,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A Secret or a ConfigMap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    /// `v1/Secret`.
    Secret,
    /// `v1/ConfigMap`.
    ConfigMap,
}

impl ConfigKind {
    fn name(self) -> &'static str {
        match self {
            ConfigKind::Secret => "Secret",
            ConfigKind::ConfigMap => "ConfigMap",
        }
    }
}

/// Why a Secret or ConfigMap could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// Reading it failed (an API error); waiting may help.
    Unreadable(String),
    /// The Secret exists but lacks the label `reindex.dev/use: "true"`; says who requires it.
    NotLabelled(String),
}

/// Where Secrets and ConfigMaps come from: the API server (controller) or the YAML files given
/// to `run -f` (local). Lookups are in the resource's own namespace only.
pub trait SecretSource: Send + Sync {
    /// The object's data (decoded), or `None` when it does not exist.
    fn get(
        &self,
        kind: ConfigKind,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Vec<u8>>>, SecretError>> + Send;
}

/// Driver-wide settings.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The destination used when `dest.remote` is absent (`--dest-host`).
    pub dest_default: Option<Endpoint>,
    /// Operator policy (allowed hosts, system indices).
    pub policy: Policy,
    /// The resource's namespace (Secrets may only come from it).
    pub namespace: String,
    /// `User-Agent` for requests.
    pub user_agent: Option<String>,
    /// `Some(allowed)`: never connect to a resolved link-local/metadata address outside
    /// `allowed` (the operator, after its policy check); `None`: no filtering (the CLI).
    pub link_local_allowed: Option<Vec<std::net::IpAddr>>,
    /// How long and what pre-flight retries (the operator's by default).
    pub preflight: PreflightSettings,
    /// Leader election's fence, asked before every request to either cluster (`None`: no
    /// election, or a scale-out worker fenced by its slice Leases).
    pub fence: Option<Arc<dyn crate::search::Fence>>,
    /// `X-Opaque-Id` of every request (the operator's replica identity), so that the clusters'
    /// tasks and slow logs, and any proxy, tell which replica sent what.
    pub opaque_id: Option<String>,
}

/// How pre-flight failures are retried. The operator waits long (a cluster may still be
/// starting, a Secret may be created or rotated later) and retries refused credentials; the CLI
/// has someone waiting at a terminal: it retries only what may pass in seconds (an unreachable
/// cluster, a missing Secret) for 30 s by default, and reports refused credentials after one
/// request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreflightSettings {
    /// Wins over `spec.preflightTimeout` (the CLI's `--preflight-timeout`).
    pub timeout_override: Option<Duration>,
    /// When neither the override nor `spec.preflightTimeout` is set.
    pub default_timeout: Duration,
    /// Whether refused credentials (401, a 403 refusal) are retried until the timeout.
    pub retry_refused_credentials: bool,
}

impl PreflightSettings {
    /// The operator's default `preflightTimeout`.
    pub const OPERATOR_TIMEOUT: Duration = Duration::from_secs(300);
    /// `run -f`'s default.
    pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

    /// The CLI's: `--preflight-timeout` (if given), else the spec's, else 30 s; refused
    /// credentials are not retried.
    pub fn cli(timeout_override: Option<Duration>) -> Self {
        PreflightSettings {
            timeout_override,
            default_timeout: Self::CLI_TIMEOUT,
            retry_refused_credentials: false,
        }
    }

    /// The timeout for `spec`: the override, `spec.preflightTimeout`, the default.
    pub fn timeout(&self, spec_timeout: Option<&crate::api::units::EsDuration>) -> Duration {
        self.timeout_override
            .or_else(|| spec_timeout.and_then(|d| d.parse().ok()))
            .unwrap_or(self.default_timeout)
    }
}

impl Default for PreflightSettings {
    /// The operator's: 5 minutes, refused credentials retried (a rotated Secret is picked up).
    fn default() -> Self {
        PreflightSettings {
            timeout_override: None,
            default_timeout: Self::OPERATOR_TIMEOUT,
            retry_refused_credentials: true,
        }
    }
}

/// Validates the spec, resolves Secrets, builds both clients, checks they answer and applies
/// the version rule. Retries what waiting can fix until `preflightTimeout`.
pub async fn connect<S: SecretSource>(
    spec: &RemoteReindexSpec,
    secrets: &S,
    settings: &Settings,
) -> Result<Connected, WorkflowError> {
    connect_reporting(spec, secrets, settings, |_| async {}).await
}

/// [`connect`], calling `on_retry` after every failed attempt that will be retried, before
/// waiting: the drivers show the current reason at once instead of only after the timeout.
pub async fn connect_reporting<S, F, Fut>(
    spec: &RemoteReindexSpec,
    secrets: &S,
    settings: &Settings,
    mut on_retry: F,
) -> Result<Connected, WorkflowError>
where
    S: SecretSource,
    F: FnMut(PreflightRetry) -> Fut,
    Fut: Future<Output = ()>,
{
    validate(spec, settings.dest_default.as_ref(), &settings.policy)
        .map_err(WorkflowError::Invalid)?;
    let timeout = settings.preflight.timeout(spec.preflight_timeout.as_ref());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delays = backon::BackoffBuilder::build(
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(10))
            .without_max_times(),
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        match connect_once(spec, secrets, settings, deadline, timeout).await {
            Err(e) if e.retried_at_preflight(settings.preflight.retry_refused_credentials) => {
                // No attempt starts past the pre-flight deadline.
                let Some(delay) = delays
                    .next()
                    .filter(|d| tokio::time::Instant::now() + *d < deadline)
                else {
                    return Err(e);
                };
                tracing::info!(error = %e, attempt, retry_in_ms = delay.as_millis() as u64, "pre-flight check failed; retrying until preflightTimeout");
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                on_retry(PreflightRetry::new(&e, attempt, delay, left)).await;
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// `probe`, cut at the pre-flight deadline: a silent cluster is reported when the pre-flight
/// time is up, not after its own `connectTimeout`/`socketTimeout`.
async fn until_deadline<T>(
    host: &str,
    deadline: tokio::time::Instant,
    timeout: Duration,
    probe: impl Future<Output = Result<T, crate::search::SearchError>>,
) -> Result<T, crate::search::SearchError> {
    tokio::time::timeout_at(deadline, probe)
        .await
        .unwrap_or_else(|_| {
            Err(crate::search::SearchError::Unreachable {
                host: host.to_string(),
                detail: format!(
                    "no answer before the pre-flight timeout ({}) ran out; the attempt was cut short",
                    super::preflight::short(timeout)
                ),
            })
        })
}

async fn connect_once<S: SecretSource>(
    spec: &RemoteReindexSpec,
    secrets: &S,
    settings: &Settings,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<Connected, WorkflowError> {
    let retry = retry_policy(spec);
    let dest_ep = spec
        .dest
        .remote
        .as_ref()
        .or(settings.dest_default.as_ref())
        .expect("validated: a destination exists");
    let source = client_for(
        &spec.source.remote,
        "spec.source.remote",
        secrets,
        settings,
        &retry,
        true,
    )
    .await?;
    let dest = client_for(dest_ep, "spec.dest.remote", secrets, settings, &retry, true).await?;
    // Pre-flight probes fail fast (the caller retries until preflightTimeout); the copy itself
    // uses the full retry policy.
    let once = RetryPolicy::none();
    let probe_client = source.with_retry(once.clone());
    let probe = until_deadline(source.name(), deadline, timeout, probe_client.info());
    let source_info = match super::server_reach::probe_source(spec, probe).await {
        Ok(info) => info,
        Err(e) => {
            return Err(WorkflowError::Preflight {
                which: "source",
                source: e,
            });
        }
    };
    // OpenSearch Serverless has no `GET /`: there is no version to check.
    let dest_info = if dest_ep.is_serverless() {
        ClusterInfo::serverless()
    } else {
        until_deadline(dest.name(), deadline, timeout, dest.with_retry(once).info())
            .await
            .map_err(|e| WorkflowError::Preflight {
                which: "destination",
                source: e,
            })?
    };
    let (summary, source_reachable, source_info) = match source_info {
        Some(info) => (version_rule(&info, &dest_info)?, true, info),
        None => super::server_reach::unreached(&source, &dest_info),
    };
    // Elasticsearch 6.x indices have one mapping type; `_doc` is 6.x's own default.
    let dest = if dest_info.distribution == crate::search::Distribution::Elasticsearch
        && dest_info.version.major < 7
    {
        dest.with_mapping_type("_doc")
    } else {
        dest
    };
    Ok(Connected {
        source,
        dest,
        source_info,
        dest_info,
        summary,
        source_reachable,
    })
}

fn retry_policy(spec: &RemoteReindexSpec) -> RetryPolicy {
    let mut p = RetryPolicy::default();
    if let Some(r) = &spec.retry {
        if let Some(n) = r.max_attempts {
            p.max_attempts = n.clamp(1, 100) as u32;
        }
        if let Some(d) = r.max_backoff.as_ref().and_then(|d| d.parse().ok()) {
            p.max_backoff = d;
            p.min_backoff = p.min_backoff.min(d);
        }
    }
    p
}

/// Builds a client for an endpoint, reading its Secrets.
pub(crate) async fn client_for<S: SecretSource>(
    ep: &Endpoint,
    field: &str,
    secrets: &S,
    settings: &Settings,
    retry: &RetryPolicy,
    _preflight: bool,
) -> Result<SearchClient, WorkflowError> {
    let mut opts = ClientOptions::new(ep.host.clone());
    opts.path_prefix = ep.path_prefix.clone();
    opts.retry = retry.clone();
    opts.compress_requests = ep.compress_requests.unwrap_or(false);
    // Default: gzip across a WAN, none on a local network (see `Endpoint::compress_responses`).
    opts.compress_responses = ep.compress_responses.unwrap_or_else(|| {
        !url::Url::parse(&ep.host).is_ok_and(|u| crate::net::is_local_network(&u))
    });
    if let Some(ua) = &settings.user_agent {
        opts.user_agent = ua.clone();
    }
    opts.link_local_allowed = settings.link_local_allowed.clone();
    if let Some(h) = &ep.headers {
        opts.headers = h.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    if let Some(d) = ep.socket_timeout.as_ref().and_then(|d| d.parse().ok()) {
        opts.socket_timeout = d;
    }
    if let Some(d) = ep.connect_timeout.as_ref().and_then(|d| d.parse().ok()) {
        opts.connect_timeout = d;
    }
    let lookup = Lookup {
        secrets,
        namespace: &settings.namespace,
    };
    opts.credentials = resolve_credentials(ep, field, &lookup).await?;
    if let Some(p) = &ep.proxy {
        let mut proxy = ProxyOptions {
            url: p.url.clone(),
            basic_auth: None,
        };
        if let Some(r) = &p.basic_auth_secret_ref {
            let f = format!("{field}.proxy.basicAuthSecretRef");
            let data = lookup.get(ConfigKind::Secret, r, &f).await?;
            proxy.basic_auth = Some((
                SecretString::new(key(&data, ConfigKind::Secret, r, "username", &f)?),
                SecretString::new(key(&data, ConfigKind::Secret, r, "password", &f)?),
            ));
        }
        opts.proxy = Some(proxy);
    }
    if ep
        .tls
        .as_ref()
        .is_some_and(|t| t.insecure_skip_verify == Some(true))
    {
        tracing::warn!(host = %ep.host, "TLS certificate verification is disabled for this endpoint (tls.insecureSkipVerify)");
    }
    opts.tls = resolve_tls(ep, field, &lookup).await?;
    let mut client = SearchClient::new(opts).map_err(|e| {
        WorkflowError::Invalid(vec![Invalid {
            field: field.to_string(),
            message: e.to_string(),
            reason: Reason::InvalidSpec,
        }])
    })?;
    if let Some(id) = &settings.opaque_id {
        client = client.with_opaque_id(id);
    }
    if let Some(fence) = &settings.fence {
        client = client.with_fence(fence.clone());
    }
    Ok(client)
}

/// Reads an endpoint's TLS material (CA bundle, client certificate) from its Secrets/ConfigMaps.
async fn resolve_tls<S: SecretSource>(
    ep: &Endpoint,
    field: &str,
    lookup: &Lookup<'_, S>,
) -> Result<TlsOptions, WorkflowError> {
    let Some(tls) = &ep.tls else {
        return Ok(TlsOptions::default());
    };
    let mut t = TlsOptions {
        insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
        server_name: tls.server_name.clone(),
        ..Default::default()
    };
    if let Some(r) = &tls.ca_secret_ref {
        let f = format!("{field}.tls.caSecretRef");
        let data = lookup.get(ConfigKind::Secret, r, &f).await?;
        t.ca_pem = Some(key(&data, ConfigKind::Secret, r, "ca.crt", &f)?.into_bytes());
    } else if let Some(r) = &tls.ca_config_map_ref {
        let f = format!("{field}.tls.caConfigMapRef");
        let data = lookup.get(ConfigKind::ConfigMap, r, &f).await?;
        t.ca_pem = Some(key(&data, ConfigKind::ConfigMap, r, "ca.crt", &f)?.into_bytes());
    }
    if let Some(r) = &tls.client_cert_secret_ref {
        let f = format!("{field}.tls.clientCertSecretRef");
        let data = lookup.get(ConfigKind::Secret, r, &f).await?;
        let cert = key(&data, ConfigKind::Secret, r, "tls.crt", &f)?;
        let k = key(&data, ConfigKind::Secret, r, "tls.key", &f)?;
        t.client_identity_pem = Some(SecretString::new(format!("{cert}\n{k}")));
    }
    Ok(t)
}

/// Reads an endpoint's credentials from its Secrets (none when it has no auth mode).
async fn resolve_credentials<S: SecretSource>(
    ep: &Endpoint,
    field: &str,
    lookup: &Lookup<'_, S>,
) -> Result<Credentials, WorkflowError> {
    let mut credentials = Credentials::None;
    if let Some(b) = &ep.basic_auth {
        let f = format!("{field}.basicAuth.secretRef");
        let data = lookup.get(ConfigKind::Secret, &b.secret_ref, &f).await?;
        credentials = Credentials::Basic {
            username: SecretString::new(key(
                &data,
                ConfigKind::Secret,
                &b.secret_ref,
                b.username_key.as_deref().unwrap_or("username"),
                &f,
            )?),
            password: SecretString::new(key(
                &data,
                ConfigKind::Secret,
                &b.secret_ref,
                b.password_key.as_deref().unwrap_or("password"),
                &f,
            )?),
        };
    } else if let Some(a) = &ep.api_key {
        let f = format!("{field}.apiKey.secretRef");
        let data = lookup.get(ConfigKind::Secret, &a.secret_ref, &f).await?;
        credentials = Credentials::ApiKey(SecretString::new(key(
            &data,
            ConfigKind::Secret,
            &a.secret_ref,
            a.key.as_deref().unwrap_or("apiKey"),
            &f,
        )?));
    } else if let Some(t) = &ep.bearer_token {
        let f = format!("{field}.bearerToken.secretRef");
        let data = lookup.get(ConfigKind::Secret, &t.secret_ref, &f).await?;
        credentials = Credentials::Bearer(SecretString::new(key(
            &data,
            ConfigKind::Secret,
            &t.secret_ref,
            t.key.as_deref().unwrap_or("token"),
            &f,
        )?));
    }
    if ep.basic_auth.is_none()
        && ep.api_key.is_none()
        && ep.bearer_token.is_none()
        && let Some(aws) = ep.aws_auth()
    {
        let source = match &aws.credentials_secret_ref {
            Some(r) => {
                let f = format!("{field}.aws.credentialsSecretRef");
                let data = lookup.get(ConfigKind::Secret, r, &f).await?;
                let get = |k: &str| key(&data, ConfigKind::Secret, r, k, &f);
                AwsCredentialSource::Static(AwsCredentials {
                    access_key_id: get("accessKeyId")?.trim().to_string(),
                    secret_access_key: SecretString::new(get("secretAccessKey")?.trim()),
                    session_token: data
                        .contains_key("sessionToken")
                        .then(|| get("sessionToken"))
                        .transpose()?
                        .map(|t| SecretString::new(t.trim())),
                    expires_at: None,
                })
            }
            None => AwsCredentialSource::DefaultChain,
        };
        let service = aws.service.unwrap_or_default().signing_name();
        credentials = Credentials::Aws(Arc::new(AwsSigner::new(
            aws.region.clone(),
            service,
            source,
        )));
    }
    Ok(credentials)
}

/// Re-reads the Secrets/ConfigMaps of both endpoints and swaps in what changed, so a rotated
/// password, API key, token, CA bundle or client certificate takes effect on the next request
/// of a running copy. AWS keys from a Secret are re-read too; those of the provider chain
/// refresh themselves.
pub(crate) async fn rotate_credentials<S: SecretSource>(
    spec: &RemoteReindexSpec,
    secrets: &S,
    settings: &Settings,
    conn: &Connected,
) {
    let lookup = Lookup {
        secrets,
        namespace: &settings.namespace,
    };
    let dest_ep = spec.dest.remote.as_ref().or(settings.dest_default.as_ref());
    let ends = [
        (
            Some(&spec.source.remote),
            "spec.source.remote",
            &conn.source,
        ),
        (dest_ep, "spec.dest.remote", &conn.dest),
    ];
    for (ep, field, client) in ends {
        let Some(ep) = ep else { continue };
        match resolve_tls(ep, field, &lookup).await {
            Ok(tls) => match client.replace_tls_if_changed(tls) {
                Ok(true) => tracing::info!(
                    endpoint = field,
                    "TLS material changed in its Secret/ConfigMap: new connections use it"
                ),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(endpoint = field, error = %e, "the rotated TLS material is unusable; keeping the current one")
                }
            },
            Err(e) => {
                tracing::debug!(endpoint = field, error = %e, "could not re-read TLS material; keeping the current one")
            }
        }
        let aws_chain = ep
            .aws_auth()
            .is_some_and(|a| a.credentials_secret_ref.is_none())
            && ep.basic_auth.is_none()
            && ep.api_key.is_none()
            && ep.bearer_token.is_none();
        if aws_chain {
            continue; // The AWS provider chain refreshes itself; keys from a Secret are re-read.
        }
        match resolve_credentials(ep, field, &lookup).await {
            Ok(fresh) => {
                if client.replace_credentials_if_changed(fresh) {
                    tracing::info!(
                        endpoint = field,
                        "credentials changed in their Secret: using them from the next request"
                    );
                }
            }
            Err(e) => {
                tracing::debug!(endpoint = field, error = %e, "could not re-read credentials; keeping the current ones")
            }
        }
    }
}

struct Lookup<'a, S> {
    secrets: &'a S,
    namespace: &'a str,
}

impl<S: SecretSource> Lookup<'_, S> {
    async fn get(
        &self,
        kind: ConfigKind,
        r: &SecretRef,
        field: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, WorkflowError> {
        if let Some(ns) = &r.namespace
            && ns != self.namespace
        {
            return Err(WorkflowError::Invalid(vec![Invalid {
                field: field.to_string(),
                message: format!(
                    "{} `{}` is in namespace `{ns}`; only the resource's own namespace `{}` may be referenced",
                    kind.name(),
                    r.name,
                    self.namespace
                ),
                reason: Reason::SecretNamespaceNotAllowed,
            }]));
        }
        match self.secrets.get(kind, &r.name).await {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(WorkflowError::SecretNotFound {
                kind: kind.name(),
                name: r.name.clone(),
                detail: format!("does not exist in namespace `{}`", self.namespace),
                field: field.into(),
            }),
            Err(SecretError::Unreadable(e)) => Err(WorkflowError::SecretNotFound {
                kind: kind.name(),
                name: r.name.clone(),
                detail: format!("could not be read: {e}"),
                field: field.into(),
            }),
            Err(SecretError::NotLabelled(by)) => Err(WorkflowError::Refused(Refusal {
                reason: Reason::SecretNotLabelled,
                field: field.into(),
                message: format!(
                    "{} `{}` has no label {}: \"true\"; label it to let the operator use it",
                    kind.name(),
                    r.name,
                    crate::policy::SECRET_LABEL
                ),
                by,
            })),
        }
    }
}

fn key(
    data: &BTreeMap<String, Vec<u8>>,
    kind: ConfigKind,
    r: &SecretRef,
    k: &str,
    field: &str,
) -> Result<String, WorkflowError> {
    let missing = |detail: String| WorkflowError::SecretNotFound {
        kind: kind.name(),
        name: r.name.clone(),
        detail,
        field: field.into(),
    };
    let v = data
        .get(k)
        .ok_or_else(|| missing(format!("has no key `{k}`")))?;
    String::from_utf8(v.clone()).map_err(|_| missing(format!("key `{k}` is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::ClientOptions;
    use std::sync::Mutex;

    /// Secrets held in memory (the CLI's and the controller's sources both hand out maps).
    struct Memory(Mutex<BTreeMap<String, Vec<u8>>>);

    impl SecretSource for Memory {
        async fn get(
            &self,
            _kind: ConfigKind,
            _name: &str,
        ) -> Result<Option<BTreeMap<String, Vec<u8>>>, SecretError> {
            Ok(Some(self.0.lock().unwrap().clone()))
        }
    }

    fn keys(id: &str, secret: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("accessKeyId".to_string(), id.as_bytes().to_vec()),
            ("secretAccessKey".to_string(), secret.as_bytes().to_vec()),
        ])
    }

    /// AWS keys from a Secret rotate like any other credential: the running copy's periodic
    /// re-read swaps in changed keys (the provider chain is left to refresh itself).
    #[tokio::test]
    async fn aws_keys_from_a_secret_rotate_in_a_running_copy() {
        let spec: RemoteReindexSpec = serde_json::from_value(serde_json::json!({
            "source": {
                "remote": {
                    "host": "https://search.example.com",
                    "aws": {"region": "eu-west-1", "credentialsSecretRef": {"name": "aws"}},
                },
                "index": "src",
            },
            "dest": {"remote": {"host": "http://127.0.0.1:9200"}, "index": "dst"},
        }))
        .unwrap();
        let secrets = Memory(Mutex::new(keys("AKIAFIRST", "first-secret")));
        let settings = Settings {
            namespace: "default".into(),
            ..Default::default()
        };
        let lookup = Lookup {
            secrets: &secrets,
            namespace: "default",
        };
        let ep = &spec.source.remote;
        let mut opts = ClientOptions::new(&ep.host);
        opts.credentials = resolve_credentials(ep, "spec.source.remote", &lookup)
            .await
            .unwrap();
        let conn = Connected {
            source: SearchClient::new(opts).unwrap(),
            dest: SearchClient::new(ClientOptions::new("http://127.0.0.1:9200")).unwrap(),
            source_info: ClusterInfo::serverless(),
            dest_info: ClusterInfo::serverless(),
            summary: String::new(),
            source_reachable: true,
        };
        let now = || async {
            resolve_credentials(ep, "spec.source.remote", &lookup)
                .await
                .unwrap()
        };
        assert!(
            !conn.source.replace_credentials_if_changed(now().await),
            "same keys, same signer"
        );
        *secrets.0.lock().unwrap() = keys("AKIASECOND", "second-secret");
        rotate_credentials(&spec, &secrets, &settings, &conn).await;
        assert!(
            !conn.source.replace_credentials_if_changed(now().await),
            "the rotation swapped in the new keys already"
        );
    }
}
