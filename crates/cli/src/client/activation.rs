//! `whirl activation list|get|logs|result|poll`.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::Value;

use super::action::pick;
use super::http::{seg, usage, CliError, Client};
use super::output::{self, kv, Spinner};
use super::{Global, QName};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  whirl activation list
  whirl activation logs --last
  whirl activation poll hello")]
pub struct ActivationArgs {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: ActivationCmd,
}

/// An activation id, or `--last` for the newest.
#[derive(clap::Args, Debug)]
pub struct Which {
    /// The activation id (32 hex digits).
    #[arg(required_unless_present = "last")]
    pub id: Option<String>,
    /// Use the most recent activation.
    #[arg(short = 'l', long, conflicts_with = "id")]
    pub last: bool,
}

#[derive(Subcommand)]
pub enum ActivationCmd {
    /// List activations, newest first.
    #[command(after_help = "\
Examples:
  whirl activation list
  whirl activation list hello --limit 5
  whirl activation list --since 1700000000000 --full")]
    List {
        /// Only activations of this action (NAME or PACKAGE/NAME), or of a /NAMESPACE.
        name: Option<String>,
        /// Return at most LIMIT activations (max 200).
        #[arg(short = 'l', long, default_value_t = 30, value_name = "LIMIT")]
        limit: u32,
        /// Skip the first SKIP activations.
        #[arg(short = 's', long, default_value_t = 0, value_name = "SKIP")]
        skip: u32,
        /// Only activations that started at or after SINCE (epoch milliseconds).
        #[arg(long, value_name = "SINCE")]
        since: Option<i64>,
        /// Only activations that started before UPTO (epoch milliseconds).
        #[arg(long, value_name = "UPTO")]
        upto: Option<i64>,
        /// Include the full records (with --json), or the result column in the table.
        #[arg(short = 'f', long)]
        full: bool,
    },
    /// Show an activation.
    #[command(after_help = "\
Examples:
  whirl activation get 7e3d9d5bc3d14b2bbd9d5bc3d1ab2b11
  whirl activation get --last --summary
  whirl activation get --last response.result")]
    Get {
        #[command(flatten)]
        which: Which,
        /// Print only this field (dotted path, e.g. response.result or duration).
        #[arg(long, value_name = "FIELD")]
        field: Option<String>,
        /// Summarize: name, status, timing and result.
        #[arg(short = 's', long)]
        summary: bool,
        /// Print only the logs, without time stamps and stream names.
        #[arg(short = 'g', long)]
        logs: bool,
    },
    /// Print an activation's logs.
    #[command(after_help = "\
Examples:
  whirl activation logs 7e3d9d5bc3d14b2bbd9d5bc3d1ab2b11
  whirl activation logs --last --strip")]
    Logs {
        #[command(flatten)]
        which: Which,
        /// Strip time stamps and stream names.
        #[arg(short = 'r', long)]
        strip: bool,
    },
    /// Print an activation's result.
    #[command(after_help = "\
Examples:
  whirl activation result 7e3d9d5bc3d14b2bbd9d5bc3d1ab2b11
  whirl activation result --last")]
    Result {
        #[command(flatten)]
        which: Which,
    },
    /// Watch for new activations and print their logs as they arrive (Ctrl-C stops).
    #[command(after_help = "\
Examples:
  whirl activation poll
  whirl activation poll hello --since-seconds 30
  whirl activation poll --exit 60")]
    Poll {
        /// Only activations of this action (NAME or PACKAGE/NAME), or of a /NAMESPACE.
        name: Option<String>,
        /// Stop polling after SECONDS seconds.
        #[arg(short = 'e', long, value_name = "SECONDS")]
        exit: Option<u64>,
        /// Start with activations from SECONDS seconds ago.
        #[arg(long, value_name = "SECONDS")]
        since_seconds: Option<u64>,
        /// Start with activations from MINUTES minutes ago.
        #[arg(long, value_name = "MINUTES")]
        since_minutes: Option<u64>,
        /// Start with activations from HOURS hours ago.
        #[arg(long, value_name = "HOURS")]
        since_hours: Option<u64>,
        /// Start with activations from DAYS days ago.
        #[arg(long, value_name = "DAYS")]
        since_days: Option<u64>,
        /// Milliseconds between two looks at the server.
        #[arg(long, default_value_t = 1000, value_name = "MS", hide = true)]
        interval: u64,
    },
}

