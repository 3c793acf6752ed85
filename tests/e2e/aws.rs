//! AWS SigV4, checked by an independent implementation: `scripts/sigv4-verify-proxy.py` sits in
//! front of a real server, recomputes every request's signature with botocore and answers 403
//! on a mismatch. Covers `es` and `aoss`, with and without a session token, scroll and (gzip)
//! bulk bodies, ids with `/ % space` in the path, a tampered key, and the credentials chain
//! through `fake_sts` (IRSA web identity) and `fake_container_credentials` (EKS Pod Identity).

use crate::harness::*;
use crate::tls::{
    assert_copied, assert_no_secrets, assert_succeeded, ep, error_line, loaded, object, reindex,
    tail,
};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REGION: &str = "eu-west-1";

/// One set of AWS credentials, unique to the test process.
#[derive(Clone)]
pub(crate) struct Keys {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Keys {
    pub fn new(tag: &str, with_token: bool) -> Keys {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Keys {
            id: format!("AKIA{}{n:08X}", tag.to_uppercase()),
            secret: format!("wJalrXUtnFEMI/K7MDENG+bPxRfi{tag}{n:x}"),
            token: with_token.then(|| format!("IQoJb3JpZ2luX2VjE{tag}/{n:x}+token==")),
        }
    }

    /// A Secret with `accessKeyId`, `secretAccessKey` and maybe `sessionToken`.
    pub fn secret(&self, name: &str) -> String {
        let mut pairs = vec![
            ("accessKeyId", self.id.as_str()),
            ("secretAccessKey", self.secret.as_str()),
        ];
        if let Some(t) = &self.token {
            pairs.push(("sessionToken", t));
        }
        object("Secret", name, &pairs)
    }

