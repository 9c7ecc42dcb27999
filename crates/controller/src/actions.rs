//! The namespaces and actions collections: list, get, create/update, delete. (Invoke is in
//! [`crate::invoke`].)

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use whirl_model::error::messages;
use whirl_model::{Action, EntityName, Exec, FullyQualifiedName, Identity};
use whirl_spi::{Collection, ListQuery, PutMode, StoreError};

use crate::auth::{authorize_namespace, resolve_namespace, Caller};
use crate::cache::ResolvedAction;
use crate::context::{json, json_bytes};
use crate::error::ApiError;
use crate::query::Query;
use crate::validate::{self, NewAction};
use crate::views::{action_json, action_summary, json_array};
use crate::{parse_action_doc, read_body, require_json, Inner};

/// An action addressed by a request path: `/namespaces/{ns}/actions/[{pkg}/]{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The root namespace (the caller's, `_` resolved).
    pub namespace: String,
    pub package: Option<String>,
    pub name: String,
}

impl Target {
    /// From the path segments `[ns, name]` or `[ns, pkg, name]`, authorizing the namespace and
    /// validating the names.
    pub fn from_segments(caller: &Identity, segments: Vec<String>) -> Result<Self, ApiError> {
        match Self::resolve(caller, segments)? {
            (t, true) => Ok(t),
            (_, false) => Err(ApiError::forbidden()),
        }
    }

    /// From the path segments, for reading or invoking: also addresses other namespaces (the
    /// flag says whether the caller owns the namespace; what a non-owner may reach is decided by
    /// [`Inner::resolve_target`]).
    pub fn resolve(caller: &Identity, segments: Vec<String>) -> Result<(Self, bool), ApiError> {
        let mut it = segments.into_iter();
        let (ns, a, b) = (it.next(), it.next(), it.next());
        let (Some(ns), Some(a)) = (ns, a) else {
            return Err(ApiError::not_found());
        };
        let (namespace, owner) = resolve_namespace(caller, &ns)?;
        let namespace = namespace.to_owned();
        let (package, name) = match b {
            Some(name) => (Some(a), name),
            None => (None, a),
        };
        if let Some(p) = &package {
            validate::entity_name(p)?;
        }
        validate::entity_name(&name)?;
        Ok((
            Self {
                namespace,
                package,
                name,
            },
            owner,
        ))
    }

    /// The document name in the store: `name` or `pkg/name`.
    pub fn doc_name(&self) -> Cow<'_, str> {
        match &self.package {
            Some(p) => Cow::Owned(format!("{p}/{}", self.name)),
            None => Cow::Borrowed(&self.name),
        }
    }

    /// The action's `namespace` field: `ns` or `ns/pkg`.
    pub fn path(&self) -> String {
        match &self.package {
            Some(p) => format!("{}/{p}", self.namespace),
            None => self.namespace.clone(),
        }
    }

    /// `/ns[/pkg]/name`.
    pub fn fqn(&self) -> Result<FullyQualifiedName, ApiError> {
        let n = |s: &str| EntityName::new(s).map_err(validate::model_error);
        Ok(FullyQualifiedName::new(
            n(&self.namespace)?,
            self.package.as_deref().map(n).transpose()?,
            n(&self.name)?,
        ))
    }
}

/// `GET /api/v1/namespaces`: the caller's namespaces.
pub(crate) async fn list_namespaces(Caller(user): Caller) -> Response {
    json(StatusCode::OK, &[user.namespace.as_str()])
}

/// `GET /namespaces/{ns}/limits`: the limits that apply to the namespace (OpenWhisk's shape:
/// throttles, then the action limit ranges in ms and MB).
pub(crate) async fn namespace_limits(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(ns): Path<String>,
) -> Result<Response, ApiError> {
    authorize_namespace(&user, &ns)?;
    let (per_minute, concurrent, fires) = inner.throttles.limits_of(&user);
    let ns_limits = inner.config.limits_for(user.namespace.as_str());
    let l = &*ns_limits;
    // Throttles without a limit are left out (OpenWhisk always has one).
    let mut v = json!({
            "minActionMemory": l.memory_mb.min,
            "maxActionMemory": l.memory_mb.max,
            "minActionLogs": l.logs_mb.min,
            "maxActionLogs": l.logs_mb.max,
            "minActionTimeout": l.timeout_ms.min,
            "maxActionTimeout": l.timeout_ms.max,
            "minActionConcurrency": l.concurrency.min,
            "maxActionConcurrency": l.concurrency.max,
            "maxParameterSize": l.max_parameter_bytes,
    });
    for (k, limit) in [
        ("invocationsPerMinute", per_minute),
        ("concurrentInvocations", concurrent),
        ("firesPerMinute", fires),
        ("maxActionInstances", concurrent),
    ] {
        if let Some(n) = limit {
            v[k] = json!(n);
        }
    }
    Ok(json(StatusCode::OK, &v))
}

