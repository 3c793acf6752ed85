//! The chart's RBAC, proven: the chart is installed with real `helm` into the shared
//! kube-apiserver, the operator runs with its ServiceAccount's token (TokenRequest API, through
//! `kubectl create token`) and completes a copy; with one rule removed from the rendered
//! ClusterRole, the same run fails with a `Forbidden` in the log and a Warning Event.
//! (No kubelet runs here, so the chart's Deployment never starts a pod: the operator runs as a
//! local process with the pod's identity.)

use crate::controller::k8s::*;
use crate::harness::*;
use remote_reindex::api::Phase;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/charts/remote-reindex-operator"
);

/// `helm` against the shared control plane: (exit code, stdout, stderr).
fn helm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("helm")
        .args(args)
        .env("KUBECONFIG", kubeconfig())
        .stdin(Stdio::null())
        .output()
        .expect("helm is on PATH (scripts/test.sh puts it there)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A release of the chart in its own namespace; uninstalled on Drop (its ClusterRoles are
/// cluster-scoped, and the control plane is shared).
struct Release {
    name: String,
    ns: String,
    /// What `helm install` printed.
    install_output: String,
}

impl Release {
    /// `helm install NAME CHART -n NS --skip-crds` with `set` values. The CRD is already
    /// installed by [`apply_crd`] (shared by all tests); helm never upgrades CRDs anyway.
    fn install(name: &str, ns: &str, set: &[&str]) -> Release {
        let mut args = vec!["install", name, CHART, "-n", ns, "--skip-crds"];
        for s in set {
            args.extend(["--set", s]);
        }
        let (code, out, err) = helm(&args);
        assert_eq!(code, 0, "helm install: {out}{err}");
        Release {
            name: name.into(),
            ns: ns.into(),
            install_output: out,
        }
    }

    /// The name of the ServiceAccount the chart created.
    fn service_account(&self) -> String {
        let selector = format!("app.kubernetes.io/instance={}", self.name);
        let (code, out, err) = kubectl(
            &[
                "get",
                "serviceaccount",
                "-n",
                &self.ns,
                "-l",
                &selector,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let names: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(names.len(), 1, "one ServiceAccount in the release: {out}");
        names[0].to_string()
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm(&["uninstall", &self.name, "-n", &self.ns]);
    }
}

fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "msg": format!("doc {i}")}).to_string(),
            routing: None,
        })
        .collect()
}

/// The spec used by both tests: credentials from a Secret, so that `secrets get` is exercised.
fn spec(src: &str) -> Value {
    json!({
        "source": {
            "remote": {"host": src, "basicAuth": {"secretRef": {"name": "src-creds"}}},
            "index": "logs",
            "size": 200,
        },
        "dest": {"index": "logs-copy"},
    })
}

const PASSWORD: &str = "s3cr3t-never-logged";

