//! Whirl's embedded SQL-file store, the default: entities ([`EntityStore`]), activation records and
//! their crash journal ([`ActivationStore`]) and subjects ([`SubjectStore`]) in one SQLite database
//! file, through sqlx.
//!
//! Why SQLite: a single-machine Whirl needs durable state with no server to run, and a file
//! database gives transactions, indexes and crash safety for free. The schema (in `migrations/`,
//! applied at [`SqliteStore::open`]) is plain SQL with JSON bodies as TEXT and an indexed column for
//! every filter, so a PostgreSQL store can follow with the same tables and queries.
//!
//! Shape:
//! - one **writer** connection (SQLite allows one writer at a time; serializing writes in process
//!   avoids lock contention and `SQLITE_BUSY` between our own connections) and a small pool of
//!   **read-only** connections, which WAL mode lets read while the writer writes;
//! - activation records and journal entries, written once per activation on the warm invoke
//!   path, go through a **group commit** writer task: concurrent calls queue up while a batch
//!   commits, and the next batch writes all of them in one transaction (one multi-row `INSERT` for
//!   records, one for journal entries, one `DELETE` clearing the journal); every caller awaits its
//!   own batch's commit, so a returned `Ok` is durable to the WAL;
//! - `synchronous = NORMAL` in WAL mode: a commit is atomic and survives a process crash; a power
//!   loss may lose the last commits, never corrupt the file;
//! - WAL **checkpoints** run every 500 ms on a connection of their own rather than inside a
//!   commit, so no caller of `store` pays for copying pages into the database file and syncing
//!   it.
//!
//! Measured on a 2-core VM (`cargo test -p whirl-store-sqlite --release -- --ignored --nocapture
//! store_bench`): one `store` at a time costs about 1.5–2.5 sqlx round trips; 64 concurrent
//! callers reach roughly 15k stores/s, 5–10 times what one transaction per store achieves.
//!
//! Orders are total: entity lists sort by `updated` then by a write sequence, activation lists by
//! `start` then by a store sequence (later first), so paging with `skip` never repeats or drops a
//! row. A `limit` of 0 means no limit.
//!
//! [`EntityStore`]: whirl_spi::EntityStore
//! [`ActivationStore`]: whirl_spi::ActivationStore
//! [`SubjectStore`]: whirl_spi::SubjectStore

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::oneshot;
use whirl_spi::StoreError;

mod activations;
mod entities;
mod subjects;
mod writer;

#[cfg(test)]
mod bench;

/// File name of the database inside the data directory when [`SqliteStoreConfig::path`] is unset.
pub const DEFAULT_FILE_NAME: &str = "whirl.db";

/// Configuration of the `sqlite` store (the `[store]` section with `type = "sqlite"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteStoreConfig {
    /// The database file. `None` means `<data_dir>/whirl.db`, decided by the composition root
    /// (see [`SqliteStoreConfig::path_in`]).
    pub path: Option<PathBuf>,
}

impl SqliteStoreConfig {
    /// The database file: the configured path, or [`DEFAULT_FILE_NAME`] inside `data_dir`.
    pub fn path_in(&self, data_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| data_dir.join(DEFAULT_FILE_NAME))
    }
}

