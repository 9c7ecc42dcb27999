//! Figures for the activation write path, printed, never asserted. Run:
//!
//! ```text
//! cargo test -p whirl-store-sqlite --release -- --ignored --nocapture store_bench
//! ```
//!
//! Prints, for a database file in a temporary directory: the round-trip floor of one sqlx call
//! (`SELECT 1` on the writer connection), the latency of one `store` at a time, throughput and
//! latency with 64 concurrent `store` calls and with 64 concurrent journal-then-store pairs (the
//! warm invoke path), and the same without group commit (one transaction per store) to show what
//! batching buys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use whirl_model::{Activation, ActivationId, ActivationResponse, Params};
use whirl_spi::{ActivationStore, PendingActivation};

use crate::writer::RecordRow;
use crate::SqliteStore;

const SEQUENTIAL: usize = 2_000;
const CONCURRENCY: usize = 64;
const PER_TASK: usize = 100;

fn record(i: u64) -> Activation {
    let mut annotations = Params::new();
    annotations.put("path", json!("guest/hello"));
    annotations.put("kind", json!("nodejs:20"));
    annotations.put(
        "limits",
        json!({"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}),
    );
    annotations.put("waitTime", json!(3));
    Activation {
        namespace: "guest".into(),
        name: "hello".into(),
        version: "0.0.1".into(),
        subject: "guest".into(),
        activation_id: ActivationId::generate(),
        start: 1_700_000_000_000 + i,
        end: 1_700_000_000_002 + i,
        duration: Some(2),
        publish: false,
        cause: None,
        response: ActivationResponse::success(json!({"payload": "Hello, Ada!"})),
        logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hello".into()],
        annotations,
    }
}

fn pending(a: &Activation) -> PendingActivation {
    PendingActivation {
        activation_id: a.activation_id,
        namespace: a.namespace.clone(),
        path: "guest/hello".into(),
        version: a.version.clone(),
        subject: a.subject.clone(),
        kind: "nodejs:20".into(),
        accepted_at: a.start,
        owner: "controller0".into(),
        cause: None,
    }
}

/// Without group commit: one transaction per store on the writer pool, as a naive store would.
async fn store_direct(s: &SqliteStore, a: &Activation) {
    let row = RecordRow {
        id: a.activation_id.to_string(),
        namespace: a.namespace.clone(),
        rel_name: crate::activations::relative_name(a),
        start: a.start as i64,
        body: serde_json::to_string(a).unwrap(),
    };
    let mut tx = s.inner.write.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO activations (activation_id, namespace, rel_name, start, body) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (activation_id) DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.namespace)
    .bind(&row.rel_name)
    .bind(row.start)
    .bind(&row.body)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("DELETE FROM activation_journal WHERE activation_id = ?")
        .bind(&row.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    format!(
        "mean {:>8.1?}  p50 {:>8.1?}  p99 {:>8.1?}",
        mean,
        p(0.5),
        p(0.99)
    )
}

/// Average operations per group-commit batch and time in its transaction since the last call
/// (empty without batching).
fn batches() -> String {
    match crate::writer::stats::take() {
        (0, _, _) => String::new(),
        (b, ops, us) => format!(
            "  ({:.1} ops/batch, {:.0} µs/batch in the transaction)",
            ops as f64 / b as f64,
            us as f64 / b as f64
        ),
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Store,
    JournalThenStore,
    Direct,
}

async fn sequential(s: &SqliteStore, mode: Mode) -> Vec<Duration> {
    let mut lat = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let a = record(i as u64);
        let t = Instant::now();
        match mode {
            Mode::Store => {
                s.store(&a).await.unwrap();
            }
            Mode::JournalThenStore => {
                s.journal(&pending(&a)).await.unwrap();
                s.store(&a).await.unwrap();
            }
            Mode::Direct => store_direct(s, &a).await,
        }
        lat.push(t.elapsed());
    }
    lat
}

async fn concurrent(s: &SqliteStore, mode: Mode) -> (f64, Vec<Duration>) {
    let t = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|task| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(PER_TASK);
                for i in 0..PER_TASK {
                    let a = record((task * PER_TASK + i) as u64);
                    let t = Instant::now();
                    match mode {
                        Mode::Store => {
                            s.store(&a).await.unwrap();
                        }
                        Mode::JournalThenStore => {
                            s.journal(&pending(&a)).await.unwrap();
                            s.store(&a).await.unwrap();
                        }
                        Mode::Direct => store_direct(&s, &a).await,
                    }
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let per_sec = (CONCURRENCY * PER_TASK) as f64 / t.elapsed().as_secs_f64();
    (per_sec, lat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly with --release --ignored --nocapture"]
async fn store_bench() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("bench.db"))
        .await
        .unwrap();
    let s = Arc::new(s);
    let mut floor = Vec::new();
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        sqlx::query("SELECT 1")
            .execute(&s.inner.write)
            .await
            .unwrap();
        floor.push(t.elapsed());
    }
    println!(
        "sqlite store bench (file in {}, WAL, synchronous=NORMAL)",
        dir.path().display()
    );
    println!(
        "  floor: one sqlx round trip (SELECT 1)          {}",
        percentiles(floor)
    );

    for (label, mode) in [
        ("group commit: store", Mode::Store),
        ("group commit: journal + store", Mode::JournalThenStore),
        ("no batching: one tx per store", Mode::Direct),
    ] {
        crate::writer::stats::take();
        let lat = sequential(&s, mode).await;
        println!(
            "  {label:<32} 1 at a time   {}{}",
            percentiles(lat),
            batches()
        );
        let (per_sec, lat) = concurrent(&s, mode).await;
        let b = batches();
        println!(
            "  {label:<32} {CONCURRENCY} concurrent {}  {per_sec:>8.0}/s{b}",
            percentiles(lat)
        );
    }
}
