//! The controller → invoker message: everything an invoker needs to run one activation.
//! It is a serde type because it crosses process boundaries over a message bus.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::Action;
use crate::activation::{Activation, ActivationId, ActivationResponse};
use crate::identity::Identity;
use crate::params::Params;

/// Version of the message format; bumped on incompatible changes.
pub const MESSAGE_VERSION: u32 = 1;

/// One activation, as the controller hands it to a load balancer and an invoker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationMessage {
    #[serde(default = "default_version")]
    pub version: u32,
    /// Transaction id of the request that caused this activation.
    pub transid: String,
    /// `/ns[/pkg]/name` of the action.
    pub action: String,
    /// Store revision of the action document the controller resolved.
    pub revision: u64,
    /// The invoking identity.
    pub user: Identity,
    pub activation_id: ActivationId,
    /// Which controller waits for the completion.
    pub root_controller: String,
    pub blocking: bool,
    /// The merged parameters the action receives (`value` of /run), minus init parameters.
    pub content: Option<Value>,
    /// Parameter keys that go to /init as environment instead of to /run.
    #[serde(default)]
    pub init_args: Vec<String>,
    pub cause: Option<ActivationId>,
    /// Epoch ms when the controller accepted the request (the start of `waitTime`).
    pub received_at_ms: u64,
    /// Name of the load balancer that dispatched this activation.
    #[serde(default)]
    pub load_balancer: String,
    /// Extra annotations to record on the activation (e.g. `causedBy`).
    #[serde(default)]
    pub extra_annotations: Vec<(String, Value)>,
    /// W3C trace context of the dispatching span (`traceparent`, `tracestate`), so an invoker
    /// across the bus continues the request's trace; empty when not tracing.
    #[serde(default, skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub trace_context: std::collections::HashMap<String, String>,
}

fn default_version() -> u32 {
    MESSAGE_VERSION
}

/// The bus topic of the invoker with instance index `index` (`invoker<index>`, as OpenWhisk).
pub fn invoker_topic(index: u32) -> String {
    format!("invoker{index}")
}

/// The bus topic on which a controller receives its activations' acknowledgements.
pub fn completion_topic(controller_id: &str) -> String {
    format!("completed-{controller_id}")
}

/// The bus topic of health pings (invokers and controllers).
pub const HEALTH_TOPIC: &str = "health";

/// The bus topic on which controllers tell each other that an entity changed.
pub const CACHE_INVALIDATION_TOPIC: &str = "cacheInvalidation";

/// Invoker → controller acknowledgements, on the root controller's [`completion_topic`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AckMessage {
    /// The invoker took the activation and is about to run it. Sent, and confirmed by the bus,
    /// before the invoker acknowledges the activation message: from then on the controller knows
    /// the activation may have run and must not be run again elsewhere.
    #[serde(rename_all = "camelCase")]
    Started {
        activation_id: ActivationId,
        invoker: String,
        incarnation: String,
    },
    /// The activation ended and its record is stored. `activation` is the record itself when it
    /// fits the bus; otherwise the controller reads it from the activation store.
    #[serde(rename_all = "camelCase")]
    Completed {
        activation_id: ActivationId,
        invoker: String,
        incarnation: String,
        /// The activation ended in a whisk internal error (feeds invoker health).
        system_error: bool,
        activation: Option<Box<Activation>>,
    },
}

/// Health pings on [`HEALTH_TOPIC`], about once a second from every component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum HealthPing {
    /// An invoker is alive; `incarnation` changes with every start of its process.
    #[serde(rename_all = "camelCase")]
    Invoker {
        id: String,
        index: u32,
        user_memory_mb: u64,
        incarnation: String,
        /// False while the invoker drains for a shutdown (OpenWhisk's `isEnabled`).
        enabled: bool,
        sent_at_ms: u64,
    },
    /// A controller is alive (controllers count each other to share invoker capacity).
    #[serde(rename_all = "camelCase")]
    Controller {
        id: String,
        incarnation: String,
        sent_at_ms: u64,
    },
}

/// A controller changed an entity: the others drop it from their caches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityChanged {
    /// The controller that made the change (it ignores its own message).
    pub from: String,
    pub namespace: String,
    /// `name` or `pkg/name`; empty when `packaged` alone is meant.
    pub name: String,
    /// A package changed: every cached action that lives in a package is stale.
    pub packaged: bool,
}

/// The record of one activation of `action` as dispatched in `msg`, with OpenWhisk's
/// annotations (`path`, `waitTime`, `kind`, `timeout`, `limits`, `initTime` when cold).
#[allow(clippy::too_many_arguments)]
pub fn activation_record(
    action: &Action,
    msg: &ActivationMessage,
    start: u64,
    end: u64,
    init_ms: Option<u64>,
    response: ActivationResponse,
    logs: Vec<String>,
    timed_out: bool,
) -> Activation {
    let mut annotations = Params(Vec::with_capacity(8 + msg.extra_annotations.len()));
    annotations.put(
        "path",
        Value::String(format!("{}/{}", action.namespace, action.name)),
    );
    annotations.put(
        "waitTime",
        serde_json::json!(start.saturating_sub(msg.received_at_ms)),
    );
    annotations.put("kind", Value::String(action.kind().to_string()));
    annotations.put("timeout", Value::Bool(timed_out));
    annotations.put(
        "limits",
        serde_json::json!({
            "timeout": action.limits.timeout,
            "memory": action.limits.memory,
            "logs": action.limits.logs,
            "concurrency": action.limits.concurrency,
        }),
    );
    if let Some(i) = init_ms {
        annotations.put("initTime", serde_json::json!(i));
    }
    if !msg.load_balancer.is_empty() {
        annotations.put("loadBalancer", Value::String(msg.load_balancer.clone()));
    }
    for (k, v) in &msg.extra_annotations {
        annotations.put(k.clone(), v.clone());
    }
    Activation {
        namespace: msg.user.namespace.to_string(),
        name: action.name.clone(),
        version: action.version.clone(),
        subject: msg.user.subject.clone(),
        activation_id: msg.activation_id,
        start,
        end,
        duration: Some(end.saturating_sub(start)),
        publish: false,
        cause: msg.cause,
        response,
        logs,
        annotations,
    }
}
