//! Reaching clusters the way users' clusters are: nginx (see `nginx`) in front of the real
//! servers with a private CA, basic auth, mTLS, a mismatched certificate name, a path prefix and
//! 429s on `_bulk`. Every run's stdout and stderr (at `RUST_LOG=debug`) are checked for the
//! secret strings: passwords, `user:password` in base64 and the private keys' PEM lines.

use crate::harness::*;
use crate::nginx::{Nginx, Pki};
use base64::Engine;
use std::time::{Duration, Instant};

pub(crate) const HEAD: &str =
    "apiVersion: reindex.dev/v1alpha1\nkind: RemoteReindex\nmetadata: {name: t}\n";
pub(crate) const USER: &str = "elastic";
pub(crate) const DOCS: usize = 200;

/// A password unique to this test process, with characters that need care in basic auth.
pub(crate) fn password(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-Pa55:w/rd%{}-{nanos:x}", std::process::id())
}

/// An Endpoint in YAML flow style.
pub(crate) fn ep(host: &str, more: &str) -> String {
    if more.is_empty() {
        format!("{{host: \"{host}\"}}")
    } else {
        format!("{{host: \"{host}\", {more}}}")
    }
}

pub(crate) fn reindex(src: &str, dst: &str, extra_spec: &str) -> String {
    format!(
        "{HEAD}spec:\n  source:\n    remote: {src}\n    index: src\n  dest:\n    remote: {dst}\n    index: dst\n{extra_spec}"
    )
}

/// A v1 Secret (`stringData`) or ConfigMap (`data`) document.
pub(crate) fn object(kind: &str, name: &str, pairs: &[(&str, &str)]) -> String {
    let field = if kind == "Secret" {
        "stringData"
    } else {
        "data"
    };
    let mut s =
        format!("---\napiVersion: v1\nkind: {kind}\nmetadata: {{name: {name}}}\n{field}:\n");
    for (k, v) in pairs {
        s.push_str(&format!("  {k}: {}\n", serde_json::to_string(v).unwrap()));
    }
    s
}

pub(crate) fn creds(password: &str) -> String {
    object(
        "Secret",
        "creds",
        &[("username", USER), ("password", password)],
    )
}

pub(crate) const BASIC: &str = "basicAuth: {secretRef: {name: creds}}";

