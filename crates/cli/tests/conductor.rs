//! End-to-end tests of conductor actions against the real `whirl standalone`: a composition
//! driven by the conductor's `action`/`params`/`state`, its record, errors fed back to the
//! conductor, and the length limit.

mod common;

use common::{annotation, Platform};
use reqwest::Method;
use serde_json::{json, Value};

const TRIPLE: &str = "def main(args):\n    return {\"value\": args[\"value\"] * 3}\n";
const INCREMENT: &str = "function main(p) { return { value: p.value + 1 }; }";

/// triple, then increment, then done (OpenWhisk's documented example).
const CONDUCTOR: &str = r#"
def main(args):
    step = args.get("$step", 0)
    if step == 0:
        return {"action": "triple", "params": {"value": args["value"]}, "state": {"$step": 1}}
    if step == 1:
        return {"action": "/_/increment", "params": {"value": args["value"]}, "state": {"$step": 2}}
    return {"params": {"value": args["value"]}}
"#;

/// Asks for a missing action and reports the error it gets back.
const LOST: &str = r#"
def main(args):
    if "error" in args:
        return {"params": {"got": args["error"]}}
    return {"action": "missing", "params": {}}
"#;

/// Never stops asking for more work.
const GREEDY: &str = r#"
def main(args):
    if "error" in args:
        return {"params": {"stopped": args["error"]}}
    return {"action": "increment", "params": {"value": args.get("value", 0)}}
"#;

const FAILING: &str = "def main(args):\n    return {\"error\": \"conductor says no\"}\n";

fn conductor() -> Value {
    json!({"annotations": [{"key": "conductor", "value": true}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductor_actions_compose() {
    let p = Platform::start("[controller.limits]\nmax_sequence_length = 4\n").await;
    p.put_action("triple", "python:3", TRIPLE, json!({})).await;
    p.put_action("increment", "nodejs:20", INCREMENT, json!({}))
        .await;
    p.put_action("conductor", "python:3", CONDUCTOR, conductor())
        .await;

    let (st, rec) = p.invoke("conductor", json!({"value": 3})).await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["response"]["result"], json!({"value": 10}));
    assert_eq!(annotation(&rec, "conductor").unwrap(), true);
    assert_eq!(annotation(&rec, "kind").unwrap(), "sequence");
    assert_eq!(annotation(&rec, "topmost").unwrap(), true);
    let ids: Vec<String> = rec["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    // conductor, triple, conductor, increment, conductor
    assert_eq!(ids.len(), 5, "{rec}");
    let mut names = Vec::new();
    for id in &ids {
        let a = p.wait_activation(id).await;
        assert_eq!(a["cause"], rec["activationId"]);
        names.push(a["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        names,
        ["conductor", "triple", "conductor", "increment", "conductor"]
    );
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/conductor?blocking=true&result=true",
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"value": 4})));

    // A component that cannot be resolved: the conductor hears about it.
    p.put_action("lost", "python:3", LOST, conductor()).await;
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/lost?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200, "{res}");
    assert_eq!(
        res,
        json!({"got": "Failed to resolve action with name 'guest/missing' during composition."})
    );

    // At most max_sequence_length components; then the conductor is told.
    p.put_action("greedy", "python:3", GREEDY, conductor())
        .await;
    let (st, rec) = p.invoke("greedy", json!({"value": 0})).await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(
        rec["response"]["result"],
        json!({"stopped": "Too many actions in the composition."})
    );
    // 4 increments and 6 conductor runs (the last one hears the refusal).
    assert_eq!(rec["logs"].as_array().unwrap().len(), 10);

    // A conductor that fails ends the composition with its error.
    p.put_action("failing", "python:3", FAILING, conductor())
        .await;
    let (st, rec) = p.invoke("failing", json!({})).await;
    assert_eq!(st, 502, "{rec}");
    assert_eq!(
        rec["response"]["result"],
        json!({"error": "conductor says no"})
    );

    // A composition inside a sequence.
    let (st, _) = p
        .call(
            Method::PUT,
            "/actions/seq",
            Some(json!({"exec": {"kind": "sequence", "components": ["conductor", "triple"]}})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/seq?blocking=true&result=true",
            Some(json!({"value": 3})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"value": 30})));
}
