//! `whirl-bench`: measures a real Whirl (the release `whirl` binary next to this one, started as
//! `whirl standalone` on a free port) and prints each figure beside its floor measured in the same
//! run:
//!
//! - warm blocking invoke latency of a no-op action per kind (p50/p99/p99.9), beside the same
//!   request sent straight to a warm runtime's /run (our runtime, started bare on a Unix socket);
//! - cold start latency per kind without a stem cell, and with a prewarmed stem cell.
//!
//! Run: `scripts/bench` (builds both binaries in release mode first).
//! Targets come from ../shared/reference/performance.md; these machines are noisy, so compare
//! figures within one run, never across runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::{json, Value};

const AUTH: &str = "Basic MjNiYzQ2YjEtNzFmNi00ZWQ1LThjNTQtODE2YWE0ZjhjNTAyOjEyM3pPM3haQ0xyTU42djJCS0sxZFhZRnBYbFBrY2NPRnFtMTJDZEFzTWdSVTRWck5aOWx5R1ZDR3VNREdJd1A=";

#[derive(Parser)]
#[command(about = "Benchmark a real Whirl standalone platform")]
struct Args {
    /// Warm invokes measured per kind (after warm-up).
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Cold starts measured per kind.
    #[arg(long, default_value_t = 20)]
    cold: usize,
    /// Path of the whirl binary (default: next to this one).
    #[arg(long)]
    whirl: Option<PathBuf>,
}

struct Kind {
    kind: &'static str,
    code: String,
    launcher: &'static str,
    command: Option<&'static str>,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            kind: "python:3",
            code: "def main(args):\n    return {}\n".into(),
            launcher: "python",
            command: Some("/usr/bin/python3"),
        },
        Kind {
            kind: "nodejs:20",
            code: "function main(params) { return {}; }\n".into(),
            launcher: "node",
            command: Some("/usr/bin/node"),
        },
    ]
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    tx: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    async fn tcp(addr: &str) -> anyhow::Result<Conn> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Self::handshake(s, addr.to_string()).await
    }

    async fn unix(path: &Path) -> anyhow::Result<Conn> {
        let s = tokio::net::UnixStream::connect(path).await?;
        Self::handshake(s, "localhost".into()).await
    }

    async fn handshake<S>(s: S, host: String) -> anyhow::Result<Conn>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s)).await?;
        tokio::spawn(conn);
        Ok(Conn { tx, host })
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
        auth: bool,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", "application/json");
        if auth {
            req = req.header("authorization", AUTH);
        }
        self.tx.ready().await?;
        let resp = self.tx.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    p999: f64,
    n: usize,
}

