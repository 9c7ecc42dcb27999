//! The store SPIs: entities (actions and, later, packages, triggers, rules) with revisions,
//! activation records with list filters and a crash journal, and subjects (namespaces and keys).

use async_trait::async_trait;
use serde_json::Value;
use whirl_model::{Activation, ActivationId, UserLimits};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create found the document already there, or an update's revision did not match.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store backend failed: {0}")]
    Backend(String),
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
}

/// The kinds of entity documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Collection {
    Actions,
    Packages,
    Triggers,
    Rules,
}

impl Collection {
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Actions => "actions",
            Collection::Packages => "packages",
            Collection::Triggers => "triggers",
            Collection::Rules => "rules",
        }
    }
}

/// A stored entity document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Root namespace.
    pub namespace: String,
    /// Name relative to the namespace: `name` or `pkg/name`.
    pub name: String,
    /// Revision, starting at 1 and increasing by one on each update.
    pub rev: u64,
    /// Epoch ms of the last write.
    pub updated: u64,
    /// The entity as JSON.
    pub body: Value,
}

/// How a put treats an existing document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Fail with [`StoreError::Conflict`] if the document exists.
    Create,
    /// Replace the document only if its revision is still `rev`.
    Update { rev: u64 },
}

/// Paging and filtering for entity lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only names starting with this (e.g. `pkg/` for a package's actions).
    pub prefix: Option<String>,
    pub skip: usize,
    /// At most this many documents; 0 means no limit (the controller applies its own maximum).
    pub limit: usize,
}

#[async_trait]
pub trait EntityStore: Send + Sync + 'static {
    async fn get(
        &self,
        c: Collection,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Document>, StoreError>;

    /// Writes a document and returns its new revision. All or nothing. `Create` conflicts if the
    /// document exists; `Update { rev }` conflicts if it is missing or at another revision. The
    /// store stamps `updated` with the time of the write.
    async fn put(
        &self,
        c: Collection,
        namespace: &str,
        name: &str,
        body: &Value,
        mode: PutMode,
    ) -> Result<u64, StoreError>;

    /// Deletes a document (only at revision `rev` if given); returns what was deleted, or None if
    /// there was no document. A document at another revision than `rev` is a conflict.
    async fn delete(
        &self,
        c: Collection,
        namespace: &str,
        name: &str,
        rev: Option<u64>,
    ) -> Result<Option<Document>, StoreError>;

    /// Documents of a namespace, most recently updated first. The order is total (ties broken
    /// the same way every time), so paging with `skip` neither repeats nor drops documents.
    async fn list(
        &self,
        c: Collection,
        namespace: &str,
        q: &ListQuery,
    ) -> Result<Vec<Document>, StoreError>;

    /// How many documents `list` would return without paging.
    async fn count(
        &self,
        c: Collection,
        namespace: &str,
        prefix: Option<&str>,
    ) -> Result<u64, StoreError>;
}

/// Filters for activation lists (OpenWhisk's `name`, `since`, `upto`, `skip`, `limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationQuery {
    pub namespace: String,
    /// `name` or `pkg/name` of the action, matched exactly against the record's `path`
    /// annotation without its namespace segment (the record's `name` when it has no path).
    pub name: Option<String>,
    /// Only activations that started at or after this epoch ms.
    pub since: Option<u64>,
    /// Only activations that started at or before this epoch ms.
    pub upto: Option<u64>,
    pub skip: usize,
    /// At most this many records; 0 means no limit. Ignored by `count`.
    pub limit: usize,
}

/// An accepted activation that has no record yet: the crash journal's entry. If the platform stops
/// before the record is stored, recovery turns each orphan into a whisk-internal-error record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PendingActivation {
    pub activation_id: ActivationId,
    /// The invoking namespace.
    pub namespace: String,
    /// `ns/pkg/name` of the action.
    pub path: String,
    pub version: String,
    pub subject: String,
    pub kind: String,
    pub accepted_at: u64,
    /// Which component is responsible for finishing it (controller or invoker id).
    pub owner: String,
    pub cause: Option<ActivationId>,
}

