//! The Kubernetes operator: `remote-reindex controller`.
//!
//! A kube-runtime `Controller` per watched namespace (or one for all) reconciles `RemoteReindex`
//! resources. Reconcile is thin and safe to re-run ([`reconcile`]); each copy runs the shared
//! [`crate::workflow`] in its own task ([`task`]) registered by UID ([`registry`]), writing
//! phases, progress and Events through a status [`sink`]. Deletion stops the copy and restores
//! the destination before the finalizer goes ([`cleanup`]).

pub mod cleanup;
pub mod context;
pub mod http;
pub mod metrics;
pub mod reconcile;
pub mod registry;
pub mod secrets;
pub mod sink;
pub mod status;
pub mod task;
pub mod writer;

use crate::api::validate::Policy;
use crate::api::{Endpoint, RemoteReindex};
use context::Context;
use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for running copies to stop (restore settings, clear scrolls).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// Flags of `remote-reindex controller`.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllerArgs {
    /// Destination cluster for resources without `spec.dest.remote`, e.g. `http://es:9200`.
    #[arg(long, value_name = "URL")]
    pub dest_host: Option<String>,
    /// Watch only this namespace (repeatable); default: all namespaces.
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// `host:port` globs remote clusters must match (repeatable or comma-separated), like
    /// Elasticsearch's `reindex.remote.whitelist`.
    #[arg(long, value_name = "GLOB", value_delimiter = ',', default_value = "*")]
    pub allowed_remote_hosts: Vec<String>,
    /// Allow destination indices whose names start with `.`.
    #[arg(long)]
    pub allow_system_indices: bool,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// `User-Agent` sent to the search clusters.
    #[arg(long, value_name = "UA")]
    pub user_agent: Option<String>,
}

/// Why the controller could not run.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A flag has an unusable value.
    #[error("{0}")]
    InvalidArgs(String),
    /// No kubeconfig / in-cluster configuration, or the API server is unreachable.
    #[error("cannot use the Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The health/metrics address cannot be bound.
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the operator until SIGINT/SIGTERM, then stops running copies (restoring their
/// destinations; their status keeps the phase so the next operator resumes them).
pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    crate::search::install_crypto_provider();
    let dest_default = args.dest_host.as_deref().map(dest_endpoint).transpose()?;
    let client = Client::try_default().await?;
    let version = client.apiserver_version().await?;
    tracing::info!(version = %version.git_version, "connected to the Kubernetes API server");

    let instance = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok());
    let reporter = Reporter {
        controller: "remote-reindex".into(),
        instance,
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        registry: Default::default(),
        dest_default,
        policy: Policy {
            allowed_remote_hosts: args.allowed_remote_hosts.clone(),
            allow_system_indices: args.allow_system_indices,
        },
        user_agent: args.user_agent.clone(),
        metrics: Default::default(),
    });

    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|source| ControllerError::Bind {
            addr: args.metrics_addr,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ControllerError::Bind {
            addr: args.metrics_addr,
            source,
        })?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    let ready = Arc::new(AtomicBool::new(false));
    let stop_http = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        ctx.clone(),
        ready.clone(),
        stop_http.clone(),
    ));

    let apis: Vec<Api<RemoteReindex>> = if args.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        args.namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let mut stores = Vec::new();
    let mut runs = Vec::new();
    for api in apis {
        let controller =
            Controller::new(api, watcher::Config::default().any_semantic()).shutdown_on_signal();
        stores.push(controller.store());
        let ctx = ctx.clone();
        runs.push(
            controller
                .run(reconcile::reconcile, reconcile::error_policy, ctx)
                .for_each(|r| async move {
                    match r {
                        Ok((obj, _)) => tracing::debug!(%obj, "reconciled"),
                        Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                        Err(e @ kube::runtime::controller::Error::ObjectNotFound(_)) => {
                            tracing::debug!(error = %e, "object deleted before its reconcile ran")
                        }
                        Err(e) => tracing::warn!(error = %e, "controller: {}", error_chain(&e)),
                    }
                }),
        );
    }
    tracing::info!(namespaces = ?args.namespaces, dest_host = ?args.dest_host, "watching RemoteReindex resources");
    let readiness = tokio::spawn(async move {
        for s in stores {
            // The store's readiness signal wakes only its latest waiter (the controller's own),
            // so poll it instead of waiting once.
            loop {
                match tokio::time::timeout(Duration::from_millis(200), s.wait_until_ready()).await {
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return,
                    Err(_) => continue,
                }
            }
        }
        ready.store(true, Ordering::SeqCst);
        tracing::info!("watches synced; ready");
    });
    futures::future::join_all(runs).await;
    readiness.abort();
    tracing::info!("shutting down: stopping running copies");
    stop_copies(&ctx).await;
    stop_http.cancel();
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "health server failed"),
        Err(e) => tracing::warn!(error = %e, "health server task failed"),
        Ok(Ok(())) => {}
    }
    Ok(())
}

/// Cancels every running copy and waits (bounded) for them to restore their destinations.
async fn stop_copies(ctx: &Context) {
    let running = ctx.registry.running();
    for e in &running {
        e.cancel.cancel();
    }
    let all = futures::future::join_all(running.iter().map(|e| e.done.cancelled()));
    if tokio::time::timeout(SHUTDOWN_WAIT, all).await.is_err() {
        tracing::warn!(
            "some copies did not stop in time; their destinations may keep bulk-load settings until the next operator resumes them"
        );
    }
}

/// The `--dest-host` endpoint, checked to be a base URL.
fn dest_endpoint(host: &str) -> Result<Endpoint, ControllerError> {
    match url::Url::parse(host) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(Endpoint {
            host: host.to_string(),
            ..Default::default()
        }),
        _ => Err(ControllerError::InvalidArgs(format!(
            "--dest-host `{host}` is not a URL of the form http(s)://host[:port]"
        ))),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}
