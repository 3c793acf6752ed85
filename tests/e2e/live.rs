//! Live migration on a real kube-apiserver with real search servers: a writer keeps indexing new
//! documents and updating old ones into the source during the initial copy and the catch-up
//! rounds; the cutover moves an alias while a reader polls it.
//!
//! The servers are named in one place per test (`osmem()`, `noida()`), so a test moves to a real
//! engine by changing that line.

use crate::controller::k8s::*;
use crate::harness::*;
use remote_reindex::api::{Phase, RemoteReindexStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the writer stamps documents: a `date` field or a `long` of epoch milliseconds.
#[derive(Clone, Copy)]
enum Stamp {
    Date,
    Millis,
}

impl Stamp {
    fn field(self) -> &'static str {
        match self {
            Stamp::Date => "@timestamp",
            Stamp::Millis => "updated_ms",
        }
    }

    fn mapping(self) -> Value {
        let ty = match self {
            Stamp::Date => "date",
            Stamp::Millis => "long",
        };
        json!({"mappings": {"properties": {self.field(): {"type": ty}, "n": {"type": "long"}, "v": {"type": "long"}}}})
    }

    fn value(self) -> Value {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        match self {
            Stamp::Date => json!(
                k8s_openapi::jiff::Timestamp::from_millisecond(ms)
                    .unwrap()
                    .to_string()
            ),
            Stamp::Millis => json!(ms),
        }
    }

    fn doc(self, n: u64, v: u64) -> String {
        json!({self.field(): self.value(), "n": n, "v": v, "msg": format!("document {n} version {v}")})
            .to_string()
    }
}

/// Loads `n` documents `d0..` stamped now.
async fn preload(base: &str, index: &str, stamp: Stamp, n: u64) {
    let docs: Vec<Doc> = (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: stamp.doc(i, 0),
            routing: None,
        })
        .collect();
    load(base, index, &docs).await;
}

/// The writer stops after this many documents at the latest.
const MAX_WRITES: u64 = 100_000;

/// A writer at a bounded steady rate: every 50 ms a `_bulk` of new documents (`w0..`) and
/// updates of random older ones. Keeps what the source acknowledged, by id.
struct Writer {
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    sent: Arc<AtomicU64>,
    blocked: Arc<AtomicU64>,
    other_errors: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<u64>,
}

