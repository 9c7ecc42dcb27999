//! End-to-end tests of per-namespace action limit overrides (`[controller.namespace_limits]`)
//! against the real `whirl standalone`.

mod common;

use common::Platform;
use reqwest::Method;
use serde_json::json;

const ECHO: &str = "def main(args):\n    return args\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_get_their_own_action_limits() {
    let p = Platform::start(
        "[controller.namespace_limits.guest]\nmemory_mb = { min = 128, max = 1024, std = 384 }\ntimeout_ms = { min = 100, max = 1000, std = 500 }\n",
    )
    .await;
    let (st, limits) = p.get("/limits").await;
    assert_eq!(st, 200);
    assert_eq!(limits["maxActionMemory"], 1024);
    assert_eq!(limits["maxActionTimeout"], 1000);

    // The namespace's standard limits apply to new actions, its ranges to given ones.
    let a = p.put_action("small", "python:3", ECHO, json!({})).await;
    assert_eq!(a["limits"]["memory"], 384);
    assert_eq!(a["limits"]["timeout"], 500);
    let a = p
        .put_action("big", "python:3", ECHO, json!({"limits": {"memory": 1024}}))
        .await;
    assert_eq!(a["limits"]["memory"], 1024);
    let (st, v) = p
        .call(
            Method::PUT,
            "/actions/huge",
            Some(json!({"exec": {"kind": "python:3", "code": ECHO}, "limits": {"memory": 2048}})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error"],
        "memory size 2048 MB exceeds allowed threshold of 1024 MB"
    );
    let (st, v) = p
        .call(
            Method::PUT,
            "/actions/slow",
            Some(json!({"exec": {"kind": "python:3", "code": ECHO}, "limits": {"timeout": 60000}})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/small?blocking=true&result=true",
            Some(json!({"x": 1})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"x": 1})));

    // Other namespaces keep the system's ranges.
    let system = (
        "789c46b1-71f6-4ed5-8c54-816aa4f8c502",
        "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
    );
    let (st, v) = p
        .call_as(
            system,
            Method::PUT,
            &p.url("/api/v1/namespaces/whisk.system/actions/big"),
            Some(json!({"exec": {"kind": "python:3", "code": ECHO}, "limits": {"memory": 1024}})),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"],
        "memory size 1024 MB exceeds allowed threshold of 512 MB"
    );
}
