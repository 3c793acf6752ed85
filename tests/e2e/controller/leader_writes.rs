//! Leader election fences the leader's requests to the clusters, not only its status writes:
//! a leader paused (SIGSTOP) past its Lease — with a full queue of bulks, or in the middle of a
//! cutover between the comparison and its deletes and alias move — sends nothing to either
//! cluster once it runs again, and the destination the new leader finished equals the source.
//!
//! Every request of both operators goes through a recording proxy on loopback (one in front of
//! the source, one in front of the destination per operator, given as its `--dest-host`), so
//! what reached a cluster, when and from which process is known without asking the operators.

use super::docs;
use super::k8s::*;
use crate::harness::*;
use remote_reindex::api::Phase;
use remote_reindex::search::{ClientOptions, SearchClient};
use remote_reindex::verify::{Side, checksum};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request the proxy forwarded (or answered itself).
#[derive(Clone, Debug)]
struct Seen {
    /// When the whole request had arrived (just before it was forwarded).
    at: SystemTime,
    method: String,
    path: String,
    opaque_id: Option<String>,
}

impl Seen {
    fn is_bulk(&self) -> bool {
        self.method == "POST" && self.path.split('?').next().unwrap_or("").ends_with("_bulk")
    }
}

/// A predicate on a request's method, path (with query) and body.
type Matcher = Box<dyn Fn(&str, &str, &str) -> bool + Send + Sync>;

/// Answered 503 without forwarding, once, after `action` ran: the first request whose method,
/// path and body satisfy `matches`.
struct Hook {
    matches: Matcher,
    action: Box<dyn Fn() + Send + Sync>,
}

/// A recording HTTP proxy on 127.0.0.1 in front of a real server.
#[derive(Clone)]
struct Recorder {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Each `_bulk` waits this long before it is forwarded (a slow destination).
    bulk_delay_ms: Arc<AtomicU64>,
    hook: Arc<Mutex<Option<Hook>>>,
    fired: Arc<AtomicBool>,
}

