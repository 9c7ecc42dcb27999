//! The load-balancer SPI's conformance suite against a real `sharding` balancer: a real invoker
//! (python actions in sandboxed `process` containers, SQLite records) fed over a real bus
//! through its topic, with pings, `Started` and `Completed` acknowledgements — once over the
//! `memory` messaging and once over a real NATS JetStream (`WHIRL_TEST_NATS_URL`, started by
//! `scripts/services`).

#[path = "../../lb-lean/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use whirl_invoker::feed::{Feed, FeedConfig, FeedDeps};
use whirl_invoker::{Invoker, InvokerConfig, InvokerDeps};
use whirl_lb_sharding::{ShardingBalancer, ShardingBalancerConfig, ShardingDeps};
use whirl_logstore_activation::ActivationLogStore;
use whirl_model::manifest::{Launcher, RuntimeKind, StemCell};
use whirl_model::{EntityName, Identity, RuntimeManifest};
use whirl_spi::conformance::loadbalancer::{load_balancer, sleeping_action};
use whirl_spi::{Collection, EntityStore, HealthStatus, LoadBalancer, Messaging, PutMode};
use whirl_store_sqlite::SqliteStore;

async fn sharding_over(messaging: Arc<dyn Messaging>, tag: &str) {
    let dir = tempfile::Builder::new()
        .prefix("wlbs")
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
            id: format!("shard{}{tag}", std::process::id()),
            ..InvokerConfig::default()
        },
        InvokerDeps {
            factory: Arc::new(common::factory(dir.path(), &format!("lb-sharding-{tag}"))),
            logs: Arc::new(ActivationLogStore),
            activations: store.clone(),
            manifest: Arc::new(manifest),
            max_payload_bytes: 1 << 20,
        },
    )
    .await
    .expect("start the invoker");
    let feed = Feed::start(
        invoker.clone(),
        FeedConfig {
            index: 0,
            max_peek: 8,
            ping_interval: Duration::from_millis(200),
            health_retention: Duration::from_secs(30),
        },
        FeedDeps {
            messaging: messaging.clone(),
            entities: store.clone(),
        },
    )
    .await
    .expect("start the feed");
    let lb = ShardingBalancer::start(
        "sharding-conformance",
        format!("conformance{tag}"),
        ShardingBalancerConfig {
            ping_interval_ms: 200,
            ..Default::default()
        },
        ShardingDeps {
            messaging,
            activations: store.clone(),
            entities: store.clone(),
        },
    )
    .await
    .expect("start the balancer");

    // The invoker reads the action from the entity store, as in a deployment.
    let action = Arc::new(sleeping_action("conformance", "sleeper", &python));
    store
        .put(
            Collection::Actions,
            "conformance",
            "sleeper",
            &serde_json::to_value(action.as_ref()).unwrap(),
            PutMode::Create,
        )
        .await
        .expect("store the action");

    // A new invoker is Unhealthy until its health test action comes back.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lb
        .invoker_health()
        .await
        .iter()
        .any(|h| h.status == HealthStatus::Healthy)
    {
        assert!(
            Instant::now() < deadline,
            "the invoker never became healthy: {:?}",
            lb.invoker_health().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The health test action's record is whisk.system's; the suite counts conformance's.
    let identity = Identity {
        subject: "conformance".into(),
        namespace: EntityName::new("conformance").expect("namespace"),
        uuid: "5a6b1c2d-0000-4000-8000-000000000002".into(),
        key: "conformance-key".into(),
        limits: Default::default(),
    };
    load_balancer(&lb, action, identity, store.as_ref()).await;
    lb.shutdown().await;
    feed.shutdown().await;
    invoker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharding_over_memory_messaging() {
    sharding_over(
        Arc::new(whirl_messaging_memory::MemoryMessaging::new()),
        "mem",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharding_over_nats() {
    let url = std::env::var("WHIRL_TEST_NATS_URL")
        .expect("WHIRL_TEST_NATS_URL is not set: run the tests through scripts/test");
    let mut cfg = whirl_messaging_nats::NatsMessagingConfig::new(url);
    cfg.prefix = format!("lbconf{}", std::process::id());
    let m = whirl_messaging_nats::NatsMessaging::connect(&cfg)
        .await
        .expect("connect to NATS");
    sharding_over(Arc::new(m), "nats").await;
}
