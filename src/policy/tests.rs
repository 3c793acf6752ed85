//! The combination rules and every refusal of [`Effective::check`], without a cluster.

use super::*;
use crate::api::Reason;
use crate::api::{Endpoint, RemoteReindexSpec};
use serde_json::json;

fn spec(v: serde_json::Value) -> RemoteReindexSpec {
    serde_json::from_value(v).unwrap()
}

fn simple(src: serde_json::Value) -> RemoteReindexSpec {
    spec(json!({"source": {"remote": src, "index": "logs"}, "dest": {"index": "logs-copy"}}))
}

/// Deep-merges `b` into `a` (objects key by key).
fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn policy(v: serde_json::Value) -> ReindexPolicySpec {
    serde_json::from_value(v).unwrap()
}

fn flag(hosts: &[&str]) -> OperatorLimits {
    OperatorLimits {
        allowed_remote_hosts: Some(hosts.iter().map(|h| h.to_string()).collect()),
        allow_system_indices: false,
    }
}

fn eff(limits: &OperatorLimits, policies: &[(&str, serde_json::Value)]) -> Effective {
    let selected: Vec<(String, ReindexPolicySpec)> = policies
        .iter()
        .map(|(n, p)| (n.to_string(), policy(p.clone())))
        .collect();
    Effective::new("team-a", limits, &selected)
}

fn dest() -> Endpoint {
    Endpoint {
        host: "http://es.search.svc:9200".into(),
        ..Default::default()
    }
}

fn refused(e: &Effective, s: &RemoteReindexSpec) -> Refusal {
    e.check(s, Some(&dest())).expect_err("refused")
}

#[test]
fn without_the_flag_or_a_policy_every_remote_host_is_refused() {
    let e = eff(&OperatorLimits::default(), &[]);
    let r = refused(&e, &simple(json!({"host": "https://old.example.com"})));
    assert_eq!(r.reason, "HostNotAllowed");
    assert_eq!(r.field, "spec.source.remote.host");
    assert!(r.by.contains("without --allowed-remote-hosts"), "{r}");
    assert!(r.by.contains("team-a"), "{r}");
}

#[test]
fn the_flag_allows_hosts_and_the_operator_destination_needs_nothing() {
    let e = eff(&flag(&["*.example.com:443"]), &[]);
    let d = e
        .check(
            &simple(json!({"host": "https://old.example.com"})),
            Some(&dest()),
        )
        .unwrap();
    assert_eq!(
        d.connect_to,
        vec![
            (
                "spec.source.remote.host".to_string(),
                "old.example.com".to_string(),
                443
            ),
            (
                "spec.dest.remote.host".to_string(),
                "es.search.svc".to_string(),
                9200
            ),
        ]
    );
    let r = refused(&e, &simple(json!({"host": "https://old.example.com:9200"})));
    assert_eq!(r.reason, "HostNotAllowed");
    assert_eq!(r.by, "the operator's --allowed-remote-hosts");
}

#[test]
fn a_policy_narrows_the_flag_and_the_intersection_applies() {
    let e = eff(
        &flag(&["*"]),
        &[
            ("wide", json!({"allowedSourceHosts": ["*.example.com:443"]})),
            (
                "narrow",
                json!({"allowedSourceHosts": ["a.example.com:443"]}),
            ),
        ],
    );
    assert!(
        e.check(
            &simple(json!({"host": "https://a.example.com"})),
            Some(&dest())
        )
        .is_ok()
    );
    let r = refused(&e, &simple(json!({"host": "https://b.example.com"})));
    assert_eq!(r.by, "ReindexPolicy/narrow spec.allowedSourceHosts");
    // Without the flag a policy's list alone allows.
    let e = eff(
        &OperatorLimits::default(),
        &[("p", json!({"allowedSourceHosts": ["127.0.0.1:*"]}))],
    );
    assert!(
        e.check(
            &simple(json!({"host": "http://127.0.0.1:9200"})),
            Some(&dest())
        )
        .is_ok()
    );
}

#[test]
fn the_proxy_must_be_allowed_too() {
    let e = eff(&flag(&["old.example.com:443"]), &[]);
    let r = refused(
        &e,
        &simple(
            json!({"host": "https://old.example.com", "proxy": {"url": "http://attacker.example.net:3128"}}),
        ),
    );
    assert_eq!(
        (r.reason, r.field.as_str()),
        (Reason::HostNotAllowed, "spec.source.remote.proxy.url")
    );
    assert!(r.message.contains("attacker.example.net:3128"), "{r}");
}

