//! What `mode: Server` cannot do, refused before anything is written: the destination's remote
//! reindex reads the source itself, so everything the operator would have to hand it that the
//! `_reindex` API cannot carry is an error here rather than a surprise later. Also the checks of
//! `headers`, which both modes send.

use super::invalid::Invalid;
use super::{CopyMode, Endpoint, RemoteReindexSpec};
use crate::api::Reason;

fn invalid(field: impl Into<String>, message: impl Into<String>, reason: Reason) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
        reason,
    }
}

/// Whether a custom header would change where or how a request is routed or framed: the
/// target host (`Host`, `Forwarded`, `X-Forwarded-*`), the connection and its framing
/// (`Connection`, `Content-Length`, `Transfer-Encoding`, `TE`, `Upgrade`, `Keep-Alive`,
/// `Expect`) or a proxy (`Proxy-*`). The client sets these itself; from a resource they could
/// reach a virtual host or backend the policy never allowed, or smuggle a second request.
pub fn routing_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "host"
            | "connection"
            | "content-length"
            | "transfer-encoding"
            | "te"
            | "upgrade"
            | "keep-alive"
            | "expect"
            | "forwarded"
    ) || n.starts_with("proxy-")
        || n.starts_with("x-forwarded-")
}

/// Checks `headers` of an endpoint (both modes).
pub fn check_headers(field: &str, ep: &Endpoint, errs: &mut Vec<Invalid>) {
    for (name, value) in ep.headers.iter().flatten() {
        let f = format!("{field}.headers");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errs.push(invalid(
                f,
                format!("`{name}` is not an HTTP header name"),
                Reason::InvalidSpec,
            ));
        } else if name.eq_ignore_ascii_case("authorization")
            || name.eq_ignore_ascii_case("proxy-authorization")
        {
            errs.push(invalid(
                f,
                format!("`{name}` would put a credential in the resource in plain text; use basicAuth.secretRef"),
                Reason::InvalidAuth,
            ));
        } else if routing_header(name) {
            errs.push(invalid(
                f,
                format!("`{name}` changes where or how requests are routed (Host, Connection, Content-Length, Transfer-Encoding, TE, Upgrade, Keep-Alive, Expect, Proxy-*, Forwarded, X-Forwarded-* are set by the client, never by a resource); remove it"),
                Reason::InvalidSpec,
            ));
        } else if reqwest::header::HeaderValue::from_str(value).is_err() {
            errs.push(invalid(
                f,
                format!("the value of `{name}` is not a valid header value"),
                Reason::InvalidSpec,
            ));
        }
    }
}

