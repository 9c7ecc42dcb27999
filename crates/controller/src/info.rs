//! The public API information documents: `GET /` (platform, limits, runtimes) and `GET /api/v1`
//! (API version), shaped like OpenWhisk's.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use whirl_model::RuntimeManifest;

use crate::config::ControllerConfig;
use crate::context::json_bytes;

const MB: u64 = 1 << 20;

/// `GET /`: what the platform offers.
pub(crate) fn platform_info(config: &ControllerConfig, manifest: &RuntimeManifest) -> Value {
    let l = &config.limits;
    let mut runtimes: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for k in &manifest.kinds {
        let mut entry = json!({
            "kind": k.kind,
            "deprecated": k.deprecated,
            "default": k.default,
            "attached": false,
            "requireMain": false,
        });
        if let Some(image) = &k.image {
            entry["image"] = json!(image);
        }
        runtimes.entry(k.family()).or_default().push(entry);
    }
    json!({
        "description": "Whirl, an OpenWhisk-compatible serverless platform",
        "api_paths": ["/api/v1"],
        "limits": {
            "sequence_length": l.max_sequence_length,
            "min_action_duration": l.timeout_ms.min,
            "max_action_duration": l.timeout_ms.max,
            "min_action_memory": l.memory_mb.min * MB,
            "max_action_memory": l.memory_mb.max * MB,
            "min_action_logs": l.logs_mb.min * MB,
            "max_action_logs": l.logs_mb.max * MB,
        },
        "runtimes": runtimes,
    })
}

/// `GET /api/v1`: the API version.
pub(crate) fn api_info() -> Value {
    json!({
        "description": "OpenWhisk API",
        "api_version": "1.0.0",
        "api_version_path": "v1",
        "build": concat!("whirl-", env!("CARGO_PKG_VERSION")),
        "buildno": env!("CARGO_PKG_VERSION"),
    })
}

/// The public (unauthenticated) routes; their bodies are serialized once.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
    config: &ControllerConfig,
    manifest: &RuntimeManifest,
) -> Router<S> {
    let platform =
        Bytes::from(serde_json::to_vec(&platform_info(config, manifest)).unwrap_or_default());
    let api = Bytes::from(serde_json::to_vec(&api_info()).unwrap_or_default());
    let docs = Bytes::from(serde_json::to_vec(&crate::openapi::document()).unwrap_or_default());
    let serve = |b: Bytes| move || std::future::ready(json_bytes(StatusCode::OK, b.clone()));
    Router::new()
        .route("/", get(serve(platform)))
        .route("/api/v1", get(serve(api.clone())))
        .route("/api/v1/", get(serve(api)))
        .route("/api/v1/api-docs", get(serve(docs)))
}
