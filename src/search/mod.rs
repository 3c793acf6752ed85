//! An Elasticsearch/OpenSearch client over reqwest, just wide enough for copying an index:
//! cluster info, index administration, count/refresh, scroll, points in time and bulk. Knows nothing of
//! Kubernetes, the workflow or the engine.

mod admin;
mod alias;
pub mod aws;
pub use admin::IndexDescription;
pub use alias::FieldMax;
mod bulk;
mod client;
pub mod dns;
mod error;
mod info;
mod meta;
mod pit;
mod scroll;
mod tasks;
mod tls;

pub use aws::{AwsCredentialSource, AwsCredentials, AwsSigner};
pub use bulk::{BulkItemFailure, BulkOutcome};
pub use client::{
    Admit, ClientOptions, Credentials, Fence, ProxyOptions, Resend, RetryPolicy, SearchClient,
    SecretString, TlsOptions, is_write, request_retries_total,
};
pub use error::SearchError;
pub use info::{ClusterInfo, Distribution, Version};
pub use pit::PitApi;
pub use scroll::{ParsedPage, ScrollHit, ScrollPage};
pub use tasks::{RunningTask, TaskCounts, TaskFailure, TaskResponse, TaskState};

/// Installs the process-wide rustls crypto provider (`ring`, the one kube uses). Safe to call more
/// than once; every entry point calls it before building a client.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
