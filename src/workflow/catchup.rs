//! Catch-up: after the initial copy, rounds copy what changed in the source since the last
//! high-water mark, until the driver asks for the cutover (see [`super::cutover`]).
//!
//! Before the initial copy the mark H0 is the `max` of `catchUp.field` in what the source's
//! search shows (no refresh is asked for: the mark is taken from the same view the scroll reads),
//! over the documents whose field is at or below the source's present: date math `now` in the
//! range, evaluated by the source, for a date; the source node's clock (`_nodes/_local/stats`)
//! for a number of epoch milliseconds. A document dated in the future therefore never lifts the
//! mark past the present (which would make every later round ask for nothing newer than it);
//! such documents are counted (`status.catchUp.futureDocuments`), named in one Event, and copied
//! again by every round (they are above every round's start).
//! A round takes a new mark, then copies every document with `field >= H_prev - overlap`
//! (ANDed with `source.query`) with `opType: index` and the same ids, so copying a document twice
//! is harmless. A write that is not yet searchable when a round snapshots the source is caught by
//! the next round as long as `overlap` covers the refresh interval and the writers' clock skew.
//! Deletes are never seen here.

use super::connected::Connected;
use super::error::WorkflowError;
use super::job::Job;
use super::prepared::Prepared;
use super::sink::{CatchUpReport, Sink};
use crate::api::Reason;
use crate::api::{CatchUp, CatchUpStatus, Phase, RemoteReindexSpec, RoundStatus};
use crate::copy::{CopyError, CopyPlan, CopyStats, StatsSnapshot, Stop, WriteOp, run_copy};
use crate::search::SearchError;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How `catchUp.field` is mapped in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// `date` or `date_nanos`: ranges are sent as `epoch_millis`.
    Date,
    /// A number holding epoch milliseconds.
    Millis,
}

/// A high-water mark: the largest value of the field seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    /// Epoch milliseconds.
    pub millis: i64,
    /// As the source shows it (`value_as_string` for dates), for the status.
    pub shown: String,
}

/// The live part of one copy: the field, the mark and the counters of the rounds.
pub struct CatchUpRun<'a> {
    spec: &'a RemoteReindexSpec,
    conn: &'a Connected,
    config: &'a CatchUp,
    kind: FieldKind,
    /// The current mark (`None` while the source has no document with the field).
    pub mark: Option<Mark>,
    /// What was last reported.
    pub status: CatchUpStatus,
    /// Documents written by all rounds.
    pub written: u64,
    /// Whether a round has been under `maxLag`.
    pub synced_once: bool,
}

impl<'a> CatchUpRun<'a> {
    /// Records H0 before the initial copy (or takes over the mark an interrupted attempt
    /// recorded) and reports it.
    pub async fn start<K: Sink>(
        spec: &'a RemoteReindexSpec,
        conn: &'a Connected,
        config: &'a CatchUp,
        prepared: &Prepared,
        sink: &K,
    ) -> Result<Self, WorkflowError> {
        let desc = conn
            .source
            .describe_index(&spec.source.index)
            .await
            .map_err(|source| WorkflowError::Source {
                during: "reading the source's mapping for catch-up",
                source,
            })?;
        let kind = field_kind(&desc.mappings, &config.field).map_err(|m| {
            WorkflowError::Invalid(vec![crate::api::validate::Invalid {
                field: "spec.catchUp.field".into(),
                message: m,
                reason: Reason::InvalidSpec,
            }])
        })?;
        let mut run = CatchUpRun {
            spec,
            conn,
            config,
            kind,
            mark: None,
            status: prepared.catch_up.clone().unwrap_or_default(),
            written: 0,
            synced_once: false,
        };
        let mut future = None;
        if let (Some(ms), Some(shown)) = (
            run.status.high_water_mark_millis,
            run.status.high_water_mark.clone(),
        ) {
            run.mark = Some(Mark { millis: ms, shown });
            tracing::info!(
                mark = ms,
                "catch-up resumes from the recorded high-water mark"
            );
        } else {
            let present = run.present().await;
            run.mark = run.take_mark(None, &present).await?;
            run.set_mark();
            future = run.future(&present).await?;
        }
        let message = match &run.mark {
            Some(m) => format!(
                "high-water mark H0 of `{}` before the initial copy: {}",
                config.field, m.shown
            ),
            None => format!(
                "no document has `{}` yet: the first round copies every document",
                config.field
            ),
        };
        let mut report = run.report(None, None, None, message);
        report.future = future;
        sink.catch_up(&report).await.map_err(WorkflowError::Sink)?;
        Ok(run)
    }

