//! The stream-state cache never changes a decision: random command
//! sequences on one quote stream, each executed by one of three paths over
//! the same log (two with caches of their own, so each one's cache goes
//! stale whenever another path appends, and one without a cache). Before
//! every command, every path loads the same version and state, and the
//! command decides the same events or the same refusal on each.
#![allow(clippy::unwrap_used)]

use application::{CommandContext, CommandPath};
use domain::catalog::VersionStanding;
use domain::idempotency::CommandKey;
use domain::ids::quote_stream;
use domain::quote::{QuoteCommand, QuoteLine};
use domain::testing::fixtures::{
    approval_policy, at, customer, line, percent, price, quote_id, tenant,
};
use domain::{Decider, QuoteDecider};
use eventlog::{Durability, EventLog, LogConfig};
use proptest::prelude::*;

const LINES: [&str; 3] = ["l0", "l1", "l2"];

/// One step: which path executes, and what.
#[derive(Clone, Debug)]
enum Step {
    Add(usize, u32),
    Change(usize, u32),
    Remove(usize),
    Price(u32, Vec<usize>, i64),
    Approve,
    Withdraw,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..LINES.len(), 1u32..5).prop_map(|(l, q)| Step::Add(l, q)),
        3 => (0..LINES.len(), 1u32..5).prop_map(|(l, q)| Step::Change(l, q)),
        2 => (0..LINES.len()).prop_map(Step::Remove),
        4 => (1u32..4, proptest::collection::vec(0..LINES.len(), 1..3), 0i64..40)
            .prop_map(|(r, ls, d)| Step::Price(r, ls, d)),
        2 => Just(Step::Approve),
        1 => Just(Step::Withdraw),
    ]
}

fn sized(id: usize, quantity: u32) -> QuoteLine {
    QuoteLine {
        quantity,
        ..line(LINES[id])
    }
}

fn command(step: &Step, n: u64) -> QuoteCommand {
    let at = at(1_000 + n);
    match step {
        Step::Add(l, q) => QuoteCommand::AddLine {
            line: sized(*l, *q),
            at,
        },
        Step::Change(l, q) => QuoteCommand::ChangeLine {
            line: sized(*l, *q),
            at,
        },
        Step::Remove(l) => QuoteCommand::RemoveLine {
            line_id: line(LINES[*l]).line_id,
            at,
        },
        Step::Price(revision, lines, discount) => {
            let ids: Vec<&str> = lines.iter().map(|l| LINES[*l]).collect();
            QuoteCommand::Price {
                price: price(*revision, &ids, percent(*discount)),
                policy: approval_policy(),
                at,
            }
        }
        Step::Approve => QuoteCommand::Approve {
            approver: "manager".to_owned(),
            at,
        },
        Step::Withdraw => QuoteCommand::Withdraw {
            reason: "lost".to_owned(),
            at,
        },
    }
}

fn run(steps: &[(usize, Step)]) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log =
            EventLog::open(LogConfig::new(dir.path()).durability(Durability::Buffered)).unwrap();
        let paths = [
            CommandPath::new(log.clone()),
            CommandPath::new(log.clone()).with_state_cache(8),
            CommandPath::new(log.clone()).with_state_cache(0),
        ];
        let stream = quote_stream(&quote_id());
        let create = QuoteCommand::Create {
            quote_id: quote_id(),
            tenant_id: tenant(),
            customer: customer(),
            catalog_version: "catalog-2024.06".to_owned(),
            customer_suspension: None,
            catalog: VersionStanding::Unmanaged,
            at: at(1_000),
        };
        let context = |n: u64| {
            CommandContext::new(CommandKey::job("state-cache", n.to_string()), "t1", "corr")
        };
        paths[0]
            .execute::<QuoteDecider>(&stream, &create, &context(0))
            .await
            .unwrap();
        for (n, (who, step)) in (1u64..).zip(steps) {
            let command = command(step, n);
            let loads: Vec<_> = paths
                .iter()
                .map(|p| p.load::<QuoteDecider>(&stream).unwrap())
                .collect();
            let decisions: Vec<_> = loads
                .iter()
                .map(|l| QuoteDecider::decide(&l.state, &command))
                .collect();
            for (i, (load, decision)) in loads.iter().zip(&decisions).enumerate().skip(1) {
                assert_eq!(load, &loads[0], "path {i} loads another state at step {n}");
                assert_eq!(
                    decision, &decisions[0],
                    "path {i} decides otherwise at step {n}"
                );
            }
            let executed = paths[*who]
                .execute::<QuoteDecider>(&stream, &command, &context(n))
                .await;
            assert_eq!(
                executed.is_ok(),
                decisions[0].is_ok(),
                "{executed:?} vs {:?}",
                decisions[0]
            );
        }
        let last: Vec<_> = paths
            .iter()
            .map(|p| p.load::<QuoteDecider>(&stream).unwrap())
            .collect();
        assert!(last.iter().all(|l| l == &last[0]));
        log.close().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn cached_and_uncached_decisions_are_identical(
        steps in proptest::collection::vec((0usize..3, step()), 1..40)
    ) {
        run(&steps);
    }
}
