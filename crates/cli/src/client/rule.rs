//! `whirl rule create|update|get|list|delete|enable|disable`.
//!
//! Written against OpenWhisk's REST shapes: `PUT /namespaces/{ns}/rules/{name}` with
//! `{"trigger": "/ns/t", "action": "/ns/a"}`; `POST` with `{"status": "active"|"inactive"}`
//! enables or disables it.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::args::Paging;
use super::http::{seg, CliError, Client};
use super::output;
use super::{Global, QName};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl rule create on-tick tick hello
  whirl rule disable on-tick
  whirl rule list")]
pub struct RuleArgs {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: RuleCmd,
}

#[derive(Subcommand)]
pub enum RuleCmd {
    /// Create a rule: when TRIGGER fires, invoke ACTION.
    #[command(after_help = "\
Examples:
  whirl rule create on-tick tick hello
  whirl rule create on-tick tick tools/hello")]
    Create {
        /// The rule's name.
        name: String,
        /// The trigger: NAME or /NAMESPACE/NAME.
        trigger: String,
        /// The action: NAME, PACKAGE/NAME or /NAMESPACE/[PACKAGE/]NAME.
        action: String,
    },
    /// Update a rule's trigger and action (creates it if missing).
    #[command(after_help = "\
Examples:
  whirl rule update on-tick tick goodbye")]
    Update {
        /// The rule's name.
        name: String,
        /// The trigger.
        trigger: String,
        /// The action.
        action: String,
    },
    /// Show a rule.
    #[command(after_help = "\
Examples:
  whirl rule get on-tick
  whirl rule get on-tick --summary")]
    Get {
        /// The rule's name.
        name: String,
        /// Summarize: trigger, action and status.
        #[arg(short = 's', long)]
        summary: bool,
    },
    /// List rules.
    #[command(after_help = "\
Examples:
  whirl rule list")]
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Delete a rule.
    #[command(after_help = "\
Examples:
  whirl rule delete on-tick
  whirl rule delete on-tick --disable")]
    Delete {
        /// The rule's name.
        name: String,
        /// Disable the rule first.
        #[arg(long)]
        disable: bool,
    },
    /// Enable a rule.
    #[command(after_help = "\
Examples:
  whirl rule enable on-tick")]
    Enable {
        /// The rule's name.
        name: String,
    },
    /// Disable a rule (its trigger no longer invokes its action).
    #[command(after_help = "\
Examples:
  whirl rule disable on-tick")]
    Disable {
        /// The rule's name.
        name: String,
    },
}

fn rule_path(c: &Client, q: &QName) -> String {
    format!(
        "{}/rules/{}",
        c.ns_path(q.namespace.as_deref()),
        seg(&q.name)
    )
}

