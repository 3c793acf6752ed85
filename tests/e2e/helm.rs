//! The chart's whole life on a current Kubernetes (a private kube-apiserver v1.37, so that the
//! chart installs its own CRDs): `helm install` of an older release (its CRD lacks a printer
//! column), the operator — a local process with the chart's ServiceAccount token, since no
//! kubelet runs here — copies a real Elasticsearch index into OpenSearch, `helm upgrade` with a
//! changed value leaves the CRD alone (Helm never upgrades `crds/`), the documented
//! `kubectl apply --server-side --force-conflicts -f crds/` brings it up to date, and after
//! `helm uninstall` the documented way out removes resources whose finalizer has no operator left
//! to clear it (docs/operating.md, "Uninstalling"), leaving the clusters as the docs say.

use crate::controller::k8s::*;
use crate::harness::*;
use remote_reindex::api::{Phase, RemoteReindex};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/charts/remote-reindex-operator"
);

fn run(program: &str, kubeconfig: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(program)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} is on PATH (scripts/test.sh puts it there): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn ok(program: &str, kubeconfig: &Path, args: &[&str]) -> String {
    let (code, out) = run(program, kubeconfig, args);
    assert_eq!(code, 0, "{program} {}: {out}", args.join(" "));
    out
}

/// The printer columns of the RemoteReindex CRD.
fn columns(kc: &Path) -> String {
    ok(
        "kubectl",
        kc,
        &[
            "get",
            "crd",
            "remotereindexes.reindex.dev",
            "-o",
            "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}",
        ],
    )
}

fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("h{i}"),
            source: json!({"n": i, "msg": format!("helm {i}")}).to_string(),
            routing: None,
        })
        .collect()
}

