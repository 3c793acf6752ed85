//! Link-local and cloud metadata addresses, refused after DNS resolution: a host name that
//! resolves to `169.254.169.254` would otherwise hand the operator's instance credentials to
//! whoever named it. [`check_addresses`] is the pure rule; [`check_hosts`] is the resolver step.

use super::{Decision, Refusal};
use crate::api::Reason;
use crate::net::is_link_local;
use std::net::IpAddr;

/// The first of `addrs` that is link-local/metadata and not in `allowed`.
pub fn check_addresses(addrs: &[IpAddr], allowed: &[IpAddr]) -> Result<(), IpAddr> {
    match addrs
        .iter()
        .find(|a| is_link_local(**a) && !allowed.contains(a))
    {
        Some(a) => Err(*a),
        None => Ok(()),
    }
}

/// The addresses `host` resolves to (an IP literal is itself).
pub async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    Ok(tokio::net::lookup_host((host, port))
        .await?
        .map(|s| s.ip())
        .collect())
}

/// Resolves every host the copy connects to and refuses a link-local/metadata address that no
/// policy lists. A name that does not resolve is left to the copy's pre-flight (it cannot be
/// connected to either).
pub async fn check_hosts(decision: &Decision) -> Result<(), Refusal> {
    for (field, host, port) in &decision.connect_to {
        let addrs = match resolve(host, *port).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(%host, error = %e, "not resolvable at the policy check");
                continue;
            }
        };
        if let Err(ip) = check_addresses(&addrs, &decision.allowed_link_local) {
            return Err(Refusal {
                reason: Reason::LinkLocalNotAllowed,
                field: field.clone(),
                message: format!(
                    "{host} resolves to {ip}, a link-local or cloud metadata address; list it in allowedLinkLocalIPs to allow it"
                ),
                by: decision.link_local_by.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(s: &[&str]) -> Vec<IpAddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn metadata_and_link_local_addresses_are_recognised() {
        for a in [
            "169.254.169.254",
            "169.254.0.1",
            "169.254.255.255",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_link_local(a.parse().unwrap()), "{a}");
        }
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "169.253.255.255",
            "169.255.0.1",
            "::1",
            "fd00:ec3::253",
            "fec0::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_link_local(a.parse().unwrap()), "{a}");
        }
    }

    /// Issue 22, IPv4: link-local 169.254.0.0/16 and Alibaba Cloud's metadata address
    /// 100.100.100.200 (outside link-local, so it needs its own entry); its neighbours are not.
    #[test]
    fn ipv4_metadata_addresses_include_alibaba_cloud() {
        for a in [
            "169.254.169.254",
            "169.254.0.0",
            "100.100.100.200",
            "::ffff:100.100.100.200",
        ] {
            assert!(is_link_local(a.parse().unwrap()), "{a} must be refused");
        }
        for a in ["100.100.100.199", "100.100.100.201", "100.64.0.1"] {
            assert!(!is_link_local(a.parse().unwrap()), "{a} must be allowed");
        }
        assert_eq!(
            check_addresses(&ips(&["10.0.0.1", "100.100.100.200"]), &[]),
            Err("100.100.100.200".parse().unwrap())
        );
    }

    /// Issue 22, IPv6: all of AWS's `fd00:ec2::/32` (not only `fd00:ec2::254`) and `fe80::/10`.
    #[test]
    fn ipv6_metadata_addresses_are_all_of_fd00_ec2_slash_32() {
        for a in [
            "fd00:ec2::254",
            "fd00:ec2::253",
            "fd00:ec2::1",
            "fd00:ec2:ffff:ffff:ffff:ffff:ffff:ffff",
            "fd00:ec2:1::23",
            "fe80::1",
            "febf:ffff::1",
        ] {
            assert!(is_link_local(a.parse().unwrap()), "{a} must be refused");
        }
        for a in ["fd00:ec3::254", "fd00:ec1:ffff::1", "fd00::254", "fec0::1"] {
            assert!(!is_link_local(a.parse().unwrap()), "{a} must be allowed");
        }
        assert_eq!(
            check_addresses(&ips(&["fd12::1", "fd00:ec2::23"]), &[]),
            Err("fd00:ec2::23".parse().unwrap())
        );
    }

    #[test]
    fn any_metadata_address_among_the_resolved_ones_is_refused() {
        // A name resolving to a harmless address and to the metadata endpoint is refused.
        let resolved = ips(&["10.1.2.3", "169.254.169.254"]);
        assert_eq!(
            check_addresses(&resolved, &[]),
            Err("169.254.169.254".parse().unwrap())
        );
        assert_eq!(check_addresses(&ips(&["10.1.2.3", "::1"]), &[]), Ok(()));
        assert_eq!(
            check_addresses(&ips(&["fd00:ec2::254"]), &ips(&["169.254.169.254"])),
            Err("fd00:ec2::254".parse().unwrap())
        );
    }

    #[test]
    fn only_the_listed_ip_is_allowed() {
        let allowed = ips(&["169.254.10.20"]);
        assert_eq!(check_addresses(&ips(&["169.254.10.20"]), &allowed), Ok(()));
        assert_eq!(
            check_addresses(&ips(&["169.254.10.20", "169.254.10.21"]), &allowed),
            Err("169.254.10.21".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn the_resolver_step_refuses_a_literal_metadata_address_without_connecting() {
        // An IP literal is not looked up; a loopback name resolves locally.
        let d = Decision {
            connect_to: vec![
                ("spec.source.remote.host".into(), "localhost".into(), 9200),
                (
                    "spec.source.remote.proxy.url".into(),
                    "169.254.169.254".into(),
                    80,
                ),
            ],
            link_local_by: "the default".into(),
            ..Default::default()
        };
        let r = check_hosts(&d).await.unwrap_err();
        assert_eq!(r.reason, "LinkLocalNotAllowed");
        assert_eq!(r.field, "spec.source.remote.proxy.url");
        let allowed = Decision {
            allowed_link_local: ips(&["169.254.169.254"]),
            ..d
        };
        assert_eq!(check_hosts(&allowed).await, Ok(()));
    }
}
