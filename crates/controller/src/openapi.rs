//! The OpenAPI 3.0 description of the whole API, served at `GET /api/v1/api-docs` (where
//! OpenWhisk serves its swagger). Built once at start; the end-to-end suite walks every
//! operation in it against the running server and checks statuses and body shapes.

use serde_json::{json, Map, Value};

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// Responses: `(status, description, schema or null)`; every error status carries `ErrorMessage`.
fn responses(list: &[(&str, &str, Value)]) -> Value {
    let mut m = Map::new();
    for (status, description, schema) in list {
        let mut resp = json!({ "description": description });
        let schema = if schema.is_null() && status.starts_with(['4', '5']) {
            r("ErrorMessage")
        } else {
            schema.clone()
        };
        if !schema.is_null() {
            resp["content"] = json_content(schema);
        }
        m.insert((*status).to_owned(), resp);
    }
    Value::Object(m)
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": {"type": ty}})
}

fn ns() -> Value {
    path_param("namespace", "The namespace, or `_` for the caller's own")
}

fn paging(collection: &str) -> Vec<Value> {
    vec![
        query(
            "skip",
            &format!("How many {collection} to skip (default 0)"),
            "integer",
        ),
        query(
            "limit",
            &format!("How many {collection} at most (default 30, 0 or at most 200)"),
            "integer",
        ),
        query("count", "Answer with the count only", "boolean"),
    ]
}

const E400: (&str, &str, Value) = ("400", "Bad request", Value::Null);
const E401: (&str, &str, Value) = ("401", "Authentication missing or invalid", Value::Null);
const E403: (&str, &str, Value) = ("403", "Not authorized", Value::Null);
const E404: (&str, &str, Value) = ("404", "The resource does not exist", Value::Null);
const E409: (&str, &str, Value) = ("409", "Conflict", Value::Null);
const E413: (&str, &str, Value) = ("413", "Request too large", Value::Null);
const E415: (&str, &str, Value) = ("415", "Content-Type not JSON", Value::Null);
const E429: (&str, &str, Value) = ("429", "Throttled", Value::Null);
const E500: (&str, &str, Value) = ("500", "Server error", Value::Null);
const E502: (&str, &str, Value) = (
    "502",
    "The activation failed (application or developer error)",
    Value::Null,
);
const E503: (&str, &str, Value) = ("503", "No invoker can take the activation", Value::Null);

fn list_op(tag: &str, summary: &str, item: &str, collection: &str) -> Value {
    let mut params = vec![ns()];
    params.extend(paging(collection));
    json!({
        "tags": [tag], "summary": summary, "parameters": params,
        "responses": responses(&[
            ("200", "The list, or `{collection: count}` with count=true",
             json!({"oneOf": [{"type": "array", "items": r(item)}, r("Count")]})),
            E400, E401, E403, E500,
        ]),
    })
}

fn entity_ops(
    tag: &str,
    what: &str,
    params: Vec<Value>,
    schema: &str,
    put_example: Value,
    extra_put: &[(&str, &str, Value)],
) -> Map<String, Value> {
    let mut put_params = params.clone();
    put_params.push(query(
        "overwrite",
        "Replace (update) an existing one",
        "boolean",
    ));
    let mut put_responses = vec![
        ("200", "Created or updated", r(schema)),
        E400,
        E401,
        E403,
        E404,
        E409,
        E413,
        E415,
        E500,
    ];
    put_responses.extend(extra_put.iter().cloned());
    let mut delete_params = params.clone();
    if tag == "Packages" {
        delete_params.push(query(
            "force",
            "Also delete the package's actions",
            "boolean",
        ));
    }
    let mut m = Map::new();
    m.insert(
        "get".into(),
        json!({
            "tags": [tag], "summary": format!("Get {what}"), "parameters": params,
            "responses": responses(&[("200", "Found", r(schema)), E400, E401, E403, E404, E500]),
        }),
    );
    m.insert(
        "put".into(),
        json!({
            "tags": [tag], "summary": format!("Create or update {what}"), "parameters": put_params,
            "requestBody": {"required": false, "content": {"application/json": {
                "schema": {"type": "object"}, "example": put_example}}},
            "responses": responses(&put_responses),
        }),
    );
    m.insert("delete".into(), json!({
        "tags": [tag], "summary": format!("Delete {what}"), "parameters": delete_params,
        "responses": responses(&[("200", "Deleted (the entity as it was)", r(schema)), E400, E401, E403, E404, E409, E500]),
    }));
    m
}