#[tokio::test]
async fn the_charts_service_account_can_run_a_copy() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-rbac").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(1_000)).await;

    // The chart's defaults: a ClusterRole for all namespaces.
    let release = Release::install(&ns, &ns, &[&format!("destHost={}", dst.url())]);
    eprintln!(
        "$ helm install {} {CHART} -n {ns}\n{}",
        release.name, release.install_output
    );
    let sa = release.service_account();
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, token) = service_account_kubeconfig(&kubeconfig(), dir.path(), &ns, &sa);
    let op = Operator::start_as(&kubeconfig, &ns, dst.url(), &[]).await;

    create_secret(
        &client,
        &ns,
        "src-creds",
        &[("username", "copier"), ("password", PASSWORD)],
    )
    .await;
    create_reindex(&client, &ns, "logs", spec(src.url())).await;
    let obj = wait_terminal(&client, &ns, "logs", Duration::from_secs(60)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    assert_eq!(s.progress.as_ref().map(|p| p.written), Some(1_000));
    assert_eq!(count(dst.url(), "logs-copy").await, 1_000);
    wait_event_reasons(&client, &ns, "logs", &["Verified"]).await;

    let log = op.log();
    assert!(
        !log.contains("Forbidden") && !log.contains("forbidden"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "the Secret's password was logged");
    assert!(!log.contains(&token), "the ServiceAccount token was logged");
    let (code, out, err) = kubectl(&["get", "reindex", "-n", &ns], None);
    assert_eq!(code, 0, "{err}");
    eprintln!("$ kubectl get reindex -n {ns}\n{out}");
    assert!(
        out.contains("Succeeded") && out.contains("1000/1000 (100%)"),
        "{out}"
    );
}

#[tokio::test]
async fn without_the_status_rule_the_operator_is_forbidden_and_says_so() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-norbac").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(100)).await;

    // Render the chart's RBAC, drop the `remotereindexes/status` rule from the operator's
    // ClusterRole, and bind that instead of the chart's (rbac.create=false).
    let (code, rendered, err) = helm(&[
        "template",
        &ns,
        CHART,
        "-n",
        &ns,
        "--skip-crds",
        "--show-only",
        "templates/rbac.yaml",
    ]);
    assert_eq!(code, 0, "helm template: {err}");
    let objects: Vec<Value> = serde_saphyr::from_multiple(&rendered).expect("rendered YAML");
    let mut removed = 0;
    let edited: Vec<Value> = objects
        .into_iter()
        .filter(|o| !o.is_null())
        .filter(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            // The operator's ClusterRole and binding; not the aggregated edit/view roles.
            !name.ends_with("-edit") && !name.ends_with("-view")
        })
        .map(|mut o| {
            if o["kind"] == "ClusterRole"
                && let Some(rules) = o["rules"].as_array_mut()
            {
                let before = rules.len();
                rules.retain(|r| r["resources"] != json!(["remotereindexes/status"]));
                removed += before - rules.len();
            }
            o
        })
        .collect();
    assert_eq!(
        removed, 1,
        "the ClusterRole has a remotereindexes/status rule:\n{rendered}"
    );
    assert_eq!(
        edited.len(),
        4,
        "ClusterRole + ClusterRoleBinding, and those to read ReindexPolicies:\n{rendered}"
    );
    let list = json!({"apiVersion": "v1", "kind": "List", "items": edited}).to_string();

    let release = Release::install(
        &ns,
        &ns,
        &["rbac.create=false", &format!("destHost={}", dst.url())],
    );
    let (code, out, err) = kubectl(&["apply", "-f", "-"], Some(&list));
    assert_eq!(code, 0, "kubectl apply (edited RBAC): {out}{err}");
    let sa = release.service_account();
    let (code, out, _) = kubectl(
        &[
            "auth",
            "can-i",
            "patch",
            "remotereindexes.reindex.dev",
            "--subresource=status",
            "-n",
            &ns,
            &format!("--as=system:serviceaccount:{ns}:{sa}"),
        ],
        None,
    );
    assert_eq!((code, out.trim()), (1, "no"), "the rule is gone");
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, _) = service_account_kubeconfig(&kubeconfig(), dir.path(), &ns, &sa);
    let op = Operator::start_as(&kubeconfig, &ns, dst.url(), &[]).await;

    create_secret(
        &client,
        &ns,
        "src-creds",
        &[("username", "copier"), ("password", PASSWORD)],
    )
    .await;
    create_reindex(&client, &ns, "logs", spec(src.url())).await;

    // The log names the denied request...
    let line = eventually(
        "a Forbidden in the operator log",
        Duration::from_secs(30),
        || {
            let line = op
                .log()
                .lines()
                .find(|l| l.contains("Forbidden") && l.contains("remotereindexes/status"))
                .map(str::to_string);
            async move { line }
        },
    )
    .await;
    eprintln!("operator log: {line}");
    assert!(
        line.contains(&format!("system:serviceaccount:{ns}:{sa}")),
        "{line}"
    );
    // ...and `kubectl describe` shows it as a Warning Event (events are still allowed).
    let (_, reason, note) = eventually(
        "a StatusUpdateFailed Event",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            let ns = ns.clone();
            async move {
                events(&client, &ns, "logs")
                    .await
                    .into_iter()
                    .find(|e| e.1 == "StatusUpdateFailed")
            }
        },
    )
    .await;
    assert!(
        note.contains("403") && note.contains("Forbidden"),
        "{reason}: {note}"
    );
    let (code, out, err) = kubectl(&["describe", "reindex", "logs", "-n", &ns], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("StatusUpdateFailed"), "{out}");
    eprintln!("$ kubectl describe reindex logs -n {ns}\n{out}");

    // Safe failure: the status was never written, and the destination was never touched.
    let obj = kube::Api::<remote_reindex::api::RemoteReindex>::namespaced(client.clone(), &ns)
        .get("logs")
        .await
        .unwrap();
    assert!(
        obj.status.is_none_or(|s| s.phase.is_none()),
        "no status could be written"
    );
    assert_eq!(
        call("GET", &format!("{}/logs-copy", dst.url()), None)
            .await
            .0,
        404,
        "the destination index was not created"
    );
    assert!(
        !op.log().contains(PASSWORD),
        "the Secret's password was logged"
    );
}

