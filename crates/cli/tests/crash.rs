//! A platform killed with SIGKILL mid-activation: its containers die with it, and at the next start
//! every activation it had accepted ends in exactly one record.

mod common;

use std::time::Duration;

use common::Platform;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_activations_survive_a_crash() {
    let mut p = Platform::start("").await;
    p.put_action(
        "long",
        "python:3",
        "import time\ndef main(a):\n    time.sleep(30)\n    return {'finished': True}\n",
        json!({}),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (st, body) = p.call(Method::POST, "/actions/long", Some(json!({}))).await;
        assert_eq!(st, 202, "{body}");
        ids.push(body["activationId"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut child = p.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    // The sandboxed containers die with the platform (parent-death signal, pid namespaces).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data = p.data_dir.to_string_lossy().to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("cmdline")).ok())
        .filter(|cmd| cmd.contains(&data))
        .collect();
    assert!(
        survivors.is_empty(),
        "container processes outlived the platform: {survivors:?}"
    );

    p.spawn().await;
    for id in &ids {
        let rec = p.wait_activation(id).await;
        assert_eq!(rec["response"]["status"], "whisk internal error", "{rec}");
        assert!(
            rec["response"]["result"]["error"]
                .as_str()
                .unwrap()
                .contains("interrupted"),
            "{rec}"
        );
    }
    // Exactly one record each.
    let (_, count) = p.get("/activations?name=long&count=true").await;
    assert_eq!(count["activations"], 3, "{count}");
}
