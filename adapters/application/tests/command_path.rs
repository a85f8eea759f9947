//! The command path: load, decide, append, retry, deduplicate.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use application::command::decode;
use application::{CommandContext, CommandError, CommandPath};
use domain::idempotency::CommandKey;
use domain::ids::{quote_stream, TenantId};
use domain::quote::{QuoteCommand, QuoteError, QuoteEvent, QuoteState};
use domain::testing::fixtures::{
    approval_policy, at, billing_account, customer, line, percent, price, proposal, quote_id,
    signature, tenant,
};
use domain::QuoteDecider;
use eventlog::{Durability, EventLog, LogConfig};

fn ctx(command_id: &str) -> CommandContext {
    CommandContext::new(
        CommandKey::client(&TenantId::new("tenant-1"), command_id),
        "tenant-1",
        "corr-1",
    )
}

/// Proposal, signature and acceptance of revision 1 (priced before).
fn proposal_to_acceptance() -> [QuoteCommand; 3] {
    [
        QuoteCommand::RecordProposal {
            revision: 1,
            artifact: proposal("art-1"),
            price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
            at: at(1_000),
        },
        QuoteCommand::RecordSignature {
            revision: 1,
            signature: signature("art-1"),
            at: at(5_000),
        },
        QuoteCommand::Accept {
            billing_account: billing_account(),
            price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
            capabilities: domain::capability::Capabilities::all(),
            at: at(6_000),
        },
    ]
}

fn create() -> QuoteCommand {
    QuoteCommand::Create {
        quote_id: quote_id(),
        tenant_id: tenant(),
        customer: customer(),
        catalog_version: "catalog-2024.06".into(),
        customer_suspension: None,
        catalog: domain::catalog::VersionStanding::Unmanaged,
        at: at(0),
    }
}

/// A command path over a fresh log, and the sample quote's stream. Keep
/// the directory alive for the test's duration.
fn setup() -> (tempfile::TempDir, CommandPath, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(LogConfig::new(dir.path()).durability(Durability::ProcessCrashSafe))
        .unwrap();
    (dir, CommandPath::new(log), quote_stream(&quote_id()))
}

#[tokio::test]
async fn a_quote_is_driven_to_acceptance_and_every_event_carries_its_command_and_correlation() {
    let (_dir, path, stream) = setup();
    let commands = [
        create(),
        QuoteCommand::AddLine {
            line: line("l1"),
            at: at(1),
        },
        QuoteCommand::Price {
            price: price(1, &["l1"], percent(5)),
            policy: approval_policy(),
            at: at(2),
        },
    ]
    .into_iter()
    .chain(proposal_to_acceptance());
    for (i, command) in commands.enumerate() {
        let outcome = path
            .execute::<QuoteDecider>(&stream, &command, &ctx(&format!("cmd-{i}")))
            .await
            .unwrap();
        assert!(!outcome.deduplicated);
        assert_eq!(outcome.attempts, 1);
    }
    let loaded = path.load::<QuoteDecider>(&stream).unwrap();
    assert!(
        matches!(loaded.state, QuoteState::Accepted { .. }),
        "{:?}",
        loaded.state
    );
    let records = path.log().read_stream(&stream, 1, 100).unwrap();
    assert_eq!(records.len() as u64, loaded.version);
    assert!(records
        .iter()
        .all(|r| r.correlation_id == "corr-1" && r.tenant_id == "tenant-1"));
    assert_eq!(
        records[0].causation_id.as_deref(),
        Some(ctx("cmd-0").command_id().as_str())
    );
    assert_eq!(records[0].event_type, "QuoteCreated");
    let first: QuoteEvent = decode::<_, QuoteError>(&records[0]).unwrap();
    assert!(matches!(first, QuoteEvent::QuoteCreated { .. }));
    path.log().close().await;
}

#[tokio::test]
async fn a_retried_command_returns_the_first_outcome_and_appends_nothing() {
    let (_dir, path, stream) = setup();
    let first = path
        .execute::<QuoteDecider>(&stream, &create(), &ctx("create-1"))
        .await
        .unwrap();
    let again = path
        .execute::<QuoteDecider>(&stream, &create(), &ctx("create-1"))
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.positions, first.positions);
    assert_eq!(path.log().next_position(), 1);
    path.log().close().await;
}

