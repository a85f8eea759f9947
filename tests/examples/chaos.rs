//! The whole-platform chaos run, long mode (issue 12): the real
//! `oms-server` with the simulators' fault mix on, concurrent clients that
//! retry every unanswered command with the same command id, and N stops
//! alternately by SIGKILL and SIGTERM with restarts on the same data
//! directory and port. Prints the figures as one JSON line (and writes it
//! to `--json FILE`); exits 1 when a requirement does not hold.
//!
//! ```text
//! cargo build --release -p api -p replay-tools
//! cargo run --release -p tests --example chaos -- --cycles 50 --json chaos.json
//! ```
//!
//! The logic is `tests::chaos` (shared with `tests/tests/chaos.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tests::chaos::{self, ChaosOptions};

/// Whole-platform chaos: kills, restarts and faults under client load.
#[derive(Debug, Parser)]
#[command(name = "chaos")]
struct Args {
    /// Server stops (alternately SIGKILL and SIGTERM), each followed by a restart.
    #[arg(long, default_value_t = 50)]
    cycles: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Also write the JSON line to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Seed of the stop schedule (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Shortest up time between stops, in ms.
    #[arg(long, default_value_t = 2_000)]
    up_min_ms: u64,
    /// Longest up time between stops, in ms.
    #[arg(long, default_value_t = 8_000)]
    up_max_ms: u64,
    /// Longest down time, in ms.
    #[arg(long, default_value_t = 1_000)]
    down_max_ms: u64,
    /// Deadline of the quiet period after the last restart, in seconds.
    #[arg(long, default_value_t = 300)]
    settle_secs: u64,
    /// OMS_SIMULATOR_MIX (basis points per fault).
    #[arg(long, default_value = chaos::DEFAULT_MIX)]
    mix: String,
    /// OMS_SIMULATOR_HANG_MS (default: the server's, past the longest read timeout).
    #[arg(long)]
    hang_ms: Option<u64>,
    /// OMS_RECONCILIATION_INTERVAL_MS.
    #[arg(long, default_value_t = 300)]
    reconciliation_ms: u64,
    /// Extra server environment, `NAME=VALUE` (repeatable).
    #[arg(long = "server-env", value_name = "NAME=VALUE")]
    server_env: Vec<String>,
    /// The oms-server binary (default: next to this example).
    #[arg(long)]
    server: Option<PathBuf>,
    /// The oms-replay binary (default: next to oms-server).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// RUST_LOG of the server.
    #[arg(long, default_value = "warn")]
    log: String,
    /// Remove the data directory even when a requirement fails.
    #[arg(long)]
    no_keep: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut options = ChaosOptions::long(args.cycles);
    options.clients = args.clients;
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    options.up_min_ms = args.up_min_ms;
    options.up_max_ms = args.up_max_ms.max(args.up_min_ms);
    options.down_max_ms = args.down_max_ms;
    options.settle_deadline = Duration::from_secs(args.settle_secs);
    options.fault_mix = args.mix;
    options.hang_ms = args.hang_ms;
    options.reconciliation_interval_ms = args.reconciliation_ms;
    options.server_binary = args.server;
    options.replay_binary = args.replay;
    options.log = args.log;
    options.keep_on_failure = !args.no_keep;
    for pair in &args.server_env {
        match pair.split_once('=') {
            Some((name, value)) => options.server_env.push((name.to_owned(), value.to_owned())),
            None => {
                eprintln!("chaos: --server-env wants NAME=VALUE, got {pair:?}");
                return ExitCode::from(2);
            }
        }
    }
    let report = match chaos::run(&options) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("chaos: cannot run: {e}");
            return ExitCode::from(2);
        }
    };
    let line = report.json_line();
    println!("{line}");
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, format!("{line}\n")) {
            eprintln!("chaos: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let failures = report.failures();
    if failures.is_empty() {
        eprintln!("chaos: every requirement holds");
        ExitCode::SUCCESS
    } else {
        eprintln!("chaos: FAILED:\n- {}", failures.join("\n- "));
        for problem in &report.problems {
            eprintln!("  {problem}");
        }
        ExitCode::FAILURE
    }
}
