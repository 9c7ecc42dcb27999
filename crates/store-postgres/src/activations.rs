//! [`ActivationStore`] on the `activations` and `activation_journal` tables.

use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder};
use whirl_model::{Activation, ActivationId};
use whirl_spi::{ActivationQuery, ActivationStore, PendingActivation, StoreError, StoreOutcome};

use crate::{backend, int, sql_limit, uint, PostgresStore};

/// The action's name relative to its namespace, as list filters match it: the `path` annotation
/// (`ns/pkg/name` or `ns/name`) without its first segment, or the record's `name` when there is no
/// usable path.
pub(crate) fn relative_name(a: &Activation) -> String {
    match a.path().and_then(|p| p.split_once('/')) {
        Some((_, rest)) if !rest.is_empty() => rest.to_string(),
        _ => a.name.clone(),
    }
}

fn decode(body: &str) -> Result<Activation, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("activation record: {e}")))
}

/// `WHERE` clause shared by list and count.
fn filter<'a>(qb: &mut QueryBuilder<'a, Postgres>, q: &'a ActivationQuery) {
    qb.push(" WHERE namespace = ")
        .push_bind(q.namespace.as_str());
    if let Some(name) = &q.name {
        qb.push(" AND rel_name = ").push_bind(name.as_str());
    }
    if let Some(since) = q.since {
        qb.push(" AND start >= ").push_bind(int(since));
    }
    if let Some(upto) = q.upto {
        qb.push(" AND start <= ").push_bind(int(upto));
    }
}

#[async_trait]
impl ActivationStore for PostgresStore {
    async fn store(&self, activation: &Activation) -> Result<StoreOutcome, StoreError> {
        let body = serde_json::to_string(activation).map_err(|e| {
            StoreError::Backend(format!(
                "serializing activation {}: {e}",
                activation.activation_id
            ))
        })?;
        let id = activation.activation_id.to_string();
        // One statement, so one transaction: the record is inserted unless one is there (first
        // record wins) and the journal entry is deleted either way (an entry whose record exists
        // is never an orphan, so clearing it again is harmless).
        let (inserted,): (i64,) = sqlx::query_as(
            "WITH ins AS (\
                 INSERT INTO activations (activation_id, namespace, rel_name, start, body) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (activation_id) DO NOTHING RETURNING 1\
             ), cleared AS (\
                 DELETE FROM activation_journal WHERE activation_id = $1\
             ) SELECT COUNT(*) FROM ins",
        )
        .bind(&id)
        .bind(&activation.namespace)
        .bind(relative_name(activation))
        .bind(int(activation.start))
        .bind(body)
        .fetch_one(&self.inner.pool)
        .await
        .map_err(|e| backend(&format!("storing activation {id}"), e))?;
        Ok(if inserted > 0 {
            StoreOutcome::Stored
        } else {
            StoreOutcome::AlreadyStored
        })
    }

    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT body FROM activations WHERE activation_id = $1 AND namespace = $2",
        )
        .bind(id.to_string())
        .bind(namespace)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| backend(&format!("reading activation {id}"), e))?;
        row.map(|(body,)| decode(&body)).transpose()
    }

    async fn list(&self, q: &ActivationQuery) -> Result<Vec<Activation>, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT body FROM activations");
        filter(&mut qb, q);
        qb.push(" ORDER BY start DESC, seq DESC LIMIT ")
            .push_bind(sql_limit(q.limit))
            .push(" OFFSET ")
            .push_bind(int(q.skip as u64));
        let rows: Vec<(String,)> = qb
            .build_query_as()
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| backend(&format!("listing activations of {}", q.namespace), e))?;
        rows.iter().map(|(body,)| decode(body)).collect()
    }

    async fn count(&self, q: &ActivationQuery) -> Result<u64, StoreError> {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM activations");
        filter(&mut qb, q);
        let (n,): (i64,) = qb
            .build_query_as()
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|e| backend(&format!("counting activations of {}", q.namespace), e))?;
        Ok(uint(n, "count")?.saturating_sub(q.skip as u64))
    }

    async fn delete(&self, namespace: &str, id: &ActivationId) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM activations WHERE activation_id = $1 AND namespace = $2")
            .bind(id.to_string())
            .bind(namespace)
            .execute(&self.inner.pool)
            .await
            .map_err(|e| backend(&format!("deleting activation {id}"), e))?;
        Ok(r.rows_affected() > 0)
    }

    async fn journal(&self, pending: &PendingActivation) -> Result<(), StoreError> {
        let body = serde_json::to_string(pending).map_err(|e| {
            StoreError::Backend(format!(
                "serializing journal entry {}: {e}",
                pending.activation_id
            ))
        })?;
        let id = pending.activation_id.to_string();
        // An entry whose record already exists is not journaled: it would be a false orphan.
        sqlx::query(
            "INSERT INTO activation_journal (activation_id, owner, accepted_at, body) \
             SELECT $1, $2, $3, $4 \
             WHERE NOT EXISTS (SELECT 1 FROM activations a WHERE a.activation_id = $1) \
             ON CONFLICT (activation_id) DO NOTHING",
        )
        .bind(&id)
        .bind(&pending.owner)
        .bind(int(pending.accepted_at))
        .bind(body)
        .execute(&self.inner.pool)
        .await
        .map_err(|e| backend(&format!("journaling activation {id}"), e))?;
        Ok(())
    }

    async fn orphans(&self, owner: &str) -> Result<Vec<PendingActivation>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT j.body FROM activation_journal j WHERE j.owner = $1 \
             AND NOT EXISTS (SELECT 1 FROM activations a WHERE a.activation_id = j.activation_id) \
             ORDER BY j.accepted_at, j.activation_id",
        )
        .bind(owner)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| backend(&format!("reading the journal of {owner}"), e))?;
        rows.iter()
            .map(|(body,)| {
                serde_json::from_str(body)
                    .map_err(|e| StoreError::Corrupt(format!("journal entry: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use whirl_model::{ActivationResponse, Params};

    use super::*;

    fn record(name: &str, path: Option<&str>) -> Activation {
        let mut annotations = Params::new();
        if let Some(p) = path {
            annotations.put("path", json!(p));
        }
        Activation {
            namespace: "ns".into(),
            name: name.into(),
            version: "0.0.1".into(),
            subject: "s".into(),
            activation_id: ActivationId::generate(),
            start: 1,
            end: 2,
            duration: Some(1),
            publish: false,
            cause: None,
            response: ActivationResponse::success(json!({})),
            logs: vec![],
            annotations,
        }
    }

    #[test]
    fn relative_names() {
        assert_eq!(relative_name(&record("a", Some("ns/pkg/a"))), "pkg/a");
        assert_eq!(relative_name(&record("a", Some("ns/a"))), "a");
        assert_eq!(relative_name(&record("a", None)), "a");
        assert_eq!(relative_name(&record("a", Some("ns"))), "a");
        assert_eq!(relative_name(&record("a", Some("ns/"))), "a");
    }
}
