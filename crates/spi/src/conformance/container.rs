//! Conformance suite: container SPI.
//!
//! [`container_factory`] drives a factory through the traits alone, and talks to its containers
//! the way the invoker does, over OpenWhisk's runtime protocol with `whirl-runtime-client`:
//! create → `/init` + `/run` of a small action → the action's stdout and stderr lines come back
//! from `logs`, framed by the sentinels → suspend (a `/run` does not complete while frozen) →
//! resume (it completes) → destroy (the endpoint is gone; destroying again is fine) → cleanup
//! (destroys what is left). Every panic names the rule that was broken.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use whirl_model::manifest::{Launcher, RuntimeKind};
use whirl_model::Endpoint;
use whirl_runtime_client::{RunPayload, RuntimeClient};

use crate::container::{Container, ContainerFactory, ContainerSpec, LogStream};

/// How long the suite waits for a container to boot and answer (a cold interpreter, a busy CI).
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a `/run` against a suspended container must stay unanswered.
const FROZEN_FOR: Duration = Duration::from_millis(500);

/// An action the suite runs: what `/init` gets, and what each `/run` of it prints and returns.
#[derive(Debug, Clone)]
pub struct TestAction {
    /// The `value` of the `/init` body.
    pub init: Value,
    /// A line each `/run` prints on stdout.
    pub stdout: String,
    /// A line each `/run` prints on stderr.
    pub stderr: String,
    /// What each `/run` returns.
    pub result: Value,
}

impl TestAction {
    /// The suite's own action for a launcher: prints one line on each stream and returns
    /// `{"conformance": "ok"}` (python and node source; a `/bin/sh` actionloop script for native).
    pub fn for_launcher(launcher: Launcher) -> TestAction {
        let code = match launcher {
            Launcher::Python => "import sys\n\ndef main(args):\n    print('conformance stdout')\n    \
                                 print('conformance stderr', file=sys.stderr)\n    \
                                 return {'conformance': 'ok'}\n"
                .to_string(),
            Launcher::Node => "function main(args) {\n  console.log('conformance stdout');\n  \
                               console.error('conformance stderr');\n  return {conformance: 'ok'};\n}\n"
                .to_string(),
            Launcher::Native => "#!/bin/sh\nwhile read -r line; do\n  echo 'conformance stdout'\n  \
                                 echo 'conformance stderr' >&2\n  echo '{\"conformance\":\"ok\"}' >&3\ndone\n"
                .to_string(),
        };
        TestAction {
            init: json!({"name": "conformance", "main": "main", "code": code, "binary": false, "env": {}}),
            stdout: "conformance stdout".into(),
            stderr: "conformance stderr".into(),
            result: json!({"conformance": "ok"}),
        }
    }
}

fn client_for(container: &dyn Container) -> RuntimeClient {
    let endpoint = match container.endpoint() {
        Endpoint::Unix(p) => whirl_runtime_client::Endpoint::Unix(p.clone()),
        Endpoint::Tcp(a) => whirl_runtime_client::Endpoint::Tcp(*a),
    };
    RuntimeClient::new(endpoint)
}

fn spec(name: &str, kind: &RuntimeKind) -> ContainerSpec {
    ContainerSpec {
        name: name.to_string(),
        kind: kind.clone(),
        image: None,
        memory_mb: 256,
        cpu_shares: 256,
        env: vec![("__OW_API_HOST".into(), "http://127.0.0.1:3233".into())],
        parameters: Default::default(),
    }
}

async fn run(client: &RuntimeClient, n: u32) -> whirl_runtime_client::RunResult {
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
        + PATIENCE.as_millis() as u64;
    let activation_id = format!("{n:032x}");
    let body = RunPayload {
        value: &json!({"n": n}),
        namespace: "guest",
        action_name: "/guest/conformance",
        action_version: "0.0.1",
        activation_id: &activation_id,
        transaction_id: "conformance",
        deadline,
        api_key: None,
    };
    client.run(&body, PATIENCE, 1 << 20).await
}

/// Runs the action once and checks the result and the logs it left.
async fn run_and_check_logs(
    container: &dyn Container,
    client: &RuntimeClient,
    action: &TestAction,
    n: u32,
) {
    let before = SystemTime::now();
    let outcome = run(client, n).await;
    assert!(
        outcome.response.is_success(),
        "rule: a /run of a healthy container succeeds; got {:?}",
        outcome.response
    );
    assert_eq!(
        outcome.response.result.as_ref(),
        Some(&action.result),
        "rule: /run returns the action's result"
    );
    let logs = container
        .logs(1 << 20, true, PATIENCE)
        .await
        .expect("rule: logs() of a live container succeeds");
    assert!(
        logs.complete,
        "rule: logs(wait_for_sentinel) sees both sentinels after a /run; got {logs:?}"
    );
    assert!(
        !logs.truncated,
        "rule: logs under the limit are not truncated; got {logs:?}"
    );
    let has = |stream: LogStream, text: &str| {
        logs.lines
            .iter()
            .any(|l| l.stream == stream && l.message == text)
    };
    assert!(
        has(LogStream::Stdout, &action.stdout),
        "rule: logs hold the action's stdout line; got {logs:?}"
    );
    assert!(
        has(LogStream::Stderr, &action.stderr),
        "rule: logs hold the action's stderr line; got {logs:?}"
    );
    assert!(
        logs.lines
            .iter()
            .all(|l| !l.message.contains("XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX")),
        "rule: sentinels are removed from logs; got {logs:?}"
    );
    let slack = Duration::from_secs(1);
    assert!(
        logs.lines
            .iter()
            .all(|l| l.time + slack >= before && l.time <= SystemTime::now() + slack),
        "rule: log lines carry the time they were printed; got {logs:?}"
    );
}

