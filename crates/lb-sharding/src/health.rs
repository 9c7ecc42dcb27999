//! Invoker health and cluster membership as one controller sees them (OpenWhisk's InvokerPool
//! and InvokerActor, openwhisk.md §3.3), plus the topology the scheduler reads.
//!
//! The registry is a plain state machine driven by pings, results and clock ticks; it returns
//! [`Event`]s for the balancer to act on, so it is tested without a bus.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use whirl_model::message::HealthPing;
use whirl_spi::HealthStatus;

use crate::schedule::{pairwise_coprimes_until, partition, Candidate};
use crate::{Event, ShardingBalancerConfig};

/// How many recent results decide health, and how many bad ones are tolerated.
const RING: usize = 10;
const TOLERANCE: usize = 3;
/// The least memory an invoker is given per controller (OpenWhisk's MIN_MEMORY).
const MIN_MEMORY_MB: u64 = 128;

/// One activation's result as invoker health counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A whisk internal error.
    SystemError,
    /// No completion arrived in time (forced).
    Timeout,
}

#[derive(Debug)]
struct Invoker {
    id: String,
    incarnation: String,
    user_memory_mb: u64,
    last_ping: Instant,
    status: HealthStatus,
    ring: VecDeque<Outcome>,
    last_test: Option<Instant>,
    draining: bool,
    /// The incarnation went offline while this controller could not hear itself either: decide
    /// whether it is lost once the bus is back.
    lost_pending: bool,
    lost_handled: bool,
}

/// The scheduler's view: the managed and blackbox sets and their step sizes.
#[derive(Debug, Default)]
pub struct Topology {
    pub managed: Vec<Arc<Candidate>>,
    pub blackbox: Vec<Arc<Candidate>>,
    pub managed_steps: Vec<usize>,
    pub blackbox_steps: Vec<usize>,
}

/// Every invoker and controller this controller has heard of.
pub struct Registry {
    offline_after: Duration,
    test_every: Duration,
    ping_every: Duration,
    managed_fraction: f64,
    blackbox_fraction: f64,
    invokers: Vec<Option<Invoker>>,
    candidates: Vec<Arc<Candidate>>,
    topology: Arc<Topology>,
    controllers: HashMap<String, Instant>,
    own_ping_at: Option<Instant>,
    cluster_size: usize,
}

impl Registry {
    pub fn new(cfg: &ShardingBalancerConfig) -> Self {
        Self {
            offline_after: Duration::from_millis(cfg.invoker_offline_ms),
            test_every: Duration::from_millis(cfg.test_action_interval_ms),
            ping_every: Duration::from_millis(cfg.ping_interval_ms),
            managed_fraction: cfg.managed_fraction,
            blackbox_fraction: cfg.blackbox_fraction,
            invokers: Vec::new(),
            candidates: Vec::new(),
            topology: Arc::default(),
            controllers: HashMap::new(),
            own_ping_at: None,
            cluster_size: 1,
        }
    }

    pub fn topology(&self) -> Arc<Topology> {
        self.topology.clone()
    }

    pub fn candidate(&self, index: u32) -> Option<Arc<Candidate>> {
        self.candidates.get(index as usize).cloned()
    }

    pub fn cluster_size(&self) -> usize {
        self.cluster_size
    }

    pub fn is_offline(&self, index: u32) -> bool {
        matches!(
            self.invokers.get(index as usize),
            Some(Some(i)) if i.status == HealthStatus::Offline
        )
    }

    pub fn drain_ended(&mut self, index: u32) {
        if let Some(Some(i)) = self.invokers.get_mut(index as usize) {
            i.draining = false;
        }
    }

    /// `(id, status, user memory)` of every invoker heard of, by index.
    pub fn health(&self) -> Vec<(String, HealthStatus, u64)> {
        self.invokers
            .iter()
            .flatten()
            .map(|i| (i.id.clone(), i.status, i.user_memory_mb))
            .collect()
    }

    fn capacity(&self, user_memory_mb: u64) -> u64 {
        let share = user_memory_mb / self.cluster_size.max(1) as u64;
        if share < MIN_MEMORY_MB {
            tracing::error!(
                user_memory_mb,
                controllers = self.cluster_size,
                "an invoker's share of memory is below {MIN_MEMORY_MB} MB; using {MIN_MEMORY_MB} MB"
            );
        }
        share.max(MIN_MEMORY_MB)
    }

    fn rebuild(&mut self) {
        let n = self.candidates.len();
        let (managed, blackbox) = partition(n, self.managed_fraction, self.blackbox_fraction);
        let managed: Vec<_> = managed
            .iter()
            .map(|&p| self.candidates[p].clone())
            .collect();
        let blackbox: Vec<_> = blackbox
            .iter()
            .map(|&p| self.candidates[p].clone())
            .collect();
        self.topology = Arc::new(Topology {
            managed_steps: pairwise_coprimes_until(managed.len()),
            blackbox_steps: pairwise_coprimes_until(blackbox.len()),
            managed,
            blackbox,
        });
    }

