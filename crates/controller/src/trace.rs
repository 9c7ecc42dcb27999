//! The controller's request spans (target [`TRACE_TARGET`]), recorded only when the process
//! exports traces (`[telemetry] otlp_endpoint`); otherwise each is a disabled callsite and costs
//! a branch.
//!
//! `http.request` (a server span per `/api/...` request, with the transaction id, and the
//! activation id once one is assigned) → `loadbalancer.publish` (dispatch to the balancer and
//! the wait for the completion, with the activation id and balancer) → the invoker's spans.

use axum::extract::Request;
use tracing::field::Empty;
use tracing::{info_span, Span};
use whirl_model::{Action, ActivationId};

use crate::context::TransId;
pub(crate) use crate::metrics::TRACE_TARGET;

/// The span of one API request (none for the dashboard and metrics routes).
pub(crate) fn http_span(req: &Request, tid: &TransId) -> Span {
    let path = req.uri().path();
    if !path.starts_with("/api/") {
        return Span::none();
    }
    info_span!(
        target: TRACE_TARGET,
        "http.request",
        otel.name = %format_args!("{} {}", req.method(), path),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %req.method(),
        url.path = path,
        http.response.status_code = Empty,
        transaction_id = %tid,
        activation_id = Empty,
    )
}

/// Records the response status on the request's span.
pub(crate) fn finish_http_span(span: &Span, status: axum::http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// The span of dispatching one activation (and waiting for it); also puts the activation id on
/// the enclosing request span.
pub(crate) fn publish_span(id: &ActivationId, action: &Action, balancer: &str) -> Span {
    let span = info_span!(
        target: TRACE_TARGET,
        "loadbalancer.publish",
        activation_id = %id,
        action = %format_args!("/{}/{}", action.namespace, action.name),
        kind = action.kind(),
        balancer,
    );
    if !span.is_disabled() {
        Span::current().record("activation_id", tracing::field::display(id));
    }
    span
}