#[test]
fn destination_hosts_policy_narrows_the_operator_destination() {
    let e = eff(
        &flag(&["*"]),
        &[("p", json!({"allowedDestHosts": ["es.other.svc:9200"]}))],
    );
    let r = refused(&e, &simple(json!({"host": "https://old.example.com"})));
    assert_eq!(
        (r.reason, r.field.as_str(), r.by.as_str()),
        (
            Reason::HostNotAllowed,
            "spec.dest.remote.host",
            "ReindexPolicy/p spec.allowedDestHosts"
        )
    );
    // An explicit destination is held to the flag as well as the policy.
    let e = eff(&flag(&["old.example.com:443"]), &[]);
    let s = spec(json!({
        "source": {"remote": {"host": "https://old.example.com"}, "index": "a"},
        "dest": {"remote": {"host": "https://evil.example.com"}, "index": "b"}
    }));
    assert_eq!(refused(&e, &s).field, "spec.dest.remote.host");
}

#[test]
fn ambient_aws_identity_needs_a_grant_and_a_deny_wins() {
    let s = simple(json!({"host": "https://d.eu-west-1.es.amazonaws.com", "region": "eu-west-1"}));
    let e = eff(&flag(&["*"]), &[]);
    let r = refused(&e, &s);
    assert_eq!(
        (r.reason, r.field.as_str()),
        (
            Reason::AmbientIdentityNotAllowed,
            "spec.source.remote.region"
        )
    );
    let grant = ("grant", json!({"allowAmbientAwsIdentity": true}));
    assert!(
        eff(&flag(&["*"]), std::slice::from_ref(&grant))
            .check(&s, None)
            .is_ok()
    );
    let deny = ("deny", json!({"allowAmbientAwsIdentity": false}));
    let r = refused(&eff(&flag(&["*"]), &[grant, deny]), &s);
    assert_eq!(r.by, "ReindexPolicy/deny spec.allowAmbientAwsIdentity");
    // A Secret's keys are not the ambient identity.
    let with_secret = simple(
        json!({"host": "https://d.es.amazonaws.com", "aws": {"region": "eu-west-1", "credentialsSecretRef": {"name": "k"}}}),
    );
    assert!(eff(&flag(&["*"]), &[]).check(&with_secret, None).is_ok());
}

#[test]
fn insecure_tls_and_http_need_a_grant() {
    let e = eff(&flag(&["*"]), &[]);
    let tls = simple(json!({"host": "https://a.example.com", "tls": {"insecureSkipVerify": true}}));
    let r = refused(&e, &tls);
    assert_eq!(
        (r.reason, r.field.as_str()),
        (
            Reason::InsecureTLSNotAllowed,
            "spec.source.remote.tls.insecureSkipVerify"
        )
    );
    let http = simple(
        json!({"host": "http://a.example.com:9200", "allowInsecureHttp": true, "basicAuth": {"secretRef": {"name": "c"}}}),
    );
    let r = refused(&e, &http);
    assert_eq!(
        (r.reason, r.field.as_str()),
        (
            Reason::InsecureHttpNotAllowed,
            "spec.source.remote.allowInsecureHttp"
        )
    );
    let g = eff(
        &flag(&["*"]),
        &[(
            "g",
            json!({"allowInsecureSkipVerify": true, "allowInsecureHttp": true}),
        )],
    );
    assert!(g.check(&tls, None).is_ok() && g.check(&http, None).is_ok());
}

#[test]
fn the_smallest_rate_and_slice_maxima_apply() {
    let e = eff(
        &flag(&["*"]),
        &[
            ("a", json!({"maxRequestsPerSecond": 500.0, "maxSlices": 8})),
            ("b", json!({"maxRequestsPerSecond": 100.0, "maxSlices": 4})),
        ],
    );
    let base = |extra: serde_json::Value| {
        let mut v = json!({"source": {"remote": {"host": "https://a.example.com"}, "index": "l"}, "dest": {"index": "c"}});
        merge(&mut v, extra);
        spec(v)
    };
    let r = refused(&e, &base(json!({"requestsPerSecond": 200.0})));
    assert_eq!(
        (r.reason, r.by.as_str()),
        (
            Reason::RateLimitExceeded,
            "ReindexPolicy/b spec.maxRequestsPerSecond"
        )
    );
    assert_eq!(
        refused(&e, &base(json!({}))).reason,
        "RateLimitExceeded",
        "unlimited is above any maximum"
    );
    let ok = e
        .check(&base(json!({"requestsPerSecond": 100.0})), None)
        .unwrap();
    assert_eq!(ok.rate_ceiling.map(|r| r.0), Some(100.0));
    let r = refused(
        &e,
        &base(json!({"requestsPerSecond": 50.0, "source": {"slices": 5}})),
    );
    assert_eq!(
        (r.reason, r.field.as_str()),
        (Reason::SlicesNotAllowed, "spec.source.slices")
    );
    let r = refused(
        &e,
        &base(json!({"requestsPerSecond": 50.0, "source": {"slices": "auto"}})),
    );
    assert_eq!(r.reason, "SlicesNotAllowed");
    assert!(
        e.check(
            &base(json!({"requestsPerSecond": 50.0, "source": {"slices": 4}})),
            None
        )
        .is_ok()
    );
}

