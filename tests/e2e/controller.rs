//! The operator against a real kube-apiserver (the shared control plane of `scripts/test.sh`),
//! with real search servers: each test has its own namespace and its own operator process.

mod columns;
mod faults;
mod fencing;
pub mod k8s;
mod leader_writes;
mod rotation;

use crate::harness::*;
use k8s::*;
use kube::Api;
use kube::api::DeleteParams;
use remote_reindex::api::{Phase, RemoteReindex};
use serde_json::json;
use std::time::Duration;

/// Simple documents `0..n`.
fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "tag": format!("t{}", i % 7), "msg": format!("hello {i}")})
                .to_string(),
            routing: None,
        })
        .collect()
}

/// A destination that exists, is empty and has explicit settings, so "restored" is checkable.
async fn dest_with_settings(base: &str, index: &str) {
    create_index(
        base,
        index,
        json!({"settings": {"index": {"number_of_replicas": 2, "refresh_interval": "7s"}}}),
    )
    .await;
}

async fn assert_settings_restored(base: &str, index: &str) {
    let s = settings(base, index).await;
    assert_eq!(
        s.get("index.number_of_replicas"),
        Some(&json!("2")),
        "{s:?}"
    );
    assert_eq!(s.get("index.refresh_interval"), Some(&json!("7s")), "{s:?}");
    let (_, m) = call("GET", &format!("{base}/{index}/_mapping"), None).await;
    // Removed, or nulled (noida-db merges `_meta` updates, so a key can only be nulled there).
    let marker = &m[index]["mappings"]["_meta"]["remote_reindex"];
    assert!(marker.is_null(), "marker left in _meta: {m}");
}

async fn index_absent(base: &str, index: &str) -> bool {
    call("GET", &format!("{base}/{index}"), None).await.0 == 404
}

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn copies_20k_documents_with_status_events_and_kubectl_columns() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-copy").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20_000)).await;
    dest_with_settings(dst.url(), "logs-copy").await;
    let op = Operator::start(&ns, dst.url(), &[]).await;

    let yaml = format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata:\n  name: logs\n  namespace: {ns}\nspec:\n  source:\n    remote:\n      host: {}\n    index: logs\n  dest:\n    index: logs-copy\n",
        src.url()
    );
    let (code, out, err) = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert_eq!(code, 0, "kubectl apply: {out}{err}");
    let obj = wait_terminal(&client, &ns, "logs", Duration::from_secs(180)).await;
    let s = obj.status.clone().unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(s.observed_generation, obj.metadata.generation);
    let ready = condition(&s, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Verified"),
        "{ready:?}"
    );
    assert_eq!(condition(&s, "Progressing").status, "False");
    assert_eq!(condition(&s, "Degraded").status, "False");
    let p = s.progress.clone().unwrap();
    assert_eq!(
        (p.total, p.read, p.written, p.failed),
        (Some(20_000), 20_000, 20_000, 0),
        "{p:?}"
    );
    assert_eq!(p.summary.as_deref(), Some("20000/20000 (100%)"));
    assert!(
        s.open_scrolls.is_empty() && s.completed_at.is_some() && s.started_at.is_some(),
        "{s:#?}"
    );
    assert_eq!(s.dest_was_empty, Some(true));

    assert_eq!(
        parsed(&all_docs(dst.url(), "logs-copy").await),
        parsed(&all_docs(src.url(), "logs").await)
    );
    assert_settings_restored(dst.url(), "logs-copy").await;

    let reasons = wait_event_reasons(
        &client,
        &ns,
        "logs",
        &["Pending", "Copying", "Finalizing", "Verified"],
    )
    .await;
    for r in ["Pending", "Copying", "Finalizing", "Verified"] {
        assert!(
            reasons.iter().any(|x| x == r),
            "no {r} Event in {reasons:?}"
        );
    }
    let (code, out, err) = kubectl(&["get", "reindex", "-n", &ns], None);
    assert_eq!(code, 0, "{err}");
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.contains("PHASE") && header.contains("PROGRESS"),
        "{out}"
    );
    assert!(
        out.contains("Succeeded") && out.contains("20000/20000 (100%)"),
        "{out}"
    );
    let metrics = op.metrics().await;
    assert!(
        metrics.contains(r#"remote_reindex_copies_finished_total{result="succeeded"} 1"#),
        "{metrics}"
    );

    // Deleted after success: the finalizer just goes.
    Api::<RemoteReindex>::namespaced(client.clone(), &ns)
        .delete("logs", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&client, &ns, "logs", Duration::from_secs(30)).await;
    assert_eq!(count(dst.url(), "logs-copy").await, 20_000);
}

