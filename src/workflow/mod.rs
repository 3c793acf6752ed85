//! The one workflow both drivers run: prepare → copy → finalize.
//!
//! Drivers differ only in where Secrets come from ([`SecretSource`]), where phases and progress
//! go ([`Sink`]: the controller patches `.status` and records Events, the CLI draws a progress
//! bar) and how they steer a run ([`Job`]: resume, rate, stop, cutover request, who runs the
//! slices). Everything else, including what is persisted before the destination is tuned, lives
//! here.

pub mod catchup;
mod compression;
mod connected;
mod cutover;
mod cutover_checksum;
mod destination;
mod engine;
mod error;
mod finalize;
mod job;
mod outcome;
mod preflight;
mod prepare;
mod prepared;
pub mod progress;
mod resolve;
mod run;
mod server_copy;
mod server_reach;
mod server_request;
mod serverless;
mod sink;
mod slicing;
mod versions;

pub use connected::Connected;
pub use cutover::CutoverOutcome;
pub use destination::{
    META_KEY, Marker, flatten as flatten_settings, nest as nest_settings, restore_destination,
};
pub use error::{ServerError, WorkflowError, search_reason};
pub use job::{CutoverControl, Job, SliceRunner};
pub use outcome::Outcome;
pub use preflight::PreflightRetry;
pub use prepared::Prepared;
pub(crate) use prepared::copy_plan;
pub use resolve::{
    ConfigKind, PreflightSettings, SecretError, SecretSource, Settings, connect, connect_reporting,
};
pub use run::run;
pub use sink::{CatchUpReport, Sink};