/// `GET /namespaces/{ns}/actions`.
pub(crate) async fn list_actions(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    list(&inner, ns, None, Query(q.as_deref().unwrap_or(""))).await
}

/// `GET /namespaces/{ns}/actions/{pkg}/`: the actions of a package (404 if it does not exist).
pub(crate) async fn list_package_actions(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, pkg)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (ns, owner) = resolve_namespace(&user, &ns)?;
    validate::entity_name(&pkg)?;
    let package = inner.get_package(ns, &pkg).await?.ok_or_else(|| {
        if owner {
            ApiError::not_found()
        } else {
            ApiError::forbidden()
        }
    })?;
    // A binding lists the actions of the package it refers to.
    let base = match &package.binding {
        None if owner || package.publish => package,
        Some(_) if owner => inner.bound_package(ns, &package).await?,
        _ => return Err(ApiError::forbidden()),
    };
    list(
        &inner,
        &base.namespace,
        Some(&base.name),
        Query(q.as_deref().unwrap_or("")),
    )
    .await
}

async fn list(
    inner: &Inner,
    ns: &str,
    package: Option<&str>,
    q: Query<'_>,
) -> Result<Response, ApiError> {
    let skip = q.skip("actions")?;
    let limit = q.limit("actions")?;
    let count = q.bool("count", false)?;
    let prefix = package.map(|p| format!("{p}/"));
    // The namespace listing shows the default package only, so packaged actions (`pkg/name`)
    // must not count. Without packages there are none and the store pages exactly; otherwise
    // the namespace's actions are filtered here before paging.
    let exact =
        prefix.is_some() || inner.entities.count(Collection::Packages, ns, None).await? == 0;
    if count && exact {
        let n = inner
            .entities
            .count(Collection::Actions, ns, prefix.as_deref())
            .await?;
        return Ok(json(
            StatusCode::OK,
            &json!({ "actions": n.saturating_sub(skip as u64) }),
        ));
    }
    let query = if exact {
        ListQuery {
            prefix: prefix.clone(),
            skip,
            limit,
        }
    } else {
        ListQuery::default()
    };
    let docs = inner.entities.list(Collection::Actions, ns, &query).await?;
    let in_listing = |d: &whirl_spi::Document| match &prefix {
        Some(p) => d
            .name
            .strip_prefix(p.as_str())
            .is_some_and(|rest| !rest.contains('/')),
        None => !d.name.contains('/'),
    };
    if count {
        let n = docs.iter().filter(|d| in_listing(d)).count();
        return Ok(json(
            StatusCode::OK,
            &json!({ "actions": n.saturating_sub(skip) }),
        ));
    }
    let (skip, take) = if exact {
        (0, usize::MAX)
    } else {
        (skip, limit)
    };
    let summaries = docs
        .into_iter()
        .filter(in_listing)
        .skip(skip)
        .take(take)
        .filter_map(|d| parse_action_doc(d.body).ok())
        .map(|a| action_summary(&a));
    Ok(json_bytes(StatusCode::OK, json_array(summaries)))
}

/// `GET /namespaces/{ns}/actions/[{pkg}/]{name}` (`?code=false` leaves out the code).
pub(crate) async fn get_action(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(segments): Path<Vec<String>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (target, owner) = Target::resolve(&user, segments)?;
    let with_code = Query(q.as_deref().unwrap_or("")).bool("code", true)?;
    let resolved = inner.resolve_target(&target, owner).await?;
    let body = if target.package.is_some() {
        action_json(&resolved.merged_action(), with_code)
    } else {
        action_json(&resolved.action, with_code)
    };
    Ok(json_bytes(StatusCode::OK, body))
}

