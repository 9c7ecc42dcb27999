//! Shared by the load balancers' conformance tests (lb-lean, lb-direct and lb-sharding include
//! this file): `process` factories whose runtime is `whirl-container-process`'s test-support
//! binary `whirl-process-host`, and the invoker, store and identity the suites run with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use whirl_container_process::{ProcessFactory, ProcessFactoryConfig};
use whirl_invoker::{Invoker, InvokerConfig, InvokerDeps};
use whirl_logstore_activation::ActivationLogStore;
use whirl_model::manifest::{Launcher, RuntimeKind, StemCell};
use whirl_model::{EntityName, Identity, RuntimeManifest};
use whirl_store_sqlite::SqliteStore;

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

/// What a balancer's conformance suite runs on: a SQLite store, the `python:3` kind and an
/// invoker serving it.
pub struct PythonInvoker {
    pub store: Arc<SqliteStore>,
    pub python: RuntimeKind,
    pub invoker: Invoker,
}

/// Opens a SQLite store in `dir` and starts invoker `id` over a `process` factory named
/// `factory_name`, serving `python:3` with one stem cell; records go to the store.
pub async fn python_invoker(dir: &Path, id: String, factory_name: &str) -> PythonInvoker {
    let store = Arc::new(
        SqliteStore::open(&dir.join("whirl.db"))
            .await
            .expect("open the SQLite store"),
    );
    let python = RuntimeKind {
        kind: "python:3".into(),
        default: true,
        deprecated: false,
        launcher: Launcher::Python,
        command: Some("/usr/bin/python3".into()),
        image: None,
        sentinelled_logs: true,
        concurrent: false,
        stem_cells: vec![StemCell {
            count: 1,
            memory: 256,
        }],
    };
    let manifest = RuntimeManifest {
        kinds: vec![python.clone()],
    };
    let invoker = Invoker::start(
        InvokerConfig {
            id,
            ..InvokerConfig::default()
        },
        InvokerDeps {
            factory: Arc::new(factory(dir, factory_name)),
            logs: Arc::new(ActivationLogStore),
            activations: store.clone(),
            manifest: Arc::new(manifest),
            max_payload_bytes: 1 << 20,
        },
    )
    .await
    .expect("start the invoker");
    PythonInvoker {
        store,
        python,
        invoker,
    }
}

/// The identity the suites invoke as, in namespace `conformance`, with uuid `uuid`.
pub fn identity(uuid: &str) -> Identity {
    Identity {
        subject: "conformance".into(),
        namespace: EntityName::new("conformance").expect("namespace"),
        uuid: uuid.into(),
        key: "conformance-key".into(),
        limits: Default::default(),
    }
}
