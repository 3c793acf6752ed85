//! Issue 21, items 1 and 2: what a finished slice means. A slice is Done only when every page of
//! it settled successfully, and all slices of one copy read one point in time (a lost PIT starts
//! every slice again, finished ones included), on real engines.

use crate::harness::*;
use remote_reindex::api::PagingMode as PagingChoice;
use remote_reindex::copy::{CopyPlan, CopyStats, SliceState, Stop, Throttle, WriteOp, open_copy};
use remote_reindex::search::{ClientOptions, SearchClient};
use serde_json::json;
use std::sync::Arc;

fn client(url: &str) -> SearchClient {
    SearchClient::new(ClientOptions::new(url)).unwrap()
}

async fn plan(url: &str, sidx: &str, didx: &str, max_docs: Option<u64>) -> CopyPlan {
    let source = client(url);
    let paging = remote_reindex::copy::pager::choose(&source, sidx, None, "1m", PagingChoice::Auto)
        .await
        .unwrap();
    CopyPlan {
        source,
        source_index: sidx.into(),
        query: None,
        page_size: 10,
        keep_alive: "1m".into(),
        paging,
        slices: 1,
        max_docs,
        dest: client(url),
        dest_index: didx.into(),
        dest_type: None,
        op: WriteOp::Index,
        pipeline: None,
        bulk_bytes: 4 << 20,
        max_concurrent_bulk: 1,
        proceed_on_conflict: false,
        dest_was_empty: true,
        max_failed_docs: 0,
        throttle: Arc::new(Throttle::new(None)),
        resume: Vec::new(),
        share: None,
    }
}

#[tokio::test]
async fn a_slice_whose_last_batch_got_a_real_413_is_not_done_and_a_resume_reads_it_again() {
    // A private Elasticsearch 8 refusing request bodies over 1 MB with 413 (checked on the
    // Content-Length before the body is read): the source and the destination are two indices
    // on it. 100 small documents, then 10 documents of 200 KB: pages of 10, so the last page's
    // batch (2 MB) is refused. `maxDocs` = every document, so the reader knows the last page is
    // the last and calls the slice finished as soon as it is queued.
    let es = tokio::task::spawn_blocking(|| {
        own_engine(
            EngineKind::Elasticsearch8,
            &[("http.max_content_length", "1mb")],
        )
    })
    .await
    .unwrap();
    let url = es.url().to_string();
    // One segment in indexing order (no refresh until the end), so the big documents are the
    // last page of `_shard_doc` order; each request stays under the 1 MB limit.
    create_index(
        &url,
        "src",
        json!({"settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": -1}}),
    )
    .await;
    let docs = (0..100)
        .map(|i| (format!("s{i:03}"), json!({"n": i}).to_string()))
        .chain((0..10).map(|i| {
            (
                format!("z{i:02}"),
                json!({"n": 100 + i, "blob": "x".repeat(200_000)}).to_string(),
            )
        }));
    for (id, source) in docs {
        let (s, v) = call(
            "PUT",
            &format!("{url}/src/_doc/{id}"),
            Some(serde_json::from_str(&source).unwrap()),
        )
        .await;
        assert!(s < 300, "{s} {v}");
    }
    refresh(&url, "src").await;
    assert_eq!(count(&url, "src").await, 110);

    let stats = Arc::new(CopyStats::new());
    let first = open_copy(
        plan(&url, "src", "dst", Some(110)).await,
        stats.clone(),
        Arc::new(Stop::new()),
    )
    .await
    .unwrap()
    .run()
    .await;
    let err = first.expect_err("the last batch is refused with 413");
    assert!(err.to_string().contains("413"), "{err}");
    let cp = stats.checkpoints()[0].clone();
    let durable = stats.durable_checkpoint(0);
    eprintln!(
        "after the 413: checkpoint state {:?} (resumable {}), durable {:?} read {} search_after {:?}",
        cp.state, cp.resumable, durable.state, durable.read, durable.search_after
    );
    assert_ne!(
        cp.state,
        SliceState::Done,
        "a slice whose last batch failed is not done: {cp:?}"
    );
    assert_ne!(durable.state, SliceState::Done, "{durable:?}");

    // What a resumed run (a restarted operator, a scale-out successor) does with that
    // checkpoint: it must read the refused page again, never skip the slice.
    let resumed_stats = Arc::new(CopyStats::new());
    let mut p = plan(&url, "src", "dst", Some(110)).await;
    p.resume = vec![durable];
    let resumed = open_copy(p, resumed_stats.clone(), Arc::new(Stop::new()))
        .await
        .unwrap()
        .run()
        .await;
    refresh(&url, "dst").await;
    let found = count(&url, "dst").await;
    eprintln!("resumed run: {resumed:?}; destination holds {found} of 110");
    assert!(
        resumed.is_err() || found == 110,
        "the resumed run succeeded with {found} of 110 documents in the destination"
    );
    assert!(
        resumed.is_err(),
        "the refused page is read and refused again"
    );
}

