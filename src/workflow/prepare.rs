//! The prepare step: check both clusters can do this copy, decide the slices, and create or
//! take over the destination, tuned for bulk loading, after persisting what a restart needs
//! (the destination's original settings) through the [`Sink`].

use super::connected::Connected;
use super::destination::{
    Marker, create_body, originals_from_user, originals_of, read_marker, tuned_settings,
    write_marker,
};
use super::error::WorkflowError;
use super::prepared::Prepared;
use super::sink::Sink;
use super::slicing::SourceShape;
use crate::api::units::Slices;
use crate::api::{CopyMode, OriginalSettings, Reason, RemoteReindexSpec, Verify};
use crate::search::SearchError;
use serde_json::Value;

/// Prepares the copy `spec` describes on the connected clusters; `resume` is what an earlier
/// attempt persisted (its originals win over whatever the destination shows now). Also returns
/// what it saw of the source index, for the slice count.
pub(super) async fn prepare<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    resume: Option<Prepared>,
) -> Result<(Prepared, SourceShape), WorkflowError> {
    let (src, dst) = (&conn.source, &conn.dest);
    let pre_src = |e: SearchError| WorkflowError::Preflight {
        which: "source",
        source: e,
    };
    let pre_dst = |e: SearchError| WorkflowError::Preflight {
        which: "destination",
        source: e,
    };
    let dest_is_aws = spec
        .dest
        .remote
        .as_ref()
        .is_some_and(|e| e.aws_auth().is_some() || e.host.contains(".amazonaws.com"));
    super::server_reach::check_allowlist(spec, dest_is_aws, dst, &conn.dest_info)
        .await
        .map_err(WorkflowError::Server)?;
    if !conn.source_reachable && spec.verify == Some(Verify::Checksum) {
        return Err(WorkflowError::Invalid(vec![crate::api::validate::Invalid {
            field: "spec.verify".into(),
            message: "Checksum reads the source again, and the operator cannot reach it (mode: Server); use Count (then TaskCountsOnly) or let the operator reach the source".into(),
            reason: Reason::InvalidSpec,
        }]));
    }
    let sidx = &spec.source.index;
    // `mode: Server` without a route to the source: the destination's templates (or
    // `dest.mappings`) shape the index and the task reports the total.
    let (source_desc, total) = if conn.source_reachable {
        // Three reads at once (one round trip across a WAN), judged in the order they answer
        // questions: a missing index is reported as missing, whatever the other two said.
        let (exists, described, counted) = tokio::join!(
            src.index_exists(sidx),
            src.describe_index(sidx),
            src.count(sidx, spec.source.query.as_ref()),
        );
        if !exists.map_err(pre_src)? {
            return Err(WorkflowError::SourceNotCopyable(format!(
                "source index `{sidx}` does not exist on {}",
                src.name()
            )));
        }
        let source_desc = described.map_err(pre_src)?;
        if source_disabled(&source_desc.mappings) {
            return Err(WorkflowError::SourceNotCopyable(format!(
                "source index `{sidx}` has _source disabled: its documents cannot be read back, so they cannot be copied"
            )));
        }
        let mut total = counted.map_err(pre_src)?;
        if let Some(m) = spec.source.max_docs {
            total = total.min(m as u64);
        }
        (source_desc, Some(total))
    } else {
        (crate::search::IndexDescription::default(), None)
    };
    let shards: u32 = source_desc
        .setting("index.number_of_shards")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // Unset and `auto` start from today's count; the engine's copy step may raise it from
    // what it measures of the link (super::slicing) before any slice starts.
    let slices = match spec.source.slices.clone().unwrap_or_default() {
        Slices::Count(n) => n.max(1),
        Slices::Auto(_) if spec.mode() == CopyMode::Server => 1,
        Slices::Auto(_) => shards.clamp(1, super::slicing::MAX_SLICES),
    };
    let shape = SourceShape {
        shards,
        docs: total,
    };
    let didx = &spec.dest.index;
    let source_id = format!("{}/{}", src.name(), sidx);
    let mut prepared = Prepared {
        original_settings: OriginalSettings::default(),
        dest_was_empty: true,
        dest_index_uuid: None,
        // Engine mode: known once the copy opened its slices (the source's snapshot, not a
        // `_count` of another moment). Server mode: the source's `_count`, when reachable.
        total: if spec.mode() == CopyMode::Server {
            total
        } else {
            None
        },
        slices,
        summary: conn.summary.clone(),
        checkpoints: Vec::new(),
        catch_up: None,
        task: None,
        resumed: resume.is_some(),
    };
    let exists = dst.index_exists(didx).await.map_err(pre_dst)?;
    if !exists
        && create_destination(
            spec,
            conn,
            sink,
            &mut prepared,
            &resume,
            &source_desc,
            &source_id,
        )
        .await?
    {
        return Ok((prepared, shape));
    }
    let desc = dst.describe_index(didx).await.map_err(pre_dst)?;
    prepared.dest_index_uuid = desc.setting("index.uuid");
    let marker = read_marker(&desc).filter(|m| m.source == source_id);
    if let Some(r) = resume {
        if let (Some(was), Some(now)) = (&r.dest_index_uuid, &prepared.dest_index_uuid)
            && was != now
        {
            return Err(WorkflowError::DestinationReplaced(format!(
                "destination index `{didx}` was deleted and recreated during the copy (index UUID {was} is now {now}); documents copied before are gone, so the copy stops"
            )));
        }
        prepared.original_settings = r.original_settings;
        prepared.dest_was_empty = r.dest_was_empty;
        prepared.checkpoints = r.checkpoints;
        prepared.slices = resumed_slices(spec, prepared.slices, &prepared.checkpoints);
        prepared.catch_up = r.catch_up;
        prepared.task = r.task;
    } else if let Some(m) = marker {
        tracing::info!(index = %didx, "resuming an interrupted copy: using the settings recorded before it tuned the index");
        prepared.original_settings = m.original_settings;
        prepared.dest_was_empty = m.dest_was_empty;
        prepared.resumed = true;
    } else {
        let count = dst.count(didx, None).await.map_err(pre_dst)?;
        if count > 0 && spec.dest.allow_existing != Some(true) {
            return Err(WorkflowError::DestinationNotEmpty(format!(
                "destination index `{didx}` on {} already holds {count} documents; set spec.dest.allowExisting: true to write into it",
                dst.name()
            )));
        }
        prepared.original_settings = originals_of(&desc);
        prepared.dest_was_empty = count == 0;
    }
    sink.prepared(&prepared)
        .await
        .map_err(WorkflowError::Sink)?;
    let marker = Marker {
        original_settings: prepared.original_settings.clone(),
        dest_was_empty: prepared.dest_was_empty,
        source: source_id,
    };
    let during = "tuning the destination for bulk loading";
    // Serverless manages replicas and refresh: nothing to tune, so nothing to restore.
    if !conn.dest_info.is_serverless() {
        write_marker(dst, didx, Some(&marker))
            .await
            .map_err(|source| WorkflowError::Destination { during, source })?;
        dst.put_settings(didx, &tuned_settings())
            .await
            .map_err(|source| WorkflowError::Destination { during, source })?;
    }
    Ok((prepared, shape))
}

