//! The integration tests: one binary, real servers (see `harness`).

mod accounting;
mod aws;
mod chart;
mod cli;
mod controller;
mod controller_auth;
mod copy;
mod engine;
mod es6_dest;
mod examples;
mod fault_proxy;
mod harness;
mod logs;
mod lost_response;
mod metrics;
mod migration;
mod network;
mod nginx;
mod policy;
mod rbac;
mod real_engines;
mod scale;
mod server_mode;
mod tls;
mod verify;
mod versions;
