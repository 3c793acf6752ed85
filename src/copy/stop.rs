//! How a running copy is asked to stop, and what it leaves behind.

use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Why a copy is stopped; decides what happens to the scrolls and the destination's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopMode {
    /// Ctrl-C or deletion: clear the scrolls and restore the destination's settings.
    #[default]
    Interrupt,
    /// `spec.suspend`: clear the scrolls, keep the destination tuned for the resume.
    Suspend,
    /// Operator shutdown or lost leadership: keep the scrolls (a successor may resume from
    /// them) but restore the destination's settings, so an operator that never comes back
    /// does not leave an index without replicas; the successor tunes it again.
    Shutdown,
}

impl StopMode {
    /// Whether open scroll contexts survive the stop.
    pub fn keeps_scrolls(self) -> bool {
        self == StopMode::Shutdown
    }

    /// Whether the destination keeps its bulk-loading settings.
    pub fn keeps_tuning(self) -> bool {
        self == StopMode::Suspend
    }
}

/// A stop request shared by a driver and the copy it runs. Readers stop at a page boundary;
/// bulk requests already queued are finished, so counters and checkpoints match the destination.
#[derive(Debug, Default)]
pub struct Stop {
    token: CancellationToken,
    mode: Mutex<StopMode>,
}

impl Stop {
    /// A stop that has not been requested.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests the stop. The first mode asked for wins.
    pub fn request(&self, mode: StopMode) {
        if !self.token.is_cancelled() {
            *self.mode.lock().expect("stop lock") = mode;
            self.token.cancel();
        }
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The requested mode (meaningful once requested).
    pub fn mode(&self) -> StopMode {
        *self.mode.lock().expect("stop lock")
    }

    /// Resolves when a stop is requested.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }

    /// Runs `work` unless a stop is requested first (`None` then).
    pub async fn unless_requested<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.requested() => None,
            r = work => Some(r),
        }
    }

    /// The underlying token (for `select!`).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}
