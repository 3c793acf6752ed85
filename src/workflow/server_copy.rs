//! `mode: Server`: the copy step done by the destination itself. The destination's
//! `POST _reindex?wait_for_completion=false` with `source.remote` pulls the documents; the
//! operator records the task id first, follows `GET _tasks/<id>` into the same [`CopyStats`]
//! the engine fills, rethrottles and cancels it, and re-attaches to it after a restart. Prepare
//! and finalize around it are the engine's.

use super::error::{ServerError, WorkflowError};
use super::resolve::Connected;
use super::run::{Prepared, Sink};
use crate::api::{Conflicts, Endpoint, OpType, Phase, RemoteReindexSpec};
use crate::copy::{CopyError, CopyStats, FailureSample, StatsSnapshot, Stop, StopMode, Throttle};
use crate::search::{Distribution, SearchClient, SearchError, TaskFailure, TaskState};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How often the task is polled (the status sink writes at its own cadence).
const POLL: Duration = Duration::from_secs(1);
/// How long a cancelled task may take to stop writing before the copy goes on without it.
const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// What the task copied, for finalize.
pub(super) struct ServerCopied {
    /// Documents the source holds for the query (capped by `maxDocs`), counted after the task
    /// finished; `None` when the operator cannot reach the source (then only the task's own
    /// counts are there to check against: `TaskCountsOnly`).
    pub source_total: Option<u64>,
}

/// The source's basic-auth credentials, for the request body.
struct RemoteCredentials {
    username: String,
    password: String,
}

/// Runs the copy as the destination's reindex task, until it finished, failed or `stop`.
pub(super) async fn copy<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &Prepared,
    throttle: Arc<Throttle>,
    stop: Arc<Stop>,
    stats: &Arc<CopyStats>,
) -> Result<ServerCopied, WorkflowError> {
    let dest = &conn.dest;
    let mut run = Attempt {
        excluded: Vec::new(),
        samples: Vec::new(),
        rerun: prepared.resumed,
    };
    let mut task = prepared.task.clone();
    if task.is_none() && prepared.resumed {
        // Interrupted between starting the task and recording its id: adopt it.
        task = adoptable(dest, &spec.dest.index).await;
        if let Some(t) = &task {
            tracing::info!(task = %t, "found the reindex task of an interrupted attempt; following it");
            sink.task(Some(t)).await.map_err(WorkflowError::Sink)?;
        }
    }
    let mut reported = false;
    loop {
        let id = match task.take() {
            Some(id) => id,
            None => {
                let id = start(spec, conn, &throttle, &run).await?;
                sink.task(Some(&id)).await.map_err(WorkflowError::Sink)?;
                id
            }
        };
        tracing::info!(task = %id, "following the destination's reindex task");
        let followed = follow(dest, &id, stats, &throttle, &stop, &run, |total| {
            if !reported {
                reported = true;
                sink.copying(stats.clone(), prepared.total.or(total));
            }
        })
        .await?;
        let state = match followed {
            Followed::Lost => {
                let msg = format!(
                    "the destination no longer knows reindex task {id} (its coordinating node restarted before the task finished, so no result was stored); copying again from the start"
                );
                tracing::warn!("{msg}");
                sink.phase(Phase::Copying, "TaskLost", msg)
                    .await
                    .map_err(WorkflowError::Sink)?;
                run.rerun = true;
                continue;
            }
            Followed::Stopped => {
                if stop.mode() != StopMode::Shutdown {
                    // Deletion, Ctrl-C or suspension: the task must stop writing before the
                    // settings are restored; a shutdown leaves it running for the successor.
                    cancel(dest, &id, stats, &run).await;
                    if let Err(e) = sink.task(None).await {
                        tracing::warn!(error = %e, "could not clear the cancelled task id");
                    }
                }
                return Err(WorkflowError::Cancelled);
            }
            Followed::Finished(state) => state,
        };
        let redact = |s: String| redact(&s, &source_credentials(conn));
        if let Some((kind, reason)) = &state.error {
            return Err(WorkflowError::Server(classify(
                kind,
                &redact(reason.clone()),
                &conn.dest_info.distribution,
                conn.dest_info.version.major,
            )));
        }
        let response = state.response.clone().unwrap_or_default();
        if let Some(why) = &response.canceled {
            return Err(WorkflowError::Server(ServerError::TaskCancelled(format!(
                "reindex task {id} was cancelled outside the operator ({why})"
            ))));
        }
        if let Some(f) = response.failures.iter().find(|f| f.id.is_none()) {
            return Err(WorkflowError::Server(classify(
                &f.kind,
                &redact(f.reason.clone()),
                &conn.dest_info.distribution,
                conn.dest_info.version.major,
            )));
        }
        if let Some(c) = response
            .failures
            .iter()
            .find(|f| f.is_version_conflict() && !proceeds(spec, run.rerun))
        {
            return Err(WorkflowError::Copy(CopyError::Conflict {
                id: c.id.clone().unwrap_or_default(),
                reason: c.reason.clone(),
            }));
        }
        let rejected: Vec<&TaskFailure> = response
            .failures
            .iter()
            .filter(|f| !f.is_version_conflict())
            .collect();
        for f in &rejected {
            let id = f.id.clone().unwrap_or_default();
            if !run.excluded.contains(&id) {
                run.excluded.push(id.clone());
                run.samples.push(FailureSample {
                    id,
                    status: f.status,
                    reason: format!("{}: {}", f.kind, f.reason),
                });
            }
        }
        publish(stats, &state, &run, true);
        let max = spec.max_failed_docs.unwrap_or(0).max(0) as u64;
        let failed = run.excluded.len() as u64;
        if failed > max {
            let first = run
                .samples
                .first()
                .map(|s| format!("{}: {}", s.id, s.reason))
                .unwrap_or_default();
            return Err(WorkflowError::Copy(CopyError::TooManyFailures {
                failed,
                max,
                first,
            }));
        }
        let counts = state.counts();
        if response.timed_out {
            return Err(WorkflowError::Server(ServerError::TaskFailed(format!(
                "reindex task {id} timed out on a search or bulk request"
            ))));
        }
        if !rejected.is_empty() && counts.processed() + (rejected.len() as u64) < counts.total {
            // `_reindex` stops at the first batch with a rejected document; within
            // maxFailedDocs, copy again without the rejected ones.
            let note = format!(
                "reindex task {id} stopped after {} rejected document(s) (within maxFailedDocs={max}); copying again without them",
                rejected.len()
            );
            tracing::warn!("{note}");
            sink.phase(Phase::Copying, "Copying", note)
                .await
                .map_err(WorkflowError::Sink)?;
            run.rerun = true;
            continue;
        }
        if !reported {
            sink.copying(stats.clone(), prepared.total.or(Some(counts.total)));
        }
        let source_total = if conn.source_reachable {
            let n = conn
                .source
                .count(&spec.source.index, spec.source.query.as_ref())
                .await
                .map_err(|source| WorkflowError::Preflight {
                    which: "source",
                    source,
                })?;
            Some(spec.source.max_docs.map_or(n, |m| n.min(m as u64)))
        } else {
            None
        };
        return Ok(ServerCopied { source_total });
    }
}

