//! Conductor actions (annotation `conductor: true`): compositions driven by the action itself,
//! as OpenWhisk's `PrimitiveActions.invokeComposition` runs them.
//!
//! The conductor runs with the input (merged with the composition's `state`, if any). Its result
//! names the next step: `action` (a name, resolved like a sequence component), `params` (that
//! action's input; a non-object is boxed as `{"value": ...}`) and `state` (kept for the next
//! conductor run; boxed as `{"state": ...}`). The named action runs and its result (even an
//! error) goes back to the conductor, and so on, until the conductor returns no `action`: then
//! the composition ends with the conductor's status and its `params` (or its whole result).
//!
//! - A component that cannot be resolved or accessed, or an invalid name, sends the conductor
//!   `{"error": ...}` with OpenWhisk's message instead of running anything.
//! - At most `max_sequence_length` components and twice as many conductor runs, nested
//!   compositions included ("Too many actions in the composition.").
//! - Components may be actions, sequences or compositions; every activation is caused by the
//!   composition's, whose record lists them in `logs`, is annotated `conductor: true`,
//!   `kind: sequence`, `topmost`, `path`, `waitTime`, `limits` and sums their durations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use whirl_model::{Activation, ActivationId, ActivationResponse, Exec, FullyQualifiedName, Params};

use crate::actions::Target;
use crate::cache::ResolvedAction;
use crate::sequence::{invoke_component, SequenceContext};

/// OpenWhisk's messages.
pub(crate) const TOO_LONG: &str = "Too many actions in the composition.";

/// Counts shared by a composition and the compositions nested in it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts(Arc<(AtomicUsize, AtomicUsize)>);

impl Counts {
    fn conductors(&self) -> &AtomicUsize {
        &self.0 .0
    }
    fn components(&self) -> &AtomicUsize {
        &self.0 .1
    }
}

struct Session {
    logs: Vec<String>,
    duration: u64,
    max_memory: u64,
    state: Option<Map<String, Value>>,
}

impl Session {
    fn record(&mut self, a: &Activation) {
        self.logs.push(a.activation_id.to_string());
        self.duration += a.duration.unwrap_or_else(|| a.end.saturating_sub(a.start));
        if let Some(m) = a
            .annotations
            .get("limits")
            .and_then(|l| l.get("memory"))
            .and_then(Value::as_u64)
        {
            self.max_memory = self.max_memory.max(m);
        }
    }
}

fn error_input(message: String) -> Value {
    json!({ "error": message })
}

