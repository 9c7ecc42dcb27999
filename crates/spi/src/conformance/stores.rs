//! Conformance suite: stores SPI.
//!
//! [`entity_store`], [`activation_store`] and [`subject_store`] exercise every rule documented in
//! [`crate::store`] through the traits alone. Namespaces, owners and uuids carry a unique prefix
//! per run, so the suites can run against a shared database server.

use std::collections::HashSet;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use whirl_model::{Activation, ActivationId, ActivationResponse, Params, UserLimits};

use crate::store::{
    ActivationQuery, ActivationStore, Collection, EntityStore, ListQuery, PendingActivation,
    PutMode, StoreError, StoreOutcome, SubjectRecord, SubjectStore,
};

/// A name unique to this process and call.
fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "conf-{what}-{}-{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn now_ms() -> u64 {
    whirl_model::time::now_ms()
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn names(docs: &[crate::store::Document]) -> Vec<&str> {
    docs.iter().map(|d| d.name.as_str()).collect()
}

fn list(prefix: Option<&str>, skip: usize, limit: usize) -> ListQuery {
    ListQuery {
        prefix: prefix.map(str::to_string),
        skip,
        limit,
    }
}

/// Writes so that each gets a later `updated` than the one before (stores stamp whole ms).
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

// ------------------------------------------------------------------------------------------------
// Entities

/// Runs the entity store suite against `s`. Panics name the rule broken.
pub async fn entity_store(s: &dyn EntityStore) {
    revisions_and_conflicts(s).await;
    concurrent_updates_one_wins(s).await;
    deletes(s).await;
    list_order_paging_prefix_count(s).await;
}

async fn revisions_and_conflicts(s: &dyn EntityStore) {
    let ns = unique("ns");
    let c = Collection::Actions;
    let body1 = json!({"exec": {"kind": "nodejs:20", "code": "function main(){}"}, "n": 1, "ü": [1, 2.5, null, "ß"]});
    assert!(
        s.get(c, &ns, "a").await.expect("get").is_none(),
        "get: a missing document is None"
    );

    let t0 = now_ms();
    let rev = s
        .put(c, &ns, "a", &body1, PutMode::Create)
        .await
        .expect("create");
    let t1 = now_ms();
    assert_eq!(rev, 1, "revisions: a created document starts at revision 1");
    let d = s
        .get(c, &ns, "a")
        .await
        .expect("get")
        .expect("get: a created document is found");
    assert_eq!(
        (d.namespace.as_str(), d.name.as_str(), d.rev),
        (ns.as_str(), "a", 1),
        "get: identity and revision"
    );
    assert_eq!(d.body, body1, "get: the body round-trips exactly");
    assert!(
        d.updated + 60_000 >= t0 && d.updated <= t1 + 60_000,
        "updated: epoch ms of the write (got {}, wrote between {t0} and {t1})",
        d.updated
    );

    let r = s
        .put(c, &ns, "a", &json!({"other": true}), PutMode::Create)
        .await;
    assert!(
        is_conflict(&r),
        "create: creating an existing document is a Conflict (got {r:?})"
    );
    let d = s.get(c, &ns, "a").await.expect("get").expect("found");
    assert_eq!(
        (d.rev, &d.body),
        (1, &body1),
        "create: a conflicting create changes nothing"
    );

    let body2 = json!({"n": 2});
    let rev = s
        .put(c, &ns, "a", &body2, PutMode::Update { rev: 1 })
        .await
        .expect("update");
    assert_eq!(
        rev, 2,
        "revisions: each update increases the revision by one"
    );
    let d = s.get(c, &ns, "a").await.expect("get").expect("found");
    assert_eq!(
        (d.rev, &d.body),
        (2, &body2),
        "update: replaces the body and returns the new revision"
    );

    let r = s
        .put(c, &ns, "a", &json!({"n": 3}), PutMode::Update { rev: 1 })
        .await;
    assert!(
        is_conflict(&r),
        "update: a stale revision is a Conflict (got {r:?})"
    );
    let r = s
        .put(c, &ns, "a", &json!({"n": 3}), PutMode::Update { rev: 7 })
        .await;
    assert!(
        is_conflict(&r),
        "update: a future revision is a Conflict (got {r:?})"
    );
    let d = s.get(c, &ns, "a").await.expect("get").expect("found");
    assert_eq!(
        (d.rev, &d.body),
        (2, &body2),
        "update: a conflicting update changes nothing"
    );

    let r = s
        .put(c, &ns, "missing", &json!({}), PutMode::Update { rev: 1 })
        .await;
    assert!(
        is_conflict(&r),
        "update: updating a missing document is a Conflict (got {r:?})"
    );
    assert!(
        s.get(c, &ns, "missing").await.expect("get").is_none(),
        "update: a failed update creates nothing"
    );

    assert!(
        s.get(Collection::Packages, &ns, "a")
            .await
            .expect("get")
            .is_none(),
        "collections: an action is not visible as a package"
    );
    assert!(
        s.get(c, &unique("ns"), "a").await.expect("get").is_none(),
        "namespaces: documents are per namespace"
    );
    let rev = s
        .put(
            Collection::Packages,
            &ns,
            "a",
            &json!({"pkg": 1}),
            PutMode::Create,
        )
        .await
        .expect("create");
    assert_eq!(
        rev, 1,
        "collections: the same name in another collection is a separate document"
    );
    let d = s.get(c, &ns, "a").await.expect("get").expect("found");
    assert_eq!(
        d.body, body2,
        "collections: writing a package leaves the action alone"
    );
}

