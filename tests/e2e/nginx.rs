//! nginx in front of a harness server, with certificates made by the `openssl` CLI: TLS with a
//! private CA and basic auth, mTLS, a name-mismatched certificate, a path prefix, and a plain
//! listener whose `_bulk` answers 429 while a gate file exists. Each test gets its own PKI, config
//! directory and free ports; nginx is killed on Drop.
//!
//! nginx runs as one process (`master_process off`), so there are no orphaned workers after a
//! kill and no privilege drop that could lock it out of the temporary files.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `openssl ARGS` (optionally feeding `stdin`) and returns its stdout; panics on failure.
fn openssl(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is installed");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A private CA, certificates it signed, and an unrelated second CA; all PEM files in a tempdir.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA that signed every certificate below.
    pub ca_pem: String,
    /// A CA that signed nothing here (for "wrong CA").
    pub other_ca_pem: String,
    /// Client certificate (clientAuth) signed by the CA.
    pub client_cert_pem: String,
    /// Its private key.
    pub client_key_pem: String,
    /// The server key (shared by both server certificates).
    pub server_key_pem: String,
}

const CA_CONF: &str = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = CA_CN\n[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n";

impl Pki {
    /// Generates everything (EC P-256 keys: fast). Server certificates:
    /// `server.crt` for `IP:127.0.0.1, DNS:localhost`; `localhost.crt` for `DNS:localhost` only.
    pub fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Distinct names: a same-named CA would make the verifier report a bad signature
        // rather than an unknown issuer.
        for (ca, cn) in [
            ("ca", "remote-reindex test CA"),
            ("other-ca", "unrelated test CA"),
        ] {
            std::fs::write(d.join("ca.cnf"), CA_CONF.replace("CA_CN", cn)).unwrap();
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-days",
                    "2",
                    "-config",
                    "ca.cnf",
                    "-extensions",
                    "v3_ca",
                ],
                None,
            );
        }
        let leaf = |name: &str, key: &str, cn: &str, ext: &str, serial: &str| {
            if !d.join(format!("{key}.key")).exists() {
                openssl(
                    d,
                    &[
                        "genpkey",
                        "-algorithm",
                        "EC",
                        "-pkeyopt",
                        "ec_paramgen_curve:prime256v1",
                        "-out",
                        &format!("{key}.key"),
                    ],
                    None,
                );
            }
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{key}.key"),
                    "-subj",
                    &format!("/CN={cn}"),
                    "-out",
                    &format!("{name}.csr"),
                ],
                None,
            );
            std::fs::write(
                d.join(format!("{name}.ext")),
                format!(
                    "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n{ext}\n"
                ),
            )
            .unwrap();
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-set_serial",
                    serial,
                    "-days",
                    "2",
                    "-sha256",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.crt"),
                ],
                None,
            );
        };
        leaf(
            "server",
            "server",
            "localhost",
            "extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost",
            "1001",
        );
        leaf(
            "localhost",
            "server",
            "localhost",
            "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost",
            "1002",
        );
        leaf(
            "client",
            "client",
            "remote-reindex",
            "extendedKeyUsage = clientAuth",
            "1003",
        );
        let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        Pki {
            ca_pem: read("ca.crt"),
            other_ca_pem: read("other-ca.crt"),
            client_cert_pem: read("client.crt"),
            client_key_pem: read("client.key"),
            server_key_pem: read("server.key"),
            dir,
        }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// Secret strings that must never appear in any output: the base64 lines of every private key.
    pub fn key_material(&self) -> Vec<String> {
        [&self.client_key_pem, &self.server_key_pem]
            .iter()
            .flat_map(|pem| {
                pem.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The nginx binary: `nginx` from `PATH`, else `/usr/sbin/nginx`.
fn nginx_bin() -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for p in std::env::split_paths(&paths) {
            let c = p.join("nginx");
            if c.is_file() {
                return c;
            }
        }
    }
    let p = PathBuf::from("/usr/sbin/nginx");
    assert!(
        p.exists(),
        "nginx is missing: install Debian nginx-light (scripts/install-test-deps.sh)"
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running nginx with five listeners in front of one upstream.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// TLS (`server.crt`) + basic auth; 401 answers carry an ES `security_exception` body.
    pub tls_auth: u16,
    /// TLS (`server.crt`), client certificate required (signed by the CA), no basic auth.
    pub mtls: u16,
    /// TLS with `localhost.crt` (valid for `DNS:localhost` only), no auth.
    pub localhost_only: u16,
    /// Plain http; the cluster is under `/es/`, anything else is 404.
    pub prefix: u16,
    /// Plain http; `_bulk` answers 429 while the throttle gate is set.
    pub throttle: u16,
}

const PROXY: &str = "proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_request_buffering off; proxy_buffering off;";

const ES_401: &str = r#"'{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user for REST request [$request_uri]","header":{"WWW-Authenticate":"Basic realm=\\"security\\" charset=\\"UTF-8\\""}}],"type":"security_exception","reason":"unable to authenticate user for REST request [$request_uri]","header":{"WWW-Authenticate":"Basic realm=\\"security\\" charset=\\"UTF-8\\""}},"status":401}'"#;

const ES_429: &str = r#"'{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [shard_detail=[], coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=1]"}],"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"},"status":429}'"#;

impl Nginx {
    /// Starts nginx in front of `upstream` (`http://127.0.0.1:PORT`), with basic auth for
    /// `user`/`password`. Retries with new ports if one was taken in the meantime.
    pub fn start(upstream: &str, pki: &Pki, user: &str, password: &str) -> Nginx {
        let mut dir = tempfile::tempdir().unwrap();
        let d: PathBuf = dir.path().into();
        let hash = openssl(&d, &["passwd", "-apr1", "-stdin"], Some(password));
        std::fs::write(d.join("htpasswd"), format!("{user}:{}\n", hash.trim())).unwrap();
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut last_error = String::new();
        for _ in 0..3 {
            let ports = [
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
            ];
            let conf = Self::config(&d, pki, &upstream, ports);
            std::fs::write(d.join("nginx.conf"), conf).unwrap();
            let child = Command::new(nginx_bin())
                .arg("-p")
                .arg(&d)
                .arg("-e")
                .arg(d.join("error.log"))
                .arg("-c")
                .arg(d.join("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
                .spawn()
                .expect("nginx starts");
            let mut n = Nginx {
                child,
                dir,
                tls_auth: ports[0],
                mtls: ports[1],
                localhost_only: ports[2],
                prefix: ports[3],
                throttle: ports[4],
            };
            match n.wait_ready() {
                Ok(()) => return n,
                Err(e) => {
                    last_error = e;
                    n.kill();
                    dir = std::mem::replace(&mut n.dir, tempfile::tempdir().unwrap());
                }
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn config(d: &Path, pki: &Pki, upstream: &str, p: [u16; 5]) -> String {
        let d = d.display();
        let (crt, key, lcrt, ca) = (
            pki.path("server.crt"),
            pki.path("server.key"),
            pki.path("localhost.crt"),
            pki.path("ca.crt"),
        );
        let (crt, key, lcrt, ca) = (crt.display(), key.display(), lcrt.display(), ca.display());
        format!(
            r#"master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  log_format rr '$server_port $status $request_method $request_uri';
  access_log {d}/access.log rr;
  client_max_body_size 200m;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream es {{ server {upstream}; keepalive 16; }}
  map $request_uri $es_rest {{ ~^/es(/.*)$ $1; default /; }}

  server {{
    listen 127.0.0.1:{tls_auth} ssl;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    auth_basic "security";
    auth_basic_user_file {d}/htpasswd;
    error_page 401 = @es401;
    location @es401 {{
      auth_basic off;
      default_type application/json;
      add_header WWW-Authenticate 'Basic realm="security" charset="UTF-8"' always;
      return 401 {ES_401};
    }}
    location / {{ proxy_pass http://es; {PROXY} }}
  }}

  server {{
    listen 127.0.0.1:{mtls} ssl;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    ssl_client_certificate {ca};
    ssl_verify_client on;
    location / {{ proxy_pass http://es; {PROXY} }}
  }}

  server {{
    listen 127.0.0.1:{localhost_only} ssl;
    ssl_certificate {lcrt};
    ssl_certificate_key {key};
    location / {{ proxy_pass http://es; {PROXY} }}
  }}

  server {{
    listen 127.0.0.1:{prefix};
    location /es/ {{ proxy_pass http://es$es_rest; {PROXY} }}
    location / {{
      default_type application/json;
      return 404 '{{"error":{{"type":"not_found","reason":"this proxy serves the cluster under /es/"}},"status":404}}';
    }}
  }}

  server {{
    listen 127.0.0.1:{throttle};
    location ~ /_bulk$ {{
      default_type application/json;
      if (-f {d}/throttle-bulk) {{ return 429 {ES_429}; }}
      proxy_pass http://es; {PROXY}
    }}
    location / {{ proxy_pass http://es; {PROXY} }}
  }}
}}
"#,
            tls_auth = p[0],
            mtls = p[1],
            localhost_only = p[2],
            prefix = p[3],
            throttle = p[4],
        )
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("nginx exited with {status}: {}", self.error_log()));
            }
            let all = [
                self.tls_auth,
                self.mtls,
                self.localhost_only,
                self.prefix,
                self.throttle,
            ]
            .iter()
            .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if all {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("nginx did not listen: {}", self.error_log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `https://127.0.0.1:PORT` of the TLS + basic-auth listener.
    /// Replaces the basic-auth users (nginx reads the file on every request).
    pub fn set_users(&self, users: &[(&str, &str)]) {
        let d = self.dir.path();
        let lines: String = users
            .iter()
            .map(|(u, p)| {
                format!(
                    "{u}:{}\n",
                    openssl(d, &["passwd", "-apr1", "-stdin"], Some(p)).trim()
                )
            })
            .collect();
        let tmp = d.join("htpasswd.new");
        std::fs::write(&tmp, lines).unwrap();
        std::fs::rename(tmp, d.join("htpasswd")).unwrap();
    }

    pub fn tls_auth_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.tls_auth)
    }

    /// `https://127.0.0.1:PORT` of the mTLS listener.
    pub fn mtls_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.mtls)
    }

    /// `https://127.0.0.1:PORT` of the listener whose certificate names only `localhost`.
    pub fn localhost_only_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.localhost_only)
    }

    /// `http://127.0.0.1:PORT` of the path-prefix listener (the cluster is under `/es/`).
    pub fn prefix_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.prefix)
    }

    /// `http://127.0.0.1:PORT` of the throttling listener.
    pub fn throttle_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.throttle)
    }

    /// While set, every `_bulk` on the throttling listener answers 429.
    pub fn set_bulk_throttle(&self, on: bool) {
        let gate = self.dir.path().join("throttle-bulk");
        if on {
            std::fs::write(gate, "").unwrap();
        } else {
            let _ = std::fs::remove_file(gate);
        }
    }

    /// The access log: one `port status method uri` line per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Requests on `port` that were answered with `status`, e.g. `(throttle, 429)`.
    pub fn answered(&self, port: u16, status: u16, uri_contains: &str) -> usize {
        let prefix = format!("{port} {status} ");
        self.access_log()
            .lines()
            .filter(|l| l.starts_with(&prefix) && l.contains(uri_contains))
            .count()
    }

    /// nginx's error log and stderr, for failure messages.
    pub fn error_log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}
