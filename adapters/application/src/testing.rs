//! Helpers for tests, examples and demos: drive a sample quote (from
//! `domain::testing::fixtures`) to acceptance through the command path, so
//! the fulfillment process captures an order from it.

use domain::idempotency::{derive_id, CommandKey};
use domain::ids::{quote_stream, OrderId, QuoteId, TenantId};
use domain::quote::{QuoteCommand, QuoteError};
use domain::testing::fixtures::{
    approval_policy, at, billing_account, customer, line, percent, price, proposal, signature,
};
use domain::QuoteDecider;

use crate::command::{CommandContext, CommandError, CommandPath};

/// Creates, prices, proposes, signs and accepts quote `quote` of `tenant`
/// with one sample line per id in `lines`. Command ids are derived from the
/// quote id, so calling it again is a no-op. Returns the id of the order
/// the process manager will capture (derived from the acceptance event).
///
/// # Errors
/// The command path's error, if a command fails.
pub async fn accept_sample_quote(
    path: &CommandPath,
    tenant: &str,
    quote: &str,
    lines: &[&str],
) -> Result<OrderId, CommandError<QuoteError>> {
    let quote_id = QuoteId::new(quote);
    let stream = quote_stream(&quote_id);
    let mut commands = vec![QuoteCommand::Create {
        quote_id,
        tenant_id: TenantId::new(tenant),
        customer: customer(),
        catalog_version: "catalog-2024.06".into(),
        customer_suspension: None,
        catalog: domain::catalog::VersionStanding::Unmanaged,
        at: at(0),
    }];
    commands.extend(lines.iter().map(|id| QuoteCommand::AddLine {
        line: line(id),
        at: at(1),
    }));
    commands.push(QuoteCommand::Price {
        price: price(1, lines, percent(5)),
        policy: approval_policy(),
        at: at(2),
    });
    commands.push(QuoteCommand::RecordProposal {
        revision: 1,
        artifact: proposal("art-1"),
        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
        at: at(1_000),
    });
    commands.push(QuoteCommand::RecordSignature {
        revision: 1,
        signature: signature("art-1"),
        at: at(5_000),
    });
    commands.push(QuoteCommand::Accept {
        billing_account: billing_account(),
        price_book: domain::testing::fixtures::PRICE_BOOK.to_owned(),
        capabilities: domain::capability::Capabilities::all(),
        at: at(6_000),
    });
    let mut last = None;
    for (i, command) in commands.iter().enumerate() {
        let context = CommandContext::new(
            CommandKey::client(&TenantId::new(tenant), format!("{quote}:sample:{i}")),
            tenant,
            format!("corr-{quote}"),
        );
        last = Some(
            path.execute::<QuoteDecider>(&stream, command, &context)
                .await?,
        );
    }
    let position = last
        .and_then(|outcome| outcome.positions)
        .map(|p| *p.start())
        .ok_or_else(|| CommandError::Corrupt {
            position: 0,
            message: "acceptance wrote no event".into(),
        })?;
    let record = path
        .log()
        .read_at(position)?
        .ok_or_else(|| CommandError::Corrupt {
            position,
            message: "acceptance event not readable".into(),
        })?;
    Ok(OrderId::new(derive_id(
        &record.event_id.to_string(),
        "order",
    )))
}
