//! Triggers and rules: CRUD, firing, and rule activation (OpenWhisk's `Triggers` and `Rules`).
//!
//! - A rule's status lives in its trigger's `rules` map (as OpenWhisk keeps it): creating,
//!   updating, enabling/disabling and deleting a rule rewrite the trigger document, and firing a
//!   trigger reads that one document.
//! - `POST .../triggers/{name}` answers 204 when the trigger has no active rule (no record), else
//!   202 with the trigger activation's id; each active rule's action then starts (non-blocking)
//!   with the trigger's parameters overridden by the fire's payload, on top of the action's own
//!   parameters, and with `cause` = the trigger activation. The trigger activation's `logs` hold
//!   one JSON line per rule: `{"statusCode", "success", "activationId" | "error", "rule",
//!   "action"}`; its response is the payload.
//! - Rules may name actions in packages, bindings and other namespaces' published packages
//!   (resolved as invokes resolve them); triggers are their namespace's own.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use whirl_model::action::next_version;
use whirl_model::error::messages;
use whirl_model::{
    Activation, ActivationId, ActivationResponse, EntityRef, FullyQualifiedName, Identity, Params,
    ReducedRule, Rule, RulePut, RuleStatus, Trigger, TriggerPut,
};
use whirl_spi::{Collection, Document, ListQuery, PutMode, StoreError};

use crate::actions::Target;
use crate::auth::{authorize_namespace, Caller};
use crate::context::{json, TransId};
use crate::error::ApiError;
use crate::invoke::{parse_payload, start_activation, ACTIVATION_ID_HEADER};
use crate::query::Query;
use crate::validate;
use crate::{read_body, require_json, Inner};

/// How many times a rule change retries its trigger update after losing a race.
const TRIGGER_UPDATE_ATTEMPTS: usize = 5;

fn parse<T: serde::de::DeserializeOwned>(doc: Document) -> Result<(T, u64), ApiError> {
    let rev = doc.rev;
    serde_json::from_value(doc.body)
        .map(|t| (t, rev))
        .map_err(|e| {
            tracing::error!("stored entity cannot be read: {e}");
            ApiError::internal(crate::error::CORRUPTED_ENTITY)
        })
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(ApiError::malformed)
}

fn to_value<T: serde::Serialize>(t: &T) -> Result<Value, ApiError> {
    serde_json::to_value(t).map_err(|e| ApiError::internal(e.to_string()))
}

/// The checks every entity `PUT` shares: sizes and keys of parameters and annotations, version.
fn check_common(
    inner: &Inner,
    parameters: Option<&Params>,
    annotations: Option<&Params>,
    version: Option<&String>,
) -> Result<(), ApiError> {
    let max = inner.config.limits.max_parameter_bytes;
    for (field, p) in [("parameters", parameters), ("annotations", annotations)] {
        if let Some(p) = p {
            let is = validate::params_size(p);
            if is > max {
                return Err(ApiError::entity_too_big(field, is, max));
            }
            p.validate(if field == "parameters" {
                "Parameter"
            } else {
                "Annotation"
            })
            .map_err(validate::model_error)?;
        }
    }
    if let Some(v) = version {
        validate::check_version(v)?;
    }
    Ok(())
}

/// A paged listing of one collection of the caller's namespace (or its count).
async fn list_collection(
    inner: &Inner,
    user: &Identity,
    ns: &str,
    c: Collection,
    q: Option<String>,
    view: impl Fn(Value) -> Value,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(user, ns)?;
    let q = Query(q.as_deref().unwrap_or(""));
    let skip = q.skip(c.as_str())?;
    let limit = q.limit(c.as_str())?;
    if q.bool("count", false)? {
        let n = inner.entities.count(c, ns, None).await?;
        return Ok(json(
            StatusCode::OK,
            &json!({ c.as_str(): n.saturating_sub(skip as u64) }),
        ));
    }
    let docs = inner
        .entities
        .list(
            c,
            ns,
            &ListQuery {
                prefix: None,
                skip,
                limit,
            },
        )
        .await?;
    let list: Vec<Value> = docs.into_iter().map(|d| view(d.body)).collect();
    Ok(json(StatusCode::OK, &list))
}

// ---------------------------------------------------------------------------------------------
// Triggers

