//! A nats-server restart: stopped and started again the way `scripts/services` starts it (same
//! store directory, so JetStream state survives). Its own test binary, so no other test of this
//! crate runs while the server is down.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use whirl_messaging_nats::{NatsMessaging, NatsMessagingConfig};
use whirl_spi::{Delivery, Messaging, MessagingError};

fn nats_url() -> String {
    std::env::var("WHIRL_TEST_NATS_URL").unwrap_or_else(|_| {
        panic!(
            "WHIRL_TEST_NATS_URL is not set: these tests need a real nats-server with JetStream; \
             run `eval \"$(scripts/services)\"` first"
        )
    })
}

/// The nats-server that `scripts/services` started: its pid file, store dir, log and port.
struct Server {
    dir: PathBuf,
    port: u16,
}

impl Server {
    fn from_env(url: &str) -> Self {
        let dir = PathBuf::from(
            std::env::var("WHIRL_SERVICES_DIR").unwrap_or_else(|_| "/tmp/whirl-services".into()),
        );
        assert!(
            dir.join("nats.pid").exists(),
            "{} is missing: the restart test restarts the nats-server that scripts/services \
             started; run `eval \"$(scripts/services)\"` first",
            dir.join("nats.pid").display()
        );
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(4222);
        Self { dir, port }
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("nats.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn running(&self) -> bool {
        self.pid()
            .is_some_and(|p| PathBuf::from(format!("/proc/{p}")).exists())
    }

    fn answers(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// SIGTERM (a clean shutdown) and wait for the process to exit.
    fn stop(&self) {
        let pid = self.pid().expect("nats-server pid");
        let ok = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.running() || self.answers() {
            assert!(Instant::now() < deadline, "nats-server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts nats-server as scripts/services does, in its own session so it outlives the test
    /// (never waited for on purpose: it is the shared test server, left running).
    #[allow(clippy::zombie_processes)]
    fn start(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .unwrap();
        let child = Command::new("setsid")
            .args(["nats-server", "-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.dir.join("nats"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        std::fs::write(self.dir.join("nats.pid"), format!("{}\n", child.id())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.answers() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Leaves a running server behind even when the test fails half-way.
struct Restarter<'a>(&'a Server);

impl Drop for Restarter<'_> {
    fn drop(&mut self) {
        if !self.0.answers() {
            self.0.start();
        }
    }
}

async fn collect(c: &mut dyn whirl_spi::Consumer, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "got {} of {n} messages after the restart",
            out.len()
        );
        match c.peek(Duration::from_millis(500)).await {
            Ok(got) => out.extend(got),
            Err(MessagingError::Unavailable(_)) => {}
            Err(e) => panic!("peek: {e}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_a_server_restart_and_clients_recover() {
    let url = nats_url();
    let server = Server::from_env(&url);
    let _restarter = Restarter(&server);

    let mut cfg = NatsMessagingConfig::new(&url);
    cfg.prefix = format!(
        "trestart{}x{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    cfg.request_timeout_ms = 2_000;
    let m = NatsMessaging::connect(&cfg).await.unwrap();
    m.ensure_topic("t").await.unwrap();
    let mut c = m.consumer("t", "g", 2).await.unwrap();
    let p = m.producer();
    for i in 0..5 {
        p.send("t", Bytes::from(format!("before-{i}")))
            .await
            .unwrap();
    }
    let held = collect(c.as_mut(), 2).await;
    assert_eq!(held[0].payload, Bytes::from("before-0"));
    assert_eq!(held[1].payload, Bytes::from("before-1"));
    c.ack(held[0].id).await.unwrap();

    server.stop();

    // During the outage: bounded failures, not hangs.
    let t = Instant::now();
    let err = p.send("t", Bytes::from("lost")).await.unwrap_err();
    assert!(matches!(err, MessagingError::Unavailable(_)), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "send waited {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let err = c.peek(Duration::from_millis(500)).await.unwrap_err();
    assert!(matches!(err, MessagingError::Unavailable(_)), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "peek waited {:?}",
        t.elapsed()
    );
    assert!(!m.is_connected());

    server.start();

    // The same objects work again: the held message can be acknowledged, new sends succeed, and
    // the messages published before the restart are delivered, in order, first time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.ack(held[1].id).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "ack after restart: {e}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match p.send("t", Bytes::from("after")).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "send after restart: {e}"),
        }
    }
    let mut got = Vec::new();
    while got.len() < 4 {
        let d = collect(c.as_mut(), 1).await;
        for d in d {
            c.ack(d.id).await.unwrap();
            got.push(d);
        }
    }
    let payloads: Vec<Bytes> = got.iter().map(|d| d.payload.clone()).collect();
    assert_eq!(
        payloads,
        ["before-2", "before-3", "before-4", "after"].map(Bytes::from),
        "messages published before the restart are delivered after it, in order, then the new one"
    );
    assert!(got.iter().all(|d| !d.redelivered));
    let rest = c.peek(Duration::from_millis(300)).await.unwrap();
    assert!(
        rest.is_empty(),
        "acknowledged messages (one acked before, one after the restart) must not come back: {:?}",
        rest.iter().map(|d| d.payload.clone()).collect::<Vec<_>>()
    );
    // "lost" was refused before it was published (the client knew the connection was down), so it
    // never reached the stream: the group saw exactly the accepted messages, each once.
    m.delete_all_topics().await.unwrap();
}