    fn set_status(&mut self, index: usize, status: HealthStatus) {
        if let Some(Some(i)) = self.invokers.get_mut(index) {
            if i.status != status {
                tracing::info!(invoker = %i.id, from = ?i.status, to = ?status, "invoker health changed");
            }
            i.status = status;
        }
        if let Some(c) = self.candidates.get(index) {
            c.set_usable(status == HealthStatus::Healthy);
        }
    }

    fn bus_ok(&self, now: Instant) -> bool {
        self.own_ping_at
            .is_some_and(|t| now.duration_since(t) <= self.ping_every * 3)
    }

    fn recount_controllers(&mut self, now: Instant) {
        let alive = self.offline_after;
        self.controllers
            .retain(|_, seen| now.duration_since(*seen) <= alive);
        let size = self.controllers.len().max(1);
        if size != self.cluster_size {
            tracing::info!(
                from = self.cluster_size,
                to = size,
                "controllers sharing the invokers changed"
            );
            self.cluster_size = size;
            for (c, i) in self.candidates.iter().zip(&self.invokers) {
                if let Some(i) = i {
                    c.slots.memory.set_capacity(self.capacity(i.user_memory_mb));
                }
            }
        }
    }

    /// A ping arrived.
    pub fn on_ping(
        &mut self,
        ping: &HealthPing,
        own_id: &str,
        own_incarnation: &str,
    ) -> Vec<Event> {
        let now = Instant::now();
        let (sent_at, fresh) = match ping {
            HealthPing::Invoker { sent_at_ms, .. } | HealthPing::Controller { sent_at_ms, .. } => {
                let age = whirl_model::time::now_ms().saturating_sub(*sent_at_ms);
                (*sent_at_ms, age <= self.offline_after.as_millis() as u64)
            }
        };
        if !fresh {
            tracing::debug!(sent_at, "ignoring a stale ping");
            return Vec::new();
        }
        let mut events = Vec::new();
        match ping {
            HealthPing::Controller {
                id, incarnation, ..
            } => {
                if id == own_id && incarnation == own_incarnation {
                    self.own_ping_at = Some(now);
                }
                self.controllers.insert(id.clone(), now);
                self.recount_controllers(now);
            }
            HealthPing::Invoker {
                id,
                index,
                user_memory_mb,
                incarnation,
                enabled,
                ..
            } => {
                let idx = *index as usize;
                if idx >= self.candidates.len() {
                    while self.candidates.len() <= idx {
                        let n = self.candidates.len() as u32;
                        self.candidates.push(Arc::new(Candidate::new(n, 0)));
                        self.invokers.push(None);
                    }
                    self.rebuild();
                }
                let capacity = self.capacity(*user_memory_mb);
                let cand = self.candidates[idx].clone();
                let status = match &mut self.invokers[idx] {
                    slot @ None => {
                        cand.slots.reset();
                        cand.slots.memory.set_capacity(capacity);
                        *slot = Some(Invoker {
                            id: id.clone(),
                            incarnation: incarnation.clone(),
                            user_memory_mb: *user_memory_mb,
                            last_ping: now,
                            status: HealthStatus::Unhealthy,
                            ring: VecDeque::new(),
                            last_test: Some(now),
                            draining: false,
                            lost_pending: false,
                            lost_handled: false,
                        });
                        events.push(Event::Test { index: *index });
                        if *enabled {
                            HealthStatus::Unhealthy
                        } else {
                            HealthStatus::Offline
                        }
                    }
                    Some(inv) => {
                        inv.last_ping = now;
                        if inv.user_memory_mb != *user_memory_mb {
                            inv.user_memory_mb = *user_memory_mb;
                            cand.slots.memory.set_capacity(capacity);
                        }
                        if inv.incarnation != *incarnation {
                            // A restart: nothing the old process started will complete.
                            if !inv.lost_handled {
                                events.push(Event::Lost {
                                    incarnation: inv.incarnation.clone(),
                                });
                            }
                            tracing::info!(invoker = %id, "invoker restarted");
                            inv.incarnation = incarnation.clone();
                            inv.id = id.clone();
                            inv.ring.clear();
                            inv.lost_pending = false;
                            inv.lost_handled = false;
                            inv.last_test = Some(now);
                            cand.slots.reset();
                            events.push(Event::Test { index: *index });
                            HealthStatus::Unhealthy
                        } else if !*enabled {
                            if inv.status != HealthStatus::Offline && !inv.draining {
                                inv.draining = true;
                                events.push(Event::Drain { index: *index });
                            }
                            HealthStatus::Offline
                        } else if inv.status == HealthStatus::Offline {
                            inv.ring.clear();
                            inv.last_test = Some(now);
                            events.push(Event::Test { index: *index });
                            HealthStatus::Unhealthy
                        } else {
                            inv.status
                        }
                    }
                };
                self.set_status(idx, status);
            }
        }
        events
    }

