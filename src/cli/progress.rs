//! Progress on the terminal: an indicatif bar on a TTY, a plain line every few seconds otherwise.

use crate::copy::CopyStats;
use crate::workflow::progress::{RateWindow, progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Draws progress until `stop` is cancelled.
pub fn spawn(
    stats: Arc<CopyStats>,
    total: Option<u64>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let tty = std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let bar = tty.then(|| {
            let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} docs {msg}",
                )
                .expect("the template is valid"),
            );
            b
        });
        let mut window = RateWindow::new(Duration::from_secs(10));
        let every = if tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        let mut tick = tokio::time::interval(every);
        loop {
            let stopped = tokio::select! {
                _ = stop.cancelled() => true,
                _ = tick.tick() => false,
            };
            let snap = stats.snapshot();
            let rate = window.push(Instant::now(), snap.written);
            let p = progress(&snap, total, rate);
            match &bar {
                Some(b) => {
                    b.set_position(snap.written);
                    b.set_message(format!(
                        "{} docs/s, eta {}, {} failed",
                        p.docs_per_second.unwrap_or_else(|| "?".into()),
                        p.eta.unwrap_or_else(|| "?".into()),
                        snap.failed
                    ));
                }
                None if !stopped => eprintln!(
                    "progress: {} written, {} failed, {} docs/s, eta {}",
                    p.summary.unwrap_or_default(),
                    snap.failed,
                    p.docs_per_second.unwrap_or_else(|| "?".into()),
                    p.eta.unwrap_or_else(|| "?".into())
                ),
                None => {}
            }
            if stopped {
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                return;
            }
        }
    })
}
