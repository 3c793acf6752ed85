//! Both clusters of one copy, connected and checked: what every step after pre-flight uses.

use crate::search::{ClusterInfo, SearchClient};

/// Both clusters, connected and checked.
#[derive(Clone, Debug)]
pub struct Connected {
    /// The source client.
    pub source: SearchClient,
    /// The destination client.
    pub dest: SearchClient,
    /// What the source runs.
    pub source_info: ClusterInfo,
    /// What the destination runs.
    pub dest_info: ClusterInfo,
    /// A human summary, e.g. `Elasticsearch 8.15.3 → OpenSearch 3.8.0 (cross-distribution)`.
    pub summary: String,
    /// Whether the operator reaches the source. Always true in `mode: Engine`; in
    /// `mode: Server` the destination reads the source, and when the operator cannot,
    /// `source_info` is only a placeholder (version 0.0.0) and the source is never asked.
    pub source_reachable: bool,
}
