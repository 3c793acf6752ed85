//! Schema helpers for fields whose shape the Rust types cannot express to Kubernetes.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Free-form JSON object kept as-is by the API server (`x-kubernetes-preserve-unknown-fields`).
pub fn free_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// [`free_object`] that may not change once set (`source.query`).
pub fn immutable_free_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "source.query is immutable"}],
    })
}

/// Any JSON value kept as-is; used for fields that exist only to be rejected with a clear message.
pub fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// An Elasticsearch duration such as `30s`, `5m` or `1h`.
pub fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^[0-9]+(nanos|micros|ms|s|m|h|d)$",
    })
}

/// A byte size: an integer, or a number with a unit (`5Mi`, `5mb`, `512kb`). Structural schemas
/// forbid `type` inside `anyOf`; `x-kubernetes-int-or-string` carries it.
pub fn byte_size(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "anyOf": [
            {"minimum": 1},
            {"pattern": "^[0-9]+(b|kb|mb|gb|Ki|Mi|Gi|KiB|MiB|GiB|k|m|g)?$"}
        ],
    })
}

/// `slices`: a positive integer or the string `auto`.
pub fn slices(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "anyOf": [
            {"minimum": 1, "maximum": 1024},
            {"enum": ["auto"]}
        ],
    })
}
