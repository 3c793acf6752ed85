//! What every reconcile shares: the client, the event recorder, the registry of running copies,
//! the operator's policy and metrics.

use super::metrics::Metrics;
use super::policy::Policies;
use super::reindex::registry::Registry;
use crate::api::Endpoint;
use crate::api::validate::Policy;
use crate::policy::Decision;
use crate::workflow::Settings;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};

/// Shared state of the controller.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes events.k8s.io Events.
    pub recorder: Recorder,
    /// Copies by resource UID.
    pub registry: Registry,
    /// The destination used when `spec.dest.remote` is absent (`--dest-host`).
    pub dest_default: Option<Endpoint>,
    /// The `ReindexPolicy` resources and the operator-wide limits, evaluated at each copy's start.
    pub policies: Policies,
    /// `User-Agent` for search requests.
    pub user_agent: Option<String>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Whether this process may write now (leader election's budget); checked before every
    /// status write.
    pub leadership: std::sync::Arc<super::leader::Leadership>,
    /// Scale-out (`--scale-out`): copies' slices go to every replica's worker through Leases.
    pub scale: Option<std::sync::Arc<dyn ScaleOut>>,
}

/// Scale-out as the reconcilers use it (implemented in [`super::scale`]; a trait, so that the
/// Context does not depend on the scale-out module, whose workers run on the Context).
pub trait ScaleOut: Send + Sync {
    /// The copy step for `obj`: its slices go to the workers through Leases.
    fn runner(
        &self,
        obj: &crate::api::RemoteReindex,
    ) -> std::sync::Arc<dyn crate::workflow::SliceRunner>;

    /// Deletes the slice Leases of the copy `uid` in `namespace`, whoever planned them (best
    /// effort: the workers' next renewal fails and they stop).
    fn delete_slice_leases<'a>(
        &'a self,
        namespace: &'a str,
        uid: &'a str,
    ) -> futures::future::BoxFuture<'a, ()>;
}

/// A copy the tenant policy allowed, with what it may use: the policy's decision, the Secrets
/// it may read (those with the policy's label, when it requires one) and its workflow settings.
pub struct Admitted {
    /// The policy's decision (rate ceiling, allowed link-local addresses, …).
    pub decision: Decision,
    /// The copy's namespace's Secrets, as the policy allows reading them.
    pub secrets: super::secrets::KubeSecrets,
    /// Workflow settings for the copy.
    pub settings: Settings,
}

impl Context {
    /// Admits the copy `spec` in `namespace`: the tenant policy first (before anything connects
    /// to a search cluster), then the Secrets it may read and its workflow settings.
    pub async fn admit(
        &self,
        namespace: &str,
        spec: &crate::api::RemoteReindexSpec,
    ) -> Result<Admitted, crate::policy::Refusal> {
        let decision = self
            .policies
            .evaluate(&self.client, namespace, spec, self.dest_default.as_ref())
            .await?;
        let secrets = super::secrets::KubeSecrets::new(self.client.clone(), namespace)
            .requiring_label(decision.secret_label.clone());
        let settings = self.settings(namespace, &decision);
        Ok(Admitted {
            decision,
            secrets,
            settings,
        })
    }

    /// Runs `work`, one reconcile of `obj` (a `kind`), in a `reconcile` span naming it
    /// (namespace, name, generation), counted in `reconciliations_total` and timed in
    /// `reconcile_duration_seconds`.
    pub async fn reconcile_traced<T>(
        &self,
        kind: &'static str,
        obj: &impl kube::ResourceExt,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "reconcile",
            kind,
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            generation = obj.meta().generation.unwrap_or(0)
        );
        let _timer = self.metrics.reconcile_timer();
        work.instrument(span).await
    }

    /// Workflow settings for a resource in `namespace` that `decision` allowed (hosts were
    /// checked by the policy, so validation does not check them again).
    pub fn settings(&self, namespace: &str, decision: &Decision) -> Settings {
        Settings {
            dest_default: self.dest_default.clone(),
            policy: Policy {
                allow_system_indices: decision.allow_system_indices,
            },
            namespace: namespace.to_string(),
            user_agent: self.user_agent.clone(),
            link_local_allowed: Some(decision.allowed_link_local.clone()),
            // 5 minutes; refused credentials are retried (a rotated Secret is picked up).
            preflight: crate::workflow::PreflightSettings::default(),
            // The leader's requests are fenced by its leadership and name the replica.
            fence: self
                .leadership
                .identity()
                .map(|_| self.leadership.clone() as std::sync::Arc<dyn crate::search::Fence>),
            opaque_id: self.leadership.identity().map(str::to_string),
        }
    }

    /// Publishes an Event; failures are logged, never fatal.
    pub async fn event(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: crate::api::Reason,
        note: &str,
    ) {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, 1000)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, reference).await {
            tracing::warn!(error = %e, %reason, "could not publish an Event");
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(super::truncate("abc", 10), "abc");
        let t = super::truncate(&"é".repeat(600), 1000);
        assert!(t.len() <= 1000 && t.ends_with("..."));
    }
}
