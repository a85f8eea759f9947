//! Projection benchmark.
//!
//! Run with `cargo run --release -p projections --example projections_bench -- [--json FILE]
//! [--events N] [--fallout-cases N] [--keep DIR]`.
//!
//! 1. `catch_up_1m`: a child process appends N (default 1,000,000) generated
//!    domain events (quote-to-order journeys over 50 tenants, interleaved,
//!    with retries, unknowns, fallout and resolutions) to a fresh log with
//!    `Durability::Buffered`; this process then opens the log and measures
//!    the catch-up of every projector together (events/s) and its peak RSS
//!    (`VmHWM`).
//! 2. `rebuild_1m`: an online rebuild of every projector with swap.
//! 3. `fallout_first_page` / `fallout_deep_page`: a second log where one
//!    tenant has at least 100,000 open fallout cases; p50/p99 latency of a
//!    50-case page from the start and from a cursor 90 % deep.
//!
//! Diagnostics: `--read-only-dir DIR` reads and decodes an existing log
//! without projecting (the reader's own ceiling); `--catch-up-dir DIR`
//! catches up an existing log; `--only-setup` stops after the setup;
//! `--commit-every N`, `--commit-ms MS`, `--batch N` tune the runtime.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use domain::ids::TenantId;
use domain::testing::fixtures;
use eventlog::{Durability, EventLog, LogConfig};
use projections::testing::{HistoryConfig, HistoryGenerator};
use projections::{FalloutFilter, ProjectionConfig, Projections};

const WRITERS: u64 = 4;

/// The allocator the server (`oms-server`) and `oms-replay` run with, so the
/// figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Projection benchmark.
#[derive(Parser)]
#[command(name = "projections_bench")]
struct Args {
    /// Internal: the child appends generated events of this kind (`main` or
    /// `fallout`) to `--dir`.
    #[arg(long, value_name = "KIND", hide = true)]
    setup: Option<String>,
    /// Internal: the log directory of the `--setup` child.
    #[arg(long, value_name = "DIR", hide = true)]
    dir: Option<PathBuf>,
    /// Also write the figures as a JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Number of generated domain events for catch_up_1m and rebuild_1m.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    events: u64,
    /// Open fallout cases in one tenant for the fallout page latencies.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    fallout_cases: u64,
    /// Keep the generated logs in DIR instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Diagnostic: read and decode an existing log without projecting (the
    /// reader's own ceiling).
    #[arg(long, value_name = "DIR")]
    read_only_dir: Option<String>,
    /// Diagnostic: catch up an existing log from position 0 (no setup; its
    /// `projections/` directory is removed first).
    #[arg(long, value_name = "DIR")]
    catch_up_dir: Option<String>,
    /// Diagnostic: catch up an existing log (not timed), then time an
    /// online rebuild of every projector, swap included, and its peak RSS.
    #[arg(long, value_name = "DIR")]
    rebuild_dir: Option<String>,
    /// Diagnostic: stop after the setup.
    #[arg(long)]
    only_setup: bool,
    /// Runtime tuning: a projector commits once N applied events are not yet
    /// committed (`ProjectionConfig::commit_every`).
    #[arg(long, value_name = "N")]
    commit_every: Option<u64>,
    /// Runtime tuning: longest time in milliseconds applied events wait for
    /// their commit during a catch-up (`ProjectionConfig::commit_interval`).
    #[arg(long, value_name = "MS")]
    commit_ms: Option<u64>,
    /// sled page cache of the measured process in MiB
    /// (`LogConfig::cache_capacity_bytes`; the log's default when absent).
    #[arg(long, value_name = "MIB")]
    cache_mb: Option<u64>,
    /// sled page cache of the projections' own database in MiB
    /// (`LogConfig::projection_cache_bytes`; its default when absent).
    #[arg(long, value_name = "MIB")]
    projection_cache_mb: Option<u64>,
    /// Runtime tuning: most events per decoded batch handed to the projectors
    /// (`ProjectionConfig::batch_size`).
    #[arg(long, value_name = "N")]
    batch: Option<usize>,
}

fn open(dir: &Path) -> EventLog {
    open_with_cache(dir, None, None)
}

fn open_with_cache(
    dir: &Path,
    cache_mb: Option<u64>,
    projection_cache_mb: Option<u64>,
) -> EventLog {
    let mut config = LogConfig::new(dir).durability(Durability::Buffered);
    if let Some(mb) = cache_mb {
        config.cache_capacity_bytes = mb << 20;
    }
    if let Some(mb) = projection_cache_mb {
        config.projection_cache_bytes = mb << 20;
    }
    EventLog::open(config).unwrap()
}

