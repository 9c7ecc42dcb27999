//! The `whirl trigger` and `whirl rule` commands against a recording stand-in server: the
//! platform does not serve triggers and rules yet, so these tests check the requests the client
//! sends (OpenWhisk's REST shapes) and how it prints the answers. Replace them with end-to-end
//! tests against `whirl standalone` once the platform serves these collections.

mod cli_support;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use cli_support::User;
use serde_json::{json, Value};

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    target: String,
    body: Value,
}

/// A stand-in API server: answers each request from `answer` and records it.
struct Stub {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    fn start(answer: fn(&str, &str) -> (u16, Value)) -> Stub {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_owned();
                let target = parts.next().unwrap_or("").to_owned();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0u8; len];
                r.read_exact(&mut body).unwrap();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (status, reply) = answer(&method, &target);
                rec.lock().unwrap().push(Seen {
                    method,
                    target,
                    body,
                });
                let text = if status == 204 {
                    String::new()
                } else {
                    reply.to_string()
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Stub { port, seen }
    }

    fn user(&self) -> User {
        let u = User::bare();
        std::fs::write(
            &u.props,
            format!("APIHOST=http://127.0.0.1:{}\nAUTH=u:k\n", self.port),
        )
        .unwrap();
        u
    }

    /// The requests since the last call.
    fn take(&self) -> Vec<(String, String, Value)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
            .into_iter()
            .map(|s| (s.method, s.target, s.body))
            .collect()
    }
}

fn openwhisk(method: &str, target: &str) -> (u16, Value) {
    let path = target.split('?').next().unwrap();
    match (method, path) {
        (_, p) if p.ends_with("/missing") => (
            404,
            json!({"error": "The requested resource does not exist.", "code": "tid1"}),
        ),
        ("POST", "/api/v1/namespaces/_/triggers/quiet") => (204, Value::Null),
        ("POST", p) if p.contains("/triggers/") => (202, json!({"activationId": "a1b2"})),
        ("GET", "/api/v1/namespaces/_/triggers") => (
            200,
            json!([{"namespace": "guest", "name": "tick", "publish": false}]),
        ),
        ("GET", "/api/v1/namespaces/_/rules") => (
            200,
            json!([{"namespace": "guest", "name": "on-tick", "publish": false, "status": "active"}]),
        ),
        ("GET", p) if p.contains("/rules/") => (
            200,
            json!({"namespace": "guest", "name": "on-tick", "status": "inactive",
                   "trigger": {"path": "guest", "name": "tick"},
                   "action": {"path": "guest", "name": "hello"}}),
        ),
        ("GET", p) if p.contains("/triggers/") => (
            200,
            json!({"namespace": "guest", "name": "tick", "parameters": [{"key": "a", "value": 1}],
                   "rules": {"guest/on-tick": {"status": "active", "action": {"path": "guest", "name": "hello"}}}}),
        ),
        _ => (200, json!({"ok": true})),
    }
}

