//! End-to-end tests of `whirl package` and `whirl namespace` with the real binary against a
//! running platform: create, update, get (summary), list, bind, delete, actions in packages and
//! bindings, the namespace's entities, and the error paths.

mod cli_support;
mod common;

use cli_support::User;
use common::Platform;
use serde_json::{json, Value};

const PY: &str = "def main(a):\n    return {'region': a.get('region'), 'who': a.get('who')}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_bindings_and_namespace_get() {
    let p = Platform::start("").await;
    let u = User::guest(&p);
    let f = u.file("a.py", PY);

    // Create with parameters, annotations and sharing.
    assert_eq!(
        u.ok(&[
            "package",
            "create",
            "tools",
            "-p",
            "region",
            "eu",
            "-a",
            "description",
            "handy actions",
            "--shared",
            "yes"
        ]),
        "ok: created package tools\n"
    );
    let pk = u.json(&["package", "get", "tools"]);
    assert_eq!(pk["publish"], true);
    assert_eq!(pk["parameters"], json!([{"key": "region", "value": "eu"}]));
    u.fails(
        &["package", "create", "tools"],
        153,
        "Unable to create package 'tools'",
    );

    // Actions in the package: package parameters apply.
    u.ok(&["action", "create", "tools/hello", &f]);
    let out = u.ok(&["action", "list", "tools"]);
    assert!(out.contains("/guest/tools/hello"), "{out}");
    let r: Value =
        serde_json::from_str(&u.ok(&["action", "invoke", "tools/hello", "-r", "-p", "who", "Ada"]))
            .unwrap();
    assert_eq!(r, json!({"region": "eu", "who": "Ada"}));

    // A binding with its own parameters.
    assert_eq!(
        u.ok(&["package", "bind", "tools", "us-tools", "-p", "region", "us"]),
        "ok: created binding us-tools to tools\n"
    );
    let s = u.ok(&["package", "get", "us-tools", "--summary"]);
    assert!(s.starts_with("package /guest/us-tools"), "{s}");
    assert!(s.contains("bound to /guest/tools"), "{s}");
    let r: Value =
        serde_json::from_str(&u.ok(&["action", "invoke", "us-tools/hello", "-r"])).unwrap();
    assert_eq!(r["region"], "us");
    let s = u.ok(&["package", "get", "tools", "--summary"]);
    assert!(
        s.contains("handy actions") && s.contains("parameters: region"),
        "{s}"
    );
    assert!(s.contains("action /guest/tools/hello"), "{s}");

    // Update; list.
    assert_eq!(
        u.ok(&["package", "update", "tools", "-p", "region", "fr"]),
        "ok: updated package tools\n"
    );
    assert_eq!(
        u.json(&["package", "get", "tools"])["parameters"][0]["value"],
        "fr"
    );
    let out = u.ok(&["package", "list", "--name-sort"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "packages");
    assert!(
        lines[1].starts_with("/guest/tools") && lines[1].ends_with("shared"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("/guest/us-tools") && lines[2].ends_with("binding to /guest/tools"),
        "{out}"
    );
    assert_eq!(u.json(&["package", "list"]).as_array().unwrap().len(), 2);

    // The namespace's entities.
    u.ok(&["action", "create", "top", &f]);
    let out = u.ok(&["namespace", "get"]);
    assert!(
        out.starts_with("Entities in namespace: default\npackages\n"),
        "{out}"
    );
    assert!(out.contains("/guest/tools"), "{out}");
    assert!(
        out.contains("actions\n/guest/top  private  python:3\ntriggers\nrules\n"),
        "{out}"
    );
    let all = u.json(&["namespace", "get"]);
    assert_eq!(all["packages"].as_array().unwrap().len(), 2);
    for k in ["actions", "triggers", "rules"] {
        assert!(all[k].is_array(), "{all}");
    }
    u.fails(&["namespace", "get", "someone-else"], 147, "HTTP 403");

    // Errors: missing package, binding to nothing, bad parameter JSON, names with packages.
    u.fails(
        &["package", "get", "nope"],
        148,
        "Unable to get package 'nope'",
    );
    u.fails(
        &["package", "bind", "nope", "b2"],
        144,
        "Unable to bind package 'b2'",
    );
    let bad = u.file("bad.json", "nope");
    u.fails(
        &["package", "update", "tools", "-P", &bad],
        2,
        "Invalid parameter JSON",
    );
    u.fails(&["package", "get", "a/b"], 2, "not a valid qualified name");

    // Delete: the binding, then the package once empty.
    assert_eq!(
        u.ok(&["package", "delete", "us-tools"]),
        "ok: deleted package us-tools\n"
    );
    u.ok(&["action", "delete", "tools/hello"]);
    assert_eq!(
        u.ok(&["package", "delete", "tools"]),
        "ok: deleted package tools\n"
    );
    u.fails(
        &["package", "delete", "tools"],
        148,
        "Unable to delete package 'tools'",
    );
    assert_eq!(u.ok(&["package", "list"]), "packages\n");
    assert_eq!(u.json(&["namespace", "get"])["packages"], json!([]));
}
