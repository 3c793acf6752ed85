//! A spec problem with the field it concerns, and the index name rule every check shares.

/// A spec problem, with the field it concerns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// Path of the field, e.g. `spec.dest.index`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The condition reason: `InvalidSpec` or `InvalidAuth`.
    pub reason: super::Reason,
}

pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
        reason: super::Reason::InvalidSpec,
    }
}

/// Elasticsearch's index-name rules.
pub fn check_index_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 255 {
        return Err(format!("`{name}` is longer than 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not an index name"));
    }
    if name.starts_with(['-', '_', '+']) {
        return Err(format!("`{name}` must not start with -, _ or +"));
    }
    if name.chars().any(|c| c.is_uppercase()) {
        return Err(format!("`{name}` must be lowercase"));
    }
    if let Some(c) = name.chars().find(|c| r#"\/*?"<>| ,#:"#.contains(*c)) {
        return Err(format!("`{name}` contains the forbidden character `{c}`"));
    }
    Ok(())
}
