//! `spec.verify`: the checksum comparison of both indices, through `run -f` and through the
//! library, on real servers that re-serialise `_source` differently (noida-db → osmem-server).

use crate::harness::*;
use remote_reindex::search::{ClientOptions, SearchClient};
use remote_reindex::verify::{Side, checksum};
use serde_json::json;

fn yaml(src: &str, dst: &str, spec_extra: &str, dest_extra: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: v}}\nspec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: src\n    slices: 2\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: dst\n{dest_extra}{spec_extra}"
    )
}

/// Documents whose text a server is likely to re-serialise: escapes, `\/`, floats, exponents,
/// big integers, routing.
fn escaped_docs() -> Vec<Doc> {
    let sources = [
        r#"{"s":"caf\u00e9 \/ \"q\"","z":1,"a":{"y":[1.5,-0.25,3e2],"x":null}}"#,
        r#"{ "big" : 12345678901234567891 , "big2":12345678901234567890, "f": 0.30000000000000004 }"#,
        r#"{"nested":[[1,[2,[3,{"k":"\ud83d\ude00"}]]],[]],"t":true,"e":""}"#,
        r#"{"ctl":"line\nbreak\ttab \u0001","num":-0.0,"exp":1E+2}"#,
    ];
    let mut docs: Vec<Doc> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| Doc {
            id: format!("esc-{i}"),
            source: s.to_string(),
            routing: (i % 2 == 1).then(|| format!("r{i}")),
        })
        .collect();
    docs.extend((0..20).map(|i| Doc {
        id: format!("plain-{i}"),
        source: json!({"n": i, "tag": "plain"}).to_string(),
        routing: None,
    }));
    docs
}

fn side(which: &'static str, url: &str, index: &str, slices: u32) -> Side {
    Side {
        which,
        client: SearchClient::new(ClientOptions::new(url)).unwrap(),
        index: index.into(),
        query: None,
        slices,
        keep_alive: "1m".into(),
    }
}

/// Seconds in a `... in 1.2s ...` phrase after `after`.
fn seconds_after(text: &str, after: &str) -> Option<f64> {
    let rest = &text[text.find(after)? + after.len()..];
    let start = rest.find(" in ")? + 4;
    let end = start + rest[start..].find('s')?;
    rest[start..end].parse().ok()
}

#[tokio::test]
async fn checksum_verifies_a_hostile_copy_and_names_tampered_documents() {
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    let mut docs = hostile_docs(20_000);
    for (i, d) in docs.iter_mut().enumerate().filter(|(i, _)| i % 7 == 0) {
        d.routing = Some(format!("r{}", i % 3));
    }
    docs.extend(escaped_docs());
    load(src.url(), "src", &docs).await;
    let n = docs.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(
        &dir,
        "r.yaml",
        &yaml(src.url(), dst.url(), "  verify: Checksum\n", ""),
    );
    let (code, out, err) = run_cli(&["run", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains(&format!(
            "checksum verified: source and destination hold the same {n} documents"
        )),
        "{out}"
    );
    if let (Some(copy), Some(check)) = (
        seconds_after(&out, "documents expected ("),
        seconds_after(&out, "_source; compared"),
    ) {
        eprintln!(
            "checksum cost: copy {copy:.1}s, checksum {check:.1}s, ratio {:.2} ({n} docs, debug build)",
            check / copy
        );
    }

    // Tamper with the destination: change one document, delete one, add one.
    let base = dst.url();
    let (s, v) = call(
        "PUT",
        &format!("{base}/dst/_doc/plain-3?refresh=true"),
        Some(json!({"n": 3, "tag": "changed"})),
    )
    .await;
    assert!(s < 300, "{s} {v}");
    let (s, v) = call(
        "DELETE",
        &format!("{base}/dst/_doc/plain-5?refresh=true"),
        None,
    )
    .await;
    assert!(s < 300, "{s} {v}");
    let (s, v) = call(
        "PUT",
        &format!("{base}/dst/_doc/intruder?refresh=true"),
        Some(json!({"n": -1})),
    )
    .await;
    assert!(s < 300, "{s} {v}");

    // The library, with another slicing than the copy's: order does not matter.
    let r = checksum(
        &side("source", src.url(), "src", 3),
        &side("destination", base, "dst", 1),
    )
    .await
    .unwrap();
    assert!(!r.matched);
    assert_eq!((r.expected, r.found), (n, n));
    assert_eq!((r.missing, r.unexpected, r.differing), (1, 1, 1), "{r:?}");
    let mut ids = r.sample_ids.clone();
    ids.sort();
    assert_eq!(ids, ["intruder", "plain-3", "plain-5"]);
    assert_eq!(r.unresolved_buckets, 0);

    // Through the workflow: `create` re-adds the deleted document and leaves the changed one.
    let file = manifest(
        &dir,
        "again.yaml",
        &yaml(
            src.url(),
            base,
            "  verify: Checksum\n  conflicts: proceed\n",
            "    opType: create\n    allowExisting: true\n",
        ),
    );
    let (code, out, err) = run_cli(&["run", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("error [ChecksumMismatch]"), "{err}");
    assert!(
        err.contains(&format!(
            "the source holds {n} documents, the destination {}; 0 missing, 1 unexpected, 1 differing; e.g. intruder, plain-3",
            n + 1
        )),
        "{err}"
    );
}

#[tokio::test]
async fn verify_none_says_not_verified_and_checksum_refuses_a_pipeline() {
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &escaped_docs()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(
        &dir,
        "n.yaml",
        &yaml(src.url(), dst.url(), "  verify: None\n", ""),
    );
    let (code, out, err) = run_cli(&["run", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("not verified (spec.verify: None)"), "{out}");
    assert!(!out.contains("count verified"), "{out}");

    let file = manifest(
        &dir,
        "p.yaml",
        &yaml(
            src.url(),
            dst.url(),
            "  verify: Checksum\n",
            "    pipeline: strip\n",
        ),
    );
    let (code, _, err) = run_cli(&["run", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("spec.verify") && err.contains("ingest pipeline"),
        "{err}"
    );
}
