//! Test harness: starts real Elasticsearch-API servers (noida-db as Elasticsearch 8, osmem-server
//! as OpenSearch 3) on free ports, loads and reads documents, runs the CLI. Servers stop on Drop.
//!
//! The servers come from `scripts/install-test-deps.sh` (under `$RR_TOOLS/bin`, default
//! `~/.cache/remote-reindex/bin`). A missing server is a test failure, never a skip (the one
//! exception: an engine whose JDK the machine lacks, see `missing_java`).

#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the installed tools live.
pub fn tools_bin() -> PathBuf {
    let root = std::env::var_os("RR_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/remote-reindex")
        });
    root.join("bin")
}

fn tool(name: &str) -> PathBuf {
    let p = tools_bin().join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        p.display()
    );
    p
}

/// A running search server.
pub struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    /// `Elasticsearch` or `OpenSearch`.
    pub flavor: &'static str,
}

impl Server {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the server (to simulate a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// noida-db answering as Elasticsearch 8.15.3.
pub fn noida() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = spawn_noida(dir.path(), "0");
    Server {
        child,
        url,
        _dir: dir,
        flavor: "Elasticsearch",
    }
}

impl Server {
    /// Stops the server with SIGTERM (noida-db writes its data on the way down; after SIGKILL
    /// it loses what it indexed in the last seconds).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Restarts a noida-db server on the same port and data directory (its documents survive;
    /// its scroll contexts do not).
    pub fn restart_noida(&mut self) {
        self.terminate();
        let port = self.url.rsplit(':').next().unwrap().to_string();
        let (child, url) = spawn_noida(self._dir.path(), &port);
        assert_eq!(url, self.url);
        self.child = child;
    }
}

fn spawn_noida(dir: &std::path::Path, port: &str) -> (Child, String) {
    let mut child = Command::new(tool("noida-db"))
        .args(["start", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--host",
            "127.0.0.1",
            "--only",
            "elasticsearch",
            "--elasticsearch-port",
            port,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("noida-db starts");
    let url = read_line_until(&mut child, |l| {
        l.trim()
            .strip_prefix("elasticsearch")
            .map(|u| u.trim().to_string())
    });
    wait_ready(&url);
    (child, url)
}

/// osmem-server answering as OpenSearch 3.8.0 (in memory).
pub fn osmem() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(tool("osmem-server"))
        .args([
            "-addr",
            "127.0.0.1:0",
            "-no-stdin-watch",
            "-no-ja",
            "-parent-pid",
        ])
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("osmem-server starts");
    let url = read_line_until(&mut child, |l| {
        serde_json::from_str::<Value>(l)
            .ok()
            .and_then(|v| v["url"].as_str().map(str::to_string))
    });
    wait_ready(&url);
    Server {
        child,
        url,
        _dir: dir,
        flavor: "OpenSearch",
    }
}

fn read_line_until(
    child: &mut Child,
    f: impl Fn(&str) -> Option<String> + Send + 'static,
) -> String {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if !sent && let Some(u) = f(&line) {
                let _ = tx.send(u);
                sent = true;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the server printed its URL")
}

fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = url.trim_start_matches("http://").to_string();
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{url} did not open");
}

/// A document to load: id, raw JSON source, optional routing.
#[derive(Clone, Debug)]
pub struct Doc {
    pub id: String,
    pub source: String,
    pub routing: Option<String>,
}

/// A plain HTTP client for test set-up and checks.
pub fn http() -> reqwest::Client {
    remote_reindex::search::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Sends a JSON request and returns the JSON answer (any status).
pub async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http().request(m, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Creates an index.
pub async fn create_index(base: &str, index: &str, body: Value) {
    let (s, v) = call("PUT", &format!("{base}/{index}"), Some(body)).await;
    assert!(s < 300, "create {index}: {s} {v}");
}

/// Bulk-loads documents (in 2,000-document requests) and refreshes.
pub async fn load(base: &str, index: &str, docs: &[Doc]) {
    for chunk in docs.chunks(2000) {
        let mut body = String::new();
        for d in chunk {
            let mut action = json!({"index": {"_index": index, "_id": d.id}});
            if let Some(r) = &d.routing {
                action["index"]["routing"] = json!(r);
            }
            body.push_str(&action.to_string());
            body.push('\n');
            body.push_str(&d.source);
            body.push('\n');
        }
        let resp = http()
            .post(format!("{base}/_bulk"))
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v["errors"],
            json!(false),
            "bulk load failed: {}",
            &v.to_string()[..v.to_string().len().min(600)]
        );
    }
    refresh(base, index).await;
}

/// `POST /index/_refresh`.
pub async fn refresh(base: &str, index: &str) {
    call("POST", &format!("{base}/{index}/_refresh"), None).await;
}

/// `_count` of an index.
pub async fn count(base: &str, index: &str) -> u64 {
    let (_, v) = call("GET", &format!("{base}/{index}/_count"), None).await;
    v["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("count of {index}: {v}"))
}

/// Flat settings of an index.
pub async fn settings(base: &str, index: &str) -> serde_json::Map<String, Value> {
    let (_, v) = call(
        "GET",
        &format!("{base}/{index}/_settings?flat_settings=true"),
        None,
    )
    .await;
    v.as_object()
        .and_then(|o| o.values().next())
        .and_then(|e| e["settings"].as_object().cloned())
        .unwrap_or_default()
}

/// Every document of an index by `_id`: the raw `_source` text (as the server returns it).
pub async fn all_docs(base: &str, index: &str) -> BTreeMap<String, String> {
    all_docs_routed(base, index)
        .await
        .into_iter()
        .map(|(id, (source, _))| (id, source))
        .collect()
}

/// Scrolls all of `index` (after a refresh) with the search `body`, handing each non-empty page's
/// raw bytes to `f`.
pub async fn for_each_page(base: &str, index: &str, body: Value, mut f: impl FnMut(&[u8])) {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "_scroll_id")]
        scroll_id: Option<String>,
        hits: HeadHits,
    }
    #[derive(serde::Deserialize)]
    struct HeadHits {
        hits: Vec<serde::de::IgnoredAny>,
    }
    refresh(base, index).await;
    let client = http();
    let mut bytes = client
        .post(format!("{base}/{index}/_search?scroll=10m"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    loop {
        let head: Head = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "scroll page: {e}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )
        });
        if head.hits.hits.is_empty() {
            return;
        }
        f(&bytes);
        let sid = head.scroll_id.expect("a non-empty page has a scroll id");
        bytes = client
            .post(format!("{base}/_search/scroll"))
            .json(&json!({"scroll": "10m", "scroll_id": sid}))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
}

/// Parses every source so that servers that reformat JSON compare equal.
pub fn parsed(docs: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    docs.iter()
        .map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap()))
        .collect()
}

