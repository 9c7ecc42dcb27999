//! The client against the real runtime (whirl-runtime, served in-process on a thread, with real
//! python3, node and /bin/sh), and against small fake servers for what a healthy runtime never does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whirl_model::error::messages;
use whirl_model::StatusCode as Status;
use whirl_runtime::{Launcher, Listen, RuntimeArgs};
use whirl_runtime_client::{Endpoint, InitFailureKind, RunPayload, RuntimeClient};

const SECOND: Duration = Duration::from_secs(1);
const LIMIT: usize = 1 << 20;

/// Starts the runtime on a thread; the client's /init waits for it to listen.
fn runtime(launcher: Launcher, listen: Option<Listen>) -> (tempfile::TempDir, Endpoint) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("runtime.sock");
    let listen = listen.unwrap_or(Listen::Unix(socket.clone()));
    let endpoint = match &listen {
        Listen::Unix(p) => Endpoint::Unix(p.clone()),
        Listen::Tcp(a) => Endpoint::Tcp(a.parse().unwrap()),
    };
    let command = match launcher {
        Launcher::Python => Some(PathBuf::from("/usr/bin/python3")),
        Launcher::Node => Some(PathBuf::from("/usr/bin/node")),
        Launcher::Native => None,
    };
    let args = RuntimeArgs {
        listen,
        launcher,
        command,
        work_dir: Some(dir.path().join("work")),
    };
    std::thread::spawn(move || whirl_runtime::run(args));
    (dir, endpoint)
}

fn payload(value: &Value) -> RunPayload<'_> {
    RunPayload {
        value,
        namespace: "guest",
        action_name: "/guest/t",
        action_version: "0.0.1",
        activation_id: "0123456789abcdef0123456789abcdef",
        transaction_id: "tid",
        deadline: 1_700_000_000_000,
        api_key: Some("k"),
    }
}

async fn python(code: &str) -> (tempfile::TempDir, RuntimeClient) {
    let (dir, endpoint) = runtime(Launcher::Python, None);
    let client = RuntimeClient::new(endpoint);
    client
        .init(
            &json!({"name": "t", "main": "main", "code": code, "binary": false}),
            10 * SECOND,
        )
        .await
        .unwrap();
    (dir, client)
}

#[tokio::test]
async fn init_waits_for_the_server_then_runs_classified() {
    let (_dir, client) = python(
        "import os\ndef main(a):\n    if a.get('fail'):\n        return {'error': 'nope', 'other': 1}\n    return {'id': os.environ['__OW_ACTIVATION_ID'], 'a': a}\n",
    )
    .await;
    let value = json!({"x": 1});
    let r = client.run(&payload(&value), 10 * SECOND, LIMIT).await;
    assert!(!r.timed_out && !r.connection_lost && !r.unhealthy);
    assert_eq!(r.response.status, Status::Success);
    let expected = json!({"id": "0123456789abcdef0123456789abcdef", "a": {"x": 1}});
    assert_eq!(r.response.result, Some(expected.clone()));
    assert_eq!(r.response.size, Some(expected.to_string().len()));
    assert!(r.interval.end >= r.interval.start && r.interval.duration() < 10 * SECOND);

    let value = json!({"fail": true});
    let r = client.run(&payload(&value), 10 * SECOND, LIMIT).await;
    assert_eq!(r.response.status, Status::ApplicationError);
    assert_eq!(r.response.result, Some(json!({"error": "nope"})));

    // A plain serde_json::Value works as the body too.
    let r = client
        .run(
            &json!({"value": {"y": 2}, "activation_id": "a1"}),
            10 * SECOND,
            LIMIT,
        )
        .await;
    assert_eq!(r.response.result, Some(json!({"id": "a1", "a": {"y": 2}})));
}

#[tokio::test]
async fn python_exception_is_an_application_error() {
    let (_dir, client) = python("def main(a):\n    raise RuntimeError('kaput')\n").await;
    let r = client.run(&json!({"value": {}}), 10 * SECOND, LIMIT).await;
    assert_eq!(r.response.status, Status::ApplicationError);
    assert_eq!(r.response.result, Some(json!({"error": "kaput"})));
}

