//! Conformance suite: authentication SPI.
//!
//! [`authenticator`] creates a subject with fresh credentials through a [`SubjectStore`] (the key
//! stored only as [`SubjectRecord::hash_key`], as every store keeps it) and checks, through the
//! [`Authenticator`] trait alone:
//!
//! * the right `uuid:key` → the subject's identity: its namespace, subject, uuid and limits, and
//!   the key as presented (actions receive it as their api key);
//! * a wrong key, another subject's key, a key differing in one character, a prefix of the key,
//!   an empty key, an unknown uuid, an empty uuid → `None`;
//! * `identity_for_namespace` → the owner's identity (key empty or the real key); an unknown
//!   namespace → `None`;
//! * a rotated key: within the implementation's maximum staleness, the new key authenticates
//!   (with the new key in the identity) and the old one no longer does;
//! * a deleted subject: within the maximum staleness, neither `authenticate` nor
//!   `identity_for_namespace` finds it, and it stays gone.
//!
//! Authenticators may cache what they read; the caller passes the longest time a change in the
//! subject store may go unnoticed (e.g. a cache's TTL), and the suite waits at most that long
//! (plus a short grace for scheduling) for each change to take effect. Namespaces and uuids are
//! unique per run, so the suite can run against a shared store. Every panic names the broken rule.

use std::time::{Duration, Instant};

use whirl_model::{Identity, UserLimits};

use crate::auth::Authenticator;
use crate::store::{SubjectRecord, SubjectStore};

/// Added to the caller's maximum staleness before a change that has not taken effect fails the
/// suite: a store lookup that began just before the change may cache its result a moment later.
const GRACE: Duration = Duration::from_millis(500);
/// How often the suite looks again while waiting for a change to take effect.
const POLL: Duration = Duration::from_millis(10);

/// Fresh credentials for one subject of this run.
struct Credentials {
    namespace: String,
    uuid: String,
    key: String,
}

