//! The request and the answers of `mode: Server`: the `_reindex` body (`source.remote` with the
//! Secret's credentials, timeouts, headers and Amazon's `region`/`external`), and which condition
//! reason a refusal or a task's error becomes.

use super::connected::Connected;
use super::error::ServerError;
use crate::api::{Conflicts, Endpoint, OpType, RemoteReindexSpec};
use crate::search::Distribution;
use serde_json::{Map, Value, json};

/// The source's basic-auth credentials, for the request body.
pub(super) struct RemoteCredentials {
    pub(super) username: String,
    pub(super) password: String,
}

/// Under `opType: create` a rerun meets its own earlier documents: those conflicts are expected.
pub(super) fn proceeds(spec: &RemoteReindexSpec, rerun: bool) -> bool {
    spec.conflicts == Some(Conflicts::Proceed)
        || (rerun && spec.dest.op_type == Some(OpType::Create))
}

/// The source's username and password as the source client holds them now (so a rotated
/// Secret is used by the next task).
pub(super) fn source_credentials(conn: &Connected) -> Option<RemoteCredentials> {
    conn.source
        .basic_credentials()
        .map(|(u, p)| RemoteCredentials {
            username: u.expose().to_string(),
            password: p.expose().to_string(),
        })
}

/// Replaces the source's password in a text that came back from the destination.
pub(super) fn redact(text: &str, creds: &Option<RemoteCredentials>) -> String {
    match creds {
        Some(c) if c.password.len() >= 3 => text.replace(&c.password, "***"),
        _ => text.to_string(),
    }
}

/// The `source.remote` object: host, credentials, timeouts, headers, and Amazon's
/// `region`/`external`.
fn remote_info(ep: &Endpoint, creds: Option<&RemoteCredentials>) -> Value {
    // The remote reindex insists on `scheme://host:port`: spell out the scheme's default port.
    let mut host = match url::Url::parse(&ep.host) {
        Ok(u) => format!("{}://{}", u.scheme(), crate::net::host_port(&u)),
        Err(_) => ep.host.trim_end_matches('/').to_string(),
    };
    if let Some(p) = &ep.path_prefix {
        host.push_str(p.trim_end_matches('/'));
    }
    let mut remote = Map::new();
    remote.insert("host".into(), json!(host));
    if let Some(c) = creds {
        remote.insert("username".into(), json!(c.username));
        remote.insert("password".into(), json!(c.password));
    }
    if let Some(d) = &ep.socket_timeout {
        remote.insert("socket_timeout".into(), json!(d.0));
    }
    if let Some(d) = &ep.connect_timeout {
        remote.insert("connect_timeout".into(), json!(d.0));
    }
    if let Some(h) = ep.headers.as_ref().filter(|h| !h.is_empty()) {
        remote.insert("headers".into(), json!(h));
    }
    if let Some(r) = &ep.region {
        remote.insert("region".into(), json!(r));
    }
    if let Some(e) = ep.external {
        remote.insert("external".into(), json!(e));
    }
    Value::Object(remote)
}

/// The `_reindex` body. `excluded` ids (rejected by an earlier attempt) are left out of the
/// query; a `rerun` under `opType: create` proceeds past its own earlier documents.
pub(super) fn reindex_body(
    spec: &RemoteReindexSpec,
    creds: Option<&RemoteCredentials>,
    excluded: &[String],
    rerun: bool,
) -> Value {
    let s = &spec.source;
    let mut source = json!({
        "remote": remote_info(&s.remote, creds),
        "index": s.index,
    });
    let query = match (&s.query, excluded.is_empty()) {
        (q, true) => q.clone(),
        (q, false) => Some(json!({"bool": {
            "must": q.clone().unwrap_or_else(|| json!({"match_all": {}})),
            "must_not": {"ids": {"values": excluded}},
        }})),
    };
    if let Some(q) = query {
        source["query"] = q;
    }
    if let Some(n) = s.size {
        source["size"] = json!(n);
    }
    let mut dest = json!({
        "index": spec.dest.index,
        "op_type": match spec.dest.op_type.unwrap_or_default() {
            OpType::Index => "index",
            OpType::Create => "create",
        },
    });
    if let Some(p) = &spec.dest.pipeline {
        dest["pipeline"] = json!(p);
    }
    let mut body = json!({
        "source": source,
        "dest": dest,
        "conflicts": if proceeds(spec, rerun) { "proceed" } else { "abort" },
    });
    if let Some(m) = s.max_docs {
        body["max_docs"] = json!(m);
    }
    body
}

