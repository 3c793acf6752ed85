//! The chart's monitoring: the Grafana dashboard and the PrometheusRule render with `helm
//! template`, the dashboard is valid JSON, every metric name in its queries and in the alert
//! rules is one the real operator exports on `/metrics` (read while a copy runs and after a
//! success and a failure), and the rules pass `promtool check rules` and `promtool test rules`
//! (tests/e2e/promtool/rules-test.yaml).

use crate::controller::k8s::*;
use crate::harness::*;
use remote_reindex::api::Phase;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/charts/remote-reindex-operator"
);
const RULES_TEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/promtool/rules-test.yaml"
);

/// `helm template rr CHART -n reindex-system` with `args`: the rendered objects.
fn render(args: &[&str]) -> Vec<Value> {
    let out = Command::new("helm")
        .args(["template", "rr", CHART, "-n", "reindex-system"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("helm is on PATH (scripts/test.sh puts it there)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_multiple::<Value>(&stdout)
        .expect("rendered YAML")
        .into_iter()
        .filter(|o| !o.is_null())
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The metric names a PromQL expression selects: identifiers outside strings, label matchers,
/// ranges and grouping clauses that are neither functions, keywords nor numbers/durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 12] = [
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
    ];
    // Drop "..." strings, {...} matchers and [...] ranges.
    let mut plain = String::new();
    let (mut in_str, mut depth) = (false, 0);
    for c in expr.chars() {
        match c {
            '"' if depth == 0 => in_str = !in_str,
            _ if in_str => {}
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let chars: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':' | '$'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let rest = chars[i..].iter().collect::<String>();
            let rest = rest.trim_start();
            // `sum by (le) (…)`: an aggregation with its grouping before the parenthesis.
            let grouped = ["by", "without"].iter().any(|k| {
                rest.strip_prefix(k)
                    .is_some_and(|r| r.trim_start().starts_with('('))
            });
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&word.as_str())
            {
                skip_group = true; // the label list in parentheses that follows
            } else if rest.starts_with('(')
                || grouped
                || KEYWORDS.contains(&word.as_str())
                || word.starts_with('$')
            {
                // a function or aggregation, a keyword, a Grafana variable
            } else {
                names.insert(word);
            }
            continue;
        }
        if c == '(' && skip_group {
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            skip_group = false;
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_are_found_and_the_rest_is_not() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(remote_reindex_bulk_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval]))) and on (name) x offset 15m > 1e3"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["remote_reindex_bulk_duration_seconds_bucket", "x"]
    );
}

/// The sample names in a `/metrics` text.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every PromQL expression in a Grafana dashboard (panel targets and template variables).
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            out.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        // `label_values(METRIC, label)`: the metric is the first argument.
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .expect("a label_values query");
            out.push(inner.split(',').next().unwrap().to_string());
        }
    }
    out
}

/// The operator's real `/metrics`, read while a throttled copy runs, again after it succeeded
/// and another copy failed, and while a live copy catches up: the union of sample names.
async fn real_metric_names() -> BTreeSet<String> {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-chart-metrics").await;
    let (src, dst) = (noida(), noida());
    let docs: Vec<Doc> = (0..2_000)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "updated_ms": i}).to_string(),
            routing: None,
        })
        .collect();
    load(src.url(), "logs", &docs).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs", "size": 200},
        "dest": {"index": "logs-copy", "bulkBytes": "16kb"},
        // The rate gauge exists from the second progress sample (4 s into the copy) to its end:
        // at 250 documents per second the copy lasts about 8 s, so it is there for about 4 s
        // (at 500 it lasted about 4 s and the gauge was seen or not by a hair).
        "requestsPerSecond": 250,
    });
    create_reindex(&client, &ns, "logs", spec).await;
    let during = eventually("the per-copy gauges", Duration::from_secs(30), || {
        let op = &op;
        async move {
            let m = op.metrics().await;
            m.contains("remote_reindex_active_copy_documents_per_second{")
                .then_some(m)
        }
    })
    .await;
    let obj = wait_terminal(&client, &ns, "logs", Duration::from_secs(60)).await;
    assert_eq!(obj.status.and_then(|s| s.phase), Some(Phase::Succeeded));
    let spec = json!({"source": {"remote": {"host": src.url()}, "index": "missing"}, "dest": {"index": "missing-copy"}});
    create_reindex(&client, &ns, "missing", spec).await;
    let obj = wait_terminal(&client, &ns, "missing", Duration::from_secs(60)).await;
    assert_eq!(obj.status.and_then(|s| s.phase), Some(Phase::Failed));
    let after = eventually("the failure counted", Duration::from_secs(10), || {
        let op = &op;
        async move {
            let m = op.metrics().await;
            m.contains("remote_reindex_copy_failures_total{")
                .then_some(m)
        }
    })
    .await;
    // A live copy (spec.catchUp) for the catch-up lag gauge.
    let spec = json!({
        "source": {"remote": {"host": src.url()}, "index": "logs"},
        "dest": {"index": "logs-live"},
        "catchUp": {"field": "updated_ms", "overlap": "1s", "interval": "1s", "maxLag": "30s"},
    });
    create_reindex(&client, &ns, "live", spec).await;
    let live = eventually("the catch-up lag gauge", Duration::from_secs(120), || {
        let op = &op;
        async move {
            let m = op.metrics().await;
            m.contains("remote_reindex_active_copy_catchup_lag_seconds{")
                .then_some(m)
        }
    })
    .await;
    let mut names = sample_names(&during);
    names.extend(sample_names(&after));
    names.extend(sample_names(&live));
    names
}

