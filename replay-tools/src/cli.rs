//! The command line: arguments (clap), dispatch to one module per
//! subcommand, and the one place where errors become messages and exit
//! codes (see [`crate::error`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::commands::{
    as_of, consumers, dump, export, import, rebuild, reset_consumer, stats, trace, verify,
};
use crate::datadir::DataDir;
use crate::error::{ReplayError, EXIT_FINDING, EXIT_OK, EXIT_USAGE};
use crate::output::Out;
use crate::progress::Progress;
use crate::reader::LogReader;

/// `oms-replay`: audit and incident recovery on an OMS data directory.
///
/// Works on a stopped server's data directory. If a running server holds the
/// directory, it says so (exit 3) and names the admin GraphQL mutation that
/// does the same job online.
///
/// Exit codes: 0 ok, 1 a finding (damaged log, digest mismatch, refused
/// reset), 2 usage or bad input, 3 data directory held by a running server,
/// 4 I/O or other errors. Output into a pipe whose reader stopped early
/// (`| head`) ends with 0, except an export's, which is then incomplete (4).
#[derive(Debug, Parser)]
#[command(name = "oms-replay", version, propagate_version = true)]
pub struct Cli {
    /// The data directory of the event log.
    #[arg(
        long,
        global = true,
        env = "OMS_DATA_DIR",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// Print machine-readable JSON on stdout (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// Never draw progress bars (they are drawn only on a terminal anyway).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every record's hash, the chain, dense positions, the stream index and heads; name the first bad position.
    Verify(verify::VerifyArgs),
    /// Print events as JSON lines with decoded payloads, filtered.
    Dump(dump::DumpArgs),
    /// The state of one aggregate at a position or time, and the events that led there.
    AsOf(as_of::AsOfArgs),
    /// The causal tree of commands and events of one correlation id.
    Trace(trace::TraceArgs),
    /// Every consumer and projector with checkpoint, lag and last error.
    Consumers(consumers::ConsumersArgs),
    /// Rebuild one or all projections from position 0, swapping them in when caught up.
    Rebuild(rebuild::RebuildArgs),
    /// Move a consumer's checkpoint (side-effect consumers need --recovery).
    ResetConsumer(reset_consumer::ResetConsumerArgs),
    /// Write a portable, verifiable export file (one event per line).
    Export(export::ExportArgs),
    /// Import an export file into an empty data directory, re-verifying the chain.
    Import(import::ImportArgs),
    /// Events per type, tenant and day; streams; bytes on disk.
    Stats(stats::StatsArgs),
}

/// What every subcommand gets: where the data is and how to print.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The data directory.
    pub dir: DataDir,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
}

impl Ctx {
    /// A progress bar for walking `total` events (hidden with `--quiet`).
    pub fn progress(&self, label: &str, total: Option<u64>) -> Progress {
        Progress::new(label, total, !self.quiet)
    }

    /// Opens the log raw for reading ([`LogReader::open`]). A log that ends
    /// before the head last acknowledged (sled's recovery cut it at a
    /// damaged spot), or that an import did not finish writing, is still
    /// read, with a warning on stderr that is never suppressed: what the
    /// command shows lacks events. So is one whose acknowledged-head check
    /// cannot be made ([`eventlog::acknowledged_head_warning`]).
    ///
    /// # Errors
    /// As [`LogReader::open`].
    pub fn read_log(&self) -> Result<LogReader, ReplayError> {
        let reader = LogReader::open(&self.dir)?;
        let events = reader.next_position()?;
        if let Err(problem) = eventlog::check_restore_finished(reader.tree()) {
            crate::stderr_line!(
                "oms-replay: warning: {problem}; what follows is the part it wrote, \
                 without the rest of the log or its idempotency records"
            );
        } else if let Err(problem) =
            eventlog::check_acknowledged(self.dir.path(), reader.tree(), events)
        {
            crate::stderr_line!(
                "oms-replay: warning: {problem}; what follows is the log as it stands, \
                 without them (`oms-replay verify` reports the damage)"
            );
        } else if let Some(warning) = eventlog::acknowledged_head_warning(self.dir.path(), events) {
            crate::stderr_line!("oms-replay: warning: {warning}");
        }
        Ok(reader)
    }

    /// A note for the operator on stderr (suppressed with `--quiet`).
    pub fn note(&self, text: impl std::fmt::Display) {
        if !self.quiet {
            crate::stderr_line!("{text}");
        }
    }
}

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out.
    Clean,
    /// The command ran and found something (exit 1): a damaged log, a
    /// digest mismatch.
    Finding,
}

