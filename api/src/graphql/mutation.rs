//! Command mutations. Every mutation takes the client's `commandId`
//! (idempotent: the same id with the same arguments returns the first
//! result, `deduplicated: true`, whatever happened since; with other
//! arguments it is `IDEMPOTENCY_CONFLICT`) and an optional
//! `expectedVersion`, and returns the stream's new version and the
//! positions of the events appended. Arguments are validated at the edge
//! by [`super::input`] (ids, decimals, text limits) before anything else;
//! everything that depends on the world (CRM, prices, the quote's state)
//! is built by [`Platform::execute`]'s builder, after the idempotency check.

use async_graphql::{Context, InputObject, Object};
use domain::capability::Capability;
use domain::catalog::{CatalogCommand, MAX_VERSION_BYTES};
use domain::handoff::HandoffCommand;
use domain::idempotency::CommandKey;
use domain::ids::{
    ArtifactId, BillingAccountId, CustomerId, HandoffId, LineId, OfferingId, OrderId, QuoteId,
    Timestamp,
};
use domain::money::Percent;
use domain::order::{OrderCommand, Resolution};
use domain::quote::limits::{MAX_OPTIONS_PER_LINE, MAX_QUANTITY, MAX_TERM_MONTHS};
use domain::quote::{price_command, ProposalArtifact, QuoteCommand, QuoteLine, SignatureEvidence};
use domain::{CatalogDecider, HandoffDecider, OrderDecider, QuoteDecider};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::input;
use super::types::admin::{ConsumerReset, LogVerification, RebuildReport, ReconciliationReport};
use super::types::enums::FalloutAction;
use super::types::CommandResult;
use super::{caller, every_tenant_caller, CommandTarget};
use crate::auth::{Principal, Role};
use crate::platform::{ClientCommand, Platform};

/// The mutation root.
pub struct Mutation;

/// A quote line as configured by the seller.
#[derive(InputObject, serde::Serialize)]
pub struct LineInput {
    /// The line's id, unique within the quote.
    pub line_id: String,
    /// The catalog offering.
    pub offering_id: String,
    /// The offering's catalog version: 1 to 2,147,483,647.
    pub offering_version: i64,
    /// Units: 1 to 1,000,000.
    pub quantity: i64,
    /// Contract term in months: 1 to 120.
    pub term_months: i64,
    /// Configured options.
    #[graphql(default)]
    pub options: Vec<OptionInput>,
}

/// One configured option.
#[derive(InputObject, serde::Serialize)]
pub struct OptionInput {
    /// Option name: not blank, nothing invisible or white at either end, once
    /// per line.
    pub name: String,
    /// Option value.
    pub value: String,
}

/// Most faults scripted in one `scriptSimulator` call.
pub const MAX_SCRIPTED_FAULTS: usize = 1_000;

/// Runs an admin's command on the caller's tenant's catalog.
async fn catalog_command(
    platform: &Platform,
    principal: &Principal,
    command_id: &str,
    request: serde_json::Value,
    command: CatalogCommand,
) -> async_graphql::Result<CommandResult> {
    let client = ClientCommand {
        command_id,
        target: CommandTarget::catalog(&principal.tenant),
        expected_version: None,
        request,
    };
    Ok(platform
        .execute::<CatalogDecider, _, _>(principal, client, || async { Ok(command) })
        .await?
        .into())
}

/// A catalog version name as the catalog accepts it.
/// Checks a catalog version given in `field`: printable text of 1 to
/// [`MAX_VERSION_BYTES`] bytes, not blank, with nothing invisible at either
/// end ([`input::name`]), the same
/// wherever a version is named (quote creation, activation, retirement).
fn catalog_version_input(field: &str, version: &str) -> ApiResult<()> {
    input::name(field, version, MAX_VERSION_BYTES)
}

