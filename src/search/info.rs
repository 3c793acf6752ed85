//! `GET /`: which distribution and version a cluster runs.

use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use reqwest::Method;
use serde::Deserialize;

/// The search engine family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Elasticsearch (any version).
    Elasticsearch,
    /// OpenSearch, including Amazon OpenSearch Service.
    OpenSearch,
    /// Amazon OpenSearch Serverless (`aoss`): no `GET /`, so no version; destination only.
    OpenSearchServerless,
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Distribution::Elasticsearch => "Elasticsearch",
            Distribution::OpenSearch => "OpenSearch",
            Distribution::OpenSearchServerless => "OpenSearch Serverless",
        })
    }
}

/// A `major.minor.patch` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// Parses `8.15.3`, `7.10.2-SNAPSHOT`, `6.8`.
    pub fn parse(s: &str) -> Option<Version> {
        let core = s.split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u32>());
        let major = it.next()?.ok()?;
        let minor = it.next().unwrap_or(Ok(0)).ok()?;
        let patch = it.next().unwrap_or(Ok(0)).ok()?;
        Some(Version {
            major,
            minor,
            patch,
        })
    }
}

/// What `GET /` says about a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Elasticsearch or OpenSearch.
    pub distribution: Distribution,
    /// The version number.
    pub version: Version,
}

impl std::fmt::Display for ClusterInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.distribution {
            Distribution::OpenSearchServerless => write!(f, "{}", self.distribution),
            _ => write!(f, "{} {}", self.distribution, self.version),
        }
    }
}

impl ClusterInfo {
    /// What an OpenSearch Serverless collection is taken to be (it has no `GET /`).
    pub fn serverless() -> ClusterInfo {
        ClusterInfo {
            distribution: Distribution::OpenSearchServerless,
            version: Version {
                major: 2,
                minor: 0,
                patch: 0,
            },
        }
    }

    /// True for OpenSearch Serverless.
    pub fn is_serverless(&self) -> bool {
        self.distribution == Distribution::OpenSearchServerless
    }
}

#[derive(Deserialize)]
struct RootResponse {
    version: Option<RootVersion>,
    tagline: Option<String>,
}

#[derive(Deserialize)]
struct RootVersion {
    number: Option<String>,
    distribution: Option<String>,
    build_flavor: Option<String>,
}

impl SearchClient {
    /// `GET /`: distribution and version.
    pub async fn info(&self) -> Result<ClusterInfo, SearchError> {
        let resp = self
            .request(Method::GET, "/", None, &[], Resend::Safe)
            .await?;
        let product = resp
            .headers
            .get("x-elastic-product")
            .and_then(|v| v.to_str().ok());
        let mut info =
            parse_root(&resp.body, product).map_err(|d| self.decode_error("GET", "/", d))?;
        if info.distribution == Distribution::OpenSearch && reports_compat_version(&resp.body) {
            // `compatibility.override_main_response_version` (common on Amazon OpenSearch
            // Service domains): `GET /` claims 7.10.2 without `version.distribution`. The nodes
            // report the version they really run.
            info.version = match self.node_version().await {
                Ok(Some(v)) => v,
                other => {
                    tracing::warn!(host = %self.name(), result = ?other.map_err(|e| e.to_string()), "OpenSearch in compatibility mode and its node version could not be read; taking it as OpenSearch 1.0.0");
                    Version {
                        major: 1,
                        minor: 0,
                        patch: 0,
                    }
                }
            };
        }
        if info.distribution == Distribution::Elasticsearch
            && info.version.major >= 8
            && product.is_none()
        {
            // Elasticsearch 7.14+ sends the header on every answer; its official clients refuse
            // a server without it. A proxy may strip it, so this only warns.
            tracing::warn!(host = %self.name(), version = %info.version, "the server claims Elasticsearch 8+ but sends no X-Elastic-Product header: it may not be Elasticsearch, or a proxy strips headers");
        }
        Ok(info)
    }
}

impl SearchClient {
    /// The lowest version the cluster's nodes run (`GET /_nodes`), if readable.
    async fn node_version(&self) -> Result<Option<Version>, SearchError> {
        let resp = self
            .request(
                Method::GET,
                "_nodes?filter_path=nodes.*.version",
                None,
                &[],
                Resend::Safe,
            )
            .await?;
        Ok(lowest_node_version(&resp.body))
    }
}

/// The lowest `nodes.*.version` of a `GET /_nodes` answer.
fn lowest_node_version(body: &[u8]) -> Option<Version> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["nodes"]
        .as_object()?
        .values()
        .filter_map(|n| n["version"].as_str().and_then(Version::parse))
        .min()
}

