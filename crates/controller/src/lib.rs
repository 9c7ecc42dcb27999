//! Whirl's controller: the OpenWhisk-compatible REST API and the invoke path.
//!
//! # The request path
//!
//! Every request passes one middleware (module `context`) that assigns its transaction id (OpenWhisk's
//! 32 random alphanumerics, or the caller's `X-Request-ID`), answers CORS pre-flights, and on the
//! way out adds the CORS headers and `X-Request-ID` and writes OpenWhisk's error body
//! `{"error": message, "code": transaction id}` for every error, including the router's own 404
//! and 405.
//!
//! Routes under `/api/v1` other than the API info authenticate the caller with HTTP Basic
//! `uuid:key` through the [`Authenticator`] (which owns any caching of identities), then check
//! that the path's namespace is `_` or the caller's own.
//!
//! An invoke (`POST /api/v1/namespaces/{ns}/actions/[{pkg}/]{name}`) then
//! 1. resolves the action from the controller's action cache (filled from the [`EntityStore`] on
//!    a miss, refreshed by this controller's own PUT and DELETE, expiring after
//!    [`ControllerConfig::action_cache_ttl_ms`]) — a warm invoke does not touch the store;
//! 2. merges parameters: the action's defaults, overridden by the body's (refusing keys that
//!    override `final` parameters), and lists the `init: true` keys as `init_args`;
//! 3. builds the [`ActivationMessage`](whirl_model::ActivationMessage), journals it when
//!    [`ControllerConfig::journal`] says so, and hands it to the load balancer that
//!    [`LoadBalancerResolver::resolve`] picks for the action;
//! 4. answers at once with 202 and the activation id (non-blocking), or awaits the balancer's
//!    [`ActivationFuture`](whirl_spi::ActivationFuture) right in the request's task (no spawn, no
//!    channel hop) for up to the requested timeout: a completed activation is answered 200 (success),
//!    502 (application or developer error) or 500 (whisk error); otherwise 202 with the id, and the
//!    activation keeps running (the balancer guarantees its record).
//!
//! Actions in packages are reached through their package: a binding resolves to the package it
//! names, parameters merge as OpenWhisk merges them (package, then binding, then action, then the
//! invoke's body), and other namespaces may read and invoke actions of published packages only.
//! Resolved packaged actions are cached like the others (merged parameters included); any
//! package write, or write of a packaged action, drops the cached packaged actions.
//!
//! Entity writes validate everything first and then write the store exactly once.
//! Conductor actions (module `conductor`) also run in the controller, as OpenWhisk runs them.
//! Sequences (module `sequence`) run in the controller: components blocking, in order, each
//! result feeding the next, the sequence's own record listing the components' ids.
//!
//! # Choices worth knowing
//!
//! - Error wording follows OpenWhisk (Pekko) to the letter where it has one, prefixes included:
//!   a bad query parameter is `The query parameter 'timeout' was malformed:\n...`, a bad body
//!   `The request content was malformed:\n...`, a non-JSON `Content-Type` a 415 (a missing one
//!   is accepted), entity sizes a 413 `exec|parameters|annotations|Request larger than allowed:
//!   N > M bytes.`
//! - New actions get `provide-api-key: false` unless given (OpenWhisk's
//!   `require-api-key-annotation`, see [`ControllerConfig::require_api_key_annotation`]).
//! - Deprecated kinds cannot be created or updated, but existing actions of them still run (the
//!   runtime manifest's promise; OpenWhisk refuses to invoke them).
//! - Throttles (module `throttle`) are off unless configured (`[controller.throttles]`, or a
//!   namespace's own limits from `whirl admin namespace`), where OpenWhisk deploys 60 invokes
//!   and 60 fires per minute and 30 concurrent activations: Whirl's throughput is not capped by
//!   default, and an unset throttle costs the invoke path nothing. The 429s and their messages
//!   are OpenWhisk's.
//! - Where the OpenWhisk API features differ from OpenWhisk's controller:
//!   - an action started by a rule records the trigger activation as its `cause` (OpenWhisk
//!     posts it over HTTP and leaves `cause` out); the fire's payload reaches it without
//!     OpenWhisk's newer `__ow_headers` field;
//!   - trigger feeds (the `feed` annotation's lifecycle calls) are not run;
//!   - per-namespace action limit ranges come from `[controller.namespace_limits]`, not from the
//!     subject document (whose limits hold the three throttles);
//!   - sequences and compositions started with a blocking invoke are journaled like
//!     non-blocking ones only when the journal mode journals blocking invokes.
//! - The action cache holds whole actions, code included (the balancer hands them to the
//!   invoker); a write epoch keeps fills that raced with this controller's own writes out of it.
//!
//! # Routes
//!
//! | method | path | |
//! |---|---|---|
//! | GET | `/`, `/api/v1` | API information |
//! | GET | `/api/v1/api-docs` | this API's OpenAPI 3 description (module `openapi`) |
//! | GET | `/api/v1/namespaces` | the caller's namespace names |
//! | GET | `/api/v1/namespaces/{ns}/limits` | the namespace's throttles and action limits |
//! | GET | `/api/v1/namespaces/{ns}/actions` | list actions (`skip`, `limit`, `count`) |
//! | GET | `/api/v1/namespaces/{ns}/actions/{pkg}/` | list a package's actions |
//! | GET, PUT, DELETE, POST | `/api/v1/namespaces/{ns}/actions/[{pkg}/]{name}` | get, create/update, delete, invoke |
//! | GET | `/api/v1/namespaces/{ns}/packages` | list packages (another namespace: its published ones) |
//! | GET, PUT, DELETE | `/api/v1/namespaces/{ns}/packages/{name}` | get (with actions), create/update (bindings: `binding`), delete (`force`) |
//! | GET | `/api/v1/namespaces/{ns}/triggers`, `.../rules` | list triggers, rules |
//! | GET, PUT, DELETE, POST | `/api/v1/namespaces/{ns}/triggers/{name}` | get, create/update, delete, fire (202 with the trigger activation, 204 without active rules) |
//! | GET, PUT, DELETE, POST | `/api/v1/namespaces/{ns}/rules/{name}` | get (with `status`), create/update, delete, enable/disable (`{"status"}`) |
//! | any | `/api/v1/web/{ns}/{pkg or default}/{action}[.ext][/path]` | web actions (module `web`; no authentication needed) |
//! | GET | `/api/v1/namespaces/{ns}/activations` | list activations (`name`, `since`, `upto`, `skip`, `limit`, `docs`, `count`) |
//! | GET | `/api/v1/namespaces/{ns}/activations/{id}[/logs, /result]` | an activation, its logs, its result |
//! | GET | `/metrics` | Prometheus metrics (module `metrics`; no authentication; `[controller] metrics`) |
//! | GET | `/dashboard` | the operator dashboard (module `dashboard`; `[controller] dashboard`) |
//!
//! # Observability
//!
//! Module `metrics` keeps the controller's Prometheus metrics (atomic handles looked up once per
//! kind; nothing locked or allocated per invoke) in the registry that `GET /metrics` serves
//! ([`Controller::metrics_registry`]; the composition root adds the in-process invoker's).
//! Request spans (target `whirl_trace`: `http.request` → `loadbalancer.publish` → the
//! invoker's `invoker.activation` → `container.create` / `container.init` / `container.run`,
//! each with the activation id) are recorded only when the process exports traces.

