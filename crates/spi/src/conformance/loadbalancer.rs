//! Conformance suite: load-balancer SPI.
//!
//! [`load_balancer`] drives a balancer through the trait alone, with a real action behind it
//! (build one with [`sleeping_action`]), and reads the records from the activation store the
//! balancer's invokers write to. It checks:
//!
//! * `name()` is not empty, `cluster_size()` is at least 1, and `invoker_health()` lists at least
//!   one healthy invoker;
//! * a blocking activation: `publish` returns a future that resolves to the finished activation,
//!   with the id of the message, the invoking namespace, the action's result and a
//!   `loadBalancer` annotation naming the balancer; exactly one record with that id is stored
//!   (within [`RECORD_WITHIN`]), with the same outcome and annotation;
//! * an activation whose future is dropped at once (a non-blocking invoke), and one whose future
//!   is dropped while it runs (a blocking caller that stops waiting): each still runs to
//!   completion and ends in exactly one stored record (the [`ActivationFuture`] rule);
//! * the active counts: right after two activations are published, and while they run,
//!   `active_activations_for` their namespace and `total_active_activations` both count them
//!   (another namespace counts none), and once they have completed both are back to 0 (within
//!   [`RECORD_WITHIN`]).
//!
//! The balancer must serve nothing else while the suite runs (the counts are compared exactly).
//! Every panic names the rule that was broken; panics that name a setup step are the action's or
//! the store's fault, not the balancer's.
//!
//! [`ActivationFuture`]: crate::loadbalancer::ActivationFuture

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use whirl_model::manifest::{Launcher, RuntimeKind};
use whirl_model::{
    Action, ActionLimits, Activation, ActivationId, ActivationMessage, Exec, Identity, StatusCode,
};

use crate::loadbalancer::{ActivationFuture, HealthStatus, LoadBalancer};
use crate::store::{ActivationQuery, ActivationStore};

/// How long an activation may take to complete (a cold container, a busy CI).
pub const PATIENCE: Duration = Duration::from_secs(60);
/// How long after an activation completed (or its future was dropped) its record, and the
/// balancer's counts, may take to show it.
pub const RECORD_WITHIN: Duration = Duration::from_secs(60);
/// How long the activations the suite watches run, so their counts can be observed.
pub const SLEEP_MS: u64 = 1500;

/// An action that fits the suite, for a runtime kind with a python, node or native launcher: it
/// sleeps `sleep_ms` milliseconds (from its parameters; 0 if absent) and returns
/// `{"tag": <its tag parameter>, "slept": <sleep_ms>}`. Any action that does the same will do.
pub fn sleeping_action(namespace: &str, name: &str, kind: &RuntimeKind) -> Action {
    let code = match kind.launcher {
        Launcher::Python => "import time\n\n\
                             def main(args):\n    \
                                 ms = args.get('sleep_ms', 0)\n    \
                                 time.sleep(ms / 1000.0)\n    \
                                 return {'tag': args.get('tag', ''), 'slept': ms}\n"
            .to_string(),
        Launcher::Node => "function main(args) {\n  \
                             const ms = args.sleep_ms || 0;\n  \
                             return new Promise(resolve =>\n    \
                               setTimeout(() => resolve({tag: args.tag || '', slept: ms}), ms));\n\
                           }\n"
            .to_string(),
        Launcher::Native => "#!/bin/sh\n\
                             while read -r line; do\n  \
                               tag=$(printf '%s' \"$line\" | sed -n 's/.*\"tag\": *\"\\([^\"]*\\)\".*/\\1/p')\n  \
                               ms=$(printf '%s' \"$line\" | sed -n 's/.*\"sleep_ms\": *\\([0-9]*\\).*/\\1/p')\n  \
                               ms=${ms:-0}\n  \
                               sleep \"$((ms / 1000)).$(printf '%03d' $((ms % 1000)))\"\n  \
                               printf '{\"tag\":\"%s\",\"slept\":%s}\\n' \"$tag\" \"$ms\" >&3\n\
                             done\n"
            .to_string(),
    };
    Action {
        namespace: namespace.to_string(),
        name: name.to_string(),
        version: "0.0.1".into(),
        publish: false,
        exec: Exec::Code {
            kind: kind.kind.clone(),
            code,
            binary: false,
            main: Some("main".into()),
        },
        annotations: Default::default(),
        parameters: Default::default(),
        limits: ActionLimits {
            timeout: 60_000,
            memory: 256,
            logs: 10,
            concurrency: 1,
        },
        updated: whirl_model::time::now_ms(),
    }
}