#[tokio::test]
async fn run_timeout() {
    let (_dir, client) =
        python("import time\ndef main(a):\n    time.sleep(a.get('s', 0))\n    return {}\n").await;
    let r = client
        .run(
            &json!({"value": {"s": 3}}),
            Duration::from_millis(300),
            LIMIT,
        )
        .await;
    assert!(r.timed_out && !r.connection_lost);
    assert_eq!(r.response.status, Status::DeveloperError);
    assert_eq!(
        r.response.result,
        Some(json!({"error": messages::timed_out(300)}))
    );
    assert!(r.interval.duration() >= Duration::from_millis(300));
    assert!(
        r.interval.duration() < Duration::from_secs(2),
        "{:?}",
        r.interval.duration()
    );
}

#[tokio::test]
async fn crash_is_a_developer_error() {
    let (_dir, client) = python("import os\ndef main(a):\n    os._exit(9)\n").await;
    let r = client.run(&json!({"value": {}}), 10 * SECOND, LIMIT).await;
    assert_eq!(r.response.status, Status::DeveloperError);
    let error = r.response.result.as_ref().unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with(messages::ABNORMAL_RUN) && error.contains("exited with code 9"),
        "{error}"
    );
    // The runtime keeps answering, with the same failure.
    let again = client.run(&json!({"value": {}}), 10 * SECOND, LIMIT).await;
    assert_eq!(again.response.result, r.response.result);
}

#[tokio::test]
async fn oversized_result_is_truncated() {
    let (_dir, client) = python("def main(a):\n    return {'big': 'x' * 5000}\n").await;
    let r = client.run(&json!({"value": {}}), 10 * SECOND, 100).await;
    assert_eq!(r.response.status, Status::ApplicationError);
    let full = json!({"big": "x".repeat(5000)}).to_string();
    assert_eq!(r.response.size, Some(full.len()));
    assert_eq!(
        r.response.result,
        Some(json!({"error": messages::truncated_response(full.len(), 100, &full[..100])}))
    );
    // The connection was not reusable, the next call still works.
    let r = client.run(&json!({"value": {}}), 10 * SECOND, LIMIT).await;
    assert_eq!(r.response.status, Status::Success);
}

#[tokio::test]
async fn init_failure_is_a_developer_error() {
    let (_dir, endpoint) = runtime(Launcher::Python, None);
    let client = RuntimeClient::new(endpoint);
    let f = client
        .init(&json!({"code": "def main(:"}), 10 * SECOND)
        .await
        .unwrap_err();
    assert_eq!(f.kind, InitFailureKind::Developer);
    assert!(!f.is_timeout_or_connection_failure());
    assert_eq!(f.response.status, Status::DeveloperError);
    let error = f.response.result.as_ref().unwrap()["error"]
        .as_str()
        .unwrap();
    assert!(
        error.starts_with("Initialization has failed due to: ") && error.contains("SyntaxError"),
        "{error}"
    );
    // A second /init is refused by the runtime, and so classified.
    let f = client
        .init(&json!({"code": "def main(a): return a"}), 10 * SECOND)
        .await
        .unwrap_err();
    assert_eq!(
        f.response.result,
        Some(json!({"error": "Cannot initialize the action more than once."}))
    );
}

#[tokio::test]
async fn init_times_out_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let client = RuntimeClient::new(Endpoint::Unix(dir.path().join("nobody.sock")));
    let f = client
        .init(&json!({"code": "x"}), Duration::from_millis(150))
        .await
        .unwrap_err();
    assert_eq!(f.kind, InitFailureKind::Timeout);
    assert!(f.is_timeout_or_connection_failure());
    assert_eq!(
        f.response.result,
        Some(json!({"error": messages::init_timed_out(150)}))
    );
    assert!(f.interval.duration() >= Duration::from_millis(150));
}

#[tokio::test]
async fn node_over_tcp_with_concurrent_runs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (_dir, endpoint) = runtime(Launcher::Node, Some(Listen::Tcp(addr)));
    let client = Arc::new(RuntimeClient::new(endpoint));
    client
        .init(&json!({"code": "async function main(p) { return {n: p.n, ns: process.env.__OW_NAMESPACE} }"}), 10 * SECOND)
        .await
        .unwrap();
    let runs: Vec<_> = (0..8)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move {
                let value = json!({"n": n});
                client.run(&payload(&value), 10 * SECOND, LIMIT).await
            })
        })
        .collect();
    for (n, run) in runs.into_iter().enumerate() {
        let r = run.await.unwrap();
        assert_eq!(r.response.result, Some(json!({"n": n, "ns": "guest"})));
    }
}