/// How many read-only connections a file store keeps at most.
const READERS: u32 = 4;
/// Prepared statements the writer connection keeps: the group-commit shapes (11 padded lengths
/// of each of two lists) plus the entity and subject statements.
const WRITER_STATEMENT_CACHE: usize = 256;
/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// WAL pages left behind by a checkpoint that make the next one run on the writer connection.
const WAL_BACKLOG_PAGES: i64 = 10_000;
/// Size in bytes the WAL file is truncated to after it was reset (so one burst does not leave a
/// huge file behind).
const WAL_SIZE_LIMIT: u64 = 64 << 20;
/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite store: implements [`EntityStore`], [`ActivationStore`] and [`SubjectStore`].
///
/// Cloning is cheap; clones share the connections and the writer task. It must be created (and
/// used) inside a Tokio runtime. The writer task ends when the last clone is dropped.
///
/// [`EntityStore`]: whirl_spi::EntityStore
/// [`ActivationStore`]: whirl_spi::ActivationStore
/// [`SubjectStore`]: whirl_spi::SubjectStore
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Read-only connections (the writer pool itself for an in-memory database).
    read: SqlitePool,
    /// The single writer connection.
    write: SqlitePool,
    /// Queue of the group-commit writer task.
    batcher: writer::Handle,
    /// Where the database lives (`None`: in memory).
    path: Option<PathBuf>,
    /// Dropped with the store, which stops the checkpointer task.
    _stop_checkpoints: oneshot::Sender<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent directory) the database file at `path`, in WAL
    /// mode with `synchronous = NORMAL`, and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                StoreError::Backend(format!("creating directory {}: {e}", dir.display()))
            })?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .statement_cache_capacity(WRITER_STATEMENT_CACHE)
                    // Checkpoints run beside the writer (see `checkpointer`), not in its commits.
                    .pragma("wal_autocheckpoint", "0")
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string()),
            )
            .await
            .map_err(|e| backend(&format!("opening {}", path.display()), e))?;
        migrate(&write).await?;
        let checkpoint = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone())
            .await
            .map_err(|e| backend(&format!("opening {} for checkpoints", path.display()), e))?;
        let read = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(1)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| backend(&format!("opening {} for reading", path.display()), e))?;
        Ok(Self::from_pools(
            read,
            write,
            Some(checkpoint),
            Some(path.to_path_buf()),
        ))
    }

    /// A private in-memory database (for tests): one connection serves reads and writes, and the
    /// data is gone when the last clone is dropped.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .statement_cache_capacity(WRITER_STATEMENT_CACHE);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map_err(|e| backend("opening an in-memory database", e))?;
        migrate(&pool).await?;
        Ok(Self::from_pools(pool.clone(), pool, None, None))
    }

    /// Starts the writer task, and the checkpointer if there is a `checkpoint` connection.
    fn from_pools(
        read: SqlitePool,
        write: SqlitePool,
        checkpoint: Option<SqlitePool>,
        path: Option<PathBuf>,
    ) -> Self {
        let batcher = writer::spawn(write.clone());
        let (stop_tx, stop_rx) = oneshot::channel();
        if let Some(own) = checkpoint {
            tokio::spawn(checkpointer(own, write.clone(), stop_rx));
        }
        Self {
            inner: Arc::new(Inner {
                read,
                write,
                batcher,
                path,
                _stop_checkpoints: stop_tx,
            }),
        }
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Closes every connection (checkpointing the WAL into the main file). Calls made after
    /// this fail with [`StoreError::Backend`].
    pub async fn close(&self) {
        self.inner.read.close().await;
        self.inner.write.close().await;
    }
}

/// Moves the WAL's pages into the database file every [`CHECKPOINT_INTERVAL`] on its own
/// connection, so commits never pay for a checkpoint's copying and syncing (the writer's
/// automatic checkpoints are off). A `PASSIVE` checkpoint never blocks the writer or readers, but
/// under a steady stream of commits it may never catch up; when the WAL still holds more than
/// [`WAL_BACKLOG_PAGES`] after one, the next checkpoint runs on the writer connection instead,
/// between two batches, where it always completes. Ends when the store is dropped.
async fn checkpointer(own: SqlitePool, writer: SqlitePool, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut on_writer = false;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        if writer.is_closed() {
            break;
        }
        let pool = if on_writer { &writer } else { &own };
        // Columns: busy flag, pages in the WAL, pages checkpointed.
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await
        {
            Ok((_, log, done)) => on_writer = log - done > WAL_BACKLOG_PAGES,
            Err(_) if own.is_closed() || writer.is_closed() => break,
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
    own.close().await;
}

async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(format!("applying migrations: {e}")))
}

