//! The event log benchmark: durable appends at 1, 8, 64 and 256 clients
//! appending 1 or 10 events per request, against SQLite (WAL,
//! synchronous=FULL) on the same disk with the same workload, the disk's own
//! fdatasync limit, 100-event batches, and a scan and a verify of a
//! 1,000,000-event log.
//!
//! This machine's fdatasync latency flips between about 0.2 ms and 4 ms for
//! minutes at a time, so the append cells run in interleaved rounds (every
//! cell of both peers once per round, each beside a disk probe) and the
//! medians are reported; ratios are taken between medians of the same run.
//!
//! What each side promises on an acknowledgement: the event log, that the
//! append is on disk (its redo journal frame fdatasynced) and survives a power
//! cut; SQLite with WAL and synchronous=FULL, the same (the WAL is fsynced
//! at every commit).
//!
//! With `--features umadb-peer`, UmaDB 0.7.8 (embedded, its default durable
//! options, conditional appends; see `umadb.rs`) runs every append cell
//! beside the two, and both read 200,000 events from the start.
//!
//! Run with `cargo run --release -p eventlog --example log_bench
//! [--features umadb-peer] -- [--json FILE] [--seconds S] [--rounds R]
//! [--events N] [--clients N]...`.

#![allow(clippy::cast_possible_truncation)]

#[cfg(feature = "umadb-peer")]
mod umadb;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use eventlog::{AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig, NewEvent};

#[derive(Default, Clone)]
struct Row {
    name: String,
    events_per_s: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    ratio_vs_sqlite: Option<f64>,
    /// Median fdatasync latency of the disk probes beside the cell, ms.
    disk_ms: Option<f64>,
    events_per_fsync: Option<f64>,
    peak_rss_mb: Option<f64>,
}

/// The event log benchmark.
#[derive(Parser)]
#[command(name = "log_bench")]
struct Args {
    /// Internal: measure scan and verify of an existing log in this process.
    #[arg(long = "measure-scan", value_name = "DIR", hide = true)]
    measure: Option<String>,
    /// Also write the figures as a JSON array to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Duration of each append workload, in seconds.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    seconds: f64,
    /// Size of the log for scan_1m and verify_1m.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    events: u64,
    /// Rounds of the append cells; medians are reported.
    #[arg(long, value_name = "R", default_value_t = 3)]
    rounds: usize,
    /// Run only the append cells with this many clients (repeatable), and
    /// skip the batch, scan and verify rows; every row when absent.
    /// Accepts only the client counts of the cells: 1, 8, 64 or 256.
    #[arg(long = "clients", value_name = "N", value_parser = cell_clients)]
    clients: Vec<usize>,
}

/// Parses a `--clients` value: a client count some append cell runs, so a
/// count no cell has is refused instead of running nothing.
fn cell_clients(value: &str) -> Result<usize, String> {
    let clients: usize = value
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number"))?;
    let mut counts: Vec<usize> = CELLS.iter().map(|(writers, _)| *writers).collect();
    counts.sort_unstable();
    counts.dedup();
    if counts.contains(&clients) {
        Ok(clients)
    } else {
        let known: Vec<String> = counts.iter().map(ToString::to_string).collect();
        Err(format!(
            "no append cell has {clients} clients; the cells have {}",
            known.join(", ")
        ))
    }
}

/// The append cells: (clients, events per request).
const CELLS: [(usize, u64); 6] = [(1, 1), (8, 1), (64, 1), (256, 1), (8, 10), (64, 10)];

/// A cell's name: `c64` for single events, `c64x10` for 10 per request.
fn cell_name(prefix: &str, writers: usize, per_append: u64) -> String {
    if per_append == 1 {
        format!("{prefix}_c{writers}")
    } else {
        format!("{prefix}_c{writers}x{per_append}")
    }
}

/// The `per_mille`-th per-mille of sorted latencies, in microseconds.
fn percentile(sorted: &[Duration], per_mille: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = (sorted.len() - 1) * per_mille / 1000;
    sorted[index].as_secs_f64() * 1e6
}

