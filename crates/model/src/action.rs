//! Actions: the executable entity, its `exec` (code, blackbox image or sequence) and its limits,
//! in OpenWhisk's JSON shapes.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::ModelError;
use crate::limits::SystemLimits;
use crate::params::Params;

/// The reserved kind names.
pub const BLACKBOX: &str = "blackbox";
pub const SEQUENCE: &str = "sequence";

/// A stored action, exactly as `GET /namespaces/{ns}/actions/{name}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `ns` or `ns/pkg`.
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub publish: bool,
    pub exec: Exec,
    #[serde(default)]
    pub annotations: Params,
    #[serde(default)]
    pub parameters: Params,
    pub limits: ActionLimits,
    /// Epoch milliseconds of the last update.
    #[serde(default)]
    pub updated: u64,
}

impl Action {
    /// `/ns[/pkg]/name`.
    pub fn fully_qualified_name(&self) -> String {
        format!("/{}/{}", self.namespace, self.name)
    }

    /// The root namespace (first segment of `namespace`).
    pub fn root_namespace(&self) -> &str {
        self.namespace.split('/').next().unwrap_or(&self.namespace)
    }

    /// The `action_name` the runtime receives in /run: `/ns[/pkg]/name`.
    pub fn kind(&self) -> &str {
        self.exec.kind()
    }
}

/// Bumps the patch part of a semantic version: `0.0.1` → `0.0.2`.
pub fn next_version(v: &str) -> String {
    let mut parts: Vec<u64> = v.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    parts.resize(3, 0);
    parts[2] += 1;
    format!("{}.{}.{}", parts[0], parts[1], parts[2])
}

/// What an action runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Exec {
    /// Code for a managed runtime kind (`nodejs:20`, `python:3`, `native`, ...).
    Code {
        kind: String,
        code: String,
        binary: bool,
        main: Option<String>,
    },
    /// A user-supplied container image speaking the action protocol (code optional).
    Blackbox {
        image: String,
        code: Option<String>,
        binary: bool,
        main: Option<String>,
    },
    /// A sequence of other actions, by fully qualified name.
    Sequence { components: Vec<String> },
}

/// Broad classification of an exec, for routing and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecKind {
    Code,
    Blackbox,
    Sequence,
}

impl Exec {
    pub fn kind(&self) -> &str {
        match self {
            Exec::Code { kind, .. } => kind,
            Exec::Blackbox { .. } => BLACKBOX,
            Exec::Sequence { .. } => SEQUENCE,
        }
    }

    pub fn exec_kind(&self) -> ExecKind {
        match self {
            Exec::Code { .. } => ExecKind::Code,
            Exec::Blackbox { .. } => ExecKind::Blackbox,
            Exec::Sequence { .. } => ExecKind::Sequence,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Exec::Code { code, .. } => Some(code),
            Exec::Blackbox { code, .. } => code.as_deref(),
            Exec::Sequence { .. } => None,
        }
    }

    pub fn main(&self) -> Option<&str> {
        match self {
            Exec::Code { main, .. } | Exec::Blackbox { main, .. } => main.as_deref(),
            Exec::Sequence { .. } => None,
        }
    }

    pub fn binary(&self) -> bool {
        match self {
            Exec::Code { binary, .. } | Exec::Blackbox { binary, .. } => *binary,
            Exec::Sequence { .. } => false,
        }
    }

    /// A copy without the code (for `?code=false` and for listings).
    pub fn without_code(&self) -> Exec {
        match self {
            Exec::Code {
                kind, binary, main, ..
            } => Exec::Code {
                kind: kind.clone(),
                code: String::new(),
                binary: *binary,
                main: main.clone(),
            },
            Exec::Blackbox {
                image,
                binary,
                main,
                ..
            } => Exec::Blackbox {
                image: image.clone(),
                code: None,
                binary: *binary,
                main: main.clone(),
            },
            s @ Exec::Sequence { .. } => s.clone(),
        }
    }
}

/// OpenWhisk's rule for `binary`: code is binary iff it looks like base64 with length % 4 == 0.
pub fn is_binary_code(code: &str) -> bool {
    let t = code.trim();
    !t.is_empty()
        && t.len().is_multiple_of(4)
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n'))
        && base64::engine::general_purpose::STANDARD
            .decode(t.replace(['\r', '\n'], ""))
            .is_ok()
}

#[derive(Serialize, Deserialize)]
struct RawExec {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    main: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    components: Option<Vec<String>>,
}

impl TryFrom<RawExec> for Exec {
    type Error = ModelError;
    fn try_from(r: RawExec) -> Result<Self, ModelError> {
        let main = r.main.filter(|m| !m.is_empty());
        match r.kind.as_str() {
            SEQUENCE => Ok(Exec::Sequence {
                components: r.components.ok_or_else(|| {
                    ModelError::Malformed("a sequence must list its 'components'".into())
                })?,
            }),
            BLACKBOX => {
                let image = r.image.filter(|i| !i.is_empty()).ok_or_else(|| {
                    ModelError::Malformed("blackbox exec needs an 'image'".into())
                })?;
                let code = r.code.filter(|c| !c.is_empty());
                let binary = r
                    .binary
                    .unwrap_or_else(|| code.as_deref().is_some_and(is_binary_code));
                Ok(Exec::Blackbox {
                    image,
                    code,
                    binary,
                    main,
                })
            }
            "" => Err(ModelError::Malformed(
                "exec 'kind' must not be empty".into(),
            )),
            _ => {
                let code = r.code.ok_or_else(|| {
                    ModelError::Malformed(format!("exec of kind '{}' needs 'code'", r.kind))
                })?;
                let binary = r.binary.unwrap_or_else(|| is_binary_code(&code));
                Ok(Exec::Code {
                    kind: r.kind,
                    code,
                    binary,
                    main,
                })
            }
        }
    }
}

