//! `whirl trigger create|update|get|list|delete|fire`.
//!
//! Written against OpenWhisk's REST shapes: `PUT /namespaces/{ns}/triggers/{name}` with
//! `parameters` and `annotations`; `POST` fires it (202 with an activation id when rules
//! matched, 204 when none is active).

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::args::{kv_array, Annotations, Paging, Params};
use super::http::{seg, CliError, Client};
use super::output;
use super::{Global, QName};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl trigger create tick -p source cron
  whirl rule create on-tick tick hello
  whirl trigger fire tick -p name Ada")]
pub struct TriggerArgs {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: TriggerCmd,
}

/// What create and update share.
#[derive(clap::Args, Debug)]
pub struct Spec {
    /// The trigger's name: NAME or /NAMESPACE/NAME.
    pub name: String,
    #[command(flatten)]
    pub params: Params,
    #[command(flatten)]
    pub annotations: Annotations,
}

#[derive(Subcommand)]
pub enum TriggerCmd {
    /// Create a trigger (fails if it exists).
    #[command(after_help = "\
Examples:
  whirl trigger create tick
  whirl trigger create tick -p source cron -a description \"every minute\"")]
    Create(Spec),
    /// Update a trigger (creates it if missing).
    #[command(after_help = "\
Examples:
  whirl trigger update tick -p source manual")]
    Update(Spec),
    /// Show a trigger.
    #[command(after_help = "\
Examples:
  whirl trigger get tick
  whirl trigger get tick --summary")]
    Get {
        /// The trigger's name.
        name: String,
        /// Summarize: parameters and rules.
        #[arg(short = 's', long)]
        summary: bool,
    },
    /// List triggers.
    #[command(after_help = "\
Examples:
  whirl trigger list")]
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Delete a trigger.
    #[command(after_help = "\
Examples:
  whirl trigger delete tick")]
    Delete {
        /// The trigger's name.
        name: String,
    },
    /// Fire a trigger: its active rules invoke their actions with these parameters.
    #[command(after_help = "\
Examples:
  whirl trigger fire tick
  whirl trigger fire tick -p name Ada")]
    Fire {
        /// The trigger's name.
        name: String,
        #[command(flatten)]
        params: Params,
    },
}

fn trigger_path(c: &Client, q: &QName) -> String {
    format!(
        "{}/triggers/{}",
        c.ns_path(q.namespace.as_deref()),
        seg(&q.name)
    )
}

pub fn run(args: TriggerArgs) -> Result<(), CliError> {
    let g = args.global;
    match args.cmd {
        TriggerCmd::Create(s) => put(&g, s, false),
        TriggerCmd::Update(s) => put(&g, s, true),
        TriggerCmd::Get { name, summary } => {
            let q = QName::parse(&name, false)?;
            let c = g.client()?;
            let v = c.get(
                &trigger_path(&c, &q),
                &[],
                &format!("Unable to get trigger '{name}'"),
            )?;
            if g.json {
                output::json(&v);
            } else if summary {
                println!(
                    "trigger /{}/{}",
                    output::cell(&v["namespace"]),
                    output::cell(&v["name"])
                );
                let keys: Vec<String> = v["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| output::cell(&e["key"]))
                    .collect();
                if !keys.is_empty() {
                    println!("  parameters: {}", keys.join(", "));
                }
                if let Some(rules) = v["rules"].as_object() {
                    for (r, info) in rules {
                        println!(
                            "  rule {r} -> {} ({})",
                            output::cell(&info["action"]["name"]),
                            output::cell(&info["status"])
                        );
                    }
                }
            } else {
                println!("ok: got trigger {name}");
                output::json(&v);
            }
            Ok(())
        }
        TriggerCmd::List { paging } => {
            let c = g.client()?;
            let v = c.get(
                &format!("{}/triggers", c.ns_path(None)),
                &paging.query(),
                "Unable to list triggers",
            )?;
            if g.json {
                output::json(&v);
                return Ok(());
            }
            let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
            if paging.name_sort {
                items.sort_by_key(|a| output::cell(&a["name"]));
            }
            println!("triggers");
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|t| {
                    vec![
                        format!(
                            "/{}/{}",
                            output::cell(&t["namespace"]),
                            output::cell(&t["name"])
                        ),
                        if t["publish"] == json!(true) {
                            "shared"
                        } else {
                            "private"
                        }
                        .to_owned(),
                    ]
                })
                .collect();
            output::table(None, &rows);
            Ok(())
        }
        TriggerCmd::Delete { name } => {
            let q = QName::parse(&name, false)?;
            let c = g.client()?;
            let ctx = format!("Unable to delete trigger '{name}'");
            let v = c
                .send(Method::DELETE, &trigger_path(&c, &q), &[], None)
                .map_err(|e| e.context(&ctx))?
                .into_ok(&ctx)?;
            if g.json {
                output::json(&v);
            } else {
                println!("ok: deleted trigger {name}");
            }
            Ok(())
        }
        TriggerCmd::Fire { name, params } => {
            let q = QName::parse(&name, false)?;
            let body = Value::Object(params.object()?);
            let c = g.client()?;
            let ctx = format!("Unable to fire trigger '{name}'");
            let r = c
                .send(Method::POST, &trigger_path(&c, &q), &[], Some(&body))
                .map_err(|e| e.context(&ctx))?;
            if !r.ok() {
                return Err(r.error(ctx));
            }
            let id = r.body["activationId"]
                .as_str()
                .map(str::to_owned)
                .or(r.activation_id);
            if g.json {
                output::json(&json!({ "activationId": id }));
            } else {
                match id {
                    Some(id) => println!("ok: triggered {} with id {id}", q.full(&c.namespace)),
                    None => println!(
                        "ok: triggered {} (no active rules: nothing ran)",
                        q.full(&c.namespace)
                    ),
                }
            }
            Ok(())
        }
    }
}

fn put(g: &Global, s: Spec, update: bool) -> Result<(), CliError> {
    let verb = if update { "update" } else { "create" };
    let q = QName::parse(&s.name, false)?;
    let mut body = json!({});
    if s.params.given() {
        body["parameters"] = kv_array(&s.params.object()?);
    }
    if s.annotations.given() {
        body["annotations"] = kv_array(&s.annotations.object()?);
    }
    let c = g.client()?;
    let ctx = format!("Unable to {verb} trigger '{}'", s.name);
    let v = c
        .send(
            Method::PUT,
            &trigger_path(&c, &q),
            &[("overwrite", update.to_string())],
            Some(&body),
        )
        .map_err(|e| e.context(&ctx))?
        .into_ok(&ctx)?;
    if g.json {
        output::json(&v);
    } else {
        println!("ok: {verb}d trigger {}", s.name);
    }
    Ok(())
}
