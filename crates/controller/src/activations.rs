//! The activations collection: list, get, logs and result.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use whirl_model::error::messages;
use whirl_model::names::is_valid_name;
use whirl_model::{Activation, ActivationId};
use whirl_spi::{ActivationQuery, LogError};

use crate::auth::{authorize_namespace, Caller};
use crate::context::json;
use crate::error::ApiError;
use crate::query::Query;
use crate::views::{ActivationView, ResponseView};
use crate::Inner;

/// Parses an activation id from a path, with OpenWhisk's wording.
pub(crate) fn parse_activation_id(s: &str) -> Result<ActivationId, ApiError> {
    if s.len() != 32 {
        return Err(ApiError::bad_request(format!(
            "Activation id length is {} but must be 32.",
            s.len()
        )));
    }
    ActivationId::parse(s).map_err(|_| ApiError::bad_request("The activation id is not valid."))
}

/// The `name` filter of an activation list: `name` or `pkg/name` (empty means none).
pub(crate) fn name_filter(q: &Query<'_>) -> Result<Option<String>, ApiError> {
    let Some(v) = q.get("name") else {
        return Ok(None);
    };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let segments: Vec<&str> = v.split('/').collect();
    if segments.len() <= 2 && segments.iter().all(|s| is_valid_name(s)) {
        Ok(Some(v.to_owned()))
    } else {
        Err(ApiError::bad_query(
            "name",
            format!("Parameter may be a 'simple' name or 'package-name/simple' name: {v}"),
        ))
    }
}

/// `GET /namespaces/{ns}/activations`.
pub(crate) async fn list_activations(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let ns = authorize_namespace(&user, &ns)?;
    let q = Query(q.as_deref().unwrap_or(""));
    let query = ActivationQuery {
        namespace: ns.to_owned(),
        skip: q.skip("activations")?,
        limit: q.limit("activations")?,
        name: name_filter(&q)?,
        since: q.epoch_ms("since")?,
        upto: q.epoch_ms("upto")?,
    };
    let count = q.bool("count", false)?;
    let docs = q.bool("docs", false)?;
    if count && docs {
        return Err(ApiError::bad_request(messages::DOCS_WITH_COUNT));
    }
    if count {
        let n = inner.activations.count(&query).await?;
        return Ok(json(StatusCode::OK, &json!({ "activations": n })));
    }
    let list = inner.activations.list(&query).await?;
    if docs {
        let views: Vec<ActivationView<'_>> = list.iter().map(ActivationView::new).collect();
        Ok(json(StatusCode::OK, &views))
    } else {
        let summaries: Vec<Value> = list.iter().map(Activation::summary).collect();
        Ok(json(StatusCode::OK, &summaries))
    }
}

async fn fetch(
    inner: &Inner,
    user: &whirl_model::Identity,
    ns: &str,
    id: &str,
) -> Result<Activation, ApiError> {
    let ns = authorize_namespace(user, ns)?;
    let id = parse_activation_id(id)?;
    inner
        .activations
        .get(ns, &id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// `GET /namespaces/{ns}/activations/{id}`.
pub(crate) async fn get_activation(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = fetch(&inner, &user, &ns, &id).await?;
    Ok(json(StatusCode::OK, &ActivationView::new(&a)))
}

/// `GET /namespaces/{ns}/activations/{id}/logs`: `{"logs": [...]}` from the log store.
pub(crate) async fn activation_logs(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = fetch(&inner, &user, &ns, &id).await?;
    match inner.logs.fetch(&a).await {
        Ok(logs) => Ok(json(StatusCode::OK, &json!({ "logs": logs }))),
        Err(LogError::Collecting { message, partial }) => {
            tracing::warn!("logs of {} are partial: {message}", a.activation_id);
            Ok(json(StatusCode::OK, &json!({ "logs": partial })))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// `GET /namespaces/{ns}/activations/{id}/result`: `{"result", "success", "status", "size"?}`.
pub(crate) async fn activation_result(
    State(inner): State<Arc<Inner>>,
    Caller(user): Caller,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let a = fetch(&inner, &user, &ns, &id).await?;
    Ok(json(StatusCode::OK, &ResponseView::new(&a.response)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_ids_are_checked_with_openwhisk_words() {
        assert!(parse_activation_id("0123456789abcdef0123456789abcdef").is_ok());
        let e = parse_activation_id("abc").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "Activation id length is 3 but must be 32.");
        let e = parse_activation_id("0123456789abcdef0123456789abcdeg").unwrap_err();
        assert_eq!(e.message, "The activation id is not valid.");
    }

    #[test]
    fn name_filters_are_simple_or_packaged_names() {
        assert_eq!(
            name_filter(&Query("name=hello")).unwrap().as_deref(),
            Some("hello")
        );
        assert_eq!(
            name_filter(&Query("name=pkg%2Fhello")).unwrap().as_deref(),
            Some("pkg/hello")
        );
        assert_eq!(name_filter(&Query("name=")).unwrap(), None);
        assert_eq!(name_filter(&Query("")).unwrap(), None);
        let e = name_filter(&Query("name=a/b/c")).unwrap_err();
        assert_eq!(
            e.message,
            "The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: a/b/c"
        );
    }
}