#[test]
fn trigger_requests_and_output() {
    let s = Stub::start(openwhisk);
    let u = s.user();

    assert_eq!(
        u.ok(&[
            "trigger",
            "create",
            "tick",
            "-p",
            "a",
            "1",
            "-a",
            "description",
            "every minute"
        ]),
        "ok: created trigger tick\n"
    );
    assert_eq!(
        s.take(),
        vec![(
            "PUT".into(),
            "/api/v1/namespaces/_/triggers/tick?overwrite=false".into(),
            json!({"parameters": [{"key": "a", "value": 1}],
                   "annotations": [{"key": "description", "value": "every minute"}]})
        )]
    );
    assert_eq!(
        u.ok(&["trigger", "update", "tick"]),
        "ok: updated trigger tick\n"
    );
    assert_eq!(
        s.take()[0].1,
        "/api/v1/namespaces/_/triggers/tick?overwrite=true"
    );

    // Fire: an activation id when rules ran, a note when none is active.
    assert_eq!(
        u.ok(&["trigger", "fire", "tick", "-p", "n", "2"]),
        "ok: triggered /_/tick with id a1b2\n"
    );
    assert_eq!(
        s.take(),
        vec![(
            "POST".into(),
            "/api/v1/namespaces/_/triggers/tick".into(),
            json!({"n": 2})
        )]
    );
    let out = u.ok(&["trigger", "fire", "quiet"]);
    assert!(out.contains("no active rules"), "{out}");
    assert_eq!(
        u.json(&["trigger", "fire", "tick"]),
        json!({"activationId": "a1b2"})
    );
    s.take();

    // Get, list, delete.
    let out = u.ok(&["trigger", "get", "tick", "--summary"]);
    assert!(
        out.starts_with("trigger /guest/tick\n  parameters: a\n"),
        "{out}"
    );
    assert!(
        out.contains("rule guest/on-tick -> hello (active)"),
        "{out}"
    );
    assert_eq!(
        u.ok(&["trigger", "list"]),
        "triggers\n/guest/tick  private\n"
    );
    assert_eq!(
        u.ok(&["trigger", "delete", "tick"]),
        "ok: deleted trigger tick\n"
    );
    let seen = s.take();
    assert_eq!(seen[1].1, "/api/v1/namespaces/_/triggers?limit=30");
    assert_eq!(
        (seen[2].0.as_str(), seen[2].1.as_str()),
        ("DELETE", "/api/v1/namespaces/_/triggers/tick")
    );

    // Errors: the server's message and wsk's exit code; bad parameter JSON never leaves.
    u.fails(&["trigger", "get", "missing"], 148, "Unable to get trigger 'missing': The requested resource does not exist. (HTTP 404, code tid1)");
    u.fails(
        &["trigger", "fire", "missing"],
        148,
        "Unable to fire trigger 'missing'",
    );
    s.take();
    let bad = u.file("bad.json", "{");
    u.fails(
        &["trigger", "fire", "tick", "-P", &bad],
        2,
        "Invalid parameter JSON",
    );
    assert!(s.take().is_empty());
}

#[test]
fn rule_requests_and_output() {
    let s = Stub::start(openwhisk);
    let u = s.user();

    assert_eq!(
        u.ok(&["rule", "create", "on-tick", "tick", "tools/hello"]),
        "ok: created rule on-tick\n"
    );
    assert_eq!(
        s.take(),
        vec![(
            "PUT".into(),
            "/api/v1/namespaces/_/rules/on-tick?overwrite=false".into(),
            json!({"trigger": "/_/tick", "action": "/_/tools/hello"})
        )]
    );
    u.ok(&["rule", "update", "on-tick", "/guest/tick", "/guest/hello"]);
    assert_eq!(
        s.take()[0].2,
        json!({"trigger": "/guest/tick", "action": "/guest/hello"})
    );

    assert_eq!(
        u.ok(&["rule", "disable", "on-tick"]),
        "ok: disabled rule on-tick\n"
    );
    assert_eq!(
        u.ok(&["rule", "enable", "on-tick"]),
        "ok: enabled rule on-tick\n"
    );
    let seen = s.take();
    assert_eq!(
        seen[0],
        (
            "POST".into(),
            "/api/v1/namespaces/_/rules/on-tick".into(),
            json!({"status": "inactive"})
        )
    );
    assert_eq!(seen[1].2, json!({"status": "active"}));

    let out = u.ok(&["rule", "get", "on-tick", "--summary"]);
    assert_eq!(
        out,
        "rule /guest/on-tick (inactive)\n  trigger: /guest/tick\n  action: /guest/hello\n"
    );
    assert_eq!(
        u.ok(&["rule", "list"]),
        "rules\n/guest/on-tick  private  active\n"
    );

    // Delete --disable deactivates first.
    s.take();
    assert_eq!(
        u.ok(&["rule", "delete", "on-tick", "--disable"]),
        "ok: deleted rule on-tick\n"
    );
    let seen = s.take();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].0.as_str(), seen[1].0.as_str()), ("POST", "DELETE"));

    u.fails(
        &["rule", "enable", "missing"],
        148,
        "Unable to enable rule 'missing'",
    );
    u.fails(
        &["rule", "create", "r", "pkg/trigger", "a"],
        2,
        "not a valid qualified name",
    );
}
