//! End-to-end tests of sequences against the real `whirl standalone`: components run in order
//! with each result feeding the next, the sequence's record, nesting, the first failure ending
//! it, maximum length, cycles and missing components.

mod common;

use common::{annotation, Platform};
use reqwest::Method;
use serde_json::{json, Value};

const INC: &str =
    "def main(args):\n    return {\"n\": args.get(\"n\", 0) + args.get(\"step\", 1)}\n";
const DOUBLE: &str = "function main(p) { return { n: p.n * 2 }; }";
const FAIL: &str = "def main(args):\n    return {\"error\": \"boom at %d\" % args[\"n\"]}\n";

async fn seq(p: &Platform, name: &str, components: &[&str]) -> (u16, Value) {
    p.call(
        Method::PUT,
        &format!("/actions/{name}?overwrite=true"),
        Some(json!({"exec": {"kind": "sequence", "components": components}})),
    )
    .await
}

fn ids(record: &Value) -> Vec<String> {
    record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_chain_record_and_stop_at_the_first_failure() {
    let p = Platform::start("").await;
    p.put_action(
        "inc",
        "python:3",
        INC,
        json!({"parameters": [{"key":"step","value":1}]}),
    )
    .await;
    p.put_action("double", "nodejs:20", DOUBLE, json!({})).await;
    p.put_action("fail", "python:3", FAIL, json!({})).await;

    // inc, double, inc: (1 + 1) * 2 + 1.
    let (st, s) = seq(&p, "calc", &["inc", "/_/double", "/guest/inc"]).await;
    assert_eq!(st, 200, "{s}");
    assert_eq!(
        s["exec"]["components"],
        json!(["/guest/inc", "/guest/double", "/guest/inc"])
    );
    let (st, rec) = p.invoke("calc", json!({"n": 1})).await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["response"]["result"], json!({"n": 5}));
    assert_eq!(rec["response"]["status"], "success");
    assert_eq!(rec["name"], "calc");
    assert_eq!(annotation(&rec, "topmost").unwrap(), true);
    assert_eq!(annotation(&rec, "kind").unwrap(), "sequence");
    assert_eq!(annotation(&rec, "path").unwrap(), "guest/calc");
    assert_eq!(annotation(&rec, "limits").unwrap()["memory"], 256);
    assert!(rec.get("cause").is_none());
    let seq_id = rec["activationId"].as_str().unwrap().to_owned();
    let components = ids(&rec);
    assert_eq!(components.len(), 3);
    let mut sum = 0;
    for (i, id) in components.iter().enumerate() {
        let c = p.wait_activation(id).await;
        assert_eq!(c["cause"], seq_id.as_str(), "{c}");
        assert_eq!(annotation(&c, "causedBy").unwrap(), "sequence");
        assert_eq!(c["name"], if i == 1 { "double" } else { "inc" });
        sum += c["duration"].as_u64().unwrap();
    }
    assert_eq!(rec["duration"].as_u64().unwrap(), sum);
    // The stored record is the one answered.
    let stored = p.wait_activation(&seq_id).await;
    assert_eq!(stored["logs"], rec["logs"]);

    // result=true answers with the result alone.
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/calc?blocking=true&result=true",
            Some(json!({"n": 10})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"n": 23})));

    // Non-blocking: 202 with the sequence's id, and its record arrives.
    let (st, v) = p
        .call(Method::POST, "/actions/calc", Some(json!({"n": 0})))
        .await;
    assert_eq!(st, 202);
    let rec = p.wait_activation(v["activationId"].as_str().unwrap()).await;
    assert_eq!(rec["response"]["result"], json!({"n": 3}));

    // The first failure ends the sequence with its response (502, as OpenWhisk answers).
    let (st, _) = seq(&p, "broken", &["inc", "fail", "double"]).await;
    assert_eq!(st, 200);
    let (st, rec) = p.invoke("broken", json!({"n": 1})).await;
    assert_eq!(st, 502, "{rec}");
    assert_eq!(rec["response"]["status"], "application error");
    assert_eq!(rec["response"]["result"], json!({"error": "boom at 2"}));
    assert_eq!(ids(&rec).len(), 2);

    // Nested sequences: the inner one is a component with its own record.
    let (st, _) = seq(&p, "outer", &["calc", "inc"]).await;
    assert_eq!(st, 200);
    let (st, rec) = p.invoke("outer", json!({"n": 1})).await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["response"]["result"], json!({"n": 6}));
    let parts = ids(&rec);
    assert_eq!(parts.len(), 2);
    let inner = p.wait_activation(&parts[0]).await;
    assert_eq!(inner["name"], "calc");
    assert_eq!(inner["cause"], rec["activationId"]);
    assert_eq!(annotation(&inner, "topmost").unwrap(), false);
    assert_eq!(annotation(&inner, "causedBy").unwrap(), "sequence");
    assert_eq!(ids(&inner).len(), 3);

    // Cycles are refused, directly or through a nested sequence.
    let (st, v) = seq(&p, "calc", &["inc", "outer"]).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Sequence may not refer to itself."))
    );
    let (st, v) = seq(&p, "selfish", &["inc"]).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = seq(&p, "selfish", &["selfish"]).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Sequence may not refer to itself."))
    );

    // Missing components: refused at creation, an application error when gone at invoke.
    let (st, v) = seq(&p, "ghost", &["inc", "nothing"]).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Sequence component does not exist."))
    );
    let (st, v) = p
        .call(
            Method::PUT,
            "/actions/ghost",
            Some(json!({"exec": {"kind": "sequence", "components": []}})),
        )
        .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("No component specified for the sequence."))
    );
    p.put_action("temp", "python:3", INC, json!({})).await;
    let (st, _) = seq(&p, "fragile", &["inc", "temp"]).await;
    assert_eq!(st, 200);
    let (st, _) = p.call(Method::DELETE, "/actions/temp", None).await;
    assert_eq!(st, 200);
    let (st, rec) = p.invoke("fragile", json!({"n": 1})).await;
    assert_eq!(st, 502, "{rec}");
    assert_eq!(
        rec["response"]["result"],
        json!({"error": "Sequence component does not exist."})
    );
    assert_eq!(ids(&rec).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_length_is_bounded_and_components_may_be_shared() {
    let p = Platform::start("[controller.limits]\nmax_sequence_length = 3\n").await;
    p.put_action("inc", "python:3", INC, json!({})).await;
    let (st, v) = seq(&p, "long", &["inc", "inc", "inc", "inc"]).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Too many actions in the sequence."))
    );
    let (st, _) = seq(&p, "three", &["inc", "inc", "inc"]).await;
    assert_eq!(st, 200);
    let (st, v) = seq(&p, "four", &["three", "inc"]).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Too many actions in the sequence."))
    );

    // Grown past the limit after creation: stopped at invoke with OpenWhisk's application error.
    let (st, _) = seq(&p, "one", &["inc"]).await;
    assert_eq!(st, 200);
    let (st, _) = seq(&p, "grows", &["one", "inc"]).await;
    assert_eq!(st, 200);
    let (st, _) = seq(&p, "one", &["inc", "inc", "inc"]).await;
    assert_eq!(st, 200);
    let (st, rec) = p.invoke("grows", json!({"n": 0})).await;
    assert_eq!(st, 502, "{rec}");
    assert_eq!(
        rec["response"]["result"],
        json!({"error": "Too many actions in the sequence."})
    );

    // A component from another namespace's published package; a private one is refused.
    let system = (
        "789c46b1-71f6-4ed5-8c54-816aa4f8c502",
        "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
    );
    let sys = |path: &str| p.url(&format!("/api/v1/namespaces/whisk.system{path}"));
    for (pkg, publish) in [("shared", true), ("hidden", false)] {
        let (st, _) = p
            .call_as(
                system,
                Method::PUT,
                &sys(&format!("/packages/{pkg}")),
                Some(json!({"publish": publish})),
            )
            .await;
        assert_eq!(st, 200);
        let (st, _) = p
            .call_as(
                system,
                Method::PUT,
                &sys(&format!("/actions/{pkg}/inc")),
                Some(json!({"exec": {"kind": "python:3", "code": INC}, "parameters": [{"key":"step","value":10}]})),
            )
            .await;
        assert_eq!(st, 200);
    }
    let (st, v) = seq(&p, "mixed", &["inc", "/whisk.system/shared/inc"]).await;
    assert_eq!(st, 200, "{v}");
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/mixed?blocking=true&result=true",
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"n": 12})));
    let (st, _) = seq(&p, "sneaky", &["/whisk.system/hidden/inc"]).await;
    assert_eq!(st, 403);
}