pub fn run(args: ActivationArgs) -> Result<(), CliError> {
    let g = args.global;
    match args.cmd {
        ActivationCmd::List {
            name,
            limit,
            skip,
            since,
            upto,
            full,
        } => list(&g, name, limit, skip, since, upto, full),
        ActivationCmd::Get {
            which,
            field,
            summary,
            logs,
        } => {
            let c = g.client()?;
            let id = resolve(&c, &which)?;
            let a = c.get(
                &format!("{}/activations/{}", c.ns_path(None), seg(&id)),
                &[],
                &format!("Unable to get activation '{id}'"),
            )?;
            if let Some(f) = field {
                let v = pick(&a, &f)
                    .ok_or_else(|| usage(format!("The activation has no field '{f}'.")))?;
                output::json(v);
            } else if logs {
                for l in a["logs"].as_array().into_iter().flatten() {
                    println!("{}", strip(&output::cell(l)));
                }
            } else if g.json {
                output::json(&a);
            } else if summary {
                print_summary(&a);
            } else {
                println!("ok: got activation {id}");
                output::json(&a);
            }
            Ok(())
        }
        ActivationCmd::Logs { which, strip: s } => {
            let c = g.client()?;
            let id = resolve(&c, &which)?;
            let v = c.get(
                &format!("{}/activations/{}/logs", c.ns_path(None), seg(&id)),
                &[],
                &format!("Unable to get the logs of activation '{id}'"),
            )?;
            if g.json {
                output::json(&v);
                return Ok(());
            }
            for l in v["logs"].as_array().into_iter().flatten() {
                let l = output::cell(l);
                println!("{}", if s { strip(&l) } else { l });
            }
            Ok(())
        }
        ActivationCmd::Result { which } => {
            let c = g.client()?;
            let id = resolve(&c, &which)?;
            let v = c.get(
                &format!("{}/activations/{}/result", c.ns_path(None), seg(&id)),
                &[],
                &format!("Unable to get the result of activation '{id}'"),
            )?;
            if g.json {
                output::json(&v);
            } else {
                output::json(&v["result"]);
            }
            Ok(())
        }
        ActivationCmd::Poll {
            name,
            exit,
            since_seconds,
            since_minutes,
            since_hours,
            since_days,
            interval,
        } => {
            let back = since_seconds.unwrap_or(0)
                + since_minutes.unwrap_or(0) * 60
                + since_hours.unwrap_or(0) * 3600
                + since_days.unwrap_or(0) * 86400;
            poll(&g, name, exit, back, interval)
        }
    }
}

/// The id given, or the newest activation's for `--last`.
fn resolve(c: &Client, w: &Which) -> Result<String, CliError> {
    if let Some(id) = &w.id {
        return Ok(id.clone());
    }
    let v = c.get(
        &format!("{}/activations", c.ns_path(None)),
        &[("limit", "1".into())],
        "Unable to get the last activation",
    )?;
    v[0]["activationId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| CliError::Other("There are no activations yet.".into()))
}

/// A list or poll argument: `/NAMESPACE`, or an action (`NAME`, `PACKAGE/NAME`,
/// `/NAMESPACE/[PACKAGE/]NAME`). Returns the namespace (if named) and the `name` filter.
fn scope(arg: Option<&str>) -> Result<(Option<String>, Option<String>), CliError> {
    let Some(arg) = arg else {
        return Ok((None, None));
    };
    if let Some(ns) = arg
        .strip_prefix('/')
        .filter(|r| !r.is_empty() && !r.contains('/'))
    {
        return Ok((Some(ns.to_owned()), None));
    }
    let q = QName::parse(arg, true)?;
    let filter = match &q.package {
        Some(p) => format!("{p}/{}", q.name),
        None => q.name.clone(),
    };
    Ok((q.namespace, Some(filter)))
}

/// `2024-01-01T00:00:00.000Z stdout: text` → `text`.
fn strip(line: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(stream), Some(rest)) if stream.ends_with(':') => rest.to_owned(),
        _ => line.to_owned(),
    }
}