/// `PUT /namespaces/{ns}/actions/[{pkg}/]{name}[?overwrite=true]`: create, or update by merging.
/// Everything is validated before the one store write.
pub(crate) async fn put_action(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(segments): Path<Vec<String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let target = Target::from_segments(&user, segments)?;
    let overwrite = Query(q.as_deref().unwrap_or("")).bool("overwrite", false)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, inner.put_body_limit()).await?;
    let ns_limits = inner.config.limits_for(&target.namespace);
    let sys = &*ns_limits;
    let mut put = validate::parse_action_put(&bytes)?;
    validate::check_put(&put, sys)?;

    let ns = target.namespace.as_str();
    let doc_name = target.doc_name();
    if let Some(pkg) = &target.package {
        check_package_for_write(&inner, ns, pkg).await?;
    }
    let existing = inner
        .entities
        .get(Collection::Actions, ns, &doc_name)
        .await?;
    if existing.is_some() && !overwrite {
        return Err(ApiError::conflict(messages::ENTITY_EXISTS));
    }

    if let Some(exec) = put.exec.take() {
        let exec = validate::resolve_exec(exec, &inner.manifest)?;
        let exec = match exec {
            Exec::Sequence { components } => {
                let resolved = validate::resolve_components(&components, &user.namespace)?;
                check_sequence(&inner, &user.namespace, &target.fqn()?, &resolved).await?;
                Exec::Sequence {
                    components: resolved.iter().map(ToString::to_string).collect(),
                }
            }
            other => other,
        };
        put.exec = Some(exec);
    }

    let now = whirl_model::time::now_ms();
    let (action, mode) = match existing {
        Some(doc) => {
            let old = parse_action_doc(doc.body)?;
            if put.exec.is_none() && validate::is_deprecated(&old.exec, &inner.manifest) {
                return Err(ApiError::bad_request(
                    whirl_model::ModelError::DeprecatedKind(old.exec.kind().to_owned()).to_string(),
                ));
            }
            (
                validate::updated_action(put, old, now),
                PutMode::Update { rev: doc.rev },
            )
        }
        None => {
            let ctx = NewAction {
                path: target.path(),
                name: target.name.clone(),
                sys,
                require_api_key_annotation: inner.config.require_api_key_annotation,
                now_ms: now,
            };
            (validate::new_action(put, ctx)?, PutMode::Create)
        }
    };

    validate::check_concurrency(&action, &inner.manifest)?;

    let body = serde_json::to_value(&action).map_err(|e| ApiError::internal(e.to_string()))?;
    let epoch = inner.actions.begin_write();
    let rev = match inner
        .entities
        .put(Collection::Actions, ns, &doc_name, &body, mode)
        .await
    {
        Ok(rev) => rev,
        Err(StoreError::Conflict(_)) if mode == PutMode::Create => {
            return Err(ApiError::conflict(messages::ENTITY_EXISTS));
        }
        Err(e) => {
            inner.actions.remove(ns, &doc_name);
            return Err(e.into());
        }
    };
    let response = json_bytes(StatusCode::OK, action_json(&action, true));
    inner
        .entity_changed(ns, &doc_name, target.package.is_some())
        .await;
    if target.package.is_some() {
        // Cached packaged actions (here and through bindings) carry merged parameters: refill.
        inner.actions.begin_write();
        inner.actions.remove_packaged();
    } else {
        inner.actions.insert(
            ns,
            &doc_name,
            Arc::new(ResolvedAction::new(rev, action)),
            epoch,
        );
    }
    Ok(response)
}

/// An action may be written into a package of the caller's that exists and is not a binding.
async fn check_package_for_write(inner: &Inner, ns: &str, pkg: &str) -> Result<(), ApiError> {
    match inner.get_package(ns, pkg).await? {
        None => Err(ApiError::not_found()),
        Some(p) if p.binding.is_some() => Err(ApiError::bad_request(NOT_ALLOWED_ON_BINDING)),
        Some(_) => Ok(()),
    }
}

/// OpenWhisk's refusal of action writes through a binding.
pub(crate) const NOT_ALLOWED_ON_BINDING: &str = "Operation not permitted on package binding.";

