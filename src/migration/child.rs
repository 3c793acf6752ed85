//! The `RemoteReindex` child of one index: its stable name, labels and spec.

use crate::api::{ChildTemplate, Migration, MigrationSpec, RemoteReindexSpec};
use serde_json::{Value, json};

/// Label on every child: the owning Migration's name (hashed when longer than a label allows).
pub const MIGRATION_LABEL: &str = "reindex.dev/migration";
/// Annotation on every child: the source index it copies.
pub const INDEX_ANNOTATION: &str = "reindex.dev/source-index";

/// 64-bit FNV-1a: a stable hash for names (not for security).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// `s` as a DNS-1123 label of at most `max` characters: lowercase alphanumerics and `-`. When
/// anything had to change or be cut, a hash of the original keeps names distinct.
fn dns_label(s: &str, max: usize) -> String {
    let mut clean: String = s
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let changed = clean != s || clean.len() > max;
    if changed {
        let hash = format!("{:08x}", fnv(s) as u32);
        clean.truncate(max - hash.len() - 1);
        clean = format!("{}-{hash}", clean.trim_end_matches('-'));
    }
    let t = clean.trim_matches('-').to_string();
    if t.is_empty() {
        format!("x{:08x}", fnv(s) as u32)
    } else {
        t
    }
}

/// The child's name: `<migration>-<index>`, a valid label of at most 63 characters, hashed
/// when the index name needs changes to fit (upper case, `_`, `.`, length).
pub fn child_name(migration: &str, index: &str) -> String {
    dns_label(&format!("{migration}-{index}"), 63)
}

/// The value of [`MIGRATION_LABEL`] for a Migration.
pub fn label_value(migration: &str) -> String {
    dns_label(migration, 63)
}

/// Deep-merges `over` into `base` (objects field by field; anything else replaced).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// The template for `index`: `spec.template` with every matching override merged over it, in
/// order.
pub fn template_for(spec: &MigrationSpec, index: &str) -> ChildTemplate {
    let mut t = serde_json::to_value(spec.template.clone().unwrap_or_default()).unwrap_or_default();
    for o in spec
        .overrides
        .iter()
        .filter(|o| super::resolve::glob(&o.index, index))
    {
        merge(
            &mut t,
            &serde_json::to_value(&o.template).unwrap_or_default(),
        );
    }
    serde_json::from_value(t).unwrap_or_default()
}

/// The child spec that copies `index` to `dest_index`.
pub fn child_spec(spec: &MigrationSpec, index: &str, dest_index: &str) -> RemoteReindexSpec {
    let t = serde_json::to_value(template_for(spec, index)).unwrap_or_default();
    let mut v = json!({
        "source": {"remote": spec.source.remote, "index": index},
        "dest": {"index": dest_index},
    });
    if let Some(d) = &spec.dest.remote {
        v["dest"]["remote"] = json!(d);
    }
    for part in ["source", "dest"] {
        if let Some(o) = t.get(part) {
            merge(&mut v[part], o);
        }
    }
    if let Some(o) = t.as_object() {
        for (k, val) in o.iter().filter(|(k, _)| *k != "source" && *k != "dest") {
            v[k] = val.clone();
        }
    }
    if let Some(c) = &spec.cutover {
        v["cutover"] = json!(c.child());
    }
    serde_json::from_value(v).expect("a template's fields are RemoteReindex fields")
}

/// The child object for `index` owned by `mig`.
pub fn child_object(mig: &Migration, index: &str, dest_index: &str) -> crate::api::RemoteReindex {
    use kube::{Resource, ResourceExt};
    let name = mig.name_any();
    let mut child = crate::api::RemoteReindex::new(
        &child_name(&name, index),
        child_spec(&mig.spec, index, dest_index),
    );
    child.metadata.namespace = mig.namespace();
    child.metadata.labels = Some([(MIGRATION_LABEL.to_string(), label_value(&name))].into());
    child.metadata.annotations = Some([(INDEX_ANNOTATION.to_string(), index.to_string())].into());
    child.metadata.owner_references = mig.controller_owner_ref(&()).map(|o| vec![o]);
    child
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Conflicts, IndexOverride, SourceOptions};

    fn spec() -> MigrationSpec {
        serde_json::from_value(json!({
            "source": {"remote": {"host": "http://old:9200"}},
            "indices": ["logs-*"],
            "template": {"source": {"size": 500, "slices": 2}, "conflicts": "proceed", "requestsPerSecond": 100},
        }))
        .unwrap()
    }

    #[test]
    fn names_are_stable_valid_and_hashed_when_needed() {
        assert_eq!(child_name("mig", "logs-2024-01"), "mig-logs-2024-01");
        let a = child_name("mig", "Logs_2024.01");
        assert_eq!(a, child_name("mig", "Logs_2024.01"), "stable");
        assert_ne!(
            a,
            child_name("mig", "logs-2024-01"),
            "distinct from the clean name"
        );
        assert!(a.starts_with("mig-logs-2024-01-"), "{a}");
        let long = child_name("migration", &"x".repeat(300));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, child_name("migration", &"x".repeat(301)));
        for n in [a, long] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
        }
    }

    #[test]
    fn child_spec_applies_template_then_overrides() {
        let mut s = spec();
        s.overrides.push(IndexOverride {
            index: "logs-big*".into(),
            template: ChildTemplate {
                source: Some(SourceOptions {
                    size: Some(100),
                    ..Default::default()
                }),
                ..Default::default()
            },
        });
        let c = child_spec(&s, "logs-1", "new-logs-1");
        assert_eq!(
            (c.source.index.as_str(), c.dest.index.as_str()),
            ("logs-1", "new-logs-1")
        );
        assert_eq!(c.source.size, Some(500));
        assert_eq!(c.conflicts, Some(Conflicts::Proceed));
        assert_eq!(c.requests_per_second, Some(100.0));
        let big = child_spec(&s, "logs-big-1", "logs-big-1");
        assert_eq!(big.source.size, Some(100), "override wins");
        assert_eq!(
            big.source.slices, c.source.slices,
            "the rest of the template stays"
        );
        assert_eq!(big.source.remote.host, "http://old:9200");
        assert!(big.dest.remote.is_none(), "defaults to --dest-host");
    }
}
