//! What a local run (`remote-reindex run -f`) is given: its arguments, and the workflow
//! settings they make (no tenant policy; the manifest names the clusters).

use crate::api::Endpoint;
use crate::api::validate::Policy;
use crate::workflow::{PreflightSettings, Settings};
use std::path::PathBuf;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Manifest files (multi-document YAML; `-` for standard input): one RemoteReindex (or one
    /// Migration) and the Secrets/ConfigMaps it references.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Destination cluster when the resource has no `spec.dest.remote`.
    #[arg(long, env = "REMOTE_REINDEX_DEST_HOST")]
    pub dest_host: Option<String>,
    /// Allow destination index names that start with `.`.
    #[arg(long)]
    pub allow_system_indices: bool,
    /// How long an unreachable cluster (refused, silent, DNS) or a missing Secret is retried
    /// before exit 3, e.g. `10s`, `2m`; wins over the manifest's `spec.preflightTimeout`
    /// [default: the manifest's, else 30s]. Refused credentials (401/403) are never retried here.
    #[arg(long, value_name = "DURATION", value_parser = crate::api::units::parse_duration)]
    pub preflight_timeout: Option<std::time::Duration>,
}

/// Driver settings of a local run: `--dest-host` and `--allow-system-indices`.
pub(super) fn local_settings(args: &RunArgs, namespace: &str) -> Settings {
    Settings {
        dest_default: args.dest_host.clone().map(|host| Endpoint {
            host,
            ..Default::default()
        }),
        policy: Policy {
            allow_system_indices: args.allow_system_indices,
        },
        namespace: namespace.to_string(),
        user_agent: None,
        link_local_allowed: None,
        preflight: PreflightSettings::cli(args.preflight_timeout),
        fence: None,
        opaque_id: None,
    }
}