/// Exercises `factory` through the container SPI with a runtime of `kind`, running `action`
/// (e.g. [`TestAction::for_launcher`]). Calls `init()` first and `cleanup()` last. Panics naming
/// the broken rule.
pub async fn container_factory(
    factory: &dyn ContainerFactory,
    kind: RuntimeKind,
    action: &TestAction,
) {
    factory.init().await.expect("rule: init() succeeds");
    let capacity = factory.capacity();
    assert!(
        capacity.max_containers >= 1 && capacity.user_memory_mb > 0,
        "rule: capacity() reports room for at least one container; got {capacity:?}"
    );

    let container = factory
        .create(spec("conformance_main", &kind))
        .await
        .expect("rule: create() succeeds");
    assert!(!container.id().is_empty(), "rule: a container has an id");
    let client = Arc::new(client_for(container.as_ref()));
    client.init(&action.init, PATIENCE).await.unwrap_or_else(|e| {
        panic!("rule: /init succeeds on a fresh container (the first /init waits for it to boot); got {e}")
    });
    run_and_check_logs(container.as_ref(), &client, action, 1).await;

    // Nothing left over: a collection right after returns nothing, immediately.
    let again = container
        .logs(1 << 20, false, Duration::ZERO)
        .await
        .expect("logs");
    assert!(
        again.lines.is_empty(),
        "rule: logs() returns only lines printed since the previous call; got {again:?}"
    );

    // The byte limit.
    assert!(
        run(&client, 2).await.response.is_success(),
        "rule: a second /run succeeds"
    );
    let limited = container.logs(4, true, PATIENCE).await.expect("logs");
    assert!(
        limited.truncated && limited.complete,
        "rule: logs over limit_bytes are truncated and still read to the sentinels; got {limited:?}"
    );
    assert!(
        limited.lines.iter().map(|l| l.message.len()).sum::<usize>() <= 4,
        "rule: truncated logs stay within limit_bytes; got {limited:?}"
    );
    // The discarded rest of that activation does not leak into the next collection.
    run_and_check_logs(container.as_ref(), &client, action, 3).await;

    // No sentinel coming: a wait ends at its timeout, incomplete.
    let waited = container
        .logs(1 << 20, true, Duration::from_millis(50))
        .await
        .expect("logs");
    assert!(
        !waited.complete,
        "rule: logs() without new sentinels is not complete after its timeout"
    );

    assert!(
        !container.out_of_memory().await,
        "rule: a container within its memory is not out of memory"
    );

    // Suspend: a /run does not complete while frozen; resume: it does.
    container.suspend().await.expect("rule: suspend() succeeds");
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { run(&client, 4).await })
    };
    tokio::time::sleep(FROZEN_FOR).await;
    assert!(
        !pending.is_finished(),
        "rule: a suspended container does not answer /run"
    );
    container.resume().await.expect("rule: resume() succeeds");
    let resumed = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("rule: a /run sent while suspended completes after resume()")
        .expect("run task");
    assert!(
        resumed.response.is_success(),
        "rule: a /run sent while suspended succeeds after resume(); got {resumed:?}"
    );
    let logs = container.logs(1 << 20, true, PATIENCE).await.expect("logs");
    assert!(
        logs.complete,
        "rule: logs of a run across suspend/resume are complete; got {logs:?}"
    );

    // Destroy.
    container.destroy().await.expect("rule: destroy() succeeds");
    container
        .destroy()
        .await
        .expect("rule: destroy() is idempotent");
    assert_endpoint_gone(container.as_ref()).await;

    // Cleanup destroys what is left.
    let leftover = factory
        .create(spec("conformance_left", &kind))
        .await
        .expect("rule: create() succeeds");
    let client = client_for(leftover.as_ref());
    client
        .init(&action.init, PATIENCE)
        .await
        .expect("rule: /init succeeds on a fresh container");
    factory.cleanup().await;
    assert_endpoint_gone(leftover.as_ref()).await;
    factory.cleanup().await; // safe twice
    leftover
        .destroy()
        .await
        .expect("rule: destroy() after cleanup() is harmless");
}

async fn assert_endpoint_gone(container: &dyn Container) {
    if let Endpoint::Unix(path) = container.endpoint() {
        assert!(
            !path.exists(),
            "rule: a destroyed container's socket is gone: {}",
            path.display()
        );
    }
    let fresh = client_for(container);
    let outcome = tokio::time::timeout(Duration::from_secs(5), run(&fresh, 99)).await;
    // A refused connection fails at once; an address that no longer exists (a removed Docker
    // container's IP) may just never answer, which is as good.
    assert!(
        match &outcome {
            Ok(r) => !r.response.is_success(),
            Err(_elapsed) => true,
        },
        "rule: a destroyed container does not answer /run; got {outcome:?}"
    );
}
