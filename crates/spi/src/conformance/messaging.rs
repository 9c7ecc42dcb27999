//! Conformance suite: messaging SPI.
//!
//! [`messaging`] exercises every rule documented in [`crate::messaging`] through the trait alone.
//! Topics and groups carry a unique prefix per run, so the suite can run against a shared server.
//! Waits are bounded but generous (a networked backend may need a moment to redeliver).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::messaging::{Consumer, Delivery, Messaging};

/// How long the suite waits for messages it expects before declaring them lost.
const PATIENCE: Duration = Duration::from_secs(10);
/// The timeout of a peek that is expected to find nothing.
const SHORT: Duration = Duration::from_millis(100);

/// A prefix unique to this process and call, for topic, group and namespace names.
pub(crate) fn unique_prefix(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "conf-{what}-{}-{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn msg(i: usize) -> Bytes {
    Bytes::from(format!("message-{i}"))
}

/// Peeks until `n` deliveries arrived (acknowledging none), or panics naming `rule` after
/// [`PATIENCE`].
async fn collect(c: &mut dyn Consumer, n: usize, rule: &str) -> Vec<Delivery> {
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{rule}: expected {n} messages, got {} before giving up",
            out.len()
        );
        let got = c
            .peek(left.min(Duration::from_secs(1)))
            .await
            .expect("peek failed");
        out.extend(got);
    }
    assert_eq!(
        out.len(),
        n,
        "{rule}: got more messages than were published"
    );
    out
}

async fn expect_nothing(c: &mut dyn Consumer, rule: &str) {
    let got = c.peek(SHORT).await.expect("peek failed");
    assert!(
        got.is_empty(),
        "{rule}: got {} unexpected message(s): {:?}",
        got.len(),
        payloads(&got)
    );
}

fn payloads(d: &[Delivery]) -> Vec<Bytes> {
    d.iter().map(|d| d.payload.clone()).collect()
}

/// Runs the whole messaging suite against `m`. Panics name the rule broken.
pub async fn messaging(m: &dyn Messaging) {
    assert!(
        !m.name().is_empty(),
        "name: the type name must not be empty"
    );
    fan_out_and_order(m).await;
    late_group_sees_only_later_messages(m).await;
    group_members_share(m).await;
    max_peek_back_pressure(m).await;
    window_follows_set_max_peek(m).await;
    redelivery_after_drop(m).await;
    acknowledged_not_redelivered(m).await;
    peek_timeout_and_wakeup(m).await;
    topics_are_isolated(m).await;
}

async fn fan_out_and_order(m: &dyn Messaging) {
    let topic = unique_prefix("fanout");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    m.ensure_topic(&topic)
        .await
        .expect("ensure_topic must be idempotent");
    let mut a = m.consumer(&topic, "group-a", 100).await.expect("consumer");
    let mut b = m.consumer(&topic, "group-b", 100).await.expect("consumer");
    let p = m.producer();
    for i in 0..20 {
        p.send(&topic, msg(i)).await.expect("send failed");
    }
    let want: Vec<Bytes> = (0..20).map(msg).collect();
    for (label, c) in [("group-a", &mut a), ("group-b", &mut b)] {
        let got = collect(c.as_mut(), 20, "fan-out: every group sees every message").await;
        assert_eq!(
            payloads(&got),
            want,
            "ordering: {label} must receive messages in publish order, intact"
        );
        assert!(
            got.iter().all(|d| !d.redelivered),
            "redelivered: first deliveries must not be marked redelivered"
        );
        let ids: HashSet<u64> = got.iter().map(|d| d.id).collect();
        assert_eq!(
            ids.len(),
            got.len(),
            "delivery ids must be unique per consumer"
        );
        for d in &got {
            c.ack(d.id).await.expect("ack failed");
        }
        expect_nothing(c.as_mut(), "fan-out: a group gets each message once").await;
    }
}

async fn late_group_sees_only_later_messages(m: &dyn Messaging) {
    let topic = unique_prefix("late");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    let mut early = m.consumer(&topic, "early", 100).await.expect("consumer");
    let p = m.producer();
    p.send(&topic, msg(0)).await.expect("send failed");
    let mut late = m.consumer(&topic, "late", 100).await.expect("consumer");
    p.send(&topic, msg(1)).await.expect("send failed");
    let got = collect(
        early.as_mut(),
        2,
        "fan-out: an existing group sees every message",
    )
    .await;
    assert_eq!(
        payloads(&got),
        vec![msg(0), msg(1)],
        "ordering: early group"
    );
    let got = collect(
        late.as_mut(),
        1,
        "a new group sees messages published after it subscribed",
    )
    .await;
    assert_eq!(
        payloads(&got),
        vec![msg(1)],
        "a new group must not see messages published before its first consumer subscribed"
    );
    expect_nothing(late.as_mut(), "a new group sees only later messages").await;
}