#[tokio::test]
async fn a_reused_command_id_for_another_command_is_an_idempotency_conflict() {
    let (_dir, path, stream) = setup();
    path.execute::<QuoteDecider>(&stream, &create(), &ctx("c1"))
        .await
        .unwrap();
    path.execute::<QuoteDecider>(
        &stream,
        &QuoteCommand::AddLine {
            line: line("l1"),
            at: at(1),
        },
        &ctx("c2"),
    )
    .await
    .unwrap();
    // The same id for another command, on another stream: refused, nothing written.
    let other = quote_stream(&domain::ids::QuoteId::new("q-other"));
    let err = path
        .execute::<QuoteDecider>(&other, &create(), &ctx("c2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::IdempotencyConflict { ref command_id } if *command_id == ctx("c2").command_id()),
        "{err}"
    );
    assert_eq!(path.log().stream_version(&other).unwrap(), 0);
    path.log().close().await;
}

#[tokio::test]
async fn a_refused_command_names_its_rule_and_writes_nothing() {
    let (_dir, path, stream) = setup();
    let err = path
        .execute::<QuoteDecider>(
            &stream,
            &QuoteCommand::AddLine {
                line: line("l1"),
                at: at(1),
            },
            &ctx("c1"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.rule(),
        Some(domain::RuleViolation::rule(&QuoteError::NotCreated))
    );
    assert_eq!(path.log().next_position(), 0);
    path.log().close().await;
}

#[tokio::test]
async fn a_stale_expected_version_is_a_version_conflict_naming_both_versions() {
    let (_dir, path, stream) = setup();
    path.execute::<QuoteDecider>(&stream, &create(), &ctx("c1"))
        .await
        .unwrap();
    let mut context = ctx("c2");
    context.expected_version = Some(0);
    let err = path
        .execute::<QuoteDecider>(
            &stream,
            &QuoteCommand::AddLine {
                line: line("l1"),
                at: at(1),
            },
            &context,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::VersionConflict {
                expected: 0,
                actual: 1,
                ..
            }
        ),
        "{err}"
    );
    path.log().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_to_one_quote_lose_no_update_and_duplicates_are_suppressed() {
    let (_dir, path, stream) = setup();
    path.execute::<QuoteDecider>(&stream, &create(), &ctx("create"))
        .await
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let path = path.clone();
            let stream = stream.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let command = QuoteCommand::AddLine {
                    line: line(&format!("l{w}")),
                    at: at(10),
                };
                barrier.wait().await;
                let first = path
                    .execute::<QuoteDecider>(&stream, &command, &ctx(&format!("add-{w}")))
                    .await
                    .unwrap();
                // The client retries the same command (a lost response).
                let retry = path
                    .execute::<QuoteDecider>(&stream, &command, &ctx(&format!("add-{w}")))
                    .await
                    .unwrap();
                assert!(retry.deduplicated);
                assert_eq!(retry.positions, first.positions);
                first.attempts
            })
        })
        .collect();
    let mut attempts = 0;
    for t in tasks {
        attempts += t.await.unwrap();
    }
    let loaded = path.load::<QuoteDecider>(&stream).unwrap();
    assert_eq!(
        loaded.version, 17,
        "one create and sixteen lines, each once"
    );
    let QuoteState::Open(quote) = &loaded.state else {
        panic!("{:?}", loaded.state)
    };
    let lines: BTreeSet<_> = quote
        .lines
        .iter()
        .map(|l| l.line_id.as_str().to_owned())
        .collect();
    assert_eq!(
        lines,
        (0..16).map(|w| format!("l{w}")).collect::<BTreeSet<_>>()
    );
    assert_eq!(
        attempts, 16,
        "writers through one path take turns: none conflicts, none retries"
    );
    path.log().close().await;
}