async fn concurrent_updates_one_wins(s: &dyn EntityStore) {
    let ns = unique("ns");
    let c = Collection::Actions;
    s.put(c, &ns, "race", &json!({"v": 0}), PutMode::Create)
        .await
        .expect("create");
    let bodies: Vec<Value> = (1..=8).map(|i| json!({"v": i})).collect();
    let results = join_all(
        bodies
            .iter()
            .map(|b| s.put(c, &ns, "race", b, PutMode::Update { rev: 1 })),
    )
    .await;
    let winners: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "update: of concurrent updates at one revision exactly one wins ({results:?})"
    );
    assert!(
        results.iter().filter(|r| r.is_err()).all(is_conflict),
        "update: the losers of a race get Conflict ({results:?})"
    );
    let d = s.get(c, &ns, "race").await.expect("get").expect("found");
    assert_eq!(
        (d.rev, &d.body),
        (2, &bodies[winners[0]]),
        "update: all or nothing: the winner's body, whole"
    );

    let fresh: Vec<Value> = (0..8).map(|i| json!({"c": i})).collect();
    let creates = join_all(
        fresh
            .iter()
            .map(|b| s.put(c, &ns, "fresh", b, PutMode::Create)),
    )
    .await;
    assert_eq!(
        creates.iter().filter(|r| r.is_ok()).count(),
        1,
        "create: of concurrent creates exactly one wins ({creates:?})"
    );
    assert!(
        creates.iter().filter(|r| r.is_err()).all(is_conflict),
        "create: the losers get Conflict"
    );
}

