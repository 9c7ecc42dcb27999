//! The `direct` load balancer: the controller sends activations straight to warm shared
//! containers over HTTP, with no bus and no invoker queue in between.
//!
//! It keeps a routing table: for each action (by namespace, name and revision) the containers
//! leased for it ([`whirl_invoker::lease`]), each with its number of free slots (the action's
//! `limits.concurrency`). An activation takes a free slot in the first container that has one
//! (packing work onto as few containers as possible) and is sent to that container's `/run` on
//! the request's own task. When no container has a free slot, the activation asks the invoker for
//! a new one and the ones that arrive meanwhile queue briefly (at most `queue_timeout_ms`) for the
//! slots it brings or the slots that free up.
//!
//! Failure: a container whose run fails in a way that makes it unfit (its process died, it timed
//! out, it ran out of memory) leaves the table at once, so no new activation goes to it; every
//! activation that was running in it gets its own record from its own failed request, and the
//! last one out destroys the container. Containers idle for `idle_timeout_ms` are given back.
//! Leased containers are never paused (a paused container could not answer at once).
//!
//! Records are stored by this balancer (it is the one that saw the result), through the store's
//! group commit while the result goes back, as the lean path does; the controller's journal
//! covers a crash in between.
//!
//! Containers come from the invoker in the controller's process (the same one the `lean` and
//! in-process `sharding` balancers use, so they share its memory).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tracing::{debug, warn};
use whirl_invoker::lease::{InitTiming, Lease};
use whirl_invoker::Invoker;
use whirl_model::{Action, Activation, ActivationMessage, ActivationResponse};
use whirl_spi::{
    detach_on_drop, ActivationFuture, ActivationStore, ActiveCounts, HealthStatus, InvokerHealth,
    LoadBalancer, LoadBalancerError,
};

/// Settings of the `direct` balancer (`type = "direct"`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectBalancerConfig {
    /// How long an activation waits for a free slot before it ends with a whisk error.
    pub queue_timeout_ms: u64,
    /// A container that ran nothing for this long is destroyed.
    pub idle_timeout_ms: u64,
    /// Most containers one action may hold (0: as many as the invoker's memory allows).
    pub max_containers_per_action: usize,
}

impl Default for DirectBalancerConfig {
    fn default() -> Self {
        Self {
            queue_timeout_ms: 30_000,
            idle_timeout_ms: 600_000,
            max_containers_per_action: 0,
        }
    }
}

/// One leased container in the routing table.
struct Route {
    lease: Lease,
    /// Activations running in it (changed under the table's lock).
    active: AtomicUsize,
    max: usize,
    /// Out of the table: no new activations; the last one out destroys it.
    retired: AtomicBool,
    /// When it last finished an activation (ms since the balancer started).
    last_used_ms: AtomicU64,
}

/// The containers of one action.
#[derive(Default)]
struct ActionRoutes {
    containers: Vec<Arc<Route>>,
    /// Containers being created for it.
    creating: usize,
    /// Activations waiting for a slot.
    waiting: usize,
    /// Woken when a slot frees or a container arrives.
    ready: Arc<Notify>,
}

impl ActionRoutes {
    fn take_slot(&self) -> Option<Arc<Route>> {
        let r = self
            .containers
            .iter()
            .find(|r| r.active.load(Ordering::Relaxed) < r.max)?;
        r.active.fetch_add(1, Ordering::Relaxed);
        Some(r.clone())
    }

    fn remove(&mut self, route: &Arc<Route>) {
        self.containers.retain(|r| !Arc::ptr_eq(r, route));
    }
}

struct Shared {
    name: String,
    invoker: Invoker,
    activations: Arc<dyn ActivationStore>,
    config: DirectBalancerConfig,
    table: Mutex<HashMap<String, ActionRoutes>>,
    counts: ActiveCounts,
    epoch: tokio::time::Instant,
}

/// What an activation got from the routing table.
enum Slot {
    Route(Arc<Route>, Option<InitTiming>),
    /// It could not run; its record.
    Failed(Box<Activation>),
}

/// The `direct` balancer.
pub struct DirectBalancer {
    shared: Arc<Shared>,
}

impl DirectBalancer {
    /// A balancer named `name` over the in-process `invoker`, storing records in `activations`.
    pub fn new(
        name: impl Into<String>,
        invoker: Invoker,
        activations: Arc<dyn ActivationStore>,
        config: DirectBalancerConfig,
    ) -> Self {
        let shared = Arc::new(Shared {
            name: name.into(),
            invoker,
            activations,
            config,
            table: Mutex::new(HashMap::new()),
            counts: ActiveCounts::default(),
            epoch: tokio::time::Instant::now(),
        });
        tokio::spawn(reaper(Arc::downgrade(&shared)));
        Self { shared }
    }

