//! Counts that must be checked, not trusted (issue 21, item 5): a `_bulk` answer carries one
//! item per action sent; server mode's task counts add up before `TaskCountsOnly` says anything;
//! a server-mode task is adopted only when it is this copy's.

use crate::fault_proxy::{self, Fault, Rule};
use crate::harness::*;
use bytes::Bytes;
use remote_reindex::search::{ClientOptions, SearchClient};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use tokio::io::BufReader;

/// An in-process destination that answers every `_bulk` with `answer` (200): a real server
/// always sends one item per action, so only a fake can answer `{}` or fewer items.
async fn bulk_fake_server(answer: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                while let Some(_req) = fake_http::read(&mut s).await {
                    fake_http::respond(&mut s, 200, answer.as_bytes()).await;
                }
            });
        }
    });
    url
}

fn three_actions() -> Bytes {
    let mut body = String::new();
    for i in 0..3 {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"d\",\"_id\":\"d{i}\"}}}}\n{{\"n\":{i}}}\n"
        ));
    }
    Bytes::from(body)
}

const ONE_ITEM: &str = r#"{"index":{"_index":"d","_id":"d0","status":201,"result":"created"}}"#;

/// A 200 whose body lacks the items (or has fewer than the actions sent) is an error, never
/// "all accepted"; an answer with exactly one item per action is accepted.
#[tokio::test]
async fn bulk_answer_without_one_item_per_action_is_an_error_fake_server() {
    let short_ok: &'static str =
        Box::leak(format!(r#"{{"took":1,"errors":false,"items":[{ONE_ITEM}]}}"#).into_boxed_str());
    let short_err = r#"{"took":1,"errors":true,"items":[{"index":{"_id":"d0","status":400,"error":{"type":"mapper_parsing_exception","reason":"x"}}}]}"#;
    let mut accepted = Vec::new();
    for answer in [
        "{}",
        r#"{"took":1,"errors":false}"#,
        r#"{"took":1,"errors":false,"items":[]}"#,
        short_ok,
        short_err,
    ] {
        let url = bulk_fake_server(answer).await;
        let client = SearchClient::new(ClientOptions::new(url)).unwrap();
        match client.bulk(three_actions(), 3, None).await {
            Ok(o) => accepted.push(format!(
                "{answer} -> accepted: {} items, {} failures",
                o.items,
                o.failures.len()
            )),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("3 sent") || text.contains("3 actions"),
                    "{answer}: the error does not say what was wrong: {text}"
                );
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "answers without one item per action were taken as written:\n{}",
        accepted.join("\n")
    );
    let full: &'static str = Box::leak(
        format!(r#"{{"took":1,"errors":false,"items":[{ONE_ITEM},{ONE_ITEM},{ONE_ITEM}]}}"#)
            .into_boxed_str(),
    );
    let client = SearchClient::new(ClientOptions::new(bulk_fake_server(full).await)).unwrap();
    let o = client.bulk(three_actions(), 3, None).await.unwrap();
    assert_eq!((o.items, o.failures.len()), (3, 0));
}

fn server_docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "tag": format!("t{}", i % 7)}).to_string(),
            routing: None,
        })
        .collect()
}

fn server_yaml(src: &str, sidx: &str, dst: &str, didx: &str, extra: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  mode: Server\n  source:\n    remote: {{host: \"{src}\"}}\n    index: {sidx}\n    size: 200\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: {didx}\n{extra}"
    )
}

/// How the fake destination bends a finished task's answer.
#[derive(Clone, Copy, Debug)]
enum TaskLie {
    /// `total` is larger than what the counters add up to.
    Total,
    /// A version conflict in `failures` (the task did not write that document).
    Failure,
}

/// An in-process front for the real destination that forwards everything and bends the answer
/// to `GET _tasks/<id>` once the task completed: a real engine's counts always add up, so only
/// a fake can make them disagree.
async fn task_counts_fake_server(upstream: &str, lie: TaskLie) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let upstream = upstream.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                while let Some(req) = fake_http::read(&mut s).await {
                    let (status, mut out) = fake_http::forward(&upstream, &req).await;
                    if req.method == "GET" && req.path.starts_with("/_tasks/") {
                        let mut v: Value = serde_json::from_slice(&out).unwrap_or_default();
                        if v["completed"] == json!(true) && v["response"].is_object() {
                            match lie {
                                TaskLie::Total => {
                                    let t = v["response"]["total"].as_u64().unwrap_or(0) + 7;
                                    v["response"]["total"] = json!(t);
                                    v["task"]["status"]["total"] = json!(t);
                                }
                                TaskLie::Failure => {
                                    v["response"]["failures"] = json!([{
                                        "index": "x", "id": "d5", "status": 409,
                                        "cause": {"type": "version_conflict_engine_exception", "reason": "[d5]: version conflict"}
                                    }]);
                                }
                            }
                            out = v.to_string().into_bytes();
                        }
                    }
                    fake_http::respond(&mut s, status, &out).await;
                }
            });
        }
    });
    url
}

