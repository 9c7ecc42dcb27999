//! The load-balancer SPI's conformance suite against a real `lean` balancer: its invoker runs
//! python actions in sandboxed containers of the `process` factory, collects their logs with the
//! `activation` log store and writes records to a SQLite store in a temporary directory.

mod common;

use std::sync::Arc;

use whirl_lb_lean::LeanBalancer;
use whirl_spi::conformance::loadbalancer::{load_balancer, sleeping_action};
use whirl_spi::LoadBalancer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_with_python() {
    let dir = tempfile::Builder::new()
        .prefix("wlbl")
        .tempdir()
        .expect("tempdir");
    let common::PythonInvoker {
        store,
        python,
        invoker,
    } = common::python_invoker(dir.path(), format!("lean{}", std::process::id()), "lb-lean").await;
    let lb = LeanBalancer::new("lean-conformance", invoker);

    let identity = common::identity("5a6b1c2d-0000-4000-8000-000000000001");
    let action = Arc::new(sleeping_action("conformance", "sleeper", &python));
    load_balancer(&lb, action, identity, store.as_ref()).await;
    lb.shutdown().await;
}
