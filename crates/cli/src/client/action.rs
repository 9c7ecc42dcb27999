//! `whirl action create|update|get|list|delete|invoke`.

use std::path::{Path, PathBuf};

use base64::Engine;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::args::{kv_array, kv_merge, Annotations, Paging, Params};
use super::http::{usage, CliError, Client};
use super::output::{self, kv, Spinner};
use super::{Global, QName};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl action create hello hello.py
  whirl action invoke hello -p name Ada --result
  whirl action list
  whirl action get hello --summary")]
pub struct ActionArgs {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: ActionCmd,
}

/// What create and update share: the code and the action's settings.
#[derive(clap::Args, Debug)]
pub struct Spec {
    /// The action's name: NAME, PACKAGE/NAME or /NAMESPACE/[PACKAGE/]NAME.
    pub name: String,
    /// The code: a .py or .js file, a .zip (with --kind), an executable (with --native), or
    /// with --sequence a comma-separated list of actions.
    pub artifact: Option<String>,
    /// The runtime kind, e.g. python:3, nodejs:20, native (inferred from .py and .js files).
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// The entry point (default: main).
    #[arg(long, value_name = "NAME")]
    pub main: Option<String>,
    /// Timeout LIMIT in milliseconds.
    #[arg(short = 't', long, value_name = "LIMIT")]
    pub timeout: Option<u64>,
    /// Memory LIMIT in MB.
    #[arg(short = 'm', long, value_name = "LIMIT")]
    pub memory: Option<u64>,
    /// Log size LIMIT in MB.
    #[arg(short = 'l', long = "logsize", value_name = "LIMIT")]
    pub logsize: Option<u64>,
    /// Concurrent activations per container LIMIT.
    #[arg(short = 'c', long, value_name = "LIMIT")]
    pub concurrency: Option<u64>,
    /// Make it a web action: true|yes, raw (raw HTTP), false|no.
    #[arg(long, value_name = "MODE", value_parser = ["true", "yes", "raw", "false", "no"])]
    pub web: Option<String>,
    /// Secure a web action: true (require Basic auth), false, or a secret for X-Require-Whisk-Auth.
    #[arg(long = "web-secure", value_name = "SECRET")]
    pub web_secure: Option<String>,
    /// The artifact is a comma-separated list of actions to run in order.
    #[arg(long, conflicts_with_all = ["kind", "docker", "native", "main"])]
    pub sequence: bool,
    /// Run the action in this container IMAGE (an optional artifact is its zip).
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["kind", "native"])]
    pub docker: Option<String>,
    /// The artifact is a native executable or a zip holding one named `exec`.
    #[arg(long, conflicts_with = "kind")]
    pub native: bool,
    #[command(flatten)]
    pub params: Params,
    #[command(flatten)]
    pub annotations: Annotations,
}

