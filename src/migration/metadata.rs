//! Templates and aliases: which of the source's a Migration copies, cleaned for the destination,
//! and the calls that create them. Templates go before any data (component, then composable,
//! then legacy); an alias goes only once every index it spans has verified.

use super::checks::setting_rejected;
use super::resolve::glob;
use crate::policy::{DestName, DestNameKind};
use crate::search::{ClusterInfo, SearchClient, SearchError};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The three kinds of templates, in the order they are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TemplateKind {
    /// `_component_template`.
    Component,
    /// `_index_template` (composable).
    Composable,
    /// `_template` (legacy).
    Legacy,
}

impl TemplateKind {
    /// `component`, `composable` or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Component => "component",
            TemplateKind::Composable => "composable",
            TemplateKind::Legacy => "legacy",
        }
    }

    fn path(self, name: &str) -> String {
        let api = match self {
            TemplateKind::Component => "_component_template",
            TemplateKind::Composable => "_index_template",
            TemplateKind::Legacy => "_template",
        };
        format!("{api}/{}", name.replace('%', "%25"))
    }
}

/// A source template to copy, cleaned for the destination.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateCopy {
    /// Its kind.
    pub kind: TemplateKind,
    /// Its name.
    pub name: String,
    /// The body to PUT on the destination (without aliases: see [`TemplateCopy::aliases`]).
    pub body: Value,
    /// The template's own aliases, added to it after the Migration's indices are verified so
    /// that no alias lands on an unverified copy.
    pub aliases: Option<Value>,
    /// Index patterns (composable and legacy).
    pub patterns: Vec<String>,
    /// Composable priority.
    pub priority: i64,
    /// Settings dropped because the destination rejects them.
    pub dropped: Vec<String>,
    /// Why it cannot be copied, found before writing anything.
    pub refused: Option<String>,
}

/// The names a Migration writes on the destination besides its children's indices: the
/// index patterns and aliases of the `templates` it copies (those not refused) and the
/// `aliases` it creates, each with the spec field that makes it copy them. The operator checks
/// them against the namespace's policy before anything is written.
pub fn dest_names(templates: &[TemplateCopy], aliases: &[String]) -> Vec<DestName> {
    let mut out = Vec::new();
    for t in templates.iter().filter(|t| t.refused.is_none()) {
        let field = "spec.metadata.templates";
        for p in &t.patterns {
            out.push(DestName::new(
                field,
                DestNameKind::TemplatePattern(t.name.clone()),
                p.clone(),
            ));
        }
        for a in t
            .aliases
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|o| o.keys())
        {
            out.push(DestName::new(
                field,
                DestNameKind::TemplateAlias(t.name.clone()),
                a.clone(),
            ));
        }
    }
    for a in aliases {
        out.push(DestName::new(
            "spec.metadata.aliases",
            DestNameKind::Alias,
            a.clone(),
        ));
    }
    out
}

/// Everything templates-related the source has for the copied indices.
#[derive(Clone, Debug, Default)]
pub struct TemplatePlan {
    /// Templates to copy, in creation order.
    pub copies: Vec<TemplateCopy>,
    /// Matching templates left out on purpose (engine-managed, data streams), with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Built-in template names the engines manage themselves.
const BUILT_IN: [&str; 8] = [
    "logs",
    "metrics",
    "synthetics",
    "ilm-history",
    "slm-history",
    "watch-history",
    "logs-mappings",
    "metrics-mappings",
];

/// Why a template is engine-managed, if it is.
fn managed(name: &str, body: &Value) -> Option<&'static str> {
    if name.starts_with('.') {
        Some("`.`-named: engine-managed")
    } else if body["_meta"]["managed"] == json!(true) {
        Some("`_meta.managed: true`: engine-managed")
    } else if BUILT_IN.contains(&name) || name.contains('@') || name.contains("monitoring") {
        Some("built-in template: engine-managed")
    } else {
        None
    }
}