impl Recorder {
    async fn start(upstream: &str) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Recorder {
            url: format!("http://{}", listener.local_addr().unwrap()),
            seen: Default::default(),
            bulk_delay_ms: Default::default(),
            hook: Default::default(),
            fired: Default::default(),
        };
        let (r2, upstream) = (r.clone(), upstream.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (r, upstream) = (r2.clone(), upstream.clone());
                tokio::spawn(async move { r.serve(conn, &upstream).await });
            }
        });
        r
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests that arrived after `t`.
    fn after(&self, t: SystemTime) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.at > t).collect()
    }

    async fn serve(&self, conn: TcpStream, upstream: &str) {
        let mut s = BufReader::new(conn);
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
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
            let seen = Seen {
                at: SystemTime::now(),
                method: method.clone(),
                path: path.clone(),
                opaque_id: header("x-opaque-id"),
            };
            let hooked = {
                let hook = self.hook.lock().unwrap();
                match hook.as_ref() {
                    Some(h)
                        if !self.fired.load(Ordering::SeqCst)
                            && (h.matches)(&method, &path, &String::from_utf8_lossy(&body)) =>
                    {
                        self.fired.store(true, Ordering::SeqCst);
                        (h.action)();
                        true
                    }
                    _ => false,
                }
            };
            if hooked {
                // Not forwarded: the cluster never saw this attempt.
                let msg = b"{\"error\":\"held by the test proxy\"}";
                let head = format!(
                    "HTTP/1.1 503 X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    msg.len()
                );
                let _ = s.get_mut().write_all(head.as_bytes()).await;
                let _ = s.get_mut().write_all(msg).await;
                continue;
            }
            if seen.is_bulk() {
                let delay = self.bulk_delay_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
            }
            let mut seen = seen;
            seen.at = SystemTime::now();
            self.seen.lock().unwrap().push(seen);
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut r = http().request(m.clone(), format!("{upstream}{path}"));
            for k in ["content-type", "content-encoding", "x-opaque-id"] {
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
}

/// The leader election identity an operator logged.
fn identity(log: &str) -> String {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["fields"]["identity"].as_str().map(str::to_string))
        .expect("the operator logs its identity")
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

/// Leader election with a 10 s Lease.
fn election(ns: &str) -> Vec<String> {
    [
        "--leader-election",
        "--leader-election-namespace",
        ns,
        "--lease-duration",
        "10",
    ]
    .map(str::to_string)
    .to_vec()
}

/// Starts the first operator and waits until it leads, then the standby.
async fn leader_and_standby(
    ns: &str,
    stale_dest: &str,
    next_dest: &str,
) -> (Operator, Operator, String, String) {
    let flags = election(ns);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let stale = Operator::start(ns, stale_dest, &flags).await;
    eventually(
        "the first operator to lead",
        Duration::from_secs(60),
        || {
            let log = stale.log();
            async move { log.contains("this replica is the leader").then_some(()) }
        },
    )
    .await;
    let next = Operator::start(ns, next_dest, &flags).await;
    let (stale_id, next_id) = (identity(&stale.log()), identity(&next.log()));
    (stale, next, stale_id, next_id)
}

/// Resumes the paused leader once the new one has finished, waits until it has noticed and
/// exited (a few seconds more for anything it might still send), and asserts that nothing of it
/// reached either cluster after it resumed: on its own destination proxy nothing at all, on the
/// shared source proxy nothing not sent by the new leader.
async fn resume_and_assert_silent(
    stale: &mut Operator,
    next_id: &str,
    stale_dest: &Recorder,
    src: &Recorder,
) -> usize {
    stale.signal("CONT");
    let resumed = SystemTime::now();
    eventually("the stale leader to exit", Duration::from_secs(120), || {
        let exited = stale.exited().is_some();
        async move { exited.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = stale.log();
    let on_dest = stale_dest.after(resumed);
    let on_source: Vec<Seen> = src
        .after(resumed)
        .into_iter()
        .filter(|s| s.opaque_id.as_deref() != Some(next_id))
        .collect();
    let refused = log.matches("not sent").count();
    eprintln!(
        "stale leader after SIGCONT: {} request(s) to its destination, {} to the source not from the new leader; log lines naming an unsent request: {refused}",
        on_dest.len(),
        on_source.len()
    );
    assert!(
        on_dest.is_empty(),
        "the stale leader reached the destination after SIGCONT: {:#?}",
        &on_dest[..on_dest.len().min(10)]
    );
    assert!(
        on_source.is_empty(),
        "the stale leader reached the source after SIGCONT: {:#?}",
        &on_source[..on_source.len().min(10)]
    );
    refused
}

#[tokio::test]
async fn a_leader_paused_with_a_full_queue_sends_nothing_after_the_takeover() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-fence-queue").await;
    let es = engine(EngineKind::Elasticsearch8);
    let (sidx, didx) = (unique_index("fq-src"), unique_index("fq-dst"));
    const N: usize = 6_000;
    load(es.url(), &sidx, &docs(N)).await;
    let src = Recorder::start(es.url()).await;
    let (stale_dest, next_dest) = (
        Recorder::start(es.url()).await,
        Recorder::start(es.url()).await,
    );
    // A slow destination for the first leader: its readers run ahead and its queue fills.
    stale_dest.bulk_delay_ms.store(2_000, Ordering::SeqCst);
    let (mut stale, next, _stale_id, next_id) =
        leader_and_standby(&ns, &stale_dest.url, &next_dest.url).await;
    create_reindex(
        &client,
        &ns,
        "queue",
        json!({
            "source": {"remote": {"host": src.url}, "index": sidx, "size": 100, "slices": 2},
            "dest": {"index": didx},
            "verify": "Checksum",
        }),
    )
    .await;
    eventually(
        "the leader's bulk queue to fill (pages read well ahead of bulks written)",
        Duration::from_secs(120),
        || {
            let (pages, bulks) = (
                src.seen()
                    .iter()
                    .filter(|s| s.path.contains("_search"))
                    .count(),
                stale_dest.seen().iter().filter(|s| s.is_bulk()).count(),
            );
            async move { (bulks >= 1 && pages >= bulks + 6).then_some(()) }
        },
    )
    .await;
    stale.signal("STOP");
    stale_dest.bulk_delay_ms.store(0, Ordering::SeqCst);
    eventually("the standby to take over", Duration::from_secs(120), || {
        let log = next.log();
        async move {
            (log.contains("this replica is the leader") && log.contains("starting a copy"))
                .then_some(())
        }
    })
    .await;
    let obj = wait_terminal(&client, &ns, "queue", Duration::from_secs(300)).await;
    let status = obj.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    resume_and_assert_silent(&mut stale, &next_id, &stale_dest, &src).await;

    let r = checksum(
        &side("source", es.url(), &sidx),
        &side("destination", es.url(), &didx),
    )
    .await
    .unwrap();
    assert!(r.matched, "{}", r.message());
    assert_eq!(r.found, N as u64);
}

#[tokio::test]
async fn a_leader_paused_mid_cutover_moves_no_alias_and_deletes_nothing_after_the_takeover() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-fence-cutover").await;
    let es = engine(EngineKind::Elasticsearch8);
    let (sidx, didx, old, alias) = (
        unique_index("fc-src"),
        unique_index("fc-dst"),
        unique_index("fc-old"),
        unique_index("fc-live"),
    );
    const N: usize = 2_000;
    create_index(
        es.url(),
        &sidx,
        json!({"mappings": {"properties": {"updated_ms": {"type": "long"}}}}),
    )
    .await;
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let stamped: Vec<Doc> = (0..N)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "updated_ms": now_ms}).to_string(),
            routing: None,
        })
        .collect();
    load(es.url(), &sidx, &stamped).await;
    // The alias points at the old index until the cutover.
    create_index(es.url(), &old, json!({})).await;
    let (s, v) = call(
        "POST",
        &format!("{}/_aliases", es.url()),
        Some(json!({"actions": [{"add": {"index": old, "alias": alias}}]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let src = Recorder::start(es.url()).await;
    let (stale_dest, next_dest) = (
        Recorder::start(es.url()).await,
        Recorder::start(es.url()).await,
    );
    let (mut stale, next, _stale_id, next_id) =
        leader_and_standby(&ns, &stale_dest.url, &next_dest.url).await;
    create_reindex(
        &client,
        &ns,
        "live",
        json!({
            "source": {"remote": {"host": src.url}, "index": sidx, "size": 200},
            "dest": {"index": didx},
            "catchUp": {"field": "updated_ms", "overlap": "2s", "interval": "1s", "maxLag": "60s", "deleteMissing": true},
            "cutover": {"aliases": [alias]},
        }),
    )
    .await;
    wait_status(
        &client,
        &ns,
        "live",
        "Synced",
        Duration::from_secs(300),
        |s| {
            s.phase == Some(Phase::Syncing)
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Synced" && c.status == "True")
        },
    )
    .await;
    // Deletes no catch-up round sees: the cutover's comparison finds them, `deleteMissing`
    // deletes them from the destination. The leader is paused right after that comparison:
    // its first delete is held (answered 503, never forwarded) and the process stopped.
    let mut body = String::new();
    for i in [0, 7, 512, 1999] {
        body.push_str(&json!({"delete": {"_index": sidx, "_id": format!("d{i}")}}).to_string());
        body.push('\n');
    }
    let r = http()
        .post(format!("{}/_bulk?refresh=true", es.url()))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let pid = stale.pid();
    *stale_dest.hook.lock().unwrap() = Some(Hook {
        matches: Box::new(|method, path, body| {
            method == "POST" && path.contains("_bulk") && body.contains("\"delete\"")
        }),
        action: Box::new(move || {
            let ok = std::process::Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status()
                .expect("kill runs")
                .success();
            assert!(ok, "kill -STOP {pid}");
        }),
    });
    patch_spec(&client, &ns, "live", json!({"cutover": {"trigger": true}})).await;
    eventually(
        "the leader to be paused between the comparison and its deletes",
        Duration::from_secs(300),
        || {
            let fired = stale_dest.fired.load(Ordering::SeqCst);
            async move { fired.then_some(()) }
        },
    )
    .await;
    eventually("the standby to take over", Duration::from_secs(120), || {
        let log = next.log();
        async move {
            (log.contains("this replica is the leader") && log.contains("starting a copy"))
                .then_some(())
        }
    })
    .await;
    let obj = wait_terminal(&client, &ns, "live", Duration::from_secs(300)).await;
    let status = obj.status.clone().unwrap_or_default();
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let cut = condition(&status, "CutOver");
    assert!(cut.message.contains("deleted 4 documents"), "{cut:?}");
    // The new leader's alias move is the last one; the stale leader must not redo anything.
    resume_and_assert_silent(&mut stale, &next_id, &stale_dest, &src).await;

    let (_, aliases) = call("GET", &format!("{}/_alias/{alias}", es.url()), None).await;
    assert_eq!(
        aliases.as_object().unwrap().keys().collect::<Vec<_>>(),
        [&didx],
        "{aliases}"
    );
    let r = checksum(
        &side("source", es.url(), &sidx),
        &side("destination", es.url(), &didx),
    )
    .await
    .unwrap();
    assert!(r.matched, "{}", r.message());
    assert_eq!(r.found, (N - 4) as u64);
}
