//! The invoke path: `POST /namespaces/{ns}/actions/[{pkg}/]{name}?blocking=&result=&timeout=`.
//!
//! Kept lean: a warm invoke reads the action from the cache, parses the body once into the
//! parameter map, and awaits the balancer's completion future in the request's own task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tracing::Instrument;
use whirl_model::error::messages;
use whirl_model::message::MESSAGE_VERSION;
use whirl_model::{
    Action, ActionLimits, Activation, ActivationId, ActivationMessage, ActivationResponse,
    ExecKind, Identity, Params, StatusCode as ActivationStatus,
};
use whirl_spi::{LoadBalancerError, PendingActivation};

use crate::actions::Target;
use crate::auth::Caller;
use crate::cache::ResolvedAction;
use crate::context::{json_bytes, TransId};
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::query::Query;
use crate::views::{result_bytes, ActivationView};
use crate::{read_body, require_json, Inner};

/// The header naming the activation of an invoke response.
pub(crate) const ACTIVATION_ID_HEADER: HeaderName =
    HeaderName::from_static("x-openwhisk-activation-id");

/// Parses an invoke body: a JSON object of parameters (an empty body is `{}`).
pub(crate) fn parse_payload(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    serde_json::from_slice::<Map<String, Value>>(body).map_err(ApiError::malformed)
}

/// The action's default parameters overridden by the invoke's, refusing overrides of immutable
/// (`final`) parameters.
pub(crate) fn merge_params(
    defaults: &Map<String, Value>,
    immutable: &[String],
    payload: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    if !immutable.is_empty() && payload.keys().any(|k| immutable.iter().any(|i| i == k)) {
        return Err(ApiError::bad_request(messages::RESERVED_PARAMS));
    }
    if defaults.is_empty() {
        return Ok(payload);
    }
    let mut merged = defaults.clone();
    merged.extend(payload);
    Ok(merged)
}

/// The HTTP status of a completed activation: 200 success, 502 application or developer error,
/// 500 whisk error.
pub(crate) fn http_status(s: ActivationStatus) -> StatusCode {
    match s {
        ActivationStatus::Success => StatusCode::OK,
        ActivationStatus::ApplicationError | ActivationStatus::DeveloperError => {
            StatusCode::BAD_GATEWAY
        }
        ActivationStatus::WhiskError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn with_activation_header(mut r: Response, id: &ActivationId) -> Response {
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        r.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
    r
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    activation_id: &'a ActivationId,
}

/// 202 `{"activationId": ...}`.
fn accepted(id: &ActivationId) -> Response {
    let body = serde_json::to_vec(&Accepted { activation_id: id }).unwrap_or_default();
    with_activation_header(json_bytes(StatusCode::ACCEPTED, body), id)
}

/// The response to a completed blocking invoke: the full activation, or the result alone with
/// `result=true` (an array result is always sent alone, as OpenWhisk does).
pub(crate) fn completed(a: &Activation, result_only: bool) -> Response {
    let status = http_status(a.response.status);
    let bytes = if result_only || matches!(a.response.result, Some(Value::Array(_))) {
        result_bytes(a)
    } else {
        serde_json::to_vec(&ActivationView::new(a)).unwrap_or_default()
    };
    with_activation_header(json_bytes(status, bytes), &a.activation_id)
}

/// `ns/pkg/name` of an action (the `path` annotation and journal path).
fn action_path(action: &Action) -> String {
    format!("{}/{}", action.namespace, action.name)
}

/// The record of a journaled activation that did not or will not run to its own record: a
/// dispatch that failed, or an orphan found after a crash.
pub(crate) fn record_for(
    p: PendingActivation,
    limits: Option<&ActionLimits>,
    response: ActivationResponse,
) -> Activation {
    let mut annotations = Params::new();
    let name = p.path.rsplit('/').next().unwrap_or(&p.path).to_owned();
    annotations.put("path", Value::String(p.path));
    annotations.put("kind", Value::String(p.kind));
    if let Some(l) = limits {
        annotations.put("limits", json!(l));
    }
    Activation {
        namespace: p.namespace,
        name,
        version: p.version,
        subject: p.subject,
        activation_id: p.activation_id,
        start: p.accepted_at,
        end: 0,
        duration: None,
        publish: false,
        cause: p.cause,
        response,
        logs: Vec::new(),
        annotations,
    }
}

/// `POST /namespaces/{ns}/actions/[{pkg}/]{name}`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn invoke(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    tid: TransId,
    Path(segments): Path<Vec<String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let received_at_ms = whirl_model::time::now_ms();
    let (target, owner) = Target::resolve(&user, segments)?;
    let q = Query(q.as_deref().unwrap_or(""));
    let blocking = q.bool("blocking", false)?;
    let result_only = q.bool("result", false)?;
    let wait_ms = q.timeout_ms(inner.config.limits.max_blocking_wait_ms)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, inner.config.limits.max_payload_bytes).await?;
    inner.throttles.check_invoke_rate(&user)?;
    let resolved = inner.resolve_target(&target, owner).await?;
    check_concurrency(&inner, &user, &resolved)?;
    if resolved.conductor || resolved.action.exec.exec_kind() == ExecKind::Sequence {
        let payload = Value::Object(parse_payload(&bytes)?);
        drop(bytes);
        let ctx = crate::sequence::SequenceContext {
            inner: inner.clone(),
            user,
            tid,
            received_at_ms,
        };
        return invoke_sequence(ctx, resolved, payload, blocking, result_only, wait_ms).await;
    }
    let content = merge_params(
        &resolved.defaults,
        &resolved.immutable,
        parse_payload(&bytes)?,
    )?;
    drop(bytes);
    dispatch(
        &inner,
        user,
        &tid,
        &resolved,
        content,
        blocking,
        result_only,
        wait_ms,
        received_at_ms,
        started,
    )
    .await
}

