//! Conformance suite: log-store SPI.
//!
//! [`log_store`] runs the suite's own action in a real container of the given factory (created
//! with the store's [`LogStore::container_parameters`]), talking to it the way the invoker does,
//! over OpenWhisk's runtime protocol with `whirl-runtime-client`. Each activation prints, with a
//! tag of its own, two lines on stdout, a line on stderr and another on stdout, pausing
//! [`PAUSE_MS`] whenever it switches streams. Then, for a store that collects in band:
//!
//! * `collect` returns exactly the activation's lines, in the order printed, each formatted as
//!   OpenWhisk's activation records hold them: `<RFC 3339 UTC time with nanoseconds, padded to
//!   30> stdout: <message>` (or `stderr:`), the time being when the line was printed; no sentinel
//!   lines;
//! * with a byte limit smaller than the output, the lines kept are the first ones, within the
//!   limit, followed by OpenWhisk's truncation line ([`messages::logs_truncated`]) on stderr;
//! * with a limit of 0, nothing (the [`LogContext`] rule: 0 means collect nothing);
//! * for a developer error (here: the action exits the runtime's launcher after printing), the
//!   lines read (some may be missing) followed by OpenWhisk's warning line
//!   ([`messages::DEV_ERROR_LOGS_WARNING`]) on stderr;
//! * consecutive activations' logs never mix, also after a truncated or an empty collection;
//! * `fetch` of a record holding the collected lines returns those lines (in-band stores keep the
//!   record's lines as the activation's logs).
//!
//! For a store that collects out of band, `collect` is never called (the invoker skips it); the
//! suite checks instead that `fetch` of each activation (its record annotated with `container`
//! and its `run` in it, as the invoker does) returns, within [`PATIENCE`], its messages in the order printed and none
//! of another activation's.
//!
//! Every panic names the rule that was broken; panics that name a setup step are the container
//! factory's or the runtime's fault, not the store's.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use whirl_model::error::messages;
use whirl_model::manifest::{Launcher, RuntimeKind};
use whirl_model::{Action, ActionLimits, Activation, ActivationId, Exec};
use whirl_runtime_client::{RunPayload, RuntimeClient};

use crate::container::{Container, ContainerFactory, ContainerSpec, LogStream};
use crate::logstore::{LogContext, LogStore};

/// How long the suite waits for a container to boot and answer, and for out-of-band logs to
/// arrive (a cold interpreter, a busy CI).
pub const PATIENCE: Duration = Duration::from_secs(30);
/// How long the suite's action pauses before it switches from one output stream to the other, so
/// the order of its lines across streams is well defined.
pub const PAUSE_MS: u64 = 100;
/// OpenWhisk's end-of-activation sentinel, which never belongs in an activation's logs.
const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
/// The log limit the suite's action has (OpenWhisk's default, 10 MB).
const LOG_LIMIT_MB: u64 = 10;
/// How far a log line's time may lie outside the activation's run (clocks are read at different
/// places).
const SLACK: Duration = Duration::from_secs(1);

/// The lines one activation of the suite's action prints, in order.
fn printed(tag: &str) -> Vec<(LogStream, String)> {
    vec![
        (LogStream::Stdout, format!("{tag} stdout one")),
        (LogStream::Stdout, format!("{tag} stdout two ünïcödé  x")),
        (LogStream::Stderr, format!("{tag} stderr one")),
        (LogStream::Stdout, format!("{tag} stdout three")),
    ]
}