    /// Containers in the routing table and the activations running in them, per action.
    pub fn routes(&self) -> Vec<(String, usize, usize)> {
        let table = self.shared.table.lock();
        table
            .iter()
            .map(|(k, r)| {
                let active = r
                    .containers
                    .iter()
                    .map(|c| c.active.load(Ordering::Relaxed))
                    .sum();
                (k.clone(), r.containers.len(), active)
            })
            .collect()
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    async fn slot(&self, key: &str, action: &Arc<Action>, msg: &ActivationMessage) -> Slot {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.queue_timeout_ms);
        // Slots a container of this action will have (before the first one says).
        let expected = usize::try_from(action.limits.concurrency)
            .unwrap_or(1)
            .max(1);
        loop {
            let ready = {
                let mut table = self.table.lock();
                let routes = match table.get_mut(key) {
                    Some(r) => r,
                    None => table.entry(key.to_owned()).or_default(),
                };
                if let Some(route) = routes.take_slot() {
                    return Slot::Route(route, None);
                }
                let per = routes.containers.first().map_or(expected, |r| r.max);
                let room = self.config.max_containers_per_action == 0
                    || routes.containers.len() + routes.creating
                        < self.config.max_containers_per_action;
                // Create another container unless the ones being created will take everyone
                // who waits.
                if room && routes.waiting >= routes.creating * per {
                    routes.creating += 1;
                    None
                } else {
                    routes.waiting += 1;
                    Some(routes.ready.clone())
                }
            };
            match ready {
                None => return self.create(key, action, msg).await,
                Some(ready) => {
                    let woken = ready.notified();
                    tokio::pin!(woken);
                    woken.as_mut().enable();
                    // Slots may have freed between the lock and `enable`: look again first.
                    let free = {
                        let mut table = self.table.lock();
                        let routes = table.entry(key.to_owned()).or_default();
                        let slot = routes.take_slot();
                        if slot.is_some() {
                            routes.waiting -= 1;
                        }
                        slot
                    };
                    if let Some(route) = free {
                        return Slot::Route(route, None);
                    }
                    let timed_out = tokio::time::timeout_at(deadline, woken).await.is_err();
                    let mut table = self.table.lock();
                    if let Some(routes) = table.get_mut(key) {
                        routes.waiting -= 1;
                    }
                    if timed_out {
                        drop(table);
                        debug!(activation = %msg.activation_id, "no container slot in time");
                        return Slot::Failed(Box::new(self.invoker.record_failure(
                            action,
                            msg,
                            ActivationResponse::whisk_error(
                                "No container of the action had a free slot in time.",
                            ),
                        )));
                    }
                }
            }
        }
    }

    /// Leases a new container for the action; the activation that asked takes its first slot.
    async fn create(&self, key: &str, action: &Arc<Action>, msg: &ActivationMessage) -> Slot {
        let leased = self.invoker.lease(action, msg).await;
        let mut table = self.table.lock();
        let routes = table.entry(key.to_owned()).or_default();
        routes.creating -= 1;
        routes.ready.notify_waiters();
        match leased {
            Ok((lease, timing)) => {
                let route = Arc::new(Route {
                    max: lease.max_concurrent(),
                    lease,
                    active: AtomicUsize::new(1),
                    retired: AtomicBool::new(false),
                    last_used_ms: AtomicU64::new(self.now_ms()),
                });
                debug!(action = %key, container = route.lease.container_id(), slots = route.max, "leased a container");
                routes.containers.push(route.clone());
                Slot::Route(route, Some(timing))
            }
            Err(record) => Slot::Failed(record),
        }
    }

    async fn run(self: Arc<Self>, action: Arc<Action>, msg: ActivationMessage) -> Activation {
        let key = format!(
            "{}/{}@{}#{}",
            msg.user.namespace, msg.action, action.version, action.updated
        );
        let record = match self.slot(&key, &action, &msg).await {
            Slot::Failed(record) => *record,
            Slot::Route(route, init) => {
                let (record, fit) = route.lease.run(&action, &msg, init).await;
                self.leave(&key, &route, fit).await;
                record
            }
        };
        let store = self.activations.clone();
        let stored = record.clone();
        tokio::spawn(async move {
            if let Err(e) = store.store(&stored).await {
                warn!(activation = %stored.activation_id, error = %e, "could not store the activation record");
            }
        });
        record
    }

