//! The SPI conformance suites and the store's own guarantees against a real PostgreSQL
//! (`WHIRL_TEST_POSTGRES_URL`), each test in a schema of its own.

mod common;

use std::collections::HashSet;

use serde_json::json;
use whirl_model::{Activation, ActivationId, ActivationResponse, Params};
use whirl_spi::{
    ActivationQuery, ActivationStore, Collection, EntityStore, PendingActivation, PutMode,
    StoreOutcome,
};
use whirl_store_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_store_conformance() {
    common::with_store(|s, _| async move {
        whirl_spi::conformance::stores::entity_store(&s).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_store_conformance() {
    common::with_store(|s, _| async move {
        whirl_spi::conformance::stores::activation_store(&s).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_store_conformance() {
    common::with_store(|s, _| async move {
        whirl_spi::conformance::stores::subject_store(&s).await;
    })
    .await;
}

fn record(id: ActivationId, result: serde_json::Value) -> Activation {
    let mut annotations = Params::new();
    annotations.put("path", json!("ns/pkg/a"));
    Activation {
        namespace: "ns".into(),
        name: "a".into(),
        version: "0.0.1".into(),
        subject: "s".into(),
        activation_id: id,
        start: 1,
        end: 2,
        duration: Some(1),
        publish: false,
        cause: None,
        response: ActivationResponse::success(result),
        logs: vec![],
        annotations,
    }
}

fn pending(id: ActivationId) -> PendingActivation {
    PendingActivation {
        activation_id: id,
        namespace: "ns".into(),
        path: "ns/pkg/a".into(),
        version: "0.0.1".into(),
        subject: "s".into(),
        kind: "nodejs:20".into(),
        accepted_at: 1,
        owner: "c0".into(),
        cause: None,
    }
}

async fn journal_rows(s: &PostgresStore) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM activation_journal")
        .fetch_one(s.pool())
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storing_deletes_the_journal_row_and_a_late_entry_is_not_written() {
    common::with_store(|s, _| async move {
        let id = ActivationId::generate();
        s.journal(&pending(id)).await.unwrap();
        assert_eq!(journal_rows(&s).await, 1);
        assert_eq!(s.orphans("c0").await.unwrap(), vec![pending(id)]);
        assert_eq!(
            s.store(&record(id, json!({}))).await.unwrap(),
            StoreOutcome::Stored
        );
        assert_eq!(journal_rows(&s).await, 0, "deleted, not just hidden");
        // A journal entry arriving after its record is not written at all.
        s.journal(&pending(id)).await.unwrap();
        assert_eq!(journal_rows(&s).await, 0);
        assert!(s.orphans("c0").await.unwrap().is_empty());
    })
    .await;
}

/// Many connections storing the same ids at once: exactly one store per id wins, and its
/// record is the one kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_stores_of_one_id_have_one_winner() {
    common::with_store(|s, _| async move {
        let ids: Vec<ActivationId> = (0..20).map(|_| ActivationId::generate()).collect();
        let mut tasks = Vec::new();
        for writer in 0..8 {
            for id in &ids {
                let (s, id) = (s.clone(), *id);
                tasks.push(tokio::spawn(async move {
                    let outcome = s.store(&record(id, json!({ "writer": writer }))).await;
                    (id, writer, outcome.unwrap())
                }));
            }
        }
        let mut winners = std::collections::HashMap::new();
        for t in tasks {
            let (id, writer, outcome) = t.await.unwrap();
            if outcome == StoreOutcome::Stored {
                assert!(winners.insert(id, writer).is_none(), "two winners for {id}");
            }
        }
        assert_eq!(winners.len(), ids.len());
        for (id, writer) in winners {
            let a = ActivationStore::get(&s, "ns", &id).await.unwrap().unwrap();
            assert_eq!(a.response.result, Some(json!({ "writer": writer })));
        }
        let q = ActivationQuery {
            namespace: "ns".into(),
            name: Some("pkg/a".into()),
            ..Default::default()
        };
        assert_eq!(ActivationStore::count(&s, &q).await.unwrap(), 20);
    })
    .await;
}

/// Concurrent updates at one revision: exactly one succeeds; revisions stay gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_at_one_revision_have_one_winner() {
    common::with_store(|s, _| async move {
        s.put(Collection::Actions, "ns", "a", &json!({}), PutMode::Create)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..10 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.put(
                    Collection::Actions,
                    "ns",
                    "a",
                    &json!({ "i": i }),
                    PutMode::Update { rev: 1 },
                )
                .await
                .ok()
            }));
        }
        let mut ok = HashSet::new();
        for t in tasks {
            if let Some(rev) = t.await.unwrap() {
                ok.insert(rev);
            }
        }
        assert_eq!(ok, HashSet::from([2]));
        let d = EntityStore::get(&s, Collection::Actions, "ns", "a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.rev, 2);
    })
    .await;
}

/// Several processes may start at once: opening the same schema concurrently migrates once and
/// every store works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once() {
    let cfg = common::fresh_config();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let cfg = cfg.clone();
            tokio::spawn(async move { PostgresStore::open(&cfg).await })
        })
        .collect();
    let mut stores = Vec::new();
    let mut failure = None;
    for o in opens {
        match o.await.unwrap() {
            Ok(s) => stores.push(s),
            Err(e) => failure = Some(e),
        }
    }
    for s in &stores {
        s.close().await;
    }
    common::drop_schema(&cfg).await;
    assert!(failure.is_none(), "{failure:?}");
}

#[tokio::test]
async fn a_closed_store_fails_with_a_backend_error() {
    common::with_store(|s, _| async move {
        s.close().await;
        let r = s.store(&record(ActivationId::generate(), json!({}))).await;
        assert!(matches!(r, Err(whirl_spi::StoreError::Backend(_))), "{r:?}");
    })
    .await;
}
