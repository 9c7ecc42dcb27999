//! End-to-end tests of metrics, tracing and the dashboard through the real binary with real
//! python and node actions:
//! - `GET /metrics` read back after invocations of every outcome (and a throttled one);
//! - spans exported over OTLP/HTTP to a receiver on loopback, read back as one trace from the
//!   HTTP request to the container, each span carrying the activation id;
//! - the dashboard loaded in headless Chromium (Debian's `chromium`, driven over the DevTools
//!   protocol): it shows an activation made while it is open, its charts draw data, nothing is
//!   logged as an error, and a screenshot is written to `target/tmp/dashboard.png`.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Platform;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};

const PY_OK: &str = "def main(args):\n    return {'ok': True}\n";
const PY_FAIL: &str = "def main(args):\n    return {'error': 'expected failure'}\n";
const NODE_OK: &str = "function main(params) { return { ok: true }; }\n";

/// One sample of the text exposition: name and sorted labels to value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        out.insert(series.to_string(), value.parse().unwrap_or(f64::NAN));
    }
    out
}

/// The value of `name{labels}` where `labels` are given in Prometheus's order (sorted by name).
fn metric(m: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}}", l.join(","))
    };
    *m.get(&key)
        .unwrap_or_else(|| panic!("no sample {key}; have:\n{}", dump(m, name)))
}

fn dump(m: &HashMap<String, f64>, prefix: &str) -> String {
    let mut v: Vec<String> = m
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    v.sort();
    v.join("\n")
}

