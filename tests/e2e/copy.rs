//! Copies between real servers, in both directions, with hostile data.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

fn reindex_yaml(src: &str, sidx: &str, dst: &str, didx: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: {sidx}\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: {didx}\n{extra_spec}"
    )
}

#[tokio::test]
async fn noida_to_osmem_copies_hostile_documents_tuned_then_restored() {
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    let docs = hostile_docs(25_000);
    load(src.url(), "src", &docs).await;
    let dir = tempfile::tempdir().unwrap();
    // A throttle stretches the copy so the tuned settings can be observed while it runs.
    let y = reindex_yaml(
        src.url(),
        "src",
        dst.url(),
        "dst",
        "  requestsPerSecond: 8000\n",
    );
    let file = manifest(&dir, "r.yaml", &y);
    let mut child = tokio::process::Command::from(cli());
    child
        .args(["run", "-f", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = child.spawn().unwrap();
    let tuned = eventually(
        "tuned destination settings",
        Duration::from_secs(60),
        || async {
            let s = settings(dst.url(), "dst").await;
            (s.get("index.refresh_interval") == Some(&json!("-1"))).then_some(s)
        },
    )
    .await;
    assert_eq!(tuned.get("index.number_of_replicas"), Some(&json!("0")));
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("count verified"));

    let (a, b) = (
        all_docs(src.url(), "src").await,
        all_docs(dst.url(), "dst").await,
    );
    assert_eq!(a.len(), 25_000);
    assert_eq!(parsed(&a), parsed(&b), "documents differ");
    // The destination had neither key set: both are reset to the cluster default, not to 1 / 1s.
    let after = settings(dst.url(), "dst").await;
    assert!(!after.contains_key("index.refresh_interval"), "{after:?}");
    assert!(!after.contains_key("index.number_of_replicas"), "{after:?}");
    let (_, mapping) = call("GET", &format!("{}/dst/_mapping", dst.url()), None).await;
    assert!(
        mapping["dst"]["mappings"]["_meta"]["remote_reindex"].is_null(),
        "marker left behind: {mapping}"
    );
}

#[tokio::test]
async fn osmem_to_noida_keeps_routing_and_restores_explicit_settings() {
    let (src, dst) = (osmem(), noida());
    create_index(src.url(), "src", lean_mapping()).await;
    let mut docs = hostile_docs(25_000);
    for (i, d) in docs.iter_mut().enumerate().filter(|(i, _)| i % 5 == 0) {
        d.routing = Some(format!("r{}", i % 3));
    }
    load(src.url(), "src", &docs).await;
    create_index(dst.url(), "dst", json!({"settings": {"index": {"number_of_replicas": 2, "refresh_interval": "7s"}}, "mappings": {"dynamic": false}})).await;
    let dir = tempfile::tempdir().unwrap();
    let y = reindex_yaml(src.url(), "src", dst.url(), "dst", "")
        .replace("    index: src\n", "    index: src\n    slices: 2\n");
    let file = manifest(&dir, "r.yaml", &y);
    let (code, stdout, stderr) = run_cli(&["run", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");

    let (a, b) = (
        all_docs(src.url(), "src").await,
        all_docs(dst.url(), "dst").await,
    );
    assert_eq!(a.len(), 25_000);
    assert_eq!(parsed(&a), parsed(&b), "documents differ");
    for d in docs.iter().filter(|d| d.routing.is_some()).take(50) {
        let id = url_escape(&d.id);
        let (s, v) = call(
            "GET",
            &format!(
                "{}/dst/_doc/{id}?routing={}",
                dst.url(),
                d.routing.as_ref().unwrap()
            ),
            None,
        )
        .await;
        assert_eq!(s, 200, "{} not found with its routing: {v}", d.id);
        assert_eq!(v["_routing"], json!(d.routing), "routing of {}", d.id);
    }
    let after = settings(dst.url(), "dst").await;
    assert_eq!(after.get("index.number_of_replicas"), Some(&json!("2")));
    assert_eq!(after.get("index.refresh_interval"), Some(&json!("7s")));
}

#[tokio::test]
async fn osmem_to_osmem_sliced_copy_is_byte_exact_for_huge_integers() {
    let (src, dst) = (osmem(), osmem());
    create_index(
        src.url(),
        "src",
        json!({"settings": {"number_of_shards": 3}, "mappings": {"dynamic": false}}),
    )
    .await;
    let docs: Vec<Doc> = (0..6000)
        .map(|i| Doc {
            id: format!("k{i}"),
            source: format!(r#"{{"i":{i},"huge":123456789012345678901234567890{i},"neg":-98765432109876543210,"exp":1.5e300,"dec":1.10,"s":"line\nbreak"}}"#),
            routing: None,
        })
        .collect();
    load(src.url(), "src", &docs).await;
    let dir = tempfile::tempdir().unwrap();
    let y = reindex_yaml(src.url(), "src", dst.url(), "dst", "").replace(
        "    index: src\n",
        "    index: src\n    slices: auto\n    size: 500\n",
    );
    let file = manifest(&dir, "r.yaml", &y);
    let (code, stdout, stderr) = run_cli(&["run", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("3 slice(s)"),
        "auto slices should follow the 3 shards: {stderr}"
    );
    let (a, b) = (
        all_docs(src.url(), "src").await,
        all_docs(dst.url(), "dst").await,
    );
    assert_eq!(a.len(), 6000);
    assert_eq!(a, b, "raw _source differs");
    assert!(
        b["k7"].contains("1234567890123456789012345678907"),
        "{}",
        b["k7"]
    );
}

#[tokio::test]
async fn query_and_max_docs_limit_what_is_copied() {
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(3000)).await;
    let dir = tempfile::tempdir().unwrap();
    let y = reindex_yaml(src.url(), "src", dst.url(), "dst", "").replace(
        "    index: src\n",
        "    index: src\n    query: {term: {tag: t3}}\n    maxDocs: 100\n    size: 30\n",
    );
    let file = manifest(&dir, "r.yaml", &y);
    let (code, stdout, stderr) = run_cli(&["run", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let b = parsed(&all_docs(dst.url(), "dst").await);
    assert_eq!(b.len(), 100);
    assert!(b.values().all(|v: &Value| v["tag"] == json!("t3")));
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
