//! `spec.mode: Server` on real engines (imitation servers do not run a remote reindex): the
//! shared Elasticsearch 7.17 source and OpenSearch 2.19 destination of `scripts/test.sh`, whose
//! `reindex.remote.allowlist` admits `127.0.0.1:*`, each test on its own indices; a private
//! destination for the test that restarts it. Through `run -f` and through the operator.

use crate::controller::k8s::*;
use crate::harness::*;
use kube::Api;
use kube::api::DeleteParams;
use remote_reindex::api::{Phase, RemoteReindex};
use serde_json::{Value, json};
use std::time::Duration;

/// Loads `docs` into a new source index (only `n` and `tag` mapped, so any `_source` fits).
async fn source_index(url: &str, index: &str, docs: &[Doc]) {
    create_index(
        url,
        index,
        json!({"mappings": {"dynamic": false, "properties": {"n": {"type": "long"}, "tag": {"type": "keyword"}}}}),
    )
    .await;
    load(url, index, docs).await;
}

fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "tag": format!("t{}", i % 7), "big": 9_007_199_254_740_993_u64 + i as u64, "msg": format!("héllo {i}")})
                .to_string(),
            routing: None,
        })
        .collect()
}

/// The destination's view of task `id`.
async fn task(dst: &str, id: &str) -> Value {
    call("GET", &format!("{dst}/_tasks/{id}"), None).await.1
}

fn yaml(src: &str, sidx: &str, dst: &str, didx: &str, extra: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  mode: Server\n  source:\n    remote: {{host: \"{src}\"}}\n    index: {sidx}\n    size: 200\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: {didx}\n{extra}"
    )
}

#[tokio::test]
async fn server_mode_copies_es7_into_os2_document_by_document_and_prints_the_task() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("srv-src"), unique_index("srv-dst"));
    let all = hostile_docs(300)
        .into_iter()
        .chain(docs(2_000))
        .collect::<Vec<_>>();
    source_index(src.url(), &sidx, &all).await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "r.yaml",
        &yaml(src.url(), &sidx, dst.url(), &didx, ""),
    );
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let id = err
        .lines()
        .find_map(|l| l.strip_prefix("task: "))
        .unwrap_or_else(|| panic!("no `task:` line in {err}"));
    assert!(id.contains(':'), "{id}");
    assert!(out.contains("count verified"), "{out}");
    let t = task(dst.url(), id).await;
    assert_eq!(t["completed"], true, "{t}");
    assert_eq!(t["response"]["created"], json!(all.len()), "{t}");
    assert_eq!(
        parsed(&all_docs(dst.url(), &didx).await),
        parsed(&all_docs(src.url(), &sidx).await)
    );
    let s = settings(dst.url(), &didx).await;
    assert_eq!(
        s.get("index.refresh_interval"),
        None,
        "restored to the default: {s:?}"
    );
    // The source's mapping seeded the new index (the operator reaches the source here).
    let (_, m) = call("GET", &format!("{}/{didx}/_mapping", dst.url()), None).await;
    assert_eq!(
        m[&didx]["mappings"]["properties"]["n"]["type"], "long",
        "{m}"
    );
}

#[tokio::test]
async fn a_host_outside_the_destination_allowlist_is_remote_not_allowed_before_any_write() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("srv-src"), unique_index("srv-dst"));
    source_index(src.url(), &sidx, &docs(10)).await;
    // `localhost:<port>` is the same node, but outside the allowlist's `127.0.0.1:*`.
    let host = src.url().replace("127.0.0.1", "localhost");
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &yaml(&host, &sidx, dst.url(), &didx, ""));
    let (code, _, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("[RemoteNotAllowed]")
            && err.contains("reindex.remote.allowlist")
            && err.contains(&host.replace("http://", "")),
        "{err}"
    );
    let (status, _) = call("GET", &format!("{}/{didx}", dst.url()), None).await;
    assert_eq!(status, 404, "nothing was written");
}

