//! The command benchmark: quotes driven from creation to acceptance by 64
//! concurrent clients through the real command path on a durable log, and
//! the same workload in the same run through cqrs-es 0.5 on sqlite-es
//! (WAL, `synchronous=FULL`) and on postgres-es (the machine's PostgreSQL).
//!
//! Both peers run the very same `decide` and `evolve` of the quote: the
//! cqrs-es aggregate below wraps `QuoteDecider`, so the comparison is of
//! the storage and the framework, not of the business rules.
//!
//! The command path runs with and without its stream-state cache. The
//! peers are interleaved in rounds (`--rounds`, default 3), each cell with
//! the disk's `fdatasync` latency beside it, and the medians are reported:
//! this machine's disk flips between fast and slow for minutes at a time.
//!
//! Run with `cargo run --release -p application --example command_bench -- [--json FILE]
//! [--quotes N] [--clients C] [--rounds R] [--postgres URL]`.

#![allow(clippy::cast_possible_truncation)]

use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use application::{CommandContext, CommandPath};
use clap::builder::RangedU64ValueParser;
use clap::Parser;
use cqrs_es::{Aggregate, CqrsFramework, EventStore};
use domain::idempotency::CommandKey;
use domain::ids::{quote_stream, QuoteId};
use domain::quote::{QuoteCommand, QuoteError, QuoteEvent, QuoteState};
use domain::testing::fixtures::{
    approval_policy, at, billing_account, customer, line, percent, price, proposal, signature,
    tenant,
};
use domain::{Decider, DomainEvent as _, QuoteDecider};
use eventlog::{codec, AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig, NewEvent};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Lines added to every quote.
const LINES: usize = 5;

/// The command benchmark: our command path vs cqrs-es on sqlite-es and
/// postgres-es.
#[derive(Parser)]
#[command(name = "command_bench")]
struct Args {
    /// Also write the figures as a JSON array to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Quotes per workload (must be positive).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    quotes: usize,
    /// Concurrent clients (must be positive).
    #[arg(
        long,
        value_name = "C",
        default_value_t = 64,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    clients: usize,
    /// PostgreSQL for the postgres-es peer.
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Run the command path alone (for profiling).
    #[arg(long)]
    only_ours: bool,
    /// Rounds; each runs every peer once, in turn, with a disk probe
    /// beside each cell, and the medians are reported.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 3,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    rounds: usize,
}

/// The commands that take one quote from nothing to accepted: create, five
/// lines, price, proposal, signature, accept. The domain refuses to accept
/// an unsigned quote, so the workload carries the proposal and signature
/// steps too (10 commands a quote, the same for every peer).
fn quote_commands(quote: usize) -> Vec<QuoteCommand> {
    let line_ids: Vec<String> = (1..=LINES).map(|l| format!("l{l}")).collect();
    let line_refs: Vec<&str> = line_ids.iter().map(String::as_str).collect();
    let mut commands = vec![QuoteCommand::Create {
        quote_id: QuoteId::new(format!("q{quote}")),
        tenant_id: tenant(),
        customer: customer(),
        catalog_version: "catalog-2024.06".to_owned(),
        customer_suspension: None,
        catalog: domain::catalog::VersionStanding::Unmanaged,
        at: at(0),
    }];
    commands.extend(line_ids.iter().map(|id| QuoteCommand::AddLine {
        line: line(id),
        at: at(1),
    }));
    commands.push(QuoteCommand::Price {
        price: price(1, &line_refs, percent(5)),
        policy: approval_policy(),
        at: at(2),
    });
    commands.push(QuoteCommand::RecordProposal {
        revision: 1,
        artifact: proposal("art-1"),
        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
        at: at(1_000),
    });
    commands.push(QuoteCommand::RecordSignature {
        revision: 1,
        signature: signature("art-1"),
        at: at(5_000),
    });
    commands.push(QuoteCommand::Accept {
        billing_account: billing_account(),
        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
        capabilities: domain::capability::Capabilities::all(),
        at: at(6_000),
    });
    commands
}