fn invoke_op(params: Vec<Value>) -> Value {
    let mut params = params;
    params.push(query("blocking", "Wait for the result", "boolean"));
    params.push(query(
        "result",
        "Answer with the result only (blocking)",
        "boolean",
    ));
    params.push(query(
        "timeout",
        "Longest wait in milliseconds (blocking)",
        "integer",
    ));
    json!({
        "tags": ["Actions"], "summary": "Invoke an action",
        "parameters": params,
        "requestBody": {"required": false, "content": {"application/json": {
            "schema": {"type": "object"}, "example": {"name": "Ada"}}}},
        "responses": responses(&[
            ("200", "The activation (or its result with result=true)", json!({"oneOf": [r("Activation"), {"type": "object"}, {"type": "array"}]})),
            ("202", "Accepted (non-blocking, or the wait ran out)", r("ActivationId")),
            E400, E401, E403, E404, E413, E415, E429, E500, E502, E503,
        ]),
    })
}

fn schemas() -> Value {
    let kv = json!({"type": "object", "required": ["key", "value"],
        "properties": {"key": {"type": "string"}, "value": {}, "init": {"type": "boolean"}}});
    let kvs = json!({"type": "array", "items": r("KeyValue")});
    let entity = |extra: Value, required: &[&str]| {
        let mut props = json!({
            "namespace": {"type": "string"}, "name": {"type": "string"},
            "version": {"type": "string"}, "publish": {"type": "boolean"},
            "annotations": r("KeyValues"), "updated": {"type": "integer"},
        });
        if let (Value::Object(p), Value::Object(e)) = (&mut props, extra) {
            p.extend(e);
        }
        let mut req = vec!["namespace", "name", "version", "publish", "annotations"];
        req.extend_from_slice(required);
        json!({"type": "object", "required": req, "properties": props})
    };
    let entity_ref = json!({"type": "object", "required": ["path", "name"],
        "properties": {"path": {"type": "string"}, "name": {"type": "string"}}});
    json!({
        "ErrorMessage": {"type": "object", "required": ["error", "code"],
            "properties": {"error": {"type": "string"}, "code": {"type": "string"}}},
        "KeyValue": kv,
        "KeyValues": kvs,
        "Count": {"type": "object", "additionalProperties": {"type": "integer"}},
        "Limits": {"type": "object", "required": ["timeout", "memory", "logs", "concurrency"],
            "properties": {"timeout": {"type": "integer"}, "memory": {"type": "integer"},
                           "logs": {"type": "integer"}, "concurrency": {"type": "integer"}}},
        "Exec": {"type": "object", "properties": {
            "kind": {"type": "string"}, "code": {"type": "string"}, "binary": {"type": "boolean"},
            "main": {"type": "string"}, "image": {"type": "string"},
            "components": {"type": "array", "items": {"type": "string"}}}},
        "Action": entity(json!({"exec": r("Exec"), "parameters": r("KeyValues"), "limits": r("Limits")}),
                         &["exec", "limits"]),
        "ActionSummary": entity(json!({"exec": {"type": "object"}, "limits": r("Limits")}), &["limits"]),
        "Binding": {"type": "object", "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}}},
        "Package": entity(json!({"binding": r("Binding"), "parameters": r("KeyValues"),
                                 "actions": {"type": "array", "items": {"type": "object"}},
                                 "feeds": {"type": "array", "items": {"type": "object"}}}),
                          &["binding", "parameters"]),
        "PackageSummary": entity(json!({"binding": {}}), &["binding"]),
        "Trigger": entity(json!({"parameters": r("KeyValues"), "limits": {"type": "object"},
                                 "rules": {"type": "object"}}), &["parameters", "limits"]),
        "TriggerSummary": entity(json!({}), &[]),
        "Rule": entity(json!({"trigger": entity_ref.clone(), "action": entity_ref,
                              "status": {"type": "string", "enum": ["active", "inactive"]}}),
                       &["trigger", "action"]),
        "ActivationId": {"type": "object", "required": ["activationId"],
            "properties": {"activationId": {"type": "string"}}},
        "ActivationResult": {"type": "object", "required": ["status", "success", "result"],
            "properties": {"status": {"type": "string"}, "success": {"type": "boolean"},
                           "result": {}, "size": {"type": "integer"}}},
        "Activation": {"type": "object",
            "required": ["namespace", "name", "version", "subject", "activationId", "start", "response", "logs", "annotations"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                "version": {"type": "string"}, "subject": {"type": "string"},
                "activationId": {"type": "string"}, "start": {"type": "integer"},
                "end": {"type": "integer"}, "duration": {"type": "integer"},
                "cause": {"type": "string"}, "publish": {"type": "boolean"},
                "response": r("ActivationResult"),
                "logs": {"type": "array", "items": {"type": "string"}},
                "annotations": r("KeyValues")}},
        "ActivationSummary": {"type": "object",
            "required": ["namespace", "name", "activationId", "start", "annotations"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                "activationId": {"type": "string"}, "start": {"type": "integer"},
                "annotations": r("KeyValues")}},
        "ActivationLogs": {"type": "object", "required": ["logs"],
            "properties": {"logs": {"type": "array", "items": {"type": "string"}}}},
        "NamespaceLimits": {"type": "object",
            "required": ["minActionMemory", "maxActionMemory", "minActionTimeout", "maxActionTimeout"],
            "properties": {"invocationsPerMinute": {"type": "integer"},
                "concurrentInvocations": {"type": "integer"}, "firesPerMinute": {"type": "integer"},
                "minActionMemory": {"type": "integer"}, "maxActionMemory": {"type": "integer"},
                "minActionTimeout": {"type": "integer"}, "maxActionTimeout": {"type": "integer"}}},
    })
}

/// The whole document.
pub(crate) fn document() -> Value {
    let base = "/api/v1/namespaces/{namespace}";
    let action = path_param("actionName", "The action's name");
    let package = path_param("packageName", "The package's name");
    let trigger = path_param("triggerName", "The trigger's name");
    let rule = path_param("ruleName", "The rule's name");
    let act_id = path_param("activationId", "The activation's id (32 hex digits)");
    let mut paths = Map::new();
    let mut add = |p: String, ops: Map<String, Value>| {
        paths.insert(p, Value::Object(ops));
    };
    let one = |method: &str, op: Value| {
        let mut m = Map::new();
        m.insert(method.to_owned(), op);
        m
    };
    let public = |summary: &str| {
        json!({"tags": ["Info"], "summary": summary, "security": [],
        "responses": responses(&[("200", "OK", json!({"type": "object"}))])})
    };
    add(
        "/".into(),
        one("get", public("Platform information: limits and runtimes")),
    );
    add("/api/v1".into(), one("get", public("API version")));
    add(
        "/api/v1/api-docs".into(),
        one("get", public("This document")),
    );
    add(
        "/api/v1/namespaces".into(),
        one(
            "get",
            json!({
                "tags": ["Namespaces"], "summary": "The caller's namespaces",
                "responses": responses(&[("200", "Namespace names", json!({"type": "array", "items": {"type": "string"}})), E401]),
            }),
        ),
    );
    add(
        format!("{base}/limits"),
        one(
            "get",
            json!({
                "tags": ["Namespaces"], "summary": "The namespace's throttles and action limits",
                "parameters": [ns()],
                "responses": responses(&[("200", "Limits", r("NamespaceLimits")), E401, E403]),
            }),
        ),
    );

    // Actions.
    add(
        format!("{base}/actions"),
        one(
            "get",
            list_op(
                "Actions",
                "List actions (default package)",
                "ActionSummary",
                "actions",
            ),
        ),
    );
    let mut pkg_list = list_op(
        "Actions",
        "List a package's actions (a binding lists its package's)",
        "ActionSummary",
        "actions",
    );
    if let Some(a) = pkg_list["parameters"].as_array_mut() {
        a.insert(1, package.clone());
    }
    pkg_list["responses"]["404"] = responses(&[E404])["404"].clone();
    add(
        format!("{base}/actions/{{packageName}}/"),
        one("get", pkg_list),
    );
    let action_example =
        json!({"exec": {"kind": "python:3", "code": "def main(args):\n    return args\n"}});
    for (path, params) in [
        (
            format!("{base}/actions/{{actionName}}"),
            vec![ns(), action.clone()],
        ),
        (
            format!("{base}/actions/{{packageName}}/{{actionName}}"),
            vec![ns(), package.clone(), action.clone()],
        ),
    ] {
        let mut ops = entity_ops(
            "Actions",
            "an action",
            params.clone(),
            "Action",
            action_example.clone(),
            &[],
        );
        if let Some(a) = ops["get"]["parameters"].as_array_mut() {
            a.push(query("code", "Include the code (default true)", "boolean"));
        }
        ops.insert("post".into(), invoke_op(params));
        add(path, ops);
    }

    // Packages.
    add(
        format!("{base}/packages"),
        one(
            "get",
            list_op(
                "Packages",
                "List packages (another namespace: its published ones)",
                "PackageSummary",
                "packages",
            ),
        ),
    );
    add(
        format!("{base}/packages/{{packageName}}"),
        entity_ops(
            "Packages",
            "a package or binding",
            vec![ns(), package.clone()],
            "Package",
            json!({"parameters": [{"key": "greeting", "value": "hi"}], "publish": false}),
            &[("422", "Binding refers to itself", Value::Null)],
        ),
    );

    // Triggers.
    add(
        format!("{base}/triggers"),
        one(
            "get",
            list_op("Triggers", "List triggers", "TriggerSummary", "triggers"),
        ),
    );
    let mut t_ops = entity_ops(
        "Triggers",
        "a trigger",
        vec![ns(), trigger.clone()],
        "Trigger",
        json!({"parameters": [{"key": "source", "value": "test"}]}),
        &[],
    );
    t_ops.insert("post".into(), json!({
        "tags": ["Triggers"], "summary": "Fire a trigger", "parameters": [ns(), trigger],
        "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object"}, "example": {"event": 1}}}},
        "responses": responses(&[
            ("202", "Fired: the trigger activation's id", r("ActivationId")),
            ("204", "No active rule: nothing fired", Value::Null),
            E400, E401, E403, E404, E413, E415, E429, E500,
        ]),
    }));
    add(format!("{base}/triggers/{{triggerName}}"), t_ops);

    // Rules.
    add(
        format!("{base}/rules"),
        one("get", list_op("Rules", "List rules", "Rule", "rules")),
    );
    let mut r_ops = entity_ops(
        "Rules",
        "a rule",
        vec![ns(), rule.clone()],
        "Rule",
        json!({"trigger": "/_/t", "action": "/_/echo"}),
        &[],
    );
    r_ops.insert("post".into(), json!({
        "tags": ["Rules"], "summary": "Enable or disable a rule", "parameters": [ns(), rule],
        "requestBody": {"required": true, "content": {"application/json": {
            "schema": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["active", "inactive"]}}},
            "example": {"status": "active"}}}},
        "responses": responses(&[("200", "Done", Value::Null), E400, E401, E403, E404, E409, E415, E500]),
    }));
    add(format!("{base}/rules/{{ruleName}}"), r_ops);

    // Activations.
    let mut list = list_op(
        "Activations",
        "List activations, newest first",
        "ActivationSummary",
        "activations",
    );
    if let Some(a) = list["parameters"].as_array_mut() {
        a.push(query(
            "name",
            "Only this action (`name` or `package/name`)",
            "string",
        ));
        a.push(query(
            "since",
            "Only activations started at or after (epoch ms)",
            "integer",
        ));
        a.push(query(
            "upto",
            "Only activations started at or before (epoch ms)",
            "integer",
        ));
        a.push(query("docs", "Full records", "boolean"));
    }
    list["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"oneOf": [{"type": "array", "items": {"type": "object"}}, r("Count")]});
    add(format!("{base}/activations"), one("get", list));
    let get = |summary: &str, schema: Value| {
        json!({
            "tags": ["Activations"], "summary": summary, "parameters": [ns(), act_id.clone()],
            "responses": responses(&[("200", "Found", schema), E400, E401, E403, E404, E500]),
        })
    };
    add(
        format!("{base}/activations/{{activationId}}"),
        one("get", get("Get an activation", r("Activation"))),
    );
    add(
        format!("{base}/activations/{{activationId}}/logs"),
        one("get", get("An activation's logs", r("ActivationLogs"))),
    );
    add(
        format!("{base}/activations/{{activationId}}/result"),
        one("get", get("An activation's result", r("ActivationResult"))),
    );

    // Web actions.
    let web_params = json!([
        path_param("namespace", "The action's namespace"),
        path_param("packageName", "The action's package, or `default`"),
        path_param(
            "actionName",
            "The action's name, optionally with an extension (.http, .json, .html, .svg, .text)"
        ),
    ]);
    let mut web = Map::new();
    for method in ["get", "post", "put", "delete", "patch", "options", "head"] {
        web.insert(
            method.into(),
            json!({
                "tags": ["Web actions"], "summary": "Run a web action (annotation web-export)",
                "security": [], "parameters": web_params,
                "responses": {"default": {"description": "What the action answers, or an error"}},
            }),
        );
    }
    add(
        "/api/v1/web/{namespace}/{packageName}/{actionName}".into(),
        web,
    );

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Whirl (OpenWhisk-compatible) REST API",
            "version": "1.0.0",
            "description": "Apache OpenWhisk's REST API as Whirl serves it. Errors are `{error, code}` with the transaction id as code.",
        },
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic",
                "description": "The namespace's `uuid:key`"}},
            "schemas": schemas(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let name = r.trim_start_matches("#/components/schemas/");
                        assert!(doc["components"]["schemas"].get(name).is_some(), "{r}");
                    }
                    m.values().for_each(|x| walk(x, doc));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
        assert!(doc["paths"].as_object().unwrap().len() >= 20);
    }
}
