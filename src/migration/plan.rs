//! The plan of a Migration: the resolved indices with their size, destination and child, the
//! templates and aliases to copy, what the destination will reject, the scroll-context bound and
//! what is not migrated. Built by reading both clusters only; `remote-reindex plan` prints it
//! and a Migration's start acts on it.

use super::checks::{self, bound_parallelism, contexts};
use super::child::{child_name, template_for};
use super::metadata::{self, AliasCopy, TemplatePlan};
use super::resolve::{Refused, SourceIndex, resolve};
use crate::api::MigrationSpec;
use crate::search::SearchError;
use crate::workflow::{Connected, SecretSource, Settings, WorkflowError, connect};
use serde::Serialize;

/// One index to copy.
#[derive(Clone, Debug, Serialize)]
pub struct PlanRow {
    /// The source index.
    pub index: String,
    /// Documents.
    pub docs: u64,
    /// Primary store size in bytes.
    pub bytes: u64,
    /// Primary shards.
    pub shards: u32,
    /// The destination index.
    pub dest: String,
    /// The child `RemoteReindex`.
    pub child: String,
    /// Templates that match this index.
    pub templates: Vec<String>,
    /// Aliases of this index.
    pub aliases: Vec<String>,
    /// What the destination will reject or what is not carried over.
    pub flags: Vec<String>,
    /// Scroll contexts its child opens.
    pub contexts: u64,
}

/// A template in the plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlanTemplate {
    /// `component`, `composable` or `legacy`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Dropped settings.
    pub dropped: Vec<String>,
    /// Why it cannot be copied.
    pub refused: Option<String>,
}

/// An alias in the plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlanAlias {
    /// The alias.
    pub name: String,
    /// The destination indices it will span.
    pub indices: Vec<String>,
    /// `filter`, `routing`, `write`.
    pub traits: Vec<String>,
}

/// The plan.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Both ends, e.g. `Elasticsearch 7.17.29 → OpenSearch 2.19.4 (cross-distribution)`.
    pub clusters: String,
    /// Indices to copy, larger first.
    pub indices: Vec<PlanRow>,
    /// Matches not copied (closed, data streams) with the reason.
    pub not_copied: Vec<(String, crate::api::Reason, String)>,
    /// Names given explicitly that match nothing.
    pub missing: Vec<String>,
    /// Templates to copy, in order.
    pub templates: Vec<PlanTemplate>,
    /// Matching templates left out (engine-managed, data streams).
    pub templates_skipped: Vec<(String, String)>,
    /// Aliases to copy.
    pub aliases: Vec<PlanAlias>,
    /// What is not migrated: `(what, names)`.
    pub not_migrated: Vec<(String, String)>,
    /// The most scroll contexts open at once.
    pub peak_contexts: u64,
    /// The source's limit.
    pub context_limit: u64,
    /// The parallelism used.
    pub parallelism: usize,
    /// Destination indices that already exist, with their document count.
    pub dest_existing: Vec<(String, u64)>,
    /// The templates as they will be written (not printed).
    #[serde(skip)]
    pub template_copies: TemplatePlan,
    /// The aliases as they will be written (not printed).
    #[serde(skip)]
    pub alias_copies: Vec<AliasCopy>,
}

/// Connects to both clusters with the spec's endpoints (the same validation, Secrets, version
/// rule and pre-flight retries as a `RemoteReindex`).
pub async fn connect_migration<S: SecretSource>(
    spec: &MigrationSpec,
    secrets: &S,
    settings: &Settings,
) -> Result<Connected, WorkflowError> {
    let probe = super::child::child_spec(spec, "migration-probe", "migration-probe");
    connect(&probe, secrets, settings).await
}