#[derive(Subcommand)]
pub enum ActionCmd {
    /// Create an action (fails if it exists).
    #[command(after_help = "\
Examples:
  whirl action create hello hello.py
  whirl action create greet greet.js -p greeting Hi -t 5000 -m 128
  whirl action create app app.zip --kind nodejs:20
  whirl action create tool tool.zip --native
  whirl action create page page.js --web true
  whirl action create both --sequence hello,greet")]
    Create(Spec),
    /// Update an action (creates it if missing); only what is given changes.
    #[command(after_help = "\
Examples:
  whirl action update hello hello.py
  whirl action update hello -p name Ada
  whirl action update hello --memory 512 --timeout 30000")]
    Update(Spec),
    /// Show an action.
    #[command(after_help = "\
Examples:
  whirl action get hello
  whirl action get hello --summary
  whirl action get hello --save        (writes the code to hello.py)
  whirl action get hello exec.kind     (one field)")]
    Get {
        /// The action's name.
        name: String,
        /// Print only this field (dotted path, e.g. exec.kind or limits.memory).
        field: Option<String>,
        /// Summarize: kind, description, parameters and limits.
        #[arg(short = 's', long)]
        summary: bool,
        /// Print the action's URL (and its web URL when it is a web action).
        #[arg(short = 'r', long)]
        url: bool,
        /// Save the code to a file named after the action.
        #[arg(long)]
        save: bool,
        /// Save the code to FILE.
        #[arg(long = "save-as", value_name = "FILE")]
        save_as: Option<PathBuf>,
    },
    /// List actions (of the namespace, or of a package).
    #[command(after_help = "\
Examples:
  whirl action list
  whirl action list mypackage
  whirl action list --limit 5 --name-sort")]
    List {
        /// A package (PACKAGE or /NAMESPACE/PACKAGE) or a namespace (/NAMESPACE).
        scope: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Delete an action.
    #[command(after_help = "\
Examples:
  whirl action delete hello")]
    Delete {
        /// The action's name.
        name: String,
    },
    /// Invoke an action.
    #[command(after_help = "\
Examples:
  whirl action invoke hello                      (returns the activation id)
  whirl action invoke hello -p name Ada --blocking
  whirl action invoke hello -P params.json --result")]
    Invoke {
        /// The action's name.
        name: String,
        #[command(flatten)]
        params: Params,
        /// Wait for the activation and print it.
        #[arg(short = 'b', long)]
        blocking: bool,
        /// Wait for the activation and print only its result.
        #[arg(short = 'r', long)]
        result: bool,
    },
}

pub fn run(args: ActionArgs) -> Result<(), CliError> {
    let g = args.global;
    match args.cmd {
        ActionCmd::Create(spec) => put(&g, spec, false),
        ActionCmd::Update(spec) => put(&g, spec, true),
        ActionCmd::Get {
            name,
            field,
            summary,
            url,
            save,
            save_as,
        } => get(&g, &name, field, summary, url, save, save_as),
        ActionCmd::List { scope, paging } => list(&g, scope.as_deref(), &paging),
        ActionCmd::Delete { name } => {
            let c = g.client()?;
            let q = QName::parse(&name, true)?;
            let ctx = format!("Unable to delete action '{name}'");
            let body = c
                .send(Method::DELETE, &action_path(&c, &q), &[], None)
                .map_err(|e| e.context(&ctx))?
                .into_ok(&ctx)?;
            if g.json {
                output::json(&body);
            } else {
                println!("ok: deleted action {name}");
            }
            Ok(())
        }
        ActionCmd::Invoke {
            name,
            params,
            blocking,
            result,
        } => invoke(&g, &name, &params, blocking || result, result),
    }
}

/// `/api/v1/namespaces/{ns}/actions/[{pkg}/]{name}`.
pub fn action_path(c: &Client, q: &QName) -> String {
    format!("{}/actions/{}", c.ns_path(q.namespace.as_deref()), q.path())
}

/// The kind a file's extension implies.
fn kind_of(path: &Path) -> Result<&'static str, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "py" => Ok("python:default"),
        "js" | "mjs" | "cjs" => Ok("nodejs:default"),
        "zip" => Err(usage(format!(
            "'{}' is a zip archive: say which runtime runs it with --kind (e.g. --kind python:3 or --kind nodejs:20) or --native.",
            path.display()
        ))),
        _ => Err(usage(format!(
            "Cannot infer the kind of '{}' from its extension: give --kind (e.g. --kind python:3).",
            path.display()
        ))),
    }
}

fn is_zip(path: &Path, bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip") || e.eq_ignore_ascii_case("jar"))
}

/// `{"code": ..., "binary": ...}` from a file (zips base64-encoded).
fn code_from(path: &Path) -> Result<(Value, bool), CliError> {
    let bytes =
        std::fs::read(path).map_err(|e| usage(format!("Cannot read '{}': {e}", path.display())))?;
    if is_zip(path, &bytes) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        Ok((Value::String(b64), true))
    } else {
        let text = String::from_utf8(bytes).map_err(|_| {
            usage(format!(
                "'{}' is neither text nor a zip archive.",
                path.display()
            ))
        })?;
        Ok((Value::String(text), false))
    }
}

