//! `RemoteReindexSpec`: what to copy, from where, to where, and how.

use super::endpoint::Endpoint;
use super::status::RemoteReindexStatus;
use super::units::{ByteSize, EsDuration, Slices};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Copies one index from a remote Elasticsearch/OpenSearch cluster into a destination cluster:
/// the destination is created tuned for bulk loading, filled by scroll + `_bulk`, then restored
/// and verified.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "reindex.dev",
    version = "v1alpha1",
    kind = "RemoteReindex",
    plural = "remotereindexes",
    singular = "remotereindex",
    shortname = "reindex",
    shortname = "rri",
    namespaced,
    status = "RemoteReindexStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress.summary"}"#,
    printcolumn = r#"{"name":"Docs/s","type":"string","jsonPath":".status.progress.docsPerSecond"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Lag","type":"string","jsonPath":".status.catchUp.lastRound.lag"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"ETA","type":"string","jsonPath":".status.progress.eta","priority":1}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
// The rule sits on `spec` (where `source` and `dest` are fields), not on the root object: an API
// server compiles every rule when the CRD is created and refuses a CRD whose rule does not compile.
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.source.remote.host != (has(self.dest.remote) ? self.dest.remote.host : '') || self.source.index != self.dest.index",
    "message": "dest.index is the source index on the same cluster: a copy onto itself is refused"
}]))]
pub struct RemoteReindexSpec {
    /// Who copies: `Engine` (default) reads the source and writes the destination from the
    /// operator; `Server` has the destination pull the documents itself with its own
    /// `_reindex` from `source.remote`, so only the destination must be reachable by the
    /// operator (see the README, "Server mode").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CopyMode>,
    /// Where the documents come from.
    pub source: Source,
    /// Where the documents go.
    pub dest: Dest,
    /// What a version conflict does: `abort` (default) stops the copy, `proceed` counts it and
    /// continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Conflicts>,
    /// How many documents may fail (mapping errors, rejected items) before the copy is failed.
    /// Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_failed_docs: Option<i64>,
    /// How long pre-flight retries before the resource fails (default `5m`): an unreachable
    /// cluster (connection refused, no answer, DNS), a missing Secret, and refused credentials
    /// (401, or a 403 refusal such as `security_exception`; retried so that a rotated Secret is
    /// picked up). `remote-reindex run -f` retries only the first two, 30 s by default
    /// (`--preflight-timeout` wins over this field), and stops after one refused request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight_timeout: Option<EsDuration>,
    /// Documents per second across all slices (unset: unlimited). May be changed while copying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001))]
    pub requests_per_second: Option<f64>,
    /// Retries of scroll and bulk requests on 429, 502, 503, 504 and connection resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Pause the copy (`true`): it stops at a batch boundary, its scrolls are cleared and the
    /// destination stays tuned; setting it back to `false` resumes, skipping finished slices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Not supported: Painless scripts need the cluster's script engine. Use an ingest pipeline
    /// on the destination (`dest.pipeline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::any_value")]
    pub script: Option<serde_json::Value>,
    /// Live migration: after the initial copy, keep copying new and updated documents in rounds
    /// until the cutover. Deletes in the source are not seen (see `deleteMissing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<super::live::CatchUp>,
    /// Live migration: verify and move aliases to the destination when `trigger` is set.
    /// Requires `catchUp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<super::live::Cutover>,
    /// How the finished copy is checked against the source: `Count` (default) compares the
    /// destination's document count with the source's, `Checksum` also compares every
    /// document's id, routing and `_source` (a second read of both indices), `None` skips the
    /// check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
}

/// How the finished copy is checked against the source: `Count` (default) compares the
/// destination's document count with the source's, `Checksum` also compares every document's
/// id, routing and `_source` (a second read of both indices), `None` skips the check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Verify {
    /// The destination holds as many documents as the source had to give.
    #[default]
    Count,
    /// Both indices are read again and an order-independent digest of every document's id,
    /// routing and canonical `_source` is compared; differences are narrowed down to ids.
    /// Refused with `dest.pipeline` and `source.maxDocs` (the two sides may rightly differ).
    Checksum,
    /// No verification: the success message says "not verified".
    None,
}

