//! One test per quote rule, named as the rule reads.

use super::*;
use crate::ids::BillingAccountId;
use crate::testing::fixtures::*;
use crate::testing::Given;

fn accept() -> QuoteCommand {
    QuoteCommand::Accept {
        billing_account: billing_account(),
        price_book: PRICE_BOOK.to_owned(),
        capabilities: crate::capability::Capabilities::all(),
        at: at(10_000),
    }
}

fn priced(revision: u32, lines: &[&str], discount: i64) -> QuoteEvent {
    QuoteEvent::QuotePriced {
        price: Box::new(price(revision, lines, percent(discount))),
        at: T0,
    }
}

fn with(
    mut events: Vec<QuoteEvent>,
    more: impl IntoIterator<Item = QuoteEvent>,
) -> Vec<QuoteEvent> {
    events.extend(more);
    events
}

fn created_with_line() -> Vec<QuoteEvent> {
    vec![
        quote_created(),
        QuoteEvent::LineAdded {
            revision: 1,
            line: line("l1"),
            at: T0,
        },
    ]
}

#[test]
fn a_quote_is_created_with_its_customer_snapshot_and_catalog_version() {
    Given::<QuoteDecider>::nothing()
        .when(QuoteCommand::Create {
            quote_id: quote_id(),
            tenant_id: tenant(),
            customer: customer(),
            catalog_version: "catalog-2024.06".to_owned(),
            customer_suspension: None,
            catalog: crate::catalog::VersionStanding::Unmanaged,
            at: T0,
        })
        .then(vec![quote_created()]);
}

#[test]
fn a_quote_is_created_only_against_a_catalog_version_that_may_be_quoted() {
    use crate::catalog::VersionStanding;
    let create = |catalog| QuoteCommand::Create {
        quote_id: quote_id(),
        tenant_id: tenant(),
        customer: customer(),
        catalog_version: "catalog-2024.06".to_owned(),
        customer_suspension: None,
        catalog,
        at: T0,
    };
    Given::<QuoteDecider>::nothing()
        .when(create(VersionStanding::Active))
        .then(vec![quote_created()]);
    Given::<QuoteDecider>::nothing()
        .when(create(VersionStanding::Retired))
        .then_err(QuoteError::CatalogVersionRetired {
            version: "catalog-2024.06".to_owned(),
        });
    Given::<QuoteDecider>::nothing()
        .when(create(VersionStanding::Unknown))
        .then_err(QuoteError::CatalogVersionNotActive {
            version: "catalog-2024.06".to_owned(),
        });
}

#[test]
fn creating_a_quote_twice_is_refused() {
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::Create {
            quote_id: quote_id(),
            tenant_id: tenant(),
            customer: customer(),
            catalog_version: "x".to_owned(),
            customer_suspension: None,
            catalog: crate::catalog::VersionStanding::Unmanaged,
            at: T0,
        })
        .then_err(QuoteError::AlreadyCreated);
}

#[test]
fn a_quote_that_does_not_exist_refuses_every_other_command() {
    Given::<QuoteDecider>::nothing()
        .when(QuoteCommand::AddLine {
            line: line("l1"),
            at: T0,
        })
        .then_err(QuoteError::NotCreated);
}

#[test]
fn a_line_added_before_pricing_stays_in_the_current_revision() {
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::AddLine {
            line: line("l1"),
            at: T0,
        })
        .then(vec![QuoteEvent::LineAdded {
            revision: 1,
            line: line("l1"),
            at: T0,
        }]);
}

#[test]
fn adding_a_line_whose_id_exists_is_refused() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::AddLine {
            line: line("l1"),
            at: T0,
        })
        .then_err(QuoteError::LineAlreadyExists);
}

#[test]
fn a_line_needs_a_positive_quantity_and_term() {
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::AddLine {
            line: QuoteLine {
                quantity: 0,
                ..line("l1")
            },
            at: T0,
        })
        .then_err(QuoteError::InvalidQuantity);
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::AddLine {
            line: QuoteLine {
                quantity: crate::quote::limits::MAX_QUANTITY + 1,
                ..line("l1")
            },
            at: T0,
        })
        .then_err(QuoteError::InvalidQuantity);
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::AddLine {
            line: QuoteLine {
                term_months: 0,
                ..line("l1")
            },
            at: T0,
        })
        .then_err(QuoteError::InvalidTerm);
}

#[test]
fn a_line_stays_within_the_quote_limits() {
    use crate::quote::limits::{MAX_OPTIONS_PER_LINE, MAX_TERM_MONTHS};
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::AddLine {
            line: QuoteLine {
                term_months: MAX_TERM_MONTHS + 1,
                ..line("l1")
            },
            at: T0,
        })
        .then_err(QuoteError::InvalidTerm);
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::AddLine {
            line: QuoteLine {
                options: (0..=MAX_OPTIONS_PER_LINE)
                    .map(|i| (format!("o{i}"), "v".to_owned()))
                    .collect(),
                ..line("l1")
            },
            at: T0,
        })
        .then_err(QuoteError::TooManyOptions);
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::ChangeLine {
            line: QuoteLine {
                term_months: MAX_TERM_MONTHS + 1,
                ..line("l1")
            },
            at: T0,
        })
        .then_err(QuoteError::InvalidTerm);
}

