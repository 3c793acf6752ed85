//! Address and URL helpers shared by the layers that must not import each other (`api`
//! validation, the `search` client and `policy`).

use std::net::{IpAddr, Ipv4Addr};
use url::Url;

/// `host:port` of a URL, with the scheme's default port filled in.
pub fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Whether `url` names a host on a fast local network: a literal loopback, private (RFC 1918,
/// IPv6 unique-local) or link-local address, `localhost`, or an in-cluster Service name
/// (`*.svc`, `*.cluster.local`). Response compression is off by default there: inflating
/// gzip'd scroll pages costs the copier, and compressing them the source, more CPU than the
/// network time it saves.
pub fn is_local_network(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => {
            let first = ip.segments()[0];
            ip.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
                || d.ends_with(".localhost")
                || d.ends_with(".svc")
                || d.ends_with(".cluster.local")
        }
        None => false,
    }
}

/// Alibaba Cloud's instance metadata address (outside link-local).
const ALIBABA_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);

/// Whether `ip` is link-local or a cloud metadata address: `169.254.0.0/16` and Alibaba
/// Cloud's `100.100.100.200` (also as IPv4-mapped IPv6 addresses), `fe80::/10`, and all of
/// AWS's `fd00:ec2::/32` (its IPv6 instance metadata, DNS and time endpoints, the EKS Pod
/// Identity agent).
pub fn is_link_local(ip: IpAddr) -> bool {
    let v4 = |a: Ipv4Addr| a.is_link_local() || a == ALIBABA_METADATA;
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            if let Some(m) = a.to_ipv4_mapped() {
                return v4(m);
            }
            let s = a.segments();
            (s[0] == 0xfd00 && s[1] == 0x0ec2) || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_networks_are_loopback_private_and_in_cluster_names() {
        for local in [
            "http://127.0.0.1:9200",
            "http://10.1.2.3:9200",
            "http://192.168.0.5",
            "http://172.20.0.1",
            "http://[::1]:9200",
            "http://[fd12::1]:9200",
            "http://localhost:9200",
            "https://es-http.search.svc:9200",
            "https://es.search.svc.cluster.local",
        ] {
            assert!(is_local_network(&Url::parse(local).unwrap()), "{local}");
        }
        for remote in [
            "https://search-x.eu-west-1.es.amazonaws.com",
            "http://8.8.8.8:9200",
            "http://172.32.0.1",
            "http://[2001:db8::1]",
            "https://svc.example.com",
        ] {
            assert!(!is_local_network(&Url::parse(remote).unwrap()), "{remote}");
        }
    }

    #[test]
    fn host_port_fills_default_ports() {
        assert_eq!(
            host_port(&Url::parse("https://es.example.com").unwrap()),
            "es.example.com:443"
        );
        assert_eq!(
            host_port(&Url::parse("http://127.0.0.1:9200").unwrap()),
            "127.0.0.1:9200"
        );
    }
}