async fn deletes(s: &dyn EntityStore) {
    let ns = unique("ns");
    let c = Collection::Triggers;
    let body = json!({"t": 1});
    s.put(c, &ns, "t", &body, PutMode::Create)
        .await
        .expect("create");
    s.put(c, &ns, "t", &body, PutMode::Update { rev: 1 })
        .await
        .expect("update");

    let r = s.delete(c, &ns, "t", Some(1)).await;
    assert!(
        is_conflict(&r),
        "delete: a delete at a stale revision is a Conflict (got {r:?})"
    );
    assert!(
        s.get(c, &ns, "t").await.expect("get").is_some(),
        "delete: a conflicting delete deletes nothing"
    );

    let d = s
        .delete(c, &ns, "t", Some(2))
        .await
        .expect("delete")
        .expect("delete: returns what it deleted");
    assert_eq!(
        (d.name.as_str(), d.rev, &d.body),
        ("t", 2, &body),
        "delete: returns the deleted document"
    );
    assert!(
        s.get(c, &ns, "t").await.expect("get").is_none(),
        "delete: the document is gone"
    );
    assert!(
        s.delete(c, &ns, "t", None).await.expect("delete").is_none(),
        "delete: deleting a missing document is None"
    );
    assert!(
        s.delete(c, &ns, "t", Some(2))
            .await
            .expect("delete")
            .is_none(),
        "delete: deleting a missing document at a revision is None"
    );

    s.put(c, &ns, "u", &body, PutMode::Create)
        .await
        .expect("create");
    let d = s
        .delete(c, &ns, "u", None)
        .await
        .expect("delete")
        .expect("delete without revision");
    assert_eq!(
        d.rev, 1,
        "delete: without a revision deletes whatever is there"
    );
    let rev = s
        .put(c, &ns, "u", &body, PutMode::Create)
        .await
        .expect("create after delete");
    assert_eq!(
        rev, 1,
        "revisions: a document created again after a delete starts at 1"
    );
}

async fn list_order_paging_prefix_count(s: &dyn EntityStore) {
    let ns = unique("ns");
    let c = Collection::Actions;
    assert!(
        s.list(c, &ns, &list(None, 0, 0))
            .await
            .expect("list")
            .is_empty(),
        "list: an empty namespace"
    );
    assert_eq!(
        s.count(c, &ns, None).await.expect("count"),
        0,
        "count: an empty namespace"
    );
    for name in ["a", "b", "c"] {
        s.put(c, &ns, name, &json!({"name": name}), PutMode::Create)
            .await
            .expect("create");
        tick().await;
    }
    s.put(
        c,
        &ns,
        "a",
        &json!({"name": "a2"}),
        PutMode::Update { rev: 1 },
    )
    .await
    .expect("update");
    tick().await;
    // Other collections and namespaces must not show up.
    s.put(Collection::Rules, &ns, "r", &json!({}), PutMode::Create)
        .await
        .expect("create");
    s.put(c, &unique("ns"), "z", &json!({}), PutMode::Create)
        .await
        .expect("create");

    let all = s.list(c, &ns, &list(None, 0, 0)).await.expect("list");
    assert_eq!(
        names(&all),
        ["a", "c", "b"],
        "list: most recently updated first; limit 0 means no limit"
    );
    assert_eq!(
        all[0].body,
        json!({"name": "a2"}),
        "list: returns current bodies"
    );
    assert_eq!(all[0].rev, 2, "list: returns current revisions");
    assert_eq!(
        names(&s.list(c, &ns, &list(None, 0, 2)).await.expect("list")),
        ["a", "c"],
        "list: limit"
    );
    assert_eq!(
        names(&s.list(c, &ns, &list(None, 1, 1)).await.expect("list")),
        ["c"],
        "list: skip then limit"
    );
    assert_eq!(
        names(&s.list(c, &ns, &list(None, 2, 0)).await.expect("list")),
        ["b"],
        "list: skip without limit"
    );
    assert!(
        s.list(c, &ns, &list(None, 3, 5))
            .await
            .expect("list")
            .is_empty(),
        "list: skipping past the end"
    );
    assert_eq!(
        s.count(c, &ns, None).await.expect("count"),
        3,
        "count: every document of the collection"
    );

    for name in ["pkg/x", "pkg/y", "pkgother", "p_q", "pxq", "P%/a"] {
        tick().await;
        s.put(c, &ns, name, &json!({}), PutMode::Create)
            .await
            .expect("create");
    }
    let pkg = s
        .list(c, &ns, &list(Some("pkg/"), 0, 0))
        .await
        .expect("list");
    assert_eq!(
        names(&pkg),
        ["pkg/y", "pkg/x"],
        "list: prefix selects names starting with it, newest first"
    );
    assert_eq!(
        s.count(c, &ns, Some("pkg/")).await.expect("count"),
        2,
        "count: with a prefix"
    );
    let lit = s.list(c, &ns, &list(Some("p_"), 0, 0)).await.expect("list");
    assert_eq!(
        names(&lit),
        ["p_q"],
        "list: a prefix is literal ('_' is no wildcard)"
    );
    let lit = s.list(c, &ns, &list(Some("P%"), 0, 0)).await.expect("list");
    assert_eq!(
        names(&lit),
        ["P%/a"],
        "list: a prefix is literal and case-sensitive ('%' is no wildcard)"
    );
    assert_eq!(
        s.count(c, &ns, Some("p")).await.expect("count"),
        5,
        "count: prefix 'p' is case-sensitive"
    );
    assert_eq!(
        s.count(c, &ns, Some("")).await.expect("count"),
        9,
        "count: an empty prefix matches everything"
    );
    assert_eq!(
        names(
            &s.list(c, &ns, &list(Some("pkg/"), 1, 1))
                .await
                .expect("list")
        ),
        ["pkg/x"],
        "list: paging within a prefix"
    );
    assert_eq!(
        s.count(c, &ns, None).await.expect("count"),
        9,
        "count: every document"
    );

    // Paging walks the whole list exactly once even when writes share a millisecond.
    let ns2 = unique("ns");
    for i in 0..12 {
        s.put(c, &ns2, &format!("e{i}"), &json!({}), PutMode::Create)
            .await
            .expect("create");
    }
    let mut paged = Vec::new();
    for page in 0..4 {
        let got = s
            .list(c, &ns2, &list(None, page * 5, 5))
            .await
            .expect("list");
        paged.extend(got.into_iter().map(|d| d.name));
    }
    let distinct: HashSet<&String> = paged.iter().collect();
    assert_eq!(
        (paged.len(), distinct.len()),
        (12, 12),
        "list: the order is total, so paging neither repeats nor skips"
    );
}

