//! A consumer in a second process rebuilds the order dashboard from
//! JetStream alone, and its counts equal the local projection's.
//!
//! The parent generates realistic quote-to-order histories over four
//! tenants, relays only the integration events, then runs this binary
//! again as the consumer (`RELAY_CONSUMER_CHILD=<stream>`): a durable
//! JetStream pull consumer on `<prefix>.*.order.>` that folds
//! OrderCaptured / OrderCompleted / OrderCancelled into counts of orders
//! by status per tenant and prints them as JSON. The parent compares them
//! with the `projections` crate's order read model on the same log.
//! `RELAY_TEST_EVENTS` sets the history size (default 4,000).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod relay_common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use domain::ids::TenantId;
use eventlog::Durability;
use futures_util::StreamExt;
use projections::{OrderFilter, OrderStatus, ProjectionConfig, Projections, MAX_PAGE_SIZE};
use relay::{PublishMode, Relay, RelayConfig, RelayedEvent};
use relay_common::*;

const CHILD_ENV: &str = "RELAY_CONSUMER_CHILD";
const PREFIX_ENV: &str = "RELAY_CONSUMER_PREFIX";

/// Orders by status per tenant: `[open, completed, cancelled]`.
type Counts = BTreeMap<String, [u64; 3]>;

fn main() {
    if let Ok(stream) = std::env::var(CHILD_ENV) {
        let prefix = std::env::var(PREFIX_ENV).unwrap();
        let counts = runtime().block_on(consume(&stream, &prefix));
        println!("COUNTS {}", serde_json::to_string(&counts).unwrap());
        return;
    }
    let started = std::time::Instant::now();
    parent();
    println!(
        "test relay_consumer::a_second_process_rebuilds_the_order_dashboard ({:.1?}) ... ok",
        started.elapsed()
    );
    println!("relay_consumer: 1 passed, 0 failed");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The downstream service: reads order subjects only, with a durable pull
/// consumer and explicit acks, as a real one would.
async fn consume(stream: &str, prefix: &str) -> Counts {
    let js = jetstream(NATS_URL).await;
    let handle = js.get_stream(stream).await.unwrap();
    let consumer = handle
        .create_consumer(pull::Config {
            durable_name: Some("dashboard".to_owned()),
            filter_subject: format!("{prefix}.*.order.>"),
            ack_policy: AckPolicy::Explicit,
            ..pull::Config::default()
        })
        .await
        .unwrap();
    let mut consumer = consumer;
    let pending = consumer.info().await.unwrap().num_pending;
    let mut messages = consumer.messages().await.unwrap();
    let mut status: BTreeMap<(String, String), usize> = BTreeMap::new();
    for _ in 0..pending {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("stalled")
            .expect("ended")
            .unwrap();
        let event: RelayedEvent<serde_json::Value> =
            serde_json::from_slice(&message.payload).unwrap();
        let slot = match event.event_type.as_str() {
            "OrderCaptured" => Some(0),
            "OrderCompleted" => Some(1),
            "OrderCancelled" => Some(2),
            _ => None,
        };
        if let Some(slot) = slot {
            status.insert((event.tenant_id, event.aggregate_id), slot);
        }
        message.ack().await.unwrap();
    }
    let mut counts = Counts::new();
    for ((tenant, _), slot) in status {
        counts.entry(tenant).or_default()[slot] += 1;
    }
    counts
}

fn projected(log: &eventlog::EventLog, tenants: &[TenantId]) -> Counts {
    let models =
        Projections::catch_up_offline(log, &ProjectionConfig::default(), &mut |_, _| {}).unwrap();
    let mut counts = Counts::new();
    for tenant in tenants {
        let mut row = [0u64; 3];
        for (slot, status) in [
            OrderStatus::Open,
            OrderStatus::Completed,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .enumerate()
        {
            let filter = OrderFilter {
                status: Some(status),
                has_fallout: None,
            };
            let mut cursor: Option<String> = None;
            loop {
                let page = models
                    .orders(tenant, &filter, cursor.as_deref(), MAX_PAGE_SIZE)
                    .unwrap();
                row[slot] += page.items.len() as u64;
                match page.next_cursor {
                    Some(next) if page.has_more => cursor = Some(next),
                    _ => break,
                }
            }
        }
        if row != [0; 3] {
            counts.insert(tenant.as_str().to_owned(), row);
        }
    }
    counts
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let mut generator = generator(21, 4);
    let tenants = generator.tenants();
    append(&log, &mut generator, events_from_env(4_000));
    let config = RelayConfig {
        publish: PublishMode::Integration,
        ..config(NATS_URL, &unique("consumer"))
    };
    let rt = runtime();
    rt.block_on(async {
        let relay = Relay::start(log.clone(), config.clone()).await.unwrap();
        caught_up(&relay, Duration::from_secs(60)).await;
        relay.shutdown().await;
    });

    let output = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &config.stream)
        .env(PREFIX_ENV, &config.subject_prefix)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("COUNTS "))
        .unwrap();
    let remote: Counts = serde_json::from_str(line).unwrap();

    let local = projected(&log, &tenants);
    assert_eq!(remote, local, "JetStream consumer vs local projection");
    let total: [u64; 3] = local
        .values()
        .fold([0; 3], |a, r| [a[0] + r[0], a[1] + r[1], a[2] + r[2]]);
    assert!(
        total[0] > 0 && total[1] > 0,
        "the history has open and completed orders: {total:?}"
    );
    println!("order counts per tenant [open, completed, cancelled]: {local:?}");
    rt.block_on(async {
        log.close().await;
        delete_stream(NATS_URL, &config.stream).await;
    });
}
