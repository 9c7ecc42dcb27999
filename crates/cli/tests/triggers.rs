//! End-to-end tests of triggers and rules against the real `whirl standalone`: CRUD, firing
//! (204 without active rules, 202 with the trigger activation), enable/disable, the fired
//! actions' parameters and cause, the trigger activation record, and the error cases.

mod common;

use std::time::{Duration, Instant};

use common::{annotation, Platform};
use reqwest::Method;
use serde_json::{json, Value};

const ECHO: &str = "def main(args):\n    return args\n";

async fn fire(p: &Platform, trigger: &str, payload: Value) -> (u16, Value) {
    p.call(Method::POST, &format!("/triggers/{trigger}"), Some(payload))
        .await
}

/// The trigger activation's rule results (parsed JSON lines).
fn rule_results(record: &Value) -> Vec<Value> {
    record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l.as_str().unwrap()).unwrap())
        .collect()
}

/// Fires and returns the trigger activation and the activations of the rules' actions.
async fn fire_and_follow(p: &Platform, trigger: &str, payload: Value) -> (Value, Vec<Value>) {
    let (st, v) = fire(p, trigger, payload).await;
    assert_eq!(st, 202, "{v}");
    let record = p.wait_activation(v["activationId"].as_str().unwrap()).await;
    let mut actions = Vec::new();
    for r in rule_results(&record) {
        assert_eq!(r["success"], true, "{r}");
        actions.push(p.wait_activation(r["activationId"].as_str().unwrap()).await);
    }
    (record, actions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_fire_active_rules() {
    let p = Platform::start("").await;
    p.put_action(
        "echo",
        "python:3",
        ECHO,
        json!({"parameters": [{"key":"fromAction","value":true},{"key":"a","value":"action"}]}),
    )
    .await;
    p.put_action("echo2", "python:3", ECHO, json!({})).await;

    // Trigger CRUD.
    let (st, t) = p
        .call(
            Method::PUT,
            "/triggers/t",
            Some(json!({"parameters": [{"key":"a","value":"trigger"},{"key":"b","value":"trigger"}]})),
        )
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["name"], "t");
    assert_eq!(t["limits"], json!({}));
    let (st, _) = p.call(Method::PUT, "/triggers/t", Some(json!({}))).await;
    assert_eq!(st, 409);

    // No rule: 204 and no record.
    let (st, _) = fire(&p, "t", json!({})).await;
    assert_eq!(st, 204);
    let (st, _) = fire(&p, "missing", json!({})).await;
    assert_eq!(st, 404);

    // A rule: created active, linked in the trigger.
    let (st, r) = p
        .call(
            Method::PUT,
            "/rules/r",
            Some(json!({"trigger": "/_/t", "action": "/_/echo"})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "active");
    assert_eq!(r["trigger"], json!({"path":"guest","name":"t"}));
    assert_eq!(r["action"], json!({"path":"guest","name":"echo"}));
    let (_, t) = p.get("/triggers/t").await;
    assert_eq!(
        t["rules"]["guest/r"],
        json!({"action": {"path":"guest","name":"echo"}, "status": "active"})
    );

    // Fire: the action gets its parameters, the trigger's over them, the payload over both.
    let (record, actions) = fire_and_follow(&p, "t", json!({"b": "fire", "c": "fire"})).await;
    assert_eq!(record["name"], "t");
    assert_eq!(record["namespace"], "guest");
    assert_eq!(
        record["response"]["result"],
        json!({"b": "fire", "c": "fire"})
    );
    let results = rule_results(&record);
    assert_eq!(results[0]["rule"], "guest/r");
    assert_eq!(results[0]["action"], "guest/echo");
    assert_eq!(results[0]["statusCode"], 0);
    let action = &actions[0];
    assert_eq!(
        action["response"]["result"],
        json!({"fromAction": true, "a": "trigger", "b": "fire", "c": "fire"})
    );
    assert_eq!(action["cause"], record["activationId"]);
    let (_, listed) = p.get("/activations?name=t").await;
    assert_eq!(listed[0]["activationId"], record["activationId"]);

    // Disable: the rule is inactive and firing does nothing; same status again is fine.
    for _ in 0..2 {
        let (st, _) = p
            .call(
                Method::POST,
                "/rules/r",
                Some(json!({"status": "inactive"})),
            )
            .await;
        assert_eq!(st, 200);
    }
    let (_, r) = p.get("/rules/r").await;
    assert_eq!(r["status"], "inactive");
    let (st, _) = fire(&p, "t", json!({})).await;
    assert_eq!(st, 204);
    let (st, v) = p
        .call(Method::POST, "/rules/r", Some(json!({"status": "sleepy"})))
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = p
        .call(Method::POST, "/rules/r", Some(json!({"status": "active"})))
        .await;
    assert_eq!(st, 200);

    // Update the rule's action: its status is kept and firing reaches the new action.
    let (st, r) = p
        .call(
            Method::PUT,
            "/rules/r?overwrite=true",
            Some(json!({"action": "echo2"})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["status"], "active");
    assert_eq!(r["version"], "0.0.2");
    let (_, actions) = fire_and_follow(&p, "t", json!({"x": 1})).await;
    assert_eq!(actions[0]["name"], "echo2");
    assert_eq!(
        actions[0]["response"]["result"],
        json!({"a": "trigger", "b": "trigger", "x": 1})
    );

    // Two rules on one trigger (one to a sequence, one to a packaged action): both fire.
    let (st, _) = p
        .call(
            Method::PUT,
            "/actions/both",
            Some(json!({"exec": {"kind": "sequence", "components": ["echo", "echo2"]}})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = p
        .call(
            Method::PUT,
            "/packages/pkg",
            Some(json!({"parameters": [{"key":"p","value":1}]})),
        )
        .await;
    assert_eq!(st, 200);
    p.put_action("pkg/echo", "python:3", ECHO, json!({})).await;
    let (st, _) = p
        .call(
            Method::PUT,
            "/rules/r2",
            Some(json!({"trigger": "t", "action": "both"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = p
        .call(
            Method::PUT,
            "/rules/r3",
            Some(json!({"trigger": "t", "action": "pkg/echo"})),
        )
        .await;
    assert_eq!(st, 200);
    let (record, actions) = fire_and_follow(&p, "t", json!({})).await;
    assert_eq!(rule_results(&record).len(), 3);
    let seq = actions.iter().find(|a| a["name"] == "both").unwrap();
    assert_eq!(annotation(seq, "kind").unwrap(), "sequence");
    assert_eq!(seq["cause"], record["activationId"]);
    assert_eq!(seq["response"]["result"]["fromAction"], true);
    let packaged = actions
        .iter()
        .find(|a| annotation(a, "path").unwrap() == "guest/pkg/echo")
        .unwrap();
    assert_eq!(packaged["response"]["result"]["p"], 1);

    // Errors: missing trigger or action, missing fields, conflicts.
    let (st, v) = p
        .call(
            Method::PUT,
            "/rules/bad",
            Some(json!({"trigger": "t", "action": "nothing"})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("action /guest/nothing does not exist"))
    );
    let (st, v) = p
        .call(
            Method::PUT,
            "/rules/bad",
            Some(json!({"trigger": "nothing", "action": "echo"})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("trigger /guest/nothing does not exist"))
    );
    let (st, _) = p
        .call(Method::PUT, "/rules/bad", Some(json!({"trigger": "t"})))
        .await;
    assert_eq!(st, 400);
    let (st, _) = p
        .call(
            Method::PUT,
            "/rules/r",
            Some(json!({"trigger": "t", "action": "echo"})),
        )
        .await;
    assert_eq!(st, 409);

    // Listing and counting.
    let (_, rules) = p.get("/rules").await;
    assert_eq!(rules.as_array().unwrap().len(), 3);
    let (_, n) = p.get("/rules?count=true").await;
    assert_eq!(n, json!({"rules": 3}));
    let (_, page) = p.get("/rules?limit=2&skip=2").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (_, triggers) = p.get("/triggers").await;
    assert_eq!(triggers[0]["name"], "t");
    let (_, n) = p.get("/triggers?count=true").await;
    assert_eq!(n, json!({"triggers": 1}));

    // Deleting rules unlinks them; without active rules the trigger fires nothing.
    for r in ["r", "r2", "r3"] {
        let (st, v) = p.call(Method::DELETE, &format!("/rules/{r}"), None).await;
        assert_eq!(st, 200, "{v}");
    }
    let (_, t) = p.get("/triggers/t").await;
    assert_eq!(t["rules"], json!({}));
    let (st, _) = fire(&p, "t", json!({})).await;
    assert_eq!(st, 204);
    let (st, _) = p.call(Method::DELETE, "/triggers/t", None).await;
    assert_eq!(st, 200);
    let (st, _) = p.get("/triggers/t").await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_reach_shared_actions_and_record_failures() {
    let p = Platform::start("").await;
    let system = (
        "789c46b1-71f6-4ed5-8c54-816aa4f8c502",
        "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
    );
    let sys = |path: &str| p.url(&format!("/api/v1/namespaces/whisk.system{path}"));
    let (st, _) = p
        .call_as(
            system,
            Method::PUT,
            &sys("/packages/lib"),
            Some(json!({"publish": true})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = p
        .call_as(
            system,
            Method::PUT,
            &sys("/actions/lib/echo"),
            Some(json!({"exec": {"kind": "python:3", "code": ECHO}})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = p.call(Method::PUT, "/triggers/t", Some(json!({}))).await;
    assert_eq!(st, 200);
    let (st, r) = p
        .call(
            Method::PUT,
            "/rules/shared",
            Some(json!({"trigger": "t", "action": "/whisk.system/lib/echo"})),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["action"],
        json!({"path":"whisk.system/lib","name":"echo"})
    );
    let (_, actions) = fire_and_follow(&p, "t", json!({"hello": "world"})).await;
    assert_eq!(actions[0]["response"]["result"], json!({"hello": "world"}));
    assert_eq!(actions[0]["namespace"], "guest");

    // A rule whose action disappears: the trigger activation records the failure.
    p.put_action("gone", "python:3", ECHO, json!({})).await;
    let (st, _) = p
        .call(
            Method::PUT,
            "/rules/fragile",
            Some(json!({"trigger": "t", "action": "gone"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = p.call(Method::DELETE, "/actions/gone", None).await;
    assert_eq!(st, 200);
    let (st, v) = fire(&p, "t", json!({})).await;
    assert_eq!(st, 202);
    let record = p.wait_activation(v["activationId"].as_str().unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let results = loop {
        let r = rule_results(&record);
        if r.len() == 2 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let failed = results
        .iter()
        .find(|r| r["rule"] == "guest/fragile")
        .unwrap();
    assert_eq!(failed["success"], false);
    assert_eq!(failed["statusCode"], 1);
    assert_eq!(failed["error"], "The requested resource does not exist.");

    // Rules to a private package of another namespace are refused.
    let (st, _) = p
        .call_as(
            system,
            Method::PUT,
            &sys("/packages/private"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = p
        .call(
            Method::PUT,
            "/rules/sneaky",
            Some(json!({"trigger": "t", "action": "/whisk.system/private/echo"})),
        )
        .await;
    assert_eq!(st, 403);
}
