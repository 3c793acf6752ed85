//! [`Reason`]: every reason the operator writes into a condition or an Event, and the CLI
//! prints. Its string form (the variant's name) is what users see and match on, so a variant
//! is never renamed.

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! reasons {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// Why a condition is what it is, or what an Event reports (see the module doc).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])+ $name,)+
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)+];

            /// The string users see: the variant's name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)+
                }
            }
        }
    };
}

reasons! {
    // The lifecycle of one copy.
    /// Validating the spec and connecting to both clusters.
    Pending,
    /// Resuming an interrupted copy from what its status recorded.
    Resuming,
    /// Copying documents.
    Copying,
    /// Live migration: the initial copy is done and catch-up rounds run.
    Syncing,
    /// Live migration: a catch-up round ended within `maxLag`.
    Synced,
    /// Restoring the destination's settings and verifying.
    Finalizing,
    /// Live migration: moving the aliases to the destination.
    CuttingOver,
    /// Live migration: `spec.cutover.trigger` was set.
    CutoverRequested,
    /// Live migration: the cutover was refused; the aliases were left as they were.
    CutoverRefused,
    /// Live migration: the aliases could not be moved; they were left as they were.
    CutoverFailed,
    /// The request rate of the running copy was changed.
    Rethrottled,
    /// An interrupted copy was cleaned up (scrolls cleared, destination settings restored).
    CleanedUp,
    /// Suspended by `spec.suspend: true`.
    Suspended,
    /// Copied and verified.
    Verified,
    /// Copied; the count could not be verified (see the message).
    Copied,
    /// Verified against the reindex task's own counts only (the source is not reachable).
    TaskCountsOnly,
    /// The Verified condition: checksums of source and destination matched.
    ChecksumMatched,
    /// The Verified condition: document counts matched.
    CountMatched,
    /// The Verified condition: not verified.
    NotVerified,
    /// The Degraded condition: nothing is wrong.
    AsExpected,
    /// The running copy applies the current spec.
    Applied,
    /// An edit the running copy cannot apply (the message names the fields).
    ChangeNotApplied,
    /// The copy stopped (resource deleted or operator shutting down).
    Interrupted,
    /// The last catch-up round ended within `maxLag`.
    WithinMaxLag,
    /// The last catch-up round ended beyond `maxLag`.
    Lagging,
    /// Live migration recorded its high-water mark.
    HighWaterMark,
    /// The source has documents stamped in the future.
    FutureDocuments,
    /// The aliases point at the destination.
    CutOver,
    /// TLS verification is off for an endpoint (`insecureSkipVerify`).
    InsecureSkipVerify,

    // Failures of one copy.
    /// The spec is invalid (the message names the field).
    InvalidSpec,
    /// The authentication settings are invalid.
    InvalidAuth,
    /// A referenced Secret does not exist.
    SecretNotFound,
    /// A cluster refused the credentials.
    AuthenticationFailed,
    /// A cluster could not be reached.
    Unreachable,
    /// The TLS handshake with a cluster failed.
    TLSHandshakeFailed,
    /// A cluster redirected to a host nobody allowed.
    RedirectNotFollowed,
    /// A request to a cluster failed.
    RequestFailed,
    /// The engine versions cannot be copied between.
    VersionMismatch,
    /// The source index cannot be copied (closed, a data stream, missing).
    SourceNotCopyable,
    /// The destination index has documents and the spec does not allow writing into it.
    DestinationNotEmpty,
    /// The destination index was deleted and created again while copying.
    DestinationReplaced,
    /// The destination failed a request (e.g. blocked).
    DestinationFailed,
    /// More documents failed than `maxFailures` allows.
    TooManyFailures,
    /// A document changed at the destination while copying (`opType: create`).
    VersionConflict,
    /// The copy failed.
    CopyFailed,
    /// The destination has a different number of documents than the source.
    CountMismatch,
    /// Source and destination checksums differ.
    ChecksumMismatch,
    /// The verification itself failed.
    VerificationFailed,
    /// The engine's remote reindex is not allowed from the destination to the source.
    RemoteNotAllowed,
    /// The destination cannot reach the source for the engine's remote reindex.
    RemoteUnreachable,
    /// A batch of the engine's remote reindex is larger than its buffer.
    RemoteBatchTooLarge,
    /// The destination's reindex task was cancelled.
    TaskCancelled,
    /// The destination's reindex task is gone.
    TaskLost,
    /// The copy was cancelled.
    Cancelled,
    /// This replica is no longer the leader.
    NotLeader,
    /// The status could not be written.
    StatusUpdateFailed,
    /// Cleaning up after a deleted copy was given up.
    CleanupAbandoned,

    // Refusals of the tenant policy.
    /// A host is not in the policy's allowed hosts.
    HostNotAllowed,
    /// Plain HTTP is not allowed.
    InsecureHttpNotAllowed,
    /// Skipping TLS verification is not allowed.
    InsecureTLSNotAllowed,
    /// A link-local address (cloud metadata) is not allowed.
    LinkLocalNotAllowed,
    /// The operator's own cloud identity is not allowed.
    AmbientIdentityNotAllowed,
    /// A Secret from another namespace is not allowed.
    SecretNamespaceNotAllowed,
    /// A Secret lacks the `reindex.dev/use` label.
    SecretNotLabelled,
    /// The destination index name is not allowed.
    DestIndexNotAllowed,
    /// More slices than the policy allows.
    SlicesNotAllowed,
    /// A higher request rate than the policy allows.
    RateLimitExceeded,
    /// A policy in the namespace is invalid.
    PolicyInvalid,
    /// The policies could not be read.
    PolicyUnavailable,

    // A Migration.
    /// Resolving indices and checking both clusters.
    Planning,
    /// The plan is recorded.
    Planned,
    /// Copying the planned indices.
    Running,
    /// Every index copied and verified.
    Migrated,
    /// Some indices failed.
    IndicesFailed,
    /// Some templates or aliases failed.
    MetadataFailed,
    /// No open index matches the patterns.
    NoIndices,
    /// An index is closed.
    IndexClosed,
    /// Data streams are not copied.
    DataStreamNotSupported,
    /// The destination will reject some documents (see the message).
    DestinationWillReject,
    /// A template could not be created.
    TemplateFailed,
    /// An index's copy started.
    IndexStarted,
    /// An index's copy succeeded.
    IndexSucceeded,
    /// An index's copy failed.
    IndexFailed,
    /// An alias was created at the destination.
    AliasCreated,
    /// An alias could not be created completely.
    AliasIncomplete,
    /// An alias could not be created.
    AliasFailed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::str::FromStr for Reason {
    type Err = String;

    /// The reason named `s` (a reason read back from a status).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown reason `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_string_form_is_the_name_and_parses_back() {
        assert_eq!(Reason::TLSHandshakeFailed.to_string(), "TLSHandshakeFailed");
        assert_eq!(
            serde_json::to_value(Reason::TaskCountsOnly).unwrap(),
            "TaskCountsOnly"
        );
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(*r));
        }
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
