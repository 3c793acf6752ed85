//! `/healthz`, `/readyz` and `/metrics` on `--metrics-addr`.

use super::context::Context;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves until `stop`. `/readyz` answers 200 once `ready` is set (the watches have listed).
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || async move {
                if ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(header::CONTENT_TYPE, ct)], ctx.metrics.render())
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}
