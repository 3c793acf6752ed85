//! Resolving `spec.indices` / `spec.exclude` against the source: which indices exist, their
//! size, and which matches are not copied (closed indices, data streams).

use crate::api::Reason;
use crate::search::{SearchClient, SearchError};
use serde_json::Value;

/// One source index as `_cat/indices` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceIndex {
    /// The index name.
    pub name: String,
    /// Documents (`docs.count`).
    pub docs: u64,
    /// Primary store size in bytes.
    pub bytes: u64,
    /// Primary shards.
    pub shards: u32,
    /// Closed indices are reported, not copied.
    pub open: bool,
    /// `index.hidden` (or a name starting with `.`).
    pub hidden: bool,
}

/// A matched name that is not copied, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The index or data stream.
    pub name: String,
    /// `IndexClosed` or `DataStreamNotSupported`.
    pub reason: crate::api::Reason,
    /// Details.
    pub message: String,
}

/// The outcome of resolution.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    /// Indices to copy, larger first (then by name).
    pub indices: Vec<SourceIndex>,
    /// Matches that are not copied.
    pub refused: Vec<Refused>,
    /// Explicit names (no wildcard) that matched nothing.
    pub missing: Vec<String>,
}

/// Whether `name` matches `pattern` (`*` matches any run of characters; index names cannot
/// contain `?`).
pub fn glob(pattern: &str, name: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(name)
}

/// Whether `name` is selected by `include` and not by `exclude`. Hidden and `.` indices are
/// selected only by an exact name.
pub fn selected(name: &str, hidden: bool, include: &[String], exclude: &[String]) -> bool {
    let hidden = hidden || name.starts_with('.');
    let included = include
        .iter()
        .any(|p| if hidden { p == name } else { glob(p, name) });
    included && !exclude.iter().any(|p| glob(p, name))
}

/// Lists the source's indices and data streams and applies the patterns.
pub async fn resolve(
    source: &SearchClient,
    include: &[String],
    exclude: &[String],
) -> Result<Resolution, SearchError> {
    let cat = source
        .get_json(
            "_cat/indices?format=json&expand_wildcards=all&bytes=b&h=index,status,pri,docs.count,pri.store.size",
        )
        .await?;
    // `_resolve/index` (Elasticsearch 7.9+, OpenSearch) names hidden indices and data streams;
    // older clusters have neither data streams nor `index.hidden` worth honouring beyond `.`.
    let resolved = source
        .get_json_opt("_resolve/index/*?expand_wildcards=all")
        .await
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    Ok(resolution(&cat, &resolved, include, exclude))
}