/// Starts a sequence in its own task and answers for it: 202 at once (non-blocking), or the
/// sequence's record when it completes within the caller's wait (202 after it).
async fn invoke_sequence(
    ctx: crate::sequence::SequenceContext,
    resolved: Arc<ResolvedAction>,
    payload: Value,
    blocking: bool,
    result_only: bool,
    wait_ms: u64,
) -> Result<Response, ApiError> {
    let id = ActivationId::generate();
    if ctx.inner.config.journal.journals(blocking) {
        crate::sequence::journal(&ctx, &resolved, id).await?;
    }
    let run = tokio::spawn(crate::conductor::run_composite(
        ctx, resolved, id, payload, None,
    ));
    if !blocking {
        return Ok(accepted(&id));
    }
    match tokio::time::timeout(Duration::from_millis(wait_ms), run).await {
        Ok(Ok(record)) => Ok(completed(&record, result_only)),
        Ok(Err(e)) => Err(ApiError::internal(format!("The sequence failed: {e}"))),
        Err(_) => Ok(accepted(&id)),
    }
}

/// The concurrent-invocations throttle: the namespace's activations in flight in the balancer
/// that would take this one.
pub(crate) fn check_concurrency(
    inner: &Inner,
    user: &Identity,
    resolved: &ResolvedAction,
) -> Result<(), ApiError> {
    if !inner.throttles.limits_concurrency(user) {
        return Ok(());
    }
    let active = inner
        .balancers
        .resolve(&resolved.action)
        .active_activations_for(user.namespace.as_str());
    inner.throttles.check_concurrency(user, active)
}