/// Whether [`ActivationStore::store`] wrote the record or found one already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    Stored,
    AlreadyStored,
}

#[async_trait]
pub trait ActivationStore: Send + Sync + 'static {
    /// Stores a record and clears its journal entry in one step. The first record for an id wins;
    /// a second store of the same id changes nothing and returns [`StoreOutcome::AlreadyStored`].
    async fn store(&self, activation: &Activation) -> Result<StoreOutcome, StoreError>;

    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError>;

    /// Records of a namespace, newest start first (a total order, so paging is stable).
    async fn list(&self, q: &ActivationQuery) -> Result<Vec<Activation>, StoreError>;

    /// How many records match the filters, less `skip` (never below 0); `limit` does not apply.
    /// (OpenWhisk's count honours `skip` too.)
    async fn count(&self, q: &ActivationQuery) -> Result<u64, StoreError>;

    async fn delete(&self, namespace: &str, id: &ActivationId) -> Result<bool, StoreError>;

    /// Journals an accepted activation before it is dispatched.
    async fn journal(&self, pending: &PendingActivation) -> Result<(), StoreError>;

    /// Journal entries of `owner` that never got a record (after a crash). Entries stay until a
    /// record is stored for them; an entry whose id already has a record is never an orphan.
    async fn orphans(&self, owner: &str) -> Result<Vec<PendingActivation>, StoreError>;
}

/// A namespace's subject and credentials as stored. The key is stored only as a salted hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecord {
    pub subject: String,
    pub namespace: String,
    pub uuid: String,
    /// Hex SHA-256 of `uuid:key` (see [`SubjectRecord::hash_key`]).
    pub key_hash: String,
    pub limits: UserLimits,
}

impl SubjectRecord {
    /// The stored form of a key: hex SHA-256 over `uuid`, a colon and the key (the uuid salts it).
    /// Every store and tool uses this one function so they agree.
    pub fn hash_key(uuid: &str, key: &str) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(uuid.as_bytes());
        h.update(b":");
        h.update(key.as_bytes());
        hex::encode(h.finalize())
    }
}

#[async_trait]
pub trait SubjectStore: Send + Sync + 'static {
    /// Creates or replaces the subject for `record.namespace`. A uuid identifies one namespace:
    /// a uuid that another namespace already has is a conflict.
    async fn put_subject(&self, record: &SubjectRecord) -> Result<(), StoreError>;
    async fn subject_by_uuid(&self, uuid: &str) -> Result<Option<SubjectRecord>, StoreError>;
    async fn subject_by_namespace(
        &self,
        namespace: &str,
    ) -> Result<Option<SubjectRecord>, StoreError>;
    async fn list_subjects(&self) -> Result<Vec<SubjectRecord>, StoreError>;
    async fn delete_subject(&self, namespace: &str) -> Result<bool, StoreError>;
}

/// Stores a record, retrying with capped exponential backoff while the store fails, and returns
/// the record that is stored (the first one for its id wins). Gives up only if the store keeps
/// failing for about ten minutes, and then says so loudly.
pub async fn store_with_retry(store: &dyn ActivationStore, activation: Activation) -> Activation {
    let mut pause = std::time::Duration::from_millis(50);
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        match store.store(&activation).await {
            Ok(StoreOutcome::Stored) => return activation,
            Ok(StoreOutcome::AlreadyStored) => {
                let ns = activation.namespace.clone();
                return match store.get(&ns, &activation.activation_id).await {
                    Ok(Some(stored)) => stored,
                    _ => activation,
                };
            }
            Err(e) if tokio::time::Instant::now() < give_up => {
                tracing::warn!(activation = %activation.activation_id, error = %e, retry_in_ms = pause.as_millis() as u64, "could not store the activation record; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(activation = %activation.activation_id, error = %e, "giving up storing the activation record");
                return activation;
            }
        }
    }
}
