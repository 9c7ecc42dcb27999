//! Whirl's `basic` [`Authenticator`]: OpenWhisk's HTTP Basic scheme, where the user name is the
//! namespace's uuid and the password its key, checked against a [`SubjectStore`].
//!
//! Stores keep only [`SubjectRecord::hash_key`] of a key, so authenticating hashes the presented
//! key with its uuid and compares the two hashes in constant time. Because every request of the
//! warm invoke path authenticates, successful lookups are cached in memory for a short time
//! ([`BasicAuthConfig::cache_ttl_ms`], 10 s by default): a rotated or deleted key keeps working
//! for at most that long on a process that used it, which is the price of not reading the
//! database per request. Unknown uuids are remembered for a shorter time
//! ([`BasicAuthConfig::negative_ttl_ms`], 1 s) so a burst of bad credentials does not turn into a
//! burst of queries, while a namespace created a moment ago is usable almost at once.
//!
//! The crate also has the admin helpers the composition root calls at first start:
//! [`ensure_namespace`] and [`ensure_well_known`] (OpenWhisk standalone's `guest` and
//! `whisk.system` credentials), both idempotent and never overwriting an existing subject, and
//! [`generate_credentials`] for new namespaces.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::RwLock;
use whirl_model::identity::well_known;
use whirl_model::{EntityName, Identity};
use whirl_spi::{AuthError, Authenticator, StoreError, SubjectRecord, SubjectStore};

/// Configuration of the `basic` authenticator (the `[auth]` section with `type = "basic"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuthConfig {
    /// How long a subject found in the store is trusted from memory, in milliseconds (default
    /// 10 000). Key changes and deletions take effect within this time. 0 disables the cache.
    pub cache_ttl_ms: u64,
    /// How long an unknown uuid or namespace is remembered as unknown, in milliseconds (default
    /// 1 000). 0 disables negative caching.
    pub negative_ttl_ms: u64,
    /// Most entries kept per cache (by uuid, by namespace); beyond it expired entries are
    /// dropped, and if that is not enough, all of them (default 10 000).
    pub max_entries: usize,
}

impl Default for BasicAuthConfig {
    fn default() -> Self {
        Self {
            cache_ttl_ms: 10_000,
            negative_ttl_ms: 1_000,
            max_entries: 10_000,
        }
    }
}

/// The `basic` authenticator over a subject store, with its lookup cache.
pub struct BasicAuthenticator {
    subjects: Arc<dyn SubjectStore>,
    ttl: Duration,
    negative_ttl: Duration,
    by_uuid: Cache,
    by_namespace: Cache,
}

impl std::fmt::Debug for BasicAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthenticator")
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("cached_uuids", &self.by_uuid.map.read().len())
            .finish()
    }
}

/// A cached lookup: the subject as stored (identity with an empty key, plus the key hash), or
/// the fact that there was none.
#[derive(Clone)]
struct Entry {
    found: Option<(Identity, String)>,
    expires: Instant,
}

/// A bounded map from uuid or namespace to a cached lookup.
struct Cache {
    map: RwLock<HashMap<String, Entry>>,
    max: usize,
}

impl Cache {
    fn new(max: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            max: max.max(1),
        }
    }

    fn get(&self, k: &str) -> Option<Entry> {
        let map = self.map.read();
        let e = map.get(k)?;
        (e.expires > Instant::now()).then(|| e.clone())
    }

    fn put(&self, k: String, e: Entry) {
        let mut map = self.map.write();
        if map.len() >= self.max {
            let now = Instant::now();
            map.retain(|_, e| e.expires > now);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(k, e);
    }
}

impl BasicAuthenticator {
    /// An authenticator over `subjects` with the default configuration.
    pub fn new(subjects: Arc<dyn SubjectStore>) -> Self {
        Self::with_config(subjects, &BasicAuthConfig::default())
    }

    /// An authenticator over `subjects` with `config`.
    pub fn with_config(subjects: Arc<dyn SubjectStore>, config: &BasicAuthConfig) -> Self {
        Self {
            subjects,
            ttl: Duration::from_millis(config.cache_ttl_ms),
            negative_ttl: Duration::from_millis(config.negative_ttl_ms),
            by_uuid: Cache::new(config.max_entries),
            by_namespace: Cache::new(config.max_entries),
        }
    }

    /// Drops every cached lookup, so the next requests read the store (after an admin changed
    /// keys through this process).
    pub fn clear_cache(&self) {
        self.by_uuid.map.write().clear();
        self.by_namespace.map.write().clear();
    }

