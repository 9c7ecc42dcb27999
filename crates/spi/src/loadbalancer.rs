//! The load-balancer SPI: where an activation runs. Several balancers may run side by side in one
//! controller; a resolver picks one per action.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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

    /// Whether the balancer's transport keeps every activation it accepted until it has a record
    /// (a durable bus): the controller then does not journal its activations itself.
    fn keeps_accepted(&self) -> bool {
        false
    }

    /// How many controllers share the invokers (limits are divided by it).
    fn cluster_size(&self) -> usize {
        1
    }

    /// Stops dispatching and waits for in-flight activations to finish.
    async fn shutdown(&self) {}
}

/// Activations a balancer has in flight, in total and per namespace (for the concurrency
/// throttle and metrics).
#[derive(Default)]
pub struct ActiveCounts {
    total: std::sync::atomic::AtomicU64,
    by_namespace: parking_lot::Mutex<HashMap<String, u64>>,
}

impl ActiveCounts {
    pub fn start(&self, ns: &str) {
        self.total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut m = self.by_namespace.lock();
        match m.get_mut(ns) {
            Some(n) => *n += 1,
            None => {
                m.insert(ns.to_string(), 1);
            }
        }
    }

    pub fn finish(&self, ns: &str) {
        self.total
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut m = self.by_namespace.lock();
        if let Some(n) = m.get_mut(ns) {
            *n -= 1;
            if *n == 0 {
                m.remove(ns);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn for_namespace(&self, ns: &str) -> u64 {
        self.by_namespace.lock().get(ns).copied().unwrap_or(0)
    }
}

/// Wraps an activation's completion so that dropping it does not cancel the activation: the rest
/// of it is spawned onto the current runtime (the [`ActivationFuture`] contract, for balancers
/// that run the activation in the caller's task).
pub fn detach_on_drop(
    fut: impl Future<Output = Result<Activation, LoadBalancerError>> + Send + 'static,
) -> ActivationFuture {
    Box::pin(DetachOnDrop(
        Some(Box::pin(fut)),
        tokio::runtime::Handle::current(),
    ))
}

type BoxedOutcome = Pin<Box<dyn Future<Output = Result<Activation, LoadBalancerError>> + Send>>;

struct DetachOnDrop(Option<BoxedOutcome>, tokio::runtime::Handle);

impl Future for DetachOnDrop {
    type Output = Result<Activation, LoadBalancerError>;

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

type ByName = HashMap<String, Arc<dyn LoadBalancer>>;

/// Routes by action kind, with an optional per-action annotation naming a balancer
/// (`[load_balancer_resolver] type = "kind"`).
pub struct KindResolver {
    default: Arc<dyn LoadBalancer>,
    by_kind: HashMap<String, Arc<dyn LoadBalancer>>,
    /// The annotation an action may name its balancer with, and the balancers it may name.
    annotation: Option<(String, ByName)>,
    all: Vec<Arc<dyn LoadBalancer>>,
}

impl KindResolver {
    /// `all` are the controller's balancers; `default` serves kinds `by_kind` does not name;
    /// `annotation` is the annotation key and the names of the balancers it may pick.
    /// Balancers are referred to by [`LoadBalancer::name`]; an unknown name is an error.
    pub fn new(
        all: Vec<Arc<dyn LoadBalancer>>,
        default: &str,
        by_kind: &HashMap<String, String>,
        annotation: Option<(String, Vec<String>)>,
    ) -> Result<Self, String> {
        let find = |name: &str| {
            all.iter()
                .find(|b| b.name() == name)
                .cloned()
                .ok_or_else(|| format!("no load balancer named {name:?}"))
        };
        let default = find(default)?;
        let by_kind = by_kind
            .iter()
            .map(|(k, name)| Ok((k.clone(), find(name)?)))
            .collect::<Result<_, String>>()?;
        let annotation = match annotation {
            Some((key, allowed)) => {
                let allowed = allowed
                    .iter()
                    .map(|name| Ok((name.clone(), find(name)?)))
                    .collect::<Result<_, String>>()?;
                Some((key, allowed))
            }
            None => None,
        };
        Ok(Self {
            default,
            by_kind,
            annotation,
            all,
        })
    }
}

impl LoadBalancerResolver for KindResolver {
    fn resolve(&self, action: &Action) -> Arc<dyn LoadBalancer> {
        if let Some((key, allowed)) = &self.annotation {
            if let Some(b) = action
                .annotations
                .get(key)
                .and_then(|v| v.as_str())
                .and_then(|name| allowed.get(name))
            {
                return b.clone();
            }
        }
        match self.by_kind.get(action.kind()) {
            Some(b) => b.clone(),
            None => self.default.clone(),
        }
    }

    fn all(&self) -> Vec<Arc<dyn LoadBalancer>> {
        self.all.clone()
    }
}
