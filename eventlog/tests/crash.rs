//! Crash tests: a child process appends and reports each acknowledged
//! append on stdout; the parent SIGKILLs it at a random moment, reopens the
//! log and checks that every acknowledged event is present byte for byte,
//! positions are dense, the chain and indexes verify, and a fresh append
//! works.
//!
//! Like sled's crash tests, this binary re-runs itself: with
//! `EVENTLOG_CRASH_CHILD=<scenario>` it is the child. `EVENTLOG_CRASH_CYCLES`
//! sets the number of kill cycles per scenario (default 30; 1000 for a long
//! run).
//!
//! Scenarios:
//! - `writers`: eight concurrent writers (single and multi-event appends,
//!   some idempotent) on one data directory across every cycle;
//! - `recovery`: open, append, and be killed within a few milliseconds of
//!   opening, repeatedly: no position may ever be acknowledged twice;
//! - `turns`: eight writers of 8 KiB events on the smallest redo journal
//!   (1 MiB a file), so kills land in checkpoints and journal turns (the
//!   journal's turn count shows they happened).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventlog::{
    AppendRequest, Durability, EventLog, ExpectedVersion, Idempotency, LogConfig, NewEvent,
};

const CHILD_ENV: &str = "EVENTLOG_CRASH_CHILD";
const DIR_ENV: &str = "EVENTLOG_CRASH_DIR";
const CHILD_EXIT_CODE_WHEN_DONE: i32 = 3;
/// Kill cycles on one data directory before a fresh one is used, so a long
/// run's checks stay bounded (each cycle re-checks every acknowledged event
/// of its directory and re-verifies the whole log).
const CYCLES_PER_DIR: u32 = 100;

fn main() {
    if let Ok(scenario) = std::env::var(CHILD_ENV) {
        let dir = PathBuf::from(std::env::var(DIR_ENV).unwrap());
        child(&scenario, &dir);
        std::process::exit(CHILD_EXIT_CODE_WHEN_DONE);
    }
    let cycles: u32 = std::env::var("EVENTLOG_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(30);
    let mut passed = 0;
    for scenario in ["writers", "recovery", "turns"] {
        let started = Instant::now();
        parent(scenario, cycles);
        println!(
            "test crash::{scenario} ({cycles} kill cycles, {:.1?}) ... ok",
            started.elapsed()
        );
        passed += 1;
    }
    println!("crash: {passed} passed, 0 failed");
}

/// A tiny xorshift so the test needs no RNG crate; seeded from the clock and
/// printed so a failing run can be replayed with EVENTLOG_CRASH_SEED.
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
    std::env::var("EVENTLOG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
                .unwrap_or(1)
                | 1
        })
}

/// One acknowledged event as the child reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    position: u64,
    stream: String,
    version: u64,
    payload: String,
}

fn parse_ack(line: &str) -> Option<Ack> {
    // "ACK <position> <stream> <version> <payload> END": the END marker
    // proves the line was written whole before the kill.
    let parts: Vec<_> = line.split(' ').collect();
    match parts.as_slice() {
        ["ACK", position, stream, version, payload, "END"] => Some(Ack {
            position: position.parse().ok()?,
            stream: (*stream).to_owned(),
            version: version.parse().ok()?,
            payload: (*payload).to_owned(),
        }),
        _ => None,
    }
}

