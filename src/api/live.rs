//! Live migration: catch-up rounds after the initial copy (`spec.catchUp`), and an atomic,
//! verified cutover by alias (`spec.cutover`), with what they report (`status.catchUp`).
//!
//! Catch-up sees new and updated documents only (by a field that grows on every write);
//! **deletes in the source are not seen** unless `catchUp.deleteMissing` removes, at cutover,
//! the destination documents the source no longer has.

use super::units::EsDuration;
use crate::api::Reason;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Default `catchUp.overlap`.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(60);
/// Default `catchUp.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default `catchUp.maxLag`.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(60);

/// Keeps the destination up to date with writes to the source after the initial copy: rounds
/// copy the documents whose `field` is at or above the last high-water mark minus `overlap`,
/// every `interval`, until the cutover or deletion. Forces `dest.opType: index`. The
/// destination keeps its bulk-loading settings (no replicas, no refresh) until the cutover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatchUp {
    /// A field that grows on every write or update: a `date` field (e.g. `@timestamp`,
    /// `updated_at`) or a number holding epoch milliseconds.
    #[schemars(length(min = 1))]
    pub field: String,
    /// How far below the last high-water mark a round starts (default `1m`). Must cover the
    /// source's refresh interval, the writers' clock skew and how late a write may carry an older
    /// value of `field`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<EsDuration>,
    /// Pause between rounds (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<EsDuration>,
    /// The resource is `Synced` when a round ends less than this after its snapshot was taken
    /// (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lag: Option<EsDuration>,
    /// At the cutover, delete destination documents the source no longer has (deletes are
    /// otherwise never seen). Requires `cutover.verify: Checksum` and a destination that was
    /// empty when the copy started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_missing: Option<bool>,
}

impl CatchUp {
    /// `overlap`, parsed (validation has checked it).
    pub fn overlap(&self) -> Duration {
        parsed(self.overlap.as_ref(), DEFAULT_OVERLAP)
    }
    /// `interval`, parsed.
    pub fn interval(&self) -> Duration {
        parsed(self.interval.as_ref(), DEFAULT_INTERVAL)
    }
    /// `maxLag`, parsed.
    pub fn max_lag(&self) -> Duration {
        parsed(self.max_lag.as_ref(), DEFAULT_MAX_LAG)
    }
    /// Whether `deleteMissing` is on.
    pub fn deletes_missing(&self) -> bool {
        self.delete_missing == Some(true)
    }
}

fn parsed(d: Option<&EsDuration>, default: Duration) -> Duration {
    d.and_then(|d| d.parse().ok()).unwrap_or(default)
}

/// Switches readers to the destination: when `trigger` becomes true, a final catch-up round
/// runs, the destination's settings are restored, it is verified against the source, and the
/// `aliases` are moved to the destination index in one atomic `_aliases` call **on the
/// destination cluster** (clients still talking to the source cluster are not moved).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cutover {
    /// Set to `true` to cut over (may be changed while the copy runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<bool>,
    /// Aliases on the destination cluster to point at `dest.index` (removed from any other index
    /// in the same call; created when absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Set `index.blocks.write: true` on the source before the final round, so that no write is
    /// missed (off by default: it writes to the source). Removed again when the cutover fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_block_source: Option<bool>,
    /// How the destination is checked before the aliases move: `Checksum` (default: every
    /// document's id and `_source`) or `Count` (cannot see a missed update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<CutoverVerify>,
}

impl Cutover {
    /// Whether the cutover is requested.
    pub fn triggered(&self) -> bool {
        self.trigger == Some(true)
    }
}

/// The check before the aliases move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CutoverVerify {
    /// Compare every document's id, routing and `_source` on both sides.
    #[default]
    Checksum,
    /// Compare the document counts.
    Count,
}

/// What catch-up has done so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatchUpStatus {
    /// The largest value of `catchUp.field` seen in the source so far, at or below the source's
    /// present (as the source shows it, e.g. `2026-11-27T10:00:00.000Z` or epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water_mark: Option<String>,
    /// The high-water mark in epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water_mark_millis: Option<i64>,
    /// Rounds completed after the initial copy.
    #[serde(default)]
    pub rounds: i64,
    /// The last completed round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_round: Option<RoundStatus>,
    /// Documents whose `catchUp.field` is ahead of the source's present (dated in the future
    /// by a writer's clock or a wrong value), as the last mark found them. The high-water mark
    /// never passes the source's present, so these are copied again by every round; an Event
    /// `FutureDocuments` names one of them.
    #[serde(default)]
    pub future_documents: i64,
    /// When the aliases were moved to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_over_at: Option<Time>,
}

/// One catch-up round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoundStatus {
    /// Documents the round copied.
    pub documents: i64,
    /// Time from the round's snapshot of the source to its end, e.g. `2.4s`.
    pub lag: String,
    /// The lag in seconds.
    pub lag_seconds: f64,
}

