//! The controller's action cache: resolved action documents by (namespace, name). It is read on
//! every invoke, so a hit costs a read lock and two hash lookups with no allocation; entries expire
//! after a TTL and the cache is bounded (a full cache is emptied).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde_json::{Map, Value};
use whirl_model::Action;

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
}

impl ResolvedAction {
    pub fn new(rev: u64, action: Action) -> Self {
        let defaults = action.parameters.to_object();
        let init_args = action.parameters.init_keys().map(str::to_owned).collect();
        let immutable = immutable_parameters(&action);
        Self {
            rev,
            action: Arc::new(action),
            defaults,
            init_args,
            immutable,
        }
    }
}

/// OpenWhisk's immutable parameters: with a truthy `final` annotation, every parameter that has a
/// value (not null).
pub(crate) fn immutable_parameters(action: &Action) -> Vec<String> {
    if !action.annotations.is_truthy("final") {
        return Vec::new();
    }
    action
        .parameters
        .0
        .iter()
        .filter(|kv| !kv.value.is_null())
        .map(|kv| kv.key.clone())
        .collect()
}

struct Timed<T> {
    value: T,
    at: Instant,
}

/// One namespace's cached actions by name.
type NamespaceActions = HashMap<String, Timed<Arc<ResolvedAction>>>;

/// Resolved actions by namespace, then name (`name` or `pkg/name`).
pub(crate) struct ActionCache {
    map: RwLock<HashMap<String, NamespaceActions>>,
    ttl: Duration,
    capacity: usize,
}

impl ActionCache {
    pub fn new(ttl_ms: u64, capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
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

    /// Caches an entry unless a newer revision is already cached.
    pub fn insert(&self, namespace: &str, name: &str, entry: Arc<ResolvedAction>) {
        if !self.enabled() {
            return;
        }
        let mut map = self.map.write();
        let total: usize = map.values().map(HashMap::len).sum();
        if total >= self.capacity {
            map.clear();
        }
        let names = map.entry(namespace.to_owned()).or_default();
        match names.get(name) {
            Some(old) if old.value.rev > entry.rev && old.at.elapsed() < self.ttl => {}
            _ => {
                names.insert(
                    name.to_owned(),
                    Timed {
                        value: entry,
                        at: Instant::now(),
                    },
                );
            }
        }
    }

    pub fn remove(&self, namespace: &str, name: &str) {
        let mut map = self.map.write();
        if let Some(names) = map.get_mut(namespace) {
            names.remove(name);
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
        c.insert("guest", "a", Arc::new(ResolvedAction::new(2, a.clone())));
        c.insert("guest", "a", Arc::new(ResolvedAction::new(1, a.clone())));
        assert_eq!(c.get("guest", "a").unwrap().rev, 2);
        assert!(c.get("guest", "b").is_none());
        c.remove("guest", "a");
        assert!(c.get("guest", "a").is_none());

        let off = ActionCache::new(0, 10);
        off.insert("guest", "a", Arc::new(ResolvedAction::new(1, a)));
        assert!(off.get("guest", "a").is_none());
    }

    #[test]
    fn caches_are_bounded() {
        let c = ActionCache::new(60_000, 2);
        let a = action(json!([]), json!([]));
        for n in ["a", "b", "c"] {
            c.insert("guest", n, Arc::new(ResolvedAction::new(1, a.clone())));
        }
        assert!(c.get("guest", "c").is_some());
        assert!(c.get("guest", "a").is_none());
    }
}
