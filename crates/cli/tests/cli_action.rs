//! End-to-end tests of `whirl action` with the real binary against a running platform: create
//! (kind from the file, zip, native, sequence, docker, web, limits, parameters, annotations),
//! update, get (summary, field, url, save), list, delete, invoke (non-blocking, blocking, result,
//! failure), and the error paths (missing entity, conflicts, invalid parameter JSON).

mod cli_support;
mod common;

use base64::Engine;
use cli_support::User;
use common::{zip_b64, Platform};
use serde_json::{json, Value};

const PY: &str = r#"
def main(args):
    name = args.get("name", "stranger")
    print("greeting", name)
    return {"greeting": "Hello " + name, "n": args.get("n")}
"#;

const JS: &str = r#"
function main(p) { console.log("js", p.who); return { hi: p.who || "nobody" }; }
"#;

fn kv<'a>(arr: &'a Value, key: &str) -> Option<&'a Value> {
    arr.as_array()?
        .iter()
        .find(|e| e["key"] == key)
        .map(|e| &e["value"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_get_list_delete() {
    let p = Platform::start("").await;
    let u = User::guest(&p);
    let py = u.file("src.py", PY);
    let js = u.file("hi.js", JS);

    // Kind from the extension.
    assert_eq!(
        u.ok(&["action", "create", "hello", &py]),
        "ok: created action hello\n"
    );
    let a = u.json(&["action", "get", "hello"]);
    assert_eq!(a["exec"]["kind"], "python:3");
    assert_eq!(a["exec"]["code"], PY);
    let a = u.json(&[
        "action", "create", "hi", &js, "-t", "5000", "-m", "128", "-l", "1", "-c", "1",
    ]);
    assert_eq!(a["exec"]["kind"], "nodejs:20");
    assert_eq!(
        a["limits"],
        json!({"timeout": 5000, "memory": 128, "logs": 1, "concurrency": 1})
    );

    // Creating twice is a conflict: 409 - 256.
    let r = u.fails(
        &["action", "create", "hello", &py],
        153,
        "Unable to create action 'hello'",
    );
    assert!(r.stderr.contains("HTTP 409"), "{r:?}");

    // Update changes only what it is given; parameters and annotations from flags and files.
    let pfile = u.file("params.json", r#"{"name": "file", "n": 1}"#);
    let afile = u.file("annots.json", r#"{"description": "says hello"}"#);
    assert_eq!(
        u.ok(&[
            "action", "update", "hello", "-P", &pfile, "-p", "n", "2", "-A", &afile, "-a", "team",
            "core"
        ]),
        "ok: updated action hello\n"
    );
    let a = u.json(&["action", "get", "hello"]);
    assert_eq!(a["exec"]["code"], PY, "code kept");
    assert_eq!(
        a["parameters"],
        json!([{"key": "n", "value": 2}, {"key": "name", "value": "file"}])
    );
    assert_eq!(kv(&a["annotations"], "description").unwrap(), "says hello");
    assert_eq!(kv(&a["annotations"], "team").unwrap(), "core");
    assert_eq!(a["version"], "0.0.2");

    // Readable get: ok line then JSON; summary; one field.
    let out = u.ok(&["action", "get", "hello"]);
    assert!(out.starts_with("ok: got action hello\n{"), "{out}");
    let s = u.ok(&["action", "get", "hello", "--summary"]);
    assert!(
        s.starts_with("action /guest/hello  (python:3, version 0.0.2)"),
        "{s}"
    );
    assert!(s.contains("says hello"), "{s}");
    assert!(s.contains("parameters: n, name"), "{s}");
    assert!(s.contains("limits: timeout 60000 ms, memory 256 MB"), "{s}");
    assert_eq!(u.ok(&["action", "get", "hello", "exec.kind"]), "python:3\n");
    assert_eq!(
        u.ok(&["action", "get", "/_/hello", "limits.memory"]),
        "256\n"
    );
    assert_eq!(u.ok(&["action", "get", "/guest/hello", "name"]), "hello\n");

    // --save writes the code next to you.
    let out = u.ok(&["action", "get", "hello", "--save"]);
    assert!(out.contains("hello.py"), "{out}");
    // ...but not over an existing file.
    u.fails(&["action", "get", "hello", "--save"], 2, "already exists");
    let saved = u.home.path().join("copy.py");
    u.ok(&[
        "action",
        "get",
        "hello",
        "--save-as",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), PY);

    // Web actions; the URL.
    u.ok(&["action", "update", "hi", "--web", "true"]);
    let a = u.json(&["action", "get", "hi"]);
    assert_eq!(kv(&a["annotations"], "web-export").unwrap(), true);
    assert_eq!(kv(&a["annotations"], "final").unwrap(), true);
    assert_eq!(a["limits"]["timeout"], 5000, "limits kept by the update");
    let url = u.ok(&["action", "get", "hi", "--url"]);
    assert!(
        url.contains(&format!(
            "http://127.0.0.1:{}/api/v1/web/guest/default/hi",
            p.port
        )),
        "{url}"
    );
    // The web URL printed works as is.
    let web = url.lines().last().unwrap().to_owned();
    let resp = p
        .http
        .get(format!("{web}.json?who=Web"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"hi": "Web"}));

    // Sequence and docker actions.
    u.ok(&["action", "create", "both", "--sequence", "hello,hi"]);
    let a = u.json(&["action", "get", "both"]);
    assert_eq!(a["exec"]["kind"], "sequence");
    assert_eq!(
        a["exec"]["components"],
        json!(["/guest/hello", "/guest/hi"])
    );
    // Sequences run: hello's result is hi's input.
    let r = u.run(&["action", "invoke", "both", "-r", "-p", "name", "Seq"]);
    assert_eq!((r.code, r.json()), (0, json!({"hi": "nobody"})), "{r:?}");
    u.ok(&["action", "create", "boxed", "--docker", "me/img:1"]);
    let a = u.json(&["action", "get", "boxed"]);
    assert_eq!(
        (a["exec"]["kind"].clone(), a["exec"]["image"].clone()),
        (json!("blackbox"), json!("me/img:1"))
    );

    // List: a table, sorted by name on request; --json the server's array.
    let out = u.ok(&["action", "list", "--name-sort"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "actions");
    assert!(lines[1].starts_with("/guest/both "), "{out}");
    assert!(lines[2].starts_with("/guest/boxed "), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("/guest/hello")
            && l.contains("private")
            && l.ends_with("python:3")),
        "{out}"
    );
    assert_eq!(u.json(&["action", "list"]).as_array().unwrap().len(), 4);
    assert_eq!(
        u.json(&["action", "list", "--limit", "1"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Delete; then it is missing (404 - 256).
    assert_eq!(
        u.ok(&["action", "delete", "boxed"]),
        "ok: deleted action boxed\n"
    );
    let r = u.fails(
        &["action", "get", "boxed"],
        148,
        "Unable to get action 'boxed'",
    );
    assert!(r.stderr.contains("HTTP 404"), "{r:?}");
    u.fails(
        &["action", "delete", "boxed"],
        148,
        "Unable to delete action 'boxed'",
    );
    u.fails(
        &["action", "update", "nope", "--memory", "64"],
        144,
        "Unable to update action 'nope'",
    );

    // Local errors: no code, a zip without --kind, an unknown extension, bad parameter files.
    u.fails(&["action", "create", "x"], 2, "needs code");
    let zip = u.file("app.zip", b"PK\x03\x04");
    u.fails(&["action", "create", "x", &zip], 2, "--kind");
    let txt = u.file("notes.txt", "hi");
    u.fails(&["action", "create", "x", &txt], 2, "--kind");
    u.fails(
        &["action", "create", "x", "/no/such/file.py"],
        2,
        "Cannot read",
    );
    let bad = u.file("bad.json", "{not json");
    u.fails(
        &["action", "create", "x", &py, "-P", &bad],
        2,
        "Invalid parameter JSON",
    );
    let arr = u.file("arr.json", "[1, 2]");
    u.fails(
        &["action", "update", "hello", "-A", &arr],
        2,
        "Invalid annotation JSON",
    );
    u.fails(
        &["action", "get", "a/b/c/d"],
        2,
        "not a valid qualified name",
    );
    // Nothing was created by the failures.
    assert_eq!(u.json(&["action", "list"]).as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_zip_native_and_failures() {
    let p = Platform::start("").await;
    let u = User::guest(&p);
    let py = u.file("hello.py", PY);
    u.ok(&["action", "create", "hello", &py, "-p", "name", "default"]);

    // Non-blocking: the id; the activation appears.
    let out = u.ok(&["action", "invoke", "hello"]);
    let id = out
        .strip_prefix("ok: invoked /_/hello with id ")
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_string();
    assert_eq!(id.len(), 32, "{out}");
    let v = u.json(&["action", "invoke", "hello"]);
    assert_eq!(v["activationId"].as_str().unwrap().len(), 32);
    p.wait_activation(&id).await;

    // Blocking: the ok line and the whole activation; --json only the activation.
    let out = u.ok(&["action", "invoke", "hello", "-b", "-p", "name", "Ada"]);
    assert!(out.starts_with("ok: invoked /_/hello with id "), "{out}");
    let body: Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    assert_eq!(body["response"]["result"]["greeting"], "Hello Ada");
    let act = u.json(&["action", "invoke", "hello", "--blocking"]);
    assert_eq!(act["response"]["result"]["greeting"], "Hello default");
    assert!(
        act["logs"].to_string().contains("greeting default"),
        "{act}"
    );

    // --result: just the result; values are JSON when they parse; -P files.
    let r = u.run(&[
        "action", "invoke", "hello", "-r", "-p", "n", "[1,2]", "-p", "name", "Bo",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json(), json!({"greeting": "Hello Bo", "n": [1, 2]}));
    let pf = u.file("p.json", r#"{"name": "File", "n": {"deep": true}}"#);
    let v = u.ok(&[
        "action",
        "invoke",
        "/guest/hello",
        "-r",
        "-P",
        &pf,
        "-p",
        "name",
        "Flag",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&v).unwrap(),
        json!({"greeting": "Hello Flag", "n": {"deep": true}})
    );

    // Invalid parameter JSON never reaches the server.
    let bad = u.file("bad.json", "{\"name\": ");
    u.fails(
        &["action", "invoke", "hello", "-P", &bad],
        2,
        "Invalid parameter JSON",
    );
    u.fails(
        &["action", "invoke", "hello", "-P", "/missing.json"],
        2,
        "Cannot read parameter file",
    );
    // A missing action.
    u.fails(
        &["action", "invoke", "nope", "-b"],
        148,
        "Unable to invoke action 'nope'",
    );

    // An application error: the activation is printed, then one error line, exit 502 - 256.
    let boom = u.file(
        "boom.py",
        "def main(a):\n    return {'error': 'it broke: ' + a.get('why', '?')}\n",
    );
    u.ok(&["action", "create", "boom", &boom]);
    let r = u.run(&["action", "invoke", "boom", "-b", "-p", "why", "testing"]);
    assert_eq!(r.code, 246, "{r:?}");
    assert!(r.stdout.contains("\"activationId\""), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let id = r.json_after_first_line()["activationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        r.stderr
            .trim_end()
            .ends_with(&format!("[activation {id}] (HTTP 502)")),
        "{r:?}"
    );
    assert!(
        r.stderr
            .starts_with("error: Action 'boom' failed (application error): it broke: testing"),
        "{r:?}"
    );
    let r = u.run(&["action", "invoke", "boom", "-r"]);
    assert_eq!(r.code, 246, "{r:?}");
    assert_eq!(r.json(), json!({"error": "it broke: ?"}));

    // Zips need --kind; native zips run with --native; --main picks the entry point.
    let zip_bytes = |b64: String| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    };
    let pyzip = u.file(
        "app.zip",
        zip_bytes(zip_b64(&[(
            "__main__.py",
            b"def hi(a):\n    return {'zipped': a.get('x', 0)}\n",
            0o644,
        )])),
    );
    u.fails(&["action", "create", "zipped", &pyzip], 2, "--kind");
    u.ok(&[
        "action", "create", "zipped", &pyzip, "--kind", "python:3", "--main", "hi",
    ]);
    let a = u.json(&["action", "get", "zipped"]);
    assert_eq!(a["exec"]["binary"], true);
    assert_eq!(a["exec"]["main"], "hi");
    assert_eq!(
        serde_json::from_str::<Value>(&u.ok(&["action", "invoke", "zipped", "-r", "-p", "x", "7"]))
            .unwrap(),
        json!({"zipped": 7})
    );
    let exec = b"#!/bin/sh\nwhile read line; do\n  echo '{\"native\": true}' >&3\ndone\n";
    let natzip = u.file("nat.zip", zip_bytes(zip_b64(&[("exec", exec, 0o755)])));
    u.ok(&["action", "create", "nat", &natzip, "--native"]);
    assert_eq!(u.json(&["action", "get", "nat"])["exec"]["kind"], "native");
    assert_eq!(
        serde_json::from_str::<Value>(&u.ok(&["action", "invoke", "nat", "-r"])).unwrap(),
        json!({"native": true})
    );
}
