//! The cutover's checksum verification and `catchUp.deleteMissing`.
//!
//! Both indices are compared document by document ([`crate::verify::checksum`]). With
//! `deleteMissing`, a difference made only of destination documents the source no longer has
//! (deletes catch-up cannot see) is repaired: those documents are deleted from the destination
//! by `_bulk` (id and routing; a resent delete is harmless), the destination is refreshed and
//! both sides are compared again. Anything else that differs fails the cutover.

use super::connected::Connected;
use super::error::WorkflowError;
use super::prepared::Prepared;
use crate::api::Reason;
use crate::api::RemoteReindexSpec;
use crate::copy::Stop;
use crate::verify::{ChecksumReport, DocKey};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Deletes per `_bulk` request.
const DELETE_BATCH: usize = 1000;

/// What the checksum verification found (after `deleteMissing`, if it deleted anything).
pub struct ChecksumVerified {
    /// The final comparison (matched).
    pub report: ChecksumReport,
    /// Destination documents deleted because the source no longer has them.
    pub deleted: u64,
}

fn failed(message: String) -> WorkflowError {
    WorkflowError::Cutover {
        reason: Reason::VerificationFailed,
        message,
    }
}

/// Compares both sides; with `delete_missing`, deletes destination documents the source no
/// longer has and compares again. Fails with `VerificationFailed` unless the sides end equal.
pub async fn verify(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    prepared: &Prepared,
    dest_type: Option<&str>,
    delete_missing: bool,
    stop: &Arc<Stop>,
) -> Result<ChecksumVerified, WorkflowError> {
    let first = crate::verify::compare_copy(spec, &conn.source, &conn.dest, prepared.slices, stop)
        .await
        .ok_or(WorkflowError::Cancelled)??;
    if first.matched {
        return Ok(ChecksumVerified {
            report: first,
            deleted: 0,
        });
    }
    let only_extra = first.missing == 0
        && first.differing == 0
        && first.unresolved_buckets == 0
        && first.unexpected > 0
        && first.unexpected_keys.len() as u64 == first.unexpected;
    if !delete_missing || !only_extra {
        let hint = if delete_missing && first.unexpected > 0 {
            " (deleteMissing deletes only when nothing else differs)"
        } else if first.unexpected > 0 {
            " (documents deleted in the source are not seen by catch-up: see catchUp.deleteMissing)"
        } else {
            ""
        };
        return Err(failed(format!(
            "cutover verification failed: {}{hint}; the aliases were not moved",
            first.message()
        )));
    }
    let deleted = delete(conn, &spec.dest.index, dest_type, &first.unexpected_keys).await?;
    tracing::info!(
        deleted,
        "deleteMissing: deleted destination documents the source no longer has"
    );
    conn.dest
        .refresh(&spec.dest.index)
        .await
        .map_err(|source| WorkflowError::Destination {
            during: "refreshing the destination after deleteMissing",
            source,
        })?;
    let second = crate::verify::compare_copy(spec, &conn.source, &conn.dest, prepared.slices, stop)
        .await
        .ok_or(WorkflowError::Cancelled)??;
    if !second.matched {
        return Err(failed(format!(
            "cutover verification failed after deleting {deleted} documents the source no longer has: {}; the aliases were not moved",
            second.message()
        )));
    }
    Ok(ChecksumVerified {
        report: second,
        deleted,
    })
}

/// One `_bulk` delete action line for `key`.
fn delete_action(index: &str, dest_type: Option<&str>, key: &DocKey) -> Value {
    let mut meta = Map::new();
    meta.insert("_index".into(), json!(index));
    if let Some(t) = dest_type {
        meta.insert("_type".into(), json!(t));
    }
    meta.insert("_id".into(), json!(key.id));
    if let Some(r) = &key.routing {
        meta.insert("routing".into(), json!(r));
    }
    json!({ "delete": meta })
}

/// Deletes `keys` from `index`; a delete that finds nothing (404) counts as done.
async fn delete(
    conn: &Connected,
    index: &str,
    dest_type: Option<&str>,
    keys: &[DocKey],
) -> Result<u64, WorkflowError> {
    let mut deleted = 0;
    for chunk in keys.chunks(DELETE_BATCH) {
        let mut body = Vec::new();
        for key in chunk {
            serde_json::to_writer(&mut body, &delete_action(index, dest_type, key))
                .expect("a JSON value serializes");
            body.push(b'\n');
        }
        let outcome = conn
            .dest
            .bulk(Bytes::from(body), chunk.len(), None)
            .await
            .map_err(|source| WorkflowError::Destination {
                during: "deleting documents the source no longer has (deleteMissing)",
                source,
            })?;
        if let Some(f) = outcome.failures.iter().find(|f| f.status != 404) {
            return Err(failed(format!(
                "deleteMissing could not delete document `{}` from the destination: {} ({}); the aliases were not moved",
                f.id, f.reason, f.kind
            )));
        }
        deleted += chunk.len() as u64;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_actions_carry_routing_and_type() {
        let key = DocKey {
            id: "a\"b\n/c".into(),
            routing: Some("r1".into()),
        };
        assert_eq!(
            delete_action("d", Some("_doc"), &key),
            json!({"delete": {"_index": "d", "_type": "_doc", "_id": "a\"b\n/c", "routing": "r1"}})
        );
        let plain = DocKey {
            id: "9007199254740993".into(),
            routing: None,
        };
        assert_eq!(
            delete_action("d", None, &plain),
            json!({"delete": {"_index": "d", "_id": "9007199254740993"}})
        );
    }
}
