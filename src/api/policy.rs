//! `ReindexPolicy` (`reindex.dev/v1alpha1`, cluster-scoped): what the platform team allows the
//! `RemoteReindex` resources of the namespaces it selects to ask of the operator.
//!
//! The operator holds network reach and possibly an AWS identity that the namespaces using it do
//! not; a policy makes that reach explicit. Without a policy selecting a namespace, the operator's
//! safe defaults apply (see `docs/security.md`). Where several policies select a namespace, their
//! intersection applies: a limit set by any of them holds, and a permission holds only when one
//! grants it and none refuses it. Evaluation is in [`crate::policy`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Limits and permissions for the `RemoteReindex` resources of the selected namespaces. Checked
/// when a copy starts: a change applies to copies that start afterwards, running copies continue.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "reindex.dev",
    version = "v1alpha1",
    kind = "ReindexPolicy",
    plural = "reindexpolicies",
    singular = "reindexpolicy",
    shortname = "rpol",
    printcolumn = r#"{"name":"Source hosts","type":"string","jsonPath":".spec.allowedSourceHosts"}"#,
    printcolumn = r#"{"name":"Dest hosts","type":"string","jsonPath":".spec.allowedDestHosts","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ReindexPolicySpec {
    /// The namespaces this policy applies to, by label. Absent or `{}`: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// `host:port` globs `spec.source.remote.host` (and its `proxy.url`) must match, e.g.
    /// `*.corp.example.com:443`. Absent: this policy does not restrict source hosts (the
    /// operator's `--allowed-remote-hosts` still does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_source_hosts: Option<Vec<String>>,
    /// `host:port` globs the destination (`spec.dest.remote.host`, its `proxy.url`, or the
    /// operator's `--dest-host`) must match. Absent: the operator's `--dest-host` is allowed and
    /// `spec.dest.remote` is limited by `--allowed-remote-hosts` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_dest_hosts: Option<Vec<String>>,
    /// Allow AWS SigV4 signing with the operator pod's own identity (`aws` or `region` without
    /// `credentialsSecretRef`: IRSA, EKS Pod Identity, environment). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_ambient_aws_identity: Option<bool>,
    /// Allow `tls.insecureSkipVerify: true`. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_skip_verify: Option<bool>,
    /// Allow `allowInsecureHttp: true` (credentials over plain `http://`). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    /// The highest `spec.requestsPerSecond` a copy may ask for; a copy must then set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001))]
    pub max_requests_per_second: Option<f64>,
    /// The most slices (`spec.source.slices`) a copy may use; `auto` counts as 16. Slices the
    /// copier adds by measurement (`slices` unset or `auto`) stay within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_slices: Option<i64>,
    /// Globs `spec.dest.index` must match. Names starting with `.` (system and hidden indices)
    /// are refused unless a pattern that itself starts with `.` matches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_dest_indices: Option<Vec<String>>,
    /// Use only Secrets labelled `reindex.dev/use: "true"` (default true). `false` waives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_secret_label: Option<bool>,
    /// Link-local or cloud metadata addresses (`169.254.0.0/16`, `fe80::/10`, `fd00:ec2::/32`,
    /// `100.100.100.200`) a host may resolve to, listed by IP. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "allowedLinkLocalIPs")]
    pub allowed_link_local_ips: Option<Vec<String>>,
}
