//! `whirl info`: what the platform at the API host offers (API version and build, limits, the
//! runtime kinds), from its public `GET /` and `GET /api/v1` documents. Needs no key.

use serde_json::{json, Value};

use super::http::{usage, CliError, Client};
use super::output;
use super::{Global, Settings};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl info
  whirl info --apihost http://127.0.0.1:3233
  whirl info --json")]
pub struct InfoArgs {
    #[command(flatten)]
    pub global: Global,
}

const MB: f64 = 1024.0 * 1024.0;

pub fn run(args: InfoArgs) -> Result<(), CliError> {
    let g = args.global;
    let s = Settings::resolve(&g)?;
    let host = s.apihost.ok_or_else(|| {
        usage("No API host: run `whirl property set --apihost http://127.0.0.1:3233` or pass --apihost")
    })?;
    let c = Client::new(&host, None, "_", g.verbose)?;
    let ctx = "Unable to get the platform's information";
    let platform = c.get("/", &[], ctx)?;
    let api = c.get("/api/v1", &[], ctx)?;
    if g.json {
        output::json(&json!({"apihost": c.apihost, "api": api, "platform": platform}));
        return Ok(());
    }
    let l = &platform["limits"];
    let mb = |v: &Value| {
        v.as_f64()
            .map(|b| format!("{}", (b / MB).round()))
            .unwrap_or_else(|| "?".into())
    };
    let mut rows = vec![
        vec!["API host".to_owned(), c.apihost.clone()],
        vec![
            "API version".to_owned(),
            format!(
                "{} (build {})",
                output::cell(&api["api_version_path"]),
                output::cell(&api["build"])
            ),
        ],
        vec![
            "timeout".to_owned(),
            format!(
                "{}–{} ms",
                output::cell(&l["min_action_duration"]),
                output::cell(&l["max_action_duration"])
            ),
        ],
        vec![
            "memory".to_owned(),
            format!(
                "{}–{} MB",
                mb(&l["min_action_memory"]),
                mb(&l["max_action_memory"])
            ),
        ],
        vec![
            "logs".to_owned(),
            format!(
                "{}–{} MB",
                mb(&l["min_action_logs"]),
                mb(&l["max_action_logs"])
            ),
        ],
        vec![
            "sequences".to_owned(),
            format!("up to {} actions", output::cell(&l["sequence_length"])),
        ],
    ];
    if let Some(families) = platform["runtimes"].as_object() {
        for (family, kinds) in families {
            let ks: Vec<String> = kinds
                .as_array()
                .into_iter()
                .flatten()
                .filter(|k| k["deprecated"] != json!(true))
                .map(|k| {
                    let mut s = output::cell(&k["kind"]);
                    if k["default"] == json!(true) {
                        s.push_str(" (default)");
                    }
                    s
                })
                .collect();
            rows.push(vec![format!("kinds: {family}"), ks.join(", ")]);
        }
    }
    output::table(None, &rows);
    Ok(())
}
