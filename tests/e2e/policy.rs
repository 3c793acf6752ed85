//! Safe by default in a shared cluster (`ReindexPolicy`), against the real kube-apiserver: each
//! attack a namespace user could make the operator carry out is refused, with its reason and an
//! Event naming the policy and the field, in a namespace no policy covers; and allowed in one a
//! policy covers. Policies are cluster-scoped and the control plane is shared, so each test's
//! policies select only its own namespaces (by a label) and are deleted on Drop.
//! The link-local/metadata refusal is a unit test (`policy::address`): tests never connect
//! anywhere but loopback.

use crate::aws::{Keys, Verifier};
use crate::controller::k8s::*;
use crate::harness::*;
use crate::nginx::{Nginx, Pki};
use crate::tls::{USER, password};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use remote_reindex::api::{Phase, ReindexPolicy};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The label that lets a test's policy select only the test's namespace.
const TEST_LABEL: &str = "reindex.dev/test-ns";

/// A namespace labelled so that [`selects`] matches it (and nothing else).
pub(crate) async fn covered_namespace(client: &Client, prefix: &str) -> String {
    let ns = namespace(client, prefix).await;
    let patch = json!({"metadata": {"labels": {TEST_LABEL: ns}}});
    Api::<Namespace>::all(client.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("namespace labelled");
    ns
}

/// A `namespaceSelector` for exactly `ns`.
pub(crate) fn selects(ns: &str) -> Value {
    json!({"matchLabels": {TEST_LABEL: ns}})
}

/// A `ReindexPolicy` of the test; deleted on Drop (the control plane is shared).
pub(crate) struct PolicyGuard {
    name: String,
}

impl PolicyGuard {
    /// Creates the policy; returns it and its `resourceVersion`.
    pub(crate) async fn create(client: &Client, name: &str, spec: Value) -> (PolicyGuard, String) {
        let p: ReindexPolicy = serde_json::from_value(json!({
            "apiVersion": "reindex.dev/v1alpha1",
            "kind": "ReindexPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("a valid ReindexPolicy");
        let created = Api::<ReindexPolicy>::all(client.clone())
            .create(&PostParams::default(), &p)
            .await
            .expect("ReindexPolicy created");
        let rv = created.metadata.resource_version.unwrap();
        (PolicyGuard { name: name.into() }, rv)
    }

    /// Merge-patches the policy's spec; returns the new `resourceVersion`.
    async fn patch(&self, client: &Client, spec: Value) -> String {
        let p = Api::<ReindexPolicy>::all(client.clone())
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "spec": spec })),
            )
            .await
            .expect("ReindexPolicy patched");
        p.metadata.resource_version.unwrap()
    }
}

impl Drop for PolicyGuard {
    fn drop(&mut self) {
        let _ = kubectl(
            &[
                "delete",
                "reindexpolicy",
                &self.name,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

/// Waits until the operator logged that it observed `policy` at `resource_version` (a policy
/// applies to copies that start after the operator has seen it).
pub(crate) async fn observed(op: &Operator, policy: &str, resource_version: &str) {
    eventually(
        "the operator to observe the ReindexPolicy",
        Duration::from_secs(30),
        || {
            let seen = op.log().lines().any(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_default();
                v["fields"]["policy"] == policy
                    && v["fields"]["resource_version"] == resource_version
            });
            async move { seen.then_some(()) }
        },
    )
    .await;
}

fn docs(n: usize) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i}"),
            source: json!({"n": i, "msg": format!("policy {i}")}).to_string(),
            routing: None,
        })
        .collect()
}

/// A unique, short policy name for this test process.
pub(crate) fn policy_name(tag: &str) -> String {
    format!("rr-test-{tag}-{}", std::process::id())
}