/// The `exec` of a create or update, or `None` when an update leaves the code alone.
fn exec(spec: &Spec, c: &Client, update: bool) -> Result<Option<Value>, CliError> {
    if spec.sequence {
        let list = spec
            .artifact
            .as_deref()
            .ok_or_else(|| usage("--sequence needs a comma-separated list of actions."))?;
        let components = list
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| QName::parse(s, true).map(|q| q.full(&c.namespace)))
            .collect::<Result<Vec<_>, _>>()?;
        if components.is_empty() {
            return Err(usage("--sequence needs at least one action."));
        }
        return Ok(Some(json!({"kind": "sequence", "components": components})));
    }
    if let Some(image) = &spec.docker {
        let mut e = json!({"kind": "blackbox", "image": image, "binary": false});
        if let Some(a) = &spec.artifact {
            let (code, binary) = code_from(Path::new(a))?;
            e["code"] = code;
            e["binary"] = json!(binary);
        }
        if let Some(m) = &spec.main {
            e["main"] = json!(m);
        }
        return Ok(Some(e));
    }
    let Some(artifact) = spec.artifact.as_deref() else {
        if update {
            if spec.kind.is_some() || spec.native || spec.main.is_some() {
                return Err(usage(
                    "--kind, --native and --main need the action's code: give the file too.",
                ));
            }
            return Ok(None);
        }
        return Err(usage(
            "An action needs code: give a file (e.g. `whirl action create hello hello.py`), --sequence or --docker.",
        ));
    };
    let path = Path::new(artifact);
    let kind = if spec.native {
        "native".to_owned()
    } else if let Some(k) = &spec.kind {
        k.clone()
    } else {
        kind_of(path)?.to_owned()
    };
    let (code, binary) = code_from(path)?;
    let mut e = json!({"kind": kind, "code": code, "binary": binary});
    if let Some(m) = &spec.main {
        e["main"] = json!(m);
    }
    Ok(Some(e))
}

/// The annotations `--web` and `--web-secure` add.
fn web_annotations(spec: &Spec) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    match spec.web.as_deref() {
        None => {}
        Some("true" | "yes") => {
            m.insert("web-export".into(), json!(true));
            m.insert("raw-http".into(), json!(false));
            m.insert("final".into(), json!(true));
        }
        Some("raw") => {
            m.insert("web-export".into(), json!(true));
            m.insert("raw-http".into(), json!(true));
            m.insert("final".into(), json!(true));
        }
        Some(_) => {
            m.insert("web-export".into(), json!(false));
            m.insert("raw-http".into(), json!(false));
        }
    }
    if let Some(s) = &spec.web_secure {
        if matches!(spec.web.as_deref(), Some("false" | "no")) {
            return Err(usage("--web-secure applies only to web actions."));
        }
        let v = match s.as_str() {
            "true" => json!(true),
            "false" => json!(false),
            other => json!(other),
        };
        m.insert("require-whisk-auth".into(), v);
    }
    Ok(m)
}

