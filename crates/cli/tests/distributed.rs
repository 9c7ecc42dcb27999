//! The distributed deployment end to end: 2 controllers (`whirl controller`) and 3 invokers
//! (`whirl invoker`) as separate processes on loopback, joined by a real nats-server with
//! JetStream (started by each test on its own port and store directory, so a test may stop and
//! restart it) and a real PostgreSQL (`WHIRL_TEST_POSTGRES_URL`, from `scripts/services`; each
//! test in its own schema).
//!
//! Covered: activations spread across invokers by the hashing rule and stay warm on their home
//! invoker; entity changes reach the other controller's cache; `kill -9` of an invoker under
//! steady load leaves every accepted activation with exactly one record and new activations
//! served by the others within 15 s, and the invoker rejoins when restarted; stopping and
//! restarting nats-server under load loses no accepted activation.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Platform, GUEST};
use serde_json::{json, Value};

/// One cluster at a time: each is seven processes plus containers on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn postgres_url() -> String {
    std::env::var("WHIRL_TEST_POSTGRES_URL").expect(
        "WHIRL_TEST_POSTGRES_URL is not set: run the tests through scripts/test, which starts PostgreSQL",
    )
}

fn kill(child: &Child, sig: i32) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    unsafe {
        kill(child.id() as i32, sig);
    }
}

