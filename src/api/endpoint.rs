//! `Endpoint`: how to reach one search cluster (used by both `source.remote` and `dest.remote`).

use super::units::EsDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How to reach an Elasticsearch or OpenSearch cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Base URL, `scheme://host[:port]`, e.g. `https://old.example.com:443`.
    #[schemars(regex(pattern = r"^https?://[^/?#\s]+/?$"))]
    pub host: String,
    /// HTTP basic authentication from a Secret (keys `username` and `password` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// An Elasticsearch API key from a Secret (key `apiKey`), sent as `Authorization: ApiKey …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretKeyAuth>,
    /// A bearer token from a Secret (key `token`), sent as `Authorization: Bearer …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretKeyAuth>,
    /// AWS Signature Version 4 signing (Amazon OpenSearch Service `es`, Serverless `aoss`).
    /// Credentials come from `credentialsSecretRef` or, without it, from the pod's standard
    /// chain: environment variables, a web identity token (IRSA), the container credentials
    /// endpoint (EKS Pod Identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsAuth>,
    /// Amazon remote reindex's `region`: the same as `aws: {region: …, service: es}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: Option<String>,
    /// Amazon remote reindex's `external`: `true` declares a cluster that is not an AWS domain;
    /// only `basicAuth` (or no authentication) is accepted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// An HTTP proxy every request to this cluster goes through (`CONNECT` for `https://`
    /// hosts). Proxy environment variables are ignored; only this one is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
    /// TLS settings for `https://` hosts. Certificates are verified against the system roots
    /// unless a CA is given here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Per-request read timeout (Elasticsearch units, default `30s`); a bulk or scroll page that
    /// takes longer is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_timeout: Option<EsDuration>,
    /// TCP/TLS connect timeout (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<EsDuration>,
    /// Extra HTTP headers sent with every request to this cluster (in `mode: Server`, sent by the
    /// destination's remote reindex). Plain text in the resource: not for credentials, and
    /// `Authorization` is refused. Headers that change where or how a request is routed are
    /// refused too (case-insensitive): `Host`, `Connection`, `Content-Length`,
    /// `Transfer-Encoding`, `TE`, `Upgrade`, `Keep-Alive`, `Expect`, `Proxy-*`, `Forwarded`,
    /// `X-Forwarded-*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// A path prefix for clusters behind a reverse proxy, e.g. `/es`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^?#\s]*$"))]
    pub path_prefix: Option<String>,
    /// Allow credentials over plain `http://` to a host that is not a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// Compress request bodies (bulk) with gzip (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress_requests: Option<bool>,
    /// Ask for gzip-compressed responses. Default, for the source of an engine-mode copy: by
    /// measurement — one page is read uncompressed before the copy and gzip is asked for when
    /// the link carries less than 25 MB/s (across a 100 Mbit/s link gzip copies ~3× faster; on a
    /// fast link it costs a third of the speed: docs/benchmarks.md); the choice is shown in the
    /// Copying message. Otherwise, and when the sample is too small to judge: true, except for
    /// hosts on a local network (literal loopback, private or link-local addresses,
    /// `localhost`, in-cluster `*.svc` / `*.cluster.local` names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress_responses: Option<bool>,
    /// Not supported: inline credentials would end up in etcd and in `kubectl get -o yaml`.
    /// Use `basicAuth.secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Not supported: use `basicAuth.secretRef`. The value is never echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A reference to a Secret in the resource's own namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret (same namespace as the `RemoteReindex`).
    #[schemars(length(min = 1))]
    pub name: String,
    /// Namespace: only the resource's own namespace is allowed; present so that a cross-namespace
    /// reference is refused with a clear message instead of silently ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Basic authentication read from a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// The Secret holding the credentials.
    pub secret_ref: SecretRef,
    /// Key of the user name in the Secret (default `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key of the password in the Secret (default `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

