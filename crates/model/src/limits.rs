//! System-wide limits: the ranges an action's limits must fall in, and payload sizes.
//! Defaults are OpenWhisk's (application.conf), and every figure can be changed by configuration.

use serde::{Deserialize, Serialize};

/// A `{min, max, std}` range as OpenWhisk configures its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub min: u64,
    pub max: u64,
    pub std: u64,
}

impl Range {
    pub const fn new(min: u64, max: u64, std: u64) -> Self {
        Self { min, max, std }
    }

    pub fn contains(&self, v: u64) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

/// The limits every action and request is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemLimits {
    /// Action time limit in milliseconds.
    pub timeout_ms: Range,
    /// Action memory limit in MB.
    pub memory_mb: Range,
    /// Action log limit in MB (0 disables log collection).
    pub logs_mb: Range,
    /// Activations one container may run at once (`limits.concurrency`). Values above 1 are
    /// accepted only for kinds whose manifest entry says `concurrent = true`.
    pub concurrency: Range,
    /// Largest parameters/annotations payload of an entity, in bytes.
    pub max_parameter_bytes: usize,
    /// Largest action code, in bytes (after base64 decoding).
    pub max_exec_bytes: usize,
    /// Largest invoke payload and largest result, in bytes.
    pub max_payload_bytes: usize,
    /// Longest blocking wait a caller may ask for, in milliseconds.
    pub max_blocking_wait_ms: u64,
    /// Longest sequence (number of atomic actions).
    pub max_sequence_length: usize,
}

impl Default for SystemLimits {
    fn default() -> Self {
        Self {
            timeout_ms: Range::new(100, 300_000, 60_000),
            memory_mb: Range::new(128, 512, 256),
            logs_mb: Range::new(0, 10, 10),
            concurrency: Range::new(1, 500, 1),
            max_parameter_bytes: 1 << 20,
            max_exec_bytes: 48 << 20,
            max_payload_bytes: 1 << 20,
            max_blocking_wait_ms: 60_000,
            max_sequence_length: 50,
        }
    }
}
