//! Leader election that cannot let two operators write the same copy: a leader paused (SIGSTOP)
//! past its Lease wakes to find its budget spent, writes no status, and the copy the new leader
//! finished equals the source document by document.

use super::docs;
use super::k8s::*;
use crate::harness::*;
use k8s_openapi::jiff::{self, Timestamp};
use remote_reindex::api::Phase;
use remote_reindex::search::{ClientOptions, SearchClient};
use remote_reindex::verify::{Side, checksum};
use serde_json::json;
use std::time::Duration;

/// The leader election identity an operator logged.
fn identity(log: &str) -> String {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["fields"]["identity"].as_str().map(str::to_string))
        .expect("the operator logs its identity")
}

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
    let stale_id = identity(&stale.log());
    stale.signal("STOP");
    let stopped_at = Timestamp::now();
    eventually("the standby to take over", Duration::from_secs(60), || {
        let log = next.log();
        async move {
            (log.contains("this replica is the leader") && log.contains("starting a copy"))
                .then_some(())
        }
    })
    .await;
    // Let the new leader write its own status (it samples progress every 2 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
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

    // Status writes name their replica as field manager: the stale leader's last write to the
    // status is from before its pause (a write after SIGCONT would carry a later time).
    let next_id = identity(&next.log());
    let status_writes = |who: &str| {
        obj.metadata
            .managed_fields
            .iter()
            .flatten()
            // Only status writes name a replica (`subresource` is not recorded before 1.22).
            .filter(|m| m.manager.as_deref() == Some(who))
            .filter_map(|m| m.time.as_ref().map(|t| t.0))
            .max()
    };
    let stale_last =
        status_writes(&stale_id).expect("the first leader wrote the status before its pause");
    assert!(
        stale_last < stopped_at + jiff::SignedDuration::from_secs(2),
        "the paused leader wrote the status at {stale_last}, after its pause at {stopped_at}"
    );
    assert!(
        status_writes(&next_id).is_some(),
        "{:?}",
        obj.metadata.managed_fields
    );
    let log = stale.log();
    assert!(log.contains("refusing to write the status"), "{log}");
    eprintln!(
        "stale leader's last status write {stale_last} (paused at {stopped_at}); its log after SIGCONT:\n{}",
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
