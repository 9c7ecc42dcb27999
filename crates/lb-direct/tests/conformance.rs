//! The load-balancer SPI's conformance suite against a real `direct` balancer: it leases
//! sandboxed containers of the `process` factory from an in-process invoker, runs python actions
//! in them straight from the balancer, collects their logs with the `activation` log store and
//! writes records to a SQLite store in a temporary directory.

// The `process` factory set-up is the lean balancer's test support, shared rather than copied.
#[path = "../../lb-lean/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use whirl_lb_direct::{DirectBalancer, DirectBalancerConfig};
use whirl_spi::conformance::loadbalancer::{load_balancer, sleeping_action};
use whirl_spi::LoadBalancer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_with_python() {
    let dir = tempfile::Builder::new()
        .prefix("wlbd")
        .tempdir()
        .expect("tempdir");
    let common::PythonInvoker {
        store,
        python,
        invoker,
    } = common::python_invoker(
        dir.path(),
        format!("direct{}", std::process::id()),
        "lb-direct",
    )
    .await;
    let lb = DirectBalancer::new(
        "direct-conformance",
        invoker,
        store.clone(),
        DirectBalancerConfig::default(),
    );

    let identity = common::identity("5a6b1c2d-0000-4000-8000-000000000001");
    let action = Arc::new(sleeping_action("conformance", "sleeper", &python));
    load_balancer(&lb, action, identity, store.as_ref()).await;
    lb.shutdown().await;
}
