//! Engine behaviours: per-item 429 resends, throttling, slices without loss or duplicates.

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn yaml(src: &str, dst: &str, source_extra: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: src\n{source_extra}  dest:\n    remote: {{host: \"{dst}\"}}\n    index: dst\n{spec_extra}"
    )
}

#[tokio::test]
async fn only_bulk_items_rejected_with_429_are_resent_through_fake_bulk_429() {
    let (src, real_dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(300)).await;
    let fake = fake_bulk_429::start(real_dst.url().to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "r.yaml",
        &yaml(
            src.url(),
            &fake.url,
            "    size: 100\n",
            "  retry: {maxBackoff: 100ms}\n",
        ),
    );
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let requests = fake.bulk_ids.lock().unwrap().clone();
    let rejected = fake.rejected.lock().unwrap().clone();
    assert!(!rejected.is_empty());
    // Each rejected batch is followed by a request holding exactly the rejected items.
    for (i, r) in rejected.iter().enumerate() {
        let pos = requests
            .iter()
            .position(|q| q == &r.0)
            .expect("the rejected request was recorded");
        assert!(
            requests[pos + 1..].contains(&r.1),
            "resend {i} not found: expected exactly {:?}",
            r.1
        );
    }
    let total_sent: usize = requests.iter().map(Vec::len).sum();
    let resent: usize = rejected.iter().map(|r| r.1.len()).sum();
    assert_eq!(
        total_sent,
        300 + resent,
        "only rejected items are sent twice"
    );
    assert_eq!(
        parsed(&all_docs(src.url(), "src").await),
        parsed(&all_docs(real_dst.url(), "dst").await)
    );
}

#[tokio::test]
async fn throttle_keeps_the_rate_at_or_below_requests_per_second() {
    let (src, dst) = (osmem(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(3000)).await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "r.yaml",
        &yaml(
            src.url(),
            dst.url(),
            "    size: 250\n    slices: 2\n",
            "  requestsPerSecond: 1500\n",
        ),
    );
    let started = Instant::now();
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{out}\n{err}");
    let rate = 3000.0 / secs;
    // Upper bound only: a loaded machine may be slower, never faster.
    assert!(
        rate <= 1500.0 * 1.1,
        "observed {rate:.0} docs/s over {secs:.2}s, limit 1500"
    );
    assert_eq!(count(dst.url(), "dst").await, 3000);
}

#[tokio::test]
async fn sliced_copy_loses_and_duplicates_nothing() {
    let (src, dst) = (noida(), osmem());
    create_index(
        src.url(),
        "src",
        json!({"settings": {"number_of_shards": 4}, "mappings": {"dynamic": false}}),
    )
    .await;
    load(src.url(), "src", &hostile_docs(8000)).await;
    let dir = tempfile::tempdir().unwrap();
    let y = yaml(src.url(), dst.url(), "    size: 333\n    slices: 5\n", "").replace(
        "    index: dst\n",
        "    index: dst\n    maxConcurrentBulk: 3\n    bulkBytes: 64Ki\n",
    );
    let f = manifest(&dir, "r.yaml", &y);
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("5 slice(s)"), "{err}");
    // all_docs asserts that no _id appears twice; equality shows none is missing.
    let (a, b) = (
        all_docs(src.url(), "src").await,
        all_docs(dst.url(), "dst").await,
    );
    assert_eq!(b.len(), 8000);
    assert_eq!(parsed(&a), parsed(&b));
}

/// `fake_bulk_429`: a proxy in front of a real server that answers the first bulk requests with
/// HTTP 200 but some items `429` (a real server cannot be made to reject chosen items), and
/// records which ids each bulk request carried. Everything else is forwarded unchanged.
mod fake_bulk_429 {
    use super::*;
    use tokio::io::BufReader;

    /// (ids of a bulk request that got item 429s, the ids rejected in it), in order.
    pub type Rejections = Arc<Mutex<Vec<(Vec<String>, Vec<String>)>>>;

    pub struct Fake {
        pub url: String,
        /// Ids in each bulk request, in arrival order.
        pub bulk_ids: Arc<Mutex<Vec<Vec<String>>>>,
        /// (ids of a request that got item 429s, ids rejected in it).
        pub rejected: Rejections,
    }

