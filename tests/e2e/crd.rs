//! The CRDs on a current Kubernetes (the shared kube-apiserver v1.37 of `scripts/test.sh`): the
//! API server compiles every CEL rule when a CRD is created, so a CRD generated from the Rust types
//! that a current server refuses fails here, not in a user's `helm install`. Every rule is
//! exercised (one object refused with the rule's message, one accepted), and what a current
//! cluster gives users works: `kubectl explain` (OpenAPI v3), strict field validation, server-side
//! apply with two field managers, and `kubectl get reindex -w`.

use crate::controller::k8s::*;
use crate::harness::*;
use crate::migration::apply_crds;
use remote_reindex::api::Phase;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every CRD of `crds/`.
const CRDS: [&str; 3] = ["remotereindex", "reindexpolicy", "migration"];

fn crd_yaml(name: &str) -> Value {
    let path = format!("{}/crds/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the CRD parses")
}

/// The `x-kubernetes-validations` of a schema: (dotted path below the root, rule, message).
fn cel_rules(schema: &Value, path: &str, out: &mut Vec<(String, String, Option<String>)>) {
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for r in rules {
            out.push((
                path.to_string(),
                r["rule"].as_str().unwrap_or_default().to_string(),
                r["message"].as_str().map(str::to_string),
            ));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            cel_rules(v, &p, out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if schema[key].is_object() {
            cel_rules(&schema[key], &format!("{path}[]"), out);
        }
    }
}

/// `kubectl apply [--dry-run=server] -f -` of `obj`: (exit code, stdout + stderr).
fn apply(obj: &Value, dry_run: bool) -> (i32, String) {
    let mut args = vec!["apply", "-f", "-"];
    if dry_run {
        args.push("--dry-run=server");
    }
    let (code, out, err) = kubectl(&args, Some(&obj.to_string()));
    (code, format!("{out}{err}"))
}

fn reindex(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "reindex.dev/v1alpha1",
        "kind": "RemoteReindex",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

fn base_spec() -> Value {
    json!({
        "source": {"remote": {"host": "http://127.0.0.1:9200"}, "index": "logs", "query": {"term": {"a": 1}}},
        "dest": {"index": "logs-copy"},
        "suspend": true,
    })
}

/// `v` with the member at `pointer` set to `value` (created in its parent object if absent).
fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .insert(key.to_string(), value);
    v
}

/// Every CEL rule of every CRD has a message, and the rules are exactly the ones exercised below
/// (a new rule without a test fails here).
#[test]
fn every_cel_rule_has_a_message_and_a_test() {
    let mut found = BTreeSet::new();
    for name in CRDS {
        let crd = crd_yaml(name);
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let mut rules = Vec::new();
            cel_rules(&version["schema"]["openAPIV3Schema"], "", &mut rules);
            for (path, rule, message) in rules {
                assert!(
                    message.as_deref().is_some_and(|m| !m.is_empty()),
                    "{name}: the rule `{rule}` at `{path}` has no message (users would see `failed rule: ...`)"
                );
                found.insert(format!("{name}:{path}"));
            }
        }
    }
    let exercised: BTreeSet<String> = [
        "remotereindex:spec",
        "remotereindex:spec.source.index",
        "remotereindex:spec.source.query",
        "remotereindex:spec.dest.index",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        found, exercised,
        "the CEL rules in crds/ and the ones a_current_api_server_enforces_every_cel_rule exercises differ"
    );
}

