//! The destination index: create or inspect it, remember its settings, tune, restore.
//!
//! The original `number_of_replicas` and `refresh_interval` are recorded in two places before
//! any tuning: the driver's store (the resource's status) and a marker in the destination's
//! mapping `_meta` (so `run -f` survives a crash too). A restart reads the record instead of the
//! tuned values, so it never mistakes `-1`/`0` for the user's settings.

use super::error::WorkflowError;
use crate::api::{OriginalSettings, RecordedSetting};
use crate::search::{IndexDescription, SearchClient, SearchError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The key under the destination mapping's `_meta`.
pub const META_KEY: &str = "remote_reindex";

/// What the marker in `_meta` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Settings before tuning.
    pub original_settings: OriginalSettings,
    /// Whether the index was empty (or absent) when the copy started.
    pub dest_was_empty: bool,
    /// `host/index` of the source, to tell our own interrupted copy from another's.
    pub source: String,
}

/// Reads a marker left by an interrupted copy.
pub fn read_marker(desc: &IndexDescription) -> Option<Marker> {
    let meta = meta_of(&desc.mappings)?;
    serde_json::from_value(meta.get(META_KEY)?.clone()).ok()
}

fn meta_of(mappings: &Value) -> Option<&Map<String, Value>> {
    mappings.get("_meta")?.as_object()
}

/// Writes (or with `None`, removes) the marker, keeping the rest of `_meta`.
pub async fn write_marker(
    dest: &SearchClient,
    index: &str,
    marker: Option<&Marker>,
) -> Result<(), SearchError> {
    let desc = dest.describe_index(index).await?;
    let mut meta = meta_of(&desc.mappings).cloned().unwrap_or_default();
    match marker {
        Some(m) => {
            meta.insert(
                META_KEY.into(),
                serde_json::to_value(m).expect("marker serializes"),
            );
        }
        // Real engines replace `_meta` on a mapping update, so leaving the key out removes it.
        // Some servers merge the update instead; for them the key is then overwritten with null
        // (`read_marker` reads null as no marker).
        None => {
            if meta.remove(META_KEY).is_none_or(|v| v.is_null()) {
                return Ok(());
            }
            dest.put_mapping_meta(index, &Value::Object(meta.clone()))
                .await?;
            let after = dest.describe_index(index).await?;
            if meta_of(&after.mappings)
                .and_then(|m| m.get(META_KEY))
                .is_none_or(Value::is_null)
            {
                return Ok(());
            }
            meta.insert(META_KEY.into(), Value::Null);
        }
    }
    dest.put_mapping_meta(index, &Value::Object(meta)).await
}

/// The recorded originals of an existing index.
pub fn originals_of(desc: &IndexDescription) -> OriginalSettings {
    let rec = |k: &str| {
        desc.setting(k)
            .map_or_else(RecordedSetting::unset, RecordedSetting::set)
    };
    OriginalSettings {
        number_of_replicas: rec("index.number_of_replicas"),
        refresh_interval: rec("index.refresh_interval"),
    }
}

/// The originals of an index about to be created from user `settings` (unset unless given).
pub fn originals_from_user(settings: Option<&Value>) -> OriginalSettings {
    let flat = settings.map(flatten).unwrap_or_default();
    let rec = |k: &str| {
        flat.get(&format!("index.{k}"))
            .or_else(|| flat.get(k))
            .filter(|v| !v.is_null())
            .map_or_else(RecordedSetting::unset, |v| {
                RecordedSetting::set(v.as_str().map_or_else(|| v.to_string(), str::to_string))
            })
    };
    OriginalSettings {
        number_of_replicas: rec("number_of_replicas"),
        refresh_interval: rec("refresh_interval"),
    }
}

/// Settings for bulk loading.
pub fn tuned_settings() -> Value {
    json!({ "index": { "refresh_interval": "-1", "number_of_replicas": 0 } })
}

/// Restores recorded settings (unset keys reset to `null`, the cluster default) and removes the
/// marker. Used after a copy, after a failure, on Ctrl-C and on deletion.
pub async fn restore_destination(
    dest: &SearchClient,
    index: &str,
    originals: &OriginalSettings,
) -> Result<(), WorkflowError> {
    let mut replicas = originals.number_of_replicas.restore_value();
    if replicas.is_null() && dest.mapping_type().is_some() {
        // Elasticsearch 6.x (the typed clusters) refuses `null` here ("must specify
        // numberOfReplicas"): send the setting's default, which is what `null` restores on 7.x+.
        replicas = json!("1");
    }
    let body = json!({ "index": {
        "number_of_replicas": replicas,
        "refresh_interval": originals.refresh_interval.restore_value(),
    }});
    if dest.is_serverless() {
        // Nothing was tuned: OpenSearch Serverless manages replicas and refresh.
        return Ok(());
    }
    let during = "restoring the destination's settings";
    dest.put_settings(index, &body)
        .await
        .map_err(|source| WorkflowError::Destination { during, source })?;
    if let Err(e) = write_marker(dest, index, None).await {
        tracing::warn!(index, error = %e, "could not remove the remote_reindex marker from the destination's _meta");
    }
    Ok(())
}