/// The source of the copy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// The remote cluster.
    pub remote: Endpoint,
    /// The index (or alias) to read. Immutable.
    #[schemars(length(min = 1, max = 255))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "source.index is immutable"}]))]
    pub index: String,
    /// A query in the search DSL, sent as the search `query`; default `match_all`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::immutable_free_object")]
    pub query: Option<serde_json::Value>,
    /// Documents per scroll page (default 1000). Lowered automatically when documents are large,
    /// so that a page stays within the memory budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub size: Option<i64>,
    /// Scroll keep-alive between pages (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scroll: Option<EsDuration>,
    /// Copy at most this many documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_docs: Option<i64>,
    /// Parallel sliced reads: a number, or `auto` for one per primary shard (at most 16);
    /// unset or `auto`, more across a slow round trip (see [`Slices`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<Slices>,
    /// How the source is read: `auto` (default) probes at pre-flight for a point in time with
    /// `search_after` sorted by `_shard_doc` (a lost answer is simply asked again) and falls
    /// back to `scroll` (a lost page restarts its slice); `pit` requires it; `scroll` never
    /// tries. The mode chosen is shown in `status.paging`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<PagingMode>,
}

impl Source {
    /// The scroll / point-in-time keep-alive (`source.scroll`, default `5m`).
    pub fn keep_alive(&self) -> String {
        self.scroll
            .as_ref()
            .map_or_else(|| "5m".to_string(), |d| d.0.clone())
    }
}

/// How the source is read (see `source.paging`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PagingMode {
    /// Point in time where the source offers it (by probe), scroll otherwise.
    #[default]
    Auto,
    /// Point in time with `search_after` on `_shard_doc`; fails pre-flight if unavailable.
    Pit,
    /// Sliced scrolls.
    Scroll,
}

impl PagingMode {
    /// The name users see (`auto`, `pit`, `scroll`): `source.paging`, `status.paging`, messages
    /// and the slice Leases' `reindex.dev/paging` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            PagingMode::Auto => "auto",
            PagingMode::Pit => "pit",
            PagingMode::Scroll => "scroll",
        }
    }

    /// The mode named `name` (see [`Self::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        [PagingMode::Auto, PagingMode::Pit, PagingMode::Scroll]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// The destination of the copy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dest {
    /// The destination cluster; default: the operator's `--dest-host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Endpoint>,
    /// The index to write. Immutable.
    #[schemars(length(min = 1, max = 255))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "dest.index is immutable"}]))]
    pub index: String,
    /// Index settings applied when the index is created, e.g. `{number_of_shards: 3}`. Their
    /// `number_of_replicas` and `refresh_interval` are the values restored after the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_object")]
    pub settings: Option<serde_json::Value>,
    /// Mappings applied when the index is created. When absent and the index does not exist, the
    /// source's mappings, shard count and analysis settings are copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_object")]
    pub mappings: Option<serde_json::Value>,
    /// An ingest pipeline on the destination run for every document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// `index` (default) overwrites documents with the same `_id`; `create` keeps existing ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_type: Option<OpType>,
    /// Allow writing into an existing non-empty index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_existing: Option<bool>,
    /// Maximum size of one `_bulk` request body (default `5Mi`); a single larger document is
    /// sent alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_bytes: Option<ByteSize>,
    /// Maximum `_bulk` requests in flight at once (default: 2 per slice, at least 4, at most 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent_bulk: Option<i64>,
}

/// Who moves the documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CopyMode {
    /// The operator scrolls the source and bulk-writes the destination.
    #[default]
    Engine,
    /// The destination's `_reindex` task pulls from `source.remote`; the operator prepares,
    /// follows the task and finalizes.
    Server,
}

impl RemoteReindexSpec {
    /// The copy mode, `Engine` when unset.
    pub fn mode(&self) -> CopyMode {
        self.mode.unwrap_or_default()
    }
}

/// Version-conflict policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Conflicts {
    /// Stop the copy on the first version conflict.
    #[default]
    Abort,
    /// Count version conflicts and continue.
    Proceed,
}

/// The bulk operation used for each document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// Create or overwrite.
    #[default]
    Index,
    /// Create only; a document that already exists is left as it is.
    Create,
}

/// Retry policy for transient failures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts per request, the first included (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: Option<i64>,
    /// Upper bound of the exponential backoff between attempts (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<EsDuration>,
}
