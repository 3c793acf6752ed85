//! Workflow errors and the one place that maps them to condition reasons and exit codes.

use crate::api::Reason;
use crate::api::validate::Invalid;
use crate::copy::CopyError;
use crate::search::SearchError;

/// Why the workflow stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The spec is invalid.
    #[error("{}", .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Invalid>),
    /// The operator's policy refuses what the spec asks for (a host, an identity, an unlabelled
    /// Secret, ...); the reason is the refusal's (`HostNotAllowed`, `SecretNotLabelled`, ...).
    #[error("{0}")]
    Refused(crate::policy::Refusal),
    /// A referenced Secret/ConfigMap or one of its keys does not exist.
    #[error("{kind} `{name}` {detail} (referenced by {field})")]
    SecretNotFound {
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What is missing.
        detail: String,
        /// The spec field that references it.
        field: String,
    },
    /// A cluster could not be reached, or refused us, while preparing (before anything was
    /// written).
    #[error("{which}: {source}")]
    Preflight {
        /// `source` or `destination`.
        which: &'static str,
        /// The client's error.
        #[source]
        source: SearchError,
    },
    /// The version rule failed.
    #[error("{0}")]
    VersionMismatch(String),
    /// The source cannot be copied (missing, `_source` disabled).
    #[error("{0}")]
    SourceNotCopyable(String),
    /// The destination exists and is not empty.
    #[error("{0}")]
    DestinationNotEmpty(String),
    /// The copy stopped.
    #[error("copy failed: {0}")]
    Copy(#[from] CopyError),
    /// A request to the source after pre-flight (a count for the cutover's verification or
    /// after the destination's reindex, the mapping catch-up reads) failed: the copy failed,
    /// not its pre-flight.
    #[error("{during} failed: source: {source}")]
    Source {
        /// What the workflow was doing.
        during: &'static str,
        /// The client's error.
        #[source]
        source: SearchError,
    },
    /// A request outside the copy (tuning, restore, refresh) failed.
    #[error("{during} failed: {source}")]
    Destination {
        /// What the workflow was doing.
        during: &'static str,
        /// The client's error.
        #[source]
        source: SearchError,
    },
    /// The destination index was deleted or recreated while the copy ran (its UUID changed).
    #[error("{0}")]
    DestinationReplaced(String),
    /// The destination does not hold what the source's snapshot holds (minus failed
    /// documents).
    #[error(
        "count mismatch: the destination holds {found} documents, but the source's snapshot holds {expected} and {failed} failed, so {} were expected",
        expected.saturating_sub(*failed)
    )]
    CountMismatch {
        /// Documents in the source's snapshot (capped by `maxDocs`).
        expected: u64,
        /// Documents the destination rejected.
        failed: u64,
        /// Documents found in the destination.
        found: u64,
    },
    /// The cutover was refused, its verification failed or the aliases could not be moved; the
    /// aliases were left as they were.
    #[error("{message}")]
    Cutover {
        /// The condition reason: `CutoverRefused`, `VerificationFailed`, `CutoverFailed`.
        reason: Reason,
        /// What happened and what was left unchanged.
        message: String,
    },
    /// `mode: Server`: the destination's reindex task could not start or failed.
    #[error("{0}")]
    Server(ServerError),
    /// The checksum comparison found differences.
    #[error("{}", .0.message())]
    ChecksumMismatch(crate::verify::ChecksumReport),
    /// The checksum comparison could not be carried out.
    #[error("checksum verification failed: {0}")]
    Verify(#[from] crate::verify::VerifyError),
    /// The driver could not persist state (e.g. status patch failed).
    #[error("could not record progress: {0}")]
    Sink(String),
    /// Stopped on request.
    #[error("interrupted")]
    Cancelled,
}

impl WorkflowError {
    /// The condition reason for this error.
    pub fn reason(&self) -> Reason {
        match self {
            WorkflowError::Invalid(v) => v.first().map_or(Reason::InvalidSpec, |i| i.reason),
            // HostNotAllowed, AmbientIdentityNotAllowed, InsecureTLSNotAllowed,
            // InsecureHttpNotAllowed, SecretNotLabelled, LinkLocalNotAllowed, RateLimitExceeded,
            // SlicesNotAllowed, DestIndexNotAllowed, PolicyInvalid, PolicyUnavailable.
            WorkflowError::Refused(r) => r.reason,
            WorkflowError::SecretNotFound { .. } => Reason::SecretNotFound,
            WorkflowError::Preflight { source, .. } => search_reason(source),
            WorkflowError::VersionMismatch(_) => Reason::VersionMismatch,
            WorkflowError::SourceNotCopyable(_) => Reason::SourceNotCopyable,
            WorkflowError::DestinationNotEmpty(_) => Reason::DestinationNotEmpty,
            WorkflowError::Copy(CopyError::Cancelled) | WorkflowError::Cancelled => {
                Reason::Cancelled
            }
            WorkflowError::Copy(CopyError::Search { source, .. }) => match search_reason(source) {
                Reason::RequestFailed => Reason::CopyFailed,
                r => r,
            },
            WorkflowError::Copy(CopyError::TooManyFailures { .. }) => Reason::TooManyFailures,
            WorkflowError::Copy(CopyError::Conflict { .. }) => Reason::VersionConflict,
            WorkflowError::Copy(_) => Reason::CopyFailed,
            WorkflowError::Destination { .. } => Reason::DestinationFailed,
            WorkflowError::Source { source, .. } => match search_reason(source) {
                Reason::RequestFailed => Reason::CopyFailed,
                r => r,
            },
            WorkflowError::CountMismatch { .. } => Reason::CountMismatch,
            WorkflowError::DestinationReplaced(_) => Reason::DestinationReplaced,
            WorkflowError::Cutover { reason, .. } => *reason,
            WorkflowError::ChecksumMismatch(_) => Reason::ChecksumMismatch,
            WorkflowError::Verify(e) => match e.search_error().map(search_reason) {
                Some(Reason::RequestFailed) | None => Reason::VerificationFailed,
                Some(r) => r,
            },
            WorkflowError::Sink(_) => Reason::StatusUpdateFailed,
            WorkflowError::Server(e) => e.reason(),
        }
    }

