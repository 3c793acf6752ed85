//! The `Migration` custom resource: many indices, their aliases and templates, copied by one
//! `RemoteReindex` child per index (as a Deployment owns Pods). The Migration never copies a
//! document itself.

use super::endpoint::Endpoint;
use super::spec::{Conflicts, OpType, RetryPolicy};
use super::units::{ByteSize, EsDuration, Slices};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Migrates many indices from a remote cluster, with their templates and aliases: the patterns
/// in `indices` are resolved against the source once, at start, and each index is copied by a
/// `RemoteReindex` child, `parallelism` at a time, larger indices first.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "reindex.dev",
    version = "v1alpha1",
    kind = "Migration",
    plural = "migrations",
    singular = "migration",
    shortname = "mig",
    namespaced,
    status = "MigrationStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Indices","type":"string","jsonPath":".status.indices.summary"}"#,
    printcolumn = r#"{"name":"Docs","type":"string","jsonPath":".status.progress.docsSummary"}"#,
    printcolumn = r#"{"name":"Progress","type":"string","jsonPath":".status.progress.percentSummary"}"#,
    printcolumn = r#"{"name":"ETA","type":"string","jsonPath":".status.progress.eta"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSpec {
    /// The cluster the indices come from.
    pub source: MigrationSource,
    /// The cluster the indices go to.
    #[serde(default)]
    pub dest: MigrationDest,
    /// Index names and patterns (`*` wildcards) to copy, e.g. `logs-2024-*`, `orders`. Hidden
    /// indices and names starting with `.` are copied only when named explicitly.
    #[schemars(length(min = 1))]
    pub indices: Vec<String>,
    /// Patterns of indices not to copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// The destination index name, with `{index}` for the source name (default `{index}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"\{index\}"))]
    pub dest_index: Option<String>,
    /// Indices copied at once (default 2); larger indices start first. Lowered when the open
    /// scroll contexts would exceed the source's `search.max_open_scroll_context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub parallelism: Option<i64>,
    /// Copy options applied to every child, with the field names of a `RemoteReindex` spec.
    /// Editing it affects only children not yet started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ChildTemplate>,
    /// Per-index changes to `template`, for the few indices that need them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<IndexOverride>,
    /// Which metadata is copied (both default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataOptions>,
    /// `Continue` (default): a failing index does not stop the others. `Stop`: no new index
    /// starts after one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<FailurePolicy>,
    /// Live migration (with `template.catchUp`): when `trigger` becomes true, every child that
    /// is catching up runs its final round and verifies; the source's aliases are created on the
    /// destination once every index they span has cut over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<MigrationCutover>,
}

/// The cutover of every index of a Migration (see `RemoteReindex` `spec.cutover`; the aliases
/// are the source's, moved by the Migration).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationCutover {
    /// Set to `true` to cut over every index (may be changed while the Migration runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<bool>,
    /// Block writes to each source index before its final round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_block_source: Option<bool>,
    /// How each index is checked: `Checksum` (default) or `Count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::live::CutoverVerify>,
}

impl MigrationCutover {
    /// Whether the cutover is requested.
    pub fn triggered(&self) -> bool {
        self.trigger == Some(true)
    }

    /// The children's `spec.cutover` (no aliases of their own).
    pub fn child(&self) -> super::live::Cutover {
        super::live::Cutover {
            trigger: self.trigger,
            aliases: Vec::new(),
            write_block_source: self.write_block_source,
            verify: self.verify,
        }
    }
}

/// The source cluster of a Migration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSource {
    /// The remote cluster.
    pub remote: Endpoint,
}

/// The destination cluster of a Migration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationDest {
    /// The destination cluster; default: the operator's `--dest-host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<Endpoint>,
}

/// A `RemoteReindex` spec fragment applied to every child (same field names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChildTemplate {
    /// `spec.catchUp`: each child keeps copying new and updated documents after its initial
    /// copy until the Migration's `cutover.trigger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<super::live::CatchUp>,
    /// Read options of `spec.source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceOptions>,
    /// Write options of `spec.dest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<DestOptions>,
    /// `spec.conflicts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Conflicts>,
    /// `spec.maxFailedDocs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_failed_docs: Option<i64>,
    /// `spec.preflightTimeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight_timeout: Option<EsDuration>,
    /// `spec.requestsPerSecond`, per child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001))]
    pub requests_per_second: Option<f64>,
    /// `spec.retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// `spec.source` fields of a child other than `remote` and `index`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceOptions {
    /// `spec.source.query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_object")]
    pub query: Option<serde_json::Value>,
    /// `spec.source.size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub size: Option<i64>,
    /// `spec.source.scroll`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scroll: Option<EsDuration>,
    /// `spec.source.maxDocs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_docs: Option<i64>,
    /// `spec.source.slices`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<Slices>,
}

/// `spec.dest` fields of a child other than `remote` and `index`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestOptions {
    /// `spec.dest.settings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_object")]
    pub settings: Option<serde_json::Value>,
    /// `spec.dest.mappings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_object")]
    pub mappings: Option<serde_json::Value>,
    /// `spec.dest.pipeline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// `spec.dest.opType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_type: Option<OpType>,
    /// `spec.dest.allowExisting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_existing: Option<bool>,
    /// `spec.dest.bulkBytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_bytes: Option<ByteSize>,
    /// `spec.dest.maxConcurrentBulk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent_bulk: Option<i64>,
}

/// Changes to `template` for the indices matching `index`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexOverride {
    /// A source index name or pattern.
    pub index: String,
    /// Fields set here replace the template's (objects are merged field by field).
    pub template: ChildTemplate,
}