/// Hostile but valid documents: odd ids, unicode, nesting, integers past 2^53, a ~1 MB document.
pub fn hostile_docs(n: usize) -> Vec<Doc> {
    let odd_ids = [
        "a/b",
        "100%",
        "with space",
        "ünïcødé",
        "emoji 😀",
        "quote\"d",
        "back\\slash",
        "plus+sign",
        "q?x&y#z",
        "tab\tid",
    ];
    (0..n)
        .map(|i| {
            let id = if i < odd_ids.len() { odd_ids[i].to_string() } else { format!("doc/{i} é%") };
            let source = if i == n / 2 {
                json!({"n": i, "tag": "huge", "blob": "x".repeat(1 << 20)}).to_string()
            } else {
                format!(
                    r#"{{"n":{i},"tag":"t{}","big":9007199254740993,"max":18446744073709551615,"neg":-9007199254740993,"text":"ünïcødé — 日本語 {i}","nested":{{"a":[1,2,3],"b":{{"c":"\"quoted\" \\ back"}}}},"arr":[{{"k":"v{i}"}}]}}"#,
                    i % 7
                )
            };
            Doc { id, source, routing: None }
        })
        .collect()
}

/// A mapping that stores everything but indexes only `n` and `tag` (keeps memory low on servers
/// that index every string).
pub fn lean_mapping() -> Value {
    json!({"mappings": {"dynamic": false, "properties": {"n": {"type": "long"}, "tag": {"type": "keyword"}}}})
}

/// The CLI binary.
pub fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_remote-reindex"))
}

/// Writes a manifest to a temp file.
pub fn manifest(dir: &tempfile::TempDir, name: &str, yaml: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, yaml).unwrap();
    p
}

