//! What the bench measures: the ways of running the platform ([`setups`]) and the bare floors.
//!
//! **Adding a load balancer or a container factory is one more [`Setup`] in [`setups`]**: its
//! `balancer` name is a row of the throughput table and its `factory` name a group of the
//! cold-start table. A setup that needs more than `whirl standalone` (the `sharding` balancer's
//! `whirl controller` + `whirl invoker` processes joined by NATS) gets a [`Launch`] variant whose
//! arm in [`Setup::start`] starts the processes and lists their pids with their roles, so the
//! memory figures cover each one. A factory with a floor of its own (Docker's `docker run` of the
//! same image) adds it in `cold_floor` in main.rs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;

use crate::client::Conn;

/// How a setup's platform is started.
pub enum Launch {
    /// One `whirl standalone` process (controller and invoker), with this config added.
    Standalone { config: String },
}

/// One way of running the platform.
pub struct Setup {
    /// The load balancer it measures (throughput rows).
    pub balancer: &'static str,
    /// The container factory it measures (cold-start groups).
    pub factory: &'static str,
    /// The actions' `limits.concurrency` where the kind can share a container.
    pub concurrency: u64,
    pub launch: Launch,
}

/// Room for 64 concurrent clients of one action (64 containers) and the cold-start series.
const ROOMY: &str =
    "[container_factory]\ntype = \"process\"\nuser_memory_mb = 20480\nmax_containers = 256\n";

/// Every setup available in this build.
pub fn setups() -> Vec<Setup> {
    vec![
        Setup {
            balancer: "lean",
            factory: "process",
            concurrency: 1,
            launch: Launch::Standalone {
                config: format!("{ROOMY}\n[load_balancer]\ntype = \"lean\"\n"),
            },
        },
        // The embedded invoker fed over in-memory messaging: the sharding balancer's scheduling,
        // slots and acks without a network hop. Its NATS deployment (`whirl controller` +
        // `whirl invoker`) would be a Launch variant of its own.
        Setup {
            balancer: "sharding",
            factory: "process",
            concurrency: 1,
            launch: Launch::Standalone {
                config: format!(
                    "{ROOMY}\n[load_balancer]\ntype = \"sharding\"\n\n[messaging]\ntype = \"memory\"\n"
                ),
            },
        },
        // Straight from the controller to shared containers, 50 activations per container where
        // the kind allows it (python runs one at a time, so it gets a container per client).
        Setup {
            balancer: "direct",
            factory: "process",
            concurrency: 50,
            launch: Launch::Standalone {
                config: format!("{ROOMY}\n[load_balancer]\ntype = \"direct\"\n"),
            },
        },
    ]
}

/// A running platform under test. Its processes are stopped (SIGTERM) on drop.
pub struct Platform {
    children: Vec<Child>,
    /// The API's address.
    pub addr: String,
    /// (role, pid) of each platform process, for resident memory.
    pub processes: Vec<(String, u32)>,
    _tmp: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        for c in &mut self.children {
            unsafe { kill(c.id() as i32, 15) };
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

impl Setup {
    pub async fn start(&self, whirl: &Path) -> anyhow::Result<Platform> {
        let p = match &self.launch {
            Launch::Standalone { config } => standalone(whirl, config).await?,
        };
        ready_to_invoke(&p.addr).await?;
        Ok(p)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn standalone(whirl: &Path, config: &str) -> anyhow::Result<Platform> {
    let tmp = tempfile::tempdir()?;
    let port = free_port()?;
    let cfg = tmp.path().join("bench.toml");
    std::fs::write(&cfg, config)?;
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
    let pid = child.id();
    let addr = format!("127.0.0.1:{port}");
    let p = Platform {
        children: vec![child],
        addr,
        processes: vec![("controller+invoker (standalone)".into(), pid)],
        _tmp: tmp,
    };
    wait_ready(&p.addr).await?;
    Ok(p)
}

/// Waits until the API answers.
pub async fn wait_ready(addr: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = Conn::tcp(addr).await {
            if let Ok((200, _)) = c.send("GET", "/api/v1", Bytes::new(), false).await {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("whirl did not start on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until an invoke succeeds (a balancer may need its invokers' first health pings).
async fn ready_to_invoke(addr: &str) -> anyhow::Result<()> {
    let mut c = Conn::tcp(addr).await?;
    crate::client::put_action(
        &mut c,
        "bench-probe",
        "native",
        "#!/bin/sh\nwhile read l; do echo '{}' >&3; done\n",
        serde_json::json!({"memory": 128}),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match crate::client::invoke(&mut c, "bench-probe").await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("the platform never ran an activation"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Resident memory of a process in bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One bare sandboxed spawn: new pid, mount, uts and ipc namespaces (what the process factory's
/// sandbox starts with), fork into the new pid namespace, exec /bin/true, wait. No cgroups, no
/// mounts, no runtime. Needs root (None without the privilege).
pub fn sandboxed_spawn() -> Option<Duration> {
    use std::os::unix::process::CommandExt;
    let t = Instant::now();
    let mut cmd = Command::new("/bin/true");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (unshare, fork, waitpid, _exit).
    unsafe {
        cmd.pre_exec(|| {
            let flags =
                libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The new pid namespace holds this process's children only: the exec happens in
            // a child (pid 1 there); this process waits for it and exits with its status.
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                0 => Ok(()),
                pid => {
                    let mut status = 0;
                    libc::waitpid(pid, &mut status, 0);
                    libc::_exit(if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        1
                    });
                }
            }
        });
    }
    let st = cmd.status().ok()?;
    st.success().then(|| t.elapsed())
}
