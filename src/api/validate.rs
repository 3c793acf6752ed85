//! Checks of a spec that need no cluster. The CRD schema expresses what it can (patterns, enums,
//! minimums, CEL); everything is checked again here because a CRD may be applied without its rules
//! (an edited copy, an API server that ignores them) and `remote-reindex run -f` has no API server
//! at all.

use super::invalid::invalid;
pub use super::invalid::{Invalid, check_index_name};
use super::{Endpoint, RemoteReindexSpec};
use crate::api::Reason;
use crate::net::host_port;
use url::Url;

/// What validation lets a spec ask for beyond the defaults. Which hosts a resource may reach is
/// the tenant policy's rule ([`crate::policy`]), checked before the workflow starts; the CLI
/// reaches what its manifest names.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Allow destination indices whose names start with `.`.
    pub allow_system_indices: bool,
}

/// Checks the spec; `dest_host` is the endpoint used when `dest.remote` is absent.
pub fn validate(
    spec: &RemoteReindexSpec,
    dest_default: Option<&Endpoint>,
    policy: &Policy,
) -> Result<(), Vec<Invalid>> {
    let mut errs = Vec::new();
    if spec.script.is_some() {
        errs.push(invalid(
            "spec.script",
            "scripts are not supported; transform documents with an ingest pipeline on the destination (spec.dest.pipeline)",
        ));
    }
    check_endpoint("spec.source.remote", &spec.source.remote, &mut errs);
    let dest_remote = spec.dest.remote.as_ref().or(dest_default);
    match dest_remote {
        Some(ep) => {
            if spec.dest.remote.is_some() {
                check_endpoint("spec.dest.remote", ep, &mut errs);
            }
        }
        None => errs.push(invalid(
            "spec.dest.remote",
            "no destination cluster: set spec.dest.remote.host or start with --dest-host",
        )),
    }
    super::validate_server::check_headers("spec.source.remote", &spec.source.remote, &mut errs);
    if let Some(ep) = spec.dest.remote.as_ref() {
        super::validate_server::check_headers("spec.dest.remote", ep, &mut errs);
    }
    super::validate_server::check_server_mode(spec, dest_remote, &mut errs);
    if let Err(m) = check_index_name(&spec.source.index) {
        errs.push(invalid("spec.source.index", m));
    }
    if let Err(m) = check_index_name(&spec.dest.index) {
        errs.push(invalid("spec.dest.index", m));
    } else if spec.dest.index.starts_with('.') && !policy.allow_system_indices {
        errs.push(invalid(
            "spec.dest.index",
            format!("`{}` is a system/hidden index name (starts with `.`); the operator refuses it unless started with --allow-system-indices", spec.dest.index),
        ));
    }
    if let Some(ep) = dest_remote
        && same_host(&spec.source.remote.host, &ep.host)
        && spec.source.index == spec.dest.index
    {
        errs.push(invalid(
            "spec.dest.index",
            format!(
                "destination `{}` is the source index on the same cluster",
                spec.dest.index
            ),
        ));
    }
    let s = &spec.source;
    if let Some(q) = &s.query
        && !q.is_object()
    {
        errs.push(invalid(
            "spec.source.query",
            "must be a JSON object, e.g. {match_all: {}}",
        ));
    }
    positive(&mut errs, "spec.source.size", s.size, 10_000);
    positive(&mut errs, "spec.source.maxDocs", s.max_docs, i64::MAX);
    positive(
        &mut errs,
        "spec.dest.maxConcurrentBulk",
        spec.dest.max_concurrent_bulk,
        64,
    );
    if let Some(n) = spec.max_failed_docs
        && n < 0
    {
        errs.push(invalid(
            "spec.maxFailedDocs",
            format!("must be >= 0, got {n}"),
        ));
    }
    if let Some(super::units::Slices::Count(0)) = s.slices {
        errs.push(invalid("spec.source.slices", "must be >= 1 or `auto`"));
    }
    duration(&mut errs, "spec.source.scroll", s.scroll.as_ref());
    duration(
        &mut errs,
        "spec.preflightTimeout",
        spec.preflight_timeout.as_ref(),
    );
    if let Some(r) = &spec.retry {
        duration(&mut errs, "spec.retry.maxBackoff", r.max_backoff.as_ref());
        positive(&mut errs, "spec.retry.maxAttempts", r.max_attempts, 100);
    }
    if let Some(b) = &spec.dest.bulk_bytes {
        match b.bytes() {
            Ok(n) if n < 1024 => errs.push(invalid("spec.dest.bulkBytes", "must be at least 1Ki")),
            Ok(_) => {}
            Err(m) => errs.push(invalid("spec.dest.bulkBytes", m)),
        }
    }
    if let Some(rps) = spec.requests_per_second
        && !(rps.is_finite() && rps > 0.0)
    {
        errs.push(invalid(
            "spec.requestsPerSecond",
            format!("must be > 0, got {rps}"),
        ));
    }
    if let Some(p) = &spec.dest.pipeline
        && (p.is_empty() || p.contains(['/', '?', '#', '&', ' ']))
    {
        errs.push(invalid(
            "spec.dest.pipeline",
            format!("`{p}` is not a pipeline id"),
        ));
    }
    super::live::check(spec, &mut errs);
    if spec.verify == Some(super::Verify::Checksum) {
        if let Some(p) = &spec.dest.pipeline {
            errs.push(invalid(
                "spec.verify",
                format!("Checksum cannot be used with an ingest pipeline (spec.dest.pipeline `{p}` changes documents, so they would never match the source); use Count or None"),
            ));
        }
        if spec.source.max_docs.is_some() {
            errs.push(invalid(
                "spec.verify",
                "Checksum cannot be used with spec.source.maxDocs (an arbitrary subset of the source is copied); use Count or None",
            ));
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn positive(errs: &mut Vec<Invalid>, field: &str, v: Option<i64>, max: i64) {
    if let Some(n) = v
        && (n < 1 || n > max)
    {
        errs.push(invalid(
            field,
            format!("must be between 1 and {max}, got {n}"),
        ));
    }
}

fn duration(errs: &mut Vec<Invalid>, field: &str, d: Option<&super::units::EsDuration>) {
    if let Some(d) = d
        && let Err(m) = d.parse()
    {
        errs.push(invalid(field, m));
    }
}

fn check_endpoint(field: &str, ep: &Endpoint, errs: &mut Vec<Invalid>) {
    let url = match Url::parse(&ep.host) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            errs.push(invalid(
                format!("{field}.host"),
                format!(
                    "`{}` is not a URL of the form http(s)://host[:port]",
                    ep.host
                ),
            ));
            return;
        }
    };
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        errs.push(invalid(
            format!("{field}.host"),
            "must be scheme://host[:port] only; put a path in pathPrefix and credentials in a Secret",
        ));
    }
    let modes = ep.auth_modes();
    if modes.len() > 1 {
        errs.push(Invalid {
            field: field.to_string(),
            message: format!(
                "at most one authentication mode may be set, found {}",
                modes.join(" and ")
            ),
            reason: Reason::InvalidAuth,
        });
    }
    check_aws(field, ep, errs);
    if ep.username.is_some() || ep.password.is_some() {
        errs.push(Invalid {
            field: field.to_string(),
            message: "inline username/password are not accepted; put them in a Secret and use basicAuth.secretRef".into(),
            reason: Reason::InvalidAuth,
        });
    }
    let has_credentials = !modes.is_empty();
    if url.scheme() == "http"
        && has_credentials
        && !is_loopback(&url)
        && ep.allow_insecure_http != Some(true)
    {
        errs.push(Invalid {
            field: format!("{field}.host"),
            message: format!("refusing to send credentials over plain http to {}; use https or set allowInsecureHttp: true", host_port(&url)),
            reason: Reason::InvalidAuth,
        });
    }
    duration(
        errs,
        &format!("{field}.socketTimeout"),
        ep.socket_timeout.as_ref(),
    );
    duration(
        errs,
        &format!("{field}.connectTimeout"),
        ep.connect_timeout.as_ref(),
    );
}

