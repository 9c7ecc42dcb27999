//! The JSON views the API returns, serialized straight from the model types without an
//! intermediate `Value` where they sit on the invoke path.

use serde::Serialize;
use serde_json::{Map, Value};
use whirl_model::{
    Action, ActionLimits, Activation, ActivationId, ActivationResponse, Exec, Params,
};

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

/// An exec without its code (`?code=false`, listings keep only `binary`).
#[derive(Serialize)]
struct ExecMeta<'a> {
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    main: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<&'a [String]>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ExecView<'a> {
    Full(&'a Exec),
    Meta(ExecMeta<'a>),
    Binary { binary: bool },
}

impl<'a> ExecView<'a> {
    fn without_code(e: &'a Exec) -> Self {
        let (image, binary, components) = match e {
            Exec::Code { binary, .. } => (None, Some(*binary), None),
            Exec::Blackbox { image, binary, .. } => (Some(image.as_str()), Some(*binary), None),
            Exec::Sequence { components } => (None, None, Some(components.as_slice())),
        };
        ExecView::Meta(ExecMeta {
            kind: e.kind(),
            image,
            binary,
            main: e.main(),
            components,
        })
    }
}

/// An action as the API shows it, fields in OpenWhisk's order.
#[derive(Serialize)]
struct ActionView<'a> {
    namespace: &'a str,
    name: &'a str,
    version: &'a str,
    publish: bool,
    exec: ExecView<'a>,
    annotations: &'a Params,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Params>,
    limits: &'a ActionLimits,
    updated: u64,
}

/// An action as `GET`, `PUT` and `DELETE` return it, optionally without its code (`?code=false`:
/// the `code` field is left out of `exec`).
pub(crate) fn action_json(action: &Action, with_code: bool) -> Vec<u8> {
    let exec = if with_code {
        ExecView::Full(&action.exec)
    } else {
        ExecView::without_code(&action.exec)
    };
    view(action, exec, true)
}

/// An action as listings show it: no code, no parameters, `exec` reduced to `binary`
/// (clients read the kind from the `exec` annotation).
pub(crate) fn action_summary(action: &Action) -> Vec<u8> {
    view(
        action,
        ExecView::Binary {
            binary: action.exec.binary(),
        },
        false,
    )
}

fn view(a: &Action, exec: ExecView<'_>, with_parameters: bool) -> Vec<u8> {
    let v = ActionView {
        namespace: &a.namespace,
        name: &a.name,
        version: &a.version,
        publish: a.publish,
        exec,
        annotations: &a.annotations,
        parameters: with_parameters.then_some(&a.parameters),
        limits: &a.limits,
        updated: a.updated,
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Joins serialized JSON values into an array.
pub(crate) fn json_array(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item);
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
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
        let parse = |b: Vec<u8>| serde_json::from_slice::<Value>(&b).unwrap();
        let full = parse(action_json(&a, true));
        assert_eq!(full, serde_json::to_value(&a).unwrap());
        assert_eq!(full["exec"]["code"], "def main(a): return a");
        let no_code = parse(action_json(&a, false));
        assert_eq!(
            no_code["exec"],
            json!({"kind": "python:3", "binary": false, "main": "main"})
        );
        assert_eq!(no_code["parameters"], json!([{"key":"p","value":1}]));
        let s = parse(action_summary(&a));
        assert_eq!(s["exec"], json!({"binary": false}));
        assert!(s.get("parameters").is_none());
        assert_eq!(s["annotations"], json!([{"key":"exec","value":"python:3"}]));
        let two = parse(json_array([action_summary(&a), action_summary(&a)]));
        assert_eq!(two.as_array().unwrap().len(), 2);
        assert_eq!(json_array(Vec::<Vec<u8>>::new()), b"[]");
        let seq: Exec =
            serde_json::from_value(json!({"kind": "sequence", "components": ["/guest/a"]}))
                .unwrap();
        let seq_action = Action { exec: seq, ..a };
        assert_eq!(
            parse(action_json(&seq_action, false))["exec"],
            json!({"kind": "sequence", "components": ["/guest/a"]})
        );
    }
}
