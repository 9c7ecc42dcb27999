//! End-to-end tests: the real runtime binary on a unix socket, real python3, node and /bin/sh,
//! talked to over HTTP/1.1, with its stdout and stderr captured to check the sentinels.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";
const NOT_DICTIONARY: &str = "The action did not return a dictionary or array.";

struct Server {
    child: Child,
    socket: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

fn capture(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let sink = buf.clone();
    std::thread::spawn(move || {
        let mut stream = stream;
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buf
}

impl Server {
    fn start(launcher: &str) -> Server {
        Self::start_with(launcher, &[])
    }

    fn start_with(launcher: &str, env: &[(&str, &str)]) -> Server {
        let command = match launcher {
            "python" => Some("/usr/bin/python3"),
            "node" => Some("/usr/bin/node"),
            _ => None,
        };
        Self::spawn(launcher, env, command)
    }

    fn spawn(launcher: &str, env: &[(&str, &str)], command: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("runtime.sock");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_whirl-runtime-test"));
        cmd.arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--launcher")
            .arg(launcher)
            .arg("--work-dir")
            .arg(dir.path().join("work"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(command) = command {
            cmd.arg("--command").arg(command);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "runtime did not start listening");
            std::thread::sleep(Duration::from_millis(5));
        }
        Server {
            child,
            socket,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.post_raw(path, body.to_string().as_bytes());
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, value)
    }

    fn post_raw(&self, path: &str, body: &[u8]) -> (u16, String) {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let resp = String::from_utf8(resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").expect("HTTP response");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    fn init(&self, value: Value) -> (u16, Value) {
        self.post("/init", &json!({ "value": value }))
    }

    fn init_text(&self, code: &str) {
        let (status, body) =
            self.init(json!({ "name": "test", "main": "main", "code": code, "binary": false }));
        assert_eq!((status, body), (200, json!({"ok": true})));
    }

    fn run(&self, value: Value) -> (u16, Value) {
        self.post(
            "/run",
            &json!({
                "value": value,
                "namespace": "guest",
                "action_name": "/guest/test",
                "action_version": "0.0.1",
                "activation_id": "0123456789abcdef0123456789abcdef",
                "transaction_id": "tid-1",
                "deadline": "1700000000000",
                "api_key": "user:pass",
            }),
        )
    }

    /// Waits until both streams hold `n` sentinels; returns (stdout, stderr).
    fn wait_sentinels(&self, n: usize) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.stdout.lock().unwrap().clone();
            let err = self.stderr.lock().unwrap().clone();
            if out.matches(SENTINEL).count() >= n && err.matches(SENTINEL).count() >= n {
                assert_eq!(out.matches(SENTINEL).count(), n, "stdout: {out}");
                assert_eq!(err.matches(SENTINEL).count(), n, "stderr: {err}");
                return (out, err);
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} sentinels; stdout: {out}\nstderr: {err}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zip_b64(files: &[(&str, &str, u32)]) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, body, mode) in files {
            let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            w.start_file(*name, opts).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

fn assert_order(log: &str, first: &str, then: &str) {
    let a = log
        .find(first)
        .unwrap_or_else(|| panic!("'{first}' missing in {log}"));
    let b = log[a..]
        .find(then)
        .unwrap_or_else(|| panic!("'{then}' not after '{first}' in {log}"));
    assert!(b > 0);
}

// ---------------------------------------------------------------------------------------------
// Protocol states

#[test]
fn run_before_init_and_init_twice_are_refused() {
    let s = Server::start("python");
    assert_eq!(
        s.run(json!({})),
        (403, json!({"error": "System not initialized."}))
    );
    s.init_text("def main(args):\n    return args\n");
    let (status, body) = s.init(json!({"code": "def main(a): return a"}));
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "Cannot initialize the action more than once."})
        )
    );
    assert_eq!(s.run(json!({"a": 1})), (200, json!({"a": 1})));
    // Not a protocol route.
    let (status, _) = s.post_raw("/nope", b"{}");
    assert_eq!(status, 404);
}

#[test]
fn init_without_code_is_refused_and_can_be_retried() {
    let s = Server::start("node");
    let (status, body) = s.init(json!({"main": "main"}));
    assert_eq!(
        (status, body),
        (403, json!({"error": "Missing main/no code to execute."}))
    );
    s.init_text("function main(a) { return a }");
}

// ---------------------------------------------------------------------------------------------
// Python

#[test]
fn python_text_action_with_env_and_sentinels() {
    let s = Server::start("python");
    let (status, body) = s.init(json!({
        "name": "hello",
        "main": "main",
        "code": r#"
import os, sys
print("loaded")
def main(args):
    print("hello out " + args.get("n", ""))
    print("hello err", file=sys.stderr)
    keys = ["NAMESPACE", "ACTION_NAME", "ACTION_VERSION", "ACTIVATION_ID", "TRANSACTION_ID", "DEADLINE", "API_KEY"]
    return {"env": {k: os.environ.get("__OW_" + k) for k in keys}, "init": os.environ.get("FROM_INIT"), "json": os.environ.get("JSON_INIT")}
"#,
        "binary": false,
        "env": {"FROM_INIT": "yes", "JSON_INIT": {"a": 1}},
    }));
    assert_eq!((status, body), (200, json!({"ok": true})));
    let (status, body) = s.run(json!({"n": "1"}));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "env": {
                "NAMESPACE": "guest",
                "ACTION_NAME": "/guest/test",
                "ACTION_VERSION": "0.0.1",
                "ACTIVATION_ID": "0123456789abcdef0123456789abcdef",
                "TRANSACTION_ID": "tid-1",
                "DEADLINE": "1700000000000",
                "API_KEY": "user:pass",
            },
            "init": "yes",
            "json": "{\"a\":1}",
        })
    );
    let (out, err) = s.wait_sentinels(1);
    assert_order(&out, "loaded", "hello out 1");
    assert_order(&out, "hello out 1", SENTINEL);
    assert_order(&err, "hello err", SENTINEL);

    // A second activation without an api_key: the stale variable is gone.
    let (status, body) = s.post(
        "/run",
        &json!({"value": {"n": "2"}, "activation_id": "ffff"}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["env"]["ACTIVATION_ID"], "ffff");
    assert_eq!(body["env"]["API_KEY"], Value::Null);
    let (out, err) = s.wait_sentinels(2);
    assert_order(&out, "hello out 2", SENTINEL);
    assert!(out.trim_end().ends_with(SENTINEL));
    assert!(err.trim_end().ends_with(SENTINEL));
}

