//! The Migration's status from its children's: index states, counts, documents and bytes, rate,
//! ETA and the bounded list of failures. Pure, shared by the reconciler and `run -f`.

use crate::api::{IndexCounts, IndexFailure, IndexState, MigrationProgress, PlannedIndex};
use crate::workflow::progress::format_eta;
use std::collections::BTreeMap;
use std::time::Duration;

/// Failed indices listed in full; beyond this only counted.
pub const FAILED_LISTED: usize = 50;

/// What the Migration needs from one child.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChildView {
    /// The child's state.
    pub state: IndexState,
    /// Documents it wrote.
    pub written: i64,
    /// Its recent rate (documents per second).
    pub rate: Option<f64>,
    /// Why it failed: reason and message.
    pub failure: Option<(String, String)>,
}

/// A state change of one index, for Events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The source index.
    pub index: String,
    /// The new state.
    pub to: IndexState,
    /// The failure reason and message, when it failed.
    pub failure: Option<(String, String)>,
}

/// The aggregate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aggregate {
    /// Plan entries with their states updated.
    pub plan: Vec<PlannedIndex>,
    /// Counts.
    pub counts: IndexCounts,
    /// Progress.
    pub progress: MigrationProgress,
    /// The first [`FAILED_LISTED`] failures.
    pub failed: Vec<IndexFailure>,
    /// Failures beyond those listed.
    pub failed_not_listed: i64,
    /// Indices whose state changed.
    pub transitions: Vec<Transition>,
}

/// Updates `plan` from `children` (by child name; a child absent keeps its entry's state unless
/// that state was Running, which goes back to Pending so it is created again).
pub fn aggregate(
    plan: &[PlannedIndex],
    children: &BTreeMap<String, ChildView>,
    previous_failures: &[IndexFailure],
) -> Aggregate {
    let mut out = Aggregate::default();
    let mut rate = 0.0;
    let mut any_rate = false;
    let mut failures: Vec<IndexFailure> = Vec::new();
    let (mut docs_copied, mut docs_expected, mut bytes_copied, mut bytes_expected) = (0, 0, 0, 0);
    for p in plan {
        let mut e = p.clone();
        let view = children.get(&p.child);
        e.state = match (view, p.state) {
            (Some(v), _) => v.state,
            (None, IndexState::Running) => IndexState::Pending,
            (None, s) => s,
        };
        if e.state != p.state {
            out.transitions.push(Transition {
                index: p.index.clone(),
                to: e.state,
                failure: view.and_then(|v| v.failure.clone()),
            });
        }
        docs_expected += p.docs;
        bytes_expected += p.bytes;
        match e.state {
            IndexState::Pending => out.counts.pending += 1,
            IndexState::Running => out.counts.running += 1,
            IndexState::Syncing => out.counts.syncing += 1,
            IndexState::Succeeded => {
                out.counts.succeeded += 1;
                bytes_copied += p.bytes;
            }
            IndexState::Failed => {
                out.counts.failed += 1;
                let f = view
                    .and_then(|v| v.failure.clone())
                    .map(|(reason, message)| IndexFailure {
                        index: p.index.clone(),
                        reason,
                        message,
                    })
                    .or_else(|| {
                        previous_failures
                            .iter()
                            .find(|f| f.index == p.index)
                            .cloned()
                    })
                    .unwrap_or_else(|| IndexFailure {
                        index: p.index.clone(),
                        reason: "Failed".into(),
                        message: format!("the child {} failed", p.child),
                    });
                failures.push(f);
            }
        }
        match view {
            Some(v) => {
                docs_copied += v.written;
                if matches!(e.state, IndexState::Running | IndexState::Syncing)
                    && let Some(r) = v.rate
                {
                    rate += r;
                    any_rate = true;
                }
            }
            None if e.state == IndexState::Succeeded => docs_copied += p.docs,
            None => {}
        }
        out.plan.push(e);
    }
    out.counts.total = plan.len() as i64;
    out.counts.summary = format!("{}/{}", out.counts.succeeded, out.counts.total);
    out.failed_not_listed = failures.len().saturating_sub(FAILED_LISTED) as i64;
    failures.truncate(FAILED_LISTED);
    out.failed = failures;
    let percent = if docs_expected > 0 {
        (docs_copied.min(docs_expected) * 100 / docs_expected).to_string()
    } else if out.counts.pending + out.counts.running == 0 {
        "100".into()
    } else {
        "0".into()
    };
    let left = (docs_expected - docs_copied).max(0);
    out.progress = MigrationProgress {
        docs_copied,
        docs_expected,
        bytes_copied,
        bytes_expected,
        docs_per_second: any_rate.then(|| format!("{rate:.0}")),
        eta: (any_rate && rate > 0.0 && left > 0)
            .then(|| format_eta(Duration::from_secs_f64(left as f64 / rate))),
        docs_summary: format!("{docs_copied}/{docs_expected}"),
        percent_summary: format!("{percent}%"),
    };
    out
}

