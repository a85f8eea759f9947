//! The power-cut loop: a child appends on the mounted filesystem, the
//! parent kills it, cuts the power and checks what was acknowledged.
//!
//! A binary that runs the loop calls [`child_if_asked`] first thing in
//! `main`, so that it can be its own writer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventlog::{
    AppendRequest, Durability, EventLog, ExpectedVersion, Idempotency, LogConfig, NewEvent,
};

use crate::Mount;

const CHILD_ENV: &str = "POWERCUT_CHILD_DIR";
const SCENARIO_ENV: &str = "POWERCUT_SCENARIO";

/// What the child does while the power is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Eight concurrent writers append to the log directly.
    Appends,
    /// Four clients drive quotes through the command path (create, add a
    /// line), each command with its own command id.
    Commands,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Appends => "appends",
            Self::Commands => "commands",
        }
    }
}
const CYCLE_ENV: &str = "POWERCUT_CYCLE";
/// Cuts on one log before a fresh one is used.
const CUTS_PER_DIR: u32 = 25;

/// What a run of the loop found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Power cuts made.
    pub cuts: u32,
    /// Acknowledged events or commands checked (each after every later
    /// cut on its log).
    pub acknowledged: u64,
    /// Events in the last log at the end.
    pub events: u64,
    /// Bytes of unsynced writes the cuts dropped.
    pub dropped_bytes: u64,
    /// Journal turns started by full journal files (beyond one per open).
    pub turns: u64,
}

/// An acknowledged event as the child reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    position: u64,
    stream: String,
    version: u64,
    payload: String,
}

fn parse_ack(line: &str) -> Option<Ack> {
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

/// A tiny xorshift; the seed is printed so a failure can be replayed with
/// `POWERCUT_SEED`.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn seed() -> u64 {
    std::env::var("POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| u64::from(d.subsec_nanos()) ^ d.as_secs())
                | 1
        })
}

/// The log configuration of both sides: durable, and the smallest journal
/// file, so cuts land in checkpoints and journal turns too.
pub(crate) fn config(dir: &Path) -> LogConfig {
    let mut config = LogConfig::new(dir).durability(Durability::Durable);
    config.journal_file_bytes = 0;
    config.cache_capacity_bytes = 16 << 20;
    config
}

/// When this process was started as the loop's writer, runs it and exits.
pub fn child_if_asked() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cycle = std::env::var(CYCLE_ENV).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        let log = EventLog::open(config(Path::new(&dir))).unwrap_or_else(|e| panic!("open: {e}"));
        println!("OPENED");
        if std::env::var(SCENARIO_ENV).as_deref() == Ok(Scenario::Commands.name()) {
            crate::commands::drive(log, &cycle).await;
            return;
        }
        let padding = "x".repeat(1000);
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let log = log.clone();
                let cycle = cycle.clone();
                let padding = padding.clone();
                tokio::spawn(async move { write(&log, w, &cycle, &padding).await })
            })
            .collect();
        for writer in writers {
            let _ = writer.await;
        }
    });
    // Only a kill ends the writers.
    std::process::exit(3);
}

async fn write(log: &EventLog, w: u32, cycle: &str, padding: &str) {
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

/// Runs `cuts` power cuts under `scenario` and checks the log after each.
/// Panics, naming the seed and the cut, on the first lost acknowledged
/// event or command, failed verify, or repeated position.
///
/// # Errors
/// The error of mounting the filesystem.
pub fn run(scenario: Scenario, cuts: u32) -> std::io::Result<Report> {
    let seed = seed();
    let mut rng = Rng(seed);
    let mount = Mount::new()?;
    let exe = std::env::current_exe()?;
    let mut dir = mount.subdir("data-0")?;
    let mut acked: HashMap<u64, Ack> = HashMap::new();
    let mut commands: HashMap<String, crate::commands::CommandAck> = HashMap::new();
    let mut checked = 0;
    let mut events = 0;
    let mut turns = 0;
    let mut epoch = 0;
    let started = Instant::now();
    for cut in 0..cuts {
        if cut > 0 && cut % CUTS_PER_DIR == 0 {
            // A fresh log now and then keeps each check (which re-reads
            // every acknowledged event) and the filesystem's memory small.
            std::fs::remove_dir_all(&dir)?;
            dir = mount.subdir(&format!("data-{cut}"))?;
            checked += (acked.len() + commands.len()) as u64;
            acked.clear();
            commands.clear();
            epoch = 0;
        }
        // Mostly while the writers append (counted from the open); one cut
        // in ten lands during the open itself.
        let during_open = rng.below(10) == 0;
        let delay = if during_open {
            rng.below(30)
        } else {
            rng.below(100)
        };
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, &dir)
            .env(CYCLE_ENV, cut.to_string())
            .env(SCENARIO_ENV, scenario.name())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "OPENED" {
                    let _ = opened_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        if !during_open {
            opened_rx
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| std::io::Error::other(format!("seed {seed} cut {cut}: no open")))?;
        }
        std::thread::sleep(Duration::from_millis(delay));
        child.kill()?; // SIGKILL
        let status = child.wait()?;
        assert_ne!(status.code(), Some(3), "seed {seed} cut {cut}: child ended");
        let lines = reader.join().unwrap_or_default();
        // Requests of the dead process the filesystem may still be
        // serving land before the cut, not after it.
        std::thread::sleep(Duration::from_millis(20));
        mount.switch().cut();
        for ack in lines.iter().filter_map(|l| parse_ack(l)) {
            if let Some(previous) = acked.insert(ack.position, ack.clone()) {
                assert_eq!(
                    previous, ack,
                    "seed {seed} cut {cut}: position {} acknowledged twice",
                    ack.position
                );
            }
        }
        for ack in lines
            .iter()
            .filter_map(|l| crate::commands::CommandAck::parse(l))
        {
            commands.insert(ack.command_id.clone(), ack);
        }
        let ctx = format!("seed {seed} cut {cut} ({})", scenario.name());
        events = check(&dir, &acked, &ctx);
        crate::commands::check(&dir, &commands, &ctx);
        // Each open (the child's, if it got that far, and the check's)
        // starts one journal turn; full journal files started the rest.
        let now = newest_epoch(&dir);
        let opens = 1 + u64::from(lines.iter().any(|l| l == "OPENED"));
        turns += now.saturating_sub(epoch).saturating_sub(opens);
        epoch = now;
        if (cut + 1) % 20 == 0 {
            eprintln!(
                "powercut {}: {} cuts, {} acknowledged events and {} commands intact, {events} events in the log, {:.0?}",
                scenario.name(),
                cut + 1,
                acked.len(),
                commands.len(),
                started.elapsed()
            );
        }
    }
    Ok(Report {
        cuts,
        acknowledged: checked + (acked.len() + commands.len()) as u64,
        events,
        dropped_bytes: mount.switch().dropped_bytes(),
        turns,
    })
}

/// The newest journal turn of the log in `dir` (0 without a journal).
fn newest_epoch(dir: &Path) -> u64 {
    eventlog::journal::JOURNAL_FILES
        .iter()
        .filter_map(|name| {
            eventlog::journal::scan_file(&dir.join(eventlog::journal::JOURNAL_DIR).join(name))
                .ok()
                .flatten()
        })
        .map(|scanned| scanned.header.epoch)
        .max()
        .unwrap_or(0)
}

/// Reopens the log after a cut: every acknowledged event is there byte
/// for byte, verify is clean, and the next append takes the next position.
/// Returns the number of events in the log (before the probe).
fn check(dir: &Path, acked: &HashMap<u64, Ack>, ctx: &str) -> u64 {
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
