//! Soak benchmark of the external-systems side, end to end.
//!
//! Run with `cargo run --release -p simulators --example soak -- --orders N
//! [--json FILE] [--durability durable|crash-safe|buffered] [--seed S]
//! [--timeout-s T]`.
//!
//! N orders (default 10,000) of 3 lines each go from quote acceptance
//! through the fulfillment process (order, reservation, provisioning,
//! billing, line active, order completed) against the simulators, with a
//! fault mix on every side-effect system: 5 % timeouts after applying,
//! 5 % duplicate callbacks, 2 % business rejections, 2 % dropped callbacks,
//! 1 % out-of-order callbacks; reconciliation runs every 500 ms. It stops
//! when every order is settled (completed, or every open line in fallout)
//! and prints orders/s end to end, completed and fallout counts, doubled
//! side effects (must be 0), stuck orders (must be 0), and whether the
//! fallout lines match the injected rejections exactly. The notification
//! provider (order captured, completed, line attention) plays 5 % timeouts
//! after sending, 2 % bounces and 2 % server errors: the soak prints
//! e-mails sent twice (must be 0) and whether the rejected notifications
//! match its injected bounces. The document service (each order's
//! confirmation, rendered as a handoff) plays 5 % timeouts after storing,
//! 2 % refused templates and 2 % server errors: the soak prints documents
//! stored twice (must be 0) and whether the refused confirmations match
//! its injected refusals. `--json FILE` writes the figures as one JSON
//! object.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use application::CommandPath;
use clap::Parser;
use domain::idempotency::TargetSystem;
use domain::ids::{order_stream, OrderId};
use domain::order::{LineProgress, OrderEvent, OrderState};
use domain::OrderDecider;
use eventlog::{decode_payload, Durability, EventLog, LogConfig};
use integration::callbacks;
use integration::fulfillment::{Fulfillment, FulfillmentOptions};
use simulators::{Fault, FaultMix, Script, SigningKeys, SimulatorOptions, Simulators};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const SECRET: &str = "soak-callback-secret-0001";
const SIDE_EFFECT_SYSTEMS: [TargetSystem; 3] = [
    TargetSystem::Inventory,
    TargetSystem::Provisioning,
    TargetSystem::Billing,
];

/// Soak benchmark of the external-systems side, end to end.
#[derive(Parser)]
#[command(name = "soak")]
struct Args {
    /// Orders of 3 lines each driven through the fulfillment process.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    orders: u32,
    /// Write the figures as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Durability of the event log: durable, crash-safe or buffered.
    #[arg(
        long,
        value_name = "durable|crash-safe|buffered",
        default_value = "crash-safe",
        value_parser = durability
    )]
    durability: Durability,
    /// Seed of the simulators' fault mix.
    #[arg(long, value_name = "S", default_value_t = 42)]
    seed: u64,
    /// Give up waiting for every order to settle after T seconds.
    #[arg(long = "timeout-s", value_name = "T", default_value_t = 1_800)]
    timeout_s: u64,
}

/// Parses `--durability`.
fn durability(value: &str) -> Result<Durability, String> {
    match value {
        "durable" => Ok(Durability::Durable),
        "crash-safe" => Ok(Durability::ProcessCrashSafe),
        "buffered" => Ok(Durability::Buffered),
        other => Err(format!("unknown durability {other}")),
    }
}

/// Per-order progress, folded from the log as it grows.
#[derive(Default, Clone)]
struct Progress {
    lines: usize,
    active: usize,
    fallout: usize,
    completed: bool,
}

impl Progress {
    fn settled(&self) -> bool {
        self.completed || (self.lines > 0 && self.active + self.fallout == self.lines)
    }
}