    pub async fn start(upstream: String) -> Fake {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let bulk_ids: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let rejected: Rejections = Arc::default();
        let (b, r) = (bulk_ids.clone(), rejected.clone());
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let (up, b, r) = (upstream.clone(), b.clone(), r.clone());
                tokio::spawn(async move { serve(s, up, b, r).await });
            }
        });
        Fake {
            url,
            bulk_ids,
            rejected,
        }
    }

    async fn serve(
        s: tokio::net::TcpStream,
        upstream: String,
        ids: Arc<Mutex<Vec<Vec<String>>>>,
        rejected: Rejections,
    ) {
        let mut s = BufReader::new(s);
        while let Some(req) = fake_http::read(&mut s).await {
            let (status, out) = if req.path.starts_with("/_bulk") {
                bulk(&upstream, &req.body, &ids, &rejected).await
            } else {
                fake_http::forward(&upstream, &req).await
            };
            fake_http::respond(&mut s, status, &out).await;
        }
    }

    /// Rejects every third item of the first three bulk requests with 429; forwards the rest.
    async fn bulk(
        upstream: &str,
        body: &[u8],
        ids: &Mutex<Vec<Vec<String>>>,
        rejected: &Mutex<Vec<(Vec<String>, Vec<String>)>>,
    ) -> (u16, Vec<u8>) {
        let text = std::str::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let pairs: Vec<(&str, &str)> = lines.chunks(2).map(|c| (c[0], c[1])).collect();
        let req_ids: Vec<String> = pairs
            .iter()
            .map(|(a, _)| {
                serde_json::from_str::<Value>(a).unwrap()["index"]["_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let nth = {
            let mut all = ids.lock().unwrap();
            all.push(req_ids.clone());
            all.len()
        };
        let reject: Vec<bool> = (0..pairs.len()).map(|i| nth <= 3 && i % 3 == 1).collect();
        let mut forward = String::new();
        for (i, (a, d)) in pairs.iter().enumerate() {
            if !reject[i] {
                forward.push_str(&format!("{a}\n{d}\n"));
            }
        }
        let mut upstream_items = Vec::new();
        if !forward.is_empty() {
            let v: Value = http()
                .post(format!("{upstream}/_bulk"))
                .header("content-type", "application/x-ndjson")
                .body(forward)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            upstream_items = v["items"].as_array().unwrap().clone();
        }
        let mut up = upstream_items.into_iter();
        let mut items = Vec::new();
        let mut rej = Vec::new();
        for (i, id) in req_ids.iter().enumerate() {
            if reject[i] {
                rej.push(id.clone());
                items.push(json!({"index": {"_id": id, "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution (fake)"}}}));
            } else {
                items.push(up.next().unwrap());
            }
        }
        if !rej.is_empty() {
            rejected.lock().unwrap().push((req_ids, rej));
        }
        (
            200,
            serde_json::to_vec(&json!({"took": 1, "errors": true, "items": items})).unwrap(),
        )
    }
}

