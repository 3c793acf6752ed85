//! Other versions and distributions than the two real servers: `fake_version` is a small
//! reverse proxy in front of a real server that answers `GET /` as another version and, for
//! Elasticsearch 5.x/6.x, rewrites the API the way those versions answer (typed mappings,
//! `_type` in hits, `hits.total` as a number).

use crate::harness::*;
use crate::tls::{HEAD, error_line, tail};

/// What the fake claims to be.
#[derive(Clone, Copy)]
struct Claim {
    /// `version.number`.
    number: &'static str,
    /// `Some("opensearch")` for OpenSearch, `None` for Elasticsearch, `Some("")` for neither.
    distribution: Option<&'static str>,
    /// The `_type` of hits and of the mapping (Elasticsearch 5.x/6.x).
    doc_type: Option<&'static str>,
}

impl Claim {
    fn root(&self) -> (String, Option<&'static str>) {
        let major: u32 = self.number.split('.').next().unwrap().parse().unwrap();
        match self.distribution {
            Some("opensearch") => (
                format!(
                    r#"{{"name":"fake","cluster_name":"fake","version":{{"distribution":"opensearch","number":"{}","build_type":"tar","lucene_version":"8.10.1"}},"tagline":"The OpenSearch Project: https://opensearch.org/"}}"#,
                    self.number
                ),
                None,
            ),
            Some(_) => (
                format!(
                    r#"{{"name":"fake","version":{{"number":"{}"}},"tagline":"Something else entirely"}}"#,
                    self.number
                ),
                None,
            ),
            // 5.x has no build_flavor; 7.14+ sends the product header.
            None if major < 6 => (
                format!(
                    r#"{{"name":"fake","cluster_name":"fake","version":{{"number":"{}","build_hash":"x","lucene_version":"6.6.1"}},"tagline":"You Know, for Search"}}"#,
                    self.number
                ),
                None,
            ),
            None => (
                format!(
                    r#"{{"name":"fake","cluster_name":"fake","version":{{"number":"{}","build_flavor":"default","build_type":"tar"}},"tagline":"You Know, for Search"}}"#,
                    self.number
                ),
                (major >= 8).then_some("Elasticsearch"),
            ),
        }
    }
}

/// Typed hits and a numeric `hits.total`, as Elasticsearch 5.x/6.x answer a search or scroll.
/// Textual, so that `_source` stays byte for byte what the real server sent.
fn typed_search(body: &str, doc_type: &str) -> String {
    let mut out = body.replace("\"_id\":", &format!("\"_type\":\"{doc_type}\",\"_id\":"));
    if let Some(start) = out.find("\"total\":{") {
        let obj_start = start + "\"total\":".len();
        let end = obj_start + out[obj_start..].find('}').unwrap() + 1;
        let total: serde_json::Value = serde_json::from_str(&out[obj_start..end]).unwrap();
        out.replace_range(obj_start..end, &total["value"].to_string());
    }
    out
}

/// `{"idx":{"mappings":{…}}}` → `{"idx":{"mappings":{"<type>":{…}}}}`.
fn typed_mapping(body: &str, doc_type: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
    for (_, idx) in v.as_object_mut().unwrap() {
        let m = idx["mappings"].take();
        idx["mappings"] = serde_json::json!({ doc_type: m });
    }
    v.to_string()
}

/// `fake_version`: starts the proxy in front of `upstream`; returns its URL.
async fn fake_version(upstream: &str, claim: Claim) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let upstream = upstream.to_string();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let upstream = upstream.clone();
            async move {
                let pq = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
                if method == Method::GET && uri.path() == "/" {
                    let (body, product) = claim.root();
                    let mut h = HeaderMap::new();
                    h.insert("content-type", "application/json".parse().unwrap());
                    if let Some(p) = product {
                        h.insert("x-elastic-product", p.parse().unwrap());
                    }
                    return (StatusCode::OK, h, body.into_bytes());
                }
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
                let mut text = resp.bytes().await.unwrap().to_vec();
                if let (Some(t), true) = (claim.doc_type, status.is_success()) {
                    let s = String::from_utf8(text.clone()).unwrap();
                    if uri.path().contains("/_search") {
                        text = typed_search(&s, t).into_bytes();
                    } else if uri.path().ends_with("/_mapping") && method == Method::GET {
                        text = typed_mapping(&s, t).into_bytes();
                    }
                }
                let mut h = HeaderMap::new();
                h.insert("content-type", "application/json".parse().unwrap());
                (status, h, text)
            }
        },
    );
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

fn spec(src: &str, dst: &str) -> String {
    format!(
        "{HEAD}spec:\n  source:\n    remote: {{host: \"{src}\"}}\n    index: src\n    size: 60\n  dest:\n    remote: {{host: \"{dst}\"}}\n    index: dst\n"
    )
}

async fn run_yaml(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = manifest(&dir, "r.yaml", yaml);
    run_cli(&["run", "-f", f.to_str().unwrap()]).await
}

