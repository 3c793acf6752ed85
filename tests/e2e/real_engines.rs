//! Copies between REAL engines (Elasticsearch / OpenSearch nodes from Maven Central jars, see
//! docs/engines.md): the shared nodes `scripts/test.sh` starts (`engine(kind)`), each test on its
//! own indices, and private nodes (`own_engine`) for tests that restart one.

use crate::harness::*;
use crate::tls::{HEAD, error_line, tail};
use serde_json::{Value, json};
use std::time::Duration;

fn spec(
    src: &str,
    sidx: &str,
    dst: &str,
    didx: &str,
    source_extra: &str,
    spec_extra: &str,
) -> String {
    format!(
        "{HEAD}spec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: {sidx}\n{source_extra}  dest:\n    remote: {{host: \"{dst}\"}}\n    index: {didx}\n{spec_extra}"
    )
}

async fn run_yaml(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", yaml);
    run_cli(&["run", "-f", f.to_str().unwrap()]).await
}

/// The hostile set on a real engine: odd ids (`/ % space + ? & #`, unicode), integers past 2^53
/// and past i64 (kept as `_source` text: the mapping indexes only `n` and `tag`), nesting,
/// three ~1 MB documents, and routing on every fifth document.
fn real_hostile_docs(n: usize) -> Vec<Doc> {
    let mut docs = hostile_docs(n);
    for (i, d) in docs.iter_mut().enumerate() {
        if i % 5 == 0 {
            d.routing = Some(format!("r{}", i % 3));
        }
        if i == n / 3 || i == 2 * n / 3 {
            d.source = json!({"n": i, "tag": "huge", "blob": "é".repeat(1 << 19)}).to_string();
        }
    }
    docs
}

fn mapping(typed: bool) -> Value {
    let m = json!({"dynamic": false, "properties": {"n": {"type": "long"}, "tag": {"type": "keyword"}}});
    let mappings = if typed { json!({"_doc": m}) } else { m };
    json!({"settings": {"number_of_shards": 2, "number_of_replicas": 0}, "mappings": mappings})
}

/// Loads `docs` into a new index on a shared engine of `kind`.
async fn load_source(kind: EngineKind, url: &str, index: &str, docs: &[Doc]) {
    create_index(url, index, mapping(kind.typed())).await;
    if kind.typed() {
        load_typed(url, index, "_doc", docs).await;
    } else {
        load(url, index, docs).await;
    }
}

/// Source and destination hold the same documents: `_id`, `_routing` and `_source` byte for byte.
async fn assert_same_documents(src: &str, sidx: &str, dst: &str, didx: &str, expected: usize) {
    let (a, b) = (
        all_docs_routed(src, sidx).await,
        all_docs_routed(dst, didx).await,
    );
    assert_eq!(a.len(), expected, "source holds {} documents", a.len());
    assert_eq!(b.len(), expected, "destination holds {} documents", b.len());
    for (id, (source, routing)) in &a {
        let (dsource, drouting) = b
            .get(id)
            .unwrap_or_else(|| panic!("{id:?} is missing on the destination"));
        assert_eq!(drouting, routing, "_routing of {id:?}");
        assert!(
            dsource == source,
            "_source of {id:?} differs: source {} bytes, destination {} bytes: {} / {}",
            source.len(),
            dsource.len(),
            &source[..source.floor_char_boundary(200)],
            &dsource[..dsource.floor_char_boundary(200)]
        );
    }
}

