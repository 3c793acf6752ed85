//! Migrations: many indices with their templates and aliases, each index copied by one
//! `RemoteReindex` (the copy stays in [`crate::workflow`]; nothing here copies a document).
//!
//! [`resolve`] turns patterns into indices, [`checks`] finds what the destination will reject,
//! [`metadata`] chooses and writes templates and aliases, [`child`] names and specifies the
//! children, [`plan`] puts it together for `remote-reindex plan` and a Migration's start, and
//! [`aggregate`] turns the children's states into the Migration's status. Both drivers (the
//! operator's Migration reconciler and `remote-reindex run -f`) use these.

pub mod aggregate;
pub mod checks;
pub mod child;
pub mod metadata;
pub mod plan;
pub mod resolve;
pub mod schedule;
