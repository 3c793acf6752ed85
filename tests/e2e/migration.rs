//! `Migration`: many indices with their templates and aliases, one `RemoteReindex` child per
//! index, on the real kube-apiserver of `scripts/test.sh`, and locally with `run -f` / `plan -f`.
//!
//! Engines: the real Elasticsearch 7.17 (source) and OpenSearch 2.19 (destination) nodes that
//! `scripts/test.sh` shares between tests ([`clusters`]); every name a test creates starts with
//! its own prefix ([`unique_index`]) so tests do not see each other's indices, templates or
//! aliases.

use crate::controller::k8s::*;
use crate::harness::*;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use remote_reindex::api::{Migration, MigrationPhase, MigrationStatus, RemoteReindex};
use serde_json::{Value, json};
use std::time::Duration;

/// Source and destination of every test here, and a fresh name prefix.
fn clusters() -> (EngineRef, EngineRef, String) {
    (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
        unique_index("mig"),
    )
}

/// Documents `0..n` of index `tag`, with a `level` for the filtered alias.
fn docs(tag: &str, n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("{tag}-{i}"),
            source: json!({"n": i, "level": if i % 3 == 0 {"error"} else {"info"}, "msg": format!("{tag} {i}")}).to_string(),
            routing: None,
        })
        .collect()
}

/// How many times an Event of `reason` was recorded about `name` (Events of one reason and
/// related object are merged into a series with a count).
async fn event_count(client: &Client, ns: &str, name: &str, reason: &str) -> i32 {
    let list = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap();
    list.items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum()
}

/// Applies both CRDs.
pub(crate) async fn apply_crds() {
    apply_crd().await;
    crate::controller::k8s::apply_one_crd(
        concat!(env!("CARGO_MANIFEST_DIR"), "/crds/migration.yaml"),
        "crd/migrations.reindex.dev",
    )
    .await;
}

async fn put(base: &str, path: &str, body: Value) {
    let (s, v) = call("PUT", &format!("{base}/{path}"), Some(body)).await;
    assert!(s < 300, "PUT {path}: {s} {v}");
}

async fn post(base: &str, path: &str, body: Value) {
    let (s, v) = call("POST", &format!("{base}/{path}"), Some(body)).await;
    assert!(s < 300, "POST {path}: {s} {v}");
}

/// The Migration manifest.
fn migration_yaml(ns: &str, name: &str, source: &str, extra: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  source:\n    remote:\n      host: {source}\n{extra}"
    )
}

