//! Shared helpers of the relay tests: unique stream names, generated logs,
//! reading a whole JetStream stream back, a private nats-server.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use eventlog::{Durability, EventLog, LogConfig};
use futures_util::StreamExt;
use projections::testing::{HistoryConfig, HistoryGenerator};
use relay::message::{HEADER_MSG_ID, HEADER_POSITION};
use relay::{Relay, RelayConfig, RelayStatus};

/// The machine's NATS server (started by `.ci/run` when missing).
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// `RELAY_TEST_EVENTS` or `default`.
pub fn events_from_env(default: u64) -> u64 {
    std::env::var("RELAY_TEST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A name no other test (or run) uses: `<base>_<pid>_<nanos>_<n>`.
pub fn unique(base: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{base}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A relay configuration on its own stream and subject prefix.
pub fn config(url: &str, name: &str) -> RelayConfig {
    RelayConfig {
        enabled: true,
        url: url.to_owned(),
        stream: name.to_uppercase(),
        subject_prefix: format!("t{}", name.to_lowercase()),
        backoff_min_ms: 50,
        backoff_max_ms: 500,
        ack_timeout_ms: 2_000,
        ..RelayConfig::default()
    }
}

pub fn open_log(dir: &Path, durability: Durability) -> EventLog {
    EventLog::open(LogConfig::new(dir).durability(durability)).unwrap()
}

/// Realistic quote-to-order histories over `tenants` tenants.
pub fn generator(seed: u64, tenants: usize) -> HistoryGenerator {
    HistoryGenerator::new(HistoryConfig {
        seed,
        tenants,
        concurrent_journeys: 32,
        ..HistoryConfig::default()
    })
}

/// Appends at least `n` generated events; returns the log's head.
pub async fn append_async(log: &EventLog, generator: &mut HistoryGenerator, n: u64) -> u64 {
    for a in generator.take_events(n) {
        log.append(a.request()).await.unwrap();
    }
    log.next_position()
}

/// [`append_async`] outside a runtime.
pub fn append(log: &EventLog, generator: &mut HistoryGenerator, n: u64) -> u64 {
    for a in generator.take_events(n) {
        log.append_blocking(a.request()).unwrap();
    }
    log.next_position()
}

/// Waits until `check` holds on the relay's status.
pub async fn wait_status(
    relay: &Relay,
    timeout: Duration,
    what: &str,
    check: impl Fn(&RelayStatus) -> bool,
) -> RelayStatus {
    let started = Instant::now();
    loop {
        let status = relay.status();
        if check(&status) {
            return status;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out waiting for {what}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the relay's checkpoint reaches the log's head.
pub async fn caught_up(relay: &Relay, timeout: Duration) -> RelayStatus {
    wait_status(relay, timeout, "catch-up", |s| s.lag == 0).await
}

/// One message of a stream, as a downstream consumer sees it.
#[derive(Debug, Clone)]
pub struct Received {
    pub sequence: u64,
    pub subject: String,
    pub msg_id: String,
    pub position: u64,
    pub headers: BTreeMap<String, String>,
    pub body: serde_json::Value,
}

pub async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let client = async_nats::connect(url).await.unwrap();
    async_nats::jetstream::new(client)
}

/// Every message of `stream`, in stream order, read with an ephemeral pull
/// consumer.
pub async fn read_stream(js: &async_nats::jetstream::Context, stream: &str) -> Vec<Received> {
    let mut handle = js.get_stream(stream).await.unwrap();
    let total = handle.info().await.unwrap().state.messages;
    let consumer = handle
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            ..pull::Config::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while u64::try_from(out.len()).unwrap() < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("stream read stalled")
            .expect("stream ended")
            .unwrap();
        let info = message.info().unwrap();
        let sequence = info.stream_sequence;
        let headers: BTreeMap<String, String> = message
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.first().map(|v| v.as_str().to_owned()).unwrap_or_default(),
                )
            })
            .collect();
        out.push(Received {
            sequence,
            subject: message.subject.to_string(),
            msg_id: headers.get(HEADER_MSG_ID).cloned().unwrap_or_default(),
            position: headers
                .get(HEADER_POSITION)
                .and_then(|p| p.parse().ok())
                .unwrap_or(u64::MAX),
            headers,
            body: serde_json::from_slice(&message.payload).unwrap(),
        });
    }
    out
}

pub async fn delete_stream(url: &str, stream: &str) {
    let js = jetstream(url).await;
    let _ = js.delete_stream(stream).await;
}

/// Asserts every message's positions increase per subject, and returns the
/// number of distinct message ids.
pub fn assert_ordered_per_subject(messages: &[Received]) -> usize {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for m in messages {
        if let Some(previous) = last.insert(&m.subject, m.position) {
            assert!(
                previous < m.position,
                "subject {} went from position {previous} to {}",
                m.subject,
                m.position
            );
        }
    }
    let mut ids: Vec<&str> = messages.iter().map(|m| m.msg_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// The event ids of every position of the log, as strings.
pub fn log_ids(log: &EventLog) -> Vec<String> {
    log.iter_all(0)
        .map(|r| r.unwrap().event_id.to_string())
        .collect()
}

/// A nats-server of this test's own, on a free port, with its store in
/// `store`; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct PrivateNats {
    pub port: u16,
    store: std::path::PathBuf,
    child: Option<Child>,
}

pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

impl PrivateNats {
    pub fn start(store: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Self {
            port,
            store: store.to_path_buf(),
            child: None,
        };
        nats.restart();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port and store) and waits
    /// until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new(NATS_SERVER)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian package nats-server) must be installed");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}
