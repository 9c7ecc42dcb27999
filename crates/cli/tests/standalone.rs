//! End-to-end tests of `whirl standalone`: the real binary, real python3 and node, real sandboxed
//! processes, the embedded SQLite store. Each test starts its own platform on a free port.

mod common;

use std::time::Duration;

use common::{annotation, zip_b64, Platform};
use reqwest::Method;
use serde_json::{json, Value};

const PY_HELLO: &str = r#"
import sys
def main(args):
    name = args.get("name", "stranger")
    print("hello from stdout", name)
    print("hello from stderr", file=sys.stderr)
    return {"greeting": "Hello " + name}
"#;

const JS_HELLO: &str = r#"
function main(params) {
  console.log("hello from node", params.name);
  console.error("node stderr");
  return { greeting: "Hello " + (params.name || "stranger"), env: process.env.__OW_ACTION_NAME };
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_invoke_and_read_back() {
    let p = Platform::start("").await;

    // Python: create, invoke blocking with the full record.
    let created = p
        .put_action(
            "hello",
            "python:default",
            PY_HELLO,
            json!({"parameters": [{"key":"name","value":"default"}]}),
        )
        .await;
    assert_eq!(created["version"], "0.0.1");
    assert_eq!(created["exec"]["kind"], "python:3");
    assert_eq!(annotation(&created, "exec").unwrap(), "python:3");

    let (st, act) = p.invoke("hello", json!({"name": "Ada"})).await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(act["response"]["status"], "success");
    assert_eq!(act["response"]["success"], true);
    assert_eq!(act["response"]["result"], json!({"greeting": "Hello Ada"}));
    assert_eq!(act["name"], "hello");
    assert_eq!(act["namespace"], "guest");
    assert_eq!(annotation(&act, "path").unwrap(), "guest/hello");
    assert_eq!(annotation(&act, "kind").unwrap(), "python:3");
    let logs: Vec<String> = serde_json::from_value(act["logs"].clone()).unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains("stdout: hello from stdout Ada")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("stderr: hello from stderr")),
        "{logs:?}"
    );
    assert!(
        logs.iter().all(|l| !l.contains("XXX_THE_END")),
        "sentinels must be stripped: {logs:?}"
    );
    let id = act["activationId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);

    // Default parameter applies.
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/hello?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"greeting": "Hello default"})));

    // Non-blocking: 202 with an id, and the record appears.
    let resp = p
        .http
        .post(p.api("/actions/hello"))
        .basic_auth(common::GUEST.0, Some(common::GUEST.1))
        .json(&json!({"name": "Bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let header = resp
        .headers()
        .get("x-openwhisk-activation-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["activationId"], header.as_str());
    let rec = p.wait_activation(&header).await;
    assert_eq!(rec["response"]["result"]["greeting"], "Hello Bob");

    // Activation get, logs, result, list.
    let (st, got) = p.get(&format!("/activations/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(got["activationId"], id.as_str());
    let (st, logs) = p.get(&format!("/activations/{id}/logs")).await;
    assert_eq!(st, 200);
    assert!(logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("hello from stdout Ada")));
    let (st, result) = p.get(&format!("/activations/{id}/result")).await;
    assert_eq!(st, 200);
    assert_eq!(result["result"], json!({"greeting": "Hello Ada"}));
    assert_eq!(result["success"], true);
    assert_eq!(result["status"], "success");
    let (st, list) = p.get("/activations?name=hello&limit=2").await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, count) = p.get("/activations?name=hello&count=true").await;
    assert!(count["activations"].as_u64().unwrap() >= 3, "{count}");
    let (st, _) = p.get("/activations?count=true&docs=true").await;
    assert_eq!(st, 400);
    let (st, docs) = p.get("/activations?docs=true&limit=1").await;
    assert_eq!(st, 200);
    assert!(docs[0]["response"]["result"].is_object(), "{docs}");
    let (st, _) = p.get(&format!("/activations/{}", "0".repeat(32))).await;
    assert_eq!(st, 404);

    // Node.js, and the __OW_ environment.
    p.put_action("hi", "nodejs:20", JS_HELLO, json!({})).await;
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/hi?blocking=true&result=true",
            Some(json!({"name": "Grace"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(res, json!({"greeting": "Hello Grace", "env": "/guest/hi"}));

    // Update bumps the version; ?code=false drops the code; list shows both.
    let updated = p.put_action("hello", "python:3", PY_HELLO, json!({})).await;
    assert_eq!(updated["version"], "0.0.2");
    let (st, meta) = p.get("/actions/hello?code=false").await;
    assert_eq!(st, 200);
    assert!(
        meta["exec"].get("code").is_none() || meta["exec"]["code"] == "",
        "{meta}"
    );
    let (st, list) = p.get("/actions").await;
    assert_eq!(st, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"hello") && names.contains(&"hi"),
        "{names:?}"
    );

    // Overwrite refused without ?overwrite=true.
    let (st, err) = p
        .call(
            Method::PUT,
            "/actions/hello",
            Some(json!({"exec": {"kind": "python:3", "code": PY_HELLO}})),
        )
        .await;
    assert_eq!(st, 409, "{err}");
    assert!(err["code"].is_string());

    // Delete.
    let (st, _) = p.call(Method::DELETE, "/actions/hi", None).await;
    assert_eq!(st, 200);
    let (st, err) = p.get("/actions/hi").await;
    assert_eq!(st, 404);
    assert_eq!(err["error"], "The requested resource does not exist.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_class_is_recorded() {
    let p = Platform::start("").await;
    // Application error: returned {error}.
    p.put_action(
        "apperr",
        "python:3",
        "def main(a):\n    return {'error': 'nope'}\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("apperr", json!({})).await;
    assert_eq!(st, 502, "{act}");
    assert_eq!(act["response"]["status"], "application error");
    assert_eq!(act["response"]["result"], json!({"error": "nope"}));

    // Developer error: an exception.
    p.put_action(
        "boom",
        "nodejs:20",
        "function main() { throw new Error('kaboom'); }",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("boom", json!({})).await;
    assert_eq!(st, 502, "{act}");
    assert_eq!(act["response"]["status"], "action developer error");

    // Not a dictionary.
    p.put_action(
        "scalar",
        "python:3",
        "def main(a):\n    return 42\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("scalar", json!({})).await;
    assert_eq!(st, 502);
    assert_eq!(act["response"]["status"], "action developer error");
    assert_eq!(
        act["response"]["result"]["error"],
        "The action did not return a dictionary or array."
    );

    // Timeout: OpenWhisk's message, and the container is not reused.
    p.put_action(
        "slow",
        "python:3",
        "import time\ndef main(a):\n    time.sleep(a.get('s', 5))\n    return {'slept': True}\n",
        json!({"limits": {"timeout": 500}}),
    )
    .await;
    let (st, act) = p.invoke("slow", json!({})).await;
    assert_eq!(st, 502, "{act}");
    assert_eq!(act["response"]["status"], "action developer error");
    assert_eq!(
        act["response"]["result"]["error"],
        "The action exceeded its time limits of 500 milliseconds."
    );
    assert_eq!(annotation(&act, "timeout").unwrap(), true);
    let (st, act) = p.invoke("slow", json!({"s": 0})).await;
    assert_eq!(st, 200, "a timed-out container must be replaced: {act}");
    assert!(
        annotation(&act, "initTime").is_some(),
        "fresh container expected: {act}"
    );

    // Init failure: syntax error.
    p.put_action(
        "broken",
        "python:3",
        "def main(a)\n    return {}\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("broken", json!({})).await;
    assert_eq!(st, 502, "{act}");
    assert_eq!(act["response"]["status"], "action developer error");

    // Crash: the process exits mid-run.
    p.put_action(
        "crash",
        "python:3",
        "import os\ndef main(a):\n    os._exit(3)\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("crash", json!({})).await;
    assert_eq!(st, 502, "{act}");
    assert_eq!(act["response"]["status"], "action developer error");
    let (st, act) = p.invoke("apperr", json!({})).await;
    assert_eq!(st, 502);
    assert_eq!(
        act["response"]["status"], "application error",
        "platform still healthy after a crash"
    );

    // Past the wait: 202 with the id; the activation completes and is stored.
    let (st, body) = p
        .call(
            Method::POST,
            "/actions/slow?blocking=true&timeout=200",
            Some(json!({"s": 0.3})),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let id = body["activationId"].as_str().unwrap();
    let rec = p.wait_activation(id).await;
    assert_eq!(rec["response"]["result"], json!({"slept": true}));
    let (st, err) = p
        .call(
            Method::POST,
            "/actions/slow?blocking=true&timeout=70000",
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        err["error"],
        "Timeout must be number of milliseconds up to 60000."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_authentication() {
    let p =
        Platform::start("[controller.limits]\nmax_exec_bytes = 2000\nmax_parameter_bytes = 500\n")
            .await;
    let ok_code = "def main(a):\n    return a\n";

    // Authentication and authorization.
    let r = p.http.get(p.api("/actions")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (st, _) = p
        .call_as(
            ("23bc46b1-71f6-4ed5-8c54-816aa4f8c502", "wrong"),
            Method::GET,
            "/actions",
            None,
        )
        .await;
    assert_eq!(st, 401);
    let (st, err) = p
        .call(
            Method::GET,
            &p.url("/api/v1/namespaces/whisk.system/actions"),
            None,
        )
        .await;
    assert_eq!(st, 403, "{err}");
    assert_eq!(
        err["error"],
        "The supplied authentication is not authorized to access this resource."
    );
    let (st, ns) = p
        .call(Method::GET, &p.url("/api/v1/namespaces"), None)
        .await;
    assert_eq!((st, ns), (200, json!(["guest"])));

    // Malformed JSON.
    let r = p
        .http
        .put(p.api("/actions/x"))
        .basic_auth(common::GUEST.0, Some(common::GUEST.1))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("malformed"),
        "{body}"
    );

    let cases = [
        (
            json!({"exec": {"kind": "cobol:1", "code": ok_code}}),
            400,
            "cobol",
        ),
        (
            json!({"exec": {"kind": "python:3", "code": ok_code}, "limits": {"memory": 64}}),
            400,
            "memory",
        ),
        (
            json!({"exec": {"kind": "python:3", "code": ok_code}, "limits": {"timeout": 10}}),
            400,
            "duration",
        ),
        (
            json!({"exec": {"kind": "python:3", "code": ok_code}, "limits": {"logs": 11}}),
            400,
            "log",
        ),
        (
            json!({"exec": {"kind": "python:3", "code": ok_code}, "limits": {"concurrency": 5}}),
            400,
            "concurrency",
        ),
        (json!({"exec": {"kind": "python:3"}}), 400, "code"),
        (
            json!({"exec": {"kind": "python:3", "code": "#".repeat(3000)}}),
            413,
            "",
        ),
        (
            json!({"exec": {"kind": "python:3", "code": ok_code}, "parameters": [{"key": "p", "value": "v".repeat(600)}]}),
            413,
            "",
        ),
    ];
    for (body, status, needle) in cases {
        let (st, err) = p
            .call(Method::PUT, "/actions/bad", Some(body.clone()))
            .await;
        assert_eq!(st, status, "{body} → {err}");
        assert!(
            err["error"].as_str().unwrap().contains(needle),
            "{err} should mention {needle}"
        );
        assert!(err["code"].is_string(), "{err}");
        let (st, _) = p.get("/actions/bad").await;
        assert_eq!(st, 404, "nothing may be stored after a rejected PUT");
    }
    let (st, _) = p
        .call(
            Method::PUT,
            "/actions/bad%20name%20",
            Some(json!({"exec": {"kind": "python:3", "code": ok_code}})),
        )
        .await;
    assert_eq!(st, 400);

    // Invoke input.
    p.put_action("echo", "python:3", ok_code, json!({})).await;
    let (st, _) = p
        .call(
            Method::POST,
            "/actions/echo?blocking=true",
            Some(json!([1, 2])),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = p
        .call(
            Method::POST,
            "/actions/missing?blocking=true",
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 404);
    // The invoke payload limit (1 MB) is not the entity parameter limit.
    let (st, _) = p
        .call(
            Method::POST,
            "/actions/echo?blocking=true",
            Some(json!({"p": "x".repeat(600)})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, err) = p
        .call(
            Method::POST,
            "/actions/echo?blocking=true",
            Some(json!({"p": "x".repeat(1_100_000)})),
        )
        .await;
    assert_eq!(st, 413, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_and_native_actions() {
    let p = Platform::start("").await;
    // Python zip with __main__.py importing a sibling module.
    let py = zip_b64(&[
        (
            "__main__.py",
            b"from helper import shout\ndef main(a):\n    return {'v': shout(a.get('w', 'x'))}\n",
            0o644,
        ),
        (
            "helper.py",
            b"def shout(s):\n    return s.upper() + '!'\n",
            0o644,
        ),
    ]);
    p.put_action("pyzip", "python:3", &py, json!({})).await;
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/pyzip?blocking=true&result=true",
            Some(json!({"w": "hey"})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"v": "HEY!"})));

    // Node zip with package.json main and a custom entry point.
    let js = zip_b64(&[
        (
            "package.json",
            br#"{"name":"a","main":"lib/entry.js"}"#,
            0o644,
        ),
        (
            "lib/entry.js",
            b"const u = require('./util');\nexports.handler = (p) => ({ n: u.twice(p.n) });\n",
            0o644,
        ),
        ("lib/util.js", b"exports.twice = (n) => n * 2;\n", 0o644),
    ]);
    p.put_action(
        "jszip",
        "nodejs:20",
        &js,
        json!({"exec": {"kind": "nodejs:20", "code": js, "main": "handler"}}),
    )
    .await;
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/jszip?blocking=true&result=true",
            Some(json!({"n": 21})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"n": 42})));

    // Native: a zip holding an executable named exec, speaking the action loop.
    let exec = b"#!/bin/sh\nwhile read line; do\n  echo \"native log line\"\n  echo '{\"native\": true}' >&3\ndone\n";
    let native = zip_b64(&[("exec", exec, 0o755)]);
    p.put_action("nat", "native", &native, json!({})).await;
    let (st, act) = p.invoke("nat", json!({})).await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(act["response"]["result"], json!({"native": true}));
    assert!(act["logs"].to_string().contains("native log line"), "{act}");
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/nat?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"native": true})));
}

/// Returns how long the action's process has been alive, and a per-container counter.
const PY_AGE: &str = r#"
import os
calls = 0
def main(a):
    global calls
    calls += 1
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19]) / hz
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return {"age": up - start, "calls": calls}
"#;

const JS_TICKER: &str = r#"
let ticks = 0;
setInterval(() => { ticks++; }, 10);
function main() { return { ticks }; }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_reuse_prewarm_and_pause() {
    let p = Platform::start("[invoker]\npause_grace_ms = 300\nidle_timeout_ms = 600000\n").await;
    // Wait until the python stem cell's runtime listens, then a while longer: the process that
    // serves the first invoke must predate the request by more than a cold start could.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = std::fs::read_dir(p.data_dir.join("containers"))
            .ok()
            .is_some_and(|dirs| {
                dirs.flatten().any(|d| {
                    d.file_name().to_string_lossy().contains("prewarm_python")
                        && d.path().join("runtime.sock").exists()
                })
            });
        if ready {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the python stem cell never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.put_action("age", "python:3", PY_AGE, json!({})).await;
    let (st, first) = p.invoke("age", json!({})).await;
    assert_eq!(st, 200, "{first}");
    assert!(
        annotation(&first, "initTime").is_some(),
        "first run initializes: {first}"
    );
    let age = first["response"]["result"]["age"].as_f64().unwrap();
    assert!(
        age > 1.0,
        "a prewarmed python process was started before the invoke (age {age}s)"
    );

    // Warm reuse: same container, no init.
    let (st, second) = p.invoke("age", json!({})).await;
    assert_eq!(st, 200);
    assert!(
        annotation(&second, "initTime").is_none(),
        "warm run must not initialize: {second}"
    );
    assert_eq!(second["response"]["result"]["calls"], 2);

    // A different memory limit cannot use the 256 MB stem cell: a cold start, with a young process.
    p.put_action(
        "age128",
        "python:3",
        PY_AGE,
        json!({"limits": {"memory": 128}}),
    )
    .await;
    let (_, cold) = p.invoke("age128", json!({})).await;
    let age = cold["response"]["result"]["age"].as_f64().unwrap();
    assert!(
        age < 1.0,
        "cold start expected a fresh process (age {age}s)"
    );

    // Pause: an idle container stops running after the grace period, and resumes on use.
    p.put_action("ticker", "nodejs:20", JS_TICKER, json!({}))
        .await;
    let (_, a) = p
        .call(
            Method::POST,
            "/actions/ticker?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (st, b) = p
        .call(
            Method::POST,
            "/actions/ticker?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200, "resumed container answers: {b}");
    let ran = b["ticks"].as_u64().unwrap() - a["ticks"].as_u64().unwrap();
    // Unpaused it would tick ~200 times in 2 s; paused after ~0.3-0.8 s it ticks far fewer.
    assert!(
        ran < 120,
        "container kept running while idle: {ran} ticks in 2 s"
    );
    assert!(ran > 0, "container never ran between calls");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, c) = p
        .call(
            Method::POST,
            "/actions/ticker?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert!(
        c["ticks"].as_u64().unwrap() > b["ticks"].as_u64().unwrap(),
        "resumed timers run again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_actions_and_activations() {
    let mut p = Platform::start("").await;
    p.put_action(
        "keep",
        "python:3",
        "def main(a):\n    return {'kept': True}\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("keep", json!({})).await;
    assert_eq!(st, 200);
    let id = act["activationId"].as_str().unwrap().to_string();
    let status = p.stop().await;
    assert!(
        status.success(),
        "clean shutdown: {status}; log:\n{}",
        p.log_text()
    );
    // No sandboxed process outlives the platform.
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", "--sandbox"])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&leftover.stdout).to_string();
    assert!(
        !pids.lines().any(
            |pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .contains(p.data_dir.to_str().unwrap())
        ),
        "container processes left behind: {pids}"
    );
    p.spawn().await;
    let (st, got) = p.get("/actions/keep").await;
    assert_eq!(st, 200, "{got}");
    let (st, rec) = p.get(&format!("/activations/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(rec["response"]["result"], json!({"kept": true}));
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/keep?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"kept": true})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxed_actions_cannot_see_the_platform() {
    let p = Platform::start("").await;
    let code = r#"
import os
def main(a):
    out = {"uid": os.getuid(), "pid": os.getpid()}
    try:
        with open(a["db"], "rb") as f:
            out["db"] = len(f.read())
    except Exception as e:
        out["db_error"] = type(e).__name__
    try:
        out["listing"] = os.listdir(a["dir"])
    except Exception as e:
        out["dir_error"] = type(e).__name__
    out["procs"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    try:
        open("/usr/whirl-was-here", "w")
        out["wrote_usr"] = True
    except Exception as e:
        out["usr_error"] = type(e).__name__
    return out
"#;
    p.put_action("peek", "python:3", code, json!({})).await;
    let db = p.data_dir.join("whirl.db");
    assert!(
        db.exists(),
        "the platform keeps its database in the data dir"
    );
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/peek?blocking=true&result=true",
            Some(json!({"db": db, "dir": p.data_dir})),
        )
        .await;
    assert_eq!(st, 200, "{res}");
    assert!(
        res.get("db").is_none(),
        "action read the platform's database: {res}"
    );
    assert!(
        res.get("listing").is_none(),
        "action listed the data dir: {res}"
    );
    assert_ne!(res["uid"], 0, "actions must not run as root: {res}");
    assert!(
        res["procs"].as_array().unwrap().len() < 10,
        "action sees host processes: {res}"
    );
    assert!(
        res.get("wrote_usr").is_none(),
        "system dirs must be read-only: {res}"
    );
}