async fn scrape(p: &Platform) -> HashMap<String, f64> {
    let r = p.http.get(p.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse_metrics(&r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_read_back_after_real_invocations() {
    let p = Platform::start(
        "[controller.throttles]\ninvocations_per_minute = 12\n\n[invoker]\npause_grace_ms = 400\n",
    )
    .await;
    // 128 MB: no stem cell of that size, so the first invoke is a cold start.
    p.put_action("py", "python:3", PY_OK, json!({"limits": {"memory": 128}}))
        .await;
    p.put_action("pyfail", "python:3", PY_FAIL, json!({})).await;
    p.put_action("js", "nodejs:default", NODE_OK, json!({}))
        .await;
    for name in ["py", "py", "pyfail", "js"] {
        let (st, v) = p.invoke(name, json!({})).await;
        assert!(
            st == 200 || name == "pyfail" && st == 502,
            "{name}: {st} {v}"
        );
    }
    let (st, v) = p
        .call(Method::POST, "/actions/py?blocking=false", Some(json!({})))
        .await;
    assert_eq!(st, 202, "{v}");
    let id = v["activationId"].as_str().unwrap().to_string();
    p.wait_activation(&id).await;
    // Five invokes so far; the throttle allows 12 a minute.
    let mut throttled = 0;
    for _ in 0..10 {
        let (st, _) = p.invoke("py", json!({})).await;
        if st == 429 {
            throttled += 1;
        }
    }
    assert_eq!(throttled, 3);

    // Let the idle containers be suspended.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = scrape(&p).await;
    let inv = |kind: &'static str, status: &'static str| {
        metric(
            &m,
            "whirl_invoker_activations_total",
            &[("invoker", "invoker0"), ("kind", kind), ("status", status)],
        )
    };
    assert_eq!(
        inv("python:3", "success"),
        10.0,
        "2 + 1 non-blocking + 7 before the throttle"
    );
    assert_eq!(inv("python:3", "application_error"), 1.0);
    assert_eq!(inv("nodejs:20", "success"), 1.0);
    assert_eq!(inv("python:3", "whisk_error"), 0.0);
    let ctl = |kind: &'static str, outcome: &'static str| {
        metric(
            &m,
            "whirl_controller_activations_total",
            &[
                ("controller", "controller0"),
                ("kind", kind),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(ctl("python:3", "success"), 9.0);
    assert_eq!(ctl("python:3", "application_error"), 1.0);
    assert_eq!(ctl("python:3", "accepted"), 1.0);
    assert_eq!(ctl("nodejs:20", "success"), 1.0);
    assert_eq!(
        metric(
            &m,
            "whirl_controller_throttled_total",
            &[
                ("controller", "controller0"),
                ("limit", "invocations_per_minute")
            ]
        ),
        3.0
    );
    // Latency histograms: end to end at the controller, and each phase in the invoker.
    assert_eq!(
        metric(
            &m,
            "whirl_controller_invoke_seconds_count",
            &[("controller", "controller0"), ("kind", "python:3")]
        ),
        10.0
    );
    for (phase, n) in [
        ("wait", 11.0),
        ("run", 11.0),
        ("invoker", 11.0),
        ("init", 2.0),
    ] {
        assert_eq!(
            metric(
                &m,
                "whirl_invoker_activation_seconds_count",
                &[
                    ("invoker", "invoker0"),
                    ("kind", "python:3"),
                    ("phase", phase)
                ]
            ),
            n,
            "phase {phase}"
        );
    }
    let run_sum = metric(
        &m,
        "whirl_invoker_activation_seconds_sum",
        &[
            ("invoker", "invoker0"),
            ("kind", "python:3"),
            ("phase", "run"),
        ],
    );
    assert!(run_sum > 0.0 && run_sum < 11.0, "{run_sum}");
    // Cold starts: one python container created for an activation (128 MB); pyfail took the
    // 256 MB stem cell, node its own.
    assert_eq!(
        metric(
            &m,
            "whirl_invoker_container_create_seconds_count",
            &[
                ("invoker", "invoker0"),
                ("kind", "python:3"),
                ("purpose", "cold")
            ]
        ),
        1.0
    );
    let starts = |s: &'static str| {
        metric(
            &m,
            "whirl_invoker_container_starts_total",
            &[("invoker", "invoker0"), ("start", s)],
        )
    };
    assert_eq!(starts("cold"), 1.0);
    assert_eq!(starts("prewarm"), 2.0);
    assert_eq!(starts("warm"), 9.0);
    // The pool: three idle containers, suspended by now; the stem cells were backfilled.
    let pool = |s: &'static str| {
        metric(
            &m,
            "whirl_invoker_containers",
            &[("invoker", "invoker0"), ("state", s)],
        )
    };
    assert_eq!(pool("busy"), 0.0);
    assert_eq!(pool("paused") + pool("warm"), 3.0);
    assert!(
        pool("paused") >= 1.0,
        "{}",
        dump(&m, "whirl_invoker_containers")
    );
    assert_eq!(pool("prewarm"), 2.0);
    assert_eq!(
        metric(&m, "whirl_invoker_queue_length", &[("invoker", "invoker0")]),
        0.0
    );
    assert!(
        metric(
            &m,
            "whirl_invoker_memory_mb",
            &[("invoker", "invoker0"), ("use", "used")]
        ) >= 128.0 + 256.0 * 4.0
    );
    let health = |s: &'static str| {
        metric(
            &m,
            "whirl_invoker_health",
            &[
                ("balancer", "lean"),
                ("controller", "controller0"),
                ("invoker", "invoker0"),
                ("status", s),
            ],
        )
    };
    assert_eq!(health("healthy"), 1.0);
    assert_eq!(health("offline"), 0.0);
    assert_eq!(
        metric(
            &m,
            "whirl_controller_active_activations",
            &[("balancer", "lean"), ("controller", "controller0")]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_dashboard_can_be_switched_off() {
    let p = Platform::start("[controller]\nmetrics = false\ndashboard = false\n").await;
    for path in ["/metrics", "/dashboard"] {
        let r = p.http.get(p.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

// --- tracing

/// Spans decoded from the OTLP export requests.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    attrs: HashMap<String, String>,
    service: String,
}

/// An OTLP/HTTP receiver on loopback: collects the export requests' bodies.
async fn otlp_receiver() -> (u16, Arc<parking_lot_free::Bodies>) {
    let bodies = Arc::new(parking_lot_free::Bodies::default());
    let b = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let b = b.clone();
                async move {
                    assert_eq!(headers["content-type"], "application/x-protobuf");
                    b.0.lock().unwrap().push(body.to_vec());
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, bodies)
}

mod parking_lot_free {
    /// Export bodies received so far.
    #[derive(Default)]
    pub struct Bodies(pub std::sync::Mutex<Vec<Vec<u8>>>);
}

fn decode_spans(bodies: &parking_lot_free::Bodies) -> Vec<Span> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message;
    let mut out = Vec::new();
    for body in bodies.0.lock().unwrap().iter() {
        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        for rs in req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    Any::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let attrs = s
                        .attributes
                        .iter()
                        .map(|a| {
                            let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(Any::StringValue(s)) => s.clone(),
                                Some(Any::IntValue(i)) => i.to_string(),
                                Some(Any::BoolValue(b)) => b.to_string(),
                                other => format!("{other:?}"),
                            };
                            (a.key.clone(), v)
                        })
                        .collect();
                    out.push(Span {
                        name: s.name,
                        trace_id: s.trace_id,
                        span_id: s.span_id,
                        parent: s.parent_span_id,
                        attrs,
                        service: service.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The spans of one activation (every span names its activation), once `last` has arrived.
async fn spans_of(bodies: &parking_lot_free::Bodies, id: &str, last: &str) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans: Vec<Span> = decode_spans(bodies)
            .into_iter()
            .filter(|s| s.attrs.get("activation_id").map(String::as_str) == Some(id))
            .collect();
        if spans.iter().any(|s| s.name == last) && spans.iter().any(|s| s.name.starts_with("POST "))
        {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "spans of {id} never arrived; got {:#?}",
            decode_spans(bodies)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} span expected in {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_form_one_trace_from_http_request_to_container() {
    let (port, bodies) = otlp_receiver().await;
    let p = Platform::start(&format!(
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:{port}\"\nservice_name = \"whirl-test\"\nexport_interval_ms = 100\n"
    ))
    .await;
    p.put_action(
        "traced",
        "python:3",
        PY_OK,
        json!({"limits": {"memory": 128}}),
    )
    .await;
    // A cold start: create, init and run.
    let (st, act) = p.invoke("traced", json!({})).await;
    assert_eq!(st, 200, "{act}");
    let id = act["activationId"].as_str().unwrap();
    let spans = spans_of(&bodies, id, "container.run").await;
    // The request span is named after its method and path (OpenTelemetry's convention).
    let http = one(&spans, "POST /api/v1/namespaces/_/actions/traced");
    let publish = one(&spans, "loadbalancer.publish");
    let invoker = one(&spans, "invoker.activation");
    let create = one(&spans, "container.create");
    let init = one(&spans, "container.init");
    let run = one(&spans, "container.run");
    for s in [publish, invoker, create, init, run] {
        assert_eq!(s.trace_id, http.trace_id, "{} is in another trace", s.name);
    }
    assert!(http.parent.is_empty(), "the request span is the root");
    assert_eq!(publish.parent, http.span_id);
    assert_eq!(invoker.parent, publish.span_id);
    for s in [create, init, run] {
        assert_eq!(s.parent, invoker.span_id, "{}", s.name);
    }
    assert_eq!(http.service, "whirl-test");
    assert_eq!(http.attrs["http.request.method"], "POST");
    assert_eq!(http.attrs["http.response.status_code"], "200");
    assert_eq!(
        http.attrs["url.path"],
        "/api/v1/namespaces/_/actions/traced"
    );
    assert_eq!(publish.attrs["balancer"], "lean");
    assert_eq!(publish.attrs["action"], "/guest/traced");
    assert_eq!(invoker.attrs["invoker"], "invoker0");
    assert!(run.attrs.contains_key("container"));

    // Warm, and non-blocking: the invoker's spans stay in the request's trace although the
    // request has been answered before the activation ran.
    let (st, v) = p
        .call(
            Method::POST,
            "/actions/traced?blocking=false",
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let id = v["activationId"].as_str().unwrap();
    p.wait_activation(id).await;
    let spans = spans_of(&bodies, id, "container.run").await;
    let http = one(&spans, "POST /api/v1/namespaces/_/actions/traced");
    assert_eq!(http.attrs["http.response.status_code"], "202");
    let publish = one(&spans, "loadbalancer.publish");
    let invoker = one(&spans, "invoker.activation");
    let run = one(&spans, "container.run");
    assert!(spans
        .iter()
        .all(|s| s.name != "container.create" && s.name != "container.init"));
    assert_eq!(publish.parent, http.span_id);
    assert_eq!(invoker.parent, publish.span_id);
    assert_eq!(run.parent, invoker.span_id);
    assert!(spans.iter().all(|s| s.trace_id == http.trace_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_continues_across_the_bus_to_the_invoker() {
    let (port, bodies) = otlp_receiver().await;
    let p = Platform::start(&format!(
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:{port}\"\nservice_name = \"whirl-test\"\nexport_interval_ms = 100\n\n[load_balancer]\ntype = \"sharding\"\n"
    ))
    .await;
    p.put_action(
        "bus-traced",
        "python:3",
        PY_OK,
        json!({"limits": {"memory": 128}}),
    )
    .await;
    // The invoker takes work once its health test action has run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let act = loop {
        let (st, act) = p.invoke("bus-traced", json!({})).await;
        if st == 200 {
            break act;
        }
        assert!(Instant::now() < deadline, "never ran: {st} {act}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let id = act["activationId"].as_str().unwrap();
    let spans = spans_of(&bodies, id, "container.run").await;
    let http = one(&spans, "POST /api/v1/namespaces/_/actions/bus-traced");
    let publish = one(&spans, "loadbalancer.publish");
    let invoker = one(&spans, "invoker.activation");
    let run = one(&spans, "container.run");
    assert_eq!(publish.attrs["balancer"], "sharding");
    assert_eq!(publish.parent, http.span_id);
    // The activation crossed the bus (the in-memory one here) as an ActivationMessage: its
    // trace context made the invoker's span a child of the publishing span.
    assert_eq!(
        invoker.trace_id, http.trace_id,
        "the invoker's span is in the request's trace"
    );
    assert_eq!(invoker.parent, publish.span_id);
    assert_eq!(run.parent, invoker.span_id);
}

// --- the dashboard in headless Chromium

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Debian's chromium headless with the DevTools protocol on a free port.
async fn chromium() -> (Browser, u16) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--window-size=1400,1100",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is needed for this test (apt-get install chromium; scripts/services installs it)");
    // Chromium writes the port it chose to DevToolsActivePort in the profile.
    let file = profile.path().join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(Ok(port)) = text.lines().next().map(str::parse::<u16>) {
                break port;
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("chromium exited: {st}");
        }
        assert!(Instant::now() < deadline, "chromium did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (
        Browser {
            child,
            _profile: profile,
        },
        port,
    )
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools protocol session with one page; events are kept as they arrive.
struct Cdp {
    ws: Ws,
    next: u64,
    events: Vec<Value>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(msg.into()))
            .await
            .unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("devtools connection closed")
                .unwrap();
            let tokio_tungstenite::tungstenite::Message::Text(t) = m else {
                continue;
            };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// Evaluates a JS expression whose value is JSON-serializable.
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Console errors, uncaught exceptions and browser log errors (CSP violations, failed loads).
    fn errors(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => true,
                Some("Runtime.consoleAPICalled") => {
                    matches!(e["params"]["type"].as_str(), Some("error" | "assert"))
                }
                Some("Log.entryAdded") => e["params"]["entry"]["level"] == "error",
                _ => false,
            })
            .collect()
    }
}

const PAGE_STATE: &str = r#"(() => {
  if (!document.body || !document.getElementById('conn')) return { ticks: 0, ids: [], charts: {} };
  const pts = (id) => { const s = document.querySelector('#' + id + ' svg'); return s ? Number(s.getAttribute('data-points')) : -1; };
  return {
    ticks: Number(document.body.getAttribute('data-ticks') || 0),
    conn: document.getElementById('conn').textContent,
    ids: Array.from(document.querySelectorAll('#activations tbody tr')).map((r) => r.getAttribute('data-id')),
    dots: Array.from(document.querySelectorAll('#c-recent circle')).map((c) => c.getAttribute('data-id')),
    invokers: Array.from(document.querySelectorAll('#invokers tbody tr')).map((r) => r.textContent),
    charts: { status: pts('c-status'), latency: pts('c-latency'), pool: pts('c-pool'), recent: pts('c-recent') },
    rate: document.getElementById('t-rate').textContent,
  };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_live_activations_in_headless_chromium() {
    let p = Platform::start("").await;
    p.put_action("shown", "python:3", PY_OK, json!({})).await;
    let (st, before) = p.invoke("shown", json!({})).await;
    assert_eq!(st, 200, "{before}");

    let (_browser, port) = chromium().await;
    let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws_url = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .expect("a page target")["webSocketDebuggerUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    let mut cdp = Cdp {
        ws,
        next: 0,
        events: Vec::new(),
    };
    for m in ["Runtime.enable", "Log.enable", "Page.enable"] {
        cdp.call(m, json!({})).await;
    }
    let url = p.url(&format!(
        "/dashboard#auth={}:{}",
        common::GUEST.0,
        common::GUEST.1
    ));
    cdp.call("Page.navigate", json!({"url": url})).await;

    // Wait for the page to be live, then make an activation while it watches.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = cdp.eval(PAGE_STATE).await;
        if s["ticks"].as_u64().unwrap_or(0) >= 1
            && s["ids"].as_array().is_some_and(|a| !a.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never went live: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (st, act) = p.invoke("shown", json!({"from": "the test"})).await;
    assert_eq!(st, 200, "{act}");
    let id = act["activationId"].as_str().unwrap().to_string();
    let state = loop {
        let s = cdp.eval(PAGE_STATE).await;
        let shown = s["ids"].as_array().unwrap().iter().any(|v| v == &json!(id));
        let charts = &s["charts"];
        let drawn = ["status", "latency", "pool", "recent"]
            .iter()
            .all(|c| charts[c].as_i64().unwrap_or(-1) > 0);
        if shown && drawn {
            break s;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(20),
            "activation {id} or the charts never showed: {s}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        state["conn"].as_str().unwrap().starts_with("live"),
        "{state}"
    );
    assert!(
        state["dots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == &json!(id)),
        "the recent-activations chart plots {id}: {state}"
    );
    assert!(
        state["ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == &before["activationId"]),
        "{state}"
    );
    let invokers = state["invokers"].as_array().unwrap();
    assert_eq!(invokers.len(), 1, "{state}");
    let row = invokers[0].as_str().unwrap();
    assert!(
        row.contains("invoker0") && row.contains("lean") && row.contains("healthy"),
        "{row}"
    );
    // The row's text shows the activation in the table.
    let row_text = cdp
        .eval(&format!(
            "document.querySelector('#activations tr[data-id=\"{id}\"]').textContent"
        ))
        .await;
    let row_text = row_text.as_str().unwrap();
    assert!(
        row_text.contains("guest/shown") && row_text.contains("success"),
        "{row_text}"
    );

    let shot = cdp
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, &png).unwrap();
    println!("dashboard screenshot: {}", path.display());

    // One more round trip collects the events that arrived meanwhile.
    cdp.eval("1").await;
    let errors = cdp.errors();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
}
