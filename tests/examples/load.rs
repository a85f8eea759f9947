//! Load benchmark: starts `oms-server` (release) on loopback with a fresh
//! data directory, seeds quotes and orders, then runs 64 concurrent
//! clients through (a) a typed query mix (quote detail, order detail, a
//! page of order journeys with nested quote, lines, steps, handoffs and
//! fallout cases, a fallout page) and (b) a durable mutation mix (create quote, add lines, price,
//! proposal, signature, accept), and reports requests/s, p50, p99, the
//! read-model reads per query and the server's peak RSS.
//!
//! ```text
//! cargo build --release -p api
//! cargo run --release -p tests --example load -- --json load.json
//! ```
//!
//! Options: `--json FILE`, `--server PATH` (default: `oms-server` next to
//! this example, i.e. `target/release/oms-server`), `--clients N` (64),
//! `--seconds S` per phase (10), `--seed N` accepted quotes (256),
//! `--server-config TOML` extra server configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tests::ops;
use tests::{unique, Client, Server, ServerOptions};

/// Load benchmark against a fresh `oms-server` on loopback.
#[derive(Parser)]
#[command(name = "load")]
struct Args {
    /// Write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The server binary (default: `oms-server` next to this example, i.e.
    /// `target/release/oms-server`).
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 64)]
    clients: usize,
    /// Duration of each phase, in seconds.
    #[arg(long, value_name = "S", default_value_t = 10)]
    seconds: u64,
    /// Accepted quotes to seed.
    #[arg(long, value_name = "N", default_value_t = 256)]
    seed: usize,
    /// Orders per page of the `journeys` query mix.
    #[arg(long, value_name = "N", default_value_t = 20)]
    page: i64,
    /// Rounds of the two query mixes, interleaved; medians are reported.
    #[arg(long, value_name = "N", default_value_t = 3)]
    rounds: usize,
    /// Extra server configuration, as TOML lines (e.g.
    /// `read_your_writes_ms = 0`), for A/B runs of one setting.
    #[arg(long, value_name = "TOML")]
    server_config: Option<String>,
}

/// A query mix of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QueryMix {
    /// Quote detail, order detail, a fallout page: one object per query.
    Details,
    /// A page of order journeys, links followed.
    Journeys,
}

impl QueryMix {
    fn name(self) -> &'static str {
        match self {
            QueryMix::Details => "details",
            QueryMix::Journeys => "journeys",
        }
    }
}

/// One query phase of `mix`.
#[allow(clippy::too_many_arguments)]
async fn query_phase(
    mix: QueryMix,
    client: &Client,
    viewer: &str,
    quotes: &Arc<Vec<String>>,
    orders: &Arc<Vec<String>>,
    clients: usize,
    seconds: u64,
    page: i64,
) -> Phase {
    let (client, viewer) = (client.clone(), viewer.to_owned());
    let (quotes, orders) = (quotes.clone(), orders.clone());
    run_phase(clients, seconds, move |worker, i| {
        let (client, viewer) = (client.clone(), viewer.clone());
        let (quotes, orders) = (quotes.clone(), orders.clone());
        async move {
            let mut samples = Vec::with_capacity(1);
            let n = usize::try_from(i).unwrap_or(0).wrapping_add(worker * 7);
            match (mix, n % 3) {
                (QueryMix::Journeys, _) => {
                    timed(
                        &mut samples,
                        client.run::<ops::OrderJourneys>(
                            &viewer,
                            ops::order_journeys::Variables {
                                first: Some(page),
                                after: None,
                            },
                        ),
                    )
                    .await;
                }
                (QueryMix::Details, 0) => {
                    let id = quotes
                        .get(n % quotes.len().max(1))
                        .cloned()
                        .unwrap_or_default();
                    timed(
                        &mut samples,
                        client.run::<ops::Quote>(&viewer, ops::quote::Variables { id }),
                    )
                    .await;
                }
                (QueryMix::Details, 1) => {
                    let id = orders
                        .get(n % orders.len().max(1))
                        .cloned()
                        .unwrap_or_else(|| unique("o-missing"));
                    timed(
                        &mut samples,
                        client.run::<ops::Order>(&viewer, ops::order::Variables { id }),
                    )
                    .await;
                }
                (QueryMix::Details, _) => {
                    timed(
                        &mut samples,
                        client.run::<ops::Fallout>(
                            &viewer,
                            ops::fallout::Variables {
                                resolved: None,
                                first: Some(20),
                                after: None,
                            },
                        ),
                    )
                    .await;
                }
            }
            samples
        }
    })
    .await
}

/// What one phase measured.
struct Phase {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: usize) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let index = (self.latencies_us.len() * p / 100).min(self.latencies_us.len() - 1);
        self.latencies_us[index]
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "seconds": self.elapsed.as_secs_f64(),
            "requests_per_s": self.requests_per_s(),
            "p50_us": self.percentile(50),
            "p99_us": self.percentile(99),
        })
    }
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// Runs `clients` tasks calling `step(worker, i)` until `seconds` pass;
/// each call returns `(latency µs, ok)` per request it made.
async fn run_phase<F, Fut>(clients: usize, seconds: u64, step: F) -> Phase
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<(u64, bool)>> + Send,
{
    let step = Arc::new(step);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|worker| {
            let step = step.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    samples.extend(step(worker, i).await);
                    i += 1;
                }
                samples
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        for (latency, ok) in task.await.unwrap_or_default() {
            latencies_us.push(latency);
            errors += usize::from(!ok);
        }
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Phase {
        requests: latencies_us.len(),
        errors,
        elapsed,
        latencies_us,
    }
}

