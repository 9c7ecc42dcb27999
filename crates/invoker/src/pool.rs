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
//!
//! # Shared containers (`limits.concurrency` above 1)
//!
//! A container of an action with concurrency N runs up to N activations at once; its memory is
//! charged once, for the whole container (as in OpenWhisk). While it runs fewer than N it stays
//! in the action's *shared* list, which [`Pool::acquire`] tries before anything else; a
//! container still starting for the action takes joiners too, who wait for it rather than start
//! containers of their own. A container is idle (and can be paused, evicted or reaped) only when
//! nothing runs in it. A failure in a shared container stops new activations from entering it; the
//! last activation to leave destroys it, so a neighbour's failure never kills activations that are
//! still running. Activations that find no room wait in the FIFO queue; a freed slot in a shared
//! container wakes the first waiter of the same action. Actions with concurrency 1 never touch the
//! shared lists.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use whirl_model::ActivationResponse;
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
    /// Activations this container may run at once (set by the action that first takes it).
    pub max_concurrent: AtomicUsize,
    /// Activations running in it now (changed under the pool's lock).
    pub active: AtomicUsize,
    /// A shared container that failed: no new activations; the last one out destroys it.
    pub doomed: AtomicBool,
    /// Serializes /init among the activations that share a fresh container; holds the failure of
    /// a failed /init, which every activation that waited for it records as well.
    pub init_gate: tokio::sync::Mutex<Option<ActivationResponse>>,
}

impl Slot {
    pub fn new(
        id: u64,
        container: Arc<dyn Container>,
        client: RuntimeClient,
        kind: String,
        memory_mb: u64,
    ) -> Self {
        Slot {
            id,
            container,
            client,
            kind,
            memory_mb,
            generation: AtomicU64::new(0),
            suspended: tokio::sync::Mutex::new(false),
            last_used_ms: AtomicU64::new(0),
            initialized: AtomicBool::new(false),
            max_concurrent: AtomicUsize::new(1),
            active: AtomicUsize::new(0),
            doomed: AtomicBool::new(false),
            init_gate: tokio::sync::Mutex::new(None),
            runs: AtomicU64::new(0),
        }
    }

    /// Whether activations share this container.
    pub fn is_shared(&self) -> bool {
        self.max_concurrent.load(Ordering::Relaxed) > 1
    }

    /// Makes the container take up to `n` activations at once.
    pub(crate) fn set_concurrency(&self, n: usize) {
        self.max_concurrent.store(n, Ordering::Relaxed);
        if n > 1 {
            self.client.set_max_idle(n);
        }
    }
}

/// A container being created for an action with concurrency above 1, which other activations of
/// the action join while it starts.
pub struct Starting {
    max: usize,
    /// Activations waiting for it besides the one creating it (changed under the pool's lock).
    joined: AtomicUsize,
    /// `None` while starting; then the container, or `None` inside when creation failed.
    ready: watch::Sender<Option<Option<Arc<Slot>>>>,
}

/// Waits for a container that another activation is creating; `None` when creation failed (try
/// again).
pub struct Join(watch::Receiver<Option<Option<Arc<Slot>>>>);

impl Join {
    pub async fn wait(mut self) -> Option<Arc<Slot>> {
        match self.0.wait_for(Option::is_some).await {
            Ok(v) => v.clone().flatten(),
            Err(_) => None,
        }
    }
}

/// What [`Pool::acquire`] found.
pub enum Acquired {
    /// A warm container of this action: run at once.
    Warm(Arc<Slot>),
    /// A prewarmed stem cell of this kind and memory: /init, then run.
    Prewarm(Arc<Slot>),
    /// Memory is reserved for a new container: create it, then /init and run.
    Cold,
    /// As `Cold`, for an action with concurrency above 1: others may join while it starts, so
    /// report it with [`Pool::started`].
    ColdShared(Arc<Starting>),
    /// Another activation is creating a container with room for this one too: wait for it, then
    /// run (it is already counted in the container).
    Join(Join),
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
    /// Activations running in containers (above `busy` when containers are shared).
    pub activations: usize,
    pub queued: usize,
    pub cold_starts: u64,
    pub prewarm_starts: u64,
    pub warm_starts: u64,
}

