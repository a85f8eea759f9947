//! Quote expiry over a real log: a priced quote expires once its price's
//! validity has ended, not before; a quote re-priced meanwhile keeps living
//! until its new price ends; accepted and withdrawn quotes are never
//! touched; the timers survive a restart of the process.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use application::clock::Clock;
use application::expiry::{ExpiryOptions, QuoteExpiry, NAME};
use application::{CommandContext, CommandPath};
use domain::idempotency::CommandKey;
use domain::ids::{quote_stream, QuoteId, TenantId};
use domain::quote::{QuoteCommand, QuoteState};
use domain::testing::fixtures::*;
use domain::QuoteDecider;
use eventlog::{Durability, EventLog, LogConfig};
use tokio::sync::watch;

const DAY: u64 = 24 * 60 * 60 * 1_000;

#[derive(Debug)]
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

async fn run(path: &CommandPath, quote: &str, command: QuoteCommand, n: usize) {
    let context = CommandContext::new(
        CommandKey::client(&TenantId::new("t1"), format!("{quote}:{n}")),
        "t1",
        format!("corr-{quote}"),
    );
    path.execute::<QuoteDecider>(&quote_stream(&QuoteId::new(quote)), &command, &context)
        .await
        .unwrap();
}

/// A quote with one line, priced at T0 and valid for `valid_days`.
async fn priced(path: &CommandPath, quote: &str, valid_days: u64) {
    run(
        path,
        quote,
        QuoteCommand::Create {
            quote_id: QuoteId::new(quote),
            tenant_id: tenant(),
            customer: customer(),
            catalog_version: "catalog-1".into(),
            customer_suspension: None,
            catalog: domain::catalog::VersionStanding::Unmanaged,
            at: at(0),
        },
        0,
    )
    .await;
    run(
        path,
        quote,
        QuoteCommand::AddLine {
            line: line("l1"),
            at: at(1),
        },
        1,
    )
    .await;
    reprice(path, quote, 1, valid_days, 2).await;
}

async fn reprice(path: &CommandPath, quote: &str, revision: u32, valid_days: u64, n: usize) {
    let mut price = price(revision, &["l1"], percent(0));
    price.valid_until = T0.plus_millis(valid_days * DAY);
    run(
        path,
        quote,
        QuoteCommand::Price {
            price,
            policy: approval_policy(),
            at: at(2),
        },
        n,
    )
    .await;
}

fn state(path: &CommandPath, quote: &str) -> QuoteState {
    let events = path
        .log()
        .read_stream(&quote_stream(&QuoteId::new(quote)), 1, 1_000)
        .unwrap();
    let decoded: Vec<domain::quote::QuoteEvent> = events
        .iter()
        .filter_map(|r| match application::events::decode(r) {
            Ok(domain::events::AnyEvent::Quote(e)) => Some(e),
            _ => None,
        })
        .collect();
    domain::decider::fold::<QuoteDecider, _>(&decoded)
}

async fn caught_up(log: &EventLog) {
    let store = log.consumer(NAME).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.checkpoint().unwrap() < log.next_position() {
        assert!(Instant::now() < deadline, "the timers never caught up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_expire_when_their_validity_ends_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig::new(dir.path()).durability(Durability::Buffered)).unwrap();
    let path = CommandPath::new(log.clone());
    let clock = Arc::new(ManualClock(AtomicI64::new(T0.plus_millis(DAY).0)));
    let options = ExpiryOptions {
        interval_ms: 3_600_000,
        per_tick: 16,
    };
    let (stop, stop_rx) = watch::channel(false);
    let (_probe, tasks) =
        QuoteExpiry::spawn(&log, path.clone(), clock.clone(), &options, stop_rx).unwrap();

    priced(&path, "q-ends", 30).await;
    priced(&path, "q-repriced", 30).await;
    reprice(&path, "q-repriced", 1, 90, 3).await;
    priced(&path, "q-withdrawn", 30).await;
    run(
        &path,
        "q-withdrawn",
        QuoteCommand::Withdraw {
            reason: "lost".into(),
            at: at(3),
        },
        4,
    )
    .await;
    caught_up(&log).await;
    let expiry = QuoteExpiry::new(path.clone(), clock.clone(), 16).unwrap();

    // Day 1: nothing is due.
    assert_eq!(expiry.tick().await.unwrap().expired, 0);
    assert!(matches!(state(&path, "q-ends"), QuoteState::Open(_)));

    // Day 31: the first price has ended; the re-priced quote lives on; the
    // withdrawn one has no timer.
    clock.0.store(T0.plus_millis(31 * DAY).0, Ordering::SeqCst);
    let report = expiry.tick().await.unwrap();
    assert_eq!((report.expired, report.refused), (1, 0), "{report:?}");
    assert!(matches!(state(&path, "q-ends"), QuoteState::Expired(_)));
    assert!(matches!(state(&path, "q-repriced"), QuoteState::Open(_)));
    assert!(matches!(
        state(&path, "q-withdrawn"),
        QuoteState::Withdrawn(_)
    ));
    caught_up(&log).await;
    assert_eq!(expiry.tick().await.unwrap(), Default::default());

    // A restart: the timers are rows committed with the checkpoint.
    let _ = stop.send(true);
    for task in tasks {
        task.await.unwrap();
    }
    let (stop, stop_rx) = watch::channel(false);
    let (_probe, tasks) =
        QuoteExpiry::spawn(&log, path.clone(), clock.clone(), &options, stop_rx).unwrap();
    let expiry = QuoteExpiry::new(path.clone(), clock.clone(), 16).unwrap();
    clock.0.store(T0.plus_millis(91 * DAY).0, Ordering::SeqCst);
    let report = expiry.tick().await.unwrap();
    assert_eq!(report.expired, 1, "{report:?}");
    let QuoteState::Expired(_) = state(&path, "q-repriced") else {
        panic!("{:?}", state(&path, "q-repriced"))
    };
    // The same due timer ticked again (a crash before the row moved)
    // meets the first outcome: no second expiry event.
    caught_up(&log).await;
    let events = log
        .read_stream(&quote_stream(&QuoteId::new("q-repriced")), 1, 100)
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "QuoteExpired")
            .count(),
        1
    );
    let _ = stop.send(true);
    for task in tasks {
        task.await.unwrap();
    }
}
