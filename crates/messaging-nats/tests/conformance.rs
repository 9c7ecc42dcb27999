//! The messaging conformance suite and NATS-specific behaviour, against the real nats-server named
//! by `WHIRL_TEST_NATS_URL` (started by `scripts/services`). Each test uses a prefix unique to the
//! run and deletes its streams afterwards.

use std::time::Duration;

use bytes::Bytes;
use whirl_messaging_nats::{NatsMessaging, NatsMessagingConfig};
use whirl_spi::{Messaging, MessagingError};

/// The server URL; fails (never skips) when it is not set.
pub fn nats_url() -> String {
    std::env::var("WHIRL_TEST_NATS_URL").unwrap_or_else(|_| {
        panic!(
            "WHIRL_TEST_NATS_URL is not set: these tests need a real nats-server with JetStream; \
             run `eval \"$(scripts/services)\"` first"
        )
    })
}

fn unique_prefix(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("t{what}{}x{nanos:x}", std::process::id())
}

async fn connect(what: &str, ack_wait_ms: u64) -> NatsMessaging {
    let mut cfg = NatsMessagingConfig::new(nats_url());
    cfg.prefix = unique_prefix(what);
    cfg.ack_wait_ms = ack_wait_ms;
    NatsMessaging::connect(&cfg).await.expect("connect to NATS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let m = connect("conf", 30_000).await;
    whirl_spi::conformance::messaging::messaging(&m).await;
    m.delete_all_topics().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_signalling_loses_its_messages_after_ack_wait() {
    // Another process holding messages and then dying is modelled by a second connection whose
    // consumer is leaked (never dropped: no NAK) and whose keep-alive is stopped with the runtime.
    let m = connect("ackwait", 1_000).await;
    m.ensure_topic("t").await.unwrap();
    let mut alive = m.consumer("t", "g", 10).await.unwrap();
    // A long-held message is not redelivered while its member lives (in-progress signals).
    m.producer()
        .send("t", Bytes::from_static(b"long"))
        .await
        .unwrap();
    let got = alive.peek(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    let mut other = m.consumer("t", "g", 10).await.unwrap();
    let stolen = other.peek(Duration::from_millis(3_000)).await.unwrap();
    assert!(
        stolen.is_empty(),
        "a held message was redelivered while its member was alive"
    );
    alive.ack(got[0].id).await.unwrap();
    // Its pull request may still be open: gone, so the orphan below can reach no one but the
    // dying member first and `other` after ack_wait.
    drop(alive);

    // A member in a runtime that disappears without dropping it (like a killed process).
    let url_prefix = m.config().clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let m2 = NatsMessaging::connect(&url_prefix).await.unwrap();
            let mut dying = m2.consumer("t", "g", 10).await.unwrap();
            m2.producer()
                .send("t", Bytes::from_static(b"orphan"))
                .await
                .unwrap();
            let got = dying.peek(Duration::from_secs(5)).await.unwrap();
            assert_eq!(got.len(), 1);
            std::mem::forget(dying);
        });
        rt.shutdown_background();
    })
    .join()
    .unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.is_empty() && std::time::Instant::now() < deadline {
        got = other.peek(Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(
        got.len(),
        1,
        "the orphaned message is redelivered after ack_wait"
    );
    assert_eq!(got[0].payload, Bytes::from_static(b"orphan"));
    assert!(got[0].redelivered);
    other.ack(got[0].id).await.unwrap();
    m.delete_all_topics().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_is_refused() {
    let m = connect("large", 30_000).await;
    m.ensure_topic("t").await.unwrap();
    let err = m
        .producer()
        .send("t", Bytes::from(vec![0u8; 2 << 20]))
        .await
        .unwrap_err();
    assert!(matches!(err, MessagingError::TooLarge { .. }), "{err}");
    m.delete_all_topics().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_dots_and_spaces_are_topics_and_groups() {
    let m = connect("names", 30_000).await;
    m.ensure_topic("a.b c").await.unwrap();
    m.ensure_topic("a.b c").await.unwrap();
    let mut c = m.consumer("a.b c", "g.1 *", 3).await.unwrap();
    m.producer()
        .send("a.b c", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let got = c.peek(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    c.ack(got[0].id).await.unwrap();
    m.delete_all_topics().await.unwrap();
}