pub fn run(args: RuleArgs) -> Result<(), CliError> {
    let g = args.global;
    match args.cmd {
        RuleCmd::Create {
            name,
            trigger,
            action,
        } => put(&g, &name, &trigger, &action, false),
        RuleCmd::Update {
            name,
            trigger,
            action,
        } => put(&g, &name, &trigger, &action, true),
        RuleCmd::Get { name, summary } => {
            let q = QName::parse(&name, false)?;
            let c = g.client()?;
            let v = c.get(
                &rule_path(&c, &q),
                &[],
                &format!("Unable to get rule '{name}'"),
            )?;
            if g.json {
                output::json(&v);
            } else if summary {
                println!(
                    "rule /{}/{} ({})",
                    output::cell(&v["namespace"]),
                    output::cell(&v["name"]),
                    output::cell(&v["status"])
                );
                println!("  trigger: {}", entity_name(&v["trigger"]));
                println!("  action: {}", entity_name(&v["action"]));
            } else {
                println!("ok: got rule {name}");
                output::json(&v);
            }
            Ok(())
        }
        RuleCmd::List { paging } => {
            let c = g.client()?;
            let v = c.get(
                &format!("{}/rules", c.ns_path(None)),
                &paging.query(),
                "Unable to list rules",
            )?;
            if g.json {
                output::json(&v);
                return Ok(());
            }
            let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
            if paging.name_sort {
                items.sort_by_key(|a| output::cell(&a["name"]));
            }
            // A rule's status lives with its trigger, so lists may not carry it: ask per rule.
            for r in items.iter_mut().filter(|r| r["status"].is_null()) {
                let q = QName {
                    namespace: r["namespace"].as_str().map(str::to_owned),
                    package: None,
                    name: output::cell(&r["name"]),
                };
                if let Ok(full) = c.get(&rule_path(&c, &q), &[], "Unable to get rule") {
                    r["status"] = full["status"].clone();
                }
            }
            println!("rules");
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|r| {
                    vec![
                        format!(
                            "/{}/{}",
                            output::cell(&r["namespace"]),
                            output::cell(&r["name"])
                        ),
                        if r["publish"] == json!(true) {
                            "shared"
                        } else {
                            "private"
                        }
                        .to_owned(),
                        output::cell(&r["status"]),
                    ]
                })
                .collect();
            output::table(None, &rows);
            Ok(())
        }
        RuleCmd::Delete { name, disable } => {
            let q = QName::parse(&name, false)?;
            let c = g.client()?;
            if disable {
                set_status(&c, &q, &name, "inactive")?;
            }
            let ctx = format!("Unable to delete rule '{name}'");
            let v = c
                .send(Method::DELETE, &rule_path(&c, &q), &[], None)
                .map_err(|e| e.context(&ctx))?
                .into_ok(&ctx)?;
            if g.json {
                output::json(&v);
            } else {
                println!("ok: deleted rule {name}");
            }
            Ok(())
        }
        RuleCmd::Enable { name } => toggle(&g, &name, "active", "enabled"),
        RuleCmd::Disable { name } => toggle(&g, &name, "inactive", "disabled"),
    }
}

fn entity_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // OpenWhisk answers `{"path": "guest", "name": "t"}`.
        v => {
            let ns = if v["path"].is_string() {
                &v["path"]
            } else {
                &v["namespace"]
            };
            format!("/{}/{}", output::cell(ns), output::cell(&v["name"]))
        }
    }
}

fn set_status(c: &Client, q: &QName, name: &str, status: &str) -> Result<Value, CliError> {
    let verb = if status == "active" {
        "enable"
    } else {
        "disable"
    };
    let ctx = format!("Unable to {verb} rule '{name}'");
    c.send(
        Method::POST,
        &rule_path(c, q),
        &[],
        Some(&json!({ "status": status })),
    )
    .map_err(|e| e.context(&ctx))?
    .into_ok(&ctx)
}

fn toggle(g: &Global, name: &str, status: &str, done: &str) -> Result<(), CliError> {
    let q = QName::parse(name, false)?;
    let c = g.client()?;
    let v = set_status(&c, &q, name, status)?;
    if g.json {
        output::json(&v);
    } else {
        println!("ok: {done} rule {name}");
    }
    Ok(())
}

fn put(g: &Global, name: &str, trigger: &str, action: &str, update: bool) -> Result<(), CliError> {
    let verb = if update { "update" } else { "create" };
    let q = QName::parse(name, false)?;
    let t = QName::parse(trigger, false)?;
    let a = QName::parse(action, true)?;
    let c = g.client()?;
    let body = json!({
        "trigger": t.full(&c.namespace),
        "action": a.full(&c.namespace),
    });
    let ctx = format!("Unable to {verb} rule '{name}'");
    let v = c
        .send(
            Method::PUT,
            &rule_path(&c, &q),
            &[("overwrite", update.to_string())],
            Some(&body),
        )
        .map_err(|e| e.context(&ctx))?
        .into_ok(&ctx)?;
    if g.json {
        output::json(&v);
    } else {
        println!("ok: {verb}d rule {name}");
    }
    Ok(())
}
