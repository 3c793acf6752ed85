//! The one workflow both drivers run: prepare → copy → finalize.
//!
//! Drivers differ only in where Secrets come from ([`SecretSource`]) and where phases and
//! progress go ([`Sink`]): the controller patches `.status` and records Events, the CLI draws a
//! progress bar. Everything else, including what is persisted before the destination is tuned,
//! lives here.

pub mod catchup;
mod cutover;
mod destination;
mod error;
pub mod progress;
mod resolve;
mod run;
mod serverless;

pub use catchup::CatchUpReport;
pub use cutover::CutoverOutcome;
pub use destination::{META_KEY, Marker, restore_destination};
pub use error::WorkflowError;
pub use resolve::{ConfigKind, Connected, SecretSource, Settings, connect};
pub use run::{Outcome, Prepared, Sink, run};
