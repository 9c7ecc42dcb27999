//! The OpenAPI check: fetches the document the running server serves at `/api/v1/api-docs` and
//! walks every operation in it against the real `whirl standalone` (with fixtures so that path
//! parameters name real entities), checking that each answer's status is documented for the
//! operation and that JSON bodies match the documented schema. Methods a path does not document
//! must be refused (405), so the document and the router cannot drift apart unnoticed.

mod common;

use common::{Platform, GUEST};
use reqwest::Method;
use serde_json::{json, Value};

/// Resolves `$ref`s to the document's component schemas.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A small JSON-schema check: `type`, `required`, `properties`, `items`, `enum`, `oneOf`,
/// `additionalProperties`. Returns what does not match.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = alts.iter().any(|s| {
            let mut e = Vec::new();
            check(doc, s, v, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{at}: matches none of oneOf: {v}"));
        }
        return;
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: expected {t}, got {v}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let Value::Object(m) = v {
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let k = req.as_str().unwrap();
            if !m.contains_key(k) {
                errors.push(format!("{at}: missing required '{k}' in {v}"));
            }
        }
        for (k, x) in m {
            if let Some(s) = schema.get("properties").and_then(|p| p.get(k)) {
                check(doc, s, x, &format!("{at}.{k}"), errors);
            } else if let Some(s) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                check(doc, s, x, &format!("{at}.{k}"), errors);
            }
        }
    }
    if let (Value::Array(a), Some(items)) = (v, schema.get("items")) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), errors);
        }
    }
}

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "options", "head"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented() {
    let p = Platform::start("").await;
    let r = p.http.get(p.url("/api/v1/api-docs")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");

    // Fixtures named by the path parameters.
    p.put_action(
        "echo",
        "python:3",
        "def main(args):\n    return args\n",
        json!({}),
    )
    .await;
    let (st, _) = p.call(Method::PUT, "/packages/pkg", Some(json!({}))).await;
    assert_eq!(st, 200);
    p.put_action(
        "pkg/echo",
        "python:3",
        "def main(args):\n    return args\n",
        json!({}),
    )
    .await;
    let (st, _) = p.call(Method::PUT, "/triggers/t", Some(json!({}))).await;
    assert_eq!(st, 200);
    let (st, _) = p
        .call(
            Method::PUT,
            "/rules/r",
            Some(json!({"trigger": "t", "action": "echo"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, act) = p.invoke("echo", json!({})).await;
    assert_eq!(st, 200);
    let activation = act["activationId"].as_str().unwrap().to_owned();
    let fill = |path: &str| {
        path.replace(
            "{namespace}",
            if path.starts_with("/api/v1/web") {
                "guest"
            } else {
                "_"
            },
        )
        .replace("{actionName}", "echo")
        .replace(
            "{packageName}",
            if path.starts_with("/api/v1/web") {
                "default"
            } else {
                "pkg"
            },
        )
        .replace("{triggerName}", "t")
        .replace("{ruleName}", "r")
        .replace("{activationId}", &activation)
    };

    let paths = doc["paths"].as_object().unwrap();
    // Every operation, deletes last (they remove the fixtures).
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops.sort_by_key(|(_, m, _)| m == "delete");
    let mut errors = Vec::new();
    let mut walked = 0;
    for (path, method, op) in &ops {
        let url = p.url(&fill(path));
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = p.http.request(m.clone(), &url);
        let public = op
            .get("security")
            .is_some_and(|s| s.as_array().is_some_and(|a| a.is_empty()));
        if !public {
            req = req.basic_auth(GUEST.0, Some(GUEST.1));
        }
        if let Some(example) = op.pointer("/requestBody/content/application~1json/example") {
            req = req.json(example);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16().to_string();
        let text = resp.text().await.unwrap();
        walked += 1;
        let responses = &op["responses"];
        let Some(documented) = responses.get(&status).or_else(|| responses.get("default")) else {
            errors.push(format!(
                "{method} {path}: status {status} not documented: {text}"
            ));
            continue;
        };
        if let Some(schema) = documented.pointer("/content/application~1json/schema") {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => check(
                    &doc,
                    schema,
                    &v,
                    &format!("{method} {path} {status}"),
                    &mut errors,
                ),
                Err(e) => errors.push(format!("{method} {path}: body is not JSON ({e}): {text}")),
            }
        }
        // Errors carry OpenWhisk's body.
        let error = status.starts_with('4') || status.starts_with('5');
        if error && !path.starts_with("/api/v1/web") {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v.get("error").is_none() || v.get("code").is_none() {
                errors.push(format!(
                    "{method} {path}: error without {{error, code}}: {text}"
                ));
            }
        }
    }
    assert!(walked >= 40, "walked only {walked} operations");

    // Undocumented methods on documented paths are refused.
    for (path, item) in paths {
        if path.starts_with("/api/v1/web") {
            continue;
        }
        for method in METHODS {
            if item.get(method).is_some() || method == "options" || method == "head" {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = p
                .http
                .request(m, p.url(&fill(path)))
                .basic_auth(GUEST.0, Some(GUEST.1))
                .send()
                .await
                .unwrap();
            if resp.status().as_u16() != 405 {
                errors.push(format!(
                    "{method} {path}: undocumented method answered {}",
                    resp.status()
                ));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}