    fn entry(&self, found: Option<(Identity, String)>) -> Option<Entry> {
        let ttl = if found.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        (!ttl.is_zero()).then(|| Entry {
            found,
            expires: Instant::now() + ttl,
        })
    }

    /// The subject for `uuid`, from the cache or the store.
    async fn lookup_uuid(&self, uuid: &str) -> Result<Option<(Identity, String)>, AuthError> {
        if let Some(e) = self.by_uuid.get(uuid) {
            return Ok(e.found);
        }
        let found = self
            .subjects
            .subject_by_uuid(uuid)
            .await
            .map_err(store_error)?
            .map(identity)
            .transpose()?;
        if let Some(e) = self.entry(found.clone()) {
            self.by_uuid.put(uuid.to_string(), e);
        }
        Ok(found)
    }
}

fn store_error(e: StoreError) -> AuthError {
    AuthError::Backend(format!("subject store: {e}"))
}

/// A stored subject as an identity without its key, and the key's hash.
fn identity(r: SubjectRecord) -> Result<(Identity, String), AuthError> {
    let namespace = EntityName::new(r.namespace.clone()).map_err(|e| {
        AuthError::Backend(format!(
            "subject of '{}' has an invalid namespace: {e}",
            r.namespace
        ))
    })?;
    let id = Identity {
        subject: r.subject,
        namespace,
        uuid: r.uuid,
        key: String::new(),
        limits: r.limits,
    };
    Ok((id, r.key_hash))
}

/// Equality of two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[async_trait]
impl Authenticator for BasicAuthenticator {
    async fn authenticate(&self, uuid: &str, key: &str) -> Result<Option<Identity>, AuthError> {
        let Some((mut identity, key_hash)) = self.lookup_uuid(uuid).await? else {
            return Ok(None);
        };
        let presented = SubjectRecord::hash_key(uuid, key);
        if !constant_time_eq(presented.as_bytes(), key_hash.as_bytes()) {
            return Ok(None);
        }
        identity.key = key.to_string();
        Ok(Some(identity))
    }

    async fn identity_for_namespace(&self, namespace: &str) -> Result<Option<Identity>, AuthError> {
        if let Some(e) = self.by_namespace.get(namespace) {
            return Ok(e.found.map(|(id, _)| id));
        }
        let found = self
            .subjects
            .subject_by_namespace(namespace)
            .await
            .map_err(store_error)?
            .map(identity)
            .transpose()?;
        if let Some(e) = self.entry(found.clone()) {
            self.by_namespace.put(namespace.to_string(), e);
        }
        Ok(found.map(|(id, _)| id))
    }
}

/// Creates the subject of `namespace` with credentials `uuid:key` unless the namespace already
/// has one (which is left as it is, whatever its key). Returns whether it created it. A uuid
/// that another namespace already has is a [`StoreError::Conflict`].
pub async fn ensure_namespace(
    subjects: &dyn SubjectStore,
    subject: &str,
    namespace: &str,
    uuid: &str,
    key: &str,
) -> Result<bool, StoreError> {
    if subjects.subject_by_namespace(namespace).await?.is_some() {
        return Ok(false);
    }
    let record = SubjectRecord {
        subject: subject.to_string(),
        namespace: namespace.to_string(),
        uuid: uuid.to_string(),
        key_hash: SubjectRecord::hash_key(uuid, key),
        limits: Default::default(),
    };
    subjects.put_subject(&record).await?;
    Ok(true)
}

/// The namespace OpenWhisk standalone gives its users.
pub const GUEST_NAMESPACE: &str = "guest";
/// The namespace of system packages.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";

/// Creates OpenWhisk standalone's well-known namespaces, `guest` and `whisk.system`, with the
/// keys of [`whirl_model::identity::well_known`], leaving either alone if it already exists.
/// Returns the namespaces it created.
pub async fn ensure_well_known(
    subjects: &dyn SubjectStore,
) -> Result<Vec<&'static str>, StoreError> {
    let mut created = Vec::new();
    for (ns, uuid, key) in [
        (
            GUEST_NAMESPACE,
            well_known::GUEST_UUID,
            well_known::GUEST_KEY,
        ),
        (
            SYSTEM_NAMESPACE,
            well_known::SYSTEM_UUID,
            well_known::SYSTEM_KEY,
        ),
    ] {
        if ensure_namespace(subjects, ns, ns, uuid, key).await? {
            tracing::info!(namespace = ns, "created well-known namespace");
            created.push(ns);
        }
    }
    Ok(created)
}

