//! The controller's action cache: resolved action documents by (namespace, name). It is read on
//! every invoke, so a hit costs a read lock and two hash lookups with no allocation; entries expire
//! after a TTL and the cache is bounded (a full cache is emptied).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde_json::{Map, Value};
use whirl_model::{Action, Params};

/// An action as the invoke path needs it, derived once per document revision.
#[derive(Debug)]
pub(crate) struct ResolvedAction {
    /// Store revision of the document.
    pub rev: u64,
    pub action: Arc<Action>,
    /// The action's parameters as one object (the defaults an invoke's body overrides).
    pub defaults: Map<String, Value>,
    /// Parameter keys that go to /init.
    pub init_args: Vec<String>,
    /// Parameter keys an invoke may not override (annotation `final`).
    pub immutable: Vec<String>,
    /// Whether callers outside the addressed namespace may read and invoke it (an action in a
    /// published package; never a binding's).
    pub public: bool,
    /// A conductor action (annotation `conductor`): invoking it runs a composition.
    pub conductor: bool,
    /// Annotations recorded on its activations besides the invoker's (`binding` when the action
    /// was reached through a package binding).
    pub extra_annotations: Vec<(String, Value)>,
}

impl ResolvedAction {
    pub fn new(rev: u64, action: Action) -> Self {
        let defaults = action.parameters.to_object();
        let init_args = action.parameters.init_keys().map(str::to_owned).collect();
        let immutable = immutable_parameters(&action, &defaults);
        let conductor = action.annotations.is_truthy("conductor");
        Self {
            rev,
            action: Arc::new(action),
            defaults,
            init_args,
            immutable,
            public: false,
            conductor,
            extra_annotations: Vec::new(),
        }
    }

    /// An action in a package: its parameters on top of the package's `inherited` ones (the
    /// package's, with a binding's on top), as OpenWhisk merges them.
    pub fn packaged(
        rev: u64,
        action: Action,
        inherited: &Params,
        public: bool,
        binding: Option<String>,
    ) -> Self {
        let mut defaults = inherited.to_object();
        defaults.extend(action.parameters.to_object());
        let init_args = action.parameters.init_keys().map(str::to_owned).collect();
        let immutable = immutable_parameters(&action, &defaults);
        let conductor = action.annotations.is_truthy("conductor");
        let extra_annotations = binding
            .map(|b| vec![("binding".to_owned(), Value::String(b))])
            .unwrap_or_default();
        Self {
            rev,
            action: Arc::new(action),
            defaults,
            init_args,
            immutable,
            public,
            conductor,
            extra_annotations,
        }
    }

    /// The action with the parameters it runs with (package parameters merged in).
    pub fn merged_action(&self) -> Action {
        let mut a = (*self.action).clone();
        if self.action.namespace.contains('/') {
            let mut merged: Params = self.defaults.clone().into();
            for kv in &mut merged.0 {
                kv.init = a
                    .parameters
                    .0
                    .iter()
                    .find(|o| o.key == kv.key)
                    .and_then(|o| o.init);
            }
            a.parameters = merged;
        }
        a
    }
}

/// OpenWhisk's immutable parameters: with a truthy `final` annotation, every parameter that has a
/// value (not null).
pub(crate) fn immutable_parameters(action: &Action, defaults: &Map<String, Value>) -> Vec<String> {
    if !action.annotations.is_truthy("final") {
        return Vec::new();
    }
    let own = action
        .parameters
        .0
        .iter()
        .filter(|kv| !kv.value.is_null())
        .map(|kv| kv.key.clone());
    let inherited = defaults
        .iter()
        .filter(|(k, v)| !v.is_null() && action.parameters.get(k).is_none())
        .map(|(k, _)| k.clone());
    own.chain(inherited).collect()
}

struct Timed<T> {
    value: T,
    at: Instant,
}

/// One namespace's cached actions by name.
type NamespaceActions = HashMap<String, Timed<Arc<ResolvedAction>>>;

/// Resolved actions by namespace, then name (`name` or `pkg/name`).
///
/// Races between filling the cache from a store read and this controller's own writes are
/// settled by a write epoch: every write bumps it before touching the store, and an entry is
/// only cached if no write began since the epoch its filler saw (otherwise the key is dropped
/// and the next read refills it). So a read that raced with a PUT or DELETE never leaves a stale
/// document behind.
pub(crate) struct ActionCache {
    map: RwLock<HashMap<String, NamespaceActions>>,
    len: AtomicUsize,
    epoch: AtomicU64,
    ttl: Duration,
    capacity: usize,
}

