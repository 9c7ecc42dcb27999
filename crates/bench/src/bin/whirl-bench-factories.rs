//! `whirl-bench-factories`: the `process` and `docker` container factories side by side, from one
//! run on one machine (`scripts/bench --factories`, or `cargo run --release -p whirl-bench --bin
//! whirl-bench-factories`). For each factory a fresh `whirl standalone` (no stem cells, so every
//! new action starts cold) is measured for:
//!
//! * **cold start, create to /init ready**: `waitTime + initTime` of the first activation of a
//!   fresh action (the record's `waitTime` runs from the request's arrival to the start of /init,
//!   so it holds the container's creation), beside the factory's floor measured in the same run:
//!   `docker run --rm` of the same image running `/bin/true` for docker (the target is at most
//!   that + 10 ms), spawning `/bin/true` for process;
//! * **warm invoke latency**: blocking invokes of a no-op action over one keep-alive connection,
//!   beside the same `/run` sent straight to that action's warm container (the runtime's floor).
//!
//! Kept apart from `whirl-bench` (main.rs) so the two evolve independently; the small HTTP
//! connection helper is repeated here for that reason.

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
#[command(about = "Cold start and warm latency of the process and docker factories, side by side")]
struct Args {
    /// Warm invokes per factory and kind.
    #[arg(long, default_value_t = 500)]
    warm: usize,
    /// Cold starts per factory and kind.
    #[arg(long, default_value_t = 10)]
    cold: usize,
    /// The whirl binary (default: next to this one).
    #[arg(long)]
    whirl: Option<PathBuf>,
    /// The runtime image for docker (default: built with scripts/build-images from --whirl).
    #[arg(long)]
    image: Option<String>,
}