#![warn(missing_docs)]
mod actions;
mod activations;
mod auth;
mod cache;
pub mod catalog;
mod conductor;
pub mod config;
mod context;
mod dashboard;
mod error;
mod info;
mod invalidation;
mod invoke;
mod metrics;
mod openapi;
mod packages;
mod query;
mod sequence;
pub mod throttle;
mod trace;
mod triggers;
mod validate;
mod views;
mod web;

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use axum::routing::{any, get};
use axum::Router;
use whirl_model::RuntimeManifest;
use whirl_spi::{
    ActivationStore, Authenticator, Collection, EntityStore, LoadBalancerResolver, LogStore,
};

pub use config::{ControllerConfig, JournalMode};
pub use throttle::ThrottleConfig;

use crate::cache::{ActionCache, ResolvedAction};
use crate::error::{ApiError, CORRUPTED_ENTITY};

/// Everything a controller uses, as SPI trait objects chosen by the composition root.
pub struct ControllerDeps {
    /// Actions (and later packages, triggers, rules).
    pub entities: Arc<dyn EntityStore>,
    /// Activation records and the crash journal.
    pub activations: Arc<dyn ActivationStore>,
    /// Credentials to identities.
    pub auth: Arc<dyn Authenticator>,
    /// Where `GET .../activations/{id}/logs` reads logs.
    pub logs: Arc<dyn LogStore>,
    /// Picks the load balancer for each action.
    pub balancers: Arc<dyn LoadBalancerResolver>,
    /// The runtime kinds this deployment offers.
    pub manifest: Arc<RuntimeManifest>,
    /// The controller's own settings.
    pub config: ControllerConfig,
}