#[test]
fn python_zip_action_with_modules_and_virtualenv() {
    let s = Server::start("python");
    let code = zip_b64(&[
        ("__main__.py", "import helper, vendored\ndef handler(args):\n    return {'r': helper.twice(args['x']), 'v': vendored.NAME}\n", 0o644),
        ("helper.py", "def twice(x):\n    return 2 * x\n", 0o644),
        ("virtualenv/lib/python3.11/site-packages/vendored.py", "NAME = 'from-venv'\n", 0o644),
    ]);
    let (status, body) =
        s.init(json!({"name": "z", "main": "handler", "code": code, "binary": true}));
    assert_eq!((status, body), (200, json!({"ok": true})));
    assert_eq!(
        s.run(json!({"x": 21})),
        (200, json!({"r": 42, "v": "from-venv"}))
    );
}

#[test]
fn python_array_result_and_error_field_are_passed_through() {
    let s = Server::start("python");
    s.init_text(
        "def main(a):\n    return [1, 2] if a.get('list') else {'error': 'mine', 'extra': 1}\n",
    );
    assert_eq!(s.run(json!({"list": true})), (200, json!([1, 2])));
    assert_eq!(
        s.run(json!({})),
        (200, json!({"error": "mine", "extra": 1}))
    );
}

#[test]
fn python_exception_becomes_error_result() {
    let s = Server::start("python");
    s.init_text("def main(a):\n    raise ValueError('boom')\n");
    assert_eq!(s.run(json!({})), (200, json!({"error": "boom"})));
    let (_, err) = s.wait_sentinels(1);
    assert_order(&err, "ValueError: boom", SENTINEL);
}