/// A line with every option a line carries, names of 64 bytes and
/// values of 256.
fn heavy_line(id: &str) -> QuoteLine {
    QuoteLine {
        options: (0..crate::quote::limits::MAX_OPTIONS_PER_LINE)
            .map(|i| (format!("{i:02}{}", "n".repeat(62)), "v".repeat(256)))
            .collect(),
        ..line(id)
    }
}

/// A created quote with as many heavy lines as fit; their ids.
fn filled_with_heavy_lines() -> (Vec<QuoteEvent>, Vec<String>) {
    use crate::quote::limits::{line_weight, MAX_LINES_WEIGHT};
    let fit = MAX_LINES_WEIGHT / line_weight(&heavy_line("h00"));
    let ids: Vec<String> = (0..fit).map(|i| format!("h{i:02}")).collect();
    let mut events = vec![quote_created()];
    events.extend(ids.iter().map(|id| QuoteEvent::LineAdded {
        revision: 1,
        line: heavy_line(id),
        at: T0,
    }));
    (events, ids)
}

#[test]
fn a_quote_refuses_a_line_that_would_outweigh_what_its_order_carries() {
    use crate::quote::limits::{lines_weight, MAX_LINES_WEIGHT};
    let (events, ids) = filled_with_heavy_lines();
    assert!(ids.len() >= 5, "only {} heavy lines fit", ids.len());
    let heavy: Vec<QuoteLine> = ids.iter().map(|id| heavy_line(id)).collect();
    let weight = lines_weight(&heavy) + limits::line_weight(&heavy_line("one-more"));
    assert!(weight > MAX_LINES_WEIGHT);
    Given::<QuoteDecider>::events(events.clone())
        .when(QuoteCommand::AddLine {
            line: heavy_line("one-more"),
            at: T0,
        })
        .then_err(QuoteError::QuoteTooLarge { weight });
    // A line changed to a heavier one counts only once.
    let mut lighter = events.clone();
    lighter.push(QuoteEvent::LineChanged {
        revision: 1,
        line: line(&ids[0]),
        at: T0,
    });
    Given::<QuoteDecider>::events(lighter.clone())
        .when(QuoteCommand::ChangeLine {
            line: heavy_line(&ids[0]),
            at: T0,
        })
        .then(vec![QuoteEvent::LineChanged {
            revision: 1,
            line: heavy_line(&ids[0]),
            at: T0,
        }]);
    // Removing a line makes room again.
    let mut removed = events;
    removed.push(QuoteEvent::LineRemoved {
        revision: 1,
        line_id: line_id(&ids[0]),
        at: T0,
    });
    Given::<QuoteDecider>::events(removed)
        .when(QuoteCommand::AddLine {
            line: heavy_line("one-more"),
            at: T0,
        })
        .then(vec![QuoteEvent::LineAdded {
            revision: 1,
            line: heavy_line("one-more"),
            at: T0,
        }]);
}

#[test]
fn changing_a_line_to_its_current_configuration_changes_nothing() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::ChangeLine {
            line: line("l1"),
            at: T0,
        })
        .then_nothing();
}

#[test]
fn changing_or_removing_an_unknown_line_is_refused() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::ChangeLine {
            line: line("l9"),
            at: T0,
        })
        .then_err(QuoteError::LineNotFound);
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::RemoveLine {
            line_id: line_id("l9"),
            at: T0,
        })
        .then_err(QuoteError::LineNotFound);
}

#[test]
fn a_line_change_after_pricing_starts_a_new_revision() {
    let priced_quote = with(created_with_line(), [priced(1, &["l1"], 5)]);
    let bigger = QuoteLine {
        quantity: 2,
        ..line("l1")
    };
    Given::<QuoteDecider>::events(priced_quote.clone())
        .when(QuoteCommand::ChangeLine {
            line: bigger.clone(),
            at: at(1),
        })
        .then(vec![
            QuoteEvent::RevisionStarted {
                revision: 2,
                at: at(1),
            },
            QuoteEvent::LineChanged {
                revision: 2,
                line: bigger,
                at: at(1),
            },
        ]);
    Given::<QuoteDecider>::events(priced_quote.clone())
        .when(QuoteCommand::AddLine {
            line: line("l2"),
            at: at(1),
        })
        .then(vec![
            QuoteEvent::RevisionStarted {
                revision: 2,
                at: at(1),
            },
            QuoteEvent::LineAdded {
                revision: 2,
                line: line("l2"),
                at: at(1),
            },
        ]);
    Given::<QuoteDecider>::events(priced_quote)
        .when(QuoteCommand::RemoveLine {
            line_id: line_id("l1"),
            at: at(1),
        })
        .then(vec![
            QuoteEvent::RevisionStarted {
                revision: 2,
                at: at(1),
            },
            QuoteEvent::LineRemoved {
                revision: 2,
                line_id: line_id("l1"),
                at: at(1),
            },
        ]);
}

