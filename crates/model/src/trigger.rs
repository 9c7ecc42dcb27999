//! Triggers and rules, in OpenWhisk's JSON shapes. A rule's status lives in its trigger's `rules`
//! map (as OpenWhisk keeps it), so firing a trigger reads one document.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::names::{EntityName, FullyQualifiedName, DEFAULT_NAMESPACE};
use crate::params::Params;

/// An entity reference as OpenWhisk writes it in triggers and rules: `{"path": "ns[/pkg]",
/// "name": "x"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    pub path: String,
    pub name: String,
}

impl EntityRef {
    /// `ns[/pkg]/name` (OpenWhisk's `asString`, without a leading slash).
    pub fn as_path(&self) -> String {
        format!("{}/{}", self.path, self.name)
    }

    /// The fully qualified name (None if the stored path is not valid).
    pub fn fqn(&self) -> Option<FullyQualifiedName> {
        let default = EntityName::new(DEFAULT_NAMESPACE).ok()?;
        FullyQualifiedName::parse(&format!("/{}/{}", self.path, self.name), &default).ok()
    }
}

impl From<&FullyQualifiedName> for EntityRef {
    fn from(f: &FullyQualifiedName) -> Self {
        Self {
            path: f.path(),
            name: f.name.to_string(),
        }
    }
}

/// A rule's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    Active,
    Inactive,
}

impl RuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Active => "active",
            RuleStatus::Inactive => "inactive",
        }
    }
}

/// A trigger's record of one rule: the action it fires and whether it is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducedRule {
    pub action: EntityRef,
    pub status: RuleStatus,
}

/// A stored trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub publish: bool,
    #[serde(default)]
    pub parameters: Params,
    #[serde(default)]
    pub limits: serde_json::Map<String, Value>,
    #[serde(default)]
    pub annotations: Params,
    /// Rules by `ns/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<BTreeMap<String, ReducedRule>>,
    #[serde(default)]
    pub updated: u64,
}

/// The body of `PUT /namespaces/{ns}/triggers/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TriggerPut {
    pub parameters: Option<Params>,
    pub limits: Option<serde_json::Map<String, Value>>,
    pub annotations: Option<Params>,
    pub version: Option<String>,
    pub publish: Option<bool>,
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub namespace: Option<Value>,
    #[serde(default)]
    pub rules: Option<Value>,
}

/// A stored rule (its status is kept in its trigger).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub publish: bool,
    pub trigger: EntityRef,
    pub action: EntityRef,
    #[serde(default)]
    pub annotations: Params,
    #[serde(default)]
    pub updated: u64,
}

/// A name in a rule's `PUT` body: `"/ns/name"`, `"name"`, `"/ns/pkg/name"` or `{"path", "name"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef(pub String);

impl<'de> Deserialize<'de> for NameRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(NameRef(s)),
            Value::Object(m) => {
                let path = m.get("path").and_then(Value::as_str);
                let name = m.get("name").and_then(Value::as_str);
                match (path, name) {
                    (Some(p), Some(n)) => Ok(NameRef(format!("/{p}/{n}"))),
                    _ => Err(serde::de::Error::custom(
                        "an entity reference needs 'path' and 'name'",
                    )),
                }
            }
            _ => Err(serde::de::Error::custom(
                "an entity reference must be a string or an object",
            )),
        }
    }
}

/// The body of `PUT /namespaces/{ns}/rules/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RulePut {
    pub trigger: Option<NameRef>,
    pub action: Option<NameRef>,
    pub annotations: Option<Params>,
    pub version: Option<String>,
    pub publish: Option<bool>,
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub namespace: Option<Value>,
    #[serde(default)]
    pub status: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        let t: Trigger = serde_json::from_value(json!({
            "namespace": "guest", "name": "t", "version": "0.0.1",
            "rules": {"guest/r": {"action": {"path": "guest", "name": "a"}, "status": "active"}}
        }))
        .unwrap();
        let r = &t.rules.as_ref().unwrap()["guest/r"];
        assert_eq!(r.status, RuleStatus::Active);
        assert_eq!(r.action.as_path(), "guest/a");
        assert_eq!(r.action.fqn().unwrap().to_string(), "/guest/a");
        let p: RulePut = serde_json::from_value(
            json!({"trigger": "/_/t", "action": {"path": "guest/pkg", "name": "a"}}),
        )
        .unwrap();
        assert_eq!(p.trigger.unwrap().0, "/_/t");
        assert_eq!(p.action.unwrap().0, "/guest/pkg/a");
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["limits"], json!({}));
    }
}
