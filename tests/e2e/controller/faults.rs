//! Issue 6's fault suite at the operator level: checkpoints survive SIGKILL and SIGTERM (done
//! slices are never rewritten), suspend/resume across a scroll keep-alive, and a destination
//! recreated mid-copy. Each case ends with the destination equal to the source.

use super::docs;
use super::k8s::*;
use crate::harness::*;
use remote_reindex::api::{Phase, SliceStateName};
use serde_json::json;
use std::time::Duration;

/// Ids of slice `id` of `max` (sliced scroll, `_source` off).
async fn slice_ids(base: &str, index: &str, id: u32, max: u32) -> Vec<String> {
    refresh(base, index).await;
    let mut out = Vec::new();
    let (_, mut page) = call(
        "POST",
        &format!("{base}/{index}/_search?scroll=1m"),
        Some(json!({"size": 1000, "_source": false, "sort": ["_doc"], "slice": {"id": id, "max": max}})),
    )
    .await;
    loop {
        let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
        if hits.is_empty() {
            return out;
        }
        out.extend(hits.iter().map(|h| h["_id"].as_str().unwrap().to_string()));
        let sid = page["_scroll_id"].as_str().unwrap().to_string();
        page = call(
            "POST",
            &format!("{base}/_search/scroll"),
            Some(json!({"scroll": "1m", "scroll_id": sid})),
        )
        .await
        .1;
    }
}

/// Deletes documents by id.
async fn delete_ids(base: &str, index: &str, ids: &[String]) {
    let mut body = String::new();
    for id in ids {
        body.push_str(&json!({"delete": {"_index": index, "_id": id}}).to_string());
        body.push('\n');
    }
    let r = http()
        .post(format!("{base}/_bulk"))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    refresh(base, index).await;
}

/// `_version` of a document in `index`.
async fn version(base: &str, index: &str, id: &str) -> u64 {
    let id: String = id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (_, v) = call("GET", &format!("{base}/{index}/_doc/{id}"), None).await;
    v["_version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no _version for {id}: {v}"))
}

/// A source where slice 0 of 2 holds only `small` documents and slice 1 all the others, so slice
/// 0 finishes long before slice 1. Returns slice 0's ids.
async fn lopsided_source(base: &str, n: usize, small: usize) -> Vec<String> {
    load(base, "logs", &docs(n)).await;
    let s0 = slice_ids(base, "logs", 0, 2).await;
    delete_ids(base, "logs", &s0[small..]).await;
    s0[..small].to_vec()
}

#[tokio::test]
async fn sigkill_twice_mid_copy_never_rewrites_finished_slices() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-kill2").await;
    let (src, dst) = (noida(), noida());
    let slice0 = lopsided_source(src.url(), 12_000, 300).await;
    let total = count(src.url(), "logs").await;
    let mut op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        // The lopsided source is built from scroll slicing (PIT slices split differently).
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 100, "slices": 2, "paging": "scroll"},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 1500,
    });
    create_reindex(&client, &ns, "crash", spec).await;
    let mut rewritten_budget = 0;
    for round in 0..2 {
        let obj = wait_status(
            &client,
            &ns,
            "crash",
            "slice 0 done, slice 1 running with progress",
            Duration::from_secs(90),
            |s| {
                s.slices.len() == 2
                    && s.slices[0].state == SliceStateName::Done
                    && s.slices[1].state == SliceStateName::Running
                    && s.slices[1].written > (round as i64 + 1) * 500
            },
        )
        .await;
        rewritten_budget += obj.status.unwrap().slices[1].written;
        op.kill();
        op = Operator::start(&ns, dst.url(), &[]).await;
    }
    patch_spec(&client, &ns, "crash", json!({"requestsPerSecond": null})).await;
    let obj = wait_terminal(&client, &ns, "crash", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    assert_eq!(
        parsed(&all_docs(dst.url(), "logs-copy").await),
        parsed(&all_docs(src.url(), "logs").await)
    );
    report_fault(
        "operator SIGKILLed twice mid-copy (2 slices)",
        total,
        count(dst.url(), "logs-copy").await,
        rewritten(dst.url(), "logs-copy").await,
        "Succeeded",
    );
    // Slice 0 finished before the first crash: none of its documents was written twice.
    for id in &slice0 {
        assert_eq!(
            version(dst.url(), "logs-copy", id).await,
            1,
            "{id} of the finished slice was rewritten"
        );
    }
    let (_, stats) = call("GET", &format!("{}/logs-copy/_stats", dst.url()), None).await;
    let indexed = stats["_all"]["primaries"]["indexing"]["index_total"].as_u64();
    eprintln!(
        "fault kill×2: documents {total}, indexing operations {indexed:?}, slice-1 documents possibly rewritten ≤ {rewritten_budget}"
    );
    if let Some(indexed) = indexed {
        assert!(
            indexed < total + rewritten_budget as u64 + 1,
            "{indexed} index operations for {total} documents"
        );
    }
}

