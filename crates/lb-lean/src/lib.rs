//! The `lean` load balancer (OpenWhisk's LeanBalancer): the invoker lives in the controller's
//! process and activations are handed to it by a function call.
//!
//! Unlike OpenWhisk's LeanBalancer, no in-memory message queue sits between the two: a blocking
//! invoke runs on the HTTP request's own task from the controller through the invoker to the
//! container and back, with no serialization and no cross-thread hand-off. The bus-based path is
//! the `sharding` balancer's job.
//!
//! The returned activation future is "detached on drop": if the caller stops waiting (a
//! non-blocking invoke, a blocking wait that timed out, a client that hung up), the rest of the
//! activation is spawned onto the runtime and still ends in a stored record.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use parking_lot::Mutex;
use tracing::Instrument;
use whirl_invoker::Invoker;
use whirl_model::{Action, ActivationMessage};
use whirl_spi::{ActivationFuture, HealthStatus, InvokerHealth, LoadBalancer, LoadBalancerError};

/// Settings of the `lean` balancer (none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeanBalancerConfig {}

/// Active-activation counters, total and per namespace.
#[derive(Default)]
struct Counters {
    total: AtomicU64,
    by_namespace: Mutex<HashMap<String, u64>>,
}

impl Counters {
    fn start(&self, ns: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut m = self.by_namespace.lock();
        match m.get_mut(ns) {
            Some(n) => *n += 1,
            None => {
                m.insert(ns.to_string(), 1);
            }
        }
    }

    fn finish(&self, ns: &str) {
        self.total.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.by_namespace.lock();
        if let Some(n) = m.get_mut(ns) {
            *n -= 1;
            if *n == 0 {
                m.remove(ns);
            }
        }
    }
}

/// The `lean` balancer.
pub struct LeanBalancer {
    name: String,
    invoker: Invoker,
    counters: Arc<Counters>,
}

impl LeanBalancer {
    pub fn new(name: impl Into<String>, invoker: Invoker) -> Self {
        Self {
            name: name.into(),
            invoker,
            counters: Arc::default(),
        }
    }

    /// The embedded invoker.
    pub fn invoker(&self) -> &Invoker {
        &self.invoker
    }
}

#[async_trait]
impl LoadBalancer for LeanBalancer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn publish(
        &self,
        action: Arc<Action>,
        mut msg: ActivationMessage,
    ) -> Result<ActivationFuture, LoadBalancerError> {
        msg.load_balancer.clone_from(&self.name);
        let ns = msg.user.namespace.to_string();
        self.counters.start(&ns);
        let counters = self.counters.clone();
        let invoker = self.invoker.clone();
        // The activation's spans stay children of the publishing span even when the rest of
        // it is detached (a non-blocking invoke).
        let fut = async move {
            let activation = invoker.run(action, msg).await;
            counters.finish(&ns);
            Ok(activation)
        }
        .in_current_span();
        let handle = tokio::runtime::Handle::current();
        Ok(Box::pin(DetachOnDrop(Some(Box::pin(fut)), handle)))
    }

    fn active_activations_for(&self, namespace: &str) -> u64 {
        self.counters
            .by_namespace
            .lock()
            .get(namespace)
            .copied()
            .unwrap_or(0)
    }

    fn total_active_activations(&self) -> u64 {
        self.counters.total.load(Ordering::Relaxed)
    }

    async fn invoker_health(&self) -> Vec<InvokerHealth> {
        vec![InvokerHealth {
            id: self.invoker.id().to_string(),
            status: HealthStatus::Healthy,
            user_memory_mb: self.invoker.pool().user_memory_mb,
            load_balancer: self.name.clone(),
        }]
    }

    async fn shutdown(&self) {
        self.invoker.shutdown().await;
    }
}

type BoxedOutcome =
    Pin<Box<dyn Future<Output = Result<whirl_model::Activation, LoadBalancerError>> + Send>>;

/// Polls the activation in place; if dropped before it finished, spawns the rest of it onto the
/// runtime it was published on, so the activation still completes and is recorded.
struct DetachOnDrop(Option<BoxedOutcome>, tokio::runtime::Handle);

impl Future for DetachOnDrop {
    type Output = Result<whirl_model::Activation, LoadBalancerError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(fut) = self.0.as_mut() else {
            return Poll::Ready(Err(LoadBalancerError::Lost(
                "activation already completed".into(),
            )));
        };
        match fut.as_mut().poll(cx) {
            Poll::Ready(out) => {
                self.0 = None;
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for DetachOnDrop {
    fn drop(&mut self) {
        if let Some(fut) = self.0.take() {
            self.1.spawn(fut);
        }
    }
}
