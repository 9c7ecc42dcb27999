//! A fresh schema per test on the server named by `WHIRL_TEST_POSTGRES_URL`, dropped afterwards
//! (also when the test fails), so parallel tests and repeated runs never see each other's rows.

#![allow(dead_code)]

use std::future::Future;

use sqlx::Connection;
use whirl_store_postgres::{PostgresStore, PostgresStoreConfig};

/// The test server's URL; without it the test fails (never passes silently).
pub fn url() -> String {
    match std::env::var("WHIRL_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "WHIRL_TEST_POSTGRES_URL is not set: these tests need a real PostgreSQL; \
             run `eval \"$(scripts/services)\"` from the repository root first"
        ),
    }
}

/// A config for a new, randomly named schema.
pub fn fresh_config() -> PostgresStoreConfig {
    let mut cfg = PostgresStoreConfig::new(url());
    cfg.schema = Some(format!(
        "whirl_test_{}",
        whirl_model::ActivationId::generate()
    ));
    cfg
}

pub async fn drop_schema(cfg: &PostgresStoreConfig) {
    let schema = cfg.schema.as_deref().expect("a test schema");
    let mut conn = sqlx::PgConnection::connect(&cfg.url)
        .await
        .expect("connecting to drop the test schema");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .expect("dropping the test schema");
    let _ = conn.close().await;
}

/// Runs `test` on a store in a fresh schema, then drops the schema whether the test passed or
/// not (and fails as the test did).
pub async fn with_store<F, Fut>(test: F)
where
    F: FnOnce(PostgresStore, PostgresStoreConfig) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_store_config(fresh_config(), test).await;
}

/// [`with_store`] with a given config (its schema is dropped afterwards).
pub async fn with_store_config<F, Fut>(cfg: PostgresStoreConfig, test: F)
where
    F: FnOnce(PostgresStore, PostgresStoreConfig) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let store = PostgresStore::open(&cfg)
        .await
        .unwrap_or_else(|e| panic!("opening the store on {}: {e}", cfg.url));
    let c = cfg.clone();
    let s = store.clone();
    let outcome = tokio::spawn(async move { test(s, c).await }).await;
    store.close().await;
    drop_schema(&cfg).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