/// True when `GET /` has no `version.distribution`: an OpenSearch recognised by its tagline
/// then runs with `compatibility.override_main_response_version` and reports 7.10.2.
fn reports_compat_version(body: &[u8]) -> bool {
    serde_json::from_slice::<RootResponse>(body)
        .ok()
        .and_then(|r| r.version)
        .is_some_and(|v| v.distribution.is_none())
}

/// Interprets a `GET /` body and the `X-Elastic-Product` header (Elasticsearch 7.14+).
/// Elasticsearch is recognised by that header, its `build_flavor` (6.3+) or its tagline
/// (every version); OpenSearch by `version.distribution` (1.0+) or its tagline.
pub(crate) fn parse_root(body: &[u8], product: Option<&str>) -> Result<ClusterInfo, String> {
    let root: RootResponse = serde_json::from_slice(body)
        .map_err(|_| "not an Elasticsearch/OpenSearch root response (no JSON)".to_string())?;
    let v = root
        .version
        .ok_or("no `version` object: not Elasticsearch or OpenSearch")?;
    let number = v.number.clone().ok_or("no `version.number`")?;
    let tagline = root.tagline.as_deref().unwrap_or("");
    let version =
        Version::parse(&number).ok_or_else(|| format!("unparseable version `{number}`"))?;
    let distribution = match v.distribution.as_deref() {
        Some("opensearch") => Distribution::OpenSearch,
        Some(other) if !other.is_empty() => {
            return Err(format!(
                "unknown distribution `{other}` (supported: Elasticsearch, OpenSearch)"
            ));
        }
        _ if product == Some("Elasticsearch") => Distribution::Elasticsearch,
        _ if tagline.contains("OpenSearch") => Distribution::OpenSearch,
        _ if tagline.contains("You Know, for Search") || v.build_flavor.is_some() => {
            Distribution::Elasticsearch
        }
        _ => {
            return Err(format!(
                "unknown distribution: `GET /` reports version {number} but neither Elasticsearch (tagline, build_flavor, X-Elastic-Product) nor OpenSearch (version.distribution) markers (supported: Elasticsearch 5.x-9.x, OpenSearch 1.x-3.x)"
            ));
        }
    };
    Ok(ClusterInfo {
        distribution,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_mode_is_seen_and_the_node_version_read() {
        let body = br#"{"version":{"number":"7.10.2","build_type":"tar"},"tagline":"The OpenSearch Project: https://opensearch.org/"}"#;
        assert_eq!(
            parse_root(body, None).unwrap().distribution,
            Distribution::OpenSearch
        );
        assert!(reports_compat_version(body));
        assert!(!reports_compat_version(
            br#"{"version":{"distribution":"opensearch","number":"2.19.6"}}"#
        ));
        assert_eq!(
            lowest_node_version(
                br#"{"nodes":{"a":{"version":"2.19.6"},"b":{"version":"2.17.1"}}}"#
            ),
            Version::parse("2.17.1")
        );
        assert_eq!(lowest_node_version(br#"{}"#), None);
    }

    #[test]
    fn recognises_distributions() {
        let es = parse_root(br#"{"version":{"number":"8.15.3","build_flavor":"default"},"tagline":"You Know, for Search"}"#, None).unwrap();
        assert_eq!(es.distribution, Distribution::Elasticsearch);
        assert_eq!(
            es.version,
            Version {
                major: 8,
                minor: 15,
                patch: 3
            }
        );
        let os = parse_root(br#"{"version":{"distribution":"opensearch","number":"3.8.0"},"tagline":"The OpenSearch Project: https://opensearch.org/"}"#, None).unwrap();
        assert_eq!(os.distribution, Distribution::OpenSearch);
        assert!(
            parse_root(
                br#"{"version":{"distribution":"solr","number":"9.0.0"}}"#,
                None
            )
            .unwrap_err()
            .contains("solr")
        );
        assert!(parse_root(b"<html>", None).is_err());
        // Elasticsearch 5.x: tagline only; a bare header-identified Elasticsearch.
        let es5 = parse_root(
            br#"{"version":{"number":"5.6.16"},"tagline":"You Know, for Search"}"#,
            None,
        )
        .unwrap();
        assert_eq!(es5.distribution, Distribution::Elasticsearch);
        let bare = br#"{"version":{"number":"8.1.0"}}"#;
        assert!(parse_root(bare, Some("Elasticsearch")).is_ok());
        assert!(
            parse_root(bare, None)
                .unwrap_err()
                .contains("unknown distribution")
        );
        assert_eq!(Version::parse("7.10.2-SNAPSHOT").unwrap().minor, 10);
    }
}