/// `IndicesFailed` message naming the failed indices (the listed ones, then a count).
pub fn failed_message(failed: &[IndexFailure], not_listed: i64) -> String {
    let mut names: Vec<String> = failed
        .iter()
        .take(10)
        .map(|f| format!("{} ({})", f.index, f.reason))
        .collect();
    let more = failed.len().saturating_sub(10) as i64 + not_listed;
    if more > 0 {
        names.push(format!("and {more} more"));
    }
    format!("indices failed: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: &str, docs: i64, state: IndexState) -> PlannedIndex {
        PlannedIndex {
            index: i.into(),
            dest_index: i.into(),
            child: format!("m-{i}"),
            docs,
            bytes: docs * 10,
            shards: 1,
            state,
        }
    }

    #[test]
    fn counts_progress_failures_and_transitions() {
        let plan = vec![
            entry("a", 100, IndexState::Running),
            entry("b", 50, IndexState::Running),
            entry("c", 50, IndexState::Pending),
            entry("d", 10, IndexState::Succeeded),
        ];
        let mut children = BTreeMap::new();
        children.insert(
            "m-a".into(),
            ChildView {
                state: IndexState::Running,
                written: 40,
                rate: Some(20.0),
                failure: None,
            },
        );
        children.insert(
            "m-b".into(),
            ChildView {
                state: IndexState::Failed,
                written: 5,
                rate: None,
                failure: Some(("DestinationNotEmpty".into(), "b exists".into())),
            },
        );
        let a = aggregate(&plan, &children, &[]);
        assert_eq!(
            (
                a.counts.pending,
                a.counts.running,
                a.counts.succeeded,
                a.counts.failed
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(a.counts.summary, "1/4");
        assert_eq!(
            a.progress.docs_copied,
            40 + 5 + 10,
            "a succeeded child with no object left counts its docs"
        );
        assert_eq!(a.progress.docs_expected, 210);
        assert_eq!(a.progress.bytes_copied, 100);
        assert_eq!(a.progress.docs_per_second.as_deref(), Some("20"));
        assert_eq!(a.progress.eta.as_deref(), Some("7s"), "155 left at 20/s");
        assert_eq!(a.failed[0].reason, "DestinationNotEmpty");
        assert_eq!(
            a.transitions,
            vec![Transition {
                index: "b".into(),
                to: IndexState::Failed,
                failure: Some(("DestinationNotEmpty".into(), "b exists".into()))
            }]
        );
        assert!(failed_message(&a.failed, 0).contains("b (DestinationNotEmpty)"));
    }

    #[test]
    fn failures_beyond_fifty_are_counted() {
        let plan: Vec<_> = (0..60)
            .map(|i| entry(&format!("i{i}"), 1, IndexState::Failed))
            .collect();
        let a = aggregate(&plan, &BTreeMap::new(), &[]);
        assert_eq!((a.failed.len(), a.failed_not_listed), (50, 10));
        assert!(failed_message(&a.failed, a.failed_not_listed).ends_with("and 50 more"));
    }
}