#[tokio::test]
async fn the_causing_event_is_stamped_on_every_event_a_command_appends() {
    let (_dir, path, stream) = setup();
    let context = ctx("cmd-caused").caused_by_event("01HCAUSE");
    path.execute::<QuoteDecider>(&stream, &create(), &context)
        .await
        .unwrap();
    let recorded = path.log().read_stream(&stream, 1, 10).unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0]
            .metadata
            .get(application::command::CAUSATION_EVENT_ID)
            .map(String::as_str),
        Some("01HCAUSE")
    );
    assert_eq!(
        recorded[0].causation_id.as_deref(),
        Some(context.command_id().as_str())
    );
}

#[tokio::test]
async fn a_reaction_reissued_after_a_crash_with_another_clock_meets_its_first_outcome() {
    // The dispatcher records a dispatch with the time it ran; after a crash
    // it runs again for the same event, later. The key (trigger event and
    // action) decides the request hash, so the re-run is deduplicated
    // instead of refused as a conflict (which left handoffs stuck forever).
    use domain::handoff::HandoffCommand;
    use domain::testing::fixtures::{request, subject};
    use domain::HandoffDecider;
    let (_dir, path, _) = setup();
    let subject = subject("l1", domain::idempotency::Purpose::Reserve, 1);
    let stream = domain::ids::handoff_stream(&subject.handoff_id());
    let requested = CommandContext::new(
        CommandKey::reaction("01-trigger-step", "open"),
        "tenant-1",
        "corr-1",
    );
    path.execute::<HandoffDecider>(
        &stream,
        &HandoffCommand::Request {
            subject: subject.clone(),
            request: request(),
            at: at(1),
        },
        &requested,
    )
    .await
    .unwrap();
    let dispatch = || {
        CommandContext::new(
            CommandKey::reaction("01-requested", "dispatch"),
            "tenant-1",
            "corr-1",
        )
    };
    let first = path
        .execute::<HandoffDecider>(
            &stream,
            &HandoffCommand::RecordDispatch { at: at(10) },
            &dispatch(),
        )
        .await
        .unwrap();
    assert!(!first.deduplicated);
    let again = path
        .execute::<HandoffDecider>(
            &stream,
            &HandoffCommand::RecordDispatch { at: at(99_999) },
            &dispatch(),
        )
        .await
        .unwrap();
    assert!(again.deduplicated, "{again:?}");
    assert_eq!(again.positions, first.positions);
    assert_eq!(path.log().stream_version(&stream).unwrap(), 2);
    path.log().close().await;
}

/// A quote whose `QuotePriced` is stored at schema version 1 (written
/// before the price carried its own price book) is loaded through the one
/// decode, upcast, and driven on to acceptance: the command path reads old
/// logs as the replay tools and projections do.
#[tokio::test]
async fn a_stream_with_an_event_at_an_older_schema_version_is_upcast_when_loaded() {
    let (_dir, path, stream) = setup();
    for (i, command) in [
        create(),
        QuoteCommand::AddLine {
            line: line("l1"),
            at: at(1),
        },
    ]
    .iter()
    .enumerate()
    {
        path.execute::<QuoteDecider>(&stream, command, &ctx(&format!("old-{i}")))
            .await
            .unwrap();
    }
    // The price as a build before upcasting stored it: version 1 bytes.
    let current = QuoteEvent::QuotePriced {
        price: Box::new(price(1, &["l1"], percent(5))),
        at: at(2),
    };
    let old = domain::testing::fixtures::quote_priced_v1(&current).expect("v1 can say it");
    let mut event = eventlog::NewEvent::new(
        "QuotePriced",
        "tenant-1",
        "corr-1",
        eventlog::encode_payload(&old).unwrap(),
    );
    event.schema_version = 1;
    path.log()
        .append(eventlog::AppendRequest::new(
            &stream,
            eventlog::ExpectedVersion::Exact(2),
            vec![event],
        ))
        .await
        .unwrap();
    let loaded = path.load::<QuoteDecider>(&stream).unwrap();
    let QuoteState::Open(quote) = &loaded.state else {
        panic!("{:?}", loaded.state);
    };
    let priced = quote.price.as_ref().expect("the upcast price is folded");
    assert_eq!(priced.price_book, priced.policy_version);
    for (i, command) in proposal_to_acceptance().iter().enumerate() {
        path.execute::<QuoteDecider>(&stream, command, &ctx(&format!("new-{i}")))
            .await
            .unwrap();
    }
    let accepted = path.load::<QuoteDecider>(&stream).unwrap();
    assert!(matches!(accepted.state, QuoteState::Accepted { .. }));
}

