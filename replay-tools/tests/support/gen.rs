//! Generates realistic logs through the real command path: quotes created,
//! priced, signed and accepted, then the fulfillment policy and a simulated
//! dispatcher drive each order through reservation, provisioning and
//! billing handoffs, every command under the flow's correlation id.
//!
//! Shared by the integration tests and the benchmark (`#[path]`).

use std::collections::VecDeque;

use application::{CommandContext, CommandPath};
use domain::handoff::{HandoffCommand, HandoffEvent};
use domain::idempotency::{CommandKey, Purpose};
use domain::ids::{quote_stream, QuoteId, TenantId, Timestamp};
use domain::outcome::{ObservationSource, OutcomeClass};
use domain::policy::{react, IssuedCommand, PolicyInput, TriggerEvent};
use domain::quote::QuoteCommand;
use domain::testing::fixtures::{
    approval_policy, at, billing_account, customer, line, observation, percent, price, proposal,
    retry_policy, signature, T0,
};
use domain::{HandoffDecider, OrderDecider, QuoteDecider};
use eventlog::RecordedEvent;

/// The correlation id of flow `i`.
pub(crate) fn correlation(i: usize) -> String {
    format!("corr-{i}")
}

/// The tenant of flow `i`.
pub(crate) fn tenant(i: usize) -> String {
    format!("t{}", i % 3)
}

/// The quote stream of flow `i`.
pub(crate) fn quote_stream_of(i: usize) -> String {
    quote_stream(&QuoteId::new(format!("q{i}")))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// True when flow `i`'s billing system rejects its activations (one flow
/// in ten), so its order lines end in fallout instead of completing.
pub(crate) fn rejects_billing(i: usize) -> bool {
    i % 10 == 9
}

/// Runs flow `i` to its end (order completed, or lines in fallout when
/// [`rejects_billing`]), with `lines` quote lines. Returns the number of
/// events it wrote.
pub(crate) async fn run_flow(path: &CommandPath, i: usize, lines: usize) -> Result<u64, String> {
    let tenant = tenant(i);
    let corr = correlation(i);
    let stream = quote_stream_of(i);
    let line_ids: Vec<String> = (1..=lines).map(|l| format!("l{l}")).collect();
    let refs: Vec<&str> = line_ids.iter().map(String::as_str).collect();
    let artifact = format!("art-{i}");
    let mut commands = vec![QuoteCommand::Create {
        quote_id: QuoteId::new(format!("q{i}")),
        tenant_id: TenantId::new(&tenant),
        customer: customer(),
        catalog_version: "catalog-2024.06".to_owned(),
        customer_suspension: None,
        catalog: domain::catalog::VersionStanding::Unmanaged,
        at: T0,
    }];
    for id in &refs {
        commands.push(QuoteCommand::AddLine {
            line: line(id),
            at: T0,
        });
    }
    commands.push(QuoteCommand::Price {
        price: price(1, &refs, percent(5)),
        policy: approval_policy(),
        at: T0,
    });
    commands.push(QuoteCommand::RecordProposal {
        revision: 1,
        artifact: proposal(&artifact),
        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
        at: at(1_000),
    });
    commands.push(QuoteCommand::RecordSignature {
        revision: 1,
        signature: signature(&artifact),
        at: at(5_000),
    });
    commands.push(QuoteCommand::Accept {
        billing_account: billing_account(),
        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
        capabilities: domain::capability::Capabilities::all(),
        at: at(10_000),
    });
    let mut written = 0u64;
    let mut queue: VecDeque<u64> = VecDeque::new();
    for (n, command) in commands.iter().enumerate() {
        let ctx = CommandContext::new(
            CommandKey::client(&TenantId::new(tenant.clone()), format!("cmd-{i}-{n}")),
            &tenant,
            &corr,
        );
        let outcome = path
            .execute::<QuoteDecider>(&stream, command, &ctx)
            .await
            .map_err(err)?;
        if let Some(range) = outcome.positions {
            queue.extend(range);
        }
    }
    while let Some(position) = queue.pop_front() {
        written += 1;
        let record = path
            .log()
            .read_at(position)
            .map_err(err)?
            .ok_or("an appended event is not readable")?;
        for range in react_to(path, &record, &tenant, &corr, rejects_billing(i)).await? {
            queue.extend(range);
        }
    }
    Ok(written)
}

/// Runs the policy (and the simulated dispatcher) on one event.
async fn react_to(
    path: &CommandPath,
    record: &RecordedEvent,
    tenant: &str,
    corr: &str,
    reject_billing: bool,
) -> Result<Vec<std::ops::RangeInclusive<u64>>, String> {
    let event_id = record.event_id.to_string();
    let mut ranges = Vec::new();
    let stream = record.stream_id.as_str();
    let event = projections::decode_record(record).map_err(err)?;
    let trigger = event.as_trigger();
    let input = PolicyInput {
        event_id: &event_id,
        stream_id: stream,
        recorded_at: Timestamp(record.recorded_at_ms),
        event: trigger,
        capabilities: &domain::capability::Capabilities::all(),
    };
    for command in react(&input) {
        let ctx = CommandContext::new(
            CommandKey::reaction(event_id.clone(), command.action.clone()),
            tenant,
            corr,
        );
        let outcome = match &command.command {
            IssuedCommand::Order(c) => path
                .execute::<OrderDecider>(&command.stream_id, c, &ctx)
                .await
                .map_err(err)?,
            IssuedCommand::Handoff(c) => path
                .execute::<HandoffDecider>(&command.stream_id, c, &ctx)
                .await
                .map_err(err)?,
        };
        ranges.extend(outcome.positions);
    }
    // The simulated dispatcher: send every requested handoff, and the
    // simulated target calls back with a success (or a business rejection
    // of billing, for the flows that reject it).
    if let TriggerEvent::Handoff(HandoffEvent::HandoffRequested { subject, .. }) = trigger {
        let class = if reject_billing && subject.purpose == Purpose::ActivateBilling {
            OutcomeClass::BusinessRejected
        } else {
            OutcomeClass::Succeeded
        };
        let dispatch = HandoffCommand::RecordDispatch {
            at: Timestamp(record.recorded_at_ms),
        };
        let observe = HandoffCommand::Observe {
            observation: observation(subject, class, ObservationSource::Callback),
            retry_policy: retry_policy(),
        };
        for (action, command) in [("dispatch", dispatch), ("callback", observe)] {
            let ctx =
                CommandContext::new(CommandKey::reaction(event_id.clone(), action), tenant, corr);
            let outcome = path
                .execute::<HandoffDecider>(stream, &command, &ctx)
                .await
                .map_err(err)?;
            ranges.extend(outcome.positions);
        }
    }
    Ok(ranges)
}
