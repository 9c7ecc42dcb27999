//! The group-commit writer: one task that writes activation records and journal entries for all
//! callers, batching whatever queued up while the previous batch committed into one transaction.
//!
//! Without a timer: a lone store is written at once; under load, batches grow by themselves to
//! the number of callers waiting (at most [`MAX_BATCH`]). A batch costs a fixed six statements
//! (begin, insert journal entries, find records already stored, insert records, clear their
//! journal entries, commit), sent as one query, however many activations it holds.
//!
//! Callers are answered only after the commit. A caller that stops waiting (its future dropped)
//! does not cancel its write: the record is stored all the same.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use whirl_spi::{StoreError, StoreOutcome};

use crate::backend;

/// Most operations in one transaction (keeps each statement well under SQLite's limit of bound
/// variables: 5 per record).
pub(crate) const MAX_BATCH: usize = 512;

/// An activation record ready to insert.
pub(crate) struct RecordRow {
    pub id: String,
    pub namespace: String,
    pub rel_name: String,
    pub start: i64,
    pub body: String,
}

/// A journal entry ready to insert.
pub(crate) struct JournalRow {
    pub id: String,
    pub owner: String,
    pub accepted_at: i64,
    pub body: String,
}

enum Op {
    Store(RecordRow, oneshot::Sender<Result<StoreOutcome, StoreError>>),
    Journal(JournalRow, oneshot::Sender<Result<(), StoreError>>),
}

/// The sending side of the writer task's queue.
#[derive(Clone)]
pub(crate) struct Handle {
    tx: mpsc::UnboundedSender<Op>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the store's writer task has stopped".into())
}

impl Handle {
    /// Stores a record and clears its journal entry; resolves once the batch holding it committed.
    pub async fn store(&self, row: RecordRow) -> Result<StoreOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Op::Store(row, reply)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Journals an entry (unless its record exists); resolves once committed.
    pub async fn journal(&self, row: JournalRow) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Op::Journal(row, reply))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Starts the writer task on `pool`; it ends when every [`Handle`] is dropped.
pub(crate) fn spawn(pool: SqlitePool) -> Handle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(pool, rx));
    Handle { tx }
}

async fn run(pool: SqlitePool, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&pool, std::mem::take(&mut batch)).await;
    }
}

/// Writes one batch in one transaction and answers every caller.
async fn commit(pool: &SqlitePool, batch: Vec<Op>) {
    let mut records = Vec::new();
    let mut journals = Vec::new();
    for op in batch {
        match op {
            Op::Store(row, reply) => records.push((row, reply)),
            Op::Journal(row, reply) => journals.push((row, reply)),
        }
    }
    let rows_r: Vec<&RecordRow> = records.iter().map(|(r, _)| r).collect();
    let rows_j: Vec<&JournalRow> = journals.iter().map(|(r, _)| r).collect();
    match write(pool, &rows_r, &rows_j).await {
        Ok(existing) => {
            // The first occurrence of a new id in the batch is the row the INSERT kept.
            let mut answered = HashSet::new();
            for (row, reply) in records {
                let first = answered.insert(row.id.clone());
                let outcome = if first && !existing.contains(&row.id) {
                    StoreOutcome::Stored
                } else {
                    StoreOutcome::AlreadyStored
                };
                let _ = reply.send(Ok(outcome));
            }
            for (_, reply) in journals {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, records = records.len(), journal = journals.len(), "activation batch failed");
            for (_, reply) in records {
                let _ = reply.send(Err(same(&e)));
            }
            for (_, reply) in journals {
                let _ = reply.send(Err(same(&e)));
            }
        }
    }
}

/// A copy of a batch's error for each of its callers.
fn same(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}

