//! `remote-reindex run -f migration.yaml`: a Migration without Kubernetes. The same plan as the
//! operator (resolve, checks, templates before data), then each index through the one workflow,
//! `parallelism` at a time, then the aliases over verified indices. Prints one progress line per
//! running index plus a total.

use super::local::{RunArgs, local_settings};
use super::manifest::Manifests;
use crate::api::{IndexState, Migration, Phase};
use crate::copy::{CopyStats, Stop, StopMode, Throttle};
use crate::migration::child::child_spec;
use crate::migration::metadata::{self, AliasReadiness};
use crate::migration::plan::{Plan, build, connect_migration};
use crate::migration::schedule;
use crate::workflow::{self, Prepared, Sink, WorkflowError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Counters of one running index, for the progress lines.
#[derive(Default)]
struct IndexSink {
    stats: Mutex<Option<(Arc<CopyStats>, Option<u64>)>>,
}

impl Sink for IndexSink {
    async fn phase(&self, _: Phase, _: crate::api::Reason, _: String) -> Result<(), String> {
        Ok(())
    }
    async fn prepared(&self, _: &Prepared) -> Result<(), String> {
        Ok(())
    }
    async fn expected(&self, _: u64, _: &'static str) -> Result<(), String> {
        Ok(())
    }
    fn copying(&self, stats: Arc<CopyStats>, total: Option<u64>) {
        *self.stats.lock().expect("sink lock") = Some((stats, total));
    }
}

/// One index's run.
struct Running {
    index: String,
    sink: Arc<IndexSink>,
    stop: Arc<Stop>,
    started: Instant,
}

/// Runs the Migration; returns the exit code (0 every index, template and alias done; 1 some
/// failed; 2 invalid input; 3 pre-flight failure; 130 interrupted).
pub async fn run(m: Manifests<Migration>, args: RunArgs) -> i32 {
    let settings = local_settings(&args, &m.namespace);
    let spec = &m.reindex.spec;
    let name = m.reindex.metadata.name.clone().unwrap_or_default();
    let conn = match connect_migration(spec, &m.secrets(), &settings).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.reason());
            return e.exit_code();
        }
    };
    let plan = match build(&conn, spec, &name).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error [{}]: {e}", workflow::search_reason(&e));
            return 3;
        }
    };
    for (n, reason, msg) in &plan.not_copied {
        eprintln!("not copied: {n} [{reason}]: {msg}");
    }
    if plan.indices.is_empty() {
        eprintln!("error [NoIndices]: no open index matches spec.indices");
        return 3;
    }
    eprintln!(
        "Plan: {} indices, {} documents; parallelism {} (scroll contexts at peak {} of {})",
        plan.indices.len(),
        plan.indices.iter().map(|r| r.docs).sum::<u64>(),
        plan.parallelism,
        plan.peak_contexts,
        plan.context_limit
    );
    let mut failed_any = false;
    for t in metadata::create_templates(&conn.dest, &plan.template_copies).await {
        let msg = t.message.map(|m| format!(": {m}")).unwrap_or_default();
        eprintln!("template {} {}: {}{msg}", t.kind, t.name, t.state);
        failed_any |= t.state == "Failed";
    }

    let stop_all = Arc::new(Stop::new());
    tokio::spawn({
        let stop_all = stop_all.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "interrupted: stopping every running index and restoring its destination's settings"
                );
                stop_all.request(StopMode::Interrupt);
            }
        }
    });
    let states = copy_all(&plan, &m, &settings, spec, &stop_all).await;
    if stop_all.is_requested() {
        return 130;
    }
    failed_any |= states.values().any(|s| *s == IndexState::Failed);
    let state_of = |i: &str| states.get(i).copied().unwrap_or(IndexState::Pending);
    for a in &plan.alias_copies {
        match metadata::alias_readiness(a, state_of) {
            AliasReadiness::Ready => {
                match metadata::create_alias(&conn.dest, a, |i| spec.dest_name(i)).await {
                    Ok(()) => eprintln!("alias {}: Created", a.name),
                    Err(e) => {
                        failed_any = true;
                        eprintln!("alias {}: Failed: {e}", a.name);
                    }
                }
            }
            AliasReadiness::Incomplete(f) => {
                failed_any = true;
                eprintln!(
                    "alias {}: AliasIncomplete: not created, these indices failed: {}",
                    a.name,
                    f.join(", ")
                );
            }
            AliasReadiness::Waiting => {
                failed_any = true;
                eprintln!(
                    "alias {}: AliasIncomplete: not created, some of its indices were not copied (failurePolicy: Stop)",
                    a.name
                );
            }
        }
    }
    if !failed_any {
        for t in plan
            .template_copies
            .copies
            .iter()
            .filter(|t| t.aliases.is_some())
        {
            if let Err(e) = metadata::put_template(&conn.dest, t, true).await {
                failed_any = true;
                eprintln!(
                    "template {} {}: could not add its aliases: {e}",
                    t.kind.as_str(),
                    t.name
                );
            }
        }
    }
    let ok = states
        .values()
        .filter(|s| **s == IndexState::Succeeded)
        .count();
    if failed_any {
        println!(
            "Failed: {ok}/{} indices copied and verified",
            plan.indices.len()
        );
        1
    } else {
        println!(
            "Succeeded: {ok}/{} indices copied and verified, {} templates, {} aliases",
            plan.indices.len(),
            plan.template_copies.copies.len(),
            plan.alias_copies.len()
        );
        0
    }
}