async fn group_members_share(m: &dyn Messaging) {
    let topic = unique_prefix("share");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    let mut c1 = m.consumer(&topic, "workers", 5).await.expect("consumer");
    let mut c2 = m.consumer(&topic, "workers", 5).await.expect("consumer");
    let p = m.producer();
    let n = 30;
    for i in 0..n {
        p.send(&topic, msg(i)).await.expect("send failed");
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < n {
        assert!(
            Instant::now() < deadline,
            "group sharing: only {} of {n} messages reached the group",
            seen.len()
        );
        for c in [&mut c1, &mut c2] {
            let got = c
                .peek(Duration::from_millis(50))
                .await
                .expect("peek failed");
            assert!(
                got.len() <= 5,
                "max_peek: a consumer got {} messages with max_peek 5",
                got.len()
            );
            for d in got {
                seen.push(d.payload.clone());
                c.ack(d.id).await.expect("ack failed");
            }
        }
    }
    let distinct: HashSet<Bytes> = seen.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        n,
        "group sharing: each message goes to exactly one member (duplicates seen)"
    );
    assert_eq!(
        seen.len(),
        n,
        "group sharing: each message goes to exactly one member"
    );
    expect_nothing(
        c1.as_mut(),
        "group sharing: nothing left after all were acknowledged",
    )
    .await;
    expect_nothing(
        c2.as_mut(),
        "group sharing: nothing left after all were acknowledged",
    )
    .await;
}

/// A consumer that acknowledges on start and lowers its window by the work in progress (the
/// invoker's feed) holds no more than the window it set.
async fn window_follows_set_max_peek(m: &dyn Messaging) {
    let topic = unique_prefix("window");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    let mut c = m.consumer(&topic, "g", 3).await.expect("consumer");
    let p = m.producer();
    for i in 0..6 {
        p.send(&topic, msg(i)).await.expect("send failed");
    }
    let first = collect(c.as_mut(), 3, "set_max_peek: the initial window").await;
    for d in &first {
        c.ack(d.id).await.expect("ack failed");
    }
    // Three messages are acknowledged but still "running": the window is 0.
    c.set_max_peek(0);
    expect_nothing(c.as_mut(), "set_max_peek(0): nothing more is handed out").await;
    c.set_max_peek(1);
    let one = collect(c.as_mut(), 1, "set_max_peek(1): one more").await;
    assert_eq!(payloads(&one), vec![msg(3)], "ordering under set_max_peek");
    expect_nothing(c.as_mut(), "set_max_peek(1): exactly one more").await;
    c.ack(one[0].id).await.expect("ack failed");
    c.set_max_peek(3);
    let rest = collect(c.as_mut(), 2, "set_max_peek(3): the rest").await;
    assert_eq!(
        payloads(&rest),
        vec![msg(4), msg(5)],
        "ordering under set_max_peek"
    );
    for d in rest {
        c.ack(d.id).await.expect("ack failed");
    }
}

async fn max_peek_back_pressure(m: &dyn Messaging) {
    let topic = unique_prefix("peek");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    let mut c = m.consumer(&topic, "g", 2).await.expect("consumer");
    let p = m.producer();
    for i in 0..5 {
        p.send(&topic, msg(i)).await.expect("send failed");
    }
    let first = collect(
        c.as_mut(),
        2,
        "max_peek: a consumer may hold max_peek messages",
    )
    .await;
    assert_eq!(
        payloads(&first),
        vec![msg(0), msg(1)],
        "ordering under max_peek"
    );
    expect_nothing(
        c.as_mut(),
        "max_peek: no more than max_peek unacknowledged deliveries",
    )
    .await;
    c.ack(first[0].id).await.expect("ack failed");
    let next = collect(c.as_mut(), 1, "max_peek: an ack frees one slot").await;
    assert_eq!(payloads(&next), vec![msg(2)], "ordering under max_peek");
    expect_nothing(c.as_mut(), "max_peek: one ack frees exactly one slot").await;
    c.ack(first[1].id).await.expect("ack failed");
    c.ack(next[0].id).await.expect("ack failed");
    let rest = collect(c.as_mut(), 2, "max_peek: acks free slots").await;
    assert_eq!(
        payloads(&rest),
        vec![msg(3), msg(4)],
        "ordering under max_peek"
    );
    for d in rest {
        c.ack(d.id).await.expect("ack failed");
    }
}

