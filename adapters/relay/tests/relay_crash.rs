//! kill -9 of the relay mid-stream, then restart: the JetStream stream
//! holds every event of the log exactly once (count and set of
//! `Nats-Msg-Id`s), in log order.
//!
//! Like `powercut/tests/crash.rs`, this binary re-runs itself: with
//! `RELAY_CRASH_CHILD=run` it is a relay process that also keeps appending
//! (so it is killed while publishing, with events in flight and the
//! checkpoint behind the stream); with `RELAY_CRASH_CHILD=finish` it
//! relays until caught up and exits. `RELAY_CRASH_CYCLES` sets the number
//! of kills (default 3), `RELAY_CRASH_EXCLUSIVE=false` runs the relay in
//! shared-stream mode (exactly-once by the duplicate window alone).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod relay_common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventlog::Durability;
use relay::{Relay, RelayConfig};
use relay_common::*;

const CHILD_ENV: &str = "RELAY_CRASH_CHILD";
const DIR_ENV: &str = "RELAY_CRASH_DIR";
const NAME_ENV: &str = "RELAY_CRASH_NAME";
const CYCLE_ENV: &str = "RELAY_CRASH_CYCLE";
const EXIT_DONE: i32 = 3;

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        child(
            &mode,
            &PathBuf::from(std::env::var(DIR_ENV).unwrap()),
            &std::env::var(NAME_ENV).unwrap(),
        );
        std::process::exit(EXIT_DONE);
    }
    let cycles: u64 = std::env::var("RELAY_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3);
    let started = Instant::now();
    let (events, kills) = parent(cycles);
    println!(
        "test relay_crash::kill_9_mid_stream_then_restart ({kills} kills, {events} events, {:.1?}) ... ok",
        started.elapsed()
    );
    println!("relay_crash: 1 passed, 0 failed");
}

fn exclusive() -> bool {
    std::env::var("RELAY_CRASH_EXCLUSIVE").map_or(true, |v| v != "false")
}

fn relay_config(name: &str) -> RelayConfig {
    RelayConfig {
        exclusive: exclusive(),
        // Small windows: more commits, more in flight at the kill.
        batch_size: 128,
        max_in_flight: 512,
        ..config(NATS_URL, name)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn child(mode: &str, dir: &Path, name: &str) {
    let cycle: u64 = std::env::var(CYCLE_ENV).unwrap().parse().unwrap();
    // Acknowledged appends must survive the kill: the relay may already
    // have published them.
    let log = open_log(dir, Durability::ProcessCrashSafe);
    runtime().block_on(async {
        let relay = Relay::start(log.clone(), relay_config(name)).await.unwrap();
        println!("STARTED");
        if mode == "run" {
            let mut generator = generator(1_000 + cycle, 3);
            loop {
                append_async(&log, &mut generator, 50).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        caught_up(&relay, Duration::from_secs(120)).await;
        relay.shutdown().await;
        log.close().await;
    });
}

fn parent(cycles: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("crash");
    let config = relay_config(&name);
    let rt = runtime();
    rt.block_on(async {
        let log = open_log(dir.path(), Durability::Buffered);
        append_async(&log, &mut generator(999, 3), events_from_env(3_000)).await;
        log.close().await;
    });
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(7)
        | 1;
    let mut kills = 0;
    for cycle in 0..=cycles {
        let mode = if cycle == cycles { "finish" } else { "run" };
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, mode)
            .env(DIR_ENV, dir.path())
            .env(NAME_ENV, &name)
            .env(CYCLE_ENV, cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "STARTED");
        if mode == "run" {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(100 + seed % 400));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        } else {
            assert_eq!(child.wait().unwrap().code(), Some(EXIT_DONE));
        }
    }
    let log = open_log(dir.path(), Durability::Buffered);
    let head = log.next_position();
    let ids = log_ids(&log);
    let checkpoint = log.consumer("relay").unwrap().checkpoint().unwrap();
    assert_eq!(checkpoint, head);
    rt.block_on(async {
        let js = jetstream(NATS_URL).await;
        let messages = read_stream(&js, &config.stream).await;
        assert_eq!(messages.len() as u64, head, "exactly one message per event");
        let stored: BTreeSet<&str> = messages.iter().map(|m| m.msg_id.as_str()).collect();
        let expected: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(stored, expected, "the Nats-Msg-Ids are the log's event ids");
        assert_eq!(assert_ordered_per_subject(&messages), head as usize);
        if exclusive() {
            for (i, m) in messages.iter().enumerate() {
                assert_eq!(m.position, i as u64, "exclusive mode keeps log order");
            }
        }
        log.close().await;
        delete_stream(NATS_URL, &config.stream).await;
    });
    (head, kills)
}
