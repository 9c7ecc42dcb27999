//! The packages collection: packages and package bindings (list, get, create/update, delete).
//!
//! Access follows OpenWhisk's entitlement rules: anyone may list another namespace's packages but
//! sees only its published packages (never bindings); a package may be read by a non-owner only
//! when published; bindings are their owner's alone; writes are the owner's only.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use whirl_model::action::next_version;
use whirl_model::error::messages;
use whirl_model::names::DEFAULT_NAMESPACE;
use whirl_model::{Binding, Identity, Package, PackagePut, Params};
use whirl_spi::{Collection, ListQuery, PutMode, StoreError};

use crate::auth::{authorize_namespace, resolve_namespace, Caller};
use crate::context::{json, json_bytes};
use crate::error::ApiError;
use crate::query::Query;
use crate::validate;
use crate::{parse_action_doc, parse_package_doc, read_body, require_json, Inner};

/// Messages (OpenWhisk's).
pub(crate) const BINDING_DOES_NOT_EXIST: &str = "Binding references a package that does not exist.";
pub(crate) const PACKAGE_CANNOT_BECOME_BINDING: &str =
    "Resource is a package and cannot be converted into a binding.";
pub(crate) const BINDING_CANNOT_REFERENCE_BINDING: &str = "Cannot bind to another package binding.";

/// The annotation recording a binding's target (set by the controller).
const BINDING_ANNOTATION: &str = "binding";
/// Actions with this annotation are a package's feeds.
const FEED_ANNOTATION: &str = "feed";

/// A package as listings show it: `binding` is `false` or the binding.
fn summary(p: &Package) -> Value {
    json!({
        "namespace": p.namespace,
        "name": p.name,
        "version": p.version,
        "publish": p.publish,
        "annotations": p.annotations,
        "binding": match &p.binding { Some(b) => json!(b), None => Value::Bool(false) },
        "updated": p.updated,
    })
}

/// `GET /namespaces/{ns}/packages`: the caller's packages and bindings, or another namespace's
/// published packages.
pub(crate) async fn list_packages(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (ns, owner) = resolve_namespace(&user, &ns)?;
    let q = Query(q.as_deref().unwrap_or(""));
    let skip = q.skip("packages")?;
    let limit = q.limit("packages")?;
    let count = q.bool("count", false)?;
    if owner {
        if count {
            let n = inner.entities.count(Collection::Packages, ns, None).await?;
            return Ok(json(
                StatusCode::OK,
                &json!({ "packages": n.saturating_sub(skip as u64) }),
            ));
        }
        let docs = inner
            .entities
            .list(
                Collection::Packages,
                ns,
                &ListQuery {
                    prefix: None,
                    skip,
                    limit,
                },
            )
            .await?;
        let list: Vec<Value> = docs
            .into_iter()
            .filter_map(|d| parse_package_doc(d.body).ok())
            .map(|p| summary(&p))
            .collect();
        return Ok(json(StatusCode::OK, &list));
    }
    // Another namespace: its published packages only (filtered before paging).
    let docs = inner
        .entities
        .list(Collection::Packages, ns, &ListQuery::default())
        .await?;
    let shared = docs
        .into_iter()
        .filter_map(|d| parse_package_doc(d.body).ok())
        .filter(|p| p.publish && p.binding.is_none());
    if count {
        let n = shared.count().saturating_sub(skip);
        return Ok(json(StatusCode::OK, &json!({ "packages": n })));
    }
    let list: Vec<Value> = shared.skip(skip).take(limit).map(|p| summary(&p)).collect();
    Ok(json(StatusCode::OK, &list))
}

