//! Per-namespace throttles (OpenWhisk's `RateThrottler` and `ActivationThrottler`): invocations
//! and trigger fires per minute, in fixed one-minute windows counted per check, and concurrent
//! activations as the load balancer counts them. Limits are the namespace's own
//! ([`UserLimits`](whirl_model::UserLimits)) or the system's ([`ThrottleConfig`]); where neither
//! sets one, nothing is checked.
//!
//! A check costs one short lock and one hash lookup; it allocates only the first time a
//! namespace is seen in a window table.

use std::collections::HashMap;

use axum::http::StatusCode;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use whirl_model::Identity;

use crate::error::ApiError;

/// The system's throttles, for namespaces that have no limits of their own. Unset means no
/// limit: OpenWhisk deploys with 60 invokes and 60 fires per minute and 30 concurrent
/// activations; Whirl leaves them off by default so that its throughput (benchmarks, tests) is
/// not capped, and an operator sets them (here or per namespace) for a shared deployment.
/// A throttle that is off costs nothing on the invoke path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Invokes (actions, sequences, web actions, rule firings) per namespace per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocations_per_minute: Option<u64>,
    /// Activations of a namespace in flight at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_invocations: Option<u64>,
    /// Trigger fires per namespace per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fires_per_minute: Option<u64>,
}

/// Namespaces held per window table before stale entries are swept.
const SWEEP_AT: usize = 10_000;

/// Counts per namespace in the current minute.
#[derive(Default)]
struct RateWindow {
    counts: Mutex<HashMap<String, (u64, u64)>>,
}

impl RateWindow {
    /// Counts one operation; Ok while the minute's count stays within `allowed`.
    fn check(&self, namespace: &str, allowed: u64) -> Result<(), ApiError> {
        let minute = whirl_model::time::now_ms() / 60_000;
        let count = {
            let mut m = self.counts.lock();
            match m.get_mut(namespace) {
                Some(e) => {
                    if e.0 != minute {
                        *e = (minute, 0);
                    }
                    e.1 += 1;
                    e.1
                }
                None => {
                    if m.len() >= SWEEP_AT {
                        m.retain(|_, e| e.0 == minute);
                    }
                    m.insert(namespace.to_owned(), (minute, 1));
                    1
                }
            }
        };
        if count <= allowed {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many requests in the last minute (count: {count}, allowed: {allowed})."
                ),
            ))
        }
    }
}

/// The controller's throttles.
#[derive(Default)]
pub(crate) struct Throttles {
    config: ThrottleConfig,
    invokes: RateWindow,
    fires: RateWindow,
    /// Counts the 429s (`whirl_controller_throttled_total`).
    pub rejections: crate::metrics::Rejections,
}

impl Throttles {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The limits that apply to `user` (None: no limit): (invocations per minute, concurrent,
    /// fires per minute).
    pub fn limits_of(&self, user: &Identity) -> (Option<u64>, Option<u64>, Option<u64>) {
        let l = &user.limits;
        (
            l.invocations_per_minute
                .or(self.config.invocations_per_minute),
            l.concurrent_invocations
                .or(self.config.concurrent_invocations),
            l.fires_per_minute.or(self.config.fires_per_minute),
        )
    }

    /// Counts an invoke of `user`'s against its per-minute limit.
    pub fn check_invoke_rate(&self, user: &Identity) -> Result<(), ApiError> {
        match user
            .limits
            .invocations_per_minute
            .or(self.config.invocations_per_minute)
        {
            Some(allowed) => self
                .invokes
                .check(user.namespace.as_str(), allowed)
                .inspect_err(|_| self.rejections.invocations.inc()),
            None => Ok(()),
        }
    }

    /// Whether the concurrency throttle applies to `user` (else its count need not be taken).
    pub fn limits_concurrency(&self, user: &Identity) -> bool {
        user.limits.concurrent_invocations.is_some() || self.config.concurrent_invocations.is_some()
    }

    /// Refuses an invoke while `active` activations of the namespace are in flight at the limit.
    pub fn check_concurrency(&self, user: &Identity, active: u64) -> Result<(), ApiError> {
        let Some(allowed) = user
            .limits
            .concurrent_invocations
            .or(self.config.concurrent_invocations)
        else {
            return Ok(());
        };
        if active < allowed {
            Ok(())
        } else {
            self.rejections.concurrent.inc();
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many concurrent requests in flight (count: {active}, allowed: {allowed})."
                ),
            ))
        }
    }

    /// Counts a trigger fire of `user`'s against its per-minute limit.
    pub fn check_fire(&self, user: &Identity) -> Result<(), ApiError> {
        match user
            .limits
            .fires_per_minute
            .or(self.config.fires_per_minute)
        {
            Some(allowed) => self
                .fires
                .check(user.namespace.as_str(), allowed)
                .inspect_err(|_| self.rejections.fires.inc()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whirl_model::{EntityName, UserLimits};

    fn user(limits: UserLimits) -> Identity {
        Identity {
            subject: "s".into(),
            namespace: EntityName::new("ns").unwrap(),
            uuid: "u".into(),
            key: "k".into(),
            limits,
        }
    }

    #[test]
    fn rates_count_per_minute_with_openwhisk_words() {
        let t = Throttles::new(ThrottleConfig {
            invocations_per_minute: Some(2),
            concurrent_invocations: Some(1),
            fires_per_minute: Some(1),
        });
        let u = user(UserLimits::default());
        assert!(t.check_invoke_rate(&u).is_ok());
        assert!(t.check_invoke_rate(&u).is_ok());
        let e = t.check_invoke_rate(&u).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            e.message,
            "Too many requests in the last minute (count: 3, allowed: 2)."
        );
        assert!(t.check_fire(&u).is_ok());
        assert!(t.check_fire(&u).is_err());
        assert!(t.check_concurrency(&u, 0).is_ok());
        assert_eq!(
            t.check_concurrency(&u, 1).unwrap_err().message,
            "Too many concurrent requests in flight (count: 1, allowed: 1)."
        );
        // A namespace's own limits win over the system's.
        let own = user(UserLimits {
            invocations_per_minute: Some(100),
            concurrent_invocations: Some(5),
            fires_per_minute: None,
        });
        assert!(t.check_invoke_rate(&own).is_ok());
        assert!(t.check_concurrency(&own, 4).is_ok());
        assert_eq!(t.limits_of(&own), (Some(100), Some(5), Some(1)));
    }

    #[test]
    fn unset_throttles_do_not_limit() {
        let t = Throttles::new(ThrottleConfig::default());
        let u = user(UserLimits::default());
        for _ in 0..1000 {
            assert!(t.check_invoke_rate(&u).is_ok());
            assert!(t.check_fire(&u).is_ok());
        }
        assert!(!t.limits_concurrency(&u));
        assert!(t.check_concurrency(&u, 1_000_000).is_ok());
        assert!(t.invokes.counts.lock().is_empty());
    }
}