/// Something unique to this process and call, as hex.
fn unique_hex(what: &str) -> String {
    use sha2::Digest;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{what}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

impl Credentials {
    fn fresh() -> Self {
        let ns = unique_hex("namespace");
        let u = unique_hex("uuid");
        Credentials {
            namespace: format!("conf-auth-{}", &ns[..24]),
            // OpenWhisk's shape: a version-4 uuid and a 64-character alphanumeric key.
            uuid: format!(
                "{}-{}-4{}-8{}-{}",
                &u[0..8],
                &u[8..12],
                &u[13..16],
                &u[17..20],
                &u[20..32]
            ),
            key: unique_hex("key"),
        }
    }

    fn record(&self, key: &str, limits: &UserLimits) -> SubjectRecord {
        SubjectRecord {
            subject: format!("{}-subject", self.namespace),
            namespace: self.namespace.clone(),
            uuid: self.uuid.clone(),
            key_hash: SubjectRecord::hash_key(&self.uuid, key),
            limits: limits.clone(),
        }
    }
}

async fn authenticate(auth: &dyn Authenticator, uuid: &str, key: &str) -> Option<Identity> {
    auth.authenticate(uuid, key)
        .await
        .unwrap_or_else(|e| panic!("rule: authenticate() succeeds while the store is up; got {e}"))
}

async fn for_namespace(auth: &dyn Authenticator, namespace: &str) -> Option<Identity> {
    auth.identity_for_namespace(namespace)
        .await
        .unwrap_or_else(|e| {
            panic!("rule: identity_for_namespace() succeeds while the store is up; got {e}")
        })
}

/// Checks that `id` is the identity of `record`, carrying `key` (or, when `key_may_be_empty`,
/// no key at all).
fn assert_identity(
    id: &Identity,
    record: &SubjectRecord,
    key: &str,
    key_may_be_empty: bool,
    rule: &str,
) {
    assert_eq!(
        id.namespace.as_str(),
        record.namespace,
        "rule: {rule}: the identity's namespace is the subject's; got {id:?}"
    );
    assert_eq!(
        id.subject, record.subject,
        "rule: {rule}: the identity's subject is the stored subject; got {id:?}"
    );
    assert_eq!(
        id.uuid, record.uuid,
        "rule: {rule}: the identity's uuid is the subject's; got {id:?}"
    );
    assert_eq!(
        id.limits, record.limits,
        "rule: {rule}: the identity carries the subject's limits; got {id:?}"
    );
    if key_may_be_empty {
        assert!(
            id.key.is_empty() || id.key == key,
            "rule: {rule}: the identity's key is empty or the subject's key; got {:?}",
            id.key
        );
    } else {
        assert_eq!(
            id.key, key,
            "rule: {rule}: the identity carries the key that was presented"
        );
    }
}

/// Polls `check` until it holds, for at most `max_staleness` plus [`GRACE`]; panics naming `rule`
/// if it never does.
async fn within<F, Fut>(max_staleness: Duration, rule: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + max_staleness + GRACE;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rule: {rule} (waited the maximum staleness of {max_staleness:?} plus {GRACE:?})"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Runs the authentication suite: `auth` must read its subjects from `subjects`, and notice every
/// change there within `max_staleness` (0 for an authenticator without a cache). Panics naming
/// the broken rule.
pub async fn authenticator(
    auth: &dyn Authenticator,
    subjects: &dyn SubjectStore,
    max_staleness: Duration,
) {
    let limits = UserLimits {
        invocations_per_minute: Some(42),
        concurrent_invocations: Some(7),
        fires_per_minute: None,
    };
    let a = Credentials::fresh();
    let record = a.record(&a.key, &limits);
    subjects
        .put_subject(&record)
        .await
        .expect("put_subject (the suite's own subject)");
    let b = Credentials::fresh();
    let record_b = b.record(&b.key, &UserLimits::default());
    subjects
        .put_subject(&record_b)
        .await
        .expect("put_subject (the suite's second subject)");

    // The right credentials.
    let id = authenticate(auth, &a.uuid, &a.key)
        .await
        .unwrap_or_else(|| panic!("rule: the right uuid:key of a stored subject authenticates"));
    assert_identity(&id, &record, &a.key, false, "authenticate");
    assert_eq!(
        id.api_key(),
        format!("{}:{}", a.uuid, a.key),
        "rule: authenticate: the identity's api key is the credential presented"
    );
    let id_b = authenticate(auth, &b.uuid, &b.key)
        .await
        .unwrap_or_else(|| panic!("rule: each subject authenticates with its own credentials"));
    assert_identity(&id_b, &record_b, &b.key, false, "authenticate");

    // Wrong credentials.
    let mut one_off = a.key.clone().into_bytes();
    let last = one_off.len() - 1;
    one_off[last] = if one_off[last] == b'0' { b'1' } else { b'0' };
    let one_off = String::from_utf8(one_off).expect("ascii key");
    let unknown = Credentials::fresh();
    for (uuid, key, what) in [
        (a.uuid.as_str(), "wrong", "a wrong key"),
        (
            a.uuid.as_str(),
            one_off.as_str(),
            "a key differing in its last character",
        ),
        (
            a.uuid.as_str(),
            &a.key[..a.key.len() - 1],
            "a prefix of the key",
        ),
        (
            a.uuid.as_str(),
            &format!("{}x", a.key),
            "the key with a suffix",
        ),
        (a.uuid.as_str(), "", "an empty key"),
        (
            a.uuid.as_str(),
            &a.key.to_uppercase(),
            "the key in another case",
        ),
        (b.uuid.as_str(), a.key.as_str(), "another subject's key"),
        (unknown.uuid.as_str(), a.key.as_str(), "an unknown uuid"),
        (
            unknown.uuid.as_str(),
            "",
            "an unknown uuid with an empty key",
        ),
        ("", a.key.as_str(), "an empty uuid"),
        ("", "", "empty credentials"),
    ] {
        assert!(
            authenticate(auth, uuid, key).await.is_none(),
            "rule: {what} does not authenticate"
        );
    }
    // Failed attempts change nothing for the right credentials.
    assert!(
        authenticate(auth, &a.uuid, &a.key).await.is_some(),
        "rule: failed attempts do not lock out the right credentials"
    );

    // The owner of a namespace.
    let owner = for_namespace(auth, &a.namespace)
        .await
        .unwrap_or_else(|| panic!("rule: identity_for_namespace finds a stored namespace"));
    assert_identity(&owner, &record, &a.key, true, "identity_for_namespace");
    assert!(
        for_namespace(auth, &unknown.namespace).await.is_none(),
        "rule: identity_for_namespace of an unknown namespace is None"
    );

    // A rotated key takes effect within the maximum staleness.
    let rotated = unique_hex("rotated");
    subjects
        .put_subject(&a.record(&rotated, &limits))
        .await
        .expect("put_subject (rotating the suite's key)");
    within(
        max_staleness,
        "after a key rotation, the new key authenticates within the maximum staleness",
        || async {
            authenticate(auth, &a.uuid, &rotated)
                .await
                .is_some_and(|id| id.key == rotated)
        },
    )
    .await;
    within(
        max_staleness,
        "after a key rotation, the old key stops authenticating within the maximum staleness",
        || async { authenticate(auth, &a.uuid, &a.key).await.is_none() },
    )
    .await;
    let id = authenticate(auth, &a.uuid, &rotated)
        .await
        .unwrap_or_else(|| panic!("rule: the rotated key keeps authenticating"));
    assert_identity(&id, &record, &rotated, false, "authenticate after rotation");

    // A deleted subject stops authenticating within the maximum staleness, and stays gone.
    assert!(
        subjects
            .delete_subject(&a.namespace)
            .await
            .expect("delete_subject (the suite's subject)"),
        "delete_subject: the suite's subject existed"
    );
    within(
        max_staleness,
        "a deleted subject stops authenticating within the maximum staleness",
        || async { authenticate(auth, &a.uuid, &rotated).await.is_none() },
    )
    .await;
    within(
        max_staleness,
        "identity_for_namespace stops finding a deleted subject within the maximum staleness",
        || async { for_namespace(auth, &a.namespace).await.is_none() },
    )
    .await;
    for _ in 0..3 {
        assert!(
            authenticate(auth, &a.uuid, &rotated).await.is_none(),
            "rule: a deleted subject stays unauthenticated"
        );
        assert!(
            for_namespace(auth, &a.namespace).await.is_none(),
            "rule: a deleted namespace stays unknown"
        );
    }
    assert!(
        authenticate(auth, &b.uuid, &b.key).await.is_some(),
        "rule: deleting one subject leaves the others authenticating"
    );
    subjects
        .delete_subject(&b.namespace)
        .await
        .expect("delete_subject (cleanup)");
}
