//! Redirects are never followed (issue 22): an allowed host that answers `307 Location:
//! <another host>` must not lead the copy, its body, its credentials or its `_bulk` writes to a
//! host nobody allowed. The copy ends failed, naming the status and the `Location`, and the
//! other host is never connected to.
//!
//! Two small in-process servers stand in for what a real cluster cannot be made to do on cue:
//! [`redirecting_server`] (answers 307 to everything, or only to `_bulk`, forwarding the rest to
//! a real server) and [`recording_server`] (the "other host": counts its connections and records
//! the requests, forwarding them to a real server so that a followed redirect *works*, as it
//! would against another tenant's cluster). Everything else is real: noida-db clusters, the CLI
//! binary, and the operator on the kube-apiserver of `scripts/test.sh`.

use crate::controller::k8s::*;
use crate::harness::fake_http;
use crate::harness::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};

/// The "other host" of a redirect: counts connections, records `METHOD path` of each request,
/// and forwards it to `upstream` (a real server) when given, else answers 404.
pub(crate) struct Recording {
    pub url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// `recording_server`: see [`Recording`].
pub(crate) async fn recording_server(upstream: Option<String>) -> Recording {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (r, upstream) = (r.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                while let Some(req) = fake_http::read(&mut s).await {
                    r.lock()
                        .unwrap()
                        .push(format!("{} {}", req.method, req.path));
                    match &upstream {
                        Some(u) => {
                            let (status, body) = fake_http::forward(u, &req).await;
                            fake_http::respond(&mut s, status, &body).await;
                        }
                        None => fake_http::respond(&mut s, 404, b"{}").await,
                    }
                }
            });
        }
    });
    Recording {
        url,
        connections,
        requests,
    }
}

/// `redirecting_server`: answers `307 Temporary Redirect` with `Location: {to}{path}`. With
/// `only`, only requests whose path contains it are redirected and the others are forwarded to
/// `upstream` (a real server).
pub(crate) async fn redirecting_server(
    to: &str,
    only: Option<&'static str>,
    upstream: Option<String>,
) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let to = to.to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (to, upstream) = (to.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                while let Some(req) = fake_http::read(&mut s).await {
                    let redirect = only.is_none_or(|o| req.path.contains(o));
                    if redirect || upstream.is_none() {
                        // A HEAD answer has no body (the client would read it as the next
                        // answer).
                        let body: &[u8] = if req.method == "HEAD" {
                            b""
                        } else {
                            br#"{"moved":true}"#
                        };
                        let head = format!(
                            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}{}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            req.path,
                            body.len()
                        );
                        if s.get_mut().write_all(head.as_bytes()).await.is_err()
                            || s.get_mut().write_all(body).await.is_err()
                        {
                            return;
                        }
                    } else {
                        let (status, body) =
                            fake_http::forward(upstream.as_deref().unwrap(), &req).await;
                        fake_http::respond(&mut s, status, &body).await;
                    }
                }
            });
        }
    });
    url
}

fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("r{i}"),
            source: json!({"n": i, "msg": format!("redirect {i}")}).to_string(),
            routing: None,
        })
        .collect()
}