// ------------------------------------------------------------------------------------------------
// Activations

fn activation(ns: &str, name: &str, path: Option<&str>, start: u64) -> Activation {
    let mut annotations = Params::new();
    if let Some(p) = path {
        annotations.put("path", json!(p));
    }
    annotations.put("kind", json!("nodejs:20"));
    annotations.put(
        "limits",
        json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}),
    );
    Activation {
        namespace: ns.to_string(),
        name: name.to_string(),
        version: "0.0.1".into(),
        subject: "conformance".into(),
        activation_id: ActivationId::generate(),
        start,
        end: start + 5,
        duration: Some(5),
        publish: false,
        cause: None,
        response: ActivationResponse::success(json!({"greeting": format!("hello {name}")})),
        logs: vec![format!("2024-01-01T00:00:00.000000000Z stdout: {name} ran")],
        annotations,
    }
}

fn query(ns: &str) -> ActivationQuery {
    ActivationQuery {
        namespace: ns.to_string(),
        ..Default::default()
    }
}

fn ids(v: &[Activation]) -> Vec<ActivationId> {
    v.iter().map(|a| a.activation_id).collect()
}

fn pending(ns: &str, owner: &str, accepted_at: u64) -> PendingActivation {
    PendingActivation {
        activation_id: ActivationId::generate(),
        namespace: ns.to_string(),
        path: format!("{ns}/pkg/act"),
        version: "0.0.1".into(),
        subject: "conformance".into(),
        kind: "python:3".into(),
        accepted_at,
        owner: owner.to_string(),
        cause: Some(ActivationId::generate()),
    }
}

/// Runs the activation store suite against `s`. Panics name the rule broken.
pub async fn activation_store(s: &dyn ActivationStore) {
    store_get_delete(s).await;
    first_record_wins(s).await;
    list_filters(s).await;
    journal_and_orphans(s).await;
}