async fn timed<T, E>(
    samples: &mut Vec<(u64, bool)>,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    let started = Instant::now();
    let result = request.await;
    samples.push((micros(started.elapsed()), result.is_ok()));
    result.ok()
}

/// One durable quote-to-accept sequence: 7 mutations.
async fn mutation_sequence(
    client: &Client,
    sales: &str,
    worker: usize,
    i: u64,
) -> Vec<(u64, bool)> {
    let mut samples = Vec::with_capacity(7);
    let Some(quote) = timed(
        &mut samples,
        client.create_quote(sales, &format!("load-{worker}-{i}"), "cust-load"),
    )
    .await
    else {
        return samples;
    };
    for (line, offering) in [("line-1", "fiber-1g"), ("line-2", "sdwan-edge")] {
        timed(&mut samples, client.add_line(sales, &quote, line, offering)).await;
    }
    timed(&mut samples, client.price(sales, &quote, "5")).await;
    let hash = format!("sha256-{quote}");
    timed(
        &mut samples,
        client.run::<ops::RecordProposal>(
            sales,
            ops::record_proposal::Variables {
                command_id: format!("load-{worker}-{i}-proposal"),
                quote_id: quote.clone(),
                expected_version: None,
                revision: 1,
                artifact_id: format!("doc-{quote}"),
                artifact_hash: hash.clone(),
                template_version: "t-1".to_owned(),
            },
        ),
    )
    .await;
    timed(
        &mut samples,
        client.run::<ops::RecordSignature>(
            sales,
            ops::record_signature::Variables {
                command_id: format!("load-{worker}-{i}-signature"),
                quote_id: quote.clone(),
                expected_version: None,
                revision: 1,
                signer: "Load Test".to_owned(),
                provider_reference: format!("esign-{quote}"),
                artifact_hash: hash,
            },
        ),
    )
    .await;
    timed(&mut samples, client.accept(sales, &quote)).await;
    samples
}

async fn seed(
    client: &Client,
    sales: &str,
    viewer: &str,
    count: usize,
) -> (Vec<String>, Vec<String>) {
    let mut quotes = Vec::new();
    let tasks: Vec<_> = (0..16)
        .map(|worker| {
            let client = client.clone();
            let sales = sales.to_owned();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in (worker..count).step_by(16) {
                    if let Ok(quote) = client
                        .accepted_quote(&sales, "cust-seed", &["fiber-1g", "sdwan-edge"])
                        .await
                    {
                        ids.push(quote);
                    }
                }
                ids
            })
        })
        .collect();
    for task in tasks {
        quotes.extend(task.await.unwrap_or_default());
    }
    // Orders are captured by the fulfillment runtime after acceptance.
    let mut orders = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut after = None;
        orders.clear();
        loop {
            let page = client
                .run::<ops::Orders>(
                    viewer,
                    ops::orders::Variables {
                        status: None,
                        has_fallout: None,
                        first: Some(200),
                        after: after.clone(),
                    },
                )
                .await;
            let Ok(page) = page else { break };
            orders.extend(page.orders.nodes.into_iter().map(|o| o.id));
            if !page.orders.page_info.has_next_page {
                break;
            }
            after = page.orders.page_info.end_cursor;
        }
        if orders.len() >= quotes.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (quotes, orders)
}

/// The server's read-model read counter (`oms_read_model_reads_total`).
async fn read_model_reads(server: &Server) -> u64 {
    server
        .metric("oms_read_model_reads_total")
        .await
        .unwrap_or(0)
}

fn peak_rss_mb(pid: Option<u32>) -> f64 {
    let status = pid
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args = Args::parse();
    let binary = args.server.clone().unwrap_or_else(tests::server_binary);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start the runtime: {e}"));
    runtime.block_on(bench(args, binary));
}