fn wait_exit(child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A nats-server with JetStream on its own port and store directory.
struct Nats {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let mut n = Nats {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .unwrap();
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.join("js"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nats-server must be installed (scripts/services installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait (a clean stop: JetStream keeps its state on disk).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&c, 15);
            wait_exit(&mut c, Duration::from_secs(10));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `whirl invoker` process.
struct InvokerProc {
    child: Option<Child>,
    id: String,
    config: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
}

impl InvokerProc {
    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_whirl"))
            .arg("invoker")
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("WHIRL_LOG", "info,whirl=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start whirl invoker");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.log_text().contains("is ready: index") {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("invoker {} exited ({st}):\n{}", self.id, self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "invoker {} did not start:\n{}",
                self.id,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&c, 9);
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for InvokerProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&c, 15);
            wait_exit(&mut c, Duration::from_secs(15));
        }
    }
}

/// 2 controllers and 3 invokers over one nats-server and one PostgreSQL schema.
struct Cluster {
    controllers: Vec<Platform>,
    invokers: Vec<InvokerProc>,
    nats: Nats,
    schema: String,
    _tmp: tempfile::TempDir,
}

const INVOKERS: usize = 3;
const CONTROLLERS: usize = 2;

fn shared_sections(nats_port: u16, schema: &str) -> String {
    format!(
        r#"
[load_balancer]
type = "sharding"
invoker_offline_ms = 4000
test_action_interval_ms = 2000

[messaging]
type = "nats"
url = "nats://127.0.0.1:{nats_port}"
ack_wait_ms = 3000
request_timeout_ms = 2000

[store]
type = "postgres"
url = "{url}"
schema = "{schema}"
max_connections = 8
"#,
        url = postgres_url()
    )
}

impl Cluster {
    async fn start() -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let nats = Nats::start(tmp.path());
        let schema = format!("dist_{:016x}", rand_u64());
        let shared = shared_sections(nats.port, &schema);
        let mut controllers = Vec::new();
        for c in 0..CONTROLLERS {
            let cfg = format!(
                "{shared}\n[controller]\ncontroller_id = \"controller{c}\"\n\n[invoker]\nid = \"unused{c}\"\n"
            );
            controllers.push(Platform::start_as("controller", &cfg).await);
        }
        let mut invokers = Vec::new();
        for i in 0..INVOKERS {
            let config = tmp.path().join(format!("invoker{i}.toml"));
            std::fs::write(
                &config,
                format!(
                    "{shared}\n[invoker]\nid = \"invoker{i}\"\nuser_memory_mb = 1024\nprewarm = false\nidle_timeout_ms = 600000\npause_grace_ms = 600000\n"
                ),
            )
            .unwrap();
            let mut p = InvokerProc {
                child: None,
                id: format!("invoker{i}"),
                config,
                data_dir: tmp.path().join(format!("invoker{i}")),
                log: tmp.path().join(format!("invoker{i}.log")),
            };
            p.spawn().await;
            invokers.push(p);
        }
        let cluster = Cluster {
            controllers,
            invokers,
            nats,
            schema,
            _tmp: tmp,
        };
        cluster.wait_all_up(Duration::from_secs(60)).await;
        cluster
    }

    /// `GET /invokers` of controller `c`.
    async fn health(&self, c: usize) -> BTreeMap<String, String> {
        let r = self.controllers[c]
            .http
            .get(self.controllers[c].url("/invokers"))
            .send()
            .await;
        match r {
            Ok(r) => r
                .json::<BTreeMap<String, String>>()
                .await
                .unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        }
    }

    async fn wait_up(&self, invoker: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let mut all = true;
            for c in 0..CONTROLLERS {
                let h = self.health(c).await;
                all &= h.get(invoker).map(String::as_str) == Some("up");
            }
            if all {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{invoker} is not up on every controller: {:?} / {:?}\n{}",
                self.health(0).await,
                self.health(1).await,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_all_up(&self, within: Duration) {
        for i in 0..INVOKERS {
            self.wait_up(&format!("invoker{i}"), within).await;
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.controllers.iter().enumerate() {
            let t = c.log_text();
            let tail: Vec<&str> = t.lines().rev().take(40).collect();
            s += &format!("--- controller{i} (last lines)\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        for p in &self.invokers {
            let t = p.log_text();
            let tail: Vec<&str> = t.lines().rev().take(40).collect();
            s += &format!("--- {} (last lines)\n", p.id);
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop the processes first (fields drop after this), then the schema.
        self.invokers.clear();
        self.controllers.clear();
        let _ = Command::new("psql")
            .arg(postgres_url())
            .args([
                "-qc",
                &format!("drop schema if exists {} cascade", self.schema),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t ^ (u64::from(std::process::id()) << 32)
}

/// The invoker an action of guest's should have run on (the home invoker, while it has room).
fn home_of(action: &str) -> String {
    let hash = whirl_lb_sharding::schedule::home_hash("guest", &format!("guest/{action}"));
    format!("invoker{}", hash as usize % INVOKERS)
}

fn annotation<'a>(a: &'a Value, key: &str) -> Option<&'a Value> {
    common::annotation(a, key)
}

const ECHO: &str =
    "def main(args):\n    print('ran', args.get('i'))\n    return {'i': args.get('i'), 'v': 1}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activations_spread_by_hash_stay_warm_at_home_and_caches_follow_updates() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start().await;
    let (c0, c1) = (&cluster.controllers[0], &cluster.controllers[1]);
    let names: Vec<String> = (0..9).map(|i| format!("spread{i}")).collect();
    for n in &names {
        c0.put_action(n, "python:3", ECHO, json!({})).await;
    }
    let mut used = BTreeSet::new();
    for (i, n) in names.iter().enumerate() {
        // Alternate the controllers: both hash the same way.
        let c = &cluster.controllers[i % 2];
        let (st, first) = c.invoke(n, json!({"i": i})).await;
        assert_eq!(st, 200, "{n}: {first}\n{}", cluster.logs());
        let ran_on = annotation(&first, "invoker")
            .and_then(Value::as_str)
            .unwrap()
            .to_string();
        assert_eq!(ran_on, home_of(n), "{n} ran off its home invoker: {first}");
        assert!(
            annotation(&first, "initTime").is_some(),
            "first run is cold"
        );
        assert_eq!(annotation(&first, "loadBalancer"), Some(&json!("sharding")));
        assert_eq!(first["logs"].as_array().unwrap().len(), 1, "{first}");
        used.insert(ran_on.clone());
        // Again through the other controller: same home, now warm.
        let other = &cluster.controllers[(i + 1) % 2];
        let (st, second) = other.invoke(n, json!({"i": i})).await;
        assert_eq!(st, 200, "{second}");
        assert_eq!(
            annotation(&second, "invoker").and_then(Value::as_str),
            Some(ran_on.as_str()),
            "warm on its home"
        );
        assert!(annotation(&second, "initTime").is_none(), "warm: {second}");
        assert_eq!(second["response"]["result"], json!({"i": i, "v": 1}));
    }
    let expected: BTreeSet<String> = names.iter().map(|n| home_of(n)).collect();
    assert_eq!(used, expected);
    assert!(
        used.len() >= 2,
        "9 actions over 3 invokers use more than one: {used:?}"
    );

    // Both controllers cache the action; an update through one is what the other runs next.
    let (st, _) = c1.invoke("spread0", json!({})).await;
    assert_eq!(st, 200);
    c0.put_action(
        "spread0",
        "python:3",
        "def main(args):\n    return {'v': 2}\n",
        json!({}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, r) = c1.invoke("spread0", json!({})).await;
        assert_eq!(st, 200, "{r}");
        if r["response"]["result"]["v"] == json!(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "controller1 still runs the old code: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And a delete through one is seen by the other.
    let (st, _) = c0
        .call(reqwest::Method::DELETE, "/actions/spread0", None)
        .await;
    assert_eq!(st, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, _) = c1.invoke("spread0", json!({})).await;
        if st == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "controller1 still invokes the deleted action"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a load generator saw for one request.
#[derive(Debug, Clone)]
struct Sent {
    at: Duration,
    status: u16,
    id: Option<String>,
}

/// Invokes `names` from `clients` concurrent tasks through both controllers for `length`,
/// recording each response's status and activation id.
async fn steady_load(
    ports: Vec<u16>,
    names: Vec<String>,
    clients: usize,
    length: Duration,
) -> Vec<Sent> {
    let t0 = Instant::now();
    let out = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for k in 0..clients {
        let ports = ports.clone();
        let names = names.clone();
        let out = out.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut n = k;
            while t0.elapsed() < length {
                n += 1;
                let port = ports[n % ports.len()];
                let name = &names[n % names.len()];
                let at = t0.elapsed();
                let r = http
                    .post(format!(
                        "http://127.0.0.1:{port}/api/v1/namespaces/_/actions/{name}?blocking=true&timeout=10000"
                    ))
                    .basic_auth(GUEST.0, Some(GUEST.1))
                    .json(&json!({"i": n}))
                    .send()
                    .await;
                let sent = match r {
                    Ok(r) => Sent {
                        at,
                        status: r.status().as_u16(),
                        id: r
                            .headers()
                            .get("x-openwhisk-activation-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    },
                    Err(_) => Sent {
                        at,
                        status: 0,
                        id: None,
                    },
                };
                if sent.status != 200 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                out.lock().unwrap().push(sent);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = out.lock().unwrap().clone();
    v
}

/// How many responses had each status (0: no response).
fn histogram(sent: &[Sent]) -> BTreeMap<u16, usize> {
    sent.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.status).or_default() += 1;
        m
    })
}

/// Every accepted activation (a response that named an activation id) ends in exactly one
/// record, and the namespace holds no record that nobody was given.
async fn assert_each_accepted_has_one_record(cluster: &Cluster, sent: &[Sent], within: Duration) {
    let ids: BTreeSet<String> = sent.iter().filter_map(|s| s.id.clone()).collect();
    assert!(!ids.is_empty());
    let c = &cluster.controllers[0];
    let deadline = Instant::now() + within;
    let mut missing: Vec<String> = ids.iter().cloned().collect();
    while !missing.is_empty() {
        let mut still = Vec::new();
        for id in &missing {
            let (st, _) = c.get(&format!("/activations/{id}")).await;
            if st != 200 {
                still.push(id.clone());
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted activation(s) have no record, e.g. {:?}\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Records are unique by id in the store; count them to see no extra ones.
    let (st, count) = c.get("/activations?count=true").await;
    assert_eq!(st, 200, "{count}");
    assert_eq!(
        count["activations"].as_u64(),
        Some(ids.len() as u64),
        "exactly one record per accepted activation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_invoker_fails_over_loses_nothing_and_rejoins() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let names: Vec<String> = (0..6).map(|i| format!("load{i}")).collect();
    for n in &names {
        cluster.controllers[0]
            .put_action(n, "python:3", ECHO, json!({}))
            .await;
    }
    // The victim is the home of at least one action.
    let victim_id = home_of(&names[0]);
    let victim = cluster
        .invokers
        .iter()
        .position(|p| p.id == victim_id)
        .unwrap();
    let ports: Vec<u16> = cluster.controllers.iter().map(|c| c.port).collect();
    let load = tokio::spawn(steady_load(
        ports,
        names.clone(),
        4,
        Duration::from_secs(30),
    ));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let killed_at = Duration::from_secs(6);
    cluster.invokers[victim].kill9();
    let sent = load.await.unwrap();
    eprintln!(
        "kill -9 of {victim_id}: responses by status {:?}",
        histogram(&sent)
    );

    let before: Vec<&Sent> = sent.iter().filter(|s| s.at < killed_at).collect();
    assert!(
        before.iter().filter(|s| s.status == 200).count() > 10,
        "the load ran before the kill: {before:?}"
    );
    // Activations begun 15 s after the kill and later are served by the others.
    let late: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.at >= killed_at + Duration::from_secs(15))
        .collect();
    assert!(
        late.len() > 10,
        "load continued after the failover: {}",
        late.len()
    );
    let bad: Vec<&&Sent> = late.iter().filter(|s| s.status != 200).collect();
    assert!(
        bad.is_empty(),
        "requests 15 s after the kill failed: {bad:?}\n{}",
        cluster.logs()
    );
    assert_each_accepted_has_one_record(&cluster, &sent, Duration::from_secs(30)).await;

    // Restarted, it rejoins and serves its home actions again.
    cluster.invokers[victim].spawn().await;
    cluster.wait_up(&victim_id, Duration::from_secs(30)).await;
    let (st, r) = cluster.controllers[1].invoke(&names[0], json!({})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        annotation(&r, "invoker").and_then(Value::as_str),
        Some(victim_id.as_str()),
        "back at home: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_load_loses_no_accepted_activation() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start().await;
    let names: Vec<String> = (0..6).map(|i| format!("bus{i}")).collect();
    for n in &names {
        cluster.controllers[0]
            .put_action(n, "python:3", ECHO, json!({}))
            .await;
    }
    let ports: Vec<u16> = cluster.controllers.iter().map(|c| c.port).collect();
    let load = tokio::spawn(steady_load(
        ports,
        names.clone(),
        4,
        Duration::from_secs(25),
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.nats.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.nats.spawn();
    let sent = load.await.unwrap();
    let statuses = histogram(&sent);
    eprintln!("nats restart: responses by status {statuses:?}");
    // Without the bus nothing is accepted (503); afterwards work resumes.
    let after: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.at >= Duration::from_secs(20))
        .collect();
    assert!(
        after.iter().any(|s| s.status == 200),
        "the platform recovered without a restart: {statuses:?}\n{}",
        cluster.logs()
    );
    assert_each_accepted_has_one_record(&cluster, &sent, Duration::from_secs(60)).await;
    cluster.wait_all_up(Duration::from_secs(30)).await;
}