/// The suite's action for a launcher: prints [`printed`]`(args.tag)` with pauses between streams,
/// then exits its process if `args.crash` is true, and otherwise returns `{"tag": args.tag}`.
fn code_for(launcher: Launcher) -> String {
    let pause_s = PAUSE_MS as f64 / 1000.0;
    match launcher {
        Launcher::Python => format!(
            "import os, sys, time\n\n\
             def main(args):\n    \
                 tag = args.get('tag', '')\n    \
                 print(tag + ' stdout one', flush=True)\n    \
                 print(tag + ' stdout two ünïcödé  x', flush=True)\n    \
                 time.sleep({pause_s})\n    \
                 print(tag + ' stderr one', file=sys.stderr, flush=True)\n    \
                 time.sleep({pause_s})\n    \
                 print(tag + ' stdout three', flush=True)\n    \
                 if args.get('crash'):\n        \
                     os._exit(1)\n    \
                 return {{'tag': tag}}\n"
        ),
        Launcher::Node => format!(
            "function main(args) {{\n  \
               const tag = args.tag || '';\n  \
               const pause = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, {PAUSE_MS});\n  \
               console.log(tag + ' stdout one');\n  \
               console.log(tag + ' stdout two ünïcödé  x');\n  \
               pause();\n  \
               console.error(tag + ' stderr one');\n  \
               pause();\n  \
               console.log(tag + ' stdout three');\n  \
               if (args.crash) process.exit(1);\n  \
               return {{tag}};\n\
             }}\n"
        ),
        Launcher::Native => format!(
            "#!/bin/sh\n\
             while read -r line; do\n  \
               tag=$(printf '%s' \"$line\" | sed -n 's/.*\"tag\": *\"\\([^\"]*\\)\".*/\\1/p')\n  \
               printf '%s\\n' \"$tag stdout one\"\n  \
               printf '%s\\n' \"$tag stdout two ünïcödé  x\"\n  \
               sleep {pause_s}\n  \
               printf '%s\\n' \"$tag stderr one\" >&2\n  \
               sleep {pause_s}\n  \
               printf '%s\\n' \"$tag stdout three\"\n  \
               case \"$line\" in *'\"crash\":true'*) exit 1 ;; esac\n  \
               printf '{{\"tag\":\"%s\"}}\\n' \"$tag\" >&3\n\
             done\n"
        ),
    }
}

/// The suite's action as the platform stores it.
fn action_for(kind: &RuntimeKind) -> Action {
    Action {
        namespace: "guest".into(),
        name: "conformance-logs".into(),
        version: "0.0.1".into(),
        publish: false,
        exec: Exec::Code {
            kind: kind.kind.clone(),
            code: code_for(kind.launcher),
            binary: false,
            main: Some("main".into()),
        },
        annotations: Default::default(),
        parameters: Default::default(),
        limits: ActionLimits {
            timeout: PATIENCE.as_millis() as u64,
            memory: 256,
            logs: LOG_LIMIT_MB,
            concurrency: 1,
        },
        updated: 0,
    }
}

/// One activation of the suite's action: its record (without logs) and when it started.
struct Ran {
    tag: String,
    record: Activation,
    started: SystemTime,
}

/// Runs the suite's action once in `container`, printing lines tagged `tag`.
async fn run(
    client: &RuntimeClient,
    action: &Action,
    tag: &str,
    crash: bool,
) -> (Ran, whirl_runtime_client::RunResult) {
    let started = SystemTime::now();
    let start_ms = whirl_model::time::now_ms();
    let id = ActivationId::generate();
    let activation_id = id.to_string();
    let value = if crash {
        json!({"tag": tag, "crash": true})
    } else {
        json!({"tag": tag})
    };
    let deadline = start_ms + PATIENCE.as_millis() as u64;
    let body = RunPayload {
        value: &value,
        namespace: "guest",
        action_name: "/guest/conformance-logs",
        action_version: &action.version,
        activation_id: &activation_id,
        transaction_id: "conformance",
        deadline,
        api_key: None,
    };
    let outcome = client.run(&body, PATIENCE, 1 << 20).await;
    let end = whirl_model::time::now_ms();
    let record = Activation {
        namespace: "guest".into(),
        name: action.name.clone(),
        version: action.version.clone(),
        subject: "guest".into(),
        activation_id: id,
        start: start_ms,
        end,
        duration: Some(end.saturating_sub(start_ms)),
        publish: false,
        cause: None,
        response: outcome.response.clone(),
        logs: Vec::new(),
        annotations: Default::default(),
    };
    let ran = Ran {
        tag: tag.to_string(),
        record,
        started,
    };
    (ran, outcome)
}

/// Runs the suite's action and checks that the run itself worked (a setup step).
async fn run_ok(client: &RuntimeClient, action: &Action, tag: &str) -> Ran {
    let (ran, outcome) = run(client, action, tag, false).await;
    assert!(
        outcome.response.is_success()
            && outcome.response.result.as_ref() == Some(&json!({"tag": tag})),
        "setup: a /run of the suite's action succeeds with its result; got {:?}",
        outcome.response
    );
    ran
}

