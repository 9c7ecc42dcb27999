//! Stand-alone launcher of the action runtime, for this crate's tests and for trying the runtime
//! out by hand (the `whirl` binary serves the same thing as `whirl runtime ...`).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "whirl-runtime-test",
    about = "Whirl's action runtime (development launcher)"
)]
struct Cli {
    #[command(flatten)]
    args: whirl_runtime::RuntimeArgs,
}

fn main() -> anyhow::Result<()> {
    whirl_runtime::run(Cli::parse().args)
}