#[test]
fn python_bad_results() {
    let s = Server::start("python");
    s.init_text("def main(a):\n    k = a['kind']\n    return {'s': 'str', 'n': None, 'i': 3, 'set': {'x': {1}}}[k]\n");
    for kind in ["s", "n", "i"] {
        assert_eq!(
            s.run(json!({"kind": kind})),
            (502, json!({"error": NOT_DICTIONARY})),
            "{kind}"
        );
    }
    let (status, body) = s.run(json!({"kind": "set"}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not JSON serializable"),
        "{body}"
    );
    // Still serving afterwards.
    s.wait_sentinels(4);
}

#[test]
fn python_init_failures() {
    let s = Server::start("python");
    let (status, body) = s.init(json!({"code": "def main(a)\n  return a\n"}));
    assert_eq!(status, 502);
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.starts_with("Initialization has failed due to: ") && msg.contains("SyntaxError"),
        "{msg}"
    );
    let (_, err) = s.wait_sentinels(1);
    assert_order(&err, "SyntaxError", SENTINEL);
    assert_eq!(
        s.run(json!({})),
        (403, json!({"error": "System not initialized."}))
    );

    let s = Server::start("python");
    let (status, body) = s.init(json!({"code": "def other(a): return a", "main": "main"}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("'main' is not a function"),
        "{body}"
    );

    let s = Server::start("python");
    let (status, body) = s.init(json!({"code": zip_b64(&[("x.py", "", 0o644)]), "binary": true}));
    assert_eq!(
        (status, body),
        (
            502,
            json!({"error": "Zip file does not include __main__.py"})
        )
    );

    let s = Server::start("python");
    let (status, body) = s.init(json!({"code": "UEsDBBQAAAAIAA==", "binary": true}));
    assert_eq!(status, 502);
    assert!(
        body["error"].as_str().unwrap().contains("uncompressing"),
        "{body}"
    );
}

#[test]
fn python_crash_is_reported_and_sticks() {
    let s = Server::start("python");
    s.init_text(
        "import os, sys\ndef main(a):\n    print('going down', flush=True)\n    os._exit(3)\n",
    );
    let (status, body) = s.run(json!({}));
    assert_eq!(status, 502);
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("exited with code 3"), "{msg}");
    assert_eq!(s.run(json!({})), (502, body));
    let (out, _) = s.wait_sentinels(2);
    assert_order(&out, "going down", SENTINEL);
}

#[test]
fn python_missing_interpreter_fails_init() {
    let s = Server::spawn("python", &[], Some("/nonexistent/python"));
    let (status, body) = s.init(json!({"code": "def main(a): return a"}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("could not be started"),
        "{body}"
    );
    s.wait_sentinels(1);
}

// ---------------------------------------------------------------------------------------------
// Node

#[test]
fn node_text_action_with_env_promise_and_sentinels() {
    let s = Server::start("node");
    let (status, body) = s.init(json!({
        "name": "hello",
        "main": "main",
        "code": r#"
console.log('loaded');
function main(params) {
    console.log('hello out ' + params.n);
    console.error('hello err');
    return new Promise(resolve => setTimeout(() => resolve({
        id: process.env.__OW_ACTIVATION_ID,
        ns: process.env.__OW_NAMESPACE,
        deadline: process.env.__OW_DEADLINE,
        init: process.env.FROM_INIT,
    }), 5));
}
"#,
        "binary": false,
        "env": {"FROM_INIT": "yes"},
    }));
    assert_eq!((status, body), (200, json!({"ok": true})));
    let (status, body) = s.run(json!({"n": 1}));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": "0123456789abcdef0123456789abcdef", "ns": "guest", "deadline": "1700000000000", "init": "yes"})
    );
    let (out, err) = s.wait_sentinels(1);
    assert_order(&out, "loaded", "hello out 1");
    assert_order(&out, "hello out 1", SENTINEL);
    assert_order(&err, "hello err", SENTINEL);
}

#[test]
fn node_exports_style_and_undefined_result() {
    let s = Server::start("node");
    let (status, _) = s.init(
        json!({"code": "exports.handler = (p) => p.x ? {x: p.x} : undefined;", "main": "handler"}),
    );
    assert_eq!(status, 200);
    assert_eq!(s.run(json!({"x": 5})), (200, json!({"x": 5})));
    assert_eq!(s.run(json!({})), (200, json!({})));
}