/// What metadata a Migration copies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    /// Component, composable and legacy templates matching a copied index, before any data
    /// (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<bool>,
    /// The aliases of the copied indices, each created once every index it spans has verified
    /// (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<bool>,
}

/// What one failing index does to the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicy {
    /// The other indices go on.
    #[default]
    Continue,
    /// No new index starts after a failure; running ones finish.
    Stop,
}

impl MigrationSpec {
    /// `parallelism` with its default.
    pub fn parallelism(&self) -> usize {
        self.parallelism.unwrap_or(2).clamp(1, 64) as usize
    }

    /// The destination name of `index`.
    pub fn dest_name(&self, index: &str) -> String {
        self.dest_index
            .as_deref()
            .unwrap_or("{index}")
            .replace("{index}", index)
    }

    /// Whether templates are copied.
    pub fn copy_templates(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.templates)
            .unwrap_or(true)
    }

    /// Whether aliases are copied.
    pub fn copy_aliases(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.aliases)
            .unwrap_or(true)
    }
}

/// Observed state of a `Migration`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// Pending, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<MigrationPhase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Index counts by state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indices: Option<IndexCounts>,
    /// Documents and bytes copied and expected, rate and ETA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<MigrationProgress>,
    /// The indices resolved at start, larger first, with their state. Fixed once resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlannedIndex>,
    /// Indices that failed, with the reason (the first 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<IndexFailure>,
    /// Failed indices beyond the 50 listed in `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_not_listed: Option<i64>,
    /// Matched but not copied: closed indices, data streams (the first 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<IndexFailure>,
    /// Open scroll contexts at the peak of the plan against the source's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scroll_contexts: Option<ScrollContexts>,
    /// Templates copied or refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<MetadataItem>,
    /// Aliases created, waiting or refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<MetadataItem>,
    /// When the Migration started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the Migration reached Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}

/// The lifecycle of a Migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MigrationPhase {
    /// Resolving indices, checking both clusters, copying templates.
    Pending,
    /// Children are copying.
    Running,
    /// Every index copied and verified, every alias created.
    Succeeded,
    /// An index, template or alias failed (see `failed` and the `Degraded` condition).
    Failed,
}

impl MigrationPhase {
    /// Succeeded and Failed end a generation's work.
    pub fn is_terminal(self) -> bool {
        matches!(self, MigrationPhase::Succeeded | MigrationPhase::Failed)
    }
}

impl std::fmt::Display for MigrationPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Index counts by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexCounts {
    /// Indices to copy.
    pub total: i64,
    /// Not started.
    pub pending: i64,
    /// Copying now.
    pub running: i64,
    /// Initial copy done, catching up until the cutover (`template.catchUp`).
    #[serde(default)]
    pub syncing: i64,
    /// Copied and verified.
    pub succeeded: i64,
    /// Failed.
    pub failed: i64,
    /// `succeeded/total`, e.g. `12/40`.
    pub summary: String,
}

/// Progress of a Migration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationProgress {
    /// Documents written by all children.
    pub docs_copied: i64,
    /// Documents expected (the source's counts at start).
    pub docs_expected: i64,
    /// Source primary store size of the indices that finished successfully.
    pub bytes_copied: i64,
    /// Source primary store size of all indices to copy.
    pub bytes_expected: i64,
    /// Documents per second across running children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_per_second: Option<String>,
    /// Estimated time left at the current rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    /// `copied/expected` for `kubectl get`.
    pub docs_summary: String,
    /// Percent of expected documents copied, e.g. `48%`.
    pub percent_summary: String,
}

/// One index of the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedIndex {
    /// The source index.
    pub index: String,
    /// The destination index.
    pub dest_index: String,
    /// The child `RemoteReindex`.
    pub child: String,
    /// Documents at resolution.
    pub docs: i64,
    /// Primary store size in bytes at resolution.
    pub bytes: i64,
    /// Primary shards.
    pub shards: i64,
    /// Pending, Running, Succeeded or Failed.
    pub state: IndexState,
}

/// The state of one planned index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IndexState {
    /// Its child has not been created.
    #[default]
    Pending,
    /// Its child exists and has not finished.
    Running,
    /// Its child finished the initial copy and catches up until the cutover; it no longer
    /// counts against `parallelism`.
    Syncing,
    /// Its child succeeded (copied and verified).
    Succeeded,
    /// Its child failed.
    Failed,
}

/// An index that failed or was not copied, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexFailure {
    /// The source index (or data stream).
    pub index: String,
    /// A condition-style reason, e.g. `DestinationNotEmpty`, `IndexClosed`,
    /// `DataStreamNotSupported`.
    pub reason: String,
    /// Details.
    pub message: String,
}

/// Open scroll contexts of the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScrollContexts {
    /// The most contexts open at once: the largest `slices × shards` of `parallelism` indices.
    pub peak: i64,
    /// The source's `search.max_open_scroll_context` (500 when not set).
    pub limit: i64,
    /// The parallelism used (lowered from `spec.parallelism` when the peak would exceed the limit).
    pub parallelism: i64,
}

/// A template or alias and what became of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataItem {
    /// `component`, `composable`, `legacy` or `alias`.
    pub kind: String,
    /// The name.
    pub name: String,
    /// `Created`, `Waiting`, `Failed` or `AliasIncomplete`.
    pub state: String,
    /// Details: dropped settings, the clash, the indices not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For an alias: the source indices it spans.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indices: Vec<String>,
}
