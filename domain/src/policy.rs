//! The fulfillment policy: pure `event -> commands` reactions that drive the saga.
//!
//! | trigger | commands issued |
//! | --- | --- |
//! | `QuoteAccepted` | capture the order (id derived from the event id) |
//! | `OrderCaptured` | request each line's reservation |
//! | `StepRequested` | open the handoff for that step and attempt |
//! | `StepSucceeded` (not billing) | request the line's next step |
//! | `LineActivated` / `LineCancelled` with no line left open | complete the order |
//! | `LineCancelled` / `OrderCancelled` / `CancellationPlanned` | open the first compensation handoff of each line (furthest effect first) |
//! | `CompensationRequested` | open that compensation's handoff (the one before it was undone or its case closed) |
//! | `StepWithdrawn` | withdraw the step's handoff (no send after a cancellation) |
//! | `LineFalloutResolved` | resolve the handoff that fell out |
//! | `HandoffSucceeded` (forward step) | record the step's success on the order |
//! | `HandoffRejected` / `HandoffFalloutRaised` (forward step) | raise fallout on the line |
//! | `HandoffSucceeded` / `HandoffRejected` / `HandoffFalloutRaised` (compensation) | record the compensation's outcome on the order |
//! | `HandoffResolved` (compensation) | record on the order that an operator closed the compensation's case |
//! | `OrderCaptured` / `OrderCompleted` / `LineFalloutRaised` | record the milestone's notification on the order (while `NOTIFICATION_SEND_EMAIL` is enabled) |
//! | `NotificationRequested` | open the notification's handoff |
//! | `OrderCaptured` | record the order's confirmation document (while `DOCUMENT_GENERATE_ORDER_CONFIRMATION` is enabled) |
//! | `ConfirmationRequested` | open the document's handoff |
//!
//! A notification's or a document's handoff outcome issues nothing: a
//! failed one is the handoff's own fallout, never the order's.
//!
//! An UNKNOWN outcome issues nothing: the handoff waits for reconciliation. A
//! "local impossible" fallout of a forward step stays on the handoff when the
//! order already moved on; when the line is in fallout for a reason that took
//! no effect (a success arrived after it), the order raises the line's
//! fallout again with it (ADR 0019).
//!
//! Every command carries `command_id = derive_id(trigger event id, action)`, so
//! running the policy twice on the same event issues identical commands; an
//! idempotent append keyed by the command id makes the second run a no-op.

use crate::capability::{Capabilities, Capability};
use crate::catalog::CatalogEvent;
use crate::handoff::{HandoffCommand, HandoffEvent, HandoffRequest, HandoffSubject};
use crate::idempotency::{derive_id, Purpose};
use crate::ids::{handoff_stream, order_stream, HandoffId, LineId, OrderId, Timestamp};
use crate::notification::Milestone;
use crate::order::{
    CompensationOutcome, CompensationPlan, OrderCommand, OrderEvent, QuoteEvidence, Resolution,
    Step,
};
use crate::outcome::FalloutReason;
use crate::quote::QuoteEvent;

/// The event a reaction is triggered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerEvent<'a> {
    /// A quote event.
    Quote(&'a QuoteEvent),
    /// An order event.
    Order(&'a OrderEvent),
    /// A handoff event.
    Handoff(&'a HandoffEvent),
    /// A catalog event (the fulfillment process never reacts to one).
    Catalog(&'a CatalogEvent),
}

/// A recorded event with the envelope facts the policy needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyInput<'a> {
    /// The recorded event's id (a ULID from the log); seeds every derived id.
    pub event_id: &'a str,
    /// The stream the event was recorded on.
    pub stream_id: &'a str,
    /// When the event was recorded; used as the issued commands' time.
    pub recorded_at: Timestamp,
    /// The event.
    pub event: TriggerEvent<'a>,
    /// The event's tenant's capabilities now: a milestone is notified only
    /// while `NOTIFICATION_SEND_EMAIL` is enabled (the policy never guesses).
    pub capabilities: &'a Capabilities,
}

/// A command the policy issues, addressed to an aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuedCommand {
    /// For an order stream.
    Order(OrderCommand),
    /// For a handoff stream.
    Handoff(HandoffCommand),
}

/// A command with its deterministic id and target stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCommand {
    /// `derive_id(trigger event id, action)`: the same for every run on the same event.
    pub command_id: String,
    /// What the policy does (`capture`, `reserve:<line>`, ...): with the
    /// trigger event's id, the command's idempotency key
    /// ([`crate::idempotency::CommandKey::reaction`]).
    pub action: String,
    /// The stream the command is for.
    pub stream_id: String,
    /// The command.
    pub command: IssuedCommand,
}

