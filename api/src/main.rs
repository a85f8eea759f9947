//! `oms-server`: runs the platform, prints the GraphQL schema, or hashes a
//! token for the configuration file.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use api::config::ServerConfig;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the GraphQL executor allocates and
/// frees many small objects per field from every worker thread, and glibc's
/// arenas spent a third of the server's CPU on a page of order journeys
/// (ADR 0016).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The CPQ/OMS event platform server.
#[derive(Parser)]
#[command(name = "oms-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the platform: log, projectors, fulfillment, reconciliation,
    /// simulators (by default) and the GraphQL server.
    Serve {
        /// Configuration file (TOML). Without one, the embedded default.
        #[arg(long, env = "OMS_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (overrides the file and `OMS_DATA_DIR`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listen address, e.g. 127.0.0.1:8080 (overrides the file and `OMS_LISTEN`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print the GraphQL schema (SDL), as committed in `schema.graphql`.
    Schema,
    /// Read a token on standard input and print its sha256, for
    /// `token_sha256` in the configuration file.
    HashToken,
}

fn main() -> ExitCode {
    // An empty `OMS_CONFIG=` (an EnvironmentFile's blank line) is named as
    // such: clap said a value was required for `--config`, a flag nobody
    // passed. A `--config` flag overrides it.
    let empty_config = std::env::var_os("OMS_CONFIG").is_some_and(|v| v.is_empty());
    if empty_config {
        std::env::remove_var("OMS_CONFIG");
    }
    let cli = Cli::parse();
    if let Command::Serve { config: None, .. } = &cli.command {
        if empty_config {
            api::stderr_line!(
                "oms-server: OMS_CONFIG is set but empty: set it to a configuration file, unset \
                 it (the embedded default), or pass --config"
            );
            return ExitCode::from(2);
        }
    }
    match cli.command {
        Command::Schema => print_out(&api::graphql::sdl()),
        Command::HashToken => {
            let mut token = String::new();
            if let Err(error) = std::io::stdin().read_to_string(&mut token) {
                api::stderr_line!("oms-server: cannot read the token: {error}");
                return ExitCode::from(2);
            }
            // One line break at the end is the shell's, not the token's.
            let token = token
                .strip_suffix('\n')
                .map_or(token.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            if let Some(problem) = api::auth::unpresentable(token) {
                api::stderr_line!("oms-server: {problem}: pass the token alone on standard input");
                return ExitCode::from(2);
            }
            if let Some(problem) = api::auth::too_weak(token) {
                api::stderr_line!("oms-server: {problem}");
                return ExitCode::from(2);
            }
            print_out(&format!(
                "{}\n",
                hex::encode(api::auth::token_digest(token))
            ))
        }
        Command::Serve {
            config,
            data_dir,
            listen,
        } => serve(config, data_dir, listen),
    }
}

/// Writes `text` to standard output: exit 0, also when the reader went
/// away early (`oms-server schema | head`); a write that fails otherwise
/// (a full disk) is one line on stderr and exit 1.
fn print_out(text: &str) -> ExitCode {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            api::stderr_line!("oms-server: cannot write to standard output: {error}");
            ExitCode::from(1)
        }
    }
}

fn serve(config: Option<PathBuf>, data_dir: Option<PathBuf>, listen: Option<String>) -> ExitCode {
    let flags = api::config::Flags { data_dir, listen };
    let config = match ServerConfig::load_with(config.as_deref(), &flags) {
        Ok(config) => config,
        Err(error) => {
            api::stderr_line!("oms-server: {error}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            api::stderr_line!("oms-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = {
        let _inside = runtime.enter();
        shutdown_signal()
    };
    let result = runtime.block_on(api::server::run(config, shutdown, |address| {
        api::stdout_line!("oms-server: listening on http://{address}");
        api::stdout_line!("oms-server: GraphiQL at http://{address}/");
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            api::stderr_line!("oms-server: {error}");
            exit_code(&error)
        }
    }
}

/// The exit code of a server that could not run: 2 for configuration
/// (the configuration file, environment or stored credentials: fix them
/// and start again), 1 for everything else (a damaged log, which
/// `oms-replay verify` explains, or a failure to start).
fn exit_code(error: &api::server::ServerError) -> ExitCode {
    match error {
        api::server::ServerError::Config(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log line that cannot be written is lost; reporting it with
        // `eprintln!` (the default) panicked every task that logged while
        // stderr was full or closed, and the drain with them.
        .log_internal_errors(false);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM, Ctrl-C (SIGINT) or SIGHUP (the terminal or the
/// session that started the server went away): each drains and exits 0.
/// SIGHUP used to kill the process without draining, leaving in-flight
/// dispatches to the next start's reconciliation. The handlers are
/// installed when this is called (inside the runtime, before the server
/// listens), not when the future is first polled: a SIGTERM that comes
/// right after "listening" drains and exits 0 instead of killing the
/// process. A Ctrl-C (SIGINT) during the drain stops the process at once
/// with exit 1, as a crash would (the log and the fulfillment process are
/// crash-safe; a restart resumes); another SIGTERM or SIGHUP changes
/// nothing (the drain is bounded).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{signal, SignalKind};
        [
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::hangup()).ok(),
        ]
    };
    async move {
        #[cfg(unix)]
        {
            any_signal(&mut signals).await;
            // Only an operator's second Ctrl-C forces the exit: a
            // supervisor or a script may send SIGTERM more than once, and
            // the drain is bounded anyway.
            let [_, mut interrupt, _] = signals;
            tokio::spawn(async move {
                next_of(&mut interrupt).await;
                tracing::warn!("Ctrl-C during the drain: stopping now, without draining");
                std::process::exit(1);
            });
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The next of `signals` to arrive.
#[cfg(unix)]
async fn any_signal(signals: &mut [Option<tokio::signal::unix::Signal>; 3]) {
    let [terminate, interrupt, hangup] = signals;
    tokio::select! {
        () = next_of(terminate) => {},
        () = next_of(interrupt) => {},
        () = next_of(hangup) => {},
    }
}

/// The next delivery of `signal`; never when it could not be installed.
#[cfg(unix)]
async fn next_of(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