    /// An activation is done with its container slot.
    async fn leave(&self, key: &str, route: &Arc<Route>, fit: bool) {
        let destroy = {
            let mut table = self.table.lock();
            let left = route.active.fetch_sub(1, Ordering::Relaxed) - 1;
            route.last_used_ms.store(self.now_ms(), Ordering::Relaxed);
            let newly_unfit = !fit && !route.retired.swap(true, Ordering::Relaxed);
            if let Some(routes) = table.get_mut(key) {
                if newly_unfit {
                    routes.remove(route);
                    // Those waiting may need a new container now.
                    routes.ready.notify_waiters();
                } else if routes.waiting > 0 && !route.retired.load(Ordering::Relaxed) {
                    routes.ready.notify_one();
                }
            }
            left == 0 && route.retired.load(Ordering::Relaxed)
        };
        if destroy {
            if fit {
                debug!(
                    container = route.lease.container_id(),
                    "destroying a retired shared container"
                );
            } else {
                warn!(
                    container = route.lease.container_id(),
                    "destroying a failed shared container"
                );
            }
            route.lease.end().await;
        }
    }

    /// Retires up to `n` containers that run nothing, least recently used first.
    fn retire_lru(&self, n: usize) -> Vec<Arc<Route>> {
        let mut table = self.table.lock();
        let mut idle: Vec<(u64, String, Arc<Route>)> = table
            .iter()
            .flat_map(|(k, routes)| {
                routes
                    .containers
                    .iter()
                    .filter(|r| r.active.load(Ordering::Relaxed) == 0)
                    .map(|r| (r.last_used_ms.load(Ordering::Relaxed), k.clone(), r.clone()))
            })
            .collect();
        idle.sort_by_key(|(t, _, _)| *t);
        idle.truncate(n);
        for (_, k, r) in &idle {
            r.retired.store(true, Ordering::Relaxed);
            if let Some(routes) = table.get_mut(k) {
                routes.remove(r);
            }
        }
        idle.into_iter().map(|(_, _, r)| r).collect()
    }

    /// Retires idle containers (all of them at `all`) and returns those that can go now.
    fn retire_idle(&self, all: bool) -> Vec<Arc<Route>> {
        let now = self.now_ms();
        let mut out = Vec::new();
        let mut table = self.table.lock();
        table.retain(|_, routes| {
            routes.containers.retain(|r| {
                let idle = r.active.load(Ordering::Relaxed) == 0
                    && now.saturating_sub(r.last_used_ms.load(Ordering::Relaxed))
                        >= self.config.idle_timeout_ms;
                if all || idle {
                    let was = r.retired.swap(true, Ordering::Relaxed);
                    if !was && r.active.load(Ordering::Relaxed) == 0 {
                        out.push(r.clone());
                    }
                    false
                } else {
                    true
                }
            });
            !routes.containers.is_empty() || routes.creating > 0 || routes.waiting > 0
        });
        out
    }
}

/// Gives back containers idle for `idle_timeout_ms`, and, while the invoker's pool has
/// activations waiting for memory, the least recently used idle ones at once (leased containers
/// are outside the pool's own eviction).
async fn reaper(shared: Weak<Shared>) {
    let tick = match shared.upgrade() {
        Some(s) => Duration::from_millis((s.config.idle_timeout_ms / 4).clamp(20, 200)),
        None => return,
    };
    loop {
        tokio::time::sleep(tick).await;
        let Some(s) = shared.upgrade() else { return };
        let mut gone = s.retire_idle(false);
        let queued = s.invoker.pool().queued;
        if queued > 0 {
            gone.extend(s.retire_lru(queued));
        }
        for r in gone {
            debug!(
                container = r.lease.container_id(),
                "giving back an idle shared container"
            );
            r.lease.end().await;
        }
    }
}

#[async_trait]
impl LoadBalancer for DirectBalancer {
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn publish(
        &self,
        action: Arc<Action>,
        mut msg: ActivationMessage,
    ) -> Result<ActivationFuture, LoadBalancerError> {
        msg.load_balancer.clone_from(&self.shared.name);
        let ns = msg.user.namespace.to_string();
        self.shared.counts.start(&ns);
        let shared = self.shared.clone();
        Ok(detach_on_drop(async move {
            let record = shared.clone().run(action, msg).await;
            shared.counts.finish(&ns);
            Ok(record)
        }))
    }

    fn active_activations_for(&self, namespace: &str) -> u64 {
        self.shared.counts.for_namespace(namespace)
    }

    fn total_active_activations(&self) -> u64 {
        self.shared.counts.total()
    }

    async fn invoker_health(&self) -> Vec<InvokerHealth> {
        vec![InvokerHealth {
            id: self.shared.invoker.id().to_string(),
            status: HealthStatus::Healthy,
            user_memory_mb: self.shared.invoker.pool().user_memory_mb,
            load_balancer: self.shared.name.clone(),
        }]
    }

    async fn shutdown(&self) {
        for r in self.shared.retire_idle(true) {
            r.lease.end().await;
        }
    }
}