fn payload(i: u64) -> Vec<u8> {
    // About the size of a small domain event.
    let mut p = format!("{{\"quote\":\"q-{i}\",\"line\":3,\"offering\":\"fiber-1g\",\"qty\":1}}")
        .into_bytes();
    p.resize(160, b' ');
    p
}

fn event(i: u64) -> NewEvent {
    NewEvent::new("LineAdded", "tenant-bench", format!("corr-{i}"), payload(i))
}

/// Runs `client(i, stop)` as `writers` concurrent tasks for `seconds`, then
/// sets `stop`; each task returns its request latencies. Returns every
/// latency, sorted, and the elapsed seconds.
async fn clients<F>(
    writers: usize,
    seconds: f64,
    client: impl Fn(usize, Arc<AtomicBool>) -> F,
) -> (Vec<Duration>, f64)
where
    F: std::future::Future<Output = Vec<Duration>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| tokio::spawn(client(w, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    latencies.sort();
    (latencies, started.elapsed().as_secs_f64())
}

/// A cell's row from its sorted request latencies.
fn latency_row(name: String, latencies: &[Duration], per_append: u64, elapsed: f64) -> Row {
    Row {
        name,
        events_per_s: latencies.len() as f64 * per_append as f64 / elapsed,
        p50_us: Some(percentile(latencies, 500)),
        p99_us: Some(percentile(latencies, 990)),
        ..Row::default()
    }
}

/// A multi-threaded runtime on both cores, as the server runs.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Durable appends of `per_append` events from `writers` concurrent tasks
/// to distinct streams.
fn sled_appends(writers: usize, per_append: u64, seconds: f64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    runtime().block_on(async {
        let log = EventLog::open(LogConfig::new(dir.path())).expect("open");
        let (latencies, elapsed) = clients(writers, seconds, |w, stop| {
            let log = log.clone();
            async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let request = AppendRequest::new(
                        format!("quote-{w}"),
                        ExpectedVersion::Exact(i),
                        (i..i + per_append).map(event).collect(),
                    );
                    log.append(request).await.expect("append");
                    latencies.push(t.elapsed());
                    i += per_append;
                }
                latencies
            }
        })
        .await;
        let stats = log.writer_stats();
        log.close().await;
        let name = cell_name("append", writers, per_append);
        Row {
            events_per_fsync: Some(stats.events_written as f64 / stats.group_commits.max(1) as f64),
            ..latency_row(name, &latencies, per_append, elapsed)
        }
    })
}