async fn store_get_delete(s: &dyn ActivationStore) {
    let ns = unique("ns");
    let mut a = activation(&ns, "hello", Some(&format!("{ns}/hello")), now_ms());
    a.cause = Some(ActivationId::generate());
    a.response = ActivationResponse::developer_error("boom");
    assert!(
        s.get(&ns, &a.activation_id).await.expect("get").is_none(),
        "get: a missing record is None"
    );
    assert_eq!(
        s.store(&a).await.expect("store"),
        StoreOutcome::Stored,
        "store: a new record is Stored"
    );
    let got = s
        .get(&ns, &a.activation_id)
        .await
        .expect("get")
        .expect("get: a stored record is found");
    assert_eq!(got, a, "get: the record round-trips exactly");
    assert!(
        s.get(&unique("ns"), &a.activation_id)
            .await
            .expect("get")
            .is_none(),
        "get: a record is only found in its own namespace"
    );
    assert!(
        !s.delete(&unique("ns"), &a.activation_id)
            .await
            .expect("delete"),
        "delete: another namespace cannot delete a record"
    );
    assert!(
        s.delete(&ns, &a.activation_id).await.expect("delete"),
        "delete: true when a record was deleted"
    );
    assert!(
        s.get(&ns, &a.activation_id).await.expect("get").is_none(),
        "delete: the record is gone"
    );
    assert!(
        !s.delete(&ns, &a.activation_id).await.expect("delete"),
        "delete: false when there was nothing"
    );
}

async fn first_record_wins(s: &dyn ActivationStore) {
    let ns = unique("ns");
    let first = activation(&ns, "hello", Some(&format!("{ns}/hello")), now_ms());
    let mut second = first.clone();
    second.response = ActivationResponse::whisk_error("late duplicate");
    second.start += 10;
    assert_eq!(
        s.store(&first).await.expect("store"),
        StoreOutcome::Stored,
        "store: a new record is Stored"
    );
    assert_eq!(
        s.store(&second).await.expect("store"),
        StoreOutcome::AlreadyStored,
        "store: a second record for an id is AlreadyStored"
    );
    assert_eq!(
        s.get(&ns, &first.activation_id)
            .await
            .expect("get")
            .as_ref(),
        Some(&first),
        "store: the first record wins; a second store changes nothing"
    );
    assert_eq!(
        s.count(&query(&ns)).await.expect("count"),
        1,
        "store: a duplicate adds no record"
    );

    // Concurrent stores of one id: exactly one is Stored.
    let racer = activation(&ns, "race", None, now_ms());
    let variants: Vec<Activation> = (0..8)
        .map(|i| {
            let mut a = racer.clone();
            a.response = ActivationResponse::success(json!({"variant": i}));
            a
        })
        .collect();
    let outcomes: Vec<StoreOutcome> = join_all(variants.iter().map(|a| s.store(a)))
        .await
        .into_iter()
        .map(|r| r.expect("store"))
        .collect();
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| **o == StoreOutcome::Stored)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "store: of concurrent stores of one id exactly one is Stored ({outcomes:?})"
    );
    assert_eq!(
        s.get(&ns, &racer.activation_id)
            .await
            .expect("get")
            .as_ref(),
        Some(&variants[winners[0]]),
        "store: the record kept is the one reported Stored"
    );

    // Many concurrent stores of distinct ids are all Stored.
    let many: Vec<Activation> = (0..64)
        .map(|i| activation(&ns, "many", None, 1_000 + i))
        .collect();
    let outcomes = join_all(many.iter().map(|a| s.store(a))).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(StoreOutcome::Stored))),
        "store: concurrent stores of distinct ids are all Stored"
    );
    assert_eq!(
        s.count(&ActivationQuery {
            name: Some("many".into()),
            ..query(&ns)
        })
        .await
        .expect("count"),
        64,
        "store: every concurrent store is kept"
    );
}

