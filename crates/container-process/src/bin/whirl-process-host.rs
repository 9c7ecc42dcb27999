//! Test support, not shipped: a stand-in for `whirl runtime` that accepts exactly the command
//! line the `process` factory spawns (`--sandbox <SandboxSpec JSON>` plus the runtime's own
//! arguments), enters the sandbox, then runs Whirl's action runtime. This crate's integration
//! tests point `runtime_command` at it (`env!("CARGO_BIN_EXE_whirl-process-host")`), so they
//! exercise the real sandbox and runtime without building the whole `whirl` binary.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "whirl-process-host",
    about = "Whirl's action runtime in the process factory's sandbox (test support)"
)]
struct Cli {
    /// The sandbox to enter first, as JSON (see `whirl_container_process::sandbox::SandboxSpec`).
    #[arg(long)]
    sandbox: Option<String>,
    #[command(flatten)]
    args: whirl_runtime::RuntimeArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(json) = &cli.sandbox {
        let spec: whirl_container_process::sandbox::SandboxSpec = serde_json::from_str(json)?;
        whirl_container_process::sandbox::enter(&spec)?;
    }
    whirl_runtime::run(cli.args)
}
