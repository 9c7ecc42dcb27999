//! One end-to-end suite, run against each container factory: the same test bodies drive a real
//! `whirl standalone` whose `[container_factory]` is `process` (sandboxed processes) or `docker`
//! (real Docker containers of the runtime image `scripts/build-images` builds from this very
//! binary). Covered: invoke and logs in python and node, timeouts, memory exhaustion (OpenWhisk's
//! wording), crashes, pause and resume of idle containers, removal of what an invoker killed with
//! SIGKILL left behind when it restarts, blackbox actions from a locally built user image, and the
//! `file` log store. Docker-only: the out-of-band `syslog` store and the error when no Docker
//! daemon answers.
//!
//! The docker tests need dockerd (and the syslog test rsyslog), which `scripts/services` starts;
//! without them they fail, naming what is missing.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{annotation, Platform};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factory {
    Process,
    Docker,
}

/// Generates one `#[tokio::test]` per factory for each test body.
macro_rules! per_factory {
    ($($name:ident),* $(,)?) => {
        mod process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Factory::Process).await;
                }
            )*
        }
        mod docker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Factory::Docker).await;
                }
            )*
        }
    };
}

per_factory!(
    invoke_logs_and_error_classes,
    timeouts,
    memory_exhaustion,
    pause_and_resume,
    leftovers_after_sigkill_are_removed_at_restart,
    blackbox_actions,
    file_log_store,
);

/// Whirl's runtime image, built from the binary under test (once per test binary; cached by a
/// digest of its inputs across runs).
fn runtime_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let out = Command::new(common::repo_root().join("scripts/build-images"))
                .args(["--whirl", env!("CARGO_BIN_EXE_whirl")])
                .output()
                .expect("run scripts/build-images");
            assert!(
                out.status.success(),
                "scripts/build-images failed (is dockerd running? scripts/services starts it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .clone()
}

fn factory_section(f: Factory) -> String {
    match f {
        Factory::Process => "[container_factory]\ntype = \"process\"\n".to_string(),
        Factory::Docker => {
            let img = runtime_image();
            format!(
                "[container_factory]\ntype = \"docker\"\n\
                 images = {{ \"python:3\" = \"{img}\", \"nodejs:20\" = \"{img}\", \"native\" = \"{img}\" }}\n"
            )
        }
    }
}

/// A platform with factory `f`, an invoker id of its own (`invoker` holds extra `[invoker]`
/// keys) and `extra` config sections. Returns it with its invoker id.
async fn start(f: Factory, invoker: &str, extra: &str) -> (Platform, String) {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let id = format!(
        "t{}n{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let config = format!(
        "{}[invoker]\nid = \"{id}\"\n{invoker}\n{extra}",
        factory_section(f)
    );
    (Platform::start(&config).await, id)
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The containers platform `p` (invoker `id`) has: (name, state) — Docker's containers labelled
/// with the invoker, or the process factory's private directories.
fn containers(f: Factory, p: &Platform, id: &str) -> Vec<(String, String)> {
    match f {
        Factory::Docker => docker(&[
            "ps",
            "-a",
            "--filter",
            "label=whirl.invoker",
            "--format",
            "{{.Names}} {{.State}} {{.Label \"whirl.invoker\"}}",
        ])
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let (name, state, label) = (parts.next()?, parts.next()?, parts.next()?);
            label
                .starts_with(&format!("{id}-"))
                .then(|| (name.to_string(), state.to_string()))
        })
        .collect(),
        Factory::Process => std::fs::read_dir(p.data_dir.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .map(|n| (n, "present".to_string()))
            .collect(),
    }
}

fn error_of(act: &Value) -> &str {
    act["response"]["result"]["error"].as_str().unwrap_or("")
}

