//! End-to-end tests of packages and package bindings against the real `whirl standalone`:
//! CRUD, actions in packages, parameter precedence (package < binding < action < invoke),
//! sharing across namespaces, and OpenWhisk's error cases.

mod common;

use common::{annotation, Platform, GUEST};
use reqwest::Method;
use serde_json::{json, Value};

const SYSTEM: (&str, &str) = (
    "789c46b1-71f6-4ed5-8c54-816aa4f8c502",
    "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
);

const ECHO: &str = "def main(args):\n    return args\n";

fn sys_url(p: &Platform, path: &str) -> String {
    p.url(&format!("/api/v1/namespaces/whisk.system{path}"))
}

async fn put(p: &Platform, path: &str, body: Value) -> (u16, Value) {
    p.call(Method::PUT, path, Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_actions_and_parameter_precedence() {
    let p = Platform::start("").await;

    // Create a package with parameters; a second PUT without overwrite is a conflict.
    let (st, pkg) = put(
        &p,
        "/packages/tools",
        json!({"parameters": [{"key":"a","value":"pkg"},{"key":"b","value":"pkg"},{"key":"c","value":"pkg"}]}),
    )
    .await;
    assert_eq!(st, 200, "{pkg}");
    assert_eq!(pkg["name"], "tools");
    assert_eq!(pkg["namespace"], "guest");
    assert_eq!(pkg["binding"], json!({}));
    assert_eq!(pkg["version"], "0.0.1");
    let (st, _) = put(&p, "/packages/tools", json!({})).await;
    assert_eq!(st, 409);
    let (st, v) = put(&p, "/packages/default", json!({})).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Package name 'default' is reserved."))
    );

    // An action in a missing package is 404; in the package it is created.
    let (st, _) = put(
        &p,
        "/actions/nopkg/echo",
        json!({"exec": {"kind": "python:3", "code": ECHO}}),
    )
    .await;
    assert_eq!(st, 404);
    let (st, a) = put(
        &p,
        "/actions/tools/echo",
        json!({"exec": {"kind": "python:3", "code": ECHO},
               "parameters": [{"key":"c","value":"action"},{"key":"d","value":"action"}]}),
    )
    .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["namespace"], "guest/tools");

    // Invoke: action parameters over package parameters, the body over both.
    let (st, act) = p
        .invoke("tools/echo", json!({"d": "invoke", "e": "invoke"}))
        .await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(
        act["response"]["result"],
        json!({"a":"pkg","b":"pkg","c":"action","d":"invoke","e":"invoke"})
    );
    assert_eq!(annotation(&act, "path").unwrap(), "guest/tools/echo");

    // GET of the packaged action shows the merged parameters; the package lists its action.
    let (st, got) = p.get("/actions/tools/echo").await;
    assert_eq!(st, 200);
    let params: Vec<(String, Value)> = got["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv["key"].as_str().unwrap().to_owned(), kv["value"].clone()))
        .collect();
    assert!(params.contains(&("a".into(), json!("pkg"))), "{params:?}");
    assert!(
        params.contains(&("c".into(), json!("action"))),
        "{params:?}"
    );
    let (st, pkg) = p.get("/packages/tools").await;
    assert_eq!(st, 200);
    assert_eq!(pkg["actions"][0]["name"], "echo");
    assert_eq!(pkg["feeds"], json!([]));
    let (st, list) = p.get("/actions/tools/").await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "echo");
    // The namespace's action list shows only the default package.
    let (_, list) = p.get("/actions").await;
    assert!(list.as_array().unwrap().is_empty(), "{list}");

    // A binding: its parameters on top of the package's, under the action's.
    let (st, b) = put(
        &p,
        "/packages/mytools",
        json!({"binding": {"namespace": "_", "name": "tools"},
               "parameters": [{"key":"b","value":"binding"},{"key":"c","value":"binding"}]}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["binding"], json!({"namespace":"guest","name":"tools"}));
    assert_eq!(
        annotation(&b, "binding").unwrap(),
        &json!({"namespace":"guest","name":"tools"})
    );
    let (st, act) = p.invoke("mytools/echo", json!({})).await;
    assert_eq!(st, 200, "{act}");
    assert_eq!(
        act["response"]["result"],
        json!({"a":"pkg","b":"binding","c":"action","d":"action"})
    );
    assert_eq!(annotation(&act, "binding").unwrap(), "guest/mytools");
    assert_eq!(annotation(&act, "path").unwrap(), "guest/tools/echo");
    let (st, got) = p.get("/packages/mytools").await;
    assert_eq!(st, 200);
    assert_eq!(got["actions"][0]["name"], "echo");
    let (_, list) = p.get("/actions/mytools/").await;
    assert_eq!(list[0]["name"], "echo");

    // Updating the package's parameters reaches invokes at once (the cache is refreshed).
    let (st, upd) = put(
        &p,
        "/packages/tools?overwrite=true",
        json!({"parameters": [{"key":"a","value":"pkg2"}]}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(upd["version"], "0.0.2");
    let (_, res) = p
        .call(
            Method::POST,
            "/actions/mytools/echo?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        res,
        json!({"a":"pkg2","b":"binding","c":"action","d":"action"})
    );

    // Bindings: not to a missing package, not to a binding, a package cannot become one, and
    // actions cannot be written through one.
    let (st, v) = put(
        &p,
        "/packages/b2",
        json!({"binding": {"namespace":"_","name":"none"}}),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (
            400,
            Some("Binding references a package that does not exist.")
        )
    );
    let (st, v) = put(
        &p,
        "/packages/b3",
        json!({"binding": {"namespace":"guest","name":"mytools"}}),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Cannot bind to another package binding."))
    );
    let (st, v) = put(
        &p,
        "/packages/tools?overwrite=true",
        json!({"binding": {"namespace":"guest","name":"mytools"}}),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = put(
        &p,
        "/actions/mytools/x",
        json!({"exec": {"kind": "python:3", "code": ECHO}}),
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("Operation not permitted on package binding."))
    );

    // Listing and counting packages.
    let (st, list) = p.get("/packages").await;
    assert_eq!(st, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    let tools = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tools")
        .unwrap();
    assert_eq!(tools["binding"], false);
    let (_, n) = p.get("/packages?count=true").await;
    assert_eq!(n, json!({"packages": 2}));
    let (_, one) = p.get("/packages?limit=1&skip=1").await;
    assert_eq!(one.as_array().unwrap().len(), 1);

    // Deleting: a non-empty package is a conflict unless forced; bindings go at once.
    let (st, v) = p.call(Method::DELETE, "/packages/tools", None).await;
    assert_eq!(st, 409);
    assert_eq!(
        v["error"],
        "Package not empty (contains 1 entity). Set force param or delete package contents."
    );
    let (st, _) = p.call(Method::DELETE, "/packages/mytools", None).await;
    assert_eq!(st, 200);
    let (st, _) = p
        .call(Method::DELETE, "/packages/tools?force=true", None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = p.get("/actions/tools/echo").await;
    assert_eq!(st, 404);
    let (st, _) = p.get("/packages/tools").await;
    assert_eq!(st, 404);
    let (st, _) = p.invoke("tools/echo", json!({})).await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_packages_across_namespaces() {
    let p = Platform::start("").await;
    let sys = |m: Method, path: &str, body: Option<Value>| {
        let url = sys_url(&p, path);
        let p = &p;
        async move { p.call_as(SYSTEM, m, &url, body).await }
    };

    // whisk.system publishes one package and keeps one private.
    let (st, _) = sys(
        Method::PUT,
        "/packages/pub",
        Some(json!({"publish": true, "parameters": [{"key":"from","value":"pub"}]})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = sys(Method::PUT, "/packages/priv", Some(json!({}))).await;
    assert_eq!(st, 200);
    for pkg in ["pub", "priv"] {
        let (st, v) = sys(
            Method::PUT,
            &format!("/actions/{pkg}/echo"),
            Some(json!({"exec": {"kind": "python:3", "code": ECHO}})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
    }

    // Guest sees and invokes the published package by its full name...
    let (st, list) = p.call(Method::GET, &sys_url(&p, "/packages"), None).await;
    assert_eq!(st, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Published packages only (the system catalog's utils is one of them).
    let mut names = names;
    names.sort_unstable();
    assert_eq!(names, ["pub", "utils"]);
    let (st, got) = p
        .call(Method::GET, &sys_url(&p, "/packages/pub"), None)
        .await;
    assert_eq!(st, 200, "{got}");
    assert_eq!(got["actions"][0]["name"], "echo");
    let (st, res) = p
        .call(
            Method::POST,
            &sys_url(&p, "/actions/pub/echo?blocking=true&result=true"),
            Some(json!({"x": 1})),
        )
        .await;
    assert_eq!(st, 200, "{res}");
    assert_eq!(res, json!({"from": "pub", "x": 1}));
    let (st, act) = p
        .call(
            Method::POST,
            &sys_url(&p, "/actions/pub/echo?blocking=true"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200);
    // The record is the invoker's (guest's), showing the action's path.
    assert_eq!(act["namespace"], "guest");
    assert_eq!(annotation(&act, "path").unwrap(), "whisk.system/pub/echo");
    p.wait_activation(act["activationId"].as_str().unwrap())
        .await;

    // ...but not the private one, nor another namespace's default package, nor writes.
    for path in [
        "/packages/priv",
        "/actions/priv/echo",
        "/actions/priv/",
        "/packages/missing",
    ] {
        let (st, v) = p.call(Method::GET, &sys_url(&p, path), None).await;
        assert_eq!(st, 403, "{path}: {v}");
    }
    let (st, _) = p
        .call(
            Method::POST,
            &sys_url(&p, "/actions/priv/echo?blocking=true"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = p
        .call(
            Method::PUT,
            &sys_url(&p, "/packages/pub?overwrite=true"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = p
        .call(Method::DELETE, &sys_url(&p, "/actions/pub/echo"), None)
        .await;
    assert_eq!(st, 403);

    // Guest binds to the public package (its parameters over the package's)...
    let (st, b) = put(
        &p,
        "/packages/mine",
        json!({"binding": {"namespace":"whisk.system","name":"pub"}, "parameters": [{"key":"from","value":"binding"}]}),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/mine/echo?blocking=true&result=true",
            Some(json!({})),
        )
        .await;
    assert_eq!((st, res), (200, json!({"from": "binding"})));
    // ...but not to the private one (403, as OpenWhisk answers).
    let (st, v) = put(
        &p,
        "/packages/bad",
        json!({"binding": {"namespace":"whisk.system","name":"priv"}}),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    let (st, _) = put(
        &p,
        "/packages/bad",
        json!({"binding": {"namespace":"whisk.system","name":"nothing"}}),
    )
    .await;
    assert_eq!(st, 403);

    // Unpublishing the package takes it away from the binding at once.
    let (st, _) = sys(
        Method::PUT,
        "/packages/pub?overwrite=true",
        Some(json!({"publish": false})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = p.invoke("mine/echo", json!({})).await;
    assert_eq!(st, 403);
    let (st, _) = p
        .call(
            Method::POST,
            &sys_url(&p, "/actions/pub/echo?blocking=true"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 403);

    // Guest's binding is guest's alone.
    let guest_url = p.url("/api/v1/namespaces/guest/packages/mine");
    let (st, _) = p.call_as(SYSTEM, Method::GET, &guest_url, None).await;
    assert_eq!(st, 403);
    let _ = GUEST;
}
