//! The one scheduling rule of a Migration, for both drivers (the controller and `run -f`):
//! pending indices start in plan order (the plan lists the larger ones first), while fewer than
//! `parallelism` run; none start once a failure stops the Migration (`failurePolicy: Stop`) or
//! it is being stopped.

use crate::api::IndexState;

/// The positions in `states` (plan order) of the pending indices to start now.
pub fn to_start(states: &[IndexState], parallelism: usize, stop_on_failure: bool) -> Vec<usize> {
    let failed = states.contains(&IndexState::Failed);
    if stop_on_failure && failed {
        return Vec::new();
    }
    let running = states.iter().filter(|s| **s == IndexState::Running).count();
    let room = parallelism.max(1).saturating_sub(running);
    states
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == IndexState::Pending)
        .map(|(i, _)| i)
        .take(room)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndexState::*;

    #[test]
    fn pending_indices_start_in_plan_order_up_to_the_parallelism() {
        assert_eq!(to_start(&[Pending, Pending, Pending], 2, false), [0, 1]);
        assert_eq!(
            to_start(&[Succeeded, Running, Pending, Pending], 2, false),
            [2]
        );
        assert_eq!(
            to_start(&[Running, Running, Pending], 2, false),
            Vec::<usize>::new()
        );
        assert_eq!(
            to_start(&[Pending], 0, false),
            [0],
            "parallelism is at least 1"
        );
    }

    #[test]
    fn a_failure_stops_new_starts_only_under_failure_policy_stop() {
        assert_eq!(to_start(&[Failed, Pending], 1, false), [1]);
        assert!(to_start(&[Failed, Pending], 1, true).is_empty());
    }
}