/// Waits for Failed and checks the reason on the Degraded condition and in a Warning Event whose
/// note names `field` and `by` (the policy or default that refused it). Returns the message.
async fn refused(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
    field: &str,
    by: &str,
) -> String {
    let obj = wait_terminal(client, ns, name, Duration::from_secs(60)).await;
    let s = obj.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Failed), "{name}: {s:#?}");
    let d = condition(&s, "Degraded");
    assert_eq!(d.reason, reason, "{name}: {}", d.message);
    assert!(
        d.message.contains(field) && d.message.contains(by),
        "{name}: the message names {field} and {by}: {}",
        d.message
    );
    wait_event_reasons(client, ns, name, &[reason]).await;
    let evs = events(client, ns, name).await;
    let (type_, _, note) = evs.iter().find(|e| e.1 == reason).unwrap();
    assert_eq!(type_, "Warning");
    assert!(
        note.contains(field) && note.contains(by),
        "{name}: the Event names {field} and {by}: {note}"
    );
    d.message.clone()
}

async fn succeeded(client: &Client, ns: &str, name: &str, op: &Operator) {
    let obj = wait_terminal(client, ns, name, Duration::from_secs(120)).await;
    let s = obj.status.unwrap();
    assert_eq!(
        s.phase,
        Some(Phase::Succeeded),
        "{ns}/{name}: {s:#?}\n{}",
        op.log()
    );
}

/// A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them): proof
/// that a refused host was never connected to.
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let counter = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (format!("http://{addr}"), n)
}

#[tokio::test]
async fn without_allowed_remote_hosts_every_host_is_refused_unless_a_policy_lists_it() {
    let client = client().await;
    apply_crd().await;
    let plain = namespace(&client, "rr-pol-plain").await;
    let covered = covered_namespace(&client, "rr-pol-hosts").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(300)).await;
    let src_hp = src.url().trim_start_matches("http://").to_string();
    let name = policy_name("hosts");
    let (_p, rv) = PolicyGuard::create(
        &client,
        &name,
        json!({"namespaceSelector": selects(&covered), "allowedSourceHosts": [src_hp]}),
    )
    .await;
    // The operator as `helm install` runs it without allowedRemoteHosts: no flag at all.
    let op = Operator::start(
        &plain,
        dst.url(),
        &["--allowed-remote-hosts=", "--namespace", &covered],
    )
    .await;
    observed(&op, &name, &rv).await;
    let spec = json!({"source": {"remote": {"host": src.url()}, "index": "logs"}, "dest": {"index": "logs-copy"}});
    create_reindex(&client, &plain, "copy", spec.clone()).await;
    create_reindex(&client, &covered, "copy", spec).await;
    let msg = refused(
        &client,
        &plain,
        "copy",
        "HostNotAllowed",
        "spec.source.remote.host",
        "without --allowed-remote-hosts",
    )
    .await;
    assert!(msg.contains(&src_hp), "{msg}");
    succeeded(&client, &covered, "copy", &op).await;
    assert_eq!(count(dst.url(), "logs-copy").await, 300);

    // The proxy bypass: an allowed host through a proxy the policy does not list. The proxy is
    // refused before anything connects to it.
    let (proxy, connections) = counting_listener();
    let proxy_hp = proxy.trim_start_matches("http://").to_string();
    create_reindex(
        &client,
        &covered,
        "via-proxy",
        json!({"source": {"remote": {"host": src.url(), "proxy": {"url": proxy}}, "index": "logs"}, "dest": {"index": "via-proxy"}}),
    )
    .await;
    let msg = refused(
        &client,
        &covered,
        "via-proxy",
        "HostNotAllowed",
        "spec.source.remote.proxy.url",
        &format!("ReindexPolicy/{name} spec.allowedSourceHosts"),
    )
    .await;
    assert!(msg.contains(&proxy_hp), "{msg}");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the refused proxy was connected to"
    );
    assert_eq!(
        call("GET", &format!("{}/via-proxy", dst.url()), None)
            .await
            .0,
        404
    );

    // An explicit destination needs a list too (the operator's --dest-host does not).
    create_reindex(
        &client,
        &covered,
        "explicit-dest",
        json!({"source": {"remote": {"host": src.url()}, "index": "logs"}, "dest": {"remote": {"host": dst.url()}, "index": "explicit"}}),
    )
    .await;
    refused(
        &client,
        &covered,
        "explicit-dest",
        "HostNotAllowed",
        "spec.dest.remote.host",
        "allowedDestHosts",
    )
    .await;
}

