//! The runtimes manifest: which kinds exist, their defaults, how our runtime runs them, which image
//! serves them under a container-image factory, and their stem cells (prewarmed containers).
//! The shape follows OpenWhisk's runtimes.json, expressed in Whirl's TOML config.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// How Whirl's own runtime loads code of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// A python3 interpreter running our action-loop launcher.
    Python,
    /// A node interpreter running our action-loop launcher.
    Node,
    /// An uploaded executable (`exec` in a zip, or a script with a shebang) speaking the action loop.
    Native,
}

/// Prewarmed containers to keep for a kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StemCell {
    /// How many to keep ready.
    pub count: usize,
    /// Memory in MB of each; only actions with exactly this memory limit can use them.
    pub memory: u64,
}

/// One runtime kind, e.g. `python:3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeKind {
    pub kind: String,
    /// The default of its family (what `family:default` resolves to).
    #[serde(default)]
    pub default: bool,
    /// Existing actions keep working; new ones cannot be created.
    #[serde(default)]
    pub deprecated: bool,
    pub launcher: Launcher,
    /// Interpreter for the launcher (looked up on PATH if not absolute); unused for native.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Container image serving this kind under an image-based container factory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Whether the runtime prints sentinel lines after each activation (default true).
    #[serde(default = "yes")]
    pub sentinelled_logs: bool,
    /// Whether this runtime can honestly run several activations at once in one container.
    #[serde(default)]
    pub concurrent: bool,
    #[serde(default)]
    pub stem_cells: Vec<StemCell>,
}

fn yes() -> bool {
    true
}

impl RuntimeKind {
    /// `python` for `python:3`.
    pub fn family(&self) -> &str {
        family_of(&self.kind)
    }
}

fn family_of(kind: &str) -> &str {
    kind.split(':').next().unwrap_or(kind)
}

/// All runtime kinds this deployment offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeManifest {
    pub kinds: Vec<RuntimeKind>,
}

impl RuntimeManifest {
    /// Resolves `family:default` and checks the kind exists.
    pub fn resolve(&self, kind: &str) -> Result<&RuntimeKind, ModelError> {
        if let Some(family) = kind.strip_suffix(":default") {
            let in_family: Vec<&RuntimeKind> =
                self.kinds.iter().filter(|k| k.family() == family).collect();
            return in_family
                .iter()
                .find(|k| k.default)
                .or_else(|| {
                    if in_family.len() == 1 {
                        in_family.first()
                    } else {
                        None
                    }
                })
                .copied()
                .ok_or_else(|| ModelError::UnsupportedKind(kind.to_string()));
        }
        self.kinds
            .iter()
            .find(|k| k.kind == kind)
            .ok_or_else(|| ModelError::UnsupportedKind(kind.to_string()))
    }

    /// The index in [`RuntimeManifest::kinds`] of the kind `kind` names (`family:default`
    /// resolved as [`RuntimeManifest::resolve`] does), without allocating: metrics use it to
    /// find their per-kind counters on every activation.
    pub fn position(&self, kind: &str) -> Option<usize> {
        let Some(family) = kind.strip_suffix(":default") else {
            return self.kinds.iter().position(|k| k.kind == kind);
        };
        let mut in_family = self
            .kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| k.family() == family);
        let first = in_family.next()?;
        if first.1.default {
            return Some(first.0);
        }
        let mut only = Some(first.0);
        for (i, k) in in_family {
            if k.default {
                return Some(i);
            }
            only = None;
        }
        only
    }

    /// Checks the manifest itself: unique kinds, at most one default per family.
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut seen = std::collections::HashSet::new();
        for k in &self.kinds {
            if !seen.insert(k.kind.as_str()) {
                return Err(ModelError::Invalid(format!(
                    "runtime kind '{}' is listed twice",
                    k.kind
                )));
            }
            let defaults = self
                .kinds
                .iter()
                .filter(|o| o.family() == k.family() && o.default)
                .count();
            if defaults > 1 {
                return Err(ModelError::Invalid(format!(
                    "runtime family '{}' has more than one default kind",
                    k.family()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(k: &str, default: bool) -> RuntimeKind {
        RuntimeKind {
            kind: k.into(),
            default,
            deprecated: false,
            launcher: Launcher::Node,
            command: None,
            image: None,
            sentinelled_logs: true,
            concurrent: false,
            stem_cells: vec![],
        }
    }

    #[test]
    fn resolves_default_aliases() {
        let m = RuntimeManifest {
            kinds: vec![
                kind("nodejs:18", false),
                kind("nodejs:20", true),
                kind("python:3", false),
            ],
        };
        assert_eq!(m.resolve("nodejs:default").unwrap().kind, "nodejs:20");
        assert_eq!(m.resolve("python:default").unwrap().kind, "python:3");
        assert!(m.resolve("java:default").is_err());
        assert!(m.resolve("nodejs:12").is_err());
        // position() agrees with resolve() without allocating.
        for k in [
            "nodejs:default",
            "python:default",
            "nodejs:18",
            "java:default",
            "nodejs:12",
        ] {
            let by_resolve = m
                .resolve(k)
                .ok()
                .map(|r| m.kinds.iter().position(|x| x.kind == r.kind).unwrap());
            assert_eq!(m.position(k), by_resolve, "{k}");
        }
        assert!(m.validate().is_ok());
    }
}
