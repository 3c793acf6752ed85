//! The one workflow both drivers run: prepare → copy → finalize.
//!
//! Drivers differ only in where Secrets come from ([`SecretSource`]) and where phases and
//! progress go ([`Sink`]): the controller patches `.status` and records Events, the CLI draws a
//! progress bar. Everything else, including what is persisted before the destination is tuned,
//! lives here.

mod destination;
mod error;
mod resolve;
mod run;
pub mod progress;

pub use destination::{restore_destination, Marker, META_KEY};
pub use error::WorkflowError;
pub use resolve::{connect, Connected, ConfigKind, SecretSource, Settings};
pub use run::{run, Outcome, Prepared, Sink};
