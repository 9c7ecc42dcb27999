//! End-to-end tests of `whirl trigger` and `whirl rule` with the real binary against a running
//! platform: create, update, get (summary), list, delete, fire (with and without active rules),
//! enable, disable, delete --disable, and the error paths.

mod cli_support;
mod common;

use std::time::{Duration, Instant};

use cli_support::User;
use common::Platform;
use serde_json::{json, Value};

const PY: &str = "def main(a):\n    print('fired with', a.get('name'))\n    return {'source': a.get('source'), 'name': a.get('name'), 'by': 'hello'}\n";

/// Waits until `action` has `n` activations and returns the newest.
fn newest_of(u: &User, action: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = u.json(&["activation", "list", action, "--full"]);
        if v.as_array().unwrap().len() >= n {
            return v[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "{action} has not run {n} time(s): {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_and_rules() {
    let p = Platform::start("").await;
    let u = User::guest(&p);
    let f = u.file("hello.py", PY);
    u.ok(&["action", "create", "hello", &f]);
    u.ok(&["action", "create", "other", &f]);

    // Triggers: create with parameters and annotations; duplicates conflict.
    assert_eq!(
        u.ok(&[
            "trigger",
            "create",
            "tick",
            "-p",
            "source",
            "cron",
            "-a",
            "description",
            "every minute"
        ]),
        "ok: created trigger tick\n"
    );
    let t = u.json(&["trigger", "get", "tick"]);
    assert_eq!(t["parameters"], json!([{"key": "source", "value": "cron"}]));
    assert_eq!(
        t["annotations"],
        json!([{"key": "description", "value": "every minute"}])
    );
    u.fails(
        &["trigger", "create", "tick"],
        153,
        "Unable to create trigger 'tick'",
    );

    // Firing without rules runs nothing.
    assert_eq!(
        u.ok(&["trigger", "fire", "tick"]),
        "ok: triggered /_/tick (no active rules: nothing ran)\n"
    );
    assert_eq!(
        u.json(&["trigger", "fire", "tick"]),
        json!({"activationId": null})
    );

    // A rule connects it to an action.
    assert_eq!(
        u.ok(&["rule", "create", "on-tick", "tick", "hello"]),
        "ok: created rule on-tick\n"
    );
    assert_eq!(
        u.ok(&["rule", "get", "on-tick", "--summary"]),
        "rule /guest/on-tick (active)\n  trigger: /guest/tick\n  action: /guest/hello\n"
    );
    assert_eq!(
        u.ok(&["rule", "list"]),
        "rules\n/guest/on-tick  private  active\n"
    );
    let s = u.ok(&["trigger", "get", "tick", "--summary"]);
    assert_eq!(
        s,
        "trigger /guest/tick\n  parameters: source\n  rule guest/on-tick -> hello (active)\n"
    );
    assert_eq!(
        u.ok(&["trigger", "list"]),
        "triggers\n/guest/tick  private\n"
    );

    // Fire: the trigger's activation id; the rule's action runs with trigger params + payload.
    let out = u.ok(&["trigger", "fire", "tick", "-p", "name", "Ada"]);
    let id = out
        .strip_prefix("ok: triggered /_/tick with id ")
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_owned();
    assert_eq!(id.len(), 32, "{out}");
    let run = newest_of(&u, "hello", 1);
    assert_eq!(
        run["response"]["result"],
        json!({"source": "cron", "name": "Ada", "by": "hello"})
    );
    let trig = p.wait_activation(&id).await;
    assert_eq!(trig["name"], "tick");
    let row = u.ok(&["activation", "list", "--limit", "2"]);
    assert!(
        row.lines()
            .any(|l| l.contains(&id) && l.ends_with("guest/tick:0.0.1")),
        "{row}"
    );

    // Disable: firing runs nothing; enable again.
    assert_eq!(
        u.ok(&["rule", "disable", "on-tick"]),
        "ok: disabled rule on-tick\n"
    );
    assert_eq!(u.json(&["rule", "get", "on-tick"])["status"], "inactive");
    assert_eq!(
        u.ok(&["rule", "list"]),
        "rules\n/guest/on-tick  private  inactive\n"
    );
    assert!(u
        .ok(&["trigger", "fire", "tick"])
        .contains("no active rules"));
    assert_eq!(
        u.ok(&["rule", "enable", "on-tick"]),
        "ok: enabled rule on-tick\n"
    );
    assert_eq!(u.json(&["rule", "get", "on-tick"])["status"], "active");

    // Update: the rule now starts another action; the trigger's parameters change.
    assert_eq!(
        u.ok(&["rule", "update", "on-tick", "tick", "/guest/other"]),
        "ok: updated rule on-tick\n"
    );
    assert_eq!(
        u.json(&["rule", "get", "on-tick"])["action"]["name"],
        "other"
    );
    assert_eq!(
        u.ok(&["trigger", "update", "tick", "-p", "source", "manual"]),
        "ok: updated trigger tick\n"
    );
    u.ok(&["trigger", "fire", "tick"]);
    let run = newest_of(&u, "other", 1);
    assert_eq!(run["response"]["result"]["source"], "manual");

    // Errors: missing entities, rules to nothing, bad parameter JSON, bad names.
    u.fails(
        &["trigger", "get", "nope"],
        148,
        "Unable to get trigger 'nope'",
    );
    u.fails(
        &["trigger", "fire", "nope"],
        148,
        "Unable to fire trigger 'nope'",
    );
    u.fails(&["rule", "get", "nope"], 148, "Unable to get rule 'nope'");
    u.fails(
        &["rule", "enable", "nope"],
        148,
        "Unable to enable rule 'nope'",
    );
    let r = u.run(&["rule", "create", "r2", "nope", "hello"]);
    assert!(
        r.code != 0 && r.stderr.starts_with("error: Unable to create rule 'r2'"),
        "{r:?}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let bad = u.file("bad.json", "{\"a\":");
    u.fails(
        &["trigger", "fire", "tick", "-P", &bad],
        2,
        "Invalid parameter JSON",
    );
    u.fails(
        &["trigger", "create", "t2", "-P", &bad],
        2,
        "Invalid parameter JSON",
    );
    u.fails(
        &["rule", "create", "r", "pkg/trigger", "hello"],
        2,
        "not a valid qualified name",
    );

    // Delete --disable; then the trigger.
    assert_eq!(
        u.ok(&["rule", "delete", "on-tick", "--disable"]),
        "ok: deleted rule on-tick\n"
    );
    u.fails(&["rule", "get", "on-tick"], 148, "HTTP 404");
    assert_eq!(u.ok(&["rule", "list"]), "rules\n");
    assert_eq!(
        u.ok(&["trigger", "delete", "tick"]),
        "ok: deleted trigger tick\n"
    );
    u.fails(
        &["trigger", "delete", "tick"],
        148,
        "Unable to delete trigger 'tick'",
    );
    let all = u.json(&["namespace", "get"]);
    assert_eq!(
        (all["triggers"].clone(), all["rules"].clone()),
        (json!([]), json!([]))
    );
}
