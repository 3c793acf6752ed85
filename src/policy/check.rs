//! [`Effective::check`]: a spec against the combined policy, field by field, in the order a user
//! reads them (source, destination, limits). Nothing here touches the network.

use super::{Effective, Globs, Refusal};
use crate::api::units::Slices;
use crate::api::{Endpoint, Reason, RemoteReindexSpec};
use crate::net::host_port;
use std::net::IpAddr;
use url::Url;

/// What the policy allowed, for the rest of the copy: the Secret label rule, the DNS step's
/// allowances, the rate ceiling for later rethrottles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    /// `Some(why)` when Secrets must carry the label `reindex.dev/use: "true"`.
    pub secret_label: Option<String>,
    /// Link-local/metadata addresses the hosts may resolve to.
    pub allowed_link_local: Vec<IpAddr>,
    /// Who refuses other link-local addresses (for messages).
    pub link_local_by: String,
    /// The highest `requestsPerSecond` the copy may be rethrottled to, and who set it.
    pub rate_ceiling: Option<(f64, String)>,
    /// Whether a destination index starting with `.` was allowed (by flag or policy).
    pub allow_system_indices: bool,
    /// Hosts the copy connects to, checked after DNS resolution: (field, host, port).
    pub connect_to: Vec<(String, String, u16)>,
    /// The `ReindexPolicy` resources that selected the namespace.
    pub policies: Vec<String>,
    /// The most slices the copier may choose by itself when `spec.source.slices` is unset or
    /// `auto` (the policies' lowest `maxSlices`; for the workflow's `Job::slices_at_most`).
    pub max_slices: Option<u32>,
}

/// What a name the operator writes on the destination is (for messages and matching).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestNameKind {
    /// An index name.
    Index,
    /// An alias name.
    Alias,
    /// An `index_patterns` entry of the template with this name: its `*` stands for any
    /// text, so an allowed pattern must cover every name it can match.
    TemplatePattern(String),
    /// An alias in the template with this name (every index it creates will carry it).
    TemplateAlias(String),
}

/// A name the operator will write on the destination besides `spec.dest.index`, with the
/// field it comes from (checked by [`Effective::check_dest_names`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestName {
    /// The spec field named in the refusal, e.g. `spec.cutover.aliases[1]`.
    pub field: String,
    /// What it is.
    pub kind: DestNameKind,
    /// The name or pattern.
    pub name: String,
}

impl DestName {
    /// A name of `kind` from `field`.
    pub fn new(field: impl Into<String>, kind: DestNameKind, name: impl Into<String>) -> Self {
        DestName {
            field: field.into(),
            kind,
            name: name.into(),
        }
    }

    fn shown(&self) -> String {
        match &self.kind {
            DestNameKind::Index => format!("destination index `{}`", self.name),
            DestNameKind::Alias => format!("alias `{}`", self.name),
            DestNameKind::TemplatePattern(t) => {
                format!("index pattern `{}` of template `{t}`", self.name)
            }
            DestNameKind::TemplateAlias(t) => format!("alias `{}` of template `{t}`", self.name),
        }
    }
}

/// Whether glob `allowed` (`*`, `?`) matches every name `name` can stand for. A `*` in `name`
/// (a template's index pattern) is itself a wildcard, so it must fall inside a `*` of
/// `allowed`; for a plain name (no `*`) this is ordinary glob matching.
pub(crate) fn covers(allowed: &str, name: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (allowed.chars().collect(), name.chars().collect());
    // m[j]: p[..i] covers t[..j], row by row.
    let mut m = vec![false; t.len() + 1];
    m[0] = true;
    for &pc in &p {
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            next[j] = match pc {
                '*' => m[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && t[j - 1] != '*' && m[j - 1],
                c => j > 0 && t[j - 1] == c && m[j - 1],
            };
        }
        m = next;
    }
    m[t.len()]
}

/// Which host lists an endpoint is held to.
enum Side {
    /// `spec.source.remote`: the flag and `allowedSourceHosts`.
    Source,
    /// `spec.dest.remote`: the flag and `allowedDestHosts`.
    Dest,
    /// The operator's `--dest-host`: only `allowedDestHosts`.
    OperatorDest,
}

