//! `GET /`: which distribution and version a cluster runs.

use super::client::SearchClient;
use super::error::SearchError;
use reqwest::Method;
use serde::Deserialize;

/// The search engine family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Elasticsearch (any version).
    Elasticsearch,
    /// OpenSearch, including Amazon OpenSearch Service.
    OpenSearch,
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Distribution::Elasticsearch => "Elasticsearch",
            Distribution::OpenSearch => "OpenSearch",
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
        write!(f, "{} {}", self.distribution, self.version)
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
}

impl SearchClient {
    /// `GET /`: distribution and version.
    pub async fn info(&self) -> Result<ClusterInfo, SearchError> {
        let resp = self.request(Method::GET, "/", None, &[]).await?;
        parse_root(&resp.body).map_err(|d| self.decode_error("GET", "/", d))
    }
}

/// Interprets a `GET /` body.
pub(crate) fn parse_root(body: &[u8]) -> Result<ClusterInfo, String> {
    let root: RootResponse = serde_json::from_slice(body)
        .map_err(|_| "not an Elasticsearch/OpenSearch root response (no JSON)".to_string())?;
    let v = root
        .version
        .ok_or("no `version` object: not Elasticsearch or OpenSearch")?;
    let number = v.number.ok_or("no `version.number`")?;
    let version =
        Version::parse(&number).ok_or_else(|| format!("unparseable version `{number}`"))?;
    let distribution = match v.distribution.as_deref() {
        Some("opensearch") => Distribution::OpenSearch,
        Some(other) if !other.is_empty() => {
            return Err(format!(
                "unknown distribution `{other}` (supported: Elasticsearch, OpenSearch)"
            ));
        }
        _ if root
            .tagline
            .as_deref()
            .is_some_and(|t| t.contains("OpenSearch")) =>
        {
            Distribution::OpenSearch
        }
        _ => Distribution::Elasticsearch,
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
    fn recognises_distributions() {
        let es = parse_root(br#"{"version":{"number":"8.15.3","build_flavor":"default"},"tagline":"You Know, for Search"}"#).unwrap();
        assert_eq!(es.distribution, Distribution::Elasticsearch);
        assert_eq!(
            es.version,
            Version {
                major: 8,
                minor: 15,
                patch: 3
            }
        );
        let os = parse_root(br#"{"version":{"distribution":"opensearch","number":"3.8.0"},"tagline":"The OpenSearch Project: https://opensearch.org/"}"#).unwrap();
        assert_eq!(os.distribution, Distribution::OpenSearch);
        assert!(
            parse_root(br#"{"version":{"distribution":"solr","number":"9.0.0"}}"#)
                .unwrap_err()
                .contains("solr")
        );
        assert!(parse_root(b"<html>").is_err());
        assert_eq!(Version::parse("7.10.2-SNAPSHOT").unwrap().minor, 10);
    }
}
