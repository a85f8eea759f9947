//! Business idempotency keys, request hashes and deterministic ids.
//!
//! The key of a handoff is built from business facts only,
//! `tenant:order:line:target:purpose:attempt`, never from a random value: a resend
//! of the same attempt reuses the same key, and a new key exists only when the
//! business explicitly starts a new attempt. Hashes are lowercase hex SHA-256.

use crate::ids::{HandoffId, LineId, OrderId, TenantId};
use crate::names::stable_names;
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

// The stable lowercase names used in keys, logs, configuration and paths.
stable_names!(TargetSystem, "target system", 6, [
    Inventory => "inventory",
    Provisioning => "provisioning",
    Billing => "billing",
    Crm => "crm",
    Document => "document",
    Notification => "notification",
]);

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
    /// Send a customer notification for an order milestone
    /// ([`crate::notification`]).
    Notify,
    /// Render and store an order's confirmation document from its snapshot
    /// ([`crate::confirmation`]).
    GenerateDocument,
}

// The stable lowercase names used in keys and logs.
stable_names!(Purpose, "purpose", 7, [
    Reserve => "reserve",
    Release => "release",
    Activate => "activate",
    Cancel => "cancel",
    ActivateBilling => "activate_billing",
    Notify => "notify",
    GenerateDocument => "generate_document",
]);

impl Purpose {
    /// The system that carries out this purpose.
    pub fn target(self) -> TargetSystem {
        match self {
            Purpose::Reserve | Purpose::Release => TargetSystem::Inventory,
            Purpose::Activate | Purpose::Cancel => TargetSystem::Provisioning,
            Purpose::ActivateBilling => TargetSystem::Billing,
            Purpose::Notify => TargetSystem::Notification,
            Purpose::GenerateDocument => TargetSystem::Document,
        }
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

/// The tenant a business idempotency key ([`idempotency_key`]) was made
/// for: its first part (the whole key when it has no `:`).
pub fn tenant_of_key(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

/// The idempotency key of a command appended to the log.
///
/// Keys are built from typed parts, never by concatenating strings the
/// caller controls, so no key of one kind or tenant can equal a key of
/// another: the encoding ([`CommandKey::encode`]) starts with the kind, and
/// every part but the last is length-prefixed, so the text decodes to one
/// and only one key whatever characters the parts contain. A tenant
/// therefore cannot occupy another tenant's key, and a client's `commandId`
/// cannot occupy a callback's inbox key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommandKey {
    /// A command sent by a client of the API: its tenant (from the
    /// credential) and the client's `commandId`.
    Client {
        /// The caller's tenant.
        tenant: TenantId,
        /// The client's own command id.
        command_id: String,
    },
    /// A command the platform issues in reaction to a stored event (the
    /// fulfillment policy, the dispatcher, parked callbacks): the event's id
    /// and the action taken. The same event and action always give the same
    /// key, so a consumer that re-runs after a crash meets its first outcome.
    Reaction {
        /// The id of the triggering event.
        event_id: String,
        /// What the consumer does in reaction (`dispatch`, `observe`, ...).
        action: String,
    },
    /// A callback message received from an external system: the inbox key.
    Callback {
        /// The tenant the callback is for.
        tenant: TenantId,
        /// The system that sent it.
        system: TargetSystem,
        /// The system's message id.
        message_id: String,
    },
    /// A command issued by a scheduled or operator-triggered job that is not
    /// caused by one event (a reconciliation run): the job's own id and the
    /// action.
    Job {
        /// The run's id, unique per run.
        run_id: String,
        /// What the job does.
        action: String,
    },
}

impl CommandKey {
    /// A client's command key.
    pub fn client(tenant: &TenantId, command_id: impl Into<String>) -> Self {
        Self::Client {
            tenant: tenant.clone(),
            command_id: command_id.into(),
        }
    }

    /// The key of the command taken in reaction to `event_id`.
    pub fn reaction(event_id: impl Into<String>, action: impl Into<String>) -> Self {
        Self::Reaction {
            event_id: event_id.into(),
            action: action.into(),
        }
    }

    /// The inbox key of a callback message.
    pub fn callback(
        tenant: &TenantId,
        system: TargetSystem,
        message_id: impl Into<String>,
    ) -> Self {
        Self::Callback {
            tenant: tenant.clone(),
            system,
            message_id: message_id.into(),
        }
    }

    /// The key of a job's command.
    pub fn job(run_id: impl Into<String>, action: impl Into<String>) -> Self {
        Self::Job {
            run_id: run_id.into(),
            action: action.into(),
        }
    }

    /// The key as stored in the log: `<kind>:<len>:<part>:...:<last part>`.
    /// Injective: two different keys never encode to the same text.
    pub fn encode(&self) -> String {
        fn part(out: &mut String, value: &str) {
            out.push_str(&value.len().to_string());
            out.push(':');
            out.push_str(value);
            out.push(':');
        }
        let mut out = String::new();
        match self {
            Self::Client { tenant, command_id } => {
                out.push_str("client:");
                part(&mut out, tenant.as_str());
                out.push_str(command_id);
            }
            Self::Reaction { event_id, action } => {
                out.push_str("reaction:");
                part(&mut out, event_id);
                out.push_str(action);
            }
            Self::Callback {
                tenant,
                system,
                message_id,
            } => {
                out.push_str("callback:");
                out.push_str(system.as_str());
                out.push(':');
                part(&mut out, tenant.as_str());
                out.push_str(message_id);
            }
            Self::Job { run_id, action } => {
                out.push_str("job:");
                part(&mut out, run_id);
                out.push_str(action);
            }
        }
        out
    }

    /// The request hash of a key whose request is fully determined by the
    /// key itself (reactions and jobs): the same key always hashes the
    /// same, whatever the clock said when the command was built. `None` for
    /// client and callback keys, whose request is what the sender sent.
    pub fn determined_request_hash(&self) -> Option<[u8; 32]> {
        match self {
            Self::Reaction { .. } | Self::Job { .. } => {
                Some(Sha256::digest(self.encode().as_bytes()).into())
            }
            Self::Client { .. } | Self::Callback { .. } => None,
        }
    }
}

impl fmt::Display for CommandKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
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
        assert_eq!(tenant_of_key(&key), "t1");
        assert_eq!(tenant_of_key("no-colon"), "no-colon");
    }

