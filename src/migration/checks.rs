//! Pre-flight checks shared by `plan` and a Migration's start: what the destination will reject
//! (mapping types, settings), how many scroll contexts the plan opens against the source's
//! limit, and what a Migration does not migrate.

use crate::api::units::Slices;
use crate::search::{ClusterInfo, Distribution, SearchClient};
use serde_json::Value;

/// A mapping type, why OpenSearch rejects it, and the first OpenSearch `(major, minor)` that has
/// it (if any).
type MissingType = (&'static str, &'static str, Option<(u32, u32)>);

/// Mapping types an OpenSearch destination does not have, with what to use instead, and the
/// first OpenSearch version that has the type (if any).
const OPENSEARCH_MISSING_TYPES: [MissingType; 9] = [
    ("flattened", "OpenSearch has `flat_object` instead", None),
    (
        "constant_keyword",
        "OpenSearch has no constant_keyword; use keyword",
        None,
    ),
    (
        "wildcard",
        "OpenSearch has `wildcard` only from 2.15",
        Some((2, 15)),
    ),
    ("dense_vector", "OpenSearch has `knn_vector` instead", None),
    ("sparse_vector", "OpenSearch has no sparse_vector", None),
    ("semantic_text", "OpenSearch has no semantic_text", None),
    (
        "aggregate_metric_double",
        "OpenSearch has no aggregate_metric_double",
        None,
    ),
    ("histogram", "OpenSearch has no histogram field", None),
    ("counted_keyword", "OpenSearch has no counted_keyword", None),
];

/// Whether the destination is OpenSearch (or Amazon OpenSearch Serverless).
pub fn is_opensearch(dest: &ClusterInfo) -> bool {
    dest.is_serverless() || dest.distribution == Distribution::OpenSearch
}

/// Mapping fields of a type the destination rejects: `field (type): why`.
pub fn mapping_rejects(mappings: &Value, dest: &ClusterInfo) -> Vec<String> {
    if !is_opensearch(dest) {
        return Vec::new();
    }
    let mut out = Vec::new();
    fn walk(prefix: &str, props: &Value, dest: &ClusterInfo, out: &mut Vec<String>) {
        let Some(props) = props.as_object() else {
            return;
        };
        for (name, def) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if let Some(t) = def["type"].as_str()
                && let Some((_, why, since)) =
                    OPENSEARCH_MISSING_TYPES.iter().find(|(ty, _, _)| *ty == t)
            {
                let has_it = since.is_some_and(|(maj, min)| {
                    (dest.version.major, dest.version.minor) >= (maj, min)
                });
                if !has_it {
                    out.push(format!("mapping `{path}` ({t}): {why}"));
                }
            }
            walk(&path, &def["properties"], dest, out);
            walk(&path, &def["fields"], dest, out);
        }
    }
    // Typed (6.x) mappings nest one level deeper.
    match mappings.get("properties") {
        Some(p) => walk("", p, dest, &mut out),
        None => {
            for (_, typed) in mappings.as_object().into_iter().flatten() {
                walk("", &typed["properties"], dest, &mut out);
            }
        }
    }
    out
}

/// Whether the destination rejects a (flat) index setting.
pub fn setting_rejected(key: &str, dest: &ClusterInfo) -> bool {
    is_opensearch(dest)
        && (key.starts_with("index.lifecycle.")
            || key.ends_with("_tier_preference")
            || key.starts_with("index.routing.allocation.include._tier")
            || key.starts_with("index.mode")
            || key.starts_with("index.time_series."))
}

/// Settings of an index (flat) the destination rejects.
pub fn setting_rejects(flat: &serde_json::Map<String, Value>, dest: &ClusterInfo) -> Vec<String> {
    flat.keys()
        .filter(|k| setting_rejected(k, dest))
        .map(|k| format!("setting `{k}`: not accepted by OpenSearch; not carried over"))
        .collect()
}

/// Scroll contexts one child opens: one per slice per primary shard.
pub fn contexts(slices: Option<&Slices>, shards: u32) -> u64 {
    let slices = match slices.cloned().unwrap_or_default() {
        Slices::Count(n) => n.max(1),
        Slices::Auto(_) => shards.clamp(1, 16),
    };
    u64::from(slices) * u64::from(shards.max(1))
}

/// The peak of open contexts with `parallelism` children (the largest ones at once), and the
/// highest parallelism up to the requested one whose peak stays within `limit` (at least 1).
pub fn bound_parallelism(per_index: &[u64], parallelism: usize, limit: u64) -> (u64, usize) {
    let mut sorted = per_index.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let peak = |p: usize| sorted.iter().take(p).sum::<u64>();
    let mut p = parallelism.max(1);
    while p > 1 && peak(p) > limit {
        p -= 1;
    }
    (peak(p), p)
}

