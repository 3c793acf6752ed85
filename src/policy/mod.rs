//! What a `RemoteReindex` may ask of the operator: the operator-wide flags, the `ReindexPolicy`
//! resources that select its namespace, and the safe defaults, combined into one [`Effective`]
//! policy and checked against a spec ([`Effective::check`]) before any connection is made.
//!
//! Pure logic, no Kubernetes client: the controller selects the policies (see
//! `controller::policy`) and runs the DNS step ([`address`]); the CLI (`run -f`) uses none of
//! this, it is the user's own process.
//!
//! How several sources combine (a deny wins):
//! - lists (hosts, destination indices, link-local IPs): a value must be in every list that is
//!   set; when none is set the default applies (hosts: refused; link-local: refused);
//! - permissions (ambient AWS identity, `insecureSkipVerify`, `allowInsecureHttp`): granted only
//!   when a policy sets `true` and none sets `false`;
//! - maxima (requests per second, slices): the smallest that is set;
//! - `requireSecretLabel`: waived only when a policy sets `false` and none sets `true`.

pub mod address;
mod check;
#[cfg(test)]
mod tests;

pub use check::{Decision, DestName, DestNameKind};

use crate::api::ReindexPolicySpec;
use std::net::IpAddr;
use wildmatch::WildMatch;

/// The label a Secret must carry (value `"true"`) to be used, unless a policy waives it.
pub const SECRET_LABEL: &str = "reindex.dev/use";

/// Why a resource may not run: a condition reason, the spec field, and which policy (or default
/// or flag) refused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message} (refused by {by})")]
pub struct Refusal {
    /// The condition reason, e.g. `HostNotAllowed`.
    pub reason: crate::api::Reason,
    /// The spec field, e.g. `spec.source.remote.proxy.url`.
    pub field: String,
    /// What is refused and how to allow it.
    pub message: String,
    /// The policy and its field, e.g. `ReindexPolicy/team-a spec.allowedSourceHosts`, or the
    /// default / operator flag.
    pub by: String,
}

/// The operator-wide settings that take part in the policy.
#[derive(Clone, Debug, Default)]
pub struct OperatorLimits {
    /// `--allowed-remote-hosts`; `None` when the flag was not given (no remote host is allowed
    /// unless a `ReindexPolicy` lists it).
    pub allowed_remote_hosts: Option<Vec<String>>,
    /// `--allow-system-indices`.
    pub allow_system_indices: bool,
}

/// A host list with where it comes from.
#[derive(Clone, Debug)]
pub(crate) struct Globs {
    pub by: String,
    pub patterns: Vec<String>,
}