#[tokio::test]
async fn each_permission_is_refused_by_default_and_granted_by_a_policy() {
    let client = client().await;
    apply_crd().await;
    let plain = namespace(&client, "rr-pol-deny").await;
    let covered = covered_namespace(&client, "rr-pol-grant").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "src", &docs(200)).await;
    let (pki, pw) = (Pki::generate(), password("pol"));
    let nginx = Nginx::start(src.url(), &pki, USER, &pw);
    let keys = Keys::new("ambient", true);
    let verifier = Verifier::start(src.url(), "es", &keys);
    for ns in [&plain, &covered] {
        create_secret(
            &client,
            ns,
            "creds",
            &[("username", USER), ("password", &pw)],
        )
        .await;
        create_secret(&client, ns, "ca", &[("ca.crt", &pki.ca_pem)]).await;
        create_secret_labelled(
            &client,
            ns,
            "unlabelled",
            &[("username", USER), ("password", &pw)],
            false,
        )
        .await;
    }
    let name = policy_name("grants");
    let (_p, rv) = PolicyGuard::create(
        &client,
        &name,
        json!({
            "namespaceSelector": selects(&covered),
            "allowAmbientAwsIdentity": true,
            "allowInsecureSkipVerify": true,
            "allowInsecureHttp": true,
            "requireSecretLabel": false,
            "allowedDestIndices": ["dst-*", ".restored-*"],
        }),
    )
    .await;
    // The pod's own AWS identity, as IRSA or environment variables would give it.
    let token = keys.token.clone().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", keys.id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", keys.secret.as_str()),
        ("AWS_SESSION_TOKEN", token.as_str()),
    ];
    let op = Operator::start_env(&plain, dst.url(), &["--namespace", &covered], &env).await;
    observed(&op, &name, &rv).await;

    let ca = json!({"caSecretRef": {"name": "ca"}});
    // (resource, source endpoint, destination index, reason, field)
    let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
        (
            "ambient",
            json!({"host": verifier.url(), "aws": {"region": "eu-west-1", "service": "es"}}),
            "dst-ambient",
            "AmbientIdentityNotAllowed",
            "spec.source.remote.aws",
        ),
        (
            "insecure-tls",
            json!({"host": nginx.tls_auth_url(), "basicAuth": {"secretRef": {"name": "creds"}}, "tls": {"insecureSkipVerify": true}}),
            "dst-insecure-tls",
            "InsecureTLSNotAllowed",
            "spec.source.remote.tls.insecureSkipVerify",
        ),
        (
            "insecure-http",
            json!({"host": src.url(), "basicAuth": {"secretRef": {"name": "creds"}}, "allowInsecureHttp": true}),
            "dst-insecure-http",
            "InsecureHttpNotAllowed",
            "spec.source.remote.allowInsecureHttp",
        ),
        (
            "unlabelled",
            json!({"host": nginx.tls_auth_url(), "basicAuth": {"secretRef": {"name": "unlabelled"}}, "tls": ca}),
            "dst-unlabelled",
            "SecretNotLabelled",
            "spec.source.remote.basicAuth.secretRef",
        ),
        (
            "system-index",
            json!({"host": src.url()}),
            ".restored-logs",
            "DestIndexNotAllowed",
            "spec.dest.index",
        ),
    ];
    for ns in [&plain, &covered] {
        for (name, remote, index, _, _) in &cases {
            create_reindex(
                &client,
                ns,
                name,
                json!({"source": {"remote": remote, "index": "src"}, "dest": {"index": index}, "preflightTimeout": "20s"}),
            )
            .await;
        }
    }
    for (name, _, _, reason, field) in &cases {
        refused(
            &client,
            &plain,
            name,
            reason,
            field,
            &format!("no ReindexPolicy selects namespace `{plain}`"),
        )
        .await;
    }
    for (name, _, index, _, _) in &cases {
        succeeded(&client, &covered, name, &op).await;
        assert_eq!(count(dst.url(), index).await, 200, "{name}");
    }
    verifier.assert_all_ok();
    let log = op.log();
    for s in keys.secrets().iter().chain([&pw]) {
        assert!(
            !log.contains(s.as_str()),
            "a secret reached the operator log"
        );
    }
}