async fn invoke_logs_and_error_classes(f: Factory) {
    let (p, _) = start(f, "prewarm = false", "").await;
    p.put_action(
        "hello",
        "python:3",
        "import sys\ndef main(a):\n    print('hello', a.get('name'))\n    print('to stderr', file=sys.stderr)\n    return {'greeting': 'Hello ' + a.get('name', '?')}\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("hello", json!({"name": "Ada"})).await;
    assert_eq!(st, 200, "{act}\n{}", p.log_text());
    assert_eq!(act["response"]["result"], json!({"greeting": "Hello Ada"}));
    let logs: Vec<&str> = act["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(
        logs.iter().any(|l| l.ends_with(" stdout: hello Ada")),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l.ends_with(" stderr: to stderr")),
        "{logs:?}"
    );
    assert!(annotation(&act, "initTime").is_some());
    let (st, warm) = p.invoke("hello", json!({"name": "Bob"})).await;
    assert_eq!(st, 200);
    assert!(annotation(&warm, "initTime").is_none(), "warm: {warm}");
    let warm_id = warm["activationId"].as_str().unwrap();
    p.wait_activation(warm_id).await; // stored while the result went back
    let (_, logs) = p.get(&format!("/activations/{warm_id}/logs")).await;
    assert_eq!(logs["logs"].as_array().unwrap().len(), 2, "{logs}");

    p.put_action(
        "node",
        "nodejs:20",
        "function main(p) { console.log('node says', p.x); return {twice: p.x * 2}; }",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("node", json!({"x": 21})).await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(act["response"]["result"], json!({"twice": 42}));
    assert!(act["logs"][0]
        .as_str()
        .unwrap()
        .ends_with("stdout: node says 21"));

    // Application error: the container is kept.
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

    // A crash: the action's process exits mid-run; the next activation gets a fresh container.
    p.put_action(
        "crash",
        "python:3",
        "import os\ndef main(a):\n    if a.get('die'):\n        os._exit(3)\n    return {'alive': True}\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("crash", json!({"die": true})).await;
    assert_eq!(st, 502, "{act}");
    assert_eq!(act["response"]["status"], "action developer error", "{act}");
    assert!(
        error_of(&act)
            .starts_with("The action did not produce a valid response and exited unexpectedly."),
        "{act}"
    );
    let (st, act) = p.invoke("crash", json!({})).await;
    assert_eq!(st, 200, "{act}");
    assert!(
        annotation(&act, "initTime").is_some(),
        "a crashed container is replaced: {act}"
    );
    // An init failure.
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
}

async fn timeouts(f: Factory) {
    let (p, id) = start(f, "prewarm = false", "").await;
    p.put_action(
        "slow",
        "python:3",
        "import time\ndef main(a):\n    time.sleep(a.get('s', 10))\n    return {'slept': True}\n",
        json!({"limits": {"timeout": 1000}}),
    )
    .await;
    let t = Instant::now();
    let (st, act) = p.invoke("slow", json!({})).await;
    assert_eq!(st, 502, "{act}");
    assert!(t.elapsed() < Duration::from_secs(8), "ended at its limit");
    assert_eq!(act["response"]["status"], "action developer error");
    assert_eq!(
        error_of(&act),
        "The action exceeded its time limits of 1000 milliseconds."
    );
    assert_eq!(annotation(&act, "timeout").unwrap(), true);
    // The timed-out container is destroyed, not reused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !containers(f, &p, &id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the timed-out container is removed: {:?}",
            containers(f, &p, &id)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, act) = p.invoke("slow", json!({"s": 0})).await;
    assert_eq!(st, 200, "{act}");
    assert!(annotation(&act, "initTime").is_some());
}

async fn memory_exhaustion(f: Factory) {
    let (p, _) = start(f, "prewarm = false", "").await;
    p.put_action(
        "hog",
        "python:3",
        "def main(a):\n    blocks = []\n    for _ in range(64):\n        blocks.append(bytearray(16 << 20))\n    return {'survived': len(blocks)}\n",
        json!({"limits": {"memory": 128}}),
    )
    .await;
    let (st, act) = p.invoke("hog", json!({})).await;
    assert_eq!(st, 502, "{act}\n{}", p.log_text());
    assert_eq!(act["response"]["status"], "action developer error", "{act}");
    assert_eq!(
        error_of(&act),
        "The action exhausted its memory and was aborted."
    );
    // Within its memory the same action's kind runs fine afterwards.
    p.put_action(
        "modest",
        "python:3",
        "def main(a):\n    b = bytearray(32 << 20)\n    return {'mb': len(b) >> 20}\n",
        json!({"limits": {"memory": 128}}),
    )
    .await;
    let (st, act) = p.invoke("modest", json!({})).await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(act["response"]["result"], json!({"mb": 32}));
}

async fn pause_and_resume(f: Factory) {
    let (p, id) = start(
        f,
        "prewarm = false\npause_grace_ms = 300\nidle_timeout_ms = 600000",
        "",
    )
    .await;
    p.put_action(
        "counter",
        "nodejs:20",
        "let n = 0; function main() { n += 1; return {n}; }",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("counter", json!({})).await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(act["response"]["result"], json!({"n": 1}));
    // Past the grace period the idle container is suspended.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = containers(f, &p, &id);
        let paused = match f {
            Factory::Docker => now.iter().any(|(_, s)| s == "paused"),
            Factory::Process => frozen_cgroups(&id) > 0,
        };
        if paused {
            break;
        }
        assert!(Instant::now() < deadline, "never suspended: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The next activation resumes the same container: its state survived.
    let (st, act) = p.invoke("counter", json!({})).await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(act["response"]["result"], json!({"n": 2}), "same container");
    assert!(annotation(&act, "initTime").is_none(), "warm: {act}");
    if f == Factory::Docker {
        let states: Vec<String> = containers(f, &p, &id).into_iter().map(|c| c.1).collect();
        assert!(states.contains(&"running".to_string()), "{states:?}");
    }
}

/// Frozen cgroups of the process factory's containers of invoker `id`.
fn frozen_cgroups(id: &str) -> usize {
    fn walk(dir: &Path, id: &str, inside: bool, n: &mut usize) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = inside || name.starts_with(&format!("{id}-"));
            let read = |f: &str| std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
            if ours
                && (read("freezer.state").trim() == "FROZEN" || read("cgroup.freeze").trim() == "1")
            {
                *n += 1;
            }
            walk(&e.path(), id, ours, n);
        }
    }
    let mut n = 0;
    // cgroup v1's freezer, or v2 (alone, or beside v1 in a hybrid layout).
    for root in ["/sys/fs/cgroup/freezer", "/sys/fs/cgroup/unified"] {
        walk(Path::new(root), id, false, &mut n);
    }
    if n == 0 && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        walk(Path::new("/sys/fs/cgroup"), id, false, &mut n);
    }
    n
}