impl Effective {
    /// Checks `spec` (the destination defaults to `dest_default`, the operator's `--dest-host`).
    /// The first refusal is returned; nothing is connected to.
    pub fn check(
        &self,
        spec: &RemoteReindexSpec,
        dest_default: Option<&Endpoint>,
    ) -> Result<Decision, Refusal> {
        let mut d = Decision {
            secret_label: self.secret_label_required(),
            allowed_link_local: self.allowed_link_local(),
            link_local_by: self.link_local_by(),
            rate_ceiling: self.max_rps.clone(),
            policies: self.policies.clone(),
            max_slices: self.max_slices.as_ref().map(|(m, _)| *m),
            ..Default::default()
        };
        if let Some((by, ip)) = self.bad_ips.first() {
            return Err(Refusal {
                reason: Reason::PolicyInvalid,
                field: "spec.source.remote.host".into(),
                message: format!("`{ip}` in allowedLinkLocalIPs is not an IP address"),
                by: by.clone(),
            });
        }
        self.endpoint(
            "spec.source.remote",
            &spec.source.remote,
            Side::Source,
            &mut d,
        )?;
        match (&spec.dest.remote, dest_default) {
            (Some(ep), _) => self.endpoint("spec.dest.remote", ep, Side::Dest, &mut d)?,
            (None, Some(ep)) => {
                self.endpoint("spec.dest.remote", ep, Side::OperatorDest, &mut d)?
            }
            (None, None) => {} // validation reports the missing destination
        }
        d.allow_system_indices = self.dest_name(&DestName::new(
            "spec.dest.index",
            DestNameKind::Index,
            spec.dest.index.clone(),
        ))?;
        let aliases: Vec<DestName> = spec
            .cutover
            .iter()
            .flat_map(|c| c.aliases.iter().enumerate())
            .map(|(i, a)| {
                DestName::new(
                    format!("spec.cutover.aliases[{i}]"),
                    DestNameKind::Alias,
                    a.clone(),
                )
            })
            .collect();
        self.check_dest_names(&aliases)?;
        self.limits(spec)?;
        Ok(d)
    }

    /// Checks names the operator writes on the destination besides `spec.dest.index` (a
    /// cutover's aliases, a Migration's copied aliases and templates) by the same rule as
    /// `dest.index`: every `allowedDestIndices` list that is set must cover the name, and a
    /// name that starts with `.` (or a pattern that can match one, `*...`) needs a `.` pattern
    /// or `--allow-system-indices`. The first refusal is returned, reason
    /// `DestIndexNotAllowed`, naming the name.
    pub fn check_dest_names(&self, names: &[DestName]) -> Result<(), Refusal> {
        for n in names {
            self.dest_name(n)?;
            // A pattern starting with `*` also matches `.` names: held to the `.` rule too.
            if matches!(n.kind, DestNameKind::TemplatePattern(_)) && n.name.starts_with('*') {
                self.dest_name(&DestName {
                    name: format!(".{}", n.name),
                    ..n.clone()
                })
                .map_err(|mut r| {
                    r.message = format!(
                        "{} also matches names starting with `.` (system and hidden indices): {}",
                        n.shown(),
                        r.message
                    );
                    r
                })?;
            }
        }
        Ok(())
    }

    fn endpoint(
        &self,
        field: &str,
        ep: &Endpoint,
        side: Side,
        d: &mut Decision,
    ) -> Result<(), Refusal> {
        let mut lists: Vec<&Globs> = Vec::new();
        let mut what = "remote host";
        match side {
            Side::Source => lists.extend(&self.source_hosts),
            Side::Dest => {
                lists.extend(&self.flag_hosts);
                lists.extend(&self.dest_hosts);
                what = "destination host";
            }
            Side::OperatorDest => {
                lists.extend(&self.dest_hosts);
                what = "the operator's --dest-host";
            }
        }
        // The operator's own destination is allowed unless a policy narrows it.
        let none_set = lists.is_empty() && !matches!(side, Side::OperatorDest);
        let hosts_field = match side {
            Side::Source => "allowedSourceHosts",
            _ => "allowedDestHosts",
        };
        let check = |url_field: String, url: &Url| -> Result<(), Refusal> {
            let hp = host_port(url);
            if none_set {
                let by = if self.policies.is_empty() {
                    format!(
                        "the default: the operator was started without --allowed-remote-hosts and no ReindexPolicy selects namespace `{}`",
                        self.namespace
                    )
                } else {
                    self.default_by(hosts_field)
                };
                return Err(Refusal {
                    reason: Reason::HostNotAllowed,
                    field: url_field,
                    message: format!("{what} {hp} is not allowed: no host is"),
                    by,
                });
            }
            if let Some(g) = lists.iter().find(|g| !g.matches(&hp)) {
                return Err(Refusal {
                    reason: Reason::HostNotAllowed,
                    field: url_field,
                    message: format!("{what} {hp} is not allowed (allowed: {})", g.shown()),
                    by: g.by.clone(),
                });
            }
            Ok(())
        };
        // An unparsable URL is left to validation, which refuses it before any connection.
        if let Some(url) = parse(&ep.host) {
            check(format!("{field}.host"), &url)?;
            push_target(d, &format!("{field}.host"), &url);
        }
        if let Some(proxy) = ep.proxy.as_ref().and_then(|p| parse(&p.url)) {
            check(format!("{field}.proxy.url"), &proxy)?;
            push_target(d, &format!("{field}.proxy.url"), &proxy);
        }
        if matches!(side, Side::OperatorDest) {
            return Ok(()); // configured by the operator, not by the namespace
        }
        let aws = ep.aws_auth();
        if let Some(a) = &aws
            && a.credentials_secret_ref.is_none()
            && ep.basic_auth.is_none()
            && ep.api_key.is_none()
            && ep.bearer_token.is_none()
        {
            let f = if ep.aws.is_some() { "aws" } else { "region" };
            self.ambient_aws
                .check(&self.default_by("allowAmbientAwsIdentity"))
                .map_err(|by| Refusal {
                    reason: Reason::AmbientIdentityNotAllowed,
                    field: format!("{field}.{f}"),
                    message: "signing with the operator's own AWS identity is not allowed; put credentials in a Secret and set aws.credentialsSecretRef".into(),
                    by,
                })?;
        }
        if ep.tls.as_ref().and_then(|t| t.insecure_skip_verify) == Some(true) {
            self.insecure_skip_verify
                .check(&self.default_by("allowInsecureSkipVerify"))
                .map_err(|by| Refusal {
                    reason: Reason::InsecureTLSNotAllowed,
                    field: format!("{field}.tls.insecureSkipVerify"),
                    message: "turning off TLS certificate verification is not allowed; give the CA in tls.caSecretRef or tls.caConfigMapRef".into(),
                    by,
                })?;
        }
        if ep.allow_insecure_http == Some(true) {
            self.insecure_http
                .check(&self.default_by("allowInsecureHttp"))
                .map_err(|by| Refusal {
                    reason: Reason::InsecureHttpNotAllowed,
                    field: format!("{field}.allowInsecureHttp"),
                    message: "sending credentials over plain http is not allowed; use https".into(),
                    by,
                })?;
        }
        Ok(())
    }