#[tokio::test]
async fn deleting_mid_copy_stops_it_restores_settings_and_clears_the_scroll() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-delete").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20_000)).await;
    dest_with_settings(dst.url(), "logs-copy").await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    // 500 documents/s over 20,000: the copy takes 40 s, a wide and deterministic window.
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 500, "paging": "scroll"},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 500,
    });
    create_reindex(&client, &ns, "slow", spec).await;
    let obj = wait_status(
        &client,
        &ns,
        "slow",
        "documents written and a scroll open",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0) && !s.open_scrolls.is_empty(),
    )
    .await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Copying), "{s:#?}");
    assert_eq!(condition(&s, "Progressing").reason, "Copying");
    assert!(
        s.original_settings.is_some(),
        "originals persisted before tuning: {s:#?}"
    );
    assert_eq!(
        settings(dst.url(), "logs-copy")
            .await
            .get("index.refresh_interval"),
        Some(&json!("-1")),
        "tuned while copying"
    );
    let scrolls = s.open_scrolls.clone();

    Api::<RemoteReindex>::namespaced(client.clone(), &ns)
        .delete("slow", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&client, &ns, "slow", Duration::from_secs(60)).await;
    assert_settings_restored(dst.url(), "logs-copy").await;
    assert!(
        count(dst.url(), "logs-copy").await < 20_000,
        "the copy went on"
    );
    for id in scrolls {
        let (status, body) = call(
            "POST",
            &format!("{}/_search/scroll", src.url()),
            Some(json!({"scroll": "1m", "scroll_id": id})),
        )
        .await;
        assert_eq!(status, 404, "scroll still open: {body}");
    }
    let reasons = wait_event_reasons(&client, &ns, "slow", &["Interrupted"]).await;
    assert!(reasons.iter().any(|r| r == "Interrupted"), "{reasons:?}");
}

#[tokio::test]
async fn unreachable_remote_fails_with_unreachable_and_the_host() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-unreach").await;
    let dst = noida();
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    let gone = closed_port_url();
    let spec = json!({"source": {"remote": {"host": gone}, "index": "logs"}, "dest": {"index": "logs-copy"}, "preflightTimeout": "5s"});
    create_reindex(&client, &ns, "unreachable", spec).await;
    let obj = wait_terminal(&client, &ns, "unreachable", Duration::from_secs(60)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Failed), "{s:#?}");
    let degraded = condition(&s, "Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "Unreachable"),
        "{degraded:?}"
    );
    let hostport = gone.trim_start_matches("http://");
    assert!(degraded.message.contains(hostport), "{degraded:?}");
    assert_eq!(condition(&s, "Ready").status, "False");
    // The Event is recorded right after the status; poll for it rather than race it.
    eventually("the Warning Event", Duration::from_secs(15), || {
        let client = client.clone();
        let ns = ns.clone();
        async move {
            let evs = events(&client, &ns, "unreachable").await;
            evs.iter()
                .any(|(t, r, _)| t == "Warning" && r == "Unreachable")
                .then_some(())
        }
    })
    .await;
    assert!(index_absent(dst.url(), "logs-copy").await);
}

