//! Whirl's own in-container action runtime.
//!
//! An HTTP/1.1 server that speaks OpenWhisk's action-runtime protocol exactly (`POST /init`, then
//! `POST /run` once per activation), so the platform can start it in any sandbox or container and
//! talk to it the same way it talks to OpenWhisk's own runtime images, which stay interchangeable
//! with it.
//!
//! # Design: an action loop
//!
//! One *launcher* process per container holds the action's code, loaded once. Each activation is
//! one JSON line written to the launcher's stdin; the launcher answers with one JSON line on file
//! descriptor 3 (a pipe). Its stdout and stderr are inherited, so user output goes wherever the
//! container's output goes. After each activation the runtime itself prints OpenWhisk's sentinel
//! line on its stdout and stderr, so log collectors can frame the activation's logs; launchers
//! flush their own output before answering, so user output always precedes the sentinels.
//!
//! * `python` and `node`: our launcher scripts (embedded in the binary, written to the work dir)
//!   are started when the runtime boots, before `/init`, so a prewarmed container already has its
//!   interpreter loaded. The first line they read is the init message.
//! * `native`: the uploaded executable is started at `/init` and speaks OpenWhisk's actionloop
//!   protocol (the `/run` body as one line in, the result as one line out on fd 3), so existing
//!   OpenWhisk actionloop executables work unchanged.
//!
//! The server is single-threaded (a current-thread tokio runtime, no helper threads). By default
//! it serves one activation at a time.
//!
//! # Concurrency
//!
//! `/init` may carry Whirl's extension field `concurrency` (the action's `limits.concurrency`).
//! Above 1, only the `node` launcher accepts it: the runtime then sends each `/run` to the one
//! node process as soon as it arrives, tagged with its own request id, and a reader task hands
//! every answer on fd 3 back to the request with that id. The launcher runs each activation in
//! its own `AsyncLocalStorage` context, tags every line the activation writes to stdout or stderr
//! with its activation id and ends the activation's output with a tagged sentinel on both
//! streams ([`whirl_model::logtag`]), so the platform's log reader gives each record its own
//! lines. The `__OW_*` variables are per activation too (`process.env` reads the current
//! activation's values). Output written outside any activation (module-level timers, after an
//! activation answered, raw writes to fd 1/2) stays untagged and goes to no record.
//!
//! A `native` executable reads one request at a time, so the runtime starts up to N copies of
//! it, one per concurrent activation, captures each copy's stdout and stderr, and writes them on
//! tagged with the activation that copy is running (see `native.rs`). `python` refuses `/init`
//! with concurrency above 1 (the platform already refuses such actions when they are created):
//! one interpreter cannot tell its activations' output apart, and a copy per slot would load the
//! action N times in one memory limit.

mod code;
mod native;
mod process;
mod server;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use whirl_model::manifest::Launcher;

/// The sentinel OpenWhisk's log collectors wait for, once on stdout and once on stderr, after each
/// activation.
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// Where the runtime listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix domain socket at this path (a stale socket file is replaced).
    Unix(PathBuf),
    /// A TCP `host:port` (resolved once at startup).
    Tcp(String),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            Ok(Listen::Unix(PathBuf::from(path)))
        } else if let Some(addr) = s.strip_prefix("tcp:") {
            if !addr.contains(':') {
                return Err(format!("tcp:{addr} needs host:port"));
            }
            Ok(Listen::Tcp(addr.to_string()))
        } else {
            Err(format!("'{s}' is neither unix:/path nor tcp:host:port"))
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
            Listen::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Parses a launcher name as the runtimes manifest spells it.
pub fn parse_launcher(s: &str) -> Result<Launcher, String> {
    match s {
        "python" => Ok(Launcher::Python),
        "node" => Ok(Launcher::Node),
        "native" => Ok(Launcher::Native),
        other => Err(format!(
            "unknown launcher '{other}' (expected python, node or native)"
        )),
    }
}

fn launcher_parser() -> impl clap::builder::TypedValueParser<Value = Launcher> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["python", "node", "native"])
        .map(|s| parse_launcher(&s).expect("a possible value"))
}

/// Arguments of `whirl runtime`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Where to serve the action protocol: `unix:/path/to.sock` or `tcp:host:port`.
    #[arg(long, default_value = "tcp:0.0.0.0:8080")]
    pub listen: Listen,
    /// How the action's code is loaded and run: python, node or native. (The environment
    /// variable lets one runtime image serve every kind: the docker factory sets it.)
    #[arg(long, env = "WHIRL_LAUNCHER", value_parser = launcher_parser())]
    pub launcher: Launcher,
    /// Interpreter to run the launcher with (default: python3 or node from PATH; unused for native).
    #[arg(long, env = "WHIRL_LAUNCHER_COMMAND")]
    pub command: Option<PathBuf>,
    /// Directory where the action's code is unpacked (default: a fresh temporary directory,
    /// removed on exit).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// Runs the runtime until SIGTERM or SIGINT, then returns `Ok(())`.
///
/// Builds its own current-thread tokio runtime and starts no threads, so it is safe to call in a
/// process that has just forked.
pub fn run(args: RuntimeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, server::serve(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen() {
        assert_eq!(
            "unix:/tmp/x.sock".parse::<Listen>().unwrap(),
            Listen::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            "tcp:0.0.0.0:8080".parse::<Listen>().unwrap(),
            Listen::Tcp("0.0.0.0:8080".into())
        );
        assert!("tcp:nohost".parse::<Listen>().is_err());
        assert!("/tmp/x".parse::<Listen>().is_err());
        assert_eq!(Listen::Unix("/a".into()).to_string(), "unix:/a");
    }

    #[test]
    fn parses_launchers() {
        assert_eq!(parse_launcher("node").unwrap(), Launcher::Node);
        assert!(parse_launcher("java").is_err());
    }
}
