//! End-to-end tests of `whirl admin namespace` against the real binary and a running platform:
//! created namespaces authenticate and are isolated, keys are stored hashed, per-namespace
//! throttles apply, and deleted namespaces no longer authenticate.

mod common;

use std::process::Command;

use common::Platform;
use reqwest::Method;
use serde_json::{json, Value};

fn admin(p: &Platform, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_whirl"))
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(&p.data_dir)
        .output()
        .expect("run whirl admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn credentials(stdout: &str) -> (String, String) {
    let line = stdout.trim();
    let (u, k) = line.split_once(':').expect("uuid:key");
    (u.to_owned(), k.to_owned())
}

/// Every file under `dir`, as bytes.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_file() {
            out.extend(std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_created_listed_and_deleted() {
    let mut p = Platform::start("").await;

    let (ok, out, err) = admin(
        &p,
        &[
            "namespace",
            "create",
            "alice",
            "--invocations-per-minute",
            "2",
        ],
    );
    assert!(ok, "{err}");
    let (uuid, key) = credentials(&out);
    assert_eq!(key.len(), 64);
    let alice = (uuid.as_str(), key.as_str());
    let (st, v) = p
        .call_as(alice, Method::GET, &p.url("/api/v1/namespaces"), None)
        .await;
    assert_eq!((st, v), (200, json!(["alice"])));

    // The key is nowhere in the data directory in clear.
    let bytes = all_bytes(&p.data_dir);
    assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));

    // Listed without keys; a second create of the same namespace fails.
    let (ok, out, _) = admin(&p, &["namespace", "list"]);
    assert!(ok);
    let list: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = list
        .iter()
        .map(|r| r["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "guest", "whisk.system"]);
    assert_eq!(list[0]["limits"], json!({"invocationsPerMinute": 2}));
    assert!(!out.contains(&key));
    let (ok, _, err) = admin(&p, &["namespace", "create", "alice"]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = admin(&p, &["namespace", "create", "bad/name"]);
    assert!(!ok, "{err}");

    // Alice has her own namespace: her actions, her throttle, no access to guest's.
    let alice_api = |path: &str| p.url(&format!("/api/v1/namespaces/_{path}"));
    let (st, v) = p
        .call_as(
            alice,
            Method::PUT,
            &alice_api("/actions/echo"),
            Some(json!({"exec": {"kind": "python:3", "code": "def main(a):\n    return a\n"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["namespace"], "alice");
    let (st, _) = p
        .call_as(
            alice,
            Method::GET,
            &p.url("/api/v1/namespaces/guest/actions"),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (st, limits) = p
        .call_as(alice, Method::GET, &alice_api("/limits"), None)
        .await;
    assert_eq!(
        (st, limits["invocationsPerMinute"].clone()),
        (200, json!(2))
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (st, _) = p
            .call_as(
                alice,
                Method::POST,
                &alice_api("/actions/echo?blocking=true"),
                Some(json!({})),
            )
            .await;
        statuses.push(st);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // Guest is not throttled by alice's limit.
    let (st, _) = p.get("/actions").await;
    assert_eq!(st, 200);

    // Limits can be changed; deleted namespaces no longer authenticate (after a restart, as the
    // running platform may cache identities).
    let (ok, _, err) = admin(
        &p,
        &["namespace", "limits", "alice", "--fires-per-minute", "5"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = admin(&p, &["namespace", "delete", "alice"]);
    assert!(ok, "{err}");
    let (ok, _, _) = admin(&p, &["namespace", "delete", "alice"]);
    assert!(!ok);
    p.stop().await;
    p.spawn().await;
    let (st, _) = p
        .call_as(alice, Method::GET, &p.url("/api/v1/namespaces"), None)
        .await;
    assert_eq!(st, 401);

    // Given credentials are accepted (e.g. to recreate a known key).
    let (ok, out, err) = admin(
        &p,
        &[
            "namespace",
            "create",
            "bob",
            "--uuid",
            "0000-bob",
            "--key",
            "bobs-secret-key",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "0000-bob:bobs-secret-key");
    let (st, v) = p
        .call_as(
            ("0000-bob", "bobs-secret-key"),
            Method::GET,
            &p.url("/api/v1/namespaces"),
            None,
        )
        .await;
    assert_eq!((st, v), (200, json!(["bob"])));
}
