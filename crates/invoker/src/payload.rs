//! The bodies of /init and /run as OpenWhisk's invoker builds them (openwhisk.md §5).

use serde_json::{json, Map, Value};
use whirl_model::{Action, ActivationMessage};
use whirl_runtime_client::RunPayload;

/// Whether the action receives the caller's API key (OpenWhisk: unless `provide-api-key` is false).
fn provides_api_key(action: &Action) -> bool {
    !matches!(
        action.annotations.get("provide-api-key"),
        Some(Value::Bool(false))
    )
}

/// Environment value of an init parameter: strings as they are, other JSON encoded, null empty.
fn env_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The `value` object of POST /init.
pub fn init_value(action: &Action, msg: &ActivationMessage, deadline_ms: u64) -> Value {
    let mut env = Map::new();
    if let (Some(Value::Object(content)), false) = (&msg.content, msg.init_args.is_empty()) {
        for key in &msg.init_args {
            if let Some(v) = content.get(key) {
                env.insert(key.clone(), Value::String(env_string(v)));
            }
        }
    }
    for (k, v) in context(action, msg, deadline_ms) {
        env.insert(format!("__OW_{}", k.to_ascii_uppercase()), v);
    }
    let mut value = json!({
        "name": action.name,
        "main": action.exec.main().unwrap_or("main"),
        "binary": action.exec.binary(),
        "env": env,
    });
    if let Some(code) = action.exec.code() {
        value["code"] = Value::String(code.to_string());
    }
    value
}

/// The context keys sent beside `value` in /run (and as `__OW_*` in /init's env).
fn context(
    action: &Action,
    msg: &ActivationMessage,
    deadline_ms: u64,
) -> Vec<(&'static str, Value)> {
    let mut c = vec![
        ("namespace", Value::String(msg.user.namespace.to_string())),
        ("action_name", Value::String(action.fully_qualified_name())),
        ("action_version", Value::String(action.version.clone())),
        (
            "activation_id",
            Value::String(msg.activation_id.to_string()),
        ),
        ("transaction_id", Value::String(msg.transid.clone())),
        ("deadline", Value::String(deadline_ms.to_string())),
    ];
    if provides_api_key(action) {
        c.push(("api_key", Value::String(msg.user.api_key())));
    }
    c
}

/// The parameters the action receives in /run: the content minus init-time parameters.
/// Borrows the message's content when there is nothing to remove.
pub fn run_params(msg: &ActivationMessage) -> std::borrow::Cow<'_, Value> {
    use std::borrow::Cow;
    match &msg.content {
        Some(Value::Object(m)) if !msg.init_args.is_empty() => {
            let mut m = m.clone();
            for k in &msg.init_args {
                m.remove(k);
            }
            Cow::Owned(Value::Object(m))
        }
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(Value::Object(Map::new())),
    }
}

/// The body of POST /run, borrowing from the action and the message.
pub fn run_payload<'a>(
    action: &'a Action,
    msg: &'a ActivationMessage,
    params: &'a Value,
    ids: &'a RunIds,
    deadline_ms: u64,
) -> RunPayload<'a> {
    RunPayload {
        value: params,
        namespace: msg.user.namespace.as_str(),
        action_name: &ids.action_name,
        action_version: &action.version,
        activation_id: &ids.activation_id,
        transaction_id: &msg.transid,
        deadline: deadline_ms,
        api_key: ids.api_key.as_deref(),
    }
}

/// Strings of a /run body that are formatted rather than borrowed.
pub struct RunIds {
    pub action_name: String,
    pub activation_id: String,
    pub api_key: Option<String>,
}

impl RunIds {
    pub fn new(action: &Action, msg: &ActivationMessage) -> Self {
        Self {
            action_name: action.fully_qualified_name(),
            activation_id: msg.activation_id.to_string(),
            api_key: provides_api_key(action).then(|| msg.user.api_key()),
        }
    }
}