async fn list_filters(s: &dyn ActivationStore) {
    let ns = unique("ns");
    let base = 1_700_000_000_000u64;
    // Ten records of `hello`, stored out of order, starting at base+0 .. base+9.
    let mut hello: Vec<Activation> = (0..10)
        .map(|i| activation(&ns, "hello", Some(&format!("{ns}/hello")), base + i))
        .collect();
    for i in [3, 7, 0, 9, 1, 5, 8, 2, 6, 4] {
        s.store(&hello[i]).await.expect("store");
    }
    hello.reverse(); // newest start first
    let packaged = activation(&ns, "hello", Some(&format!("{ns}/pkg/hello")), base + 4);
    let bare = activation(&ns, "bare", None, base + 20);
    let other_ns = activation(&unique("ns"), "hello", Some("elsewhere/hello"), base + 5);
    for a in [&packaged, &bare, &other_ns] {
        s.store(a).await.expect("store");
    }

    let all = s.list(&query(&ns)).await.expect("list");
    assert_eq!(
        all.len(),
        12,
        "list: every record of the namespace and no other (limit 0 means no limit)"
    );
    assert!(
        all.windows(2).all(|w| w[0].start >= w[1].start),
        "list: newest start first ({:?})",
        all.iter().map(|a| a.start).collect::<Vec<_>>()
    );
    assert_eq!(all[0], bare, "list: newest first, full records");
    assert_eq!(
        s.count(&query(&ns)).await.expect("count"),
        12,
        "count: every record of the namespace"
    );

    let by_name = |name: &str| ActivationQuery {
        name: Some(name.into()),
        ..query(&ns)
    };
    let got = s.list(&by_name("hello")).await.expect("list");
    assert_eq!(
        ids(&got),
        ids(&hello),
        "list name: `name` matches the unpackaged action only, newest first"
    );
    let got = s.list(&by_name("pkg/hello")).await.expect("list");
    assert_eq!(
        ids(&got),
        vec![packaged.activation_id],
        "list name: `pkg/name` matches the packaged action"
    );
    let got = s.list(&by_name("bare")).await.expect("list");
    assert_eq!(
        ids(&got),
        vec![bare.activation_id],
        "list name: without a path annotation the record's name counts"
    );
    assert!(
        s.list(&by_name("hell")).await.expect("list").is_empty(),
        "list name: names match exactly"
    );
    assert_eq!(
        s.count(&by_name("hello")).await.expect("count"),
        10,
        "count: with a name"
    );

    let page = s
        .list(&ActivationQuery {
            skip: 2,
            limit: 3,
            ..by_name("hello")
        })
        .await
        .expect("list");
    assert_eq!(ids(&page), ids(&hello[2..5]), "list: skip then limit");
    assert_eq!(
        s.count(&ActivationQuery {
            skip: 2,
            limit: 3,
            ..by_name("hello")
        })
        .await
        .expect("count"),
        8,
        "count: honours skip (not limit), as OpenWhisk's count does"
    );
    assert_eq!(
        s.count(&ActivationQuery {
            skip: 50,
            ..by_name("hello")
        })
        .await
        .expect("count"),
        0,
        "count: skipping past the end counts 0"
    );

    let range = ActivationQuery {
        since: Some(base + 3),
        upto: Some(base + 6),
        ..by_name("hello")
    };
    let got = s.list(&range).await.expect("list");
    assert_eq!(
        got.iter().map(|a| a.start - base).collect::<Vec<_>>(),
        [6, 5, 4, 3],
        "list since/upto: both bounds are inclusive, on start"
    );
    assert_eq!(
        s.count(&range).await.expect("count"),
        4,
        "count: since/upto"
    );
    let since = ActivationQuery {
        since: Some(base + 8),
        ..query(&ns)
    };
    assert_eq!(
        s.list(&since)
            .await
            .expect("list")
            .iter()
            .map(|a| a.start - base)
            .collect::<Vec<_>>(),
        [20, 9, 8],
        "list since: alone"
    );
    let upto = ActivationQuery {
        upto: Some(base + 1),
        ..query(&ns)
    };
    assert_eq!(
        s.list(&upto)
            .await
            .expect("list")
            .iter()
            .map(|a| a.start - base)
            .collect::<Vec<_>>(),
        [1, 0],
        "list upto: alone"
    );
    let mixed = ActivationQuery {
        since: Some(base + 4),
        upto: Some(base + 4),
        ..query(&ns)
    };
    let got: HashSet<ActivationId> = ids(&s.list(&mixed).await.expect("list"))
        .into_iter()
        .collect();
    assert_eq!(
        got,
        [hello[5].activation_id, packaged.activation_id]
            .into_iter()
            .collect(),
        "list: since = upto selects that millisecond, packaged or not"
    );

    // Paging walks the whole list exactly once even when starts are equal.
    let ns2 = unique("ns");
    for _ in 0..12 {
        s.store(&activation(&ns2, "same", None, base))
            .await
            .expect("store");
    }
    let mut paged = Vec::new();
    for page in 0..4 {
        let got = s
            .list(&ActivationQuery {
                skip: page * 5,
                limit: 5,
                ..query(&ns2)
            })
            .await
            .expect("list");
        paged.extend(ids(&got));
    }
    let distinct: HashSet<&ActivationId> = paged.iter().collect();
    assert_eq!(
        (paged.len(), distinct.len()),
        (12, 12),
        "list: the order is total, so paging neither repeats nor skips"
    );
}

