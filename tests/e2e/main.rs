//! The integration tests: one binary, real servers (see `harness`).

mod aws;
mod cli;
mod controller;
mod controller_auth;
mod copy;
mod engine;
mod examples;
mod harness;
mod live;
mod metrics;
mod network;
mod nginx;
mod rbac;
mod real_engines;
mod tls;
mod versions;
