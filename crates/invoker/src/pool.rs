//! The container pool: which container an activation runs in.
//!
//! Order of preference (OpenWhisk's ContainerPool): a warm idle container of the same action
//! revision and invoking namespace; a prewarmed stem cell of the same kind and memory; a cold start
//! if memory and the factory's container count allow; a cold start after evicting idle warm
//! containers (least recently used first; prewarms are never evicted); otherwise the activation
//! waits in a FIFO queue until a container is released.
//!
//! The state sits behind one short, synchronous lock that is never held across an await, so the
//! warm path costs a hash lookup and a pop.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use whirl_runtime_client::RuntimeClient;
use whirl_spi::Container;

/// Identifies the containers an activation may reuse: same invoking namespace, same action, same
/// revision of it (an update makes a new key, so old containers age out).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WarmKey {
    pub namespace: String,
    pub action: String,
    pub version: String,
    pub updated: u64,
}

/// One container owned by the pool, with its protocol client.
pub struct Slot {
    pub id: u64,
    pub container: Arc<dyn Container>,
    pub client: RuntimeClient,
    pub kind: String,
    pub memory_mb: u64,
    /// Bumped each time the slot is taken; lets the janitor see it was used since it looked.
    pub generation: AtomicU64,
    /// Lifecycle lock; the value says whether the container is suspended.
    pub suspended: tokio::sync::Mutex<bool>,
    /// Milliseconds since the pool's epoch of the last release.
    pub last_used_ms: AtomicU64,
    /// /init has succeeded.
    pub initialized: AtomicBool,
    /// Activations that reached this container so far (their order in its output).
    pub runs: AtomicU64,
}

/// What [`Pool::acquire`] found.
pub enum Acquired {
    /// A warm container of this action: run at once.
    Warm(Arc<Slot>),
    /// A prewarmed stem cell of this kind and memory: /init, then run.
    Prewarm(Arc<Slot>),
    /// Memory is reserved for a new container: create it, then /init and run.
    Cold,
}

/// Counts for status pages and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolSnapshot {
    pub user_memory_mb: u64,
    pub used_memory_mb: u64,
    pub containers: usize,
    pub idle: usize,
    pub prewarmed: usize,
    pub busy: usize,
    pub queued: usize,
    pub cold_starts: u64,
    pub prewarm_starts: u64,
    pub warm_starts: u64,
}

struct State {
    used_mb: u64,
    containers: usize,
    idle: HashMap<WarmKey, Vec<Arc<Slot>>>,
    idle_count: usize,
    prewarmed: HashMap<(String, u64), Vec<Arc<Slot>>>,
    prewarm_starting: HashMap<(String, u64), usize>,
    waiters: VecDeque<oneshot::Sender<()>>,
    live: HashMap<u64, Arc<Slot>>,
    cold_starts: u64,
    prewarm_starts: u64,
    warm_starts: u64,
}

/// The pool of containers of one invoker.
pub struct Pool {
    state: Mutex<State>,
    user_memory_mb: u64,
    max_containers: usize,
    epoch: Instant,
    next_id: AtomicU64,
}

impl Pool {
    pub fn new(user_memory_mb: u64, max_containers: usize) -> Self {
        Self {
            state: Mutex::new(State {
                used_mb: 0,
                containers: 0,
                idle: HashMap::new(),
                idle_count: 0,
                prewarmed: HashMap::new(),
                prewarm_starting: HashMap::new(),
                waiters: VecDeque::new(),
                live: HashMap::new(),
                cold_starts: 0,
                prewarm_starts: 0,
                warm_starts: 0,
            }),
            user_memory_mb,
            max_containers,
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
        }
    }