    /// The strings that must never be printed.
    pub fn secrets(&self) -> Vec<String> {
        let mut v = vec![self.secret.clone()];
        v.extend(self.token.clone());
        v
    }
}

/// The SigV4-verifying reverse proxy (Python + botocore); killed on Drop.
pub(crate) struct Verifier {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Verifier {
    pub fn start(upstream: &str, service: &str, keys: &Keys) -> Verifier {
        let python = tools_bin().parent().unwrap().join("venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/install-test-deps.sh",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds.json");
        let mut c = serde_json::json!({"accessKeyId": keys.id, "secretAccessKey": keys.secret});
        if let Some(t) = &keys.token {
            c["sessionToken"] = serde_json::json!(t);
        }
        std::fs::write(&creds, c.to_string()).unwrap();
        let mut child = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/sigv4-verify-proxy.py"
            ))
            .args([
                "--upstream",
                upstream,
                "--region",
                REGION,
                "--service",
                service,
            ])
            .arg("--credentials-file")
            .arg(&creds)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(u) = line.strip_prefix("listening ") {
                    let _ = tx.send(u.to_string());
                } else {
                    sink.lock().unwrap().push(line);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the SigV4 verifier started (botocore installed?)");
        Verifier {
            child,
            url,
            lines,
            _dir: dir,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every `OK …` / `DENY …` line so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Lines that start with `prefix`, e.g. `OK POST /_bulk`.
    pub fn count(&self, prefix: &str) -> usize {
        self.log().iter().filter(|l| l.starts_with(prefix)).count()
    }

    pub fn assert_all_ok(&self) {
        let log = self.log();
        assert!(
            !log.is_empty() && log.iter().all(|l| l.starts_with("OK ")),
            "requests refused by the SigV4 verifier: {log:#?}"
        );
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `remote-reindex run -f` with no AWS variables but `env`, at `RUST_LOG=debug`, and
/// checks the output for `secrets`.
pub(crate) async fn run_env(
    yaml: &str,
    env: &[(&str, String)],
    secrets: &[String],
) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", yaml);
    let mut cmd = tokio::process::Command::from(cli());
    cmd.args(["run", "-f", f.to_str().unwrap()])
        .env("RUST_LOG", "debug");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let (code, out, err) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_no_secrets(&out, &err, secrets);
    (code, out, err)
}

fn aws(service: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) => format!(
            "aws: {{region: {REGION}, service: {service}, credentialsSecretRef: {{name: {s}}}}}"
        ),
        None => format!("aws: {{region: {REGION}, service: {service}}}"),
    }
}

#[tokio::test]
async fn sigv4_es_signs_every_scroll_and_gzip_bulk_request_with_and_without_a_session_token() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let (src_keys, dst_keys) = (Keys::new("src", false), Keys::new("dst", true));
    let (vs, vd) = (
        Verifier::start(src.url(), "es", &src_keys),
        Verifier::start(dst.url(), "es", &dst_keys),
    );
    let y = reindex(
        &ep(vs.url(), &aws("es", Some("aws-src"))),
        &ep(
            vd.url(),
            &format!("{}, compressRequests: true", aws("es", Some("aws-dst"))),
        ),
        "",
    )
    // Pinned to scroll: this test checks that every scroll continuation is signed.
    .replace(
        "index: src",
        "index: src\n    size: 50\n    slices: 2\n    paging: scroll",
    ) + &src_keys.secret("aws-src")
        + &dst_keys.secret("aws-dst");
    let secrets = [src_keys.secrets(), dst_keys.secrets()].concat();
    let (code, out, err) = run_env(&y, &[], &secrets).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
    vs.assert_all_ok();
    vd.assert_all_ok();
    assert!(vs.count("OK GET /") > 0 && vd.count("OK GET /") > 0);
    assert!(
        vs.count("OK POST /src/_search?scroll=") >= 2,
        "{:#?}",
        vs.log()
    );
    assert!(vs.count("OK POST /_search/scroll") >= 2, "{:#?}", vs.log());
    assert!(
        vs.count("OK DELETE /_search/scroll") >= 1,
        "{:#?}",
        vs.log()
    );
    assert!(vd.count("OK POST /_bulk") >= 1, "{:#?}", vd.log());
    assert!(
        vd.count("OK PUT /dst/_settings") >= 1,
        "restored after the copy"
    );
}

#[tokio::test]
async fn sigv4_aoss_destination_sends_the_payload_hash_and_is_neither_version_checked_nor_tuned() {
    let (src, dst) = (loaded(noida()).await, osmem());
    let keys = Keys::new("aoss", true);
    let v = Verifier::start(dst.url(), "aoss", &keys);
    let y = reindex(
        &ep(src.url(), ""),
        &ep(v.url(), &aws("aoss", Some("aws"))),
        "",
    ) + &keys.secret("aws");
    let (code, out, err) = run_env(&y, &[], &keys.secrets()).await;
    assert_succeeded(code, &out, &err);
    // The Prepared/Copying lines (stderr) carry the summary that says what was skipped.
    assert!(
        err.contains("→ OpenSearch Serverless (aoss: no GET / version check")
            && err.contains("neither tuned nor restored"),
        "{}",
        tail(&err)
    );
    assert_copied(&src, &dst).await;
    v.assert_all_ok();
    let log = v.log();
    assert!(
        !log.iter().any(|l| l == "OK GET /"),
        "no GET / on Serverless"
    );
    assert!(
        !log.iter()
            .any(|l| (l.starts_with("OK PUT") && l.contains("/_")) || l.contains("_refresh")),
        "neither tuned, marked nor refreshed: {log:#?}"
    );
    assert!(log.iter().any(|l| l == "OK PUT /dst") && v.count("OK POST /_bulk") >= 1);

    // Serverless has no scroll: as a source it is refused before any request.
    let y = reindex(
        &ep(v.url(), &aws("aoss", Some("aws"))),
        &ep(dst.url(), ""),
        "",
    ) + &keys.secret("aws");
    let (code, _, err) = run_env(&y, &[], &keys.secrets()).await;
    assert_eq!(code, 2, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [InvalidSpec]") && line.contains("spec.source.remote.aws.service"),
        "{line}"
    );
}

#[tokio::test]
async fn a_tampered_secret_key_is_refused_with_403_and_reported_as_authentication_failed() {
    let src = loaded(noida()).await;
    let dst = osmem();
    let keys = Keys::new("tamper", true);
    let v = Verifier::start(src.url(), "es", &keys);
    let mut tampered = keys.clone();
    tampered.secret.push('x');
    let y = reindex(
        &ep(v.url(), &aws("es", Some("aws"))),
        &ep(dst.url(), ""),
        "  preflightTimeout: 2s\n",
    ) + &tampered.secret("aws");
    let secrets = [keys.secrets(), tampered.secrets()].concat();
    let (code, _, err) = run_env(&y, &[], &secrets).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [AuthenticationFailed]")
            && line.contains(v.url())
            && line.contains("GET")
            && line.contains("403")
            && line.contains("signature we calculated does not match"),
        "{line}"
    );
    assert!(
        v.log().iter().any(|l| l.contains("signature mismatch")),
        "{:#?}",
        v.log()
    );
}

#[tokio::test]
async fn ids_with_slash_percent_and_space_in_the_path_are_signed_as_sent() {
    use remote_reindex::search::{
        AwsCredentialSource, AwsCredentials, AwsSigner, ClientOptions, Credentials, SearchClient,
        SecretString,
    };
    let server = noida();
    let ids = [
        "a/b",
        "50%",
        "100%25",
        "sp ace",
        "q?x=1&y#z",
        "plus+sign",
        "ünï 😀",
    ];
    let docs: Vec<Doc> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Doc {
            id: id.to_string(),
            source: format!(r#"{{"n":{i}}}"#),
            routing: None,
        })
        .collect();
    load(server.url(), "ids", &docs).await;
    for (service, token) in [("es", false), ("es", true), ("aoss", true)] {
        let keys = Keys::new("ids", token);
        let v = Verifier::start(server.url(), service, &keys);
        let signer = AwsSigner::new(
            REGION,
            if service == "es" { "es" } else { "aoss" },
            AwsCredentialSource::Static(AwsCredentials {
                access_key_id: keys.id.clone(),
                secret_access_key: SecretString::new(keys.secret.clone()),
                session_token: keys.token.clone().map(SecretString::new),
                expires_at: None,
            }),
        );
        let mut opts = ClientOptions::new(v.url());
        opts.credentials = Credentials::Aws(Arc::new(signer));
        let client = SearchClient::new(opts).unwrap();
        for (i, id) in ids.iter().enumerate() {
            let enc: String = url::form_urlencoded::byte_serialize(id.as_bytes())
                .collect::<String>()
                .replace('+', "%20");
            let doc = client
                .get_json(&format!("ids/_doc/{enc}"))
                .await
                .unwrap_or_else(|e| panic!("{service} GET {id}: {e}"));
            assert_eq!(doc["_id"], *id, "{doc}");
            assert_eq!(doc["_source"]["n"], i);
        }
        v.assert_all_ok();
        assert!(
            v.count("OK GET /ids/_doc/a%2Fb") == 1 && v.count("OK GET /ids/_doc/sp%20ace") == 1
        );
    }
}

/// `fake_sts`: STS `AssumeRoleWithWebIdentity`, answering for one role and token with fixed
/// keys that expire after `ttl`. Counts calls.
mod fake_sts {
    use super::Keys;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    pub struct Sts {
        pub url: String,
        pub calls: Arc<AtomicUsize>,
    }