fn status_text(a: &Value) -> String {
    if let Some(s) = a["response"]["status"].as_str() {
        return s.to_owned();
    }
    match a["statusCode"].as_u64() {
        Some(0) => "success",
        Some(1) => "application error",
        Some(2) => "developer error",
        Some(3) => "internal error",
        _ => "",
    }
    .to_owned()
}

fn entity(a: &Value) -> String {
    let path = kv(&a["annotations"], "path")
        .map(output::cell)
        .unwrap_or_else(|| {
            format!(
                "{}/{}",
                output::cell(&a["namespace"]),
                output::cell(&a["name"])
            )
        });
    format!("{path}:{}", output::cell(&a["version"]))
}

#[allow(clippy::too_many_arguments)]
fn list(
    g: &Global,
    name: Option<String>,
    limit: u32,
    skip: u32,
    since: Option<i64>,
    upto: Option<i64>,
    full: bool,
) -> Result<(), CliError> {
    let c = g.client()?;
    let mut q = vec![("limit", limit.to_string())];
    let (ns, filter) = scope(name.as_deref())?;
    if let Some(f) = filter {
        q.push(("name", f));
    }
    if skip > 0 {
        q.push(("skip", skip.to_string()));
    }
    if let Some(s) = since {
        q.push(("since", s.to_string()));
    }
    if let Some(u) = upto {
        q.push(("upto", u.to_string()));
    }
    if full {
        q.push(("docs", "true".into()));
    }
    let v = c.get(
        &format!("{}/activations", c.ns_path(ns.as_deref())),
        &q,
        "Unable to list activations",
    )?;
    if g.json {
        output::json(&v);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            // Trigger activations have neither a kind nor a container.
            let start = if kv(&a["annotations"], "initTime").is_some() {
                "cold"
            } else if kv(&a["annotations"], "kind").is_some() {
                "warm"
            } else {
                ""
            };
            let kind = kv(&a["annotations"], "kind")
                .map(output::cell)
                .unwrap_or_default();
            let mut row = vec![
                output::datetime(a["start"].as_i64().unwrap_or(0)),
                output::cell(&a["activationId"]),
                kind,
                start.to_owned(),
                a["duration"]
                    .as_i64()
                    .map(output::duration)
                    .unwrap_or_default(),
                status_text(a),
                entity(a),
            ];
            if full {
                row.push(a["response"]["result"].to_string());
            }
            row
        })
        .collect();
    let mut header = vec![
        "Datetime",
        "Activation ID",
        "Kind",
        "Start",
        "Duration",
        "Status",
        "Entity",
    ];
    if full {
        header.push("Result");
    }
    output::table(Some(&header), &rows);
    Ok(())
}

