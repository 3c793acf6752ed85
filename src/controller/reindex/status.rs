//! Pure helpers for `.status`: conditions with a stable `lastTransitionTime`, and the progress
//! block as a merge patch (the block itself comes from `workflow::progress`).

use crate::api::{Phase, Reason};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The `Ready` condition type.
pub const READY: &str = "Ready";
/// The `Progressing` condition type.
pub const PROGRESSING: &str = "Progressing";
/// The `Degraded` condition type.
pub const DEGRADED: &str = "Degraded";

/// The current time as a Kubernetes `Time`.
pub fn now() -> Time {
    Time(Timestamp::now())
}

/// Sets condition `type_` in `conditions`. `lastTransitionTime` changes only when the status
/// (`True`/`False`/`Unknown`) changes; reason, message and generation are always updated. An
/// empty message is replaced by the reason, so every condition says something (old API servers,
/// such as 1.20, also read `""` as `null` and refused the patch).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    let message = if message.is_empty() {
        reason.as_str()
    } else {
        message
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.status = status.to_string();
                c.last_transition_time = now();
            }
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: generation,
            last_transition_time: now(),
        }),
    }
}

/// The three conditions for a phase. `reason`/`message` describe the phase (for `Failed`, the
/// error's reason and message).
pub fn apply_phase(
    conditions: &mut Vec<Condition>,
    phase: Phase,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) {
    let (ready, progressing, degraded) = match phase {
        Phase::Pending | Phase::Copying | Phase::Syncing | Phase::Finalizing => {
            (false, true, false)
        }
        Phase::Succeeded => (true, false, false),
        Phase::Failed => (false, false, true),
        Phase::Suspended => (false, false, false),
    };
    set_condition(conditions, READY, ready, reason, message, generation);
    set_condition(
        conditions,
        PROGRESSING,
        progressing,
        reason,
        message,
        generation,
    );
    let (d_reason, d_message) = if degraded {
        (reason, message)
    } else {
        (Reason::AsExpected, "no errors")
    };
    set_condition(
        conditions, DEGRADED, degraded, d_reason, d_message, generation,
    );
}

/// The three conditions while pre-flight retries a failure that waiting may fix: `Progressing`
/// stays `True` (the operator is still trying), and `Ready=False`/`Degraded=True` carry the
/// failure's reason and message, so `kubectl get` shows why at once.
pub fn apply_retrying(
    conditions: &mut Vec<Condition>,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
) {
    set_condition(conditions, READY, false, reason, message, generation);
    set_condition(conditions, PROGRESSING, true, reason, message, generation);
    set_condition(conditions, DEGRADED, true, reason, message, generation);
}

/// The condition type saying whether the running copy applies the current spec: `False`
/// (`ChangeNotApplied`) names the edited fields it cannot apply while it runs.
pub const SPEC_APPLIED: &str = "SpecApplied";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_with_status() {
        let mut cs = Vec::new();
        set_condition(&mut cs, READY, false, Reason::Pending, "", Some(1));
        let t0 = cs[0].last_transition_time.clone();
        cs[0].last_transition_time = Time(Timestamp::UNIX_EPOCH);
        set_condition(&mut cs, READY, false, Reason::Copying, "copying", Some(1));
        assert_eq!(
            cs[0].last_transition_time,
            Time(Timestamp::UNIX_EPOCH),
            "same status keeps the time"
        );
        assert_eq!(cs[0].reason, "Copying");
        set_condition(&mut cs, READY, true, Reason::Verified, "ok", Some(1));
        assert!(cs[0].last_transition_time.0 >= t0.0);
        assert_eq!(cs.len(), 1);
    }

    #[test]
    fn phases_map_to_three_conditions() {
        let mut cs = Vec::new();
        apply_phase(
            &mut cs,
            Phase::Failed,
            Reason::Unreachable,
            "x is unreachable",
            Some(2),
        );
        let get = |t: &str| cs.iter().find(|c| c.type_ == t).cloned().unwrap();
        assert_eq!(
            (get(READY).status.as_str(), get(DEGRADED).status.as_str()),
            ("False", "True")
        );
        assert_eq!(get(DEGRADED).reason, "Unreachable");
        assert_eq!(get(PROGRESSING).status, "False");
        apply_phase(&mut cs, Phase::Succeeded, Reason::Verified, "ok", Some(3));
        let get = |t: &str| cs.iter().find(|c| c.type_ == t).cloned().unwrap();
        assert_eq!(
            (get(READY).status.as_str(), get(DEGRADED).status.as_str()),
            ("True", "False")
        );
        assert_eq!(get(READY).observed_generation, Some(3));
    }

    #[test]
    fn retrying_keeps_progressing_and_names_the_reason() {
        let mut cs = Vec::new();
        apply_phase(
            &mut cs,
            Phase::Pending,
            Reason::Pending,
            "connecting",
            Some(1),
        );
        apply_retrying(
            &mut cs,
            Reason::SecretNotFound,
            "Secret `a` does not exist",
            Some(1),
        );
        let get = |t: &str| cs.iter().find(|c| c.type_ == t).cloned().unwrap();
        assert_eq!(get(PROGRESSING).status, "True");
        assert_eq!(get(READY).status, "False");
        assert_eq!(get(DEGRADED).status, "True");
        for t in [READY, PROGRESSING, DEGRADED] {
            assert_eq!(get(t).reason, "SecretNotFound");
            assert_eq!(get(t).message, "Secret `a` does not exist");
        }
        apply_phase(&mut cs, Phase::Copying, Reason::Copying, "copying", Some(1));
        let get = |t: &str| cs.iter().find(|c| c.type_ == t).cloned().unwrap();
        assert_eq!(
            (get(DEGRADED).status.as_str(), get(DEGRADED).reason.as_str()),
            ("False", "AsExpected")
        );
    }
}
