//! `remote-reindex run -f FILE…`: the local driver of the workflow.

use super::local::{RunArgs, local_settings};
use super::manifest::Manifests;
use super::progress;
use crate::api::Phase;
use crate::copy::{CopyStats, Stop, StopMode, Throttle};
use crate::workflow::{self, PreflightRetry, Prepared, Sink};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Prints phases and draws progress.
struct TerminalSink {
    progress_stop: CancellationToken,
    drawer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set once a catch-up round ended within maxLag.
    synced: Arc<tokio::sync::watch::Sender<bool>>,
}

/// `run -f` cuts over when the manifest says `spec.cutover.trigger: true` and a catch-up round
/// ended within maxLag; otherwise it keeps catching up until interrupted.
struct CutoverWhenSynced {
    /// `spec.cutover.trigger` in the manifest.
    triggered: bool,
    synced: Arc<tokio::sync::watch::Sender<bool>>,
}

impl workflow::CutoverControl for CutoverWhenSynced {
    fn triggered(&self) -> bool {
        self.triggered
    }

    fn requested(&self) -> futures::future::BoxFuture<'_, Option<crate::api::Cutover>> {
        Box::pin(async {
            if !self.triggered {
                return std::future::pending().await;
            }
            let mut rx = self.synced.subscribe();
            if rx.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
            None
        })
    }
}

impl Sink for TerminalSink {
    async fn phase(
        &self,
        phase: Phase,
        _reason: crate::api::Reason,
        message: String,
    ) -> Result<(), String> {
        if phase == Phase::Finalizing {
            self.stop_drawing().await;
        }
        eprintln!("{phase}: {message}");
        Ok(())
    }

    async fn prepared(&self, p: &Prepared) -> Result<(), String> {
        eprintln!(
            "Prepared: {}; destination settings before tuning: number_of_replicas={}, refresh_interval={}",
            p.summary,
            shown(&p.original_settings.number_of_replicas),
            shown(&p.original_settings.refresh_interval)
        );
        Ok(())
    }

    async fn catch_up(&self, report: &workflow::CatchUpReport) -> Result<(), String> {
        // The initial copy's bar ends with the first round.
        self.stop_drawing().await;
        eprintln!("CatchUp: {}", report.message);
        if let Some(notice) = &report.future {
            eprintln!("Warning [FutureDocuments]: {notice}");
        }
        if report.synced == Some(true) {
            self.synced.send_replace(true);
        }
        Ok(())
    }

    async fn task(&self, task: Option<&str>) -> Result<(), String> {
        match task {
            Some(t) => eprintln!("task: {t}"),
            None => eprintln!("task cancelled"),
        }
        Ok(())
    }

    async fn expected(&self, expected: u64, paging: &'static str) -> Result<(), String> {
        eprintln!(
            "Expected: {expected} documents in the source's snapshot (read by {paging}); the destination is verified against it"
        );
        Ok(())
    }

    async fn preflight_retry(&self, retry: PreflightRetry) {
        eprintln!("Pending [{}]: {}", retry.reason, retry.message());
    }

    fn copying(&self, stats: Arc<CopyStats>, total: Option<u64>) {
        let handle = progress::spawn(stats, total, self.progress_stop.clone());
        *self.drawer.lock().expect("sink lock") = Some(handle);
    }
}

impl TerminalSink {
    async fn stop_drawing(&self) {
        self.progress_stop.cancel();
        let handle = self.drawer.lock().expect("sink lock").take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

fn shown(s: &crate::api::RecordedSetting) -> String {
    s.value.clone().unwrap_or_else(|| "(unset)".into())
}

/// Runs the copy `manifests` describe; returns the exit code.
pub async fn run(manifests: Manifests, args: RunArgs) -> i32 {
    let settings = local_settings(&args, &manifests.namespace);
    let spec = &manifests.reindex.spec;
    let stop = Arc::new(Stop::new());
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted: finishing the bulk requests in flight, then restoring the destination's settings"
            );
            on_signal.request(StopMode::Interrupt);
        }
    });
    let synced = Arc::new(tokio::sync::watch::Sender::new(false));
    let sink = TerminalSink {
        progress_stop: CancellationToken::new(),
        drawer: Mutex::new(None),
        synced: synced.clone(),
    };
    let cutover = CutoverWhenSynced {
        triggered: spec.cutover.as_ref().is_some_and(|c| c.triggered()),
        synced,
    };
    let throttle = Arc::new(Throttle::new(spec.requests_per_second));
    let job = workflow::Job::new(throttle, stop).cut_over_by(Arc::new(cutover));
    let span = tracing::info_span!(
        "copy",
        namespace = %manifests.namespace,
        name = manifests.reindex.metadata.name.as_deref().unwrap_or_default()
    );
    let result = workflow::run(spec, &manifests.secrets(), &settings, &sink, job)
        .instrument(span)
        .await;
    sink.stop_drawing().await;
    match result {
        Ok(outcome) => {
            println!("Succeeded: {}", outcome.message());
            0
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", e.reason());
            e.exit_code()
        }
    }
}