/// The slice count of a resumed copy whose spec says `slices` would start with `fresh`: the
/// count partitions the source, so checkpoints written with a count the copier chose (unset or
/// `auto`) are continued with it; an explicit `slices: N` wins (and starts over if it differs).
fn resumed_slices(
    spec: &RemoteReindexSpec,
    fresh: u32,
    checkpoints: &[crate::copy::SliceCheckpoint],
) -> u32 {
    match spec.source.slices {
        Some(Slices::Count(_)) => fresh,
        _ if checkpoints.is_empty() => fresh,
        _ => checkpoints.len() as u32,
    }
}

/// True when the mapping (typed or not) has `_source.enabled: false`.
fn source_disabled(mappings: &Value) -> bool {
    let off = |m: &Value| {
        m.get("_source")
            .and_then(|s| s.get("enabled"))
            .is_some_and(|e| e == &Value::Bool(false) || e == "false")
    };
    off(mappings) || mappings.as_object().is_some_and(|o| o.values().any(off))
}

/// Creates the destination index (absent at the existence check) and records the originals
/// first; `false` when someone else created it meanwhile (then it is taken as existing).
async fn create_destination<K: Sink>(
    spec: &RemoteReindexSpec,
    conn: &Connected,
    sink: &K,
    prepared: &mut Prepared,
    resume: &Option<Prepared>,
    source_desc: &crate::search::IndexDescription,
    source_id: &str,
) -> Result<bool, WorkflowError> {
    let (dst, didx) = (&conn.dest, &spec.dest.index);
    if let Some(r) = resume
        && (r.dest_index_uuid.is_some() || r.checkpoints.iter().any(|c| c.written > 0))
    {
        return Err(WorkflowError::DestinationReplaced(format!(
            "destination index `{didx}` was deleted during the copy; documents copied before are gone, so the copy stops"
        )));
    }
    prepared.original_settings = match &resume {
        Some(r) => r.original_settings.clone(),
        None => originals_from_user(spec.dest.settings.as_ref()),
    };
    sink.prepared(prepared).await.map_err(WorkflowError::Sink)?;
    let mut body = create_body(
        spec.dest.settings.as_ref(),
        spec.dest.mappings.as_ref(),
        source_desc,
        None,
    );
    if conn.dest_info.is_serverless() {
        super::serverless::untune(&mut body);
    }
    let during = "creating the destination index";
    match dst.create_index(didx, &body).await {
        Ok(_) => {}
        // Created by someone else since the existence check (another copy, a user, a writer
        // through an index template): it is checked as the existing index it now is.
        Err(SearchError::Api { kind, .. }) if kind == "resource_already_exists_exception" => {
            tracing::info!(index = %didx, "the destination index was created by someone else meanwhile; taking it as an existing index");
            return Ok(false);
        }
        Err(source) => return Err(WorkflowError::Destination { during, source }),
    }
    let marker = Marker {
        original_settings: prepared.original_settings.clone(),
        dest_was_empty: true,
        source: source_id.to_string(),
    };
    if !conn.dest_info.is_serverless() {
        write_marker(dst, didx, Some(&marker))
            .await
            .map_err(|source| WorkflowError::Destination { during, source })?;
    }
    prepared.dest_index_uuid = dst
        .describe_index(didx)
        .await
        .ok()
        .and_then(|d| d.setting("index.uuid"));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::SliceCheckpoint;

    fn spec(slices: Option<Slices>) -> RemoteReindexSpec {
        let mut s: RemoteReindexSpec = serde_json::from_value(serde_json::json!({
            "source": {"remote": {"host": "http://127.0.0.1:9200"}, "index": "a"},
            "dest": {"index": "b"}
        }))
        .unwrap();
        s.source.slices = slices;
        s
    }

    fn checkpoints(n: u32) -> Vec<SliceCheckpoint> {
        (0..n)
            .map(|id| SliceCheckpoint {
                id,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn a_resumed_copy_keeps_the_count_its_checkpoints_were_written_with() {
        // Chosen by measurement (4 slices across a WAN); today the measurement would say 1.
        assert_eq!(resumed_slices(&spec(None), 1, &checkpoints(4)), 4);
        let auto = Some(Slices::Auto(crate::api::units::AutoSlices::Auto));
        assert_eq!(resumed_slices(&spec(auto), 2, &checkpoints(5)), 5);
        // No checkpoints yet: decided afresh.
        assert_eq!(resumed_slices(&spec(None), 1, &[]), 1);
        // An explicit count wins.
        assert_eq!(
            resumed_slices(&spec(Some(Slices::Count(3))), 3, &checkpoints(4)),
            3
        );
    }
}
