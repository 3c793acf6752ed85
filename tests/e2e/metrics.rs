//! `/metrics` of a real operator after real copies: the document counters equal what was copied,
//! the bulk histogram counts every bulk request, failures are counted by reason, and
//! per-resource gauges exist only while a copy runs. The operator logs JSON lines
//! (`--log-format json`, as the chart runs it).

use crate::controller::k8s::*;
use crate::harness::*;
use remote_reindex::api::Phase;
use serde_json::{Value, json};
use std::time::Duration;

/// The value of the sample `name` (with its labels, exactly as rendered), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "msg": format!("metrics {i}")}).to_string(),
            routing: None,
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_what_was_copied() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-metrics").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(3_000)).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;

    // Throttled to 600 documents/s (5 s) with small bulks: many bulk requests, and a few seconds
    // in which the copy is visibly active.
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 250, "slices": 2},
        "dest": {"index": "logs-copy", "bulkBytes": "16kb"},
        "requestsPerSecond": 600,
    });
    create_reindex(&client, &ns, "logs", spec).await;
    let active =
        format!(r#"remote_reindex_active_copy_documents_written{{namespace="{ns}",name="logs"}}"#);
    let expected =
        format!(r#"remote_reindex_active_copy_documents_expected{{namespace="{ns}",name="logs"}}"#);
    let during = eventually(
        "per-resource gauges while copying",
        Duration::from_secs(30),
        || {
            let op = &op;
            let active = active.clone();
            async move {
                let m = op.metrics().await;
                sample(&m, &active).filter(|w| *w > 0.0).map(|_| m)
            }
        },
    )
    .await;
    assert_eq!(sample(&during, &expected), Some(3_000.0), "{during}");
    assert_eq!(sample(&during, "remote_reindex_copies_running"), Some(1.0));
    assert_eq!(
        sample(
            &during,
            r#"remote_reindex_copies_in_phase{phase="Copying"}"#
        ),
        Some(1.0),
        "{during}"
    );

    let obj = wait_terminal(&client, &ns, "logs", Duration::from_secs(60)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    let copied = s.progress.unwrap().written;
    assert_eq!(copied, 3_000);
    assert_eq!(count(dst.url(), "logs-copy").await, 3_000);

    // A second resource that fails: counted by its reason.
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "missing"},
        "dest": {"index": "missing-copy"},
    });
    create_reindex(&client, &ns, "missing", spec).await;
    wait_status(
        &client,
        &ns,
        "missing",
        "Failed",
        Duration::from_secs(60),
        |s| s.phase == Some(Phase::Failed),
    )
    .await;

    let m = eventually("copies_running back to 0", Duration::from_secs(10), || {
        let op = &op;
        async move {
            let m = op.metrics().await;
            (sample(&m, "remote_reindex_copies_running") == Some(0.0)).then_some(m)
        }
    })
    .await;
    let get = |name: &str| sample(&m, name).unwrap_or_else(|| panic!("no {name} in:\n{m}"));
    assert_eq!(
        get("remote_reindex_documents_written_total"),
        copied as f64,
        "{m}"
    );
    assert_eq!(get("remote_reindex_documents_read_total"), 3_000.0);
    assert_eq!(get("remote_reindex_documents_failed_total"), 0.0);
    let bulks = get("remote_reindex_bulk_requests_total");
    assert!(
        bulks >= 10.0,
        "16 KiB bulks of 3,000 documents: {bulks}\n{m}"
    );
    assert_eq!(get("remote_reindex_bulk_duration_seconds_count"), bulks);
    assert!(get("remote_reindex_bulk_duration_seconds_sum") > 0.0);
    assert!(get(r#"remote_reindex_bulk_duration_seconds_bucket{le="+Inf"}"#) == bulks);
    assert!(get("remote_reindex_bulk_bytes_total") > 3_000.0 * 20.0);
    assert_eq!(
        get(r#"remote_reindex_copies_finished_total{result="succeeded"}"#),
        1.0
    );
    assert_eq!(
        get(r#"remote_reindex_copies_finished_total{result="failed"}"#),
        1.0
    );
    assert_eq!(
        get(r#"remote_reindex_copy_failures_total{reason="SourceNotCopyable"}"#),
        1.0
    );
    assert_eq!(get(r#"remote_reindex_retries_total{kind="request"}"#), 0.0);
    assert_eq!(get("remote_reindex_slice_restarts_total"), 0.0);
    for phase in ["Pending", "Copying", "Finalizing"] {
        let series = format!(r#"remote_reindex_copies_in_phase{{phase="{phase}"}}"#);
        assert_eq!(get(&series), 0.0, "{m}");
    }
    assert!(get("remote_reindex_reconciliations_total") >= 2.0);
    // Bounded labels: nothing names a resource once its copy ended.
    assert!(!m.contains("namespace="), "per-resource series left:\n{m}");

    // `--log-format json`: every line the operator wrote is one JSON object.
    let log = op.log();
    assert!(log.lines().count() > 5, "{log}");
    for l in log.lines() {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string() && v["fields"].is_object(),
            "{l}"
        );
    }
}