fn print_summary(a: &Value) {
    println!(
        "activation {}  {}  {}",
        output::cell(&a["activationId"]),
        entity(a),
        status_text(a)
    );
    println!(
        "  started {} UTC, took {}{}",
        output::datetime(a["start"].as_i64().unwrap_or(0)),
        a["duration"]
            .as_i64()
            .map(output::duration)
            .unwrap_or_else(|| "?".into()),
        if kv(&a["annotations"], "initTime").is_some() {
            " (cold start)"
        } else {
            ""
        }
    );
    println!("  result: {}", a["response"]["result"]);
    let logs = a["logs"].as_array().map(Vec::len).unwrap_or(0);
    println!("  logs: {logs} line(s)");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Polls the activation list (full records) and prints each new activation once, with its
/// logs. Activations are stored when they end, so each look goes back far enough to catch long
/// ones that started before the previous look; ids already printed are skipped.
fn poll(
    g: &Global,
    name: Option<String>,
    exit: Option<u64>,
    back_secs: u64,
    interval_ms: u64,
) -> Result<(), CliError> {
    const LOOKBACK_MS: i64 = 5 * 60 * 1000;
    let c = g.client()?;
    let mut base = vec![("docs", "true".to_owned()), ("limit", "200".to_owned())];
    let (ns, filter) = scope(name.as_deref())?;
    if let Some(f) = filter {
        base.push(("name", f));
    }
    let path = format!("{}/activations", c.ns_path(ns.as_deref()));
    // Fail early (bad key, unreachable host) rather than poll in silence.
    c.get(
        &path,
        &[("limit", "1".into())],
        "Unable to poll activations",
    )?;
    let started = Instant::now();
    let floor = now_ms() - (back_secs as i64) * 1000;
    // Ids printed, with their start: those older than a look's `since` cannot come back.
    let mut seen: HashMap<String, i64> = HashMap::new();
    // Shown (on a terminal) while nothing new arrives; cleared before anything is printed.
    let mut spin: Option<Spinner> = None;
    let mut newest = floor;
    if !g.json {
        println!(
            "Polling for activations{} (Ctrl-C stops).",
            match &name {
                Some(n) => format!(" of {n}"),
                None => String::new(),
            }
        );
        let _ = std::io::stdout().flush();
    }
    loop {
        if let Some(e) = exit {
            if started.elapsed() >= Duration::from_secs(e) {
                break;
            }
        }
        let since = floor.max(newest - LOOKBACK_MS);
        let mut q = base.clone();
        q.push(("since", since.to_string()));
        match c.get(&path, &q, "Unable to poll activations") {
            Ok(v) => {
                let mut fresh: Vec<Value> = v
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| {
                        a["activationId"]
                            .as_str()
                            .is_some_and(|id| !seen.contains_key(id))
                    })
                    .collect();
                fresh.sort_by_key(|a| a["start"].as_i64().unwrap_or(0));
                if !fresh.is_empty() {
                    spin = None;
                }
                for a in fresh {
                    let start = a["start"].as_i64().unwrap_or(0);
                    seen.insert(output::cell(&a["activationId"]), start);
                    newest = newest.max(start);
                    print_polled(g, &a);
                }
                seen.retain(|_, start| *start >= since);
            }
            // A hiccup does not end a long poll; the next look retries.
            Err(e) => {
                spin = None;
                eprintln!("warning: {e}");
            }
        }
        let mut wait = Duration::from_millis(interval_ms.max(100));
        if let Some(e) = exit {
            wait = wait.min(Duration::from_secs(e).saturating_sub(started.elapsed()));
        }
        if spin.is_none() {
            spin = Some(Spinner::start("waiting for activations"));
        }
        std::thread::sleep(wait);
    }
    drop(spin);
    Ok(())
}

fn print_polled(g: &Global, a: &Value) {
    if g.json {
        // One record per line, for line-oriented consumers.
        println!("{a}");
    } else {
        println!(
            "\nActivation: {} ({}) {} {}",
            output::cell(&a["name"]),
            output::cell(&a["activationId"]),
            status_text(a),
            a["duration"]
                .as_i64()
                .map(output::duration)
                .unwrap_or_default()
        );
        for l in a["logs"].as_array().into_iter().flatten() {
            println!("  {}", output::cell(l));
        }
    }
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_time_and_stream() {
        assert_eq!(strip("2024-01-01T00:00:00.1Z stdout: hi there"), "hi there");
        assert_eq!(strip("plain line"), "plain line");
        assert_eq!(status_text(&json!({"statusCode": 2})), "developer error");
        assert_eq!(scope(Some("/guest")).unwrap(), (Some("guest".into()), None));
        assert_eq!(
            scope(Some("/guest/pkg/a")).unwrap(),
            (Some("guest".into()), Some("pkg/a".into()))
        );
        assert_eq!(scope(Some("a")).unwrap(), (None, Some("a".into())));
    }
}
