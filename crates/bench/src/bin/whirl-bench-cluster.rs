//! `whirl-bench-cluster`: warm no-op invokes through the `sharding` balancer of a distributed
//! deployment (one `whirl controller`, three `whirl invoker`s, a nats-server with JetStream and
//! PostgreSQL, all on this machine) beside the `lean` balancer of `whirl standalone`, in one run.
//!
//! For each, it prints closed-loop throughput and the p50/p99 latency of blocking invokes
//! (`?blocking=true&result=true`) at 1 and 8 concurrent keep-alive clients, spread over three
//! no-op Node.js actions (so the sharding balancer's hashing spreads them over the invokers).
//! Run it with `scripts/bench-cluster` (it starts PostgreSQL and builds the release binaries).
//! Everything shares the machine's cores with the load generator: compare the rows, not the
//! absolute figures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

const GUEST: (&str, &str) = (
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502",
    "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
);
const ACTIONS: [&str; 3] = ["noop0", "noop1", "noop2"];
const NOOP: &str = "function main(params) { return {}; }";

#[derive(clap::Parser)]
struct Args {
    /// The whirl binary (default: next to this one).
    #[arg(long)]
    whirl: Option<PathBuf>,
    /// Seconds of load per row.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// PostgreSQL URL of the distributed deployment's store.
    #[arg(long, env = "WHIRL_TEST_POSTGRES_URL")]
    postgres: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Child processes, stopped with SIGTERM on drop.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let f = std::fs::File::create(log)?;
    Ok(cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn()?)
}

async fn wait_http(url: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup_actions(api: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for a in ACTIONS {
        let r = http
            .put(format!(
                "{api}/api/v1/namespaces/_/actions/{a}?overwrite=true"
            ))
            .basic_auth(GUEST.0, Some(GUEST.1))
            .json(&json!({"exec": {"kind": "nodejs:20", "code": NOOP}, "limits": {"memory": 128}}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "create {a}: {}", r.text().await?);
    }
    Ok(())
}

struct Row {
    throughput: f64,
    p50_us: f64,
    p99_us: f64,
    errors: usize,
}

/// `clients` keep-alive clients invoking round-robin for `length`.
async fn load(api: &str, clients: usize, length: Duration) -> Row {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..clients {
        let api = api.to_string();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()
                .unwrap();
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut n = k;
            while t0.elapsed() < length {
                n += 1;
                let a = ACTIONS[n % ACTIONS.len()];
                let t = Instant::now();
                let r = http
                    .post(format!(
                        "{api}/api/v1/namespaces/_/actions/{a}?blocking=true&result=true"
                    ))
                    .basic_auth(GUEST.0, Some(GUEST.1))
                    .body("{}")
                    .header("content-type", "application/json")
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        if all.is_empty() {
            0.0
        } else {
            all[((all.len() as f64 * p) as usize).min(all.len() - 1)]
        }
    };
    Row {
        throughput: all.len() as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        errors,
    }
}

fn print_row(label: &str, clients: usize, r: &Row) {
    println!(
        "  {label:<34} clients {clients:>2}  {:>8.0} invokes/s  p50 {:>7.0} µs  p99 {:>7.0} µs  errors {}",
        r.throughput, r.p50_us, r.p99_us, r.errors
    );
}

async fn measure(label: &str, api: &str, seconds: u64) -> anyhow::Result<()> {
    setup_actions(api).await?;
    // Warm every action's containers (and the caches) first.
    load(api, 8, Duration::from_secs(2)).await;
    for clients in [1, 8] {
        let r = load(api, clients, Duration::from_secs(seconds)).await;
        print_row(label, clients, &r);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let whirl = match &args.whirl {
        Some(w) => w.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory")?
            .join("whirl"),
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(run(args, whirl))
}

async fn run(args: Args, whirl: PathBuf) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    println!(
        "whirl-bench-cluster: {} (2 cores shared by every process and the load generator)",
        whirl.display()
    );
    println!("Warm blocking invoke of no-op nodejs:20 actions, closed loop, keep-alive clients");

    // lean: one standalone process.
    {
        let port = free_port();
        let mut procs = Procs(Vec::new());
        procs.0.push(spawn(
            Command::new(&whirl)
                .args(["standalone", "--port", &port.to_string(), "--data-dir"])
                .arg(dir.join("standalone")),
            &dir.join("standalone.log"),
        )?);
        let api = format!("http://127.0.0.1:{port}");
        wait_http(&format!("{api}/api/v1"), Duration::from_secs(30)).await?;
        measure("lean (whirl standalone)", &api, args.seconds).await?;
    }

    // sharding: nats-server, one controller, three invokers.
    let nats_port = free_port();
    let schema = format!("bench_{}", std::process::id());
    let mut procs = Procs(Vec::new());
    procs.0.push(spawn(
        Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-sd",
            ])
            .arg(dir.join("js")),
        &dir.join("nats.log"),
    )?);
    let shared = format!(
        "[load_balancer]\ntype = \"sharding\"\n\n[messaging]\ntype = \"nats\"\nurl = \"nats://127.0.0.1:{nats_port}\"\n\n[store]\ntype = \"postgres\"\nurl = \"{}\"\nschema = \"{schema}\"\n",
        args.postgres
    );
    let port = free_port();
    let ccfg = dir.join("controller.toml");
    std::fs::write(
        &ccfg,
        format!("{shared}\n[controller]\ncontroller_id = \"controller0\"\n"),
    )?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    procs.0.push(spawn(
        Command::new(&whirl)
            .args(["controller", "--port", &port.to_string(), "--config"])
            .arg(&ccfg)
            .arg("--data-dir")
            .arg(dir.join("controller")),
        &dir.join("controller.log"),
    )?);
    let api = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{api}/api/v1"), Duration::from_secs(30)).await?;
    for i in 0..3 {
        let icfg = dir.join(format!("invoker{i}.toml"));
        std::fs::write(
            &icfg,
            format!("{shared}\n[invoker]\nid = \"invoker{i}\"\nuser_memory_mb = 2048\n"),
        )?;
        procs.0.push(spawn(
            Command::new(&whirl)
                .args(["invoker", "--config"])
                .arg(&icfg)
                .arg("--data-dir")
                .arg(dir.join(format!("invoker{i}"))),
            &dir.join(format!("invoker{i}.log")),
        )?);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    loop {
        let h: serde_json::Value = http
            .get(format!("{api}/invokers"))
            .send()
            .await?
            .json()
            .await?;
        let up = h
            .as_object()
            .map_or(0, |m| m.values().filter(|v| *v == "up").count());
        if up == 3 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "invokers not up: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    measure("sharding (1 controller, 3 invokers)", &api, args.seconds).await?;
    drop(procs);
    let _ = Command::new("psql")
        .arg(&args.postgres)
        .args(["-qc", &format!("drop schema if exists {schema} cascade")])
        .status();
    Ok(())
}
