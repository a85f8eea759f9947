//! An old log and a new log of the same history rebuild into the same read
//! models (issue 13, item 2; ADR 0013).
//!
//! The history comes from the deterministic generator. The new log stores it
//! as this build writes it (`QuotePriced` at schema version 2). The old log
//! stores the same events with the same ids, but every `QuotePriced` at
//! schema version 1 with its version 1 payload bytes (written through the
//! frozen mirror, whose bytes equal the committed golden bytes of the code
//! before version 2: `domain/tests/upcast.rs`). Both are rebuilt from
//! position 0 with the machinery `oms-replay rebuild --all` uses
//! (`Projections::rebuild_offline`, then `ReadModels::digests`), and every
//! read model's digest must be equal.
#![allow(clippy::unwrap_used)]

mod common;

use common::{generator, TestLog};
use domain::handoff::HandoffEvent;
use domain::ids::{QuoteId, StreamKind, TenantId};
use domain::quote::QuoteEvent;
use domain::testing::fixtures::{self, PRICE_BOOK};
use eventlog::NewEvent;
use projections::testing::GeneratedAppend;
use projections::{ProjectionConfig, Projections, ReadModels, TreeDigest, PROJECTOR_NAMES};

const EVENTS: u64 = 10_000;

/// The event as version 1 stored it, when it is a `QuotePriced` or a
/// `HandoffResolved` (which did not name its subject before version 2).
fn as_version_1(mut event: NewEvent) -> NewEvent {
    if event.event_type == "QuotePriced" {
        let current: QuoteEvent = eventlog::decode_payload(&event.payload).unwrap();
        let old = fixtures::quote_priced_v1(&current).expect("version 1 can say it");
        event.payload = eventlog::encode_payload(&old).unwrap();
        event.schema_version = 1;
    }
    if event.event_type == "HandoffResolved" {
        let current: HandoffEvent = eventlog::decode_payload(&event.payload).unwrap();
        let old = fixtures::handoff_resolved_v1(&current).expect("a HandoffResolved");
        event.payload = eventlog::encode_payload(&old).unwrap();
        event.schema_version = 1;
    }
    event
}

fn write(log: &TestLog, appends: &[GeneratedAppend], old: bool) {
    for append in appends {
        let mut append = append.clone();
        if old {
            append.events = append.events.into_iter().map(as_version_1).collect();
        }
        log.log.append_blocking(append.request()).unwrap();
    }
}

/// Rebuilds every read model as `oms-replay rebuild --all` does and returns
/// their digests, checking that no projector stopped.
fn rebuild(log: &TestLog) -> (ReadModels, Vec<TreeDigest>) {
    let reports =
        Projections::rebuild_offline(&log.log, &ProjectionConfig::default(), &[], &mut |_, _| {})
            .unwrap();
    assert_eq!(reports.len(), PROJECTOR_NAMES.len());
    let read = ReadModels::open(&log.log, ProjectionConfig::default().sla).unwrap();
    for name in PROJECTOR_NAMES {
        assert_eq!(read.recorded_failure(name).unwrap(), None, "{name}");
    }
    let digests = read.digests().unwrap();
    (read, digests)
}

/// (schema version, count) of the `QuotePriced` records of a log.
fn priced_versions(log: &TestLog) -> Vec<(u16, usize)> {
    versions_of(log, "QuotePriced")
}

/// (schema version, count) of the records of `event_type` in a log.
fn versions_of(log: &TestLog, event_type: &str) -> Vec<(u16, usize)> {
    let mut versions = std::collections::BTreeMap::new();
    for position in 0..log.log.next_position() {
        let record = log.log.read_at(position).unwrap().unwrap();
        if record.event_type == event_type {
            *versions.entry(record.schema_version).or_insert(0) += 1;
        }
    }
    versions.into_iter().collect()
}

#[test]
fn a_rebuild_from_an_old_log_equals_one_from_a_new_log_by_digest() {
    let appends = generator(13).take_events(EVENTS);
    let new = TestLog::new();
    let old = TestLog::new();
    write(&new, &appends, false);
    write(&old, &appends, true);
    assert_eq!(new.log.next_position(), old.log.next_position());

    let new_versions = priced_versions(&new);
    let old_versions = priced_versions(&old);
    let priced = new_versions.iter().map(|(_, n)| n).sum::<usize>();
    assert!(priced > 100, "the history prices quotes: {new_versions:?}");
    assert_eq!(new_versions, vec![(2, priced)]);
    assert_eq!(old_versions, vec![(1, priced)]);
    let resolved = versions_of(&new, "HandoffResolved");
    let closed = resolved.iter().map(|(_, n)| n).sum::<usize>();
    assert!(closed > 0, "the history closes cases: {resolved:?}");
    assert_eq!(resolved, vec![(2, closed)]);
    assert_eq!(versions_of(&old, "HandoffResolved"), vec![(1, closed)]);

    let (new_read, new_digests) = rebuild(&new);
    let (old_read, old_digests) = rebuild(&old);
    for (n, o) in new_digests.iter().zip(&old_digests) {
        assert_eq!(n.checkpoint, new.log.next_position(), "{}", n.name);
        assert!(n.rows > 0, "{} is empty", n.name);
        assert_eq!(
            (&n.name, n.rows, &n.sha256, n.checkpoint),
            (&o.name, o.rows, &o.sha256, o.checkpoint),
            "read model {} differs between the old and the new log",
            n.name
        );
    }

    // And the old log's quotes show the upcast field.
    let priced_append = appends
        .iter()
        .find(|a| a.events.iter().any(|e| e.event_type == "QuotePriced"))
        .unwrap();
    let (kind, id) = StreamKind::split(&priced_append.stream_id).unwrap();
    assert_eq!(kind, StreamKind::Quote);
    let tenant = TenantId::new(priced_append.events[0].tenant_id.clone());
    let from_old = old_read.quote(&tenant, &QuoteId::new(id)).unwrap().unwrap();
    let price = from_old.price.as_ref().expect("priced");
    assert_eq!(price.price_book, PRICE_BOOK);
    assert_eq!(
        Some(from_old),
        new_read.quote(&tenant, &QuoteId::new(id)).unwrap()
    );
}
