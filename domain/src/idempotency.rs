//! Business idempotency keys, request hashes and deterministic ids.
//!
//! The key of a handoff is built from business facts only,
//! `tenant:order:line:target:purpose:attempt`, never from a random value: a resend
//! of the same attempt reuses the same key, and a new key exists only when the
//! business explicitly starts a new attempt. Hashes are lowercase hex SHA-256.

use crate::ids::{HandoffId, LineId, OrderId, TenantId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The external system a handoff talks to.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TargetSystem {
    /// Holds capacity and owns reservation truth.
    Inventory,
    /// Activates the technical service or resource.
    Provisioning,
    /// Owns billing accounts, charges and their activation.
    Billing,
    /// Owns customers and accounts.
    Crm,
    /// Generates and stores documents.
    Document,
    /// Sends e-mails and messages.
    Notification,
}

impl TargetSystem {
    /// The stable lowercase name used in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSystem::Inventory => "inventory",
            TargetSystem::Provisioning => "provisioning",
            TargetSystem::Billing => "billing",
            TargetSystem::Crm => "crm",
            TargetSystem::Document => "document",
            TargetSystem::Notification => "notification",
        }
    }
}

impl fmt::Display for TargetSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a handoff asks the target system to do.
///
/// Persisted inside events: append-only, never reorder or remove variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Purpose {
    /// Hold inventory capacity for an order line.
    Reserve,
    /// Give back a held reservation (compensation).
    Release,
    /// Provision (activate) the service.
    Activate,
    /// Cancel provisioning that is in flight or done (compensation).
    Cancel,
    /// Activate the charges in billing, only once the service is active.
    ActivateBilling,
}

impl Purpose {
    /// The stable lowercase name used in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Reserve => "reserve",
            Purpose::Release => "release",
            Purpose::Activate => "activate",
            Purpose::Cancel => "cancel",
            Purpose::ActivateBilling => "activate_billing",
        }
    }
}

impl Purpose {
    /// The system that carries out this purpose.
    pub fn target(self) -> TargetSystem {
        match self {
            Purpose::Reserve | Purpose::Release => TargetSystem::Inventory,
            Purpose::Activate | Purpose::Cancel => TargetSystem::Provisioning,
            Purpose::ActivateBilling => TargetSystem::Billing,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lowercase hex SHA-256 of `bytes`: the request hash stored with an idempotency key.
pub fn request_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The business idempotency key `tenant:order:line:target:purpose:attempt`.
///
/// Ids are expected not to contain `:`; the edge validates them.
pub fn idempotency_key(
    tenant: &TenantId,
    order: &OrderId,
    line: &LineId,
    target: TargetSystem,
    purpose: Purpose,
    attempt: u32,
) -> String {
    format!("{tenant}:{order}:{line}:{target}:{purpose}:{attempt}")
}

/// How many hex characters a derived id keeps (128 bits).
const DERIVED_ID_HEX_LEN: usize = 32;

/// A deterministic id: the first 128 bits, in hex, of `sha256(seed || "|" || purpose)`.
/// The same trigger and purpose always give the same id, so a policy that runs twice
/// addresses the same stream and issues the same command id.
pub fn derive_id(seed: &str, purpose: &str) -> String {
    let mut hex = request_hash(format!("{seed}|{purpose}").as_bytes());
    hex.truncate(DERIVED_ID_HEX_LEN);
    hex
}

/// The handoff id for an idempotency key: one key, one handoff stream.
pub fn handoff_id_for_key(key: &str) -> HandoffId {
    HandoffId::new(derive_id(key, "handoff"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_joins_business_facts_with_colons() {
        let key = idempotency_key(
            &TenantId::new("t1"),
            &OrderId::new("o1"),
            &LineId::new("l1"),
            TargetSystem::Billing,
            Purpose::ActivateBilling,
            2,
        );
        assert_eq!(key, "t1:o1:l1:billing:activate_billing:2");
    }

    #[test]
    fn the_request_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            request_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn derived_ids_are_deterministic_and_purpose_specific() {
        assert_eq!(derive_id("ev1", "order"), derive_id("ev1", "order"));
        assert_ne!(derive_id("ev1", "order"), derive_id("ev1", "reserve"));
        assert_eq!(derive_id("ev1", "order").len(), DERIVED_ID_HEX_LEN);
    }
}