#[test]
fn dot_indices_need_an_explicit_dot_pattern() {
    let s = |index: &str| {
        spec(
            json!({"source": {"remote": {"host": "https://a.example.com"}, "index": "l"}, "dest": {"index": index}}),
        )
    };
    let e = eff(&flag(&["*"]), &[]);
    let r = refused(&e, &s(".kibana_1"));
    assert_eq!(
        (r.reason, r.field.as_str()),
        (Reason::DestIndexNotAllowed, "spec.dest.index")
    );
    assert!(e.check(&s("logs"), None).is_ok());
    let star = eff(
        &flag(&["*"]),
        &[("p", json!({"allowedDestIndices": ["*"]}))],
    );
    assert_eq!(
        refused(&star, &s(".security")).reason,
        "DestIndexNotAllowed"
    );
    let dot = eff(
        &flag(&["*"]),
        &[(
            "p",
            json!({"allowedDestIndices": ["team-a-*", ".team-a-*"]}),
        )],
    );
    assert!(
        dot.check(&s(".team-a-restore"), None)
            .unwrap()
            .allow_system_indices
    );
    assert_eq!(refused(&dot, &s("logs")).reason, "DestIndexNotAllowed");
    let flagged = OperatorLimits {
        allow_system_indices: true,
        ..flag(&["*"])
    };
    assert!(eff(&flagged, &[]).check(&s(".kibana_1"), None).is_ok());
}

#[test]
fn the_secret_label_is_required_unless_waived_without_a_deny() {
    let e = eff(&flag(&["*"]), &[]);
    assert!(e.secret_label_required().is_some());
    let waived = eff(
        &flag(&["*"]),
        &[("w", json!({"requireSecretLabel": false}))],
    );
    assert_eq!(waived.secret_label_required(), None);
    let both = eff(
        &flag(&["*"]),
        &[
            ("w", json!({"requireSecretLabel": false})),
            ("r", json!({"requireSecretLabel": true})),
        ],
    );
    assert_eq!(
        both.secret_label_required().as_deref(),
        Some("ReindexPolicy/r spec.requireSecretLabel")
    );
}

