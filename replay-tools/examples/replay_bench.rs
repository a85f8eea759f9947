//! Benchmark of the replay tooling over a generated log.
//!
//! Run with `cargo run --release -p replay-tools --example replay_bench -- [--events N] [--json FILE]`.
//!
//! It generates a log of at least N events (default 1,000,000) through the
//! real command path (quotes accepted, orders fulfilled through handoffs;
//! `Durability::Buffered` for the setup only), then measures verify, verify
//! again (without sled's recovery scan, see [`OPERATIONS`]), dump
//! (to /dev/null), export, import, a rebuild from no projections and a
//! rebuild over existing ones (`rebuild-over`: it also drops the old
//! generations), each in a fresh child process with the allocator
//! settings `oms-replay` runs with, so the peak RSS (VmHWM) is the
//! operation's own. It prints a
//! table; `--json FILE` writes `{"verify": {"events_per_s", "peak_rss_mb"},
//! ...}`.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
// Shared generator: only `run_flow` is used here.
#![allow(dead_code)]

#[path = "../tests/support/gen.rs"]
mod gen;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use application::CommandPath;
use clap::Parser;
use eventlog::{Durability, EventLog, LogConfig};
use replay_tools::commands::{dump, export, import, verify};
use replay_tools::datadir::DataDir;
use replay_tools::progress::Progress;
use replay_tools::reader::LogReader;

/// `verify` is the first open after the writer stopped, so it includes
/// sled 0.34's recovery scan of everything written since the log was last
/// opened (0.34.7 writes its snapshot only when it opens a database);
/// `verify-again` runs the same check once that scan is done, which is
/// verify's own cost. `rebuild` starts from no projections; `rebuild-over`
/// rebuilds over the generations `rebuild` left, which it then drops.
const OPERATIONS: [&str; 7] = [
    "verify",
    "verify-again",
    "dump",
    "export",
    "import",
    "rebuild",
    "rebuild-over",
];

/// Benchmark of the replay tooling over a generated log.
#[derive(Parser)]
#[command(name = "replay_bench")]
struct Args {
    /// Size of the generated log.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    events: u64,
    /// Write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Generate into DIR (reused when it already holds a log).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Internal: measure one operation in this (child) process.
    #[arg(long, num_args = 2, value_names = ["OP", "DIR"], hide = true)]
    measure: Option<Vec<String>>,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Generates flows, 64 in flight, until the log holds at least `events`.
fn generate(dir: &Path, events: u64) -> u64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap();
        let start = log.next_position();
        let path = CommandPath::new(log.clone());
        let permits = Arc::new(tokio::sync::Semaphore::new(64));
        let started = Instant::now();
        let mut flow = usize::try_from(start).unwrap();
        let mut tasks = Vec::new();
        while log.next_position() < events {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let path = path.clone();
            let i = flow;
            tasks.push(tokio::spawn(async move {
                let r = gen::run_flow(&path, i, 1 + i % 3).await;
                drop(permit);
                r
            }));
            flow += 1;
            if flow % 2000 == 0 {
                eprintln!(
                    "  generated {} events ({:.0} events/s)",
                    log.next_position(),
                    (log.next_position() - start) as f64 / started.elapsed().as_secs_f64()
                );
            }
            if tasks.len() > 4096 {
                for t in tasks.drain(..) {
                    t.await.unwrap().unwrap();
                }
            }
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        drop(path);
        let total = log.next_position();
        log.flush().unwrap();
        log.close().await;
        total
    })
}