/// A single credential read from one key of a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyAuth {
    /// The Secret holding the credential.
    pub secret_ref: SecretRef,
    /// Key in the Secret (default `apiKey` for API keys, `token` for bearer tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// TLS settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// A Secret with a PEM CA bundle under key `ca.crt` (private CAs and self-signed
    /// certificates are accepted). Replaces the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretRef>,
    /// A ConfigMap with a PEM CA bundle under key `ca.crt`. Replaces the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_config_map_ref: Option<SecretRef>,
    /// A `kubernetes.io/tls` Secret (keys `tls.crt`, `tls.key`) presented as a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret_ref: Option<SecretRef>,
    /// Verify the server certificate against this DNS name instead of the host's name (e.g. when
    /// the host is an IP address or a tunnel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub server_name: Option<String>,
    /// Skip certificate verification entirely. Explicit opt-in; warned about every time it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

/// AWS SigV4 signing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuth {
    /// The region of the domain or collection, e.g. `eu-west-1`.
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: String,
    /// `es` (Amazon OpenSearch Service, default) or `aoss` (OpenSearch Serverless, destination
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<AwsService>,
    /// A Secret with keys `accessKeyId`, `secretAccessKey` and optionally `sessionToken`.
    /// Without it, the pod's standard credentials chain is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
}

/// The AWS service a request is signed for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AwsService {
    /// Amazon OpenSearch Service (managed domains).
    #[default]
    Es,
    /// Amazon OpenSearch Serverless: no scroll (destination only), no `GET /`, replicas and
    /// refresh managed by the service.
    Aoss,
}

impl AwsService {
    /// The signing name: `es` or `aoss`.
    pub fn signing_name(self) -> &'static str {
        match self {
            AwsService::Es => "es",
            AwsService::Aoss => "aoss",
        }
    }
}

/// An HTTP proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    /// `http://host:port` of the proxy.
    #[schemars(regex(pattern = r"^https?://[^/?#\s]+/?$"))]
    pub url: String,
    /// A Secret with keys `username` and `password` for `Proxy-Authorization: Basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_secret_ref: Option<SecretRef>,
}

impl Endpoint {
    /// SigV4 settings: `aws`, or the seed's `region` shorthand (`service: es`, the pod's chain).
    pub fn aws_auth(&self) -> Option<AwsAuth> {
        self.aws.clone().or_else(|| {
            self.region.as_ref().map(|r| AwsAuth {
                region: r.clone(),
                service: None,
                credentials_secret_ref: None,
            })
        })
    }

    /// True when requests are signed for OpenSearch Serverless.
    pub fn is_serverless(&self) -> bool {
        self.aws_auth()
            .is_some_and(|a| a.service == Some(AwsService::Aoss))
    }

    /// The names of the authentication modes that are set (at most one is allowed).
    pub fn auth_modes(&self) -> Vec<&'static str> {
        let mut modes = Vec::new();
        if self.basic_auth.is_some() {
            modes.push("basicAuth");
        }
        if self.api_key.is_some() {
            modes.push("apiKey");
        }
        if self.bearer_token.is_some() {
            modes.push("bearerToken");
        }
        if self.aws.is_some() {
            modes.push("aws");
        }
        if self.region.is_some() {
            modes.push("region");
        }
        modes
    }

    /// Every Secret this endpoint references, with the field that references it.
    pub fn secret_refs(&self) -> Vec<(&'static str, &SecretRef)> {
        let mut refs = Vec::new();
        if let Some(b) = &self.basic_auth {
            refs.push(("basicAuth.secretRef", &b.secret_ref));
        }
        if let Some(a) = &self.api_key {
            refs.push(("apiKey.secretRef", &a.secret_ref));
        }
        if let Some(t) = &self.bearer_token {
            refs.push(("bearerToken.secretRef", &t.secret_ref));
        }
        if let Some(r) = self
            .aws
            .as_ref()
            .and_then(|a| a.credentials_secret_ref.as_ref())
        {
            refs.push(("aws.credentialsSecretRef", r));
        }
        if let Some(r) = self
            .proxy
            .as_ref()
            .and_then(|p| p.basic_auth_secret_ref.as_ref())
        {
            refs.push(("proxy.basicAuthSecretRef", r));
        }
        if let Some(tls) = &self.tls {
            if let Some(r) = &tls.ca_secret_ref {
                refs.push(("tls.caSecretRef", r));
            }
            if let Some(r) = &tls.client_cert_secret_ref {
                refs.push(("tls.clientCertSecretRef", r));
            }
        }
        refs
    }
}