/// The document service's renders by key: the orders' confirmations.
fn confirmations(sims: &Simulators) -> Vec<simulators::LedgerEntry> {
    sims.ledger(TargetSystem::Document)
        .into_iter()
        .filter(|e| e.operation == "generate_document")
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig::new(dir.path()).durability(args.durability)).unwrap();
    let path = CommandPath::new(log.clone());
    let sims = Simulators::start(SimulatorOptions {
        seed: args.seed,
        hang_ms: 700,
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    let mix = FaultMix::new()
        .with(Fault::TimeoutAfterApply, 500)
        .with(Fault::CallbackTwice, 500)
        .with(Fault::BusinessReject, 200)
        .with(Fault::DropCallback, 200)
        .with(Fault::CallbackOutOfOrder, 100);
    for system in SIDE_EFFECT_SYSTEMS {
        sims.script(system, Script::Mix(mix.clone()));
    }
    sims.script(
        TargetSystem::Notification,
        Script::Mix(
            FaultMix::new()
                .with(Fault::TimeoutAfterApply, 500)
                .with(Fault::BusinessReject, 200)
                .with(Fault::ServerError, 200),
        ),
    );
    sims.script(
        TargetSystem::Document,
        Script::Mix(
            FaultMix::new()
                .with(Fault::TimeoutAfterApply, 500)
                .with(Fault::ValidationReject, 200)
                .with(Fault::ServerError, 200),
        ),
    );
    let mut config = sims.systems_config(&["t1"], SECRET);
    for systems in config.tenants.values_mut() {
        for s in systems.systems.values_mut() {
            s.connect_timeout_ms = 500;
            s.read_timeout_ms = 300;
            s.sla_ms = 2_000;
            s.retry.base_ms = 100;
            s.retry.max_ms = 1_000;
            s.retry.max_attempts = 8;
            s.retry.circuit_failure_threshold = 20;
            s.retry.circuit_open_ms = 500;
        }
    }
    config.reconciliation.interval_ms = 500;
    config.reconciliation.max_checks_per_run = 10_000;
    let fulfillment = Fulfillment::start(
        path.clone(),
        config.clone(),
        FulfillmentOptions {
            dispatch_concurrency: 128,
            process_concurrency: 64,
            ..FulfillmentOptions::default()
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sims.set_callback_target(
        format!("http://{}", listener.local_addr().unwrap()),
        SigningKeys::from_config(&config),
    );
    let app = callbacks::router(fulfillment.callback_inbox());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    // Follow the orders' events.
    let progress: Arc<Mutex<HashMap<String, Progress>>> = Arc::default();
    let follower = {
        let progress = progress.clone();
        let mut subscription = log.subscribe(0);
        tokio::spawn(async move {
            while let Ok(batch) = subscription.next_batch(1_024).await {
                if batch.is_empty() {
                    break;
                }
                let mut map = progress.lock().unwrap();
                for record in batch.iter().filter(|r| r.stream_id.starts_with("order-")) {
                    let Ok(event) = decode_payload::<OrderEvent>(&record.payload) else {
                        continue;
                    };
                    let p = map.entry(record.stream_id.clone()).or_default();
                    match event {
                        OrderEvent::OrderCaptured { lines, .. } => p.lines = lines.len(),
                        OrderEvent::LineActivated { .. } => p.active += 1,
                        OrderEvent::LineFalloutRaised { .. } => p.fallout += 1,
                        OrderEvent::LineFalloutResolved { .. } => p.fallout -= 1,
                        OrderEvent::OrderCompleted { .. } => p.completed = true,
                        _ => {}
                    }
                }
            }
        })
    };

    println!(
        "soak: {} orders x 3 lines, durability {:?}, fault mix per request: 5% timeout after apply, 5% duplicate callback, 2% business rejection, 2% dropped callback, 1% out-of-order callback",
        args.orders, args.durability
    );
    let started = Instant::now();
    let semaphore = Arc::new(Semaphore::new(48));
    let mut quotes = JoinSet::new();
    for i in 0..args.orders {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let path = path.clone();
        quotes.spawn(async move {
            let order = application::testing::accept_sample_quote(
                &path,
                "t1",
                &format!("soak-{i}"),
                &["l1", "l2", "l3"],
            )
            .await
            .unwrap();
            drop(permit);
            order
        });
    }
    let mut orders: Vec<OrderId> = Vec::with_capacity(args.orders as usize);
    while let Some(order) = quotes.join_next().await {
        orders.push(order.unwrap());
    }
    let accepted_in = started.elapsed();
    println!(
        "soak: {} quotes accepted in {accepted_in:.1?}",
        orders.len()
    );

    let deadline = started + Duration::from_secs(args.timeout_s);
    let mut last_report = Instant::now();
    loop {
        let settled = {
            let map = progress.lock().unwrap();
            orders
                .iter()
                .filter(|o| map.get(&order_stream(o)).is_some_and(Progress::settled))
                .count()
        };
        if settled == orders.len() || Instant::now() > deadline {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            let m = fulfillment.metrics_snapshot();
            println!(
                "soak: {:>6.1}s settled {settled}/{} | log {} events | reconciliation corrections {} | callbacks applied {} duplicate {} refused {}",
                started.elapsed().as_secs_f64(),
                orders.len(),
                log.next_position(),
                m.reconciliation_corrections,
                m.callbacks_applied,
                m.callbacks_duplicate,
                m.callbacks_refused_by_domain
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();

    // Authoritative figures from the aggregates themselves.
    let mut completed = 0u64;
    let mut fallout_orders = 0u64;
    let mut fallout_lines = 0u64;
    let mut stuck = 0u64;
    for order in &orders {
        match path
            .load::<OrderDecider>(&order_stream(order))
            .unwrap()
            .state
        {
            OrderState::Completed(_) => completed += 1,
            OrderState::Open(o) => {
                let fallout = o
                    .lines
                    .iter()
                    .filter(|l| matches!(l.progress, LineProgress::Fallout { .. }))
                    .count() as u64;
                let settled = o.lines.iter().all(|l| {
                    matches!(
                        l.progress,
                        LineProgress::Active | LineProgress::Fallout { .. }
                    )
                });
                fallout_lines += fallout;
                if settled && fallout > 0 {
                    fallout_orders += 1;
                } else {
                    stuck += 1;
                }
            }
            _ => stuck += 1,
        }
    }
    // Wait for the notifications and documents to settle too (a bounded
    // extra wait).
    let notifications_settled = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pending = fulfillment
                .status()
                .consumers
                .iter()
                .map(|c| c.lag + c.in_flight)
                .sum::<u64>();
            let unsettled = sims
                .ledger(TargetSystem::Notification)
                .iter()
                .filter(|e| e.state != "SENT" && e.state != "BOUNCED")
                .count()
                + confirmations(&sims)
                    .iter()
                    .filter(|e| e.state != "RENDERED" && e.state != "INVALID")
                    .count();
            if (pending == 0 && unsettled == 0) || Instant::now() > deadline {
                break unsettled == 0;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let duplicate_side_effects = sims.duplicate_side_effects();
    let notification_ledger = sims.ledger(TargetSystem::Notification);
    let duplicate_notifications: u64 = notification_ledger
        .iter()
        .map(|e| u64::from(e.effects.saturating_sub(1)))
        .sum();
    let notifications_sent = notification_ledger.iter().filter(|e| e.effects > 0).count();
    let notification_bounces = sims
        .injected(TargetSystem::Notification)
        .get(&Fault::BusinessReject)
        .copied()
        .unwrap_or(0);
    let notifications_bounced = notification_ledger
        .iter()
        .filter(|e| e.state == "BOUNCED")
        .count() as u64;
    let document_ledger = confirmations(&sims);
    let duplicate_documents: u64 = document_ledger
        .iter()
        .map(|e| u64::from(e.effects.saturating_sub(1)))
        .sum();
    let documents_stored = document_ledger.iter().filter(|e| e.effects > 0).count();
    let documents_refused = document_ledger
        .iter()
        .filter(|e| e.state == "INVALID")
        .count() as u64;
    let document_refusals = sims
        .injected(TargetSystem::Document)
        .get(&Fault::ValidationReject)
        .copied()
        .unwrap_or(0);
    let injected_rejections: u64 = SIDE_EFFECT_SYSTEMS
        .iter()
        .map(|s| {
            sims.injected(*s)
                .get(&Fault::BusinessReject)
                .copied()
                .unwrap_or(0)
        })
        .sum();
    let injected = |fault: Fault| -> u64 {
        SIDE_EFFECT_SYSTEMS
            .iter()
            .map(|s| sims.injected(*s).get(&fault).copied().unwrap_or(0))
            .sum()
    };
    let calls: u64 = SIDE_EFFECT_SYSTEMS.iter().map(|s| sims.requests(*s)).sum();
    let metrics = fulfillment.metrics_snapshot();
    let orders_per_s = orders.len() as f64 / elapsed.as_secs_f64();
    let events = log.next_position();
    println!("soak: {orders_per_s:.1} orders/s end to end ({} orders in {elapsed:.1?}; {events} events, {:.0} events/s; {calls} external calls)", orders.len(), events as f64 / elapsed.as_secs_f64());
    println!(
        "soak: completed {completed}, in fallout {fallout_orders} orders ({fallout_lines} lines)"
    );
    println!("soak: duplicate side effects {duplicate_side_effects} (must be 0)");
    println!(
        "soak: notifications sent {notifications_sent}, duplicate notifications {duplicate_notifications} (must be 0), bounced {notifications_bounced} vs injected bounces {notification_bounces}: {}{}",
        if notifications_bounced == notification_bounces { "match" } else { "MISMATCH" },
        if notifications_settled { "" } else { " (some notifications still unsettled after 60 s)" }
    );
    println!(
        "soak: confirmations stored {documents_stored}, duplicate documents {duplicate_documents} (must be 0), refused {documents_refused} vs injected refusals {document_refusals}: {}{}",
        if documents_refused == document_refusals { "match" } else { "MISMATCH" },
        if notifications_settled { "" } else { " (some documents or notifications still unsettled after 60 s)" }
    );
    println!("soak: stuck orders {stuck} (must be 0)");
    println!(
        "soak: fallout lines {fallout_lines} vs injected rejections {injected_rejections}: {}",
        if fallout_lines == injected_rejections {
            "match"
        } else {
            "MISMATCH"
        }
    );
    println!(
        "soak: injected timeouts after apply {}, duplicate callbacks {}, dropped callbacks {}, out-of-order callbacks {}; reconciliation runs {}, checked {}, corrections {}; callbacks applied {}, duplicate {}, no change {}, refused by domain {}",
        injected(Fault::TimeoutAfterApply),
        injected(Fault::CallbackTwice),
        injected(Fault::DropCallback),
        injected(Fault::CallbackOutOfOrder),
        metrics.reconciliation_runs,
        metrics.reconciliation_checked,
        metrics.reconciliation_corrections,
        metrics.callbacks_applied,
        metrics.callbacks_duplicate,
        metrics.callbacks_no_change,
        metrics.callbacks_refused_by_domain,
    );
    if let Some(file) = &args.json {
        let json = serde_json::json!({
            "orders": orders.len(),
            "lines_per_order": 3,
            "elapsed_s": elapsed.as_secs_f64(),
            "orders_per_s": orders_per_s,
            "completed": completed,
            "fallout": fallout_orders,
            "fallout_lines": fallout_lines,
            "duplicate_side_effects": duplicate_side_effects,
            "notifications_sent": notifications_sent,
            "duplicate_notifications": duplicate_notifications,
            "notifications_bounced": notifications_bounced,
            "notification_bounces_injected": notification_bounces,
            "documents_stored": documents_stored,
            "duplicate_documents": duplicate_documents,
            "documents_refused": documents_refused,
            "document_refusals_injected": document_refusals,
            "stuck": stuck,
            "injected_rejections": injected_rejections,
            "rejections_match": fallout_lines == injected_rejections,
            "events": events,
            "external_calls": calls,
            "durability": format!("{:?}", args.durability),
            "metrics": metrics,
        });
        std::fs::write(file, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        println!("soak: figures written to {file}");
    }
    fulfillment.shutdown().await;
    server.abort();
    follower.abort();
    sims.shutdown().await;
    log.close().await;
}
