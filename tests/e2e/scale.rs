//! Scale-out against a real kube-apiserver and real engines: several local operator processes
//! (distinct identities, one namespace) share one copy's slices through Leases. Every process
//! copies, a SIGKILLed one's slices are taken over after their Leases expire, a process added
//! mid-copy takes released slices, and a process paused past its slice Leases writes no bulk
//! for them after the takeover (a recording proxy in front of the destination shows it). The
//! destination equals the source by checksum, checked independently of the operators.

use crate::controller::k8s::*;
use crate::harness::*;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use remote_reindex::api::Phase;
use remote_reindex::controller::scale::SliceInfo;
use remote_reindex::search::{ClientOptions, SearchClient};
use remote_reindex::verify::{Side, checksum};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "tag": format!("t{}", i % 7), "msg": format!("hello {i}")})
                .to_string(),
            routing: None,
        })
        .collect()
}

fn side(which: &'static str, url: &str, index: &str) -> Side {
    Side {
        which,
        client: SearchClient::new(ClientOptions::new(url)).unwrap(),
        index: index.into(),
        query: None,
        slices: 2,
        keep_alive: "1m".into(),
    }
}

/// The identity an operator logged at start.
fn identity(log: &str) -> String {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["fields"]["identity"].as_str().map(str::to_string))
        .expect("the operator logs its identity")
}

/// (slice, when) of every slice claim `identity` logged.
fn claims(log: &str, identity: &str) -> Vec<(u32, SystemTime)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "scale-out: claimed slice")
        .filter(|v| v["fields"]["identity"] == identity)
        .filter_map(|v| {
            let slice = v["fields"]["slice"].as_u64()? as u32;
            let t: k8s_openapi::jiff::Timestamp = v["timestamp"].as_str()?.parse().ok()?;
            Some((slice, SystemTime::from(t)))
        })
        .collect()
}

/// Flags of an operator taking part in scale-out with short Leases (fast tests).
fn scale_flags(ns: &str) -> Vec<String> {
    [
        "--leader-election",
        "--leader-election-namespace",
        ns,
        "--lease-duration",
        "6",
        "--scale-out",
        "--slice-lease-duration",
        "4",
        "--slice-checkpoint-interval",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn start(ns: &str, dest: &str) -> (Operator, String) {
    let flags = scale_flags(ns);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let op = Operator::start(ns, dest, &flags).await;
    let id = identity(&op.log());
    (op, id)
}

/// Two operators: the first once it leads, then a second (a standby that also copies slices).
async fn leader_then_standby(ns: &str, dest: &str) -> ((Operator, String), (Operator, String)) {
    let first = start(ns, dest).await;
    eventually("a leader", Duration::from_secs(30), || {
        let log = first.0.log();
        async move { log.contains("this replica is the leader").then_some(()) }
    })
    .await;
    (first, start(ns, dest).await)
}

async fn slices(client: &kube::Client, ns: &str) -> Vec<SliceInfo> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default().labels("reindex.dev/lease-role=slice"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(SliceInfo::parse)
        .collect()
}

/// Every update of the slice Leases while the copy runs, counted from a watch (independent of
/// the operators' own counters): (events by Lease, first and last event).
#[derive(Default)]
struct LeaseWrites {
    by_lease: HashMap<String, u64>,
    first: Option<Instant>,
    last: Option<Instant>,
}

fn watch_lease_writes(client: &kube::Client, ns: &str) -> Arc<Mutex<LeaseWrites>> {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let writes = Arc::new(Mutex::new(LeaseWrites::default()));
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    let w = writes.clone();
    tokio::spawn(async move {
        let cfg = watcher::Config::default().labels("reindex.dev/lease-role=slice");
        let mut s = watcher(api, cfg).boxed();
        while let Some(ev) = s.next().await {
            if let Ok(watcher::Event::Apply(l)) = ev {
                let mut w = w.lock().unwrap();
                let now = Instant::now();
                w.first.get_or_insert(now);
                w.last = Some(now);
                *w.by_lease
                    .entry(l.metadata.name.unwrap_or_default())
                    .or_default() += 1;
            }
        }
    });
    writes
}

/// One `_bulk` request seen by the recording proxy.
#[derive(Clone, Debug)]
struct Bulk {
    /// When its request line arrived (wall clock, comparable with Lease times).
    started: SystemTime,
    opaque_id: Option<String>,
}

/// A small HTTP proxy on 127.0.0.1 in front of `upstream` that records every `_bulk` request's
/// `X-Opaque-Id` and forwards everything unchanged.
async fn recording_proxy(upstream: String) -> (String, Arc<Mutex<Vec<Bulk>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let (seen, upstream) = (s2.clone(), upstream.clone());
            tokio::spawn(async move { serve(conn, &upstream, &seen).await });
        }
    });
    (url, seen)
}

