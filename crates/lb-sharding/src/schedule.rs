//! The scheduling decision, as OpenWhisk's ShardingContainerPoolBalancer makes it: pure
//! functions and lock-free capacity counters, no I/O (openwhisk.md §3.1–3.2).
//!
//! - The home invoker of an action is `hash(namespace, action) % n`, where the hash is
//!   `|javaHash(namespace) ^ javaHash(action path)|` (Java's `String.hashCode`, so a mixed
//!   deployment of OpenWhisk and Whirl controllers would agree on homes).
//! - From home, the search steps by a step size chosen by the same hash among the numbers up to
//!   `n` that are coprime to `n` and to each other, so every invoker is visited once and actions
//!   with the same home spread differently when it is full.
//! - An invoker is taken if it is healthy and has room: memory slots (MB), and for actions with
//!   `limits.concurrency > 1` a free concurrency slot in one of the action's logical containers.
//! - If none has room, a random healthy invoker is forced (its slots may go below zero: the
//!   invoker queues); if none is healthy, there is no decision (HTTP 503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use parking_lot::Mutex;
use rand::Rng;

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The hash that picks an action's home invoker and step size. (OpenWhisk takes `Math.abs`,
/// which leaves `i32::MIN` negative; `unsigned_abs` has no such corner.)
pub fn home_hash(namespace: &str, action_path: &str) -> u32 {
    (java_string_hash(namespace) ^ java_string_hash(action_path)).unsigned_abs()
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The numbers in `1..=n` coprime to `n` and to every smaller number kept (n = 10 → 1, 3, 7).
pub fn pairwise_coprimes_until(n: usize) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for x in 1..=n {
        if gcd(x, n) == 1 && kept.iter().all(|&k| gcd(x, k) == 1) {
            kept.push(x);
        }
    }
    if kept.is_empty() {
        kept.push(1);
    }
    kept
}

/// Health as the scheduler reads it (one byte, so a decision takes no lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Usable {
    No = 0,
    Yes = 1,
}

/// A memory semaphore in MB that may be forced below zero (OpenWhisk's ForcibleSemaphore).
/// Capacity changes (the number of controllers sharing the invoker changed) keep what is in use.
#[derive(Debug, Default)]
pub struct MemorySlots {
    used: AtomicI64,
    capacity: AtomicI64,
}

impl MemorySlots {
    pub fn new(capacity_mb: u64) -> Self {
        Self {
            used: AtomicI64::new(0),
            capacity: AtomicI64::new(capacity_mb as i64),
        }
    }

    pub fn set_capacity(&self, capacity_mb: u64) {
        self.capacity.store(capacity_mb as i64, Ordering::Release);
    }

    pub fn capacity(&self) -> i64 {
        self.capacity.load(Ordering::Acquire)
    }

    pub fn used(&self) -> i64 {
        self.used.load(Ordering::Acquire)
    }