/// The body that creates the destination: the user's settings and mappings, or the source's
/// mappings and copyable settings; tuned for loading from the start.
pub fn create_body(
    user_settings: Option<&Value>,
    user_mappings: Option<&Value>,
    source: &IndexDescription,
    shards_override: Option<u32>,
) -> Value {
    let mut settings = match user_settings {
        Some(s) => {
            let mut flat = flatten(s);
            // The reference promises the source's shard count when the user gives none.
            let given = flat.contains_key("index.number_of_shards");
            if !given && let Some(n) = source.settings.get("index.number_of_shards") {
                flat.insert("index.number_of_shards".into(), n.clone());
            }
            nest(&flat)
        }
        None => nest(&copyable_source_settings(&source.settings)),
    };
    if let Some(n) = shards_override {
        settings["index"]["number_of_shards"] = json!(n);
    }
    let index = settings
        .as_object_mut()
        .expect("nested settings are an object")
        .entry("index")
        .or_insert_with(|| json!({}));
    index["refresh_interval"] = json!("-1");
    index["number_of_replicas"] = json!(0);
    let mappings = match user_mappings {
        Some(m) => m.clone(),
        None => untyped_mappings(&source.mappings),
    };
    let mut body = json!({ "settings": settings });
    if mappings.as_object().is_some_and(|m| !m.is_empty()) {
        body["mappings"] = mappings;
    }
    body
}

/// Source settings worth carrying over: shard count, analysis, similarity and mapping limits.
fn copyable_source_settings(flat: &Map<String, Value>) -> Map<String, Value> {
    const PREFIXES: [&str; 7] = [
        "index.number_of_shards",
        "index.analysis.",
        "index.similarity.",
        "index.mapping.total_fields.limit",
        "index.mapping.nested_fields.limit",
        "index.mapping.depth.limit",
        "index.max_ngram_diff",
    ];
    flat.iter()
        .filter(|(k, _)| PREFIXES.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Elasticsearch 5.x/6.x mappings are keyed by type; 7+ are not. Unwraps a single type.
fn untyped_mappings(m: &Value) -> Value {
    if let Some(obj) = m.as_object()
        && obj.len() == 1
        && !obj.contains_key("properties")
    {
        let (k, inner) = obj.iter().next().expect("one entry");
        // A mapping type: `_doc` (Elasticsearch 6.x's default) or a name without `_` (5.x).
        if (k == "_doc" || !k.starts_with('_'))
            && k != "dynamic"
            && inner.get("properties").is_some()
        {
            return inner.clone();
        }
    }
    m.clone()
}

/// `{"index": {"a": 1}}` → `{"index.a": 1}`; already-flat keys pass through. Arrays are values.
pub fn flatten(v: &Value) -> Map<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = Map::new();
    walk("", v, &mut out);
    // Keys given without the `index.` prefix mean index settings.
    out.into_iter()
        .map(|(k, v)| {
            if k.starts_with("index.") {
                (k, v)
            } else {
                (format!("index.{k}"), v)
            }
        })
        .collect()
}

/// The inverse of [`flatten`].
pub fn nest(flat: &Map<String, Value>) -> Value {
    let mut root = Map::new();
    for (k, v) in flat {
        let mut cur = &mut root;
        let mut parts = k.split('.').peekable();
        while let Some(p) = parts.next() {
            if parts.peek().is_none() {
                cur.insert(p.to_string(), v.clone());
            } else {
                let e = cur
                    .entry(p.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !e.is_object() {
                    *e = Value::Object(Map::new());
                }
                cur = e.as_object_mut().expect("just made an object");
            }
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_mappings_of_elasticsearch_5_and_6_lose_their_type() {
        let props = json!({"dynamic": false, "properties": {"n": {"type": "long"}}});
        assert_eq!(untyped_mappings(&json!({"_doc": props})), props);
        assert_eq!(untyped_mappings(&json!({"doc": props})), props);
        let meta = json!({"_meta": {"properties": {}}});
        assert_eq!(untyped_mappings(&meta), meta);
    }

    #[test]
    fn user_settings_define_the_originals() {
        let o = originals_from_user(Some(
            &json!({"number_of_replicas": 2, "index": {"number_of_shards": 3}}),
        ));
        assert_eq!(o.number_of_replicas, RecordedSetting::set("2"));
        assert_eq!(o.refresh_interval, RecordedSetting::unset());
        assert_eq!(
            originals_from_user(None).number_of_replicas.restore_value(),
            Value::Null
        );
    }

    #[test]
    fn create_body_copies_source_shards_and_analysis_and_tunes() {
        let mut settings = Map::new();
        settings.insert("index.number_of_shards".into(), json!("3"));
        settings.insert("index.uuid".into(), json!("abc"));
        settings.insert("index.analysis.analyzer.a.type".into(), json!("standard"));
        let src = IndexDescription {
            name: "s".into(),
            settings,
            mappings: json!({"doc": {"properties": {"x": {"type": "keyword"}}}}),
        };
        let body = create_body(None, None, &src, None);
        assert_eq!(body["settings"]["index"]["number_of_shards"], json!("3"));
        assert_eq!(
            body["settings"]["index"]["analysis"]["analyzer"]["a"]["type"],
            json!("standard")
        );
        assert!(body["settings"]["index"].get("uuid").is_none());
        assert_eq!(body["settings"]["index"]["refresh_interval"], json!("-1"));
        assert_eq!(
            body["mappings"],
            json!({"properties": {"x": {"type": "keyword"}}})
        );
    }

    #[test]
    fn user_settings_without_a_shard_count_keep_the_source_shard_count() {
        let mut settings = Map::new();
        settings.insert("index.number_of_shards".into(), json!("4"));
        let src = IndexDescription {
            name: "s".into(),
            settings,
            mappings: json!({}),
        };
        let body = create_body(Some(&json!({"number_of_replicas": 2})), None, &src, None);
        assert_eq!(body["settings"]["index"]["number_of_shards"], json!("4"));
        let body = create_body(
            Some(&json!({"index": {"number_of_shards": 2}})),
            None,
            &src,
            None,
        );
        assert_eq!(body["settings"]["index"]["number_of_shards"], json!(2));
    }
}
