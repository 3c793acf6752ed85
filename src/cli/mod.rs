//! The command line: `remote-reindex run -f …`, `remote-reindex crd`, `remote-reindex docs`,
//! `remote-reindex controller`.

mod local;
pub mod manifest;
mod migrate;
mod plan;
mod progress;
mod run;

use crate::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};

/// Copies Elasticsearch/OpenSearch indices from a remote cluster, as a Kubernetes operator or
/// from the command line.
#[derive(Debug, Parser)]
#[command(name = "remote-reindex", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "REMOTE_REINDEX_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one copy from manifests, without Kubernetes (exit codes: 0 copied and verified,
    /// 1 copy or verification failed, 2 invalid input, 3 pre-flight failure, 130 interrupted).
    Run(local::RunArgs),
    /// Print a CustomResourceDefinition (YAML): `remotereindex` (default), `reindexpolicy` or
    /// `migration`.
    Crd {
        /// Which CRD.
        #[arg(value_enum, default_value_t = CrdKind::Remotereindex)]
        kind: CrdKind,
    },
    /// Resolve a Migration's indices against its source and print what it would copy, flag
    /// what the destination will reject and list what is not migrated; writes nothing
    /// (exit codes: 0, 2 invalid input, 3 pre-flight failure).
    Plan(plan::PlanArgs),
    /// Print a field reference generated from a CRD schema (Markdown): `remotereindex` (default,
    /// `docs/reference.md`) or `migration` (`docs/migration-reference.md`).
    Docs {
        /// Which CRD.
        #[arg(value_enum, default_value_t = CrdKind::Remotereindex)]
        kind: CrdKind,
    },
    /// Run the Kubernetes operator (kubeconfig or in-cluster; exit code 1 on a startup error).
    Controller(crate::controller::ControllerArgs),
}

/// The CRDs `remote-reindex crd` prints.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CrdKind {
    /// `remotereindexes.reindex.dev` (`crds/remotereindex.yaml`).
    Remotereindex,
    /// `reindexpolicies.reindex.dev` (`crds/reindexpolicy.yaml`).
    Reindexpolicy,
    /// `migrations.reindex.dev` (`crds/migration.yaml`).
    Migration,
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    crate::search::install_crypto_provider();
    match cli.command {
        Command::Crd { kind } => {
            match kind {
                CrdKind::Remotereindex => print!("{}", crate::api::crd_yaml()),
                CrdKind::Reindexpolicy => print!("{}", crate::api::policy_crd_yaml()),
                CrdKind::Migration => print!("{}", crate::api::migration_crd_yaml()),
            }
            0
        }
        Command::Plan(args) => {
            telemetry::init(cli.log_format, "warn");
            runtime().block_on(plan::run(args))
        }
        Command::Docs { kind } => {
            match kind {
                CrdKind::Remotereindex => print!("{}", crate::api::reference::reference_markdown()),
                CrdKind::Reindexpolicy => {
                    eprintln!("the ReindexPolicy fields are documented in docs/security.md");
                    return 2;
                }
                CrdKind::Migration => {
                    print!("{}", crate::api::reference::migration_reference_markdown())
                }
            }
            0
        }
        Command::Run(args) => {
            telemetry::init(cli.log_format, "warn");
            runtime().block_on(async move {
                match manifest::Manifests::load_any(&args.files) {
                    Ok(manifest::Loaded::Reindex(m)) => run::run(*m, args).await,
                    Ok(manifest::Loaded::Migration(m)) => migrate::run(*m, args).await,
                    Err(e) => {
                        eprintln!("error: {e}");
                        2
                    }
                }
            })
        }
        Command::Controller(args) => {
            telemetry::init(cli.log_format, "info");
            match runtime().block_on(crate::controller::run(args)) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "the controller stopped");
                    eprintln!("error: {e}");
                    1
                }
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