impl Writer {
    fn start(
        base: &str,
        index: &str,
        stamp: Stamp,
        preloaded: u64,
        per_second: u64,
        limit: Duration,
    ) -> Writer {
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let blocked = Arc::new(AtomicU64::new(0));
        let other_errors = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sent_total = Arc::new(AtomicU64::new(0));
        let (base, index) = (base.to_string(), index.to_string());
        let handle = tokio::spawn({
            let (acked, blocked, other_errors, stop, sent_total) = (
                acked.clone(),
                blocked.clone(),
                other_errors.clone(),
                stop.clone(),
                sent_total.clone(),
            );
            async move {
                let per_tick = (per_second / 20).max(2);
                let started = Instant::now();
                let (mut new, mut version, mut sent) = (0u64, 1u64, 0u64);
                while !stop.load(Ordering::SeqCst) && started.elapsed() < limit && sent < MAX_WRITES
                {
                    let tick = Instant::now();
                    let mut body = String::new();
                    let mut ids = Vec::new();
                    for k in 0..per_tick {
                        let (id, n) = if k % 2 == 0 {
                            new += 1;
                            (format!("w{new}"), preloaded + new)
                        } else {
                            let n = rand::random_range(0..preloaded);
                            (format!("d{n}"), n)
                        };
                        version += 1;
                        let src = stamp.doc(n, version);
                        body.push_str(&json!({"index": {"_index": index, "_id": id}}).to_string());
                        body.push('\n');
                        body.push_str(&src);
                        body.push('\n');
                        ids.push((id, src));
                    }
                    let resp = http()
                        .post(format!("{base}/_bulk"))
                        .header("Content-Type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await;
                    sent += ids.len() as u64;
                    sent_total.store(sent, Ordering::SeqCst);
                    let v: Value = match resp {
                        Ok(r) => r.json().await.unwrap_or(Value::Null),
                        Err(_) => Value::Null,
                    };
                    match v["items"].as_array() {
                        Some(items) if items.len() == ids.len() => {
                            let mut a = acked.lock().unwrap();
                            for (item, (id, src)) in items.iter().zip(ids) {
                                let status = item["index"]["status"].as_u64().unwrap_or(0);
                                match status {
                                    200 | 201 => {
                                        a.insert(id, src);
                                    }
                                    403 => {
                                        blocked.fetch_add(1, Ordering::SeqCst);
                                    }
                                    _ => {
                                        other_errors.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                            }
                        }
                        _ => {
                            other_errors.fetch_add(ids.len() as u64, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50).saturating_sub(tick.elapsed()))
                        .await;
                }
                sent
            }
        });
        Writer {
            acked,
            sent: sent_total,
            blocked,
            other_errors,
            stop,
            handle,
        }
    }

    /// Waits until the writer has sent `n` documents (it runs at the pace the source allows).
    async fn wait_sent(&self, n: u64) {
        eventually(
            "the writer to send its documents",
            Duration::from_secs(600),
            || async { (self.sent.load(Ordering::SeqCst) >= n).then_some(()) },
        )
        .await
    }

    /// Stops the writer; returns the documents it sent.
    async fn stop(self) -> (u64, BTreeMap<String, String>, u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        let sent = self.handle.await.unwrap();
        let acked = self.acked.lock().unwrap().clone();
        (
            sent,
            acked,
            self.blocked.load(Ordering::SeqCst),
            self.other_errors.load(Ordering::SeqCst),
        )
    }
}

/// What a reader polling an alias saw.
#[derive(Debug, Default)]
struct ReaderLog {
    ok: u64,
    errors: Vec<String>,
    empty: u64,
    max_gap: Duration,
    /// Time between the last answer from the old index and the first from the new one.
    switch_window: Option<Duration>,
}

/// Polls `GET alias/_search` every 10 ms until `stop`, noting which index answered.
fn reader(
    base: &str,
    alias: &str,
    old: &str,
    new: &str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<ReaderLog> {
    let url = format!("{base}/{alias}/_search");
    let (old, new) = (old.to_string(), new.to_string());
    tokio::spawn(async move {
        let mut log = ReaderLog::default();
        let mut last_ok = Instant::now();
        let (mut last_old, mut first_new) = (None, None);
        while !stop.load(Ordering::SeqCst) {
            let r = http()
                .post(&url)
                .json(&json!({"size": 1, "query": {"match_all": {}}}))
                .send()
                .await;
            let now = Instant::now();
            match r {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    let total = v["hits"]["total"]["value"].as_u64().unwrap_or(0);
                    let index = v["hits"]["hits"][0]["_index"].as_str().unwrap_or("");
                    if total == 0 {
                        log.empty += 1;
                    } else {
                        log.ok += 1;
                        log.max_gap = log.max_gap.max(now - last_ok);
                        last_ok = now;
                        if index == old {
                            last_old = Some(now);
                        } else if index == new && first_new.is_none() {
                            first_new = Some(now);
                        }
                    }
                }
                Ok(r) => log.errors.push(format!("HTTP {}", r.status())),
                Err(e) => log.errors.push(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let (Some(o), Some(n)) = (last_old, first_new) {
            log.switch_window = Some(n.saturating_duration_since(o));
        }
        log
    })
}

fn synced(s: &RemoteReindexStatus) -> bool {
    s.phase == Some(Phase::Syncing)
        && s.conditions
            .iter()
            .any(|c| c.type_ == "Synced" && c.status == "True")
}

/// The lag gauge of `name` in a metrics text, if present.
fn lag_metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("remote_reindex_active_copy_catchup_lag_seconds")
                && l.contains(&format!("name=\"{name}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Every acknowledged write is in `docs` with the acknowledged content (a later write to the
/// same id may only have been acknowledged later, so the last acknowledged version wins).
fn assert_acknowledged_present(acked: &BTreeMap<String, String>, docs: &BTreeMap<String, String>) {
    let mut missing = Vec::new();
    for (id, src) in acked {
        let want: Value = serde_json::from_str(src).unwrap();
        match docs
            .get(id)
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
        {
            Some(got) if got == want => {}
            other => missing.push(format!("{id}: want {want}, got {other:?}")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged writes missing or stale in the destination, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Index and alias names of one cutover test.
struct Names {
    source: String,
    old: String,
    new: String,
    alias: String,
}

impl Names {
    /// Names no other test on a shared engine uses.
    fn unique() -> Names {
        Names {
            source: unique_index("orders"),
            old: unique_index("orders-v1"),
            new: unique_index("orders-v2"),
            alias: unique_index("orders-live"),
        }
    }
}

#[tokio::test]
async fn live_catch_up_then_cutover_moves_the_alias_without_a_gap() {
    // A real OpenSearch 2 source (the imitation osmem-server's point-in-time searches took minutes
    // on a loaded machine and timed the test out); noida-db as the destination, an imitation
    // peer that honours refresh, so the reader sees the destination only after the cutover's
    // restore + refresh.
    let (src, dst) = (engine(EngineKind::OpenSearch2), noida());
    alias_cutover("rr-live", src.url(), dst.url(), &Names::unique()).await;
}

#[tokio::test]
async fn live_real_engines_opensearch_2_to_elasticsearch_7() {
    let (src, dst) = (
        engine(EngineKind::OpenSearch2),
        engine(EngineKind::Elasticsearch7),
    );
    alias_cutover("rr-live-real", src.url(), dst.url(), &Names::unique()).await;
}

/// A writer writes during the initial copy and the rounds; once synced it stops, the cutover is
/// triggered, and a reader polls the alias through the move.
async fn alias_cutover(prefix: &str, src: &str, dst: &str, n: &Names) {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, prefix).await;
    let stamp = Stamp::Date;
    const PRELOADED: u64 = 10_000;
    create_index(src, &n.source, stamp.mapping()).await;
    preload(src, &n.source, stamp, PRELOADED).await;
    // Readers use `orders-live`, which points at an older index on the destination.
    create_index(dst, &n.old, json!({})).await;
    preload(dst, &n.old, stamp, 10).await;
    let (s, v) = call(
        "POST",
        &format!("{dst}/_aliases"),
        Some(json!({"actions": [{"add": {"index": n.old, "alias": n.alias}}]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let writer = Writer::start(
        src,
        &n.source,
        stamp,
        PRELOADED,
        200,
        Duration::from_secs(600),
    );
    let op = Operator::start(&ns, dst, &[]).await;
    create_reindex(
        &client,
        &ns,
        "orders",
        json!({
            "source": {"remote": {"host": src}, "index": n.source, "size": 500},
            "dest": {"index": n.new},
            // Slow enough that the writer writes during the initial copy.
            "requestsPerSecond": 2000,
            "catchUp": {"field": "@timestamp", "overlap": "5s", "interval": "2s", "maxLag": "10s"},
            // verify defaults to Checksum: every document's id, routing and _source.
            "cutover": {"trigger": false, "aliases": [n.alias]},
        }),
    )
    .await;
    wait_status(
        &client,
        &ns,
        "orders",
        "Syncing with Synced=True after two rounds",
        Duration::from_secs(600),
        |s| synced(s) && s.catch_up.as_ref().is_some_and(|c| c.rounds >= 2),
    )
    .await;
    // Rounds keep up with a writer that keeps writing (at whatever pace the source allows).
    writer.wait_sent(1000).await;
    let obj = wait_status(
        &client,
        &ns,
        "orders",
        "two more rounds while writing",
        Duration::from_secs(600),
        |s| synced(s) && s.catch_up.as_ref().is_some_and(|c| c.rounds >= 4),
    )
    .await;
    let cu = obj.status.unwrap().catch_up.unwrap();
    let lag_during = cu.last_round.clone().unwrap();
    let mark_while_writing = cu
        .high_water_mark_millis
        .expect("a high-water mark in milliseconds while syncing");
    eprintln!("catch-up while writing: {cu:?}");
    assert!(
        cu.high_water_mark.as_deref().unwrap_or("").contains('T'),
        "{cu:?}"
    );
    let metrics = op.metrics().await;
    let lag = lag_metric(&metrics, "orders").expect("lag gauge while syncing");
    assert!(lag < 10.0, "lag {lag}s is not under maxLag");
    assert!(
        metrics.contains("remote_reindex_catchup_rounds_total"),
        "{metrics}"
    );
    let (code, out, err) = kubectl(&["get", "reindex", "-n", &ns], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().next().unwrap_or("").contains("LAG"), "{out}");
    assert!(out.contains("Syncing"), "{out}");

    let (sent, acked, blocked, other) = writer.stop().await;
    assert_eq!((blocked, other), (0, 0), "the writer failed writes");
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reading = reader(dst, &n.alias, &n.old, &n.new, reader_stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    patch_spec(
        &client,
        &ns,
        "orders",
        json!({"cutover": {"trigger": true}}),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "orders", Duration::from_secs(600)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    reader_stop.store(true, Ordering::SeqCst);
    let log = reading.await.unwrap();
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    let cut = condition(&s, "CutOver");
    assert_eq!(
        (cut.status.as_str(), cut.reason.as_str()),
        ("True", "CutOver")
    );
    assert!(cut.message.contains("lag"), "{cut:?}");
    assert_eq!(condition(&s, "Ready").reason, "CutOver");
    let cu = s.catch_up.clone().unwrap();
    assert!(cu.cut_over_at.is_some(), "{cu:?}");

    let source = all_docs(src, &n.source).await;
    let dest = all_docs(dst, &n.new).await;
    assert_eq!(
        parsed(&dest),
        parsed(&source),
        "destination differs from the source"
    );
    assert_acknowledged_present(&acked, &dest);
    // The final round may read what was written (or updated) since the previous round's high-water
    // mark less the 5 s overlap; that mark is at least the one seen while writing, so the source's
    // documents stamped from that mark less 5 s bound it. A full re-copy reads every document.
    let last = cu.last_round.clone().unwrap();
    let (code, window) = call(
        "POST",
        &format!("{src}/{}/_count", n.source),
        Some(json!({"query": {"range": {"@timestamp": {
            "gte": mark_while_writing - 5_000, "format": "epoch_millis"}}}})),
    )
    .await;
    assert_eq!(code, 200, "{window}");
    let window = window["count"].as_u64().unwrap();
    assert!(
        window < source.len() as u64,
        "every source document is stamped after the mark less the overlap: the bound cannot tell a full re-copy ({window} of {})",
        source.len()
    );
    assert!(
        last.documents as u64 <= window,
        "the final round copied {} of {} documents, more than the {window} stamped since the high-water mark less the overlap: a hidden full re-copy",
        last.documents,
        source.len()
    );
    let (_, aliases) = call("GET", &format!("{dst}/_alias/{}", n.alias), None).await;
    assert_eq!(
        aliases.as_object().unwrap().keys().collect::<Vec<_>>(),
        [&n.new],
        "{aliases}"
    );
    let dsettings = settings(dst, &n.new).await;
    assert_ne!(
        dsettings.get("index.refresh_interval"),
        Some(&json!("-1")),
        "{dsettings:?}"
    );
    assert!(
        log.errors.is_empty() && log.empty == 0,
        "the reader saw errors or empty results: {log:?}"
    );
    assert!(
        log.switch_window.is_some(),
        "the reader never saw the switch: {log:?}"
    );
    eprintln!(
        "LIVE: {} docs in source, writer sent {sent}; lag while writing {} ({}s, {} docs/round); rounds {}; final round {} docs, lag {}; reader {} answers, max gap {:?}, switch window {:?}",
        source.len(),
        lag_during.lag,
        lag_during.lag_seconds,
        lag_during.documents,
        cu.rounds,
        last.documents,
        last.lag,
        log.ok,
        log.max_gap,
        log.switch_window
    );
}

#[tokio::test]
async fn live_cutover_with_write_block_keeps_every_acknowledged_write() {
    // noida-db makes writes searchable only at its refresh: rounds rely on the overlap.
    let (src, dst) = (noida(), noida());
    let names = Names {
        source: "events".into(),
        old: String::new(),
        new: "events-v2".into(),
        alias: "events-live".into(),
    };
    write_blocked_cutover("rr-live-block", src.url(), dst.url(), &names).await;
}

#[tokio::test]
async fn live_real_engines_write_block_opensearch_2_to_elasticsearch_7() {
    let (src, dst) = (
        engine(EngineKind::OpenSearch2),
        engine(EngineKind::Elasticsearch7),
    );
    write_blocked_cutover("rr-live-block-real", src.url(), dst.url(), &Names::unique()).await;
}

/// The writer keeps writing through a cutover that blocks writes to the source: it gets
/// blocked errors, and every write the source acknowledged is in the destination.
async fn write_blocked_cutover(prefix: &str, src: &str, dst: &str, n: &Names) {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, prefix).await;
    let stamp = Stamp::Millis;
    const PRELOADED: u64 = 5_000;
    create_index(src, &n.source, stamp.mapping()).await;
    preload(src, &n.source, stamp, PRELOADED).await;
    let writer = Writer::start(
        src,
        &n.source,
        stamp,
        PRELOADED,
        200,
        Duration::from_secs(600),
    );
    let _op = Operator::start(&ns, dst, &[]).await;
    create_reindex(
        &client,
        &ns,
        "events",
        json!({
            "source": {"remote": {"host": src}, "index": n.source, "size": 500},
            "dest": {"index": n.new},
            "requestsPerSecond": 2000,
            "catchUp": {"field": "updated_ms", "overlap": "5s", "interval": "1s", "maxLag": "10s"},
            "cutover": {"aliases": [n.alias], "writeBlockSource": true},
        }),
    )
    .await;
    wait_status(
        &client,
        &ns,
        "events",
        "Syncing with Synced=True",
        Duration::from_secs(600),
        synced,
    )
    .await;
    writer.wait_sent(600).await;
    // The writer keeps going through the cutover.
    patch_spec(
        &client,
        &ns,
        "events",
        json!({"cutover": {"trigger": true}}),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "events", Duration::from_secs(600)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sent, acked, blocked, other) = writer.stop().await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(condition(&s, "CutOver").status, "True");
    assert!(blocked > 0, "the writer was never blocked (sent {sent})");
    assert_eq!(other, 0, "the writer saw errors other than the block");
    assert_eq!(
        settings(src, &n.source).await.get("index.blocks.write"),
        Some(&json!("true")),
        "the source keeps its write block after a successful cutover"
    );
    refresh(src, &n.source).await;
    let dest = all_docs(dst, &n.new).await;
    assert_acknowledged_present(&acked, &dest);
    assert_eq!(parsed(&dest), parsed(&all_docs(src, &n.source).await));
    let (_, aliases) = call("GET", &format!("{dst}/_alias/{}", n.alias), None).await;
    assert!(aliases.get(&n.new).is_some(), "{aliases}");
    eprintln!(
        "LIVE-BLOCK: writer sent {sent}, {} acknowledged ids, {blocked} blocked; {:?}",
        acked.len(),
        s.catch_up
    );
}

#[tokio::test]
async fn live_catch_up_refuses_op_type_create() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-live-invalid").await;
    let (src, dst) = (osmem(), osmem());
    create_index(src.url(), "a", Stamp::Date.mapping()).await;
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    create_reindex(
        &client,
        &ns,
        "a",
        json!({
            "source": {"remote": {"host": src.url()}, "index": "a"},
            "dest": {"index": "b", "opType": "create"},
            "catchUp": {"field": "@timestamp"},
        }),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "a", Duration::from_secs(60)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Failed));
    let ready = condition(&s, "Ready");
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(ready.message.contains("spec.dest.opType"), "{ready:?}");
}

#[tokio::test]
async fn live_run_f_catches_up_and_cuts_over_behind_a_write_block() {
    let (src, dst) = (noida(), noida());
    let stamp = Stamp::Millis;
    const PRELOADED: u64 = 3_000;
    create_index(src.url(), "clicks", stamp.mapping()).await;
    preload(src.url(), "clicks", stamp, PRELOADED).await;
    let writer = Writer::start(
        src.url(),
        "clicks",
        stamp,
        PRELOADED,
        100,
        Duration::from_secs(600),
    );
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "live.yaml",
        &format!(
            "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: clicks}}\nspec:\n  source:\n    remote: {{host: \"{}\"}}\n    index: clicks\n  dest:\n    remote: {{host: \"{}\"}}\n    index: clicks-v2\n  catchUp: {{field: updated_ms, overlap: 3s, interval: 1s, maxLag: 30s}}\n  cutover: {{trigger: true, aliases: [clicks-live], writeBlockSource: true, verify: Count}}\n",
            src.url(),
            dst.url()
        ),
    );
    let (code, out, err) = run_cli(&["run", "-f", f.to_str().unwrap()]).await;
    let (sent, acked, blocked, other) = writer.stop().await;
    assert_eq!(code, 0, "run -f failed:\n{out}\n{err}");
    assert!(err.contains("CatchUp: catch-up round 1"), "{err}");
    assert!(out.contains("cut over after"), "{out}");
    // The manifest already asks for the cutover: "synced" says it starts, not how to start it.
    let both = format!("{out}{err}");
    assert!(
        both.contains("cutting over (spec.cutover.trigger is true)")
            && !both.contains("set spec.cutover.trigger: true to cut over"),
        "{both}"
    );
    assert!(blocked > 0, "the writer was never blocked (sent {sent})");
    assert_eq!(other, 0);
    let dest = all_docs(dst.url(), "clicks-v2").await;
    assert_acknowledged_present(&acked, &dest);
    refresh(src.url(), "clicks").await;
    assert_eq!(parsed(&dest), parsed(&all_docs(src.url(), "clicks").await));
    let (_, aliases) = call("GET", &format!("{}/_alias/clicks-live", dst.url()), None).await;
    assert!(aliases.get("clicks-v2").is_some(), "{aliases}");
}

#[tokio::test]
async fn live_failed_verification_leaves_the_alias_and_lifts_the_block() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-live-verify").await;
    let (src, dst) = (noida(), noida());
    let stamp = Stamp::Millis;
    create_index(src.url(), "carts", stamp.mapping()).await;
    preload(src.url(), "carts", stamp, 2_000).await;
    create_index(dst.url(), "carts-v1", json!({})).await;
    preload(dst.url(), "carts-v1", stamp, 5).await;
    let (s, v) = call(
        "POST",
        &format!("{}/_aliases", dst.url()),
        Some(json!({"actions": [{"add": {"index": "carts-v1", "alias": "carts-live"}}]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let _op = Operator::start(&ns, dst.url(), &[]).await;
    create_reindex(
        &client,
        &ns,
        "carts",
        json!({
            "source": {"remote": {"host": src.url()}, "index": "carts"},
            "dest": {"index": "carts-v2"},
            "catchUp": {"field": "updated_ms", "overlap": "2s", "interval": "1s", "maxLag": "30s"},
            "cutover": {"aliases": ["carts-live"], "writeBlockSource": true},
        }),
    )
    .await;
    wait_status(
        &client,
        &ns,
        "carts",
        "Synced",
        Duration::from_secs(600),
        synced,
    )
    .await;
    // Deletes are not seen by catch-up: the checksum verification at the cutover catches them.
    let mut body = String::new();
    for i in 0..5 {
        body.push_str(&json!({"delete": {"_index": "carts", "_id": format!("d{i}")}}).to_string());
        body.push('\n');
    }
    let r = http()
        .post(format!("{}/_bulk?refresh=true", src.url()))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    patch_spec(&client, &ns, "carts", json!({"cutover": {"trigger": true}})).await;
    let obj = wait_terminal(&client, &ns, "carts", Duration::from_secs(600)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Failed), "{s:#?}");
    let ready = condition(&s, "Ready");
    assert_eq!(ready.reason, "VerificationFailed", "{ready:?}");
    assert!(
        ready.message.contains("1995")
            && ready.message.contains("2000")
            && ready.message.contains("5 unexpected")
            && ready.message.contains("deleteMissing"),
        "{ready:?}"
    );
    assert!(s.conditions.iter().all(|c| c.type_ != "CutOver"), "{s:#?}");
    let (_, aliases) = call("GET", &format!("{}/_alias/carts-live", dst.url()), None).await;
    assert_eq!(
        aliases.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["carts-v1"],
        "the alias moved after a failed verification: {aliases}"
    );
    let blocks = settings(src.url(), "carts").await;
    assert_ne!(
        blocks.get("index.blocks.write"),
        Some(&json!("true")),
        "the write block set by the cutover stayed: {blocks:?}"
    );
}

#[tokio::test]
async fn live_real_engines_delete_missing_removes_source_deletes_at_cutover() {
    let (src, dst) = (
        engine(EngineKind::OpenSearch2),
        engine(EngineKind::Elasticsearch7),
    );
    let (src, dst) = (src.url(), dst.url());
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-live-delmiss").await;
    let n = Names::unique();
    let stamp = Stamp::Millis;
    create_index(src, &n.source, stamp.mapping()).await;
    preload(src, &n.source, stamp, 3_000).await;
    let _op = Operator::start(&ns, dst, &[]).await;
    create_reindex(
        &client,
        &ns,
        "carts",
        json!({
            "source": {"remote": {"host": src}, "index": n.source},
            "dest": {"index": n.new},
            "catchUp": {"field": "updated_ms", "overlap": "2s", "interval": "1s", "maxLag": "30s", "deleteMissing": true},
            "cutover": {"aliases": [n.alias]},
        }),
    )
    .await;
    wait_status(
        &client,
        &ns,
        "carts",
        "Synced",
        Duration::from_secs(600),
        synced,
    )
    .await;
    // Deletes in the source (odd ids among them) that no catch-up round can see.
    let mut body = String::new();
    for i in [0, 7, 512, 2047, 2999] {
        body.push_str(&json!({"delete": {"_index": n.source, "_id": format!("d{i}")}}).to_string());
        body.push('\n');
    }
    let r = http()
        .post(format!("{src}/_bulk?refresh=true"))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    patch_spec(&client, &ns, "carts", json!({"cutover": {"trigger": true}})).await;
    let obj = wait_terminal(&client, &ns, "carts", Duration::from_secs(600)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    let cut = condition(&s, "CutOver");
    assert_eq!(cut.status, "True", "{cut:?}");
    assert!(
        cut.message.contains("checksum verified") && cut.message.contains("deleted 5 documents"),
        "{cut:?}"
    );
    let source = all_docs(src, &n.source).await;
    let dest = all_docs(dst, &n.new).await;
    assert_eq!(source.len(), 2_995);
    assert_eq!(
        parsed(&dest),
        parsed(&source),
        "destination differs from the source"
    );
    for i in [0, 7, 512, 2047, 2999] {
        assert!(!dest.contains_key(&format!("d{i}")), "d{i} was not deleted");
    }
    let (_, aliases) = call("GET", &format!("{dst}/_alias/{}", n.alias), None).await;
    assert_eq!(
        aliases.as_object().unwrap().keys().collect::<Vec<_>>(),
        [&n.new],
        "{aliases}"
    );
}

/// A live copy started without `spec.cutover`, as a new user would: the aliases are decided only
/// at the cutover, so they come in the same edit as the trigger.
async fn syncing_copy_without_cutover(
    prefix: &str,
) -> (kube::Client, String, Server, Server, Operator) {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, prefix).await;
    let (src, dst) = (noida(), noida());
    let stamp = Stamp::Millis;
    create_index(src.url(), "events", stamp.mapping()).await;
    preload(src.url(), "events", stamp, 1_000).await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    create_reindex(
        &client,
        &ns,
        "events",
        json!({
            "source": {"remote": {"host": src.url()}, "index": "events", "size": 200},
            "dest": {"index": "events-v2"},
            "catchUp": {"field": "updated_ms", "overlap": "2s", "interval": "1s", "maxLag": "30s"},
        }),
    )
    .await;
    wait_status(
        &client,
        &ns,
        "events",
        "Synced",
        Duration::from_secs(600),
        synced,
    )
    .await;
    (client, ns, src, dst, op)
}

#[tokio::test]
async fn live_cutover_with_aliases_set_in_the_trigger_edit_while_syncing_cuts_over() {
    let (client, ns, src, dst, _op) = syncing_copy_without_cutover("rr-live-late-cutover").await;
    // One edit: the trigger and the settings used only at the cutover.
    patch_spec(
        &client,
        &ns,
        "events",
        json!({"cutover": {"trigger": true, "aliases": ["live-read"], "verify": "Count"}}),
    )
    .await;
    let obj = wait_status(
        &client,
        &ns,
        "events",
        "the cutover the edit asked for (or a condition saying why not)",
        Duration::from_secs(120),
        |s| {
            s.phase.is_some_and(Phase::is_terminal)
                || s.conditions
                    .iter()
                    .any(|c| c.type_ == "SpecApplied" && c.status == "False")
        },
    )
    .await;
    let s = obj.status.clone().unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(s.observed_generation, obj.metadata.generation, "{s:#?}");
    let cut = condition(&s, "CutOver");
    assert_eq!(cut.status, "True", "{cut:?}");
    assert!(
        cut.message.contains("live-read") && cut.message.contains("count verified"),
        "the cutover did not use the aliases and verify of the trigger's edit: {cut:?}"
    );
    let (_, aliases) = call("GET", &format!("{}/_alias/live-read", dst.url()), None).await;
    assert_eq!(
        aliases.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["events-v2"],
        "{aliases}"
    );
    assert_eq!(
        parsed(&all_docs(dst.url(), "events-v2").await),
        parsed(&all_docs(src.url(), "events").await)
    );
}

#[tokio::test]
async fn live_edit_that_cannot_apply_to_a_running_copy_shows_a_condition_at_once() {
    let (client, ns, _src, _dst, _op) = syncing_copy_without_cutover("rr-live-not-applied").await;
    // The page size of a running copy cannot change; the copy keeps syncing, and says so.
    patch_spec(
        &client,
        &ns,
        "events",
        json!({"source": {"remote": {"host": _src.url()}, "index": "events", "size": 77}}),
    )
    .await;
    let obj = wait_status(
        &client,
        &ns,
        "events",
        "a condition naming the edit that was not applied",
        Duration::from_secs(30),
        |s| s.conditions.iter().any(|c| c.type_ == "SpecApplied"),
    )
    .await;
    let s = obj.status.clone().unwrap();
    let c = condition(&s, "SpecApplied");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "ChangeNotApplied"),
        "{c:?}"
    );
    assert!(c.message.contains("spec.source.size"), "{c:?}");
    assert_eq!(s.phase, Some(Phase::Syncing), "{s:#?}");
    let reasons = wait_event_reasons(&client, &ns, "events", &["ChangeNotApplied"]).await;
    assert!(
        reasons.iter().any(|r| r == "ChangeNotApplied"),
        "{reasons:?}"
    );
    let evs = events(&client, &ns, "events").await;
    let note = evs
        .iter()
        .find(|e| e.1 == "ChangeNotApplied")
        .map(|e| e.2.clone())
        .unwrap();
    assert!(note.contains("spec.source.size"), "{note}");
}

/// One document dated in the year 2100 must not freeze catch-up (issue 21, item 4): the
/// high-water mark stays at or below the source's present, so updates made after the initial
/// copy still reach the destination before a `Count` cutover moves the alias; the future
/// document is copied every round, counted in `status.catchUp.futureDocuments` and named in an
/// Event. On real engines: the range's `now` (a date field) and the node's clock (a number of
/// epoch milliseconds) are the engine's.
async fn future_dated(prefix: &str, stamp: Stamp, src: &str, dst: &str) {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, prefix).await;
    let n = Names::unique();
    create_index(src, &n.source, stamp.mapping()).await;
    preload(src, &n.source, stamp, 2_000).await;
    let future = match stamp {
        Stamp::Date => json!("2100-01-01T00:00:00.000Z"),
        Stamp::Millis => json!(4_102_444_800_000_i64),
    };
    let (s, v) = call(
        "PUT",
        &format!("{src}/{}/_doc/from-the-future?refresh=true", n.source),
        Some(json!({stamp.field(): future, "n": 999_999, "v": 0})),
    )
    .await;
    assert!(s < 300, "{s} {v}");
    let _op = Operator::start(&ns, dst, &[]).await;
    create_reindex(
        &client,
        &ns,
        "carts",
        json!({
            "source": {"remote": {"host": src}, "index": n.source},
            "dest": {"index": n.new},
            "catchUp": {"field": stamp.field(), "overlap": "2s", "interval": "1s", "maxLag": "30s"},
            "cutover": {"aliases": [n.alias], "verify": "Count"},
        }),
    )
    .await;
    let obj = wait_status(
        &client,
        &ns,
        "carts",
        "Synced",
        Duration::from_secs(600),
        synced,
    )
    .await;
    let rounds = obj.status.unwrap().catch_up.unwrap().rounds;
    // Updates after the initial copy (the count stays the same: only the content tells).
    let mut body = String::new();
    for i in (0..2_000).step_by(40) {
        body.push_str(&json!({"index": {"_index": n.source, "_id": format!("d{i}")}}).to_string());
        body.push('\n');
        body.push_str(&stamp.doc(i, 1));
        body.push('\n');
    }
    let r = http()
        .post(format!("{src}/_bulk?refresh=true"))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    wait_status(
        &client,
        &ns,
        "carts",
        "two more rounds",
        Duration::from_secs(600),
        |s| s.catch_up.as_ref().is_some_and(|c| c.rounds >= rounds + 2),
    )
    .await;
    // The status as the API server holds it (a field the types may not know yet).
    let (code, out, err) = kubectl(
        &["get", "remotereindex", "carts", "-n", &ns, "-o", "json"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let raw: Value = serde_json::from_str(&out).unwrap();
    let cu = &raw["status"]["catchUp"];
    let mark = cu["highWaterMarkMillis"].as_i64().unwrap_or(i64::MAX);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    patch_spec(&client, &ns, "carts", json!({"cutover": {"trigger": true}})).await;
    let obj = wait_terminal(&client, &ns, "carts", Duration::from_secs(600)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    refresh(src, &n.source).await;
    let source = all_docs(src, &n.source).await;
    let dest = all_docs(dst, &n.new).await;
    let stale: Vec<&String> = source
        .iter()
        .filter(|(id, doc)| dest.get(*id) != Some(*doc))
        .map(|(id, _)| id)
        .take(5)
        .collect();
    assert!(
        stale.is_empty() && parsed(&dest) == parsed(&source),
        "the alias moved to a stale index: e.g. {stale:?} differ (mark {mark} with the present at {now_ms}; catchUp {cu})"
    );
    assert!(
        mark <= now_ms + 60_000,
        "the high-water mark {mark} passed the present {now_ms}: {cu}"
    );
    assert_eq!(cu["futureDocuments"], json!(1), "{cu}");
    let evs = events(&client, &ns, "carts").await;
    let notes: Vec<&(String, String, String)> =
        evs.iter().filter(|e| e.1 == "FutureDocuments").collect();
    assert_eq!(
        notes.len(),
        1,
        "one FutureDocuments Event expected: {evs:?}"
    );
    assert!(notes[0].2.contains("from-the-future"), "{notes:?}");
}

#[tokio::test]
async fn live_real_engines_future_dated_document_does_not_freeze_catch_up_opensearch_2() {
    let (src, dst) = (
        engine(EngineKind::OpenSearch2),
        engine(EngineKind::Elasticsearch7),
    );
    future_dated("rr-live-future", Stamp::Date, src.url(), dst.url()).await;
}

#[tokio::test]
async fn live_real_engines_future_dated_millis_does_not_freeze_catch_up_elasticsearch_7() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    future_dated("rr-live-future-ms", Stamp::Millis, src.url(), dst.url()).await;
}
