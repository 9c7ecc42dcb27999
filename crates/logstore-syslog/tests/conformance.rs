//! The log-store SPI's conformance suite against the `syslog` store: real containers of the
//! `docker` factory logging through Docker's syslog driver into the real rsyslog that
//! `scripts/services` starts (WHIRL_TEST_SYSLOG_ADDR, WHIRL_TEST_SYSLOG_DIR; without them these
//! tests fail, naming them).

#[path = "../../container-docker/tests/common/mod.rs"]
mod common;

use whirl_logstore_syslog::{SyslogLogStore, SyslogLogStoreConfig};
use whirl_model::manifest::Launcher;
use whirl_spi::conformance::logstore::log_store;
use whirl_spi::LogStore;

fn store() -> SyslogLogStore {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `eval \"$(scripts/services)\"` (it starts rsyslog)")
        })
    };
    SyslogLogStore::new(SyslogLogStoreConfig {
        address: var("WHIRL_TEST_SYSLOG_ADDR"),
        dir: var("WHIRL_TEST_SYSLOG_DIR").into(),
    })
}

async fn conformance(launcher: Launcher, name: &str) {
    let store = store();
    assert!(!store.collects_in_band());
    log_store(&store, &common::factory(name), common::kind(launcher)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python() {
    conformance(Launcher::Python, "syslog-python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node() {
    conformance(Launcher::Node, "syslog-node").await;
}
