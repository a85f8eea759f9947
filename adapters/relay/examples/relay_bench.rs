//! The JetStream relay benchmark, against a real NATS server.
//!
//! 1. `relay_catch_up`: N (default 1,000,000) generated quote-to-order
//!    events are appended to a fresh log (`Durability::Buffered`, setup
//!    only), then a relay publishes all of them into a fresh stream; the
//!    figure is N / time from `Relay::start` until its checkpoint reaches
//!    the head (every event acknowledged by JetStream).
//! 2. `relay_lag_under_load`: a second fresh log (durable, the default)
//!    with the relay following it while 64 writers append generated
//!    histories for S seconds (default 10); the relay's lag (head minus
//!    checkpoint) is sampled every 10 ms. This is the benchmark's own
//!    append load (64 concurrent writers through the log), not the server's
//!    HTTP load benchmark.
//!
//! Both streams are deleted at the end.
//!
//! Run with `cargo run --release -p relay --example relay_bench --
//! [--json FILE] [--events N] [--load-seconds S] [--writers W] [--url URL]`.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use eventlog::{Durability, EventLog, LogConfig};
use projections::testing::{HistoryConfig, HistoryGenerator};
use relay::{Relay, RelayConfig};

/// The JetStream relay benchmark, against a real NATS server.
#[derive(Parser)]
#[command(name = "relay_bench")]
struct Args {
    /// Also write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Events for the catch-up figure (must be positive).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    events: u64,
    /// Duration of the lag-under-load run, in seconds (must be positive).
    #[arg(
        long,
        value_name = "S",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    load_seconds: u64,
    /// Concurrent writers of the load (must be positive).
    #[arg(
        long,
        value_name = "W",
        default_value_t = 64,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    writers: u64,
    /// NATS server.
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    url: String,
}

fn generator(seed: u64) -> HistoryGenerator {
    HistoryGenerator::new(HistoryConfig {
        seed,
        tenants: 50,
        concurrent_journeys: 256,
        ..HistoryConfig::default()
    })
}

/// Appends at least `events` generated events with 8 writer threads.
fn fill(log: &EventLog, events: u64) {
    const THREADS: u64 = 8;
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut g = generator(1 + i);
                let mut n = 0;
                while n < events / THREADS {
                    let a = g.next().unwrap();
                    n += a.events.len() as u64;
                    log.append_blocking(a.request()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn config(url: &str, stream: &str) -> RelayConfig {
    RelayConfig {
        enabled: true,
        url: url.to_owned(),
        stream: stream.to_owned(),
        subject_prefix: format!("bench{}", std::process::id()),
        ..RelayConfig::default()
    }
}

async fn delete_stream(url: &str, stream: &str) {
    if let Ok(client) = async_nats::connect(url).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(stream)
            .await;
    }
}

/// CPU seconds this process has used (Linux `/proc/self/stat`), if readable.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn catch_up(args: &Args, dir: &Path) -> serde_json::Value {
    let setup = Instant::now();
    let log = EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap();
    let filler = log.clone();
    let events = args.events;
    tokio::task::spawn_blocking(move || fill(&filler, events))
        .await
        .unwrap();
    log.flush().unwrap();
    let head = log.next_position();
    println!(
        "setup: {head} events appended in {:.1}s (Buffered, setup only)",
        setup.elapsed().as_secs_f64()
    );
    let stream = format!("RELAY_BENCH_{}", std::process::id());
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let relay = Relay::start(log.clone(), config(&args.url, &stream))
        .await
        .unwrap();
    loop {
        let status = relay.status();
        if status.lag == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "catch-up stalled: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(cpu_seconds())
        .map(|(a, b)| b - a)
        .unwrap_or(f64::NAN);
    let status = relay.status();
    relay.shutdown().await;
    let eps = head as f64 / seconds;
    println!(
        "relay_catch_up: {head} events into JetStream in {seconds:.2}s = {eps:.0} events/s \
         (published {}, duplicates {}; relay process CPU {cpu:.2}s = {:.1} us/event)",
        status.published,
        status.duplicates,
        cpu * 1e6 / head as f64
    );
    log.close().await;
    delete_stream(&args.url, &stream).await;
    serde_json::json!({"events": head, "seconds": seconds, "events_per_s": eps, "relay_cpu_s": cpu})
}

async fn lag_under_load(args: &Args, dir: &Path) -> serde_json::Value {
    let log = EventLog::open(LogConfig::new(dir)).unwrap();
    let stream = format!("RELAY_BENCH_LOAD_{}", std::process::id());
    let relay = Relay::start(log.clone(), config(&args.url, &stream))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..args.writers)
        .map(|i| {
            let log = log.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut g = generator(10_000 + i);
                while !stop.load(Ordering::Relaxed) {
                    let a = g.next().unwrap();
                    log.append(a.request()).await.unwrap();
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    while started.elapsed() < Duration::from_secs(args.load_seconds) {
        ticker.tick().await;
        samples.push(relay.status().lag);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let appended = log.next_position();
    let drain = Instant::now();
    while relay.status().lag > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_ms = drain.elapsed().as_secs_f64() * 1000.0;
    relay.shutdown().await;
    samples.sort_unstable();
    let (p50, p99, max) = (
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0),
    );
    let rate = appended as f64 / seconds;
    println!(
        "relay_lag_under_load: {} writers appending (durable) at {rate:.0} events/s for {seconds:.1}s \
         (the bench's own append load, not the server's load benchmark): lag p50 {p50}, p99 {p99}, max {max} events \
         over {} samples every 10 ms; drained {drain_ms:.0} ms after the load stopped",
        args.writers,
        samples.len()
    );
    log.close().await;
    delete_stream(&args.url, &stream).await;
    serde_json::json!({
        "load": "the benchmark's own append load: concurrent writers through the durable log (not the server's HTTP load benchmark)",
        "writers": args.writers,
        "seconds": seconds,
        "append_events_per_s": rate,
        "samples": samples.len(),
        "p50_lag_events": p50,
        "p99_lag_events": p99,
        "max_lag_events": max,
        "drain_ms": drain_ms,
    })
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let first = tempfile::tempdir().unwrap();
        let catch_up = catch_up(&args, first.path()).await;
        drop(first);
        let second = tempfile::tempdir().unwrap();
        let lag = lag_under_load(&args, second.path()).await;
        if let Some(path) = &args.json {
            let json = serde_json::json!({
                "relay_catch_up": catch_up,
                "relay_lag_under_load": lag,
            });
            std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
            println!("wrote {path}");
        }
    });
}
