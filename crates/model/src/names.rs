//! Entity names and fully qualified names, validated as OpenWhisk validates them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Longest entity or namespace name OpenWhisk accepts.
pub const MAX_NAME_LENGTH: usize = 256;

/// The namespace placeholder meaning "the caller's own namespace".
pub const DEFAULT_NAMESPACE: &str = "_";

/// A validated entity name (one path segment): action, package, trigger, rule or namespace name.
///
/// OpenWhisk's rule: word characters, and after the first character also `@`, `.`, `-` and space,
/// not ending in a space; at most 256 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityName(String);

impl EntityName {
    pub fn new(name: impl Into<String>) -> Result<Self, ModelError> {
        let name = name.into();
        if is_valid_name(&name) {
            Ok(Self(name))
        } else {
            Err(ModelError::InvalidName(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Checks one name segment against OpenWhisk's entity name rule.
pub fn is_valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LENGTH {
        return false;
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or(' ');
    if !is_word(first) {
        return false;
    }
    let last = name.chars().last().unwrap_or(' ');
    if name.len() > 1 && last == ' ' {
        return false;
    }
    chars.all(|c| is_word(c) || matches!(c, '@' | '.' | '-' | ' '))
}

impl TryFrom<String> for EntityName {
    type Error = ModelError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<EntityName> for String {
    fn from(value: EntityName) -> Self {
        value.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EntityName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `/namespace[/package]/name`: where an entity lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FullyQualifiedName {
    /// The root namespace (never `_` once resolved).
    pub namespace: EntityName,
    pub package: Option<EntityName>,
    pub name: EntityName,
}

impl FullyQualifiedName {
    pub fn new(namespace: EntityName, package: Option<EntityName>, name: EntityName) -> Self {
        Self {
            namespace,
            package,
            name,
        }
    }

    /// The entity path as OpenWhisk writes it in a document's `namespace` field: `ns` or `ns/pkg`.
    pub fn path(&self) -> String {
        match &self.package {
            Some(p) => format!("{}/{}", self.namespace, p),
            None => self.namespace.to_string(),
        }
    }

    /// The name relative to the namespace, as stored: `name` or `pkg/name`.
    pub fn relative(&self) -> String {
        match &self.package {
            Some(p) => format!("{}/{}", p, self.name),
            None => self.name.to_string(),
        }
    }

    /// Parses `/ns/name`, `/ns/pkg/name`, `name` or `pkg/name` (relative names take `default_ns`).
    /// `_` as the namespace segment is replaced by `default_ns`.
    pub fn parse(s: &str, default_ns: &EntityName) -> Result<Self, ModelError> {
        let bad = || ModelError::InvalidName(s.to_string());
        let (absolute, rest) = match s.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let ns_of = |seg: &str| -> Result<EntityName, ModelError> {
            if seg == DEFAULT_NAMESPACE {
                Ok(default_ns.clone())
            } else {
                EntityName::new(seg)
            }
        };
        match (absolute, parts.as_slice()) {
            (true, [ns, name]) => Ok(Self::new(ns_of(ns)?, None, EntityName::new(*name)?)),
            (true, [ns, pkg, name]) => Ok(Self::new(
                ns_of(ns)?,
                Some(EntityName::new(*pkg)?),
                EntityName::new(*name)?,
            )),
            (false, [name]) => Ok(Self::new(default_ns.clone(), None, EntityName::new(*name)?)),
            (false, [pkg, name]) => Ok(Self::new(
                default_ns.clone(),
                Some(EntityName::new(*pkg)?),
                EntityName::new(*name)?,
            )),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for FullyQualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.package {
            Some(p) => write!(f, "/{}/{}/{}", self.namespace, p, self.name),
            None => write!(f, "/{}/{}", self.namespace, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_openwhisk_rules() {
        for ok in [
            "a",
            "hello",
            "hello-world",
            "a.b",
            "x@y",
            "my action",
            "_x",
            "9",
        ] {
            assert!(is_valid_name(ok), "{ok} should be valid");
        }
        for bad in ["", " a", "-a", "a/b", "a ", "ä", "a\n", &"x".repeat(257)] {
            assert!(!is_valid_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn parses_fully_qualified_names() {
        let guest = EntityName::new("guest").unwrap();
        let f = FullyQualifiedName::parse("/whisk.system/utils/echo", &guest).unwrap();
        assert_eq!(f.to_string(), "/whisk.system/utils/echo");
        assert_eq!(f.path(), "whisk.system/utils");
        let f = FullyQualifiedName::parse("pkg/a", &guest).unwrap();
        assert_eq!(f.to_string(), "/guest/pkg/a");
        assert_eq!(f.relative(), "pkg/a");
        let f = FullyQualifiedName::parse("/_/a", &guest).unwrap();
        assert_eq!(f.to_string(), "/guest/a");
        assert!(FullyQualifiedName::parse("/a", &guest).is_err());
        assert!(FullyQualifiedName::parse("a/b/c", &guest).is_err());
    }
}