/// 100-event durable batches from one writer.
fn sled_batches(seconds: f64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(LogConfig::new(dir.path())).expect("open");
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut version = 0;
    while started.elapsed().as_secs_f64() < seconds {
        let events = (0..100).map(|k| event(version + k)).collect();
        let t = Instant::now();
        let outcome = log
            .append_blocking(AppendRequest::new(
                "batch",
                ExpectedVersion::Exact(version),
                events,
            ))
            .expect("append");
        latencies.push(t.elapsed());
        version = outcome.stream_version;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = log.writer_stats();
    latencies.sort();
    Row {
        name: "append_batch100".into(),
        events_per_s: version as f64 / elapsed,
        p50_us: Some(percentile(&latencies, 500)),
        p99_us: Some(percentile(&latencies, 990)),
        events_per_fsync: Some(stats.events_written as f64 / stats.group_commits.max(1) as f64),
        ..Row::default()
    }
}

/// The same workload on SQLite, WAL, synchronous=FULL, one transaction per
/// append (a conditional one: it reads the stream's version first), one
/// connection per writer thread (SQLite serialises writers with its own
/// lock; busy writers wait in busy_timeout).
fn sqlite_appends(writers: usize, per_append: u64, seconds: f64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("sqlite open");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL,
                                  event_type TEXT NOT NULL, payload BLOB NOT NULL, UNIQUE(stream_id, version));",
        )
        .expect("schema");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let path = path.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut conn = rusqlite::Connection::open(&path).expect("sqlite open");
                conn.execute_batch("PRAGMA synchronous=FULL;").expect("pragma");
                conn.busy_timeout(Duration::from_secs(60)).expect("busy timeout");
                let mut latencies = Vec::new();
                let mut i = 0u64;
                let stream = format!("quote-{w}");
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
                    let current: i64 = tx
                        .query_row("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream_id = ?1", [&stream], |r| r.get(0))
                        .expect("select");
                    assert_eq!(current as u64, i, "expected version");
                    for k in 0..per_append {
                        tx.execute(
                            "INSERT INTO events (stream_id, version, event_type, payload) VALUES (?1, ?2, 'LineAdded', ?3)",
                            rusqlite::params![stream, current + 1 + k as i64, payload(i + k)],
                        )
                        .expect("insert");
                    }
                    tx.commit().expect("commit");
                    latencies.push(t.elapsed());
                    i += per_append;
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in threads {
        latencies.extend(t.join().expect("thread"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Row {
        name: cell_name("sqlite", writers, per_append),
        events_per_s: latencies.len() as f64 * per_append as f64 / elapsed,
        p50_us: Some(percentile(&latencies, 500)),
        p99_us: Some(percentile(&latencies, 990)),
        ..Row::default()
    }
}

/// 256-byte writes each followed by fdatasync on one file.
fn disk_fdatasync(seconds: f64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = std::fs::File::create(dir.path().join("sync")).expect("create");
    let block = [7u8; 256];
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        file.write_all(&block).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Row {
        name: "disk_fdatasync".into(),
        events_per_s: latencies.len() as f64 / elapsed,
        p50_us: Some(percentile(&latencies, 500)),
        p99_us: Some(percentile(&latencies, 990)),
        ..Row::default()
    }
}

/// Peak resident set since the last reset, in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Events read from the start by the read cells.
#[cfg(feature = "umadb-peer")]
const READ_EVENTS: u64 = 200_000;

/// Builds a log of `events` events, then reads them all from the start in
/// this process (the event log's side of the UmaDB read cell).
#[cfg(feature = "umadb-peer")]
fn read_from_start(events: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    build_log(events, dir.path());
    let log = EventLog::open(LogConfig::new(dir.path())).expect("reopen");
    let started = Instant::now();
    let mut count = 0u64;
    for record in log.iter_all(0) {
        assert!(!record.expect("record").payload.is_empty());
        count += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(count, events);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(log.close());
    Row {
        name: format!("read_{}k", events / 1000),
        events_per_s: count as f64 / seconds,
        ..Row::default()
    }
}

/// Builds a log of `events` events (buffered, large batches) in `dir`.
fn build_log(events: u64, dir: &Path) {
    let log = EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).expect("open");
    let mut written = 0u64;
    let mut versions = vec![0u64; 1000];
    while written < events {
        let stream = (written / 100 % 1000) as usize;
        let count = 100.min(events - written);
        let batch = (0..count).map(|k| event(written + k)).collect();
        let request = AppendRequest::new(
            format!("quote-{stream}"),
            ExpectedVersion::Exact(versions[stream]),
            batch,
        );
        versions[stream] = log.append_blocking(request).expect("append").stream_version;
        written += count;
    }
    log.flush().expect("flush");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(log.close());
}

/// In a fresh process (so peak RSS is the scan's own): a full scan, then a
/// full verify, each printed as `name events_per_s peak_rss_mb`.
fn measure_scan_and_verify(dir: &Path) {
    let mut config = LogConfig::new(dir);
    config.cache_capacity_bytes = 64 * 1024 * 1024;
    let log = EventLog::open(config).expect("reopen");
    let events = log.next_position();
    reset_peak_rss();
    let started = Instant::now();
    let mut count = 0u64;
    for record in log.iter_all(0) {
        let record = record.expect("record");
        assert_eq!(record.position, count);
        count += 1;
    }
    let scan_s = started.elapsed().as_secs_f64();
    assert_eq!(count, events);
    println!(
        "scan_1m {} {}",
        events as f64 / scan_s,
        peak_rss_mb().unwrap_or(0.0)
    );
    reset_peak_rss();
    let started = Instant::now();
    let report = log.verify(&mut |_| {}).expect("verify");
    let verify_s = started.elapsed().as_secs_f64();
    assert_eq!(report.events, events);
    println!(
        "verify_1m {} {}",
        events as f64 / verify_s,
        peak_rss_mb().unwrap_or(0.0)
    );
}

/// Runs [`measure_scan_and_verify`] in a child process and reads its rows.
fn scan_and_verify(dir: &Path) -> Vec<Row> {
    let exe = std::env::current_exe().expect("current exe");
    let output = std::process::Command::new(exe)
        .arg("--measure-scan")
        .arg(dir)
        .output()
        .expect("run the measuring child");
    assert!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next()?.to_owned();
            let events_per_s = parts.next()?.parse().ok()?;
            let rss = parts.next()?.parse().ok()?;
            Some(Row {
                name,
                events_per_s,
                peak_rss_mb: Some(rss),
                ..Row::default()
            })
        })
        .collect()
}

