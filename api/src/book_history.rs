//! The price books a data directory has run with: one digest of prices
//! per version, in `<data>/price-books.json`.
//!
//! A price is fresh only under the book in force, compared by version
//! (`price_book_superseded`). A book whose prices or currency changed
//! under the same version would leave prices of the old book fresh: a
//! quote signed at 99.00 EUR was accepted after a restart with the same
//! version at 1.00 USD. So a start whose book has a version this
//! directory ran before with other prices is refused, naming
//! `price_book.version`.

use std::collections::BTreeMap;
use std::path::Path;

use domain::quote::PriceBook;
use sha2::{Digest, Sha256};

use crate::config::ConfigError;

/// The file of book digests in the data directory.
pub const BOOK_HISTORY_FILE: &str = "price-books.json";

/// The digest of what a price depends on in `book`: its currency and every
/// offering's unit prices (`99` and `99.00` alike), not its validity.
pub fn prices_digest(book: &PriceBook) -> String {
    let mut hasher = Sha256::new();
    hasher.update(book.currency.as_str().as_bytes());
    for (id, price) in &book.offerings {
        hasher.update([0]);
        hasher.update(id.as_bytes());
        for amount in [price.one_time, price.monthly] {
            hasher.update([0]);
            hasher.update(amount.normalize().to_string().as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// Checks `book` against the books `data_dir` ran with, and records it
/// when its version is new there.
///
/// # Errors
/// [`ConfigError::Invalid`] for `price_book.version` when the directory
/// ran this version with other prices or another currency;
/// [`ConfigError::Parse`] or [`ConfigError::Read`] for a history file
/// that cannot be read; [`ConfigError::Write`] when it cannot be written.
pub fn check_and_record(data_dir: &Path, book: &PriceBook) -> Result<(), ConfigError> {
    let path = data_dir.join(BOOK_HISTORY_FILE);
    let mut history: BTreeMap<String, String> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: format!(
                "{e} (the price books this directory ran with; remove the file to start \
                 the record again)"
            ),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let digest = prices_digest(book);
    match history.get(&book.version) {
        Some(before) if *before == digest => Ok(()),
        Some(_) => Err(ConfigError::Invalid {
            key: "price_book.version".to_owned(),
            problem: format!(
                "{} was in force before with other prices or another currency: give the \
                 changed book a new version, or prices made under the old one would still \
                 count as fresh",
                book.version
            ),
        }),
        None => {
            history.insert(book.version.clone(), digest);
            let text = serde_json::to_vec_pretty(&history).map_err(|e| ConfigError::Invalid {
                key: BOOK_HISTORY_FILE.to_owned(),
                problem: e.to_string(),
            })?;
            crate::credentials::write_private(&path, &text)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::PriceBookConfig;

    fn book(version: &str, currency: &str, monthly: &str) -> PriceBook {
        let mut config = PriceBookConfig {
            version: version.to_owned(),
            currency: currency.to_owned(),
            ..PriceBookConfig::default()
        };
        if let Some(price) = config.offerings.get_mut("fiber-1g") {
            price.monthly = monthly.to_owned();
        }
        crate::pricing::price_book(&config).unwrap()
    }

    /// A version names one set of prices for the life of the directory.
    #[test]
    fn a_version_changed_in_its_prices_or_currency_is_refused_and_a_new_one_recorded() {
        let dir = tempfile::tempdir().unwrap();
        check_and_record(dir.path(), &book("b-1", "EUR", "49.90")).unwrap();
        check_and_record(dir.path(), &book("b-1", "EUR", "49.90")).unwrap();
        // The same price spelled with another scale is the same book.
        check_and_record(dir.path(), &book("b-1", "EUR", "49.9")).unwrap();
        for changed in [book("b-1", "EUR", "1.00"), book("b-1", "USD", "49.90")] {
            let error = check_and_record(dir.path(), &changed)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("price_book.version") && error.contains("new version"),
                "{error}"
            );
        }
        check_and_record(dir.path(), &book("b-2", "USD", "1.00")).unwrap();
        check_and_record(dir.path(), &book("b-1", "EUR", "49.90")).unwrap();
        std::fs::write(dir.path().join(BOOK_HISTORY_FILE), "{not json").unwrap();
        let error = check_and_record(dir.path(), &book("b-1", "EUR", "49.90")).unwrap_err();
        assert!(error.to_string().contains(BOOK_HISTORY_FILE), "{error}");
    }
}