    #[test]
    fn command_keys_of_different_tenants_and_kinds_never_collide() {
        let demo = TenantId::new("demo");
        let cb = TenantId::new("cb");
        let callback = CommandKey::callback(&demo, TargetSystem::Inventory, "msg-9");
        let forged = [
            CommandKey::client(&cb, "inventory:demo:msg-9"),
            CommandKey::client(&cb, callback.encode()),
            CommandKey::client(&TenantId::new("callback:inventory:4"), "demo:msg-9"),
            CommandKey::client(&TenantId::new(""), callback.encode()),
            CommandKey::reaction("", callback.encode()),
            CommandKey::job("inventory", "4:demo:msg-9"),
        ];
        for key in forged {
            assert_ne!(key.encode(), callback.encode(), "{key:?}");
        }
        assert_ne!(
            CommandKey::client(&TenantId::new("a:1"), "b").encode(),
            CommandKey::client(&TenantId::new("a"), "1:b").encode()
        );
    }

    #[test]
    fn reaction_keys_hash_only_what_the_trigger_determines() {
        let key = CommandKey::reaction("01EVENT", "dispatch");
        assert_eq!(
            key.determined_request_hash(),
            CommandKey::reaction("01EVENT", "dispatch").determined_request_hash()
        );
        assert_ne!(
            key.determined_request_hash(),
            CommandKey::reaction("01EVENT", "observe").determined_request_hash()
        );
        assert!(CommandKey::client(&TenantId::new("t"), "c")
            .determined_request_hash()
            .is_none());
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
