//! The sharding balancer's scheduling decision with 100 invokers (a microbenchmark, no I/O): the
//! home-invoker hash, the step search over invokers that are full, and the forced pick when all
//! are, each timed per decision (acquire + release of the slots) beside a floor measured in the
//! same run (hashing the same names alone). Target: p50 ≤ 1 µs (../shared/reference/performance.md).
//!
//! `scripts/bench --schedule`, or `target/release/whirl-bench-schedule [decisions]`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use whirl_lb_sharding::schedule::{home_hash, pairwise_coprimes_until, schedule, Candidate};

const INVOKERS: usize = 100;
const BATCH: usize = 64;

/// Per-decision latency (ns) of `batches` batches of `BATCH` calls of `f`: (p50, p99).
fn measure(batches: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let mut per = Vec::with_capacity(batches);
    for b in 0..batches {
        let t = Instant::now();
        for i in 0..BATCH {
            f(b * BATCH + i);
        }
        per.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    per.sort_by(f64::total_cmp);
    (per[per.len() / 2], per[per.len() * 99 / 100])
}

fn main() {
    let decisions: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let batches = (decisions / BATCH).max(100);
    let names: Vec<(String, String)> = (0..1024)
        .map(|i| {
            (
                format!("ns{}", i % 37),
                format!("ns{}/pkg/action-{i}", i % 37),
            )
        })
        .collect();
    let steps = pairwise_coprimes_until(INVOKERS);
    let invokers: Vec<Arc<Candidate>> = (0..INVOKERS)
        .map(|i| {
            let c = Arc::new(Candidate::new(i as u32, 32 * 1024));
            c.set_usable(true);
            c
        })
        .collect();
    println!(
        "whirl-bench-schedule: sharding decision over {INVOKERS} invokers, {} decisions per series (target p50 ≤ 1 µs)",
        batches * BATCH
    );
    let row = |label: &str, (p50, p99): (f64, f64), floor: f64| {
        println!(
            "  {label:<58} p50 {p50:>7.0} ns  p99 {p99:>7.0} ns   (floor p50 {floor:.0} ns, ratio {:.1}x)",
            p50 / floor
        );
    };

    let floor = measure(batches, |i| {
        let (ns, path) = &names[i % names.len()];
        black_box(home_hash(black_box(ns), black_box(path)));
    });
    println!(
        "  {:<58} p50 {:>7.0} ns  p99 {:>7.0} ns",
        "floor: the home hash of the same names alone", floor.0, floor.1
    );

    let decide = |i: usize, concurrency: u64| {
        let (ns, path) = &names[i % names.len()];
        let hash = home_hash(ns, path);
        let d = schedule(&invokers, &steps, hash, path, concurrency, 256).expect("a decision");
        invokers[d.position].slots.release(path, concurrency, 256);
        black_box(d);
    };
    row(
        "home invoker has room (hash + acquire + release)",
        measure(batches, |i| decide(i, 1)),
        floor.0,
    );
    row(
        "home invoker has room, limits.concurrency = 50",
        measure(batches, |i| decide(i, 50)),
        floor.0,
    );

    // 90 of the 100 invokers full: the search steps past them.
    for c in invokers.iter().take(90) {
        c.slots.force_acquire("filler", 1, 32 * 1024);
    }
    row(
        "90 of 100 invokers full (step search)",
        measure(batches, |i| decide(i, 1)),
        floor.0,
    );

    // All full: a random usable invoker is forced.
    for c in invokers.iter().skip(90) {
        c.slots.force_acquire("filler", 1, 32 * 1024);
    }
    row(
        "all 100 full (search all, then force a random one)",
        measure(batches / 4, |i| decide(i, 1)),
        floor.0,
    );
}
