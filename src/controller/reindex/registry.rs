//! The copies this process runs, keyed by resource UID, so that a re-reconcile never starts a
//! second copy and deletion can stop the running one.

use crate::api::{Reason, RemoteReindexSpec, RemoteReindexStatusPatch};
use crate::copy::Stop;
use crate::copy::Throttle;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// One copy task (running or finished) for one resource.
#[derive(Debug)]
pub struct Entry {
    /// Requested to stop the copy: `Interrupt` on deletion (settings restored, scrolls cleared),
    /// `Shutdown` when the operator stops (kept tuned, scrolls kept for the successor).
    pub stop: Arc<Stop>,
    /// Cancelled by the task when it has ended (settings restored, scrolls cleared, status written).
    pub done: CancellationToken,
    /// The copy's rate limit, changed in place on `spec.requestsPerSecond` edits.
    pub throttle: Arc<Throttle>,
    /// `spec.cutover` as the copy sees it (the trigger and the settings used only at the
    /// cutover: aliases, verify, writeBlockSource), changed in place on edits.
    pub cutover: tokio::sync::watch::Sender<Option<crate::api::Cutover>>,
    /// The task's status writer, so that a reconcile can tell at once, in a condition, what of
    /// an edit the running copy does not apply.
    writer: WriterSlot,
    /// The spec the copy runs.
    pub spec: RemoteReindexSpec,
    generation: AtomicI64,
    warned_generation: AtomicI64,
    final_patch: Mutex<Option<RemoteReindexStatusPatch>>,
    /// The policy's `maxRequestsPerSecond` when the copy started (and which policy set it).
    rate_ceiling: Mutex<Option<(f64, String)>>,
}

/// The running copy's conditions as a reconcile sees them (implemented by the task's status
/// writer; a trait, so that the registry does not depend on the writer, which holds the entry).
pub trait RunningConditions: Send + Sync {
    /// Whether condition `type_` is there with `status`.
    fn has_condition(&self, type_: &str, status: bool) -> bool;

    /// Sets one condition and writes the conditions at once, so the task's next patches keep it.
    fn note<'a>(
        &'a self,
        type_: &'a str,
        status: bool,
        reason: Reason,
        message: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), String>>;
}

/// Where an entry keeps its task's status writer (weakly: the writer holds the entry).
struct WriterSlot(std::sync::OnceLock<std::sync::Weak<dyn RunningConditions>>);

impl std::fmt::Debug for WriterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriterSlot")
    }
}

impl Entry {
    /// A new entry for a copy of `spec` at `generation`.
    pub fn new(spec: RemoteReindexSpec, generation: i64) -> Self {
        Entry {
            stop: Arc::new(Stop::new()),
            done: CancellationToken::new(),
            throttle: Arc::new(Throttle::new(spec.requests_per_second)),
            cutover: tokio::sync::watch::Sender::new(spec.cutover.clone()),
            writer: WriterSlot(std::sync::OnceLock::new()),
            spec,
            generation: AtomicI64::new(generation),
            warned_generation: AtomicI64::new(i64::MIN),
            final_patch: Mutex::new(None),
            rate_ceiling: Mutex::new(None),
        }
    }

    /// Records the task's status writer (once, when the task starts).
    pub fn set_writer(&self, writer: std::sync::Weak<dyn RunningConditions>) {
        let _ = self.writer.0.set(writer);
    }

    /// The task's status writer while the task runs.
    pub fn writer(&self) -> Option<std::sync::Arc<dyn RunningConditions>> {
        self.writer.0.get().and_then(std::sync::Weak::upgrade)
    }

    /// Records the policy's rate ceiling at the copy's start.
    pub fn set_rate_ceiling(&self, ceiling: Option<(f64, String)>) {
        if let Ok(mut c) = self.rate_ceiling.lock() {
            *c = ceiling;
        }
    }