    /// Time passed: Offline detection, lost incarnations, test actions, controller expiry.
    pub fn tick(&mut self, now: Instant) -> Vec<Event> {
        self.recount_controllers(now);
        let bus_ok = self.bus_ok(now);
        let mut events = Vec::new();
        let mut changes = Vec::new();
        for (idx, inv) in self.invokers.iter_mut().enumerate() {
            let Some(inv) = inv else { continue };
            let index = idx as u32;
            if inv.status != HealthStatus::Offline
                && now.duration_since(inv.last_ping) > self.offline_after
            {
                tracing::warn!(invoker = %inv.id, "no ping from the invoker: offline");
                changes.push((idx, HealthStatus::Offline));
                inv.lost_pending = !inv.lost_handled;
                if !inv.draining {
                    inv.draining = true;
                    events.push(Event::Drain { index });
                }
            }
            let offline = inv.status == HealthStatus::Offline
                || changes.last().is_some_and(|(i, _)| *i == idx);
            if offline {
                if inv.lost_pending && bus_ok {
                    inv.lost_pending = false;
                    inv.lost_handled = true;
                    events.push(Event::Lost {
                        incarnation: inv.incarnation.clone(),
                    });
                }
                if !inv.draining {
                    inv.draining = true;
                    events.push(Event::Drain { index });
                }
                continue;
            }
            if matches!(
                inv.status,
                HealthStatus::Unhealthy | HealthStatus::Unresponsive
            ) && inv
                .last_test
                .is_none_or(|t| now.duration_since(t) >= self.test_every)
            {
                inv.last_test = Some(now);
                events.push(Event::Test { index });
            }
        }
        for (idx, status) in changes {
            self.set_status(idx, status);
            if let Some(c) = self.candidates.get(idx) {
                c.slots.reset();
            }
        }
        events
    }