fn line(input: LineInput) -> ApiResult<QuoteLine> {
    input::id("line.lineId", &input.line_id)?;
    input::id("line.offeringId", &input.offering_id)?;
    let quantity = input::whole("line.quantity", input.quantity, 1, MAX_QUANTITY.into())?;
    let term_months = input::whole(
        "line.termMonths",
        input.term_months,
        1,
        MAX_TERM_MONTHS.into(),
    )?;
    // The quote answers the version back as a GraphQL `Int` (32 bits, signed).
    let offering_version = input::whole(
        "line.offeringVersion",
        input.offering_version,
        1,
        i32::MAX.into(),
    )?;
    if input.options.len() > MAX_OPTIONS_PER_LINE {
        return Err(ApiError::validation(
            "line.options",
            format!("at most {MAX_OPTIONS_PER_LINE} options"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    for option in &input.options {
        input::name(
            "line.options.name",
            &option.name,
            input::MAX_OPTION_NAME_BYTES,
        )?;
        if !names.insert(input::name_key(&option.name)) {
            return Err(ApiError::validation(
                "line.options.name",
                format!(
                    "`{}` is given twice; a line configures each option once",
                    option.name
                ),
            ));
        }
        input::label("line.options.value", &option.value, input::MAX_LABEL_BYTES)?;
    }
    Ok(QuoteLine {
        line_id: LineId::new(input.line_id),
        offering_id: OfferingId::new(input.offering_id),
        offering_version,
        quantity,
        term_months,
        options: input
            .options
            .into_iter()
            .map(|o| (o.name, o.value))
            .collect(),
    })
}

/// A new quote's id, derived from the tenant and the command id so that a
/// retried create names the same quote, and no tenant can guess or collide
/// with another's.
fn new_quote_id(tenant: &str, command_id: &str) -> QuoteId {
    let digest = Sha256::digest(format!("{tenant}:{command_id}").as_bytes());
    QuoteId::new(format!("q-{}", &hex::encode(digest)[..20]))
}

/// Runs a quote command for a seller: `quoteId` validated, then
/// [`Platform::execute`] with `make` as the command's builder.
async fn quote_command(
    ctx: &Context<'_>,
    action: &'static str,
    quote_id: String,
    command_id: String,
    expected_version: Option<i64>,
    request: serde_json::Value,
    make: impl FnOnce(&Platform, &Principal) -> ApiResult<QuoteCommand>,
) -> async_graphql::Result<CommandResult> {
    let command = QuoteRequest {
        quote_id,
        command_id: &command_id,
        expected_version,
        request,
    };
    quote_command_as(ctx, Role::Sales, action, command, make).await
}

/// [`quote_command`] for a caller with the `needed` role.
async fn quote_command_as(
    ctx: &Context<'_>,
    needed: Role,
    action: &'static str,
    command: QuoteRequest<'_>,
    make: impl FnOnce(&Platform, &Principal) -> ApiResult<QuoteCommand>,
) -> async_graphql::Result<CommandResult> {
    let (platform, principal) = caller(ctx, needed, action)?;
    run_quote_command(platform, principal, command, |_| async {
        make(platform, principal)
    })
    .await
}

/// A client's command for an existing quote, as the mutation received it.
struct QuoteRequest<'a> {
    quote_id: String,
    command_id: &'a str,
    expected_version: Option<i64>,
    request: serde_json::Value,
}

/// Runs a quote command whose builder reads the quote's stream or calls
/// another system (CRM, the document service): `quoteId` validated, then
/// [`Platform::execute`] with `build(stream id)` as the command's builder.
async fn run_quote_command<F, Fut>(
    platform: &Platform,
    principal: &Principal,
    command: QuoteRequest<'_>,
    build: F,
) -> async_graphql::Result<CommandResult>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ApiResult<QuoteCommand>>,
{
    input::id("quoteId", &command.quote_id)?;
    let expected_version = input::expected_version(command.expected_version)?;
    let target = CommandTarget::existing_quote(QuoteId::new(command.quote_id));
    let stream = target.stream_id.clone();
    let client = ClientCommand {
        command_id: command.command_id,
        target,
        expected_version,
        request: command.request,
    };
    Ok(platform
        .execute::<QuoteDecider, _, _>(principal, client, || build(stream))
        .await?
        .into())
}

/// Runs an order command for an operator: `orderId` validated, then
/// [`Platform::execute`] with `make` as the command's builder.
async fn order_command(
    ctx: &Context<'_>,
    order_id: String,
    command_id: String,
    expected_version: Option<i64>,
    request: serde_json::Value,
    make: impl FnOnce(Timestamp, &str) -> ApiResult<OrderCommand>,
) -> async_graphql::Result<CommandResult> {
    let (platform, principal) = caller(ctx, Role::Operator, "operate orders")?;
    input::id("orderId", &order_id)?;
    let expected_version = input::expected_version(expected_version)?;
    let target = CommandTarget::existing_order(OrderId::new(order_id));
    let command = ClientCommand {
        command_id: &command_id,
        target,
        expected_version,
        request,
    };
    Ok(platform
        .execute::<OrderDecider, _, _>(principal, command, || async {
            make(platform.timestamp(), &principal.name)
        })
        .await?
        .into())
}

/// The open quote on `stream`, as the command path folds it.
///
/// # Errors
/// The quote's own rule when it is not open (`quote_already_accepted`,
/// ...), as `RULE_VIOLATION`.
fn open_quote(platform: &Platform, stream: &str) -> ApiResult<domain::quote::Quote> {
    Ok(open_quote_at(platform, stream)?.0)
}

/// Refuses a line whose offering the price book in force does not price
/// (`offering_not_in_price_book`, the rule pricing would name later).
fn priced_offering(platform: &Platform, line: &QuoteLine) -> ApiResult<()> {
    platform
        .price_book
        .offering(line.offering_id.as_str())
        .map(|_| ())
        .map_err(|source| ApiError::from_command(application::CommandError::Rejected { source }))
}

/// [`open_quote`] and the stream's version it was folded at.
fn open_quote_at(platform: &Platform, stream: &str) -> ApiResult<(domain::quote::Quote, u64)> {
    let loaded = platform
        .commands
        .load::<QuoteDecider>(stream)
        .map_err(ApiError::from_command)?;
    let quote =
        loaded.state.open().cloned().map_err(|source| {
            ApiError::from_command(application::CommandError::Rejected { source })
        })?;
    Ok((quote, loaded.version))
}

/// The caller, when its role is one of `roles`.
fn caller_with_any<'a>(
    ctx: &'a Context<'_>,
    roles: &[Role],
    action: &'static str,
) -> ApiResult<(&'a Platform, &'a Principal)> {
    let mut refusal = None;
    for role in roles {
        match caller(ctx, *role, action) {
            Ok(found) => return Ok(found),
            Err(e) => refusal = Some(e),
        }
    }
    Err(refusal.unwrap_or(ApiError::Unauthenticated))
}

/// Asks CRM about the quote's customer before acceptance; a changed
/// customer is recorded as drift on the quote (its own command, keyed by
/// the client's command and the quote's version it was checked at, so a
/// retry on the same quote records it once, and the same command sent
/// again after a revalidation is checked again) for the acceptance to be
/// refused by the quote's rule. Skipped while CRM validation is disabled
/// for the tenant, and for a quote that is not open.
///
/// # Errors
/// CRM's refusal or unavailability ([`crate::runtime::crm_error`]).
async fn recheck_customer(
    platform: &Platform,
    principal: &Principal,
    stream: &str,
    command_id: &str,
) -> ApiResult<()> {
    if !platform
        .capabilities(&principal.tenant)
        .enabled(Capability::CrmValidateAccount)
    {
        return Ok(());
    }
    // A quote that is not open is refused by the acceptance's own rule.
    let Ok((quote, version)) = open_quote_at(platform, stream) else {
        return Ok(());
    };
    let checked = Checked {
        stream,
        command_id,
        version,
    };
    let at = platform.timestamp();
    let answer = platform
        .customers
        .lookup(&principal.tenant, &quote.customer.customer_id)
        .await;
    let account = match answer {
        Ok(account) => account,
        // A record nobody can read is integration fallout, not an outage:
        // the quote records it and refuses acceptance until revalidated.
        Err(error) if error.is_unreadable() => {
            tracing::warn!(
                tenant = %principal.tenant,
                error = %error,
                "CRM customer check failed; the quote is held in integration fallout"
            );
            let report = QuoteCommand::ReportCustomerCheckFailed {
                evidence: error.to_string(),
                at,
            };
            return report_to_quote(
                platform,
                principal,
                &checked,
                "report-check-failed",
                &report,
            )
            .await;
        }
        Err(other) => return Err(crate::runtime::crm_error(other)),
    };
    if let Some(status) = account
        .suspension
        .filter(|_| quote.customer_suspension.is_none())
    {
        let report = QuoteCommand::ReportCustomerSuspended { status, at };
        report_to_quote(platform, principal, &checked, "report-suspension", &report).await?;
    }
    if quote.customer.drifted_to(&account.snapshot) {
        let report = QuoteCommand::ReportCustomerDrift {
            observed: account.snapshot,
            at,
        };
        report_to_quote(platform, principal, &checked, "report-drift", &report).await?;
    }
    Ok(())
}

/// The quote an acceptance's customer check looked at: its stream, the
/// client's command and the quote's version then.
struct Checked<'a> {
    stream: &'a str,
    command_id: &'a str,
    version: u64,
}

/// Records what CRM reported on the quote, as its own command keyed by
/// the client's command and the version the quote was checked at (so a
/// retried acceptance reports once on the same quote, and again on a quote
/// revalidated since); a quote that refuses it is left to the acceptance's
/// own rules.
async fn report_to_quote(
    platform: &Platform,
    principal: &Principal,
    checked: &Checked<'_>,
    action: &str,
    report: &QuoteCommand,
) -> ApiResult<()> {
    let context = application::CommandContext::new(
        CommandKey::job(
            format!(
                "crm-recheck:{}:{}@{}",
                principal.tenant, checked.command_id, checked.version
            ),
            action,
        ),
        principal.tenant.as_str(),
        crate::platform::correlation_id(&principal.tenant, checked.command_id),
    );
    let reported = platform
        .commands
        .execute::<QuoteDecider>(checked.stream, report, &context)
        .await;
    match reported {
        Ok(outcome) => {
            // The caller's next read (often right after the refusal this
            // report explains) must show it.
            platform.await_read_models(&outcome).await;
            Ok(())
        }
        Err(application::CommandError::Rejected { .. }) => Ok(()),
        Err(e) => Err(ApiError::from_command(e)),
    }
}

#[Object]
impl Mutation {
    /// Opens a quote for a customer, validated against CRM now. The new
    /// quote's id is in the result. `catalogVersion`, when given, follows
    /// the rule of `activateCatalogVersion`: 1 to 128 bytes of printable
    /// text, no white space at either end.
    async fn create_quote(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        customer_id: String,
        catalog_version: Option<String>,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let (platform, principal) = caller(ctx, Role::Sales, "create quotes")?;
        input::id("commandId", &command_id)?;
        input::id("customerId", &customer_id)?;
        if let Some(version) = &catalog_version {
            catalog_version_input("catalogVersion", version)?;
        }
        let quote_id = new_quote_id(principal.tenant.as_str(), &command_id);
        let request = serde_json::json!({
            "mutation": "createQuote",
            "customerId": customer_id,
            "catalogVersion": catalog_version,
        });
        let command = ClientCommand {
            command_id: &command_id,
            target: CommandTarget::new_quote(quote_id.clone()),
            expected_version: Some(0),
            request,
        };
        Ok(Some(platform
            .execute::<QuoteDecider, _, _>(principal, command, || async {
                // The quote flow never guesses: without account validation
                // no quote is created (rule `capability_disabled`).
                let validate = Capability::CrmValidateAccount;
                if !platform.capabilities(&principal.tenant).enabled(validate) {
                    return Err(ApiError::RuleViolation {
                        rule: "capability_disabled",
                        message: format!(
                            "{validate} is disabled for this tenant: customer accounts cannot be validated"
                        ),
                    });
                }
                // CRM is asked only for a command not yet acknowledged.
                // A suspended account is quoted, with approval on every price.
                let account = crate::runtime::lookup_customer(
                    platform.customers.as_ref(),
                    &principal.tenant,
                    &CustomerId::new(customer_id),
                )
                .await?;
                // The catalog decides which versions may be quoted; no
                // version named means the catalog's current one.
                let catalog = platform.catalog(&principal.tenant)?;
                let catalog_version = match catalog_version {
                    Some(version) => version,
                    None => catalog.default_version().map(str::to_owned).ok_or_else(|| {
                        ApiError::RuleViolation {
                            rule: "catalog_version_not_active",
                            message: "no catalog version is active (every one is retired): an admin \
                                      activates one with activateCatalogVersion"
                                .to_owned(),
                        }
                    })?,
                };
                Ok(QuoteCommand::Create {
                    quote_id,
                    tenant_id: principal.tenant.clone(),
                    customer: account.snapshot,
                    customer_suspension: account.suspension,
                    catalog: catalog.standing(&catalog_version),
                    catalog_version,
                    at: platform.timestamp(),
                })
            })
            .await?
            .into()))
    }

    /// Adds a configured line (a change after pricing starts a new revision);
    /// its offering must be one the price book in force prices.
    async fn add_quote_line(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        line: LineInput,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Sales, "change quotes")?;
        let request =
            serde_json::json!({"mutation": "addQuoteLine", "quoteId": quote_id, "line": line});
        let line = self::line(line)?;
        quote_command(
            ctx,
            "change quotes",
            quote_id,
            command_id,
            expected_version,
            request,
            |platform, _| {
                priced_offering(platform, &line)?;
                Ok(QuoteCommand::AddLine {
                    line,
                    at: platform.timestamp(),
                })
            },
        )
        .await
        .map(Some)
    }

    /// Replaces a line's configuration; its offering must be one the price
    /// book in force prices.
    async fn change_quote_line(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        line: LineInput,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Sales, "change quotes")?;
        let request =
            serde_json::json!({"mutation": "changeQuoteLine", "quoteId": quote_id, "line": line});
        let line = self::line(line)?;
        quote_command(
            ctx,
            "change quotes",
            quote_id,
            command_id,
            expected_version,
            request,
            |platform, _| {
                priced_offering(platform, &line)?;
                Ok(QuoteCommand::ChangeLine {
                    line,
                    at: platform.timestamp(),
                })
            },
        )
        .await
        .map(Some)
    }

    /// Removes a line.
    async fn remove_quote_line(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        line_id: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Sales, "change quotes")?;
        input::id("lineId", &line_id)?;
        let request = serde_json::json!({"mutation": "removeQuoteLine", "quoteId": quote_id, "lineId": line_id});
        quote_command(
            ctx,
            "change quotes",
            quote_id,
            command_id,
            expected_version,
            request,
            |platform, _| {
                Ok(QuoteCommand::RemoveLine {
                    line_id: LineId::new(line_id),
                    at: platform.timestamp(),
                })
            },
        )
        .await
        .map(Some)
    }

    /// Prices the quote's current lines from the configured price book,
    /// with `discountPercent` (a plain decimal such as `5` or `12.5`, 0 to
    /// 100; none is 0) off every monthly charge. Each line's charges are
    /// what is paid for it, the discount taken, rounded to cents half to
    /// even; the totals are their sums (what the order captures and
    /// billing activates), and the discount's amount is what the monthly
    /// list prices lose.
    async fn price_quote(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        discount_percent: Option<String>,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        let (platform, principal) = caller(ctx, Role::Sales, "price quotes")?;
        let discount = match &discount_percent {
            Some(text) => input::percent("discountPercent", text)?,
            None => Decimal::ZERO,
        };
        let request = serde_json::json!({
            "mutation": "priceQuote",
            "quoteId": quote_id,
            "discountPercent": discount.to_string(),
        });
        input::id("quoteId", &quote_id)?;
        let command = ClientCommand {
            command_id: &command_id,
            target: CommandTarget::existing_quote(QuoteId::new(quote_id)),
            expected_version: input::expected_version(expected_version)?,
            request,
        };
        let at = platform.timestamp();
        // A retired catalog version gets no new price: the catalog is read
        // once the command is admitted (a retry answered by its first
        // outcome reads nothing), before the quote (a retirement that
        // commits in between is seen by the next price, as by any later
        // one). The quote's current lines are priced from the stream the
        // command path loads for the decision: one read.
        Ok(Some(
            platform
                .execute_on_state::<QuoteDecider, _, _, _>(
                    principal,
                    command,
                    || platform.catalog(&principal.tenant),
                    |state, catalog| {
                        price_command(
                            state,
                            catalog,
                            &platform.price_book,
                            &platform.approval,
                            Percent(discount),
                            at,
                        )
                    },
                )
                .await?
                .into(),
        ))
    }

    /// Grants a pending approval: the tenant's `admin`'s to give (ADR 0059),
    /// never the seller's who priced the quote.
    async fn approve_quote(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let request = serde_json::json!({"mutation": "approveQuote", "quoteId": quote_id});
        let command = QuoteRequest {
            quote_id,
            command_id: &command_id,
            expected_version,
            request,
        };
        quote_command_as(
            ctx,
            Role::Admin,
            "approve quotes",
            command,
            |platform, principal| {
                Ok(QuoteCommand::Approve {
                    approver: principal.name.clone(),
                    at: platform.timestamp(),
                })
            },
        )
        .await
        .map(Some)
    }

    /// Refuses a pending approval (`reason`: not blank, at most 2,000
    /// bytes): the tenant's `admin`'s, as granting it is (ADR 0059).
    async fn reject_quote_approval(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        reason: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Admin, "reject approvals")?;
        input::reason("reason", &reason)?;
        let request = serde_json::json!({"mutation": "rejectQuoteApproval", "quoteId": quote_id, "reason": reason});
        let command = QuoteRequest {
            quote_id,
            command_id: &command_id,
            expected_version,
            request,
        };
        quote_command_as(
            ctx,
            Role::Admin,
            "reject approvals",
            command,
            |platform, principal| {
                Ok(QuoteCommand::RejectApproval {
                    approver: principal.name.clone(),
                    reason,
                    at: platform.timestamp(),
                })
            },
        )
        .await
        .map(Some)
    }

    /// Records the proposal document generated for a revision
    /// (`artifactHash`, `templateVersion`: not blank, at most 256 bytes).
    /// Refused as `generateProposal` is (`price_missing`,
    /// `price_book_superseded`, approval not settled).
    #[allow(clippy::too_many_arguments)]
    async fn record_proposal(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        revision: i64,
        artifact_id: String,
        artifact_hash: String,
        template_version: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Sales, "change quotes")?;
        let revision: u32 = input::whole("revision", revision, 1, i32::MAX.into())?;
        input::id("artifactId", &artifact_id)?;
        input::required_label("artifactHash", &artifact_hash, input::MAX_LABEL_BYTES)?;
        input::required_label("templateVersion", &template_version, input::MAX_LABEL_BYTES)?;
        let request = serde_json::json!({"mutation": "recordProposal", "quoteId": quote_id, "revision": revision, "artifactId": artifact_id, "artifactHash": artifact_hash, "templateVersion": template_version});
        quote_command(
            ctx,
            "change quotes",
            quote_id,
            command_id,
            expected_version,
            request,
            |platform, _| {
                Ok(QuoteCommand::RecordProposal {
                    revision,
                    artifact: ProposalArtifact {
                        artifact_id: ArtifactId::new(artifact_id),
                        artifact_hash,
                        template_version,
                    },
                    price_book: platform.price_book.version.clone(),
                    at: platform.timestamp(),
                })
            },
        )
        .await
        .map(Some)
    }

    /// Generates the proposal of the quote's current revision with the
    /// document service and records it: rendered from the revision's
    /// immutable snapshot (customer, lines, price evidence, template
    /// version, locale), so the same revision and template always give the
    /// same artifact hash, which the signature must then match.
    /// `templateVersion` and `locale` (default `en`): not blank, at most
    /// 256 bytes.
    /// Refused while the revision is unpriced (`price_missing`), priced
    /// under a price book no longer in force (`price_book_superseded`:
    /// reprice first) or its approval is not settled; `UNAVAILABLE` when
    /// the service does not answer (nothing recorded; retry the same
    /// `commandId`).
    async fn generate_proposal(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        template_version: String,
        locale: Option<String>,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let locale = locale.unwrap_or_else(|| "en".to_owned());
        let (platform, principal) = caller(ctx, Role::Sales, "change quotes")?;
        input::required_label("templateVersion", &template_version, input::MAX_LABEL_BYTES)?;
        input::required_label("locale", &locale, input::MAX_LABEL_BYTES)?;
        let request = serde_json::json!({"mutation": "generateProposal", "quoteId": quote_id, "templateVersion": template_version, "locale": locale});
        let command = QuoteRequest {
            quote_id,
            command_id: &command_id,
            expected_version,
            request,
        };
        run_quote_command(platform, principal, command, |stream| async move {
            let generate = Capability::DocumentGenerateQuotePdf;
            if !platform.capabilities(&principal.tenant).enabled(generate) {
                return Err(ApiError::RuleViolation {
                    rule: "capability_disabled",
                    message: format!(
                        "{generate} is disabled for this tenant: record the proposal with recordProposal"
                    ),
                });
            }
            let quote = open_quote(platform, &stream)?;
            let document =
                domain::quote::document::proposal_request(&quote, &template_version, &locale)
                    .map_err(|source| {
                        ApiError::from_command(application::CommandError::Rejected { source })
                    })?;
            let generated = platform
                .documents
                .generate(&principal.tenant, &document)
                .await
                .map_err(crate::runtime::document_error)?;
            Ok(QuoteCommand::RecordProposal {
                revision: document.revision,
                artifact: ProposalArtifact {
                    artifact_id: ArtifactId::new(generated.artifact_id),
                    artifact_hash: generated.artifact_hash,
                    template_version,
                },
                price_book: platform.price_book.version.clone(),
                at: platform.timestamp(),
            })
        })
        .await
        .map(Some)
    }

    /// Records the e-signature provider's evidence for a revision
    /// (`signer`, `providerReference`, `artifactHash`: not blank, at most
    /// 256 bytes). The current revision needs its proposal
    /// (`proposal_missing`) and is signed over that document only (an
    /// `artifactHash` other than the proposal's is
    /// `signature_for_another_artifact`); a revision the quote never had is
    /// `signature_for_another_revision`; an earlier revision's signature is
    /// kept as evidence and marks nothing signed (a later revision's
    /// signature stays the quote's `signature`).
    #[allow(clippy::too_many_arguments)]
    async fn record_signature(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        revision: i64,
        signer: String,
        provider_reference: String,
        artifact_hash: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Sales, "change quotes")?;
        let revision: u32 = input::whole("revision", revision, 1, i32::MAX.into())?;
        input::required_label("signer", &signer, input::MAX_LABEL_BYTES)?;
        input::required_label(
            "providerReference",
            &provider_reference,
            input::MAX_LABEL_BYTES,
        )?;
        input::required_label("artifactHash", &artifact_hash, input::MAX_LABEL_BYTES)?;
        let request = serde_json::json!({"mutation": "recordSignature", "quoteId": quote_id, "revision": revision, "signer": signer, "providerReference": provider_reference, "artifactHash": artifact_hash});
        quote_command(
            ctx,
            "change quotes",
            quote_id,
            command_id,
            expected_version,
            request,
            |platform, _| {
                let at = platform.timestamp();
                Ok(QuoteCommand::RecordSignature {
                    revision,
                    signature: SignatureEvidence {
                        signer,
                        signed_at: at,
                        provider_reference,
                        artifact_hash,
                    },
                    at,
                })
            },
        )
        .await
        .map(Some)
    }

    /// Accepts the quote; the fulfillment process captures the order. The
    /// price must be fresh: inside its validity window and computed under
    /// the price book in force (rule `price_book_superseded` otherwise).
    /// CRM is asked again first (CRM failure policy, seed 001 §11.2): a
    /// customer whose name, segment or record changed is recorded as drift
    /// on the quote and the acceptance is refused
    /// (`customer_drift_unresolved`) until someone revalidates
    /// (`revalidateQuoteCustomer`); a CRM that does not answer holds the
    /// quote (`UNAVAILABLE`, nothing recorded, retry with the same
    /// `commandId`); a CRM answer nobody can read (a schema mismatch) puts
    /// the quote in integration fallout (`customerCheckFailure`) and the
    /// acceptance is refused (`customer_check_failed`) until someone
    /// revalidates; a customer CRM no longer knows or no longer allows is
    /// refused (`NOT_FOUND`, `customer_not_eligible`).
    async fn accept_quote(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        billing_account: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let (platform, principal) = caller(ctx, Role::Sales, "change quotes")?;
        input::id("billingAccount", &billing_account)?;
        let request = serde_json::json!({"mutation": "acceptQuote", "quoteId": quote_id, "billingAccount": billing_account});
        let command = QuoteRequest {
            quote_id,
            command_id: &command_id,
            expected_version,
            request,
        };
        let recheck_key = command_id.as_str();
        run_quote_command(platform, principal, command, |stream| async move {
            recheck_customer(platform, principal, &stream, recheck_key).await?;
            Ok(QuoteCommand::Accept {
                billing_account: BillingAccountId::new(billing_account),
                price_book: platform.price_book.version.clone(),
                capabilities: platform.capabilities(&principal.tenant),
                at: platform.timestamp(),
            })
        })
        .await
        .map(Some)
    }

    /// Adopts CRM's current description of the quote's customer after
    /// drift or a failed customer check: CRM is asked now, and the fresh
    /// snapshot replaces the quote's (a priced quote whose customer changed
    /// starts a new revision, to be priced again; one CRM describes as
    /// before keeps its revision). For the seller or an operator.
    async fn revalidate_quote_customer(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let (platform, principal) =
            caller_with_any(ctx, &[Role::Sales, Role::Operator], "revalidate quotes")?;
        let request =
            serde_json::json!({"mutation": "revalidateQuoteCustomer", "quoteId": quote_id});
        let command = QuoteRequest {
            quote_id,
            command_id: &command_id,
            expected_version,
            request,
        };
        run_quote_command(platform, principal, command, |stream| async move {
            let quote = open_quote(platform, &stream)?;
            // A suspension is recorded by the acceptance's CRM check,
            // which always runs before an acceptance.
            let customer = crate::runtime::lookup_customer(
                platform.customers.as_ref(),
                &principal.tenant,
                &quote.customer.customer_id,
            )
            .await?
            .snapshot;
            Ok(QuoteCommand::Revalidate {
                customer,
                at: platform.timestamp(),
            })
        })
        .await
        .map(Some)
    }

    /// Withdraws the quote (`reason`: not blank, at most 2,000 bytes).
    async fn withdraw_quote(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        quote_id: String,
        expected_version: Option<i64>,
        reason: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Sales, "change quotes")?;
        input::reason("reason", &reason)?;
        let request =
            serde_json::json!({"mutation": "withdrawQuote", "quoteId": quote_id, "reason": reason});
        quote_command(
            ctx,
            "change quotes",
            quote_id,
            command_id,
            expected_version,
            request,
            |platform, _| {
                Ok(QuoteCommand::Withdraw {
                    reason,
                    at: platform.timestamp(),
                })
            },
        )
        .await
        .map(Some)
    }

    /// Cancels an order; compensation is requested for what was done
    /// (`reason`: not blank, at most 2,000 bytes). Every line is cancelled,
    /// active ones too; a step that has no compensation (billing) is
    /// listed in the order's `uncompensated`, to be stopped by hand.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        order_id: String,
        expected_version: Option<i64>,
        reason: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Operator, "operate orders")?;
        input::reason("reason", &reason)?;
        let request =
            serde_json::json!({"mutation": "cancelOrder", "orderId": order_id, "reason": reason});
        order_command(
            ctx,
            order_id,
            command_id,
            expected_version,
            request,
            |at, _| Ok(OrderCommand::Cancel { reason, at }),
        )
        .await
        .map(Some)
    }

    /// Resolves a line's fallout: a new attempt (no `reference`, no
    /// `note`), an external resolution with evidence (`reference`, at most
    /// 256 bytes, and `note`), or cancelling the line (`note`, required,
    /// is the reason, at most 2,000 bytes; no `reference`). A `reference` or `note`
    /// given must not be blank; one the action does not record is refused
    /// as `VALIDATION` naming it.
    #[allow(clippy::too_many_arguments)]
    async fn resolve_fallout(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        order_id: String,
        expected_version: Option<i64>,
        line_id: String,
        action: FalloutAction,
        reference: Option<String>,
        note: Option<String>,
    ) -> async_graphql::Result<Option<CommandResult>> {
        // The role first: a caller who may not do this learns nothing of the input rules.
        caller(ctx, Role::Operator, "operate orders")?;
        input::id("lineId", &line_id)?;
        if let Some(reference) = &reference {
            input::required_label("reference", reference, input::MAX_LABEL_BYTES)?;
        }
        if let Some(note) = &note {
            input::reason("note", note)?;
        }
        let request = serde_json::json!({"mutation": "resolveFallout", "orderId": order_id, "lineId": line_id, "action": action, "reference": reference, "note": note});
        // What an action does not record is refused, never dropped.
        let unused = |field: &str, what: &str| {
            ApiError::validation(field, format!("{what} records no {field}"))
        };
        let resolution = match action {
            FalloutAction::NewAttempt if reference.is_some() => {
                return Err(unused("reference", "a NEW_ATTEMPT").into())
            }
            FalloutAction::NewAttempt if note.is_some() => {
                return Err(unused("note", "a NEW_ATTEMPT").into())
            }
            FalloutAction::CancelLine if reference.is_some() => {
                return Err(unused("reference", "a CANCEL_LINE (its note is the reason)").into())
            }
            FalloutAction::NewAttempt => Resolution::NewAttempt,
            FalloutAction::ExternalResolution => Resolution::ResolvedExternally {
                reference: reference.filter(|r| !r.is_empty()).ok_or_else(|| {
                    ApiError::validation("reference", "required for an external resolution")
                })?,
                note: note.filter(|n| !n.is_empty()).ok_or_else(|| {
                    ApiError::validation("note", "required for an external resolution")
                })?,
            },
            FalloutAction::CancelLine => Resolution::CancelLine {
                reason: note.filter(|n| !n.is_empty()).ok_or_else(|| {
                    ApiError::validation("note", "required for CANCEL_LINE: it is the reason")
                })?,
            },
        };
        order_command(
            ctx,
            order_id,
            command_id,
            expected_version,
            request,
            |at, operator| {
                Ok(OrderCommand::ResolveFallout {
                    line_id: LineId::new(line_id),
                    resolution,
                    operator: operator.to_owned(),
                    at,
                })
            },
        )
        .await
        .map(Some)
    }

    /// Closes a fallout case that no order line holds: a failed
    /// compensation (a release or cancel the target refused), or an
    /// outcome that contradicts one already recorded. The operator records
    /// how it was resolved outside the platform (`reference`: the ticket
    /// or the target's id, at most 256 bytes; `note`: at most 2,000
    /// bytes); the handoff is closed and the case leaves the queue. A case
    /// the line holds (`lineInFallout`) is refused with the rule
    /// `line_holds_fallout`: resolve it with `resolveFallout`, which also
    /// moves the line on.
    async fn resolve_handoff_fallout(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        handoff_id: String,
        expected_version: Option<i64>,
        reference: String,
        note: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let (platform, principal) = caller(ctx, Role::Operator, "operate orders")?;
        input::id("handoffId", &handoff_id)?;
        input::required_label("reference", &reference, input::MAX_LABEL_BYTES)?;
        input::reason("note", &note)?;
        let request = serde_json::json!({"mutation": "resolveHandoffFallout", "handoffId": handoff_id, "reference": reference, "note": note});
        let id = HandoffId::new(handoff_id);
        let command = ClientCommand {
            command_id: &command_id,
            target: CommandTarget::existing_handoff(id.clone()),
            expected_version: input::expected_version(expected_version)?,
            request,
        };
        Ok(Some(platform
            .execute::<HandoffDecider, _, _>(principal, command, || async {
                let case = platform
                    .read
                    .fallout_case(&principal.tenant, &id, platform.now_ms())
                    .map_err(ApiError::from)?;
                if let Some(case) = case.filter(|c| c.case.line_fallout) {
                    return Err(ApiError::RuleViolation {
                        rule: "line_holds_fallout",
                        message: format!(
                            "line `{}` of order `{}` holds this case: resolve it with resolveFallout",
                            case.case.line_id, case.case.order_id
                        ),
                    });
                }
                Ok(HandoffCommand::ResolveItsOwnCase {
                    operator: principal.name.clone(),
                    note: domain::handoff::resolved_externally(&reference, &note),
                    at: platform.timestamp(),
                })
            })
            .await?
            .into()))
    }

    /// Runs reconciliation now over the caller's tenant's open handoffs
    /// and returns what it checked and changed (no other tenant's
    /// handoffs are checked, counted or named).
    async fn trigger_reconciliation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<ReconciliationReport>> {
        let (platform, principal) = caller(ctx, Role::Operator, "trigger reconciliation")?;
        Ok(Some(
            platform
                .trigger_reconciliation(&principal.tenant)
                .await?
                .into(),
        ))
    }

    /// Platform (or the admin of the server's only tenant): verifies every
    /// record's hash, the chain, positions, index and heads of the live
    /// log, every tenant's events.
    async fn verify_log(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<LogVerification>> {
        let (platform, _) = every_tenant_caller(ctx, "verify the log of every tenant")?;
        let log = platform.log.clone();
        let report = tokio::task::spawn_blocking(move || log.verify(&mut |_| {}))
            .await
            .map_err(ApiError::internal)?;
        Ok(Some(match report {
            Ok(report) => LogVerification {
                ok: true,
                events: Some(report.events),
                streams: Some(report.streams),
                head_position: report.head_position(),
                head_hash: Some(hex::encode(report.head_hash)),
                problem: None,
            },
            Err(error) => LogVerification {
                ok: false,
                events: None,
                streams: None,
                head_position: None,
                head_hash: None,
                problem: Some(error.to_string()),
            },
        }))
    }

    /// Platform (or the admin of the server's only tenant): rebuilds one
    /// projection (or `all`), every tenant's rows, from position 0 into
    /// fresh trees and swaps them in; the old ones serve until then.
    async fn rebuild_projection(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Option<Vec<RebuildReport>>> {
        let (platform, _) = every_tenant_caller(ctx, "rebuild every tenant's projections")?;
        input::required_label("name", &name, input::MAX_OPTION_NAME_BYTES)?;
        let projections = platform.projections.clone();
        let reports = tokio::task::spawn_blocking(move || {
            if name == "all" {
                projections.rebuild_all(&mut |_, _| {})
            } else {
                projections.rebuild(&name, &mut |_, _| {}).map(|r| vec![r])
            }
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)?;
        Ok(Some(reports.into_iter().map(Into::into).collect()))
    }

    /// Admin, embedded default only: scripts the next answers of one
    /// simulated system (`inventory`, `provisioning`, `billing`, `crm`,
    /// `notification`, `document`), e.g. `faults: ["BusinessReject"]`, for
    /// demos and tests. The document service has one queue for proposal
    /// renders and order confirmations: the next of either takes the fault.
    /// A script applies to the next calls made for the caller's tenant
    /// only; a server with real systems (`simulators = false`) refuses
    /// this.
    async fn script_simulator(
        &self,
        ctx: &Context<'_>,
        system: String,
        faults: Vec<String>,
    ) -> async_graphql::Result<Option<bool>> {
        let (platform, principal) = caller(ctx, Role::Admin, "script simulators")?;
        input::label("system", &system, input::MAX_OPTION_NAME_BYTES)?;
        if faults.len() > MAX_SCRIPTED_FAULTS {
            return Err(ApiError::validation(
                "faults",
                format!("at most {MAX_SCRIPTED_FAULTS} faults per call"),
            )
            .into());
        }
        platform
            .fulfillment
            .script_simulator(&principal.tenant, &system, &faults)
            .await?;
        Ok(Some(true))
    }

    /// Admin: makes a catalog version available to quote against (seed
    /// 000 §10: the catalog is a control plane, changed by events). The
    /// first activation makes the tenant's catalog managed: from then on
    /// only active versions may be quoted. Activating an active version
    /// changes nothing; a retired one is refused (`catalog_version_retired`:
    /// retirement is final). `version`: at most 128 bytes of printable text.
    async fn activate_catalog_version(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        version: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let (platform, principal) = caller(ctx, Role::Admin, "change the catalog")?;
        catalog_version_input("version", &version)?;
        let request = serde_json::json!({"mutation": "activateCatalogVersion", "version": version});
        let activate = CatalogCommand::Activate {
            tenant_id: principal.tenant.clone(),
            version,
            at: platform.timestamp(),
        };
        catalog_command(platform, principal, &command_id, request, activate)
            .await
            .map(Some)
    }

    /// Admin: retires a catalog version for good. Open quotes configured
    /// against it can no longer be priced (`catalog_version_retired`) and
    /// no new quote may use it; a price already given stays acceptable
    /// while it is valid, and accepted quotes and their orders keep the
    /// version. Retiring a retired version changes nothing; a version never
    /// activated is refused (`catalog_version_not_activated`). `reason`: not
    /// blank, at most 2,000 bytes.
    async fn retire_catalog_version(
        &self,
        ctx: &Context<'_>,
        command_id: String,
        version: String,
        reason: String,
    ) -> async_graphql::Result<Option<CommandResult>> {
        let (platform, principal) = caller(ctx, Role::Admin, "change the catalog")?;
        catalog_version_input("version", &version)?;
        input::reason("reason", &reason)?;
        let request = serde_json::json!({"mutation": "retireCatalogVersion", "version": version, "reason": reason});
        let retire = CatalogCommand::Retire {
            version,
            reason,
            at: platform.timestamp(),
        };
        catalog_command(platform, principal, &command_id, request, retire)
            .await
            .map(Some)
    }

    /// Platform (or the admin of the server's only tenant): moves a
    /// consumer's checkpoint, over every tenant's events, for incident
    /// recovery. A consumer with external side effects needs
    /// `recovery: true`: replayed events are re-observed and no external
    /// call is sent again.
    async fn reset_consumer(
        &self,
        ctx: &Context<'_>,
        name: String,
        to_position: i64,
        recovery: Option<bool>,
    ) -> async_graphql::Result<Option<ConsumerReset>> {
        let (platform, _) = every_tenant_caller(ctx, "reset a consumer of every tenant's events")?;
        input::required_label("name", &name, input::MAX_OPTION_NAME_BYTES)?;
        let to_position = input::whole("toPosition", to_position, 0, i64::MAX)?;
        Ok(Some(
            platform
                .reset_consumer(&name, to_position, recovery.unwrap_or(false))
                .await?
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::catalog_version_input;
    use crate::graphql::error::ApiError;

    fn line_with_options(names: &[&str]) -> super::LineInput {
        super::LineInput {
            line_id: "l1".into(),
            offering_id: "fiber".into(),
            offering_version: 1,
            quantity: 1,
            term_months: 12,
            options: names
                .iter()
                .map(|name| super::OptionInput {
                    name: (*name).into(),
                    value: "v".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn an_option_is_named_and_given_once_per_line() {
        assert!(super::line(line_with_options(&["speed", "ip"])).is_ok());
        // Names that show nothing, or that look like another name.
        for names in [
            &["speed", "speed"][..],
            &[""][..],
            &["  "][..],
            &["\u{200D}"][..],
            &["\u{3164}"][..],
            &["\u{00AD}"][..],
            &["\u{2800}"][..],
            &["\u{0301}"][..],
            &["speed", "speed "][..],
            &["speed", " speed"][..],
        ] {
            match super::line(line_with_options(names)) {
                Err(ApiError::Validation { field, .. }) => assert_eq!(field, "line.options.name"),
                other => panic!("{names:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_catalog_version_is_checked_alike_wherever_it_is_named() {
        assert!(catalog_version_input("catalogVersion", "2026.1").is_ok());
        let too_long = "v".repeat(domain::catalog::MAX_VERSION_BYTES + 1);
        for bad in [
            "",
            " 2026.1",
            "2026.1 ",
            too_long.as_str(),
            "a\u{0}b",
            "\u{200D}",
            "\u{3164}",
            "2026.1\u{00AD}",
        ] {
            match catalog_version_input("catalogVersion", bad) {
                Err(ApiError::Validation { field, .. }) => {
                    assert_eq!(field, "catalogVersion", "{bad:?}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