/// Fresh credentials in OpenWhisk's format: a random version-4 uuid and a 64-character
/// alphanumeric key.
pub fn generate_credentials() -> (String, String) {
    use rand::distributions::{Alphanumeric, DistString};
    use rand::Rng;
    let mut b: [u8; 16] = rand::thread_rng().gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    let key = Alphanumeric.sample_string(&mut rand::thread_rng(), 64);
    (uuid, key)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use whirl_store_sqlite::SqliteStore;

    use super::*;

    /// A subject store that counts the lookups reaching it.
    struct Counting {
        inner: SqliteStore,
        lookups: AtomicUsize,
    }

    #[async_trait]
    impl SubjectStore for Counting {
        async fn put_subject(&self, r: &SubjectRecord) -> Result<(), StoreError> {
            self.inner.put_subject(r).await
        }
        async fn subject_by_uuid(&self, uuid: &str) -> Result<Option<SubjectRecord>, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.subject_by_uuid(uuid).await
        }
        async fn subject_by_namespace(
            &self,
            ns: &str,
        ) -> Result<Option<SubjectRecord>, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            self.inner.subject_by_namespace(ns).await
        }
        async fn list_subjects(&self) -> Result<Vec<SubjectRecord>, StoreError> {
            self.inner.list_subjects().await
        }
        async fn delete_subject(&self, ns: &str) -> Result<bool, StoreError> {
            self.inner.delete_subject(ns).await
        }
    }

    async fn store() -> Arc<Counting> {
        Arc::new(Counting {
            inner: SqliteStore::in_memory().await.unwrap(),
            lookups: AtomicUsize::new(0),
        })
    }

    fn lookups(s: &Counting) -> usize {
        s.lookups.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn authenticates_well_known_and_caches() {
        let s = store().await;
        assert_eq!(
            ensure_well_known(s.as_ref()).await.unwrap(),
            ["guest", "whisk.system"]
        );
        assert!(
            ensure_well_known(s.as_ref()).await.unwrap().is_empty(),
            "idempotent"
        );
        let auth = BasicAuthenticator::new(s.clone());
        let before = lookups(&s);

        let id = auth
            .authenticate(well_known::GUEST_UUID, well_known::GUEST_KEY)
            .await
            .unwrap()
            .expect("guest");
        assert_eq!(id.namespace.as_str(), "guest");
        assert_eq!(id.subject, "guest");
        assert_eq!(id.uuid, well_known::GUEST_UUID);
        assert_eq!(
            id.key,
            well_known::GUEST_KEY,
            "the identity carries the key presented"
        );
        assert_eq!(
            id.api_key(),
            format!("{}:{}", well_known::GUEST_UUID, well_known::GUEST_KEY)
        );
        for _ in 0..10 {
            assert!(auth
                .authenticate(well_known::GUEST_UUID, well_known::GUEST_KEY)
                .await
                .unwrap()
                .is_some());
        }
        assert_eq!(lookups(&s) - before, 1, "successful lookups are cached");

        assert!(
            auth.authenticate(well_known::GUEST_UUID, "wrong")
                .await
                .unwrap()
                .is_none(),
            "wrong key"
        );
        assert!(
            auth.authenticate(well_known::GUEST_UUID, "")
                .await
                .unwrap()
                .is_none(),
            "empty key"
        );
        assert!(
            auth.authenticate(well_known::SYSTEM_UUID, well_known::GUEST_KEY)
                .await
                .unwrap()
                .is_none(),
            "another namespace's key"
        );
        let sys = auth
            .authenticate(well_known::SYSTEM_UUID, well_known::SYSTEM_KEY)
            .await
            .unwrap()
            .expect("system");
        assert_eq!(sys.namespace.as_str(), "whisk.system");
    }

    #[tokio::test]
    async fn unknown_uuid_is_cached_briefly() {
        let s = store().await;
        let auth = BasicAuthenticator::with_config(
            s.clone(),
            &BasicAuthConfig {
                cache_ttl_ms: 10_000,
                negative_ttl_ms: 50,
                max_entries: 100,
            },
        );
        let (uuid, key) = generate_credentials();
        assert!(auth.authenticate(&uuid, &key).await.unwrap().is_none());
        assert!(auth.authenticate(&uuid, &key).await.unwrap().is_none());
        assert_eq!(
            lookups(&s),
            1,
            "a failed lookup is cached for the negative ttl"
        );
        assert!(ensure_namespace(s.as_ref(), "alice", "alice", &uuid, &key)
            .await
            .unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        let id = auth
            .authenticate(&uuid, &key)
            .await
            .unwrap()
            .expect("found once the negative entry expired");
        assert_eq!(id.namespace.as_str(), "alice");
    }

    #[tokio::test]
    async fn cached_subjects_expire() {
        let s = store().await;
        let auth = BasicAuthenticator::with_config(
            s.clone(),
            &BasicAuthConfig {
                cache_ttl_ms: 50,
                negative_ttl_ms: 0,
                max_entries: 100,
            },
        );
        let (uuid, key) = generate_credentials();
        ensure_namespace(s.as_ref(), "bob", "bob", &uuid, &key)
            .await
            .unwrap();
        assert!(auth.authenticate(&uuid, &key).await.unwrap().is_some());
        s.delete_subject("bob").await.unwrap();
        assert!(
            auth.authenticate(&uuid, &key).await.unwrap().is_some(),
            "served from the cache within the ttl"
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(
            auth.authenticate(&uuid, &key).await.unwrap().is_none(),
            "deletion takes effect after the ttl"
        );
        let n = lookups(&s);
        assert!(auth.authenticate(&uuid, &key).await.unwrap().is_none());
        assert_eq!(lookups(&s), n + 1, "negative_ttl 0 caches no failure");

        ensure_namespace(s.as_ref(), "bob", "bob", &uuid, &key)
            .await
            .unwrap();
        assert!(auth.authenticate(&uuid, &key).await.unwrap().is_some());
        s.delete_subject("bob").await.unwrap();
        auth.clear_cache();
        assert!(
            auth.authenticate(&uuid, &key).await.unwrap().is_none(),
            "clear_cache forgets at once"
        );
    }

    #[tokio::test]
    async fn identity_for_namespace_has_no_key() {
        let s = store().await;
        ensure_well_known(s.as_ref()).await.unwrap();
        let auth = BasicAuthenticator::new(s.clone());
        let id = auth
            .identity_for_namespace("guest")
            .await
            .unwrap()
            .expect("guest");
        assert_eq!(
            (id.namespace.as_str(), id.uuid.as_str(), id.key.as_str()),
            ("guest", well_known::GUEST_UUID, "")
        );
        assert!(auth
            .identity_for_namespace("nobody")
            .await
            .unwrap()
            .is_none());
        let n = lookups(&s);
        auth.identity_for_namespace("guest")
            .await
            .unwrap()
            .expect("guest");
        assert_eq!(lookups(&s), n, "namespace lookups are cached too");
    }

    #[tokio::test]
    async fn ensure_namespace_never_overwrites() {
        let s = store().await;
        let (uuid, key) = generate_credentials();
        assert!(ensure_namespace(s.as_ref(), "guest", "guest", &uuid, &key)
            .await
            .unwrap());
        assert!(
            ensure_well_known(s.as_ref()).await.unwrap() == ["whisk.system"],
            "guest exists already"
        );
        let auth = BasicAuthenticator::new(s.clone());
        assert!(
            auth.authenticate(&uuid, &key).await.unwrap().is_some(),
            "the existing guest key is kept"
        );
        assert!(auth
            .authenticate(well_known::GUEST_UUID, well_known::GUEST_KEY)
            .await
            .unwrap()
            .is_none());
        let err = ensure_namespace(s.as_ref(), "eve", "eve", &uuid, "x")
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(_)),
            "a uuid belongs to one namespace: {err}"
        );
    }

    #[test]
    fn credentials_look_like_openwhisk() {
        let (uuid, key) = generate_credentials();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4');
        assert_eq!(key.len(), 64);
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(generate_credentials(), generate_credentials());
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn cache_is_bounded() {
        let c = Cache::new(3);
        for i in 0..10 {
            c.put(
                i.to_string(),
                Entry {
                    found: None,
                    expires: Instant::now() + Duration::from_secs(60),
                },
            );
        }
        assert!(c.map.read().len() <= 3);
    }

    #[test]
    fn config_defaults_and_rejects_unknown_keys() {
        let c: BasicAuthConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, BasicAuthConfig::default());
        assert_eq!(c.cache_ttl_ms, 10_000);
        assert!(serde_json::from_str::<BasicAuthConfig>(r#"{"ttl": 1}"#).is_err());
    }
}
