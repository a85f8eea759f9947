//! kill -9 of the whole platform process mid-flow, and restart: every order
//! ends completed or in fallout, and no side effect is ever doubled.
//!
//! The parent plays the external world: it runs the simulators (whose
//! ledgers survive the platform's crashes, like real external systems) with
//! a fault mix, and re-runs this binary as the platform
//! (`ADAPTERS_CRASH_CHILD=1`): the child opens the log, serves the callback
//! endpoint, starts the fulfillment process and (idempotently) accepts the
//! sample quotes. The parent SIGKILLs it at a random moment, several
//! times, then lets a last child run until every order is settled, and
//! checks the log and the ledgers.
//!
//! `ADAPTERS_CRASH_CYCLES` (default 4) sets the kills, `ADAPTERS_CRASH_ORDERS`
//! (default 8) the orders, `ADAPTERS_CRASH_SEED` the seed (printed).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use application::CommandPath;
use domain::idempotency::TargetSystem;
use domain::ids::{order_stream, OrderId};
use domain::order::{LineProgress, OrderState};
use domain::OrderDecider;
use eventlog::{Durability, EventLog, LogConfig};
use integration::callbacks;
use integration::config::SystemsConfig;
use integration::fulfillment::{Fulfillment, FulfillmentOptions};
use simulators::{Fault, FaultMix, Script, SigningKeys, SimulatorOptions, Simulators};

const CHILD_ENV: &str = "ADAPTERS_CRASH_CHILD";
const DIR_ENV: &str = "ADAPTERS_CRASH_DIR";
const CONFIG_ENV: &str = "ADAPTERS_CRASH_CONFIG";
const MODE_ENV: &str = "ADAPTERS_CRASH_MODE";
const ORDERS_ENV: &str = "ADAPTERS_CRASH_ORDERS";
const SECRET: &str = "crash-test-secret-000001";

fn main() {
    if std::env::var(CHILD_ENV).is_ok() {
        child();
        return;
    }
    let started = Instant::now();
    let cycles: u32 = env_or("ADAPTERS_CRASH_CYCLES", 4);
    let orders: u32 = env_or(ORDERS_ENV, 8);
    parent(cycles, orders);
    println!(
        "test crash::kill_9_mid_flow_and_restart ({cycles} kills, {orders} orders, {:.1?}) ... ok",
        started.elapsed()
    );
    println!("crash: 1 passed, 0 failed");
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn config(sims: &Simulators) -> SystemsConfig {
    let mut config = sims.systems_config(&["t1"], SECRET);
    for systems in config.tenants.values_mut() {
        for s in systems.systems.values_mut() {
            s.connect_timeout_ms = 200;
            s.read_timeout_ms = 300;
            s.sla_ms = 700;
            s.retry.base_ms = 50;
            s.retry.max_ms = 400;
            s.retry.max_attempts = 8;
        }
    }
    config.reconciliation.interval_ms = 200;
    config
}

/// The config travels to the child as JSON of (system, base url) pairs.
fn urls(sims: &Simulators) -> String {
    simulators::SIMULATED
        .iter()
        .map(|s| format!("{}={}", s.as_str(), sims.base_url(*s)))
        .collect::<Vec<_>>()
        .join(",")
}

fn parent(cycles: u32, orders: u32) {
    let seed: u64 = env_or(
        "ADAPTERS_CRASH_SEED",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
            | 1,
    );
    eprintln!("crash: seed {seed}");
    let mut rng = Rng(seed);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sims = rt.block_on(async {
        Simulators::start(SimulatorOptions {
            seed,
            hang_ms: 600,
            ..SimulatorOptions::default()
        })
        .await
        .unwrap()
    });
    let mix = FaultMix::new()
        .with(Fault::TimeoutAfterApply, 800)
        .with(Fault::BusinessReject, 500)
        .with(Fault::DropCallback, 800)
        .with(Fault::CallbackTwice, 800)
        .with(Fault::TimeoutBeforeApply, 300)
        .with(Fault::ServerError, 300);
    for system in [
        TargetSystem::Inventory,
        TargetSystem::Provisioning,
        TargetSystem::Billing,
    ] {
        sims.script(system, Script::Mix(mix.clone()));
    }
    let keys = SigningKeys::from_config(&config(&sims));
    for cycle in 0..=cycles {
        let last = cycle == cycles;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, "1")
            .env(DIR_ENV, dir.path())
            .env(CONFIG_ENV, urls(&sims))
            .env(MODE_ENV, if last { "settle" } else { "run" })
            .env(ORDERS_ENV, orders.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines
            .next()
            .and_then(Result::ok)
            .and_then(|l| l.strip_prefix("CALLBACK ").map(str::to_owned))
            .expect("child reports its callback url");
        sims.set_callback_target(url, keys.clone());
        if last {
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "settling child failed: {status:?} {rest:?}"
            );
            assert!(rest.iter().any(|l| l == "SETTLED"), "{rest:?}");
        } else {
            let reader = std::thread::spawn(move || lines.map_while(Result::ok).count());
            std::thread::sleep(Duration::from_millis(200 + rng.below(1_200)));
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            assert!(!status.success(), "child ended before it was killed");
            let _ = reader.join();
        }
        sims.clear_callback_target();
    }
    check(dir.path(), &sims, orders);
    rt.block_on(sims.shutdown());
}