    fn set_mark(&mut self) {
        self.status.high_water_mark = self.mark.as_ref().map(|m| m.shown.clone());
        self.status.high_water_mark_millis = self.mark.as_ref().map(|m| m.millis);
    }

    /// The report for the drivers.
    pub fn report(
        &self,
        synced: Option<bool>,
        round: Option<StatsSnapshot>,
        lag: Option<Duration>,
        message: String,
    ) -> CatchUpReport {
        CatchUpReport {
            status: self.status.clone(),
            synced,
            round,
            lag,
            cut_over: self.status.cut_over_at.is_some(),
            future: None,
            message,
        }
    }

    /// `source.query` ANDed with `field >= from` (when given).
    fn query(&self, from: Option<i64>) -> Value {
        let mut filter = vec![
            self.spec
                .source
                .query
                .clone()
                .unwrap_or_else(|| json!({"match_all": {}})),
        ];
        if let Some(from) = from {
            let range = match self.kind {
                FieldKind::Date => json!({ "gte": from, "format": "epoch_millis" }),
                FieldKind::Millis => json!({ "gte": from }),
            };
            filter.push(json!({ "range": { self.config.field.clone(): range } }));
        }
        json!({ "bool": { "filter": filter } })
    }

    /// The source's present, as a range bound on the field: date math `now` for a date
    /// (evaluated by the source); for a number of epoch milliseconds, the source node's clock
    /// (this process's clock, with a warning, when the source does not tell it, e.g. to a user
    /// without the `monitor` privilege). Elasticsearch before 2026 and OpenSearch send no `Date`
    /// header to read it from.
    async fn present(&self) -> Value {
        match self.kind {
            FieldKind::Date => json!("now"),
            FieldKind::Millis => match self.conn.source.node_time_millis().await {
                Ok(ms) => json!(ms),
                Err(e) => {
                    let ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    tracing::warn!(
                        error = %e,
                        "could not read the source's clock (_nodes/_local/stats); the high-water mark is bounded by this process's clock instead"
                    );
                    json!(ms)
                }
            },
        }
    }

    /// `source.query` ANDed with `field <op> bound` (and `field >= from`, when given).
    fn bounded(&self, from: Option<i64>, op: &str, bound: &Value) -> Value {
        let mut q = self.query(from);
        if let Some(f) = q["bool"]["filter"].as_array_mut() {
            f.push(json!({ "range": { self.config.field.clone(): { op: bound } } }));
        }
        q
    }

    /// Counts the documents dated ahead of `present` into the status; returns the Event's line
    /// when there were none before (one Event, not one per round).
    async fn future(&mut self, present: &Value) -> Result<Option<String>, WorkflowError> {
        let (n, sample) = self
            .conn
            .source
            .count_with_sample(&self.spec.source.index, &self.bounded(None, "gt", present))
            .await
            .map_err(|e| copy_error(e, "counting documents dated ahead of the source's present"))?;
        let before = self.status.future_documents;
        self.status.future_documents = i64::try_from(n).unwrap_or(i64::MAX);
        if n == 0 || before > 0 {
            return Ok(None);
        }
        let notice = format!(
            "{n} documents have `{}` ahead of the source's present (e.g. id `{}`): the high-water mark stays at the present, so they are copied again by every round; check the writers' clocks or the field's values",
            self.config.field,
            sample.as_deref().unwrap_or("?")
        );
        tracing::warn!("{notice}");
        Ok(Some(notice))
    }