/// Checks a sequence's components as OpenWhisk does: at least one, each existing, none referring
/// back to the sequence itself (directly or through nested sequences), and at most
/// `max_sequence_length` atomic actions once nested sequences are inlined.
async fn check_sequence(
    inner: &Inner,
    caller_ns: &EntityName,
    me: &FullyQualifiedName,
    components: &[FullyQualifiedName],
) -> Result<(), ApiError> {
    let max = inner.config.limits.max_sequence_length;
    if components.is_empty() {
        return Err(ApiError::bad_request(validate::SEQUENCE_NO_COMPONENT));
    }
    if components.len() > max {
        return Err(ApiError::bad_request(validate::SEQUENCE_TOO_LONG));
    }
    // Visits are bounded too, so that a cycle among other sequences cannot loop forever.
    let max_visits = max.saturating_mul(10).saturating_add(100);
    let mut stack: Vec<FullyQualifiedName> = components.iter().rev().cloned().collect();
    let (mut atomic, mut visits) = (0usize, 0usize);
    while let Some(c) = stack.pop() {
        visits += 1;
        if &c == me {
            return Err(ApiError::bad_request(validate::SEQUENCE_CYCLIC));
        }
        if visits > max_visits {
            return Err(ApiError::bad_request(validate::SEQUENCE_TOO_LONG));
        }
        let target = Target {
            namespace: c.namespace.to_string(),
            package: c.package.as_ref().map(ToString::to_string),
            name: c.name.to_string(),
        };
        let resolved = inner
            .resolve_target(&target, &c.namespace == caller_ns)
            .await
            .map_err(|e| {
                if e.status == StatusCode::NOT_FOUND {
                    ApiError::bad_request(validate::SEQUENCE_COMPONENT_NOT_FOUND)
                } else {
                    e
                }
            })?;
        let action: &Action = &resolved.action;
        match &action.exec {
            Exec::Sequence { components } => {
                for n in components.iter().rev() {
                    let f = FullyQualifiedName::parse(n, &c.namespace).map_err(|_| {
                        ApiError::bad_request(validate::SEQUENCE_COMPONENT_NOT_FOUND)
                    })?;
                    stack.push(f);
                }
            }
            _ => {
                atomic += 1;
                if atomic > max {
                    return Err(ApiError::bad_request(validate::SEQUENCE_TOO_LONG));
                }
            }
        }
    }
    Ok(())
}

/// `DELETE /namespaces/{ns}/actions/[{pkg}/]{name}`: answers with the deleted action.
pub(crate) async fn delete_action(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(segments): Path<Vec<String>>,
) -> Result<Response, ApiError> {
    let target = Target::from_segments(&user, segments)?;
    let ns = target.namespace.as_str();
    let doc_name = target.doc_name();
    if let Some(pkg) = &target.package {
        check_package_for_write(&inner, ns, pkg).await?;
    }
    let doc = inner
        .entities
        .get(Collection::Actions, ns, &doc_name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    inner.actions.begin_write();
    let deleted = inner
        .entities
        .delete(Collection::Actions, ns, &doc_name, Some(doc.rev))
        .await;
    inner.actions.remove(ns, &doc_name);
    if target.package.is_some() {
        inner.actions.begin_write();
        inner.actions.remove_packaged();
    }
    inner
        .entity_changed(ns, &doc_name, target.package.is_some())
        .await;
    let deleted = deleted?.ok_or_else(ApiError::not_found)?;
    let action = parse_action_doc(deleted.body)?;
    Ok(json_bytes(StatusCode::OK, action_json(&action, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest() -> Identity {
        Identity {
            subject: "guest".into(),
            namespace: EntityName::new("guest").unwrap(),
            uuid: "u".into(),
            key: "k".into(),
            limits: Default::default(),
        }
    }

    fn segs(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn targets_resolve_the_default_namespace_and_packages() {
        let t = Target::from_segments(&guest(), segs(&["_", "hello"])).unwrap();
        assert_eq!(
            t,
            Target {
                namespace: "guest".into(),
                package: None,
                name: "hello".into()
            }
        );
        assert_eq!(t.doc_name(), "hello");
        assert_eq!(t.path(), "guest");
        assert_eq!(t.fqn().unwrap().to_string(), "/guest/hello");
        let t = Target::from_segments(&guest(), segs(&["guest", "utils", "echo"])).unwrap();
        assert_eq!(t.doc_name(), "utils/echo");
        assert_eq!(t.path(), "guest/utils");
        assert_eq!(t.fqn().unwrap().to_string(), "/guest/utils/echo");
    }

    #[test]
    fn targets_refuse_other_namespaces_and_bad_names() {
        let e = Target::from_segments(&guest(), segs(&["other", "hello"])).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = Target::from_segments(&guest(), segs(&["_", "-bad"])).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = Target::from_segments(&guest(), segs(&["_", "p kg ", "a"])).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
