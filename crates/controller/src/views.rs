//! The JSON views the API returns, serialized straight from the model types without an
//! intermediate `Value` where they sit on the invoke path.

use serde::Serialize;
use serde_json::{json, Map, Value};
use whirl_model::{Action, Activation, ActivationId, ActivationResponse, Params};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// An activation response as the API shows it (OpenWhisk's `toExtendedJson`): `status` and
/// `success` instead of the stored `statusCode`.
#[derive(Serialize)]
pub(crate) struct ResponseView<'a> {
    status: &'static str,
    success: bool,
    #[serde(serialize_with = "result_or_empty")]
    result: &'a Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<usize>,
}

fn result_or_empty<S: serde::Serializer>(r: &&Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(v) => v.serialize(s),
        None => Map::new().serialize(s),
    }
}

impl<'a> ResponseView<'a> {
    pub fn new(r: &'a ActivationResponse) -> Self {
        Self {
            status: r.status.as_str(),
            success: r.is_success(),
            result: &r.result,
            size: r.size,
        }
    }
}

/// A full activation record as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActivationView<'a> {
    namespace: &'a str,
    name: &'a str,
    version: &'a str,
    subject: &'a str,
    activation_id: &'a ActivationId,
    start: u64,
    #[serde(skip_serializing_if = "is_zero")]
    end: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    publish: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a ActivationId>,
    response: ResponseView<'a>,
    logs: &'a [String],
    annotations: &'a Params,
}

impl<'a> ActivationView<'a> {
    pub fn new(a: &'a Activation) -> Self {
        Self {
            namespace: &a.namespace,
            name: &a.name,
            version: &a.version,
            subject: &a.subject,
            activation_id: &a.activation_id,
            start: a.start,
            end: a.end,
            duration: a.duration,
            publish: a.publish,
            cause: a.cause.as_ref(),
            response: ResponseView::new(&a.response),
            logs: &a.logs,
            annotations: &a.annotations,
        }
    }
}

/// The result alone (`?result=true`, and the body of a blocking invoke with an array result):
/// the result value, or `{}` when there is none.
pub(crate) fn result_bytes(a: &Activation) -> Vec<u8> {
    match &a.response.result {
        None | Some(Value::Null) => b"{}".to_vec(),
        Some(v) => serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// An action as `GET` returns it, optionally without its code (`?code=false`: the `code` field is
/// left out of `exec`).
pub(crate) fn action_json(action: &Action, with_code: bool) -> Value {
    let mut v = serde_json::to_value(action).unwrap_or(Value::Null);
    if !with_code {
        if let Some(exec) = v.get_mut("exec").and_then(Value::as_object_mut) {
            exec.remove("code");
        }
    }
    v
}

/// An action as listings show it: no code, no parameters, `exec` reduced to `binary`
/// (clients read the kind from the `exec` annotation).
pub(crate) fn action_summary(action: &Action) -> Value {
    json!({
        "namespace": action.namespace,
        "name": action.name,
        "version": action.version,
        "publish": action.publish,
        "annotations": action.annotations,
        "limits": action.limits,
        "exec": {"binary": action.exec.binary()},
        "updated": action.updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use whirl_model::StatusCode;

    fn activation(result: Option<Value>, status: StatusCode) -> Activation {
        Activation {
            namespace: "guest".into(),
            name: "hello".into(),
            version: "0.0.1".into(),
            subject: "guest".into(),
            activation_id: ActivationId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            start: 10,
            end: 15,
            duration: Some(5),
            publish: false,
            cause: None,
            response: ActivationResponse {
                status,
                result,
                size: None,
            },
            logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hi".into()],
            annotations: Params::new(),
        }
    }

    #[test]
    fn activation_view_is_openwhisks_extended_json() {
        let a = activation(Some(json!({"x": 1})), StatusCode::Success);
        let v = serde_json::to_value(ActivationView::new(&a)).unwrap();
        assert_eq!(
            v,
            json!({
                "namespace": "guest", "name": "hello", "version": "0.0.1", "subject": "guest",
                "activationId": "0123456789abcdef0123456789abcdef", "start": 10, "end": 15, "duration": 5,
                "publish": false,
                "response": {"status": "success", "success": true, "result": {"x": 1}},
                "logs": ["2024-01-01T00:00:00.000000000Z stdout: hi"], "annotations": []
            })
        );
        let a = activation(None, StatusCode::WhiskError);
        let v = serde_json::to_value(ResponseView::new(&a.response)).unwrap();
        assert_eq!(
            v,
            json!({"status": "whisk internal error", "success": false, "result": {}})
        );
        assert_eq!(result_bytes(&a), b"{}");
    }

    #[test]
    fn action_views() {
        let a: Action = serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "version": "0.0.2",
            "exec": {"kind": "python:3", "code": "def main(a): return a", "main": "main"},
            "parameters": [{"key":"p","value":1}],
            "annotations": [{"key":"exec","value":"python:3"}],
            "limits": {"timeout": 1000, "memory": 256, "logs": 10, "concurrency": 1},
            "updated": 7
        }))
        .unwrap();
        let full = action_json(&a, true);
        assert_eq!(full["exec"]["code"], "def main(a): return a");
        let no_code = action_json(&a, false);
        assert_eq!(
            no_code["exec"],
            json!({"kind": "python:3", "binary": false, "main": "main"})
        );
        assert_eq!(no_code["parameters"], json!([{"key":"p","value":1}]));
        let s = action_summary(&a);
        assert_eq!(s["exec"], json!({"binary": false}));
        assert!(s.get("parameters").is_none());
        assert_eq!(s["annotations"], json!([{"key":"exec","value":"python:3"}]));
    }
}