/// Per row name, the row of the median events/s over the rounds (its own
/// latencies and disk probe), with the median of the disk probes.
fn medians(samples: &[Vec<Row>]) -> Vec<Row> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|template| {
            let mut cells: Vec<&Row> = samples
                .iter()
                .filter_map(|round| round.iter().find(|r| r.name == template.name))
                .collect();
            cells.sort_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
            let mut probes: Vec<f64> = cells.iter().filter_map(|r| r.disk_ms).collect();
            probes.sort_by(f64::total_cmp);
            let mut row = cells[cells.len() / 2].clone();
            row.disk_ms = probes.get(probes.len() / 2).copied();
            row
        })
        .collect()
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn json(rows: &[Row]) -> String {
    let objects: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut fields = vec![
                format!("\"name\": \"{}\"", r.name),
                format!("\"events_per_s\": {:.1}", r.events_per_s),
            ];
            let optional = [
                ("p50_us", r.p50_us),
                ("p99_us", r.p99_us),
                ("ratio_vs_sqlite", r.ratio_vs_sqlite),
                ("disk_ms", r.disk_ms),
                ("events_per_fsync", r.events_per_fsync),
                ("peak_rss_mb", r.peak_rss_mb),
            ];
            for (name, value) in optional {
                if let Some(v) = value {
                    fields.push(format!("\"{name}\": {v:.2}"));
                }
            }
            format!("  {{{}}}", fields.join(", "))
        })
        .collect();
    format!("[\n{}\n]\n", objects.join(",\n"))
}

