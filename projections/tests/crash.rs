//! Crash test: SIGKILL the projection runner at random moments during its
//! catch-up; after every restart the read models must be exactly what a
//! rebuild from scratch gives (digests of every tree, and every tenant's
//! dashboard): no event applied twice, none skipped.
//!
//! Like the event log's crash test, this binary re-runs itself: with
//! `PROJ_CRASH_CHILD=1` it is the child, which opens the log and runs the
//! projections until they reach the head. The parent kills it after a random
//! delay, again and again, then lets the last run finish and checks.
//!
//! CI mode: 30,000 events, up to 4 kills. Long mode: `PROJ_CRASH_EVENTS=100000
//! PROJ_CRASH_KILLS=20`. `PROJ_CRASH_SEED` replays a run.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use domain::ids::TenantId;
use domain::testing::fixtures::T0;
use eventlog::{Durability, EventLog, LogConfig};
use projections::testing::{HistoryConfig, HistoryGenerator, Rng};
use projections::{ProjectionConfig, Projections};

const CHILD_ENV: &str = "PROJ_CRASH_CHILD";
const DIR_ENV: &str = "PROJ_CRASH_DIR";
const DONE: i32 = 3;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Small batches and frequent commits, so kills land between many commits.
fn child_config() -> ProjectionConfig {
    ProjectionConfig {
        batch_size: 512,
        commit_every: 2_000,
        commit_interval: Duration::from_millis(20),
        ..ProjectionConfig::default()
    }
}

fn open(dir: &Path) -> EventLog {
    EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap()
}

fn child(dir: &Path) {
    let log = open(dir);
    let p = Projections::start_with(log.clone(), child_config()).unwrap();
    p.wait_for(log.next_position(), Duration::from_secs(600))
        .unwrap();
    p.shutdown();
    log.flush().unwrap();
    std::process::exit(DONE);
}

fn main() {
    if std::env::var(CHILD_ENV).is_ok() {
        child(&PathBuf::from(std::env::var(DIR_ENV).unwrap()));
        return;
    }
    let events = env_u64("PROJ_CRASH_EVENTS", 30_000);
    let kills = env_u64("PROJ_CRASH_KILLS", 4);
    let seed = env_u64(
        "PROJ_CRASH_SEED",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7),
    );
    println!("crash: seed {seed} (PROJ_CRASH_SEED), {events} events, {kills} kills");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut g = HistoryGenerator::new(HistoryConfig {
        seed,
        tenants: 6,
        concurrent_journeys: 128,
        ..HistoryConfig::default()
    });
    let mut n = 0u64;
    while n < events {
        let a = g.next().unwrap();
        n += a.events.len() as u64;
        log.append_blocking(a.request()).unwrap();
    }
    log.flush().unwrap();
    drop(log);
    // Give the log's threads time to let go of the directory lock.
    std::thread::sleep(Duration::from_millis(200));

    // Kill at random moments (10-210 ms after the start, which includes
    // opening the log), until enough kills landed or a run finished the
    // catch-up before its kill.
    let mut rng = Rng::new(seed);
    let mut killed = 0;
    let mut runs = 0;
    while killed < kills {
        runs += 1;
        let mut c = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, "1")
            .env(DIR_ENV, dir.path())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(10 + rng.below(200));
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(status) = exited {
            assert_eq!(status.code(), Some(DONE), "child failed: {status}");
            break;
        }
        // std's Child::kill sends SIGKILL on Unix.
        c.kill().unwrap();
        let status = c.wait().unwrap();
        assert_eq!(status.code(), None, "child was not killed by the signal");
        killed += 1;
    }
    assert!(
        killed > 0,
        "the catch-up finished before any kill: use more events"
    );
    // The last run finishes the catch-up.
    let status = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .env(DIR_ENV, dir.path())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(DONE));
    std::thread::sleep(Duration::from_millis(200));

    // Check: what the killed-and-restarted runs built equals a rebuild.
    let log = open(dir.path());
    let read =
        Projections::catch_up_offline(&log, &ProjectionConfig::default(), &mut |_, _| {}).unwrap();
    let incremental = read.digests().unwrap();
    let now = T0.0 + 60 * 86_400_000;
    let tenants: Vec<TenantId> = (0..6)
        .map(|i| TenantId::new(format!("tenant-{i}")))
        .collect();
    let dashboards: Vec<_> = tenants
        .iter()
        .map(|t| read.dashboard(t, now).unwrap())
        .collect();
    for d in &incremental {
        assert_eq!(
            d.checkpoint,
            log.next_position(),
            "{} did not reach the head",
            d.name
        );
    }
    Projections::rebuild_offline(&log, &ProjectionConfig::default(), &[], &mut |_, _| {}).unwrap();
    let read =
        Projections::catch_up_offline(&log, &ProjectionConfig::default(), &mut |_, _| {}).unwrap();
    let rebuilt = read.digests().unwrap();
    for (a, b) in incremental.iter().zip(&rebuilt) {
        assert_eq!(
            a.sha256, b.sha256,
            "{}: {} rows after kills, {} rebuilt",
            a.name, a.rows, b.rows
        );
    }
    for (t, before) in tenants.iter().zip(&dashboards) {
        assert_eq!(
            &read.dashboard(t, now).unwrap(),
            before,
            "dashboard of {t} double counts"
        );
    }
    println!(
        "test crash::kill_during_catch_up ({killed} kills in {runs} runs, {events} events, {:.1?}) ... ok",
        started.elapsed()
    );
    println!("crash: 1 passed, 0 failed");
}