/// Everything that must never be printed.
fn secrets(pki: &Pki, passwords: &[&str]) -> Vec<String> {
    let mut v = pki.key_material();
    for p in passwords {
        v.push(p.to_string());
        v.push(base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{p}")));
    }
    v
}

pub(crate) fn tail(s: &str) -> &str {
    &s[s.floor_char_boundary(s.len().saturating_sub(3000))..]
}

/// Checks that no secret string is in the output.
pub(crate) fn assert_no_secrets(out: &str, err: &str, secrets: &[String]) {
    for (i, s) in secrets.iter().enumerate() {
        assert!(
            !out.contains(s.as_str()) && !err.contains(s.as_str()),
            "secret string #{i} (of {}) reached the output",
            secrets.len()
        );
    }
}

/// Runs `remote-reindex run -f` on the YAML at `RUST_LOG=debug`; checks the output for secrets.
async fn run(yaml: &str, secrets: &[String]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", yaml);
    let out = tokio::process::Command::from(cli())
        .args(["run", "-f", f.to_str().unwrap()])
        .env("RUST_LOG", "debug")
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

/// A server holding `DOCS` hostile documents in `src`.
pub(crate) async fn loaded(server: Server) -> Server {
    create_index(server.url(), "src", lean_mapping()).await;
    load(server.url(), "src", &hostile_docs(DOCS)).await;
    server
}

pub(crate) async fn assert_copied(src: &Server, dst: &Server) {
    let (a, b) = (
        all_docs(src.url(), "src").await,
        all_docs(dst.url(), "dst").await,
    );
    assert_eq!(a.len(), DOCS);
    assert_eq!(parsed(&a), parsed(&b), "documents differ");
}

pub(crate) fn assert_succeeded(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "stdout: {out}\nstderr: {}", tail(err));
    assert!(
        out.contains(&format!(
            "copied {DOCS} of {DOCS} documents expected (0 failed"
        )) && out.contains("count verified"),
        "{out}"
    );
    assert!(!err.contains("error ["), "{}", tail(err));
}

/// The one `error [Reason]: …` line of a failed run.
pub(crate) fn error_line(err: &str) -> &str {
    err.lines()
        .rev()
        .find(|l| l.starts_with("error ["))
        .unwrap_or_else(|| panic!("no error line in stderr: {}", tail(err)))
}

#[tokio::test]
async fn tls_and_basic_auth_with_the_ca_from_a_secret_copies() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let y = reindex(
        &ep(
            &nginx.tls_auth_url(),
            &format!("{BASIC}, tls: {{caSecretRef: {{name: es-ca}}}}"),
        ),
        &ep(dst.url(), ""),
        "",
    ) + &creds(&pw)
        + &object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    let (code, out, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
    assert!(
        nginx.answered(nginx.tls_auth, 200, "_search") > 0,
        "the copy read through nginx: {}",
        nginx.access_log()
    );
}

#[tokio::test]
async fn tls_and_basic_auth_with_the_ca_from_a_config_map_copies_into_the_destination() {
    let (src, dst) = (loaded(osmem()).await, noida());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(dst.url(), &pki, USER, &pw);
    let y = reindex(
        &ep(src.url(), ""),
        &ep(
            &nginx.tls_auth_url(),
            &format!("{BASIC}, tls: {{caConfigMapRef: {{name: es-ca}}}}"),
        ),
        "",
    ) + &creds(&pw)
        + &object("ConfigMap", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    let (code, out, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
    assert!(
        nginx.answered(nginx.tls_auth, 200, "_bulk") > 0,
        "the copy wrote through nginx: {}",
        nginx.access_log()
    );
}

#[tokio::test]
async fn a_wrong_password_is_authentication_failed_and_never_printed() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw, wrong) = (Pki::generate(), password("right"), password("wrong"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let y = reindex(
        &ep(
            &nginx.tls_auth_url(),
            &format!("{BASIC}, tls: {{caSecretRef: {{name: es-ca}}}}"),
        ),
        &ep(dst.url(), ""),
        "  preflightTimeout: 2s\n",
    ) + &creds(&wrong)
        + &object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    let started = Instant::now();
    let (code, _, err) = run(&y, &secrets(&pki, &[&pw, &wrong])).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [AuthenticationFailed]")
            && line.contains(&nginx.tls_auth_url())
            && line.contains("GET")
            && line.contains("401"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "retried for {:?}",
        started.elapsed()
    );
    assert!(
        nginx.answered(nginx.tls_auth, 401, "/") > 0,
        "nginx saw the wrong password: {}",
        nginx.access_log()
    );
}

#[tokio::test]
async fn an_unrelated_ca_is_tls_handshake_failed_with_the_verifiers_reason() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let y = reindex(
        &ep(
            &nginx.tls_auth_url(),
            &format!("{BASIC}, tls: {{caSecretRef: {{name: es-ca}}}}"),
        ),
        &ep(dst.url(), ""),
        "  preflightTimeout: 2s\n",
    ) + &creds(&pw)
        + &object("Secret", "es-ca", &[("ca.crt", &pki.other_ca_pem)]);
    let (code, _, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [TLSHandshakeFailed]")
            && line.contains(&nginx.tls_auth_url())
            && line.contains("UnknownIssuer"),
        "{line}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_tls_handshake_failed() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let tls = "tls: {caSecretRef: {name: es-ca}}";
    let ca = object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    // The certificate names only `localhost`; the host is 127.0.0.1.
    let y = reindex(
        &ep(&nginx.localhost_only_url(), tls),
        &ep(dst.url(), ""),
        "  preflightTimeout: 2s\n",
    ) + &ca;
    let (code, _, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [TLSHandshakeFailed]")
            && line.contains(&nginx.localhost_only_url())
            && line.contains("not valid for name"),
        "{line}"
    );

    // The same listener by the name in its certificate: the copy goes through.
    let by_name = format!("https://localhost:{}", nginx.localhost_only);
    let y = reindex(&ep(&by_name, tls), &ep(dst.url(), ""), "") + &ca;
    let (code, out, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unverifiable_certificate_and_warns() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let y = reindex(
        &ep(
            &nginx.tls_auth_url(),
            &format!("{BASIC}, tls: {{caSecretRef: {{name: es-ca}}, insecureSkipVerify: true}}"),
        ),
        &ep(dst.url(), ""),
        "",
    ) + &creds(&pw)
        + &object("Secret", "es-ca", &[("ca.crt", &pki.other_ca_pem)]);
    let (code, out, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_succeeded(code, &out, &err);
    assert!(err.contains("insecureSkipVerify"), "{}", tail(&err));
    assert_copied(&src, &dst).await;
}

#[tokio::test]
async fn mtls_copies_with_a_client_certificate_and_fails_without() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let ca = object("Secret", "es-ca", &[("ca.crt", &pki.ca_pem)]);
    let client = object(
        "Secret",
        "client-cert",
        &[
            ("tls.crt", &pki.client_cert_pem),
            ("tls.key", &pki.client_key_pem),
        ],
    );
    let y = reindex(
        &ep(
            &nginx.mtls_url(),
            "tls: {caSecretRef: {name: es-ca}, clientCertSecretRef: {name: client-cert}}",
        ),
        &ep(dst.url(), ""),
        "",
    ) + &ca
        + &client;
    let (code, out, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;

    // Without a client certificate nginx refuses the request.
    let y = reindex(
        &ep(&nginx.mtls_url(), "tls: {caSecretRef: {name: es-ca}}"),
        &ep(dst.url(), ""),
        "  preflightTimeout: 2s\n",
    )
    .replace("index: dst", "index: dst2")
        + &ca;
    let (code, _, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_eq!(code, 3, "{}", tail(&err));
    // nginx answers an HTML 400 where Elasticsearch would fail the handshake; either way the
    // user is told it is TLS, in one line.
    let line = error_line(&err);
    assert!(
        line.starts_with("error [TLSHandshakeFailed]")
            && line.contains(&nginx.mtls_url())
            && line.contains("No required SSL certificate was sent")
            && !line.contains("<html>"),
        "{line}"
    );
}

#[tokio::test]
async fn a_path_prefix_reaches_a_cluster_behind_a_reverse_proxy() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let y = reindex(
        &ep(&nginx.prefix_url(), "pathPrefix: /es"),
        &ep(dst.url(), ""),
        "",
    );
    let (code, out, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
    assert!(
        nginx.answered(nginx.prefix, 200, "/es/src/_search") > 0,
        "{}",
        nginx.access_log()
    );

    // Without the prefix the proxy answers 404: the run fails before writing anything.
    let y = reindex(&ep(&nginx.prefix_url(), ""), &ep(dst.url(), ""), "")
        .replace("index: dst", "index: dst2")
        + "  preflightTimeout: 2s\n";
    let (code, _, err) = run(&y, &secrets(&pki, &[&pw])).await;
    assert_eq!(code, 3, "{}", tail(&err));
    assert!(error_line(&err).contains("404"), "{}", error_line(&err));
}

#[tokio::test]
async fn bulk_429s_are_retried_until_the_copy_completes() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("right"));
    let nginx = Nginx::start(dst.url(), &pki, USER, &pw);
    let y = reindex(
        &ep(src.url(), ""),
        &ep(&nginx.throttle_url(), ""),
        "  retry: {maxAttempts: 40, maxBackoff: 500ms}\n",
    )
    .replace("index: src", "index: src\n    size: 20");
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", &y);
    nginx.set_bulk_throttle(true);
    let mut child = tokio::process::Command::from(cli())
        .args(["run", "-f", f.to_str().unwrap()])
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Every bulk is refused until several 429s were answered; then the gate opens.
    let deadline = Instant::now() + Duration::from_secs(30);
    while nginx.answered(nginx.throttle, 429, "_bulk") < 4 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the CLI exited ({status}) before the throttle was lifted: {}",
                nginx.access_log()
            );
        }
        assert!(Instant::now() < deadline, "no 429 within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nginx.set_bulk_throttle(false);
    let output = child.wait_with_output().await.unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_no_secrets(&out, &err, &secrets(&pki, &[&pw]));
    assert_succeeded(output.status.code().unwrap_or(-1), &out, &err);
    assert!(
        err.contains("retrying") && err.contains("429"),
        "{}",
        tail(&err)
    );
    assert!(
        nginx.answered(nginx.throttle, 200, "_bulk") > 0,
        "{}",
        nginx.access_log()
    );
    assert_copied(&src, &dst).await;
    report_fault(
        "destination answering 429 to every bulk for a period",
        DOCS as u64,
        count(dst.url(), "dst").await,
        rewritten(dst.url(), "dst").await,
        "exit 0 (verified)",
    );
}

#[tokio::test]
async fn rotated_tls_material_is_used_by_new_connections() {
    use remote_reindex::search::{
        ClientOptions, Credentials, SearchClient, SearchError, SecretString, TlsOptions,
    };
    let src = noida();
    let pki = Pki::generate();
    let pw = "rotate-tls-pa55";
    let nginx = Nginx::start(src.url(), &pki, USER, pw);
    let mut opts = ClientOptions::new(nginx.tls_auth_url());
    opts.credentials = Credentials::Basic {
        username: SecretString::new(USER),
        password: SecretString::new(pw),
    };
    opts.tls.ca_pem = Some(pki.other_ca_pem.clone().into_bytes());
    let client = SearchClient::new(opts).unwrap();
    let err = client.info().await.unwrap_err();
    assert!(matches!(err, SearchError::Tls { .. }), "{err}");
    // The Secret now holds the right CA: the next request uses it.
    let right = TlsOptions {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..Default::default()
    };
    assert!(client.replace_tls_if_changed(right.clone()).unwrap());
    assert_eq!(client.info().await.unwrap().version.major, 8);
    assert!(
        !client.replace_tls_if_changed(right).unwrap(),
        "unchanged material is not rebuilt"
    );
    // Unusable material is refused and the working client kept.
    let broken = TlsOptions {
        ca_pem: Some(b"not a certificate".to_vec()),
        ..Default::default()
    };
    assert!(client.replace_tls_if_changed(broken).is_err());
    assert!(client.info().await.is_ok());
}