    /// A name written on the destination (`dest.index`, an alias, a template pattern): `.`
    /// names need a `.` pattern (or `--allow-system-indices`), and every `allowedDestIndices`
    /// list that is set must cover it. Returns whether a `.` name passed.
    fn dest_name(&self, n: &DestName) -> Result<bool, Refusal> {
        let name = n.name.as_str();
        let refuse = |message: String, by: String| Refusal {
            reason: Reason::DestIndexNotAllowed,
            field: n.field.clone(),
            message,
            by,
        };
        let dot = name.starts_with('.');
        let dot_match = |g: &Globs| {
            g.patterns
                .iter()
                .any(|p| p.starts_with('.') && covers(p, name))
        };
        for g in &self.dest_indices {
            let ok = if dot {
                dot_match(g)
            } else {
                g.patterns.iter().any(|p| covers(p, name))
            };
            if !ok {
                return Err(refuse(
                    format!(
                        "{} is not allowed (allowed: {}{})",
                        n.shown(),
                        g.shown(),
                        if dot {
                            "; names starting with `.` need a pattern starting with `.`"
                        } else {
                            ""
                        }
                    ),
                    g.by.clone(),
                ));
            }
        }
        if dot && !self.allow_system_indices_flag && !self.dest_indices.iter().any(dot_match) {
            return Err(refuse(
                format!(
                    "{} is a system or hidden name (starts with `.`); list it in allowedDestIndices with a pattern starting with `.`",
                    n.shown()
                ),
                self.default_by("allowedDestIndices"),
            ));
        }
        Ok(dot)
    }

    fn limits(&self, spec: &RemoteReindexSpec) -> Result<(), Refusal> {
        if let Some((max, by)) = &self.max_rps {
            match spec.requests_per_second {
                Some(r) if r <= *max => {}
                asked => {
                    return Err(Refusal {
                        reason: Reason::RateLimitExceeded,
                        field: "spec.requestsPerSecond".into(),
                        message: format!(
                            "{} exceeds the maximum of {max} documents/s; set requestsPerSecond to at most {max}",
                            asked.map_or("unlimited (unset)".to_string(), |r| r.to_string())
                        ),
                        by: by.clone(),
                    });
                }
            }
        }
        if let Some((max, by)) = &self.max_slices {
            let (asked, shown) = match spec.source.slices.clone().unwrap_or_default() {
                Slices::Count(n) => (n, n.to_string()),
                Slices::Auto(_) => (16, "auto (up to 16)".to_string()),
            };
            if asked > *max {
                return Err(Refusal {
                    reason: Reason::SlicesNotAllowed,
                    field: "spec.source.slices".into(),
                    message: format!("{shown} slices exceed the maximum of {max}"),
                    by: by.clone(),
                });
            }
        }
        Ok(())
    }
}

fn parse(s: &str) -> Option<Url> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn push_target(d: &mut Decision, field: &str, url: &Url) {
    let host = match url.host() {
        Some(url::Host::Domain(h)) => h.to_string(),
        Some(url::Host::Ipv4(a)) => a.to_string(),
        Some(url::Host::Ipv6(a)) => a.to_string(),
        None => return,
    };
    let port = url.port_or_known_default().unwrap_or(80);
    d.connect_to.push((field.to_string(), host, port));
}