/// A collected line taken apart: its time, stream and message.
struct Parsed<'a> {
    time: &'a str,
    stream: LogStream,
    message: &'a str,
}

/// Whether `s` is an RFC 3339 UTC time with nanoseconds, e.g. `2018-03-05T02:10:38.196689522Z`.
fn is_log_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 30
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            29 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Takes a collected line apart, panicking (naming the format rule) unless it is formatted as
/// OpenWhisk's activation records hold log lines.
fn parse(line: &str) -> Parsed<'_> {
    let bad = || -> ! {
        panic!(
            "rule: collected lines are formatted `<RFC 3339 time with nanoseconds, padded to 30> \
             stdout|stderr: <message>`; got {line:?}"
        )
    };
    let time = line.get(..30).unwrap_or_else(|| bad());
    let rest = line.get(30..).unwrap_or_else(|| bad());
    if !is_log_time(time) {
        bad();
    }
    let (stream, message) = if let Some(m) = rest.strip_prefix(" stdout: ") {
        (LogStream::Stdout, m)
    } else if let Some(m) = rest.strip_prefix(" stderr: ") {
        (LogStream::Stderr, m)
    } else {
        bad()
    };
    Parsed {
        time,
        stream,
        message,
    }
}

/// Checks the format of every line, that none is a sentinel, and that the lines' times fall
/// between the activation's start and now.
fn check_lines(lines: &[String], ran: &Ran) {
    let earliest = whirl_model::time::log_timestamp(ran.started - SLACK);
    let latest = whirl_model::time::log_timestamp(SystemTime::now() + SLACK);
    for line in lines {
        assert!(
            !line.contains(SENTINEL),
            "rule: collected logs hold no sentinel lines; got {lines:#?}"
        );
        let p = parse(line);
        assert!(
            p.time >= earliest.as_str() && p.time <= latest.as_str(),
            "rule: a line's time is when it was printed (within the activation, ±{SLACK:?}); \
             got {line:?}, activation from {earliest} to {latest}"
        );
    }
}

/// The stream and message of each line.
fn contents(lines: &[String]) -> Vec<(LogStream, &str)> {
    lines
        .iter()
        .map(|l| {
            let p = parse(l);
            (p.stream, p.message)
        })
        .collect()
}

fn expected(tag: &str) -> Vec<(LogStream, String)> {
    printed(tag)
}

fn as_refs(v: &[(LogStream, String)]) -> Vec<(LogStream, &str)> {
    v.iter().map(|(s, m)| (*s, m.as_str())).collect()
}

/// Collects one activation's logs through the store.
async fn collect(
    store: &dyn LogStore,
    container: &dyn Container,
    kind: &RuntimeKind,
    action: &Action,
    ran: &Ran,
    limit_bytes: usize,
    developer_error: bool,
) -> Vec<String> {
    if !kind.sentinelled_logs {
        // Nothing marks the end of the output: give it a moment to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ctx = LogContext {
        activation: &ran.record,
        action,
        limit_bytes,
        sentinelled: kind.sentinelled_logs,
        developer_error,
        concurrent: false,
    };
    let collect = store.collect(&ctx, container);
    match tokio::time::timeout(PATIENCE, collect).await {
        Ok(Ok(lines)) => lines,
        Ok(Err(e)) => panic!("rule: collect() from a live container succeeds; got {e}"),
        Err(_) => panic!("rule: collect() returns once the activation's output has ended"),
    }
}

/// Checks that an in-band store's `fetch` returns the lines collected into the record.
async fn check_fetch(store: &dyn LogStore, ran: &Ran, lines: &[String]) {
    let mut record = ran.record.clone();
    record.logs = lines.to_vec();
    let fetched = store
        .fetch(&record)
        .await
        .unwrap_or_else(|e| panic!("rule: fetch() of a stored activation succeeds; got {e}"));
    assert_eq!(
        fetched, lines,
        "rule: an in-band store's fetch() returns the lines collected into the record"
    );
}

