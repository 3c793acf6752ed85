//! Elasticsearch 6.x as a destination, on a REAL 6.8 node (the shared engine `scripts/test.sh`
//! starts): the index is created typed (`_doc`), the marker goes to the typed mapping's `_meta`,
//! every bulk action carries `_type`, and the settings are restored. Elasticsearch 5.x stays a
//! source only (`versions.rs`, through `fake_version`).

use crate::harness::*;
use crate::tls::{HEAD, tail};
use serde_json::{Value, json};

fn typed(mapping: Value) -> Value {
    json!({"settings": {"number_of_shards": 2, "number_of_replicas": 0}, "mappings": {"_doc": mapping}})
}

fn lean() -> Value {
    json!({"dynamic": false, "properties": {"n": {"type": "long"}, "tag": {"type": "keyword"}}})
}

async fn run(src: &str, sidx: &str, dst: &str, didx: &str, dest_extra: &str) -> String {
    let yaml = format!(
        "{HEAD}spec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: {sidx}\n    size: 70\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: {didx}\n{dest_extra}"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &yaml);
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {}", tail(&err));
    out
}

/// The destination's typed mapping (`mappings._doc`), and its flat settings.
async fn typed_mapping_and_settings(base: &str, index: &str) -> (Value, Value) {
    let (s, m) = call("GET", &format!("{base}/{index}/_mapping"), None).await;
    assert_eq!(s, 200, "{m}");
    let (s, st) = call(
        "GET",
        &format!("{base}/{index}/_settings?flat_settings=true"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{st}");
    let mapping = m[index]["mappings"]["_doc"].clone();
    assert!(mapping.is_object(), "not typed `_doc`: {m}");
    (mapping, st[index]["settings"].clone())
}

#[tokio::test]
async fn a_real_elasticsearch_6_destination_gets_a_typed_index_and_its_settings_back() {
    let es6 = engine(EngineKind::Elasticsearch6);
    let docs = hostile_docs(300);

    // Typed 6.8 source → a new index on 6.8: created typed from the source's mapping.
    let (sidx, didx) = (unique_index("es6-src"), unique_index("es6-dst"));
    create_index(es6.url(), &sidx, typed(lean())).await;
    load_typed(es6.url(), &sidx, "_doc", &docs).await;
    let out = run(es6.url(), &sidx, es6.url(), &didx, "").await;
    assert!(
        out.contains("copied 300 of 300 documents")
            && out.contains("(0 failed")
            && out.contains("count verified"),
        "{out}"
    );
    assert_eq!(
        parsed(&all_docs(es6.url(), &sidx).await),
        parsed(&all_docs(es6.url(), &didx).await)
    );
    let (mapping, settings) = typed_mapping_and_settings(es6.url(), &didx).await;
    assert_eq!(mapping["properties"]["tag"]["type"], "keyword", "{mapping}");
    assert!(
        mapping["_meta"]["remote_reindex"].is_null(),
        "the marker is removed after the copy: {mapping}"
    );
    assert_eq!(settings["index.number_of_shards"], "2", "{settings}");
    assert!(
        settings.get("index.refresh_interval").is_none(),
        "refresh_interval back to the default: {settings}"
    );
    // 6.x refuses `null` for number_of_replicas: the setting's default is sent instead.
    assert_eq!(settings["index.number_of_replicas"], "1", "{settings}");

    // An existing typed 6.8 index with its own settings (allowExisting): the marker is written to
    // and removed from the typed mapping, and both settings come back.
    let existing = unique_index("es6-existing");
    let mut body = typed(lean());
    body["settings"]["refresh_interval"] = json!("7s");
    create_index(es6.url(), &existing, body).await;
    let out = run(
        es6.url(),
        &sidx,
        es6.url(),
        &existing,
        "    allowExisting: true\n",
    )
    .await;
    assert!(
        out.contains("copied 300 of 300 documents") && out.contains("(0 failed"),
        "{out}"
    );
    assert_eq!(count(es6.url(), &existing).await, 300);
    let (mapping, settings) = typed_mapping_and_settings(es6.url(), &existing).await;
    assert!(mapping["_meta"]["remote_reindex"].is_null(), "{mapping}");
    assert_eq!(settings["index.refresh_interval"], "7s", "{settings}");
    assert_eq!(settings["index.number_of_replicas"], "0", "{settings}");

    // An untyped source (osmem-server, OpenSearch 3 API) → 6.8: its mapping is nested under `_doc`.
    let os = osmem();
    create_index(os.url(), "src", lean_mapping()).await;
    load(os.url(), "src", &docs).await;
    let cross = unique_index("es6-from-opensearch");
    let out = run(os.url(), "src", es6.url(), &cross, "").await;
    assert!(out.contains("count verified"), "{out}");
    assert_eq!(
        parsed(&all_docs(os.url(), "src").await),
        parsed(&all_docs(es6.url(), &cross).await)
    );
    let (mapping, _) = typed_mapping_and_settings(es6.url(), &cross).await;
    assert_eq!(mapping["properties"]["n"]["type"], "long", "{mapping}");

    for i in [&sidx, &didx, &existing, &cross] {
        delete_index(es6.url(), i).await;
    }
}
