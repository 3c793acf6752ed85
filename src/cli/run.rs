//! `remote-reindex run -f FILE…`: the local driver of the workflow.

use super::manifest::{Loaded, Manifests};
use super::progress;
use crate::api::validate::Policy;
use crate::api::{Endpoint, Phase};
use crate::copy::{CopyStats, Stop, StopMode, Throttle};
use crate::workflow::{self, PreflightRetry, PreflightSettings, Prepared, Settings, Sink};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Manifest files (multi-document YAML; `-` for standard input): one RemoteReindex (or one
    /// Migration) and the Secrets/ConfigMaps it references.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Destination cluster when the resource has no `spec.dest.remote`.
    #[arg(long, env = "REMOTE_REINDEX_DEST_HOST")]
    pub dest_host: Option<String>,
    /// Allow destination index names that start with `.`.
    #[arg(long)]
    pub allow_system_indices: bool,
    /// How long an unreachable cluster (refused, silent, DNS) or a missing Secret is retried
    /// before exit 3, e.g. `10s`, `2m`; wins over the manifest's `spec.preflightTimeout`
    /// [default: the manifest's, else 30s]. Refused credentials (401/403) are never retried here.
    #[arg(long, value_name = "DURATION", value_parser = crate::api::units::parse_duration)]
    pub preflight_timeout: Option<std::time::Duration>,
}

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
        _reason: &'static str,
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

/// Driver settings of a local run: `--dest-host` and `--allow-system-indices`.
pub(super) fn local_settings(args: &RunArgs, namespace: &str) -> Settings {
    Settings {
        dest_default: args.dest_host.clone().map(|host| Endpoint {
            host,
            ..Default::default()
        }),
        policy: Policy {
            allow_system_indices: args.allow_system_indices,
            ..Default::default()
        },
        namespace: namespace.to_string(),
        user_agent: None,
        link_local_allowed: None,
        preflight: PreflightSettings::cli(args.preflight_timeout),
        fence: None,
        opaque_id: None,
    }
}

/// Runs the copy; returns the exit code.
pub async fn run(args: RunArgs) -> i32 {
    let manifests = match Manifests::load_any(&args.files) {
        Ok(Loaded::Reindex(m)) => *m,
        Ok(Loaded::Migration(m)) => return super::migrate::run(*m, args).await,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
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
    let result = workflow::run(spec, &manifests.secrets(), &settings, &sink, job).await;
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