/// Runs the log-store suite for `store`, with containers of `kind` from `factory` (python, node
/// or native launchers; the suite brings its own action). Calls the factory's `init()` first and
/// `cleanup()` last. Panics naming the broken rule.
pub async fn log_store(store: &dyn LogStore, factory: &dyn ContainerFactory, kind: RuntimeKind) {
    assert!(!store.name().is_empty(), "rule: a log store has a name");
    factory.init().await.expect("setup: the factory's init()");
    let action = action_for(&kind);
    let init = json!({
        "name": action.name,
        "main": "main",
        "code": code_for(kind.launcher),
        "binary": false,
        "env": {},
    });
    let spec = |name: &str| ContainerSpec {
        name: name.to_string(),
        kind: kind.clone(),
        image: None,
        memory_mb: 256,
        cpu_shares: 256,
        env: vec![("__OW_API_HOST".into(), "http://127.0.0.1:3233".into())],
        parameters: store.container_parameters(),
    };
    let container = factory
        .create(spec("conformance_logs"))
        .await
        .expect("setup: the factory creates a container");
    let client = RuntimeClient::new(container.endpoint().clone());
    client
        .init(&init, PATIENCE)
        .await
        .unwrap_or_else(|e| panic!("setup: /init of the suite's action succeeds; got {e}"));

    if store.collects_in_band() {
        in_band(store, container.as_ref(), &client, &kind, &action).await;
    } else {
        out_of_band(store, container.as_ref(), &client, &action).await;
    }
    container
        .destroy()
        .await
        .expect("setup: destroying the container");
    factory.cleanup().await;
}

async fn in_band(
    store: &dyn LogStore,
    container: &dyn Container,
    client: &RuntimeClient,
    kind: &RuntimeKind,
    action: &Action,
) {
    let full = (LOG_LIMIT_MB as usize) << 20;

    // Two activations, each with exactly its own lines.
    for tag in ["first", "second"] {
        let ran = run_ok(client, action, tag).await;
        let lines = collect(store, container, kind, action, &ran, full, false).await;
        check_lines(&lines, &ran);
        assert_eq!(
            contents(&lines),
            as_refs(&expected(&ran.tag)),
            "rule: collect() returns exactly the activation's lines, in the order printed \
             (lines {PAUSE_MS} ms apart across streams), and no other activation's; got {lines:#?}"
        );
        check_fetch(store, &ran, &lines).await;
    }

    // A limit smaller than the output.
    let ran = run_ok(client, action, "limited").await;
    let want = expected(&ran.tag);
    let limit = want[0].1.len() + want[1].1.len() - 1;
    let lines = collect(store, container, kind, action, &ran, limit, false).await;
    check_lines(&lines, &ran);
    let got = contents(&lines);
    let Some(((last_stream, last), kept)) = got.split_last() else {
        panic!("rule: logs over the limit end with the truncation line; got nothing")
    };
    assert_eq!(
        (*last_stream, *last),
        (LogStream::Stderr, messages::logs_truncated(limit).as_str()),
        "rule: logs over the limit end with OpenWhisk's truncation line on stderr; got {lines:#?}"
    );
    assert!(
        kept.len() < want.len() && kept[..] == as_refs(&want)[..kept.len()],
        "rule: logs over the limit keep the first lines printed; got {lines:#?}"
    );
    assert!(
        kept.iter().map(|(_, m)| m.len()).sum::<usize>() <= limit,
        "rule: the lines kept stay within the limit of {limit} bytes; got {lines:#?}"
    );
    check_fetch(store, &ran, &lines).await;
    let ran = run_ok(client, action, "after-limit").await;
    let lines = collect(store, container, kind, action, &ran, full, false).await;
    check_lines(&lines, &ran);
    assert_eq!(
        contents(&lines),
        as_refs(&expected(&ran.tag)),
        "rule: the truncated rest of an activation's output never shows up in the next \
         activation's logs; got {lines:#?}"
    );

    // A limit of 0: nothing, and nothing left over.
    let ran = run_ok(client, action, "unlogged").await;
    let lines = collect(store, container, kind, action, &ran, 0, false).await;
    assert!(
        lines.is_empty(),
        "rule: a limit of 0 bytes collects nothing; got {lines:#?}"
    );
    let ran = run_ok(client, action, "after-unlogged").await;
    let lines = collect(store, container, kind, action, &ran, full, false).await;
    check_lines(&lines, &ran);
    assert_eq!(
        contents(&lines),
        as_refs(&expected(&ran.tag)),
        "rule: the output of an activation collected with a limit of 0 never shows up in the next \
         activation's logs; got {lines:#?}"
    );

    // A developer error: the action's process dies after printing (the container is not reused
    // afterwards, as the invoker destroys it).
    let (ran, outcome) = run(client, action, "crashed", true).await;
    assert!(
        !outcome.response.is_success(),
        "setup: a /run whose action exits its process fails; got {:?}",
        outcome.response
    );
    let lines = collect(store, container, kind, action, &ran, full, true).await;
    check_lines(&lines, &ran);
    let got = contents(&lines);
    let Some(((last_stream, last), read)) = got.split_last() else {
        panic!("rule: a developer error's logs end with OpenWhisk's warning line; got nothing")
    };
    assert_eq!(
        (*last_stream, *last),
        (LogStream::Stderr, messages::DEV_ERROR_LOGS_WARNING),
        "rule: a developer error's logs end with OpenWhisk's warning line on stderr; got {lines:#?}"
    );
    let want = expected(&ran.tag);
    assert!(
        read.len() <= want.len() && read[..] == as_refs(&want)[..read.len()],
        "rule: a developer error's logs hold the lines printed (some may be missing), in order, \
         before the warning; got {lines:#?}"
    );
    check_fetch(store, &ran, &lines).await;

    // A record without logs.
    let mut empty = ran.record.clone();
    empty.logs.clear();
    let fetched = store
        .fetch(&empty)
        .await
        .unwrap_or_else(|e| panic!("rule: fetch() of a stored activation succeeds; got {e}"));
    assert!(
        fetched.is_empty(),
        "rule: an in-band store's fetch() of a record without logs returns none; got {fetched:#?}"
    );
}

