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
use whirl_lb_sharding::{ShardingBalancer, ShardingBalancerConfig, ShardingDeps};
use whirl_spi::conformance::loadbalancer::{load_balancer, sleeping_action};
use whirl_spi::{Collection, EntityStore, HealthStatus, LoadBalancer, Messaging, PutMode};

async fn sharding_over(messaging: Arc<dyn Messaging>, tag: &str) {
    let dir = tempfile::Builder::new()
        .prefix("wlbs")
        .tempdir()
        .expect("tempdir");
    let common::PythonInvoker {
        store,
        python,
        invoker,
    } = common::python_invoker(
        dir.path(),
        format!("shard{}{tag}", std::process::id()),
        &format!("lb-sharding-{tag}"),
    )
    .await;
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
    let identity = common::identity("5a6b1c2d-0000-4000-8000-000000000002");
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