/// The cells to run: those with a client count in `clients`, or all.
fn selected(clients: &[usize]) -> Vec<(usize, u64)> {
    CELLS
        .into_iter()
        .filter(|(writers, _)| clients.is_empty() || clients.contains(writers))
        .collect()
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.measure {
        measure_scan_and_verify(Path::new(dir));
        return std::process::ExitCode::SUCCESS;
    }
    let probe_dir = tempfile::tempdir().expect("tempdir");
    let probe = || eventlog::probe::fdatasync_ms(probe_dir.path()).unwrap_or(f64::NAN);
    let rounds = args.rounds.max(1);
    // Every round runs every cell of both peers once, in turn.
    let mut samples: Vec<Vec<Row>> = Vec::new();
    for round in 1..=rounds {
        let mut this_round = Vec::new();
        let disk = probe();
        let mut fdatasync = disk_fdatasync(args.seconds.min(2.0));
        fdatasync.disk_ms = Some(disk);
        eprintln!(
            "round {round}: disk_fdatasync {:.0}/s (probe {disk:.2} ms)",
            fdatasync.events_per_s
        );
        this_round.push(fdatasync);
        for (writers, per_append) in selected(&args.clients) {
            let disk = probe();
            let mut ours = sled_appends(writers, per_append, args.seconds);
            ours.disk_ms = Some(disk);
            let disk = probe();
            let mut sqlite = sqlite_appends(writers, per_append, args.seconds);
            sqlite.disk_ms = Some(disk);
            eprintln!(
                "round {round}: {:<16} {:>9.0}/s (probe {:.2} ms)  {:<16} {:>9.0}/s (probe {:.2} ms)",
                ours.name,
                ours.events_per_s,
                ours.disk_ms.unwrap_or(f64::NAN),
                sqlite.name,
                sqlite.events_per_s,
                sqlite.disk_ms.unwrap_or(f64::NAN),
            );
            this_round.push(ours);
            this_round.push(sqlite);
            #[cfg(feature = "umadb-peer")]
            {
                let disk = probe();
                let mut uma = umadb::appends(writers, per_append, args.seconds);
                uma.disk_ms = Some(disk);
                eprintln!(
                    "round {round}: {:<16} {:>9.0}/s (probe {disk:.2} ms)",
                    uma.name, uma.events_per_s
                );
                this_round.push(uma);
            }
        }
        #[cfg(feature = "umadb-peer")]
        {
            this_round.push(read_from_start(READ_EVENTS));
            this_round.push(umadb::read_from_start(READ_EVENTS));
        }
        samples.push(this_round);
    }
    let mut rows = medians(&samples);
    for (writers, per_append) in CELLS {
        let sqlite = rows
            .iter()
            .find(|r| r.name == cell_name("sqlite", writers, per_append))
            .map(|r| r.events_per_s);
        if let (Some(ours), Some(sqlite)) = (
            rows.iter_mut()
                .find(|r| r.name == cell_name("append", writers, per_append)),
            sqlite,
        ) {
            ours.ratio_vs_sqlite = Some(ours.events_per_s / sqlite);
        }
    }
    #[cfg(feature = "umadb-peer")]
    for (writers, per_append) in CELLS {
        let uma = rows
            .iter()
            .find(|r| r.name == cell_name("umadb", writers, per_append))
            .map(|r| r.events_per_s);
        if let (Some(ours), Some(uma)) = (
            rows.iter()
                .find(|r| r.name == cell_name("append", writers, per_append))
                .map(|r| r.events_per_s),
            uma,
        ) {
            println!(
                "ratio_vs_umadb {:<14} {:.2}x (target >= 1x, issue 17)",
                cell_name("c", writers, per_append).trim_start_matches("c_"),
                ours / uma
            );
        }
    }
    if args.clients.is_empty() {
        rows.push(sled_batches(args.seconds));
        let dir = tempfile::tempdir().expect("tempdir");
        eprintln!(
            "building a log of {} events for scan and verify...",
            args.events
        );
        build_log(args.events, dir.path());
        rows.extend(scan_and_verify(dir.path()));
    }

    println!("medians over {rounds} rounds (append cells and disk_fdatasync):");
    println!(
        "{:<18} {:>12} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "name", "events/s", "p50 us", "p99 us", "vs sqlite", "ev/fsync", "rss MB", "disk ms"
    );
    for r in &rows {
        println!(
            "{:<18} {:>12.0} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}",
            r.name,
            r.events_per_s,
            fmt_opt(r.p50_us, 0),
            fmt_opt(r.p99_us, 0),
            fmt_opt(r.ratio_vs_sqlite, 1),
            fmt_opt(r.events_per_fsync, 1),
            fmt_opt(r.peak_rss_mb, 0),
            fmt_opt(r.disk_ms, 2),
        );
    }
    let rate = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.events_per_s);
    if let (Some(c1), Some(disk)) = (rate("append_c1"), rate("disk_fdatasync")) {
        println!(
            "ratio_c1_vs_fdatasync  {:.2}x (target 0.8x, issue 17)",
            c1 / disk
        );
    }
    if let Some(c64) = rows.iter().find(|r| r.name == "append_c64") {
        println!(
            "append_c64             {:.0} events/s (target 60000), {:.1}x sqlite (target 12x)",
            c64.events_per_s,
            c64.ratio_vs_sqlite.unwrap_or(f64::NAN)
        );
    }
    if let Some(path) = args.json {
        if let Err(e) = std::fs::write(&path, json(&rows)) {
            eprintln!("cannot write {path}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