#[tokio::test]
async fn a_secret_created_after_the_resource_is_picked_up() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-late-secret").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(300)).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url(), "basicAuth": {"secretRef": {"name": "src-creds"}}}, "index": "logs"},
        "dest": {"index": "logs-copy"},
        "preflightTimeout": "120s",
    });
    create_reindex(&client, &ns, "late", spec).await;
    // While pre-flight retries, the reason is in the conditions at once (not only after the
    // 120 s preflightTimeout), shown by `kubectl get reindex`; the deadline is only a bound.
    let row = eventually(
        "REASON SecretNotFound in `kubectl get reindex`",
        Duration::from_secs(60),
        || {
            let ns = ns.clone();
            async move {
                let (code, out, _) = kubectl(&["get", "reindex", "late", "-n", &ns], None);
                (code == 0
                    && out
                        .lines()
                        .nth(1)
                        .is_some_and(|l| l.contains("SecretNotFound")))
                .then_some(out)
            }
        },
    )
    .await;
    assert!(row.lines().next().unwrap().contains("REASON"), "{row}");
    assert!(row.contains("Pending"), "{row}");
    let s = Api::<RemoteReindex>::namespaced(client.clone(), &ns)
        .get("late")
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert_eq!(s.phase, Some(Phase::Pending), "{s:#?}");
    let progressing = condition(&s, "Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "SecretNotFound"),
        "{progressing:?}"
    );
    assert!(
        progressing
            .message
            .contains("Secret `src-creds` does not exist")
            && progressing.message.contains("attempt ")
            && progressing.message.contains("preflightTimeout"),
        "{progressing:?}"
    );
    let degraded = condition(&s, "Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "SecretNotFound"),
        "{degraded:?}"
    );
    let (_, wide, _) = kubectl(&["get", "reindex", "late", "-n", &ns, "-o", "wide"], None);
    eprintln!("kubectl get reindex -o wide (Secret missing):\n{wide}");
    assert!(
        wide.lines().next().unwrap().contains("MESSAGE") && wide.contains("attempt "),
        "{wide}"
    );
    wait_event_reasons(&client, &ns, "late", &["SecretNotFound"]).await;
    create_secret(
        &client,
        &ns,
        "src-creds",
        &[("username", "elastic"), ("password", "not-logged-anywhere")],
    )
    .await;
    let obj = wait_terminal(&client, &ns, "late", Duration::from_secs(90)).await;
    assert_eq!(
        obj.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Succeeded),
        "{:#?}",
        obj.status
    );
    assert_eq!(count(dst.url(), "logs-copy").await, 300);
    let s = obj.status.unwrap();
    assert_eq!(condition(&s, "Degraded").status, "False", "{s:#?}");
    let (_, row, _) = kubectl(&["get", "reindex", "late", "-n", &ns], None);
    eprintln!("kubectl get reindex (after the Secret was created):\n{row}");
    assert!(
        row.contains("Succeeded") && row.contains("Verified"),
        "{row}"
    );
    assert!(
        !op.log().contains("not-logged-anywhere"),
        "a secret value reached the log"
    );
}

/// Waits for Failed and returns the Degraded condition's (reason, message).
async fn failed_with(client: &kube::Client, ns: &str, name: &str) -> (String, String) {
    let obj = wait_terminal(client, ns, name, Duration::from_secs(60)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Failed), "{s:#?}");
    let d = condition(&s, "Degraded");
    (d.reason.clone(), d.message.clone())
}

#[tokio::test]
async fn a_secret_in_another_namespace_is_refused() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-xns-secret").await;
    let other = namespace(&client, "rr-xns-other").await;
    create_secret(
        &client,
        &other,
        "creds",
        &[("username", "u"), ("password", "p")],
    )
    .await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(10)).await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url(), "basicAuth": {"secretRef": {"name": "creds", "namespace": other}}}, "index": "logs"},
        "dest": {"index": "logs-copy"},
    });
    create_reindex(&client, &ns, "xns", spec).await;
    let (reason, message) = failed_with(&client, &ns, "xns").await;
    assert_eq!(reason, "SecretNamespaceNotAllowed", "{message}");
    assert!(
        message.contains(&other) && message.contains(&ns),
        "{message}"
    );
    assert!(
        index_absent(dst.url(), "logs-copy").await,
        "nothing may be written before validation"
    );
}