/// Runs the CLI to completion: (exit code, stdout, stderr).
pub async fn run_cli(args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::from(cli());
    cmd.args(args);
    let out = cmd.output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Minimal HTTP/1.1 plumbing for the `fake_*` proxies (fault injection a real server cannot
/// produce): read one request, forward it, write an answer.
pub mod fake_http {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    /// One request read from a client connection.
    pub struct Request {
        pub method: String,
        pub path: String,
        pub content_type: String,
        pub body: Vec<u8>,
    }

    /// Reads the next request; `None` when the client closed the connection.
    pub async fn read(s: &mut BufReader<TcpStream>) -> Option<Request> {
        let mut line = String::new();
        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
        let (mut len, mut content_type) = (0usize, "application/json".to_string());
        loop {
            let mut h = String::new();
            s.read_line(&mut h).await.ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':')?;
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().ok()?,
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.ok()?;
        Some(Request {
            method,
            path,
            content_type,
            body,
        })
    }

    /// Sends `req` to the real server at `upstream`; returns (status, body).
    pub async fn forward(upstream: &str, req: &Request) -> (u16, Vec<u8>) {
        let m = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut r = super::http().request(m, format!("{upstream}{}", req.path));
        if !req.body.is_empty() {
            r = r
                .header("content-type", req.content_type.clone())
                .body(req.body.clone());
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    /// Writes a JSON answer.
    pub async fn respond(s: &mut BufReader<TcpStream>, status: u16, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.get_mut().write_all(head.as_bytes()).await.unwrap();
        s.get_mut().write_all(body).await.unwrap();
    }
}

/// Documents written more than once (`_version` > 1), scanning the index with `version: true`.
pub async fn rewritten(base: &str, index: &str) -> u64 {
    let mut n = 0;
    let body = json!({"size": 2000, "version": true, "_source": false, "sort": ["_doc"]});
    for_each_page(base, index, body, |bytes| {
        let page: Value = serde_json::from_slice(bytes).unwrap();
        let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
        n += hits
            .iter()
            .filter(|h| h["_version"].as_u64().unwrap_or(1) > 1)
            .count() as u64;
    })
    .await;
    n
}

/// Appends a row to the fault report (`target/fault-report.md`), which `scripts/test.sh` prints
/// after the run: fault, documents expected, found, rewritten, final phase.
pub fn report_fault(fault: &str, expected: u64, found: u64, rewritten: u64, phase: &str) {
    use std::io::Write;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/fault-report.md");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(
            f,
            "| {fault} | {expected} | {found} | {rewritten} | {phase} |"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Real engines (Elasticsearch / OpenSearch nodes from Maven Central jars, `scripts/engine.sh`).
// `scripts/test.sh` starts one node per kind in `RR_ENGINES` before nextest and exports its URL as
// `RR_ENGINE_<KIND>`; tests share those nodes and each uses its own indices (`unique_index`).
// Tests that restart, expire or throttle a node start a private one with `own_engine`.
// ---------------------------------------------------------------------------------------------

/// An engine kind of `scripts/engine.sh` (docs/engines.md: which boot, and their probe results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// OpenSearch 2.19.x.
    OpenSearch2,
    /// Elasticsearch 7.17.x.
    Elasticsearch7,
    /// Elasticsearch 6.8.x (typed: `_doc`).
    Elasticsearch6,
    /// OpenSearch 1.3.x.
    OpenSearch1,
    /// OpenSearch 3.x (Java 21+).
    OpenSearch3,
    /// Elasticsearch 8.19.x (no reindex module: a destination, or a source for the copier).
    Elasticsearch8,
    /// Elasticsearch 7.10.2.
    Elasticsearch710,
}

impl EngineKind {
    /// The `scripts/engine.sh` name, e.g. `opensearch-2`.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::OpenSearch2 => "opensearch-2",
            EngineKind::Elasticsearch7 => "elasticsearch-7",
            EngineKind::Elasticsearch6 => "elasticsearch-6",
            EngineKind::OpenSearch1 => "opensearch-1",
            EngineKind::OpenSearch3 => "opensearch-3",
            EngineKind::Elasticsearch8 => "elasticsearch-8",
            EngineKind::Elasticsearch710 => "elasticsearch-7.10",
        }
    }

    /// The variable `scripts/test.sh` exports the shared node's URL in, e.g. `RR_ENGINE_OPENSEARCH_2`.
    pub fn env_var(self) -> String {
        format!(
            "RR_ENGINE_{}",
            self.name().to_ascii_uppercase().replace(['-', '.'], "_")
        )
    }

    /// `Elasticsearch` or `OpenSearch`.
    pub fn flavor(self) -> &'static str {
        match self {
            EngineKind::OpenSearch1 | EngineKind::OpenSearch2 | EngineKind::OpenSearch3 => {
                "OpenSearch"
            }
            _ => "Elasticsearch",
        }
    }

    /// The major version.
    pub fn major(self) -> u32 {
        match self {
            EngineKind::OpenSearch1 => 1,
            EngineKind::OpenSearch2 => 2,
            EngineKind::OpenSearch3 => 3,
            EngineKind::Elasticsearch6 => 6,
            EngineKind::Elasticsearch7 | EngineKind::Elasticsearch710 => 7,
            EngineKind::Elasticsearch8 => 8,
        }
    }

    /// The setting that allows native `_reindex` from remote hosts.
    pub fn remote_allow_setting(self) -> &'static str {
        match self {
            EngineKind::OpenSearch2 | EngineKind::OpenSearch3 => "reindex.remote.allowlist",
            _ => "reindex.remote.whitelist",
        }
    }

    /// Whether documents carry a mapping type (`_doc`) in bulk actions and hits (Elasticsearch 6).
    pub fn typed(self) -> bool {
        self == EngineKind::Elasticsearch6
    }
}

