//! The `process` factory's sandbox and limits, seen from inside (actions that probe their
//! environment) and from outside (processes, cgroups, directories), with real processes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{client, init_python, run, run_ok, spec, Area, PATIENCE};
use serde_json::{json, Value};
use whirl_container_process::{ProcessContainer, ProcessFactoryConfig, SandboxMode};
use whirl_model::manifest::Launcher;
use whirl_spi::{Container, ContainerFactory};

/// Reports what an action can see and do.
const PROBE: &str = r#"
import os, resource, socket

def attempt(f):
    try:
        return f()
    except Exception as e:
        return type(e).__name__

def write(path):
    with open(path, "w") as f:
        f.write("x")
    return True

def main(args):
    status = dict(l.split(":\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\t" in l)
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "caps": {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
        "no_new_privs": status["NoNewPrivs"].strip(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "pid1": open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode(),
        "host_pid": attempt(lambda: os.kill(args["host_pid"], 0) or True),
        "secret": attempt(lambda: open(args["secret"]).read()),
        "data_dir": attempt(lambda: os.listdir(args["data_dir"])),
        "repo_file": attempt(lambda: open(args["repo_file"]).read()),
        "writes": {p: attempt(lambda p=p: write(p)) for p in args["writes"]},
        "hostname": socket.gethostname(),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "root": sorted(os.listdir("/")),
        "dev": sorted(os.listdir("/dev")),
    }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_is_confined() {
    let area = Area::new().await;
    let secret = area.data_dir().join("secret.txt");
    std::fs::create_dir_all(area.data_dir()).unwrap();
    std::fs::write(&secret, "the platform's secret").unwrap();
    let factory = area.factory("confined");
    factory.init().await.unwrap();
    assert_eq!(
        factory.missing_isolation().await.unwrap(),
        Vec::<String>::new(),
        "this machine offers everything"
    );

    let c = factory
        .create_process(spec("wsk0_1_guest_probe", Launcher::Python, 256))
        .await
        .unwrap();
    let cl = client(c.as_ref());
    init_python(&cl, PROBE).await;
    let writes = [
        "/usr/x",
        "/etc/x",
        "/x",
        "/proc/x",
        "/dev/x",
        "/tmp/ok",
        "/whirl/work/ok",
        "/dev/shm/ok",
    ];
    let seen = run_ok(
        &cl,
        json!({
            "host_pid": std::process::id(),
            "secret": secret,
            "data_dir": area.data_dir(),
            "repo_file": concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            "writes": writes,
        }),
    )
    .await;
    println!("seen from inside: {seen:#}");

    // An unprivileged identity with no capabilities, and no way to regain any.
    assert_eq!(
        (
            seen["uid"].clone(),
            seen["euid"].clone(),
            seen["gid"].clone()
        ),
        (json!(65534), json!(65534), json!(65534))
    );
    assert_eq!(seen["groups"], json!([]));
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(seen["caps"][cap], "0000000000000000", "{cap}");
    }
    assert_eq!(seen["no_new_privs"], "1");

    // Its own pid namespace: the runtime is pid 1, host processes are invisible.
    assert!(
        seen["pid1"]
            .as_str()
            .unwrap()
            .ends_with("whirl-process-host"),
        "{}",
        seen["pid1"]
    );
    assert!(
        seen["pids"].as_array().unwrap().len() < 10,
        "only the container's processes: {}",
        seen["pids"]
    );
    assert_eq!(seen["host_pid"], "ProcessLookupError");

    // Nothing of the platform's data directory (or anything else of the host outside the
    // read-only system directories) exists in its view.
    assert_eq!(seen["secret"], "FileNotFoundError");
    assert_eq!(seen["data_dir"], "FileNotFoundError");
    assert_eq!(seen["repo_file"], "FileNotFoundError");
    let root: Vec<&str> = seen["root"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for absent in ["root", "home", "var", "run", "sys", "srv", "mnt"] {
        assert!(!root.contains(&absent), "/{absent} is visible: {root:?}");
    }

    // Writable: only its private directory, /tmp (in it) and /dev/shm.
    let w = &seen["writes"];
    for p in ["/usr/x", "/etc/x", "/x", "/proc/x", "/dev/x"] {
        assert_ne!(w[p], json!(true), "{p} is writable");
    }
    for p in ["/tmp/ok", "/whirl/work/ok", "/dev/shm/ok"] {
        assert_eq!(w[p], json!(true), "{p} is not writable");
    }
    assert!(
        c.private_dir().join("tmp/ok").exists(),
        "/tmp is the private dir's tmp/"
    );
    assert!(!Path::new("/tmp/ok").exists() || std::fs::read_to_string("/tmp/ok").unwrap() != "x");

    assert_eq!(seen["hostname"], "wsk0_1_guest_probe");
    assert_eq!(seen["nofile"], json!([1024, 1024]));
    let dev: Vec<&str> = seen["dev"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for d in ["null", "zero", "urandom", "shm"] {
        assert!(dev.contains(&d), "/dev/{d} missing: {dev:?}");
    }
    factory.cleanup().await;
}

/// Pids of every process in the container, from its cgroups.
fn container_pids(c: &ProcessContainer) -> Vec<i32> {
    let mut pids: Vec<i32> = c
        .cgroup_dirs()
        .iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .map(|l| l.parse().unwrap())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Whether a pid exists at all (a zombie counts: it was not reaped).
fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_kills_and_is_reported() {
    let area = Area::new().await;
    let factory = area.factory("oom");
    factory.init().await.unwrap();
    let c = factory
        .create(spec("oom", Launcher::Python, 64))
        .await
        .unwrap();
    let cl = client(c.as_ref());
    init_python(
        &cl,
        "def main(args):\n    blob = 'x' * (args['mb'] << 20)\n    return {'len': len(blob)}\n",
    )
    .await;
    assert_eq!(
        run_ok(&cl, json!({"mb": 4})).await,
        json!({"len": 4 << 20}),
        "a small allocation fits"
    );
    assert!(!c.out_of_memory().await, "not out of memory yet");
    let r = run(&cl, json!({"mb": 256})).await;
    assert!(
        !r.response.is_success(),
        "256 MB in a 64 MB container must fail: {r:?}"
    );
    println!("over the limit: {:?}", r.response);
    assert!(c.out_of_memory().await, "out_of_memory() reports the kill");
    c.destroy().await.unwrap();
    assert!(
        c.out_of_memory().await,
        "out_of_memory() still answers after destroy"
    );
    factory.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_limit_stops_a_fork_bomb() {
    let area = Area::new().await;
    let factory = whirl_container_process::ProcessFactory::new(ProcessFactoryConfig {
        pids_limit: 16,
        ..area.config("pids")
    })
    .unwrap();
    factory.init().await.unwrap();
    let c = factory
        .create(spec("pids", Launcher::Python, 256))
        .await
        .unwrap();
    let cl = client(c.as_ref());
    let code = r#"
import os, time
def main(args):
    pids, error = [], None
    for _ in range(64):
        try:
            pid = os.fork()
        except OSError as e:
            error = str(e)
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return {"forked": len(pids), "fork_error": error}
"#;
    init_python(&cl, code).await;
    let r = run_ok(&cl, json!({})).await;
    println!("fork bomb: {r}");
    assert!(r["forked"].as_u64().unwrap() < 16, "{r}");
    assert!(
        r["fork_error"]
            .as_str()
            .is_some_and(|e| e.contains("Resource temporarily unavailable")),
        "{r}"
    );
    factory.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_leaves_nothing_behind() {
    let area = Area::new().await;
    let factory = area.factory("destroy");
    factory.init().await.unwrap();
    let c = factory
        .create_process(spec("destroy", Launcher::Python, 128))
        .await
        .unwrap();
    let cl = client(c.as_ref());
    init_python(&cl, "def main(args):\n    return {}\n").await;
    run_ok(&cl, json!({})).await;
    let pids = container_pids(&c);
    let dirs = c.cgroup_dirs();
    assert!(
        pids.len() >= 3,
        "outer process, runtime, launcher: {pids:?}"
    );
    assert!(
        dirs.len() >= 3,
        "memory, pids, cpu, freezer cgroups: {dirs:?}"
    );
    c.suspend().await.unwrap(); // destroying a frozen container works too
    c.destroy().await.unwrap();
    for pid in &pids {
        assert!(
            !exists(*pid),
            "process {pid} survived destroy (or was not reaped)"
        );
    }
    for dir in &dirs {
        assert!(!dir.exists(), "cgroup {} survived destroy", dir.display());
    }
    assert!(!c.private_dir().exists(), "private dir survived destroy");
    assert!(c.exit_status().is_some(), "the exit status is known");
    factory.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_exit_is_reaped_and_remembered() {
    let area = Area::new().await;
    let factory = area.factory("crash");
    factory.init().await.unwrap();
    let c = factory
        .create_process(spec("crash", Launcher::Python, 128))
        .await
        .unwrap();
    init_python(&client(c.as_ref()), "def main(args):\n    return {}\n").await;
    let outer = c.pid() as i32;
    let inner: Vec<i32> = container_pids(&c)
        .into_iter()
        .filter(|&p| parent_of(p) == Some(outer))
        .collect();
    assert_eq!(
        inner.len(),
        1,
        "the sandbox's init is the outer process's only child"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(inner[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the container process is reaped", || c.has_exited()).await;
    use std::os::unix::process::ExitStatusExt;
    let status = c.exit_status().unwrap();
    assert_eq!(
        (status.code(), status.signal()),
        (Some(137), None),
        "the outer process reports its child's SIGKILL"
    );
    assert!(!exists(outer), "outer process not reaped");
    eventually("the sandbox's init is reaped", || !exists(inner[0])).await;
    c.destroy().await.unwrap();
    factory.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_removes_a_previous_instances_leftovers() {
    let area = Area::new().await;
    let (pids, dirs, private) = {
        let old = area.factory("leftovers");
        old.init().await.unwrap();
        let c = old
            .create_process(spec("left", Launcher::Python, 128))
            .await
            .unwrap();
        init_python(&client(c.as_ref()), "def main(args):\n    return {}\n").await;
        (
            container_pids(&c),
            c.cgroup_dirs(),
            c.private_dir().to_path_buf(),
        )
        // dropped without destroy or cleanup: everything keeps running
    };
    assert!(pids.iter().all(|&p| exists(p)) && dirs.iter().all(|d| d.exists()) && private.exists());

    let new = area.factory("leftovers");
    new.init().await.unwrap();
    eventually("leftover processes gone", || {
        pids.iter().all(|&p| !exists(p))
    })
    .await;
    for dir in &dirs {
        assert!(
            !dir.exists(),
            "leftover cgroup {} survived init()",
            dir.display()
        );
    }
    assert!(!private.exists(), "leftover private dir survived init()");
    new.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_mode_starts_here() {
    let area = Area::new().await;
    let factory = whirl_container_process::ProcessFactory::new(ProcessFactoryConfig {
        sandbox: SandboxMode::Required,
        ..area.config("required")
    })
    .unwrap();
    factory
        .init()
        .await
        .expect("this machine offers the whole sandbox");
    factory.cleanup().await;
}

/// The SIGSTOP/SIGCONT fallback and plain processes: the whole SPI still holds with the sandbox
/// off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_the_sandbox_off() {
    let area = Area::new().await;
    let factory = whirl_container_process::ProcessFactory::new(ProcessFactoryConfig {
        sandbox: SandboxMode::Off,
        ..area.config("off")
    })
    .unwrap();
    whirl_spi::conformance::container::container_factory(
        &factory,
        common::kind(Launcher::Python),
        &whirl_spi::conformance::container::TestAction::for_launcher(Launcher::Python),
    )
    .await;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Prints what a cold start costs (not asserted: timings on shared machines are noise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_cost() {
    let area = Area::new().await;
    for (label, mode) in [
        ("sandboxed", SandboxMode::Auto),
        ("plain process", SandboxMode::Off),
    ] {
        let factory = whirl_container_process::ProcessFactory::new(ProcessFactoryConfig {
            sandbox: mode,
            ..area.config("cost")
        })
        .unwrap();
        factory.init().await.unwrap();
        for launcher in [Launcher::Native, Launcher::Python] {
            let (mut create, mut listening, mut first_run) = (Vec::new(), Vec::new(), Vec::new());
            let init = match launcher {
                Launcher::Native => {
                    json!({"code": "#!/bin/sh\nwhile read -r l; do echo '{}' >&3; done\n"})
                }
                _ => json!({"code": "def main(args):\n    return {}\n"}),
            };
            for i in 0..10 {
                let start = Instant::now();
                let c = factory
                    .create(spec(&format!("cost{i}"), launcher, 128))
                    .await
                    .unwrap();
                create.push(start.elapsed());
                if let whirl_model::Endpoint::Unix(socket) = c.endpoint() {
                    while !socket.exists() {
                        tokio::time::sleep(Duration::from_micros(100)).await;
                    }
                }
                listening.push(start.elapsed());
                let cl = client(c.as_ref());
                cl.init(&init, PATIENCE).await.unwrap();
                let r = run(&cl, Value::Null).await;
                assert!(r.response.is_success(), "{r:?}");
                first_run.push(start.elapsed());
                c.destroy().await.unwrap();
            }
            println!(
                "{label:>14} {launcher:?}: create() p50 {:?}; create → socket p50 {:?}; create → /init → first /run done p50 {:?}",
                median(create),
                median(listening),
                median(first_run)
            );
        }
        factory.cleanup().await;
    }
}