fn check(dir: &Path, sims: &Simulators, orders: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = EventLog::open(LogConfig::new(dir)).unwrap();
        let report = log.verify(&mut |_| {}).unwrap();
        let path = CommandPath::new(log.clone());
        let mut completed = 0;
        let mut fallout_lines = 0;
        for i in 0..orders {
            let order = order_id(&path, i).await;
            let state = path.load::<OrderDecider>(&order_stream(&order)).unwrap().state;
            match &state {
                OrderState::Completed(_) => completed += 1,
                OrderState::Open(o) => {
                    for line in &o.lines {
                        match line.progress {
                            LineProgress::Active => {}
                            LineProgress::Fallout { .. } => fallout_lines += 1,
                            _ => panic!("order {order} is stuck: {state:#?}"),
                        }
                    }
                }
                other => panic!("order {order} is neither completed nor in fallout: {other:#?}"),
            }
        }
        let doubled = sims.duplicate_side_effects();
        assert_eq!(doubled, 0, "a side effect was applied twice");
        let with_evidence = every_call_outcome_has_its_evidence(&log);
        eprintln!("crash: {with_evidence} call outcomes in the log, each with its evidence");
        let rejected: usize = [TargetSystem::Inventory, TargetSystem::Provisioning, TargetSystem::Billing]
            .iter()
            .flat_map(|s| sims.ledger(*s))
            .filter(|e| e.state == "REJECTED" || e.state == "ERR")
            .count();
        assert_eq!(fallout_lines, rejected, "every fallout is an injected rejection");
        eprintln!(
            "crash: {} events verified; {completed} orders completed, {} with fallout ({fallout_lines} lines), {doubled} doubled effects",
            report.events,
            orders as usize - completed
        );
        log.close().await;
    });
}

