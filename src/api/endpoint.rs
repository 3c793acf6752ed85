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
    /// A path prefix for clusters behind a reverse proxy, e.g. `/es`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^?#\s]*$"))]
    pub path_prefix: Option<String>,
    /// Allow credentials over plain `http://` to a host that is not a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// Compress request bodies (bulk) with gzip. Responses are always accepted compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress_requests: Option<bool>,
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
    /// Skip certificate verification entirely. Explicit opt-in; warned about every time it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

impl Endpoint {
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