async fn redelivery_after_drop(m: &dyn Messaging) {
    let topic = unique_prefix("redeliver");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    let mut a = m.consumer(&topic, "g", 3).await.expect("consumer");
    let p = m.producer();
    for i in 0..5 {
        p.send(&topic, msg(i)).await.expect("send failed");
    }
    let got = collect(a.as_mut(), 3, "redelivery setup").await;
    assert_eq!(payloads(&got), vec![msg(0), msg(1), msg(2)], "ordering");
    a.ack(got[0].id).await.expect("ack failed");
    drop(a);
    let mut b = m.consumer(&topic, "g", 10).await.expect("consumer");
    let got = collect(
        b.as_mut(),
        4,
        "redelivery: a dropped consumer's unacknowledged messages go to another",
    )
    .await;
    let mut got_payloads = payloads(&got);
    let redelivered: Vec<Bytes> = got
        .iter()
        .filter(|d| d.redelivered)
        .map(|d| d.payload.clone())
        .collect();
    assert_eq!(
        redelivered,
        vec![msg(1), msg(2)],
        "redelivery: exactly the unacknowledged messages are marked redelivered, in order"
    );
    got_payloads.sort();
    assert_eq!(
        got_payloads,
        vec![msg(1), msg(2), msg(3), msg(4)],
        "redelivery: an acknowledged message must not come back; the others must all arrive"
    );
    let fresh: Vec<Bytes> = got
        .iter()
        .filter(|d| !d.redelivered)
        .map(|d| d.payload.clone())
        .collect();
    assert_eq!(
        fresh,
        vec![msg(3), msg(4)],
        "ordering: messages after the redeliveries stay in order"
    );
    for d in got {
        b.ack(d.id).await.expect("ack failed");
    }
    expect_nothing(
        b.as_mut(),
        "redelivery: nothing is delivered twice after acknowledgement",
    )
    .await;
}

async fn acknowledged_not_redelivered(m: &dyn Messaging) {
    let topic = unique_prefix("acked");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    let mut a = m.consumer(&topic, "g", 10).await.expect("consumer");
    let p = m.producer();
    for i in 0..3 {
        p.send(&topic, msg(i)).await.expect("send failed");
    }
    for d in collect(a.as_mut(), 3, "ack setup").await {
        a.ack(d.id).await.expect("ack failed");
    }
    drop(a);
    let mut b = m.consumer(&topic, "g", 10).await.expect("consumer");
    expect_nothing(
        b.as_mut(),
        "ack: acknowledged messages are not delivered again after a drop",
    )
    .await;
}

async fn peek_timeout_and_wakeup(m: &dyn Messaging) {
    let topic = unique_prefix("timeout");
    m.ensure_topic(&topic).await.expect("ensure_topic failed");
    let mut c = m.consumer(&topic, "g", 10).await.expect("consumer");
    let t = Instant::now();
    let got = c
        .peek(Duration::from_millis(200))
        .await
        .expect("peek failed");
    let waited = t.elapsed();
    assert!(
        got.is_empty(),
        "peek timeout: an empty topic yields nothing"
    );
    assert!(
        waited >= Duration::from_millis(150),
        "peek timeout: peek must wait for messages (returned after {waited:?})"
    );
    assert!(
        waited < Duration::from_secs(5),
        "peek timeout: peek must return by its timeout (took {waited:?})"
    );

    // A peek that is waiting must wake up when a message arrives, well before its timeout.
    let p = m.producer();
    let t = Instant::now();
    let (got, sent) = tokio::join!(c.peek(Duration::from_secs(8)), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        p.send(&topic, msg(7)).await
    });
    sent.expect("send failed");
    let got = got.expect("peek failed");
    assert_eq!(
        payloads(&got),
        vec![msg(7)],
        "peek wake-up: a waiting peek receives a message published meanwhile"
    );
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "peek wake-up: peek must return when a message arrives"
    );
}

async fn topics_are_isolated(m: &dyn Messaging) {
    let t1 = unique_prefix("iso1");
    let t2 = unique_prefix("iso2");
    m.ensure_topic(&t1).await.expect("ensure_topic failed");
    m.ensure_topic(&t2).await.expect("ensure_topic failed");
    let mut c1 = m.consumer(&t1, "g", 10).await.expect("consumer");
    let mut c2 = m.consumer(&t2, "g", 10).await.expect("consumer");
    m.producer().send(&t1, msg(1)).await.expect("send failed");
    let got = collect(c1.as_mut(), 1, "topics: a message reaches its topic").await;
    assert_eq!(payloads(&got), vec![msg(1)], "topics: payload intact");
    expect_nothing(
        c2.as_mut(),
        "topics: a message does not leak to another topic (same group name)",
    )
    .await;
}
