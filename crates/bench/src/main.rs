//! `whirl-bench`: measures a real Whirl (the release `whirl` binary next to this one) and prints
//! each figure beside its floor measured in the same run:
//!
//! - warm blocking invoke latency of a no-op action per kind (p50/p99/p99.9), beside the same
//!   request sent straight to a warm runtime's /run (our runtime, started bare on a Unix socket);
//! - throughput (invokes/s, closed loop) at 1, 8 and 64 concurrent clients per load balancer and
//!   kind, beside the same number of clients sending /run straight to as many bare runtimes;
//! - cold start per container factory and kind (without and with a prewarmed stem cell), beside
//!   a bare sandboxed process spawn (namespaces + fork + exec of /bin/true);
//! - resident memory of the platform's processes idle, under the 64-client load, and the
//!   platform's bookkeeping per warm container.
//!
//! The setups (load balancers, factories) are listed in [`platform::setups`]; adding one there
//! adds its rows. `--json FILE` also writes every figure as JSON, for comparison across commits.
//! The sharding balancer's scheduling-decision microbenchmark (100 invokers, no I/O) belongs in
//! the balancer crate's own `cargo bench`, next to the code it measures.
//!
//! Run: `scripts/bench` (builds both binaries in release mode first). Targets come from
//! ../shared/reference/performance.md; these machines are noisy, so compare figures within one
//! run, never across runs.

mod client;
mod platform;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use serde_json::{json, Value};

use client::{invoke, put_action, Conn};
use platform::{rss_bytes, sandboxed_spawn, setups, Platform};

#[derive(Parser)]
#[command(about = "Benchmark a real Whirl platform: latency, throughput, cold starts, memory")]
struct Args {
    /// Warm invokes measured per kind (after warm-up).
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Cold starts measured per kind.
    #[arg(long, default_value_t = 20)]
    cold: usize,
    /// Concurrent clients of the throughput runs.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    clients: Vec<usize>,
    /// Length of each throughput run, in ms (after a warm-up of a third of it).
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Path of the whirl binary (default: next to this one).
    #[arg(long)]
    whirl: Option<PathBuf>,
    /// Also write every figure to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Measure only these load balancers (default: every one in this build).
    #[arg(long, value_delimiter = ',')]
    balancer: Vec<String>,
}

struct Kind {
    kind: &'static str,
    code: String,
    launcher: &'static str,
    command: Option<&'static str>,
    /// Whether one container can run several of its activations at once.
    concurrent: bool,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            kind: "python:3",
            code: "def main(args):\n    return {}\n".into(),
            launcher: "python",
            command: Some("/usr/bin/python3"),
            concurrent: false,
        },
        Kind {
            kind: "nodejs:20",
            code: "function main(params) { return {}; }\n".into(),
            launcher: "node",
            command: Some("/usr/bin/node"),
            concurrent: true,
        },
    ]
}