/// A shared engine started by `scripts/test.sh`.
#[derive(Clone, Debug)]
pub struct EngineRef {
    pub kind: EngineKind,
    pub url: String,
    /// `Elasticsearch` or `OpenSearch`.
    pub flavor: &'static str,
    pub major: u32,
}

impl EngineRef {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The shared engine of `kind`. Panics when `scripts/test.sh` did not start it: a missing server
/// is a test failure, never a skip.
pub fn engine(kind: EngineKind) -> EngineRef {
    let var = kind.env_var();
    let url = std::env::var(&var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run the tests through scripts/test.sh with {} in RR_ENGINES \
             (default \"opensearch-2 elasticsearch-7 elasticsearch-6 elasticsearch-8\"), or start one with \
             `scripts/engine.sh start {} 0 DIR` and export {var}=URL",
            kind.name(),
            kind.name()
        )
    });
    EngineRef {
        kind,
        url: url.trim_end_matches('/').to_string(),
        flavor: kind.flavor(),
        major: kind.major(),
    }
}

fn engine_script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/engine.sh")
}

/// Why `kind` cannot run here, when the JDK it needs is missing (OpenSearch 3 needs Java 21+,
/// which Debian bookworm does not ship): `scripts/engine.sh java KIND`'s reason. The one case a
/// test skips instead of failing: the machine, not the product, lacks something, and the skip
/// says which.
pub fn missing_java(kind: EngineKind) -> Option<String> {
    let out = Command::new(engine_script())
        .args(["java", kind.name()])
        .stdin(Stdio::null())
        .output()
        .expect("scripts/engine.sh runs");
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).trim().to_string())
}

/// A private engine for one test (restart, expiry, throttling); stopped on Drop.
pub struct OwnEngine {
    pub kind: EngineKind,
    dir: tempfile::TempDir,
    url: String,
    port: u16,
    settings: Vec<String>,
    running: bool,
}

/// Starts a private node of `kind` through `scripts/engine.sh start KIND 0 <tempdir> SETTINGS...`
/// (heap: `RR_OWN_ENGINE_HEAP`, default 384m). Panics with the engine's error if it does not start.
pub fn own_engine(kind: EngineKind, settings: &[(&str, &str)]) -> OwnEngine {
    let dir = tempfile::Builder::new()
        .prefix(&format!("rr-{}-", kind.name()))
        .tempdir()
        .unwrap();
    let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let url = start_engine(kind, 0, dir.path(), &settings);
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    OwnEngine {
        kind,
        dir,
        url,
        port,
        settings,
        running: true,
    }
}