async fn bench(args: Args, binary: PathBuf) {
    let server = Server::start_with(ServerOptions {
        binary: Some(binary.clone()),
        log: Some("error".to_owned()),
        config: args.server_config.clone().unwrap_or_default(),
        ..ServerOptions::default()
    });
    println!(
        "server {} (pid {}) on {}, {} clients, {} s per phase",
        binary.display(),
        server.pid().unwrap_or_default(),
        server.addr,
        args.clients,
        args.seconds
    );
    let client = server.client.clone();
    let (sales, viewer) = (server.token("sales"), server.token("viewer"));
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let load_before = loadavg();

    let started = Instant::now();
    let (quotes, orders) = seed(&client, &sales, &viewer, args.seed).await;
    println!(
        "seeded {} accepted quotes and {} orders in {:.1} s",
        quotes.len(),
        orders.len(),
        started.elapsed().as_secs_f64()
    );
    let seeded = json!({"quotes": quotes.len(), "orders": orders.len()});
    let quotes = Arc::new(quotes);
    let orders = Arc::new(orders);

    // Two query mixes, interleaved in rounds (the machine's speed drifts):
    // `details` (quote detail, order detail, fallout page) is the peer;
    // `journeys` is a UI's order-journeys screen: a page of orders with
    // their quote, lines, steps, handoffs and fallout cases.
    let mut rounds: Vec<(QueryMix, Phase, f64)> = Vec::new();
    for round in 0..args.rounds {
        for mix in [QueryMix::Details, QueryMix::Journeys] {
            let reads_before = read_model_reads(&server).await;
            let phase = query_phase(
                mix,
                &client,
                &viewer,
                &quotes,
                &orders,
                args.clients,
                args.seconds,
                args.page,
            )
            .await;
            let reads = read_model_reads(&server).await.saturating_sub(reads_before);
            let per_query = reads as f64 / phase.requests.max(1) as f64;
            println!(
                "round {round} {:<9} {:>8.0} q/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>5.2} reads/query  {} errors",
                mix.name(),
                phase.requests_per_s(),
                phase.percentile(50) as f64 / 1000.0,
                phase.percentile(99) as f64 / 1000.0,
                per_query,
                phase.errors,
            );
            rounds.push((mix, phase, per_query));
        }
    }
    let median = |mix: QueryMix, figure: &dyn Fn(&Phase, f64) -> f64| {
        let mut values: Vec<f64> = rounds
            .iter()
            .filter(|(m, _, _)| *m == mix)
            .map(|(_, phase, reads)| figure(phase, *reads))
            .collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    let summary = |mix: QueryMix| {
        json!({
            "queries_per_s": median(mix, &|p, _| p.requests_per_s()),
            "p50_ms": median(mix, &|p, _| p.percentile(50) as f64 / 1000.0),
            "p99_ms": median(mix, &|p, _| p.percentile(99) as f64 / 1000.0),
            "read_model_reads_per_query": median(mix, &|_, r| r),
            "errors": rounds.iter().filter(|(m, _, _)| *m == mix).map(|(_, p, _)| p.errors).sum::<usize>(),
        })
    };
    let (details, journeys) = (summary(QueryMix::Details), summary(QueryMix::Journeys));
    let mutations = {
        let client = client.clone();
        run_phase(args.clients, args.seconds, move |worker, i| {
            let (client, sales) = (client.clone(), sales.clone());
            async move { mutation_sequence(&client, &sales, worker, i).await }
        })
        .await
    };
    let rss = peak_rss_mb(server.pid());
    let load_after = loadavg();

    println!();
    println!(
        "{:<10} {:>10} {:>8} {:>12} {:>10} {:>10}",
        "phase", "requests", "errors", "requests/s", "p50 ms", "p99 ms"
    );
    for (name, mix) in [("details", &details), ("journeys", &journeys)] {
        println!(
            "{:<10} {:>10} {:>8} {:>12.0} {:>10.2} {:>10.2}   (median of {} rounds; {:.2} read-model reads/query)",
            name,
            "",
            mix["errors"],
            mix["queries_per_s"].as_f64().unwrap_or(0.0),
            mix["p50_ms"].as_f64().unwrap_or(0.0),
            mix["p99_ms"].as_f64().unwrap_or(0.0),
            args.rounds,
            mix["read_model_reads_per_query"].as_f64().unwrap_or(0.0),
        );
    }
    println!(
        "journeys / details throughput: {:.2} (a journeys query is a page of {} orders \
         with quote, lines, steps, handoffs and fallout cases)",
        journeys["queries_per_s"].as_f64().unwrap_or(0.0)
            / details["queries_per_s"].as_f64().unwrap_or(1.0).max(1.0),
        args.page
    );
    println!(
        "{:<10} {:>10} {:>8} {:>12.0} {:>10.2} {:>10.2}",
        "mutations",
        mutations.requests,
        mutations.errors,
        mutations.requests_per_s(),
        mutations.percentile(50) as f64 / 1000.0,
        mutations.percentile(99) as f64 / 1000.0,
    );
    println!("server peak RSS: {rss:.1} MiB");
    println!(
        "machine: {} cores, 1-min load average {load_before} before, {load_after} after \
         (other processes skew the figures)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "targets (2 cores, generator included): queries >= 8000/s with p99 < 20 ms; \
         durable mutations >= 3000/s with p99 < 50 ms"
    );

    if let Some(path) = &args.json {
        let report = json!({
            "clients": args.clients,
            "seconds_per_phase": args.seconds,
            "seeded": seeded,
            "page": args.page,
            "rounds": args.rounds,
            "queries_details": details,
            "queries_journeys": journeys,
            "mutations": mutations.json(),
            "server": {"peak_rss_mb": rss},
            "machine": {"loadavg_before": load_before, "loadavg_after": load_after},
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(error) = std::fs::write(path, text + "\n") {
            eprintln!("cannot write {}: {error}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}