/// The message the controller would hand over for one activation of `action` by `identity`.
fn message(
    action: &Action,
    identity: &Identity,
    blocking: bool,
    tag: &str,
    sleep_ms: u64,
) -> ActivationMessage {
    let activation_id = ActivationId::generate();
    ActivationMessage {
        version: whirl_model::message::MESSAGE_VERSION,
        transid: format!("conformance-{activation_id}"),
        action: action.fully_qualified_name(),
        revision: 1,
        user: identity.clone(),
        activation_id,
        root_controller: "conformance".into(),
        blocking,
        content: Some(json!({"tag": tag, "sleep_ms": sleep_ms})),
        init_args: Vec::new(),
        cause: None,
        received_at_ms: whirl_model::time::now_ms(),
        load_balancer: String::new(),
        extra_annotations: Vec::new(),
        trace_context: Default::default(),
    }
}

/// The suite's view of one run: what it needs to check and the balancer under test.
struct Suite<'a> {
    lb: &'a dyn LoadBalancer,
    action: Arc<Action>,
    identity: Identity,
    activations: &'a dyn ActivationStore,
}

impl Suite<'_> {
    fn namespace(&self) -> &str {
        self.identity.namespace.as_str()
    }

    async fn publish(&self, msg: &ActivationMessage) -> ActivationFuture {
        self.lb
            .publish(self.action.clone(), msg.clone())
            .await
            .unwrap_or_else(|e| {
                panic!("rule: publish() to a balancer with a healthy invoker succeeds; got {e}")
            })
    }

    /// Checks an activation (returned or stored) of `msg`: its id, namespace, outcome and the
    /// balancer's annotation.
    fn check_activation(&self, a: &Activation, msg: &ActivationMessage, what: &str) {
        assert_eq!(
            a.activation_id, msg.activation_id,
            "rule: {what} has the id of the published message"
        );
        assert_eq!(
            a.namespace,
            self.namespace(),
            "rule: {what} belongs to the invoking namespace"
        );
        let content = msg.content.as_ref().unwrap_or(&Value::Null);
        let want = json!({"tag": content["tag"], "slept": content["sleep_ms"]});
        assert!(
            a.response.status == StatusCode::Success && a.response.result.as_ref() == Some(&want),
            "rule: {what} ran to completion with the action's result {want}; got {:?}",
            a.response
        );
        assert_eq!(
            a.annotations.get("loadBalancer"),
            Some(&Value::String(self.lb.name().to_string())),
            "rule: {what} has a loadBalancer annotation naming the balancer; got {:?}",
            a.annotations
        );
    }

    /// Waits for the record of `msg`, checks it, and that it is the only one with its id.
    async fn stored(&self, msg: &ActivationMessage, what: &str) -> Activation {
        let ns = self.namespace().to_string();
        let id = msg.activation_id;
        let deadline = Instant::now() + RECORD_WITHIN;
        let record = loop {
            let found = self
                .activations
                .get(&ns, &id)
                .await
                .unwrap_or_else(|e| panic!("setup: reading the activation store: {e}"));
            if let Some(r) = found {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "rule: {what} ends in a stored record within {RECORD_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.check_activation(&record, msg, &format!("the stored record of {what}"));
        let listed = self
            .activations
            .list(&ActivationQuery {
                namespace: ns,
                name: Some(self.action.name.clone()),
                since: Some(record.start),
                upto: Some(record.start),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("setup: listing the activation store: {e}"));
        let copies = listed.iter().filter(|a| a.activation_id == id).count();
        assert_eq!(
            copies, 1,
            "rule: {what} ends in exactly one stored record; found {copies}"
        );
        record
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.lb.active_activations_for(self.namespace()),
            self.lb.total_active_activations(),
        )
    }

    async fn wait_idle(&self, rule: &str) {
        let deadline = Instant::now() + RECORD_WITHIN;
        while self.counts() != (0, 0) {
            assert!(
                Instant::now() < deadline,
                "rule: {rule} (namespace, total) = {:?} after {RECORD_WITHIN:?}",
                self.counts()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs the load-balancer suite against `lb`, which runs `action` (see [`sleeping_action`]; its
/// kind must be one the balancer's invokers serve) for `identity`, and whose invokers store the
/// records in `activations`. The balancer must serve nothing else meanwhile. Panics naming the
/// broken rule.
pub async fn load_balancer(
    lb: &dyn LoadBalancer,
    action: Arc<Action>,
    identity: Identity,
    activations: &dyn ActivationStore,
) {
    let s = Suite {
        lb,
        action,
        identity,
        activations,
    };
    assert!(!lb.name().is_empty(), "rule: a balancer has a name");
    assert!(lb.cluster_size() >= 1, "rule: cluster_size() is at least 1");
    let health = lb.invoker_health().await;
    assert!(
        health
            .iter()
            .any(|h| h.status == HealthStatus::Healthy && !h.id.is_empty()),
        "rule: invoker_health() lists at least one healthy invoker; got {health:?}"
    );
    assert_eq!(
        s.counts(),
        (0, 0),
        "rule: an idle balancer counts no active activations"
    );

    // A blocking activation.
    let msg = message(&s.action, &s.identity, true, "blocking", 0);
    let fut = s.publish(&msg).await;
    let activation = tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("rule: the future of an activation resolves once it completed"))
        .unwrap_or_else(|e| panic!("rule: the future of a completed activation is Ok; got {e}"));
    s.check_activation(&activation, &msg, "the activation a future resolves to");
    let record = s.stored(&msg, "a blocking activation").await;
    assert_eq!(
        (&record.response, &record.logs),
        (&activation.response, &activation.logs),
        "rule: the future resolves to the activation as recorded"
    );
    s.wait_idle("after an activation completed, the active counts are back to 0")
        .await;

    // Dropped at once: still runs to its record.
    let msg = message(&s.action, &s.identity, false, "dropped", 0);
    drop(s.publish(&msg).await);
    s.stored(&msg, "an activation whose future was dropped at once")
        .await;

    // Dropped while running: still runs to its record.
    let msg = message(&s.action, &s.identity, true, "walked-away", SLEEP_MS);
    let fut = s.publish(&msg).await;
    let waited = tokio::time::timeout(Duration::from_millis(SLEEP_MS / 5), fut).await;
    assert!(
        waited.is_err(),
        "setup: an activation that sleeps {SLEEP_MS} ms is still running after {} ms",
        SLEEP_MS / 5
    );
    s.stored(
        &msg,
        "an activation whose future was dropped while it was running",
    )
    .await;
    s.wait_idle("after dropped activations completed, the active counts are back to 0")
        .await;

    // Counts while two activations run.
    let msgs = [
        message(&s.action, &s.identity, true, "counted-1", SLEEP_MS),
        message(&s.action, &s.identity, true, "counted-2", SLEEP_MS),
    ];
    let mut tasks = Vec::new();
    for msg in &msgs {
        let fut = s.publish(msg).await;
        tasks.push(tokio::spawn(fut));
    }
    assert_eq!(
        s.counts(),
        (2, 2),
        "rule: published activations count as active (namespace, total) at once"
    );
    let other = format!("{}-other", s.namespace());
    assert_eq!(
        lb.active_activations_for(&other),
        0,
        "rule: active_activations_for counts only the namespace's own activations"
    );
    tokio::time::sleep(Duration::from_millis(SLEEP_MS / 3)).await;
    if tasks.iter().all(|t| !t.is_finished()) {
        assert_eq!(
            s.counts(),
            (2, 2),
            "rule: running activations count as active (namespace, total)"
        );
    }
    for (task, msg) in tasks.into_iter().zip(&msgs) {
        let activation = tokio::time::timeout(PATIENCE, task)
            .await
            .unwrap_or_else(|_| {
                panic!("rule: the future of an activation resolves once it completed")
            })
            .expect("setup: the task awaiting an activation")
            .unwrap_or_else(|e| {
                panic!("rule: the future of a completed activation is Ok; got {e}")
            });
        s.check_activation(&activation, msg, "the activation a future resolves to");
    }
    s.wait_idle("after the activations completed, the active counts are back to 0")
        .await;
    for msg in &msgs {
        s.stored(msg, "an activation counted while running").await;
    }
}
