//! End-to-end tests of web actions against the real `whirl standalone`: the `/api/v1/web` routes
//! without credentials, `__ow_*` fields, extensions, http results (status, headers, base64
//! bodies), raw-http, final parameters, require-whisk-auth, CORS and the error cases.

mod common;

use base64::Engine;
use common::{Platform, GUEST};
use reqwest::Method;
use serde_json::{json, Value};

const ECHO: &str = "def main(args):\n    return args\n";

const HTTP: &str = r#"
import base64
def main(args):
    kind = args.get("kind", "html")
    if kind == "html":
        return {"body": "<html>hi " + args.get("name", "you") + "</html>"}
    if kind == "png":
        return {"headers": {"Content-Type": "image/png"}, "body": base64.b64encode(b"\x89PNG\x00\x01").decode()}
    if kind == "json":
        return {"statusCode": 201, "headers": {"X-Custom": ["a", "b"], "X-Num": 7}, "body": {"ok": True}}
    if kind == "missing":
        return {"statusCode": "404", "headers": {"Content-Type": "text/plain"}, "body": "nothing here"}
    if kind == "empty":
        return {"headers": {"Location": "/elsewhere"}, "statusCode": 302}
    if kind == "apperror":
        return {"error": {"statusCode": 418, "body": "teapot"}}
    if kind == "crash":
        import os
        os._exit(3)
    if kind == "text":
        return {"text": "plain words"}
    if kind == "svg":
        return {"svg": "<svg/>"}
    if kind == "bad":
        return {"statusCode": "xyz"}
    return {"kind": kind}
"#;