    pub async fn start(role: &str, token: &str, keys: &Keys, ttl: Duration) -> Sts {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, role, token, keys) = (
            calls.clone(),
            role.to_string(),
            token.to_string(),
            keys.clone(),
        );
        let app = Router::new().route(
            "/",
            post(move |body: String| {
                let (c, role, token, keys) = (c.clone(), role.clone(), token.clone(), keys.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    let form: std::collections::HashMap<String, String> =
                        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
                    if get("Action") != "AssumeRoleWithWebIdentity"
                        || get("RoleArn") != role
                        || get("WebIdentityToken") != token
                        || get("RoleSessionName").is_empty()
                    {
                        return (
                            StatusCode::FORBIDDEN,
                            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>".to_string(),
                        );
                    }
                    let exp = k8s_openapi::jiff::Timestamp::now()
                        .checked_add(ttl)
                        .unwrap();
                    (
                        StatusCode::OK,
                        format!(
                            "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
                            keys.id,
                            keys.secret,
                            keys.token.clone().unwrap_or_default(),
                            exp.strftime("%Y-%m-%dT%H:%M:%SZ")
                        ),
                    )
                }
            }),
        );
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Sts { url, calls }
    }
}

/// `fake_container_credentials`: the EKS Pod Identity agent / ECS endpoint, answering a GET
/// with the right `Authorization` token. Counts calls.
mod fake_container_credentials {
    use super::Keys;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub async fn start(auth_token: &str, keys: &Keys) -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/credentials", l.local_addr().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, auth_token, keys) = (calls.clone(), auth_token.to_string(), keys.clone());
        let app = Router::new().route(
            "/v1/credentials",
            get(move |h: HeaderMap| {
                let (c, auth_token, keys) = (c.clone(), auth_token.clone(), keys.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    if h.get("authorization").and_then(|v| v.to_str().ok())
                        != Some(auth_token.as_str())
                    {
                        return (
                            StatusCode::UNAUTHORIZED,
                            r#"{"message":"invalid token"}"#.to_string(),
                        );
                    }
                    let exp = k8s_openapi::jiff::Timestamp::now()
                        .checked_add(std::time::Duration::from_secs(6 * 3600))
                        .unwrap();
                    (
                        StatusCode::OK,
                        serde_json::json!({
                            "AccessKeyId": keys.id,
                            "SecretAccessKey": keys.secret,
                            "Token": keys.token,
                            "AccountId": "123456789012",
                            "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                        })
                        .to_string(),
                    )
                }
            }),
        );
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (url, calls)
    }
}

#[tokio::test]
async fn the_seed_region_signs_with_web_identity_credentials_from_fake_sts_and_refreshes_them() {
    use std::sync::atomic::Ordering;
    let (src, dst) = (loaded(noida()).await, osmem());
    let keys = Keys::new("irsa", true);
    let v = Verifier::start(src.url(), "es", &keys);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let token = format!("eyJhbGciOiJSUzI1NiJ9.irsa-{}", std::process::id());
    std::fs::write(&token_file, &token).unwrap();
    let role = "arn:aws:iam::123456789012:role/remote-reindex";
    let secrets = [keys.secrets(), vec![token.clone()]].concat();

    // Long-lived credentials: fetched once for the whole copy.
    let sts = fake_sts::start(role, &token, &keys, Duration::from_secs(3600)).await;
    let env = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AWS_ROLE_ARN", role.to_string()),
        ("AWS_ENDPOINT_URL_STS", sts.url.clone()),
    ];
    // The seed's `region:` alone: SigV4 for `es` with the pod's credentials chain.
    let y = reindex(
        &ep(v.url(), &format!("region: {REGION}")),
        &ep(dst.url(), ""),
        "",
    );
    let (code, out, err) = run_env(&y, &env, &secrets).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
    v.assert_all_ok();
    assert_eq!(
        sts.calls.load(Ordering::SeqCst),
        1,
        "cached until near expiry"
    );