impl Serialize for Exec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = match self {
            Exec::Code {
                kind,
                code,
                binary,
                main,
            } => RawExec {
                kind: kind.clone(),
                code: Some(code.clone()),
                binary: Some(*binary),
                main: main.clone(),
                image: None,
                components: None,
            },
            Exec::Blackbox {
                image,
                code,
                binary,
                main,
            } => RawExec {
                kind: BLACKBOX.into(),
                code: code.clone(),
                binary: Some(*binary),
                main: main.clone(),
                image: Some(image.clone()),
                components: None,
            },
            Exec::Sequence { components } => RawExec {
                kind: SEQUENCE.into(),
                code: None,
                binary: None,
                main: None,
                image: None,
                components: Some(components.clone()),
            },
        };
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Exec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawExec::deserialize(d)?;
        Exec::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// An action's limits, serialized as OpenWhisk does: ms / MB / MB / count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimits {
    pub timeout: u64,
    pub memory: u64,
    pub logs: u64,
    pub concurrency: u64,
}

impl ActionLimits {
    pub fn standard(sys: &SystemLimits) -> Self {
        Self {
            timeout: sys.timeout_ms.std,
            memory: sys.memory_mb.std,
            logs: sys.logs_mb.std,
            concurrency: sys.concurrency.std,
        }
    }

    /// Checks each limit against the system ranges, with OpenWhisk's wording.
    pub fn validate(&self, sys: &SystemLimits) -> Result<(), ModelError> {
        let check = |v: u64, r: crate::limits::Range, what: &str, unit: &str| {
            if r.contains(v) {
                Ok(())
            } else {
                Err(ModelError::InvalidLimit(format!(
                    "{what} {v}{unit} below allowed threshold of {}{unit} or exceeds allowed threshold of {}{unit}.",
                    r.min, r.max
                )))
            }
        };
        check(self.timeout, sys.timeout_ms, "duration", " milliseconds")?;
        check(self.memory, sys.memory_mb, "memory", " MB")?;
        check(self.logs, sys.logs_mb, "log size", " MB")?;
        check(self.concurrency, sys.concurrency, "concurrency", "")?;
        Ok(())
    }
}

/// Limits as given in a PUT: every field optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionLimitsPut {
    pub timeout: Option<u64>,
    pub memory: Option<u64>,
    pub logs: Option<u64>,
    pub concurrency: Option<u64>,
}

impl ActionLimitsPut {
    /// Fills missing fields from `base`.
    pub fn over(&self, base: ActionLimits) -> ActionLimits {
        ActionLimits {
            timeout: self.timeout.unwrap_or(base.timeout),
            memory: self.memory.unwrap_or(base.memory),
            logs: self.logs.unwrap_or(base.logs),
            concurrency: self.concurrency.unwrap_or(base.concurrency),
        }
    }
}

/// The body of `PUT /namespaces/{ns}/actions/{name}`: every field optional (an update keeps what
/// is not given).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActionPut {
    pub exec: Option<Exec>,
    pub parameters: Option<Params>,
    pub annotations: Option<Params>,
    pub limits: Option<ActionLimitsPut>,
    pub version: Option<String>,
    pub publish: Option<bool>,
    /// Ignored (the path names the action); accepted because clients send them.
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
    fn exec_round_trips_openwhisk_json() {
        let e: Exec =
            serde_json::from_value(json!({"kind":"nodejs:20","code":"function main(){}"})).unwrap();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"kind":"nodejs:20","code":"function main(){}","binary":false})
        );
        let e: Exec =
            serde_json::from_value(json!({"kind":"python:3","code":"UEsDBA==","main":"hello"}))
                .unwrap();
        assert!(e.binary());
        assert_eq!(e.main(), Some("hello"));
        let e: Exec =
            serde_json::from_value(json!({"kind":"sequence","components":["/a/b"]})).unwrap();
        assert_eq!(e.exec_kind(), ExecKind::Sequence);
        let e: Exec =
            serde_json::from_value(json!({"kind":"blackbox","image":"me/img:1"})).unwrap();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"kind":"blackbox","image":"me/img:1","binary":false})
        );
        assert!(serde_json::from_value::<Exec>(json!({"kind":"nodejs:20"})).is_err());
        assert!(serde_json::from_value::<Exec>(json!({"kind":"blackbox"})).is_err());
    }

    #[test]
    fn binary_detection() {
        assert!(!is_binary_code("def main(args): return args"));
        assert!(!is_binary_code("abc"));
        assert!(is_binary_code("UEsDBBQAAAAIAA=="));
    }

    #[test]
    fn versions_bump_patch() {
        assert_eq!(next_version("0.0.1"), "0.0.2");
        assert_eq!(next_version("1.2.9"), "1.2.10");
    }

    #[test]
    fn limits_validate_against_ranges() {
        let sys = SystemLimits::default();
        let mut l = ActionLimits::standard(&sys);
        assert!(l.validate(&sys).is_ok());
        l.memory = 64;
        assert!(l
            .validate(&sys)
            .unwrap_err()
            .to_string()
            .contains("memory 64 MB"));
    }
}