/// `mode: Server` with a source the operator cannot reach ends in `TaskCountsOnly`: the task's
/// own counts are all there is, so they must add up (`created + updated + deleted + noops +
/// version_conflicts == total`) with no `failures`, or nothing is said to have succeeded.
#[tokio::test]
async fn task_counts_only_checks_that_the_task_counts_add_up_fake_server() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let sidx = unique_index("cnt-src");
    create_index(src.url(), &sidx, json!({})).await;
    load(src.url(), &sidx, &server_docs(1_000)).await;
    let front = crate::server_mode::fake_operator_partition(src.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut believed = Vec::new();
    for lie in [TaskLie::Total, TaskLie::Failure] {
        let didx = unique_index("cnt-dst");
        let fake = task_counts_fake_server(dst.url(), lie).await;
        let extra = "  conflicts: proceed\n";
        let f = manifest(
            &dir,
            &format!("{lie:?}.yaml"),
            &server_yaml(&front, &sidx, &fake, &didx, extra),
        );
        let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
        assert!(err.contains("not reachable from the operator"), "{err}");
        if code == 0 {
            believed.push(format!("{lie:?}: exit 0: {out}"));
            continue;
        }
        assert!(
            err.contains("do not add up") || err.contains("failures"),
            "{lie:?}: the error does not say what was wrong: {err}"
        );
        assert!(
            !out.contains("TaskCountsOnly") && !out.contains("own counts"),
            "{out}"
        );
    }
    assert!(
        believed.is_empty(),
        "task counts that do not add up were reported as a success:\n{}",
        believed.join("\n")
    );
}

/// A reindex task into the same destination index from another query is not this copy's: when
/// starting ours fails with a gateway error (not forwarded, so nothing of ours runs), the copy
/// must not follow that task and call its result our copy. Real engines; the 502 comes from the
/// fault proxy.
#[tokio::test]
async fn a_foreign_reindex_task_into_the_same_index_is_not_adopted_through_fake_proxy() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("adopt-src"), unique_index("adopt-dst"));
    create_index(src.url(), &sidx, json!({})).await;
    load(src.url(), &sidx, &server_docs(2_000)).await;
    // Someone else's slow copy of a part of the same source into the same index.
    let (s, v) = call(
        "POST",
        &format!(
            "{}/_reindex?wait_for_completion=false&requests_per_second=20",
            dst.url()
        ),
        Some(json!({
            "source": {"remote": {"host": src.url()}, "index": sidx, "size": 10, "query": {"term": {"tag.keyword": "t1"}}},
            "dest": {"index": didx},
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let foreign = v["task"].as_str().unwrap().to_string();
    // The foreign task creates the index: wait for it, so the copy meets an existing index
    // (allowExisting) rather than racing the creation.
    eventually(
        "the foreign task to create the index",
        std::time::Duration::from_secs(60),
        || async {
            (call("GET", &format!("{}/{didx}", dst.url()), None).await.0 == 200).then_some(())
        },
    )
    .await;
    let proxy = fault_proxy::start(
        dst.url(),
        Rule::new("POST", "/_reindex", None).at(1, Fault::Gateway(502)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "adopt.yaml",
        &server_yaml(
            src.url(),
            &sidx,
            &proxy.url,
            &didx,
            "    allowExisting: true\n",
        ),
    );
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    call(
        "POST",
        &format!("{}/_tasks/{foreign}/_cancel", dst.url()),
        None,
    )
    .await;
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 1, "{err}");
    assert!(
        !err.contains(&format!("task: {foreign}")),
        "the foreign task {foreign} was adopted as this copy's:\nexit {code}\n{out}\n{err}"
    );
    if code == 0 {
        refresh(dst.url(), &didx).await;
        assert_eq!(
            parsed(&all_docs(dst.url(), &didx).await),
            parsed(&all_docs(src.url(), &sidx).await),
            "{out}"
        );
    } else {
        assert!(err.contains("502") || err.contains("starting"), "{err}");
    }
    // Our own task, whose start's answer was lost after the destination started it, is adopted
    // (its description names this copy's source host, index and query).
    let didx = unique_index("adopt-own");
    let proxy = fault_proxy::start(
        dst.url(),
        Rule::new("POST", "/_reindex", None).at(1, Fault::LostAnswer),
    )
    .await;
    let f = manifest(
        &dir,
        "own.yaml",
        &server_yaml(
            src.url(),
            &sidx,
            &proxy.url,
            &didx,
            "  requestsPerSecond: 500\n",
        ),
    );
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("count verified"), "{out}");
    assert_eq!(
        parsed(&all_docs(dst.url(), &didx).await),
        parsed(&all_docs(src.url(), &sidx).await)
    );
}

/// The destination index created by someone else between the copier's existence check and its
/// own `PUT` (another copy, an index template's writer, a user): the copy treats the index as
/// existing (empty, or `allowExisting`), checks it like any existing index and copies into it;
/// it does not fail with `DestinationFailed`. Real engines; the race comes from the fault
/// proxy, which sends the copier's `PUT /<index>` twice.
#[tokio::test]
async fn a_destination_index_created_concurrently_is_taken_as_existing_through_fake_proxy() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("race-src"), unique_index("race-dst"));
    create_index(src.url(), &sidx, json!({})).await;
    load(src.url(), &sidx, &server_docs(500)).await;
    let proxy = fault_proxy::start(
        dst.url(),
        Rule::new("PUT", format!("/{didx}"), None).at(1, Fault::Concurrent),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "race.yaml",
        &format!(
            "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  source:\n    remote: {{host: \"{}\"}}\n    index: {sidx}\n    size: 100\n  dest:\n    remote: {{host: \"{}\"}}\n    index: {didx}\n",
            src.url(),
            proxy.url
        ),
    );
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 1, "{err}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("count verified"), "{out}");
    refresh(dst.url(), &didx).await;
    assert_eq!(
        parsed(&all_docs(dst.url(), &didx).await),
        parsed(&all_docs(src.url(), &sidx).await)
    );
}