    /// The mark: the largest value of the field at or below `present`, over the documents at
    /// or above `from`.
    async fn take_mark(
        &self,
        from: Option<i64>,
        present: &Value,
    ) -> Result<Option<Mark>, WorkflowError> {
        let max = self
            .conn
            .source
            .field_max(
                &self.spec.source.index,
                &self.config.field,
                &self.bounded(from, "lte", present),
            )
            .await
            .map_err(|e| copy_error(e, "reading the high-water mark"))?;
        Ok(max.map(|m| {
            let millis = m.value as i64;
            let shown = match (self.kind, m.as_string) {
                (FieldKind::Date, Some(s)) => s,
                _ => millis.to_string(),
            };
            Mark { millis, shown }
        }))
    }

    /// `catchUp.overlap`.
    pub fn overlap(&self) -> Duration {
        self.config.overlap()
    }

    /// Where the next round starts: the mark minus the overlap (everything without a mark).
    fn from(&self) -> Option<i64> {
        let overlap = i64::try_from(self.config.overlap().as_millis()).unwrap_or(i64::MAX);
        self.mark.as_ref().map(|m| m.millis.saturating_sub(overlap))
    }

    /// One round: a new mark, then a copy of everything at or above the old mark minus the
    /// overlap. Returns the report (already sent to `sink`).
    pub async fn round<K: Sink>(
        &mut self,
        base: &CopyPlan,
        sink: &K,
        stop: &Arc<Stop>,
        last: bool,
    ) -> Result<CatchUpReport, WorkflowError> {
        let snapshot = Instant::now();
        let from = self.from();
        let present = self.present().await;
        let next = self.take_mark(from, &present).await?;
        let future = self.future(&present).await?;
        let mut plan = base.clone();
        plan.query = Some(self.query(from));
        // Each round reads its own snapshot: a new point in time (the initial copy's is closed),
        // or scrolls.
        let choice = base.paging.mode();
        plan.paging = crate::copy::pager::choose(
            &self.conn.source,
            &self.spec.source.index,
            plan.query.as_ref(),
            &base.keep_alive,
            choice,
        )
        .await
        .map_err(WorkflowError::SourceNotCopyable)?;
        plan.op = WriteOp::Index;
        plan.max_docs = None;
        plan.resume = Vec::new();
        let stats = Arc::new(CopyStats::new());
        run_copy(plan, stats.clone(), stop.clone())
            .await
            .map_err(|e| match e {
                CopyError::Cancelled => WorkflowError::Cancelled,
                e => WorkflowError::Copy(e),
            })?;
        let lag = snapshot.elapsed();
        let snap = stats.snapshot();
        self.written += snap.written;
        if next.is_some() {
            self.mark = next;
            self.set_mark();
        }
        let synced = lag < self.config.max_lag();
        self.synced_once |= synced;
        self.status.rounds += 1;
        self.status.last_round = Some(RoundStatus {
            documents: snap.written as i64,
            lag: shown_duration(lag),
            lag_seconds: (lag.as_secs_f64() * 1000.0).round() / 1000.0,
        });
        let what = if last { "final round" } else { "round" };
        let ahead = match self.status.future_documents {
            0 => String::new(),
            n => format!(" ({n} of them dated ahead of the source's present, copied every round)"),
        };
        let message = format!(
            "catch-up {what} {} copied {} documents{ahead} changed since {}; lag {} ({} maxLag {})",
            self.status.rounds,
            snap.written,
            self.status
                .high_water_mark
                .as_deref()
                .unwrap_or("the start"),
            shown_duration(lag),
            if synced { "under" } else { "over" },
            shown_duration(self.config.max_lag()),
        );
        let mut report = self.report(Some(synced), Some(snap), Some(lag), message);
        report.future = future;
        sink.catch_up(&report).await.map_err(WorkflowError::Sink)?;
        Ok(report)
    }

