//! Credential rotation mid-copy: a changed Secret takes effect on the next requests of the
//! running copy, through nginx (TLS + basic auth) in front of a real server.

use super::docs;
use super::k8s::*;
use crate::harness::*;
use crate::nginx::{Nginx, Pki};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use remote_reindex::api::Phase;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_rotated_password_takes_effect_mid_copy() {
    let client = client().await;
    apply_crd().await;
    let ns = namespace(&client, "rr-rotate").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(6000)).await;
    let pki = Pki::generate();
    let proxy = Nginx::start(src.url(), &pki, "old-user", "first-pa55");
    create_secret(
        &client,
        &ns,
        "creds",
        &[
            ("username", "old-user"),
            ("password", "first-pa55"),
            ("ca.crt", &pki.ca_pem),
        ],
    )
    .await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    let spec = json!({
        "source": {
            "remote": {"host": proxy.tls_auth_url(), "basicAuth": {"secretRef": {"name": "creds"}}, "tls": {"caSecretRef": {"name": "creds"}}},
            "index": "logs", "size": 100
        },
        "dest": {"index": "logs-copy"},
        "requestsPerSecond": 500,
    });
    create_reindex(&client, &ns, "rotate", spec).await;
    wait_status(
        &client,
        &ns,
        "rotate",
        "documents written",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    // Rotation as a cluster admin does it: the new credential becomes valid, the Secret
    // changes, and once the copy uses it the old one is revoked.
    proxy.set_users(&[("old-user", "first-pa55"), ("new-user", "second-pa55")]);
    let patch = json!({"stringData": {"username": "new-user", "password": "second-pa55"}});
    Api::<Secret>::namespaced(client.clone(), &ns)
        .patch("creds", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually(
        "the operator to pick up the rotated Secret",
        Duration::from_secs(60),
        || {
            let picked = op.log().contains("credentials changed in their Secret");
            async move { picked.then_some(()) }
        },
    )
    .await;
    proxy.set_users(&[("new-user", "second-pa55")]);
    patch_spec(&client, &ns, "rotate", json!({"requestsPerSecond": null})).await;
    let obj = wait_terminal(&client, &ns, "rotate", Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}\n{}", op.log());
    assert_eq!(
        parsed(&all_docs(dst.url(), "logs-copy").await),
        parsed(&all_docs(src.url(), "logs").await)
    );
    assert!(
        proxy.answered(proxy.tls_auth, 401, "") == 0,
        "no request was refused: {}",
        proxy.access_log()
    );
    let log = op.log();
    assert!(
        !log.contains("first-pa55") && !log.contains("second-pa55"),
        "a password reached the log"
    );
}

#[tokio::test]
async fn insecure_skip_verify_warns_with_an_event_and_immutable_fields_are_refused() {
    let client = client().await;
    apply_crd().await;
    // insecureSkipVerify is refused unless a ReindexPolicy allows it (see tests/e2e/policy.rs).
    let ns = crate::policy::covered_namespace(&client, "rr-insecure").await;
    let policy = crate::policy::policy_name("insecure");
    let (_p, rv) = crate::policy::PolicyGuard::create(
        &client,
        &policy,
        json!({"namespaceSelector": crate::policy::selects(&ns), "allowInsecureSkipVerify": true}),
    )
    .await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(500)).await;
    let pki = Pki::generate();
    let proxy = Nginx::start(src.url(), &pki, "u", "insecure-pa55");
    create_secret(
        &client,
        &ns,
        "creds",
        &[("username", "u"), ("password", "insecure-pa55")],
    )
    .await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    crate::policy::observed(&op, &policy, &rv).await;
    let spec = json!({
        "source": {
            "remote": {"host": proxy.tls_auth_url(), "basicAuth": {"secretRef": {"name": "creds"}}, "tls": {"insecureSkipVerify": true}},
            "index": "logs"
        },
        "dest": {"index": "logs-copy"},
    });
    create_reindex(&client, &ns, "lax", spec).await;
    let obj = wait_terminal(&client, &ns, "lax", Duration::from_secs(60)).await;
    assert_eq!(obj.status.unwrap().phase, Some(Phase::Succeeded));
    wait_event_reasons(&client, &ns, "lax", &["InsecureSkipVerify"]).await;
    let warned = events(&client, &ns, "lax")
        .await
        .into_iter()
        .any(|e| e.1 == "InsecureSkipVerify" && e.2.contains("spec.source.remote"));
    assert!(warned);

    // The API server refuses the edit with the CEL rule's message (the operator checks it again
    // for a CRD applied without its rules: `RemoteReindexStatus::target`).
    let api: kube::Api<remote_reindex::api::RemoteReindex> =
        kube::Api::namespaced(client.clone(), &ns);
    let refused = api
        .patch(
            "lax",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"dest": {"index": "elsewhere"}}})),
        )
        .await
        .expect_err("dest.index is immutable");
    assert!(
        refused.to_string().contains("dest.index is immutable"),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = api.get("lax").await.unwrap().status.unwrap();
    assert_eq!(s.phase, Some(Phase::Succeeded), "{s:#?}");
    assert_eq!(
        call("GET", &format!("{}/elsewhere", dst.url()), None)
            .await
            .0,
        404,
        "nothing written to the new index"
    );
}