/// Runs one operation in this process and prints `RESULT op events secs rss`.
fn measure(op: &str, work: &Path) -> Result<(), String> {
    let log_dir = DataDir::new(work.join("log"));
    let export_file = work.join("export.oms-export");
    let imported = work.join("imported");
    let hidden = Progress::hidden();
    let started = Instant::now();
    let events = match op {
        "verify" | "verify-again" => {
            verify::verify_log(&log_dir, None, &hidden)
                .map_err(|e| e.to_string())?
                .report
                .events
        }
        "dump" => {
            let reader = LogReader::open(&log_dir).map_err(|e| e.to_string())?;
            let mut sink = BufWriter::with_capacity(1 << 20, File::create("/dev/null").unwrap());
            dump::dump(
                &reader,
                &dump::Filter {
                    to: u64::MAX,
                    ..Default::default()
                },
                &mut sink,
                &hidden,
            )
            .map_err(|e| e.to_string())?
            .matched
        }
        "export" => {
            let reader = LogReader::open(&log_dir).map_err(|e| e.to_string())?;
            let mut file = BufWriter::with_capacity(1 << 20, File::create(&export_file).unwrap());
            export::export(&reader, &mut file, &hidden)
                .map_err(|e| e.to_string())?
                .events
        }
        "import" => {
            let _ = std::fs::remove_dir_all(&imported);
            let file = File::open(&export_file).map_err(|e| e.to_string())?;
            let limit = std::time::Duration::from_secs(import::FLUSH_STALL_SECS);
            import::import(file, &imported, &[], limit, &hidden)
                .map_err(|e| e.to_string())?
                .events
        }
        "rebuild" | "rebuild-over" => {
            if op == "rebuild" {
                let _ = std::fs::remove_dir_all(work.join("log").join("projections"));
            }
            let log = log_dir.open_log().map_err(|e| e.to_string())?;
            let reports =
                replay_tools::projection::rebuild(&log, &[], &hidden).map_err(|e| e.to_string())?;
            let events = reports.first().map_or(0, |r| r.events);
            replay_tools::datadir::close_log(log).map_err(|e| e.to_string())?;
            events
        }
        other => return Err(format!("unknown operation {other}")),
    };
    let secs = started.elapsed().as_secs_f64();
    println!("RESULT {op} {events} {secs} {}", peak_rss_mb());
    Ok(())
}

struct Row {
    op: &'static str,
    events: u64,
    secs: f64,
    peak_rss_mb: f64,
}

fn run_child(exe: &Path, op: &'static str, work: &Path) -> Option<Row> {
    let mut child = Command::new(exe);
    child.arg("--measure").arg(op).arg(work);
    // As `oms-replay` runs every command.
    child.envs(replay_tools::allocator::LEAN_SETTINGS);
    let output = child.output().ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|l| l.starts_with("RESULT "));
    let Some(line) = line else {
        eprintln!("  {op}: {}", String::from_utf8_lossy(&output.stderr).trim());
        return None;
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    Some(Row {
        op,
        events: fields.get(2)?.parse().ok()?,
        secs: fields.get(3)?.parse().ok()?,
        peak_rss_mb: fields.get(4)?.parse().ok()?,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some([op, work]) = args.measure.as_deref() {
        return match measure(op, Path::new(work)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    let scratch = tempfile::tempdir().unwrap();
    let work = args
        .keep
        .clone()
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&work).unwrap();
    let log_dir = work.join("log");
    eprintln!(
        "generating a log of at least {} events in {}...",
        args.events,
        log_dir.display()
    );
    let started = Instant::now();
    let events = generate(&log_dir, args.events);
    eprintln!(
        "generated {events} events in {:.1} s; measuring each operation in its own process",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_file(work.join("export.oms-export"));
    // Other crates also have an example named `bench` in the same target
    // directory: re-exec a private copy of this binary, not the shared path.
    let exe = scratch.path().join("replay-bench");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let mut rows = Vec::new();
    println!(
        "{:<12} {:>10} {:>9} {:>13} {:>12}",
        "op", "events", "seconds", "events/s", "peak RSS MB"
    );
    for op in OPERATIONS {
        match run_child(&exe, op, &work) {
            Some(row) => {
                println!(
                    "{:<12} {:>10} {:>9.2} {:>13.0} {:>12.1}",
                    row.op,
                    row.events,
                    row.secs,
                    row.events as f64 / row.secs,
                    row.peak_rss_mb
                );
                rows.push(row);
            }
            None => println!("{op:<12} {:>10}", "n/a"),
        }
    }
    let export_bytes = std::fs::metadata(work.join("export.oms-export")).map_or(0, |m| m.len());
    println!("export file: {:.1} MB", export_bytes as f64 / 1e6);
    if let Some(path) = &args.json {
        let mut object = serde_json::Map::new();
        object.insert("events".into(), events.into());
        for row in &rows {
            object.insert(
                row.op.into(),
                serde_json::json!({
                    "events": row.events,
                    "seconds": row.secs,
                    "events_per_s": row.events as f64 / row.secs,
                    "peak_rss_mb": row.peak_rss_mb,
                }),
            );
        }
        std::fs::write(path, serde_json::to_string_pretty(&object).unwrap() + "\n").unwrap();
    }
    ExitCode::SUCCESS
}
