//! The integration tests: one binary, real servers (see `harness`).

mod accounting;
mod aws;
mod cli;
mod controller;
mod controller_auth;
mod copy;
mod engine;
mod examples;
mod fault_proxy;
mod harness;
mod live;
mod lost_response;
mod metrics;
mod network;
mod nginx;
mod rbac;
mod real_engines;
mod tls;
mod versions;
