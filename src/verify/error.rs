//! Why a verification could not be carried out (a mismatch is a result, not an error).

use super::canonical::CanonicalError;
use crate::search::SearchError;

/// A scan failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A request to one side failed.
    #[error("{which}: {during} failed: {source}")]
    Search {
        /// `source` or `destination`.
        which: &'static str,
        /// What the scan was doing.
        during: &'static str,
        /// The client's error.
        #[source]
        source: SearchError,
    },
    /// A page could not be parsed.
    #[error("{which}: unreadable search page: {message}")]
    BadPage {
        /// `source` or `destination`.
        which: &'static str,
        /// The parser's message.
        message: String,
    },
    /// Some shards did not answer: the page cannot be trusted to be complete.
    #[error("{which}: incomplete search page: {message}")]
    Incomplete {
        /// `source` or `destination`.
        which: &'static str,
        /// Why.
        message: String,
    },
    /// A document's `_source` is not JSON.
    #[error("{which}: the _source of document `{id}` is not JSON: {source}")]
    NotJson {
        /// `source` or `destination`.
        which: &'static str,
        /// The document's id.
        id: String,
        /// Where the text stops being JSON.
        #[source]
        source: CanonicalError,
    },
}

impl VerifyError {
    /// The underlying client error, if a request failed.
    pub fn search_error(&self) -> Option<&SearchError> {
        match self {
            VerifyError::Search { source, .. } => Some(source),
            _ => None,
        }
    }
}
