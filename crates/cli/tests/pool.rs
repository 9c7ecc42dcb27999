//! End-to-end tests of the invoker's container pool and limits through the real binary: memory
//! exhaustion, log truncation, idle reaping, eviction and queueing when memory is full.

mod common;

use std::time::{Duration, Instant};

use common::{annotation, Platform};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_exhaustion_and_log_truncation() {
    let p = Platform::start("").await;
    // Allocates far past its 128 MB limit: the container is killed and the record says why.
    p.put_action(
        "hog",
        "python:3",
        "def main(a):\n    blocks = []\n    for _ in range(64):\n        blocks.append(bytearray(16 << 20))\n    return {'survived': len(blocks)}\n",
        json!({"limits": {"memory": 128}}),
    )
    .await;
    let (st, act) = p.invoke("hog", json!({})).await;
    assert_eq!(st, 502, "{act}");
    assert_eq!(act["response"]["status"], "action developer error", "{act}");
    assert_eq!(
        act["response"]["result"]["error"],
        "The action exhausted its memory and was aborted."
    );

    // 1 MB log limit, 3 MB of output: OpenWhisk's truncation line ends the logs.
    p.put_action(
        "chatty",
        "python:3",
        "def main(a):\n    for i in range(30000):\n        print('x' * 100, i)\n    return {'done': True}\n",
        json!({"limits": {"logs": 1}}),
    )
    .await;
    let (st, act) = p.invoke("chatty", json!({})).await;
    assert_eq!(st, 200, "{act}");
    let logs = act["logs"].as_array().unwrap();
    let last = logs.last().unwrap().as_str().unwrap();
    assert!(
        last.ends_with("stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."),
        "{last}"
    );
    // The limit counts message bytes (as OpenWhisk's does), not the timestamp and stream prefix.
    let kept: usize = logs[..logs.len() - 1]
        .iter()
        .map(|l| {
            l.as_str()
                .unwrap()
                .split_once("stdout: ")
                .expect("stdout line")
                .1
                .len()
        })
        .sum();
    assert!(
        kept <= 1 << 20 && kept > 1_000_000,
        "about 1 MB of log text kept, got {kept} bytes"
    );
    // The next activation's logs start clean: nothing of the discarded output leaks into them.
    p.put_action(
        "quiet",
        "python:3",
        "def main(a):\n    print('only me')\n    return {}\n",
        json!({"limits": {"logs": 1}}),
    )
    .await;
    let (_, act) = p.invoke("chatty", json!({})).await;
    assert!(act["logs"].as_array().unwrap().len() > 1000);
    let (_, act) = p.invoke("quiet", json!({})).await;
    assert_eq!(act["logs"].as_array().unwrap().len(), 1, "{act}");

    // Log limit 0: nothing is collected.
    p.put_action(
        "mute",
        "python:3",
        "def main(a):\n    print('hidden')\n    return {}\n",
        json!({"limits": {"logs": 0}}),
    )
    .await;
    let (st, act) = p.invoke("mute", json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(act["logs"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_containers_are_reaped() {
    let p = Platform::start(
        "[invoker]\npause_grace_ms = 200\nidle_timeout_ms = 800\nprewarm = false\n",
    )
    .await;
    p.put_action(
        "once",
        "nodejs:20",
        "function main() { return {}; }",
        json!({}),
    )
    .await;
    let (_, first) = p.invoke("once", json!({})).await;
    assert!(annotation(&first, "initTime").is_some());
    let (_, warm) = p.invoke("once", json!({})).await;
    assert!(annotation(&warm, "initTime").is_none(), "warm: {warm}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (st, again) = p.invoke("once", json!({})).await;
    assert_eq!(st, 200);
    assert!(
        annotation(&again, "initTime").is_some(),
        "an idle container past its timeout is destroyed: {again}"
    );
    let left = std::fs::read_dir(p.data_dir.join("containers"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .map(|e| {
                    e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                        && !e.file_name().to_string_lossy().starts_with('.')
                })
                .unwrap_or(false)
        });
    assert_eq!(
        left.count(),
        1,
        "only the new container's directory remains"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_memory_evicts_idle_and_queues_busy() {
    // Room for exactly one 256 MB container.
    let p = Platform::start(
        "[container_factory]\ntype = \"process\"\nuser_memory_mb = 256\n[invoker]\nprewarm = false\n",
    )
    .await;
    let sleepy = "import time\ndef main(a):\n    time.sleep(a.get('s', 0))\n    return {'who': a.get('who')}\n";
    p.put_action("a", "python:3", sleepy, json!({})).await;
    p.put_action("b", "python:3", sleepy, json!({})).await;
    let (st, _) = p.invoke("a", json!({})).await;
    assert_eq!(st, 200);
    // b needs the memory a's idle container holds: a is evicted, b starts cold.
    let (st, b) = p.invoke("b", json!({"who": "b"})).await;
    assert_eq!(st, 200, "{b}");
    assert!(annotation(&b, "initTime").is_some());
    let (_, a) = p.invoke("a", json!({})).await;
    assert!(
        annotation(&a, "initTime").is_some(),
        "a was evicted, so it starts cold again: {a}"
    );

    // Three concurrent 0.5 s activations with room for one container: they queue and all finish.
    let t = Instant::now();
    let calls = (0..3).map(|i| {
        let p = &p;
        async move {
            p.call(
                Method::POST,
                "/actions/a?blocking=true&result=true",
                Some(json!({"s": 0.5, "who": i})),
            )
            .await
        }
    });
    let results = futures::future::join_all(calls).await;
    for (i, (st, res)) in results.iter().enumerate() {
        assert_eq!(*st, 200, "{res}");
        assert_eq!(res["who"], i);
    }
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "they ran one after another in the single container"
    );
}