/// Maps a sqlx error: unique-constraint violations become [`StoreError::Conflict`], everything
/// else [`StoreError::Backend`] with `context`.
fn backend(context: &str, e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(format!("{context}: {db}"));
        }
    }
    StoreError::Backend(format!("{context}: {e}"))
}

/// Epoch ms and counters as SQLite integers (clamped: SQLite integers are signed 64-bit).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer back as `u64` (negative values cannot be written, so they mean corruption).
fn uint(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {v}")))
}

/// SQLite's `LIMIT` for a query's limit (0 = none, which SQLite spells -1).
fn sql_limit(limit: usize) -> i64 {
    if limit == 0 {
        -1
    } else {
        i64::try_from(limit).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance_in_memory() {
        let s = SqliteStore::in_memory().await.unwrap();
        whirl_spi::conformance::stores::entity_store(&s).await;
        whirl_spi::conformance::stores::activation_store(&s).await;
        whirl_spi::conformance::stores::subject_store(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("nested/dir/whirl.db"))
            .await
            .unwrap();
        whirl_spi::conformance::stores::entity_store(&s).await;
        whirl_spi::conformance::stores::activation_store(&s).await;
        whirl_spi::conformance::stores::subject_store(&s).await;
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        use whirl_spi::{Collection, EntityStore, PutMode};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whirl.db");
        {
            let s = SqliteStore::open(&path).await.unwrap();
            s.put(
                Collection::Actions,
                "ns",
                "a",
                &serde_json::json!({"x": 1}),
                PutMode::Create,
            )
            .await
            .unwrap();
            s.close().await;
        }
        let s = SqliteStore::open(&path).await.unwrap();
        let d = s
            .get(Collection::Actions, "ns", "a")
            .await
            .unwrap()
            .expect("document survives reopen");
        assert_eq!(d.rev, 1);
        assert_eq!(d.body, serde_json::json!({"x": 1}));
    }

    #[tokio::test]
    async fn the_checkpointer_moves_the_wal_into_the_file() {
        use whirl_spi::{Collection, EntityStore, PutMode};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whirl.db");
        let s = SqliteStore::open(&path).await.unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let body = serde_json::json!({"code": "x".repeat(4000)});
        // Let the first checkpoint pass (the interval's first tick is immediate).
        tokio::time::sleep(CHECKPOINT_INTERVAL / 2).await;
        let before = size();
        for i in 0..200 {
            s.put(
                Collection::Actions,
                "ns",
                &format!("a{i}"),
                &body,
                PutMode::Create,
            )
            .await
            .unwrap();
        }
        let deadline = std::time::Instant::now() + CHECKPOINT_INTERVAL * 10;
        while size() < before + 200 * 4000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL was not checkpointed ({} bytes)",
                size()
            );
            tokio::time::sleep(CHECKPOINT_INTERVAL / 4).await;
        }
    }

    #[tokio::test]
    async fn a_closed_store_fails_instead_of_hanging() {
        use whirl_spi::ActivationStore;
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("whirl.db"))
            .await
            .unwrap();
        s.close().await;
        let a: whirl_model::Activation = serde_json::from_value(serde_json::json!({
            "namespace": "ns", "name": "a", "version": "0.0.1", "subject": "s",
            "activationId": "0123456789abcdef0123456789abcdef", "start": 1,
            "response": {"statusCode": 0, "result": {}}
        }))
        .unwrap();
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), s.store(&a)).await;
        assert!(matches!(r, Ok(Err(StoreError::Backend(_)))), "{r:?}");
    }

    #[test]
    fn config_defaults_and_rejects_unknown_keys() {
        let c: SqliteStoreConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(
            c.path_in(Path::new("/data")),
            PathBuf::from("/data/whirl.db")
        );
        let c: SqliteStoreConfig = serde_json::from_str(r#"{"path": "/x/y.db"}"#).unwrap();
        assert_eq!(c.path_in(Path::new("/data")), PathBuf::from("/x/y.db"));
        assert!(serde_json::from_str::<SqliteStoreConfig>(r#"{"file": "x"}"#).is_err());
    }
}
