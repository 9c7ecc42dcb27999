//! Whirl's PostgreSQL store: entities ([`EntityStore`]), activation records and their crash
//! journal ([`ActivationStore`]) and subjects ([`SubjectStore`]) in a PostgreSQL database, through
//! sqlx, for deployments where several controllers and invokers share one state.
//!
//! Semantics follow the SQLite store (`whirl-store-sqlite`) exactly; the schema (in
//! `migrations/`, applied at [`PostgresStore::open`] under sqlx's migration advisory lock, so
//! several processes may start at once) has the same tables, columns and indexes:
//! - **first record wins**: `store` is one statement, `INSERT .. ON CONFLICT DO NOTHING` of the
//!   record together with the `DELETE` of its journal entry (a data-modifying CTE, so one
//!   implicit transaction): either both happen or neither, and of concurrent stores of one id
//!   exactly one returns [`StoreOutcome::Stored`];
//! - **journal**: an entry whose record already exists is not written; `orphans` never returns an
//!   entry that has a record (it checks, as the SQLite store does), so even an entry written
//!   concurrently with its record's store (READ COMMITTED lets the two cross) is never reported;
//! - **entity revisions**: `Update { rev }` is one `UPDATE .. WHERE rev = $rev RETURNING rev`;
//!   every write takes a new value from the `entity_writes` sequence, which breaks ties between
//!   writes in the same millisecond, so lists are a total order (`updated`, then that sequence;
//!   activations: `start`, then a store sequence, later first). A `limit` of 0 means no limit.
//!
//! **Failures and recovery.** Where retries happen: within one call, sqlx's pool keeps trying to
//! open a connection (with its own backoff) until [`PostgresStoreConfig::acquire_timeout_ms`];
//! beyond that nothing in this crate retries: a write whose connection dies may or may not have
//! committed, and only the caller knows whether repeating it is safe (`store` is — first record
//! wins; an entity `Create` is not). Every failure to reach the server (connection
//! refused while PostgreSQL restarts, a connection it closed, no connection within
//! [`PostgresStoreConfig::acquire_timeout_ms`]) comes back as [`StoreError::Backend`]. The pool
//! heals itself: connections are checked before they are handed out (`test_before_acquire`), so
//! those the server closed are dropped and replaced by new ones once the server answers again; no
//! restart of the store is needed. Callers that want to ride out a restart retry with backoff
//! (see `tests/restart.rs`, which restarts the server between two operations).
//!
//! Group commit (as the SQLite store batches activation writes) is not done yet: every `store`
//! and `journal` is its own statement on a pooled connection, so concurrent callers run in
//! parallel up to [`PostgresStoreConfig::max_connections`].
//!
//! [`EntityStore`]: whirl_spi::EntityStore
//! [`ActivationStore`]: whirl_spi::ActivationStore
//! [`SubjectStore`]: whirl_spi::SubjectStore
//! [`StoreOutcome::Stored`]: whirl_spi::StoreOutcome::Stored

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::ConnectOptions;
use whirl_spi::StoreError;

mod activations;
mod entities;
mod subjects;

/// Configuration of the `postgres` store (the `[store]` section with `type = "postgres"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresStoreConfig {
    /// `postgres://user:password@host:port/database` (any libpq-style URL sqlx accepts).
    pub url: String,
    /// The schema holding Whirl's tables, created if missing; `None` uses the connection's
    /// default search path (normally `public`). Lets several deployments (or test runs) share
    /// one database.
    #[serde(default)]
    pub schema: Option<String>,
    /// Most connections the pool opens.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Connections the pool keeps open even when idle.
    #[serde(default)]
    pub min_connections: u32,
    /// How long a call waits for a connection (including connecting) before it fails with
    /// [`StoreError::Backend`].
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// Idle connections above `min_connections` are closed after this long.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

fn default_max_connections() -> u32 {
    16
}
fn default_acquire_timeout_ms() -> u64 {
    5_000
}
fn default_idle_timeout_ms() -> u64 {
    300_000
}

impl PostgresStoreConfig {
    /// A config for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: None,
            max_connections: default_max_connections(),
            min_connections: 0,
            acquire_timeout_ms: default_acquire_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
        }
    }
}