async fn serve(conn: TcpStream, upstream: &str, seen: &Mutex<Vec<Bulk>>) {
    let mut s = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let started = SystemTime::now();
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_string(), path.to_string());
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if s.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).await.is_err() {
            return;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if path.split('?').next().unwrap_or("").ends_with("_bulk") {
            seen.lock().unwrap().push(Bulk {
                started,
                opaque_id: header("x-opaque-id"),
            });
        }
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = http().request(m.clone(), format!("{upstream}{path}"));
        for k in [
            "content-type",
            "content-encoding",
            "x-opaque-id",
            "accept-encoding",
        ] {
            if let Some(v) = header(k) {
                r = r.header(k, v);
            }
        }
        if !body.is_empty() {
            r = r.body(body);
        }
        let Ok(resp) = r.send().await else { return };
        let status = resp.status().as_u16();
        let product = resp
            .headers()
            .get("x-elastic-product")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.unwrap_or_default();
        let mut head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            if m == reqwest::Method::HEAD {
                0
            } else {
                bytes.len()
            }
        );
        if let Some(p) = product {
            head.push_str(&format!("x-elastic-product: {p}\r\n"));
        }
        head.push_str("\r\n");
        if s.get_mut().write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if m != reqwest::Method::HEAD && s.get_mut().write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// Waits until the copy succeeded with a matching checksum; returns the status.
async fn succeeded(
    client: &kube::Client,
    ns: &str,
    name: &str,
    n: u64,
    slices: usize,
) -> remote_reindex::api::RemoteReindexStatus {
    let obj = wait_terminal(client, ns, name, Duration::from_secs(300)).await;
    let status = obj.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let v = status.verification.clone().expect("status.verification");
    assert_eq!((v.expected, v.found), (n as i64, n as i64), "{v:?}");
    assert_eq!((v.missing, v.unexpected, v.differing), (0, 0, 0), "{v:?}");
    assert_eq!(status.slices.len(), slices, "{:#?}", status.slices);
    assert!(
        status
            .slices
            .iter()
            .all(|s| s.state == remote_reindex::api::SliceStateName::Done),
        "{:#?}",
        status.slices
    );
    status
}

/// The destination equals the source, checked here, not by the operator.
async fn equal(src: &str, sidx: &str, dst: &str, didx: &str, n: u64) {
    let r = checksum(&side("source", src, sidx), &side("destination", dst, didx))
        .await
        .unwrap();
    assert!(r.matched, "{}", r.message());
    assert_eq!(r.found, n);
    let (a, b) = (all_docs(src, sidx).await, all_docs(dst, didx).await);
    assert_eq!(parsed(&a), parsed(&b));
}

