//! Packages and package bindings, in OpenWhisk's JSON shapes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::params::Params;

/// What a package binding refers to: a package (never another binding) by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub namespace: String,
    pub name: String,
}

impl Binding {
    /// `ns/name`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A package's `binding` field: `{}` for a package, `{namespace, name}` for a binding.
/// (Serde helper: OpenWhisk writes an empty object rather than leaving the field out.)
mod binding_field {
    use super::*;

    pub fn serialize<S: Serializer>(b: &Option<Binding>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => b.serialize(s),
            None => serde_json::Map::new().serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Binding>, D::Error> {
        let v = Option::<Value>::deserialize(d)?;
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) if m.is_empty() => Ok(None),
            Some(v) => Binding::deserialize(v)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A stored package or package binding, as `GET /namespaces/{ns}/packages/{name}` shows it
/// (without the `actions` and `feeds` a GET adds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// The root namespace.
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub publish: bool,
    #[serde(default, with = "binding_field")]
    pub binding: Option<Binding>,
    #[serde(default)]
    pub annotations: Params,
    #[serde(default)]
    pub parameters: Params,
    /// Epoch milliseconds of the last update.
    #[serde(default)]
    pub updated: u64,
}

impl Package {
    /// `ns/name`: the `namespace` field of the package's actions.
    pub fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The body of `PUT /namespaces/{ns}/packages/{name}`: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PackagePut {
    #[serde(default, with = "binding_field")]
    pub binding: Option<Binding>,
    pub parameters: Option<Params>,
    pub annotations: Option<Params>,
    pub version: Option<String>,
    pub publish: Option<bool>,
    /// Ignored (the path names the package); accepted because clients send them.
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub namespace: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_are_empty_objects_when_absent() {
        let p: Package = serde_json::from_value(json!({
            "namespace": "guest", "name": "p", "version": "0.0.1", "binding": {}
        }))
        .unwrap();
        assert!(p.binding.is_none());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["binding"], json!({}));
        let b: PackagePut = serde_json::from_value(
            json!({"binding": {"namespace": "whisk.system", "name": "utils"}}),
        )
        .unwrap();
        assert_eq!(b.binding.unwrap().path(), "whisk.system/utils");
        let none: PackagePut = serde_json::from_value(json!({"binding": {}})).unwrap();
        assert!(none.binding.is_none());
        assert!(serde_json::from_value::<PackagePut>(json!({"binding": {"name": 1}})).is_err());
    }
}
