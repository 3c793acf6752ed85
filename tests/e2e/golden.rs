//! Golden record of what the controllers write to `.status`: every status patch (and update)
//! the API server received for the scenarios below, as recorded by its audit log
//! (`scripts/control-plane.sh` records the request body of every write to a RemoteReindex or
//! Migration status), reduced to its shape: each field path with whether it was sent as `null`
//! (which clears the field in a merge patch) or with a value. A refactor that changes what is
//! sent (a typed patch struct that skips a `None` instead of sending `null`, a renamed key)
//! changes the shape and fails here.
//!
//! `RR_UPDATE_GOLDEN=1` rewrites `tests/golden/status-patches.txt` from the run.

use crate::controller::k8s::*;
use crate::harness::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/status-patches.txt"
);

/// Every `path: null|value` of `v` under `prefix` (array elements as `[]`).
fn shape(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                shape(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for x in a {
                shape(&format!("{prefix}[]"), x, out);
            }
        }
        Value::Null => {
            out.insert(format!("{prefix}: null"));
        }
        _ => {
            out.insert(format!("{prefix}: value"));
        }
    }
}

/// The shapes of every status write to `namespace`'s resources in the audit log, by scenario
/// (the resource's name without its suffix).
fn recorded(namespace: &str) -> BTreeSet<String> {
    let path = std::env::var("RR_KUBE_AUDIT_LOG").expect(
        "RR_KUBE_AUDIT_LOG: run through scripts/test.sh (its control plane records status writes)",
    );
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    let mut out = BTreeSet::new();
    for line in log.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let r = &e["objectRef"];
        if r["namespace"] != namespace || r["subresource"] != "status" {
            continue;
        }
        let (Some(resource), Some(verb)) = (r["resource"].as_str(), e["verb"].as_str()) else {
            continue;
        };
        // The scenario: the resource's name, or `mig-child` for the Migration's children
        // (named `mig-<index>`, and the index names are unique per run).
        let name = r["name"].as_str().unwrap_or_default();
        let scenario = if resource == "remotereindexes" && name.starts_with("mig-") {
            "mig-child"
        } else {
            name
        };
        let body = &e["requestObject"];
        shape(
            &format!("{resource} {scenario} {verb}"),
            &body["status"],
            &mut out,
        );
        if body.get("status").is_none() {
            shape(
                &format!("{resource} {scenario} {verb} (no status key)"),
                body,
                &mut out,
            );
        }
    }
    out
}

async fn wait_migration(client: &kube::Client, ns: &str, name: &str) -> Value {
    let api: kube::Api<remote_reindex::api::Migration> = kube::Api::namespaced(client.clone(), ns);
    eventually("the Migration to end", Duration::from_secs(240), || {
        let api = api.clone();
        async move {
            let m = api.get_opt(name).await.ok().flatten()?;
            let s = m.status?;
            s.phase
                .is_some_and(|p| p.is_terminal())
                .then(|| serde_json::to_value(&s).unwrap())
        }
    })
    .await
}

/// A copy that succeeds, one that fails at pre-flight, one suspended and resumed, and a
/// Migration of two indices: the status writes of all of them match the golden shapes.
#[tokio::test]
async fn the_status_patches_of_the_controllers_match_the_golden_record() {
    let client = client().await;
    crate::migration::apply_crds().await;
    let ns = namespace(&client, "rr-golden").await;
    let es = engine(EngineKind::Elasticsearch8);
    let os = engine(EngineKind::OpenSearch2);
    let p = unique_index("golden");
    let docs = |n: usize| -> Vec<Doc> {
        (0..n)
            .map(|i| Doc {
                id: format!("d{i}"),
                source: json!({"n": i}).to_string(),
                routing: None,
            })
            .collect()
    };
    load(es.url(), &format!("{p}-a"), &docs(600)).await;
    load(es.url(), &format!("{p}-b"), &docs(50)).await;
    let op = Operator::start(&ns, os.url(), &[]).await;

    create_reindex(
        &client,
        &ns,
        "copy",
        json!({
            "source": {"remote": {"host": es.url()}, "index": format!("{p}-a"), "size": 100},
            "dest": {"index": format!("{p}-copy")},
            "requestsPerSecond": 200,
        }),
    )
    .await;
    let done = wait_terminal(&client, &ns, "copy", Duration::from_secs(120)).await;
    assert_eq!(
        done.status.and_then(|s| s.phase),
        Some(remote_reindex::api::Phase::Succeeded)
    );
    create_reindex(
        &client,
        &ns,
        "missing",
        json!({
            "source": {"remote": {"host": es.url()}, "index": format!("{p}-absent")},
            "dest": {"index": format!("{p}-missing")},
        }),
    )
    .await;
    let failed = wait_terminal(&client, &ns, "missing", Duration::from_secs(120)).await;
    assert_eq!(
        failed.status.and_then(|s| s.phase),
        Some(remote_reindex::api::Phase::Failed)
    );
    let yaml = format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: mig\n  namespace: {ns}\nspec:\n  source:\n    remote:\n      host: {}\n  indices: [\"{p}-a\", \"{p}-b\"]\n  parallelism: 1\n  destIndex: \"copy-{{index}}\"\n",
        es.url()
    );
    let (code, out, err) = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert_eq!(code, 0, "{out}{err}");
    let mig = wait_migration(&client, &ns, "mig").await;
    assert_eq!(mig["phase"], "Succeeded", "{mig:#}");
    drop(op);
    // The audit log is written before the API server answers (mode blocking).
    let got = recorded(&ns);
    let text: String = got.iter().map(|l| format!("{l}\n")).collect();
    if std::env::var("RR_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(GOLDEN, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(GOLDEN).unwrap_or_default();
    let want: BTreeSet<String> = want.lines().map(str::to_string).collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let new: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && new.is_empty(),
        "status writes changed shape (RR_UPDATE_GOLDEN=1 rewrites {GOLDEN} when intended)\nno longer sent: {missing:#?}\nnew: {new:#?}"
    );
}
