//! End-to-end tests of several load balancers in one controller and of the `direct` balancer,
//! through the real binary, real python3 and real node: `python:3` actions go through `sharding`
//! (over the in-memory bus to the in-process invoker's feed), `nodejs:20` actions through
//! `direct` to shared containers, an annotated action through the balancer it names, and each
//! record says which balancer served it. Activations sharing a direct container each get their
//! own result and logs; killing a shared container mid-load ends every activation in it with a
//! record while traffic moves to a new container.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{annotation, invoke_all, log_messages, Platform};
use serde_json::{json, Value};

const CONFIG: &str = r#"
[load_balancer]
type = "sharding"

[load_balancers.direct]
type = "direct"

[load_balancer_resolver]
type = "kind"
default = "sharding"
kinds = { "nodejs:20" = "direct" }
annotation = "loadBalancer"
annotation_allows = ["direct", "sharding"]

[invoker]
id = "invoker0"
prewarm = false
"#;

/// Logs interleaved lines on both streams while its neighbours run, and names its container.
const SHARED: &str = r#"
const container = require('crypto').randomUUID();
let inFlight = 0, peak = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function main(p) {
  inFlight++; peak = Math.max(peak, inFlight);
  for (let i = 0; i < (p.lines ?? 4); i++) {
    console.log(`${p.n} out ${i}`);
    await sleep(10 + (p.n * 7) % 13);
    console.error(`${p.n} err ${i}`);
  }
  await sleep(p.ms || 10);
  inFlight--;
  return { n: p.n, container, peak };
}
"#;

const PY: &str =
    "def main(args):\n    print('py', args.get('n'))\n    return {'py': args.get('n')}\n";

fn balancer(act: &Value) -> &str {
    annotation(act, "loadBalancer")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no loadBalancer annotation: {act}"))
}

