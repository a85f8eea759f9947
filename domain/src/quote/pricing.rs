//! Pricing, a rule of the quote: the price book in force prices a quote's
//! current lines, and the approval policy in force says which discounts
//! need a human.
//!
//! The price is a snapshot: per-line one-time and monthly components
//! after the discount, totals that are their sums, a validity window from `at`, the book's
//! version, and a deterministic hash of everything the price was computed
//! from. [`price_command`] builds the `Price` command from the quote as
//! loaded by the command path, so pricing reads the quote once, with the
//! decision, and refuses a quote that cannot be priced by the quote's own
//! rules.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::command::QuoteCommand;
use super::decide::{catalog_admits, open};
use super::error::QuoteError;
use super::model::{
    ApprovalPolicy, ChargeKind, Discount, LinePrice, PriceComponent, PriceResult, PriceTotals,
};
use super::state::{Quote, QuoteState};
use crate::catalog::CatalogState;
use crate::ids::Timestamp;
use crate::money::{Currency, Money, Percent};

/// What one unit of an offering costs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OfferingPrice {
    /// Charged once per unit (installation).
    pub one_time: Decimal,
    /// Charged monthly per unit.
    pub monthly: Decimal,
}

/// A price book: the unit prices of offerings in one currency, under a
/// version that every price it computes carries.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PriceBook {
    /// The book's version: stamped on every price as its `price_book` (and
    /// `policy_version`), and the only book under which a price is fresh.
    pub version: String,
    /// The currency of every amount.
    pub currency: Currency,
    /// How long a price stays valid, in milliseconds.
    pub validity_ms: u64,
    /// Unit prices by offering id.
    pub offerings: BTreeMap<String, OfferingPrice>,
}

impl PriceBook {
    /// The unit prices of `offering_id`: a line may be configured only with
    /// an offering this book prices, so every line can be priced.
    ///
    /// # Errors
    /// [`QuoteError::OfferingNotPriced`] for an offering the book does not
    /// price.
    pub fn offering(&self, offering_id: &str) -> Result<&OfferingPrice, QuoteError> {
        self.offerings
            .get(offering_id)
            .ok_or_else(|| QuoteError::OfferingNotPriced(offering_id.to_owned()))
    }

    /// Prices `quote`'s current lines with `discount` off every monthly
    /// charge, valid from `at` for the book's validity. Each line's
    /// charges are what is paid for it, the discount taken (the order
    /// captures them and billing activates them), each rounded to cents
    /// half to even; the totals are their sums, and the discount's amount
    /// is what the lines' monthly list prices (rounded alike) lose.
    ///
    /// # Errors
    /// [`QuoteError::NoLines`] for a quote without lines,
    /// [`QuoteError::OfferingNotPriced`] for a line whose offering the
    /// book does not price, [`QuoteError::InvalidDiscount`] outside
    /// 0–100 %.
    pub fn price(
        &self,
        quote: &Quote,
        discount: Percent,
        at: Timestamp,
    ) -> Result<PriceResult, QuoteError> {
        let lines = &quote.lines;
        if lines.is_empty() {
            return Err(QuoteError::NoLines);
        }
        let discount = discount.0;
        if discount.is_sign_negative() || discount > Decimal::ONE_HUNDRED {
            return Err(QuoteError::InvalidDiscount);
        }
        let cents = |amount: Decimal| amount.round_dp(2);
        let money = |amount: Decimal| Money::new(amount, self.currency.clone());
        let factor = Decimal::ONE - discount / Decimal::ONE_HUNDRED;
        let mut hasher = Sha256::new();
        hasher.update(self.version.as_bytes());
        hasher.update(quote.revision.to_be_bytes());
        hasher.update(discount.to_string().as_bytes());
        let mut priced = Vec::with_capacity(lines.len());
        // Sums of the lines' rounded charges: the totals are exactly what
        // the lines add up to, and the discount is what the monthly list
        // prices lose.
        let (mut one_time, mut list_monthly, mut monthly) =
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for line in lines {
            let unit = self.offering(line.offering_id.as_str())?;
            let quantity = Decimal::from(line.quantity);
            let line_one_time = cents(unit.one_time * quantity);
            let line_list_monthly = cents(unit.monthly * quantity);
            let line_monthly = cents(unit.monthly * quantity * factor);
            one_time += line_one_time;
            list_monthly += line_list_monthly;
            monthly += line_monthly;
            for part in [
                line.line_id.as_str(),
                line.offering_id.as_str(),
                &line.offering_version.to_string(),
                &line.quantity.to_string(),
                &line.term_months.to_string(),
            ] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
            priced.push(LinePrice {
                line_id: line.line_id.clone(),
                components: vec![
                    PriceComponent {
                        charge_code: format!("INSTALL-{}", line.offering_id),
                        kind: ChargeKind::OneTime,
                        amount: money(line_one_time),
                    },
                    PriceComponent {
                        charge_code: format!("MRC-{}", line.offering_id),
                        kind: ChargeKind::RecurringMonthly,
                        amount: money(line_monthly),
                    },
                ],
            });
        }
        Ok(PriceResult {
            revision: quote.revision,
            lines: priced,
            totals: PriceTotals {
                one_time: money(one_time),
                recurring_monthly: money(monthly),
            },
            discount: Discount {
                percent: Percent(discount),
                amount: money(list_monthly - monthly),
            },
            valid_from: at,
            valid_until: at.plus_millis(self.validity_ms),
            input_hash: format!("{:x}", hasher.finalize()),
            policy_version: self.version.clone(),
            price_book: self.version.clone(),
        })
    }
}

