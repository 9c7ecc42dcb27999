//! The `whirl` binary. A thin shell: it parses the command line, loads the configuration and hands
//! over to the composition root (`whirl-compose`) or to the in-container runtime (`whirl-runtime`).
//!
//! - `whirl standalone`: the whole platform in one process on 127.0.0.1:3233.
//! - `whirl controller`, `whirl invoker`: the processes of a distributed deployment.
//! - `whirl config print`: the effective configuration.
//! - `whirl runtime` (hidden): the action runtime a container factory starts inside each container.

mod client;

mod admin;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "whirl",
    version,
    about = "Whirl: an OpenWhisk-compatible serverless platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole platform (controller and invoker) in this process with embedded defaults.
    Standalone(StandaloneArgs),
    /// Run a controller of a distributed deployment: the REST API and the load balancers, joined
    /// to invokers by the configured messaging (`[messaging] type = "nats"`) and store
    /// (`[store] type = "postgres"`), with `[load_balancer] type = "sharding"`.
    Controller(StandaloneArgs),
    /// Run an invoker of a distributed deployment: it takes activations from its bus topic
    /// (`invoker<index>`), runs them in containers and stores their records. Its id and index come
    /// from `[invoker]` (`--id` overrides).
    Invoker(InvokerArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Operator commands on a platform's data directory: namespaces and their keys.
    Admin(admin::AdminArgs),
    /// The in-container action runtime (started by container factories, not by people).
    #[command(hide = true)]
    Runtime(RuntimeCommand),
    /// The wsk-compatible client: action, activation, package, trigger, rule, namespace, property.
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(clap::Args)]
struct StandaloneArgs {
    /// Port of the REST API (overrides the config file).
    #[arg(short, long)]
    port: Option<u16>,
    /// Address to bind the REST API to (overrides the config file).
    #[arg(long)]
    bind: Option<String>,
    /// Where Whirl keeps its database and containers' files
    /// (default: $XDG_DATA_HOME/whirl or ~/.local/share/whirl).
    #[arg(short, long, env = "WHIRL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML config file; its sections replace the built-in defaults.
    #[arg(short, long, env = "WHIRL_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct InvokerArgs {
    /// The invoker's stable id (overrides `[invoker] id`); its index defaults to the id's
    /// trailing number.
    #[arg(long)]
    id: Option<String>,
    /// Where the invoker keeps its containers' files.
    #[arg(short, long, env = "WHIRL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML config file; its sections replace the built-in defaults.
    #[arg(short, long, env = "WHIRL_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (built-in defaults with the file's sections applied).
    Print {
        #[arg(short, long, env = "WHIRL_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RuntimeCommand {
    /// Enter the process factory's sandbox first (JSON sandbox spec).
    #[arg(long)]
    sandbox: Option<String>,
    #[command(flatten)]
    args: whirl_runtime::RuntimeArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Runtime(rt) => {
            // No threads exist yet: the sandbox forks and changes namespaces.
            if let Some(spec) = rt.sandbox {
                let spec = serde_json::from_str(&spec).context("bad --sandbox spec")?;
                whirl_container_process::sandbox::enter(&spec)?;
            }
            whirl_runtime::run(rt.args)
        }
        Command::Config {
            command: ConfigCommand::Print { config },
        } => {
            let cfg = whirl_compose::Config::load(config.as_deref())?;
            print!("{}", cfg.to_toml()?);
            Ok(())
        }
        Command::Standalone(args) => standalone(args, Server::Standalone),
        Command::Controller(args) => standalone(args, Server::Controller),
        Command::Invoker(args) => invoker(args),
        Command::Admin(args) => admin::run(args),
        Command::Client(c) => client::run(c, <Cli as clap::CommandFactory>::command),
    }
}

enum Server {
    Standalone,
    Controller,
}

fn invoker(args: InvokerArgs) -> anyhow::Result<()> {
    let mut cfg = whirl_compose::Config::load(args.config.as_deref())?;
    // Dropped after the runtime (declared before it): flushes the spans still batched.
    let _telemetry = whirl_compose::init_telemetry(&cfg)?;
    if let Some(id) = args.id {
        cfg.invoker.id = id;
    }
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => whirl_compose::default_data_dir()?.join(&cfg.invoker.id),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(whirl_compose::run_invoker(cfg, data_dir, shutdown_signal()))
}

fn standalone(args: StandaloneArgs, server: Server) -> anyhow::Result<()> {
    let mut cfg = whirl_compose::Config::load(args.config.as_deref())?;
    // Dropped after the runtime (declared before it): flushes the spans still batched.
    let _telemetry = whirl_compose::init_telemetry(&cfg)?;
    if let Some(p) = args.port {
        cfg.server.port = p;
    }
    if let Some(b) = args.bind {
        cfg.server.bind = b;
    }
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => whirl_compose::default_data_dir()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match server {
        Server::Standalone => runtime.block_on(whirl_compose::run_standalone(
            cfg,
            data_dir,
            shutdown_signal(),
        )),
        Server::Controller => runtime.block_on(whirl_compose::run_controller(
            cfg,
            data_dir,
            shutdown_signal(),
        )),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
