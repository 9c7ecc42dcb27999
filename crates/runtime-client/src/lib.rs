//! The platform's side of OpenWhisk's action-runtime protocol.
//!
//! Every container an invoker runs (a process sandbox, a docker container, any OpenWhisk runtime
//! image) serves `POST /init` once and `POST /run` per activation. [`RuntimeClient`] talks to one
//! such container over keep-alive HTTP/1.1 connections (unix socket or TCP) and turns what comes
//! back into the [`ActivationResponse`] to record, classified exactly as OpenWhisk's invoker does
//! (`Container.scala`, `ActivationResult.scala`): success, application error, developer error,
//! with OpenWhisk's own messages for timeouts, crashes and oversized results. Keeping this in one
//! crate means the invoker, whatever the container type, and a future controller-side "direct"
//! balancer classify results identically.
//!
//! Connections are opened lazily, reused, and kept in a small idle pool so concurrent runs against
//! one container each get their own connection; nothing is allocated per request beyond the
//! request and response bodies.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};
use whirl_model::error::messages;
use whirl_model::ActivationResponse;

/// Largest `/init` response read in full; longer ones are reported truncated, as OpenWhisk does.
pub const MAX_INIT_RESPONSE_BYTES: usize = 1 << 20;

/// How many idle connections a client keeps by default.
pub const DEFAULT_MAX_IDLE: usize = 4;

pub use whirl_model::Endpoint;

/// When a call to the container started and ended (wall clock; the length is measured on the
/// monotonic clock, so `end - start` is exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: SystemTime,
    pub end: SystemTime,
}

impl Interval {
    /// An interval that started at `start_wall`/`start` and ends now.
    fn since(start_wall: SystemTime, start: Instant) -> Self {
        Interval {
            start: start_wall,
            end: start_wall + start.elapsed(),
        }
    }

    /// A zero-length interval at `at`.
    pub fn at(at: SystemTime) -> Self {
        Interval { start: at, end: at }
    }

    pub fn duration(&self) -> Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }

    /// Start in epoch milliseconds (activation records' `start`).
    pub fn start_ms(&self) -> u64 {
        epoch_ms(self.start)
    }

    /// End in epoch milliseconds (activation records' `end`).
    pub fn end_ms(&self) -> u64 {
        epoch_ms(self.end)
    }

    /// Duration in whole milliseconds (activation records' `duration`).
    pub fn duration_ms(&self) -> u64 {
        self.duration().as_millis() as u64
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why an `/init` failed, which decides what the invoker does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitFailureKind {
    /// The runtime answered with an error: the action's fault.
    Developer,
    /// No answer within the timeout (including the server never coming up).
    Timeout,
    /// The connection broke before an answer: the container exited.
    ConnectionLost,
    /// The runtime answered 503 (shutting down): not the action's fault; run it elsewhere.
    Unhealthy,
}

/// A failed `/init`: the response to record and what kind of failure it was.
#[derive(Debug, Clone, PartialEq)]
pub struct InitFailure {
    pub interval: Interval,
    pub response: ActivationResponse,
    pub kind: InitFailureKind,
}

impl InitFailure {
    /// True for a timeout or a lost connection: the container is in an unknown state.
    pub fn is_timeout_or_connection_failure(&self) -> bool {
        matches!(
            self.kind,
            InitFailureKind::Timeout | InitFailureKind::ConnectionLost
        )
    }

    /// True when the runtime said it is shutting down (503); the activation can be retried elsewhere.
    pub fn is_health_error(&self) -> bool {
        self.kind == InitFailureKind::Unhealthy
    }
}

impl fmt::Display for InitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let error = self.response.result.as_ref().and_then(|r| r.get("error"));
        match error {
            Some(Value::String(s)) => write!(f, "initialization failed ({:?}): {s}", self.kind),
            Some(other) => write!(f, "initialization failed ({:?}): {other}", self.kind),
            None => write!(f, "initialization failed ({:?})", self.kind),
        }
    }
}

impl std::error::Error for InitFailure {}

/// The outcome of one `/run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub interval: Interval,
    pub response: ActivationResponse,
    /// No answer within the timeout.
    pub timed_out: bool,
    /// The connection broke before a full answer (the container likely died).
    pub connection_lost: bool,
    /// The runtime answered 503 (shutting down); OpenWhisk reschedules such activations.
    pub unhealthy: bool,
}