#[tokio::test]
async fn a_command_built_from_the_loaded_state_sees_every_event_before_it() {
    let (_dir, path, stream) = setup();
    path.execute::<QuoteDecider>(&stream, &create(), &ctx("c1"))
        .await
        .unwrap();
    let mut context = ctx("c2");
    // Without the client's request hash there is nothing to deduplicate by.
    assert!(matches!(
        path.execute_with::<QuoteDecider>(&stream, &context, |_| Err(QuoteError::NoLines))
            .await,
        Err(CommandError::Corrupt { .. })
    ));
    context.request_hash = Some([7; 32]);
    let mut seen = Vec::new();
    let outcome = path
        .execute_with::<QuoteDecider>(&stream, &context, |state| {
            seen.push(matches!(state, QuoteState::Open(q) if q.lines.is_empty()));
            Ok(QuoteCommand::AddLine {
                line: line("l1"),
                at: at(1),
            })
        })
        .await
        .unwrap();
    assert_eq!(outcome.stream_version, 2);
    assert_eq!(seen, [true], "built once, from the created quote");
    // A refusal by the builder is the domain's, and writes nothing.
    context.request_hash = Some([8; 32]);
    let refused = path
        .execute_with::<QuoteDecider>(&stream, &ctx_with(&context, "c3"), |_| {
            Err(QuoteError::NoLines)
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.rule(),
        Some(domain::RuleViolation::rule(&QuoteError::NoLines))
    );
    assert_eq!(path.log().next_position(), 2);
    path.log().close().await;
}

/// `context` under another command id.
fn ctx_with(context: &CommandContext, command_id: &str) -> CommandContext {
    let mut other = ctx(command_id);
    other.request_hash = context.request_hash;
    other
}

/// Two first attempts of one command race: the loser loads the state after
/// the winner's append and the domain refuses it (the line exists now).
/// The loser is answered with the winner's outcome, not with the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_caused_by_the_same_commands_winning_attempt_is_its_first_outcome() {
    let (_dir, path, stream) = setup();
    path.execute::<QuoteDecider>(&stream, &create(), &ctx("c1"))
        .await
        .unwrap();
    let mut context = ctx("add-once");
    context.request_hash = Some([9; 32]);
    let add = |_: &QuoteState| {
        Ok(QuoteCommand::AddLine {
            line: line("l1"),
            at: at(1),
        })
    };
    let mut raced = false;
    let outcome = path
        .execute_with::<QuoteDecider>(&stream, &context, |_| {
            if !raced {
                raced = true;
                // The winning attempt, through another path, between this
                // attempt's idempotency check and its decision.
                let (winner, stream, context) = (
                    CommandPath::new(path.log().clone()),
                    stream.clone(),
                    context.clone(),
                );
                std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(winner.execute_with::<QuoteDecider>(&stream, &context, add))
                })
                .join()
                .unwrap()
                .unwrap();
            }
            // This attempt decided on a state without the line, but the
            // domain would refuse it on the state it races with.
            Err(QuoteError::NoLines)
        })
        .await
        .unwrap();
    assert!(outcome.deduplicated, "{outcome:?}");
    assert_eq!(outcome.stream_version, 2);
    assert_eq!(path.log().next_position(), 2, "one append");
    path.log().close().await;
}