#[tokio::test]
async fn the_dashboard_and_the_alert_rules_use_only_real_metrics_and_pass_promtool() {
    // Off by default.
    let defaults = render(&["--api-versions", "monitoring.coreos.com/v1"]);
    assert!(of_kind(&defaults, "PrometheusRule").is_empty());
    assert!(
        !of_kind(&defaults, "ConfigMap")
            .iter()
            .any(|c| c["metadata"]["labels"]["grafana_dashboard"] == "1")
    );
    let objects = render(&[
        "--api-versions",
        "monitoring.coreos.com/v1",
        "--set",
        "grafana.dashboard.enabled=true",
        "--set",
        "prometheusRule.enabled=true",
    ]);
    let real = real_metric_names().await;

    // The dashboard: one ConfigMap with the sidecar's label, holding the chart's JSON file.
    let maps = of_kind(&objects, "ConfigMap");
    assert_eq!(maps.len(), 1, "{maps:?}");
    assert_eq!(maps[0]["metadata"]["labels"]["grafana_dashboard"], "1");
    let text = maps[0]["data"]["remote-reindex.json"]
        .as_str()
        .expect("the dashboard JSON");
    let dashboard: Value = serde_json::from_str(text).expect("the dashboard is JSON");
    let file = std::fs::read_to_string(format!("{CHART}/dashboards/remote-reindex.json")).unwrap();
    assert_eq!(dashboard, serde_json::from_str::<Value>(&file).unwrap());
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for t in [
        "Copies by phase",
        "Documents/s",
        "Bytes/s sent to destinations",
        "ETA per running copy",
        "Failed copies by reason",
        "Retries/s",
        "Slice restarts",
        "Catch-up lag per live copy",
    ] {
        assert!(titles.contains(&t), "no panel {t:?} in {titles:?}");
    }
    let ids: BTreeSet<i64> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), titles.len(), "panel ids are unique");
    for q in dashboard_queries(&dashboard) {
        let names = metric_names(&q);
        assert!(!names.is_empty(), "no metric in {q}");
        for n in names {
            assert!(
                real.contains(&n),
                "dashboard query uses {n}, which the operator does not export: {q}\nexported: {real:?}"
            );
        }
    }

    // The rules: every metric is the operator's (or Prometheus's own `up`); promtool checks them
    // and runs their unit tests.
    let rules = of_kind(&objects, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    let groups = &rules[0]["spec"]["groups"];
    for r in groups[0]["rules"].as_array().unwrap() {
        let expr = r["expr"].as_str().unwrap();
        for n in metric_names(expr) {
            assert!(
                n == "up" || real.contains(&n),
                "rule {} uses {n}, which the operator does not export: {expr}",
                r["alert"]
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(
        &file,
        serde_json::to_string(&json!({ "groups": groups })).unwrap(),
    )
    .unwrap();
    let test = dir.path().join("rules-test.yaml");
    std::fs::copy(RULES_TEST, &test).unwrap();
    for args in [["check", "rules"], ["test", "rules"]] {
        let path = if args[0] == "check" { &file } else { &test };
        let out = Command::new("promtool")
            .args(args)
            .arg(path)
            .output()
            .expect("promtool is installed (Debian's prometheus package, scripts/install-test-deps.sh --k8s)");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