/// Starts one activation without waiting for it (journaled as a non-blocking invoke is), caused
/// by `cause`: a trigger's rule firing. A sequence runs in its own task.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_activation(
    inner: &Arc<Inner>,
    user: Identity,
    tid: &TransId,
    resolved: Arc<ResolvedAction>,
    payload: Map<String, Value>,
    cause: ActivationId,
    received_at_ms: u64,
) -> Result<ActivationId, ApiError> {
    let id = ActivationId::generate();
    if crate::conductor::is_composite(&resolved) {
        let ctx = crate::sequence::SequenceContext {
            inner: inner.clone(),
            user,
            tid: tid.clone(),
            received_at_ms,
        };
        if inner.config.journal.journals(false) {
            crate::sequence::journal(&ctx, &resolved, id).await?;
        }
        let run =
            crate::conductor::run_composite(ctx, resolved, id, Value::Object(payload), Some(cause));
        tokio::spawn(run);
        return Ok(id);
    }
    let content = merge_params(&resolved.defaults, &[], payload)?;
    let action = &resolved.action;
    let balancer = inner.balancers.resolve(action);
    let pending = if inner.config.journal.journals(false) && !balancer.keeps_accepted() {
        let pending = PendingActivation {
            activation_id: id,
            namespace: user.namespace.to_string(),
            path: action_path(action),
            version: action.version.clone(),
            subject: user.subject.clone(),
            kind: action.kind().to_owned(),
            accepted_at: received_at_ms,
            owner: inner.config.controller_id.clone(),
            cause: Some(cause),
        };
        inner.activations.journal(&pending).await?;
        Some(pending)
    } else {
        None
    };
    let msg = ActivationMessage {
        version: MESSAGE_VERSION,
        transid: tid.as_str().to_owned(),
        action: action.fully_qualified_name(),
        revision: resolved.rev,
        user,
        activation_id: id,
        root_controller: inner.config.controller_id.clone(),
        blocking: false,
        content: Some(Value::Object(content)),
        init_args: resolved.init_args.clone(),
        cause: Some(cause),
        received_at_ms,
        load_balancer: balancer.name().to_owned(),
        extra_annotations: resolved.extra_annotations.clone(),
        trace_context: Default::default(),
    };
    let span = crate::trace::publish_span(&id, action, balancer.name());
    match balancer.publish(action.clone(), msg).instrument(span).await {
        // Dropping the completion does not cancel the activation.
        Ok(completion) => {
            inner
                .metrics
                .dispatched(action.kind(), Outcome::Accepted, None);
            drop(completion)
        }
        Err(e) => {
            inner
                .metrics
                .dispatched(action.kind(), Outcome::Failed, None);
            if let Some(pending) = pending {
                // Close the journal entry: this activation will never run.
                let record = record_for(
                    pending,
                    Some(&action.limits),
                    ActivationResponse::whisk_error(e.to_string()),
                );
                if let Err(se) = inner.activations.store(&record).await {
                    tracing::error!(%tid, activation = %id, "could not record the failed dispatch: {se}");
                }
            }
            return Err(e.into());
        }
    }
    Ok(id)
}

