//! Sequences: the controller runs each component in order, blocking, feeding each one's result to
//! the next, and records the sequence's own activation (OpenWhisk's `SequenceActions`).
//!
//! - The input of the first component is the invoke's body; each later component gets its
//!   predecessor's result (an object or array; anything else becomes no input), merged onto the
//!   component's own (and its package's) parameters.
//! - The first component that fails (any non-success) ends the sequence with that response.
//! - Components are activations of their own: `cause` is the sequence's activation id and they
//!   carry the `causedBy: sequence` annotation. The sequence's record lists their ids in `logs`,
//!   sums their durations, takes the last response, and is annotated `topmost`, `path`, `kind`,
//!   `waitTime`, `limits` (memory: the largest component's) and, when nested, `causedBy`.
//! - Nested sequences run inline (their own record, caused by the outer one); at most
//!   `max_sequence_length` atomic actions run in all ("Too many actions in the sequence.").
//! - A component that cannot be found ends the sequence with an application error
//!   ("Sequence component does not exist."); one that cannot be dispatched or does not finish in
//!   its time limit plus a minute, with a whisk error.
//!
//! The sequence runs in its own task, so a blocking caller whose wait runs out gets 202 with the
//! id and the sequence still completes to its record.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use whirl_model::message::MESSAGE_VERSION;
use whirl_model::{
    Activation, ActivationId, ActivationMessage, ActivationResponse, EntityName, Exec,
    FullyQualifiedName, Identity, Params,
};
use whirl_spi::PendingActivation;

use crate::actions::Target;
use crate::cache::ResolvedAction;
use crate::context::TransId;
use crate::error::ApiError;
use crate::Inner;

/// OpenWhisk's messages.
pub(crate) const SEQUENCE_FAILED: &str = "Sequence failed.";

/// Extra time a component may take beyond its own time limit before the sequence gives up on it.
pub(crate) const COMPONENT_GRACE_MS: u64 = 60_000;

/// What a running (possibly nested) sequence has done so far.
struct Accounting {
    /// Atomic actions run so far, nested sequences included.
    atomic: usize,
    /// The last response (the input of the next component while the sequence succeeds).
    response: ActivationResponse,
    /// Component activation ids, in order.
    logs: Vec<String>,
    duration: u64,
    max_memory: Option<u64>,
}

/// Everything a sequence run needs besides the sequence itself.
#[derive(Clone)]
pub(crate) struct SequenceContext {
    pub inner: Arc<Inner>,
    pub user: Identity,
    pub tid: TransId,
    pub received_at_ms: u64,
}

/// The components of a sequence action as fully qualified names.
fn components_of(resolved: &ResolvedAction, user_ns: &EntityName) -> Vec<FullyQualifiedName> {
    match &resolved.action.exec {
        Exec::Sequence { components } => components
            .iter()
            .filter_map(|c| FullyQualifiedName::parse(c, user_ns).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Journals a top-level sequence's activation (so that a crash still ends it in a record).
pub(crate) async fn journal(
    ctx: &SequenceContext,
    seq: &ResolvedAction,
    id: ActivationId,
) -> Result<(), ApiError> {
    let a = &seq.action;
    let pending = PendingActivation {
        activation_id: id,
        namespace: ctx.user.namespace.to_string(),
        path: format!("{}/{}", a.namespace, a.name),
        version: a.version.clone(),
        subject: ctx.user.subject.clone(),
        kind: a.kind().to_owned(),
        accepted_at: ctx.received_at_ms,
        owner: ctx.inner.config.controller_id.clone(),
        cause: None,
    };
    ctx.inner.activations.journal(&pending).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("The activation could not be accepted: {e}"),
        )
    })
}

/// Runs a sequence to its stored record and returns the record with the number of atomic
/// actions it ran. A top-level sequence may still have a cause (the trigger that fired it).
pub(crate) fn run(
    ctx: SequenceContext,
    seq: Arc<ResolvedAction>,
    id: ActivationId,
    input: Value,
    cause: Option<ActivationId>,
    topmost: bool,
    atomic_so_far: usize,
) -> BoxFuture<'static, (Activation, usize)> {
    Box::pin(async move {
        let start = whirl_model::time::now_ms();
        let components = components_of(&seq, &ctx.user.namespace);
        let mut acc = Accounting {
            atomic: atomic_so_far,
            response: ActivationResponse::success(input),
            logs: Vec::with_capacity(components.len()),
            duration: 0,
            max_memory: None,
        };
        for c in components {
            if acc.atomic >= ctx.inner.config.limits.max_sequence_length {
                acc.response =
                    ActivationResponse::application_error_msg(crate::validate::SEQUENCE_TOO_LONG);
                break;
            }
            let target = Target {
                namespace: c.namespace.to_string(),
                package: c.package.as_ref().map(ToString::to_string),
                name: c.name.to_string(),
            };
            let owner = c.namespace == ctx.user.namespace;
            let component = match ctx.inner.resolve_target(&target, owner).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(tid = %ctx.tid, component = %c, "sequence component unavailable: {}", e.message);
                    acc.response = ActivationResponse::application_error_msg(
                        crate::validate::SEQUENCE_COMPONENT_NOT_FOUND,
                    );
                    break;
                }
            };
            // The previous result is the next input: objects and arrays pass, anything else is none.
            let input = match acc.response.result.take() {
                Some(v @ (Value::Object(_) | Value::Array(_))) => v,
                _ => Value::Object(Map::new()),
            };
            let (record, atomic) = if component.conductor {
                let record = crate::conductor::run(
                    ctx.clone(),
                    component.clone(),
                    ActivationId::generate(),
                    input,
                    Some(id),
                    Default::default(),
                )
                .await;
                (record, acc.atomic + 1)
            } else if matches!(component.action.exec, Exec::Sequence { .. }) {
                let inner_id = ActivationId::generate();
                run(
                    ctx.clone(),
                    component.clone(),
                    inner_id,
                    input,
                    Some(id),
                    false,
                    acc.atomic,
                )
                .await
            } else {
                match invoke_component(&ctx, &component, input, id).await {
                    Ok(record) => (record, acc.atomic + 1),
                    Err((failed_id, response)) => {
                        acc.logs.extend(failed_id.map(|i| i.to_string()));
                        acc.response = response;
                        break;
                    }
                }
            };
            acc.atomic = atomic;
            acc.logs.push(record.activation_id.to_string());
            acc.duration += record.duration.unwrap_or(0);
            let memory = record
                .annotations
                .get("limits")
                .and_then(|l| l.get("memory"))
                .and_then(Value::as_u64);
            acc.max_memory = acc.max_memory.max(memory);
            let failed = !record.response.is_success()
                || record
                    .response
                    .result
                    .as_ref()
                    .is_some_and(|r| r.get("error").is_some());
            acc.response = record.response;
            if failed {
                break;
            }
        }
        let record = sequence_record(&ctx, &seq, id, cause, topmost, start, acc.atomic, acc);
        let atomic = record.1;
        let record = record.0;
        if let Err(e) = ctx.inner.activations.store(&record).await {
            tracing::error!(tid = %ctx.tid, activation = %id, "could not store the sequence's record: {e}");
        }
        (record, atomic)
    })
}

