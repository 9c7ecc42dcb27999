//! `whirl property set|get|unset`: the properties file (`~/.wskprops` or `$WSK_CONFIG_FILE`).

use clap::Subcommand;
use serde_json::{json, Value};

use super::http::{usage, CliError, Client};
use super::output;
use super::props::Props;
use super::{Global, Settings};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl property set --apihost http://127.0.0.1:3233 --auth UUID:KEY
  whirl property get
  whirl property get --auth -o raw
  whirl property unset --namespace")]
pub struct PropertyArgs {
    /// Print JSON only (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    /// Accepted for wsk compatibility (this client speaks plain HTTP).
    #[arg(short = 'i', long, global = true)]
    pub insecure: bool,
    #[command(subcommand)]
    pub cmd: PropertyCmd,
}

#[derive(Subcommand)]
pub enum PropertyCmd {
    /// Save the API host, key or namespace in the properties file.
    #[command(after_help = "\
Examples:
  whirl property set --apihost http://127.0.0.1:3233
  whirl property set -u 23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3x...
  WSK_CONFIG_FILE=./dev.wskprops whirl property set --apihost 10.0.0.5:3233")]
    Set {
        /// Whisk API host, e.g. http://127.0.0.1:3233.
        #[arg(long, value_name = "HOST")]
        apihost: Option<String>,
        /// Authorization key UUID:KEY.
        #[arg(short = 'u', long, value_name = "KEY")]
        auth: Option<String>,
        /// Namespace that relative names refer to (default: `_`, your own).
        #[arg(long, value_name = "NAMESPACE")]
        namespace: Option<String>,
        /// API version (only v1 exists).
        #[arg(long, value_name = "VERSION")]
        apiversion: Option<String>,
    },
    /// Show the effective properties (file, environment) and the server's build.
    #[command(after_help = "\
Examples:
  whirl property get
  whirl property get --apihost
  whirl property get --auth -o raw
  whirl property get --json")]
    Get {
        #[command(flatten)]
        which: Which,
        /// Show the server's API build.
        #[arg(long)]
        apibuild: bool,
        /// Show the server's API build number.
        #[arg(long)]
        apibuildno: bool,
        /// Show the client's version.
        #[arg(long)]
        cliversion: bool,
        /// Show every property (the default).
        #[arg(long)]
        all: bool,
        /// Output format: std (labelled lines) or raw (values only).
        #[arg(short = 'o', long, default_value = "std", value_parser = ["std", "raw"])]
        output: String,
    },
    /// Remove properties from the properties file.
    #[command(after_help = "\
Examples:
  whirl property unset --auth
  whirl property unset --apihost --namespace")]
    Unset {
        #[command(flatten)]
        which: Which,
    },
}

/// Which stored properties a get or unset is about.
#[derive(clap::Args, Default)]
pub struct Which {
    /// The API host.
    #[arg(long)]
    apihost: bool,
    /// The authorization key.
    #[arg(short = 'u', long)]
    auth: bool,
    /// The namespace.
    #[arg(long)]
    namespace: bool,
    /// The API version.
    #[arg(long)]
    apiversion: bool,
}

impl Which {
    fn any(&self) -> bool {
        self.apihost || self.auth || self.namespace || self.apiversion
    }
}

