//! Secrets and ConfigMaps read from the API server, in the resource's own namespace only.

use crate::workflow::{ConfigKind, SecretSource};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use std::collections::BTreeMap;

/// A [`SecretSource`] that reads from the API server on every call, so that a Secret created
/// after the resource is picked up by the workflow's pre-flight retries. Values are never logged.
#[derive(Clone)]
pub struct KubeSecrets {
    client: Client,
    namespace: String,
}

impl KubeSecrets {
    /// Reads objects in `namespace` (the resource's namespace).
    pub fn new(client: Client, namespace: impl Into<String>) -> Self {
        KubeSecrets {
            client,
            namespace: namespace.into(),
        }
    }
}

impl SecretSource for KubeSecrets {
    async fn get(
        &self,
        kind: ConfigKind,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        match kind {
            ConfigKind::Secret => {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
                let s = api.get_opt(name).await.map_err(|e| e.to_string())?;
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
                let c = api.get_opt(name).await.map_err(|e| e.to_string())?;
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