struct Waiter {
    tx: oneshot::Sender<()>,
    /// For an action with concurrency above 1: a freed slot in its shared containers serves it.
    key: Option<WarmKey>,
}

struct State {
    used_mb: u64,
    containers: usize,
    idle: HashMap<WarmKey, Vec<Arc<Slot>>>,
    idle_count: usize,
    prewarmed: HashMap<(String, u64), Vec<Arc<Slot>>>,
    prewarm_starting: HashMap<(String, u64), usize>,
    waiters: VecDeque<Waiter>,
    live: HashMap<u64, Arc<Slot>>,
    /// Containers of actions with concurrency above 1 that run at least one activation and have
    /// room for another.
    shared: HashMap<WarmKey, Vec<Arc<Slot>>>,
    /// Containers being created for actions with concurrency above 1.
    starting: HashMap<WarmKey, Vec<Arc<Starting>>>,
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
                shared: HashMap::new(),
                starting: HashMap::new(),
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
    ///
    /// `concurrency` is how many activations of this action one container may run at once.
    pub fn acquire(
        &self,
        key: &WarmKey,
        kind: &str,
        memory_mb: u64,
        concurrency: usize,
    ) -> (Result<Acquired, oneshot::Receiver<()>>, Vec<Arc<Slot>>) {
        let mut st = self.state.lock();
        let shared = concurrency > 1;
        if shared {
            if let Some(slot) = Self::take_shared(&mut st, key) {
                st.warm_starts += 1;
                return (Ok(Acquired::Warm(slot)), Vec::new());
            }
        }
        if let Some(slot) = st.idle.get_mut(key).and_then(Vec::pop) {
            st.idle_count -= 1;
            st.warm_starts += 1;
            slot.generation.fetch_add(1, Ordering::AcqRel);
            slot.active.store(1, Ordering::Relaxed);
            if shared {
                Self::list_shared(&mut st, key, &slot);
            }
            return (Ok(Acquired::Warm(slot)), Vec::new());
        }
        if shared {
            if let Some(join) = Self::join_starting(&mut st, key) {
                st.warm_starts += 1;
                return (Ok(Acquired::Join(join)), Vec::new());
            }
        }
        if let Some(slot) = st
            .prewarmed
            .get_mut(&(kind.to_string(), memory_mb))
            .and_then(Vec::pop)
        {
            st.prewarm_starts += 1;
            slot.generation.fetch_add(1, Ordering::AcqRel);
            slot.active.store(1, Ordering::Relaxed);
            if shared {
                slot.set_concurrency(concurrency);
                Self::list_shared(&mut st, key, &slot);
            }
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
            if shared {
                let starting = Arc::new(Starting {
                    max: concurrency,
                    joined: AtomicUsize::new(0),
                    ready: watch::channel(None).0,
                });
                st.starting
                    .entry(key.clone())
                    .or_default()
                    .push(starting.clone());
                return (Ok(Acquired::ColdShared(starting)), evicted);
            }
            return (Ok(Acquired::Cold), evicted);
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(Waiter {
            tx,
            key: shared.then(|| key.clone()),
        });
        (Err(rx), evicted)
    }

    /// One more activation in a shared container of `key` with room, if there is one.
    fn take_shared(st: &mut State, key: &WarmKey) -> Option<Arc<Slot>> {
        let list = st.shared.get_mut(key)?;
        let slot = list.last()?.clone();
        let active = slot.active.load(Ordering::Relaxed) + 1;
        slot.active.store(active, Ordering::Relaxed);
        slot.generation.fetch_add(1, Ordering::AcqRel);
        if active >= slot.max_concurrent.load(Ordering::Relaxed) {
            list.pop();
            if list.is_empty() {
                st.shared.remove(key);
            }
        }
        Some(slot)
    }

    /// Lists a shared container that has room for more activations.
    fn list_shared(st: &mut State, key: &WarmKey, slot: &Arc<Slot>) {
        if slot.active.load(Ordering::Relaxed) < slot.max_concurrent.load(Ordering::Relaxed) {
            st.shared.entry(key.clone()).or_default().push(slot.clone());
        }
    }

    fn unlist_shared(st: &mut State, key: &WarmKey, slot: &Slot) {
        if let Some(list) = st.shared.get_mut(key) {
            list.retain(|s| s.id != slot.id);
            if list.is_empty() {
                st.shared.remove(key);
            }
        }
    }

    fn join_starting(st: &mut State, key: &WarmKey) -> Option<Join> {
        let starting = st
            .starting
            .get(key)?
            .iter()
            .find(|s| s.joined.load(Ordering::Relaxed) + 1 < s.max)?;
        starting.joined.fetch_add(1, Ordering::Relaxed);
        Some(Join(starting.ready.subscribe()))
    }

    /// A container of [`Acquired::ColdShared`] was created (`Some`, already registered with
    /// [`Pool::register`]) or not (`None`; the caller also cancels the reservation). Activations
    /// that joined it run in it, or try again.
    pub fn started(&self, key: &WarmKey, starting: &Arc<Starting>, slot: Option<&Arc<Slot>>) {
        let mut st = self.state.lock();
        if let Some(list) = st.starting.get_mut(key) {
            list.retain(|s| !Arc::ptr_eq(s, starting));
            if list.is_empty() {
                st.starting.remove(key);
            }
        }
        if let Some(slot) = slot {
            slot.set_concurrency(starting.max);
            let joined = starting.joined.load(Ordering::Relaxed);
            slot.active.store(1 + joined, Ordering::Relaxed);
            Self::list_shared(&mut st, key, slot);
        }
        starting.ready.send_replace(Some(slot.cloned()));
    }

    /// An activation leaves a shared container. With `healthy` false the container takes no new
    /// activations. Returns true when the caller must destroy it (it failed and was the last).
    pub fn leave_shared(&self, key: &WarmKey, slot: &Arc<Slot>, healthy: bool) -> bool {
        let mut st = self.state.lock();
        let was = slot.active.load(Ordering::Relaxed);
        let active = was.saturating_sub(1);
        slot.active.store(active, Ordering::Relaxed);
        let max = slot.max_concurrent.load(Ordering::Relaxed);
        if !healthy && !slot.doomed.swap(true, Ordering::AcqRel) && was < max {
            Self::unlist_shared(&mut st, key, slot);
        }
        let doomed = slot.doomed.load(Ordering::Acquire);
        if active == 0 {
            if doomed {
                if st.live.remove(&slot.id).is_some() {
                    st.used_mb -= slot.memory_mb;
                    st.containers -= 1;
                }
                Self::wake_one(&mut st);
                return true;
            }
            if was < max {
                Self::unlist_shared(&mut st, key, slot);
            }
            slot.last_used_ms.store(self.now_ms(), Ordering::Relaxed);
            st.idle.entry(key.clone()).or_default().push(slot.clone());
            st.idle_count += 1;
            Self::wake_one(&mut st);
        } else if !doomed {
            if was >= max {
                st.shared.entry(key.clone()).or_default().push(slot.clone());
            }
            Self::wake_key(&mut st, key);
        }
        false
    }

    /// Reserves memory for a container that leaves the pool's sharing (a lease, see
    /// [`crate::lease`]), evicting idle containers if needed; or a receiver that fires when
    /// memory was freed. Evicted containers are returned for the caller to destroy.
    pub fn reserve(&self, memory_mb: u64) -> (Result<(), oneshot::Receiver<()>>, Vec<Arc<Slot>>) {
        let mut st = self.state.lock();
        let mut evicted = Vec::new();
        if !self.fits(&st, memory_mb) {
            evicted = Self::evict(&mut st, memory_mb, self.user_memory_mb, self.max_containers);
        }
        if self.fits(&st, memory_mb) {
            st.used_mb += memory_mb;
            st.containers += 1;
            st.cold_starts += 1;
            return (Ok(()), evicted);
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(Waiter { tx, key: None });
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
        slot.active.store(1, Ordering::Relaxed);
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
        slot.active.store(0, Ordering::Relaxed);
        let mut st = self.state.lock();
        st.idle.entry(key).or_default().push(slot);
        st.idle_count += 1;
        Self::wake_one(&mut st);
    }

    /// Forgets a container that is being destroyed and frees its memory.
    pub fn discard(&self, slot: &Slot) {
        slot.active.store(0, Ordering::Relaxed);
        let mut st = self.state.lock();
        if st.live.remove(&slot.id).is_some() {
            st.used_mb -= slot.memory_mb;
            st.containers -= 1;
        }
        Self::wake_one(&mut st);
    }

    fn wake_one(st: &mut State) {
        while let Some(w) = st.waiters.pop_front() {
            if w.tx.send(()).is_ok() {
                break;
            }
        }
    }

    /// Wakes the first waiter of `key` (a slot in one of its shared containers came free).
    fn wake_key(st: &mut State, key: &WarmKey) {
        while let Some(pos) = st.waiters.iter().position(|w| w.key.as_ref() == Some(key)) {
            if let Some(w) = st.waiters.remove(pos) {
                if w.tx.send(()).is_ok() {
                    break;
                }
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
        st.shared.clear();
        st.starting.clear();
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
            activations: st
                .live
                .values()
                .map(|s| s.active.load(Ordering::Relaxed))
                .sum(),
            queued: st.waiters.len(),
            cold_starts: st.cold_starts,
            prewarm_starts: st.prewarm_starts,
            warm_starts: st.warm_starts,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pool's bookkeeping alone (no container is ever started: the containers here only
    //! carry an id); the end-to-end tests in crates/cli/tests run it with real ones.

    use std::time::Duration;

    use async_trait::async_trait;
    use whirl_model::Endpoint;
    use whirl_spi::{CollectedLogs, ContainerError};

    use super::*;

    struct Inert(String, Endpoint);

    #[async_trait]
    impl Container for Inert {
        fn id(&self) -> &str {
            &self.0
        }
        fn endpoint(&self) -> &Endpoint {
            &self.1
        }
        async fn suspend(&self) -> Result<(), ContainerError> {
            Ok(())
        }
        async fn resume(&self) -> Result<(), ContainerError> {
            Ok(())
        }
        async fn destroy(&self) -> Result<(), ContainerError> {
            Ok(())
        }
        async fn logs(
            &self,
            _: usize,
            _: bool,
            _: Duration,
        ) -> Result<CollectedLogs, ContainerError> {
            Ok(CollectedLogs::default())
        }
    }

    fn key(action: &str) -> WarmKey {
        WarmKey {
            namespace: "ns".into(),
            action: action.into(),
            version: "0.0.1".into(),
            updated: 1,
        }
    }

    fn slot(pool: &Pool) -> Arc<Slot> {
        let id = pool.next_id();
        let endpoint = Endpoint::Unix(format!("/nonexistent/{id}").into());
        Arc::new(Slot::new(
            id,
            Arc::new(Inert(id.to_string(), endpoint.clone())),
            RuntimeClient::new(endpoint),
            "nodejs:20".into(),
            256,
        ))
    }

    /// Acquires for `k` with concurrency `n` and returns what was found (panics when queued).
    fn take(pool: &Pool, k: &WarmKey, n: usize) -> Acquired {
        match pool.acquire(k, "nodejs:20", 256, n).0 {
            Ok(a) => a,
            Err(_) => panic!("queued"),
        }
    }

    #[tokio::test]
    async fn a_shared_container_takes_up_to_its_concurrency_and_memory_is_charged_once() {
        let pool = Pool::new(512, 10);
        let k = key("a");
        let Acquired::ColdShared(starting) = take(&pool, &k, 3) else {
            panic!("cold")
        };
        // Two more join the container while it starts; a fourth would need a new one.
        let Acquired::Join(j1) = take(&pool, &k, 3) else {
            panic!("join")
        };
        let Acquired::Join(j2) = take(&pool, &k, 3) else {
            panic!("join")
        };
        let s = slot(&pool);
        pool.register(&s);
        pool.started(&k, &starting, Some(&s));
        assert_eq!(j1.wait().await.unwrap().id, s.id);
        assert_eq!(j2.wait().await.unwrap().id, s.id);
        let snap = pool.snapshot();
        assert_eq!(
            (snap.containers, snap.used_memory_mb, snap.activations),
            (1, 256, 3)
        );

        // Full: the next one starts a second container (memory allows exactly one more).
        let Acquired::ColdShared(second) = take(&pool, &k, 3) else {
            panic!("cold")
        };
        let s2 = slot(&pool);
        pool.register(&s2);
        pool.started(&k, &second, Some(&s2));
        assert_eq!(pool.snapshot().used_memory_mb, 512);
        // One leaves the first: its slot serves the next activation at once.
        assert!(!pool.leave_shared(&k, &s, true));
        match take(&pool, &k, 3) {
            Acquired::Warm(w) => assert!(w.id == s.id || w.id == s2.id),
            _ => panic!("warm"),
        }
        // A different action finds no memory: it waits, and is woken when a container idles.
        let other = key("b");
        let (res, _) = pool.acquire(&other, "nodejs:20", 256, 1);
        let mut waiting = res.err().expect("queued");
        assert_eq!(pool.snapshot().queued, 1);
        for _ in 0..s2.active.load(Ordering::Relaxed) {
            pool.leave_shared(&k, &s2, true);
        }
        assert!(
            waiting.try_recv().is_ok(),
            "an idle container can now be evicted"
        );
        let snap = pool.snapshot();
        assert_eq!(snap.idle, 1);
        let (res, evicted) = pool.acquire(&other, "nodejs:20", 256, 1);
        assert!(matches!(res, Ok(Acquired::Cold)));
        assert_eq!(evicted.len(), 1, "the idle shared container made room");
    }

    #[tokio::test]
    async fn a_failed_shared_container_takes_no_one_and_the_last_out_destroys_it() {
        let pool = Pool::new(256, 10);
        let k = key("a");
        let Acquired::ColdShared(starting) = take(&pool, &k, 4) else {
            panic!("cold")
        };
        let s = slot(&pool);
        pool.register(&s);
        pool.started(&k, &starting, Some(&s));
        assert!(matches!(take(&pool, &k, 4), Acquired::Warm(_)));
        assert!(matches!(take(&pool, &k, 4), Acquired::Warm(_)));
        // One fails: the container is doomed but the other two keep running in it.
        assert!(!pool.leave_shared(&k, &s, false));
        let (res, _) = pool.acquire(&k, "nodejs:20", 256, 4);
        let mut waiting = res
            .err()
            .expect("no room: the doomed container takes no one");
        assert!(!pool.leave_shared(&k, &s, true));
        assert!(waiting.try_recv().is_err());
        assert!(
            pool.leave_shared(&k, &s, true),
            "the last one out destroys it"
        );
        assert!(waiting.try_recv().is_ok());
        let snap = pool.snapshot();
        assert_eq!(
            (snap.containers, snap.used_memory_mb, snap.activations),
            (0, 0, 0)
        );
    }

    #[tokio::test]
    async fn a_freed_slot_wakes_a_waiter_of_the_same_action_and_failed_starts_release_joiners() {
        let pool = Pool::new(256, 10);
        let k = key("a");
        let Acquired::ColdShared(starting) = take(&pool, &k, 2) else {
            panic!("cold")
        };
        let Acquired::Join(joined) = take(&pool, &k, 2) else {
            panic!("join")
        };
        // Creation fails: the joiner is told to look again.
        pool.cancel_reservation(256);
        pool.started(&k, &starting, None);
        assert!(joined.wait().await.is_none());

        let Acquired::ColdShared(starting) = take(&pool, &k, 2) else {
            panic!("cold")
        };
        let s = slot(&pool);
        pool.register(&s);
        pool.started(&k, &starting, Some(&s));
        assert!(matches!(take(&pool, &k, 2), Acquired::Warm(_)));
        let (res, _) = pool.acquire(&k, "nodejs:20", 256, 2);
        let mut waiting = res.err().expect("full, and no memory for another");
        assert!(!pool.leave_shared(&k, &s, true));
        assert!(waiting.try_recv().is_ok(), "woken for the freed slot");
        assert!(matches!(take(&pool, &k, 2), Acquired::Warm(_)));
    }

    #[tokio::test]
    async fn concurrency_one_keeps_the_exclusive_path() {
        let pool = Pool::new(256, 10);
        let k = key("a");
        assert!(matches!(take(&pool, &k, 1), Acquired::Cold));
        let s = slot(&pool);
        pool.register(&s);
        assert!(!s.is_shared());
        let (res, _) = pool.acquire(&k, "nodejs:20", 256, 1);
        assert!(res.is_err(), "one activation per container");
        pool.release(k.clone(), s.clone());
        match take(&pool, &k, 1) {
            Acquired::Warm(w) => assert_eq!(w.id, s.id),
            _ => panic!("warm"),
        }
    }
}