#[test]
fn a_new_revision_invalidates_price_approval_and_proposal() {
    let history = with(
        created_with_line(),
        [
            priced(1, &["l1"], 20),
            QuoteEvent::ApprovalRequired {
                revision: 1,
                reason: approval_policy()
                    .approval_needed(&customer().segment, percent(20))
                    .expect("20% exceeds the smb threshold"),
                at: T0,
            },
            QuoteEvent::ApprovalGranted {
                revision: 1,
                approver: "boss".to_owned(),
                at: T0,
            },
            QuoteEvent::ProposalGenerated {
                revision: 1,
                artifact: proposal("art-1"),
                at: T0,
            },
        ],
    );
    let state = Given::<QuoteDecider>::events(history)
        .when(QuoteCommand::AddLine {
            line: line("l2"),
            at: at(1),
        })
        .then(vec![
            QuoteEvent::RevisionStarted {
                revision: 2,
                at: at(1),
            },
            QuoteEvent::LineAdded {
                revision: 2,
                line: line("l2"),
                at: at(1),
            },
        ]);
    let QuoteState::Open(quote) = state else {
        panic!("quote should stay open")
    };
    assert_eq!(quote.current_price(), None);
    assert_eq!(quote.current_proposal(), None);
    assert_eq!(quote.approval, Approval::NotRequired);
}

#[test]
fn pricing_a_quote_without_lines_is_refused() {
    Given::<QuoteDecider>::events(vec![quote_created()])
        .when(QuoteCommand::Price {
            price: price(1, &[], percent(0)),
            policy: approval_policy(),
            at: T0,
        })
        .then_err(QuoteError::NoLines);
}

#[test]
fn pricing_with_a_result_for_another_revision_is_refused() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Price {
            price: price(2, &["l1"], percent(0)),
            policy: approval_policy(),
            at: T0,
        })
        .then_err(QuoteError::PriceForAnotherRevision);
}

#[test]
fn a_price_that_does_not_cover_exactly_the_lines_is_refused() {
    for lines in [&["l2"][..], &["l1", "l2"][..], &["l1", "l1"][..]] {
        Given::<QuoteDecider>::events(created_with_line())
            .when(QuoteCommand::Price {
                price: price(1, lines, percent(0)),
                policy: approval_policy(),
                at: T0,
            })
            .then_err(QuoteError::PriceDoesNotCoverLines);
    }
}

#[test]
fn a_price_with_an_empty_validity_window_is_refused() {
    let empty = PriceResult {
        valid_until: T0,
        ..price(1, &["l1"], percent(0))
    };
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Price {
            price: empty,
            policy: approval_policy(),
            at: T0,
        })
        .then_err(QuoteError::InvalidValidityWindow);
}

#[test]
fn a_price_already_past_its_validity_is_refused() {
    let late = T0.plus_millis(PRICE_VALIDITY_MS);
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Price {
            price: price(1, &["l1"], percent(0)),
            policy: approval_policy(),
            at: late,
        })
        .then_err(QuoteError::PriceStale);
}

#[test]
fn a_discount_over_the_segment_threshold_requires_approval() {
    let reason = ApprovalReason {
        segment: customer().segment,
        discount: percent(20),
        threshold: percent(15),
        policy_version: "approval-v2".to_owned(),
    };
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Price {
            price: price(1, &["l1"], percent(20)),
            policy: approval_policy(),
            at: T0,
        })
        .then(vec![
            priced(1, &["l1"], 20),
            QuoteEvent::ApprovalRequired {
                revision: 1,
                reason,
                at: T0,
            },
        ]);
}

#[test]
fn a_discount_within_the_segment_threshold_needs_no_approval() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Price {
            price: price(1, &["l1"], percent(15)),
            policy: approval_policy(),
            at: T0,
        })
        .then(vec![priced(1, &["l1"], 15)]);
}

#[test]
fn a_segment_without_its_own_threshold_uses_the_default() {
    let policy = approval_policy();
    let other = crate::ids::Segment::new("consumer");
    assert!(policy.approval_needed(&other, percent(11)).is_some());
    assert!(policy.approval_needed(&other, percent(10)).is_none());
}

fn awaiting_approval() -> Vec<QuoteEvent> {
    let reason = approval_policy().approval_needed(&customer().segment, percent(20));
    with(
        created_with_line(),
        [priced(1, &["l1"], 20)]
            .into_iter()
            .chain(reason.map(|reason| QuoteEvent::ApprovalRequired {
                revision: 1,
                reason,
                at: T0,
            })),
    )
}

#[test]
fn a_pending_approval_can_be_granted_or_rejected() {
    Given::<QuoteDecider>::events(awaiting_approval())
        .when(QuoteCommand::Approve {
            approver: "boss".to_owned(),
            at: at(1),
        })
        .then(vec![QuoteEvent::ApprovalGranted {
            revision: 1,
            approver: "boss".to_owned(),
            at: at(1),
        }]);
    Given::<QuoteDecider>::events(awaiting_approval())
        .when(QuoteCommand::RejectApproval {
            approver: "boss".to_owned(),
            reason: "too deep".to_owned(),
            at: at(1),
        })
        .then(vec![QuoteEvent::ApprovalRejected {
            revision: 1,
            approver: "boss".to_owned(),
            reason: "too deep".to_owned(),
            at: at(1),
        }]);
}

#[test]
fn deciding_an_approval_that_is_not_pending_is_refused() {
    Given::<QuoteDecider>::events(with(created_with_line(), [priced(1, &["l1"], 5)]))
        .when(QuoteCommand::Approve {
            approver: "boss".to_owned(),
            at: at(1),
        })
        .then_err(QuoteError::ApprovalNotPending);
}

