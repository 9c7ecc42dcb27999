//! Operator commands on a platform's store, for `whirl admin`: namespaces and their keys.
//!
//! Keys are stored only as salted hashes ([`SubjectRecord::hash_key`]); a key is shown once, when
//! it is created. The commands open the configured store directly, so they work whether or not
//! the platform is running (the store takes care of concurrent access). A running platform's
//! authenticator may keep a deleted namespace's identity for its cache lifetime.

use std::path::Path;

use anyhow::Context;
use whirl_model::{EntityName, UserLimits};
use whirl_spi::SubjectRecord;

use crate::{Config, StoreConfig};

/// What `whirl admin namespace create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewNamespace {
    pub namespace: String,
    /// Defaults to the namespace's name.
    pub subject: Option<String>,
    /// Both or neither: given credentials (e.g. to recreate a well-known key); otherwise fresh ones.
    pub uuid: Option<String>,
    pub key: Option<String>,
    pub limits: UserLimits,
}

async fn open(cfg: &Config, data_dir: &Path) -> anyhow::Result<crate::OpenStore> {
    if let StoreConfig::Sqlite(_) = &cfg.store {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    }
    crate::OpenStore::open(&cfg.store, data_dir).await
}

/// Creates a namespace with its subject and credentials; returns `(uuid, key)`.
pub async fn create_namespace(
    cfg: &Config,
    data_dir: &Path,
    spec: NewNamespace,
) -> anyhow::Result<(String, String)> {
    EntityName::new(spec.namespace.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (uuid, key) = match (spec.uuid, spec.key) {
        (Some(u), Some(k)) => {
            anyhow::ensure!(
                !u.is_empty() && !u.contains(':') && k.len() >= 8,
                "a uuid without ':' and a key of at least 8 characters are needed"
            );
            (u, k)
        }
        (None, None) => whirl_auth_basic::generate_credentials(),
        _ => anyhow::bail!("give both --uuid and --key, or neither"),
    };
    let store = open(cfg, data_dir).await?;
    let result = async {
        if store.subject_by_namespace(&spec.namespace).await?.is_some() {
            anyhow::bail!("namespace '{}' already exists", spec.namespace);
        }
        let record = SubjectRecord {
            subject: spec.subject.unwrap_or_else(|| spec.namespace.clone()),
            namespace: spec.namespace.clone(),
            uuid: uuid.clone(),
            key_hash: SubjectRecord::hash_key(&uuid, &key),
            limits: spec.limits,
        };
        store
            .put_subject(&record)
            .await
            .with_context(|| format!("cannot create namespace '{}'", spec.namespace))?;
        Ok(())
    }
    .await;
    store.close().await;
    result.map(|()| (uuid, key))
}

/// Every namespace with its subject, uuid and limits (never keys).
pub async fn list_namespaces(cfg: &Config, data_dir: &Path) -> anyhow::Result<Vec<SubjectRecord>> {
    let store = open(cfg, data_dir).await?;
    let list = store.list_subjects().await;
    store.close().await;
    let mut list = list?;
    list.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    Ok(list)
}

/// Removes a namespace's subject and credentials (its entities and activations stay). Returns
/// whether it existed.
pub async fn delete_namespace(
    cfg: &Config,
    data_dir: &Path,
    namespace: &str,
) -> anyhow::Result<bool> {
    let store = open(cfg, data_dir).await?;
    let deleted = store.delete_subject(namespace).await;
    store.close().await;
    Ok(deleted?)
}

/// Replaces a namespace's limits. Returns whether the namespace exists.
pub async fn set_limits(
    cfg: &Config,
    data_dir: &Path,
    namespace: &str,
    limits: UserLimits,
) -> anyhow::Result<bool> {
    let store = open(cfg, data_dir).await?;
    let result = async {
        let Some(mut record) = store.subject_by_namespace(namespace).await? else {
            return Ok(false);
        };
        record.limits = limits;
        store.put_subject(&record).await?;
        Ok(true)
    }
    .await;
    store.close().await;
    result
}