    /// The rate ceiling the copy started with: a rethrottle above it is refused.
    pub fn rate_ceiling(&self) -> Option<(f64, String)> {
        self.rate_ceiling.lock().ok().and_then(|c| c.clone())
    }

    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        !self.done.is_cancelled()
    }

    /// The generation the copy reports as `observedGeneration`.
    pub fn generation(&self) -> i64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A running copy takes over a newer generation whose only change is the rate.
    pub fn adopt_generation(&self, generation: i64) {
        self.generation.fetch_max(generation, Ordering::SeqCst);
    }

    /// True the first time it is called for `generation` (to warn once per spec edit).
    pub fn first_warning_for(&self, generation: i64) -> bool {
        self.warned_generation.swap(generation, Ordering::SeqCst) != generation
    }

    /// Keeps the terminal status patch, so a reconcile can re-apply it if writing it failed.
    pub fn set_final_patch(&self, patch: RemoteReindexStatusPatch) {
        if let Ok(mut p) = self.final_patch.lock() {
            *p = Some(patch);
        }
    }

    /// The terminal status patch, once the task wrote (or tried to write) it.
    pub fn final_patch(&self) -> Option<RemoteReindexStatusPatch> {
        self.final_patch.lock().ok().and_then(|p| p.clone())
    }
}

/// The fields of `next` that differ from `running` and that a running copy cannot apply, as
/// `spec.` paths (e.g. `spec.source.size`). A running copy applies `requestsPerSecond` (its
/// rate, in place) and `cutover` (the trigger and the settings used only at the cutover:
/// aliases, verify, writeBlockSource), so those never count.
pub fn changes_not_applied(running: &RemoteReindexSpec, next: &RemoteReindexSpec) -> Vec<String> {
    let mut next = next.clone();
    next.requests_per_second = running.requests_per_second;
    next.cutover = running.cutover.clone();
    if *running == next {
        return Vec::new();
    }
    let (a, b) = (
        serde_json::to_value(running).unwrap_or(Value::Null),
        serde_json::to_value(&next).unwrap_or(Value::Null),
    );
    let mut out = Vec::new();
    diff_paths("spec", &a, &b, &mut out);
    if out.is_empty() {
        // Equal as JSON but not as values (cannot happen with serde's derive): say so anyway.
        out.push("spec".into());
    }
    out
}

/// Appends the paths under `path` where `a` and `b` differ (down into objects, not arrays).
fn diff_paths(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                let (va, vb) = (x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null));
                if va != vb {
                    diff_paths(&format!("{path}.{k}"), va, vb, out);
                }
            }
        }
        _ if a != b => out.push(path.to_string()),
        _ => {}
    }
}

/// Entries by resource UID.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Registry {
    /// The entry for `uid`.
    pub fn get(&self, uid: &str) -> Option<Arc<Entry>> {
        self.lock().get(uid).cloned()
    }

    /// Registers `entry` for `uid`, replacing a finished one.
    pub fn insert(&self, uid: &str, entry: Arc<Entry>) {
        self.lock().insert(uid.to_string(), entry);
    }

    /// Forgets `uid`.
    pub fn remove(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Copies still running.
    pub fn running(&self) -> Vec<Arc<Entry>> {
        self.lock()
            .values()
            .filter(|e| e.is_running())
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Entry>>> {
        // A panic while holding this lock leaves the map consistent (single inserts/removes).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RemoteReindexSpec {
        serde_json::from_value(serde_json::json!({
            "source": {"remote": {"host": "http://a:9200"}, "index": "s"},
            "dest": {"index": "d"}
        }))
        .unwrap()
    }

    #[test]
    fn rate_and_cutover_changes_apply_others_are_named() {
        let a = spec();
        let mut b = a.clone();
        b.requests_per_second = Some(10.0);
        assert!(changes_not_applied(&a, &b).is_empty());
        b.dest.index = "other".into();
        assert_eq!(changes_not_applied(&a, &b), ["spec.dest.index"]);
        // A live copy started without `cutover` gets the trigger and its settings in one edit.
        let mut triggered = a.clone();
        triggered.cutover = Some(crate::api::Cutover {
            trigger: Some(true),
            aliases: vec!["live-read".into()],
            verify: Some(crate::api::CutoverVerify::Count),
            write_block_source: Some(true),
        });
        assert!(changes_not_applied(&a, &triggered).is_empty());
        triggered.source.size = Some(77);
        triggered.source.max_docs = Some(5);
        assert_eq!(
            changes_not_applied(&a, &triggered),
            ["spec.source.maxDocs", "spec.source.size"]
        );
    }

    #[test]
    fn generation_is_adopted_and_warned_once() {
        let e = Entry::new(spec(), 1);
        e.adopt_generation(3);
        e.adopt_generation(2);
        assert_eq!(e.generation(), 3);
        assert!(e.first_warning_for(4));
        assert!(!e.first_warning_for(4));
        assert!(e.is_running());
        e.done.cancel();
        assert!(!e.is_running());
    }
}
