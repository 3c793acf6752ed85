//! The integration tests: one binary, real servers (see `harness`).

mod cli;
mod copy;
mod engine;
mod harness;
mod nginx;
mod tls;