/// `kubectl auth can-i VERB remotereindexes.reindex.dev -n NS --as USER` is `want`, eventually
/// (kube-controller-manager's clusterrole-aggregation controller copies the rules).
async fn eventually_can(user: &str, verb: &str, ns: &str, want: &str) {
    eventually(
        &format!("`{user}` can-i {verb} remotereindexes = {want}"),
        Duration::from_secs(60),
        || {
            let (_, out, _) = kubectl(
                &[
                    "auth",
                    "can-i",
                    verb,
                    "remotereindexes.reindex.dev",
                    "-n",
                    ns,
                    &format!("--as={user}"),
                ],
                None,
            );
            let ok = out.trim() == want;
            async move { ok.then_some(()) }
        },
    )
    .await;
}

/// Creates a RemoteReindex as `user` (impersonated): (exit code, output).
fn create_as(user: &str, ns: &str, name: &str) -> (i32, String) {
    let yaml = format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  source: {{remote: {{host: 'http://127.0.0.1:1'}}, index: a}}\n  dest: {{index: b}}\n  suspend: true\n"
    );
    let (code, out, err) = kubectl(&["create", "-f", "-", &format!("--as={user}")], Some(&yaml));
    (code, format!("{out}{err}"))
}

#[tokio::test]
async fn an_edit_user_creates_remote_reindexes_only_when_aggregation_is_enabled() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-agg").await;
    let user = format!("editor-{}", std::process::id());
    let (code, out, err) = kubectl(
        &[
            "create",
            "rolebinding",
            "editor",
            "--clusterrole=edit",
            &format!("--user={user}"),
            "-n",
            &ns,
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");

    // The chart's defaults: read access aggregated into view (and so into edit), write access not.
    let release = Release::install(&ns, &ns, &[]);
    assert!(
        release
            .install_output
            .contains("rbac.aggregateToDefaultRoles=true"),
        "NOTES say how to opt in: {}",
        release.install_output
    );
    eventually_can(&user, "list", &ns, "yes").await;
    eventually_can(&user, "create", &ns, "no").await;
    let (code, out) = create_as(&user, &ns, "by-editor");
    assert_ne!(code, 0, "an editor created a RemoteReindex: {out}");
    assert!(out.contains("forbidden"), "{out}");

    // Opted in: the aggregation controller adds create to edit.
    let (code, out, err) = helm(&[
        "upgrade",
        &release.name,
        CHART,
        "-n",
        &ns,
        "--skip-crds",
        "--reuse-values",
        "--set",
        "rbac.aggregateToDefaultRoles=true",
    ]);
    assert_eq!(code, 0, "helm upgrade: {out}{err}");
    eventually_can(&user, "create", &ns, "yes").await;
    let (code, out) = create_as(&user, &ns, "by-editor");
    assert_eq!(code, 0, "the editor may create once aggregated: {out}");

    // And back: opting out removes the right again.
    let (code, out, err) = helm(&[
        "upgrade",
        &release.name,
        CHART,
        "-n",
        &ns,
        "--skip-crds",
        "--reuse-values",
        "--set",
        "rbac.aggregateToDefaultRoles=false",
    ]);
    assert_eq!(code, 0, "helm upgrade: {out}{err}");
    eventually_can(&user, "create", &ns, "no").await;
}
