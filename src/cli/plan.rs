//! `remote-reindex plan -f migration.yaml`: resolves a Migration against its source and prints
//! what it would copy, without writing anything.

use super::local::{RunArgs, local_settings};
use super::manifest::{Loaded, Manifests};
use crate::migration::plan::{build, connect_migration};
use std::path::PathBuf;

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Manifest files: one Migration and the Secrets/ConfigMaps it references.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Destination cluster when the Migration has no `spec.dest.remote`.
    #[arg(long, env = "REMOTE_REINDEX_DEST_HOST")]
    pub dest_host: Option<String>,
    /// `text` (a table) or `json`.
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

/// Prints the plan; returns the exit code (0, 2 invalid input, 3 pre-flight failure).
pub async fn run(args: PlanArgs) -> i32 {
    let m = match Manifests::load_any(&args.files) {
        Ok(Loaded::Migration(m)) => *m,
        Ok(Loaded::Reindex(_)) => {
            eprintln!(
                "error: plan takes a Migration (reindex.dev/v1alpha1); a RemoteReindex copies one index as given"
            );
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let run_args = RunArgs {
        files: args.files.clone(),
        dest_host: args.dest_host.clone(),
        allow_system_indices: false,
        preflight_timeout: None,
    };
    let settings = local_settings(&run_args, &m.namespace);
    let conn = match connect_migration(&m.reindex.spec, &m.secrets(), &settings).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.reason());
            return e.exit_code();
        }
    };
    let name = m.reindex.metadata.name.clone().unwrap_or_default();
    match build(&conn, &m.reindex.spec, &name).await {
        Ok(plan) if args.output == "json" => {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).expect("the plan serializes")
            );
            0
        }
        Ok(plan) => {
            print!("{}", plan.render());
            0
        }
        Err(e) => {
            eprintln!("error [{}]: {e}", crate::workflow::search_reason(&e));
            3
        }
    }
}