async fn journal_and_orphans(s: &dyn ActivationStore) {
    let ns = unique("ns");
    let owner_a = unique("controller");
    let owner_b = unique("invoker");
    let t = now_ms();
    let p1 = pending(&ns, &owner_a, t);
    let p2 = pending(&ns, &owner_a, t + 1);
    let p3 = pending(&ns, &owner_b, t);
    for p in [&p1, &p2, &p3] {
        s.journal(p).await.expect("journal");
    }
    assert!(
        s.orphans(&unique("nobody"))
            .await
            .expect("orphans")
            .is_empty(),
        "orphans: per owner"
    );
    let mut got = s.orphans(&owner_a).await.expect("orphans");
    got.sort_by_key(|p| p.accepted_at);
    assert_eq!(
        got,
        vec![p1.clone(), p2.clone()],
        "orphans: journal entries of the owner, round-tripped exactly"
    );
    assert_eq!(
        s.orphans(&owner_b).await.expect("orphans"),
        vec![p3.clone()],
        "orphans: per owner"
    );

    let mut record = activation(&ns, "act", Some(&p1.path), t + 10);
    record.activation_id = p1.activation_id;
    assert_eq!(
        s.store(&record).await.expect("store"),
        StoreOutcome::Stored,
        "store: a journaled activation"
    );
    assert_eq!(
        s.orphans(&owner_a).await.expect("orphans"),
        vec![p2.clone()],
        "journal: storing the record clears its journal entry"
    );

    // A journal entry for an id that already has a record is no orphan.
    let done = activation(&ns, "act", None, t + 20);
    s.store(&done).await.expect("store");
    let mut late = pending(&ns, &owner_b, t + 20);
    late.activation_id = done.activation_id;
    s.journal(&late).await.expect("journal");
    assert_eq!(
        s.orphans(&owner_b).await.expect("orphans"),
        vec![p3.clone()],
        "orphans: an entry whose record exists is not an orphan"
    );

    // Entries stay until a record is stored: reading orphans does not consume them.
    assert_eq!(
        s.orphans(&owner_b).await.expect("orphans"),
        vec![p3.clone()],
        "orphans: entries stay until stored"
    );
    let mut rec3 = activation(&ns, "act", None, t + 30);
    rec3.activation_id = p3.activation_id;
    rec3.response = ActivationResponse::whisk_error("recovered");
    s.store(&rec3).await.expect("store");
    assert!(
        s.orphans(&owner_b).await.expect("orphans").is_empty(),
        "journal: recovery's record clears the entry"
    );

    // A duplicate store also leaves the journal clear.
    let mut rec2 = activation(&ns, "act", None, t + 40);
    rec2.activation_id = p2.activation_id;
    s.store(&rec2).await.expect("store");
    assert_eq!(
        s.store(&rec2).await.expect("store"),
        StoreOutcome::AlreadyStored,
        "store: duplicate"
    );
    assert!(
        s.orphans(&owner_a).await.expect("orphans").is_empty(),
        "journal: every entry cleared by its record"
    );
}

// ------------------------------------------------------------------------------------------------
// Subjects

