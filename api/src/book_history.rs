//! The price books a data directory has run with: one digest of prices
//! per version, and one of the approval thresholds that apply with it,
//! in `<data>/price-books.json`.
//!
//! A price is fresh only under the book in force, compared by version
//! (`price_book_superseded`). A book whose prices or currency changed
//! under the same version would leave prices of the old book fresh: a
//! quote signed at 99.00 EUR was accepted after a restart with the same
//! version at 1.00 USD. So a start whose book has a version this
//! directory ran before with other prices is refused, naming
//! `price_book.version`. The approval policy is versioned after the book
//! (`approval-<version>`, as every price and approval records it), so
//! thresholds changed under the same version are refused too: one policy
//! version would name two policies. Thresholds are recorded under
//! `approval <version>` (a space no version has), so a file written
//! before they were is read as it is and completed.

use std::collections::BTreeMap;
use std::path::Path;

use domain::quote::{ApprovalPolicy, PriceBook};
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

/// The digest of the approval thresholds of `policy`: the default and
/// each segment's (`15` and `15.0` alike).
pub fn thresholds_digest(policy: &ApprovalPolicy) -> String {
    let mut hasher = Sha256::new();
    hasher.update(
        policy
            .default_max_discount
            .0
            .normalize()
            .to_string()
            .as_bytes(),
    );
    for (segment, threshold) in &policy.max_discount_by_segment {
        hasher.update([0]);
        hasher.update(segment.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(threshold.0.normalize().to_string().as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// What [`check`] found new in the record: written by
/// [`Unrecorded::record`] once nothing can refuse the start any more, so a
/// start refused for another part of its configuration leaves no book
/// recorded as "in force" (a probe's corrected book was then refused under
/// its own version).
#[derive(Debug)]
#[must_use = "the book is recorded only by `record`"]
pub struct Unrecorded {
    path: std::path::PathBuf,
    history: Option<BTreeMap<String, String>>,
}

impl Unrecorded {
    /// Writes the record, when [`check`] found anything new.
    ///
    /// # Errors
    /// [`ConfigError::Write`] when it cannot be written.
    pub fn record(self) -> Result<(), ConfigError> {
        let Some(history) = self.history else {
            return Ok(());
        };
        let text = serde_json::to_vec_pretty(&history).map_err(|e| ConfigError::Invalid {
            key: BOOK_HISTORY_FILE.to_owned(),
            problem: e.to_string(),
        })?;
        crate::credentials::write_private(&self.path, &text)
    }
}

/// Checks `book` and the `approval` policy that applies with it against
/// what `data_dir` ran with under the book's version; what is new there
/// is recorded by [`Unrecorded::record`].
///
/// # Errors
/// [`ConfigError::Invalid`] for `price_book.version` when the directory
/// ran this version with other prices or another currency, for
/// `approval` when it ran it with other thresholds;
/// [`ConfigError::Parse`] or [`ConfigError::Read`] for a history file
/// that cannot be read.
pub fn check(
    data_dir: &Path,
    book: &PriceBook,
    approval: &ApprovalPolicy,
) -> Result<Unrecorded, ConfigError> {
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
    // Every digest this file records is a sha256 in hex: anything else
    // was edited or damaged, and would be taken for a changed book.
    if let Some((key, _)) = history
        .iter()
        .find(|(_, digest)| digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(ConfigError::Parse {
            path: path.clone(),
            message: format!(
                "the record of `{}` is not a digest: the file was edited or damaged (the price \
                 books this directory ran with; remove the file to start the record again)",
                domain::text::escaped(key)
            ),
        });
    }
    let recorded = [
        (
            book.version.clone(),
            prices_digest(book),
            "price_book.version",
            format!(
                "{} was in force before with other prices or another currency: give the \
                 changed book a new version, or prices made under the old one would still \
                 count as fresh",
                book.version
            ),
        ),
        (
            format!("approval {}", book.version),
            thresholds_digest(approval),
            "approval",
            format!(
                "the discount thresholds changed under price book version {0}, which \
                 versions them (approval-{0}): give the price book a new version with them, \
                 or prices and approvals would name one policy for two",
                book.version
            ),
        ),
    ];
    let mut changed = false;
    for (key, digest, config_key, problem) in recorded {
        match history.get(&key) {
            Some(before) if *before == digest => {}
            Some(_) => {
                return Err(ConfigError::Invalid {
                    key: config_key.to_owned(),
                    problem: format!(
                        "{problem} (as {} records; if that file was edited or damaged rather \
                         than the configuration changed, remove it to start the record again)",
                        path.display()
                    ),
                })
            }
            None => {
                history.insert(key, digest);
                changed = true;
            }
        }
    }
    Ok(Unrecorded {
        path,
        history: changed.then_some(history),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::PriceBookConfig;

    fn check_and_record(
        data_dir: &Path,
        book: &PriceBook,
        approval: &ApprovalPolicy,
    ) -> Result<(), ConfigError> {
        super::check(data_dir, book, approval)?.record()
    }

    fn policy(version: &str, default: &str) -> ApprovalPolicy {
        let config = crate::config::ApprovalConfig {
            default_max_discount: default.to_owned(),
            ..crate::config::ApprovalConfig::default()
        };
        crate::pricing::approval_policy(&config, version).unwrap()
    }

    fn check(dir: &Path, book: &PriceBook) -> Result<(), ConfigError> {
        check_and_record(dir, book, &policy(&book.version, "10"))
    }

    /// The thresholds that apply with a version are recorded with it: a
    /// start with other thresholds under that version is refused (one
    /// policy version would name two policies), a new version takes them,
    /// and a file from before thresholds were recorded is completed.
    #[test]
    fn thresholds_changed_under_a_version_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b1 = book("b-1", "EUR", "49.90");
        check_and_record(dir.path(), &b1, &policy("b-1", "10")).unwrap();
        check_and_record(dir.path(), &b1, &policy("b-1", "10.0")).unwrap();
        let error = check_and_record(dir.path(), &b1, &policy("b-1", "50"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("approval") && error.contains("new version"),
            "{error}"
        );
        check_and_record(
            dir.path(),
            &book("b-2", "EUR", "49.90"),
            &policy("b-2", "50"),
        )
        .unwrap();
        // A file of prices only, as earlier builds wrote it.
        let older = tempfile::tempdir().unwrap();
        std::fs::write(
            older.path().join(BOOK_HISTORY_FILE),
            serde_json::to_vec(&BTreeMap::from([("b-1", prices_digest(&b1))])).unwrap(),
        )
        .unwrap();
        check_and_record(older.path(), &b1, &policy("b-1", "50")).unwrap();
        assert!(check_and_record(older.path(), &b1, &policy("b-1", "10")).is_err());
    }

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
        check(dir.path(), &book("b-1", "EUR", "49.90")).unwrap();
        check(dir.path(), &book("b-1", "EUR", "49.90")).unwrap();
        // The same price spelled with another scale is the same book.
        check(dir.path(), &book("b-1", "EUR", "49.9")).unwrap();
        for changed in [book("b-1", "EUR", "1.00"), book("b-1", "USD", "49.90")] {
            let error = check(dir.path(), &changed).unwrap_err().to_string();
            assert!(
                error.contains("price_book.version") && error.contains("new version"),
                "{error}"
            );
        }
        check(dir.path(), &book("b-2", "USD", "1.00")).unwrap();
        check(dir.path(), &book("b-1", "EUR", "49.90")).unwrap();
        std::fs::write(dir.path().join(BOOK_HISTORY_FILE), "{not json").unwrap();
        let error = check(dir.path(), &book("b-1", "EUR", "49.90")).unwrap_err();
        assert!(error.to_string().contains(BOOK_HISTORY_FILE), "{error}");
    }

    /// A probe changed one character of a recorded digest: the start was
    /// refused as a changed price book, naming neither the file nor its
    /// remedy. A digest that is not one is the file's damage now, and a
    /// mismatch names the file that records it.
    #[test]
    fn a_damaged_record_names_the_file_and_its_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let b1 = book("b-1", "EUR", "49.90");
        check(dir.path(), &b1).unwrap();
        let path = dir.path().join(BOOK_HISTORY_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let digest = prices_digest(&b1);
        for (damaged, says) in [
            (digest.replacen(&digest[..1], "g", 1), "not a digest"),
            (digest[..63].to_owned(), "not a digest"),
            (
                digest.chars().rev().collect::<String>(),
                "edited or damaged",
            ),
        ] {
            std::fs::write(&path, text.replace(&digest, &damaged)).unwrap();
            let error = check(dir.path(), &b1).unwrap_err().to_string();
            assert!(
                error.contains(BOOK_HISTORY_FILE)
                    && error.contains("remove")
                    && error.contains(says),
                "{error}"
            );
        }
    }
}