#[test]
fn a_proposal_for_another_revision_is_refused() {
    Given::<QuoteDecider>::events(with(created_with_line(), [priced(1, &["l1"], 5)]))
        .when(QuoteCommand::RecordProposal {
            revision: 2,
            artifact: proposal("art-1"),
            price_book: crate::testing::fixtures::PRICE_BOOK.to_owned(),
            at: at(1),
        })
        .then_err(QuoteError::ProposalForAnotherRevision);
}

#[test]
fn a_proposal_needs_a_current_price_and_a_settled_approval() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::RecordProposal {
            revision: 1,
            artifact: proposal("art-1"),
            price_book: crate::testing::fixtures::PRICE_BOOK.to_owned(),
            at: at(1),
        })
        .then_err(QuoteError::PriceMissing);
    Given::<QuoteDecider>::events(awaiting_approval())
        .when(QuoteCommand::RecordProposal {
            revision: 1,
            artifact: proposal("art-1"),
            price_book: crate::testing::fixtures::PRICE_BOOK.to_owned(),
            at: at(1),
        })
        .then_err(QuoteError::ApprovalMissing);
}

/// A revision priced under a price book no longer in force is not
/// proposed: acceptance would refuse its price, so the customer would
/// sign a document nobody can accept. Found by a probe: after a restart
/// with a new price book, `generateProposal` and the signature went
/// through and only `acceptQuote` said `price_book_superseded`.
#[test]
fn a_proposal_of_a_price_from_a_superseded_price_book_is_refused() {
    Given::<QuoteDecider>::events(with(created_with_line(), [priced(1, &["l1"], 5)]))
        .when(QuoteCommand::RecordProposal {
            revision: 1,
            artifact: proposal("art-1"),
            price_book: "pricing-2025.1".to_owned(),
            at: at(1),
        })
        .then_err(QuoteError::PriceBookSuperseded {
            priced_under: crate::testing::fixtures::PRICE_BOOK.to_owned(),
            in_force: "pricing-2025.1".to_owned(),
        });
}

#[test]
fn an_accepted_quote_carries_the_evidence_the_order_is_captured_from() {
    let state = Given::<QuoteDecider>::events(quote_ready_to_accept())
        .when(accept())
        .then(vec![QuoteEvent::QuoteAccepted {
            quote_id: quote_id(),
            tenant_id: tenant(),
            revision: 1,
            customer_id: customer().customer_id,
            billing_account: billing_account(),
            price_input_hash: "price-input-r1".to_owned(),
            signed_artifact_hash: "art-1".to_owned(),
            lines: vec![accepted_line("l1")],
            at: at(10_000),
        }]);
    assert!(QuoteDecider::is_terminal(&state));
}

#[test]
fn accept_is_refused_when_the_price_is_missing() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(accept())
        .then_err(QuoteError::PriceMissing);
}

#[test]
fn accept_is_refused_when_the_price_is_stale() {
    let late = QuoteCommand::Accept {
        billing_account: BillingAccountId::new("ba-1"),
        price_book: PRICE_BOOK.to_owned(),
        capabilities: crate::capability::Capabilities::all(),
        at: T0.plus_millis(PRICE_VALIDITY_MS),
    };
    Given::<QuoteDecider>::events(quote_ready_to_accept())
        .when(late)
        .then_err(QuoteError::PriceStale);
}

#[test]
fn price_book_superseded_a_price_is_fresh_only_under_the_book_in_force() {
    let priced_under = price(1, &["l1"], percent(0)).price_book;
    let under = |book: &str| QuoteCommand::Accept {
        billing_account: billing_account(),
        price_book: book.to_owned(),
        capabilities: crate::capability::Capabilities::all(),
        at: at(10_000),
    };
    let superseded = QuoteError::PriceBookSuperseded {
        priced_under: priced_under.clone(),
        in_force: "pb-2".to_owned(),
    };
    assert_eq!(
        crate::decider::RuleViolation::rule(&superseded),
        "price_book_superseded"
    );
    Given::<QuoteDecider>::events(quote_ready_to_accept())
        .when(under("pb-2"))
        .then_err(superseded);
    // Under the book it was priced with, it is accepted.
    let state = crate::decider::fold::<QuoteDecider, _>(&quote_ready_to_accept());
    let accepted = QuoteDecider::decide(&state, &under(&priced_under));
    assert!(accepted.is_ok(), "{accepted:?}");
}

#[test]
fn accept_is_refused_when_the_price_is_for_another_revision() {
    let history = with(
        quote_ready_to_accept(),
        [
            QuoteEvent::RevisionStarted {
                revision: 2,
                at: at(6_000),
            },
            QuoteEvent::LineAdded {
                revision: 2,
                line: line("l2"),
                at: at(6_000),
            },
        ],
    );
    // The new revision has no price: `price_missing`, as the schema says
    // (a probe saw `price_for_another_revision`).
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::PriceMissing);
}

#[test]
fn accept_is_refused_when_approval_is_required_and_missing() {
    Given::<QuoteDecider>::events(awaiting_approval())
        .when(accept())
        .then_err(QuoteError::ApprovalMissing);
}