/// Whether a running reindex task is this copy's, by its description as Elasticsearch and
/// OpenSearch write it: `reindex from [host=H port=P query={…}][index] to [dest]` (with
/// `scheme=https ` before `host`, and ` pathPrefix=…`, ` username=…`, ` password=<<>>` when
/// set). The source's host and port, its index and the query (or the query with the ids an
/// earlier attempt excluded) must be this copy's, and the task must write into `dest.index`:
/// a task someone else started into the same index is never adopted.
pub(super) fn is_this_copy(description: &str, spec: &RemoteReindexSpec) -> bool {
    let s = &spec.source;
    let Some(rest) = description.strip_prefix("reindex from [") else {
        return false;
    };
    let Ok(url) = url::Url::parse(&s.remote.host) else {
        return false;
    };
    let rest = if url.scheme() == "http" {
        Some(rest)
    } else {
        rest.strip_prefix(&format!("scheme={} ", url.scheme()))
    };
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    let Some(port) = url.port_or_known_default() else {
        return false;
    };
    let Some(rest) = rest.and_then(|r| r.strip_prefix(&format!("host={host} port={port}"))) else {
        return false;
    };
    let Some((between, rest)) = rest.split_once(" query=") else {
        return false;
    };
    if !(between.is_empty() || between.starts_with(" pathPrefix=")) {
        return false;
    }
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    let Some(Ok(query)) = values.next() else {
        return false;
    };
    let rest = &rest[values.byte_offset()..];
    let Some((auth, rest)) = rest.split_once("][") else {
        return false;
    };
    if !(auth.is_empty() || auth.starts_with(" username=") || auth.starts_with(" password=")) {
        return false;
    }
    let index = s
        .index
        .split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(", ");
    rest.starts_with(&format!("{index}]"))
        && rest.ends_with(&format!(" to [{}]", spec.dest.index))
        && same_query(&query, s.query.as_ref())
}

/// `theirs` (from a task's description) is `ours`, or `ours` with an exclusion of ids.
fn same_query(theirs: &Value, ours: Option<&Value>) -> bool {
    let b = &theirs["bool"];
    let base = match b.as_object() {
        Some(o) if o.len() == 2 && b["must_not"]["ids"].is_object() && o.contains_key("must") => {
            &b["must"]
        }
        _ => theirs,
    };
    let match_all = |v: &Value| {
        v.as_object().is_some_and(|o| {
            o.len() == 1
                && o.get("match_all")
                    .and_then(Value::as_object)
                    .is_some_and(|m| {
                        m.iter()
                            .all(|(k, v)| k == "boost" && v.as_f64() == Some(1.0))
                    })
        })
    };
    match ours {
        None => match_all(base),
        Some(q) => base == q || (match_all(q) && match_all(base)),
    }
}

/// The setting that lists the remotes a destination may reindex from.
pub(super) fn allowlist_setting(distribution: &Distribution, major: u32) -> &'static str {
    match distribution {
        Distribution::OpenSearch if major >= 2 => "reindex.remote.allowlist",
        _ => "reindex.remote.whitelist",
    }
}

/// `[host:port] not whitelisted in reindex.remote.whitelist` (or `allowlisted`/`allowlist`).
pub(super) fn refused_host(
    kind: &str,
    reason: &str,
    distribution: &Distribution,
    major: u32,
) -> Option<ServerError> {
    let refused = reason.contains("not whitelisted") || reason.contains("not allowlisted");
    if !(refused && (kind == "illegal_argument_exception" || reason.contains("reindex.remote"))) {
        return None;
    }
    let host = reason
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map_or("the source", |(h, _)| h)
        .to_string();
    Some(ServerError::RemoteNotAllowed {
        host,
        setting: allowlist_setting(distribution, major),
        detail: reason.to_string(),
    })
}