/// Child: append `events` generated events with WRITERS concurrent writers.
fn setup(dir: &Path, events: u64, kind: &str) {
    let log = open(dir);
    let threads: Vec<_> = (0..WRITERS)
        .map(|i| {
            let log = log.clone();
            let kind = kind.to_owned();
            std::thread::spawn(move || {
                let config = if kind == "fallout" {
                    HistoryConfig::fallout_heavy(100 + i)
                } else {
                    HistoryConfig {
                        seed: 1 + i,
                        tenants: 50,
                        concurrent_journeys: 256,
                        ..HistoryConfig::default()
                    }
                };
                let mut g = HistoryGenerator::new(config);
                let mut n = 0u64;
                while n < events / WRITERS {
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
    log.flush().unwrap();
}

fn run_setup(dir: &Path, events: u64, kind: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--setup",
            kind,
            "--dir",
            dir.to_str().unwrap(),
            "--events",
            &events.to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "setup failed");
    started.elapsed()
}

fn config(args: &Args) -> ProjectionConfig {
    let mut c = ProjectionConfig::default();
    if let Some(n) = args.commit_every {
        c.commit_every = n;
    }
    if let Some(ms) = args.commit_ms {
        c.commit_interval = Duration::from_millis(ms);
    }
    if let Some(n) = args.batch {
        c.batch_size = n;
    }
    c
}

fn vm_hwm_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reset_hwm() {
    // Linux: writing 5 to clear_refs resets the peak RSS counter.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn latencies(mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..50 {
        f();
    }
    let mut us = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        f();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(f64::total_cmp);
    (percentile(&us, 0.5), percentile(&us, 0.99))
}

fn main() {
    let args = Args::parse();
    if let Some(kind) = &args.setup {
        let dir = args.dir.clone().unwrap();
        setup(&dir, args.events, kind);
        return;
    }
    let events = args.events;
    let cases = args.fallout_cases;
    let keep = args.keep.clone();
    let tmp = tempfile::tempdir().unwrap();
    let base = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    let main_dir = base.join("main");
    let fallout_dir = base.join("fallout");
    println!(
        "bench: cores={}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    if let Some(dir) = &args.read_only_dir {
        // Diagnostic: the cost of reading and decoding the log alone.
        let log = open_with_cache(Path::new(dir), args.cache_mb, args.projection_cache_mb);
        let started = Instant::now();
        let mut n = 0u64;
        let mut sub = log.subscribe(0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        while n < log.next_position() {
            let batch = rt.block_on(sub.next_batch(4096)).unwrap();
            n += batch.len() as u64;
        }
        println!(
            "read {n} events: {:.2}s, peak RSS {:.0} MB",
            started.elapsed().as_secs_f64(),
            vm_hwm_mb()
        );
        return;
    }
    // 1. Catch-up.
    let setup_time = if let Some(dir) = &args.catch_up_dir {
        // Profiling aid: catch up an existing log (no setup).
        let projections = Path::new(dir).join(eventlog::storage::PROJECTION_DIR);
        if projections.exists() {
            std::fs::remove_dir_all(&projections).unwrap();
        }
        let log = open_with_cache(Path::new(dir), args.cache_mb, args.projection_cache_mb);
        let started = Instant::now();
        let p = Projections::start_with(log.clone(), config(&args)).unwrap();
        p.wait_for(log.next_position(), Duration::from_secs(3_600))
            .unwrap();
        println!(
            "catch-up of {} events: {:.2}s, peak RSS {:.0} MB",
            log.next_position(),
            started.elapsed().as_secs_f64(),
            vm_hwm_mb()
        );
        return;
    } else if let Some(dir) = &args.rebuild_dir {
        let log = open_with_cache(Path::new(dir), args.cache_mb, args.projection_cache_mb);
        let p = Projections::start_with(log.clone(), config(&args)).unwrap();
        p.wait_for(log.next_position(), Duration::from_secs(3_600))
            .unwrap();
        reset_hwm();
        let started = Instant::now();
        p.rebuild_all(&mut |_, _| {}).unwrap();
        println!(
            "rebuild of {} events: {:.2}s, peak RSS {:.0} MB",
            log.next_position(),
            started.elapsed().as_secs_f64(),
            vm_hwm_mb()
        );
        return;
    } else {
        run_setup(&main_dir, events, "main")
    };
    if args.only_setup {
        return;
    }
    let log = open_with_cache(&main_dir, args.cache_mb, args.projection_cache_mb);
    let head = log.next_position();
    println!(
        "setup: {head} events appended in {:.1}s (child process, Buffered)",
        setup_time.as_secs_f64()
    );
    reset_hwm();
    let started = Instant::now();
    let p = Projections::start_with(log.clone(), config(&args)).unwrap();
    p.wait_for(head, Duration::from_secs(3_600)).unwrap();
    let catch_up = started.elapsed();
    let rss = vm_hwm_mb();
    let catch_up_eps = head as f64 / catch_up.as_secs_f64();
    println!(
        "catch_up_1m: {head} events, all {} projectors, {:.2}s, {:.0} events/s, peak RSS {:.0} MB",
        projections::PROJECTOR_NAMES.len(),
        catch_up.as_secs_f64(),
        catch_up_eps,
        rss
    );
    for s in p.status() {
        assert!(s.failure.is_none(), "{} failed: {:?}", s.name, s.failure);
    }
    let dash = p
        .read_models()
        .dashboard(&TenantId::new("tenant-0"), fixtures::T0.0 + 30 * 86_400_000)
        .unwrap();
    println!(
        "  tenant-0 dashboard: pending {} unknown {} open fallout {}",
        dash.pending, dash.unknown, dash.open_fallout
    );

    // 2. Rebuild with swap.
    reset_hwm();
    let started = Instant::now();
    let reports = p.rebuild_all(&mut |_, _| {}).unwrap();
    let rebuild = started.elapsed();
    let rebuild_eps = head as f64 / rebuild.as_secs_f64();
    println!(
        "rebuild_1m: {head} events into generation {}, swap included, {:.2}s, {:.0} events/s, peak RSS {:.0} MB",
        reports.first().map_or(0, |r| r.generation),
        rebuild.as_secs_f64(),
        rebuild_eps,
        vm_hwm_mb()
    );
    p.shutdown();
    drop(p);
    drop(log);

    // 3. Fallout pages.
    // Events per open case of tenant-0 in the generator's fallout-heavy
    // mix (measured: 551,248 events gave 42,940), with a margin.
    let per_case = 13.5;
    let fallout_events = (cases as f64 * per_case * 1.05) as u64;
    let setup_time = run_setup(&fallout_dir, fallout_events, "fallout");
    let log = open(&fallout_dir);
    let read = Projections::catch_up_offline(&log, &config(&args), &mut |_, _| {}).unwrap();
    // Measure queries at steady state, not while sled still writes back the
    // catch-up.
    log.flush().unwrap();
    let tenant = TenantId::new("tenant-0");
    let now = fixtures::T0.0 + 365 * 86_400_000;
    let open_cases = read.dashboard(&tenant, now).unwrap().open_fallout;
    println!(
        "fallout setup: {} events in {:.1}s, {open_cases} open cases in one tenant",
        log.next_position(),
        setup_time.as_secs_f64()
    );
    if open_cases < cases {
        println!("fallout setup: short of the {cases} open cases asked for");
    }
    let filter = FalloutFilter::default();
    let (p50, p99) = latencies(|| {
        let page = read.fallout(&tenant, &filter, None, 50, now).unwrap();
        assert_eq!(page.items.len(), 50);
    });
    println!("fallout_first_page: 50 cases, p50 {p50:.0} us, p99 {p99:.0} us");
    let depth = open_cases * 9 / 10;
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    while seen < depth {
        let page = read
            .fallout(&tenant, &filter, cursor.as_deref(), 500, now)
            .unwrap();
        seen += page.items.len() as u64;
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let (dp50, dp99) = latencies(|| {
        let page = read
            .fallout(&tenant, &filter, cursor.as_deref(), 50, now)
            .unwrap();
        assert!(!page.items.is_empty());
    });
    println!("fallout_deep_page: 50 cases after {seen}, p50 {dp50:.0} us, p99 {dp99:.0} us");

    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "catch_up_1m": {"events": head, "seconds": catch_up.as_secs_f64(), "events_per_s": catch_up_eps, "peak_rss_mb": rss},
            "rebuild_1m": {"events": head, "seconds": rebuild.as_secs_f64(), "events_per_s": rebuild_eps},
            "fallout_first_page": {"open_cases": open_cases, "page": 50, "p50_us": p50, "p99_us": p99},
            "fallout_deep_page": {"open_cases": open_cases, "depth": seen, "page": 50, "p50_us": dp50, "p99_us": dp99},
        });
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        println!("wrote {path}");
    }
}