    // Credentials inside the 5-minute refresh window are fetched again before each request.
    let sts = fake_sts::start(role, &token, &keys, Duration::from_secs(200)).await;
    let env = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AWS_ROLE_ARN", role.to_string()),
        ("AWS_ENDPOINT_URL_STS", sts.url.clone()),
    ];
    let y2 = y.replace("index: dst", "index: dst2");
    let (code, out, err) = run_env(&y2, &env, &secrets).await;
    assert_eq!(code, 0, "{out}\n{}", tail(&err));
    assert!(
        sts.calls.load(Ordering::SeqCst) > 3,
        "refreshed before expiry"
    );
    v.assert_all_ok();

    // A token STS does not accept: AuthenticationFailed naming the provider, after the timeout.
    std::fs::write(&token_file, "not-the-token").unwrap();
    let y3 = format!(
        "{}  preflightTimeout: 1s\n",
        y.replace("index: dst", "index: dst3")
    );
    let (code, _, err) = run_env(&y3, &env, &secrets).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [AuthenticationFailed]")
            && line.contains("web identity")
            && line.contains("AccessDenied"),
        "{line}"
    );
}

#[tokio::test]
async fn container_credentials_and_environment_variables_sign_the_destination() {
    use std::sync::atomic::Ordering;
    let (src, dst) = (loaded(osmem()).await, noida());
    let keys = Keys::new("pod", true);
    let v = Verifier::start(dst.url(), "es", &keys);
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("eks-pod-identity-token");
    let auth = format!("pod-identity-token-{}", std::process::id());
    std::fs::write(&auth_file, &auth).unwrap();
    let (uri, calls) = fake_container_credentials::start(&auth, &keys).await;
    let secrets = [keys.secrets(), vec![auth.clone()]].concat();
    let y = reindex(&ep(src.url(), ""), &ep(v.url(), &aws("es", None)), "");
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            auth_file.display().to_string(),
        ),
    ];
    let (code, out, err) = run_env(&y, &env, &secrets).await;
    assert_succeeded(code, &out, &err);
    assert_copied(&src, &dst).await;
    v.assert_all_ok();
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Environment variables come first in the chain.
    let env = [
        ("AWS_ACCESS_KEY_ID", keys.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", keys.secret.clone()),
        ("AWS_SESSION_TOKEN", keys.token.clone().unwrap()),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:1/unused".into(),
        ),
    ];
    let y2 = y.replace("index: dst", "index: dst2");
    let (code, out, err) = run_env(&y2, &env, &secrets).await;
    assert_eq!(code, 0, "{out}\n{}", tail(&err));
    v.assert_all_ok();

    // Nothing in the chain: a clear AuthenticationFailed.
    let y3 = format!(
        "{}  preflightTimeout: 1s\n",
        y.replace("index: dst", "index: dst3")
    );
    let (code, _, err) = run_env(&y3, &[], &secrets).await;
    assert_eq!(code, 3, "{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [AuthenticationFailed]") && line.contains("no AWS credentials"),
        "{line}"
    );
}
