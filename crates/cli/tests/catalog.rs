//! End-to-end tests of the system catalog against the real `whirl standalone`: the public
//! `whisk.system/utils` package is there from the first start, its actions do what OpenWhisk's
//! do, other namespaces invoke them by full name, through bindings and in sequences, and a
//! restart neither duplicates nor overwrites them.

mod common;

use common::Platform;
use reqwest::Method;
use serde_json::{json, Value};

async fn utils(p: &Platform, action: &str, params: Value) -> Value {
    let url = p.url(&format!(
        "/api/v1/namespaces/whisk.system/actions/utils/{action}?blocking=true&result=true"
    ));
    let (st, v) = p.call(Method::POST, &url, Some(params)).await;
    assert_eq!(st, 200, "{action}: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utils_catalog_is_installed_and_shared() {
    let mut p = Platform::start("").await;

    // Visible to guest as a shared package.
    let (st, list) = p
        .call(
            Method::GET,
            &p.url("/api/v1/namespaces/whisk.system/packages"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "utils"),
        "{list}"
    );
    let (st, pkg) = p
        .call(
            Method::GET,
            &p.url("/api/v1/namespaces/whisk.system/packages/utils"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{pkg}");
    assert_eq!(pkg["publish"], true);
    let mut names: Vec<&str> = pkg["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "cat",
            "date",
            "echo",
            "head",
            "hosturl",
            "namespace",
            "smash",
            "sort",
            "split"
        ]
    );

    // The actions.
    assert_eq!(
        utils(&p, "echo", json!({"payload": "hi"})).await,
        json!({"payload": "hi"})
    );
    assert_eq!(
        utils(&p, "cat", json!({"lines": ["a", "b"]})).await,
        json!({"lines": ["a", "b"], "payload": "a\nb"})
    );
    assert_eq!(
        utils(&p, "sort", json!({"lines": ["b", "c", "a"]})).await,
        json!({"lines": ["a", "b", "c"], "length": 3})
    );
    assert_eq!(
        utils(&p, "head", json!({"lines": [4, 2, 3], "num": 2})).await,
        json!({"lines": [4, 2], "num": 2})
    );
    assert_eq!(
        utils(
            &p,
            "split",
            json!({"payload": "one,two,three", "separator": ","})
        )
        .await,
        json!({"lines": ["one", "two", "three"], "payload": "one,two,three"})
    );
    assert_eq!(
        utils(
            &p,
            "smash",
            json!({"a": 1, "b": {"c": 2}, "$fieldName": "p"})
        )
        .await,
        json!({"p": {"a": 1, "b": {"c": 2}}})
    );
    assert!(utils(&p, "date", json!({})).await["date"].is_string());
    assert_eq!(
        utils(&p, "namespace", json!({})).await,
        json!({"namespace": "guest"})
    );
    let url = utils(&p, "hosturl", json!({"web": true, "path": "utils/echo"})).await;
    assert!(
        url["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/web/guest/utils/echo.json"),
        "{url}"
    );

    // A sequence of catalog actions, and a binding with its own parameters.
    let (st, v) = p
        .call(
            Method::PUT,
            "/actions/lines",
            Some(json!({"exec": {"kind": "sequence", "components": [
                "/whisk.system/utils/split", "/whisk.system/utils/sort", "/whisk.system/utils/cat"]}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/lines?blocking=true&result=true",
            Some(json!({"payload": "c\nb\na"})),
        )
        .await;
    assert_eq!((st, res["payload"].clone()), (200, json!("a\nb\nc")));
    let (st, _) = p
        .call(
            Method::PUT,
            "/packages/myutils",
            Some(
                json!({"binding": {"namespace": "whisk.system", "name": "utils"},
                        "parameters": [{"key": "separator", "value": ";"}]}),
            ),
        )
        .await;
    assert_eq!(st, 200);
    let (st, res) = p
        .call(
            Method::POST,
            "/actions/myutils/split?blocking=true&result=true",
            Some(json!({"payload": "x;y"})),
        )
        .await;
    assert_eq!((st, res["lines"].clone()), (200, json!(["x", "y"])));

    // Guest cannot change the catalog.
    let (st, _) = p
        .call(
            Method::DELETE,
            &p.url("/api/v1/namespaces/whisk.system/actions/utils/echo"),
            None,
        )
        .await;
    assert_eq!(st, 403);

    // A restart keeps what is there.
    let (_, before) = p
        .call(
            Method::GET,
            &p.url("/api/v1/namespaces/whisk.system/actions/utils/echo"),
            None,
        )
        .await;
    p.stop().await;
    p.spawn().await;
    let (_, after) = p
        .call(
            Method::GET,
            &p.url("/api/v1/namespaces/whisk.system/actions/utils/echo"),
            None,
        )
        .await;
    assert_eq!(before["updated"], after["updated"]);
    let (_, pkg) = p
        .call(
            Method::GET,
            &p.url("/api/v1/namespaces/whisk.system/packages/utils"),
            None,
        )
        .await;
    assert_eq!(pkg["actions"].as_array().unwrap().len(), 9);
}
