//! Each authentication mode through Secrets on the real kube-apiserver: one operator, six
//! resources reading the same source through basic auth + private CA (nginx), mTLS (nginx), an
//! API key and a bearer token (`fake_auth_gate`), and SigV4 from a Secret and from the pod's own
//! identity (environment variables; allowed by a `ReindexPolicy`), through the botocore verifier. All must
//! succeed, and no secret string may reach the status, the Events or the operator's log, which
//! runs at `RUST_LOG=debug`.

use crate::aws::{Keys, Verifier};
use crate::controller::k8s::*;
use crate::harness::*;
use crate::nginx::{Nginx, Pki};
use crate::tls::{DOCS, USER, loaded, password};
use remote_reindex::api::Phase;
use serde_json::{Value, json};
use std::time::Duration;

/// `fake_auth_gate`: a reverse proxy that forwards a request only when its `Authorization`
/// header is exactly `expected`, and otherwise answers 401 like Elasticsearch.
async fn fake_auth_gate(upstream: &str, expected: String) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let upstream = upstream.to_string();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (upstream, expected) = (upstream.clone(), expected.clone());
            async move {
                let mut h = HeaderMap::new();
                h.insert("content-type", "application/json".parse().unwrap());
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some(expected.as_str())
                {
                    let body = r#"{"error":{"type":"security_exception","reason":"unable to authenticate"},"status":401}"#;
                    return (StatusCode::UNAUTHORIZED, h, body.as_bytes().to_vec());
                }
                let pq = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                let mut req = http().request(
                    reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                    format!("{upstream}{pq}"),
                );
                for k in ["content-type", "content-encoding"] {
                    if let Some(v) = headers.get(k) {
                        req = req.header(k, v.to_str().unwrap());
                    }
                }
                let resp = req.body(body.to_vec()).send().await.unwrap();
                let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
                (status, h, resp.bytes().await.unwrap().to_vec())
            }
        },
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

