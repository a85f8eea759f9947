//! The power-cut loop: a child appends on the mounted filesystem, the
//! parent kills it, cuts the power and checks what was acknowledged.
//!
//! A binary that runs the loop calls [`child_if_asked`] first thing in
//! `main`, so that it can be its own writer.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use eventlog::EventLog;

use crate::harness::{check, config, parse_ack, run_writers, seed, Ack, Rng, Watched, CHILD_DONE};
use crate::Mount;

const CHILD_ENV: &str = "POWERCUT_CHILD_DIR";
const SCENARIO_ENV: &str = "POWERCUT_SCENARIO";
const CYCLE_ENV: &str = "POWERCUT_CYCLE";
/// Cuts on one log before a fresh one is used.
const CUTS_PER_DIR: u32 = 25;

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
        run_writers(&log, 8, &cycle, &"x".repeat(1000)).await;
    });
    // Only a kill ends the writers.
    std::process::exit(CHILD_DONE);
}

/// Runs `cuts` power cuts under `scenario` and checks the log after each.
/// Panics, naming the seed and the cut, on the first lost acknowledged
/// event or command, failed verify, or repeated position.
///
/// # Errors
/// The error of mounting the filesystem.
pub fn run(scenario: Scenario, cuts: u32) -> std::io::Result<Report> {
    let seed = seed("POWERCUT_SEED");
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
        let mut command = Command::new(&exe);
        command
            .env(CHILD_ENV, &dir)
            .env(CYCLE_ENV, cut.to_string())
            .env(SCENARIO_ENV, scenario.name());
        let child = Watched::spawn(command)?;
        if !during_open && !child.opened_within(Duration::from_secs(60)) {
            return Err(std::io::Error::other(format!(
                "seed {seed} cut {cut}: the child did not open the log"
            )));
        }
        std::thread::sleep(Duration::from_millis(delay));
        let (status, lines) = child.kill()?;
        assert_ne!(
            status.code(),
            Some(CHILD_DONE),
            "seed {seed} cut {cut}: child ended"
        );
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