async fn out_of_band(
    store: &dyn LogStore,
    container: &dyn Container,
    client: &RuntimeClient,
    action: &Action,
) {
    // The invoker names the container in the records of out-of-band stores.
    let mut first = run_ok(client, action, "first").await;
    let mut second = run_ok(client, action, "second").await;
    for (run, ran) in [&mut first, &mut second].into_iter().enumerate() {
        ran.record
            .annotations
            .put("container", json!({"id": container.id(), "run": run}));
    }
    for (ran, other) in [(&first, &second), (&second, &first)] {
        let want: Vec<String> = expected(&ran.tag).into_iter().map(|(_, m)| m).collect();
        let deadline = Instant::now() + PATIENCE;
        let lines = loop {
            let lines = store
                .fetch(&ran.record)
                .await
                .unwrap_or_else(|e| panic!("rule: fetch() of an activation succeeds; got {e}"));
            if in_order(&lines, &want) {
                break lines;
            }
            assert!(
                Instant::now() < deadline,
                "rule: an out-of-band store's fetch() returns the activation's lines, in the \
                 order printed, within {PATIENCE:?}; got {lines:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let foreign = format!("{} ", other.tag);
        assert!(
            lines.iter().all(|l| !l.contains(&foreign)),
            "rule: fetch() returns no other activation's lines; got {lines:#?}"
        );
    }
}

/// Whether `lines` contain each of `messages` (as part of a line), in this order.
fn in_order(lines: &[String], messages: &[String]) -> bool {
    let mut rest = lines.iter();
    messages
        .iter()
        .all(|m| rest.by_ref().any(|l| l.contains(m.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_openwhisk_log_lines() {
        let line = format!(
            "{:<30} stderr: hello  world",
            whirl_model::time::log_timestamp(SystemTime::now())
        );
        let p = parse(&line);
        assert_eq!((p.stream, p.message), (LogStream::Stderr, "hello  world"));
        assert!(!is_log_time("2018-03-05T02:10:38.196689Z"));
        assert!(in_order(
            &["x a".into(), "y b".into(), "z c".into()],
            &["a".into(), "c".into()]
        ));
        assert!(!in_order(
            &["x a".into(), "y b".into()],
            &["b".into(), "a".into()]
        ));
    }
}
