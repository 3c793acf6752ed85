//! `remote-reindex run -f`: every exit code, with real servers where one can answer.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

const HEAD: &str = "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {name: t}\n";

async fn run_yaml(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", yaml);
    run_cli(&["run", "-f", f.to_str().unwrap()]).await
}

fn spec(src: &str, dst: &str) -> String {
    format!(
        "{HEAD}spec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: src\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: dst\n"
    )
}

/// A closed local port: connecting is refused.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn exit_2_for_bad_yaml_unknown_fields_scripts_and_missing_secrets() {
    let (code, _, err) = run_yaml("spec: [unclosed").await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid YAML"), "{err}");

    let (code, _, err) = run_yaml(&format!(
        "{}  colour: blue\n",
        spec("http://127.0.0.1:1", "http://127.0.0.1:2")
    ))
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown field `spec.colour`"), "{err}");

    let (code, _, err) = run_yaml(&format!(
        "{}  script: {{source: \"ctx._source.x = 1\"}}\n",
        spec("http://127.0.0.1:1", "http://127.0.0.1:2")
    ))
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spec.dest.pipeline"), "{err}");

    let y = spec("http://127.0.0.1:1", "http://127.0.0.1:2").replace(
        "remote: {host: \"http://127.0.0.1:1\"}",
        "remote: {host: \"http://127.0.0.1:1\", basicAuth: {secretRef: {name: old-creds}}}",
    );
    let (code, _, err) = run_yaml(&format!("{y}  preflightTimeout: 1s\n")).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("Secret `old-creds` does not exist") && err.contains("SecretNotFound"),
        "{err}"
    );

    let y =
        spec("http://127.0.0.1:1", "http://127.0.0.1:2").replace("index: dst", "index: Bad/Name");
    let (code, _, err) = run_yaml(&y).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spec.dest.index"), "{err}");
}

#[tokio::test]
async fn secret_values_from_the_files_are_used_and_never_printed() {
    // The destination is reached with basic auth over loopback http; the servers ignore the
    // header, which is enough to show the Secret resolves and its value stays out of output.
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(50)).await;
    let y = spec(src.url(), dst.url()).replace(
        &format!("remote: {{host: \"{}\"}}", dst.url()),
        &format!(
            "remote: {{host: \"{}\", basicAuth: {{secretRef: {{name: creds}}}}}}",
            dst.url()
        ),
    );
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds}\ndata: {username: ZWxhc3RpYw==}\nstringData: {password: \"s3cr3t-pa55\"}\n";
    let (code, out, err) = run_yaml(&format!("{y}{secret}")).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("s3cr3t-pa55") && !err.contains("s3cr3t-pa55"));
    assert_eq!(count(dst.url(), "dst").await, 50);
}

#[tokio::test]
async fn exit_3_for_unreachable_version_mismatch_and_non_empty_destination() {
    let dead = closed_port_url();
    let dst = noida();
    let (code, _, err) = run_yaml(&format!(
        "{}  preflightTimeout: 2s\n",
        spec(&dead, dst.url())
    ))
    .await;
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("Unreachable") && err.contains(&dead), "{err}");

    // A source claiming Elasticsearch 9 cannot be copied into Elasticsearch 8.
    let fake = fake_es_root::start("9.1.0").await;
    let (code, _, err) = run_yaml(&spec(&fake, dst.url())).await;
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("VersionMismatch") && err.contains("9.1.0") && err.contains("8.15.3"),
        "{err}"
    );

    let src = osmem();
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(20)).await;
    create_index(dst.url(), "dst", lean_mapping()).await;
    load(dst.url(), "dst", &hostile_docs(3)).await;
    let (code, _, err) = run_yaml(&spec(src.url(), dst.url())).await;
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("DestinationNotEmpty") && err.contains("allowExisting"),
        "{err}"
    );
    assert_eq!(
        count(dst.url(), "dst").await,
        3,
        "a refused copy must not write"
    );
    let (code, _, err) = run_yaml(&format!(
        "{}    allowExisting: true\n",
        spec(src.url(), dst.url())
    ))
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(count(dst.url(), "dst").await, 20);
}

