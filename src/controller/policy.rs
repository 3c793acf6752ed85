//! The `ReindexPolicy` resources, kept in a reflector store, and their evaluation when a copy
//! starts: select the policies whose `namespaceSelector` matches the namespace's labels, combine
//! them with the operator's flags ([`crate::policy::Effective`]), check the spec, then resolve
//! the hosts and refuse link-local/metadata addresses. Nothing connects to a search cluster
//! before this has passed; a policy change applies to copies that start afterwards.

use crate::api::Reason;
use crate::api::{Endpoint, ReindexPolicy, RemoteReindexSpec};
use crate::policy::{Decision, DestName, Effective, OperatorLimits, Refusal, address};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::{Selector, SelectorExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a copy waits for the first list of policies before it is refused.
const READY_WAIT: Duration = Duration::from_secs(30);

/// The operator's view of the `ReindexPolicy` resources.
#[derive(Clone)]
pub struct Policies {
    store: Store<ReindexPolicy>,
    limits: OperatorLimits,
}

impl Policies {
    /// Starts watching `ReindexPolicy` resources (cluster-wide) until `stop`. Every change is
    /// logged at info with its `resourceVersion`.
    pub fn watch(client: Client, limits: OperatorLimits, stop: CancellationToken) -> Policies {
        let api: Api<ReindexPolicy> = Api::all(client);
        let (store, writer) = reflector::store();
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .reflect(writer);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream.take_until(stop.cancelled_owned()));
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                        tracing::info!(policy = %p.name_any(), resource_version = %p.resource_version().unwrap_or_default(), "ReindexPolicy observed; it applies to copies that start from now on")
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        tracing::info!(policy = %p.name_any(), "ReindexPolicy deleted")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch ReindexPolicy resources (is crds/reindexpolicy.yaml applied, and may the operator list them?); copies wait, then are refused")
                    }
                }
            }
        });
        Policies { store, limits }
    }

    /// The store, for readiness.
    pub fn store(&self) -> Store<ReindexPolicy> {
        self.store.clone()
    }

    /// Evaluates `spec` in namespace `ns` (its destination defaults to `dest_default`): the
    /// policies that select the namespace, the spec check, then the DNS step.
    pub async fn evaluate(
        &self,
        client: &Client,
        ns: &str,
        spec: &RemoteReindexSpec,
        dest_default: Option<&Endpoint>,
    ) -> Result<Decision, Refusal> {
        self.evaluate_all(client, ns, std::slice::from_ref(spec), &[], dest_default)
            .await
    }

    /// [`Policies::evaluate`] for several specs at once (a Migration's children, each with its
    /// own destination index and overrides) and the other names the caller will write on the
    /// destination (`names`: a Migration's templates and aliases), all against one reading of
    /// the policies. Returns the first spec's decision (the children share their endpoints).
    pub async fn evaluate_all(
        &self,
        client: &Client,
        ns: &str,
        specs: &[RemoteReindexSpec],
        names: &[DestName],
        dest_default: Option<&Endpoint>,
    ) -> Result<Decision, Refusal> {
        let effective = self.effective(client, ns).await?;
        let mut first: Option<Decision> = None;
        let mut resolved: Vec<Vec<(String, String, u16)>> = Vec::new();
        for spec in specs {
            let decision = effective.check(spec, dest_default)?;
            if !resolved.contains(&decision.connect_to) {
                address::check_hosts(&decision).await?;
                resolved.push(decision.connect_to.clone());
            }
            first.get_or_insert(decision);
        }
        effective.check_dest_names(names)?;
        let decision = first.unwrap_or_default();
        tracing::info!(namespace = %ns, policies = ?effective.policies, specs = specs.len(), names = names.len(), "the copy is allowed by the operator's policy");
        Ok(decision)
    }

    /// The combined policy of namespace `ns`: the operator's flags and the policies that
    /// select it.
    async fn effective(&self, client: &Client, ns: &str) -> Result<Effective, Refusal> {
        let unavailable = |message: String| Refusal {
            reason: Reason::PolicyUnavailable,
            field: "metadata.namespace".into(),
            message,
            by: "the operator (it refuses what it cannot check)".into(),
        };
        if tokio::time::timeout(READY_WAIT, self.store.wait_until_ready())
            .await
            .map_or(true, |r| r.is_err())
        {
            return Err(unavailable(
                "ReindexPolicy resources could not be listed; see the operator's log".into(),
            ));
        }
        let labels = Api::<Namespace>::all(client.clone())
            .get(ns)
            .await
            .map_err(|e| unavailable(format!("cannot read the labels of namespace `{ns}`: {e}")))?
            .metadata
            .labels
            .unwrap_or_default();
        let mut selected = Vec::new();
        let mut policies = self.store.state();
        policies.sort_by_key(|p| p.name_any());
        for p in policies {
            let selector: Selector = match p
                .spec
                .namespace_selector
                .clone()
                .unwrap_or_default()
                .try_into()
            {
                Ok(s) => s,
                Err(e) => {
                    return Err(Refusal {
                        reason: Reason::PolicyInvalid,
                        field: "metadata.namespace".into(),
                        message: format!(
                            "the policy's namespaceSelector is invalid ({e}), so the operator cannot tell whether it applies"
                        ),
                        by: format!("ReindexPolicy/{} spec.namespaceSelector", p.name_any()),
                    });
                }
            };
            if selector.matches(&labels) {
                selected.push((p.name_any(), p.spec.clone()));
            }
        }
        Ok(Effective::new(ns, &self.limits, &selected))
    }
}