impl Globs {
    fn new(by: String, patterns: &[String]) -> Self {
        Globs {
            by,
            patterns: patterns.iter().map(|p| p.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether `value` matches one of the patterns.
    pub fn matches(&self, value: &str) -> bool {
        let v = value.to_ascii_lowercase();
        self.patterns.iter().any(|p| WildMatch::new(p).matches(&v))
    }

    pub fn shown(&self) -> String {
        if self.patterns.is_empty() {
            "nothing".into()
        } else {
            self.patterns.join(", ")
        }
    }
}

/// A permission: who grants it and who refuses it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Grant {
    pub granted_by: Option<String>,
    pub denied_by: Option<String>,
}

impl Grant {
    fn add(&mut self, value: Option<bool>, by: impl FnOnce() -> String) {
        match value {
            Some(true) if self.granted_by.is_none() => self.granted_by = Some(by()),
            Some(false) if self.denied_by.is_none() => self.denied_by = Some(by()),
            _ => {}
        }
    }

    /// `Ok` when granted; otherwise who refused it (a policy, or the default).
    pub fn check(&self, default: &str) -> Result<(), String> {
        match (&self.denied_by, &self.granted_by) {
            (Some(d), _) => Err(d.clone()),
            (None, Some(_)) => Ok(()),
            (None, None) => Err(default.to_string()),
        }
    }
}

/// The combined policy for one namespace.
#[derive(Clone, Debug)]
pub struct Effective {
    pub(crate) namespace: String,
    /// Names of the `ReindexPolicy` resources that select the namespace.
    pub policies: Vec<String>,
    pub(crate) source_hosts: Vec<Globs>,
    pub(crate) dest_hosts: Vec<Globs>,
    /// `--allowed-remote-hosts`, which limits an explicit `spec.dest.remote` too.
    pub(crate) flag_hosts: Option<Globs>,
    pub(crate) ambient_aws: Grant,
    pub(crate) insecure_skip_verify: Grant,
    pub(crate) insecure_http: Grant,
    pub(crate) max_rps: Option<(f64, String)>,
    pub(crate) max_slices: Option<(u32, String)>,
    pub(crate) dest_indices: Vec<Globs>,
    pub(crate) allow_system_indices_flag: bool,
    pub(crate) secret_label: Grant,
    pub(crate) link_local: Vec<(String, Vec<IpAddr>)>,
    /// Entries of `allowedLinkLocalIPs` that are not IP addresses (refused as invalid).
    pub(crate) bad_ips: Vec<(String, String)>,
}

impl Effective {
    /// Combines the operator's flags with the policies selecting `namespace` (name, spec).
    pub fn new(
        namespace: &str,
        limits: &OperatorLimits,
        selected: &[(String, ReindexPolicySpec)],
    ) -> Effective {
        let by = |name: &str, field: &str| format!("ReindexPolicy/{name} spec.{field}");
        let flag_hosts = limits
            .allowed_remote_hosts
            .as_ref()
            .map(|h| Globs::new("the operator's --allowed-remote-hosts".into(), h));
        let mut e = Effective {
            namespace: namespace.to_string(),
            policies: selected.iter().map(|(n, _)| n.clone()).collect(),
            source_hosts: Vec::new(),
            dest_hosts: Vec::new(),
            flag_hosts: flag_hosts.clone(),
            ambient_aws: Grant::default(),
            insecure_skip_verify: Grant::default(),
            insecure_http: Grant::default(),
            max_rps: None,
            max_slices: None,
            dest_indices: Vec::new(),
            allow_system_indices_flag: limits.allow_system_indices,
            secret_label: Grant::default(),
            link_local: Vec::new(),
            bad_ips: Vec::new(),
        };
        if let Some(f) = &flag_hosts {
            e.source_hosts.push(f.clone());
        }
        for (name, p) in selected {
            if let Some(h) = &p.allowed_source_hosts {
                e.source_hosts
                    .push(Globs::new(by(name, "allowedSourceHosts"), h));
            }
            if let Some(h) = &p.allowed_dest_hosts {
                e.dest_hosts
                    .push(Globs::new(by(name, "allowedDestHosts"), h));
            }
            e.ambient_aws.add(p.allow_ambient_aws_identity, || {
                by(name, "allowAmbientAwsIdentity")
            });
            e.insecure_skip_verify
                .add(p.allow_insecure_skip_verify, || {
                    by(name, "allowInsecureSkipVerify")
                });
            e.insecure_http
                .add(p.allow_insecure_http, || by(name, "allowInsecureHttp"));
            // The label requirement is the default: `false` is the grant (a waiver).
            e.secret_label.add(p.require_secret_label.map(|r| !r), || {
                by(name, "requireSecretLabel")
            });
            if let Some(r) = p.max_requests_per_second
                && e.max_rps.as_ref().is_none_or(|(m, _)| r < *m)
            {
                e.max_rps = Some((r, by(name, "maxRequestsPerSecond")));
            }
            if let Some(s) = p.max_slices {
                let s = s.clamp(1, u32::MAX as i64) as u32;
                if e.max_slices.as_ref().is_none_or(|(m, _)| s < *m) {
                    e.max_slices = Some((s, by(name, "maxSlices")));
                }
            }
            if let Some(d) = &p.allowed_dest_indices {
                // Index names are case-sensitive lowercase already; keep the patterns as given.
                e.dest_indices.push(Globs {
                    by: by(name, "allowedDestIndices"),
                    patterns: d.clone(),
                });
            }
            if let Some(ips) = &p.allowed_link_local_ips {
                let mut parsed = Vec::new();
                for ip in ips {
                    match ip.parse::<IpAddr>() {
                        Ok(a) => parsed.push(a),
                        Err(_) => e
                            .bad_ips
                            .push((by(name, "allowedLinkLocalIPs"), ip.clone())),
                    }
                }
                e.link_local.push((by(name, "allowedLinkLocalIPs"), parsed));
            }
        }
        e
    }

    /// Whether Secrets must carry [`SECRET_LABEL`], and if so, why (for messages).
    pub fn secret_label_required(&self) -> Option<String> {
        self.secret_label
            .check(&self.default_by("requireSecretLabel"))
            .err()
    }

    /// The link-local/metadata addresses every list that is set allows (none when no list is).
    pub fn allowed_link_local(&self) -> Vec<IpAddr> {
        let Some((_, first)) = self.link_local.first() else {
            return Vec::new();
        };
        first
            .iter()
            .filter(|ip| self.link_local.iter().all(|(_, l)| l.contains(ip)))
            .copied()
            .collect()
    }

    /// Who refuses a link-local address when no list allows it.
    pub fn link_local_by(&self) -> String {
        match self.link_local.iter().map(|(b, _)| b.as_str()).next() {
            Some(b) => b.to_string(),
            None => self.default_by("allowedLinkLocalIPs"),
        }
    }

    /// The description of a default for messages: no policy, or policies that leave `field` unset.
    pub(crate) fn default_by(&self, field: &str) -> String {
        if self.policies.is_empty() {
            format!(
                "the default: no ReindexPolicy selects namespace `{}` (set {field} in one)",
                self.namespace
            )
        } else {
            format!(
                "the default: ReindexPolicy {} leave {field} unset",
                self.policies
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}