/// Parses the process arguments, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    // clap reads an empty OMS_DATA_DIR as an empty `--data-dir`, even
    // beside a `--data-dir` that overrides it, and says "a value is
    // required for '--data-dir'" of a flag nobody passed: an empty one is
    // read as unset, and refused below unless the flag names a directory.
    let empty_env = std::env::var_os("OMS_DATA_DIR").is_some_and(|v| v.is_empty());
    if empty_env {
        std::env::remove_var("OMS_DATA_DIR");
    }
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        let defaulted =
            matches.value_source("data_dir") == Some(clap::parser::ValueSource::DefaultValue);
        Cli::from_arg_matches(&matches).map(|cli| (cli, defaulted))
    });
    let cli = match parsed {
        Ok((cli, defaulted)) if empty_env && defaulted => {
            let message = "OMS_DATA_DIR is set but empty: set it to a data directory, unset it \
                           (the default is ./data), or pass --data-dir";
            crate::stderr_line!("oms-replay: {message}");
            if cli.json {
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout(), "{}", usage_error_json(message));
            }
            return ExitCode::from(EXIT_USAGE);
        }
        Ok((cli, _)) => cli,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return ExitCode::from(EXIT_OK);
            }
            // `--json` promises JSON for errors too: a command line clap
            // refuses still gets its error object on stdout.
            if asks_for_json(std::env::args_os().skip(1)) {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    usage_error_json(&e.render().to_string())
                );
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    crate::allocator::run_with_lean_settings();
    crate::interrupt::install();
    show_warnings();
    ExitCode::from(run(cli))
}

/// Shows the libraries' warnings on stderr, one line each: what they
/// changed or found on the way (the log set a damaged read-model database
/// aside, removed a snapshot sled did not finish), which a command's own
/// report does not say. Errors are not shown here: each comes back to the
/// command, which reports it once.
fn show_warnings() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::Layer as _;
    let warnings = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            *meta.level() == tracing::Level::WARN
        }));
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(warnings));
}

/// Whether a command line clap refused still asked for `--json` (before
/// any `--`, after which every word is a value).
fn asks_for_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// The error object of a refused command line (as [`report_error`] writes
/// every other error).
fn usage_error_json(message: &str) -> serde_json::Value {
    serde_json::json!({
        "ok": false,
        "error": {
            "kind": "usage",
            "exit_code": EXIT_USAGE,
            "message": message.trim_end(),
        }
    })
}

/// Runs a parsed command line; prints errors (as JSON too with `--json`)
/// and returns the exit code.
pub fn run(cli: Cli) -> u8 {
    let ctx = Ctx {
        dir: DataDir::new(cli.data_dir),
        json: cli.json,
        quiet: cli.quiet,
    };
    let mut out = Out::stdout();
    // A reader that stopped early (`| head`) ends a listing quietly; an
    // export cut short is an incomplete file, so it fails.
    let whole_output_needed = matches!(cli.command, Command::Export(_));
    // Commands that change the directory report once the change is made.
    let changes = matches!(
        cli.command,
        Command::Import(_) | Command::ResetConsumer(_) | Command::Rebuild(_)
    );
    let result = ctx
        .dir
        .require_not_a_file()
        .and_then(|()| dispatch(cli.command, &ctx, &mut out))
        .and_then(|o| match out.flush() {
            // A reader that stopped early has what it wanted; a finding
            // stands whether or not its report was written (`verify` says
            // it on stderr then).
            Err(e) if (e.is_broken_pipe() && !whole_output_needed) || o == Outcome::Finding => {
                Ok(o)
            }
            flushed => flushed.map(|()| o),
        })
        .map_err(|e| match e {
            e if e.is_broken_pipe() && whole_output_needed => ReplayError::io(
                "writing the export: its reader closed the pipe before the end, so what it \
                 received is cut short",
                std::io::ErrorKind::BrokenPipe.into(),
            ),
            e => e,
        });
    match result {
        Ok(Outcome::Clean) => EXIT_OK,
        Ok(Outcome::Finding) => EXIT_FINDING,
        Err(e) if e.is_broken_pipe() && !whole_output_needed => EXIT_OK,
        // A re-probe: an import whose summary met a full disk said it
        // failed, and a second import into the directory is refused.
        Err(e) if changes && e.is_output_write() => {
            crate::stderr_line!(
                "oms-replay: done: the change was made, but its report could not be written ({e})"
            );
            EXIT_OK
        }
        Err(e) => {
            report_error(&ctx, &mut out, &e);
            e.exit_code()
        }
    }
}

fn dispatch(command: Command, ctx: &Ctx, out: &mut Out) -> Result<Outcome, ReplayError> {
    match command {
        Command::Verify(args) => verify::run(&args, ctx, out),
        Command::Dump(args) => dump::run(&args, ctx, out),
        Command::AsOf(args) => as_of::run(&args, ctx, out),
        Command::Trace(args) => trace::run(&args, ctx, out),
        Command::Consumers(args) => consumers::run(&args, ctx, out),
        Command::Rebuild(args) => rebuild::run(&args, ctx, out),
        Command::ResetConsumer(args) => reset_consumer::run(&args, ctx, out),
        Command::Export(args) => export::run(&args, ctx, out),
        Command::Import(args) => import::run(&args, ctx, out),
        Command::Stats(args) => stats::run(&args, ctx, out),
    }
}

fn report_error(ctx: &Ctx, out: &mut Out, error: &ReplayError) {
    crate::stderr_line!("oms-replay: {error}");
    if ctx.json {
        let mut value = serde_json::json!({
            "ok": false,
            "error": {
                "kind": error.kind(),
                "exit_code": error.exit_code(),
                "message": error.to_string(),
            }
        });
        if let ReplayError::Damaged { position, problem } = error {
            value["error"]["position"] = (*position).into();
            value["error"]["problem"] = problem.as_str().into();
        }
        let _ = out.json(&value);
        let _ = out.flush();
    }
}