fn parent(scenario: &str, cycles: u32) {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<u64, Ack> = HashMap::new();
    let mut total_acked = 0;
    let mut killed_during_open = 0;
    for cycle in 0..cycles {
        if cycle > 0 && cycle % CYCLES_PER_DIR == 0 {
            total_acked += acked.len();
            acked.clear();
            dir = tempfile::tempdir().unwrap();
        }
        let delay_ms = match scenario {
            "recovery" => rng.below(6),
            _ if rng.below(10) == 0 => rng.below(3),
            _ => 15 + rng.below(150),
        };
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, scenario)
            .env(DIR_ENV, dir.path())
            .env("EVENTLOG_CRASH_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        if line == "OPENED" {
                            let _ = opened_tx.send(());
                        }
                        lines.push(line);
                    }
                    Err(_) => break,
                }
            }
            lines
        });
        if scenario == "recovery" {
            // Kill a few milliseconds after the open finished.
            opened_rx
                .recv_timeout(Duration::from_secs(20))
                .expect("child opened the log");
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_ne!(
            status.code(),
            Some(CHILD_EXIT_CODE_WHEN_DONE),
            "child finished before it was killed"
        );
        let lines = reader.join().unwrap();
        if !lines.iter().any(|l| l == "OPENED") {
            killed_during_open += 1;
        }
        for ack in lines.iter().filter_map(|l| parse_ack(l)) {
            if let Some(previous) = acked.insert(ack.position, ack.clone()) {
                assert_eq!(
                    previous, ack,
                    "seed {seed} cycle {cycle}: position {} acknowledged twice",
                    ack.position
                );
            }
        }
        check(dir.path(), &acked, seed, cycle);
    }
    total_acked += acked.len();
    assert!(total_acked > 0, "no append was ever acknowledged");
    if scenario == "turns" {
        // Every open (the child's and the check's) starts one turn; more
        // turns were started by full journal files.
        let opens = 2 * u64::from(cycles.min(CYCLES_PER_DIR));
        let epoch = eventlog::journal::JOURNAL_FILES
            .iter()
            .filter_map(|name| {
                let path = dir.path().join(eventlog::journal::JOURNAL_DIR).join(name);
                eventlog::journal::scan_file(&path).unwrap()
            })
            .map(|scanned| scanned.header.epoch)
            .max()
            .unwrap();
        assert!(
            epoch > opens,
            "seed {seed}: {epoch} turns for {opens} opens"
        );
        eprintln!(
            "crash::turns: {} journal turns by full files",
            epoch - opens
        );
    }
    eprintln!(
        "crash::{scenario}: seed {seed}, {total_acked} acknowledged events checked, {killed_during_open} kills during open"
    );
}

/// Reopens after a kill and checks every acknowledged event.
fn check(dir: &Path, acked: &HashMap<u64, Ack>, seed: u64, cycle: u32) {
    let ctx = format!("seed {seed} cycle {cycle}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = EventLog::open(LogConfig::new(dir))
            .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
        let report = log
            .verify(&mut |_| {})
            .unwrap_or_else(|e| panic!("{ctx}: verify failed: {e}"));
        assert_eq!(report.events, log.next_position(), "{ctx}");
        for ack in acked.values() {
            let record = log
                .read_at(ack.position)
                .unwrap()
                .unwrap_or_else(|| panic!("{ctx}: acknowledged position {} lost", ack.position));
            assert_eq!(record.stream_id, ack.stream, "{ctx}");
            assert_eq!(record.stream_version, ack.version, "{ctx}");
            assert_eq!(record.payload, ack.payload.as_bytes(), "{ctx}");
        }
        let fresh = NewEvent::new("Probe", "t", "c", b"probe".to_vec());
        let outcome = log
            .append(AppendRequest::new(
                "probe",
                ExpectedVersion::Any,
                vec![fresh],
            ))
            .await
            .unwrap_or_else(|e| panic!("{ctx}: fresh append failed: {e}"));
        assert_eq!(outcome.first_position, report.events, "{ctx}");
        log.close().await;
    });
}

fn child(scenario: &str, dir: &Path) {
    let cycle = std::env::var("EVENTLOG_CRASH_CYCLE").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = LogConfig::new(dir).durability(Durability::Durable);
        let padding = if scenario == "turns" {
            config.journal_file_bytes = 0;
            "x".repeat(8000)
        } else {
            String::new()
        };
        let log = EventLog::open(config).unwrap();
        println!("OPENED");
        let writers = if scenario == "recovery" { 2 } else { 8 };
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let log = log.clone();
                let cycle = cycle.clone();
                let padding = padding.clone();
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let stream = format!("writer-{w}");
                        let count = if i % 5 == 0 { 3 } else { 1 };
                        let payloads: Vec<String> = (0..count)
                            .map(|k| format!("c{cycle}w{w}i{i}k{k}{padding}"))
                            .collect();
                        let events = payloads
                            .iter()
                            .map(|p| NewEvent::new("Crash", "t", "c", p.as_bytes().to_vec()))
                            .collect();
                        let mut request =
                            AppendRequest::new(stream.clone(), ExpectedVersion::Any, events);
                        if i % 7 == 0 {
                            request =
                                request.idempotent(Idempotency::key(format!("c{cycle}w{w}i{i}")));
                        }
                        let outcome = log.append(request).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        for (k, payload) in payloads.iter().enumerate() {
                            let position = outcome.first_position + k as u64;
                            let version = outcome.stream_version + 1 + k as u64 - count;
                            writeln!(out, "ACK {position} {stream} {version} {payload} END")
                                .unwrap();
                        }
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
}
