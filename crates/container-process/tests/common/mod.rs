//! Shared by this crate's integration tests: factories whose runtime is the test-support binary
//! `whirl-process-host`, in a fresh directory, with an invoker id of their own (tests run in
//! parallel, and `init()` removes whatever its invoker id left behind).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use whirl_container_process::{ProcessFactory, ProcessFactoryConfig};
use whirl_model::manifest::{Launcher, RuntimeKind};
use whirl_model::Endpoint;
use whirl_runtime_client::{RunPayload, RunResult, RuntimeClient};
use whirl_spi::{Container, ContainerFactory, ContainerSpec};

pub const PATIENCE: Duration = Duration::from_secs(30);

/// A test's working area: `<tmp>/data` stands for the platform's data directory, with the
/// containers' root in `<tmp>/data/containers`.
pub struct Area {
    pub tmp: tempfile::TempDir,
}

impl Area {
    /// A fresh area; the first one in a test binary also sweeps what earlier runs left behind.
    pub async fn new() -> Self {
        static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        SWEPT.get_or_init(sweep_dead_test_invokers).await;
        Self::fresh()
    }

    fn fresh() -> Self {
        Area {
            tmp: tempfile::Builder::new()
                .prefix("wcp")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// A configuration for invoker `test-<pid>-<name>`.
    pub fn config(&self, name: &str) -> ProcessFactoryConfig {
        ProcessFactoryConfig {
            root_dir: self.data_dir().join("containers"),
            runtime_command: vec![env!("CARGO_BIN_EXE_whirl-process-host").to_string()],
            invoker_id: format!("test-{}-{name}", std::process::id()),
            ..Default::default()
        }
    }

    pub fn factory(&self, name: &str) -> ProcessFactory {
        ProcessFactory::new(self.config(name)).expect("valid config")
    }
}

/// Removes the containers of earlier test runs that panicked before their cleanup: their invoker
/// ids (`test-<pid>-<name>`) name a process that no longer exists. Uses the factory's own
/// leftover removal (`init()`), which is what a restarted invoker does.
async fn sweep_dead_test_invokers() {
    let mut ids = std::collections::BTreeSet::new();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mounts: Vec<PathBuf> = match controllers.split(',').next() {
            Some("") | None => vec!["/sys/fs/cgroup/unified".into(), "/sys/fs/cgroup".into()],
            Some(c) => vec![Path::new("/sys/fs/cgroup").join(c.trim_start_matches("name="))],
        };
        for mount in mounts {
            let whirl = mount.join(path.trim_start_matches('/')).join("whirl");
            for entry in std::fs::read_dir(whirl).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix("test-")
                    .and_then(|r| r.split_once('-'))
                    .map(|(pid, _)| pid);
                if pid.is_some_and(|p| {
                    p.parse::<u32>().is_ok() && !Path::new("/proc").join(p).exists()
                }) {
                    ids.insert(name);
                }
            }
        }
    }
    for id in ids {
        let area = Area::fresh();
        let factory = ProcessFactory::new(ProcessFactoryConfig {
            invoker_id: id.clone(),
            ..area.config("sweep")
        })
        .expect("valid config");
        factory.init().await.expect("init removes leftovers");
        factory.cleanup().await;
        println!("removed the leftovers of {id}");
    }
}

pub fn kind(launcher: Launcher) -> RuntimeKind {
    let kind = match launcher {
        Launcher::Python => "python:3",
        Launcher::Node => "nodejs:20",
        Launcher::Native => "blackbox",
    };
    RuntimeKind {
        kind: kind.into(),
        default: true,
        deprecated: false,
        launcher,
        command: None,
        image: None,
        sentinelled_logs: true,
        concurrent: false,
        stem_cells: vec![],
    }
}

pub fn spec(name: &str, launcher: Launcher, memory_mb: u64) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        kind: kind(launcher),
        image: None,
        memory_mb,
        cpu_shares: 256,
        env: vec![],
        parameters: Default::default(),
    }
}

pub fn client(container: &dyn Container) -> RuntimeClient {
    match container.endpoint() {
        Endpoint::Unix(p) => RuntimeClient::new(whirl_runtime_client::Endpoint::Unix(p.clone())),
        Endpoint::Tcp(a) => RuntimeClient::new(whirl_runtime_client::Endpoint::Tcp(*a)),
    }
}

/// `/init` with python source `code` (entry point `main`); panics if it fails.
pub async fn init_python(client: &RuntimeClient, code: &str) {
    let value = json!({"name": "test", "main": "main", "code": code, "binary": false, "env": {}});
    if let Err(e) = client.init(&value, PATIENCE).await {
        panic!("/init failed: {e}");
    }
}

pub async fn run(client: &RuntimeClient, params: Value) -> RunResult {
    let body = RunPayload {
        value: &params,
        namespace: "guest",
        action_name: "/guest/test",
        action_version: "0.0.1",
        activation_id: "0123456789abcdef0123456789abcdef",
        transaction_id: "test",
        deadline: 0,
        api_key: None,
    };
    client.run(&body, PATIENCE, 1 << 20).await
}

/// Runs and returns the result, panicking unless it succeeded.
pub async fn run_ok(client: &RuntimeClient, params: Value) -> Value {
    let r = run(client, params).await;
    assert!(r.response.is_success(), "run failed: {r:?}");
    r.response.result.expect("a result")
}