#[test]
fn accept_is_refused_when_approval_was_rejected() {
    let history = with(
        awaiting_approval(),
        [QuoteEvent::ApprovalRejected {
            revision: 1,
            approver: "boss".to_owned(),
            reason: "no".to_owned(),
            at: T0,
        }],
    );
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::ApprovalRejected);
}

#[test]
fn accept_is_refused_when_the_signature_is_missing() {
    let mut history = quote_ready_to_accept();
    history.pop();
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::SignatureMissing);
}

#[test]
fn accept_is_refused_when_the_signature_is_for_another_artifact() {
    let history = with(
        quote_ready_to_accept(),
        [QuoteEvent::SignatureRecorded {
            revision: 1,
            signature: signature("art-other"),
            at: at(6_000),
        }],
    );
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::SignatureForAnotherArtifact);
}

/// Revision 2 (a second line) priced and proposed as `art-2`, then a
/// signature of `art-2` that names `signed_revision`.
fn revision_two_proposed(signed_revision: u32) -> [QuoteEvent; 5] {
    [
        QuoteEvent::RevisionStarted {
            revision: 2,
            at: at(6_000),
        },
        QuoteEvent::LineAdded {
            revision: 2,
            line: line("l2"),
            at: at(6_000),
        },
        priced(2, &["l1", "l2"], 5),
        QuoteEvent::ProposalGenerated {
            revision: 2,
            artifact: proposal("art-2"),
            at: at(7_000),
        },
        QuoteEvent::SignatureRecorded {
            revision: signed_revision,
            signature: signature("art-2"),
            at: at(8_000),
        },
    ]
}

#[test]
fn accept_is_refused_when_the_signature_is_for_another_revision() {
    let history = with(quote_ready_to_accept(), revision_two_proposed(1));
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::SignatureForAnotherRevision);
}

#[test]
fn accept_is_refused_when_no_proposal_renders_the_current_revision() {
    let history = vec![
        quote_created(),
        QuoteEvent::LineAdded {
            revision: 1,
            line: line("l1"),
            at: T0,
        },
        priced(1, &["l1"], 5),
        QuoteEvent::SignatureRecorded {
            revision: 1,
            signature: signature("art-1"),
            at: at(5_000),
        },
    ];
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::ProposalMissing);
}

fn record_signature(revision: u32) -> QuoteCommand {
    QuoteCommand::RecordSignature {
        revision,
        signature: signature("art-1"),
        at: at(9_000),
    }
}

#[test]
fn a_signature_needs_the_proposal_of_its_revision_and_a_revision_that_exists() {
    let mut proposed = quote_ready_to_accept();
    proposed.pop();
    // The proposal of revision 1 is there: its signature is recorded.
    Given::<QuoteDecider>::events(proposed.clone())
        .when(record_signature(1))
        .then(vec![QuoteEvent::SignatureRecorded {
            revision: 1,
            signature: signature("art-1"),
            at: at(9_000),
        }]);
    // A revision the quote never had.
    Given::<QuoteDecider>::events(proposed)
        .when(record_signature(7))
        .then_err(QuoteError::SignatureForAnotherRevision);
    // The current revision, never proposed (nor priced).
    let unpriced = vec![
        quote_created(),
        QuoteEvent::LineAdded {
            revision: 1,
            line: line("l1"),
            at: T0,
        },
    ];
    Given::<QuoteDecider>::events(unpriced)
        .when(record_signature(1))
        .then_err(QuoteError::ProposalMissing);
}

#[test]
fn repricing_voids_the_proposal_and_the_signature() {
    let history = with(quote_ready_to_accept(), [priced(1, &["l1"], 6)]);
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::SignatureMissing);
}

#[test]
fn accept_is_refused_when_customer_drift_is_unresolved() {
    let history = with(
        quote_ready_to_accept(),
        [QuoteEvent::CustomerDriftReported {
            observed: customer_in_enterprise_segment(),
            at: at(6_000),
        }],
    );
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::CustomerDriftUnresolved);
}

#[test]
fn accept_is_refused_when_the_quote_is_expired() {
    let history = with(
        quote_ready_to_accept(),
        [QuoteEvent::QuoteExpired { at: at(6_000) }],
    );
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::Expired);
}

#[test]
fn accept_is_refused_when_the_quote_is_withdrawn() {
    let history = with(
        quote_ready_to_accept(),
        [QuoteEvent::QuoteWithdrawn {
            reason: "customer left".to_owned(),
            at: at(6_000),
        }],
    );
    Given::<QuoteDecider>::events(history)
        .when(accept())
        .then_err(QuoteError::Withdrawn);
}

#[test]
fn an_accepted_quote_no_longer_changes() {
    let accepted = QuoteDecider::decide(
        &crate::decider::fold::<QuoteDecider, _>(&quote_ready_to_accept()),
        &accept(),
    )
    .expect("a ready quote is accepted");
    Given::<QuoteDecider>::events(with(quote_ready_to_accept(), accepted))
        .when(QuoteCommand::Withdraw {
            reason: "late".to_owned(),
            at: at(20_000),
        })
        .then_err(QuoteError::AlreadyAccepted);
}

