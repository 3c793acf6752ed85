//! `kubectl get reindex`: the REASON column, and MESSAGE with `-o wide`, read through the real
//! kube-apiserver's server-side printing (the CRD's `additionalPrinterColumns`).

use super::docs;
use super::k8s::*;
use crate::harness::*;
use remote_reindex::api::Phase;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn kubectl_get_shows_why_a_copy_failed() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-columns").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(20)).await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({"source": {"remote": {"host": src.url()}, "index": "logs-2023"}, "dest": {"index": "logs-copy"}});
    create_reindex(&client, &ns, "logs", spec).await;
    let obj = wait_terminal(&client, &ns, "logs", Duration::from_secs(60)).await;
    assert_eq!(obj.status.and_then(|s| s.phase), Some(Phase::Failed));

    let (code, out, err) = kubectl(&["get", "reindex", "-n", &ns], None);
    eprintln!("kubectl get reindex:\n{out}");
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "PHASE", "PROGRESS", "DOCS/S", "REASON", "LAG", "AGE"
        ],
        "{out}"
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[2]),
        ("logs", "Failed", "SourceNotCopyable"),
        "no progress, no rate: the reason follows the phase\n{out}"
    );

    let (code, wide, err) = kubectl(&["get", "reindex", "-n", &ns, "-o", "wide"], None);
    eprintln!("kubectl get reindex -o wide:\n{wide}");
    assert_eq!(code, 0, "{err}");
    let header = wide.lines().next().unwrap();
    assert!(
        header.split_whitespace().eq([
            "NAME", "PHASE", "PROGRESS", "DOCS/S", "REASON", "LAG", "AGE", "ETA", "MESSAGE"
        ]),
        "{wide}"
    );
    let row = wide.lines().nth(1).unwrap();
    assert!(
        row.contains("SourceNotCopyable")
            && row.contains(&format!(
                "source index `logs-2023` does not exist on {}",
                src.url()
            )),
        "{wide}"
    );
}