/// Runs a composition of the conductor action `conductor` to its stored record.
pub(crate) fn run(
    ctx: SequenceContext,
    conductor: Arc<ResolvedAction>,
    id: ActivationId,
    input: Value,
    cause: Option<ActivationId>,
    counts: Counts,
) -> BoxFuture<'static, Activation> {
    Box::pin(async move {
        let start = whirl_model::time::now_ms();
        let max = ctx.inner.config.limits.max_sequence_length;
        let mut session = Session {
            logs: Vec::new(),
            duration: 0,
            max_memory: conductor.action.limits.memory,
            state: None,
        };
        let mut payload = input;
        let response = loop {
            if counts.conductors().load(Ordering::Relaxed) > 2 * max {
                break ActivationResponse::application_error_msg(TOO_LONG);
            }
            // The state of the last conductor run is merged into its next input.
            let params = match payload {
                Value::Object(mut fields) => {
                    if let Some(state) = &session.state {
                        fields.extend(state.clone());
                    }
                    Value::Object(fields)
                }
                _ => Value::Object(Map::new()),
            };
            counts.conductors().fetch_add(1, Ordering::Relaxed);
            let activation = match invoke_component(&ctx, &conductor, params, id).await {
                Ok(a) => a,
                Err((failed, response)) => {
                    session.logs.extend(failed.map(|i| i.to_string()));
                    break response;
                }
            };
            session.record(&activation);
            let result = match &activation.response.result {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            let params = result.get("params").map(|p| match p {
                Value::Object(o) => o.clone(),
                other => {
                    let mut m = Map::new();
                    m.insert("value".into(), other.clone());
                    m
                }
            });
            session.state = result.get("state").map(|s| match s {
                Value::Object(o) => o.clone(),
                other => {
                    let mut m = Map::new();
                    m.insert("state".into(), other.clone());
                    m
                }
            });
            let Some(next) = result.get("action") else {
                break ActivationResponse {
                    status: activation.response.status,
                    result: Some(Value::Object(params.unwrap_or(result))),
                    size: None,
                };
            };
            let fqn = next
                .as_str()
                .and_then(|s| FullyQualifiedName::parse(s.trim(), &ctx.user.namespace).ok());
            let Some(fqn) = fqn else {
                payload = error_input(format!(
                    "Failed to parse action name from json value {next} during composition."
                ));
                continue;
            };
            if counts.components().load(Ordering::Relaxed) >= max {
                payload = error_input(TOO_LONG.to_owned());
                continue;
            }
            let name = format!("{}/{}", fqn.path(), fqn.name);
            let target = Target {
                namespace: fqn.namespace.to_string(),
                package: fqn.package.as_ref().map(ToString::to_string),
                name: fqn.name.to_string(),
            };
            let owner = fqn.namespace == ctx.user.namespace;
            let component = match ctx.inner.resolve_target(&target, owner).await {
                Ok(c) => c,
                Err(e) if e.status == axum::http::StatusCode::FORBIDDEN => {
                    payload = error_input(format!(
                        "Failed entitlement check for action with name '{name}' during composition."
                    ));
                    continue;
                }
                Err(_) => {
                    payload = error_input(format!(
                        "Failed to resolve action with name '{name}' during composition."
                    ));
                    continue;
                }
            };
            let input = Value::Object(params.unwrap_or_default());
            let done = if component.conductor {
                let nested = run(
                    ctx.clone(),
                    component,
                    ActivationId::generate(),
                    input,
                    Some(id),
                    counts.clone(),
                )
                .await;
                Ok(nested)
            } else if matches!(component.action.exec, Exec::Sequence { .. }) {
                counts.components().fetch_add(1, Ordering::Relaxed);
                let (record, _) = crate::sequence::run(
                    ctx.clone(),
                    component,
                    ActivationId::generate(),
                    input,
                    Some(id),
                    false,
                    0,
                )
                .await;
                Ok(record)
            } else {
                counts.components().fetch_add(1, Ordering::Relaxed);
                invoke_component(&ctx, &component, input, id).await
            };
            match done {
                Ok(a) => {
                    session.record(&a);
                    payload = a
                        .response
                        .result
                        .unwrap_or_else(|| Value::Object(Map::new()));
                }
                Err((failed, response)) => {
                    session.logs.extend(failed.map(|i| i.to_string()));
                    break response;
                }
            }
        };
        let record = composition_record(&ctx, &conductor, id, cause, start, session, response);
        if let Err(e) = ctx.inner.activations.store(&record).await {
            tracing::error!(tid = %ctx.tid, activation = %id, "could not store the composition's record: {e}");
        }
        record
    })
}

fn composition_record(
    ctx: &SequenceContext,
    conductor: &ResolvedAction,
    id: ActivationId,
    cause: Option<ActivationId>,
    start: u64,
    session: Session,
    response: ActivationResponse,
) -> Activation {
    let a = &conductor.action;
    let mut annotations = Params::new();
    annotations.put("topmost", Value::Bool(cause.is_none()));
    annotations.put("path", Value::String(format!("{}/{}", a.namespace, a.name)));
    annotations.put("kind", Value::String("sequence".into()));
    annotations.put("conductor", Value::Bool(true));
    if cause.is_some() {
        annotations.put("causedBy", Value::String("sequence".into()));
    }
    annotations.put("waitTime", json!(start.saturating_sub(ctx.received_at_ms)));
    for (k, v) in &conductor.extra_annotations {
        annotations.put(k.clone(), v.clone());
    }
    annotations.put(
        "limits",
        json!({"timeout": a.limits.timeout, "memory": session.max_memory, "logs": a.limits.logs}),
    );
    Activation {
        namespace: ctx.user.namespace.to_string(),
        name: a.name.clone(),
        version: a.version.clone(),
        subject: ctx.user.subject.clone(),
        activation_id: id,
        start,
        end: whirl_model::time::now_ms().max(start),
        duration: Some(session.duration),
        publish: false,
        cause,
        response,
        logs: session.logs,
        annotations,
    }
}

/// Runs a sequence or a composition (the actions the controller itself drives) to its record.
pub(crate) fn run_composite(
    ctx: SequenceContext,
    action: Arc<ResolvedAction>,
    id: ActivationId,
    input: Value,
    cause: Option<ActivationId>,
) -> BoxFuture<'static, Activation> {
    if action.conductor {
        run(ctx, action, id, input, cause, Counts::default())
    } else {
        Box::pin(async move {
            crate::sequence::run(ctx, action, id, input, cause, true, 0)
                .await
                .0
        })
    }
}

/// Whether invoking the action runs a sequence or a composition in the controller.
pub(crate) fn is_composite(action: &ResolvedAction) -> bool {
    action.conductor || matches!(action.action.exec, Exec::Sequence { .. })
}
