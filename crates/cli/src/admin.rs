//! `whirl admin`: operator commands on a platform's data directory.
//!
//! - `whirl admin namespace create <ns> [--subject S] [--uuid U --key K] [limits]` prints the new
//!   credentials `uuid:key` (shown this once: the store keeps only a hash of the key).
//! - `whirl admin namespace list` prints each namespace, subject, uuid and limits as JSON lines.
//! - `whirl admin namespace delete <ns>` removes a namespace's credentials.
//! - `whirl admin namespace limits <ns> [limits]` replaces a namespace's throttles.
//!
//! Limits: `--invocations-per-minute`, `--concurrent-invocations`, `--fires-per-minute` (left
//! out: the platform's defaults apply).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use whirl_model::UserLimits;

/// `whirl admin ...`.
#[derive(Args)]
pub struct AdminArgs {
    /// The platform's data directory (default: $XDG_DATA_HOME/whirl or ~/.local/share/whirl).
    #[arg(short, long, env = "WHIRL_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The platform's config file (for where its store is).
    #[arg(short, long, env = "WHIRL_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Namespaces, their subjects and keys.
    Namespace {
        #[command(subcommand)]
        command: NamespaceCommand,
    },
}

#[derive(Args)]
struct LimitArgs {
    /// Invokes per minute (429 beyond).
    #[arg(long)]
    invocations_per_minute: Option<u64>,
    /// Activations in flight at once (429 beyond).
    #[arg(long)]
    concurrent_invocations: Option<u64>,
    /// Trigger fires per minute (429 beyond).
    #[arg(long)]
    fires_per_minute: Option<u64>,
}

impl LimitArgs {
    fn limits(&self) -> UserLimits {
        UserLimits {
            invocations_per_minute: self.invocations_per_minute,
            concurrent_invocations: self.concurrent_invocations,
            fires_per_minute: self.fires_per_minute,
        }
    }
}

#[derive(Subcommand)]
enum NamespaceCommand {
    /// Create a namespace and print its credentials (`uuid:key`).
    Create {
        namespace: String,
        /// The subject owning it (default: the namespace's name).
        #[arg(long)]
        subject: Option<String>,
        /// Use this uuid (with --key) instead of fresh credentials.
        #[arg(long, requires = "key")]
        uuid: Option<String>,
        /// Use this key (with --uuid).
        #[arg(long, requires = "uuid")]
        key: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List namespaces (no keys: they are stored hashed).
    List,
    /// Delete a namespace's credentials (its entities stay).
    Delete { namespace: String },
    /// Replace a namespace's limits.
    Limits {
        namespace: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// Runs an admin command.
pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let cfg = whirl_compose::Config::load(args.config.as_deref())?;
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => whirl_compose::default_data_dir()?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use whirl_compose::admin;
        let AdminCommand::Namespace { command } = args.command;
        match command {
            NamespaceCommand::Create {
                namespace,
                subject,
                uuid,
                key,
                limits,
            } => {
                let spec = admin::NewNamespace {
                    namespace,
                    subject,
                    uuid,
                    key,
                    limits: limits.limits(),
                };
                let (uuid, key) = admin::create_namespace(&cfg, &data_dir, spec).await?;
                println!("{uuid}:{key}");
            }
            NamespaceCommand::List => {
                for r in admin::list_namespaces(&cfg, &data_dir).await? {
                    println!(
                        "{}",
                        json!({"namespace": r.namespace, "subject": r.subject, "uuid": r.uuid, "limits": r.limits})
                    );
                }
            }
            NamespaceCommand::Delete { namespace } => {
                let existed = admin::delete_namespace(&cfg, &data_dir, &namespace).await?;
                anyhow::ensure!(existed, "namespace '{namespace}' does not exist");
                println!("deleted namespace {namespace}");
            }
            NamespaceCommand::Limits { namespace, limits } => {
                let found = admin::set_limits(&cfg, &data_dir, &namespace, limits.limits())
                    .await
                    .context("cannot set the limits")?;
                anyhow::ensure!(found, "namespace '{namespace}' does not exist");
                println!("limits of {namespace} set");
            }
        }
        Ok(())
    })
}