/// `GET /namespaces/{ns}/packages/{name}`: the package with its actions and feeds; a binding
/// shows the bound package's actions and parameters with its own on top.
pub(crate) async fn get_package(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (ns, owner) = resolve_namespace(&user, &ns)?;
    validate::entity_name(&name)?;
    let package = inner.get_package(ns, &name).await?.ok_or_else(|| {
        if owner {
            ApiError::not_found()
        } else {
            ApiError::forbidden()
        }
    })?;
    let (shown, base) = match &package.binding {
        None if owner || package.publish => (package.clone(), package),
        Some(_) if owner => {
            let base = inner.bound_package(ns, &package).await?;
            let mut shown = package.clone();
            shown.parameters = base.parameters.merged(&package.parameters);
            (shown, base)
        }
        _ => return Err(ApiError::forbidden()),
    };
    let docs = inner
        .entities
        .list(
            Collection::Actions,
            &base.namespace,
            &ListQuery {
                prefix: Some(format!("{}/", base.name)),
                skip: 0,
                limit: 0,
            },
        )
        .await?;
    let (mut actions, mut feeds) = (Vec::new(), Vec::new());
    for d in docs {
        if d.name[base.name.len() + 1..].contains('/') {
            continue;
        }
        let Ok(a) = parse_action_doc(d.body) else {
            continue;
        };
        let entry = json!({"name": a.name, "version": a.version, "annotations": a.annotations});
        if a.annotations.get(FEED_ANNOTATION).is_some() {
            feeds.push(entry);
        } else {
            actions.push(entry);
        }
    }
    let mut v = serde_json::to_value(&shown).map_err(|e| ApiError::internal(e.to_string()))?;
    v["actions"] = Value::Array(actions);
    v["feeds"] = Value::Array(feeds);
    Ok(json(StatusCode::OK, &v))
}

/// Parses a `PUT` body; an empty body is an empty update.
fn parse_put(body: &[u8]) -> Result<PackagePut, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PackagePut::default());
    }
    serde_json::from_slice(body).map_err(ApiError::malformed)
}

/// Resolves a binding's namespace (`_` is the caller's) and checks, as OpenWhisk does, that the
/// caller may read the package it names and that it is a package, not a binding.
async fn check_binding(inner: &Inner, user: &Identity, b: Binding) -> Result<Binding, ApiError> {
    let own = user.namespace.as_str();
    let namespace = if b.namespace == DEFAULT_NAMESPACE || b.namespace.is_empty() {
        own.to_owned()
    } else {
        b.namespace
    };
    validate::entity_name(&namespace)?;
    validate::entity_name(&b.name)?;
    let owner = namespace == own;
    match inner.get_package(&namespace, &b.name).await? {
        None if owner => Err(ApiError::bad_request(BINDING_DOES_NOT_EXIST)),
        Some(p) if owner || (p.publish && p.binding.is_none()) => {
            if p.binding.is_some() {
                Err(ApiError::bad_request(BINDING_CANNOT_REFERENCE_BINDING))
            } else {
                Ok(Binding {
                    namespace,
                    name: b.name,
                })
            }
        }
        _ => Err(ApiError::forbidden()),
    }
}

/// Annotations as given, with the controller's `binding` annotation in place of any given one.
fn with_binding_annotation(mut a: Params, binding: Option<&Binding>) -> Params {
    a.0.retain(|kv| kv.key != BINDING_ANNOTATION);
    if let Some(b) = binding {
        a.put(BINDING_ANNOTATION, json!(b));
    }
    a
}

