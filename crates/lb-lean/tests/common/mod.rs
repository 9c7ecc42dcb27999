//! Shared by this crate's integration tests: `process` factories whose runtime is
//! `whirl-container-process`'s test-support binary `whirl-process-host`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use whirl_container_process::{ProcessFactory, ProcessFactoryConfig};

/// The path of `whirl-process-host`. Cargo builds a package's binaries only for that package's
/// own tests, so this builds it (a no-op when it is up to date) with the cargo that runs these
/// tests, into the same target directory, with the features this test graph gives its
/// dependencies (so nothing else is rebuilt).
pub fn process_host() -> PathBuf {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--offline",
            "--message-format=json",
            "--package",
            "whirl-container-process",
            "--features",
            "test-host,whirl-spi/conformance",
            "--bin",
            "whirl-process-host",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo to build whirl-process-host");
        assert!(out.status.success(), "building whirl-process-host failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "whirl-process-host"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reports the whirl-process-host executable")
    })
    .clone()
}

/// A `process` factory with its containers in `<dir>/containers`, for invoker `test-<pid>-<name>`
/// (the id shape whose leftovers `whirl-container-process`'s tests sweep after a crashed run).
pub fn factory(dir: &Path, name: &str) -> ProcessFactory {
    ProcessFactory::new(ProcessFactoryConfig {
        root_dir: dir.join("containers"),
        runtime_command: vec![process_host().to_string_lossy().into_owned()],
        invoker_id: format!("test-{}-{name}", std::process::id()),
        ..Default::default()
    })
    .expect("valid config")
}