    pub fn user_memory_mb(&self) -> u64 {
        self.user_memory_mb
    }

    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Finds a container for an activation, or returns a receiver that fires when a container was
    /// released and the caller should try again. Evicted containers are returned for the caller to
    /// destroy outside the lock.
    pub fn acquire(
        &self,
        key: &WarmKey,
        kind: &str,
        memory_mb: u64,
    ) -> (Result<Acquired, oneshot::Receiver<()>>, Vec<Arc<Slot>>) {
        let mut st = self.state.lock();
        if let Some(slot) = st.idle.get_mut(key).and_then(Vec::pop) {
            st.idle_count -= 1;
            st.warm_starts += 1;
            slot.generation.fetch_add(1, Ordering::AcqRel);
            return (Ok(Acquired::Warm(slot)), Vec::new());
        }
        if let Some(slot) = st
            .prewarmed
            .get_mut(&(kind.to_string(), memory_mb))
            .and_then(Vec::pop)
        {
            st.prewarm_starts += 1;
            slot.generation.fetch_add(1, Ordering::AcqRel);
            return (Ok(Acquired::Prewarm(slot)), Vec::new());
        }
        let mut evicted = Vec::new();
        if !self.fits(&st, memory_mb) {
            evicted = Self::evict(&mut st, memory_mb, self.user_memory_mb, self.max_containers);
        }
        if self.fits(&st, memory_mb) {
            st.used_mb += memory_mb;
            st.containers += 1;
            st.cold_starts += 1;
            return (Ok(Acquired::Cold), evicted);
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(tx);
        (Err(rx), evicted)
    }

    fn fits(&self, st: &State, memory_mb: u64) -> bool {
        st.used_mb + memory_mb <= self.user_memory_mb && st.containers < self.max_containers
    }

    /// Removes least-recently-used idle containers until `memory_mb` fits (or nothing idle is
    /// left). Frees their memory at once; the caller destroys them.
    fn evict(
        st: &mut State,
        memory_mb: u64,
        user_memory: u64,
        max_containers: usize,
    ) -> Vec<Arc<Slot>> {
        let mut candidates: Vec<(WarmKey, usize, u64)> = Vec::new();
        for (k, v) in &st.idle {
            for (i, s) in v.iter().enumerate() {
                candidates.push((k.clone(), i, s.last_used_ms.load(Ordering::Relaxed)));
            }
        }
        candidates.sort_by_key(|c| c.2);
        let mut chosen: Vec<(WarmKey, u64)> = Vec::new();
        let mut used = st.used_mb;
        let mut count = st.containers;
        for (k, i, _) in candidates {
            if used + memory_mb <= user_memory && count < max_containers {
                break;
            }
            let slot_id = st.idle[&k][i].id;
            used -= st.idle[&k][i].memory_mb;
            count -= 1;
            chosen.push((k, slot_id));
        }
        if used + memory_mb > user_memory || count >= max_containers {
            return Vec::new(); // evicting everything idle would still not make room
        }
        let mut out = Vec::with_capacity(chosen.len());
        for (k, id) in chosen {
            if let Some(v) = st.idle.get_mut(&k) {
                if let Some(pos) = v.iter().position(|s| s.id == id) {
                    let s = v.swap_remove(pos);
                    st.idle_count -= 1;
                    st.used_mb -= s.memory_mb;
                    st.containers -= 1;
                    st.live.remove(&s.id);
                    out.push(s);
                }
                if v.is_empty() {
                    st.idle.remove(&k);
                }
            }
        }
        out
    }

    /// Records a newly created container (its memory was reserved by [`Pool::acquire`]).
    pub fn register(&self, slot: &Arc<Slot>) {
        self.state.lock().live.insert(slot.id, slot.clone());
    }

    /// Gives back a reservation whose container could not be created.
    pub fn cancel_reservation(&self, memory_mb: u64) {
        let mut st = self.state.lock();
        st.used_mb -= memory_mb;
        st.containers -= 1;
        Self::wake_one(&mut st);
    }

    /// Returns a healthy container to the idle set of its action.
    pub fn release(&self, key: WarmKey, slot: Arc<Slot>) {
        slot.last_used_ms.store(self.now_ms(), Ordering::Relaxed);
        let mut st = self.state.lock();
        st.idle.entry(key).or_default().push(slot);
        st.idle_count += 1;
        Self::wake_one(&mut st);
    }

    /// Forgets a container that is being destroyed and frees its memory.
    pub fn discard(&self, slot: &Slot) {
        let mut st = self.state.lock();
        if st.live.remove(&slot.id).is_some() {
            st.used_mb -= slot.memory_mb;
            st.containers -= 1;
        }
        Self::wake_one(&mut st);
    }

    fn wake_one(st: &mut State) {
        while let Some(w) = st.waiters.pop_front() {
            if w.send(()).is_ok() {
                break;
            }
        }
    }

    /// Reserves room for a prewarmed container, if it fits.
    pub fn reserve_prewarm(&self, kind: &str, memory_mb: u64) -> bool {
        let mut st = self.state.lock();
        if !self.fits(&st, memory_mb) {
            return false;
        }
        st.used_mb += memory_mb;
        st.containers += 1;
        *st.prewarm_starting
            .entry((kind.to_string(), memory_mb))
            .or_default() += 1;
        true
    }

    /// A prewarm reservation ended: `Some(slot)` when the container started, None when it failed.
    pub fn prewarm_ready(&self, kind: &str, memory_mb: u64, slot: Option<Arc<Slot>>) {
        let mut st = self.state.lock();
        let k = (kind.to_string(), memory_mb);
        if let Some(n) = st.prewarm_starting.get_mut(&k) {
            *n = n.saturating_sub(1);
        }
        match slot {
            Some(slot) => {
                st.live.insert(slot.id, slot.clone());
                st.prewarmed.entry(k).or_default().push(slot);
            }
            None => {
                st.used_mb -= memory_mb;
                st.containers -= 1;
                Self::wake_one(&mut st);
            }
        }
    }

    /// Prewarmed plus starting containers of a kind and memory.
    pub fn prewarm_count(&self, kind: &str, memory_mb: u64) -> usize {
        let st = self.state.lock();
        let k = (kind.to_string(), memory_mb);
        st.prewarmed.get(&k).map_or(0, Vec::len) + st.prewarm_starting.get(&k).copied().unwrap_or(0)
    }

    /// Idle containers with their generation, for the janitor.
    pub fn idle_slots(&self) -> Vec<Arc<Slot>> {
        let st = self.state.lock();
        st.idle.values().flatten().cloned().collect()
    }

    /// Removes one idle container if it is still idle and unused since `generation`.
    pub fn take_idle_if_unused(&self, slot: &Arc<Slot>, generation: u64) -> bool {
        let mut st = self.state.lock();
        if slot.generation.load(Ordering::Acquire) != generation {
            return false;
        }
        let mut found = None;
        for (k, v) in st.idle.iter_mut() {
            if let Some(pos) = v.iter().position(|s| s.id == slot.id) {
                v.swap_remove(pos);
                found = Some(k.clone());
                break;
            }
        }
        let Some(k) = found else { return false };
        if st.idle.get(&k).is_some_and(Vec::is_empty) {
            st.idle.remove(&k);
        }
        st.idle_count -= 1;
        if st.live.remove(&slot.id).is_some() {
            st.used_mb -= slot.memory_mb;
            st.containers -= 1;
        }
        Self::wake_one(&mut st);
        true
    }

    /// Every live container (for shutdown).
    pub fn drain_all(&self) -> Vec<Arc<Slot>> {
        let mut st = self.state.lock();
        st.idle.clear();
        st.idle_count = 0;
        st.prewarmed.clear();
        st.waiters.clear();
        st.live.drain().map(|(_, s)| s).collect()
    }

    pub fn snapshot(&self) -> PoolSnapshot {
        let st = self.state.lock();
        let prewarmed: usize = st.prewarmed.values().map(Vec::len).sum();
        PoolSnapshot {
            user_memory_mb: self.user_memory_mb,
            used_memory_mb: st.used_mb,
            containers: st.containers,
            idle: st.idle_count,
            prewarmed,
            busy: st.live.len().saturating_sub(st.idle_count + prewarmed),
            queued: st.waiters.len(),
            cold_starts: st.cold_starts,
            prewarm_starts: st.prewarm_starts,
            warm_starts: st.warm_starts,
        }
    }
}
