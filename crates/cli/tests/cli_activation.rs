//! End-to-end tests of `whirl activation` with the real binary against a running platform: list
//! (table, filters, --json), get (--last, --summary, a field, logs only), logs (--strip), result,
//! poll (streams new activations and their logs as they arrive; bounded by --exit), and the
//! error paths (missing or malformed activation id, unreachable host).

mod cli_support;
mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_support::{dead_port, User};
use common::Platform;
use serde_json::{json, Value};

const PY: &str = "def main(a):\n    print('hello log', a.get('name', 'none'))\n    return {'hi': a.get('name', 'none')}\n";

fn invoke_id(u: &User, action: &str, name: &str) -> String {
    let act = u.json(&["action", "invoke", action, "-b", "-p", "name", name]);
    act["activationId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_logs_result() {
    let p = Platform::start("").await;
    let u = User::guest(&p);
    let f = u.file("a.py", PY);
    u.ok(&["action", "create", "hello", &f]);
    u.ok(&["action", "create", "other", &f]);
    let first = invoke_id(&u, "hello", "Ada");
    let _other = invoke_id(&u, "other", "Bob");
    let last = invoke_id(&u, "hello", "Cy");

    // The table: newest first, one line per activation.
    let out = u.ok(&["activation", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Datetime")
            && lines[0].contains("Activation ID")
            && lines[0].ends_with("Entity"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[1].contains(&last) && lines[1].contains("python:3"),
        "{out}"
    );
    assert!(
        lines[1].contains("warm") && lines[1].contains("success"),
        "{out}"
    );
    assert!(lines[1].ends_with("guest/hello:0.0.1"), "{out}");
    assert!(
        lines[3].contains(&first) && lines[3].contains("cold"),
        "{out}"
    );

    // Filters and JSON.
    assert_eq!(
        u.json(&["activation", "list", "/guest"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        u.json(&["activation", "list", "/guest/other"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let v = u.json(&["activation", "list", "hello"]);
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![last.as_str(), first.as_str()]);
    assert_eq!(
        u.json(&["activation", "list", "--limit", "1", "--skip", "1"])[0]["name"],
        "other"
    );
    let full = u.json(&["activation", "list", "hello", "--full", "--limit", "1"]);
    assert_eq!(full[0]["response"]["result"], json!({"hi": "Cy"}));
    let since = full[0]["start"].as_i64().unwrap();
    assert_eq!(
        u.json(&["activation", "list", "--since", &since.to_string()])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        u.json(&["activation", "list", "--upto", &(since - 1).to_string()])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = u.ok(&["activation", "list", "--full", "--limit", "1"]);
    assert!(out.lines().next().unwrap().ends_with("Result"), "{out}");
    assert!(out.contains(r#"{"hi":"Cy"}"#), "{out}");

    // get: ok line + JSON; --json; --last; a field; --summary; logs only.
    let out = u.ok(&["activation", "get", &first]);
    assert!(
        out.starts_with(&format!("ok: got activation {first}\n{{")),
        "{out}"
    );
    let a = u.json(&["activation", "get", &first]);
    assert_eq!(a["response"]["result"], json!({"hi": "Ada"}));
    assert_eq!(
        u.json(&["activation", "get", "--last"])["activationId"],
        last.as_str()
    );
    assert_eq!(
        u.ok(&[
            "activation",
            "get",
            "--last",
            "--field",
            "response.result.hi"
        ]),
        "\"Cy\"\n"
    );
    let s = u.ok(&["activation", "get", &first, "--summary"]);
    assert!(
        s.starts_with(&format!("activation {first}  guest/hello:0.0.1  success")),
        "{s}"
    );
    assert!(
        s.contains("(cold start)") && s.contains(r#"result: {"hi":"Ada"}"#),
        "{s}"
    );
    assert_eq!(
        u.ok(&["activation", "get", &first, "-g"]),
        "hello log Ada\n"
    );

    // logs: with time stamps and stream, or stripped.
    let out = u.ok(&["activation", "logs", &first]);
    assert!(out.trim_end().ends_with("stdout: hello log Ada"), "{out}");
    assert_eq!(
        u.ok(&["activation", "logs", "--last", "--strip"]),
        "hello log Cy\n"
    );
    assert_eq!(
        u.json(&["activation", "logs", &first])["logs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // result: the result; --json the whole result document.
    let r: Value = serde_json::from_str(&u.ok(&["activation", "result", &first])).unwrap();
    assert_eq!(r, json!({"hi": "Ada"}));
    let r = u.json(&["activation", "result", "--last"]);
    assert_eq!(
        (r["success"].clone(), r["status"].clone()),
        (json!(true), json!("success"))
    );

    // Errors: a missing activation is a 404, a malformed id a 400, no id a usage error.
    let missing = "0123456789abcdef0123456789abcdef";
    u.fails(
        &["activation", "get", missing],
        148,
        &format!("Unable to get activation '{missing}'"),
    );
    u.fails(&["activation", "logs", missing], 148, "HTTP 404");
    u.fails(&["activation", "result", missing], 148, "HTTP 404");
    u.fails(&["activation", "get", "xyz"], 144, "HTTP 400");
    assert_eq!(u.run(&["activation", "get"]).code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_streams_new_activations_with_their_logs() {
    let p = Platform::start("").await;
    let u = User::guest(&p);
    let f = u.file("a.py", PY);
    u.ok(&["action", "create", "hello", &f]);
    u.ok(&["action", "create", "other", &f]);
    let before = invoke_id(&u, "hello", "Early");

    // A long poll: each activation shows up while the poll is still running.
    let mut child = u
        .command(&[
            "activation",
            "poll",
            "hello",
            "--exit",
            "60",
            "--interval",
            "200",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    assert_eq!(header, "Polling for activations of hello (Ctrl-C stops).");
    let mut seen = Vec::new();
    for who in ["One", "Two"] {
        let _ = invoke_id(&u, "other", who); // filtered out
        let id = invoke_id(&u, "hello", who);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(
                Instant::now() < deadline,
                "poll did not show {id}: {seen:?}"
            );
            let line = lines.next().unwrap().unwrap();
            seen.push(line.clone());
            if line.contains(&format!("hello log {who}")) {
                break;
            }
        }
        assert!(
            seen.iter()
                .any(|l| l.starts_with(&format!("Activation: hello ({id}) success"))),
            "{seen:?}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let all = seen.join("\n");
    assert!(
        !all.contains(&before),
        "older activations are not shown: {all}"
    );
    assert!(!all.contains("Activation: other"), "{all}");
    assert_eq!(
        all.matches("Activation: ").count(),
        2,
        "each activation once: {all}"
    );

    // --exit bounds it; --since-seconds replays recent ones; --json prints one record a line.
    let t = Instant::now();
    let r = u.run(&[
        "activation",
        "poll",
        "--exit",
        "2",
        "--since-seconds",
        "120",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let records: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 5, "{r:?}");
    assert_eq!(records[0]["activationId"], before.as_str(), "oldest first");
    assert!(r.stderr.is_empty(), "no spinner without a terminal: {r:?}");

    // An unreachable host fails at once.
    let d = User::bare();
    std::fs::write(
        &d.props,
        format!("APIHOST=http://127.0.0.1:{}\nAUTH=a:b\n", dead_port()),
    )
    .unwrap();
    d.fails(&["activation", "poll", "--exit", "5"], 3, "cannot reach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinner_shows_on_a_terminal_only() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` (to run under a pseudo-terminal) is not installed");
        return;
    }
    let p = Platform::start("").await;
    let u = User::guest(&p);
    let f = u.file(
        "slow.py",
        "import time\ndef main(a):\n    time.sleep(1.5)\n    return {'slept': True}\n",
    );
    u.ok(&["action", "create", "slow", &f]);

    // Not a terminal: stdout has the result, stderr nothing.
    let r = u.run(&["action", "invoke", "slow", "-r"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
    assert_eq!(r.json(), json!({"slept": true}));

    // Under a pseudo-terminal: a progress line while waiting, erased before the result.
    let cmd = format!("{} action invoke slow -r", env!("CARGO_BIN_EXE_whirl"));
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("HOME", u.home.path())
        .env("WSK_CONFIG_FILE", &u.props)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("waiting for slow"), "{text}");
    assert!(text.contains("\"slept\": true"), "{text}");

    // A poll shows it while nothing new arrives.
    let cmd = format!("{} activation poll --exit 2", env!("CARGO_BIN_EXE_whirl"));
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("HOME", u.home.path())
        .env("WSK_CONFIG_FILE", &u.props)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("waiting for activations (1s)"), "{text}");
}