/// The order a quote's acceptance captures: derived from the id of its
/// `QuoteAccepted` event, so every run of the policy names the same order
/// and a read model can link the quote to it without waiting for the order.
pub fn order_captured_by(acceptance_event_id: &str) -> OrderId {
    OrderId::new(derive_id(acceptance_event_id, "order"))
}

/// The commands `input` calls for; empty when the event needs no reaction.
pub fn react(input: &PolicyInput<'_>) -> Vec<PolicyCommand> {
    match input.event {
        TriggerEvent::Quote(event) => react_to_quote(input, event),
        TriggerEvent::Order(event) => react_to_order(input, event),
        TriggerEvent::Handoff(event) => react_to_handoff(input, event),
        TriggerEvent::Catalog(_) => Vec::new(),
    }
}

fn issue(
    input: &PolicyInput<'_>,
    action: &str,
    stream_id: String,
    command: IssuedCommand,
) -> PolicyCommand {
    PolicyCommand {
        command_id: derive_id(input.event_id, action),
        action: action.to_owned(),
        stream_id,
        command,
    }
}

fn react_to_quote(input: &PolicyInput<'_>, event: &QuoteEvent) -> Vec<PolicyCommand> {
    let QuoteEvent::QuoteAccepted {
        quote_id,
        tenant_id,
        revision,
        customer_id,
        billing_account,
        price_input_hash,
        signed_artifact_hash,
        lines,
        ..
    } = event
    else {
        return Vec::new();
    };
    let order_id = order_captured_by(input.event_id);
    let capture = OrderCommand::Capture {
        order_id: order_id.clone(),
        tenant_id: tenant_id.clone(),
        evidence: QuoteEvidence {
            quote_id: quote_id.clone(),
            revision: *revision,
            price_input_hash: price_input_hash.clone(),
            signed_artifact_hash: signed_artifact_hash.clone(),
        },
        customer_id: customer_id.clone(),
        billing_account: billing_account.clone(),
        lines: lines.clone(),
        at: input.recorded_at,
    };
    vec![issue(
        input,
        "capture-order",
        order_stream(&order_id),
        IssuedCommand::Order(capture),
    )]
}

