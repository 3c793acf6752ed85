//! `StatusWriter`: the single writer of one resource's `.status` while its copy task runs.
//! Every write is a merge patch of the status subresource; conditions are kept here (the task
//! is the only writer) so `lastTransitionTime` stays stable.

use super::context::Context;
use super::registry::Entry;
use super::status::apply_phase;
use crate::api::{Phase, RemoteReindex};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Patches one resource's status and records its Events.
pub struct StatusWriter {
    /// Shared controller state.
    pub ctx: Arc<Context>,
    /// The registry entry of this copy (for `observedGeneration`).
    pub entry: Arc<Entry>,
    api: Api<RemoteReindex>,
    name: String,
    reference: ObjectReference,
    conditions: Mutex<Vec<Condition>>,
}

impl StatusWriter {
    /// A writer for `obj`, starting from its current conditions.
    pub fn new(ctx: Arc<Context>, entry: Arc<Entry>, obj: &RemoteReindex) -> Self {
        let ns = obj.namespace().unwrap_or_default();
        StatusWriter {
            api: Api::namespaced(ctx.client.clone(), &ns),
            name: obj.name_any(),
            reference: obj.object_ref(&()),
            conditions: Mutex::new(
                obj.status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default(),
            ),
            ctx,
            entry,
        }
    }

    /// The resource's namespace and name.
    pub fn resource(&self) -> (&str, &str) {
        (
            self.reference.namespace.as_deref().unwrap_or_default(),
            &self.name,
        )
    }

    /// The generation to report.
    pub fn generation(&self) -> i64 {
        self.entry.generation()
    }

    /// Merge-patches `.status` with `status`, retrying transient API errors a few times.
    pub async fn patch(&self, status: Value) -> Result<(), kube::Error> {
        patch_status(&self.api, &self.name, status).await
    }

    /// Updates the conditions for `phase` and returns them as JSON for a patch.
    pub fn conditions_for(&self, phase: Phase, reason: &str, message: &str) -> Value {
        let mut cs = self.conditions.lock().unwrap_or_else(|p| p.into_inner());
        apply_phase(&mut cs, phase, reason, message, Some(self.generation()));
        serde_json::to_value(&*cs).unwrap_or(Value::Null)
    }

    /// Sets one more condition (`Synced`, `CutOver`) and returns all conditions as JSON.
    pub fn condition(&self, type_: &str, status: bool, reason: &str, message: &str) -> Value {
        let mut cs = self.conditions.lock().unwrap_or_else(|p| p.into_inner());
        super::status::set_condition(
            &mut cs,
            type_,
            status,
            reason,
            message,
            Some(self.generation()),
        );
        serde_json::to_value(&*cs).unwrap_or(Value::Null)
    }

    /// Enters a phase: patches `phase`, `observedGeneration` and conditions (plus `extra`
    /// fields), then records an Event.
    pub async fn phase(
        &self,
        phase: Phase,
        reason: &str,
        message: &str,
        extra: Value,
    ) -> Result<(), kube::Error> {
        let mut status = json!({
            "phase": phase,
            "observedGeneration": self.generation(),
            "conditions": self.conditions_for(phase, reason, message),
        });
        merge(&mut status, extra);
        self.patch(status).await?;
        let type_ = if phase == Phase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.event(type_, reason, message).await;
        Ok(())
    }

    /// Records an Event about this resource.
    pub async fn event(&self, type_: EventType, reason: &str, note: &str) {
        self.ctx.event(&self.reference, type_, reason, note).await;
    }
}

/// Merge-patches `.status` of `name`, retrying transient API errors (not 4xx) a few times.
pub async fn patch_status(
    api: &Api<RemoteReindex>,
    name: &str,
    status: Value,
) -> Result<(), kube::Error> {
    let body = json!({ "status": status });
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => return Ok(()),
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

/// A one-line description of an API error (kube's `Display` of a `Status` is verbose).
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!(
            "the API server answered {} {}: {}",
            s.code, s.reason, s.message
        ),
        e => e.to_string(),
    }
}

/// Whether an API error means the object is gone.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Shallow merge of `extra`'s keys into `base` (both objects).
fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
}
