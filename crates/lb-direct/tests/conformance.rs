//! The load-balancer SPI's conformance suite against a real `direct` balancer: it leases
//! sandboxed containers of the `process` factory from an in-process invoker, runs python actions
//! in them straight from the balancer, collects their logs with the `activation` log store and
//! writes records to a SQLite store in a temporary directory.

// The `process` factory set-up is the lean balancer's test support, shared rather than copied.
#[path = "../../lb-lean/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use whirl_invoker::{Invoker, InvokerConfig, InvokerDeps};
use whirl_lb_direct::{DirectBalancer, DirectBalancerConfig};
use whirl_logstore_activation::ActivationLogStore;
use whirl_model::manifest::{Launcher, RuntimeKind, StemCell};
use whirl_model::{EntityName, Identity, RuntimeManifest};
use whirl_spi::conformance::loadbalancer::{load_balancer, sleeping_action};
use whirl_spi::LoadBalancer;
use whirl_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_with_python() {
    let dir = tempfile::Builder::new()
        .prefix("wlbd")
        .tempdir()
        .expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("whirl.db"))
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
            id: format!("direct{}", std::process::id()),
            ..InvokerConfig::default()
        },
        InvokerDeps {
            factory: Arc::new(common::factory(dir.path(), "lb-direct")),
            logs: Arc::new(ActivationLogStore),
            activations: store.clone(),
            manifest: Arc::new(manifest),
            max_payload_bytes: 1 << 20,
        },
    )
    .await
    .expect("start the invoker");
    let lb = DirectBalancer::new(
        "direct-conformance",
        invoker,
        store.clone(),
        DirectBalancerConfig::default(),
    );

    let identity = Identity {
        subject: "conformance".into(),
        namespace: EntityName::new("conformance").expect("namespace"),
        uuid: "5a6b1c2d-0000-4000-8000-000000000001".into(),
        key: "conformance-key".into(),
        limits: Default::default(),
    };
    let action = Arc::new(sleeping_action("conformance", "sleeper", &python));
    load_balancer(&lb, action, identity, store.as_ref()).await;
    lb.shutdown().await;
}