/// The shared state of every handler.
pub(crate) struct Inner {
    pub entities: Arc<dyn EntityStore>,
    pub activations: Arc<dyn ActivationStore>,
    pub auth: Arc<dyn Authenticator>,
    pub logs: Arc<dyn LogStore>,
    pub balancers: Arc<dyn LoadBalancerResolver>,
    pub manifest: Arc<RuntimeManifest>,
    pub config: ControllerConfig,
    pub actions: ActionCache,
    pub throttles: throttle::Throttles,
    /// Set once the controller shares cache invalidations over a bus.
    pub invalidations: std::sync::OnceLock<invalidation::Publisher>,
    pub metrics: metrics::ControllerMetrics,
}

impl Inner {
    /// The action stored as `name` (`name` or `pkg/name`) in `namespace`, from the cache or the store.
    pub async fn resolve_action(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<ResolvedAction>, ApiError> {
        if let Some(hit) = self.actions.get(namespace, name) {
            return Ok(hit);
        }
        let epoch = self.actions.epoch();
        let doc = self
            .entities
            .get(Collection::Actions, namespace, name)
            .await?
            .ok_or_else(ApiError::not_found)?;
        let rev = doc.rev;
        let action = parse_action_doc(doc.body)?;
        let resolved = Arc::new(ResolvedAction::new(rev, action));
        self.actions
            .insert(namespace, name, resolved.clone(), epoch);
        Ok(resolved)
    }

    /// The action a request path addresses, for a caller who owns the namespace (`owner`) or
    /// not. Actions outside a package are the owner's only; an action in a package is reached
    /// through the package (a binding resolves to its package, whose parameters, with the
    /// binding's on top, are inherited) and non-owners reach it only in a published package.
    pub async fn resolve_target(
        &self,
        target: &actions::Target,
        owner: bool,
    ) -> Result<Arc<ResolvedAction>, ApiError> {
        let Some(pkg) = &target.package else {
            if !owner {
                return Err(ApiError::forbidden());
            }
            return self.resolve_action(&target.namespace, &target.name).await;
        };
        let ns = target.namespace.as_str();
        let key = target.doc_name();
        let resolved = match self.actions.get(ns, &key) {
            Some(hit) => hit,
            None => {
                let epoch = self.actions.epoch();
                let r = Arc::new(self.resolve_packaged(ns, pkg, &target.name, owner).await?);
                self.actions.insert(ns, &key, r.clone(), epoch);
                r
            }
        };
        if !owner && !resolved.public {
            return Err(ApiError::forbidden());
        }
        Ok(resolved)
    }

    /// Reads a packaged action and its package (and the package a binding refers to) from the store.
    async fn resolve_packaged(
        &self,
        ns: &str,
        pkg: &str,
        name: &str,
        owner: bool,
    ) -> Result<ResolvedAction, ApiError> {
        let denied = || {
            if owner {
                ApiError::not_found()
            } else {
                ApiError::forbidden()
            }
        };
        let package = self.get_package(ns, pkg).await?.ok_or_else(denied)?;
        let (base, inherited, public, binding) = match &package.binding {
            None => {
                if !owner && !package.publish {
                    return Err(ApiError::forbidden());
                }
                let public = package.publish;
                let params = package.parameters.clone();
                (package, params, public, None)
            }
            Some(_) => {
                if !owner {
                    return Err(ApiError::forbidden());
                }
                let base = self.bound_package(ns, &package).await?;
                let params = base.parameters.merged(&package.parameters);
                (base, params, false, Some(format!("{ns}/{pkg}")))
            }
        };
        let doc_name = format!("{}/{name}", base.name);
        let doc = self
            .entities
            .get(Collection::Actions, &base.namespace, &doc_name)
            .await?
            .ok_or_else(ApiError::not_found)?;
        let action = parse_action_doc(doc.body)?;
        Ok(ResolvedAction::packaged(
            doc.rev, action, &inherited, public, binding,
        ))
    }

    /// A package document, if there is one.
    pub async fn get_package(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<whirl_model::Package>, ApiError> {
        match self.entities.get(Collection::Packages, ns, name).await? {
            Some(doc) => Ok(Some(parse_package_doc(doc.body)?)),
            None => Ok(None),
        }
    }

    /// The package a binding (owned by the caller, in `ns`) refers to, if the caller may read it:
    /// it exists, is not itself a binding, and is the caller's own or published.
    pub async fn bound_package(
        &self,
        ns: &str,
        binding: &whirl_model::Package,
    ) -> Result<whirl_model::Package, ApiError> {
        let Some(b) = &binding.binding else {
            return Ok(binding.clone());
        };
        if b.namespace == ns && b.name == binding.name {
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "Package binding '/{}/{}' contains a circular reference.",
                    b.namespace, b.name
                ),
            ));
        }
        let own = b.namespace == ns;
        let base = self
            .get_package(&b.namespace, &b.name)
            .await?
            .ok_or_else(|| {
                if own {
                    ApiError::not_found()
                } else {
                    ApiError::forbidden()
                }
            })?;
        if base.binding.is_some() || !(own || base.publish) {
            return Err(ApiError::forbidden());
        }
        Ok(base)
    }

    /// Largest `PUT` body accepted: code plus parameters plus annotations, with room for JSON.
    pub fn put_body_limit(&self) -> usize {
        let l = &self.config.limits;
        l.max_exec_bytes
            .saturating_add(l.max_parameter_bytes.saturating_mul(2))
            .saturating_add(1 << 20)
    }
}

