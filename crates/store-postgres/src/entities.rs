//! [`EntityStore`] on the `entities` table.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};
use whirl_spi::{Collection, Document, EntityStore, ListQuery, PutMode, StoreError};

use crate::{backend, int, sql_limit, uint, PostgresStore};

type Row = (String, String, i64, i64, String);

const COLUMNS: &str = "namespace, name, rev, updated, body";

fn document(
    c: Collection,
    (namespace, name, rev, updated, body): Row,
) -> Result<Document, StoreError> {
    let body = serde_json::from_str(&body).map_err(|e| {
        StoreError::Corrupt(format!(
            "{} {namespace}/{name}: body is not JSON: {e}",
            c.as_str()
        ))
    })?;
    Ok(Document {
        rev: uint(rev, "revision")?,
        updated: uint(updated, "updated")?,
        namespace,
        name,
        body,
    })
}

fn encode(body: &Value) -> Result<String, StoreError> {
    serde_json::to_string(body)
        .map_err(|e| StoreError::Backend(format!("serializing a document: {e}")))
}

/// `WHERE` clause shared by list and count.
fn filter<'a>(
    qb: &mut QueryBuilder<'a, Postgres>,
    c: Collection,
    namespace: &'a str,
    prefix: Option<&'a str>,
) {
    qb.push(" WHERE collection = ")
        .push_bind(c.as_str())
        .push(" AND namespace = ")
        .push_bind(namespace);
    if let Some(p) = prefix.filter(|p| !p.is_empty()) {
        // An exact prefix match whatever the characters (LIKE would need escaping).
        qb.push(" AND starts_with(name, ").push_bind(p).push(")");
    }
}

#[async_trait]
impl EntityStore for PostgresStore {
    async fn get(
        &self,
        c: Collection,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Document>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM entities WHERE collection = $1 AND namespace = $2 AND name = $3"
        ))
        .bind(c.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| backend(&format!("reading {} {namespace}/{name}", c.as_str()), e))?;
        row.map(|r| document(c, r)).transpose()
    }

    async fn put(
        &self,
        c: Collection,
        namespace: &str,
        name: &str,
        body: &Value,
        mode: PutMode,
    ) -> Result<u64, StoreError> {
        let text = encode(body)?;
        let now = int(whirl_model::time::now_ms());
        let what = format!("{} {namespace}/{name}", c.as_str());
        match mode {
            PutMode::Create => {
                sqlx::query(
                    "INSERT INTO entities (collection, namespace, name, rev, updated, body) VALUES ($1, $2, $3, 1, $4, $5)",
                )
                .bind(c.as_str())
                .bind(namespace)
                .bind(name)
                .bind(now)
                .bind(text)
                .execute(&self.inner.pool)
                .await
                .map_err(|e| match backend(&format!("creating {what}"), e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("{what} already exists")),
                    other => other,
                })?;
                Ok(1)
            }
            PutMode::Update { rev } => {
                // One statement: the revision check, the write and the new write sequence are atomic.
                let new_rev: Option<(i64,)> = sqlx::query_as(
                    "UPDATE entities SET rev = rev + 1, updated = $1, body = $2, \
                     seq = nextval('entity_writes') \
                     WHERE collection = $3 AND namespace = $4 AND name = $5 AND rev = $6 RETURNING rev",
                )
                .bind(now)
                .bind(text)
                .bind(c.as_str())
                .bind(namespace)
                .bind(name)
                .bind(int(rev))
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(|e| backend(&format!("updating {what}"), e))?;
                match new_rev {
                    Some((r,)) => uint(r, "revision"),
                    None => Err(StoreError::Conflict(format!(
                        "{what} does not exist at revision {rev}"
                    ))),
                }
            }
        }
    }

    async fn delete(
        &self,
        c: Collection,
        namespace: &str,
        name: &str,
        rev: Option<u64>,
    ) -> Result<Option<Document>, StoreError> {
        let what = format!("{} {namespace}/{name}", c.as_str());
        let row: Option<Row> = sqlx::query_as(&format!(
            "DELETE FROM entities WHERE collection = $1 AND namespace = $2 AND name = $3 \
             AND ($4::BIGINT IS NULL OR rev = $4) RETURNING {COLUMNS}"
        ))
        .bind(c.as_str())
        .bind(namespace)
        .bind(name)
        .bind(rev.map(int))
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| backend(&format!("deleting {what}"), e))?;
        match (row, rev) {
            (Some(r), _) => document(c, r).map(Some),
            (None, None) => Ok(None),
            // Nothing deleted at that revision: either it is gone (fine) or it moved on (conflict).
            (None, Some(rev)) => match self.get(c, namespace, name).await? {
                None => Ok(None),
                Some(d) => Err(StoreError::Conflict(format!(
                    "{what} is at revision {}, not {rev}",
                    d.rev
                ))),
            },
        }
    }

    async fn list(
        &self,
        c: Collection,
        namespace: &str,
        q: &ListQuery,
    ) -> Result<Vec<Document>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM entities"));
        filter(&mut qb, c, namespace, q.prefix.as_deref());
        qb.push(" ORDER BY updated DESC, seq DESC LIMIT ")
            .push_bind(sql_limit(q.limit))
            .push(" OFFSET ")
            .push_bind(int(q.skip as u64));
        let rows: Vec<Row> = qb
            .build_query_as()
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| backend(&format!("listing {} of {namespace}", c.as_str()), e))?;
        rows.into_iter().map(|r| document(c, r)).collect()
    }

    async fn count(
        &self,
        c: Collection,
        namespace: &str,
        prefix: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM entities");
        filter(&mut qb, c, namespace, prefix);
        let (n,): (i64,) = qb
            .build_query_as()
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|e| backend(&format!("counting {} of {namespace}", c.as_str()), e))?;
        uint(n, "count")
    }
}