    pub fn try_acquire(&self, mb: u64) -> bool {
        let mb = mb as i64;
        let cap = self.capacity.load(Ordering::Acquire);
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            if used + mb > cap {
                return false;
            }
            match self.used.compare_exchange_weak(
                used,
                used + mb,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    pub fn force_acquire(&self, mb: u64) {
        self.used.fetch_add(mb as i64, Ordering::AcqRel);
    }

    pub fn release(&self, mb: u64) {
        self.used.fetch_sub(mb as i64, Ordering::AcqRel);
    }

    /// Forgets everything in use (the invoker restarted: nothing of the old one runs).
    pub fn reset(&self) {
        self.used.store(0, Ordering::Release);
    }
}

/// One invoker's capacity as one controller sees it: memory, and concurrency slots per action
/// (OpenWhisk's NestedSemaphore, kept as "activations in flight per action": the action holds
/// `ceil(in_flight / max_concurrent)` containers' worth of memory).
#[derive(Debug, Default)]
pub struct InvokerSlots {
    pub memory: MemorySlots,
    concurrent: Mutex<HashMap<String, u64>>,
}

fn containers(in_flight: u64, max_concurrent: u64) -> u64 {
    in_flight.div_ceil(max_concurrent.max(1))
}

impl InvokerSlots {
    pub fn new(capacity_mb: u64) -> Self {
        Self {
            memory: MemorySlots::new(capacity_mb),
            concurrent: Mutex::new(HashMap::new()),
        }
    }

    fn acquire(&self, action: &str, max_concurrent: u64, mb: u64, force: bool) -> bool {
        if max_concurrent <= 1 {
            if force {
                self.memory.force_acquire(mb);
                return true;
            }
            return self.memory.try_acquire(mb);
        }
        let mut m = self.concurrent.lock();
        let in_flight = m.get(action).copied().unwrap_or(0);
        if containers(in_flight + 1, max_concurrent) > containers(in_flight, max_concurrent) {
            if force {
                self.memory.force_acquire(mb);
            } else if !self.memory.try_acquire(mb) {
                return false;
            }
        }
        m.insert(action.to_string(), in_flight + 1);
        true
    }

    pub fn try_acquire(&self, action: &str, max_concurrent: u64, mb: u64) -> bool {
        self.acquire(action, max_concurrent, mb, false)
    }

    pub fn force_acquire(&self, action: &str, max_concurrent: u64, mb: u64) {
        self.acquire(action, max_concurrent, mb, true);
    }

    pub fn release(&self, action: &str, max_concurrent: u64, mb: u64) {
        if max_concurrent <= 1 {
            self.memory.release(mb);
            return;
        }
        let mut m = self.concurrent.lock();
        let Some(in_flight) = m.get(action).copied() else {
            return;
        };
        if containers(in_flight - 1, max_concurrent) < containers(in_flight, max_concurrent) {
            self.memory.release(mb);
        }
        if in_flight <= 1 {
            m.remove(action);
        } else {
            m.insert(action.to_string(), in_flight - 1);
        }
    }

    /// Forgets everything in use (the invoker restarted).
    pub fn reset(&self) {
        self.memory.reset();
        self.concurrent.lock().clear();
    }
}

/// One invoker as the scheduler sees it.
#[derive(Debug)]
pub struct Candidate {
    pub index: u32,
    usable: AtomicU8,
    pub slots: InvokerSlots,
}

impl Candidate {
    pub fn new(index: u32, capacity_mb: u64) -> Self {
        Self {
            index,
            usable: AtomicU8::new(Usable::No as u8),
            slots: InvokerSlots::new(capacity_mb),
        }
    }

    pub fn usable(&self) -> bool {
        self.usable.load(Ordering::Acquire) == Usable::Yes as u8
    }

    pub fn set_usable(&self, u: bool) {
        let v = if u { Usable::Yes } else { Usable::No };
        self.usable.store(v as u8, Ordering::Release);
    }
}

/// What [`schedule`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Position in the candidate list.
    pub position: usize,
    /// No invoker had room: a random healthy one was forced.
    pub forced: bool,
}

/// Picks an invoker among `invokers` (the managed or the blackbox set) for an action whose hash
/// is `hash`, acquiring its slots. `steps` are the set's pairwise coprime step sizes.
pub fn schedule(
    invokers: &[impl AsRef<Candidate>],
    steps: &[usize],
    hash: u32,
    action: &str,
    max_concurrent: u64,
    memory_mb: u64,
) -> Option<Decision> {
    let n = invokers.len();
    if n == 0 {
        return None;
    }
    let home = hash as usize % n;
    let step = steps[hash as usize % steps.len().max(1)] % n.max(1);
    let step = if step == 0 { 1 } else { step };
    let mut i = home;
    for _ in 0..n {
        let c = invokers[i].as_ref();
        if c.usable() && c.slots.try_acquire(action, max_concurrent, memory_mb) {
            return Some(Decision {
                position: i,
                forced: false,
            });
        }
        i = (i + step) % n;
    }
    let usable = invokers.iter().filter(|c| c.as_ref().usable()).count();
    if usable == 0 {
        return None;
    }
    let pick = rand::thread_rng().gen_range(0..usable);
    let (position, c) = invokers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.as_ref().usable())
        .nth(pick)?;
    c.as_ref()
        .slots
        .force_acquire(action, max_concurrent, memory_mb);
    Some(Decision {
        position,
        forced: true,
    })
}

