//! Typed merge patches of `.status` (RFC 7386) for both resources the controllers write.
//!
//! A merge patch says three things about a field: leave it (the key is absent), clear it
//! (`null`), or set it. [`Change`] names the three, so that a patch struct cannot lose a `null`
//! the way `skip_serializing_if = "Option::is_none"` would: a field that must be cleared is
//! `Change::Clear`, and `Change::from(Option)` maps `None` to `Clear`, as `json!` did.

use super::live::CatchUpStatus;
use super::migration::{
    IndexCounts, IndexFailure, MetadataItem, MigrationPhase, MigrationProgress, PlannedIndex,
    ScrollContexts,
};
use super::status::{
    CopyTarget, FailedDoc, OriginalSettings, Phase, Progress, SliceStatus, Verification,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Serialize, Serializer};

/// One field of a merge patch.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Change<T> {
    /// Not in the patch: the stored value stays.
    #[default]
    Keep,
    /// Sent as `null`: the stored value is removed.
    Clear,
    /// Sent as this value.
    Set(T),
}

impl<T> Change<T> {
    /// Whether the field is left out of the patch.
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }
}

/// `None` clears the field, `Some` sets it.
impl<T> From<Option<T>> for Change<T> {
    fn from(value: Option<T>) -> Self {
        match value {
            Some(v) => Change::Set(v),
            None => Change::Clear,
        }
    }
}

impl<T: Serialize> Serialize for Change<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // `Keep` is skipped by every field's `skip_serializing_if`; alone it means nothing.
            Change::Keep | Change::Clear => s.serialize_none(),
            Change::Set(v) => v.serialize(s),
        }
    }
}

/// A merge patch of [`super::RemoteReindexStatus`] (same keys; see the fields there).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RemoteReindexStatusPatch {
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub phase: Change<Phase>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub observed_generation: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub conditions: Change<Vec<Condition>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub progress: Change<ProgressPatch>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub original_settings: Change<OriginalSettings>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub dest_was_empty: Change<bool>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub dest_index_uuid: Change<String>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub paging: Change<String>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub open_scrolls: Change<Vec<String>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub target: Change<CopyTarget>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub slices: Change<Vec<SliceStatus>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub task: Change<String>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub failures: Change<Vec<FailedDoc>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub catch_up: Change<CatchUpStatus>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub verification: Change<Verification>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub started_at: Change<Time>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub completed_at: Change<Time>,
}

/// A merge patch of [`Progress`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct ProgressPatch {
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub total: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub read: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub written: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub failed: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub conflicts: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub rewritten: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub restarts: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub retries: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub percent: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub docs_per_second: Change<String>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub eta: Change<String>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub summary: Change<String>,
}

/// The whole block: every counter set, and every absent optional field cleared, so a stale
/// `eta` or rate from an earlier patch is removed rather than kept.
impl From<&Progress> for ProgressPatch {
    fn from(p: &Progress) -> Self {
        ProgressPatch {
            total: p.total.into(),
            read: Change::Set(p.read),
            written: Change::Set(p.written),
            failed: Change::Set(p.failed),
            conflicts: Change::Set(p.conflicts),
            rewritten: Change::Set(p.rewritten),
            restarts: Change::Set(p.restarts),
            retries: Change::Set(p.retries),
            percent: p.percent.into(),
            docs_per_second: p.docs_per_second.clone().into(),
            eta: p.eta.clone().into(),
            summary: p.summary.clone().into(),
        }
    }
}

/// A merge patch of [`super::MigrationStatus`] (same keys; see the fields there).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct MigrationStatusPatch {
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub phase: Change<MigrationPhase>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub observed_generation: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub conditions: Change<Vec<Condition>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub indices: Change<IndexCounts>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub progress: Change<MigrationProgressPatch>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub plan: Change<Vec<PlannedIndex>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub failed: Change<Vec<IndexFailure>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub failed_not_listed: Change<i64>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub skipped: Change<Vec<IndexFailure>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub scroll_contexts: Change<ScrollContexts>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub templates: Change<Vec<MetadataItem>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub aliases: Change<Vec<MetadataItem>>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub started_at: Change<Time>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub completed_at: Change<Time>,
}

/// A merge patch of [`MigrationProgress`]: its counters and summaries, and `eta` only when
/// said ([`MigrationProgressPatch::with_eta`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct MigrationProgressPatch {
    pub docs_copied: i64,
    pub docs_expected: i64,
    pub bytes_copied: i64,
    pub bytes_expected: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docs_per_second: Option<String>,
    #[serde(skip_serializing_if = "Change::is_keep")]
    pub eta: Change<String>,
    pub docs_summary: String,
    pub percent_summary: String,
}

/// The block as stored: an absent `eta` is left out (not cleared).
impl From<&MigrationProgress> for MigrationProgressPatch {
    fn from(p: &MigrationProgress) -> Self {
        MigrationProgressPatch {
            docs_copied: p.docs_copied,
            docs_expected: p.docs_expected,
            bytes_copied: p.bytes_copied,
            bytes_expected: p.bytes_expected,
            docs_per_second: p.docs_per_second.clone(),
            eta: p.eta.clone().map_or(Change::Keep, Change::Set),
            docs_summary: p.docs_summary.clone(),
            percent_summary: p.percent_summary.clone(),
        }
    }
}

impl MigrationProgressPatch {
    /// The same block with `eta` set, or cleared when there is none.
    pub fn with_eta(mut self, eta: Option<String>) -> Self {
        self.eta = eta.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keep_is_left_out_clear_is_null_set_is_the_value() {
        let patch = RemoteReindexStatusPatch {
            phase: Change::Set(Phase::Copying),
            task: Change::Clear,
            open_scrolls: Change::Set(vec![]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!({ "phase": "Copying", "task": null, "openScrolls": [] })
        );
    }

    #[test]
    fn a_progress_block_clears_what_it_does_not_know() {
        let p = Progress {
            total: Some(5),
            read: 1,
            ..Default::default()
        };
        let v = serde_json::to_value(ProgressPatch::from(&p)).unwrap();
        assert_eq!(v["total"], 5);
        assert_eq!(v["read"], 1);
        for k in ["percent", "docsPerSecond", "eta", "summary"] {
            assert_eq!(v.get(k), Some(&serde_json::Value::Null), "{k}");
        }
    }

    #[test]
    fn a_migration_progress_block_clears_eta_only_when_asked() {
        let p = MigrationProgress::default();
        let kept = serde_json::to_value(MigrationProgressPatch::from(&p)).unwrap();
        assert!(kept.get("eta").is_none());
        let cleared =
            serde_json::to_value(MigrationProgressPatch::from(&p).with_eta(None)).unwrap();
        assert_eq!(cleared.get("eta"), Some(&serde_json::Value::Null));
        let set = MigrationProgressPatch::from(&p).with_eta(Some("3m".into()));
        assert_eq!(serde_json::to_value(set).unwrap()["eta"], "3m");
    }
}