#[tokio::test]
async fn three_operators_share_twelve_slices_a_killed_ones_are_taken_over_and_a_fourth_joins() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-scale").await;
    let es = engine(EngineKind::Elasticsearch8);
    let (sidx, didx) = (unique_index("scale-src"), unique_index("scale-dst"));
    const N: u64 = 24_000;
    create_index(
        es.url(),
        &sidx,
        json!({"settings": {"number_of_shards": 3, "number_of_replicas": 0}}),
    )
    .await;
    load(es.url(), &sidx, &docs(N as usize)).await;

    let mut ops = Vec::new();
    for _ in 0..3 {
        ops.push(start(&ns, es.url()).await);
    }
    eventually("a leader", Duration::from_secs(30), || {
        let logs: Vec<String> = ops.iter().map(|(o, _)| o.log()).collect();
        async move {
            logs.iter()
                .any(|l| l.contains("this replica is the leader"))
                .then_some(())
        }
    })
    .await;
    let writes = watch_lease_writes(&client, &ns);
    let started = Instant::now();
    create_reindex(
        &client,
        &ns,
        "wide",
        json!({
            "source": {"remote": {"host": es.url()}, "index": sidx, "size": 100, "slices": 12, "paging": "pit"},
            "dest": {"index": didx},
            "requestsPerSecond": 600,
            "verify": "Checksum",
        }),
    )
    .await;

    // Every process copies at least one slice (the Leases' holder history says who held what).
    let ids: Vec<String> = ops.iter().map(|(_, id)| id.clone()).collect();
    eventually(
        "every operator to hold a slice",
        Duration::from_secs(60),
        || {
            let (client, ns, ids) = (client.clone(), ns.clone(), ids.clone());
            async move {
                let s = slices(&client, &ns).await;
                ids.iter()
                    .all(|id| s.iter().any(|x| x.holders.contains(id)))
                    .then_some(())
            }
        },
    )
    .await;
    // Each pod's metrics say which slices it copies.
    for (op, id) in &ops {
        let held = eventually(
            "the operator's metrics to show a held slice",
            Duration::from_secs(30),
            || async move {
                let m = op.metrics().await;
                let lines: Vec<String> = m
                    .lines()
                    .filter(|l| l.starts_with("remote_reindex_slices_held{") && l.ends_with(" 1"))
                    .map(str::to_string)
                    .collect();
                (!lines.is_empty()).then_some(lines)
            },
        )
        .await;
        assert!(
            held.iter().all(|l| l.contains("name=\"wide\"")),
            "{id}: {held:?}"
        );
    }
    wait_status(
        &client,
        &ns,
        "wide",
        "documents written",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 3000),
    )
    .await;

    // SIGKILL a worker that is not the leader, holding slices.
    let leader = ops
        .iter()
        .position(|(o, _)| o.log().contains("this replica is the leader"))
        .unwrap();
    let victim = (0..3).find(|i| *i != leader).unwrap();
    let victim_id = ops[victim].1.clone();
    let before = slices(&client, &ns).await;
    let killed: BTreeMap<u32, SliceInfo> = before
        .iter()
        .filter(|s| s.holder.as_deref() == Some(victim_id.as_str()) && !s.state.is_over())
        .map(|s| (s.slice, s.clone()))
        .collect();
    assert!(!killed.is_empty(), "the victim holds slices: {before:#?}");
    ops[victim].0.kill();
    let killed_at = Instant::now();
    let takeover = eventually(
        "the killed worker's slices to be taken over",
        Duration::from_secs(60),
        || {
            let (client, ns, victim_id) = (client.clone(), ns.clone(), victim_id.clone());
            let keys: Vec<u32> = killed.keys().copied().collect();
            async move {
                let s = slices(&client, &ns).await;
                keys.iter()
                    .all(|k| {
                        s.iter().any(|x| {
                            x.slice == *k
                                && (x.state.is_over()
                                    || x.holder.as_deref().is_some_and(|h| h != victim_id))
                        })
                    })
                    .then(|| killed_at.elapsed())
            }
        },
    )
    .await;

    // A fourth process joins mid-copy and takes released slices.
    let fourth = start(&ns, es.url()).await;
    let fourth_id = fourth.1.clone();
    let joined = eventually(
        "the fourth operator to take a slice",
        Duration::from_secs(60),
        || {
            let (client, ns, id) = (client.clone(), ns.clone(), fourth_id.clone());
            async move {
                let s = slices(&client, &ns).await;
                s.iter()
                    .find(|x| x.holders.contains(&id))
                    .map(|x| (x.slice, x.holders.clone(), x.checkpoint.read))
            }
        },
    )
    .await;
    ops.push(fourth);

    let status = succeeded(&client, &ns, "wide", N, 12).await;
    let copy_minutes = started.elapsed().as_secs_f64() / 60.0;
    equal(es.url(), &sidx, es.url(), &didx, N).await;
    // Rewrites happen only after the kill: bounded by what the killed slices had not yet
    // checkpointed (their totals minus their last checkpoints' reads).
    let bound: u64 = killed
        .values()
        .map(|s| {
            s.checkpoint
                .total
                .unwrap_or(N)
                .saturating_sub(s.checkpoint.read)
        })
        .sum();
    let rewrites = rewritten(es.url(), &didx).await;
    assert!(
        rewrites <= bound,
        "{rewrites} documents rewritten, more than the {bound} the killed slices had not checkpointed"
    );
    let progress = status.progress.clone().unwrap_or_default();
    assert!(
        slices(&client, &ns).await.is_empty(),
        "the operator deletes the slice Leases of a finished copy"
    );

    let (total, span) = {
        let w = writes.lock().unwrap();
        let span = match (w.first, w.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64() / 60.0,
            _ => copy_minutes,
        };
        (w.by_lease.values().sum::<u64>(), span)
    };
    let per_slice_minute = total as f64 / 12.0 / span.max(1.0 / 60.0);
    let mut overhead = Vec::new();
    for (op, _) in &mut ops {
        if op.exited().is_none() {
            op.terminate().await;
        }
        overhead.extend(
            op.log()
                .lines()
                .filter(|l| l.contains("worker stopped"))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["fields"]["overhead"].as_str().map(str::to_string)),
        );
    }
    eprintln!(
        "scale-out: 12 slices, {N} documents, 3 operators (+1 mid-copy); copy {copy_minutes:.2} min; \
         takeover of {} killed slice(s) {:.1} s after SIGKILL (slice Lease 4 s); \
         fourth operator took slice {} (holders {:?}, from checkpoint read={}); \
         rewritten {rewrites} (bound {bound}; status says {}); \
         slice Lease updates {total} over {span:.2} min = {per_slice_minute:.1} per slice per minute; \
         per-process Lease requests: {overhead:?}",
        killed.len(),
        takeover.as_secs_f64(),
        joined.0,
        joined.1,
        joined.2,
        progress.rewritten,
    );
    report_fault(
        "scale-out: one of 3 operators SIGKILLed mid-copy, a 4th joins",
        N,
        N,
        rewrites,
        "Succeeded",
    );
}

