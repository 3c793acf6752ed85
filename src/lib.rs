//! `remote-reindex`: copies Elasticsearch/OpenSearch indices from a remote cluster into a local one.
//!
//! One workflow, two drivers: [`workflow`] runs connect → prepare → copy → finalize; the
//! Kubernetes [`controller`] (with scale-out and the `Migration` controller inside) and the local
//! `remote-reindex run -f` ([`cli`]) drive it, [`migration`] plans many indices for both. Below
//! the workflow: [`verify`] compares both sides document by document, [`copy`] is the engine
//! (PIT or scroll → bulk), [`policy`] the pure tenant rules, [`api`] the resource types,
//! [`search`] the cluster client, and [`net`] / [`telemetry`] the shared bottom. The layer order
//! is checked by `scripts/check-layers.py`.
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