fn react_to_order(input: &PolicyInput<'_>, event: &OrderEvent) -> Vec<PolicyCommand> {
    let own_stream = || input.stream_id.to_owned();
    let request_step = |line_id: &LineId, step: Step| {
        let command = OrderCommand::RequestStep {
            line_id: line_id.clone(),
            step,
            at: input.recorded_at,
        };
        issue(
            input,
            &format!("request-step:{line_id}:{step:?}"),
            own_stream(),
            IssuedCommand::Order(command),
        )
    };
    let notifies = input
        .capabilities
        .enabled(Capability::NotificationSendEmail);
    let notify = |milestone: Milestone| {
        let action = format!("notify:{}", milestone.name());
        let command = OrderCommand::RequestNotification {
            milestone,
            at: input.recorded_at,
        };
        issue(input, &action, own_stream(), IssuedCommand::Order(command))
    };
    let confirms = input
        .capabilities
        .enabled(Capability::DocumentGenerateOrderConfirmation);
    let confirm = || {
        let command = OrderCommand::RequestConfirmation {
            at: input.recorded_at,
        };
        issue(
            input,
            "request-confirmation",
            own_stream(),
            IssuedCommand::Order(command),
        )
    };
    let complete = || {
        let command = OrderCommand::Complete {
            at: input.recorded_at,
        };
        issue(
            input,
            "complete-order",
            own_stream(),
            IssuedCommand::Order(command),
        )
    };
    match event {
        OrderEvent::OrderCaptured { lines, .. } => lines
            .iter()
            .map(|accepted| request_step(&accepted.line.line_id, Step::FIRST))
            .chain(notifies.then(|| notify(Milestone::OrderCaptured)))
            .chain(confirms.then(confirm))
            .collect(),
        OrderEvent::StepRequested { handoff, .. }
        | OrderEvent::NotificationRequested { handoff, .. }
        | OrderEvent::ConfirmationRequested { handoff, .. } => vec![open_handoff(input, handoff)],
        OrderEvent::OrderCompleted { .. } => notifies
            .then(|| notify(Milestone::OrderCompleted))
            .into_iter()
            .collect(),
        OrderEvent::LineFalloutRaised {
            line_id,
            step,
            attempt,
            reason,
            ..
        } => notifies
            .then(|| {
                notify(Milestone::LineNeedsAttention {
                    line_id: line_id.clone(),
                    step: *step,
                    attempt: *attempt,
                    reason: *reason,
                })
            })
            .into_iter()
            .collect(),
        OrderEvent::StepSucceeded { line_id, step, .. } => step
            .next()
            .map(|next| request_step(line_id, next))
            .into_iter()
            .collect(),
        OrderEvent::LineActivated { lines_open: 0, .. } => vec![complete()],
        OrderEvent::LineCancelled {
            plan, lines_open, ..
        } => {
            let mut commands: Vec<PolicyCommand> = first_of_each_line(plan)
                .map(|handoff| open_handoff(input, handoff))
                .collect();
            if *lines_open == 0 {
                commands.push(complete());
            }
            commands
        }
        OrderEvent::OrderCancelled { plan, .. } | OrderEvent::CancellationPlanned { plan, .. } => {
            first_of_each_line(plan)
                .map(|handoff| open_handoff(input, handoff))
                .collect()
        }
        OrderEvent::CompensationRequested { handoff, .. } => vec![open_handoff(input, handoff)],
        OrderEvent::LineFalloutResolved {
            handoff_id,
            resolution,
            operator,
            ..
        } => {
            vec![resolve_handoff(input, handoff_id, resolution, operator)]
        }
        OrderEvent::StepWithdrawn { handoff_id, .. } => {
            let command = HandoffCommand::Withdraw {
                reason: "order cancelled".to_owned(),
                at: input.recorded_at,
            };
            vec![issue(
                input,
                &format!("withdraw-handoff:{handoff_id}"),
                handoff_stream(handoff_id),
                IssuedCommand::Handoff(command),
            )]
        }
        OrderEvent::LineActivated { .. } | OrderEvent::CompensationSettled { .. } => Vec::new(),
    }
}

/// The compensations a plan opens at once: each line's first
/// ([`CompensationPlan::with_first_of_each_line`]).
fn first_of_each_line(plan: &CompensationPlan) -> impl Iterator<Item = &HandoffRequest> {
    plan.with_first_of_each_line()
        .filter_map(|(handoff, first)| first.then_some(handoff))
}

fn open_handoff(input: &PolicyInput<'_>, handoff: &HandoffRequest) -> PolicyCommand {
    let command = HandoffCommand::Request {
        subject: handoff.subject.clone(),
        request: handoff.request.clone(),
        at: input.recorded_at,
    };
    issue(
        input,
        &format!("open-handoff:{}", handoff.handoff_id),
        handoff_stream(&handoff.handoff_id),
        IssuedCommand::Handoff(command),
    )
}