/// The `Price` command for the quote in `state`: its current lines priced
/// by `book` with `discount`, under the approval `policy` in force, if the
/// tenant's `catalog` still lets the quote's catalog version be priced (a
/// new price is a new offer: a retired version gets none).
///
/// # Errors
/// The quote's own refusal when it cannot be priced (not created,
/// accepted, expired, withdrawn), `catalog_version_retired` /
/// `catalog_version_not_active`, or [`PriceBook::price`]'s.
pub fn price_command(
    state: &QuoteState,
    catalog: &CatalogState,
    book: &PriceBook,
    policy: &ApprovalPolicy,
    discount: Percent,
    at: Timestamp,
) -> Result<QuoteCommand, QuoteError> {
    let quote = open(state)?;
    catalog_admits(
        catalog.standing(&quote.catalog_version),
        &quote.catalog_version,
    )?;
    Ok(QuoteCommand::Price {
        price: book.price(quote, discount, at)?,
        policy: policy.clone(),
        at,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::fixtures::line;

    fn book(offerings: &[(&str, u32, u32)]) -> PriceBook {
        PriceBook {
            version: "pb-1".to_owned(),
            currency: Currency::new("EUR").unwrap(),
            validity_ms: 3_600_000,
            offerings: offerings
                .iter()
                .map(|(id, once, monthly)| {
                    (
                        (*id).to_owned(),
                        OfferingPrice {
                            one_time: Decimal::from(*once),
                            monthly: Decimal::from(*monthly),
                        },
                    )
                })
                .collect(),
        }
    }

    fn quote(lines: usize) -> Quote {
        use crate::decider::Decider;
        let state = super::super::QuoteDecider::evolve(
            QuoteState::Empty,
            &crate::testing::fixtures::quote_created(),
        );
        let QuoteState::Open(mut quote) = state else {
            panic!("a created quote is open: {state:?}");
        };
        quote.lines = (0..lines).map(|i| line(&format!("l{i}"))).collect();
        quote
    }

    /// The charges of each line are what the customer pays for it, the
    /// discount taken: the order captures them and billing activates them,
    /// so they add up to the totals. Each line's monthly charge used to be
    /// its list price (a 50 % discount quoted 249.00 a month and billed
    /// 498.00), and the totals, rounded on their own, could differ from
    /// the lines' sum by a cent.
    #[test]
    fn the_lines_charges_are_net_of_the_discount_and_add_up_to_the_totals() {
        let mut book = book(&[]);
        for (id, once, monthly) in [("odd", "0.0050", "10.01"), ("even", "99.00", "49.90")] {
            book.offerings.insert(
                id.to_owned(),
                OfferingPrice {
                    one_time: once.parse().unwrap(),
                    monthly: monthly.parse().unwrap(),
                },
            );
        }
        for (offerings, percent) in [
            (&["odd", "odd"][..], "50"),
            (&["even", "odd", "even"][..], "5"),
            (&["even"][..], "0"),
            (&["odd", "even"][..], "100"),
            (&["even", "even", "even"][..], "33.3333"),
        ] {
            let mut quote = quote(offerings.len());
            for (line, offering) in quote.lines.iter_mut().zip(offerings) {
                line.offering_id = crate::ids::OfferingId::new(*offering);
            }
            let price = book
                .price(&quote, Percent(percent.parse().unwrap()), Timestamp(1_000))
                .unwrap();
            let sum = |kind: ChargeKind| -> Decimal {
                price
                    .lines
                    .iter()
                    .flat_map(|l| &l.components)
                    .filter(|c| c.kind == kind)
                    .map(|c| c.amount.amount)
                    .sum()
            };
            let gross: Decimal = quote
                .lines
                .iter()
                .map(|l| {
                    (book.offerings[l.offering_id.as_str()].monthly * Decimal::from(l.quantity))
                        .round_dp(2)
                })
                .sum();
            let case = format!("{offerings:?} at {percent} %");
            assert_eq!(
                sum(ChargeKind::RecurringMonthly),
                price.totals.recurring_monthly.amount,
                "{case}"
            );
            assert_eq!(
                sum(ChargeKind::OneTime),
                price.totals.one_time.amount,
                "{case}"
            );
            assert_eq!(
                price.totals.recurring_monthly.amount + price.discount.amount.amount,
                gross,
                "{case}: net and discount make the list price"
            );
        }
    }

    #[test]
    fn a_price_is_deterministic_and_covers_every_line() {
        let book = book(&[("fiber-1g", 99, 50)]);
        let quote = quote(2);
        let a = book.price(&quote, Percent(Decimal::from(5)), Timestamp(1_000));
        let b = book.price(&quote, Percent(Decimal::from(5)), Timestamp(1_000));
        assert_eq!(a, b);
        let price = a.unwrap();
        assert_eq!(price.lines.len(), 2);
        assert_eq!(price.totals.one_time.amount, Decimal::from(198));
        assert_eq!(price.valid_until, Timestamp(3_601_000));
        assert_eq!(price.price_book, "pb-1");
    }

    #[test]
    fn unknown_offerings_bad_discounts_and_empty_quotes_are_refused() {
        let at = Timestamp(0);
        assert_eq!(
            book(&[]).price(&quote(1), Percent(Decimal::ZERO), at),
            Err(QuoteError::OfferingNotPriced("fiber-1g".to_owned()))
        );
        let book = book(&[("fiber-1g", 99, 50)]);
        assert_eq!(
            book.price(&quote(1), Percent(Decimal::from(101)), at),
            Err(QuoteError::InvalidDiscount)
        );
        assert_eq!(
            book.price(&quote(0), Percent(Decimal::ZERO), at),
            Err(QuoteError::NoLines)
        );
    }

    #[test]
    fn only_an_open_quote_is_priced() {
        let book = book(&[("fiber-1g", 99, 50)]);
        let policy = crate::testing::fixtures::approval_policy();
        let refused = price_command(
            &QuoteState::Empty,
            &CatalogState::default(),
            &book,
            &policy,
            Percent(Decimal::ZERO),
            Timestamp(0),
        );
        assert_eq!(refused, Err(QuoteError::NotCreated));
        let priced = price_command(
            &QuoteState::Open(quote(1)),
            &CatalogState::default(),
            &book,
            &policy,
            Percent(Decimal::ZERO),
            Timestamp(0),
        );
        assert!(matches!(priced, Ok(QuoteCommand::Price { .. })));
    }

    #[test]
    fn a_retired_or_unknown_catalog_version_gets_no_new_price() {
        use crate::catalog::{CatalogCommand, CatalogDecider};
        use crate::decider::run;
        let book = book(&[("fiber-1g", 99, 50)]);
        let policy = crate::testing::fixtures::approval_policy();
        let quote = quote(1);
        let version = quote.catalog_version.clone();
        let catalog = |commands: &[CatalogCommand]| {
            commands.iter().fold(CatalogState::default(), |state, c| {
                run::<CatalogDecider>(state, c).unwrap().state
            })
        };
        let activate = |v: &str| CatalogCommand::Activate {
            tenant_id: quote.tenant_id.clone(),
            version: v.to_owned(),
            at: Timestamp(0),
        };
        let retire = CatalogCommand::Retire {
            version: version.clone(),
            reason: "superseded".to_owned(),
            at: Timestamp(1),
        };
        let price = |catalog: &CatalogState| {
            price_command(
                &QuoteState::Open(quote.clone()),
                catalog,
                &book,
                &policy,
                Percent(Decimal::ZERO),
                Timestamp(2),
            )
        };
        assert!(price(&catalog(&[activate(&version)])).is_ok());
        assert_eq!(
            price(&catalog(&[activate(&version), retire])),
            Err(QuoteError::CatalogVersionRetired {
                version: version.clone()
            })
        );
        assert_eq!(
            price(&catalog(&[activate("another")])),
            Err(QuoteError::CatalogVersionNotActive { version })
        );
    }
}
