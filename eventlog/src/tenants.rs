//! The tenants a data directory holds: every tenant with an event in the
//! log, and every tenant any configuration the server started with had
//! credentials for (ADR 0045 addendum).
//!
//! A server whose credentials all belong to one tenant gives that tenant's
//! admin the authority over every tenant only when the directory holds no
//! other tenant: a configuration that dropped tenants, or a log imported
//! from a server of several, must not turn one tenant's admin into the
//! auditor of the others' history.
//!
//! The set lives in the log's database, in a tree of its own
//! ([`TENANTS_TREE`]), one key per tenant id. A directory without it (older
//! than the set, or restored by `import`) is walked once to fill it, then
//! marked; from then on every event is written by a credential of a tenant
//! the set already holds, since each start adds the configured tenants.

use std::collections::BTreeSet;

use crate::{EventLog, LogError};

/// The tree of the tenants a data directory holds.
pub const TENANTS_TREE: &str = "tenants";

/// Set once the log was walked for its tenants (no tenant id starts with
/// a zero byte).
const WALKED: &[u8] = b"\x00walked";

impl EventLog {
    /// Adds `configured` to the tenants this data directory holds and
    /// returns them all: every tenant with an event in the log or with
    /// credentials in any configuration recorded here. The first call on a
    /// directory walks the log once (one pass over every record); it is
    /// made durable before it returns.
    ///
    /// # Errors
    /// sled errors, or a record that cannot be read during the walk.
    pub fn held_tenants<'a>(
        &self,
        configured: impl IntoIterator<Item = &'a str>,
    ) -> Result<BTreeSet<String>, LogError> {
        let tree = self.db().open_tree(TENANTS_TREE)?;
        if tree.get(WALKED)?.is_none() {
            let mut seen = BTreeSet::new();
            for record in self.iter_all(0) {
                seen.insert(record?.tenant_id);
            }
            for tenant in &seen {
                tree.insert(tenant.as_bytes(), &[][..])?;
            }
            tree.insert(WALKED, &[][..])?;
        }
        for tenant in configured {
            tree.insert(tenant.as_bytes(), &[][..])?;
        }
        self.db().flush()?;
        let mut held = BTreeSet::new();
        for entry in tree.iter() {
            let (key, _) = entry?;
            if key.as_ref() != WALKED {
                held.insert(String::from_utf8_lossy(&key).into_owned());
            }
        }
        Ok(held)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::{AppendRequest, Durability, EventLog, ExpectedVersion, LogConfig, NewEvent};

    fn append_one(log: &EventLog, tenant: &str, stream: &str) {
        let event = NewEvent::new("QuoteCreated", tenant, "corr", b"{}".to_vec());
        log.append_blocking(AppendRequest::new(
            stream,
            ExpectedVersion::NoStream,
            vec![event],
        ))
        .unwrap();
    }

    fn open(dir: &std::path::Path) -> EventLog {
        EventLog::open(LogConfig::new(dir).durability(Durability::Buffered)).unwrap()
    }

    #[test]
    fn the_set_holds_the_logs_tenants_and_every_tenant_ever_configured() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open(dir.path());
            append_one(&log, "t-a", "quote-1");
            append_one(&log, "t-b", "quote-2");
            // First call: the walk finds both; the configuration adds one.
            let held = log.held_tenants(["t-c"]).unwrap();
            assert_eq!(held.into_iter().collect::<Vec<_>>(), ["t-a", "t-b", "t-c"]);
        }
        // A later start with one tenant configured still holds the others.
        let log = open(dir.path());
        let held = log.held_tenants(["t-a"]).unwrap();
        assert_eq!(held.into_iter().collect::<Vec<_>>(), ["t-a", "t-b", "t-c"]);
    }
}