fn start_engine(kind: EngineKind, port: u16, dir: &std::path::Path, settings: &[String]) -> String {
    let heap = std::env::var("RR_OWN_ENGINE_HEAP").unwrap_or_else(|_| "384m".into());
    let out = Command::new(engine_script())
        .arg("start")
        .arg(kind.name())
        .arg(port.to_string())
        .arg(dir)
        .args(settings)
        .env("ENGINE_HEAP", heap)
        .stdin(Stdio::null())
        .output()
        .expect("scripts/engine.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/engine.sh start {} failed ({}):\n{stderr}",
        kind.name(),
        out.status
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("url="))
        .unwrap_or_else(|| panic!("no url= line from scripts/engine.sh: {stdout}\n{stderr}"))
        .to_string()
}

impl OwnEngine {
    /// Base URL, e.g. `http://127.0.0.1:40123` (the same across restarts).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The node's directory (data, `engine.log`).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the node (SIGTERM; returns once the JVM exited and the port is free). Data is kept.
    pub fn stop(&mut self) {
        if self.running {
            let st = Command::new(engine_script())
                .arg("stop")
                .arg(self.dir.path())
                .stdin(Stdio::null())
                .status()
                .expect("scripts/engine.sh runs");
            assert!(st.success(), "scripts/engine.sh stop failed: {st}");
            self.running = false;
        }
    }

    /// Starts the stopped node again on the same directory and port.
    pub fn start(&mut self) {
        assert!(!self.running, "the engine is running");
        let url = start_engine(self.kind, self.port, self.dir.path(), &self.settings);
        assert_eq!(url, self.url, "restarted on another port");
        self.running = true;
    }

    /// Stops and starts the node on the same directory and port; its indices survive, its
    /// scroll contexts and PITs do not.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }
}

impl Drop for OwnEngine {
    fn drop(&mut self) {
        if self.running {
            let _ = Command::new(engine_script())
                .arg("stop")
                .arg(self.dir.path())
                .stdin(Stdio::null())
                .status();
        }
    }
}

/// A fresh index name for one test on a shared engine: `{prefix}-{pid}-{n}-{nanos}` (lower case).
pub fn unique_index(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{}-{}-{nanos:x}",
        prefix.to_ascii_lowercase(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes an index (cleanup on a shared engine).
pub async fn delete_index(base: &str, index: &str) {
    call("DELETE", &format!("{base}/{index}"), None).await;
}

/// Bulk-loads documents into a typed (Elasticsearch 6) index with `_type: doc_type`, and refreshes.
pub async fn load_typed(base: &str, index: &str, doc_type: &str, docs: &[Doc]) {
    for chunk in docs.chunks(500) {
        let mut body = String::new();
        for d in chunk {
            let mut action = json!({"index": {"_index": index, "_type": doc_type, "_id": d.id}});
            if let Some(r) = &d.routing {
                action["index"]["routing"] = json!(r);
            }
            body.push_str(&action.to_string());
            body.push('\n');
            body.push_str(&d.source);
            body.push('\n');
        }
        let v: Value = http()
            .post(format!("{base}/_bulk"))
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["errors"],
            json!(false),
            "bulk load failed: {}",
            &v.to_string()[..v.to_string().len().min(600)]
        );
    }
    refresh(base, index).await;
}

/// Every document of an index by `_id`: (raw `_source` text, `_routing`), scrolling the index.
pub async fn all_docs_routed(
    base: &str,
    index: &str,
) -> BTreeMap<String, (String, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        hits: Hits<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Hits<'a> {
        #[serde(borrow)]
        hits: Vec<Hit<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Hit<'a> {
        #[serde(rename = "_id")]
        id: String,
        #[serde(rename = "_routing")]
        routing: Option<String>,
        #[serde(rename = "_source", borrow)]
        source: &'a serde_json::value::RawValue,
    }
    let mut out = BTreeMap::new();
    // 100 per page: hostile sets hold 1 MB documents (a 500-document page is 500 MB).
    let body = json!({"size": 100, "sort": ["_doc"], "query": {"match_all": {}}});
    for_each_page(base, index, body, |bytes| {
        let page: Page = serde_json::from_slice(bytes).unwrap();
        for h in page.hits.hits {
            let id = h.id.clone();
            assert!(
                out.insert(h.id, (h.source.get().to_string(), h.routing))
                    .is_none(),
                "duplicate _id {id}"
            );
        }
    })
    .await;
    out
}
