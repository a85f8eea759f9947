//! SIGKILL loops on the event log: a child process appends and reports
//! each acknowledged append on stdout; the parent SIGKILLs it at a random
//! moment, reopens the log and checks that every acknowledged event is
//! present byte for byte, positions are dense, the chain and indexes
//! verify, and a fresh append works (`powercut::harness::check`).
//!
//! Like sled's crash tests, this binary re-runs itself: with
//! `EVENTLOG_CRASH_CHILD=<scenario>` it is the child. `EVENTLOG_CRASH_CYCLES`
//! sets the number of kill cycles per scenario (default 30; 1000 for a long
//! run); `EVENTLOG_CRASH_SEED` replays a run.
//!
//! Scenarios (every one on the smallest redo journal, 1 MiB a file):
//! - `writers`: eight concurrent writers (single and multi-event appends,
//!   some idempotent) on one data directory across every cycle;
//! - `recovery`: open, append, and be killed within a few milliseconds of
//!   opening, repeatedly: no position may ever be acknowledged twice;
//! - `turns`: the eight writers with 8 KiB events, so kills land in
//!   checkpoints and journal turns (the journal's turn count shows they
//!   happened).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use eventlog::EventLog;
use powercut::harness::{
    check, config, parse_ack, run_writers, seed, Ack, Rng, Watched, CHILD_DONE,
};

const CHILD_ENV: &str = "EVENTLOG_CRASH_CHILD";
const DIR_ENV: &str = "EVENTLOG_CRASH_DIR";
const CYCLE_ENV: &str = "EVENTLOG_CRASH_CYCLE";
/// Kill cycles on one data directory before a fresh one is used, so a long
/// run's checks stay bounded (each cycle re-checks every acknowledged event
/// of its directory and re-verifies the whole log).
const CYCLES_PER_DIR: u32 = 100;

fn main() {
    if let Ok(scenario) = std::env::var(CHILD_ENV) {
        let dir = PathBuf::from(std::env::var(DIR_ENV).expect("child without a directory"));
        child(&scenario, &dir);
        std::process::exit(CHILD_DONE);
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

/// The newest journal turn of the log in `dir`.
fn newest_epoch(dir: &Path) -> u64 {
    eventlog::journal::JOURNAL_FILES
        .iter()
        .filter_map(|name| {
            let path = dir.join(eventlog::journal::JOURNAL_DIR).join(name);
            eventlog::journal::scan_file(&path).ok().flatten()
        })
        .map(|scanned| scanned.header.epoch)
        .max()
        .unwrap_or(0)
}

fn parent(scenario: &str, cycles: u32) {
    let seed = seed("EVENTLOG_CRASH_SEED");
    let mut rng = Rng(seed);
    let mut dir = tempfile::tempdir().expect("temporary directory");
    let mut acked: HashMap<u64, Ack> = HashMap::new();
    let mut total_acked = 0;
    let mut killed_during_open = 0;
    for cycle in 0..cycles {
        if cycle > 0 && cycle % CYCLES_PER_DIR == 0 {
            total_acked += acked.len();
            acked.clear();
            dir = tempfile::tempdir().expect("temporary directory");
        }
        // Kills land a moment after the open finished, except one in ten
        // of `writers`, timed from the spawn so it lands in the open. (On a
        // slow machine a kill timed from the spawn always lands in the
        // open, and the scenario would append and turn nothing.)
        let (after_open, delay_ms) = match scenario {
            "recovery" => (true, rng.below(6)),
            // Long enough for the 1 MiB journal to fill and turn.
            "turns" => (true, 15 + rng.below(300)),
            _ if rng.below(10) == 0 => (false, rng.below(3)),
            _ => (true, 15 + rng.below(150)),
        };
        let mut command = Command::new(std::env::current_exe().expect("this binary"));
        command
            .env(CHILD_ENV, scenario)
            .env(DIR_ENV, dir.path())
            .env(CYCLE_ENV, cycle.to_string());
        let child = Watched::spawn(command).expect("spawn the child");
        if after_open {
            assert!(
                child.opened_within(Duration::from_secs(20)),
                "child opened the log"
            );
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let (status, lines) = child.kill().expect("SIGKILL");
        assert_ne!(
            status.code(),
            Some(CHILD_DONE),
            "child finished before it was killed"
        );
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
        check(dir.path(), &acked, &format!("seed {seed} cycle {cycle}"));
    }
    total_acked += acked.len();
    assert!(total_acked > 0, "no append was ever acknowledged");
    if scenario == "turns" {
        // Every open (the child's and the check's) starts one turn; more
        // turns were started by full journal files.
        let opens = 2 * u64::from(cycles.min(CYCLES_PER_DIR));
        let epoch = newest_epoch(dir.path());
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

fn child(scenario: &str, dir: &Path) {
    let cycle = std::env::var(CYCLE_ENV).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let log = EventLog::open(config(dir)).expect("open the log");
        println!("OPENED");
        let writers = if scenario == "recovery" { 2 } else { 8 };
        let padding = if scenario == "turns" {
            "x".repeat(8000)
        } else {
            String::new()
        };
        run_writers(&log, writers, &cycle, &padding).await;
    });
}