#[tokio::test]
async fn rate_and_slice_maxima_refuse_what_exceeds_them() {
    let client = client().await;
    apply_crd().await;
    let plain = namespace(&client, "rr-pol-nolimit").await;
    let covered = covered_namespace(&client, "rr-pol-limit").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "src", &docs(1_500)).await;
    let name = policy_name("limits");
    let (_p, rv) = PolicyGuard::create(
        &client,
        &name,
        json!({"namespaceSelector": selects(&covered), "maxRequestsPerSecond": 1000, "maxSlices": 2}),
    )
    .await;
    let op = Operator::start(&plain, dst.url(), &["--namespace", &covered]).await;
    observed(&op, &name, &rv).await;
    let spec = |index: &str, extra: Value| {
        let mut s = json!({"source": {"remote": {"host": src.url()}, "index": "src", "slices": 4}, "dest": {"index": index}});
        if let (Some(o), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        s
    };
    // Without a policy: unlimited and four slices.
    create_reindex(&client, &plain, "fast", spec("fast", json!({}))).await;
    create_reindex(
        &client,
        &covered,
        "fast",
        spec("fast", json!({"requestsPerSecond": 5000})),
    )
    .await;
    create_reindex(
        &client,
        &covered,
        "wide",
        spec("wide", json!({"requestsPerSecond": 1000})),
    )
    .await;
    // Slow (1,500 documents at 100/s: 15 s) so that the rethrottle below lands mid-copy even
    // when the first progress shows late on a loaded machine.
    let mut within = spec("within", json!({"requestsPerSecond": 100}));
    within["source"]["slices"] = json!(2);
    create_reindex(&client, &covered, "within", within).await;
    succeeded(&client, &plain, "fast", &op).await;
    let by_rate = format!("ReindexPolicy/{name} spec.maxRequestsPerSecond");
    let msg = refused(
        &client,
        &covered,
        "fast",
        "RateLimitExceeded",
        "spec.requestsPerSecond",
        &by_rate,
    )
    .await;
    assert!(msg.contains("5000") && msg.contains("1000"), "{msg}");
    refused(
        &client,
        &covered,
        "wide",
        "SlicesNotAllowed",
        "spec.source.slices",
        &format!("ReindexPolicy/{name} spec.maxSlices"),
    )
    .await;
    // A running copy cannot be rethrottled above the maximum it started under.
    wait_status(
        &client,
        &covered,
        "within",
        "copying",
        Duration::from_secs(60),
        |s| s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    patch_spec(
        &client,
        &covered,
        "within",
        json!({"requestsPerSecond": 50000}),
    )
    .await;
    wait_event_reasons(&client, &covered, "within", &["RateLimitExceeded"]).await;
    succeeded(&client, &covered, "within", &op).await;
    assert_eq!(count(dst.url(), "within").await, 1_500);
    assert!(
        !events(&client, &covered, "within")
            .await
            .iter()
            .any(|e| e.1 == "Rethrottled"),
        "the rate above the maximum was not applied"
    );
}

#[tokio::test]
async fn a_policy_change_applies_to_new_copies_and_running_ones_continue() {
    let client = client().await;
    apply_crd().await;
    let ns = covered_namespace(&client, "rr-pol-change").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "src", &docs(2_000)).await;
    let src_hp = src.url().trim_start_matches("http://").to_string();
    let name = policy_name("change");
    let (p, rv) = PolicyGuard::create(
        &client,
        &name,
        json!({"namespaceSelector": selects(&ns), "allowedSourceHosts": [src_hp]}),
    )
    .await;
    let op = Operator::start(&ns, dst.url(), &[]).await;
    observed(&op, &name, &rv).await;
    let spec = |index: &str| json!({"source": {"remote": {"host": src.url()}, "index": "src", "size": 100}, "dest": {"index": index}, "requestsPerSecond": 250});
    create_reindex(&client, &ns, "running", spec("running")).await;
    wait_status(
        &client,
        &ns,
        "running",
        "copying",
        Duration::from_secs(60),
        |s| s.phase == Some(Phase::Copying) && s.progress.as_ref().is_some_and(|p| p.written > 0),
    )
    .await;
    // The platform team narrows the policy while the copy runs.
    let rv = p
        .patch(&client, json!({"allowedSourceHosts": ["127.0.0.1:1"]}))
        .await;
    observed(&op, &name, &rv).await;
    create_reindex(&client, &ns, "late", spec("late")).await;
    refused(
        &client,
        &ns,
        "late",
        "HostNotAllowed",
        "spec.source.remote.host",
        &format!("ReindexPolicy/{name} spec.allowedSourceHosts"),
    )
    .await;
    succeeded(&client, &ns, "running", &op).await;
    assert_eq!(count(dst.url(), "running").await, 2_000);
    // Deleting the policy leaves the operator's flag (127.0.0.1:*): new copies run again,
    // without a restart.
    drop(p);
    eventually(
        "the operator to see the deletion",
        Duration::from_secs(30),
        || {
            let seen = op.log().contains(&format!("\"policy\":\"{name}\""))
                && op.log().contains("ReindexPolicy deleted");
            async move { seen.then_some(()) }
        },
    )
    .await;
    let mut after = spec("after");
    after["requestsPerSecond"] = Value::Null;
    create_reindex(&client, &ns, "after", after).await;
    succeeded(&client, &ns, "after", &op).await;
}