pub fn run(args: PropertyArgs) -> Result<(), CliError> {
    let json_out = args.json;
    match args.cmd {
        PropertyCmd::Set {
            apihost,
            auth,
            namespace,
            apiversion,
        } => {
            if apihost.is_none() && auth.is_none() && namespace.is_none() && apiversion.is_none() {
                return Err(usage(
                    "Nothing to set: give --apihost, --auth, --namespace or --apiversion.",
                ));
            }
            let mut props = Props::load()?;
            let mut done = Vec::new();
            if let Some(h) = apihost {
                let h = super::http::normalize_host(&h)?;
                props.set("APIHOST", &h);
                done.push(format!("ok: API host set to {h}"));
            }
            if let Some(a) = auth {
                if !a.contains(':') {
                    return Err(usage("The authorization key must have the form UUID:KEY."));
                }
                props.set("AUTH", &a);
                done.push(
                    "ok: authorization key set (`whirl property get --auth` shows it)".into(),
                );
            }
            if let Some(n) = namespace {
                props.set("NAMESPACE", &n);
                done.push(format!("ok: namespace set to {n}"));
            }
            if let Some(v) = apiversion {
                if v != "v1" {
                    return Err(usage(format!(
                        "API version '{v}' is not supported (only v1)."
                    )));
                }
                props.set("APIVERSION", &v);
                done.push(format!("ok: API version set to {v}"));
            }
            let path = props.save()?;
            if json_out {
                output::json(&json!({"file": path.display().to_string(), "set": done.len()}));
            } else {
                for d in done {
                    println!("{d}");
                }
            }
            Ok(())
        }
        PropertyCmd::Unset { which } => {
            if !which.any() {
                return Err(usage(
                    "Nothing to unset: give --apihost, --auth, --namespace or --apiversion.",
                ));
            }
            let mut props = Props::load()?;
            let mut done = Vec::new();
            for (on, key, label) in [
                (which.apihost, "APIHOST", "API host"),
                (which.auth, "AUTH", "authorization key"),
                (which.namespace, "NAMESPACE", "namespace"),
                (which.apiversion, "APIVERSION", "API version"),
            ] {
                if on {
                    props.unset(key);
                    done.push(format!("ok: {label} unset"));
                }
            }
            props.save()?;
            if !json_out {
                for d in done {
                    println!("{d}");
                }
            }
            Ok(())
        }
        PropertyCmd::Get {
            which,
            apibuild,
            apibuildno,
            cliversion,
            all,
            output: fmt,
        } => {
            let s = Settings::resolve(&Global::default())?;
            let props = Props::load()?;
            let apiversion = props.get("APIVERSION").unwrap_or("v1").to_owned();
            let want_build = apibuild || apibuildno;
            let nothing = !(which.any() || apibuild || apibuildno || cliversion);
            let every = all || nothing;
            let build = if every || want_build {
                server_build(s.apihost.as_deref())
            } else {
                None
            };
            let unknown = || "Unknown".to_owned();
            let rows: Vec<(&str, bool, String)> = vec![
                (
                    "API host",
                    every || which.apihost,
                    s.apihost.clone().unwrap_or_default(),
                ),
                (
                    "auth",
                    every || which.auth,
                    s.auth.clone().unwrap_or_default(),
                ),
                ("namespace", every || which.namespace, s.namespace.clone()),
                ("API version", every || which.apiversion, apiversion.clone()),
                (
                    "CLI version",
                    every || cliversion,
                    format!("whirl {}", env!("CARGO_PKG_VERSION")),
                ),
                (
                    "API build",
                    every || apibuild,
                    build
                        .as_ref()
                        .and_then(|b| b["build"].as_str().map(str::to_owned))
                        .unwrap_or_else(unknown),
                ),
                (
                    "API build number",
                    every || apibuildno,
                    build
                        .as_ref()
                        .and_then(|b| b["buildno"].as_str().map(str::to_owned))
                        .unwrap_or_else(unknown),
                ),
            ];
            if json_out {
                let mut o = serde_json::Map::new();
                for (label, shown, v) in &rows {
                    if *shown {
                        let key = label.to_lowercase().replace(' ', "_");
                        o.insert(key, Value::String(v.clone()));
                    }
                }
                output::json(&Value::Object(o));
            } else if fmt == "raw" {
                for (_, shown, v) in &rows {
                    if *shown {
                        println!("{v}");
                    }
                }
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .filter(|r| r.1)
                    .map(|(l, _, v)| vec![format!("whisk {l}"), v.clone()])
                    .collect();
                output::table(None, &table);
            }
            Ok(())
        }
    }
}

/// `GET /api/v1` on the host (no key needed), or `None` when it cannot be had.
fn server_build(apihost: Option<&str>) -> Option<Value> {
    let c = Client::new(apihost?, None, "_", false).ok()?;
    let r = c.send(reqwest::Method::GET, "/api/v1", &[], None).ok()?;
    r.ok().then_some(r.body)
}
