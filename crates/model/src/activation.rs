//! Activations: the record of one invocation, its id, and OpenWhisk's four-way outcome taxonomy.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use crate::error::ModelError;
use crate::params::Params;

/// A 32-hex-character activation id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActivationId([u8; 16]);

impl ActivationId {
    pub fn generate() -> Self {
        Self(rand::random())
    }

    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let mut b = [0u8; 16];
        if s.len() != 32 || hex::decode_to_slice(s, &mut b).is_err() {
            return Err(ModelError::Invalid(format!(
                "'{s}' is not a valid activation id."
            )));
        }
        Ok(Self(b))
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActivationId({self})")
    }
}

impl Serialize for ActivationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ActivationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ActivationId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// OpenWhisk's outcome classes (the stored `statusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StatusCode {
    Success = 0,
    ApplicationError = 1,
    DeveloperError = 2,
    WhiskError = 3,
}

impl StatusCode {
    /// The API's `status` string.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Success => "success",
            StatusCode::ApplicationError => "application error",
            StatusCode::DeveloperError => "action developer error",
            StatusCode::WhiskError => "whisk internal error",
        }
    }

    pub fn from_code(c: u64) -> Option<Self> {
        Some(match c {
            0 => StatusCode::Success,
            1 => StatusCode::ApplicationError,
            2 => StatusCode::DeveloperError,
            3 => StatusCode::WhiskError,
            _ => return None,
        })
    }

    pub fn from_status(s: &str) -> Option<Self> {
        Some(match s {
            "success" => StatusCode::Success,
            "application error" => StatusCode::ApplicationError,
            "action developer error" => StatusCode::DeveloperError,
            "whisk internal error" => StatusCode::WhiskError,
            _ => return None,
        })
    }
}

/// The outcome of an activation: class and result (errors are always `{"error": ...}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationResponse {
    pub status: StatusCode,
    pub result: Option<Value>,
    /// Size in bytes of the result as the action produced it, when known.
    pub size: Option<usize>,
}

impl ActivationResponse {
    pub fn success(result: Value) -> Self {
        Self {
            status: StatusCode::Success,
            result: Some(result),
            size: None,
        }
    }

    /// `result` must already be the full result object holding an `error` field.
    pub fn application_error(result: Value) -> Self {
        Self {
            status: StatusCode::ApplicationError,
            result: Some(result),
            size: None,
        }
    }

    pub fn application_error_msg(msg: impl Into<String>) -> Self {
        Self::application_error(json!({ "error": msg.into() }))
    }

    pub fn developer_error(error: impl Into<Value>) -> Self {
        Self {
            status: StatusCode::DeveloperError,
            result: Some(json!({ "error": error.into() })),
            size: None,
        }
    }

    pub fn whisk_error(error: impl Into<Value>) -> Self {
        Self {
            status: StatusCode::WhiskError,
            result: Some(json!({ "error": error.into() })),
            size: None,
        }
    }

    pub fn is_success(&self) -> bool {
        self.status == StatusCode::Success
    }
}

impl Serialize for ActivationResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("status", self.status.as_str())?;
        m.serialize_entry("statusCode", &(self.status as u8))?;
        m.serialize_entry("success", &self.is_success())?;
        m.serialize_entry("result", &self.result.clone().unwrap_or_else(|| json!({})))?;
        if let Some(size) = self.size {
            m.serialize_entry("size", &size)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ActivationResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            status: Option<String>,
            status_code: Option<u64>,
            result: Option<Value>,
            size: Option<usize>,
        }
        let r = Raw::deserialize(d)?;
        let status = r
            .status_code
            .and_then(StatusCode::from_code)
            .or_else(|| r.status.as_deref().and_then(StatusCode::from_status))
            .ok_or_else(|| serde::de::Error::custom("activation response needs a status"))?;
        Ok(Self {
            status,
            result: r.result,
            size: r.size,
        })
    }
}

/// A stored activation record, serialized as OpenWhisk's API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    /// The invoking namespace.
    pub namespace: String,
    /// The action's name (without package).
    pub name: String,
    pub version: String,
    pub subject: String,
    pub activation_id: ActivationId,
    /// Epoch ms: init start (cold) or run start.
    pub start: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(default)]
    pub publish: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<ActivationId>,
    pub response: ActivationResponse,
    #[serde(default)]
    pub logs: Vec<String>,
    #[serde(default)]
    pub annotations: Params,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Activation {
    /// The `path` annotation: `ns/pkg/name` of the action that ran, if present.
    pub fn path(&self) -> Option<&str> {
        self.annotations.get("path").and_then(Value::as_str)
    }

    /// A short summary entry as activation listings without `docs=true` show it.
    pub fn summary(&self) -> Value {
        let mut v = json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "subject": self.subject,
            "activationId": self.activation_id,
            "start": self.start,
            "publish": self.publish,
            "annotations": self.annotations,
            "statusCode": self.response.status as u8,
        });
        if self.end != 0 {
            v["end"] = json!(self.end);
        }
        if let Some(d) = self.duration {
            v["duration"] = json!(d);
        }
        if let Some(c) = &self.cause {
            v["cause"] = json!(c);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex() {
        let id = ActivationId::generate();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(ActivationId::parse(&s).unwrap(), id);
        assert!(ActivationId::parse("xyz").is_err());
    }

    #[test]
    fn response_shape() {
        let r = ActivationResponse::developer_error("boom");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"status":"action developer error","statusCode":2,"success":false,"result":{"error":"boom"}})
        );
        let back: ActivationResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let r: ActivationResponse =
            serde_json::from_value(json!({"status":"success","result":{}})).unwrap();
        assert!(r.is_success());
    }
}