#[tokio::test]
async fn a_worker_paused_past_its_slice_leases_writes_no_bulk_after_the_takeover() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-scale-stop").await;
    let es = engine(EngineKind::Elasticsearch8);
    let (sidx, didx) = (unique_index("scale-src"), unique_index("scale-dst"));
    const N: u64 = 12_000;
    load(es.url(), &sidx, &docs(N as usize)).await;
    let (dest, bulks) = recording_proxy(es.url().to_string()).await;

    // The leader first, then the worker to pause (not the leader: its slices are the point).
    let (leader, leader_id) = start(&ns, &dest).await;
    eventually("a leader", Duration::from_secs(30), || {
        let log = leader.log();
        async move { log.contains("this replica is the leader").then_some(()) }
    })
    .await;
    let (paused, paused_id) = start(&ns, &dest).await;
    create_reindex(
        &client,
        &ns,
        "paused",
        json!({
            "source": {"remote": {"host": es.url()}, "index": sidx, "size": 100, "slices": 4, "paging": "pit"},
            "dest": {"remote": {"host": dest}, "index": didx},
            "requestsPerSecond": 400,
            "verify": "Checksum",
        }),
    )
    .await;
    let held = eventually(
        "the second operator to write for its slices",
        Duration::from_secs(60),
        || {
            let (bulks, id) = (bulks.clone(), paused_id.clone());
            let (client, ns) = (client.clone(), ns.clone());
            async move {
                let wrote = bulks
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|b| b.opaque_id.as_deref().is_some_and(|o| o.starts_with(&id)));
                let s = slices(&client, &ns).await;
                let mine: Vec<u32> = s
                    .iter()
                    .filter(|x| x.holder.as_deref() == Some(id.as_str()))
                    .map(|x| x.slice)
                    .collect();
                (wrote && !mine.is_empty()).then_some(mine)
            }
        },
    )
    .await;
    let at_pause: Vec<SliceInfo> = slices(&client, &ns)
        .await
        .into_iter()
        .filter(|s| held.contains(&s.slice))
        .collect();
    paused.signal("STOP");
    let stopped = Instant::now();
    // The leader's worker takes every paused slice over once its Lease expired; the takeover
    // instant is the new holder's acquireTime (a slice finished by then needs none).
    let taken: BTreeMap<u32, SystemTime> = eventually(
        "the paused worker's slices to be taken over",
        Duration::from_secs(60),
        || {
            let (client, ns, id, held) =
                (client.clone(), ns.clone(), paused_id.clone(), held.clone());
            async move {
                let s = slices(&client, &ns).await;
                let mut taken = BTreeMap::new();
                for k in &held {
                    let Some(x) = s.iter().find(|x| x.slice == *k) else {
                        continue;
                    };
                    let spec = x.lease.spec.clone().unwrap_or_default();
                    // Claimed by another since (it may have finished the slice already).
                    if x.holders.last().is_some_and(|h| *h != id) {
                        let t = spec
                            .acquire_time
                            .expect("a claimed Lease has an acquireTime")
                            .0;
                        taken.insert(*k, SystemTime::from(t));
                    }
                }
                (taken.len() == held.len()).then_some(taken)
            }
        },
    )
    .await;
    let takeover = stopped.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    paused.signal("CONT");
    let resumed = SystemTime::now();
    eventually(
        "the resumed worker to notice it lost its slices",
        Duration::from_secs(30),
        || {
            let log = paused.log();
            async move {
                (log.contains("slice Lease lost") || log.contains("fenced")).then_some(())
            }
        },
    )
    .await;
    let status = succeeded(&client, &ns, "paused", N, 4).await;
    equal(es.url(), &sidx, es.url(), &didx, N).await;

    // Every bulk names its writer and slice; none from the paused process for a slice after
    // that slice was taken over, until it legitimately claims the slice again (its log says
    // when: the resumed process is a live worker again and may get slices back).
    let reclaims = claims(&paused.log(), &paused_id);
    let bulks = bulks.lock().unwrap().clone();
    assert!(!bulks.is_empty());
    for b in &bulks {
        let id = b
            .opaque_id
            .as_deref()
            .expect("every bulk carries X-Opaque-Id");
        let (who, slice) = id.rsplit_once('/').expect("<identity>/<slice>");
        assert!(who == leader_id || who == paused_id, "{id}");
        let slice: u32 = slice.parse().expect("a slice number");
        if who == paused_id
            && let Some(at) = taken.get(&slice)
        {
            let reclaimed = reclaims
                .iter()
                .filter(|(k, t)| *k == slice && t > at)
                .map(|(_, t)| *t)
                .min();
            assert!(
                b.started < *at || reclaimed.is_some_and(|r| b.started > r),
                "the paused process sent a bulk for slice {slice} {:?} after the takeover",
                b.started.duration_since(*at).unwrap_or_default()
            );
        }
    }
    let from_paused = |b: &&Bulk| {
        b.opaque_id
            .as_deref()
            .is_some_and(|o| o.starts_with(&paused_id))
    };
    let after_resume = bulks
        .iter()
        .filter(from_paused)
        .filter(|b| b.started > resumed)
        .count();
    // Rewrites come only from the takeover: what the paused slices had not checkpointed.
    let bound: u64 = at_pause
        .iter()
        .map(|s| {
            s.checkpoint
                .total
                .unwrap_or(N)
                .saturating_sub(s.checkpoint.read)
        })
        .sum();
    let rewrites = rewritten(es.url(), &didx).await;
    assert!(
        rewrites <= bound,
        "{rewrites} documents rewritten, more than the {bound} the paused slices had not checkpointed"
    );
    let leader_claims = claims(&leader.log(), &leader_id).len();
    eprintln!(
        "scale-out SIGSTOP: {} slice(s) taken over {:.1} s after the pause (slice Lease 4 s); \
         0 bulks from the paused process for a taken-over slice before it claimed one again; \
         {after_resume} bulks from it after SIGCONT (slices it claimed again: {:?}); \
         claims: leader {leader_claims}, paused {}; {} bulks in all; \
         rewritten {rewrites} (bound {bound}; status: {})",
        held.len(),
        takeover.as_secs_f64(),
        reclaims
            .iter()
            .filter(|(_, t)| *t > resumed)
            .map(|(k, _)| k)
            .collect::<Vec<_>>(),
        reclaims.len(),
        bulks.len(),
        status.progress.clone().unwrap_or_default().rewritten,
    );
    report_fault(
        "scale-out: a worker paused (SIGSTOP) past its slice Leases, resumed after the takeover",
        N,
        N,
        rewrites,
        "Succeeded",
    );
    drop(leader);
}