/// The `/run` request body, borrowing what it can. Serialize it, or any other serializable
/// value, with [`RuntimeClient::run`].
#[derive(Debug, Clone, Serialize)]
pub struct RunPayload<'a> {
    /// The action's parameters.
    pub value: &'a Value,
    /// The invoking namespace.
    pub namespace: &'a str,
    /// `/ns[/pkg]/name` of the action.
    pub action_name: &'a str,
    pub action_version: &'a str,
    pub activation_id: &'a str,
    pub transaction_id: &'a str,
    /// Epoch milliseconds by which the activation must finish (sent as a string).
    #[serde(serialize_with = "as_string")]
    pub deadline: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<&'a str>,
}

fn as_string<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

type Sender = SendRequest<Full<Bytes>>;

/// Any stream a connection runs over (Unix or TCP).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

type Driver = hyper::client::conn::http1::Connection<TokioIo<Box<dyn Io>>, Full<Bytes>>;

/// One keep-alive connection: the request handle and the connection state machine.
///
/// The connection is driven by whoever makes a request on it, inside the caller's own task,
/// rather than by a spawned task: a request then costs no task hand-off (and, on a multi-threaded
/// runtime, no wake-up of another core) on its way to the container and back.
struct Conn {
    sender: Sender,
    driver: Pin<Box<Driver>>,
}

/// Keep-alive HTTP/1.1 client for one container's runtime.
pub struct RuntimeClient {
    endpoint: Endpoint,
    host: HeaderValue,
    idle: parking_lot::Mutex<Vec<Conn>>,
    max_idle: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for RuntimeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeClient")
            .field("endpoint", &self.endpoint)
            .field("idle", &self.idle.lock().len())
            .finish()
    }
}

/// What came back over HTTP, before classification.
struct RawResponse {
    status: StatusCode,
    /// At most `limit` bytes of the body.
    body: Vec<u8>,
    /// The full body length, known or counted.
    size: usize,
    truncated: bool,
    /// The whole body was read, so the connection can carry the next request.
    complete: bool,
}

/// How talking to the container failed.
#[derive(Debug)]
enum CallError {
    /// Could not connect at all.
    Connect(io::Error),
    /// Connected, but the exchange broke.
    Lost(hyper::Error),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "cannot connect: {e}"),
            CallError::Lost(e) => write!(f, "connection lost: {e}"),
        }
    }
}

impl RuntimeClient {
    pub fn new(endpoint: Endpoint) -> Self {
        Self::with_max_idle(endpoint, DEFAULT_MAX_IDLE)
    }