#[tokio::test]
async fn sigterm_checkpoints_and_the_successor_continues_the_scroll_without_rewrites() {
    sigterm_then_continue("scroll").await;
}

#[tokio::test]
async fn sigterm_checkpoints_and_the_successor_continues_the_pit_without_rewrites() {
    sigterm_then_continue("pit").await;
}

/// SIGTERM mid-copy: the drained checkpoints hold each running slice's cursor (a scroll id, or
/// a point in time and its `search_after`), and the successor continues exactly there.
async fn sigterm_then_continue(paging: &str) {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, &format!("rr-term-{paging}")).await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(8000)).await;
    let mut op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 200, "slices": 2, "paging": paging},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 1500,
    });
    create_reindex(&client, &ns, "graceful", spec).await;
    wait_status(
        &client,
        &ns,
        "graceful",
        "progress",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written >= 1000),
    )
    .await;
    assert_eq!(op.terminate().await, Some(0), "{}", op.log());
    let obj = wait_status(
        &client,
        &ns,
        "graceful",
        "resumable checkpoints",
        Duration::from_secs(10),
        |s| {
            s.slices.len() == 2
                && s.slices
                    .iter()
                    .all(|c| c.state == SliceStateName::Done || c.resumable)
        },
    )
    .await;
    let kept: Vec<String> = obj
        .status
        .unwrap()
        .slices
        .iter()
        .filter_map(|c| match paging {
            "scroll" => c.scroll_id.clone(),
            _ => c.pit_id.clone().filter(|_| c.search_after.is_some()),
        })
        .collect();
    assert!(!kept.is_empty(), "the cursors are kept for the successor");
    patch_spec(&client, &ns, "graceful", json!({"requestsPerSecond": null})).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let obj = wait_terminal(&client, &ns, "graceful", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    assert!(
        op.log()
            .contains("continuing where an earlier process left off"),
        "{}",
        op.log()
    );
    let src_docs = all_docs(src.url(), "logs").await;
    assert_eq!(
        parsed(&all_docs(dst.url(), "logs-copy").await),
        parsed(&src_docs)
    );
    let again = rewritten(dst.url(), "logs-copy").await;
    report_fault(
        &format!("operator SIGTERMed mid-copy, successor continues the {paging} cursor"),
        8000,
        count(dst.url(), "logs-copy").await,
        again,
        "Succeeded",
    );
    assert_eq!(again, 0, "continuing the cursor rewrites nothing");
    // Continuing the scrolls re-read nothing: every document was written exactly once.
    for id in src_docs.keys().step_by(97) {
        assert_eq!(
            version(dst.url(), "logs-copy", id).await,
            1,
            "{id} was written twice"
        );
    }
}

#[tokio::test]
async fn suspend_longer_than_the_scroll_keep_alive_then_resume() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-suspend").await;
    let (src, dst) = (noida(), noida());
    let slice0 = lopsided_source(src.url(), 8000, 200).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        // The lopsided source is built from scroll slicing (PIT slices split differently).
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 100, "slices": 2, "scroll": "2s", "paging": "scroll"},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 1000,
    });
    create_reindex(&client, &ns, "pause", spec).await;
    wait_status(
        &client,
        &ns,
        "pause",
        "slice 0 done",
        Duration::from_secs(60),
        |s| {
            s.slices.len() == 2
                && s.slices[0].state == SliceStateName::Done
                && s.slices[1].written > 0
        },
    )
    .await;
    patch_spec(&client, &ns, "pause", json!({"suspend": true})).await;
    let obj = wait_status(
        &client,
        &ns,
        "pause",
        "Suspended",
        Duration::from_secs(30),
        |s| s.phase == Some(Phase::Suspended),
    )
    .await;
    let s = obj.status.unwrap();
    assert_eq!(condition(&s, "Progressing").reason, "Suspended");
    assert!(
        s.open_scrolls.is_empty(),
        "suspend clears the scrolls: {:?}",
        s.open_scrolls
    );
    let tuned = settings(dst.url(), "logs-copy").await;
    assert_eq!(
        tuned.get("index.refresh_interval"),
        Some(&json!("-1")),
        "kept tuned while suspended: {tuned:?}"
    );
    // Longer than the 2s keep-alive: any scroll would have expired by now.
    let written_before = s.progress.as_ref().map_or(0, |p| p.written);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = wait_status(
        &client,
        &ns,
        "pause",
        "still suspended",
        Duration::from_secs(5),
        |s| s.phase == Some(Phase::Suspended),
    )
    .await;
    assert_eq!(
        still.status.unwrap().progress.map_or(0, |p| p.written),
        written_before,
        "nothing is copied while suspended"
    );
    patch_spec(
        &client,
        &ns,
        "pause",
        json!({"suspend": false, "requestsPerSecond": null}),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "pause", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    assert_eq!(
        parsed(&all_docs(dst.url(), "logs-copy").await),
        parsed(&all_docs(src.url(), "logs").await)
    );
    let expected = count(src.url(), "logs").await;
    report_fault(
        "suspended longer than the scroll keep-alive, resumed",
        expected,
        count(dst.url(), "logs-copy").await,
        rewritten(dst.url(), "logs-copy").await,
        "Succeeded",
    );
    for id in &slice0 {
        assert_eq!(
            version(dst.url(), "logs-copy", id).await,
            1,
            "{id} of the finished slice was rewritten"
        );
    }
}