#[tokio::test]
async fn every_authentication_mode_works_through_secrets_in_the_operator() {
    let client = client().await;
    apply_crd().await;
    // The pod's own AWS identity is one more mode; a ReindexPolicy must allow it.
    let ns = crate::policy::covered_namespace(&client, "rr-auth").await;
    let policy = crate::policy::policy_name("auth");
    let (_p, rv) = crate::policy::PolicyGuard::create(
        &client,
        &policy,
        json!({"namespaceSelector": crate::policy::selects(&ns), "allowAmbientAwsIdentity": true}),
    )
    .await;
    let (src, dst) = (loaded(noida()).await, osmem());
    let (pki, pw) = (Pki::generate(), password("op"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let api_key = format!("VnVhQ2ZHY0JD{}ZGJrUW0tZTVhT3g=", std::process::id());
    let token = format!("eyJhbGciOiJSUzI1NiJ9.op-{}.sig", std::process::id());
    let api_key_gate = fake_auth_gate(src.url(), format!("ApiKey {api_key}")).await;
    let bearer_gate = fake_auth_gate(src.url(), format!("Bearer {token}")).await;
    let keys = Keys::new("op", true);
    let verifier = Verifier::start(src.url(), "es", &keys);
    let ambient_keys = Keys::new("pod", true);
    let ambient_verifier = Verifier::start(src.url(), "es", &ambient_keys);
    let ambient_token = ambient_keys.token.clone().unwrap();

    create_secret(
        &client,
        &ns,
        "basic",
        &[("username", USER), ("password", &pw)],
    )
    .await;
    create_secret(&client, &ns, "ca", &[("ca.crt", &pki.ca_pem)]).await;
    create_secret(
        &client,
        &ns,
        "client-cert",
        &[
            ("tls.crt", &pki.client_cert_pem),
            ("tls.key", &pki.client_key_pem),
        ],
    )
    .await;
    create_secret(&client, &ns, "api-key", &[("apiKey", &api_key)]).await;
    create_secret(&client, &ns, "token", &[("token", &token)]).await;
    create_secret(
        &client,
        &ns,
        "aws",
        &[
            ("accessKeyId", &keys.id),
            ("secretAccessKey", &keys.secret),
            ("sessionToken", keys.token.as_deref().unwrap()),
        ],
    )
    .await;
    // The whole run at debug level (the operator's and its libraries' debug lines): no secret
    // value may appear even there.
    let env = [
        ("AWS_ACCESS_KEY_ID", ambient_keys.id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", ambient_keys.secret.as_str()),
        ("AWS_SESSION_TOKEN", ambient_token.as_str()),
    ];
    let op = Operator::start_full(&kubeconfig(), &ns, dst.url(), &[], "debug", &env).await;
    crate::policy::observed(&op, &policy, &rv).await;

    let ca = json!({"caSecretRef": {"name": "ca"}});
    let modes: Vec<(&str, Value)> = vec![
        (
            "basic",
            json!({"host": nginx.tls_auth_url(), "basicAuth": {"secretRef": {"name": "basic"}}, "tls": ca}),
        ),
        (
            "mtls",
            json!({"host": nginx.mtls_url(), "tls": {"caSecretRef": {"name": "ca"}, "clientCertSecretRef": {"name": "client-cert"}}}),
        ),
        (
            "apikey",
            json!({"host": api_key_gate, "apiKey": {"secretRef": {"name": "api-key"}}}),
        ),
        (
            "bearer",
            json!({"host": bearer_gate, "bearerToken": {"secretRef": {"name": "token"}}}),
        ),
        (
            "aws",
            json!({"host": verifier.url(), "aws": {"region": "eu-west-1", "service": "es", "credentialsSecretRef": {"name": "aws"}}}),
        ),
        (
            "ambient",
            json!({"host": ambient_verifier.url(), "aws": {"region": "eu-west-1", "service": "es"}}),
        ),
    ];
    for (name, remote) in &modes {
        create_reindex(
            &client,
            &ns,
            name,
            json!({"source": {"remote": remote, "index": "src"}, "dest": {"index": format!("dst-{name}")}, "preflightTimeout": "30s"}),
        )
        .await;
    }
    let mut statuses = Vec::new();
    for (name, _) in &modes {
        let obj = wait_terminal(&client, &ns, name, Duration::from_secs(120)).await;
        let status = obj.status.unwrap();
        assert_eq!(
            status.phase,
            Some(Phase::Succeeded),
            "{name}: {status:?}\n{}",
            op.log()
        );
        assert_eq!(count(dst.url(), &format!("dst-{name}")).await, DOCS as u64);
        statuses.push(serde_json::to_string(&status).unwrap());
        for e in events(&client, &ns, name).await {
            statuses.push(format!("{e:?}"));
        }
    }
    verifier.assert_all_ok();
    ambient_verifier.assert_all_ok();
    let mut secrets = vec![pw.clone(), api_key.clone(), token.clone(), keys.id.clone()];
    secrets.extend(keys.secrets());
    secrets.push(ambient_keys.id.clone());
    secrets.extend(ambient_keys.secrets());
    // The operator's own Kubernetes credential (the admin token of the test kubeconfig).
    let kc = std::fs::read_to_string(kubeconfig()).unwrap();
    secrets.extend(
        kc.lines()
            .filter_map(|l| l.trim().strip_prefix("token: "))
            .map(str::to_string),
    );
    assert!(
        op.log().lines().any(|l| l.contains("\"DEBUG\"")),
        "the operator logged at debug level"
    );
    secrets.extend(pki.key_material());
    let everything = format!("{}\n{}", statuses.join("\n"), op.log());
    for (i, s) in secrets.iter().enumerate() {
        assert!(
            !everything.contains(s.as_str()),
            "secret #{i} reached the status, an Event or the operator's log"
        );
    }
}
