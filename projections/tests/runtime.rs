//! The live runtime: catch-up, following, status, wait_for, failures,
//! restarts and online rebuilds.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use common::{generator, TestLog, WAIT};
use domain::ids::TenantId;
use domain::testing::fixtures;
use eventlog::{AppendRequest, ExpectedVersion, NewEvent};
use projections::{ProjectionConfig, ProjectionError, Projections, PROJECTOR_NAMES};

#[test]
fn it_catches_up_then_follows_live_appends_and_reports_lag_zero() {
    let t = TestLog::new();
    let mut g = generator(7);
    t.generate(&mut g, 3_000);
    let p = Projections::start(t.log.clone()).unwrap();
    let head = t.log.next_position();
    p.wait_for(head, WAIT).unwrap();
    t.generate(&mut g, 2_000);
    let head = t.log.next_position();
    p.wait_for(head, WAIT).unwrap();
    let status = p.status();
    assert_eq!(status.len(), PROJECTOR_NAMES.len());
    for s in &status {
        assert_eq!(s.checkpoint, head, "{}", s.name);
        assert_eq!(s.lag, 0, "{}", s.name);
        assert!(s.failure.is_none(), "{}: {:?}", s.name, s.failure);
        assert!(s.running);
    }
    let read = p.read_models();
    let tenant = TenantId::new("tenant-0");
    let quotes = read.quotes(&tenant, &Default::default(), None, 50).unwrap();
    assert!(!quotes.items.is_empty());
    let dash = read
        .dashboard(&tenant, fixtures::T0.0 + 86_400_000)
        .unwrap();
    assert!(!dash.targets.is_empty());
    p.shutdown();
    assert!(p.status().iter().all(|s| !s.running));
}

#[test]
fn a_restart_resumes_at_the_checkpoint_without_double_counting() {
    let t = TestLog::new();
    let mut g = generator(11);
    t.generate(&mut g, 2_000);
    let p = Projections::start(t.log.clone()).unwrap();
    p.wait_for(t.log.next_position(), WAIT).unwrap();
    p.shutdown();
    drop(p);
    t.generate(&mut g, 2_000);
    let p = Projections::start(t.log.clone()).unwrap();
    p.wait_for(t.log.next_position(), WAIT).unwrap();
    let live = p.read_models().digests().unwrap();
    p.shutdown();
    drop(p);
    Projections::rebuild_offline(&t.log, &ProjectionConfig::default(), &[], &mut |_, _| {})
        .unwrap();
    let rebuilt = t.project().digests().unwrap();
    for (a, b) in live.iter().zip(&rebuilt) {
        assert_eq!(a.sha256, b.sha256, "{} differs after restart", a.name);
        assert_eq!(b.generation, a.generation + 1);
    }
}

#[test]
fn an_undecodable_event_stops_the_projectors_that_need_it_and_the_others_keep_running() {
    let t = TestLog::new();
    t.append("quote-q1", "t1", "c1", &fixtures::quote_ready_to_accept());
    // A handoff event whose payload is garbage.
    let bad = NewEvent::new("HandoffSent", "t1", "c2", vec![0xff, 0xff, 0xff]);
    let bad_position = t
        .log
        .append_blocking(AppendRequest::new(
            "handoff-h1",
            ExpectedVersion::Any,
            vec![bad],
        ))
        .unwrap()
        .last_position;
    let mut q2 = fixtures::quote_created();
    if let domain::quote::QuoteEvent::QuoteCreated { quote_id, .. } = &mut q2 {
        *quote_id = domain::ids::QuoteId::new("q2");
    }
    t.append("quote-q2", "t1", "c3", &[q2]);
    let p = Projections::start(t.log.clone()).unwrap();
    let head = t.log.next_position();
    let err = p.wait_for(head, WAIT).unwrap_err();
    assert!(
        matches!(err, ProjectionError::Failed { position, .. } if position == bad_position),
        "{err}"
    );
    // The others reach the head.
    std::thread::sleep(Duration::from_millis(200));
    for s in p.status() {
        match s.name.as_str() {
            "handoffs" | "fallout" => {
                let f = s.failure.expect("stopped");
                assert_eq!(f.position, bad_position, "{}", s.name);
                assert_eq!(s.checkpoint, bad_position, "{}", s.name);
                assert!(f.message.contains("HandoffSent"), "{}", f.message);
            }
            _ => {
                assert!(s.failure.is_none(), "{}: {:?}", s.name, s.failure);
                assert_eq!(s.checkpoint, head, "{}", s.name);
            }
        }
    }
    // The operator can see it after a restart too (recorded in proj/meta).
    let read = p.read_models();
    assert_eq!(
        read.recorded_failure("handoffs")
            .unwrap()
            .map(|f| f.position),
        Some(bad_position)
    );
    assert_eq!(read.recorded_failure("quotes").unwrap(), None);
    // The quote read model still answers.
    assert!(read
        .quote(&TenantId::new("t1"), &domain::ids::QuoteId::new("q1"))
        .unwrap()
        .is_some());
}

