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

use std::sync::Arc;

use async_trait::async_trait;
use tracing::Instrument;
use whirl_invoker::Invoker;
use whirl_model::{Action, ActivationMessage};
use whirl_spi::{
    detach_on_drop, ActivationFuture, ActiveCounts, HealthStatus, InvokerHealth, LoadBalancer,
    LoadBalancerError,
};

/// Settings of the `lean` balancer (none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeanBalancerConfig {}

/// The `lean` balancer.
pub struct LeanBalancer {
    name: String,
    invoker: Invoker,
    counters: Arc<ActiveCounts>,
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
        Ok(detach_on_drop(fut))
    }

    fn active_activations_for(&self, namespace: &str) -> u64 {
        self.counters.for_namespace(namespace)
    }

    fn total_active_activations(&self) -> u64 {
        self.counters.total()
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