/// Reads a stored action document.
pub(crate) fn parse_action_doc(body: serde_json::Value) -> Result<whirl_model::Action, ApiError> {
    serde_json::from_value(body).map_err(|e| {
        tracing::error!("stored action cannot be read: {e}");
        ApiError::internal(CORRUPTED_ENTITY)
    })
}

/// Reads a stored package document.
pub(crate) fn parse_package_doc(body: serde_json::Value) -> Result<whirl_model::Package, ApiError> {
    serde_json::from_value(body).map_err(|e| {
        tracing::error!("stored package cannot be read: {e}");
        ApiError::internal(CORRUPTED_ENTITY)
    })
}

/// Refuses a body whose `Content-Type` is given and is not JSON.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let s = ct.to_str().unwrap_or("");
    let mime = s.split(';').next().unwrap_or("").trim();
    let json = mime.eq_ignore_ascii_case("application/json")
        || mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json");
    if json {
        Ok(())
    } else {
        Err(ApiError::unsupported_content_type(s))
    }
}

/// Reads a request body of at most `limit` bytes (413 in OpenWhisk's words beyond).
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(len) = declared {
        if len > limit {
            return Err(ApiError::entity_too_big("Request", len, limit));
        }
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            ApiError::entity_too_big("Request", limit.saturating_add(1), limit)
        } else {
            ApiError::bad_request("Failed extracting request body.")
        }
    })
}

/// A controller: the REST API over its dependencies.
pub struct Controller {
    inner: Arc<Inner>,
}

impl Controller {
    /// Builds a controller from its dependencies.
    pub fn new(deps: ControllerDeps) -> Self {
        let ControllerDeps {
            entities,
            activations,
            auth,
            logs,
            balancers,
            manifest,
            config,
        } = deps;
        let actions = ActionCache::new(config.action_cache_ttl_ms, config.action_cache_capacity);
        let mut throttles = throttle::Throttles::new(config.throttles);
        throttles.rejections = metrics::Rejections::new(&config.controller_id);
        let metrics = metrics::ControllerMetrics::new(
            &config.controller_id,
            manifest.clone(),
            &throttles.rejections,
        );
        Self {
            inner: Arc::new(Inner {
                entities,
                activations,
                auth,
                logs,
                balancers,
                manifest,
                config,
                actions,
                throttles,
                invalidations: std::sync::OnceLock::new(),
                metrics,
            }),
        }
    }