/// Publishes one activation and answers for it.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    inner: &Inner,
    user: Identity,
    tid: &TransId,
    resolved: &ResolvedAction,
    content: Map<String, Value>,
    blocking: bool,
    result_only: bool,
    wait_ms: u64,
    received_at_ms: u64,
    started: Instant,
) -> Result<Response, ApiError> {
    let action = &resolved.action;
    let balancer = inner.balancers.resolve(action);
    let activation_id = ActivationId::generate();
    let span = crate::trace::publish_span(&activation_id, action, balancer.name());
    let count = |outcome| {
        let took = matches!(outcome, Outcome::Completed(_)).then(|| started.elapsed());
        inner.metrics.dispatched(action.kind(), outcome, took)
    };
    let pending = if inner.config.journal.journals(blocking) && !balancer.keeps_accepted() {
        let pending = PendingActivation {
            activation_id,
            namespace: user.namespace.to_string(),
            path: action_path(action),
            version: action.version.clone(),
            subject: user.subject.clone(),
            kind: action.kind().to_owned(),
            accepted_at: received_at_ms,
            owner: inner.config.controller_id.clone(),
            cause: None,
        };
        if let Err(e) = inner.activations.journal(&pending).await {
            tracing::error!(%tid, "journal write failed: {e}");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The activation could not be accepted: {e}"),
            ));
        }
        Some(pending)
    } else {
        None
    };
    let msg = ActivationMessage {
        version: MESSAGE_VERSION,
        transid: tid.as_str().to_owned(),
        action: action.fully_qualified_name(),
        revision: resolved.rev,
        user,
        activation_id,
        root_controller: inner.config.controller_id.clone(),
        blocking,
        content: Some(Value::Object(content)),
        init_args: resolved.init_args.clone(),
        cause: None,
        received_at_ms,
        load_balancer: balancer.name().to_owned(),
        extra_annotations: resolved.extra_annotations.clone(),
        trace_context: Default::default(),
    };
    let completion = match balancer
        .publish(action.clone(), msg)
        .instrument(span.clone())
        .await
    {
        Ok(f) => f,
        Err(e) => {
            count(Outcome::Failed);
            tracing::warn!(%tid, activation = %activation_id, balancer = balancer.name(), "dispatch failed: {e}");
            if let Some(pending) = pending {
                // Close the journal entry: this activation will never run.
                let response = ActivationResponse::whisk_error(e.to_string());
                let record = record_for(pending, Some(&action.limits), response);
                if let Err(se) = inner.activations.store(&record).await {
                    tracing::error!(%tid, activation = %activation_id, "could not record the failed dispatch: {se}");
                }
                return Ok(with_activation_header(
                    ApiError::from(e).into_response(),
                    &activation_id,
                ));
            }
            return Err(e.into());
        }
    };
    if !blocking {
        // Dropping the future does not cancel the activation (the balancer guarantees its record).
        drop(completion);
        count(Outcome::Accepted);
        return Ok(accepted(&activation_id));
    }
    let waited = tokio::time::timeout(Duration::from_millis(wait_ms), completion)
        .instrument(span)
        .await;
    match waited {
        Ok(Ok(activation)) => {
            let response = completed(&activation, result_only);
            count(Outcome::Completed(activation.response.status));
            Ok(response)
        }
        // Not done in time, or its completion goes to another controller: the caller polls by id.
        Err(_) | Ok(Err(LoadBalancerError::Lost(_))) => {
            count(Outcome::Accepted);
            Ok(accepted(&activation_id))
        }
        Ok(Err(e)) => {
            count(Outcome::Failed);
            tracing::warn!(%tid, activation = %activation_id, "activation failed in the balancer: {e}");
            Ok(with_activation_header(
                ApiError::from(e).into_response(),
                &activation_id,
            ))
        }
    }
}