/// A slow copy for the operator tests: `requestsPerSecond` keeps the task running.
fn slow_spec(src: &str, sidx: &str, didx: &str, rps: f64) -> Value {
    json!({
        "mode": "Server",
        "source": {"remote": {"host": src}, "index": sidx, "size": 100},
        "dest": {"index": didx},
        "requestsPerSecond": rps,
    })
}

/// Waits until the status names a task and shows progress; returns the task id.
async fn running_task(client: &kube::Client, ns: &str) -> String {
    let obj = wait_status(
        client,
        ns,
        "t",
        "a running task with progress",
        Duration::from_secs(120),
        |s| s.task.is_some() && s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    obj.status.unwrap().task.unwrap()
}

#[tokio::test]
async fn deleting_mid_copy_cancels_the_task_and_restores_settings() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-srv-del").await;
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("srv-src"), unique_index("srv-dst"));
    source_index(src.url(), &sidx, &docs(3_000)).await;
    create_index(
        dst.url(),
        &didx,
        json!({"settings": {"index": {"number_of_replicas": 0, "refresh_interval": "7s"}}}),
    )
    .await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    create_reindex(&client, &ns, "t", slow_spec(src.url(), &sidx, &didx, 200.0)).await;
    let id = running_task(&client, &ns).await;
    assert_eq!(
        settings(dst.url(), &didx)
            .await
            .get("index.refresh_interval"),
        Some(&json!("-1"))
    );
    Api::<RemoteReindex>::namespaced(client.clone(), &ns)
        .delete("t", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&client, &ns, "t", Duration::from_secs(60)).await;
    let t = task(dst.url(), &id).await;
    assert_eq!(t["completed"], true, "{t}");
    assert_eq!(t["response"]["canceled"], "by user request", "{t}");
    let copied = t["response"]["created"].as_u64().unwrap();
    assert!(copied < 3_000, "the task was not stopped early: {t}");
    let s = settings(dst.url(), &didx).await;
    assert_eq!(s.get("index.refresh_interval"), Some(&json!("7s")), "{s:?}");
    refresh(dst.url(), &didx).await;
    let before = count(dst.url(), &didx).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    refresh(dst.url(), &didx).await;
    assert_eq!(
        count(dst.url(), &didx).await,
        before,
        "nothing writes after the cancel"
    );
}

#[tokio::test]
async fn rethrottle_reaches_the_task_and_the_copy_finishes() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-srv-rate").await;
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("srv-src"), unique_index("srv-dst"));
    source_index(src.url(), &sidx, &docs(3_000)).await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    create_reindex(&client, &ns, "t", slow_spec(src.url(), &sidx, &didx, 100.0)).await;
    let id = running_task(&client, &ns).await;
    assert_eq!(
        task(dst.url(), &id).await["task"]["status"]["requests_per_second"],
        100.0
    );
    patch_spec(&client, &ns, "t", json!({"requestsPerSecond": 50000})).await;
    let obj = wait_terminal(&client, &ns, "t", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(condition(&s, "Ready").reason, "Verified");
    assert_eq!(
        s.task.as_deref(),
        Some(id.as_str()),
        "one task did the whole copy"
    );
    let t = task(dst.url(), &id).await;
    assert_eq!(t["response"]["requests_per_second"], 50000.0, "{t}");
    let p = s.progress.unwrap();
    assert_eq!((p.total, p.written, p.failed), (Some(3_000), 3_000, 0));
    wait_event_reasons(&client, &ns, "t", &["Rethrottled"]).await;
}