#[tokio::test]
async fn exit_1_when_documents_fail_beyond_max_failed_docs() {
    let (src, dst) = (osmem(), noida());
    create_index(src.url(), "src", json!({"mappings": {"dynamic": false}})).await;
    let mut docs = hostile_docs(200);
    docs[10].source = r#"{"n":"not a number"}"#.into();
    docs[20].source = r#"{"n":"neither"}"#.into();
    load(src.url(), "src", &docs).await;
    let y = format!(
        "{}    mappings: {{dynamic: false, properties: {{n: {{type: long}}}}}}\n",
        spec(src.url(), dst.url())
    );
    let (code, _, err) = run_yaml(&y).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("TooManyFailures"), "{err}");
    assert!(
        settings(dst.url(), "dst")
            .await
            .get("index.refresh_interval")
            .is_none(),
        "settings restored after a failure"
    );

    // With room for both failures the copy succeeds and the count verifies read − failed.
    let y = format!(
        "{}    mappings: {{dynamic: false, properties: {{n: {{type: long}}}}}}\n  maxFailedDocs: 2\n",
        spec(src.url(), dst.url()).replace("index: dst", "index: dst2")
    );
    let (code, out, err) = run_yaml(&y).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 failed"), "{out}");
    assert_eq!(count(dst.url(), "dst2").await, 198);
}