#[test]
fn node_errors() {
    let s = Server::start("node");
    s.init_text(
        r#"
async function main(p) {
    if (p.kind === 'throw') throw new Error('boom');
    if (p.kind === 'sync') { null.x; }
    return p.kind;
}
function wrapper(p) {
    if (p.kind === 'sync') throw new TypeError('sync boom');
    if (p.kind === 'reject') return Promise.reject('plain reason');
    if (p.kind === 'rejectnothing') return Promise.reject();
    if (p.kind === 'app') return {error: 'mine'};
    return main(p);
}
"#,
    );
    // `main` is async, so even its throw is a rejection: a result holding the serialized error.
    let (status, body) = s.run(json!({"kind": "throw"}));
    assert_eq!(status, 200);
    assert_eq!(body["error"]["message"], "boom");
    assert_eq!(body["error"]["name"], "Error");
    assert!(body["error"]["stack"].as_str().unwrap().contains("boom"));
    assert_eq!(
        s.run(json!({"kind": "str"})),
        (502, json!({"error": NOT_DICTIONARY}))
    );

    let s = Server::start("node");
    s.init(json!({"code": "function wrapper(p) { if (p.kind === 'sync') throw new TypeError('sync boom'); if (p.kind === 'reject') return Promise.reject('plain reason'); if (p.kind === 'rejectnothing') return Promise.reject(); if (p.kind === 'null') return null; return {error: 'mine'}; }", "main": "wrapper"}));
    assert_eq!(
        s.run(json!({"kind": "sync"})),
        (
            502,
            json!({"error": "An error has occurred: TypeError: sync boom"})
        )
    );
    assert_eq!(
        s.run(json!({"kind": "reject"})),
        (200, json!({"error": "plain reason"}))
    );
    assert_eq!(
        s.run(json!({"kind": "rejectnothing"})),
        (200, json!({"error": {}}))
    );
    assert_eq!(
        s.run(json!({"kind": "null"})),
        (502, json!({"error": NOT_DICTIONARY}))
    );
    assert_eq!(
        s.run(json!({"kind": "app"})),
        (200, json!({"error": "mine"}))
    );
    s.wait_sentinels(5);
}