/// What one workload measured.
struct Figures {
    commands: usize,
    failures: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    fn commands_per_s(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_us(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p)
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64
}

/// Runs `quotes` quotes through `execute` with `clients` concurrent tasks,
/// each taking the next quote and sending its commands one after another.
async fn drive<F, Fut>(quotes: usize, clients: usize, execute: F) -> Figures
where
    F: Fn(usize, usize, QuoteCommand) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let execute = Arc::new(execute);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let next = next.clone();
        let execute = execute.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let quote = next.fetch_add(1, Ordering::Relaxed);
                if quote >= quotes {
                    break;
                }
                for (step, command) in quote_commands(quote).into_iter().enumerate() {
                    let sent = Instant::now();
                    if let Err(error) = execute(quote, step, command).await {
                        failures += 1;
                        if failures <= 3 {
                            eprintln!("  quote {quote} step {step} failed: {error}");
                        }
                    }
                    latencies.push(sent.elapsed().as_micros() as u64);
                }
            }
            (latencies, failures)
        }));
    }
    let mut figures = Figures {
        commands: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for task in tasks {
        match task.await {
            Ok((latencies, failures)) => {
                figures.failures += failures;
                figures.latencies_us.extend(latencies);
            }
            Err(error) => eprintln!("  a client panicked: {error}"),
        }
    }
    figures.elapsed = started.elapsed();
    figures.commands = figures.latencies_us.len();
    figures.latencies_us.sort_unstable();
    figures
}