/// The seed's `region` / `external`, the `aws` block, the proxy URL and the TLS server name.
fn check_aws(field: &str, ep: &Endpoint, errs: &mut Vec<Invalid>) {
    let auth = |message: String| Invalid {
        field: field.to_string(),
        message,
        reason: Reason::InvalidAuth,
    };
    if ep.external == Some(true) {
        let others: Vec<_> = ep
            .auth_modes()
            .into_iter()
            .filter(|m| *m != "basicAuth")
            .collect();
        if !others.is_empty() {
            errs.push(auth(format!(
                "external: true declares a cluster that is not an AWS domain: only basicAuth is accepted, found {}",
                others.join(" and ")
            )));
        }
    }
    if let Some(aws) = ep.aws_auth() {
        let region_field = if ep.aws.is_some() {
            format!("{field}.aws.region")
        } else {
            format!("{field}.region")
        };
        if !is_region(&aws.region) {
            errs.push(invalid(
                region_field,
                format!(
                    "`{}` is not an AWS region name (e.g. eu-west-1)",
                    aws.region
                ),
            ));
        }
        if field.starts_with("spec.source") && ep.is_serverless() {
            errs.push(invalid(
                format!("{field}.aws.service"),
                "OpenSearch Serverless (aoss) has no scroll API, so it can only be a destination; use service: es for a managed domain",
            ));
        }
    }
    if let Some(p) = &ep.proxy {
        match Url::parse(&p.url) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.username().is_empty()
                    && u.path() == "/" => {}
            _ => errs.push(invalid(
                format!("{field}.proxy.url"),
                format!(
                    "`{}` is not a proxy URL of the form http://host:port (credentials go in proxy.basicAuthSecretRef)",
                    p.url
                ),
            )),
        }
    }
    if let Some(name) = ep.tls.as_ref().and_then(|t| t.server_name.as_ref())
        && rustls_pki_types::DnsName::try_from(name.as_str()).is_err()
    {
        errs.push(invalid(
            format!("{field}.tls.serverName"),
            format!("`{name}` is not a DNS name"),
        ));
    }
}

fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.split('-').count() >= 3
        && r.split('-').all(|p| !p.is_empty())
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn same_host(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a.scheme() == b.scheme() && host_port(&a) == host_port(&b),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_follow_elasticsearch_rules() {
        assert!(check_index_name("logs-2024").is_ok());
        assert!(check_index_name(".kibana").is_ok());
        for bad in [
            "", "Logs", "a/b", "a b", "_x", "-x", "a*", "..", "a:b", "a,b",
        ] {
            assert!(check_index_name(bad).is_err(), "{bad} accepted");
        }
        assert!(check_index_name(&"a".repeat(256)).is_err());
    }

    fn endpoint_errors(field: &str, yaml: &str) -> Vec<Invalid> {
        let ep: Endpoint = serde_json::from_value(serde_saphyr::from_str(yaml).unwrap()).unwrap();
        let mut errs = Vec::new();
        check_endpoint(field, &ep, &mut errs);
        errs
    }

    #[test]
    fn the_seed_region_and_external_map_onto_aws_and_basic_auth() {
        let ok = |y: &str| assert!(endpoint_errors("spec.source.remote", y).is_empty(), "{y}");
        let bad = |field: &str, y: &str, reason: &str, text: &str| {
            let errs = endpoint_errors(field, y);
            assert!(
                errs.iter()
                    .any(|e| e.reason == reason && e.message.contains(text)),
                "{y}: {errs:?}"
            );
        };
        ok("{host: 'https://a.es.amazonaws.com', region: eu-west-1}");
        ok("{host: 'https://a.example.com', external: true, basicAuth: {secretRef: {name: c}}}");
        ok("{host: 'https://a.example.com', aws: {region: us-gov-west-1, service: es}}");
        let f = "spec.source.remote";
        bad(
            f,
            "{host: 'https://a.example.com', region: eu-west-1, external: true}",
            "InvalidAuth",
            "not an AWS domain",
        );
        bad(
            f,
            "{host: 'https://a.example.com', region: eu-west-1, basicAuth: {secretRef: {name: c}}}",
            "InvalidAuth",
            "basicAuth and region",
        );
        bad(
            f,
            "{host: 'https://a.example.com', region: eu-west-1, aws: {region: eu-west-1}}",
            "InvalidAuth",
            "aws and region",
        );
        bad(
            f,
            "{host: 'https://a.example.com', region: Europe}",
            "InvalidSpec",
            "not an AWS region",
        );
        bad(
            f,
            "{host: 'https://a.example.com', aws: {region: eu-west-1, service: aoss}}",
            "InvalidSpec",
            "destination",
        );
        assert!(
            endpoint_errors(
                "spec.dest.remote",
                "{host: 'https://a.example.com', aws: {region: eu-west-1, service: aoss}}"
            )
            .is_empty()
        );
        bad(
            f,
            "{host: 'http://10.1.2.3:9200', region: eu-west-1}",
            "InvalidAuth",
            "plain http",
        );
        bad(
            f,
            "{host: 'https://a.example.com', proxy: {url: 'http://u:p@proxy:3128'}}",
            "InvalidSpec",
            "proxy.basicAuthSecretRef",
        );
        bad(
            f,
            "{host: 'https://10.0.0.1', tls: {serverName: 'not a name'}}",
            "InvalidSpec",
            "not a DNS name",
        );
    }

    #[test]
    fn checksum_is_refused_where_the_sides_may_rightly_differ() {
        let spec = |extra: &str| -> RemoteReindexSpec {
            let y = format!(
                "source: {{remote: {{host: 'http://127.0.0.1:9200'}}, index: a}}\ndest: {{remote: {{host: 'http://127.0.0.1:9201'}}, index: b{extra}}}\nverify: Checksum\n"
            );
            serde_json::from_value(serde_saphyr::from_str(&y).unwrap()).unwrap()
        };
        let p = Policy::default();
        assert!(validate(&spec(""), None, &p).is_ok());
        let errs = validate(&spec(", pipeline: strip"), None, &p).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.field == "spec.verify" && e.message.contains("ingest pipeline")),
            "{errs:?}"
        );
        let mut s = spec("");
        s.source.max_docs = Some(10);
        let errs = validate(&s, None, &p).unwrap_err();
        assert!(
            errs.iter().any(|e| e.message.contains("maxDocs")),
            "{errs:?}"
        );
        s.verify = Some(crate::api::Verify::Count);
        assert!(validate(&s, None, &p).is_ok());
    }
}