/// The source's `search.max_open_scroll_context` (500 when unset or not reported).
pub async fn scroll_context_limit(source: &SearchClient) -> u64 {
    const KEY: &str = "search.max_open_scroll_context";
    let v = source
        .get_json_opt("_cluster/settings?include_defaults=true&flat_settings=true")
        .await
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    ["transient", "persistent", "defaults"]
        .iter()
        .find_map(|s| match &v[s][KEY] {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .unwrap_or(500)
}

/// What a Migration does not migrate, as `(what, found)` lines: ILM/ISM policies, ingest
/// pipelines, stored scripts, security objects. Listing failures are reported, not fatal.
pub async fn not_migrated(source: &SearchClient) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let names = |v: &Value, under: Option<&str>| -> Vec<String> {
        let obj = match under {
            Some(k) => &v[k],
            None => v,
        };
        match obj {
            Value::Object(m) => m.keys().filter(|k| !k.starts_with('.')).cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|p| p["_id"].as_str().or(p["policy_id"].as_str()))
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    let sources: [(&str, &[&str], Option<&str>); 5] = [
        ("ILM policies", &["_ilm/policy"], None),
        (
            "ISM policies",
            &["_plugins/_ism/policies", "_opendistro/_ism/policies"],
            Some("policies"),
        ),
        ("ingest pipelines", &["_ingest/pipeline"], None),
        (
            "stored scripts",
            &["_cluster/state/metadata?filter_path=metadata.stored_scripts"],
            None,
        ),
        (
            "security roles",
            &["_security/role", "_plugins/_security/api/roles"],
            None,
        ),
    ];
    for (what, paths, under) in sources {
        let mut found = None;
        for p in paths {
            if let Ok(Some(v)) = source.get_json_opt(p).await {
                let v = if what == "stored scripts" {
                    v["metadata"]["stored_scripts"].clone()
                } else {
                    v
                };
                found = Some(names(&v, under));
                break;
            }
        }
        match found {
            Some(n) if n.is_empty() => {}
            Some(n) => out.push((what.to_string(), shorten(&n))),
            None => {}
        }
    }
    out
}

/// `n: a, b, c` with at most 10 names.
fn shorten(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        s.push_str(&format!(", … ({} more)", names.len() - 10));
    }
    format!("{}: {s}", names.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Version;
    use serde_json::json;

    fn opensearch(major: u32, minor: u32) -> ClusterInfo {
        ClusterInfo {
            distribution: Distribution::OpenSearch,
            version: Version {
                major,
                minor,
                patch: 0,
            },
        }
    }

    #[test]
    fn flags_types_opensearch_lacks_by_version() {
        let m = json!({"properties": {
            "a": {"type": "flattened"},
            "b": {"type": "text", "fields": {"w": {"type": "wildcard"}}},
            "c": {"properties": {"v": {"type": "dense_vector"}, "k": {"type": "constant_keyword"}}},
            "d": {"type": "keyword"},
        }});
        let r = mapping_rejects(&m, &opensearch(2, 11));
        assert_eq!(r.len(), 4, "{r:?}");
        assert!(r[1].starts_with("mapping `b.w` (wildcard)"), "{r:?}");
        let r = mapping_rejects(&m, &opensearch(2, 19));
        assert_eq!(r.len(), 3, "wildcard exists from 2.15: {r:?}");
        let typed = json!({"_doc": {"properties": {"x": {"type": "flattened"}}}});
        assert_eq!(mapping_rejects(&typed, &opensearch(2, 19)).len(), 1);
    }

    #[test]
    fn flags_lifecycle_and_tier_settings_for_opensearch() {
        let os = opensearch(2, 19);
        assert!(setting_rejected("index.lifecycle.name", &os));
        assert!(setting_rejected(
            "index.routing.allocation.include._tier_preference",
            &os
        ));
        assert!(!setting_rejected("index.number_of_shards", &os));
    }

    #[test]
    fn parallelism_is_bounded_by_the_scroll_context_limit() {
        assert_eq!(contexts(Some(&Slices::Count(4)), 5), 20);
        assert_eq!(contexts(None, 3), 3);
        assert_eq!(bound_parallelism(&[100, 300, 200, 50], 3, 500), (500, 2));
        assert_eq!(bound_parallelism(&[100, 300, 200, 50], 3, 600), (600, 3));
        assert_eq!(
            bound_parallelism(&[900], 2, 500),
            (900, 1),
            "one child always runs"
        );
    }
}