/// The workload through our command path, keeping the folded state of up
/// to `cache` streams (0: every load folds the stream from its start).
async fn run_command_path(
    args: &Args,
    dir: &std::path::Path,
    cache: usize,
) -> Result<Figures, String> {
    let log = EventLog::open(
        LogConfig::new(dir.join(format!("log-cache-{cache}"))).durability(Durability::Durable),
    )
    .map_err(|e| e.to_string())?;
    let path = Arc::new(CommandPath::new(log.clone()).with_state_cache(cache));
    let figures = drive(args.quotes, args.clients, move |quote, step, command| {
        let path = path.clone();
        async move {
            let stream = quote_stream(&QuoteId::new(format!("q{quote}")));
            let context = CommandContext::new(
                CommandKey::client(&tenant(), format!("q{quote}-cmd{step}")),
                tenant().as_str(),
                format!("q{quote}"),
            );
            path.execute::<QuoteDecider>(&stream, &command, &context)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    let stats = log.writer_stats();
    println!(
        "  log: {} events in {} group commits ({:.1} events per fdatasync)",
        stats.events_written,
        stats.group_commits,
        stats.events_written as f64 / stats.group_commits.max(1) as f64
    );
    log.close().await;
    Ok(figures)
}

/// The cqrs-es peer's aggregate: the domain's own quote state, changed by
/// the domain's own `decide` and `evolve`.
#[derive(Serialize, Deserialize)]
struct PeerQuote {
    #[serde(skip, default = "QuoteDecider::initial")]
    state: QuoteState,
}

impl Default for PeerQuote {
    fn default() -> Self {
        Self {
            state: QuoteDecider::initial(),
        }
    }
}

/// A quote event as cqrs-es stores it (JSON, with its type and version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct PeerEvent(QuoteEvent);

impl cqrs_es::DomainEvent for PeerEvent {
    fn event_type(&self) -> String {
        self.0.event_type().to_owned()
    }

    fn event_version(&self) -> String {
        self.0.schema_version().to_string()
    }
}

impl Aggregate for PeerQuote {
    const TYPE: &'static str = "quote";
    type Command = QuoteCommand;
    type Event = PeerEvent;
    type Error = QuoteError;
    type Services = ();

    async fn handle(
        &mut self,
        command: QuoteCommand,
        _services: &(),
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), QuoteError> {
        for event in QuoteDecider::decide(&self.state, &command)? {
            sink.write(PeerEvent(event), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PeerEvent) {
        let state = std::mem::replace(&mut self.state, QuoteState::Empty);
        self.state = QuoteDecider::evolve(state, &event.0);
    }
}

async fn drive_peer<ES>(args: &Args, cqrs: CqrsFramework<PeerQuote, ES>) -> Figures
where
    ES: EventStore<PeerQuote> + 'static,
    ES::AC: Send,
{
    let cqrs = Arc::new(cqrs);
    drive(args.quotes, args.clients, move |quote, _step, command| {
        let cqrs = cqrs.clone();
        async move {
            cqrs.execute(&format!("q{quote}"), command)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
}

const SQLITE_SCHEMA: &str = "CREATE TABLE events (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  sequence integer CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL,
  event_version text NOT NULL, payload text NOT NULL, metadata text NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT";

async fn run_cqrs_sqlite(args: &Args, dir: &std::path::Path) -> Result<Figures, String> {
    let url = format!("sqlite://{}", dir.join("cqrs.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(|e| e.to_string())?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    // The pool size of sqlite-es's own `default_sqlite_pool`.
    let pool = SqlitePoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(SQLITE_SCHEMA)
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    let figures = drive_peer(args, sqlite_es::sqlite_cqrs(pool.clone(), vec![], ())).await;
    pool.close().await;
    Ok(figures)
}

const POSTGRES_SCHEMA: [&str; 2] = [
    "DROP TABLE IF EXISTS events",
    "CREATE TABLE events (
  aggregate_type text NOT NULL, aggregate_id text NOT NULL,
  sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL,
  event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
];

async fn run_cqrs_postgres(args: &Args) -> Result<(Figures, String), String> {
    let pool = PgPoolOptions::new()
        .max_connections(args.clients.min(32) as u32)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&args.postgres)
        .await
        .map_err(|e| format!("cannot reach PostgreSQL at {}: {e}", args.postgres))?;
    for statement in POSTGRES_SCHEMA {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    let settings: (String, String) =
        sqlx::query_as("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
    let figures = drive_peer(args, postgres_es::postgres_cqrs(pool.clone(), vec![], ())).await;
    sqlx::query(POSTGRES_SCHEMA[0])
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    pool.close().await;
    Ok((
        figures,
        format!("fsync={} synchronous_commit={}", settings.0, settings.1),
    ))
}

/// Loads a 1,000-event quote stream (a creation and 999 lines) `samples`
/// times through the command path (keeping up to `cache` streams folded)
/// and returns the sorted latencies.
async fn load_1000_events(
    dir: &std::path::Path,
    samples: usize,
    cache: usize,
) -> Result<Vec<u64>, String> {
    let log = EventLog::open(
        LogConfig::new(dir.join(format!("load-cache-{cache}"))).durability(Durability::Durable),
    )
    .map_err(|e| e.to_string())?;
    let quote = QuoteId::new("q-long");
    let stream = quote_stream(&quote);
    let mut events = vec![QuoteEvent::QuoteCreated {
        quote_id: quote,
        tenant_id: tenant(),
        customer: customer(),
        catalog_version: "catalog-2024.06".to_owned(),
        at: at(0),
    }];
    events.extend((1..1_000).map(|l| QuoteEvent::LineAdded {
        revision: 1,
        line: line(&format!("l{l}")),
        at: at(1),
    }));
    let new_events = events
        .iter()
        .map(|event| {
            codec::encode_payload(event).map(|payload| {
                NewEvent::new(event.event_type(), tenant().as_str(), "load", payload)
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    log.append(AppendRequest::new(
        &stream,
        ExpectedVersion::NoStream,
        new_events,
    ))
    .await
    .map_err(|e| e.to_string())?;
    let path = CommandPath::new(log.clone()).with_state_cache(cache);
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let loaded = path
            .load::<QuoteDecider>(&stream)
            .map_err(|e| e.to_string())?;
        latencies.push(started.elapsed().as_micros() as u64);
        if loaded.version != 1_000 {
            return Err(format!("loaded version {} of 1000", loaded.version));
        }
    }
    drop(path);
    log.close().await;
    latencies.sort_unstable();
    Ok(latencies)
}

fn report(name: &str, figures: &Figures) {
    println!(
        "{name:<16} {:>7} commands  {:>9.0} commands/s  p50 {:>7.0} us  p99 {:>7.0} us  failures {}",
        figures.commands,
        figures.commands_per_s(),
        figures.percentile_us(0.50),
        figures.percentile_us(0.99),
        figures.failures,
    );
}

fn json_row(name: &str, figures: &Figures, extra: &[(&str, f64)]) -> serde_json::Value {
    let mut row = serde_json::json!({
        "name": name,
        "commands": figures.commands,
        "failures": figures.failures,
        "commands_per_s": figures.commands_per_s(),
        "p50_us": figures.percentile_us(0.50),
        "p99_us": figures.percentile_us(0.99),
    });
    for (key, value) in extra {
        row[*key] = serde_json::json!(value);
    }
    row
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(message) = run(&args).await {
        eprintln!("command_bench: {message}");
        std::process::exit(1);
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let commands = quote_commands(0).len();
    println!(
        "command bench: {} quotes x {commands} commands, {} clients, durable, {} rounds (peers interleaved in each)",
        args.quotes, args.clients, args.rounds
    );
    let mut cells: Vec<(&str, Vec<Figures>)> = vec![
        ("command_path", Vec::new()),
        ("command_path_nocache", Vec::new()),
        ("cqrs_sqlite", Vec::new()),
        ("cqrs_postgres", Vec::new()),
    ];
    let mut settings = String::new();
    for round in 1..=args.rounds {
        let round_dir = dir.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&round_dir).map_err(|e| e.to_string())?;
        for (name, runs) in &mut cells {
            if args.only_ours && name.starts_with("cqrs") {
                continue;
            }
            let disk = eventlog::probe::fdatasync_ms(&round_dir).unwrap_or(f64::NAN);
            let figures = match *name {
                "command_path" => {
                    run_command_path(args, &round_dir, application::state_cache::DEFAULT_CAPACITY)
                        .await?
                }
                "command_path_nocache" => run_command_path(args, &round_dir, 0).await?,
                "cqrs_sqlite" => run_cqrs_sqlite(args, &round_dir).await?,
                _ => {
                    let (figures, used) = run_cqrs_postgres(args).await?;
                    settings = used;
                    figures
                }
            };
            print!("round {round} disk fdatasync {disk:.2} ms  ");
            report(name, &figures);
            runs.push(figures);
        }
    }
    if !settings.is_empty() {
        println!("  (postgres {settings})");
    }
    let median = |name: &str| -> Option<&Figures> {
        let runs = &cells.iter().find(|(n, _)| *n == name)?.1;
        let mut sorted: Vec<&Figures> = runs.iter().collect();
        sorted.sort_by(|a, b| a.commands_per_s().total_cmp(&b.commands_per_s()));
        sorted.get(sorted.len() / 2).copied()
    };
    println!("medians over {} rounds:", args.rounds);
    for (name, _) in &cells {
        if let Some(figures) = median(name) {
            report(name, figures);
        }
    }
    let (Some(ours), Some(uncached)) = (median("command_path"), median("command_path_nocache"))
    else {
        return Err("no command path figures".to_owned());
    };
    println!(
        "ratio_state_cache      {:.2}x (command path with its stream-state cache vs without, medians)",
        ours.commands_per_s() / uncached.commands_per_s()
    );
    let (Some(sqlite), Some(postgres)) = (median("cqrs_sqlite"), median("cqrs_postgres")) else {
        return Ok(());
    };

    let loads = load_1000_events(dir.path(), 200, 0).await?;
    let load_p50 = percentile(&loads, 0.50);
    let load_p99 = percentile(&loads, 0.99);
    println!("load_1000_events p50 {load_p50:.0} us  p99 {load_p99:.0} us (full fold, no cache)");
    let cached_loads = load_1000_events(dir.path(), 200, 16).await?;
    println!(
        "load_1000_events p50 {:.0} us  p99 {:.0} us (stream-state cache: the tail after the cached version)",
        percentile(&cached_loads, 0.50),
        percentile(&cached_loads, 0.99)
    );

    let vs_sqlite = ours.commands_per_s() / sqlite.commands_per_s();
    let vs_postgres = ours.commands_per_s() / postgres.commands_per_s();
    println!("ratio_vs_cqrs_sqlite   {vs_sqlite:.1}x (target 5x, issue 17)");
    println!("ratio_vs_cqrs_postgres {vs_postgres:.1}x (target 4x, issue 17)");

    if let Some(file) = &args.json {
        let rows = serde_json::Value::Array(vec![
            json_row(
                "command_path",
                ours,
                &[
                    ("ratio_vs_cqrs_sqlite", vs_sqlite),
                    ("ratio_vs_cqrs_postgres", vs_postgres),
                ],
            ),
            json_row("command_path_nocache", uncached, &[]),
            json_row("cqrs_sqlite", sqlite, &[]),
            json_row("cqrs_postgres", postgres, &[]),
            serde_json::json!({
                "name": "load_1000_events",
                "p50_us": load_p50,
                "p99_us": load_p99,
            }),
        ]);
        let mut out = std::fs::File::create(file).map_err(|e| format!("{file}: {e}"))?;
        writeln!(out, "{rows:#}").map_err(|e| format!("{file}: {e}"))?;
        println!("wrote {file}");
    }
    Ok(())
}
