//! End-to-end tests of list paging against the real `whirl standalone`: `skip`, `limit` (default
//! 30, 0 = 200, at most 200) and `count` for every collection, pages that neither repeat nor
//! drop entries, and OpenWhisk's refusals of bad values.

mod common;

use std::collections::HashSet;

use common::Platform;
use reqwest::Method;
use serde_json::{json, Value};

const ECHO: &str = "def main(args):\n    return args\n";

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks paging of `collection` holding exactly `total` entries (total > 30).
async fn check_collection(p: &Platform, collection: &str, total: usize) {
    let (st, first) = p.get(&format!("/{collection}")).await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(names(&first).len(), 30, "{collection}: default limit");
    let (_, all) = p.get(&format!("/{collection}?limit=0")).await;
    assert_eq!(
        names(&all).len(),
        total,
        "{collection}: limit=0 is the maximum"
    );
    let (_, rest) = p.get(&format!("/{collection}?skip=30")).await;
    assert_eq!(names(&rest).len(), total - 30, "{collection}: skip");
    let mut seen = HashSet::new();
    for page in 0..total.div_ceil(7) {
        let (_, v) = p
            .get(&format!("/{collection}?limit=7&skip={}", page * 7))
            .await;
        for n in names(&v) {
            assert!(seen.insert(n.clone()), "{collection}: {n} on two pages");
        }
    }
    assert_eq!(seen.len(), total, "{collection}: pages cover everything");
    let (_, n) = p.get(&format!("/{collection}?count=true")).await;
    assert_eq!(n, json!({ collection: total }));
    let (_, n) = p.get(&format!("/{collection}?count=true&skip=5")).await;
    assert_eq!(
        n,
        json!({ collection: total - 5 }),
        "{collection}: count honours skip"
    );
    let (st, v) = p.get(&format!("/{collection}?limit=201")).await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error"],
        format!("The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for {collection}.")
    );
    let (st, _) = p.get(&format!("/{collection}?skip=-1")).await;
    assert_eq!(st, 400);
    let (st, _) = p.get(&format!("/{collection}?limit=ten")).await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_collection_pages() {
    let p = Platform::start("").await;
    const N: usize = 33;
    let pr = &p;
    let put = |path: String, body: Value| async move {
        let (st, v) = pr.call(Method::PUT, &path, Some(body)).await;
        assert_eq!(st, 200, "{path}: {v}");
    };
    for i in 0..N {
        put(
            format!("/actions/a{i}"),
            json!({"exec": {"kind": "python:3", "code": ECHO}}),
        )
        .await;
        put(format!("/packages/p{i}"), json!({})).await;
        put(format!("/triggers/t{i}"), json!({})).await;
    }
    for i in 0..N {
        let (st, v) = p
            .call(
                Method::PUT,
                &format!("/rules/r{i}"),
                Some(json!({"trigger": format!("t{i}"), "action": format!("a{i}")})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    // Packaged actions do not show in (or count for) the namespace's action list.
    for i in 0..3 {
        p.put_action(&format!("p0/x{i}"), "python:3", ECHO, json!({}))
            .await;
    }
    for c in ["actions", "packages", "triggers", "rules"] {
        check_collection(&p, c, N).await;
    }
    // A package's own actions page too.
    let (_, v) = p.get("/actions/p0/?limit=2").await;
    assert_eq!(names(&v).len(), 2);
    let (_, v) = p.get("/actions/p0/?skip=2").await;
    assert_eq!(names(&v).len(), 1);
    let (_, n) = p.get("/actions/p0/?count=true").await;
    assert_eq!(n, json!({"actions": 3}));

    // Activations: 33 invokes.
    for i in 0..N {
        let (st, v) = p
            .call(
                Method::POST,
                &format!("/actions/a{}?blocking=true", i % 3),
                Some(json!({})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let (_, list) = p.get("/activations").await;
    assert_eq!(list.as_array().unwrap().len(), 30);
    let (_, list) = p.get("/activations?limit=0").await;
    assert_eq!(list.as_array().unwrap().len(), N);
    let (_, list) = p.get("/activations?skip=30&limit=10").await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let (_, n) = p.get("/activations?count=true").await;
    assert_eq!(n, json!({"activations": N}));
    let (_, n) = p.get("/activations?count=true&name=a0").await;
    assert_eq!(n, json!({"activations": 11}));
    let (st, v) = p.get("/activations?count=true&docs=true").await;
    assert_eq!(
        (st, v["error"].as_str()),
        (
            400,
            Some("The parameter 'docs' is not permitted with 'count'.")
        )
    );
}