/// One command id sent at once with different requests, where every
/// request after the first decides nothing (the handoff already has the
/// outcome): one is applied, every other is an idempotency conflict. Found
/// with 20 callbacks of one message id and different bodies: one applied,
/// 19 answered "no change", none refused; the id's record was checked
/// before the stream's turn and never again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_command_id_with_different_requests_at_once_is_applied_once_and_refused_otherwise() {
    use domain::handoff::HandoffCommand;
    use domain::idempotency::Purpose;
    use domain::outcome::{ObservationSource, OutcomeClass};
    use domain::testing::fixtures::{observation, request, retry_policy, subject};
    use domain::HandoffDecider;

    let (_dir, path, _) = setup();
    let reserve = subject("l1", Purpose::Reserve, 1);
    let stream = domain::ids::handoff_stream(&reserve.handoff_id());
    for (id, command) in [
        (
            "request",
            HandoffCommand::Request {
                subject: reserve.clone(),
                request: request(),
                at: at(1),
            },
        ),
        ("dispatch", HandoffCommand::RecordDispatch { at: at(2) }),
    ] {
        path.execute::<HandoffDecider>(&stream, &command, &ctx(id))
            .await
            .unwrap();
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (path, stream, barrier) = (path.clone(), stream.clone(), barrier.clone());
            let mut seen = observation(
                &reserve,
                OutcomeClass::Succeeded,
                ObservationSource::Callback,
            );
            seen.raw_code = Some(format!("body-{n}"));
            let command = HandoffCommand::Observe {
                observation: seen,
                retry_policy: retry_policy(),
            };
            tokio::spawn(async move {
                barrier.wait().await;
                path.execute::<HandoffDecider>(&stream, &command, &ctx("message-1"))
                    .await
            })
        })
        .collect();
    let (mut applied, mut conflicts) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) if outcome.positions.is_some() && !outcome.deduplicated => applied += 1,
            Err(CommandError::IdempotencyConflict { .. }) => conflicts += 1,
            other => panic!("neither applied nor refused: {other:?}"),
        }
    }
    assert_eq!((applied, conflicts), (1, 19));
    path.log().close().await;
}

/// A command that changes nothing reserves its id like any other: a retry
/// after other commands changed the stream gets the first outcome (the
/// version it was decided at, no positions), survives a reopen of the
/// log, and another request with the id is a conflict. Such a command
/// was acknowledged with nothing recorded, so its retry was decided anew
/// (undoing a later change, or refused) and its id was free for another
/// command.
#[tokio::test]
async fn a_command_that_changed_nothing_keeps_its_id_and_first_outcome() {
    let (dir, path, stream) = setup();
    let unchanged = QuoteCommand::ChangeLine {
        line: line("l1"),
        at: at(2),
    };
    let removal = QuoteCommand::RemoveLine {
        line_id: domain::ids::LineId::new("l1"),
        at: at(3),
    };
    path.execute::<QuoteDecider>(&stream, &create(), &ctx("create"))
        .await
        .unwrap();
    path.execute::<QuoteDecider>(
        &stream,
        &QuoteCommand::AddLine {
            line: line("l1"),
            at: at(1),
        },
        &ctx("add"),
    )
    .await
    .unwrap();
    let first = path
        .execute::<QuoteDecider>(&stream, &unchanged, &ctx("x"))
        .await
        .unwrap();
    assert_eq!((first.stream_version, first.positions.clone()), (2, None));
    assert!(!first.deduplicated);
    path.execute::<QuoteDecider>(&stream, &removal, &ctx("y"))
        .await
        .unwrap();
    let head = path.log().next_position();
    let retried = path
        .execute::<QuoteDecider>(&stream, &unchanged, &ctx("x"))
        .await
        .unwrap();
    assert!(retried.deduplicated, "{retried:?}");
    assert_eq!((retried.stream_version, retried.positions), (2, None));
    assert_eq!(path.log().next_position(), head, "nothing appended");
    let other = path
        .execute::<QuoteDecider>(&stream, &removal, &ctx("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(other, CommandError::IdempotencyConflict { .. }),
        "{other}"
    );
    path.log().close().await;
    drop(path);
    // sled's threads let go of the directory's lock a moment later.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let reopened = CommandPath::new(
        EventLog::open(LogConfig::new(dir.path()).durability(Durability::ProcessCrashSafe))
            .unwrap(),
    );
    let after = reopened
        .execute::<QuoteDecider>(&stream, &unchanged, &ctx("x"))
        .await
        .unwrap();
    assert!(after.deduplicated && after.stream_version == 2, "{after:?}");
    reopened.log().verify(&mut |_| {}).unwrap();
    reopened.log().close().await;
}
