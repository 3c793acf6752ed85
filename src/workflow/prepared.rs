//! The prepared plan: what prepare decided (persisted before the destination is tuned) and
//! the engine plan every copy step builds from it.

use super::connected::Connected;
use super::error::WorkflowError;
use crate::api::{Conflicts, OpType, OriginalSettings, RemoteReindexSpec};
use crate::copy::{CopyError, CopyPlan, Paging, SliceCheckpoint, Throttle, WriteOp};
use std::sync::Arc;

/// What prepare decided and the drivers persist before the destination is tuned.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// The destination's settings before tuning.
    pub original_settings: OriginalSettings,
    /// Whether the destination was empty or absent when the copy first started.
    pub dest_was_empty: bool,
    /// The destination's UUID, once known.
    pub dest_index_uuid: Option<String>,
    /// Documents expected: the source snapshot's exact total (known once the copy opened).
    pub total: Option<u64>,
    /// Slices used.
    pub slices: u32,
    /// Versions of both ends, for messages.
    pub summary: String,
    /// Per-slice checkpoints of an interrupted attempt (empty for a fresh copy).
    pub checkpoints: Vec<SliceCheckpoint>,
    /// What catch-up recorded before an interruption (its high-water mark wins over a new one).
    pub catch_up: Option<crate::api::CatchUpStatus>,
    /// `mode: Server`: the destination's reindex task an interrupted attempt started.
    pub task: Option<String>,
    /// An earlier attempt may have written documents already (a restart or resume).
    pub resumed: bool,
}

/// The engine's plan for the copy `spec` describes, as `prepared` decided it, reading by
/// `paging` at `throttle`'s rate.
pub(crate) fn copy_plan(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    throttle: Arc<Throttle>,
    paging: Paging,
) -> CopyPlan {
    let max_concurrent_bulk = spec
        .dest
        .max_concurrent_bulk
        .map(|n| n as usize)
        .unwrap_or_else(|| default_writers(prepared.slices) as usize);
    CopyPlan {
        source: conn.source.clone(),
        source_index: spec.source.index.clone(),
        query: spec.source.query.clone(),
        page_size: page_size(spec),
        keep_alive: spec.source.keep_alive(),
        paging,
        slices: prepared.slices,
        max_docs: spec.source.max_docs.map(|n| n as u64),
        dest: conn.dest.clone(),
        dest_index: spec.dest.index.clone(),
        // `_type` in bulk actions on Elasticsearch 6.x.
        dest_type: conn.dest.mapping_type().map(str::to_string),
        op: match spec.dest.op_type.unwrap_or_default() {
            OpType::Index => WriteOp::Index,
            OpType::Create => WriteOp::Create,
        },
        pipeline: spec.dest.pipeline.clone(),
        bulk_bytes: bulk_bytes(spec) as usize,
        max_concurrent_bulk,
        proceed_on_conflict: spec.conflicts == Some(Conflicts::Proceed),
        dest_was_empty: prepared.dest_was_empty,
        max_failed_docs: spec.max_failed_docs.unwrap_or(0).max(0) as u64,
        throttle,
        resume: prepared.checkpoints.clone(),
        share: None,
    }
}

/// Documents per source page the copy asks for: `source.size` (default 1000), 1 to 10,000.
pub(super) fn page_size(spec: &RemoteReindexSpec) -> u32 {
    spec.source.size.unwrap_or(1000).clamp(1, 10_000) as u32
}

/// The most bytes of one bulk body: `dest.bulkBytes` (default 5 MiB).
pub(super) fn bulk_bytes(spec: &RemoteReindexSpec) -> u64 {
    spec.dest
        .bulk_bytes
        .as_ref()
        .and_then(|b| b.bytes().ok())
        .unwrap_or(5 << 20)
}

/// Concurrent bulk writers when `dest.maxConcurrentBulk` is unset: two per slice, 4 to 16.
pub(super) fn default_writers(slices: u32) -> u32 {
    (slices * 2).clamp(4, 16)
}

/// A copy error as the workflow reports it (a cancelled copy is the workflow's cancellation).
pub(crate) fn copy_error(e: CopyError) -> WorkflowError {
    match e {
        CopyError::Cancelled => WorkflowError::Cancelled,
        e => WorkflowError::Copy(e),
    }
}
