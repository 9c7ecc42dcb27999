//! `whirl package create|update|get|list|delete|bind`.
//!
//! Written against OpenWhisk's REST shapes: `PUT /namespaces/{ns}/packages/{name}` with
//! `parameters`, `annotations`, `publish` and, for a binding, `binding: {namespace, name}`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::args::{kv_array, Annotations, Paging, Params};
use super::http::{seg, CliError, Client};
use super::output::{self, kv};
use super::{Global, QName};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl package create tools -p region eu
  whirl action create tools/hello hello.py
  whirl package bind tools mytools -p region us
  whirl package get tools --summary")]
pub struct PackageArgs {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: PackageCmd,
}

/// What create and update share.
#[derive(clap::Args, Debug)]
pub struct Spec {
    /// The package's name: NAME or /NAMESPACE/NAME.
    pub name: String,
    #[command(flatten)]
    pub params: Params,
    #[command(flatten)]
    pub annotations: Annotations,
    /// Share the package with other namespaces: yes|no.
    #[arg(long, value_name = "SCOPE", value_parser = ["yes", "no", "true", "false"])]
    pub shared: Option<String>,
}

#[derive(Subcommand)]
pub enum PackageCmd {
    /// Create a package (fails if it exists).
    #[command(after_help = "\
Examples:
  whirl package create tools
  whirl package create tools -p region eu -a description \"handy actions\" --shared yes")]
    Create(Spec),
    /// Update a package (creates it if missing).
    #[command(after_help = "\
Examples:
  whirl package update tools -p region us")]
    Update(Spec),
    /// Bind a package: a new package that refers to another with its own parameters.
    #[command(after_help = "\
Examples:
  whirl package bind /whisk.system/utils myutils
  whirl package bind tools eu-tools -p region eu")]
    Bind {
        /// The package to bind to: NAME or /NAMESPACE/NAME.
        package: String,
        /// The new binding's name.
        name: String,
        #[command(flatten)]
        params: Params,
        #[command(flatten)]
        annotations: Annotations,
    },
    /// Show a package.
    #[command(after_help = "\
Examples:
  whirl package get tools
  whirl package get tools --summary")]
    Get {
        /// The package's name.
        name: String,
        /// Summarize: parameters and actions.
        #[arg(short = 's', long)]
        summary: bool,
    },
    /// List packages.
    #[command(after_help = "\
Examples:
  whirl package list
  whirl package list /whisk.system")]
    List {
        /// A namespace (/NAMESPACE) to list instead of your own.
        namespace: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Delete a package.
    #[command(after_help = "\
Examples:
  whirl package delete tools")]
    Delete {
        /// The package's name.
        name: String,
    },
}

fn package_path(c: &Client, q: &QName) -> String {
    format!(
        "{}/packages/{}",
        c.ns_path(q.namespace.as_deref()),
        seg(&q.name)
    )
}

pub fn run(args: PackageArgs) -> Result<(), CliError> {
    let g = args.global;
    match args.cmd {
        PackageCmd::Create(s) => put(&g, s, false),
        PackageCmd::Update(s) => put(&g, s, true),
        PackageCmd::Bind {
            package,
            name,
            params,
            annotations,
        } => {
            let target = QName::parse(&package, false)?;
            let q = QName::parse(&name, false)?;
            let mut body = json!({
                "binding": {
                    "namespace": target.namespace.as_deref().unwrap_or("_"),
                    "name": target.name,
                }
            });
            if params.given() {
                body["parameters"] = kv_array(&params.object()?);
            }
            if annotations.given() {
                body["annotations"] = kv_array(&annotations.object()?);
            }
            let c = g.client()?;
            let ctx = format!("Unable to bind package '{name}'");
            let v = c
                .send(
                    Method::PUT,
                    &package_path(&c, &q),
                    &[("overwrite", "false".into())],
                    Some(&body),
                )
                .map_err(|e| e.context(&ctx))?
                .into_ok(&ctx)?;
            if g.json {
                output::json(&v);
            } else {
                println!("ok: created binding {name} to {package}");
            }
            Ok(())
        }
        PackageCmd::Get { name, summary } => {
            let q = QName::parse(&name, false)?;
            let c = g.client()?;
            let v = c.get(
                &package_path(&c, &q),
                &[],
                &format!("Unable to get package '{name}'"),
            )?;
            if g.json {
                output::json(&v);
            } else if summary {
                print_summary(&v);
            } else {
                println!("ok: got package {name}");
                output::json(&v);
            }
            Ok(())
        }
        PackageCmd::List { namespace, paging } => {
            let c = g.client()?;
            let ns = namespace.as_deref().map(|n| n.trim_matches('/'));
            let v = c.get(
                &format!("{}/packages", c.ns_path(ns)),
                &paging.query(),
                "Unable to list packages",
            )?;
            if g.json {
                output::json(&v);
                return Ok(());
            }
            let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
            if paging.name_sort {
                items.sort_by_key(|a| output::cell(&a["name"]));
            }
            println!("packages");
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|p| {
                    let mut row = vec![
                        format!(
                            "/{}/{}",
                            output::cell(&p["namespace"]),
                            output::cell(&p["name"])
                        ),
                        if p["publish"] == json!(true) {
                            "shared"
                        } else {
                            "private"
                        }
                        .to_owned(),
                    ];
                    if let Some(b) = p["binding"].as_object().filter(|b| !b.is_empty()) {
                        row.push(format!(
                            "binding to /{}/{}",
                            output::cell(&b["namespace"]),
                            output::cell(&b["name"])
                        ));
                    }
                    row
                })
                .collect();
            output::table(None, &rows);
            Ok(())
        }
        PackageCmd::Delete { name } => {
            let q = QName::parse(&name, false)?;
            let c = g.client()?;
            let ctx = format!("Unable to delete package '{name}'");
            let v = c
                .send(Method::DELETE, &package_path(&c, &q), &[], None)
                .map_err(|e| e.context(&ctx))?
                .into_ok(&ctx)?;
            if g.json {
                output::json(&v);
            } else {
                println!("ok: deleted package {name}");
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
    if let Some(sh) = &s.shared {
        body["publish"] = json!(matches!(sh.as_str(), "yes" | "true"));
    }
    let c = g.client()?;
    let ctx = format!("Unable to {verb} package '{}'", s.name);
    let v = c
        .send(
            Method::PUT,
            &package_path(&c, &q),
            &[("overwrite", update.to_string())],
            Some(&body),
        )
        .map_err(|e| e.context(&ctx))?
        .into_ok(&ctx)?;
    if g.json {
        output::json(&v);
    } else {
        println!("ok: {verb}d package {}", s.name);
    }
    Ok(())
}

fn print_summary(p: &Value) {
    let ns = output::cell(&p["namespace"]);
    let name = output::cell(&p["name"]);
    println!("package /{ns}/{name}");
    if let Some(d) = kv(&p["annotations"], "description").and_then(Value::as_str) {
        println!("  {d}");
    }
    if let Some(b) = p["binding"].as_object().filter(|b| !b.is_empty()) {
        println!(
            "  bound to /{}/{}",
            output::cell(&b["namespace"]),
            output::cell(&b["name"])
        );
    }
    let keys: Vec<String> = p["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| output::cell(&e["key"]))
        .collect();
    if !keys.is_empty() {
        println!("  parameters: {}", keys.join(", "));
    }
    for a in p["actions"].as_array().into_iter().flatten() {
        println!("  action /{ns}/{name}/{}", output::cell(&a["name"]));
    }
}
