//! A pre-flight check that failed and will be retried: what the drivers show while waiting (the
//! controller as the resource's conditions and an Event, the CLI as a line on stderr), so the
//! real reason (`SecretNotFound`, `Unreachable`, `AuthenticationFailed` …) is visible at once and
//! `preflightTimeout` only decides when to give up.

use super::error::WorkflowError;
use std::time::Duration;

/// One failed pre-flight attempt that will be retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreflightRetry {
    /// The condition reason of the failure (the same the final error would carry).
    pub reason: crate::api::Reason,
    /// What failed (the error's message; never holds a secret).
    pub error: String,
    /// Attempts made so far (1 after the first failure).
    pub attempt: u32,
    /// Wait before the next attempt.
    pub retry_in: Duration,
    /// Time left until `preflightTimeout` gives up.
    pub gives_up_in: Duration,
    /// The cluster refused the credentials (401, a 403 refusal): only the operator retries
    /// that, so that a rotated Secret is picked up; the message says so.
    pub refused_credentials: bool,
}

impl PreflightRetry {
    /// Describes a failed attempt of a retryable pre-flight error.
    pub fn new(e: &WorkflowError, attempt: u32, retry_in: Duration, gives_up_in: Duration) -> Self {
        PreflightRetry {
            reason: e.reason(),
            error: e.to_string(),
            attempt,
            retry_in,
            gives_up_in,
            refused_credentials: matches!(
                e,
                WorkflowError::Preflight {
                    source: crate::search::SearchError::Unauthorized { .. },
                    ..
                }
            ),
        }
    }

    /// One line for a condition message or a terminal, e.g. `Secret `a` does not exist (…);
    /// retrying (attempt 3, next in 2s, giving up in 4m52s: preflightTimeout)`.
    /// A refusal of the credentials adds why it is retried at all: `…; refused credentials are
    /// retried until preflightTimeout so that a rotated Secret is picked up`.
    pub fn message(&self) -> String {
        format!(
            "{}; retrying (attempt {}, next in {}, giving up in {}: preflightTimeout){}",
            self.error,
            self.attempt,
            short(self.retry_in),
            short(self.gives_up_in),
            if self.refused_credentials {
                "; refused credentials are retried until preflightTimeout so that a rotated Secret is picked up"
            } else {
                ""
            }
        )
    }
}

/// A duration as `2s`, `4m52s`, `1h5m` (whole seconds, rounded up; sub-second as `ms`).
pub(super) fn short(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_error_the_attempt_and_the_deadline() {
        let e = WorkflowError::SecretNotFound {
            kind: "Secret",
            name: "old-creds".into(),
            detail: "does not exist".into(),
            field: "spec.source.remote.basicAuth".into(),
        };
        let r = PreflightRetry::new(
            &e,
            3,
            Duration::from_secs(2),
            Duration::from_millis(291_500),
        );
        assert_eq!(r.reason, "SecretNotFound");
        assert_eq!(
            r.message(),
            "Secret `old-creds` does not exist (referenced by spec.source.remote.basicAuth); retrying (attempt 3, next in 2s, giving up in 4m52s: preflightTimeout)"
        );
    }

    #[test]
    fn a_refusal_of_the_credentials_says_why_it_is_retried() {
        let e = WorkflowError::Preflight {
            which: "source",
            source: crate::search::SearchError::Unauthorized {
                host: "https://es.example.com:9200".into(),
                method: "GET".into(),
                path: "/".into(),
                status: 401,
                reason: "unable to authenticate user [elastic]".into(),
            },
        };
        let r = PreflightRetry::new(&e, 1, Duration::from_millis(500), Duration::from_secs(299));
        assert_eq!(r.reason, "AuthenticationFailed");
        assert!(
            r.message().ends_with("giving up in 4m59s: preflightTimeout); refused credentials are retried until preflightTimeout so that a rotated Secret is picked up"),
            "{}",
            r.message()
        );
    }

    #[test]
    fn short_durations() {
        assert_eq!(short(Duration::from_millis(500)), "500ms");
        assert_eq!(short(Duration::from_secs(60)), "1m");
        assert_eq!(short(Duration::from_secs(3900)), "1h5m");
    }
}