#[tokio::test]
async fn a_host_outside_allowed_remote_hosts_is_refused() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-allowlist").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(10)).await;
    let _op = Operator::start(
        &ns,
        dst.url(),
        &["--allowed-remote-hosts", "es.example.com:*,10.0.0.*:9200"],
    )
    .await;
    let spec = json!({"source": {"remote": {"host": src.url()}, "index": "logs"}, "dest": {"index": "logs-copy"}});
    create_reindex(&client, &ns, "outside", spec).await;
    let (reason, message) = failed_with(&client, &ns, "outside").await;
    assert_eq!(reason, "HostNotAllowed", "{message}");
    assert!(
        message.contains(src.url().trim_start_matches("http://")),
        "{message}"
    );
    assert!(
        index_absent(dst.url(), "logs-copy").await,
        "nothing may be written before validation"
    );
}

#[tokio::test]
async fn changing_requests_per_second_rethrottles_the_running_copy() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-rethrottle").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20_000)).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    // At 200 documents/s this copy would take 100 s; the test's deadline is far shorter.
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 200},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 200,
    });
    create_reindex(&client, &ns, "rethrottle", spec).await;
    wait_status(
        &client,
        &ns,
        "rethrottle",
        "documents written",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    patch_spec(
        &client,
        &ns,
        "rethrottle",
        json!({"requestsPerSecond": 1_000_000}),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "rethrottle", Duration::from_secs(60)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(obj.metadata.generation, Some(2));
    assert_eq!(
        s.observed_generation,
        Some(2),
        "the running copy took over the rate-only change"
    );
    let reasons = wait_event_reasons(&client, &ns, "rethrottle", &["Rethrottled"]).await;
    assert!(reasons.iter().any(|r| r == "Rethrottled"), "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| *r == "Copying").count(),
        1,
        "one copy only: {reasons:?}"
    );
    assert_eq!(
        op.log().matches("starting a copy").count(),
        1,
        "one copy only"
    );
    assert_eq!(count(dst.url(), "logs-copy").await, 20_000);
}

#[tokio::test]
async fn a_killed_operator_is_resumed_with_the_recorded_settings() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-kill").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20_000)).await;
    dest_with_settings(dst.url(), "logs-copy").await;
    let mut op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 500, "paging": "scroll"},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 500,
    });
    create_reindex(&client, &ns, "crash", spec).await;
    let obj = wait_status(
        &client,
        &ns,
        "crash",
        "documents written and a scroll open",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0) && !s.open_scrolls.is_empty(),
    )
    .await;
    let stale_scrolls = obj.status.unwrap().open_scrolls;
    op.kill();
    // The crash left the destination tuned; only the status knows the user's settings now.
    let tuned = settings(dst.url(), "logs-copy").await;
    assert_eq!(
        tuned.get("index.refresh_interval"),
        Some(&json!("-1")),
        "{tuned:?}"
    );
    assert_eq!(
        tuned.get("index.number_of_replicas"),
        Some(&json!("0")),
        "{tuned:?}"
    );
    patch_spec(&client, &ns, "crash", json!({"requestsPerSecond": null})).await;

    let op = Operator::start(&ns, dst.url(), &[]).await;
    let obj = wait_terminal(&client, &ns, "crash", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(condition(&s, "Ready").reason, "Verified");
    assert_eq!(s.observed_generation, Some(2));
    assert_settings_restored(dst.url(), "logs-copy").await;
    assert_eq!(
        parsed(&all_docs(dst.url(), "logs-copy").await),
        parsed(&all_docs(src.url(), "logs").await)
    );
    for id in stale_scrolls {
        let (status, body) = call(
            "POST",
            &format!("{}/_search/scroll", src.url()),
            Some(json!({"scroll": "1m", "scroll_id": id})),
        )
        .await;
        assert_eq!(
            status, 404,
            "the dead process's scroll is still open: {body}"
        );
    }
    let reasons = wait_event_reasons(&client, &ns, "crash", &["Resuming"]).await;
    assert!(reasons.iter().any(|r| r == "Resuming"), "{reasons:?}");
    assert!(
        op.log()
            .contains("cleared scrolls left by an earlier process"),
        "{}",
        op.log()
    );
}