/// Issue 22: `spec.cutover.aliases` are names the operator writes on the destination with its
/// own credentials. An alias outside `allowedDestIndices` (another team's) is refused with
/// `DestIndexNotAllowed` naming it, before anything is written: no destination index, and the
/// other team's alias still points where it did.
#[tokio::test]
async fn cutover_aliases_outside_allowed_dest_indices_are_refused_before_anything_is_written() {
    let client = client().await;
    apply_crd().await;
    let covered = covered_namespace(&client, "rr-pol-alias").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "logs", &docs(100)).await;
    // Another team's index and alias on the shared destination.
    load(dst.url(), "team-b-orders", &docs(3)).await;
    let (s, v) = call(
        "POST",
        &format!("{}/_aliases", dst.url()),
        Some(json!({"actions": [{"add": {"index": "team-b-orders", "alias": "team-b-live"}}]})),
    )
    .await;
    assert!(s < 300, "{s} {v}");
    let name = policy_name("aliases");
    let (_p, rv) = PolicyGuard::create(
        &client,
        &name,
        json!({"namespaceSelector": selects(&covered), "allowedDestIndices": ["team-a-*"]}),
    )
    .await;
    let op = Operator::start(&covered, dst.url(), &[]).await;
    observed(&op, &name, &rv).await;
    create_reindex(
        &client,
        &covered,
        "steal",
        json!({
            "source": {"remote": {"host": src.url()}, "index": "logs"},
            "dest": {"index": "team-a-logs"},
            "catchUp": {"field": "n", "interval": "1s"},
            "cutover": {"trigger": true, "verify": "Count", "aliases": ["team-a-live", "team-b-live"]},
        }),
    )
    .await;
    let msg = refused(
        &client,
        &covered,
        "steal",
        "DestIndexNotAllowed",
        "spec.cutover.aliases[1]",
        &format!("ReindexPolicy/{name} spec.allowedDestIndices"),
    )
    .await;
    assert!(msg.contains("team-b-live"), "{msg}");
    assert_eq!(
        call("GET", &format!("{}/team-a-logs", dst.url()), None)
            .await
            .0,
        404,
        "nothing written"
    );
    let (_, aliases) = call("GET", &format!("{}/_alias/team-b-live", dst.url()), None).await;
    assert_eq!(
        aliases,
        json!({"team-b-orders": {"aliases": {"team-b-live": {}}}}),
        "the other team's alias is untouched"
    );
}

