//! The wsk-compatible client: `whirl action|activation|package|trigger|rule|namespace|property`,
//! `whirl info` and `whirl completions`. Commands, flags and exit codes follow OpenWhisk's `wsk` CLI, so
//! people who know it feel at home; output is a readable summary by default and JSON with
//! `--json`.
//!
//! Host and credentials come from the properties file (`~/.wskprops`, or `$WSK_CONFIG_FILE`:
//! `APIHOST`, `AUTH`, `NAMESPACE`), overridden by `WHISK_APIHOST`, `WHISK_AUTH` and
//! `WHISK_NAMESPACE`, overridden by `--apihost` and `-u/--auth`.
//!
//! Errors are one line on stderr (`error: ...`, with the server's message) and a non-zero exit
//! code: HTTP errors exit with `status - 256` as wsk does (404 → 148, 401 → 145), an unreachable
//! host with 3, usage errors with 2.

pub mod action;
pub mod activation;
pub mod args;
pub mod http;
pub mod info;
pub mod namespace;
pub mod output;
pub mod package;
pub mod property;
pub mod props;
pub mod rule;
pub mod trigger;

use clap::Subcommand;

use http::{usage, CliError, Client};

/// Flags every entity command takes (before or after its subcommand).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Global {
    /// Whisk API host, e.g. http://127.0.0.1:3233 (overrides WHISK_APIHOST and APIHOST).
    #[arg(
        long,
        global = true,
        value_name = "HOST",
        help_heading = "Global options"
    )]
    pub apihost: Option<String>,
    /// Authorization key UUID:KEY (overrides WHISK_AUTH and AUTH).
    #[arg(
        short = 'u',
        long,
        global = true,
        value_name = "KEY",
        help_heading = "Global options"
    )]
    pub auth: Option<String>,
    /// Accepted for wsk compatibility (this client speaks plain HTTP; there is nothing to check).
    #[arg(short = 'i', long, global = true, help_heading = "Global options")]
    pub insecure: bool,
    /// Print JSON only (for scripts).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Print each HTTP request on stderr.
    #[arg(short = 'v', long, global = true, help_heading = "Global options")]
    pub verbose: bool,
}

impl Global {
    /// A client for the resolved host, key and namespace.
    pub fn client(&self) -> Result<Client, CliError> {
        let s = Settings::resolve(self)?;
        let host = s.apihost.ok_or_else(|| {
            usage("No API host: run `whirl property set --apihost http://127.0.0.1:3233` (as printed by `whirl standalone`) or pass --apihost")
        })?;
        let auth = s.auth.ok_or_else(|| {
            usage(
                "No authorization key: run `whirl property set --auth UUID:KEY` or pass -u/--auth",
            )
        })?;
        Client::new(&host, Some(&auth), &s.namespace, self.verbose)
    }
}

/// Host, key and namespace after the properties file, the environment and the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub apihost: Option<String>,
    pub auth: Option<String>,
    pub namespace: String,
}

impl Settings {
    pub fn resolve(g: &Global) -> Result<Self, CliError> {
        let props = props::Props::load()?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let apihost = g
            .apihost
            .clone()
            .or_else(|| env("WHISK_APIHOST"))
            .or_else(|| props.get("APIHOST").map(str::to_owned));
        let auth = g
            .auth
            .clone()
            .or_else(|| env("WHISK_AUTH"))
            .or_else(|| props.get("AUTH").map(str::to_owned));
        let namespace = env("WHISK_NAMESPACE")
            .or_else(|| props.get("NAMESPACE").map(str::to_owned))
            .unwrap_or_else(|| "_".to_owned());
        Ok(Self {
            apihost,
            auth,
            namespace,
        })
    }
}

/// An entity name as given on the command line: `name`, `pkg/name`, `/ns/name` or
/// `/ns/pkg/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QName {
    /// `None` for relative names (the client's namespace).
    pub namespace: Option<String>,
    pub package: Option<String>,
    pub name: String,
}

impl QName {
    /// Parses a name; `allow_package` says whether a package segment may appear.
    pub fn parse(s: &str, allow_package: bool) -> Result<Self, CliError> {
        let bad = || usage(format!("'{s}' is not a valid qualified name."));
        let (abs, rest) = match s.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let q = match (abs, parts.as_slice()) {
            (false, [n]) => Self {
                namespace: None,
                package: None,
                name: n.to_string(),
            },
            (false, [p, n]) if allow_package => Self {
                namespace: None,
                package: Some(p.to_string()),
                name: n.to_string(),
            },
            (true, [ns, n]) => Self {
                namespace: Some(ns.to_string()),
                package: None,
                name: n.to_string(),
            },
            (true, [ns, p, n]) if allow_package => Self {
                namespace: Some(ns.to_string()),
                package: Some(p.to_string()),
                name: n.to_string(),
            },
            _ => return Err(bad()),
        };
        Ok(q)
    }