#[test]
fn link_local_ips_are_the_intersection_of_the_lists() {
    let e = eff(
        &flag(&["*"]),
        &[
            (
                "a",
                json!({"allowedLinkLocalIPs": ["169.254.1.1", "169.254.2.2"]}),
            ),
            ("b", json!({"allowedLinkLocalIPs": ["169.254.2.2"]})),
            ("c", json!({})),
        ],
    );
    assert_eq!(
        e.allowed_link_local(),
        vec!["169.254.2.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(eff(&flag(&["*"]), &[]).allowed_link_local().is_empty());
    let bad = eff(
        &flag(&["*"]),
        &[("x", json!({"allowedLinkLocalIPs": ["169.254.0.0/16"]}))],
    );
    let r = refused(&bad, &simple(json!({"host": "https://a.example.com"})));
    assert_eq!(r.reason, "PolicyInvalid");
}

/// Issue 22: the aliases a cutover points at the destination index are names the operator
/// writes on the destination, held to `allowedDestIndices` like `dest.index`: another team's
/// alias (or a `.` alias without a `.` pattern) is refused, naming the alias and its field.
#[test]
fn cutover_aliases_are_held_to_allowed_dest_indices() {
    let s = |aliases: serde_json::Value| {
        spec(json!({
            "source": {"remote": {"host": "https://a.example.com"}, "index": "l"},
            "dest": {"index": "team-a-logs"},
            "catchUp": {"field": "ts"},
            "cutover": {"aliases": aliases},
        }))
    };
    let e = eff(
        &flag(&["*"]),
        &[("p", json!({"allowedDestIndices": ["team-a-*"]}))],
    );
    assert!(e.check(&s(json!(["team-a-live"])), None).is_ok());
    let r = refused(&e, &s(json!(["team-a-live", "team-b-live"])));
    assert_eq!(r.reason, "DestIndexNotAllowed");
    assert_eq!(r.field, "spec.cutover.aliases[1]");
    assert!(r.message.contains("`team-b-live`"), "{r}");
    assert!(
        r.by.contains("ReindexPolicy/p spec.allowedDestIndices"),
        "{r}"
    );
    // A `.` alias needs a `.` pattern, as a `.` index does.
    let star = eff(
        &flag(&["*"]),
        &[("p", json!({"allowedDestIndices": ["*"]}))],
    );
    let r = refused(&star, &s(json!([".kibana"])));
    assert_eq!(
        (r.reason, r.field.as_str()),
        (Reason::DestIndexNotAllowed, "spec.cutover.aliases[0]")
    );
    // Without a list, every ordinary name stays allowed (the default), `.` names are not.
    let none = eff(&flag(&["*"]), &[]);
    assert!(none.check(&s(json!(["anything"])), None).is_ok());
    assert_eq!(
        refused(&none, &s(json!([".security"]))).reason,
        "DestIndexNotAllowed"
    );
}

/// A Migration's templates and aliases (issue 22): every index pattern, template alias and
/// copied alias is held to `allowedDestIndices`; a template pattern must be covered as a
/// pattern (its `*` matches anything), and one starting with `*` also matches `.` names.
#[test]
fn template_patterns_and_aliases_are_held_to_allowed_dest_indices() {
    use super::check::covers;
    let t = |p: &str| {
        DestName::new(
            "spec.metadata.templates",
            DestNameKind::TemplatePattern("t".into()),
            p,
        )
    };
    let alias = |a: &str| DestName::new("spec.metadata.aliases", DestNameKind::Alias, a);
    let e = eff(
        &flag(&["*"]),
        &[("p", json!({"allowedDestIndices": ["team-a-*"]}))],
    );
    assert!(
        e.check_dest_names(&[t("team-a-logs-*"), t("team-a-x"), alias("team-a-live")])
            .is_ok()
    );
    for (bad, shown) in [
        (t("*"), "index pattern `*` of template `t`"),
        (t("team-*"), "index pattern `team-*` of template `t`"),
        (t("team-a*"), "index pattern `team-a*` of template `t`"),
        (alias("team-b-live"), "alias `team-b-live`"),
        (
            DestName::new(
                "spec.metadata.templates",
                DestNameKind::TemplateAlias("t".into()),
                "everyone",
            ),
            "alias `everyone` of template `t`",
        ),
    ] {
        let r = e
            .check_dest_names(&[alias("team-a-ok"), bad.clone()])
            .unwrap_err();
        assert_eq!(r.reason, "DestIndexNotAllowed", "{bad:?}");
        assert_eq!(r.field, bad.field);
        assert!(r.message.contains(shown), "{r}");
        assert!(
            r.by.contains("ReindexPolicy/p spec.allowedDestIndices"),
            "{r}"
        );
    }
    // `*` is allowed only where `.` names are: `*` alone covers ordinary names, not `.` ones.
    let star = eff(
        &flag(&["*"]),
        &[("p", json!({"allowedDestIndices": ["*"]}))],
    );
    let r = star.check_dest_names(&[t("*")]).unwrap_err();
    assert!(
        r.message.contains("also matches names starting with `.`"),
        "{r}"
    );
    let all = eff(
        &flag(&["*"]),
        &[("p", json!({"allowedDestIndices": ["*", ".*"]}))],
    );
    assert!(all.check_dest_names(&[t("*"), t("*-logs")]).is_ok());
    // Without a list: ordinary names pass, a catch-all template does not.
    let none = eff(&flag(&["*"]), &[]);
    assert!(none.check_dest_names(&[t("logs-*"), alias("live")]).is_ok());
    assert_eq!(
        none.check_dest_names(&[t("*")]).unwrap_err().reason,
        "DestIndexNotAllowed"
    );
    let flagged = OperatorLimits {
        allow_system_indices: true,
        ..flag(&["*"])
    };
    assert!(eff(&flagged, &[]).check_dest_names(&[t("*")]).is_ok());
    // The pattern rule itself.
    assert!(covers("team-a-*", "team-a-logs-*"));
    assert!(covers("a*b", "a*b"));
    assert!(covers("a*", "a*b*c"));
    assert!(
        !covers("team-?", "team-*"),
        "`?` is one character, `*` any number"
    );
    assert!(!covers("team-a-*", "team-*"));
    assert!(!covers("logs", "logs*"));
    assert!(covers("logs-?", "logs-1") && !covers("logs-?", "logs-12"));
}