/// `PUT /namespaces/{ns}/packages/{name}[?overwrite=true]`: create, or update by merging.
pub(crate) async fn put_package(
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
    if name == "default" {
        return Err(ApiError::bad_request(format!(
            "Package name '{name}' is reserved."
        )));
    }
    require_json(&headers)?;
    let sys = &inner.config.limits;
    let bytes = read_body(
        &headers,
        body,
        sys.max_parameter_bytes.saturating_mul(2) + (1 << 20),
    )
    .await?;
    let mut put = parse_put(&bytes)?;
    for (field, p) in [
        ("parameters", &put.parameters),
        ("annotations", &put.annotations),
    ] {
        if let Some(p) = p {
            let is = validate::params_size(p);
            if is > sys.max_parameter_bytes {
                return Err(ApiError::entity_too_big(field, is, sys.max_parameter_bytes));
            }
        }
    }
    if let Some(p) = &put.parameters {
        p.validate("Parameter").map_err(validate::model_error)?;
    }
    if let Some(a) = &put.annotations {
        a.validate("Annotation").map_err(validate::model_error)?;
    }
    if let Some(v) = &put.version {
        validate::check_version(v)?;
    }
    let existing = inner.entities.get(Collection::Packages, &ns, &name).await?;
    if existing.is_some() && !overwrite {
        return Err(ApiError::conflict(messages::ENTITY_EXISTS));
    }
    if let Some(b) = put.binding.take() {
        let was_package = match &existing {
            Some(doc) => parse_package_doc(doc.body.clone())?.binding.is_none(),
            None => false,
        };
        if was_package {
            return Err(ApiError::conflict(PACKAGE_CANNOT_BECOME_BINDING));
        }
        put.binding = Some(check_binding(&inner, &user, b).await?);
    }
    let now = whirl_model::time::now_ms();
    let (package, mode) = match existing {
        None => {
            let annotations =
                with_binding_annotation(put.annotations.unwrap_or_default(), put.binding.as_ref());
            (
                Package {
                    namespace: ns.clone(),
                    name: name.clone(),
                    version: put.version.unwrap_or_else(|| "0.0.1".into()),
                    publish: put.publish.unwrap_or(false),
                    binding: put.binding,
                    annotations,
                    parameters: put.parameters.unwrap_or_default(),
                    updated: now,
                },
                PutMode::Create,
            )
        }
        Some(doc) => {
            let old = parse_package_doc(doc.body)?;
            let binding = put.binding.or(old.binding);
            let annotations = with_binding_annotation(
                put.annotations.unwrap_or(old.annotations),
                binding.as_ref(),
            );
            (
                Package {
                    namespace: old.namespace,
                    name: old.name,
                    version: put.version.unwrap_or_else(|| next_version(&old.version)),
                    publish: put.publish.unwrap_or(old.publish),
                    binding,
                    annotations,
                    parameters: put.parameters.unwrap_or(old.parameters),
                    updated: now,
                },
                PutMode::Update { rev: doc.rev },
            )
        }
    };
    let body = serde_json::to_value(&package).map_err(|e| ApiError::internal(e.to_string()))?;
    inner.actions.begin_write();
    let written = inner
        .entities
        .put(Collection::Packages, &ns, &name, &body, mode)
        .await;
    inner.actions.begin_write();
    inner.actions.remove_packaged();
    inner.entity_changed(&ns, "", true).await;
    match written {
        Ok(_) => Ok(json(StatusCode::OK, &body)),
        Err(StoreError::Conflict(_)) if mode == PutMode::Create => {
            Err(ApiError::conflict(messages::ENTITY_EXISTS))
        }
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /namespaces/{ns}/packages/{name}[?force=true]`: a package only when empty (or with
/// `force`, its actions too); a binding always. Answers with the deleted package.
pub(crate) async fn delete_package(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    validate::entity_name(&name)?;
    let force = Query(q.as_deref().unwrap_or("")).bool("force", false)?;
    let doc = inner
        .entities
        .get(Collection::Packages, ns, &name)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let package = parse_package_doc(doc.body.clone())?;
    inner.actions.begin_write();
    if package.binding.is_none() {
        let prefix = format!("{name}/");
        let contents = inner
            .entities
            .list(
                Collection::Actions,
                ns,
                &ListQuery {
                    prefix: Some(prefix),
                    skip: 0,
                    limit: 0,
                },
            )
            .await?;
        if !contents.is_empty() && !force {
            let n = contents.len();
            return Err(ApiError::conflict(format!(
                "Package not empty (contains {n} {}). Set force param or delete package contents.",
                if n == 1 { "entity" } else { "entities" }
            )));
        }
        for a in contents {
            inner
                .entities
                .delete(Collection::Actions, ns, &a.name, Some(a.rev))
                .await?;
        }
    }
    let deleted = inner
        .entities
        .delete(Collection::Packages, ns, &name, Some(doc.rev))
        .await;
    inner.actions.begin_write();
    inner.actions.remove_packaged();
    inner.entity_changed(ns, "", true).await;
    deleted?.ok_or_else(ApiError::not_found)?;
    let mut body = doc.body;
    if let Value::Object(m) = &mut body {
        m.entry("binding").or_insert(Value::Object(Map::new()));
    }
    Ok(json_bytes(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    ))
}
