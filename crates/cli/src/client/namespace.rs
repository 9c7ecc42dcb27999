//! `whirl namespace list|get`.

use clap::Subcommand;
use serde_json::{json, Value};

use super::http::{seg, CliError, Client};
use super::output;
use super::Global;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl namespace list
  whirl namespace get")]
pub struct NamespaceArgs {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: NamespaceCmd,
}

#[derive(Subcommand)]
pub enum NamespaceCmd {
    /// List the namespaces your key may use.
    #[command(after_help = "\
Examples:
  whirl namespace list
  whirl namespace list --json")]
    List,
    /// List the entities of a namespace (default: your own).
    #[command(after_help = "\
Examples:
  whirl namespace get
  whirl namespace get guest --json")]
    Get {
        /// The namespace (default: the configured one, `_` = your own).
        namespace: Option<String>,
    },
}

/// The collections a namespace holds, in display order.
const COLLECTIONS: [&str; 4] = ["packages", "actions", "triggers", "rules"];

pub fn run(args: NamespaceArgs) -> Result<(), CliError> {
    let g = args.global;
    let c = g.client()?;
    match args.cmd {
        NamespaceCmd::List => {
            let v = c.get("/api/v1/namespaces", &[], "Unable to list namespaces")?;
            if g.json {
                output::json(&v);
            } else {
                println!("namespaces");
                for n in v.as_array().into_iter().flatten() {
                    println!("{}", output::cell(n));
                }
            }
            Ok(())
        }
        NamespaceCmd::Get { namespace } => {
            let ns = namespace
                .as_deref()
                .map(|n| n.trim_start_matches('/'))
                .unwrap_or(&c.namespace)
                .to_owned();
            let mut all = serde_json::Map::new();
            for coll in COLLECTIONS {
                all.insert(coll.into(), collection(&c, &ns, coll)?);
            }
            if g.json {
                output::json(&Value::Object(all));
                return Ok(());
            }
            println!(
                "Entities in namespace: {}",
                if ns == "_" { "default" } else { &ns }
            );
            for coll in COLLECTIONS {
                println!("{coll}");
                let rows: Vec<Vec<String>> = all[coll]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let mut row = vec![
                            format!(
                                "/{}/{}",
                                output::cell(&e["namespace"]),
                                output::cell(&e["name"])
                            ),
                            if e["publish"] == json!(true) {
                                "shared"
                            } else {
                                "private"
                            }
                            .to_owned(),
                        ];
                        if coll == "actions" {
                            row.push(
                                output::kv(&e["annotations"], "exec")
                                    .map(output::cell)
                                    .unwrap_or_default(),
                            );
                        }
                        row
                    })
                    .collect();
                output::table(None, &rows);
            }
            Ok(())
        }
    }
}

/// One collection's list; a server without the collection (404) has none.
fn collection(c: &Client, ns: &str, coll: &str) -> Result<Value, CliError> {
    let ctx = format!("Unable to get namespace '{ns}'");
    let r = c
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/namespaces/{}/{coll}", seg(ns)),
            &[("limit", "200".into())],
            None,
        )
        .map_err(|e| e.context(&ctx))?;
    match r.status {
        404 if r.body["error"] == "The requested resource could not be found." => Ok(json!([])),
        _ => r.into_ok(ctx),
    }
}