/// `GET /namespaces/{ns}/triggers`.
pub(crate) async fn list_triggers(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    list_collection(&inner, &user, &ns, Collection::Triggers, q, |mut v| {
        if let Value::Object(m) = &mut v {
            m.remove("parameters");
            m.remove("limits");
            m.remove("rules");
        }
        v
    })
    .await
}

/// A stored trigger or rule with its revision, if present.
async fn get_doc<T: serde::de::DeserializeOwned>(
    inner: &Inner,
    c: Collection,
    ns: &str,
    name: &str,
) -> Result<Option<(T, u64)>, ApiError> {
    match inner.entities.get(c, ns, name).await? {
        Some(doc) => Ok(Some(parse(doc)?)),
        None => Ok(None),
    }
}

async fn get_trigger_doc(
    inner: &Inner,
    ns: &str,
    name: &str,
) -> Result<Option<(Trigger, u64)>, ApiError> {
    get_doc(inner, Collection::Triggers, ns, name).await
}

/// `GET /namespaces/{ns}/triggers/{name}`.
pub(crate) async fn get_trigger(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    validate::entity_name(&name)?;
    let (t, _) = get_trigger_doc(&inner, ns, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(json(StatusCode::OK, &t))
}

/// `PUT /namespaces/{ns}/triggers/{name}[?overwrite=true]`.
pub(crate) async fn put_trigger(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?.to_owned();
    validate::entity_name(&name)?;
    let overwrite = Query(q.as_deref().unwrap_or("")).bool("overwrite", false)?;
    require_json(&headers)?;
    let limit = inner.config.limits.max_parameter_bytes.saturating_mul(2) + (1 << 20);
    let put: TriggerPut = parse_body(&read_body(&headers, body, limit).await?)?;
    check_common(
        &inner,
        put.parameters.as_ref(),
        put.annotations.as_ref(),
        put.version.as_ref(),
    )?;
    if let Some(feed) = put.annotations.as_ref().and_then(|a| a.get("feed")) {
        let ok = feed.as_str().is_some_and(|f| {
            f.trim_start_matches('/')
                .split('/')
                .all(whirl_model::names::is_valid_name)
        });
        if !ok {
            return Err(ApiError::bad_request("Feed name is not valid"));
        }
    }
    let now = whirl_model::time::now_ms();
    let existing = get_trigger_doc(&inner, &ns, &name).await?;
    let (trigger, mode) = match existing {
        Some(_) if !overwrite => return Err(ApiError::conflict(messages::ENTITY_EXISTS)),
        Some((old, rev)) => (
            Trigger {
                version: put.version.unwrap_or_else(|| next_version(&old.version)),
                publish: put.publish.unwrap_or(old.publish),
                parameters: put.parameters.unwrap_or(old.parameters),
                limits: put.limits.unwrap_or(old.limits),
                annotations: put.annotations.unwrap_or(old.annotations),
                updated: now,
                ..old
            },
            PutMode::Update { rev },
        ),
        None => (
            Trigger {
                namespace: ns.clone(),
                name: name.clone(),
                version: put.version.unwrap_or_else(|| "0.0.1".into()),
                publish: put.publish.unwrap_or(false),
                parameters: put.parameters.unwrap_or_default(),
                limits: put.limits.unwrap_or_default(),
                annotations: put.annotations.unwrap_or_default(),
                rules: None,
                updated: now,
            },
            PutMode::Create,
        ),
    };
    let body = to_value(&trigger)?;
    match inner
        .entities
        .put(Collection::Triggers, &ns, &name, &body, mode)
        .await
    {
        Ok(_) => Ok(json(StatusCode::OK, &body)),
        Err(StoreError::Conflict(_)) if mode == PutMode::Create => {
            Err(ApiError::conflict(messages::ENTITY_EXISTS))
        }
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /namespaces/{ns}/triggers/{name}` (its rules stay, inactive, as in OpenWhisk).
pub(crate) async fn delete_trigger(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    validate::entity_name(&name)?;
    let doc = inner
        .entities
        .delete(Collection::Triggers, ns, &name, None)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let (t, _): (Trigger, u64) = parse(doc)?;
    Ok(json(StatusCode::OK, &t))
}

/// One rule's outcome in a trigger activation's logs.
fn rule_result(rule: &str, action: &str, outcome: Result<ActivationId, (u8, String)>) -> String {
    let mut v = json!({"rule": rule, "action": action});
    match outcome {
        Ok(id) => {
            v["statusCode"] = json!(0);
            v["success"] = json!(true);
            v["activationId"] = json!(id);
        }
        Err((code, error)) => {
            v["statusCode"] = json!(code);
            v["success"] = json!(false);
            v["error"] = json!(error);
        }
    }
    v.to_string()
}

/// `POST /namespaces/{ns}/triggers/{name}`: fire.
pub(crate) async fn fire_trigger(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    tid: TransId,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at_ms = whirl_model::time::now_ms();
    let ns = authorize_namespace(&user, &ns)?.to_owned();
    validate::entity_name(&name)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, inner.config.limits.max_payload_bytes).await?;
    let payload = parse_payload(&bytes)?;
    drop(bytes);
    inner.throttles.check_fire(&user)?;
    let (trigger, _) = get_trigger_doc(&inner, &ns, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let active: Vec<(String, ReducedRule)> = trigger
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, r)| r.status == RuleStatus::Active)
        .collect();
    if active.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let id = ActivationId::generate();
    let mut args = trigger.parameters.to_object();
    args.extend(payload.clone());
    let record = Activation {
        namespace: user.namespace.to_string(),
        name: trigger.name.clone(),
        version: trigger.version.clone(),
        subject: user.subject.clone(),
        activation_id: id,
        start: received_at_ms,
        end: 0,
        duration: None,
        publish: false,
        cause: None,
        response: ActivationResponse::success(Value::Object(payload)),
        logs: Vec::with_capacity(active.len()),
        annotations: Params::new(),
    };
    let task_inner = inner.clone();
    tokio::spawn(async move {
        let inner = task_inner;
        let mut record = record;
        for (rule_name, rule) in active {
            let action = rule.action.as_path();
            let outcome =
                fire_rule(&inner, &user, &tid, &rule, args.clone(), id, received_at_ms).await;
            record.logs.push(rule_result(&rule_name, &action, outcome));
        }
        if let Err(e) = inner.activations.store(&record).await {
            tracing::error!(%tid, activation = %id, "could not store the trigger activation: {e}");
        }
    });
    let mut r = json(StatusCode::ACCEPTED, &json!({ "activationId": id }));
    if let Ok(v) = axum::http::HeaderValue::from_str(&id.to_string()) {
        r.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
    Ok(r)
}

/// Starts one rule's action; an error carries OpenWhisk's status code (1 application error for
/// a refusal, 3 whisk error for a server failure) and the message an invoke would have had.
async fn fire_rule(
    inner: &Arc<Inner>,
    user: &Identity,
    tid: &TransId,
    rule: &ReducedRule,
    args: Map<String, Value>,
    cause: ActivationId,
    received_at_ms: u64,
) -> Result<ActivationId, (u8, String)> {
    let fail = |e: ApiError| {
        let code = if e.status.is_server_error() { 3 } else { 1 };
        (code, e.message.into_owned())
    };
    let fqn = rule
        .action
        .fqn()
        .ok_or_else(|| (1, messages::RESOURCE_DOES_NOT_EXIST.to_owned()))?;
    let target = Target {
        namespace: fqn.namespace.to_string(),
        package: fqn.package.as_ref().map(ToString::to_string),
        name: fqn.name.to_string(),
    };
    let owner = fqn.namespace == user.namespace;
    // A rule's action is an invoke like any other: throttled the same way.
    inner.throttles.check_invoke_rate(user).map_err(fail)?;
    let resolved = inner.resolve_target(&target, owner).await.map_err(fail)?;
    crate::invoke::check_concurrency(inner, user, &resolved).map_err(fail)?;
    start_activation(
        inner,
        user.clone(),
        tid,
        resolved,
        args,
        cause,
        received_at_ms,
    )
    .await
    .map_err(fail)
}

// ---------------------------------------------------------------------------------------------
// Rules

/// A rule as GET and PUT show it: with its `status` from its trigger.
fn rule_view(rule: &Rule, status: RuleStatus) -> Result<Value, ApiError> {
    let mut v = to_value(rule)?;
    v["status"] = json!(status.as_str());
    Ok(v)
}

fn status_in(trigger: Option<&Trigger>, rule_key: &str) -> RuleStatus {
    trigger
        .and_then(|t| t.rules.as_ref())
        .and_then(|r| r.get(rule_key))
        .map_or(RuleStatus::Inactive, |r| r.status)
}

/// The trigger of a rule, if it (still) exists.
async fn trigger_of(inner: &Inner, r: &EntityRef) -> Result<Option<(Trigger, u64)>, ApiError> {
    get_trigger_doc(inner, &r.path, &r.name).await
}

/// Rewrites a trigger's `rules` map, retrying when a concurrent write wins.
async fn update_trigger_rules(
    inner: &Inner,
    trigger: &EntityRef,
    change: impl Fn(&mut BTreeMap<String, ReducedRule>),
) -> Result<(), ApiError> {
    for _ in 0..TRIGGER_UPDATE_ATTEMPTS {
        let Some((mut t, rev)) = trigger_of(inner, trigger).await? else {
            return Err(ApiError::not_found());
        };
        let mut rules = t.rules.take().unwrap_or_default();
        change(&mut rules);
        t.rules = Some(rules);
        let body = to_value(&t)?;
        match inner
            .entities
            .put(
                Collection::Triggers,
                &trigger.path,
                &trigger.name,
                &body,
                PutMode::Update { rev },
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(crate::error::CONCURRENT_MODIFICATION))
}

/// `GET /namespaces/{ns}/rules`.
pub(crate) async fn list_rules(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    list_collection(&inner, &user, &ns, Collection::Rules, q, |v| v).await
}

async fn get_rule_doc(
    inner: &Inner,
    ns: &str,
    name: &str,
) -> Result<Option<(Rule, u64)>, ApiError> {
    get_doc(inner, Collection::Rules, ns, name).await
}

/// `GET /namespaces/{ns}/rules/{name}`: the rule with its status.
pub(crate) async fn get_rule(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    validate::entity_name(&name)?;
    let (rule, _) = get_rule_doc(&inner, ns, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let trigger = trigger_of(&inner, &rule.trigger).await?;
    let status = status_in(trigger.as_ref().map(|t| &t.0), &format!("{ns}/{name}"));
    Ok(json(StatusCode::OK, &rule_view(&rule, status)?))
}

/// Resolves a rule's trigger (must be the caller's and exist) and action (must exist and be
/// readable by the caller), with OpenWhisk's messages.
async fn check_rule_refs(
    inner: &Inner,
    user: &Identity,
    trigger: &str,
    action: &str,
) -> Result<(EntityRef, EntityRef), ApiError> {
    let parse = |s: &str| {
        FullyQualifiedName::parse(s.trim(), &user.namespace)
            .map_err(|e| ApiError::malformed(e.to_string()))
    };
    let (t, a) = (parse(trigger)?, parse(action)?);
    if t.package.is_some() {
        return Err(ApiError::malformed("a trigger is never in a package"));
    }
    if t.namespace != user.namespace {
        return Err(ApiError::forbidden());
    }
    let target = Target {
        namespace: a.namespace.to_string(),
        package: a.package.as_ref().map(ToString::to_string),
        name: a.name.to_string(),
    };
    match inner
        .resolve_target(&target, a.namespace == user.namespace)
        .await
    {
        Ok(_) => {}
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return Err(ApiError::bad_request(format!("action {a} does not exist")));
        }
        Err(e) => return Err(e),
    }
    if get_trigger_doc(inner, t.namespace.as_str(), t.name.as_str())
        .await?
        .is_none()
    {
        return Err(ApiError::bad_request(format!("trigger {t} does not exist")));
    }
    Ok(((&t).into(), (&a).into()))
}

/// `PUT /namespaces/{ns}/rules/{name}[?overwrite=true]`: create (active) or update (keeping its
/// status, moving it to a new trigger if given).
pub(crate) async fn put_rule(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?.to_owned();
    validate::entity_name(&name)?;
    let overwrite = Query(q.as_deref().unwrap_or("")).bool("overwrite", false)?;
    require_json(&headers)?;
    let limit = inner.config.limits.max_parameter_bytes.saturating_mul(2) + (1 << 20);
    let put: RulePut = parse_body(&read_body(&headers, body, limit).await?)?;
    check_common(&inner, None, put.annotations.as_ref(), put.version.as_ref())?;
    let key = format!("{ns}/{name}");
    let now = whirl_model::time::now_ms();
    let existing = get_rule_doc(&inner, &ns, &name).await?;
    if existing.is_some() && !overwrite {
        return Err(ApiError::conflict(messages::ENTITY_EXISTS));
    }
    let (rule, mode, status, old_trigger) = match existing {
        None => {
            let (Some(t), Some(a)) = (&put.trigger, &put.action) else {
                return Err(ApiError::bad_request(
                    "rule requires a valid trigger and a valid action",
                ));
            };
            let (trigger, action) = check_rule_refs(&inner, &user, &t.0, &a.0).await?;
            let rule = Rule {
                namespace: ns.clone(),
                name: name.clone(),
                version: put.version.unwrap_or_else(|| "0.0.1".into()),
                publish: put.publish.unwrap_or(false),
                trigger,
                action,
                annotations: put.annotations.unwrap_or_default(),
                updated: now,
            };
            (rule, PutMode::Create, RuleStatus::Active, None)
        }
        Some((old, rev)) => {
            let old_t = trigger_of(&inner, &old.trigger).await?;
            let status = status_in(old_t.as_ref().map(|t| &t.0), &key);
            let t = put
                .trigger
                .as_ref()
                .map_or_else(|| format!("/{}", old.trigger.as_path()), |t| t.0.clone());
            let a = put
                .action
                .as_ref()
                .map_or_else(|| format!("/{}", old.action.as_path()), |a| a.0.clone());
            let (trigger, action) = check_rule_refs(&inner, &user, &t, &a).await?;
            let moved = (trigger != old.trigger).then(|| old.trigger.clone());
            let rule = Rule {
                version: put.version.unwrap_or_else(|| next_version(&old.version)),
                publish: put.publish.unwrap_or(old.publish),
                annotations: put.annotations.unwrap_or(old.annotations),
                trigger,
                action,
                updated: now,
                ..old
            };
            (rule, PutMode::Update { rev }, status, moved)
        }
    };
    let body = to_value(&rule)?;
    match inner
        .entities
        .put(Collection::Rules, &ns, &name, &body, mode)
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) if mode == PutMode::Create => {
            return Err(ApiError::conflict(messages::ENTITY_EXISTS))
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(old) = old_trigger {
        let _ = update_trigger_rules(&inner, &old, |r| {
            r.remove(&key);
        })
        .await;
    }
    let link = ReducedRule {
        action: rule.action.clone(),
        status,
    };
    update_trigger_rules(&inner, &rule.trigger, |r| {
        r.insert(key.clone(), link.clone());
    })
    .await?;
    Ok(json(StatusCode::OK, &rule_view(&rule, status)?))
}

/// `POST /namespaces/{ns}/rules/{name}` with `{"status": "active" | "inactive"}`.
pub(crate) async fn set_rule_status(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    validate::entity_name(&name)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, 1 << 16).await?;
    let v: Value = serde_json::from_slice(&bytes).map_err(ApiError::malformed)?;
    let status = match v.get("status").and_then(Value::as_str) {
        Some("active") => RuleStatus::Active,
        Some("inactive") => RuleStatus::Inactive,
        _ => {
            return Err(ApiError::malformed(
                "status field must be either 'active' or 'inactive'",
            ))
        }
    };
    let (rule, _) = get_rule_doc(&inner, ns, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let key = format!("{ns}/{name}");
    let action = rule.action.clone();
    match update_trigger_rules(&inner, &rule.trigger, |r| {
        r.insert(
            key.clone(),
            ReducedRule {
                action: action.clone(),
                status,
            },
        );
    })
    .await
    {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Only rules with existing triggers can be activated",
        )),
        Err(e) => Err(e),
    }
}

/// `DELETE /namespaces/{ns}/rules/{name}`: also unlinks it from its trigger.
pub(crate) async fn delete_rule(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    validate::entity_name(&name)?;
    let (rule, rev) = get_rule_doc(&inner, ns, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let key = format!("{ns}/{name}");
    match update_trigger_rules(&inner, &rule.trigger, |r| {
        r.remove(&key);
    })
    .await
    {
        Ok(()) => {}
        Err(e) if e.status == StatusCode::NOT_FOUND => {}
        Err(e) => return Err(e),
    }
    inner
        .entities
        .delete(Collection::Rules, ns, &name, Some(rev))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(json(
        StatusCode::OK,
        &rule_view(&rule, RuleStatus::Inactive)?,
    ))
}