#[tokio::test]
async fn native_action() {
    let (_dir, endpoint) = runtime(Launcher::Native, None);
    let client = RuntimeClient::new(endpoint);
    let script = "#!/bin/sh\nwhile read -r line; do echo \"{\\\"got\\\":$line}\" >&3; done\n";
    client
        .init(&json!({"code": script, "binary": false}), 10 * SECOND)
        .await
        .unwrap();
    let r = client
        .run(&json!({"value": {"a": [1, 2]}}), 10 * SECOND, LIMIT)
        .await;
    assert_eq!(
        r.response.result,
        Some(json!({"got": {"value": {"a": [1, 2]}}}))
    );
}

// ---------------------------------------------------------------------------------------------
// Fake servers

/// Serves `answer(path)` over HTTP/1.1 on a unix socket; counts connections.
async fn fake(
    answer: fn(&str) -> (u16, &'static str),
) -> (tempfile::TempDir, Endpoint, Arc<AtomicUsize>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path().to_string();
                        let _ = req.into_body().collect().await;
                        let (status, body) = answer(&path);
                        let mut resp =
                            hyper::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (dir, Endpoint::Unix(path), connections)
}

#[tokio::test]
async fn connections_are_kept_alive() {
    let (_dir, endpoint, connections) = fake(|_| (200, r#"{"ok":true}"#)).await;
    let client = RuntimeClient::new(endpoint);
    client.init(&json!({}), SECOND).await.unwrap();
    for _ in 0..20 {
        let r = client.run(&json!({"value": {}}), SECOND, LIMIT).await;
        assert_eq!(r.response.status, Status::Success);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unhealthy_and_invalid_answers() {
    let (_dir, endpoint, _) = fake(|path| match path {
        "/init" => (503, r#"{"error":"shutting down"}"#),
        _ => (503, "bye"),
    })
    .await;
    let client = RuntimeClient::new(endpoint);
    let f = client.init(&json!({}), SECOND).await.unwrap_err();
    assert!(f.is_health_error());
    let r = client.run(&json!({"value": {}}), SECOND, LIMIT).await;
    assert!(r.unhealthy);
    assert_eq!(r.response.status, Status::DeveloperError);
    assert_eq!(
        r.response.result,
        Some(
            json!({"error": "The action did not produce a valid JSON or JSON Array response: bye"})
        )
    );

    let (_dir, endpoint, _) = fake(|path| match path {
        "/init" => (500, "not json"),
        _ => (200, "\"scalar\""),
    })
    .await;
    let client = RuntimeClient::new(endpoint);
    let f = client.init(&json!({}), SECOND).await.unwrap_err();
    assert_eq!(
        f.response.result,
        Some(json!({"error": "The action failed during initialization: not json"}))
    );
    let r = client.run(&json!({"value": {}}), SECOND, LIMIT).await;
    assert_eq!(
        r.response.result,
        Some(
            json!({"error": "The action did not produce a valid JSON or JSON Array response: \"scalar\""})
        )
    );
}

/// Accepts, reads a little, and hangs up without answering.
async fn hang_up_server() -> (tempfile::TempDir, Endpoint) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rude.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 16];
            let _ = stream.read(&mut buf).await;
            let _ = stream.shutdown().await;
        }
    });
    (dir, Endpoint::Unix(path))
}

#[tokio::test]
async fn lost_connections() {
    let (_dir, endpoint) = hang_up_server().await;
    let client = RuntimeClient::new(endpoint);
    let f = client.init(&json!({}), SECOND).await.unwrap_err();
    assert_eq!(f.kind, InitFailureKind::ConnectionLost);
    assert_eq!(
        f.response.result,
        Some(json!({"error": messages::ABNORMAL_INIT}))
    );
    let r = client.run(&json!({"value": {}}), SECOND, LIMIT).await;
    assert!(r.connection_lost && !r.timed_out);
    assert_eq!(
        r.response.result,
        Some(json!({"error": messages::ABNORMAL_RUN}))
    );

    // Nothing listening at run time: also a lost connection, not a wait.
    let client = RuntimeClient::new(Endpoint::Tcp(SocketAddr::from(([127, 0, 0, 1], 1))));
    let r = client.run(&json!({"value": {}}), SECOND, LIMIT).await;
    assert!(r.connection_lost);
}