    /// The controller's configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.inner.config
    }

    /// The registry `GET /metrics` serves: the controller's metrics, and whatever the caller
    /// registers in it (the in-process invoker's, in a standalone platform).
    pub fn metrics_registry(&self) -> &prometheus::Registry {
        self.inner.metrics.registry()
    }

    /// The HTTP routes (see the crate documentation for the table), with the request middleware.
    pub fn router(&self) -> Router {
        let inner = &self.inner;
        let api = api_routes()
            .merge(metrics::routes(&inner.config))
            .merge(dashboard::routes(&inner.config))
            .with_state(inner.clone());
        finish(info::routes(&inner.config, &inner.manifest).merge(api))
    }

    /// Shares entity cache invalidations with the other controllers on `messaging` (a
    /// distributed deployment): this controller's writes evict the others' cached entries and
    /// theirs evict its own.
    pub async fn share_cache_invalidations(
        &self,
        messaging: Arc<dyn whirl_spi::Messaging>,
    ) -> Result<(), whirl_spi::MessagingError> {
        invalidation::share(self.inner.clone(), messaging).await
    }

    /// Installs the system catalog (`whisk.system/utils`, public) where it is missing. Returns how
    /// many entities it created (0 once installed).
    pub async fn install_catalog(&self) -> Result<usize, whirl_spi::StoreError> {
        catalog::install(&self.inner).await
    }

    /// Turns this controller's journal entries that never got a record into whisk-internal-error
    /// records (after a crash). Returns how many records were written.
    pub async fn recover_orphans(&self) -> Result<usize, whirl_spi::StoreError> {
        invoke::recover_orphans(&self.inner).await
    }

    /// Serves the API on `listener` until `shutdown` resolves, then stops accepting connections
    /// and waits for in-flight requests (blocking invokes included) to finish.
    /// With [`ControllerConfig::recover_orphans_on_start`], first recovers orphaned activations.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        use axum::serve::ListenerExt;
        if self.inner.config.recover_orphans_on_start {
            match self.recover_orphans().await {
                Ok(0) => {}
                Ok(n) => tracing::warn!("recorded {n} activation(s) interrupted by the last stop"),
                Err(e) => tracing::error!("could not recover interrupted activations: {e}"),
            }
        }
        let addr = listener.local_addr()?;
        tracing::info!(controller = %self.inner.config.controller_id, %addr, "controller listening");
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("could not set TCP_NODELAY: {e}");
            }
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await?;
        tracing::info!(controller = %self.inner.config.controller_id, "controller stopped");
        Ok(())
    }
}

