//! Leases: containers handed to a balancer that sends activations to them itself (the `direct`
//! balancer), outside the pool's queue.
//!
//! A lease is a fresh container, initialized for one action with that action's concurrency, whose
//! memory stays reserved in this invoker's pool until the lease ends. The holder calls
//! [`Lease::run`] for each activation (one HTTP request to the container, as many at once as the
//! container has slots); the pool never pauses, reaps or shares a leased container, and
//! [`Invoker::shutdown`] destroys the ones still leased.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info_span, warn, Instrument};
use whirl_model::{Action, Activation, ActivationMessage, RuntimeKind};

use crate::pool::Slot;
use crate::{creation_failure, epoch_ms, metrics, payload, Invoker};

/// When the activation that created a lease had its container initialized.
#[derive(Debug, Clone, Copy)]
pub struct InitTiming {
    pub start_ms: u64,
    pub init_ms: u64,
}

/// A container leased from an invoker (see the module documentation).
pub struct Lease {
    invoker: Invoker,
    slot: Arc<Slot>,
    kind: RuntimeKind,
    max: usize,
}

impl Invoker {
    /// Creates and initializes a container for `action`, waiting while the pool has no room.
    /// `msg` is the activation it is created for: its init timing comes back with the lease, and
    /// if the container cannot be created or initialized, `Err` is that activation's record.
    pub async fn lease(
        &self,
        action: &Arc<Action>,
        msg: &ActivationMessage,
    ) -> Result<(Lease, InitTiming), Box<Activation>> {
        let inner = &self.inner;
        let (kind, memory) = self.resolve_kind(action, msg)?;
        let max = Self::concurrency_of(&kind, action);
        loop {
            let (reserved, evicted) = inner.pool.reserve(memory);
            for s in evicted {
                tokio::spawn(async move {
                    let _ = s.container.destroy().await;
                });
            }
            match reserved {
                Ok(()) => break,
                Err(wait) => {
                    let _ = wait.await;
                }
            }
        }
        let slot = match self.create_traced(&kind, memory, action, msg).await {
            Ok(slot) => slot,
            Err(e) => {
                inner.pool.cancel_reservation(memory);
                return Err(Box::new(self.failed_before_run(
                    action,
                    msg,
                    creation_failure(e),
                )));
            }
        };
        inner.pool.register(&slot);
        slot.set_concurrency(max);
        let timeout = Duration::from_millis(action.limits.timeout);
        let deadline = whirl_model::time::now_ms() + action.limits.timeout;
        let mut value = payload::init_value(action, msg, deadline);
        if max > 1 {
            value["concurrency"] = serde_json::json!(max);
        }
        let start_ms = epoch_ms(SystemTime::now());
        let span = info_span!(target: metrics::TRACE_TARGET, "container.init", activation_id = %msg.activation_id, container = slot.container.id());
        match slot.client.init(&value, timeout).instrument(span).await {
            Ok(interval) => {
                inner.metrics.init(&kind.kind, interval.duration());
                slot.initialized.store(true, Ordering::Release);
                let timing = InitTiming {
                    start_ms,
                    init_ms: interval.duration().as_millis() as u64,
                };
                let lease = Lease {
                    invoker: self.clone(),
                    slot,
                    kind,
                    max,
                };
                Ok((lease, timing))
            }
            Err(failure) => {
                let f = self.classify_init_failure(&slot, failure, timeout).await;
                let logs = self
                    .collect_logs(&slot, &kind, action, msg, &f.response, start_ms)
                    .await;
                let now = whirl_model::time::now_ms();
                let record = self.record(
                    action, msg, start_ms, now, f.init_ms, f.response, logs, false,
                );
                let record = self.with_container(record, &slot);
                self.destroy(slot).await;
                Err(Box::new(record))
            }
        }
    }
}

impl Lease {
    /// Activations the container runs at once.
    pub fn max_concurrent(&self) -> usize {
        self.max
    }

    /// The container's id.
    pub fn container_id(&self) -> &str {
        self.slot.container.id()
    }

    /// The invoker the container belongs to.
    pub fn invoker_id(&self) -> &str {
        self.invoker.id()
    }

    /// Runs one activation of the leased action: its record, and whether the container is still
    /// fit for more (false after a crash, a timeout or an out-of-memory kill: end the lease).
    /// `init` is the timing [`Invoker::lease`] returned, for the activation it was created for.
    pub async fn run(
        &self,
        action: &Action,
        msg: &ActivationMessage,
        init: Option<InitTiming>,
    ) -> (Activation, bool) {
        let t0 = std::time::Instant::now();
        let deadline = whirl_model::time::now_ms() + action.limits.timeout;
        let span = info_span!(target: metrics::TRACE_TARGET, "invoker.activation", activation_id = %msg.activation_id, action = %msg.action, kind = action.kind(), container = self.slot.container.id());
        let (record, fit) = self
            .invoker
            .run_ready(
                &self.slot,
                &self.kind,
                action,
                msg,
                init.map(|i| i.start_ms),
                init.map(|i| i.init_ms),
                deadline,
            )
            .instrument(span)
            .await;
        let m = &self.invoker.inner.metrics;
        m.finished(&record, action.kind(), msg.received_at_ms, t0.elapsed());
        (record, fit)
    }

    /// Destroys the container and frees its memory in the pool.
    pub async fn end(&self) {
        let destroy = self.invoker.destroy(self.slot.clone());
        if let Err(e) = tokio::time::timeout(Duration::from_secs(30), destroy).await {
            warn!(error = %e, "destroying a leased container took too long");
        }
    }
}