/// Every outcome of a real call recorded in the log (an observation made
/// by the dispatcher or by reconciliation) has its call evidence stored:
/// the evidence is attached to the append that records the outcome, so
/// the journal frame that makes the outcome durable makes it durable too.
/// (Before, it went to sled on its own, and an outcome observed in the
/// last half second before a kill could survive without it.) Returns how
/// many outcomes were checked.
fn every_call_outcome_has_its_evidence(log: &EventLog) -> usize {
    use domain::handoff::HandoffEvent as E;
    use domain::outcome::ObservationSource;
    let evidence = integration::evidence::EvidenceStore::open(log).unwrap();
    let mut checked = 0;
    for record in log.iter_all(0) {
        let record = record.unwrap();
        if !record.stream_id.starts_with("handoff-") {
            continue;
        }
        let event: E = eventlog::decode_payload(&record.payload).unwrap();
        let observation = match &event {
            E::HandoffAccepted { observation }
            | E::HandoffSucceeded { observation, .. }
            | E::HandoffRejected { observation, .. }
            | E::HandoffOutcomeUnknown { observation }
            | E::HandoffRetryScheduled { observation, .. }
            | E::HandoffObservationNoted { observation } => Some(observation),
            E::HandoffFalloutRaised { observation, .. } => observation.as_ref(),
            _ => None,
        };
        let Some(observation) = observation else {
            continue;
        };
        let source = match observation.source {
            ObservationSource::Dispatch => "dispatch",
            ObservationSource::Reconciliation => "reconciliation",
            ObservationSource::Callback => continue,
        };
        // Outcomes the dispatcher made up without calling carry no evidence.
        if matches!(
            observation.raw_code.as_deref(),
            Some("DISPATCH_INTERRUPTED" | "RECOVERY_REPLAY")
        ) {
            continue;
        }
        let stored = evidence.for_handoff(&observation.handoff_id).unwrap();
        assert!(
            stored.iter().any(|e| e.source == source),
            "the {source} outcome at position {} of handoff {} has no stored evidence",
            record.position,
            observation.handoff_id
        );
        checked += 1;
    }
    checked
}

async fn order_id(path: &CommandPath, i: u32) -> OrderId {
    // Accepting again is a no-op that returns the same order id.
    application::testing::accept_sample_quote(path, "t1", &format!("q{i}"), &["l1", "l2", "l3"])
        .await
        .unwrap()
}

fn child() {
    let dir = PathBuf::from(std::env::var(DIR_ENV).unwrap());
    let settle = std::env::var(MODE_ENV)
        .map(|m| m == "settle")
        .unwrap_or(false);
    let orders: u32 = env_or(ORDERS_ENV, 8);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let log =
            EventLog::open(LogConfig::new(&dir).durability(Durability::ProcessCrashSafe)).unwrap();
        let path = CommandPath::new(log.clone());
        let mut systems = SystemsConfig::default();
        let base = std::env::var(CONFIG_ENV).unwrap();
        for pair in base.split(',') {
            let (name, url) = pair.split_once('=').unwrap();
            let system = integration::config::parse_system(name).unwrap();
            let mut c = integration::config::SystemConfig::new(url);
            if integration::config::sends_callbacks(system) {
                c.callback_secrets = vec![SECRET.into()];
            }
            c.connect_timeout_ms = 200;
            c.read_timeout_ms = 300;
            c.sla_ms = 700;
            c.retry.base_ms = 50;
            c.retry.max_ms = 400;
            c.retry.max_attempts = 8;
            systems = systems.with_system("t1", system, c);
        }
        systems.reconciliation.interval_ms = 200;
        let fulfillment = Fulfillment::start(
            path.clone(),
            systems,
            FulfillmentOptions {
                park_sweep_ms: 100,
                ..FulfillmentOptions::default()
            },
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("CALLBACK http://{}", listener.local_addr().unwrap());
        let app = callbacks::router(fulfillment.callback_inbox());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut ids = Vec::new();
        for i in 0..orders {
            ids.push(order_id(&path, i).await);
        }
        if !settle {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let settled = ids.iter().all(|id| {
                match path
                    .load::<OrderDecider>(&order_stream(id))
                    .map(|l| l.state)
                {
                    Ok(OrderState::Completed(_)) => true,
                    Ok(OrderState::Open(o)) => o.lines.iter().all(|l| {
                        matches!(
                            l.progress,
                            LineProgress::Active | LineProgress::Fallout { .. }
                        )
                    }),
                    _ => false,
                }
            });
            if settled {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("child: not settled in time: {:#?}", fulfillment.status());
                std::process::exit(2);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        fulfillment.shutdown().await;
        log.close().await;
        println!("SETTLED");
    });
}