/// A row-opening event is stored without reading the tree, because it is
/// first in its stream; anywhere else it stops its projector, as a second
/// opening of a stored row did.
#[test]
fn an_opening_event_later_in_its_stream_stops_its_projector() {
    let t = TestLog::new();
    t.append("quote-q1", "t1", "c1", &[fixtures::quote_created()]);
    // A second commit between the two, so the row is stored, not cached only.
    let p = Projections::start(t.log.clone()).unwrap();
    p.wait_for(t.log.next_position(), WAIT).unwrap();
    p.shutdown();
    drop(p);
    let again = t
        .append("quote-q1", "t1", "c2", &[fixtures::quote_created()])
        .last_position;
    t.append("quote-q2", "t1", "c3", &[second_quote()]);
    let p = Projections::start(t.log.clone()).unwrap();
    let err = p.wait_for(t.log.next_position(), WAIT).unwrap_err();
    assert!(
        matches!(err, ProjectionError::Failed { position, .. } if position == again),
        "{err}"
    );
    let quotes = p.status().into_iter().find(|s| s.name == "quotes").unwrap();
    let failure = quotes.failure.expect("stopped");
    assert_eq!(failure.position, again);
    assert!(
        failure.message.contains("QuoteCreated at version 2"),
        "{}",
        failure.message
    );
    // The quote stays as its first event made it.
    let read = p.read_models();
    let q1 = read
        .quote(&TenantId::new("t1"), &domain::ids::QuoteId::new("q1"))
        .unwrap()
        .unwrap();
    assert_eq!(q1.version, 1);
}

fn second_quote() -> domain::quote::QuoteEvent {
    let mut q2 = fixtures::quote_created();
    if let domain::quote::QuoteEvent::QuoteCreated { quote_id, .. } = &mut q2 {
        *quote_id = domain::ids::QuoteId::new("q2");
    }
    q2
}

#[test]
fn an_online_rebuild_swaps_in_an_identical_generation_while_the_old_one_serves() {
    let t = TestLog::new();
    let mut g = generator(5);
    t.generate(&mut g, 4_000);
    let p = Projections::start_with(
        t.log.clone(),
        ProjectionConfig {
            batch_size: 256,
            ..ProjectionConfig::default()
        },
    )
    .unwrap();
    p.wait_for(t.log.next_position(), WAIT).unwrap();
    let before = p.read_models().digests().unwrap();
    // Keep appending from another thread while the rebuild runs.
    let writer = {
        let log = t.log.clone();
        std::thread::spawn(move || {
            let mut g = generator(6);
            for a in g.take_events(2_000) {
                log.append_blocking(a.request()).unwrap();
            }
        })
    };
    let read = p.read_models();
    let tenant = TenantId::new("tenant-1");
    let mut calls = 0;
    let reports = p
        .rebuild_all(&mut |done, total| {
            calls += 1;
            assert!(done <= total);
            // The old generation keeps answering during the rebuild.
            assert!(!read
                .quotes(&tenant, &Default::default(), None, 5)
                .unwrap()
                .items
                .is_empty());
        })
        .unwrap();
    assert!(calls > 0);
    writer.join().unwrap();
    p.wait_for(t.log.next_position(), WAIT).unwrap();
    assert_eq!(reports.len(), PROJECTOR_NAMES.len());
    let after = p.read_models().digests().unwrap();
    for ((b, a), r) in before.iter().zip(&after).zip(&reports) {
        assert_eq!(a.generation, b.generation + 1, "{}", a.name);
        assert_eq!(r.generation, a.generation);
    }
    p.shutdown();
    drop(p);
    // And what the swapped-in generations hold equals a from-scratch rebuild.
    Projections::rebuild_offline(&t.log, &ProjectionConfig::default(), &[], &mut |_, _| {})
        .unwrap();
    let rebuilt = t.project().digests().unwrap();
    for (a, b) in after.iter().zip(&rebuilt) {
        assert_eq!(a.sha256, b.sha256, "{}", a.name);
    }
    // Old generations are gone.
    let names: Vec<String> = t
        .log
        .projection_db()
        .unwrap()
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .filter(|n| n.starts_with("proj/") && n != "proj/meta")
        .collect();
    assert_eq!(names.len(), PROJECTOR_NAMES.len(), "{names:?}");
}

#[test]
fn a_background_rebuild_shows_in_status_and_refuses_a_second_one() {
    let t = TestLog::new();
    let mut g = generator(9);
    t.generate(&mut g, 3_000);
    let p = Projections::start(t.log.clone()).unwrap();
    p.wait_for(t.log.next_position(), WAIT).unwrap();
    p.start_rebuild("audit").unwrap();
    match p.start_rebuild("audit") {
        Err(ProjectionError::RebuildInProgress(name)) => assert_eq!(name, "audit"),
        Ok(()) => {} // the first one may already be done
        Err(e) => panic!("{e}"),
    }
    assert!(matches!(
        p.start_rebuild("nope"),
        Err(ProjectionError::UnknownProjector(_))
    ));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = p.status().into_iter().find(|s| s.name == "audit").unwrap();
        if s.generation == 1 && s.rebuild.is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rebuild did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_async_reads_your_writes() {
    let t = TestLog::new();
    let p = Projections::start(t.log.clone()).unwrap();
    let created = fixtures::quote_created();
    let event = NewEvent::new(
        "QuoteCreated",
        "t1",
        "c1",
        eventlog::encode_payload(&created).unwrap(),
    );
    let outcome = t
        .log
        .append(AppendRequest::new(
            "quote-q1",
            ExpectedVersion::NoStream,
            vec![event],
        ))
        .await
        .unwrap();
    p.wait_for_async(outcome.last_position + 1, WAIT)
        .await
        .unwrap();
    let q = p
        .read_models()
        .quote(&TenantId::new("t1"), &fixtures::quote_id())
        .unwrap();
    assert!(q.is_some());
    let err = p
        .wait_for_async(outcome.last_position + 100, Duration::from_millis(50))
        .await;
    assert!(matches!(err, Err(ProjectionError::Timeout { .. })));
}
