//! The one workflow both drivers run: prepare → copy → finalize.
//!
//! Drivers differ only in where Secrets come from ([`SecretSource`]) and where phases and
//! progress go ([`Sink`]): the controller patches `.status` and records Events, the CLI draws a
//! progress bar. Everything else, including what is persisted before the destination is tuned,
//! lives here.

pub mod catchup;
mod cutover;
mod cutover_checksum;
mod destination;
mod error;
mod preflight;
pub mod progress;
mod resolve;
mod run;
mod server_copy;
mod server_reach;
mod server_request;
mod serverless;
pub mod slices;
mod versions;

pub use catchup::CatchUpReport;
pub use cutover::CutoverOutcome;
pub use destination::{
    META_KEY, Marker, flatten as flatten_settings, nest as nest_settings, restore_destination,
};
pub use error::{ServerError, WorkflowError, search_reason};
pub use preflight::PreflightRetry;
pub use resolve::{
    ConfigKind, Connected, PreflightSettings, SecretError, SecretSource, Settings, connect,
    connect_reporting,
};
pub use run::{Outcome, Prepared, Sink, run};