/// Writes whisk-internal-error records for this controller's journal entries that never got one.
pub(crate) async fn recover_orphans(inner: &Inner) -> Result<usize, whirl_spi::StoreError> {
    let orphans = inner
        .activations
        .orphans(&inner.config.controller_id)
        .await?;
    let mut written = 0;
    for p in orphans {
        let record = record_for(
            p,
            None,
            ActivationResponse::whisk_error(messages::INTERRUPTED),
        );
        if inner.activations.store(&record).await? == whirl_spi::StoreOutcome::Stored {
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn payloads_must_be_objects() {
        assert!(parse_payload(b"").unwrap().is_empty());
        assert!(parse_payload(b" \n").unwrap().is_empty());
        assert_eq!(parse_payload(br#"{"a":1}"#).unwrap(), obj(json!({"a":1})));
        for bad in [&b"[1,2]"[..], b"42", b"\"s\"", b"{", b"null"] {
            let e = parse_payload(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e
                .message
                .starts_with("The request content was malformed:\n"));
        }
    }

    #[test]
    fn parameters_merge_with_the_body_winning() {
        let defaults = obj(json!({"a": 1, "b": 2}));
        let m = merge_params(&defaults, &[], obj(json!({"b": 3, "c": 4}))).unwrap();
        assert_eq!(Value::Object(m), json!({"a": 1, "b": 3, "c": 4}));
        let m = merge_params(&Map::new(), &[], obj(json!({"x": true}))).unwrap();
        assert_eq!(Value::Object(m), json!({"x": true}));
    }

    #[test]
    fn final_parameters_cannot_be_overridden() {
        let defaults = obj(json!({"a": 1, "b": 2}));
        let immutable = vec!["a".to_string()];
        let e = merge_params(&defaults, &immutable, obj(json!({"a": 5}))).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, messages::RESERVED_PARAMS);
        let m = merge_params(&defaults, &immutable, obj(json!({"b": 5}))).unwrap();
        assert_eq!(Value::Object(m), json!({"a": 1, "b": 5}));
    }

    #[test]
    fn statuses_follow_openwhisk() {
        assert_eq!(http_status(ActivationStatus::Success), StatusCode::OK);
        assert_eq!(
            http_status(ActivationStatus::ApplicationError),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            http_status(ActivationStatus::DeveloperError),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            http_status(ActivationStatus::WhiskError),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    fn record(result: Value, status: ActivationStatus) -> Activation {
        let pending = PendingActivation {
            activation_id: ActivationId::generate(),
            namespace: "guest".into(),
            path: "guest/pkg/a".into(),
            version: "0.0.3".into(),
            subject: "guest".into(),
            kind: "python:3".into(),
            accepted_at: 5,
            owner: "controller0".into(),
            cause: None,
        };
        let limits = ActionLimits {
            timeout: 1000,
            memory: 256,
            logs: 10,
            concurrency: 1,
        };
        let response = ActivationResponse {
            status,
            result: Some(result),
            size: None,
        };
        record_for(pending, Some(&limits), response)
    }

    #[test]
    fn records_for_journaled_activations() {
        let a = record(json!({"error": "x"}), ActivationStatus::WhiskError);
        assert_eq!(a.name, "a");
        assert_eq!(a.namespace, "guest");
        assert_eq!(a.start, 5);
        assert_eq!(a.annotations.get("kind"), Some(&json!("python:3")));
        assert_eq!(a.annotations.get("limits").unwrap()["memory"], 256);
    }

    async fn body_of(r: Response) -> (StatusCode, HeaderMap, Value) {
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn completed_activations_answer_as_openwhisk() {
        let a = record(json!({"ok": true}), ActivationStatus::Success);
        assert_eq!(a.path(), Some("guest/pkg/a"));
        let (s, h, v) = body_of(completed(&a, false)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[ACTIVATION_ID_HEADER], a.activation_id.to_string());
        assert_eq!(v["activationId"], a.activation_id.to_string());
        assert_eq!(
            v["response"],
            json!({"status": "success", "success": true, "result": {"ok": true}})
        );
        let (_, _, v) = body_of(completed(&a, true)).await;
        assert_eq!(v, json!({"ok": true}));

        let a = record(json!({"error": "no"}), ActivationStatus::ApplicationError);
        let (s, _, v) = body_of(completed(&a, true)).await;
        assert_eq!(s, StatusCode::BAD_GATEWAY);
        assert_eq!(v, json!({"error": "no"}));

        let a = record(json!([1, 2]), ActivationStatus::Success);
        let (_, _, v) = body_of(completed(&a, false)).await;
        assert_eq!(v, json!([1, 2]));

        let a = record(json!({"error": "boom"}), ActivationStatus::WhiskError);
        let (s, _, v) = body_of(completed(&a, false)).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(v["response"]["status"], "whisk internal error");
    }

    #[tokio::test]
    async fn accepted_is_202_with_the_id() {
        let id = ActivationId::generate();
        let (s, h, v) = body_of(accepted(&id)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert_eq!(v, json!({"activationId": id.to_string()}));
        assert_eq!(h[ACTIVATION_ID_HEADER], id.to_string());
    }
}