const ES: Option<&str> = None;

#[tokio::test]
async fn older_elasticsearch_and_opensearch_sources_copy_into_the_current_servers() {
    let cases = [
        // (claim, source is OpenSearch, expected summary)
        (
            Claim {
                number: "6.8.23",
                distribution: ES,
                doc_type: Some("_doc"),
            },
            false,
            "Elasticsearch 6.8.23 → Elasticsearch 8.15.3",
        ),
        (
            Claim {
                number: "5.6.16",
                distribution: ES,
                doc_type: Some("doc"),
            },
            false,
            "Elasticsearch 5.6.16 → Elasticsearch 8.15.3",
        ),
        (
            Claim {
                number: "7.10.2",
                distribution: ES,
                doc_type: None,
            },
            false,
            "Elasticsearch 7.10.2 → Elasticsearch 8.15.3",
        ),
        (
            Claim {
                number: "1.3.19",
                distribution: Some("opensearch"),
                doc_type: None,
            },
            true,
            "OpenSearch 1.3.19 → OpenSearch 3.8.0",
        ),
    ];
    for (claim, opensearch, summary) in cases {
        let (src, dst) = if opensearch {
            (osmem(), osmem())
        } else {
            (noida(), noida())
        };
        create_index(src.url(), "src", lean_mapping()).await;
        load(src.url(), "src", &hostile_docs(150)).await;
        let fake = fake_version(src.url(), claim).await;
        let (code, out, err) = run_yaml(&spec(&fake, dst.url())).await;
        assert_eq!(code, 0, "{}: {out}\n{}", claim.number, tail(&err));
        assert!(err.contains(summary), "{}: {}", claim.number, tail(&err));
        assert!(
            out.contains("copied 150 of 150 documents expected (0 failed"),
            "{out}"
        );
        let (a, b) = (
            all_docs(src.url(), "src").await,
            all_docs(dst.url(), "dst").await,
        );
        assert_eq!(parsed(&a), parsed(&b), "{}: documents differ", claim.number);
        // The source's (typed) mapping was created untyped on the destination.
        let (_, m) = call("GET", &format!("{}/dst/_mapping", dst.url()), None).await;
        assert_eq!(
            m["dst"]["mappings"]["properties"]["tag"]["type"], "keyword",
            "{}: {m}",
            claim.number
        );
    }
}

#[tokio::test]
async fn newer_majors_unknown_distributions_and_elasticsearch_2_are_refused_before_copying() {
    let (src, dst) = (noida(), noida());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(10)).await;
    let cases = [
        (
            Claim {
                number: "9.1.0",
                distribution: ES,
                doc_type: None,
            },
            "error [VersionMismatch]",
            "the source runs Elasticsearch 9.1.0 and the destination Elasticsearch 8.15.3",
        ),
        (
            Claim {
                number: "2.4.6",
                distribution: ES,
                doc_type: Some("doc"),
            },
            "error [VersionMismatch]",
            "Elasticsearch 2.4.6, which is not supported",
        ),
        (
            Claim {
                number: "9.0.0",
                distribution: Some(""),
                doc_type: None,
            },
            "error [RequestFailed]",
            "unknown distribution",
        ),
    ];
    for (claim, reason, message) in cases {
        let fake = fake_version(src.url(), claim).await;
        let (code, _, err) = run_yaml(&format!(
            "{}  preflightTimeout: 1s\n",
            spec(&fake, dst.url())
        ))
        .await;
        assert_eq!(code, 3, "{}: {}", claim.number, tail(&err));
        let line = error_line(&err);
        assert!(
            line.starts_with(reason) && line.contains(message),
            "{}: {line}",
            claim.number
        );
    }
    let (s, _) = call("HEAD", &format!("{}/dst", dst.url()), None).await;
    assert_eq!(s, 404, "nothing was created on the destination");
}

#[tokio::test]
async fn elasticsearch_5_destinations_are_refused_before_anything_is_written() {
    // 6.x destinations are tested on a real 6.8 node (es6_dest.rs).
    let (src, dst) = (noida(), noida());
    create_index(src.url(), "src", lean_mapping()).await;
    load(src.url(), "src", &hostile_docs(10)).await;
    let claim = Claim {
        number: "5.6.16",
        distribution: ES,
        doc_type: Some("doc"),
    };
    let fake_dst = fake_version(dst.url(), claim).await;
    let (code, out, err) = run_yaml(&spec(src.url(), &fake_dst)).await;
    assert_eq!(code, 3, "{out}\n{}", tail(&err));
    let line = error_line(&err);
    assert!(
        line.starts_with("error [VersionMismatch]")
            && line.contains("the destination runs Elasticsearch 5.6.16")
            && line.contains("supported as a source only"),
        "{line}"
    );
    let (s, _) = call("HEAD", &format!("{}/dst", dst.url()), None).await;
    assert_eq!(s, 404, "nothing was created on the destination");
}