/// The transaction: journal entries first (so an entry and its record in one batch end with the
/// entry cleared), then records, then clearing the journal of every stored id. Returns the ids of
/// the batch's records that were stored before it (so not written again).
///
/// The ids are found with a `SELECT` inside the transaction rather than `INSERT .. RETURNING`:
/// sqlx hands every result row across threads separately, and the common case is no row at all.
///
/// The whole transaction is one multi-statement query, so it costs one round trip to the
/// connection's worker thread however many statements it holds; on failure it is rolled back.
/// Its text depends only on the two lists' lengths, which [`padded`] rounds to powers of two, so
/// the prepared statements are reused from the connection's cache (preparing a multi-row
/// statement costs more than running it).
async fn write(
    pool: &SqlitePool,
    records: &[&RecordRow],
    journals: &[&JournalRow],
) -> Result<HashSet<String>, StoreError> {
    #[cfg(test)]
    let started = std::time::Instant::now();
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| backend("acquiring the writer connection", e))?;
    #[cfg(test)]
    let ops = records.len() + journals.len();
    let journals = padded(journals);
    let records = padded(records);
    let mut qb = QueryBuilder::<Sqlite>::new("BEGIN IMMEDIATE; ");
    if !journals.is_empty() {
        // An entry whose record already exists is not journaled: it would be a false orphan.
        qb.push(
            "INSERT INTO activation_journal (activation_id, owner, accepted_at, body) \
             SELECT v.column1, v.column2, v.column3, v.column4 FROM (",
        );
        qb.push_values(&journals, |mut b, j| {
            b.push_bind(&j.id)
                .push_bind(&j.owner)
                .push_bind(j.accepted_at)
                .push_bind(&j.body);
        });
        qb.push(
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM activations a WHERE a.activation_id = v.column1) \
             ON CONFLICT (activation_id) DO NOTHING; ",
        );
    }
    if !records.is_empty() {
        qb.push("SELECT activation_id FROM activations WHERE activation_id IN (");
        let mut list = qb.separated(", ");
        for r in &records {
            list.push_bind(&r.id);
        }
        qb.push("); ");
        qb.push("INSERT INTO activations (activation_id, namespace, rel_name, start, body) ");
        qb.push_values(&records, |mut b, r| {
            b.push_bind(&r.id)
                .push_bind(&r.namespace)
                .push_bind(&r.rel_name)
                .push_bind(r.start)
                .push_bind(&r.body);
        });
        qb.push(" ON CONFLICT (activation_id) DO NOTHING; ");
        qb.push("DELETE FROM activation_journal WHERE activation_id IN (");
        let mut list = qb.separated(", ");
        for r in &records {
            list.push_bind(&r.id);
        }
        qb.push("); ");
    }
    qb.push("COMMIT");
    match qb.build_query_as::<(String,)>().fetch_all(&mut *conn).await {
        Ok(ids) => {
            #[cfg(test)]
            stats::record(ops, started.elapsed());
            Ok(ids.into_iter().map(|(id,)| id).collect())
        }
        Err(e) => {
            // Whatever statement failed, leave no transaction open on the connection.
            if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::debug!(error = %rollback, "rollback after a failed batch");
            }
            Err(backend("writing an activation batch", e))
        }
    }
}

/// `rows` followed by copies of its last element up to the next power of two. Duplicated rows
/// are harmless in every statement of the batch (`ON CONFLICT DO NOTHING`, `IN` lists).
fn padded<'a, T>(rows: &[&'a T]) -> Vec<&'a T> {
    let mut out = rows.to_vec();
    if let Some(last) = rows.last() {
        out.resize(rows.len().next_power_of_two(), last);
    }
    out
}

/// Batch counters for the benchmark.
#[cfg(test)]
pub(crate) mod stats {
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BATCHES: AtomicUsize = AtomicUsize::new(0);
    static OPS: AtomicUsize = AtomicUsize::new(0);
    static MICROS: AtomicUsize = AtomicUsize::new(0);

    pub(crate) fn record(ops: usize, took: std::time::Duration) {
        BATCHES.fetch_add(1, Ordering::Relaxed);
        OPS.fetch_add(ops, Ordering::Relaxed);
        MICROS.fetch_add(took.as_micros() as usize, Ordering::Relaxed);
    }

    /// (batches, operations, µs spent writing) since the last call.
    pub(crate) fn take() -> (usize, usize, usize) {
        (
            BATCHES.swap(0, Ordering::Relaxed),
            OPS.swap(0, Ordering::Relaxed),
            MICROS.swap(0, Ordering::Relaxed),
        )
    }
}