#[test]
fn an_open_quote_can_expire_or_be_withdrawn() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Expire { at: at(1) })
        .then(vec![QuoteEvent::QuoteExpired { at: at(1) }]);
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Withdraw {
            reason: "lost".to_owned(),
            at: at(1),
        })
        .then(vec![QuoteEvent::QuoteWithdrawn {
            reason: "lost".to_owned(),
            at: at(1),
        }]);
}

#[test]
fn customer_drift_is_recorded_without_changing_the_snapshot() {
    let state = Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::ReportCustomerDrift {
            observed: customer_in_enterprise_segment(),
            at: at(1),
        })
        .then(vec![QuoteEvent::CustomerDriftReported {
            observed: customer_in_enterprise_segment(),
            at: at(1),
        }]);
    let QuoteState::Open(quote) = state else {
        panic!("quote should stay open")
    };
    assert_eq!(quote.customer, customer());
    assert_eq!(quote.drift, Some(customer_in_enterprise_segment()));
}

#[test]
fn a_snapshot_without_new_facts_or_an_already_reported_drift_changes_nothing() {
    let fresh_read = CustomerSnapshot {
        taken_at: at(9),
        ..customer()
    };
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::ReportCustomerDrift {
            observed: fresh_read,
            at: at(1),
        })
        .then_nothing();
    let drifted = with(
        created_with_line(),
        [QuoteEvent::CustomerDriftReported {
            observed: customer_in_enterprise_segment(),
            at: at(1),
        }],
    );
    Given::<QuoteDecider>::events(drifted)
        .when(QuoteCommand::ReportCustomerDrift {
            observed: customer_in_enterprise_segment(),
            at: at(2),
        })
        .then_nothing();
}

#[test]
fn a_snapshot_of_another_customer_is_refused() {
    let stranger = CustomerSnapshot {
        customer_id: crate::ids::CustomerId::new("c2"),
        ..customer()
    };
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::ReportCustomerDrift {
            observed: stranger,
            at: at(1),
        })
        .then_err(QuoteError::CustomerMismatch);
}

#[test]
fn revalidating_a_priced_quote_adopts_the_snapshot_in_a_new_revision() {
    let history = with(
        quote_ready_to_accept(),
        [QuoteEvent::CustomerDriftReported {
            observed: customer_in_enterprise_segment(),
            at: at(6_000),
        }],
    );
    Given::<QuoteDecider>::events(history)
        .when(QuoteCommand::Revalidate {
            customer: customer_in_enterprise_segment(),
            at: at(7_000),
        })
        .then(vec![
            QuoteEvent::RevisionStarted {
                revision: 2,
                at: at(7_000),
            },
            QuoteEvent::CustomerRevalidated {
                customer: customer_in_enterprise_segment(),
                at: at(7_000),
            },
        ]);
}

#[test]
fn revalidating_without_reported_drift_is_refused() {
    Given::<QuoteDecider>::events(created_with_line())
        .when(QuoteCommand::Revalidate {
            customer: customer(),
            at: at(1),
        })
        .then_err(QuoteError::NoDriftToRevalidate);
}

#[test]
fn a_failed_customer_check_holds_acceptance_until_revalidated_once() {
    let failed = QuoteEvent::CustomerCheckFailed {
        evidence: "schema mismatch".to_owned(),
        at: at(6_000),
    };
    Given::<QuoteDecider>::events(quote_ready_to_accept())
        .when(QuoteCommand::ReportCustomerCheckFailed {
            evidence: "schema mismatch".to_owned(),
            at: at(6_000),
        })
        .then(vec![failed.clone()]);
    let held = with(quote_ready_to_accept(), [failed]);
    // Reported once.
    Given::<QuoteDecider>::events(held.clone())
        .when(QuoteCommand::ReportCustomerCheckFailed {
            evidence: "again".to_owned(),
            at: at(6_500),
        })
        .then_nothing();
    Given::<QuoteDecider>::events(held.clone())
        .when(accept())
        .then_err(QuoteError::CustomerCheckFailed);
    // CRM answers the same customer again (a fresh read): revalidated in
    // place with the quote's own snapshot, the priced revision stays and
    // the quote may be accepted.
    let revalidated = QuoteEvent::CustomerRevalidated {
        customer: customer(),
        at: at(7_000),
    };
    Given::<QuoteDecider>::events(held.clone())
        .when(QuoteCommand::Revalidate {
            customer: CustomerSnapshot {
                taken_at: at(6_900),
                ..customer()
            },
            at: at(7_000),
        })
        .then(vec![revalidated.clone()]);
    let accepted = Given::<QuoteDecider>::events(with(held, [revalidated]))
        .when(accept())
        .result();
    assert!(
        matches!(accepted.as_deref(), Ok([QuoteEvent::QuoteAccepted { .. }])),
        "{accepted:?}"
    );
}

#[test]
fn every_rule_has_a_distinct_stable_name() {
    use crate::decider::RuleViolation;
    let errors = [
        QuoteError::PriceMissing,
        QuoteError::PriceStale,
        QuoteError::PriceForAnotherRevision,
        QuoteError::ApprovalMissing,
        QuoteError::SignatureMissing,
        QuoteError::SignatureForAnotherArtifact,
        QuoteError::SignatureForAnotherRevision,
        QuoteError::CustomerDriftUnresolved,
        QuoteError::CustomerCheckFailed,
        QuoteError::Expired,
        QuoteError::Withdrawn,
    ];
    let names: std::collections::BTreeSet<&str> = errors.iter().map(RuleViolation::rule).collect();
    assert_eq!(names.len(), errors.len());
    assert_eq!(QuoteError::PriceStale.rule(), "price_stale");
}

