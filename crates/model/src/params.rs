//! Parameters and annotations: OpenWhisk's ordered `[{key, value}]` lists.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One `{key, value}` entry. `init: true` marks an init-time parameter (passed to `/init` as env).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// An ordered list of parameters or annotations; keys are unique (a later put replaces).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(pub Vec<KeyValue>);

impl Params {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }

    /// Whether an annotation is present and truthy (`true`, or a non-empty, non-"false" string).
    pub fn is_truthy(&self, key: &str) -> bool {
        match self.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !s.is_empty() && s != "false",
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            _ => false,
        }
    }

    /// Sets `key` to `value`, replacing an existing entry in place.
    pub fn put(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.0.push(KeyValue {
                key,
                value,
                init: None,
            }),
        }
    }

    /// `self` overlaid with `other` (entries of `other` win).
    pub fn merged(&self, other: &Params) -> Params {
        let mut out = self.clone();
        for kv in &other.0 {
            match out.0.iter_mut().find(|e| e.key == kv.key) {
                Some(e) => *e = kv.clone(),
                None => out.0.push(kv.clone()),
            }
        }
        out
    }

    /// The parameters as one JSON object (what an action receives).
    pub fn to_object(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect()
    }

    /// Keys marked `init: true`.
    pub fn init_keys(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|kv| kv.init == Some(true))
            .map(|kv| kv.key.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks for duplicate or empty keys.
    pub fn validate(&self, what: &str) -> Result<(), crate::ModelError> {
        let mut seen = std::collections::HashSet::new();
        for kv in &self.0 {
            if kv.key.is_empty() {
                return Err(crate::ModelError::Invalid(format!(
                    "{what} keys must not be empty."
                )));
            }
            if !seen.insert(kv.key.as_str()) {
                return Err(crate::ModelError::Invalid(format!(
                    "{what} key '{}' is given more than once.",
                    kv.key
                )));
            }
        }
        Ok(())
    }
}

impl From<Map<String, Value>> for Params {
    fn from(map: Map<String, Value>) -> Self {
        Params(
            map.into_iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value,
                    init: None,
                })
                .collect(),
        )
    }
}

impl FromIterator<(String, Value)> for Params {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut p = Params::new();
        for (k, v) in iter {
            p.put(k, v);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_overrides_and_keeps_order() {
        let a: Params =
            serde_json::from_value(json!([{"key":"x","value":1},{"key":"y","value":2}])).unwrap();
        let b: Params =
            serde_json::from_value(json!([{"key":"y","value":3},{"key":"z","value":4}])).unwrap();
        let m = a.merged(&b);
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!([{"key":"x","value":1},{"key":"y","value":3},{"key":"z","value":4}])
        );
    }

    #[test]
    fn truthiness() {
        let a: Params = serde_json::from_value(json!([{"key":"web-export","value":true},{"key":"f","value":false},{"key":"s","value":"false"}])).unwrap();
        assert!(a.is_truthy("web-export"));
        assert!(!a.is_truthy("f"));
        assert!(!a.is_truthy("s"));
        assert!(!a.is_truthy("missing"));
    }
}