    /// A client keeping at most `max_idle` idle connections (more may be open while busy).
    pub fn with_max_idle(endpoint: Endpoint, max_idle: usize) -> Self {
        let host = match &endpoint {
            Endpoint::Unix(_) => HeaderValue::from_static("localhost"),
            Endpoint::Tcp(addr) => HeaderValue::from_str(&addr.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
        };
        RuntimeClient {
            endpoint,
            host,
            idle: parking_lot::Mutex::new(Vec::new()),
            max_idle: max_idle.into(),
        }
    }

    /// Changes how many idle connections are kept, e.g. to the number of activations a shared
    /// container runs at once, so each keeps its connection.
    pub fn set_max_idle(&self, max_idle: usize) {
        self.max_idle
            .store(max_idle, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `POST /init` with `{"value": value}`, retrying the connection until the runtime listens,
    /// all within `timeout`.
    pub async fn init(&self, value: &Value, timeout: Duration) -> Result<Interval, InitFailure> {
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let mut body = Vec::with_capacity(256);
        body.extend_from_slice(b"{\"value\":");
        serde_json::to_writer(&mut body, value).expect("a JSON value serializes");
        body.push(b'}');

        let outcome = tokio::time::timeout_at(
            (start + timeout).into(),
            self.call("/init", body.into(), true, MAX_INIT_RESPONSE_BYTES),
        )
        .await;
        let interval = Interval::since(start_wall, start);
        let fail = |response, kind| {
            Err(InitFailure {
                interval,
                response,
                kind,
            })
        };
        let raw = match outcome {
            Err(_) => {
                return fail(
                    ActivationResponse::developer_error(messages::init_timed_out(ms(timeout))),
                    InitFailureKind::Timeout,
                )
            }
            Ok(Err(CallError::Connect(_))) if interval.duration() >= timeout => {
                return fail(
                    ActivationResponse::developer_error(messages::init_timed_out(ms(timeout))),
                    InitFailureKind::Timeout,
                )
            }
            Ok(Err(_)) => {
                return fail(
                    ActivationResponse::developer_error(messages::ABNORMAL_INIT),
                    InitFailureKind::ConnectionLost,
                )
            }
            Ok(Ok(raw)) => raw,
        };
        if raw.status == StatusCode::SERVICE_UNAVAILABLE {
            return fail(classify_init(&raw), InitFailureKind::Unhealthy);
        }
        if raw.status == StatusCode::OK && !raw.truncated {
            return Ok(interval);
        }
        if interval.duration() >= timeout {
            return fail(
                ActivationResponse::developer_error(messages::init_timed_out(ms(timeout))),
                InitFailureKind::Timeout,
            );
        }
        fail(classify_init(&raw), InitFailureKind::Developer)
    }

    /// `POST /run` with `body` (a [`RunPayload`], a `serde_json::Value`, ...), classified.
    /// Results longer than `max_response_bytes` are an application error holding the first
    /// `max_response_bytes` of them.
    pub async fn run<B: Serialize + ?Sized>(
        &self,
        body: &B,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> RunResult {
        let mut buf = Vec::with_capacity(512);
        match serde_json::to_writer(&mut buf, body) {
            Ok(()) => self.run_raw(buf.into(), timeout, max_response_bytes).await,
            Err(e) => RunResult {
                interval: Interval::at(SystemTime::now()),
                response: ActivationResponse::whisk_error(format!(
                    "The activation's parameters could not be serialized: {e}"
                )),
                timed_out: false,
                connection_lost: false,
                unhealthy: false,
            },
        }
    }

    /// Like [`run`](Self::run) with an already serialized JSON body.
    pub async fn run_raw(
        &self,
        body: Bytes,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> RunResult {
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let outcome = tokio::time::timeout_at(
            (start + timeout).into(),
            self.call("/run", body, false, max_response_bytes),
        )
        .await;
        let interval = Interval::since(start_wall, start);
        let mut result = RunResult {
            interval,
            response: ActivationResponse::developer_error(messages::ABNORMAL_RUN),
            timed_out: false,
            connection_lost: false,
            unhealthy: false,
        };
        match outcome {
            Ok(Ok(raw)) if interval.duration() < timeout => {
                result.unhealthy = raw.status == StatusCode::SERVICE_UNAVAILABLE;
                result.response = classify_run(&raw, max_response_bytes);
            }
            Ok(Err(e)) => {
                tracing::debug!(endpoint = %self.endpoint, error = %e, "/run failed");
                result.connection_lost = true;
            }
            Err(_) | Ok(Ok(_)) => {
                result.timed_out = true;
                result.response =
                    ActivationResponse::developer_error(messages::timed_out(ms(timeout)));
            }
        }
        result
    }

    /// Drops all idle connections (e.g. after the container was paused or replaced).
    pub fn close_idle(&self) {
        self.idle.lock().clear();
    }

    /// One request on a pooled or fresh connection. A pooled connection found closed before the
    /// request went out is replaced transparently; nothing is ever sent twice.
    async fn call(
        &self,
        path: &'static str,
        body: Bytes,
        wait_for_server: bool,
        limit: usize,
    ) -> Result<RawResponse, CallError> {
        loop {
            let (mut conn, pooled) = match self.take_idle() {
                Some(c) => (c, true),
                None => (self.connect(wait_for_server).await?, false),
            };
            let req = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(HOST, self.host.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(Full::new(body.clone()))
                .expect("a valid request");
            let mut driver_done = false;
            let outcome = {
                let Conn { sender, driver } = &mut conn;
                let work = async {
                    let resp = match sender.ready().await {
                        Ok(()) => sender.try_send_request(req).await,
                        Err(e) => return Err(Attempt::Unsent(e)),
                    };
                    let resp = match resp {
                        Ok(resp) => resp,
                        Err(e) if e.message().is_some() => {
                            return Err(Attempt::Unsent(e.into_error()))
                        }
                        Err(e) => return Err(Attempt::Failed(CallError::Lost(e.into_error()))),
                    };
                    read_response(resp, limit).await.map_err(Attempt::Failed)
                };
                let mut work = std::pin::pin!(work);
                tokio::select! {
                    biased;
                    out = &mut work => out,
                    _ = driver.as_mut() => {
                        // The connection ended; the request's own error says whether it went out.
                        driver_done = true;
                        work.await
                    }
                }
            };
            match outcome {
                Ok(raw) => {
                    if raw.complete && !driver_done {
                        self.put_idle(conn);
                    }
                    return Ok(raw);
                }
                Err(Attempt::Unsent(_)) if pooled => continue,
                Err(Attempt::Unsent(e)) => return Err(CallError::Lost(e)),
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock();
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() {
                return Some(c);
            }
        }
        None
    }

    fn put_idle(&self, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle.load(std::sync::atomic::Ordering::Relaxed) {
            idle.push(conn);
        }
    }

    /// Opens a connection; with `wait_for_server`, retries (1 ms backoff, doubling to 25 ms) until
    /// the caller's timeout cancels it.
    async fn connect(&self, wait_for_server: bool) -> Result<Conn, CallError> {
        let mut backoff = Duration::from_millis(1);
        loop {
            match self.connect_once().await {
                Ok(s) => return Ok(s),
                Err(CallError::Connect(_)) if wait_for_server => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(25));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn connect_once(&self) -> Result<Conn, CallError> {
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(CallError::Connect)?;
                handshake(Box::new(stream)).await
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(CallError::Connect)?;
                stream.set_nodelay(true).map_err(CallError::Connect)?;
                handshake(Box::new(stream)).await
            }
        }
    }
}

async fn handshake(stream: Box<dyn Io>) -> Result<Conn, CallError> {
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(CallError::Lost)?;
    Ok(Conn {
        sender,
        driver: Box::pin(driver),
    })
}

/// Why one attempt at a request failed.
enum Attempt {
    /// The request never went out (the pooled connection had closed): safe to retry.
    Unsent(hyper::Error),
    Failed(CallError),
}

/// Reads a response body, keeping at most `limit` bytes of it.
async fn read_response(
    resp: hyper::Response<hyper::body::Incoming>,
    limit: usize,
) -> Result<RawResponse, CallError> {
    let status = resp.status();
    let declared = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut incoming = resp.into_body();
    let mut body = Vec::with_capacity(declared.unwrap_or(1024).min(limit));
    let mut size = 0usize;
    let mut complete = true;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(CallError::Lost)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len();
        let room = limit - body.len();
        body.extend_from_slice(&data[..room.min(data.len())]);
        if size > limit && declared.is_some() {
            // The length is known: no need to drain the rest; the connection is dropped.
            complete = false;
            break;
        }
    }
    if let (false, Some(len)) = (complete, declared) {
        size = len;
    }
    Ok(RawResponse {
        status,
        body,
        size,
        truncated: size > limit,
        complete,
    })
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// `body` cut to at most `limit` bytes on a character boundary.
fn prefix_text(body: &[u8], limit: usize) -> String {
    let cut = &body[..limit.min(body.len())];
    match std::str::from_utf8(cut) {
        Ok(s) => s.to_string(),
        Err(e) => String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned(),
    }
}

/// OpenWhisk's `processInitResponseContent` for a failed `/init`.
fn classify_init(raw: &RawResponse) -> ActivationResponse {
    let mut response = if raw.truncated {
        ActivationResponse::developer_error(messages::truncated_response(
            raw.size,
            MAX_INIT_RESPONSE_BYTES,
            &prefix_text(&raw.body, MAX_INIT_RESPONSE_BYTES),
        ))
    } else {
        match serde_json::from_slice::<Value>(&raw.body) {
            Ok(Value::Object(mut fields)) if fields.contains_key("error") => {
                ActivationResponse::developer_error(fields.remove("error").unwrap_or(Value::Null))
            }
            _ => ActivationResponse::developer_error(invalid_init_response(&body_text(&raw.body))),
        }
    };
    response.size = Some(raw.size);
    response
}

/// OpenWhisk's `processRunResponseContent`.
fn classify_run(raw: &RawResponse, limit: usize) -> ActivationResponse {
    let ok = raw.status == StatusCode::OK;
    let mut response = if raw.truncated {
        ActivationResponse::application_error(json!({
            "error": messages::truncated_response(raw.size, limit, &prefix_text(&raw.body, limit))
        }))
    } else {
        match serde_json::from_slice::<Value>(&raw.body) {
            Ok(Value::Object(mut fields)) => match (ok, fields.remove("error")) {
                // As OpenWhisk: an application error keeps only the `error` field.
                (true, Some(error)) => {
                    ActivationResponse::application_error(json!({ "error": error }))
                }
                (true, None) => ActivationResponse::success(Value::Object(fields)),
                (false, Some(error)) => ActivationResponse::developer_error(error),
                (false, None) => {
                    ActivationResponse::developer_error(invalid_run_response(&body_text(&raw.body)))
                }
            },
            Ok(array @ Value::Array(_)) if ok => ActivationResponse::success(array),
            _ => ActivationResponse::developer_error(invalid_run_response(&body_text(&raw.body))),
        }
    };
    response.size = Some(raw.size);
    response
}

fn invalid_init_response(body: &str) -> String {
    if body.is_empty() {
        "The action failed during initialization.".to_string()
    } else {
        format!("The action failed during initialization: {body}")
    }
}

fn invalid_run_response(body: &str) -> String {
    if body.is_empty() {
        "The action did not produce a valid JSON or JSON Array response.".to_string()
    } else {
        format!("The action did not produce a valid JSON or JSON Array response: {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whirl_model::StatusCode as Status;

    fn raw(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
            size: body.len(),
            truncated: false,
            complete: true,
        }
    }

    #[test]
    fn run_classification_follows_openwhisk() {
        let r = classify_run(&raw(200, r#"{"a":1}"#), 100);
        assert_eq!(
            (r.status, r.result),
            (Status::Success, Some(json!({"a": 1})))
        );
        assert_eq!(r.size, Some(7));
        let r = classify_run(&raw(200, "[1]"), 100);
        assert_eq!((r.status, r.result), (Status::Success, Some(json!([1]))));
        let r = classify_run(&raw(200, r#"{"error":"x","more":1}"#), 100);
        assert_eq!(
            (r.status, r.result),
            (Status::ApplicationError, Some(json!({"error": "x"})))
        );
        let r = classify_run(&raw(502, r#"{"error":{"m":1}}"#), 100);
        assert_eq!(
            (r.status, r.result),
            (Status::DeveloperError, Some(json!({"error": {"m": 1}})))
        );
        let r = classify_run(&raw(500, r#"{"x":1}"#), 100);
        assert_eq!(
            r.result,
            Some(
                json!({"error": "The action did not produce a valid JSON or JSON Array response: {\"x\":1}"})
            )
        );
        let r = classify_run(&raw(500, "[1]"), 100);
        assert_eq!(r.status, Status::DeveloperError);
        let r = classify_run(&raw(200, "42"), 100);
        assert_eq!(
            r.result,
            Some(
                json!({"error": "The action did not produce a valid JSON or JSON Array response: 42"})
            )
        );
        let r = classify_run(&raw(200, ""), 100);
        assert_eq!(
            r.result,
            Some(
                json!({"error": "The action did not produce a valid JSON or JSON Array response."})
            )
        );
        let truncated = RawResponse {
            status: StatusCode::OK,
            body: b"{\"a\":\"\xc3\xa9".to_vec(),
            size: 50,
            truncated: true,
            complete: false,
        };
        let r = classify_run(&truncated, 8);
        assert_eq!(r.status, Status::ApplicationError);
        assert_eq!(r.size, Some(50));
        assert_eq!(
            r.result,
            Some(json!({"error": messages::truncated_response(50, 8, "{\"a\":\"é")}))
        );
        // A limit inside a character cuts before it.
        let r = classify_run(&truncated, 7);
        assert_eq!(
            r.result,
            Some(json!({"error": messages::truncated_response(50, 7, "{\"a\":\"")}))
        );
    }

    #[test]
    fn init_classification_follows_openwhisk() {
        let r = classify_init(&raw(502, r#"{"error":"bad"}"#));
        assert_eq!(
            (r.status, r.result),
            (Status::DeveloperError, Some(json!({"error": "bad"})))
        );
        let r = classify_init(&raw(500, "oops"));
        assert_eq!(
            r.result,
            Some(json!({"error": "The action failed during initialization: oops"}))
        );
        let r = classify_init(&raw(500, r#"{"x":1}"#));
        assert_eq!(
            r.result,
            Some(json!({"error": "The action failed during initialization: {\"x\":1}"}))
        );
        let r = classify_init(&raw(500, ""));
        assert_eq!(
            r.result,
            Some(json!({"error": "The action failed during initialization."}))
        );
    }

    #[test]
    fn run_payload_shape() {
        let value = json!({"p": 1});
        let p = RunPayload {
            value: &value,
            namespace: "guest",
            action_name: "/guest/a",
            action_version: "0.0.1",
            activation_id: "abc",
            transaction_id: "t",
            deadline: 1700000000000,
            api_key: None,
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"value": {"p": 1}, "namespace": "guest", "action_name": "/guest/a", "action_version": "0.0.1",
                   "activation_id": "abc", "transaction_id": "t", "deadline": "1700000000000"})
        );
    }

    #[test]
    fn interval_helpers() {
        let i = Interval {
            start: UNIX_EPOCH + Duration::from_millis(1000),
            end: UNIX_EPOCH + Duration::from_millis(1250),
        };
        assert_eq!(
            (i.start_ms(), i.end_ms(), i.duration_ms()),
            (1000, 1250, 250)
        );
        assert_eq!(Interval::at(UNIX_EPOCH).duration(), Duration::ZERO);
    }
}
