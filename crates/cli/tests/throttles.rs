//! End-to-end tests of per-namespace throttles against the real `whirl standalone`:
//! invocations per minute, concurrent invocations and trigger fires per minute answer 429 with
//! OpenWhisk's messages, and `GET /namespaces/{ns}/limits` reports them.

mod common;

use std::time::Duration;

use common::Platform;
use reqwest::Method;
use serde_json::{json, Value};

const ECHO: &str = "def main(args):\n    return args\n";
const SLOW: &str = "import time\ndef main(args):\n    time.sleep(3)\n    return {}\n";

/// Whether `v` is the rate refusal: "Too many requests in the last minute (count: N, allowed: M)."
fn is_rate_refusal(v: &Value, allowed: u64) -> bool {
    let m = v["error"].as_str().unwrap_or("");
    let Some(rest) = m.strip_prefix("Too many requests in the last minute (count: ") else {
        return false;
    };
    let Some((count, tail)) = rest.split_once(", ") else {
        return false;
    };
    count.parse::<u64>().is_ok_and(|c| c > allowed) && tail == format!("allowed: {allowed}).")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invokes_and_fires_per_minute() {
    let p = Platform::start(
        "[controller.throttles]\ninvocations_per_minute = 3\nconcurrent_invocations = 100\nfires_per_minute = 2\n",
    )
    .await;
    let (st, limits) = p.get("/limits").await;
    assert_eq!(st, 200);
    assert_eq!(limits["invocationsPerMinute"], 3);
    assert_eq!(limits["concurrentInvocations"], 100);
    assert_eq!(limits["firesPerMinute"], 2);
    assert_eq!(limits["maxActionMemory"], 512);
    let (st, _) = p
        .call_as(
            common::GUEST,
            Method::GET,
            &p.url("/api/v1/namespaces/whisk.system/limits"),
            None,
        )
        .await;
    assert_eq!(st, 403);

    p.put_action(
        "echo",
        "python:3",
        ECHO,
        json!({"annotations": [{"key":"web-export","value":true}]}),
    )
    .await;
    // Within a minute at most 3 invokes pass (a minute boundary may reset the window once).
    let mut refused = None;
    for _ in 0..8 {
        let (st, v) = p.invoke("echo", json!({})).await;
        if st == 429 {
            refused = Some(v);
            break;
        }
        assert_eq!(st, 200, "{v}");
    }
    let v = refused.expect("throttled");
    assert!(is_rate_refusal(&v, 3), "{v}");
    // Web actions count against their owner's invokes too.
    let r = p
        .http
        .get(p.url("/api/v1/web/guest/default/echo.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let v: Value = r.json().await.unwrap();
    assert!(is_rate_refusal(&v, 3), "{v}");
    // Another namespace has its own window.
    let system = (
        "789c46b1-71f6-4ed5-8c54-816aa4f8c502",
        "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
    );
    let (st, _) = p
        .call_as(
            system,
            Method::PUT,
            &p.url("/api/v1/namespaces/whisk.system/actions/echo"),
            Some(json!({"exec": {"kind": "python:3", "code": ECHO}})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = p
        .call_as(
            system,
            Method::POST,
            &p.url("/api/v1/namespaces/whisk.system/actions/echo?blocking=true"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200);

    // Fires: 2 per minute (counted whether or not rules are active).
    let (st, _) = p.call(Method::PUT, "/triggers/t", Some(json!({}))).await;
    assert_eq!(st, 200);
    let mut refused = None;
    for _ in 0..6 {
        let (st, v) = p.call(Method::POST, "/triggers/t", Some(json!({}))).await;
        if st == 429 {
            refused = Some(v);
            break;
        }
        assert_eq!(st, 204, "{v}");
    }
    let v = refused.expect("fires throttled");
    assert!(is_rate_refusal(&v, 2), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invocations() {
    let p = Platform::start("[controller.throttles]\nconcurrent_invocations = 1\n").await;
    p.put_action("slow", "python:3", SLOW, json!({})).await;
    p.put_action("echo", "python:3", ECHO, json!({})).await;
    let (st, v) = p.call(Method::POST, "/actions/slow", Some(json!({}))).await;
    assert_eq!(st, 202, "{v}");
    let slow_id = v["activationId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (st, v) = p.invoke("echo", json!({})).await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(
        v["error"],
        "Too many concurrent requests in flight (count: 1, allowed: 1)."
    );
    // Once the slow one is done, invokes pass again.
    p.wait_activation(&slow_id).await;
    let mut st = 0;
    for _ in 0..20 {
        st = p.invoke("echo", json!({})).await.0;
        if st != 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(st, 200);
}
