//! Every `examples/*.yaml` is valid where it will be used: the API server accepts it
//! (`kubectl apply --dry-run=server` into a test namespace, the CRD installed), the local mode's
//! strict loader and the operator's validation accept it, and together the examples show every
//! authentication mode the CRD offers.

use crate::controller::k8s::*;
use remote_reindex::api::validate::{Policy, validate};
use remote_reindex::api::{Endpoint, RemoteReindex};
use remote_reindex::cli::manifest::Manifests;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `examples/*.yaml` (or `$RR_EXAMPLES_DIR/*.yaml`, to try other files with this test).
fn example_files() -> Vec<PathBuf> {
    let dir = std::env::var_os("RR_EXAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples/*.yaml");
    files
}

/// The authentication modes of an endpoint (`spec.source.remote` / `spec.dest.remote`).
fn auth_modes(ep: &Value, into: &mut BTreeSet<String>) {
    for (k, v) in ep.as_object().into_iter().flatten() {
        if k == "tls" {
            for (t, _) in v.as_object().into_iter().flatten() {
                match t.as_str() {
                    "caSecretRef" | "caConfigMapRef" => into.insert("tls.ca".into()),
                    "clientCertSecretRef" => into.insert("tls.clientCert".into()),
                    _ => false,
                };
            }
        } else if v.is_object() && k != "proxy" {
            into.insert(k.clone());
        }
    }
}

/// The authentication modes the CRD offers: the object-valued fields of an endpoint other than
/// `tls`/`proxy`, plus a private CA (`tls.ca`: Secret or ConfigMap) and a client certificate
/// (`tls.clientCert`).
fn crd_auth_modes() -> BTreeSet<String> {
    let crd = serde_json::to_value(<RemoteReindex as kube::CustomResourceExt>::crd()).unwrap();
    let ep = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["source"]["properties"]["remote"]["properties"];
    let mut modes = BTreeSet::new();
    for (k, v) in ep.as_object().unwrap() {
        let is_object = v["type"] == "object" && v.get("properties").is_some();
        if k == "tls" {
            for (t, mode) in [
                ("caSecretRef", "tls.ca"),
                ("clientCertSecretRef", "tls.clientCert"),
            ] {
                assert!(v["properties"].get(t).is_some(), "tls.{t} in the CRD");
                modes.insert(mode.to_string());
            }
        } else if is_object && k != "proxy" {
            modes.insert(k.clone());
        }
    }
    modes
}

#[tokio::test]
async fn every_example_is_accepted_by_the_api_server_and_the_validation() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-examples").await;
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for file in example_files() {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let docs: Vec<Value> = match serde_saphyr::from_multiple(&text) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: invalid YAML: {e}"));
                continue;
            }
        };
        let mut items: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
        let reindexes: Vec<&Value> = items
            .iter()
            .filter(|d| d["kind"] == "RemoteReindex")
            .collect();
        if reindexes.is_empty() {
            failures.push(format!("{name}: no RemoteReindex"));
        }
        for secret in items.iter().filter(|d| d["kind"] == "Secret") {
            if secret["metadata"]["labels"]["reindex.dev/use"] != "true" {
                failures.push(format!(
                    "{name}: Secret `{}` lacks the label reindex.dev/use: \"true\" the operator requires",
                    secret["metadata"]["name"].as_str().unwrap_or_default()
                ));
            }
        }
        for r in &reindexes {
            auth_modes(&r["spec"]["source"]["remote"], &mut covered);
            auth_modes(&r["spec"]["dest"]["remote"], &mut covered);
        }

        // The local mode's loader (strict: unknown fields are errors) and the operator's checks.
        if reindexes.len() == 1 {
            match Manifests::load(&[&file]) {
                Ok(m) => {
                    let dest = Endpoint {
                        host: "http://localhost:9200".into(),
                        ..Default::default()
                    };
                    if let Err(errs) = validate(&m.reindex.spec, Some(&dest), &Policy::default()) {
                        let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                        failures.push(format!("{name}: invalid: {}", errs.join("; ")));
                    }
                }
                Err(e) => failures.push(format!("{name}: remote-reindex run -f refuses it: {e}")),
            }
        }

        // The API server: the objects as written, in the test namespace.
        for i in &mut items {
            if let Some(m) = i["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
        let (code, out, err) = kubectl(
            &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
            Some(&list),
        );
        if code != 0 {
            failures.push(format!(
                "{name}: kubectl apply --dry-run=server: {out}{err}"
            ));
        } else {
            eprintln!("{name}: {}", out.trim().replace('\n', "; "));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let missing: Vec<String> = crd_auth_modes().difference(&covered).cloned().collect();
    assert!(
        missing.is_empty(),
        "no example shows these authentication modes: {missing:?} (covered: {covered:?})"
    );
}