async fn leftovers_after_sigkill_are_removed_at_restart(f: Factory) {
    let (mut p, id) = start(f, "prewarm = false", "").await;
    p.put_action(
        "stay",
        "python:3",
        "def main(a):\n    return {'ok': True}\n",
        json!({}),
    )
    .await;
    let (st, act) = p.invoke("stay", json!({})).await;
    assert_eq!(st, 200, "{act}");
    let before = containers(f, &p, &id);
    assert_eq!(before.len(), 1, "one warm container: {before:?}");

    let mut child = p.child.take().unwrap();
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        containers(f, &p, &id),
        before,
        "what a killed invoker leaves behind is still there"
    );
    if f == Factory::Docker {
        assert_eq!(
            before[0].1, "running",
            "the docker container outlives the invoker"
        );
    }

    p.spawn().await;
    let after: BTreeSet<String> = containers(f, &p, &id).into_iter().map(|c| c.0).collect();
    assert!(
        !after.contains(&before[0].0),
        "the restarted invoker removed its predecessor's container: {after:?}"
    );
    let (st, act) = p.invoke("stay", json!({})).await;
    assert_eq!(st, 200, "{act}");
    assert!(annotation(&act, "initTime").is_some(), "a fresh container");
}

/// Builds a user image that is not Whirl's runtime: a small python HTTP server speaking
/// OpenWhisk's /init and /run on :8080 (as a blackbox image must), FROM the runtime image only
/// for its python.
fn user_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let base = runtime_image();
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("server.py"),
                r#"import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/init":
            out = {"ok": True}
        else:
            print("blackbox ran", flush=True)
            for stream in (sys.stdout, sys.stderr):
                print("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX", file=stream, flush=True)
            out = {"blackbox": True, "echo": body.get("value"), "activation": body.get("activation_id")}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"#,
            )
            .unwrap();
            std::fs::write(
                dir.path().join("Dockerfile"),
                format!(
                    "FROM {base}\nCOPY server.py /server.py\nENTRYPOINT [\"/usr/bin/python3\", \"/server.py\"]\n"
                ),
            )
            .unwrap();
            let tag = "whirl-test/blackbox:local";
            let out = Command::new("docker")
                .args(["build", "-q", "-t", tag])
                .arg(dir.path())
                .env("DOCKER_BUILDKIT", "0")
                .output()
                .expect("docker build");
            assert!(
                out.status.success(),
                "building the user image: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            tag.to_string()
        })
        .clone()
}