fn stats(mut us: Vec<f64>) -> Stats {
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
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

struct Platform {
    child: Child,
    addr: String,
    _tmp: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        unsafe { kill(self.child.id() as i32, 15) };
        let _ = self.child.wait();
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

async fn start_platform(whirl: &Path) -> anyhow::Result<Platform> {
    let tmp = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cfg = tmp.path().join("bench.toml");
    // Large enough for the cold-start series without evictions in the way.
    std::fs::write(
        &cfg,
        "[container_factory]\ntype = \"process\"\nuser_memory_mb = 16384\nmax_containers = 256\n",
    )?;
    let child = Command::new(whirl)
        .args(["standalone", "--port", &port.to_string(), "--data-dir"])
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .env("WHIRL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", whirl.display()))?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = Conn::tcp(&addr).await {
            if let Ok((200, _)) = c.send("GET", "/api/v1", Bytes::new(), false).await {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("whirl did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Platform {
        child,
        addr,
        _tmp: tmp,
    })
}

async fn put_action(
    c: &mut Conn,
    name: &str,
    kind: &str,
    code: &str,
    memory: u64,
) -> anyhow::Result<()> {
    put_action_with(c, name, kind, code, json!({ "memory": memory })).await
}

async fn put_action_with(
    c: &mut Conn,
    name: &str,
    kind: &str,
    code: &str,
    limits: Value,
) -> anyhow::Result<()> {
    let body = json!({"exec": {"kind": kind, "code": code}, "limits": limits});
    let (st, b) = c
        .send(
            "PUT",
            &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
            body.to_string().into(),
            true,
        )
        .await?;
    if st != 200 {
        bail!("create {name}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(())
}

async fn invoke(c: &mut Conn, name: &str) -> anyhow::Result<Value> {
    let (st, b) = c
        .send(
            "POST",
            &format!("/api/v1/namespaces/_/actions/{name}?blocking=true"),
            Bytes::from_static(b"{}"),
            true,
        )
        .await?;
    if st != 200 {
        bail!("invoke {name}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(serde_json::from_slice(&b)?)
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

/// The floor: our runtime started bare (no sandbox) on a Unix socket, /init once, then the same
/// /run body the invoker sends, over one keep-alive connection.
async fn floor_series(whirl: &Path, k: &Kind, n: usize) -> anyhow::Result<Stats> {
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
    let mut c = loop {
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
    let (st, b) = c
        .send("POST", "/init", init.to_string().into(), false)
        .await?;
    if st != 200 {
        bail!("floor /init: {st} {}", String::from_utf8_lossy(&b));
    }
    let run = Bytes::from(
        json!({"value": {}, "namespace": "guest", "action_name": "/guest/noop", "action_version": "0.0.1",
               "activation_id": "0123456789abcdef0123456789abcdef", "transaction_id": "bench",
               "deadline": "99999999999999", "api_key": "x:y"})
        .to_string(),
    );
    for _ in 0..200 {
        c.send("POST", "/run", run.clone(), false).await?;
    }
    let mut us = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (st, _) = c.send("POST", "/run", run.clone(), false).await?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
        if st != 200 {
            bail!("floor /run failed: {st}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(stats(us))
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
        put_action(c, &name, k.kind, &k.code, memory).await?;
        tokio::time::sleep(settle).await;
        let t = Instant::now();
        let act = invoke(c, &name).await?;
        e2e.push(t.elapsed().as_secs_f64() * 1e6);
        init.push(annotation(&act, "initTime").unwrap_or(0) as f64 * 1000.0);
    }
    Ok((stats(e2e), stats(init)))
}

fn row(label: &str, s: &Stats) {
    println!(
        "  {label:<44} p50 {:>9}  p99 {:>9}  p99.9 {:>9}  (n={})",
        fmt_us(s.p50),
        fmt_us(s.p99),
        fmt_us(s.p999),
        s.n
    );
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
    rt.block_on(run(args, whirl))
}

async fn run(args: Args, whirl: PathBuf) -> anyhow::Result<()> {
    println!(
        "whirl-bench: {} (2 cores shared by platform, containers and load generator)",
        whirl.display()
    );
    let p = start_platform(&whirl).await?;
    let mut c = Conn::tcp(&p.addr).await?;

    println!("\nWarm blocking invoke of a no-op action, one client, keep-alive (target: added p50 ≤ 300 µs, p99 ≤ 1 ms)");
    for k in kinds() {
        let name = format!("noop-{}", k.launcher);
        put_action(&mut c, &name, k.kind, &k.code, 256).await?;
        invoke(&mut c, &name).await?;
        let warm = warm_series(&mut c, &name, args.iterations).await?;
        let quiet = format!("quiet-{}", k.launcher);
        put_action_with(
            &mut c,
            &quiet,
            k.kind,
            &k.code,
            json!({"memory": 256, "logs": 0}),
        )
        .await?;
        invoke(&mut c, &quiet).await?;
        let no_logs = warm_series(&mut c, &quiet, args.iterations).await?;
        let floor = floor_series(&whirl, &k, args.iterations).await?;
        println!(" {}", k.kind);
        row("through whirl (POST ...?blocking=true&result=true)", &warm);
        row("through whirl, log collection off (logs: 0)", &no_logs);
        row("floor: same /run straight to a warm runtime", &floor);
        println!(
            "  {:<44} p50 {:>9}  p99 {:>9}   ratio p50 {:.2}x",
            "added by the platform",
            fmt_us(warm.p50 - floor.p50),
            fmt_us(warm.p99 - floor.p99),
            warm.p50 / floor.p50
        );
    }

    println!("\nCold start: first invoke of a new action (end to end, and the record's initTime)");
    for k in kinds() {
        let (e2e, init) = cold_series(&mut c, &k, 128, args.cold, Duration::ZERO, "cold").await?;
        println!(" {} without a stem cell (128 MB)", k.kind);
        row("end to end", &e2e);
        row("initTime", &init);
        let (e2e, init) = cold_series(
            &mut c,
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
    }
    let native = Kind {
        kind: "native",
        code: "#!/bin/sh\nwhile read l; do echo '{}' >&3; done\n".into(),
        launcher: "native",
        command: None,
    };
    let (e2e, init) = cold_series(&mut c, &native, 128, args.cold, Duration::ZERO, "cold").await?;
    println!(" native (shell script) without a stem cell");
    row("end to end", &e2e);
    row("initTime", &init);
    Ok(())
}
