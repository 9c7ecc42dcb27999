//! The load-balancer SPI: where an activation runs. Several balancers may run side by side in one
//! controller; a resolver picks one per action.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use whirl_model::{Action, Activation, ActivationMessage};

#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadBalancerError {
    /// No invoker can take work (HTTP 503).
    #[error("No invokers available.")]
    NoInvokers,
    /// The activation could not be handed over (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// The activation payload is too large for the transport (HTTP 413).
    #[error("{0}")]
    TooLarge(String),
    /// Dispatched, but its completion will never be reported to this controller (the record is
    /// still written by whoever ran it, or by recovery).
    #[error("{0}")]
    Lost(String),
}

/// Resolves to the finished activation. Dropping it does NOT cancel the activation: every
/// implementation guarantees that a dispatched activation runs to a stored record whether or not
/// anyone waits for it. This lets a blocking caller wait on it for a while and then walk away.
pub type ActivationFuture = BoxFuture<'static, Result<Activation, LoadBalancerError>>;

/// An invoker's health as the balancer sees it (OpenWhisk's four states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// "up": usable.
    Healthy,
    /// "unhealthy": recent system errors.
    Unhealthy,
    /// "unresponsive": recent acks timed out.
    Unresponsive,
    /// "down": no pings.
    Offline,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InvokerHealth {
    pub id: String,
    pub status: HealthStatus,
    pub user_memory_mb: u64,
    pub load_balancer: String,
}

#[async_trait]
pub trait LoadBalancer: Send + Sync + 'static {
    /// The instance name from configuration (recorded on each activation it serves).
    fn name(&self) -> &str;

    /// Dispatches an activation of `action`. Returns once it is handed over, with a future of its
    /// completion (see [`ActivationFuture`]).
    async fn publish(
        &self,
        action: Arc<Action>,
        msg: ActivationMessage,
    ) -> Result<ActivationFuture, LoadBalancerError>;

    /// Activations of a namespace dispatched by this balancer and not yet completed.
    fn active_activations_for(&self, namespace: &str) -> u64;

    /// All activations dispatched by this balancer and not yet completed.
    fn total_active_activations(&self) -> u64;

    /// The invokers this balancer dispatches to.
    async fn invoker_health(&self) -> Vec<InvokerHealth>;

    /// How many controllers share the invokers (limits are divided by it).
    fn cluster_size(&self) -> usize {
        1
    }

    /// Stops dispatching and waits for in-flight activations to finish.
    async fn shutdown(&self) {}
}

/// Picks the load balancer that serves an action (by kind, or by an annotation where the operator
/// allows it). Holds every balancer instance of the controller.
pub trait LoadBalancerResolver: Send + Sync + 'static {
    /// The balancer for this action.
    fn resolve(&self, action: &Action) -> Arc<dyn LoadBalancer>;

    /// Every balancer instance (for health views, metrics, throttles and shutdown).
    fn all(&self) -> Vec<Arc<dyn LoadBalancer>>;
}

/// One balancer for everything.
pub struct SingleResolver(pub Arc<dyn LoadBalancer>);

impl LoadBalancerResolver for SingleResolver {
    fn resolve(&self, _action: &Action) -> Arc<dyn LoadBalancer> {
        self.0.clone()
    }

    fn all(&self) -> Vec<Arc<dyn LoadBalancer>> {
        vec![self.0.clone()]
    }
}
