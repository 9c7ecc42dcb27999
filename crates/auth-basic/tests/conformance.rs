//! The authentication SPI's conformance suite against the `basic` authenticator, over the real
//! SQLite subject store in a file, with the default cache, a short cache and no cache.

use std::sync::Arc;
use std::time::Duration;

use whirl_auth_basic::{BasicAuthConfig, BasicAuthenticator};
use whirl_spi::conformance::auth::authenticator;
use whirl_store_sqlite::SqliteStore;

/// Runs the suite with `config`; a change in the store may go unnoticed for the cache's TTL
/// (successful lookups are cached for `cache_ttl_ms`, as the crate documents).
async fn conformance(config: BasicAuthConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("whirl.db"))
            .await
            .expect("open the SQLite store"),
    );
    let auth = BasicAuthenticator::with_config(store.clone(), &config);
    authenticator(
        &auth,
        store.as_ref(),
        Duration::from_millis(config.cache_ttl_ms),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config() {
    conformance(BasicAuthConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_cache() {
    conformance(BasicAuthConfig {
        cache_ttl_ms: 200,
        negative_ttl_ms: 100,
        max_entries: 4,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache() {
    conformance(BasicAuthConfig {
        cache_ttl_ms: 0,
        negative_ttl_ms: 0,
        ..BasicAuthConfig::default()
    })
    .await;
}
