//! Secrets and ConfigMaps read from the API server, in the resource's own namespace only. A
//! Secret is used only when it carries the label `reindex.dev/use: "true"`, unless a
//! `ReindexPolicy` waives it: a namespace user cannot make the operator send an arbitrary Secret
//! (a ServiceAccount token, say) to a host.

use crate::policy::SECRET_LABEL;
use crate::workflow::{ConfigKind, SecretError, SecretSource};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use std::collections::BTreeMap;

/// A [`SecretSource`] that reads from the API server on every call, so that a Secret created
/// after the resource is picked up by the workflow's pre-flight retries. Values are never logged.
#[derive(Clone)]
pub struct KubeSecrets {
    client: Client,
    namespace: String,
    /// `Some(who requires it)` when Secrets must carry the label.
    require_label: Option<String>,
}

impl KubeSecrets {
    /// Reads objects in `namespace` (the resource's namespace); Secrets need the label.
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        KubeSecrets {
            client,
            namespace: namespace.into(),
            require_label: Some("the default".into()),
        }
    }

    /// Sets whether Secrets need the label (`Some(who requires it)`) or not (`None`, waived).
    pub fn requiring_label(mut self, by: Option<String>) -> Self {
        self.require_label = by;
        self
    }
}

impl SecretSource for KubeSecrets {
    async fn get(
        &self,
        kind: ConfigKind,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, SecretError> {
        let unreadable = |e: kube::Error| SecretError::Unreadable(e.to_string());
        match kind {
            ConfigKind::Secret => {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
                let s = api.get_opt(name).await.map_err(unreadable)?;
                if let (Some(s), Some(by)) = (&s, &self.require_label)
                    && s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(SECRET_LABEL))
                        .map(String::as_str)
                        != Some("true")
                {
                    return Err(SecretError::NotLabelled(by.clone()));
                }
                Ok(s.map(|s| {
                    let mut data: BTreeMap<String, Vec<u8>> = s
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    // `stringData` is write-only on a real server; honour it if a client sent it back.
                    for (k, v) in s.string_data.unwrap_or_default() {
                        data.entry(k).or_insert_with(|| v.into_bytes());
                    }
                    data
                }))
            }
            ConfigKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
                let c = api.get_opt(name).await.map_err(unreadable)?;
                Ok(c.map(|c| {
                    let mut data: BTreeMap<String, Vec<u8>> = c
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes()))
                        .collect();
                    for (k, v) in c.binary_data.unwrap_or_default() {
                        data.entry(k).or_insert(v.0);
                    }
                    data
                }))
            }
        }
    }
}
