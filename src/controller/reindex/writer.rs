//! `StatusWriter`: the single writer of one resource's `.status` while its copy task runs.
//! Every write is a merge patch of the status subresource; conditions are kept here (the task
//! is the only writer) so `lastTransitionTime` stays stable.
//!
//! Writes are fenced: each is refused locally once this process's leadership budget is spent,
//! and each carries the `resourceVersion` this writer last saw, so that the API server refuses
//! it (409) when anyone else wrote since. On a conflict the writer re-reads the object; if it is
//! still the leader it writes again on the fresh version, otherwise it stops its copy.

use super::registry::Entry;
use super::status::{apply_phase, apply_retrying};
use crate::api::Reason;
use crate::api::{Change, Phase, RemoteReindex, RemoteReindexStatusPatch};
use crate::controller::context::Context;
use crate::controller::status_patch::{is_conflict, kube_message, patch_status};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::sync::{Arc, Mutex};

/// Why a status write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The API server refused or failed the request.
    #[error("{}", kube_message(.0))]
    Kube(#[from] kube::Error),
    /// This process is no longer the leader: it must not write.
    #[error("refused to write the status: {0}")]
    NotLeader(String),
}

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
    /// The object's `resourceVersion` after this writer's last write (or as first seen).
    resource_version: Mutex<Option<String>>,
    /// Serialises writes, so that each carries the version the previous one produced.
    writing: tokio::sync::Mutex<()>,
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
            resource_version: Mutex::new(obj.metadata.resource_version.clone()),
            writing: tokio::sync::Mutex::new(()),
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

    /// Merge-patches `.status` with `status` on the version last seen, retrying transient API
    /// errors a few times; fenced as the module doc says.
    pub async fn patch(&self, status: &RemoteReindexStatusPatch) -> Result<(), WriteError> {
        let _one_at_a_time = self.writing.lock().await;
        let mut conflicts = 0;
        loop {
            self.leader()?;
            let rv = self
                .resource_version
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let manager = self.ctx.leadership.identity();
            match patch_status(&self.api, &self.name, status, rv.as_deref(), manager).await {
                Ok(obj) => {
                    self.seen(obj.metadata.resource_version);
                    return Ok(());
                }
                Err(e) if is_conflict(&e) && conflicts < 5 => {
                    conflicts += 1;
                    let fresh = self.api.get_status(&self.name).await?;
                    tracing::info!(name = %self.name, was = ?rv, now = ?fresh.metadata.resource_version, "status changed since this writer's last write; checking leadership before writing again");
                    self.seen(fresh.metadata.resource_version);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `Err` when this process may not write any more; then its copy is asked to stop.
    fn leader(&self) -> Result<(), WriteError> {
        self.ctx.leadership.check().map_err(|why| {
            tracing::error!(name = %self.name, reason = %why, "refusing to write the status: this replica is no longer the leader; stopping its copy");
            self.entry.stop.request(crate::copy::StopMode::Shutdown);
            WriteError::NotLeader(why)
        })
    }

    fn seen(&self, rv: Option<String>) {
        if rv.is_some() {
            *self
                .resource_version
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = rv;
        }
    }

    /// Updates the conditions for `phase` and returns them all, for a patch.
    pub fn conditions_for(&self, phase: Phase, reason: Reason, message: &str) -> Vec<Condition> {
        let mut cs = self.conditions.lock().unwrap_or_else(|p| p.into_inner());
        apply_phase(&mut cs, phase, reason, message, Some(self.generation()));
        cs.clone()
    }

    /// Sets one more condition (`Synced`, `CutOver`) and returns them all, for a patch.
    pub fn condition(
        &self,
        type_: &str,
        status: bool,
        reason: Reason,
        message: &str,
    ) -> Vec<Condition> {
        self.set_condition(type_, status, reason, message);
        self.conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `phase`, `observedGeneration` and the conditions for entering `phase`.
    pub fn phase_patch(
        &self,
        phase: Phase,
        reason: Reason,
        message: &str,
    ) -> RemoteReindexStatusPatch {
        RemoteReindexStatusPatch {
            phase: Change::Set(phase),
            observed_generation: Change::Set(self.generation()),
            conditions: Change::Set(self.conditions_for(phase, reason, message)),
            ..Default::default()
        }
    }

    /// Sets one more condition (e.g. `Verified`) in the list the next phase patch writes.
    pub fn set_condition(&self, type_: &str, status: bool, reason: Reason, message: &str) {
        let mut cs = self.conditions.lock().unwrap_or_else(|p| p.into_inner());
        super::status::set_condition(
            &mut cs,
            type_,
            status,
            reason,
            message,
            Some(self.generation()),
        );
    }

    /// Whether condition `type_` is there with `status`.
    pub fn has_condition(&self, type_: &str, status: bool) -> bool {
        let want = if status { "True" } else { "False" };
        self.conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|c| c.type_ == type_ && c.status == want)
    }

    /// Sets one condition and writes the conditions at once (a reconcile telling what of an
    /// edit the running copy applies), through this writer so the task's next patches keep it.
    pub async fn note(
        &self,
        type_: &str,
        status: bool,
        reason: Reason,
        message: &str,
    ) -> Result<(), WriteError> {
        let conditions = self.condition(type_, status, reason, message);
        self.patch(&RemoteReindexStatusPatch {
            conditions: Change::Set(conditions),
            ..Default::default()
        })
        .await
    }

    /// Enters a phase: patches `phase`, `observedGeneration` and conditions (plus the other
    /// fields of `extra`), then records an Event.
    pub async fn phase(
        &self,
        phase: Phase,
        reason: Reason,
        message: &str,
        extra: RemoteReindexStatusPatch,
    ) -> Result<(), WriteError> {
        let entered = self.phase_patch(phase, reason, message);
        let status = RemoteReindexStatusPatch {
            phase: entered.phase,
            observed_generation: entered.observed_generation,
            conditions: entered.conditions,
            ..extra
        };
        self.patch(&status).await?;
        let type_ = if phase == Phase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.event(type_, reason, message).await;
        Ok(())
    }

    /// Pre-flight failed and is retried: phase `Pending` with the failure's reason in the
    /// conditions (see [`apply_retrying`]). No Event: the caller decides when one is new.
    pub async fn retrying(&self, reason: Reason, message: &str) -> Result<(), WriteError> {
        let conditions = {
            let mut cs = self.conditions.lock().unwrap_or_else(|p| p.into_inner());
            apply_retrying(&mut cs, reason, message, Some(self.generation()));
            cs.clone()
        };
        self.patch(&RemoteReindexStatusPatch {
            phase: Change::Set(Phase::Pending),
            observed_generation: Change::Set(self.generation()),
            conditions: Change::Set(conditions),
            ..Default::default()
        })
        .await
    }

    /// Records an Event about this resource.
    pub async fn event(&self, type_: EventType, reason: Reason, note: &str) {
        self.ctx.event(&self.reference, type_, reason, note).await;
    }
}

/// A one-line description of a failed write.
pub fn api_message(e: &WriteError) -> String {
    e.to_string()
}

/// Whether a write failed because the object is gone.
pub fn is_not_found(e: &WriteError) -> bool {
    matches!(e, WriteError::Kube(kube::Error::Api(s)) if s.code == 404)
}

impl super::registry::RunningConditions for StatusWriter {
    fn has_condition(&self, type_: &str, status: bool) -> bool {
        StatusWriter::has_condition(self, type_, status)
    }

    fn note<'a>(
        &'a self,
        type_: &'a str,
        status: bool,
        reason: Reason,
        message: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            StatusWriter::note(self, type_, status, reason, message)
                .await
                .map_err(|e| api_message(&e))
        })
    }
}