fn subject(ns: &str, key: &str, limits: UserLimits) -> SubjectRecord {
    let uuid = unique("uuid");
    SubjectRecord {
        subject: format!("{ns}-subject"),
        namespace: ns.to_string(),
        key_hash: SubjectRecord::hash_key(&uuid, key),
        uuid,
        limits,
    }
}

/// Runs the subject store suite against `s`. Panics name the rule broken.
pub async fn subject_store(s: &dyn SubjectStore) {
    let ns = unique("ns");
    let limits = UserLimits {
        invocations_per_minute: Some(120),
        concurrent_invocations: None,
        fires_per_minute: Some(7),
    };
    let r = subject(&ns, "secret", limits);
    assert!(
        s.subject_by_namespace(&ns).await.expect("get").is_none(),
        "subject: a missing namespace is None"
    );
    assert!(
        s.subject_by_uuid(&r.uuid).await.expect("get").is_none(),
        "subject: a missing uuid is None"
    );
    s.put_subject(&r).await.expect("put_subject");
    assert_eq!(
        s.subject_by_uuid(&r.uuid).await.expect("get").as_ref(),
        Some(&r),
        "subject: found by uuid, exactly"
    );
    assert_eq!(
        s.subject_by_namespace(&ns).await.expect("get").as_ref(),
        Some(&r),
        "subject: found by namespace, exactly"
    );
    assert_eq!(
        r.key_hash,
        SubjectRecord::hash_key(&r.uuid, "secret"),
        "hash_key is deterministic"
    );
    assert_ne!(
        r.key_hash,
        SubjectRecord::hash_key(&r.uuid, "other"),
        "hash_key depends on the key"
    );

    // Replacing the subject of a namespace: new uuid and key, the old uuid no longer resolves.
    let r2 = subject(&ns, "rotated", UserLimits::default());
    s.put_subject(&r2).await.expect("put_subject replaces");
    assert_eq!(
        s.subject_by_namespace(&ns).await.expect("get").as_ref(),
        Some(&r2),
        "put_subject: replaces"
    );
    assert!(
        s.subject_by_uuid(&r.uuid).await.expect("get").is_none(),
        "put_subject: the replaced uuid is gone"
    );
    assert_eq!(
        s.subject_by_uuid(&r2.uuid).await.expect("get").as_ref(),
        Some(&r2),
        "put_subject: new uuid resolves"
    );

    // A uuid identifies one namespace.
    let ns_b = unique("ns");
    let mut stolen = subject(&ns_b, "x", UserLimits::default());
    stolen.uuid = r2.uuid.clone();
    let res = s.put_subject(&stolen).await;
    assert!(
        is_conflict(&res),
        "put_subject: a uuid already used by another namespace is a Conflict (got {res:?})"
    );
    assert!(
        s.subject_by_namespace(&ns_b).await.expect("get").is_none(),
        "put_subject: a conflicting put writes nothing"
    );

    let rb = subject(&ns_b, "b", UserLimits::default());
    s.put_subject(&rb).await.expect("put_subject");
    let listed: Vec<SubjectRecord> = s
        .list_subjects()
        .await
        .expect("list_subjects")
        .into_iter()
        .filter(|x| x.namespace == ns || x.namespace == ns_b)
        .collect();
    assert_eq!(listed.len(), 2, "list_subjects: lists every subject once");
    assert!(
        listed.contains(&r2) && listed.contains(&rb),
        "list_subjects: current records"
    );

    assert!(
        s.delete_subject(&ns).await.expect("delete"),
        "delete_subject: true when deleted"
    );
    assert!(
        !s.delete_subject(&ns).await.expect("delete"),
        "delete_subject: false when missing"
    );
    assert!(
        s.subject_by_namespace(&ns).await.expect("get").is_none(),
        "delete_subject: gone by namespace"
    );
    assert!(
        s.subject_by_uuid(&r2.uuid).await.expect("get").is_none(),
        "delete_subject: gone by uuid"
    );
    assert!(
        s.subject_by_namespace(&ns_b).await.expect("get").is_some(),
        "delete_subject: only that namespace"
    );
    s.delete_subject(&ns_b).await.expect("cleanup");
}
