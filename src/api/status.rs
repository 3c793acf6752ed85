//! `RemoteReindexStatus`: phase, conditions, progress and what finalization must restore.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a `RemoteReindex`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteReindexStatus {
    /// Where the copy is: Pending, Copying, Syncing, Finalizing, Succeeded, Failed or Suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, following Kubernetes conventions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Document counts and speed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// The destination's values before tuning; restored after the copy and on deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_settings: Option<OriginalSettings>,
    /// Whether the destination index was empty (or absent) when the copy started; only then can
    /// its final count be verified exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_was_empty: Option<bool>,
    /// The destination index's UUID when the copy started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_index_uuid: Option<String>,
    /// How the source is read: `pit` or `scroll` (chosen at pre-flight, see `source.paging`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<String>,
    /// Scroll ids that may still be open on the source (cleared on completion or deletion).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_scrolls: Vec<String>,
    /// What this resource copies, recorded when its first copy starts: `source.index`,
    /// `source.query` and `dest.index` may not change afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<CopyTarget>,
    /// Per-slice checkpoints: after a restart, done slices are not copied again and a running
    /// slice continues its scroll or point in time when that is safe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<SliceStatus>,
    /// `mode: Server`: the destination's `_reindex` task, `<node>:<id>`, recorded as soon as it
    /// starts; a restarted operator follows it again by this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// A capped sample of documents that failed, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailedDoc>,
    /// Live migration: high-water mark, rounds and lag of the catch-up, and the cutover time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<super::live::CatchUpStatus>,
    /// The result of the last verification against the source (`spec.verify: Checksum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// When the copy started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the resource reached Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}

/// The immutable identity of a copy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CopyTarget {
    /// `spec.source.index` when the copy started.
    pub source_index: String,
    /// `spec.source.query` (compact JSON) when the copy started, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `spec.dest.index` when the copy started.
    pub dest_index: String,
}

impl CopyTarget {
    /// The target a spec describes.
    pub fn of(spec: &super::RemoteReindexSpec) -> Self {
        CopyTarget {
            source_index: spec.source.index.clone(),
            query: spec.source.query.as_ref().map(|q| q.to_string()),
            dest_index: spec.dest.index.clone(),
        }
    }

    /// The immutable fields of `spec` that differ from this target, with their old values.
    pub fn changes(&self, spec: &super::RemoteReindexSpec) -> Vec<String> {
        let now = Self::of(spec);
        let mut out = Vec::new();
        if now.source_index != self.source_index {
            out.push(format!("spec.source.index (was `{}`)", self.source_index));
        }
        if now.query != self.query {
            out.push(format!(
                "spec.source.query (was {})",
                self.query.as_deref().unwrap_or("unset")
            ));
        }
        if now.dest_index != self.dest_index {
            out.push(format!("spec.dest.index (was `{}`)", self.dest_index));
        }
        out
    }
}

/// One slice's checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SliceStatus {
    /// Slice number, from 0.
    pub id: i64,
    /// `pending`, `running` or `done`.
    pub state: SliceStateName,
    /// Documents read by this slice.
    #[serde(default)]
    pub read: i64,
    /// Documents written by this slice.
    #[serde(default)]
    pub written: i64,
    /// Documents of this slice the destination rejected.
    #[serde(default)]
    pub failed: i64,
    /// Version conflicts skipped in this slice.
    #[serde(default)]
    pub conflicts: i64,
    /// The slice's open scroll on the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scroll_id: Option<String>,
    /// The point in time the slice reads (PIT paging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pit_id: Option<String>,
    /// Sort values of the last document read and written (PIT paging, JSON): a successor
    /// continues with `search_after` them while the point in time lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_after: Option<String>,
    /// Every page fetched was written: a successor may continue the scroll or PIT cursor.
    #[serde(default)]
    pub resumable: bool,
    /// Documents of this slice in the source snapshot its current pass reads (the exact
    /// `hits.total` of its first page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Times the slice started over from its beginning (a lost scroll page, an expired scroll
    /// or point in time, a page over the memory budget).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: i64,
    /// Documents written again because the slice restarted or a bulk request was re-sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rewritten: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A slice's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SliceStateName {
    /// Not started.
    #[default]
    Pending,
    /// Copying.
    Running,
    /// All its documents are in the destination.
    Done,
}

/// The lifecycle phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Accepted; validating the spec and the clusters.
    Pending,
    /// Documents are being copied.
    Copying,
    /// Settings are being restored and counts verified.
    Finalizing,
    /// Live migration: the initial copy is done and catch-up rounds keep the destination
    /// within `catchUp.maxLag` of the source until the cutover.
    Syncing,
    /// Copied and verified (terminal for this generation).
    Succeeded,
    /// Stopped with an error (terminal for this generation); see the conditions.
    Failed,
    /// Paused by `spec.suspend: true`: scrolls cleared, destination kept tuned, progress
    /// checkpointed; resumes when `suspend` is set back to false.
    Suspended,
}