#[test]
fn price_book_superseded_reads_the_price_book_not_the_pricing_policy_version() {
    // A price computed under the book in force by another pricing policy
    // version is fresh; one computed under another book is not, whatever
    // its policy version says.
    let ready_with = |policy_version: &str, price_book: &str| {
        let mut events = quote_ready_to_accept();
        for event in &mut events {
            if let QuoteEvent::QuotePriced { price, .. } = event {
                price.policy_version = policy_version.to_owned();
                price.price_book = price_book.to_owned();
            }
        }
        crate::decider::fold::<QuoteDecider, _>(&events)
    };
    let fresh = QuoteDecider::decide(&ready_with("pricing-policy-7", PRICE_BOOK), &accept());
    assert!(fresh.is_ok(), "{fresh:?}");
    let superseded = QuoteDecider::decide(&ready_with(PRICE_BOOK, "pb-0"), &accept());
    assert_eq!(
        superseded,
        Err(QuoteError::PriceBookSuperseded {
            priced_under: "pb-0".to_owned(),
            in_force: PRICE_BOOK.to_owned(),
        })
    );
}

#[test]
fn capability_disabled_a_line_whose_plan_cannot_run_is_not_accepted() {
    use crate::capability::{Capabilities, Capability};
    use crate::decider::RuleViolation;
    let accept_with = |capabilities: Capabilities| QuoteCommand::Accept {
        billing_account: billing_account(),
        price_book: PRICE_BOOK.to_owned(),
        capabilities,
        at: at(10_000),
    };
    let error = QuoteError::CapabilityDisabled {
        line_id: quote_ready_to_accept_first_line(),
        capability: Capability::ProvisioningCancelService,
    };
    assert_eq!(error.rule(), "capability_disabled");
    Given::<QuoteDecider>::events(quote_ready_to_accept())
        .when(accept_with(
            Capabilities::all().without(Capability::ProvisioningCancelService),
        ))
        .then_err(error);
    // Without the CRM the plan still runs: validation happened at creation.
    let accepted = Given::<QuoteDecider>::events(quote_ready_to_accept())
        .when(accept_with(
            Capabilities::all().without(Capability::CrmValidateAccount),
        ))
        .result();
    assert!(accepted.is_ok(), "{accepted:?}");
}

