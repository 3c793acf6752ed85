//! Where a run's phases and progress go: the controller persists them to `.status` and
//! records Events, the CLI prints. Control inputs (stop, throttle, cutover requests, who runs
//! the slices) come the other way, in a [`super::Job`].

use super::PreflightRetry;
use super::prepared::Prepared;
use crate::api::{CatchUpStatus, Phase};
use crate::copy::{CopyStats, StatsSnapshot};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Where phases and progress go.
pub trait Sink: Send + Sync {
    /// The workflow entered a non-terminal phase.
    fn phase(
        &self,
        phase: Phase,
        reason: crate::api::Reason,
        message: String,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Persist this before the destination is tuned: a restart must read these originals.
    fn prepared(&self, prepared: &Prepared) -> impl Future<Output = Result<(), String>> + Send;
    /// The copy opened its slices on the source: `expected` documents (the exact total of the
    /// source's snapshot, capped by `maxDocs`), read by `paging` (`pit` or `scroll`). Persist it
    /// before anything is written: verification compares the destination with it.
    fn expected(
        &self,
        expected: u64,
        paging: &'static str,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The copy started: sample `stats` for progress (until the workflow returns).
    fn copying(&self, stats: Arc<CopyStats>, total: Option<u64>);
    /// Catch-up recorded its high-water mark, ended a round or cut over (`spec.catchUp`).
    /// Default: nothing is recorded.
    fn catch_up(&self, report: &CatchUpReport) -> impl Future<Output = Result<(), String>> + Send {
        let _ = report;
        async { Ok(()) }
    }
    /// A pre-flight check failed and will be retried until `preflightTimeout`: show why now.
    fn preflight_retry(&self, retry: PreflightRetry) -> impl Future<Output = ()> + Send {
        let _ = retry;
        async {}
    }

    /// `mode: Server`: the destination's reindex task, `<node>:<id>`, persisted before anything
    /// else happens (`None`: it was cancelled and must not be followed again). Sinks that
    /// persist nothing need not implement it.
    fn task(&self, task: Option<&str>) -> impl Future<Output = Result<(), String>> + Send {
        let _ = task;
        async { Ok(()) }
    }
}

/// What the drivers are told about catch-up.
#[derive(Clone, Debug)]
pub struct CatchUpReport {
    /// The status block to persist (`status.catchUp`).
    pub status: CatchUpStatus,
    /// After a round: whether its lag was under `maxLag`.
    pub synced: Option<bool>,
    /// After a round: its counters.
    pub round: Option<StatsSnapshot>,
    /// After a round: its lag.
    pub lag: Option<Duration>,
    /// Set once the aliases moved.
    pub cut_over: bool,
    /// Set when documents dated ahead of the source's present were first found: one line for
    /// the `FutureDocuments` Event, naming one of them.
    pub future: Option<String>,
    /// One line for conditions, Events and the CLI.
    pub message: String,
}