    /// An activation's result on invoker `index`.
    pub fn record_outcome(&mut self, index: u32, outcome: Outcome, health_test: bool) {
        let idx = index as usize;
        let Some(Some(inv)) = self.invokers.get_mut(idx) else {
            return;
        };
        inv.ring.push_back(outcome);
        while inv.ring.len() > RING {
            inv.ring.pop_front();
        }
        let errors = inv
            .ring
            .iter()
            .filter(|o| **o == Outcome::SystemError)
            .count();
        let timeouts = inv.ring.iter().filter(|o| **o == Outcome::Timeout).count();
        let status = match (inv.status, outcome) {
            (HealthStatus::Offline, _) => HealthStatus::Offline,
            (HealthStatus::Unhealthy | HealthStatus::Unresponsive, Outcome::Success) => {
                HealthStatus::Healthy
            }
            (HealthStatus::Healthy, _) if errors > TOLERANCE => HealthStatus::Unhealthy,
            (HealthStatus::Healthy, _) if timeouts > TOLERANCE => HealthStatus::Unresponsive,
            (s, _) => s,
        };
        if status != inv.status && status != HealthStatus::Healthy {
            inv.last_test = None; // test at the next tick
        }
        if status == HealthStatus::Healthy && inv.status != HealthStatus::Healthy {
            inv.ring.clear();
        }
        let _ = health_test;
        self.set_status(idx, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(index: u32, inc: &str, enabled: bool) -> HealthPing {
        HealthPing::Invoker {
            id: format!("invoker{index}"),
            index,
            user_memory_mb: 1024,
            incarnation: inc.into(),
            enabled,
            sent_at_ms: whirl_model::time::now_ms(),
        }
    }

    fn own(reg: &mut Registry) {
        reg.on_ping(
            &HealthPing::Controller {
                id: "c0".into(),
                incarnation: "me".into(),
                sent_at_ms: whirl_model::time::now_ms(),
            },
            "c0",
            "me",
        );
    }

    fn cfg() -> ShardingBalancerConfig {
        ShardingBalancerConfig {
            invoker_offline_ms: 100,
            ping_interval_ms: 50,
            test_action_interval_ms: 1000,
            ..Default::default()
        }
    }

    #[test]
    fn lifecycle_unhealthy_healthy_offline_restart() {
        let mut reg = Registry::new(&cfg());
        own(&mut reg);
        let ev = reg.on_ping(&ping(1, "a", true), "c0", "me");
        assert_eq!(
            ev,
            vec![Event::Test { index: 1 }],
            "a new invoker is tested"
        );
        assert_eq!(reg.candidates.len(), 2, "padded up to the highest index");
        assert_eq!(reg.health()[0].1, HealthStatus::Unhealthy);
        assert!(!reg.candidate(1).unwrap().usable());
        reg.record_outcome(1, Outcome::Success, true);
        assert_eq!(reg.health()[0].1, HealthStatus::Healthy);
        assert!(reg.candidate(1).unwrap().usable());
        assert_eq!(reg.candidate(1).unwrap().slots.memory.capacity(), 1024);

        // No pings: offline, lost (the bus works: our own ping is fresh), drained.
        std::thread::sleep(Duration::from_millis(150));
        own(&mut reg);
        let ev = reg.tick(Instant::now());
        assert!(ev.contains(&Event::Drain { index: 1 }), "{ev:?}");
        assert!(
            ev.contains(&Event::Lost {
                incarnation: "a".into()
            }),
            "{ev:?}"
        );
        assert!(reg.is_offline(1));
        assert!(!reg.candidate(1).unwrap().usable());
        assert!(reg.tick(Instant::now()).is_empty(), "events once");

        // It comes back as a new process: tested again, not lost twice.
        let ev = reg.on_ping(&ping(1, "b", true), "c0", "me");
        assert_eq!(ev, vec![Event::Test { index: 1 }]);
        assert_eq!(reg.health()[0].1, HealthStatus::Unhealthy);
    }

    #[test]
    fn restart_without_offline_loses_the_old_incarnation() {
        let mut reg = Registry::new(&cfg());
        reg.on_ping(&ping(0, "a", true), "c0", "me");
        let ev = reg.on_ping(&ping(0, "b", true), "c0", "me");
        assert_eq!(
            ev,
            vec![
                Event::Lost {
                    incarnation: "a".into()
                },
                Event::Test { index: 0 }
            ]
        );
    }

    #[test]
    fn no_loss_declared_while_the_bus_is_down() {
        let mut reg = Registry::new(&cfg());
        reg.on_ping(&ping(0, "a", true), "c0", "me");
        reg.record_outcome(0, Outcome::Success, true);
        std::thread::sleep(Duration::from_millis(200));
        // Our own pings stopped too: a bus outage, not a dead invoker.
        let ev = reg.tick(Instant::now());
        assert_eq!(ev, vec![Event::Drain { index: 0 }]);
        // The bus is back and the invoker with it (same incarnation): nothing lost.
        own(&mut reg);
        let ev = reg.on_ping(&ping(0, "a", true), "c0", "me");
        assert_eq!(ev, vec![Event::Test { index: 0 }]);
        assert!(reg.tick(Instant::now()).is_empty());
    }

    #[test]
    fn errors_and_timeouts_degrade_health() {
        let mut reg = Registry::new(&cfg());
        reg.on_ping(&ping(0, "a", true), "c0", "me");
        reg.record_outcome(0, Outcome::Success, true);
        for _ in 0..3 {
            reg.record_outcome(0, Outcome::SystemError, false);
        }
        assert_eq!(reg.health()[0].1, HealthStatus::Healthy, "3 are tolerated");
        reg.record_outcome(0, Outcome::SystemError, false);
        assert_eq!(reg.health()[0].1, HealthStatus::Unhealthy);
        reg.record_outcome(0, Outcome::Success, true);
        assert_eq!(reg.health()[0].1, HealthStatus::Healthy);
        for _ in 0..4 {
            reg.record_outcome(0, Outcome::Timeout, false);
        }
        assert_eq!(reg.health()[0].1, HealthStatus::Unresponsive);
    }

    #[test]
    fn memory_is_divided_among_controllers() {
        let mut reg = Registry::new(&cfg());
        reg.on_ping(&ping(0, "a", true), "c0", "me");
        own(&mut reg);
        reg.on_ping(
            &HealthPing::Controller {
                id: "c1".into(),
                incarnation: "x".into(),
                sent_at_ms: whirl_model::time::now_ms(),
            },
            "c0",
            "me",
        );
        assert_eq!(reg.cluster_size(), 2);
        assert_eq!(reg.candidate(0).unwrap().slots.memory.capacity(), 512);
    }

    #[test]
    fn graceful_stop_is_offline_and_drained() {
        let mut reg = Registry::new(&cfg());
        reg.on_ping(&ping(0, "a", true), "c0", "me");
        reg.record_outcome(0, Outcome::Success, true);
        let ev = reg.on_ping(&ping(0, "a", false), "c0", "me");
        assert_eq!(ev, vec![Event::Drain { index: 0 }]);
        assert!(reg.is_offline(0));
    }
}