async fn copy_hostile(src_kind: EngineKind, dst_kind: EngineKind) {
    const N: usize = 2000;
    let (src, dst) = (engine(src_kind), engine(dst_kind));
    let (sidx, didx) = (unique_index("hostile-src"), unique_index("hostile-dst"));
    let docs = real_hostile_docs(N);
    load_source(src_kind, src.url(), &sidx, &docs).await;
    let (code, out, err) = run_yaml(&spec(
        src.url(),
        &sidx,
        dst.url(),
        &didx,
        "    size: 200\n",
        "",
    ))
    .await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {}", tail(&err));
    assert!(
        out.contains(&format!("copied {N} of {N} documents expected (0 failed")),
        "{out}"
    );
    assert!(out.contains("count verified"), "{out}");
    assert_same_documents(src.url(), &sidx, dst.url(), &didx, N).await;
    // A routed document is found with its routing on the destination.
    let routed = docs
        .iter()
        .find(|d| d.routing.is_some() && d.id.contains('/'))
        .unwrap();
    let id: String = routed
        .id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (s, v) = call(
        "GET",
        &format!(
            "{}/{didx}/_doc/{id}?routing={}",
            dst.url(),
            routed.routing.as_ref().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(s, 200, "{:?} by id with its routing: {v}", routed.id);
    assert_eq!(v["_routing"], json!(routed.routing));
    delete_index(src.url(), &sidx).await;
    delete_index(dst.url(), &didx).await;
}

#[tokio::test]
async fn hostile_documents_elasticsearch_7_to_opensearch_2() {
    copy_hostile(EngineKind::Elasticsearch7, EngineKind::OpenSearch2).await;
}

#[tokio::test]
async fn hostile_documents_opensearch_2_to_opensearch_2() {
    copy_hostile(EngineKind::OpenSearch2, EngineKind::OpenSearch2).await;
}

#[tokio::test]
async fn hostile_documents_elasticsearch_7_to_elasticsearch_7() {
    copy_hostile(EngineKind::Elasticsearch7, EngineKind::Elasticsearch7).await;
}

#[tokio::test]
async fn hostile_documents_elasticsearch_7_to_elasticsearch_8() {
    copy_hostile(EngineKind::Elasticsearch7, EngineKind::Elasticsearch8).await;
}

#[tokio::test]
async fn hostile_documents_elasticsearch_8_to_opensearch_2() {
    copy_hostile(EngineKind::Elasticsearch8, EngineKind::OpenSearch2).await;
}

#[tokio::test]
async fn hostile_typed_documents_elasticsearch_6_to_elasticsearch_7() {
    copy_hostile(EngineKind::Elasticsearch6, EngineKind::Elasticsearch7).await;
}

#[tokio::test]
async fn three_slices_on_a_three_shard_source_copy_everything_once() {
    let (src, dst) = (
        engine(EngineKind::OpenSearch2),
        engine(EngineKind::Elasticsearch7),
    );
    let (sidx, didx) = (unique_index("sliced-src"), unique_index("sliced-dst"));
    create_index(
        src.url(),
        &sidx,
        json!({"settings": {"number_of_shards": 3, "number_of_replicas": 0}, "mappings": {"dynamic": false, "properties": {"i": {"type": "long"}}}}),
    )
    .await;
    let docs: Vec<Doc> = (0..6000)
        .map(|i| Doc {
            id: format!("k{i}"),
            source: format!(
                r#"{{"i":{i},"huge":123456789012345678901234567890{i},"exp":1.5e300,"dec":1.10,"s":"line\nbreak"}}"#
            ),
            routing: None,
        })
        .collect();
    load(src.url(), &sidx, &docs).await;
    let (code, out, err) = run_yaml(&spec(
        src.url(),
        &sidx,
        dst.url(),
        &didx,
        "    slices: 3\n    size: 500\n",
        "",
    ))
    .await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {}", tail(&err));
    assert!(err.contains("with 3 slice(s)"), "{}", tail(&err));
    assert!(
        out.contains("copied 6000 of 6000 documents expected (0 failed"),
        "{out}"
    );
    assert_same_documents(src.url(), &sidx, dst.url(), &didx, 6000).await;
    assert_eq!(
        rewritten(dst.url(), &didx).await,
        0,
        "no document was written twice"
    );
    delete_index(src.url(), &sidx).await;
    delete_index(dst.url(), &didx).await;
}

#[tokio::test]
async fn versions_on_real_engines_newer_majors_are_refused_older_and_cross_copy() {
    let (es6, es7, os2) = (
        engine(EngineKind::Elasticsearch6),
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let es8 = engine(EngineKind::Elasticsearch8);
    // osmem-server answers as OpenSearch 3.8.0 (no OpenSearch 3 node is shared: docs/engines.md).
    let os3 = osmem();
    let refused = [
        (
            es7.url(),
            es6.url(),
            "the source runs Elasticsearch 7.17.29 and the destination Elasticsearch 6.8.23",
        ),
        (
            es8.url(),
            es7.url(),
            "the source runs Elasticsearch 8.19.21 and the destination Elasticsearch 7.17.29",
        ),
        (
            es8.url(),
            es6.url(),
            "the source runs Elasticsearch 8.19.21 and the destination Elasticsearch 6.8.23",
        ),
        (
            os3.url(),
            os2.url(),
            "the source runs OpenSearch 3.8.0 and the destination OpenSearch 2.19.6",
        ),
    ];
    for (src, dst, message) in refused {
        let sidx = unique_index("ver-src");
        let didx = unique_index("ver-dst");
        let (code, _, err) = run_yaml(&format!(
            "{}  preflightTimeout: 1s\n",
            spec(src, &sidx, dst, &didx, "", "")
        ))
        .await;
        assert_eq!(code, 3, "{message}: {}", tail(&err));
        let line = error_line(&err);
        assert!(
            line.starts_with("error [VersionMismatch]") && line.contains(message),
            "{line}"
        );
        let (s, _) = call("HEAD", &format!("{dst}/{didx}"), None).await;
        assert_eq!(s, 404, "nothing was created on the destination");
    }
    let allowed = [
        (
            EngineKind::Elasticsearch6,
            &es6,
            &es7,
            "Elasticsearch 6.8.23 → Elasticsearch 7.17.29",
        ),
        (
            EngineKind::Elasticsearch6,
            &es6,
            &es8,
            "Elasticsearch 6.8.23 → Elasticsearch 8.19.21",
        ),
        (
            EngineKind::Elasticsearch7,
            &es7,
            &es8,
            "Elasticsearch 7.17.29 → Elasticsearch 8.19.21",
        ),
        (
            EngineKind::Elasticsearch7,
            &es7,
            &os2,
            "Elasticsearch 7.17.29 → OpenSearch 2.19.6 (cross-distribution copy)",
        ),
        (
            EngineKind::OpenSearch2,
            &os2,
            &es7,
            "OpenSearch 2.19.6 → Elasticsearch 7.17.29 (cross-distribution copy)",
        ),
    ];
    for (kind, src, dst, summary) in allowed {
        let (sidx, didx) = (unique_index("ver-src"), unique_index("ver-dst"));
        load_source(kind, src.url(), &sidx, &real_hostile_docs(60)).await;
        let (code, out, err) = run_yaml(&spec(src.url(), &sidx, dst.url(), &didx, "", "")).await;
        assert_eq!(code, 0, "{summary}: {out}\n{}", tail(&err));
        assert!(err.contains(summary), "{summary}: {}", tail(&err));
        assert_same_documents(src.url(), &sidx, dst.url(), &didx, 60).await;
        delete_index(src.url(), &sidx).await;
        delete_index(dst.url(), &didx).await;
    }
}

/// `_stats` indexing total of an index's primaries (counts writes before any refresh).
async fn indexed(base: &str, index: &str) -> u64 {
    let (_, v) = call("GET", &format!("{base}/{index}/_stats/indexing"), None).await;
    v["_all"]["primaries"]["indexing"]["index_total"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_restart_mid_scroll_is_survived() {
    let mut src = own_engine(EngineKind::OpenSearch2, &[]);
    let dst = engine(EngineKind::OpenSearch2);
    let didx = unique_index("restart-dst");
    load_source(
        EngineKind::OpenSearch2,
        src.url(),
        "src",
        &hostile_docs(5000),
    )
    .await;
    let y = spec(
        src.url(),
        "src",
        dst.url(),
        &didx,
        "    size: 100\n",
        "  requestsPerSecond: 1000\n  retry: {maxAttempts: 100, maxBackoff: 1s}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &y);
    let mut cmd = tokio::process::Command::from(cli());
    cmd.args(["run", "-f", f.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // The destination is not refreshed during the copy: watch its indexing total instead.
    eventually(
        "the copy to be under way",
        Duration::from_secs(120),
        || async { (indexed(dst.url(), &didx).await > 500).then_some(()) },
    )
    .await;
    // SIGTERM, then a start on the same data directory and port: the documents survive, the
    // scroll context does not.
    tokio::task::block_in_place(|| src.restart());
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", tail(&err));
    assert!(
        err.contains("restarting the slice"),
        "the lost scroll context restarts the slice: {}",
        tail(&err)
    );
    assert_same_documents(src.url(), "src", dst.url(), &didx, 5000).await;
    report_fault(
        "real OpenSearch 2.19 source restarted mid-scroll",
        5000,
        count(dst.url(), &didx).await,
        rewritten(dst.url(), &didx).await,
        "exit 0 (verified)",
    );
    delete_index(dst.url(), &didx).await;
}

/// Rejected writes counted by a node's `write` thread pool.
async fn write_rejections(base: &str) -> u64 {
    let (_, v) = call("GET", &format!("{base}/_nodes/stats/thread_pool"), None).await;
    v["nodes"]
        .as_object()
        .map(|nodes| {
            nodes
                .values()
                .map(|n| n["thread_pool"]["write"]["rejected"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_429s_from_a_one_slot_write_queue_are_retried_without_loss() {
    // One write thread and a queue of one: concurrent bulks from three slices are rejected with
    // 429 es_rejected_execution_exception by the engine itself.
    let dst = tokio::task::block_in_place(|| {
        own_engine(
            EngineKind::OpenSearch2,
            &[
                ("thread_pool.write.size", "1"),
                ("thread_pool.write.queue_size", "1"),
            ],
        )
    });
    let src = engine(EngineKind::Elasticsearch7);
    let sidx = unique_index("queue-src");
    create_index(
        src.url(),
        &sidx,
        json!({"settings": {"number_of_shards": 3, "number_of_replicas": 0}, "mappings": {"dynamic": false}}),
    )
    .await;
    let docs: Vec<Doc> = (0..2000)
        .map(|i| Doc {
            id: format!("q{i}"),
            source: format!(r#"{{"i":{i},"pad":"{}"}}"#, "p".repeat(300)),
            routing: None,
        })
        .collect();
    load(src.url(), &sidx, &docs).await;
    let before = write_rejections(dst.url()).await;
    let (code, out, err) = run_yaml(&spec(
        src.url(),
        &sidx,
        dst.url(),
        "dst",
        "    slices: 3\n    size: 100\n",
        "  retry: {maxAttempts: 50, maxBackoff: 200ms}\n",
    ))
    .await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {}", tail(&err));
    assert!(
        out.contains("copied 2000 of 2000 documents expected (0 failed"),
        "{out}"
    );
    let rejected = write_rejections(dst.url()).await - before;
    assert!(
        rejected > 0,
        "the engine rejected no write: the test did not provoke 429s"
    );
    assert_same_documents(src.url(), &sidx, dst.url(), "dst", 2000).await;
    report_fault(
        &format!("real OpenSearch 2.19 write queue of 1 ({rejected} rejections)"),
        2000,
        count(dst.url(), "dst").await,
        rewritten(dst.url(), "dst").await,
        "exit 0 (verified)",
    );
    delete_index(src.url(), &sidx).await;
}

#[tokio::test]
async fn a_scroll_expired_on_a_real_engine_while_the_copier_is_stopped_restarts_the_slice() {
    // The engines run with search.keep_alive_interval=1s: a 1s scroll keep-alive is gone about
    // two seconds after the last page. The copier is frozen (SIGSTOP) for 5 s mid-copy.
    let (src, dst) = (
        engine(EngineKind::OpenSearch2),
        engine(EngineKind::Elasticsearch7),
    );
    let (sidx, didx) = (unique_index("expire-src"), unique_index("expire-dst"));
    load_source(
        EngineKind::OpenSearch2,
        src.url(),
        &sidx,
        &hostile_docs(3000),
    )
    .await;
    let y = spec(
        src.url(),
        &sidx,
        dst.url(),
        &didx,
        "    size: 100\n    scroll: 1s\n",
        "  requestsPerSecond: 1000\n",
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
    eventually(
        "the copy to be under way",
        Duration::from_secs(120),
        || async { (indexed(dst.url(), &didx).await > 500).then_some(()) },
    )
    .await;
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, stats) = call(
        "GET",
        &format!("{}/_nodes/stats/indices/search", src.url()),
        None,
    )
    .await;
    signal("-CONT");
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", tail(&err));
    assert!(
        err.contains("restarting the slice"),
        "the expired scroll restarts the slice (source search stats while stopped: {stats}): {}",
        tail(&err)
    );
    assert_same_documents(src.url(), &sidx, dst.url(), &didx, 3000).await;
    delete_index(src.url(), &sidx).await;
    delete_index(dst.url(), &didx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_1_and_3_private_nodes_copy_upwards_and_refuse_downwards() {
    // OpenSearch 1.3 and 3.x are not shared (docs/engines.md): private nodes, started together.
    let os1 = tokio::task::spawn_blocking(|| own_engine(EngineKind::OpenSearch1, &[]));
    let os3 = tokio::task::spawn_blocking(|| own_engine(EngineKind::OpenSearch3, &[]));
    let (os1, os3) = (os1.await.unwrap(), os3.await.unwrap());
    let os2 = engine(EngineKind::OpenSearch2);
    let docs = real_hostile_docs(300);
    let sidx = unique_index("os1-src");
    load_source(EngineKind::OpenSearch1, os1.url(), &sidx, &docs).await;
    // 1.3 → 2.19 → 3.x, each checked document by document.
    let mid = unique_index("os2-mid");
    for (src, s, dst, d, summary) in [
        (
            os1.url(),
            &sidx,
            os2.url(),
            &mid,
            "OpenSearch 1.3.20 → OpenSearch 2.19.6",
        ),
        (
            os2.url(),
            &mid,
            os3.url(),
            &"dst".to_string(),
            "OpenSearch 2.19.6 → OpenSearch 3.9.0",
        ),
    ] {
        let (code, out, err) = run_yaml(&spec(src, s, dst, d, "", "")).await;
        assert_eq!(code, 0, "{summary}: {out}\n{}", tail(&err));
        assert!(err.contains(summary), "{summary}: {}", tail(&err));
        assert_same_documents(src, s, dst, d, 300).await;
    }
    // 3.x → 2.19 and 2.19 → 1.3 are refused before anything is written.
    for (src, s, dst, message) in [
        (
            os3.url(),
            "dst",
            os2.url(),
            "the source runs OpenSearch 3.9.0 and the destination OpenSearch 2.19.6",
        ),
        (
            os2.url(),
            mid.as_str(),
            os1.url(),
            "the source runs OpenSearch 2.19.6 and the destination OpenSearch 1.3.20",
        ),
    ] {
        let didx = unique_index("refused");
        let (code, _, err) = run_yaml(&format!(
            "{}  preflightTimeout: 1s\n",
            spec(src, s, dst, &didx, "", "")
        ))
        .await;
        assert_eq!(code, 3, "{message}: {}", tail(&err));
        let line = error_line(&err);
        assert!(
            line.starts_with("error [VersionMismatch]") && line.contains(message),
            "{line}"
        );
    }
    delete_index(os2.url(), &mid).await;
}

#[tokio::test]
async fn native_remote_reindex_between_the_shared_engines_is_allowed() {
    // scripts/test.sh starts the shared nodes with reindex.remote.whitelist/allowlist 127.0.0.1:*,
    // so the engines' own `_reindex` from a remote works between them (a baseline for the copier).
    // Pairs that work per docs/engines.md: ES 6.8 → ES 7.17, ES 7.17 → OS 2.19.
    let (es6, es7, os2) = (
        engine(EngineKind::Elasticsearch6),
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    for (kind, src, dst) in [
        (EngineKind::Elasticsearch6, &es6, &es7),
        (EngineKind::Elasticsearch7, &es7, &os2),
    ] {
        let (sidx, didx) = (unique_index("native-src"), unique_index("native-dst"));
        load_source(kind, src.url(), &sidx, &real_hostile_docs(100)).await;
        // Native reindex does not copy the mapping: without it the u64 values fail dynamic mapping.
        create_index(dst.url(), &didx, mapping(false)).await;
        let (s, v) = call(
            "POST",
            &format!("{}/_reindex?wait_for_completion=true&refresh=true", dst.url()),
            Some(json!({"source": {"remote": {"host": src.url()}, "index": sidx, "size": 50}, "dest": {"index": didx}})),
        )
        .await;
        assert_eq!(s, 200, "{kind:?} → {:?}: {v}", dst.kind);
        assert_eq!(v["total"], json!(100), "{v}");
        assert_eq!(v["failures"], json!([]), "{v}");
        assert_eq!(count(dst.url(), &didx).await, 100);
        delete_index(src.url(), &sidx).await;
        delete_index(dst.url(), &didx).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_in_compatibility_mode_is_copied_as_the_opensearch_it_is() {
    // `compatibility.override_main_response_version=true` (AWS OpenSearch Service's
    // "compatibility mode") makes GET / answer version.number 7.10.2 without
    // version.distribution; GET /_nodes/_local still reports the real 2.19.6.
    let src = tokio::task::block_in_place(|| {
        own_engine(
            EngineKind::OpenSearch2,
            &[("compatibility.override_main_response_version", "true")],
        )
    });
    let (_, root) = call("GET", &format!("{}/", src.url()), None).await;
    assert_eq!(root["version"]["number"], json!("7.10.2"), "{root}");
    let dst = engine(EngineKind::OpenSearch2);
    let didx = unique_index("compat-dst");
    load_source(
        EngineKind::OpenSearch2,
        src.url(),
        "src",
        &real_hostile_docs(100),
    )
    .await;
    let (code, out, err) = run_yaml(&spec(src.url(), "src", dst.url(), &didx, "", "")).await;
    // Today: `error [VersionMismatch]: the source runs OpenSearch 7.10.2 and the destination
    // OpenSearch 2.19.6: a remote's major version must not be newer than the destination's`.
    assert_eq!(code, 0, "stdout: {out}\nstderr: {}", tail(&err));
    assert!(
        err.contains("OpenSearch 2.19.6 → OpenSearch 2.19.6"),
        "the real version is reported: {}",
        tail(&err)
    );
    assert_same_documents(src.url(), "src", dst.url(), &didx, 100).await;
    delete_index(dst.url(), &didx).await;
}

#[tokio::test]
async fn the_destination_mapping_keeps_the_users_meta_and_no_marker_key() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("meta-src"), unique_index("meta-dst"));
    create_index(
        src.url(),
        &sidx,
        json!({"settings": {"number_of_replicas": 0}, "mappings": {"dynamic": false, "_meta": {"owner": "team-a", "n": 1}, "properties": {"tag": {"type": "keyword"}}}}),
    )
    .await;
    load(src.url(), &sidx, &real_hostile_docs(20)).await;
    let (code, out, err) = run_yaml(&spec(src.url(), &sidx, dst.url(), &didx, "", "")).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {}", tail(&err));
    let (_, m) = call("GET", &format!("{}/{didx}/_mapping", dst.url()), None).await;
    // The marker key is removed, not left as `null`.
    assert_eq!(
        m[&didx]["mappings"]["_meta"],
        json!({"owner": "team-a", "n": 1}),
        "{m}"
    );
    delete_index(src.url(), &sidx).await;
    delete_index(dst.url(), &didx).await;
}
