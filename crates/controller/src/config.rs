//! The controller's configuration section.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use whirl_model::limits::Range;
use whirl_model::SystemLimits;

/// Configuration of one controller instance.
///
/// Every field has a default, so an empty section is a valid configuration; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerConfig {
    /// This controller's instance name. Recorded as `root_controller` on every activation it
    /// dispatches and as the owner of its journal entries. Default `controller0`.
    pub controller_id: String,
    /// The system limits every action and request is checked against.
    pub limits: SystemLimits,
    /// Which accepted activations are written to the activation store's crash journal before they
    /// are dispatched (see [`JournalMode`]). Default `non-blocking`.
    pub journal: JournalMode,
    /// At start-up ([`crate::Controller::serve`]), turn this controller's journal entries that never
    /// got a record into whisk-internal-error records. Right for a single controller whose invokers
    /// stop with it (standalone); a controller that restarts while remote invokers keep running its
    /// activations should leave this off. Default `true`.
    pub recover_orphans_on_start: bool,
    /// How long a resolved action document stays in the controller's cache, in milliseconds.
    /// The cache is refreshed at once by this controller's own PUT and DELETE; the TTL bounds how
    /// long a change made through another controller may go unseen. 0 disables the cache (every
    /// invoke reads the store). Default 300000 (OpenWhisk's five minutes).
    pub action_cache_ttl_ms: u64,
    /// Most actions in the cache; a full cache is emptied and refilled. Cached actions include
    /// their code (the load balancer needs it), so this also bounds the cache's memory. Default 10000.
    pub action_cache_capacity: usize,
    /// OpenWhisk's `require-api-key-annotation` feature flag: new actions get the annotation
    /// `provide-api-key: false` unless the request sets it, so they do not receive the caller's key
    /// as `__OW_API_KEY`. Default `true`, as in OpenWhisk.
    pub require_api_key_annotation: bool,
    /// The system's per-namespace throttles (a namespace's own limits override them).
    pub throttles: crate::throttle::ThrottleConfig,
    /// Per-namespace overrides of the action limit ranges (`[controller.namespace_limits.<ns>]`
    /// with any of `timeout_ms`, `memory_mb`, `logs_mb`, `concurrency` as `{min, max, std}`):
    /// actions of that namespace are created and updated within these ranges instead of the
    /// system's. Default: none.
    pub namespace_limits: BTreeMap<String, NamespaceActionLimits>,
    /// Serve `GET /metrics` (Prometheus text format, no authentication, as OpenWhisk's
    /// controller serves its metrics) on the API port. Default `true`.
    pub metrics: bool,
    /// Serve the operator dashboard at `GET /dashboard`. Default `true`.
    pub dashboard: bool,
}

/// A namespace's own action limit ranges (each replaces the system's range when given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamespaceActionLimits {
    /// Action time limit in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<Range>,
    /// Action memory limit in MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<Range>,
    /// Action log limit in MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_mb: Option<Range>,
    /// Activations one container may run at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Range>,
}

impl ControllerConfig {
    /// The limits actions of `namespace` are checked against: the system's, with the
    /// namespace's own ranges in their place.
    pub fn limits_for(&self, namespace: &str) -> std::borrow::Cow<'_, SystemLimits> {
        match self.namespace_limits.get(namespace) {
            None => std::borrow::Cow::Borrowed(&self.limits),
            Some(n) => {
                let mut l = self.limits.clone();
                l.timeout_ms = n.timeout_ms.unwrap_or(l.timeout_ms);
                l.memory_mb = n.memory_mb.unwrap_or(l.memory_mb);
                l.logs_mb = n.logs_mb.unwrap_or(l.logs_mb);
                l.concurrency = n.concurrency.unwrap_or(l.concurrency);
                std::borrow::Cow::Owned(l)
            }
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            controller_id: "controller0".into(),
            limits: SystemLimits::default(),
            journal: JournalMode::default(),
            recover_orphans_on_start: true,
            action_cache_ttl_ms: 300_000,
            action_cache_capacity: 10_000,
            require_api_key_annotation: true,
            throttles: crate::throttle::ThrottleConfig::default(),
            namespace_limits: BTreeMap::new(),
            metrics: true,
            dashboard: true,
        }
    }
}

/// Which accepted activations the controller journals (`ActivationStore::journal`) before handing
/// them to a load balancer.
///
/// A journal entry lets recovery write a whisk-internal-error record for an activation whose
/// record never came (the platform stopped in between), so that an activation id a caller was
/// given always ends in a record. Journaling costs one store write per invoke.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalMode {
    /// Journal nothing (the load balancer alone answers for completion).
    Off,
    /// Journal non-blocking invokes: the caller leaves with only an id, so the id must not be lost.
    #[default]
    NonBlocking,
    /// Journal every invoke (blocking callers may also be sent away with an id after the wait).
    All,
}

impl JournalMode {
    /// Whether an invoke with this blocking flag is journaled.
    pub fn journals(self, blocking: bool) -> bool {
        match self {
            JournalMode::Off => false,
            JournalMode::NonBlocking => !blocking,
            JournalMode::All => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_the_default_and_unknown_keys_fail() {
        let c: ControllerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ControllerConfig::default());
        assert_eq!(c.controller_id, "controller0");
        let c: ControllerConfig =
            serde_json::from_str(r#"{"journal":"all","limits":{"max_blocking_wait_ms":1000}}"#)
                .unwrap();
        assert_eq!(c.journal, JournalMode::All);
        assert_eq!(c.limits.max_blocking_wait_ms, 1000);
        assert!(serde_json::from_str::<ControllerConfig>(r#"{"nope":1}"#).is_err());
        assert!(serde_json::from_str::<ControllerConfig>(r#"{"journal":"sometimes"}"#).is_err());
    }

    #[test]
    fn namespaces_may_have_their_own_action_limits() {
        let c: ControllerConfig = serde_json::from_str(
            r#"{"namespace_limits":{"big":{"memory_mb":{"min":128,"max":2048,"std":512}}}}"#,
        )
        .unwrap();
        assert_eq!(c.limits_for("big").memory_mb.max, 2048);
        assert_eq!(c.limits_for("big").timeout_ms, c.limits.timeout_ms);
        assert_eq!(c.limits_for("other").memory_mb.max, 512);
        assert!(serde_json::from_str::<ControllerConfig>(
            r#"{"namespace_limits":{"x":{"cpus":1}}}"#
        )
        .is_err());
    }

    #[test]
    fn journal_modes() {
        assert!(JournalMode::NonBlocking.journals(false));
        assert!(!JournalMode::NonBlocking.journals(true));
        assert!(JournalMode::All.journals(true));
        assert!(!JournalMode::Off.journals(false));
    }
}