fn resolve_handoff(
    input: &PolicyInput<'_>,
    handoff_id: &HandoffId,
    resolution: &Resolution,
    operator: &str,
) -> PolicyCommand {
    let note = match resolution {
        Resolution::NewAttempt => "order line retried under a new attempt".to_owned(),
        Resolution::ResolvedExternally { reference, note } => {
            crate::handoff::resolved_externally(reference, note)
        }
        Resolution::CancelLine { reason } => format!("order line cancelled: {reason}"),
    };
    let command = HandoffCommand::Resolve {
        operator: operator.to_owned(),
        note,
        at: input.recorded_at,
    };
    issue(
        input,
        "resolve-handoff",
        handoff_stream(handoff_id),
        IssuedCommand::Handoff(command),
    )
}

/// A compensation handoff (release, cancel) reports how it ended to its
/// order, which keeps it on the cancelled line, and an operator's close of
/// its failed case, which lets the line's next compensation go.
fn compensation_settled(input: &PolicyInput<'_>, event: &HandoffEvent) -> Option<PolicyCommand> {
    let (subject, outcome) = match event {
        HandoffEvent::HandoffSucceeded { subject, .. } => (subject, CompensationOutcome::Done),
        HandoffEvent::HandoffResolved {
            subject: Some(subject),
            ..
        } => (subject, CompensationOutcome::Closed),
        HandoffEvent::HandoffRejected {
            subject, reason, ..
        }
        | HandoffEvent::HandoffFalloutRaised {
            subject, reason, ..
        } => (subject, CompensationOutcome::Failed { reason: *reason }),
        _ => return None,
    };
    if !is_compensation(subject) {
        return None;
    }
    Some(issue(
        input,
        "record-compensation",
        order_stream(&subject.order_id),
        IssuedCommand::Order(OrderCommand::RecordCompensation {
            handoff_id: subject.handoff_id(),
            outcome,
            at: input.recorded_at,
        }),
    ))
}

fn react_to_handoff(input: &PolicyInput<'_>, event: &HandoffEvent) -> Vec<PolicyCommand> {
    if let Some(command) = compensation_settled(input, event) {
        return vec![command];
    }
    let (subject, command) = match event {
        HandoffEvent::HandoffSucceeded {
            subject,
            observation,
        } => (
            subject,
            OrderCommand::RecordStepSucceeded {
                line_id: subject.line_id.clone(),
                handoff_id: subject.handoff_id(),
                attempt: subject.attempt,
                external_reference: observation.external_reference.clone(),
                at: input.recorded_at,
            },
        ),
        HandoffEvent::HandoffRejected {
            subject, reason, ..
        } => (subject, raise_fallout(input, subject, *reason)),
        // Every fallout of a forward step is raised on its line, "local
        // impossible" too: the order decides whether the line still waits
        // on this handoff (a callback that never matched a sent request)
        // or has moved on (an outcome contradicting a recorded one; the
        // order refuses, and the case stays the handoff's).
        HandoffEvent::HandoffFalloutRaised {
            subject, reason, ..
        } => (subject, raise_fallout(input, subject, *reason)),
        _ => return Vec::new(),
    };
    if !is_forward(subject) {
        return Vec::new();
    }
    vec![issue(
        input,
        "observe-step",
        order_stream(&subject.order_id),
        IssuedCommand::Order(command),
    )]
}

fn is_forward(subject: &HandoffSubject) -> bool {
    Step::of_purpose(subject.purpose).is_some()
}

fn is_compensation(subject: &HandoffSubject) -> bool {
    matches!(subject.purpose, Purpose::Release | Purpose::Cancel)
}

fn raise_fallout(
    input: &PolicyInput<'_>,
    subject: &HandoffSubject,
    reason: FalloutReason,
) -> OrderCommand {
    OrderCommand::RaiseFallout {
        line_id: subject.line_id.clone(),
        handoff_id: subject.handoff_id(),
        attempt: subject.attempt,
        reason,
        at: input.recorded_at,
    }
}