struct Conn {
    tx: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn tcp(addr: &str) -> anyhow::Result<Conn> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Self::handshake(s).await
    }

    async fn unix(path: &Path) -> anyhow::Result<Conn> {
        Self::handshake(tokio::net::UnixStream::connect(path).await?).await
    }

    async fn handshake<S>(s: S) -> anyhow::Result<Conn>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s)).await?;
        tokio::spawn(conn);
        Ok(Conn { tx })
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("authorization", AUTH)
            .body(Full::new(body))?;
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        let status = resp.status().as_u16();
        Ok((status, resp.into_body().collect().await?.to_bytes()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Factory {
    Process,
    Docker,
}

impl Factory {
    fn name(self) -> &'static str {
        match self {
            Factory::Process => "process",
            Factory::Docker => "docker",
        }
    }
}

struct Platform {
    child: Child,
    addr: String,
    data_dir: PathBuf,
    invoker: String,
    _tmp: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        // SIGTERM: the platform destroys its containers.
        unsafe { kill(self.child.id() as i32, 15) };
        let _ = self.child.wait();
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

async fn start(whirl: &Path, f: Factory, image: &str) -> anyhow::Result<Platform> {
    let tmp = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let invoker = format!("bench{}{}", std::process::id(), f.name());
    let factory = match f {
        Factory::Process => "[container_factory]\ntype = \"process\"\n".to_string(),
        Factory::Docker => format!(
            "[container_factory]\ntype = \"docker\"\nimages = {{ \"python:3\" = \"{image}\", \"nodejs:20\" = \"{image}\", \"native\" = \"{image}\" }}\n"
        ),
    };
    let cfg = tmp.path().join("bench.toml");
    std::fs::write(
        &cfg,
        format!(
            "{factory}user_memory_mb = 16384\nmax_containers = 256\n\
             [invoker]\nid = \"{invoker}\"\nprewarm = false\npause_grace_ms = 600000\n"
        ),
    )?;
    let data_dir = tmp.path().join("data");
    let child = Command::new(whirl)
        .args(["standalone", "--port", &port.to_string(), "--data-dir"])
        .arg(&data_dir)
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
            if let Ok((200, _)) = c.send("GET", "/api/v1", Bytes::new()).await {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("whirl ({}) did not start", f.name());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Platform {
        child,
        addr,
        data_dir,
        invoker,
        _tmp: tmp,
    })
}

async fn put(c: &mut Conn, name: &str, kind: &str, code: &str) -> anyhow::Result<()> {
    let body = json!({"exec": {"kind": kind, "code": code}});
    let (st, b) = c
        .send(
            "PUT",
            &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
            body.to_string().into(),
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
        )
        .await?;
    if st != 200 {
        bail!("invoke {name}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(serde_json::from_slice(&b)?)
}

fn annotation(v: &Value, key: &str) -> Option<u64> {
    v["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]
        .as_u64()
}

/// (p50, p99) of a sample, sorted in place.
fn pct(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Where the warm container of the only action that ran on `p` listens.
async fn warm_endpoint(p: &Platform, f: Factory) -> anyhow::Result<Conn> {
    match f {
        Factory::Process => {
            let dir = std::fs::read_dir(p.data_dir.join("containers"))?
                .flatten()
                .map(|e| e.path().join("runtime.sock"))
                .find(|s| s.exists())
                .context("no container socket")?;
            Conn::unix(&dir).await
        }
        Factory::Docker => {
            let out = Command::new("docker")
                .args(["ps", "--filter"])
                .arg("label=whirl.invoker")
                .args(["--format", "{{.Names}} {{.Label \"whirl.invoker\"}}"])
                .output()?;
            let name = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| {
                    l.split(' ')
                        .nth(1)
                        .is_some_and(|v| v.starts_with(&format!("{}-", p.invoker)))
                })
                .and_then(|l| l.split(' ').next().map(str::to_string))
                .context("no container")?;
            let out = Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    &name,
                ])
                .output()?;
            let ip = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Conn::tcp(&format!("{ip}:8080")).await
        }
    }
}

struct Figures {
    cold: (f64, f64),
    warm: (f64, f64),
    floor_warm: (f64, f64),
}

async fn measure(
    whirl: &Path,
    f: Factory,
    image: &str,
    kind: &str,
    code: &str,
    args: &Args,
) -> anyhow::Result<Figures> {
    let p = start(whirl, f, image).await?;
    let mut c = Conn::tcp(&p.addr).await?;
    let mut cold = Vec::new();
    for i in 0..args.cold {
        let name = format!("cold{i}");
        put(&mut c, &name, kind, code).await?;
        let act = invoke(&mut c, &name).await?;
        let wait = annotation(&act, "waitTime").context("waitTime")?;
        let init = annotation(&act, "initTime").context("a cold start has initTime")?;
        cold.push((wait + init) as f64);
    }
    drop(p);

    // A platform of its own for the warm series, so one container is the only one.
    let p = start(whirl, f, image).await?;
    let mut c = Conn::tcp(&p.addr).await?;
    put(&mut c, "noop", kind, code).await?;
    for _ in 0..20 {
        invoke(&mut c, "noop").await?;
    }
    let mut warm = Vec::with_capacity(args.warm);
    for _ in 0..args.warm {
        let t = Instant::now();
        invoke(&mut c, "noop").await?;
        warm.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let mut direct = warm_endpoint(&p, f).await?;
    let body = Bytes::from(
        json!({"value": {}, "namespace": "guest", "action_name": "/guest/noop", "action_version": "0.0.1",
               "activation_id": "0".repeat(32), "transaction_id": "bench", "deadline": "99999999999999"})
        .to_string(),
    );
    let mut floor = Vec::with_capacity(args.warm);
    for i in 0..args.warm + 20 {
        let t = Instant::now();
        let (st, b) = direct.send("POST", "/run", body.clone()).await?;
        if st != 200 {
            bail!("direct /run: {st} {}", String::from_utf8_lossy(&b));
        }
        if i >= 20 {
            floor.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(Figures {
        cold: pct(&mut cold),
        warm: pct(&mut warm),
        floor_warm: pct(&mut floor),
    })
}

/// The factory's own floor for a cold start, in ms: `docker run --rm <image> /bin/true`, or
/// spawning `/bin/true`.
fn cold_floor(f: Factory, image: &str, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let st = match f {
            Factory::Docker => Command::new("docker")
                .args([
                    "run",
                    "--rm",
                    "--network",
                    "bridge",
                    "--entrypoint",
                    "/bin/true",
                    image,
                ])
                .stdout(Stdio::null())
                .status()?,
            Factory::Process => Command::new("/bin/true").status()?,
        };
        if !st.success() {
            bail!("the {} floor command failed", f.name());
        }
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(pct(&mut v))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let whirl = match &args.whirl {
        Some(w) => w.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent dir")?
            .join("whirl"),
    };
    let image = match &args.image {
        Some(i) => i.clone(),
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-images");
            let out = Command::new(script)
                .arg("--whirl")
                .arg(&whirl)
                .stderr(Stdio::inherit())
                .output()?;
            if !out.status.success() {
                bail!("scripts/build-images failed");
            }
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let kinds = [
            ("python:3", "def main(a):\n    return {}\n"),
            ("nodejs:20", "function main() { return {}; }"),
        ];
        println!(
            "factories, one run: cold start = create to /init ready (waitTime + initTime, ms), {} each; \
             warm = blocking invoke of a no-op (µs), {} each",
            args.cold, args.warm
        );
        println!(
            "{:<9} {:<10} {:>17} {:>19} {:>17} {:>19}",
            "factory", "kind", "cold p50/p99 ms", "floor p50/p99 ms", "warm p50/p99 µs", "/run floor p50/p99"
        );
        for f in [Factory::Process, Factory::Docker] {
            let floor = cold_floor(f, &image, args.cold)?;
            for (kind, code) in kinds {
                let m = measure(&whirl, f, &image, kind, code, &args).await?;
                println!(
                    "{:<9} {:<10} {:>17} {:>19} {:>17} {:>19}",
                    f.name(),
                    kind,
                    format!("{:.0} / {:.0}", m.cold.0, m.cold.1),
                    format!("{:.1} / {:.1}", floor.0, floor.1),
                    format!("{:.0} / {:.0}", m.warm.0, m.warm.1),
                    format!("{:.0} / {:.0}", m.floor_warm.0, m.floor_warm.1),
                );
            }
        }
        println!(
            "floors, measured in this run: cold = spawning /bin/true (process) or `docker run --rm` \
             of the same image (docker); /run = the same /run sent straight to the warm container"
        );
        Ok(())
    })
}