async fn blackbox_actions(f: Factory) {
    let image = match f {
        Factory::Docker => user_image(),
        Factory::Process => "whirl-test/blackbox:local".to_string(),
    };
    let (p, _) = start(f, "prewarm = false", "").await;
    let (st, v) = p
        .call(
            Method::PUT,
            "/actions/bb?overwrite=true",
            Some(json!({"exec": {"kind": "blackbox", "image": image}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, act) = p.invoke("bb", json!({"hi": 1})).await;
    match f {
        Factory::Docker => {
            assert_eq!(st, 200, "{act}\n{}", p.log_text());
            let result = &act["response"]["result"];
            assert_eq!(result["blackbox"], true, "{act}");
            assert_eq!(result["echo"], json!({"hi": 1}));
            assert_eq!(result["activation"], act["activationId"]);
            assert!(
                act["logs"][0]
                    .as_str()
                    .unwrap()
                    .ends_with("stdout: blackbox ran"),
                "{act}"
            );
            // An image that cannot be pulled is the developer's error, naming the image.
            let absent = "whirl-test/absent-image:1";
            let (st, v) = p
                .call(
                    Method::PUT,
                    "/actions/gone?overwrite=true",
                    Some(json!({"exec": {"kind": "blackbox", "image": absent}})),
                )
                .await;
            assert_eq!(st, 200, "{v}");
            let (st, act) = p.invoke("gone", json!({})).await;
            assert_eq!(st, 502, "{act}");
            assert_eq!(act["response"]["status"], "action developer error");
            assert_eq!(
                error_of(&act),
                format!("Failed to pull container image '{absent}'.")
            );
        }
        Factory::Process => {
            // The process factory runs no images: a clear developer error, no crash.
            assert_eq!(st, 502, "{act}");
            assert_eq!(act["response"]["status"], "action developer error");
            assert!(
                error_of(&act).contains("cannot run container images"),
                "{act}"
            );
        }
    }
}

async fn file_log_store(f: Factory) {
    let (p, _) = start(
        f,
        "prewarm = false",
        "[log_store]\ntype = \"file\"\nmax_file_bytes = 700\nmax_files = 2\n",
    )
    .await;
    p.put_action(
        "talk",
        "python:3",
        "import sys\ndef main(a):\n    print('line one', a['n'])\n    print('line two', a['n'], file=sys.stderr)\n    return {}\n",
        json!({}),
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..8 {
        let (st, act) = p.invoke("talk", json!({"n": n})).await;
        assert_eq!(st, 200, "{act}");
        // The record holds the logs as with the default store.
        assert_eq!(act["logs"].as_array().unwrap().len(), 2, "{act}");
        ids.push(act["activationId"].as_str().unwrap().to_string());
    }
    let dir = p.data_dir.join("logs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (files, lines) = loop {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        let lines: Vec<Value> = files
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).expect("JSON lines"))
                    .collect::<Vec<_>>()
            })
            .collect();
        if lines.iter().any(|l| l["activationId"] == ids[7].as_str()) || Instant::now() > deadline {
            break (files, lines);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Rotated: two files kept, the oldest lines gone, the newest there.
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        !lines.iter().any(|l| l["activationId"] == ids[0].as_str()),
        "the oldest file was removed: {lines:#?}"
    );
    let last: Vec<&Value> = lines
        .iter()
        .filter(|l| l["activationId"] == ids[7].as_str())
        .collect();
    assert_eq!(last.len(), 2, "{lines:#?}");
    let out = last.iter().find(|l| l["stream"] == "stdout").unwrap();
    assert_eq!(out["message"], "line one 7");
    assert_eq!(out["action"], "guest/talk");
    assert_eq!(out["namespace"], "guest");
    assert!(out["time"].as_str().unwrap().ends_with('Z'));
    let err = last.iter().find(|l| l["stream"] == "stderr").unwrap();
    assert_eq!(err["message"], "line two 7");
    for file in &files {
        assert!(std::fs::metadata(file).unwrap().len() <= 700);
    }
}

/// The out-of-band store: lines go from Docker's syslog driver to rsyslog; the invoker neither
/// reads them nor puts them in the record; GET .../logs reads them back from rsyslog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_log_store_out_of_band() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `eval \"$(scripts/services)\"` (it starts rsyslog)")
        })
    };
    let (addr, dir) = (var("WHIRL_TEST_SYSLOG_ADDR"), var("WHIRL_TEST_SYSLOG_DIR"));
    let (p, id) = start(
        Factory::Docker,
        "prewarm = false",
        &format!("[log_store]\ntype = \"syslog\"\naddress = \"{addr}\"\ndir = \"{dir}\"\n"),
    )
    .await;
    p.put_action(
        "talk",
        "python:3",
        "import sys\ndef main(a):\n    print('out of band', a['n'])\n    print('err too', a['n'], file=sys.stderr)\n    return {'n': a['n']}\n",
        json!({}),
    )
    .await;
    // Back to back, many within one millisecond of each other.
    let mut acts = Vec::new();
    for n in 0..8 {
        let (st, act) = p.invoke("talk", json!({"n": n})).await;
        assert_eq!(st, 200, "{act}\n{}", p.log_text());
        // The invoker collected nothing: the record has no logs, and names the container.
        assert_eq!(act["logs"], json!([]), "{act}");
        assert!(annotation(&act, "container").is_some(), "{act}");
        acts.push(act);
    }
    // The container logs through the syslog driver and nothing is attached to its output.
    let names: Vec<String> = containers(Factory::Docker, &p, &id)
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let inspected = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.LogConfig.Type}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}",
        &names[0],
    ]);
    assert_eq!(inspected.trim(), "syslog false false");
    assert!(Path::new(&dir).join(format!("{}.log", names[0])).exists());

    for (n, act) in acts.iter().enumerate() {
        let aid = act["activationId"].as_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let logs = loop {
            let (st, v) = p.get(&format!("/activations/{aid}/logs")).await;
            assert_eq!(st, 200, "{v}");
            let logs: Vec<String> = v["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            if logs.len() >= 2 || Instant::now() > deadline {
                break logs;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            logs.len(),
            2,
            "activation {n} ({}..{}): {logs:?}",
            act["start"],
            act["end"]
        );
        assert!(
            logs.iter()
                .any(|l| l.ends_with(&format!(" stdout: out of band {n}"))),
            "{logs:?}"
        );
        assert!(
            logs.iter()
                .any(|l| l.ends_with(&format!(" stderr: err too {n}"))),
            "{logs:?}"
        );
    }
}

/// A docker platform without a daemon refuses to start and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_docker_daemon_is_a_clear_error_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("whirl.toml");
    std::fs::write(
        &config,
        "[container_factory]\ntype = \"docker\"\nhost = \"unix:///nonexistent/docker.sock\"\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_whirl"))
            .arg("standalone")
            .arg("--port")
            .arg("0")
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("no Docker daemon answers at unix:///nonexistent/docker.sock"),
        "{text}"
    );
}
