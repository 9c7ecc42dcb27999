//! The store rides out a PostgreSQL restart: while the server is down, calls fail with
//! `StoreError::Backend` (they do not hang or panic), and once it is back the same store works
//! again without being reopened. Where retries happen: within one call, sqlx's pool keeps trying
//! to open a connection (with its own backoff) until the acquire timeout; beyond that the store
//! does not retry (a write cut off mid-way may have committed); the caller does, with backoff, as
//! here. The pool's `test_before_acquire` throws away the connections the restart closed.
//!
//! Stops the local cluster with `pg_ctlcluster <version> main stop` (root or the postgres user),
//! so it lives in its own test binary: cargo runs test binaries one after another, so the
//! conformance tests never see the outage.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use whirl_spi::{Collection, EntityStore, PutMode, StoreError};

fn pg_version() -> String {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("no /etc/postgresql: this test restarts the Debian cluster scripts/services starts")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
    versions
        .pop()
        .expect("no PostgreSQL cluster in /etc/postgresql")
}

fn cluster(action: &str) {
    let status = Command::new("pg_ctlcluster")
        .args([&pg_version(), "main", action])
        .args(if action == "stop" {
            &["-m", "fast"][..]
        } else {
            &[][..]
        })
        .status()
        .expect("running pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action} failed: {status}");
}

/// Starts the cluster again when dropped, so a failing test never leaves it stopped.
struct Restart;
impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new("pg_ctlcluster")
            .args([&pg_version(), "main", "start"])
            .status();
    }
}

/// Retries `op` on `StoreError::Backend` with exponential backoff (50 ms doubling to 1 s) until
/// `deadline`; returns the result and how many attempts it took.
async fn with_backoff<T, F, Fut>(deadline: Duration, mut op: F) -> (Result<T, StoreError>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let until = Instant::now() + deadline;
    let mut delay = Duration::from_millis(50);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match op().await {
            Err(StoreError::Backend(e)) if Instant::now() < until => {
                eprintln!("attempt {attempts} failed (retrying in {delay:?}): {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return (other, attempts),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_recovers_after_postgres_restarts() {
    let mut cfg = common::fresh_config();
    cfg.acquire_timeout_ms = 2_000;
    cfg.min_connections = 2;
    common::with_store_config(cfg, |store, _| async move {
        let put = |name: &'static str| {
            let s = store.clone();
            async move {
                s.put(Collection::Actions, "ns", name, &json!({}), PutMode::Create)
                    .await
            }
        };
        put("before").await.expect("first operation");

        let guard = Restart;
        cluster("stop");
        // Down: a call fails with a backend error, promptly (the acquire timeout), never hangs.
        let started = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(10), put("during")).await;
        assert!(matches!(r, Ok(Err(StoreError::Backend(_)))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));

        // Back after longer than one acquire timeout, so the first retry fails too (sqlx keeps
        // trying to connect, with its own backoff, only within one call's acquire timeout); the
        // caller's retries with backoff then get through on the same store.
        let starter = tokio::task::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(3_000));
            cluster("start");
        });
        let (r, attempts) = with_backoff(Duration::from_secs(30), || put("after")).await;
        starter.await.unwrap();
        drop(guard);
        r.expect("the store works again once PostgreSQL is back");
        assert!(
            attempts > 1,
            "the server was still down at the first attempt"
        );
        let d = store
            .get(Collection::Actions, "ns", "before")
            .await
            .unwrap();
        assert!(
            d.is_some(),
            "data written before the restart is still there"
        );
    })
    .await;
}
