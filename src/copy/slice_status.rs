//! The engine's slice checkpoints as `status.slices[]` (and the Leases of scale-out) record
//! them, and back: what a successor resumes from.

use super::{SliceCheckpoint, SliceState};
use crate::api::{SliceStateName, SliceStatus};

/// The engine's checkpoints as status entries.
pub fn slices_status(checkpoints: &[SliceCheckpoint]) -> Vec<SliceStatus> {
    checkpoints
        .iter()
        .map(|c| SliceStatus {
            id: i64::from(c.id),
            state: match c.state {
                SliceState::Pending => SliceStateName::Pending,
                SliceState::Running => SliceStateName::Running,
                SliceState::Done => SliceStateName::Done,
            },
            read: c.read as i64,
            written: c.written as i64,
            failed: c.failed as i64,
            conflicts: c.conflicts as i64,
            scroll_id: c.scroll_id.clone(),
            pit_id: c.pit_id.clone(),
            search_after: c.search_after.clone(),
            resumable: c.resumable,
            total: c.total.map(|t| t as i64),
            restarts: i64::from(c.restarts),
            rewritten: c.rewritten as i64,
        })
        .collect()
}

/// Status entries back into the engine's checkpoints (for a resume).
pub fn checkpoints_from(slices: &[SliceStatus]) -> Vec<SliceCheckpoint> {
    slices
        .iter()
        .map(|s| SliceCheckpoint {
            id: s.id.max(0) as u32,
            state: match s.state {
                SliceStateName::Pending => SliceState::Pending,
                SliceStateName::Running => SliceState::Running,
                SliceStateName::Done => SliceState::Done,
            },
            read: s.read.max(0) as u64,
            written: s.written.max(0) as u64,
            failed: s.failed.max(0) as u64,
            conflicts: s.conflicts.max(0) as u64,
            scroll_id: s.scroll_id.clone(),
            pit_id: s.pit_id.clone(),
            search_after: s.search_after.clone(),
            resumable: s.resumable,
            total: s.total.map(|t| t.max(0) as u64),
            restarts: s.restarts.clamp(0, i64::from(u32::MAX)) as u32,
            rewritten: s.rewritten.max(0) as u64,
        })
        .collect()
}