fn manifest_yaml(src: &str, src_extra: &str, dst: &str, dst_extra: &str) -> String {
    format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {{name: t}}\nspec:\n  source:\n    remote: {{host: \"{src}\"{src_extra}}}\n    index: src\n  dest:\n    remote: {{host: \"{dst}\"{dst_extra}}}\n    index: dst\n  preflightTimeout: 2s\n"
    )
}

async fn run_manifest(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", yaml);
    run_cli(&["run", "-f", f.to_str().unwrap()]).await
}

/// The acceptance scenario in the CLI: the allowed source answers `307 Location: <other
/// host>`; `run -f` exits non-zero naming the status and the Location on stderr, and the
/// other host (which holds an index of the same name) is never connected to.
#[tokio::test]
async fn redirect_cli_source_307_is_not_followed_and_names_status_and_location() {
    let (other, dst) = (noida(), noida());
    load(other.url(), "src", &docs(40)).await;
    let rec = recording_server(Some(other.url().to_string())).await;
    let redirect = redirecting_server(&rec.url, None, None).await;
    let (code, _out, err) = run_manifest(&manifest_yaml(&redirect, "", dst.url(), "")).await;
    let dest_status = call("GET", &format!("{}/dst", dst.url()), None).await.0;
    assert!(
        code != 0
            && err.contains("307")
            && err.contains(&rec.url)
            && rec.connections() == 0
            && dest_status == 404,
        "exit {code}; the other host {} got {} connection(s), requests {:?}; dest index status {dest_status}; stderr:\n{err}",
        rec.url,
        rec.connections(),
        rec.requests(),
    );
}

/// The destination side: a destination that answers `_bulk` with `307 Location: <other
/// host>` (everything else reaches the real destination). No document may be re-sent there.
#[tokio::test]
async fn redirect_cli_dest_bulk_307_is_not_followed_and_names_status_and_location() {
    let (src, dst, other) = (noida(), noida(), noida());
    load(src.url(), "src", &docs(40)).await;
    let rec = recording_server(Some(other.url().to_string())).await;
    let front = redirecting_server(&rec.url, Some("_bulk"), Some(dst.url().to_string())).await;
    let (code, _out, err) = run_manifest(&manifest_yaml(src.url(), "", &front, "")).await;
    let other_status = call("GET", &format!("{}/dst", other.url()), None).await.0;
    assert!(
        code != 0
            && err.contains("307")
            && err.contains(&rec.url)
            && rec.connections() == 0
            && other_status == 404,
        "exit {code}; the other host {} got {} connection(s), requests {:?}; `dst` on the other cluster: HTTP {other_status}; stderr:\n{err}",
        rec.url,
        rec.connections(),
        rec.requests(),
    );
}

/// The AWS credential client: a container credentials endpoint that redirects is not
/// followed (the redirect would carry the request, and on a same-host redirect its
/// authorization token, elsewhere).
#[tokio::test]
async fn redirect_aws_container_credentials_307_is_not_followed() {
    let (src, dst) = (noida(), noida());
    load(src.url(), "src", &docs(10)).await;
    let rec = recording_server(None).await;
    let redirect = redirecting_server(&rec.url, None, None).await;
    let y = manifest_yaml(
        src.url(),
        "",
        dst.url(),
        ", aws: {region: eu-west-1, service: es}",
    );
    let env = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{redirect}/v1/credentials"),
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-token-xyz".into()),
    ];
    let (code, _out, err) = crate::aws::run_env(&y, &env, &["pod-token-xyz".into()]).await;
    assert!(
        code != 0 && err.contains("307") && err.contains(&rec.url) && rec.connections() == 0,
        "exit {code}; the other host {} got {} connection(s), requests {:?}; stderr:\n{}",
        rec.url,
        rec.connections(),
        rec.requests(),
        err.lines().rev().take(5).collect::<Vec<_>>().join("\n"),
    );
}

/// The acceptance scenario in the operator: the source host is allowed (and the other host
/// is not); the RemoteReindex ends Failed, its Degraded condition and a Warning Event name the
/// status and the Location, and the other host is never connected to.
#[tokio::test]
async fn redirect_operator_source_307_fails_with_condition_and_event_naming_location() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-redirect").await;
    let (other, dst) = (noida(), noida());
    load(other.url(), "logs", &docs(40)).await;
    let rec = recording_server(Some(other.url().to_string())).await;
    let redirect = redirecting_server(&rec.url, None, None).await;
    let allowed = format!(
        "--allowed-remote-hosts={}",
        redirect.trim_start_matches("http://")
    );
    let op = Operator::start(&ns, dst.url(), &[&allowed]).await;
    create_reindex(
        &client,
        &ns,
        "copy",
        json!({"source": {"remote": {"host": redirect}, "index": "logs"}, "dest": {"index": "logs-copy"}, "preflightTimeout": "2s"}),
    )
    .await;
    let obj = wait_terminal(&client, &ns, "copy", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    let degraded = s
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .map(|c| (c.reason.clone(), c.message.clone()));
    let names = |m: &str| m.contains("307") && m.contains(&rec.url);
    assert!(
        s.phase == Some(remote_reindex::api::Phase::Failed)
            && degraded.as_ref().is_some_and(|(_, m)| names(m))
            && rec.connections() == 0,
        "phase {:?}, Degraded {degraded:?}; the other host {} got {} connection(s), requests {:?}\n{}",
        s.phase,
        rec.url,
        rec.connections(),
        rec.requests(),
        op.log()
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let reason = degraded.unwrap().0;
    wait_event_reasons(&client, &ns, "copy", &[&reason]).await;
    let evs = events(&client, &ns, "copy").await;
    assert!(
        evs.iter()
            .any(|(t, r, note)| t == "Warning" && *r == reason && names(note)),
        "no Warning Event naming the status and Location: {evs:?}"
    );
    assert_eq!(
        call("GET", &format!("{}/logs-copy", dst.url()), None)
            .await
            .0,
        404,
        "nothing was written"
    );
}