/// What one sequence of tasks has learnt: rejected documents are left out of later attempts.
struct Attempt {
    /// Ids the destination rejected (counted as failed, excluded from the next task's query).
    excluded: Vec<String>,
    /// The failure sample.
    samples: Vec<FailureSample>,
    /// Documents of an earlier attempt may be in the destination already.
    rerun: bool,
}

/// Under `opType: create` a rerun meets its own earlier documents: those conflicts are expected.
fn proceeds(spec: &RemoteReindexSpec, rerun: bool) -> bool {
    spec.conflicts == Some(Conflicts::Proceed)
        || (rerun && spec.dest.op_type == Some(OpType::Create))
}

enum Followed {
    Finished(Box<TaskState>),
    Lost,
    Stopped,
}

/// Polls the task into `stats` until it completes, disappears or `stop`; applies rate changes.
async fn follow(
    dest: &SearchClient,
    id: &str,
    stats: &Arc<CopyStats>,
    throttle: &Throttle,
    stop: &Stop,
    run: &Attempt,
    mut first: impl FnMut(Option<u64>),
) -> Result<Followed, WorkflowError> {
    let during = "following the destination's reindex task";
    let mut applied = throttle.rate();
    loop {
        let state = match dest.task(id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Followed::Lost),
            Err(source) => return Err(WorkflowError::Destination { during, source }),
        };
        publish(stats, &state, run, state.completed);
        let total = state.counts().total;
        if total > 0 || state.completed {
            first((total > 0).then_some(total));
        }
        if state.completed {
            return Ok(Followed::Finished(Box::new(state)));
        }
        let rate = throttle.rate();
        if rate != applied {
            match dest.rethrottle_reindex(id, rate).await {
                Ok(()) => {
                    tracing::info!(task = %id, ?rate, "rethrottled the reindex task");
                    applied = rate;
                }
                Err(e) if e.status() == Some(404) => {}
                Err(source) => return Err(WorkflowError::Destination { during, source }),
            }
        }
        tokio::select! {
            _ = stop.requested() => return Ok(Followed::Stopped),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The task's counters as the engine's: read = dealt with + rejected, written = created +
/// updated.
fn publish(stats: &CopyStats, state: &TaskState, run: &Attempt, done: bool) {
    let c = state.counts();
    let failed = run.excluded.len() as u64;
    let totals = StatsSnapshot {
        read: c.processed() + failed,
        written: c.created + c.updated,
        failed,
        conflicts: c.version_conflicts,
        retries: c.retries,
        bytes: 0,
        bulks: c.batches,
    };
    stats.set_totals(&totals, done, run.samples.clone());
}

/// Cancels the task and waits (bounded) until it stopped writing.
async fn cancel(dest: &SearchClient, id: &str, stats: &CopyStats, run: &Attempt) {
    if let Err(e) = dest.cancel_task(id).await {
        tracing::warn!(task = %id, error = %e, "could not cancel the reindex task");
        return;
    }
    let wait = async {
        loop {
            match dest.task(id).await {
                Ok(Some(s)) if !s.completed => tokio::time::sleep(Duration::from_millis(250)).await,
                Ok(Some(s)) => {
                    publish(stats, &s, run, false);
                    return;
                }
                _ => return,
            }
        }
    };
    if tokio::time::timeout(CANCEL_WAIT, wait).await.is_err() {
        tracing::warn!(task = %id, "the cancelled reindex task has not stopped yet");
    } else {
        tracing::info!(task = %id, "cancelled the reindex task");
    }
}

/// A running reindex into `index` (e.g. of a process that died before recording its id).
async fn adoptable(dest: &SearchClient, index: &str) -> Option<String> {
    let needle = format!(" to [{index}]");
    match dest.running_reindex_tasks().await {
        Ok(tasks) => tasks
            .into_iter()
            .find(|t| {
                t.description.starts_with("reindex from [") && t.description.contains(&needle)
            })
            .map(|t| t.id),
        Err(e) => {
            tracing::warn!(error = %e, "could not list the destination's reindex tasks");
            None
        }
    }
}

/// Starts the task; a refusal of the remote host becomes `RemoteNotAllowed`.
async fn start(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    throttle: &Throttle,
    run: &Attempt,
) -> Result<String, WorkflowError> {
    let creds = source_credentials(conn);
    let body = reindex_body(spec, creds.as_ref(), &run.excluded, run.rerun);
    let mut params = vec![(
        "scroll",
        spec.source
            .scroll
            .as_ref()
            .map_or_else(|| "5m".to_string(), |d| d.0.clone()),
    )];
    if let Some(r) = throttle.rate() {
        params.push(("requests_per_second", r.to_string()));
    }
    match conn.dest.start_reindex(&body, &params).await {
        Ok(id) => Ok(id),
        Err(e) => {
            let text = redact(&e.to_string(), &creds);
            if let SearchError::Api {
                status: 400,
                kind,
                reason,
                ..
            } = &e
                && let Some(err) = refused_host(
                    kind,
                    &redact(reason, &creds),
                    &conn.dest_info.distribution,
                    conn.dest_info.version.major,
                )
            {
                return Err(WorkflowError::Server(err));
            }
            if e.is_transient()
                && let Some(id) = adoptable(&conn.dest, &spec.dest.index).await
            {
                return Ok(id);
            }
            Err(WorkflowError::Server(ServerError::Start {
                reason: super::error::search_reason(&e),
                detail: text,
            }))
        }
    }
}

/// The source's username and password as the source client holds them now (so a rotated
/// Secret is used by the next task).
fn source_credentials(conn: &Connected) -> Option<RemoteCredentials> {
    conn.source
        .basic_credentials()
        .map(|(u, p)| RemoteCredentials {
            username: u.expose().to_string(),
            password: p.expose().to_string(),
        })
}

/// Replaces the source's password in a text that came back from the destination.
fn redact(text: &str, creds: &Option<RemoteCredentials>) -> String {
    match creds {
        Some(c) if c.password.len() >= 3 => text.replace(&c.password, "***"),
        _ => text.to_string(),
    }
}

/// The `source.remote` object: host, credentials, timeouts, headers, and Amazon's
/// `region`/`external`.
fn remote_info(ep: &Endpoint, creds: Option<&RemoteCredentials>) -> Value {
    // The remote reindex insists on `scheme://host:port`: spell out the scheme's default port.
    let mut host = match url::Url::parse(&ep.host) {
        Ok(u) => format!("{}://{}", u.scheme(), crate::api::validate::host_port(&u)),
        Err(_) => ep.host.trim_end_matches('/').to_string(),
    };
    if let Some(p) = &ep.path_prefix {
        host.push_str(p.trim_end_matches('/'));
    }
    let mut remote = Map::new();
    remote.insert("host".into(), json!(host));
    if let Some(c) = creds {
        remote.insert("username".into(), json!(c.username));
        remote.insert("password".into(), json!(c.password));
    }
    if let Some(d) = &ep.socket_timeout {
        remote.insert("socket_timeout".into(), json!(d.0));
    }
    if let Some(d) = &ep.connect_timeout {
        remote.insert("connect_timeout".into(), json!(d.0));
    }
    if let Some(h) = ep.headers.as_ref().filter(|h| !h.is_empty()) {
        remote.insert("headers".into(), json!(h));
    }
    if let Some(r) = &ep.region {
        remote.insert("region".into(), json!(r));
    }
    if let Some(e) = ep.external {
        remote.insert("external".into(), json!(e));
    }
    Value::Object(remote)
}

/// The `_reindex` body. `excluded` ids (rejected by an earlier attempt) are left out of the
/// query; a `rerun` under `opType: create` proceeds past its own earlier documents.
fn reindex_body(
    spec: &RemoteReindexSpec,
    creds: Option<&RemoteCredentials>,
    excluded: &[String],
    rerun: bool,
) -> Value {
    let s = &spec.source;
    let mut source = json!({
        "remote": remote_info(&s.remote, creds),
        "index": s.index,
    });
    let query = match (&s.query, excluded.is_empty()) {
        (q, true) => q.clone(),
        (q, false) => Some(json!({"bool": {
            "must": q.clone().unwrap_or_else(|| json!({"match_all": {}})),
            "must_not": {"ids": {"values": excluded}},
        }})),
    };
    if let Some(q) = query {
        source["query"] = q;
    }
    if let Some(n) = s.size {
        source["size"] = json!(n);
    }
    let mut dest = json!({
        "index": spec.dest.index,
        "op_type": match spec.dest.op_type.unwrap_or_default() {
            OpType::Index => "index",
            OpType::Create => "create",
        },
    });
    if let Some(p) = &spec.dest.pipeline {
        dest["pipeline"] = json!(p);
    }
    let mut body = json!({
        "source": source,
        "dest": dest,
        "conflicts": if proceeds(spec, rerun) { "proceed" } else { "abort" },
    });
    if let Some(m) = s.max_docs {
        body["max_docs"] = json!(m);
    }
    body
}

/// The setting that lists the remotes a destination may reindex from.
pub(super) fn allowlist_setting(distribution: &Distribution, major: u32) -> &'static str {
    match distribution {
        Distribution::OpenSearch if major >= 2 => "reindex.remote.allowlist",
        _ => "reindex.remote.whitelist",
    }
}

/// `[host:port] not whitelisted in reindex.remote.whitelist` (or `allowlisted`/`allowlist`).
fn refused_host(
    kind: &str,
    reason: &str,
    distribution: &Distribution,
    major: u32,
) -> Option<ServerError> {
    let refused = reason.contains("not whitelisted") || reason.contains("not allowlisted");
    if !(refused && (kind == "illegal_argument_exception" || reason.contains("reindex.remote"))) {
        return None;
    }
    let host = reason
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map_or("the source", |(h, _)| h)
        .to_string();
    Some(ServerError::RemoteNotAllowed {
        host,
        setting: allowlist_setting(distribution, major),
        detail: reason.to_string(),
    })
}

/// The failure a finished task reported, as a reason.
fn classify(kind: &str, reason: &str, distribution: &Distribution, major: u32) -> ServerError {
    if let Some(e) = refused_host(kind, reason, distribution, major) {
        return e;
    }
    let lower = reason.to_lowercase();
    if lower.contains("chunk that was too large") || lower.contains("buffer") {
        return ServerError::RemoteBatchTooLarge(format!("{kind}: {reason}"));
    }
    let unreachable = [
        "connection refused",
        "connectexception",
        "unknownhostexception",
        "no route to host",
        "sockettimeoutexception",
        "connect timed out",
        "connection reset",
    ];
    if unreachable.iter().any(|u| lower.contains(u)) {
        return ServerError::RemoteUnreachable(format!("{kind}: {reason}"));
    }
    if lower.contains("status line [http/1.1 401")
        || lower.contains("status line [http/1.1 403")
        || lower.contains("unauthorized")
        || lower.contains("security_exception")
    {
        return ServerError::RemoteAuth(format!("{kind}: {reason}"));
    }
    ServerError::TaskFailed(format!("{kind}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> RemoteReindexSpec {
        serde_json::from_value(serde_saphyr::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn the_request_carries_every_remote_option() {
        let s = spec(
            "{mode: Server, conflicts: proceed, source: {index: src, size: 200, maxDocs: 5000, scroll: 10m,
              query: {term: {kind: a}},
              remote: {host: 'https://old.example.com:443/', pathPrefix: /es, socketTimeout: 60s, connectTimeout: 5s,
                       headers: {X-Trace: t1}, external: true, basicAuth: {secretRef: {name: c}}}},
              dest: {index: dst, opType: create, pipeline: p1}}",
        );
        let creds = RemoteCredentials {
            username: "u".into(),
            password: "pw".into(),
        };
        let body = reindex_body(&s, Some(&creds), &[], false);
        assert_eq!(
            body,
            json!({
                "source": {
                    "remote": {"host": "https://old.example.com:443/es", "username": "u", "password": "pw",
                               "socket_timeout": "60s", "connect_timeout": "5s",
                               "headers": {"X-Trace": "t1"}, "external": true},
                    "index": "src", "query": {"term": {"kind": "a"}}, "size": 200
                },
                "dest": {"index": "dst", "op_type": "create", "pipeline": "p1"},
                "conflicts": "proceed",
                "max_docs": 5000
            })
        );
    }

    #[test]
    fn amazon_region_without_credentials_and_reruns_exclude_rejected_documents() {
        let s = spec(
            "{mode: Server, source: {index: src, remote: {host: 'https://d.eu-west-1.es.amazonaws.com', region: eu-west-1}},
              dest: {index: dst, opType: create}}",
        );
        let first = reindex_body(&s, None, &[], false);
        assert_eq!(
            first["source"]["remote"],
            json!({"host": "https://d.eu-west-1.es.amazonaws.com:443", "region": "eu-west-1"})
        );
        assert_eq!(first["conflicts"], "abort");
        assert!(first["source"].get("query").is_none());
        let again = reindex_body(&s, None, &["7".into(), "9".into()], true);
        assert_eq!(
            again["conflicts"], "proceed",
            "a rerun meets its own documents"
        );
        assert_eq!(
            again["source"]["query"],
            json!({"bool": {"must": {"match_all": {}}, "must_not": {"ids": {"values": ["7", "9"]}}}})
        );
        assert_eq!(again["dest"]["op_type"], "create");
    }

    #[test]
    fn refusals_and_task_errors_get_their_reasons() {
        let es = Distribution::Elasticsearch;
        let os = Distribution::OpenSearch;
        let e = refused_host(
            "illegal_argument_exception",
            "[127.0.0.1:9201] not whitelisted in reindex.remote.whitelist",
            &es,
            7,
        )
        .unwrap();
        assert_eq!(e.reason(), "RemoteNotAllowed");
        let text = e.to_string();
        assert!(
            text.contains("127.0.0.1:9201") && text.contains("reindex.remote.whitelist"),
            "{text}"
        );
        let e = refused_host(
            "illegal_argument_exception",
            "[127.0.0.1:9201] not allowlisted in reindex.remote.allowlist",
            &os,
            2,
        )
        .unwrap();
        assert!(e.to_string().contains("reindex.remote.allowlist"));
        assert_eq!(allowlist_setting(&os, 1), "reindex.remote.whitelist");
        assert!(
            refused_host(
                "illegal_argument_exception",
                "[size] must be positive",
                &es,
                7
            )
            .is_none()
        );

        let big = classify(
            "illegal_argument_exception",
            "Remote responded with a chunk that was too large. Use a smaller batch size.",
            &os,
            2,
        );
        assert_eq!(big.reason(), "RemoteBatchTooLarge");
        assert!(big.to_string().contains("source.size"));
        assert_eq!(
            classify("connect_exception", "Connection refused", &os, 2).reason(),
            "RemoteUnreachable"
        );
        assert_eq!(
            classify(
                "status_exception",
                "method [POST], host [http://127.0.0.1:9201], URI [/src/_search], status line [HTTP/1.1 401 Unauthorized]",
                &os,
                2
            )
            .reason(),
            "AuthenticationFailed"
        );
        assert_eq!(classify("x", "y", &os, 2).reason(), "CopyFailed");
    }

    #[test]
    fn the_source_password_never_comes_back() {
        let c = Some(RemoteCredentials {
            username: "u".into(),
            password: "s3cret".into(),
        });
        assert_eq!(redact("bad [password=s3cret]", &c), "bad [password=***]");
    }
}
