//! The price book in force as the API shows it: what a line may be
//! configured with, and at what unit prices.

use async_graphql::SimpleObject;
use domain::money::Money as DomainMoney;
use domain::quote::PriceBook;

use super::scalars::Money;

/// One offering the price book prices.
#[derive(SimpleObject, Clone, Debug)]
pub struct PricedOfferingNode {
    /// The offering, as a line's `offeringId` names it.
    pub offering_id: String,
    /// Charged once per unit (installation).
    pub one_time: Money,
    /// Charged monthly per unit, before any discount.
    pub monthly: Money,
}

/// The price book in force: every price `priceQuote` computes now carries
/// its version, and a line's offering must be one of its offerings.
#[derive(SimpleObject, Clone, Debug)]
pub struct PriceBookNode {
    /// The book's version, as a price records it (`priceBook`).
    pub version: String,
    /// The ISO 4217 currency of every amount.
    pub currency: String,
    /// How long a price stays valid, in hours (`price_book.validity_hours`).
    pub validity_hours: i32,
    /// Every offering the book prices, by id.
    pub offerings: Vec<PricedOfferingNode>,
}

impl From<&PriceBook> for PriceBookNode {
    fn from(book: &PriceBook) -> Self {
        let money = |amount| {
            Money::from(&DomainMoney {
                amount,
                currency: book.currency.clone(),
            })
        };
        let validity_hours = i32::try_from(book.validity_ms / 3_600_000).unwrap_or(i32::MAX);
        Self {
            version: book.version.clone(),
            currency: book.currency.to_string(),
            validity_hours,
            offerings: book
                .offerings
                .iter()
                .map(|(id, unit)| PricedOfferingNode {
                    offering_id: id.clone(),
                    one_time: money(unit.one_time),
                    monthly: money(unit.monthly),
                })
                .collect(),
        }
    }
}
