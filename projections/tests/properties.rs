//! Property tests over random valid histories:
//! - the read models built incrementally (live runtime, appends in chunks,
//!   small and irregular batches and commits) equal a from-scratch rebuild,
//!   compared by a digest of every tree;
//! - with random ids across many tenants, no query of tenant A returns
//!   anything of tenant B.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{TestLog, WAIT};
use domain::ids::{HandoffId, OrderId, QuoteId, StreamKind, TenantId};
use domain::testing::fixtures::T0;
use projections::testing::{HistoryConfig, HistoryGenerator};
use projections::{
    CaseStatus, FalloutFilter, HandoffFilter, OrderFilter, ProjectionConfig, Projections,
    QuoteFilter, ReadModels,
};
use proptest::prelude::*;

fn config(seed: u64, tenants: usize, journeys: usize, fallout: u32, resolve: u32) -> HistoryConfig {
    HistoryConfig {
        seed,
        tenants,
        concurrent_journeys: journeys,
        fallout_percent: fallout,
        resolve_percent: resolve,
        ..HistoryConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn incremental_read_models_equal_a_rebuild(
        seed in 1u64..1_000_000,
        tenants in 1usize..4,
        journeys in 1usize..24,
        fallout in 0u32..60,
        resolve in 0u32..=100,
        chunks in prop::collection::vec(20u64..300, 1..5),
        batch in 1usize..64,
        commit_every in 1u64..400,
    ) {
        let t = TestLog::new();
        let mut g = HistoryGenerator::new(config(seed, tenants, journeys, fallout, resolve));
        let p = Projections::start_with(
            t.log.clone(),
            ProjectionConfig {
                batch_size: batch,
                commit_every,
                commit_interval: Duration::from_millis(1),
                ..ProjectionConfig::default()
            },
        )
        .unwrap();
        for n in &chunks {
            t.generate(&mut g, *n);
            p.wait_for(t.log.next_position(), WAIT).unwrap();
        }
        let live = p.read_models().digests().unwrap();
        p.shutdown();
        drop(p);
        Projections::rebuild_offline(&t.log, &ProjectionConfig::default(), &[], &mut |_, _| {}).unwrap();
        let rebuilt = t.project().digests().unwrap();
        for (a, b) in live.iter().zip(&rebuilt) {
            prop_assert_eq!(&a.sha256, &b.sha256, "{} differs ({} vs {} rows)", a.name, a.rows, b.rows);
            prop_assert_eq!(a.checkpoint, b.checkpoint);
            prop_assert_eq!(b.generation, a.generation + 1);
        }
    }

    #[test]
    fn no_query_of_one_tenant_returns_anything_of_another(seed in 1u64..1_000_000, tenants in 3usize..12) {
        let t = TestLog::new();
        let mut g = HistoryGenerator::new(config(seed, tenants, 16, 40, 50));
        t.generate(&mut g, 1_500);
        let read = t.project();
        check_isolation(&t, &read, tenants);
    }
}

#[derive(Default)]
struct Owned {
    quotes: BTreeSet<String>,
    orders: BTreeSet<String>,
    handoffs: BTreeSet<String>,
    streams: BTreeSet<String>,
    correlations: BTreeSet<String>,
}

fn check_isolation(t: &TestLog, read: &ReadModels, tenants: usize) {
    let mut by_tenant: BTreeMap<String, Owned> = BTreeMap::new();
    for r in t.log.iter_all(0) {
        let r = r.unwrap();
        let o = by_tenant.entry(r.tenant_id.clone()).or_default();
        let (kind, id) = StreamKind::split(&r.stream_id).unwrap();
        match kind {
            StreamKind::Quote => o.quotes.insert(id.to_owned()),
            StreamKind::Order => o.orders.insert(id.to_owned()),
            StreamKind::Handoff => o.handoffs.insert(id.to_owned()),
            // The generated journeys write no catalog stream.
            StreamKind::Catalog => panic!("unexpected catalog stream {}", r.stream_id),
        };
        o.streams.insert(r.stream_id.clone());
        o.correlations.insert(r.correlation_id.clone());
    }
    let now = T0.0 + 30 * 86_400_000;
    for a in (0..tenants).map(|i| format!("tenant-{i}")) {
        let tenant = TenantId::new(a.clone());
        let mine = by_tenant.get(&a);
        let owns = |set: fn(&Owned) -> &BTreeSet<String>, id: &str| {
            mine.is_some_and(|o| set(o).contains(id))
        };
        // Lists: everything returned belongs to A.
        let mut cursor = None;
        loop {
            let p = read
                .quotes(&tenant, &QuoteFilter::default(), cursor.as_deref(), 50)
                .unwrap();
            for q in &p.items {
                assert_eq!(q.tenant_id, tenant);
                assert!(owns(|o| &o.quotes, q.quote_id.as_str()));
            }
            cursor = p.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        for o in read
            .orders(&tenant, &OrderFilter::default(), None, 500)
            .unwrap()
            .items
        {
            assert_eq!(o.tenant_id, tenant);
            assert!(owns(|x| &x.orders, o.order_id.as_str()));
        }
        for h in read
            .handoffs(&tenant, &HandoffFilter::default(), None, 500, now)
            .unwrap()
            .items
        {
            assert_eq!(h.handoff.tenant_id, tenant);
            assert!(owns(|x| &x.handoffs, h.handoff.handoff_id.as_str()));
        }
        for status in [CaseStatus::Open, CaseStatus::Resolved] {
            let f = FalloutFilter {
                status,
                ..FalloutFilter::default()
            };
            for c in read.fallout(&tenant, &f, None, 500, now).unwrap().items {
                assert_eq!(c.case.tenant_id, tenant);
                assert!(owns(|x| &x.handoffs, c.case.handoff_id.as_str()));
            }
        }
        // Direct reads of every other tenant's ids: nothing.
        for (b, theirs) in by_tenant.iter().filter(|(b, _)| **b != a) {
            let _ = b;
            for q in &theirs.quotes {
                assert!(read
                    .quote(&tenant, &QuoteId::new(q.clone()))
                    .unwrap()
                    .is_none());
            }
            for o in &theirs.orders {
                assert!(read
                    .order(&tenant, &OrderId::new(o.clone()), now)
                    .unwrap()
                    .is_none());
            }
            for h in &theirs.handoffs {
                assert!(read
                    .handoff(&tenant, &HandoffId::new(h.clone()), now)
                    .unwrap()
                    .is_none());
                assert!(read
                    .fallout_case(&tenant, &HandoffId::new(h.clone()), now)
                    .unwrap()
                    .is_none());
            }
            for c in theirs.correlations.iter().take(20) {
                assert!(read
                    .audit_by_correlation(&tenant, c, None, 500)
                    .unwrap()
                    .items
                    .is_empty());
            }
            for s in theirs.streams.iter().take(20) {
                assert!(read
                    .audit_by_stream(&tenant, s, None, 500)
                    .unwrap()
                    .items
                    .is_empty());
            }
        }
        // A's own audit entries are A's.
        if let Some(o) = mine {
            for c in o.correlations.iter().take(5) {
                for e in read
                    .audit_by_correlation(&tenant, c, None, 500)
                    .unwrap()
                    .items
                {
                    assert_eq!(e.tenant_id, a);
                }
            }
        }
        // The dashboard counts only A's handoffs.
        let d = read.dashboard(&tenant, now).unwrap();
        let pending = read
            .handoffs(
                &tenant,
                &HandoffFilter {
                    pending_only: true,
                    ..HandoffFilter::default()
                },
                None,
                500,
                now,
            )
            .unwrap()
            .items
            .len() as u64;
        assert_eq!(d.pending, pending);
        let open = read
            .fallout(&tenant, &FalloutFilter::default(), None, 500, now)
            .unwrap()
            .items
            .len() as u64;
        assert_eq!(d.open_fallout, open);
    }
}
