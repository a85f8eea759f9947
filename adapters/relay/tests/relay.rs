//! The JetStream relay against a real NATS server: the machine's server on
//! 127.0.0.1:4222 (each test on its own stream and subject prefix, deleted
//! at the end), or a private `nats-server` child for the outage test.
//!
//! `RELAY_TEST_EVENTS` sets the generated history size (default 3,000).
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod relay_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use domain::integration::is_integration_event;
use eventlog::Durability;
use relay::{PublishMode, Relay, RelayConfig, RelayedEvent, CONSUMER_NAME};
use relay_common::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_once_and_in_order_per_subject() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let mut generator = generator(11, 4);
    append_async(&log, &mut generator, events_from_env(3_000)).await;
    let config = config(NATS_URL, &unique("order"));
    let relay = Relay::start(log.clone(), config.clone()).await.unwrap();
    caught_up(&relay, WAIT).await;
    // Live: events appended while the relay follows the log.
    let head = append_async(&log, &mut generator, 500).await;
    let status = caught_up(&relay, WAIT).await;
    assert_eq!(
        (
            status.checkpoint,
            status.head,
            status.published,
            status.skipped
        ),
        (head, head, head, 0)
    );
    assert!(
        status.connected && status.last_error.is_none(),
        "{status:?}"
    );
    assert!(log.consumers().unwrap().contains(&CONSUMER_NAME.to_owned()));

    let js = jetstream(NATS_URL).await;
    let messages = read_stream(&js, &config.stream).await;
    assert_eq!(messages.len() as u64, head, "one message per event");
    assert_eq!(
        assert_ordered_per_subject(&messages),
        head as usize,
        "ids are unique"
    );
    // Exclusive mode: the stream is the log, in order.
    let ids = log_ids(&log);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!((m.position, &m.msg_id), (i as u64, &ids[i]));
    }
    // Headers and body agree with the log.
    for m in messages.iter().step_by(97) {
        let record = log.read_at(m.position).unwrap().unwrap();
        let body: RelayedEvent<serde_json::Value> = serde_json::from_value(m.body.clone()).unwrap();
        assert_eq!(body.event_id, record.event_id);
        assert_eq!(body.event_type, record.event_type);
        assert_eq!(body.stream_id, record.stream_id);
        assert_eq!(
            m.subject,
            format!(
                "{}.{}.{}.{}",
                config.subject_prefix,
                record.tenant_id,
                record.stream_id.split('-').next().unwrap(),
                record.event_type
            )
        );
        assert_eq!(
            m.headers.get("Oms-Correlation-Id"),
            Some(&record.correlation_id)
        );
        assert_eq!(
            m.headers.get("Oms-Causation-Id"),
            record.causation_id.as_ref()
        );
        assert!(
            body.data.get(&record.event_type).is_some(),
            "data is the tagged domain event"
        );
    }
    relay.shutdown().await;
    log.close().await;
    delete_stream(NATS_URL, &config.stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_events_only_are_published_for_tenants_configured_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let head = append_async(&log, &mut generator(12, 3), events_from_env(3_000)).await;
    let config = RelayConfig {
        publish: PublishMode::Integration,
        tenants: BTreeMap::from([
            ("tenant-0".to_owned(), PublishMode::All),
            ("tenant-2".to_owned(), PublishMode::None),
        ]),
        ..config(NATS_URL, &unique("integ"))
    };
    let relay = Relay::start(log.clone(), config.clone()).await.unwrap();
    let status = caught_up(&relay, WAIT).await;
    let expected: Vec<u64> = log
        .iter_all(0)
        .map(Result::unwrap)
        .filter(|r| match r.tenant_id.as_str() {
            "tenant-0" => true,
            "tenant-2" => false,
            _ => is_integration_event(&r.event_type),
        })
        .map(|r| r.position)
        .collect();
    assert!(!expected.is_empty() && (expected.len() as u64) < head);
    assert_eq!(status.published, expected.len() as u64);
    assert_eq!(status.skipped, head - expected.len() as u64);
    let js = jetstream(NATS_URL).await;
    let messages = read_stream(&js, &config.stream).await;
    let positions: Vec<u64> = messages.iter().map(|m| m.position).collect();
    assert_eq!(positions, expected);
    let types: BTreeSet<&str> = messages
        .iter()
        .filter(|m| !m.subject.contains(".tenant-0."))
        .map(|m| m.subject.rsplit('.').next().unwrap())
        .collect();
    assert!(
        types.contains("OrderCaptured") && types.contains("QuoteAccepted"),
        "{types:?}"
    );
    assert!(types.iter().all(|t| is_integration_event(t)), "{types:?}");
    relay.shutdown().await;
    log.close().await;
    delete_stream(NATS_URL, &config.stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_publishes_nothing_twice_and_a_replay_is_dropped_by_the_duplicate_window() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let head = append_async(&log, &mut generator(13, 2), 1_000).await;
    let exclusive = config(NATS_URL, &unique("replay"));
    let relay = Relay::start(log.clone(), exclusive.clone()).await.unwrap();
    caught_up(&relay, WAIT).await;
    relay.shutdown().await;

    // Exclusive: a rewound checkpoint resumes after the stream's last event.
    log.consumer(CONSUMER_NAME)
        .unwrap()
        .reset_checkpoint(0)
        .unwrap();
    let relay = Relay::start(log.clone(), exclusive.clone()).await.unwrap();
    let status = caught_up(&relay, WAIT).await;
    assert_eq!((status.published, status.checkpoint), (0, head));
    relay.shutdown().await;

    // Shared stream (not exclusive): the replay is re-published and every
    // message is dropped by JetStream's duplicate window.
    log.consumer(CONSUMER_NAME)
        .unwrap()
        .reset_checkpoint(0)
        .unwrap();
    let shared = RelayConfig {
        exclusive: false,
        ..exclusive.clone()
    };
    let relay = Relay::start(log.clone(), shared).await.unwrap();
    let status = caught_up(&relay, WAIT).await;
    assert_eq!((status.published, status.duplicates), (head, head));
    relay.shutdown().await;

    let js = jetstream(NATS_URL).await;
    let messages = read_stream(&js, &exclusive.stream).await;
    assert_eq!(messages.len() as u64, head);
    assert_eq!(assert_ordered_per_subject(&messages), head as usize);
    log.close().await;
    delete_stream(NATS_URL, &exclusive.stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_stopped_for_a_while_then_started_loses_nothing() {
    let nats_dir = tempfile::tempdir().unwrap();
    let mut nats = PrivateNats::start(nats_dir.path());
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let mut generator = generator(14, 3);
    append_async(&log, &mut generator, 1_000).await;
    let config = config(&nats.url(), &unique("outage"));
    let relay = Relay::start(log.clone(), config.clone()).await.unwrap();
    caught_up(&relay, WAIT).await;

    // Stop NATS while events keep coming, some of them mid-publish.
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for _ in 0..10 {
                append(&log, &mut generator, 200);
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    nats.stop();
    writer.join().unwrap();
    let down = wait_status(&relay, WAIT, "the relay to see the outage", |s| {
        !s.connected && s.lag > 0 && s.last_error.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(relay.status().checkpoint <= log.next_position());

    nats.restart();
    let status = caught_up(&relay, WAIT).await;
    assert!(status.connected, "{status:?}");
    assert!(down.checkpoint < status.checkpoint);
    let head = log.next_position();
    let js = jetstream(&nats.url()).await;
    let messages = read_stream(&js, &config.stream).await;
    assert_eq!(messages.len() as u64, head, "every event exactly once");
    let ids = log_ids(&log);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!((m.position, &m.msg_id), (i as u64, &ids[i]), "in log order");
    }
    relay.shutdown().await;
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_never_moves_the_checkpoint_past_an_unacknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let head = append_async(&log, &mut generator(15, 2), events_from_env(3_000)).await;
    let config = RelayConfig {
        batch_size: 64,
        max_in_flight: 256,
        ..config(NATS_URL, &unique("stop"))
    };
    let relay = Relay::start(log.clone(), config.clone()).await.unwrap();
    wait_status(&relay, WAIT, "some progress", |s| s.checkpoint > 0).await;
    relay.shutdown().await;
    let checkpoint = log.consumer(CONSUMER_NAME).unwrap().checkpoint().unwrap();
    let js = jetstream(NATS_URL).await;
    let stored = read_stream(&js, &config.stream).await;
    // Every event below the checkpoint is in the stream.
    assert!(
        stored.len() as u64 >= checkpoint,
        "{} < {checkpoint}",
        stored.len()
    );
    for (i, m) in stored.iter().take(checkpoint as usize).enumerate() {
        assert_eq!(m.position, i as u64);
    }
    // A restart finishes the job without duplicates.
    let relay = Relay::start(log.clone(), config.clone()).await.unwrap();
    caught_up(&relay, WAIT).await;
    relay.shutdown().await;
    let messages = read_stream(&js, &config.stream).await;
    assert_eq!(messages.len() as u64, head);
    assert_eq!(assert_ordered_per_subject(&messages), head as usize);
    log.close().await;
    delete_stream(NATS_URL, &config.stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_shows_in_the_status_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let head = append_async(&log, &mut generator(16, 1), 200).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config(&format!("nats://127.0.0.1:{port}"), &unique("down"));
    let relay = Relay::start(log.clone(), config).await.unwrap();
    let status = wait_status(&relay, WAIT, "an error", |s| s.last_error.is_some()).await;
    assert!(!status.connected);
    assert_eq!(
        (status.checkpoint, status.lag, status.published),
        (0, head, 0)
    );
    assert!(status
        .prometheus_text()
        .contains(&format!("oms_relay_lag_events {head}\n")));
    relay.shutdown().await;
    log.close().await;
}

#[tokio::test]
async fn a_disabled_relay_does_not_start_and_a_bad_one_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let off = RelayConfig::default();
    assert!(Relay::start_if_enabled(log.clone(), off)
        .await
        .unwrap()
        .is_none());
    let bad = RelayConfig {
        enabled: true,
        max_in_flight: 0,
        ..RelayConfig::default()
    };
    let error = Relay::start_if_enabled(log.clone(), bad).await.unwrap_err();
    assert!(error.to_string().contains("relay.max_in_flight"), "{error}");
    log.close().await;
}

/// An event the stream refuses for its size is an event that cannot be
/// relayed: the relay stops there (`stoppedAt`, the cause in
/// `lastError`) with everything before it published in order and nothing
/// after it, in both modes. It used to halt and re-send its whole backlog
/// for ever with `stoppedAt` null and a later publish's knock-on error as
/// `lastError`; in shared mode it stored the events after it that fit,
/// ahead of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_stream_refuses_for_its_size_stops_the_relay_there_in_order() {
    for exclusive in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path(), Durability::Buffered);
        let mut generator = generator(17, 2);
        let head = append_async(&log, &mut generator, 300).await;
        let mut config = config(NATS_URL, &unique("small"));
        config.exclusive = exclusive;
        // The stream exists first, with a message size some events pass.
        let js = jetstream(NATS_URL).await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            max_message_size: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
        let too_large = (0..head)
            .find(|p| {
                let record = log.read_at(*p).unwrap().unwrap();
                relay::message_size(&record, &config.subject_prefix).unwrap_or(0) > 1_000
            })
            .expect("some event is over 1,000 bytes");
        let relay = Relay::start(log.clone(), config.clone()).await.unwrap();
        // The stop shows a moment before the events ahead of it are
        // acknowledged and the checkpoint committed at it.
        let status = wait_status(&relay, WAIT, "a stop", |s| {
            s.stopped_at.is_some() && s.stopped_at == Some(s.checkpoint)
        })
        .await;
        assert_eq!(
            status.stopped_at,
            Some(too_large),
            "{exclusive}: {status:?}"
        );
        assert_eq!(status.checkpoint, too_large, "{exclusive}: {status:?}");
        let error = status.last_error.clone().unwrap_or_default();
        assert!(
            error.contains(&format!("position {too_large}")) && error.contains("1000"),
            "{exclusive}: {error}"
        );
        let messages = read_stream(&js, &config.stream).await;
        let positions: Vec<u64> = messages.iter().map(|m| m.position).collect();
        assert_eq!(
            positions,
            (0..too_large).collect::<Vec<_>>(),
            "{exclusive}: everything before it, in order, and nothing after"
        );
        relay.shutdown().await;
        log.close().await;
        delete_stream(NATS_URL, &config.stream).await;
    }
}

/// A start with NATS up reports no connection error: a probe saw every
/// start log "relay paused: NATS ... is unreachable: not connected" and
/// show it as `lastError` for about 100 ms, the symptoms the runbook
/// gives for a NATS outage (the client connects in the background after
/// `connect` returns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_with_nats_up_reports_no_connection_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let mut generator = generator(13, 2);
    append_async(&log, &mut generator, 50).await;
    let relay = Relay::start(log.clone(), config(NATS_URL, &unique("start")))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(600) {
        let status = relay.status();
        assert!(status.last_error.is_none(), "{status:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    caught_up(&relay, WAIT).await;
}

/// A server list (`url = "nats://a:4222,nats://b:4222"`), which the
/// configuration takes, is connected to: the start failed with "invalid
/// port number" and exit 1 after the data directory was set up (a probe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_servers_is_connected_to_through_the_one_that_answers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path(), Durability::Buffered);
    let mut generator = generator(17, 2);
    let head = append_async(&log, &mut generator, 50).await;
    let list = format!("nats://127.0.0.1:1,{NATS_URL}");
    let relay = Relay::start(log.clone(), config(&list, &unique("list")))
        .await
        .unwrap();
    let status = caught_up(&relay, WAIT).await;
    assert_eq!(status.published, head, "{status:?}");
}