#[test]
fn node_zip_actions() {
    let s = Server::start("node");
    let code = zip_b64(&[
        ("package.json", r#"{"name": "a", "main": "lib/entry.js"}"#, 0o644),
        ("lib/entry.js", "const h = require('./helper'); exports.main = (p) => ({r: h.twice(p.x), cwd: process.cwd()});", 0o644),
        ("lib/helper.js", "exports.twice = (x) => 2 * x;", 0o644),
    ]);
    let (status, body) = s.init(json!({"code": code, "binary": true, "main": "main"}));
    assert_eq!((status, body), (200, json!({"ok": true})));
    let (status, body) = s.run(json!({"x": 4}));
    assert_eq!(status, 200);
    assert_eq!(body["r"], 8);
    assert!(body["cwd"].as_str().unwrap().ends_with("/action"));

    let s = Server::start("node");
    let code = zip_b64(&[(
        "index.js",
        "module.exports.go = async (p) => ({ok: p.ok});",
        0o644,
    )]);
    assert_eq!(
        s.init(json!({"code": code, "binary": true, "main": "go"}))
            .0,
        200
    );
    assert_eq!(s.run(json!({"ok": 1})), (200, json!({"ok": 1})));

    // An ES module package.
    let s = Server::start("node");
    let code = zip_b64(&[
        (
            "package.json",
            r#"{"type": "module", "main": "index.js"}"#,
            0o644,
        ),
        (
            "index.js",
            "export function main(p) { return {esm: p.x}; }",
            0o644,
        ),
    ]);
    assert_eq!(s.init(json!({"code": code, "binary": true})).0, 200);
    assert_eq!(s.run(json!({"x": 3})), (200, json!({"esm": 3})));

    let s = Server::start("node");
    let code = zip_b64(&[("other.js", "", 0o644)]);
    let (status, body) = s.init(json!({"code": code, "binary": true}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("package.json or index.js"),
        "{body}"
    );
}

#[test]
fn node_init_failures() {
    let s = Server::start("node");
    let (status, body) = s.init(json!({"code": "function main( {"}));
    assert_eq!(status, 502);
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.starts_with("Initialization has failed due to: "),
        "{msg}"
    );
    assert!(
        msg.contains("index.js:1") && msg.contains("SyntaxError: Unexpected end of input"),
        "{msg}"
    );
    assert!(!msg.contains("whirl"), "{msg}");
    let (_, err) = s.wait_sentinels(1);
    assert_order(&err, "Error during initialization", SENTINEL);

    let s = Server::start("node");
    let (status, body) = s.init(json!({"code": "function other() {}", "main": "main"}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("'main' is not a function"),
        "{body}"
    );
}

#[test]
fn node_crash_is_reported() {
    let s = Server::start("node");
    s.init_text("function main(p) { console.log('bye'); process.exit(2); }");
    let (status, body) = s.run(json!({}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 2"),
        "{body}"
    );
    assert_eq!(s.run(json!({})).0, 502);
    let (out, _) = s.wait_sentinels(2);
    assert_order(&out, "bye", SENTINEL);
}

// ---------------------------------------------------------------------------------------------
// Native (OpenWhisk actionloop executables)

const ECHO_SCRIPT: &str = r#"#!/bin/sh
while read -r line; do
  echo "native out"
  echo "native err" >&2
  echo "{\"got\":$line,\"init\":\"$FROM_INIT\"}" >&3
done
"#;

#[test]
fn native_text_script() {
    let s = Server::start("native");
    let (status, body) =
        s.init(json!({"code": ECHO_SCRIPT, "binary": false, "env": {"FROM_INIT": "yes"}}));
    assert_eq!((status, body), (200, json!({"ok": true})));
    let (status, body) = s.run(json!({"a": 1}));
    assert_eq!(status, 200);
    assert_eq!(body["got"]["value"], json!({"a": 1}));
    assert_eq!(
        body["got"]["activation_id"],
        "0123456789abcdef0123456789abcdef"
    );
    assert_eq!(body["init"], "yes");
    // A multi-line request body still reaches the executable as one line.
    let (status, body) = s.post_raw("/run", b"{\n\"value\": {\"b\": 2}\n}");
    assert_eq!(status, 200, "{body}");
    let (out, err) = s.wait_sentinels(2);
    assert_order(&out, "native out", SENTINEL);
    assert_order(&err, "native err", SENTINEL);
}

#[test]
fn native_zip_and_raw_executable() {
    let s = Server::start("native");
    // No executable bit in the zip: the runtime sets it.
    let code = zip_b64(&[(
        "exec",
        "#!/bin/sh\nwhile read -r l; do echo '{\"zip\":true}' >&3; done\n",
        0o644,
    )]);
    assert_eq!(s.init(json!({"code": code, "binary": true})).0, 200);
    assert_eq!(s.run(json!({})), (200, json!({"zip": true})));

    let s = Server::start("native");
    let raw = base64::engine::general_purpose::STANDARD
        .encode("#!/bin/sh\nwhile read -r l; do echo '[\"raw\"]' >&3; done\n");
    assert_eq!(s.init(json!({"code": raw, "binary": true})).0, 200);
    assert_eq!(s.run(json!({})), (200, json!(["raw"])));

    let s = Server::start("native");
    let (status, body) = s.init(json!({"code": zip_b64(&[("main", "", 0o755)]), "binary": true}));
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().contains("'exec'"), "{body}");
    s.wait_sentinels(1);
}

#[test]
fn native_bad_result_and_crash() {
    let s = Server::start("native");
    let script =
        "#!/bin/sh\nread -r l; echo 'not json' >&3\nread -r l; echo '42' >&3\nread -r l; exit 7\n";
    s.init_text(script);
    assert_eq!(s.run(json!({})), (502, json!({"error": NOT_DICTIONARY})));
    assert_eq!(s.run(json!({})), (502, json!({"error": NOT_DICTIONARY})));
    let (status, body) = s.run(json!({}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 7"),
        "{body}"
    );
    let (status, _) = s.run(json!({}));
    assert_eq!(status, 502);
    s.wait_sentinels(4);
}

#[test]
fn native_wait_for_ack() {
    let s = Server::start_with("native", &[("OW_WAIT_FOR_ACK", "1")]);
    let script = "#!/bin/sh\necho '{\"ok\":true}' >&3\nwhile read -r l; do echo \"{\\\"ack\\\":\\\"$__OW_WAIT_FOR_ACK\\\"}\" >&3; done\n";
    s.init_text(script);
    assert_eq!(s.run(json!({})), (200, json!({"ack": "1"})));

    let s = Server::start_with("native", &[("OW_WAIT_FOR_ACK", "1")]);
    let (status, body) = s.init(json!({"code": "#!/bin/sh\nexit 1\n"}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did not initialize"),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

#[test]
fn sigterm_exits_cleanly_and_removes_the_socket() {
    let mut s = Server::start("python");
    s.init_text("def main(a): return a");
    assert_eq!(s.run(json!({"k": 1})), (200, json!({"k": 1})));
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "runtime did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    assert!(!Path::new(&s.socket).exists());
}

#[test]
fn keep_alive_connection_serves_many_activations() {
    let s = Server::start("python");
    s.init_text("def main(a): return {'i': a['i']}");
    let mut conn = UnixStream::connect(&s.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = vec![0u8; 4096];
    for i in 0..50 {
        let body = format!("{{\"value\":{{\"i\":{i}}}}}");
        write!(
            conn,
            "POST /run HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let expected = format!("{{\"i\":{i}}}");
        let mut got = String::new();
        while !got.ends_with(&expected) {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed");
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    }
    s.wait_sentinels(50);
}

// ---------------------------------------------------------------------------------------------
// Concurrency (limits.concurrency > 1): node runs activations at once and tags their output

const RS: char = '\u{1e}';
const US: char = '\u{1f}';

impl Server {
    fn run_as(&self, activation_id: &str, value: Value) -> (u16, Value) {
        self.post(
            "/run",
            &json!({
                "value": value,
                "namespace": "guest",
                "action_name": "/guest/test",
                "activation_id": activation_id,
                "transaction_id": format!("tid-{activation_id}"),
                "deadline": "1700000000000",
            }),
        )
    }
}

/// Splits output into (activation id or None, message) per line.
fn tagged_lines(text: &str) -> Vec<(Option<String>, String)> {
    text.lines()
        .map(
            |l| match l.strip_prefix(RS).and_then(|r| r.split_once(US)) {
                Some((id, msg)) => (Some(id.to_string()), msg.to_string()),
                None => (None, l.to_string()),
            },
        )
        .collect()
}

/// Waits until each of `ids` shows its tagged sentinel on both streams.
fn wait_tagged_sentinels(s: &Server, ids: &[String]) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = s.stdout.lock().unwrap().clone();
        let err = s.stderr.lock().unwrap().clone();
        let done = |text: &str| {
            ids.iter()
                .all(|id| text.contains(&format!("{RS}{id}{US}{SENTINEL}\n")))
        };
        if done(&out) && done(&err) {
            return (out, err);
        }
        assert!(
            Instant::now() < deadline,
            "tagged sentinels missing; stdout: {out:?}\nstderr: {err:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

const INTERLEAVING_ACTION: &str = r#"
console.log('loaded');
let inFlight = 0, peak = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main(p) {
  inFlight++; peak = Math.max(peak, inFlight);
  const me = process.env.__OW_ACTIVATION_ID;
  for (let i = 0; i < 5; i++) {
    console.log(`${me} out ${i}`);
    await sleep(5 + (p.n * 7) % 11);
    console.error(`${me} err ${i}`);
    process.stdout.write(`${me} part `);
    await sleep(1);
    process.stdout.write(`${i}\n`);
  }
  process.stderr.write(`${me} unterminated`);
  await sleep(30);
  inFlight--;
  return { n: p.n, me, tid: process.env.__OW_TRANSACTION_ID, peak };
}
"#;

#[test]
fn node_concurrent_activations_get_their_own_results_env_and_logs() {
    let s = Arc::new(Server::start("node"));
    let (status, body) = s.init(json!({
        "name": "test", "main": "main", "code": INTERLEAVING_ACTION, "binary": false,
        "concurrency": 8,
        "env": {"__OW_ACTIVATION_ID": "init0"},
    }));
    assert_eq!((status, body), (200, json!({"ok": true})));

    let ids: Vec<String> = (0..8).map(|n| format!("act{n:02}")).collect();
    let threads: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let (s, id) = (s.clone(), id.clone());
            std::thread::spawn(move || (id.clone(), s.run_as(&id, json!({ "n": n }))))
        })
        .collect();
    let mut peak = 0;
    for (n, t) in threads.into_iter().enumerate() {
        let (id, (status, body)) = t.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["n"], json!(n));
        assert_eq!(
            body["me"],
            json!(id),
            "each activation sees its own __OW_ACTIVATION_ID"
        );
        assert_eq!(body["tid"], json!(format!("tid-{id}")));
        peak = peak.max(body["peak"].as_u64().unwrap());
    }
    assert!(
        peak >= 4,
        "activations overlapped in one process (peak {peak})"
    );

    let mut all = ids.clone();
    all.push("init0".into());
    let (out, err) = wait_tagged_sentinels(&s, &ids);
    assert!(!out.contains(&format!("\n{SENTINEL}")) && !out.starts_with(SENTINEL));
    for (stream, text, kind) in [("stdout", &out, "out"), ("stderr", &err, "err")] {
        let lines = tagged_lines(text);
        // Interleaved: some activation's lines are not contiguous.
        let order: Vec<&Option<String>> = lines.iter().map(|(id, _)| id).collect();
        let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(
            switches > ids.len(),
            "{stream} output interleaves: {text:?}"
        );
        for (id, msg) in &lines {
            let id = id
                .as_ref()
                .unwrap_or_else(|| panic!("untagged {stream} line {msg:?}"));
            assert!(all.contains(id), "{id}");
            if id == "init0" {
                assert_eq!((stream, msg.as_str()), ("stdout", "loaded"));
            } else if msg != SENTINEL {
                assert!(
                    msg.starts_with(id.as_str()),
                    "{stream}: line {msg:?} tagged {id}"
                );
            }
        }
        for id in &ids {
            let mine: Vec<&str> = lines
                .iter()
                .filter(|(i, _)| i.as_ref() == Some(id))
                .map(|(_, m)| m.as_str())
                .collect();
            let mut expected: Vec<String> = Vec::new();
            for i in 0..5 {
                if kind == "out" {
                    expected.push(format!("{id} out {i}"));
                    expected.push(format!("{id} part {i}"));
                } else {
                    expected.push(format!("{id} err {i}"));
                }
            }
            if kind == "err" {
                expected.push(format!("{id} unterminated"));
            }
            expected.push(SENTINEL.to_string());
            assert_eq!(mine, expected, "{stream} of {id}");
        }
    }
}

#[test]
fn node_concurrent_output_outside_activations_is_untagged() {
    let s = Server::start("node");
    let (status, _) = s.init(json!({
        "code": "setInterval(() => {}, 1000); function main(p) { setTimeout(() => console.log('late'), 20); console.log('in'); return {} }",
        "concurrency": 2,
    }));
    assert_eq!(status, 200);
    assert_eq!(s.run_as("a1", json!({})), (200, json!({})));
    let (out, _) = wait_tagged_sentinels(&s, &["a1".to_string()]);
    assert_eq!(
        tagged_lines(&out)[..2],
        [
            (Some("a1".to_string()), "in".to_string()),
            (Some("a1".to_string()), SENTINEL.to_string())
        ]
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.stdout.lock().unwrap().contains("late") {
        assert!(Instant::now() < deadline, "late line");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = s.stdout.lock().unwrap().clone();
    assert_eq!(tagged_lines(&out)[2], (None, "late".to_string()), "{out:?}");
}

#[test]
fn node_concurrent_crash_fails_every_activation_in_flight() {
    let s = Arc::new(Server::start("node"));
    let (status, _) = s.init(json!({
        "code": "async function main(p) { if (p.crash) { await new Promise((r) => setTimeout(r, 100)); process.exit(3); } console.log('waiting'); return new Promise(() => {}); }",
        "concurrency": 4,
    }));
    assert_eq!(status, 200);
    let threads: Vec<_> = (0..3)
        .map(|n| {
            let s = s.clone();
            std::thread::spawn(move || s.run_as(&format!("c{n}"), json!({ "crash": n == 2 })))
        })
        .collect();
    for t in threads {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 502);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("exited with code 3"),
            "{body}"
        );
    }
    let ids: Vec<String> = (0..3).map(|n| format!("c{n}")).collect();
    wait_tagged_sentinels(&s, &ids);
    let (status, body) = s.run_as("after", json!({}));
    assert_eq!(status, 502, "{body}");
}

#[test]
fn node_concurrent_init_failure_frames_its_output_for_its_activation() {
    let s = Server::start("node");
    let (status, body) = s.init(json!({
        "code": "console.log('before'); throw new Error('boom')",
        "concurrency": 3,
        "env": {"__OW_ACTIVATION_ID": "first"},
    }));
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().contains("boom"), "{body}");
    let (out, err) = wait_tagged_sentinels(&s, &["first".to_string()]);
    assert_eq!(
        tagged_lines(&out),
        [
            (Some("first".to_string()), "before".to_string()),
            (Some("first".to_string()), SENTINEL.to_string())
        ]
    );
    assert!(tagged_lines(&err)
        .iter()
        .all(|(id, _)| id.as_deref() == Some("first")));
}

#[test]
fn python_refuses_concurrency() {
    let s = Server::start("python");
    let (status, body) = s.init(json!({"code": "def main(a): return a", "concurrency": 2}));
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limits.concurrency 2 is not supported"),
        "{body}"
    );
    // Concurrency 1 is the ordinary protocol.
    let s = Server::start("python");
    let (status, _) = s.init(json!({"code": "def main(a): return a", "concurrency": 1}));
    assert_eq!(status, 200);
}

/// Prints three lines on each stream with pauses, answers with its pid; `die` exits instead.
const NATIVE_SLOW: &str = r#"#!/bin/sh
echo "booted $$"
while read -r line; do
  n=$(printf '%s' "$line" | sed -n 's/.*"n": *\([0-9]*\).*/\1/p')
  case "$line" in *'"die":true'*) echo "dying $n"; exit 4 ;; esac
  for i in 1 2 3; do
    echo "$n out $i"
    sleep 0.05
    echo "$n err $i" >&2
  done
  printf '%s' "$n unterminated"
  echo "{\"n\":$n,\"pid\":$$}" >&3
done
"#;

#[test]
fn native_concurrency_runs_one_copy_per_slot_with_tagged_output() {
    let s = Arc::new(Server::start("native"));
    let (status, body) = s.init(json!({
        "code": NATIVE_SLOW, "concurrency": 4, "env": {"__OW_ACTIVATION_ID": "n0"},
    }));
    assert_eq!((status, body), (200, json!({"ok": true})));
    let ids: Vec<String> = (0..4).map(|n| format!("n{n}")).collect();
    let run_all = |s: &Arc<Server>| {
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let s = s.clone();
                std::thread::spawn(move || s.run_as(&format!("n{n}"), json!({ "n": n })))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    let results = run_all(&s);
    let mut pids = std::collections::HashSet::new();
    for (n, (status, body)) in results.iter().enumerate() {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["n"], json!(n));
        pids.insert(body["pid"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 4, "one copy per concurrent activation");
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "they ran at once"
    );
    let (out, err) = wait_tagged_sentinels(&s, &ids);
    for (stream, text) in [("stdout", &out), ("stderr", &err)] {
        for (id, msg) in tagged_lines(text) {
            let id = id.unwrap_or_else(|| panic!("untagged {stream} line {msg:?}"));
            if msg == SENTINEL || msg.starts_with("booted") {
                continue;
            }
            let n = id.trim_start_matches('n');
            assert!(
                msg.starts_with(&format!("{n} ")),
                "{stream}: {msg:?} tagged {id}"
            );
        }
        for id in &ids {
            let n = id.trim_start_matches('n');
            let mine: Vec<String> = tagged_lines(text)
                .into_iter()
                .filter(|(i, m)| i.as_ref() == Some(id) && !m.starts_with("booted"))
                .map(|(_, m)| m)
                .collect();
            let kind = if stream == "stdout" { "out" } else { "err" };
            let mut want: Vec<String> = (1..=3).map(|i| format!("{n} {kind} {i}")).collect();
            if stream == "stdout" {
                want.push(format!("{n} unterminated"));
            }
            want.push(SENTINEL.to_string());
            assert_eq!(mine, want, "{stream} of {id}");
        }
    }
    // The first copy's start-up line belongs to the activation /init ran for.
    assert_eq!(
        tagged_lines(&out)
            .iter()
            .filter(|(_, m)| m.starts_with("booted"))
            .count(),
        4
    );
    assert!(out.contains(&format!("{RS}n0{US}booted")), "{out:?}");

    // Warm: the same four copies serve the next round.
    for (status, body) in run_all(&s) {
        assert_eq!(status, 200);
        assert!(pids.contains(&body["pid"].as_u64().unwrap()), "{body}");
    }
}

#[test]
fn native_concurrency_a_dying_copy_fails_only_its_activation() {
    let s = Arc::new(Server::start("native"));
    let (status, _) = s.init(json!({"code": NATIVE_SLOW, "concurrency": 2}));
    assert_eq!(status, 200);
    let other = {
        let s = s.clone();
        std::thread::spawn(move || s.run_as("ok1", json!({"n": 1})))
    };
    let (status, body) = s.run_as("dead", json!({"n": 2, "die": true}));
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("exited with code 4"),
        "{body}"
    );
    let (status, body) = other.join().unwrap();
    assert_eq!((status, body["n"].clone()), (200, json!(1)), "{body}");
    let (out, _) = wait_tagged_sentinels(&s, &["dead".to_string(), "ok1".to_string()]);
    assert!(out.contains(&format!("{RS}dead{US}dying 2\n")), "{out:?}");
    // A fresh copy takes the next activation.
    let (status, body) = s.run_as("next", json!({"n": 3}));
    assert_eq!(status, 200, "{body}");
}
