//! End-to-end tests of intra-container concurrency (`limits.concurrency`) through the real binary
//! and real node processes: activations sharing one container each get their own result and their
//! own logs although their output interleaves, memory is charged once per container, activations
//! beyond a container's slots wait, a crash ends every activation in flight with a record, and
//! kinds that cannot share a container are refused at create time.

mod common;

use std::collections::HashSet;

use common::{annotation, invoke_all, log_messages, Platform};
use reqwest::Method;
use serde_json::{json, Value};

/// Logs five lines on stdout and five on stderr, with awaits between them while its neighbours
/// run, and reports the container it ran in and how many activations were in it at once.
const SHARED: &str = r#"
console.log('loaded');
// Names this container (pids repeat: each container has its own pid namespace).
const container = require('crypto').randomUUID();
let inFlight = 0, peak = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main(p) {
  inFlight++; peak = Math.max(peak, inFlight);
  for (let i = 0; i < 5; i++) {
    console.log(`${p.n} out ${i}`);
    if (p.crash && i === 1) process.exit(7);
    await sleep(20 + (p.n * 13) % 17);
    console.error(`${p.n} err ${i}`);
    await sleep(p.ms || 20);
  }
  inFlight--;
  return { n: p.n, container, peak, id: process.env.__OW_ACTIVATION_ID };
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_activations_share_a_container_with_their_own_results_and_logs() {
    let p = Platform::start("").await;
    p.put_action(
        "shared",
        "nodejs:20",
        SHARED,
        json!({"limits": {"concurrency": 10}}),
    )
    .await;
    // Ten at once from cold: one container is created and the other nine join it while it starts.
    let results = invoke_all(&p, "shared", (0..10).map(|n| json!({ "n": n })).collect()).await;
    let mut containers = HashSet::new();
    let mut peak = 0;
    let mut loaded = 0;
    for (n, (st, act)) in results.iter().enumerate() {
        assert_eq!(*st, 200, "{act}");
        let result = &act["response"]["result"];
        assert_eq!(result["n"], json!(n), "its own result: {act}");
        assert_eq!(
            result["id"], act["activationId"],
            "its own __OW_ACTIVATION_ID"
        );
        containers.insert(result["container"].as_str().unwrap().to_string());
        peak = peak.max(result["peak"].as_u64().unwrap());
        assert_eq!(annotation(act, "limits").unwrap()["concurrency"], 10);

        let mut logs = log_messages(act);
        if logs.first().map(|(_, m)| m.as_str()) == Some("loaded") {
            // The module's own output goes to the activation whose /init loaded it.
            loaded += 1;
            assert!(annotation(act, "initTime").is_some(), "{act}");
            logs.remove(0);
        }
        let mut want = Vec::new();
        for i in 0..5 {
            want.push(("stdout".to_string(), format!("{n} out {i}")));
            want.push(("stderr".to_string(), format!("{n} err {i}")));
        }
        assert_eq!(logs, want, "exactly its own lines, in order: {act}");
    }
    assert_eq!(
        containers.len(),
        1,
        "all ten ran in one container: {containers:?}"
    );
    assert_eq!(loaded, 1, "the module loaded once");
    assert!(peak >= 5, "they ran at the same time (peak {peak})");

    // Warm: ten more, still the one container (no new /init).
    let results = invoke_all(&p, "shared", (0..10).map(|n| json!({ "n": n })).collect()).await;
    for (st, act) in &results {
        assert_eq!(*st, 200, "{act}");
        assert!(containers.contains(act["response"]["result"]["container"].as_str().unwrap()));
        assert!(annotation(act, "initTime").is_none());
        assert_eq!(log_messages(act).len(), 10, "{act}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_charged_once_and_activations_beyond_the_slots_wait() {
    // Room for one 256 MB container, which runs three activations at once.
    let p = Platform::start(
        "[container_factory]\ntype = \"process\"\nuser_memory_mb = 256\n[invoker]\nprewarm = false\n",
    )
    .await;
    p.put_action(
        "three",
        "nodejs:20",
        SHARED,
        json!({"limits": {"concurrency": 3}}),
    )
    .await;
    let results = invoke_all(
        &p,
        "three",
        (0..7).map(|n| json!({ "n": n, "ms": 40 })).collect(),
    )
    .await;
    let mut containers = HashSet::new();
    for (n, (st, act)) in results.iter().enumerate() {
        assert_eq!(*st, 200, "{act}");
        let result = &act["response"]["result"];
        assert_eq!(result["n"], json!(n));
        containers.insert(result["container"].as_str().unwrap().to_string());
        let peak = result["peak"].as_u64().unwrap();
        assert!(peak <= 3, "never more than its concurrency at once: {peak}");
        let own = log_messages(act)
            .into_iter()
            .filter(|(_, m)| m != "loaded")
            .all(|(_, m)| m.starts_with(&format!("{n} ")));
        assert!(own, "{act}");
    }
    assert_eq!(
        containers.len(),
        1,
        "one container held them all: {containers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_ends_every_activation_in_flight_and_traffic_moves_on() {
    let p = Platform::start("").await;
    p.put_action(
        "fragile",
        "nodejs:20",
        SHARED,
        json!({"limits": {"concurrency": 4}}),
    )
    .await;
    let (st, warm) = p.invoke("fragile", json!({"n": 0, "ms": 1})).await;
    assert_eq!(st, 200, "{warm}");
    let first_container = warm["response"]["result"]["container"]
        .as_str()
        .unwrap()
        .to_string();
    let results = invoke_all(
        &p,
        "fragile",
        (0..4)
            .map(|n| json!({ "n": n, "ms": 40, "crash": n == 3 }))
            .collect(),
    )
    .await;
    for (n, (st, act)) in results.iter().enumerate() {
        assert_eq!(*st, 502, "{act}");
        assert_eq!(act["response"]["status"], "action developer error", "{act}");
        // Each record holds only its own lines (some may be missing) and the platform's warning.
        let logs = log_messages(act);
        let (last, own) = logs.split_last().expect("the warning line");
        assert_eq!(
            last.1,
            "The action did not initialize or run as expected. Log data might be missing."
        );
        assert!(
            own.iter().all(|(_, m)| m.starts_with(&format!("{n} "))),
            "{act}"
        );
        let id = act["activationId"].as_str().unwrap();
        p.wait_activation(id).await;
    }
    let (st, after) = p.invoke("fragile", json!({"n": 9, "ms": 1})).await;
    assert_eq!(st, 200, "{after}");
    assert_ne!(
        after["response"]["result"]["container"]
            .as_str()
            .unwrap()
            .to_string(),
        first_container,
        "a new container"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_that_cannot_share_a_container_are_refused_at_create_time() {
    let p = Platform::start("").await;
    let put = |name: &str, body: Value| {
        let path = format!("/actions/{name}?overwrite=true");
        let p = &p;
        async move { p.call(Method::PUT, &path, Some(body)).await }
    };
    {
        let (kind, code) = ("python:3", "def main(a):\n    return a\n");
        let (st, body) = put(
            "solo",
            json!({"exec": {"kind": kind, "code": code}, "limits": {"concurrency": 2}}),
        )
        .await;
        assert_eq!(st, 400, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("concurrency 2 is not supported for kind '{kind}'"))
                && error.contains("'native', 'nodejs:20'"),
            "{body}"
        );
        assert!(body["code"].is_string(), "{{error, code}}: {body}");
    }
    // An update that raises the limit of an existing python action is refused too, and the
    // action keeps its old limit.
    p.put_action(
        "solo",
        "python:3",
        "def main(a):\n    return a\n",
        json!({}),
    )
    .await;
    let (st, body) = put("solo", json!({"limits": {"concurrency": 5}})).await;
    assert_eq!(st, 400, "{body}");
    let (_, stored) = p.get("/actions/solo").await;
    assert_eq!(stored["limits"]["concurrency"], 1);
    // Switching a concurrent node action to python keeps the limit, so it is refused as well.
    p.put_action(
        "node",
        "nodejs:20",
        SHARED,
        json!({"limits": {"concurrency": 5}}),
    )
    .await;
    let (st, body) = put(
        "node",
        json!({"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    // Above the configured maximum.
    let (st, body) = put(
        "node",
        json!({"exec": {"kind": "nodejs:20", "code": SHARED}, "limits": {"concurrency": 501}}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        body["error"],
        "concurrency 501 exceeds allowed threshold of 500"
    );
}

/// Reports its cgroup (which names its container) and logs with pauses while its neighbours run.
const NATIVE: &str = r#"#!/bin/sh
while read -r line; do
  n=$(printf '%s' "$line" | sed -n 's/.*"n": *\([0-9]*\).*/\1/p')
  for i in 1 2 3; do
    echo "$n out $i"
    sleep 0.05
    echo "$n err $i" >&2
  done
  cg=$(tr -d '\n' < /proc/self/cgroup)
  echo "{\"n\":$n,\"pid\":$$,\"cgroup\":\"$cg\"}" >&3
done
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_actions_run_one_executable_per_slot_in_one_container() {
    let p = Platform::start("").await;
    p.put_action(
        "loop",
        "native",
        NATIVE,
        json!({"limits": {"concurrency": 4}}),
    )
    .await;
    let results = invoke_all(&p, "loop", (0..4).map(|n| json!({ "n": n })).collect()).await;
    let mut cgroups = HashSet::new();
    let mut pids = HashSet::new();
    for (n, (st, act)) in results.iter().enumerate() {
        assert_eq!(*st, 200, "{act}");
        let result = &act["response"]["result"];
        assert_eq!(result["n"], json!(n), "{act}");
        cgroups.insert(result["cgroup"].as_str().unwrap().to_string());
        pids.insert(result["pid"].as_u64().unwrap());
        // Each stream in order (across streams, lines printed without a pause between them may
        // be read in either order).
        for (stream, kind) in [("stdout", "out"), ("stderr", "err")] {
            let got: Vec<String> = log_messages(act)
                .into_iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, m)| m)
                .collect();
            let want: Vec<String> = (1..=3).map(|i| format!("{n} {kind} {i}")).collect();
            assert_eq!(got, want, "exactly its own {stream} lines: {act}");
        }
        assert_eq!(log_messages(act).len(), 6, "{act}");
    }
    assert_eq!(cgroups.len(), 1, "one container: {cgroups:?}");
    assert!(
        pids.len() > 1,
        "several copies of the executable ran at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_stay_with_their_activation() {
    let p = Platform::start("").await;
    let code = "async function main(p) { console.log(p.c.repeat(p.k)); return {} }";
    p.put_action(
        "long",
        "nodejs:20",
        code,
        json!({"limits": {"concurrency": 2}}),
    )
    .await;
    for (c, k) in [("é", 20_000), ("x", 40_000), ("😀", 9_000)] {
        let (st, act) = p.invoke("long", json!({"c": c, "k": k})).await;
        assert_eq!(st, 200, "{act}");
        let logs = log_messages(&act);
        assert!(logs.len() > 1, "split into several lines: {}", logs.len());
        let joined: String = logs.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(joined, c.repeat(k), "nothing lost or mangled");
    }
}
