//! A DNS resolver for the HTTP client that drops link-local and cloud metadata addresses (see
//! [`crate::policy::address`]) unless they are listed: the operator checks every host when a copy
//! starts, and this keeps a name that is re-pointed at `169.254.169.254` afterwards (DNS
//! rebinding) from being connected to.

use crate::net::is_link_local;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};

/// Resolves with the system resolver and keeps only addresses that are not link-local/metadata
/// or are in `allowed`.
#[derive(Clone, Debug)]
pub struct NoLinkLocal {
    /// Link-local/metadata addresses that may be used anyway (listed by a policy).
    pub allowed: Vec<IpAddr>,
}

impl NoLinkLocal {
    /// The addresses of `resolved` that may be connected to.
    pub fn keep(&self, resolved: impl IntoIterator<Item = SocketAddr>) -> Vec<SocketAddr> {
        resolved
            .into_iter()
            .filter(|a| !is_link_local(a.ip()) || self.allowed.contains(&a.ip()))
            .collect()
    }
}

impl Resolve for NoLinkLocal {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = this.keep(resolved);
            if kept.is_empty() {
                return Err(format!(
                    "{host} resolves only to link-local or cloud metadata addresses, which are not allowed"
                )
                .into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_addresses_are_dropped_unless_allowed() {
        let resolved: Vec<SocketAddr> = ["10.0.0.7:0", "169.254.169.254:0", "[fd00:ec2::254]:0"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let r = NoLinkLocal { allowed: vec![] };
        assert_eq!(r.keep(resolved.clone()), vec![resolved[0]]);
        let r = NoLinkLocal {
            allowed: vec!["169.254.169.254".parse().unwrap()],
        };
        assert_eq!(r.keep(resolved.clone()), resolved[..2].to_vec());
    }

    #[tokio::test]
    async fn loopback_names_still_resolve() {
        let r = NoLinkLocal { allowed: vec![] };
        let addrs: Vec<SocketAddr> = r
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