#[tokio::test]
async fn the_leader_killed_mid_copy_is_replaced_and_its_slices_are_taken_over() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-scale-leader").await;
    let es = engine(EngineKind::Elasticsearch8);
    let (sidx, didx) = (unique_index("scale-src"), unique_index("scale-dst"));
    const N: u64 = 12_000;
    load(es.url(), &sidx, &docs(N as usize)).await;
    let ((mut first, first_id), (second, second_id)) = leader_then_standby(&ns, es.url()).await;
    create_reindex(
        &client,
        &ns,
        "leaderless",
        json!({
            "source": {"remote": {"host": es.url()}, "index": sidx, "size": 100, "slices": 6, "paging": "pit"},
            "dest": {"index": didx},
            "requestsPerSecond": 300,
            "verify": "Checksum",
        }),
    )
    .await;
    eventually(
        "both operators to hold slices",
        Duration::from_secs(60),
        || {
            let (client, ns) = (client.clone(), ns.clone());
            let ids = [first_id.clone(), second_id.clone()];
            async move {
                let s = slices(&client, &ns).await;
                ids.iter()
                    .all(|id| s.iter().any(|x| x.holder.as_deref() == Some(id.as_str())))
                    .then_some(())
            }
        },
    )
    .await;
    wait_status(
        &client,
        &ns,
        "leaderless",
        "documents written",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 1000),
    )
    .await;
    first.kill();
    let killed_at = Instant::now();
    eventually(
        "the second operator to lead",
        Duration::from_secs(60),
        || {
            let log = second.log();
            async move { log.contains("this replica is the leader").then_some(()) }
        },
    )
    .await;
    let led_after = killed_at.elapsed();
    let status = succeeded(&client, &ns, "leaderless", N, 6).await;
    equal(es.url(), &sidx, es.url(), &didx, N).await;
    let rewrites = rewritten(es.url(), &didx).await;
    assert!(
        slices(&client, &ns).await.is_empty(),
        "the new leader deletes the slice Leases of the finished copy"
    );
    eprintln!(
        "scale-out leader SIGKILL: the standby led {:.1} s later (leader Lease 6 s); \
         Succeeded, {N} documents equal by checksum, rewritten {rewrites} (status {})",
        led_after.as_secs_f64(),
        status.progress.clone().unwrap_or_default().rewritten
    );
    report_fault(
        "scale-out: the leader SIGKILLed mid-copy",
        N,
        N,
        rewrites,
        "Succeeded",
    );
}