#[tokio::test]
async fn helm_install_copy_upgrade_and_uninstall_on_a_current_kubernetes() {
    let cp = OwnControlPlane::start();
    let kc = cp.kubeconfig();
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx, slow_didx) = (
        unique_index("helm-src"),
        unique_index("helm-dst"),
        unique_index("helm-slow"),
    );
    load(src.url(), &sidx, &docs(3_000)).await;
    refresh(src.url(), &sidx).await;
    create_index(
        dst.url(),
        &slow_didx,
        json!({"settings": {"index": {"number_of_replicas": 0, "refresh_interval": "7s"}}}),
    )
    .await;

    // An older release: the same chart whose CRD has no Lag column yet.
    let old = tempfile::tempdir().unwrap();
    let st = Command::new("cp")
        .arg("-r")
        .arg(CHART)
        .arg(old.path())
        .status()
        .unwrap();
    assert!(st.success());
    let old_chart = old.path().join("remote-reindex-operator");
    let crd_path = old_chart.join("crds/remotereindex.yaml");
    let crd = std::fs::read_to_string(&crd_path).unwrap();
    let lag =
        "    - jsonPath: .status.catchUp.lastRound.lag\n      name: Lag\n      type: string\n";
    assert!(crd.contains(lag), "the CRD's Lag column as written");
    std::fs::write(&crd_path, crd.replace(lag, "")).unwrap();

    let out = ok(
        "helm",
        &kc,
        &[
            "install",
            "rr",
            old_chart.to_str().unwrap(),
            "-n",
            "reindex-system",
            "--create-namespace",
            "--set",
            &format!("destHost={}", dst.url()),
        ],
    );
    eprintln!("$ helm install rr <chart> -n reindex-system --create-namespace\n{out}");
    assert!(out.contains("STATUS: deployed"), "{out}");
    ok(
        "kubectl",
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "--all",
        ],
    );
    assert!(!columns(&kc).contains("Lag"), "{}", columns(&kc));

    // The operator with the chart's ServiceAccount copies a real index.
    ok("kubectl", &kc, &["create", "namespace", "team-a"]);
    let dir = tempfile::tempdir().unwrap();
    let (sa_kc, _) = service_account_kubeconfig(
        &kc,
        dir.path(),
        "reindex-system",
        "rr-remote-reindex-operator",
    );
    let mut op = Operator::start_as(&sa_kc, "team-a", dst.url(), &[]).await;
    let client = client_from(&kc).await;
    create_reindex(
        &client,
        "team-a",
        "logs",
        json!({
            "source": {"remote": {"host": src.url()}, "index": sidx, "size": 500},
            "dest": {"index": didx},
        }),
    )
    .await;
    let obj = wait_terminal(&client, "team-a", "logs", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    assert_eq!(count(dst.url(), &didx).await, 3_000);

    // A second copy, throttled, is still running when the operator goes away.
    create_reindex(
        &client,
        "team-a",
        "slow",
        json!({
            "source": {"remote": {"host": src.url()}, "index": sidx, "size": 100},
            "dest": {"index": slow_didx},
            "requestsPerSecond": 100,
        }),
    )
    .await;
    wait_status(
        &client,
        "team-a",
        "slow",
        "the slow copy to write",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;

    // helm upgrade with a changed value: the Deployment changes, the CRD does not.
    let out = ok(
        "helm",
        &kc,
        &[
            "upgrade",
            "rr",
            CHART,
            "-n",
            "reindex-system",
            "--reuse-values",
            "--set",
            "logFormat=text",
        ],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    let args = ok(
        "kubectl",
        &kc,
        &[
            "get",
            "deployment",
            "rr-remote-reindex-operator",
            "-n",
            "reindex-system",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ],
    );
    assert!(args.contains("--log-format=text"), "{args}");
    assert!(
        !columns(&kc).contains("Lag"),
        "Helm upgraded the CRD: {}",
        columns(&kc)
    );

    // The documented CRD update (docs/operating.md, "Upgrading").
    let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/");
    let out = ok(
        "kubectl",
        &kc,
        &["apply", "--server-side", "--force-conflicts", "-f", crds],
    );
    eprintln!("$ kubectl apply --server-side --force-conflicts -f crds/\n{out}");
    assert!(columns(&kc).contains("Lag"), "{}", columns(&kc));
    let table = ok("kubectl", &kc, &["get", "reindex", "-n", "team-a"]);
    assert!(table.lines().next().unwrap().contains("LAG"), "{table}");

    // Uninstall: the operator's pod is stopped (SIGTERM, as the kubelet would), the release goes.
    assert_eq!(op.terminate().await, Some(0), "{}", op.log());
    let out = ok("helm", &kc, &["uninstall", "rr", "-n", "reindex-system"]);
    eprintln!("$ helm uninstall rr -n reindex-system\n{out}");
    let left = ok(
        "kubectl",
        &kc,
        &[
            "get",
            "clusterrole,clusterrolebinding,serviceaccount,deployment",
            "-A",
            "-l",
            "app.kubernetes.io/instance=rr",
            "-o",
            "name",
        ],
    );
    assert!(left.trim().is_empty(), "left after uninstall: {left}");
    // What stays (docs/operating.md): the CRDs, the resources and their finalizers.
    ok(
        "kubectl",
        &kc,
        &["get", "crd", "remotereindexes.reindex.dev"],
    );
    let finalizers = ok(
        "kubectl",
        &kc,
        &[
            "get",
            "reindex",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.items[*].metadata.finalizers}",
        ],
    );
    assert!(finalizers.contains("reindex.dev"), "{finalizers}");

    // Deleting waits for an operator that is gone...
    ok(
        "kubectl",
        &kc,
        &["delete", "reindex", "--all", "-n", "team-a", "--wait=false"],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let api: kube::Api<RemoteReindex> = kube::Api::namespaced(client.clone(), "team-a");
    let stuck = api.get("logs").await.expect("still there");
    assert!(stuck.metadata.deletion_timestamp.is_some());
    // ...until the documented command removes the finalizers.
    for name in ["logs", "slow"] {
        ok(
            "kubectl",
            &kc,
            &[
                "patch",
                "reindex",
                name,
                "-n",
                "team-a",
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ],
        );
        wait_gone(&client, "team-a", name, Duration::from_secs(30)).await;
    }
    // What the clusters keep: the finished copy's index as it was; the interrupted copy's index
    // with the documents written so far and its own settings back (the operator restored them
    // when it stopped).
    assert_eq!(count(dst.url(), &didx).await, 3_000);
    refresh(dst.url(), &slow_didx).await;
    let partial = count(dst.url(), &slow_didx).await;
    assert!(partial > 0 && partial < 3_000, "{partial}");
    let s = settings(dst.url(), &slow_didx).await;
    assert_eq!(s.get("index.refresh_interval"), Some(&json!("7s")), "{s:?}");
    assert_eq!(
        s.get("index.number_of_replicas"),
        Some(&json!("0")),
        "{s:?}"
    );
}
