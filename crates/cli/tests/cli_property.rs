//! End-to-end tests of the client's plumbing with the real binary: `whirl property`, where host
//! and key come from (file, environment, flags), `--json`, and the error paths every command
//! shares (no host, bad credentials, unreachable host) — one `error:` line and wsk's exit codes.

mod cli_support;
mod common;

use cli_support::{dead_port, User};
use common::{Platform, GUEST};
use serde_json::json;

#[test]
fn property_set_get_unset_in_the_properties_file() {
    let u = User::bare();
    let auth = format!("{}:{}", GUEST.0, GUEST.1);
    let out = u.ok(&[
        "property",
        "set",
        "--apihost",
        "127.0.0.1:3233",
        "--auth",
        &auth,
        "--namespace",
        "guest",
    ]);
    assert!(
        out.contains("ok: API host set to http://127.0.0.1:3233"),
        "{out}"
    );
    assert!(out.contains("ok: authorization key set"), "{out}");
    assert!(out.contains("ok: namespace set to guest"), "{out}");
    let text = std::fs::read_to_string(&u.props).unwrap();
    assert_eq!(
        text,
        format!("APIHOST=http://127.0.0.1:3233\nAUTH={auth}\nNAMESPACE=guest\n")
    );

    // Labelled lines by default, values with -o raw, an object with --json.
    let all = u.ok(&["property", "get"]);
    assert!(all.contains("whisk API host"), "{all}");
    assert!(all.contains("http://127.0.0.1:3233"), "{all}");
    assert!(all.contains(&auth), "{all}");
    assert!(all.contains("whisk CLI version"), "{all}");
    assert_eq!(
        u.ok(&["property", "get", "--auth", "-o", "raw"]),
        format!("{auth}\n")
    );
    assert_eq!(
        u.json(&["property", "get", "--apihost", "--namespace"]),
        json!({"api_host": "http://127.0.0.1:3233", "namespace": "guest"})
    );

    // Unset keeps the other lines; other keys in the file survive a set.
    std::fs::write(
        &u.props,
        format!(
            "# my notes\nAPIHOST=http://127.0.0.1:3233\nAUTH={auth}\nNAMESPACE=guest\nCERT=keep\n"
        ),
    )
    .unwrap();
    let out = u.ok(&["property", "unset", "--namespace", "--auth"]);
    assert!(out.contains("ok: namespace unset"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&u.props).unwrap(),
        "# my notes\nAPIHOST=http://127.0.0.1:3233\nCERT=keep\n"
    );
    assert_eq!(
        u.ok(&["property", "get", "--namespace", "-o", "raw"]),
        "_\n"
    );

    // Without WSK_CONFIG_FILE the file is ~/.wskprops.
    let st = u
        .command(&["property", "set", "--apihost", "http://10.1.2.3:9"])
        .env_remove("WSK_CONFIG_FILE")
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    assert_eq!(
        std::fs::read_to_string(u.home.path().join(".wskprops")).unwrap(),
        "APIHOST=http://10.1.2.3:9\n"
    );

    // Usage errors: exit 2, one line.
    u.fails(&["property", "set"], 2, "Nothing to set");
    u.fails(&["property", "set", "--auth", "nocolon"], 2, "UUID:KEY");
    u.fails(&["property", "set", "--apihost", "https://x"], 2, "https");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_key_from_file_environment_and_flags_and_the_shared_error_paths() {
    let p = Platform::start("").await;
    let host = format!("http://127.0.0.1:{}", p.port);
    let auth = format!("{}:{}", GUEST.0, GUEST.1);

    // From the properties file.
    let u = User::guest(&p);
    assert_eq!(u.ok(&["namespace", "list"]), "namespaces\nguest\n");
    assert_eq!(u.json(&["namespace", "list"]), json!(["guest"]));
    // The server's build shows in property get.
    let build = u.ok(&["property", "get", "--apibuild", "-o", "raw"]);
    assert!(build.starts_with("whirl-"), "{build}");

    // What the platform offers; no key needed.
    let out = u.ok(&["info"]);
    let words: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for want in [
        format!("API host {host}"),
        "kinds: python python:3 (default)".to_owned(),
        "memory 128–512 MB".to_owned(),
    ] {
        assert!(words.contains(&want), "{want}: {out}");
    }
    let v = User::bare().json(&["info", "--apihost", &host]);
    assert_eq!(v["api"]["api_version"], "1.0.0");
    assert!(v["platform"]["runtimes"]["nodejs"].is_array(), "{v}");
    User::bare().fails(&["info"], 2, "No API host");

    // From the environment, overriding the file; flags override both.
    let mut e = User::bare();
    std::fs::write(
        &e.props,
        format!("APIHOST=http://127.0.0.1:{}\nAUTH=bad:key\n", dead_port()),
    )
    .unwrap();
    e.env.push(("WHISK_APIHOST".into(), host.clone()));
    e.env.push(("WHISK_AUTH".into(), auth.clone()));
    assert_eq!(e.ok(&["namespace", "list"]), "namespaces\nguest\n");
    e.fails(
        &[
            "namespace",
            "list",
            "-u",
            "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:wrong",
        ],
        145,
        "HTTP 401",
    );
    let dead = format!("http://127.0.0.1:{}", dead_port());
    e.fails(
        &["namespace", "list", "--apihost", &dead],
        3,
        "cannot reach",
    );
    // -v shows the requests on stderr.
    let r = e.run(&["namespace", "list", "-v"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("> GET {host}/api/v1/namespaces")),
        "{r:?}"
    );
    assert!(r.stderr.contains("< 200"), "{r:?}");
    // Global flags go before or after the subcommand; -i is accepted.
    assert_eq!(
        e.ok(&["namespace", "--apihost", &host, "-i", "list"]),
        "namespaces\nguest\n"
    );

    // Bad credentials: the server's message, exit 145 (401 - 256 as wsk does).
    let b = User::bare();
    std::fs::write(&b.props, format!("APIHOST={host}\nAUTH={}:nope\n", GUEST.0)).unwrap();
    let r = b.fails(&["action", "list"], 145, "Unable to list actions");
    assert!(r.stderr.contains("HTTP 401"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");

    // Unreachable host: exit 3, says which host.
    let d = User::bare();
    std::fs::write(&d.props, format!("APIHOST={dead}\nAUTH={auth}\n")).unwrap();
    let r = d.fails(&["action", "list"], 3, &dead);
    assert!(r.stderr.contains("cannot reach"), "{r:?}");

    // Nothing configured: says how to configure.
    let n = User::bare();
    n.fails(&["action", "list"], 2, "whirl property set --apihost");
    std::fs::write(&n.props, format!("APIHOST={host}\n")).unwrap();
    n.fails(&["action", "list"], 2, "whirl property set --auth");
}

#[test]
fn completions_and_help() {
    let u = User::bare();
    for shell in ["bash", "zsh", "fish"] {
        let out = u.ok(&["completions", shell]);
        assert!(out.contains("whirl"), "{shell}: {out}");
        assert!(out.contains("activation"), "{shell}");
    }
    // Every client subcommand's help has examples.
    let groups: &[(&str, &[&str])] = &[
        (
            "action",
            &["create", "update", "get", "list", "delete", "invoke"],
        ),
        ("activation", &["list", "get", "logs", "result", "poll"]),
        (
            "package",
            &["create", "update", "get", "list", "delete", "bind"],
        ),
        (
            "trigger",
            &["create", "update", "get", "list", "delete", "fire"],
        ),
        (
            "rule",
            &[
                "create", "update", "get", "list", "delete", "enable", "disable",
            ],
        ),
        ("namespace", &["list", "get"]),
        ("property", &["set", "get", "unset"]),
    ];
    assert!(u.ok(&["info", "--help"]).contains("whirl info --json"));
    for (group, subs) in groups {
        let h = u.ok(&[group, "--help"]);
        assert!(h.contains("Examples:"), "{group}: {h}");
        for s in *subs {
            let h = u.ok(&[group, s, "--help"]);
            assert!(h.contains("Examples:"), "{group} {s}: {h}");
            assert!(
                h.contains(&format!("whirl {group} {s}")),
                "{group} {s}: {h}"
            );
        }
    }
    // A reader that stops early (`| head`) ends the command quietly.
    let mut child = u
        .command(&["completions", "zsh"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first, "#compdef whirl\n");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Usage errors from clap exit 2 too.
    let r = u.run(&["action", "create"]);
    assert_eq!(r.code, 2, "{r:?}");
}