/// `maxDocs` is one budget for the whole copy, not one per replica: two operators sharing six
/// slices write exactly `maxDocs` documents, and the status says so.
#[tokio::test]
async fn max_docs_is_one_budget_across_the_replicas_sharing_a_copy() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-scale-maxdocs").await;
    let es = engine(EngineKind::Elasticsearch8);
    let (sidx, didx) = (unique_index("scale-src"), unique_index("scale-dst"));
    const N: u64 = 12_000;
    const MAX: u64 = 3_000;
    create_index(
        es.url(),
        &sidx,
        json!({"settings": {"number_of_shards": 2, "number_of_replicas": 0}}),
    )
    .await;
    load(es.url(), &sidx, &docs(N as usize)).await;
    let ((first, _), (second, _)) = leader_then_standby(&ns, es.url()).await;
    create_reindex(
        &client,
        &ns,
        "capped",
        json!({
            "source": {"remote": {"host": es.url()}, "index": sidx, "size": 100, "slices": 6, "maxDocs": MAX},
            "dest": {"index": didx},
            "requestsPerSecond": 1000,
        }),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "capped", Duration::from_secs(300)).await;
    let status = obj.status.clone().unwrap_or_default();
    refresh(es.url(), &didx).await;
    let found = count(es.url(), &didx).await;
    assert_eq!(
        found, MAX,
        "the destination holds maxDocs documents, not maxDocs per replica: {status:#?}"
    );
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let p = status.progress.clone().unwrap_or_default();
    assert_eq!(
        (p.total, p.written),
        (Some(MAX as i64), MAX as i64),
        "{p:?}"
    );
    drop((first, second));
}

