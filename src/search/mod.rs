//! An Elasticsearch/OpenSearch client over reqwest, just wide enough for copying an index:
//! cluster info, index administration, count/refresh, scroll, points in time and bulk. Knows nothing of
//! Kubernetes, the workflow or the engine.

mod admin;
mod alias;
mod attempt;
pub mod aws;
pub use admin::IndexDescription;
pub use alias::FieldMax;
mod bulk;
mod client;
pub mod dns;
mod error;
mod failure;
mod fence;
mod info;
mod meta;
mod options;
mod pit;
mod probe;
mod scroll;
mod secret;
mod tasks;
mod tls;
mod transport;

pub use aws::{AwsCredentialSource, AwsCredentials, AwsSigner};
pub use bulk::{BulkItemFailure, BulkOutcome};
pub use client::{SearchClient, request_retries_total};
pub use error::SearchError;
pub use failure::source_chain;
pub use fence::{Admit, Fence, is_write};
pub use info::{ClusterInfo, Distribution, Version};
pub use options::{ClientOptions, Credentials, ProxyOptions, Resend, RetryPolicy};
pub use pit::PitApi;
pub use probe::TimedPage;
pub use scroll::{ParsedPage, ScrollHit, ScrollPage};
pub use secret::SecretString;
pub use tasks::{RunningTask, TaskCounts, TaskFailure, TaskResponse, TaskState};
pub use tls::{TlsOptions, install_crypto_provider};