/// The failure a finished task reported, as a reason.
pub(super) fn classify(
    kind: &str,
    reason: &str,
    distribution: &Distribution,
    major: u32,
) -> ServerError {
    if let Some(e) = refused_host(kind, reason, distribution, major) {
        return e;
    }
    let lower = reason.to_lowercase();
    if lower.contains("chunk that was too large") || lower.contains("buffer") {
        return ServerError::RemoteBatchTooLarge(format!("{kind}: {reason}"));
    }
    let unreachable = [
        "connection refused",
        "connectexception",
        "unknownhostexception",
        "no route to host",
        "sockettimeoutexception",
        "connect timed out",
        "connection reset",
    ];
    if unreachable.iter().any(|u| lower.contains(u)) {
        return ServerError::RemoteUnreachable(format!("{kind}: {reason}"));
    }
    if lower.contains("status line [http/1.1 401")
        || lower.contains("status line [http/1.1 403")
        || lower.contains("unauthorized")
        || lower.contains("security_exception")
    {
        return ServerError::RemoteAuth(format!("{kind}: {reason}"));
    }
    ServerError::TaskFailed(format!("{kind}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> RemoteReindexSpec {
        serde_json::from_value(serde_saphyr::from_str(yaml).unwrap()).unwrap()
    }

    /// Descriptions as Elasticsearch 7.17 and OpenSearch 2.19 list running remote reindexes.
    #[test]
    fn only_this_copys_task_is_adopted() {
        let base = "source: {remote: {host: \"http://127.0.0.1:46189\"}, index: src}\ndest: {index: dst}\n";
        let plain = spec(base);
        let queried = spec(&base.replace("index: src}", "index: src, query: {term: {tag: t1}}}"));
        let all = "reindex from [host=127.0.0.1 port=46189 query={\n  \"match_all\" : {\n    \"boost\" : 1.0\n  }\n}][src] to [dst]";
        let t1 = "reindex from [host=127.0.0.1 port=46189 query={\n  \"term\" : {\n    \"tag\" : \"t1\"\n  }\n} username=u password=<<>>][src] to [dst]";
        let excluded = "reindex from [host=127.0.0.1 port=46189 query={\"bool\":{\"must\":{\"term\":{\"tag\":\"t1\"}},\"must_not\":{\"ids\":{\"values\":[\"d3\"]}}}}][src] to [dst]";
        assert!(is_this_copy(all, &plain));
        assert!(!is_this_copy(t1, &plain), "another query");
        assert!(is_this_copy(t1, &queried));
        assert!(is_this_copy(excluded, &queried));
        assert!(!is_this_copy(all, &queried));
        assert!(
            !is_this_copy(&all.replace("46189", "46190"), &plain),
            "another port"
        );
        assert!(
            !is_this_copy(&all.replace("127.0.0.1", "10.0.0.1"), &plain),
            "another host"
        );
        assert!(
            !is_this_copy(&all.replace("[src]", "[other]"), &plain),
            "another index"
        );
        assert!(
            !is_this_copy(&all.replace("[dst]", "[dst2]"), &plain),
            "another destination"
        );
        assert!(
            !is_this_copy("reindex from [src] to [dst]", &plain),
            "a local reindex"
        );
    }

    #[test]
    fn the_request_carries_every_remote_option() {
        let s = spec(
            "{mode: Server, conflicts: proceed, source: {index: src, size: 200, maxDocs: 5000, scroll: 10m,
              query: {term: {kind: a}},
              remote: {host: 'https://old.example.com:443/', pathPrefix: /es, socketTimeout: 60s, connectTimeout: 5s,
                       headers: {X-Trace: t1}, external: true, basicAuth: {secretRef: {name: c}}}},
              dest: {index: dst, opType: create, pipeline: p1}}",
        );
        let creds = RemoteCredentials {
            username: "u".into(),
            password: "pw".into(),
        };
        let body = reindex_body(&s, Some(&creds), &[], false);
        assert_eq!(
            body,
            json!({
                "source": {
                    "remote": {"host": "https://old.example.com:443/es", "username": "u", "password": "pw",
                               "socket_timeout": "60s", "connect_timeout": "5s",
                               "headers": {"X-Trace": "t1"}, "external": true},
                    "index": "src", "query": {"term": {"kind": "a"}}, "size": 200
                },
                "dest": {"index": "dst", "op_type": "create", "pipeline": "p1"},
                "conflicts": "proceed",
                "max_docs": 5000
            })
        );
    }

    #[test]
    fn amazon_region_without_credentials_and_reruns_exclude_rejected_documents() {
        let s = spec(
            "{mode: Server, source: {index: src, remote: {host: 'https://d.eu-west-1.es.amazonaws.com', region: eu-west-1}},
              dest: {index: dst, opType: create}}",
        );
        let first = reindex_body(&s, None, &[], false);
        assert_eq!(
            first["source"]["remote"],
            json!({"host": "https://d.eu-west-1.es.amazonaws.com:443", "region": "eu-west-1"})
        );
        assert_eq!(first["conflicts"], "abort");
        assert!(first["source"].get("query").is_none());
        let again = reindex_body(&s, None, &["7".into(), "9".into()], true);
        assert_eq!(
            again["conflicts"], "proceed",
            "a rerun meets its own documents"
        );
        assert_eq!(
            again["source"]["query"],
            json!({"bool": {"must": {"match_all": {}}, "must_not": {"ids": {"values": ["7", "9"]}}}})
        );
        assert_eq!(again["dest"]["op_type"], "create");
    }

    #[test]
    fn refusals_and_task_errors_get_their_reasons() {
        let es = Distribution::Elasticsearch;
        let os = Distribution::OpenSearch;
        let e = refused_host(
            "illegal_argument_exception",
            "[127.0.0.1:9201] not whitelisted in reindex.remote.whitelist",
            &es,
            7,
        )
        .unwrap();
        assert_eq!(e.reason(), "RemoteNotAllowed");
        let text = e.to_string();
        assert!(
            text.contains("127.0.0.1:9201") && text.contains("reindex.remote.whitelist"),
            "{text}"
        );
        let e = refused_host(
            "illegal_argument_exception",
            "[127.0.0.1:9201] not allowlisted in reindex.remote.allowlist",
            &os,
            2,
        )
        .unwrap();
        assert!(e.to_string().contains("reindex.remote.allowlist"));
        assert_eq!(allowlist_setting(&os, 1), "reindex.remote.whitelist");
        assert!(
            refused_host(
                "illegal_argument_exception",
                "[size] must be positive",
                &es,
                7
            )
            .is_none()
        );

        let big = classify(
            "illegal_argument_exception",
            "Remote responded with a chunk that was too large. Use a smaller batch size.",
            &os,
            2,
        );
        assert_eq!(big.reason(), "RemoteBatchTooLarge");
        assert!(big.to_string().contains("source.size"));
        assert_eq!(
            classify("connect_exception", "Connection refused", &os, 2).reason(),
            "RemoteUnreachable"
        );
        assert_eq!(
            classify(
                "status_exception",
                "method [POST], host [http://127.0.0.1:9201], URI [/src/_search], status line [HTTP/1.1 401 Unauthorized]",
                &os,
                2
            )
            .reason(),
            "AuthenticationFailed"
        );
        assert_eq!(classify("x", "y", &os, 2).reason(), "CopyFailed");
    }

    #[test]
    fn the_source_password_never_comes_back() {
        let c = Some(RemoteCredentials {
            username: "u".into(),
            password: "s3cret".into(),
        });
        assert_eq!(redact("bad [password=s3cret]", &c), "bad [password=***]");
    }
}