/// The managed and blackbox sets of `n` invokers (by position): managed are the first
/// `max(1, ceil(n * managed))`, blackbox the last `max(1, floor(n * blackbox))`; they may overlap.
pub fn partition(
    n: usize,
    managed_fraction: f64,
    blackbox_fraction: f64,
) -> (Vec<usize>, Vec<usize>) {
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let blackbox_fraction = blackbox_fraction.max(1.0 - managed_fraction);
    let managed = ((n as f64 * managed_fraction).ceil() as usize).clamp(1, n);
    let blackbox = ((n as f64 * blackbox_fraction).floor() as usize).clamp(1, n);
    ((0..managed).collect(), (n - blackbox..n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn java_hash_matches_java() {
        // Values of "".hashCode(), "a".hashCode(), "guest".hashCode(), "hello".hashCode() in Java.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("guest"), 98_708_952);
        // Overflow wraps like Java's int arithmetic.
        assert_eq!(
            java_string_hash("polygenelubricants"),
            i32::MIN,
            "a string whose Java hashCode is Integer.MIN_VALUE"
        );
        assert_eq!(home_hash("x", "x"), 0);
    }

    #[test]
    fn coprimes_as_openwhisk() {
        assert_eq!(pairwise_coprimes_until(10), vec![1, 3, 7]);
        assert_eq!(pairwise_coprimes_until(1), vec![1]);
        assert_eq!(pairwise_coprimes_until(3), vec![1, 2]);
        assert_eq!(pairwise_coprimes_until(12), vec![1, 5, 7, 11]);
    }

    #[test]
    fn partition_as_openwhisk() {
        assert_eq!(partition(10, 0.9, 0.1), ((0..9).collect(), vec![9]));
        assert_eq!(partition(1, 0.9, 0.1), (vec![0], vec![0]));
        assert_eq!(partition(3, 0.9, 0.1), ((0..3).collect(), vec![2]));
    }

    fn invokers(n: u32, mb: u64) -> Vec<Arc<Candidate>> {
        (0..n)
            .map(|i| {
                let c = Arc::new(Candidate::new(i, mb));
                c.set_usable(true);
                c
            })
            .collect()
    }

    #[test]
    fn home_first_then_steps_then_forced() {
        let inv = invokers(3, 512);
        let steps = pairwise_coprimes_until(3);
        let hash = 7u32; // home 7 % 3 = 1, step steps[7 % 2] = 2
        let d = schedule(&inv, &steps, hash, "a", 1, 256).unwrap();
        assert_eq!(
            d,
            Decision {
                position: 1,
                forced: false
            }
        );
        schedule(&inv, &steps, hash, "a", 1, 256).unwrap();
        // Home is full (2 × 256 MB): the next is (1 + 2) % 3 = 0.
        let d = schedule(&inv, &steps, hash, "a", 1, 256).unwrap();
        assert_eq!(
            d,
            Decision {
                position: 0,
                forced: false
            }
        );
        for _ in 0..3 {
            schedule(&inv, &steps, hash, "a", 1, 256).unwrap();
        }
        let d = schedule(&inv, &steps, hash, "a", 1, 256).unwrap();
        assert!(d.forced, "every invoker is full: a forced pick");
        assert!(inv[d.position].slots.memory.used() > 512);
        for c in &inv {
            c.set_usable(false);
        }
        assert_eq!(schedule(&inv, &steps, hash, "a", 1, 256), None);
    }

    #[test]
    fn unhealthy_home_is_skipped() {
        let inv = invokers(3, 512);
        inv[1].set_usable(false);
        let steps = pairwise_coprimes_until(3);
        let d = schedule(&inv, &steps, 7, "a", 1, 256).unwrap();
        assert_eq!(d.position, 0);
    }

    #[test]
    fn concurrency_slots_share_a_container() {
        let s = InvokerSlots::new(256);
        // Concurrency 3: three activations fit in one 256 MB container, the fourth needs another.
        assert!(s.try_acquire("a", 3, 256));
        assert!(s.try_acquire("a", 3, 256));
        assert!(s.try_acquire("a", 3, 256));
        assert_eq!(s.memory.used(), 256);
        assert!(
            !s.try_acquire("a", 3, 256),
            "a second container does not fit"
        );
        s.release("a", 3, 256);
        assert_eq!(s.memory.used(), 256, "the container still runs two");
        s.release("a", 3, 256);
        s.release("a", 3, 256);
        assert_eq!(s.memory.used(), 0, "all released");
        assert!(s.concurrent.lock().is_empty());
    }
}