async fn web(
    p: &Platform,
    method: Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = p.http.request(method, p.url(&format!("/api/v1/web{path}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some((ct, b)) = body {
        req = req.header("content-type", ct).body(b);
    }
    req.send().await.unwrap()
}

async fn web_json(p: &Platform, method: Method, path: &str) -> (u16, Value) {
    let r = web(p, method, path, None, &[]).await;
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_actions_serve_http() {
    let p = Platform::start("").await;
    let export = json!({"annotations": [{"key": "web-export", "value": true}]});
    p.put_action("echo", "python:3", ECHO, json!({"annotations": [{"key": "web-export", "value": true}], "parameters": [{"key":"fixed","value":"yes"}]}))
        .await;
    p.put_action("http", "python:3", HTTP, export.clone()).await;
    p.put_action("hidden", "python:3", ECHO, json!({})).await;

    // .json: the __ow_* fields, query then body parameters, the action's parameters under them.
    let r = web(
        &p,
        Method::POST,
        "/guest/default/echo.json/some/path?q=1&name=query",
        Some(("application/json", br#"{"name":"body","n":2}"#.to_vec())),
        &[("X-Things", "Stuff")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("x-openwhisk-activation-id").is_some());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__ow_method"], "post");
    assert_eq!(v["__ow_path"], "/some/path");
    assert_eq!(v["__ow_headers"]["x-things"], "Stuff");
    assert_eq!(v["q"], "1");
    assert_eq!(v["name"], "body");
    assert_eq!(v["n"], 2);
    assert_eq!(v["fixed"], "yes");
    assert!(v.get("__ow_user").is_none());

    // A form body; credentials make __ow_user.
    let r = p
        .http
        .put(p.url("/api/v1/web/guest/default/echo.json"))
        .basic_auth(GUEST.0, Some(GUEST.1))
        .form(&[("a", "x y"), ("b", "2")])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!((v["a"].clone(), v["b"].clone()), (json!("x y"), json!("2")));
    assert_eq!(v["__ow_method"], "put");
    assert_eq!(v["__ow_user"], "guest");

    // Reserved and unknown: __ow_ fields cannot be given; not exported, missing, unknown
    // namespace are all 404.
    let (st, v) = web_json(&p, Method::GET, "/guest/default/echo.json?__ow_method=x").await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v["error"],
        "Request defines parameters that are not allowed (e.g., reserved properties)."
    );
    for path in [
        "/guest/default/hidden.json",
        "/guest/default/nothing.json",
        "/nobody/default/echo.json",
        "/guest/nopkg/echo.json",
    ] {
        let (st, v) = web_json(&p, Method::GET, path).await;
        assert_eq!(st, 404, "{path}: {v}");
        assert_eq!(v["error"], "The requested resource does not exist.");
    }

    // .http (the default): html text, binary from base64, JSON with status and headers, the
    // action's own 404, empty bodies, application errors unwrapped, developer errors.
    let r = web(&p, Method::GET, "/guest/default/http?name=Ada", None, &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.text().await.unwrap(), "<html>hi Ada</html>");
    let r = web(
        &p,
        Method::GET,
        "/guest/default/http.http?kind=png",
        None,
        &[],
    )
    .await;
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"\x89PNG\x00\x01");
    let r = web(&p, Method::GET, "/guest/default/http?kind=json", None, &[]).await;
    assert_eq!(r.status().as_u16(), 201);
    let custom: Vec<&str> = r
        .headers()
        .get_all("x-custom")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(custom, ["a", "b"]);
    assert_eq!(r.headers()["x-num"], "7");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));
    let r = web(
        &p,
        Method::GET,
        "/guest/default/http?kind=missing",
        None,
        &[],
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "nothing here");
    let r = p
        .http
        .get(p.url("/api/v1/web/guest/default/http?kind=empty"))
        .send()
        .await
        .unwrap();
    // reqwest follows redirects by default; the target does not exist on this server.
    assert_eq!(r.url().path(), "/elsewhere");
    let r = web(
        &p,
        Method::GET,
        "/guest/default/http?kind=apperror",
        None,
        &[],
    )
    .await;
    assert_eq!(r.status().as_u16(), 418);
    assert_eq!(r.text().await.unwrap(), "teapot");
    let (st, v) = web_json(&p, Method::GET, "/guest/default/http?kind=crash").await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("There was an error processing your request."))
    );
    let (st, v) = web_json(&p, Method::GET, "/guest/default/http?kind=bad").await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Response is not valid 'message/http'."))
    );

    // .text, .html, .svg projections.
    let r = web(
        &p,
        Method::GET,
        "/guest/default/http.text?kind=text",
        None,
        &[],
    )
    .await;
    assert_eq!(r.text().await.unwrap(), "plain words");
    let r = web(&p, Method::GET, "/guest/default/http.html", None, &[]).await;
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.text().await.unwrap(), "<html>hi you</html>");
    let r = web(
        &p,
        Method::GET,
        "/guest/default/http.svg?kind=svg",
        None,
        &[],
    )
    .await;
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let (st, v) = web_json(&p, Method::GET, "/guest/default/http.text?kind=other").await;
    assert_eq!(
        (st, v["error"].as_str()),
        (404, Some("Response does not include requested property."))
    );
    let (st, v) = web_json(&p, Method::GET, "/guest/default/http.html?kind=json").await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Response is not valid 'text/html'."))
    );

    // OPTIONS is answered with CORS headers without running the action.
    let r = web(
        &p,
        Method::OPTIONS,
        "/guest/default/echo.json",
        None,
        &[("Access-Control-Request-Headers", "x-mine")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["access-control-allow-headers"], "x-mine");
    assert!(r.headers().get("x-openwhisk-activation-id").is_none());

    // Actions in packages.
    let (st, _) = p
        .call(
            Method::PUT,
            "/packages/site",
            Some(json!({"parameters": [{"key":"from","value":"pkg"}]})),
        )
        .await;
    assert_eq!(st, 200);
    p.put_action("site/echo", "python:3", ECHO, export).await;
    let (st, v) = web_json(&p, Method::GET, "/guest/site/echo.json").await;
    assert_eq!((st, v["from"].clone()), (200, json!("pkg")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_action_options() {
    let p = Platform::start("").await;
    let ann = |extra: Value| {
        let mut a = vec![json!({"key": "web-export", "value": true})];
        if let Value::Array(more) = extra {
            a.extend(more);
        }
        json!({"annotations": a})
    };
    // raw-http: the query string and body arrive unparsed (binary bodies base64).
    p.put_action(
        "raw",
        "python:3",
        ECHO,
        ann(json!([{"key":"raw-http","value":true}])),
    )
    .await;
    let r = web(
        &p,
        Method::POST,
        "/guest/default/raw.json?a=1&b=2",
        Some(("text/plain", b"hello there".to_vec())),
        &[],
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__ow_query"], "a=1&b=2");
    assert_eq!(v["__ow_body"], "hello there");
    assert!(v.get("a").is_none());
    let r = web(
        &p,
        Method::POST,
        "/guest/default/raw.json",
        Some(("application/octet-stream", vec![0, 1, 2, 255])),
        &[],
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["__ow_body"],
        base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2, 255])
    );
    let r = web(
        &p,
        Method::POST,
        "/guest/default/raw.json",
        Some(("application/json", br#"{"x":1}"#.to_vec())),
        &[],
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["__ow_body"],
        base64::engine::general_purpose::STANDARD.encode(br#"{"x":1}"#)
    );

    // A non-JSON body of a normal web action arrives as __ow_body.
    p.put_action("plain", "python:3", ECHO, ann(json!([])))
        .await;
    let r = web(
        &p,
        Method::POST,
        "/guest/default/plain.json",
        Some(("text/plain", b"words".to_vec())),
        &[],
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__ow_body"], "words");

    // final: bound parameters cannot be overridden from the request.
    p.put_action(
        "locked",
        "python:3",
        ECHO,
        json!({"annotations": [{"key":"web-export","value":true},{"key":"final","value":true}],
               "parameters": [{"key":"secret","value":"s"}]}),
    )
    .await;
    let (st, _) = web_json(&p, Method::GET, "/guest/default/locked.json?secret=mine").await;
    assert_eq!(st, 400);
    let (st, v) = web_json(&p, Method::GET, "/guest/default/locked.json?other=1").await;
    assert_eq!((st, v["secret"].clone()), (200, json!("s")));

    // require-whisk-auth: a secret header, or the caller's credentials.
    p.put_action(
        "secret",
        "python:3",
        ECHO,
        ann(json!([{"key":"require-whisk-auth","value":"s3cret"}])),
    )
    .await;
    let (st, _) = web_json(&p, Method::GET, "/guest/default/secret.json").await;
    assert_eq!(st, 401);
    let r = web(
        &p,
        Method::GET,
        "/guest/default/secret.json",
        None,
        &[("X-Require-Whisk-Auth", "wrong")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 401);
    let r = web(
        &p,
        Method::GET,
        "/guest/default/secret.json",
        None,
        &[("X-Require-Whisk-Auth", "s3cret")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    p.put_action(
        "authed",
        "python:3",
        ECHO,
        ann(json!([{"key":"require-whisk-auth","value":true}])),
    )
    .await;
    let (st, _) = web_json(&p, Method::GET, "/guest/default/authed.json").await;
    assert_eq!(st, 401);
    let r = p
        .http
        .get(p.url("/api/v1/web/guest/default/authed.json"))
        .basic_auth(GUEST.0, Some(GUEST.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["__ow_user"], "guest");

    // web-custom-options: OPTIONS reaches the action, which answers its own headers.
    p.put_action(
        "opts",
        "python:3",
        "def main(args):\n    return {\"headers\": {\"Allow\": \"GET\"}, \"statusCode\": 200, \"body\": args[\"__ow_method\"]}\n",
        ann(json!([{"key":"web-custom-options","value":true}])),
    )
    .await;
    let r = web(&p, Method::OPTIONS, "/guest/default/opts", None, &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["allow"], "GET");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(r.text().await.unwrap(), "options");

    // A web-exported sequence.
    let (st, _) = p
        .call(
            Method::PUT,
            "/actions/chain",
            Some(
                json!({"exec": {"kind":"sequence","components":["plain","plain"]},
                        "annotations": [{"key":"web-export","value":true}]}),
            ),
        )
        .await;
    assert_eq!(st, 200);
    let (st, v) = web_json(&p, Method::GET, "/guest/default/chain.json?x=1").await;
    assert_eq!((st, v["x"].clone()), (200, json!("1")));
}
