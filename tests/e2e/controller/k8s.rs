//! Kubernetes side of the controller tests: the shared control plane from `scripts/test.sh`
//! (`RR_TEST_KUBECONFIG`), the CRD, a namespace per test, and the operator as a child process.
//! A missing control plane fails the test; it is never skipped.

use crate::harness::eventually;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use remote_reindex::api::{RemoteReindex, RemoteReindexStatus};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The kubeconfig of the shared control plane.
pub fn kubeconfig() -> PathBuf {
    let p = std::env::var_os("RR_TEST_KUBECONFIG").map(PathBuf::from).expect(
        "RR_TEST_KUBECONFIG is not set: the controller tests need the control plane that scripts/test.sh starts",
    );
    assert!(
        p.exists(),
        "RR_TEST_KUBECONFIG={} does not exist",
        p.display()
    );
    p
}

/// The Kubernetes version the tests run against (`scripts/control-plane.sh` builds and starts it).
pub const KUBE_VERSION: &str = "v1.37.2";

/// A client for the shared control plane, after checking that it is the current Kubernetes
/// ([`KUBE_VERSION`]): a test on another version fails, it is never skipped.
pub async fn client() -> Client {
    let client = client_from(&kubeconfig()).await;
    let version = client
        .apiserver_version()
        .await
        .expect("GET /version of the test control plane");
    assert_eq!(
        version.git_version, KUBE_VERSION,
        "the test control plane is kube-apiserver {}, the tests need {KUBE_VERSION} (scripts/test.sh starts it)",
        version.git_version
    );
    client
}

