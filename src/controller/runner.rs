//! The operator's main loop: Kubernetes client, health server, optional leader election, one
//! kube-runtime `Controller` per watched namespace, and a graceful shutdown that stops copies.

use super::context::Context;
use super::policy::Policies;
use super::reindex::reconcile;
use super::{ControllerArgs, ControllerError, http, leader};
use crate::api::{Endpoint, RemoteReindex};
use crate::policy::OperatorLimits;
use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for running copies to stop (restore settings, clear scrolls).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

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
    let identity = {
        let base = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "remote-reindex".into());
        format!("{base}_{:016x}", rand::random::<u64>())
    };
    let leadership = Arc::new(if args.leader_election {
        leader::Leadership::elected(&identity)
    } else {
        leader::Leadership::unelected()
    });
    let hosts: Vec<String> = args
        .allowed_remote_hosts
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        tracing::warn!(
            "started without --allowed-remote-hosts: every remote host is refused unless a ReindexPolicy lists it"
        );
    }
    let limits = OperatorLimits {
        allowed_remote_hosts: (!hosts.is_empty()).then_some(hosts),
        allow_system_indices: args.allow_system_indices,
    };
    let scale = if args.scale.scale_out {
        let s = crate::controller::scale::Scale::new(
            client.clone(),
            &identity,
            args.scale.clone(),
            args.namespaces.clone(),
            &args.leader_election_namespace,
        )
        .map_err(ControllerError::InvalidArgs)?;
        Some(s)
    } else {
        None
    };
    let stop_policies = CancellationToken::new();
    let policies = Policies::watch(client.clone(), limits, stop_policies.clone());
    let ctx = Arc::new(Context {
        leadership: leadership.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        registry: Default::default(),
        dest_default,
        policies: policies.clone(),
        user_agent: args.user_agent.clone(),
        metrics: Default::default(),
        scale: scale.as_ref().map(crate::controller::scale::Scale::handle),
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

    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("signal received: shutting down");
            stop.cancel();
        }
    });
    // Every replica copies slices, the standbys too.
    let worker =
        scale.map(|s| crate::controller::scale::start_worker(s, ctx.clone(), stop.clone()));
    let mut election = None;
    if args.leader_election {
        let le = Arc::new(leader::LeaderElection::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.leader_election_id,
            &identity,
            Duration::from_secs(args.lease_duration),
            leadership.clone(),
        ));
        // A standby is healthy and ready; it just does not reconcile.
        ready.store(true, Ordering::SeqCst);
        tracing::info!(%identity, lease = %args.leader_election_id, namespace = %args.leader_election_namespace, "waiting to acquire the leader election Lease");
        tokio::select! {
            _ = le.acquire() => {}
            _ = stop.cancelled() => {
                if let Some(w) = worker {
                    w.shutdown().await;
                }
                stop_http.cancel();
                return Ok(());
            }
        }
        tracing::info!(%identity, "acquired the Lease: this replica is the leader");
        let lost = le.clone().keep_renewing(stop.clone());
        tokio::spawn({
            let (lost, stop, ctx) = (lost.clone(), stop.clone(), ctx.clone());
            async move {
                lost.cancelled().await;
                // Copies stop at once (at a batch boundary, keeping the destination tuned for
                // the new leader); their status writes are refused from now on.
                for e in ctx.registry.running() {
                    e.stop.request(crate::copy::StopMode::Shutdown);
                }
                stop.cancel();
            }
        });
        election = Some((le, lost));
    }

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
        let controller = Controller::new(api, watcher::Config::default().any_semantic())
            .graceful_shutdown_on(stop.clone().cancelled_owned());
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
                        Err(e) => tracing::warn!(error = %e, "controller: {}", crate::search::source_chain(&e)),
                    }
                }),
        );
    }
    tracing::info!(namespaces = ?args.namespaces, dest_host = ?args.dest_host, "watching RemoteReindex resources");
    let policy_store = policies.store();
    let migrations =
        super::migration::controllers(&client, &args.namespaces, stop.clone(), ctx.clone()).await;
    let readiness = tokio::spawn(async move {
        // Ready once the policies are listed too: a copy never starts on an unknown policy.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), policy_store.wait_until_ready())
                .await
            {
                Ok(Ok(())) => break,
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
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
    futures::future::join(futures::future::join_all(runs), migrations).await;
    readiness.abort();
    tracing::info!("stopping running copies");
    stop_copies(&ctx).await;
    if let Some(w) = worker {
        w.shutdown().await;
    }
    stop_policies.cancel();
    stop_http.cancel();
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "health server failed"),
        Err(e) => tracing::warn!(error = %e, "health server task failed"),
        Ok(Ok(())) => {}
    }
    if let Some((le, lost)) = election {
        if lost.is_cancelled() {
            return Err(ControllerError::LostLeadership);
        }
        le.release().await;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Cancels every running copy and waits (bounded) for them to restore their destinations.
async fn stop_copies(ctx: &Context) {
    let running = ctx.registry.running();
    for e in &running {
        e.stop.request(crate::copy::StopMode::Shutdown);
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