/// Scale-out on a real Elasticsearch 8 (PIT paging, slices by doc id within ONE point in time):
/// the point in time is deleted on the source mid-copy. The planner opens a new one (a new PIT
/// generation in the slice Leases), every slice, finished ones included, reads again under it,
/// and the copy ends Succeeded with the destination equal to the source by checksum and the
/// restart reported.
#[tokio::test]
async fn a_pit_lost_mid_copy_in_scale_out_restarts_every_slice_under_one_new_pit() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-scale-pit").await;
    let es = engine(EngineKind::Elasticsearch8);
    let (sidx, didx) = (unique_index("scale-src"), unique_index("scale-dst"));
    const N: u64 = 6_000;
    create_index(
        es.url(),
        &sidx,
        json!({"settings": {"number_of_shards": 1, "number_of_replicas": 0}}),
    )
    .await;
    load(es.url(), &sidx, &docs(N as usize)).await;
    let ((first, _), (second, _)) = leader_then_standby(&ns, es.url()).await;
    create_reindex(
        &client,
        &ns,
        "pitlost",
        json!({
            "source": {"remote": {"host": es.url()}, "index": sidx, "size": 100, "slices": 4, "paging": "pit"},
            "dest": {"index": didx},
            "requestsPerSecond": 400,
            "verify": "Checksum",
        }),
    )
    .await;
    wait_status(
        &client,
        &ns,
        "pitlost",
        "documents written",
        Duration::from_secs(120),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 1000),
    )
    .await;
    let held = slices(&client, &ns).await;
    let pit = held
        .iter()
        .find_map(|s| s.pit.as_ref().map(|(_, id)| id.clone()))
        .expect("the slice Leases name the planner's point in time");
    let (code, body) = call(
        "DELETE",
        &format!("{}/_pit", es.url()),
        Some(json!({ "id": pit })),
    )
    .await;
    assert_eq!(code, 200, "deleting the point in time: {body}");
    let status = succeeded(&client, &ns, "pitlost", N, 4).await;
    equal(es.url(), &sidx, es.url(), &didx, N).await;
    let message = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("point in time was lost"),
        "the restart is reported: {message}"
    );
    let after = slices(&client, &ns).await;
    assert!(
        after.is_empty(),
        "slice Leases deleted after the copy: {after:?}"
    );
    drop((first, second));
}