/// A client for the control plane of `path`.
pub async fn client_from(path: &std::path::Path) -> Client {
    remote_reindex::search::install_crypto_provider();
    let kc = Kubeconfig::read_from(path).expect("the test kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("kube client")
}

/// `kubectl` against the shared control plane: (exit code, stdout, stderr).
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is on PATH (scripts/test.sh puts it there)");
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Applies `crds/remotereindex.yaml` and `crds/reindexpolicy.yaml` with kubectl and waits until
/// they are Established. Tests run in parallel processes, so concurrent applies may conflict:
/// retried. Server-side apply, the documented way to install or update the CRDs (README).
pub async fn apply_crd() {
    for (file, crd) in [
        (
            concat!(env!("CARGO_MANIFEST_DIR"), "/crds/remotereindex.yaml"),
            "crd/remotereindexes.reindex.dev",
        ),
        (
            concat!(env!("CARGO_MANIFEST_DIR"), "/crds/reindexpolicy.yaml"),
            "crd/reindexpolicies.reindex.dev",
        ),
    ] {
        apply_one_crd(file, crd).await;
    }
}

pub(crate) async fn apply_one_crd(file: &str, crd: &str) {
    let mut last = String::new();
    for _ in 0..10 {
        let (code, out, err) = kubectl(
            &["apply", "--server-side", "--force-conflicts", "-f", file],
            None,
        );
        if code == 0 {
            wait_established(crd).await;
            return;
        }
        last = format!("{out}{err}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("kubectl apply -f {file} failed: {last}");
}

/// Waits until `crd` is Established. Right after an apply (another test process may be applying
/// the same CRD), `kubectl wait` can read the CRD before the API server wrote its
/// `status.conditions` and fail at once ("accessor error: <nil> is of the type <nil>"): that
/// answer is asked again, any other failure is one.
async fn wait_established(crd: &str) {
    let mut answer = String::new();
    for _ in 0..20 {
        let (code, out, err) = kubectl(
            &["wait", "--for=condition=Established", "--timeout=60s", crd],
            None,
        );
        if code == 0 {
            return;
        }
        answer = format!("{out}{err}");
        if !answer.contains("accessor error") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{crd} not established: {answer}");
}

/// Creates a fresh namespace named after the test.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("{prefix}-{}-{nanos:x}", std::process::id());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    name
}

/// Creates a Secret with string data, labelled `reindex.dev/use: "true"` so the operator may
/// use it.
pub async fn create_secret(client: &Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    create_secret_labelled(client, ns, name, data, true).await
}

/// Creates a Secret with string data, with or without the `reindex.dev/use: "true"` label.
pub async fn create_secret_labelled(
    client: &Client,
    ns: &str,
    name: &str,
    data: &[(&str, &str)],
    labelled: bool,
) {
    let s = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: labelled.then(|| {
                [("reindex.dev/use".to_string(), "true".to_string())]
                    .into_iter()
                    .collect()
            }),
            ..Default::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &s)
        .await
        .expect("secret created");
}

/// Creates a `RemoteReindex` from JSON (`metadata.name` and `spec`).
pub async fn create_reindex(client: &Client, ns: &str, name: &str, spec: Value) -> RemoteReindex {
    let obj: RemoteReindex = serde_json::from_value(serde_json::json!({
        "apiVersion": "reindex.dev/v1alpha1",
        "kind": "RemoteReindex",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .expect("a valid RemoteReindex");
    Api::<RemoteReindex>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .expect("RemoteReindex created")
}

/// Polls until the resource's status satisfies `f`.
pub async fn wait_status(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    timeout: Duration,
    f: impl Fn(&RemoteReindexStatus) -> bool,
) -> RemoteReindex {
    let api: Api<RemoteReindex> = Api::namespaced(client.clone(), ns);
    let f = &f;
    eventually(what, timeout, || {
        let api = api.clone();
        async move {
            let obj = api.get_opt(name).await.ok()??;
            obj.status.as_ref().is_some_and(f).then_some(obj)
        }
    })
    .await
}

/// Merge-patches the resource's spec.
pub async fn patch_spec(client: &Client, ns: &str, name: &str, spec: Value) {
    let api: Api<RemoteReindex> = Api::namespaced(client.clone(), ns);
    let patch = kube::api::Patch::Merge(serde_json::json!({ "spec": spec }));
    api.patch(name, &kube::api::PatchParams::default(), &patch)
        .await
        .expect("spec patched");
}

/// Polls until the resource is gone.
pub async fn wait_gone(client: &Client, ns: &str, name: &str, timeout: Duration) {
    let api: Api<RemoteReindex> = Api::namespaced(client.clone(), ns);
    eventually("the resource to be deleted", timeout, || {
        let api = api.clone();
        async move { matches!(api.get_opt(name).await, Ok(None)).then_some(()) }
    })
    .await
}

/// The condition of `type_`.
pub fn condition<'a>(s: &'a RemoteReindexStatus, type_: &str) -> &'a Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {s:?}"))
}

/// `(type, reason, note)` of the Events about `name`, oldest first.
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String, String)> {
    let list = Api::<Event>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .expect("events list");
    let mut evs: Vec<_> = list
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    evs.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    evs.into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// `remote-reindex controller` as a child process, watching one namespace. Killed on Drop; its
/// log is printed when the test failed.
pub struct Operator {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// `host:port` of `/healthz`, `/readyz` and `/metrics`.
    pub addr: String,
}

impl Operator {
    /// Starts the operator for `ns` with `--dest-host dest` and `extra` flags, and waits until
    /// `/readyz` answers 200. Unless `extra` sets `--allowed-remote-hosts`, the test servers'
    /// `127.0.0.1:*` is allowed (the operator allows no remote host by default).
    pub async fn start(ns: &str, dest: &str, extra: &[&str]) -> Operator {
        Self::start_as(&kubeconfig(), ns, dest, extra).await
    }

    /// [`Operator::start`] with another kubeconfig (e.g. a ServiceAccount's token).
    pub async fn start_as(
        kubeconfig: &std::path::Path,
        ns: &str,
        dest: &str,
        extra: &[&str],
    ) -> Operator {
        Self::start_with_log(kubeconfig, ns, dest, extra, "info,kube=warn").await
    }

    /// [`Operator::start_as`] with a `RUST_LOG` filter (e.g. `debug` for a log scan).
    pub async fn start_with_log(
        kubeconfig: &std::path::Path,
        ns: &str,
        dest: &str,
        extra: &[&str],
        rust_log: &str,
    ) -> Operator {
        Self::start_full(kubeconfig, ns, dest, extra, rust_log, &[]).await
    }

    /// [`Operator::start`] with extra environment variables (e.g. the pod's AWS identity).
    pub async fn start_env(ns: &str, dest: &str, extra: &[&str], env: &[(&str, &str)]) -> Operator {
        Self::start_full(&kubeconfig(), ns, dest, extra, "info,kube=warn", env).await
    }

    /// The operator with a kubeconfig, extra flags, a `RUST_LOG` filter and extra environment.
    pub async fn start_full(
        kubeconfig: &std::path::Path,
        ns: &str,
        dest: &str,
        extra: &[&str],
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> Operator {
        let mut extra: Vec<&str> = extra.to_vec();
        if !extra
            .iter()
            .any(|a| a.starts_with("--allowed-remote-hosts"))
        {
            extra.extend(["--allowed-remote-hosts", "127.0.0.1:*"]);
        }
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("operator.log");
        let child = Command::new(env!("CARGO_BIN_EXE_remote-reindex"))
            .args([
                "--log-format",
                "json",
                "controller",
                "--dest-host",
                dest,
                "--namespace",
                ns,
            ])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", rust_log)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the operator starts");
        let mut op = Operator {
            child,
            log,
            _dir: dir,
            addr: String::new(),
        };
        let addr = eventually(
            "the operator to serve /readyz",
            Duration::from_secs(30),
            || {
                let exited = op.child.try_wait().ok().flatten();
                assert!(
                    exited.is_none(),
                    "the operator exited with {exited:?}:\n{}",
                    op.log()
                );
                let addr = op.log().lines().find_map(|l| {
                    let v: Value = serde_json::from_str(l).ok()?;
                    v["fields"]["addr"].as_str().map(str::to_string)
                });
                async move { addr }
            },
        )
        .await;
        eventually("/readyz to answer 200", Duration::from_secs(30), || {
            let url = format!("http://{addr}/readyz");
            async move {
                crate::harness::http()
                    .get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
                    .map(|_| ())
            }
        })
        .await;
        op.addr = addr;
        op
    }

    /// Kills the operator with SIGKILL (a crash: nothing is cleaned up).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The operator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`STOP`, `CONT`, ...) without waiting.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{sig} {pid}");
    }

    /// The exit status, if the operator has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid}");
        let child = &mut self.child;
        eventually(
            "the operator to exit after SIGTERM",
            Duration::from_secs(60),
            || {
                let exited = child.try_wait().ok().flatten();
                async move { exited }
            },
        )
        .await
        .code()
    }

    /// Peak resident memory of the operator process so far, in MiB (`VmHWM`).
    pub fn peak_rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    }

    /// The operator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> String {
        let r = crate::harness::http()
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .expect("/metrics");
        r.text().await.unwrap()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- operator log (last 60 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// The reasons of the resource's Events, once all of `required` are among them (Events are
/// recorded just after the status they describe, so they are polled, not raced).
pub async fn wait_event_reasons(
    client: &Client,
    ns: &str,
    name: &str,
    required: &[&str],
) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reasons: Vec<String> = events(client, ns, name)
            .await
            .into_iter()
            .map(|e| e.1)
            .collect();
        if required.iter().all(|r| reasons.iter().any(|x| x == r)) {
            return reasons;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Events {required:?} not all recorded: {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the resource reaches Succeeded or Failed.
pub async fn wait_terminal(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> RemoteReindex {
    wait_status(client, ns, name, "a terminal phase", timeout, |s| {
        s.phase.is_some_and(remote_reindex::api::Phase::is_terminal)
    })
    .await
}

/// A control plane of the test's own (the shared one must not be restarted under other tests).
pub struct OwnControlPlane {
    dir: tempfile::TempDir,
}

impl OwnControlPlane {
    fn script() -> std::process::Command {
        std::process::Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/control-plane.sh"
        ))
    }

    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let st = Self::script()
            .arg("start")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "control plane start");
        OwnControlPlane { dir }
    }

    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// `kubectl apply --server-side` of `crds/NAME.yaml` for each name, then waits until each
    /// CRD is Established.
    pub fn apply_crds(&self, names: &[&str]) {
        let kc = self.kubeconfig();
        let kc = kc.to_str().unwrap();
        for name in names {
            let file = format!("{}/crds/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
            let (code, _, err) = kubectl(
                &["--kubeconfig", kc, "apply", "--server-side", "-f", &file],
                None,
            );
            assert_eq!(code, 0, "kubectl apply -f {file}: {err}");
        }
        let (code, _, err) = kubectl(
            &[
                "--kubeconfig",
                kc,
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd",
                "--all",
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
    }

    pub fn restart_apiserver(&self) {
        let st = Self::script()
            .arg("restart-apiserver")
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "kube-apiserver restart");
    }
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        let _ = Self::script().arg("stop").arg(self.dir.path()).status();
    }
}

/// A kubeconfig for ServiceAccount `sa` in `ns` on the control plane of `admin` (its cluster
/// entry, and a token from the TokenRequest API). Returns the file and the token (to check it is
/// never logged).
pub fn service_account_kubeconfig(
    admin: &std::path::Path,
    dir: &std::path::Path,
    ns: &str,
    sa: &str,
) -> (PathBuf, String) {
    let admin = admin.to_str().unwrap();
    let (code, token, err) = kubectl(
        &[
            "--kubeconfig",
            admin,
            "create",
            "token",
            sa,
            "-n",
            ns,
            "--duration=30m",
        ],
        None,
    );
    assert_eq!(code, 0, "kubectl create token: {err}");
    let token = token.trim().to_string();
    assert!(token.len() > 20, "a token: {token:?}");
    let (code, out, err) = kubectl(
        &[
            "--kubeconfig",
            admin,
            "config",
            "view",
            "--minify",
            "--raw",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let view: Value = serde_json::from_str(&out).unwrap();
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": view["clusters"][0]["cluster"]}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": sa, "namespace": ns}}],
        "current-context": "sa",
    });
    let path = dir.join("sa.kubeconfig");
    std::fs::write(&path, config.to_string()).unwrap();
    (path, token)
}