/// Builds the plan of a Migration named `name` (reads only).
pub async fn build(
    conn: &Connected,
    spec: &MigrationSpec,
    name: &str,
) -> Result<Plan, SearchError> {
    let res = resolve(&conn.source, &spec.indices, &spec.exclude).await?;
    let names: Vec<String> = res.indices.iter().map(|i| i.name.clone()).collect();
    let template_copies = if spec.copy_templates() {
        metadata::read_templates(&conn.source, &conn.dest, &names, &conn.dest_info).await?
    } else {
        TemplatePlan::default()
    };
    let alias_copies = if spec.copy_aliases() {
        metadata::read_aliases(&conn.source, &names).await?
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    let mut dest_existing = Vec::new();
    for i in &res.indices {
        let dest = spec.dest_name(&i.name);
        let row = row(conn, spec, name, i, &dest, &template_copies, &alias_copies).await?;
        if conn.dest.index_exists(&dest).await? {
            let n = conn.dest.count(&dest, None).await.unwrap_or(0);
            dest_existing.push((dest.clone(), n));
        }
        rows.push(row);
    }
    let limit = checks::scroll_context_limit(&conn.source).await;
    let per: Vec<u64> = rows.iter().map(|r| r.contexts).collect();
    let (peak, parallelism) = bound_parallelism(&per, spec.parallelism(), limit);
    let aliases = alias_copies
        .iter()
        .map(|a| PlanAlias {
            name: a.name.clone(),
            indices: a.indices.keys().map(|i| spec.dest_name(i)).collect(),
            traits: a.traits().into_iter().map(str::to_string).collect(),
        })
        .collect();
    Ok(Plan {
        clusters: conn.summary.clone(),
        indices: rows,
        not_copied: res
            .refused
            .iter()
            .map(|r: &Refused| (r.name.clone(), r.reason, r.message.clone()))
            .collect(),
        missing: res.missing,
        templates: template_copies
            .copies
            .iter()
            .map(|c| PlanTemplate {
                kind: c.kind.as_str().into(),
                name: c.name.clone(),
                dropped: c.dropped.clone(),
                refused: c.refused.clone(),
            })
            .collect(),
        templates_skipped: template_copies.skipped.clone(),
        aliases,
        not_migrated: checks::not_migrated(&conn.source).await,
        peak_contexts: peak,
        context_limit: limit,
        parallelism,
        dest_existing,
        template_copies,
        alias_copies,
    })
}

async fn row(
    conn: &Connected,
    spec: &MigrationSpec,
    name: &str,
    i: &SourceIndex,
    dest: &str,
    templates: &TemplatePlan,
    aliases: &[AliasCopy],
) -> Result<PlanRow, SearchError> {
    let desc = conn.source.describe_index(&i.name).await?;
    let mut flags = checks::mapping_rejects(&desc.mappings, &conn.dest_info);
    flags.extend(checks::setting_rejects(&desc.settings, &conn.dest_info));
    let t = template_for(spec, &i.name);
    Ok(PlanRow {
        index: i.name.clone(),
        docs: i.docs,
        bytes: i.bytes,
        shards: i.shards,
        dest: dest.to_string(),
        child: child_name(name, &i.name),
        templates: templates
            .copies
            .iter()
            .filter(|c| c.patterns.iter().any(|p| super::resolve::glob(p, &i.name)))
            .map(|c| c.name.clone())
            .collect(),
        aliases: aliases
            .iter()
            .filter(|a| a.indices.contains_key(&i.name))
            .map(|a| a.name.clone())
            .collect(),
        flags,
        contexts: contexts(t.source.as_ref().and_then(|s| s.slices.as_ref()), i.shards),
    })
}

/// `1234567` → `1.2mb`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["b", "kb", "mb", "gb", "tb"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b}b")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

impl Plan {
    /// The plan as the text `remote-reindex plan` prints.
    pub fn render(&self) -> String {
        let mut out = format!("Clusters: {}\n\n", self.clusters);
        let header = [
            "INDEX",
            "DOCS",
            "SIZE",
            "SHARDS",
            "DEST",
            "TEMPLATES",
            "ALIASES",
        ];
        let rows: Vec<[String; 7]> = self
            .indices
            .iter()
            .map(|r| {
                [
                    r.index.clone(),
                    r.docs.to_string(),
                    human_bytes(r.bytes),
                    r.shards.to_string(),
                    r.dest.clone(),
                    dash(&r.templates),
                    dash(&r.aliases),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (c, w) in cells.iter().zip(widths) {
                s.push_str(&format!("{c:<w$}  "));
            }
            s.trim_end().to_string() + "\n"
        };
        out.push_str(&line(&header.map(String::from)));
        for r in &rows {
            out.push_str(&line(r));
        }
        let docs: u64 = self.indices.iter().map(|r| r.docs).sum();
        let bytes: u64 = self.indices.iter().map(|r| r.bytes).sum();
        out.push_str(&format!(
            "\n{} indices, {docs} documents, {}; parallelism {}; scroll contexts at peak {} of the source's limit {}\n",
            self.indices.len(),
            human_bytes(bytes),
            self.parallelism,
            self.peak_contexts,
            self.context_limit
        ));
        section(
            &mut out,
            "Templates to copy before any data",
            self.templates.iter().map(|t| {
                let mut s = format!("{} {}", t.kind, t.name);
                if !t.dropped.is_empty() {
                    s.push_str(&format!(
                        " (drops {}: not accepted by the destination)",
                        t.dropped.join(", ")
                    ));
                }
                if let Some(r) = &t.refused {
                    s.push_str(&format!(" — WILL FAIL: {r}"));
                }
                s
            }),
        );
        section(
            &mut out,
            "Templates not copied",
            self.templates_skipped
                .iter()
                .map(|(n, why)| format!("{n}: {why}")),
        );
        section(
            &mut out,
            "Aliases to create once every index they span has verified",
            self.aliases.iter().map(|a| {
                let traits = if a.traits.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", a.traits.join(", "))
                };
                format!("{}{traits} → {}", a.name, a.indices.join(", "))
            }),
        );
        // One line per finding, naming the indices it concerns (many share the same setting).
        let mut flags: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.indices {
            for f in &r.flags {
                match flags.iter_mut().find(|(g, _)| g == f) {
                    Some((_, idx)) => idx.push(r.index.clone()),
                    None => flags.push((f.clone(), vec![r.index.clone()])),
                }
            }
        }
        section(
            &mut out,
            "The destination will reject",
            flags.iter().map(|(f, idx)| {
                let mut names = idx.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                if idx.len() > 5 {
                    names.push_str(&format!(" and {} more", idx.len() - 5));
                }
                format!("{f} — {names}")
            }),
        );
        section(
            &mut out,
            "Destination indices that already exist (a non-empty one fails its index)",
            self.dest_existing
                .iter()
                .map(|(n, c)| format!("{n}: {c} documents")),
        );
        section(
            &mut out,
            "Matched but not copied",
            self.not_copied
                .iter()
                .map(|(n, r, m)| format!("{n} [{r}]: {m}")),
        );
        section(
            &mut out,
            "Named but not found on the source",
            self.missing.iter().cloned(),
        );
        section(
            &mut out,
            "Not migrated (recreate on the destination yourself)",
            self.not_migrated.iter().map(|(w, n)| format!("{w}: {n}")),
        );
        out.push_str("\nNothing was written.\n");
        out
    }
}

fn dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

fn section(out: &mut String, title: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("\n{title}:\n"));
    for i in items {
        out.push_str(&format!("  {i}\n"));
    }
}