    /// Whether waiting may fix it before the pre-flight timeout (cluster down, credentials or
    /// Secret not there yet), as the operator retries: refused credentials included, since a
    /// rotated Secret is picked up.
    pub fn is_retryable_preflight(&self) -> bool {
        self.retried_at_preflight(true)
    }

    /// Whether pre-flight retries this: an unreachable cluster (refused, silent, DNS), missing
    /// AWS credentials and a missing Secret always; refused credentials (401, a 403 refusal)
    /// only when `refused_credentials` (the operator; the CLI reports them after one request).
    pub fn retried_at_preflight(&self, refused_credentials: bool) -> bool {
        match self {
            WorkflowError::SecretNotFound { .. } => true,
            WorkflowError::Preflight { source, .. } => {
                source.is_transient()
                    || matches!(source, SearchError::Credentials { .. })
                    || refused_credentials && matches!(source, SearchError::Unauthorized { .. })
            }
            _ => false,
        }
    }

    /// The CLI's exit code: 1 copy/verification, 2 invalid input, 3 pre-flight, 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            WorkflowError::Invalid(_)
            | WorkflowError::Refused(_)
            | WorkflowError::SecretNotFound { .. } => 2,
            WorkflowError::Preflight { .. }
            | WorkflowError::VersionMismatch(_)
            | WorkflowError::SourceNotCopyable(_)
            | WorkflowError::DestinationNotEmpty(_)
            | WorkflowError::Server(ServerError::RemoteNotAllowed { .. }) => 3,
            WorkflowError::Cancelled | WorkflowError::Copy(CopyError::Cancelled) => 130,
            _ => 1,
        }
    }
}

/// Why the destination's own reindex (`mode: Server`) did not copy.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The destination refuses to reindex from the source's host.
    #[error(
        "the destination refuses to reindex from {host}: add it to `{setting}` in the destination's node configuration (a static setting: restart the nodes), e.g. {setting}: \"{host}\" ({detail})"
    )]
    RemoteNotAllowed {
        /// `host:port` as the destination names it.
        host: String,
        /// `reindex.remote.whitelist` or `reindex.remote.allowlist`.
        setting: &'static str,
        /// The destination's words.
        detail: String,
    },
    /// A batch from the source did not fit the destination's buffer (100Mi).
    #[error(
        "a batch from the source is larger than the destination's remote reindex buffer: lower spec.source.size (documents per batch, default 1000) ({0})"
    )]
    RemoteBatchTooLarge(String),
    /// The destination could not connect to the source.
    #[error("the destination could not reach the source: {0}")]
    RemoteUnreachable(String),
    /// The source refused the destination's credentials.
    #[error("the source refused the credentials the destination sent: {0}")]
    RemoteAuth(String),
    /// Someone else cancelled the task.
    #[error("{0}")]
    TaskCancelled(String),
    /// The task ended with another error.
    #[error("the destination's reindex task failed: {0}")]
    TaskFailed(String),
    /// `POST _reindex` failed.
    #[error("starting the destination's reindex failed: {detail}")]
    Start {
        /// The reason of the client error.
        reason: Reason,
        /// The error, redacted.
        detail: String,
    },
}

impl ServerError {
    /// The condition reason.
    pub fn reason(&self) -> Reason {
        match self {
            ServerError::RemoteNotAllowed { .. } => Reason::RemoteNotAllowed,
            ServerError::RemoteBatchTooLarge(_) => Reason::RemoteBatchTooLarge,
            ServerError::RemoteUnreachable(_) => Reason::RemoteUnreachable,
            ServerError::RemoteAuth(_) => Reason::AuthenticationFailed,
            ServerError::TaskCancelled(_) => Reason::TaskCancelled,
            ServerError::TaskFailed(_) => Reason::CopyFailed,
            ServerError::Start { reason, .. } => match *reason {
                Reason::RequestFailed => Reason::CopyFailed,
                r => r,
            },
        }
    }
}

/// Condition reason for a client error.
pub fn search_reason(e: &SearchError) -> Reason {
    match e {
        SearchError::Unreachable { .. }
        | SearchError::Timeout { .. }
        | SearchError::Interrupted { .. } => Reason::Unreachable,
        SearchError::Tls { .. } => Reason::TLSHandshakeFailed,
        SearchError::Unauthorized { .. } | SearchError::Credentials { .. } => {
            Reason::AuthenticationFailed
        }
        SearchError::Config { .. } => Reason::InvalidSpec,
        SearchError::Redirect { .. } => Reason::RedirectNotFollowed,
        SearchError::NotSent { .. } => Reason::NotLeader,
        SearchError::Api { .. } | SearchError::Decode { .. } => Reason::RequestFailed,
    }
}