#[tokio::test]
async fn a_source_killed_mid_scroll_and_restarted_is_survived() {
    let (mut src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(5000)).await;
    let dir = tempfile::tempdir().unwrap();
    let y = yaml(
        src.url(),
        dst.url(),
        "    size: 100\n",
        "  requestsPerSecond: 2000\n  retry: {maxAttempts: 40, maxBackoff: 500ms}\n",
    );
    let f = manifest(&dir, "r.yaml", &y);
    let mut cmd = tokio::process::Command::from(cli());
    cmd.args(["run", "-f", f.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // osmem-server makes writes searchable at once, so the copy's progress is visible.
    eventually(
        "the copy to be under way",
        Duration::from_secs(60),
        || async {
            let (_, v) = call("GET", &format!("{}/dst/_count", dst.url()), None).await;
            (v["count"].as_u64().unwrap_or(0) > 500).then_some(())
        },
    )
    .await;
    src.terminate();
    // The fault lasts a moment: the copy retries against a closed port meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    src.restart_noida();
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("restarting the slice"),
        "the lost scroll context restarts the slice: {err}"
    );
    assert_eq!(
        parsed(&all_docs(src.url(), "src").await),
        parsed(&all_docs(dst.url(), "dst").await)
    );
    report_fault(
        "source killed mid-scroll and restarted",
        5000,
        count(dst.url(), "dst").await,
        rewritten(dst.url(), "dst").await,
        "exit 0 (verified)",
    );
}

#[tokio::test]
async fn bulk_responses_lost_after_the_write_are_retried_without_damage_through_fake_drop() {
    let (src, real_dst) = (osmem(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(1500)).await;
    let fake = fake_drop::start(real_dst.url().to_string(), 3).await;
    let dir = tempfile::tempdir().unwrap();
    for op in ["index", "create"] {
        let y = yaml(
            src.url(),
            &fake.url,
            "    size: 200\n",
            "  retry: {maxBackoff: 200ms}\n",
        )
        .replace(
            "    index: dst\n",
            &format!("    index: dst-{op}\n    opType: {op}\n"),
        );
        let f = manifest(&dir, &format!("{op}.yaml"), &y);
        let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{op}: {out}\n{err}");
        assert!(out.contains("0 failed"), "{out}");
        assert_eq!(
            parsed(&all_docs(src.url(), "src").await),
            parsed(&all_docs(real_dst.url(), &format!("dst-{op}")).await),
            "{op}"
        );
    }
    assert_eq!(
        fake.dropped.load(std::sync::atomic::Ordering::Relaxed),
        6,
        "three responses dropped per copy"
    );
    for op in ["index", "create"] {
        let idx = format!("dst-{op}");
        report_fault(
            &format!("bulk responses lost after the write (opType {op})"),
            1500,
            count(real_dst.url(), &idx).await,
            rewritten(real_dst.url(), &idx).await,
            "exit 0 (verified)",
        );
    }
}

/// `fake_drop`: forwards every request to a real server, but for the first `n` bulk requests of
/// each destination index drops the connection after the server applied the write, so the
/// client never sees the answer (a real server cannot be made to lose a response).
mod fake_drop {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::BufReader;

    pub struct Fake {
        pub url: String,
        pub dropped: Arc<AtomicUsize>,
    }

    pub async fn start(upstream: String, n: usize) -> Fake {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let dropped = Arc::new(AtomicUsize::new(0));
        let per_index: Arc<Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
        let d = dropped.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let (up, d, p) = (upstream.clone(), d.clone(), per_index.clone());
                tokio::spawn(async move { serve(s, up, d, p, n).await });
            }
        });
        Fake { url, dropped }
    }

    async fn serve(
        s: tokio::net::TcpStream,
        upstream: String,
        dropped: Arc<AtomicUsize>,
        per_index: Arc<Mutex<std::collections::HashMap<String, usize>>>,
        n: usize,
    ) {
        let mut s = BufReader::new(s);
        while let Some(req) = fake_http::read(&mut s).await {
            let (status, out) = fake_http::forward(&upstream, &req).await;
            if req.path.starts_with("/_bulk") {
                let first = String::from_utf8_lossy(&req.body)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let index = serde_json::from_str::<Value>(&first)
                    .ok()
                    .and_then(|v| {
                        v.as_object()?.values().next()?["_index"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .unwrap_or_default();
                let drop_it = {
                    let mut p = per_index.lock().unwrap();
                    let c = p.entry(index).or_default();
                    *c += 1;
                    *c <= n
                };
                if drop_it {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return; // the write is applied; the answer is lost with the connection
                }
            }
            fake_http::respond(&mut s, status, &out).await;
        }
    }
}

/// Peak resident memory of a running process (`VmHWM`), polled until it exits.
async fn run_cli_with_peak_rss(args: &[&str]) -> (i32, String, u64) {
    let mut cmd = tokio::process::Command::from(cli());
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let status = format!("/proc/{}/status", child.id().unwrap());
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let p = peak.clone();
    let poller = tokio::spawn(async move {
        while let Ok(s) = tokio::fs::read_to_string(&status).await {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                p.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let out = child.wait_with_output().await.unwrap();
    poller.abort();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (
        out.status.code().unwrap_or(-1),
        err,
        peak.load(std::sync::atomic::Ordering::Relaxed) / 1024,
    )
}

#[tokio::test]
async fn memory_stays_bounded_with_300_documents_of_1_mb_and_a_30_mb_document_goes_alone() {
    let (src, dst) = (osmem(), osmem());
    create_index(src.url(), "src", json!({"mappings": {"dynamic": false}})).await;
    let blob = "y".repeat(1 << 20);
    let mut docs: Vec<Doc> = (0..300)
        .map(|i| Doc {
            id: format!("m{i}"),
            source: format!(r#"{{"i":{i},"blob":"{blob}"}}"#),
            routing: None,
        })
        .collect();
    docs.push(Doc {
        id: "huge".into(),
        source: format!(r#"{{"blob":"{}"}}"#, "z".repeat(30 << 20)),
        routing: None,
    });
    for chunk in docs.chunks(20) {
        load(src.url(), "src", chunk).await;
    }
    let dir = tempfile::tempdir().unwrap();
    // A full page of 1000 × 1 MB would be a gigabyte; the engine must stay near its budget:
    // 2 slices × page budget (10 MiB) + (queue + writers) × 5 MiB bulks + the 30 MB document.
    let y = yaml(src.url(), dst.url(), "    slices: 2\n", "").replace(
        "    index: dst\n",
        "    index: dst\n    bulkBytes: 5Mi\n    maxConcurrentBulk: 2\n",
    );
    let f = manifest(&dir, "r.yaml", &y);
    let (code, err, peak_mib) = run_cli_with_peak_rss(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    eprintln!("peak RSS copying 300 × 1 MB + one 30 MB document: {peak_mib} MiB");
    assert!(peak_mib < 256, "peak RSS {peak_mib} MiB");
    let (a, b) = (
        all_docs(src.url(), "src").await,
        all_docs(dst.url(), "dst").await,
    );
    assert_eq!(a.len(), 301);
    assert_eq!(a, b);
}
