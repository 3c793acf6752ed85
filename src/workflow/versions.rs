//! The version rule: which source and destination versions a copy accepts, decided from both
//! clusters' `GET /` before anything is written.

use super::error::WorkflowError;
use crate::search::{ClusterInfo, Distribution};

/// Sources: Elasticsearch 5.x–9.x and OpenSearch 1.x–3.x. Destinations: Elasticsearch 6.x–9.x
/// and OpenSearch (6.x through the `_doc` mapping type; 5.x would need a type name chosen per
/// index, which the workflow does not do). Within one distribution the remote's major must not be newer than the destination's;
/// across distributions the copy is allowed and named. Returns the human summary.
pub fn version_rule(source: &ClusterInfo, dest: &ClusterInfo) -> Result<String, WorkflowError> {
    for (which, c) in [("source", source), ("destination", dest)] {
        if c.distribution == Distribution::Elasticsearch && c.version.major < 5 {
            return Err(WorkflowError::VersionMismatch(format!(
                "the {which} runs {c}, which is not supported (sources: Elasticsearch 5.x-9.x, OpenSearch 1.x-3.x; destinations: Elasticsearch 6.x-9.x, OpenSearch 1.x-3.x)"
            )));
        }
    }
    if dest.distribution == Distribution::Elasticsearch && dest.version.major < 6 {
        return Err(WorkflowError::VersionMismatch(format!(
            "the destination runs {dest}: Elasticsearch 5.x is supported as a source only (a destination must be Elasticsearch 6.x-9.x or OpenSearch)"
        )));
    }
    if dest.is_serverless() {
        return Ok(format!(
            "{source} → {dest} (aoss: no GET / version check; replicas and refresh are managed by the service, so the destination is neither tuned nor restored)"
        ));
    }
    if source.distribution == dest.distribution {
        if source.version.major > dest.version.major {
            return Err(WorkflowError::VersionMismatch(format!(
                "the source runs {source} and the destination {dest}: a remote's major version must not be newer than the destination's"
            )));
        }
        Ok(format!("{source} → {dest}"))
    } else {
        Ok(format!("{source} → {dest} (cross-distribution copy)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Version;

    fn es(v: &str) -> ClusterInfo {
        ClusterInfo {
            distribution: Distribution::Elasticsearch,
            version: Version::parse(v).unwrap(),
        }
    }

    fn os(v: &str) -> ClusterInfo {
        ClusterInfo {
            distribution: Distribution::OpenSearch,
            version: Version::parse(v).unwrap(),
        }
    }

    fn refused(source: ClusterInfo, dest: ClusterInfo) -> String {
        match version_rule(&source, &dest) {
            Err(e @ WorkflowError::VersionMismatch(_)) => e.to_string(),
            other => panic!("{source} → {dest}: expected VersionMismatch, got {other:?}"),
        }
    }

    #[test]
    fn elasticsearch_5_is_a_source_only_and_6_a_destination_too() {
        assert_eq!(
            version_rule(&es("6.8.23"), &es("7.17.29")).unwrap(),
            "Elasticsearch 6.8.23 → Elasticsearch 7.17.29"
        );
        assert!(version_rule(&es("5.6.16"), &os("2.19.1")).is_ok());
        assert!(version_rule(&es("5.6.16"), &es("6.8.23")).is_ok());
        assert!(version_rule(&os("1.3.19"), &es("6.8.23")).is_ok());
        let m = refused(es("5.6.16"), es("5.6.16"));
        assert!(m.contains("supported as a source only"), "{m}");
        let m = refused(os("1.3.19"), es("5.6.16"));
        assert!(
            m.contains("the destination runs Elasticsearch 5.6.16"),
            "{m}"
        );
    }

    #[test]
    fn newer_majors_and_elasticsearch_2_are_refused() {
        assert!(refused(es("8.15.3"), es("7.17.29")).contains("must not be newer"));
        assert!(refused(os("3.0.0"), os("2.19.1")).contains("must not be newer"));
        assert!(refused(es("2.4.6"), es("8.15.3")).contains("the source runs Elasticsearch 2.4.6"));
        assert_eq!(
            version_rule(&es("8.15.3"), &os("2.19.1")).unwrap(),
            "Elasticsearch 8.15.3 → OpenSearch 2.19.1 (cross-distribution copy)"
        );
    }
}