/// The `mode: Server` refusals; `dest` is the destination endpoint in use, if known.
pub fn check_server_mode(
    spec: &RemoteReindexSpec,
    dest: Option<&Endpoint>,
    errs: &mut Vec<Invalid>,
) {
    if spec.mode() != CopyMode::Server {
        return;
    }
    let why = "mode: Server (the destination's own _reindex reads the source)";
    let src = &spec.source.remote;
    let f = "spec.source.remote";
    if spec
        .source
        .slices
        .as_ref()
        .is_some_and(|s| *s != super::units::Slices::Count(1))
    {
        errs.push(invalid(
            "spec.source.slices",
            format!(
                "{why}: a reindex from a remote cannot be sliced; remove slices or use mode: Engine"
            ),
            Reason::InvalidSpec,
        ));
    }
    if spec.source.paging == Some(super::PagingMode::Pit) {
        errs.push(invalid(
            "spec.source.paging",
            format!("{why}: the destination reads the source with its own scroll; remove paging or use mode: Engine"),
            Reason::InvalidSpec,
        ));
    }
    if let Some(tls) = &src.tls {
        let set = [
            ("caSecretRef", tls.ca_secret_ref.is_some()),
            ("caConfigMapRef", tls.ca_config_map_ref.is_some()),
            ("clientCertSecretRef", tls.client_cert_secret_ref.is_some()),
            ("serverName", tls.server_name.is_some()),
            ("insecureSkipVerify", tls.insecure_skip_verify == Some(true)),
        ];
        for (name, _) in set.iter().filter(|(_, on)| *on) {
            errs.push(invalid(
                format!("{f}.tls.{name}"),
                format!("{why}: the destination verifies the source's certificate with its own node settings (reindex.ssl.*, its JVM trust store), which a resource cannot change; remove it, configure the destination's nodes, or use mode: Engine"),
                Reason::InvalidSpec,
            ));
        }
    }
    if src.proxy.is_some() {
        errs.push(invalid(
            format!("{f}.proxy"),
            format!("{why}: the remote reindex connects directly and cannot use a proxy; use mode: Engine"),
            Reason::InvalidSpec,
        ));
    }
    if src.aws.is_some() {
        errs.push(invalid(
            format!("{f}.aws"),
            format!("{why}: the destination cannot sign requests to the source with the operator's credentials; on Amazon OpenSearch Service use source.remote.region (the domain signs with its own role), or use mode: Engine"),
            Reason::InvalidAuth,
        ));
    }
    for (name, on) in [
        ("apiKey", src.api_key.is_some()),
        ("bearerToken", src.bearer_token.is_some()),
    ] {
        if on {
            errs.push(invalid(
                format!("{f}.{name}"),
                format!("{why}: the remote reindex authenticates with username and password only (basicAuth); use mode: Engine"),
                Reason::InvalidAuth,
            ));
        }
    }
    for (name, on) in [
        ("spec.dest.bulkBytes", spec.dest.bulk_bytes.is_some()),
        (
            "spec.dest.maxConcurrentBulk",
            spec.dest.max_concurrent_bulk.is_some(),
        ),
    ] {
        if on {
            errs.push(invalid(
                name,
                format!("{why}: the destination sizes its own bulk requests (one per source.size batch); remove it"),
                Reason::InvalidSpec,
            ));
        }
    }
    if dest.is_some_and(Endpoint::is_serverless) {
        errs.push(invalid(
            "spec.dest.remote.aws.service",
            format!("{why}: OpenSearch Serverless has no reindex from a remote; use mode: Engine"),
            Reason::InvalidSpec,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<Invalid> {
        let spec: RemoteReindexSpec =
            serde_json::from_value(serde_saphyr::from_str(yaml).unwrap()).unwrap();
        let mut errs = Vec::new();
        check_server_mode(&spec, spec.dest.remote.as_ref(), &mut errs);
        for (f, ep) in [
            ("spec.source.remote", Some(&spec.source.remote)),
            ("spec.dest.remote", spec.dest.remote.as_ref()),
        ] {
            if let Some(ep) = ep {
                check_headers(f, ep, &mut errs);
            }
        }
        errs
    }

    const BASE: &str = "dest: {index: b, remote: {host: 'http://127.0.0.1:9200'}}";

    #[test]
    fn server_mode_refuses_what_the_remote_reindex_cannot_carry() {
        let src = |extra: &str, spec_extra: &str| {
            format!(
                "{{mode: Server, source: {{index: a, {spec_extra} remote: {{host: 'https://s.example.com:443', {extra}}}}}, {BASE}}}"
            )
        };
        let fields = |errs: Vec<Invalid>| {
            errs.into_iter()
                .map(|e| (e.field, e.reason))
                .collect::<Vec<_>>()
        };
        assert!(
            errors(&src(
                "basicAuth: {secretRef: {name: c}}, socketTimeout: 60s, headers: {X-Trace: a}",
                "size: 100,"
            ))
            .is_empty()
        );
        assert!(errors(&src("region: eu-west-1", "")).is_empty());
        assert_eq!(
            fields(errors(&src("", "slices: 4,"))),
            [("spec.source.slices".into(), Reason::InvalidSpec)]
        );
        assert!(errors(&src("", "slices: 1,")).is_empty());
        assert_eq!(
            fields(errors(&src(
                "tls: {caSecretRef: {name: ca}, clientCertSecretRef: {name: c}}",
                ""
            ))),
            [
                (
                    "spec.source.remote.tls.caSecretRef".into(),
                    Reason::InvalidSpec
                ),
                (
                    "spec.source.remote.tls.clientCertSecretRef".into(),
                    Reason::InvalidSpec
                )
            ]
        );
        assert_eq!(
            fields(errors(&src("proxy: {url: 'http://p:3128'}", ""))),
            [("spec.source.remote.proxy".into(), Reason::InvalidSpec)]
        );
        assert_eq!(
            fields(errors(&src("aws: {region: eu-west-1}", ""))),
            [("spec.source.remote.aws".into(), Reason::InvalidAuth)]
        );
        assert_eq!(
            fields(errors(&src("apiKey: {secretRef: {name: k}}", ""))),
            [("spec.source.remote.apiKey".into(), Reason::InvalidAuth)]
        );
        assert_eq!(
            fields(errors(&src("bearerToken: {secretRef: {name: k}}", ""))),
            [("spec.source.remote.bearerToken".into(), Reason::InvalidAuth)]
        );
        let e = errors(
            "{mode: Server, source: {index: a, remote: {host: 'http://127.0.0.1:9201'}}, dest: {index: b, bulkBytes: 1Mi, remote: {host: 'https://x.aoss.amazonaws.com', aws: {region: eu-west-1, service: aoss}}}}",
        );
        assert_eq!(
            fields(e),
            [
                ("spec.dest.bulkBytes".into(), Reason::InvalidSpec),
                ("spec.dest.remote.aws.service".into(), Reason::InvalidSpec)
            ]
        );
        // Engine mode can do all of it.
        assert!(errors("{source: {index: a, slices: 4, remote: {host: 'https://s:443', proxy: {url: 'http://p:3128'}, apiKey: {secretRef: {name: k}}}}, dest: {index: b}}").is_empty());
    }

    /// Issue 22: a header that changes where or how a request is routed is refused, whatever
    /// its case, with its name in the message; other custom headers still pass.
    #[test]
    fn routing_headers_are_refused_by_name_in_any_case() {
        let refused = [
            "Host",
            "host",
            "HOST",
            "Connection",
            "Content-Length",
            "Transfer-Encoding",
            "TE",
            "Te",
            "Upgrade",
            "Proxy-Connection",
            "proxy-authenticate",
            "Proxy-Foo",
            "Keep-Alive",
            "Expect",
            "X-Forwarded-For",
            "x-forwarded-host",
            "X-Forwarded-Proto",
            "Forwarded",
        ];
        for name in refused {
            for side in ["source", "dest"] {
                let ep = format!("{{host: 'http://127.0.0.1:1', headers: {{'{name}': v}}}}");
                let yaml = if side == "source" {
                    format!("{{source: {{index: a, remote: {ep}}}, dest: {{index: b}}}}")
                } else {
                    format!(
                        "{{source: {{index: a, remote: {{host: 'http://127.0.0.1:2'}}}}, dest: {{index: b, remote: {ep}}}}}"
                    )
                };
                let e = errors(&yaml);
                assert_eq!(e.len(), 1, "`{name}` on {side} must be refused: {e:?}");
                assert_eq!(e[0].field, format!("spec.{side}.remote.headers"));
                assert_eq!(e[0].reason, "InvalidSpec");
                assert!(
                    e[0].message.contains(&format!("`{name}`")),
                    "the message names `{name}`: {}",
                    e[0].message
                );
            }
        }
        for ok in [
            "X-Trace",
            "X-Opaque-Id",
            "Accept-Language",
            "X-Forwarded",
            "Hosts",
        ] {
            let e = errors(&format!(
                "{{source: {{index: a, remote: {{host: 'http://127.0.0.1:1', headers: {{'{ok}': v}}}}}}, dest: {{index: b}}}}"
            ));
            assert!(e.is_empty(), "`{ok}` is an ordinary header: {e:?}");
        }
    }

    #[test]
    fn headers_must_be_valid_and_carry_no_credentials() {
        let e = errors(
            "{source: {index: a, remote: {host: 'http://127.0.0.1:1', headers: {'bad name': x, Authorization: 'Basic eA==', X-Ok: fine}}}, dest: {index: b}}",
        );
        let got: Vec<_> = e
            .iter()
            .map(|i| (i.reason, i.message.split('`').nth(1).unwrap().to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (Reason::InvalidAuth, "Authorization".to_string()),
                (Reason::InvalidSpec, "bad name".to_string())
            ]
        );
    }
}
