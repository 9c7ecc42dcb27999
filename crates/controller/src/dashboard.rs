//! The operator dashboard: one page served by the controller (`GET /dashboard`), with no
//! server of its own and nothing fetched from elsewhere (its script and style are compiled into
//! the binary and the Content-Security-Policy allows this origin only).
//!
//! The page polls two sources every two seconds:
//! - `GET /metrics` (this controller's registry, which in a standalone platform includes the
//!   invoker's): activation rates by status, end-to-end and phase latency percentiles computed
//!   from histogram deltas, per-invoker health, load and container pool, queue lengths, cold
//!   starts and throttling; so the dashboard shows exactly what Prometheus would scrape;
//! - `GET /api/v1/namespaces/_/activations` with the viewer's API key: the namespace's latest
//!   activations (status, duration, wait and init times), listed and plotted over time.
//!
//! The charts are hand-written SVG (`app.js`): a few line, area and scatter charts do not
//! justify vendoring a chart library. The key is read from the URL fragment
//! (`/dashboard#auth=uuid:key`, which browsers never send to a server; `whirl standalone` prints
//! that link) or typed into the page, and kept in the browser's local storage.

use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::Inner;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// The dashboard's routes, when enabled.
pub(crate) fn routes(config: &crate::ControllerConfig) -> Router<Arc<Inner>> {
    let r = Router::new();
    if !config.dashboard {
        return r;
    }
    let index = || async { asset(INDEX, "text/html; charset=utf-8") };
    r.route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route(
            "/dashboard/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
}