#[tokio::test]
async fn exit_130_on_interrupt_restores_settings() {
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(4000)).await;
    create_index(
        dst.url(),
        "dst",
        json!({"settings": {"index": {"refresh_interval": "3s"}}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "r.yaml",
        &format!(
            "{}  requestsPerSecond: 200\n",
            spec(src.url(), dst.url()).replace("index: src", "index: src\n    size: 100")
        ),
    );
    let mut cmd = tokio::process::Command::from(cli());
    cmd.args(["run", "-f", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    eventually(
        "the copy to start writing",
        Duration::from_secs(60),
        || async {
            (settings(dst.url(), "dst")
                .await
                .get("index.refresh_interval")
                == Some(&json!("-1")))
            .then_some(())
        },
    )
    .await;
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let s = settings(dst.url(), "dst").await;
    assert_eq!(s.get("index.refresh_interval"), Some(&json!("3s")), "{s:?}");
    assert!(
        count(dst.url(), "dst").await < 4000,
        "interrupted before the end"
    );
}

/// `fake_es_root`: answers `GET /` as an Elasticsearch of any version (a real server cannot
/// claim another version). Everything else gets 404.
mod fake_es_root {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub async fn start(version: &str) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let body = format!(
            r#"{{"name":"fake","version":{{"number":"{version}","build_flavor":"default"}},"tagline":"You Know, for Search"}}"#
        );
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let root = buf[..n].starts_with(b"GET / ");
                    let (status, b) = if root {
                        ("200 OK", body)
                    } else {
                        ("404 Not Found", "{}".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                        b.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        url
    }
}

/// Runs `remote-reindex ARGS` with its stderr in a file, killing it after `bound` (so a run that
/// retries for minutes fails the test with what it printed): (exit code or -1 when killed,
/// stdout, stderr, how long it ran).
async fn run_bounded(args: &[&str], bound: Duration) -> (i32, String, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = tokio::process::Command::from(cli())
        .args(args)
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let code = match tokio::time::timeout(bound, child.wait()).await {
        Ok(status) => status.unwrap().code().unwrap_or(-1),
        Err(_) => {
            child.kill().await.unwrap();
            -1
        }
    };
    let elapsed = started.elapsed();
    let read = |p| std::fs::read_to_string(p).unwrap_or_default();
    (code, read(&out_path), read(&err_path), elapsed)
}

/// A loopback address that never answers: a listening socket with a backlog of 0 whose one
/// accept slot is taken, so the kernel drops every further SYN and a connect hangs until the
/// client's own timeout. The returned values keep the socket (and its filler) open.
async fn silent_url() -> (tokio::net::TcpListener, Vec<std::net::TcpStream>, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => return (listener, fillers, format!("http://{addr}")),
        }
    }
    panic!("the backlog of {addr} never filled");
}

/// The Pending lines the CLI prints while it retries a pre-flight failure.
fn pending_lines(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("Pending [")).collect()
}

#[tokio::test]
async fn a_wrong_password_is_reported_after_one_request_without_retrying() {
    use crate::nginx::{Nginx, Pki};
    use crate::tls::{BASIC, USER, assert_no_secrets, creds, ep, error_line, object, password};
    let (src, dst) = (noida(), osmem());
    create_index(src.url(), "src", lean_mapping()).await;
    let (pki, pw, wrong) = (Pki::generate(), password("right"), password("wrong"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    // No preflightTimeout in the manifest: the CLI's own default applies.
    let y = crate::tls::reindex(
        &ep(
            &nginx.tls_auth_url(),
            &format!("{BASIC}, tls: {{caSecretRef: {{name: es-ca}}}}"),
        ),
        &ep(dst.url(), ""),
        "",
    ) + &creds(&wrong)
        + &object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &y);
    let (code, out, err, elapsed) =
        run_bounded(&["run", "-f", f.to_str().unwrap()], Duration::from_secs(90)).await;
    let secrets = vec![
        pw.clone(),
        wrong.clone(),
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{USER}:{wrong}"),
        ),
    ];
    assert_no_secrets(&out, &err, &secrets);
    let refused = nginx.answered(nginx.tls_auth, 401, "/");
    assert_eq!(
        code,
        3,
        "after {elapsed:?}, {refused} requests refused with 401; stderr: {}",
        crate::tls::tail(&err)
    );
    let line = error_line(&err);
    assert!(
        line.starts_with("error [AuthenticationFailed]") && line.contains("401"),
        "{line}"
    );
    assert_eq!(refused, 1, "one request, no retry: {}", nginx.access_log());
    assert!(pending_lines(&err).is_empty(), "{}", crate::tls::tail(&err));
    eprintln!("measured: a wrong password reported after {elapsed:?}");
    // The issue's bound is 5 s; generous on a loaded machine (one request is the real check).
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[tokio::test]
async fn a_refused_destination_port_is_retried_briefly_and_reported_as_it_goes() {
    let src = noida();
    create_index(src.url(), "src", lean_mapping()).await;
    let dead = closed_port_url();
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &spec(src.url(), &dead));
    let (code, _, err, elapsed) =
        run_bounded(&["run", "-f", f.to_str().unwrap()], Duration::from_secs(90)).await;
    let pending = pending_lines(&err);
    assert_eq!(
        code,
        3,
        "after {elapsed:?} and {} retries: {}",
        pending.len(),
        crate::tls::tail(&err)
    );
    let line = crate::tls::error_line(&err);
    assert!(
        line.starts_with("error [Unreachable]") && line.contains(&dead),
        "{line}"
    );
    assert!(
        !pending.is_empty() && pending.iter().all(|l| l.contains("[Unreachable]")),
        "each retry is shown: {}",
        crate::tls::tail(&err)
    );
    eprintln!(
        "measured: a refused destination port reported after {elapsed:?} ({} attempts)",
        pending.len() + 1
    );
    // The CLI's default (30 s), not the operator's 5 minutes; the issue's bound is 60 s.
    assert!(
        pending[0].contains("giving up in 30s") || pending[0].contains("giving up in 29s"),
        "{}",
        pending[0]
    );
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

#[tokio::test]
async fn a_silent_destination_is_cut_at_the_preflight_deadline() {
    let src = noida();
    create_index(src.url(), "src", lean_mapping()).await;
    let (_listener, _fillers, silent) = silent_url().await;
    let dir = tempfile::tempdir().unwrap();
    // connectTimeout 30 s (the default, spelt out): the last attempt is cut at the pre-flight
    // deadline, not left to run its own timeout.
    let y = spec(src.url(), &silent).replace(
        &format!("remote: {{host: \"{silent}\"}}"),
        &format!("remote: {{host: \"{silent}\", connectTimeout: 30s}}"),
    );
    let f = manifest(&dir, "r.yaml", &format!("{y}  preflightTimeout: 4s\n"));
    let (code, _, err, elapsed) =
        run_bounded(&["run", "-f", f.to_str().unwrap()], Duration::from_secs(90)).await;
    assert_eq!(code, 3, "after {elapsed:?}: {}", crate::tls::tail(&err));
    let line = crate::tls::error_line(&err);
    assert!(
        line.starts_with("error [Unreachable]") && line.contains(&silent),
        "{line}"
    );
    eprintln!("measured: a silent destination with preflightTimeout 4s reported after {elapsed:?}");
    // 4 s of pre-flight, not one 30 s connect attempt.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");

    // Without any timeout in the manifest: the CLI's default, within the issue's 60 s.
    let f = manifest(&dir, "r2.yaml", &spec(src.url(), &silent));
    let (code, _, err, elapsed) =
        run_bounded(&["run", "-f", f.to_str().unwrap()], Duration::from_secs(90)).await;
    assert_eq!(code, 3, "after {elapsed:?}: {}", crate::tls::tail(&err));
    eprintln!("measured: a silent destination (CLI default) reported after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

#[tokio::test]
async fn the_preflight_timeout_flag_wins_over_the_manifest() {
    let src = noida();
    create_index(src.url(), "src", lean_mapping()).await;
    let dead = closed_port_url();
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(
        &dir,
        "r.yaml",
        &format!("{}  preflightTimeout: 10m\n", spec(src.url(), &dead)),
    );
    let (code, _, err, elapsed) = run_bounded(
        &[
            "run",
            "-f",
            f.to_str().unwrap(),
            "--preflight-timeout",
            "2s",
        ],
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(code, 3, "after {elapsed:?}: {}", crate::tls::tail(&err));
    let pending = pending_lines(&err);
    assert!(
        pending
            .first()
            .is_some_and(|l| l.contains("giving up in 2s") || l.contains("giving up in 1s")),
        "{}",
        crate::tls::tail(&err)
    );
    // The manifest's value, when no flag is given.
    let (code, _, err, elapsed) =
        run_bounded(&["run", "-f", f.to_str().unwrap()], Duration::from_secs(5)).await;
    assert_eq!(code, -1, "still retrying after {elapsed:?}: {err}");
    assert!(
        pending_lines(&err)
            .first()
            .is_some_and(|l| l.contains("giving up in 10m")),
        "{err}"
    );
}

#[tokio::test]
async fn a_misspelt_field_and_a_bad_value_are_named_by_their_path() {
    let base = spec("http://127.0.0.1:1", "http://127.0.0.1:2");
    let (code, _, err) = run_yaml(&base.replace("index: src", "indx: src")).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown field `spec.source.indx` (did you mean `index`?)"),
        "{err}"
    );
    let (code, _, err) = run_yaml(&base.replace("index: src", "index: src\n    size: lots")).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("spec.source.size: invalid type: string \"lots\""),
        "{err}"
    );
}

/// The Finalizing line says where the copy's time went and which side was the limit: with
/// `requestsPerSecond` far below what two real engines on loopback copy, the readers spend their
/// time on the throttle, and the line says so (real Elasticsearch 7 → OpenSearch 2).
#[tokio::test]
async fn run_f_says_where_the_time_went_real_engines() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("timed-src"), unique_index("timed-dst"));
    create_index(src.url(), &sidx, lean_mapping()).await;
    load(src.url(), &sidx, &hostile_docs(2000)).await;
    let y = format!(
        "{}  requestsPerSecond: 1000\n",
        spec(src.url(), dst.url())
            .replace("index: src", &format!("index: {sidx}\n    size: 100"))
            .replace("index: dst", &format!("index: {didx}"))
    );
    let (code, out, err) = run_yaml(&y).await;
    assert_eq!(code, 0, "{err}");
    // The phase lines go to stderr, the result to stdout.
    let finalizing = err
        .lines()
        .find(|l| l.starts_with("Finalizing:"))
        .unwrap_or_else(|| panic!("no Finalizing line: {err}{out}"));
    assert!(
        finalizing.contains("where the time went: readers waited on the source")
            && finalizing.contains("requestsPerSecond was the limit"),
        "{finalizing}"
    );
    assert_eq!(count(dst.url(), &didx).await, 2000);
}

/// A scroll's page size is fixed when it opens, and a page over the memory budget restarts its
/// slice from the beginning. With documents of 0.2–20 KiB in random order, a first page size
/// fitted to the sample's mean makes about every other page too big, and every restart reads
/// the slice again. The copy must read each document once: no slice restart (real
/// Elasticsearch 7 → OpenSearch 2, 6,000 documents ≈ 60 MB, pages of about 8 MiB).
#[tokio::test]
async fn scroll_pages_of_mixed_sizes_fit_the_budget_without_restarting_real_engines() {
    let (src, dst) = (
        engine(EngineKind::Elasticsearch7),
        engine(EngineKind::OpenSearch2),
    );
    let (sidx, didx) = (unique_index("mixed-src"), unique_index("mixed-dst"));
    create_index(src.url(), &sidx, lean_mapping()).await;
    // Sizes uniform over 200 B..20 KiB from a fixed LCG: the same documents every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let docs: Vec<Doc> = (0..6000)
        .map(|i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = 200 + (x >> 33) as usize % (20 * 1024 - 200);
            Doc {
                id: format!("m{i}"),
                source: json!({"n": i, "pad": "p".repeat(len)}).to_string(),
                routing: None,
            }
        })
        .collect();
    load(src.url(), &sidx, &docs).await;
    let y = spec(src.url(), dst.url())
        .replace(
            "index: src",
            &format!("index: {sidx}\n    paging: scroll\n    slices: 1"),
        )
        .replace("index: dst", &format!("index: {didx}"));
    let (code, out, err) = run_yaml(&y).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("copied 6000 of 6000") && out.contains(" 0 slice restarts"),
        "{out}{err}"
    );
    assert_eq!(count(dst.url(), &didx).await, 6000);
}
