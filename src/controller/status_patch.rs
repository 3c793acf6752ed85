//! Writing `.status` of any of the operator's resources ([`crate::api::RemoteReindex`],
//! [`crate::api::Migration`]): a typed merge patch (`crate::api::patch`) of the status
//! subresource, refused unsent once this replica's leadership budget is spent and, with a
//! `resourceVersion`, refused by the API server (409) when anyone else wrote since.

use super::error::ReconcileError;
use super::leader::Leadership;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use std::time::Duration;

/// Writes `status` as the leader: refused unsent (`NotLeader`) once this replica may not write,
/// otherwise [`patch_status`] with the replica as field manager.
pub async fn fenced_patch_status<K, P>(
    leadership: &Leadership,
    api: &Api<K>,
    name: &str,
    status: &P,
    resource_version: Option<&str>,
) -> Result<K, ReconcileError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    P: Serialize + std::fmt::Debug,
{
    leadership.check().map_err(|why| {
        tracing::error!(name, reason = %why, "refusing to write the status: this replica is no longer the leader");
        ReconcileError::NotLeader(why)
    })?;
    Ok(patch_status(api, name, status, resource_version, leadership.identity()).await?)
}

/// The body of a status merge patch: the status fields, and the version it applies to.
#[derive(Debug, Serialize)]
struct StatusBody<'a, P> {
    status: &'a P,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<VersionOnly<'a>>,
}

/// `metadata.resourceVersion` alone.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionOnly<'a> {
    resource_version: &'a str,
}

/// Merge-patches `.status` of `name` with `status` (a typed patch of the resource's status),
/// retrying transient API errors (not 4xx) a few times. With `resource_version` the patch
/// applies only to that version (a 409 otherwise, not retried); `manager` names the field
/// manager (default: the client's user agent).
pub async fn patch_status<K, P>(
    api: &Api<K>,
    name: &str,
    status: &P,
    resource_version: Option<&str>,
    manager: Option<&str>,
) -> Result<K, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    P: Serialize + std::fmt::Debug,
{
    let params = PatchParams {
        field_manager: manager.map(str::to_string),
        ..Default::default()
    };
    let body = StatusBody {
        status,
        metadata: resource_version.map(|rv| VersionOnly {
            resource_version: rv,
        }),
    };
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match api.patch_status(name, &params, &Patch::Merge(&body)).await {
            Ok(obj) => return Ok(obj),
            Err(e) if resource_version.is_some() && is_conflict(&e) => return Err(e),
            Err(e) if attempt < 5 && is_transient(&e) => {
                tracing::warn!(name, error = %e, "status patch failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether an API error may go away by itself (not a 4xx other than 409/429).
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429 || s.code == 409,
        _ => true,
    }
}

/// Whether the API server refused a write because the object changed (409).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// A one-line description of an API error (kube's `Display` of a `Status` is verbose).
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!(
            "the API server answered {} {}: {}",
            s.code, s.reason, s.message
        ),
        e => e.to_string(),
    }
}
