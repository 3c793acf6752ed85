//! The network path: an HTTP CONNECT proxy (Debian `tinyproxy`, with and without basic auth) in
//! front of both ends, and `tls.serverName` against nginx's certificate that names only
//! `localhost` while the host is `127.0.0.1`.

use crate::harness::*;
use crate::nginx::{Nginx, Pki};
use crate::tls::{
    BASIC, USER, assert_copied, assert_no_secrets, assert_succeeded, creds, ep, error_line, loaded,
    object, password, reindex, tail,
};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running tinyproxy on a free port; killed on Drop.
pub(crate) struct TinyProxy {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn tinyproxy_bin() -> PathBuf {
    for p in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
    {
        let c = p.join("tinyproxy");
        if c.is_file() {
            return c;
        }
    }
    panic!("tinyproxy is missing: run scripts/install-test-deps.sh (Debian tinyproxy)");
}

impl TinyProxy {
    /// Starts tinyproxy; with `auth`, every request needs `Proxy-Authorization: Basic`.
    pub fn start(auth: Option<(&str, &str)>) -> TinyProxy {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut conf = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 120\nLogFile \"{}\"\nLogLevel Info\nMaxClients 64\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
                dir.path().join("tinyproxy.log").display()
            );
            if let Some((u, p)) = auth {
                conf.push_str(&format!("BasicAuth {u} {p}\n"));
            }
            let cfg = dir.path().join("tinyproxy.conf");
            std::fs::write(&cfg, conf).unwrap();
            let mut child = Command::new(tinyproxy_bin())
                .arg("-d")
                .arg("-c")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tinyproxy starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return TinyProxy { child, dir, port };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("tinyproxy did not start");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// tinyproxy's log (`Request (file descriptor N): CONNECT host:port HTTP/1.1` lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

impl Drop for TinyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `remote-reindex run -f` at `RUST_LOG=debug` with proxy variables that would break the
/// copy if they were honoured; checks the output for `secrets`.
async fn run(yaml: &str, secrets: &[String]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", yaml);
    let out = tokio::process::Command::from(cli())
        .args(["run", "-f", f.to_str().unwrap()])
        .env("RUST_LOG", "debug")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .output()
        .await
        .unwrap();
    let (code, out, err) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_no_secrets(&out, &err, secrets);
    (code, out, err)
}

#[tokio::test]
async fn a_connect_proxy_carries_tls_with_basic_auth_to_the_source_and_plain_http_to_the_dest() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let proxy = TinyProxy::start(None);
    let via = format!("proxy: {{url: \"{}\"}}", proxy.url());
    let y = reindex(
        &ep(
            &nginx.tls_auth_url(),
            &format!("{BASIC}, tls: {{caSecretRef: {{name: es-ca}}}}, {via}"),
        ),
        &ep(dst.url(), &via),
        "",
    ) + &creds(&pw)
        + &object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    let (code, out, err) = run(&y, std::slice::from_ref(&pw)).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{} ", nginx.tls_auth)),
        "the source was reached through a CONNECT tunnel: {log}"
    );
    assert!(
        log.contains(&format!("POST {}/_bulk", dst.url())),
        "the destination's requests went through the proxy: {log}"
    );
    assert!(nginx.answered(nginx.tls_auth, 200, "_search") > 0);
}

#[tokio::test]
async fn proxy_credentials_come_from_a_secret_and_missing_or_wrong_ones_are_reported() {
    let (src, dst) = (loaded(noida()).await, osmem());
    // tinyproxy's config takes a bare word as the password.
    let proxy_pw = format!(
        "proxyPw{}x{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let proxy = TinyProxy::start(Some(("rr", &proxy_pw)));
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let via = "proxy: {url: \"URL\", basicAuthSecretRef: {name: proxy-creds}}"
        .replace("URL", &proxy.url());
    let src_ep = ep(
        &nginx.tls_auth_url(),
        &format!("{BASIC}, tls: {{caSecretRef: {{name: es-ca}}}}, {via}"),
    );
    let objects = creds(&pw) + &object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    let y = reindex(&src_ep, &ep(dst.url(), ""), "")
        + &objects
        + &object(
            "Secret",
            "proxy-creds",
            &[("username", "rr"), ("password", &proxy_pw)],
        );
    let secrets = vec![pw.clone(), proxy_pw.clone()];
    let (code, out, err) = run(&y, &secrets).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;

    // No credentials: the proxy's 407 is an authentication failure.
    let no_auth = ep(
        &nginx.tls_auth_url(),
        &format!(
            "{BASIC}, tls: {{caSecretRef: {{name: es-ca}}}}, proxy: {{url: \"{}\"}}",
            proxy.url()
        ),
    );
    let y = reindex(&no_auth, &ep(dst.url(), ""), "  preflightTimeout: 1s\n")
        .replace("index: dst", "index: dst2")
        + &objects;
    let (code, _, err) = run(&y, &secrets).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [AuthenticationFailed]")
            && line.contains("407")
            && line.contains("proxy.basicAuthSecretRef"),
        "{line}"
    );

    // Wrong credentials: tinyproxy answers 401 to the CONNECT, which says so.
    let wrong = format!("{proxy_pw}wrong");
    let y = reindex(&src_ep, &ep(dst.url(), ""), "  preflightTimeout: 1s\n")
        .replace("index: dst", "index: dst3")
        + &objects
        + &object(
            "Secret",
            "proxy-creds",
            &[("username", "rr"), ("password", &wrong)],
        );
    let (code, _, err) = run(&y, &[secrets, vec![wrong.clone()]].concat()).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [Unreachable]")
            && line.contains("the proxy refused the CONNECT tunnel")
            && line.contains("proxy.basicAuthSecretRef"),
        "{line}"
    );
}

#[tokio::test]
async fn tls_server_name_verifies_a_certificate_for_another_name_than_the_host() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let ca = object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    // https://127.0.0.1:PORT serves a certificate for `localhost` only.
    let with_name =
        |name: &str| format!("tls: {{caSecretRef: {{name: es-ca}}, serverName: {name}}}");
    let y = reindex(
        &ep(&nginx.localhost_only_url(), &with_name("localhost")),
        &ep(dst.url(), ""),
        "",
    ) + &ca;
    let (code, out, err) = run(&y, std::slice::from_ref(&pw)).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;

    // The chain is still verified: the right name with an unrelated CA fails.
    let y = reindex(
        &ep(&nginx.localhost_only_url(), &with_name("localhost")),
        &ep(dst.url(), ""),
        "  preflightTimeout: 2s\n",
    )
    .replace("index: dst", "index: dst2")
        + &object("Secret", "es-ca", &[("ca.crt", &pki.other_ca_pem)]);
    let (code, _, err) = run(&y, std::slice::from_ref(&pw)).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [TLSHandshakeFailed]") && line.contains("UnknownIssuer"),
        "{line}"
    );

    // A name the certificate does not hold fails with the verifier's reason.
    let y = reindex(
        &ep(&nginx.localhost_only_url(), &with_name("es.example.com")),
        &ep(dst.url(), ""),
        "  preflightTimeout: 2s\n",
    )
    .replace("index: dst", "index: dst3")
        + &ca;
    let (code, _, err) = run(&y, &[pw]).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [TLSHandshakeFailed]") && line.contains("not valid for name"),
        "{line}"
    );
}