#[allow(clippy::too_many_arguments)]
fn sequence_record(
    ctx: &SequenceContext,
    seq: &ResolvedAction,
    id: ActivationId,
    cause: Option<ActivationId>,
    topmost: bool,
    start: u64,
    atomic: usize,
    acc: Accounting,
) -> (Activation, usize) {
    let a = &seq.action;
    let mut annotations = Params::new();
    annotations.put("topmost", Value::Bool(topmost));
    annotations.put("path", Value::String(format!("{}/{}", a.namespace, a.name)));
    annotations.put("kind", Value::String("sequence".into()));
    if !topmost {
        annotations.put("causedBy", Value::String("sequence".into()));
    }
    annotations.put("waitTime", json!(start.saturating_sub(ctx.received_at_ms)));
    for (k, v) in &seq.extra_annotations {
        annotations.put(k.clone(), v.clone());
    }
    if let Some(m) = acc.max_memory {
        annotations.put(
            "limits",
            json!({"timeout": a.limits.timeout, "memory": m, "logs": a.limits.logs}),
        );
    }
    let end = whirl_model::time::now_ms().max(start);
    (
        Activation {
            namespace: ctx.user.namespace.to_string(),
            name: a.name.clone(),
            version: a.version.clone(),
            subject: ctx.user.subject.clone(),
            activation_id: id,
            start,
            end,
            duration: Some(acc.duration),
            publish: false,
            cause,
            response: acc.response,
            logs: acc.logs,
            annotations,
        },
        atomic,
    )
}

/// Invokes one atomic component, blocking, caused by the sequence `cause`. A failure to run it
/// at all is the sequence's failure (with the component's id when it was dispatched).
pub(crate) async fn invoke_component(
    ctx: &SequenceContext,
    component: &ResolvedAction,
    input: Value,
    cause: ActivationId,
) -> Result<Activation, (Option<ActivationId>, ActivationResponse)> {
    let action = &component.action;
    let content = match input {
        Value::Object(payload) if !component.defaults.is_empty() => {
            let mut merged = component.defaults.clone();
            merged.extend(payload);
            Value::Object(merged)
        }
        other => other,
    };
    let mut extra = Vec::with_capacity(component.extra_annotations.len() + 1);
    extra.push(("causedBy".to_owned(), Value::String("sequence".into())));
    extra.extend(component.extra_annotations.iter().cloned());
    let balancer = ctx.inner.balancers.resolve(action);
    let activation_id = ActivationId::generate();
    let msg = ActivationMessage {
        version: MESSAGE_VERSION,
        transid: ctx.tid.as_str().to_owned(),
        action: action.fully_qualified_name(),
        revision: component.rev,
        user: ctx.user.clone(),
        activation_id,
        root_controller: ctx.inner.config.controller_id.clone(),
        blocking: true,
        content: Some(content),
        init_args: component.init_args.clone(),
        cause: Some(cause),
        received_at_ms: whirl_model::time::now_ms(),
        load_balancer: balancer.name().to_owned(),
        extra_annotations: extra,
        trace_context: Default::default(),
    };
    let completion = balancer.publish(action.clone(), msg).await.map_err(|e| {
        tracing::warn!(tid = %ctx.tid, "sequence component dispatch failed: {e}");
        (None, ActivationResponse::whisk_error(SEQUENCE_FAILED))
    })?;
    let wait = Duration::from_millis(action.limits.timeout.saturating_add(COMPONENT_GRACE_MS));
    match tokio::time::timeout(wait, completion).await {
        Ok(Ok(record)) => Ok(record),
        Err(_) | Ok(Err(whirl_spi::LoadBalancerError::Lost(_))) => Err((
            Some(activation_id),
            ActivationResponse::whisk_error(format!(
                "Timeout reached when retrieving activation {activation_id} for sequence component."
            )),
        )),
        Ok(Err(e)) => {
            tracing::warn!(tid = %ctx.tid, "sequence component failed in the balancer: {e}");
            Err((
                Some(activation_id),
                ActivationResponse::whisk_error(SEQUENCE_FAILED),
            ))
        }
    }
}
