//! What steers one run besides its spec: where it resumes from and the control inputs its
//! driver changes while the copy runs (stop, rate, cutover request, who runs the slices). What
//! the run reports goes the other way, to a [`super::Sink`].

use super::prepared::Prepared;
use crate::api::Cutover;
use crate::copy::{CopyError, CopyPlan, CopyStats, Stop, Throttle};
use futures::future::BoxFuture;
use std::sync::Arc;

/// One run of the workflow as its driver steers it.
pub struct Job {
    /// What an earlier attempt persisted (`None`: a fresh copy). Its originals win over
    /// whatever the destination shows now.
    pub resume: Option<Prepared>,
    /// The rate limit (`requestsPerSecond`), which the driver may change while the copy runs.
    pub throttle: Arc<Throttle>,
    /// Stop requests (pause, interrupt, shutdown, deletion).
    pub stop: Arc<Stop>,
    /// When the driver asks for the cutover (`spec.cutover.trigger`).
    pub cutover: Arc<dyn CutoverControl>,
    /// Scale-out: who runs the engine's slices when other processes do (`None`: this process
    /// runs them all).
    pub slice_runner: Option<Arc<dyn SliceRunner>>,
    /// The most slices the copier may choose by itself (the policy's `maxSlices`; `None`: 16).
    /// An explicit `spec.source.slices` is the policy check's to refuse, not this.
    pub max_slices: Option<u32>,
}

impl Job {
    /// A fresh copy at `throttle`'s rate until `stop`, never cut over, every slice run here.
    pub fn new(throttle: Arc<Throttle>, stop: Arc<Stop>) -> Self {
        Self {
            resume: None,
            throttle,
            stop,
            cutover: Arc::new(NeverCutOver),
            slice_runner: None,
            max_slices: None,
        }
    }

    /// Caps the slice count the copier chooses by measurement (the policy's `maxSlices`).
    pub fn slices_at_most(self, max: Option<u32>) -> Self {
        Self {
            max_slices: max,
            ..self
        }
    }

    /// Continues what an earlier attempt persisted.
    pub fn resuming(self, resume: Option<Prepared>) -> Self {
        Self { resume, ..self }
    }

    /// Cuts over when `control` asks.
    pub fn cut_over_by(self, control: Arc<dyn CutoverControl>) -> Self {
        Self {
            cutover: control,
            ..self
        }
    }

    /// Hands the engine's slices to `runner` (scale-out).
    pub fn slices_run_by(self, runner: Option<Arc<dyn SliceRunner>>) -> Self {
        Self {
            slice_runner: runner,
            ..self
        }
    }
}

/// How the driver asks for the cutover of a live copy (`spec.catchUp`).
pub trait CutoverControl: Send + Sync {
    /// Whether the driver has already asked (`spec.cutover.trigger: true`), so that "synced"
    /// says the cutover starts rather than how to start it.
    fn triggered(&self) -> bool;
    /// Resolves when the driver asks for the cutover, with the cutover settings to use when
    /// they changed since the copy started (`aliases`, `verify`, `writeBlockSource` may be set
    /// in the same edit as the trigger); `None`: the spec's.
    fn requested(&self) -> BoxFuture<'_, Option<Cutover>>;
}

/// A driver that never asks: catch-up runs until the copy is stopped.
struct NeverCutOver;

impl CutoverControl for NeverCutOver {
    fn triggered(&self) -> bool {
        false
    }
    fn requested(&self) -> BoxFuture<'_, Option<Cutover>> {
        Box::pin(std::future::pending())
    }
}

/// Runs a copy's slices elsewhere and waits for them.
pub trait SliceRunner: Send + Sync {
    /// Hands out every slice of `plan` that is not done yet and resolves once all are done
    /// (`Ok`), one failed or the plan cannot be handed out (`Err`), or `stop` is requested
    /// (`Err(Cancelled)`). Meanwhile `stats` holds every slice's latest checkpoint.
    fn run<'a>(
        &'a self,
        plan: &'a CopyPlan,
        stats: Arc<CopyStats>,
        stop: Arc<Stop>,
    ) -> BoxFuture<'a, Result<(), CopyError>>;
}
