//! Leader election that cannot let two operators write the same copy: a leader paused (SIGSTOP)
//! past its Lease wakes to find its budget spent, writes no status, and the copy the new leader
//! finished equals the source document by document.

use super::docs;
use super::k8s::*;
use crate::harness::*;
use kube::Api;
use remote_reindex::api::{Phase, RemoteReindex};
use remote_reindex::search::{ClientOptions, SearchClient};
use remote_reindex::verify::{Side, checksum};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn side(which: &'static str, url: &str, index: &str) -> Side {
    Side {
        which,
        client: SearchClient::new(ClientOptions::new(url)).unwrap(),
        index: index.into(),
        query: None,
        slices: 2,
        keep_alive: "1m".into(),
    }
}

#[tokio::test]
async fn a_leader_paused_past_its_lease_is_fenced_and_the_copy_equals_the_source() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-fence").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20_000)).await;
    let election = [
        "--leader-election",
        "--leader-election-namespace",
        &ns,
        "--lease-duration",
        "6",
    ];
    let mut stale = Operator::start(&ns, dst.url(), &election).await;
    eventually(
        "the first operator to lead",
        Duration::from_secs(30),
        || {
            let log = stale.log();
            async move { log.contains("this replica is the leader").then_some(()) }
        },
    )
    .await;
    let next = Operator::start(&ns, dst.url(), &election).await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 200, "slices": 2},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 300,
        "verify": "Checksum",
    });
    create_reindex(&client, &ns, "fence", spec).await;
    wait_status(
        &client,
        &ns,
        "fence",
        "documents written",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;

    // Pause the leader past its Lease; the standby takes over and resumes the copy.
    stale.signal("STOP");
    eventually("the standby to take over", Duration::from_secs(60), || {
        let log = next.log();
        async move {
            (log.contains("this replica is the leader") && log.contains("starting a copy"))
                .then_some(())
        }
    })
    .await;
    // Let the new leader write its own progress at least once (it samples every 2 s).
    tokio::time::sleep(Duration::from_secs(4)).await;

    // From here on, progress may only grow: a write by the paused leader would set it back.
    let api: Api<RemoteReindex> = Api::namespaced(client.clone(), &ns);
    let history: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let poller = tokio::spawn({
        let (api, history) = (api.clone(), history.clone());
        async move {
            loop {
                if let Ok(obj) = api.get("fence").await {
                    let s = obj.status.unwrap_or_default();
                    let written = s.progress.map_or(-1, |p| p.written);
                    let rv = obj.metadata.resource_version.unwrap_or_default();
                    let mut h = history.lock().unwrap();
                    if h.last().is_none_or(|(r, _)| *r != rv) {
                        h.push((rv, written));
                    }
                    if s.phase.is_some_and(Phase::is_terminal) {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    stale.signal("CONT");
    eventually(
        "the stale leader to stop writing",
        Duration::from_secs(60),
        || {
            let log = stale.log();
            async move { log.contains("this replica stops writing").then_some(()) }
        },
    )
    .await;
    eventually("the stale leader to exit", Duration::from_secs(60), || {
        let exited = stale.exited();
        async move { exited }
    })
    .await;
    patch_spec(&client, &ns, "fence", json!({"requestsPerSecond": null})).await;
    let obj = wait_terminal(&client, &ns, "fence", Duration::from_secs(180)).await;
    poller.await.unwrap();
    let status = obj.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let verified = condition(&status, "Verified");
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "ChecksumMatched"),
        "{status:#?}"
    );
    let v = status.verification.clone().expect("status.verification");
    assert_eq!((v.expected, v.found), (20_000, 20_000), "{v:?}");
    assert_eq!((v.missing, v.unexpected, v.differing), (0, 0, 0), "{v:?}");

    let history = history.lock().unwrap().clone();
    for w in history.windows(2) {
        let ((_, a), (_, b)) = (&w[0], &w[1]);
        assert!(
            b >= a,
            "status.progress.written went back from {a} to {b}: a stale write got through: {history:?}"
        );
    }
    let log = stale.log();
    assert!(log.contains("refusing to write the status"), "{log}");
    eprintln!(
        "stale leader's log after SIGCONT: {}",
        log.lines()
            .filter(|l| l.contains("refusing to write")
                || l.contains("stops writing")
                || l.contains("checking leadership"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The destination equals the source, checked independently of the operator.
    let r = checksum(
        &side("source", src.url(), "logs"),
        &side("destination", dst.url(), "logs-copy"),
    )
    .await
    .unwrap();
    assert!(r.matched, "{}", r.message());
    assert_eq!(r.found, 20_000);
    let (a, b) = (
        all_docs(src.url(), "logs").await,
        all_docs(dst.url(), "logs-copy").await,
    );
    assert_eq!(parsed(&a), parsed(&b));
    report_fault(
        "leader paused (SIGSTOP) past its Lease, resumed after the takeover",
        20_000,
        r.found,
        rewritten(dst.url(), "logs-copy").await,
        "Succeeded",
    );
}