/// Issue 22: a `Migration` copies the source's templates and aliases with the operator's
/// credentials. A template whose `index_patterns` (`*`) and alias reach beyond
/// `allowedDestIndices` is refused with `DestIndexNotAllowed` naming it, before anything is
/// written on the destination.
#[tokio::test]
async fn a_migration_whose_templates_or_aliases_leave_allowed_dest_indices_writes_nothing() {
    let client = client().await;
    crate::migration::apply_crds().await;
    let covered = covered_namespace(&client, "rr-pol-mig").await;
    let (src, dst) = (noida(), noida());
    load(src.url(), "team-a-logs", &docs(50)).await;
    let put = |path: &str, body: Value| {
        let url = format!("{}/{path}", src.url());
        async move {
            let (s, v) = call("PUT", &url, Some(body)).await;
            assert!(s < 300, "{url}: {s} {v}");
        }
    };
    // A catch-all template, and an alias naming another team's.
    put(
        "_index_template/catch-all",
        json!({"index_patterns": ["*"], "priority": 1, "template": {"settings": {"number_of_replicas": 0}}}),
    )
    .await;
    let (s, v) = call(
        "POST",
        &format!("{}/_aliases", src.url()),
        Some(json!({"actions": [{"add": {"index": "team-a-logs", "alias": "team-b-live"}}]})),
    )
    .await;
    assert!(s < 300, "{s} {v}");
    let name = policy_name("mig");
    let (_p, rv) = PolicyGuard::create(
        &client,
        &name,
        json!({"namespaceSelector": selects(&covered), "allowedDestIndices": ["team-a-*"]}),
    )
    .await;
    let op = Operator::start(&covered, dst.url(), &[]).await;
    observed(&op, &name, &rv).await;
    let yaml = format!(
        "apiVersion: reindex.dev/v1alpha1\nkind: Migration\nmetadata:\n  name: mig\n  namespace: {covered}\nspec:\n  source:\n    remote:\n      host: {}\n  indices: [team-a-logs]\n",
        src.url()
    );
    let (code, out, err) = kubectl(&["apply", "-f", "-"], Some(&yaml));
    assert_eq!(code, 0, "{out}{err}");
    let api: kube::Api<remote_reindex::api::Migration> =
        kube::Api::namespaced(client.clone(), &covered);
    let m = eventually("the Migration to end", Duration::from_secs(120), || {
        let api = api.clone();
        async move {
            let m = api.get("mig").await.ok()?;
            m.status
                .as_ref()?
                .phase
                .is_some_and(remote_reindex::api::MigrationPhase::is_terminal)
                .then_some(m)
        }
    })
    .await;
    let s = m.status.unwrap();
    let template = call(
        "GET",
        &format!("{}/_index_template/catch-all", dst.url()),
        None,
    )
    .await
    .0;
    let index = call("GET", &format!("{}/team-a-logs", dst.url()), None)
        .await
        .0;
    let (_, alias) = call("GET", &format!("{}/_alias/team-b-live", dst.url()), None).await;
    let degraded = s.conditions.iter().find(|c| c.type_ == "Degraded");
    assert!(
        s.phase == Some(remote_reindex::api::MigrationPhase::Failed)
            && degraded.is_some_and(|c| c.reason == "DestIndexNotAllowed"
                && c.message.contains("`*`")
                && c.message.contains("allowedDestIndices"))
            && template == 404
            && index == 404
            && !alias.to_string().contains("team-a-logs"),
        "phase {:?}, Degraded {degraded:?}; on the destination: template catch-all HTTP {template}, index team-a-logs HTTP {index}, alias team-b-live {alias}\n{}",
        s.phase,
        op.log()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    wait_event_reasons(&client, &covered, "mig", &["DestIndexNotAllowed"]).await;
}