#[tokio::test]
async fn an_operator_restart_mid_task_reattaches_to_the_same_task() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-srv-restart").await;
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("srv-src"), unique_index("srv-dst"));
    source_index(src.url(), &sidx, &docs(2_000)).await;
    let mut op = Operator::start(&ns, dst.url(), &[]).await;
    create_reindex(&client, &ns, "t", slow_spec(src.url(), &sidx, &didx, 300.0)).await;
    let id = running_task(&client, &ns).await;
    op.kill();
    let op2 = Operator::start(&ns, dst.url(), &[]).await;
    let obj = wait_terminal(&client, &ns, "t", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op2.log());
    assert_eq!(
        s.task.as_deref(),
        Some(id.as_str()),
        "re-attached, not restarted"
    );
    let t = task(dst.url(), &id).await;
    assert_eq!(t["response"]["created"], 2_000, "{t}");
    assert_eq!(
        parsed(&all_docs(dst.url(), &didx).await),
        parsed(&all_docs(src.url(), &sidx).await)
    );
    assert!(op2.log().contains(&id), "{}", op2.log());
}

#[tokio::test]
async fn a_destination_restart_mid_task_is_task_lost_and_the_copy_runs_again() {
    let src = engine(EngineKind::Elasticsearch7);
    let mut dst = own_engine(
        EngineKind::OpenSearch2,
        &[("reindex.remote.allowlist", "127.0.0.1:*")],
    );
    let sidx = unique_index("srv-src");
    source_index(src.url(), &sidx, &docs(3_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "  requestsPerSecond: 150\n  retry: {maxAttempts: 40, maxBackoff: 5s}\n";
    let f = manifest(
        &dir,
        "r.yaml",
        &yaml(src.url(), &sidx, dst.url(), "dst", extra),
    );
    let child = tokio::process::Command::from(cli())
        .args(["run", "-f", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = dst.url().to_string();
    eventually(
        "the task's first documents",
        Duration::from_secs(60),
        || {
            let url = url.clone();
            async move {
                let (_, v) = call(
                    "GET",
                    &format!("{url}/_tasks?actions=*reindex&detailed=true&group_by=none"),
                    None,
                )
                .await;
                v["tasks"]
                    .as_array()?
                    .iter()
                    .any(|t| t["status"]["created"].as_u64().unwrap_or(0) > 0)
                    .then_some(())
            }
        },
    )
    .await;
    // The coordinating node restarts before the task finished: no result is stored.
    let dst = tokio::task::spawn_blocking(move || {
        dst.restart();
        dst
    })
    .await
    .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("run -f finishes")
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("no longer knows reindex task"), "{err}");
    let tasks: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("task: "))
        .collect();
    assert_eq!(tasks.len(), 2, "a second task after the lost one: {err}");
    assert_eq!(
        parsed(&all_docs(dst.url(), "dst").await),
        parsed(&all_docs(src.url(), &sidx).await)
    );
}

#[tokio::test]
async fn suspend_cancels_the_task_and_resume_runs_the_copy_again() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-srv-suspend").await;
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("srv-src"), unique_index("srv-dst"));
    source_index(src.url(), &sidx, &docs(3_000)).await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    create_reindex(&client, &ns, "t", slow_spec(src.url(), &sidx, &didx, 150.0)).await;
    let first = running_task(&client, &ns).await;
    patch_spec(&client, &ns, "t", json!({"suspend": true})).await;
    let obj = wait_status(
        &client,
        &ns,
        "t",
        "Suspended",
        Duration::from_secs(60),
        |s| s.phase == Some(Phase::Suspended),
    )
    .await;
    assert_eq!(
        obj.status.unwrap().task,
        None,
        "a cancelled task is not followed again"
    );
    let t = task(dst.url(), &first).await;
    assert_eq!(t["response"]["canceled"], "by user request", "{t}");
    assert_eq!(
        settings(dst.url(), &didx)
            .await
            .get("index.refresh_interval"),
        Some(&json!("-1")),
        "kept tuned while suspended"
    );
    patch_spec(
        &client,
        &ns,
        "t",
        json!({"suspend": false, "requestsPerSecond": 50000}),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "t", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(condition(&s, "Ready").reason, "Verified");
    let second = s.task.clone().unwrap();
    assert_ne!(second, first, "the resumed copy is a new task");
    // The rerun overwrites what the first task wrote (`op_type: index`).
    let t = task(dst.url(), &second).await;
    assert_eq!(t["response"]["failures"], json!([]), "{t}");
    assert!(t["response"]["updated"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(
        parsed(&all_docs(dst.url(), &didx).await),
        parsed(&all_docs(src.url(), &sidx).await)
    );
}

/// A TCP front for the source that drops every connection whose first request comes from the
/// operator (`User-Agent: remote-reindex/…`) and relays the others (the destination's remote
/// reindex): the operator cannot reach the source, the destination can — a partition a real
/// network produces but one machine cannot.
pub(crate) async fn fake_operator_partition(upstream: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match client.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if text.contains("user-agent: remote-reindex") {
                    return; // dropped: the operator's side of the partition
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                if server.write_all(&head).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn fake_partition_a_source_only_the_destination_reaches_is_task_counts_only() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("srv-src"), unique_index("srv-dst"));
    source_index(src.url(), &sidx, &docs(1_500)).await;
    // No source mapping to copy: the destination's template shapes the index.
    let (code, body) = call(
        "PUT",
        &format!("{}/_index_template/{didx}", dst.url()),
        Some(json!({"index_patterns": [didx], "template": {"mappings": {"properties": {"tag": {"type": "keyword"}, "msg": {"type": "text"}}}}})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let front = fake_operator_partition(src.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &yaml(&front, &sidx, dst.url(), &didx, ""));
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("not reachable from the operator"), "{err}");
    assert!(out.contains("reindex task's own counts"), "{out}");
    assert!(out.contains("destination holds 1500"), "{out}");
    let (_, m) = call("GET", &format!("{}/{didx}/_mapping", dst.url()), None).await;
    assert_eq!(
        m[&didx]["mappings"]["properties"]["msg"]["type"], "text",
        "{m}"
    );
    assert_eq!(
        parsed(&all_docs(dst.url(), &didx).await),
        parsed(&all_docs(src.url(), &sidx).await)
    );
    call(
        "DELETE",
        &format!("{}/_index_template/{didx}", dst.url()),
        None,
    )
    .await;
}

#[tokio::test]
async fn rejected_documents_count_against_max_failed_docs_and_the_rest_is_copied() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let sidx = unique_index("srv-src");
    // `extra` is not mapped on the source; the destination maps it as a number, so d250
    // (a word there) is rejected in the third batch of 100.
    let mut all = docs(500);
    for (i, d) in all.iter_mut().enumerate() {
        let mut v: Value = serde_json::from_str(&d.source).unwrap();
        v["extra"] = if i == 250 {
            json!("not a number")
        } else {
            json!(i)
        };
        d.source = v.to_string();
    }
    source_index(src.url(), &sidx, &all).await;
    let dest_mapping = json!({"mappings": {"properties": {"extra": {"type": "long"}}}});
    let dir = tempfile::tempdir().unwrap();
    for (max, code) in [(0, 1), (1, 0)] {
        let didx = unique_index("srv-dst");
        create_index(dst.url(), &didx, dest_mapping.clone()).await;
        let extra = format!("  maxFailedDocs: {max}\n");
        let y = yaml(src.url(), &sidx, dst.url(), &didx, &extra).replace("size: 200", "size: 100");
        let f = manifest(&dir, &format!("r{max}.yaml"), &y);
        let (got, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
        assert_eq!(got, code, "maxFailedDocs {max}: {out}\n{err}");
        if max == 0 {
            assert!(
                err.contains("[TooManyFailures]") && err.contains("d250"),
                "{err}"
            );
            continue;
        }
        assert!(err.contains("copying again without them"), "{err}");
        assert!(
            out.contains("499 of 500 documents expected (1 failed")
                && out.contains("count verified"),
            "{out}"
        );
        let mut expected = parsed(&all_docs(src.url(), &sidx).await);
        expected.remove("d250");
        assert_eq!(parsed(&all_docs(dst.url(), &didx).await), expected);
    }
}