/// Copies every planned index, `plan.parallelism` at a time, larger first; prints progress.
async fn copy_all(
    plan: &Plan,
    m: &Manifests<Migration>,
    settings: &workflow::Settings,
    spec: &crate::api::MigrationSpec,
    stop_all: &Arc<Stop>,
) -> BTreeMap<String, IndexState> {
    let mut states: BTreeMap<String, IndexState> = plan
        .indices
        .iter()
        .map(|r| (r.index.clone(), IndexState::Pending))
        .collect();
    let mut running: Vec<Running> = Vec::new();
    let mut tasks = futures::stream::FuturesUnordered::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    let stop_on_failure = spec.failure_policy == Some(crate::api::FailurePolicy::Stop);
    loop {
        let in_plan_order: Vec<IndexState> =
            plan.indices.iter().map(|r| states[&r.index]).collect();
        let starting = if stop_all.is_requested() {
            Vec::new()
        } else {
            schedule::to_start(&in_plan_order, plan.parallelism, stop_on_failure)
        };
        for row in starting.into_iter().map(|i| &plan.indices[i]) {
            let child = child_spec(spec, &row.index, &row.dest);
            let sink = Arc::new(IndexSink::default());
            let stop = Arc::new(Stop::new());
            eprintln!("{}: started → {}", row.index, row.dest);
            states.insert(row.index.clone(), IndexState::Running);
            running.push(Running {
                index: row.index.clone(),
                sink: sink.clone(),
                stop: stop.clone(),
                started: Instant::now(),
            });
            let secrets = m.secrets();
            let index = row.index.clone();
            tasks.push(async move {
                let throttle = Arc::new(Throttle::new(child.requests_per_second));
                let job = workflow::Job::new(throttle, stop);
                let span = tracing::info_span!("copy", index = %index);
                let r = workflow::run(&child, &secrets, settings, sink.as_ref(), job)
                    .instrument(span)
                    .await;
                (index, r)
            });
        }
        if tasks.is_empty() {
            break;
        }
        tokio::select! {
            Some((index, r)) = futures::StreamExt::next(&mut tasks) => {
                running.retain(|x| x.index != index);
                let r: Result<workflow::Outcome, WorkflowError> = r;
                match r {
                    Ok(o) => {
                        eprintln!("{index}: Succeeded: {}", o.message());
                        states.insert(index, IndexState::Succeeded);
                    }
                    Err(e) => {
                        eprintln!("{index}: Failed [{}]: {e}", e.reason());
                        states.insert(index, IndexState::Failed);
                    }
                }
            }
            _ = tick.tick() => print_progress(plan, &running, &states),
            _ = stop_all.requested(), if !running.iter().all(|r| r.stop.is_requested()) => {
                for r in &running {
                    r.stop.request(StopMode::Interrupt);
                }
            }
        }
    }
    states
}

/// One line per running index and a total.
fn print_progress(plan: &Plan, running: &[Running], states: &BTreeMap<String, IndexState>) {
    let mut copied_running = 0u64;
    for r in running {
        let snap = r.sink.stats.lock().expect("sink lock").clone();
        let Some((stats, total)) = snap else {
            eprintln!("  {}: preparing", r.index);
            continue;
        };
        let s = stats.snapshot();
        copied_running += s.written;
        let rate = s.written as f64 / r.started.elapsed().as_secs_f64().max(0.001);
        let p = workflow::progress::progress(&s, total, Some(rate));
        eprintln!(
            "  {}: {} {} docs/s",
            r.index,
            p.summary.unwrap_or_default(),
            p.docs_per_second.unwrap_or_default()
        );
    }
    let done: u64 = plan
        .indices
        .iter()
        .filter(|r| states.get(&r.index) == Some(&IndexState::Succeeded))
        .map(|r| r.docs)
        .sum();
    let expected: u64 = plan.indices.iter().map(|r| r.docs).sum();
    let count = |s: IndexState| states.values().filter(|x| **x == s).count();
    let copied = done + copied_running;
    eprintln!(
        "total: {}/{} indices ({} running, {} failed), {copied}/{expected} documents ({}%)",
        count(IndexState::Succeeded),
        plan.indices.len(),
        count(IndexState::Running),
        count(IndexState::Failed),
        (copied.min(expected) * 100)
            .checked_div(expected)
            .unwrap_or(100)
    );
}