#[tokio::test]
async fn a_current_api_server_enforces_every_cel_rule() {
    let client = client().await;
    apply_crds().await;
    let ns = namespace(&client, "rr-cel").await;

    // spec: a copy onto itself (same host, same index) is refused; another index passes, and
    // so does the same index on another cluster.
    let same = with(
        with(base_spec(), "/dest/index", json!("logs")),
        "/dest/remote",
        json!({"host": "http://127.0.0.1:9200"}),
    );
    let (code, out) = apply(&reindex(&ns, "self", same.clone()), true);
    assert_ne!(code, 0, "a copy onto itself was accepted: {out}");
    assert!(
        out.contains("dest.index is the source index on the same cluster"),
        "the refusal names the rule's message: {out}"
    );
    let (code, out) = apply(&reindex(&ns, "self", base_spec()), true);
    assert_eq!(code, 0, "another index: {out}");
    let elsewhere = with(
        same,
        "/dest/remote",
        json!({"host": "http://127.0.0.2:9200"}),
    );
    let (code, out) = apply(&reindex(&ns, "self", elsewhere), true);
    assert_eq!(code, 0, "the same index on another cluster: {out}");

    // The immutable fields: an object is created, then each field is changed (refused with its
    // message) while a mutable field changes freely.
    let (code, out) = apply(&reindex(&ns, "immutable", base_spec()), false);
    assert_eq!(code, 0, "create: {out}");
    for (pointer, value, message) in [
        ("/source/index", json!("other"), "source.index is immutable"),
        (
            "/source/query",
            json!({"term": {"a": 2}}),
            "source.query is immutable",
        ),
        (
            "/dest/index",
            json!("other-copy"),
            "dest.index is immutable",
        ),
    ] {
        let changed = with(base_spec(), pointer, value);
        let (code, out) = apply(&reindex(&ns, "immutable", changed), true);
        assert_ne!(code, 0, "{pointer} changed: {out}");
        assert!(out.contains(message), "{pointer}: {out}");
    }
    let mutable = with(base_spec(), "/requestsPerSecond", json!(500));
    let (code, out) = apply(&reindex(&ns, "immutable", mutable), true);
    assert_eq!(code, 0, "a mutable field: {out}");
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_docs() {
    let _ = client().await;
    apply_crds().await;
    let out = eventually(
        "kubectl explain to know the CRD (OpenAPI v3 is published shortly after Established)",
        Duration::from_secs(60),
        || async {
            let (code, out, _) = kubectl(&["explain", "reindex.spec.source.remote"], None);
            (code == 0).then_some(out)
        },
    )
    .await;
    eprintln!("$ kubectl explain reindex.spec.source.remote\n{out}");
    for want in [
        "GROUP:      reindex.dev",
        "KIND:       RemoteReindex",
        "VERSION:    v1alpha1",
        "FIELDS:",
        "host\t<string> -required-",
        "basicAuth\t<Object>",
    ] {
        assert!(out.contains(want), "no `{want}` in:\n{out}");
    }
    let (code, out, err) = kubectl(&["explain", "migration.spec"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("FIELDS:"), "{out}");
}

#[tokio::test]
async fn a_misspelt_field_is_refused_by_strict_field_validation() {
    let client = client().await;
    apply_crds().await;
    let ns = namespace(&client, "rr-strict").await;
    let mut spec = base_spec();
    let source = spec["source"].as_object_mut().unwrap();
    let index = source.remove("index").unwrap();
    source.insert("indx".into(), index);
    source.insert("index".into(), json!("logs"));
    let (code, out) = apply(&reindex(&ns, "typo", spec), false);
    assert_ne!(code, 0, "a misspelt field was accepted: {out}");
    assert!(
        out.contains(r#"unknown field "spec.source.indx""#),
        "the refusal names the field: {out}"
    );
    // Free-form fields keep unknown keys (a query is any JSON object).
    let spec = with(
        base_spec(),
        "/source/query",
        json!({"bool": {"filter": [{"term": {"x": 1}}]}}),
    );
    let (code, out) = apply(&reindex(&ns, "free", spec), true);
    assert_eq!(code, 0, "{out}");
}

/// `kubectl apply --server-side --field-manager=M` of `obj`: (exit code, output).
fn server_side_apply(obj: &Value, manager: &str, force: bool) -> (i32, String) {
    let manager = format!("--field-manager={manager}");
    let mut args = vec!["apply", "--server-side", manager.as_str(), "-f", "-"];
    if force {
        args.push("--force-conflicts");
    }
    let (code, out, err) = kubectl(&args, Some(&obj.to_string()));
    (code, format!("{out}{err}"))
}

#[tokio::test]
async fn server_side_apply_keeps_each_managers_fields() {
    let client = client().await;
    apply_crds().await;
    let ns = namespace(&client, "rr-ssa").await;
    // The platform team owns the copy; an on-call engineer owns the throttle.
    let (code, out) = server_side_apply(&reindex(&ns, "shared", base_spec()), "platform", false);
    assert_eq!(code, 0, "{out}");
    let throttle = json!({
        "apiVersion": "reindex.dev/v1alpha1",
        "kind": "RemoteReindex",
        "metadata": {"name": "shared", "namespace": ns},
        "spec": {
            "source": {"remote": {"host": "http://127.0.0.1:9200"}, "index": "logs"},
            "dest": {"index": "logs-copy"},
            "requestsPerSecond": 250,
        },
    });
    let (code, out) = server_side_apply(&throttle, "oncall", false);
    assert_eq!(
        code, 0,
        "fields both set to the same value are shared: {out}"
    );
    // The platform team applies its manifest again: the on-call throttle stays.
    let (code, out) = server_side_apply(&reindex(&ns, "shared", base_spec()), "platform", false);
    assert_eq!(code, 0, "{out}");
    let (_, rps, _) = kubectl(
        &[
            "get",
            "reindex",
            "shared",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.requestsPerSecond}",
        ],
        None,
    );
    assert_eq!(rps, "250", "the other manager's field was kept");
    // The on-call engineer changes a field the platform team owns: a conflict naming it.
    let unsuspend = with(throttle.clone(), "/spec/suspend", json!(false));
    let (code, out) = server_side_apply(&unsuspend, "oncall", false);
    assert_ne!(
        code, 0,
        "applying a field another manager owns must conflict: {out}"
    );
    assert!(
        out.contains("conflict") && out.contains(".spec.suspend") && out.contains("platform"),
        "the conflict names the field and its manager: {out}"
    );
    // --force-conflicts takes it over.
    let (code, out) = server_side_apply(&unsuspend, "oncall", true);
    assert_eq!(code, 0, "{out}");
    let (_, managed, _) = kubectl(
        &[
            "get",
            "reindex",
            "shared",
            "-n",
            &ns,
            "--show-managed-fields",
            "-o",
            "json",
        ],
        None,
    );
    let managed: Value = serde_json::from_str(&managed).unwrap();
    let oncall = managed["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "oncall")
        .expect("the oncall manager's entry")
        .to_string();
    assert!(
        oncall.contains("f:suspend"),
        "oncall owns suspend now: {oncall}"
    );
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

#[tokio::test]
async fn kubectl_get_watch_shows_the_progress() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-watch").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(6_000)).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let mut watch = Command::new("kubectl")
        .args(["get", "reindex", "-n", &ns, "-w"])
        .env("KUBECONFIG", kubeconfig())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.contains("Succeeded") || line.contains("Failed");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    // Throttled so that the copy takes several status updates.
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 200},
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 1000,
    });
    create_reindex(&client, &ns, "watched", spec).await;
    let obj = wait_terminal(&client, &ns, "watched", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    let reader = &lines;
    eventually(
        "the watch to print the final line",
        Duration::from_secs(30),
        || async move { reader.is_finished().then_some(()) },
    )
    .await;
    let _ = watch.kill();
    let _ = watch.wait();
    let lines = lines.join().unwrap();
    eprintln!("$ kubectl get reindex -n {ns} -w\n{}", lines.join("\n"));
    // The header, at least one line while copying (a progress below 100%), and the final line.
    assert!(lines[0].starts_with("NAME"), "{lines:?}");
    let copying = lines
        .iter()
        .filter(|l| l.contains("Copying") && l.contains("/6000 (") && !l.contains("(100%)"))
        .count();
    assert!(copying >= 1, "no progress line while copying: {lines:?}");
    let last = lines.last().unwrap();
    assert!(
        last.contains("Succeeded") && last.contains("6000/6000 (100%)"),
        "{lines:?}"
    );
}
