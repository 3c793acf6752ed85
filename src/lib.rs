//! `remote-reindex`: copies Elasticsearch/OpenSearch indices from a remote cluster into a local one.
//!
//! One workflow, two drivers: [`workflow`] runs prepare → copy → finalize; the Kubernetes
//! [`controller`] and the local `remote-reindex run -f` ([`cli`]) drive it. Below the workflow,
//! [`copy`] is the engine (scroll → bulk) and [`search`] the cluster client.
#![warn(missing_docs)]
// Errors carry the host, method, path and reason a user needs; they are on the cold path, so their
// size does not matter and boxing them would only obscure the types.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod cli;
pub mod controller;
pub mod copy;
pub mod migration;
pub mod net;
pub mod policy;
pub mod search;
pub mod telemetry;
pub mod verify;
pub mod workflow;
