//! What the SIGKILL loops and the power-cut loop share: the writers' work
//! and what they report, the check of a reopened log, and a seeded RNG.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventlog::{
    AppendRequest, Durability, EventLog, ExpectedVersion, Idempotency, LogConfig, NewEvent,
};

/// An acknowledged event as the child reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The event's position.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its stream version.
    pub version: u64,
    /// Its payload, as text.
    pub payload: String,
}

/// The acknowledged event an `ACK` line reports, if the line is one.
pub fn parse_ack(line: &str) -> Option<Ack> {
    // "ACK <position> <stream> <version> <payload> END": END proves the
    // line was written whole before the kill.
    match line.split(' ').collect::<Vec<_>>().as_slice() {
        ["ACK", position, stream, version, payload, "END"] => Some(Ack {
            position: position.parse().ok()?,
            stream: (*stream).to_owned(),
            version: version.parse().ok()?,
            payload: (*payload).to_owned(),
        }),
        _ => None,
    }
}

/// The exit code of a child writer that ended by itself (only a kill may
/// end it).
pub const CHILD_DONE: i32 = 3;

/// A child writer whose standard output is collected on a thread.
#[derive(Debug)]
pub struct Watched {
    child: Child,
    lines: JoinHandle<Vec<String>>,
    opened: Receiver<()>,
}

impl Watched {
    /// Starts `command` with its standard output piped and collected.
    ///
    /// # Errors
    /// The error of spawning it.
    pub fn spawn(mut command: Command) -> std::io::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("the child has no stdout"))?;
        let (opened_tx, opened) = channel();
        let lines = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "OPENED" {
                    let _ = opened_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        Ok(Self {
            child,
            lines,
            opened,
        })
    }

    /// Waits up to `timeout` for the child to print `OPENED`.
    pub fn opened_within(&self, timeout: Duration) -> bool {
        self.opened.recv_timeout(timeout).is_ok()
    }

    /// SIGKILLs the child and returns how it ended and every line it
    /// printed.
    ///
    /// # Errors
    /// The error of killing or reaping it.
    pub fn kill(mut self) -> std::io::Result<(ExitStatus, Vec<String>)> {
        self.child.kill()?;
        let status = self.child.wait()?;
        Ok((status, self.lines.join().unwrap_or_default()))
    }
}

/// A tiny xorshift; the seed is printed so a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The seed in the environment variable `var`, else one from the clock.
pub fn seed(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| u64::from(d.subsec_nanos()) ^ d.as_secs())
                | 1
        })
}

/// The log configuration of the writers and of the checks: durable, and
/// the smallest journal file, so kills and cuts land in checkpoints and
/// journal turns too.
pub fn config(dir: &Path) -> LogConfig {
    let mut config = LogConfig::new(dir).durability(Durability::Durable);
    config.journal_file_bytes = 0;
    config.cache_capacity_bytes = 16 << 20;
    config
}

/// Runs `writers` concurrent [`append_forever`] writers on `log` until the
/// process is killed.
pub async fn run_writers(log: &EventLog, writers: u32, cycle: &str, padding: &str) {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            let cycle = cycle.to_owned();
            let padding = padding.to_owned();
            tokio::spawn(async move { append_forever(&log, w, &cycle, &padding).await })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// One writer's appends, until the process is killed: every fifth
/// append holds three events, every seventh is idempotent; each event's
/// payload is `c<cycle>w<w>i<i>k<k><padding>`; every acknowledged event
/// is printed as an `ACK` line.
pub async fn append_forever(log: &EventLog, w: u32, cycle: &str, padding: &str) {
    for i in 0u64.. {
        let stream = format!("writer-{w}");
        let count = if i % 5 == 0 { 3 } else { 1 };
        let payloads: Vec<String> = (0..count)
            .map(|k| format!("c{cycle}w{w}i{i}k{k}{padding}"))
            .collect();
        let events = payloads
            .iter()
            .map(|p| NewEvent::new("Cut", "t", "c", p.as_bytes().to_vec()))
            .collect();
        let mut request = AppendRequest::new(stream.clone(), ExpectedVersion::Any, events);
        if i % 7 == 0 {
            request = request.idempotent(Idempotency::key(format!("c{cycle}w{w}i{i}")));
        }
        let outcome = log
            .append(request)
            .await
            .unwrap_or_else(|e| panic!("append: {e}"));
        let mut out = std::io::stdout().lock();
        for (k, payload) in payloads.iter().enumerate() {
            let position = outcome.first_position + k as u64;
            let version = outcome.stream_version + 1 + k as u64 - count;
            let _ = writeln!(out, "ACK {position} {stream} {version} {payload} END");
        }
        let _ = out.flush();
    }
}

/// Reopens the log after a kill or a cut: every acknowledged event is there
/// byte for byte, verify is clean, and the next append takes the next
/// position.
/// Returns the number of events in the log (before the probe).
pub fn check(dir: &Path, acked: &HashMap<u64, Ack>, ctx: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        let log = EventLog::open(config(dir)).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
        let report = log
            .verify(&mut |_| {})
            .unwrap_or_else(|e| panic!("{ctx}: verify: {e}"));
        assert_eq!(report.events, log.next_position(), "{ctx}");
        for ack in acked.values() {
            let record = log
                .read_at(ack.position)
                .unwrap_or_else(|e| panic!("{ctx}: read {}: {e}", ack.position))
                .unwrap_or_else(|| panic!("{ctx}: acknowledged position {} lost", ack.position));
            assert_eq!(record.stream_id, ack.stream, "{ctx}");
            assert_eq!(record.stream_version, ack.version, "{ctx}");
            assert_eq!(record.payload, ack.payload.as_bytes(), "{ctx}");
        }
        let probe = NewEvent::new("Probe", "t", "c", b"probe".to_vec());
        let outcome = log
            .append(AppendRequest::new(
                "probe",
                ExpectedVersion::Any,
                vec![probe],
            ))
            .await
            .unwrap_or_else(|e| panic!("{ctx}: probe append: {e}"));
        assert_eq!(outcome.first_position, report.events, "{ctx}");
        log.close().await;
        report.events
    })
}