/// The ids of slice `slice` of `max` of a point in time on `index` (a sliced PIT search on
/// Elasticsearch 8 splits each shard by Lucene doc id).
async fn pit_slice_ids(url: &str, index: &str, slice: u32, max: u32) -> Vec<String> {
    let (s, v) = call("POST", &format!("{url}/{index}/_pit?keep_alive=1m"), None).await;
    assert_eq!(s, 200, "{v}");
    let pit = v["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        "POST",
        &format!("{url}/_search"),
        Some(json!({
            "size": 10000, "_source": false, "sort": ["_shard_doc"],
            "slice": {"id": slice, "max": max},
            "pit": {"id": pit, "keep_alive": "1m"},
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    call("DELETE", &format!("{url}/_pit"), Some(json!({"id": pit}))).await;
    v["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_string())
        .collect()
}

async fn count_ids(url: &str, index: &str, ids: &[String]) -> u64 {
    let (_, v) = call(
        "POST",
        &format!("{url}/{index}/_count"),
        Some(json!({"query": {"ids": {"values": ids}}})),
    )
    .await;
    v["count"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_pit_lost_mid_copy_after_merges_restarts_every_slice_and_loses_nothing_on_elasticsearch_8()
 {
    // Elasticsearch 8 slices a PIT by Lucene doc id: slice k of 4 is the k-th quarter of the
    // shard's doc ids in THAT point in time. One primary shard, 4000 documents; 80% of slice 0's
    // documents are deleted before the copy (still counted in maxDoc, so the ranges stay), so
    // slice 0 finishes long before the others. Then the copier is frozen (SIGSTOP) past the
    // PIT's 1 s keep-alive (the engines reap contexts every second), and meanwhile more
    // documents are deleted and the shard force-merged to one segment: the doc ids shift down,
    // documents of slice 1 move into slice 0's range. A copy that restarts only the slices
    // that notice the lost PIT never reads them; the rule is: every slice, finished ones too,
    // starts again under the new point in time.
    let es = engine(EngineKind::Elasticsearch8);
    let url = es.url().to_string();
    let (sidx, didx) = (unique_index("pitgen-src"), unique_index("pitgen-dst"));
    create_index(
        &url,
        &sidx,
        json!({"settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": -1}}),
    )
    .await;
    let docs: Vec<Doc> = (0..4000)
        .map(|i| Doc {
            id: format!("d{i:04}"),
            source: json!({"n": i, "pad": "p".repeat(100)}).to_string(),
            routing: None,
        })
        .collect();
    load(&url, &sidx, &docs).await;
    let (s, v) = call(
        "POST",
        &format!("{url}/{sidx}/_forcemerge?max_num_segments=1"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let slice0 = pit_slice_ids(&url, &sidx, 0, 4).await;
    assert!(slice0.len() > 500, "slice 0 holds {}", slice0.len());
    let gone: Vec<String> = slice0[..slice0.len() * 4 / 5].to_vec();
    delete_ids(&url, &sidx, &gone).await;

    let y = format!(
        "{}spec:\n  source:\n    remote: {{host: \"{url}\"}}\n    index: {sidx}\n    slices: 4\n    paging: pit\n    size: 50\n    scroll: 1s\n  dest:\n    remote: {{host: \"{url}\"}}\n    index: {didx}\n  requestsPerSecond: 400\n",
        crate::tls::HEAD
    );
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &y);
    let mut cmd = tokio::process::Command::from(cli());
    cmd.args(["run", "-f", f.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap().to_string();
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig} {pid}");
    };
    // The copier's point in time sees the index as it is now (no refresh happens on the
    // source): the slices of a PIT of ours are the copier's. Wait until the smallest is
    // finished (all its documents written, and a moment for its last, empty page) while the
    // others are under way.
    eventually(
        "the copy to be under way",
        std::time::Duration::from_secs(120),
        || async {
            refresh(&url, &didx).await;
            (call("GET", &format!("{url}/{didx}/_count"), None).await.0 == 200).then_some(())
        },
    )
    .await;
    let mut slices = Vec::new();
    for k in 0..4 {
        slices.push(pit_slice_ids(&url, &sidx, k, 4).await);
    }
    let sizes: Vec<usize> = slices.iter().map(Vec::len).collect();
    let smallest = slices.iter().min_by_key(|s| s.len()).unwrap().clone();
    eventually(
        "the smallest slice to be written",
        std::time::Duration::from_secs(120),
        || async {
            refresh(&url, &didx).await;
            (count_ids(&url, &didx, &smallest).await == smallest.len() as u64).then_some(())
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    eprintln!("slice sizes in the copier's point in time: {sizes:?}");
    signal("-STOP");
    refresh(&url, &didx).await;
    let before = count(&url, &didx).await;
    // Deletes everywhere (some already copied), then merges that renumber the doc ids.
    let more: Vec<String> = (0..4000)
        .step_by(20)
        .map(|i| format!("d{i:04}"))
        .filter(|id| !gone.contains(id))
        .collect();
    delete_ids(&url, &sidx, &more).await;
    // The merge runs as a task (waiting on the request timed out on a loaded machine); the
    // test goes on once the node has no force merge left.
    let (s, v) = call(
        "POST",
        &format!("{url}/{sidx}/_forcemerge?max_num_segments=1&wait_for_completion=false"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    eventually(
        "the force merge to finish",
        std::time::Duration::from_secs(300),
        || async {
            let (_, t) = call("GET", &format!("{url}/_tasks?actions=*forcemerge*"), None).await;
            let running = t["nodes"].as_object().is_some_and(|n| {
                n.values()
                    .any(|n| n["tasks"].as_object().is_some_and(|t| !t.is_empty()))
            });
            (!running).then_some(())
        },
    )
    .await;
    // The PIT's 1 s keep-alive runs out (contexts are reaped every second).
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    signal("-CONT");
    let out = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    refresh(&url, &didx).await;
    let (a, b) = (all_docs(&url, &sidx).await, all_docs(&url, &didx).await);
    let missing: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let extra: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    eprintln!(
        "destination held {before} when frozen; final source {} documents, destination {}: {} missing (e.g. {:?}), {} extra (e.g. {:?}); exit {:?}\nstdout: {stdout}\nstderr: {}",
        a.len(),
        b.len(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>(),
        out.status.code(),
        crate::tls::tail(&stderr)
    );
    assert!(
        missing.is_empty(),
        "{} documents of the source are missing",
        missing.len()
    );
    assert!(
        extra.is_empty(),
        "{} documents the source no longer has",
        extra.len()
    );
    assert_eq!(a, b, "the destination equals the source");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        crate::tls::tail(&stderr)
    );
    assert!(
        stdout.contains("point in time was lost"),
        "the restart is reported: {stdout}"
    );
    delete_index(&url, &sidx).await;
    delete_index(&url, &didx).await;
}

/// Deletes documents by id and refreshes.
async fn delete_ids(url: &str, index: &str, ids: &[String]) {
    let mut body = String::new();
    for id in ids {
        body.push_str(&json!({"delete": {"_index": index, "_id": id}}).to_string());
        body.push('\n');
    }
    let resp = http()
        .post(format!("{url}/_bulk?refresh=true"))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
}
