//! [`SubjectStore`] on the `subjects` table.

use async_trait::async_trait;
use whirl_spi::{StoreError, SubjectRecord, SubjectStore};

use crate::{backend, PostgresStore};

type Row = (String, String, String, String, String);

const COLUMNS: &str = "namespace, subject, uuid, key_hash, limits";

fn record((namespace, subject, uuid, key_hash, limits): Row) -> Result<SubjectRecord, StoreError> {
    let limits = serde_json::from_str(&limits).map_err(|e| {
        StoreError::Corrupt(format!("subject of {namespace}: limits are not valid: {e}"))
    })?;
    Ok(SubjectRecord {
        subject,
        namespace,
        uuid,
        key_hash,
        limits,
    })
}

#[async_trait]
impl SubjectStore for PostgresStore {
    async fn put_subject(&self, r: &SubjectRecord) -> Result<(), StoreError> {
        let limits = serde_json::to_string(&r.limits).map_err(|e| {
            StoreError::Backend(format!("serializing limits of {}: {e}", r.namespace))
        })?;
        sqlx::query(
            "INSERT INTO subjects (namespace, subject, uuid, key_hash, limits) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (namespace) DO UPDATE SET subject = excluded.subject, uuid = excluded.uuid, \
             key_hash = excluded.key_hash, limits = excluded.limits",
        )
        .bind(&r.namespace)
        .bind(&r.subject)
        .bind(&r.uuid)
        .bind(&r.key_hash)
        .bind(limits)
        .execute(&self.inner.pool)
        .await
        .map_err(|e| match backend(&format!("writing the subject of {}", r.namespace), e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("uuid {} already belongs to another namespace", r.uuid))
            }
            other => other,
        })?;
        Ok(())
    }

    async fn subject_by_uuid(&self, uuid: &str) -> Result<Option<SubjectRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM subjects WHERE uuid = $1"))
                .bind(uuid)
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(|e| backend("reading a subject by uuid", e))?;
        row.map(record).transpose()
    }

    async fn subject_by_namespace(
        &self,
        namespace: &str,
    ) -> Result<Option<SubjectRecord>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM subjects WHERE namespace = $1"
        ))
        .bind(namespace)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(|e| backend(&format!("reading the subject of {namespace}"), e))?;
        row.map(record).transpose()
    }

    async fn list_subjects(&self) -> Result<Vec<SubjectRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM subjects ORDER BY namespace"
        ))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(|e| backend("listing subjects", e))?;
        rows.into_iter().map(record).collect()
    }

    async fn delete_subject(&self, namespace: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM subjects WHERE namespace = $1")
            .bind(namespace)
            .execute(&self.inner.pool)
            .await
            .map_err(|e| backend(&format!("deleting the subject of {namespace}"), e))?;
        Ok(r.rows_affected() > 0)
    }
}