impl ActionCache {
    pub fn new(ttl_ms: u64, capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            len: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            ttl: Duration::from_millis(ttl_ms),
            capacity: capacity.max(1),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<ResolvedAction>> {
        if !self.enabled() {
            return None;
        }
        let map = self.map.read();
        let e = map.get(namespace)?.get(name)?;
        (e.at.elapsed() < self.ttl).then(|| e.value.clone())
    }

    /// The current write epoch (read it before reading the store to fill the cache).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Announces a write (call before writing the store); returns the epoch to insert with.
    pub fn begin_write(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Caches an entry read or written at `epoch`, unless a write began since (then the key is
    /// dropped) or a newer revision is cached.
    pub fn insert(&self, namespace: &str, name: &str, entry: Arc<ResolvedAction>, epoch: u64) {
        if !self.enabled() {
            return;
        }
        let mut map = self.map.write();
        if self.epoch.load(Ordering::Acquire) != epoch {
            Self::remove_locked(&mut map, &self.len, namespace, name);
            return;
        }
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            map.clear();
            self.len.store(0, Ordering::Relaxed);
        }
        let names = map.entry(namespace.to_owned()).or_default();
        match names.get_mut(name) {
            Some(old) if old.value.rev > entry.rev && old.at.elapsed() < self.ttl => {}
            Some(old) => {
                *old = Timed {
                    value: entry,
                    at: Instant::now(),
                }
            }
            None => {
                names.insert(
                    name.to_owned(),
                    Timed {
                        value: entry,
                        at: Instant::now(),
                    },
                );
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drops every cached action that lives in a package (of any namespace): they carry their
    /// package's and bindings' parameters and access, which a package write may change.
    pub fn remove_packaged(&self) {
        let mut map = self.map.write();
        let mut removed = 0;
        map.retain(|_, names| {
            names.retain(|name, _| {
                let keep = !name.contains('/');
                removed += usize::from(!keep);
                keep
            });
            !names.is_empty()
        });
        self.len.fetch_sub(removed, Ordering::Relaxed);
    }

    pub fn remove(&self, namespace: &str, name: &str) {
        let mut map = self.map.write();
        Self::remove_locked(&mut map, &self.len, namespace, name);
    }

    fn remove_locked(
        map: &mut HashMap<String, NamespaceActions>,
        len: &AtomicUsize,
        namespace: &str,
        name: &str,
    ) {
        if let Some(names) = map.get_mut(namespace) {
            if names.remove(name).is_some() {
                len.fetch_sub(1, Ordering::Relaxed);
            }
            if names.is_empty() {
                map.remove(namespace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(params: Value, annotations: Value) -> Action {
        serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "version": "0.0.1",
            "exec": {"kind": "python:3", "code": "x"},
            "parameters": params, "annotations": annotations,
            "limits": {"timeout": 1000, "memory": 256, "logs": 10, "concurrency": 1}
        }))
        .unwrap()
    }

    #[test]
    fn derives_defaults_init_args_and_final_parameters() {
        let a = action(
            json!([{"key":"x","value":1},{"key":"secret","value":"s","init":true},{"key":"unset","value":null}]),
            json!([{"key":"final","value":true}]),
        );
        let r = ResolvedAction::new(3, a);
        assert_eq!(
            Value::Object(r.defaults.clone()),
            json!({"x":1,"secret":"s","unset":null})
        );
        assert_eq!(r.init_args, vec!["secret"]);
        assert_eq!(r.immutable, vec!["x", "secret"]);
        let r = ResolvedAction::new(1, action(json!([{"key":"x","value":1}]), json!([])));
        assert!(r.immutable.is_empty());
    }

    #[test]
    fn action_cache_keeps_the_newest_revision_and_expires() {
        let c = ActionCache::new(60_000, 10);
        let a = action(json!([]), json!([]));
        let e = c.epoch();
        c.insert("guest", "a", Arc::new(ResolvedAction::new(2, a.clone())), e);
        c.insert("guest", "a", Arc::new(ResolvedAction::new(1, a.clone())), e);
        assert_eq!(c.get("guest", "a").unwrap().rev, 2);
        assert!(c.get("guest", "b").is_none());
        c.remove("guest", "a");
        assert!(c.get("guest", "a").is_none());

        let off = ActionCache::new(0, 10);
        off.insert("guest", "a", Arc::new(ResolvedAction::new(1, a)), 0);
        assert!(off.get("guest", "a").is_none());
    }

    #[test]
    fn fills_that_raced_with_a_write_are_not_cached() {
        let c = ActionCache::new(60_000, 10);
        let a = action(json!([]), json!([]));
        // A fill saw epoch e, then a write began: the fill's (old) document is dropped.
        let e = c.epoch();
        c.insert("guest", "a", Arc::new(ResolvedAction::new(1, a.clone())), e);
        let w = c.begin_write();
        c.insert("guest", "a", Arc::new(ResolvedAction::new(1, a.clone())), e);
        assert!(c.get("guest", "a").is_none());
        // The write's own insert stands.
        c.insert("guest", "a", Arc::new(ResolvedAction::new(2, a.clone())), w);
        assert_eq!(c.get("guest", "a").unwrap().rev, 2);
        // A write that began after another write's epoch loses its insert, and drops the key.
        let w1 = c.begin_write();
        let _w2 = c.begin_write();
        c.insert("guest", "a", Arc::new(ResolvedAction::new(3, a)), w1);
        assert!(c.get("guest", "a").is_none());
    }

    #[test]
    fn caches_are_bounded() {
        let c = ActionCache::new(60_000, 2);
        let a = action(json!([]), json!([]));
        for n in ["a", "b", "c"] {
            c.insert("guest", n, Arc::new(ResolvedAction::new(1, a.clone())), 0);
        }
        assert!(c.get("guest", "c").is_some());
        assert!(c.get("guest", "a").is_none());
    }
}