#[tokio::test]
async fn with_leader_election_only_the_leader_copies_and_a_standby_takes_over() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-leader").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20_000)).await;
    dest_with_settings(dst.url(), "logs-copy").await;
    let election = [
        "--leader-election",
        "--leader-election-namespace",
        &ns,
        "--lease-duration",
        "4",
    ];
    let mut leader = Operator::start(&ns, dst.url(), &election).await;
    eventually(
        "the first operator to lead",
        Duration::from_secs(30),
        || {
            let log = leader.log();
            async move { log.contains("this replica is the leader").then_some(()) }
        },
    )
    .await;
    let standby = Operator::start(&ns, dst.url(), &election).await;
    eventually(
        "the second operator to wait for the Lease",
        Duration::from_secs(30),
        || {
            let log = standby.log();
            async move {
                log.contains("waiting to acquire the leader election Lease")
                    .then_some(())
            }
        },
    )
    .await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 500},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 500,
    });
    create_reindex(&client, &ns, "ha", spec).await;
    wait_status(
        &client,
        &ns,
        "ha",
        "documents written",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    assert!(leader.log().contains("starting a copy"));
    assert!(
        !standby.log().contains("starting a copy"),
        "the standby copied too"
    );

    leader.kill();
    patch_spec(&client, &ns, "ha", json!({"requestsPerSecond": null})).await;
    let obj = wait_terminal(&client, &ns, "ha", Duration::from_secs(120)).await;
    assert_eq!(
        obj.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Succeeded),
        "{:#?}",
        obj.status
    );
    let log = standby.log();
    assert!(
        log.contains("this replica is the leader") && log.contains("starting a copy"),
        "{log}"
    );
    assert_settings_restored(dst.url(), "logs-copy").await;
    assert_eq!(count(dst.url(), "logs-copy").await, 20_000);
    report_fault(
        "two operators with leader election, the leader killed",
        20_000,
        count(dst.url(), "logs-copy").await,
        rewritten(dst.url(), "logs-copy").await,
        "Succeeded",
    );
}

#[tokio::test]
async fn sigterm_stops_copies_restoring_settings_and_the_next_operator_resumes() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-sigterm").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20_000)).await;
    dest_with_settings(dst.url(), "logs-copy").await;
    let mut op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 500, "paging": "scroll"},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 500,
    });
    create_reindex(&client, &ns, "term", spec).await;
    wait_status(
        &client,
        &ns,
        "term",
        "documents written",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    assert_eq!(op.terminate().await, Some(0), "{}", op.log());
    // Stopped cleanly: the destination is back to the user's settings, the phase is kept for
    // the next operator.
    assert_settings_restored(dst.url(), "logs-copy").await;
    let s = Api::<RemoteReindex>::namespaced(client.clone(), &ns)
        .get("term")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(s.phase, Some(Phase::Copying), "{s:#?}");
    // The scrolls are kept, and the drained checkpoints say the successor may continue them.
    assert!(
        !s.open_scrolls.is_empty(),
        "scrolls kept for the successor: {s:#?}"
    );
    assert!(
        s.slices
            .iter()
            .all(|c| c.resumable || c.state == remote_reindex::api::SliceStateName::Done),
        "{s:#?}"
    );
    let reasons = wait_event_reasons(&client, &ns, "term", &["Interrupted"]).await;
    assert!(reasons.iter().any(|r| r == "Interrupted"), "{reasons:?}");

    let checkpointed: u64 = s.slices.iter().map(|c| c.written as u64).sum();
    patch_spec(&client, &ns, "term", json!({"requestsPerSecond": null})).await;
    let op2 = Operator::start(&ns, dst.url(), &[]).await;
    let obj = wait_terminal(&client, &ns, "term", Duration::from_secs(120)).await;
    assert_eq!(
        obj.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Succeeded),
        "{:#?}",
        obj.status
    );
    assert_settings_restored(dst.url(), "logs-copy").await;
    assert_eq!(count(dst.url(), "logs-copy").await, 20_000);
    // The successor's metrics count only what it copied, not the checkpointed documents.
    let metrics = op2.metrics().await;
    let line = format!(
        "remote_reindex_documents_written_total {}",
        20_000 - checkpointed
    );
    assert!(
        checkpointed > 0 && metrics.lines().any(|l| l == line),
        "expected `{line}`:\n{metrics}"
    );
}