    /// `pkg/name` or `name`, each segment escaped.
    pub fn path(&self) -> String {
        match &self.package {
            Some(p) => format!("{}/{}", http::seg(p), http::seg(&self.name)),
            None => http::seg(&self.name),
        }
    }

    /// `/ns[/pkg]/name` with `ns` filled in from `default_ns` when relative.
    pub fn full(&self, default_ns: &str) -> String {
        let ns = self.namespace.as_deref().unwrap_or(default_ns);
        match &self.package {
            Some(p) => format!("/{ns}/{p}/{}", self.name),
            None => format!("/{ns}/{}", self.name),
        }
    }
}

/// `whirl <entity> ...`: the client's commands, flattened into the binary's top level.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// Work with actions: create, update, get, list, delete, invoke.
    Action(Box<action::ActionArgs>),
    /// Work with activations: list, get, logs, result, poll.
    Activation(Box<activation::ActivationArgs>),
    /// Work with packages: create, update, get, list, delete, bind.
    Package(Box<package::PackageArgs>),
    /// Work with triggers: create, update, get, list, delete, fire.
    Trigger(Box<trigger::TriggerArgs>),
    /// Work with rules: create, update, get, list, delete, enable, disable.
    Rule(Box<rule::RuleArgs>),
    /// Work with namespaces: list, get.
    Namespace(Box<namespace::NamespaceArgs>),
    /// Work with the client's properties (~/.wskprops): set, get, unset.
    Property(Box<property::PropertyArgs>),
    /// Show what the platform offers: API version, limits, runtime kinds.
    Info(Box<info::InfoArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  whirl completions bash > /etc/bash_completion.d/whirl
  whirl completions zsh > \"${fpath[1]}/_whirl\"
  whirl completions fish > ~/.config/fish/completions/whirl.fish";

/// Runs a client command and exits the process with its status (0, or the error's code).
pub fn run(cmd: ClientCommand, cli: impl FnOnce() -> clap::Command) -> ! {
    default_sigpipe();
    let result = match cmd {
        ClientCommand::Action(a) => action::run(*a),
        ClientCommand::Activation(a) => activation::run(*a),
        ClientCommand::Package(a) => package::run(*a),
        ClientCommand::Trigger(a) => trigger::run(*a),
        ClientCommand::Rule(a) => rule::run(*a),
        ClientCommand::Namespace(a) => namespace::run(*a),
        ClientCommand::Property(a) => property::run(*a),
        ClientCommand::Info(a) => info::run(*a),
        ClientCommand::Completions { shell } => {
            let mut cmd = cli();
            clap_complete::generate(shell, &mut cmd, "whirl", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code())
        }
    }
}

/// Restores the default SIGPIPE action, as command-line tools have it: `whirl ... | head` ends
/// quietly when `head` is done instead of panicking on the closed pipe (Rust ignores SIGPIPE).
fn default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: setting a signal's disposition to the default has no preconditions; no handler
    // code is involved.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_consistent() {
        use clap::Subcommand;
        ClientCommand::augment_subcommands(clap::Command::new("whirl")).debug_assert();
    }

    #[test]
    fn qualified_names() {
        let q = QName::parse("hello", true).unwrap();
        assert_eq!((q.path(), q.full("_")), ("hello".into(), "/_/hello".into()));
        let q = QName::parse("pkg/hello", true).unwrap();
        assert_eq!(q.path(), "pkg/hello");
        assert_eq!(q.full("guest"), "/guest/pkg/hello");
        let q = QName::parse("/ns/hello", true).unwrap();
        assert_eq!(q.namespace.as_deref(), Some("ns"));
        let q = QName::parse("/ns/pkg/hello", true).unwrap();
        assert_eq!(q.package.as_deref(), Some("pkg"));
        assert!(QName::parse("pkg/hello", false).is_err());
        assert!(QName::parse("/ns", true).is_err());
        assert!(QName::parse("a//b", true).is_err());
        assert!(QName::parse("", true).is_err());
    }
}