/// Waits until the sharding balancer's invoker is up (it takes work after its health test).
async fn wait_invoker_up(p: &Platform) {
    for _ in 0..300 {
        let v: Value = p
            .http
            .get(p.url("/invokers"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["invoker0"] == "up" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("invoker0 never came up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_routed_by_kind_and_annotation_and_records_name_the_balancer() {
    let p = Platform::start(CONFIG).await;
    wait_invoker_up(&p).await;
    p.put_action("py", "python:3", PY, json!({})).await;
    p.put_action(
        "js",
        "nodejs:20",
        SHARED,
        json!({"limits": {"concurrency": 10}}),
    )
    .await;
    // Annotated: a python action through `direct`, a node action through `sharding`, and a name
    // the operator does not allow (the kind decides).
    p.put_action(
        "py-direct",
        "python:3",
        PY,
        json!({"annotations": [{"key": "loadBalancer", "value": "direct"}]}),
    )
    .await;
    p.put_action(
        "js-sharded",
        "nodejs:20",
        SHARED,
        json!({"annotations": [{"key": "loadBalancer", "value": "sharding"}]}),
    )
    .await;
    p.put_action(
        "js-unknown",
        "nodejs:20",
        SHARED,
        json!({"annotations": [{"key": "loadBalancer", "value": "lean"}]}),
    )
    .await;
    for (name, want) in [
        ("py", "sharding"),
        ("js", "direct"),
        ("py-direct", "direct"),
        ("js-sharded", "sharding"),
        ("js-unknown", "direct"),
    ] {
        let (st, act) = p.invoke(name, json!({"n": 1})).await;
        assert_eq!(st, 200, "{name}: {act}");
        assert_eq!(balancer(&act), want, "{name}: {act}");
        // The stored record says the same.
        let stored = p
            .wait_activation(act["activationId"].as_str().unwrap())
            .await;
        assert_eq!(balancer(&stored), want, "{name} (stored): {stored}");
        assert!(
            !log_messages(&stored).is_empty(),
            "{name} has its logs: {stored}"
        );
    }

    // Twenty at once through `direct`, ten per container: each has its own result and exactly
    // its own interleaved lines.
    let results = invoke_all(
        &p,
        "js",
        (0..20).map(|n| json!({ "n": n, "ms": 50 })).collect(),
    )
    .await;
    let mut containers = HashSet::new();
    let mut peak = 0;
    for (n, (st, act)) in results.iter().enumerate() {
        assert_eq!(*st, 200, "{act}");
        assert_eq!(balancer(act), "direct");
        let result = &act["response"]["result"];
        assert_eq!(result["n"], json!(n), "its own result: {act}");
        containers.insert(result["container"].as_str().unwrap().to_string());
        peak = peak.max(result["peak"].as_u64().unwrap());
        // Exactly its own lines, in order on each stream (the two pipes are read apart, so
        // their relative order is not kept across a write to each with no pause between).
        let logs = log_messages(act);
        for (stream, word) in [("stdout", "out"), ("stderr", "err")] {
            let got: Vec<&str> = logs
                .iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, m)| m.as_str())
                .collect();
            let want: Vec<String> = (0..4).map(|i| format!("{n} {word} {i}")).collect();
            assert_eq!(got, want, "exactly its own {stream} lines: {act}");
        }
        assert_eq!(logs.len(), 8, "{act}");
    }
    assert!(
        containers.len() <= 3,
        "twenty activations at concurrency 10 share few containers: {containers:?}"
    );
    assert!(
        peak > 1,
        "activations shared a container at once (peak {peak})"
    );

    // The controller's view covers both balancers.
    let metrics = p
        .http
        .get(p.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for lb in ["direct", "sharding"] {
        assert!(
            metrics.contains(&format!(
                "whirl_controller_active_activations{{balancer=\"{lb}\""
            )),
            "metrics name balancer {lb}"
        );
    }
}

/// Host pids of `node` processes below `root`.
fn node_descendants(root: u32) -> HashSet<u32> {
    let mut parent = std::collections::HashMap::new();
    let mut comm = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let ppid: u32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        parent.insert(pid, ppid);
        comm.insert(pid, name);
    }
    let below = |mut pid: u32| {
        while let Some(&pp) = parent.get(&pid) {
            if pp == root {
                return true;
            }
            if pp <= 1 {
                return false;
            }
            pid = pp;
        }
        false
    };
    comm.iter()
        .filter(|(pid, name)| name.as_str() == "node" && below(**pid))
        .map(|(pid, _)| *pid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_shared_container_mid_load_ends_its_activations_with_records() {
    let p = Platform::start(CONFIG).await;
    wait_invoker_up(&p).await;
    let root = p.child.as_ref().unwrap().id();
    let before = node_descendants(root);
    p.put_action(
        "victim",
        "nodejs:20",
        SHARED,
        json!({"limits": {"concurrency": 50}}),
    )
    .await;
    let (st, warm) = p.invoke("victim", json!({"n": 0, "lines": 1})).await;
    assert_eq!(st, 200, "{warm}");
    let first = warm["response"]["result"]["container"]
        .as_str()
        .unwrap()
        .to_string();
    let ours: Vec<u32> = node_descendants(root)
        .difference(&before)
        .copied()
        .collect();
    assert!(
        !ours.is_empty(),
        "the direct container's node process is found"
    );

    // Forty slow activations in flight in the one container, then kill it.
    let load = invoke_all(
        &p,
        "victim",
        (0..40)
            .map(|n| json!({ "n": n, "lines": 1, "ms": 3000 }))
            .collect(),
    );
    let killer = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for pid in &ours {
            unsafe { kill(*pid as i32, 9) };
        }
    };
    let (results, ()) = tokio::join!(load, killer);
    for (st, act) in &results {
        assert!(*st == 502 || *st == 200, "{st}: {act}");
        assert_eq!(balancer(act), "direct");
        let id = act["activationId"]
            .as_str()
            .expect("every activation has an id");
        let stored = p.wait_activation(id).await;
        assert_eq!(stored["response"]["status"], act["response"]["status"]);
    }
    let failed = results.iter().filter(|(st, _)| *st == 502).count();
    assert!(
        failed >= 30,
        "the activations in the killed container failed ({failed} of 40)"
    );

    // Traffic continues on a new container.
    let after = invoke_all(
        &p,
        "victim",
        (0..10).map(|n| json!({ "n": n, "lines": 1 })).collect(),
    )
    .await;
    for (st, act) in &after {
        assert_eq!(*st, 200, "{act}");
        assert_ne!(
            act["response"]["result"]["container"],
            json!(first),
            "{act}"
        );
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_shared_containers_give_their_memory_back_when_the_pool_needs_it() {
    // Room for two 256 MB containers, both leased by `direct`; a third action still runs.
    let p = Platform::start(
        "[load_balancer]\ntype = \"direct\"\n[container_factory]\ntype = \"process\"\nuser_memory_mb = 512\n[invoker]\nprewarm = false\n",
    )
    .await;
    for name in ["a", "b", "c"] {
        p.put_action(
            name,
            "nodejs:20",
            SHARED,
            json!({"limits": {"concurrency": 5, "memory": 256}}),
        )
        .await;
    }
    for name in ["a", "b", "c", "a"] {
        let (st, act) = p.invoke(name, json!({"n": 1, "lines": 1})).await;
        assert_eq!(st, 200, "{name}: {act}");
        assert_eq!(balancer(&act), "direct");
    }
}
