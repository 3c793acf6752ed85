//! Honest accounting (issue 11, item 5): what counts as written, a conflict or a rewrite, what
//! status shows after success, and the destination's shard count with user settings.

use crate::harness::*;
use serde_json::json;

fn yaml(src: &str, dst: &str, dest_extra: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: src\n    size: 100\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: dst\n{dest_extra}{spec_extra}"
    )
}

/// Under `opType: create` with `allowExisting`, a document already in the destination is a
/// conflict (it was not written by this copy), obeying `conflicts`: `abort` stops the copy,
/// `proceed` counts it and keeps the destination's version.
#[tokio::test]
async fn create_into_an_existing_index_counts_documents_already_there_as_conflicts() {
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(300)).await;
    let source = all_docs(src.url(), "src").await;
    let ids: Vec<String> = source.keys().take(40).cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    for (policy, expect_code) in [("abort", 1), ("proceed", 0)] {
        let _ = call("DELETE", &format!("{}/dst", dst.url()), None).await;
        create_index(dst.url(), "dst", lean_mapping()).await;
        let theirs: Vec<Doc> = ids
            .iter()
            .map(|id| Doc {
                id: id.clone(),
                source: r#"{"n":-1,"tag":"theirs"}"#.into(),
                routing: None,
            })
            .collect();
        load(dst.url(), "dst", &theirs).await;
        let f = manifest(
            &dir,
            &format!("{policy}.yaml"),
            &yaml(
                src.url(),
                dst.url(),
                "    opType: create\n    allowExisting: true\n",
                &format!("  conflicts: {policy}\n"),
            ),
        );
        let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
        assert_eq!(code, expect_code, "{policy}: {out}\n{err}");
        if policy == "abort" {
            assert!(err.contains("[VersionConflict]"), "{err}");
            continue;
        }
        assert!(out.contains("copied 260 of 300"), "{out}");
        assert!(out.contains("40 conflicts, 0 rewritten"), "{out}");
        let after = all_docs(dst.url(), "dst").await;
        assert_eq!(after.len(), 300);
        for id in &ids {
            assert!(after[id].contains("theirs"), "{id} was overwritten");
        }
    }
}

/// A sink that records what the workflow reports, in order.
#[derive(Default)]
struct Recorder {
    events: std::sync::Mutex<Vec<String>>,
}

impl remote_reindex::workflow::Sink for Recorder {
    async fn phase(
        &self,
        phase: remote_reindex::api::Phase,
        _reason: remote_reindex::api::Reason,
        _message: String,
    ) -> Result<(), String> {
        self.events.lock().unwrap().push(format!("phase {phase}"));
        Ok(())
    }
    async fn prepared(&self, _p: &remote_reindex::workflow::Prepared) -> Result<(), String> {
        Ok(())
    }
    async fn expected(&self, expected: u64, paging: &'static str) -> Result<(), String> {
        self.events
            .lock()
            .unwrap()
            .push(format!("expected {expected} by {paging}"));
        Ok(())
    }
    fn copying(&self, stats: std::sync::Arc<remote_reindex::copy::CopyStats>, _t: Option<u64>) {
        self.events.lock().unwrap().push(format!(
            "copying, {} written so far",
            stats.snapshot().written
        ));
    }
}

/// After success the slices are all `done`, each with its total and no scroll or PIT cursor left
/// (status used to keep `running`, partial counts and scroll ids), and the expected count was
/// reported before the copy wrote anything.
#[tokio::test]
async fn final_checkpoints_are_done_and_the_expected_count_comes_before_any_write() {
    use remote_reindex::api::SliceStateName;
    use remote_reindex::copy::slices_status;
    let (src, dst) = (noida(), osmem());
    create_index(
        src.url(),
        "src",
        json!({"settings": {"number_of_shards": 2}, "mappings": lean_mapping()["mappings"]}),
    )
    .await;
    load(src.url(), "src", &hostile_docs(500)).await;
    let dir = tempfile::tempdir().unwrap();
    for paging in ["pit", "scroll"] {
        let index = format!("dst-{paging}");
        let y = yaml(src.url(), dst.url(), "", "")
            .replace("    index: dst\n", &format!("    index: {index}\n"))
            .replace(
                "    size: 100\n",
                &format!("    size: 100\n    slices: 3\n    paging: {paging}\n"),
            );
        let f = manifest(&dir, &format!("{paging}.yaml"), &y);
        let m = remote_reindex::cli::manifest::Manifests::load(&[f]).unwrap();
        let settings = remote_reindex::workflow::Settings {
            dest_default: None,
            policy: Default::default(),
            namespace: m.namespace.clone(),
            user_agent: None,
            link_local_allowed: None,
            preflight: Default::default(),
            fence: None,
            opaque_id: None,
        };
        let sink = Recorder::default();
        let job = remote_reindex::workflow::Job::new(
            std::sync::Arc::new(remote_reindex::copy::Throttle::new(None)),
            std::sync::Arc::new(remote_reindex::copy::Stop::new()),
        );
        let outcome =
            remote_reindex::workflow::run(&m.reindex.spec, &m.secrets(), &settings, &sink, job)
                .await
                .unwrap();
        assert_eq!(
            (outcome.expected, outcome.paging, outcome.verified),
            (500, paging, true)
        );
        let events = sink.events.lock().unwrap().clone();
        let at = |p: &str| events.iter().position(|e| e.starts_with(p)).unwrap();
        assert!(at("expected 500") < at("copying, 0 written"), "{events:?}");
        assert!(at("expected 500") < at("phase Copying"), "{events:?}");
        let s = slices_status(&outcome.checkpoints);
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s.iter().map(|c| c.total.unwrap()).sum::<i64>(), 500);
        for c in &s {
            assert_eq!(c.state, SliceStateName::Done, "{c:?}");
            assert!(
                c.scroll_id.is_none() && c.pit_id.is_none() && c.search_after.is_none(),
                "{c:?}"
            );
            assert_eq!(Some(c.written), c.total, "{c:?}");
        }
    }
}

/// `dest.settings` without a shard count: the destination gets the source's shard count, as
/// the reference promises, not the engine's default of 1.
#[tokio::test]
async fn dest_settings_without_a_shard_count_keep_the_source_shard_count() {
    let (src, dst) = (noida(), osmem());
    create_index(
        src.url(),
        "src",
        json!({"settings": {"number_of_shards": 3}, "mappings": lean_mapping()["mappings"]}),
    )
    .await;
    load(src.url(), "src", &hostile_docs(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "r.yaml",
        &yaml(
            src.url(),
            dst.url(),
            "    settings: {index: {number_of_replicas: 1}}\n",
            "",
        ),
    );
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let s = settings(dst.url(), "dst").await;
    assert_eq!(s["index.number_of_shards"], json!("3"), "{s:?}");
}
