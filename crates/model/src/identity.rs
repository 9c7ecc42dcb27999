//! Identities: who is calling, their namespace, their key and their limits.

use serde::{Deserialize, Serialize};

use crate::names::EntityName;

/// An authenticated caller. `uuid:key` is the Basic-auth credential; `namespace` is the caller's
/// default namespace (what `_` means).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub subject: String,
    pub namespace: EntityName,
    pub uuid: String,
    /// The secret half of the credential. Kept in memory only while serving this identity's
    /// requests (actions may receive it as `__OW_API_KEY`); stores keep a hash of it.
    pub key: String,
    #[serde(default)]
    pub limits: UserLimits,
}

impl Identity {
    /// `uuid:key`, as actions receive it in `api_key`.
    pub fn api_key(&self) -> String {
        format!("{}:{}", self.uuid, self.key)
    }
}

/// Per-namespace overrides of system limits (None = the system default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserLimits {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocations_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_invocations: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fires_per_minute: Option<u64>,
}

/// OpenWhisk standalone's well-known credentials, created on first start.
pub mod well_known {
    pub const GUEST_UUID: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502";
    pub const GUEST_KEY: &str = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
    pub const SYSTEM_UUID: &str = "789c46b1-71f6-4ed5-8c54-816aa4f8c502";
    pub const SYSTEM_KEY: &str = "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
}