/// Polls the Migration's status until it is terminal, returning every status seen.
async fn status_history(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Vec<MigrationStatus> {
    let api: Api<Migration> = Api::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        if let Ok(Some(m)) = api.get_opt(name).await
            && let Some(s) = m.status
        {
            let done = s.phase.is_some_and(MigrationPhase::is_terminal);
            seen.push(s);
            if done {
                return seen;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Migration {name} not terminal: {:#?}",
            seen.last()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn condition<'a>(
    s: &'a MigrationStatus,
    t: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("no {t} in {s:#?}"))
}

/// Source: 8 `P-logs-2024-*`, 4 `P-orders-*`, an excluded `P-logs-2024-excluded`, an unmatched
/// index, templates (a component + composable pair for logs, a legacy one for orders) and aliases
/// (a filtered, a routed and a write alias).
async fn twelve_indices(src: &str, p: &str) {
    put(
        src,
        &format!("_component_template/{p}-ct-logs"),
        json!({"template": {"mappings": {"properties": {"level": {"type": "keyword"}}}}}),
    )
    .await;
    put(src, &format!("_index_template/{p}-logs-t"), json!({"index_patterns": [format!("{p}-logs-2024-*")], "priority": 7, "composed_of": [format!("{p}-ct-logs")], "template": {"settings": {"number_of_shards": 1}}})).await;
    put(src, &format!("_template/{p}-orders-legacy"), json!({"index_patterns": [format!("{p}-orders-*")], "order": 3, "mappings": {"properties": {"n": {"type": "long"}}}})).await;
    put(
        src,
        &format!("_index_template/{p}-unrelated"),
        json!({"index_patterns": [format!("{p}-zzz-*")], "priority": 1}),
    )
    .await;
    for i in 1..=8 {
        let name = format!("{p}-logs-2024-{i:02}");
        load(src, &name, &docs(&name, 100 * i)).await;
    }
    for i in 1..=4 {
        let name = format!("{p}-orders-{i}");
        load(src, &name, &docs(&name, 150 * i)).await;
    }
    load(src, &format!("{p}-logs-2024-excluded"), &docs("x", 10)).await;
    load(src, &format!("{p}-unmatched"), &docs("u", 10)).await;
    post(src, "_aliases", json!({"actions": [
        {"add": {"index": format!("{p}-logs-2024-01"), "alias": format!("{p}-errors"), "filter": {"term": {"level": "error"}}}},
        {"add": {"index": format!("{p}-logs-2024-02"), "alias": format!("{p}-errors"), "filter": {"term": {"level": "error"}}}},
        {"add": {"index": format!("{p}-orders-1"), "alias": format!("{p}-orders-r"), "routing": "1"}},
        {"add": {"index": format!("{p}-orders-1"), "alias": format!("{p}-orders-w"), "is_write_index": true}},
        {"add": {"index": format!("{p}-orders-2"), "alias": format!("{p}-orders-w"), "is_write_index": false}},
    ]})).await;
}

fn index_names(p: &str) -> Vec<String> {
    let mut v: Vec<String> = (1..=8).map(|i| format!("{p}-logs-2024-{i:02}")).collect();
    v.extend((1..=4).map(|i| format!("{p}-orders-{i}")));
    v
}

fn names_of(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn migration_copies_twelve_indices_with_aliases_and_templates_within_parallelism() {
    let client = client().await;
    apply_crds().await;
    let ns = namespace(&client, "rr-mig").await;
    let (src, dst, p) = clusters();
    twelve_indices(src.url(), &p).await;
    let extra = format!(
        "  indices: [\"{p}-logs-2024-*\", \"{p}-orders-*\"]\n  exclude: [\"{p}-logs-2024-excluded\"]\n  parallelism: 3\n  template:\n    source:\n      size: 50\n    requestsPerSecond: 400\n"
    );
    let yaml = migration_yaml(&ns, "mig", src.url(), &extra);

    // The plan first: it writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(&dir, "mig.yaml", &yaml);
    let (code, out, err) = run_cli(&[
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--dest-host",
        dst.url(),
        "-o",
        "json",
    ])
    .await;
    assert_eq!(code, 0, "plan: {out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let (code, text, err) = run_cli(&[
        "plan",
        "-f",
        file.to_str().unwrap(),
        "--dest-host",
        dst.url(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    eprintln!("{text}");
    assert!(
        text.contains("INDEX")
            && text.contains(&format!("{p}-logs-2024-08"))
            && text.contains("Nothing was written."),
        "{text}"
    );
    let (code, _) = call(
        "GET",
        &format!("{}/_index_template/{p}-logs-t", dst.url()),
        None,
    )
    .await;
    assert_eq!(code, 404, "plan wrote a template");
    let mut planned: Vec<String> = plan["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_str().unwrap().to_string())
        .collect();
    let sizes: Vec<u64> = plan["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap())
        .collect();
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "larger first: {planned:?} {sizes:?}"
    );
    planned.sort();
    let mut expected = index_names(&p);
    expected.sort();
    assert_eq!(planned, expected, "two patterns, one excluded");
    let plan_templates = names_of(&plan, "templates");
    assert_eq!(
        plan_templates,
        [
            format!("{p}-ct-logs"),
            format!("{p}-logs-t"),
            format!("{p}-orders-legacy")
        ]
    );
    let plan_aliases = names_of(&plan, "aliases");
    assert_eq!(
        plan_aliases,
        [
            format!("{p}-errors"),
            format!("{p}-orders-r"),
            format!("{p}-orders-w")
        ]
    );

    let _op = Operator::start(&ns, dst.url(), &[]).await;
    let (code, out, err) = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert_eq!(code, 0, "kubectl apply: {out}{err}");
    let history = status_history(&client, &ns, "mig", Duration::from_secs(300)).await;
    let max_running = history
        .iter()
        .filter_map(|s| s.indices.as_ref())
        .map(|i| i.running)
        .max()
        .unwrap_or(0);
    eprintln!(
        "statuses polled: {}, most indices running at once: {max_running}",
        history.len()
    );
    assert!(max_running <= 3, "parallelism 3 exceeded: {max_running}");
    assert!(
        max_running >= 2,
        "the children never overlapped: {max_running}"
    );
    let s = history.last().unwrap().clone();
    assert_eq!(s.phase, Some(MigrationPhase::Succeeded), "{s:#?}");
    assert_eq!(condition(&s, "Ready").status, "True");
    let counts = s.indices.clone().unwrap();
    assert_eq!(
        (
            counts.total,
            counts.succeeded,
            counts.failed,
            counts.summary.as_str()
        ),
        (12, 12, 0, "12/12")
    );
    let pr = s.progress.clone().unwrap();
    assert_eq!(pr.docs_copied, pr.docs_expected, "{pr:?}");
    assert_eq!(
        pr.docs_expected,
        (1..=8).map(|i| 100 * i).sum::<i64>() + (1..=4).map(|i| 150 * i).sum::<i64>()
    );

    // The plan matches what the run did.
    let run_pairs: Vec<(String, String)> = s
        .plan
        .iter()
        .map(|e| (e.index.clone(), e.dest_index.clone()))
        .collect();
    let plan_pairs: Vec<(String, String)> = plan["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_str().unwrap().to_string(),
                r["dest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(run_pairs, plan_pairs);
    let run_templates: Vec<String> = s.templates.iter().map(|t| t.name.clone()).collect();
    assert_eq!(run_templates, plan_templates);
    assert!(
        s.templates.iter().all(|t| t.state == "Created"),
        "{:?}",
        s.templates
    );
    let run_aliases: Vec<String> = s.aliases.iter().map(|a| a.name.clone()).collect();
    assert_eq!(run_aliases, plan_aliases);
    assert!(
        s.aliases.iter().all(|a| a.state == "Created"),
        "{:?}",
        s.aliases
    );

    // Every index equal, document by document.
    for i in index_names(&p) {
        assert_eq!(
            parsed(&all_docs(dst.url(), &i).await),
            parsed(&all_docs(src.url(), &i).await),
            "{i}"
        );
    }
    assert_eq!(
        call(
            "GET",
            &format!("{}/{p}-logs-2024-excluded", dst.url()),
            None
        )
        .await
        .0,
        404
    );
    // Every template and alias present on the destination.
    for path in [
        format!("_component_template/{p}-ct-logs"),
        format!("_index_template/{p}-logs-t"),
        format!("_template/{p}-orders-legacy"),
    ] {
        let (code, v) = call("GET", &format!("{}/{path}", dst.url()), None).await;
        assert_eq!(code, 200, "{path}: {v}");
    }
    assert_eq!(
        call(
            "GET",
            &format!("{}/_index_template/{p}-unrelated", dst.url()),
            None
        )
        .await
        .0,
        404
    );
    let (_, aliases) = call("GET", &format!("{}/{p}-*/_alias", dst.url()), None).await;
    let alias = |index: &str, name: &str| {
        aliases[format!("{p}-{index}")]["aliases"][format!("{p}-{name}")].clone()
    };
    assert_eq!(
        alias("logs-2024-01", "errors")["filter"],
        json!({"term": {"level": "error"}}),
        "{aliases}"
    );
    assert!(alias("logs-2024-02", "errors").is_object(), "{aliases}");
    assert_eq!(
        alias("orders-1", "orders-r")["index_routing"],
        "1",
        "{aliases}"
    );
    assert_eq!(
        alias("orders-1", "orders-w")["is_write_index"],
        true,
        "{aliases}"
    );
    assert!(alias("orders-2", "orders-w").is_object(), "{aliases}");
    let (_, errors) = call("GET", &format!("{}/{p}-errors/_count", dst.url()), None).await;
    let (_, src_errors) = call("GET", &format!("{}/{p}-errors/_count", src.url()), None).await;
    assert_eq!(
        errors["count"], src_errors["count"],
        "the filtered alias filters"
    );

    // Children: stable names, labels, owner references.
    let children = Api::<RemoteReindex>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("reindex.dev/migration=mig"))
        .await
        .unwrap();
    assert_eq!(children.items.len(), 12);
    for c in &children.items {
        let owner = &c.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Migration", "mig", Some(true))
        );
        assert!(c.metadata.name.as_ref().unwrap().starts_with("mig-"));
    }
    for (r, n) in [
        ("IndexStarted", 12),
        ("IndexSucceeded", 12),
        ("AliasCreated", 3),
    ] {
        assert_eq!(event_count(&client, &ns, "mig", r).await, n, "{r} Events");
    }
    let (code, out, err) = kubectl(&["get", "migration", "-n", &ns], None);
    assert_eq!(code, 0, "{err}");
    eprintln!("{out}");
    let header = out.lines().next().unwrap_or_default();
    for col in ["PHASE", "INDICES", "DOCS", "PROGRESS", "ETA", "AGE"] {
        assert!(header.contains(col), "{out}");
    }
    assert!(
        out.contains("Succeeded") && out.contains("12/12") && out.contains("100%"),
        "{out}"
    );
}

#[tokio::test]
async fn a_failing_index_fails_the_migration_and_its_alias_is_incomplete() {
    let client = client().await;
    apply_crds().await;
    let ns = namespace(&client, "rr-migfail").await;
    let (src, dst, p) = clusters();
    for i in 1..=3 {
        let name = format!("{p}-a-{i}");
        load(src.url(), &name, &docs(&name, 200)).await;
    }
    post(
        src.url(),
        "_aliases",
        json!({"actions": [
            {"add": {"index": format!("{p}-a-1"), "alias": format!("{p}-both")}},
            {"add": {"index": format!("{p}-a-2"), "alias": format!("{p}-both")}},
            {"add": {"index": format!("{p}-a-3"), "alias": format!("{p}-three")}},
        ]}),
    )
    .await;
    // A conflicting destination: `a-2` exists there with other documents.
    let a2 = format!("{p}-a-2");
    load(dst.url(), &a2, &docs("other", 5)).await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    let yaml = migration_yaml(
        &ns,
        "fail",
        src.url(),
        &format!("  indices: [\"{p}-a-*\"]\n"),
    );
    let (code, out, err) = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert_eq!(code, 0, "{out}{err}");
    let s = status_history(&client, &ns, "fail", Duration::from_secs(180))
        .await
        .pop()
        .unwrap();
    assert_eq!(s.phase, Some(MigrationPhase::Failed), "{s:#?}");
    let degraded = condition(&s, "Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "IndicesFailed"),
        "{degraded:?}"
    );
    assert!(degraded.message.contains(&a2), "{degraded:?}");
    let counts = s.indices.clone().unwrap();
    assert_eq!((counts.succeeded, counts.failed), (2, 1));
    assert_eq!(s.failed.len(), 1);
    assert_eq!(
        (s.failed[0].index.as_str(), s.failed[0].reason.as_str()),
        (a2.as_str(), "DestinationNotEmpty")
    );
    for i in [format!("{p}-a-1"), format!("{p}-a-3")] {
        assert_eq!(
            parsed(&all_docs(dst.url(), &i).await),
            parsed(&all_docs(src.url(), &i).await),
            "{i}"
        );
    }
    assert_eq!(
        count(dst.url(), &a2).await,
        5,
        "the conflicting index is left alone"
    );
    let both = s
        .aliases
        .iter()
        .find(|a| a.name == format!("{p}-both"))
        .unwrap();
    assert_eq!(both.state, "AliasIncomplete", "{both:?}");
    assert!(
        both.message.as_deref().unwrap_or_default().contains(&a2),
        "{both:?}"
    );
    let three = s
        .aliases
        .iter()
        .find(|a| a.name == format!("{p}-three"))
        .unwrap();
    assert_eq!(three.state, "Created", "{three:?}");
    let (_, aliases) = call("GET", &format!("{}/{p}-*/_alias", dst.url()), None).await;
    assert!(
        aliases[format!("{p}-a-3")]["aliases"][format!("{p}-three")].is_object(),
        "{aliases}"
    );
    assert!(
        !aliases.to_string().contains(&format!("{p}-both")),
        "an alias over an unverified copy: {aliases}"
    );
    let reasons: Vec<String> = events(&client, &ns, "fail")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    for r in ["IndexFailed", "AliasIncomplete", "IndicesFailed"] {
        assert!(reasons.iter().any(|x| x == r), "no {r} Event: {reasons:?}");
    }
}

#[tokio::test]
async fn deleting_a_migration_mid_copy_restores_every_destination() {
    let client = client().await;
    apply_crds().await;
    let ns = namespace(&client, "rr-migdel").await;
    let (src, dst, p) = clusters();
    let names: Vec<String> = (1..=3).map(|i| format!("{p}-d-{i}")).collect();
    for n in &names {
        load(src.url(), n, &docs(n, 3000)).await;
        create_index(
            dst.url(),
            n,
            json!({"settings": {"index": {"number_of_replicas": 2, "refresh_interval": "7s"}}}),
        )
        .await;
    }
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    // 100 documents/s per child over 3,000: each copy takes 30 s.
    let extra = format!(
        "  indices: [\"{p}-d-*\"]\n  parallelism: 3\n  template:\n    source:\n      size: 50\n    requestsPerSecond: 100\n"
    );
    let (code, out, err) = kubectl(
        &["apply", "-f", "-"],
        Some(&migration_yaml(&ns, "del", src.url(), &extra)),
    );
    assert_eq!(code, 0, "{out}{err}");
    let children: Api<RemoteReindex> = Api::namespaced(client.clone(), &ns);
    eventually("three children copying", Duration::from_secs(120), || {
        let children = children.clone();
        async move {
            let list = children.list(&ListParams::default()).await.ok()?;
            let copying = list
                .items
                .iter()
                .filter(|c| {
                    c.status
                        .as_ref()
                        .and_then(|s| s.progress.as_ref())
                        .is_some_and(|p| p.written > 0)
                })
                .count();
            (copying == 3).then_some(())
        }
    })
    .await;
    for n in &names {
        assert_eq!(
            settings(dst.url(), n).await.get("index.refresh_interval"),
            Some(&json!("-1")),
            "{n} tuned while copying"
        );
    }
    Api::<Migration>::namespaced(client.clone(), &ns)
        .delete("del", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the Migration and its children to be gone",
        Duration::from_secs(120),
        || {
            let (children, api) = (
                children.clone(),
                Api::<Migration>::namespaced(client.clone(), &ns),
            );
            async move {
                let left = children
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .len();
                (left == 0 && matches!(api.get_opt("del").await, Ok(None))).then_some(())
            }
        },
    )
    .await;
    for n in &names {
        let s = settings(dst.url(), n).await;
        assert_eq!(
            s.get("index.number_of_replicas"),
            Some(&json!("2")),
            "{n}: {s:?}"
        );
        assert_eq!(
            s.get("index.refresh_interval"),
            Some(&json!("7s")),
            "{n}: {s:?}"
        );
        assert!(count(dst.url(), n).await < 3000, "{n}: the copy went on");
    }
}

#[tokio::test]
async fn run_f_runs_a_migration_locally_with_progress_lines_and_exit_codes() {
    let (src, dst, p) = clusters();
    for (n, size) in [("r-1", 1500), ("r-2", 300), ("r-3", 300)] {
        let n = format!("{p}-{n}");
        load(src.url(), &n, &docs(&n, size)).await;
    }
    post(
        src.url(),
        "_aliases",
        json!({"actions": [
            {"add": {"index": format!("{p}-r-2"), "alias": format!("{p}-small")}},
            {"add": {"index": format!("{p}-r-3"), "alias": format!("{p}-small")}},
        ]}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // 200 documents/s: r-1 takes over 5 s, long enough for progress lines.
    let yaml = migration_yaml(
        "default",
        "local",
        src.url(),
        &format!(
            "  indices: [\"{p}-r-*\"]\n  destIndex: \"new-{{index}}\"\n  template:\n    source:\n      size: 100\n    requestsPerSecond: 200\n"
        ),
    );
    let file = manifest(&dir, "local.yaml", &yaml);
    let (code, out, err) = run_cli(&[
        "run",
        "-f",
        file.to_str().unwrap(),
        "--dest-host",
        dst.url(),
    ])
    .await;
    eprintln!("{err}{out}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Succeeded: 3/3 indices"), "{out}");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("  {p}-r-1: ")) && l.contains("docs/s")),
        "a per-index line: {err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("total: ")),
        "a total line: {err}"
    );
    assert!(err.contains(&format!("alias {p}-small: Created")), "{err}");
    for n in ["r-1", "r-2", "r-3"] {
        assert_eq!(
            parsed(&all_docs(dst.url(), &format!("new-{p}-{n}")).await),
            parsed(&all_docs(src.url(), &format!("{p}-{n}")).await),
            "{n}"
        );
    }
    // Again: every destination now holds documents, so each index fails; exit code 1.
    let (code, out, err) = run_cli(&[
        "run",
        "-f",
        file.to_str().unwrap(),
        "--dest-host",
        dst.url(),
    ])
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("{p}-r-1: Failed [DestinationNotEmpty]")),
        "{err}"
    );
    assert!(
        err.contains(&format!("alias {p}-small: AliasIncomplete")),
        "{err}"
    );
    // failurePolicy: Stop, one at a time: the first failure stops the rest from starting.
    let stop = manifest(
        &dir,
        "stop.yaml",
        &yaml.replace(
            "  template:",
            "  parallelism: 1\n  failurePolicy: Stop\n  template:",
        ),
    );
    let (code, out, err) = run_cli(&[
        "run",
        "-f",
        stop.to_str().unwrap(),
        "--dest-host",
        dst.url(),
    ])
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.matches(": started →").count(), 1, "{err}");
    assert!(out.contains("Failed: 0/3 indices"), "{out}");
    // Invalid input: exit code 2.
    let bad = manifest(&dir, "bad.yaml", &yaml.replace("indices:", "indexes:"));
    let (code, _, err) =
        run_cli(&["run", "-f", bad.to_str().unwrap(), "--dest-host", dst.url()]).await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn live_migration_syncs_every_index_then_cuts_over_on_one_trigger() {
    let client = client().await;
    apply_crds().await;
    let ns = namespace(&client, "rr-miglive").await;
    let (src, dst, p) = clusters();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let stamped = |tag: &str, range: std::ops::Range<usize>, v: &str| -> Vec<Doc> {
        range
            .map(|i| Doc {
                id: format!("{tag}-{i}"),
                source: json!({"n": i, "v": v, "updated_ms": now_ms()}).to_string(),
                routing: None,
            })
            .collect()
    };
    let names: Vec<String> = (1..=3).map(|i| format!("{p}-live-{i}")).collect();
    for n in &names {
        put(
            src.url(),
            n,
            json!({"mappings": {"properties": {"updated_ms": {"type": "long"}}}}),
        )
        .await;
        load(src.url(), n, &stamped(n, 0..300, "first")).await;
    }
    post(
        src.url(),
        "_aliases",
        json!({"actions": names.iter().map(|n| json!({"add": {"index": n, "alias": format!("{p}-live-all")}})).collect::<Vec<_>>()}),
    )
    .await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    // parallelism 1: an index that is catching up must not hold the only slot.
    let extra = format!(
        "  indices: [\"{p}-live-*\"]\n  parallelism: 1\n  template:\n    catchUp: {{field: updated_ms, overlap: 2s, interval: 1s, maxLag: 30s}}\n  cutover: {{trigger: false}}\n"
    );
    let (code, out, err) = kubectl(
        &["apply", "-f", "-"],
        Some(&migration_yaml(&ns, "live", src.url(), &extra)),
    );
    assert_eq!(code, 0, "{out}{err}");
    let api: Api<Migration> = Api::namespaced(client.clone(), &ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let s = api.get("live").await.unwrap().status.unwrap_or_default();
        if s.indices.as_ref().is_some_and(|c| c.syncing == 3) {
            assert!(s.aliases.iter().all(|a| a.state == "Waiting"), "{s:#?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline
                && !s.phase.is_some_and(MigrationPhase::is_terminal),
            "not every index is syncing: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Writes after the initial copies: updates in one index, new documents in another.
    load(src.url(), &names[0], &stamped(&names[0], 0..5, "updated")).await;
    load(src.url(), &names[1], &stamped(&names[1], 300..310, "new")).await;
    let (code, out, err) = kubectl(
        &[
            "patch",
            "migration",
            "live",
            "-n",
            &ns,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"cutover":{"trigger":true}}}"#,
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let s = status_history(&client, &ns, "live", Duration::from_secs(300))
        .await
        .pop()
        .unwrap();
    assert_eq!(s.phase, Some(MigrationPhase::Succeeded), "{s:#?}");
    for n in &names {
        assert_eq!(
            parsed(&all_docs(dst.url(), n).await),
            parsed(&all_docs(src.url(), n).await),
            "{n}"
        );
    }
    let children: Api<RemoteReindex> = Api::namespaced(client.clone(), &ns);
    for c in children.list(&ListParams::default()).await.unwrap() {
        let st = c.status.unwrap_or_default();
        assert!(
            st.conditions
                .iter()
                .any(|c| c.type_ == "CutOver" && c.status == "True"),
            "{st:#?}"
        );
    }
    let (_, aliases) = call("GET", &format!("{}/_alias/{p}-live-all", dst.url()), None).await;
    let mut on: Vec<&String> = aliases.as_object().unwrap().keys().collect();
    on.sort();
    assert_eq!(on, names.iter().collect::<Vec<_>>(), "{aliases}");
}