/// The PostgreSQL store: implements [`EntityStore`], [`ActivationStore`] and [`SubjectStore`].
///
/// Cloning is cheap; clones share the connection pool.
///
/// [`EntityStore`]: whirl_spi::EntityStore
/// [`ActivationStore`]: whirl_spi::ActivationStore
/// [`SubjectStore`]: whirl_spi::SubjectStore
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// `host:port/database` (no credentials), for messages.
    target: String,
    schema: Option<String>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .finish()
    }
}

/// A schema name we put into SQL text: plain identifiers only.
fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

impl PostgresStore {
    /// Connects, creates the configured schema if missing and applies pending migrations. Fails
    /// with [`StoreError::Backend`] if the server cannot be reached within the acquire timeout.
    pub async fn open(cfg: &PostgresStoreConfig) -> Result<Self, StoreError> {
        let mut opts = PgConnectOptions::from_str(&cfg.url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("whirl")
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let target = format!(
            "{}:{}/{}",
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or("")
        );
        if let Some(schema) = &cfg.schema {
            if !valid_schema(schema) {
                return Err(StoreError::Backend(format!(
                    "invalid schema name {schema:?}: use lowercase letters, digits and _"
                )));
            }
            // Create it on a connection of its own, then point every pooled connection at it.
            let mut conn = opts
                .connect()
                .await
                .map_err(|e| backend(&format!("connecting to {target}"), e))?;
            // Two processes creating it at once: the loser's IF NOT EXISTS can still fail with
            // a unique violation on the catalog; the schema exists then, which is all we need.
            match sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => {}
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
                Err(e) => return Err(backend(&format!("creating schema {schema}"), e)),
            }
            let _ = sqlx::Connection::close(conn).await;
            opts = opts.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .min_connections(cfg.min_connections.min(cfg.max_connections.max(1)))
            .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms.max(1)))
            .idle_timeout(Some(Duration::from_millis(cfg.idle_timeout_ms.max(1))))
            .max_lifetime(Some(Duration::from_secs(30 * 60)))
            // A connection the server closed (restart, failover) is found here and replaced,
            // rather than failing the caller's query.
            .test_before_acquire(true)
            .connect_with(opts)
            .await
            .map_err(|e| backend(&format!("connecting to {target}"), e))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("applying migrations on {target}: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                target,
                schema: cfg.schema.clone(),
            }),
        })
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Closes every connection. Calls made after this fail with [`StoreError::Backend`].
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

/// Maps a sqlx error: unique-constraint violations become [`StoreError::Conflict`], everything
/// else (the server unreachable, a closed connection, a pool timeout) [`StoreError::Backend`]
/// with `context`.
fn backend(context: &str, e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(format!("{context}: {db}"));
        }
    }
    StoreError::Backend(format!("{context}: {e}"))
}

/// Epoch ms and counters as BIGINT (clamped: BIGINT is signed 64-bit).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer back as `u64` (negative values cannot be written, so they mean corruption).
fn uint(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}

/// PostgreSQL's `LIMIT` for a query's limit (0 = none: `LIMIT NULL` means no limit).
fn sql_limit(limit: usize) -> Option<i64> {
    if limit == 0 {
        None
    } else {
        Some(i64::try_from(limit).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_rejects_unknown_keys() {
        let c: PostgresStoreConfig =
            serde_json::from_str(r#"{"url": "postgres://u:p@h/db"}"#).unwrap();
        assert_eq!(c, PostgresStoreConfig::new("postgres://u:p@h/db"));
        assert_eq!(c.max_connections, 16);
        assert!(serde_json::from_str::<PostgresStoreConfig>(r#"{"url": "x", "pool": 3}"#).is_err());
        assert!(serde_json::from_str::<PostgresStoreConfig>("{}").is_err());
    }

    #[test]
    fn schema_names() {
        assert!(valid_schema("whirl_test_0af"));
        assert!(!valid_schema("Whirl"));
        assert!(!valid_schema("a;drop"));
        assert!(!valid_schema("1a"));
        assert!(!valid_schema(""));
    }
}