/// The pure part of [`resolve`]: `_cat/indices` and `_resolve/index` responses to a resolution.
pub fn resolution(
    cat: &Value,
    resolved: &Value,
    include: &[String],
    exclude: &[String],
) -> Resolution {
    let hidden: std::collections::HashSet<&str> = resolved["indices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| {
            i["attributes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "hidden"))
        })
        .filter_map(|i| i["name"].as_str())
        .collect();
    let mut out = Resolution::default();
    let mut backing = std::collections::HashSet::new();
    for ds in resolved["data_streams"].as_array().into_iter().flatten() {
        let Some(name) = ds["name"].as_str() else {
            continue;
        };
        for b in ds["backing_indices"].as_array().into_iter().flatten() {
            if let Some(b) = b.as_str() {
                backing.insert(b.to_string());
            }
        }
        if selected(name, false, include, exclude) {
            out.refused.push(Refused {
                name: name.to_string(),
                reason: Reason::DataStreamNotSupported,
                message: format!(
                    "`{name}` is a data stream: its writes need op_type create and @timestamp; copy its backing indices by name or wait for data stream support"
                ),
            });
        }
    }
    let num = |v: &Value| -> u64 {
        match v {
            Value::String(s) => s.parse().unwrap_or(0),
            Value::Number(n) => n.as_u64().unwrap_or(0),
            _ => 0,
        }
    };
    for row in cat.as_array().into_iter().flatten() {
        let Some(name) = row["index"].as_str() else {
            continue;
        };
        if backing.contains(name) && !include.iter().any(|p| p == name) {
            continue;
        }
        let idx = SourceIndex {
            name: name.to_string(),
            docs: num(&row["docs.count"]),
            bytes: num(&row["pri.store.size"]),
            shards: num(&row["pri"]).max(1) as u32,
            open: row["status"].as_str() != Some("close"),
            hidden: hidden.contains(name) || name.starts_with('.'),
        };
        if !selected(&idx.name, idx.hidden, include, exclude) {
            continue;
        }
        if !idx.open {
            out.refused.push(Refused {
                name: idx.name.clone(),
                reason: Reason::IndexClosed,
                message: format!("`{}` is closed: open it to copy it", idx.name),
            });
            continue;
        }
        out.indices.push(idx);
    }
    out.indices.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.docs.cmp(&a.docs))
            .then(a.name.cmp(&b.name))
    });
    out.refused.sort_by(|a, b| a.name.cmp(&b.name));
    for p in include.iter().filter(|p| !p.contains('*')) {
        let found =
            out.indices.iter().any(|i| &i.name == p) || out.refused.iter().any(|r| &r.name == p);
        if !found && !exclude.iter().any(|e| glob(e, p)) {
            out.missing.push(p.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_like_elasticsearch_wildcards() {
        assert!(glob("logs-2024-*", "logs-2024-01"));
        assert!(glob("*", "a"));
        assert!(glob("a*b*c", "aXXbYc"));
        assert!(!glob("logs-2024-*", "logs-2023-01"));
        assert!(glob("orders", "orders") && !glob("orders", "orders2"));
    }

    #[test]
    fn resolution_skips_hidden_closed_excluded_and_data_streams() {
        let cat = json!([
            {"index": "logs-1", "status": "open", "pri": "2", "docs.count": "10", "pri.store.size": "100"},
            {"index": "logs-2", "status": "open", "pri": "1", "docs.count": "50", "pri.store.size": "900"},
            {"index": "logs-old", "status": "open", "pri": "1", "docs.count": "5", "pri.store.size": "9"},
            {"index": "logs-closed", "status": "close", "pri": "1", "docs.count": null, "pri.store.size": null},
            {"index": "logs-hidden", "status": "open", "pri": "1", "docs.count": "1", "pri.store.size": "1"},
            {"index": ".kibana", "status": "open", "pri": "1", "docs.count": "1", "pri.store.size": "1"},
            {"index": ".ds-logs-ds-000001", "status": "open", "pri": "1", "docs.count": "1", "pri.store.size": "1"},
        ]);
        let resolved = json!({
            "indices": [{"name": "logs-hidden", "attributes": ["hidden", "open"]}],
            "data_streams": [{"name": "logs-ds", "backing_indices": [".ds-logs-ds-000001"]}],
        });
        let inc = vec![
            "logs-*".to_string(),
            "*kibana".to_string(),
            "nothere".to_string(),
        ];
        let r = resolution(&cat, &resolved, &inc, &["logs-old".to_string()]);
        let names: Vec<_> = r.indices.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["logs-2", "logs-1"], "larger first");
        assert_eq!(r.indices[1].shards, 2);
        let refused: Vec<_> = r
            .refused
            .iter()
            .map(|x| (x.name.as_str(), x.reason))
            .collect();
        assert_eq!(
            refused,
            [
                ("logs-closed", Reason::IndexClosed),
                ("logs-ds", Reason::DataStreamNotSupported)
            ]
        );
        assert_eq!(r.missing, ["nothere"]);
        let r = resolution(
            &cat,
            &resolved,
            &[".kibana".into(), "logs-hidden".into()],
            &[],
        );
        assert_eq!(r.indices.len(), 2, "named explicitly: {:?}", r.indices);
    }
}