/// `{"_doc": {"properties": …}}` (6.x typed mappings) → `{"properties": …}`.
pub fn untyped(m: &Value) -> Value {
    if let Some(obj) = m.as_object()
        && obj.len() == 1
        && !obj.contains_key("properties")
        && let Some((k, inner)) = obj.iter().next()
        && (k == "_doc" || !k.starts_with('_'))
        && k != "dynamic"
        && inner.is_object()
        && (inner.get("properties").is_some() || inner.get("dynamic").is_some())
    {
        return inner.clone();
    }
    m.clone()
}

/// Settings without those the destination rejects; returns the dropped keys.
fn clean_settings(settings: &Value, dest: &ClusterInfo) -> (Value, Vec<String>) {
    let flat = crate::workflow::flatten_settings(settings);
    let (keep, drop): (Map<String, Value>, Map<String, Value>) = flat
        .into_iter()
        .partition(|(k, _)| !setting_rejected(k, dest));
    (
        crate::workflow::nest_settings(&keep),
        drop.keys().cloned().collect(),
    )
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn matches_any(patterns: &[String], indices: &[String]) -> bool {
    patterns.iter().any(|p| indices.iter().any(|i| glob(p, i)))
}

/// Chooses and cleans the templates for `indices` from the source's three listings (the
/// responses of `GET _component_template`, `GET _index_template` and `GET _template`; `Null`
/// where the source lacks the API).
pub fn plan_templates(
    components: &Value,
    composables: &Value,
    legacy: &Value,
    indices: &[String],
    dest: &ClusterInfo,
) -> TemplatePlan {
    let mut plan = TemplatePlan::default();
    let mut needed_components = BTreeSet::new();
    let mut composable_copies = Vec::new();
    for t in composables["index_templates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = t["name"].as_str().unwrap_or_default().to_string();
        let body = &t["index_template"];
        let patterns = strings(&body["index_patterns"]);
        if !matches_any(&patterns, indices) {
            continue;
        }
        if let Some(why) = managed(&name, body) {
            plan.skipped.push((name, why.into()));
            continue;
        }
        if body.get("data_stream").is_some_and(|d| !d.is_null()) {
            plan.skipped.push((
                name,
                "a data stream template (DataStreamNotSupported)".into(),
            ));
            continue;
        }
        let mut b = without_nulls(body);
        let (aliases, dropped) = clean_inner_template(&mut b, dest);
        needed_components.extend(strings(&body["composed_of"]));
        composable_copies.push(TemplateCopy {
            kind: TemplateKind::Composable,
            name,
            priority: body["priority"].as_i64().unwrap_or(0),
            body: b,
            aliases,
            patterns,
            dropped,
            refused: None,
        });
    }
    for t in components["component_templates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = t["name"].as_str().unwrap_or_default().to_string();
        if !needed_components.contains(&name) {
            continue;
        }
        let mut b = without_nulls(&t["component_template"]);
        let (aliases, dropped) = clean_inner_template(&mut b, dest);
        plan.copies.push(TemplateCopy {
            kind: TemplateKind::Component,
            name,
            body: b,
            aliases,
            patterns: Vec::new(),
            priority: 0,
            dropped,
            refused: None,
        });
    }
    plan.copies.extend(composable_copies);
    for (name, body) in legacy.as_object().into_iter().flatten() {
        // 5.x names the pattern `template`.
        let mut patterns = strings(&body["index_patterns"]);
        if patterns.is_empty() {
            patterns = strings(&body["template"]);
        }
        if !matches_any(&patterns, indices) {
            continue;
        }
        if let Some(why) = managed(name, body) {
            plan.skipped.push((name.clone(), why.into()));
            continue;
        }
        let mut b =
            json!({"index_patterns": patterns, "order": body["order"].as_i64().unwrap_or(0)});
        if let Some(v) = body.get("version").filter(|v| !v.is_null()) {
            b["version"] = v.clone();
        }
        let (settings, dropped) = clean_settings(&body["settings"], dest);
        if settings.as_object().is_some_and(|o| !o.is_empty()) {
            b["settings"] = settings;
        }
        let mappings = untyped(&body["mappings"]);
        if mappings.as_object().is_some_and(|o| !o.is_empty()) {
            b["mappings"] = mappings;
        }
        let aliases = body["aliases"]
            .as_object()
            .filter(|a| !a.is_empty())
            .map(|a| Value::Object(a.clone()));
        plan.copies.push(TemplateCopy {
            kind: TemplateKind::Legacy,
            name: name.clone(),
            priority: body["order"].as_i64().unwrap_or(0),
            body: b,
            aliases,
            patterns,
            dropped,
            refused: None,
        });
    }
    plan
}

/// A template body without its `null` fields (engines answer `"template": null` or omit the
/// key, and refuse a `null` on the way in).
fn without_nulls(body: &Value) -> Value {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    b
}

/// Cleans the `template` block of a composable/component template body in place: settings the
/// destination rejects dropped, typed mappings untyped, aliases taken out (returned). A body
/// without a `template` block is left as it is.
fn clean_inner_template(body: &mut Value, dest: &ClusterInfo) -> (Option<Value>, Vec<String>) {
    let Some(obj) = body.get_mut("template").and_then(Value::as_object_mut) else {
        return (None, Vec::new());
    };
    let aliases = obj
        .remove("aliases")
        .filter(|a| a.as_object().is_some_and(|o| !o.is_empty()));
    let mut dropped = Vec::new();
    if let Some(s) = obj.get("settings") {
        let (keep, d) = clean_settings(s, dest);
        dropped = d;
        if keep.as_object().is_some_and(|o| o.is_empty()) {
            obj.remove("settings");
        } else {
            obj.insert("settings".into(), keep);
        }
    }
    if let Some(m) = obj.get("mappings") {
        let m = untyped(m);
        obj.insert("mappings".into(), m);
    }
    (aliases, dropped)
}

/// Marks the templates that clash with the destination: the name exists there, or a composable
/// template of equal priority has an overlapping pattern. Reads only.
pub async fn check_destination(
    plan: &mut TemplatePlan,
    dest: &SearchClient,
) -> Result<(), SearchError> {
    let dest_composables = dest
        .get_json_opt("_index_template")
        .await?
        .unwrap_or(Value::Null);
    let mut existing: BTreeMap<TemplateKind, BTreeSet<String>> = BTreeMap::new();
    for (kind, path, key) in [
        (
            TemplateKind::Component,
            "_component_template",
            Some(("component_templates", "name")),
        ),
        (
            TemplateKind::Composable,
            "",
            Some(("index_templates", "name")),
        ),
        (TemplateKind::Legacy, "_template", None),
    ] {
        let v = if kind == TemplateKind::Composable {
            dest_composables.clone()
        } else {
            dest.get_json_opt(path).await?.unwrap_or(Value::Null)
        };
        let names: BTreeSet<String> = match key {
            Some((list, field)) => v[list]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t[field].as_str().map(str::to_string))
                .collect(),
            None => v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect(),
        };
        existing.insert(kind, names);
    }
    for c in &mut plan.copies {
        if existing.get(&c.kind).is_some_and(|n| n.contains(&c.name)) {
            c.refused = Some(format!(
                "a {} template named `{}` exists on the destination",
                c.kind.as_str(),
                c.name
            ));
            continue;
        }
        if c.kind != TemplateKind::Composable {
            continue;
        }
        let overlap = dest_composables["index_templates"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["index_template"]["priority"].as_i64().unwrap_or(0) == c.priority
                    && strings(&t["index_template"]["index_patterns"])
                        .iter()
                        .any(|p| c.patterns.iter().any(|q| glob(p, q) || glob(q, p)))
            });
        if let Some(t) = overlap {
            c.refused = Some(format!(
                "the destination's composable template `{}` has the same priority ({}) and an overlapping pattern",
                t["name"].as_str().unwrap_or_default(),
                c.priority
            ));
        }
    }
    // A composable template needs its components.
    let failed_components: BTreeSet<String> = plan
        .copies
        .iter()
        .filter(|c| c.kind == TemplateKind::Component && c.refused.is_some())
        .map(|c| c.name.clone())
        .collect();
    for c in plan
        .copies
        .iter_mut()
        .filter(|c| c.kind == TemplateKind::Composable && c.refused.is_none())
    {
        let missing: Vec<String> = strings(&c.body["composed_of"])
            .into_iter()
            .filter(|n| failed_components.contains(n))
            .collect();
        if !missing.is_empty() {
            c.refused = Some(format!(
                "its component template(s) {} could not be copied",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

/// Reads the source's templates and plans those matching `indices`, checked against the
/// destination.
pub async fn read_templates(
    source: &SearchClient,
    dest: &SearchClient,
    indices: &[String],
    dest_info: &ClusterInfo,
) -> Result<TemplatePlan, SearchError> {
    let components = source
        .get_json_opt("_component_template")
        .await?
        .unwrap_or(Value::Null);
    let composables = source
        .get_json_opt("_index_template")
        .await?
        .unwrap_or(Value::Null);
    let legacy = source
        .get_json_opt("_template")
        .await?
        .unwrap_or(Value::Null);
    let mut plan = plan_templates(&components, &composables, &legacy, indices, dest_info);
    check_destination(&mut plan, dest).await?;
    Ok(plan)
}

/// Creates one template on the destination; with `with_aliases`, the template's own aliases are
/// included (the second pass, after the data is verified).
pub async fn put_template(
    dest: &SearchClient,
    t: &TemplateCopy,
    with_aliases: bool,
) -> Result<(), SearchError> {
    let mut body = t.body.clone();
    if with_aliases && let Some(a) = &t.aliases {
        match t.kind {
            TemplateKind::Legacy => body["aliases"] = a.clone(),
            _ => body["template"]["aliases"] = a.clone(),
        }
    }
    dest.put_json(&t.kind.path(&t.name), &body).await
}

/// One alias of the copied indices: its name and, per source index, its properties.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasCopy {
    /// The alias name.
    pub name: String,
    /// Source index → alias properties (`filter`, `index_routing`, `search_routing`,
    /// `is_write_index`, `is_hidden`).
    pub indices: BTreeMap<String, Value>,
}

impl AliasCopy {
    /// `filter`, `routing`, `write` as they apply, for tables.
    pub fn traits(&self) -> Vec<&'static str> {
        let mut t = BTreeSet::new();
        for p in self.indices.values() {
            if p.get("filter").is_some() {
                t.insert("filter");
            }
            if p.get("index_routing").is_some()
                || p.get("search_routing").is_some()
                || p.get("routing").is_some()
            {
                t.insert("routing");
            }
            if p["is_write_index"] == json!(true) {
                t.insert("write");
            }
        }
        t.into_iter().collect()
    }
}

/// The aliases of `indices` from `GET _alias` (`{index: {aliases: {name: props}}}`).
pub fn plan_aliases(all: &Value, indices: &[String]) -> Vec<AliasCopy> {
    let mut by_name: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for index in indices {
        for (alias, props) in all[index]["aliases"].as_object().into_iter().flatten() {
            by_name
                .entry(alias.clone())
                .or_default()
                .insert(index.clone(), props.clone());
        }
    }
    by_name
        .into_iter()
        .map(|(name, indices)| AliasCopy { name, indices })
        .collect()
}

/// Reads the aliases of `indices` from the source.
pub async fn read_aliases(
    source: &SearchClient,
    indices: &[String],
) -> Result<Vec<AliasCopy>, SearchError> {
    let all = source.get_json_opt("_alias").await?.unwrap_or(Value::Null);
    Ok(plan_aliases(&all, indices))
}

/// Creates `alias` on the destination in one atomic `_aliases` call over the destination names
/// of its indices (`dest_of` maps a source index to its destination index).
pub async fn create_alias(
    dest: &SearchClient,
    alias: &AliasCopy,
    dest_of: impl Fn(&str) -> String,
) -> Result<(), SearchError> {
    let actions: Vec<Value> = alias
        .indices
        .iter()
        .map(|(index, props)| {
            let mut add = json!({"index": dest_of(index), "alias": alias.name});
            for k in [
                "filter",
                "index_routing",
                "search_routing",
                "routing",
                "is_write_index",
                "is_hidden",
            ] {
                if let Some(v) = props.get(k).filter(|v| !v.is_null()) {
                    add[k] = v.clone();
                }
            }
            json!({"add": add})
        })
        .collect();
    dest.post_json("_aliases", &json!({"actions": actions}))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_names_list_template_patterns_and_aliases_and_the_copied_aliases() {
        let t =
            |name: &str, patterns: &[&str], aliases: Value, refused: Option<&str>| TemplateCopy {
                kind: TemplateKind::Composable,
                name: name.into(),
                body: json!({}),
                aliases: Some(aliases).filter(|a| !a.is_null()),
                patterns: patterns.iter().map(|p| p.to_string()).collect(),
                priority: 0,
                dropped: Vec::new(),
                refused: refused.map(str::to_string),
            };
        let names = dest_names(
            &[
                t("logs", &["logs-*", "*"], json!({"all-logs": {}}), None),
                t(
                    "clash",
                    &["x-*"],
                    Value::Null,
                    Some("exists on the destination"),
                ),
            ],
            &["live".to_string()],
        );
        let shown: Vec<(&str, &DestNameKind, &str)> = names
            .iter()
            .map(|n| (n.field.as_str(), &n.kind, n.name.as_str()))
            .collect();
        let pattern = DestNameKind::TemplatePattern("logs".into());
        let talias = DestNameKind::TemplateAlias("logs".into());
        assert_eq!(
            shown,
            [
                ("spec.metadata.templates", &pattern, "logs-*"),
                ("spec.metadata.templates", &pattern, "*"),
                ("spec.metadata.templates", &talias, "all-logs"),
                ("spec.metadata.aliases", &DestNameKind::Alias, "live"),
            ],
            "a refused template is not written, so not checked"
        );
    }
    use crate::search::{Distribution, Version};

    fn os() -> ClusterInfo {
        ClusterInfo {
            distribution: Distribution::OpenSearch,
            version: Version {
                major: 2,
                minor: 19,
                patch: 0,
            },
        }
    }

    #[test]
    fn chooses_matching_templates_in_order_and_cleans_them() {
        let components = json!({"component_templates": [
            {"name": "ct-logs", "component_template": {"template": {"settings": {"index": {"lifecycle": {"name": "p"}, "number_of_shards": "2"}}}}},
            {"name": "unused", "component_template": {"template": {}}},
        ]});
        let composables = json!({"index_templates": [
            {"name": "logs-t", "index_template": {"index_patterns": ["logs-*"], "priority": 5, "composed_of": ["ct-logs"], "template": {"aliases": {"all-logs": {}}}}},
            {"name": "logs", "index_template": {"index_patterns": ["logs-*"], "priority": 100, "data_stream": {}}},
            {"name": "other", "index_template": {"index_patterns": ["other-*"], "priority": 1}},
            {"name": "managed", "index_template": {"index_patterns": ["logs-*"], "_meta": {"managed": true}}},
        ]});
        let legacy = json!({
            "orders-t": {"order": 1, "index_patterns": ["orders*"], "settings": {"index": {"routing": {"allocation": {"include": {"_tier_preference": "data_hot"}}}}}, "mappings": {"_doc": {"properties": {"n": {"type": "long"}}}}, "aliases": {}},
            ".monitoring-es": {"order": 0, "index_patterns": [".monitoring-es-*"]},
        });
        let p = plan_templates(
            &components,
            &composables,
            &legacy,
            &["logs-1".into(), "orders".into()],
            &os(),
        );
        let got: Vec<_> = p.copies.iter().map(|c| (c.kind, c.name.as_str())).collect();
        assert_eq!(
            got,
            [
                (TemplateKind::Component, "ct-logs"),
                (TemplateKind::Composable, "logs-t"),
                (TemplateKind::Legacy, "orders-t")
            ]
        );
        assert_eq!(p.copies[0].dropped, ["index.lifecycle.name"]);
        assert_eq!(
            p.copies[0].body["template"]["settings"]["index"]["number_of_shards"],
            "2"
        );
        assert_eq!(
            p.copies[1].aliases,
            Some(json!({"all-logs": {}})),
            "aliases deferred"
        );
        assert!(p.copies[1].body["template"].get("aliases").is_none());
        assert_eq!(
            p.copies[2].body["mappings"],
            json!({"properties": {"n": {"type": "long"}}}),
            "6.x type dropped"
        );
        assert_eq!(
            p.copies[2].dropped,
            ["index.routing.allocation.include._tier_preference"]
        );
        let skipped: Vec<_> = p.skipped.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(skipped, ["logs", "managed"]);
        // Elasticsearch 7.17 omits `template` when a composable template has only components.
        let bare = json!({"index_templates": [{"name": "bare", "index_template": {"index_patterns": ["logs-*"], "composed_of": [], "version": null}}]});
        let p = plan_templates(&Value::Null, &bare, &Value::Null, &["logs-1".into()], &os());
        assert_eq!(
            p.copies[0].body,
            json!({"index_patterns": ["logs-*"], "composed_of": []}),
            "no nulls sent"
        );
    }

    #[test]
    fn aliases_group_by_name_over_the_copied_indices() {
        let all = json!({
            "a": {"aliases": {"both": {}, "f": {"filter": {"term": {"x": 1}}}}},
            "b": {"aliases": {"both": {"is_write_index": true}, "r": {"index_routing": "1", "search_routing": "1"}}},
            "c": {"aliases": {"both": {}}},
        });
        let a = plan_aliases(&all, &["a".into(), "b".into()]);
        let names: Vec<_> = a.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["both", "f", "r"]);
        assert_eq!(a[0].indices.len(), 2, "c is not copied");
        assert_eq!(a[0].traits(), ["write"]);
        assert_eq!(a[1].traits(), ["filter"]);
        assert_eq!(a[2].traits(), ["routing"]);
    }
}

/// Where an alias stands, given the states of the indices it spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasReadiness {
    /// Every index verified: create it.
    Ready,
    /// Some index has not finished.
    Waiting,
    /// Some index failed: never created (`AliasIncomplete`), with the failed indices.
    Incomplete(Vec<String>),
}