impl Phase {
    /// Succeeded and Failed end a generation's work.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Counts and speed of the copy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Documents expected: the exact total of the query in the source's snapshot the copy
    /// reads (first pages with `track_total_hits`), capped by `maxDocs`, recorded before the
    /// first write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    /// Documents read from the source.
    pub read: i64,
    /// Documents written to the destination.
    pub written: i64,
    /// Documents the destination rejected.
    pub failed: i64,
    /// Version conflicts skipped (`conflicts: proceed`): documents already in the destination
    /// that this copy did not write.
    #[serde(default)]
    pub conflicts: i64,
    /// Documents written again (counted in `written` too): met again after a slice restarted,
    /// or in a bulk request re-sent after its answer was lost.
    #[serde(default)]
    pub rewritten: i64,
    /// Slice restarts (see `slices[].restarts`).
    #[serde(default)]
    pub restarts: i64,
    /// Requests retried after 429/5xx or a dropped connection.
    #[serde(default)]
    pub retries: i64,
    /// Percent of `total` written, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Recent copy rate (moving average), e.g. `5230`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_per_second: Option<String>,
    /// Estimated time left, e.g. `3m20s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    /// One-line summary for `kubectl get`, e.g. `12034/25000 (48%)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The destination's `number_of_replicas` and `refresh_interval` before tuning. A value of
/// `null`/absent inside a recorded setting means the key was unset (cluster default) and is
/// restored by resetting it to `null`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OriginalSettings {
    /// `index.number_of_replicas` before tuning.
    pub number_of_replicas: RecordedSetting,
    /// `index.refresh_interval` before tuning.
    pub refresh_interval: RecordedSetting,
}

/// One recorded setting value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedSetting {
    /// The value, or absent when the key was unset on the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// True when the key was not set on the index (restored to the cluster default).
    #[serde(default)]
    pub unset: bool,
}

impl RecordedSetting {
    /// A recorded explicit value.
    pub fn set(value: impl Into<String>) -> Self {
        RecordedSetting {
            value: Some(value.into()),
            unset: false,
        }
    }
    /// A key that was not set.
    pub fn unset() -> Self {
        RecordedSetting {
            value: None,
            unset: true,
        }
    }
    /// The JSON value to restore: the string, or `null` to reset to the default.
    pub fn restore_value(&self) -> serde_json::Value {
        match (&self.value, self.unset) {
            (Some(v), false) => serde_json::Value::String(v.clone()),
            _ => serde_json::Value::Null,
        }
    }
}

/// A document the destination rejected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedDoc {
    /// The document's `_id`.
    pub id: String,
    /// HTTP status of the bulk item.
    pub status: i64,
    /// The error type and reason from the destination.
    pub reason: String,
}

/// What a verification compared and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// How the copy was verified (`Count` or `Checksum`).
    pub method: super::Verify,
    /// Documents the source holds (for the query).
    pub expected: i64,
    /// Documents the destination holds.
    pub found: i64,
    /// Documents of the source absent from the destination.
    #[serde(default)]
    pub missing: i64,
    /// Documents in the destination that the source does not have.
    #[serde(default)]
    pub unexpected: i64,
    /// Documents in both whose routing or `_source` differ.
    #[serde(default)]
    pub differing: i64,
    /// Up to 20 ids of missing, unexpected or differing documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_ids: Vec<String>,
    /// Buckets of ids too large to narrow down (the counts above are then lower bounds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unresolved_buckets: i64,
}

#[cfg(test)]
mod tests {
    use super::CopyTarget;

    fn spec(
        source: &str,
        query: Option<serde_json::Value>,
        dest: &str,
    ) -> super::super::RemoteReindexSpec {
        serde_json::from_value(serde_json::json!({
            "source": {"remote": {"host": "http://es:9200"}, "index": source, "query": query},
            "dest": {"index": dest},
        }))
        .unwrap()
    }

    /// The operator's own immutability check, for a CRD applied without its CEL rules.
    #[test]
    fn changes_name_every_immutable_field_with_its_old_value() {
        let target = CopyTarget::of(&spec(
            "logs",
            Some(serde_json::json!({"term": {"a": 1}})),
            "copy",
        ));
        assert!(
            target
                .changes(&spec(
                    "logs",
                    Some(serde_json::json!({"term": {"a": 1}})),
                    "copy"
                ))
                .is_empty()
        );
        assert_eq!(
            target.changes(&spec("other", None, "elsewhere")),
            vec![
                "spec.source.index (was `logs`)".to_string(),
                r#"spec.source.query (was {"term":{"a":1}})"#.to_string(),
                "spec.dest.index (was `copy`)".to_string(),
            ]
        );
    }
}