#[tokio::test]
async fn a_destination_recreated_mid_copy_fails_with_destination_replaced() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-uuid").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(6000)).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 100},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 1000,
    });
    create_reindex(&client, &ns, "swap", spec).await;
    wait_status(
        &client,
        &ns,
        "swap",
        "copying",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    call("DELETE", &format!("{}/logs-copy", dst.url()), None).await;
    // Recreated by hand, or auto-created by the next bulk write: either way a new UUID.
    call("PUT", &format!("{}/logs-copy", dst.url()), Some(json!({}))).await;
    patch_spec(&client, &ns, "swap", json!({"requestsPerSecond": null})).await;
    let obj = wait_terminal(&client, &ns, "swap", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Failed), "{s:#?}\n{}", op.log());
    let ready = condition(&s, "Ready");
    assert_eq!(ready.reason, "DestinationReplaced", "{ready:?}");
    assert!(
        ready.message.contains("logs-copy") && ready.message.contains("UUID"),
        "{}",
        ready.message
    );
    report_fault(
        "destination deleted and recreated mid-copy",
        6000,
        count(dst.url(), "logs-copy").await,
        rewritten(dst.url(), "logs-copy").await,
        "Failed (DestinationReplaced)",
    );
}

/// Total requests the API server has served (`apiserver_request_total`, all labels).
fn apiserver_requests() -> f64 {
    let (code, out, err) = kubectl(&["get", "--raw", "/metrics"], None);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn twenty_copies_at_once_all_succeed() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-load").await;
    let (src, dst) = (noida(), osmem());
    load(src.url(), "logs", &docs(2000)).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let before = apiserver_requests();
    let started = std::time::Instant::now();
    for i in 0..20 {
        let spec = json!({
            "source": {"remote": {"host": src.url()}, "index": "logs", "size": 250},
            "dest": {"index": format!("copy-{i}")},
        });
        create_reindex(&client, &ns, &format!("load-{i}"), spec).await;
    }
    for i in 0..20 {
        let obj = wait_terminal(&client, &ns, &format!("load-{i}"), Duration::from_secs(180)).await;
        let s = obj.status.unwrap();
        assert_eq!(s.phase, Some(Phase::Succeeded), "load-{i}: {s:#?}");
        assert_eq!(count(dst.url(), &format!("copy-{i}")).await, 2000);
    }
    report_fault(
        "20 RemoteReindex at once (2,000 documents each)",
        40_000,
        40_000,
        0,
        "Succeeded ×20",
    );
    let secs = started.elapsed().as_secs_f64();
    // The test's own polling is part of the count; it is an upper bound for the operator.
    let rps = (apiserver_requests() - before) / secs;
    eprintln!(
        "fault load: 20 copies × 2000 documents in {secs:.1}s; operator peak RSS {} MiB; API server {rps:.1} requests/s (test polling included)",
        op.peak_rss_mib()
    );
    assert!(
        op.peak_rss_mib() < 512,
        "operator peak RSS {} MiB",
        op.peak_rss_mib()
    );
}

#[tokio::test]
async fn a_kube_apiserver_restart_mid_copy_is_survived() {
    let cp = OwnControlPlane::start();
    let kc = cp.kubeconfig();
    // Both CRDs: the operator stays unready until it can list ReindexPolicies.
    cp.apply_crds(&["remotereindex", "reindexpolicy"]);
    let client = client_from(&kc).await;
    let ns = namespace(&client, "rr-apirestart").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(6000)).await;
    let op = Operator::start_as(&kc, &ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 100},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 1000,
    });
    create_reindex(&client, &ns, "through", spec).await;
    wait_status(
        &client,
        &ns,
        "through",
        "progress",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    cp.restart_apiserver();
    patch_spec(&client, &ns, "through", json!({"requestsPerSecond": null})).await;
    let obj = wait_terminal(&client, &ns, "through", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    assert_eq!(s.progress.map(|p| p.written), Some(6000));
    assert_eq!(
        parsed(&all_docs(dst.url(), "logs-copy").await),
        parsed(&all_docs(src.url(), "logs").await)
    );
    report_fault(
        "kube-apiserver restarted mid-copy",
        6000,
        count(dst.url(), "logs-copy").await,
        rewritten(dst.url(), "logs-copy").await,
        "Succeeded",
    );
}