fn native() -> Kind {
    Kind {
        kind: "native",
        code: "#!/bin/sh\nwhile read l; do echo '{}' >&3; done\n".into(),
        launcher: "native",
        command: None,
        concurrent: true,
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    p999: f64,
    n: usize,
}

impl Stats {
    fn json(&self) -> Value {
        json!({"p50_us": self.p50, "p99_us": self.p99, "p999_us": self.p999, "n": self.n})
    }
}

fn stats(mut us: Vec<f64>) -> Stats {
    if us.is_empty() {
        return Stats {
            p50: f64::NAN,
            p99: f64::NAN,
            p999: f64::NAN,
            n: 0,
        };
    }
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| us[((us.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
        n: us.len(),
    }
}

fn fmt_us(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

fn fmt_mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / (1 << 20) as f64)
}

fn row(label: &str, s: &Stats) {
    println!(
        "  {label:<48} p50 {:>9}  p99 {:>9}  p99.9 {:>9}  (n={})",
        fmt_us(s.p50),
        fmt_us(s.p99),
        fmt_us(s.p999),
        s.n
    );
}

async fn warm_series(c: &mut Conn, name: &str, n: usize) -> anyhow::Result<Stats> {
    let path = format!("/api/v1/namespaces/_/actions/{name}?blocking=true&result=true");
    for _ in 0..200 {
        c.send("POST", &path, Bytes::from_static(b"{}"), true)
            .await?;
    }
    let mut us = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (st, _) = c
            .send("POST", &path, Bytes::from_static(b"{}"), true)
            .await?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
        if st != 200 {
            bail!("warm invoke failed: {st}");
        }
    }
    Ok(stats(us))
}

/// Our runtime started bare (no sandbox) on a Unix socket, initialized with the kind's no-op.
struct BareRuntime {
    child: Child,
    /// Taken out while a closed loop drives it.
    conn: Option<Conn>,
    _dir: tempfile::TempDir,
}

impl Drop for BareRuntime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_body() -> Bytes {
    Bytes::from(
        json!({"value": {}, "namespace": "guest", "action_name": "/guest/noop", "action_version": "0.0.1",
               "activation_id": "0123456789abcdef0123456789abcdef", "transaction_id": "bench",
               "deadline": "99999999999999", "api_key": "x:y"})
        .to_string(),
    )
}

async fn bare_runtime(whirl: &Path, k: &Kind) -> anyhow::Result<BareRuntime> {
    let dir = tempfile::tempdir()?;
    let sock = dir.path().join("rt.sock");
    let mut cmd = Command::new(whirl);
    cmd.args(["runtime", "--listen"])
        .arg(format!("unix:{}", sock.display()))
        .args(["--launcher", k.launcher]);
    if let Some(c) = k.command {
        cmd.args(["--command", c]);
    }
    cmd.arg("--work-dir")
        .arg(dir.path().join("work"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        if let Ok(c) = Conn::unix(&sock).await {
            break c;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("runtime did not start");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let init = json!({"value": {"name": "noop", "main": "main", "code": k.code, "binary": false, "env": {}}});
    let (st, b) = conn
        .send("POST", "/init", init.to_string().into(), false)
        .await?;
    if st != 200 {
        bail!("floor /init: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(BareRuntime {
        child,
        conn: Some(conn),
        _dir: dir,
    })
}

/// The floor: the same /run the invoker sends, straight to a warm runtime, one keep-alive
/// connection.
async fn floor_series(whirl: &Path, k: &Kind, n: usize) -> anyhow::Result<Stats> {
    let mut rt = bare_runtime(whirl, k).await?;
    let conn = rt.conn.as_mut().expect("connected");
    let run = run_body();
    for _ in 0..200 {
        conn.send("POST", "/run", run.clone(), false).await?;
    }
    let mut us = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (st, _) = conn.send("POST", "/run", run.clone(), false).await?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
        if st != 200 {
            bail!("floor /run failed: {st}");
        }
    }
    Ok(stats(us))
}

/// `clients` closed loops, each on its own connection, sending `path` for `dur`. Returns
/// (requests per second, latency).
async fn closed_loop(
    conns: Vec<Conn>,
    path: Rc<str>,
    auth: bool,
    dur: Duration,
) -> anyhow::Result<(f64, Stats, Vec<Conn>)> {
    let start = Instant::now();
    let stop = start + dur;
    let mut set = tokio::task::JoinSet::new();
    for mut c in conns {
        let path = path.to_string();
        let body = if auth {
            Bytes::from_static(b"{}")
        } else {
            run_body()
        };
        set.spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < stop {
                let t = Instant::now();
                let (st, b) = c.send("POST", &path, body.clone(), auth).await?;
                if st != 200 {
                    bail!("{path}: {st} {}", String::from_utf8_lossy(&b));
                }
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            Ok::<_, anyhow::Error>((c, lat))
        });
    }
    let mut all = Vec::new();
    let mut back = Vec::new();
    while let Some(r) = set.join_next().await {
        let (c, lat) = r??;
        all.extend(lat);
        back.push(c);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rate, stats(all), back))
}

/// Containers taken so far by activations of `kind`: created for them (cold) plus stem cells
/// (prewarm) taken, from the platform's `/metrics`.
async fn containers_taken(c: &mut Conn, kind: &str) -> anyhow::Result<u64> {
    let (st, body) = c.send("GET", "/metrics", Bytes::new(), false).await?;
    if st != 200 {
        bail!("/metrics: {st}");
    }
    let text = String::from_utf8_lossy(&body);
    let value = |line: &str| {
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut n = 0.0;
    for line in text.lines() {
        let cold = line.starts_with("whirl_invoker_container_create_seconds_count{")
            && line.contains(&format!("kind=\"{kind}\""))
            && line.contains("purpose=\"cold\"");
        let prewarm = line.starts_with("whirl_invoker_container_starts_total{")
            && line.contains("start=\"prewarm\"");
        if cold || prewarm {
            n += value(line);
        }
    }
    Ok(n as u64)
}

fn annotation(v: &Value, key: &str) -> Option<u64> {
    v["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]
        .as_u64()
}

/// First invokes of fresh actions: end-to-end latency and the /init time the record shows.
async fn cold_series(
    c: &mut Conn,
    k: &Kind,
    memory: u64,
    n: usize,
    settle: Duration,
    tag: &str,
) -> anyhow::Result<(Stats, Stats)> {
    let mut e2e = Vec::with_capacity(n);
    let mut init = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{tag}-{}-{i}", k.launcher);
        put_action(c, &name, k.kind, &k.code, json!({ "memory": memory })).await?;
        tokio::time::sleep(settle).await;
        let t = Instant::now();
        let act = invoke(c, &name).await?;
        e2e.push(t.elapsed().as_secs_f64() * 1e6);
        init.push(annotation(&act, "initTime").unwrap_or(0) as f64 * 1000.0);
    }
    Ok((stats(e2e), stats(init)))
}

/// The cold-start floor of a factory: for `process`, a bare sandboxed spawn.
fn cold_floor(factory: &str, n: usize) -> Option<(&'static str, Stats)> {
    match factory {
        "process" => {
            let mut us = Vec::with_capacity(n);
            for _ in 0..n {
                us.push(sandboxed_spawn()?.as_secs_f64() * 1e6);
            }
            Some((
                "floor: bare sandboxed spawn (pid/mnt/uts/ipc ns + exec)",
                stats(us),
            ))
        }
        _ => None,
    }
}

/// Samples the processes' resident memory until told to stop; returns the largest total.
fn sample_rss(
    pids: Vec<u32>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<u64>,
) {
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let h = tokio::spawn(async move {
        let mut max = 0;
        loop {
            let now: u64 = pids.iter().filter_map(|p| rss_bytes(*p)).sum();
            max = max.max(now);
            tokio::select! {
                _ = &mut rx => return max,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
    (tx, h)
}

fn platform_rss(p: &Platform) -> u64 {
    p.processes
        .iter()
        .filter_map(|(_, pid)| rss_bytes(*pid))
        .sum()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let whirl = match args.whirl.clone() {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("whirl"),
    };
    anyhow::ensure!(
        whirl.exists(),
        "{} not found: build it with `cargo build --release -p whirl`",
        whirl.display()
    );
    // One thread: the load generator should not fight the platform for the second core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&args, whirl))?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

async fn run(args: &Args, whirl: PathBuf) -> anyhow::Result<Value> {
    println!(
        "whirl-bench: {} ({} cores shared by platform, containers and load generator)",
        whirl.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut report = json!({
        "whirl": whirl.display().to_string(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "warm": [], "throughput": [], "cold": [], "memory": [],
    });
    let mut floors = Vec::new();
    for k in kinds() {
        floors.push(floor_series(&whirl, &k, args.iterations).await?);
    }
    let mut factories_done: Vec<&str> = Vec::new();
    for setup in setups() {
        if !args.balancer.is_empty() && !args.balancer.iter().any(|b| b == setup.balancer) {
            continue;
        }
        let p = setup.start(&whirl).await?;
        // Let the stem cells start before anything is measured.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let idle_rss = platform_rss(&p);
        let mut c = Conn::tcp(&p.addr).await?;

        println!(
            "\n[{} balancer, {} factory] Warm blocking invoke of a no-op action, one client, keep-alive (target: added p50 ≤ 300 µs, p99 ≤ 1 ms)",
            setup.balancer, setup.factory
        );
        for (k, floor) in kinds().iter().zip(&floors) {
            let name = format!("noop-{}", k.launcher);
            let concurrency = if k.concurrent { setup.concurrency } else { 1 };
            put_action(
                &mut c,
                &name,
                k.kind,
                &k.code,
                json!({"memory": 256, "concurrency": concurrency}),
            )
            .await?;
            invoke(&mut c, &name).await?;
            let warm = warm_series(&mut c, &name, args.iterations).await?;
            let quiet = format!("quiet-{}", k.launcher);
            put_action(
                &mut c,
                &quiet,
                k.kind,
                &k.code,
                json!({"memory": 256, "logs": 0, "concurrency": concurrency}),
            )
            .await?;
            invoke(&mut c, &quiet).await?;
            let no_logs = warm_series(&mut c, &quiet, args.iterations).await?;
            println!(" {}", k.kind);
            row("through whirl (POST ...?blocking=true&result=true)", &warm);
            row("through whirl, log collection off (logs: 0)", &no_logs);
            row("floor: same /run straight to a warm runtime", floor);
            println!(
                "  {:<48} p50 {:>9}  p99 {:>9}   ratio p50 {:.2}x",
                "added by the platform",
                fmt_us(warm.p50 - floor.p50),
                fmt_us(warm.p99 - floor.p99),
                warm.p50 / floor.p50
            );
            report["warm"].as_array_mut().unwrap().push(json!({
                "balancer": setup.balancer, "factory": setup.factory, "kind": k.kind,
                "whirl": warm.json(), "whirl_no_logs": no_logs.json(), "floor": floor.json(),
                "added_p50_us": warm.p50 - floor.p50, "added_p99_us": warm.p99 - floor.p99,
                "ratio_p50": warm.p50 / floor.p50,
            }));
        }

        // Cold starts, once per factory, before the throughput runs leave a full pool behind.
        if !factories_done.contains(&setup.factory) {
            factories_done.push(setup.factory);
            cold_section(&mut c, &setup, args, &mut report).await?;
        }

        let dur = Duration::from_millis(args.duration_ms);
        println!(
            "\n[{} balancer] Throughput, no-op action, closed loop, one keep-alive connection per client (target: ≥ 10,000/s through the direct balancer)",
            setup.balancer
        );
        let most = args.clients.iter().copied().max().unwrap_or(1);
        let mut load_rss = 0;
        for k in kinds() {
            println!(" {}", k.kind);
            let mut runtimes = Vec::new();
            for _ in 0..most {
                runtimes.push(bare_runtime(&whirl, &k).await?);
            }
            for &n in &args.clients {
                // A fresh action per row, so the containers it takes are this load's.
                let fresh = format!("tp-{}-{n}", k.launcher);
                let concurrency = if k.concurrent { setup.concurrency } else { 1 };
                put_action(
                    &mut c,
                    &fresh,
                    k.kind,
                    &k.code,
                    json!({"memory": 256, "concurrency": concurrency}),
                )
                .await?;
                let name: Rc<str> =
                    format!("/api/v1/namespaces/_/actions/{fresh}?blocking=true&result=true")
                        .into();
                let taken_before = containers_taken(&mut c, k.kind).await?;
                let mut conns = Vec::new();
                for _ in 0..n {
                    conns.push(Conn::tcp(&p.addr).await?);
                }
                // Warm-up: the pool grows to the concurrency.
                let (_, _, conns) = closed_loop(conns, name.clone(), true, dur / 3).await?;
                let (stop, sampler) = sample_rss(p.processes.iter().map(|(_, pid)| *pid).collect());
                let (rate, lat, _) = closed_loop(conns, name.clone(), true, dur).await?;
                let containers = containers_taken(&mut c, k.kind).await? - taken_before;
                let _ = stop.send(());
                let peak = sampler.await?;
                if n == most {
                    load_rss = load_rss.max(peak);
                }
                // The floor: as many clients, each straight to its own warm runtime.
                let conns: Vec<Conn> = runtimes
                    .iter_mut()
                    .take(n)
                    .filter_map(|r| r.conn.take())
                    .collect();
                let (_, _, conns) = closed_loop(conns, "/run".into(), false, dur / 3).await?;
                let (floor_rate, floor_lat, conns) =
                    closed_loop(conns, "/run".into(), false, dur).await?;
                for (r, c) in runtimes.iter_mut().zip(conns) {
                    r.conn = Some(c);
                }
                println!(
                    "  {n:>3} clients: {:>8.0} invokes/s (p50 {:>9}, p99 {:>9}, {containers:>3} containers)   floor {:>8.0} /run/s (p50 {:>9})   ratio {:.2}",
                    rate,
                    fmt_us(lat.p50),
                    fmt_us(lat.p99),
                    floor_rate,
                    fmt_us(floor_lat.p50),
                    rate / floor_rate
                );
                report["throughput"].as_array_mut().unwrap().push(json!({
                    "balancer": setup.balancer, "kind": k.kind, "clients": n,
                    "invokes_per_s": rate, "latency": lat.json(), "containers": containers,
                    "concurrency": if k.concurrent { setup.concurrency } else { 1 },
                    "floor_runs_per_s": floor_rate, "floor_latency": floor_lat.json(),
                    "ratio": rate / floor_rate,
                }));
            }
        }

        // Bookkeeping per warm container: resident memory added by 50 more warm containers.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let before = platform_rss(&p);
        let n_warm = 50;
        let nat = native();
        for i in 0..n_warm {
            let name = format!("bk-{i}");
            put_action(&mut c, &name, nat.kind, &nat.code, json!({"memory": 128})).await?;
            invoke(&mut c, &name).await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = platform_rss(&p);
        let per = after.saturating_sub(before) / n_warm;
        println!(
            "\n[{} balancer] Resident memory of the platform's processes (targets: controller ≤ 30 MB idle, ≤ 100 MB at 10k invokes/s; ≤ 64 KB bookkeeping per warm container)",
            setup.balancer
        );
        for (role, pid) in &p.processes {
            println!("  {role} (pid {pid})");
        }
        println!(
            "  {:<48} {}",
            "idle (after start, stem cells up)",
            fmt_mb(idle_rss)
        );
        println!(
            "  {:<48} {}",
            format!("peak under the {most}-client load"),
            fmt_mb(load_rss)
        );
        println!(
            "  {:<48} {:.1} KB (RSS {} → {} over {n_warm} containers)",
            "per warm container (action, container, client)",
            per as f64 / 1024.0,
            fmt_mb(before),
            fmt_mb(after)
        );
        report["memory"].as_array_mut().unwrap().push(json!({
            "balancer": setup.balancer, "factory": setup.factory,
            "processes": p.processes.iter().map(|(r, pid)| json!({"role": r, "pid": pid})).collect::<Vec<_>>(),
            "idle_bytes": idle_rss, "peak_under_load_bytes": load_rss, "load_clients": most,
            "per_warm_container_bytes": per,
        }));
    }
    Ok(report)
}

/// Cold starts of one factory: per kind, without and with a stem cell, beside the factory's floor.
async fn cold_section(
    c: &mut Conn,
    setup: &platform::Setup,
    args: &Args,
    report: &mut Value,
) -> anyhow::Result<()> {
    println!(
        "\n[{} factory] Cold start: first invoke of a new action (end to end, and the record's initTime)",
        setup.factory
    );
    let floor = cold_floor(setup.factory, args.cold * 5);
    match &floor {
        Some((label, s)) => row(label, s),
        None => println!("  floor: n/a (needs root for namespaces)"),
    }
    let floor_p50 = floor.as_ref().map_or(f64::NAN, |f| f.1.p50);
    let cold = |k: &Kind, how: &str, e2e: &Stats, init: &Stats, r: &mut Value| {
        r["cold"].as_array_mut().unwrap().push(json!({
            "factory": setup.factory, "kind": k.kind, "start": how,
            "end_to_end": e2e.json(), "init_time": init.json(),
            "floor": floor.as_ref().map(|f| f.1.json()),
            "over_floor_p50_us": e2e.p50 - floor_p50,
        }));
    };
    for k in kinds() {
        let (e2e, init) = cold_series(c, &k, 128, args.cold, Duration::ZERO, "cold").await?;
        println!(" {} without a stem cell (128 MB)", k.kind);
        row("end to end", &e2e);
        row("initTime", &init);
        cold(&k, "cold", &e2e, &init, report);
        let (e2e, init) = cold_series(
            c,
            &k,
            256,
            args.cold.min(10),
            Duration::from_millis(1500),
            "prewarm",
        )
        .await?;
        println!(
            " {} from a prewarmed stem cell (256 MB; target /init + first /run ≤ 5 ms)",
            k.kind
        );
        row("end to end", &e2e);
        row("initTime", &init);
        cold(&k, "prewarm", &e2e, &init, report);
    }
    let nat = native();
    let (e2e, init) = cold_series(c, &nat, 128, args.cold, Duration::ZERO, "cold").await?;
    println!(
        " native (shell script) without a stem cell (target: p50 ≤ 5 ms over the bare sandboxed spawn)"
    );
    row("end to end", &e2e);
    row("initTime", &init);
    println!(
        "  {:<48} p50 {:>9}",
        "over the bare sandboxed spawn",
        fmt_us(e2e.p50 - floor_p50)
    );
    cold(&nat, "cold", &e2e, &init, report);
    Ok(())
}