fn put(g: &Global, spec: Spec, update: bool) -> Result<(), CliError> {
    let verb = if update { "update" } else { "create" };
    let ctx = format!("Unable to {verb} action '{}'", spec.name);
    // Local problems (names, files, JSON) come before any request.
    let q = QName::parse(&spec.name, true)?;
    let params = spec.params.object()?;
    let mut annots = spec.annotations.object()?;
    annots.extend(web_annotations(&spec)?);
    let c = g.client()?;
    let path = action_path(&c, &q);
    let mut body = json!({});
    if let Some(e) = exec(&spec, &c, update)? {
        body["exec"] = e;
    }
    if spec.params.given() {
        body["parameters"] = kv_array(&params);
    }
    if !annots.is_empty() {
        // An update keeps the annotations it does not name.
        let base = if update {
            let r = c
                .send(Method::GET, &path, &[], None)
                .map_err(|e| e.context(&ctx))?;
            if r.ok() {
                r.body["annotations"].clone()
            } else {
                json!([])
            }
        } else {
            json!([])
        };
        body["annotations"] = kv_merge(&base, &annots);
    }
    let mut limits = Map::new();
    for (k, v) in [
        ("timeout", spec.timeout),
        ("memory", spec.memory),
        ("logs", spec.logsize),
        ("concurrency", spec.concurrency),
    ] {
        if let Some(v) = v {
            limits.insert(k.into(), json!(v));
        }
    }
    if !limits.is_empty() {
        body["limits"] = Value::Object(limits);
    }
    let query = [("overwrite", update.to_string())];
    let v = c
        .send(Method::PUT, &path, &query, Some(&body))
        .map_err(|e| e.context(&ctx))?
        .into_ok(&ctx)?;
    if g.json {
        output::json(&v);
    } else {
        println!("ok: {verb}d action {}", spec.name);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn get(
    g: &Global,
    name: &str,
    field: Option<String>,
    summary: bool,
    url: bool,
    save: bool,
    save_as: Option<PathBuf>,
) -> Result<(), CliError> {
    let q = QName::parse(name, true)?;
    let c = g.client()?;
    let ctx = format!("Unable to get action '{name}'");
    let path = action_path(&c, &q);
    let a = c.get(&path, &[], &ctx)?;
    if save || save_as.is_some() {
        let kind = a["exec"]["kind"].as_str().unwrap_or("");
        let code = a["exec"]["code"]
            .as_str()
            .ok_or_else(|| CliError::Other(format!("Action '{name}' has no code to save.")))?;
        let binary = a["exec"]["binary"].as_bool().unwrap_or(false);
        let file = save_as.unwrap_or_else(|| {
            let ext = if binary {
                "zip"
            } else if kind.starts_with("python") {
                "py"
            } else if kind.starts_with("nodejs") {
                "js"
            } else {
                "txt"
            };
            PathBuf::from(format!("{}.{ext}", q.name))
        });
        if file.exists() {
            return Err(usage(format!(
                "The file '{}' already exists.",
                file.display()
            )));
        }
        let bytes = if binary {
            base64::engine::general_purpose::STANDARD
                .decode(code)
                .map_err(|e| CliError::Other(format!("The action's code is not base64: {e}")))?
        } else {
            code.as_bytes().to_vec()
        };
        std::fs::write(&file, bytes)
            .map_err(|e| CliError::Other(format!("Cannot write '{}': {e}", file.display())))?;
        println!("ok: saved action code to {}", file.display());
        return Ok(());
    }
    if url {
        let ns = a["namespace"].as_str().unwrap_or(&c.namespace);
        let api = format!("{}{}", c.apihost, path);
        let web = kv(&a["annotations"], "web-export") == Some(&json!(true));
        if g.json {
            let mut o = json!({"url": api});
            if web {
                o["web"] = json!(web_url(&c.apihost, ns, &a));
            }
            output::json(&o);
        } else {
            println!("ok: got action {name}");
            println!("{api}");
            if web {
                println!("{}", web_url(&c.apihost, ns, &a));
            }
        }
        return Ok(());
    }
    if let Some(f) = field {
        let v = pick(&a, &f).ok_or_else(|| usage(format!("The action has no field '{f}'.")))?;
        if g.json {
            output::json(v);
        } else {
            match v {
                Value::String(s) => println!("{s}"),
                v => output::json(v),
            }
        }
        return Ok(());
    }
    if summary && !g.json {
        print_summary(&a);
        return Ok(());
    }
    if g.json {
        output::json(&a);
    } else {
        println!("ok: got action {name}");
        output::json(&a);
    }
    Ok(())
}

/// `/api/v1/web/{ns}/{pkg|default}/{name}`.
fn web_url(host: &str, ns: &str, a: &Value) -> String {
    let name = a["name"].as_str().unwrap_or("");
    let (root, pkg) = match ns.split_once('/') {
        Some((r, p)) => (r, p),
        None => (ns, "default"),
    };
    format!("{host}/api/v1/web/{root}/{pkg}/{name}")
}

/// A dotted path into a JSON value (`exec.kind`, `limits.memory`, `annotations.0.key`).
pub fn pick<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, k| match cur {
        Value::Object(m) => m.get(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn print_summary(a: &Value) {
    let ns = a["namespace"].as_str().unwrap_or("");
    let name = a["name"].as_str().unwrap_or("");
    let kind = a["exec"]["kind"].as_str().unwrap_or("?");
    println!(
        "action /{ns}/{name}  ({kind}, version {})",
        output::cell(&a["version"])
    );
    if let Some(d) = kv(&a["annotations"], "description").and_then(Value::as_str) {
        println!("  {d}");
    }
    if let Some(comps) = a["exec"]["components"].as_array() {
        let c: Vec<String> = comps.iter().map(output::cell).collect();
        println!("  sequence: {}", c.join(" -> "));
    }
    let params: Vec<String> = a["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let k = output::cell(&p["key"]);
                    if p["init"] == json!(true) {
                        format!("{k} (init)")
                    } else {
                        k
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if !params.is_empty() {
        println!("  parameters: {}", params.join(", "));
    }
    let l = &a["limits"];
    if l.is_object() {
        println!(
            "  limits: timeout {} ms, memory {} MB, logs {} MB, concurrency {}",
            output::cell(&l["timeout"]),
            output::cell(&l["memory"]),
            output::cell(&l["logs"]),
            output::cell(&l["concurrency"]),
        );
    }
    if kv(&a["annotations"], "web-export") == Some(&json!(true)) {
        let raw = kv(&a["annotations"], "raw-http") == Some(&json!(true));
        println!("  web action{}", if raw { " (raw HTTP)" } else { "" });
    }
}

fn list(g: &Global, scope: Option<&str>, paging: &Paging) -> Result<(), CliError> {
    let c = g.client()?;
    let path = match scope {
        None => format!("{}/actions", c.ns_path(None)),
        Some(s) => {
            // `/ns` is a namespace; `pkg` or `/ns/pkg` a package.
            let trimmed = s.trim_end_matches('/');
            match trimmed.strip_prefix('/') {
                Some(ns) if !ns.contains('/') => format!("{}/actions", c.ns_path(Some(ns))),
                _ => {
                    let q = QName::parse(trimmed, false)?;
                    format!(
                        "{}/actions/{}/",
                        c.ns_path(q.namespace.as_deref()),
                        super::http::seg(&q.name)
                    )
                }
            }
        }
    };
    let v = c.get(&path, &paging.query(), "Unable to list actions")?;
    if g.json {
        output::json(&v);
        return Ok(());
    }
    let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    if paging.name_sort {
        items.sort_by(|a, b| output::cell(&a["name"]).cmp(&output::cell(&b["name"])));
    }
    println!("actions");
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|a| {
            let kind = kv(&a["annotations"], "exec")
                .map(output::cell)
                .unwrap_or_default();
            vec![
                format!(
                    "/{}/{}",
                    output::cell(&a["namespace"]),
                    output::cell(&a["name"])
                ),
                if a["publish"] == json!(true) {
                    "shared"
                } else {
                    "private"
                }
                .to_owned(),
                kind,
            ]
        })
        .collect();
    output::table(None, &rows);
    Ok(())
}

fn invoke(
    g: &Global,
    name: &str,
    params: &Params,
    blocking: bool,
    result_only: bool,
) -> Result<(), CliError> {
    let q = QName::parse(name, true)?;
    let body = Value::Object(params.object()?);
    let c = g.client()?;
    let ctx = format!("Unable to invoke action '{name}'");
    let path = action_path(&c, &q);
    let query = [("blocking", blocking.to_string())];
    let resp = {
        let _spin = blocking.then(|| Spinner::start(format!("waiting for {name}")));
        c.send(Method::POST, &path, &query, Some(&body))
            .map_err(|e| e.context(&ctx))?
    };
    let full = q.full(&c.namespace);
    let id = resp
        .activation_id
        .clone()
        .or_else(|| resp.body["activationId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    match resp.status {
        202 => {
            if g.json {
                output::json(&json!({"activationId": id}));
            } else if blocking {
                println!(
                    "ok: invoked {full} with id {id}; it is still running (`whirl activation get {id}` shows it when done)"
                );
            } else {
                println!("ok: invoked {full} with id {id}");
            }
            Ok(())
        }
        200 => {
            if result_only {
                output::json(&resp.body["response"]["result"]);
            } else if g.json {
                output::json(&resp.body);
            } else {
                println!("ok: invoked {full} with id {id}");
                output::json(&resp.body);
            }
            Ok(())
        }
        // A completed activation that failed: show it, then fail with its error.
        s if resp.body["activationId"].is_string() && (s == 502 || s == 500) => {
            let r = &resp.body["response"];
            if result_only {
                output::json(&r["result"]);
            } else if g.json {
                output::json(&resp.body);
            } else {
                println!("ok: invoked {full} with id {id}, which failed");
                output::json(&resp.body);
            }
            let message = match &r["result"]["error"] {
                Value::String(s) => s.clone(),
                Value::Null => output::cell(&r["status"]),
                v => v.to_string(),
            };
            Err(CliError::Http {
                context: format!("Action '{name}' failed ({})", output::cell(&r["status"])),
                status: s,
                message: format!("{message} [activation {id}]"),
                code: None,
            })
        }
        _ => Err(resp.error(ctx)),
    }
}