fn quote_ready_to_accept_first_line() -> String {
    let state = quote_ready_to_accept()
        .iter()
        .fold(QuoteDecider::initial(), QuoteDecider::evolve);
    match state {
        QuoteState::Open(quote) => quote
            .lines
            .first()
            .map(|l| l.line_id.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[test]
fn a_priced_quote_expires_only_once_its_validity_has_ended() {
    let history = with(created_with_line(), [priced(1, &["l1"], 0)]);
    let until = T0.plus_millis(PRICE_VALIDITY_MS);
    Given::<QuoteDecider>::events(history.clone())
        .when(QuoteCommand::Expire {
            at: crate::ids::Timestamp(until.0 - 1),
        })
        .then_err(QuoteError::StillValid { until_ms: until.0 });
    Given::<QuoteDecider>::events(history)
        .when(QuoteCommand::Expire { at: until })
        .then(vec![QuoteEvent::QuoteExpired { at: until }]);
}

#[test]
fn a_suspended_customer_is_quoted_but_every_price_needs_approval() {
    let suspended = vec![
        quote_created(),
        QuoteEvent::CustomerSuspended {
            status: "SUSPENDED".to_owned(),
            at: T0,
        },
    ];
    Given::<QuoteDecider>::nothing()
        .when(QuoteCommand::Create {
            quote_id: quote_id(),
            tenant_id: tenant(),
            customer: customer(),
            catalog_version: "catalog-2024.06".to_owned(),
            customer_suspension: Some("SUSPENDED".to_owned()),
            catalog: crate::catalog::VersionStanding::Unmanaged,
            at: T0,
        })
        .then(suspended.clone());
    let mut history = suspended;
    history.push(QuoteEvent::LineAdded {
        revision: 1,
        line: line("l1"),
        at: T0,
    });
    // No discount at all: the suspension alone asks for approval.
    Given::<QuoteDecider>::events(history.clone())
        .when(QuoteCommand::Price {
            price: price(1, &["l1"], percent(0)),
            policy: approval_policy(),
            at: T0,
        })
        .then(vec![
            priced(1, &["l1"], 0),
            QuoteEvent::CustomerApprovalRequired {
                revision: 1,
                status: "SUSPENDED".to_owned(),
                at: T0,
            },
        ]);
    history.extend([
        priced(1, &["l1"], 0),
        QuoteEvent::CustomerApprovalRequired {
            revision: 1,
            status: "SUSPENDED".to_owned(),
            at: T0,
        },
    ]);
    Given::<QuoteDecider>::events(history.clone())
        .when(accept())
        .then_err(QuoteError::ApprovalMissing);
    Given::<QuoteDecider>::events(history)
        .when(QuoteCommand::Approve {
            approver: "boss".to_owned(),
            at: T0,
        })
        .then(vec![QuoteEvent::ApprovalGranted {
            revision: 1,
            approver: "boss".to_owned(),
            at: T0,
        }]);
}

#[test]
fn a_suspension_reported_after_pricing_needs_a_new_approval_and_is_recorded_once() {
    let history = with(
        created_with_line(),
        [
            priced(1, &["l1"], 20),
            QuoteEvent::ApprovalRequired {
                revision: 1,
                reason: approval_policy()
                    .approval_needed(&customer().segment, percent(20))
                    .expect("20% exceeds the smb threshold"),
                at: T0,
            },
            QuoteEvent::ApprovalGranted {
                revision: 1,
                approver: "boss".to_owned(),
                at: T0,
            },
        ],
    );
    let report = QuoteCommand::ReportCustomerSuspended {
        status: "SUSPENDED".to_owned(),
        at: at(5),
    };
    let reported = vec![
        QuoteEvent::CustomerSuspended {
            status: "SUSPENDED".to_owned(),
            at: at(5),
        },
        QuoteEvent::CustomerApprovalRequired {
            revision: 1,
            status: "SUSPENDED".to_owned(),
            at: at(5),
        },
    ];
    Given::<QuoteDecider>::events(history.clone())
        .when(report.clone())
        .then(reported.clone());
    let after = with(history, reported);
    Given::<QuoteDecider>::events(after.clone())
        .when(report)
        .then(vec![]);
    Given::<QuoteDecider>::events(after)
        .when(accept())
        .then_err(QuoteError::ApprovalMissing);
}

/// Found by a probe: revision 2 was signed, then a late signature of
/// revision 1 arrived; it replaced revision 2's signature, and the quote,
/// still shown SIGNED, could not be accepted until revision 2 was signed
/// again. A signature of an earlier revision is evidence only.
#[test]
fn a_late_signature_of_an_earlier_revision_leaves_the_current_one_standing() {
    let signed_twice = with(quote_ready_to_accept(), revision_two_proposed(2));
    // The late signature of revision 1 is recorded, as evidence.
    Given::<QuoteDecider>::events(signed_twice.clone())
        .when(QuoteCommand::RecordSignature {
            revision: 1,
            signature: signature("art-1"),
            at: at(8_500),
        })
        .then(vec![QuoteEvent::SignatureRecorded {
            revision: 1,
            signature: signature("art-1"),
            at: at(8_500),
        }]);
    let late = with(
        signed_twice,
        [QuoteEvent::SignatureRecorded {
            revision: 1,
            signature: signature("art-1"),
            at: at(8_500),
        }],
    );
    let accepted = Given::<QuoteDecider>::events(late).when(accept()).result();
    assert!(
        matches!(
            accepted.as_deref(),
            Ok([QuoteEvent::QuoteAccepted { revision: 2, .. }])
        ),
        "{accepted:?}"
    );
}

/// Found by a probe: a signature of the current revision over a document
/// that is not its proposal was recorded and the quote showed SIGNED; only
/// the acceptance refused it. It is refused when it is recorded.
#[test]
fn a_signature_of_the_current_revision_over_another_document_is_refused() {
    let mut proposed = quote_ready_to_accept();
    proposed.pop();
    // Unsigned, or signed already (it cannot replace a signature that counts).
    for history in [proposed, quote_ready_to_accept()] {
        Given::<QuoteDecider>::events(history)
            .when(QuoteCommand::RecordSignature {
                revision: 1,
                signature: signature("art-other"),
                at: at(9_000),
            })
            .then_err(QuoteError::SignatureForAnotherArtifact);
    }
}

/// Found by a re-probe: signed over `art-1`, then a new proposal `art-2`
/// for the same revision; the old signature still counted as the quote's
/// (shown current, acceptance refused it), and proposing `art-1` again
/// made it acceptable with nobody signing again. A new proposal of
/// another document voids the revision's signature.
#[test]
fn a_new_proposal_of_another_document_voids_the_revisions_signature() {
    let reproposed = with(
        quote_ready_to_accept(),
        [QuoteEvent::ProposalGenerated {
            revision: 1,
            artifact: proposal("art-2"),
            at: at(6_000),
        }],
    );
    Given::<QuoteDecider>::events(reproposed.clone())
        .when(accept())
        .then_err(QuoteError::SignatureMissing);
    let back = with(
        reproposed,
        [QuoteEvent::ProposalGenerated {
            revision: 1,
            artifact: proposal("art-1"),
            at: at(7_000),
        }],
    );
    Given::<QuoteDecider>::events(back)
        .when(accept())
        .then_err(QuoteError::SignatureMissing);
    // The same document proposed again keeps its signature.
    let same = with(
        quote_ready_to_accept(),
        [QuoteEvent::ProposalGenerated {
            revision: 1,
            artifact: proposal("art-1"),
            at: at(6_000),
        }],
    );
    let accepted = Given::<QuoteDecider>::events(same).when(accept()).result();
    assert!(
        matches!(accepted.as_deref(), Ok([QuoteEvent::QuoteAccepted { .. }])),
        "{accepted:?}"
    );
}