/// The readiness of `alias` given each source index's state.
pub fn alias_readiness(
    alias: &AliasCopy,
    state: impl Fn(&str) -> crate::api::IndexState,
) -> AliasReadiness {
    use crate::api::IndexState;
    let failed: Vec<String> = alias
        .indices
        .keys()
        .filter(|i| state(i) == IndexState::Failed)
        .cloned()
        .collect();
    if !failed.is_empty() {
        AliasReadiness::Incomplete(failed)
    } else if alias
        .indices
        .keys()
        .all(|i| state(i) == IndexState::Succeeded)
    {
        AliasReadiness::Ready
    } else {
        AliasReadiness::Waiting
    }
}

/// Creates the templates of `plan` that are not refused, in order (first pass: without their
/// aliases). Returns one status item per template.
pub async fn create_templates(
    dest: &SearchClient,
    plan: &TemplatePlan,
) -> Vec<crate::api::MetadataItem> {
    let mut out = Vec::new();
    for t in &plan.copies {
        let (state, message) = match &t.refused {
            Some(r) => ("Failed", Some(r.clone())),
            None => match put_template(dest, t, false).await {
                Ok(()) if t.dropped.is_empty() => ("Created", None),
                Ok(()) => (
                    "Created",
                    Some(format!(
                        "dropped settings the destination rejects: {}",
                        t.dropped.join(", ")
                    )),
                ),
                Err(e) => ("Failed", Some(e.to_string())),
            },
        };
        out.push(crate::api::MetadataItem {
            kind: t.kind.as_str().into(),
            name: t.name.clone(),
            state: state.into(),
            message,
            indices: Vec::new(),
        });
    }
    out
}