/// `GET /invokers`: each invoker's health as OpenWhisk's controller reports it
/// (`{"invoker0": "up", "invoker1": "down", ...}`; `unhealthy`, `unresponsive`), over every
/// load balancer of this controller. Operational data without secrets, unauthenticated as in
/// OpenWhisk.
async fn invokers(
    axum::extract::State(inner): axum::extract::State<Arc<Inner>>,
) -> axum::response::Response {
    use whirl_spi::HealthStatus::*;
    // An invoker several balancers use (the in-process one) shows its least healthy state.
    let rank = |s: whirl_spi::HealthStatus| match s {
        Healthy => 0,
        Unhealthy => 1,
        Unresponsive => 2,
        Offline => 3,
    };
    let mut seen: std::collections::BTreeMap<String, whirl_spi::HealthStatus> = Default::default();
    for lb in inner.balancers.all() {
        for h in lb.invoker_health().await {
            let e = seen.entry(h.id).or_insert(h.status);
            if rank(h.status) > rank(*e) {
                *e = h.status;
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (id, status) in seen {
        let word = match status {
            Healthy => "up",
            Unhealthy => "unhealthy",
            Unresponsive => "unresponsive",
            Offline => "down",
        };
        out.insert(id, serde_json::Value::String(word.into()));
    }
    axum::response::IntoResponse::into_response(axum::Json(serde_json::Value::Object(out)))
}

/// The authenticated API routes (state: the shared controller state).
fn api_routes() -> Router<Arc<Inner>> {
    Router::new()
        .route("/invokers", get(invokers))
        .route("/api/v1/namespaces", get(actions::list_namespaces))
        .route("/api/v1/namespaces/", get(actions::list_namespaces))
        .route(
            "/api/v1/namespaces/{ns}/limits",
            get(actions::namespace_limits),
        )
        .route(
            "/api/v1/namespaces/{ns}/actions",
            get(actions::list_actions),
        )
        .route(
            "/api/v1/namespaces/{ns}/actions/",
            get(actions::list_actions),
        )
        .route(
            "/api/v1/namespaces/{ns}/actions/{pkg}/",
            get(actions::list_package_actions),
        )
        .route(
            "/api/v1/namespaces/{ns}/actions/{name}",
            get(actions::get_action)
                .put(actions::put_action)
                .delete(actions::delete_action)
                .post(invoke::invoke),
        )
        .route(
            "/api/v1/namespaces/{ns}/actions/{pkg}/{name}",
            get(actions::get_action)
                .put(actions::put_action)
                .delete(actions::delete_action)
                .post(invoke::invoke),
        )
        .route(
            "/api/v1/namespaces/{ns}/packages",
            get(packages::list_packages),
        )
        .route(
            "/api/v1/namespaces/{ns}/packages/",
            get(packages::list_packages),
        )
        .route(
            "/api/v1/namespaces/{ns}/packages/{name}",
            get(packages::get_package)
                .put(packages::put_package)
                .delete(packages::delete_package),
        )
        .route(
            "/api/v1/namespaces/{ns}/triggers",
            get(triggers::list_triggers),
        )
        .route(
            "/api/v1/namespaces/{ns}/triggers/",
            get(triggers::list_triggers),
        )
        .route(
            "/api/v1/namespaces/{ns}/triggers/{name}",
            get(triggers::get_trigger)
                .put(triggers::put_trigger)
                .delete(triggers::delete_trigger)
                .post(triggers::fire_trigger),
        )
        .route("/api/v1/namespaces/{ns}/rules", get(triggers::list_rules))
        .route("/api/v1/namespaces/{ns}/rules/", get(triggers::list_rules))
        .route(
            "/api/v1/namespaces/{ns}/rules/{name}",
            get(triggers::get_rule)
                .put(triggers::put_rule)
                .delete(triggers::delete_rule)
                .post(triggers::set_rule_status),
        )
        .route("/api/v1/web/{*path}", any(web::handle))
        .route(
            "/api/v1/namespaces/{ns}/activations",
            get(activations::list_activations),
        )
        .route(
            "/api/v1/namespaces/{ns}/activations/",
            get(activations::list_activations),
        )
        .route(
            "/api/v1/namespaces/{ns}/activations/{id}",
            get(activations::get_activation),
        )
        .route(
            "/api/v1/namespaces/{ns}/activations/{id}/logs",
            get(activations::activation_logs),
        )
        .route(
            "/api/v1/namespaces/{ns}/activations/{id}/result",
            get(activations::activation_result),
        )
}

/// Wraps a router in the request middleware. The middleware sits outside the whole router (not
/// around each route), so it sees the router's own 404 and 405 responses, `Allow` header included,
/// and gives them JSON bodies.
fn finish(router: Router) -> Router {
    Router::new()
        .fallback_service(router)
        .layer(axum::middleware::from_fn(context::request_context))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn test_router() -> Router {
        finish(info::routes(
            &ControllerConfig::default(),
            &RuntimeManifest::default(),
        ))
    }

    async fn call(r: Router, req: Request<Body>) -> (StatusCode, HeaderMap, serde_json::Value) {
        let resp = r.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, v)
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn api_info_is_public_json_with_openwhisk_headers() {
        let (s, h, v) = call(test_router(), get("/")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["api_paths"], serde_json::json!(["/api/v1"]));
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS],
            "GET, DELETE, POST, PUT, HEAD"
        );
        assert_eq!(h["x-request-id"].len(), 32);
        let (s, _, v) = call(test_router(), get("/api/v1")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["api_version"], "1.0.0");
        assert_eq!(v["api_version_path"], "v1");
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_get_json_errors_with_the_transaction_id() {
        let (s, h, v) = call(test_router(), get("/api/v1/nothing/here")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v["error"], "The requested resource could not be found.");
        assert_eq!(v["code"], h["x-request-id"].to_str().unwrap());

        let (s, _, v) = call(
            test_router(),
            Request::delete("/api/v1").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("HTTP method not allowed"),
            "{v}"
        );
    }

    #[tokio::test]
    async fn callers_may_name_the_transaction_and_preflights_are_answered() {
        let mut req = get("/api/v1/missing");
        req.headers_mut()
            .insert("x-request-id", HeaderValue::from_static("my-tid"));
        let (_, h, v) = call(test_router(), req).await;
        assert_eq!(h["x-request-id"], "my-tid");
        assert_eq!(v["code"], "my-tid");

        let req = Request::options("/api/v1/namespaces/_/actions/a")
            .body(Body::empty())
            .unwrap();
        let (s, h, _) = call(test_router(), req).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("Authorization"));
    }

    #[test]
    fn api_routes_do_not_conflict() {
        let _ = api_routes();
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(require_json(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(require_json(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.api+json"),
        );
        assert!(require_json(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let e = require_json(&h).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            e.message,
            "The request's Content-Type [text/plain] is not supported. Expected:\napplication/json"
        );
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("11"));
        let e = read_body(&h, Body::from("01234567890"), 10)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.message, "Request larger than allowed: 11 > 10 bytes.");
        let e = read_body(&HeaderMap::new(), Body::from("01234567890"), 10)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            read_body(&HeaderMap::new(), Body::from("0123"), 10)
                .await
                .unwrap(),
            "0123"
        );
    }
}