/// The checks of `catchUp` and `cutover` that need no cluster.
pub(crate) fn check(spec: &super::RemoteReindexSpec, errs: &mut Vec<super::invalid::Invalid>) {
    let invalid = |field: &str, message: String| super::invalid::Invalid {
        field: field.to_string(),
        message,
        reason: Reason::InvalidSpec,
    };
    let cutover = spec.cutover.as_ref();
    let Some(c) = &spec.catch_up else {
        if cutover.is_some() {
            errs.push(invalid(
                "spec.cutover",
                "a cutover needs spec.catchUp (the field that tells new and updated documents apart)".into(),
            ));
        }
        return;
    };
    if c.field.trim().is_empty() {
        errs.push(invalid("spec.catchUp.field", "must name a field".into()));
    }
    for (name, d) in [
        ("spec.catchUp.overlap", &c.overlap),
        ("spec.catchUp.interval", &c.interval),
        ("spec.catchUp.maxLag", &c.max_lag),
    ] {
        if let Some(d) = d
            && let Err(m) = d.parse()
        {
            errs.push(invalid(name, m));
        }
    }
    if spec.dest.op_type == Some(super::OpType::Create) {
        errs.push(invalid(
            "spec.dest.opType",
            "`create` cannot be used with spec.catchUp: rounds overwrite updated documents (opType index)".into(),
        ));
    }
    if spec.source.max_docs.is_some() {
        errs.push(invalid(
            "spec.source.maxDocs",
            "cannot be used with spec.catchUp: rounds copy every new and updated document".into(),
        ));
    }
    let verify = cutover.and_then(|c| c.verify).unwrap_or_default();
    if c.deletes_missing() && verify != CutoverVerify::Checksum {
        errs.push(invalid(
            "spec.catchUp.deleteMissing",
            "requires spec.cutover.verify: Checksum (a count cannot tell which documents the source deleted)".into(),
        ));
    }
    if cutover.is_some()
        && verify == CutoverVerify::Checksum
        && let Some(p) = &spec.dest.pipeline
    {
        errs.push(invalid(
                "spec.cutover.verify",
                format!("Checksum cannot be used with an ingest pipeline (spec.dest.pipeline `{p}` changes documents, so they would never match the source); use Count"),
            ));
    }
    if let Some(cut) = cutover {
        for (i, a) in cut.aliases.iter().enumerate() {
            if let Err(m) = super::invalid::check_index_name(a) {
                errs.push(invalid(&format!("spec.cutover.aliases[{i}]"), m));
            } else if a == &spec.dest.index {
                errs.push(invalid(
                    &format!("spec.cutover.aliases[{i}]"),
                    format!("`{a}` is the destination index itself"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(extra: serde_json::Value) -> Vec<String> {
        let mut v = serde_json::json!({
            "source": {"remote": {"host": "http://127.0.0.1:9200"}, "index": "s"},
            "dest": {"remote": {"host": "http://127.0.0.1:9201"}, "index": "d"},
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        let spec: super::super::RemoteReindexSpec = serde_json::from_value(v).unwrap();
        let mut errs = Vec::new();
        check(&spec, &mut errs);
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn catch_up_refuses_create_max_docs_and_bad_durations() {
        assert!(errors(serde_json::json!({"catchUp": {"field": "ts"}})).is_empty());
        let e = errors(serde_json::json!({
            "catchUp": {"field": "ts", "overlap": "1x"},
            "dest": {"remote": {"host": "http://127.0.0.1:9201"}, "index": "d", "opType": "create"},
            "source": {"remote": {"host": "http://127.0.0.1:9200"}, "index": "s", "maxDocs": 5},
        }));
        assert_eq!(
            e,
            [
                "spec.catchUp.overlap",
                "spec.dest.opType",
                "spec.source.maxDocs"
            ]
        );
    }

    #[test]
    fn delete_missing_needs_checksum_and_cutover_needs_catch_up() {
        let e = errors(serde_json::json!({
            "catchUp": {"field": "ts", "deleteMissing": true},
            "cutover": {"verify": "Count", "aliases": ["live", "d", "Bad"]},
        }));
        assert_eq!(
            e,
            [
                "spec.catchUp.deleteMissing",
                "spec.cutover.aliases[1]",
                "spec.cutover.aliases[2]"
            ]
        );
        let ok = errors(serde_json::json!({
            "catchUp": {"field": "ts"},
            "cutover": {"aliases": ["live"], "verify": "Count"},
        }));
        assert!(ok.is_empty(), "{ok:?}");
        assert_eq!(
            errors(serde_json::json!({"cutover": {"trigger": true}})),
            ["spec.cutover"]
        );
    }

    #[test]
    fn durations_default() {
        let c: CatchUp =
            serde_json::from_value(serde_json::json!({"field": "ts", "interval": "5s"})).unwrap();
        assert_eq!(c.interval(), Duration::from_secs(5));
        assert_eq!(c.overlap(), DEFAULT_OVERLAP);
        assert_eq!(c.max_lag(), DEFAULT_MAX_LAG);
    }
}