    /// Rounds every `interval` until the driver asks for the cutover (or the copy is stopped);
    /// returns the cutover settings the driver's request carries (`None`: the spec's).
    pub async fn until_cutover<K: Sink>(
        &mut self,
        base: &CopyPlan,
        sink: &K,
        job: &Job,
    ) -> Result<Option<crate::api::Cutover>, WorkflowError> {
        let stop = &job.stop;
        let mut phase = Phase::Copying;
        loop {
            let report = self.round(base, sink, stop, false).await?;
            if phase != Phase::Syncing && report.synced == Some(true) {
                phase = Phase::Syncing;
                let next = if job.cutover.triggered() {
                    "cutting over (spec.cutover.trigger is true)"
                } else {
                    "set spec.cutover.trigger: true to cut over"
                };
                sink.phase(
                    Phase::Syncing,
                    Reason::Synced,
                    format!(
                        "the destination is within maxLag of the source ({}); {next}",
                        report.message
                    ),
                )
                .await
                .map_err(WorkflowError::Sink)?;
            }
            tokio::select! {
                biased;
                _ = stop.requested() => return Err(WorkflowError::Cancelled),
                c = job.cutover.requested() => return Ok(c),
                _ = tokio::time::sleep(self.config.interval()) => {}
            }
        }
    }
}

fn copy_error(source: SearchError, during: &'static str) -> WorkflowError {
    WorkflowError::Copy(CopyError::Search { during, source })
}

/// `1.25s`, `340ms`, `2m5s`.
pub fn shown_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// How `field` is mapped: a date, or a number (epoch milliseconds). Dotted names follow
/// `properties`; a typed mapping (Elasticsearch 6) is looked into too.
pub fn field_kind(mappings: &Value, field: &str) -> Result<FieldKind, String> {
    let lookup = |root: &Value| {
        let mut node = root;
        for part in field.split('.') {
            node = node.get("properties")?.get(part)?;
        }
        node.get("type").and_then(Value::as_str).map(str::to_string)
    };
    let ty = lookup(mappings).or_else(|| {
        mappings
            .as_object()
            .and_then(|o| o.values().find_map(lookup))
    });
    match ty.as_deref() {
        Some("date" | "date_nanos") => Ok(FieldKind::Date),
        Some("long" | "integer" | "unsigned_long" | "double" | "float" | "scaled_float") => {
            Ok(FieldKind::Millis)
        }
        Some(other) => Err(format!(
            "`{field}` is mapped as `{other}` in the source; catch-up needs a date field or a number of epoch milliseconds"
        )),
        None => Err(format!(
            "`{field}` is not in the source's mappings; catch-up needs a date field or a number of epoch milliseconds that grows on every write"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_kinds_follow_properties_and_types() {
        let m = json!({"properties": {
            "@timestamp": {"type": "date"},
            "meta": {"properties": {"updated": {"type": "long"}}},
            "name": {"type": "keyword"}
        }});
        assert_eq!(field_kind(&m, "@timestamp"), Ok(FieldKind::Date));
        assert_eq!(field_kind(&m, "meta.updated"), Ok(FieldKind::Millis));
        assert!(field_kind(&m, "name").unwrap_err().contains("keyword"));
        assert!(field_kind(&m, "nope").unwrap_err().contains("not in"));
        let typed = json!({"_doc": {"properties": {"ts": {"type": "date_nanos"}}}});
        assert_eq!(field_kind(&typed, "ts"), Ok(FieldKind::Date));
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(shown_duration(Duration::from_millis(340)), "340ms");
        assert_eq!(shown_duration(Duration::from_millis(2450)), "2.5s");
        assert_eq!(shown_duration(Duration::from_secs(125)), "2m5s");
    }
}
